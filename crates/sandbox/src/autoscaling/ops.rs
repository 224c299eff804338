//! The Auto Scaling Query operations: request parameters per spec Appendix A, responses per
//! §4.3 (`<OpResult>` first, absent fields omitted), errors per §2.3 and §4.4.

use lifehook_model::{LifecycleResult, LifecycleState as S, LifecycleTransition as T};

use super::engine::{
    self, Activity, Group, Hook, Instance, MAX_HOOKS_PER_GROUP, MAX_TAGS_PER_GROUP, Refresh,
    Resolution, Tag, counts,
};
use super::notify::{self, TargetKind, target_kind};
use crate::clock::{iso_millis, iso_secs};
use crate::ids;
use crate::protocol::RequestCtx;
use crate::protocol::{AwsError, Params, Service, XmlWriter};
use crate::world::World;

use super::wire::*;

pub(super) type R = Result<String, AwsError>;

type Cx<'a> = crate::protocol::OpCx<'a>;

/// Auto Scaling's response shapes (§4.3).
trait Replies {
    fn writer(&self) -> XmlWriter;
    fn no_result(&self) -> String;
    fn empty_result(&self) -> String;
}

impl Replies for Cx<'_> {
    fn writer(&self) -> XmlWriter {
        XmlWriter::response(self.op, ns(), true)
    }
    /// Ops with no output shape: only `ResponseMetadata` (§4.3).
    fn no_result(&self) -> String {
        XmlWriter::response(self.op, ns(), false).finish(self.rid)
    }
    /// Ops whose output has no members: an empty `<OpResult/>` (§4.3).
    fn empty_result(&self) -> String {
        XmlWriter::empty_result(self.op, ns(), self.rid)
    }
}

fn ns() -> &'static str {
    Service::AutoScaling.xml_namespace()
}

/// Runs one Auto Scaling operation on the world.
pub(crate) fn dispatch(w: &mut World, ctx: &RequestCtx, p: &Params) -> R {
    let cx = ctx.op_cx();
    match ctx.op.as_str() {
        "CreateAutoScalingGroup" => create_group(w, &cx, p),
        "UpdateAutoScalingGroup" => update_group(w, &cx, p),
        "DeleteAutoScalingGroup" => delete_group(w, &cx, p),
        "DescribeAutoScalingGroups" => describe_groups(w, &cx, p),
        "DescribeAutoScalingInstances" => describe_instances(w, &cx, p),
        "SetDesiredCapacity" => set_desired(w, &cx, p),
        "TerminateInstanceInAutoScalingGroup" => terminate_instance(w, &cx, p),
        "PutLifecycleHook" => put_hook(w, &cx, p),
        "DescribeLifecycleHooks" => describe_hooks(w, &cx, p),
        "DeleteLifecycleHook" => delete_hook(w, &cx, p),
        "DescribeLifecycleHookTypes" => describe_hook_types(&cx),
        "CompleteLifecycleAction" => complete_action(w, &cx, p),
        "RecordLifecycleActionHeartbeat" => record_heartbeat(w, &cx, p),
        "DescribeScalingActivities" => describe_activities(w, &cx, p),
        "EnterStandby" => enter_standby(w, &cx, p),
        "ExitStandby" => exit_standby(w, &cx, p),
        "DetachInstances" => detach_instances(w, &cx, p),
        "AttachInstances" => attach_instances(w, &cx, p),
        "SetInstanceProtection" => set_protection(w, &cx, p),
        "SetInstanceHealth" => set_health(w, &cx, p),
        "CreateOrUpdateTags" => create_tags(w, &cx, p),
        "DeleteTags" => delete_tags(w, &cx, p),
        "DescribeTags" => describe_tags(w, &cx, p),
        "StartInstanceRefresh" => start_refresh(w, &cx, p),
        "DescribeInstanceRefreshes" => describe_refreshes(w, &cx, p),
        "CancelInstanceRefresh" => cancel_refresh(w, &cx, p),
        // Target groups (§2.7) live with ELBv2, which registers and deregisters instances.
        "AttachLoadBalancerTargetGroups" => crate::elbv2::asg::attach(w, ctx, p),
        "DetachLoadBalancerTargetGroups" => crate::elbv2::asg::detach(w, ctx, p),
        "DescribeLoadBalancerTargetGroups" => crate::elbv2::asg::describe(w, ctx, p),
        op => Err(AwsError::unknown_operation(Service::AutoScaling, op)),
    }
}

/// Reconciles the group, then answers with the activities the operation started.
fn activities_reply(w: &mut World, cx: &Cx, gname: &str, acts: &[Activity]) -> R {
    engine::reconcile(w, cx.region, gname);
    let mut x = cx.writer();
    write_activities(&mut x, "Activities", acts);
    Ok(x.finish(cx.rid))
}

/// `AutoScalingGroupName` and `InstanceIds` (at most 20).
fn group_and_ids(p: &Params) -> Result<(String, Vec<String>), AwsError> {
    let gname = group_name(p, "AutoScalingGroupName")?.to_owned();
    let ids = instance_ids(p, 20)?;
    Ok((gname, ids))
}

/// Lowers the capacity `cap` by one if `yes`: the `(from, to)` change, if any.
fn take_one(cap: &mut i64, yes: bool) -> Option<(i64, i64)> {
    yes.then(|| {
        *cap -= 1;
        (*cap + 1, *cap)
    })
}

/// The group `gname` and its members `ids`, each in a state `ok` accepts; else
/// `The instance … is not in {what}.`
fn group_members(
    w: &mut World,
    region: &str,
    gname: &str,
    ids: &[String],
    ok: impl Fn(S) -> bool,
    what: &str,
) -> Result<(Group, Vec<Instance>), AwsError> {
    let g = existing_group(w, region, gname)?.clone();
    let s = st(w, region);
    let insts = ids
        .iter()
        .map(|id| {
            let i = member(s, gname, id)?;
            if !ok(i.state) {
                return Err(AwsError::validation(format!(
                    "The instance {id} is not in {what}."
                )));
            }
            Ok(i)
        })
        .collect::<Result<_, _>>()?;
    Ok((g, insts))
}

/// How a user request that moves one instance in or out of service reads in its activity.
struct UserMove {
    description: &'static str,
    what: &'static str,
    status: &'static str,
    progress: i64,
}

const TO_STANDBY: UserMove = UserMove {
    description: "Moving EC2 instance to Standby",
    what: "moved to standby",
    status: "InProgress",
    progress: 50,
};

const OUT_OF_STANDBY: UserMove = UserMove {
    description: "Moving EC2 instance out of Standby",
    what: "moved out of standby",
    status: "PreInService",
    progress: 30,
};

const DETACH: UserMove = UserMove {
    description: "Detaching EC2 instance",
    what: "detached",
    status: "InProgress",
    progress: 50,
};

/// Sets the desired capacity the move changed (`(from, to)`), if it did, and records the
/// move's instant activity.
fn user_move_activity(
    w: &mut World,
    region: &str,
    gname: &str,
    i: &Instance,
    m: &UserMove,
    change: Option<(i64, i64)>,
) -> Activity {
    if let Some((_, to)) = change
        && let Some(gm) = st(w, region).groups.get_mut(gname)
    {
        gm.desired = to;
    }
    let cause = user_request_cause(w.now, &i.id, m.what, change);
    let description = format!("{}: {}", m.description, i.id);
    instant_activity(
        w,
        region,
        gname,
        description,
        cause,
        m.status,
        m.progress,
        i,
    )
}

/// A user request that would take the desired capacity below the group's min size.
fn min_size_violation(min: i64, doing: &str) -> AwsError {
    AwsError::validation(format!(
        "Currently, desiredSize equals minSize ({min}). {doing} without replacement will violate group's min size constraint. Either set shouldDecrementDesiredCapacity flag to false or lower group's min size."
    ))
}

/// A user request that would raise the desired capacity above the group's max size.
fn max_size_violation(doing: &str, desired: i64, max: i64) -> AwsError {
    AwsError::validation(format!(
        "{doing} would raise the desired capacity to {desired}, above the group's max size {max}."
    ))
}

/// `At … instance … was {what} in response to a user request`, with the capacity change
/// `(from, to)` if the request changed it.
fn user_request_cause(
    now: crate::clock::Millis,
    id: &str,
    what: &str,
    change: Option<(i64, i64)>,
) -> String {
    let at = iso_secs(now);
    match change {
        Some((from, to)) => {
            let how = if to < from { "shrinking" } else { "increasing" };
            format!(
                "At {at} instance {id} was {what} in response to a user request, {how} the capacity from {from} to {to}."
            )
        }
        None => format!("At {at} instance {id} was {what} in response to a user request."),
    }
}

/// `At … a user request {what} changing the desired capacity from {from} to {to}.`
fn desired_cause(now: crate::clock::Millis, what: &str, from: i64, to: i64) -> String {
    format!(
        "At {} a user request {what} changing the desired capacity from {from} to {to}.",
        iso_secs(now)
    )
}

/// How many of a group's launch sources (template, configuration, mixed policy) a request
/// gives, at most one.
fn launch_sources(given: [bool; 3]) -> Result<usize, AwsError> {
    let n = given.iter().filter(|b| **b).count();
    if n > 1 {
        return Err(AwsError::validation(
            "Valid requests must contain only one of LaunchTemplate, LaunchConfigurationName or MixedInstancesPolicy parameter.",
        ));
    }
    Ok(n)
}

/// `DeletionProtection`, if given.
fn deletion_protection(p: &Params) -> Result<Option<String>, AwsError> {
    Ok(one_of(
        p,
        "DeletionProtection",
        &["none", "prevent-force-deletion", "prevent-all-deletion"],
    )?
    .map(str::to_owned))
}

/// The answer of an operation that shows the one activity it started, if any.
fn activity_reply(cx: &Cx, act: Option<&Activity>) -> String {
    let mut x = cx.writer();
    if let Some(a) = act {
        x.start("Activity");
        write_activity(&mut x, a);
        x.end();
    }
    x.finish(cx.rid)
}

/// `LifecycleHookName` and `AutoScalingGroupName`, both checked.
fn hook_and_group(p: &Params) -> Result<(String, String), AwsError> {
    let hname = p.required("LifecycleHookName")?.to_owned();
    check_hook_name("LifecycleHookName", &hname)?;
    let gname = group_name(p, "AutoScalingGroupName")?.to_owned();
    Ok((hname, gname))
}

fn describe_hook_types(cx: &Cx) -> R {
    let mut x = cx.writer();
    x.string_list("LifecycleHookTypes", [T::LAUNCHING, T::TERMINATING]);
    Ok(x.finish(cx.rid))
}

// ---------------------------------------------------------------- groups

fn create_group(w: &mut World, cx: &Cx, p: &Params) -> R {
    let now = w.now;
    let name = group_name(p, "AutoScalingGroupName")?.to_owned();
    if st(w, cx.region).groups.contains_key(&name) {
        return Err(AwsError::new(
            400,
            "AlreadyExists",
            format!(
                "AutoScalingGroup by this name already exists - A group with the name {name} already exists"
            ),
        ));
    }
    let min = p.required_int("MinSize")?;
    let max = p.required_int("MaxSize")?;
    let desired = p.int("DesiredCapacity")?.unwrap_or(min);
    check_bounds(min, max, desired)?;
    let lt = parse_lt(p, "LaunchTemplate")?;
    let lc = p
        .opt_len("LaunchConfigurationName", 1, 255)?
        .map(str::to_owned);
    let mixed = parse_mixed(p)?;
    let source_instance = p.get_nonempty("InstanceId");
    let sources = launch_sources([lt.is_some(), lc.is_some(), mixed.is_some()])?;
    if sources == 0 && source_instance.is_none() {
        return Err(AwsError::validation(
            "Valid requests must contain either LaunchTemplate, LaunchConfigurationName, InstanceId or MixedInstancesPolicy parameter.",
        ));
    }
    let azs = p.list("AvailabilityZones");
    let vpc = p.opt_len("VPCZoneIdentifier", 1, 5000)?.map(str::to_owned);
    let subnets = vpc.as_deref().map(parse_subnets).unwrap_or_default();
    let health_check_type = p
        .opt_len("HealthCheckType", 1, 32)?
        .unwrap_or("EC2")
        .to_owned();
    let grace = int_in(p, "HealthCheckGracePeriod", 0, 7 * 86_400)?.unwrap_or(0);
    let cooldown = int_in(p, "DefaultCooldown", 0, 86_400)?.unwrap_or(300);
    let lifetime = p.int("MaxInstanceLifetime")?;
    if let Some(l) = lifetime
        && l != 0
        && !(86_400..=31_536_000).contains(&l)
    {
        return Err(AwsError::validation(
            "Invalid value for parameter MaxInstanceLifetime: must be 0 or between 86400 and 31536000 seconds",
        ));
    }
    let deletion_protection = deletion_protection(p)?;
    let retain = parse_retention(p)?.unwrap_or(false);

    // Hooks exist before the first launch (§2.1).
    let specs = p.struct_list("LifecycleHookSpecificationList");
    if specs.len() > MAX_HOOKS_PER_GROUP {
        return Err(limit_exceeded(
            "at most 50 lifecycle hooks per Auto Scaling group",
        ));
    }
    let mut hooks: Vec<Hook> = Vec::new();
    for (k, spec) in specs.iter().enumerate() {
        let param = format!(
            "LifecycleHookSpecificationList.member.{}.LifecycleHookName",
            k + 1
        );
        let hname = spec
            .get("LifecycleHookName")
            .ok_or_else(|| AwsError::missing(&param))?;
        check_hook_name(&param, hname)?;
        if spec.get("LifecycleTransition").is_none() {
            return Err(AwsError::missing(&format!(
                "LifecycleHookSpecificationList.member.{}.LifecycleTransition",
                k + 1
            )));
        }
        if hooks.iter().any(|h| h.name == hname) {
            return Err(AwsError::validation(format!(
                "Duplicate lifecycle hook name {hname} in LifecycleHookSpecificationList"
            )));
        }
        hooks.push(parse_hook(spec, hname, None)?);
    }
    // §2.1: every spec of one list shares the same target and role.
    if let Some(first) = hooks.first()
        && hooks
            .iter()
            .any(|h| h.target != first.target || h.role != first.role)
    {
        return Err(AwsError::validation(
            "All lifecycle hooks in LifecycleHookSpecificationList must use the same NotificationTargetARN and RoleARN",
        ));
    }
    let mut tags: Vec<Tag> = Vec::new();
    for (res, t) in parse_tags(p, Some(&name))? {
        if res != name {
            return Err(AwsError::validation(format!(
                "Tag ResourceId {res} does not match the AutoScalingGroupName {name}"
            )));
        }
        upsert_tag(&mut tags, t);
    }
    if tags.len() > MAX_TAGS_PER_GROUP {
        return Err(limit_exceeded("at most 50 tags per Auto Scaling group"));
    }
    let target_groups = p.list("TargetGroupARNs");
    crate::elbv2::asg::check_target_groups(w, cx.region, &target_groups)?;
    let uuid = ids::uuid();
    let arn = engine::group_arn(cx.region, &uuid, &name);
    // §7.5: the test notification is sent for hooks created with the group too.
    if let Some(h) = hooks.first()
        && let (Some(t), Some(role)) = (&h.target, &h.role)
        && matches!(target_kind(t), Some(TargetKind::Sqs | TargetKind::Sns))
    {
        notify::test_notification(w, cx.region, &name, &arn, t, role)?;
    }
    let g = Group {
        name: name.clone(),
        arn,
        created: now,
        min,
        max,
        desired,
        default_cooldown: cooldown,
        azs,
        subnets,
        vpc_zone_identifier: vpc,
        launch_template: lt,
        launch_config: lc,
        mixed,
        health_check_type,
        grace,
        termination_policies: p.list("TerminationPolicies"),
        new_protected: p.bool("NewInstancesProtectedFromScaleIn")?.unwrap_or(false),
        target_groups,
        load_balancers: p.list("LoadBalancerNames"),
        tags,
        hooks,
        retain_on_abandon: retain,
        deletion_protection,
        max_instance_lifetime: lifetime,
        capacity_rebalance: p.bool("CapacityRebalance")?.unwrap_or(false),
        consecutive_abandons: 0,
        next_launch_at: 0,
        reconcile_at: None,
        pending_cause: Some(desired_cause(
            now,
            "created an AutoScalingGroup",
            0,
            desired,
        )),
    };
    st(w, cx.region).groups.insert(name.clone(), g);
    engine::reconcile(w, cx.region, &name);
    Ok(cx.no_result())
}

fn update_group(w: &mut World, cx: &Cx, p: &Params) -> R {
    let now = w.now;
    let name = group_name(p, "AutoScalingGroupName")?.to_owned();
    let g = existing_group(w, cx.region, &name)?.clone();
    let new_min = p.int("MinSize")?;
    let new_max = p.int("MaxSize")?;
    let new_desired = p.int("DesiredCapacity")?;
    let min = new_min.unwrap_or(g.min);
    let max = new_max.unwrap_or(g.max);
    let mut desired = new_desired.unwrap_or(g.desired);
    if new_desired.is_none() {
        // AWS: a new MinSize above desired raises desired; a new MaxSize below lowers it.
        if new_min.is_some() && desired < min {
            desired = min;
        }
        if new_max.is_some() && desired > max {
            desired = max;
        }
    }
    check_bounds(min, max, desired)?;
    let lt = parse_lt(p, "LaunchTemplate")?;
    let mixed = parse_mixed(p)?;
    let lc = p.get_nonempty("LaunchConfigurationName").map(str::to_owned);
    launch_sources([lt.is_some(), lc.is_some(), mixed.is_some()])?;
    let grace = int_in(p, "HealthCheckGracePeriod", 0, 7 * 86_400)?;
    let cooldown = int_in(p, "DefaultCooldown", 0, 86_400)?;
    let hct = p.opt_len("HealthCheckType", 1, 32)?.map(str::to_owned);
    let vpc = p.opt_len("VPCZoneIdentifier", 1, 5000)?.map(str::to_owned);
    let protect = p.bool("NewInstancesProtectedFromScaleIn")?;
    let rebalance = p.bool("CapacityRebalance")?;
    let lifetime = p.int("MaxInstanceLifetime")?;
    let retain = parse_retention(p)?;
    let dp = deletion_protection(p)?;
    let azs = p.list("AvailabilityZones");
    let tp = p.get("TerminationPolicies").is_some() || !p.list("TerminationPolicies").is_empty();
    let tps = p.list("TerminationPolicies");

    let gm = existing_group(w, cx.region, &name)?;
    let old_desired = gm.desired;
    gm.min = min;
    gm.max = max;
    gm.desired = desired;
    if lt.is_some() || lc.is_some() || mixed.is_some() {
        gm.launch_template = lt;
        gm.launch_config = lc;
        gm.mixed = mixed;
    }
    if let Some(v) = grace {
        gm.grace = v;
    }
    if let Some(v) = cooldown {
        gm.default_cooldown = v;
    }
    if let Some(v) = hct {
        gm.health_check_type = v;
    }
    if let Some(v) = vpc {
        gm.subnets = parse_subnets(&v);
        gm.vpc_zone_identifier = Some(v);
    }
    if !azs.is_empty() {
        gm.azs = azs;
    }
    if let Some(v) = protect {
        gm.new_protected = v;
    }
    if let Some(v) = rebalance {
        gm.capacity_rebalance = v;
    }
    if let Some(v) = lifetime {
        gm.max_instance_lifetime = Some(v);
    }
    if let Some(v) = retain {
        gm.retain_on_abandon = v;
    }
    if let Some(v) = dp {
        gm.deletion_protection = Some(v);
    }
    if tp {
        gm.termination_policies = tps;
    }
    if desired != old_desired {
        gm.pending_cause = Some(desired_cause(
            now,
            &format!(
                "update of AutoScalingGroup constraints to min: {min}, max: {max}, desired: {desired}"
            ),
            old_desired,
            desired,
        ));
    }
    engine::reconcile(w, cx.region, &name);
    Ok(cx.no_result())
}

fn delete_group(w: &mut World, cx: &Cx, p: &Params) -> R {
    let now = w.now;
    let name = group_name(p, "AutoScalingGroupName")?.to_owned();
    let force = p.bool("ForceDelete")?.unwrap_or(false);
    let g = existing_group(w, cx.region, &name)?.clone();
    match g.deletion_protection.as_deref() {
        Some("prevent-all-deletion") => {
            return Err(AwsError::validation(format!(
                "Deletion protection (prevent-all-deletion) is enabled for AutoScalingGroup {name}"
            )));
        }
        Some("prevent-force-deletion") if force => {
            return Err(AwsError::validation(format!(
                "Deletion protection (prevent-force-deletion) is enabled for AutoScalingGroup {name}"
            )));
        }
        _ => {}
    }
    let s = st(w, cx.region);
    let members: Vec<String> = s.members(&name).map(|i| i.id.clone()).collect();
    if !members.is_empty() && !force {
        return Err(AwsError::new(
            400,
            "ResourceInUse",
            "You cannot delete an AutoScalingGroup while there are instances or pending Spot instance request(s) still in the group.",
        ));
    }
    // The terminated instances drain from the group's target groups (nothing waits).
    for id in &members {
        crate::elbv2::asg::deregister_group_instance(w, cx.region, &name, id);
    }
    let s = st(w, cx.region);
    // §2.6: force delete deletes outstanding actions; no terminate hooks (§1.3).
    s.retain_actions(now, |a| a.group != name);
    for id in &members {
        s.update_instance(id, now, |i| {
            i.state = S::Terminated;
            i.in_group = false;
            i.ended_at = Some(now);
            i.activity = None;
        });
    }
    for r in s
        .refreshes
        .iter_mut()
        .filter(|r| r.group == name && r.is_active())
    {
        r.status = "Cancelled";
        r.end = Some(now);
        r.reason = Some("The Auto Scaling group was deleted.".into());
    }
    for a in s.activities.iter_mut().filter(|a| a.group == name) {
        a.group_deleted = true;
        if a.end.is_none() {
            a.end = Some(now);
            a.status = "Cancelled";
        }
    }
    s.groups.remove(&name);
    for id in &members {
        crate::ecs::instance_terminated(w, cx.region, id);
    }
    Ok(cx.no_result())
}

fn describe_groups(w: &mut World, cx: &Cx, p: &Params) -> R {
    let names = p.list("AutoScalingGroupNames");
    let include = p.bool("IncludeInstances")?.unwrap_or(true);
    let filters = p.struct_list("Filters");
    let mut fs: Vec<(String, Vec<String>)> = Vec::new();
    for f in &filters {
        let n = f.get("Name").unwrap_or("").to_owned();
        if n != "tag-key" && n != "tag-value" && !n.starts_with("tag:") {
            return Err(AwsError::validation(format!(
                "Invalid value for parameter Filters: unknown filter name {n:?} (valid: tag-key, tag-value, tag:<key>)"
            )));
        }
        fs.push((n, f.list("Values")));
    }
    let s = st(w, cx.region);
    let matching: Vec<String> = s
        .groups
        .values()
        .filter(|g| names.is_empty() || names.contains(&g.name))
        .filter(|g| {
            fs.iter().all(|(n, vals)| match n.as_str() {
                "tag-key" => g.tags.iter().any(|t| vals.contains(&t.key)),
                "tag-value" => g.tags.iter().any(|t| vals.contains(&t.value)),
                other => {
                    let key = other.trim_start_matches("tag:");
                    g.tags
                        .iter()
                        .any(|t| t.key == key && vals.contains(&t.value))
                }
            })
        })
        .map(|g| g.name.clone())
        .collect();
    let (page, next) = paginate(&matching, p, 50, 100)?;
    let mut x = cx.writer();
    if page.is_empty() {
        x.empty("AutoScalingGroups");
    } else {
        x.start("AutoScalingGroups");
        for n in &page {
            if let Some(g) = s.groups.get(n) {
                write_group(&mut x, g, s, include, cx.region);
            }
        }
        x.end();
    }
    x.opt("NextToken", next);
    Ok(x.finish(cx.rid))
}

fn describe_instances(w: &mut World, cx: &Cx, p: &Params) -> R {
    let ids = instance_ids(p, 50)?;
    let s = st(w, cx.region);
    let all: Vec<Instance> = s
        .instances
        .values()
        .filter(|i| i.in_group && (ids.is_empty() || ids.contains(&i.id)))
        .cloned()
        .collect();
    let (page, next) = paginate(&all, p, 50, 50)?;
    let mut x = cx.writer();
    if page.is_empty() {
        x.empty("AutoScalingInstances");
    } else {
        x.start("AutoScalingInstances");
        for i in &page {
            x.start("member");
            x.elem("InstanceId", &i.id);
            x.elem("InstanceType", &i.instance_type);
            x.elem("AutoScalingGroupName", &i.group);
            x.elem("AvailabilityZone", &i.az);
            x.elem("LifecycleState", i.state.as_str());
            // §4.3: uppercase here, unlike DescribeAutoScalingGroups.
            x.elem(
                "HealthStatus",
                if i.healthy { "HEALTHY" } else { "UNHEALTHY" },
            );
            x.opt("LaunchConfigurationName", i.launch_config.as_deref());
            if let Some(lt) = &i.launch_template {
                write_lt(&mut x, "LaunchTemplate", lt);
            }
            x.elem("ProtectedFromScaleIn", i.protected);
            x.end();
        }
        x.end();
    }
    x.opt("NextToken", next);
    Ok(x.finish(cx.rid))
}

fn set_desired(w: &mut World, cx: &Cx, p: &Params) -> R {
    let now = w.now;
    let name = group_name(p, "AutoScalingGroupName")?.to_owned();
    let d = p.required_int("DesiredCapacity")?;
    let _ = p.bool("HonorCooldown")?;
    let g = existing_group(w, cx.region, &name)?;
    if d > g.max {
        return Err(AwsError::validation(format!(
            "New SetDesiredCapacity value {d} is above max value {} for the AutoScalingGroup.",
            g.max
        )));
    }
    if d < g.min {
        return Err(AwsError::validation(format!(
            "New SetDesiredCapacity value {d} is below min value {} for the AutoScalingGroup.",
            g.min
        )));
    }
    let old = g.desired;
    g.desired = d;
    if d != old {
        g.pending_cause = Some(desired_cause(
            now,
            "explicitly set group desired capacity",
            old,
            d,
        ));
    }
    engine::reconcile(w, cx.region, &name);
    Ok(cx.no_result())
}

fn terminate_instance(w: &mut World, cx: &Cx, p: &Params) -> R {
    let now = w.now;
    let id = p.required_len("InstanceId", 1, 19)?.to_owned();
    let decrement = p.required_bool("ShouldDecrementDesiredCapacity")?;
    let s = st(w, cx.region);
    let inst = s
        .instances
        .get(&id)
        .filter(|i| i.in_group)
        .cloned()
        .ok_or_else(|| instance_not_found(&id))?;
    let group = inst.group.clone();
    // Already on its way out: report the termination in progress.
    if matches!(
        inst.state,
        S::Terminating | S::TerminatingWait | S::TerminatingProceed
    ) {
        let act = inst
            .activity
            .as_deref()
            .and_then(|a| find_activity(w, cx.region, a));
        return Ok(activity_reply(cx, act.as_ref()));
    }
    let s = st(w, cx.region);
    let Some(g) = s.groups.get_mut(&group) else {
        return Err(instance_not_found(&id));
    };
    let counted = counts(inst.state);
    let cause = if decrement && counted {
        if g.desired <= g.min {
            return Err(min_size_violation(g.min, "Terminating instance"));
        }
        g.desired -= 1;
        user_request_cause(
            now,
            &id,
            "taken out of service",
            Some((g.desired + 1, g.desired)),
        )
    } else {
        user_request_cause(now, &id, "taken out of service", None)
    };
    let before = s.activities.len();
    if inst.state == S::TerminatingRetained {
        // A retained instance already ran its terminate hooks (§1.8).
        s.update_instance(&id, now, |i| i.state = S::TerminatingProceed);
        engine::begin_termination(w, cx.region, &id, cause, false);
    } else {
        engine::begin_termination(w, cx.region, &id, cause, true);
    }
    let desc = format!("Terminating EC2 instance: {id}");
    let acts = &st(w, cx.region).activities;
    let act = (before <= acts.len())
        .then(|| {
            acts.range(before..)
                .rev()
                .find(|a| a.description == desc)
                .cloned()
        })
        .flatten();
    engine::reconcile(w, cx.region, &group);
    Ok(activity_reply(cx, act.as_ref()))
}

// ---------------------------------------------------------------- hooks

fn put_hook(w: &mut World, cx: &Cx, p: &Params) -> R {
    let (hname, gname) = hook_and_group(p)?;
    let g = existing_group(w, cx.region, &gname)?.clone();
    let existing = g.hook(&hname);
    if existing.is_none() && g.hooks.len() >= MAX_HOOKS_PER_GROUP {
        return Err(limit_exceeded(
            "at most 50 lifecycle hooks per Auto Scaling group",
        ));
    }
    let hook = parse_hook(p, &hname, existing)?;
    // §2.1/§7.5: a synchronous test notification on every call that carries a target.
    if let Some(t) = p.get_nonempty("NotificationTargetARN")
        && matches!(target_kind(t), Some(TargetKind::Sqs | TargetKind::Sns))
    {
        let role = hook.role.clone().unwrap_or_default();
        notify::test_notification(w, cx.region, &gname, &g.arn, t, &role)?;
    }
    let gm = existing_group(w, cx.region, &gname)?;
    match gm.hooks.iter_mut().find(|h| h.name == hname) {
        Some(h) => *h = hook,
        None => gm.hooks.push(hook),
    }
    Ok(cx.empty_result())
}

fn describe_hooks(w: &mut World, cx: &Cx, p: &Params) -> R {
    let gname = group_name(p, "AutoScalingGroupName")?.to_owned();
    let names = p.list("LifecycleHookNames");
    if names.len() > 50 {
        return Err(AwsError::validation(
            "Invalid value for parameter LifecycleHookNames: at most 50 names may be given",
        ));
    }
    let g = existing_group(w, cx.region, &gname)?;
    let mut x = cx.writer();
    let hooks: Vec<&Hook> = g
        .hooks
        .iter()
        .filter(|h| names.is_empty() || names.contains(&h.name))
        .collect();
    if hooks.is_empty() {
        x.empty("LifecycleHooks");
    } else {
        x.start("LifecycleHooks");
        for h in hooks {
            x.start("member");
            x.elem("LifecycleHookName", &h.name);
            x.elem("AutoScalingGroupName", &g.name);
            x.elem("LifecycleTransition", h.transition.as_str());
            x.opt("NotificationTargetARN", h.target.as_deref());
            x.opt("RoleARN", h.role.as_deref());
            x.opt("NotificationMetadata", h.metadata.as_deref());
            x.elem("HeartbeatTimeout", h.heartbeat_secs);
            x.elem(
                "GlobalTimeout",
                lifehook_model::global_timeout_secs(h.heartbeat_secs),
            );
            x.elem("DefaultResult", h.default_result.as_str());
            x.end();
        }
        x.end();
    }
    Ok(x.finish(cx.rid))
}

fn delete_hook(w: &mut World, cx: &Cx, p: &Params) -> R {
    let (hname, gname) = hook_and_group(p)?;
    let g = existing_group(w, cx.region, &gname)?;
    // §7.14: an unknown hook is a silent success.
    g.hooks.retain(|h| h.name != hname);
    let open: Vec<(String, T)> = st(w, cx.region)
        .actions
        .values()
        .filter(|a| a.group == gname && a.hook == hname)
        .map(|a| (a.token.clone(), a.transition))
        .collect();
    // §2.6: outstanding actions complete: ABANDON for launching, CONTINUE for terminating.
    for (token, tr) in open {
        let result = match tr {
            T::Launching => LifecycleResult::Abandon,
            T::Terminating => LifecycleResult::Continue,
        };
        engine::resolve_action(w, cx.region, &token, result, Resolution::HookDeleted);
    }
    Ok(cx.empty_result())
}

/// Finds the action named by (group, hook) plus token and/or instance (§2.2, §2.3).
fn find_action(w: &mut World, cx: &Cx, p: &Params) -> Result<String, AwsError> {
    let hname = p.required("LifecycleHookName")?.to_owned();
    check_hook_name("LifecycleHookName", &hname)?;
    let graw = p.required_len("AutoScalingGroupName", 1, 1600)?;
    // The 1600-character shape also accepts a group ARN (§2.2).
    let gname = graw
        .split_once(":autoScalingGroupName/")
        .map(|(_, n)| n)
        .unwrap_or(graw)
        .to_owned();
    let token = p
        .opt_len("LifecycleActionToken", 36, 36)?
        .map(str::to_owned);
    let instance = p.opt_len("InstanceId", 1, 19)?.map(str::to_owned);
    let s = st(w, cx.region);
    match (token, instance) {
        (None, None) => Err(AwsError::validation(
            "Either LifecycleActionToken or InstanceId must be specified.",
        )),
        // §2.2: match on the token; an instance that disagrees is the token error.
        (Some(t), inst) => s
            .actions
            .get(&t)
            .filter(|a| a.group == gname && a.hook == hname)
            .filter(|a| inst.as_ref().is_none_or(|i| *i == a.instance))
            .map(|a| a.token.clone())
            .ok_or_else(|| {
                AwsError::validation(format!("No active Lifecycle Action found with token {t}"))
            }),
        (None, Some(i)) => s
            .action_of(&gname, &hname, &i)
            .map(|a| a.token.clone())
            .ok_or_else(|| {
                AwsError::validation(format!(
                    "No active Lifecycle Action found with instance ID {i}"
                ))
            }),
    }
}

fn complete_action(w: &mut World, cx: &Cx, p: &Params) -> R {
    let result = p.required("LifecycleActionResult")?;
    let result = result.parse::<LifecycleResult>().map_err(|_| {
        AwsError::validation(format!(
            "Invalid value for parameter LifecycleActionResult: {result:?} (valid values: CONTINUE, ABANDON)"
        ))
    })?;
    let token = find_action(w, cx, p)?;
    engine::resolve_action(w, cx.region, &token, result, Resolution::Explicit);
    Ok(cx.empty_result())
}

fn record_heartbeat(w: &mut World, cx: &Cx, p: &Params) -> R {
    let token = find_action(w, cx, p)?;
    engine::heartbeat(w, cx.region, &token);
    Ok(cx.empty_result())
}

// ---------------------------------------------------------------- activities

fn describe_activities(w: &mut World, cx: &Cx, p: &Params) -> R {
    let ids = p.list("ActivityIds");
    let group = p
        .opt_len("AutoScalingGroupName", 1, 255)?
        .map(str::to_owned);
    let include_deleted = p.bool("IncludeDeletedGroups")?.unwrap_or(false);
    let s = st(w, cx.region);
    let mut acts: Vec<Activity> = s
        .activities
        .iter()
        .filter(|a| ids.is_empty() || ids.contains(&a.id))
        .filter(|a| group.as_ref().is_none_or(|g| *g == a.group))
        .filter(|a| include_deleted || !a.group_deleted)
        .cloned()
        .collect();
    // Newest first (§4.5).
    acts.sort_by(|a, b| b.start.cmp(&a.start).then(b.seq.cmp(&a.seq)));
    let (page, next) = paginate(&acts, p, 100, 100)?;
    let mut x = cx.writer();
    write_activities(&mut x, "Activities", &page);
    x.opt("NextToken", next);
    Ok(x.finish(cx.rid))
}

// ---------------------------------------------------------------- standby, attach, detach

fn enter_standby(w: &mut World, cx: &Cx, p: &Params) -> R {
    let (gname, ids) = group_and_ids(p)?;
    let decrement = p.required_bool("ShouldDecrementDesiredCapacity")?;
    let (g, insts) = group_members(
        w,
        cx.region,
        &gname,
        &ids,
        |x| x == S::InService,
        "InService",
    )?;
    let n = insts.len() as i64;
    if decrement && g.desired - n < g.min {
        return Err(min_size_violation(g.min, "Moving instances to standby"));
    }
    let mut acts = Vec::new();
    let mut cap = g.desired;
    for i in &insts {
        // §1.4: no hooks; EnteringStandby is passed through at once.
        let now = w.now;
        st(w, cx.region).update_instance(&i.id, now, |x| x.state = S::Standby);
        // §1.4: standby deregisters from the target groups (draining is not waited out).
        crate::elbv2::asg::deregister_group_instance(w, cx.region, &gname, &i.id);
        let change = take_one(&mut cap, decrement);
        acts.push(user_move_activity(
            w,
            cx.region,
            &gname,
            i,
            &TO_STANDBY,
            change,
        ));
    }
    activities_reply(w, cx, &gname, &acts)
}

fn exit_standby(w: &mut World, cx: &Cx, p: &Params) -> R {
    let (gname, ids) = group_and_ids(p)?;
    let (g, insts) = group_members(w, cx.region, &gname, &ids, |x| x == S::Standby, "Standby")?;
    let n = insts.len() as i64;
    if g.desired + n > g.max {
        return Err(max_size_violation("Exiting standby", g.desired + n, g.max));
    }
    let mut acts = Vec::new();
    let mut cap = g.desired;
    for i in &insts {
        cap += 1;
        // §1.4: Standby → Pending → InService, no hooks.
        let now = w.now;
        st(w, cx.region).update_instance(&i.id, now, |x| x.state = S::InService);
        crate::elbv2::asg::register_group_instance(w, cx.region, &gname, &i.id);
        let change = Some((cap - 1, cap));
        acts.push(user_move_activity(
            w,
            cx.region,
            &gname,
            i,
            &OUT_OF_STANDBY,
            change,
        ));
    }
    activities_reply(w, cx, &gname, &acts)
}

fn detach_instances(w: &mut World, cx: &Cx, p: &Params) -> R {
    let now = w.now;
    let (gname, ids) = group_and_ids(p)?;
    let decrement = p.required_bool("ShouldDecrementDesiredCapacity")?;
    let (g, insts) = group_members(
        w,
        cx.region,
        &gname,
        &ids,
        |x| matches!(x, S::InService | S::Standby),
        "InService or Standby",
    )?;
    let n_counted = insts.iter().filter(|i| counts(i.state)).count() as i64;
    if decrement && g.desired - n_counted < g.min {
        return Err(min_size_violation(g.min, "Detaching instance(s)"));
    }
    let mut acts = Vec::new();
    let mut cap = g.desired;
    for i in &insts {
        let was_counted = counts(i.state);
        // §1.5: deregistered from the target groups (draining is not waited out).
        crate::elbv2::asg::deregister_group_instance(w, cx.region, &gname, &i.id);
        // §1.5: Detaching → Detached, no hooks.
        st(w, cx.region).update_instance(&i.id, now, |x| {
            x.state = S::Detached;
            x.in_group = false;
            x.ended_at = Some(now);
        });
        // EC2 must not take the instance for terminated once the engine forgets it.
        crate::ec2::sync_instance(w, cx.region, &i.id);
        let change = take_one(&mut cap, decrement && was_counted);
        acts.push(user_move_activity(w, cx.region, &gname, i, &DETACH, change));
    }
    activities_reply(w, cx, &gname, &acts)
}

fn attach_instances(w: &mut World, cx: &Cx, p: &Params) -> R {
    let now = w.now;
    let (gname, ids) = group_and_ids(p)?;
    let g = existing_group(w, cx.region, &gname)?.clone();
    let mut unique: Vec<String> = Vec::new();
    for id in ids {
        if !unique.contains(&id) {
            unique.push(id);
        }
    }
    let s = st(w, cx.region);
    for id in &unique {
        if let Some(i) = s.instances.get(id) {
            if i.in_group {
                return Err(AwsError::validation(format!(
                    "The instance {id} is already part of Auto Scaling group {}.",
                    i.group
                )));
            }
            if i.state == S::Terminated {
                return Err(AwsError::validation(format!(
                    "Instance {id} is not in a running state."
                )));
            }
        }
    }
    let n = unique.len() as i64;
    if g.desired + n > g.max {
        return Err(max_size_violation(
            &format!("Attaching {n} instance(s)"),
            g.desired + n,
            g.max,
        ));
    }
    let mut cap = g.desired;
    for id in &unique {
        // The sandbox does not know every EC2 instance: unknown ids are created (§1.5).
        let s = st(w, cx.region);
        let placement = engine::pick_az(s, &g, cx.region);
        let seq = s.next_seq();
        // §1.5: Pending → InService, no hooks.
        let inst =
            Instance::new_member(&g, &gname, id.clone(), placement, S::InService, (now, seq));
        s.insert_instance(inst.clone());
        cap += 1;
        if let Some(gm) = s.groups.get_mut(&gname) {
            gm.desired = cap;
        }
        let cause = format!(
            "At {} an instance was added to the group in response to a user request (AttachInstances), increasing the capacity from {} to {}.",
            iso_secs(now),
            cap - 1,
            cap
        );
        instant_activity(
            w,
            cx.region,
            &gname,
            format!("Attaching an existing EC2 instance: {id}"),
            cause,
            "InProgress",
            50,
            &inst,
        );
        // §1.5: attached instances are registered with the target groups.
        crate::elbv2::asg::register_group_instance(w, cx.region, &gname, id);
    }
    engine::reconcile(w, cx.region, &gname);
    Ok(cx.no_result())
}

fn set_protection(w: &mut World, cx: &Cx, p: &Params) -> R {
    let ids = p.list("InstanceIds");
    if ids.is_empty() && p.get("InstanceIds").is_none() {
        return Err(AwsError::missing("InstanceIds"));
    }
    if ids.len() > 50 {
        return Err(limit_exceeded(
            "SetInstanceProtection accepts at most 50 instance IDs",
        ));
    }
    let gname = group_name(p, "AutoScalingGroupName")?.to_owned();
    let protect = p.required_bool("ProtectedFromScaleIn")?;
    existing_group(w, cx.region, &gname)?;
    let s = st(w, cx.region);
    for id in &ids {
        member(s, &gname, id)?;
    }
    for id in &ids {
        if let Some(i) = s.instances.get_mut(id) {
            i.protected = protect;
        }
    }
    // Unprotected instances may now be scaled in if the group is above desired.
    engine::reconcile(w, cx.region, &gname);
    Ok(cx.empty_result())
}

fn set_health(w: &mut World, cx: &Cx, p: &Params) -> R {
    let now = w.now;
    let id = p.required_len("InstanceId", 1, 19)?.to_owned();
    let status = p.required_len("HealthStatus", 1, 32)?;
    let healthy = match status {
        "Healthy" => true,
        "Unhealthy" => false,
        other => {
            return Err(AwsError::validation(format!(
                "Invalid value for parameter HealthStatus: {other:?} (valid values: Healthy, Unhealthy)"
            )));
        }
    };
    let _ = p.bool("ShouldRespectGracePeriod")?;
    let s = st(w, cx.region);
    let inst = s
        .instances
        .get_mut(&id)
        .filter(|i| i.in_group)
        .ok_or_else(|| instance_not_found(&id))?;
    // §1.4: health is frozen in standby.
    if inst.state == S::Standby {
        return Ok(cx.no_result());
    }
    inst.healthy = healthy;
    let replace = !healthy && inst.state == S::InService;
    let group = inst.group.clone();
    if replace {
        // §1.3: an unhealthy instance is an ordinary termination (hooks run) and is replaced.
        let cause = format!(
            "At {} an instance was taken out of service in response to a user health-check.",
            iso_secs(now)
        );
        engine::begin_termination(w, cx.region, &id, cause, true);
        engine::reconcile(w, cx.region, &group);
    }
    Ok(cx.no_result())
}

// ---------------------------------------------------------------- tags

fn create_tags(w: &mut World, cx: &Cx, p: &Params) -> R {
    let tags = parse_tags(p, None)?;
    if tags.is_empty() {
        return Err(AwsError::missing("Tags"));
    }
    let s = st(w, cx.region);
    // Validate everything first: the call applies all tags or none.
    let mut staged: std::collections::BTreeMap<String, Vec<Tag>> = Default::default();
    for (res, t) in &tags {
        let g = s.groups.get(res).ok_or_else(|| tags_group_not_found(res))?;
        let e = staged.entry(res.clone()).or_insert_with(|| g.tags.clone());
        upsert_tag(e, t.clone());
        if e.len() > MAX_TAGS_PER_GROUP {
            return Err(limit_exceeded("at most 50 tags per Auto Scaling group"));
        }
    }
    for (res, t) in staged {
        if let Some(g) = s.groups.get_mut(&res) {
            g.tags = t;
        }
    }
    Ok(cx.no_result())
}

fn delete_tags(w: &mut World, cx: &Cx, p: &Params) -> R {
    let tags = parse_tags(p, None)?;
    if tags.is_empty() {
        return Err(AwsError::missing("Tags"));
    }
    let s = st(w, cx.region);
    for (res, _) in &tags {
        if !s.groups.contains_key(res) {
            return Err(tags_group_not_found(res));
        }
    }
    for (res, t) in tags {
        if let Some(g) = s.groups.get_mut(&res) {
            g.tags.retain(|x| x.key != t.key);
        }
    }
    Ok(cx.no_result())
}

fn describe_tags(w: &mut World, cx: &Cx, p: &Params) -> R {
    let mut fs: Vec<(String, Vec<String>)> = Vec::new();
    for f in p.struct_list("Filters") {
        let n = f.get("Name").unwrap_or("").to_owned();
        if !["auto-scaling-group", "key", "value", "propagate-at-launch"].contains(&n.as_str()) {
            return Err(AwsError::validation(format!(
                "Invalid value for parameter Filters: unknown filter name {n:?} (valid: auto-scaling-group, key, value, propagate-at-launch)"
            )));
        }
        let vals = f.list("Values");
        if vals.len() > 1000 {
            return Err(AwsError::validation(
                "Invalid value for parameter Filters: at most 1000 values per filter",
            ));
        }
        fs.push((n, vals));
    }
    let s = st(w, cx.region);
    let all: Vec<(String, Tag)> = s
        .groups
        .values()
        .flat_map(|g| g.tags.iter().map(move |t| (g.name.clone(), t.clone())))
        .filter(|(g, t)| {
            fs.iter().all(|(n, vals)| match n.as_str() {
                "auto-scaling-group" => vals.contains(g),
                "key" => vals.contains(&t.key),
                "value" => vals.contains(&t.value),
                _ => vals
                    .iter()
                    .any(|v| v.eq_ignore_ascii_case(&t.propagate.to_string())),
            })
        })
        .collect();
    let (page, next) = paginate(&all, p, 50, 100)?;
    let mut x = cx.writer();
    if page.is_empty() {
        x.empty("Tags");
    } else {
        x.start("Tags");
        for (g, t) in &page {
            write_tag(&mut x, g, t);
        }
        x.end();
    }
    x.opt("NextToken", next);
    Ok(x.finish(cx.rid))
}

// ---------------------------------------------------------------- instance refresh

fn start_refresh(w: &mut World, cx: &Cx, p: &Params) -> R {
    let now = w.now;
    let gname = group_name(p, "AutoScalingGroupName")?.to_owned();
    existing_group(w, cx.region, &gname)?;
    match p.get("Strategy").unwrap_or("Rolling") {
        "Rolling" => {}
        "ReplaceRootVolume" => {
            // §1.9: out of scope.
            return Err(AwsError::validation(
                "Strategy ReplaceRootVolume is not supported by the lifehook sandbox; use Rolling.",
            ));
        }
        other => {
            return Err(AwsError::validation(format!(
                "Invalid value for parameter Strategy: {other:?} (valid values: Rolling, ReplaceRootVolume)"
            )));
        }
    }
    let prefs = p.sub("Preferences");
    let min_healthy = int_in(&prefs, "MinHealthyPercentage", 0, 100)?.unwrap_or(90);
    let max_healthy = int_in(&prefs, "MaxHealthyPercentage", 100, 200)?.unwrap_or(100);
    let warmup = int_in(&prefs, "InstanceWarmup", 0, i64::from(i32::MAX))?;
    let _ = int_in(&prefs, "CheckpointDelay", 0, 172_800)?;
    let _ = int_in(&prefs, "BakeTime", 0, 172_800)?;
    let skip_matching = prefs.bool("SkipMatching")?.unwrap_or(false);
    let _ = prefs.bool("AutoRollback")?;
    let sip = one_of(
        &prefs,
        "ScaleInProtectedInstances",
        &["Refresh", "Ignore", "Wait"],
    )?
    .unwrap_or("Wait")
    .to_owned();
    let sb = one_of(&prefs, "StandbyInstances", &["Terminate", "Ignore", "Wait"])?
        .unwrap_or("Wait")
        .to_owned();
    let desired_config = parse_lt(p, "DesiredConfiguration.LaunchTemplate")?;
    let s = st(w, cx.region);
    if s.active_refresh(&gname).is_some() {
        return Err(AwsError::new(
            400,
            "InstanceRefreshInProgress",
            format!(
                "An Instance Refresh is already in progress and blocks the execution of this Instance Refresh for Auto Scaling group {gname}."
            ),
        ));
    }
    // The desired configuration applies to every instance launched from now on.
    if let (Some(lt), Some(g)) = (&desired_config, s.groups.get_mut(&gname)) {
        g.launch_template = Some(lt.clone());
        g.launch_config = None;
        if let Some(m) = g.mixed.as_mut() {
            m.launch_template = lt.clone();
            g.launch_template = None;
        }
    }
    // Protected instances are replaced only with ScaleInProtectedInstances=Refresh; standby
    // instances are left alone (the sandbox treats Wait like Ignore for both).
    let remaining: Vec<String> = s
        .members(&gname)
        .filter(|i| counts(i.state))
        .filter(|i| !i.protected || sip == "Refresh")
        .filter(|i| {
            !(skip_matching
                && desired_config
                    .as_ref()
                    .is_some_and(|d| i.launch_template.as_ref() == Some(d)))
        })
        .map(|i| i.id.clone())
        .collect();
    let id = ids::uuid();
    s.refreshes.push(Refresh {
        id: id.clone(),
        group: gname.clone(),
        status: "Pending",
        reason: None,
        start: now,
        end: None,
        min_healthy,
        max_healthy,
        warmup,
        skip_matching,
        scale_in_protected: sip,
        standby: sb,
        desired_config,
        total: remaining.len(),
        remaining,
        in_flight: Vec::new(),
    });
    engine::refresh_step(w, cx.region, &gname);
    let mut x = cx.writer();
    x.elem("InstanceRefreshId", &id);
    Ok(x.finish(cx.rid))
}

fn describe_refreshes(w: &mut World, cx: &Cx, p: &Params) -> R {
    let gname = group_name(p, "AutoScalingGroupName")?.to_owned();
    let ids = p.list("InstanceRefreshIds");
    let s = st(w, cx.region);
    let mut rs: Vec<Refresh> = s
        .refreshes
        .iter()
        .filter(|r| r.group == gname && (ids.is_empty() || ids.contains(&r.id)))
        .cloned()
        .collect();
    rs.reverse();
    let (page, next) = paginate(&rs, p, 50, 100)?;
    let mut x = cx.writer();
    if page.is_empty() {
        x.empty("InstanceRefreshes");
    } else {
        x.start("InstanceRefreshes");
        for r in &page {
            let to_update = (r.remaining.len() + r.in_flight.len()) as i64;
            x.start("member");
            x.elem("InstanceRefreshId", &r.id);
            x.elem("AutoScalingGroupName", &r.group);
            x.elem("Status", r.status);
            x.opt("StatusReason", r.reason.as_deref());
            x.elem("StartTime", iso_millis(r.start));
            x.opt("EndTime", r.end.map(iso_millis));
            x.elem("PercentageComplete", r.percentage());
            x.elem("InstancesToUpdate", to_update);
            x.start("ProgressDetails").start("LivePoolProgress");
            x.elem("PercentageComplete", r.percentage());
            x.elem("InstancesToUpdate", to_update);
            x.end().end();
            x.start("Preferences");
            x.elem("MinHealthyPercentage", r.min_healthy);
            x.opt("InstanceWarmup", r.warmup);
            x.elem("SkipMatching", r.skip_matching);
            x.elem("ScaleInProtectedInstances", &r.scale_in_protected);
            x.elem("StandbyInstances", &r.standby);
            x.elem("MaxHealthyPercentage", r.max_healthy);
            x.end();
            if let Some(lt) = &r.desired_config {
                x.start("DesiredConfiguration");
                write_lt(&mut x, "LaunchTemplate", lt);
                x.end();
            }
            x.elem("Strategy", "Rolling");
            x.end();
        }
        x.end();
    }
    x.opt("NextToken", next);
    Ok(x.finish(cx.rid))
}

fn cancel_refresh(w: &mut World, cx: &Cx, p: &Params) -> R {
    let gname = group_name(p, "AutoScalingGroupName")?.to_owned();
    let _ = p.bool("WaitForTransitioningInstances")?;
    existing_group(w, cx.region, &gname)?;
    let s = st(w, cx.region);
    let Some(r) = s
        .refreshes
        .iter_mut()
        .rev()
        .find(|r| r.group == gname && r.is_active())
    else {
        return Err(AwsError::new(
            400,
            "ActiveInstanceRefreshNotFound",
            format!(
                "No in progress or pending Instance Refresh found for Auto Scaling group {gname}"
            ),
        ));
    };
    r.status = "Cancelling";
    r.remaining.clear();
    let id = r.id.clone();
    engine::refresh_step(w, cx.region, &gname);
    let mut x = cx.writer();
    x.elem("InstanceRefreshId", &id);
    Ok(x.finish(cx.rid))
}
