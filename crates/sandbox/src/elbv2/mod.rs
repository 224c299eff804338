//! Elastic Load Balancing v2 target groups in the sandbox (AWS Query, `Version=2015-12-01`,
//! signing name `elasticloadbalancing`), to the depth lifecycle steps that register
//! instances and wait on their health need. There are no load balancers: every target
//! group behaves as if a load balancer sent it traffic.
//!
//! Target health moves on virtual time:
//! - `RegisterTargets` → `initial` (`Elb.RegistrationInProgress`) → `healthy` after
//!   `HealthyThresholdCount × HealthCheckIntervalSeconds` (defaults 5 × 30 s = 150 s);
//!   with `HealthCheckEnabled=false` a target is `unavailable` (`Target.HealthCheckDisabled`).
//! - `DeregisterTargets` → `draining` (`Target.DeregistrationInProgress`) → gone (then
//!   `unused`, `Target.NotRegistered`) after the `deregistration_delay.timeout_seconds`
//!   attribute (default 300 s).
//! - The control API (`POST /_sandbox/elbv2/target-health`) holds a target `unhealthy`
//!   (`Target.FailedHealthChecks`) until it is set `healthy` again.
//!
//! [`asg`] is the Auto Scaling side (spec §2.7): groups' target groups, and the calls the
//! Auto Scaling engine makes as instances enter `InService` and start terminating.
//!
//! Layout: this file holds target groups, targets and their timers; `ops.rs` the ELBv2
//! operations and `handle`; `control.rs` the `/_sandbox/elbv2/…` routes and the state JSON.

pub(crate) mod asg;
mod control;
mod ops;
#[cfg(test)]
mod tests;

pub(crate) use control::{control, state_json};
pub(crate) use ops::dispatch;

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::clock::Millis;
use crate::protocol::RequestCtx;
use crate::protocol::query::check_len;
use crate::protocol::{AwsError, Params, Service, XmlWriter};
use crate::world::{Timer as WorldTimer, World};
use crate::{ACCOUNT_ID, Sandbox};

/// Default `HealthCheckIntervalSeconds`.
pub(crate) const DEFAULT_INTERVAL_SECS: i64 = 30;
/// Default `HealthyThresholdCount`: a new target is healthy after 5 × 30 s = 150 s.
pub(crate) const DEFAULT_HEALTHY_THRESHOLD: i64 = 5;
/// Default `UnhealthyThresholdCount`.
pub(crate) const DEFAULT_UNHEALTHY_THRESHOLD: i64 = 2;
/// Default `deregistration_delay.timeout_seconds`.
pub(crate) const DEFAULT_DEREGISTRATION_DELAY_SECS: i64 = 300;
/// The most targets one target group holds in the sandbox (AWS: 1000 per ALB).
pub(crate) const MAX_TARGETS: usize = 1000;
/// The largest `PageSize` of DescribeTargetGroups.
const MAX_PAGE_SIZE: i64 = 400;

const PROTOCOLS: &[&str] = &["HTTP", "HTTPS", "TCP", "TLS", "UDP", "TCP_UDP", "GENEVE"];
const DEREGISTRATION_DELAY: &str = "deregistration_delay.timeout_seconds";

/// ELBv2 state of one region.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// By ARN.
    pub(crate) target_groups: BTreeMap<String, TargetGroup>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HealthCheck {
    pub(crate) enabled: bool,
    pub(crate) protocol: String,
    /// A port number or `traffic-port`.
    pub(crate) port: String,
    pub(crate) path: Option<String>,
    pub(crate) interval_secs: i64,
    pub(crate) timeout_secs: i64,
    pub(crate) healthy_threshold: i64,
    pub(crate) unhealthy_threshold: i64,
    pub(crate) matcher: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct TargetGroup {
    pub(crate) arn: String,
    pub(crate) name: String,
    pub(crate) protocol: String,
    pub(crate) protocol_version: Option<String>,
    pub(crate) port: i64,
    pub(crate) vpc_id: String,
    pub(crate) target_type: String,
    pub(crate) health_check: HealthCheck,
    pub(crate) attributes: BTreeMap<String, String>,
    /// Registered (and draining) targets by (instance id, port).
    pub(crate) targets: BTreeMap<(String, i64), Target>,
    /// Instances the control API holds unhealthy: (Reason, Description).
    pub(crate) forced_unhealthy: BTreeMap<String, (String, String)>,
}

impl TargetGroup {
    /// The deregistration delay in ms.
    pub(crate) fn deregistration_delay_ms(&self) -> Millis {
        self.attributes
            .get(DEREGISTRATION_DELAY)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(DEFAULT_DEREGISTRATION_DELAY_SECS as u64)
            .saturating_mul(1000)
    }

    /// How long a new target stays `initial`, in ms.
    pub(crate) fn time_to_healthy_ms(&self) -> Millis {
        (self.health_check.healthy_threshold * self.health_check.interval_secs).max(0) as u64 * 1000
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Health {
    Initial,
    Healthy,
    Unhealthy,
    Unavailable,
    Draining,
}

impl Health {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Health::Initial => "initial",
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
            Health::Unavailable => "unavailable",
            Health::Draining => "draining",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) health: Health,
    pub(crate) reason: Option<String>,
    pub(crate) description: Option<String>,
    /// Bumped on every registration and deregistration, so stale timers do nothing.
    pub(crate) generation: u64,
}

/// ELBv2 timers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Timer {
    /// A registered target passed `HealthyThresholdCount` checks.
    Healthy {
        target_group: String,
        id: String,
        port: i64,
        generation: u64,
    },
    /// A draining target's deregistration delay is over.
    Drained {
        target_group: String,
        id: String,
        port: i64,
        generation: u64,
    },
}

fn st<'a>(w: &'a mut World, region: &str) -> &'a mut State {
    &mut w.region(region).elbv2
}

pub(crate) fn on_timer(w: &mut World, region: &str, t: Timer) {
    let s = st(w, region);
    match t {
        Timer::Healthy {
            target_group,
            id,
            port,
            generation,
        } => {
            let Some(tg) = s.target_groups.get_mut(&target_group) else {
                return;
            };
            let forced = tg.forced_unhealthy.contains_key(&id);
            if let Some(t) = tg.targets.get_mut(&(id, port))
                && t.generation == generation
                && t.health == Health::Initial
                && !forced
            {
                set_health(t, Health::Healthy, None, None);
            }
        }
        Timer::Drained {
            target_group,
            id,
            port,
            generation,
        } => {
            let Some(tg) = s.target_groups.get_mut(&target_group) else {
                return;
            };
            let key = (id, port);
            if tg
                .targets
                .get(&key)
                .is_some_and(|t| t.generation == generation && t.health == Health::Draining)
            {
                tg.targets.remove(&key);
            }
        }
    }
}

fn set_health(t: &mut Target, h: Health, reason: Option<&str>, description: Option<&str>) {
    t.health = h;
    t.reason = reason.map(str::to_owned);
    t.description = description.map(str::to_owned);
}

/// Registers `(id, port)` with the target group `arn`: a new target (or a draining one)
/// starts `initial` and turns `healthy` after the healthy threshold; one already
/// registered keeps its state, as in AWS. Returns false when the group does not exist.
pub(crate) fn register(
    w: &mut World,
    region: &str,
    arn: &str,
    id: &str,
    port: Option<i64>,
) -> bool {
    let now = w.now;
    let s = st(w, region);
    let Some(tg) = s.target_groups.get_mut(arn) else {
        return false;
    };
    let port = port.unwrap_or(tg.port);
    let key = (id.to_owned(), port);
    if tg
        .targets
        .get(&key)
        .is_some_and(|t| t.health != Health::Draining)
    {
        return true;
    }
    let generation = tg.targets.get(&key).map_or(0, |t| t.generation) + 1;
    let mut t = Target {
        health: Health::Initial,
        reason: None,
        description: None,
        generation,
    };
    let mut due = None;
    if !tg.health_check.enabled {
        set_health(
            &mut t,
            Health::Unavailable,
            Some("Target.HealthCheckDisabled"),
            Some("Health checks are disabled for the target group"),
        );
    } else if let Some((r, d)) = tg.forced_unhealthy.get(id) {
        let (r, d) = (r.clone(), d.clone());
        set_health(&mut t, Health::Unhealthy, Some(&r), Some(&d));
    } else {
        set_health(
            &mut t,
            Health::Initial,
            Some("Elb.RegistrationInProgress"),
            Some("Target registration is in progress"),
        );
        due = Some(now.saturating_add(tg.time_to_healthy_ms()));
    }
    tg.targets.insert(key, t);
    if let Some(at) = due {
        w.schedule(
            at,
            region,
            WorldTimer::Elbv2(Timer::Healthy {
                target_group: arn.to_owned(),
                id: id.to_owned(),
                port,
                generation,
            }),
        );
    }
    true
}

/// Deregisters `(id, port)` from `arn`: a registered target goes `draining` and is gone
/// after the deregistration delay. Returns the delay in ms when the target was registered
/// (and not already draining), else `None`.
pub(crate) fn deregister(
    w: &mut World,
    region: &str,
    arn: &str,
    id: &str,
    port: Option<i64>,
) -> Option<Millis> {
    let now = w.now;
    let s = st(w, region);
    let tg = s.target_groups.get_mut(arn)?;
    let port = port.unwrap_or(tg.port);
    let key = (id.to_owned(), port);
    let delay = tg.deregistration_delay_ms();
    let t = tg.targets.get_mut(&key)?;
    if t.health == Health::Draining {
        return None;
    }
    if delay == 0 {
        tg.targets.remove(&key);
        return Some(0);
    }
    t.generation += 1;
    let generation = t.generation;
    set_health(
        t,
        Health::Draining,
        Some("Target.DeregistrationInProgress"),
        Some("Target deregistration is in progress"),
    );
    w.schedule(
        now.saturating_add(delay),
        region,
        WorldTimer::Elbv2(Timer::Drained {
            target_group: arn.to_owned(),
            id: id.to_owned(),
            port,
            generation,
        }),
    );
    Some(delay)
}

/// The region of a target group ARN.
pub(crate) fn arn_region(arn: &str) -> Option<&str> {
    let rest = arn.strip_prefix("arn:aws:elasticloadbalancing:")?;
    let (region, rest) = rest.split_once(':')?;
    rest.split_once(":targetgroup/")?;
    Some(region)
}
