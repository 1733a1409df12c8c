//! End-to-end harness: the local stack (moto + sandbox, started by `scripts/stack`, the
//! same mechanism as the demo) and Terraform working directories that drive the real
//! `terraform` CLI against the built provider through dev_overrides (or, with
//! `Workdir::use_cli_config`, any other installation method).
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value as Json;

/// The `terraform` block every test configuration starts with.
macro_rules! terraform_block {
    () => {
        r#"
terraform {
  required_providers {
    expel = { source = "expel-io/expel" }
  }
}
"#
    };
}

/// The `terraform` block alone, for a configuration that writes its own provider blocks.
pub const TF_REQUIRED: &str = terraform_block!();

/// The `terraform` block every test configuration starts with, and an empty provider block.
pub const TF_HEADER: &str = concat!(terraform_block!(), "provider \"expel\" {}\n");

/// A test configuration: the header (`TF_HEADER`) and then `body`.
pub fn tf_config(body: &str) -> String {
    format!("{TF_HEADER}{body}")
}

/// `terraform plan` that exits 2 when it has changes to make.
pub const PLAN: &[&str] = &["plan", "-detailed-exitcode", "-no-color"];
/// `terraform apply` without asking.
pub const APPLY: &[&str] = &["apply", "-auto-approve", "-no-color"];
/// `terraform destroy` without asking.
pub const DESTROY: &[&str] = &["destroy", "-auto-approve", "-no-color"];

/// An `expel_sentinelone_device` resource block named `label` for the stack's console and
/// account, registering the device `name` (organization "Acme Corp").
pub fn sentinelone_device(stack: &Stack, label: &str, name: &str) -> String {
    format!(
        r#"
resource "expel_sentinelone_device" "{label}" {{
  name              = "{name}"
  console_url       = "{}"
  account_id        = "{}"
  organization_name = "Acme Corp"
}}
"#,
        stack.var("SENTINELONE_CONSOLE_URL"),
        stack.var("SENTINELONE_ACCOUNT_ID")
    )
}

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

/// The length of a JSON list (0 for anything else).
pub fn count(v: &Json) -> usize {
    v.as_array().map(Vec::len).unwrap_or(0)
}

/// Terraform's output with its line wrapping undone (diagnostics are wrapped to a width).
pub fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The stack's Python venv (scripts/stack venv).
fn venv() -> PathBuf {
    std::env::var("EXPEL_VENV_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join(".stack/venv"))
}

/// Lints a CloudFormation template with the venv's cfn-lint (AWS's resource specification;
/// moto validates no template): panics with cfn-lint's findings unless it passes.
pub fn cfn_lint(template: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("template.json");
    std::fs::write(&file, template).expect("write template");
    let out = Command::new(venv().join("bin/cfn-lint"))
        .arg(&file)
        .output()
        .expect("run cfn-lint (tests/sandbox/requirements.txt installs it in the venv)");
    assert!(
        out.status.success(),
        "cfn-lint finds problems in the template:\n{}{}\n{template}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the repository")
        .to_path_buf()
}

/// The Sids of a policy document's statements, in order (statements without one left out).
pub fn sids(doc: &Json) -> Vec<String> {
    doc["Statement"]
        .as_array()
        .map(|s| {
            s.iter()
                .filter_map(|x| x["Sid"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
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

/// The opt-in of the acceptance mode (as `TF_ACC` is for HashiCorp's providers): with
/// `EXPEL_ACCEPTANCE=1`, `Stack::up()` is the real Workbench, AWS account, SentinelOne and Wiz
/// tenants the environment names, instead of a local stack (docs/guides/api-assumptions.md).
pub const ACCEPTANCE: &str = "EXPEL_ACCEPTANCE";

/// What an acceptance run needs from the environment.
const REAL_REQUIRED: &[&str] = &[
    "EXPEL_ACCEPTANCE_AWS_ACCOUNT",
    "EXPEL_WORKBENCH_URL",
    "EXPEL_API_KEY",
    "EXPEL_ORGANIZATION_ID",
    "SENTINELONE_CONSOLE_URL",
    "SENTINELONE_ACCOUNT_ID",
    "SENTINELONE_API_TOKEN",
    "WIZ_CLIENT_ID",
    "WIZ_CLIENT_SECRET",
];
/// Prefixes of the variables passed to terraform in an acceptance run.
const REAL_PREFIXES: &[&str] = &["EXPEL_", "AWS_", "SENTINELONE_", "WIZ_"];
/// The local stack's own addresses: never part of an acceptance run.
const SANDBOX_ONLY: &[&str] = &["EXPEL_SANDBOX_URL", "AWS_PROXY_URL", "MOTO_URL"];

/// Whether this run is an acceptance run.
pub fn acceptance() -> bool {
    std::env::var(ACCEPTANCE).is_ok_and(|v| v == "1")
}

/// Where a test's world lives.
enum World {
    /// A local stack (moto, the fault proxy, the emulators), torn down on drop.
    Local(tempfile::TempDir),
    /// Real endpoints; the lock keeps acceptance tests one at a time, since they share the
    /// account and the tenants (names such as ExpelServiceRole are per account).
    Real { _lock: std::fs::File },
}

/// The endpoints a test runs against.
pub struct Stack {
    world: World,
    pub env: Vec<(String, String)>,
}

impl Stack {
    /// The world of a test that only drives terraform: the local stack, or in an acceptance
    /// run (`EXPEL_ACCEPTANCE=1`) the real endpoints of the environment.
    pub fn up() -> Stack {
        if acceptance() {
            Stack::real()
        } else {
            Stack::local()
        }
    }

    /// The real endpoints named by the environment, one acceptance test at a time.
    fn real() -> Stack {
        let missing: Vec<&str> = REAL_REQUIRED
            .iter()
            .copied()
            .filter(|k| std::env::var(k).map_or(true, |v| v.is_empty()))
            .collect();
        assert!(
            missing.is_empty(),
            "{ACCEPTANCE}=1 runs against real endpoints and needs {}: set them (scripts/acceptance lists them)",
            missing.join(", ")
        );
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(std::env::temp_dir().join("expel-acceptance.lock"))
            .expect("open the acceptance lock file");
        lock.lock().expect("take the acceptance lock");
        let env = std::env::vars()
            .filter(|(k, _)| REAL_PREFIXES.iter().any(|p| k.starts_with(p)))
            .filter(|(k, _)| !SANDBOX_ONLY.contains(&k.as_str()) && k != ACCEPTANCE)
            .collect();
        Stack {
            world: World::Real { _lock: lock },
            env,
        }
    }

    /// A local stack, also in an acceptance run: for tests that inject faults, read the
    /// emulators' or moto's internals, or make out-of-band changes through them.
    pub fn local() -> Stack {
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
        Stack {
            world: World::Local(dir),
            env,
        }
    }

    pub fn var(&self, name: &str) -> String {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("the stack's environment has no {name}"))
    }

    /// The AWS account the tests act in: moto's default account locally; in an acceptance
    /// run, the dedicated account named by EXPEL_ACCEPTANCE_AWS_ACCOUNT.
    pub fn aws_account(&self) -> String {
        match self.world {
            World::Local(_) => "123456789012".to_string(),
            World::Real { .. } => self.var("EXPEL_ACCEPTANCE_AWS_ACCOUNT"),
        }
    }

    /// What only a local stack has: a test that uses it starts with `Stack::local()`.
    fn local_only(&self, what: &str) {
        if let World::Real { .. } = self.world {
            panic!("this test uses {what}, which only the local stack has: it must start with Stack::local(), not Stack::up()");
        }
    }

    /// Calls the sandbox's admin API (`/_admin/...`); returns status and JSON body.
    pub fn admin(&self, method: &str, path: &str, body: Option<&Json>) -> (u16, Json) {
        self.local_only("the sandbox's admin API");
        http(&self.var("EXPEL_SANDBOX_URL"), method, path, body, &[])
    }

    /// Calls the fault proxy in front of moto (`/_proxy/...`).
    pub fn aws_proxy(&self, method: &str, path: &str, body: Option<&Json>) -> (u16, Json) {
        self.local_only("the AWS fault proxy");
        http(&self.var("AWS_PROXY_URL"), method, path, body, &[])
    }

    /// Runs an out-of-band action in moto (tests/e2e/oob.py) and returns its output.
    pub fn oob(&self, action: &str) -> String {
        self.oob_with(action, &[])
    }

    /// Like `oob`, with `name=value` arguments (e.g. `account=<id>` to act in a member account).
    pub fn oob_with(&self, action: &str, args: &[&str]) -> String {
        self.local_only("out-of-band changes in moto (oob.py)");
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

    /// A live policy document through tests/e2e/oob.py (`doc` = bucket, key, queue, trust, or
    /// api for a customer-managed policy; `extra` are `name=value` arguments), as JSON (a
    /// string when it is not JSON).
    pub fn policy_show(&self, doc: &str, extra: &[&str]) -> Json {
        let mut args = vec![format!("doc={doc}")];
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        serde_json::from_str(&self.oob_with("policy-show", &args)).expect("policy JSON")
    }

    /// Audits every policy document in moto with Duo's parliament
    /// (tests/sandbox/policy_audit.py): whether every finding is an accepted one, and the
    /// report (`documents`, `unaccepted`).
    pub fn policy_audit(&self) -> (bool, Json) {
        self.local_only("the policy audit of moto's documents");
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
        self.local_only("direct calls to the Workbench emulator");
        let auth = format!("Bearer {}", self.var("EXPEL_API_KEY"));
        http(
            &self.var("EXPEL_WORKBENCH_URL"),
            method,
            path,
            body,
            &[("Authorization", &auth)],
        )
    }

    /// Everything the emulators hold, secrets included (`/_admin/state`).
    pub fn sandbox_state(&self) -> Json {
        let (code, state) = self.admin("GET", "/_admin/state", None);
        assert_eq!(code, 200, "{state}");
        state
    }

    /// Every device the Workbench emulator holds (soft-deleted ones too): id,
    /// organization_id, attributes.
    pub fn workbench_devices(&self) -> Vec<Json> {
        let state = self.sandbox_state();
        let devices = &state["workbench"]["security_devices"];
        devices
            .as_array()
            .cloned()
            .or_else(|| devices.as_object().map(|m| m.values().cloned().collect()))
            .unwrap_or_default()
    }

    /// Calls the SentinelOne emulator's API (`/web/api/v2.1` + `path`) with the admin token.
    pub fn sentinelone(&self, method: &str, path: &str, body: Option<&Json>) -> (u16, Json) {
        let auth = format!("ApiToken {}", self.var("SENTINELONE_API_TOKEN"));
        http(
            &self.var("SENTINELONE_CONSOLE_URL"),
            method,
            &format!("/web/api/v2.1{path}"),
            body,
            &[("Authorization", &auth)],
        )
    }

    /// A new account `name` in the SentinelOne emulator (with its default site); its id.
    pub fn add_sentinelone_account(&self, name: &str) -> String {
        let (code, added) = self.admin(
            "POST",
            "/_admin/sentinelone/accounts",
            Some(&serde_json::json!({ "name": name })),
        );
        assert_eq!(code, 201, "{added}");
        added["account"]["id"]
            .as_str()
            .expect("the new account's id")
            .to_string()
    }
}

impl Stack {
    /// Runs a GraphQL document against the Wiz emulator as the seeded admin (out-of-band
    /// changes, as someone in the Wiz console would make them); returns the whole answer.
    pub fn wiz(&self, query: &str, variables: Json) -> Json {
        self.local_only("direct calls to the Wiz emulator");
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
        if let World::Local(dir) = &self.world {
            let _ = Command::new(repo_root().join("scripts/stack"))
                .arg("down")
                .env("EXPEL_STACK_DIR", dir.path())
                .output();
        }
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

/// The CLI configuration that points Terraform at the provider binary in `dir`
/// (`dev_overrides`); scripts/bench writes the same file.
fn dev_tfrc(dir: &Path) -> String {
    include_str!("dev.tfrc").replace("{provider_dir}", &dir.display().to_string())
}

/// A Terraform working directory wired to the built provider and a stack.
pub struct Workdir {
    pub dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    /// Against real endpoints, whatever the test leaves in the state is destroyed on drop,
    /// pass or fail (`override_for_acceptance`): an acceptance run leaves nothing in the
    /// account or the tenants.
    real: bool,
}

impl Drop for Workdir {
    fn drop(&mut self) {
        if !self.real || !self.dir.path().join("terraform.tfstate").exists() {
            return;
        }
        // The state's force_destroy decides what destroy deletes: set it first.
        self.override_for_acceptance();
        let _ = self.terraform(&["apply", "-auto-approve", "-no-color"]);
        let out = self.terraform(&["destroy", "-auto-approve", "-no-color"]);
        if out.code != 0 {
            eprintln!(
                "acceptance cleanup: `terraform destroy` in {} failed; what it lists is left in the real account or tenants:\n{}",
                self.dir.path().display(),
                out.all()
            );
        }
    }
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
        std::fs::write(&tfrc, dev_tfrc(&provider_dir())).expect("write dev.tfrc");
        let mut env = stack.env.clone();
        env.push(("TF_CLI_CONFIG_FILE".into(), tfrc.display().to_string()));
        Workdir {
            dir,
            env,
            real: matches!(stack.world, World::Real { .. }),
        }
    }

    /// A copy of `examples/cloudtrail` with `force_destroy = true` and the `extra` lines
    /// (e.g. a `timeouts` block) before its tags.
    pub fn cloudtrail_force_destroy(stack: &Stack, extra: &str) -> Workdir {
        let w = Workdir::from_example("cloudtrail", stack);
        w.edit_main(|main| {
            main.replace(
                "  tags = {",
                &format!("  force_destroy = true\n{extra}\n  tags = {{"),
            )
        });
        w
    }

    pub fn write(&self, file: &str, content: &str) {
        std::fs::write(self.dir.path().join(file), content).expect("write file");
    }

    /// Rewrites `main.tf` with what `edit` makes of it.
    pub fn edit_main(&self, edit: impl FnOnce(&str) -> String) {
        let main = std::fs::read_to_string(self.dir.path().join("main.tf")).expect("main.tf");
        self.write("main.tf", &edit(&main));
    }

    /// Replaces the dev_overrides CLI configuration with `config` (e.g. a
    /// `provider_installation` block that installs from a mirror, as a user's does).
    pub fn use_cli_config(&mut self, config: &str) {
        self.write("cli.tfrc", config);
        let path = self.dir.path().join("cli.tfrc");
        self.set_env("TF_CLI_CONFIG_FILE", Some(&path.display().to_string()));
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

    /// The cleanup of an acceptance test destroys every CloudTrail integration whole
    /// (`force_destroy`: the log bucket emptied and deleted, the key scheduled for deletion
    /// after AWS's minimum of 7 days), through a Terraform override file, so that an
    /// acceptance run leaves no bucket behind. The test itself runs its configuration as is.
    fn override_for_acceptance(&self) {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(self.dir.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let p = entry.path();
            let is_config = p.extension().is_some_and(|e| e == "tf")
                && !p.to_string_lossy().ends_with("_override.tf");
            let text = if is_config {
                std::fs::read_to_string(&p).unwrap_or_default()
            } else {
                String::new()
            };
            let mark = "resource \"expel_cloudtrail_integration\" \"";
            for rest in text.split(mark).skip(1) {
                if let Some((name, _)) = rest.split_once('"') {
                    names.push(name.to_string());
                }
            }
        }
        let blocks: String = names
            .iter()
            .map(|n| {
                format!("resource \"expel_cloudtrail_integration\" \"{n}\" {{\n  force_destroy            = true\n  key_deletion_window_days = 7\n}}\n")
            })
            .collect();
        self.write("acceptance_override.tf", &blocks);
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

    /// After a change behind Terraform's back: plan exits 2 and names each of `words`,
    /// apply repairs, the next plan is empty; `case` says which change in a failure.
    pub fn drift_repaired(&self, case: &str, words: &[&str]) {
        let plan = self.terraform(PLAN);
        assert_eq!(
            plan.code,
            2,
            "{case}: plan should show drift:\n{}",
            plan.all()
        );
        for word in words {
            assert!(
                plan.all().contains(word),
                "{case}: plan does not name {word:?}:\n{}",
                plan.all()
            );
        }
        self.tf_expect(APPLY, 0);
        let after = self.terraform(PLAN);
        assert_eq!(
            after.code,
            0,
            "{case}: plan after repair not empty:\n{}",
            after.all()
        );
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
