//! ELBv2 target groups with the real `aws_sdk_elasticloadbalancingv2` client, and Auto
//! Scaling groups attached to them (spec §2.7): target health moves on the virtual clock.

use aws_sdk_autoscaling::types::{LaunchTemplateSpecification, LifecycleHookSpecification};
use aws_sdk_elasticloadbalancingv2::error::ProvideErrorMetadata;
use aws_sdk_elasticloadbalancingv2::types::{
    ProtocolEnum, TargetDescription, TargetGroupAttribute,
};
use lifehook_conformance::{Harness, eventually, instances};

async fn create_target_group(h: &Harness, name: &str) -> String {
    let out = h
        .elbv2
        .create_target_group()
        .name(name)
        .protocol(ProtocolEnum::Http)
        .port(80)
        .vpc_id("vpc-0123456789abcdef0")
        .health_check_path("/healthz")
        .health_check_interval_seconds(10)
        .healthy_threshold_count(3)
        .send()
        .await
        .expect("CreateTargetGroup");
    let tg = out.target_groups().first().expect("one target group");
    assert_eq!(tg.target_group_name(), Some(name));
    assert_eq!(tg.health_check_path(), Some("/healthz"));
    assert_eq!(tg.healthy_threshold_count(), Some(3));
    tg.target_group_arn().expect("arn").to_owned()
}

fn target(id: &str) -> TargetDescription {
    TargetDescription::builder().id(id).build()
}

/// (State, Reason) of `id` in `tg`.
async fn health(h: &Harness, tg: &str, id: &str) -> (String, Option<String>) {
    let out = h
        .elbv2
        .describe_target_health()
        .target_group_arn(tg)
        .targets(target(id))
        .send()
        .await
        .expect("DescribeTargetHealth");
    let d = out.target_health_descriptions().first().expect("one row");
    assert_eq!(d.target().and_then(|t| t.id()), Some(id));
    let th = d.target_health().expect("target health");
    (
        th.state().expect("state").as_str().to_owned(),
        th.reason().map(|r| r.as_str().to_owned()),
    )
}

async fn wait_for_state(h: &Harness, tg: &str, id: &str, want: &str) {
    eventually(&format!("{id} {want} in {tg}"), || async {
        (health(h, tg, id).await.0 == want).then_some(())
    })
    .await;
}

#[tokio::test]
async fn target_goes_initial_then_healthy_and_drains_after_the_delay() {
    let h = Harness::manual().await;
    let tg = create_target_group(&h, "web").await;
    let id = "i-0123456789abcdef0";

    let by_name = h
        .elbv2
        .describe_target_groups()
        .names("web")
        .send()
        .await
        .expect("DescribeTargetGroups");
    assert_eq!(
        by_name.target_groups()[0].target_group_arn(),
        Some(tg.as_str())
    );
    let attrs = h
        .elbv2
        .describe_target_group_attributes()
        .target_group_arn(&tg)
        .send()
        .await
        .expect("DescribeTargetGroupAttributes");
    let delay = attrs
        .attributes()
        .iter()
        .find(|a| a.key() == Some("deregistration_delay.timeout_seconds"))
        .and_then(|a| a.value());
    assert_eq!(delay, Some("300"));
    h.elbv2
        .modify_target_group_attributes()
        .target_group_arn(&tg)
        .attributes(
            TargetGroupAttribute::builder()
                .key("deregistration_delay.timeout_seconds")
                .value("60")
                .build(),
        )
        .send()
        .await
        .expect("ModifyTargetGroupAttributes");

    assert_eq!(
        health(&h, &tg, id).await,
        ("unused".into(), Some("Target.NotRegistered".into()))
    );
    h.elbv2
        .register_targets()
        .target_group_arn(&tg)
        .targets(target(id))
        .send()
        .await
        .expect("RegisterTargets");
    assert_eq!(
        health(&h, &tg, id).await,
        ("initial".into(), Some("Elb.RegistrationInProgress".into()))
    );
    // 3 checks × 10 s.
    h.advance(29.0).await;
    assert_eq!(health(&h, &tg, id).await.0, "initial");
    h.advance(1.0).await;
    wait_for_state(&h, &tg, id, "healthy").await;

    h.elbv2
        .deregister_targets()
        .target_group_arn(&tg)
        .targets(target(id))
        .send()
        .await
        .expect("DeregisterTargets");
    assert_eq!(
        health(&h, &tg, id).await,
        (
            "draining".into(),
            Some("Target.DeregistrationInProgress".into())
        )
    );
    h.advance(59.0).await;
    assert_eq!(health(&h, &tg, id).await.0, "draining");
    h.advance(1.0).await;
    wait_for_state(&h, &tg, id, "unused").await;
    let all = h
        .elbv2
        .describe_target_health()
        .target_group_arn(&tg)
        .send()
        .await
        .expect("DescribeTargetHealth");
    assert!(all.target_health_descriptions().is_empty());
}

#[tokio::test]
async fn errors_have_aws_codes() {
    let h = Harness::manual().await;
    let tg = create_target_group(&h, "web").await;
    let missing =
        "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/nope/0123456789abcdef";
    let e = h
        .elbv2
        .describe_target_health()
        .target_group_arn(missing)
        .send()
        .await
        .expect_err("missing target group");
    assert!(
        e.as_service_error()
            .is_some_and(|e| e.is_target_group_not_found_exception())
    );
    assert_eq!(e.code(), Some("TargetGroupNotFound"));
    let e = h
        .elbv2
        .describe_target_groups()
        .names("nope")
        .send()
        .await
        .expect_err("missing name");
    assert_eq!(e.code(), Some("TargetGroupNotFound"));
    let e = h
        .elbv2
        .create_target_group()
        .name("web")
        .protocol(ProtocolEnum::Http)
        .port(8080)
        .vpc_id("vpc-0123456789abcdef0")
        .send()
        .await
        .expect_err("duplicate name");
    assert!(
        e.as_service_error()
            .is_some_and(|e| e.is_duplicate_target_group_name_exception())
    );
    let e = h
        .elbv2
        .register_targets()
        .target_group_arn(&tg)
        .targets(target("not-an-instance"))
        .send()
        .await
        .expect_err("bad id");
    assert_eq!(e.code(), Some("ValidationError"));
    let e = h
        .elbv2
        .create_target_group()
        .name("bad_name")
        .protocol(ProtocolEnum::Http)
        .port(80)
        .vpc_id("vpc-1")
        .send()
        .await
        .expect_err("bad name");
    assert_eq!(e.code(), Some("ValidationError"));
}

#[tokio::test]
async fn control_endpoint_holds_a_target_unhealthy() {
    let h = Harness::manual().await;
    let tg = create_target_group(&h, "web").await;
    let id = "i-0123456789abcdef0";
    h.elbv2
        .register_targets()
        .target_group_arn(&tg)
        .targets(target(id))
        .send()
        .await
        .expect("RegisterTargets");
    let r = h
        .control_post(
            "elbv2/target-health",
            serde_json::json!({"target_group_arn": tg, "instance_id": id, "state": "unhealthy"}),
        )
        .await;
    assert!(r.status().is_success());
    h.advance(3600.0).await;
    assert_eq!(
        health(&h, &tg, id).await,
        ("unhealthy".into(), Some("Target.FailedHealthChecks".into()))
    );
    let r = h
        .control_post(
            "elbv2/target-health",
            serde_json::json!({"target_group_arn": tg, "instance_id": id, "state": "healthy"}),
        )
        .await;
    assert!(r.status().is_success());
    wait_for_state(&h, &tg, id, "healthy").await;
}

#[tokio::test]
async fn group_registers_on_in_service_and_drains_on_scale_in() {
    let h = Harness::manual().await;
    let tg = create_target_group(&h, "web").await;
    let hook = |name: &str, transition: &str| {
        LifecycleHookSpecification::builder()
            .lifecycle_hook_name(name)
            .lifecycle_transition(transition)
            .heartbeat_timeout(3600)
            .default_result("ABANDON")
            .build()
    };
    h.asg
        .create_auto_scaling_group()
        .auto_scaling_group_name("web")
        .min_size(0)
        .max_size(2)
        .desired_capacity(1)
        .launch_template(
            LaunchTemplateSpecification::builder()
                .launch_template_name("lt-web")
                .version("$Latest")
                .build(),
        )
        .vpc_zone_identifier("subnet-1")
        .target_group_arns(&tg)
        .lifecycle_hook_specification_list(hook("launch", "autoscaling:EC2_INSTANCE_LAUNCHING"))
        .lifecycle_hook_specification_list(hook("drain", "autoscaling:EC2_INSTANCE_TERMINATING"))
        .send()
        .await
        .expect("CreateAutoScalingGroup");
    let group = h
        .asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names("web")
        .send()
        .await
        .expect("DescribeAutoScalingGroups");
    assert_eq!(
        group.auto_scaling_groups()[0].target_group_arns(),
        std::slice::from_ref(&tg)
    );

    let (id, state) = instances(&h, "web").await.remove(0);
    assert_eq!(state, "Pending:Wait");
    // §2.7: not registered while the launch hook holds the instance.
    assert_eq!(health(&h, &tg, &id).await.0, "unused");
    h.asg
        .complete_lifecycle_action()
        .auto_scaling_group_name("web")
        .lifecycle_hook_name("launch")
        .instance_id(&id)
        .lifecycle_action_result("CONTINUE")
        .send()
        .await
        .expect("CompleteLifecycleAction");
    assert_eq!(instances(&h, "web").await[0].1, "InService");
    assert_eq!(health(&h, &tg, &id).await.0, "initial");
    h.advance(30.0).await;
    wait_for_state(&h, &tg, &id, "healthy").await;
    let lb = h
        .asg
        .describe_load_balancer_target_groups()
        .auto_scaling_group_name("web")
        .send()
        .await
        .expect("DescribeLoadBalancerTargetGroups");
    let row = &lb.load_balancer_target_groups()[0];
    assert_eq!(row.load_balancer_target_group_arn(), Some(tg.as_str()));
    assert_eq!(row.state(), Some("InService"));

    // Scale in: deregistered in Terminating; the terminate hook waits for the drain (300 s).
    h.asg
        .set_desired_capacity()
        .auto_scaling_group_name("web")
        .desired_capacity(0)
        .send()
        .await
        .expect("SetDesiredCapacity");
    assert_eq!(instances(&h, "web").await[0].1, "Terminating");
    assert_eq!(
        health(&h, &tg, &id).await,
        (
            "draining".into(),
            Some("Target.DeregistrationInProgress".into())
        )
    );
    h.advance(300.0).await;
    eventually("Terminating:Wait after the drain", || async {
        (instances(&h, "web").await.first().map(|i| i.1.as_str()) == Some("Terminating:Wait"))
            .then_some(())
    })
    .await;
    assert_eq!(health(&h, &tg, &id).await.0, "unused");
    h.asg
        .complete_lifecycle_action()
        .auto_scaling_group_name("web")
        .lifecycle_hook_name("drain")
        .instance_id(&id)
        .lifecycle_action_result("CONTINUE")
        .send()
        .await
        .expect("CompleteLifecycleAction");
    eventually("instance gone", || async {
        instances(&h, "web").await.is_empty().then_some(())
    })
    .await;
}

#[tokio::test]
async fn attach_and_detach_target_groups() {
    let h = Harness::manual().await;
    let tg = create_target_group(&h, "web").await;
    h.asg
        .create_auto_scaling_group()
        .auto_scaling_group_name("web")
        .min_size(0)
        .max_size(2)
        .desired_capacity(1)
        .launch_template(
            LaunchTemplateSpecification::builder()
                .launch_template_name("lt-web")
                .build(),
        )
        .vpc_zone_identifier("subnet-1")
        .send()
        .await
        .expect("CreateAutoScalingGroup");
    let (id, _) = instances(&h, "web").await.remove(0);
    h.asg
        .attach_load_balancer_target_groups()
        .auto_scaling_group_name("web")
        .target_group_arns(&tg)
        .send()
        .await
        .expect("AttachLoadBalancerTargetGroups");
    assert_eq!(health(&h, &tg, &id).await.0, "initial");
    h.asg
        .detach_load_balancer_target_groups()
        .auto_scaling_group_name("web")
        .target_group_arns(&tg)
        .send()
        .await
        .expect("DetachLoadBalancerTargetGroups");
    assert_eq!(health(&h, &tg, &id).await.0, "draining");
    let lb = h
        .asg
        .describe_load_balancer_target_groups()
        .auto_scaling_group_name("web")
        .send()
        .await
        .expect("DescribeLoadBalancerTargetGroups");
    assert!(lb.load_balancer_target_groups().is_empty());
    let e = h
        .asg
        .attach_load_balancer_target_groups()
        .auto_scaling_group_name("web")
        .target_group_arns(
            "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/nope/0123456789abcdef",
        )
        .send()
        .await
        .expect_err("unknown target group");
    assert_eq!(
        aws_sdk_autoscaling::error::ProvideErrorMetadata::code(&e),
        Some("ValidationError")
    );
}
