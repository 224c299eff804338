//! The Auto Scaling side of target groups (spec §1.2 notes 1–2, §1.11, §2.7):
//! `AttachLoadBalancerTargetGroups`, `DetachLoadBalancerTargetGroups`,
//! `DescribeLoadBalancerTargetGroups` (Auto Scaling operations, answered in its namespace),
//! and the calls the Auto Scaling engine makes at its transitions:
//!
//! - [`register_group_instance`] as an instance enters `InService` (after `Pending:Proceed`,
//!   so after every launch hook: §1.2 note 1, §2.7 "Register after `Pending:Proceed` and
//!   before `InService`");
//! - [`deregister_group_instance`] as termination starts, in `Terminating`, before
//!   `Terminating:Wait` (§1.2 note 2, §1.11 "deregister from LB; wait deregistration
//!   delay", §2.7 "Deregister and drain before `Terminating:Wait`").

use lifehook_model::LifecycleState as S;

use super::{Health, arn_region, register};
use crate::clock::Millis;
use crate::protocol::RequestCtx;
use crate::protocol::query::check_len;
use crate::protocol::{AwsError, Params, Service, XmlWriter};
use crate::world::World;

/// At most 10 target groups per Attach/Detach call (AWS's limit).
pub(crate) const MAX_PER_CALL: usize = 10;

fn invalid_target_groups() -> AwsError {
    AwsError::validation(
        "Provided Target Groups may not be valid. Please ensure they exist and try again.",
    )
}

/// Checks that every ARN names an existing target group of `region` (Create and Attach
/// refuse unknown ones, as AWS does).
pub(crate) fn check_target_groups(
    w: &mut World,
    region: &str,
    arns: &[String],
) -> Result<(), AwsError> {
    for a in arns {
        check_len("TargetGroupARNs.member", a, 1, 511)?;
        if arn_region(a) != Some(region) || !w.region(region).elbv2.target_groups.contains_key(a) {
            return Err(invalid_target_groups());
        }
    }
    Ok(())
}

fn group_target_groups(w: &mut World, region: &str, group: &str) -> Vec<String> {
    w.region(region)
        .autoscaling
        .groups
        .get(group)
        .map(|g| g.target_groups.clone())
        .unwrap_or_default()
}

/// Registers `instance` with every target group of `group` (on the target group's port).
pub(crate) fn register_group_instance(w: &mut World, region: &str, group: &str, instance: &str) {
    for tg in group_target_groups(w, region, group) {
        register(w, region, &tg, instance, None);
    }
}

/// Deregisters `instance` from every target group of `group`. Returns the longest
/// deregistration delay (ms) among those it was registered with: 0 when it was registered
/// nowhere, or every delay is 0.
pub(crate) fn deregister_group_instance(
    w: &mut World,
    region: &str,
    group: &str,
    instance: &str,
) -> Millis {
    group_target_groups(w, region, group)
        .iter()
        .filter_map(|tg| super::deregister(w, region, tg, instance, None))
        .max()
        .unwrap_or(0)
}

fn ns() -> &'static str {
    Service::AutoScaling.xml_namespace()
}

fn existing_group_tgs(w: &mut World, region: &str, name: &str) -> Result<Vec<String>, AwsError> {
    w.region(region)
        .autoscaling
        .groups
        .get(name)
        .map(|g| g.target_groups.clone())
        .ok_or_else(|| {
            AwsError::validation(format!(
                "AutoScalingGroup name not found - AutoScalingGroup {name} not found"
            ))
        })
}

fn arns_param(p: &Params) -> Result<Vec<String>, AwsError> {
    let arns = p.list("TargetGroupARNs");
    if arns.is_empty() {
        return Err(AwsError::missing("TargetGroupARNs"));
    }
    if arns.len() > MAX_PER_CALL {
        return Err(AwsError::validation(format!(
            "1 validation error detected: Value at 'targetGroupARNs' failed to satisfy constraint: Member must have length less than or equal to {MAX_PER_CALL}"
        )));
    }
    Ok(arns)
}

/// Members of `group` in service (they are the ones registered with its target groups).
fn in_service(w: &mut World, region: &str, group: &str) -> Vec<String> {
    w.region(region)
        .autoscaling
        .members(group)
        .filter(|i| i.state == S::InService)
        .map(|i| i.id.clone())
        .collect()
}

/// `AttachLoadBalancerTargetGroups`: adds the target groups and registers the group's
/// `InService` instances with them.
pub(crate) fn attach(w: &mut World, ctx: &RequestCtx, p: &Params) -> Result<String, AwsError> {
    let name = p.required_len("AutoScalingGroupName", 1, 255)?.to_owned();
    let arns = arns_param(p)?;
    existing_group_tgs(w, &ctx.region, &name)?;
    check_target_groups(w, &ctx.region, &arns)?;
    let mut added = Vec::new();
    if let Some(g) = w.region(&ctx.region).autoscaling.groups.get_mut(&name) {
        for a in arns {
            if !g.target_groups.contains(&a) {
                g.target_groups.push(a.clone());
                added.push(a);
            }
        }
    }
    for i in in_service(w, &ctx.region, &name) {
        for a in &added {
            register(w, &ctx.region, a, &i, None);
        }
    }
    Ok(XmlWriter::empty_result(&ctx.op, ns(), &ctx.request_id))
}

/// `DetachLoadBalancerTargetGroups`: removes the target groups; the group's instances are
/// deregistered (and drain) from them.
pub(crate) fn detach(w: &mut World, ctx: &RequestCtx, p: &Params) -> Result<String, AwsError> {
    let name = p.required_len("AutoScalingGroupName", 1, 255)?.to_owned();
    let arns = arns_param(p)?;
    let current = existing_group_tgs(w, &ctx.region, &name)?;
    let removed: Vec<String> = current.into_iter().filter(|a| arns.contains(a)).collect();
    if let Some(g) = w.region(&ctx.region).autoscaling.groups.get_mut(&name) {
        g.target_groups.retain(|a| !arns.contains(a));
    }
    let members: Vec<String> = w
        .region(&ctx.region)
        .autoscaling
        .members(&name)
        .map(|i| i.id.clone())
        .collect();
    for i in members {
        for a in &removed {
            super::deregister(w, &ctx.region, a, &i, None);
        }
    }
    Ok(XmlWriter::empty_result(&ctx.op, ns(), &ctx.request_id))
}

/// `DescribeLoadBalancerTargetGroups`: `State` is `InService` once an instance of the
/// group is healthy in the target group, else `Added`.
pub(crate) fn describe(w: &mut World, ctx: &RequestCtx, p: &Params) -> Result<String, AwsError> {
    let name = p.required_len("AutoScalingGroupName", 1, 255)?.to_owned();
    let arns = existing_group_tgs(w, &ctx.region, &name)?;
    let max = match p.int("MaxRecords")? {
        None => 100,
        Some(n) if (1..=100).contains(&n) => n as usize,
        Some(n) => {
            return Err(AwsError::validation(format!(
                "1 validation error detected: Value '{n}' at 'maxRecords' failed to satisfy constraint: Member must have value less than or equal to 100"
            )));
        }
    };
    let start = match p.get_nonempty("NextToken") {
        None => 0,
        Some(t) => t
            .parse::<usize>()
            .ok()
            .filter(|&n| n <= arns.len())
            .ok_or_else(|| {
                AwsError::new(400, "InvalidNextToken", "The NextToken value is not valid.")
            })?,
    };
    let end = start.saturating_add(max).min(arns.len());
    let members = in_service(w, &ctx.region, &name);
    let elb = &w.region(&ctx.region).elbv2;
    let mut x = XmlWriter::response(&ctx.op, ns(), true);
    if start == end {
        x.empty("LoadBalancerTargetGroups");
    } else {
        x.start("LoadBalancerTargetGroups");
        for a in arns.get(start..end).unwrap_or_default() {
            let healthy = elb.target_groups.get(a).is_some_and(|tg| {
                tg.targets
                    .iter()
                    .any(|((id, _), t)| t.health == Health::Healthy && members.contains(id))
            });
            x.start("member")
                .elem("LoadBalancerTargetGroupARN", a)
                .elem("State", if healthy { "InService" } else { "Added" })
                .end();
        }
        x.end();
    }
    if end < arns.len() {
        x.elem("NextToken", end);
    }
    Ok(x.finish(&ctx.request_id))
}
