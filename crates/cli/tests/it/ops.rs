//! Operator commands (`status`, `complete`, `heartbeat`) run as the real binary against an
//! in-process sandbox, and the building blocks of `lifehook-aws` end to end beside it.
//! (The library's own tests against the sandbox are in `crates/aws/tests`.) Time moves
//! only through the sandbox's virtual clock; waits are bounded polls.

use std::process::Output;
use std::time::Duration;

use aws_sdk_autoscaling::types::LifecycleHookSpecification;
use lifehook_aws::Clients;
use lifehook_aws::lifecycle::{ActionTarget, LifecycleApi};
use lifehook_aws::queue::{QueueConfig, QueueConsumer};
use lifehook_conformance::{Harness, create_queue, eventually, queue_len, waiting_instance};
use lifehook_model::LifecycleResult;

use crate::common;
use crate::common::{LAUNCHING, create_group, instances};

/// A launch hook with no notification target.
fn hook(name: &str, hb: i32) -> LifecycleHookSpecification {
    common::hook(name, LAUNCHING, hb, "ABANDON", None)
}

/// Runs `lifehook <args>` against the sandbox with fake credentials and no metadata.
async fn lifehook(h: &Harness, args: &[&str]) -> Output {
    lifehook_env(args, Some(&h.endpoint()), true).await
}

async fn lifehook_env(args: &[&str], endpoint: Option<&str>, region: bool) -> Output {
    let mut cmd = common::lifehook_cmd(endpoint.unwrap_or_default());
    if endpoint.is_none() {
        cmd.env_remove("AWS_ENDPOINT_URL");
    }
    if !region {
        cmd.env_remove("AWS_REGION");
    }
    cmd.args(args).env("LIFEHOOK_LOG", "warn");
    tokio::time::timeout(common::patience(), cmd.output())
        .await
        .expect("lifehook finished within a minute")
        .expect("run lifehook")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn status_lists_a_waiting_instance() {
    let _serial = common::serial().await;
    let h = Harness::manual().await;
    create_group(&h, "web", 1, vec![hook("launch", 300)]).await;
    let id = waiting_instance(&h, "web").await;
    h.advance(30.0).await;

    let out = lifehook(&h, &["status"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("GROUP"), "{table}");
    let row = lines
        .iter()
        .find(|l| l.contains(&id))
        .unwrap_or_else(|| panic!("{id} not listed:\n{table}"));
    assert!(row.starts_with("web"), "{row}");
    assert!(
        row.contains("Pending:Wait") && row.contains("launch"),
        "{row}"
    );
    // The sandbox's manual clock moved 30 s (whatever the wall clock did): waited 30 s, the
    // heartbeat deadline exact (4m30s, no `≥`), then the DefaultResult, and the global
    // deadline labelled as such.
    assert!(lines[0].contains("HEARTBEAT DUE") && lines[0].contains("GLOBAL DEADLINE"));
    assert!(
        row.contains(" 30s ") && row.contains(" 4m30s ") && row.contains("ABANDON"),
        "{table}"
    );
    assert!(!row.contains('≥'), "{table}");
    assert!(table.contains("sandbox's virtual clock"), "{table}");

    // A heartbeat pushes the heartbeat deadline: 5 minutes again from now.
    h.advance(60.0).await;
    let out = lifehook(
        &h,
        &[
            "heartbeat",
            "-g",
            "web",
            "--hook",
            "launch",
            "--instance-id",
            &id,
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = lifehook(&h, &["status", "--group", "web", "--json"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["clock"], "sandbox", "{v}");
    let list = v["instances"].as_array().expect("instances");
    assert_eq!(list.len(), 1, "{v}");
    assert_eq!(list[0]["instance_id"], id.as_str());
    assert_eq!(list[0]["state"], "Pending:Wait");
    assert_eq!(list[0]["waiting_secs"], 90, "{v}");
    let first = &list[0]["hooks"][0];
    assert_eq!(first["name"], "launch");
    assert_eq!(first["heartbeat_timeout_secs"], 300);
    assert_eq!(first["global_timeout_secs"], 30_000);
    assert_eq!(first["default_result"], "ABANDON");
    assert_eq!(first["heartbeat_due"], "exact", "{v}");
    assert_eq!(first["heartbeat_due_secs"], 300, "{v}");
    assert_eq!(first["global_deadline_secs"], 30_000 - 90, "{v}");

    // Another group: nothing waits there. (A group that does not exist is an error:
    // `wrong_group_and_hook_names_are_named_with_what_exists`.)
    create_group(&h, "other", 0, vec![hook("launch", 300)]).await;
    let out = lifehook(&h, &["status", "--group", "other"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "no instances are waiting on lifecycle hooks\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn complete_by_instance_id_moves_the_instance_on() {
    let _serial = common::serial().await;
    let h = Harness::manual().await;
    create_group(&h, "web", 1, vec![hook("launch", 300)]).await;
    let id = waiting_instance(&h, "web").await;

    let out = lifehook(
        &h,
        &[
            "heartbeat",
            "--group",
            "web",
            "--hook",
            "launch",
            "--instance-id",
            &id,
        ],
    )
    .await;
    assert!(out.status.success(), "heartbeat: {}", text(&out.stderr));
    assert!(text(&out.stdout).contains("recorded heartbeat"));

    let out = lifehook(
        &h,
        &[
            "complete",
            "--group",
            "web",
            "--hook",
            "launch",
            "--instance-id",
            &id,
            "--result",
            "continue",
        ],
    )
    .await;
    assert!(out.status.success(), "complete: {}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("with CONTINUE"),
        "{}",
        text(&out.stdout)
    );

    eventually("the instance leaves Pending:Wait", || async {
        instances(&h, "web")
            .await
            .into_iter()
            .find(|(i, s)| i == &id && s != "Pending:Wait")
    })
    .await;

    // Completing again: the action is already resolved, exit 1 with a clear message.
    let out = lifehook(
        &h,
        &[
            "complete",
            "--group",
            "web",
            "--hook",
            "launch",
            "--instance-id",
            &id,
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("already resolved"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn complete_with_an_unknown_token_reports_already_resolved() {
    let _serial = common::serial().await;
    let h = Harness::manual().await;
    create_group(&h, "web", 1, vec![hook("launch", 300)]).await;
    waiting_instance(&h, "web").await;
    let token = "00000000-0000-4000-8000-000000000000";
    for cmd in ["complete", "heartbeat"] {
        let out = lifehook(
            &h,
            &[cmd, "--group", "web", "--hook", "launch", "--token", token],
        )
        .await;
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{cmd}: {err}");
        assert!(err.contains("already resolved"), "{cmd}: {err}");
        assert!(err.contains(token), "{cmd}: {err}");
        assert!(
            !err.contains("ServiceError {"),
            "Debug output leaked: {err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_arguments_exit_2() {
    let _serial = common::serial().await;
    for args in [
        &["complete", "--group", "g", "--hook", "h"][..],
        &[
            "complete",
            "--group",
            "g",
            "--hook",
            "h",
            "--instance-id",
            "i-1",
            "--result",
            "MAYBE",
        ],
        &["heartbeat", "--hook", "h", "--token", "t"],
        &["status", "--no-such-flag"],
    ] {
        // No endpoint: a parse error must come before any request.
        let out = lifehook_env(args, None, true).await;
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_region_is_a_configuration_error() {
    let _serial = common::serial().await;
    let out = lifehook_env(&["status"], Some("http://127.0.0.1:9"), false).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("AWS_REGION"),
        "{}",
        text(&out.stderr)
    );
}

/// A wrong name is named (issue 15): Auto Scaling answers a wrong group or hook like a
/// resolved action, and the commands used to say "already resolved" for a typo.
#[tokio::test(flavor = "multi_thread")]
async fn wrong_group_and_hook_names_are_named_with_what_exists() {
    let _serial = common::serial().await;
    let h = Harness::manual().await;
    create_group(&h, "web", 1, vec![hook("launch", 300)]).await;
    let id = waiting_instance(&h, "web").await;
    let cases: [(&[&str], &str); 3] = [
        (
            &[
                "heartbeat",
                "--group",
                "web",
                "--hook",
                "lunch",
                "--instance-id",
                &id,
            ],
            "group web has no hook lunch; its hooks: launch",
        ),
        (
            &[
                "complete",
                "--group",
                "wbe",
                "--hook",
                "launch",
                "--instance-id",
                &id,
            ],
            "there is no Auto Scaling group wbe",
        ),
        (
            &["status", "-g", "nope"],
            "no Auto Scaling group named nope",
        ),
    ];
    for (args, says) in cases {
        let out = lifehook(&h, args).await;
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!err.contains("already resolved"), "{args:?}: {err}");
    }
    // The instance is still waiting: nothing was completed by the wrong names.
    let out = lifehook(&h, &["status", "-g", "web"]).await;
    assert!(text(&out.stdout).contains(&id), "{}", text(&out.stdout));
}

/// `--region`, `--endpoint-url` and `--profile` take the place of the AWS configuration's.
#[tokio::test(flavor = "multi_thread")]
async fn operator_commands_take_region_and_endpoint_on_the_command_line() {
    let _serial = common::serial().await;
    let h = Harness::manual().await;
    create_group(&h, "web", 1, vec![hook("launch", 300)]).await;
    let id = waiting_instance(&h, "web").await;
    // No endpoint and no region in the environment: only the flags say where to go.
    let out = lifehook_env(
        &[
            "status",
            "--region",
            "us-east-1",
            "--endpoint-url",
            &h.endpoint(),
        ],
        None,
        false,
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&id), "{}", text(&out.stdout));
    let help = lifehook_env(&["status", "--help"], None, false).await;
    let help = text(&help.stdout);
    for flag in ["--region", "--endpoint-url", "--profile", "AWS_PROFILE"] {
        assert!(help.contains(flag), "{flag} missing from: {help}");
    }
}

// ---- the queue consumer against the sandbox's SQS ----

/// The building blocks end to end: hook → SQS → consumer → keepalive → complete → ack.
#[tokio::test(flavor = "multi_thread")]
async fn a_hook_notification_is_consumed_and_completed() {
    let _serial = common::serial().await;
    use lifehook_aws::keepalive::{Keepalive, KeepaliveConfig, KeepaliveEnd, parse_message_time};

    let h = Harness::manual().await;
    let url = create_queue(&h, "lifecycle", None).await;
    let spec = LifecycleHookSpecification::builder()
        .lifecycle_hook_name("launch")
        .lifecycle_transition(LAUNCHING)
        .heartbeat_timeout(120)
        .default_result("ABANDON")
        .notification_target_arn("arn:aws:sqs:us-east-1:000000000000:lifecycle")
        .role_arn("arn:aws:iam::000000000000:role/lifecycle")
        .build();
    create_group(&h, "web", 1, vec![spec]).await;
    let id = waiting_instance(&h, "web").await;

    let out = lifehook(&h, &["status"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    println!("{}", text(&out.stdout));

    let c = consumer(&h, &url);
    let msg = eventually("the lifecycle action arrives", || async {
        c.next_batch().await.expect("receive").pop()
    })
    .await;
    assert_eq!(msg.event.instance_id, id);
    assert_eq!(msg.event.hook, "launch");

    let clients = Clients::from_sdk_config(h.sdk.clone()).expect("clients");
    let api = LifecycleApi::new(clients.autoscaling().clone());
    let info = api.hook("web", "launch").await.expect("hook");
    let target = ActionTarget::from_event(&msg.event);
    let started = msg.event.time.as_deref().and_then(parse_message_time);
    assert!(started.is_some(), "message time {:?}", msg.event.time);
    let keepalive = Keepalive::start(
        api.clone(),
        target.clone(),
        &info,
        started,
        KeepaliveConfig::default(),
        std::sync::Arc::new(lifehook_core::SystemClock),
    );
    api.complete(&target, LifecycleResult::Continue)
        .await
        .expect("complete");
    let report = keepalive.stop().await;
    assert_eq!(report.end, KeepaliveEnd::Stopped);
    c.ack(msg).await.expect("ack");
    assert_eq!(queue_len(&h, &url).await, (0, 0));
    eventually("the instance leaves Pending:Wait", || async {
        instances(&h, "web")
            .await
            .into_iter()
            .find(|(i, s)| i == &id && s != "Pending:Wait")
    })
    .await;
}

fn consumer(h: &Harness, url: &str) -> QueueConsumer {
    let clients = Clients::from_sdk_config(h.sdk.clone()).expect("clients");
    let mut cfg = QueueConfig::new(url);
    cfg.wait_time = Duration::from_secs(1);
    QueueConsumer::new(clients.sqs().clone(), cfg)
}
