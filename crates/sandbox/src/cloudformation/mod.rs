//! CloudFormation in the sandbox (AWS Query, `Version=2010-05-15`): only `SignalResource`,
//! what `cfn-signal` (and Bottlerocket's `cfsignal`) send when an instance is ready, so that
//! a lifecycle handler's "signal the stack" step can be tested.
//!
//! Stacks are not modelled: any stack name or stack ARN is accepted, and every signal is
//! recorded (in the region of the request) for `GET /_sandbox/cloudformation/signals`.
//! Parameters are validated as AWS validates them, with `ValidationError`s.
//!
//! `POST /_sandbox/cloudformation/stack-groups` puts an Auto Scaling group "in a stack": it
//! gives the group the `aws:cloudformation:*` tags CloudFormation sets on the groups it
//! creates (which `CreateOrUpdateTags` refuses to users), so that a handler's "is this a
//! stack deployment?" rule can be tested.
//!
//! Layout: this file holds the signals; `ops.rs` `SignalResource` and `handle`;
//! `control.rs` the `/_sandbox/cloudformation/…` routes.

use serde_json::{Value, json};

use crate::protocol::RequestCtx;
use crate::protocol::{AwsError, Params, Service, XmlWriter};
use crate::world::World;
use crate::{Sandbox, clock};

mod control;
mod ops;
#[cfg(test)]
mod tests;

pub(crate) use control::control;
pub(crate) use ops::run;

/// Longest stack name or ARN, logical id and unique id AWS accepts.
const MAX_STACK_NAME: usize = 1024;
const MAX_LOGICAL_ID: usize = 256;
const MAX_UNIQUE_ID: usize = 64;
/// Signals kept per region (the oldest are dropped first).
const MAX_SIGNALS: usize = 10_000;

/// CloudFormation state of one region: the signals received, oldest first.
#[derive(Debug, Default)]
pub(crate) struct State {
    signals: Vec<Signal>,
}

/// One `SignalResource` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Signal {
    pub(crate) stack_name: String,
    pub(crate) logical_resource_id: String,
    pub(crate) unique_id: String,
    /// `SUCCESS` or `FAILURE`.
    pub(crate) status: String,
    /// Virtual time it was received.
    pub(crate) at: clock::Millis,
    pub(crate) request_id: String,
}

/// The signals of one region, oldest first.
#[cfg(test)]
pub(crate) fn signals(state: &State) -> &[Signal] {
    &state.signals
}

fn signal_json(region: &str, s: &Signal) -> Value {
    json!({
        "region": region,
        "StackName": s.stack_name,
        "LogicalResourceId": s.logical_resource_id,
        "UniqueId": s.unique_id,
        "Status": s.status,
        "time": clock::iso_millis(s.at),
        "RequestId": s.request_id,
    })
}

/// The control API's view of a region's signals (in `GET /_sandbox/state`).
pub(crate) fn state_json(region: &str, state: &State) -> Value {
    Value::Array(
        state
            .signals
            .iter()
            .map(|s| signal_json(region, s))
            .collect(),
    )
}
