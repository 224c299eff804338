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
    match handle(sb, &c, Input::Query(p)).await? {
        Reply::Xml(s) => Ok(s),
        other => panic!("not xml: {other:?}"),
    }
}

async fn call(sb: &Sandbox, op: &str, body: Value) -> Result<Value, AwsError> {
    let c = ctx(op, Wire::Json { version: "1.0" });
    let Value::Object(m) = body else { panic!() };
    match handle(sb, &c, Input::Json(JsonBody(m))).await? {
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
        assert_eq!(r["Messages"].as_array().unwrap().len(), 0, "invisible");
        sb.advance(10_000);
    }
    // Third receive exceeds maxReceiveCount: moved to the DLQ, not returned.
    let r = call(&sb, "ReceiveMessage", json!({"QueueUrl": url}))
        .await
        .unwrap();
    assert_eq!(r["Messages"].as_array().unwrap().len(), 0);
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
