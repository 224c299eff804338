//! Fixtures of real payloads for every delivery path (spec §3), parsed and round-tripped.

// Tests unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use lifehook_model::delivery::{Delivery, DeliveryPath, parse_delivery};
use lifehook_model::message::{EventBridgeEvent, LifecycleEventDetail, SnsEnvelope};
use lifehook_model::{Endpoint, LifecycleMessage, LifecycleTransition, TestNotification};

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn action(name: &str) -> lifehook_model::LifecycleEvent {
    match parse_delivery(&fixture(name)).unwrap() {
        Delivery::Action(a) => a,
        other => panic!("{name}: expected an action, got {other:?}"),
    }
}

#[test]
fn direct_sqs_message_parses_and_round_trips_byte_for_byte() {
    let raw = fixture("direct-sqs-launch.json");
    let m: LifecycleMessage = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        serde_json::to_string(&m).unwrap(),
        raw.trim(),
        "key order of the real message"
    );
    let a = action("direct-sqs-launch.json");
    assert_eq!(a.instance_id, "i-0853dfa8ce1627af9");
    assert_eq!(a.token, "917070d0-a303-474b-a36c-a5e38a19de5e");
    assert_eq!(a.transition, LifecycleTransition::Launching);
    assert_eq!(a.origin, Some(Endpoint::EC2));
    assert_eq!(a.destination, Some(Endpoint::AutoScalingGroup));
    assert_eq!(a.path, DeliveryPath::Direct);
    assert_eq!(a.time.as_deref(), Some("2023-09-11T03:30:33.136Z"));
}

#[test]
fn test_notification_is_recognised_and_round_trips() {
    let raw = fixture("test-notification.json");
    let t: TestNotification = serde_json::from_str(&raw).unwrap();
    assert_eq!(serde_json::to_string(&t).unwrap(), raw.trim());
    assert_eq!(
        parse_delivery(&raw).unwrap(),
        Delivery::Test {
            group: "DenoTestStack-AutoscalingGroupASG25987EFB-1FXPOBZFMDQTL".into()
        }
    );
}

#[test]
fn sns_envelope_2014_without_origin() {
    let raw = fixture("sns-2014-terminate.json");
    let env: SnsEnvelope = serde_json::from_str(&raw).unwrap();
    let again: SnsEnvelope = serde_json::from_str(&serde_json::to_string(&env).unwrap()).unwrap();
    assert_eq!(env, again);
    let a = action("sns-2014-terminate.json");
    assert_eq!(a.path, DeliveryPath::Sns);
    assert_eq!(a.transition, LifecycleTransition::Terminating);
    assert_eq!(a.origin, None);
    assert_eq!(a.hook, "my-hook");
}

#[test]
fn sns_lambda_spelling_is_accepted() {
    let raw = fixture("sns-2014-terminate.json")
        .replace("SigningCertURL", "SigningCertUrl")
        .replace("UnsubscribeURL", "UnsubscribeUrl");
    let _: SnsEnvelope = serde_json::from_str(&raw).unwrap();
}

#[test]
fn eventbridge_event() {
    let raw = fixture("eventbridge-launch.json");
    let ev: EventBridgeEvent<LifecycleEventDetail> = serde_json::from_str(&raw).unwrap();
    let v1: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(serde_json::to_value(&ev).unwrap(), v1);
    let a = action("eventbridge-launch.json");
    assert_eq!(a.path, DeliveryPath::EventBridge);
    assert_eq!(a.metadata.as_deref(), Some("additional-info"));
    assert_eq!(a.account.as_deref(), Some("123456789012"));
}

#[test]
fn eventbridge_inside_sns_keeps_the_eventbridge_path() {
    let env = serde_json::json!({"Type":"Notification","MessageId":"m","TopicArn":"t",
        "Message": fixture("eventbridge-launch.json")});
    match parse_delivery(&env.to_string()).unwrap() {
        Delivery::Action(a) => assert_eq!(a.path, DeliveryPath::EventBridge),
        other => panic!("{other:?}"),
    }
}

#[test]
fn auto_scaling_group_notification_is_foreign() {
    assert!(matches!(
        parse_delivery(&fixture("asg-notification-launch.json")).unwrap(),
        Delivery::Foreign { .. }
    ));
}

#[test]
fn other_eventbridge_events_are_foreign() {
    let raw = fixture("eventbridge-launch.json").replace(
        "EC2 Instance-launch Lifecycle Action",
        "EC2 Instance Launch Successful",
    );
    assert!(matches!(
        parse_delivery(&raw).unwrap(),
        Delivery::Foreign { .. }
    ));
    let raw = fixture("eventbridge-launch.json").replace("aws.autoscaling", "aws.ec2");
    assert!(matches!(
        parse_delivery(&raw).unwrap(),
        Delivery::Foreign { .. }
    ));
}

#[test]
fn subscription_confirmation_is_foreign() {
    let env = serde_json::json!({"Type":"SubscriptionConfirmation","TopicArn":"t","Message":"confirm","Token":"x"});
    assert!(matches!(
        parse_delivery(&env.to_string()).unwrap(),
        Delivery::Foreign { .. }
    ));
}
