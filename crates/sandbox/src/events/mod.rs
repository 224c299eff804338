//! EventBridge in the sandbox (JSON 1.1, `AWSEvents.<Op>`): rules with event patterns on
//! the default bus, SQS and SNS targets (Lambda targets are stored, not invoked), and
//! `PutEvents`. Scheduled rules are refused.
//!
//! Layout: this file holds rules and targets and delivers events (shared with Auto
//! Scaling); `ops.rs` the operations and `handle`; [`pattern`] event patterns.
//! EventBridge has no control routes.

mod ops;
pub(crate) mod pattern;
#[cfg(test)]
mod tests;

pub(crate) use ops::run;

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::protocol::RequestCtx;
use crate::protocol::json::JsonBody;
use crate::protocol::{AwsError, Service};
use crate::world::World;
use crate::{ACCOUNT_ID, clock, ids, sns, sqs};

/// The only bus.
pub(crate) const DEFAULT_BUS: &str = "default";
/// Targets per rule.
const MAX_TARGETS: usize = 5;

/// EventBridge state of one region.
#[derive(Debug, Default)]
pub(crate) struct State {
    rules: BTreeMap<String, Rule>,
}

#[derive(Debug, Clone)]
struct Rule {
    name: String,
    arn: String,
    /// The pattern as given (returned verbatim by DescribeRule).
    pattern_text: String,
    pattern: Value,
    enabled: bool,
    description: Option<String>,
    role_arn: Option<String>,
    targets: BTreeMap<String, Target>,
}

#[derive(Debug, Clone)]
struct Target {
    id: String,
    arn: String,
    input: Option<String>,
    input_path: Option<String>,
    role_arn: Option<String>,
}

fn not_found(rule: &str) -> AwsError {
    AwsError::new(
        400,
        "ResourceNotFoundException",
        format!("Rule {rule} does not exist on EventBus {DEFAULT_BUS}."),
    )
}

fn validation(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "ValidationException", message)
}

fn check_bus(b: &JsonBody, key: &str) -> Result<(), AwsError> {
    match b.str(key)? {
        None => Ok(()),
        Some(n) if n == DEFAULT_BUS || n.ends_with(":event-bus/default") => Ok(()),
        Some(n) => Err(AwsError::new(
            400,
            "ResourceNotFoundException",
            format!("Event bus {n} does not exist."),
        )),
    }
}

fn rule_arn(region: &str, name: &str) -> String {
    format!("arn:aws:events:{region}:{ACCOUNT_ID}:rule/{name}")
}

/// `$.a.b` (the only InputPath form supported): the part of `event` it names.
fn apply_input_path(path: &str, event: &Value) -> Option<Value> {
    let rest = path.strip_prefix('$')?;
    let mut v = event;
    for seg in rest.split('.').filter(|s| !s.is_empty()) {
        v = v.get(seg)?;
    }
    Some(v.clone())
}

/// The event as text with its keys in the order AWS writes them (`version`, `id`,
/// `detail-type`, `source`, ...), falling back to the value as it is.
fn ordered_event_text(event: &Value) -> String {
    serde_json::from_value::<lifehook_model::message::EventBridgeEvent<Value>>(event.clone())
        .ok()
        .and_then(|e| serde_json::to_string(&e).ok())
        .unwrap_or_else(|| event.to_string())
}

/// Puts `event` (a full EventBridge event, spec §3.4) on the region's default bus; every
/// enabled rule whose pattern matches delivers it to its targets.
/// Whether an event put in `region` could reach anything (some rule is enabled). When
/// not, callers may skip building the event at all: [`put_event`] would drop it.
pub(crate) fn has_enabled_rules(world: &World, region: &str) -> bool {
    world
        .regions
        .get(region)
        .is_some_and(|r| r.events.rules.values().any(|r| r.enabled))
}

pub(crate) fn put_event(world: &mut World, region: &str, event: &Value) {
    let deliveries: Vec<(String, String, String)> = world
        .region(region)
        .events
        .rules
        .values()
        .filter(|r| r.enabled && pattern::matches(&r.pattern, event))
        .flat_map(|r| {
            r.targets.values().map(move |t| {
                let body = match (&t.input, &t.input_path) {
                    (Some(i), _) => i.clone(),
                    (None, Some(p)) => match apply_input_path(p, event) {
                        Some(Value::String(s)) => s,
                        Some(v) => v.to_string(),
                        None => String::new(),
                    },
                    (None, None) => ordered_event_text(event),
                };
                (r.name.clone(), t.arn.clone(), body)
            })
        })
        .collect();
    for (rule, arn, body) in deliveries {
        let service = arn.split(':').nth(2).unwrap_or("");
        let r = match service {
            "sqs" => sqs::send_by_arn(world, region, &arn, &body),
            "sns" => sns::publish_by_arn(world, region, &arn, None, &body).map(|_| ()),
            "lambda" => {
                crate::lambda::invoke_by_arn(world, region, &arn, &body, "events").map(|_| ())
            }
            _ => {
                tracing::debug!(rule = %rule, target = %arn, "target not invoked (stored only)");
                Ok(())
            }
        };
        if let Err(e) = r {
            tracing::warn!(rule = %rule, target = %arn, error = %e, "EventBridge delivery failed");
        }
    }
}

/// The control API's view of a region's rules: per rule, its description and target ARNs.
pub(crate) fn state_json(state: &State) -> Value {
    let m: Map<String, Value> = state
        .rules
        .values()
        .map(|r| {
            let mut v = rule_json(r);
            v["Targets"] = json!(r.targets.values().map(|t| &t.arn).collect::<Vec<_>>());
            (r.name.clone(), v)
        })
        .collect();
    Value::Object(m)
}

fn rule_json(r: &Rule) -> Value {
    let mut v = json!({
        "Name": r.name,
        "Arn": r.arn,
        "EventPattern": r.pattern_text,
        "State": if r.enabled { "ENABLED" } else { "DISABLED" },
        "EventBusName": DEFAULT_BUS,
    });
    if let Some(d) = &r.description {
        v["Description"] = json!(d);
    }
    if let Some(a) = &r.role_arn {
        v["RoleArn"] = json!(a);
    }
    v
}
