//! `lifehook setup`: the real binary provisions queues, dead-letter queue, access policy,
//! EventBridge rule or SNS topic and subscription, and hooks against the sandbox;
//! `--dry-run` changes nothing; a second run changes nothing; a controller with the same
//! configuration then handles the groups' actions through what setup built.

use crate::common;

use std::path::{Path, PathBuf};

use common::{create_group, instances, lifehook_cmd, wait_for};
use lifehook_conformance::Harness;
use serde_json::Value;

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

async fn setup(h: &Harness, config: &Path, extra: &[&str]) -> Run {
    let out = lifehook_cmd(&h.endpoint())
        .arg("setup")
        .arg("--config")
        .arg(config)
        .args(extra)
        .output()
        .await
        .expect("run lifehook setup");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Requests that change something (every operation but Describe*, List*, Get*), from
/// `GET /_sandbox/stats`.
async fn writes(h: &Harness) -> u64 {
    let stats = h.control_get("stats").await;
    let mut n = 0;
    if let Some(services) = stats["requests"].as_object() {
        for ops in services.values() {
            for (op, count) in ops.as_object().into_iter().flatten() {
                if !["Describe", "List", "Get"]
                    .iter()
                    .any(|p| op.starts_with(p))
                {
                    n += count.as_u64().unwrap_or(0);
                }
            }
        }
    }
    n
}

async fn queue_attrs(h: &Harness, name: &str) -> Option<std::collections::HashMap<String, String>> {
    let url = h
        .sqs
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .ok()?
        .queue_url()?
        .to_owned();
    let out = h
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .ok()?;
    Some(
        out.attributes()?
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
            .collect(),
    )
}

fn config(endpoint: &str, setup: &str) -> String {
    format!(
        r#"[source]
queue_url = "{endpoint}/000000000000/hooks"
wait_time_seconds = 1

{setup}

[[pipeline]]
name = "drain"
match = {{ groups = ["web-*"], transitions = ["terminating"] }}
[[pipeline.step]]
type = "wait"
duration = "1s"
"#
    )
}

const EVENTBRIDGE: &str = r#"[setup]
groups = ["web-1", "web-2"]
max_receive_count = 4

[[setup.hook]]
name = "drain"
transition = "terminating"
heartbeat_timeout = "5m"
default_result = "continue"
notification_metadata = '{"app": "web"}'
"#;

#[tokio::test(flavor = "multi_thread")]
async fn eventbridge_setup_is_idempotent_and_carries_actions_to_the_controller() {
    let _serial = common::serial().await;
    let h = Harness::with_clock(lifehook_sandbox::ClockMode::Real).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    create_group(&h, "web-1", 1, vec![]).await;
    create_group(&h, "web-2", 0, vec![]).await;
    let cfg = write(d, "lifehook.toml", &config(&h.endpoint(), EVENTBRIDGE));

    // --dry-run: the plan, and nothing changed.
    let before = writes(&h).await;
    let r = setup(&h, &cfg, &["--dry-run"]).await;
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    for line in [
        "+ create sqs queue hooks-dlq",
        "+ create sqs queue hooks: ",
        "+ create eventbridge rule lifehook-hooks",
        "+ create eventbridge target lifehook-hooks → sqs hooks",
        "+ create lifecycle hook drain on web-1",
        "+ create lifecycle hook drain on web-2",
        "Plan: 6 to create, 0 to update, 0 unchanged.",
        "dry run",
    ] {
        assert!(
            r.stdout.contains(line),
            "missing {line:?} in:\n{}",
            r.stdout
        );
    }
    assert_eq!(writes(&h).await, before, "a dry run changes nothing");
    assert!(queue_attrs(&h, "hooks").await.is_none());

    // The real run.
    let r = setup(&h, &cfg, &[]).await;
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("Done: 6 change(s) made."), "{}", r.stdout);
    let attrs = queue_attrs(&h, "hooks").await.expect("queue hooks");
    let redrive: Value = serde_json::from_str(&attrs["RedrivePolicy"]).unwrap();
    assert_eq!(
        redrive["deadLetterTargetArn"],
        "arn:aws:sqs:us-east-1:000000000000:hooks-dlq"
    );
    assert_eq!(
        redrive["maxReceiveCount"].to_string().trim_matches('"'),
        "4"
    );
    let policy: Value = serde_json::from_str(&attrs["Policy"]).unwrap();
    let st = &policy["Statement"][0];
    assert_eq!(st["Principal"]["Service"], "events.amazonaws.com");
    assert_eq!(st["Action"], "sqs:SendMessage");
    assert_eq!(
        st["Condition"]["ArnEquals"]["aws:SourceArn"],
        "arn:aws:events:us-east-1:000000000000:rule/lifehook-hooks"
    );
    let rule = h
        .events
        .describe_rule()
        .name("lifehook-hooks")
        .send()
        .await
        .unwrap();
    let pattern: Value = serde_json::from_str(rule.event_pattern().unwrap()).unwrap();
    assert_eq!(
        pattern["detail-type"][0],
        "EC2 Instance-terminate Lifecycle Action"
    );
    assert_eq!(
        pattern["detail"]["AutoScalingGroupName"],
        serde_json::json!(["web-1", "web-2"])
    );
    for g in ["web-1", "web-2"] {
        let hooks = h
            .asg
            .describe_lifecycle_hooks()
            .auto_scaling_group_name(g)
            .send()
            .await
            .unwrap();
        let hk = &hooks.lifecycle_hooks()[0];
        assert_eq!(hk.lifecycle_hook_name(), Some("drain"));
        assert_eq!(hk.heartbeat_timeout(), Some(300));
        assert_eq!(hk.default_result(), Some("CONTINUE"));
        assert_eq!(hk.notification_target_arn(), None);
        assert_eq!(hk.notification_metadata(), Some(r#"{"app": "web"}"#));
    }

    // Again: nothing to change, and no write request at all.
    let before = writes(&h).await;
    let r = setup(&h, &cfg, &[]).await;
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("Nothing to change: 6 resource(s) up to date."),
        "{}",
        r.stdout
    );
    assert_eq!(writes(&h).await, before, "the second run changed something");

    // A changed hook: only it is updated.
    let changed = EVENTBRIDGE.replace("\"5m\"", "\"10m\"");
    let cfg2 = write(d, "changed.toml", &config(&h.endpoint(), &changed));
    let r = setup(&h, &cfg2, &[]).await;
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("~ update lifecycle hook drain on web-1: heartbeat 300s → 600s"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("Plan: 0 to create, 2 to update, 4 unchanged."),
        "{}",
        r.stdout
    );

    // What setup built carries a termination to the controller: rule → queue → CONTINUE.
    let victim = wait_for("web-1's instance", common::patience(), || async {
        instances(&h, "web-1")
            .await
            .into_iter()
            .find(|(_, s)| s == "InService")
            .map(|(i, _)| i)
    })
    .await;
    let c = common::Proc::controller(&h.endpoint(), &cfg, &d.join("controller.log"));
    h.asg
        .set_desired_capacity()
        .auto_scaling_group_name("web-1")
        .desired_capacity(0)
        .send()
        .await
        .unwrap();
    wait_for(
        "the termination completed by the controller",
        common::patience(),
        || async {
            (c.metric("lifehook_actions_total{transition=\"terminating\",outcome=\"continue\"}")
                .await
                == 1.0)
                .then_some(())
        },
    )
    .await;
    wait_for("web-1 empty", common::patience(), || async {
        instances(&h, "web-1")
            .await
            .iter()
            .all(|(i, _)| *i != victim)
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sns_and_direct_delivery() {
    let _serial = common::serial().await;
    let h = Harness::manual().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    create_group(&h, "web-1", 0, vec![]).await;

    let sns = r#"[setup]
groups = ["web-1"]
delivery = "sns"
role_arn = "arn:aws:iam::000000000000:role/asg-notify"
dead_letter_queue = false

[[setup.hook]]
name = "drain"
transition = "terminating"
"#;
    let cfg = write(d, "sns.toml", &config(&h.endpoint(), sns));
    let r = setup(&h, &cfg, &[]).await;
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    let topic = "arn:aws:sns:us-east-1:000000000000:hooks-lifecycle";
    let subs = h
        .sns
        .list_subscriptions_by_topic()
        .topic_arn(topic)
        .send()
        .await
        .unwrap();
    assert_eq!(subs.subscriptions().len(), 1);
    assert_eq!(
        subs.subscriptions()[0].endpoint(),
        Some("arn:aws:sqs:us-east-1:000000000000:hooks")
    );
    let attrs = queue_attrs(&h, "hooks").await.unwrap();
    assert!(attrs["Policy"].contains("sns.amazonaws.com"), "{attrs:?}");
    assert!(!attrs.contains_key("RedrivePolicy"), "{attrs:?}");
    let hooks = h
        .asg
        .describe_lifecycle_hooks()
        .auto_scaling_group_name("web-1")
        .send()
        .await
        .unwrap();
    assert_eq!(
        hooks.lifecycle_hooks()[0].notification_target_arn(),
        Some(topic)
    );
    assert_eq!(hooks.lifecycle_hooks()[0].default_result(), Some("ABANDON"));
    let r = setup(&h, &cfg, &[]).await;
    assert!(r.stdout.contains("Nothing to change"), "{}", r.stdout);

    // Switching the same group to direct delivery re-points the hook at the queue.
    let direct = sns.replace("\"sns\"", "\"direct\"");
    let cfg = write(d, "direct.toml", &config(&h.endpoint(), &direct));
    let r = setup(&h, &cfg, &["--dry-run"]).await;
    assert!(
        r.stdout.contains(&format!(
            "~ update lifecycle hook drain on web-1: target {topic} → arn:aws:sqs:us-east-1:000000000000:hooks"
        )),
        "{}",
        r.stdout
    );
    let r = setup(&h, &cfg, &[]).await;
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    let r = setup(&h, &cfg, &[]).await;
    assert!(r.stdout.contains("Nothing to change"), "{}", r.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_setups_are_usage_errors_naming_the_problem() {
    let _serial = common::serial().await;
    let h = Harness::manual().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // A group that does not exist.
    let cfg = write(d, "missing.toml", &config(&h.endpoint(), EVENTBRIDGE));
    let r = setup(&h, &cfg, &[]).await;
    assert_eq!(r.code, Some(2), "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains("Auto Scaling group(s) not found: web-1, web-2"),
        "{}",
        r.stderr
    );

    // No [setup] section.
    let cfg = write(d, "none.toml", &config(&h.endpoint(), ""));
    let r = setup(&h, &cfg, &[]).await;
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains("has no [setup] section"), "{}", r.stderr);

    // Direct delivery without a role, and a glob: located configuration errors.
    let bad = r#"[setup]
groups = ["web-*"]
delivery = "direct"

[[setup.hook]]
name = "drain"
transition = "terminating"
"#;
    let cfg = write(d, "bad.toml", &config(&h.endpoint(), bad));
    let r = setup(&h, &cfg, &[]).await;
    assert_eq!(r.code, Some(2));
    assert!(
        r.stderr
            .contains("bad.toml:6:11: `setup.groups`: \"web-*\" is a glob"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("`setup.delivery` = \"direct\" needs `setup.role_arn`"),
        "{}",
        r.stderr
    );
}
