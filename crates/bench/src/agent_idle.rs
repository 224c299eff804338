//! `lifehook-bench agent-idle`: the idle footprint of `lifehook agent` on one sandbox
//! instance.
//!
//! The sandbox runs in this process (real clock). One group without hooks is scaled to one
//! instance, and an SNS topic is created; `lifehook agent` starts for that instance (its
//! metadata service is the sandbox's `/_imds/<instance-id>/`) with `[source] topic_arn`
//! and a one-step `wait` pipeline, so it discovers its identity, creates and subscribes its
//! inbox queue, then long-polls it. Once its first `ReceiveMessage` arrives (and a settle
//! second), the benchmark samples its `VmRSS` every second and its CPU time over
//! `--idle-secs`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;

use crate::api::{self, Api};
use crate::{AIM_IDLE_RSS_MIB, SETTLE_LIMIT, lifehook_binary, procfs, start_sandbox};

#[derive(Debug, clap::Args)]
pub(crate) struct AgentIdleArgs {
    /// Seconds of idle sampling: the default spans three of the agent's 20 s long polls, so
    /// the code its idle loop runs again is resident in every sample.
    #[arg(long, default_value_t = 60)]
    idle_secs: u64,
    /// `LIFEHOOK_LOG` of the agent.
    #[arg(long, default_value = "info")]
    log: String,
    /// The `lifehook` binary (default: next to this one).
    #[arg(long)]
    lifehook: Option<PathBuf>,
    /// Print the results as JSON.
    #[arg(long)]
    json: bool,
    /// Keep the working directory (configuration, state and agent log) and print its path.
    #[arg(long)]
    keep: bool,
}

const GROUP: &str = "bench-agent";
const TOPIC: &str = "lifehook-bench-agent";

pub(crate) async fn run(args: AgentIdleArgs) -> anyhow::Result<()> {
    if args.idle_secs == 0 {
        bail!("--idle-secs must be at least 1");
    }
    let bin = lifehook_binary(args.lifehook.clone())?;
    let ticks = procfs::clock_ticks();
    let load_before = procfs::load_average();
    let dir = tempfile::Builder::new()
        .prefix("lifehook-bench-agent-")
        .tempdir()?;
    let running = start_sandbox().await?;
    let sb = running.sandbox.clone();
    let endpoint = running.endpoint();
    let mut api = Api::new(&endpoint);
    let topic_arn = api.create_topic(TOPIC).await?;
    api.create_plain_group(GROUP, 1).await?;
    api.set_desired(GROUP, 1).await?;
    let start = Instant::now();
    let instance = loop {
        let id = {
            let w = sb.lock();
            w.regions.get(api::REGION).and_then(|r| {
                r.autoscaling
                    .instances
                    .values()
                    .find(|i| i.group == GROUP && i.in_group)
                    .map(|i| i.id.clone())
            })
        };
        if let Some(id) = id {
            break id;
        }
        if start.elapsed() > SETTLE_LIMIT {
            bail!("no instance in {GROUP} after {SETTLE_LIMIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "[source]\ntopic_arn = \"{topic_arn}\"\n\n[[pipeline]]\nname = \"bench\"\n\n[[pipeline.step]]\ntype = \"wait\"\nname = \"noop\"\n"
        ),
    )?;
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state)?;
    let log = dir.path().join("agent.log");
    let receives_before = receives(&api).await?;
    let mut child = tokio::process::Command::new(&bin)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", api::REGION)
        .env("AWS_CONFIG_FILE", "/nonexistent/lifehook-bench-config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/lifehook-bench-credentials",
        )
        .env("AWS_ENDPOINT_URL", &endpoint)
        .env(
            "AWS_EC2_METADATA_SERVICE_ENDPOINT",
            format!("{endpoint}/_imds/{instance}/"),
        )
        .env("LIFEHOOK_LOG", &args.log)
        .args(["agent", "--config"])
        .arg(&config)
        .arg("--state-dir")
        .arg(&state)
        .args(["--grace-seconds", "5"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let pid = child.id().context("the agent exited at once")?;

    // Ready once it long-polls its inbox.
    let start = Instant::now();
    loop {
        if receives(&api).await? > receives_before {
            break;
        }
        if let Some(status) = child.try_wait()? {
            bail!(
                "the agent exited with {status}: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        if start.elapsed() > SETTLE_LIMIT {
            bail!("the agent did not poll its inbox within {SETTLE_LIMIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let startup = start.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;

    let calls_a = receives(&api).await?;
    let a = procfs::sample(pid)?;
    let t0 = Instant::now();
    let mut rss = vec![a.rss_kib];
    for _ in 0..args.idle_secs {
        tokio::time::sleep(Duration::from_secs(1)).await;
        rss.push(procfs::sample(pid)?.rss_kib);
    }
    let b = procfs::sample(pid)?;
    let secs = t0.elapsed().as_secs_f64();
    let calls_b = receives(&api).await?;
    let threads = procfs::threads(pid)?;
    let load_after = procfs::load_average();

    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    if tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }

    let mib = |k: u64| k as f64 / 1024.0;
    let rss_max = rss.iter().copied().max().unwrap_or(0);
    let rss_mean = rss.iter().sum::<u64>() as f64 / rss.len().max(1) as f64;
    let cpu_s = b.cpu_ticks.saturating_sub(a.cpu_ticks) as f64 / ticks as f64;
    let cpu_pct = cpu_s / secs * 100.0;
    let met = mib(rss_max) < AIM_IDLE_RSS_MIB;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "instance": instance,
                "startup_to_first_receive_s": startup.as_secs_f64(),
                "idle_secs": secs,
                "rss_mib": {"mean": mib(rss_mean as u64), "max": mib(rss_max)},
                "hwm_mib": mib(b.hwm_kib),
                "rss_anon_mib": mib(b.rss_anon_kib),
                "rss_file_mib": mib(b.rss_file_kib),
                "cpu_s": cpu_s,
                "cpu_percent_of_a_core": cpu_pct,
                "threads": threads,
                "receive_calls_while_idle": calls_b.saturating_sub(calls_a),
                "load_average": {"before": load_before, "after": load_after},
                "aim_idle_rss_mib": AIM_IDLE_RSS_MIB,
                "aim_met": met,
            }))?
        );
    } else {
        println!(
            "lifehook agent idle benchmark: instance {instance}, LIFEHOOK_LOG={}",
            args.log
        );
        println!("load average before / after: {load_before} / {load_after}");
        println!(
            "startup to first ReceiveMessage: {:.2} s",
            startup.as_secs_f64()
        );
        println!(
            "idle {secs:.1} s: VmRSS mean {:.1} MiB, max {:.1} MiB (at the end: RssAnon {:.1} MiB, RssFile {:.1} MiB); VmHWM {:.1} MiB; CPU {cpu_s:.2} s ({cpu_pct:.2} % of a core); {threads} threads; {} ReceiveMessage calls",
            mib(rss_mean as u64),
            mib(rss_max),
            mib(b.rss_anon_kib),
            mib(b.rss_file_kib),
            mib(b.hwm_kib),
            calls_b.saturating_sub(calls_a)
        );
        println!(
            "aim: idle RSS < {AIM_IDLE_RSS_MIB} MiB: {}",
            if met { "met" } else { "MISSED" }
        );
    }
    if args.keep {
        let kept = dir.keep();
        eprintln!("kept {}", kept.display());
    }
    running.stop().await;
    Ok(())
}

/// `ReceiveMessage` calls the sandbox has answered (the agent's long polls).
async fn receives(api: &Api) -> anyhow::Result<u64> {
    let c = api::counts(&api.stats().await?);
    Ok(c.get("sqs")
        .and_then(|ops| ops.get("ReceiveMessage"))
        .copied()
        .unwrap_or(0))
}
