use super::ops::run;
use super::*;
use crate::Sandbox;
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
