//! `target-groups`: the action's instance in its ELBv2 target groups.
//!
//! The target groups are `target_group_arns` from the configuration, or else the group's
//! `TargetGroupARNs` (DescribeAutoScalingGroups). Each look at a target group is one
//! DescribeTargetHealth of the whole group, filtered on the instance, so that every port
//! the instance is registered on is seen (and it works the same whether or not a load
//! balancer uses the group).
//!
//! **Launch** (spec §2.7: the group registers an instance only after `Pending:Proceed`,
//! so a launch hook that must hold the instance until it is healthy registers it itself):
//! RegisterTargets in every target group (with `port`, else the target group's port), then
//! every `interval` until the instance is `healthy` in all of them. `unavailable`
//! (`Target.HealthCheckDisabled`) counts as ready: nothing checks it. `unused` with
//! `Target.NotInUse` (no load balancer uses the target group) also counts as ready, with a
//! warning. A registration that disappeared (`Target.NotRegistered`, `draining`) is made
//! again. Registering a registered target changes nothing, so the group's own
//! registration afterwards is a no-op and a second attempt is harmless.
//!
//! **Termination**: DeregisterTargets for every registration of the instance not yet
//! draining, then every `interval` until no target group lists it any more (draining is
//! over: the deregistration delay has passed). Deregistering again is harmless. When the
//! group already deregistered the instance before `Terminating:Wait` (what Auto Scaling
//! does for its own target groups, spec §1.2 note 2), the step finds it gone at once.
//!
//! Time runs out → a timeout failure that names each target group and the instance's
//! state and reason in it.
//!
//! Calls: `autoscaling:DescribeAutoScalingGroups` (without `target_group_arns`),
//! `elasticloadbalancing:DescribeTargetHealth`, `elasticloadbalancing:RegisterTargets`
//! (launch), `elasticloadbalancing:DeregisterTargets` (termination).

use aws_sdk_autoscaling::Client as AsgClient;
use aws_sdk_elasticloadbalancingv2::Client as ElbClient;
use aws_sdk_elasticloadbalancingv2::types::TargetDescription;
use lifehook_core::config::{TargetGroupsStep, format_duration};
use lifehook_core::step::{Failure, Success};
use lifehook_model::LifecycleTransition;

use super::{Cx, done};

/// One registration of the instance in one target group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub port: Option<i32>,
    pub state: String,
    pub reason: String,
}

/// What one look at one target group says, for a launch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LaunchLook {
    Ready,
    /// Ready, but no load balancer sends it traffic.
    NotInUse,
    /// Not registered (any more): register again, then wait.
    Register,
    /// Registered, not healthy yet: the state and reason to report.
    Wait(String),
}

/// A launch's view of the instance's registrations in one target group.
pub fn launch_look(regs: &[Registration]) -> LaunchLook {
    let live: Vec<&Registration> = regs
        .iter()
        .filter(|r| !(r.state == "draining" || r.reason == "Target.NotRegistered"))
        .collect();
    if live.is_empty() {
        return LaunchLook::Register;
    }
    if live
        .iter()
        .all(|r| r.state == "healthy" || r.reason == "Target.HealthCheckDisabled")
    {
        return LaunchLook::Ready;
    }
    if live.iter().all(|r| r.reason == "Target.NotInUse") {
        return LaunchLook::NotInUse;
    }
    LaunchLook::Wait(describe(&live))
}

fn describe(regs: &[&Registration]) -> String {
    regs.iter()
        .map(|r| {
            let port = r.port.map(|p| format!(" port {p}")).unwrap_or_default();
            if r.reason.is_empty() {
                format!("{}{port}", r.state)
            } else {
                format!("{} ({}){port}", r.state, r.reason)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) async fn run(
    elb: &ElbClient,
    asg: &AsgClient,
    cx: &Cx<'_>,
    s: &TargetGroupsStep,
) -> Result<Success, Failure> {
    let event = cx.env.template.event;
    let instance = event.instance_id.clone();
    let arns = if s.target_group_arns.is_empty() {
        group_target_groups(asg, cx, &event.group).await?
    } else {
        s.target_group_arns.clone()
    };
    if arns.is_empty() {
        return Ok(done(format!(
            "the group {} has no target groups and none are configured: nothing to do for {instance}",
            event.group
        )));
    }
    match event.transition {
        LifecycleTransition::Launching => launch(elb, cx, s, &arns, &instance).await,
        LifecycleTransition::Terminating => terminate(elb, cx, s, &arns, &instance).await,
    }
}

async fn launch(
    elb: &ElbClient,
    cx: &Cx<'_>,
    s: &TargetGroupsStep,
    arns: &[String],
    instance: &str,
) -> Result<Success, Failure> {
    let started = tokio::time::Instant::now();
    for arn in arns {
        register(elb, cx, arn, instance, s.port).await?;
    }
    loop {
        let mut waiting = Vec::new();
        let mut not_in_use = Vec::new();
        for arn in arns {
            let Some(regs) = look(elb, cx, arn, instance, &mut waiting).await? else {
                continue;
            };
            match launch_look(&regs) {
                LaunchLook::Ready => {}
                LaunchLook::NotInUse => not_in_use.push(arn.clone()),
                LaunchLook::Register => {
                    register(elb, cx, arn, instance, s.port).await?;
                    waiting.push(format!("{arn}: registering again"));
                }
                LaunchLook::Wait(what) => waiting.push(format!("{arn}: {what}")),
            }
        }
        if waiting.is_empty() {
            for arn in &not_in_use {
                tracing::warn!(step = %cx.step.name, instance = %instance, target_group = %arn, "registered, but no load balancer uses the target group (Target.NotInUse): not waiting for health");
            }
            return Ok(done(format!(
                "{instance} is registered and healthy in {} target group(s) after {}",
                arns.len(),
                format_duration(started.elapsed())
            )));
        }
        look_again(
            cx,
            s,
            started,
            &waiting,
            "is not healthy in every target group",
        )
        .await?;
    }
}

async fn terminate(
    elb: &ElbClient,
    cx: &Cx<'_>,
    s: &TargetGroupsStep,
    arns: &[String],
    instance: &str,
) -> Result<Success, Failure> {
    let started = tokio::time::Instant::now();
    let mut deregistered = 0usize;
    loop {
        let mut draining = Vec::new();
        for arn in arns {
            let Some(regs) = look(elb, cx, arn, instance, &mut draining).await? else {
                continue;
            };
            let live: Vec<Option<i32>> = regs
                .iter()
                .filter(|r| r.state != "draining" && r.reason != "Target.NotRegistered")
                .map(|r| r.port)
                .collect();
            if !live.is_empty() {
                deregister(elb, cx, arn, instance, &live).await?;
                deregistered += 1;
                draining.push(format!("{arn}: deregistering"));
            } else if regs.iter().any(|r| r.state == "draining") {
                draining.push(format!("{arn}: draining"));
            }
        }
        if draining.is_empty() {
            return Ok(done(format!(
                "{instance} is out of {} target group(s) ({deregistered} deregistration(s) by this step); draining over after {}",
                arns.len(),
                format_duration(started.elapsed())
            )));
        }
        look_again(cx, s, started, &draining, "is still draining").await?;
    }
}

/// Between two looks: waits the step's interval, or — when the step's time is up — fails
/// with what `pending` says the instance is still waiting for (`not_yet` says it).
async fn look_again(
    cx: &Cx<'_>,
    s: &TargetGroupsStep,
    started: tokio::time::Instant,
    pending: &[String],
    not_yet: &str,
) -> Result<(), Failure> {
    let instance = cx.instance_id();
    let pending = pending.join("; ");
    tracing::debug!(step = %cx.step.name, instance = %instance, pending = %pending, "{not_yet}; looking again");
    if cx.pause(s.interval).await {
        return Ok(());
    }
    Err(cx.timeout(format!(
        "{instance} {not_yet} after {}: {pending}",
        format_duration(started.elapsed())
    )))
}

/// The group's `TargetGroupARNs`; none when the group is gone.
async fn group_target_groups(
    asg: &AsgClient,
    cx: &Cx<'_>,
    group: &str,
) -> Result<Vec<String>, Failure> {
    let out = asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(group)
        .include_instances(false)
        .send()
        .await
        .map_err(|e| cx.api(&format!("DescribeAutoScalingGroups {group}"), &e))?;
    Ok(out
        .auto_scaling_groups()
        .iter()
        .find(|g| g.auto_scaling_group_name() == Some(group))
        .map(|g| g.target_group_arns().to_vec())
        .unwrap_or_default())
}

/// [`registrations`], with a retryable failure (throttling, 5xx) noted in `pending` and
/// looked at again next time instead of failing the attempt.
async fn look(
    elb: &ElbClient,
    cx: &Cx<'_>,
    arn: &str,
    instance: &str,
    pending: &mut Vec<String>,
) -> Result<Option<Vec<Registration>>, Failure> {
    match registrations(elb, cx, arn, instance).await {
        Ok(r) => Ok(Some(r)),
        Err(f) if f.retryable => {
            cx.setback("looking at the target group", &f.message);
            pending.push(format!("{arn}: {}", f.message));
            Ok(None)
        }
        Err(f) => Err(f),
    }
}

/// Every registration of `instance` in the target group (all its targets, filtered).
async fn registrations(
    elb: &ElbClient,
    cx: &Cx<'_>,
    arn: &str,
    instance: &str,
) -> Result<Vec<Registration>, Failure> {
    let out = elb
        .describe_target_health()
        .target_group_arn(arn)
        .send()
        .await
        .map_err(|e| cx.api(&format!("DescribeTargetHealth {arn}"), &e))?;
    Ok(out
        .target_health_descriptions()
        .iter()
        .filter(|d| d.target().and_then(|t| t.id()) == Some(instance))
        .map(|d| {
            let h = d.target_health();
            Registration {
                port: d.target().and_then(|t| t.port()),
                state: h
                    .and_then(|h| h.state())
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
                reason: h
                    .and_then(|h| h.reason())
                    .map(|r| r.as_str().to_owned())
                    .unwrap_or_default(),
            }
        })
        .collect())
}

async fn register(
    elb: &ElbClient,
    cx: &Cx<'_>,
    arn: &str,
    instance: &str,
    port: Option<u16>,
) -> Result<(), Failure> {
    elb.register_targets()
        .target_group_arn(arn)
        .targets(
            TargetDescription::builder()
                .id(instance)
                .set_port(port.map(i32::from))
                .build(),
        )
        .send()
        .await
        .map_err(|e| cx.api(&format!("RegisterTargets {instance} in {arn}"), &e))?;
    tracing::info!(step = %cx.step.name, instance = %instance, target_group = %arn, "registered");
    Ok(())
}

async fn deregister(
    elb: &ElbClient,
    cx: &Cx<'_>,
    arn: &str,
    instance: &str,
    ports: &[Option<i32>],
) -> Result<(), Failure> {
    let targets = ports
        .iter()
        .map(|p| {
            TargetDescription::builder()
                .id(instance)
                .set_port(*p)
                .build()
        })
        .collect();
    elb.deregister_targets()
        .target_group_arn(arn)
        .set_targets(Some(targets))
        .send()
        .await
        .map_err(|e| cx.api(&format!("DeregisterTargets {instance} from {arn}"), &e))?;
    tracing::info!(step = %cx.step.name, instance = %instance, target_group = %arn, "deregistered; draining");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(state: &str, reason: &str) -> Registration {
        Registration {
            port: Some(80),
            state: state.into(),
            reason: reason.into(),
        }
    }

    #[test]
    fn launch_looks() {
        assert_eq!(launch_look(&[]), LaunchLook::Register);
        assert_eq!(
            launch_look(&[reg("draining", "Target.DeregistrationInProgress")]),
            LaunchLook::Register
        );
        assert_eq!(
            launch_look(&[reg("unused", "Target.NotRegistered")]),
            LaunchLook::Register
        );
        assert_eq!(launch_look(&[reg("healthy", "")]), LaunchLook::Ready);
        assert_eq!(
            launch_look(&[reg("unavailable", "Target.HealthCheckDisabled")]),
            LaunchLook::Ready
        );
        assert_eq!(
            launch_look(&[reg("unused", "Target.NotInUse")]),
            LaunchLook::NotInUse
        );
        assert_eq!(
            launch_look(&[
                reg("healthy", ""),
                reg("initial", "Elb.RegistrationInProgress")
            ]),
            LaunchLook::Wait(
                "healthy port 80, initial (Elb.RegistrationInProgress) port 80".into()
            )
        );
        assert_eq!(
            launch_look(&[reg("unhealthy", "Target.FailedHealthChecks")]),
            LaunchLook::Wait("unhealthy (Target.FailedHealthChecks) port 80".into())
        );
    }
}
