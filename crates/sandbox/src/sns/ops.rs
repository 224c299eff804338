//! The SNS operations: `run`, its dispatch, and one function per operation.

use super::*;

type R = Result<String, AwsError>;

/// Most entries of one `PublishBatch`
/// (<https://docs.aws.amazon.com/sns/latest/api/API_PublishBatch.html>).
const MAX_BATCH_ENTRIES: usize = 10;

/// Who SNS says created a subscription: the sandbox has one caller identity.
fn subscription_principal() -> String {
    format!("arn:aws:iam::{ACCOUNT_ID}:user/lifehook-sandbox")
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

/// `Tags.member.N.{Key,Value}`; a key given twice is refused.
fn tag_list(p: &Params) -> Result<BTreeMap<String, String>, AwsError> {
    let mut tags = BTreeMap::new();
    for t in p.struct_list("Tags") {
        if let Some(k) = t.get("Key") {
            let v = t.get("Value").unwrap_or("").to_owned();
            if tags.insert(k.to_owned(), v).is_some() {
                return Err(invalid("Duplicated keys are not allowed."));
            }
        }
    }
    Ok(tags)
}

/// The topic `arn` names, given in `param`: of this region, and existing.
fn find_topic<'a>(
    world: &'a mut World,
    ctx: &RequestCtx,
    param: &str,
    arn: &str,
) -> Result<&'a mut Topic, AwsError> {
    validate::topic_arn(param, arn, &ctx.region)?;
    world
        .region(&ctx.region)
        .sns
        .topics
        .get_mut(arn)
        .ok_or_else(|| not_found("Topic"))
}

/// The answer of an operation with output: `<OpResponse><OpResult>…`, to be finished.
fn writer(ctx: &RequestCtx) -> XmlWriter {
    XmlWriter::response(&ctx.op, Service::Sns.xml_namespace(), true)
}

/// The answer of an operation whose output has no members: an empty `<OpResult/>`.
fn empty(ctx: &RequestCtx) -> R {
    Ok(XmlWriter::empty_result(
        &ctx.op,
        Service::Sns.xml_namespace(),
        &ctx.request_id,
    ))
}

pub(crate) fn run(world: &mut World, ctx: &RequestCtx, p: &Params) -> R {
    match ctx.op.as_str() {
        "CreateTopic" => create_topic(world, ctx, p),
        "DeleteTopic" => delete_topic(world, ctx, p),
        "ListTopics" => list_topics(world, ctx, p),
        "GetTopicAttributes" => get_topic_attributes(world, ctx, p),
        "SetTopicAttributes" => set_topic_attributes(world, ctx, p),
        "AddPermission" => add_permission(world, ctx, p),
        "RemovePermission" => remove_permission(world, ctx, p),
        "PutDataProtectionPolicy" => put_data_protection_policy(world, ctx, p),
        "GetDataProtectionPolicy" => get_data_protection_policy(world, ctx, p),
        "Subscribe" => subscribe(world, ctx, p),
        "ConfirmSubscription" => confirm_subscription(world, ctx, p),
        "Unsubscribe" => unsubscribe(world, ctx, p),
        "SetSubscriptionAttributes" => set_subscription_attributes(world, ctx, p),
        "GetSubscriptionAttributes" => get_subscription_attributes(world, ctx, p),
        "ListSubscriptions" | "ListSubscriptionsByTopic" => list_subscriptions(world, ctx, p),
        "Publish" => publish_op(world, ctx, p),
        "PublishBatch" => publish_batch(world, ctx, p),
        "TagResource" => tag_resource(world, ctx, p),
        "UntagResource" => untag_resource(world, ctx, p),
        "ListTagsForResource" => list_tags_for_resource(world, ctx, p),
        other => Err(AwsError::unknown_operation(Service::Sns, other)),
    }
}

fn create_topic(world: &mut World, ctx: &RequestCtx, p: &Params) -> R {
    let region = ctx.region.as_str();
    let name = p.get("Name").unwrap_or("");
    let mut attrs = entry_map(p, "Attributes");
    let fifo = attrs
        .get("FifoTopic")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    validate::topic_name(name, fifo)?;
    if fifo {
        return Err(invalid(
            "FifoTopic: FIFO topics are not supported by the lifehook sandbox",
        ));
    }
    if let Some(k) = attrs.keys().find(|k| !validate::is_topic_attr(k, true)) {
        return Err(invalid(format!(
            "Attributes Reason: Invalid attribute name: {k}"
        )));
    }
    // `FifoTopic=false` is what a standard topic is: not stored, never a difference.
    attrs.remove("FifoTopic");
    let tags = tag_list(p)?;
    let arn = topic_arn(region, name);
    let topics = &mut world.region(region).sns.topics;
    match topics.get_mut(&arn) {
        // CreateTopic is idempotent only for the same attributes and tags.
        Some(t) => {
            if attrs.iter().any(|(k, v)| t.attrs.get(k) != Some(v)) {
                return Err(invalid(
                    "Attributes Reason: Topic already exists with different attributes",
                ));
            }
            if tags.iter().any(|(k, v)| t.tags.get(k) != Some(v)) {
                return Err(invalid(
                    "Tags Reason: Topic already exists with different tags",
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
                    data_protection: None,
                },
            );
        }
    }
    let mut w = writer(ctx);
    w.elem("TopicArn", &arn);
    Ok(w.finish(&ctx.request_id))
}

fn delete_topic(world: &mut World, ctx: &RequestCtx, p: &Params) -> R {
    let region = ctx.region.as_str();
    let arn = p.required("TopicArn")?.to_owned();
    let sns = &mut world.region(region).sns;
    // Deleting a topic that does not exist succeeds, as on AWS.
    sns.topics.remove(&arn);
    sns.subscriptions.retain(|_, s| s.topic_arn != arn);
    empty(ctx)
}

fn list_topics(world: &mut World, ctx: &RequestCtx, p: &Params) -> R {
    let region = ctx.region.as_str();
    let mut w = writer(ctx);
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
    Ok(w.finish(&ctx.request_id))
}

fn get_topic_attributes(world: &mut World, ctx: &RequestCtx, p: &Params) -> R {
    let arn = p.required("TopicArn")?.to_owned();
    let (confirmed, pending) = {
        let subs = &world.region(&ctx.region).sns.subscriptions;
        let of_topic = || subs.values().filter(|s| s.topic_arn == arn);
        (
            of_topic().filter(|s| !s.pending).count(),
            of_topic().filter(|s| s.pending).count(),
        )
    };
    let t = find_topic(world, ctx, "TopicArn", &arn)?;
    let mut attrs = t.attrs.clone();
    attrs.insert("TopicArn".into(), t.arn.clone());
    attrs.insert("Owner".into(), ACCOUNT_ID.into());
    attrs.insert("SubscriptionsConfirmed".into(), confirmed.to_string());
    attrs.insert("SubscriptionsPending".into(), pending.to_string());
    attrs.insert("SubscriptionsDeleted".into(), "0".into());
    attrs.entry("DisplayName".into()).or_default();
    attrs
        .entry("Policy".into())
        .or_insert_with(|| default_policy(&arn).to_string());
    attrs
        .entry("EffectiveDeliveryPolicy".into())
        .or_insert_with(|| r#"{"http":{"defaultHealthyRetryPolicy":{"minDelayTarget":20,"maxDelayTarget":20,"numRetries":3,"numMaxDelayRetries":0,"numNoDelayRetries":0,"numMinDelayRetries":0,"backoffFunction":"linear"},"disableSubscriptionOverrides":false,"defaultRequestPolicy":{"headerContentType":"text/plain; charset=UTF-8"}}}"#.into());
    let mut w = writer(ctx);
    write_attrs(&mut w, &attrs);
    Ok(w.finish(&ctx.request_id))
}

fn set_topic_attributes(world: &mut World, ctx: &RequestCtx, p: &Params) -> R {
    let arn = p.required("TopicArn")?.to_owned();
    let name = p.required("AttributeName")?.to_owned();
    let value = p.get("AttributeValue").unwrap_or("").to_owned();
    let topic = find_topic(world, ctx, "TopicArn", &arn)?;
    if !validate::is_topic_attr(&name, false) {
        return Err(invalid("AttributeName"));
    }
    topic.attrs.insert(name, value);
    empty(ctx)
}

/// The SNS actions a topic policy statement may grant.
const TOPIC_ACTIONS: &[&str] = &[
    "GetTopicAttributes",
    "SetTopicAttributes",
    "AddPermission",
    "RemovePermission",
    "DeleteTopic",
    "Subscribe",
    "ListSubscriptionsByTopic",
    "Publish",
];

/// The topic's policy as a document: the one set, else AWS's default policy.
fn policy_of(t: &Topic) -> Value {
    t.attrs
        .get("Policy")
        .and_then(|p| serde_json::from_str(p).ok())
        .unwrap_or_else(|| default_policy(&t.arn))
}

/// `AddPermission`: a statement labelled `Label` granting the accounts the actions
/// (<https://docs.aws.amazon.com/sns/latest/api/API_AddPermission.html>).
fn add_permission(world: &mut World, ctx: &RequestCtx, p: &Params) -> R {
    let arn = p.required("TopicArn")?.to_owned();
    let label = p.required("Label")?.to_owned();
    let accounts = p.list("AWSAccountId");
    let actions = p.list("ActionName");
    let t = find_topic(world, ctx, "TopicArn", &arn)?;
    let mut policy = policy_of(t);
    let statements = policy
        .get("Statement")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if statements
        .iter()
        .any(|s| s.get("Sid").and_then(Value::as_str) == Some(label.as_str()))
    {
        return Err(invalid("Statement already exists"));
    }
    if actions.is_empty()
        || actions
            .iter()
            .any(|a| a != "*" && !TOPIC_ACTIONS.contains(&a.as_str()))
    {
        return Err(invalid("Policy statement action out of service scope!"));
    }
    // One principal or action is a string, several a list, as AWS writes them.
    let one_or_list = |items: Vec<String>| match items.as_slice() {
        [one] => json!(one),
        _ => json!(items),
    };
    let principals = accounts
        .iter()
        .map(|a| format!("arn:aws:iam::{a}:root"))
        .collect();
    let actions = actions.iter().map(|a| format!("SNS:{a}")).collect();
    let mut statements = statements;
    statements.push(json!({
        "Sid": label,
        "Effect": "Allow",
        "Principal": {"AWS": one_or_list(principals)},
        "Action": one_or_list(actions),
        "Resource": arn,
    }));
    policy["Statement"] = Value::Array(statements);
    t.attrs.insert("Policy".into(), policy.to_string());
    empty(ctx)
}

fn remove_permission(world: &mut World, ctx: &RequestCtx, p: &Params) -> R {
    let arn = p.required("TopicArn")?.to_owned();
    let label = p.required("Label")?.to_owned();
    let t = find_topic(world, ctx, "TopicArn", &arn)?;
    let mut policy = policy_of(t);
    if let Some(statements) = policy.get_mut("Statement").and_then(Value::as_array_mut) {
        statements.retain(|s| s.get("Sid").and_then(Value::as_str) != Some(label.as_str()));
    }
    t.attrs.insert("Policy".into(), policy.to_string());
    empty(ctx)
}

fn put_data_protection_policy(world: &mut World, ctx: &RequestCtx, p: &Params) -> R {
    let arn = p.required("ResourceArn")?.to_owned();
    let policy = p.required("DataProtectionPolicy")?.to_owned();
    if serde_json::from_str::<Value>(&policy).is_err() {
        return Err(invalid("DataProtectionPolicy: failed to parse JSON"));
    }
    find_topic(world, ctx, "ResourceArn", &arn)?.data_protection = Some(policy);
    empty(ctx)
}

fn get_data_protection_policy(world: &mut World, ctx: &RequestCtx, p: &Params) -> R {
    let arn = p.required("ResourceArn")?.to_owned();
    let t = find_topic(world, ctx, "ResourceArn", &arn)?;
    let mut w = writer(ctx);
    w.opt("DataProtectionPolicy", t.data_protection.as_deref());
    Ok(w.finish(&ctx.request_id))
}

/// The region an SNS ARN names, else `default`.
fn arn_region(arn: &str, default: &str) -> String {
    ids::split_arn(arn, "sns")
        .map(|(r, _)| r)
        .filter(|r| crate::world::is_region_name(r))
        .unwrap_or(default)
        .to_owned()
}

/// A confirmation token: 256 hex digits, the length of AWS's.
fn new_token() -> String {
    (0..8).map(|_| ids::hex32()).collect()
}

fn subscribe(world: &mut World, ctx: &RequestCtx, p: &Params) -> R {
    let region = ctx.region.as_str();
    let arn = p.get("TopicArn").unwrap_or("").to_owned();
    let protocol = p.required("Protocol")?.to_ascii_lowercase();
    let endpoint = p.get("Endpoint").unwrap_or("").to_owned();
    let return_arn = p.bool("ReturnSubscriptionArn")?.unwrap_or(false);
    find_topic(world, ctx, "TopicArn", &arn)?;
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
        "http" | "https" => {
            let scheme_ok = endpoint
                .parse::<::http::Uri>()
                .is_ok_and(|u| u.scheme_str() == Some(protocol.as_str()) && u.host().is_some());
            if !scheme_ok {
                return Err(invalid("Endpoint must match the specified protocol"));
            }
        }
        // Refused below, once the attributes are checked as AWS checks them.
        "email" | "email-json" | "sms" | "application" | "firehose" => {}
        other => {
            return Err(invalid(format!(
                "Amazon SNS does not support this protocol string: {other}"
            )));
        }
    }
    let attrs_in = entry_map(p, "Attributes");
    let body_scope = attrs_in.get("FilterPolicyScope").map(String::as_str) == Some("MessageBody");
    let mut attrs = BTreeMap::new();
    for (k, v) in attrs_in {
        let v = validate::sub_attr(&k, &v, body_scope).map_err(|reason| match reason.as_str() {
            "AttributeName" => invalid(format!("Attributes Reason: Invalid attribute name: {k}")),
            _ => invalid(format!("Attributes Reason: {reason}")),
        })?;
        attrs.insert(k, v);
    }
    if matches!(
        protocol.as_str(),
        "email" | "email-json" | "sms" | "application" | "firehose"
    ) {
        return Err(invalid(format!(
            "Protocol: {protocol} subscriptions are not supported by the lifehook sandbox (use sqs or http)"
        )));
    }
    let base = envelope_base(Some(&ctx.host), region);
    let now = world.now;
    let subs = &mut world.region(region).sns.subscriptions;
    let existing = subs
        .values()
        .find(|s| s.topic_arn == arn && s.protocol == protocol && s.endpoint == endpoint)
        .cloned();
    let sub = match existing {
        // Subscribing again is idempotent when every attribute given matches the
        // subscription's (its defaults included).
        Some(s) => {
            let effective = |k: &str| {
                s.attrs
                    .get(k)
                    .map(String::as_str)
                    .unwrap_or(match k {
                        "RawMessageDelivery" => "false",
                        "FilterPolicyScope" => "MessageAttributes",
                        _ => "",
                    })
                    .to_owned()
            };
            if attrs.iter().any(|(k, v)| &effective(k) != v) {
                return Err(invalid(
                    "Attributes Reason: Subscription already exists with different attributes",
                ));
            }
            if s.pending {
                send_handshake(&s, http::Kind::SubscriptionConfirmation, &base, now);
            }
            s
        }
        None => {
            // An empty filter policy is no filter policy.
            attrs.retain(|k, v| !(k == "FilterPolicy" && v.is_empty()));
            let is_http = matches!(protocol.as_str(), "http" | "https");
            let sub = Subscription {
                arn: format!("{arn}:{}", ids::uuid()),
                topic_arn: arn.clone(),
                protocol,
                endpoint,
                attrs,
                token: is_http.then(new_token),
                pending: is_http,
            };
            subs.insert(sub.arn.clone(), sub.clone());
            if sub.pending {
                send_handshake(&sub, http::Kind::SubscriptionConfirmation, &base, now);
            }
            sub
        }
    };
    let mut w = writer(ctx);
    if sub.pending && !return_arn {
        w.elem("SubscriptionArn", PENDING_ANSWER);
    } else {
        w.elem("SubscriptionArn", &sub.arn);
    }
    Ok(w.finish(&ctx.request_id))
}

/// `ConfirmSubscription`: the endpoint hands back the token of its
/// `SubscriptionConfirmation` (<https://docs.aws.amazon.com/sns/latest/api/API_ConfirmSubscription.html>).
fn confirm_subscription(world: &mut World, ctx: &RequestCtx, p: &Params) -> R {
    let topic = p.required("TopicArn")?.to_owned();
    let token = p.required("Token")?.to_owned();
    if token.len() < 32 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AwsError::new(400, "InvalidParameter", "Invalid token"));
    }
    validate::arn_elements("TopicArn", &topic)?;
    // The SubscribeURL is an unsigned GET: the topic's ARN says its region.
    let region = arn_region(&topic, &ctx.region);
    let sub = world
        .region(&region)
        .sns
        .subscriptions
        .values_mut()
        .find(|s| s.topic_arn == topic && s.token.as_deref() == Some(token.as_str()))
        .ok_or_else(|| invalid("Token"))?;
    sub.pending = false;
    let mut w = writer(ctx);
    w.elem("SubscriptionArn", &sub.arn);
    Ok(w.finish(&ctx.request_id))
}

/// `Unsubscribe`: idempotent for a well-formed ARN, as on AWS.
fn unsubscribe(world: &mut World, ctx: &RequestCtx, p: &Params) -> R {
    let arn = p
        .get_nonempty("SubscriptionArn")
        .ok_or_else(|| invalid("SubscriptionArn Reason: no value for required parameter"))?;
    validate::arn_elements("SubscriptionArn", arn)?;
    if !ids::split_arn(arn, "sns").is_some_and(|(_, res)| res.contains(':')) {
        return Err(invalid("SubscriptionId"));
    }
    let base = envelope_base(Some(&ctx.host), &ctx.region);
    let now = world.now;
    // The UnsubscribeURL is an unsigned GET: the subscription's ARN says its region.
    let region = arn_region(arn, &ctx.region);
    let removed = world.region(&region).sns.subscriptions.remove(arn);
    // A confirmed HTTP/S endpoint is told, with a token to subscribe again.
    if let Some(s) = removed
        && s.is_http()
        && !s.pending
    {
        send_handshake(&s, http::Kind::UnsubscribeConfirmation, &base, now);
    }
    empty(ctx)
}

fn set_subscription_attributes(world: &mut World, ctx: &RequestCtx, p: &Params) -> R {
    let arn = p.required("SubscriptionArn")?.to_owned();
    let name = p.required("AttributeName")?.to_owned();
    let value = p.get("AttributeValue").unwrap_or("").to_owned();
    let s = world
        .region(&ctx.region)
        .sns
        .subscriptions
        .get_mut(&arn)
        .ok_or_else(|| not_found("Subscription"))?;
    let body_scope = s.attrs.get("FilterPolicyScope").map(String::as_str) == Some("MessageBody");
    let value = validate::sub_attr(&name, &value, body_scope).map_err(invalid)?;
    if value.is_empty() && matches!(name.as_str(), "FilterPolicy" | "RedrivePolicy") {
        s.attrs.remove(&name);
    } else {
        s.attrs.insert(name, value);
    }
    empty(ctx)
}

fn get_subscription_attributes(world: &mut World, ctx: &RequestCtx, p: &Params) -> R {
    let arn = p.required("SubscriptionArn")?;
    let s = world
        .region(&ctx.region)
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
    attrs.insert("SubscriptionPrincipal".into(), subscription_principal());
    attrs.insert(
        "ConfirmationWasAuthenticated".into(),
        (!s.pending).to_string(),
    );
    attrs.insert("PendingConfirmation".into(), s.pending.to_string());
    attrs
        .entry("RawMessageDelivery".into())
        .or_insert_with(|| "false".into());
    // The scope shows only with a filter policy to apply it to.
    if attrs.contains_key("FilterPolicy") {
        attrs
            .entry("FilterPolicyScope".into())
            .or_insert_with(|| "MessageAttributes".into());
    } else {
        attrs.remove("FilterPolicyScope");
    }
    let mut w = writer(ctx);
    write_attrs(&mut w, &attrs);
    Ok(w.finish(&ctx.request_id))
}

fn list_subscriptions(world: &mut World, ctx: &RequestCtx, p: &Params) -> R {
    let region = ctx.region.as_str();
    let topic = if ctx.op == "ListSubscriptionsByTopic" {
        let arn = p.required("TopicArn")?.to_owned();
        find_topic(world, ctx, "TopicArn", &arn)?;
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
    let mut w = writer(ctx);
    w.start("Subscriptions");
    for s in subs.iter().take(PAGE) {
        let arn = if s.pending {
            PENDING_LISTED
        } else {
            s.arn.as_str()
        };
        w.start("member")
            .elem("TopicArn", &s.topic_arn)
            .elem("Protocol", &s.protocol)
            .elem("SubscriptionArn", arn)
            .elem("Owner", ACCOUNT_ID)
            .elem("Endpoint", &s.endpoint)
            .end();
    }
    w.end();
    if subs.len() > PAGE {
        w.elem("NextToken", &subs[PAGE - 1].arn);
    }
    Ok(w.finish(&ctx.request_id))
}

/// One message of `Publish` or of a `PublishBatch` entry, checked: the message, its
/// subject, structure, attributes (`attrs_path` words a missing data type) and the
/// FIFO-only parameters.
fn outgoing<'a>(p: &'a Params, attrs_path: &str) -> Result<Outgoing<'a>, AwsError> {
    let message = p
        .get("Message")
        .ok_or_else(|| AwsError::missing("Message"))?;
    if message.is_empty() {
        return Err(invalid("Empty message"));
    }
    let subject = p.get("Subject");
    if let Some(s) = subject
        && (s.is_empty() || s.len() > 100 || s.chars().any(char::is_control))
    {
        return Err(invalid("Subject"));
    }
    let per_protocol = match p.get("MessageStructure") {
        None => None,
        Some("json") => Some(validate::structured(message)?),
        Some(_) => return Err(invalid("MessageStructure")),
    };
    let attrs = validate::message_attrs(p, attrs_path)?;
    // Standard topics take a MessageGroupId (it reaches SQS fair queues) but no
    // deduplication id.
    if p.get("MessageDeduplicationId").is_some() {
        return Err(invalid(
            "MessageDeduplicationId Reason: The request includes MessageDeduplicationId parameter that is not valid for this topic type",
        ));
    }
    Ok(Outgoing {
        subject,
        message,
        per_protocol,
        attrs,
    })
}

fn publish_op(world: &mut World, ctx: &RequestCtx, p: &Params) -> R {
    if p.get("PhoneNumber").is_some() {
        return Err(invalid(
            "PhoneNumber: SMS is not supported by the lifehook sandbox",
        ));
    }
    let (param, arn) = match (p.get("TargetArn"), p.get("TopicArn")) {
        (Some(t), _) if !t.is_empty() => ("TargetArn", t),
        (_, Some(t)) => ("TopicArn", t),
        _ => {
            return Err(invalid(
                "TopicArn or TargetArn Reason: no value for required parameter",
            ));
        }
    };
    validate::arn_elements(param, arn)?;
    // A TargetArn that is no topic is a mobile endpoint, which the sandbox never has.
    if param == "TargetArn" && ids::split_arn(arn, "sns").is_some_and(|(_, r)| r.contains('/')) {
        return Err(invalid(
            "TargetArn Reason: No endpoint found for the target arn specified",
        ));
    }
    let out = outgoing(p, "messageAttributes")?;
    if sqs::message_size(out.message, &out.attrs) > MAX_MESSAGE_BYTES {
        return Err(invalid("Message too long"));
    }
    find_topic(world, ctx, param, arn)?;
    let id =
        publish(world, &ctx.region, arn, &out, Some(&ctx.host)).map_err(|_| not_found("Topic"))?;
    let mut w = writer(ctx);
    w.elem("MessageId", id);
    Ok(w.finish(&ctx.request_id))
}

fn batch_error(code: &str, message: &str) -> AwsError {
    AwsError::new(400, code, message)
}

/// `PublishBatch`: up to ten messages, each published as by `Publish`
/// (<https://docs.aws.amazon.com/sns/latest/api/API_PublishBatch.html>). A problem with the
/// request as a whole (the entry count, ids, total size, an invalid attribute) fails it;
/// an empty message fails only its entry.
fn publish_batch(world: &mut World, ctx: &RequestCtx, p: &Params) -> R {
    let arn = p.get("TopicArn").unwrap_or("");
    let entries = p.struct_list("PublishBatchRequestEntries");
    validate::topic_arn("TopicArn", arn, &ctx.region)?;
    if entries.is_empty() {
        return Err(batch_error(
            "EmptyBatchRequest",
            "The batch request doesn't contain any entries.",
        ));
    }
    if entries.len() > MAX_BATCH_ENTRIES {
        return Err(batch_error(
            "TooManyEntriesInBatchRequest",
            "The batch request contains more entries than permissible.",
        ));
    }
    let ids: Vec<&str> = entries.iter().map(|e| e.get("Id").unwrap_or("")).collect();
    if ids.iter().enumerate().any(|(i, id)| ids[..i].contains(id)) {
        return Err(batch_error(
            "BatchEntryIdsNotDistinct",
            "Two or more batch entries in the request have the same Id.",
        ));
    }
    for id in &ids {
        validate::batch_entry_id(id)?;
    }
    find_topic(world, ctx, "TopicArn", arn)?;
    let mut checked = Vec::new();
    let mut total = 0;
    for (i, e) in entries.iter().enumerate() {
        let path = format!(
            "publishBatchRequestEntries.{}.member.messageAttributes",
            i + 1
        );
        let out = match outgoing(e, &path) {
            Ok(out) => out,
            Err(err) if err.message == "Invalid parameter: Empty message" => {
                checked.push((ids[i], Err(err)));
                continue;
            }
            Err(err) => return Err(err),
        };
        total += sqs::message_size(out.message, &out.attrs);
        checked.push((ids[i], Ok(out)));
    }
    if total > MAX_MESSAGE_BYTES {
        return Err(batch_error(
            "BatchRequestTooLong",
            "The length of all the messages put together is more than the limit.",
        ));
    }
    let mut successful = Vec::new();
    let mut failed = Vec::new();
    for (id, out) in checked {
        match out {
            Ok(out) => {
                let message_id = publish(world, &ctx.region, arn, &out, Some(&ctx.host))
                    .map_err(|_| not_found("Topic"))?;
                successful.push((id, message_id));
            }
            Err(err) => failed.push((id, err)),
        }
    }
    let mut w = writer(ctx);
    if successful.is_empty() {
        w.empty("Successful");
    } else {
        w.start("Successful");
        for (id, message_id) in &successful {
            w.start("member")
                .elem("Id", id)
                .elem("MessageId", message_id)
                .end();
        }
        w.end();
    }
    if failed.is_empty() {
        w.empty("Failed");
    } else {
        w.start("Failed");
        for (id, err) in &failed {
            w.start("member")
                .elem("Id", id)
                .elem("Code", &err.code)
                .elem("Message", &err.message)
                .elem("SenderFault", "true")
                .end();
        }
        w.end();
    }
    Ok(w.finish(&ctx.request_id))
}

/// The topic a tagging operation names (`ResourceArn`).
fn tagged_topic<'a>(
    world: &'a mut World,
    ctx: &RequestCtx,
    p: &Params,
) -> Result<&'a mut Topic, AwsError> {
    let arn = p.required("ResourceArn")?.to_owned();
    find_topic(world, ctx, "ResourceArn", &arn).map_err(|e| {
        if e.code == "NotFound" {
            AwsError::new(404, "ResourceNotFound", "Resource does not exist")
        } else {
            e
        }
    })
}

fn tag_resource(world: &mut World, ctx: &RequestCtx, p: &Params) -> R {
    let tags = tag_list(p)?;
    let t = tagged_topic(world, ctx, p)?;
    t.tags.extend(tags);
    empty(ctx)
}

fn untag_resource(world: &mut World, ctx: &RequestCtx, p: &Params) -> R {
    let t = tagged_topic(world, ctx, p)?;
    for k in p.list("TagKeys") {
        t.tags.remove(&k);
    }
    empty(ctx)
}

fn list_tags_for_resource(world: &mut World, ctx: &RequestCtx, p: &Params) -> R {
    let t = tagged_topic(world, ctx, p)?;
    let mut w = writer(ctx);
    w.start("Tags");
    for (k, v) in &t.tags {
        w.start("member").elem("Key", k).elem("Value", v).end();
    }
    w.end();
    Ok(w.finish(&ctx.request_id))
}

fn write_attrs(w: &mut XmlWriter, attrs: &BTreeMap<String, String>) {
    w.start("Attributes");
    for (k, v) in attrs {
        w.start("entry").elem("key", k).elem("value", v).end();
    }
    w.end();
}

/// The policy AWS gives a new topic: its owner may do every topic action.
fn default_policy(arn: &str) -> Value {
    json!({
        "Version": "2008-10-17",
        "Id": "__default_policy_ID",
        "Statement": [{
            "Sid": "__default_statement_ID",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": TOPIC_ACTIONS.iter().map(|a| format!("SNS:{a}")).collect::<Vec<_>>(),
            "Resource": arn,
            "Condition": {"StringEquals": {"AWS:SourceOwner": ACCOUNT_ID}}
        }]
    })
}
