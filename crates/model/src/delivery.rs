//! Turning any delivered payload into a lifecycle event: the parse algorithm of spec §3.8.
//!
//! A handler may receive the direct lifecycle message (SQS target, SNS raw delivery), an SNS
//! envelope whose `Message` is that JSON, or an EventBridge event — possibly an EventBridge
//! event carried inside an SNS envelope. Test notifications and foreign messages are told
//! apart from malformed ones, so that the caller can acknowledge, set aside or log each.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::message::{
    EVENT_SOURCE, LifecycleEventDetail, LifecycleMessage, TEST_NOTIFICATION_EVENT,
};
use crate::transition::{Endpoint, LifecycleTransition};

/// How deep envelopes may nest before a payload is rejected (SNS in SNS in ...).
const MAX_ENVELOPE_DEPTH: usize = 4;

/// The path a lifecycle event arrived by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeliveryPath {
    /// The lifecycle message itself (hook → SQS, or SNS with raw delivery).
    Direct,
    /// The lifecycle message inside an SNS envelope.
    Sns,
    /// An EventBridge event (possibly inside an SNS envelope).
    EventBridge,
}

/// One lifecycle action as a handler sees it, whatever the path it came by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleEvent {
    pub group: String,
    pub hook: String,
    pub instance_id: String,
    pub transition: LifecycleTransition,
    pub token: String,
    pub origin: Option<Endpoint>,
    pub destination: Option<Endpoint>,
    /// `NotificationMetadata`, verbatim.
    pub metadata: Option<String>,
    /// When the action started, as the message says (ISO-8601), where known.
    pub time: Option<String>,
    pub account: Option<String>,
    pub request_id: Option<String>,
    pub path: DeliveryPath,
}

/// What a payload turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// A lifecycle action to handle.
    Action(LifecycleEvent),
    /// `autoscaling:TEST_NOTIFICATION` for this group: acknowledge and delete.
    Test { group: String },
    /// Well-formed, but not a lifecycle action (an Auto Scaling notification, another
    /// EventBridge event, an SNS subscription confirmation ...): set aside with a log line.
    Foreign { reason: String },
}

/// A payload that cannot be understood at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    #[error("message body is not JSON: {0}")]
    NotJson(String),
    #[error("message is not a valid {what}: {reason}")]
    Malformed { what: &'static str, reason: String },
    #[error("envelopes nest more than {MAX_ENVELOPE_DEPTH} deep")]
    TooDeep,
}

/// Parses one delivered payload (an SQS body, an SNS `Message`, an EventBridge event).
pub fn parse_delivery(body: &str) -> Result<Delivery, DeliveryError> {
    let v: Value = serde_json::from_str(body).map_err(|e| DeliveryError::NotJson(e.to_string()))?;
    parse_value(&v, DeliveryPath::Direct, 0)
}

/// Parses an already-decoded JSON payload.
pub fn parse_delivery_value(v: &Value) -> Result<Delivery, DeliveryError> {
    parse_value(v, DeliveryPath::Direct, 0)
}

fn parse_value(v: &Value, outer: DeliveryPath, depth: usize) -> Result<Delivery, DeliveryError> {
    if depth > MAX_ENVELOPE_DEPTH {
        return Err(DeliveryError::TooDeep);
    }
    let Some(obj) = v.as_object() else {
        return Ok(Delivery::Foreign {
            reason: "message is JSON but not an object".into(),
        });
    };
    let s = |k: &str| obj.get(k).and_then(Value::as_str);

    // EventBridge event.
    if let Some(detail_type) = s("detail-type") {
        if s("source") != Some(EVENT_SOURCE) {
            return Ok(Delivery::Foreign {
                reason: format!(
                    "EventBridge event from source {:?}",
                    s("source").unwrap_or("")
                ),
            });
        }
        if LifecycleTransition::from_detail_type(detail_type).is_none() {
            return Ok(Delivery::Foreign {
                reason: format!("EventBridge event {detail_type:?} is not a lifecycle action"),
            });
        }
        let detail = obj.get("detail").cloned().unwrap_or(Value::Null);
        let d: LifecycleEventDetail =
            serde_json::from_value(detail).map_err(|e| DeliveryError::Malformed {
                what: "EventBridge lifecycle event detail",
                reason: e.to_string(),
            })?;
        return Ok(Delivery::Action(LifecycleEvent {
            group: d.auto_scaling_group_name,
            hook: d.lifecycle_hook_name,
            instance_id: d.ec2_instance_id,
            transition: d.lifecycle_transition,
            token: d.lifecycle_action_token,
            origin: d.origin,
            destination: d.destination,
            metadata: d.notification_metadata,
            time: s("time").map(str::to_owned),
            account: s("account").map(str::to_owned),
            request_id: None,
            path: DeliveryPath::EventBridge,
        }));
    }

    // SNS envelope.
    if let Some(kind) = s("Type")
        && (obj.contains_key("TopicArn") || obj.contains_key("Message"))
    {
        return match kind {
            "Notification" => {
                let inner = s("Message").ok_or(DeliveryError::Malformed {
                    what: "SNS notification",
                    reason: "`Message` is missing or not a string".into(),
                })?;
                let inner: Value = serde_json::from_str(inner)
                    .map_err(|e| DeliveryError::NotJson(format!("SNS Message: {e}")))?;
                let next = if outer == DeliveryPath::Direct {
                    DeliveryPath::Sns
                } else {
                    outer
                };
                parse_value(&inner, next, depth + 1)
            }
            other => Ok(Delivery::Foreign {
                reason: format!("SNS message of type {other}"),
            }),
        };
    }

    // Auto Scaling's own messages: the test notification, group notifications.
    if let Some(event) = s("Event") {
        if event == TEST_NOTIFICATION_EVENT {
            return Ok(Delivery::Test {
                group: s("AutoScalingGroupName").unwrap_or_default().to_owned(),
            });
        }
        if !obj.contains_key("LifecycleActionToken") {
            return Ok(Delivery::Foreign {
                reason: format!("Auto Scaling notification {event}, not a lifecycle action"),
            });
        }
    }
    if s("LifecycleTransition") == Some(TEST_NOTIFICATION_EVENT) {
        return Ok(Delivery::Test {
            group: s("AutoScalingGroupName").unwrap_or_default().to_owned(),
        });
    }

    if obj.contains_key("LifecycleActionToken") || obj.contains_key("LifecycleTransition") {
        let m: LifecycleMessage =
            serde_json::from_value(v.clone()).map_err(|e| DeliveryError::Malformed {
                what: "lifecycle message",
                reason: e.to_string(),
            })?;
        return Ok(Delivery::Action(LifecycleEvent {
            group: m.auto_scaling_group_name,
            hook: m.lifecycle_hook_name,
            instance_id: m.ec2_instance_id,
            transition: m.lifecycle_transition,
            token: m.lifecycle_action_token,
            origin: m.origin,
            destination: m.destination,
            metadata: m.notification_metadata,
            time: Some(m.time),
            account: Some(m.account_id),
            request_id: Some(m.request_id),
            path: outer,
        }));
    }

    Ok(Delivery::Foreign {
        reason: "JSON object is not a lifecycle message".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_json_is_an_error() {
        assert!(matches!(
            parse_delivery("hello"),
            Err(DeliveryError::NotJson(_))
        ));
        assert!(matches!(
            parse_delivery("{\"LifecycleActionToken\":"),
            Err(DeliveryError::NotJson(_))
        ));
    }

    #[test]
    fn foreign_object() {
        assert!(matches!(
            parse_delivery("{\"a\":1}"),
            Ok(Delivery::Foreign { .. })
        ));
        assert!(matches!(
            parse_delivery("[1,2]"),
            Ok(Delivery::Foreign { .. })
        ));
    }

    #[test]
    fn missing_field_is_malformed() {
        let r = parse_delivery(
            r#"{"LifecycleActionToken":"t","LifecycleTransition":"autoscaling:EC2_INSTANCE_LAUNCHING"}"#,
        );
        assert!(matches!(r, Err(DeliveryError::Malformed { .. })), "{r:?}");
    }

    #[test]
    fn nesting_is_bounded() {
        let mut body = r#"{"a":1}"#.to_string();
        for _ in 0..10 {
            let env = serde_json::json!({"Type":"Notification","TopicArn":"t","Message": body});
            body = env.to_string();
        }
        assert_eq!(parse_delivery(&body), Err(DeliveryError::TooDeep));
    }
}
