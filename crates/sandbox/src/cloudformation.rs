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

use serde_json::{Value, json};

use crate::protocol::{AwsError, Params, Service, XmlWriter};
use crate::server::{Input, Reply, RequestCtx};
use crate::world::World;
use crate::{Sandbox, clock};

/// Longest stack name or ARN, logical id and unique id AWS accepts.
const MAX_STACK_NAME: usize = 1024;
const MAX_LOGICAL_ID: usize = 256;
const MAX_UNIQUE_ID: usize = 64;
/// Signals kept per region (the oldest are dropped first).
const MAX_SIGNALS: usize = 10_000;

/// CloudFormation state of one region: the signals received, oldest first.
#[derive(Debug, Default)]
pub struct State {
    signals: Vec<Signal>,
}

/// One `SignalResource` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signal {
    pub stack_name: String,
    pub logical_resource_id: String,
    pub unique_id: String,
    /// `SUCCESS` or `FAILURE`.
    pub status: String,
    /// Virtual time it was received.
    pub at: clock::Millis,
    pub request_id: String,
}

pub async fn handle(sb: &Sandbox, ctx: &RequestCtx, input: Input) -> Result<Reply, AwsError> {
    let Input::Query(p) = input else {
        return Err(AwsError::unknown_operation(
            Service::CloudFormation,
            &ctx.op,
        ));
    };
    let mut w = sb.lock();
    run(&mut w, ctx, &p).map(Reply::Xml)
}

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

fn run(world: &mut World, ctx: &RequestCtx, p: &Params) -> Result<String, AwsError> {
    let ns = Service::CloudFormation.xml_namespace();
    match ctx.op.as_str() {
        "SignalResource" => {
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
        other => Err(AwsError::unknown_operation(Service::CloudFormation, other)),
    }
}

/// The signals of one region, oldest first.
pub fn signals(state: &State) -> &[Signal] {
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

/// `GET /_sandbox/cloudformation/signals`: every signal of every region, oldest first
/// within a region.
pub fn control(
    sb: &Sandbox,
    method: &http::Method,
    route: &str,
    body: &[u8],
) -> Result<Value, (u16, String)> {
    match (method.clone(), route) {
        (http::Method::POST, "/cloudformation/stack-groups") => {
            let v: Value = serde_json::from_slice(body)
                .map_err(|e| (400, format!("the body is not JSON: {e}")))?;
            let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
            let group = text("group").ok_or((400, "`group` is required".to_owned()))?;
            let stack = text("stack_name").ok_or((400, "`stack_name` is required".to_owned()))?;
            let logical = text("logical_id").unwrap_or_else(|| "AutoScalingGroup".into());
            let region = text("region").unwrap_or_else(|| "us-east-1".into());
            let mut w = sb.lock();
            stack_group(&mut w, &region, &group, &stack, &logical).map_err(|m| (404, m))
        }
        (http::Method::GET, "/cloudformation/signals") => {
            let w = sb.lock();
            let signals: Vec<Value> = w
                .regions
                .iter()
                .flat_map(|(name, r)| {
                    r.cloudformation
                        .signals
                        .iter()
                        .map(move |s| signal_json(name, s))
                })
                .collect();
            Ok(json!({ "signals": signals }))
        }
        _ => Err((
            404,
            format!("no control endpoint {method} /_sandbox{route}; see docs/sandbox.md"),
        )),
    }
}

/// The tags CloudFormation puts on a group it creates: `aws:cloudformation:stack-name`,
/// `aws:cloudformation:stack-id` and `aws:cloudformation:logical-id` (not propagated).
/// Answers the group's tags.
pub fn stack_group(
    w: &mut World,
    region: &str,
    group: &str,
    stack: &str,
    logical_id: &str,
) -> Result<Value, String> {
    let stack_id = format!(
        "arn:aws:cloudformation:{region}:000000000000:stack/{stack}/{}",
        crate::ids::uuid()
    );
    let r = w.region(region);
    let g = r
        .autoscaling
        .groups
        .get_mut(group)
        .ok_or_else(|| format!("no Auto Scaling group {group:?} in {region}"))?;
    for (k, v) in [
        ("aws:cloudformation:stack-name", stack),
        ("aws:cloudformation:stack-id", stack_id.as_str()),
        ("aws:cloudformation:logical-id", logical_id),
    ] {
        g.tags.retain(|t| t.key != k);
        g.tags.push(crate::autoscaling::engine::Tag {
            key: k.to_owned(),
            value: v.to_owned(),
            propagate: false,
        });
    }
    let tags: serde_json::Map<String, Value> = g
        .tags
        .iter()
        .map(|t| (t.key.clone(), Value::String(t.value.clone())))
        .collect();
    Ok(json!({ "group": group, "tags": tags }))
}

/// The control API's view of a region's signals (in `GET /_sandbox/state`).
pub fn state_json(region: &str, state: &State) -> Value {
    Value::Array(
        state
            .signals
            .iter()
            .map(|s| signal_json(region, s))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ClockMode;
    use crate::protocol::Wire;

    fn call(w: &mut World, body: &str) -> Result<String, AwsError> {
        let ctx = RequestCtx {
            request_id: "rid".into(),
            region: "eu-west-1".into(),
            host: "h".into(),
            path: "/".into(),
            service: Service::CloudFormation,
            wire: Wire::Query,
            op: "SignalResource".into(),
        };
        run(w, &ctx, &Params::parse(body.as_bytes()).expect("form"))
    }

    #[test]
    fn records_signals_and_validates() {
        let sb = Sandbox::new(ClockMode::Manual, Default::default());
        let mut w = sb.lock();
        let ok = call(
            &mut w,
            "StackName=web&LogicalResourceId=Asg&UniqueId=i-0123&Status=SUCCESS",
        )
        .expect("signal");
        assert!(ok.starts_with(
            "<SignalResourceResponse xmlns=\"http://cloudformation.amazonaws.com/doc/2010-05-15/\">"
        ));
        call(&mut w, "StackName=arn%3Aaws%3Acloudformation%3Aeu-west-1%3A000000000000%3Astack%2Fweb%2Fx&LogicalResourceId=Asg&UniqueId=i-0456&Status=FAILURE").expect("arn");
        let s = signals(&w.region("eu-west-1").cloudformation).to_vec();
        assert_eq!(s.len(), 2);
        assert_eq!(
            (s[0].unique_id.as_str(), s[0].status.as_str()),
            ("i-0123", "SUCCESS")
        );
        assert_eq!(s[1].status, "FAILURE");

        let e = call(&mut w, "StackName=web&LogicalResourceId=Asg&UniqueId=i-1").unwrap_err();
        assert_eq!(e.code, "ValidationError");
        assert!(e.message.contains("'status'"), "{}", e.message);
        let e = call(
            &mut w,
            "StackName=web&LogicalResourceId=Asg&UniqueId=i-1&Status=OK",
        )
        .unwrap_err();
        assert!(e.message.contains("[SUCCESS, FAILURE]"), "{}", e.message);
        let e = call(&mut w, "LogicalResourceId=Asg&UniqueId=i-1&Status=SUCCESS").unwrap_err();
        assert!(e.message.contains("'stackName'"), "{}", e.message);
        let e = call(
            &mut w,
            "StackName=1bad&LogicalResourceId=Asg&UniqueId=i-1&Status=SUCCESS",
        )
        .unwrap_err();
        assert!(e.message.contains("regular expression"), "{}", e.message);
        let long = "x".repeat(65);
        let e = call(
            &mut w,
            &format!("StackName=web&LogicalResourceId=Asg&UniqueId={long}&Status=SUCCESS"),
        )
        .unwrap_err();
        assert!(e.message.contains("'uniqueId'"), "{}", e.message);
        assert_eq!(signals(&w.region("eu-west-1").cloudformation).len(), 2);
    }

    #[test]
    fn stack_groups_get_the_cloudformation_tags() {
        let sb = Sandbox::new(ClockMode::Manual, Default::default());
        let mut w = sb.lock();
        let e = stack_group(&mut w, "us-east-1", "web", "web-stack", "Asg").unwrap_err();
        assert!(e.contains("no Auto Scaling group \"web\""), "{e}");
        let ctx = RequestCtx {
            request_id: "rid".into(),
            region: "us-east-1".into(),
            host: "h".into(),
            path: "/".into(),
            service: Service::AutoScaling,
            wire: Wire::Query,
            op: "CreateAutoScalingGroup".into(),
        };
        let p = Params::from_pairs(
            [
                ("AutoScalingGroupName", "web"),
                ("MinSize", "0"),
                ("MaxSize", "1"),
                ("DesiredCapacity", "0"),
                ("LaunchConfigurationName", "lc"),
                ("AvailabilityZones.member.1", "us-east-1a"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        crate::autoscaling::ops::dispatch(&mut w, &ctx, &p).expect("CreateAutoScalingGroup");
        let v = stack_group(&mut w, "us-east-1", "web", "web-stack", "Asg").expect("tagged");
        assert_eq!(v["tags"]["aws:cloudformation:stack-name"], "web-stack");
        assert_eq!(v["tags"]["aws:cloudformation:logical-id"], "Asg");
        // Again: the same three tags, replaced, not doubled.
        stack_group(&mut w, "us-east-1", "web", "other", "Asg").expect("tagged");
        let g = &w.region("us-east-1").autoscaling.groups["web"];
        assert_eq!(g.tags.len(), 3);
        assert!(
            g.tags
                .iter()
                .any(|t| t.key == "aws:cloudformation:stack-name" && t.value == "other")
        );
        let id = g
            .tags
            .iter()
            .find(|t| t.key == "aws:cloudformation:stack-id")
            .map(|t| t.value.clone())
            .unwrap_or_default();
        assert!(id.starts_with("arn:aws:cloudformation:us-east-1:000000000000:stack/other/"));
    }
}
