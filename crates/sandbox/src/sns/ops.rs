//! The SNS operations: `handle`, its dispatch, and one function per operation.

use super::*;

type R = Result<String, AwsError>;

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
        "Subscribe" => subscribe(world, ctx, p),
        "Unsubscribe" => unsubscribe(world, ctx, p),
        "SetSubscriptionAttributes" => set_subscription_attributes(world, ctx, p),
        "GetSubscriptionAttributes" => get_subscription_attributes(world, ctx, p),
        "ListSubscriptions" | "ListSubscriptionsByTopic" => list_subscriptions(world, ctx, p),
        "Publish" => publish_op(world, ctx, p),
        "TagResource" => tag_resource(world, ctx, p),
        "UntagResource" => untag_resource(world, ctx, p),
        "ListTagsForResource" => list_tags_for_resource(world, ctx, p),
        other => Err(AwsError::unknown_operation(Service::Sns, other)),
    }
}

fn create_topic(world: &mut World, ctx: &RequestCtx, p: &Params) -> R {
    let region = ctx.region.as_str();
    let mut w = writer(ctx);
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
    let region = ctx.region.as_str();
    let mut w = writer(ctx);
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
    Ok(w.finish(&ctx.request_id))
}

fn set_topic_attributes(world: &mut World, ctx: &RequestCtx, p: &Params) -> R {
    let region = ctx.region.as_str();
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
    empty(ctx)
}

fn subscribe(world: &mut World, ctx: &RequestCtx, p: &Params) -> R {
    let region = ctx.region.as_str();
    let mut w = writer(ctx);
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
    let body_scope = attrs.get("FilterPolicyScope").map(String::as_str) == Some("MessageBody");
    for (k, v) in &attrs {
        // Subscribe words an attribute's error "Attributes Reason: <what
        // SetSubscriptionAttributes says>", as AWS does.
        validate_sub_attr(k, v, body_scope).map_err(|mut e| {
            e.message = e.message.replacen(
                "Invalid parameter: ",
                "Invalid parameter: Attributes Reason: ",
                1,
            );
            e
        })?;
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
    Ok(w.finish(&ctx.request_id))
}

fn unsubscribe(world: &mut World, ctx: &RequestCtx, p: &Params) -> R {
    let region = ctx.region.as_str();
    let arn = p.required("SubscriptionArn")?;
    let subs = &mut world.region(region).sns.subscriptions;
    if subs.remove(arn).is_none() {
        return Err(not_found("Subscription"));
    }
    empty(ctx)
}

fn set_subscription_attributes(world: &mut World, ctx: &RequestCtx, p: &Params) -> R {
    let region = ctx.region.as_str();
    let arn = p.required("SubscriptionArn")?.to_owned();
    let name = p.required("AttributeName")?.to_owned();
    let value = p.get("AttributeValue").unwrap_or("").to_owned();
    let s = world
        .region(region)
        .sns
        .subscriptions
        .get_mut(&arn)
        .ok_or_else(|| not_found("Subscription"))?;
    let body_scope = s.attrs.get("FilterPolicyScope").map(String::as_str) == Some("MessageBody");
    validate_sub_attr(&name, &value, body_scope)?;
    s.attrs.insert(name, value);
    empty(ctx)
}

fn get_subscription_attributes(world: &mut World, ctx: &RequestCtx, p: &Params) -> R {
    let region = ctx.region.as_str();
    let mut w = writer(ctx);
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
    Ok(w.finish(&ctx.request_id))
}

fn list_subscriptions(world: &mut World, ctx: &RequestCtx, p: &Params) -> R {
    let region = ctx.region.as_str();
    let mut w = writer(ctx);
    let topic = if ctx.op == "ListSubscriptionsByTopic" {
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
    Ok(w.finish(&ctx.request_id))
}

fn publish_op(world: &mut World, ctx: &RequestCtx, p: &Params) -> R {
    let region = ctx.region.as_str();
    let mut w = writer(ctx);
    let arn = p
        .get_nonempty("TopicArn")
        .or_else(|| p.get_nonempty("TargetArn"))
        .ok_or_else(|| invalid("TopicArn or TargetArn Reason: no value for required parameter"))?
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
    Ok(w.finish(&ctx.request_id))
}

/// The topic a tagging operation names (`ResourceArn`).
fn tagged_topic<'a>(
    world: &'a mut World,
    ctx: &RequestCtx,
    p: &Params,
) -> Result<&'a mut Topic, AwsError> {
    let arn = p.required("ResourceArn")?.to_owned();
    find_topic(world, &ctx.region, &arn)
        .map_err(|_| AwsError::new(404, "ResourceNotFound", "Resource does not exist"))
}

fn tag_resource(world: &mut World, ctx: &RequestCtx, p: &Params) -> R {
    let t = tagged_topic(world, ctx, p)?;
    for tag in p.struct_list("Tags") {
        if let Some(k) = tag.get("Key") {
            t.tags
                .insert(k.to_owned(), tag.get("Value").unwrap_or("").to_owned());
        }
    }
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
