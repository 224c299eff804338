use super::ops::{parse_filter, run};
use super::*;
use crate::protocol::Wire;

fn ctx(op: &str) -> RequestCtx {
    RequestCtx {
        request_id: "r".into(),
        region: "us-east-1".into(),
        host: "h".into(),
        path: "/".into(),
        service: Svc::Ecs,
        wire: Wire::Json { version: "1.1" },
        op: op.into(),
    }
}

fn call(w: &mut World, op: &str, body: Value) -> Result<Value, AwsError> {
    let Value::Object(m) = body else { panic!() };
    run(w, &ctx(op), &JsonBody(m))
}

fn tasks_on(w: &mut World, inst: &str) -> Vec<(String, String)> {
    let c = &w.region("us-east-1").ecs.clusters["c"];
    c.tasks
        .iter()
        .filter(|t| t.instance == inst)
        .map(|t| (t.group.clone(), t.last.to_owned()))
        .collect()
}

#[test]
fn drain_replaces_service_tasks_before_stopping_them() {
    let mut w = World::new(0, Default::default());
    call(&mut w, "CreateCluster", json!({"clusterName": "c"})).unwrap();
    let mut inst = Vec::new();
    for i in 0..3 {
        let doc = json!({"instanceId": format!("i-{i}")}).to_string();
        let v = call(
            &mut w,
            "RegisterContainerInstance",
            json!({"cluster": "c", "instanceIdentityDocument": doc}),
        )
        .unwrap();
        inst.push(
            short(
                v["containerInstance"]["containerInstanceArn"]
                    .as_str()
                    .unwrap(),
            )
            .to_owned(),
        );
    }
    call(
        &mut w,
        "RegisterTaskDefinition",
        json!({"family": "web", "containerDefinitions": [{"name": "app"}]}),
    )
    .unwrap();
    call(
        &mut w,
        "CreateService",
        json!({"cluster": "c", "serviceName": "s", "taskDefinition": "web", "desiredCount": 3}),
    )
    .unwrap();
    w.run_until(TASK_START_MS);
    for i in &inst {
        assert_eq!(
            tasks_on(&mut w, i),
            vec![("service:s".into(), "RUNNING".into())]
        );
    }
    call(
        &mut w,
        "UpdateContainerInstancesState",
        json!({"cluster": "c", "containerInstances": [inst[0]], "status": "DRAINING"}),
    )
    .unwrap();
    // The replacement starts first; the old task keeps running meanwhile.
    assert_eq!(
        tasks_on(&mut w, &inst[0]),
        vec![("service:s".into(), "RUNNING".into())]
    );
    let live: usize = [1, 2]
        .iter()
        .map(|&i| tasks_on(&mut w, &inst[i]).len())
        .sum();
    assert_eq!(live, 3);
    w.run_until(2 * TASK_START_MS);
    let c = &w.region("us-east-1").ecs.clusters["c"];
    let old = c.tasks.iter().find(|t| t.instance == inst[0]).unwrap();
    assert_eq!((old.last, old.desired), ("RUNNING", "STOPPED"));
    w.run_until(2 * TASK_START_MS + 4 * STOP_STEP_MS);
    assert_eq!(
        tasks_on(&mut w, &inst[0]),
        vec![("service:s".into(), "STOPPED".into())]
    );
}

#[test]
fn stopped_service_tasks_are_replaced_daemons_follow_instances_and_delete_drains() {
    let mut w = World::new(0, Default::default());
    call(&mut w, "CreateCluster", json!({"clusterName": "c"})).unwrap();
    let reg = |w: &mut World, i: &str| {
        let doc = json!({ "instanceId": i }).to_string();
        call(
            w,
            "RegisterContainerInstance",
            json!({"cluster": "c", "instanceIdentityDocument": doc}),
        )
        .unwrap();
    };
    reg(&mut w, "i-1");
    call(
        &mut w,
        "RegisterTaskDefinition",
        json!({"family": "web", "containerDefinitions": [{"name": "app"}]}),
    )
    .unwrap();
    call(
        &mut w,
        "CreateService",
        json!({"cluster": "c", "serviceName": "s", "taskDefinition": "web:1", "desiredCount": 2}),
    )
    .unwrap();
    call(&mut w, "CreateService", json!({"cluster": "c", "serviceName": "d", "taskDefinition": "web", "schedulingStrategy": "DAEMON"})).unwrap();
    w.run_until(TASK_START_MS);
    let list = |w: &mut World, body: Value| -> Vec<String> {
        call(w, "ListTasks", body).unwrap()["taskArns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        list(&mut w, json!({"cluster": "c", "serviceName": "s"})).len(),
        2
    );
    assert_eq!(
        list(&mut w, json!({"cluster": "c", "serviceName": "d"})).len(),
        1
    );
    // A second instance gets a daemon task.
    reg(&mut w, "i-2");
    assert_eq!(
        list(&mut w, json!({"cluster": "c", "serviceName": "d"})).len(),
        2
    );
    // StopTask on a service task: the scheduler replaces it at once.
    let victim = list(&mut w, json!({"cluster": "c", "serviceName": "s"}))[0].clone();
    call(&mut w, "StopTask", json!({"cluster": "c", "task": victim})).unwrap();
    let now_live = list(&mut w, json!({"cluster": "c", "serviceName": "s"}));
    assert_eq!(now_live.len(), 2);
    assert!(!now_live.contains(&victim));
    // DeleteService needs desiredCount 0 (or force), then drains to INACTIVE.
    assert!(
        call(
            &mut w,
            "DeleteService",
            json!({"cluster": "c", "service": "s"})
        )
        .is_err()
    );
    let v = call(
        &mut w,
        "DeleteService",
        json!({"cluster": "c", "service": "s", "force": true}),
    )
    .unwrap();
    assert_eq!(v["service"]["status"], "DRAINING");
    w.run_until(TASK_START_MS + 5 * STOP_STEP_MS);
    let v = call(
        &mut w,
        "DescribeServices",
        json!({"cluster": "c", "services": ["s"]}),
    )
    .unwrap();
    assert_eq!(v["services"][0]["status"], "INACTIVE");
    assert!(list(&mut w, json!({"cluster": "c", "serviceName": "s"})).is_empty());
    // Bad inputs are errors, not panics.
    for (op, body) in [
        ("ListTasks", json!({"cluster": "nope"})),
        ("ListTasks", json!({"cluster": "c", "maxResults": 0})),
        ("ListTasks", json!({"cluster": "c", "nextToken": "x"})),
        (
            "ListContainerInstances",
            json!({"cluster": "c", "filter": "attribute:x == y"}),
        ),
        (
            "UpdateContainerInstancesState",
            json!({"cluster": "c", "containerInstances": [], "status": "GONE"}),
        ),
        (
            "RunTask",
            json!({"cluster": "c", "taskDefinition": "web:99"}),
        ),
        (
            "RunTask",
            json!({"cluster": "c", "taskDefinition": "web:x"}),
        ),
        (
            "RegisterContainerInstance",
            json!({"cluster": "c", "instanceIdentityDocument": "{"}),
        ),
        ("DescribeTasks", json!({"cluster": "c", "tasks": []})),
    ] {
        assert!(call(&mut w, op, body.clone()).is_err(), "{op} {body}");
    }
    assert!(
        parse_filter("ec2InstanceId in ['i-1', \"i-2\"]")
            .unwrap()
            .ec2_ids
            == ["i-1", "i-2"]
    );
}
