//! Reference scenario 4, the part no other test covers: an ECS drain that cannot finish
//! before the lifecycle action's deadline. A standalone task that lifehook is told not to
//! stop (`stop_tasks = false`) keeps running; the real `lifehook controller`, following the
//! sandbox's manual clock, heartbeats the action until its global deadline (100 × the
//! heartbeat timeout) draws near, then applies the pipeline's `on_deadline` (CONTINUE) with
//! a log line saying so. (The drain itself — service tasks moved,
//! daemon and standalone tasks stopped last — is `steps.rs` and `lifehook demo`.)

use crate::common;

use std::process::Stdio;

use common::*;
use lifehook_conformance::Harness;
use serde_json::json;

/// Seconds left before the action of `instance` times out, if it is open.
async fn seconds_left(h: &Harness, instance: &str) -> Option<f64> {
    h.state().await["regions"]["us-east-1"]["actions"]
        .as_array()?
        .iter()
        .find(|a| a["instance"] == instance)
        .and_then(|a| a["seconds_left"].as_f64())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_drain_that_cannot_finish_in_time_applies_the_deadline_policy() {
    let _serial = common::serial().await;
    let h = Harness::manual().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (url, arn, dlq) = queue_with_dlq(&h, "drain", 5).await;
    // Heartbeat timeout 30 s: the global deadline is 3,000 s after the wait began.
    create_group(
        &h,
        "ecs-1",
        1,
        vec![hook("drain", TERMINATING, 30, "ABANDON", Some(&arn))],
    )
    .await;
    h.advance(1.0).await;
    let id = wait_for("ecs-1 InService", common::patience(), || async {
        instances(&h, "ecs-1")
            .await
            .into_iter()
            .find(|(_, s)| s == "InService")
            .map(|(i, _)| i)
    })
    .await;
    let r = h
        .control_post(
            "ecs/container-instances",
            json!({"cluster": "prod", "ec2_instance_id": id}),
        )
        .await;
    assert!(r.status().is_success());
    ecs(
        &h,
        "RegisterTaskDefinition",
        json!({"family": "batch", "containerDefinitions": [{"name": "batch", "image": "batch", "memory": 128}]}),
    )
    .await;
    ecs(
        &h,
        "RunTask",
        json!({"cluster": "prod", "taskDefinition": "batch", "startedBy": "nightly"}),
    )
    .await;
    h.advance(3.0).await;

    let config = d.join("drain.toml");
    std::fs::write(
        &config,
        format!(
            r#"[source]
queue_url = "{url}"
wait_time_seconds = 1
visibility_timeout = "5m"

[[pipeline]]
name = "drain"
match = {{ groups = ["ecs-*"], transitions = ["terminating"] }}
policy = {{ on_success = "continue", on_failure = "abandon", on_deadline = "continue" }}

[[pipeline.step]]
type = "ecs-drain"
cluster = "prod"
stop_tasks = false
interval = "5s"
timeout = "2h"
"#
        ),
    )
    .unwrap();
    let admin = format!("127.0.0.1:{}", free_port());
    let log = std::fs::File::create(d.join("controller.log")).unwrap();
    let child = lifehook_cmd(&h.endpoint())
        .args(["controller", "--config"])
        .arg(&config)
        .args(["--admin-listen", &admin])
        .env(
            "LIFEHOOK_CLOCK_URL",
            format!("{}/_sandbox/clock", h.endpoint()),
        )
        .env(
            "LIFEHOOK_LOG",
            "debug,hyper=info,hyper_util=info,aws_smithy_runtime=info,aws_runtime=warn,aws_config=warn,reqwest=info,h2=info,rustls=info",
        )
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn controller");
    let c = Proc { child, admin };

    h.asg
        .set_desired_capacity()
        .auto_scaling_group_name("ecs-1")
        .desired_capacity(0)
        .send()
        .await
        .unwrap();
    wait_for("the drain to start", common::patience(), || async {
        let v = h.state().await;
        v["regions"]["us-east-1"]["ecs"]
            .to_string()
            .contains("DRAINING")
            .then_some(())
    })
    .await;
    // 3,000 s of virtual time, 10 s at a time, each step only once the controller's
    // heartbeat has the action well away from its 30 s heartbeat timeout.
    let mut elapsed = 0;
    while instances(&h, "ecs-1").await.iter().any(|(i, _)| *i == id) {
        assert!(elapsed <= 3100, "still waiting after {elapsed} s");
        wait_for_logged(
            &format!("a heartbeat at {elapsed} s"),
            &d.join("controller.log"),
            || async {
                match seconds_left(&h, &id).await {
                    None => Some(()),
                    Some(left) => (left > 15.0).then_some(()),
                }
            },
        )
        .await;
        h.advance(10.0).await;
        elapsed += 10;
    }
    // It ended at the deadline, not before: the heartbeats carried it far past 30 s.
    assert!(elapsed >= 2900, "ended after {elapsed} s");
    let resolved = h.control_get("stats").await["resolved_actions"].clone();
    let a = resolved
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["instance"] == id.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("{resolved}"));
    assert_eq!(a["result"], "CONTINUE", "{a}");
    assert_eq!(a["how"], "completed", "{a}");
    wait_for("the action counted", common::patience(), || async {
        (c.metric("lifehook_actions_total{transition=\"terminating\",outcome=\"continue\"}")
            .await
            == 1.0)
            .then_some(())
    })
    .await;
    let text = std::fs::read_to_string(d.join("controller.log")).unwrap();
    assert!(
        text.lines()
            .any(|l| l.contains("status=\"deadline\"") && l.contains("deadline arrived")),
        "no log line about the deadline:\n{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("action done") && l.contains("outcome=\"continue\"")),
        "{text}"
    );
    assert_eq!(queue_depth(&h, &dlq).await, (0, 0), "nothing set aside");
}
