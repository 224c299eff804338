use super::ops::dispatch;
use super::*;
use crate::protocol::Wire;

const REGION: &str = "us-east-1";
const T0: Millis = 1_700_000_000_000;

fn ctx(service: Service, op: &str) -> RequestCtx {
    RequestCtx {
        request_id: "rid".into(),
        region: REGION.into(),
        host: "h".into(),
        path: "/".into(),
        service,
        wire: if service == Service::Ec2 {
            Wire::Ec2Query
        } else {
            Wire::Query
        },
        op: op.into(),
    }
}

fn params(pairs: &[(&str, &str)]) -> Params {
    Params::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
}

fn ec2(w: &mut World, op: &str, pairs: &[(&str, &str)]) -> Result<String, AwsError> {
    let r = dispatch(w, &ctx(Service::Ec2, op), &params(pairs));
    let now = w.now;
    w.run_until(now);
    r
}

fn asg(w: &mut World, op: &str, pairs: &[(&str, &str)]) -> String {
    let r = autoscaling::ops::dispatch(w, &ctx(Service::AutoScaling, op), &params(pairs));
    let now = w.now;
    w.run_until(now);
    r.unwrap_or_else(|e| panic!("{op}: {e}"))
}

/// A group of `n` with a propagated and a non-propagated tag and, when `hooks`, a
/// launch and a terminate hook of 300 s.
fn group(w: &mut World, n: &str, hooks: bool) -> Vec<String> {
    let mut pairs = vec![
        ("AutoScalingGroupName", "web"),
        ("MinSize", "0"),
        ("MaxSize", "5"),
        ("DesiredCapacity", n),
        ("LaunchTemplate.LaunchTemplateName", "lt-web"),
        ("AvailabilityZones.member.1", "us-east-1a"),
        ("Tags.member.1.Key", "team"),
        ("Tags.member.1.Value", "blue"),
        ("Tags.member.1.PropagateAtLaunch", "true"),
        ("Tags.member.2.Key", "hidden"),
        ("Tags.member.2.Value", "x"),
        ("Tags.member.2.PropagateAtLaunch", "false"),
    ];
    if hooks {
        pairs.extend([
            (
                "LifecycleHookSpecificationList.member.1.LifecycleHookName",
                "up",
            ),
            (
                "LifecycleHookSpecificationList.member.1.LifecycleTransition",
                "autoscaling:EC2_INSTANCE_LAUNCHING",
            ),
            (
                "LifecycleHookSpecificationList.member.1.HeartbeatTimeout",
                "300",
            ),
            (
                "LifecycleHookSpecificationList.member.2.LifecycleHookName",
                "down",
            ),
            (
                "LifecycleHookSpecificationList.member.2.LifecycleTransition",
                "autoscaling:EC2_INSTANCE_TERMINATING",
            ),
            (
                "LifecycleHookSpecificationList.member.2.HeartbeatTimeout",
                "300",
            ),
        ]);
    }
    asg(w, "CreateAutoScalingGroup", &pairs);
    w.region(REGION)
        .autoscaling
        .members("web")
        .map(|i| i.id.clone())
        .collect()
}

#[test]
fn group_instances_are_ec2_instances_with_propagated_tags() {
    let mut w = World::new(T0, Default::default());
    let ids = group(&mut w, "2", true);
    assert_eq!(ids.len(), 2);
    let out = ec2(&mut w, "DescribeInstances", &[]).unwrap();
    assert!(out.starts_with(
        "<DescribeInstancesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>rid</requestId><reservationSet><item>"
    ));
    for id in &ids {
        assert!(out.contains(&format!("<instanceId>{id}</instanceId>")));
    }
    // Pending:Wait is already `running` (§1.2 note 4).
    assert_eq!(out.matches("<name>running</name>").count(), 2);
    assert!(out.contains("<key>aws:autoscaling:groupName</key><value>web</value>"));
    assert!(out.contains("<key>team</key><value>blue</value>"));
    assert!(!out.contains("hidden"));
    let by_tag = ec2(
        &mut w,
        "DescribeInstances",
        &[
            ("Filter.1.Name", "tag:aws:autoscaling:groupName"),
            ("Filter.1.Value.1", "we*"),
            ("Filter.2.Name", "instance-state-name"),
            ("Filter.2.Value.1", "running"),
        ],
    )
    .unwrap();
    assert_eq!(by_tag.matches("<instanceId>").count(), 2);
    let none = ec2(
        &mut w,
        "DescribeInstances",
        &[("Filter.1.Name", "tag-key"), ("Filter.1.Value.1", "nope")],
    )
    .unwrap();
    assert!(none.contains("<reservationSet/>"));
    let err = ec2(
        &mut w,
        "DescribeInstances",
        &[("Filter.1.Name", "bogus"), ("Filter.1.Value.1", "x")],
    )
    .unwrap_err();
    assert_eq!(err.code, "InvalidParameterValue");
}

#[test]
fn unknown_and_malformed_ids() {
    let mut w = World::new(T0, Default::default());
    let e = ec2(
        &mut w,
        "DescribeInstances",
        &[("InstanceId.1", "i-0123456789abcdef0")],
    )
    .unwrap_err();
    assert_eq!(e.code, "InvalidInstanceID.NotFound");
    assert_eq!(
        e.message,
        "The instance ID 'i-0123456789abcdef0' does not exist"
    );
    let e = ec2(
        &mut w,
        "TerminateInstances",
        &[
            ("InstanceId.1", "i-0123456789abcdef0"),
            ("InstanceId.2", "i-0123456789abcdef1"),
        ],
    )
    .unwrap_err();
    assert_eq!(
        e.message,
        "The instance IDs 'i-0123456789abcdef0, i-0123456789abcdef1' do not exist"
    );
    let e = ec2(&mut w, "RebootInstances", &[("InstanceId.1", "web-1")]).unwrap_err();
    assert_eq!(e.code, "InvalidInstanceID.Malformed");
    assert_eq!(e.message, "Invalid id: \"web-1\"");
    let e = ec2(&mut w, "Nope", &[]).unwrap_err();
    assert_eq!(e.code, "InvalidAction");
}

#[test]
fn terminate_group_instance_skips_hooks_and_is_replaced() {
    let mut w = World::new(T0, Default::default());
    let ids = group(&mut w, "1", true);
    let id = ids[0].clone();
    // Complete the launch action so the instance is InService.
    let token = w
        .region(REGION)
        .autoscaling
        .open_actions_of(&id)
        .pop()
        .unwrap();
    asg(
        &mut w,
        "CompleteLifecycleAction",
        &[
            ("AutoScalingGroupName", "web"),
            ("LifecycleHookName", "up"),
            ("LifecycleActionToken", &token),
            ("LifecycleActionResult", "CONTINUE"),
        ],
    );
    let out = ec2(&mut w, "TerminateInstances", &[("InstanceId.1", &id)]).unwrap();
    assert!(out.contains("<currentState><code>32</code><name>shutting-down</name></currentState><previousState><code>16</code><name>running</name></previousState>"));
    let s = &w.region(REGION).autoscaling;
    assert_eq!(s.instances[&id].state, S::Terminated);
    assert!(s.open_actions_of(&id).is_empty(), "no terminate hook");
    let members: Vec<String> = s.members("web").map(|i| i.id.clone()).collect();
    assert_eq!(members.len(), 1, "replaced");
    assert_ne!(members[0], id);
    assert_eq!(
        s.instances[&members[0]].state,
        S::PendingWait,
        "the replacement runs the launch hook"
    );
    let out = ec2(&mut w, "DescribeInstances", &[("InstanceId.1", &id)]).unwrap();
    assert!(out.contains("<name>terminated</name>"));
    // Terminating again reports terminated → terminated.
    let out = ec2(&mut w, "TerminateInstances", &[("InstanceId.1", &id)]).unwrap();
    assert!(out.contains("<currentState><code>48</code>"));
    // Terminated instances disappear after an hour.
    let later = w.now + TERMINATED_VISIBLE_MS + 7_200_000;
    w.run_until(later);
    let e = ec2(&mut w, "DescribeInstances", &[("InstanceId.1", &id)]).unwrap_err();
    assert_eq!(e.code, "InvalidInstanceID.NotFound");
}

#[test]
fn detached_instance_keeps_running_without_group_tag() {
    let mut w = World::new(T0, Default::default());
    let id = group(&mut w, "1", false)[0].clone();
    asg(
        &mut w,
        "DetachInstances",
        &[
            ("AutoScalingGroupName", "web"),
            ("InstanceIds.member.1", &id),
            ("ShouldDecrementDesiredCapacity", "true"),
        ],
    );
    // Long after the engine forgot it, it still runs.
    let later = w.now + 3 * 3_600_000;
    w.run_until(later);
    autoscaling::engine::prune(&mut w, REGION);
    let out = ec2(&mut w, "DescribeInstances", &[("InstanceId.1", &id)]).unwrap();
    assert!(out.contains("<name>running</name>"), "{out}");
    assert!(!out.contains("aws:autoscaling:groupName"));
    assert!(
        out.contains("<key>team</key>"),
        "other propagated tags stay"
    );
}

#[test]
fn standalone_instances_and_tags() {
    let mut w = World::new(T0, Default::default());
    let out = ec2(
        &mut w,
        "RunInstances",
        &[
            ("ImageId", "ami-12345678"),
            ("MinCount", "2"),
            ("MaxCount", "2"),
            ("InstanceType", "t3.small"),
            ("Placement.AvailabilityZone", "us-east-1c"),
            ("TagSpecification.1.ResourceType", "instance"),
            ("TagSpecification.1.Tag.1.Key", "Name"),
            ("TagSpecification.1.Tag.1.Value", "box"),
        ],
    )
    .unwrap();
    assert!(out.contains("<name>pending</name>"));
    assert_eq!(out.matches("<instanceId>").count(), 2);
    let ids: Vec<String> = w.region(REGION).ec2.instances.keys().cloned().collect();
    let a = ids[0].clone();
    let out = ec2(&mut w, "DescribeInstances", &[("InstanceId.1", &a)]).unwrap();
    assert!(out.contains("<name>running</name>"));
    assert!(out.contains("<availabilityZone>us-east-1c</availabilityZone>"));
    assert!(out.contains("<key>Name</key><value>box</value>"));
    ec2(
        &mut w,
        "CreateTags",
        &[
            ("ResourceId.1", &a),
            ("Tag.1.Key", "role"),
            ("Tag.1.Value", "db"),
        ],
    )
    .unwrap();
    let e = ec2(
        &mut w,
        "CreateTags",
        &[
            ("ResourceId.1", &a),
            ("Tag.1.Key", "aws:x"),
            ("Tag.1.Value", "1"),
        ],
    )
    .unwrap_err();
    assert_eq!(e.code, "InvalidParameterValue");
    let tags = ec2(
        &mut w,
        "DescribeTags",
        &[
            ("Filter.1.Name", "resource-id"),
            ("Filter.1.Value.1", &a),
            ("Filter.2.Name", "key"),
            ("Filter.2.Value.1", "role"),
        ],
    )
    .unwrap();
    assert!(tags.contains(&format!(
        "<item><resourceId>{a}</resourceId><resourceType>instance</resourceType><key>role</key><value>db</value></item>"
    )));
    // A value that does not match keeps the tag; no value removes it.
    ec2(
        &mut w,
        "DeleteTags",
        &[
            ("ResourceId.1", &a),
            ("Tag.1.Key", "role"),
            ("Tag.1.Value", "web"),
        ],
    )
    .unwrap();
    assert!(w.region(REGION).ec2.instances[&a].tags.contains_key("role"));
    ec2(
        &mut w,
        "DeleteTags",
        &[("ResourceId.1", &a), ("Tag.1.Key", "role")],
    )
    .unwrap();
    assert!(!w.region(REGION).ec2.instances[&a].tags.contains_key("role"));
    let e = ec2(
        &mut w,
        "RunInstances",
        &[("ImageId", "ami-1"), ("MinCount", "1")],
    )
    .unwrap_err();
    assert_eq!(e.code, "MissingParameter");
    ec2(&mut w, "RebootInstances", &[("InstanceId.1", &a)]).unwrap();
    assert_eq!(w.region(REGION).ec2.instances[&a].reboots, vec![T0]);
}

#[test]
fn images_become_available_or_failed_on_virtual_time() {
    let mut w = World::new(T0, Default::default());
    let id = group(&mut w, "1", false)[0].clone();
    let out = ec2(
        &mut w,
        "CreateImage",
        &[
            ("InstanceId", &id),
            ("Name", "web-backup-1"),
            ("TagSpecification.1.ResourceType", "image"),
            ("TagSpecification.1.Tag.1.Key", "k"),
            ("TagSpecification.1.Tag.1.Value", "v"),
            ("TagSpecification.2.ResourceType", "snapshot"),
            ("TagSpecification.2.Tag.1.Key", "s"),
            ("TagSpecification.2.Tag.1.Value", "t"),
        ],
    )
    .unwrap();
    let ami = out
        .split("<imageId>")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .unwrap()
        .to_owned();
    assert_eq!(
        w.region(REGION).ec2.instances[&id].reboots.len(),
        1,
        "CreateImage without NoReboot reboots"
    );
    let d = ec2(&mut w, "DescribeImages", &[("ImageId.1", &ami)]).unwrap();
    assert!(d.contains("<imageState>pending</imageState>"));
    assert!(d.contains("<key>k</key><value>v</value>"));
    let e = ec2(
        &mut w,
        "CreateImage",
        &[
            ("InstanceId", &id),
            ("Name", "web-backup-1"),
            ("NoReboot", "true"),
        ],
    )
    .unwrap_err();
    assert_eq!(e.code, "InvalidAMIName.Duplicate");
    assert_eq!(
        e.message,
        format!("AMI name web-backup-1 is already in use by AMI {ami}")
    );
    w.run_until(T0 + 119_000);
    let d = ec2(&mut w, "DescribeImages", &[("Owner.1", "self")]).unwrap();
    assert!(d.contains("<imageState>pending</imageState>"));
    w.run_until(T0 + 120_000);
    let d = ec2(
        &mut w,
        "DescribeImages",
        &[
            ("Filter.1.Name", "state"),
            ("Filter.1.Value.1", "available"),
        ],
    )
    .unwrap();
    assert!(d.contains(&ami));
    let snaps = ec2(
        &mut w,
        "DescribeTags",
        &[
            ("Filter.1.Name", "resource-type"),
            ("Filter.1.Value.1", "snapshot"),
        ],
    )
    .unwrap();
    assert!(snaps.contains("<key>s</key><value>t</value>"));

    // A scripted failure.
    w.region(REGION).ec2.image_outcomes.push(ImageOutcome {
        instance_id: None,
        name_contains: Some("doomed".into()),
        state: "failed".into(),
        delay_seconds: Some(10.0),
        region: None,
    });
    let out = ec2(
        &mut w,
        "CreateImage",
        &[
            ("InstanceId", &id),
            ("Name", "doomed-1"),
            ("NoReboot", "true"),
        ],
    )
    .unwrap();
    assert!(out.contains("<imageId>ami-"));
    assert_eq!(w.region(REGION).ec2.instances[&id].reboots.len(), 1);
    let now = w.now;
    w.run_until(now + 10_000);
    let d = ec2(
        &mut w,
        "DescribeImages",
        &[("Filter.1.Name", "name"), ("Filter.1.Value.1", "doomed-*")],
    )
    .unwrap();
    assert!(d.contains("<imageState>failed</imageState>"), "{d}");
    assert!(d.contains("<stateReason>"));

    ec2(&mut w, "DeregisterImage", &[("ImageId", &ami)]).unwrap();
    let d = ec2(&mut w, "DescribeImages", &[("ImageId.1", &ami)]).unwrap();
    assert!(d.contains("<imagesSet/>"));
    let e = ec2(
        &mut w,
        "DescribeImages",
        &[("ImageId.1", "ami-0123456789abcdef0")],
    )
    .unwrap_err();
    assert_eq!(e.code, "InvalidAMIID.NotFound");
    let e = ec2(&mut w, "CreateImage", &[("InstanceId", &id), ("Name", "x")]).unwrap_err();
    assert_eq!(e.code, "InvalidAMIName.Malformed");
}

#[test]
fn target_lifecycle_states() {
    assert_eq!(target_lifecycle_state(S::PendingWait), "InService");
    assert_eq!(target_lifecycle_state(S::InService), "InService");
    assert_eq!(target_lifecycle_state(S::TerminatingWait), "Terminated");
    assert_eq!(target_lifecycle_state(S::Standby), "Standby");
    assert_eq!(target_lifecycle_state(S::Detached), "Detached");
    assert_eq!(ec2_state_of(S::PendingWait), Ec2State::Running);
    assert_eq!(ec2_state_of(S::Terminated), Ec2State::Terminated);
}
