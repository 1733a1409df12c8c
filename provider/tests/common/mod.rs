//! Shared by the integration tests: launch the real provider binary the way Terraform's
//! go-plugin client does, read its handshake, and open gRPC channels to it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::UnixStream;
use tokio::process::{Child, ChildStdout, Command};
use tonic::transport::{Channel, Endpoint};

pub const BIN: &str = env!("CARGO_BIN_EXE_terraform-provider-expel");
pub const COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";
pub const COOKIE: &str = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";
/// Generous: the binary is already built; this only guards against a hang.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Variables of the test runner's environment that must not leak into the child.
const SCRUB: &[&str] = &[
    COOKIE_KEY,
    "PLUGIN_CLIENT_CERT",
    "PLUGIN_PROTOCOL_VERSIONS",
    "PLUGIN_UNIX_SOCKET_DIR",
    "PLUGIN_MULTIPLEX_GRPC",
    "TF_LOG",
    "TF_LOG_PROVIDER",
    "TF_REATTACH_PROVIDERS",
    "EXPEL_API_KEY",
    "EXPEL_WORKBENCH_URL",
    "EXPEL_ORGANIZATION_ID",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
];

/// A provider process. Dropping it kills the process (and removes its socket directory).
pub struct Plugin {
    pub child: Child,
    pub stdout: BufReader<ChildStdout>,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_done: Option<tokio::task::JoinHandle<()>>,
    /// PLUGIN_UNIX_SOCKET_DIR of the child, so a killed child leaves nothing behind.
    pub socket_dir: tempfile::TempDir,
}

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// A command for the provider binary with a clean environment: no cookie, no client cert,
/// no Expel settings. `socket_dir` becomes PLUGIN_UNIX_SOCKET_DIR.
pub fn command(socket_dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    for k in SCRUB {
        c.env_remove(k);
    }
    c.env("PLUGIN_UNIX_SOCKET_DIR", socket_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    c
}

/// What Terraform (go-plugin) sets on every provider it launches.
pub fn terraform_env(c: &mut Command) {
    c.env(COOKIE_KEY, COOKIE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "5,6")
        .env("PLUGIN_MIN_PORT", "10000")
        .env("PLUGIN_MAX_PORT", "25000");
}

impl Plugin {
    /// Launches the binary with Terraform's environment plus `env`, and `args`.
    pub fn spawn(env: &[(&str, &str)], args: &[&str], terraform: bool) -> Plugin {
        let socket_dir = tempfile::tempdir().expect("tempdir");
        let mut c = command(socket_dir.path());
        if terraform {
            terraform_env(&mut c);
        }
        for (k, v) in env {
            c.env(k, v);
        }
        c.args(args);
        let mut child = c.spawn().expect("spawn the provider binary");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut err_pipe = child.stderr.take().expect("stderr");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = stderr.clone();
        // Drain stderr so the child never blocks on a full pipe; keep it for messages.
        let stderr_done = tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Plugin {
            child,
            stdout,
            stderr,
            stderr_done: Some(stderr_done),
            socket_dir,
        }
    }

    /// Launches as Terraform does and reads the handshake line.
    pub async fn start(env: &[(&str, &str)]) -> (Plugin, Handshake) {
        let mut p = Plugin::spawn(env, &[], true);
        let line = p.read_line().await;
        let hs = Handshake::parse(&line)
            .unwrap_or_else(|e| panic!("bad handshake line {line:?}: {e}; stderr: {}", p.stderr()));
        (p, hs)
    }

    /// One line of stdout (without the newline); panics on EOF or after DEADLINE.
    pub async fn read_line(&mut self) -> String {
        let mut line = String::new();
        let n = tokio::time::timeout(DEADLINE, self.stdout.read_line(&mut line))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "no stdout line within {DEADLINE:?}; stderr: {}",
                    self.stderr()
                )
            })
            .expect("read stdout");
        assert!(n > 0, "stdout closed early; stderr: {}", self.stderr());
        line.trim_end_matches(['\r', '\n']).to_string()
    }

    /// What the child wrote on stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Waits (up to `limit`) for the child to exit on its own.
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let status = tokio::time::timeout(limit, self.child.wait()).await.ok()?;
        let status = status.expect("wait for the child");
        if let Some(h) = self.stderr_done.take() {
            let _ = tokio::time::timeout(DEADLINE, h).await;
        }
        Some(status)
    }
}

/// The go-plugin handshake line: `CORE|APP|NETWORK|ADDR|PROTOCOL|SERVERCERT`.
#[derive(Debug)]
pub struct Handshake {
    pub core: String,
    pub app: String,
    pub network: String,
    pub addr: PathBuf,
    pub protocol: String,
    /// base64 (standard alphabet, no padding) DER of the server certificate; empty without TLS.
    pub cert: String,
}

impl Handshake {
    pub fn parse(line: &str) -> Result<Handshake, String> {
        let f: Vec<&str> = line.split('|').collect();
        if f.len() != 6 {
            return Err(format!("{} fields, want exactly 6", f.len()));
        }
        Ok(Handshake {
            core: f[0].into(),
            app: f[1].into(),
            network: f[2].into(),
            addr: PathBuf::from(f[3]),
            protocol: f[4].into(),
            cert: f[5].into(),
        })
    }

    /// Asserts the fields Terraform checks: core 1, protocol 6, unix, grpc, a live socket.
    pub fn assert_terraform_shape(&self) {
        assert_eq!(self.core, "1", "core protocol version");
        assert_eq!(self.app, "6", "negotiated plugin protocol");
        assert_eq!(self.network, "unix");
        assert_eq!(self.protocol, "grpc");
        assert!(self.addr.is_absolute(), "socket path {:?}", self.addr);
        use std::os::unix::fs::FileTypeExt;
        let meta = std::fs::metadata(&self.addr).expect("the announced socket exists");
        assert!(
            meta.file_type().is_socket(),
            "{:?} is not a socket",
            self.addr
        );
    }
}

/// An endpoint whose URI is only a placeholder: the connector decides where to go.
pub fn endpoint() -> Endpoint {
    Endpoint::from_static("http://localhost")
        .connect_timeout(DEADLINE)
        .timeout(DEADLINE)
}

/// A plaintext gRPC channel over the unix socket (no PLUGIN_CLIENT_CERT, or --debug).
pub async fn plaintext_channel(socket: &Path) -> Result<Channel, tonic::transport::Error> {
    let socket = socket.to_path_buf();
    endpoint()
        .connect_with_connector(tower::service_fn(move |_| {
            let socket = socket.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(socket).await?)) }
        }))
        .await
}
