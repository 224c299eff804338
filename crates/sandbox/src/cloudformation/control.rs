//! The `/_sandbox/cloudformation/…` control routes.

use super::*;
use crate::control::ControlResult;
use http::Method;

/// `GET /_sandbox/cloudformation/signals`: every signal of every region, oldest first
/// within a region.
pub(crate) fn control(sb: &Sandbox, method: &Method, route: &str, body: &[u8]) -> ControlResult {
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
        _ => Err(crate::control::no_endpoint(method, route)),
    }
}

/// The tags CloudFormation puts on a group it creates: `aws:cloudformation:stack-name`,
/// `aws:cloudformation:stack-id` and `aws:cloudformation:logical-id` (not propagated).
/// Answers the group's tags.
pub(crate) fn stack_group(
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
