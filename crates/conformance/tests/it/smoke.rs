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
