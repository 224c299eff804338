//! `signal`: CloudFormation `SignalResource` (what `cfn-signal` sends), for a stack whose
//! Auto Scaling group or instance has a `CreationPolicy`/`UpdatePolicy` waiting on signals.
//!
//! Running twice: the unique id defaults to the instance id, so a repeated signal is the
//! same signal. When the resource no longer waits for signals because it is already
//! complete, a SUCCESS signal has nothing left to do and the step succeeds (an earlier run
//! most likely sent it); a FAILURE signal then fails, naming CloudFormation's message.

use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::types::ResourceSignalStatus;
use lifehook_core::config::{SignalStatus, SignalStep};
use lifehook_core::step::{Failure, Success};

use super::{Cx, done, error_code, error_message};

pub(crate) async fn run(cf: &Client, cx: &Cx<'_>, g: &SignalStep) -> Result<Success, Failure> {
    let stack = cx.render(&g.stack)?;
    let resource = cx.render(&g.resource)?;
    let unique_id = cx.render(&g.unique_id)?;
    let status = match g.status {
        SignalStatus::Success => ResourceSignalStatus::Success,
        SignalStatus::Failure => ResourceSignalStatus::Failure,
    };
    let what = format!(
        "{} for {stack}/{resource} (unique id {unique_id})",
        g.status.as_str()
    );
    match cf
        .signal_resource()
        .stack_name(&stack)
        .logical_resource_id(&resource)
        .unique_id(&unique_id)
        .status(status)
        .send()
        .await
    {
        Ok(_) => Ok(done(format!("signalled {what}"))),
        Err(e)
            if g.status == SignalStatus::Success
                && error_code(&e) == Some("ValidationError")
                && error_message(&e).is_some_and(already_complete) =>
        {
            Ok(done(format!(
                "{what}: the resource no longer waits for signals ({})",
                error_message(&e).unwrap_or_default()
            )))
        }
        Err(e) => Err(cx.api(&format!("SignalResource {what}"), &e)),
    }
}

/// CloudFormation's answer to a signal for a resource that is already complete, e.g.
/// "Resource AutoScalingGroup is in CREATE_COMPLETE state and cannot be signaled".
fn already_complete(message: &str) -> bool {
    let m = message.to_ascii_uppercase();
    (m.contains("_COMPLETE STATE") || m.contains("ALREADY EXISTS"))
        && (m.contains("SIGNAL") || m.contains("ALREADY EXISTS"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_an_already_complete_resource() {
        assert!(already_complete(
            "Resource AutoScalingGroup is in CREATE_COMPLETE state and cannot be signaled"
        ));
        assert!(already_complete(
            "Signal with ID i-0123 for resource WebServer already exists."
        ));
        assert!(!already_complete("Stack with id nope does not exist"));
    }
}
