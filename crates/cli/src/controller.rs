//! `lifehook controller --config FILE`: the fleet mode.

use std::path::PathBuf;
use std::time::Duration;

use lifehook_aws::controller::{Controller, DEFAULT_GRACE};
use lifehook_aws::metrics::{DEFAULT_ADMIN_LISTEN, Metrics, serve_admin};

/// Exit code for an invalid configuration.
const EXIT_CONFIG: i32 = 2;

#[derive(Debug, clap::Args)]
pub struct ControllerArgs {
    /// The configuration file (TOML); see docs/configuration.md.
    #[arg(long, short, env = "LIFEHOOK_CONFIG")]
    pub config: PathBuf,
    /// Where to serve /metrics and /healthz: an address (loopback by default) or `off`.
    #[arg(long, env = "LIFEHOOK_ADMIN_LISTEN", default_value = DEFAULT_ADMIN_LISTEN)]
    pub admin_listen: String,
    /// Seconds in-flight actions may run on after SIGTERM before they are handed back to
    /// the queue.
    #[arg(long, env = "LIFEHOOK_GRACE_SECONDS", default_value_t = DEFAULT_GRACE.as_secs())]
    pub grace_seconds: u64,
}

/// Loads and validates a configuration, exiting 2 with every problem when it is invalid.
pub fn load_config(path: &std::path::Path) -> lifehook_core::config::Config {
    match lifehook_core::config::load(path) {
        Ok(c) => c,
        Err(problems) => {
            for p in &problems {
                eprintln!("{p}");
            }
            eprintln!("error: {} problem(s) in {}", problems.len(), path.display());
            std::process::exit(EXIT_CONFIG);
        }
    }
}

/// Parses `--admin-listen`: `off`, or a socket address.
pub fn admin_addr(s: &str) -> anyhow::Result<Option<std::net::SocketAddr>> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    s.parse()
        .map(Some)
        .map_err(|e| anyhow::anyhow!("--admin-listen {s:?} is not an address or `off`: {e}"))
}

pub async fn run(args: ControllerArgs) -> anyhow::Result<()> {
    let config = load_config(&args.config);
    let admin = match admin_addr(&args.admin_listen) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(EXIT_CONFIG);
        }
    };
    let clients = lifehook_aws::Clients::load().await?;
    let metrics = Metrics::new();
    let _admin = match admin {
        Some(addr) => {
            let (local, task) = serve_admin(addr, metrics.clone())
                .await
                .map_err(|e| anyhow::anyhow!("cannot serve metrics on {addr}: {e}"))?;
            tracing::info!(admin = %local, "serving /metrics and /healthz");
            Some(task)
        }
        None => None,
    };
    let clock = lifehook_core::clock::from_env().await?;
    let controller = Controller::new(config, &clients, metrics, clock)?;
    controller
        .run(
            crate::shutdown_signal(),
            Duration::from_secs(args.grace_seconds),
        )
        .await?;
    Ok(())
}
