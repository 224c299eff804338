//! SNS in the sandbox.

use crate::Sandbox;
use crate::protocol::{AwsError, Service};
use crate::server::{Input, Reply, RequestCtx};

/// SNS state of one region.
#[derive(Debug, Default)]
pub struct State {}

pub async fn handle(_sb: &Sandbox, ctx: &RequestCtx, _input: Input) -> Result<Reply, AwsError> {
    Err(AwsError::unknown_operation(ctx.service, &ctx.op)).map_err(|e| {
        let _ = Service::Sqs;
        e
    })
}

/// Publishes to the topic whose ARN is `topic_arn`, delivering to its subscriptions
/// (SQS: the envelope of spec §3.3, or the raw message with raw delivery).
pub fn publish_by_arn(
    _world: &mut crate::world::World,
    _region: &str,
    topic_arn: &str,
    _subject: Option<&str>,
    _message: &str,
) -> Result<String, crate::world::DeliveryError> {
    Err(crate::world::DeliveryError::NoSuchTarget(
        topic_arn.to_owned(),
    ))
}
