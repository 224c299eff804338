//! SNS in the sandbox (AWS Query, 2010-03-31): topics with their access policy
//! (`AddPermission`/`RemovePermission`) and data-protection policy; subscriptions to SQS,
//! Lambda and HTTP/HTTPS endpoints, with raw delivery, filter policies and a dead-letter
//! queue (`RedrivePolicy`); `Publish` and `PublishBatch` delivering the notification envelope
//! of spec §3.3.
//!
//! HTTP/HTTPS subscriptions follow AWS's handshake
//! (<https://docs.aws.amazon.com/sns/latest/dg/SendMessageToHttp.prepare.html>): the
//! subscription stays `PendingConfirmation` until the endpoint calls `ConfirmSubscription`
//! with the token of the `SubscriptionConfirmation` POST (or visits its `SubscribeURL`), and
//! only confirmed subscriptions get notifications. Deliveries are POSTs made by tasks on the
//! runtime, never on the request path (`http.rs`). Email, SMS, mobile push and Firehose
//! subscriptions are refused; `lambda` subscriptions invoke the sandbox's functions.
//!
//! Layout: this file holds topics, subscriptions and publishing (shared with Auto Scaling
//! and EventBridge); `ops.rs` the operations; `validate.rs` the checks of request values,
//! worded as AWS words them; `http.rs` the HTTP/S deliveries. SNS has no control routes.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::events::pattern;
use crate::protocol::RequestCtx;
use crate::protocol::{AwsError, Params, Service, XmlWriter};
use crate::sqs::{self, MessageAttr};
use crate::world::{DeliveryError, World};
use crate::{ACCOUNT_ID, clock, ids};

mod http;
mod ops;
#[cfg(test)]
mod tests;
mod validate;

pub(crate) use ops::run;

/// Largest message, bytes: the body plus every attribute's name, type and value
/// (<https://docs.aws.amazon.com/sns/latest/api/API_Publish.html>). Also the limit of a
/// whole `PublishBatch`.
pub(crate) const MAX_MESSAGE_BYTES: usize = 262_144;
/// Topics per page of ListTopics, subscriptions per page of ListSubscriptions.
const PAGE: usize = 100;
/// What `Subscribe` answers for a subscription awaiting confirmation (unless the caller
/// asks for `ReturnSubscriptionArn`), and what the listings show in place of its ARN.
const PENDING_ANSWER: &str = "pending confirmation";
const PENDING_LISTED: &str = "PendingConfirmation";

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
    /// `PutDataProtectionPolicy`: kept apart, AWS does not list it among the attributes.
    data_protection: Option<String>,
}

impl Topic {
    fn signature_version(&self) -> &str {
        self.attrs
            .get("SignatureVersion")
            .map_or("1", String::as_str)
    }
}

#[derive(Debug, Clone)]
struct Subscription {
    arn: String,
    topic_arn: String,
    protocol: String,
    endpoint: String,
    attrs: BTreeMap<String, String>,
    /// HTTP/HTTPS: the token of the confirmation handshake.
    token: Option<String>,
    /// HTTP/HTTPS until `ConfirmSubscription`; other protocols are confirmed at once.
    pending: bool,
}

impl Subscription {
    fn raw(&self) -> bool {
        self.attrs
            .get("RawMessageDelivery")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// The dead-letter queue of `RedrivePolicy`, if any.
    fn dead_letter_arn(&self) -> Option<String> {
        let policy: Value = serde_json::from_str(self.attrs.get("RedrivePolicy")?).ok()?;
        policy
            .get("deadLetterTargetArn")
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    fn is_http(&self) -> bool {
        matches!(self.protocol.as_str(), "http" | "https")
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

// ---------------------------------------------------------------------------------------
// Publishing (shared with Auto Scaling and EventBridge)
// ---------------------------------------------------------------------------------------

/// One message to publish, as `Publish` or one `PublishBatch` entry gives it.
#[derive(Debug, Default)]
pub(crate) struct Outgoing<'a> {
    subject: Option<&'a str>,
    message: &'a str,
    /// `MessageStructure=json`: the message per protocol, with its `default`.
    per_protocol: Option<Map<String, Value>>,
    attrs: BTreeMap<String, MessageAttr>,
}

impl Outgoing<'_> {
    /// What a subscriber of `protocol` gets: its own entry of a JSON-structured message
    /// when that entry is a string, else the default (AWS ignores non-string entries).
    fn message_for(&self, protocol: &str) -> &str {
        match &self.per_protocol {
            Some(m) => m
                .get(protocol)
                .and_then(Value::as_str)
                .or_else(|| m.get("default").and_then(Value::as_str))
                .unwrap_or(self.message),
            None => self.message,
        }
    }
}

/// Publishes to the topic whose ARN is `topic_arn`, delivering to its subscriptions
/// (SQS: the envelope of spec §3.3, or the raw message with raw delivery).
pub(crate) fn publish_by_arn(
    world: &mut World,
    region: &str,
    topic_arn: &str,
    subject: Option<&str>,
    message: &str,
) -> Result<String, DeliveryError> {
    let out = Outgoing {
        subject,
        message,
        ..Outgoing::default()
    };
    publish(world, region, topic_arn, &out, None)
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

fn signing_cert_url(base: &str) -> String {
    format!("{base}/SimpleNotificationService-0000000000000000000000000000000000.pem")
}

/// What a notification envelope says of its topic.
struct TopicRef<'a> {
    arn: &'a str,
    signature_version: String,
}

/// The JSON notification a subscriber gets without raw delivery.
fn envelope(
    topic: &TopicRef<'_>,
    sub: &Subscription,
    message_id: &str,
    timestamp: &str,
    base: &str,
    out: &Outgoing<'_>,
) -> lifehook_model::message::SnsEnvelope {
    let mut mattrs = Map::new();
    for (k, a) in &out.attrs {
        let value = match (&a.string_value, &a.binary_value) {
            (Some(s), _) => s.clone(),
            (None, Some(b)) => base64::engine::general_purpose::STANDARD.encode(b),
            _ => String::new(),
        };
        mattrs.insert(k.clone(), json!({"Type": a.data_type, "Value": value}));
    }
    lifehook_model::message::SnsEnvelope {
        kind: "Notification".into(),
        message_id: message_id.to_owned(),
        topic_arn: topic.arn.to_owned(),
        subject: out.subject.map(str::to_owned),
        message: out.message_for(&sub.protocol).to_owned(),
        timestamp: timestamp.to_owned(),
        signature_version: topic.signature_version.clone(),
        signature: fake_signature(message_id),
        signing_cert_url: signing_cert_url(base),
        unsubscribe_url: format!("{base}/?Action=Unsubscribe&SubscriptionArn={}", sub.arn),
        message_attributes: mattrs,
    }
}

fn publish(
    world: &mut World,
    region: &str,
    topic_arn: &str,
    out: &Outgoing<'_>,
    host: Option<&str>,
) -> Result<String, DeliveryError> {
    let (region, _) = crate::world::delivery_target(region, topic_arn, parse_topic_arn)?;
    let sns = &world.region(region).sns;
    let Some(topic) = sns.topics.get(topic_arn) else {
        return Err(DeliveryError::NoSuchTarget(topic_arn.to_owned()));
    };
    // What the envelopes need of the topic, so that deliveries can borrow the world.
    let topic = TopicRef {
        arn: topic_arn,
        signature_version: topic.signature_version().to_owned(),
    };
    let subs: Vec<Subscription> = sns
        .subscriptions
        .values()
        .filter(|s| s.topic_arn == topic_arn && !s.pending)
        .cloned()
        .collect();
    let message_id = ids::uuid();
    let timestamp = clock::iso_millis(world.now);
    let base = envelope_base(host, region);
    for sub in subs {
        let message = out.message_for(&sub.protocol);
        if !passes_filter(&sub, message, &out.attrs) {
            continue;
        }
        let env = || envelope(&topic, &sub, &message_id, &timestamp, &base, out);
        let result = match sub.protocol.as_str() {
            "sqs" => {
                let (body, attrs) = if sub.raw() {
                    (message.to_owned(), out.attrs.clone())
                } else {
                    (
                        serde_json::to_string_pretty(&env()).unwrap_or_default(),
                        BTreeMap::new(),
                    )
                };
                sqs::send_by_arn_with_attrs(world, region, &sub.endpoint, &body, attrs.clone())
                    .or_else(|e| redrive(world, region, &sub, &body, attrs, e))
            }
            // A function always gets the Records event (§3.5), raw delivery or not.
            "lambda" => {
                let event = crate::lambda::sns_event(
                    &serde_json::to_value(env()).unwrap_or_default(),
                    &sub.arn,
                );
                crate::lambda::invoke_by_arn(world, region, &sub.endpoint, &event, "sns")
                    .map(|_| ())
            }
            "http" | "https" => {
                let body = if sub.raw() {
                    message.to_owned()
                } else {
                    serde_json::to_string_pretty(&env()).unwrap_or_default()
                };
                http::send(http::Post {
                    url: sub.endpoint.clone(),
                    kind: http::Kind::Notification,
                    message_id: message_id.clone(),
                    topic_arn: topic_arn.to_owned(),
                    subscription_arn: Some(sub.arn.clone()),
                    raw: sub.raw(),
                    body,
                });
                Ok(())
            }
            _ => Ok(()),
        };
        if let Err(e) = result {
            tracing::warn!(topic = %topic_arn, subscription = %sub.arn, error = %e, "SNS delivery failed");
        }
    }
    Ok(message_id)
}

/// A message SNS could not deliver to a queue goes to the subscription's dead-letter
/// queue, as it was to be delivered, when the subscription has one
/// (<https://docs.aws.amazon.com/sns/latest/dg/sns-dead-letter-queues.html>).
fn redrive(
    world: &mut World,
    region: &str,
    sub: &Subscription,
    body: &str,
    attrs: BTreeMap<String, MessageAttr>,
    failure: DeliveryError,
) -> Result<(), DeliveryError> {
    let Some(dlq) = sub.dead_letter_arn() else {
        return Err(failure);
    };
    tracing::info!(subscription = %sub.arn, dead_letter_queue = %dlq, error = %failure, "SNS delivery failed; message moved to the dead-letter queue");
    sqs::send_by_arn_with_attrs(world, region, &dlq, body, attrs)
}

/// The `SubscriptionConfirmation` (or, on unsubscribe, `UnsubscribeConfirmation`) POST to
/// an HTTP/S endpoint, carrying the token and the URL that confirms
/// (<https://docs.aws.amazon.com/sns/latest/dg/http-subscription-confirmation-json.html>).
fn send_handshake(sub: &Subscription, kind: http::Kind, base: &str, now: clock::Millis) {
    let Some(token) = &sub.token else {
        return;
    };
    let message_id = ids::uuid();
    let subscribe_url = format!(
        "{base}/?Action=ConfirmSubscription&TopicArn={}&Token={token}",
        sub.topic_arn
    );
    let message = match kind {
        http::Kind::UnsubscribeConfirmation => format!(
            "You have chosen to deactivate subscription {}.\nTo cancel this operation and restore the subscription, visit the SubscribeURL included in this message.",
            sub.arn
        ),
        _ => format!(
            "You have chosen to subscribe to the topic {}.\nTo confirm the subscription, visit the SubscribeURL included in this message.",
            sub.topic_arn
        ),
    };
    let body = json!({
        "Type": kind.as_str(),
        "MessageId": message_id,
        "Token": token,
        "TopicArn": sub.topic_arn,
        "Message": message,
        "SubscribeURL": subscribe_url,
        "Timestamp": clock::iso_millis(now),
        "SignatureVersion": "1",
        "Signature": fake_signature(&message_id),
        "SigningCertURL": signing_cert_url(base),
    });
    http::send(http::Post {
        url: sub.endpoint.clone(),
        kind,
        message_id,
        topic_arn: sub.topic_arn.clone(),
        subscription_arn: (kind == http::Kind::UnsubscribeConfirmation).then(|| sub.arn.clone()),
        raw: false,
        body: serde_json::to_string_pretty(&body).unwrap_or_default(),
    });
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
                .map(|s| json!({"arn": s.arn, "protocol": s.protocol, "endpoint": s.endpoint, "raw": s.raw(), "pending": s.pending}))
                .collect();
            (arn.clone(), Value::Array(subs))
        })
        .collect();
    Value::Object(topics)
}
