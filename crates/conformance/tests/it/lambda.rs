//! Lambda targets set up with the real SDK clients (EventBridge PutTargets, SNS Subscribe
//! with protocol `lambda`), served through the sandbox's Runtime API over plain HTTP.

use aws_sdk_eventbridge::types::{PutEventsRequestEntry, Target};
use lifehook_conformance::{Harness, eventually};
use lifehook_model::delivery::{Delivery, DeliveryPath, parse_delivery};
use serde_json::{Value, json};

const FN_ARN: &str = "arn:aws:lambda:us-east-1:000000000000:function:hooks";

/// Creates the function `hooks`; answers its Runtime API `host:port`.
async fn function(h: &Harness) -> String {
    let r = h
        .control_post(
            "lambda/functions",
            json!({"region": "us-east-1", "name": "hooks"}),
        )
        .await;
    assert!(r.status().is_success());
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["FunctionArn"], FN_ARN);
    v["runtime_api"].as_str().expect("runtime_api").to_owned()
}

/// `GET /2018-06-01/runtime/invocation/next`: (request id, payload).
async fn next(h: &Harness, api: &str) -> (String, Value) {
    let r = h
        .http()
        .get(format!("http://{api}/2018-06-01/runtime/invocation/next"))
        .send()
        .await
        .expect("next");
    assert_eq!(r.status(), 200);
    let id = r.headers()["lambda-runtime-aws-request-id"]
        .to_str()
        .expect("request id")
        .to_owned();
    assert_eq!(r.headers()["lambda-runtime-invoked-function-arn"], FN_ARN);
    (id, r.json().await.expect("payload"))
}

async fn respond(h: &Harness, api: &str, id: &str) {
    let r = h
        .http()
        .post(format!(
            "http://{api}/2018-06-01/runtime/invocation/{id}/response"
        ))
        .json(&json!({"handled": true}))
        .send()
        .await
        .expect("response");
    assert_eq!(r.status(), 202);
}

#[tokio::test]
async fn eventbridge_lambda_target_receives_the_event() {
    let h = Harness::manual().await;
    let api = function(&h).await;
    h.events
        .put_rule()
        .name("terminations")
        .event_pattern(r#"{"source":["aws.autoscaling"]}"#)
        .send()
        .await
        .expect("PutRule");
    let out = h
        .events
        .put_targets()
        .rule("terminations")
        .targets(
            Target::builder()
                .id("fn")
                .arn(FN_ARN)
                .build()
                .expect("target"),
        )
        .send()
        .await
        .expect("PutTargets");
    assert_eq!(out.failed_entry_count(), 0);
    h.events
        .put_events()
        .entries(
            PutEventsRequestEntry::builder()
                .source("aws.autoscaling")
                .detail_type("EC2 Instance-terminate Lifecycle Action")
                .detail(
                    json!({
                        "LifecycleActionToken": "87654321-4321-4321-4321-210987654321",
                        "AutoScalingGroupName": "web",
                        "LifecycleHookName": "drain",
                        "EC2InstanceId": "i-1234567890abcdef0",
                        "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
                    })
                    .to_string(),
                )
                .build(),
        )
        .send()
        .await
        .expect("PutEvents");

    let (id, event) = next(&h, &api).await;
    match parse_delivery(&event.to_string()).expect("parse") {
        Delivery::Action(a) => {
            assert_eq!(a.path, DeliveryPath::EventBridge);
            assert_eq!(a.group, "web");
        }
        other => panic!("{other:?}"),
    }
    respond(&h, &api, &id).await;
    let status = eventually("the invocation is recorded as succeeded", || async {
        let v = h.control_get("lambda/functions/hooks").await;
        let s = v["invocations"][0]["status"].as_str().map(str::to_owned);
        s.filter(|s| s == "succeeded")
    })
    .await;
    assert_eq!(status, "succeeded");
}

#[tokio::test]
async fn sns_lambda_subscription_receives_records() {
    let h = Harness::manual().await;
    let api = function(&h).await;
    let topic = h
        .sns
        .create_topic()
        .name("hooks")
        .send()
        .await
        .expect("CreateTopic")
        .topic_arn()
        .expect("arn")
        .to_owned();
    let sub = h
        .sns
        .subscribe()
        .topic_arn(&topic)
        .protocol("lambda")
        .endpoint(FN_ARN)
        .send()
        .await
        .expect("Subscribe")
        .subscription_arn()
        .expect("sub arn")
        .to_owned();
    h.sns
        .publish()
        .topic_arn(&topic)
        .subject("Auto Scaling:  Lifecycle action 'TERMINATING' for instance i-1 in progress.")
        .message(r#"{"LifecycleTransition":"autoscaling:EC2_INSTANCE_TERMINATING"}"#)
        .send()
        .await
        .expect("Publish");

    let (id, event) = next(&h, &api).await;
    let rec = &event["Records"][0];
    assert_eq!(rec["EventSource"], "aws:sns");
    assert_eq!(rec["EventSubscriptionArn"], sub.as_str());
    assert_eq!(rec["Sns"]["TopicArn"], topic.as_str());
    assert_eq!(
        rec["Sns"]["Message"],
        r#"{"LifecycleTransition":"autoscaling:EC2_INSTANCE_TERMINATING"}"#
    );
    assert!(rec["Sns"]["UnsubscribeUrl"].is_string());
    respond(&h, &api, &id).await;
}
