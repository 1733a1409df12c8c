//! The go-plugin handshake, and serving the gRPC server it announces: magic cookie,
//! protocol 6, a unix socket (TCP on the loopback on Windows, as go-plugin), AutoMTLS, the health and controller services, the handshake
//! line (or, with `--debug`, the reattach line).
use std::io::Write;
use std::process::ExitCode;

use base64::Engine;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Server;
use tonic::{Request, Response, Status};

use super::proto::plugin as goplugin;
use super::proto::tfplugin6::provider_server::ProviderServer;
use super::provider::Provider;
use super::server::PluginServer;
use super::tls;

pub const MAGIC_COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";
pub const MAGIC_COOKIE_VALUE: &str =
    "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";
const MAX_MESSAGE: usize = 256 << 20;
/// The plugin protocol this crate speaks (major version; Terraform negotiates only that).
pub const PROTOCOL: u32 = 6;

/// How the process was asked to serve.
pub struct ServeOptions {
    /// Full provider address, e.g. `registry.terraform.io/hashicorp/aws`.
    pub address: &'static str,
    /// `--debug`: no cookie, plaintext, print `TF_REATTACH_PROVIDERS`.
    pub debug: bool,
}

struct Controller {
    shutdown: mpsc::Sender<()>,
}

#[tonic::async_trait]
impl goplugin::grpc_controller_server::GrpcController for Controller {
    async fn shutdown(
        &self,
        _r: Request<goplugin::Empty>,
    ) -> Result<Response<goplugin::Empty>, Status> {
        tracing::debug!("GRPCController.Shutdown: exiting");
        let _ = self.shutdown.try_send(());
        Ok(Response::new(goplugin::Empty {}))
    }
}

/// Serves `provider` until Terraform shuts it down. Returns the process exit code.
pub async fn serve<P: Provider>(provider: P, opts: ServeOptions) -> ExitCode {
    let program = provider.program_name();
    if !opts.debug && std::env::var(MAGIC_COOKIE_KEY).as_deref() != Ok(MAGIC_COOKIE_VALUE) {
        eprintln!(
            "This binary is a plugin. These are not meant to be executed directly.\n\
             Please execute the program that consumes these plugins, which will\n\
             load any plugins automatically (here: terraform, with `{}` in required_providers).\n\
             To debug it, run it with --debug and export the TF_REATTACH_PROVIDERS line it prints.",
            opts.address
        );
        return ExitCode::from(1);
    }
    if !opts.debug {
        if let Ok(versions) = std::env::var("PLUGIN_PROTOCOL_VERSIONS") {
            if !versions
                .split(',')
                .any(|v| v.trim() == PROTOCOL.to_string())
            {
                eprintln!("{program} speaks plugin protocol {PROTOCOL}; Terraform offered {versions:?}. Use Terraform 1.0 or newer.");
                return ExitCode::from(1);
            }
        }
    }
    match run(provider, opts).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("plugin server failed: {e}");
            eprintln!("{program}: {e}");
            ExitCode::from(1)
        }
    }
}

/// Where the plugin listens, as go-plugin does: a unix socket in a fresh directory (under
/// `PLUGIN_UNIX_SOCKET_DIR` when Terraform sets it), kept as long as the `Keep` value lives.
#[cfg(unix)]
type Keep = tempfile::TempDir;

#[cfg(unix)]
async fn listen() -> std::io::Result<(tokio::net::UnixListener, &'static str, String, Keep)> {
    let dir = match std::env::var_os("PLUGIN_UNIX_SOCKET_DIR") {
        Some(d) => tempfile::Builder::new().prefix("plugin").tempdir_in(d)?,
        None => tempfile::Builder::new().prefix("plugin").tempdir()?,
    };
    let socket = dir.path().join("plugin.sock");
    let listener = tokio::net::UnixListener::bind(&socket)?;
    Ok((listener, "unix", socket.to_string_lossy().to_string(), dir))
}

#[cfg(unix)]
fn incoming(l: tokio::net::UnixListener) -> tokio_stream::wrappers::UnixListenerStream {
    tokio_stream::wrappers::UnixListenerStream::new(l)
}

/// On Windows go-plugin serves over TCP on the loopback interface, on a free port: nothing
/// to keep.
#[cfg(windows)]
struct Keep;

#[cfg(windows)]
async fn listen() -> std::io::Result<(tokio::net::TcpListener, &'static str, String, Keep)> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let address = listener.local_addr()?.to_string();
    Ok((listener, "tcp", address, Keep))
}

#[cfg(windows)]
fn incoming(l: tokio::net::TcpListener) -> tokio_stream::wrappers::TcpListenerStream {
    tokio_stream::wrappers::TcpListenerStream::new(l)
}

async fn run<P: Provider>(
    provider: P,
    opts: ServeOptions,
) -> Result<(), Box<dyn std::error::Error>> {
    let (listener, network, socket_str, keep) = listen().await?;

    let tls = match std::env::var("PLUGIN_CLIENT_CERT") {
        Ok(pem) if !opts.debug && !pem.trim().is_empty() => {
            Some(tls::server_tls(&pem, &provider.program_name())?)
        }
        _ => None,
    };

    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_service_status("plugin", tonic_health::ServingStatus::Serving)
        .await;
    let (stop_tx, mut stop_rx) = mpsc::channel::<()>(1);
    let provider_svc = ProviderServer::new(PluginServer::new(provider))
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    let router = Server::builder()
        .add_service(health)
        .add_service(goplugin::grpc_controller_server::GrpcControllerServer::new(
            Controller {
                shutdown: stop_tx.clone(),
            },
        ))
        .add_service(provider_svc);

    let cert_field = tls
        .as_ref()
        .map(|t| base64::engine::general_purpose::STANDARD_NO_PAD.encode(&t.cert_der))
        .unwrap_or_default();
    if opts.debug {
        let reattach = serde_json::json!({ opts.address: {
            "Protocol": "grpc", "ProtocolVersion": 6, "Pid": std::process::id(), "Test": true,
            "Addr": { "Network": network, "String": socket_str }
        }});
        println!(
            "Provider started. To attach Terraform CLI, set the TF_REATTACH_PROVIDERS environment variable with the following:\n\n\tTF_REATTACH_PROVIDERS='{reattach}'\n"
        );
    } else {
        println!("1|6|{network}|{socket_str}|grpc|{cert_field}");
    }
    std::io::stdout().flush()?;

    // Terraform handles Ctrl-C itself and sends StopProvider; an interrupt must not kill us,
    // except in debug mode, where it is how a person stops the server.
    let debug = opts.debug;
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            if debug {
                let _ = stop_tx.try_send(());
            }
        }
    });
    // go-plugin force-kills a plugin that has not exited 2 s after Shutdown: give calls in
    // flight 1.5 s to finish, then go.
    let (drained_tx, drained_rx) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        stop_rx.recv().await;
        let _ = drained_tx.send(());
    };
    let grace = async move {
        if drained_rx.await.is_ok() {
            tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        } else {
            std::future::pending::<()>().await;
        }
    };

    match tls {
        None => {
            let serve = router.serve_with_incoming_shutdown(incoming(listener), shutdown);
            tokio::select! {
                r = serve => r?,
                _ = grace => tracing::warn!("calls still running at shutdown were abandoned"),
            }
        }
        Some(t) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(t.config);
            let (tx, rx) = mpsc::channel(16);
            tokio::spawn(async move {
                loop {
                    let sock = match listener.accept().await {
                        Ok((sock, _)) => sock,
                        Err(e) => {
                            // E.g. out of file descriptors: keep serving, try again shortly.
                            tracing::warn!("accept failed: {e}");
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let acceptor = acceptor.clone();
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        let handshake = acceptor.accept(sock);
                        match tokio::time::timeout(std::time::Duration::from_secs(10), handshake)
                            .await
                        {
                            Ok(Ok(stream)) => {
                                let _ = tx.send(Ok::<_, std::io::Error>(stream)).await;
                            }
                            Ok(Err(e)) => tracing::warn!("TLS handshake refused: {e}"),
                            Err(_) => tracing::warn!("TLS handshake timed out"),
                        }
                    });
                }
            });
            let serve = router.serve_with_incoming_shutdown(ReceiverStream::new(rx), shutdown);
            tokio::select! {
                r = serve => r?,
                _ = grace => tracing::warn!("calls still running at shutdown were abandoned"),
            }
        }
    }
    // The socket's directory goes now, before the last line.
    drop(keep);
    tracing::info!(peak_rss_kib = peak_rss_kib(), "plugin exiting");
    Ok(())
}

/// The process's peak resident set size (VmHWM), for benchmarks reading the log.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// What the command line asks for.
pub enum Invocation {
    Serve(ServeOptions),
    /// `--version`: print the version and exit.
    Version,
}

/// Parses the command line: nothing, `--debug` or `--version`.
pub fn invocation_from_args(address: &'static str) -> Result<Invocation, String> {
    let mut debug = false;
    for a in std::env::args().skip(1) {
        match a.as_str() {
            "--debug" | "-debug" => debug = true,
            "--version" | "-version" => return Ok(Invocation::Version),
            other => {
                return Err(format!(
                    "unknown argument {other:?}; the options are --debug and --version"
                ))
            }
        }
    }
    Ok(Invocation::Serve(ServeOptions { address, debug }))
}
