//! Transport as a user meets it, through the real `terraform`: secrets never go over plain
//! http to another host, a silent server fails a plan within the default time limit, every
//! transport failure says its cause, a misspelled AWS profile is named, and vendor text that
//! echoes a secret is redacted in diagnostics and in the provider's log.
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use expel_e2e::{flat, Stack, Workdir, TF_REQUIRED};

/// A plan of one Workbench data source with `provider` as the provider block.
fn organization_plan(stack: &Stack, provider: &str) -> Workdir {
    Workdir::with_hcl(
        &format!("{TF_REQUIRED}\nprovider \"expel\" {{\n{provider}\n}}\ndata \"expel_organization\" \"this\" {{}}\n"),
        stack,
    )
}

/// This machine's own address that is not loopback (`hostname -I`), or, without one, a name
/// that is not loopback for a listener on every address.
fn non_loopback_listener() -> (TcpListener, String) {
    let out = std::process::Command::new("hostname").arg("-I").output();
    let ip = out
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .and_then(|s| {
            s.split_whitespace()
                .filter_map(|a| a.parse::<std::net::Ipv4Addr>().ok())
                .find(|a| !a.is_loopback())
        });
    match ip {
        Some(ip) => {
            let l = TcpListener::bind((ip, 0)).expect("bind the machine's address");
            let port = l.local_addr().unwrap().port();
            (l, format!("{ip}:{port}"))
        }
        None => {
            let l = TcpListener::bind("0.0.0.0:0").expect("bind");
            let port = l.local_addr().unwrap().port();
            (l, format!("expel-not-loopback.invalid:{port}"))
        }
    }
}

/// Counts the connections `listener` receives, answering none.
fn count_connections(listener: TcpListener) -> Arc<AtomicUsize> {
    let n = Arc::new(AtomicUsize::new(0));
    let seen = n.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            seen.fetch_add(1, Ordering::SeqCst);
            held.push(s);
        }
    });
    n
}

#[test]
fn an_http_url_carrying_a_secret_is_refused_before_any_connection() {
    let stack = Stack::up();
    let (listener, host) = non_loopback_listener();
    let connections = count_connections(listener);
    let wiz = |auth: &str, api: &str| {
        format!("  wiz {{\n    client_id = \"id\"\n    client_secret = \"sandbox-wiz-admin-secret\"\n    auth_url = \"{auth}\"\n    api_url = \"{api}\"\n  }}")
    };
    let cases = [
        (
            format!("  workbench_url = \"http://{host}\""),
            "workbench_url",
            "EXPEL_WORKBENCH_URL",
        ),
        (
            wiz(
                &format!("http://{host}/oauth/token"),
                "https://api.us17.app.wiz.io/graphql",
            ),
            "wiz.auth_url",
            "WIZ_AUTH_URL",
        ),
        (
            wiz(
                "https://auth.app.wiz.io/oauth/token",
                &format!("http://{host}/graphql"),
            ),
            "wiz.api_url",
            "WIZ_API_URL",
        ),
    ];
    for (block, attr, var) in cases {
        let w = organization_plan(&stack, &block);
        let out = w.tf_expect(&["plan", "-no-color"], 1);
        let err = flat(&out.stderr);
        assert!(err.contains("Insecure URL"), "{attr}: {err}");
        assert!(err.contains(&format!("`{attr}`")), "{attr}: {err}");
        assert!(err.contains(var), "{attr}: {err}");
        assert!(err.contains("https"), "{attr}: {err}");
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "a secret-bearing request reached {host}"
    );
}

#[test]
fn a_silent_workbench_fails_a_plan_within_the_default_limit() {
    let stack = Stack::up();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let connections = count_connections(listener);
    let mut w = organization_plan(&stack, "");
    w.set_env("EXPEL_WORKBENCH_URL", Some(&url));
    let start = Instant::now();
    let out = w.tf_expect(&["plan", "-no-color"], 1);
    let took = start.elapsed();
    eprintln!("terraform plan against a silent Workbench failed after {took:?}");
    let err = flat(&out.stderr);
    assert!(err.contains("timed out"), "{err}");
    assert!(err.contains(&url), "the URL is named: {err}");
    assert!(
        err.contains("EXPEL_REQUEST_TIMEOUT"),
        "says what to raise: {err}"
    );
    assert!(connections.load(Ordering::SeqCst) >= 1);
    assert!(took < Duration::from_secs(90), "took {took:?}");
}

/// A server that answers every connection with plain HTTP, where TLS is expected.
fn plain_http_server() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    format!("https://{addr}/")
}

#[test]
fn refused_dns_and_tls_failures_are_named_with_the_url() {
    let stack = Stack::up();
    let free = TcpListener::bind("127.0.0.1:0").unwrap();
    let refused = format!("http://{}/", free.local_addr().unwrap());
    drop(free);
    let cases = [
        (refused, "connection refused"),
        (
            "https://no-such-workbench.invalid/".to_string(),
            "DNS lookup failed",
        ),
        (plain_http_server(), "TLS handshake failed"),
    ];
    for (url, cause) in cases {
        let mut w = organization_plan(&stack, "");
        w.set_env("EXPEL_WORKBENCH_URL", Some(&url));
        let out = w.tf_expect(&["plan", "-no-color"], 1);
        let err = flat(&out.stderr);
        assert!(err.contains(cause), "{url}: {err}");
        assert!(err.contains(&url), "{url}: {err}");
        assert!(!err.contains("error sending request"), "{url}: {err}");
    }
}

#[test]
fn a_misspelled_aws_profile_is_named() {
    let stack = Stack::up();
    let hcl = format!(
        "{TF_REQUIRED}\nprovider \"expel\" {{}}\nresource \"expel_cloudtrail_integration\" \"this\" {{ name = \"Acme - AWS CloudTrail\" }}\n"
    );
    let mut w = Workdir::with_hcl(&hcl, &stack);
    let config = w.dir.path().join("aws-config");
    std::fs::write(&config, "[profile prod]\nregion = us-east-1\n").unwrap();
    let config = config.display().to_string();
    let credentials = w.dir.path().join("aws-credentials").display().to_string();
    w.set_env("AWS_CONFIG_FILE", Some(&config));
    w.set_env("AWS_SHARED_CREDENTIALS_FILE", Some(&credentials));
    w.set_env("AWS_PROFILE", Some("prdo"));
    let out = w.tf_expect(&["plan", "-no-color"], 1);
    let err = flat(&out.stderr);
    assert!(err.contains("profile `prdo`"), "{err}");
    assert!(err.contains("not found in"), "{err}");
    assert!(err.contains(&config), "names the file it looked in: {err}");
    assert!(!err.contains("DispatchFailure"), "{err}");
}

/// A Workbench that answers every request 401 with a detail echoing the key it was sent.
fn echoing_workbench() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || answer_with_echo(s));
        }
    });
    format!("http://{addr}/")
}

fn answer_with_echo(mut s: TcpStream) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&buf).contains("\r\n\r\n") {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let key = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("authorization")
                .then(|| value.trim().trim_start_matches("Bearer ").to_string())
        })
        .unwrap_or_default();
    let body = serde_json::json!({"errors": [{"status": "401", "title": "Unauthorized",
        "detail": format!("API key {key} is not valid for this organization")}]})
    .to_string();
    let _ = s.write_all(
        format!(
            "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/vnd.api+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
}

#[test]
fn vendor_text_echoing_a_secret_is_redacted_in_diagnostics_and_the_log() {
    let stack = Stack::up();
    let key = "e2e-workbench-key-7f3a9c";
    let mut w = organization_plan(&stack, "");
    w.set_env("EXPEL_WORKBENCH_URL", Some(&echoing_workbench()));
    w.set_env("EXPEL_API_KEY", Some(key));
    w.set_env("TF_LOG", Some("trace"));
    let out = w.tf_expect(&["plan", "-no-color"], 1);
    let all = flat(&out.all());
    assert!(
        all.contains("API key *** is not valid"),
        "the vendor's text is kept, the key blanked: {}",
        out.stderr
    );
    assert!(
        all.contains("provider.expel"),
        "the provider's log is in the output"
    );
    assert!(!all.contains(key), "the key leaked");
}
