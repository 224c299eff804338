//! Scenario 4 of the demo: drain an ECS container instance before its EC2 instance
//! terminates, with the fleet controller and `examples/demo-ecs-drain.toml`.
//!
//! ECS in the sandbox schedules on its virtual clock (a task takes 2 s to start and 8 s to
//! stop); the demo fast-forwards that clock while the drain runs so that the scenario takes
//! seconds. The hook's heartbeat timeout is long enough for the fast-forward.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use aws_sdk_ecs::types::{ContainerDefinition, SchedulingStrategy, Task};

use super::scenarios::{
    Env, TERMINATING, activity_took, check, create_group, create_queue, hook, report, set_desired,
    start_controller, stop_controller, termination_activity, until,
};
use super::{Check, ScenarioReport, example_config};

pub(crate) const ECS_DRAIN_TOML: &str = include_str!("../../../examples/demo-ecs-drain.toml");
const GROUP: &str = "demo-ecs";
const CLUSTER: &str = "demo";
/// Virtual milliseconds the demo moves the sandbox clock per tick while ECS works.
const FAST_FORWARD_MS: u64 = 1000;
const TICK: Duration = Duration::from_millis(150);
const LIMIT: Duration = Duration::from_secs(25);

pub(crate) async fn ecs_drain(env: &Env) -> ScenarioReport {
    let out = &env.out;
    out.heading("Scenario 4: drain an ECS container instance before termination");
    out.say("  Group demo-ecs (2 instances) hosts ECS cluster demo: service web (2 tasks, spread) and daemon service log-router (one task per instance). Its terminate hook notifies an SQS queue; the controller (examples/demo-ecs-drain.toml) drains the instance and completes only when nothing runs on it. ECS time is fast-forwarded 6x.");
    let mut checks = Vec::new();
    if let Err(e) = body(env, &mut checks).await {
        checks.push(check(format!("scenario stopped: {e:#}"), false, None));
    }
    report(4, checks)
}

/// The instance's tasks that are not STOPPED, by name (`web`, `log-router`).
fn live_by_instance(
    tasks: &[Task],
    instances: &BTreeMap<String, String>,
) -> BTreeMap<String, Vec<String>> {
    let mut by: BTreeMap<String, Vec<String>> = instances
        .values()
        .map(|id| (id.clone(), Vec::new()))
        .collect();
    for t in tasks {
        if t.last_status() == Some("STOPPED") {
            continue;
        }
        let Some(id) = t.container_instance_arn().and_then(|a| instances.get(a)) else {
            continue;
        };
        let name = t
            .group()
            .and_then(|g| g.strip_prefix("service:"))
            .unwrap_or("standalone")
            .to_owned();
        by.entry(id.clone()).or_default().push(name);
    }
    for v in by.values_mut() {
        v.sort();
    }
    by
}

fn show(by: &BTreeMap<String, Vec<String>>) -> String {
    by.iter()
        .map(|(id, v)| {
            if v.is_empty() {
                format!("{id}: nothing")
            } else {
                format!("{id}: {}", v.join(", "))
            }
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Every task of the cluster, running or stopped.
async fn all_tasks(env: &Env) -> anyhow::Result<Vec<Task>> {
    let ecs = env.clients.ecs();
    let mut arns = Vec::new();
    for status in [
        aws_sdk_ecs::types::DesiredStatus::Running,
        aws_sdk_ecs::types::DesiredStatus::Stopped,
    ] {
        let mut next = None;
        loop {
            let page = ecs
                .list_tasks()
                .cluster(CLUSTER)
                .desired_status(status.clone())
                .set_next_token(next)
                .send()
                .await
                .context("ListTasks")?;
            arns.extend(page.task_arns().iter().cloned());
            next = page.next_token().map(str::to_owned);
            if next.is_none() {
                break;
            }
        }
    }
    let mut tasks = Vec::new();
    for chunk in arns.chunks(100) {
        let d = ecs
            .describe_tasks()
            .cluster(CLUSTER)
            .set_tasks(Some(chunk.to_vec()))
            .send()
            .await
            .context("DescribeTasks")?;
        tasks.extend(d.tasks().iter().cloned());
    }
    Ok(tasks)
}

async fn body(env: &Env, checks: &mut Vec<Check>) -> anyhow::Result<()> {
    let out = &env.out;
    let (url, arn) = create_queue(env, "lifehook-demo-ecs-drain").await?;
    let config = example_config(
        "examples/demo-ecs-drain.toml",
        ECS_DRAIN_TOML,
        &url,
        &env.stub.base,
    )?;
    out.action("create group demo-ecs (desired 2) with terminate hook drain (120s, → SQS)");
    create_group(
        env,
        GROUP,
        2,
        vec![hook(
            "drain",
            TERMINATING,
            120,
            "CONTINUE",
            Some(&arn),
            None,
        )],
    )
    .await?;
    let serving = until(env, "2 demo-ecs instances InService", |s| {
        let v = s.in_state(GROUP, "InService");
        (v.len() == 2).then_some(v)
    })
    .await?;

    // The ECS agent of each instance registers it with the cluster.
    let mut instances = BTreeMap::new();
    for id in &serving {
        let r: serde_json::Value = env
            .http
            .post(format!("{}/_sandbox/ecs/container-instances", env.endpoint))
            .json(&serde_json::json!({"cluster": CLUSTER, "ec2_instance_id": id}))
            .send()
            .await
            .context("registering a container instance")?
            .json()
            .await
            .context("registering a container instance")?;
        let ci = r["containerInstance"]["containerInstanceArn"]
            .as_str()
            .ok_or_else(|| anyhow!("the sandbox answered no container instance: {r}"))?;
        instances.insert(ci.to_owned(), id.clone());
    }
    let ecs = env.clients.ecs();
    ecs.register_task_definition()
        .family("web")
        .container_definitions(
            ContainerDefinition::builder()
                .name("web")
                .image("nginx")
                .memory(128)
                .build(),
        )
        .send()
        .await
        .context("RegisterTaskDefinition")?;
    ecs.create_service()
        .cluster(CLUSTER)
        .service_name("web")
        .task_definition("web")
        .desired_count(2)
        .send()
        .await
        .context("CreateService web")?;
    ecs.create_service()
        .cluster(CLUSTER)
        .service_name("log-router")
        .task_definition("web")
        .scheduling_strategy(SchedulingStrategy::Daemon)
        .send()
        .await
        .context("CreateService log-router")?;
    // Let the tasks start (2 s of ECS time).
    env.sandbox.advance(2500);
    let before = live_by_instance(&all_tasks(env).await?, &instances);
    out.action(&format!(
        "ECS cluster demo: service web ×2, daemon log-router; running {}",
        show(&before)
    ));

    let ctl = start_controller(env, config)?;
    out.action("scale demo-ecs in from 2 to 1");
    let started = Instant::now();
    set_desired(env, GROUP, 1).await?;
    // Fast-forward ECS while the drain runs, showing the tasks as they move.
    let mut last = before.clone();
    let mut victim = None;
    let mut stopped_last_ok = true;
    while started.elapsed() < LIMIT {
        tokio::time::sleep(TICK).await;
        env.sandbox.advance(FAST_FORWARD_MS);
        let now = live_by_instance(&all_tasks(env).await?, &instances);
        if now != last {
            out.event("ecs", &show(&now));
            last = now;
        }
        let gone = env.watch.with(|s| {
            serving
                .iter()
                .find(|id| s.get(id).is_some_and(|i| i.state == "Terminated"))
                .cloned()
        });
        if let Some(v) = gone {
            victim = Some(v);
            break;
        }
    }
    let summary = stop_controller(ctl).await;
    let victim = victim
        .ok_or_else(|| anyhow!("timed out after {}s waiting for the drain", LIMIT.as_secs()))?;
    // ECS ran fast-forwarded: the action's time is on the sandbox clock.
    let took = activity_took(env, GROUP, &victim, "Terminating")
        .await
        .map(|t| format!("{t} on the sandbox clock"));
    let tasks = all_tasks(env).await?;
    let ci_of = |id: &str| {
        instances
            .iter()
            .find(|(_, i)| *i == id)
            .map(|(ci, _)| ci.clone())
    };
    let victim_ci = ci_of(&victim);
    let on_victim: Vec<&Task> = tasks
        .iter()
        .filter(|t| t.container_instance_arn().map(str::to_owned) == victim_ci)
        .collect();
    let stopped_at = |t: &Task| t.stopped_at().map(|d| d.as_secs_f64());
    let service_stops: Vec<f64> = on_victim
        .iter()
        .filter(|t| t.group() == Some("service:web"))
        .filter_map(|t| stopped_at(t))
        .collect();
    let daemon_stop = on_victim
        .iter()
        .find(|t| t.group() == Some("service:log-router"))
        .and_then(|t| stopped_at(t));
    if let (Some(d), Some(s)) = (daemon_stop, service_stops.iter().copied().reduce(f64::max)) {
        stopped_last_ok = d >= s;
    }
    let survivor_web = tasks
        .iter()
        .filter(|t| {
            t.group() == Some("service:web")
                && t.last_status() == Some("RUNNING")
                && t.container_instance_arn().map(str::to_owned) != victim_ci
        })
        .count();
    checks.push(check(
        format!("service web's task moved off {victim}: 2 running on the other instance"),
        survivor_web == 2 && !service_stops.is_empty(),
        None,
    ));
    checks.push(check(
        "daemon task log-router stopped last, after the service task",
        daemon_stop.is_some() && stopped_last_ok,
        None,
    ));
    // The action completed only once nothing ran: every task on the victim is STOPPED and
    // the termination ended after the last of them stopped.
    let all_stopped = on_victim.iter().all(|t| t.last_status() == Some("STOPPED"));
    let last_stop = on_victim
        .iter()
        .filter_map(|t| stopped_at(t))
        .reduce(f64::max);
    let ended = termination_end(env, &victim).await;
    let after = matches!((last_stop, ended), (Some(s), Some(e)) if e >= s);
    let continued = summary
        .as_ref()
        .is_ok_and(|s| s.outcomes.get("continue").copied().unwrap_or(0) == 1);
    checks.push(check(
        format!("completed CONTINUE only when nothing ran on {victim}"),
        all_stopped && after && continued,
        took,
    ));
    Ok(())
}

/// When Auto Scaling's termination of `id` ended (sandbox time, seconds).
async fn termination_end(env: &Env, id: &str) -> Option<f64> {
    termination_activity(env, GROUP, id)
        .await
        .and_then(|a| a.end_time().map(|t| t.as_secs_f64()))
}
