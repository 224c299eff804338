use super::*;

fn policy(v: Value) -> Policy {
    Policy::parse(&v).expect("valid policy")
}

fn ctx() -> Context {
    Context::new("eu-west-1", "handler")
}

#[test]
fn allow_implicit_and_explicit_deny() {
    let p = policy(json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "autoscaling:*LifecycleAction*", "Resource": "*"},
            {"Effect": "Deny", "Action": "autoscaling:RecordLifecycleActionHeartbeat", "Resource": "*"}
        ]
    }));
    let r = Resource::new(
        "arn:aws:autoscaling:eu-west-1:000000000000:autoScalingGroup:x:autoScalingGroupName/web",
    );
    assert_eq!(
        p.evaluate("autoscaling:CompleteLifecycleAction", &r, &ctx()),
        Verdict::Allow
    );
    // Actions compare without case.
    assert_eq!(
        p.evaluate("AutoScaling:completelifecycleaction", &r, &ctx()),
        Verdict::Allow
    );
    assert_eq!(
        p.evaluate("autoscaling:RecordLifecycleActionHeartbeat", &r, &ctx()),
        Verdict::ExplicitDeny
    );
    assert_eq!(
        p.evaluate("autoscaling:DeleteAutoScalingGroup", &r, &ctx()),
        Verdict::ImplicitDeny
    );
}

#[test]
fn variables_wildcards_not_action_and_not_resource() {
    let p = policy(json!({
        "Version": "2012-10-17",
        "Statement": {"Effect": "Allow", "Action": ["sqs:ReceiveMessage"],
            "Resource": "arn:aws:sqs:${aws:RequestedRegion}:${aws:PrincipalAccount}:web-??"}
    }));
    let q = |n: &str, region: &str| Resource::new(format!("arn:aws:sqs:{region}:000000000000:{n}"));
    assert_eq!(
        p.evaluate("sqs:ReceiveMessage", &q("web-01", "eu-west-1"), &ctx()),
        Verdict::Allow
    );
    assert_eq!(
        p.evaluate("sqs:ReceiveMessage", &q("web-1", "eu-west-1"), &ctx()),
        Verdict::ImplicitDeny
    );
    assert_eq!(
        p.evaluate("sqs:ReceiveMessage", &q("web-01", "us-east-1"), &ctx()),
        Verdict::ImplicitDeny
    );
    // Without the 2012 version variables are literal text.
    let old = policy(json!({"Statement": {"Effect": "Allow", "Action": "*",
        "Resource": "arn:aws:sqs:${aws:RequestedRegion}:*"}}));
    assert_eq!(
        old.evaluate("sqs:ReceiveMessage", &q("a", "eu-west-1"), &ctx()),
        Verdict::ImplicitDeny
    );

    let p = policy(json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "*", "NotResource": "arn:aws:s3:::logs/*"}
        ]
    }));
    let obj = Resource::new("arn:aws:s3:::logs/a.txt");
    assert_eq!(p.evaluate("s3:PutObject", &obj, &ctx()), Verdict::Allow);
    assert_eq!(
        p.evaluate("iam:PassRole", &obj, &ctx()),
        Verdict::ImplicitDeny
    );
    assert_eq!(
        p.evaluate(
            "s3:PutObject",
            &Resource::new("arn:aws:s3:::other/a"),
            &ctx()
        ),
        Verdict::ExplicitDeny
    );
}

#[test]
fn conditions_on_resource_tags() {
    let p = policy(json!({
        "Version": "2012-10-17",
        "Statement": {"Effect": "Allow", "Action": "ec2:CreateTags", "Resource": "*",
            "Condition": {"StringLike": {"aws:ResourceTag/aws:autoscaling:groupName": ["web-*"]}}}
    }));
    let tagged = |g: &str| {
        Resource::new("arn:aws:ec2:eu-west-1:000000000000:instance/i-1")
            .key("aws:ResourceTag/aws:autoscaling:groupName", g)
    };
    assert_eq!(
        p.evaluate("ec2:CreateTags", &tagged("web-1"), &ctx()),
        Verdict::Allow
    );
    assert_eq!(
        p.evaluate("ec2:CreateTags", &tagged("db"), &ctx()),
        Verdict::ImplicitDeny
    );
    // A missing key fails a positive operator.
    let bare = Resource::new("arn:aws:ec2:eu-west-1:000000000000:instance/i-1");
    assert_eq!(
        p.evaluate("ec2:CreateTags", &bare, &ctx()),
        Verdict::ImplicitDeny
    );
    let p = policy(json!({
        "Version": "2012-10-17",
        "Statement": {"Effect": "Allow", "Action": "ec2:CreateTags", "Resource": "*",
            "Condition": {"StringNotEqualsIfExists": {"aws:ResourceTag/env": "prod"},
                          "StringEquals": {"aws:RequestedRegion": "${aws:RequestedRegion}"}}}
    }));
    assert_eq!(p.evaluate("ec2:CreateTags", &bare, &ctx()), Verdict::Allow);
    assert_eq!(
        p.evaluate(
            "ec2:CreateTags",
            &bare.clone().key("aws:ResourceTag/env", "prod"),
            &ctx()
        ),
        Verdict::ImplicitDeny
    );
}

#[test]
fn set_operators_judge_every_or_any_value_of_a_multivalued_key() {
    let p = Policy::parse(&json!({"Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "ec2:CreateTags", "Resource": "*",
         "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": ["patched", "owner"]}}},
        {"Effect": "Allow", "Action": "ec2:DeleteTags", "Resource": "*",
         "Condition": {"ForAnyValue:StringLike": {"aws:TagKeys": "tmp-*"}}},
        {"Effect": "Deny", "Action": "ec2:CreateTags", "Resource": "*",
         "Condition": {"ForAnyValue:StringEqualsIfExists": {"aws:TagKeys": "locked"}}}
    ]}))
    .unwrap();
    let keys = |ks: &[&str]| {
        ks.iter().fold(
            Resource::new("arn:aws:ec2:us-east-1:1:instance/i-1"),
            |r, k| r.key("aws:TagKeys", *k),
        )
    };
    let create = |ks: &[&str]| p.evaluate("ec2:CreateTags", &keys(ks), &ctx());
    let delete = |ks: &[&str]| p.evaluate("ec2:DeleteTags", &keys(ks), &ctx());
    assert_eq!(create(&["patched"]), Verdict::Allow);
    assert_eq!(create(&["patched", "owner"]), Verdict::Allow);
    assert_eq!(
        create(&["patched", "role"]),
        Verdict::ImplicitDeny,
        "one key outside"
    );
    // IAM's ForAllValues holds when the request has no such key (the ForAny deny's
    // IfExists holds too).
    assert_eq!(create(&[]), Verdict::ExplicitDeny);
    assert_eq!(create(&["patched", "locked"]), Verdict::ExplicitDeny);
    assert_eq!(delete(&["tmp-1", "owner"]), Verdict::Allow);
    assert_eq!(delete(&["owner"]), Verdict::ImplicitDeny);
    assert_eq!(
        delete(&[]),
        Verdict::ImplicitDeny,
        "ForAnyValue needs a value"
    );
}

#[test]
fn unsupported_documents_are_rejected_with_a_reason() {
    for (doc, needle) in [
        (
            json!({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*",
            "Condition": {"NumericLessThan": {"x": "1"}}}}),
            "NumericLessThan",
        ),
        (
            json!({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*",
            "Condition": {"ForEachValue:StringEquals": {"aws:TagKeys": "a"}}}}),
            "ForEachValue",
        ),
        (
            json!({"Statement": {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}}),
            "Principal",
        ),
        (
            json!({"Statement": {"Effect": "Maybe", "Action": "*", "Resource": "*"}}),
            "Effect",
        ),
        (
            json!({"Statement": {"Effect": "Allow", "Action": "s3", "Resource": "*"}}),
            "service:Action",
        ),
        (
            json!({"Statement": {"Effect": "Allow", "Action": "*"}}),
            "Resource",
        ),
        (json!([]), "object"),
        (json!({"Version": "2020-01-01", "Statement": []}), "Version"),
    ] {
        let e = Policy::parse(&doc).expect_err("rejected");
        assert!(e.contains(needle), "{e} should name {needle}");
    }
}

#[test]
fn bindings_spare_the_admin_key() {
    let mut iam = Iam::default();
    assert!(!iam.is_enforcing());
    let doc = json!({"Version": "2012-10-17", "Statement": []});
    iam.bind(None, doc.clone()).unwrap();
    assert!(iam.policy_for("anyone").is_some());
    assert!(iam.policy_for(ADMIN_ACCESS_KEY_ID).is_none());
    assert!(iam.bind(Some(ADMIN_ACCESS_KEY_ID), doc.clone()).is_err());
    assert!(iam.bind(Some("bad key"), doc).is_err());
    let mut h = HeaderMap::new();
    h.insert(
        http::header::AUTHORIZATION,
        "AWS4-HMAC-SHA256 Credential=AKIDHANDLER/20261122/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=x"
            .parse()
            .unwrap(),
    );
    assert_eq!(access_key_id(&h, None).as_deref(), Some("AKIDHANDLER"));
    assert_eq!(
        access_key_id(
            &HeaderMap::new(),
            Some("X-Amz-Credential=KEY%2F2026%2Fus-east-1")
        )
        .as_deref(),
        Some("KEY")
    );
    assert_eq!(
        action_of(Service::Sqs, "DeleteMessageBatch"),
        "sqs:DeleteMessage"
    );
    assert_eq!(
        s3_check("HeadObject", Some("b"), "k/x").resources[0].arn,
        "arn:aws:s3:::b/k/x"
    );
}
