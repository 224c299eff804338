//! `lifehook-bench`: benchmarks of the real `lifehook` binary against the sandbox.
//!
//! `lifehook-bench controller --actions N` starts the sandbox in this process (real clock,
//! loopback, ephemeral port), creates an SQS queue and Auto Scaling groups whose launch
//! hook targets it, starts `lifehook controller` (the binary next to this one, or
//! `--lifehook PATH`) with a one-step no-op pipeline, and measures:
//!
//! - **idle**: the controller's resident memory and CPU over `--idle-secs` with an empty
//!   queue (`lifehook-bench agent-idle` measures the agent's, see `agent_idle`);
//! - **burst**: N instances launched by one `SetDesiredCapacity`: throughput (actions/s,
//!   from the first action's start to the last completion) and wait-to-completion latency,
//!   which here includes queueing behind the other N − 1 actions;
//! - **paced**: N instances launched at `--rate` per second: latency at a sustainable
//!   rate, and that latency less the step's own time (joined per instance with the
//!   controller's per-action `action done` log lines, `steps_ms`);
//! - **API calls per action** by operation, from the sandbox's request counts
//!   (`GET /_sandbox/stats`) less the benchmark's own calls.
//!
//! Action start and completion times are the sandbox's (virtual milliseconds, which the
//! real clock keeps equal to real ones). Build the controller first:
//!
//! ```sh
//! cargo build --release -p lifehook -p lifehook-bench
//! target/release/lifehook-bench controller --actions 10000
//! ```

#![forbid(unsafe_code)]

mod agent_idle;
mod api;
mod procfs;
mod stats;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use lifehook_sandbox::{ClockMode, Sandbox, SandboxConfig};
use serde_json::{Value, json};

use api::{Api, Counts};
use stats::Dist;

/// The queue every hook of the benchmark delivers to.
const QUEUE: &str = "lifehook-bench";
/// How long the controller may take to start, and the queue to drain between phases.
pub(crate) const SETTLE_LIMIT: Duration = Duration::from_secs(30);
/// How often completion is checked (the figures come from the sandbox's records, not
/// from this poll).
const POLL: Duration = Duration::from_millis(20);
/// Arrival ticks of the paced phase.
const PACE_TICK: Duration = Duration::from_millis(5);
/// Aims of the controller benchmark issue.
const AIM_THROUGHPUT: f64 = 2_000.0;
const AIM_P99_OVERHEAD_MS: u64 = 50;
const AIM_CALLS_PER_ACTION: f64 = 3.0;
pub(crate) const AIM_IDLE_RSS_MIB: f64 = 15.0;

/// Benchmarks of lifehook against the in-process sandbox.
#[derive(Debug, Parser)]
#[command(name = "lifehook-bench", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The controller: idle footprint, throughput, wait-to-completion latency and API calls
    /// per action, with a one-step no-op pipeline.
    Controller(ControllerArgs),
    /// `lifehook agent` idling on one sandbox instance: resident memory and CPU.
    AgentIdle(agent_idle::AgentIdleArgs),
}

#[derive(Debug, clap::Args)]
struct ControllerArgs {
    /// Lifecycle actions per phase.
    #[arg(long, default_value_t = 1000)]
    actions: usize,
    /// Which phases to run after the idle one.
    #[arg(long, value_enum, default_value = "both")]
    arrival: Arrival,
    /// Arrivals per second in the paced phase.
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// The no-op step: `wait` of 0 s (no work at all); `exec` runs `true`; `http` GETs the
    /// sandbox's health endpoint.
    #[arg(long, value_enum, default_value = "wait")]
    step: StepKind,
    /// `[source] concurrency` of the controller (default: the configuration's default).
    #[arg(long)]
    concurrency: Option<u32>,
    /// Seconds of idle sampling before the load (0 skips it).
    #[arg(long, default_value_t = 10)]
    idle_secs: u64,
    /// `LIFEHOOK_LOG` of the controller. Step times are read from its `info` lines.
    #[arg(long, default_value = "info")]
    log: String,
    /// The `lifehook` binary (default: next to this one).
    #[arg(long)]
    lifehook: Option<PathBuf>,
    /// Give up a phase after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout_secs: u64,
    /// Print the results as JSON.
    #[arg(long)]
    json: bool,
    /// Keep the working directory (configuration and controller log) and print its path.
    #[arg(long)]
    keep: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Arrival {
    Burst,
    Paced,
    Both,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum StepKind {
    Wait,
    Exec,
    Http,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let r = match cli.command {
        Command::Controller(args) => controller(args).await,
        Command::AgentIdle(args) => agent_idle::run(args).await,
    };
    match r {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

/// The `lifehook` binary to run.
/// The sandbox the benchmarks run against: in this process, real clock, loopback.
pub(crate) async fn start_sandbox() -> anyhow::Result<lifehook_sandbox::RunningSandbox> {
    Ok(lifehook_sandbox::start(SandboxConfig {
        listen: "127.0.0.1:0".parse()?,
        clock: ClockMode::Real,
        ..Default::default()
    })
    .await?)
}

pub(crate) fn lifehook_binary(arg: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let path = match arg {
        Some(p) => p,
        None => std::env::current_exe()
            .context("locating this executable")?
            .with_file_name("lifehook"),
    };
    if !path.is_file() {
        bail!(
            "{} does not exist: build it first (`cargo build --release -p lifehook`) or pass --lifehook PATH",
            path.display()
        );
    }
    Ok(path)
}

/// A running `lifehook controller`.
struct ControllerProc {
    child: tokio::process::Child,
    pid: u32,
    admin: String,
    log: PathBuf,
}

impl ControllerProc {
    fn spawn(
        bin: &Path,
        endpoint: &str,
        config: &Path,
        dir: &Path,
        log_filter: &str,
    ) -> anyhow::Result<Self> {
        let admin = format!(
            "127.0.0.1:{}",
            std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port()
        );
        let log = dir.join("controller.log");
        let child = tokio::process::Command::new(bin)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", api::REGION)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", "/nonexistent/lifehook-bench-config")
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/lifehook-bench-credentials",
            )
            .env("AWS_ENDPOINT_URL", endpoint)
            .env("LIFEHOOK_LOG", log_filter)
            .args(["controller", "--config"])
            .arg(config)
            .args(["--admin-listen", &admin, "--grace-seconds", "5"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let pid = child.id().context("the controller exited at once")?;
        Ok(ControllerProc {
            child,
            pid,
            admin,
            log,
        })
    }

    async fn wait_ready(&mut self, http: &reqwest::Client) -> anyhow::Result<()> {
        let start = Instant::now();
        loop {
            if let Ok(r) = http
                .get(format!("http://{}/healthz", self.admin))
                .send()
                .await
                && r.status().is_success()
            {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "the controller exited with {status}; its log: {}",
                    self.log.display()
                );
            }
            if start.elapsed() > SETTLE_LIMIT {
                bail!("the controller was not ready after {SETTLE_LIMIT:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM, then SIGKILL after the grace period.
    async fn stop(mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

fn write_config(
    dir: &Path,
    queue_url: &str,
    args: &ControllerArgs,
    sandbox: &str,
) -> anyhow::Result<PathBuf> {
    let mut toml = format!("[source]\nqueue_url = \"{queue_url}\"\n");
    if let Some(c) = args.concurrency {
        toml.push_str(&format!("concurrency = {c}\n"));
    }
    toml.push_str("\n[[pipeline]]\nname = \"bench\"\n\n[[pipeline.step]]\n");
    match args.step {
        StepKind::Wait => toml.push_str("type = \"wait\"\nname = \"noop\"\n"),
        StepKind::Exec => toml.push_str("type = \"exec\"\nname = \"noop\"\ncommand = [\"true\"]\n"),
        StepKind::Http => toml.push_str(&format!(
            "type = \"http\"\nname = \"noop\"\nmethod = \"GET\"\nurl = \"{sandbox}/_sandbox/health\"\n"
        )),
    }
    let path = dir.join("controller.toml");
    std::fs::write(&path, toml)?;
    Ok(path)
}

fn step_label(k: StepKind) -> &'static str {
    match k {
        StepKind::Wait => "wait (0 s)",
        StepKind::Exec => "exec [\"true\"]",
        StepKind::Http => "http GET /_sandbox/health",
    }
}

/// Resolved actions of `group` so far (read in process: cheap, no serialisation).
fn resolved_count(sb: &Sandbox, group: &str) -> usize {
    let w = sb.lock();
    w.regions.get(api::REGION).map_or(0, |r| {
        r.autoscaling
            .resolved
            .iter()
            .filter(|a| a.group == group)
            .count()
    })
}

/// Waits until the queue is empty (visible and in flight).
async fn wait_drained(api: &mut Api, url: &str) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        if api.queue_depth(url).await? == (0, 0) {
            return Ok(());
        }
        if start.elapsed() > SETTLE_LIMIT {
            bail!("the queue was not drained after {SETTLE_LIMIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct Snapshot {
    counts: Counts,
    own: Counts,
    ctl: procfs::Sample,
    me: procfs::Sample,
    at: Instant,
}

async fn snapshot(api: &Api, pid: u32) -> anyhow::Result<Snapshot> {
    Ok(Snapshot {
        counts: api::counts(&api.stats().await?),
        own: api.own.clone(),
        ctl: procfs::sample(pid)?,
        me: procfs::sample_self()?,
        at: Instant::now(),
    })
}

/// What happened between two snapshots.
struct Window {
    calls: Counts,
    secs: f64,
    ctl_cpu_s: f64,
    ctl_child_cpu_s: f64,
    me_cpu_s: f64,
    ctl_after: procfs::Sample,
}

fn window(a: &Snapshot, b: &Snapshot, ticks: u64) -> Window {
    let t = ticks as f64;
    Window {
        calls: api::delta(&b.counts, &a.counts, &b.own, &a.own),
        secs: b.at.duration_since(a.at).as_secs_f64(),
        ctl_cpu_s: b.ctl.cpu_ticks.saturating_sub(a.ctl.cpu_ticks) as f64 / t,
        ctl_child_cpu_s: b.ctl.child_ticks.saturating_sub(a.ctl.child_ticks) as f64 / t,
        me_cpu_s: b.me.cpu_ticks.saturating_sub(a.me.cpu_ticks) as f64 / t,
        ctl_after: b.ctl,
    }
}

fn total(c: &Counts) -> u64 {
    c.values().flat_map(|m| m.values()).sum()
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

struct PhaseResult {
    name: &'static str,
    group: String,
    window: Window,
    /// Arrival phase duration (paced), seconds.
    arrivals_s: f64,
}

async fn run_phase(
    name: &'static str,
    args: &ControllerArgs,
    sb: &Sandbox,
    api: &mut Api,
    queue_url: &str,
    pid: u32,
    ticks: u64,
) -> anyhow::Result<PhaseResult> {
    let group = format!("bench-{name}");
    let n = args.actions;
    let before = snapshot(api, pid).await?;
    let start = Instant::now();
    let limit = Duration::from_secs(args.timeout_secs);
    if name == "burst" {
        api.set_desired(&group, n).await?;
    } else {
        let mut sent = 0usize;
        let mut tick = tokio::time::interval(PACE_TICK);
        while sent < n {
            tick.tick().await;
            let due = ((start.elapsed().as_secs_f64() * args.rate) as usize).clamp(1, n);
            if due > sent {
                api.set_desired(&group, due).await?;
                sent = due;
            }
        }
    }
    let arrivals_s = start.elapsed().as_secs_f64();
    loop {
        let done = resolved_count(sb, &group);
        if done >= n {
            break;
        }
        if start.elapsed() > limit {
            bail!("phase {name}: only {done} of {n} actions resolved after {limit:?}");
        }
        tokio::time::sleep(POLL).await;
    }
    // Let the last deletes land before counting calls.
    wait_drained(api, queue_url).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = snapshot(api, pid).await?;
    Ok(PhaseResult {
        name,
        group,
        window: window(&before, &after, ticks),
        arrivals_s,
    })
}

async fn controller(args: ControllerArgs) -> anyhow::Result<()> {
    if args.actions == 0 || args.actions > 50_000 {
        bail!("--actions must be between 1 and 50000 (the sandbox's largest group)");
    }
    if !args.rate.is_finite() || args.rate <= 0.0 {
        bail!("--rate must be positive");
    }
    let bin = lifehook_binary(args.lifehook.clone())?;
    let ticks = procfs::clock_ticks();
    let load_before = procfs::load_average();
    let dir = tempfile::Builder::new()
        .prefix("lifehook-bench-")
        .tempdir()?;

    let running = start_sandbox().await?;
    let sb: Arc<Sandbox> = running.sandbox.clone();
    let endpoint = running.endpoint();
    let mut api = Api::new(&endpoint);
    let (queue_url, queue_arn) = api.create_queue(QUEUE).await?;
    let phases: &[&'static str] = match args.arrival {
        Arrival::Burst => &["burst"],
        Arrival::Paced => &["paced"],
        Arrival::Both => &["burst", "paced"],
    };
    for p in phases {
        api.create_group(&format!("bench-{p}"), args.actions, &queue_arn)
            .await?;
    }
    let config = write_config(dir.path(), &queue_url, &args, &endpoint)?;
    let mut ctl = ControllerProc::spawn(&bin, &endpoint, &config, dir.path(), &args.log)?;
    let http = reqwest::Client::new();
    ctl.wait_ready(&http).await?;
    // The hooks' test notifications are consumed first.
    wait_drained(&mut api, &queue_url).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;

    let idle = if args.idle_secs > 0 {
        let a = snapshot(&api, ctl.pid).await?;
        let mut rss = Vec::new();
        for _ in 0..args.idle_secs {
            tokio::time::sleep(Duration::from_secs(1)).await;
            rss.push(procfs::sample(ctl.pid)?.rss_kib);
        }
        let b = snapshot(&api, ctl.pid).await?;
        Some((window(&a, &b, ticks), rss))
    } else {
        None
    };

    let mut results = Vec::new();
    for p in phases {
        results.push(run_phase(p, &args, &sb, &mut api, &queue_url, ctl.pid, ticks).await?);
    }
    let load_after = procfs::load_average();
    let final_stats = api.stats().await?;
    let metrics = http
        .get(format!("http://{}/metrics", ctl.admin))
        .send()
        .await
        .ok();
    let metrics = match metrics {
        Some(r) => r.text().await.unwrap_or_default(),
        None => String::new(),
    };
    let log_path = ctl.log.clone();
    ctl.stop().await;
    running.stop().await;
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let steps = stats::step_times(&log);

    let report = Report {
        args: &args,
        bin: &bin,
        idle: idle.as_ref(),
        results: &results,
        stats: &final_stats,
        steps: &steps,
        metrics: &metrics,
        load: (load_before, load_after),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report.json())?);
    } else {
        report.print();
    }
    if args.keep {
        let kept = dir.keep();
        eprintln!("kept {}", kept.display());
    }
    Ok(())
}

struct Report<'a> {
    args: &'a ControllerArgs,
    bin: &'a Path,
    idle: Option<&'a (Window, Vec<u64>)>,
    results: &'a [PhaseResult],
    stats: &'a Value,
    steps: &'a HashMap<String, u64>,
    metrics: &'a str,
    load: (String, String),
}

/// The figures of one phase.
struct PhaseFigures {
    actions: usize,
    not_continued: usize,
    span_ms: u64,
    throughput: f64,
    latency: Dist,
    step: Dist,
    overhead: Dist,
    calls: u64,
}

impl Report<'_> {
    fn figures(&self, p: &PhaseResult) -> PhaseFigures {
        let empty = Vec::new();
        let actions: Vec<&Value> = self.stats["resolved_actions"]
            .as_array()
            .unwrap_or(&empty)
            .iter()
            .filter(|a| a["group"].as_str() == Some(p.group.as_str()))
            .collect();
        let ms = |a: &Value, k: &str| a[k].as_u64().unwrap_or(0);
        let first = actions
            .iter()
            .map(|a| ms(a, "started_ms"))
            .min()
            .unwrap_or(0);
        let last = actions
            .iter()
            .map(|a| ms(a, "resolved_ms"))
            .max()
            .unwrap_or(0);
        let span_ms = last.saturating_sub(first);
        let latency: Vec<u64> = actions
            .iter()
            .map(|a| ms(a, "resolved_ms").saturating_sub(ms(a, "started_ms")))
            .collect();
        let mut step = Vec::new();
        let mut overhead = Vec::new();
        for a in &actions {
            if let Some(&s) = a["instance"].as_str().and_then(|i| self.steps.get(i)) {
                step.push(s);
                overhead.push(
                    ms(a, "resolved_ms")
                        .saturating_sub(ms(a, "started_ms"))
                        .saturating_sub(s),
                );
            }
        }
        PhaseFigures {
            actions: actions.len(),
            not_continued: actions
                .iter()
                .filter(|a| a["how"] != "completed" || a["result"] != "CONTINUE")
                .count(),
            span_ms,
            throughput: actions.len() as f64 / (span_ms.max(1) as f64 / 1000.0),
            latency: Dist::of(latency),
            step: Dist::of(step),
            overhead: Dist::of(overhead),
            calls: total(&p.window.calls),
        }
    }

    /// Mean step time from the controller's own histogram (`_sum / _count`), ms.
    fn metric_mean_step_ms(&self) -> Option<f64> {
        let get = |name: &str| -> f64 {
            self.metrics
                .lines()
                .filter(|l| l.starts_with(name))
                .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
                .sum()
        };
        let count = get("lifehook_step_duration_seconds_count");
        (count > 0.0).then(|| get("lifehook_step_duration_seconds_sum") / count * 1000.0)
    }

    fn json(&self) -> Value {
        let idle = self.idle.map(|(w, rss)| {
            json!({
                "seconds": w.secs,
                "rss_mib_mean": mib(rss.iter().sum::<u64>() / rss.len().max(1) as u64),
                "rss_mib_max": mib(rss.iter().copied().max().unwrap_or(0)),
                "cpu_percent_of_a_core": w.ctl_cpu_s / w.secs * 100.0,
                "api_calls": w.calls,
            })
        });
        let phases: Vec<Value> = self
            .results
            .iter()
            .map(|p| {
                let f = self.figures(p);
                json!({
                    "phase": p.name,
                    "actions": f.actions,
                    "not_continued": f.not_continued,
                    "arrivals_s": p.arrivals_s,
                    "first_start_to_last_completion_ms": f.span_ms,
                    "throughput_actions_per_s": f.throughput,
                    "latency_ms": f.latency.json(),
                    "step_ms": f.step.json(),
                    "latency_less_step_ms": f.overhead.json(),
                    "api_calls": p.window.calls,
                    "api_calls_per_action": f.calls as f64 / f.actions.max(1) as f64,
                    "controller_cpu_s": p.window.ctl_cpu_s,
                    "controller_children_cpu_s": p.window.ctl_child_cpu_s,
                    "sandbox_and_driver_cpu_s": p.window.me_cpu_s,
                    "controller_rss_mib_after": mib(p.window.ctl_after.rss_kib),
                    "controller_peak_rss_mib": mib(p.window.ctl_after.hwm_kib),
                })
            })
            .collect();
        json!({
            "actions": self.args.actions,
            "step": step_label(self.args.step),
            "concurrency": self.args.concurrency,
            "paced_rate": self.args.rate,
            "controller_log": self.args.log,
            "lifehook": self.bin.display().to_string(),
            "load_average_before": self.load.0,
            "load_average_after": self.load.1,
            "idle": idle,
            "phases": phases,
            "mean_step_ms_from_metrics": self.metric_mean_step_ms(),
        })
    }

    fn print(&self) {
        let a = self.args;
        println!(
            "lifehook controller benchmark: {} actions per phase, step {}, concurrency {}, LIFEHOOK_LOG={}",
            a.actions,
            step_label(a.step),
            a.concurrency
                .map_or("default".to_owned(), |c| c.to_string()),
            a.log
        );
        println!(
            "load average before {} / after {} ({} cores)",
            self.load.0,
            self.load.1,
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        if let Some((w, rss)) = self.idle {
            let calls: Vec<String> = flat(&w.calls).map(|(k, n)| format!("{k} {n}")).collect();
            println!(
                "\ncontroller idle, {:.0} s with an empty queue: RSS mean {:.1} MiB, max {:.1} MiB; CPU {:.2} % of a core; API calls: {}",
                w.secs,
                mib(rss.iter().sum::<u64>() / rss.len().max(1) as u64),
                mib(rss.iter().copied().max().unwrap_or(0)),
                w.ctl_cpu_s / w.secs * 100.0,
                if calls.is_empty() {
                    "none".into()
                } else {
                    calls.join(", ")
                }
            );
        }
        println!();
        println!(
            "{:<6} {:>7} {:>9} {:>10}  {:<26} {:<22} {:<24} {:>9}",
            "phase",
            "actions",
            "span s",
            "actions/s",
            "latency ms p50/p90/p99/max",
            "step ms p50/p90/p99/max",
            "latency − step p50/p90/p99/max",
            "calls/act"
        );
        let mut figs = Vec::new();
        for p in self.results {
            let f = self.figures(p);
            println!(
                "{:<6} {:>7} {:>9.3} {:>10.0}  {:<26} {:<22} {:<24} {:>9.3}",
                p.name,
                f.actions,
                f.span_ms as f64 / 1000.0,
                f.throughput,
                f.latency.row(),
                f.step.row(),
                f.overhead.row(),
                f.calls as f64 / f.actions.max(1) as f64
            );
            figs.push((p, f));
        }
        for (p, f) in &figs {
            let per: Vec<String> = flat(&p.window.calls)
                .map(|(k, n)| format!("{k} {:.3}", n as f64 / f.actions.max(1) as f64))
                .collect();
            println!("\n{} — API calls per action: {}", p.name, per.join(", "));
            println!(
                "{} — controller CPU {:.2} s (+ {:.2} s in its step processes), sandbox + driver CPU {:.2} s, over {:.2} s; controller RSS after {:.1} MiB, peak {:.1} MiB{}",
                p.name,
                p.window.ctl_cpu_s,
                p.window.ctl_child_cpu_s,
                p.window.me_cpu_s,
                p.window.secs,
                mib(p.window.ctl_after.rss_kib),
                mib(p.window.ctl_after.hwm_kib),
                if f.not_continued > 0 {
                    format!("; {} actions NOT completed with CONTINUE", f.not_continued)
                } else {
                    String::new()
                }
            );
            if p.name == "paced" {
                println!(
                    "paced — arrivals took {:.2} s for {:.0}/s requested",
                    p.arrivals_s, a.rate
                );
            }
        }
        if let Some(m) = self.metric_mean_step_ms() {
            println!("\nmean step time from the controller's histogram: {m:.2} ms");
        }
        println!("\naims:");
        if let Some((_, f)) = figs.iter().find(|(p, _)| p.name == "burst") {
            aim(
                &format!("throughput ≥ {AIM_THROUGHPUT:.0} actions/s (burst)"),
                f.throughput >= AIM_THROUGHPUT,
                &format!("{:.0}", f.throughput),
            );
        }
        if let Some((_, f)) = figs.iter().find(|(p, _)| p.name == "paced") {
            aim(
                &format!("p99 latency − step < {AIM_P99_OVERHEAD_MS} ms (paced)"),
                f.overhead.n > 0 && f.overhead.p99 < AIM_P99_OVERHEAD_MS,
                &format!("{} ms", f.overhead.p99),
            );
        }
        for (p, f) in &figs {
            let per = f.calls as f64 / f.actions.max(1) as f64;
            aim(
                &format!(
                    "≤ {AIM_CALLS_PER_ACTION:.0} API calls per action ({})",
                    p.name
                ),
                per <= AIM_CALLS_PER_ACTION,
                &format!("{per:.3}"),
            );
        }
        println!(
            "  (the aim of idle RSS < {AIM_IDLE_RSS_MIB:.0} MiB is the agent's: `lifehook-bench agent-idle`)"
        );
    }
}

fn aim(what: &str, met: bool, value: &str) {
    println!("  [{}] {what}: {value}", if met { "met" } else { "MISSED" });
}

/// `service:Operation` → count, in order.
fn flat(c: &Counts) -> impl Iterator<Item = (String, u64)> + '_ {
    c.iter()
        .flat_map(|(s, ops)| ops.iter().map(move |(o, &n)| (format!("{s}:{o}"), n)))
        .collect::<BTreeMap<_, _>>()
        .into_iter()
}
