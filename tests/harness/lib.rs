//! End-to-end harness: the local stack (moto + sandbox, started by `scripts/stack`, the
//! same mechanism as the demo) and Terraform working directories that drive the real
//! `terraform` CLI against the built provider through dev_overrides.
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value as Json;

/// The `terraform` block every test configuration starts with, and an empty provider block.
pub const TF_HEADER: &str = r#"
terraform {
  required_providers {
    expel = { source = "expel-io/expel" }
  }
}
provider "expel" {}
"#;

/// The strings of a JSON list (empty for anything else).
pub fn names(v: &Json) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The stack's Python venv (scripts/stack venv).
fn venv() -> PathBuf {
    std::env::var("EXPEL_VENV_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join(".stack/venv"))
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the repository")
        .to_path_buf()
}

/// The directory holding the built `terraform-provider-expel` binary.
pub fn provider_dir() -> PathBuf {
    if let Ok(d) = std::env::var("EXPEL_PROVIDER_DIR") {
        return PathBuf::from(d);
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join("target"));
    let dir = target.join("debug");
    assert!(
        dir.join("terraform-provider-expel").exists(),
        "{} has no terraform-provider-expel: run `cargo build -p terraform-provider-expel` first (scripts/test does)",
        dir.display()
    );
    dir
}

/// A running local stack, torn down on drop.
pub struct Stack {
    dir: tempfile::TempDir,
    pub env: Vec<(String, String)>,
}

impl Stack {
    pub fn up() -> Stack {
        let dir = tempfile::Builder::new()
            .prefix("expel-stack")
            .tempdir()
            .expect("tempdir");
        let out = Command::new(repo_root().join("scripts/stack"))
            .arg("up")
            .env("EXPEL_STACK_DIR", dir.path())
            .output()
            .expect("run scripts/stack up");
        assert!(
            out.status.success(),
            "scripts/stack up failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let env = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| {
                (
                    k.to_string(),
                    v.trim_matches(|c| c == '\'' || c == '"').to_string(),
                )
            })
            .collect();
        Stack { dir, env }
    }

    pub fn var(&self, name: &str) -> String {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("scripts/stack up printed no {name}"))
    }

    /// Calls the sandbox's admin API (`/_admin/...`); returns status and JSON body.
    pub fn admin(&self, method: &str, path: &str, body: Option<&Json>) -> (u16, Json) {
        http(&self.var("EXPEL_SANDBOX_URL"), method, path, body, &[])
    }

    /// Calls the fault proxy in front of moto (`/_proxy/...`).
    pub fn aws_proxy(&self, method: &str, path: &str, body: Option<&Json>) -> (u16, Json) {
        http(&self.var("AWS_PROXY_URL"), method, path, body, &[])
    }

    /// Runs an out-of-band action in moto (tests/e2e/oob.py) and returns its output.
    pub fn oob(&self, action: &str) -> String {
        self.oob_with(action, &[])
    }

    /// Like `oob`, with `name=value` arguments (e.g. `account=<id>` to act in a member account).
    pub fn oob_with(&self, action: &str, args: &[&str]) -> String {
        let out = Command::new(venv().join("bin/python"))
            .arg(repo_root().join("tests/e2e/oob.py"))
            .arg(action)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .expect("run tests/e2e/oob.py");
        assert!(
            out.status.success(),
            "oob.py {action} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Audits every policy document in moto with Duo's parliament
    /// (tests/sandbox/policy_audit.py): whether every finding is an accepted one, and the
    /// report (`documents`, `unaccepted`).
    pub fn policy_audit(&self) -> (bool, Json) {
        let out = Command::new(venv().join("bin/python"))
            .arg(repo_root().join("tests/sandbox/policy_audit.py"))
            .arg("--endpoint")
            .arg(self.var("AWS_ENDPOINT_URL"))
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .expect("run tests/sandbox/policy_audit.py");
        let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
            panic!(
                "policy_audit.py printed no JSON:\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.success(), report)
    }

    /// What exists in moto (keys with their state, aliases, buckets, queues, trails, roles,
    /// customer policies).
    pub fn aws_listing(&self) -> Json {
        serde_json::from_str(&self.oob("list")).expect("oob.py list prints JSON")
    }

    /// What exists in another account of the organization.
    pub fn aws_listing_in(&self, account: &str) -> Json {
        serde_json::from_str(&self.oob_with("list", &[&format!("account={account}")]))
            .expect("oob.py list prints JSON")
    }

    /// Calls the Workbench emulator as a client would (Bearer auth).
    pub fn workbench(&self, method: &str, path: &str, body: Option<&Json>) -> (u16, Json) {
        let auth = format!("Bearer {}", self.var("EXPEL_API_KEY"));
        http(
            &self.var("EXPEL_WORKBENCH_URL"),
            method,
            path,
            body,
            &[("Authorization", &auth)],
        )
    }
}

impl Stack {
    /// Runs a GraphQL document against the Wiz emulator as the seeded admin (out-of-band
    /// changes, as someone in the Wiz console would make them); returns the whole answer.
    pub fn wiz(&self, query: &str, variables: Json) -> Json {
        let form = format!(
            "grant_type=client_credentials&client_id={}&client_secret={}&audience=wiz-api",
            self.var("WIZ_CLIENT_ID"),
            self.var("WIZ_CLIENT_SECRET")
        );
        let base = self.var("EXPEL_SANDBOX_URL");
        let (status, token) = http_body(
            &base,
            "POST",
            "/wiz/oauth/token",
            &form,
            "application/x-www-form-urlencoded",
            &[],
        );
        assert_eq!(status, 200, "Wiz token: {token}");
        let auth = format!(
            "Bearer {}",
            token["access_token"].as_str().unwrap_or_default()
        );
        let body = serde_json::json!({"query": query, "variables": variables}).to_string();
        let (status, answer) = http_body(
            &base,
            "POST",
            "/wiz/graphql",
            &body,
            "application/json",
            &[("Authorization", &auth)],
        );
        assert_eq!(status, 200, "Wiz GraphQL: {answer}");
        answer
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = Command::new(repo_root().join("scripts/stack"))
            .arg("down")
            .env("EXPEL_STACK_DIR", self.dir.path())
            .output();
    }
}

/// A minimal HTTP/1.1 client for loopback test servers.
pub fn http(
    base: &str,
    method: &str,
    path: &str,
    body: Option<&Json>,
    headers: &[(&str, &str)],
) -> (u16, Json) {
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    http_body(base, method, path, &payload, "application/json", headers)
}

/// Like `http`, with a raw body of the given content type.
pub fn http_body(
    base: &str,
    method: &str,
    path: &str,
    payload: &str,
    content_type: &str,
    headers: &[(&str, &str)],
) -> (u16, Json) {
    let hostport = base
        .trim_start_matches("http://")
        .split('/')
        .next()
        .expect("base URL has a host");
    let mut s = TcpStream::connect(hostport).expect("connect to the sandbox");
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n",
        payload.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(payload);
    s.write_all(req.as_bytes()).expect("send request");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read response");
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("HTTP status line");
    let json = serde_json::from_str(body).unwrap_or(Json::Null);
    (status, json)
}

/// The result of one terraform command.
pub struct TfOutput {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl TfOutput {
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// Ctrl-C: SIGINT to the process group of a command started with `Workdir::spawn`.
pub fn ctrl_c(child: &Child) {
    let status = Command::new("kill")
        .args(["-INT", "--", &format!("-{}", child.id())])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -INT failed");
}

/// Waits for a spawned command and collects its output.
pub fn finish(child: Child) -> TfOutput {
    let out = child.wait_with_output().expect("wait for terraform");
    TfOutput {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Copies the `.tf` files of `src` and its subfolders (local modules) into `dst`.
fn copy_tf(src: &Path, dst: &Path) {
    for entry in std::fs::read_dir(src).expect("example exists") {
        let p = entry.expect("dir entry").path();
        let to = dst.join(p.file_name().expect("file name"));
        if p.is_dir() {
            std::fs::create_dir_all(&to).expect("create module folder");
            copy_tf(&p, &to);
        } else if p.extension().is_some_and(|e| e == "tf") {
            std::fs::copy(&p, &to).expect("copy example");
        }
    }
}

/// A Terraform working directory wired to the built provider and a stack.
pub struct Workdir {
    pub dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Workdir {
    /// A working directory with a copy of `examples/<name>`.
    pub fn from_example(name: &str, stack: &Stack) -> Workdir {
        let w = Workdir::empty(stack);
        copy_tf(&repo_root().join("examples").join(name), w.dir.path());
        w
    }

    /// A working directory holding `main.tf` with the given HCL.
    pub fn with_hcl(hcl: &str, stack: &Stack) -> Workdir {
        let w = Workdir::empty(stack);
        w.write("main.tf", hcl);
        w
    }

    fn empty(stack: &Stack) -> Workdir {
        let dir = tempfile::Builder::new()
            .prefix("expel-tf")
            .tempdir()
            .expect("tempdir");
        let tfrc = dir.path().join("dev.tfrc");
        std::fs::write(
            &tfrc,
            format!(
                "provider_installation {{\n  dev_overrides {{\n    \"expel-io/expel\" = \"{}\"\n  }}\n  direct {{}}\n}}\n",
                provider_dir().display()
            ),
        )
        .expect("write dev.tfrc");
        let mut env = stack.env.clone();
        env.push(("TF_CLI_CONFIG_FILE".into(), tfrc.display().to_string()));
        Workdir { dir, env }
    }

    pub fn write(&self, file: &str, content: &str) {
        std::fs::write(self.dir.path().join(file), content).expect("write file");
    }

    /// Overrides (or with `None`, removes) one environment variable for later commands.
    pub fn set_env(&mut self, key: &str, value: Option<&str>) {
        self.env.retain(|(k, _)| k != key);
        if let Some(v) = value {
            self.env.push((key.to_string(), v.to_string()));
        }
    }

    pub fn terraform(&self, args: &[&str]) -> TfOutput {
        let out = self
            .command(args)
            .output()
            .expect("run terraform (is it on PATH?)");
        TfOutput {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Starts terraform in the background in its own process group, as a shell runs a
    /// foreground job: `ctrl_c` then reaches terraform and its plugins, as Ctrl-C does.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("run terraform (is it on PATH?)")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("terraform");
        cmd.args(args)
            .current_dir(self.dir.path())
            .env_remove("TF_LOG")
            .env_remove("TF_LOG_PATH")
            .env_remove("TF_LOG_PROVIDER")
            .env("TF_IN_AUTOMATION", "1")
            .env("CHECKPOINT_DISABLE", "1")
            .env_remove("EXPEL_API_KEY")
            .env_remove("EXPEL_ORGANIZATION_ID")
            .env_remove("EXPEL_WORKBENCH_URL");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs terraform and asserts its exit code, showing the output when it differs.
    pub fn tf_expect(&self, args: &[&str], code: i32) -> TfOutput {
        let out = self.terraform(args);
        assert_eq!(
            out.code,
            code,
            "terraform {} exited {} (expected {code}):\n{}",
            args.join(" "),
            out.code,
            out.all()
        );
        out
    }

    /// The attributes of the first resource of type `kind` in the state (`terraform show`).
    pub fn state_of(&self, kind: &str) -> Json {
        let out = self.tf_expect(&["show", "-json", "-no-color"], 0);
        let doc: Json = serde_json::from_str(&out.stdout).expect("show -json");
        doc["values"]["root_module"]["resources"]
            .as_array()
            .and_then(|rs| rs.iter().find(|r| r["type"] == kind))
            .map(|r| r["values"].clone())
            .unwrap_or_else(|| panic!("no {kind} in the state: {doc}"))
    }

    /// `terraform output -json` as a JSON object.
    pub fn outputs(&self) -> Json {
        let out = self.tf_expect(&["output", "-json", "-no-color"], 0);
        serde_json::from_str(&out.stdout).expect("terraform output -json is JSON")
    }
}
