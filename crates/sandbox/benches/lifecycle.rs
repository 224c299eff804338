//! Benchmark: N instances (default 10,000) through launch and termination hooks, every
//! action completed by a client over loopback HTTP with the Query protocol, as an SDK
//! would send it. Reports lifecycle actions per second and the process's peak memory.
//!
//! Run: `cargo bench -p lifehook-sandbox --bench lifecycle` (env `LIFEHOOK_BENCH_INSTANCES`,
//! `LIFEHOOK_BENCH_CONCURRENCY`). The sandbox runs in this process on a manual clock, so
//! the figures are the engine's and the HTTP stack's, not a timer's.

// A benchmark stops at the first failure, like a test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use lifehook_sandbox::{ClockMode, SandboxConfig};

const AUTH: &str = "AWS4-HMAC-SHA256 Credential=bench/20261122/us-east-1/autoscaling/aws4_request, SignedHeaders=host, Signature=0";

struct Client {
    http: reqwest::Client,
    endpoint: String,
}

impl Client {
    async fn call(&self, body: String) -> String {
        let r = self
            .http
            .post(&self.endpoint)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("authorization", AUTH)
            .body(body)
            .send()
            .await
            .expect("request");
        let status = r.status();
        let text = r.text().await.expect("body");
        assert!(status.is_success(), "{status}: {text}");
        text
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn instance_ids(xml: &str) -> Vec<String> {
    xml.split("<InstanceId>")
        .skip(1)
        .filter_map(|s| s.split_once("</InstanceId>").map(|(id, _)| id.to_owned()))
        .collect()
}

fn count_state(xml: &str, state: &str) -> usize {
    xml.matches(&format!("<LifecycleState>{state}</LifecycleState>"))
        .count()
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// Wall time of a phase and the latency of each of its requests (sorted).
struct Phase {
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Phase {
    fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let k = ((self.latencies.len() - 1) as f64 * p).round() as usize;
        self.latencies[k.min(self.latencies.len() - 1)]
    }

    fn latency_line(&self) -> String {
        format!(
            "request latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            self.percentile(0.50).as_secs_f64() * 1e3,
            self.percentile(0.99).as_secs_f64() * 1e3,
            self.latencies
                .last()
                .copied()
                .unwrap_or_default()
                .as_secs_f64()
                * 1e3
        )
    }
}

async fn complete_all(
    client: &Arc<Client>,
    ids: &[String],
    hook: &str,
    concurrency: usize,
) -> Phase {
    let start = Instant::now();
    let sem = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut tasks = Vec::with_capacity(ids.len());
    for id in ids {
        let permit = sem.clone().acquire_owned().await.expect("semaphore");
        let client = client.clone();
        let body = format!(
            "Action=CompleteLifecycleAction&Version=2011-01-01&AutoScalingGroupName=bench&LifecycleHookName={hook}&InstanceId={id}&LifecycleActionResult=CONTINUE"
        );
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            client.call(body).await;
            let took = t.elapsed();
            drop(permit);
            took
        }));
    }
    let mut latencies = Vec::with_capacity(tasks.len());
    for t in tasks {
        latencies.push(t.await.expect("task"));
    }
    let elapsed = start.elapsed();
    latencies.sort();
    Phase { elapsed, latencies }
}

async fn describe(client: &Client) -> String {
    client
        .call("Action=DescribeAutoScalingGroups&Version=2011-01-01&AutoScalingGroupNames.member.1=bench".into())
        .await
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let n = env_usize("LIFEHOOK_BENCH_INSTANCES", 10_000);
    let concurrency = env_usize("LIFEHOOK_BENCH_CONCURRENCY", 64);
    let running = lifehook_sandbox::start(SandboxConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        clock: ClockMode::Manual,
        ..Default::default()
    })
    .await
    .expect("start sandbox");
    let client = Arc::new(Client {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(concurrency)
            .build()
            .expect("client"),
        endpoint: running.endpoint(),
    });

    client
        .call(format!(
            "Action=CreateAutoScalingGroup&Version=2011-01-01&AutoScalingGroupName=bench&MinSize=0&MaxSize={n}&DesiredCapacity=0\
             &LaunchTemplate.LaunchTemplateName=lt-bench&LaunchTemplate.Version=%24Latest&AvailabilityZones.member.1=us-east-1a\
             &AvailabilityZones.member.2=us-east-1b\
             &LifecycleHookSpecificationList.member.1.LifecycleHookName=launch\
             &LifecycleHookSpecificationList.member.1.LifecycleTransition=autoscaling%3AEC2_INSTANCE_LAUNCHING\
             &LifecycleHookSpecificationList.member.1.HeartbeatTimeout=3600\
             &LifecycleHookSpecificationList.member.2.LifecycleHookName=terminate\
             &LifecycleHookSpecificationList.member.2.LifecycleTransition=autoscaling%3AEC2_INSTANCE_TERMINATING\
             &LifecycleHookSpecificationList.member.2.HeartbeatTimeout=3600"
        ))
        .await;

    let total = Instant::now();
    let t = Instant::now();
    client
        .call(format!("Action=SetDesiredCapacity&Version=2011-01-01&AutoScalingGroupName=bench&DesiredCapacity={n}"))
        .await;
    let scale_out = t.elapsed();
    let xml = describe(&client).await;
    let ids = instance_ids(&xml);
    assert_eq!(ids.len(), n, "instances launched");
    assert_eq!(
        count_state(&xml, "Pending:Wait"),
        n,
        "all waiting on the launch hook"
    );
    let launch = complete_all(&client, &ids, "launch", concurrency).await;
    let xml = describe(&client).await;
    assert_eq!(count_state(&xml, "InService"), n, "all in service");

    let t = Instant::now();
    client.call("Action=SetDesiredCapacity&Version=2011-01-01&AutoScalingGroupName=bench&DesiredCapacity=0".into()).await;
    let scale_in = t.elapsed();
    let xml = describe(&client).await;
    assert_eq!(
        count_state(&xml, "Terminating:Wait"),
        n,
        "all waiting on the terminate hook"
    );
    let terminate = complete_all(&client, &ids, "terminate", concurrency).await;
    let xml = describe(&client).await;
    assert_eq!(
        count_state(&xml, "InService") + count_state(&xml, "Terminating:Wait"),
        0,
        "all gone"
    );
    let elapsed = total.elapsed();

    let actions = 2 * n;
    println!(
        "lifecycle benchmark: {n} instances, {actions} lifecycle actions, client concurrency {concurrency}"
    );
    println!(
        "  scale out to {n} (SetDesiredCapacity): {:>8.1} ms",
        scale_out.as_secs_f64() * 1e3
    );
    println!(
        "  complete {n} launch actions:        {:>8.1} ms  ({:.0} actions/s)",
        launch.elapsed.as_secs_f64() * 1e3,
        n as f64 / launch.elapsed.as_secs_f64()
    );
    println!("    {}", launch.latency_line());
    println!(
        "  scale in to 0 (SetDesiredCapacity):  {:>8.1} ms",
        scale_in.as_secs_f64() * 1e3
    );
    println!(
        "  complete {n} terminate actions:     {:>8.1} ms  ({:.0} actions/s)",
        terminate.elapsed.as_secs_f64() * 1e3,
        n as f64 / terminate.elapsed.as_secs_f64()
    );
    println!("    {}", terminate.latency_line());
    println!(
        "  end to end: {:.2} s, {:.0} lifecycle actions/s (incl. scaling and describes)",
        elapsed.as_secs_f64(),
        actions as f64 / elapsed.as_secs_f64()
    );
    println!(
        "  peak resident memory (sandbox + client, VmHWM): {:.1} MiB",
        peak_rss_mib()
    );
    running.stop().await;
}
