//! `lifehook policy` proven against an enforcing sandbox: for each example, the policy
//! the real binary prints, enforced for the handler's access key, lets the example's
//! scenario complete every lifecycle action CONTINUE without a single denial — and a call
//! outside it, signed with the same key, is denied with AccessDenied.
//!
//! The world is set up with the harness's own key (`test`), which no policy binds.

use crate::common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use aws_sdk_autoscaling::error::ProvideErrorMetadata as _;
use aws_sdk_autoscaling::types::LifecycleHookSpecification;
use common::*;
use lifehook_conformance::Harness;
use serde_json::{Value, json};

/// `lifehook policy --config CONFIG --mode MODE`, parsed.
async fn print_policy(config: &Path, mode: &str) -> Value {
    let out = lifehook_cmd("http://127.0.0.1:9")
        .args(["policy", "--config"])
        .arg(config)
        .args(["--mode", mode])
        .output()
        .await
        .expect("run lifehook policy");
    assert!(
        out.status.success(),
        "lifehook policy failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the policy is JSON")
}

fn actions(doc: &Value) -> BTreeSet<String> {
    doc["Statement"]
        .as_array()
        .expect("statements")
        .iter()
        .flat_map(|s| s["Action"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect()
}

async fn enforce(h: &Harness, key: &str, doc: &Value) {
    let r = h
        .control_post("iam/policies", json!({"access_key_id": key, "policy": doc}))
        .await;
    let status = r.status();
    assert!(
        status.is_success(),
        "the sandbox refused the policy: {}",
        r.text().await.unwrap_or_default()
    );
}

/// Every request of `key` was allowed, and every action it used is in the policy; the
/// policy's actions it did not use are all in `conditional` (calls made only on paths
/// the scenario does not take).
async fn assert_enough_and_no_more(h: &Harness, key: &str, doc: &Value, conditional: &[&str]) {
    let iam = h.control_get("iam").await;
    let denials: Vec<&Value> = iam["denials"]
        .as_array()
        .expect("denials")
        .iter()
        .filter(|d| d["access_key_id"] == key)
        .collect();
    assert!(denials.is_empty(), "denied: {denials:#?}");
    let used: BTreeSet<String> = iam["allowed_actions"][key]
        .as_array()
        .expect("the handler made requests")
        .iter()
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect();
    let granted = actions(doc);
    let beyond: Vec<&String> = used.difference(&granted).collect();
    assert!(beyond.is_empty(), "used beyond the policy: {beyond:?}");
    let unused: Vec<&String> = granted
        .difference(&used)
        .filter(|a| !conditional.contains(&a.as_str()))
        .collect();
    assert!(
        unused.is_empty(),
        "granted but never needed by the scenario: {unused:?} (used: {used:?})"
    );
}

/// SDK configuration signed with `key`.
async fn sdk_as(h: &Harness, key: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            key,
            "secret",
            None,
            None,
            "policy-tests",
        ))
        .endpoint_url(h.endpoint())
        .load()
        .await
}

/// A call outside the policy, signed with `key`: DeleteAutoScalingGroup is denied with
/// AccessDenied in the Query shape, and the sandbox records it.
async fn assert_outside_is_denied(h: &Harness, key: &str, group: &str) {
    let asg = aws_sdk_autoscaling::Client::new(&sdk_as(h, key).await);
    let e = asg
        .delete_auto_scaling_group()
        .auto_scaling_group_name(group)
        .force_delete(true)
        .send()
        .await
        .expect_err("DeleteAutoScalingGroup is outside the policy");
    assert_eq!(e.code(), Some("AccessDenied"), "{e:?}");
    let msg = e.message().unwrap_or_default();
    assert!(
        msg.contains("is not authorized to perform: autoscaling:DeleteAutoScalingGroup on resource: arn:aws:autoscaling:us-east-1:000000000000:autoScalingGroup:")
            && msg.contains(&format!("autoScalingGroupName/{group} because no identity-based policy allows")),
        "{msg}"
    );
    let iam = h.control_get("iam").await;
    assert!(
        iam["denials"]
            .as_array()
            .expect("denials")
            .iter()
            .any(|d| d["access_key_id"] == key
                && d["action"] == "autoscaling:DeleteAutoScalingGroup"),
        "{iam}"
    );
    // The group is still there.
    assert_eq!(
        h.asg
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(group)
            .send()
            .await
            .unwrap()
            .auto_scaling_groups()
            .len(),
        1
    );
}

/// A local HTTP server answering 200 to everything; records `METHOD path` of each
/// request (it plays Eureka, chat webhooks and health endpoints).
async fn stub() -> (String, Arc<Mutex<Vec<String>>>) {
    let hits = Arc::new(Mutex::new(Vec::new()));
    let seen = hits.clone();
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let seen = seen.clone();
        async move {
            seen.lock()
                .unwrap()
                .push(format!("{} {}", req.method(), req.uri().path()));
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), hits)
}

/// The resolved lifecycle actions of `group`.
async fn resolved(h: &Harness, group: &str) -> Vec<Value> {
    h.control_get("stats").await["resolved_actions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|a| a["group"] == group)
        .collect()
}

async fn scale(h: &Harness, group: &str, n: i32) {
    h.asg
        .set_desired_capacity()
        .auto_scaling_group_name(group)
        .desired_capacity(n)
        .send()
        .await
        .unwrap();
}

/// `lifehook controller` signed with `key`.
fn controller_as(h: &Harness, key: &str, config: &Path, log: &Path) -> tokio::process::Child {
    let log = std::fs::File::create(log).expect("log file");
    lifehook_cmd(&h.endpoint())
        .env("AWS_ACCESS_KEY_ID", key)
        .args(["controller", "--config"])
        .arg(config)
        .args([
            "--admin-listen",
            &format!("127.0.0.1:{}", free_port()),
            "--grace-seconds",
            "5",
        ])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn controller")
}

struct ControllerExample {
    file: &'static str,
    /// The queue URL written in the example.
    queue_in_example: &'static str,
    group: &'static str,
    /// `(name, transition)` of the group's hooks, all notifying the queue.
    hooks: &'static [(&'static str, &'static str)],
    metadata: Option<&'static str>,
    /// Group tags.
    tags: &'static [(&'static str, &'static str)],
    /// `(text in the example, path on the stub server)`.
    stubbed: &'static [(&'static str, &'static str)],
    /// Requests the stub must have seen (prefixes of `METHOD path`).
    expect_hits: &'static [&'static str],
    /// Actions of the policy the scenario need not use.
    conditional: &'static [&'static str],
    /// Enforce the printed policy without this action: the scenario must then be denied
    /// it (the policy is not more than needed).
    without: Option<&'static str>,
}

/// Heartbeats happen only when steps outlast the heartbeat plan; visibility changes only
/// when an action outlasts its visibility or is handed back; GetQueueAttributes only to
/// find the dead-letter queue of a message set aside.
const CONTROLLER_CONDITIONAL: &[&str] = &[
    "autoscaling:RecordLifecycleActionHeartbeat",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
];

/// What an `image` example may leave unused: its tags are applied at creation (CreateImage's
/// TagSpecification, authorized as `ec2:CreateTags` with `ec2:CreateAction`), so nothing
/// beyond the controller's own conditional actions.
const IMAGE_CONDITIONAL: &[&str] = &[
    "autoscaling:RecordLifecycleActionHeartbeat",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
];

async fn controller_example(ex: ControllerExample) {
    let h = Harness::manual().await;
    let dir = tempfile::tempdir().unwrap();
    let (stub_url, hits) = stub().await;
    let queue_name = ex
        .queue_in_example
        .rsplit('/')
        .next()
        .expect("queue name")
        .to_owned();
    let url = h
        .sqs
        .create_queue()
        .queue_name(&queue_name)
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned();
    let arn = queue_arn(&h, &url).await;
    let hooks: Vec<LifecycleHookSpecification> = ex
        .hooks
        .iter()
        .map(|(name, transition)| {
            let b = LifecycleHookSpecification::builder()
                .lifecycle_hook_name(*name)
                .lifecycle_transition(*transition)
                .heartbeat_timeout(300)
                .default_result("ABANDON")
                .notification_target_arn(&arn)
                .role_arn(ROLE);
            match ex.metadata {
                Some(m) => b.notification_metadata(m).build(),
                None => b.build(),
            }
        })
        .collect();
    create_group(&h, ex.group, 0, hooks).await;
    if !ex.tags.is_empty() {
        let tags = ex
            .tags
            .iter()
            .map(|(k, v)| {
                aws_sdk_autoscaling::types::Tag::builder()
                    .resource_id(ex.group)
                    .resource_type("auto-scaling-group")
                    .key(*k)
                    .value(*v)
                    .propagate_at_launch(false)
                    .build()
            })
            .collect();
        h.asg
            .create_or_update_tags()
            .set_tags(Some(tags))
            .send()
            .await
            .unwrap();
    }

    let mut swaps = vec![(ex.queue_in_example, url.clone())];
    for (from, path) in ex.stubbed {
        swaps.push((from, format!("{stub_url}{path}")));
    }
    let config = dir.path().join("controller.toml");
    std::fs::write(&config, example(ex.file, &swaps)).unwrap();

    let key = "controller-role";
    let mut doc = print_policy(&config, "controller").await;
    if let Some(action) = ex.without {
        for st in doc["Statement"].as_array_mut().expect("statements") {
            if let Some(a) = st["Action"].as_array_mut() {
                a.retain(|x| x != action);
            }
        }
    }
    enforce(&h, key, &doc).await;
    // Images (the `image` step) are available at once: the clock is manual.
    let r = h
        .control_post(
            "ec2/image-outcomes",
            serde_json::json!({"state": "available", "delay_seconds": 0}),
        )
        .await;
    assert!(r.status().is_success());
    let log = dir.path().join("controller.log");
    let mut child = controller_as(&h, key, &config, &log);

    scale(&h, ex.group, 1).await;
    if let Some(action) = ex.without {
        wait_for(&format!("{action} denied"), common::patience(), || async {
            let iam = h.control_get("iam").await;
            iam["denials"]
                .as_array()?
                .iter()
                .any(|d| d["access_key_id"] == key && d["action"] == action)
                .then_some(())
        })
        .await;
        assert!(
            resolved(&h, ex.group).await.is_empty(),
            "nothing completes without {action}"
        );
        let _ = child.start_kill();
        let _ = child.wait().await;
        return;
    }
    wait_for("the instance InService", common::patience(), || async {
        let i = instances(&h, ex.group).await;
        (i.len() == 1 && i[0].1 == "InService").then_some(())
    })
    .await;
    scale(&h, ex.group, 0).await;
    wait_for("the instance gone", common::patience(), || async {
        instances(&h, ex.group).await.is_empty().then_some(())
    })
    .await;
    let done = resolved(&h, ex.group).await;
    assert_eq!(
        done.len(),
        ex.hooks.len(),
        "{done:?}\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    for a in &done {
        assert_eq!(a["result"], "CONTINUE", "{a}");
        assert_eq!(a["how"], "completed", "{a}");
    }
    let seen = hits.lock().unwrap().clone();
    for want in ex.expect_hits {
        assert!(
            seen.iter().any(|s| s.starts_with(want)),
            "the stub never saw {want}: {seen:?}"
        );
    }
    assert_enough_and_no_more(&h, key, &doc, ex.conditional).await;
    assert_outside_is_denied(&h, key, ex.group).await;

    // CompleteLifecycleAction is scoped to the example's groups: another group is denied.
    create_group(&h, "other-group", 0, vec![]).await;
    let asg = aws_sdk_autoscaling::Client::new(&sdk_as(&h, key).await);
    let e = asg
        .complete_lifecycle_action()
        .auto_scaling_group_name("other-group")
        .lifecycle_hook_name("x")
        .instance_id("i-0123456789abcdef0")
        .lifecycle_action_result("CONTINUE")
        .send()
        .await
        .expect_err("another group is outside the policy");
    assert_eq!(e.code(), Some("AccessDenied"), "{e:?}");
    // And SQS (JSON protocol): deleting the queue is not allowed.
    let sqs = aws_sdk_sqs::Client::new(&sdk_as(&h, key).await);
    let e = sqs
        .delete_queue()
        .queue_url(&url)
        .send()
        .await
        .expect_err("DeleteQueue is outside the policy");
    assert_eq!(
        aws_sdk_sqs::error::ProvideErrorMetadata::code(&e),
        Some("AccessDenied"),
        "{e:?}"
    );
    let _ = child.start_kill();
    let _ = child.wait().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn controller_minimal_policy_is_enough_and_no_more() {
    let _serial = common::serial().await;
    controller_example(ControllerExample {
        file: "controller-minimal.toml",
        queue_in_example: "https://sqs.us-east-1.amazonaws.com/000000000000/lifehook-lifecycle",
        group: "web-1",
        hooks: &[("web-terminate", TERMINATING)],
        metadata: None,
        tags: &[("app", "WEB")],
        stubbed: &[
            ("http://eureka.internal:8761", ""),
            ("https://hooks.slack.com/services/T000/B000/XXXX", "/chat"),
        ],
        expect_hits: &["PUT /eureka/apps/WEB/i-", "POST /chat"],
        conditional: CONTROLLER_CONDITIONAL,
        without: None,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn controller_local_policy_is_enough_and_no_more() {
    let _serial = common::serial().await;
    controller_example(ControllerExample {
        file: "controller-local.toml",
        queue_in_example: "http://127.0.0.1:4566/000000000000/lifehook",
        group: "web-local",
        hooks: &[("launch", LAUNCHING), ("terminate", TERMINATING)],
        metadata: None,
        tags: &[],
        stubbed: &[],
        expect_hits: &[],
        conditional: CONTROLLER_CONDITIONAL,
        without: None,
    })
    .await;
}

/// The policy is not more than needed: without `CompleteLifecycleAction` or without
/// `DescribeLifecycleHooks` the controller is denied and completes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn controller_local_fails_without_each_core_action() {
    let _serial = common::serial().await;
    for action in [
        "autoscaling:CompleteLifecycleAction",
        "autoscaling:DescribeLifecycleHooks",
    ] {
        controller_example(ControllerExample {
            file: "controller-local.toml",
            queue_in_example: "http://127.0.0.1:4566/000000000000/lifehook",
            group: "web-local",
            hooks: &[("launch", LAUNCHING)],
            metadata: None,
            tags: &[],
            stubbed: &[],
            expect_hits: &[],
            conditional: CONTROLLER_CONDITIONAL,
            without: Some(action),
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn controller_deregister_policy_is_enough_and_no_more() {
    let _serial = common::serial().await;
    controller_example(ControllerExample {
        file: "controller-deregister.toml",
        queue_in_example: "https://sqs.us-east-1.amazonaws.com/123456789012/lifehook-deregister",
        group: "web-1",
        hooks: &[("deregister", TERMINATING)],
        metadata: Some(r#"{"app": "WEB"}"#),
        tags: &[],
        stubbed: &[
            ("http://eureka.internal:8761", ""),
            ("https://hooks.slack.com/services/T000/B000/XXXX", "/chat"),
        ],
        expect_hits: &[
            "PUT /eureka/apps/WEB/i-",
            "DELETE /eureka/apps/WEB/i-",
            "POST /chat",
        ],
        conditional: CONTROLLER_CONDITIONAL,
        without: None,
    })
    .await;
}

/// Scenario 3 as shipped, on a group without target groups: the `target-groups` steps find
/// nothing to do, the scale-in keeps an AMI.
#[tokio::test(flavor = "multi_thread")]
async fn scenario3_policy_is_enough_and_no_more() {
    let _serial = common::serial().await;
    controller_example(ControllerExample {
        file: "scenario3-ami-and-target-groups.toml",
        queue_in_example: "https://sqs.us-east-1.amazonaws.com/000000000000/lifehook-lifecycle",
        group: "web-1",
        hooks: &[("launch", LAUNCHING), ("terminate", TERMINATING)],
        metadata: None,
        tags: &[],
        stubbed: &[],
        expect_hits: &[],
        conditional: &[
            "autoscaling:RecordLifecycleActionHeartbeat",
            "sqs:ChangeMessageVisibility",
            "sqs:GetQueueAttributes",
            "elasticloadbalancing:DescribeTargetHealth",
            "elasticloadbalancing:RegisterTargets",
            "elasticloadbalancing:DeregisterTargets",
        ],
        without: None,
    })
    .await;
}

/// The ECS drain example on an instance that is no container instance: the step looks it up
/// and has nothing to drain (the drain itself under its policy: `ssm_ecs_and_tag_step_…`).
#[tokio::test(flavor = "multi_thread")]
async fn demo_ecs_drain_policy_is_enough_and_no_more() {
    let _serial = common::serial().await;
    controller_example(ControllerExample {
        file: "demo-ecs-drain.toml",
        queue_in_example: "https://sqs.us-east-1.amazonaws.com/000000000000/lifehook-demo-ecs-drain",
        group: "demo-ecs",
        hooks: &[("drain", TERMINATING)],
        metadata: None,
        tags: &[],
        stubbed: &[],
        expect_hits: &[],
        conditional: &[
            "autoscaling:RecordLifecycleActionHeartbeat",
            "sqs:ChangeMessageVisibility",
            "sqs:GetQueueAttributes",
            "ecs:UpdateContainerInstancesState",
            "ecs:ListTasks",
            "ecs:DescribeTasks",
            "ecs:StopTask",
            "ecs:DescribeServices",
        ],
        without: None,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_deregister_policy_is_enough_and_no_more() {
    let _serial = common::serial().await;
    controller_example(ControllerExample {
        file: "demo-deregister.toml",
        queue_in_example: "https://sqs.us-east-1.amazonaws.com/000000000000/lifehook-demo-deregister",
        group: "demo-web",
        hooks: &[("deregister", TERMINATING)],
        metadata: Some(r#"{"app": "DEMO-WEB"}"#),
        tags: &[],
        stubbed: &[("http://demo-stub.localhost:8761", "")],
        expect_hits: &[
            "PUT /eureka/apps/DEMO-WEB/i-",
            "DELETE /eureka/apps/DEMO-WEB/i-",
            "POST /chat/hooks/demo",
        ],
        conditional: CONTROLLER_CONDITIONAL,
        without: None,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_launch_gate_policy_is_enough_and_no_more() {
    let _serial = common::serial().await;
    controller_example(ControllerExample {
        file: "demo-launch-gate.toml",
        queue_in_example: "https://sqs.us-east-1.amazonaws.com/000000000000/lifehook-demo-launch-gate",
        group: "demo-app",
        hooks: &[("launch-gate", LAUNCHING), ("record", TERMINATING)],
        metadata: None,
        tags: &[],
        stubbed: &[("http://demo-stub.localhost:8761", "")],
        expect_hits: &["GET /health/i-", "POST /events"],
        conditional: IMAGE_CONDITIONAL,
        without: None,
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// Agents
// ---------------------------------------------------------------------------------------

/// The agent for `instance`, signing with `key`; state and log under `home`.
fn agent_as(h: &Harness, key: &str, instance: &str, config: &Path, home: &Path) -> AgentProc {
    AgentProc::start_as(
        h,
        Some(key),
        instance,
        config,
        &home.join("state"),
        &home.join("agent.log"),
    )
}

async fn sha256(text: &str, dir: &Path) -> String {
    let local = dir.join("digest-input");
    std::fs::write(&local, text).unwrap();
    let out = std::process::Command::new("sha256sum")
        .arg(&local)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("digest")
        .to_owned()
}

/// `examples/agent-ship-logs.toml` on two instances: inbox queues subscribed to the
/// topic, the hook created by the agents (with `iam:PassRole` on its role), the script
/// fetched from S3, the logs uploaded under the instance's key, both actions completed
/// CONTINUE — all within the printed agent policy. Overwriting the script in S3 (a
/// bucket it may only read) is denied with S3's AccessDenied.
struct ShipLogs {
    file: &'static str,
    group: &'static str,
    topic: &'static str,
    topic_in_example: &'static str,
    ops_bucket: &'static str,
    log_bucket: &'static str,
    /// The example's working directory, replaced by one per instance.
    workdir: &'static str,
    /// The placeholder digest of the script, when the example has one.
    digest_in_example: Option<&'static str>,
    /// The example's `state_dir = "…"` line, when the working directory does not hold it.
    state_in_example: Option<&'static str>,
    script: &'static str,
    /// A file the script writes under logs/.
    log_file: &'static str,
    swaps: &'static [(&'static str, &'static str)],
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_ship_logs_policy_is_enough_and_no_more() {
    let _serial = common::serial().await;
    ship_logs_example(ShipLogs {
        file: "agent-ship-logs.toml",
        group: "fleet",
        topic: "asg-lifecycle",
        topic_in_example: "arn:aws:sns:us-east-1:123456789012:asg-lifecycle",
        ops_bucket: "my-ops-bucket",
        log_bucket: "my-log-bucket",
        workdir: "/var/lib/lifehook/shutdown",
        digest_in_example: Some("0000000000000000000000000000000000000000000000000000000000000000"),
        state_in_example: Some("state_dir = \"/var/lib/lifehook\""),
        script: "#!/bin/sh\nset -e\nmkdir -p logs\nprintf 'shutdown log of %s\\n' \"$LIFEHOOK_INSTANCE_ID\" > logs/shutdown.log\n",
        log_file: "shutdown.log",
        swaps: &[
            ("arn:aws:iam::123456789012:role/asg-lifecycle-notify", ROLE),
            ("wait_time_seconds = 20", "wait_time_seconds = 1"),
        ],
    })
    .await;
}

/// The demo's scenario 1 example, with the demo's own script (whose digest it names).
#[tokio::test(flavor = "multi_thread")]
async fn demo_ship_logs_policy_is_enough_and_no_more() {
    let _serial = common::serial().await;
    ship_logs_example(ShipLogs {
        file: "demo-ship-logs.toml",
        group: "demo-logs",
        topic: "lifehook-demo-logs",
        topic_in_example: "arn:aws:sns:us-east-1:000000000000:lifehook-demo-logs",
        ops_bucket: "lifehook-demo-ops",
        log_bucket: "lifehook-demo-logs",
        workdir: "/tmp/lifehook-demo-logs",
        digest_in_example: None,
        state_in_example: None,
        script: include_str!("../../../demo/src/assets/on-terminate.sh"),
        log_file: "app.log",
        swaps: &[],
    })
    .await;
}

async fn ship_logs_example(ex: ShipLogs) {
    const N: usize = 2;
    let h = Harness::manual().await;
    let dir = tempfile::tempdir().unwrap();
    let topic = h
        .sns
        .create_topic()
        .name(ex.topic)
        .send()
        .await
        .unwrap()
        .topic_arn()
        .unwrap()
        .to_owned();
    for b in [ex.ops_bucket, ex.log_bucket] {
        h.s3.create_bucket().bucket(b).send().await.unwrap();
    }
    let script = ex.script;
    h.s3.put_object()
        .bucket(ex.ops_bucket)
        .key("lifecycle/on-terminate.sh")
        .body(script.as_bytes().to_vec().into())
        .send()
        .await
        .unwrap();
    let digest = sha256(script, dir.path()).await;
    create_group(&h, ex.group, N as i32, vec![]).await;
    let ids: Vec<String> = wait_for("instances InService", common::patience(), || async {
        let i = instances(&h, ex.group).await;
        (i.len() == N && i.iter().all(|(_, s)| s == "InService"))
            .then(|| i.into_iter().map(|(id, _)| id).collect())
    })
    .await;

    let key = "instance-role";
    let mut agents = Vec::new();
    let mut doc = Value::Null;
    for id in &ids {
        let home = dir.path().join(id);
        std::fs::create_dir_all(&home).unwrap();
        let cfg = home.join("agent.toml");
        std::fs::write(
            &cfg,
            example(ex.file, &{
                let mut swaps: Vec<(&str, String)> = ex
                    .swaps
                    .iter()
                    .map(|(from, to)| (*from, (*to).to_owned()))
                    .collect();
                swaps.push((ex.workdir, home.display().to_string()));
                swaps.push((ex.topic_in_example, topic.clone()));
                if let Some(d) = ex.digest_in_example {
                    swaps.push((d, digest.clone()));
                }
                if let Some(line) = ex.state_in_example {
                    swaps.push((line, format!("state_dir = \"{}/state\"", home.display())));
                }
                swaps
            }),
        )
        .unwrap();
        if doc.is_null() {
            doc = print_policy(&cfg, "agent").await;
            enforce(&h, key, &doc).await;
        }
        agents.push(agent_as(&h, key, id, &cfg, &home));
    }
    wait_for(
        "every agent subscribed its inbox",
        common::patience(),
        || async {
            let subs = h
                .sns
                .list_subscriptions_by_topic()
                .topic_arn(&topic)
                .send()
                .await
                .unwrap();
            (subs.subscriptions().len() == N).then_some(())
        },
    )
    .await;
    scale(&h, ex.group, 0).await;
    wait_for("every instance terminated", common::patience(), || async {
        instances(&h, ex.group).await.is_empty().then_some(())
    })
    .await;
    let done = resolved(&h, ex.group).await;
    assert_eq!(done.len(), N, "{done:?}");
    for a in &done {
        assert_eq!(a["result"], "CONTINUE", "{a}");
        assert_eq!(a["how"], "completed", "{a}");
    }
    for id in &ids {
        let out =
            h.s3.get_object()
                .bucket(ex.log_bucket)
                .key(format!("logs/{}/{id}/{}", ex.group, ex.log_file))
                .send()
                .await
                .expect("the log was uploaded");
        let body = out.body.collect().await.unwrap().into_bytes();
        assert!(String::from_utf8_lossy(&body).contains(id.as_str()));
    }
    for agent in agents {
        let log = agent.log();
        let status = agent.stop().await;
        assert!(status.success(), "{status}\n{log}");
    }
    // Heartbeats and visibility changes happen only for long steps; the inbox has no
    // dead-letter queue to look up beyond its ARN.
    assert_enough_and_no_more(
        &h,
        key,
        &doc,
        &[
            "autoscaling:RecordLifecycleActionHeartbeat",
            "sqs:ChangeMessageVisibility",
        ],
    )
    .await;
    assert_outside_is_denied(&h, key, ex.group).await;

    // S3 REST: overwriting the script it may only read.
    let r = h
        .http()
        .put(format!(
            "{}/{}/lifecycle/on-terminate.sh",
            h.endpoint(),
            ex.ops_bucket
        ))
        .header(
            "authorization",
            format!("AWS4-HMAC-SHA256 Credential={key}/20261122/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0"),
        )
        .body("rm -rf /")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("<Code>AccessDenied</Code>")
            && body.contains(&format!(
                "s3:PutObject on resource: arn:aws:s3:::{}/lifecycle/on-terminate.sh",
                ex.ops_bucket
            )),
        "{body}"
    );
}

// ---------------------------------------------------------------------------------------
// The command and the sandbox flag
// ---------------------------------------------------------------------------------------

/// Every example gets a policy for each mode that applies to it, as JSON, and a bad
/// configuration exits 2 with a located problem.
#[tokio::test(flavor = "multi_thread")]
async fn every_example_prints_its_policies_and_bad_configs_exit_2() {
    let _serial = common::serial().await;
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    for entry in std::fs::read_dir(&examples).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let all = print_policy(&path, "all").await;
        let modes: Vec<&str> = all
            .as_object()
            .expect("an object of modes")
            .keys()
            .map(String::as_str)
            .collect();
        assert!(
            modes.contains(&"agent") && modes.contains(&"lambda"),
            "{path:?}: {modes:?}"
        );
        for (mode, doc) in all.as_object().unwrap() {
            assert_eq!(doc["Version"], "2012-10-17", "{path:?} {mode}");
            let acts = actions(doc);
            assert!(
                acts.contains("autoscaling:CompleteLifecycleAction"),
                "{path:?} {mode}: {acts:?}"
            );
            // The sandbox accepts every document it prints.
            let sb = lifehook_sandbox::Sandbox::new(
                lifehook_sandbox::ClockMode::Manual,
                Default::default(),
            );
            sb.enforce_policy(Some("k"), doc.clone())
                .unwrap_or_else(|e| panic!("{path:?} {mode}: {e}"));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[source]\nqueue_url = 3\n").unwrap();
    let out = lifehook_cmd("http://127.0.0.1:9")
        .args(["policy", "--config"])
        .arg(&bad)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml:2:"), "{err}");
    let out = lifehook_cmd("http://127.0.0.1:9")
        .args(["policy", "--mode", "controller", "--config"])
        .arg(examples.join("agent-ship-logs.toml"))
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "no queue: no controller policy");
}

/// `lifehook sandbox --enforce-policy FILE` enforces for every key but the admin key.
#[tokio::test(flavor = "multi_thread")]
async fn sandbox_flag_enforces_for_every_key_but_the_admin_key() {
    let _serial = common::serial().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.json");
    std::fs::write(
        &file,
        json!({"Version": "2012-10-17", "Statement": [{"Sid": "Read", "Effect": "Allow",
            "Action": "autoscaling:Describe*", "Resource": "*"}]})
        .to_string(),
    )
    .unwrap();
    let (mut child, endpoint) =
        common::sandbox_process(&["--enforce-policy".as_ref(), file.as_os_str()]).await;
    let http = reqwest::Client::new();
    let client = |key: &'static str| {
        let endpoint = endpoint.clone();
        async move {
            let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new("us-east-1"))
                .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                    key,
                    "secret",
                    None,
                    None,
                    "policy-tests",
                ))
                .endpoint_url(endpoint)
                .load()
                .await;
            aws_sdk_autoscaling::Client::new(&sdk)
        }
    };
    let anyone = client("anyone").await;
    anyone
        .describe_auto_scaling_groups()
        .send()
        .await
        .expect("Describe* is allowed");
    let e = anyone
        .create_auto_scaling_group()
        .auto_scaling_group_name("g")
        .min_size(0)
        .max_size(1)
        .availability_zones("us-east-1a")
        .launch_template(
            aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
                .launch_template_name("lt-web")
                .build(),
        )
        .send()
        .await
        .expect_err("not allowed");
    assert_eq!(e.code(), Some("AccessDenied"));
    let admin = client("lifehook-admin").await;
    admin
        .create_auto_scaling_group()
        .auto_scaling_group_name("g")
        .min_size(0)
        .max_size(1)
        .availability_zones("us-east-1a")
        .launch_template(
            aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
                .launch_template_name("lt-web")
                .build(),
        )
        .send()
        .await
        .expect("the admin key is never enforced");
    let iam: Value = http
        .get(format!("{endpoint}/_sandbox/iam"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(iam["denied"], 1, "{iam}");
    assert_eq!(
        iam["denials"][0]["action"],
        "autoscaling:CreateAutoScalingGroup"
    );
    let _ = child.start_kill();
    let _ = child.wait().await;
}

/// `examples/agent-patch-reboot.toml`: the launch action found at start, an update that
/// asks for a reboot, a heartbeat after boot, the patch tag (`ec2:CreateTags`), the
/// CloudFormation signal, CONTINUE — within the printed agent policy.
#[tokio::test(flavor = "multi_thread")]
async fn agent_patch_reboot_policy_is_enough_and_no_more() {
    let _serial = common::serial().await;
    let h = Harness::manual().await;
    let dir = tempfile::tempdir().unwrap();
    let id = group_of_one(
        &h,
        "app",
        vec![hook("patch", LAUNCHING, 600, "ABANDON", None)],
        "Pending:Wait",
        common::patience(),
    )
    .await;
    // The install step waits for `release`: here it may go at once.
    std::fs::write(dir.path().join("release"), "").unwrap();
    let config = patch_config(dir.path(), &h.endpoint(), &id);
    let key = "patched-instance";
    let doc = print_policy(&config, "agent").await;
    enforce(&h, key, &doc).await;

    // Boot 1: the update asks for a reboot.
    let agent = agent_as(&h, key, &id, &config, dir.path());
    wait_for("the instance rebooted", common::patience(), || async {
        (h.control_get(&format!("ec2/instances/{id}")).await["reboots"]["count"] == 1).then_some(())
    })
    .await;
    let first = agent.log();
    drop(agent); // kill_on_drop: the machine goes down
    // Boot 2: heartbeat, then the remaining steps, then CONTINUE.
    let agent = agent_as(&h, key, &id, &config, dir.path());
    wait_for("the instance InService", common::patience(), || async {
        (instances(&h, "app").await == vec![(id.clone(), "InService".to_owned())]).then_some(())
    })
    .await;
    let done = resolved(&h, "app").await;
    assert_eq!(done.len(), 1, "{done:?}\n{first}\n{}", agent.log());
    assert_eq!(done[0]["result"], "CONTINUE");
    assert_eq!(done[0]["how"], "completed");
    let inst = h.control_get(&format!("ec2/instances/{id}")).await;
    assert!(inst["tags"]["lifehook:patched"].is_string(), "{inst}");
    let signals = h.control_get("cloudformation/signals").await;
    assert_eq!(
        signals["signals"][0]["StackName"], "my-app-stack",
        "{signals}"
    );
    assert!(agent.stop().await.success());
    // The hook exists already: PutLifecycleHook is only for a missing hook.
    assert_enough_and_no_more(&h, key, &doc, &["autoscaling:PutLifecycleHook"]).await;
    assert_outside_is_denied(&h, key, "app").await;
    // The tag grant is for the step's own keys: the agent cannot retag its instance.
    let ec2 = aws_sdk_ec2::Client::new(&sdk_as(&h, key).await);
    let tag = |k: &str| aws_sdk_ec2::types::Tag::builder().key(k).value("x").build();
    let e = ec2
        .create_tags()
        .resources(&id)
        .tags(tag("lifehook:patched"))
        .tags(tag("owner"))
        .send()
        .await
        .expect_err("a tag key the step does not set");
    assert_eq!(e.code(), Some("UnauthorizedOperation"), "{e:?}");
    ec2.create_tags()
        .resources(&id)
        .tags(tag("lifehook:patched"))
        .send()
        .await
        .expect("the step's own key");
}

/// `examples/agent-collect-logs.toml` (no queue: IMDS target-lifecycle-state), the
/// termination completed by instance id within the printed agent policy.
#[tokio::test(flavor = "multi_thread")]
async fn agent_collect_logs_policy_is_enough_and_no_more() {
    let _serial = common::serial().await;
    let h = Harness::manual().await;
    let dir = tempfile::tempdir().unwrap();
    let id = group_of_one(
        &h,
        "logs",
        vec![hook("collect", TERMINATING, 300, "ABANDON", None)],
        "InService",
        common::patience(),
    )
    .await;
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        example(
            "agent-collect-logs.toml",
            &[
                (
                    "imds = true",
                    "imds = true\n\n[agent]\nimds_poll_interval = \"100ms\"".to_owned(),
                ),
                // The script: `echo` stands in for the log shipper.
                ("\"/usr/local/bin/ship-logs\"", "\"echo\"".to_owned()),
            ],
        ),
    )
    .unwrap();
    let key = "logging-instance";
    let doc = print_policy(&config, "agent").await;
    enforce(&h, key, &doc).await;
    let agent = agent_as(&h, key, &id, &config, dir.path());
    wait_for("the agent reads InService", common::patience(), || async {
        agent
            .log()
            .contains("target lifecycle state changed")
            .then_some(())
    })
    .await;
    scale(&h, "logs", 0).await;
    wait_for("the instance terminated", common::patience(), || async {
        instances(&h, "logs").await.is_empty().then_some(())
    })
    .await;
    let done = resolved(&h, "logs").await;
    assert_eq!(done.len(), 1, "{done:?}\n{}", agent.log());
    assert_eq!(done[0]["result"], "CONTINUE");
    assert_eq!(done[0]["how"], "completed");
    assert!(agent.stop().await.success());
    assert_enough_and_no_more(
        &h,
        key,
        &doc,
        &["autoscaling:RecordLifecycleActionHeartbeat"],
    )
    .await;
    assert_outside_is_denied(&h, key, "logs").await;
}

/// `examples/demo-patch-reboot.toml` (what `lifehook demo` runs for scenario 5): the
/// "reboot" marker, the agent restarted, the tag and the signal, CONTINUE — within the
/// printed agent policy.
#[tokio::test(flavor = "multi_thread")]
async fn demo_patch_reboot_policy_is_enough_and_no_more() {
    let _serial = common::serial().await;
    let h = Harness::manual().await;
    let dir = tempfile::tempdir().unwrap();
    let id = group_of_one(
        &h,
        "demo-patch",
        vec![hook("patch", LAUNCHING, 600, "ABANDON", None)],
        "Pending:Wait",
        common::patience(),
    )
    .await;
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        example(
            "demo-patch-reboot.toml",
            &[("/tmp/lifehook-demo-patch", work.display().to_string())],
        ),
    )
    .unwrap();
    let key = "demo-instance";
    let doc = print_policy(&config, "agent").await;
    enforce(&h, key, &doc).await;

    let marker = work.join("reboot-requested");
    let agent = agent_as(&h, key, &id, &config, dir.path());
    wait_for("the reboot requested", common::patience(), || async {
        marker.exists().then_some(())
    })
    .await;
    drop(agent); // the machine goes down
    std::fs::remove_file(&marker).unwrap();
    let r = h
        .control_post(&format!("ec2/instances/{id}/reboot"), json!({}))
        .await;
    assert!(r.status().is_success());
    let agent = agent_as(&h, key, &id, &config, dir.path());
    wait_for("the instance InService", common::patience(), || async {
        (instances(&h, "demo-patch").await == vec![(id.clone(), "InService".to_owned())])
            .then_some(())
    })
    .await;
    let done = resolved(&h, "demo-patch").await;
    assert_eq!(done.len(), 1, "{done:?}\n{}", agent.log());
    assert_eq!(done[0]["result"], "CONTINUE");
    assert_eq!(done[0]["how"], "completed");
    assert_eq!(
        std::fs::read_to_string(work.join("app.version")).unwrap(),
        "app 1.4.2\n"
    );
    let inst = h.control_get(&format!("ec2/instances/{id}")).await;
    assert!(inst["tags"]["lifehook:patched"].is_string(), "{inst}");
    let signals = h.control_get("cloudformation/signals").await;
    assert_eq!(
        signals["signals"][0]["StackName"], "demo-app-stack",
        "{signals}"
    );
    assert!(agent.stop().await.success());
    // No [[agent.hook]] in this example: no PutLifecycleHook in the policy either.
    assert!(!actions(&doc).contains("autoscaling:PutLifecycleHook"));
    assert_enough_and_no_more(&h, key, &doc, &[]).await;
    assert_outside_is_denied(&h, key, "demo-patch").await;
}

/// The AWS steps no example uses — `ssm-command` (document and group-tagged instance),
/// `ecs-drain` (container instance, tasks and services of a named cluster, with
/// `ecs:cluster`) and `tag` (group-tagged instance) — run to CONTINUE under the printed
/// controller policy, every action of it used.
#[tokio::test(flavor = "multi_thread")]
async fn ssm_ecs_and_tag_step_policies_are_enough_and_no_more() {
    let _serial = common::serial().await;
    let h = Harness::manual().await;
    let dir = tempfile::tempdir().unwrap();
    let url = h
        .sqs
        .create_queue()
        .queue_name("ops")
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned();
    let arn = queue_arn(&h, &url).await;
    create_group(
        &h,
        "ops-1",
        1,
        vec![hook("drain", TERMINATING, 300, "ABANDON", Some(&arn))],
    )
    .await;
    let id = wait_for("ops-1 InService", common::patience(), || async {
        let i = instances(&h, "ops-1").await;
        i.first()
            .filter(|(_, s)| s == "InService")
            .map(|(i, _)| i.clone())
    })
    .await;
    for ec2 in [id.as_str(), "i-0aaaaaaaaaaaaaaaa"] {
        let r = h
            .control_post(
                "ecs/container-instances",
                json!({"cluster": "prod", "ec2_instance_id": ec2}),
            )
            .await;
        assert!(r.status().is_success());
    }
    ecs(
        &h,
        "RegisterTaskDefinition",
        json!({"family": "web", "containerDefinitions": [{"name": "web", "image": "nginx", "memory": 128}]}),
    )
    .await;
    ecs(
        &h,
        "CreateService",
        json!({"cluster": "prod", "serviceName": "web", "taskDefinition": "web", "desiredCount": 2}),
    )
    .await;
    ecs(
        &h,
        "RunTask",
        json!({"cluster": "prod", "taskDefinition": "web", "startedBy": "cron"}),
    )
    .await;
    let config = dir.path().join("ops.toml");
    std::fs::write(
        &config,
        format!(
            r#"[source]
queue_url = "{url}"

[[pipeline]]
name = "drain"
match = {{ groups = ["ops-*"], transitions = ["terminating"] }}
policy = {{ on_failure = "abandon" }}

[[pipeline.step]]
type = "ssm-command"
interval = "50ms"
commands = ["echo {{{{ instance_id }}}}"]

[[pipeline.step]]
type = "ecs-drain"
cluster = "prod"
interval = "50ms"
timeout = "2m"

[[pipeline.step]]
type = "tag"
tags = {{ "lifehook:drained" = "yes" }}
"#
        ),
    )
    .unwrap();
    let key = "ops-controller";
    let doc = print_policy(&config, "controller").await;
    enforce(&h, key, &doc).await;
    let _tick = Ticker::start(h.endpoint());
    let log = dir.path().join("controller.log");
    let mut child = controller_as(&h, key, &config, &log);
    scale(&h, "ops-1", 0).await;
    wait_for("ops-1 terminated", common::patience(), || async {
        instances(&h, "ops-1").await.is_empty().then_some(())
    })
    .await;
    let done = resolved(&h, "ops-1").await;
    assert_eq!(
        done.len(),
        1,
        "{done:?}\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert_eq!(
        done[0]["result"],
        "CONTINUE",
        "{done:?}\n{}\n{}",
        std::fs::read_to_string(&log).unwrap_or_default(),
        h.control_get("iam").await
    );
    let inst = h.control_get(&format!("ec2/instances/{id}")).await;
    assert_eq!(inst["tags"]["lifehook:drained"], "yes", "{inst}");
    assert_enough_and_no_more(&h, key, &doc, CONTROLLER_CONDITIONAL).await;
    let _ = child.start_kill();
    let _ = child.wait().await;
}
