//! The Runtime API driven with plain HTTP against a sandbox on a manual clock.

use std::time::Duration;

use super::*;
use crate::clock::ClockMode;
use crate::{RunningSandbox, SandboxConfig};

const FN_ARN: &str = "arn:aws:lambda:us-east-1:000000000000:function:handler";
/// A bound on waiting for an answer that is already due; never a pause.
const BOUND: Duration = Duration::from_secs(10);

struct T {
    sb: RunningSandbox,
    http: reqwest::Client,
}

impl T {
    async fn new() -> T {
        let sb = crate::start(SandboxConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            clock: ClockMode::Manual,
            ..Default::default()
        })
        .await
        .expect("start");
        T {
            sb,
            http: reqwest::Client::new(),
        }
    }

    async fn control(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut r = self
            .http
            .request(method, format!("{}/_sandbox/{path}", self.sb.endpoint()));
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.expect("control");
        let status = resp.status().as_u16();
        (status, resp.json().await.expect("control json"))
    }

    /// Creates `handler` and answers its `runtime_api`.
    async fn function(&self, extra: Value) -> String {
        let mut body = json!({"name": "handler"});
        if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
            b.extend(e);
        }
        let (status, v) = self
            .control(reqwest::Method::POST, "lambda/functions", Some(body))
            .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["FunctionArn"], FN_ARN);
        assert_eq!(v["env"]["AWS_LAMBDA_FUNCTION_NAME"], "handler");
        v["runtime_api"].as_str().expect("runtime_api").to_owned()
    }

    async fn view(&self) -> Value {
        self.control(reqwest::Method::GET, "lambda/functions/handler", None)
            .await
            .1
    }

    async fn advance(&self, seconds: f64) {
        let (s, v) = self
            .control(
                reqwest::Method::POST,
                "clock/advance",
                Some(json!({"seconds": seconds})),
            )
            .await;
        assert_eq!(s, 200, "{v}");
    }

    async fn json_call(&self, target: &str, body: Value) -> Value {
        let r = self
            .http
            .post(self.sb.endpoint())
            .header("x-amz-target", target)
            .header("content-type", "application/x-amz-json-1.1")
            .body(body.to_string())
            .send()
            .await
            .expect("json call");
        assert!(r.status().is_success(), "{target}: {}", r.status());
        r.json().await.expect("json answer")
    }

    /// `ApproximateNumberOfMessages` of the queue at `url`.
    async fn visible(&self, url: &str) -> String {
        let attrs = self
            .json_call(
                "AmazonSQS.GetQueueAttributes",
                json!({"QueueUrl": url, "AttributeNames": ["ApproximateNumberOfMessages"]}),
            )
            .await;
        attrs["Attributes"]["ApproximateNumberOfMessages"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    async fn query(&self, form: &[(&str, &str)]) -> String {
        let r = self
            .http
            .post(self.sb.endpoint())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(
                form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(form)
                    .finish(),
            )
            .send()
            .await
            .expect("query call");
        let ok = r.status().is_success();
        let text = r.text().await.expect("text");
        assert!(ok, "{form:?}: {text}");
        text
    }
}

/// `GET …/invocation/next`: (request id, headers, payload).
async fn next(http: &reqwest::Client, api: &str) -> (String, reqwest::header::HeaderMap, Value) {
    let r = tokio::time::timeout(
        BOUND,
        http.get(format!("http://{api}/2018-06-01/runtime/invocation/next"))
            .send(),
    )
    .await
    .expect("next answered")
    .expect("next");
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    let id = h["lambda-runtime-aws-request-id"]
        .to_str()
        .expect("id")
        .to_owned();
    (id, h, r.json().await.expect("payload"))
}

async fn post(http: &reqwest::Client, api: &str, path: &str, body: Value) -> u16 {
    http.post(format!("http://{api}/2018-06-01/runtime/{path}"))
        .header("lambda-runtime-function-error-type", "Handler.Oops")
        .json(&body)
        .send()
        .await
        .expect("post")
        .status()
        .as_u16()
}

#[tokio::test]
async fn eventbridge_rule_invokes_the_function_and_records_the_response() {
    let t = T::new().await;
    let api = t.function(json!({"timeout_secs": 30})).await;
    t.json_call(
        "AWSEvents.PutRule",
        json!({"Name": "lc", "EventPattern": r#"{"source":["aws.autoscaling"]}"#}),
    )
    .await;
    let r = t
        .json_call(
            "AWSEvents.PutTargets",
            json!({"Rule": "lc", "Targets": [{"Id": "f", "Arn": FN_ARN}]}),
        )
        .await;
    assert_eq!(r["FailedEntryCount"], 0);

    // The poll starts first and is woken by the event.
    let http = t.http.clone();
    let api2 = api.clone();
    let poll = tokio::spawn(async move { next(&http, &api2).await });
    t.json_call(
        "AWSEvents.PutEvents",
        json!({"Entries": [{"Source": "aws.autoscaling", "DetailType": "EC2 Instance-launch Lifecycle Action", "Detail": "{\"AutoScalingGroupName\":\"web\"}"}]}),
    )
    .await;
    let (id, h, event) = poll.await.expect("poll task");
    assert_eq!(event["detail-type"], "EC2 Instance-launch Lifecycle Action");
    assert_eq!(event["detail"]["AutoScalingGroupName"], "web");
    assert!(event.get("Records").is_none());
    assert_eq!(h["lambda-runtime-invoked-function-arn"], FN_ARN);
    assert!(
        h["lambda-runtime-trace-id"]
            .to_str()
            .expect("trace")
            .starts_with("Root=1-")
    );
    let deadline: u64 = h["lambda-runtime-deadline-ms"]
        .to_str()
        .expect("deadline")
        .parse()
        .expect("number");
    let now = real_now_ms();
    assert!(
        deadline > now + 20_000 && deadline <= now + 30_000,
        "{deadline} vs {now}"
    );
    assert_eq!(t.view().await["counts"]["in_flight"], 1);

    let s = post(
        &t.http,
        &api,
        &format!("invocation/{id}/response"),
        json!({"ok": true}),
    )
    .await;
    assert_eq!(s, 202);
    let v = t.view().await;
    let inv = &v["invocations"][0];
    assert_eq!(inv["status"], "succeeded", "{v}");
    assert_eq!(inv["source"], "events");
    assert_eq!(inv["response"], json!({"ok": true}));
    assert_eq!(inv["attempts"], 1);
    // Answering twice, or an unknown id, is refused.
    assert_eq!(
        post(
            &t.http,
            &api,
            &format!("invocation/{id}/response"),
            json!({})
        )
        .await,
        400
    );
    assert_eq!(
        post(&t.http, &api, "invocation/nope/error", json!({})).await,
        400
    );
}

#[tokio::test]
async fn errors_are_retried_twice_then_the_invocation_fails() {
    let t = T::new().await;
    let api = t.function(json!({})).await;
    let (s, v) = t
        .control(
            reqwest::Method::POST,
            "lambda/functions/handler/invocations",
            Some(json!({"n": 1})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let rid = v["RequestId"].as_str().expect("id").to_owned();

    let (id, _, payload) = next(&t.http, &api).await;
    assert_eq!((id.as_str(), &payload), (rid.as_str(), &json!({"n": 1})));
    let err = json!({"errorType": "Handler.Oops", "errorMessage": "first"});
    assert_eq!(
        post(&t.http, &api, &format!("invocation/{id}/error"), err).await,
        202
    );
    let v = t.view().await;
    assert_eq!(v["invocations"][0]["status"], "retry_scheduled", "{v}");
    assert_eq!(
        v["invocations"][0]["errors"][0]["errorType"],
        "Handler.Oops"
    );
    assert_eq!(
        v["invocations"][0]["errors"][0]["payload"]["errorMessage"],
        "first"
    );

    // Nothing is handed out before the retry delay has passed on the virtual clock.
    t.advance(59.0).await;
    assert_eq!(t.view().await["counts"]["pending"], 0);
    t.advance(1.0).await;
    let (id2, _, _) = next(&t.http, &api).await;
    assert_eq!(id2, rid, "a retry keeps the request id");
    let err = json!({"errorType": "Handler.Oops", "errorMessage": "second"});
    assert_eq!(
        post(&t.http, &api, &format!("invocation/{id}/error"), err).await,
        202
    );

    t.advance(120.0).await;
    let (id3, _, _) = next(&t.http, &api).await;
    assert_eq!(id3, rid);
    // The third attempt times out (default timeout 3 s).
    t.advance(3.0).await;
    let v = t.view().await;
    let inv = &v["invocations"][0];
    assert_eq!(inv["status"], "failed", "{v}");
    assert_eq!(inv["attempts"], 3);
    assert_eq!(inv["errors"].as_array().map(Vec::len), Some(3));
    assert_eq!(inv["errors"][2]["errorType"], "Sandbox.Timedout");
    assert_eq!(v["counts"]["failed"], 1);
    // A late answer to a timed-out attempt is refused.
    assert_eq!(
        post(
            &t.http,
            &api,
            &format!("invocation/{id}/response"),
            json!({})
        )
        .await,
        400
    );
    // No further retry.
    t.advance(600.0).await;
    assert_eq!(t.view().await["counts"]["pending"], 0);
}

#[tokio::test]
async fn sns_subscription_gets_an_sns_shaped_record() {
    let t = T::new().await;
    let api = t.function(json!({})).await;
    let topic = "arn:aws:sns:us-east-1:000000000000:hooks";
    t.query(&[
        ("Action", "CreateTopic"),
        ("Version", "2010-03-31"),
        ("Name", "hooks"),
    ])
    .await;
    let sub = t
        .query(&[
            ("Action", "Subscribe"),
            ("Version", "2010-03-31"),
            ("TopicArn", topic),
            ("Protocol", "lambda"),
            ("Endpoint", FN_ARN),
        ])
        .await;
    t.query(&[
        ("Action", "Publish"),
        ("Version", "2010-03-31"),
        ("TopicArn", topic),
        ("Subject", "hello subject"),
        ("Message", "{\"k\":\"v\"}"),
    ])
    .await;
    let (id, _, event) = next(&t.http, &api).await;
    let rec = &event["Records"][0];
    assert_eq!(rec["EventSource"], "aws:sns");
    assert_eq!(rec["EventVersion"], "1.0");
    let sub_arn = rec["EventSubscriptionArn"].as_str().expect("sub arn");
    assert!(sub.contains(sub_arn), "{sub} / {sub_arn}");
    let sns = &rec["Sns"];
    assert_eq!(sns["Type"], "Notification");
    assert_eq!(sns["TopicArn"], topic);
    assert_eq!(sns["Subject"], "hello subject");
    assert_eq!(sns["Message"], "{\"k\":\"v\"}");
    assert_eq!(sns["SignatureVersion"], "1");
    assert_eq!(sns["MessageAttributes"], json!({}));
    assert!(sns["SigningCertUrl"].is_string() && sns["UnsubscribeUrl"].is_string());
    assert!(sns.get("SigningCertURL").is_none());
    assert_eq!(
        post(
            &t.http,
            &api,
            &format!("invocation/{id}/response"),
            json!(null)
        )
        .await,
        202
    );
    assert_eq!(t.view().await["invocations"][0]["source"], "sns");
}

#[tokio::test]
async fn a_hook_targeting_a_function_invokes_it_with_the_lifecycle_message() {
    let t = T::new().await;
    let api = t.function(json!({})).await;
    t.query(&[
        ("Action", "CreateAutoScalingGroup"),
        ("Version", "2011-01-01"),
        ("AutoScalingGroupName", "web"),
        ("MinSize", "0"),
        ("MaxSize", "2"),
        ("DesiredCapacity", "0"),
        ("LaunchTemplate.LaunchTemplateName", "lt-web"),
        ("VPCZoneIdentifier", "subnet-a"),
    ])
    .await;
    t.query(&[
        ("Action", "PutLifecycleHook"),
        ("Version", "2011-01-01"),
        ("AutoScalingGroupName", "web"),
        ("LifecycleHookName", "boot"),
        ("LifecycleTransition", "autoscaling:EC2_INSTANCE_LAUNCHING"),
        ("NotificationTargetARN", FN_ARN),
        ("NotificationMetadata", "meta"),
    ])
    .await;
    // No test notification goes to a function.
    assert_eq!(t.view().await["invocations"], json!([]));
    t.query(&[
        ("Action", "SetDesiredCapacity"),
        ("Version", "2011-01-01"),
        ("AutoScalingGroupName", "web"),
        ("DesiredCapacity", "1"),
    ])
    .await;
    let (_, _, msg) = next(&t.http, &api).await;
    assert_eq!(msg["LifecycleHookName"], "boot");
    assert_eq!(msg["AutoScalingGroupName"], "web");
    assert_eq!(
        msg["LifecycleTransition"],
        "autoscaling:EC2_INSTANCE_LAUNCHING"
    );
    assert_eq!(msg["Service"], "AWS Auto Scaling");
    assert_eq!(msg["NotificationMetadata"], "meta");
    assert!(
        msg["LifecycleActionToken"]
            .as_str()
            .is_some_and(|s| s.len() == 36)
    );
    assert!(
        msg["EC2InstanceId"]
            .as_str()
            .is_some_and(|s| s.starts_with("i-"))
    );
    assert_eq!(t.view().await["invocations"][0]["source"], "autoscaling");
}

#[tokio::test]
async fn an_sqs_event_source_hands_over_batches_and_deletes_what_succeeded() {
    let t = T::new().await;
    t.json_call("AmazonSQS.CreateQueue", json!({"QueueName": "dlq"}))
        .await;
    let redrive =
        r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dlq","maxReceiveCount":"2"}"#;
    let url = t
        .json_call(
            "AmazonSQS.CreateQueue",
            json!({"QueueName": "work", "Attributes": {"VisibilityTimeout": "30", "RedrivePolicy": redrive}}),
        )
        .await["QueueUrl"]
        .as_str()
        .expect("QueueUrl")
        .to_owned();
    for (spec, needle) in [
        (json!({"queue": "nope"}), "no such queue"),
        (json!({"queue": "work", "batch_size": 11}), "batch_size"),
        (
            json!({"queue": "arn:aws:sqs:eu-west-1:000000000000:work"}),
            "eu-west-1",
        ),
        (json!({"queue": "work", "bogus": 1}), "bogus"),
    ] {
        let (status, v) = t
            .control(
                reqwest::Method::POST,
                "lambda/functions",
                Some(json!({"name": "bad", "sqs_event_source": spec})),
            )
            .await;
        assert_eq!(status, 400, "{spec}: {v}");
        assert!(v.to_string().contains(needle), "{v} should name {needle}");
    }
    let api = t
        .function(json!({"timeout_secs": 10, "sqs_event_source": {
            "queue": url, "batch_size": 2, "report_batch_item_failures": true}}))
        .await;
    for body in ["a", "b", "c"] {
        t.json_call(
            "AmazonSQS.SendMessage",
            json!({"QueueUrl": url, "MessageBody": body}),
        )
        .await;
    }
    let bodies = |ev: &Value| -> Vec<String> {
        let mut b: Vec<String> = ev["Records"]
            .as_array()
            .expect("Records")
            .iter()
            .map(|r| r["body"].as_str().expect("body").to_owned())
            .collect();
        b.sort();
        b
    };

    // Batch 1 (batch_size 2): "b" is reported failed, "a" is deleted.
    let (id1, _, ev) = next(&t.http, &api).await;
    assert_eq!(bodies(&ev), ["a", "b"]);
    let rec = &ev["Records"][0];
    assert_eq!(rec["eventSource"], "aws:sqs");
    assert_eq!(
        rec["eventSourceARN"],
        "arn:aws:sqs:us-east-1:000000000000:work"
    );
    assert_eq!(rec["awsRegion"], "us-east-1");
    assert_eq!(rec["attributes"]["ApproximateReceiveCount"], "1");
    assert!(rec["receiptHandle"].is_string() && rec["md5OfBody"].is_string());
    let b_id = ev["Records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["body"] == "b")
        .expect("b")["messageId"]
        .clone();
    let failures = json!({"batchItemFailures": [{"itemIdentifier": b_id}]});
    assert_eq!(
        post(
            &t.http,
            &api,
            &format!("invocation/{id1}/response"),
            failures
        )
        .await,
        202
    );
    // Batch 2: "c" alone ("b" is invisible for 30 s); an error deletes nothing.
    let (id2, _, ev) = next(&t.http, &api).await;
    assert_eq!(bodies(&ev), ["c"]);
    let oops = json!({"errorType": "Oops", "errorMessage": "no"});
    assert_eq!(
        post(&t.http, &api, &format!("invocation/{id2}/error"), oops).await,
        202
    );
    // Both come back once visible, received a second time; this batch times out.
    t.advance(31.0).await;
    let (id3, _, ev) = next(&t.http, &api).await;
    assert_eq!(bodies(&ev), ["b", "c"]);
    assert_eq!(
        ev["Records"][0]["attributes"]["ApproximateReceiveCount"],
        "2"
    );
    t.advance(11.0).await;
    let v = t.view().await;
    let status = |id: &str| {
        v["invocations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["RequestId"] == id)
            .map(|i| {
                (
                    i["source"].clone(),
                    i["status"].clone(),
                    i["attempts"].clone(),
                )
            })
    };
    assert_eq!(
        status(&id1),
        Some((json!("sqs"), json!("succeeded"), json!(1)))
    );
    assert_eq!(
        status(&id2),
        Some((json!("sqs"), json!("failed"), json!(1))),
        "no retry"
    );
    assert_eq!(
        status(&id3),
        Some((json!("sqs"), json!("failed"), json!(1)))
    );
    let src = &v["sqs_event_source"];
    assert_eq!(src["deleted"], 1, "{src}");
    assert_eq!(src["failed_batches"], 2, "{src}");
    assert_eq!(src["batch_in_flight"], Value::Null, "{src}");
    // Past maxReceiveCount (2) the next receive moves them to the dead-letter queue.
    t.advance(31.0).await;
    let got = t
        .json_call("AmazonSQS.ReceiveMessage", json!({"QueueUrl": url}))
        .await;
    assert!(
        got["Messages"].as_array().is_none_or(Vec::is_empty),
        "{got}"
    );
    assert_eq!(t.visible(&url.replace("/work", "/dlq")).await, "2");
}

#[tokio::test]
async fn an_sqs_event_source_polls_only_what_its_role_allows() {
    let t = T::new().await;
    let url = t
        .json_call("AmazonSQS.CreateQueue", json!({"QueueName": "work"}))
        .await["QueueUrl"]
        .as_str()
        .expect("QueueUrl")
        .to_owned();
    let bind = |actions: Vec<&'static str>| {
        let doc = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Action": actions, "Resource": "arn:aws:sqs:us-east-1:000000000000:work"}]});
        t.control(
            reqwest::Method::POST,
            "iam/policies",
            Some(json!({"access_key_id": "fn-role", "policy": doc})),
        )
    };
    let (status, v) = bind(vec!["sqs:GetQueueAttributes"]).await;
    assert_eq!(status, 200, "{v}");
    let api = t
        .function(json!({"sqs_event_source": {"queue": "work", "access_key_id": "fn-role"}}))
        .await;
    let send = |body: &'static str| {
        t.json_call(
            "AmazonSQS.SendMessage",
            json!({"QueueUrl": url, "MessageBody": body}),
        )
    };
    send("first").await;
    let http = t.http.clone();
    let api2 = api.clone();
    let poll = tokio::spawn(async move { next(&http, &api2).await });
    // Without sqs:ReceiveMessage the mapping is refused, as AWS would refuse the role.
    let started = tokio::time::Instant::now();
    loop {
        let (_, iam) = t.control(reqwest::Method::GET, "iam", None).await;
        let denied = iam["denials"].as_array().is_some_and(|d| {
            d.iter().any(|d| {
                d["access_key_id"] == "fn-role"
                    && d["action"] == "sqs:ReceiveMessage"
                    && d["resource"] == "arn:aws:sqs:us-east-1:000000000000:work"
            })
        });
        if denied {
            break;
        }
        assert!(started.elapsed() < BOUND, "no denial recorded: {iam}");
        tokio::task::yield_now().await;
    }
    assert_eq!(t.visible(&url).await, "1", "not received");
    // Allowed, the waiting poll gets both messages once another one arrives.
    let (status, v) = bind(vec![
        "sqs:GetQueueAttributes",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
    ])
    .await;
    assert_eq!(status, 200, "{v}");
    send("second").await;
    let (id, _, ev) = poll.await.expect("poll");
    assert_eq!(ev["Records"].as_array().map(Vec::len), Some(2), "{ev}");
    assert_eq!(
        post(
            &t.http,
            &api,
            &format!("invocation/{id}/response"),
            json!({})
        )
        .await,
        202
    );
    let (_, iam) = t.control(reqwest::Method::GET, "iam", None).await;
    let used = &iam["allowed_actions"]["fn-role"];
    for a in [
        "sqs:GetQueueAttributes",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
    ] {
        assert!(
            used.as_array().is_some_and(|u| u.iter().any(|x| x == a)),
            "{a} not recorded as used: {iam}"
        );
    }
}

#[tokio::test]
async fn control_api_refuses_bad_requests_and_delete_releases_polls() {
    let t = T::new().await;
    let api = t.function(json!({})).await;
    let post_fn = |body: Value| t.control(reqwest::Method::POST, "lambda/functions", Some(body));
    assert_eq!(post_fn(json!({"name": "handler"})).await.0, 409);
    assert_eq!(post_fn(json!({"name": "bad name"})).await.0, 400);
    assert_eq!(
        post_fn(json!({"name": "x", "timeout_secs": 0})).await.0,
        400
    );
    assert_eq!(post_fn(json!({"name": "x", "max_retries": 3})).await.0, 400);
    assert_eq!(post_fn(json!({"name": "x", "bogus": 1})).await.0, 400);
    assert_eq!(
        t.control(reqwest::Method::GET, "lambda/functions/nope", None)
            .await
            .0,
        404
    );
    let r = t
        .http
        .post(format!(
            "{}/_sandbox/lambda/functions/handler/invocations",
            t.sb.endpoint()
        ))
        .body("not json")
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 400);
    let r = t
        .http
        .get(format!("http://{api}/2018-06-01/runtime/nothing"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 404);
    assert_eq!(
        post(
            &t.http,
            &api,
            "init/error",
            json!({"errorType": "Init", "errorMessage": "boom"})
        )
        .await,
        202
    );
    assert_eq!(
        t.view().await["init_errors"][0]["payload"]["errorMessage"],
        "boom"
    );

    // A waiting poll ends when its function is deleted.
    let http = t.http.clone();
    let api2 = api.clone();
    let poll = tokio::spawn(async move {
        http.get(format!("http://{api2}/2018-06-01/runtime/invocation/next"))
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    // Whether the poll is already waiting or arrives after the delete, it ends.
    tokio::task::yield_now().await;
    let (s, _) = t
        .control(reqwest::Method::DELETE, "lambda/functions/handler", None)
        .await;
    assert_eq!(s, 200);
    let status = tokio::time::timeout(BOUND, poll)
        .await
        .expect("poll ended")
        .expect("task");
    // 410 from the handler, or a closed connection once the listener is gone.
    assert!(matches!(status, Ok(410) | Err(_)), "{status:?}");
}

#[test]
fn batch_answers_keep_the_listed_items_or_fail_the_whole_batch() {
    let batch = vec![
        ("m1".to_owned(), "h1".to_owned()),
        ("m2".to_owned(), "h2".to_owned()),
    ];
    let keep = |answer: &str, report: bool| failed_items(answer, &batch, report);
    // Without ReportBatchItemFailures any successful answer deletes everything.
    assert_eq!(keep("not json", false), Some(vec![]));
    assert_eq!(
        keep(r#"{"batchItemFailures":[{"itemIdentifier":"m1"}]}"#, false),
        Some(vec![])
    );
    // With it: nothing listed deletes everything; listed items stay.
    for nothing in [
        "",
        "null",
        "{}",
        r#"{"batchItemFailures":null}"#,
        r#"{"batchItemFailures":[]}"#,
    ] {
        assert_eq!(keep(nothing, true), Some(vec![]), "{nothing:?}");
    }
    assert_eq!(
        keep(r#"{"batchItemFailures":[{"itemIdentifier":"m2"}]}"#, true),
        Some(vec!["m2".to_owned()])
    );
    // An answer that cannot be read, or names what the batch does not hold, fails it all.
    for bad in [
        "not json",
        r#"{"batchItemFailures":"m1"}"#,
        r#"{"batchItemFailures":[{"itemIdentifier":"m9"}]}"#,
        r#"{"batchItemFailures":[{"itemIdentifier":""}]}"#,
        r#"{"batchItemFailures":[{}]}"#,
    ] {
        assert_eq!(keep(bad, true), None, "{bad}");
    }
}

#[test]
fn arns_and_sns_events() {
    assert_eq!(parse_arn(FN_ARN), Some(("us-east-1", "handler")));
    assert_eq!(
        parse_arn("arn:aws:lambda:eu-west-1:000000000000:function:f:$LATEST"),
        Some(("eu-west-1", "f"))
    );
    assert_eq!(parse_arn("arn:aws:sqs:us-east-1:000000000000:q"), None);
    assert_eq!(
        parse_arn("arn:aws:lambda:us-east-1:000000000000:function:"),
        None
    );
    let env = json!({"Type": "Notification", "MessageId": "m", "TopicArn": "t", "Message": "x",
        "Timestamp": "ts", "SignatureVersion": "1", "Signature": "s",
        "SigningCertURL": "c", "UnsubscribeURL": "u"});
    let e: Value = serde_json::from_str(&sns_event(&env, "sub")).expect("json");
    let sns = &e["Records"][0]["Sns"];
    assert_eq!(sns["Subject"], Value::Null);
    assert_eq!(
        (
            sns["SigningCertUrl"].as_str(),
            sns["UnsubscribeUrl"].as_str()
        ),
        (Some("c"), Some("u"))
    );
}
