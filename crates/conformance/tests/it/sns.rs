//! SNS through aws-sdk-sns, delivering to SQS queues.

use aws_sdk_sns::types::MessageAttributeValue;
use lifehook_conformance::Harness;
use lifehook_model::delivery::{Delivery, DeliveryPath, parse_delivery};
use lifehook_model::message::SnsEnvelope;

const LIFECYCLE: &str = r#"{"Origin":"EC2","LifecycleHookName":"hook","Destination":"AutoScalingGroup","AccountId":"000000000000","RequestId":"5a062a09-2965-8413-43f9-83bd8649c9eb","LifecycleTransition":"autoscaling:EC2_INSTANCE_LAUNCHING","AutoScalingGroupName":"web","Service":"AWS Auto Scaling","Time":"2023-09-11T03:30:33.136Z","EC2InstanceId":"i-0853dfa8ce1627af9","LifecycleActionToken":"917070d0-a303-474b-a36c-a5e38a19de5e"}"#;

async fn queue(h: &Harness, name: &str) -> (String, String) {
    let url = h
        .sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned();
    (url, format!("arn:aws:sqs:us-east-1:000000000000:{name}"))
}

async fn bodies(h: &Harness, url: &str) -> Vec<String> {
    h.sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap()
        .messages()
        .iter()
        .map(|m| m.body().unwrap_or_default().to_owned())
        .collect()
}

async fn subscribe(h: &Harness, topic: &str, queue_arn: &str, attrs: &[(&str, &str)]) -> String {
    let mut s = h
        .sns
        .subscribe()
        .topic_arn(topic)
        .protocol("sqs")
        .endpoint(queue_arn);
    for (k, v) in attrs {
        s = s.attributes(*k, *v);
    }
    s.send()
        .await
        .unwrap()
        .subscription_arn()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn envelope_and_raw_delivery_to_sqs() {
    let h = Harness::manual().await;
    let topic = h
        .sns
        .create_topic()
        .name("hooks")
        .send()
        .await
        .unwrap()
        .topic_arn()
        .unwrap()
        .to_owned();
    assert_eq!(topic, "arn:aws:sns:us-east-1:000000000000:hooks");
    let again = h.sns.create_topic().name("hooks").send().await.unwrap();
    assert_eq!(again.topic_arn(), Some(topic.as_str()), "idempotent");

    let (wrapped_url, wrapped_arn) = queue(&h, "wrapped").await;
    let (raw_url, raw_arn) = queue(&h, "raw").await;
    let sub = subscribe(&h, &topic, &wrapped_arn, &[]).await;
    subscribe(&h, &topic, &raw_arn, &[("RawMessageDelivery", "true")]).await;

    let subject =
        "Auto Scaling:  Lifecycle action 'LAUNCHING' for instance i-0853dfa8ce1627af9 in progress.";
    let published = h
        .sns
        .publish()
        .topic_arn(&topic)
        .subject(subject)
        .message(LIFECYCLE)
        .send()
        .await
        .unwrap();

    let wrapped = bodies(&h, &wrapped_url).await;
    assert_eq!(wrapped.len(), 1);
    let env: SnsEnvelope = serde_json::from_str(&wrapped[0]).expect("an SNS envelope");
    assert_eq!(env.kind, "Notification");
    assert_eq!(env.topic_arn, topic);
    assert_eq!(env.subject.as_deref(), Some(subject));
    assert_eq!(env.message, LIFECYCLE);
    assert_eq!(Some(env.message_id.as_str()), published.message_id());
    assert_eq!(env.signature_version, "1");
    assert!(!env.signature.is_empty());
    assert!(
        env.unsubscribe_url.contains(&sub),
        "{}",
        env.unsubscribe_url
    );
    assert!(
        env.signing_cert_url.starts_with(&h.endpoint()),
        "{}",
        env.signing_cert_url
    );
    match parse_delivery(&wrapped[0]).unwrap() {
        Delivery::Action(a) => {
            assert_eq!(a.path, DeliveryPath::Sns);
            assert_eq!(a.group, "web");
            assert_eq!(a.instance_id, "i-0853dfa8ce1627af9");
        }
        other => panic!("{other:?}"),
    }

    let raw = bodies(&h, &raw_url).await;
    assert_eq!(raw, [LIFECYCLE.to_owned()]);
    match parse_delivery(&raw[0]).unwrap() {
        Delivery::Action(a) => assert_eq!(a.path, DeliveryPath::Direct),
        other => panic!("{other:?}"),
    }

    let subs = h
        .sns
        .list_subscriptions_by_topic()
        .topic_arn(&topic)
        .send()
        .await
        .unwrap();
    assert_eq!(subs.subscriptions().len(), 2);
    let attrs = h
        .sns
        .get_subscription_attributes()
        .subscription_arn(&sub)
        .send()
        .await
        .unwrap();
    assert_eq!(attrs.attributes().unwrap()["RawMessageDelivery"], "false");
    h.sns
        .unsubscribe()
        .subscription_arn(&sub)
        .send()
        .await
        .unwrap();
    h.sns
        .publish()
        .topic_arn(&topic)
        .message("again")
        .send()
        .await
        .unwrap();
    assert!(bodies(&h, &wrapped_url).await.is_empty(), "unsubscribed");
}

#[tokio::test]
async fn filter_policies() {
    let h = Harness::manual().await;
    let topic = h
        .sns
        .create_topic()
        .name("t")
        .send()
        .await
        .unwrap()
        .topic_arn()
        .unwrap()
        .to_owned();
    let (attr_url, attr_arn) = queue(&h, "by-attr").await;
    let (body_url, body_arn) = queue(&h, "by-body").await;
    subscribe(
        &h,
        &topic,
        &attr_arn,
        &[
            ("RawMessageDelivery", "true"),
            (
                "FilterPolicy",
                r#"{"kind":["launch"],"size":[{"numeric":[">",10]}]}"#,
            ),
        ],
    )
    .await;
    let body_sub = subscribe(&h, &topic, &body_arn, &[("RawMessageDelivery", "true")]).await;
    h.sns
        .set_subscription_attributes()
        .subscription_arn(&body_sub)
        .attribute_name("FilterPolicyScope")
        .attribute_value("MessageBody")
        .send()
        .await
        .unwrap();
    h.sns
        .set_subscription_attributes()
        .subscription_arn(&body_sub)
        .attribute_name("FilterPolicy")
        .attribute_value(r#"{"AutoScalingGroupName":[{"prefix":"we"}]}"#)
        .send()
        .await
        .unwrap();
    let bad = h
        .sns
        .set_subscription_attributes()
        .subscription_arn(&body_sub)
        .attribute_name("FilterPolicy")
        .attribute_value(r#"{"x":"not-an-array"}"#)
        .send()
        .await;
    assert!(bad.is_err());

    let attr = |v: &str, t: &str| {
        MessageAttributeValue::builder()
            .data_type(t)
            .string_value(v)
            .build()
            .unwrap()
    };
    for (kind, size, msg) in [
        ("launch", "11", "m1"),
        ("terminate", "11", "m2"),
        ("launch", "5", "m3"),
    ] {
        h.sns
            .publish()
            .topic_arn(&topic)
            .message(msg)
            .message_attributes("kind", attr(kind, "String"))
            .message_attributes("size", attr(size, "Number"))
            .send()
            .await
            .unwrap();
    }
    assert_eq!(bodies(&h, &attr_url).await, ["m1"]);
    h.sns
        .publish()
        .topic_arn(&topic)
        .message(LIFECYCLE)
        .send()
        .await
        .unwrap();
    assert_eq!(bodies(&h, &body_url).await, [LIFECYCLE.to_owned()]);
}

#[tokio::test]
async fn not_found_and_unsupported() {
    let h = Harness::manual().await;
    let err = h
        .sns
        .publish()
        .topic_arn("arn:aws:sns:us-east-1:000000000000:nope")
        .message("x")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_not_found_exception(), "{err:?}");
    let topic = h.sns.create_topic().name("t").send().await.unwrap();
    let err = h
        .sns
        .subscribe()
        .topic_arn(topic.topic_arn().unwrap())
        .protocol("email")
        .endpoint("someone@example.invalid")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_invalid_parameter_exception(), "{err:?}");
    // An HTTP/S endpoint is subscribed, pending its confirmation.
    let pending = h
        .sns
        .subscribe()
        .topic_arn(topic.topic_arn().unwrap())
        .protocol("https")
        .endpoint("https://example.invalid/")
        .send()
        .await
        .unwrap();
    assert_eq!(pending.subscription_arn(), Some("pending confirmation"));
    let topics = h.sns.list_topics().send().await.unwrap();
    assert_eq!(topics.topics().len(), 1);
    h.sns
        .delete_topic()
        .topic_arn(topic.topic_arn().unwrap())
        .send()
        .await
        .unwrap();
    let err = h
        .sns
        .get_topic_attributes()
        .topic_arn(topic.topic_arn().unwrap())
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_not_found_exception(), "{err:?}");
}
