//! SQS in the sandbox.

use crate::Sandbox;
use crate::protocol::{AwsError, Service};
use crate::server::{Input, Reply, RequestCtx};

/// SQS state of one region.
#[derive(Debug, Default)]
pub struct State {}

pub async fn handle(_sb: &Sandbox, ctx: &RequestCtx, _input: Input) -> Result<Reply, AwsError> {
    Err(AwsError::unknown_operation(ctx.service, &ctx.op)).map_err(|e| {
        let _ = Service::Sqs;
        e
    })
}

/// SQS timers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Timer {}

pub fn on_timer(_world: &mut crate::world::World, _region: &str, t: Timer) {
    match t {}
}

/// Sends `body` to the queue whose ARN is `arn` (used by Auto Scaling, SNS and EventBridge
/// to deliver to queues). Wakes long-polling receivers.
pub fn send_by_arn(
    _world: &mut crate::world::World,
    _region: &str,
    arn: &str,
    _body: &str,
) -> Result<(), crate::world::DeliveryError> {
    Err(crate::world::DeliveryError::NoSuchTarget(arn.to_owned()))
}
