//! Scenario 5 of the demo: patch, reboot and resume during launch, with lifehook's own
//! agent for the instance, in this process, reading the sandbox's metadata service of
//! that instance. The "reboot" is simulated: the agent's reboot command leaves a marker;
//! the demo records the reboot on the sandbox's instance, stops the agent as a shutdown
//! would, and starts a new one on the same state directory, as the machine coming back up
//! would.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use aws_sdk_autoscaling::types::{LaunchTemplateSpecification, LifecycleHookSpecification};
use lifehook_aws::agent::{Agent, AgentError, Summary, Whoami};
use lifehook_aws::identity::Imds;
use lifehook_aws::metrics::Metrics;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::scenarios::{Env, check, report};
use super::{Check, ScenarioReport};

pub(crate) const PATCH_TOML: &str = include_str!("../../../examples/demo-patch-reboot.toml");
/// The working directory the example names; the demo replaces it with a fresh one.
const WORKDIR_PLACEHOLDER: &str = "/tmp/lifehook-demo-patch";
const GROUP: &str = "demo-patch";
const LIMIT: Duration = Duration::from_secs(25);

pub(super) struct RunningAgent {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<Summary, AgentError>>,
}

/// Starts lifehook's agent in this process for `instance` of `group`, reading the
/// sandbox's metadata service of that instance.
pub(super) fn start_agent(
    env: &Env,
    config: &lifehook_core::config::Config,
    instance: &str,
    group: &str,
) -> anyhow::Result<RunningAgent> {
    let imds = Imds::with_endpoint(&format!("{}/_imds/{instance}/", env.endpoint))
        .map_err(|e| anyhow!("{e}"))?;
    let agent = Agent::new(
        config.clone(),
        env.clients.clone(),
        Whoami {
            instance_id: instance.to_owned(),
            group: Some(group.to_owned()),
        },
        imds,
        Metrics::new(),
        env.clock.clone(),
    )?;
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(agent.run(
        async {
            let _ = rx.await;
        },
        Duration::from_secs(1),
    ));
    Ok(RunningAgent { stop: tx, task })
}

pub(super) async fn stop_agent(a: RunningAgent) -> anyhow::Result<Summary> {
    let _ = a.stop.send(());
    Ok(a.task.await.context("the agent task failed")??)
}

pub(super) async fn poll<T, F, Fut>(what: &str, mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return Ok(v);
        }
        if start.elapsed() > LIMIT {
            return Err(anyhow!(
                "timed out after {}s waiting for {what}",
                LIMIT.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn instance_state(env: &Env) -> Option<(String, String)> {
    let out = env
        .clients
        .autoscaling()
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(GROUP)
        .send()
        .await
        .ok()?;
    let g = out.auto_scaling_groups().first()?;
    let i = g.instances().first()?;
    Some((
        i.instance_id()?.to_owned(),
        i.lifecycle_state()?.as_str().to_owned(),
    ))
}

async fn sandbox_instance(env: &Env, id: &str) -> serde_json::Value {
    let url = format!("{}/_sandbox/ec2/instances/{id}", env.endpoint);
    match env.http.get(url).send().await {
        Ok(r) => r.json().await.unwrap_or_default(),
        Err(_) => serde_json::Value::Null,
    }
}

pub(crate) async fn patch_reboot(env: &Env) -> ScenarioReport {
    let out = &env.out;
    out.heading("Scenario 5: patch, reboot and resume during launch (agent on the instance)");
    out.say("  Group demo-patch has a launch hook (ABANDON by default, no notification target). lifehook's agent for the new instance (examples/demo-patch-reboot.toml) finds the waiting launch, updates, reboots, resumes after boot at the next step, installs, records the patch date (file and instance tag), signals CloudFormation, completes.");
    let mut checks = Vec::new();
    let dir = std::env::temp_dir().join(format!(
        "lifehook-demo-patch-{}-{}",
        std::process::id(),
        out.elapsed_s().to_bits()
    ));
    if let Err(e) = body(env, &dir, &mut checks).await {
        checks.push(check(format!("scenario stopped: {e:#}"), false, None));
    }
    let _ = std::fs::remove_dir_all(&dir);
    report(5, checks)
}

async fn body(env: &Env, dir: &Path, checks: &mut Vec<Check>) -> anyhow::Result<()> {
    let out = &env.out;
    std::fs::create_dir_all(dir).context("creating the demo's working directory")?;
    let text = PATCH_TOML.replace(WORKDIR_PLACEHOLDER, &dir.display().to_string());
    let config = lifehook_core::config::Config::from_toml(
        &text,
        Path::new("examples/demo-patch-reboot.toml"),
    )
    .map_err(|p| {
        let list: Vec<String> = p.iter().map(ToString::to_string).collect();
        anyhow!(
            "examples/demo-patch-reboot.toml is invalid:\n{}",
            list.join("\n")
        )
    })?;

    env.clients
        .autoscaling()
        .create_auto_scaling_group()
        .auto_scaling_group_name(GROUP)
        .min_size(0)
        .max_size(2)
        .desired_capacity(1)
        .availability_zones("us-east-1a")
        .launch_template(
            LaunchTemplateSpecification::builder()
                .launch_template_name("lt-demo-patch")
                .version("$Latest")
                .build(),
        )
        .lifecycle_hook_specification_list(
            LifecycleHookSpecification::builder()
                .lifecycle_hook_name("patch")
                .lifecycle_transition("autoscaling:EC2_INSTANCE_LAUNCHING")
                .heartbeat_timeout(120)
                .default_result("ABANDON")
                .build(),
        )
        .send()
        .await
        .context("CreateAutoScalingGroup demo-patch")?;
    out.action("created group demo-patch (desired 1) with launch hook `patch`");
    let id = poll("the instance in Pending:Wait", || async {
        instance_state(env)
            .await
            .filter(|(_, s)| s == "Pending:Wait")
            .map(|(i, _)| i)
    })
    .await?;
    let started = Instant::now();

    out.action(&format!("boot 1: starting the agent for {id}"));
    let agent = start_agent(env, &config, &id, GROUP)?;
    let marker: PathBuf = dir.join("reboot-requested");
    poll("the agent's reboot command", || async {
        marker.exists().then_some(())
    })
    .await?;
    out.event(
        &id,
        "the update says a reboot is required: progress saved, rebooting",
    );
    let url = format!("{}/_sandbox/ec2/instances/{id}/reboot", env.endpoint);
    env.http
        .post(url)
        .send()
        .await
        .context("recording the reboot on the sandbox")?;
    stop_agent(agent).await?;
    std::fs::remove_file(&marker).ok();
    out.action(
        "the instance reboots; boot 2: starting the agent again on the same state directory",
    );
    let agent = start_agent(env, &config, &id, GROUP)?;
    let state = poll("the launch to complete", || async {
        instance_state(env)
            .await
            .filter(|(_, s)| s != "Pending:Wait")
            .map(|(_, s)| s)
    })
    .await?;
    let took = format!("{:.1}s", started.elapsed().as_secs_f64());
    let summary = stop_agent(agent).await?;

    let inst = sandbox_instance(env, &id).await;
    let reboots = inst["reboots"]["count"].as_u64().unwrap_or(0);
    let updates = std::fs::read_to_string(dir.join("packages.log"))
        .unwrap_or_default()
        .lines()
        .count();
    checks.push(check(
        "the update asked for a reboot; the instance rebooted once",
        reboots == 1,
        None,
    ));
    checks.push(check(
        format!("after boot the agent resumed at the next step (update ran {updates} time)"),
        updates == 1 && dir.join("app.version").exists(),
        None,
    ));
    let profile = std::fs::read_to_string(dir.join("profile.d/lifehook.sh")).unwrap_or_default();
    let tag = inst["tags"]["lifehook:patched"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    checks.push(check(
        format!("patch date in profile.d and in tag lifehook:patched = {tag}"),
        !tag.is_empty() && profile.contains(&tag),
        None,
    ));
    let signals_url = format!("{}/_sandbox/cloudformation/signals", env.endpoint);
    let signals: serde_json::Value = match env.http.get(signals_url).send().await {
        Ok(r) => r.json().await.unwrap_or_default(),
        Err(_) => serde_json::Value::Null,
    };
    let signalled = signals.to_string().contains(&id) && signals.to_string().contains("SUCCESS");
    checks.push(check(
        "CloudFormation signal SUCCESS for the instance",
        signalled,
        None,
    ));
    checks.push(check(
        format!(
            "launch completed CONTINUE before the deadline: {state} ({} by the agent)",
            summary.outcomes.get("continue").copied().unwrap_or(0)
        ),
        state == "InService" && summary.outcomes.get("continue") == Some(&1),
        Some(took),
    ));
    Ok(())
}
