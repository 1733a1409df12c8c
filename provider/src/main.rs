//! Entry point: handshake with Terraform and serve; nothing else.
use std::process::ExitCode;

use expel_provider::resources::{ExpelProvider, ADDRESS};
use expel_provider::VERSION;
use tfplugin::handshake::{self, Invocation};
use tfplugin::log;
use tfplugin::provider::Provider as _;

fn main() -> ExitCode {
    let opts = match handshake::invocation_from_args(ADDRESS) {
        Ok(Invocation::Serve(o)) => o,
        Ok(Invocation::Version) => {
            println!(
                "terraform-provider-expel {VERSION} (Terraform plugin protocol {})",
                handshake::PROTOCOL
            );
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("terraform-provider-expel: {e}");
            return ExitCode::from(2);
        }
    };
    log::init(
        ExpelProvider.type_name(),
        &["expel_provider", "terraform_provider_expel"],
        expel_provider::clients::secret::redact,
    );
    tracing::info!(
        version = VERSION,
        protocol = handshake::PROTOCOL,
        "terraform-provider-expel starting"
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("terraform-provider-expel: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(handshake::serve(ExpelProvider, opts))
}
