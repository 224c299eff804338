//! Failure modes of the AWS steps, through the real `lifehook controller`: throttling and
//! server errors injected by the sandbox (`/_sandbox/faults`), API errors, and a call
//! slower than the step's timeout each end in the pipeline's configured result (here
//! `on_failure = "abandon"`), with a log line naming the step and saying why; a brief
//! throttle is absorbed by the SDK's retries and the action completes CONTINUE.
//!
//! Every step meets throttling, a server error and a timeout, in four rounds (a fault rule
//! applies to an operation, so one round can give each operation one kind). Per round:
//! one sandbox, one controller, one group per case, all at once.

use crate::common;

use common::{TERMINATING, create_group, ecs, hook, instances, queue_with_dlq, wait_for};
use lifehook_conformance::Harness;
use serde_json::{Value, json};

/// One step, the fault its operation meets, and how the action must end.
struct Case {
    group: &'static str,
    step: String,
    /// A `/_sandbox/faults` rule, or null for an API error of the world itself.
    fault: Value,
    result: &'static str,
    /// What the step's failure log line must say ("" for a success).
    why: &'static str,
}

fn case(group: &'static str, step: String, fault: Value, why: &'static str) -> Case {
    Case {
        group,
        step,
        fault,
        result: "ABANDON",
        why,
    }
}

fn throttle(service: &str, operation: &str) -> Value {
    json!({"service": service, "operation": operation, "kind": "throttle"})
}

fn server_error(service: &str, operation: &str) -> Value {
    json!({"service": service, "operation": operation, "kind": "server-error"})
}

/// 3 s more per call: beyond the steps' 500 ms timeout.
fn slow(service: &str, operation: &str) -> Value {
    json!({"service": service, "operation": operation, "kind": "latency", "latency_ms": 3000})
}

const TIMED_OUT: &str = "not done within 500ms";

/// The world every round starts from: buckets with the fetched script, a live target
/// group and an ECS cluster. Returns the target group's ARN.
async fn world(h: &Harness) -> String {
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
    ecs(h, "CreateCluster", json!({"clusterName": "c1"})).await;
    h.elbv2
        .create_target_group()
        .name("live")
        .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
        .port(80)
        .vpc_id("vpc-1")
        .send()
        .await
        .unwrap()
        .target_groups()[0]
        .target_group_arn()
        .unwrap()
        .to_owned()
}

/// The cases of `round` (1 to 4). `tg` is the live target group.
fn cases(dir: &std::path::Path, round: u8, tg: &str) -> Vec<Case> {
    let upload = dir.join("upload.log");
    std::fs::write(&upload, "log line\n").unwrap();
    // Each step with `retries = 1` and a short back-off, or, against a slow call,
    // `retries = 0` and a 500 ms timeout.
    let quick = "retries = 1\nbackoff = \"10ms\"";
    let patient = "retries = 0\ntimeout = \"500ms\"";
    // The target-groups step looks again after a throttled or failed look (it waits on
    // the load balancer anyway): it fails at its timeout, saying what the last look met.
    // The SDK's own retries of one look take up to 3 s (3 attempts, back-off of at most
    // 1 s then 2 s): 6 s leaves room for a look to end.
    let looking = "retries = 0\ntimeout = \"6s\"";
    let fetch = |extra: &str| {
        format!(
            "type = \"s3-fetch\"\nname = \"fetch\"\nbucket = \"ops\"\nkey = \"script.sh\"\npath = \"{}\"\n{extra}",
            dir.join("fetched/script.sh").display()
        )
    };
    let up = |extra: &str| {
        format!(
            "type = \"s3-upload\"\nname = \"upload\"\nbucket = \"logs\"\nkey = \"{{{{ instance_id }}}}/{{{{ file_name }}}}\"\nfiles = [\"{}\"]\n{extra}",
            upload.display()
        )
    };
    let tag = |extra: &str| {
        format!("type = \"tag\"\nname = \"tag\"\ntags = {{ owner = \"lifehook\" }}\n{extra}")
    };
    let signal = |extra: &str| {
        format!(
            "type = \"signal\"\nname = \"signal\"\nstack = \"app\"\nresource = \"Group\"\nstatus = \"SUCCESS\"\n{extra}"
        )
    };
    let ssm = |extra: &str| {
        format!(
            "type = \"ssm-command\"\nname = \"ssm\"\ncommands = [\"true\"]\ninterval = \"50ms\"\n{extra}"
        )
    };
    let image =
        |extra: &str| format!("type = \"image\"\nname = \"ami\"\ninterval = \"50ms\"\n{extra}");
    let tgs = |arn: &str, extra: &str| {
        format!(
            "type = \"target-groups\"\nname = \"tg\"\ntarget_group_arns = [\"{arn}\"]\ninterval = \"50ms\"\n{extra}"
        )
    };
    let drain = |cluster: &str, extra: &str| {
        format!(
            "type = \"ecs-drain\"\nname = \"drain\"\ncluster = \"{cluster}\"\ninterval = \"50ms\"\n{extra}"
        )
    };
    match round {
        1 => vec![
            case(
                "f-fetch",
                fetch(quick),
                throttle("s3", "GetObject"),
                "GetObject s3://ops/script.sh",
            ),
            case(
                "f-upload",
                up(quick),
                server_error("s3", "PutObject"),
                "PutObject",
            ),
            Case {
                group: "f-tag",
                step: tag(""),
                fault: json!({"service": "ec2", "operation": "CreateTags", "kind": "throttle", "count": 1}),
                result: "CONTINUE",
                why: "",
            },
            case(
                "f-signal",
                signal(patient),
                slow("cloudformation", "SignalResource"),
                TIMED_OUT,
            ),
            case(
                "f-ssm",
                ssm(quick),
                throttle("ssm", "SendCommand"),
                "SendCommand",
            ),
            case(
                "f-image",
                image(quick),
                throttle("ec2", "CreateImage"),
                "CreateImage",
            ),
            case(
                "f-tg",
                tgs(
                    "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/gone/0123456789abcdef",
                    quick,
                ),
                Value::Null,
                "TargetGroupNotFound",
            ),
            case(
                "f-ecs",
                drain("missing", quick),
                Value::Null,
                "ClusterNotFoundException",
            ),
        ],
        2 => vec![
            case(
                "f-fetch",
                fetch(quick),
                server_error("s3", "GetObject"),
                "GetObject s3://ops/script.sh",
            ),
            case(
                "f-upload",
                up(quick),
                throttle("s3", "PutObject"),
                "PutObject",
            ),
            case("f-tag", tag(patient), slow("ec2", "CreateTags"), TIMED_OUT),
            case(
                "f-signal",
                signal(quick),
                throttle("cloudformation", "SignalResource"),
                "SignalResource",
            ),
            case(
                "f-ssm",
                ssm(quick),
                server_error("ssm", "SendCommand"),
                "SendCommand",
            ),
            case(
                "f-image",
                image(patient),
                slow("ec2", "CreateImage"),
                TIMED_OUT,
            ),
            case(
                "f-tg",
                tgs(tg, looking),
                throttle("elasticloadbalancing", "DescribeTargetHealth"),
                "DescribeTargetHealth",
            ),
            case(
                "f-ecs",
                drain("c1", patient),
                slow("ecs", "ListContainerInstances"),
                TIMED_OUT,
            ),
        ],
        3 => vec![
            case(
                "f-fetch",
                fetch(patient),
                slow("s3", "GetObject"),
                TIMED_OUT,
            ),
            case("f-upload", up(patient), slow("s3", "PutObject"), TIMED_OUT),
            case(
                "f-tag",
                tag(quick),
                server_error("ec2", "CreateTags"),
                "CreateTags",
            ),
            case(
                "f-signal",
                signal(quick),
                server_error("cloudformation", "SignalResource"),
                "SignalResource",
            ),
            case("f-ssm", ssm(patient), slow("ssm", "SendCommand"), TIMED_OUT),
            case(
                "f-image",
                image(quick),
                server_error("ec2", "CreateImage"),
                "CreateImage",
            ),
            case(
                "f-tg",
                tgs(tg, patient),
                slow("elasticloadbalancing", "DescribeTargetHealth"),
                TIMED_OUT,
            ),
            case(
                "f-ecs",
                drain("c1", quick),
                throttle("ecs", "ListContainerInstances"),
                "ListContainerInstances",
            ),
        ],
        _ => vec![
            case(
                "f-tg",
                tgs(tg, looking),
                server_error("elasticloadbalancing", "DescribeTargetHealth"),
                "DescribeTargetHealth",
            ),
            case(
                "f-ecs",
                drain("c1", quick),
                server_error("ecs", "ListContainerInstances"),
                "ListContainerInstances",
            ),
        ],
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn throttling_server_errors_api_errors_and_a_timeout_abandon_with_a_reason() {
    let _serial = common::serial().await;
    let h = run_round(1).await;
    // The brief throttle was retried by the SDK: the tag is there.
    let faults = h.control_get("faults").await;
    let tag_rule = faults["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["operation"] == "CreateTags")
        .unwrap();
    assert_eq!(tag_rule["hits"], 1, "{faults}");
}

#[tokio::test(flavor = "multi_thread")]
async fn each_step_meets_its_second_kind_of_failure() {
    let _serial = common::serial().await;
    run_round(2).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn each_step_meets_its_third_kind_of_failure() {
    let _serial = common::serial().await;
    run_round(3).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_load_balancer_and_ecs_steps_meet_server_errors() {
    let _serial = common::serial().await;
    run_round(4).await;
}

/// Runs the cases of `round` at once and checks how each action ended and why.
async fn run_round(round: u8) -> Harness {
    let h = Harness::with_clock(lifehook_sandbox::ClockMode::Real).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tg = world(&h).await;
    let cases = cases(d, round, &tg);
    let (url, arn, _dlq) = queue_with_dlq(&h, "hooks", 5).await;
    let mut text = format!(
        "[source]\nqueue_url = \"{url}\"\nwait_time_seconds = 1\nvisibility_timeout = \"60s\"\n"
    );
    let mut rules = Vec::new();
    for Case {
        group, step, fault, ..
    } in &cases
    {
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
    for Case { group, .. } in &cases {
        wait_for("the instance InService", common::patience(), || async {
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
    for Case { group, .. } in &cases {
        h.asg
            .set_desired_capacity()
            .auto_scaling_group_name(*group)
            .desired_capacity(0)
            .send()
            .await
            .unwrap();
    }
    let resolved = wait_for("every action resolved", common::patience(), || async {
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
    for Case {
        group, result, why, ..
    } in &cases
    {
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
                        && l.contains("status=\"failed\"")
                        && l.contains(why)
                })
                .unwrap_or_else(|| panic!("{group}: no log line saying {why:?}:\n{log}"));
            assert!(line.contains("error="), "{line}");
        }
    }
    drop(c);
    h
}
