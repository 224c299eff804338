//! `lifehook-aws` against the sandbox with the real SDK over loopback: the queue consumer,
//! the lifecycle API (completion, classification, the hook cache), identity discovery and
//! the retries of transient failures. Time moves only through the sandbox's virtual
//! clock; waits are bounded polls.

// Tests unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use aws_sdk_autoscaling::types::LifecycleHookSpecification;
use lifehook_aws::Clients;
use lifehook_aws::lifecycle::{ActionTarget, LifecycleApi};
use lifehook_aws::queue::{QueueConfig, QueueConsumer};
use lifehook_conformance::{
    Harness, create_group, create_queue, eventually, queue_len, waiting_instance,
};
use lifehook_model::LifecycleResult;

const LAUNCHING: &str = "autoscaling:EC2_INSTANCE_LAUNCHING";

/// A launch hook with no notification target.
fn hook(name: &str, hb: i32) -> LifecycleHookSpecification {
    LifecycleHookSpecification::builder()
        .lifecycle_hook_name(name)
        .lifecycle_transition(LAUNCHING)
        .heartbeat_timeout(hb)
        .default_result("ABANDON")
        .build()
}

fn lifecycle_body(token: &str, instance: &str) -> String {
    serde_json::json!({
        "Origin": "EC2", "LifecycleHookName": "launch", "Destination": "AutoScalingGroup",
        "AccountId": "000000000000", "RequestId": "r",
        "LifecycleTransition": LAUNCHING, "AutoScalingGroupName": "web",
        "Service": "AWS Auto Scaling", "Time": "2026-01-01T00:00:00.000Z",
        "EC2InstanceId": instance, "LifecycleActionToken": token,
    })
    .to_string()
}

fn consumer(h: &Harness, url: &str) -> QueueConsumer {
    let clients = Clients::from_sdk_config(h.sdk.clone()).expect("clients");
    let mut cfg = QueueConfig::new(url);
    cfg.wait_time = Duration::from_secs(1);
    // Short enough that a held message reappears within the test's 90 s on the manual
    // clock.
    cfg.visibility_timeout = Duration::from_secs(60);
    QueueConsumer::new(clients.sqs().clone(), cfg)
}

#[tokio::test(flavor = "multi_thread")]
async fn queue_consumer_sorts_actions_tests_and_poison() {
    let h = Harness::manual().await;
    let dlq = create_queue(&h, "lifecycle-dlq", None).await;
    let url = create_queue(
        &h,
        "lifecycle",
        Some("arn:aws:sqs:us-east-1:000000000000:lifecycle-dlq"),
    )
    .await;
    let send = |body: String| {
        let sqs = h.sqs.clone();
        let url = url.clone();
        async move {
            sqs.send_message()
                .queue_url(url)
                .message_body(body)
                .send()
                .await
                .expect("SendMessage");
        }
    };
    send(lifecycle_body("tok-1", "i-1")).await;
    send(lifecycle_body("tok-1", "i-1")).await; // a duplicate delivery of the same action
    send(serde_json::json!({"Event": "autoscaling:TEST_NOTIFICATION", "AutoScalingGroupName": "web"}).to_string()).await;
    send("not json at all".to_owned()).await;
    send(serde_json::json!({"hello": "world"}).to_string()).await;

    let c = consumer(&h, &url);
    let mut held = Vec::new();
    for _ in 0..5 {
        held.extend(c.next_batch().await.expect("receive"));
        if queue_len(&h, &url).await == (0, held.len() as u64) {
            break;
        }
    }
    assert_eq!(held.len(), 1, "one action, the duplicate suppressed");
    assert_eq!(held[0].event.token, "tok-1");
    assert_eq!(c.in_flight(), 1);
    // The poison went to the dead-letter queue; the test notification and the duplicate
    // were deleted; only the held action is left, invisible.
    assert_eq!(queue_len(&h, &dlq).await, (2, 0));
    assert_eq!(queue_len(&h, &url).await, (0, 1));

    // Visibility is extended on real time; on the manual virtual clock the message
    // reappears after its timeout. The redelivery of a held message is not handed out
    // again: it only refreshes the receipt handle the held copy uses.
    h.advance(90.0).await;
    let first_receipt = held[0].receipt_handle();
    let again = c.next_batch().await.expect("receive");
    assert!(again.is_empty(), "a held message was handed out twice");
    assert_ne!(held[0].receipt_handle(), first_receipt);

    let msg = held.pop().expect("held");
    c.ack(msg).await.expect("ack");
    assert_eq!(c.in_flight(), 0);
    assert_eq!(queue_len(&h, &url).await, (0, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn queue_consumer_hands_back_on_shutdown() {
    let h = Harness::manual().await;
    let url = create_queue(&h, "lifecycle", None).await;
    h.sqs
        .send_message()
        .queue_url(&url)
        .message_body(lifecycle_body("tok-2", "i-2"))
        .send()
        .await
        .expect("SendMessage");
    let c = consumer(&h, &url);
    let msg = eventually("the action is received", || async {
        c.next_batch().await.expect("receive").pop()
    })
    .await;
    c.hand_back(msg).await.expect("hand back");
    assert_eq!(c.in_flight(), 0);
    let again = eventually("the action is received again", || async {
        c.next_batch().await.expect("receive").pop()
    })
    .await;
    assert_eq!(again.event.token, "tok-2");
    assert!(
        again.receive_count >= 2,
        "receive count {}",
        again.receive_count
    );
    // A poison message without a dead-letter queue is deleted with a log line.
    h.sqs
        .send_message()
        .queue_url(&url)
        .message_body("{")
        .send()
        .await
        .expect("SendMessage");
    let none = c.next_batch().await.expect("receive");
    assert!(none.is_empty());
    assert_eq!(queue_len(&h, &url).await, (0, 1));
}

#[tokio::test(flavor = "multi_thread")]
async fn lifecycle_api_completes_and_classifies_against_the_sandbox() {
    let h = Harness::manual().await;
    create_group(&h, "web", 1, vec![hook("launch", 60)]).await;
    let id = waiting_instance(&h, "web").await;
    let clients = Clients::from_sdk_config(h.sdk.clone()).expect("clients");
    let api = LifecycleApi::new(clients.autoscaling().clone());
    let info = api.hook("web", "launch").await.expect("hook");
    assert_eq!(info.heartbeat_timeout, Duration::from_secs(60));
    assert_eq!(info.global_timeout, Duration::from_secs(6000));
    assert_eq!(info.default_result, LifecycleResult::Abandon);
    let waiting = api.waiting_instances(&[]).await.expect("waiting");
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].instance_id, id);
    let target = ActionTarget::new(
        "web",
        "launch",
        lifehook_aws::ActionKey::InstanceId(id.clone()),
    );
    api.heartbeat(&target).await.expect("heartbeat");
    api.complete(&target, LifecycleResult::Continue)
        .await
        .expect("complete");
    let err = api
        .complete(&target, LifecycleResult::Continue)
        .await
        .unwrap_err();
    assert!(err.is_already_resolved(), "{err}");
    let err = api.hook("web", "nope").await.unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
}

/// Regression: a burst of actions of a hook not yet cached sent one
/// `DescribeLifecycleHooks` per action; now the first describes and the rest wait for it.
#[tokio::test(flavor = "multi_thread")]
async fn a_cold_hook_cache_describes_once_for_a_burst() {
    let h = Harness::manual().await;
    create_group(&h, "web", 1, vec![hook("launch", 60)]).await;
    let describes = || async {
        h.control_get("stats").await["requests"]["autoscaling"]["DescribeLifecycleHooks"]
            .as_u64()
            .unwrap_or(0)
    };
    let before = describes().await;
    let clients = Clients::from_sdk_config(h.sdk.clone()).expect("clients");
    let api = LifecycleApi::new(clients.autoscaling().clone());
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let api = api.clone();
        burst.spawn(async move { api.hook("web", "launch").await });
    }
    while let Some(r) = burst.join_next().await {
        let info = r.expect("task").expect("hook");
        assert_eq!(info.heartbeat_timeout, Duration::from_secs(60));
    }
    assert_eq!(describes().await - before, 1);
    // A hook that does not exist is still reported as such to every caller.
    let e = api.hook("web", "nope").await.unwrap_err();
    assert!(e.to_string().contains("nope"), "{e}");
}

/// A minimal IMDSv2 on loopback: the token PUT (with its TTL header) and a few items; any
/// other path is 404. Each connection serves one request.
async fn fake_imds(items: Vec<(&'static str, String)>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let items = items.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).into_owned();
                let mut parts = head.split_whitespace();
                let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                let (status, body) = if method == "PUT" && path == "/latest/api/token" {
                    ("200 OK", "fake-token".to_owned())
                } else if let Some((_, v)) = items.iter().find(|(p, _)| *p == path) {
                    ("200 OK", v.clone())
                } else {
                    ("404 Not Found", String::new())
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nX-aws-ec2-metadata-token-ttl-seconds: 21600\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
                let _ = s.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread")]
async fn identity_falls_back_to_auto_scaling_for_the_group() {
    use lifehook_aws::identity::{GroupSource, Imds, discover, paths};

    let h = Harness::manual().await;
    create_group(&h, "web", 1, vec![hook("launch", 300)]).await;
    let id = waiting_instance(&h, "web").await;
    let clients = Clients::from_sdk_config(h.sdk.clone()).expect("clients");

    // Metadata tags disabled (404 on the tag): the group comes from Auto Scaling.
    let imds = Imds::with_endpoint(
        &fake_imds(vec![
            (paths::INSTANCE_ID, id.clone()),
            (paths::REGION, "us-east-1".into()),
            (paths::TARGET_LIFECYCLE_STATE, "InService".into()),
        ])
        .await,
    )
    .expect("imds");
    let me = discover(&imds, clients.autoscaling())
        .await
        .expect("discover");
    assert_eq!(me.instance_id, id);
    assert_eq!(me.region, "us-east-1");
    assert_eq!(me.group, Some(("web".to_owned(), GroupSource::AutoScaling)));
    assert_eq!(me.target_lifecycle_state.as_deref(), Some("InService"));

    // With the tag, and no target state yet (404 → None).
    let imds = Imds::with_endpoint(
        &fake_imds(vec![
            (paths::INSTANCE_ID, "i-0000000000000000a".into()),
            (paths::REGION, "us-east-1".into()),
            (paths::GROUP_TAG, "tagged".into()),
        ])
        .await,
    )
    .expect("imds");
    let me = discover(&imds, clients.autoscaling())
        .await
        .expect("discover");
    assert_eq!(
        me.group,
        Some(("tagged".to_owned(), GroupSource::MetadataTag))
    );
    assert_eq!(me.target_lifecycle_state, None);

    // An instance in no group.
    let imds = Imds::with_endpoint(
        &fake_imds(vec![
            (paths::INSTANCE_ID, "i-0000000000000000b".into()),
            (paths::REGION, "us-east-1".into()),
        ])
        .await,
    )
    .expect("imds");
    let me = discover(&imds, clients.autoscaling())
        .await
        .expect("discover");
    assert_eq!(me.group, None);
}

/// Throttling and server errors are retried (the SDK's attempts, then bounded extra
/// rounds) and reported as transient when they persist.
#[tokio::test(flavor = "multi_thread")]
async fn transient_failures_are_retried_then_reported() {
    use lifehook_aws::lifecycle::{ErrorClass, RetryPolicy};

    let h = Harness::manual().await;
    create_group(&h, "web", 1, vec![hook("launch", 300)]).await;
    let id = waiting_instance(&h, "web").await;
    // The SDK's own backoff, shortened: the test is about the classification and the rounds.
    let sdk = h
        .sdk
        .to_builder()
        .retry_config(
            aws_sdk_autoscaling::config::retry::RetryConfig::standard()
                .with_initial_backoff(Duration::from_millis(5))
                .with_max_backoff(Duration::from_millis(20)),
        )
        .build();
    let clients = Clients::from_sdk_config(sdk).expect("clients");
    let api = LifecycleApi::new(clients.autoscaling().clone()).with_retry(RetryPolicy {
        extra_attempts: 2,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
    });
    let target = ActionTarget::new(
        "web",
        "launch",
        lifehook_aws::ActionKey::InstanceId(id.clone()),
    );

    // Four throttles: more than the SDK's three attempts, fewer than ours on top.
    let r = h
        .control_post(
            "faults",
            serde_json::json!({"rules": [{"service": "autoscaling",
                "operation": "RecordLifecycleActionHeartbeat", "kind": "throttle", "count": 4}]}),
        )
        .await;
    assert!(
        r.status().is_success(),
        "{}",
        r.text().await.unwrap_or_default()
    );
    api.heartbeat(&target)
        .await
        .expect("heartbeat after throttling");

    // Persistent server errors: transient, with the code, after the extra rounds.
    let r = h
        .control_post(
            "faults",
            serde_json::json!({"rules": [{"service": "autoscaling",
                "operation": "CompleteLifecycleAction", "kind": "server-error"}]}),
        )
        .await;
    assert!(
        r.status().is_success(),
        "{}",
        r.text().await.unwrap_or_default()
    );
    let err = api
        .complete(&target, LifecycleResult::Continue)
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Retryable, "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("after 3 attempts") && msg.contains(&id),
        "{msg}"
    );
}
