//! SQS Query protocol: translation of Query input into JSON, and of JSON output into Query XML.

use super::*;

/// Translates Query parameters into the JSON input of the same operation.
pub(crate) fn query_to_json(ctx: &RequestCtx, p: &Params) -> JsonBody {
    let mut m = query_scalars(p);
    let attrs = pair_list(p, "Attribute", "Name");
    if !attrs.is_empty() {
        m.insert("Attributes".into(), Value::Object(attrs));
    }
    let tags = pair_list(p, "Tag", "Key");
    if !tags.is_empty() {
        m.insert("tags".into(), Value::Object(tags.clone()));
        m.insert("Tags".into(), Value::Object(tags));
    }
    for (q, j) in [
        ("AttributeName", "AttributeNames"),
        ("MessageAttributeName", "MessageAttributeNames"),
        ("MessageSystemAttributeName", "MessageSystemAttributeNames"),
        ("TagKey", "TagKeys"),
        ("AWSAccountId", "AWSAccountIds"),
        ("ActionName", "Actions"),
    ] {
        let l = p.list(q);
        if !l.is_empty() {
            m.insert(j.into(), json!(l));
        }
    }
    insert_message_attrs(&mut m, p);
    let entry = format!("{}RequestEntry", ctx.op);
    let entries = p.struct_list(&entry);
    if !entries.is_empty() {
        let list: Vec<Value> = entries
            .iter()
            .map(|e| {
                let mut o = query_scalars(e);
                insert_message_attrs(&mut o, e);
                Value::Object(o)
            })
            .collect();
        m.insert("Entries".into(), Value::Array(list));
    }
    JsonBody(m)
}

fn query_scalars(p: &Params) -> Map<String, Value> {
    let mut m = Map::new();
    for k in [
        "QueueUrl",
        "QueueName",
        "QueueNamePrefix",
        "NextToken",
        "MaxResults",
        "MessageBody",
        "DelaySeconds",
        "ReceiptHandle",
        "VisibilityTimeout",
        "WaitTimeSeconds",
        "MaxNumberOfMessages",
        "Id",
        "ReceiveRequestAttemptId",
        "MessageGroupId",
        "MessageDeduplicationId",
        "Label",
    ] {
        if let Some(v) = p.get(k) {
            m.insert(k.into(), json!(v));
        }
    }
    m
}

/// `{name}.N.{key}` / `{name}.N.Value` as a map of strings.
fn pair_list(p: &Params, name: &str, key: &str) -> Map<String, Value> {
    p.struct_list(name)
        .iter()
        .filter_map(|e| Some((e.get(key)?.to_owned(), json!(e.get("Value").unwrap_or("")))))
        .collect()
}

/// The elements of the array `v[k]` (none if it is not an array).
fn array_items<'a>(v: &'a Value, k: &str) -> impl Iterator<Item = &'a Value> {
    v.get(k).and_then(Value::as_array).into_iter().flatten()
}

/// Writes each string member of the object `v[k]` as `<{elem}><{key}>…</{key}><Value>…</Value></{elem}>`.
fn write_pairs(w: &mut XmlWriter, v: &Value, k: &str, elem: &str, key: &str) {
    for (name, value) in v.get(k).and_then(Value::as_object).into_iter().flatten() {
        w.start(elem)
            .elem(key, name)
            .elem("Value", value.as_str().unwrap_or_default())
            .end();
    }
}

/// `MessageAttribute.N.*` and `MessageSystemAttribute.N.*` as the JSON members
/// `MessageAttributes` and `MessageSystemAttributes`.
fn insert_message_attrs(m: &mut Map<String, Value>, p: &Params) {
    for (q, j) in [
        ("MessageAttribute", "MessageAttributes"),
        ("MessageSystemAttribute", "MessageSystemAttributes"),
    ] {
        let attrs = query_message_attrs(p, q);
        if !attrs.is_empty() {
            m.insert(j.into(), Value::Object(attrs));
        }
    }
}

fn query_message_attrs(p: &Params, list: &str) -> Map<String, Value> {
    p.struct_list(list)
        .iter()
        .filter_map(|e| {
            let name = e.get("Name")?.to_owned();
            let v = e.sub("Value");
            let mut o = Map::new();
            for k in ["DataType", "StringValue", "BinaryValue"] {
                if let Some(x) = v.get(k) {
                    o.insert(k.into(), json!(x));
                }
            }
            Some((name, Value::Object(o)))
        })
        .collect()
}

/// Renders the JSON output of an operation as its Query XML response.
pub(crate) fn json_to_xml(ctx: &RequestCtx, out: &Value) -> String {
    let ns = Service::Sqs.xml_namespace();
    let op = ctx.op.as_str();
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let with_result = matches!(
        op,
        "CreateQueue"
            | "GetQueueUrl"
            | "ListQueues"
            | "GetQueueAttributes"
            | "SendMessage"
            | "SendMessageBatch"
            | "ReceiveMessage"
            | "DeleteMessageBatch"
            | "ChangeMessageVisibilityBatch"
            | "ListQueueTags"
            | "ListDeadLetterSourceQueues"
    );
    if with_result && out.as_object().is_some_and(Map::is_empty) {
        // Nothing to report (no message, no queue): `<OpResult/>`, as AWS answers.
        return XmlWriter::empty_result(op, ns, &ctx.request_id);
    }
    let mut w = XmlWriter::response(op, ns, with_result);
    match op {
        "CreateQueue" | "GetQueueUrl" => {
            w.opt("QueueUrl", s(out, "QueueUrl"));
        }
        "ListQueues" | "ListDeadLetterSourceQueues" => {
            let key = if op == "ListQueues" {
                "QueueUrls"
            } else {
                "queueUrls"
            };
            for u in array_items(out, key) {
                w.opt("QueueUrl", u.as_str());
            }
            w.opt("NextToken", s(out, "NextToken"));
        }
        "GetQueueAttributes" => {
            write_pairs(&mut w, out, "Attributes", "Attribute", "Name");
        }
        "ListQueueTags" => {
            write_pairs(&mut w, out, "Tags", "Tag", "Key");
        }
        "SendMessage" => {
            w.opt("MD5OfMessageBody", s(out, "MD5OfMessageBody"));
            w.opt("MD5OfMessageAttributes", s(out, "MD5OfMessageAttributes"));
            w.opt(
                "MD5OfMessageSystemAttributes",
                s(out, "MD5OfMessageSystemAttributes"),
            );
            w.opt("MessageId", s(out, "MessageId"));
        }
        "SendMessageBatch" | "DeleteMessageBatch" | "ChangeMessageVisibilityBatch" => {
            let entry = format!("{op}ResultEntry");
            for e in array_items(out, "Successful") {
                w.start(&entry);
                for k in [
                    "Id",
                    "MessageId",
                    "MD5OfMessageBody",
                    "MD5OfMessageAttributes",
                    "MD5OfMessageSystemAttributes",
                ] {
                    w.opt(k, s(e, k));
                }
                w.end();
            }
            for e in array_items(out, "Failed") {
                w.start("BatchResultErrorEntry");
                w.opt("Id", s(e, "Id"));
                w.elem(
                    "SenderFault",
                    e.get("SenderFault")
                        .and_then(Value::as_bool)
                        .unwrap_or(true),
                );
                w.opt("Code", s(e, "Code"));
                w.opt("Message", s(e, "Message"));
                w.end();
            }
        }
        "ReceiveMessage" => {
            for m in array_items(out, "Messages") {
                w.start("Message");
                for k in ["MessageId", "ReceiptHandle", "MD5OfBody", "Body"] {
                    w.opt(k, s(m, k));
                }
                write_pairs(&mut w, m, "Attributes", "Attribute", "Name");
                w.opt("MD5OfMessageAttributes", s(m, "MD5OfMessageAttributes"));
                for (k, v) in m
                    .get("MessageAttributes")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                {
                    w.start("MessageAttribute").elem("Name", k).start("Value");
                    w.opt("StringValue", s(v, "StringValue"));
                    w.opt("BinaryValue", s(v, "BinaryValue"));
                    w.opt("DataType", s(v, "DataType"));
                    w.end().end();
                }
                w.end();
            }
        }
        _ => {}
    }
    w.finish(&ctx.request_id)
}
