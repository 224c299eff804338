use super::control::stack_group;
use super::ops::run;
use super::*;
use crate::clock::ClockMode;
use crate::protocol::Wire;

fn call(w: &mut World, body: &str) -> Result<String, AwsError> {
    let ctx = RequestCtx {
        request_id: "rid".into(),
        region: "eu-west-1".into(),
        host: "h".into(),
        path: "/".into(),
        service: Service::CloudFormation,
        wire: Wire::Query,
        op: "SignalResource".into(),
    };
    run(w, &ctx, &Params::parse(body.as_bytes()).expect("form"))
}

#[test]
fn records_signals_and_validates() {
    let sb = Sandbox::new(ClockMode::Manual, Default::default());
    let mut w = sb.lock();
    let ok = call(
        &mut w,
        "StackName=web&LogicalResourceId=Asg&UniqueId=i-0123&Status=SUCCESS",
    )
    .expect("signal");
    assert!(ok.starts_with(
        "<SignalResourceResponse xmlns=\"http://cloudformation.amazonaws.com/doc/2010-05-15/\">"
    ));
    call(&mut w, "StackName=arn%3Aaws%3Acloudformation%3Aeu-west-1%3A000000000000%3Astack%2Fweb%2Fx&LogicalResourceId=Asg&UniqueId=i-0456&Status=FAILURE").expect("arn");
    let s = signals(&w.region("eu-west-1").cloudformation).to_vec();
    assert_eq!(s.len(), 2);
    assert_eq!(
        (s[0].unique_id.as_str(), s[0].status.as_str()),
        ("i-0123", "SUCCESS")
    );
    assert_eq!(s[1].status, "FAILURE");

    let e = call(&mut w, "StackName=web&LogicalResourceId=Asg&UniqueId=i-1").unwrap_err();
    assert_eq!(e.code, "ValidationError");
    assert!(e.message.contains("'status'"), "{}", e.message);
    let e = call(
        &mut w,
        "StackName=web&LogicalResourceId=Asg&UniqueId=i-1&Status=OK",
    )
    .unwrap_err();
    assert!(e.message.contains("[SUCCESS, FAILURE]"), "{}", e.message);
    let e = call(&mut w, "LogicalResourceId=Asg&UniqueId=i-1&Status=SUCCESS").unwrap_err();
    assert!(e.message.contains("'stackName'"), "{}", e.message);
    let e = call(
        &mut w,
        "StackName=1bad&LogicalResourceId=Asg&UniqueId=i-1&Status=SUCCESS",
    )
    .unwrap_err();
    assert!(e.message.contains("regular expression"), "{}", e.message);
    let long = "x".repeat(65);
    let e = call(
        &mut w,
        &format!("StackName=web&LogicalResourceId=Asg&UniqueId={long}&Status=SUCCESS"),
    )
    .unwrap_err();
    assert!(e.message.contains("'uniqueId'"), "{}", e.message);
    assert_eq!(signals(&w.region("eu-west-1").cloudformation).len(), 2);
}

#[test]
fn stack_groups_get_the_cloudformation_tags() {
    let sb = Sandbox::new(ClockMode::Manual, Default::default());
    let mut w = sb.lock();
    let e = stack_group(&mut w, "us-east-1", "web", "web-stack", "Asg").unwrap_err();
    assert!(e.contains("no Auto Scaling group \"web\""), "{e}");
    let ctx = RequestCtx {
        request_id: "rid".into(),
        region: "us-east-1".into(),
        host: "h".into(),
        path: "/".into(),
        service: Service::AutoScaling,
        wire: Wire::Query,
        op: "CreateAutoScalingGroup".into(),
    };
    let p = Params::from_pairs(
        [
            ("AutoScalingGroupName", "web"),
            ("MinSize", "0"),
            ("MaxSize", "1"),
            ("DesiredCapacity", "0"),
            ("LaunchConfigurationName", "lc"),
            ("AvailabilityZones.member.1", "us-east-1a"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    crate::autoscaling::ops::dispatch(&mut w, &ctx, &p).expect("CreateAutoScalingGroup");
    let v = stack_group(&mut w, "us-east-1", "web", "web-stack", "Asg").expect("tagged");
    assert_eq!(v["tags"]["aws:cloudformation:stack-name"], "web-stack");
    assert_eq!(v["tags"]["aws:cloudformation:logical-id"], "Asg");
    // Again: the same three tags, replaced, not doubled.
    stack_group(&mut w, "us-east-1", "web", "other", "Asg").expect("tagged");
    let g = &w.region("us-east-1").autoscaling.groups["web"];
    assert_eq!(g.tags.len(), 3);
    assert!(
        g.tags
            .iter()
            .any(|t| t.key == "aws:cloudformation:stack-name" && t.value == "other")
    );
    let id = g
        .tags
        .iter()
        .find(|t| t.key == "aws:cloudformation:stack-id")
        .map(|t| t.value.clone())
        .unwrap_or_default();
    assert!(id.starts_with("arn:aws:cloudformation:us-east-1:000000000000:stack/other/"));
}
