//! The SQS operations, both protocols, and `handle`, which dispatches them.

use std::time::Duration;

use super::*;

type R = Result<Value, AwsError>;

pub(crate) async fn handle(
    sb: &Sandbox,
    ctx: &RequestCtx,
    input: Input,
) -> Result<Reply, AwsError> {
    match input {
        Input::Json(body) => run(sb, ctx, body).await.map(Reply::Json),
        Input::Query(params) => {
            let body = query_to_json(ctx, &params);
            let out = run(sb, ctx, body).await?;
            Ok(Reply::Xml(json_to_xml(ctx, &out)))
        }
    }
}

async fn run(sb: &Sandbox, ctx: &RequestCtx, b: JsonBody) -> R {
    if ctx.op == "ReceiveMessage" {
        return receive_message(sb, ctx, &b).await;
    }
    let mut w = sb.lock();
    let world = &mut *w;
    match ctx.op.as_str() {
        "CreateQueue" => create_queue(world, ctx, &b),
        "DeleteQueue" => delete_queue(world, ctx, &b),
        "GetQueueUrl" => get_queue_url(world, ctx, &b),
        "ListQueues" => list_queues(world, ctx, &b),
        "GetQueueAttributes" => get_queue_attributes(world, ctx, &b),
        "SetQueueAttributes" => set_queue_attributes(world, ctx, &b),
        "SendMessage" => run_single(world, ctx, &b, send_entry),
        "SendMessageBatch" => run_batch(world, ctx, &b, send_entry),
        "DeleteMessage" => run_single(world, ctx, &b, delete_entry),
        "DeleteMessageBatch" => run_batch(world, ctx, &b, delete_entry),
        "ChangeMessageVisibility" => run_single(world, ctx, &b, change_visibility_entry),
        "ChangeMessageVisibilityBatch" => run_batch(world, ctx, &b, change_visibility_entry),
        "PurgeQueue" => purge_queue(world, ctx, &b),
        "TagQueue" => tag_queue(world, ctx, &b),
        "UntagQueue" => untag_queue(world, ctx, &b),
        "ListQueueTags" => list_queue_tags(world, ctx, &b),
        "ListDeadLetterSourceQueues" => list_dead_letter_source_queues(world, ctx, &b),
        op => Err(AwsError::unknown_operation(Service::Sqs, op)),
    }
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
    for (k, v) in attrs {
        q.attrs.insert(k, v);
    }
    q.modified = now;
    Ok(json!({}))
}

/// Sends one message (`SendMessage`, or an entry of `SendMessageBatch`).
fn send_entry(world: &mut World, region: &str, name: &str, e: &JsonBody) -> R {
    let (body, attrs, delay) = message_input(e)?;
    enqueue(world, region, name, body, attrs, delay).map(|m| send_result(&m))
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

fn purge_queue(world: &mut World, ctx: &RequestCtx, b: &JsonBody) -> R {
    let name = queue_name(ctx, b)?;
    queue_mut(world, &ctx.region, &name)?.messages.clear();
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
    if name.ends_with(".fifo") {
        return Err(invalid_attr_value(
            "FifoQueue",
            "FIFO queues are not supported by the lifehook sandbox.",
        ));
    }
    let attrs = str_map(b, "Attributes")?;
    validate_attrs(&attrs)?;
    let tags = str_map(b, "tags")?;
    let now = world.now;
    let sqs = &mut world.region(&ctx.region).sqs;
    if let Some(q) = sqs.queues.get(name) {
        let same = attrs
            .iter()
            .all(|(k, v)| q.attrs.get(k).map(String::as_str).unwrap_or_default() == v.as_str());
        if !same {
            return Err(AwsError::new(
                400,
                "QueueNameExists",
                "A queue already exists with the same name and a different value for attribute(s)",
            )
            .with_query_code("QueueAlreadyExists"));
        }
    } else {
        sqs.queues.insert(
            name.to_owned(),
            Queue {
                name: name.to_owned(),
                created: now,
                modified: now,
                attrs,
                messages: VecDeque::new(),
                expiry_floor: Millis::MAX,
                notify: Arc::new(Notify::new()),
                tags,
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
    let mut out = json!({
        "QueueUrls": page.iter().map(|n| queue_url(&ctx.host, n)).collect::<Vec<_>>()
    });
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
    Ok(json!({ "Attributes": attrs }))
}

/// (body, attributes, delay) of a SendMessage request or batch entry.
#[allow(clippy::type_complexity)]
fn message_input(
    b: &JsonBody,
) -> Result<(String, BTreeMap<String, MessageAttr>, Option<u64>), AwsError> {
    let body = required_str(b, "MessageBody")?;
    if body.is_empty() {
        return Err(missing("MessageBody"));
    }
    if let Some(c) = body.chars().find(|c| {
        !matches!(*c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
    }) {
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
    let attrs = message_attrs(b.object("MessageAttributes")?)?;
    Ok((body.to_owned(), attrs, delay))
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
fn run_single(world: &mut World, ctx: &RequestCtx, b: &JsonBody, each: EntryOp) -> R {
    let name = queue_name(ctx, b)?;
    each(world, &ctx.region, &name, b)
}

/// One message operation on a queue (`world`, region, queue name, request or batch entry).
type EntryOp = fn(&mut World, &str, &str, &JsonBody) -> R;

/// Runs a batch request on its queue entry by entry: `Successful` holds what `each` returns
/// for an entry, with the entry's `Id`; `Failed` each failed entry's error.
fn run_batch(world: &mut World, ctx: &RequestCtx, b: &JsonBody, each: EntryOp) -> R {
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
    Ok(json!({"Successful": ok, "Failed": failed}))
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
                return Ok(json!({ "Messages": got }));
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
            return Ok(json!({ "Messages": got }));
        }
    }
}
