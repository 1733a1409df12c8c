//! Test support: the repository's sandbox (tests/sandbox: the emulators of Workbench,
//! SentinelOne and Wiz) in a child process, so that a client's tests meet the emulators'
//! shapes over real HTTP. The Python venv is `EXPEL_VENV_DIR`, else `<repo>/.stack/venv`
//! (`scripts/stack venv` makes it; `scripts/test` does so first).
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use url::Url;

/// The SentinelOne emulator's admin token (Admin on its seeded account).
pub const S1_ADMIN_TOKEN: &str = "sandbox-s1-admin-token";
/// The SentinelOne emulator's seeded account.
pub const S1_ACCOUNT_ID: &str = "1491542137455280128";

/// A running sandbox, stopped when dropped.
pub struct Sandbox {
    child: Child,
    pub base: Url,
    _dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn start() -> Sandbox {
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let venv = std::env::var_os("EXPEL_VENV_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo.join(".stack/venv"));
        let python = venv.join("bin/python");
        assert!(
            python.exists(),
            "no Python venv at {}: run scripts/stack venv, or set EXPEL_VENV_DIR",
            venv.display()
        );
        let dir = tempfile::tempdir().expect("a temporary directory");
        let port_file = dir.path().join("port");
        let log_path = dir.path().join("sandbox.log");
        let log = std::fs::File::create(&log_path).expect("the sandbox log");
        let mut child = Command::new(&python)
            .args(["-m", "sandbox", "--port", "0", "--quiet", "--port-file"])
            .arg(&port_file)
            .args(["--s1-admin-token", S1_ADMIN_TOKEN])
            .env("PYTHONPATH", repo.join("tests/sandbox"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the sandbox log"))
            .stderr(log)
            .spawn()
            .expect("start the sandbox");
        let deadline = Instant::now() + Duration::from_secs(30);
        let port = loop {
            if let Some(p) = std::fs::read_to_string(&port_file)
                .ok()
                .filter(|p| !p.trim().is_empty())
            {
                break p.trim().to_string();
            }
            let exited = child.try_wait().ok().flatten().is_some();
            if exited || Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the sandbox did not start:\n{}",
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let base = Url::parse(&format!("http://127.0.0.1:{port}/")).expect("the sandbox URL");
        Sandbox {
            child,
            base,
            _dir: dir,
        }
    }

    /// Calls the sandbox's admin API (`/_admin/...`): status and JSON body.
    pub async fn admin(&self, method: reqwest::Method, path: &str, body: Json) -> (u16, Json) {
        let resp = reqwest::Client::new()
            .request(method, self.base.join(path).expect("an admin path"))
            .json(&body)
            .send()
            .await
            .expect("the sandbox answers");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Json::Null))
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
