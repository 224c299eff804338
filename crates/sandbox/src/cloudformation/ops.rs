//! The CloudFormation operation (`SignalResource`) and `handle`, which dispatches it.

use super::*;

/// "1 validation error detected: Value '…' at 'member' failed to satisfy constraint: …".
fn constraint(member: &str, value: &str, what: &str) -> AwsError {
    AwsError::validation(format!(
        "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: {what}"
    ))
}

fn required<'a>(p: &'a Params, name: &str, member: &str, max: usize) -> Result<&'a str, AwsError> {
    let v = p.required(name)?;
    let n = v.chars().count();
    if n == 0 || n > max {
        return Err(constraint(
            member,
            v,
            &format!(
                "Member must have length less than or equal to {max} and greater than or equal to 1"
            ),
        ));
    }
    Ok(v)
}

/// A stack name (`[a-zA-Z][-a-zA-Z0-9]*`) or a stack ARN.
fn valid_stack_name(s: &str) -> bool {
    if let Some(rest) = s.strip_prefix("arn:") {
        return ["aws:", "aws-us-gov:", "aws-cn:"]
            .iter()
            .any(|p| rest.starts_with(p))
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-:/._+".contains(&b));
    }
    let mut b = s.bytes();
    b.next().is_some_and(|c| c.is_ascii_alphabetic())
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'-')
}

pub(crate) fn run(world: &mut World, ctx: &RequestCtx, p: &Params) -> Result<String, AwsError> {
    match ctx.op.as_str() {
        "SignalResource" => signal_resource(world, ctx, p),
        other => Err(AwsError::unknown_operation(Service::CloudFormation, other)),
    }
}

fn signal_resource(world: &mut World, ctx: &RequestCtx, p: &Params) -> Result<String, AwsError> {
    let ns = Service::CloudFormation.xml_namespace();
    let stack = required(p, "StackName", "stackName", MAX_STACK_NAME)?;
    if !valid_stack_name(stack) {
        return Err(constraint(
            "stackName",
            stack,
            "Member must satisfy regular expression pattern: ([a-zA-Z][-a-zA-Z0-9]*)|(arn:\\b(aws|aws-us-gov|aws-cn)\\b:[-a-zA-Z0-9:/._+]*)",
        ));
    }
    let logical = required(p, "LogicalResourceId", "logicalResourceId", MAX_LOGICAL_ID)?;
    let unique = required(p, "UniqueId", "uniqueId", MAX_UNIQUE_ID)?;
    let status = p.required("Status")?;
    if status != "SUCCESS" && status != "FAILURE" {
        return Err(constraint(
            "status",
            status,
            "Member must satisfy enum value set: [SUCCESS, FAILURE]",
        ));
    }
    let signal = Signal {
        stack_name: stack.to_owned(),
        logical_resource_id: logical.to_owned(),
        unique_id: unique.to_owned(),
        status: status.to_owned(),
        at: world.now,
        request_id: ctx.request_id.clone(),
    };
    tracing::debug!(stack = %signal.stack_name, resource = %signal.logical_resource_id, status = %signal.status, "SignalResource");
    let signals = &mut world.region(&ctx.region).cloudformation.signals;
    if signals.len() >= MAX_SIGNALS {
        signals.remove(0);
    }
    signals.push(signal);
    Ok(XmlWriter::response("SignalResource", ns, false).finish(&ctx.request_id))
}
