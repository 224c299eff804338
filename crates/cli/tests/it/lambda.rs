//! `lifehook lambda` as AWS Lambda runs it: the real binary is the runtime process of a
//! sandbox function (its Runtime API address and environment from the control API), the
//! sandbox invokes it from EventBridge rules, SNS subscriptions, hooks and an SQS event
//! source mapping (tests also post SQS-shaped batches themselves, to include records no
//! queue would hand over). The function's deadline is on the sandbox's virtual
//! clock (`LIFEHOOK_CLOCK_URL`), so a step longer than the function timeout is exercised
//! by advancing the clock, never by waiting.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_autoscaling::types::LifecycleHookSpecification;
use common::*;
use lifehook_conformance::Harness;
use serde_json::{Value, json};

/// An exec step that appends the action's instance id and transition to marks.txt.
const MARK: &str = r#"["sh", "-c", "printf '%s %s\n' \"$LIFEHOOK_INSTANCE_ID\" \"$LIFEHOOK_TRANSITION\" >> marks.txt"]"#;
/// An exec step that hangs the first time (after leaving `started-<id>`), and finishes at
/// once when run again for the same instance (steps are written to be safe to rerun).
const ONCE_SLOW: &str = r#"["sh", "-c", "if [ -e \"started-$LIFEHOOK_INSTANCE_ID\" ]; then echo \"$LIFEHOOK_INSTANCE_ID\" >> finished; exit 0; fi; touch \"started-$LIFEHOOK_INSTANCE_ID\"; exec sleep 300"]"#;

/// A sandbox function and the environment its runtime process needs.
struct Function {
    name: String,
    arn: String,
    env: serde_json::Map<String, Value>,
}

async fn create_function(h: &Harness, name: &str, timeout_secs: u64) -> Function {
    create_function_with(h, json!({"name": name, "timeout_secs": timeout_secs})).await
}

/// A sandbox function created with `body` (`POST /_sandbox/lambda/functions`).
async fn create_function_with(h: &Harness, body: Value) -> Function {
    let name = body["name"].as_str().expect("name").to_owned();
    let r = h.control_post("lambda/functions", body).await;
    assert!(r.status().is_success(), "create function: {}", r.status());
    let v: Value = r.json().await.expect("function json");
    Function {
        name,
        arn: v["FunctionArn"].as_str().expect("FunctionArn").to_owned(),
        env: v["env"].as_object().expect("env").clone(),
    }
}

/// Starts `lifehook lambda --config <config>` as the function's runtime.
fn start_runtime(h: &Harness, f: &Function, config: &Path, log: &Path) -> tokio::process::Child {
    runtime(h, f, config, log, None)
}

/// The runtime process, signing with `key` when given (else the test credentials).
fn runtime(
    h: &Harness,
    f: &Function,
    config: &Path,
    log: &Path,
    key: Option<&str>,
) -> tokio::process::Child {
    let log = std::fs::File::create(log).expect("log file");
    let mut cmd = lifehook_cmd(&h.endpoint());
    for (k, v) in &f.env {
        cmd.env(k, v.as_str().unwrap_or_default());
    }
    if let Some(key) = key {
        cmd.env("AWS_ACCESS_KEY_ID", key);
    }
    cmd.env(
        "LIFEHOOK_CLOCK_URL",
        format!("{}/_sandbox/clock", h.endpoint()),
    )
    .args(["lambda", "--config"])
    .arg(config)
    .stdout(Stdio::null())
    .stderr(log)
    .spawn()
    .expect("spawn lifehook lambda")
}

/// The access key the enforced scenarios' runtime signs with.
const ROLE_KEY: &str = "lambda-role";

/// Prints the configuration's Lambda policy with the real binary and has the sandbox
/// enforce it for [`ROLE_KEY`] (`lifehook policy --mode lambda`).
async fn enforce_printed_policy(h: &Harness, config: &Path) -> Value {
    let out = lifehook_cmd(&h.endpoint())
        .args(["policy", "--mode", "lambda", "--config"])
        .arg(config)
        .output()
        .await
        .expect("lifehook policy");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).expect("policy JSON");
    let r = h
        .control_post(
            "iam/policies",
            json!({"access_key_id": ROLE_KEY, "policy": doc}),
        )
        .await;
    assert!(r.status().is_success(), "the sandbox refused the policy");
    doc
}

/// The runtime, signing its calls with [`ROLE_KEY`].
fn start_runtime_as_role(
    h: &Harness,
    f: &Function,
    config: &Path,
    log: &Path,
) -> tokio::process::Child {
    runtime(h, f, config, log, Some(ROLE_KEY))
}

/// Under the printed policy nothing was denied, and every granted action the scenario did
/// not use is one of `conditional` (paths it does not take) or CloudWatch Logs (which the
/// sandbox does not serve).
async fn assert_policy_enough_and_no_more(h: &Harness, doc: &Value, conditional: &[&str]) {
    let iam = h.control_get("iam").await;
    let denied: Vec<&Value> = iam["denials"]
        .as_array()
        .expect("denials")
        .iter()
        .filter(|d| d["access_key_id"] == ROLE_KEY)
        .collect();
    assert!(
        denied.is_empty(),
        "denied under the printed policy: {denied:#?}"
    );
    let used: Vec<String> = iam["allowed_actions"][ROLE_KEY]
        .as_array()
        .expect("the function made requests")
        .iter()
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect();
    let unused: Vec<String> = doc["Statement"]
        .as_array()
        .expect("statements")
        .iter()
        .flat_map(|s| s["Action"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a.as_str().map(str::to_owned))
        .filter(|a| {
            !used.contains(a) && !a.starts_with("logs:") && !conditional.contains(&a.as_str())
        })
        .collect();
    assert!(
        unused.is_empty(),
        "granted but never needed: {unused:?} (used: {used:?})"
    );
    // Outside the policy: deleting a group is denied, in the AWS shape.
    let r = h
        .http()
        .post(h.endpoint())
        .header(
            "authorization",
            format!("AWS4-HMAC-SHA256 Credential={ROLE_KEY}/20261122/us-east-1/autoscaling/aws4_request, SignedHeaders=host, Signature=0"),
        )
        .header("content-type", "application/x-www-form-urlencoded")
        .body("Action=DeleteAutoScalingGroup&Version=2011-01-01&AutoScalingGroupName=any&ForceDelete=true")
        .send()
        .await
        .expect("DeleteAutoScalingGroup");
    assert_eq!(r.status().as_u16(), 403);
    let body = r.text().await.unwrap_or_default();
    assert!(
        body.contains("<Code>AccessDenied</Code>")
            && body.contains("autoscaling:DeleteAutoScalingGroup"),
        "{body}"
    );
}

fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("lifehook.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// One pipeline running `argv` (an exec step in `dir`).
fn exec_pipeline(
    dir: &Path,
    name: &str,
    groups: &str,
    transitions: &str,
    on_failure: &str,
    argv: &str,
) -> String {
    format!(
        "[[pipeline]]\nname = \"{name}\"\nmatch = {{ groups = [{groups}], transitions = [{transitions}] }}\n\
         policy = {{ on_success = \"continue\", on_failure = \"{on_failure}\" }}\n\n\
         [[pipeline.step]]\ntype = \"exec\"\nname = \"work\"\ncommand = {argv}\nworking_dir = \"{}\"\ntimeout = \"10m\"\n\n",
        dir.display()
    )
}

fn marks(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("marks.txt"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

async fn invocations(h: &Harness, f: &Function) -> Vec<Value> {
    h.control_get(&format!("lambda/functions/{}", f.name))
        .await
        .get("invocations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

async fn invocation(h: &Harness, f: &Function, request_id: &str) -> Option<Value> {
    invocations(h, f)
        .await
        .into_iter()
        .find(|i| i["RequestId"] == request_id)
}

/// Queues an invocation with `event` (as an SQS event source mapping or a test would).
async fn invoke(h: &Harness, f: &Function, event: &Value) -> String {
    let r = h
        .control_post(
            &format!("lambda/functions/{}/invocations", f.name),
            event.clone(),
        )
        .await;
    assert!(r.status().is_success(), "invoke: {}", r.status());
    let v: Value = r.json().await.expect("invoke json");
    v["RequestId"].as_str().expect("RequestId").to_owned()
}

/// The resolution (`result`, `how`) of the lifecycle actions of `instance`, oldest first.
async fn resolutions(h: &Harness, instance: &str) -> Vec<(String, String)> {
    h.control_get("stats").await["resolved_actions"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|r| r["instance"] == instance)
                .map(|r| {
                    (
                        r["result"].as_str().unwrap_or_default().to_owned(),
                        r["how"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn api_calls(h: &Harness, op: &str) -> u64 {
    h.control_get("stats").await["requests"]["autoscaling"][op]
        .as_u64()
        .unwrap_or(0)
}

async fn all_in_state(h: &Harness, group: &str, n: usize, state: &str) -> Option<Vec<String>> {
    let inst = instances(h, group).await;
    (inst.len() == n && inst.iter().all(|(_, s)| s == state))
        .then(|| inst.into_iter().map(|(i, _)| i).collect())
}

async fn one_in_state(h: &Harness, group: &str, state: &str) -> Option<String> {
    instances(h, group)
        .await
        .into_iter()
        .find(|(_, s)| s == state)
        .map(|(i, _)| i)
}

/// A hook that names the function itself as its target (spec §3.6: no role).
fn function_hook(name: &str, transition: &str, target: &str) -> LifecycleHookSpecification {
    LifecycleHookSpecification::builder()
        .lifecycle_hook_name(name)
        .lifecycle_transition(transition)
        .heartbeat_timeout(300)
        .default_result("ABANDON")
        .notification_target_arn(target)
        .build()
}

/// An EventBridge rule sending the lifecycle events of groups with `prefix` to `target`.
async fn rule_to(h: &Harness, name: &str, prefix: &str, detail_types: &[&str], target: &str) {
    let pattern = json!({
        "source": ["aws.autoscaling"],
        "detail-type": detail_types,
        "detail": {"AutoScalingGroupName": [{"prefix": prefix}]}
    });
    h.events
        .put_rule()
        .name(name)
        .event_pattern(pattern.to_string())
        .send()
        .await
        .expect("PutRule");
    h.events
        .put_targets()
        .rule(name)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("fn")
                .arn(target)
                .build()
                .expect("target"),
        )
        .send()
        .await
        .expect("PutTargets");
}

const LAUNCH_EVENT: &str = "EC2 Instance-launch Lifecycle Action";
const TERMINATE_EVENT: &str = "EC2 Instance-terminate Lifecycle Action";

#[tokio::test(flavor = "multi_thread")]
async fn eventbridge_rule_launch_and_terminate_complete_continue() {
    let _serial = common::serial().await;
    let h = Harness::manual().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let f = create_function(&h, "hooks", 60).await;
    rule_to(&h, "web", "web-", &[LAUNCH_EVENT, TERMINATE_EVENT], &f.arn).await;
    let config = write_config(
        d,
        &exec_pipeline(
            d,
            "web",
            "\"web-*\"",
            "\"launching\", \"terminating\"",
            "abandon",
            MARK,
        ),
    );
    let _rt = start_runtime(&h, &f, &config, &d.join("lambda.log"));
    create_group(
        &h,
        "web-eb",
        2,
        vec![
            hook("launch", LAUNCHING, 300, "ABANDON", None),
            hook("terminate", TERMINATING, 300, "ABANDON", None),
        ],
    )
    .await;
    let ids = wait_for("both instances InService", common::patience(), || {
        all_in_state(&h, "web-eb", 2, "InService")
    })
    .await;
    h.asg
        .set_desired_capacity()
        .auto_scaling_group_name("web-eb")
        .desired_capacity(0)
        .send()
        .await
        .unwrap();
    wait_for("both instances gone", common::patience(), || async {
        instances(&h, "web-eb").await.is_empty().then_some(())
    })
    .await;
    let m = marks(d);
    for id in &ids {
        assert!(m.contains(&format!("{id} {LAUNCHING}")), "{m:?}");
        assert!(m.contains(&format!("{id} {TERMINATING}")), "{m:?}");
        let r = resolutions(&h, id).await;
        assert_eq!(
            r,
            vec![
                ("CONTINUE".to_owned(), "completed".to_owned()),
                ("CONTINUE".to_owned(), "completed".to_owned())
            ],
            "{id}"
        );
    }
    assert_eq!(m.len(), 4, "each action ran its pipeline once: {m:?}");
    let invs = wait_for("four invocations answered", common::patience(), || async {
        let invs = invocations(&h, &f).await;
        (invs.len() == 4 && invs.iter().all(|i| i["status"] == "succeeded")).then_some(invs)
    })
    .await;
    for i in &invs {
        assert_eq!(i["source"], "events", "{i}");
        assert_eq!(i["attempts"], 1, "{i}");
        assert_eq!(i["response"], json!({"outcomes": ["continue"]}), "{i}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sns_subscription_hook_target_and_foreign_events() {
    let _serial = common::serial().await;
    let h = Harness::manual().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let f = create_function(&h, "hooks", 60).await;
    let config = write_config(
        d,
        &exec_pipeline(d, "web", "\"web-*\"", "\"launching\"", "abandon", MARK),
    );
    let _rt = start_runtime(&h, &f, &config, &d.join("lambda.log"));

    // Group "web-sns": hook → SNS topic → the function (path D of spec §3).
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
        .protocol("lambda")
        .endpoint(&f.arn)
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
    // Group "web-direct": the hook names the function (path G, §3.6).
    create_group(
        &h,
        "web-direct",
        1,
        vec![function_hook("launch", LAUNCHING, &f.arn)],
    )
    .await;
    // Foreign and odd payloads, straight to the function: acknowledged, never retried.
    let test = json!({"AccountId":"000000000000","RequestId":"r","AutoScalingGroupARN":"arn","AutoScalingGroupName":"web-x","Service":"AWS Auto Scaling","Event":"autoscaling:TEST_NOTIFICATION","Time":"2026-11-22T00:00:00.000Z"});
    let odd = [
        json!({"hello": "world"}),
        json!([1, 2, 3]),
        json!("a string"),
        json!({"source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification", "detail": {}}),
        json!({"source": "aws.autoscaling", "detail-type": LAUNCH_EVENT, "detail": {"EC2InstanceId": 7}}),
        json!({"Records": [{"EventSource": "aws:sns", "Sns": {"Type": "Notification", "TopicArn": "t", "Message": "{not json"}}]}),
        json!({"Records": "nope"}),
    ];
    let mut odd_ids = Vec::new();
    for e in &odd {
        odd_ids.push(invoke(&h, &f, e).await);
    }
    let test_id = invoke(&h, &f, &test).await;

    let sns_id = wait_for("web-sns InService", common::patience(), || {
        one_in_state(&h, "web-sns", "InService")
    })
    .await;
    let direct_id = wait_for("web-direct InService", common::patience(), || {
        one_in_state(&h, "web-direct", "InService")
    })
    .await;
    let m = marks(d);
    assert!(m.contains(&format!("{sns_id} {LAUNCHING}")), "{m:?}");
    assert!(m.contains(&format!("{direct_id} {LAUNCHING}")), "{m:?}");

    let invs = wait_for("every invocation answered", common::patience(), || async {
        let invs = invocations(&h, &f).await;
        invs.iter()
            .all(|i| i["status"] == "succeeded")
            .then_some(invs)
    })
    .await;
    let outcomes = |source: &str| -> Vec<Value> {
        invs.iter()
            .filter(|i| i["source"] == source)
            .map(|i| i["response"]["outcomes"].clone())
            .collect()
    };
    // SNS delivered the hook's test notification, then the launch action.
    let sns = outcomes("sns");
    assert!(sns.contains(&json!(["test"])), "{sns:?}");
    assert!(sns.contains(&json!(["continue"])), "{sns:?}");
    assert_eq!(outcomes("autoscaling"), vec![json!(["continue"])]);
    for id in odd_ids.iter().chain([&test_id]) {
        let i = invocation(&h, &f, id).await.expect("invocation");
        assert_eq!(i["attempts"], 1, "answered at once, never retried: {i}");
        assert!(i["errors"].as_array().is_some_and(Vec::is_empty), "{i}");
    }
    let i = invocation(&h, &f, &test_id).await.unwrap();
    assert_eq!(i["response"], json!({"outcomes": ["test"]}));
}

/// Runs `lifehook lambda` for `f` with two launch pipelines — "web-*" marks, "slow-*"
/// hangs the first time ([`ONCE_SLOW`]) — and creates the groups "web-q" and "slow-q" of
/// one instance, whose launch hook notifies `queue_arn`. Returns the runtime process.
async fn web_and_slow_groups(
    h: &Harness,
    d: &Path,
    f: &Function,
    queue_arn: &str,
) -> tokio::process::Child {
    let mut text = exec_pipeline(d, "web", "\"web-*\"", "\"launching\"", "abandon", MARK);
    text.push_str(&exec_pipeline(
        d,
        "slow",
        "\"slow-*\"",
        "\"launching\"",
        "abandon",
        ONCE_SLOW,
    ));
    let config = write_config(d, &text);
    let rt = start_runtime(h, f, &config, &d.join("lambda.log"));
    for g in ["web-q", "slow-q"] {
        create_group(
            h,
            g,
            1,
            vec![hook("launch", LAUNCHING, 300, "ABANDON", Some(queue_arn))],
        )
        .await;
    }
    rt
}

#[tokio::test(flavor = "multi_thread")]
async fn sqs_batch_reports_only_the_record_that_must_come_back() {
    let _serial = common::serial().await;
    let h = Harness::manual().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let f = create_function(&h, "hooks", 30).await;
    let (url, arn, _dlq) = queue_with_dlq(&h, "hooks", 10).await;
    let _rt = web_and_slow_groups(&h, d, &f, &arn).await;
    let web = wait_for("web-q waiting", common::patience(), || {
        one_in_state(&h, "web-q", "Pending:Wait")
    })
    .await;
    let slow = wait_for("slow-q waiting", common::patience(), || {
        one_in_state(&h, "slow-q", "Pending:Wait")
    })
    .await;

    // What an event source mapping would do: receive, and invoke with the records.
    let receive = || async {
        h.sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .visibility_timeout(300)
            .send()
            .await
            .expect("receive")
            .messages
            .unwrap_or_default()
    };
    let record = |m: &aws_sdk_sqs::types::Message| {
        json!({
            "messageId": m.message_id(),
            "receiptHandle": m.receipt_handle(),
            "body": m.body(),
            "attributes": {"ApproximateReceiveCount": "1"},
            "messageAttributes": {},
            "md5OfBody": m.md5_of_body(),
            "eventSource": "aws:sqs",
            "eventSourceARN": arn,
            "awsRegion": "us-east-1"
        })
    };
    // Two test notifications and two lifecycle actions, in whatever batches SQS gives.
    let mut msgs = Vec::new();
    let started = std::time::Instant::now();
    while msgs.len() < 4 {
        assert!(
            started.elapsed() < common::patience(),
            "only {} messages arrived",
            msgs.len()
        );
        msgs.extend(receive().await);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let slow_msg = msgs
        .iter()
        .find(|m| m.body().is_some_and(|b| b.contains(&slow)))
        .expect("the slow action's message");
    let slow_msg_id = slow_msg.message_id().unwrap().to_owned();
    let mut records: Vec<Value> = msgs.iter().map(record).collect();
    // A second copy of the web action (SQS is at-least-once): acknowledged, not rerun.
    let web_body = msgs
        .iter()
        .find_map(|m| m.body().filter(|b| b.contains(&web)))
        .expect("the web action's message");
    records.push(json!({
        "messageId": "dup-1", "receiptHandle": "rh-dup", "body": web_body,
        "eventSource": "aws:sqs", "eventSourceARN": arn, "awsRegion": "us-east-1"
    }));
    records.push(json!({
        "messageId": "garbage-1", "receiptHandle": "rh", "body": "not json at all",
        "eventSource": "aws:sqs", "eventSourceARN": arn, "awsRegion": "us-east-1"
    }));
    let rid = invoke(&h, &f, &json!({ "Records": records })).await;

    // The good record completes; the slow one runs into the function's deadline.
    wait_for("web-q InService", common::patience(), || {
        one_in_state(&h, "web-q", "InService")
    })
    .await;
    wait_for("the slow step started", common::patience(), || async {
        d.join(format!("started-{slow}")).exists().then_some(())
    })
    .await;
    let beats = api_calls(&h, "RecordLifecycleActionHeartbeat").await;
    // 30 s timeout, 2 s margin: the steps stop at 28 s of the virtual clock.
    h.advance(29.0).await;
    let answered = wait_for("the batch answered", common::patience(), || async {
        invocation(&h, &f, &rid)
            .await
            .filter(|i| i["status"] == "succeeded")
    })
    .await;
    assert_eq!(
        answered["response"],
        json!({"batchItemFailures": [{"itemIdentifier": slow_msg_id}]}),
        "only the unfinished record comes back; the test notifications and the garbage are acknowledged"
    );
    assert!(
        api_calls(&h, "RecordLifecycleActionHeartbeat").await > beats,
        "a heartbeat before the hand-back"
    );
    assert_eq!(
        instances(&h, "slow-q").await[0].1,
        "Pending:Wait",
        "not completed"
    );
    assert_eq!(
        resolutions(&h, &web).await,
        vec![("CONTINUE".into(), "completed".into())]
    );
    assert_eq!(
        marks(d),
        vec![format!("{web} {LAUNCHING}")],
        "the duplicate did not run"
    );

    // Its visibility was shortened to 10 s (from 300): it comes back soon.
    h.advance(11.0).await;
    let again = wait_for(
        "the slow message visible again",
        common::patience(),
        || async {
            receive()
                .await
                .into_iter()
                .find(|m| m.message_id() == Some(slow_msg_id.as_str()))
        },
    )
    .await;
    let rid2 = invoke(&h, &f, &json!({ "Records": [record(&again)] })).await;
    wait_for("slow-q InService", common::patience(), || {
        one_in_state(&h, "slow-q", "InService")
    })
    .await;
    let second = wait_for("the second batch answered", common::patience(), || async {
        invocation(&h, &f, &rid2)
            .await
            .filter(|i| i["status"] == "succeeded")
    })
    .await;
    assert_eq!(second["response"], json!({"batchItemFailures": []}));
    assert_eq!(
        resolutions(&h, &slow).await,
        vec![("CONTINUE".into(), "completed".into())]
    );
    assert_eq!(
        std::fs::read_to_string(d.join("finished"))
            .unwrap()
            .lines()
            .count(),
        1
    );
}

/// The usual Lambda deployment: the hooks notify an SQS queue and an event source mapping
/// (with `ReportBatchItemFailures`) hands its messages to the function. The mapping
/// deletes every message the function handled — test notifications and actions — and keeps
/// the one it handed back at its deadline, which returns when its visibility (shortened by
/// the function) ends and then completes.
#[tokio::test(flavor = "multi_thread")]
async fn an_sqs_event_source_mapping_runs_the_hooks_messages_end_to_end() {
    let _serial = common::serial().await;
    let h = Harness::manual().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (url, arn, _dlq) = queue_with_dlq(&h, "hooks", 5).await;
    let f = create_function_with(
        &h,
        json!({"name": "hooks", "timeout_secs": 30, "sqs_event_source": {
            "queue": arn, "batch_size": 10, "report_batch_item_failures": true}}),
    )
    .await;
    let _rt = web_and_slow_groups(&h, d, &f, &arn).await;
    let web = wait_for("web-q InService", common::patience(), || {
        one_in_state(&h, "web-q", "InService")
    })
    .await;
    let slow = wait_for("slow-q waiting", common::patience(), || {
        one_in_state(&h, "slow-q", "Pending:Wait")
    })
    .await;
    wait_for("the slow step started", common::patience(), || async {
        d.join(format!("started-{slow}")).exists().then_some(())
    })
    .await;
    // 30 s timeout, 2 s margin: the function hands the slow action back at 28 s.
    h.advance(29.0).await;
    let handed_back = wait_for(
        "a batch answered with one failure",
        common::patience(),
        || async {
            invocations(&h, &f).await.into_iter().find(|i| {
                i["source"] == "sqs"
                    && i["status"] == "succeeded"
                    && i["response"]["batchItemFailures"]
                        .as_array()
                        .is_some_and(|a| a.len() == 1)
            })
        },
    )
    .await;
    let kept = handed_back["response"]["batchItemFailures"][0]["itemIdentifier"].clone();
    let kept_body = handed_back["payload"]["Records"]
        .as_array()
        .expect("Records")
        .iter()
        .find(|r| r["messageId"] == kept)
        .map(|r| r["body"].as_str().unwrap_or_default().to_owned())
        .expect("the failed item is one of the batch");
    assert!(kept_body.contains(&slow), "{kept_body}");
    assert_eq!(
        instances(&h, "slow-q").await[0].1,
        "Pending:Wait",
        "handed back, not completed"
    );
    // The function shortened its visibility to 10 s: it comes back and completes.
    h.advance(11.0).await;
    wait_for("slow-q InService", common::patience(), || {
        one_in_state(&h, "slow-q", "InService")
    })
    .await;
    wait_for("the queue empty", common::patience(), || async {
        (queue_depth(&h, &url).await == (0, 0)).then_some(())
    })
    .await;
    for id in [&web, &slow] {
        assert_eq!(
            resolutions(&h, id).await,
            vec![("CONTINUE".into(), "completed".into())]
        );
    }
    assert_eq!(marks(d), vec![format!("{web} {LAUNCHING}")]);
    let view = h.control_get(&format!("lambda/functions/{}", f.name)).await;
    let src = &view["sqs_event_source"];
    // Two test notifications and two actions, every one deleted by the mapping.
    assert_eq!(src["deleted"], 4, "{src}");
    assert_eq!(src["failed_batches"], 0, "{src}");
    assert!(
        invocations(&h, &f)
            .await
            .iter()
            .all(|i| i["source"] == "sqs" && i["status"] == "succeeded"),
        "every invocation came from the mapping and was answered"
    );
}

/// The SQS deployment under its printed Lambda policy: the event source mapping polls and
/// deletes as the function's role (the sandbox authorizes its calls as that key), the
/// function completes as it; nothing is denied, and nothing granted goes unused but the
/// hand-back's visibility change and the heartbeat.
#[tokio::test(flavor = "multi_thread")]
async fn the_sqs_deployment_runs_under_its_printed_lambda_policy() {
    let _serial = common::serial().await;
    let h = Harness::manual().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (url, arn, _dlq) = queue_with_dlq(&h, "hooks", 5).await;
    let mut text = format!("[source]\nqueue_url = \"{url}\"\n\n");
    text.push_str(&exec_pipeline(
        d,
        "web",
        "\"web-*\"",
        "\"launching\"",
        "abandon",
        MARK,
    ));
    let config = write_config(d, &text);
    let doc = enforce_printed_policy(&h, &config).await;
    let f = create_function_with(
        &h,
        json!({"name": "hooks", "timeout_secs": 30, "sqs_event_source": {
            "queue": arn, "report_batch_item_failures": true, "access_key_id": ROLE_KEY}}),
    )
    .await;
    let _rt = start_runtime_as_role(&h, &f, &config, &d.join("lambda.log"));
    create_group(
        &h,
        "web-q",
        1,
        vec![hook("launch", LAUNCHING, 300, "ABANDON", Some(&arn))],
    )
    .await;
    let web = wait_for("web-q InService", common::patience(), || {
        one_in_state(&h, "web-q", "InService")
    })
    .await;
    wait_for("the queue empty", common::patience(), || async {
        (queue_depth(&h, &url).await == (0, 0)).then_some(())
    })
    .await;
    assert_eq!(marks(d), vec![format!("{web} {LAUNCHING}")]);
    assert_policy_enough_and_no_more(
        &h,
        &doc,
        &[
            "autoscaling:RecordLifecycleActionHeartbeat",
            "sqs:ChangeMessageVisibility",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_step_longer_than_the_function_timeout_is_handed_back_and_retried() {
    let _serial = common::serial().await;
    let h = Harness::manual().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let f = create_function(&h, "hooks", 30).await;
    rule_to(&h, "slow", "slow-", &[LAUNCH_EVENT], &f.arn).await;
    let config = write_config(
        d,
        &exec_pipeline(
            d,
            "slow",
            "\"slow-*\"",
            "\"launching\"",
            "abandon",
            ONCE_SLOW,
        ),
    );
    let _rt = start_runtime(&h, &f, &config, &d.join("lambda.log"));
    create_group(
        &h,
        "slow-eb",
        1,
        vec![hook("launch", LAUNCHING, 300, "ABANDON", None)],
    )
    .await;
    let id = wait_for("waiting", common::patience(), || {
        one_in_state(&h, "slow-eb", "Pending:Wait")
    })
    .await;
    wait_for("the slow step started", common::patience(), || async {
        d.join(format!("started-{id}")).exists().then_some(())
    })
    .await;
    let beats = api_calls(&h, "RecordLifecycleActionHeartbeat").await;
    h.advance(29.0).await;
    let failed = wait_for("the invocation handed back", common::patience(), || async {
        invocations(&h, &f)
            .await
            .into_iter()
            .find(|i| i["status"] == "retry_scheduled")
    })
    .await;
    // lambda_runtime posts `unhandled` in the header and the error's type in the body.
    assert_eq!(
        failed["errors"][0]["payload"]["errorType"], "Lifehook.HandedBack",
        "{failed}"
    );
    assert!(api_calls(&h, "RecordLifecycleActionHeartbeat").await > beats);
    assert_eq!(instances(&h, "slow-eb").await[0].1, "Pending:Wait");

    // Lambda retries a minute later; the rerun finds the work done and completes.
    h.advance(61.0).await;
    wait_for("InService after the retry", common::patience(), || {
        one_in_state(&h, "slow-eb", "InService")
    })
    .await;
    let done = wait_for("the retry succeeded", common::patience(), || async {
        invocation(&h, &f, failed["RequestId"].as_str()?)
            .await
            .filter(|i| i["status"] == "succeeded")
    })
    .await;
    assert_eq!(done["attempts"], 2, "{done}");
    assert_eq!(done["response"], json!({"outcomes": ["continue"]}));
    assert_eq!(
        resolutions(&h, &id).await,
        vec![("CONTINUE".into(), "completed".into())]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn work_longer_than_every_retry_leaves_the_action_to_its_default_result() {
    let _serial = common::serial().await;
    let h = Harness::manual().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let f = create_function(&h, "hooks", 30).await;
    rule_to(&h, "stuck", "stuck-", &[LAUNCH_EVENT], &f.arn).await;
    // Never finishes: each attempt leaves a line in `runs`, then hangs.
    let always_slow = r#"["sh", "-c", "echo run >> runs; exec sleep 300"]"#;
    let config = write_config(
        d,
        &exec_pipeline(
            d,
            "stuck",
            "\"stuck-*\"",
            "\"launching\"",
            "abandon",
            always_slow,
        ),
    );
    let _rt = start_runtime(&h, &f, &config, &d.join("lambda.log"));
    create_group(
        &h,
        "stuck-1",
        1,
        vec![hook("launch", LAUNCHING, 600, "ABANDON", None)],
    )
    .await;
    let id = wait_for("waiting", common::patience(), || {
        one_in_state(&h, "stuck-1", "Pending:Wait")
    })
    .await;
    let runs = || {
        std::fs::read_to_string(d.join("runs"))
            .unwrap_or_default()
            .lines()
            .count()
    };
    let beats = api_calls(&h, "RecordLifecycleActionHeartbeat").await;
    // The first attempt and Lambda's two retries (60 s, then 120 s later) each run into the
    // function's deadline and hand the action back after a heartbeat.
    let mut request_id = String::new();
    for (attempt, then_advance) in [(1usize, 61.0), (2, 121.0), (3, 0.0)] {
        wait_for_logged(
            &format!("attempt {attempt} started"),
            &d.join("lambda.log"),
            || async { (runs() == attempt).then_some(()) },
        )
        .await;
        h.advance(29.0).await;
        let inv = wait_for(
            &format!("attempt {attempt} handed back"),
            common::patience(),
            || async {
                invocations(&h, &f)
                    .await
                    .into_iter()
                    .find(|i| i["errors"].as_array().map(Vec::len) == Some(attempt))
            },
        )
        .await;
        request_id = inv["RequestId"].as_str().unwrap().to_owned();
        if then_advance > 0.0 {
            h.advance(then_advance).await;
        }
    }
    let last = wait_for("no retries left", common::patience(), || async {
        invocation(&h, &f, &request_id)
            .await
            .filter(|i| i["status"] == "failed")
    })
    .await;
    assert_eq!(last["attempts"], 3, "{last}");
    for e in last["errors"].as_array().unwrap() {
        assert_eq!(e["payload"]["errorType"], "Lifehook.HandedBack", "{e}");
    }
    assert!(api_calls(&h, "RecordLifecycleActionHeartbeat").await >= beats + 3);
    assert_eq!(instances(&h, "stuck-1").await[0].1, "Pending:Wait");
    // Nothing more comes: the hook's DefaultResult applies once the last heartbeat's
    // timeout runs out.
    h.advance(700.0).await;
    let r = wait_for("the DefaultResult applied", common::patience(), || async {
        resolutions(&h, &id).await.into_iter().next()
    })
    .await;
    assert_eq!(r, ("ABANDON".to_owned(), "heartbeat-timeout".to_owned()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_step_abandons_per_policy() {
    let _serial = common::serial().await;
    let h = Harness::manual().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let f = create_function(&h, "hooks", 60).await;
    // Fails the first time it runs, succeeds for the replacement.
    let argv =
        r#"["sh", "-c", "if [ -e first ]; then exit 0; fi; touch first; echo broken >&2; exit 3"]"#;
    let config = write_config(
        d,
        &exec_pipeline(d, "app", "\"app-*\"", "\"launching\"", "abandon", argv),
    );
    let _rt = start_runtime(&h, &f, &config, &d.join("lambda.log"));
    create_group(
        &h,
        "app-1",
        1,
        vec![function_hook("launch", LAUNCHING, &f.arn)],
    )
    .await;
    let first = wait_for("first instance", common::patience(), || async {
        instances(&h, "app-1").await.first().map(|i| i.0.clone())
    })
    .await;
    let replacement = wait_for("a replacement InService", common::patience(), || async {
        instances(&h, "app-1")
            .await
            .into_iter()
            .find(|(i, s)| i != &first && s == "InService")
            .map(|(i, _)| i)
    })
    .await;
    assert_eq!(
        resolutions(&h, &first).await,
        vec![("ABANDON".into(), "completed".into())]
    );
    assert_eq!(
        resolutions(&h, &replacement).await,
        vec![("CONTINUE".into(), "completed".into())]
    );
    let invs = invocations(&h, &f).await;
    let abandoned = invs
        .iter()
        .find(|i| i["response"] == json!({"outcomes": ["abandon"]}))
        .expect("an invocation answered abandon");
    assert_eq!(
        abandoned["attempts"], 1,
        "a failed step is not an invocation failure"
    );
}

// ---------------------------------------------------------------------------------------
// Reference scenarios in Lambda mode
// ---------------------------------------------------------------------------------------

/// What the stub server saw: `METHOD path?query` and the body.
type Seen = Arc<Mutex<Vec<(String, String)>>>;

/// A Eureka registry and a chat webhook on one loopback port.
async fn stub_server() -> (String, Seen) {
    use axum::extract::{Request, State};
    use axum::http::StatusCode;
    let seen: Seen = Arc::default();
    async fn record(State(seen): State<Seen>, req: Request) -> StatusCode {
        let line = format!(
            "{} {}",
            req.method(),
            req.uri()
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default()
        );
        let body = axum::body::to_bytes(req.into_body(), 1 << 20)
            .await
            .unwrap_or_default();
        seen.lock()
            .unwrap()
            .push((line, String::from_utf8_lossy(&body).into_owned()));
        StatusCode::OK
    }
    let app = axum::Router::new()
        .fallback(record)
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), seen)
}

#[tokio::test(flavor = "multi_thread")]
async fn scenario_2_deregister_from_eureka_and_notify_chat() {
    let _serial = common::serial().await;
    let h = Harness::manual().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (stub, seen) = stub_server().await;
    let f = create_function(&h, "deregister", 60).await;
    rule_to(&h, "web-terminate", "web-", &[TERMINATE_EVENT], &f.arn).await;
    let text = example("lambda-deregister.toml", &[])
        .replace("http://eureka.internal:8761", &stub)
        .replace(
            "https://hooks.slack.com/services/T000/B000/XXXX",
            &format!("{stub}/chat/hooks/team"),
        );
    let config = write_config(d, &text);
    let policy = enforce_printed_policy(&h, &config).await;
    let _rt = start_runtime_as_role(&h, &f, &config, &d.join("lambda.log"));
    let terminate = LifecycleHookSpecification::builder()
        .lifecycle_hook_name("deregister")
        .lifecycle_transition(TERMINATING)
        .heartbeat_timeout(300)
        .default_result("CONTINUE")
        .notification_metadata(r#"{"app": "WEB"}"#)
        .build();
    create_group(&h, "web-prod", 1, vec![terminate]).await;
    let id = wait_for("InService", common::patience(), || {
        one_in_state(&h, "web-prod", "InService")
    })
    .await;
    h.asg
        .set_desired_capacity()
        .auto_scaling_group_name("web-prod")
        .desired_capacity(0)
        .send()
        .await
        .unwrap();
    wait_for("terminated", common::patience(), || async {
        instances(&h, "web-prod").await.is_empty().then_some(())
    })
    .await;
    assert_eq!(
        resolutions(&h, &id).await,
        vec![("CONTINUE".into(), "completed".into())],
        "completed by the function, not by the DefaultResult"
    );
    let seen = seen.lock().unwrap().clone();
    let lines: Vec<&str> = seen.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(
        lines,
        vec![
            format!("PUT /eureka/apps/WEB/{id}/status?value=OUT_OF_SERVICE").as_str(),
            format!("DELETE /eureka/apps/WEB/{id}").as_str(),
            "POST /chat/hooks/team",
        ],
        "in order, each once, all before the completion"
    );
    let chat: Value = serde_json::from_str(&seen[2].1).expect("slack json");
    assert!(
        chat["text"]
            .as_str()
            .is_some_and(|t| t.contains(&id) && t.contains("web-prod")),
        "{chat}"
    );
    // The printed Lambda policy was enough, and not more than the scenario needs.
    assert_policy_enough_and_no_more(&h, &policy, &["autoscaling:RecordLifecycleActionHeartbeat"])
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn scenario_4_ecs_drain_moves_service_tasks_and_stops_the_daemon_last() {
    let _serial = common::serial().await;
    let h = Harness::manual().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let f = create_function(&h, "drain", 900).await;
    rule_to(&h, "ecs-terminate", "ecs-", &[TERMINATE_EVENT], &f.arn).await;
    create_group(
        &h,
        "ecs-prod",
        1,
        vec![hook("drain", TERMINATING, 300, "ABANDON", None)],
    )
    .await;
    let id = wait_for("ecs-prod instance", common::patience(), || async {
        instances(&h, "ecs-prod").await.first().map(|i| i.0.clone())
    })
    .await;
    // A task no service started (a daemon-like agent): stopped only once it is alone.
    let daemon = ecs_service_on(&h, &id, "log-agent").await;
    // The example as shipped, polling faster.
    let text =
        example("lambda-ecs-drain.toml", &[]).replace("interval = \"10s\"", "interval = \"50ms\"");
    let config = write_config(d, &text);
    let policy = enforce_printed_policy(&h, &config).await;
    let _rt = start_runtime_as_role(&h, &f, &config, &d.join("lambda.log"));
    let _tick = Ticker::start(h.endpoint());
    h.asg
        .set_desired_capacity()
        .auto_scaling_group_name("ecs-prod")
        .desired_capacity(0)
        .send()
        .await
        .unwrap();
    wait_for("ecs-prod terminated", common::patience(), || async {
        instances(&h, "ecs-prod").await.is_empty().then_some(())
    })
    .await;
    assert_eq!(
        resolutions(&h, &id).await,
        vec![("CONTINUE".into(), "completed".into())]
    );
    let dt = &assert_service_moved_then_standalone_stopped(&h, &daemon).await;
    // Nothing runs on the drained instance any more.
    let on_instance = ecs(
        &h,
        "ListTasks",
        json!({"cluster": "prod", "desiredStatus": "RUNNING"}),
    )
    .await;
    let running_here = ecs(
        &h,
        "DescribeTasks",
        json!({"cluster": "prod", "tasks": on_instance["taskArns"].clone()}),
    )
    .await;
    let ci_of = |t: &Value| t["containerInstanceArn"].as_str().unwrap_or("").to_owned();
    let drained_ci = ci_of(dt);
    assert!(
        running_here["tasks"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|t| ci_of(t) != drained_ci),
        "nothing runs on the drained container instance"
    );
    // The printed Lambda policy was enough, and not more than the scenario needs.
    assert_policy_enough_and_no_more(&h, &policy, &["autoscaling:RecordLifecycleActionHeartbeat"])
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_configuration_exits_2_and_reports_an_init_error() {
    let _serial = common::serial().await;
    let h = Harness::manual().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let f = create_function(&h, "broken", 30).await;
    let config = write_config(
        d,
        "[[pipeline]]\nname = \"x\"\n\n[[pipeline.step]]\ntype = \"shell\"\n",
    );
    let out = {
        let mut cmd = lifehook_cmd(&h.endpoint());
        for (k, v) in &f.env {
            cmd.env(k, v.as_str().unwrap_or_default());
        }
        cmd.args(["lambda", "--config"])
            .arg(&config)
            .output()
            .await
            .unwrap()
    };
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("lifehook.toml:5:"), "located: {stderr}");
    let errors =
        h.control_get(&format!("lambda/functions/{}", f.name)).await["init_errors"].clone();
    assert!(
        errors.to_string().contains("Runtime.ConfigError"),
        "init error posted: {errors}"
    );
    // As Lambda starts it: `bootstrap` without arguments, the file in LAMBDA_TASK_ROOT.
    let root = tempfile::tempdir().unwrap();
    std::fs::write(
        root.path().join("lifehook.toml"),
        "[[pipeline]]\nname = \"x\"\n\n[[pipeline.step]]\ntype = \"shell\"\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_lifehook"),
        root.path().join("bootstrap"),
    )
    .unwrap();
    let out = tokio::process::Command::new(root.path().join("bootstrap"))
        .env_clear()
        .env("LAMBDA_TASK_ROOT", root.path())
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = format!("{}:5:", root.path().join("lifehook.toml").display());
    assert!(stderr.contains(&expected), "{expected} in: {stderr}");

    // Without the runtime's variables: a message, not a panic.
    let out = lifehook_cmd(&h.endpoint())
        .args(["lambda", "--config"])
        .arg(write_config(
            d,
            &exec_pipeline(d, "w", "\"w\"", "\"launching\"", "abandon", MARK),
        ))
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("AWS_LAMBDA_RUNTIME_API"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Reference scenario 3 in Lambda mode: an EventBridge rule sends a group's lifecycle
/// events to the function. New instances wait in Pending:Wait until healthy in the group's
/// target group; an instance refresh replaces them without keeping an AMI; an unexpected
/// scale-in keeps an available AMI tagged with the instance and the group.
#[tokio::test(flavor = "multi_thread")]
async fn scenario_3_launch_gate_and_ami_on_unexpected_scale_in() {
    let _serial = common::serial().await;
    use aws_sdk_autoscaling::types::{LaunchTemplateSpecification, RefreshPreferences};
    use aws_sdk_elasticloadbalancingv2::types::ProtocolEnum;

    let h = Harness::manual().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let f = create_function(&h, "web-lifecycle", 900).await;
    rule_to(&h, "web", "web-", &[LAUNCH_EVENT, TERMINATE_EVENT], &f.arn).await;
    // The example as shipped, polling faster (the sandbox's clock runs 20x here).
    let text = example("lambda-ami-and-target-groups.toml", &[])
        .replace("interval = \"10s\"", "interval = \"200ms\"")
        .replace("interval = \"15s\"", "interval = \"200ms\"")
        .replace(
            "name = \"drain\"\n",
            "name = \"drain\"\ninterval = \"200ms\"\n",
        );
    assert_eq!(
        text.matches("200ms").count(),
        3,
        "the example changed: {text}"
    );
    let config = write_config(d, &text);
    let policy = enforce_printed_policy(&h, &config).await;
    let _rt = start_runtime_as_role(&h, &f, &config, &d.join("lambda.log"));
    let _tick = Ticker::start(h.endpoint());
    let tg = h
        .elbv2
        .create_target_group()
        .name("web")
        .protocol(ProtocolEnum::Http)
        .port(80)
        .vpc_id("vpc-0123456789abcdef0")
        .health_check_interval_seconds(5)
        .health_check_timeout_seconds(2)
        .healthy_threshold_count(2)
        .send()
        .await
        .expect("CreateTargetGroup")
        .target_groups()[0]
        .target_group_arn()
        .unwrap()
        .to_owned();
    h.elbv2
        .modify_target_group_attributes()
        .target_group_arn(&tg)
        .attributes(
            aws_sdk_elasticloadbalancingv2::types::TargetGroupAttribute::builder()
                .key("deregistration_delay.timeout_seconds")
                .value("10")
                .build(),
        )
        .send()
        .await
        .expect("ModifyTargetGroupAttributes");
    h.asg
        .create_auto_scaling_group()
        .auto_scaling_group_name("web-3")
        .min_size(0)
        .max_size(4)
        .desired_capacity(2)
        .launch_template(
            LaunchTemplateSpecification::builder()
                .launch_template_name("lt-web")
                .version("$Latest")
                .build(),
        )
        .availability_zones("us-east-1a")
        .target_group_arns(&tg)
        .lifecycle_hook_specification_list(hook("launch", LAUNCHING, 600, "ABANDON", None))
        .lifecycle_hook_specification_list(hook("terminate", TERMINATING, 600, "CONTINUE", None))
        .send()
        .await
        .expect("CreateAutoScalingGroup");
    let first = wait_for("both instances InService", common::patience(), || {
        all_in_state(&h, "web-3", 2, "InService")
    })
    .await;
    let healthy = |id: String| {
        let h = &h;
        let tg = tg.clone();
        async move {
            h.elbv2
                .describe_target_health()
                .target_group_arn(tg)
                .send()
                .await
                .unwrap()
                .target_health_descriptions()
                .iter()
                .any(|t| {
                    t.target().and_then(|t| t.id()) == Some(id.as_str())
                        && t.target_health()
                            .and_then(|x| x.state())
                            .is_some_and(|s| s.as_str() == "healthy")
                })
        }
    };
    for id in &first {
        assert!(
            healthy(id.clone()).await,
            "{id} InService only once healthy"
        );
        assert_eq!(
            resolutions(&h, id).await,
            vec![("CONTINUE".to_owned(), "completed".to_owned())],
            "{id}"
        );
    }
    let images = |id: String| {
        let h = &h;
        async move {
            h.ec2
                .describe_images()
                .owners("self")
                .filters(
                    aws_sdk_ec2::types::Filter::builder()
                        .name("tag:lifehook:instance-id")
                        .values(id)
                        .build(),
                )
                .send()
                .await
                .unwrap()
                .images()
                .to_vec()
        }
    };

    // A deployment: no AMI of the replaced instances.
    h.asg
        .start_instance_refresh()
        .auto_scaling_group_name("web-3")
        .preferences(
            RefreshPreferences::builder()
                .min_healthy_percentage(50)
                .instance_warmup(0)
                .build(),
        )
        .send()
        .await
        .expect("StartInstanceRefresh");
    let second = wait_for(
        "the refresh to replace both instances",
        common::patience(),
        || async {
            let now = all_in_state(&h, "web-3", 2, "InService").await?;
            now.iter().all(|id| !first.contains(id)).then_some(now)
        },
    )
    .await;
    for id in &first {
        assert!(
            images(id.clone()).await.is_empty(),
            "no AMI of {id} (refresh)"
        );
    }

    // An unexpected scale-in: an available AMI of the victim.
    h.asg
        .set_desired_capacity()
        .auto_scaling_group_name("web-3")
        .desired_capacity(1)
        .send()
        .await
        .unwrap();
    let victim = wait_for("the scale-in victim gone", common::patience(), || async {
        let now = instances(&h, "web-3").await;
        (now.len() == 1)
            .then(|| second.iter().find(|id| now[0].0 != **id).cloned())
            .flatten()
    })
    .await;
    let img = images(victim.clone()).await;
    assert_eq!(img.len(), 1, "one AMI of {victim}: {img:?}");
    assert_eq!(img[0].state().map(|s| s.as_str()), Some("available"));
    assert!(
        img[0]
            .tags()
            .iter()
            .any(|t| t.key() == Some("lifehook:group") && t.value() == Some("web-3")),
        "{img:?}"
    );
    assert_eq!(
        resolutions(&h, &victim).await.last(),
        Some(&("CONTINUE".to_owned(), "completed".to_owned()))
    );
    // Not deregistered-and-forgotten: the victim is no longer in the target group.
    assert!(!healthy(victim.clone()).await);
    // The printed Lambda policy was enough, and not more than the scenario needs (the
    // image's tags, applied at creation, are authorized as ec2:CreateTags).
    assert_policy_enough_and_no_more(
        &h,
        &policy,
        &[
            "autoscaling:RecordLifecycleActionHeartbeat",
            // The group deregisters its own instances before Terminating:Wait (spec
            // §2.7): this is for target groups the group does not know.
            "elasticloadbalancing:DeregisterTargets",
        ],
    )
    .await;
}
