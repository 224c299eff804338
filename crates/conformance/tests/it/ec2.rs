//! EC2 through aws-sdk-ec2 (EC2 Query): group instances are EC2 instances whose state
//! follows the Auto Scaling lifecycle; standalone instances, tags, images on virtual time,
//! reboots and terminations without hooks.

use aws_sdk_autoscaling::types::{LaunchTemplateSpecification, LifecycleHookSpecification};
use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::{
    Filter, ImageState, InstanceStateName, InstanceType, Placement, ResourceType, Tag,
    TagSpecification,
};
use lifehook_conformance::{Harness, eventually};

async fn group_with_hooks(h: &Harness, name: &str, desired: i32) -> Vec<String> {
    h.asg
        .create_auto_scaling_group()
        .auto_scaling_group_name(name)
        .min_size(0)
        .max_size(4)
        .desired_capacity(desired)
        .launch_template(
            LaunchTemplateSpecification::builder()
                .launch_template_name("lt-web")
                .build(),
        )
        .availability_zones("us-east-1a")
        .tags(
            aws_sdk_autoscaling::types::Tag::builder()
                .key("team")
                .value("blue")
                .propagate_at_launch(true)
                .build(),
        )
        .lifecycle_hook_specification_list(
            LifecycleHookSpecification::builder()
                .lifecycle_hook_name("up")
                .lifecycle_transition("autoscaling:EC2_INSTANCE_LAUNCHING")
                .heartbeat_timeout(300)
                .default_result("CONTINUE")
                .build(),
        )
        .lifecycle_hook_specification_list(
            LifecycleHookSpecification::builder()
                .lifecycle_hook_name("down")
                .lifecycle_transition("autoscaling:EC2_INSTANCE_TERMINATING")
                .heartbeat_timeout(300)
                .default_result("CONTINUE")
                .build(),
        )
        .send()
        .await
        .expect("CreateAutoScalingGroup");
    let out = h
        .asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .expect("DescribeAutoScalingGroups");
    out.auto_scaling_groups()[0]
        .instances()
        .iter()
        .filter_map(|i| i.instance_id().map(str::to_owned))
        .collect()
}

async fn state_of(h: &Harness, id: &str) -> InstanceStateName {
    let out = h
        .ec2
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .expect("DescribeInstances");
    out.reservations()[0].instances()[0]
        .state()
        .and_then(|s| s.name())
        .cloned()
        .expect("state")
}

#[tokio::test]
async fn group_instances_are_described_with_tags_and_filters() {
    let h = Harness::manual().await;
    let ids = group_with_hooks(&h, "web", 2).await;
    assert_eq!(ids.len(), 2);
    let out = h
        .ec2
        .describe_instances()
        .filters(
            Filter::builder()
                .name("tag:aws:autoscaling:groupName")
                .values("web")
                .build(),
        )
        .filters(
            Filter::builder()
                .name("instance-state-name")
                .values("running")
                .build(),
        )
        .send()
        .await
        .expect("DescribeInstances");
    let found: Vec<_> = out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .collect();
    assert_eq!(found.len(), 2, "Pending:Wait instances are running");
    let i = found[0];
    assert!(ids.contains(&i.instance_id().unwrap().to_owned()));
    assert_eq!(
        i.placement().and_then(|p| p.availability_zone()),
        Some("us-east-1a")
    );
    assert!(i.launch_time().is_some());
    assert_eq!(i.state().and_then(|s| s.code()), Some(16));
    let tag = |k: &str| {
        i.tags()
            .iter()
            .find(|t| t.key() == Some(k))
            .and_then(|t| t.value())
            .map(str::to_owned)
    };
    assert_eq!(tag("aws:autoscaling:groupName").as_deref(), Some("web"));
    assert_eq!(tag("team").as_deref(), Some("blue"));

    // CreateTags / DescribeTags / DeleteTags.
    let id = ids[0].clone();
    h.ec2
        .create_tags()
        .resources(&id)
        .tags(Tag::builder().key("drain").value("started").build())
        .send()
        .await
        .expect("CreateTags");
    let tags = h
        .ec2
        .describe_tags()
        .filters(Filter::builder().name("resource-id").values(&id).build())
        .send()
        .await
        .expect("DescribeTags");
    let keys: Vec<_> = tags.tags().iter().filter_map(|t| t.key()).collect();
    assert_eq!(keys, ["aws:autoscaling:groupName", "drain", "team"]);
    assert_eq!(
        tags.tags()[1].resource_type(),
        Some(&ResourceType::Instance)
    );
    h.ec2
        .delete_tags()
        .resources(&id)
        .tags(Tag::builder().key("drain").build())
        .send()
        .await
        .expect("DeleteTags");
    let tags = h
        .ec2
        .describe_tags()
        .filters(Filter::builder().name("key").values("drain").build())
        .send()
        .await
        .expect("DescribeTags");
    assert!(tags.tags().is_empty());
    let err = h
        .ec2
        .create_tags()
        .resources(&id)
        .tags(Tag::builder().key("aws:mine").value("x").build())
        .send()
        .await
        .expect_err("aws: keys are reserved");
    assert_eq!(err.code(), Some("InvalidParameterValue"));
}

#[tokio::test]
async fn unknown_and_malformed_instance_ids() {
    let h = Harness::manual().await;
    let err = h
        .ec2
        .describe_instances()
        .instance_ids("i-0123456789abcdef0")
        .send()
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), Some("InvalidInstanceID.NotFound"));
    assert_eq!(
        err.message(),
        Some("The instance ID 'i-0123456789abcdef0' does not exist")
    );
    let err = h
        .ec2
        .terminate_instances()
        .instance_ids("my-host")
        .send()
        .await
        .expect_err("malformed");
    assert_eq!(err.code(), Some("InvalidInstanceID.Malformed"));
}

#[tokio::test]
async fn terminate_instances_on_a_group_instance_skips_the_terminate_hook() {
    let h = Harness::manual().await;
    let ids = group_with_hooks(&h, "web", 1).await;
    let id = ids[0].clone();
    // The launch hook times out with CONTINUE: InService.
    h.advance(301.0).await;
    let out = h
        .ec2
        .terminate_instances()
        .instance_ids(&id)
        .send()
        .await
        .expect("TerminateInstances");
    let t = &out.terminating_instances()[0];
    assert_eq!(
        t.current_state().and_then(|s| s.name()),
        Some(&InstanceStateName::ShuttingDown)
    );
    assert_eq!(
        t.previous_state().and_then(|s| s.name()),
        Some(&InstanceStateName::Running)
    );
    assert_eq!(state_of(&h, &id).await, InstanceStateName::Terminated);
    let st = h.state().await;
    let actions = st["regions"]["us-east-1"]["actions"].as_array().unwrap();
    assert!(
        actions.iter().all(|a| a["instance"] != id.as_str()),
        "no terminate action for the EC2-terminated instance"
    );
    // The group replaces it, through the launch hook.
    let replacement = eventually("a replacement in Pending:Wait", || async {
        let out = h.asg.describe_auto_scaling_instances().send().await.ok()?;
        out.auto_scaling_instances()
            .iter()
            .find(|i| i.instance_id() != Some(id.as_str()))
            .filter(|i| i.lifecycle_state() == Some("Pending:Wait"))
            .and_then(|i| i.instance_id().map(str::to_owned))
    })
    .await;
    assert_eq!(state_of(&h, &replacement).await, InstanceStateName::Running);
}

#[tokio::test]
async fn standalone_instances_reboots_and_images() {
    let h = Harness::manual().await;
    let run = h
        .ec2
        .run_instances()
        .image_id("ami-12345678")
        .min_count(1)
        .max_count(1)
        .instance_type(InstanceType::T3Micro)
        .placement(Placement::builder().availability_zone("us-east-1b").build())
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Instance)
                .tags(Tag::builder().key("Name").value("builder").build())
                .build(),
        )
        .send()
        .await
        .expect("RunInstances");
    let id = run.instances()[0].instance_id().unwrap().to_owned();
    assert!(run.reservation_id().unwrap().starts_with("r-"));
    assert_eq!(state_of(&h, &id).await, InstanceStateName::Running);

    // A control-API instance is an EC2 instance too.
    let made: serde_json::Value = h
        .control_post(
            "ec2/instances",
            serde_json::json!({"tags": {"role": "agent"}}),
        )
        .await
        .json()
        .await
        .unwrap();
    let agent = made["instance_id"].as_str().unwrap().to_owned();
    let tagged = h
        .ec2
        .describe_instances()
        .filters(Filter::builder().name("tag:role").values("agent").build())
        .send()
        .await
        .unwrap();
    assert_eq!(
        tagged.reservations()[0].instances()[0].instance_id(),
        Some(agent.as_str())
    );

    // Reboots are recorded, through EC2 and through the control API.
    h.ec2
        .reboot_instances()
        .instance_ids(&id)
        .send()
        .await
        .expect("RebootInstances");
    let r = h
        .control_post(&format!("ec2/instances/{id}/reboot"), serde_json::json!({}))
        .await;
    assert!(r.status().is_success());
    let shown = h.control_get(&format!("ec2/instances/{id}")).await;
    assert_eq!(shown["reboots"]["count"], 2);
    assert_eq!(shown["state"], "running");
    assert_eq!(shown["tags"]["Name"], "builder");

    // CreateImage: pending, then available after 120 virtual seconds.
    let image = h
        .ec2
        .create_image()
        .instance_id(&id)
        .name("builder-2026-11-22")
        .no_reboot(true)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Image)
                .tags(Tag::builder().key("source").value(&id).build())
                .build(),
        )
        .send()
        .await
        .expect("CreateImage")
        .image_id()
        .unwrap()
        .to_owned();
    let image_state = |h: &Harness, image: String| {
        let ec2 = h.ec2.clone();
        async move {
            let out = ec2
                .describe_images()
                .image_ids(image)
                .send()
                .await
                .expect("DescribeImages");
            out.images()[0].state().cloned().expect("state")
        }
    };
    assert_eq!(image_state(&h, image.clone()).await, ImageState::Pending);
    let dup = h
        .ec2
        .create_image()
        .instance_id(&id)
        .name("builder-2026-11-22")
        .send()
        .await
        .expect_err("duplicate name");
    assert_eq!(dup.code(), Some("InvalidAMIName.Duplicate"));
    h.advance(120.0).await;
    assert_eq!(image_state(&h, image.clone()).await, ImageState::Available);
    let mine = h
        .ec2
        .describe_images()
        .owners("self")
        .filters(Filter::builder().name("tag:source").values(&id).build())
        .send()
        .await
        .unwrap();
    assert_eq!(mine.images().len(), 1);
    assert_eq!(shown_reboots(&h, &id).await, 2, "NoReboot: no reboot");

    // A scripted failure.
    let r = h
        .control_post(
            "ec2/image-outcomes",
            serde_json::json!({"name_contains": "broken", "state": "failed"}),
        )
        .await;
    assert!(r.status().is_success());
    let broken = h
        .ec2
        .create_image()
        .instance_id(&id)
        .name("broken-image")
        .send()
        .await
        .expect("CreateImage")
        .image_id()
        .unwrap()
        .to_owned();
    assert_eq!(
        shown_reboots(&h, &id).await,
        3,
        "CreateImage reboots by default"
    );
    h.advance(120.0).await;
    assert_eq!(image_state(&h, broken.clone()).await, ImageState::Failed);

    h.ec2
        .deregister_image()
        .image_id(&image)
        .send()
        .await
        .expect("DeregisterImage");
    let gone = h
        .ec2
        .describe_images()
        .image_ids(&image)
        .send()
        .await
        .unwrap();
    assert!(gone.images().is_empty());

    h.ec2
        .terminate_instances()
        .instance_ids(&id)
        .send()
        .await
        .expect("TerminateInstances");
    assert_eq!(state_of(&h, &id).await, InstanceStateName::Terminated);
}

async fn shown_reboots(h: &Harness, id: &str) -> u64 {
    h.control_get(&format!("ec2/instances/{id}")).await["reboots"]["count"]
        .as_u64()
        .unwrap_or_default()
}
