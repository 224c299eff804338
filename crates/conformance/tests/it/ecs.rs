//! ECS through aws-sdk-ecs (JSON 1.1): container-instance draining on virtual time.

use aws_sdk_ecs::types::{
    ContainerDefinition, ContainerInstanceStatus, DeploymentConfiguration, DesiredStatus,
    SchedulingStrategy, Task,
};
use lifehook_conformance::Harness;

const CLUSTER: &str = "prod";

async fn describe(h: &Harness, arns: &[String]) -> Vec<Task> {
    h.ecs
        .describe_tasks()
        .cluster(CLUSTER)
        .set_tasks(Some(arns.to_vec()))
        .send()
        .await
        .expect("DescribeTasks")
        .tasks()
        .to_vec()
}

async fn list(
    h: &Harness,
    f: impl FnOnce(
        aws_sdk_ecs::operation::list_tasks::builders::ListTasksFluentBuilder,
    ) -> aws_sdk_ecs::operation::list_tasks::builders::ListTasksFluentBuilder,
) -> Vec<String> {
    f(h.ecs.list_tasks().cluster(CLUSTER))
        .send()
        .await
        .expect("ListTasks")
        .task_arns()
        .to_vec()
}

async fn task(h: &Harness, arn: &str) -> Task {
    describe(h, &[arn.to_owned()]).await.remove(0)
}

async fn register_td(h: &Harness, family: &str) {
    h.ecs
        .register_task_definition()
        .family(family)
        .container_definitions(
            ContainerDefinition::builder()
                .name(family)
                .image("public.ecr.aws/docker/library/busybox:latest")
                .memory(128)
                .build(),
        )
        .send()
        .await
        .expect("RegisterTaskDefinition");
}

#[tokio::test]
async fn draining_moves_service_tasks_and_keeps_daemon_and_standalone_tasks() {
    let h = Harness::manual().await;
    h.ecs
        .create_cluster()
        .cluster_name(CLUSTER)
        .send()
        .await
        .expect("CreateCluster");

    // Two instances through the control API, one as the agent registers it.
    let mut instances = Vec::new();
    for ec2 in ["i-0aaaaaaaaaaaaaaa1", "i-0aaaaaaaaaaaaaaa2"] {
        let r = h
            .control_post(
                "ecs/container-instances",
                serde_json::json!({"cluster": CLUSTER, "ec2_instance_id": ec2}),
            )
            .await;
        assert!(r.status().is_success());
        let v: serde_json::Value = r.json().await.unwrap();
        instances.push(
            v["containerInstance"]["containerInstanceArn"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let reg = h
        .ecs
        .register_container_instance()
        .cluster(CLUSTER)
        .instance_identity_document(r#"{"instanceId":"i-0aaaaaaaaaaaaaaa3","region":"us-east-1"}"#)
        .send()
        .await
        .expect("RegisterContainerInstance");
    let ci = reg.container_instance().unwrap();
    assert_eq!(ci.ec2_instance_id(), Some("i-0aaaaaaaaaaaaaaa3"));
    instances.push(ci.container_instance_arn().unwrap().to_owned());

    let listed = h
        .ecs
        .list_container_instances()
        .cluster(CLUSTER)
        .filter("ec2InstanceId == i-0aaaaaaaaaaaaaaa2")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.container_instance_arns(), [instances[1].clone()]);

    register_td(&h, "web").await;
    register_td(&h, "agent").await;
    register_td(&h, "job").await;
    let svc = h
        .ecs
        .create_service()
        .cluster(CLUSTER)
        .service_name("web")
        .task_definition("web")
        .desired_count(4)
        .send()
        .await
        .expect("CreateService");
    let dc = svc.service().unwrap().deployment_configuration().unwrap();
    assert_eq!(dc.minimum_healthy_percent(), Some(100));
    assert_eq!(dc.maximum_percent(), Some(200));
    h.ecs
        .create_service()
        .cluster(CLUSTER)
        .service_name("agent")
        .task_definition("agent")
        .scheduling_strategy(SchedulingStrategy::Daemon)
        .send()
        .await
        .expect("CreateService DAEMON");
    let run = h
        .ecs
        .run_task()
        .cluster(CLUSTER)
        .task_definition("job")
        .started_by("nightly")
        .send()
        .await
        .expect("RunTask");
    let standalone = run.tasks()[0].task_arn().unwrap().to_owned();
    assert_eq!(run.tasks()[0].last_status(), Some("PENDING"));

    h.advance(2.0).await;
    let all = list(&h, |b| b).await;
    assert_eq!(all.len(), 4 + 3 + 1);
    for t in describe(&h, &all).await {
        assert_eq!(t.last_status(), Some("RUNNING"), "{t:?}");
    }
    let web = h
        .ecs
        .describe_services()
        .cluster(CLUSTER)
        .services("web")
        .send()
        .await
        .unwrap();
    assert_eq!(web.services()[0].running_count(), 4);

    // Drain the instance the standalone task runs on.
    let target = task(&h, &standalone)
        .await
        .container_instance_arn()
        .unwrap()
        .to_owned();
    let on_target = list(&h, |b| b.container_instance(&target)).await;
    let tasks_on_target = describe(&h, &on_target).await;
    let web_on_target: Vec<String> = tasks_on_target
        .iter()
        .filter(|t| t.group() == Some("service:web"))
        .map(|t| t.task_arn().unwrap().to_owned())
        .collect();
    let daemon_on_target = tasks_on_target
        .iter()
        .find(|t| t.group() == Some("service:agent"))
        .unwrap()
        .task_arn()
        .unwrap()
        .to_owned();
    assert!(!web_on_target.is_empty());
    let started_by_nightly = list(&h, |b| b.started_by("nightly")).await;
    assert_eq!(started_by_nightly, std::slice::from_ref(&standalone));

    let upd = h
        .ecs
        .update_container_instances_state()
        .cluster(CLUSTER)
        .container_instances(&target)
        .status(ContainerInstanceStatus::Draining)
        .send()
        .await
        .expect("UpdateContainerInstancesState");
    assert_eq!(upd.container_instances()[0].status(), Some("DRAINING"));

    // Replacements start first (maximumPercent 200); the old tasks keep running
    // (minimumHealthyPercent 100).
    let web_tasks = list(&h, |b| b.service_name("web")).await;
    assert_eq!(web_tasks.len(), 4 + web_on_target.len());
    for t in describe(&h, &web_on_target).await {
        assert_eq!(t.last_status(), Some("RUNNING"));
        assert_eq!(t.desired_status(), Some("RUNNING"));
    }

    // Once the replacements run, the old tasks stop, one state every 2 s.
    h.advance(2.0).await;
    for t in describe(&h, &web_on_target).await {
        assert_eq!(t.desired_status(), Some("STOPPED"));
        assert_eq!(t.last_status(), Some("RUNNING"));
    }
    for want in ["DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED"] {
        h.advance(2.0).await;
        for t in describe(&h, &web_on_target).await {
            assert_eq!(t.last_status(), Some(want));
        }
    }
    let web_tasks = list(&h, |b| b.service_name("web")).await;
    assert_eq!(web_tasks.len(), 4);
    for t in describe(&h, &web_tasks).await {
        assert_ne!(t.container_instance_arn(), Some(target.as_str()));
        assert_eq!(t.last_status(), Some("RUNNING"));
    }
    let stopped = list(&h, |b| b.desired_status(DesiredStatus::Stopped)).await;
    assert_eq!(stopped.len(), web_on_target.len());

    // Daemon and standalone tasks stay on the draining instance.
    let ci = h
        .ecs
        .describe_container_instances()
        .cluster(CLUSTER)
        .container_instances(&target)
        .send()
        .await
        .unwrap();
    let ci = &ci.container_instances()[0];
    assert_eq!(ci.status(), Some("DRAINING"));
    assert_eq!(ci.running_tasks_count(), 2);
    assert_eq!(ci.pending_tasks_count(), 0);
    h.advance(60.0).await;
    assert_eq!(task(&h, &standalone).await.last_status(), Some("RUNNING"));
    assert_eq!(
        task(&h, &daemon_on_target).await.last_status(),
        Some("RUNNING")
    );

    for t in [&standalone, &daemon_on_target] {
        let s = h
            .ecs
            .stop_task()
            .cluster(CLUSTER)
            .task(t)
            .reason("instance terminating")
            .send()
            .await
            .expect("StopTask");
        assert_eq!(s.task().unwrap().desired_status(), Some("STOPPED"));
    }
    h.advance(4.0).await;
    assert_eq!(task(&h, &standalone).await.last_status(), Some("STOPPING"));
    h.advance(4.0).await;
    let st = task(&h, &standalone).await;
    assert_eq!(st.last_status(), Some("STOPPED"));
    assert_eq!(st.stopped_reason(), Some("instance terminating"));
    assert!(st.stopped_at().is_some());
    let ci = h
        .ecs
        .describe_container_instances()
        .cluster(CLUSTER)
        .container_instances(&target)
        .send()
        .await
        .unwrap();
    assert_eq!(ci.container_instances()[0].running_tasks_count(), 0);
    // The daemon is not restarted on the draining instance.
    assert!(list(&h, |b| b.container_instance(&target)).await.is_empty());

    let draining = h
        .ecs
        .list_container_instances()
        .cluster(CLUSTER)
        .status(ContainerInstanceStatus::Draining)
        .send()
        .await
        .unwrap();
    assert_eq!(
        draining.container_instance_arns(),
        std::slice::from_ref(&target)
    );
}

#[tokio::test]
async fn list_tasks_pages_and_scaling() {
    let h = Harness::manual().await;
    h.ecs
        .create_cluster()
        .cluster_name(CLUSTER)
        .send()
        .await
        .unwrap();
    for i in 0..2 {
        h.control_post(
            "ecs/container-instances",
            serde_json::json!({"cluster": CLUSTER, "ec2_instance_id": format!("i-0b{i}")}),
        )
        .await;
    }
    register_td(&h, "web").await;
    h.ecs
        .create_service()
        .cluster(CLUSTER)
        .service_name("web")
        .task_definition("web")
        .desired_count(5)
        .deployment_configuration(
            DeploymentConfiguration::builder()
                .minimum_healthy_percent(50)
                .maximum_percent(100)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let out = h
            .ecs
            .list_tasks()
            .cluster(CLUSTER)
            .max_results(2)
            .set_next_token(token.clone())
            .send()
            .await
            .unwrap();
        pages += 1;
        seen.extend(out.task_arns().iter().cloned());
        token = out.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(pages, 3);
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 5);

    h.ecs
        .update_service()
        .cluster(CLUSTER)
        .service("web")
        .desired_count(2)
        .send()
        .await
        .unwrap();
    assert_eq!(list(&h, |b| b.service_name("web")).await.len(), 2);
    h.advance(10.0).await;
    let svc = h
        .ecs
        .describe_services()
        .cluster(CLUSTER)
        .services("web")
        .send()
        .await
        .unwrap();
    assert_eq!(svc.services()[0].running_count(), 2);
    assert_eq!(svc.services()[0].desired_count(), 2);

    let e = h
        .ecs
        .describe_services()
        .cluster("nope")
        .services("web")
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_cluster_not_found_exception());
}
