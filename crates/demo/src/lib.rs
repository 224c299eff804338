//! `lifehook demo`: a first look at lifehook in under a minute, with no AWS account.
//!
//! Everything runs in this process: the sandbox on an ephemeral loopback port, AWS SDK
//! clients configured for it in code (static fake credentials, us-east-1, the endpoint —
//! no environment variable is read or set for them and instance metadata is never
//! probed), a stub HTTP server playing the outside world (a Eureka registry, a chat
//! webhook, instance health endpoints), and the real fleet controller running the
//! configurations of `examples/demo-*.toml`. The demo drives the groups, prints what
//! happens as it happens, checks the outcome and prints a summary.
//!
//! The sandbox clock runs in real time (the controller's heartbeats and deadlines are
//! computed on the wall clock); the demo moves it forward only to show a hook timing out.

mod ecs;
mod logs;
mod narrate;
mod out;
mod patch;
mod scenarios;
mod stub;
mod watch;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_sdk_autoscaling::config::{Credentials, Region};
use lifehook_aws::Clients;

use out::Out;

/// Why the demo did not pass. The binary maps these to its exit codes (a failed
/// scenario and an error are runtime failures, 1; a usage error is 2).
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The command line asked for something the demo does not have.
    #[error("{0}")]
    Usage(String),
    /// The demo ran, and at least one scenario failed (the summary says which).
    #[error("a scenario failed")]
    ScenarioFailed,
    /// The demo could not run (a port, an SDK client, a stand-in server).
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Run only these reference scenarios, e.g. `4` or `1,3` (1: ship logs before
    /// termination, agent; 2: deregister from service discovery; 3: launch gate, scale-in
    /// and instance refresh; 4: ECS drain; 5: patch, reboot and resume, agent).
    #[arg(long, value_name = "N[,N...]", value_delimiter = ',')]
    pub scenario: Vec<u32>,
    /// Leave the sandbox (and the demo's controllers) running afterwards, until Ctrl-C,
    /// and print how to point the AWS CLI at it.
    #[arg(long)]
    pub keep_running: bool,
}

/// The five reference scenarios: number and title.
const SCENARIOS: [(u32, &str); 5] = [
    (1, "ship logs to S3 before termination (agent)"),
    (2, "deregister from service discovery, centrally"),
    (3, "launch gate; scale-in vs instance refresh"),
    (4, "drain an ECS container instance"),
    (5, "patch, reboot and resume during launch (agent)"),
];

/// Logging for the demo: `warn` unless `LIFEHOOK_LOG` says otherwise, so that the
/// controller's own logs do not drown the demo's output; and the narrator, which tells each
/// step and action of lifehook's handlers in the demo's own lines (so those events are not
/// logged again).
pub fn init_logging() {
    use tracing_subscriber::filter::{FilterExt as _, LevelFilter, Targets, filter_fn};
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::{EnvFilter, Layer as _};

    let filter = EnvFilter::try_from_env("LIFEHOOK_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_filter(filter.and(filter_fn(|meta| !narrate::is_narrated(meta))));
    let narrator = narrate::Narrator.with_filter(
        Targets::new()
            .with_target("lifehook_core", LevelFilter::DEBUG)
            .with_target("lifehook_aws", LevelFilter::DEBUG),
    );
    let _ = tracing_subscriber::registry()
        .with(logs)
        .with(narrator)
        .try_init();
}

/// One thing the demo verified.
#[derive(Debug, Clone)]
pub struct Check {
    pub what: String,
    pub ok: bool,
    /// How long the lifecycle action(s) concerned took.
    pub took: Option<String>,
}

/// The outcome of one scenario.
#[derive(Debug, Clone)]
pub struct ScenarioReport {
    pub number: u32,
    pub checks: Vec<Check>,
}

impl ScenarioReport {
    fn passed(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.ok)
    }
}

/// SDK configuration for the embedded sandbox, entirely in code.
async fn clients(endpoint: &str) -> anyhow::Result<Clients> {
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "demo",
            "demo",
            None,
            None,
            "lifehook-demo",
        ))
        .endpoint_url(endpoint)
        .load()
        .await;
    Ok(Clients::from_sdk_config(sdk)?)
}

/// Runs the selected scenarios; with `--keep-running`, keeps the sandbox up until
/// `shutdown` resolves.
pub async fn run(args: DemoArgs, shutdown: impl Future<Output = ()>) -> Result<(), DemoError> {
    let selected = select(&args.scenario).map_err(DemoError::Usage)?;

    let out = Out::new();
    narrate::start(out);
    if let Some(w) = proxy_warning() {
        eprintln!("{w}");
    }
    let sandbox = lifehook_sandbox::start(lifehook_sandbox::SandboxConfig {
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        clock: lifehook_sandbox::ClockMode::Real,
        ..Default::default()
    })
    .await
    .map_err(|e| anyhow::anyhow!("cannot start the embedded sandbox: {e}"))?;
    let endpoint = sandbox.endpoint();
    let clients = clients(&endpoint).await?;
    let watch = watch::Watch::start(out, endpoint.clone());
    let stub = stub::Stub::start(out, endpoint.clone(), watch.clone())
        .await
        .map_err(|e| anyhow::anyhow!("cannot start the demo's stub server: {e}"))?;

    out.say(
        &out.bold("lifehook demo: lifecycle hooks on the embedded sandbox, no AWS account needed"),
    );
    out.say(&format!(
        "  sandbox {endpoint}: EC2 Auto Scaling, EC2 and IMDS, SQS, SNS, EventBridge, S3, ECS, CloudFormation"
    ));
    out.say(&format!(
        "  stub    {}: plays a Eureka registry, a chat webhook and the instances' health endpoints",
        stub.base
    ));
    out.say("  lifehook's own controller and agent run examples/demo-*.toml in this process.");
    out.say("  [ 1.0s] is wall-clock time since the demo started. Deadlines (\"30s left\") are on the sandbox's clock, which runs in real time; scenarios 2 and 4 move it forward, and times they measure say \"on the sandbox clock\".");

    let env = scenarios::Env {
        out,
        clients,
        endpoint: endpoint.clone(),
        http: reqwest::Client::builder()
            .no_proxy()
            .build()
            .map_err(anyhow::Error::from)?,
        stub,
        watch: watch.clone(),
        sandbox: sandbox.sandbox.clone(),
        clock: Arc::new(
            lifehook_core::SandboxClock::connect(&format!("{endpoint}/_sandbox/clock"))
                .await
                .map_err(|e| anyhow::anyhow!("cannot follow the embedded sandbox's clock: {e}"))?,
        ),
    };
    let mut reports = Vec::new();
    let mut keep = Vec::new();
    // In order: the handlers follow the sandbox's clock, so the scenarios that move it
    // forward (2 and 4) do not disturb the others.
    for &n in &selected {
        let before = reports.len();
        match n {
            1 => reports.push(logs::ship_logs(&env).await),
            2 => {
                let (r, c) = scenarios::deregister(&env).await;
                reports.push(r);
                keep.extend(c);
            }
            3 => {
                let (r, c) = scenarios::launch_gate(&env).await;
                reports.push(r);
                keep.extend(c);
            }
            4 => reports.push(ecs::ecs_drain(&env).await),
            _ => reports.push(patch::patch_reboot(&env).await),
        }
        if reports.len() > before {
            yourself(&out, n);
        }
    }
    reports.sort_by_key(|r| r.number);
    let all_passed = reports.iter().all(ScenarioReport::passed);
    summary(&out, &reports, args.scenario.is_empty());

    if args.keep_running {
        let kept = scenarios::restart(&env, keep);
        let controllers = &kept.groups;
        out.say("");
        out.say(&out.bold("The sandbox keeps running until Ctrl-C. Point the AWS CLI at it:"));
        for line in sandbox_env_lines(&endpoint) {
            out.say(&line);
        }
        out.say("  aws autoscaling describe-auto-scaling-groups \\");
        out.say("    --query 'AutoScalingGroups[].[AutoScalingGroupName,length(Instances)]'");
        if !controllers.is_empty() {
            out.say(&format!(
                "  # the demo's controllers still handle {}; for example:",
                controllers.join(" and ")
            ));
            out.say(&format!(
                "  aws autoscaling set-desired-capacity --auto-scaling-group-name {} --desired-capacity 2",
                controllers[0]
            ));
        }
        out.say(&format!(
            "  lifehook status     # with the variables above\n  curl -s {endpoint}/_sandbox/state"
        ));
        shutdown.await;
        out.say("stopping");
    }
    watch.stop();
    sandbox.stop().await;
    if all_passed {
        Ok(())
    } else {
        Err(DemoError::ScenarioFailed)
    }
}

/// How to point the AWS CLI (v1 and v2) and the SDKs at a sandbox, as shell lines of at
/// most 80 columns.
pub fn sandbox_env_lines(endpoint: &str) -> Vec<String> {
    vec![
        format!("  export AWS_ENDPOINT_URL={endpoint}"),
        // AWS CLI v1 and boto3 read AWS_DEFAULT_REGION; v2 and the SDKs read AWS_REGION.
        "  export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1".to_owned(),
        "  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test".to_owned(),
        "  export AWS_EC2_METADATA_DISABLED=true AWS_PAGER=".to_owned(),
        "  # AWS CLI v2 before 2.13 ignores AWS_ENDPOINT_URL, v1 for SQS:".to_owned(),
        format!("  alias aws='aws --endpoint-url {endpoint}'"),
    ]
}

/// Each scenario's example configuration and the handler that runs it.
const EXAMPLES: [(u32, &str, &str, lifehook_core::policy::Mode); 5] = [
    (
        1,
        "examples/demo-ship-logs.toml",
        logs::SHIP_LOGS_TOML,
        lifehook_core::policy::Mode::Agent,
    ),
    (
        2,
        "examples/demo-deregister.toml",
        scenarios::DEREGISTER_TOML,
        lifehook_core::policy::Mode::Controller,
    ),
    (
        3,
        "examples/demo-launch-gate.toml",
        scenarios::LAUNCH_GATE_TOML,
        lifehook_core::policy::Mode::Controller,
    ),
    (
        4,
        "examples/demo-ecs-drain.toml",
        ecs::ECS_DRAIN_TOML,
        lifehook_core::policy::Mode::Controller,
    ),
    (
        5,
        "examples/demo-patch-reboot.toml",
        patch::PATCH_TOML,
        lifehook_core::policy::Mode::Agent,
    ),
];

/// The end of a scenario: how to run it yourself, and the IAM actions its handler needed.
fn yourself(out: &Out, n: u32) {
    let Some((_, file, toml, mode)) = EXAMPLES.iter().find(|e| e.0 == n) else {
        return;
    };
    out.say(&format!(
        "  Yourself: `lifehook sandbox`, then `lifehook {mode} -c {file}` (docs/demo.md, scenario {n})."
    ));
    if let Some(actions) = iam_actions(file, toml, *mode) {
        out.say(&format!(
            "  IAM it needed (`lifehook policy -c {file} --mode {mode}` prints the policy): {}",
            actions.join(", ")
        ));
    }
}

/// The IAM actions of `mode`'s policy for an example configuration.
fn iam_actions(file: &str, toml: &str, mode: lifehook_core::policy::Mode) -> Option<Vec<String>> {
    let cfg = lifehook_core::config::Config::from_toml(toml, std::path::Path::new(file)).ok()?;
    let doc = lifehook_core::policy::policy(&cfg, mode, &Default::default()).ok()?;
    let mut actions: Vec<String> = doc.statements.into_iter().flat_map(|s| s.actions).collect();
    actions.sort();
    actions.dedup();
    Some(actions)
}

/// The scenarios to run, in order, each once: all of them when none is named.
fn select(asked: &[u32]) -> Result<Vec<u32>, String> {
    if let Some(n) = asked.iter().find(|n| !SCENARIOS.iter().any(|s| s.0 == **n)) {
        return Err(format!(
            "there is no scenario {n}: the reference scenarios are 1 to 5"
        ));
    }
    Ok(SCENARIOS
        .iter()
        .map(|s| s.0)
        .filter(|n| asked.is_empty() || asked.contains(n))
        .collect())
}

/// A warning when an HTTP proxy is configured for loopback addresses too: the SDK and the
/// pipeline steps honour the proxy variables, and the demo talks only to 127.0.0.1.
fn proxy_warning() -> Option<String> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let set = [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ]
    .into_iter()
    .find(|k| var(k).is_some())?;
    let no = var("NO_PROXY")
        .or_else(|| var("no_proxy"))
        .unwrap_or_default();
    let bypassed = no
        .split(',')
        .any(|h| matches!(h.trim(), "*" | "127.0.0.1" | "127.0.0.0/8"));
    (!bypassed).then(|| {
        format!(
            "warning: {set} is set and NO_PROXY does not list 127.0.0.1, so the demo's local calls may go through the proxy; if the demo fails, run it with NO_PROXY=127.0.0.1,localhost"
        )
    })
}

fn summary(out: &Out, reports: &[ScenarioReport], all: bool) {
    out.heading("Summary");
    let width = out.width();
    for (n, title) in SCENARIOS {
        let Some(r) = reports.iter().find(|r| r.number == n) else {
            if all {
                let first = format!("{n}. {title}");
                out.say(&format!("{first}  {}", out.yellow("not run")));
            }
            continue;
        };
        let (result, paint): (&str, fn(&Out, &str) -> String) = if r.passed() {
            ("PASS", Out::green)
        } else {
            ("FAIL", Out::red)
        };
        // The scenario's title, its result at the right margin.
        let first = format!("{n}. {title}");
        let gap = width
            .saturating_sub(first.chars().count() + result.len())
            .max(2);
        out.say(&format!(
            "{}{}{}",
            out.bold(&first),
            " ".repeat(gap),
            paint(out, result)
        ));
        // Each check: its result, then what was checked, wrapped under itself.
        for c in &r.checks {
            let (result, paint): (&str, fn(&Out, &str) -> String) = if c.ok {
                ("PASS", Out::green)
            } else {
                ("FAIL", Out::red)
            };
            let text = match &c.took {
                Some(t) => format!("{} (took {t})", c.what),
                None => c.what.clone(),
            };
            out.say_wrapped(&format!("   {}  ", paint(out, result)), 9, &text);
        }
    }
    let failed: usize = reports.iter().filter(|r| !r.passed()).count();
    out.say("");
    let run: Vec<String> = reports.iter().map(|r| r.number.to_string()).collect();
    if failed == 0 {
        out.say(&out.green(&format!(
            "All scenarios run ({}) passed in {:.1}s.",
            run.join(", "),
            out.elapsed_s()
        )));
    } else {
        out.say(&out.red(&format!(
            "{failed} of {} scenario(s) failed ({:.1}s). Run with LIFEHOOK_LOG=info for the controller's logs.",
            reports.len(),
            out.elapsed_s()
        )));
    }
}

/// Reads an example configuration, pointing it at the demo's queue and stub server.
pub fn example_config(
    file: &str,
    text: &str,
    queue_url: &str,
    stub_base: &str,
) -> anyhow::Result<lifehook_core::config::Config> {
    let text = substitute(text, queue_url, stub_base);
    lifehook_core::config::Config::from_toml(&text, std::path::Path::new(file)).map_err(
        |problems| {
            let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
            anyhow::anyhow!("{file} is invalid:\n{}", list.join("\n"))
        },
    )
}

/// The placeholder host of the stub server in `examples/demo-*.toml`.
pub const STUB_PLACEHOLDER: &str = "http://demo-stub.localhost:8761";

fn substitute(text: &str, queue_url: &str, stub_base: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let line = if line.trim_start().starts_with("queue_url") {
            format!("queue_url = \"{queue_url}\"")
        } else {
            line.replace(STUB_PLACEHOLDER, stub_base)
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// `40ms`, `2.6s`, `1m05s`.
pub fn human(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        0..1000 => format!("{ms}ms"),
        1000..60_000 => format!("{:.1}s", d.as_secs_f64()),
        _ => format!("{}m{:02}s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_names_the_iam_actions_its_handler_needs() {
        for (n, file, toml, mode) in EXAMPLES {
            let actions = iam_actions(file, toml, mode)
                .unwrap_or_else(|| panic!("scenario {n}: {file} gives no policy"));
            assert!(
                actions
                    .iter()
                    .any(|a| a == "autoscaling:CompleteLifecycleAction"),
                "scenario {n}: {actions:?}"
            );
        }
        let s3 = iam_actions(EXAMPLES[0].1, EXAMPLES[0].2, EXAMPLES[0].3).unwrap_or_default();
        assert!(s3.iter().any(|a| a == "s3:PutObject"), "{s3:?}");
    }

    #[test]
    fn scenarios_run_in_order_each_once() {
        assert_eq!(select(&[]), Ok(vec![1, 2, 3, 4, 5]));
        assert_eq!(select(&[3, 1, 3]), Ok(vec![1, 3]));
        assert_eq!(
            select(&[1, 9]),
            Err("there is no scenario 9: the reference scenarios are 1 to 5".into())
        );
    }

    #[test]
    fn example_files_parse_as_is_and_once_pointed_at_the_demo() {
        for (name, text) in [
            ("examples/demo-deregister.toml", scenarios::DEREGISTER_TOML),
            (
                "examples/demo-launch-gate.toml",
                scenarios::LAUNCH_GATE_TOML,
            ),
            ("examples/demo-ecs-drain.toml", ecs::ECS_DRAIN_TOML),
        ] {
            lifehook_core::config::Config::from_toml(text, std::path::Path::new(name))
                .unwrap_or_else(|p| panic!("{name}: {p:?}"));
            let c = example_config(
                name,
                text,
                "http://127.0.0.1:1/000000000000/q",
                "http://127.0.0.1:2",
            )
            .unwrap();
            assert_eq!(
                c.source.queue_url.as_deref(),
                Some("http://127.0.0.1:1/000000000000/q")
            );
            let rendered = substitute(text, "http://q", "http://127.0.0.1:2");
            assert!(!rendered.contains(STUB_PLACEHOLDER), "{name}");
            assert_eq!(
                rendered.contains("http://127.0.0.1:2/"),
                text.contains(STUB_PLACEHOLDER),
                "{name}"
            );
        }
    }
}
