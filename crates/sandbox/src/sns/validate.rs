//! The checks SNS makes of request values, with the codes and messages AWS answers
//! (as recorded against AWS by LocalStack's validated SNS tests).

use super::*;

/// An ARN in `param`: fewer than six `:`-separated elements is AWS's first complaint.
pub(super) fn arn_elements(param: &str, v: &str) -> Result<(), AwsError> {
    let n = v.split(':').count();
    if n < 6 {
        return Err(invalid(format!(
            "{param} Reason: An ARN must have at least 6 elements, not {n}"
        )));
    }
    Ok(())
}

/// A topic ARN in `param`, of a topic of `region`: a topic of another region cannot be
/// used from this one ("Invalid parameter: TopicArn").
pub(super) fn topic_arn(param: &str, v: &str, region: &str) -> Result<(), AwsError> {
    arn_elements(param, v)?;
    match parse_topic_arn(v) {
        Some((r, _)) if r == region => Ok(()),
        _ => Err(invalid(param)),
    }
}

/// A topic name: 1–256 letters, digits, hyphens and underscores, plus `.fifo` for (and
/// only for) a FIFO topic
/// (<https://docs.aws.amazon.com/sns/latest/api/API_CreateTopic.html>).
pub(super) fn topic_name(name: &str, fifo: bool) -> Result<(), AwsError> {
    let stem = if fifo {
        name.strip_suffix(".fifo")
    } else {
        Some(name)
    };
    match stem {
        Some(s)
            if !name.is_empty()
                && name.len() <= 256
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            Ok(())
        }
        _ => Err(invalid("Topic Name")),
    }
}

/// The topic attributes `CreateTopic` and `SetTopicAttributes` take
/// (<https://docs.aws.amazon.com/sns/latest/api/API_SetTopicAttributes.html>).
pub(super) fn is_topic_attr(name: &str, at_creation: bool) -> bool {
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
        "FifoThroughputScope",
    ];
    SETTABLE.contains(&name)
        || (at_creation && name == "FifoTopic")
        || name.ends_with("FeedbackRoleArn")
        || name.ends_with("SuccessFeedbackSampleRate")
}

/// Checks a subscription attribute and returns the value as SNS stores it (AWS lowers
/// `RawMessageDelivery`), or the reason it is refused.
/// `message_body`: whether the subscription's FilterPolicyScope is (or becomes)
/// MessageBody (a nested filter policy is allowed only then).
pub(super) fn sub_attr(k: &str, v: &str, message_body: bool) -> Result<String, String> {
    match k {
        "RawMessageDelivery" => {
            if v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false") {
                Ok(v.to_ascii_lowercase())
            } else {
                Err(format!(
                    "RawMessageDelivery: Invalid value [{v}]. Must be true or false."
                ))
            }
        }
        "FilterPolicy" => {
            if !v.is_empty() {
                serde_json::from_str::<Value>(v)
                    .map_err(|e| format!("FilterPolicy: failed to parse JSON. {e}"))?;
                pattern::check_filter_policy(v, message_body)?;
            }
            Ok(v.to_owned())
        }
        "FilterPolicyScope" => {
            if v == "MessageAttributes" || v == "MessageBody" {
                Ok(v.to_owned())
            } else {
                Err("FilterPolicyScope: Invalid value [".to_owned()
                    + v
                    + "]. Please use either MessageBody or MessageAttributes")
            }
        }
        "RedrivePolicy" => {
            if v.is_empty() {
                return Ok(String::new());
            }
            let j: Value = serde_json::from_str(v)
                .map_err(|e| format!("RedrivePolicy: failed to parse JSON. {e}"))?;
            match j.get("deadLetterTargetArn").and_then(Value::as_str) {
                Some(arn) if sqs::parse_arn(arn).is_some() => Ok(v.to_owned()),
                _ => Err("RedrivePolicy: deadLetterTargetArn is an invalid arn".into()),
            }
        }
        "DeliveryPolicy" | "SubscriptionRoleArn" | "ReplayPolicy" => Ok(v.to_owned()),
        _ => Err("AttributeName".into()),
    }
}

fn attr_error(message: String) -> AwsError {
    AwsError::new(400, "ParameterValueInvalid", message)
}

/// A message attribute name: under 256 bytes of letters, digits, `-`, `_` and `.`, not
/// starting or ending with a dot nor holding two in a row.
fn attr_name(name: &str) -> Result<(), AwsError> {
    if name.len() >= 256 {
        return Err(attr_error(
            "Length of message attribute name must be less than 256 bytes.".into(),
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(attr_error(format!(
            "Invalid non-alphanumeric character '#x{:X}' was found in the message attribute name. Can only include alphanumeric characters, hyphens, underscores, or dots.",
            u32::from(c)
        )));
    }
    if name.starts_with('.') {
        return Err(attr_error(
            "Invalid message attribute name starting with character '.' was found.".into(),
        ));
    }
    if name.ends_with('.') {
        return Err(attr_error(
            "Invalid message attribute name ending with character '.' was found.".into(),
        ));
    }
    if name.contains("..") {
        return Err(attr_error(
            "Message attribute name can not have successive '.' character.".into(),
        ));
    }
    Ok(())
}

/// `MessageAttributes.entry.N.{Name, Value.DataType, Value.StringValue, Value.BinaryValue}`
/// of `p`, checked as SNS checks them
/// (<https://docs.aws.amazon.com/sns/latest/dg/sns-message-attributes.html>). `path` is
/// where the attributes sit in the request, for the wording of a missing data type
/// (`messageAttributes`, or `publishBatchRequestEntries.N.member.messageAttributes`).
pub(super) fn message_attrs(
    p: &Params,
    path: &str,
) -> Result<BTreeMap<String, MessageAttr>, AwsError> {
    let mut out = BTreeMap::new();
    for e in p.struct_list("MessageAttributes.entry") {
        let Some(name) = e.get("Name") else {
            continue;
        };
        attr_name(name)?;
        let v = e.sub("Value");
        let Some(dt) = v.get("DataType") else {
            return Err(AwsError::validation(format!(
                "1 validation error detected: Value null at '{path}.{name}.member.dataType' failed to satisfy constraint: Member must not be null"
            )));
        };
        let base = ["String", "Number", "Binary"].into_iter().find(|b| {
            dt == *b
                || dt
                    .strip_prefix(b)
                    .and_then(|rest| rest.strip_prefix('.'))
                    .is_some_and(|custom| !custom.is_empty())
        });
        let Some(base) = base else {
            return Err(attr_error(format!(
                "The message attribute '{name}' has an invalid message attribute type, the set of supported type prefixes is Binary, Number, and String."
            )));
        };
        let sv = v.get("StringValue").filter(|s| !s.is_empty());
        let bv = v.get("BinaryValue").filter(|s| !s.is_empty());
        let empty = || {
            attr_error(format!(
                "The message attribute '{name}' must contain non-empty message attribute value for message attribute type '{base}'."
            ))
        };
        let wrong_field = |field: &str| {
            attr_error(format!(
                "The message attribute '{name}' with type '{base}' must use field '{field}'."
            ))
        };
        let attr = if base == "Binary" {
            let b = match (bv, sv) {
                (Some(b), _) => b,
                (None, Some(_)) => return Err(wrong_field("Binary")),
                (None, None) => return Err(empty()),
            };
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b)
                .map_err(|_| {
                    attr_error(format!(
                        "The message attribute '{name}' has an invalid binary value: not base64."
                    ))
                })?;
            MessageAttr {
                data_type: dt.to_owned(),
                string_value: None,
                binary_value: Some(bytes),
            }
        } else {
            let s = match (sv, bv) {
                (Some(s), _) => s,
                (None, Some(_)) => return Err(wrong_field("String")),
                (None, None) => return Err(empty()),
            };
            if base == "Number" && s.trim().parse::<f64>().is_err() {
                return Err(attr_error(format!(
                    "Could not cast message attribute '{name}' value to number."
                )));
            }
            MessageAttr {
                data_type: dt.to_owned(),
                string_value: Some(s.to_owned()),
                binary_value: None,
            }
        };
        out.insert(name.to_owned(), attr);
    }
    Ok(out)
}

/// A `MessageStructure=json` message: an object with a string `default`
/// (<https://docs.aws.amazon.com/sns/latest/api/API_Publish.html>). Duplicate keys are
/// accepted, the last one winning, as AWS does.
pub(super) fn structured(message: &str) -> Result<Map<String, Value>, AwsError> {
    let v: Value = serde_json::from_str(message)
        .map_err(|_| invalid("Message Structure - JSON message body failed to parse"))?;
    match v {
        Value::Object(m) if m.get("default").is_some_and(Value::is_string) => Ok(m),
        _ => Err(invalid(
            "Message Structure - No default entry in JSON message body",
        )),
    }
}

/// A `PublishBatch` entry id: up to 80 letters, digits, hyphens and underscores.
pub(super) fn batch_entry_id(id: &str) -> Result<(), AwsError> {
    if id.len() > 80 {
        return Err(AwsError::new(
            400,
            "InvalidBatchEntryId",
            format!("The Id of a batch entry in the batch request is too long: {id}"),
        ));
    }
    if id.is_empty()
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(AwsError::new(
            400,
            "InvalidBatchEntryId",
            format!(
                "The Id of a batch entry in the batch request contains an impermissible character: {id}"
            ),
        ));
    }
    Ok(())
}
