//! `lifehook controller` as a user runs it: the real binary against the sandbox, for each
//! delivery path, routing, failures, bad messages, replicas, crashes and shutdown.

use crate::common;

use std::path::{Path, PathBuf};

use common::*;
use lifehook_conformance::Harness;

/// Writes a controller configuration with one pipeline per `(name, groups, transitions,
/// on_failure, argv)` entry. Each exec step runs in `dir`.
fn write_config(
    dir: &Path,
    queue_url: &str,
    pipelines: &[(&str, &str, &str, &str, &str)],
) -> PathBuf {
    let mut toml = format!(
        "[source]\nqueue_url = \"{queue_url}\"\nwait_time_seconds = 1\nvisibility_timeout = \"60s\"\nconcurrency = 8\n\n"
    );
    for (name, groups, transitions, on_failure, argv) in pipelines {
        toml.push_str(&format!(
            "[[pipeline]]\nname = \"{name}\"\nmatch = {{ groups = [{groups}], transitions = [{transitions}] }}\n\
             policy = {{ on_success = \"continue\", on_failure = \"{on_failure}\" }}\n\n\
             [[pipeline.step]]\ntype = \"exec\"\nname = \"work\"\ncommand = {argv}\nworking_dir = \"{}\"\ntimeout = \"10m\"\n\n",
            dir.display()
        ));
    }
    let path = dir.join("controller.toml");
    std::fs::write(&path, toml).expect("write config");
    path
}

/// An exec step that appends the action's instance id and transition to marks.txt.
const MARK: &str = r#"["sh", "-c", "printf '%s %s\n' \"$LIFEHOOK_INSTANCE_ID\" \"$LIFEHOOK_TRANSITION\" >> marks.txt"]"#;

fn marks(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("marks.txt"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

async fn all_in_state(h: &Harness, group: &str, n: usize, state: &str) -> Option<Vec<String>> {
    let inst = instances(h, group).await;
    (inst.len() == n && inst.iter().all(|(_, s)| s == state))
        .then(|| inst.into_iter().map(|(i, _)| i).collect())
}

#[tokio::test(flavor = "multi_thread")]
async fn direct_sqs_launch_and_terminate_complete_continue() {
    let _serial = common::serial().await;
    let h = Harness::manual().await;
    let dir = tempfile::tempdir().unwrap();
    let (url, arn, dlq) = queue_with_dlq(&h, "hooks", 3).await;
    create_group(
        &h,
        "web-1",
        2,
        vec![
            hook("launch", LAUNCHING, 300, "ABANDON", Some(&arn)),
            hook("terminate", TERMINATING, 300, "ABANDON", Some(&arn)),
        ],
    )
    .await;
    let config = write_config(
        dir.path(),
        &url,
        &[(
            "web",
            "\"web-*\"",
            "\"launching\", \"terminating\"",
            "abandon",
            MARK,
        )],
    );
    let c = Proc::controller(&h.endpoint(), &config, &dir.path().join("controller.log"));

    let ids = wait_for("both instances InService", common::patience(), || {
        all_in_state(&h, "web-1", 2, "InService")
    })
    .await;
    h.asg
        .set_desired_capacity()
        .auto_scaling_group_name("web-1")
        .desired_capacity(0)
        .send()
        .await
        .unwrap();
    wait_for("both instances gone", common::patience(), || async {
        instances(&h, "web-1").await.is_empty().then_some(())
    })
    .await;

    let m = marks(dir.path());
    for id in &ids {
        assert!(m.contains(&format!("{id} {LAUNCHING}")), "{m:?}");
        assert!(m.contains(&format!("{id} {TERMINATING}")), "{m:?}");
    }
    assert_eq!(m.len(), 4, "each action ran its pipeline once: {m:?}");
    // The test notifications were acknowledged, nothing was set aside, nothing is left.
    wait_for("queue drained", common::patience(), || async {
        (queue_depth(&h, &url).await == (0, 0)).then_some(())
    })
    .await;
    assert_eq!(queue_depth(&h, &dlq).await, (0, 0));
    let term = "lifehook_actions_total{transition=\"terminating\",outcome=\"continue\"}";
    wait_for("terminations counted", common::patience(), || async {
        (c.metric(term).await >= 2.0).then_some(())
    })
    .await;
    assert_eq!(
        c.metric("lifehook_actions_total{transition=\"launching\",outcome=\"continue\"}")
            .await,
        2.0
    );
    assert_eq!(c.metric(term).await, 2.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn sns_and_eventbridge_paths_and_several_groups_on_one_queue() {
    let _serial = common::serial().await;
    let h = Harness::manual().await;
    let dir = tempfile::tempdir().unwrap();
    let (url, arn, dlq) = queue_with_dlq(&h, "fleet", 3).await;
    // Group "web-sns": hook → SNS topic → the queue (envelope, raw delivery off).
    let topic = h
        .sns
        .create_topic()
        .name("lifecycle")
        .send()
        .await
        .unwrap()
        .topic_arn()
        .unwrap()
        .to_owned();
    h.sns
        .subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(&arn)
        .send()
        .await
        .unwrap();
    create_group(
        &h,
        "web-sns",
        1,
        vec![hook("launch", LAUNCHING, 300, "ABANDON", Some(&topic))],
    )
    .await;
    // Group "batch-eb": no target; an EventBridge rule routes its lifecycle events to the queue.
    let pattern = serde_json::json!({
        "source": ["aws.autoscaling"],
        "detail-type": ["EC2 Instance-launch Lifecycle Action"],
        "detail": {"AutoScalingGroupName": [{"prefix": "batch-"}]}
    });
    h.events
        .put_rule()
        .name("batch-lifecycle")
        .event_pattern(pattern.to_string())
        .send()
        .await
        .unwrap();
    h.events
        .put_targets()
        .rule("batch-lifecycle")
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("q")
                .arn(&arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    create_group(
        &h,
        "batch-eb",
        1,
        vec![hook("launch", LAUNCHING, 300, "ABANDON", None)],
    )
    .await;
    // Group "direct": straight to the queue.
    create_group(
        &h,
        "direct-1",
        1,
        vec![hook("launch", LAUNCHING, 300, "ABANDON", Some(&arn))],
    )
    .await;

    let config = write_config(
        dir.path(),
        &url,
        &[
            ("web", "\"web-*\"", "\"launching\"", "abandon", MARK),
            ("batch", "\"batch-*\"", "\"launching\"", "abandon", MARK),
            ("direct", "\"direct-*\"", "\"launching\"", "abandon", MARK),
        ],
    );
    let _c = Proc::controller(&h.endpoint(), &config, &dir.path().join("controller.log"));
    for g in ["web-sns", "batch-eb", "direct-1"] {
        wait_for(&format!("{g} InService"), common::patience(), || {
            all_in_state(&h, g, 1, "InService")
        })
        .await;
    }
    assert_eq!(marks(dir.path()).len(), 3);
    assert_eq!(queue_depth(&h, &dlq).await, (0, 0), "nothing set aside");
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_step_abandons_the_launch_and_the_instance_is_replaced() {
    let _serial = common::serial().await;
    let h = Harness::manual().await;
    let dir = tempfile::tempdir().unwrap();
    let (url, arn, _dlq) = queue_with_dlq(&h, "hooks", 3).await;
    // The step fails the first time it sees an instance, and succeeds for the replacement.
    let argv =
        r#"["sh", "-c", "if [ -e first ]; then exit 0; fi; touch first; echo broken >&2; exit 3"]"#;
    create_group(
        &h,
        "app-1",
        1,
        vec![hook("launch", LAUNCHING, 300, "CONTINUE", Some(&arn))],
    )
    .await;
    let first = wait_for("first instance", common::patience(), || async {
        instances(&h, "app-1").await.first().map(|i| i.0.clone())
    })
    .await;
    let config = write_config(
        dir.path(),
        &url,
        &[("app", "\"app-*\"", "\"launching\"", "abandon", argv)],
    );
    let c = Proc::controller(&h.endpoint(), &config, &dir.path().join("controller.log"));

    let replacement = wait_for("a replacement InService", common::patience(), || async {
        let inst = instances(&h, "app-1").await;
        inst.iter()
            .find(|(i, s)| i != &first && s == "InService")
            .map(|(i, _)| i.clone())
    })
    .await;
    assert_ne!(replacement, first);
    assert!(
        instances(&h, "app-1")
            .await
            .iter()
            .all(|(i, _)| i != &first),
        "the abandoned instance is gone"
    );
    let cont = "lifehook_actions_total{transition=\"launching\",outcome=\"continue\"}";
    wait_for("the replacement counted", common::patience(), || async {
        (c.metric(cont).await >= 1.0).then_some(())
    })
    .await;
    assert_eq!(
        c.metric("lifehook_actions_total{transition=\"launching\",outcome=\"abandon\"}")
            .await,
        1.0
    );
    assert_eq!(c.metric(cont).await, 1.0);
    // The failure is a warning naming the step, with what it printed (issue 15).
    let log = std::fs::read_to_string(dir.path().join("controller.log")).unwrap_or_default();
    let report = log
        .lines()
        .find(|l| l.contains("step finished") && l.contains("status=\"failed\""))
        .unwrap_or_default();
    // Once: not again at the end of the pipeline (issue 15: "each step is logged twice").
    let lines_of_the_step = log.lines().filter(|l| l.contains("step=work")).count();
    assert_eq!(lines_of_the_step, 1, "{log}");
    // The ABANDON it sent is a warning too, naming the result and who gave it.
    let done = log
        .lines()
        .find(|l| l.contains("action done") && l.contains("result=\"ABANDON\""))
        .unwrap_or_default();
    assert!(done.contains(" WARN "), "{done:?}\n{log}");
    assert!(done.contains("by=\"handler\""), "{done:?}");
    assert!(report.contains(" WARN "), "{report:?}\n{log}");
    assert!(report.contains("step=work"), "{report:?}");
    assert!(report.contains("broken"), "the step's output: {report:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_foreign_and_test_messages_never_crash_or_loop() {
    let _serial = common::serial().await;
    let h = Harness::manual().await;
    let dir = tempfile::tempdir().unwrap();
    let (url, arn, dlq) = queue_with_dlq(&h, "hooks", 3).await;
    let garbage = [
        "not json at all",
        r#"{"LifecycleActionToken":"917070d0-a303-474b-a36c-a5e38a19de5e","LifecycleTransition":"autoscaling:EC2_INSTANCE_LAUNCH"#,
        r#"{"hello":"world"}"#,
        r#"{"Event":"autoscaling:EC2_INSTANCE_LAUNCH","AutoScalingGroupName":"x","Service":"AWS Auto Scaling"}"#,
        r#"{"Type":"Notification","TopicArn":"t","Message":"{not json"}"#,
    ];
    for body in garbage {
        h.sqs
            .send_message()
            .queue_url(&url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }
    let test = r#"{"AccountId":"000000000000","RequestId":"r","AutoScalingGroupARN":"arn","AutoScalingGroupName":"web-1","Service":"AWS Auto Scaling","Event":"autoscaling:TEST_NOTIFICATION","Time":"2026-11-22T00:00:00.000Z"}"#;
    h.sqs
        .send_message()
        .queue_url(&url)
        .message_body(test)
        .send()
        .await
        .unwrap();
    let config = write_config(
        dir.path(),
        &url,
        &[("web", "\"web-*\"", "\"launching\"", "abandon", MARK)],
    );
    let c = Proc::controller(&h.endpoint(), &config, &dir.path().join("controller.log"));

    // Every bad message ends up in the dead-letter queue, the test notification is deleted.
    wait_for("bad messages set aside", common::patience(), || async {
        let (dlq_visible, _) = queue_depth(&h, &dlq).await;
        (dlq_visible == garbage.len() as u64 && queue_depth(&h, &url).await == (0, 0)).then_some(())
    })
    .await;
    // And the controller still handles real work afterwards.
    create_group(
        &h,
        "web-1",
        1,
        vec![hook("launch", LAUNCHING, 300, "ABANDON", Some(&arn))],
    )
    .await;
    wait_for("web-1 InService", common::patience(), || {
        all_in_state(&h, "web-1", 1, "InService")
    })
    .await;
    assert!(c.ready().await, "the controller is still up");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_on_one_queue_complete_every_action_exactly_once() {
    let _serial = common::serial().await;
    let h = Harness::manual().await;
    let dir = tempfile::tempdir().unwrap();
    let (url, arn, _dlq) = queue_with_dlq(&h, "hooks", 3).await;
    let config = write_config(
        dir.path(),
        &url,
        &[("web", "\"web-*\"", "\"launching\"", "abandon", MARK)],
    );
    let a = Proc::controller(&h.endpoint(), &config, &dir.path().join("a.log"));
    let b = Proc::controller(&h.endpoint(), &config, &dir.path().join("b.log"));
    wait_for("both replicas ready", common::patience(), || async {
        (a.ready().await && b.ready().await).then_some(())
    })
    .await;
    create_group(
        &h,
        "web-1",
        8,
        vec![hook("launch", LAUNCHING, 300, "ABANDON", Some(&arn))],
    )
    .await;
    let ids = wait_for("8 instances InService", common::patience(), || {
        all_in_state(&h, "web-1", 8, "InService")
    })
    .await;

    // Outcomes are counted once the message is deleted, just after the completion.
    let key = "lifehook_actions_total{transition=\"launching\",outcome=\"continue\"}";
    let total = wait_for("8 completions counted", common::patience(), || async {
        let n = a.metric(key).await + b.metric(key).await;
        (n >= 8.0).then_some(n)
    })
    .await;
    assert_eq!(total, 8.0, "each action completed once across replicas");
    let resolved = "lifehook_actions_total{transition=\"launching\",outcome=\"already-resolved\"}";
    assert_eq!(
        a.metric(resolved).await + b.metric(resolved).await,
        0.0,
        "no action handled twice"
    );
    let mut m = marks(dir.path());
    m.sort();
    assert_eq!(m.len(), 8, "{m:?}");
    for id in ids {
        assert_eq!(
            m.iter().filter(|l| l.starts_with(&id)).count(),
            1,
            "{id} ran once: {m:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_mid_step_then_restart_completes_the_action_once() {
    let _serial = common::serial().await;
    let h = Harness::manual().await;
    let dir = tempfile::tempdir().unwrap();
    let (url, arn, _dlq) = queue_with_dlq(&h, "hooks", 5).await;
    // First run: mark "started" and hang. After the crash, the rerun finds the mark and
    // finishes at once (steps are written to be safe to run twice).
    let argv = r#"["sh", "-c", "if [ -e started ]; then echo done >> finished; exit 0; fi; touch started; exec sleep 300"]"#;
    let config = write_config(
        dir.path(),
        &url,
        &[("web", "\"web-*\"", "\"launching\"", "abandon", argv)],
    );
    let first = Proc::controller(&h.endpoint(), &config, &dir.path().join("first.log"));
    create_group(
        &h,
        "web-1",
        1,
        vec![hook("launch", LAUNCHING, 600, "ABANDON", Some(&arn))],
    )
    .await;
    wait_for("the step started", common::patience(), || async {
        dir.path().join("started").exists().then_some(())
    })
    .await;
    first.sigkill();
    let mut first = first;
    let _ = first.child.wait().await;
    // The message is still in flight; once its visibility timeout passes it is delivered again.
    assert_eq!(instances(&h, "web-1").await[0].1, "Pending:Wait");
    h.advance(120.0).await;
    let second = Proc::controller(&h.endpoint(), &config, &dir.path().join("second.log"));
    wait_for("InService after the restart", common::patience(), || {
        all_in_state(&h, "web-1", 1, "InService")
    })
    .await;
    let cont = "lifehook_actions_total{transition=\"launching\",outcome=\"continue\"}";
    wait_for("the completion counted", common::patience(), || async {
        (second.metric(cont).await >= 1.0).then_some(())
    })
    .await;
    assert_eq!(second.metric(cont).await, 1.0);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("finished"))
            .unwrap()
            .lines()
            .count(),
        1
    );
    wait_for("queue drained", common::patience(), || async {
        (queue_depth(&h, &url).await == (0, 0)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_hands_in_flight_actions_back_at_once() {
    let _serial = common::serial().await;
    let h = Harness::manual().await;
    let dir = tempfile::tempdir().unwrap();
    let (url, arn, _dlq) = queue_with_dlq(&h, "hooks", 5).await;
    let argv = r#"["sh", "-c", "touch started; exec sleep 300"]"#;
    let config = write_config(
        dir.path(),
        &url,
        &[("web", "\"web-*\"", "\"launching\"", "abandon", argv)],
    );
    let mut c = Proc::controller(&h.endpoint(), &config, &dir.path().join("controller.log"));
    create_group(
        &h,
        "web-1",
        1,
        vec![hook("launch", LAUNCHING, 600, "ABANDON", Some(&arn))],
    )
    .await;
    wait_for("the step started", common::patience(), || async {
        dir.path().join("started").exists().then_some(())
    })
    .await;
    c.sigterm();
    let status = tokio::time::timeout(common::patience(), c.child.wait())
        .await
        .expect("stopped within the grace period")
        .unwrap();
    assert!(status.success(), "clean exit: {status:?}");
    // Handed back: visible again without waiting out the visibility timeout.
    assert_eq!(queue_depth(&h, &url).await, (1, 0));
    assert_eq!(
        instances(&h, "web-1").await[0].1,
        "Pending:Wait",
        "not completed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_configuration_exits_2_before_starting() {
    let _serial = common::serial().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[source]\nqueue_url = \"http://q\"\n\n[[pipeline]]\nname = \"p\"\n[[pipeline.step]]\ntype = \"teleport\"\n").unwrap();
    let out = lifehook_cmd("http://127.0.0.1:9")
        .args(["controller", "--config"])
        .arg(&path)
        .output()
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml:7:"), "names the line: {err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_notification_metadata_reaches_exec_only_as_data() {
    let _serial = common::serial().await;
    let h = Harness::manual().await;
    let dir = tempfile::tempdir().unwrap();
    let (url, arn, _dlq) = queue_with_dlq(&h, "hooks", 3).await;
    // Shell metacharacters of every kind, then padding up to the 4000-character limit.
    let mut metadata = String::from(
        "'; touch pwned1; echo ' \"$(touch pwned2)\" `touch pwned3` $((1+1)) ${HOME} | touch pwned4 & > pwned5 \\ \n{\"app\":\"web\"}",
    );
    metadata.push_str(&"x".repeat(4000 - metadata.chars().count()));
    let spec = aws_sdk_autoscaling::types::LifecycleHookSpecification::builder()
        .lifecycle_hook_name("launch")
        .lifecycle_transition(LAUNCHING)
        .heartbeat_timeout(300)
        .default_result("ABANDON")
        .notification_target_arn(&arn)
        .role_arn(ROLE)
        .notification_metadata(&metadata)
        .build();
    create_group(&h, "web-1", 1, vec![spec]).await;
    // The step copies the metadata byte for byte, from the environment variable and from a
    // templated argv element, into files.
    let argv = r#"["sh", "-c", "printf '%s' \"$LIFEHOOK_METADATA\" > from-env; printf '%s' \"$1\" > from-argv", "lifehook-step", "{{ metadata }}"]"#;
    let config = write_config(
        dir.path(),
        &url,
        &[("web", "\"web-*\"", "\"launching\"", "abandon", argv)],
    );
    let _c = Proc::controller(&h.endpoint(), &config, &dir.path().join("controller.log"));
    wait_for("InService", common::patience(), || {
        all_in_state(&h, "web-1", 1, "InService")
    })
    .await;

    assert_eq!(
        std::fs::read_to_string(dir.path().join("from-env")).unwrap(),
        metadata
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("from-argv")).unwrap(),
        metadata
    );
    for i in 1..=5 {
        assert!(
            !dir.path().join(format!("pwned{i}")).exists(),
            "pwned{i} was created: metadata ran as code"
        );
    }
}

/// Regression (issue 13): a hand-back was swallowed by the controller's own long poll. A
/// transient failure to describe the hook hands the message back (visibility 0); the
/// pending receive got it again at once, took it for a redelivery of the message still
/// held, refreshed a receipt handle and ran nothing — the action then sat invisible until
/// its hook timed out (here never: the clock is manual). Now the hand-back forgets the
/// action first, so the returning message runs it again at once.
#[tokio::test(flavor = "multi_thread")]
async fn a_handed_back_action_runs_again_at_once() {
    let _serial = common::serial().await;
    let h = Harness::manual().await;
    let dir = tempfile::tempdir().unwrap();
    let (url, arn, _dlq) = queue_with_dlq(&h, "hooks", 5).await;
    create_group(
        &h,
        "web-1",
        0,
        vec![hook("launch", LAUNCHING, 30, "ABANDON", Some(&arn))],
    )
    .await;
    // More throttling than the SDK's own retries absorb: at least one hand-back.
    let r = h
        .control_post(
            "faults",
            serde_json::json!({"rules": [{"service": "autoscaling", "operation": "DescribeLifecycleHooks", "kind": "throttle", "count": 6}]}),
        )
        .await;
    assert!(r.status().is_success());
    let config = write_config(
        dir.path(),
        &url,
        &[("web", "\"web-*\"", "\"launching\"", "abandon", MARK)],
    );
    let c = Proc::controller(&h.endpoint(), &config, &dir.path().join("controller.log"));
    h.asg
        .set_desired_capacity()
        .auto_scaling_group_name("web-1")
        .desired_capacity(1)
        .send()
        .await
        .unwrap();
    let ids = wait_for("the instance InService", common::patience(), || {
        all_in_state(&h, "web-1", 1, "InService")
    })
    .await;
    let log = std::fs::read_to_string(dir.path().join("controller.log")).unwrap_or_default();
    assert!(
        log.contains("handing the action back to retry"),
        "the throttling caused no hand-back: {log}"
    );
    // The line that ends the action names its pipeline, the result sent and who sent it.
    let done = wait_for(
        "the line that ends the action",
        common::patience(),
        || async {
            std::fs::read_to_string(dir.path().join("controller.log"))
                .unwrap_or_default()
                .lines()
                .find(|l| l.contains("action done") && l.contains("outcome=\"continue\""))
                .map(str::to_owned)
        },
    )
    .await;
    for field in ["pipeline=\"web\"", "result=\"CONTINUE\"", "by=\"handler\""] {
        assert!(
            done.contains(field),
            "{field} missing from: {done:?}\n{log}"
        );
    }
    drop(c);
    assert_eq!(marks(dir.path()), vec![format!("{} {LAUNCHING}", ids[0])]);
    let stats = h.control_get("stats").await;
    let launch: Vec<&serde_json::Value> = stats["resolved_actions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["group"] == "web-1")
        .collect();
    assert_eq!(launch.len(), 1, "{stats}");
    assert_eq!(launch[0]["how"], "completed", "{stats}");
    assert_eq!(launch[0]["result"], "CONTINUE", "{stats}");
}

/// Regression (issue 13): a message for a group that no longer exists looped — the
/// `ValidationError` of `DescribeLifecycleHooks` ("AutoScalingGroup name not found") was
/// taken for a failure to retry: hand back, receive, describe, hand back … Now the action
/// is known to be gone and the message is set aside, with the reason, at once.
#[tokio::test(flavor = "multi_thread")]
async fn a_message_for_a_deleted_group_is_set_aside_not_retried() {
    let _serial = common::serial().await;
    use aws_sdk_sqs::types::MessageSystemAttributeName;

    let h = Harness::manual().await;
    let dir = tempfile::tempdir().unwrap();
    let (url, arn, dlq) = queue_with_dlq(&h, "hooks", 5).await;
    create_group(
        &h,
        "web-1",
        0,
        vec![hook("launch", LAUNCHING, 30, "ABANDON", Some(&arn))],
    )
    .await;
    h.asg
        .set_desired_capacity()
        .auto_scaling_group_name("web-1")
        .desired_capacity(1)
        .send()
        .await
        .unwrap();
    // The launch notification goes out as the instance enters Pending:Wait.
    wait_for("the instance in Pending:Wait", common::patience(), || {
        all_in_state(&h, "web-1", 1, "Pending:Wait")
    })
    .await;
    h.asg
        .delete_auto_scaling_group()
        .auto_scaling_group_name("web-1")
        .force_delete(true)
        .send()
        .await
        .unwrap();
    let config = write_config(
        dir.path(),
        &url,
        &[("web", "\"web-*\"", "\"launching\"", "abandon", MARK)],
    );
    let c = Proc::controller(&h.endpoint(), &config, &dir.path().join("controller.log"));
    let moved = wait_for("the message set aside", common::patience(), || async {
        let out = h
            .sqs
            .receive_message()
            .queue_url(&dlq)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap();
        out.messages.unwrap_or_default().pop()
    })
    .await;
    let reason = moved
        .message_attributes()
        .and_then(|a| a.values().find_map(|v| v.string_value()))
        .unwrap_or_default()
        .to_owned();
    assert!(reason.contains("no longer exists"), "reason: {reason:?}");
    // The original is deleted once the copy is in the dead-letter queue (the consumer
    // batches its deletes).
    wait_for("the queue empty", common::patience(), || async {
        (lifehook_conformance::queue_len(&h, &url).await == (0, 0)).then_some(())
    })
    .await;
    let describes =
        h.control_get("stats").await["requests"]["autoscaling"]["DescribeLifecycleHooks"]
            .as_u64()
            .unwrap_or(0);
    assert!(
        describes <= 2,
        "DescribeLifecycleHooks called {describes} times"
    );
    let log = std::fs::read_to_string(dir.path().join("controller.log")).unwrap_or_default();
    assert!(!log.contains("handing the action back"), "{log}");
    drop(c);
    assert!(
        marks(dir.path()).is_empty(),
        "no step may run for a gone action"
    );
}

/// The controller reads its queue before it says it started (issue 15): a queue that does
/// not exist is an error at start (exit 1, named), and the dead-letter queue it found is
/// in the start line; a second controller on a taken admin port is told what to do.
#[tokio::test(flavor = "multi_thread")]
async fn the_controller_checks_its_queue_and_admin_port_at_start() {
    let _serial = common::serial().await;
    let h = Harness::manual().await;
    let dir = tempfile::tempdir().unwrap();
    let (url, _arn, _dlq) = queue_with_dlq(&h, "hooks", 5).await;
    let config = write_config(
        dir.path(),
        &url,
        &[("web", "\"web-*\"", "\"launching\"", "abandon", MARK)],
    );
    let c = Proc::controller(&h.endpoint(), &config, &dir.path().join("controller.log"));
    let started = wait_for("the start line", common::patience(), || async {
        let log = std::fs::read_to_string(dir.path().join("controller.log")).unwrap_or_default();
        log.lines()
            .find(|l| l.contains("controller started"))
            .map(str::to_owned)
    })
    .await;
    assert!(
        started.contains("dead_letter_queue=\"arn:aws:sqs:us-east-1:000000000000:hooks-dlq\""),
        "{started}"
    );
    // A second controller on the first one's admin address.
    let second = lifehook_cmd(&h.endpoint())
        .args(["controller", "--config"])
        .arg(&config)
        .args(["--admin-listen", &c.admin])
        .output()
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{err}");
    assert!(err.contains("--admin-listen"), "{err}");
    drop(c);

    // A queue that does not exist.
    let missing = write_config(
        dir.path(),
        &format!("{}/000000000000/no-such-queue", h.endpoint()),
        &[("web", "\"web-*\"", "\"launching\"", "abandon", MARK)],
    );
    let out = lifehook_cmd(&h.endpoint())
        .args(["controller", "--admin-listen", "off", "--config"])
        .arg(&missing)
        .output()
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("no-such-queue"), "{err}");
    assert!(!err.contains("controller started"), "{err}");
}

/// Issue 13: a pipeline is not run for an action found already over. Both launch messages
/// are redeliveries (received once before, as after a crash); one action was completed
/// meanwhile. The controller checks each with a heartbeat before the first step: only the
/// live one runs its step.
#[tokio::test(flavor = "multi_thread")]
async fn a_redelivered_message_for_an_action_already_over_runs_no_step() {
    let _serial = common::serial().await;
    let h = Harness::manual().await;
    let dir = tempfile::tempdir().unwrap();
    let (url, arn, _dlq) = queue_with_dlq(&h, "hooks", 5).await;
    create_group(
        &h,
        "web-1",
        2,
        vec![hook("launch", LAUNCHING, 300, "ABANDON", Some(&arn))],
    )
    .await;
    let ids = wait_for("two instances in Pending:Wait", common::patience(), || {
        all_in_state(&h, "web-1", 2, "Pending:Wait")
    })
    .await;
    // A first delivery that nobody finishes (a handler that crashed), handed back at once.
    let mut received = 0;
    while received < 2 {
        let out = h
            .sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        for m in out.messages.unwrap_or_default() {
            h.sqs
                .change_message_visibility()
                .queue_url(&url)
                .receipt_handle(m.receipt_handle.unwrap_or_default())
                .visibility_timeout(0)
                .send()
                .await
                .unwrap();
            received += 1;
        }
    }
    // Meanwhile the first instance's action was completed elsewhere.
    let (over, alive) = (&ids[0], &ids[1]);
    h.asg
        .complete_lifecycle_action()
        .auto_scaling_group_name("web-1")
        .lifecycle_hook_name("launch")
        .instance_id(over)
        .lifecycle_action_result("CONTINUE")
        .send()
        .await
        .unwrap();

    let config = write_config(
        dir.path(),
        &url,
        &[("web", "\"web-*\"", "\"launching\"", "abandon", MARK)],
    );
    let log = dir.path().join("controller.log");
    let _c = Proc::controller(&h.endpoint(), &config, &log);
    wait_for_logged("both instances InService", &log, || {
        all_in_state(&h, "web-1", 2, "InService")
    })
    .await;
    wait_for_logged("the queue empty", &log, || async {
        (lifehook_conformance::queue_len(&h, &url).await == (0, 0)).then_some(())
    })
    .await;
    // Only the live action ran its step.
    assert_eq!(
        marks(dir.path()),
        vec![format!("{alive} autoscaling:EC2_INSTANCE_LAUNCHING")],
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        text.contains("the action is already over; its pipeline is not run"),
        "{text}"
    );
}

/// Issue 13: when the keepalive learns mid-run that the action is over, the running steps
/// are cancelled (the exec step's process is gone) instead of running to their end.
#[tokio::test(flavor = "multi_thread")]
async fn a_step_is_cancelled_when_its_action_ends_elsewhere() {
    let _serial = common::serial().await;
    let h = Harness::manual().await;
    let dir = tempfile::tempdir().unwrap();
    let (url, arn, _dlq) = queue_with_dlq(&h, "hooks", 5).await;
    create_group(
        &h,
        "web-1",
        0,
        vec![hook("launch", LAUNCHING, 30, "ABANDON", Some(&arn))],
    )
    .await;
    // A step that would run for ten minutes, and says who it is.
    let config = write_config(
        dir.path(),
        &url,
        &[(
            "web",
            "\"web-*\"",
            "\"launching\"",
            "abandon",
            r#"["sh", "-c", "echo $$ > step.pid; exec sleep 600"]"#,
        )],
    );
    let log = dir.path().join("controller.log");
    let child = lifehook_cmd(&h.endpoint())
        .args(["controller", "--config"])
        .arg(&config)
        .args(["--admin-listen", &format!("127.0.0.1:{}", free_port())])
        .env(
            "LIFEHOOK_CLOCK_URL",
            format!("{}/_sandbox/clock", h.endpoint()),
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("spawn controller");
    let _c = Proc {
        child,
        admin: String::new(),
    };
    h.asg
        .set_desired_capacity()
        .auto_scaling_group_name("web-1")
        .desired_capacity(1)
        .send()
        .await
        .unwrap();
    let pid: u32 = wait_for_logged("the step running", &log, || async {
        std::fs::read_to_string(dir.path().join("step.pid"))
            .ok()
            .and_then(|p| p.trim().parse().ok())
    })
    .await;
    let id = instances(&h, "web-1").await[0].0.clone();
    // Someone else completes the action; the controller's next heartbeat (every 15 s of
    // the sandbox's clock) learns it.
    h.asg
        .complete_lifecycle_action()
        .auto_scaling_group_name("web-1")
        .lifecycle_hook_name("launch")
        .instance_id(&id)
        .lifecycle_action_result("CONTINUE")
        .send()
        .await
        .unwrap();
    h.advance(16.0).await;
    wait_for_logged("the step's process gone", &log, || async {
        (!std::path::Path::new(&format!("/proc/{pid}")).exists()).then_some(())
    })
    .await;
    let text = wait_for_logged("the action done", &log, || async {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.contains("action done").then_some(text)
    })
    .await;
    assert!(text.contains("cancelling its steps"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.contains("action done") && l.contains("already-resolved")),
        "{text}"
    );
}
