use super::ops::run;
use super::*;
use crate::protocol::Wire;

fn ctx(op: &str) -> RequestCtx {
    RequestCtx {
        request_id: "r".into(),
        region: "us-east-1".into(),
        host: "h".into(),
        path: "/".into(),
        service: Service::Ssm,
        wire: Wire::Json { version: "1.1" },
        op: op.into(),
    }
}

fn call(w: &mut World, op: &str, body: Value) -> Result<Value, AwsError> {
    let Value::Object(m) = body else { panic!() };
    run(w, &ctx(op), &JsonBody(m))
}

#[test]
fn lifecycle_on_virtual_time_and_scripted_failure() {
    let mut w = World::new(1_000_000, Default::default());
    w.region("us-east-1").ssm.outcomes.push(OutcomeRule {
        instance_id: Some("i-bad".into()),
        command_contains: None,
        status: "Failed".into(),
        exit_code: Some(3),
        stdout: "boom".into(),
        stderr: String::new(),
        delay_seconds: Some(5.0),
        region: None,
    });
    let out = call(
        &mut w,
        "SendCommand",
        json!({"DocumentName": "AWS-RunShellScript", "InstanceIds": ["i-ok", "i-bad"],
               "Parameters": {"commands": ["echo hi"]}}),
    )
    .unwrap();
    let id = out["Command"]["CommandId"].as_str().unwrap().to_owned();
    assert_eq!(out["Command"]["Status"], "Pending");
    let get = |w: &mut World, i: &str| {
        call(
            w,
            "GetCommandInvocation",
            json!({"CommandId": id, "InstanceId": i}),
        )
        .unwrap()
    };
    assert_eq!(get(&mut w, "i-ok")["Status"], "Pending");
    w.run_until(1_000_600);
    assert_eq!(get(&mut w, "i-ok")["Status"], "InProgress");
    w.run_until(1_002_000);
    let ok = get(&mut w, "i-ok");
    assert_eq!(ok["Status"], "Success");
    assert_eq!(ok["ResponseCode"], 0);
    assert_eq!(get(&mut w, "i-bad")["Status"], "InProgress");
    w.run_until(1_005_000);
    let bad = get(&mut w, "i-bad");
    assert_eq!(bad["Status"], "Failed");
    assert_eq!(bad["ResponseCode"], 3);
    assert_eq!(bad["StandardOutputContent"], "boom");
    let list = call(&mut w, "ListCommands", json!({})).unwrap();
    assert_eq!(list["Commands"][0]["Status"], "Failed");
    assert_eq!(list["Commands"][0]["ErrorCount"], 1);
    assert!(
        call(
            &mut w,
            "GetCommandInvocation",
            json!({"CommandId": id, "InstanceId": "i-x"})
        )
        .is_err()
    );
    assert!(
        call(
            &mut w,
            "SendCommand",
            json!({"DocumentName": "AWS-RunShellScript"})
        )
        .is_err()
    );
}
