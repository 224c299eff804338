//! The lifecycle notification payloads (spec §3.1–§3.4), as emitted by Auto Scaling and
//! as parsed by handlers. Field names and their order follow the real messages.

use serde::{Deserialize, Serialize};

use crate::transition::{Endpoint, LifecycleTransition};

/// `Service` in every Auto Scaling message.
pub const SERVICE: &str = "AWS Auto Scaling";
/// `Event` of the test notification (spec §3.2).
pub const TEST_NOTIFICATION_EVENT: &str = "autoscaling:TEST_NOTIFICATION";
/// EventBridge `source` of Auto Scaling events.
pub const EVENT_SOURCE: &str = "aws.autoscaling";

/// The lifecycle message: the direct SQS body and the SNS `Message` (spec §3.1).
///
/// Serialisation emits the modern key order of the real 2023 message, with
/// `NotificationMetadata` last (spec §7 item 8). Parsing accepts any order and ignores
/// unknown keys; `Origin`, `Destination` and `NotificationMetadata` are optional.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleMessage {
    #[serde(rename = "Origin", default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Endpoint>,
    #[serde(rename = "LifecycleHookName")]
    pub lifecycle_hook_name: String,
    #[serde(
        rename = "Destination",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub destination: Option<Endpoint>,
    #[serde(rename = "AccountId")]
    pub account_id: String,
    #[serde(rename = "RequestId")]
    pub request_id: String,
    #[serde(rename = "LifecycleTransition")]
    pub lifecycle_transition: LifecycleTransition,
    #[serde(rename = "AutoScalingGroupName")]
    pub auto_scaling_group_name: String,
    #[serde(rename = "Service")]
    pub service: String,
    #[serde(rename = "Time")]
    pub time: String,
    #[serde(rename = "EC2InstanceId")]
    pub ec2_instance_id: String,
    #[serde(rename = "LifecycleActionToken")]
    pub lifecycle_action_token: String,
    #[serde(
        rename = "NotificationMetadata",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub notification_metadata: Option<String>,
}

/// The test notification sent when a hook with a target is put (spec §3.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestNotification {
    #[serde(rename = "AccountId")]
    pub account_id: String,
    #[serde(rename = "RequestId")]
    pub request_id: String,
    #[serde(rename = "AutoScalingGroupARN")]
    pub auto_scaling_group_arn: String,
    #[serde(rename = "AutoScalingGroupName")]
    pub auto_scaling_group_name: String,
    #[serde(rename = "Service")]
    pub service: String,
    #[serde(rename = "Event")]
    pub event: String,
    #[serde(rename = "Time")]
    pub time: String,
}

/// The `detail` of an EventBridge lifecycle-action event (spec §3.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleEventDetail {
    #[serde(rename = "LifecycleActionToken")]
    pub lifecycle_action_token: String,
    #[serde(rename = "AutoScalingGroupName")]
    pub auto_scaling_group_name: String,
    #[serde(rename = "LifecycleHookName")]
    pub lifecycle_hook_name: String,
    #[serde(rename = "EC2InstanceId")]
    pub ec2_instance_id: String,
    #[serde(rename = "LifecycleTransition")]
    pub lifecycle_transition: LifecycleTransition,
    #[serde(
        rename = "NotificationMetadata",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub notification_metadata: Option<String>,
    #[serde(rename = "Origin", default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Endpoint>,
    #[serde(
        rename = "Destination",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub destination: Option<Endpoint>,
}

/// An EventBridge event envelope (spec §3.4), generic over its `detail`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventBridgeEvent<D> {
    pub version: String,
    pub id: String,
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    pub source: String,
    pub account: String,
    pub time: String,
    pub region: String,
    pub resources: Vec<String>,
    pub detail: D,
}

/// The SNS notification envelope (spec §3.3), as delivered to SQS with raw delivery off
/// and to HTTP/S subscribers. The Lambda form spells two keys differently
/// (`SigningCertUrl`, `UnsubscribeUrl`); both spellings are accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnsEnvelope {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "MessageId")]
    pub message_id: String,
    #[serde(rename = "TopicArn")]
    pub topic_arn: String,
    #[serde(rename = "Subject", default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(rename = "Message")]
    pub message: String,
    #[serde(rename = "Timestamp")]
    pub timestamp: String,
    #[serde(rename = "SignatureVersion")]
    pub signature_version: String,
    #[serde(rename = "Signature")]
    pub signature: String,
    #[serde(rename = "SigningCertURL", alias = "SigningCertUrl")]
    pub signing_cert_url: String,
    #[serde(rename = "UnsubscribeURL", alias = "UnsubscribeUrl")]
    pub unsubscribe_url: String,
    #[serde(
        rename = "MessageAttributes",
        default,
        skip_serializing_if = "serde_json::Map::is_empty"
    )]
    pub message_attributes: serde_json::Map<String, serde_json::Value>,
}

/// The SNS subject Auto Scaling uses for a lifecycle action (spec §3.3: two spaces after
/// the colon, a period at the end).
pub fn sns_subject_for_action(transition: LifecycleTransition, instance_id: &str) -> String {
    format!(
        "Auto Scaling:  Lifecycle action '{}' for instance {} in progress.",
        transition.short(),
        instance_id
    )
}

/// The SNS subject of the test notification (spec §3.2: one space after the colon).
pub fn sns_subject_for_test(group: &str) -> String {
    format!("Auto Scaling: test notification for group \"{group}\"")
}
