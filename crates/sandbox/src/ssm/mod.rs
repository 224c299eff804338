//! SSM Run Command in the sandbox (JSON 1.1, `X-Amz-Target: AmazonSSM.<Op>`).
//!
//! Instances are simulated: nothing runs. Each command's invocation on each instance goes
//! `Pending` → `InProgress` → `Success` (or a scripted outcome) on virtual time. Outcomes
//! are scripted through the control API (`POST /_sandbox/ssm/outcomes`): the first rule
//! that matches an invocation (by instance id and/or a substring of the commands) decides
//! its status, exit code, output and delay; without a match an invocation succeeds with
//! exit code 0 and no output after [`DEFAULT_DELAY_MS`].
//!
//! Layout: this file holds commands, invocations, outcome rules and timers; `ops.rs` the
//! operations and `handle`; `control.rs` the `/_sandbox/ssm/…` routes and the state JSON.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::clock::{Millis, iso_millis};
use crate::protocol::RequestCtx;
use crate::protocol::json::JsonBody;
use crate::protocol::{AwsError, Service};
use crate::world::{Timer as WorldTimer, World};
use crate::{Sandbox, ids};

mod control;
mod ops;
#[cfg(test)]
mod tests;

pub(crate) use control::{control, state_json};
pub(crate) use ops::run;

/// How long after SendCommand an invocation finishes, by default (virtual ms).
pub(crate) const DEFAULT_DELAY_MS: Millis = 2_000;
/// How long an invocation stays `Pending` before it is `InProgress` (capped by its delay).
pub(crate) const START_MS: Millis = 500;
/// The largest `MaxResults` of the List operations.
const MAX_RESULTS: usize = 50;

/// SSM state of one region.
#[derive(Debug, Default)]
pub(crate) struct State {
    commands: Vec<Command>,
    outcomes: Vec<OutcomeRule>,
}

/// A scripted outcome (`POST /_sandbox/ssm/outcomes`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct OutcomeRule {
    /// Only invocations on this instance; omitted: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) instance_id: Option<String>,
    /// Only commands whose script (the `commands` parameter joined by newlines) contains
    /// this; omitted: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) command_contains: Option<String>,
    /// `Success` (default), `Failed`, `TimedOut` or `Cancelled`.
    #[serde(default = "success")]
    pub(crate) status: String,
    /// Default 0 for `Success`, 1 otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) exit_code: Option<i64>,
    #[serde(default)]
    pub(crate) stdout: String,
    #[serde(default)]
    pub(crate) stderr: String,
    /// Virtual seconds from SendCommand to the end; default 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) delay_seconds: Option<f64>,
    /// The region whose commands the rule applies to; default `us-east-1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) region: Option<String>,
}

fn success() -> String {
    "Success".into()
}

#[derive(Debug, Clone)]
struct Command {
    id: String,
    document: String,
    comment: String,
    parameters: Map<String, Value>,
    script: String,
    instance_ids: Vec<String>,
    targets: Value,
    requested: Millis,
    timeout_seconds: i64,
    invocations: BTreeMap<String, Invocation>,
}

#[derive(Debug, Clone)]
struct Invocation {
    status: &'static str,
    started: Option<Millis>,
    ended: Option<Millis>,
    /// The final outcome, applied at the end.
    outcome: (&'static str, i64, String, String),
    exit_code: i64,
    stdout: String,
    stderr: String,
}

/// SSM timers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Timer {
    Start { command: String, instance: String },
    Finish { command: String, instance: String },
}

pub(crate) fn on_timer(world: &mut World, region: &str, t: Timer) {
    let now = world.now;
    let ssm = &mut world.region(region).ssm;
    let (Timer::Start { command, instance } | Timer::Finish { command, instance }) = &t;
    let Some(inv) = ssm
        .commands
        .iter_mut()
        .find(|c| &c.id == command)
        .and_then(|c| c.invocations.get_mut(instance))
    else {
        return;
    };
    match t {
        Timer::Start { .. } if inv.status == "Pending" => {
            inv.status = "InProgress";
            inv.started = Some(now);
        }
        Timer::Finish { .. } if matches!(inv.status, "Pending" | "InProgress") => {
            let (status, code, out, err) = inv.outcome.clone();
            inv.started.get_or_insert(now);
            inv.ended = Some(now);
            inv.status = status;
            inv.exit_code = code;
            inv.stdout = out;
            inv.stderr = err;
        }
        _ => {}
    }
}

fn status_of(s: &str) -> Option<&'static str> {
    Some(match s {
        "Success" => "Success",
        "Failed" => "Failed",
        "TimedOut" => "TimedOut",
        "Cancelled" => "Cancelled",
        _ => return None,
    })
}

impl OutcomeRule {
    pub(crate) fn validate(&self) -> Result<(), String> {
        if status_of(&self.status).is_none() {
            return Err(format!(
                "status must be Success, Failed, TimedOut or Cancelled, got {:?}",
                self.status
            ));
        }
        if let Some(d) = self.delay_seconds
            && (!d.is_finite() || !(0.0..=86_400.0 * 30.0).contains(&d))
        {
            return Err(format!("delay_seconds must be 0..30 days, got {d}"));
        }
        Ok(())
    }

    fn matches(&self, instance: &str, script: &str) -> bool {
        self.instance_id.as_deref().is_none_or(|i| i == instance)
            && self
                .command_contains
                .as_deref()
                .is_none_or(|c| script.contains(c))
    }
}
