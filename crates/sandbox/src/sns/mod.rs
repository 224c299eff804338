//! SNS in the sandbox (AWS Query, 2010-03-31): topics, SQS subscriptions with raw delivery
//! and filter policies, and `Publish` delivering the notification envelope of spec §3.3.
//!
//! HTTP/S, email and SMS subscriptions are refused; `lambda` subscriptions are stored but
//! nothing is invoked.
//!
//! Layout: this file holds topics, subscriptions and publishing (shared with Auto Scaling
//! and EventBridge); `ops.rs` the operations and `handle`. SNS has no control routes.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::events::pattern;
use crate::protocol::RequestCtx;
use crate::protocol::{AwsError, Params, Service, XmlWriter};
use crate::sqs::{self, MessageAttr};
use crate::world::{DeliveryError, World};
use crate::{ACCOUNT_ID, clock, ids};

mod ops;
#[cfg(test)]
mod tests;

pub(crate) use ops::run;

/// Largest message, bytes.
pub(crate) const MAX_MESSAGE_BYTES: usize = 262_144;
/// Topics per page of ListTopics, subscriptions per page of ListSubscriptions.
const PAGE: usize = 100;

/// SNS state of one region.
#[derive(Debug, Default)]
pub(crate) struct State {
    topics: BTreeMap<String, Topic>,
    /// By subscription ARN.
    subscriptions: BTreeMap<String, Subscription>,
}

#[derive(Debug)]
struct Topic {
    arn: String,
    attrs: BTreeMap<String, String>,
    tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
struct Subscription {
    arn: String,
    topic_arn: String,
    protocol: String,
    endpoint: String,
    attrs: BTreeMap<String, String>,
}

impl Subscription {
    fn raw(&self) -> bool {
        self.attrs
            .get("RawMessageDelivery")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }
}

fn not_found(what: &str) -> AwsError {
    AwsError::new(404, "NotFound", format!("{what} does not exist"))
}

fn invalid(message: impl Into<String>) -> AwsError {
    AwsError::new(
        400,
        "InvalidParameter",
        format!("Invalid parameter: {}", message.into()),
    )
}

fn topic_arn(region: &str, name: &str) -> String {
    format!("arn:aws:sns:{region}:{ACCOUNT_ID}:{name}")
}

/// (region, name) of `arn:aws:sns:<region>:<account>:<name>`.
fn parse_topic_arn(arn: &str) -> Option<(&str, &str)> {
    ids::split_arn(arn, "sns").filter(|(_, name)| !name.is_empty() && !name.contains(':'))
}

fn validate_filter_policy(v: &str, message_body: bool) -> Result<(), AwsError> {
    serde_json::from_str::<Value>(v)
        .map_err(|e| invalid(format!("FilterPolicy: failed to parse JSON. {e}")))?;
    pattern::check_filter_policy(v, message_body).map_err(invalid)
}

/// `message_body`: whether the subscription's FilterPolicyScope is (or becomes) MessageBody.
fn validate_sub_attr(k: &str, v: &str, message_body: bool) -> Result<(), AwsError> {
    match k {
        "RawMessageDelivery" => {
            if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") {
                return Err(invalid("RawMessageDelivery: must be true or false"));
            }
        }
        "FilterPolicy" => {
            if !v.is_empty() {
                validate_filter_policy(v, message_body)?;
            }
        }
        "FilterPolicyScope" => {
            if v != "MessageAttributes" && v != "MessageBody" {
                return Err(invalid(format!(
                    "FilterPolicyScope: Invalid value [{v}]. Please use either MessageBody or MessageAttributes"
                )));
            }
        }
        "RedrivePolicy" | "DeliveryPolicy" | "SubscriptionRoleArn" | "ReplayPolicy" => {}
        other => {
            return Err(invalid(format!("AttributeName: unknown attribute {other}")));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Publishing (shared with Auto Scaling and EventBridge)
// ---------------------------------------------------------------------------------------

/// Publishes to the topic whose ARN is `topic_arn`, delivering to its subscriptions
/// (SQS: the envelope of spec §3.3, or the raw message with raw delivery).
pub(crate) fn publish_by_arn(
    world: &mut World,
    region: &str,
    topic_arn: &str,
    subject: Option<&str>,
    message: &str,
) -> Result<String, DeliveryError> {
    publish(
        world,
        region,
        topic_arn,
        subject,
        message,
        &BTreeMap::new(),
        None,
    )
}

/// The message attributes as a filter policy sees them (MessageAttributes scope).
fn attrs_for_filter(attrs: &BTreeMap<String, MessageAttr>) -> Value {
    let mut m = Map::new();
    for (k, a) in attrs {
        let v = match (a.data_type.as_str(), &a.string_value) {
            (t, Some(s)) if t.starts_with("Number") => s
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .unwrap_or_else(|| json!(s)),
            ("String.Array", Some(s)) => serde_json::from_str::<Value>(s)
                .ok()
                .filter(Value::is_array)
                .unwrap_or_else(|| json!(s)),
            (_, Some(s)) => json!(s),
            // Binary attributes are not matched by filter policies.
            (_, None) => continue,
        };
        m.insert(k.clone(), v);
    }
    Value::Object(m)
}

fn passes_filter(sub: &Subscription, message: &str, attrs: &BTreeMap<String, MessageAttr>) -> bool {
    let Some(policy) = sub.attrs.get("FilterPolicy").filter(|p| !p.is_empty()) else {
        return true;
    };
    let Ok(policy) = serde_json::from_str::<Value>(policy) else {
        return false;
    };
    let target = if sub.attrs.get("FilterPolicyScope").map(String::as_str) == Some("MessageBody") {
        match serde_json::from_str::<Value>(message) {
            Ok(v) => v,
            Err(_) => return false,
        }
    } else {
        attrs_for_filter(attrs)
    };
    pattern::matches(&policy, &target)
}

/// The host URLs in envelopes point at: the sandbox itself when known.
fn envelope_base(host: Option<&str>, region: &str) -> String {
    match host {
        Some(h) => format!("http://{h}"),
        None => format!("https://sns.{region}.amazonaws.com"),
    }
}

fn publish(
    world: &mut World,
    region: &str,
    topic_arn: &str,
    subject: Option<&str>,
    message: &str,
    attrs: &BTreeMap<String, MessageAttr>,
    host: Option<&str>,
) -> Result<String, DeliveryError> {
    let (region, _) = crate::world::delivery_target(region, topic_arn, parse_topic_arn)?;
    let sns = &world.region(region).sns;
    if !sns.topics.contains_key(topic_arn) {
        return Err(DeliveryError::NoSuchTarget(topic_arn.to_owned()));
    }
    let subs: Vec<Subscription> = sns
        .subscriptions
        .values()
        .filter(|s| s.topic_arn == topic_arn)
        .cloned()
        .collect();
    let message_id = ids::uuid();
    let timestamp = clock::iso_millis(world.now);
    let base = envelope_base(host, region);
    for sub in subs {
        if !matches!(sub.protocol.as_str(), "sqs" | "lambda")
            || !passes_filter(&sub, message, attrs)
        {
            continue;
        }
        // Raw delivery applies to SQS only; a function always gets the Records event (§3.5).
        let result = if sub.raw() && sub.protocol == "sqs" {
            sqs::send_by_arn_with_attrs(world, region, &sub.endpoint, message, attrs.clone())
        } else {
            let mut mattrs = Map::new();
            for (k, a) in attrs {
                let value = match (&a.string_value, &a.binary_value) {
                    (Some(s), _) => s.clone(),
                    (None, Some(b)) => base64::engine::general_purpose::STANDARD.encode(b),
                    _ => String::new(),
                };
                mattrs.insert(k.clone(), json!({"Type": a.data_type, "Value": value}));
            }
            let envelope = lifehook_model::message::SnsEnvelope {
                kind: "Notification".into(),
                message_id: message_id.clone(),
                topic_arn: topic_arn.to_owned(),
                subject: subject.map(str::to_owned),
                message: message.to_owned(),
                timestamp: timestamp.clone(),
                signature_version: "1".into(),
                signature: fake_signature(&message_id),
                signing_cert_url: format!(
                    "{base}/SimpleNotificationService-0000000000000000000000000000000000.pem"
                ),
                unsubscribe_url: format!("{base}/?Action=Unsubscribe&SubscriptionArn={}", sub.arn),
                message_attributes: mattrs,
            };
            if sub.protocol == "lambda" {
                let event = crate::lambda::sns_event(
                    &serde_json::to_value(&envelope).unwrap_or_default(),
                    &sub.arn,
                );
                crate::lambda::invoke_by_arn(world, region, &sub.endpoint, &event, "sns")
                    .map(|_| ())
            } else {
                let body = serde_json::to_string_pretty(&envelope).unwrap_or_default();
                sqs::send_by_arn(world, region, &sub.endpoint, &body)
            }
        };
        if let Err(e) = result {
            tracing::warn!(topic = %topic_arn, subscription = %sub.arn, error = %e, "SNS delivery failed");
        }
    }
    Ok(message_id)
}

/// Not a real signature: base64 of a fixed-length digest-like string, so that consumers
/// that only check the shape are satisfied.
fn fake_signature(message_id: &str) -> String {
    let mut raw = format!("lifehook-sandbox-signature:{message_id}:").into_bytes();
    raw.resize(256, b'0');
    base64::engine::general_purpose::STANDARD.encode(raw)
}

/// The control API's view of a region's topics: per topic ARN, its subscriptions.
pub(crate) fn state_json(state: &State) -> Value {
    let topics: Map<String, Value> = state
        .topics
        .keys()
        .map(|arn| {
            let subs: Vec<Value> = state
                .subscriptions
                .values()
                .filter(|s| &s.topic_arn == arn)
                .map(|s| json!({"arn": s.arn, "protocol": s.protocol, "endpoint": s.endpoint, "raw": s.raw()}))
                .collect();
            (arn.clone(), Value::Array(subs))
        })
        .collect();
    Value::Object(topics)
}
