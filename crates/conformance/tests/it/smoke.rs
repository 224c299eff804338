use lifehook_conformance::Harness;

#[tokio::test]
async fn describe_lifecycle_hook_types_with_the_sdk() {
    let h = Harness::manual().await;
    let out = h
        .asg
        .describe_lifecycle_hook_types()
        .send()
        .await
        .expect("DescribeLifecycleHookTypes");
    assert_eq!(
        out.lifecycle_hook_types(),
        [
            "autoscaling:EC2_INSTANCE_LAUNCHING",
            "autoscaling:EC2_INSTANCE_TERMINATING"
        ]
    );
}

#[tokio::test]
async fn unknown_action_is_an_aws_error() {
    let h = Harness::manual().await;
    let r = h
        .http()
        .post(h.endpoint())
        .header("content-type", "application/x-www-form-urlencoded")
        .body("Action=NoSuchThing&Version=2011-01-01")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body = r.text().await.unwrap();
    assert!(body.contains("<Code>InvalidAction</Code>"), "{body}");
}

/// Posts `body` with the given headers and returns (status, body).
async fn raw(h: &Harness, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> (u16, String) {
    raw_method(h, reqwest::Method::POST, path, headers, body).await
}

async fn raw_method(
    h: &Harness,
    method: reqwest::Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, String) {
    let mut req = h
        .http()
        .request(method, format!("{}{path}", h.endpoint()))
        .body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");

#[tokio::test]
async fn malformed_requests_get_aws_shaped_400s() {
    let h = Harness::manual().await;

    // Oversize body.
    let big = format!(
        "Action=DescribeAutoScalingGroups&Version=2011-01-01&X={}",
        "a".repeat(3 * 1024 * 1024)
    );
    let (status, body) = raw(&h, "/", &[FORM], big.into_bytes()).await;
    assert_eq!(status, 400);
    assert!(
        body.contains("<Code>RequestEntityTooLarge</Code>"),
        "{body}"
    );

    // A missing required parameter names it.
    let (status, body) = raw(
        &h,
        "/",
        &[FORM],
        b"Action=CompleteLifecycleAction&Version=2011-01-01&LifecycleHookName=h&LifecycleActionResult=CONTINUE&InstanceId=i-1".to_vec(),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body.contains("<Code>ValidationError</Code>") && body.contains("autoScalingGroupName"),
        "{body}"
    );

    // An invalid integer names the parameter.
    let (status, body) = raw(
        &h,
        "/",
        &[FORM],
        b"Action=CreateAutoScalingGroup&Version=2011-01-01&AutoScalingGroupName=g&MinSize=one&MaxSize=2".to_vec(),
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("MinSize"), "{body}");

    // Broken form encoding is decoded leniently and then rejected as a missing Action.
    let (status, body) = raw(&h, "/", &[FORM], b"%%%&&&==".to_vec()).await;
    assert_eq!(status, 400);
    assert!(body.contains("<ErrorResponse"), "{body}");

    // Broken JSON to a JSON-protocol service.
    let (status, body) = raw(
        &h,
        "/",
        &[
            ("x-amz-target", "AmazonSQS.SendMessage"),
            ("content-type", "application/x-amz-json-1.0"),
        ],
        b"{\"QueueUrl\": ".to_vec(),
    )
    .await;
    assert_eq!(status, 400);
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON error body");
    assert!(
        v["__type"]
            .as_str()
            .unwrap_or_default()
            .ends_with("SerializationException"),
        "{body}"
    );

    // Broken XML to S3.
    let (status, body) = raw_method(
        &h,
        reqwest::Method::PUT,
        "/bucket-x",
        &[(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=t/20261122/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0",
        )],
        b"<CreateBucketConfiguration><LocationConstraint>eu-west-1".to_vec(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("<Error><Code>"), "{body}");

    // The sandbox is still healthy after all of it.
    let ok = h.asg.describe_lifecycle_hook_types().send().await;
    assert!(ok.is_ok());
}
