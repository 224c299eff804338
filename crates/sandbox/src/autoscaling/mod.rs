//! EC2 Auto Scaling (AWS Query, 2011-01-01): groups, lifecycle hooks and the lifecycle
//! state machine of spec §1.11.
//!
//! - [`engine`]: the data model and the state machine, driven by virtual time.
//! - [`ops`]: the Query operations (parameters per spec Appendix A, XML per §4.3, errors
//!   per §2.3/§4.4).
//! - `wire.rs`: their parameters, errors and XML shapes.
//! - [`notify`]: notifications to the hook target and EventBridge (§2.8, §3).
//! - `tests.rs`: the unit tests.
//!
//! Auto Scaling has no control routes of its own: its state is part of the generic
//! `GET /_sandbox/state` and `GET /_sandbox/stats` ([`state_json`]).

pub(crate) mod engine;
pub(crate) mod notify;
pub(crate) mod ops;
mod wire;

pub(crate) use ops::dispatch;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub(crate) use engine::State;

use crate::clock::{Millis, iso_millis};
use crate::world::{Region, World};

/// Options for unconfirmed Auto Scaling behaviour (spec §7). Every field has a default,
/// so `{}` is a valid value; unknown fields are refused.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Options {
    /// Whether an instance whose launch action was ABANDONed passes through the terminate
    /// hooks (`Terminating:Wait`) on its way out (§1.2 note 3, §7.2). Default `true`.
    pub(crate) launch_abandon_runs_terminate_hooks: bool,
    /// Whether lifecycle messages and events carry `Origin`/`Destination` (§1.7).
    /// Default `true`.
    pub(crate) include_origin_destination: bool,
    /// Back-off of replacement launches after consecutive launch ABANDONs (§2.5): the first
    /// replacement is immediate; after the n-th consecutive ABANDON (n ≥ 2) launches wait
    /// `base × 2^(n-2)` seconds, at most `abandon_backoff_max_secs`. `0` disables the
    /// back-off. Default 10.
    pub(crate) abandon_backoff_base_secs: u64,
    /// Upper bound of the back-off. Default 300.
    pub(crate) abandon_backoff_max_secs: u64,
    /// When the hook target cannot be reached at action time, apply the DefaultResult at
    /// once instead of waiting for the timeout (§2.8, §7.6). Default `false` (keep waiting).
    pub(crate) notification_failure_applies_default_result: bool,
    /// How long terminated and detached instances stay visible in `GET /_sandbox/state`
    /// after leaving their group (they leave `DescribeAutoScalingGroups` at once).
    /// Default 3600.
    pub(crate) terminated_visible_secs: u64,
    /// Whether a terminating instance registered with target groups stays in `Terminating`
    /// until the deregistration delay is over, before the terminate hooks run (§1.11,
    /// §2.7). `false`: the hooks start at once while the targets drain. Default `true`.
    pub(crate) wait_for_deregistration_delay: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            launch_abandon_runs_terminate_hooks: true,
            include_origin_destination: true,
            abandon_backoff_base_secs: 10,
            abandon_backoff_max_secs: 300,
            notification_failure_applies_default_result: false,
            terminated_visible_secs: 3600,
            wait_for_deregistration_delay: true,
        }
    }
}

/// Auto Scaling timers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Timer {
    /// The heartbeat or global deadline of an action (stale if a heartbeat moved it).
    ActionTimeout { token: String },
    /// Bring a group to its desired capacity.
    Reconcile { group: String },
    /// Advance the group's instance refresh.
    RefreshStep { group: String },
    /// A terminating instance has drained from its target groups (§2.7): run the
    /// terminate hooks (when `run_hooks`) or finish the termination.
    Drained { instance: String, run_hooks: bool },
}

pub(crate) fn on_timer(world: &mut World, region: &str, t: Timer) {
    engine::on_timer(world, region, t);
}

/// The control API's view of a region: groups, instances (including recently terminated
/// ones) and open lifecycle actions with their deadlines.
pub(crate) fn state_json(region: &Region, now: Millis) -> Value {
    let s = &region.autoscaling;
    let groups: Vec<Value> = s
        .groups
        .values()
        .map(|g| {
            json!({
                "name": g.name,
                "arn": g.arn,
                "min": g.min,
                "max": g.max,
                "desired": g.desired,
                "counted": s.counted(&g.name),
                "retain_on_terminate_hook_abandon": g.retain_on_abandon,
                "hooks": g.hooks.iter().map(|h| json!({
                    "name": h.name,
                    "transition": h.transition.as_str(),
                    "heartbeat_timeout": h.heartbeat_secs,
                    "global_timeout": lifehook_model::global_timeout_secs(h.heartbeat_secs),
                    "default_result": h.default_result.as_str(),
                    "notification_target_arn": h.target,
                    "role_arn": h.role,
                    "notification_metadata": h.metadata,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let instances: Vec<Value> = s
        .instances
        .values()
        .map(|i| {
            json!({
                "id": i.id,
                "group": i.group,
                "in_group": i.in_group,
                "lifecycle_state": i.state.as_str(),
                "health": if i.healthy { "Healthy" } else { "Unhealthy" },
                "protected": i.protected,
                "az": i.az,
                "launched": iso_millis(i.launched_at),
                "ended": i.ended_at.map(iso_millis),
            })
        })
        .collect();
    let actions: Vec<Value> = s
        .actions
        .values()
        .map(|a| {
            json!({
                "group": a.group,
                "hook": a.hook,
                "instance": a.instance,
                "transition": a.transition.as_str(),
                "token": a.token,
                "started": iso_millis(a.started),
                "heartbeat_deadline": iso_millis(a.heartbeat_deadline),
                "global_deadline": iso_millis(a.global_deadline),
                "started_ms": a.started,
                "heartbeat_deadline_ms": a.heartbeat_deadline,
                "global_deadline_ms": a.global_deadline,
                "default_result": a.default_result.as_str(),
                "seconds_left": a.deadline().saturating_sub(now) as f64 / 1000.0,
            })
        })
        .collect();
    let refreshes: Vec<Value> = s
        .refreshes
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "group": r.group,
                "status": r.status,
                "percentage_complete": r.percentage(),
                "remaining": r.remaining,
                "in_flight": r.in_flight,
            })
        })
        .collect();
    json!({"groups": groups, "instances": instances, "actions": actions, "instance_refreshes": refreshes})
}
