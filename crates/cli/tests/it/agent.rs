//! `lifehook agent` as it runs on instances: real agent processes, each pointed at the
//! sandbox's metadata service of one simulated instance.

use crate::common;

use std::path::Path;

use common::*;
use lifehook_conformance::Harness;

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

async fn topic(h: &Harness, name: &str) -> String {
    h.sns
        .create_topic()
        .name(name)
        .send()
        .await
        .expect("topic")
        .topic_arn()
        .expect("arn")
        .to_owned()
}

async fn queue_names(h: &Harness) -> Vec<String> {
    h.sqs
        .list_queues()
        .send()
        .await
        .expect("ListQueues")
        .queue_urls()
        .iter()
        .filter_map(|u| u.rsplit('/').next().map(str::to_owned))
        .collect()
}

async fn subscriptions(h: &Harness, topic: &str) -> usize {
    h.sns
        .list_subscriptions_by_topic()
        .topic_arn(topic)
        .send()
        .await
        .expect("ListSubscriptionsByTopic")
        .subscriptions()
        .len()
}

/// A request counter of the sandbox (`GET /_sandbox/stats`).
async fn requests(h: &Harness, service: &str, op: &str) -> u64 {
    h.control_get("stats").await["requests"][service][op]
        .as_u64()
        .unwrap_or(0)
}

/// The resolved lifecycle actions of `group` (`GET /_sandbox/stats`).
async fn resolved(h: &Harness, group: &str) -> Vec<serde_json::Value> {
    h.control_get("stats").await["resolved_actions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|a| a["group"] == group)
        .collect()
}

/// The sandbox's virtual date, `YYYY-MM-DD` (what `{{ now | date }}` renders).
async fn virtual_date(h: &Harness) -> String {
    h.control_get("clock").await["now"]
        .as_str()
        .expect("clock")
        .chars()
        .take(10)
        .collect()
}

async fn advance(h: &Harness, seconds: u64) {
    let r = h
        .control_post("clock/advance", serde_json::json!({ "seconds": seconds }))
        .await;
    assert!(r.status().is_success());
}

async fn object(h: &Harness, bucket: &str, key: &str) -> Option<String> {
    let out =
        h.s3.get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .ok()?;
    let bytes = out.body.collect().await.ok()?.into_bytes();
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

async fn reboots(h: &Harness, instance: &str) -> u64 {
    h.control_get(&format!("ec2/instances/{instance}")).await["reboots"]["count"]
        .as_u64()
        .unwrap_or(0)
}

/// Reference scenario 1 with `examples/agent-ship-logs.toml`: 50 agents on one SNS topic
/// (each with an inbox filtered on its own instance id), the termination hook created by
/// the agents themselves, a termination script fetched from S3 and checked, its logs
/// uploaded under the instance's key, every action completed — nothing bounced.
#[tokio::test(flavor = "multi_thread")]
async fn fifty_agents_on_one_topic_ship_their_own_logs_before_termination() {
    let _serial = common::serial().await;
    const N: usize = 50;
    let h = Harness::manual().await;
    let dir = tempfile::tempdir().unwrap();
    let topic = topic(&h, "lifecycle").await;
    for b in ["my-ops-bucket", "my-log-bucket"] {
        h.s3.create_bucket().bucket(b).send().await.unwrap();
    }
    let script = "#!/bin/sh\nset -e\nmkdir -p logs\nprintf '%s %s\\n' \"$LIFEHOOK_INSTANCE_ID\" \"$LIFEHOOK_TRANSITION\" >> marks.txt\nprintf 'shutdown log of %s in %s\\n' \"$LIFEHOOK_INSTANCE_ID\" \"$LIFEHOOK_GROUP\" > logs/shutdown.log\n";
    h.s3.put_object()
        .bucket("my-ops-bucket")
        .key("lifecycle/on-terminate.sh")
        .body(script.as_bytes().to_vec().into())
        .send()
        .await
        .unwrap();
    let digest = {
        let local = dir.path().join("reference.sh");
        std::fs::write(&local, script).unwrap();
        let out = std::process::Command::new("sha256sum")
            .arg(&local)
            .output()
            .expect("sha256sum");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .expect("digest")
            .to_owned()
    };
    // The group has no hook: the agents create it.
    create_group(&h, "fleet", 0, vec![]).await;
    h.asg
        .update_auto_scaling_group()
        .auto_scaling_group_name("fleet")
        .max_size(N as i32)
        .desired_capacity(N as i32)
        .send()
        .await
        .unwrap();
    let ids: Vec<String> = wait_for("50 instances InService", common::patience(), || async {
        let i = instances(&h, "fleet").await;
        (i.len() == N && i.iter().all(|(_, s)| s == "InService"))
            .then(|| i.into_iter().map(|(id, _)| id).collect())
    })
    .await;

    let mut agents = Vec::new();
    for id in &ids {
        let home = dir.path().join(id);
        std::fs::create_dir_all(&home).unwrap();
        let cfg = home.join("agent.toml");
        std::fs::write(
            &cfg,
            example(
                "agent-ship-logs.toml",
                &[
                    (
                        "arn:aws:sns:us-east-1:123456789012:asg-lifecycle",
                        topic.clone(),
                    ),
                    (
                        "arn:aws:iam::123456789012:role/asg-lifecycle-notify",
                        ROLE.to_owned(),
                    ),
                    ("wait_time_seconds = 20", "wait_time_seconds = 1".to_owned()),
                    ("/var/lib/lifehook/shutdown", home.display().to_string()),
                    (
                        "state_dir = \"/var/lib/lifehook\"",
                        format!("state_dir = \"{}/state\"", home.display()),
                    ),
                    (&"0".repeat(64), digest.clone()),
                ],
            ),
        )
        .unwrap();
        agents.push((
            id.clone(),
            home.clone(),
            AgentProc::start(&h, id, &cfg, &home.join("state"), &home.join("agent.log")),
        ));
    }
    // Each agent ensures the hook before it subscribes its inbox.
    wait_for(
        "every agent subscribed its inbox",
        common::patience(),
        || async { (subscriptions(&h, &topic).await == N).then_some(()) },
    )
    .await;
    let hooks = h
        .asg
        .describe_lifecycle_hooks()
        .auto_scaling_group_name("fleet")
        .send()
        .await
        .unwrap();
    let hooks = hooks.lifecycle_hooks();
    assert_eq!(hooks.len(), 1, "one hook, however many agents: {hooks:?}");
    let hk = &hooks[0];
    assert_eq!(hk.lifecycle_hook_name(), Some("ship-logs"));
    assert_eq!(hk.lifecycle_transition(), Some(TERMINATING));
    assert_eq!(hk.heartbeat_timeout(), Some(600));
    assert_eq!(hk.default_result(), Some("CONTINUE"));
    assert_eq!(hk.notification_target_arn(), Some(topic.as_str()));
    assert_eq!(hk.role_arn(), Some(ROLE));
    for (id, _, agent) in &agents {
        let log = agent.log();
        assert!(
            log.contains("hook created") || log.contains("hook exists"),
            "agent {id} did not ensure the hook:\n{log}"
        );
    }
    let bounced_before = requests(&h, "sqs", "ChangeMessageVisibility").await
        + requests(&h, "sqs", "ChangeMessageVisibilityBatch").await;

    h.asg
        .set_desired_capacity()
        .auto_scaling_group_name("fleet")
        .desired_capacity(0)
        .send()
        .await
        .unwrap();
    wait_for("every instance terminated", common::patience(), || async {
        instances(&h, "fleet").await.is_empty().then_some(())
    })
    .await;

    for (id, home, agent) in &agents {
        wait_for(
            &format!("agent {id} logged its completion"),
            common::patience(),
            || async {
                agent
                    .log()
                    .contains("lifecycle action completed")
                    .then_some(())
            },
        )
        .await;
        assert_eq!(
            lines(&home.join("marks.txt")),
            vec![format!("{id} autoscaling:EC2_INSTANCE_TERMINATING")],
            "the agent of {id} ran its own action once, and nothing else"
        );
        let written = std::fs::read_to_string(home.join("logs/shutdown.log")).unwrap();
        assert_eq!(written, format!("shutdown log of {id} in fleet\n"));
        assert_eq!(
            object(
                &h,
                "my-log-bucket",
                &format!("logs/fleet/{id}/shutdown.log")
            )
            .await
            .as_deref(),
            Some(written.as_str()),
            "the log of {id} is in S3 under its own key"
        );
        let log = agent.log();
        assert!(
            !log.contains("another instance"),
            "agent {id} saw a message that was not its own:\n{log}"
        );
    }
    // Every action was completed by its agent (CONTINUE), none timed out.
    let done = resolved(&h, "fleet").await;
    assert_eq!(done.len(), N, "{done:?}");
    for a in &done {
        assert_eq!(a["result"], "CONTINUE", "{a}");
        assert_eq!(a["how"], "completed", "{a}");
        assert_eq!(a["hook"], "ship-logs", "{a}");
    }
    assert_eq!(
        requests(&h, "sqs", "ChangeMessageVisibility").await
            + requests(&h, "sqs", "ChangeMessageVisibilityBatch").await,
        bounced_before,
        "no message was handed back (bounced) by any agent"
    );
    // (The counters are live: every message was received and deleted through them.)
    assert!(requests(&h, "sqs", "ReceiveMessage").await > 0);
    assert!(
        requests(&h, "sqs", "DeleteMessage").await
            + requests(&h, "sqs", "DeleteMessageBatch").await
            > 0
    );
    // Every agent removes what it created when it stops.
    for (id, _, agent) in agents {
        let status = agent.stop().await;
        assert!(status.success(), "agent {id}: {status}");
    }
    assert_eq!(subscriptions(&h, &topic).await, 0, "subscriptions left");
    let left: Vec<String> = queue_names(&h)
        .await
        .into_iter()
        .filter(|q| q.starts_with("lifehook-agent-"))
        .collect();
    assert!(left.is_empty(), "inbox queues left: {left:?}");
}

/// A group "web" of one instance with the termination hook "drain", and an agent for that
/// instance in queue-less mode running `pipelines`; returns once the agent has read the
/// instance's target lifecycle state.
async fn imds_agent(h: &Harness, dir: &Path, pipelines: &str) -> (String, AgentProc) {
    let id = group_of_one(
        h,
        "web",
        vec![hook("drain", TERMINATING, 300, "ABANDON", None)],
        "InService",
        common::patience(),
    )
    .await;
    let config = dir.join("agent.toml");
    std::fs::write(
        &config,
        format!("[source]\nimds = true\n\n[agent]\nimds_poll_interval = \"100ms\"\n\n{pipelines}"),
    )
    .unwrap();
    let agent = AgentProc::start(h, &id, &config, &dir.join("state"), &dir.join("agent.log"));
    wait_for("the agent reads InService", common::patience(), || async {
        agent
            .log()
            .contains("target lifecycle state changed")
            .then_some(())
    })
    .await;
    (id, agent)
}

/// Scales "web" in to nothing and waits until the agent has completed the termination and
/// the instance is gone.
async fn scale_in_through(h: &Harness, agent: &AgentProc) {
    h.asg
        .set_desired_capacity()
        .auto_scaling_group_name("web")
        .desired_capacity(0)
        .send()
        .await
        .unwrap();
    wait_for(
        "the instance terminated (CONTINUE by instance id)",
        common::patience(),
        || async { instances(h, "web").await.is_empty().then_some(()) },
    )
    .await;
    wait_for("the completion logged", common::patience(), || async {
        agent
            .log()
            .contains("lifecycle action completed")
            .then_some(())
    })
    .await;
}

/// 50 agents reading one shared queue (`[source] queue_url`, the hook's only target):
/// SQS cannot filter on receive, so an agent hands a message for another instance straight
/// back (visibility 0) and it reaches the right agent; each agent runs only its own
/// instance's termination, every action completes once, nothing is lost.
#[tokio::test(flavor = "multi_thread")]
async fn fifty_agents_on_one_queue_each_handle_only_their_own_instance() {
    let _serial = common::serial().await;
    const N: usize = 50;
    let h = Harness::manual().await;
    let dir = tempfile::tempdir().unwrap();
    let url = h
        .sqs
        .create_queue()
        .queue_name("shared")
        .send()
        .await
        .expect("CreateQueue")
        .queue_url()
        .expect("QueueUrl")
        .to_owned();
    let arn = queue_arn(&h, &url).await;
    create_group(
        &h,
        "shared",
        0,
        vec![hook("drain", TERMINATING, 300, "ABANDON", Some(&arn))],
    )
    .await;
    h.asg
        .update_auto_scaling_group()
        .auto_scaling_group_name("shared")
        .max_size(N as i32)
        .desired_capacity(N as i32)
        .send()
        .await
        .unwrap();
    let ids: Vec<String> = wait_for("50 instances InService", common::patience(), || async {
        let i = instances(&h, "shared").await;
        (i.len() == N && i.iter().all(|(_, s)| s == "InService"))
            .then(|| i.into_iter().map(|(id, _)| id).collect())
    })
    .await;
    let mut agents = Vec::new();
    for id in &ids {
        let home = dir.path().join(id);
        std::fs::create_dir_all(&home).unwrap();
        let cfg = home.join("agent.toml");
        std::fs::write(
            &cfg,
            format!(
                r#"[source]
queue_url = "{url}"
wait_time_seconds = 1

[[pipeline]]
name = "drain"
match = {{ hooks = ["drain"] }}
policy = {{ on_success = "continue" }}

[[pipeline.step]]
type = "exec"
name = "mark"
working_dir = "{}"
command = ["sh", "-c", "echo \"$LIFEHOOK_INSTANCE_ID\" >> marks.txt"]
"#,
                home.display()
            ),
        )
        .unwrap();
        agents.push((
            id.clone(),
            home.clone(),
            AgentProc::start(&h, id, &cfg, &home.join("state"), &home.join("agent.log")),
        ));
    }
    h.asg
        .set_desired_capacity()
        .auto_scaling_group_name("shared")
        .desired_capacity(0)
        .send()
        .await
        .unwrap();
    wait_for("every instance terminated", common::patience(), || async {
        instances(&h, "shared").await.is_empty().then_some(())
    })
    .await;
    let done = resolved(&h, "shared").await;
    assert_eq!(done.len(), N, "{done:?}");
    assert!(
        done.iter()
            .all(|a| a["result"] == "CONTINUE" && a["how"] == "completed"),
        "{done:?}"
    );
    for (id, home, _) in &agents {
        assert_eq!(
            lines(&home.join("marks.txt")),
            vec![id.clone()],
            "agent of {id} ran exactly its own instance's action"
        );
    }
    for (_, _, agent) in agents {
        assert!(agent.stop().await.success());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn queue_less_mode_handles_termination_through_instance_metadata() {
    let _serial = common::serial().await;
    let h = Harness::manual().await;
    let dir = tempfile::tempdir().unwrap();
    let pipelines = format!(
        r#"[[pipeline]]
name = "drain"
match = {{ hooks = ["drain"] }}
policy = {{ on_success = "continue" }}

[[pipeline.step]]
type = "exec"
name = "mark"
working_dir = "{}"
command = ["sh", "-c", "printf '%s %s %s\n' \"$LIFEHOOK_INSTANCE_ID\" \"$LIFEHOOK_HOOK\" \"$LIFEHOOK_TRANSITION\" >> marks.txt"]
"#,
        dir.path().display()
    );
    let (id, agent) = imds_agent(&h, dir.path(), &pipelines).await;
    scale_in_through(&h, &agent).await;
    assert_eq!(
        lines(&dir.path().join("marks.txt")),
        vec![format!("{id} drain autoscaling:EC2_INSTANCE_TERMINATING")]
    );
    let status = agent.stop().await;
    assert!(status.success(), "{status}");
}

/// Regression: the agent routed every action with no tags, so a pipeline with
/// `match.tags` never matched in agent mode. It now routes through the action engine like
/// the controller: the group's tags are read, and the tag-matched pipeline — listed first —
/// runs instead of the catch-all after it.
#[tokio::test(flavor = "multi_thread")]
async fn an_agent_pipeline_matched_by_the_groups_tags_runs() {
    let _serial = common::serial().await;
    let h = Harness::manual().await;
    let dir = tempfile::tempdir().unwrap();
    let mark = |name: &str| {
        format!(
            r#"[[pipeline.step]]
type = "exec"
name = "mark"
working_dir = "{}"
command = ["sh", "-c", "echo {name} >> marks.txt"]
"#,
            dir.path().display()
        )
    };
    let pipelines = format!(
        r#"[[pipeline]]
name = "payments"
match = {{ hooks = ["drain"], tags = {{ team = "pay*" }} }}
policy = {{ on_success = "continue" }}

{}
[[pipeline]]
name = "everything-else"
match = {{ hooks = ["drain"] }}
policy = {{ on_success = "continue" }}

{}"#,
        mark("payments"),
        mark("everything-else")
    );
    let (_id, agent) = imds_agent(&h, dir.path(), &pipelines).await;
    h.asg
        .create_or_update_tags()
        .tags(
            aws_sdk_autoscaling::types::Tag::builder()
                .resource_id("web")
                .resource_type("auto-scaling-group")
                .key("team")
                .value("payments")
                .propagate_at_launch(false)
                .build(),
        )
        .send()
        .await
        .expect("CreateOrUpdateTags");
    scale_in_through(&h, &agent).await;
    assert_eq!(lines(&dir.path().join("marks.txt")), vec!["payments"]);
    let status = agent.stop().await;
    assert!(status.success(), "{status}");
}

/// The patch date is on the instance's tags (control API and EC2 DescribeTags) and in the
/// file; the stack got one SUCCESS signal with the instance id.
async fn assert_patch_recorded(h: &Harness, dir: &Path, id: &str, date: &str) {
    let inst = h.control_get(&format!("ec2/instances/{id}")).await;
    assert_eq!(inst["tags"]["lifehook:patched"], date, "{inst}");
    let tags = h.ec2.describe_tags().send().await.expect("DescribeTags");
    let values: Vec<&str> = tags
        .tags()
        .iter()
        .filter(|t| t.resource_id() == Some(id) && t.key() == Some("lifehook:patched"))
        .filter_map(|t| t.value())
        .collect();
    assert_eq!(values, vec![date]);
    assert_eq!(
        std::fs::read_to_string(dir.join("profile.d/lifehook-patched.sh")).unwrap(),
        format!("export LIFEHOOK_PATCHED={date}\n")
    );
    let signals = h.control_get("cloudformation/signals").await;
    let all = signals["signals"].as_array().cloned().unwrap_or_default();
    assert_eq!(all.len(), 1, "one signal: {signals}");
    assert_eq!(all[0]["StackName"], "my-app-stack");
    assert_eq!(all[0]["LogicalResourceId"], "AppGroup");
    assert_eq!(all[0]["UniqueId"], id);
    assert_eq!(all[0]["Status"], "SUCCESS");
}

/// Reference scenario 5 with `examples/agent-patch-reboot.toml`: an update that needs a
/// reboot, the patch date on the instance's tags and in a `profile.d`-style file, the
/// application, a CloudFormation signal. The agent is restarted by the "reboot" and
/// resumes at the next step with the same action.
#[tokio::test(flavor = "multi_thread")]
async fn patch_reboot_resume_completes_the_launch_even_after_a_sigkill_mid_step() {
    let _serial = common::serial().await;
    const HEARTBEAT: i32 = 600;
    let h = Harness::manual().await;
    let dir = tempfile::tempdir().unwrap();
    let id = group_of_one(
        &h,
        "app",
        vec![hook("patch", LAUNCHING, HEARTBEAT, "ABANDON", None)],
        "Pending:Wait",
        common::patience(),
    )
    .await;
    let config = patch_config(dir.path(), &h.endpoint(), &id);
    let state = dir.path().join("state");
    let log = dir.path().join("agent.log");
    eprintln!("agent log: {}", log.display());
    let _keep = std::env::var_os("LIFEHOOK_KEEP_TEST_DIR").map(|_| dir.path().to_path_buf());

    // Boot 1: the hook exists (the example's `[[agent.hook]]` leaves it as it is); the
    // update asks for a reboot; the agent records the next step and reboots.
    let agent = AgentProc::start(&h, &id, &config, &state, &log);
    wait_for("the instance rebooted", common::patience(), || async {
        (reboots(&h, &id).await == 1).then_some(())
    })
    .await;
    agent.kill().await; // the machine goes down
    // The reboot takes a while: 2/3 of the heartbeat timeout, with nobody heartbeating.
    advance(&h, 400).await;
    let date = virtual_date(&h).await;

    // Boot 2: a heartbeat first, then it resumes at the tag; killed in the middle of
    // `install`.
    let agent = AgentProc::start(&h, &id, &config, &state, &log);
    wait_for("install started", common::patience(), || async {
        dir.path().join("install-started").exists().then_some(())
    })
    .await;
    agent.kill().await;
    std::fs::remove_file(dir.path().join("install-started")).unwrap();
    // Down again for 2/3 of the heartbeat timeout: 800 s since the launch, past the
    // heartbeat timeout without the heartbeats sent at each start.
    advance(&h, 400).await;

    // Boot 3 (a crash restart): `install` runs again, finishes, the action completes.
    let agent = AgentProc::start(&h, &id, &config, &state, &log);
    wait_for("install started again", common::patience(), || async {
        dir.path().join("install-started").exists().then_some(())
    })
    .await;
    std::fs::write(dir.path().join("release"), b"").unwrap();
    wait_for("the instance InService", common::patience(), || async {
        (instances(&h, "app").await == vec![(id.clone(), "InService".to_owned())]).then_some(())
    })
    .await;
    assert_eq!(
        lines(&dir.path().join("marks.txt")),
        vec!["update", "install", "install", "installed"],
        "update ran once, install resumed after the reboot and again after the crash"
    );
    assert_eq!(reboots(&h, &id).await, 1);
    wait_for("the completion logged", common::patience(), || async {
        agent
            .log()
            .contains("lifecycle action completed")
            .then_some(())
    })
    .await;
    assert_patch_recorded(&h, dir.path(), &id, &date).await;
    // Completed CONTINUE by the agent, once, before any deadline; never ABANDONed.
    let done = resolved(&h, "app").await;
    assert_eq!(done.len(), 1, "{done:?}");
    assert_eq!(done[0]["result"], "CONTINUE", "{done:?}");
    assert_eq!(done[0]["how"], "completed", "{done:?}");
    assert_eq!(done[0]["instance"], id.as_str());
    let took = done[0]["resolved_ms"].as_u64().unwrap() - done[0]["started_ms"].as_u64().unwrap();
    assert!(
        took >= 800_000 && took > (HEARTBEAT as u64) * 1000,
        "the action outlived its heartbeat timeout only through the agent's heartbeats: {took} ms"
    );
    // The hook the group already had was left as it was (the example asks for 15m).
    let hooks = h
        .asg
        .describe_lifecycle_hooks()
        .auto_scaling_group_name("app")
        .send()
        .await
        .unwrap();
    assert_eq!(hooks.lifecycle_hooks().len(), 1);
    assert_eq!(
        hooks.lifecycle_hooks()[0].heartbeat_timeout(),
        Some(HEARTBEAT)
    );
    assert_eq!(requests(&h, "autoscaling", "PutLifecycleHook").await, 0);
    let text = agent.log();
    assert!(text.contains("hook exists"), "{text}");
    assert!(text.contains("resuming an action in progress"), "{text}");
    assert_eq!(
        text.matches("heartbeat sent; resuming").count(),
        2,
        "one heartbeat at each start after the first:\n{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("lifecycle action completed") && l.contains("CONTINUE")),
        "{text}"
    );
    let agent_log = agent.log();
    assert!(agent.stop().await.success());
    // Nothing is left in progress.
    let left: Vec<String> = std::fs::read_dir(state.join("actions"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.is_empty(), "left in progress: {left:?}\n{}", agent_log);
}

/// No group: the same pipeline runs (the tag and the signal are AWS calls of their own,
/// they work for any instance), and every lifecycle hook call is skipped: no hook is
/// ensured, no heartbeat, no completion.
#[tokio::test(flavor = "multi_thread")]
async fn without_a_group_the_steps_run_and_hook_calls_are_skipped() {
    let _serial = common::serial().await;
    let h = Harness::manual().await;
    let dir = tempfile::tempdir().unwrap();
    let made = h
        .control_post("ec2/instances", serde_json::json!({"region": "us-east-1"}))
        .await;
    let status = made.status();
    let v: serde_json::Value = made.json().await.unwrap();
    assert!(status.is_success(), "{v}");
    let id = v["instance_id"].as_str().expect("instance id").to_owned();
    let config = patch_config(dir.path(), &h.endpoint(), &id);
    std::fs::write(dir.path().join("release"), b"").unwrap();
    let date = virtual_date(&h).await;
    let state = dir.path().join("state");
    let log = dir.path().join("agent.log");
    let agent = AgentProc::start(&h, &id, &config, &state, &log);
    wait_for("the reboot", common::patience(), || async {
        (reboots(&h, &id).await == 1).then_some(())
    })
    .await;
    agent.kill().await;
    let agent = AgentProc::start(&h, &id, &config, &state, &log);
    wait_for("the pipeline finished", common::patience(), || async {
        lines(&dir.path().join("marks.txt"))
            .contains(&"installed".to_owned())
            .then_some(())
    })
    .await;
    wait_for("the action finished", common::patience(), || async {
        agent
            .log()
            .contains("no group: skipping CompleteLifecycleAction")
            .then_some(())
    })
    .await;
    let text = agent.log();
    assert_eq!(
        text.matches("this instance is in no Auto Scaling group")
            .count(),
        2,
        "one line per start:\n{text}"
    );
    assert_eq!(
        lines(&dir.path().join("marks.txt")),
        vec!["update", "install", "installed"]
    );
    assert_patch_recorded(&h, dir.path(), &id, &date).await;
    for op in [
        "PutLifecycleHook",
        "RecordLifecycleActionHeartbeat",
        "CompleteLifecycleAction",
    ] {
        assert_eq!(requests(&h, "autoscaling", op).await, 0, "{op} was called");
    }
    assert!(agent.stop().await.success());
    assert_eq!(std::fs::read_dir(state.join("actions")).unwrap().count(), 0);
}

/// `(VmRSS, VmHWM)` of a process, KiB.
#[cfg(target_os = "linux")]
fn rss_and_peak_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
    };
    (kib("VmRSS:"), kib("VmHWM:"))
}

/// Once idle — after start-up, and again after an action — the agent gives back the code
/// mappings that start-up and the action left resident (`agent/memory.rs`): its resident
/// set falls well below its peak, and the code it dropped still runs when it is needed.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread")]
async fn an_idle_agent_keeps_only_its_working_set_resident() {
    let _serial = common::serial().await;
    let h = Harness::manual().await;
    let dir = tempfile::tempdir().unwrap();
    let (_, agent) = imds_agent(
        &h,
        dir.path(),
        r#"[[pipeline]]
name = "drain"
match = { hooks = ["drain"] }

[[pipeline.step]]
type = "exec"
name = "note"
command = ["sh", "-c", "echo \"$LIFEHOOK_INSTANCE_ID\""]
"#,
    )
    .await;
    let pid = agent.child.id().expect("the agent runs");
    let below_peak = |when: &'static str| {
        wait_for(when, common::patience(), move || async move {
            let (rss, peak) = rss_and_peak_kib(pid);
            (rss * 4 < peak * 3).then_some((rss, peak))
        })
    };
    let (rss, peak) = below_peak("idle after start-up: VmRSS under 3/4 of VmHWM").await;
    eprintln!("idle after start-up: VmRSS {rss} KiB, peak {peak} KiB");
    scale_in_through(&h, &agent).await;
    let (rss, peak) = below_peak("idle after the action: VmRSS under 3/4 of VmHWM").await;
    eprintln!("idle after the action: VmRSS {rss} KiB, peak {peak} KiB");
    let status = agent.stop().await;
    assert!(status.success(), "{status}");
}
