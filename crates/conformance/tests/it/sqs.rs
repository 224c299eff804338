//! SQS through aws-sdk-sqs (JSON 1.0, query-compatible errors).

use std::time::Duration;

use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry,
    MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName,
    SendMessageBatchRequestEntry,
};
use lifehook_conformance::{Harness, eventually};

/// A real-time safety net only: behaviour is driven by the virtual clock and notifications.
const SAFETY: Duration = Duration::from_secs(5);

async fn queue(h: &Harness, name: &str) -> String {
    h.sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .expect("CreateQueue")
        .queue_url()
        .expect("url")
        .to_owned()
}

async fn receive_all(h: &Harness, url: &str) -> Vec<aws_sdk_sqs::types::Message> {
    h.sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .message_attribute_names("All")
        .send()
        .await
        .expect("ReceiveMessage")
        .messages()
        .to_vec()
}

#[tokio::test]
async fn create_queue_url_and_attributes() {
    let h = Harness::manual().await;
    let url = h
        .sqs
        .create_queue()
        .queue_name("q1")
        .attributes(QueueAttributeName::VisibilityTimeout, "45")
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned();
    assert!(url.ends_with("/000000000000/q1"), "{url}");
    // Idempotent with the same attributes; refused with different ones.
    h.sqs
        .create_queue()
        .queue_name("q1")
        .attributes(QueueAttributeName::VisibilityTimeout, "45")
        .send()
        .await
        .expect("same attributes");
    let err = h
        .sqs
        .create_queue()
        .queue_name("q1")
        .attributes(QueueAttributeName::VisibilityTimeout, "5")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_queue_name_exists(), "{err:?}");

    let got = h.sqs.get_queue_url().queue_name("q1").send().await.unwrap();
    assert_eq!(got.queue_url(), Some(url.as_str()));

    let attrs = h
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .unwrap();
    let a = attrs.attributes().unwrap();
    assert_eq!(a[&QueueAttributeName::VisibilityTimeout], "45");
    assert_eq!(a[&QueueAttributeName::MessageRetentionPeriod], "345600");
    assert_eq!(a[&QueueAttributeName::DelaySeconds], "0");
    assert_eq!(a[&QueueAttributeName::ApproximateNumberOfMessages], "0");
    assert_eq!(
        a[&QueueAttributeName::QueueArn],
        "arn:aws:sqs:us-east-1:000000000000:q1"
    );

    h.sqs
        .set_queue_attributes()
        .queue_url(&url)
        .attributes(QueueAttributeName::ReceiveMessageWaitTimeSeconds, "20")
        .send()
        .await
        .unwrap();
    let attrs = h
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::ReceiveMessageWaitTimeSeconds)
        .send()
        .await
        .unwrap();
    assert_eq!(
        attrs.attributes().unwrap()[&QueueAttributeName::ReceiveMessageWaitTimeSeconds],
        "20"
    );
    let bad = h
        .sqs
        .set_queue_attributes()
        .queue_url(&url)
        .attributes(QueueAttributeName::VisibilityTimeout, "99999")
        .send()
        .await;
    assert!(bad.is_err());

    queue(&h, "other-q").await;
    let list = h
        .sqs
        .list_queues()
        .queue_name_prefix("q")
        .send()
        .await
        .unwrap();
    assert_eq!(list.queue_urls(), std::slice::from_ref(&url));
    let page = h.sqs.list_queues().max_results(1).send().await.unwrap();
    assert_eq!(page.queue_urls().len(), 1);
    assert!(page.next_token().is_some());
    let page2 = h
        .sqs
        .list_queues()
        .max_results(1)
        .next_token(page.next_token().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(page2.queue_urls().len(), 1);
    assert_ne!(page2.queue_urls(), page.queue_urls());

    h.sqs.delete_queue().queue_url(&url).send().await.unwrap();
    let err = h
        .sqs
        .get_queue_url()
        .queue_name("q1")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_queue_does_not_exist(), "{err:?}");
}

#[tokio::test]
async fn send_receive_delete_with_md5s() {
    let h = Harness::manual().await;
    let url = queue(&h, "q").await;
    let sent = h
        .sqs
        .send_message()
        .queue_url(&url)
        .message_body("hello world")
        .message_attributes(
            "kind",
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value("lifecycle")
                .build()
                .unwrap(),
        )
        .message_attributes(
            "n",
            MessageAttributeValue::builder()
                .data_type("Number")
                .string_value("42")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    // Values computed independently (Python hashlib, AWS's attribute encoding).
    assert_eq!(
        sent.md5_of_message_body(),
        Some("5eb63bbbe01eeed093cb22bb8f5acdc3")
    );
    assert_eq!(
        sent.md5_of_message_attributes(),
        Some("71224628b775d2b16fa0b2cf9f0b7d7c")
    );

    let msgs = receive_all(&h, &url).await;
    assert_eq!(msgs.len(), 1);
    let m = &msgs[0];
    assert_eq!(m.body(), Some("hello world"));
    assert_eq!(m.message_id(), sent.message_id());
    assert_eq!(m.md5_of_body(), Some("5eb63bbbe01eeed093cb22bb8f5acdc3"));
    assert_eq!(
        m.md5_of_message_attributes(),
        Some("71224628b775d2b16fa0b2cf9f0b7d7c")
    );
    let ma = m.message_attributes().unwrap();
    assert_eq!(ma["kind"].string_value(), Some("lifecycle"));
    assert_eq!(ma["n"].data_type(), "Number");
    let sys = m.attributes().unwrap();
    assert_eq!(
        sys[&MessageSystemAttributeName::ApproximateReceiveCount],
        "1"
    );
    assert!(sys.contains_key(&MessageSystemAttributeName::SentTimestamp));
    assert!(sys.contains_key(&MessageSystemAttributeName::ApproximateFirstReceiveTimestamp));

    h.sqs
        .delete_message()
        .queue_url(&url)
        .receipt_handle(m.receipt_handle().unwrap())
        .send()
        .await
        .unwrap();
    h.advance(60.0).await;
    assert!(receive_all(&h, &url).await.is_empty(), "deleted for good");

    let err = h
        .sqs
        .delete_message()
        .queue_url(&url)
        .receipt_handle("not-a-handle")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_receipt_handle_is_invalid(), "{err:?}");

    let err = h
        .sqs
        .send_message()
        .queue_url(url.replace("/q", "/missing"))
        .message_body("x")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_queue_does_not_exist(), "{err:?}");
}

#[tokio::test]
async fn visibility_timeout_and_receive_count() {
    let h = Harness::manual().await;
    let url = queue(&h, "vis").await;
    h.sqs
        .send_message()
        .queue_url(&url)
        .message_body("m")
        .send()
        .await
        .unwrap();
    let first = h
        .sqs
        .receive_message()
        .queue_url(&url)
        .visibility_timeout(30)
        .send()
        .await
        .unwrap();
    assert_eq!(first.messages().len(), 1);
    h.advance(29.0).await;
    assert!(receive_all(&h, &url).await.is_empty(), "still invisible");
    let attrs = h
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap();
    assert_eq!(
        attrs.attributes().unwrap()[&QueueAttributeName::ApproximateNumberOfMessagesNotVisible],
        "1"
    );
    h.advance(2.0).await;
    let again = receive_all(&h, &url).await;
    assert_eq!(again.len(), 1, "visible again after the timeout");
    assert_eq!(
        again[0].attributes().unwrap()[&MessageSystemAttributeName::ApproximateReceiveCount],
        "2"
    );

    // ChangeMessageVisibility extends, 0 releases.
    let handle = again[0].receipt_handle().unwrap();
    h.sqs
        .change_message_visibility()
        .queue_url(&url)
        .receipt_handle(handle)
        .visibility_timeout(300)
        .send()
        .await
        .unwrap();
    h.advance(100.0).await;
    assert!(receive_all(&h, &url).await.is_empty());
    h.sqs
        .change_message_visibility()
        .queue_url(&url)
        .receipt_handle(handle)
        .visibility_timeout(0)
        .send()
        .await
        .unwrap();
    assert_eq!(receive_all(&h, &url).await.len(), 1);
    let bad = h
        .sqs
        .change_message_visibility()
        .queue_url(&url)
        .receipt_handle(handle)
        .visibility_timeout(43_201)
        .send()
        .await;
    assert!(bad.is_err());
}

#[tokio::test]
async fn batch_operations_and_purge() {
    let h = Harness::manual().await;
    let url = queue(&h, "batch").await;
    let mut send = h.sqs.send_message_batch().queue_url(&url);
    for i in 0..3 {
        send = send.entries(
            SendMessageBatchRequestEntry::builder()
                .id(format!("e{i}"))
                .message_body(format!("body {i}"))
                .build()
                .unwrap(),
        );
    }
    send = send.entries(
        SendMessageBatchRequestEntry::builder()
            .id("bad")
            .message_body("x")
            .delay_seconds(901)
            .build()
            .unwrap(),
    );
    let out = send.send().await.unwrap();
    assert_eq!(out.successful().len(), 3);
    assert_eq!(out.failed().len(), 1);
    assert_eq!(out.failed()[0].id(), "bad");
    assert!(out.failed()[0].sender_fault());

    let msgs = receive_all(&h, &url).await;
    assert_eq!(msgs.len(), 3);
    let mut cmv = h.sqs.change_message_visibility_batch().queue_url(&url);
    for (i, m) in msgs.iter().enumerate() {
        cmv = cmv.entries(
            ChangeMessageVisibilityBatchRequestEntry::builder()
                .id(format!("c{i}"))
                .receipt_handle(m.receipt_handle().unwrap())
                .visibility_timeout(0)
                .build()
                .unwrap(),
        );
    }
    assert_eq!(cmv.send().await.unwrap().successful().len(), 3);
    let msgs = receive_all(&h, &url).await;
    assert_eq!(msgs.len(), 3, "visible again after a batch change to 0");

    let mut del = h.sqs.delete_message_batch().queue_url(&url);
    for (i, m) in msgs.iter().take(2).enumerate() {
        del = del.entries(
            DeleteMessageBatchRequestEntry::builder()
                .id(format!("d{i}"))
                .receipt_handle(m.receipt_handle().unwrap())
                .build()
                .unwrap(),
        );
    }
    del = del.entries(
        DeleteMessageBatchRequestEntry::builder()
            .id("junk")
            .receipt_handle("junk")
            .build()
            .unwrap(),
    );
    let out = del.send().await.unwrap();
    assert_eq!(out.successful().len(), 2);
    assert_eq!(out.failed()[0].code(), "ReceiptHandleIsInvalid");

    let empty = h.sqs.send_message_batch().queue_url(&url).send().await;
    assert!(empty.is_err(), "an empty batch is refused");

    h.advance(31.0).await;
    h.sqs.purge_queue().queue_url(&url).send().await.unwrap();
    h.advance(31.0).await;
    assert!(receive_all(&h, &url).await.is_empty(), "purged");
}

#[tokio::test]
async fn dead_letter_queue_after_max_receive_count() {
    let h = Harness::manual().await;
    queue(&h, "dlq").await;
    let url = h
        .sqs
        .create_queue()
        .queue_name("work")
        .attributes(QueueAttributeName::VisibilityTimeout, "10")
        .attributes(
            QueueAttributeName::RedrivePolicy,
            r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dlq","maxReceiveCount":"2"}"#,
        )
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned();
    let dlq_url = url.replace("/work", "/dlq");
    h.sqs
        .send_message()
        .queue_url(&url)
        .message_body("poison")
        .send()
        .await
        .unwrap();
    for _ in 0..2 {
        assert_eq!(receive_all(&h, &url).await.len(), 1);
        h.advance(11.0).await;
    }
    assert!(
        receive_all(&h, &url).await.is_empty(),
        "the third receive moves it instead"
    );
    let dead = receive_all(&h, &dlq_url).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body(), Some("poison"));
}

/// The long poll is parked once it has scheduled its deadline timer.
async fn wait_until_parked(h: &Harness, before: usize) {
    let sb = h.sandbox.sandbox.clone();
    eventually("the long poll to park", || {
        let sb = sb.clone();
        async move { (sb.lock().pending_timers() > before).then_some(()) }
    })
    .await;
}

#[tokio::test]
async fn long_poll_wakes_as_soon_as_a_message_arrives() {
    let h = Harness::manual().await;
    let url = queue(&h, "lp").await;
    let before = h.sandbox.sandbox.lock().pending_timers();
    let sqs = h.sqs.clone();
    let u = url.clone();
    let poll = tokio::spawn(async move {
        let start = std::time::Instant::now();
        let out = sqs
            .receive_message()
            .queue_url(u)
            .wait_time_seconds(20)
            .send()
            .await
            .unwrap();
        (start.elapsed(), out)
    });
    wait_until_parked(&h, before).await;
    assert!(!poll.is_finished(), "the poll waits for a message");
    h.sqs
        .send_message()
        .queue_url(&url)
        .message_body("wake up")
        .send()
        .await
        .unwrap();
    let (elapsed, out) = tokio::time::timeout(SAFETY, poll)
        .await
        .expect("the long poll returned promptly")
        .unwrap();
    assert_eq!(out.messages().len(), 1);
    assert_eq!(out.messages()[0].body(), Some("wake up"));
    assert!(elapsed < SAFETY, "{elapsed:?}");
}

#[tokio::test]
async fn long_poll_ends_when_virtual_time_passes_its_wait() {
    let h = Harness::manual().await;
    let url = queue(&h, "lp2").await;
    let before = h.sandbox.sandbox.lock().pending_timers();
    let sqs = h.sqs.clone();
    let poll = tokio::spawn(async move {
        sqs.receive_message()
            .queue_url(url)
            .wait_time_seconds(20)
            .send()
            .await
            .unwrap()
    });
    wait_until_parked(&h, before).await;
    h.advance(21.0).await;
    let out = tokio::time::timeout(SAFETY, poll)
        .await
        .expect("the poll ended with virtual time")
        .unwrap();
    assert!(out.messages().is_empty());
}

/// Older SDKs and CLIs speak Query, posting to the queue URL; errors then come as XML,
/// and JSON errors carry the legacy code in `x-amzn-query-error`.
#[tokio::test]
async fn query_protocol_and_error_shapes_over_http() {
    let h = Harness::manual().await;
    let url = queue(&h, "legacy").await;
    let form = |body: &'static str, to: String| {
        h.http()
            .post(to)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let r = form(
        "Action=SendMessage&Version=2012-11-05&MessageBody=hello",
        url.clone(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let xml = r.text().await.unwrap();
    assert!(
        xml.starts_with(
            "<SendMessageResponse xmlns=\"http://queue.amazonaws.com/doc/2012-11-05/\">"
        ),
        "{xml}"
    );
    assert!(
        xml.contains("<MD5OfMessageBody>5d41402abc4b2a76b9719d911017c592</MD5OfMessageBody>"),
        "{xml}"
    );
    let r = form(
        "Action=ReceiveMessage&Version=2012-11-05&AttributeName.1=ApproximateReceiveCount",
        url.clone(),
    )
    .await
    .unwrap();
    let xml = r.text().await.unwrap();
    assert!(xml.contains("<Body>hello</Body>"), "{xml}");
    assert!(
        xml.contains("<Attribute><Name>ApproximateReceiveCount</Name><Value>1</Value></Attribute>"),
        "{xml}"
    );
    let r = form(
        "Action=GetQueueUrl&Version=2012-11-05&QueueName=missing",
        h.endpoint(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    let xml = r.text().await.unwrap();
    assert!(
        xml.contains("<Code>AWS.SimpleQueueService.NonExistentQueue</Code>"),
        "{xml}"
    );

    let r = h
        .http()
        .post(h.endpoint())
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-target", "AmazonSQS.GetQueueUrl")
        .header("x-amzn-query-mode", "true")
        .body(r#"{"QueueName":"missing"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.headers()["x-amzn-query-error"],
        "AWS.SimpleQueueService.NonExistentQueue;Sender"
    );
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["__type"], "com.amazonaws.sqs#QueueDoesNotExist");
}

#[tokio::test]
async fn long_poll_wakes_when_a_message_becomes_visible() {
    let h = Harness::manual().await;
    let url = queue(&h, "lp3").await;
    h.sqs
        .send_message()
        .queue_url(&url)
        .message_body("again")
        .send()
        .await
        .unwrap();
    let first = h
        .sqs
        .receive_message()
        .queue_url(&url)
        .visibility_timeout(5)
        .send()
        .await
        .unwrap();
    assert_eq!(first.messages().len(), 1);
    let before = h.sandbox.sandbox.lock().pending_timers();
    let sqs = h.sqs.clone();
    let u = url.clone();
    let poll = tokio::spawn(async move {
        sqs.receive_message()
            .queue_url(u)
            .wait_time_seconds(20)
            .send()
            .await
            .unwrap()
    });
    wait_until_parked(&h, before).await;
    h.advance(6.0).await;
    let out = tokio::time::timeout(SAFETY, poll)
        .await
        .expect("woken by the visibility timeout")
        .unwrap();
    assert_eq!(out.messages().len(), 1);
    assert_eq!(out.messages()[0].body(), Some("again"));
}

#[tokio::test]
async fn delayed_messages_appear_after_their_delay() {
    let h = Harness::manual().await;
    let url = queue(&h, "delay").await;
    h.sqs
        .send_message()
        .queue_url(&url)
        .message_body("later")
        .delay_seconds(10)
        .send()
        .await
        .unwrap();
    assert!(receive_all(&h, &url).await.is_empty());
    let attrs = h
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .unwrap();
    assert_eq!(
        attrs.attributes().unwrap()[&QueueAttributeName::ApproximateNumberOfMessagesDelayed],
        "1"
    );
    h.advance(10.0).await;
    assert_eq!(receive_all(&h, &url).await.len(), 1);
    let err = h
        .sqs
        .send_message()
        .queue_url(&url)
        .message_body("x")
        .delay_seconds(901)
        .send()
        .await;
    assert!(err.is_err());
}
