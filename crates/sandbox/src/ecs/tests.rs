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

/// A Query call to Auto Scaling or EC2 on `w`, timers due now fired.
fn query(w: &mut World, service: Svc, op: &str, pairs: &[(&str, &str)]) -> String {
    let c = RequestCtx {
        request_id: "r".into(),
        region: "us-east-1".into(),
        host: "h".into(),
        path: "/".into(),
        service,
        wire: if service == Svc::Ec2 {
            Wire::Ec2Query
        } else {
            Wire::Query
        },
        op: op.into(),
    };
    let p = crate::protocol::Params::from_pairs(
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let r = match service {
        Svc::Ec2 => crate::ec2::dispatch(w, &c, &p),
        _ => crate::autoscaling::ops::dispatch(w, &c, &p),
    };
    let now = w.now;
    w.run_until(now);
    r.unwrap_or_else(|e| panic!("{op}: {e}"))
}

/// Auto Scaling group `web` of `desired` instances, with a terminate hook `drain` when
/// `hook`; its instance ids.
fn group(w: &mut World, desired: &str, hook: bool) -> Vec<String> {
    let mut pairs = vec![
        ("AutoScalingGroupName", "web"),
        ("MinSize", "0"),
        ("MaxSize", "3"),
        ("DesiredCapacity", desired),
        ("LaunchTemplate.LaunchTemplateName", "lt-web"),
        ("AvailabilityZones.member.1", "us-east-1a"),
    ];
    if hook {
        pairs.extend([
            (
                "LifecycleHookSpecificationList.member.1.LifecycleHookName",
                "drain",
            ),
            (
                "LifecycleHookSpecificationList.member.1.LifecycleTransition",
                "autoscaling:EC2_INSTANCE_TERMINATING",
            ),
            (
                "LifecycleHookSpecificationList.member.1.HeartbeatTimeout",
                "300",
            ),
        ]);
    }
    query(w, Svc::AutoScaling, "CreateAutoScalingGroup", &pairs);
    w.region("us-east-1")
        .autoscaling
        .members("web")
        .map(|i| i.id.clone())
        .collect()
}

/// Cluster `c` with a container instance per EC2 instance and a REPLICA service `s` of
/// `desired` tasks, RUNNING.
fn cluster_with_service(w: &mut World, ec2_ids: &[String], desired: usize) -> Vec<String> {
    call(w, "CreateCluster", json!({"clusterName": "c"})).unwrap();
    let mut container_instances = Vec::new();
    for id in ec2_ids {
        let doc = json!({ "instanceId": id }).to_string();
        let v = call(
            w,
            "RegisterContainerInstance",
            json!({"cluster": "c", "instanceIdentityDocument": doc}),
        )
        .unwrap();
        container_instances.push(
            v["containerInstance"]["containerInstanceArn"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    call(
        w,
        "RegisterTaskDefinition",
        json!({"family": "web", "containerDefinitions": [{"name": "app"}]}),
    )
    .unwrap();
    call(
        w,
        "CreateService",
        json!({"cluster": "c", "serviceName": "s", "taskDefinition": "web", "desiredCount": desired}),
    )
    .unwrap();
    let t = w.now + TASK_START_MS;
    w.run_until(t);
    container_instances
}

fn tasks_of(w: &mut World, container_instance: &str) -> Vec<Value> {
    let arns = call(
        w,
        "ListTasks",
        json!({"cluster": "c", "containerInstance": container_instance, "desiredStatus": "STOPPED"}),
    )
    .unwrap()["taskArns"]
        .clone();
    let live = call(
        w,
        "ListTasks",
        json!({"cluster": "c", "containerInstance": container_instance}),
    )
    .unwrap()["taskArns"]
        .clone();
    let all: Vec<Value> = arns
        .as_array()
        .unwrap()
        .iter()
        .chain(live.as_array().unwrap())
        .cloned()
        .collect();
    if all.is_empty() {
        return Vec::new();
    }
    call(w, "DescribeTasks", json!({"cluster": "c", "tasks": all})).unwrap()["tasks"]
        .as_array()
        .unwrap()
        .clone()
}

fn container_instance(w: &mut World, arn: &str) -> Value {
    call(
        w,
        "DescribeContainerInstances",
        json!({"cluster": "c", "containerInstances": [arn]}),
    )
    .unwrap()["containerInstances"][0]
        .clone()
}

fn terminate(w: &mut World, ec2_instance_id: &str) {
    query(
        w,
        Svc::Ec2,
        "TerminateInstances",
        &[("InstanceId.1", ec2_instance_id)],
    );
}

fn listed_instances(w: &mut World) -> Vec<String> {
    call(w, "ListContainerInstances", json!({"cluster": "c"})).unwrap()["containerInstanceArns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn terminating_an_ec2_instance_deregisters_its_container_instance_and_stops_its_tasks() {
    let mut w = World::new(0, Default::default());
    let run = |w: &mut World| {
        crate::ec2::run_instance(
            w,
            "us-east-1",
            "ami-12345678",
            "m5.large",
            "us-east-1a",
            "r-1",
            Default::default(),
        )
    };
    let a = run(&mut w);
    let b = run(&mut w);
    let ci = cluster_with_service(&mut w, &[a.clone(), b.clone()], 2);
    assert_eq!(listed_instances(&mut w).len(), 2);
    let on_a = tasks_of(&mut w, &ci[0]);
    assert_eq!(on_a.len(), 1);
    assert_eq!(on_a[0]["lastStatus"], "RUNNING");

    terminate(&mut w, &a);

    // Deregistered: INACTIVE, gone from the default listing, listed as INACTIVE.
    assert_eq!(listed_instances(&mut w), vec![ci[1].clone()]);
    let v = container_instance(&mut w, &ci[0]);
    assert_eq!(v["status"], "INACTIVE");
    assert_eq!(v["agentConnected"], false);
    let inactive = call(
        &mut w,
        "ListContainerInstances",
        json!({"cluster": "c", "status": "INACTIVE"}),
    )
    .unwrap();
    assert_eq!(inactive["containerInstanceArns"], json!([ci[0]]));
    // Its task is STOPPED at once, with the reason ECS gives.
    let on_a = tasks_of(&mut w, &ci[0]);
    assert_eq!(on_a.len(), 1);
    assert_eq!(on_a[0]["lastStatus"], "STOPPED");
    assert_eq!(on_a[0]["desiredStatus"], "STOPPED");
    assert_eq!(
        on_a[0]["stoppedReason"],
        format!("Host EC2 (instance {a}) terminated.")
    );
    assert_eq!(on_a[0]["stopCode"], "TerminationNotice");
    assert!(on_a[0]["stoppedAt"].is_number());
    // The service scheduler replaces it on the instance left.
    let t = w.now + TASK_START_MS;
    w.run_until(t);
    let on_b = tasks_of(&mut w, &ci[1]);
    assert_eq!(
        on_b.iter().filter(|t| t["lastStatus"] == "RUNNING").count(),
        2
    );
    // Terminating again changes nothing.
    terminate(&mut w, &a);
    assert_eq!(listed_instances(&mut w), vec![ci[1].clone()]);
}

#[test]
fn a_drained_group_instance_is_deregistered_when_its_terminate_hook_completes() {
    let mut w = World::new(0, Default::default());
    let ids = group(&mut w, "2", true);
    let ci = cluster_with_service(&mut w, &ids, 2);
    query(
        &mut w,
        Svc::AutoScaling,
        "TerminateInstanceInAutoScalingGroup",
        &[
            ("InstanceId", &ids[0]),
            ("ShouldDecrementDesiredCapacity", "true"),
        ],
    );
    // In Terminating:Wait the handler drains: the container instance is still registered,
    // and the drain completes (the task is replaced, then stopped) before termination.
    call(
        &mut w,
        "UpdateContainerInstancesState",
        json!({"cluster": "c", "containerInstances": [ci[0]], "status": "DRAINING"}),
    )
    .unwrap();
    let t = w.now + TASK_START_MS + 5 * STOP_STEP_MS;
    w.run_until(t);
    let v = container_instance(&mut w, &ci[0]);
    assert_eq!(v["status"], "DRAINING");
    assert_eq!(v["runningTasksCount"], 0);
    let drained = tasks_of(&mut w, &ci[0]);
    assert_eq!(drained[0]["lastStatus"], "STOPPED");
    assert_eq!(
        drained[0]["stoppedReason"],
        "Service task stopped: container instance is DRAINING"
    );
    // The hook completes: the instance terminates and ECS deregisters it; the reason of the
    // task stopped by the drain stays.
    query(
        &mut w,
        Svc::AutoScaling,
        "CompleteLifecycleAction",
        &[
            ("AutoScalingGroupName", "web"),
            ("LifecycleHookName", "drain"),
            ("InstanceId", &ids[0]),
            ("LifecycleActionResult", "CONTINUE"),
        ],
    );
    assert_eq!(listed_instances(&mut w), vec![ci[1].clone()]);
    let v = container_instance(&mut w, &ci[0]);
    assert_eq!(v["status"], "INACTIVE");
    let drained = tasks_of(&mut w, &ci[0]);
    assert_eq!(
        drained[0]["stoppedReason"],
        "Service task stopped: container instance is DRAINING"
    );
}

#[test]
fn force_deleting_a_group_deregisters_its_container_instances() {
    let mut w = World::new(0, Default::default());
    let ids = group(&mut w, "1", false);
    let ci = cluster_with_service(&mut w, &ids, 1);
    query(
        &mut w,
        Svc::AutoScaling,
        "DeleteAutoScalingGroup",
        &[("AutoScalingGroupName", "web"), ("ForceDelete", "true")],
    );
    assert!(listed_instances(&mut w).is_empty());
    let tasks = tasks_of(&mut w, &ci[0]);
    assert_eq!(tasks[0]["lastStatus"], "STOPPED");
    assert_eq!(
        tasks[0]["stoppedReason"],
        format!("Host EC2 (instance {}) terminated.", ids[0])
    );
}
