//! Reference scenario 3 end to end: the real `lifehook controller` against the sandbox, with
//! real SDK clients. A launch hook holds new instances until they are healthy in their
//! target group; a terminate hook takes the instance out of its target groups, waits out
//! the draining, then keeps an AMI of it, unless the termination is part of a deployment
//! (an instance refresh) or marked as expected. The sandbox's clock is manual: images,
//! target health and draining move only when a test advances it.

use crate::common;

use std::path::Path;

use aws_sdk_autoscaling::types::{LaunchTemplateSpecification, RefreshPreferences, Tag};
use aws_sdk_ec2::types::Filter;
use aws_sdk_elasticloadbalancingv2::types::{ProtocolEnum, TargetDescription};
use common::*;
use lifehook_conformance::Harness;
use serde_json::json;

const CONTINUE_TERMINATING: &str =
    "lifehook_actions_total{transition=\"terminating\",outcome=\"continue\"}";
const ABANDON_TERMINATING: &str =
    "lifehook_actions_total{transition=\"terminating\",outcome=\"abandon\"}";

/// The scenario 3 pipelines with test intervals; `terminate_arns` goes into the terminate
/// pipeline's `target-groups` step.
fn config(dir: &Path, queue_url: &str, terminate_arns: &str) -> std::path::PathBuf {
    let text = format!(
        r#"[source]
queue_url = "{queue_url}"
wait_time_seconds = 1
# Longer than any virtual time a test advances while an action is open.
visibility_timeout = "1h"

[[pipeline]]
name = "web-launch"
match = {{ groups = ["web-*"], transitions = ["launching"] }}
policy = {{ on_success = "continue", on_failure = "abandon" }}
[[pipeline.step]]
type = "target-groups"
interval = "50ms"
timeout = "2m"

[[pipeline]]
name = "web-terminate"
match = {{ groups = ["web-*"], transitions = ["terminating"] }}
policy = {{ on_success = "continue", on_failure = "abandon" }}
[[pipeline.step]]
type = "target-groups"
interval = "50ms"
timeout = "2m"
{terminate_arns}
[[pipeline.step]]
type = "image"
name = "post-mortem"
only_if = "unexpected-scale-in"
image_name = "postmortem-{{{{ group }}}}-{{{{ instance_id }}}}"
description = "{{{{ instance_id }}}} left {{{{ group }}}}"
tags = {{ purpose = "post-mortem" }}
interval = "50ms"
timeout = "2m"
"#
    );
    let path = dir.join("controller.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

async fn target_group(h: &Harness, name: &str) -> String {
    let out = h
        .elbv2
        .create_target_group()
        .name(name)
        .protocol(ProtocolEnum::Http)
        .port(80)
        .vpc_id("vpc-0123456789abcdef0")
        .health_check_interval_seconds(5)
        .health_check_timeout_seconds(2)
        .healthy_threshold_count(2)
        .send()
        .await
        .expect("CreateTargetGroup");
    let arn = out.target_groups()[0]
        .target_group_arn()
        .expect("arn")
        .to_owned();
    h.elbv2
        .modify_target_group_attributes()
        .target_group_arn(&arn)
        .attributes(
            aws_sdk_elasticloadbalancingv2::types::TargetGroupAttribute::builder()
                .key("deregistration_delay.timeout_seconds")
                .value("20")
                .build(),
        )
        .send()
        .await
        .expect("ModifyTargetGroupAttributes");
    arn
}

/// A group with a launch and a terminate hook that notify `queue_arn`.
async fn group(h: &Harness, name: &str, queue_arn: &str, target_groups: &[String]) {
    h.asg
        .create_auto_scaling_group()
        .auto_scaling_group_name(name)
        .min_size(0)
        .max_size(4)
        .desired_capacity(1)
        .launch_template(
            LaunchTemplateSpecification::builder()
                .launch_template_name("lt-web")
                .version("$Latest")
                .build(),
        )
        .availability_zones("us-east-1a")
        .set_target_group_arns(Some(target_groups.to_vec()))
        .lifecycle_hook_specification_list(hook(
            "launch",
            LAUNCHING,
            600,
            "ABANDON",
            Some(queue_arn),
        ))
        .lifecycle_hook_specification_list(hook(
            "terminate",
            TERMINATING,
            600,
            "CONTINUE",
            Some(queue_arn),
        ))
        .send()
        .await
        .expect("CreateAutoScalingGroup");
}

/// The instance's state in a target group (`None`: not listed).
async fn health(h: &Harness, tg: &str, id: &str) -> Option<String> {
    let out = h
        .elbv2
        .describe_target_health()
        .target_group_arn(tg)
        .send()
        .await
        .expect("DescribeTargetHealth");
    out.target_health_descriptions()
        .iter()
        .find(|d| d.target().and_then(|t| t.id()) == Some(id))
        .and_then(|d| d.target_health()?.state().map(|s| s.as_str().to_owned()))
}

async fn state_of(h: &Harness, group: &str, id: &str) -> Option<String> {
    instances(h, group)
        .await
        .into_iter()
        .find(|(i, _)| i == id)
        .map(|(_, s)| s)
}

/// An image: (id, state, tags).
type Image = (String, String, Vec<(String, String)>);

/// Images of the account.
async fn images(h: &Harness) -> Vec<Image> {
    let out = h
        .ec2
        .describe_images()
        .owners("self")
        .send()
        .await
        .expect("DescribeImages");
    out.images()
        .iter()
        .map(|i| {
            (
                i.image_id().unwrap_or_default().to_owned(),
                i.state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
                i.tags()
                    .iter()
                    .map(|t| {
                        (
                            t.key().unwrap_or_default().to_owned(),
                            t.value().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect(),
            )
        })
        .collect()
}

async fn images_of(h: &Harness, id: &str) -> Vec<Image> {
    let out = h
        .ec2
        .describe_images()
        .owners("self")
        .filters(
            Filter::builder()
                .name("tag:lifehook:instance-id")
                .values(id)
                .build(),
        )
        .send()
        .await
        .expect("DescribeImages");
    let ids: Vec<&str> = out.images().iter().filter_map(|i| i.image_id()).collect();
    images(h)
        .await
        .into_iter()
        .filter(|(i, _, _)| ids.contains(&i.as_str()))
        .collect()
}

async fn scale(h: &Harness, group: &str, desired: i32) {
    h.asg
        .set_desired_capacity()
        .auto_scaling_group_name(group)
        .desired_capacity(desired)
        .send()
        .await
        .expect("SetDesiredCapacity");
}

async fn metric_is(c: &Proc, name: &str, want: f64) -> Option<()> {
    (c.metric(name).await == want).then_some(())
}

#[tokio::test(flavor = "multi_thread")]
async fn launch_waits_until_healthy_and_an_unexpected_scale_in_keeps_an_ami() {
    let _serial = common::serial().await;
    let h = Harness::manual().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (url, arn, _dlq) = queue_with_dlq(&h, "hooks", 5).await;
    let web = target_group(&h, "web").await;
    // Registered out of band (not one of the group's): only the step deregisters it.
    let extra = target_group(&h, "web-canary").await;
    let cfg = config(
        d,
        &url,
        &format!("target_group_arns = [\"{web}\", \"{extra}\"]"),
    );
    let c = Proc::controller(&h.endpoint(), &cfg, &d.join("controller.log"));
    group(&h, "web-1", &arn, std::slice::from_ref(&web)).await;

    // Launch: the step registers the instance itself and holds it in Pending:Wait while
    // the target is `initial`.
    let id = wait_for(
        "the new instance registered by the step",
        common::patience(),
        || async {
            let (id, _) = instances(&h, "web-1").await.into_iter().next()?;
            (health(&h, &web, &id).await.as_deref() == Some("initial")).then_some(id)
        },
    )
    .await;
    assert_eq!(
        state_of(&h, "web-1", &id).await.as_deref(),
        Some("Pending:Wait"),
        "held while the target is not healthy"
    );
    // 2 healthy checks × 5 s.
    h.advance(11.0).await;
    wait_for("InService once healthy", common::patience(), || async {
        (state_of(&h, "web-1", &id).await.as_deref() == Some("InService")).then_some(())
    })
    .await;
    assert_eq!(health(&h, &web, &id).await.as_deref(), Some("healthy"));
    h.elbv2
        .register_targets()
        .target_group_arn(&extra)
        .targets(TargetDescription::builder().id(&id).build())
        .send()
        .await
        .expect("RegisterTargets");

    // An unexpected scale-in. Auto Scaling drains its own target group first (20 s).
    scale(&h, "web-1", 0).await;
    wait_for(
        "the group's target group draining",
        common::patience(),
        || async { (health(&h, &web, &id).await.as_deref() == Some("draining")).then_some(()) },
    )
    .await;
    h.advance(21.0).await;
    // Then the terminate hook: the step deregisters the canary and waits out its drain.
    wait_for(
        "the step deregistering the canary",
        common::patience(),
        || async { (health(&h, &extra, &id).await.as_deref() == Some("draining")).then_some(()) },
    )
    .await;
    assert_eq!(
        state_of(&h, "web-1", &id).await.as_deref(),
        Some("Terminating:Wait")
    );
    assert!(
        images_of(&h, &id).await.is_empty(),
        "no image before the drain is over"
    );
    h.advance(21.0).await;
    // The image is created and the action held until it is available.
    let (image, state, tags) = wait_for("the image", common::patience(), || async {
        images_of(&h, &id).await.into_iter().next()
    })
    .await;
    assert_eq!(state, "pending");
    assert_eq!(health(&h, &extra, &id).await, None, "drained");
    let tag = |k: &str| {
        tags.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(tag("lifehook:instance-id").as_deref(), Some(id.as_str()));
    assert_eq!(tag("lifehook:group").as_deref(), Some("web-1"));
    assert_eq!(tag("purpose").as_deref(), Some("post-mortem"));
    assert!(tag("lifehook:lifecycle-action-token").is_some());
    assert_eq!(
        state_of(&h, "web-1", &id).await.as_deref(),
        Some("Terminating:Wait"),
        "held while the image is pending"
    );
    assert_eq!(c.metric(CONTINUE_TERMINATING).await, 0.0);
    h.advance(121.0).await;
    wait_for("terminated after the image", common::patience(), || async {
        instances(&h, "web-1").await.is_empty().then_some(())
    })
    .await;
    wait_for("CONTINUE counted", common::patience(), || {
        metric_is(&c, CONTINUE_TERMINATING, 1.0)
    })
    .await;
    let all = images_of(&h, &id).await;
    assert_eq!(all.len(), 1, "one image, never two: {all:?}");
    assert_eq!(all[0].0, image);
    assert_eq!(all[0].1, "available");
    let described = h
        .ec2
        .describe_images()
        .image_ids(&image)
        .send()
        .await
        .unwrap();
    let img = &described.images()[0];
    assert_eq!(img.name(), Some(format!("postmortem-web-1-{id}").as_str()));
    assert_eq!(img.description(), Some(format!("{id} left web-1").as_str()));
    let inst = h.control_get(&format!("ec2/instances/{id}")).await;
    assert_eq!(inst["reboots"]["count"], 0, "no_reboot by default: {inst}");
}

#[tokio::test(flavor = "multi_thread")]
async fn refresh_marker_and_stack_terminations_skip_the_image_and_a_failed_image_abandons() {
    let _serial = common::serial().await;
    let h = Harness::manual().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let log = d.join("controller.log");
    let (url, arn, _dlq) = queue_with_dlq(&h, "hooks", 5).await;
    // Groups without target groups: the target-groups steps have nothing to do.
    let cfg = config(d, &url, "");
    let c = Proc::controller(&h.endpoint(), &cfg, &log);
    group(&h, "web-2", &arn, &[]).await;
    let first = wait_for("web-2 InService", common::patience(), || async {
        let i = instances(&h, "web-2").await;
        i.into_iter()
            .find(|(_, s)| s == "InService")
            .map(|(i, _)| i)
    })
    .await;

    // An instance refresh replaces the instance: no image, and both actions complete.
    let refresh = h
        .asg
        .start_instance_refresh()
        .auto_scaling_group_name("web-2")
        .preferences(
            RefreshPreferences::builder()
                .min_healthy_percentage(0)
                .build(),
        )
        .send()
        .await
        .expect("StartInstanceRefresh")
        .instance_refresh_id()
        .expect("id")
        .to_owned();
    let second = wait_for("the refresh done", common::patience(), || async {
        let out = h
            .asg
            .describe_instance_refreshes()
            .auto_scaling_group_name("web-2")
            .send()
            .await
            .ok()?;
        let status = out
            .instance_refreshes()
            .first()?
            .status()?
            .as_str()
            .to_owned();
        let i = instances(&h, "web-2").await;
        (status == "Successful" && i.len() == 1 && i[0].1 == "InService" && i[0].0 != first)
            .then(|| i[0].0.clone())
    })
    .await;
    wait_for(
        "the refresh's termination counted as CONTINUE",
        common::patience(),
        || metric_is(&c, CONTINUE_TERMINATING, 1.0),
    )
    .await;
    assert!(images(&h).await.is_empty(), "a refresh leaves no image");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("no image: the termination is expected")
            && text.contains(&format!(
                "instance refresh {refresh} of the group web-2 is InProgress"
            )),
        "{text}"
    );

    // The operator marks the scale-in as planned on the group.
    h.asg
        .create_or_update_tags()
        .tags(
            Tag::builder()
                .resource_id("web-2")
                .resource_type("auto-scaling-group")
                .key("lifehook:expected-termination")
                .value("planned")
                .propagate_at_launch(false)
                .build(),
        )
        .send()
        .await
        .expect("CreateOrUpdateTags");
    scale(&h, "web-2", 0).await;
    wait_for("web-2 empty", common::patience(), || async {
        instances(&h, "web-2").await.is_empty().then_some(())
    })
    .await;
    wait_for(
        "the planned termination counted as CONTINUE",
        common::patience(),
        || metric_is(&c, CONTINUE_TERMINATING, 2.0),
    )
    .await;
    assert!(
        images(&h).await.is_empty(),
        "a marked scale-in leaves no image"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("the group web-2 has the tag lifehook:expected-termination"),
        "{text}"
    );
    assert!(!text.contains("creating an image"), "{text}");
    assert!(!text.contains(&second) || text.contains("the group web-2 has the tag"));

    // CloudFormation empties a group of its stack (a stack deletion, or an
    // AutoScalingReplacingUpdate deleting the old group): a deployment, no image.
    group(&h, "web-4", &arn, &[]).await;
    let r = h
        .control_post(
            "cloudformation/stack-groups",
            json!({"group": "web-4", "stack_name": "web-stack"}),
        )
        .await;
    assert!(r.status().is_success());
    wait_for("web-4 InService", common::patience(), || async {
        let i = instances(&h, "web-4").await;
        i.iter().any(|(_, s)| s == "InService").then_some(())
    })
    .await;
    h.asg
        .update_auto_scaling_group()
        .auto_scaling_group_name("web-4")
        .min_size(0)
        .desired_capacity(0)
        .send()
        .await
        .expect("UpdateAutoScalingGroup");
    wait_for(
        "the stack's termination counted as CONTINUE",
        common::patience(),
        || metric_is(&c, CONTINUE_TERMINATING, 3.0),
    )
    .await;
    assert!(
        images(&h).await.is_empty(),
        "a stack deployment leaves no image"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("CloudFormation stack web-stack is emptying the group web-4"),
        "{text}"
    );

    // A scale-in whose image fails: the configured on_failure (ABANDON), saying why.
    let r = h
        .control_post(
            "ec2/image-outcomes",
            json!({"name_contains": "web-3", "state": "failed", "delay_seconds": 5}),
        )
        .await;
    assert!(r.status().is_success());
    group(&h, "web-3", &arn, &[]).await;
    let id = wait_for("web-3 InService", common::patience(), || async {
        let i = instances(&h, "web-3").await;
        i.into_iter()
            .find(|(_, s)| s == "InService")
            .map(|(i, _)| i)
    })
    .await;
    scale(&h, "web-3", 0).await;
    wait_for("the image of web-3 pending", common::patience(), || async {
        images_of(&h, &id)
            .await
            .into_iter()
            .find(|i| i.1 == "pending")
    })
    .await;
    h.advance(6.0).await;
    wait_for("the failed image ABANDONs", common::patience(), || {
        metric_is(&c, ABANDON_TERMINATING, 1.0)
    })
    .await;
    wait_for("web-3 empty", common::patience(), || async {
        instances(&h, "web-3").await.is_empty().then_some(())
    })
    .await;
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("ended failed") && text.contains("Client.ImageCreationFailed"),
        "{text}"
    );
    assert_eq!(images_of(&h, &id).await.len(), 1, "no second image");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_controller_waits_for_the_image_of_the_first_one() {
    let _serial = common::serial().await;
    let h = Harness::manual().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (url, arn, _dlq) = queue_with_dlq(&h, "hooks", 5).await;
    let cfg = config(d, &url, "");
    // A short visibility, so that the killed controller's message comes back soon.
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "visibility_timeout = \"1h\"",
        "visibility_timeout = \"30s\"",
    );
    std::fs::write(&cfg, text).unwrap();
    let r = h
        .control_post(
            "ec2/image-outcomes",
            json!({"name_contains": "web-5", "state": "available", "delay_seconds": 10}),
        )
        .await;
    assert!(r.status().is_success());
    let first = Proc::controller(&h.endpoint(), &cfg, &d.join("first.log"));
    group(&h, "web-5", &arn, &[]).await;
    let id = wait_for("web-5 InService", common::patience(), || async {
        let i = instances(&h, "web-5").await;
        i.into_iter()
            .find(|(_, s)| s == "InService")
            .map(|(i, _)| i)
    })
    .await;
    scale(&h, "web-5", 0).await;
    wait_for(
        "the first controller's image",
        common::patience(),
        || async {
            images_of(&h, &id)
                .await
                .into_iter()
                .find(|i| i.1 == "pending")
        },
    )
    .await;
    // The controller dies while it waits for the image; the message comes back.
    first.sigkill();
    drop(first);
    let receives = || async {
        h.control_get("stats").await["requests"]["sqs"]["ReceiveMessage"]
            .as_u64()
            .unwrap_or(0)
    };
    let before = receives().await;
    let second = Proc::controller(&h.endpoint(), &cfg, &d.join("second.log"));
    // Two polls of the new controller: the dead one's last long poll (1 s at most) is
    // over, so the message goes to the new controller when it becomes visible.
    wait_for(
        "the second controller polling",
        common::patience(),
        || async { (receives().await >= before + 2).then_some(()) },
    )
    .await;
    h.advance(31.0).await;
    wait_for("terminated", common::patience(), || async {
        instances(&h, "web-5").await.is_empty().then_some(())
    })
    .await;
    wait_for(
        "CONTINUE counted by the second controller",
        common::patience(),
        || metric_is(&second, CONTINUE_TERMINATING, 1.0),
    )
    .await;
    let all = images_of(&h, &id).await;
    assert_eq!(
        all.len(),
        1,
        "the second controller made no image of its own: {all:?}"
    );
    assert_eq!(all[0].1, "available");
    let log = std::fs::read_to_string(d.join("second.log")).unwrap();
    assert!(
        log.contains("an earlier attempt created the image"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_launch_that_never_gets_healthy_is_abandoned_saying_why() {
    let _serial = common::serial().await;
    let h = Harness::manual().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let log = d.join("controller.log");
    let (url, arn, _dlq) = queue_with_dlq(&h, "hooks", 5).await;
    let web = target_group(&h, "web").await;
    let cfg = config(d, &url, "");
    // The launch step gives up after 2 s, without retries.
    let text = std::fs::read_to_string(&cfg).unwrap().replacen(
        "timeout = \"2m\"",
        "timeout = \"2s\"\nretries = 0",
        1,
    );
    std::fs::write(&cfg, text).unwrap();
    let c = Proc::controller(&h.endpoint(), &cfg, &log);
    group(&h, "web-6", &arn, std::slice::from_ref(&web)).await;
    let id = wait_for(
        "the new instance registered by the step",
        common::patience(),
        || async {
            let (id, _) = instances(&h, "web-6").await.into_iter().next()?;
            (health(&h, &web, &id).await.as_deref() == Some("initial")).then_some(id)
        },
    )
    .await;
    let r = h
        .control_post(
            "elbv2/target-health",
            json!({"target_group_arn": web, "instance_id": id, "state": "unhealthy"}),
        )
        .await;
    assert!(r.status().is_success());
    wait_for("the launch ABANDONed", common::patience(), || {
        metric_is(
            &c,
            "lifehook_actions_total{transition=\"launching\",outcome=\"abandon\"}",
            1.0,
        )
    })
    .await;
    // It leaves through Terminating, draining from the group's target group (20 s).
    wait_for("the instance draining", common::patience(), || async {
        (health(&h, &web, &id).await.as_deref() == Some("draining")).then_some(())
    })
    .await;
    h.advance(21.0).await;
    // Then through the terminate hook (spec §7.2, the sandbox's default): no image of an
    // instance that never served.
    wait_for("the instance gone", common::patience(), || async {
        state_of(&h, "web-6", &id).await.is_none().then_some(())
    })
    .await;
    wait_for(
        "its termination counted as CONTINUE",
        common::patience(),
        || metric_is(&c, CONTINUE_TERMINATING, 1.0),
    )
    .await;
    assert!(images(&h).await.is_empty(), "no image of a failed launch");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains(&format!("{id} is not healthy in every target group after"))
            && text.contains("unhealthy (Target.FailedHealthChecks) port 80"),
        "{text}"
    );
    assert!(
        text.contains("the instance never entered service: its launch ended Cancelled"),
        "{text}"
    );
}

/// Virtual seconds left before the action's heartbeat timeout and before its message's
/// visibility timeout.
async fn seconds_left(h: &Harness, instance: &str, queue: &str) -> Option<(f64, f64)> {
    let s = h.state().await;
    let r = &s["regions"]["us-east-1"];
    let action = r["actions"]
        .as_array()?
        .iter()
        .find(|a| a["instance"] == instance)
        .and_then(|a| a["seconds_left"].as_f64())?;
    let message = r["sqs"][queue]["in_flight_seconds_left"].as_f64()?;
    Some((action, message))
}

#[tokio::test(flavor = "multi_thread")]
async fn heartbeats_keep_the_action_alive_until_a_slow_image_is_available() {
    let _serial = common::serial().await;
    let h = Harness::manual().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (url, arn, _dlq) = queue_with_dlq(&h, "hooks", 5).await;
    // Five minutes for the image, on a one-minute heartbeat timeout whose DefaultResult
    // would ABANDON.
    let r = h
        .control_post(
            "ec2/image-outcomes",
            json!({"name_contains": "web-8", "state": "available", "delay_seconds": 300}),
        )
        .await;
    assert!(r.status().is_success());
    let cfg = config(d, &url, "");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("visibility_timeout = \"1h\"", "visibility_timeout = \"5m\"");
    std::fs::write(&cfg, text).unwrap();
    let port = free_port();
    let admin = format!("127.0.0.1:{port}");
    let log = std::fs::File::create(d.join("controller.log")).unwrap();
    // The controller follows the sandbox's clock: heartbeats and visibility on virtual time.
    let child = lifehook_cmd(&h.endpoint())
        .args(["controller", "--config"])
        .arg(&cfg)
        .args(["--admin-listen", &admin])
        .env(
            "LIFEHOOK_CLOCK_URL",
            format!("{}/_sandbox/clock", h.endpoint()),
        )
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn controller");
    let c = Proc { child, admin };
    create_group(
        &h,
        "web-8",
        1,
        vec![hook("terminate", TERMINATING, 60, "ABANDON", Some(&arn))],
    )
    .await;
    let id = wait_for("web-8 InService", common::patience(), || async {
        let i = instances(&h, "web-8").await;
        i.into_iter()
            .find(|(_, s)| s == "InService")
            .map(|(i, _)| i)
    })
    .await;
    scale(&h, "web-8", 0).await;
    wait_for("the image pending", common::patience(), || async {
        images_of(&h, &id)
            .await
            .into_iter()
            .find(|i| i.1 == "pending")
    })
    .await;
    // Five minutes, ten seconds at a time. The controller heartbeats every 30 s (half the
    // timeout) and extends the message every 150 s; before each step the test waits until
    // what was due is done: more than 30 s left on the action, more than 150 s on the
    // message.
    for step in 0..30 {
        wait_for(
            &format!("the action kept alive at {}s", step * 10),
            common::patience(),
            || async {
                seconds_left(&h, &id, "hooks")
                    .await
                    .filter(|(action, message)| *action > 30.0 && *message > 150.0)
            },
        )
        .await;
        assert_eq!(
            state_of(&h, "web-8", &id).await.as_deref(),
            Some("Terminating:Wait"),
            "held at {}s",
            step * 10
        );
        h.advance(10.0).await;
    }
    wait_for(
        "terminated once the image is available",
        common::patience(),
        || async { state_of(&h, "web-8", &id).await.is_none().then_some(()) },
    )
    .await;
    wait_for("CONTINUE counted", common::patience(), || {
        metric_is(&c, CONTINUE_TERMINATING, 1.0)
    })
    .await;
    let all = images_of(&h, &id).await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].1, "available");
    let beats = c.metric("lifehook_heartbeats_total").await;
    assert!(beats >= 9.0, "heartbeats: {beats}");
}
