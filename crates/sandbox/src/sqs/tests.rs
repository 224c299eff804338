use super::*;
use crate::clock::ClockMode;
use crate::protocol::Wire;

fn ctx(op: &str, wire: Wire) -> RequestCtx {
    RequestCtx {
        request_id: "rid".into(),
        region: "us-east-1".into(),
        host: "localhost:4566".into(),
        path: "/".into(),
        service: Service::Sqs,
        wire,
        op: op.into(),
    }
}

async fn query(sb: &Sandbox, op: &str, path: &str, body: &str) -> Result<String, AwsError> {
    let mut c = ctx(op, Wire::Query);
    c.path = path.into();
    let p = Params::parse(body.as_bytes()).unwrap();
    match handle(sb, &c, Input::Query(p), None).await? {
        Reply::Xml(s) => Ok(s),
        other => panic!("not xml: {other:?}"),
    }
}

async fn call(sb: &Sandbox, op: &str, body: Value) -> Result<Value, AwsError> {
    let c = ctx(op, Wire::Json { version: "1.0" });
    let Value::Object(m) = body else { panic!() };
    match handle(sb, &c, Input::Json(JsonBody(m)), None).await? {
        Reply::Json(v) => Ok(v),
        other => panic!("not json: {other:?}"),
    }
}

fn attr(t: &str, s: Option<&str>, b: Option<&[u8]>) -> MessageAttr {
    MessageAttr {
        data_type: t.into(),
        string_value: s.map(str::to_owned),
        binary_value: b.map(<[u8]>::to_vec),
    }
}

#[test]
fn md5_of_attributes_matches_aws() {
    // Reference values computed independently (Python hashlib over AWS's documented
    // encoding, as botocore verifies it).
    let mut a = BTreeMap::new();
    a.insert("kind".to_string(), attr("String", Some("lifecycle"), None));
    a.insert("n".to_string(), attr("Number", Some("42"), None));
    assert_eq!(md5_of_attributes(&a), "71224628b775d2b16fa0b2cf9f0b7d7c");
    let mut a = BTreeMap::new();
    a.insert("kind".to_string(), attr("String", Some("lifecycle"), None));
    a.insert("bin".to_string(), attr("Binary", None, Some(&[0, 1])));
    assert_eq!(md5_of_attributes(&a), "4e93e71abcd9e5b532375346193441eb");
    assert_eq!(md5_hex(b"hello"), "5d41402abc4b2a76b9719d911017c592");
}

#[test]
fn urls_and_arns() {
    assert_eq!(name_from_url("http://x:1/000000000000/q1"), Some("q1"));
    assert_eq!(
        name_from_url("https://sqs.us-east-1.amazonaws.com/1/q-2/"),
        Some("q-2")
    );
    assert_eq!(name_from_url("/000000000000/q3"), Some("q3"));
    assert_eq!(
        parse_arn("arn:aws:sqs:eu-west-1:000000000000:q"),
        Some(("eu-west-1", "q"))
    );
    assert_eq!(parse_arn("arn:aws:sns:eu-west-1:000000000000:q"), None);
    assert!(handle_message_id("garbage").is_none());
    let h = new_handle("0123456789abcdef0123456789abcdef0123");
    assert_eq!(
        handle_message_id(&h).as_deref(),
        Some("0123456789abcdef0123456789abcdef0123")
    );
}

#[tokio::test]
async fn query_protocol_round_trip() {
    let sb = Sandbox::new(ClockMode::Manual, Default::default());
    let xml = query(
        &sb,
        "CreateQueue",
        "/",
        "QueueName=q1&Attribute.1.Name=VisibilityTimeout&Attribute.1.Value=5",
    )
    .await
    .unwrap();
    assert!(
        xml.contains("<QueueUrl>http://localhost:4566/000000000000/q1</QueueUrl>"),
        "{xml}"
    );
    assert!(xml.starts_with("<CreateQueueResponse xmlns=\"http://queue.amazonaws.com/doc/2012-11-05/\"><CreateQueueResult>"));
    // Older clients post to the queue URL path without QueueUrl.
    let xml = query(&sb, "SendMessage", "/000000000000/q1", "MessageBody=hello&MessageAttribute.1.Name=a&MessageAttribute.1.Value.DataType=String&MessageAttribute.1.Value.StringValue=b").await.unwrap();
    assert!(
        xml.contains("<MD5OfMessageBody>5d41402abc4b2a76b9719d911017c592</MD5OfMessageBody>"),
        "{xml}"
    );
    assert!(xml.contains("<MD5OfMessageAttributes>"), "{xml}");
    let xml = query(
        &sb,
        "ReceiveMessage",
        "/",
        "QueueUrl=http://other-host/000000000000/q1&AttributeName.1=All&MessageAttributeName.1=All",
    )
    .await
    .unwrap();
    assert!(xml.contains("<Body>hello</Body>"), "{xml}");
    assert!(
        xml.contains("<Name>ApproximateReceiveCount</Name><Value>1</Value>"),
        "{xml}"
    );
    assert!(xml.contains("<MessageAttribute><Name>a</Name><Value><StringValue>b</StringValue><DataType>String</DataType></Value></MessageAttribute>"), "{xml}");
    let xml = query(
        &sb,
        "GetQueueAttributes",
        "/000000000000/q1",
        "AttributeName.1=All",
    )
    .await
    .unwrap();
    assert!(xml.contains("<Attribute><Name>ApproximateNumberOfMessagesNotVisible</Name><Value>1</Value></Attribute>"), "{xml}");
    assert!(
        xml.contains("<Name>VisibilityTimeout</Name><Value>5</Value>"),
        "{xml}"
    );
    let e = query(&sb, "GetQueueUrl", "/", "QueueName=nope")
        .await
        .unwrap_err();
    assert_eq!(
        e.query_code.as_deref(),
        Some("AWS.SimpleQueueService.NonExistentQueue")
    );
    let xml = query(&sb, "SendMessageBatch", "/000000000000/q1", "SendMessageBatchRequestEntry.1.Id=a&SendMessageBatchRequestEntry.1.MessageBody=x&SendMessageBatchRequestEntry.2.Id=b&SendMessageBatchRequestEntry.2.MessageBody=y&SendMessageBatchRequestEntry.2.DelaySeconds=5000").await.unwrap();
    assert!(
        xml.contains("<SendMessageBatchResultEntry><Id>a</Id>"),
        "{xml}"
    );
    assert!(
        xml.contains("<BatchResultErrorEntry><Id>b</Id><SenderFault>true</SenderFault>"),
        "{xml}"
    );
}

#[tokio::test]
async fn visibility_and_redrive_on_virtual_time() {
    let sb = Sandbox::new(ClockMode::Manual, Default::default());
    call(&sb, "CreateQueue", json!({"QueueName": "dlq"}))
        .await
        .unwrap();
    let policy =
        r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dlq","maxReceiveCount":2}"#;
    let url = call(&sb, "CreateQueue", json!({"QueueName": "q", "Attributes": {"VisibilityTimeout": "10", "RedrivePolicy": policy}})).await.unwrap()["QueueUrl"].as_str().unwrap().to_owned();
    call(
        &sb,
        "SendMessage",
        json!({"QueueUrl": url, "MessageBody": "m"}),
    )
    .await
    .unwrap();
    for n in 1..=2 {
        let r = call(
            &sb,
            "ReceiveMessage",
            json!({"QueueUrl": url, "AttributeNames": ["ApproximateReceiveCount"]}),
        )
        .await
        .unwrap();
        assert_eq!(
            r["Messages"][0]["Attributes"]["ApproximateReceiveCount"],
            json!(n.to_string())
        );
        let r = call(&sb, "ReceiveMessage", json!({"QueueUrl": url}))
            .await
            .unwrap();
        assert_eq!(r, json!({}), "invisible: no Messages key, as AWS answers");
        sb.advance(10_000);
    }
    // Third receive exceeds maxReceiveCount: moved to the DLQ, not returned.
    let r = call(&sb, "ReceiveMessage", json!({"QueueUrl": url}))
        .await
        .unwrap();
    assert!(r.get("Messages").is_none());
    let r = call(
        &sb,
        "ReceiveMessage",
        json!({"QueueUrl": "http://h/000000000000/dlq"}),
    )
    .await
    .unwrap();
    assert_eq!(r["Messages"][0]["Body"], "m");
    // Invalid handle.
    let e = call(
        &sb,
        "DeleteMessage",
        json!({"QueueUrl": url, "ReceiptHandle": "nope"}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, "ReceiptHandleIsInvalid");
}

#[tokio::test]
async fn retention_expires_messages() {
    let sb = Sandbox::new(ClockMode::Manual, Default::default());
    let url = call(
        &sb,
        "CreateQueue",
        json!({"QueueName": "q", "Attributes": {"MessageRetentionPeriod": "60"}}),
    )
    .await
    .unwrap()["QueueUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    call(
        &sb,
        "SendMessage",
        json!({"QueueUrl": url, "MessageBody": "m"}),
    )
    .await
    .unwrap();
    sb.advance(61_000);
    let r = call(
        &sb,
        "GetQueueAttributes",
        json!({"QueueUrl": url, "AttributeNames": ["ApproximateNumberOfMessages"]}),
    )
    .await
    .unwrap();
    assert_eq!(r["Attributes"]["ApproximateNumberOfMessages"], "0");
}

async fn all_attrs(sb: &Sandbox, url: &str) -> Value {
    call(
        sb,
        "GetQueueAttributes",
        json!({"QueueUrl": url, "AttributeNames": ["All"]}),
    )
    .await
    .unwrap()["Attributes"]
        .clone()
}

async fn policy_doc(sb: &Sandbox, url: &str) -> Option<Value> {
    let r = call(
        sb,
        "GetQueueAttributes",
        json!({"QueueUrl": url, "AttributeNames": ["Policy"]}),
    )
    .await
    .unwrap();
    r["Attributes"]["Policy"]
        .as_str()
        .map(|p| serde_json::from_str::<Value>(p).unwrap())
}

/// A queue `name` with `attrs`; its URL.
async fn queue(sb: &Sandbox, name: &str, attrs: Value) -> String {
    call(
        sb,
        "CreateQueue",
        json!({"QueueName": name, "Attributes": attrs}),
    )
    .await
    .unwrap()["QueueUrl"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn send(sb: &Sandbox, url: &str, extra: Value) -> Result<Value, AwsError> {
    let mut body = json!({"QueueUrl": url, "MessageBody": "m"});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    call(sb, "SendMessage", body).await
}

async fn receive(sb: &Sandbox, url: &str, extra: Value) -> Value {
    let mut body = json!({"QueueUrl": url, "VisibilityTimeout": 0});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    call(sb, "ReceiveMessage", body).await.unwrap()
}

#[tokio::test]
async fn empty_lists_and_maps_are_left_out_as_aws_leaves_them_out() {
    let sb = Sandbox::new(ClockMode::Manual, Default::default());
    let r = call(&sb, "ListQueues", json!({})).await.unwrap();
    assert_eq!(r, json!({}), "no QueueUrls");
    let url = queue(&sb, "q", json!({})).await;
    assert_eq!(
        receive(&sb, &url, json!({})).await,
        json!({}),
        "no Messages"
    );
    let r = call(&sb, "ListQueueTags", json!({"QueueUrl": url}))
        .await
        .unwrap();
    assert_eq!(r, json!({}), "no Tags");
    let r = call(
        &sb,
        "GetQueueAttributes",
        json!({"QueueUrl": url, "AttributeNames": ["Policy"]}),
    )
    .await
    .unwrap();
    assert_eq!(r, json!({}), "no Attributes");
    let r = call(
        &sb,
        "SendMessageBatch",
        json!({"QueueUrl": url, "Entries": [{"Id": "a", "MessageBody": "x"}]}),
    )
    .await
    .unwrap();
    assert!(r.get("Failed").is_none(), "{r}");
    assert_eq!(r["Successful"][0]["Id"], "a");
    // The Query protocol answers an empty result element.
    let xml = query(&sb, "ReceiveMessage", "/000000000000/nothing-here", "")
        .await
        .unwrap_err();
    assert_eq!(xml.code, "QueueDoesNotExist");
    let url2 = queue(&sb, "empty", json!({})).await;
    let xml = query(&sb, "ReceiveMessage", "/", &format!("QueueUrl={url2}"))
        .await
        .unwrap();
    assert!(xml.contains("<ReceiveMessageResult/>"), "{xml}");
}

#[tokio::test]
async fn change_visibility_after_expiry_or_with_an_old_handle_succeeds_and_a_deleted_message_is_invalid()
 {
    let sb = Sandbox::new(ClockMode::Manual, Default::default());
    let url = queue(&sb, "q", json!({"VisibilityTimeout": "1"})).await;
    send(&sb, &url, json!({})).await.unwrap();
    let r = call(&sb, "ReceiveMessage", json!({"QueueUrl": url}))
        .await
        .unwrap();
    let first = r["Messages"][0]["ReceiptHandle"]
        .as_str()
        .unwrap()
        .to_owned();
    sb.advance(2_000);
    // The visibility has expired: AWS answers 200 (it used to be MessageNotInflight here).
    let change = |h: String, vt: i64| {
        let sb = &sb;
        let url = url.clone();
        async move {
            call(
                sb,
                "ChangeMessageVisibility",
                json!({"QueueUrl": url, "ReceiptHandle": h, "VisibilityTimeout": vt}),
            )
            .await
        }
    };
    change(first.clone(), 0).await.unwrap();
    // Received again; the first receive's handle still changes the message's visibility.
    let r = call(
        &sb,
        "ReceiveMessage",
        json!({"QueueUrl": url, "VisibilityTimeout": 30}),
    )
    .await
    .unwrap();
    let second = r["Messages"][0]["ReceiptHandle"]
        .as_str()
        .unwrap()
        .to_owned();
    change(first.clone(), 0).await.unwrap();
    assert!(
        receive(&sb, &url, json!({}))
            .await
            .get("Messages")
            .is_some()
    );
    call(
        &sb,
        "DeleteMessage",
        json!({"QueueUrl": url, "ReceiptHandle": second}),
    )
    .await
    .unwrap();
    let e = change(second.clone(), 42).await.unwrap_err();
    assert_eq!(
        (e.code.as_str(), e.query_code.as_deref()),
        (
            "InvalidParameterValueException",
            Some("InvalidParameterValue")
        )
    );
    assert_eq!(
        e.message,
        format!(
            "Value {second} for parameter ReceiptHandle is invalid. Reason: Message does not exist or is not available for visibility timeout change."
        )
    );
}

#[tokio::test]
async fn errors_carry_the_json_type_and_the_query_code_aws_records() {
    let sb = Sandbox::new(ClockMode::Manual, Default::default());
    let url = queue(&sb, "q", json!({})).await;
    let e = call(&sb, "SendMessage", json!({"QueueUrl": url}))
        .await
        .unwrap_err();
    assert_eq!(
        (e.code.as_str(), e.query_code.as_deref(), e.message.as_str()),
        (
            "MissingRequiredParameterException",
            Some("MissingParameter"),
            "The request must contain the parameter MessageBody."
        )
    );
    let e = call(
        &sb,
        "ReceiveMessage",
        json!({"QueueUrl": url, "MaxNumberOfMessages": 11}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, "InvalidParameterValueException");
    assert_eq!(e.query_code.as_deref(), Some("InvalidParameterValue"));
    // Query: the legacy code, and the "wsdl version" wording of a missing queue.
    let e = query(
        &sb,
        "GetQueueAttributes",
        "/000000000000/nope",
        "AttributeName.1=All",
    )
    .await
    .unwrap_err();
    assert_eq!(
        e.message,
        "The specified queue does not exist for this wsdl version."
    );
    let e = call(&sb, "GetQueueUrl", json!({"QueueName": "nope"}))
        .await
        .unwrap_err();
    assert_eq!(e.message, "The specified queue does not exist.");
    let e = query(&sb, "FooBar", "/000000000000/q", "")
        .await
        .unwrap_err();
    assert_eq!(
        (e.code.as_str(), e.message.as_str()),
        (
            "InvalidAction",
            "The action FooBar is not valid for this endpoint."
        )
    );
    // A queue URL takes the queue's own actions only.
    let e = query(&sb, "ListQueues", "/000000000000/q", "")
        .await
        .unwrap_err();
    assert_eq!(
        e.message,
        "The action ListQueues is not valid for this endpoint."
    );
    let e = query(&sb, "CreateQueue", "/000000000000/q", "QueueName=other")
        .await
        .unwrap_err();
    assert_eq!(e.code, "InvalidAction");
    let xml = query(&sb, "GetQueueUrl", "/000000000000/q", "QueueName=q")
        .await
        .unwrap();
    assert!(xml.contains("<QueueUrl>"), "{xml}");
}

#[tokio::test]
async fn message_group_ids_are_kept_on_standard_queues_and_deduplication_ids_refused() {
    let sb = Sandbox::new(ClockMode::Manual, Default::default());
    let url = queue(&sb, "q", json!({})).await;
    for bad in ["", "group 123", &"a".repeat(129)] {
        let e = send(&sb, &url, json!({"MessageGroupId": bad}))
            .await
            .unwrap_err();
        assert_eq!(
            e.message,
            format!(
                "Value {bad} for parameter MessageGroupId is invalid. Reason: MessageGroupId can only include alphanumeric and punctuation characters. 1 to 128 in length."
            )
        );
    }
    let e = send(&sb, &url, json!({"MessageDeduplicationId": "d1"}))
        .await
        .unwrap_err();
    assert_eq!(e.query_code.as_deref(), Some("InvalidParameterValue"));
    assert!(
        e.message.contains("MessageDeduplicationId"),
        "{}",
        e.message
    );
    send(&sb, &url, json!({"MessageGroupId": "tenant-1"}))
        .await
        .unwrap();
    let r = receive(&sb, &url, json!({"AttributeNames": ["All"]})).await;
    assert_eq!(r["Messages"][0]["Attributes"]["MessageGroupId"], "tenant-1");
}

#[tokio::test]
async fn a_batch_over_one_mib_in_all_is_refused() {
    let sb = Sandbox::new(ClockMode::Manual, Default::default());
    let url = queue(&sb, "q", json!({})).await;
    let attrs = json!({"k": {"DataType": "String", "StringValue": "x"}});
    let big = "a".repeat(1_048_576 - 8);
    let entries = json!([
        {"Id": "1", "MessageBody": big, "MessageAttributes": attrs},
        {"Id": "2", "MessageBody": "a"},
    ]);
    let e = call(
        &sb,
        "SendMessageBatch",
        json!({"QueueUrl": url, "Entries": entries}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, "BatchRequestTooLong");
    assert_eq!(
        e.query_code.as_deref(),
        Some("AWS.SimpleQueueService.BatchRequestTooLong")
    );
    assert_eq!(
        e.message,
        "Batch requests cannot be longer than 1048576 bytes. You have sent 1048577 bytes."
    );
}

#[tokio::test]
async fn sse_sqs_is_on_by_default_and_a_kms_key_turns_it_off() {
    let sb = Sandbox::new(ClockMode::Manual, Default::default());
    let url = queue(&sb, "q", json!({})).await;
    let a = all_attrs(&sb, &url).await;
    assert_eq!(a["SqsManagedSseEnabled"], "true");
    assert!(a.get("KmsDataKeyReusePeriodSeconds").is_none());
    call(
        &sb,
        "SetQueueAttributes",
        json!({"QueueUrl": url, "Attributes": {"KmsMasterKeyId": "k", "KmsDataKeyReusePeriodSeconds": "6000"}}),
    )
    .await
    .unwrap();
    let a = all_attrs(&sb, &url).await;
    assert_eq!(a["SqsManagedSseEnabled"], "false");
    assert_eq!(a["KmsMasterKeyId"], "k");
    assert_eq!(a["KmsDataKeyReusePeriodSeconds"], "6000");
    call(
        &sb,
        "SetQueueAttributes",
        json!({"QueueUrl": url, "Attributes": {"KmsMasterKeyId": "", "KmsDataKeyReusePeriodSeconds": "300"}}),
    )
    .await
    .unwrap();
    let a = all_attrs(&sb, &url).await;
    assert!(a.get("KmsMasterKeyId").is_none(), "{a}");
    assert!(a.get("KmsDataKeyReusePeriodSeconds").is_none(), "{a}");
}

#[tokio::test]
async fn message_attribute_names_take_all_star_and_prefix_wildcards() {
    let sb = Sandbox::new(ClockMode::Manual, Default::default());
    let url = queue(&sb, "q", json!({})).await;
    let s = |v: &str| json!({"DataType": "String", "StringValue": v});
    send(
        &sb,
        &url,
        json!({"MessageAttributes": {"Help.Me": s("Me"), "Hello": s("There"), "General": s("Kenobi")}}),
    )
    .await
    .unwrap();
    let names = |filter: Value| {
        let sb = &sb;
        let url = url.clone();
        async move {
            let r = receive(sb, &url, json!({ "MessageAttributeNames": filter })).await;
            let mut k: Vec<String> = r["Messages"][0]["MessageAttributes"]
                .as_object()
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default();
            k.sort();
            k
        }
    };
    let every = vec!["General", "Hello", "Help.Me"];
    assert_eq!(names(json!(["All"])).await, every);
    assert_eq!(names(json!(["*"])).await, every);
    assert_eq!(names(json!([".*"])).await, every);
    assert_eq!(names(json!(["Hel.*"])).await, vec!["Hello", "Help.Me"]);
    assert_eq!(names(json!(["Foo", "Hello"])).await, vec!["Hello"]);
    assert!(names(json!([])).await.is_empty());
}

#[tokio::test]
async fn the_trace_header_is_a_system_attribute_and_dead_letters_name_their_source() {
    let sb = Sandbox::new(ClockMode::Manual, Default::default());
    queue(&sb, "dlq", json!({})).await;
    let policy =
        r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dlq","maxReceiveCount":1}"#;
    let url = queue(&sb, "src", json!({"RedrivePolicy": policy})).await;
    let trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
    let r = send(
        &sb,
        &url,
        json!({"MessageSystemAttributes": {"AWSTraceHeader": {"DataType": "String", "StringValue": trace}}}),
    )
    .await
    .unwrap();
    // The value LocalStack's AWS-validated test expects for this header.
    assert_eq!(
        r["MD5OfMessageSystemAttributes"],
        "5ae4d5d7636402d80f4eb6d213245a88"
    );
    assert!(r.get("MD5OfMessageAttributes").is_none());
    // From the X-Amzn-Trace-Id header of the request.
    let c = ctx("SendMessage", Wire::Json { version: "1.0" });
    let Value::Object(m) = json!({"QueueUrl": url, "MessageBody": "h"}) else {
        panic!()
    };
    let Reply::Json(r) = handle(&sb, &c, Input::Json(JsonBody(m)), Some("Root=1-abc"))
        .await
        .unwrap()
    else {
        panic!()
    };
    assert!(r.get("MD5OfMessageSystemAttributes").is_none());
    let r = receive(
        &sb,
        &url,
        json!({"AttributeNames": ["AWSTraceHeader"], "MaxNumberOfMessages": 10}),
    )
    .await;
    let traces: Vec<&str> = r["Messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["Attributes"]["AWSTraceHeader"].as_str().unwrap())
        .collect();
    assert_eq!(traces, vec![trace, "Root=1-abc"]);
    // Past maxReceiveCount the messages move to the DLQ and say where they came from.
    assert!(
        receive(&sb, &url, json!({}))
            .await
            .get("Messages")
            .is_none()
    );
    let r = receive(
        &sb,
        "http://h/000000000000/dlq",
        json!({"AttributeNames": ["All"], "MaxNumberOfMessages": 10}),
    )
    .await;
    assert_eq!(
        r["Messages"][0]["Attributes"]["DeadLetterQueueSourceArn"],
        "arn:aws:sqs:us-east-1:000000000000:src"
    );
    assert_eq!(r["Messages"][0]["Attributes"]["AWSTraceHeader"], trace);
    // Only AWSTraceHeader is a system attribute one may send.
    let e = send(
        &sb,
        &url,
        json!({"MessageSystemAttributes": {"Other": {"DataType": "String", "StringValue": "x"}}}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.query_code.as_deref(), Some("InvalidParameterValue"));
}

#[tokio::test]
async fn message_attributes_are_validated_as_aws_validates_them() {
    let sb = Sandbox::new(ClockMode::Manual, Default::default());
    let url = queue(&sb, "q", json!({})).await;
    let with = |name: &str, dt: &str, v: &str| json!({"MessageAttributes": {name: {"DataType": dt, "StringValue": v}}});
    send(&sb, &url, with("attr.1øßä", "String", "Valid"))
        .await
        .unwrap();
    let e = send(&sb, &url, with("ErrorDetails", "String", ""))
        .await
        .unwrap_err();
    assert_eq!(
        e.message,
        "Message (user) attribute 'ErrorDetails' must contain a non-empty value of type 'String'."
    );
    let long = "L".repeat(257);
    for (name, dt, v) in [
        ("attr1", "String", "Invalid-\u{8},\u{b}"),
        ("aWs.-Invalid-attr", "String", "Valid"),
        ("AMAZON.-Invalid-attr", "String", "Valid"),
        (".-Invalid-attr", "String", "Valid"),
        ("Invalid-!-attr", "String", "Valid"),
        ("Invalid-§-attr", "String", "Valid"),
        ("Invalid-(-attr", "String", "Valid"),
        (long.as_str(), "String", "Valid"),
        ("Attribute_name", "Invalid", "Valid"),
    ] {
        let e = send(&sb, &url, with(name, dt, v)).await.unwrap_err();
        assert_eq!(
            e.query_code.as_deref(),
            Some("InvalidParameterValue"),
            "{name}"
        );
    }
}

#[tokio::test]
async fn standard_queues_refuse_fifo_attributes_and_names() {
    let sb = Sandbox::new(ClockMode::Manual, Default::default());
    for (attr, v, msg) in [
        ("FifoQueue", "false", "Unknown Attribute FifoQueue."),
        (
            "ContentBasedDeduplication",
            "false",
            "Unknown Attribute ContentBasedDeduplication.",
        ),
        (
            "DeduplicationScope",
            "queue",
            "You can specify the DeduplicationScope only when FifoQueue is set to true.",
        ),
        (
            "FifoThroughputLimit",
            "perQueue",
            "You can specify the FifoThroughputLimit only when FifoQueue is set to true.",
        ),
    ] {
        let e = call(
            &sb,
            "CreateQueue",
            json!({"QueueName": "q", "Attributes": {attr: v}}),
        )
        .await
        .unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.message.as_str()),
            ("InvalidAttributeName", msg)
        );
    }
    let url = queue(&sb, "q", json!({})).await;
    let e = call(
        &sb,
        "SetQueueAttributes",
        json!({"QueueUrl": url, "Attributes": {"FifoQueue": "true"}}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.message, "Unknown Attribute FifoQueue.");
    let e = call(&sb, "CreateQueue", json!({"QueueName": "q.fifo"}))
        .await
        .unwrap_err();
    assert_eq!(e.query_code.as_deref(), Some("InvalidParameterValue"));
}

#[tokio::test]
async fn create_queue_compares_effective_values_and_names_the_attribute_that_differs() {
    let sb = Sandbox::new(ClockMode::Manual, Default::default());
    queue(&sb, "q", json!({"DelaySeconds": "0"})).await;
    // An explicit default is the same queue; a queue created without it too.
    queue(&sb, "q", json!({"VisibilityTimeout": "30"})).await;
    let e = call(
        &sb,
        "CreateQueue",
        json!({"QueueName": "q", "Attributes": {"DelaySeconds": "1"}}),
    )
    .await
    .unwrap_err();
    assert_eq!(
        (e.query_code.as_deref(), e.message.as_str()),
        (
            Some("QueueAlreadyExists"),
            "A queue already exists with the same name and a different value for attribute DelaySeconds"
        )
    );
}

#[tokio::test]
async fn one_purge_per_minute() {
    let sb = Sandbox::new(ClockMode::Manual, Default::default());
    let url = queue(&sb, "q", json!({})).await;
    call(&sb, "PurgeQueue", json!({"QueueUrl": url}))
        .await
        .unwrap();
    let e = call(&sb, "PurgeQueue", json!({"QueueUrl": url}))
        .await
        .unwrap_err();
    assert_eq!(
        (e.status, e.query_code.as_deref(), e.message.as_str()),
        (
            403,
            Some("AWS.SimpleQueueService.PurgeQueueInProgress"),
            "Only one PurgeQueue operation on q is allowed every 60 seconds."
        )
    );
    sb.advance(60_000);
    call(&sb, "PurgeQueue", json!({"QueueUrl": url}))
        .await
        .unwrap();
}

#[tokio::test]
async fn add_and_remove_permission_edit_the_queue_policy() {
    let sb = Sandbox::new(ClockMode::Manual, Default::default());
    let url = queue(&sb, "q", json!({})).await;
    let add = |label: &str, accounts: Value| {
        let sb = &sb;
        let body = json!({"QueueUrl": url, "Label": label, "AWSAccountIds": accounts, "Actions": ["ReceiveMessage"]});
        async move { call(sb, "AddPermission", body).await }
    };
    add("one", json!(["000000000000", "668614515564"]))
        .await
        .unwrap();
    let p = policy_doc(&sb, &url).await.unwrap();
    assert_eq!(
        p,
        json!({"Version": "2008-10-17", "Id": "arn:aws:sqs:us-east-1:000000000000:q/SQSDefaultPolicy",
               "Statement": [{"Sid": "one", "Effect": "Allow",
                   "Principal": {"AWS": ["arn:aws:iam::000000000000:root", "arn:aws:iam::668614515564:root"]},
                   "Action": "SQS:ReceiveMessage", "Resource": "arn:aws:sqs:us-east-1:000000000000:q"}]})
    );
    let e = add("one", json!(["000000000000"])).await.unwrap_err();
    assert_eq!(
        e.message,
        "Value one for parameter Label is invalid. Reason: Already exists."
    );
    add("two", json!(["000000000000"])).await.unwrap();
    let remove = |label: &str| {
        let sb = &sb;
        let body = json!({"QueueUrl": url, "Label": label});
        async move { call(sb, "RemovePermission", body).await }
    };
    remove("one").await.unwrap();
    let p = policy_doc(&sb, &url).await.unwrap();
    assert_eq!(
        p["Statement"][0]["Principal"]["AWS"],
        "arn:aws:iam::000000000000:root"
    );
    remove("two").await.unwrap();
    assert!(
        policy_doc(&sb, &url).await.is_none(),
        "no statement, no policy"
    );
    let e = remove("two").await.unwrap_err();
    assert_eq!(
        e.message,
        "Value two for parameter Label is invalid. Reason: can't find label."
    );
}

#[tokio::test]
async fn query_errors_carry_an_empty_detail_and_batch_entries_their_own_wording() {
    use http_body_util::BodyExt;
    let resp = no_queue().render(Service::Sqs, Wire::Query, "rid");
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8(body.to_vec()).unwrap();
    assert!(
        body.contains("<Code>AWS.SimpleQueueService.NonExistentQueue</Code><Message>The specified queue does not exist.</Message><Detail/></Error>"),
        "{body}"
    );
    // Other Query services have no <Detail/>.
    let resp = AwsError::validation("x").render(Service::AutoScaling, Wire::Query, "rid");
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert!(!String::from_utf8(body.to_vec()).unwrap().contains("Detail"));

    let sb = Sandbox::new(ClockMode::Manual, Default::default());
    let url = queue(&sb, "q", json!({"MaximumMessageSize": "1024"})).await;
    let big = "a".repeat(1025);
    let r = call(
        &sb,
        "SendMessageBatch",
        json!({"QueueUrl": url, "Entries": [{"Id": "big", "MessageBody": big}, {"Id": "ok", "MessageBody": "x"}]}),
    )
    .await
    .unwrap();
    assert_eq!(
        r["Failed"][0]["Message"],
        "One or more parameters cannot be validated. Reason: Message must be shorter than 1024 bytes."
    );
    assert_eq!(r["Successful"][0]["Id"], "ok");
    let e = send(&sb, &url, json!({"MessageBody": big}))
        .await
        .unwrap_err();
    assert_eq!(
        e.message,
        "One or more parameters are invalid. Reason: Message must be shorter than 1024 bytes."
    );
}
