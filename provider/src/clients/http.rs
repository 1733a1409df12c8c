//! What the Workbench, SentinelOne and Wiz clients share on the wire: the HTTP client and its
//! time limits, the deadline of one call across its retries, transport errors that say their
//! cause, and the rule that a URL carrying a secret is https unless it stays on this machine.
use std::error::Error as _;
use std::time::{Duration, Instant};

use url::{Host, Url};

/// How long one HTTP request, and one call with all its retries, may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// One request: connecting, sending and reading the whole answer.
    pub request: Duration,
    /// One call: every attempt and every wait between them.
    pub total: Duration,
}

impl Default for Limits {
    /// A silent server costs a `terraform plan` about a minute, not the five it once did.
    fn default() -> Self {
        Limits {
            request: Duration::from_secs(30),
            total: Duration::from_secs(60),
        }
    }
}

/// The longest a TCP (and TLS) connect may take, whatever the request limit.
const CONNECT: Duration = Duration::from_secs(10);

/// Time an attempt needs at least to be worth starting.
const MIN_ATTEMPT: Duration = Duration::from_secs(1);

impl Limits {
    /// An HTTP client bound by these limits.
    pub fn client(&self) -> Result<reqwest::Client, reqwest::Error> {
        reqwest::Client::builder()
            .user_agent(concat!(
                "terraform-provider-expel/",
                env!("CARGO_PKG_VERSION")
            ))
            .connect_timeout(CONNECT.min(self.request))
            .timeout(self.request)
            .build()
    }
}

/// The end of one call: each attempt gets the request limit, cut to what is left of the total.
pub struct Deadline {
    start: Instant,
    limits: Limits,
    attempts: u32,
}

impl Deadline {
    pub fn start(limits: &Limits) -> Deadline {
        Deadline {
            start: Instant::now(),
            limits: *limits,
            attempts: 0,
        }
    }

    fn left(&self) -> Duration {
        self.limits.total.saturating_sub(self.start.elapsed())
    }

    /// The time the next attempt may take (counts the attempt).
    pub fn attempt(&mut self) -> Duration {
        self.attempts += 1;
        self.limits.request.min(self.left()).max(MIN_ATTEMPT)
    }

    /// Whether another attempt after waiting `wait` still fits in the total.
    pub fn allows(&self, wait: Duration) -> bool {
        self.left() >= wait + MIN_ATTEMPT
    }

    /// A failed request in words: its cause (timed out, connection refused, DNS, TLS) and what
    /// to do; vendor text in it is redacted.
    pub fn describe(&self, e: &reqwest::Error) -> String {
        let cause = cause(e);
        let text = match cause.kind {
            Cause::Timeout => format!(
                "timed out: no answer within {} s ({} attempt{} in {} s; the limits are the provider's `request_timeout` (EXPEL_REQUEST_TIMEOUT, default {} s) and `request_total_timeout` (EXPEL_REQUEST_TOTAL_TIMEOUT, default {} s): raise them if the server is only slow)",
                self.limits.request.min(self.limits.total).as_secs(),
                self.attempts,
                if self.attempts == 1 { "" } else { "s" },
                self.start.elapsed().as_secs(),
                Limits::default().request.as_secs(),
                Limits::default().total.as_secs(),
            ),
            Cause::Refused => format!("connection refused: nothing listens there; check the URL and that the server runs ({})", cause.detail),
            Cause::Dns => format!("DNS lookup failed: the host name does not resolve; check the URL for a typo ({})", cause.detail),
            Cause::Tls => format!("TLS handshake failed: check that the URL's scheme and port are right and that the server's certificate is valid for its host ({})", cause.detail),
            Cause::Other => cause.detail,
        };
        super::secret::redact(&text)
    }
}

#[derive(Debug, PartialEq)]
enum Cause {
    Timeout,
    Refused,
    Dns,
    Tls,
    Other,
}

struct Found {
    kind: Cause,
    /// The innermost message of the error chain.
    detail: String,
}

/// The cause of a failed request, from reqwest's error chain (`source()` and the errors
/// `std::io::Error` wraps).
fn cause(e: &reqwest::Error) -> Found {
    let mut messages = Vec::new();
    let mut kind = if e.is_timeout() {
        Cause::Timeout
    } else {
        Cause::Other
    };
    let mut next: Option<&(dyn std::error::Error + 'static)> = e.source();
    while let Some(err) = next {
        messages.push(err.to_string());
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => kind = Cause::Refused,
                std::io::ErrorKind::TimedOut => kind = Cause::Timeout,
                // What the TLS layer answers a handshake it cannot complete.
                std::io::ErrorKind::InvalidData => kind = Cause::Tls,
                _ => {}
            }
            if let Some(inner) = io.get_ref() {
                if inner.downcast_ref::<rustls::Error>().is_some() {
                    kind = Cause::Tls;
                }
                messages.push(inner.to_string());
            }
        }
        if err.downcast_ref::<rustls::Error>().is_some() {
            kind = Cause::Tls;
        }
        next = err.source();
    }
    if kind == Cause::Other {
        let all = messages.join(" ").to_ascii_lowercase();
        if all.contains("dns error") || all.contains("failed to lookup address") {
            kind = Cause::Dns;
        } else if [
            "tls",
            "certificate",
            "corrupt message",
            "alert",
            "handshake",
        ]
        .iter()
        .any(|w| all.contains(w))
        {
            kind = Cause::Tls;
        }
    }
    let detail = messages.pop().unwrap_or_else(|| {
        let text = e.to_string();
        match e.url() {
            Some(u) => text.replace(&format!(" for url ({u})"), ""),
            None => text,
        }
    });
    Found { kind, detail }
}

/// A URL as errors show it: scheme, host, port and path; never credentials or a query.
pub fn display_url(u: &Url) -> String {
    let mut u = u.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

/// Whether the URL points at this machine: localhost, 127.0.0.0/8 or ::1.
pub fn is_loopback(u: &Url) -> bool {
    match u.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Whether a secret may travel to this URL: https, or http on this machine only.
pub fn may_carry_secrets(u: &Url) -> bool {
    u.scheme() == "https" || (u.scheme() == "http" && is_loopback(u))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn secrets_go_over_https_or_stay_on_this_machine() {
        for ok in [
            "https://workbench.expel.io",
            "http://127.0.0.1:8080",
            "http://127.3.2.1/x",
            "http://localhost:1",
            "http://[::1]:9/graphql",
        ] {
            assert!(may_carry_secrets(&url(ok)), "{ok}");
        }
        for bad in [
            "http://workbench.expel.io",
            "http://192.0.2.2:8080",
            "http://localhost.example.com",
            "http://128.0.0.1",
            "ftp://127.0.0.1",
        ] {
            assert!(!may_carry_secrets(&url(bad)), "{bad}");
        }
    }

    #[test]
    fn urls_in_errors_carry_no_credentials_or_query() {
        assert_eq!(
            display_url(&url("https://u:p@h.example/api?token=t#f")),
            "https://h.example/api"
        );
    }

    fn limits(request_ms: u64, total_ms: u64) -> Limits {
        Limits {
            request: Duration::from_millis(request_ms),
            total: Duration::from_millis(total_ms),
        }
    }

    #[test]
    fn an_attempt_gets_the_request_limit_cut_to_the_total() {
        let mut d = Deadline::start(&limits(30_000, 45_000));
        assert_eq!(d.attempt(), Duration::from_secs(30));
        assert!(d.allows(Duration::from_secs(40)));
        assert!(!d.allows(Duration::from_secs(45)));
        let mut d = Deadline::start(&limits(30_000, 10_000));
        assert!(d.attempt() <= Duration::from_secs(10));
    }

    /// The error of one GET to `url` with these limits, as `describe` words it.
    async fn failure(url: &str, limits: Limits) -> String {
        let mut d = Deadline::start(&limits);
        let t = d.attempt();
        let e = limits
            .client()
            .unwrap()
            .get(url)
            .timeout(t)
            .send()
            .await
            .unwrap_err();
        d.describe(&e)
    }

    #[tokio::test]
    async fn transport_errors_name_their_cause() {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = free.local_addr().unwrap().port();
        drop(free);
        let e = failure(&format!("http://127.0.0.1:{port}/"), Limits::default()).await;
        assert!(e.starts_with("connection refused"), "{e}");

        let e = failure("http://no-such-host.invalid/", Limits::default()).await;
        assert!(e.starts_with("DNS lookup failed"), "{e}");

        // A plain-HTTP server where TLS is expected.
        let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = plain.local_addr().unwrap();
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            while let Ok((mut s, _)) = plain.accept().await {
                let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
            }
        });
        let e = failure(&format!("https://{addr}/"), Limits::default()).await;
        assert!(e.starts_with("TLS handshake failed"), "{e}");

        // A server that accepts and never answers.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = silent.accept().await {
                held.push(s);
            }
        });
        let e = failure(&format!("http://{addr}/"), limits(1_000, 5_000)).await;
        assert!(e.starts_with("timed out"), "{e}");
        assert!(e.contains("EXPEL_REQUEST_TIMEOUT"), "{e}");
    }
}
