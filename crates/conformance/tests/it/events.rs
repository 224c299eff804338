//! EventBridge through aws-sdk-eventbridge, routing to SQS.

use aws_sdk_eventbridge::types::{PutEventsRequestEntry, RuleState, Target};
use lifehook_conformance::Harness;
use lifehook_model::delivery::{Delivery, DeliveryPath, parse_delivery};

#[tokio::test]
async fn rule_routes_matching_events_to_sqs() {
    let h = Harness::manual().await;
    let url = h
        .sqs
        .create_queue()
        .queue_name("events")
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned();
    let pattern = r#"{"source":["aws.autoscaling"],"detail-type":["EC2 Instance-terminate Lifecycle Action"],"detail":{"AutoScalingGroupName":["web"]}}"#;
    let rule = h
        .events
        .put_rule()
        .name("terminations")
        .event_pattern(pattern)
        .send()
        .await
        .unwrap();
    assert_eq!(
        rule.rule_arn(),
        Some("arn:aws:events:us-east-1:000000000000:rule/terminations")
    );
    let out = h
        .events
        .put_targets()
        .rule("terminations")
        .targets(
            Target::builder()
                .id("q")
                .arn("arn:aws:sqs:us-east-1:000000000000:events")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(out.failed_entry_count(), 0);

    let entry = |group: &str, detail_type: &str| {
        PutEventsRequestEntry::builder()
            .source("aws.autoscaling")
            .detail_type(detail_type)
            .resources("arn:aws:autoscaling:us-east-1:000000000000:autoScalingGroup:x:autoScalingGroupName/web")
            .detail(
                serde_json::json!({
                    "LifecycleActionToken": "87654321-4321-4321-4321-210987654321",
                    "AutoScalingGroupName": group,
                    "LifecycleHookName": "drain",
                    "EC2InstanceId": "i-1234567890abcdef0",
                    "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
                })
                .to_string(),
            )
            .build()
    };
    let put = h
        .events
        .put_events()
        .entries(entry("web", "EC2 Instance-terminate Lifecycle Action"))
        .entries(entry("other", "EC2 Instance-terminate Lifecycle Action"))
        .entries(entry("web", "EC2 Instance-launch Lifecycle Action"))
        .send()
        .await
        .unwrap();
    assert_eq!(put.failed_entry_count(), 0);
    assert_eq!(put.entries().len(), 3);
    assert!(put.entries().iter().all(|e| e.event_id().is_some()));

    let msgs = h
        .sqs
        .receive_message()
        .queue_url(&url)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    assert_eq!(
        msgs.messages().len(),
        1,
        "only the matching event is delivered"
    );
    let body = msgs.messages()[0].body().unwrap();
    assert!(
        body.starts_with(r#"{"version":"0","id":"#),
        "keys in AWS order: {body}"
    );
    let event: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(event["source"], "aws.autoscaling");
    assert_eq!(event["account"], "000000000000");
    assert_eq!(event["region"], "us-east-1");
    assert_eq!(event["id"], put.entries()[0].event_id().unwrap());
    match parse_delivery(body).unwrap() {
        Delivery::Action(a) => {
            assert_eq!(a.path, DeliveryPath::EventBridge);
            assert_eq!(a.group, "web");
        }
        other => panic!("{other:?}"),
    }

    // Disabled rules deliver nothing.
    h.events
        .disable_rule()
        .name("terminations")
        .send()
        .await
        .unwrap();
    let d = h
        .events
        .describe_rule()
        .name("terminations")
        .send()
        .await
        .unwrap();
    assert_eq!(d.state(), Some(&RuleState::Disabled));
    assert_eq!(d.event_pattern(), Some(pattern));
    h.events
        .put_events()
        .entries(entry("web", "EC2 Instance-terminate Lifecycle Action"))
        .send()
        .await
        .unwrap();
    h.advance(60.0).await;
    let msgs = h
        .sqs
        .receive_message()
        .queue_url(&url)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    assert_eq!(msgs.messages().len(), 1, "only the redelivered first event");

    // A rule with targets cannot be deleted.
    let err = h.events.delete_rule().name("terminations").send().await;
    assert!(err.is_err());
    let listed = h
        .events
        .list_targets_by_rule()
        .rule("terminations")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.targets().len(), 1);
    h.events
        .remove_targets()
        .rule("terminations")
        .ids("q")
        .send()
        .await
        .unwrap();
    h.events
        .delete_rule()
        .name("terminations")
        .send()
        .await
        .unwrap();
    let rules = h.events.list_rules().send().await.unwrap();
    assert!(rules.rules().is_empty());
}

#[tokio::test]
async fn invalid_patterns_and_missing_rules() {
    let h = Harness::manual().await;
    let err = h
        .events
        .put_rule()
        .name("bad")
        .event_pattern(r#"{"source":"not-an-array"}"#)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_invalid_event_pattern_exception(), "{err:?}");
    let err = h
        .events
        .describe_rule()
        .name("nope")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_resource_not_found_exception(), "{err:?}");
    let err = h
        .events
        .put_rule()
        .name("cron")
        .schedule_expression("rate(5 minutes)")
        .send()
        .await;
    assert!(err.is_err(), "scheduled rules are refused");
}
