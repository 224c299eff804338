//! Scenario 1 of the demo: ship logs to S3 before termination, with lifehook's agent on
//! each instance (in this process, one per instance, each reading the sandbox's metadata
//! service of its instance, each with a working directory of its own).
//!
//! The agents create the group's terminate hook (`[[agent.hook]]`), subscribe an inbox
//! queue each to the hook's SNS topic, filtered on their instance id, and remove the inbox
//! when they stop. On a scale-in only the victim's agent acts: it fetches the shutdown
//! script from S3 (checked against its SHA-256), runs it and uploads what it wrote.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, anyhow};
use aws_sdk_s3::primitives::ByteStream;

use super::patch::{RunningAgent, poll, start_agent, stop_agent};
use super::scenarios::{
    Env, activity_took, check, create_group, report, scale_in_victim, set_desired, until,
};
use super::{Check, ScenarioReport};

pub(crate) const SHIP_LOGS_TOML: &str = include_str!("../../../examples/demo-ship-logs.toml");
/// The shutdown script the demo puts in S3; `examples/demo-ship-logs.toml` names its SHA-256.
const SCRIPT: &str = include_str!("assets/on-terminate.sh");
/// The working directory the example names; the demo gives each instance its own.
const WORKDIR_PLACEHOLDER: &str = "/tmp/lifehook-demo-logs";
const GROUP: &str = "demo-logs";
const TOPIC: &str = "lifehook-demo-logs";
const OPS_BUCKET: &str = "lifehook-demo-ops";
const LOG_BUCKET: &str = "lifehook-demo-logs";

pub(crate) async fn ship_logs(env: &Env) -> ScenarioReport {
    let out = &env.out;
    out.heading("Scenario 1: ship logs to S3 before termination (agent on each instance)");
    out.say("  Group demo-logs runs 2 instances, each with lifehook's agent (examples/demo-ship-logs.toml). The agents create the terminate hook, each subscribes its own filtered inbox to the hook's SNS topic; on a scale-in the victim's agent fetches the shutdown script from S3, runs it and uploads its logs before the instance goes.");
    let mut checks = Vec::new();
    let dir = std::env::temp_dir().join(format!(
        "lifehook-demo-logs-{}-{}",
        std::process::id(),
        out.elapsed_s().to_bits()
    ));
    let mut agents = Vec::new();
    let victim = match body(env, &dir, &mut agents, &mut checks).await {
        Ok(v) => Some(v),
        Err(e) => {
            checks.push(check(format!("scenario stopped: {e:#}"), false, None));
            None
        }
    };
    // Whatever happened, stop the agents: each removes its inbox.
    let mut removed = true;
    let mut stopped = 0;
    let mut handled = Vec::new();
    for (id, a) in agents {
        match stop_agent(a).await {
            Ok(s) => {
                removed &= s.inbox_removed;
                stopped += 1;
                let n: u64 = s.outcomes.values().sum();
                handled.push((id, n, s.outcomes.get("continue").copied().unwrap_or(0)));
            }
            Err(e) => {
                removed = false;
                checks.push(check(format!("agent failed: {e:#}"), false, None));
            }
        }
    }
    if let Some(victim) = victim {
        let mine = handled.iter().any(|(id, _, c)| *id == victim && *c == 1);
        let others: u64 = handled
            .iter()
            .filter(|(id, ..)| *id != victim)
            .map(|(_, n, _)| n)
            .sum();
        checks.push(check(
            format!(
                "the victim's agent completed CONTINUE; the other agent handled {others} action(s)"
            ),
            mine && others == 0,
            None,
        ));
    }
    if stopped > 0 {
        let left = subscriptions(env).await;
        checks.push(check(
            format!(
                "agents stopped: inbox queues and subscriptions removed ({} left)",
                left.map_or_else(|| "?".to_owned(), |n| n.to_string())
            ),
            removed && left == Some(0),
            None,
        ));
    }
    let _ = std::fs::remove_dir_all(&dir);
    report(1, checks)
}

async fn subscriptions(env: &Env) -> Option<usize> {
    let out = env
        .clients
        .sns()
        .list_subscriptions_by_topic()
        .topic_arn(topic_arn(env))
        .send()
        .await
        .ok()?;
    Some(out.subscriptions().len())
}

fn topic_arn(env: &Env) -> String {
    format!(
        "arn:aws:sns:{}:{}:{TOPIC}",
        env.clients.region(),
        lifehook_sandbox::ACCOUNT_ID
    )
}

/// The example, pointed at a working directory of `instance`'s own.
fn agent_config(dir: &Path, instance: &str) -> anyhow::Result<lifehook_core::config::Config> {
    let workdir: PathBuf = dir.join(instance);
    let text = SHIP_LOGS_TOML.replace(WORKDIR_PLACEHOLDER, &workdir.display().to_string());
    lifehook_core::config::Config::from_toml(&text, Path::new("examples/demo-ship-logs.toml"))
        .map_err(|p| {
            let list: Vec<String> = p.iter().map(ToString::to_string).collect();
            anyhow!(
                "examples/demo-ship-logs.toml is invalid:\n{}",
                list.join("\n")
            )
        })
}

async fn body(
    env: &Env,
    dir: &Path,
    agents: &mut Vec<(String, RunningAgent)>,
    checks: &mut Vec<Check>,
) -> anyhow::Result<String> {
    let out = &env.out;
    std::fs::create_dir_all(dir).context("creating the demo's working directory")?;
    let topic = env
        .clients
        .sns()
        .create_topic()
        .name(TOPIC)
        .send()
        .await
        .context("CreateTopic")?
        .topic_arn()
        .ok_or_else(|| anyhow!("CreateTopic returned no ARN"))?
        .to_owned();
    if topic != topic_arn(env) {
        return Err(anyhow!(
            "the sandbox named the topic {topic}, not what examples/demo-ship-logs.toml expects"
        ));
    }
    let s3 = env.clients.s3();
    for b in [OPS_BUCKET, LOG_BUCKET] {
        s3.create_bucket()
            .bucket(b)
            .send()
            .await
            .with_context(|| format!("CreateBucket {b}"))?;
    }
    s3.put_object()
        .bucket(OPS_BUCKET)
        .key("lifecycle/on-terminate.sh")
        .body(ByteStream::from_static(SCRIPT.as_bytes()))
        .send()
        .await
        .context("PutObject on-terminate.sh")?;
    out.action(&format!(
        "SNS topic {TOPIC}; s3://{OPS_BUCKET}/lifecycle/on-terminate.sh; bucket {LOG_BUCKET}"
    ));
    out.action("create group demo-logs (desired 2), no hook yet");
    create_group(env, GROUP, 2, Vec::new()).await?;
    let serving = until(env, "2 demo-logs instances InService", |s| {
        let v = s.in_state(GROUP, "InService");
        (v.len() == 2).then_some(v)
    })
    .await?;
    for id in &serving {
        let config = agent_config(dir, id)?;
        out.event(id, "agent started (lifehook agent, identity from IMDSv2)");
        agents.push((id.clone(), start_agent(env, &config, id, GROUP)?));
    }
    poll("both agents to subscribe their inbox", || async {
        (subscriptions(env).await == Some(2)).then_some(())
    })
    .await?;
    let hook = env
        .clients
        .autoscaling()
        .describe_lifecycle_hooks()
        .auto_scaling_group_name(GROUP)
        .send()
        .await
        .context("DescribeLifecycleHooks")?;
    let created = hook.lifecycle_hooks().iter().any(|h| {
        h.lifecycle_hook_name() == Some("ship-logs")
            && h.notification_target_arn() == Some(topic.as_str())
    });
    checks.push(check(
        "the agents created the terminate hook ship-logs (→ SNS) and an inbox each",
        created,
        None,
    ));
    out.event(
        "agents",
        "hook ship-logs created; 2 inbox queues subscribed, each filtered on its instance id",
    );

    out.action("scale demo-logs in from 2 to 1 (an unexpected scale-in)");
    let started = Instant::now();
    set_desired(env, GROUP, 1).await?;
    let victim = scale_in_victim(env, &serving).await?;
    let took = activity_took(env, GROUP, &victim, "Terminating")
        .await
        .or_else(|| Some(super::human(started.elapsed())));
    let key = format!("logs/{GROUP}/{victim}/app.log");
    let object = s3
        .get_object()
        .bucket(LOG_BUCKET)
        .key(&key)
        .send()
        .await
        .ok();
    let body = match object {
        Some(o) => o
            .body
            .collect()
            .await
            .map(|b| String::from_utf8_lossy(&b.into_bytes()).into_owned())
            .unwrap_or_default(),
        None => String::new(),
    };
    if !body.is_empty() {
        out.event(
            &victim,
            &format!("s3://{LOG_BUCKET}/{key}: {}", body.trim()),
        );
    }
    let waited = env
        .watch
        .with(|s| s.get(&victim).is_some_and(|i| i.saw("Terminating:Wait")));
    checks.push(check(
        format!("{victim}'s agent ran the S3 script and shipped its logs during its wait"),
        waited && body.contains(&victim),
        took,
    ));
    let listed = s3
        .list_objects_v2()
        .bucket(LOG_BUCKET)
        .send()
        .await
        .context("ListObjectsV2")?;
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    let others = keys.iter().filter(|k| !k.contains(&victim)).count();
    checks.push(check(
        format!(
            "only the victim's logs were shipped ({} object(s), {others} of other instances)",
            keys.len()
        ),
        keys.len() == 2 && others == 0,
        None,
    ));
    Ok(victim)
}
