//! EventBridge in the sandbox (JSON 1.1, `AWSEvents.<Op>`): the default and custom event
//! buses, rules with event patterns on them, SQS, SNS and Lambda targets (with `Input`,
//! `InputPath` and `InputTransformer`), and `PutEvents`. Scheduled rules are refused.
//!
//! Layout: this file holds buses, rules and targets and delivers events (shared with Auto
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

/// The bus every account has in every region; it cannot be deleted.
pub(crate) const DEFAULT_BUS: &str = "default";
/// Targets per rule.
const MAX_TARGETS: usize = 5;

/// EventBridge state of one region: its buses, the default one included.
#[derive(Debug)]
pub(crate) struct State {
    buses: BTreeMap<String, Bus>,
}

impl Default for State {
    fn default() -> Self {
        let mut buses = BTreeMap::new();
        buses.insert(DEFAULT_BUS.to_owned(), Bus::new(DEFAULT_BUS, None, 0));
        State { buses }
    }
}

impl State {
    /// The bus named by `name_or_arn` (a name, or an `event-bus/<name>` ARN).
    fn bus(&self, name_or_arn: &str) -> Result<&Bus, AwsError> {
        self.buses
            .get(bus_name(name_or_arn))
            .ok_or_else(|| bus_not_found(name_or_arn))
    }

    fn bus_mut(&mut self, name_or_arn: &str) -> Result<&mut Bus, AwsError> {
        self.buses
            .get_mut(bus_name(name_or_arn))
            .ok_or_else(|| bus_not_found(name_or_arn))
    }
}

/// One event bus and its rules.
#[derive(Debug)]
struct Bus {
    name: String,
    description: Option<String>,
    /// Virtual ms of creation (and of the last change).
    created: clock::Millis,
    modified: clock::Millis,
    rules: BTreeMap<String, Rule>,
    /// Resource-policy statements (PutPermission), by `Sid`.
    statements: Vec<Value>,
    tags: BTreeMap<String, String>,
}

impl Bus {
    fn new(name: &str, description: Option<String>, now: clock::Millis) -> Self {
        Bus {
            name: name.to_owned(),
            description,
            created: now,
            modified: now,
            rules: BTreeMap::new(),
            statements: Vec::new(),
            tags: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone)]
struct Rule {
    name: String,
    arn: String,
    bus: String,
    /// The pattern as given (returned verbatim by DescribeRule).
    pattern_text: String,
    pattern: pattern::Pattern,
    enabled: bool,
    description: Option<String>,
    role_arn: Option<String>,
    /// In the order they were first put (ListTargetsByRule keeps it).
    targets: Vec<Target>,
    tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
struct Target {
    id: String,
    arn: String,
    input: Option<String>,
    input_path: Option<String>,
    input_transformer: Option<InputTransformer>,
    role_arn: Option<String>,
}

/// `InputTransformer`: values picked from the event by JSON path, placed into a template.
#[derive(Debug, Clone)]
struct InputTransformer {
    paths: Map<String, Value>,
    template: String,
}

/// The bus name in `name_or_arn`: the part after `event-bus/` of an ARN, else itself.
fn bus_name(name_or_arn: &str) -> &str {
    match name_or_arn.strip_prefix("arn:") {
        Some(_) => name_or_arn
            .split_once(":event-bus/")
            .map_or(name_or_arn, |(_, n)| n),
        None => name_or_arn,
    }
}

fn bus_not_found(name_or_arn: &str) -> AwsError {
    AwsError::new(
        400,
        "ResourceNotFoundException",
        format!("Event bus {} does not exist.", bus_name(name_or_arn)),
    )
}

fn bus_arn(region: &str, name: &str) -> String {
    format!("arn:aws:events:{region}:{ACCOUNT_ID}:event-bus/{name}")
}

fn not_found(rule: &str, bus: &str) -> AwsError {
    AwsError::new(
        400,
        "ResourceNotFoundException",
        format!("Rule {rule} does not exist on EventBus {bus}."),
    )
}

fn validation(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "ValidationException", message)
}

/// `rule/<name>` on the default bus, `rule/<bus>/<name>` on another.
fn rule_arn(region: &str, bus: &str, name: &str) -> String {
    if bus == DEFAULT_BUS {
        format!("arn:aws:events:{region}:{ACCOUNT_ID}:rule/{name}")
    } else {
        format!("arn:aws:events:{region}:{ACCOUNT_ID}:rule/{bus}/{name}")
    }
}

/// The part of `event` a JSON path names: `$`, `$.a.b`, `$.a[0].b`, `$['a']`. `None` when
/// the path is malformed or names nothing.
fn json_path<'a>(path: &str, event: &'a Value) -> Option<&'a Value> {
    let mut rest = path.trim().strip_prefix('$')?;
    let mut v = event;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let key = &r[..end];
            if key.is_empty() {
                return None;
            }
            v = v.get(key)?;
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let inner = r[..end].trim();
            v = match inner.parse::<usize>() {
                Ok(i) => v.get(i)?,
                Err(_) => v.get(inner.trim_matches(|c| c == '\'' || c == '"'))?,
            };
            rest = &r[end + 1..];
        } else {
            return None;
        }
    }
    Some(v)
}

/// The event as text with its keys in the order AWS writes them (`version`, `id`,
/// `detail-type`, `source`, ...), falling back to the value as it is.
fn ordered_event_text(event: &Value) -> String {
    serde_json::from_value::<lifehook_model::message::EventBridgeEvent<Value>>(event.clone())
        .ok()
        .and_then(|e| serde_json::to_string(&e).ok())
        .unwrap_or_else(|| event.to_string())
}

/// The predefined placeholders of input transformers.
const PREDEFINED: [&str; 5] = [
    "aws.events.rule-arn",
    "aws.events.rule-name",
    "aws.events.event.ingestion-time",
    "aws.events.event",
    "aws.events.event.json",
];

/// The `<name>` placeholders of a template, each with its byte range.
fn placeholders(template: &str) -> Vec<(usize, usize, &str)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(open) = template[from..].find('<').map(|i| from + i) {
        let Some(close) = template[open + 1..].find(['>', '<']).map(|i| open + 1 + i) else {
            break;
        };
        let name = &template[open + 1..close];
        let ok = template.as_bytes()[close] == b'>'
            && !name.is_empty()
            && name
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_'));
        if ok {
            out.push((open, close + 1, name));
            from = close + 1;
        } else {
            from = close;
        }
    }
    out
}

impl InputTransformer {
    /// The first placeholder of the template that names neither a key of `InputPathsMap`
    /// nor a predefined variable.
    fn unknown_placeholder(&self) -> Option<&str> {
        placeholders(&self.template)
            .into_iter()
            .map(|(_, _, n)| n)
            .find(|n| !self.paths.contains_key(*n) && !PREDEFINED.contains(n))
    }

    /// The template with every `<name>` replaced, as the EventBridge user guide describes
    /// ("Amazon EventBridge input transformation",
    /// <https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-transform-target-input.html>)
    /// and as AWS answers: outside quotes a value goes in as JSON (a path that names
    /// nothing as `""`); inside quotes a string goes in as its characters, and an object
    /// or array as its JSON without quotes in a template that is one string, while in an
    /// object template that makes the result invalid and nothing is delivered. A template
    /// that is not JSON gets strings as they are.
    fn render(&self, rule: &Rule, event: &Value, now: clock::Millis) -> Option<String> {
        let lookup = |name: &str| -> Option<Value> {
            if let Some(p) = self.paths.get(name).and_then(Value::as_str) {
                return json_path(p, event).cloned();
            }
            match name {
                "aws.events.rule-arn" => Some(json!(rule.arn)),
                "aws.events.rule-name" => Some(json!(rule.name)),
                "aws.events.event.ingestion-time" => Some(json!(clock::iso_secs(now))),
                "aws.events.event" => {
                    let mut e = event.clone();
                    if let Some(o) = e.as_object_mut() {
                        o.remove("detail");
                        if let Some(t) = o.remove("detail-type") {
                            o.insert("detailType".into(), t);
                        }
                    }
                    Some(e)
                }
                "aws.events.event.json" => Some(event.clone()),
                _ => None,
            }
        };
        let trimmed = self.template.trim_start();
        let object_template = trimmed.starts_with(['{', '[']);
        let json_template = object_template || trimmed.starts_with('"');
        let mut out = String::with_capacity(self.template.len());
        let mut in_string = false;
        let mut escaped = false;
        let mut last = 0;
        let holes = placeholders(&self.template);
        let mut holes = holes.iter().peekable();
        for (i, c) in self.template.char_indices() {
            if i < last {
                continue;
            }
            if let Some(&&(start, end, name)) = holes.peek()
                && start == i
            {
                holes.next();
                let v = lookup(name);
                let text = match (v, json_template, in_string) {
                    (None, true, true) => String::new(),
                    (None, true, false) => "\"\"".to_owned(),
                    (None, false, _) => String::new(),
                    (Some(Value::String(s)), true, true) => {
                        let quoted = Value::String(s).to_string();
                        quoted[1..quoted.len() - 1].to_owned()
                    }
                    (Some(Value::String(s)), false, _) => s,
                    (Some(v @ (Value::Object(_) | Value::Array(_))), true, true) => {
                        if object_template {
                            return None;
                        }
                        v.to_string().replace('"', "")
                    }
                    (Some(v), _, _) => v.to_string(),
                };
                out.push_str(&text);
                last = end;
                continue;
            }
            if json_template {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = in_string;
                } else if c == '"' {
                    in_string = !in_string;
                }
            }
            out.push(c);
        }
        if object_template && serde_json::from_str::<Value>(&out).is_err() {
            return None;
        }
        Some(out)
    }
}

impl Target {
    /// What this target receives for `event`: the whole event, or what `Input`,
    /// `InputPath` or `InputTransformer` make of it; `None` when the transformer's result
    /// is not valid JSON (AWS then delivers nothing).
    fn body(&self, rule: &Rule, event: &Value, now: clock::Millis) -> Option<String> {
        if let Some(i) = &self.input {
            return Some(i.clone());
        }
        if let Some(p) = &self.input_path {
            return Some(match json_path(p, event) {
                Some(v) if p.trim() == "$" => ordered_event_text(v),
                Some(v) => v.to_string(),
                None => String::new(),
            });
        }
        if let Some(t) = &self.input_transformer {
            return t.render(rule, event, now);
        }
        Some(ordered_event_text(event))
    }
}

/// Whether an event put in `region` could reach anything (some rule is enabled). When
/// not, callers may skip building the event at all: [`put_event`] would drop it.
pub(crate) fn has_enabled_rules(world: &World, region: &str) -> bool {
    world.regions.get(region).is_some_and(|r| {
        r.events
            .buses
            .get(DEFAULT_BUS)
            .is_some_and(|b| b.rules.values().any(|r| r.enabled))
    })
}

/// Puts `event` (a full EventBridge event, spec §3.4) on the region's default bus; every
/// enabled rule whose pattern matches delivers it to its targets.
pub(crate) fn put_event(world: &mut World, region: &str, event: &Value) {
    put_event_on_bus(world, region, DEFAULT_BUS, event);
}

/// Puts `event` on the bus `bus` (a name) of `region`; a bus that does not exist drops it.
fn put_event_on_bus(world: &mut World, region: &str, bus: &str, event: &Value) {
    let now = world.now;
    let Some(b) = world.region(region).events.buses.get(bus) else {
        return;
    };
    let deliveries: Vec<(String, String, String)> = b
        .rules
        .values()
        .filter(|r| r.enabled && r.pattern.matches(event))
        .flat_map(|r| {
            r.targets.iter().filter_map(move |t| {
                let body = t.body(r, event, now)?;
                Some((r.name.clone(), t.arn.clone(), body))
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

/// The control API's view of a region's rules: per rule, its description and target ARNs
/// (rules of buses other than the default one are keyed `<bus>/<rule>`).
pub(crate) fn state_json(state: &State) -> Value {
    let m: Map<String, Value> = state
        .buses
        .values()
        .flat_map(|b| b.rules.values())
        .map(|r| {
            let mut v = rule_json(r);
            v["Targets"] = json!(r.targets.iter().map(|t| &t.arn).collect::<Vec<_>>());
            let key = if r.bus == DEFAULT_BUS {
                r.name.clone()
            } else {
                format!("{}/{}", r.bus, r.name)
            };
            (key, v)
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
        "EventBusName": r.bus,
    });
    if let Some(d) = &r.description {
        v["Description"] = json!(d);
    }
    if let Some(a) = &r.role_arn {
        v["RoleArn"] = json!(a);
    }
    v
}
