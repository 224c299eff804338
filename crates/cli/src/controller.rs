//! `lifehook controller --config FILE`: the fleet mode.

use std::path::PathBuf;
use std::time::Duration;

use lifehook_aws::controller::{Controller, ControllerError, DEFAULT_GRACE};
use lifehook_aws::metrics::{DEFAULT_ADMIN_LISTEN, Metrics, serve_admin};

use crate::exit::{Failure, Outcome};

#[derive(Debug, clap::Args)]
pub(crate) struct ControllerArgs {
    /// The configuration file (TOML); see docs/configuration.md.
    #[arg(long, short, env = "LIFEHOOK_CONFIG", value_name = "FILE")]
    pub config: PathBuf,
    /// Where to serve /metrics and /healthz: an address (loopback by default) or `off`.
    #[arg(long, env = "LIFEHOOK_ADMIN_LISTEN", default_value = DEFAULT_ADMIN_LISTEN)]
    pub admin_listen: String,
    /// Seconds in-flight actions may run on after SIGTERM before they are handed back to
    /// the queue.
    #[arg(long, env = "LIFEHOOK_GRACE_SECONDS", default_value_t = DEFAULT_GRACE.as_secs())]
    pub grace_seconds: u64,
}

/// Loads and validates a configuration; every problem, located, is a usage error.
pub(crate) fn load_config(
    path: &std::path::Path,
) -> Result<lifehook_core::config::Config, Failure> {
    lifehook_core::config::load(path).map_err(|problems| {
        Failure::problems(
            &problems,
            format!("error: {} problem(s) in {}", problems.len(), path.display()),
        )
    })
}

/// Serves `/metrics` and `/healthz` on `admin` (none: `--admin-listen off`); the task
/// lives as long as the returned handle is held.
pub(crate) async fn start_admin(
    admin: Option<std::net::SocketAddr>,
    metrics: &std::sync::Arc<Metrics>,
) -> Result<Option<tokio::task::JoinHandle<()>>, Failure> {
    let Some(addr) = admin else {
        return Ok(None);
    };
    let (local, task) = serve_admin(addr, metrics.clone())
        .await
        .map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
                " (another lifehook on this host? give each its own --admin-listen, e.g. 127.0.0.1:0 for any free port, or `off`)"
            } else {
                ""
            };
            Failure::runtime(format!("cannot serve metrics on {addr}: {e}{hint}"))
        })?;
    tracing::info!(admin = %local, "serving /metrics and /healthz");
    Ok(Some(task))
}

/// The clock a handler plans deadlines on: the system's, or a sandbox's
/// (`LIFEHOOK_CLOCK_URL`).
pub(crate) async fn handler_clock()
-> Result<std::sync::Arc<dyn lifehook_core::clock::Clock>, Failure> {
    lifehook_core::clock::from_env()
        .await
        .map_err(Failure::error)
}

/// `--admin-listen`: an address, or `off`.
pub(crate) fn admin_addr(s: &str) -> Result<Option<std::net::SocketAddr>, Failure> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    s.parse().map(Some).map_err(|e| {
        Failure::usage(format!(
            "--admin-listen {s:?} is not an address or `off`: {e}"
        ))
    })
}

pub(crate) async fn run(args: ControllerArgs) -> Outcome {
    let config = load_config(&args.config)?;
    let admin = admin_addr(&args.admin_listen)?;
    let clients = lifehook_aws::Clients::load()
        .await
        .map_err(Failure::error)?;
    let metrics = Metrics::new();
    let _admin = start_admin(admin, &metrics).await?;
    let clock = handler_clock().await?;
    let controller = Controller::new(config, &clients, metrics, clock).map_err(|e| match e {
        // Nothing to read from is a configuration error, not a failure at run time.
        e @ ControllerError::NoQueue => Failure::usage(e),
        e => Failure::error(e),
    })?;
    controller
        .run(
            crate::shutdown_signal(),
            Duration::from_secs(args.grace_seconds),
        )
        .await
        .map_err(Failure::error)?;
    Ok(())
}
