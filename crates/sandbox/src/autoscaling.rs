//! EC2 Auto Scaling (AWS Query, 2011-01-01): groups, lifecycle hooks and the lifecycle
//! state machine of spec §1.11.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Sandbox;
use crate::clock::Millis;
use crate::protocol::{AwsError, Service, XmlWriter};
use crate::server::{Input, Reply, RequestCtx};
use crate::world::{Region, World};

/// Options for unconfirmed Auto Scaling behaviour (spec §7).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Options {}

/// Auto Scaling state of one region.
#[derive(Debug, Default)]
pub struct State {}

/// Auto Scaling timers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Timer {}

pub fn on_timer(_world: &mut World, _region: &str, t: Timer) {
    match t {}
}

/// The control API's view of a region.
pub fn state_json(_region: &Region, _now: Millis) -> Value {
    json!({"groups": [], "instances": [], "actions": []})
}

pub async fn handle(_sb: &Sandbox, ctx: &RequestCtx, input: Input) -> Result<Reply, AwsError> {
    let Input::Query(_params) = input else {
        return Err(AwsError::unknown_operation(Service::AutoScaling, &ctx.op));
    };
    let ns = Service::AutoScaling.xml_namespace();
    match ctx.op.as_str() {
        "DescribeLifecycleHookTypes" => {
            let mut w = XmlWriter::response(&ctx.op, ns, true);
            w.string_list(
                "LifecycleHookTypes",
                [
                    lifehook_model::LifecycleTransition::LAUNCHING,
                    lifehook_model::LifecycleTransition::TERMINATING,
                ],
            );
            Ok(Reply::Xml(w.finish(&ctx.request_id)))
        }
        op => Err(AwsError::unknown_operation(Service::AutoScaling, op)),
    }
}
