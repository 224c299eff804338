//! `lifehook agent --config FILE`: the on-instance mode.

use std::path::PathBuf;
use std::time::Duration;

use lifehook_aws::agent::{Agent, DEFAULT_GRACE, Whoami};
use lifehook_aws::identity::{Imds, discover};
use lifehook_aws::metrics::Metrics;

use crate::controller::{admin_addr, handler_clock, load_config, start_admin};
use crate::exit::{Failure, Outcome};

#[derive(Debug, clap::Args)]
pub(crate) struct AgentArgs {
    /// The configuration file (TOML); see docs/configuration.md.
    #[arg(long, short, env = "LIFEHOOK_CONFIG", value_name = "FILE")]
    pub config: PathBuf,
    /// Where in-flight work is persisted; overrides `[agent] state_dir`.
    #[arg(long, env = "LIFEHOOK_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Where to serve /metrics and /healthz: an address (loopback) or `off` (default).
    #[arg(long, env = "LIFEHOOK_ADMIN_LISTEN", default_value = "off")]
    pub admin_listen: String,
    /// Seconds in-flight actions may run on after SIGTERM before they are suspended
    /// (persisted, to resume at the next start).
    #[arg(long, env = "LIFEHOOK_GRACE_SECONDS", default_value_t = DEFAULT_GRACE.as_secs())]
    pub grace_seconds: u64,
}

pub(crate) async fn run(args: AgentArgs) -> Outcome {
    let mut config = load_config(&args.config)?;
    if let Some(dir) = &args.state_dir {
        config.agent.state_dir = dir.clone();
    }
    let admin = admin_addr(&args.admin_listen)?;
    let clients = lifehook_aws::Clients::load()
        .await
        .map_err(Failure::error)?;
    let imds = Imds::from_env();
    let identity = discover(&imds, clients.autoscaling())
        .await
        .map_err(|e| anyhow::anyhow!("cannot tell which instance this is: {e}"))?;
    let group = match &config.agent.group {
        Some(g) => Some(g.clone()),
        None => identity.group.as_ref().map(|(g, _)| g.clone()),
    };
    tracing::info!(
        instance = %identity.instance_id,
        region = %identity.region,
        group = group.as_deref().unwrap_or("(none)"),
        group_source = ?identity.group.as_ref().map(|(_, s)| *s),
        "identity"
    );
    if identity.region != clients.region() {
        tracing::warn!(metadata = %identity.region, configured = %clients.region(), "the instance's region differs from the configured AWS region");
    }
    let metrics = Metrics::new();
    let _admin = start_admin(admin, &metrics).await?;
    let clock = handler_clock().await?;
    let agent = Agent::new(
        config,
        clients,
        Whoami {
            instance_id: identity.instance_id,
            group,
        },
        imds,
        metrics,
        clock,
    )
    .map_err(Failure::error)?;
    agent
        .run(
            crate::shutdown_signal(),
            Duration::from_secs(args.grace_seconds),
        )
        .await
        .map_err(Failure::error)?;
    Ok(())
}
