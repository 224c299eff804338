use super::ops::run;
use super::*;
use crate::Sandbox;
use crate::clock::ClockMode;
use crate::protocol::Wire;

const T: &str = "arn:aws:sns:us-east-1:000000000000:t";
/// Subscription attributes asking for raw delivery.
const RAW: &str = "&Attributes.entry.1.key=RawMessageDelivery&Attributes.entry.1.value=true";

fn ctx_in(op: &str, region: &str) -> RequestCtx {
    RequestCtx {
        request_id: "rid".into(),
        region: region.into(),
        host: "localhost:4566".into(),
        path: "/".into(),
        service: Service::Sns,
        wire: Wire::Query,
        op: op.into(),
    }
}

fn call(w: &mut World, op: &str, body: &str) -> Result<String, AwsError> {
    run(
        w,
        &ctx_in(op, "us-east-1"),
        &Params::parse(body.as_bytes()).unwrap(),
    )
}

fn call_in(w: &mut World, region: &str, op: &str, body: &str) -> Result<String, AwsError> {
    run(
        w,
        &ctx_in(op, region),
        &Params::parse(body.as_bytes()).unwrap(),
    )
}

/// The error's code and message, for comparing with what AWS answers.
fn err(r: Result<String, AwsError>) -> (String, String) {
    let e = r.expect_err("an error");
    (e.code, e.message)
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn queue_arn(name: &str) -> String {
    format!("arn:aws:sqs:us-east-1:000000000000:{name}")
}

/// The text of `<tag>` in an XML answer.
fn xml_text(xml: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let start = xml.find(&open).expect(tag) + open.len();
    let end = xml[start..].find(&format!("</{tag}>")).expect(tag) + start;
    xml[start..end].to_owned()
}

/// The value of attribute `key` in a `GetTopicAttributes`/`GetSubscriptionAttributes` answer.
fn attr(xml: &str, key: &str) -> Option<String> {
    let k = format!("<key>{key}</key><value>");
    let start = xml.find(&k)? + k.len();
    let end = xml[start..].find("</value>")? + start;
    Some(
        xml[start..end]
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">"),
    )
}

fn world() -> std::sync::Arc<Sandbox> {
    Sandbox::new(ClockMode::Manual, Default::default())
}

/// A sandbox with topic `t` (ARN `T`).
fn with_topic() -> std::sync::Arc<Sandbox> {
    let sb = world();
    call(&mut sb.lock(), "CreateTopic", "Name=t").unwrap();
    sb
}

fn subscribe_queue(w: &mut World, queue: &str, extra: &str) -> String {
    sqs::create_test_queue(w, "us-east-1", queue);
    let xml = call(
        w,
        "Subscribe",
        &format!(
            "TopicArn={T}&Protocol=sqs&Endpoint={}{extra}",
            enc(&queue_arn(queue))
        ),
    )
    .unwrap();
    xml_text(&xml, "SubscriptionArn")
}

#[test]
fn publish_envelope_raw_and_filter() {
    let sb = world();
    let mut w = sb.lock();
    assert!(call(&mut w, "CreateTopic", "Name=t").unwrap().contains(T));
    subscribe_queue(&mut w, "env", "");
    subscribe_queue(&mut w, "raw", RAW);
    let policy = "%7B%22kind%22%3A%5B%22a%22%5D%7D"; // {"kind":["a"]}
    subscribe_queue(
        &mut w,
        "filtered",
        &format!("&Attributes.entry.1.key=FilterPolicy&Attributes.entry.1.value={policy}"),
    );
    let id = publish_by_arn(&mut w, "us-east-1", T, Some("subj"), "{\"x\":1}").unwrap();
    assert_eq!(sqs::queue_depth(&mut w, "us-east-1", "env"), Some(1));
    assert_eq!(sqs::queue_depth(&mut w, "us-east-1", "raw"), Some(1));
    assert_eq!(sqs::queue_depth(&mut w, "us-east-1", "filtered"), Some(0));
    assert_eq!(id.len(), 36);
    call(&mut w, "Publish", &format!("TopicArn={T}&Message=hi&MessageAttributes.entry.1.Name=kind&MessageAttributes.entry.1.Value.DataType=String&MessageAttributes.entry.1.Value.StringValue=a")).unwrap();
    assert_eq!(sqs::queue_depth(&mut w, "us-east-1", "filtered"), Some(1));
    let e = call(
        &mut w,
        "Publish",
        "TopicArn=arn:aws:sns:us-east-1:000000000000:nope&Message=x",
    )
    .unwrap_err();
    assert_eq!(e.code, "NotFound");
}

/// A nested filter policy needs FilterPolicyScope=MessageBody; errors are worded as AWS's.
#[test]
fn nested_filter_policies_need_the_message_body_scope() {
    let sb = Sandbox::new(ClockMode::Manual, Default::default());
    let mut w = sb.lock();
    sqs::create_test_queue(&mut w, "us-east-1", "q");
    let t = "arn:aws:sns:us-east-1:000000000000:t";
    call(&mut w, "CreateTopic", "Name=t").unwrap();
    let out = call(
        &mut w,
        "Subscribe",
        &format!("TopicArn={t}&Protocol=sqs&Endpoint=arn:aws:sqs:us-east-1:000000000000:q"),
    )
    .unwrap();
    let sub = out
        .split("<SubscriptionArn>")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .unwrap()
        .to_owned();
    let set = |w: &mut World, name: &str, value: &str| {
        let value: String = form_urlencoded::byte_serialize(value.as_bytes()).collect();
        call(
            w,
            "SetSubscriptionAttributes",
            &format!("SubscriptionArn={sub}&AttributeName={name}&AttributeValue={value}"),
        )
    };
    let nested = r#"{"object":{"key":[{"prefix":"auto-"}]}}"#;
    assert_eq!(
        set(&mut w, "FilterPolicy", nested).unwrap_err().message,
        "Invalid parameter: Filter policy scope MessageAttributes does not support nested filter policy"
    );
    assert_eq!(
        set(&mut w, "FilterPolicyScope", "RandomValue")
            .unwrap_err()
            .message,
        "Invalid parameter: FilterPolicyScope: Invalid value [RandomValue]. Please use either MessageBody or MessageAttributes"
    );
    // Subscribe says the same, as an attribute's reason.
    let policy: String =
        form_urlencoded::byte_serialize(br#"{"key":[{"numeric":[">",3,"<",1]}]}"#).collect();
    let e = call(
        &mut w,
        "Subscribe",
        &format!("TopicArn={t}&Protocol=sqs&Endpoint=arn:aws:sqs:us-east-1:000000000000:q&Attributes.entry.1.key=FilterPolicy&Attributes.entry.1.value={policy}"),
    )
    .unwrap_err();
    assert_eq!(
        e.message,
        "Invalid parameter: Attributes Reason: FilterPolicy: Bottom must be less than top\n at [Source: (String)\"{\"key\":[{\"numeric\":[\">\",3,\"<\",1]}]}\"; line: 1, column: 33]"
    );
    set(&mut w, "FilterPolicyScope", "MessageBody").unwrap();
    set(&mut w, "FilterPolicy", nested).unwrap();
    publish_by_arn(
        &mut w,
        "us-east-1",
        t,
        None,
        r#"{"object":{"key":"auto-1"}}"#,
    )
    .unwrap();
    publish_by_arn(
        &mut w,
        "us-east-1",
        t,
        None,
        r#"{"object":{"key":"manual"}}"#,
    )
    .unwrap();
    assert_eq!(sqs::queue_depth(&mut w, "us-east-1", "q"), Some(1));
}

#[test]
fn default_policy_grants_every_topic_action_and_permissions_edit_it() {
    let sb = with_topic();
    let mut w = sb.lock();
    let policy = |w: &mut World| -> Value {
        let xml = call(w, "GetTopicAttributes", &format!("TopicArn={T}")).unwrap();
        serde_json::from_str(&attr(&xml, "Policy").unwrap()).unwrap()
    };
    let p = policy(&mut w);
    assert_eq!(
        p["Statement"][0]["Action"],
        json!([
            "SNS:GetTopicAttributes",
            "SNS:SetTopicAttributes",
            "SNS:AddPermission",
            "SNS:RemovePermission",
            "SNS:DeleteTopic",
            "SNS:Subscribe",
            "SNS:ListSubscriptionsByTopic",
            "SNS:Publish"
        ])
    );
    let add = |w: &mut World, label: &str, actions: &str| {
        call(
            w,
            "AddPermission",
            &format!("TopicArn={T}&Label={label}&AWSAccountId.member.1=000000000000{actions}"),
        )
    };
    add(&mut w, "one", "&ActionName.member.1=Publish").unwrap();
    add(
        &mut w,
        "two",
        "&ActionName.member.1=Publish&ActionName.member.2=Subscribe",
    )
    .unwrap();
    let p = policy(&mut w);
    assert_eq!(
        p["Statement"][1],
        json!({"Sid": "one", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:root"}, "Action": "SNS:Publish", "Resource": T})
    );
    assert_eq!(
        p["Statement"][2]["Action"],
        json!(["SNS:Publish", "SNS:Subscribe"])
    );
    assert_eq!(
        err(add(&mut w, "one", "&ActionName.member.1=Publish")),
        (
            "InvalidParameter".into(),
            "Invalid parameter: Statement already exists".into()
        )
    );
    assert_eq!(
        err(add(&mut w, "three", "&ActionName.member.1=InvalidAction")).1,
        "Invalid parameter: Policy statement action out of service scope!"
    );
    call(
        &mut w,
        "RemovePermission",
        &format!("TopicArn={T}&Label=one"),
    )
    .unwrap();
    call(
        &mut w,
        "RemovePermission",
        &format!("TopicArn={T}&Label=two"),
    )
    .unwrap();
    assert_eq!(policy(&mut w)["Statement"].as_array().unwrap().len(), 1);
    let e = call(
        &mut w,
        "RemovePermission",
        &format!("TopicArn={T}-x&Label=one"),
    );
    assert_eq!(err(e).0, "NotFound");
}

#[test]
fn data_protection_policy_is_kept_apart_from_the_attributes() {
    let sb = with_topic();
    let mut w = sb.lock();
    let doc = r#"{"Name":"p","Version":"2021-06-01","Statement":[]}"#;
    call(
        &mut w,
        "PutDataProtectionPolicy",
        &format!("ResourceArn={T}&DataProtectionPolicy={}", enc(doc)),
    )
    .unwrap();
    let xml = call(
        &mut w,
        "GetDataProtectionPolicy",
        &format!("ResourceArn={T}"),
    )
    .unwrap();
    assert_eq!(
        xml_text(&xml, "DataProtectionPolicy").replace("&quot;", "\""),
        doc
    );
    let attrs = call(&mut w, "GetTopicAttributes", &format!("TopicArn={T}")).unwrap();
    assert_eq!(attr(&attrs, "DataProtectionPolicy"), None);
}

#[test]
fn create_topic_checks_names_and_is_idempotent_only_for_the_same_attributes_and_tags() {
    let sb = world();
    let mut w = sb.lock();
    let topic_name = (
        "InvalidParameter".to_owned(),
        "Invalid parameter: Topic Name".to_owned(),
    );
    let long = "a".repeat(257);
    for bad in [
        "Name=",
        &format!("Name={long}"),
        "Name=test.fifo",
        "Name=bad%3Aname",
        "Name=bad%20name",
        "Name=test&Attributes.entry.1.key=FifoTopic&Attributes.entry.1.value=true",
    ] {
        assert_eq!(err(call(&mut w, "CreateTopic", bad)), topic_name, "{bad}");
    }
    assert!(call(&mut w, "CreateTopic", &format!("Name={}", "a".repeat(256))).is_ok());
    let with = |attrs: &str| format!("Name=t{attrs}");
    let display = |v: &str| {
        with(&format!(
            "&Attributes.entry.1.key=DisplayName&Attributes.entry.1.value={v}"
        ))
    };
    call(&mut w, "CreateTopic", &display("Value1")).unwrap();
    call(&mut w, "CreateTopic", &with("")).unwrap();
    call(&mut w, "CreateTopic", &display("Value1")).unwrap();
    // FifoTopic=false is what a standard topic is.
    call(
        &mut w,
        "CreateTopic",
        &with("&Attributes.entry.1.key=FifoTopic&Attributes.entry.1.value=false"),
    )
    .unwrap();
    let different =
        "Invalid parameter: Attributes Reason: Topic already exists with different attributes";
    assert_eq!(
        err(call(&mut w, "CreateTopic", &display("Value2"))).1,
        different
    );
    let sig = "&Attributes.entry.1.key=SignatureVersion&Attributes.entry.1.value=2";
    assert_eq!(err(call(&mut w, "CreateTopic", &with(sig))).1, different);
    let attrs = call(&mut w, "GetTopicAttributes", &format!("TopicArn={T}")).unwrap();
    assert_eq!(attr(&attrs, "FifoTopic"), None);
    assert_eq!(attr(&attrs, "DisplayName").as_deref(), Some("Value1"));
    assert_eq!(
        err(call(
            &mut w,
            "CreateTopic",
            &with("&Tags.member.1.Key=k&Tags.member.1.Value=v")
        ))
        .1,
        "Invalid parameter: Tags Reason: Topic already exists with different tags"
    );
    assert_eq!(
        err(call(
            &mut w,
            "SetTopicAttributes",
            &format!("TopicArn={T}&AttributeName=FifoTopic&AttributeValue=false")
        ))
        .1,
        "Invalid parameter: AttributeName"
    );
}

#[test]
fn tags_refuse_duplicate_keys() {
    let sb = with_topic();
    let mut w = sb.lock();
    let dup = format!(
        "ResourceArn={T}&Tags.member.1.Key=k1&Tags.member.1.Value=v1&Tags.member.2.Key=k1&Tags.member.2.Value=v2"
    );
    assert_eq!(
        err(call(&mut w, "TagResource", &dup)).1,
        "Invalid parameter: Duplicated keys are not allowed."
    );
    let xml = call(&mut w, "ListTagsForResource", &format!("ResourceArn={T}")).unwrap();
    assert!(!xml.contains("k1"), "{xml}");
}

#[test]
fn topic_arns_are_checked_for_shape_and_region() {
    let sb = with_topic();
    let mut w = sb.lock();
    let publish = |w: &mut World, arn: &str| {
        err(call(
            w,
            "Publish",
            &format!("TopicArn={}&Message=m", enc(arn)),
        ))
    };
    let elements = |n| {
        format!("Invalid parameter: TopicArn Reason: An ARN must have at least 6 elements, not {n}")
    };
    assert_eq!(publish(&mut w, "randomstring").1, elements(1));
    assert_eq!(publish(&mut w, "randomstring:1").1, elements(2));
    assert_eq!(publish(&mut w, "").1, elements(1));
    // The topic of another region cannot be used from this one.
    let other = err(call_in(
        &mut w,
        "us-west-2",
        "Publish",
        &format!("TopicArn={T}&Message=m"),
    ));
    assert_eq!(
        other,
        (
            "InvalidParameter".into(),
            "Invalid parameter: TopicArn".into()
        )
    );
    let other = err(call_in(
        &mut w,
        "us-west-2",
        "Subscribe",
        &format!(
            "TopicArn={T}&Protocol=sqs&Endpoint={}",
            enc(&queue_arn("q"))
        ),
    ));
    assert_eq!(other.1, "Invalid parameter: TopicArn");
    let endpoint = "arn:aws:sns:us-east-1:000000000000:endpoint/APNS/app/0f7d5971";
    assert_eq!(
        err(call(
            &mut w,
            "Publish",
            &format!("TargetArn={}&Message=m", enc(endpoint))
        ))
        .1,
        "Invalid parameter: TargetArn Reason: No endpoint found for the target arn specified"
    );
    let sub = err(call(
        &mut w,
        "Subscribe",
        "TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3Arandom&Protocol=sqs&Endpoint=x",
    ));
    assert_eq!(
        sub.1,
        "Invalid parameter: TopicArn Reason: An ARN must have at least 6 elements, not 5"
    );
}

#[test]
fn unsubscribe_is_idempotent_for_well_formed_arns() {
    let sb = with_topic();
    let mut w = sb.lock();
    let sub = subscribe_queue(&mut w, "q", "");
    call(&mut w, "Unsubscribe", &format!("SubscriptionArn={sub}")).unwrap();
    // Gone, and unsubscribing again still succeeds.
    call(&mut w, "Unsubscribe", &format!("SubscriptionArn={sub}")).unwrap();
    assert_eq!(
        err(call(
            &mut w,
            "GetSubscriptionAttributes",
            &format!("SubscriptionArn={sub}")
        ))
        .0,
        "NotFound"
    );
    let unsub = |w: &mut World, body: &str| err(call(w, "Unsubscribe", body)).1;
    assert_eq!(
        unsub(&mut w, "SubscriptionArn=randomstring"),
        "Invalid parameter: SubscriptionArn Reason: An ARN must have at least 6 elements, not 1"
    );
    assert_eq!(
        unsub(
            &mut w,
            "SubscriptionArn=arn%3Aaws%3Asns%3Aus-east-1%3A111111111111%3Arandom"
        ),
        "Invalid parameter: SubscriptionId"
    );
    assert_eq!(
        unsub(&mut w, ""),
        "Invalid parameter: SubscriptionArn Reason: no value for required parameter"
    );
}

#[test]
fn subscription_attributes_are_checked_normalised_and_compared_on_resubscribe() {
    let sb = with_topic();
    let mut w = sb.lock();
    sqs::create_test_queue(&mut w, "us-east-1", "q");
    let subscribe = |w: &mut World, attrs: &[(&str, &str)]| {
        let mut body = format!(
            "TopicArn={T}&Protocol=sqs&Endpoint={}",
            enc(&queue_arn("q"))
        );
        for (i, (k, v)) in attrs.iter().enumerate() {
            body += &format!(
                "&Attributes.entry.{n}.key={k}&Attributes.entry.{n}.value={}",
                enc(v),
                n = i + 1
            );
        }
        call(w, "Subscribe", &body)
    };
    assert_eq!(
        err(subscribe(&mut w, &[("RawMessageDelivery", "wrongvalue")])).1,
        "Invalid parameter: Attributes Reason: RawMessageDelivery: Invalid value [wrongvalue]. Must be true or false."
    );
    let xml = subscribe(
        &mut w,
        &[
            ("RawMessageDelivery", "TrUe"),
            ("FilterPolicyScope", "MessageBody"),
            ("FilterPolicy", ""),
        ],
    )
    .unwrap();
    let sub = xml_text(&xml, "SubscriptionArn");
    let attrs = call(
        &mut w,
        "GetSubscriptionAttributes",
        &format!("SubscriptionArn={sub}"),
    )
    .unwrap();
    assert_eq!(attr(&attrs, "RawMessageDelivery").as_deref(), Some("true"));
    assert_eq!(attr(&attrs, "FilterPolicy"), None);
    assert_eq!(attr(&attrs, "FilterPolicyScope"), None);
    assert_eq!(
        attr(&attrs, "SubscriptionPrincipal").as_deref(),
        Some("arn:aws:iam::000000000000:user/lifehook-sandbox")
    );
    assert_eq!(
        attr(&attrs, "PendingConfirmation").as_deref(),
        Some("false")
    );
    // The same, the defaults, or nothing: the same subscription.
    for same in [
        &[("RawMessageDelivery", "true")][..],
        &[("FilterPolicyScope", "MessageBody")],
        &[],
    ] {
        let again = subscribe(&mut w, same).unwrap();
        assert_eq!(xml_text(&again, "SubscriptionArn"), sub, "{same:?}");
    }
    assert_eq!(
        err(subscribe(&mut w, &[("RawMessageDelivery", "false")])).1,
        "Invalid parameter: Attributes Reason: Subscription already exists with different attributes"
    );
    let set = |w: &mut World, name: &str, value: &str| {
        call(
            w,
            "SetSubscriptionAttributes",
            &format!(
                "SubscriptionArn={sub}&AttributeName={name}&AttributeValue={}",
                enc(value)
            ),
        )
    };
    assert_eq!(
        err(set(&mut w, "FakeAttribute", "x")).1,
        "Invalid parameter: AttributeName"
    );
    assert_eq!(
        err(set(&mut w, "RawMessageDelivery", "")).1,
        "Invalid parameter: RawMessageDelivery: Invalid value []. Must be true or false."
    );
    assert_eq!(
        err(set(
            &mut w,
            "RedrivePolicy",
            r#"{"deadLetterTargetArn": "fake-arn"}"#
        ))
        .1,
        "Invalid parameter: RedrivePolicy: deadLetterTargetArn is an invalid arn"
    );
    assert!(
        err(set(&mut w, "RedrivePolicy", "{invalidjson}"))
            .1
            .starts_with("Invalid parameter: RedrivePolicy: failed to parse JSON.")
    );
    assert!(
        err(set(&mut w, "FilterPolicy", "{invalidjson}"))
            .1
            .starts_with("Invalid parameter: FilterPolicy: failed to parse JSON.")
    );
    // Attributes are checked before the sandbox refuses a protocol it does not deliver to.
    let email = call(
        &mut w,
        "Subscribe",
        &format!(
            "TopicArn={T}&Protocol=email&Endpoint=a%40b.c&Attributes.entry.1.key=FilterPolicy&Attributes.entry.1.value=invalid"
        ),
    );
    assert!(
        err(email).1.starts_with(
            "Invalid parameter: Attributes Reason: FilterPolicy: failed to parse JSON."
        )
    );
    assert_eq!(
        err(subscribe_with_protocol(&mut w, "test-protocol")).1,
        "Invalid parameter: Amazon SNS does not support this protocol string: test-protocol"
    );
}

fn subscribe_with_protocol(w: &mut World, protocol: &str) -> Result<String, AwsError> {
    call(
        w,
        "Subscribe",
        &format!("TopicArn={T}&Protocol={protocol}&Endpoint=x"),
    )
}

#[test]
fn message_attributes_are_checked_as_sns_checks_them() {
    let sb = with_topic();
    let mut w = sb.lock();
    let publish = |w: &mut World, name: &str, value: &str| {
        call(
            w,
            "Publish",
            &format!(
                "TopicArn={T}&Message=m&MessageAttributes.entry.1.Name={}{value}",
                enc(name)
            ),
        )
    };
    let v = |dt: &str, field: &str, value: &str| {
        format!(
            "&MessageAttributes.entry.1.Value.DataType={dt}&MessageAttributes.entry.1.Value.{field}={value}"
        )
    };
    let cases = [
        (
            "attr1",
            v("String", "StringValue", ""),
            "The message attribute 'attr1' must contain non-empty message attribute value for message attribute type 'String'.",
        ),
        (
            "attr1",
            v("Binary", "BinaryValue", ""),
            "The message attribute 'attr1' must contain non-empty message attribute value for message attribute type 'Binary'.",
        ),
        (
            "attr1",
            v("String", "BinaryValue", "MTIz"),
            "The message attribute 'attr1' with type 'String' must use field 'String'.",
        ),
        (
            "attr1",
            v("Number", "BinaryValue", "MTIz"),
            "The message attribute 'attr1' with type 'Number' must use field 'String'.",
        ),
        (
            "attr1",
            v("Binary", "StringValue", "123"),
            "The message attribute 'attr1' with type 'Binary' must use field 'Binary'.",
        ),
        (
            "attr1",
            v("InvalidType", "StringValue", "123"),
            "The message attribute 'attr1' has an invalid message attribute type, the set of supported type prefixes is Binary, Number, and String.",
        ),
        (
            "attr1",
            v("String.", "StringValue", "1"),
            "The message attribute 'attr1' has an invalid message attribute type, the set of supported type prefixes is Binary, Number, and String.",
        ),
        (
            "attr1",
            v("Stringprefixed", "StringValue", "1"),
            "The message attribute 'attr1' has an invalid message attribute type, the set of supported type prefixes is Binary, Number, and String.",
        ),
        (
            &"a".repeat(257),
            v("String", "StringValue", "1"),
            "Length of message attribute name must be less than 256 bytes.",
        ),
        (
            "a^*?",
            v("String", "StringValue", "1"),
            "Invalid non-alphanumeric character '#x5E' was found in the message attribute name. Can only include alphanumeric characters, hyphens, underscores, or dots.",
        ),
        (
            ".abc",
            v("String", "StringValue", "1"),
            "Invalid message attribute name starting with character '.' was found.",
        ),
        (
            "abc.",
            v("String", "StringValue", "1"),
            "Invalid message attribute name ending with character '.' was found.",
        ),
        (
            "a..bc",
            v("String", "StringValue", "1"),
            "Message attribute name can not have successive '.' character.",
        ),
    ];
    for (name, value, message) in cases {
        let e = publish(&mut w, name, &value).unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.message.as_str()),
            ("ParameterValueInvalid", message)
        );
    }
    let e = publish(
        &mut w,
        "attr1",
        "&MessageAttributes.entry.1.Value.StringValue=v",
    )
    .unwrap_err();
    assert_eq!(e.code, "ValidationError");
    assert!(
        e.message
            .contains("'messageAttributes.attr1.member.dataType'"),
        "{}",
        e.message
    );
    for ok in ["String.prefixed", "String.%20%20prefixed."] {
        publish(&mut w, "attr1", &v(ok, "StringValue", "x")).unwrap();
    }
}

#[test]
fn publish_checks_size_structure_and_fifo_parameters() {
    let sb = with_topic();
    let mut w = sb.lock();
    let attrs = "&MessageAttributes.entry.1.Name=attr1&MessageAttributes.entry.1.Value.DataType=Number&MessageAttributes.entry.1.Value.StringValue=1";
    // The limit counts the body and the attribute's name, type and value (5 + 6 + 1).
    let fits = "a".repeat(MAX_MESSAGE_BYTES - 12);
    call(
        &mut w,
        "Publish",
        &format!("TopicArn={T}&Message={fits}{attrs}"),
    )
    .unwrap();
    assert_eq!(
        err(call(
            &mut w,
            "Publish",
            &format!("TopicArn={T}&Message={fits}a{attrs}")
        ))
        .1,
        "Invalid parameter: Message too long"
    );
    let structured = |w: &mut World, m: &str| {
        call(
            w,
            "Publish",
            &format!("TopicArn={T}&MessageStructure=json&Message={}", enc(m)),
        )
    };
    assert_eq!(
        err(structured(&mut w, r#"{"sqs": "x"}"#)).1,
        "Invalid parameter: Message Structure - No default entry in JSON message body"
    );
    assert_eq!(
        err(structured(&mut w, r#"{"default": {"object": "x"}}"#)).1,
        "Invalid parameter: Message Structure - No default entry in JSON message body"
    );
    assert_eq!(
        err(structured(&mut w, r#"{"default": "x"} }"#)).1,
        "Invalid parameter: Message Structure - JSON message body failed to parse"
    );
    structured(&mut w, r#"{"default": "a", "default": "b"}"#).unwrap();
    assert_eq!(
        err(call(
            &mut w,
            "Publish",
            &format!("TopicArn={T}&Message=m&MessageDeduplicationId=d")
        ))
        .1,
        "Invalid parameter: MessageDeduplicationId Reason: The request includes MessageDeduplicationId parameter that is not valid for this topic type"
    );
    call(
        &mut w,
        "Publish",
        &format!("TopicArn={T}&Message=m&MessageGroupId=g"),
    )
    .unwrap();
}

/// The body of the one message `queue` holds.
fn only_body(w: &mut World, queue: &str) -> String {
    let got = sqs::receive_for_lambda(w, "us-east-1", queue, 10).unwrap();
    assert_eq!(got.len(), 1, "{got:?}");
    got[0]["body"].as_str().unwrap().to_owned()
}

#[test]
fn structured_messages_give_each_protocol_its_own_entry() {
    let sb = with_topic();
    let mut w = sb.lock();
    subscribe_queue(&mut w, "raw", RAW);
    let m = json!({"default": "default field", "sqs": "{\"field\": \"value\"}"}).to_string();
    call(
        &mut w,
        "Publish",
        &format!("TopicArn={T}&MessageStructure=json&Message={}", enc(&m)),
    )
    .unwrap();
    assert_eq!(only_body(&mut w, "raw"), "{\"field\": \"value\"}");
}

#[test]
fn publish_batch_delivers_each_entry_and_checks_the_batch() {
    let sb = with_topic();
    let mut w = sb.lock();
    subscribe_queue(&mut w, "raw", RAW);
    let entry = |n: usize, id: &str, message: &str| {
        format!(
            "&PublishBatchRequestEntries.member.{n}.Id={id}&PublishBatchRequestEntries.member.{n}.Message={message}"
        )
    };
    let batch =
        |w: &mut World, entries: &str| call(w, "PublishBatch", &format!("TopicArn={T}{entries}"));
    let xml = batch(
        &mut w,
        &(entry(1, "a", "one")
            + &entry(2, "b", "two")
            + "&PublishBatchRequestEntries.member.2.MessageAttributes.entry.1.Name=n&PublishBatchRequestEntries.member.2.MessageAttributes.entry.1.Value.DataType=Number&PublishBatchRequestEntries.member.2.MessageAttributes.entry.1.Value.StringValue=19.12"),
    )
    .unwrap();
    assert!(
        xml.contains("<Successful><member><Id>a</Id><MessageId>"),
        "{xml}"
    );
    assert!(xml.contains("<Failed/>"), "{xml}");
    assert_eq!(sqs::queue_depth(&mut w, "us-east-1", "raw"), Some(2));

    let code = |r| err(r).0;
    assert_eq!(code(batch(&mut w, "")), "EmptyBatchRequest");
    let eleven: String = (1..=11).map(|i| entry(i, &format!("i{i}"), "m")).collect();
    assert_eq!(code(batch(&mut w, &eleven)), "TooManyEntriesInBatchRequest");
    assert_eq!(
        code(batch(&mut w, &(entry(1, "x", "m") + &entry(2, "x", "m")))),
        "BatchEntryIdsNotDistinct"
    );
    assert_eq!(
        err(batch(&mut w, &entry(1, "message.id", "m"))),
        (
            "InvalidBatchEntryId".into(),
            "The Id of a batch entry in the batch request contains an impermissible character: message.id".into()
        )
    );
    assert_eq!(
        code(batch(&mut w, &entry(1, &"a".repeat(81), "m"))),
        "InvalidBatchEntryId"
    );
    batch(&mut w, &entry(1, &"a".repeat(80), "m")).unwrap();
    let half = MAX_MESSAGE_BYTES / 2;
    let too_long = entry(1, "a", &"a".repeat(half)) + &entry(2, "b", &"b".repeat(half + 1));
    assert_eq!(code(batch(&mut w, &too_long)), "BatchRequestTooLong");
    let fits = entry(1, "a", &"a".repeat(half)) + &entry(2, "b", &"b".repeat(half));
    batch(&mut w, &fits).unwrap();
    // An invalid attribute fails the whole batch, worded with the entry's place.
    let e = batch(
        &mut w,
        &(entry(1, "a", "m")
            + "&PublishBatchRequestEntries.member.1.MessageAttributes.entry.1.Name=n&PublishBatchRequestEntries.member.1.MessageAttributes.entry.1.Value.StringValue=v"),
    )
    .unwrap_err();
    assert!(
        e.message
            .contains("'publishBatchRequestEntries.1.member.messageAttributes.n.member.dataType'"),
        "{}",
        e.message
    );
    // An empty message fails its entry only.
    let xml = batch(&mut w, &(entry(1, "a", "m") + &entry(2, "b", ""))).unwrap();
    assert!(
        xml.contains("<Failed><member><Id>b</Id><Code>InvalidParameter</Code>"),
        "{xml}"
    );
    let missing = call(
        &mut w,
        "PublishBatch",
        &format!("TopicArn={T}-x{}", entry(1, "a", "m")),
    );
    assert_eq!(code(missing), "NotFound");
}

#[test]
fn undeliverable_messages_go_to_the_dead_letter_queue() {
    let sb = with_topic();
    let mut w = sb.lock();
    let sub = subscribe_queue(&mut w, "gone", "");
    sqs::create_test_queue(&mut w, "us-east-1", "dlq");
    call(
        &mut w,
        "SetSubscriptionAttributes",
        &format!(
            "SubscriptionArn={sub}&AttributeName=RedrivePolicy&AttributeValue={}",
            enc(&json!({"deadLetterTargetArn": queue_arn("dlq")}).to_string())
        ),
    )
    .unwrap();
    w.region("us-east-1").sqs = Default::default();
    sqs::create_test_queue(&mut w, "us-east-1", "dlq");
    call(&mut w, "Publish", &format!("TopicArn={T}&Message=lost")).unwrap();
    let body: Value = serde_json::from_str(&only_body(&mut w, "dlq")).unwrap();
    assert_eq!(body["Type"], "Notification");
    assert_eq!(body["Message"], "lost");
}

#[test]
fn the_links_sns_hands_out_act_in_the_region_of_their_arn() {
    // SubscribeURL and UnsubscribeURL are unsigned GETs: no credential scope names a region.
    let sb = world();
    let mut w = sb.lock();
    let west = "arn:aws:sns:us-west-2:000000000000:t";
    call_in(&mut w, "us-west-2", "CreateTopic", "Name=t").unwrap();
    let xml = call_in(
        &mut w,
        "us-west-2",
        "Subscribe",
        &format!("TopicArn={west}&Protocol=http&Endpoint=http%3A%2F%2F127.0.0.1%3A9%2F"),
    )
    .unwrap();
    assert_eq!(xml_text(&xml, "SubscriptionArn"), PENDING_ANSWER);
    let token = w
        .region("us-west-2")
        .sns
        .subscriptions
        .values()
        .next()
        .unwrap()
        .token
        .clone()
        .unwrap();
    let xml = call(
        &mut w,
        "ConfirmSubscription",
        &format!("TopicArn={west}&Token={token}"),
    )
    .unwrap();
    let sub = xml_text(&xml, "SubscriptionArn");
    assert!(sub.starts_with(west), "{sub}");
    assert!(!w.region("us-west-2").sns.subscriptions[&sub].pending);
    call(&mut w, "Unsubscribe", &format!("SubscriptionArn={sub}")).unwrap();
    assert!(w.region("us-west-2").sns.subscriptions.is_empty());
}

/// Wire-level: an HTTP endpoint gets the confirmation handshake and, once confirmed, the
/// notifications, as AWS sends them.
mod http_endpoint {
    use std::time::Duration;

    use axum::extract::State as AxState;
    use axum::http::HeaderMap;
    use tokio::sync::mpsc;

    use super::*;
    use crate::SandboxConfig;

    /// A bound on waiting for a POST already on its way; never a pause.
    const BOUND: Duration = Duration::from_secs(10);

    type Seen = (HeaderMap, String);

    /// An HTTP endpoint that records every POST and answers 200.
    async fn endpoint() -> (String, mpsc::UnboundedReceiver<Seen>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let app = axum::Router::new()
            .route(
                "/hook",
                axum::routing::post(
                    |AxState(tx): AxState<mpsc::UnboundedSender<Seen>>,
                     headers: HeaderMap,
                     body: String| async move {
                        let _ = tx.send((headers, body));
                        "ok"
                    },
                ),
            )
            .with_state(tx);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, rx)
    }

    async fn next(rx: &mut mpsc::UnboundedReceiver<Seen>) -> (HeaderMap, Value) {
        let (h, body) = tokio::time::timeout(BOUND, rx.recv())
            .await
            .expect("a POST within the bound")
            .expect("endpoint running");
        let v = serde_json::from_str(&body).unwrap_or(Value::String(body));
        (h, v)
    }

    fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
        h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn http_subscription_is_confirmed_then_notified() {
        let sb = crate::start(SandboxConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            clock: ClockMode::Manual,
            ..Default::default()
        })
        .await
        .unwrap();
        let (url, mut rx) = endpoint().await;
        let client = reqwest::Client::new();
        let sns = |params: String| {
            let req = client
                .post(sb.endpoint())
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("Version=2010-03-31&{params}"));
            async move {
                let r = req.send().await.unwrap();
                (r.status().as_u16(), r.text().await.unwrap())
            }
        };
        sns("Action=CreateTopic&Name=t".into()).await;
        let (status, xml) = sns(format!(
            "Action=Subscribe&TopicArn={T}&Protocol=http&Endpoint={}",
            enc(&url)
        ))
        .await;
        assert_eq!(status, 200, "{xml}");
        assert_eq!(xml_text(&xml, "SubscriptionArn"), PENDING_ANSWER);

        let (h, confirm) = next(&mut rx).await;
        assert_eq!(
            header(&h, "x-amz-sns-message-type"),
            "SubscriptionConfirmation"
        );
        assert_eq!(header(&h, "x-amz-sns-topic-arn"), T);
        assert_eq!(header(&h, "content-type"), "text/plain; charset=UTF-8");
        assert_eq!(confirm["Type"], "SubscriptionConfirmation");
        assert_eq!(confirm["TopicArn"], T);
        // Not delivered to while pending.
        let (_, listed) = sns(format!("Action=ListSubscriptionsByTopic&TopicArn={T}")).await;
        assert!(listed.contains(PENDING_LISTED), "{listed}");
        sns(format!("Action=Publish&TopicArn={T}&Message=early")).await;

        // Visiting the SubscribeURL (an unsigned GET) confirms.
        let subscribe_url = confirm["SubscribeURL"].as_str().unwrap();
        assert!(subscribe_url.starts_with(&sb.endpoint()), "{subscribe_url}");
        let r = client.get(subscribe_url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let sub_arn = xml_text(&r.text().await.unwrap(), "SubscriptionArn");
        assert!(sub_arn.starts_with(&format!("{T}:")), "{sub_arn}");
        let (_, attrs) = sns(format!(
            "Action=GetSubscriptionAttributes&SubscriptionArn={sub_arn}"
        ))
        .await;
        assert_eq!(
            attr(&attrs, "PendingConfirmation").as_deref(),
            Some("false")
        );

        sns(format!(
            "Action=Publish&TopicArn={T}&Message=hello&Subject=s"
        ))
        .await;
        let (h, n) = next(&mut rx).await;
        assert_eq!(header(&h, "x-amz-sns-message-type"), "Notification");
        assert_eq!(header(&h, "x-amz-sns-subscription-arn"), sub_arn);
        assert_eq!(header(&h, "x-amz-sns-message-id"), n["MessageId"]);
        assert_eq!(
            header(&h, "user-agent"),
            "Amazon Simple Notification Service Agent"
        );
        assert_eq!(
            n["Message"], "hello",
            "the message published while pending is not sent"
        );
        assert_eq!(n["Subject"], "s");

        sns(format!(
            "Action=SetSubscriptionAttributes&SubscriptionArn={sub_arn}&AttributeName=RawMessageDelivery&AttributeValue=true"
        ))
        .await;
        sns(format!("Action=Publish&TopicArn={T}&Message=raw%20body")).await;
        let (h, raw) = next(&mut rx).await;
        assert_eq!(header(&h, "x-amz-sns-rawdelivery"), "true");
        assert_eq!(raw, "raw body");

        // Unsubscribing tells the endpoint.
        sns(format!("Action=Unsubscribe&SubscriptionArn={sub_arn}")).await;
        let (h, bye) = next(&mut rx).await;
        assert_eq!(
            header(&h, "x-amz-sns-message-type"),
            "UnsubscribeConfirmation"
        );
        assert_eq!(bye["Type"], "UnsubscribeConfirmation");
        // A wrong token is refused as AWS refuses it.
        let (status, body) = sns(format!(
            "Action=ConfirmSubscription&TopicArn={T}&Token={}",
            "ab".repeat(40)
        ))
        .await;
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("Invalid parameter: Token"), "{body}");
        sb.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn failed_deliveries_are_retried_three_times_then_given_up() {
        // An endpoint that always answers 500, counting the attempts.
        let count = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let c = count.clone();
        let app = axum::Router::new().route(
            "/",
            axum::routing::post(move || {
                c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async { axum::http::StatusCode::INTERNAL_SERVER_ERROR }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let post = http::Post {
            url,
            kind: http::Kind::Notification,
            message_id: "m".into(),
            topic_arn: T.into(),
            subscription_arn: None,
            raw: false,
            body: "{}".into(),
        };
        // Paused time: the 20 s between attempts pass at once.
        assert_eq!(http::deliver(post.clone()).await, Ok(500));
        assert_eq!(
            count.load(std::sync::atomic::Ordering::SeqCst),
            1 + http::RETRIES
        );
        // An answer under 500 ends the delivery: a 404 is not retried.
        let missing = http::Post {
            url: format!("{}missing", post.url),
            ..post.clone()
        };
        assert_eq!(http::deliver(missing).await, Ok(404));
        // An https:// endpoint cannot be reached without TLS: no attempt, no retry.
        let tls = http::Post {
            url: post.url.replace("http://", "https://"),
            ..post
        };
        assert!(http::deliver(tls).await.is_err());
        assert_eq!(
            count.load(std::sync::atomic::Ordering::SeqCst),
            1 + http::RETRIES
        );
    }
}
