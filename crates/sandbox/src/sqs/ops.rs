//! The SQS operations, both protocols, and `handle`, which dispatches them.

use std::time::Duration;

use super::*;

type R = Result<Value, AwsError>;

/// Answers an SQS request. `trace_header` is the request's `X-Amzn-Trace-Id`, which a sent
/// message keeps as its `AWSTraceHeader` system attribute (Amazon SQS Developer Guide,
/// "AWS X-Ray": SQS takes the trace header from the HTTP header or from
/// `MessageSystemAttributes`; the attribute wins).
pub(crate) async fn handle(
    sb: &Sandbox,
    ctx: &RequestCtx,
    input: Input,
    trace_header: Option<&str>,
) -> Result<Reply, AwsError> {
    match input {
        Input::Json(body) => run(sb, ctx, body, trace_header).await.map(Reply::Json),
        Input::Query(params) => {
            let body = query_to_json(ctx, &params);
            let out = run(sb, ctx, body, trace_header)
                .await
                .map_err(query_wording)?;
            Ok(Reply::Xml(json_to_xml(ctx, &out)))
        }
    }
}

/// Errors worded as the Query protocol words them: a missing queue "does not exist for
/// this wsdl version" there (recorded AWS answer), but not in JSON.
fn query_wording(mut e: AwsError) -> AwsError {
    if e.code == "QueueDoesNotExist" {
        e.message = "The specified queue does not exist for this wsdl version.".into();
    }
    e
}

/// `InvalidAction` as SQS words it.
fn not_valid_here(op: &str) -> AwsError {
    AwsError::new(
        400,
        "InvalidAction",
        format!("The action {op} is not valid for this endpoint."),
    )
}

/// Whether a Query request was sent to a queue URL (`/<account>/<queue>`) rather than to
/// the service endpoint.
fn to_queue_url(ctx: &RequestCtx) -> bool {
    matches!(ctx.wire, crate::protocol::Wire::Query)
        && ctx.path.trim_matches('/').split('/').count() == 2
}

async fn run(sb: &Sandbox, ctx: &RequestCtx, b: JsonBody, trace_header: Option<&str>) -> R {
    // A queue URL accepts the queue's own actions only (recorded AWS answers: CreateQueue
    // and ListQueues sent to a queue URL are "not valid for this endpoint").
    if to_queue_url(ctx) && matches!(ctx.op.as_str(), "CreateQueue" | "ListQueues") {
        return Err(not_valid_here(&ctx.op));
    }
    if ctx.op == "ReceiveMessage" {
        return receive_message(sb, ctx, &b).await;
    }
    let mut w = sb.lock();
    let world = &mut *w;
    let send = |world: &mut World, region: &str, name: &str, e: &JsonBody| {
        send_entry(world, region, name, e, trace_header)
    };
    match ctx.op.as_str() {
        "CreateQueue" => create_queue(world, ctx, &b),
        "DeleteQueue" => delete_queue(world, ctx, &b),
        "GetQueueUrl" => get_queue_url(world, ctx, &b),
        "ListQueues" => list_queues(world, ctx, &b),
        "GetQueueAttributes" => get_queue_attributes(world, ctx, &b),
        "SetQueueAttributes" => set_queue_attributes(world, ctx, &b),
        "SendMessage" => run_single(world, ctx, &b, &send),
        "SendMessageBatch" => {
            check_batch_size(&b)?;
            // An entry over the queue's MaximumMessageSize "cannot be validated" in a
            // batch, where a single send "is invalid" (recorded AWS answers).
            let send_in_batch = |world: &mut World, region: &str, name: &str, e: &JsonBody| {
                send(world, region, name, e).map_err(|mut err| {
                    if let Some(rest) = err.message.strip_prefix(TOO_LONG_SINGLE) {
                        err.message = format!("{TOO_LONG_IN_BATCH}{rest}");
                    }
                    err
                })
            };
            run_batch(world, ctx, &b, &send_in_batch)
        }
        "DeleteMessage" => run_single(world, ctx, &b, &delete_entry),
        "DeleteMessageBatch" => run_batch(world, ctx, &b, &delete_entry),
        "ChangeMessageVisibility" => run_single(world, ctx, &b, &change_visibility_entry),
        "ChangeMessageVisibilityBatch" => run_batch(world, ctx, &b, &change_visibility_entry),
        "PurgeQueue" => purge_queue(world, ctx, &b),
        "TagQueue" => tag_queue(world, ctx, &b),
        "UntagQueue" => untag_queue(world, ctx, &b),
        "ListQueueTags" => list_queue_tags(world, ctx, &b),
        "ListDeadLetterSourceQueues" => list_dead_letter_source_queues(world, ctx, &b),
        "AddPermission" => add_permission(world, ctx, &b),
        "RemovePermission" => remove_permission(world, ctx, &b),
        op => Err(not_valid_here(op)),
    }
}

/// The `Version`, `Id` and statement layout AWS gives the policy `AddPermission` writes
/// (recorded answer: `"Id": "<queue arn>/SQSDefaultPolicy"`, one statement per label,
/// principals `arn:aws:iam::<account>:root`, actions `SQS:<action>`, a single value as a
/// string and several as a list).
fn add_permission(world: &mut World, ctx: &RequestCtx, b: &JsonBody) -> R {
    let name = queue_name(ctx, b)?;
    let label = required_str(b, "Label")?.to_owned();
    let accounts = b.str_list("AWSAccountIds")?;
    let actions = b.str_list("Actions")?;
    if accounts.is_empty() {
        return Err(missing("AWSAccountIds"));
    }
    if actions.is_empty() {
        return Err(missing("Actions"));
    }
    let arn = queue_arn(&ctx.region, &name);
    let now = world.now;
    let q = queue_mut(world, &ctx.region, &name)?;
    let mut policy = policy_of(q).unwrap_or_else(|| {
        let mut m = Map::new();
        m.insert("Version".into(), json!("2008-10-17"));
        m.insert("Id".into(), json!(format!("{arn}/SQSDefaultPolicy")));
        m
    });
    let mut statements = take_statements(&mut policy);
    if statements
        .iter()
        .any(|s| s.get("Sid").and_then(Value::as_str) == Some(label.as_str()))
    {
        return Err(invalid_param("Label", &label, "Already exists."));
    }
    let one_or_many = |v: Vec<String>| {
        if v.len() == 1 { json!(v[0]) } else { json!(v) }
    };
    statements.push(json!({
        "Sid": label,
        "Effect": "Allow",
        "Principal": {"AWS": one_or_many(
            accounts.iter().map(|a| format!("arn:aws:iam::{a}:root")).collect())},
        "Action": one_or_many(actions.iter().map(|a| format!("SQS:{a}")).collect()),
        "Resource": arn,
    }));
    policy.insert("Statement".into(), Value::Array(statements));
    q.attrs
        .insert("Policy".into(), Value::Object(policy).to_string());
    q.modified = now;
    Ok(json!({}))
}

fn remove_permission(world: &mut World, ctx: &RequestCtx, b: &JsonBody) -> R {
    let name = queue_name(ctx, b)?;
    let label = required_str(b, "Label")?.to_owned();
    let now = world.now;
    let q = queue_mut(world, &ctx.region, &name)?;
    let mut policy = policy_of(q).unwrap_or_default();
    let mut statements = take_statements(&mut policy);
    let before = statements.len();
    statements.retain(|s| s.get("Sid").and_then(Value::as_str) != Some(label.as_str()));
    if statements.len() == before {
        return Err(invalid_param("Label", &label, "can't find label."));
    }
    if statements.is_empty() {
        // The last statement removed: the queue has no policy any more.
        q.attrs.remove("Policy");
    } else {
        policy.insert("Statement".into(), Value::Array(statements));
        q.attrs
            .insert("Policy".into(), Value::Object(policy).to_string());
    }
    q.modified = now;
    Ok(json!({}))
}

/// Takes the statements out of a policy document (an object) as a list: a single statement
/// object is a list of one.
fn take_statements(policy: &mut Map<String, Value>) -> Vec<Value> {
    match policy.remove("Statement") {
        Some(Value::Array(a)) => a,
        Some(Value::Null) | None => Vec::new(),
        Some(one) => vec![one],
    }
}

/// The queue's policy document, or an empty one.
fn policy_of(q: &Queue) -> Option<Map<String, Value>> {
    q.attrs
        .get("Policy")
        .and_then(|p| serde_json::from_str::<Value>(p).ok())
        .and_then(|v| match v {
            Value::Object(m) => Some(m),
            _ => None,
        })
}

fn delete_queue(world: &mut World, ctx: &RequestCtx, b: &JsonBody) -> R {
    let name = queue_name(ctx, b)?;
    let sqs = &mut world.region(&ctx.region).sqs;
    let q = sqs.queues.remove(&name).ok_or_else(no_queue)?;
    q.notify.notify_waiters();
    Ok(json!({}))
}

fn get_queue_url(world: &mut World, ctx: &RequestCtx, b: &JsonBody) -> R {
    let name = required_str(b, "QueueName")?;
    if !world.region(&ctx.region).sqs.queues.contains_key(name) {
        return Err(no_queue());
    }
    Ok(json!({"QueueUrl": queue_url(&ctx.host, name)}))
}

fn set_queue_attributes(world: &mut World, ctx: &RequestCtx, b: &JsonBody) -> R {
    let name = queue_name(ctx, b)?;
    let attrs = str_map(b, "Attributes")?;
    validate_attrs(&attrs)?;
    let now = world.now;
    let q = queue_mut(world, &ctx.region, &name)?;
    store_attrs(&mut q.attrs, attrs);
    q.modified = now;
    Ok(json!({}))
}

/// Stores validated attributes. Setting a KMS key turns SSE-SQS off unless the request
/// says otherwise: the two kinds of encryption exclude each other (Amazon SQS Developer
/// Guide, "Encryption at rest"; recorded AWS answer: `SqsManagedSseEnabled` `false` once
/// `KmsMasterKeyId` is set).
fn store_attrs(stored: &mut BTreeMap<String, String>, attrs: BTreeMap<String, String>) {
    let kms_on = attrs.get("KmsMasterKeyId").is_some_and(|k| !k.is_empty());
    if kms_on && !attrs.contains_key("SqsManagedSseEnabled") {
        stored.insert("SqsManagedSseEnabled".into(), "false".into());
    }
    stored.extend(attrs);
}

/// Sends one message (`SendMessage`, or an entry of `SendMessageBatch`).
fn send_entry(
    world: &mut World,
    region: &str,
    name: &str,
    e: &JsonBody,
    trace_header: Option<&str>,
) -> R {
    let input = message_input(e)?;
    let mut opts = input.opts;
    if opts.trace_header.is_none() {
        opts.trace_header = trace_header.map(str::to_owned);
    }
    let m = enqueue(world, region, name, input.body, input.attrs, opts)?;
    let mut r = send_result(&m);
    if let Some(md5) = input.md5_system {
        r["MD5OfMessageSystemAttributes"] = json!(md5);
    }
    Ok(r)
}

/// Deletes one message (`DeleteMessage`, or an entry of `DeleteMessageBatch`).
fn delete_entry(world: &mut World, region: &str, name: &str, e: &JsonBody) -> R {
    let h = required_str(e, "ReceiptHandle")?;
    delete_message(world, region, name, h).map(|()| json!({}))
}

/// Changes one message's visibility (`ChangeMessageVisibility`, or an entry of
/// `ChangeMessageVisibilityBatch`).
fn change_visibility_entry(world: &mut World, region: &str, name: &str, e: &JsonBody) -> R {
    let h = required_str(e, "ReceiptHandle")?;
    let vt = required_int(e, "VisibilityTimeout")?;
    change_visibility(world, region, name, h, vt).map(|()| json!({}))
}

/// AWS allows one purge of a queue every 60 seconds (PurgeQueue API reference); the next
/// one is refused with 403 `PurgeQueueInProgress`, worded as AWS words it.
const PURGE_INTERVAL_MS: Millis = 60_000;

fn purge_queue(world: &mut World, ctx: &RequestCtx, b: &JsonBody) -> R {
    let name = queue_name(ctx, b)?;
    let now = world.now;
    let q = queue_mut(world, &ctx.region, &name)?;
    if q.last_purge
        .is_some_and(|t| now.saturating_sub(t) < PURGE_INTERVAL_MS)
    {
        return Err(AwsError::new(
            403,
            "PurgeQueueInProgress",
            format!("Only one PurgeQueue operation on {name} is allowed every 60 seconds."),
        )
        .with_query_code("AWS.SimpleQueueService.PurgeQueueInProgress"));
    }
    q.last_purge = Some(now);
    q.messages.clear();
    Ok(json!({}))
}

fn tag_queue(world: &mut World, ctx: &RequestCtx, b: &JsonBody) -> R {
    let name = queue_name(ctx, b)?;
    let tags = str_map(b, "Tags")?;
    queue_mut(world, &ctx.region, &name)?.tags.extend(tags);
    Ok(json!({}))
}

fn untag_queue(world: &mut World, ctx: &RequestCtx, b: &JsonBody) -> R {
    let name = queue_name(ctx, b)?;
    let keys = b.str_list("TagKeys")?;
    let q = queue_mut(world, &ctx.region, &name)?;
    for k in keys {
        q.tags.remove(&k);
    }
    Ok(json!({}))
}

fn list_queue_tags(world: &mut World, ctx: &RequestCtx, b: &JsonBody) -> R {
    let name = queue_name(ctx, b)?;
    let q = queue_mut(world, &ctx.region, &name)?;
    // AWS omits empty lists and maps from its JSON answers (a queue without tags answers
    // `{}`), and the Query answer then has no `<Tag>`.
    if q.tags.is_empty() {
        return Ok(json!({}));
    }
    Ok(json!({"Tags": q.tags}))
}

fn list_dead_letter_source_queues(world: &mut World, ctx: &RequestCtx, b: &JsonBody) -> R {
    let name = queue_name(ctx, b)?;
    let arn = queue_arn(&ctx.region, &name);
    let sqs = &world.region(&ctx.region).sqs;
    if !sqs.queues.contains_key(&name) {
        return Err(no_queue());
    }
    let urls: Vec<String> = sqs
        .queues
        .values()
        .filter(|q| q.redrive().is_some_and(|r| r.dead_letter_arn == arn))
        .map(|q| queue_url(&ctx.host, &q.name))
        .collect();
    Ok(json!({"queueUrls": urls}))
}

/// The queue a request addresses: `QueueUrl`, else (Query) the request path.
fn queue_name(ctx: &RequestCtx, b: &JsonBody) -> Result<String, AwsError> {
    let url = match b.str("QueueUrl")? {
        Some(u) => u.to_owned(),
        None if ctx.path.len() > 1 => ctx.path.clone(),
        None => return Err(missing("QueueUrl")),
    };
    name_from_url(&url).map(str::to_owned).ok_or_else(no_queue)
}

fn str_map(b: &JsonBody, k: &str) -> Result<BTreeMap<String, String>, AwsError> {
    let mut out = BTreeMap::new();
    if let Some(m) = b.object(k)? {
        for (name, v) in m {
            let v = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(x) => x.to_string(),
                _ => {
                    return Err(invalid(format!(
                        "The value of {k}.{name} must be a string."
                    )));
                }
            };
            out.insert(name.clone(), v);
        }
    }
    Ok(out)
}

fn create_queue(world: &mut World, ctx: &RequestCtx, b: &JsonBody) -> R {
    let name = required_str(b, "QueueName")?;
    if !valid_queue_name(name) {
        return Err(invalid(
            "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length",
        ));
    }
    let attrs = str_map(b, "Attributes")?;
    if name.ends_with(".fifo") {
        // FIFO queues are out of the sandbox's scope; without `FifoQueue=true` the name is
        // wrong for a standard queue, as AWS says.
        if attrs.get("FifoQueue").is_some_and(|v| v == "true") {
            return Err(invalid_attr_value(
                "FifoQueue",
                "FIFO queues are not supported by the lifehook sandbox.",
            ));
        }
        return Err(invalid(
            "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length. The name of a FIFO queue must end with the .fifo suffix, and a queue with that suffix must be created with the FifoQueue attribute set to true.",
        ));
    }
    validate_attrs(&attrs)?;
    let tags = str_map(b, "tags")?;
    let now = world.now;
    let region = ctx.region.clone();
    let sqs = &mut world.region(&ctx.region).sqs;
    if let Some(q) = sqs.queues.get(name) {
        // Compared with the queue's effective values (an explicit default equals an
        // omitted one); AWS names the first attribute that differs.
        if let Some((k, _)) = attrs
            .iter()
            .find(|(k, v)| q.attribute(&region, k, now).unwrap_or_default() != **v)
        {
            return Err(AwsError::new(
                400,
                "QueueNameExists",
                format!(
                    "A queue already exists with the same name and a different value for attribute {k}"
                ),
            )
            .with_query_code("QueueAlreadyExists"));
        }
    } else {
        let mut stored = BTreeMap::new();
        store_attrs(&mut stored, attrs);
        sqs.queues.insert(
            name.to_owned(),
            Queue {
                name: name.to_owned(),
                created: now,
                modified: now,
                attrs: stored,
                messages: VecDeque::new(),
                expiry_floor: Millis::MAX,
                notify: Arc::new(Notify::new()),
                tags,
                last_purge: None,
            },
        );
    }
    Ok(json!({"QueueUrl": queue_url(&ctx.host, name)}))
}

fn list_queues(world: &mut World, ctx: &RequestCtx, b: &JsonBody) -> R {
    let prefix = b.str("QueueNamePrefix")?.unwrap_or("");
    let max = b.int("MaxResults")?;
    if let Some(m) = max
        && !(1..=1000).contains(&m)
    {
        return Err(invalid("MaxResults must be between 1 and 1000."));
    }
    let after = b.str("NextToken")?.map(str::to_owned);
    let names: Vec<String> = world
        .region(&ctx.region)
        .sqs
        .queues
        .keys()
        .filter(|n| n.starts_with(prefix))
        .filter(|n| after.as_ref().is_none_or(|a| n.as_str() > a.as_str()))
        .cloned()
        .collect();
    let limit = max.map(|m| m as usize).unwrap_or(1000);
    let page: Vec<&String> = names.iter().take(limit).collect();
    let mut out = json!({});
    // No queue: AWS leaves `QueueUrls` out.
    if !page.is_empty() {
        out["QueueUrls"] = json!(
            page.iter()
                .map(|n| queue_url(&ctx.host, n))
                .collect::<Vec<_>>()
        );
    }
    if max.is_some()
        && names.len() > limit
        && let Some(last) = page.last()
    {
        out["NextToken"] = json!(last);
    }
    Ok(out)
}

fn get_queue_attributes(world: &mut World, ctx: &RequestCtx, b: &JsonBody) -> R {
    let name = queue_name(ctx, b)?;
    let mut wanted = b.str_list("AttributeNames")?;
    let now = world.now;
    let q = queue_mut(world, &ctx.region, &name)?;
    if wanted.is_empty() {
        return Ok(json!({}));
    }
    if wanted.iter().any(|n| n == "All") {
        wanted = READ_ONLY
            .iter()
            .chain(SETTABLE)
            .map(|s| s.to_string())
            .collect();
        wanted.push("SqsManagedSseEnabled".into());
    } else if let Some(bad) = wanted
        .iter()
        .find(|n| !READ_ONLY.contains(&n.as_str()) && !SETTABLE.contains(&n.as_str()))
    {
        return Err(invalid_attr_name(bad));
    }
    let mut attrs = Map::new();
    for n in wanted {
        if let Some(v) = q.attribute(&ctx.region, &n, now) {
            attrs.insert(n, json!(v));
        }
    }
    // Nothing to report (e.g. `Policy` of a queue without one): AWS leaves `Attributes` out.
    if attrs.is_empty() {
        return Ok(json!({}));
    }
    Ok(json!({ "Attributes": attrs }))
}

/// What a SendMessage request or batch entry asks to send.
struct MessageInput {
    body: String,
    attrs: BTreeMap<String, MessageAttr>,
    opts: SendOptions,
    /// `MD5OfMessageSystemAttributes`, when system attributes were sent.
    md5_system: Option<String>,
}

/// `MessageGroupId` on a standard queue ("fair queues"): 1–128 characters, letters,
/// digits and punctuation (SendMessage API reference; recorded AWS answers for an empty,
/// a 129-character and a spaced id).
fn check_group_id(v: &str) -> Result<(), AwsError> {
    let ok = (1..=128).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(invalid_param(
            "MessageGroupId",
            v,
            "MessageGroupId can only include alphanumeric and punctuation characters. 1 to 128 in length.",
        ))
    }
}

fn message_input(b: &JsonBody) -> Result<MessageInput, AwsError> {
    let body = required_str(b, "MessageBody")?;
    if body.is_empty() {
        return Err(missing("MessageBody"));
    }
    if let Some(c) = body.chars().find(|c| !valid_message_char(*c)) {
        return Err(AwsError::new(
            400,
            "InvalidMessageContents",
            format!(
                "Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF (found U+{:04X})",
                c as u32
            ),
        ));
    }
    let delay = match b.int("DelaySeconds")? {
        None => None,
        Some(d) if (0..=900).contains(&d) => Some(d as u64),
        Some(d) => {
            return Err(invalid(format!(
                "Value {d} for parameter DelaySeconds is invalid. Reason: DelaySeconds must be >= 0 and <= 900."
            )));
        }
    };
    let group_id = b.str("MessageGroupId")?.map(str::to_owned);
    if let Some(g) = &group_id {
        check_group_id(g)?;
    }
    // Deduplication is a FIFO feature: a standard queue refuses the parameter, as a FIFO
    // queue refuses a per-message DelaySeconds (recorded AWS answer: "The request include
    // parameter that is not valid for this queue type.").
    if let Some(d) = b.str("MessageDeduplicationId")? {
        return Err(invalid_param(
            "MessageDeduplicationId",
            d,
            "The request include parameter that is not valid for this queue type.",
        ));
    }
    let attrs = message_attrs(b.object("MessageAttributes")?)?;
    let (trace_header, md5_system) = system_attrs(b.object("MessageSystemAttributes")?)?;
    Ok(MessageInput {
        body: body.to_owned(),
        attrs,
        opts: SendOptions {
            delay,
            trace_header,
            group_id,
        },
        md5_system,
    })
}

fn send_result(m: &Message) -> Value {
    let mut r = json!({"MessageId": m.id, "MD5OfMessageBody": m.md5_body});
    if let Some(a) = &m.md5_attrs {
        r["MD5OfMessageAttributes"] = json!(a);
    }
    r
}

fn batch_entries(b: &JsonBody) -> Result<Vec<(String, JsonBody)>, AwsError> {
    let entries = b.array("Entries")?;
    if entries.is_empty() {
        return Err(AwsError::new(
            400,
            "EmptyBatchRequest",
            "There should be at least one SendMessageBatchRequestEntry in the request.",
        )
        .with_query_code("AWS.SimpleQueueService.EmptyBatchRequest"));
    }
    if entries.len() > 10 {
        return Err(AwsError::new(
            400,
            "TooManyEntriesInBatchRequest",
            format!(
                "Maximum number of entries per request are 10. You have sent {}.",
                entries.len()
            ),
        )
        .with_query_code("AWS.SimpleQueueService.TooManyEntriesInBatchRequest"));
    }
    let mut out: Vec<(String, JsonBody)> = Vec::new();
    for e in entries {
        let Value::Object(m) = e else {
            return Err(invalid("Each batch entry must be an object."));
        };
        let e = JsonBody(m.clone());
        let id = required_str(&e, "Id")?.to_owned();
        if id.is_empty()
            || id.len() > 80
            || !id
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        {
            return Err(AwsError::new(
                400,
                "InvalidBatchEntryId",
                "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.",
            )
            .with_query_code("AWS.SimpleQueueService.InvalidBatchEntryId"));
        }
        if out.iter().any(|(x, _)| *x == id) {
            return Err(AwsError::new(
                400,
                "BatchEntryIdsNotDistinct",
                format!("Id {id} repeated."),
            )
            .with_query_code("AWS.SimpleQueueService.BatchEntryIdsNotDistinct"));
        }
        out.push((id, e));
    }
    Ok(out)
}

/// Runs a single-message request on the queue it addresses.
fn run_single(world: &mut World, ctx: &RequestCtx, b: &JsonBody, each: EntryOp<'_>) -> R {
    let name = queue_name(ctx, b)?;
    each(world, &ctx.region, &name, b)
}

/// One message operation on a queue (`world`, region, queue name, request or batch entry).
type EntryOp<'a> = &'a dyn Fn(&mut World, &str, &str, &JsonBody) -> R;

/// The most a `SendMessageBatch` may carry in all, bodies and attributes together
/// (SendMessageBatch API reference: "The maximum allowed individual message size and the
/// maximum total payload size (the sum of the individual lengths of all of the batched
/// messages) are both 1 MiB").
const MAX_BATCH_BYTES: usize = 1_048_576;

/// Refuses a `SendMessageBatch` whose messages add up to more than [`MAX_BATCH_BYTES`],
/// worded as AWS words it.
fn check_batch_size(b: &JsonBody) -> Result<(), AwsError> {
    let mut total = 0;
    for e in b.array("Entries")? {
        let Value::Object(m) = e else { continue };
        let e = JsonBody(m.clone());
        let body = e.str("MessageBody")?.unwrap_or_default();
        let attrs = message_attrs(e.object("MessageAttributes")?)?;
        total += message_size(body, &attrs);
    }
    if total > MAX_BATCH_BYTES {
        return Err(AwsError::new(
            400,
            "BatchRequestTooLong",
            format!(
                "Batch requests cannot be longer than {MAX_BATCH_BYTES} bytes. You have sent {total} bytes."
            ),
        )
        .with_query_code("AWS.SimpleQueueService.BatchRequestTooLong"));
    }
    Ok(())
}

/// Runs a batch request on its queue entry by entry: `Successful` holds what `each` returns
/// for an entry, with the entry's `Id`; `Failed` each failed entry's error (left out when
/// none failed, as AWS leaves it out).
fn run_batch(world: &mut World, ctx: &RequestCtx, b: &JsonBody, each: EntryOp<'_>) -> R {
    let name = queue_name(ctx, b)?;
    queue_mut(world, &ctx.region, &name)?;
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for (id, e) in batch_entries(b)? {
        match each(world, &ctx.region, &name, &e) {
            Ok(mut r) => {
                r["Id"] = json!(id);
                ok.push(r);
            }
            Err(e) => failed.push(batch_error(&id, &e)),
        }
    }
    let mut out = json!({ "Successful": ok });
    if !failed.is_empty() {
        out["Failed"] = json!(failed);
    }
    Ok(out)
}

/// A required string member, SQS's `MissingParameter` if absent.
fn required_str<'a>(b: &'a JsonBody, k: &str) -> Result<&'a str, AwsError> {
    b.str(k)?.ok_or_else(|| missing(k))
}

/// A required integer member, SQS's `MissingParameter` if absent.
fn required_int(b: &JsonBody, k: &str) -> Result<i64, AwsError> {
    b.int(k)?.ok_or_else(|| missing(k))
}

fn batch_error(id: &str, e: &AwsError) -> Value {
    json!({
        "Id": id,
        "SenderFault": e.status < 500,
        "Code": e.query_code.as_deref().unwrap_or(&e.code),
        "Message": e.message,
    })
}

fn receive_args(ctx: &RequestCtx, b: &JsonBody) -> Result<(ReceiveArgs, Option<i64>), AwsError> {
    let name = queue_name(ctx, b)?;
    let max = b.int("MaxNumberOfMessages")?.unwrap_or(1);
    if !(1..=10).contains(&max) {
        return Err(invalid(format!(
            "Value {max} for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided."
        )));
    }
    let visibility = match b.int("VisibilityTimeout")? {
        None => None,
        Some(v) if (0..=43_200).contains(&v) => Some(v as u64),
        Some(v) => {
            return Err(invalid(format!(
                "Value {v} for parameter VisibilityTimeout is invalid. Reason: Must be between 0 and 43200, if provided."
            )));
        }
    };
    let wait = b.int("WaitTimeSeconds")?;
    if let Some(w) = wait
        && !(0..=MAX_WAIT_SECONDS).contains(&w)
    {
        return Err(invalid(format!(
            "Value {w} for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20, if provided."
        )));
    }
    let mut system_attrs = b.str_list("AttributeNames")?;
    system_attrs.extend(b.str_list("MessageSystemAttributeNames")?);
    Ok((
        ReceiveArgs {
            name,
            max: max as usize,
            visibility,
            wait: 0,
            system_attrs,
            message_attrs: b.str_list("MessageAttributeNames")?,
        },
        wait,
    ))
}

async fn receive_message(sb: &Sandbox, ctx: &RequestCtx, b: &JsonBody) -> R {
    let (mut args, wait) = receive_args(ctx, b)?;
    let (start, queue_wait) = {
        let mut w = sb.lock();
        let now = w.now;
        let q = queue_mut(&mut w, &ctx.region, &args.name)?;
        (now, q.attr_u64("ReceiveMessageWaitTimeSeconds", 0))
    };
    args.wait = wait.map(|w| w as u64).unwrap_or(queue_wait);
    let virtual_deadline = start + args.wait * 1000;
    // Real-time bound: the wait at the clock's rate, never longer than the wait itself.
    let rate = sb.clock.mode().rate().unwrap_or(1.0).max(1.0);
    let real_deadline =
        tokio::time::Instant::now() + Duration::from_secs_f64(args.wait as f64 / rate);
    let mut deadline_scheduled = false;
    loop {
        let notify = {
            let mut w = sb.lock();
            queue_mut(&mut w, &ctx.region, &args.name)?.notify.clone()
        };
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        {
            let mut w = sb.lock();
            let got = take_messages(&mut w, &ctx.region, &args)?;
            if !got.is_empty() || args.wait == 0 || w.now >= virtual_deadline {
                return Ok(received(got));
            }
            if !deadline_scheduled {
                // Wakes this poll when virtual time (e.g. a manual advance) passes its end.
                w.schedule(
                    virtual_deadline,
                    &ctx.region,
                    WorldTimer::Sqs(Timer::Wake {
                        queue: args.name.clone(),
                    }),
                );
                deadline_scheduled = true;
                sb.poke();
            }
        }
        if tokio::time::timeout_at(real_deadline, notified)
            .await
            .is_err()
        {
            let mut w = sb.lock();
            let got = take_messages(&mut w, &ctx.region, &args)?;
            return Ok(received(got));
        }
    }
}

/// A ReceiveMessage answer: AWS leaves `Messages` out when there are none.
fn received(messages: Vec<Value>) -> Value {
    if messages.is_empty() {
        json!({})
    } else {
        json!({ "Messages": messages })
    }
}
