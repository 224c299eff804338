//! `lifehook`: the one binary. Subcommands are thin shells over the library crates.
//!
//! Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error — given
//! here, in `main`, and nowhere else ([`exit`]).

#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::out::outln;

mod agent;
mod check;
mod controller;
mod exit;
mod lambda;
mod logging;
mod ops;
mod out;
mod policy;
mod setup;
mod status;

/// The version with the commit it was built from (`build.rs`).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("LIFEHOOK_COMMIT"),
    ")"
);

/// EC2 Auto Scaling lifecycle hooks, easy to get right.
#[derive(Debug, Parser)]
#[command(name = "lifehook", version = VERSION, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the local lifecycle engine: EC2 Auto Scaling with lifecycle hooks and the
    /// services around it (SQS, SNS, EventBridge, EC2 and IMDS, ELBv2, S3, SSM, ECS,
    /// CloudFormation, the Lambda runtime API) on one port, speaking the AWS wire
    /// protocols, on a virtual clock.
    Sandbox(SandboxArgs),
    /// Run the fleet handler: receive lifecycle actions from an SQS queue, run the
    /// configured pipeline for each, keep the action alive, and complete it.
    Controller(controller::ControllerArgs),
    /// Run the on-instance handler: learn this instance's identity from IMDSv2, handle its
    /// own lifecycle actions only (its own filtered inbox, or IMDS without a queue), persist
    /// progress across reboots, and complete each action.
    Agent(agent::AgentArgs),
    /// Create or update, idempotently, what the configuration's handlers need (from its
    /// `[setup]` section): the SQS queue with its dead-letter queue and access policy, the
    /// EventBridge rule or SNS topic and subscription, and the lifecycle hooks.
    Setup(setup::SetupArgs),

    /// Run as an AWS Lambda function (the `bootstrap` of a `provided.al2023` function):
    /// handle the lifecycle actions of EventBridge, SNS and SQS events and of hooks that
    /// target the function, within the function's deadline.
    Lambda(lambda::LambdaArgs),
    /// Validate a configuration file: print every problem as `path:line:col: message` and
    /// exit 2, or print a summary and exit 0.
    Check(check::CheckArgs),
    /// List every instance waiting on a lifecycle hook: group, instance, state, hooks,
    /// time waited and time left to the hook's global timeout.
    Status(status::StatusArgs),
    /// Complete a lifecycle action (by instance id or token). Exits 1 if the action is
    /// already resolved (completed, timed out, or never existed).
    Complete(ops::CompleteArgs),
    /// Record a heartbeat for a lifecycle action, restarting its heartbeat timeout.
    Heartbeat(ops::HeartbeatArgs),
    /// A first look at lifehook in under a minute, no AWS account needed: the sandbox,
    /// lifehook's controller and agents, and stand-ins for a registry, a chat webhook and
    /// health endpoints, all in this process, running the five reference scenarios.
    Demo(lifehook_demo::DemoArgs),
    /// Print the least-privilege IAM policy documents of each mode (agent instance role,
    /// controller, Lambda) for a configuration.
    Policy(policy::PolicyArgs),
}

#[derive(Debug, clap::Args)]
struct SandboxArgs {
    /// Address to listen on. Loopback by default; any other address exposes the sandbox.
    #[arg(long, env = "LIFEHOOK_SANDBOX_LISTEN", default_value = lifehook_sandbox::DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// How virtual time moves: `real`, `fast:N` (N virtual seconds per real second) or
    /// `manual` (only `POST /_sandbox/clock/advance` moves it).
    #[arg(long, env = "LIFEHOOK_SANDBOX_CLOCK", default_value = "real")]
    clock: lifehook_sandbox::ClockMode,
    /// Enforce an IAM policy document: `FILE` for every access key but
    /// `lifehook-admin`, or `ACCESS_KEY_ID=FILE` for one key (repeatable). Denied
    /// requests get AccessDenied; see docs/sandbox.md.
    #[arg(long, value_name = "[ACCESS_KEY_ID=]FILE")]
    enforce_policy: Vec<String>,
}

/// Threads the agent's runtime may start for blocking work (DNS lookups, file writes).
const AGENT_BLOCKING_THREADS: usize = 4;

fn main() -> ExitCode {
    let cli = match Cli::try_parse_from(lambda::bootstrap_args(std::env::args_os().collect())) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            // `--help` and `--version` are "errors" that print on stdout.
            return if e.use_stderr() {
                exit::Code::Usage.into()
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    if matches!(cli.command, Command::Demo(_)) {
        lifehook_demo::init_logging();
    } else {
        logging::init();
    }
    // The agent idles on an instance for its whole life and handles a few actions in
    // it: one thread (plus short-lived blocking ones for DNS and files) keeps its
    // footprint small. The other modes get a worker per core.
    let mut builder = if matches!(cli.command, Command::Agent(_)) {
        let mut b = tokio::runtime::Builder::new_current_thread();
        b.max_blocking_threads(AGENT_BLOCKING_THREADS);
        b
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let outcome = match builder.enable_all().build() {
        Ok(rt) => rt.block_on(run(cli)),
        Err(e) => Err(exit::Failure::runtime(format!(
            "cannot start the async runtime: {e}"
        ))),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}

async fn run(cli: Cli) -> exit::Outcome {
    match cli.command {
        Command::Sandbox(args) => run_sandbox(args).await,
        Command::Check(args) => check::run(args),
        Command::Setup(args) => setup::run(args).await,
        Command::Controller(args) => controller::run(args).await,
        Command::Agent(args) => agent::run(args).await,
        Command::Lambda(args) => lambda::run(args).await,
        Command::Status(args) => status::status(args).await,
        Command::Complete(args) => ops::complete(args).await,
        Command::Heartbeat(args) => ops::heartbeat(args).await,
        Command::Demo(args) => match lifehook_demo::run(args, shutdown_signal()).await {
            Ok(()) => Ok(()),
            Err(lifehook_demo::DemoError::Usage(m)) => Err(exit::Failure::usage(m)),
            // The summary already said which scenario failed.
            Err(lifehook_demo::DemoError::ScenarioFailed) => {
                Err(exit::Failure::reported(exit::Code::Runtime))
            }
            Err(lifehook_demo::DemoError::Other(e)) => Err(e.into()),
        },
        Command::Policy(args) => policy::run(args),
    }
}

async fn run_sandbox(args: SandboxArgs) -> exit::Outcome {
    let config = lifehook_sandbox::SandboxConfig {
        listen: args.listen,
        clock: args.clock,
        ..Default::default()
    };
    let running = lifehook_sandbox::start(config)
        .await
        .map_err(|e| exit::Failure::runtime(format!("cannot listen on {}: {e}", args.listen)))?;
    for spec in &args.enforce_policy {
        let (key, file) = policy::enforce_spec(spec);
        // A policy file that cannot be read or used is a usage error (exit 2).
        let doc = std::fs::read_to_string(file)
            .map_err(|e| exit::Failure::usage(format!("--enforce-policy {file}: {e}")))
            .and_then(|t| {
                serde_json::from_str(&t).map_err(|e| {
                    exit::Failure::usage(format!("--enforce-policy {file}: not JSON: {e}"))
                })
            })?;
        running
            .sandbox
            .enforce_policy(key, doc)
            .map_err(|e| exit::Failure::usage(format!("--enforce-policy {file}: {e}")))?;
        tracing::info!(
            file,
            access_key_id = key.unwrap_or("(every key but lifehook-admin)"),
            "enforcing an IAM policy"
        );
    }
    if !args.listen.ip().is_loopback() {
        tracing::warn!(listen = %args.listen, "the sandbox accepts any credentials and is reachable beyond this machine");
    }
    // The banner below says where it listens, once (no log line repeating it).
    outln!(
        "lifehook sandbox listening on {} (clock: {})",
        running.endpoint(),
        args.clock
    );
    for line in lifehook_demo::sandbox_env_lines(&running.endpoint()) {
        outln!("{line}");
    }
    if !args.enforce_policy.is_empty() {
        outln!(
            "  enforcing IAM policies; requests signed with AWS_ACCESS_KEY_ID={} are never enforced",
            lifehook_sandbox::iam::ADMIN_ACCESS_KEY_ID
        );
    }
    shutdown_signal().await;
    tracing::info!("shutting down");
    running.stop().await;
    Ok(())
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
