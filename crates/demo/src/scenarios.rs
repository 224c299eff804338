//! The scenarios the demo runs, each against its own group and queue on the shared sandbox,
//! with its own in-process controller.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use aws_sdk_autoscaling::types::{
    InstanceRefreshStatus, LaunchTemplateSpecification, LifecycleHookSpecification,
    RefreshPreferences,
};
use lifehook_aws::Clients;
use lifehook_aws::controller::{Controller, ControllerError, Summary};
use lifehook_aws::metrics::Metrics;
use lifehook_core::config::Config;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::out::Out;
use super::stub::Stub;
use super::watch::{Snapshot, Watch};
use super::{Check, ScenarioReport, example_config};

pub(crate) const DEREGISTER_TOML: &str = include_str!("../../../examples/demo-deregister.toml");
pub(crate) const LAUNCH_GATE_TOML: &str = include_str!("../../../examples/demo-launch-gate.toml");

pub(super) const LAUNCHING: &str = "autoscaling:EC2_INSTANCE_LAUNCHING";
pub(super) const TERMINATING: &str = "autoscaling:EC2_INSTANCE_TERMINATING";
const ROLE: &str = "arn:aws:iam::000000000000:role/lifehook-demo-hooks";
/// How long any one wait of the demo may take before the scenario is declared failed.
const LIMIT: Duration = Duration::from_secs(25);

pub(crate) struct Env {
    pub out: Out,
    pub clients: Clients,
    /// The sandbox's endpoint, and a client for its control API (no proxy).
    pub endpoint: String,
    pub http: reqwest::Client,
    pub stub: Stub,
    pub watch: Watch,
    pub sandbox: Arc<lifehook_sandbox::Sandbox>,
    /// The sandbox's virtual clock, which the demo's controllers and agents plan their
    /// heartbeats and deadlines on (the demo moves it forward at times).
    pub clock: Arc<dyn lifehook_core::Clock>,
}

/// A controller to start again for `--keep-running`.
pub(crate) struct Keep {
    group: &'static str,
    config: Config,
}

pub(super) struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<Summary, ControllerError>>,
}

pub(super) fn start_controller(env: &Env, config: Config) -> anyhow::Result<Running> {
    let controller = Controller::new(config, &env.clients, Metrics::new(), env.clock.clone())?;
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(controller.run(
        async {
            let _ = rx.await;
        },
        Duration::from_secs(5),
    ));
    Ok(Running { stop: tx, task })
}

pub(super) async fn stop_controller(r: Running) -> anyhow::Result<Summary> {
    let _ = r.stop.send(());
    Ok(r.task.await.context("the controller task failed")??)
}

/// Controllers started again for `--keep-running`: they run while this is held.
pub(crate) struct Kept {
    pub groups: Vec<&'static str>,
    _stops: Vec<oneshot::Sender<()>>,
}

/// Starts the kept controllers again.
pub(crate) fn restart(env: &Env, keep: Vec<Keep>) -> Kept {
    let mut kept = Kept {
        groups: Vec::new(),
        _stops: Vec::new(),
    };
    for k in keep {
        if let Ok(r) = start_controller(env, k.config) {
            kept._stops.push(r.stop);
            kept.groups.push(k.group);
        }
    }
    kept
}

/// A queue for a scenario and its example configuration pointed at it and at the
/// stand-ins: the queue's ARN and the configuration.
async fn queue_and_config(
    env: &Env,
    queue: &str,
    example: &str,
    toml: &str,
) -> anyhow::Result<(String, lifehook_core::config::Config)> {
    let (url, arn) = create_queue(env, queue).await?;
    let config = example_config(example, toml, &url, &env.stub.base)?;
    Ok((arn, config))
}

pub(super) async fn create_queue(env: &Env, name: &str) -> anyhow::Result<(String, String)> {
    let sqs = env.clients.sqs();
    let url = sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .context("CreateQueue")?
        .queue_url()
        .ok_or_else(|| anyhow!("CreateQueue returned no URL"))?
        .to_owned();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .context("GetQueueAttributes")?
        .attributes()
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .cloned()
        })
        .ok_or_else(|| anyhow!("the queue has no ARN"))?;
    Ok((url, arn))
}

pub(super) fn hook(
    name: &str,
    transition: &str,
    heartbeat: i32,
    default: &str,
    target: Option<&str>,
    metadata: Option<&str>,
) -> LifecycleHookSpecification {
    let b = LifecycleHookSpecification::builder()
        .lifecycle_hook_name(name)
        .lifecycle_transition(transition)
        .heartbeat_timeout(heartbeat)
        .default_result(default)
        .set_notification_metadata(metadata.map(str::to_owned));
    match target {
        Some(t) => b.notification_target_arn(t).role_arn(ROLE),
        None => b,
    }
    .build()
}

pub(super) async fn create_group(
    env: &Env,
    name: &str,
    desired: i32,
    hooks: Vec<LifecycleHookSpecification>,
) -> anyhow::Result<()> {
    env.clients
        .autoscaling()
        .create_auto_scaling_group()
        .auto_scaling_group_name(name)
        .min_size(0)
        .max_size(10)
        .desired_capacity(desired)
        .launch_template(
            LaunchTemplateSpecification::builder()
                .launch_template_name(format!("{name}-template"))
                .version("$Latest")
                .build(),
        )
        .availability_zones("us-east-1a")
        .set_lifecycle_hook_specification_list(Some(hooks))
        .send()
        .await
        .context("CreateAutoScalingGroup")?;
    Ok(())
}

pub(super) async fn set_desired(env: &Env, group: &str, n: i32) -> anyhow::Result<()> {
    env.clients
        .autoscaling()
        .set_desired_capacity()
        .auto_scaling_group_name(group)
        .desired_capacity(n)
        .send()
        .await
        .context("SetDesiredCapacity")?;
    Ok(())
}

pub(super) async fn until<T>(
    env: &Env,
    what: &str,
    f: impl FnMut(&Snapshot) -> Option<T>,
) -> anyhow::Result<T> {
    env.watch
        .until(LIMIT, f)
        .await
        .ok_or_else(|| anyhow!("timed out after {}s waiting for {what}", LIMIT.as_secs()))
}

pub(super) fn check(what: impl Into<String>, ok: bool, took: Option<String>) -> Check {
    Check {
        what: what.into(),
        ok,
        took,
    }
}

// ------------------------------------------------------------------ launch gate (3)

pub(crate) async fn launch_gate(env: &Env) -> (ScenarioReport, Option<Keep>) {
    let out = &env.out;
    out.heading(
        "Scenario 3: a launch gate; an AMI of an instance lost to a scale-in, none for a refresh",
    );
    out.say("  Group demo-app has a launch hook (ABANDON by default) and a terminate hook, both notifying an SQS queue directly. The controller (examples/demo-launch-gate.toml) holds each new instance until its health endpoint answers, records every termination, and keeps an AMI only of an instance lost to an unexpected scale-in (images take 3 s here).");
    let mut checks = Vec::new();
    let mut keep = None;
    let setup = queue_and_config(
        env,
        "lifehook-demo-launch-gate",
        "examples/demo-launch-gate.toml",
        LAUNCH_GATE_TOML,
    );
    let (arn, config) = match setup.await {
        Ok(v) => v,
        Err(e) => {
            checks.push(check(format!("setup failed: {e:#}"), false, None));
            return (report(3, checks), None);
        }
    };
    let ctl = match start_controller(env, config.clone()) {
        Ok(c) => c,
        Err(e) => {
            checks.push(check(
                format!("controller failed to start: {e:#}"),
                false,
                None,
            ));
            return (report(3, checks), None);
        }
    };
    if let Err(e) = launch_gate_body(env, &arn, &mut checks).await {
        checks.push(check(format!("scenario stopped: {e:#}"), false, None));
    }
    match stop_controller(ctl).await {
        Ok(summary) => {
            let n = |k: &str| summary.outcomes.get(k).copied().unwrap_or(0);
            let bad = n("failed") + n("set-aside") + n("handed-back");
            checks.push(check(
                format!(
                    "controller: {} CONTINUE, {} ABANDON, nothing failed or set aside",
                    n("continue"),
                    n("abandon")
                ),
                n("abandon") == 1 && n("continue") >= 1 && bad == 0,
                None,
            ));
            keep = Some(Keep {
                group: "demo-app",
                config,
            });
        }
        Err(e) => checks.push(check(format!("controller failed: {e:#}"), false, None)),
    }
    (report(3, checks), keep)
}

pub(super) fn report(number: u32, checks: Vec<Check>) -> ScenarioReport {
    ScenarioReport { number, checks }
}

/// Whether the stub recorded a terminate-pipeline event for `id` while `id` was waiting.
fn recorded_while_waiting(stub: &Stub, id: &str) -> bool {
    stub.calls().iter().any(|c| {
        c.target == "/events"
            && serde_json::from_str::<serde_json::Value>(&c.body)
                .is_ok_and(|v| v["instance_id"] == id)
            && c.waiting.iter().any(|w| w == id)
    })
}

/// Waits for the first of `serving` to be Terminated: the victim of a scale-in.
pub(super) async fn scale_in_victim(env: &Env, serving: &[String]) -> anyhow::Result<String> {
    until(env, "the scale-in victim to terminate", |s| {
        serving
            .iter()
            .find(|id| s.get(id).is_some_and(|i| i.state == "Terminated"))
            .cloned()
    })
    .await
}

/// Auto Scaling's recorded cause for the termination of `id`.
async fn termination_cause(env: &Env, group: &str, id: &str) -> Option<String> {
    termination_activity(env, group, id)
        .await
        .and_then(|a| a.cause().map(str::to_owned))
}

/// Auto Scaling's scaling activity of the termination of `id`.
pub(super) async fn termination_activity(
    env: &Env,
    group: &str,
    id: &str,
) -> Option<aws_sdk_autoscaling::types::Activity> {
    let out = env
        .clients
        .autoscaling()
        .describe_scaling_activities()
        .auto_scaling_group_name(group)
        .send()
        .await
        .ok()?;
    out.activities()
        .iter()
        .find(|a| {
            a.description()
                .is_some_and(|d| d.contains(id) && d.starts_with("Terminating"))
        })
        .cloned()
}

/// How long Auto Scaling's launch or termination of `id` took (`kind`: "Launching" or
/// "Terminating"), from its scaling activity: through the wait states to the end.
pub(super) async fn activity_took(env: &Env, group: &str, id: &str, kind: &str) -> Option<String> {
    let out = env
        .clients
        .autoscaling()
        .describe_scaling_activities()
        .auto_scaling_group_name(group)
        .send()
        .await
        .ok()?;
    let a = out.activities().iter().find(|a| {
        a.description()
            .is_some_and(|d| d.contains(id) && d.starts_with(kind))
    })?;
    let d = a.end_time()?.as_secs_f64() - a.start_time()?.as_secs_f64();
    Some(super::human(Duration::from_secs_f64(d.max(0.0))))
}

/// [`activity_took`] for several instances, joined.
async fn activities_took(env: &Env, group: &str, ids: &[String], kind: &str) -> Option<String> {
    let mut v = Vec::new();
    for id in ids {
        v.push(activity_took(env, group, id, kind).await?);
    }
    Some(v.join(", "))
}

async fn launch_gate_body(env: &Env, arn: &str, checks: &mut Vec<Check>) -> anyhow::Result<()> {
    let (out, stub) = (&env.out, &env.stub);
    const G: &str = "demo-app";

    // The demo's images are available 3 s after CreateImage (real ones take minutes).
    env.http
        .post(format!("{}/_sandbox/ec2/image-outcomes", env.endpoint))
        .json(&serde_json::json!({"state": "available", "delay_seconds": 3}))
        .send()
        .await
        .context("setting how the demo's images end")?;

    // A. A new instance is held until it is healthy.
    stub.plan_next(Some(Duration::from_millis(2500)));
    out.action("create group demo-app (desired 1): launch hook launch-gate (30s, DefaultResult ABANDON), terminate hook record-termination");
    create_group(
        env,
        G,
        1,
        vec![
            hook("launch-gate", LAUNCHING, 30, "ABANDON", Some(arn), None),
            hook(
                "record-termination",
                TERMINATING,
                30,
                "CONTINUE",
                Some(arn),
                None,
            ),
        ],
    )
    .await?;
    let first = until(env, "the first demo-app instance to be InService", |s| {
        s.in_state(G, "InService").first().cloned()
    })
    .await?;
    let (saw_wait, heartbeats) = env.watch.with(|s| {
        let i = s.get(&first);
        (
            i.is_some_and(|i| i.saw("Pending:Wait")),
            i.map_or(0, |i| i.heartbeats),
        )
    });
    let waited_a = activity_took(env, G, &first, "Launching").await;
    let health = stub.health(&first);
    let checks_n = health.as_ref().map_or(0, |h| h.checks);
    checks.push(check(
        format!(
            "{first} held in Pending:Wait until healthy ({checks_n} checks, {heartbeats} heartbeat(s)), then InService"
        ),
        saw_wait && health.is_some_and(|h| h.healthy_at.is_some() && h.checks >= 2),
        waited_a,
    ));

    // B. A launch whose health check never passes is abandoned and replaced.
    stub.plan_next(None);
    out.action("the next instance will never be healthy; scale demo-app out to 2");
    set_desired(env, G, 2).await?;
    let (broken, replacement) = until(env, "the broken launch to be abandoned and replaced", |s| {
        let broken = s.order.iter().find(|id| {
            s.get(id).is_some_and(|i| i.group == G)
                && stub.health(id).is_some_and(|h| h.healthy_after.is_none())
        })?;
        let ended = s.get(broken).is_some_and(|i| i.state == "Terminated");
        let serving = s.in_state(G, "InService");
        let replacement = serving.iter().find(|id| **id != first)?;
        (ended && serving.len() == 2).then(|| (broken.clone(), replacement.clone()))
    })
    .await?;
    let took_broken = activity_took(env, G, &broken, "Launching").await;
    let took_replacement = activity_took(env, G, &replacement, "Launching").await;
    env.watch.with(|s| {
        let b = s.get(&broken);
        checks.push(check(
            format!("{broken} never healthy: launch ABANDONed, instance terminated"),
            b.is_some_and(|i| {
                i.saw("Pending:Wait") && !i.saw("InService") && i.state == "Terminated"
            }),
            took_broken,
        ));
        checks.push(check(
            format!("replacement {replacement} InService through the launch gate"),
            s.get(&replacement)
                .is_some_and(|i| i.saw("Pending:Wait") && i.state == "InService"),
            took_replacement,
        ));
    });

    // C1. An instance refresh (a deployment) terminates through the terminate hook.
    let before = env.watch.with(|s| s.in_state(G, "InService"));
    out.action("StartInstanceRefresh on demo-app (MinHealthyPercentage 50): a deployment replaces both instances");
    env.clients
        .autoscaling()
        .start_instance_refresh()
        .auto_scaling_group_name(G)
        .preferences(
            RefreshPreferences::builder()
                .min_healthy_percentage(50)
                .instance_warmup(0)
                .build(),
        )
        .send()
        .await
        .context("StartInstanceRefresh")?;
    until(env, "the instance refresh to finish", |s| {
        let done = s
            .refreshes
            .values()
            .any(|st| st == InstanceRefreshStatus::Successful.as_str());
        let gone = before
            .iter()
            .all(|id| s.get(id).is_some_and(|i| i.state == "Terminated"));
        (done && gone && s.in_state(G, "InService").len() == 2).then_some(())
    })
    .await?;
    let new: Vec<String> = env.watch.with(|s| s.in_state(G, "InService"));
    let took_old = activities_took(env, G, &before, "Terminating").await;
    let took_new = activities_took(env, G, &new, "Launching").await;
    env.watch.with(|s| {
        // The pipeline's record arrived while the sandbox had the instance waiting.
        let ok = before.iter().all(|id| {
            recorded_while_waiting(stub, id) && s.get(id).is_some_and(|i| i.state == "Terminated")
        });
        checks.push(check(
            format!(
                "refresh: {} went through the terminate hook",
                before.join(", ")
            ),
            ok,
            took_old,
        ));
        checks.push(check(
            format!(
                "refresh: {} InService through the launch gate",
                new.join(", ")
            ),
            new.iter()
                .all(|id| !before.contains(id) && s.get(id).is_some_and(|i| i.saw("Pending:Wait"))),
            took_new,
        ));
    });

    // C2. An unexpected scale-in goes through the same terminate hook.
    let serving = env.watch.with(|s| s.in_state(G, "InService"));
    out.action("scale demo-app in from 2 to 1 (an unexpected scale-in)");
    set_desired(env, G, 1).await?;
    let victim = scale_in_victim(env, &serving).await?;
    let took_victim = activity_took(env, G, &victim, "Terminating").await;
    checks.push(check(
        format!("scale-in: {victim} went through the terminate hook"),
        recorded_while_waiting(stub, &victim),
        took_victim.clone(),
    ));
    for id in before.iter().take(1).chain(std::iter::once(&victim)) {
        if let Some(cause) = termination_cause(env, G, id).await {
            let kind = if cause.contains("instance refresh") {
                "a deployment (instance refresh): no AMI"
            } else {
                "NOT a deployment (scale-in): AMI kept"
            };
            out.event(id, &format!("Auto Scaling's recorded cause says: {kind}"));
        }
    }
    // Only the scale-in victim left an image: the refresh and the abandoned launch did not.
    let images = env
        .clients
        .ec2()
        .describe_images()
        .owners("self")
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag:lifehook:group")
                .values(G)
                .build(),
        )
        .send()
        .await
        .context("DescribeImages")?;
    let kept: Vec<(String, String, String)> = images
        .images()
        .iter()
        .map(|i| {
            let tag = |k: &str| {
                i.tags()
                    .iter()
                    .find(|t| t.key() == Some(k))
                    .and_then(|t| t.value())
                    .unwrap_or_default()
                    .to_owned()
            };
            (
                tag("lifehook:instance-id"),
                i.image_id().unwrap_or_default().to_owned(),
                i.state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
            )
        })
        .collect();
    if let Some((_, ami, state)) = kept.iter().find(|k| k.0 == victim) {
        out.event(
            &victim,
            &format!("AMI {ami} {state}, tagged with the instance and group"),
        );
    }
    checks.push(check(
        format!(
            "scale-in kept an available AMI of {victim}; the refresh and the abandoned launch none ({} image(s))",
            kept.len()
        ),
        kept.len() == 1 && kept[0].0 == victim && kept[0].2 == "available",
        took_victim.clone(),
    ));
    Ok(())
}

// ------------------------------------------------------------------ deregister (2)

pub(crate) async fn deregister(env: &Env) -> (ScenarioReport, Option<Keep>) {
    let out = &env.out;
    out.heading("Scenario 2: deregister from service discovery, centrally");
    out.say("  Group demo-web has a terminate hook (60s, DefaultResult CONTINUE) and no notification target: an EventBridge rule sends its lifecycle events to an SQS queue. The controller (examples/demo-deregister.toml) takes the instance out of Eureka, then posts to chat.");
    let mut checks = Vec::new();
    let setup = queue_and_config(
        env,
        "lifehook-demo-deregister",
        "examples/demo-deregister.toml",
        DEREGISTER_TOML,
    );
    let (arn, config) = match setup.await {
        Ok(v) => v,
        Err(e) => {
            checks.push(check(format!("setup failed: {e:#}"), false, None));
            return (report(2, checks), None);
        }
    };
    if let Err(e) = deregister_body(env, &arn, &config, &mut checks).await {
        checks.push(check(format!("scenario stopped: {e:#}"), false, None));
    }
    (
        report(2, checks),
        Some(Keep {
            group: "demo-web",
            config,
        }),
    )
}

async fn deregister_body(
    env: &Env,
    arn: &str,
    config: &Config,
    checks: &mut Vec<Check>,
) -> anyhow::Result<()> {
    let (out, stub) = (&env.out, &env.stub);
    const G: &str = "demo-web";
    const HB: i32 = 60;
    let pattern = serde_json::json!({
        "source": ["aws.autoscaling"],
        "detail-type": ["EC2 Instance-terminate Lifecycle Action"],
        "detail": {"AutoScalingGroupName": [G]}
    });
    out.action("EventBridge rule demo-web-terminating → SQS queue lifehook-demo-deregister");
    let events = env.clients.eventbridge();
    events
        .put_rule()
        .name("demo-web-terminating")
        .event_pattern(pattern.to_string())
        .send()
        .await
        .context("PutRule")?;
    events
        .put_targets()
        .rule("demo-web-terminating")
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("lifehook")
                .arn(arn)
                .build()
                .context("target")?,
        )
        .send()
        .await
        .context("PutTargets")?;
    out.action("create group demo-web (desired 3) with terminate hook deregister, metadata {\"app\":\"DEMO-WEB\"}");
    create_group(
        env,
        G,
        3,
        vec![hook(
            "deregister",
            TERMINATING,
            HB,
            "CONTINUE",
            None,
            Some(r#"{"app":"DEMO-WEB"}"#),
        )],
    )
    .await?;
    let serving = until(env, "3 demo-web instances InService", |s| {
        let v = s.in_state(G, "InService");
        (v.len() == 3).then_some(v)
    })
    .await?;

    let ctl = start_controller(env, config.clone())?;
    out.action("scale demo-web in from 3 to 2");
    set_desired(env, G, 2).await?;
    let victim = scale_in_victim(env, &serving).await;
    let summary = stop_controller(ctl).await;
    let victim = victim?;
    let calls = stub.calls();
    let put = calls.iter().position(|c| {
        c.method == "PUT"
            && c.target == format!("/eureka/apps/DEMO-WEB/{victim}/status?value=OUT_OF_SERVICE")
    });
    let delete = calls.iter().position(|c| {
        c.method == "DELETE" && c.target == format!("/eureka/apps/DEMO-WEB/{victim}")
    });
    let chat = calls.iter().find(|c| {
        c.target.starts_with("/chat/")
            && serde_json::from_str::<serde_json::Value>(&c.body)
                .is_ok_and(|v| v["text"].as_str().is_some_and(|t| t.contains(&victim)))
    });
    let waiting = |i: Option<usize>| i.is_some_and(|i| calls[i].waiting.contains(&victim));
    let took_victim = activity_took(env, G, &victim, "Terminating").await;
    checks.push(check(
        format!("registry got OUT_OF_SERVICE, then DELETE, for {victim} during its wait"),
        matches!((put, delete), (Some(p), Some(d)) if p < d) && waiting(put) && waiting(delete),
        took_victim.clone(),
    ));
    checks.push(check(
        format!("chat message about {victim} posted during its wait"),
        chat.is_some_and(|c| c.waiting.contains(&victim)),
        took_victim.clone(),
    ));
    // Completed by the controller: the action ended long before the hook could time out.
    // (The wait above is far shorter than the heartbeat timeout and the clock was not moved.)
    let fast = env
        .watch
        .with(|s| s.get(&victim).is_some_and(|i| i.state == "Terminated"));
    let continued = summary
        .as_ref()
        .is_ok_and(|s| s.outcomes.get("continue").copied().unwrap_or(0) >= 1);
    checks.push(check(
        format!("completed CONTINUE well inside the {HB}s heartbeat timeout"),
        continued && fast,
        took_victim,
    ));

    // The handler is down: the hook's DefaultResult applies at the timeout.
    out.action("controller stopped (the handler is down); scale demo-web in from 2 to 1");
    let before = stub.calls().len();
    let remaining: Vec<String> = serving.iter().filter(|i| **i != victim).cloned().collect();
    set_desired(env, G, 1).await?;
    let second = until(env, "an instance to wait in Terminating:Wait", |s| {
        remaining
            .iter()
            .find(|id| s.get(id).is_some_and(|i| i.state == "Terminating:Wait"))
            .cloned()
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let left = env
        .watch
        .with(|s| s.get(&second).and_then(|i| i.seconds_left))
        .map_or_else(String::new, |l| format!(" ({l:.0}s left)"));
    out.action(&format!(
        "nobody completes the action{left}; move the sandbox clock {HB}s forward (the hook's heartbeat timeout)"
    ));
    env.sandbox
        .advance(u64::try_from(HB).unwrap_or(60) * 1000 + 500);
    until(env, "the DefaultResult to apply", |s| {
        s.get(&second)
            .is_some_and(|i| i.state == "Terminated")
            .then_some(())
    })
    .await?;
    let untouched = stub.calls()[before..]
        .iter()
        .all(|c| !c.target.contains(&second) && !c.body.contains(&second));
    let ok = env.watch.with(|s| {
        s.get(&second)
            .is_some_and(|i| i.saw("Terminating:Wait") && i.state == "Terminated")
    });
    let took_second = activity_took(env, G, &second, "Terminating").await;
    checks.push(check(
        format!("handler down: DefaultResult CONTINUE terminated {second}; registry untouched"),
        ok && untouched,
        took_second.map(|t| format!("{t} on the sandbox clock")),
    ));
    out.say("  Its lifecycle event waits in the queue until a controller handles it (the steps are safe to run again) and finds the action already resolved.");
    Ok(())
}
