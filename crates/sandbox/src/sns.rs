//! SNS in the sandbox (AWS Query, 2010-03-31): topics, SQS subscriptions with raw delivery
//! and filter policies, and `Publish` delivering the notification envelope of spec §3.3.
//!
//! HTTP/S, email and SMS subscriptions are refused; `lambda` subscriptions are stored but
//! nothing is invoked.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::events::pattern;
use crate::protocol::{AwsError, Params, Service, XmlWriter};
use crate::server::{Input, Reply, RequestCtx};
use crate::sqs::{self, MessageAttr};
use crate::world::{DeliveryError, World};
use crate::{ACCOUNT_ID, Sandbox, clock, ids};

/// Largest message, bytes.
pub const MAX_MESSAGE_BYTES: usize = 262_144;
/// Topics per page of ListTopics, subscriptions per page of ListSubscriptions.
const PAGE: usize = 100;

/// SNS state of one region.
#[derive(Debug, Default)]
pub struct State {
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
    let mut p = arn.splitn(6, ':');
    let (a, _part, svc, region, _acct, name) = (
        p.next()?,
        p.next()?,
        p.next()?,
        p.next()?,
        p.next()?,
        p.next()?,
    );
    (a == "arn" && svc == "sns" && !name.is_empty() && !name.contains(':'))
        .then_some((region, name))
}

fn validate_filter_policy(v: &str) -> Result<(), AwsError> {
    let j: Value = serde_json::from_str(v)
        .map_err(|e| invalid(format!("FilterPolicy: failed to parse JSON. {e}")))?;
    pattern::validate(&j).map_err(|e| invalid(format!("FilterPolicy: {e}")))
}

fn validate_sub_attr(k: &str, v: &str) -> Result<(), AwsError> {
    match k {
        "RawMessageDelivery" => {
            if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") {
                return Err(invalid("RawMessageDelivery: must be true or false"));
            }
        }
        "FilterPolicy" => {
            if !v.is_empty() {
                validate_filter_policy(v)?;
            }
        }
        "FilterPolicyScope" => {
            if v != "MessageAttributes" && v != "MessageBody" {
                return Err(invalid(
                    "FilterPolicyScope: must be MessageAttributes or MessageBody",
                ));
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
pub fn publish_by_arn(
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
    let Some((arn_region, _)) = parse_topic_arn(topic_arn) else {
        return Err(DeliveryError::NoSuchTarget(topic_arn.to_owned()));
    };
    let region = if arn_region.is_empty() {
        region
    } else {
        arn_region
    };
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

// ---------------------------------------------------------------------------------------
// The API
// ---------------------------------------------------------------------------------------

pub async fn handle(sb: &Sandbox, ctx: &RequestCtx, input: Input) -> Result<Reply, AwsError> {
    let Input::Query(p) = input else {
        return Err(AwsError::unknown_operation(Service::Sns, &ctx.op));
    };
    let mut w = sb.lock();
    run(&mut w, ctx, &p).map(Reply::Xml)
}

/// `Attributes.entry.N.key` / `Attributes.entry.N.value` as a map of strings.
fn entry_map(p: &Params, name: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for e in p.struct_list(&format!("{name}.entry")) {
        if let Some(k) = e.get("key").or_else(|| e.get("Name")) {
            let v = e.get("value").or_else(|| e.get("Value")).unwrap_or("");
            out.insert(k.to_owned(), v.to_owned());
        }
    }
    out
}

fn publish_attrs(p: &Params) -> Result<BTreeMap<String, MessageAttr>, AwsError> {
    let mut m = Map::new();
    for e in p.struct_list("MessageAttributes.entry") {
        let Some(name) = e.get("Name").or_else(|| e.get("key")) else {
            continue;
        };
        let v = e.sub("Value");
        let v = if v.is_empty() { e.sub("value") } else { v };
        let mut o = Map::new();
        for k in ["DataType", "StringValue", "BinaryValue"] {
            if let Some(x) = v.get(k) {
                o.insert(k.into(), json!(x));
            }
        }
        m.insert(name.to_owned(), Value::Object(o));
    }
    sqs::message_attrs(Some(&m)).map_err(|e| invalid(format!("MessageAttributes: {}", e.message)))
}

fn find_topic<'a>(
    world: &'a mut World,
    region: &str,
    arn: &str,
) -> Result<&'a mut Topic, AwsError> {
    let region = parse_topic_arn(arn)
        .map(|(r, _)| r)
        .filter(|r| !r.is_empty())
        .unwrap_or(region)
        .to_owned();
    if parse_topic_arn(arn).is_none() {
        return Err(invalid("TopicArn"));
    }
    world
        .region(&region)
        .sns
        .topics
        .get_mut(arn)
        .ok_or_else(|| not_found("Topic"))
}

fn run(world: &mut World, ctx: &RequestCtx, p: &Params) -> Result<String, AwsError> {
    let ns = Service::Sns.xml_namespace();
    let op = ctx.op.as_str();
    let region = ctx.region.as_str();
    let empty = || Ok(XmlWriter::empty_result(op, ns, &ctx.request_id));
    let mut w = XmlWriter::response(op, ns, true);
    match op {
        "CreateTopic" => {
            let name = p
                .get_nonempty("Name")
                .ok_or_else(|| AwsError::missing("Name"))?;
            if name.len() > 256
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(invalid(
                    "Topic Name: must be 1-256 characters of letters, numbers, hyphens and underscores",
                ));
            }
            let attrs = entry_map(p, "Attributes");
            if attrs
                .get("FifoTopic")
                .is_some_and(|v| v.eq_ignore_ascii_case("true"))
            {
                return Err(invalid(
                    "FifoTopic: FIFO topics are not supported by the lifehook sandbox",
                ));
            }
            let arn = topic_arn(region, name);
            let tags: BTreeMap<String, String> = p
                .struct_list("Tags")
                .iter()
                .filter_map(|t| {
                    Some((
                        t.get("Key")?.to_owned(),
                        t.get("Value").unwrap_or("").to_owned(),
                    ))
                })
                .collect();
            let topics = &mut world.region(region).sns.topics;
            match topics.get_mut(&arn) {
                Some(t) => {
                    if attrs
                        .iter()
                        .any(|(k, v)| t.attrs.get(k).is_some_and(|x| x != v))
                    {
                        return Err(invalid(
                            "Attributes: topic already exists with different attributes",
                        ));
                    }
                }
                None => {
                    topics.insert(
                        arn.clone(),
                        Topic {
                            arn: arn.clone(),
                            attrs,
                            tags,
                        },
                    );
                }
            }
            w.elem("TopicArn", &arn);
        }
        "DeleteTopic" => {
            let arn = p.required("TopicArn")?.to_owned();
            let sns = &mut world.region(region).sns;
            // Deleting a topic that does not exist succeeds, as on AWS.
            sns.topics.remove(&arn);
            sns.subscriptions.retain(|_, s| s.topic_arn != arn);
            return empty();
        }
        "ListTopics" => {
            let after = p.get_nonempty("NextToken");
            let arns: Vec<String> = world
                .region(region)
                .sns
                .topics
                .keys()
                .filter(|a| after.is_none_or(|n| a.as_str() > n))
                .cloned()
                .collect();
            w.start("Topics");
            for a in arns.iter().take(PAGE) {
                w.start("member").elem("TopicArn", a).end();
            }
            w.end();
            if arns.len() > PAGE {
                w.elem("NextToken", &arns[PAGE - 1]);
            }
        }
        "GetTopicAttributes" => {
            let arn = p.required("TopicArn")?.to_owned();
            let (confirmed, deleted) = {
                let subs = &world.region(region).sns.subscriptions;
                let n = subs.values().filter(|s| s.topic_arn == arn).count();
                (n, 0)
            };
            let t = find_topic(world, region, &arn)?;
            let mut attrs = t.attrs.clone();
            attrs.insert("TopicArn".into(), t.arn.clone());
            attrs.insert("Owner".into(), ACCOUNT_ID.into());
            attrs.insert("SubscriptionsConfirmed".into(), confirmed.to_string());
            attrs.insert("SubscriptionsPending".into(), "0".into());
            attrs.insert("SubscriptionsDeleted".into(), deleted.to_string());
            attrs.entry("DisplayName".into()).or_default();
            attrs
                .entry("Policy".into())
                .or_insert_with(|| default_policy(&arn));
            attrs
                .entry("EffectiveDeliveryPolicy".into())
                .or_insert_with(|| r#"{"http":{"defaultHealthyRetryPolicy":{"minDelayTarget":20,"maxDelayTarget":20,"numRetries":3,"numMaxDelayRetries":0,"numNoDelayRetries":0,"numMinDelayRetries":0,"backoffFunction":"linear"},"disableSubscriptionOverrides":false,"defaultRequestPolicy":{"headerContentType":"text/plain; charset=UTF-8"}}}"#.into());
            write_attrs(&mut w, &attrs);
        }
        "SetTopicAttributes" => {
            let arn = p.required("TopicArn")?.to_owned();
            let name = p.required("AttributeName")?.to_owned();
            let value = p.get("AttributeValue").unwrap_or("").to_owned();
            const SETTABLE: &[&str] = &[
                "DisplayName",
                "Policy",
                "DeliveryPolicy",
                "KmsMasterKeyId",
                "SignatureVersion",
                "TracingConfig",
                "ArchivePolicy",
                "DataProtectionPolicy",
                "ContentBasedDeduplication",
            ];
            if !SETTABLE.contains(&name.as_str())
                && !name.ends_with("FeedbackRoleArn")
                && !name.ends_with("SuccessFeedbackSampleRate")
            {
                return Err(invalid(format!("AttributeName: unknown attribute {name}")));
            }
            find_topic(world, region, &arn)?.attrs.insert(name, value);
            return empty();
        }
        "Subscribe" => {
            let arn = p.required("TopicArn")?.to_owned();
            let protocol = p.required("Protocol")?.to_ascii_lowercase();
            let endpoint = p.get("Endpoint").unwrap_or("").to_owned();
            find_topic(world, region, &arn)?;
            match protocol.as_str() {
                "sqs" => {
                    if sqs::parse_arn(&endpoint).is_none() {
                        return Err(invalid("SQS endpoint ARN"));
                    }
                }
                "lambda" => {
                    if !endpoint.starts_with("arn:aws:lambda:") {
                        return Err(invalid("Lambda endpoint ARN"));
                    }
                }
                "http" | "https" | "email" | "email-json" | "sms" | "application" | "firehose" => {
                    return Err(invalid(format!(
                        "Protocol: {protocol} subscriptions are not supported by the lifehook sandbox (use sqs)"
                    )));
                }
                other => return Err(invalid(format!("Invalid protocol type: {other}"))),
            }
            let attrs = entry_map(p, "Attributes");
            for (k, v) in &attrs {
                validate_sub_attr(k, v)?;
            }
            let subs = &mut world.region(region).sns.subscriptions;
            let existing = subs
                .values()
                .find(|s| s.topic_arn == arn && s.protocol == protocol && s.endpoint == endpoint)
                .map(|s| s.arn.clone());
            let sub_arn = match existing {
                Some(a) => {
                    if let Some(s) = subs.get_mut(&a)
                        && !attrs.is_empty()
                        && s.attrs != attrs
                    {
                        return Err(invalid(
                            "Attributes: Subscription already exists with different attributes",
                        ));
                    }
                    a
                }
                None => {
                    let a = format!("{arn}:{}", ids::uuid());
                    subs.insert(
                        a.clone(),
                        Subscription {
                            arn: a.clone(),
                            topic_arn: arn.clone(),
                            protocol,
                            endpoint,
                            attrs,
                        },
                    );
                    a
                }
            };
            w.elem("SubscriptionArn", sub_arn);
        }
        "Unsubscribe" => {
            let arn = p.required("SubscriptionArn")?;
            let subs = &mut world.region(region).sns.subscriptions;
            if subs.remove(arn).is_none() {
                return Err(not_found("Subscription"));
            }
            return empty();
        }
        "SetSubscriptionAttributes" => {
            let arn = p.required("SubscriptionArn")?.to_owned();
            let name = p.required("AttributeName")?.to_owned();
            let value = p.get("AttributeValue").unwrap_or("").to_owned();
            validate_sub_attr(&name, &value)?;
            let s = world
                .region(region)
                .sns
                .subscriptions
                .get_mut(&arn)
                .ok_or_else(|| not_found("Subscription"))?;
            s.attrs.insert(name, value);
            return empty();
        }
        "GetSubscriptionAttributes" => {
            let arn = p.required("SubscriptionArn")?;
            let s = world
                .region(region)
                .sns
                .subscriptions
                .get(arn)
                .ok_or_else(|| not_found("Subscription"))?;
            let mut attrs = s.attrs.clone();
            attrs.insert("SubscriptionArn".into(), s.arn.clone());
            attrs.insert("TopicArn".into(), s.topic_arn.clone());
            attrs.insert("Protocol".into(), s.protocol.clone());
            attrs.insert("Endpoint".into(), s.endpoint.clone());
            attrs.insert("Owner".into(), ACCOUNT_ID.into());
            attrs.insert("ConfirmationWasAuthenticated".into(), "true".into());
            attrs.insert("PendingConfirmation".into(), "false".into());
            attrs
                .entry("RawMessageDelivery".into())
                .or_insert_with(|| "false".into());
            if attrs.contains_key("FilterPolicy") {
                attrs
                    .entry("FilterPolicyScope".into())
                    .or_insert_with(|| "MessageAttributes".into());
            }
            write_attrs(&mut w, &attrs);
        }
        "ListSubscriptions" | "ListSubscriptionsByTopic" => {
            let topic = if op == "ListSubscriptionsByTopic" {
                let arn = p.required("TopicArn")?.to_owned();
                find_topic(world, region, &arn)?;
                Some(arn)
            } else {
                None
            };
            let after = p.get_nonempty("NextToken");
            let subs: Vec<Subscription> = world
                .region(region)
                .sns
                .subscriptions
                .values()
                .filter(|s| topic.as_ref().is_none_or(|t| &s.topic_arn == t))
                .filter(|s| after.is_none_or(|n| s.arn.as_str() > n))
                .cloned()
                .collect();
            w.start("Subscriptions");
            for s in subs.iter().take(PAGE) {
                w.start("member")
                    .elem("TopicArn", &s.topic_arn)
                    .elem("Protocol", &s.protocol)
                    .elem("SubscriptionArn", &s.arn)
                    .elem("Owner", ACCOUNT_ID)
                    .elem("Endpoint", &s.endpoint)
                    .end();
            }
            w.end();
            if subs.len() > PAGE {
                w.elem("NextToken", &subs[PAGE - 1].arn);
            }
        }
        "Publish" => {
            let arn = p
                .get_nonempty("TopicArn")
                .or_else(|| p.get_nonempty("TargetArn"))
                .ok_or_else(|| {
                    invalid("TopicArn or TargetArn Reason: no value for required parameter")
                })?
                .to_owned();
            let message = p
                .get("Message")
                .ok_or_else(|| AwsError::missing("Message"))?;
            if message.is_empty() {
                return Err(invalid("Empty message"));
            }
            if message.len() > MAX_MESSAGE_BYTES {
                return Err(invalid("Message too long"));
            }
            let subject = p.get("Subject");
            if let Some(s) = subject
                && (s.is_empty() || s.len() > 100 || s.chars().any(char::is_control))
            {
                return Err(invalid("Subject"));
            }
            if p.get("MessageStructure") == Some("json") {
                return Err(invalid(
                    "MessageStructure: json is not supported by the lifehook sandbox",
                ));
            }
            let attrs = publish_attrs(p)?;
            find_topic(world, region, &arn)?;
            let id = publish(
                world,
                region,
                &arn,
                subject,
                message,
                &attrs,
                Some(&ctx.host),
            )
            .map_err(|_| not_found("Topic"))?;
            w.elem("MessageId", id);
        }
        "TagResource" | "UntagResource" | "ListTagsForResource" => {
            let arn = p.required("ResourceArn")?.to_owned();
            let t = find_topic(world, region, &arn)
                .map_err(|_| AwsError::new(404, "ResourceNotFound", "Resource does not exist"))?;
            match op {
                "TagResource" => {
                    for tag in p.struct_list("Tags") {
                        if let Some(k) = tag.get("Key") {
                            t.tags
                                .insert(k.to_owned(), tag.get("Value").unwrap_or("").to_owned());
                        }
                    }
                    return empty();
                }
                "UntagResource" => {
                    for k in p.list("TagKeys") {
                        t.tags.remove(&k);
                    }
                    return empty();
                }
                _ => {
                    w.start("Tags");
                    for (k, v) in &t.tags {
                        w.start("member").elem("Key", k).elem("Value", v).end();
                    }
                    w.end();
                }
            }
        }
        other => return Err(AwsError::unknown_operation(Service::Sns, other)),
    }
    Ok(w.finish(&ctx.request_id))
}

/// The control API's view of a region's topics: per topic ARN, its subscriptions.
pub fn state_json(state: &State) -> Value {
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

fn write_attrs(w: &mut XmlWriter, attrs: &BTreeMap<String, String>) {
    w.start("Attributes");
    for (k, v) in attrs {
        w.start("entry").elem("key", k).elem("value", v).end();
    }
    w.end();
}

fn default_policy(arn: &str) -> String {
    json!({
        "Version": "2008-10-17",
        "Id": "__default_policy_ID",
        "Statement": [{
            "Sid": "__default_statement_ID",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": ["SNS:Publish", "SNS:Subscribe", "SNS:GetTopicAttributes"],
            "Resource": arn,
            "Condition": {"StringEquals": {"AWS:SourceOwner": ACCOUNT_ID}}
        }]
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ClockMode;
    use crate::protocol::Wire;

    fn ctx(op: &str) -> RequestCtx {
        RequestCtx {
            request_id: "rid".into(),
            region: "us-east-1".into(),
            host: "localhost:4566".into(),
            path: "/".into(),
            service: Service::Sns,
            wire: Wire::Query,
            op: op.into(),
        }
    }

    fn call(w: &mut World, op: &str, body: &str) -> Result<String, AwsError> {
        run(w, &ctx(op), &Params::parse(body.as_bytes()).unwrap())
    }

    #[test]
    fn publish_envelope_raw_and_filter() {
        let sb = Sandbox::new(ClockMode::Manual, Default::default());
        let mut w = sb.lock();
        for q in ["env", "raw", "filtered"] {
            sqs::create_test_queue(&mut w, "us-east-1", q);
        }
        let t = "arn:aws:sns:us-east-1:000000000000:t";
        assert!(call(&mut w, "CreateTopic", "Name=t").unwrap().contains(t));
        let q = |n: &str| format!("arn%3Aaws%3Asqs%3Aus-east-1%3A000000000000%3A{n}");
        call(
            &mut w,
            "Subscribe",
            &format!("TopicArn={t}&Protocol=sqs&Endpoint={}", q("env")),
        )
        .unwrap();
        call(&mut w, "Subscribe", &format!("TopicArn={t}&Protocol=sqs&Endpoint={}&Attributes.entry.1.key=RawMessageDelivery&Attributes.entry.1.value=true", q("raw"))).unwrap();
        let policy = "%7B%22kind%22%3A%5B%22a%22%5D%7D"; // {"kind":["a"]}
        call(&mut w, "Subscribe", &format!("TopicArn={t}&Protocol=sqs&Endpoint={}&Attributes.entry.1.key=FilterPolicy&Attributes.entry.1.value={policy}", q("filtered"))).unwrap();
        assert!(
            call(
                &mut w,
                "Subscribe",
                &format!("TopicArn={t}&Protocol=https&Endpoint=https://x")
            )
            .is_err()
        );
        let id = publish_by_arn(&mut w, "us-east-1", t, Some("subj"), "{\"x\":1}").unwrap();
        assert_eq!(sqs::queue_depth(&mut w, "us-east-1", "env"), Some(1));
        assert_eq!(sqs::queue_depth(&mut w, "us-east-1", "raw"), Some(1));
        assert_eq!(sqs::queue_depth(&mut w, "us-east-1", "filtered"), Some(0));
        assert_eq!(id.len(), 36);
        call(&mut w, "Publish", &format!("TopicArn={t}&Message=hi&MessageAttributes.entry.1.Name=kind&MessageAttributes.entry.1.Value.DataType=String&MessageAttributes.entry.1.Value.StringValue=a")).unwrap();
        assert_eq!(sqs::queue_depth(&mut w, "us-east-1", "filtered"), Some(1));
        let e = call(
            &mut w,
            "Publish",
            "TopicArn=arn:aws:sns:us-east-1:000000000000:nope&Message=x",
        )
        .unwrap_err();
        assert_eq!(e.code, "NotFound");
    }
}
