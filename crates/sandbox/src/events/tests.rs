use super::ops::run;
use super::*;
use crate::Sandbox;
use crate::clock::ClockMode;
use crate::protocol::Wire;

fn call(w: &mut World, op: &str, body: Value) -> Result<Value, AwsError> {
    let ctx = RequestCtx {
        request_id: "r".into(),
        region: "us-east-1".into(),
        host: "h".into(),
        path: "/".into(),
        service: Service::Events,
        wire: Wire::Json { version: "1.1" },
        op: op.into(),
    };
    let Value::Object(m) = body else { panic!() };
    run(w, &ctx, &JsonBody(m))
}

#[test]
fn rules_route_matching_events_only() {
    let sb = Sandbox::new(ClockMode::Manual, Default::default());
    let mut w = sb.lock();
    sqs::create_test_queue(&mut w, "us-east-1", "q");
    let pat = r#"{"source":["aws.autoscaling"],"detail":{"AutoScalingGroupName":["web"]}}"#;
    call(
        &mut w,
        "PutRule",
        json!({"Name": "r1", "EventPattern": pat}),
    )
    .unwrap();
    assert_eq!(
        call(
            &mut w,
            "PutRule",
            json!({"Name": "bad", "EventPattern": "{\"source\":\"x\"}"})
        )
        .unwrap_err()
        .code,
        "InvalidEventPatternException"
    );
    assert!(
        call(
            &mut w,
            "PutRule",
            json!({"Name": "s", "ScheduleExpression": "rate(1 minute)"})
        )
        .is_err()
    );
    let r = call(&mut w, "PutTargets", json!({"Rule": "r1", "Targets": [{"Id": "t", "Arn": "arn:aws:sqs:us-east-1:000000000000:q"}]})).unwrap();
    assert_eq!(r["FailedEntryCount"], 0);
    let ev = |g: &str| json!({"Source": "aws.autoscaling", "DetailType": "x", "Detail": json!({"AutoScalingGroupName": g}).to_string()});
    let r = call(
        &mut w,
        "PutEvents",
        json!({"Entries": [ev("web"), ev("other")]}),
    )
    .unwrap();
    assert_eq!(r["FailedEntryCount"], 0);
    assert_eq!(sqs::queue_depth(&mut w, "us-east-1", "q"), Some(1));
    call(&mut w, "DisableRule", json!({"Name": "r1"})).unwrap();
    call(&mut w, "PutEvents", json!({"Entries": [ev("web")]})).unwrap();
    assert_eq!(sqs::queue_depth(&mut w, "us-east-1", "q"), Some(1));
    assert!(call(&mut w, "DeleteRule", json!({"Name": "r1"})).is_err());
    call(&mut w, "RemoveTargets", json!({"Rule": "r1", "Ids": ["t"]})).unwrap();
    call(&mut w, "DeleteRule", json!({"Name": "r1"})).unwrap();
    assert_eq!(
        call(&mut w, "DescribeRule", json!({"Name": "r1"}))
            .unwrap_err()
            .code,
        "ResourceNotFoundException"
    );
}
