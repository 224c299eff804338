//! Failure modes of the AWS steps, through the real `lifehook controller`: throttling and
//! server errors injected by the sandbox (`/_sandbox/faults`), an API error, and a call
//! slower than the step's timeout each end in the pipeline's configured result (here
//! `on_failure = "abandon"`), with a log line naming the step and saying why; a brief
//! throttle is absorbed by the SDK's retries and the action completes CONTINUE.
//!
//! One sandbox, one controller, one group per case, all at once.

mod common;

use std::time::Duration;

use common::{TERMINATING, create_group, hook, instances, queue_with_dlq, wait_for};
use lifehook_conformance::Harness;
use serde_json::json;

const LIMIT: Duration = Duration::from_secs(60);

/// (group, step TOML, fault rule or null, expected result, what the log line must say)
fn cases(
    dir: &std::path::Path,
) -> Vec<(
    &'static str,
    String,
    serde_json::Value,
    &'static str,
    &'static str,
)> {
    let upload = dir.join("upload.log");
    std::fs::write(&upload, "log line\n").unwrap();
    vec![
        (
            "f-fetch",
            format!(
                "type = \"s3-fetch\"\nname = \"fetch\"\nbucket = \"ops\"\nkey = \"script.sh\"\npath = \"{}\"\nretries = 1\nbackoff = \"10ms\"",
                dir.join("fetched/script.sh").display()
            ),
            json!({"service": "s3", "operation": "GetObject", "kind": "throttle"}),
            "ABANDON",
            "GetObject s3://ops/script.sh",
        ),
        (
            "f-upload",
            format!(
                "type = \"s3-upload\"\nname = \"upload\"\nbucket = \"logs\"\nkey = \"{{{{ instance_id }}}}/{{{{ file_name }}}}\"\nfiles = [\"{}\"]\nretries = 1\nbackoff = \"10ms\"",
                upload.display()
            ),
            json!({"service": "s3", "operation": "PutObject", "kind": "server-error"}),
            "ABANDON",
            "PutObject",
        ),
        (
            "f-tag",
            "type = \"tag\"\nname = \"tag\"\ntags = { owner = \"lifehook\" }".to_owned(),
            json!({"service": "ec2", "operation": "CreateTags", "kind": "throttle", "count": 1}),
            "CONTINUE",
            "",
        ),
        (
            "f-signal",
            "type = \"signal\"\nname = \"signal\"\nstack = \"app\"\nresource = \"Group\"\nstatus = \"SUCCESS\"\ntimeout = \"500ms\"\nretries = 0".to_owned(),
            json!({"service": "cloudformation", "operation": "SignalResource", "kind": "latency", "latency_ms": 3000}),
            "ABANDON",
            "not done within 500ms",
        ),
        (
            "f-ssm",
            "type = \"ssm-command\"\nname = \"ssm\"\ncommands = [\"true\"]\ninterval = \"50ms\"\nretries = 1\nbackoff = \"10ms\"".to_owned(),
            json!({"service": "ssm", "operation": "SendCommand", "kind": "throttle"}),
            "ABANDON",
            "SendCommand",
        ),
        (
            "f-image",
            "type = \"image\"\nname = \"ami\"\ninterval = \"50ms\"\nretries = 1\nbackoff = \"10ms\"".to_owned(),
            json!({"service": "ec2", "operation": "CreateImage", "kind": "throttle"}),
            "ABANDON",
            "CreateImage",
        ),
        (
            "f-tg",
            "type = \"target-groups\"\nname = \"tg\"\ntarget_group_arns = [\"arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/gone/0123456789abcdef\"]\ninterval = \"50ms\"\nretries = 1\nbackoff = \"10ms\"".to_owned(),
            serde_json::Value::Null,
            "ABANDON",
            "TargetGroupNotFound",
        ),
        (
            "f-ecs",
            "type = \"ecs-drain\"\nname = \"drain\"\ncluster = \"missing\"\ninterval = \"50ms\"\nretries = 1\nbackoff = \"10ms\"".to_owned(),
            serde_json::Value::Null,
            "ABANDON",
            "ClusterNotFoundException",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn step_failures_end_in_the_configured_result_with_a_reason() {
    let h = Harness::with_clock(lifehook_sandbox::ClockMode::Real).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases = cases(d);
    for b in ["ops", "logs"] {
        h.s3.create_bucket().bucket(b).send().await.unwrap();
    }
    h.s3.put_object()
        .bucket("ops")
        .key("script.sh")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(
            b"#!/bin/sh\n",
        ))
        .send()
        .await
        .unwrap();
    let (url, arn, _dlq) = queue_with_dlq(&h, "hooks", 5).await;
    let mut text = format!(
        "[source]\nqueue_url = \"{url}\"\nwait_time_seconds = 1\nvisibility_timeout = \"60s\"\n"
    );
    let mut rules = Vec::new();
    for (group, step, fault, ..) in &cases {
        text.push_str(&format!(
            "\n[[pipeline]]\nname = \"{group}\"\nmatch = {{ groups = [\"{group}\"] }}\npolicy = {{ on_success = \"continue\", on_failure = \"abandon\", on_deadline = \"abandon\" }}\n[[pipeline.step]]\n{step}\n"
        ));
        if !fault.is_null() {
            rules.push(fault.clone());
        }
        create_group(
            &h,
            group,
            1,
            vec![hook("h", TERMINATING, 300, "CONTINUE", Some(&arn))],
        )
        .await;
    }
    let cfg = d.join("controller.toml");
    std::fs::write(&cfg, text).unwrap();
    for (group, ..) in &cases {
        wait_for("the instance InService", LIMIT, || async {
            instances(&h, group)
                .await
                .iter()
                .any(|(_, s)| s == "InService")
                .then_some(())
        })
        .await;
    }
    let r = h.control_post("faults", json!({ "rules": rules })).await;
    assert!(r.status().is_success());
    let c = common::Proc::controller(&h.endpoint(), &cfg, &d.join("controller.log"));
    for (group, ..) in &cases {
        h.asg
            .set_desired_capacity()
            .auto_scaling_group_name(*group)
            .desired_capacity(0)
            .send()
            .await
            .unwrap();
    }
    let resolved = wait_for("every action resolved", LIMIT, || async {
        let all = h.control_get("stats").await["resolved_actions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mine: Vec<serde_json::Value> = all
            .into_iter()
            .filter(|a| a["group"].as_str().is_some_and(|g| g.starts_with("f-")))
            .collect();
        (mine.len() == cases.len()).then_some(mine)
    })
    .await;
    let log = std::fs::read_to_string(d.join("controller.log")).unwrap();
    for (group, _, _, result, why) in &cases {
        let a = resolved
            .iter()
            .find(|a| a["group"] == *group)
            .unwrap_or_else(|| panic!("{group}: not resolved: {resolved:?}"));
        assert_eq!(a["result"], *result, "{group}: {a}\n{log}");
        assert_eq!(
            a["how"], "completed",
            "{group}: completed by the controller: {a}"
        );
        if !why.is_empty() {
            let line = log
                .lines()
                .find(|l| {
                    l.contains(&format!("group={group}"))
                        && l.contains("status=Failed")
                        && l.contains(why)
                })
                .unwrap_or_else(|| panic!("{group}: no log line saying {why:?}:\n{log}"));
            assert!(line.contains("error="), "{line}");
        }
    }
    // The brief throttle was retried by the SDK: the tag is there.
    let faults = h.control_get("faults").await;
    let tag_rule = faults["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["operation"] == "CreateTags")
        .unwrap();
    assert_eq!(tag_rule["hits"], 1, "{faults}");
    drop(c);
}
