//! SSM Run Command in the sandbox (JSON 1.1, `X-Amz-Target: AmazonSSM.<Op>`).
//!
//! Instances are simulated: nothing runs. Each command's invocation on each instance goes
//! `Pending` → `InProgress` → `Success` (or a scripted outcome) on virtual time. Outcomes
//! are scripted through the control API (`POST /_sandbox/ssm/outcomes`): the first rule
//! that matches an invocation (by instance id and/or a substring of the commands) decides
//! its status, exit code, output and delay; without a match an invocation succeeds with
//! exit code 0 and no output after [`DEFAULT_DELAY_MS`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::clock::{Millis, iso_millis};
use crate::protocol::json::JsonBody;
use crate::protocol::{AwsError, Service};
use crate::server::{Input, Reply, RequestCtx};
use crate::world::{Timer as WorldTimer, World};
use crate::{DEFAULT_REGION, Sandbox, ids};

/// How long after SendCommand an invocation finishes, by default (virtual ms).
pub const DEFAULT_DELAY_MS: Millis = 2_000;
/// How long an invocation stays `Pending` before it is `InProgress` (capped by its delay).
pub const START_MS: Millis = 500;
/// The largest `MaxResults` of the List operations.
const MAX_RESULTS: usize = 50;

/// SSM state of one region.
#[derive(Debug, Default)]
pub struct State {
    commands: Vec<Command>,
    outcomes: Vec<OutcomeRule>,
}

/// A scripted outcome (`POST /_sandbox/ssm/outcomes`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OutcomeRule {
    /// Only invocations on this instance; omitted: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    /// Only commands whose script (the `commands` parameter joined by newlines) contains
    /// this; omitted: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_contains: Option<String>,
    /// `Success` (default), `Failed`, `TimedOut` or `Cancelled`.
    #[serde(default = "success")]
    pub status: String,
    /// Default 0 for `Success`, 1 otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    #[serde(default)]
    pub stdout: String,
    #[serde(default)]
    pub stderr: String,
    /// Virtual seconds from SendCommand to the end; default 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_seconds: Option<f64>,
    /// The region whose commands the rule applies to; default `us-east-1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

fn success() -> String {
    "Success".into()
}

#[derive(Debug, Clone)]
struct Command {
    id: String,
    document: String,
    comment: String,
    parameters: Map<String, Value>,
    script: String,
    instance_ids: Vec<String>,
    targets: Value,
    requested: Millis,
    timeout_seconds: i64,
    invocations: BTreeMap<String, Invocation>,
}

#[derive(Debug, Clone)]
struct Invocation {
    status: &'static str,
    started: Option<Millis>,
    ended: Option<Millis>,
    /// The final outcome, applied at the end.
    outcome: (&'static str, i64, String, String),
    exit_code: i64,
    stdout: String,
    stderr: String,
}

/// SSM timers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Timer {
    Start { command: String, instance: String },
    Finish { command: String, instance: String },
}

pub fn on_timer(world: &mut World, region: &str, t: Timer) {
    let now = world.now;
    let ssm = &mut world.region(region).ssm;
    let (Timer::Start { command, instance } | Timer::Finish { command, instance }) = &t;
    let Some(inv) = ssm
        .commands
        .iter_mut()
        .find(|c| &c.id == command)
        .and_then(|c| c.invocations.get_mut(instance))
    else {
        return;
    };
    match t {
        Timer::Start { .. } if inv.status == "Pending" => {
            inv.status = "InProgress";
            inv.started = Some(now);
        }
        Timer::Finish { .. } if matches!(inv.status, "Pending" | "InProgress") => {
            let (status, code, out, err) = inv.outcome.clone();
            inv.started.get_or_insert(now);
            inv.ended = Some(now);
            inv.status = status;
            inv.exit_code = code;
            inv.stdout = out;
            inv.stderr = err;
        }
        _ => {}
    }
}

fn status_of(s: &str) -> Option<&'static str> {
    Some(match s {
        "Success" => "Success",
        "Failed" => "Failed",
        "TimedOut" => "TimedOut",
        "Cancelled" => "Cancelled",
        _ => return None,
    })
}

impl OutcomeRule {
    pub fn validate(&self) -> Result<(), String> {
        if status_of(&self.status).is_none() {
            return Err(format!(
                "status must be Success, Failed, TimedOut or Cancelled, got {:?}",
                self.status
            ));
        }
        if let Some(d) = self.delay_seconds
            && (!d.is_finite() || !(0.0..=86_400.0 * 30.0).contains(&d))
        {
            return Err(format!("delay_seconds must be 0..30 days, got {d}"));
        }
        Ok(())
    }

    fn matches(&self, instance: &str, script: &str) -> bool {
        self.instance_id.as_deref().is_none_or(|i| i == instance)
            && self
                .command_contains
                .as_deref()
                .is_none_or(|c| script.contains(c))
    }
}

// ---------------------------------------------------------------------------------------
// Control API
// ---------------------------------------------------------------------------------------

/// `/_sandbox/ssm/...`: `GET|POST|DELETE outcomes`, `GET commands`. Returns the JSON
/// answer or (status, message).
pub fn control(
    sb: &Sandbox,
    method: &http::Method,
    route: &str,
    body: &[u8],
) -> Result<Value, (u16, String)> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Rules {
        Many { rules: Vec<OutcomeRule> },
        List(Vec<OutcomeRule>),
        One(OutcomeRule),
    }
    match (method.as_str(), route) {
        ("POST", "/ssm/outcomes") => {
            let rules = match serde_json::from_slice::<Rules>(body) {
                Ok(Rules::One(r)) => vec![r],
                Ok(Rules::List(r) | Rules::Many { rules: r }) => r,
                Err(e) => return Err((400, format!("invalid outcome rule: {e}"))),
            };
            for (i, r) in rules.iter().enumerate() {
                r.validate().map_err(|e| (400, format!("rule {i}: {e}")))?;
            }
            let mut w = sb.lock();
            for r in rules {
                let region = r.region.clone().unwrap_or_else(|| DEFAULT_REGION.into());
                w.region(&region).ssm.outcomes.push(r);
            }
            Ok(json!({"rules": all_rules(&w)}))
        }
        ("GET", "/ssm/outcomes") => Ok(json!({"rules": all_rules(&sb.lock())})),
        ("DELETE", "/ssm/outcomes") => {
            let mut w = sb.lock();
            for r in w.regions.values_mut() {
                r.ssm.outcomes.clear();
            }
            Ok(json!({"rules": []}))
        }
        ("GET", "/ssm/commands") => {
            let w = sb.lock();
            let cmds: Vec<Value> = w
                .regions
                .iter()
                .flat_map(|(name, r)| r.ssm.commands.iter().map(move |c| (name, c)))
                .map(|(region, c)| {
                    let mut v = command_json(c);
                    v["Region"] = json!(region);
                    v["Script"] = json!(c.script);
                    v["Invocations"] = c
                        .invocations
                        .iter()
                        .map(|(i, inv)| invocation_json(c, i, inv, true))
                        .collect();
                    v
                })
                .collect();
            Ok(json!({"commands": cmds}))
        }
        _ => Err((
            404,
            format!("no control endpoint {method} /_sandbox{route}; see docs/sandbox.md"),
        )),
    }
}

fn all_rules(w: &World) -> Vec<Value> {
    w.regions
        .iter()
        .flat_map(|(name, r)| {
            r.ssm.outcomes.iter().map(move |o| {
                let mut v = serde_json::to_value(o).unwrap_or(Value::Null);
                v["region"] = json!(name);
                v
            })
        })
        .collect()
}

/// Commands and invocations, for `GET /_sandbox/state`.
pub fn state_json(state: &State) -> Value {
    json!({
        "commands": state.commands.iter().map(|c| {
            let mut v = command_json(c);
            v["Script"] = json!(c.script);
            v
        }).collect::<Vec<_>>(),
        "outcome_rules": state.outcomes.len(),
    })
}

// ---------------------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------------------

pub async fn handle(sb: &Sandbox, ctx: &RequestCtx, input: Input) -> Result<Reply, AwsError> {
    let Input::Json(b) = input else {
        return Err(AwsError::unknown_operation(Service::Ssm, &ctx.op));
    };
    let mut w = sb.lock();
    run(&mut w, ctx, &b).map(Reply::Json)
}

fn validation(m: impl Into<String>) -> AwsError {
    AwsError::new(400, "ValidationException", m)
}

fn invalid_command(id: &str) -> AwsError {
    AwsError::new(
        400,
        "InvalidCommandId",
        format!("Command {id} does not exist"),
    )
}

fn secs(ms: Millis) -> f64 {
    ms as f64 / 1000.0
}

fn max_results(b: &JsonBody) -> Result<usize, AwsError> {
    match b.int("MaxResults")? {
        None => Ok(MAX_RESULTS),
        Some(n) if (1..=MAX_RESULTS as i64).contains(&n) => Ok(n as usize),
        Some(n) => Err(validation(format!(
            "1 validation error detected: Value '{n}' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and {MAX_RESULTS}"
        ))),
    }
}

fn page<T>(items: Vec<T>, b: &JsonBody) -> Result<(Vec<T>, Option<String>), AwsError> {
    let max = max_results(b)?;
    let start = match b.str("NextToken")? {
        Some(t) => t.parse::<usize>().map_err(|_| {
            AwsError::new(400, "InvalidNextToken", "The specified token is invalid")
        })?,
        None => 0,
    };
    let total = items.len();
    let out: Vec<T> = items.into_iter().skip(start).take(max).collect();
    let next = (start + out.len() < total).then(|| (start + out.len()).to_string());
    Ok((out, next))
}

fn run(world: &mut World, ctx: &RequestCtx, b: &JsonBody) -> Result<Value, AwsError> {
    match ctx.op.as_str() {
        "SendCommand" => send_command(world, ctx, b),
        "GetCommandInvocation" => {
            let id = b.required_str("CommandId")?;
            let instance = b.required_str("InstanceId")?;
            let ssm = &world.region(&ctx.region).ssm;
            let not_found = || {
                AwsError::new(
                    400,
                    "InvocationDoesNotExist",
                    "The command ID and instance ID you specified did not match any invocations.",
                )
            };
            let c = ssm
                .commands
                .iter()
                .find(|c| c.id == id)
                .ok_or_else(not_found)?;
            let inv = c.invocations.get(instance).ok_or_else(not_found)?;
            let elapsed = match (inv.started, inv.ended) {
                (Some(s), Some(e)) => format_elapsed(e - s),
                _ => String::new(),
            };
            Ok(json!({
                "CommandId": c.id,
                "InstanceId": instance,
                "Comment": c.comment,
                "DocumentName": c.document,
                "DocumentVersion": "$DEFAULT",
                "PluginName": plugin_name(&c.document),
                "ResponseCode": if inv.ended.is_some() { inv.exit_code } else { -1 },
                "ExecutionStartDateTime": inv.started.map(iso_millis).unwrap_or_default(),
                "ExecutionElapsedTime": elapsed,
                "ExecutionEndDateTime": inv.ended.map(iso_millis).unwrap_or_default(),
                "Status": inv.status,
                "StatusDetails": details(inv.status),
                "StandardOutputContent": inv.stdout,
                "StandardOutputUrl": "",
                "StandardErrorContent": inv.stderr,
                "StandardErrorUrl": "",
                "CloudWatchOutputConfig": {"CloudWatchLogGroupName": "", "CloudWatchOutputEnabled": false},
            }))
        }
        "ListCommandInvocations" => {
            let id = b.str("CommandId")?;
            let instance = b.str("InstanceId")?;
            let detailed = b.bool("Details")?.unwrap_or(false);
            let ssm = &world.region(&ctx.region).ssm;
            if let Some(id) = id
                && !ssm.commands.iter().any(|c| c.id == id)
            {
                return Err(invalid_command(id));
            }
            let items: Vec<Value> = ssm
                .commands
                .iter()
                .rev()
                .filter(|c| id.is_none_or(|i| i == c.id))
                .flat_map(|c| {
                    c.invocations
                        .iter()
                        .filter(|(i, _)| instance.is_none_or(|x| x == i.as_str()))
                        .map(move |(i, inv)| invocation_json(c, i, inv, detailed))
                })
                .collect();
            let (items, next) = page(items, b)?;
            let mut out = json!({"CommandInvocations": items});
            if let Some(n) = next {
                out["NextToken"] = json!(n);
            }
            Ok(out)
        }
        "ListCommands" => {
            let id = b.str("CommandId")?;
            let instance = b.str("InstanceId")?;
            let ssm = &world.region(&ctx.region).ssm;
            if let Some(id) = id
                && !ssm.commands.iter().any(|c| c.id == id)
            {
                return Err(invalid_command(id));
            }
            let items: Vec<Value> = ssm
                .commands
                .iter()
                .rev()
                .filter(|c| id.is_none_or(|i| i == c.id))
                .filter(|c| instance.is_none_or(|i| c.invocations.contains_key(i)))
                .map(command_json)
                .collect();
            let (items, next) = page(items, b)?;
            let mut out = json!({"Commands": items});
            if let Some(n) = next {
                out["NextToken"] = json!(n);
            }
            Ok(out)
        }
        "CancelCommand" => {
            let id = b.required_str("CommandId")?;
            let only = b.str_list("InstanceIds")?;
            let now = world.now;
            let ssm = &mut world.region(&ctx.region).ssm;
            let c = ssm
                .commands
                .iter_mut()
                .find(|c| c.id == id)
                .ok_or_else(|| invalid_command(id))?;
            for (i, inv) in c.invocations.iter_mut() {
                if (only.is_empty() || only.contains(i))
                    && matches!(inv.status, "Pending" | "InProgress")
                {
                    inv.status = "Cancelled";
                    inv.ended = Some(now);
                }
            }
            Ok(json!({}))
        }
        op => Err(AwsError::unknown_operation(Service::Ssm, op)),
    }
}

fn plugin_name(document: &str) -> &'static str {
    if document == "AWS-RunPowerShellScript" {
        "aws:runPowerShellScript"
    } else {
        "aws:runShellScript"
    }
}

fn details(status: &str) -> &str {
    match status {
        "TimedOut" => "ExecutionTimedOut",
        s => s,
    }
}

/// `PT2.001S`, as SSM writes elapsed times.
fn format_elapsed(ms: Millis) -> String {
    format!("PT{}.{:03}S", ms / 1000, ms % 1000)
}

fn send_command(world: &mut World, ctx: &RequestCtx, b: &JsonBody) -> Result<Value, AwsError> {
    let document = b.required_str("DocumentName")?.to_owned();
    let parameters = b.object("Parameters")?.cloned().unwrap_or_default();
    let mut script_lines = Vec::new();
    if let Some(v) = parameters.get("commands") {
        let Some(list) = v.as_array() else {
            return Err(AwsError::new(
                400,
                "InvalidParameters",
                "Parameters.commands must be a list of strings",
            ));
        };
        for l in list {
            script_lines.push(l.as_str().unwrap_or_default().to_owned());
        }
    }
    let mut instances = b.str_list("InstanceIds")?;
    let targets = b.array("Targets")?.to_vec();
    for t in &targets {
        let key = t.get("Key").and_then(Value::as_str).unwrap_or_default();
        let values = t.get("Values").and_then(Value::as_array);
        if key == "InstanceIds" {
            for v in values.into_iter().flatten() {
                if let Some(s) = v.as_str() {
                    instances.push(s.to_owned());
                }
            }
        } else {
            return Err(AwsError::new(
                400,
                "InvalidParameters",
                format!("The sandbox resolves only Targets with Key InstanceIds, not {key:?}"),
            ));
        }
    }
    if instances.is_empty() {
        return Err(validation(
            "Either InstanceIds or Targets must be specified, naming at least one instance",
        ));
    }
    instances.dedup();
    for i in &instances {
        if !(i.starts_with("i-") || i.starts_with("mi-")) || i.len() > 40 {
            return Err(AwsError::new(
                400,
                "InvalidInstanceId",
                format!("Instances [{i}] not in a valid state"),
            ));
        }
    }
    let now = world.now;
    let script = script_lines.join("\n");
    let id = ids::uuid();
    let region = ctx.region.clone();
    let ssm = &mut world.region(&region).ssm;
    let mut invocations = BTreeMap::new();
    let mut timers = Vec::new();
    for i in &instances {
        let rule = ssm.outcomes.iter().find(|r| r.matches(i, &script));
        let (outcome, delay) = match rule {
            Some(r) => {
                let status = status_of(&r.status).unwrap_or("Success");
                let code = r
                    .exit_code
                    .unwrap_or(if status == "Success" { 0 } else { 1 });
                (
                    (status, code, r.stdout.clone(), r.stderr.clone()),
                    r.delay_seconds
                        .map(|d| (d * 1000.0).round() as Millis)
                        .unwrap_or(DEFAULT_DELAY_MS),
                )
            }
            None => (
                ("Success", 0, String::new(), String::new()),
                DEFAULT_DELAY_MS,
            ),
        };
        invocations.insert(
            i.clone(),
            Invocation {
                status: "Pending",
                started: None,
                ended: None,
                outcome,
                exit_code: -1,
                stdout: String::new(),
                stderr: String::new(),
            },
        );
        timers.push((now + START_MS.min(delay), i.clone(), true));
        timers.push((now + delay, i.clone(), false));
    }
    let cmd = Command {
        id: id.clone(),
        document,
        comment: b.str("Comment")?.unwrap_or_default().to_owned(),
        parameters,
        script,
        instance_ids: b.str_list("InstanceIds")?,
        targets: Value::Array(targets),
        requested: now,
        timeout_seconds: b.int("TimeoutSeconds")?.unwrap_or(3600),
        invocations,
    };
    let out = command_json(&cmd);
    ssm.commands.push(cmd);
    for (at, instance, start) in timers {
        let t = if start {
            Timer::Start {
                command: id.clone(),
                instance,
            }
        } else {
            Timer::Finish {
                command: id.clone(),
                instance,
            }
        };
        world.schedule(at, &region, WorldTimer::Ssm(t));
    }
    Ok(json!({"Command": out}))
}

fn command_status(c: &Command) -> &'static str {
    let all = c.invocations.values();
    if all
        .clone()
        .any(|i| matches!(i.status, "Pending" | "InProgress"))
    {
        if all.clone().all(|i| i.status == "Pending") {
            "Pending"
        } else {
            "InProgress"
        }
    } else if all.clone().all(|i| i.status == "Success") {
        "Success"
    } else if all.clone().any(|i| i.status == "Failed") {
        "Failed"
    } else if all.clone().any(|i| i.status == "TimedOut") {
        "TimedOut"
    } else {
        "Cancelled"
    }
}

fn command_json(c: &Command) -> Value {
    let done = c
        .invocations
        .values()
        .filter(|i| !matches!(i.status, "Pending" | "InProgress"))
        .count();
    let errors = c
        .invocations
        .values()
        .filter(|i| matches!(i.status, "Failed" | "TimedOut"))
        .count();
    let status = command_status(c);
    json!({
        "CommandId": c.id,
        "DocumentName": c.document,
        "DocumentVersion": "$DEFAULT",
        "Comment": c.comment,
        "ExpiresAfter": secs(c.requested + c.timeout_seconds.max(0) as Millis * 1000),
        "Parameters": c.parameters,
        "InstanceIds": c.instance_ids,
        "Targets": c.targets,
        "RequestedDateTime": secs(c.requested),
        "Status": status,
        "StatusDetails": details(status),
        "OutputS3Region": "",
        "OutputS3BucketName": "",
        "OutputS3KeyPrefix": "",
        "MaxConcurrency": "50",
        "MaxErrors": "0",
        "TargetCount": c.invocations.len(),
        "CompletedCount": done,
        "ErrorCount": errors,
        "DeliveryTimedOutCount": 0,
        "ServiceRole": "",
        "NotificationConfig": {"NotificationArn": "", "NotificationEvents": [], "NotificationType": ""},
        "CloudWatchOutputConfig": {"CloudWatchLogGroupName": "", "CloudWatchOutputEnabled": false},
        "TimeoutSeconds": c.timeout_seconds,
    })
}

fn invocation_json(c: &Command, instance: &str, inv: &Invocation, detailed: bool) -> Value {
    let mut v = json!({
        "CommandId": c.id,
        "InstanceId": instance,
        "InstanceName": "",
        "Comment": c.comment,
        "DocumentName": c.document,
        "DocumentVersion": "$DEFAULT",
        "RequestedDateTime": secs(c.requested),
        "Status": inv.status,
        "StatusDetails": details(inv.status),
        "TraceOutput": "",
        "StandardOutputUrl": "",
        "StandardErrorUrl": "",
        "ServiceRole": "",
        "CloudWatchOutputConfig": {"CloudWatchLogGroupName": "", "CloudWatchOutputEnabled": false},
    });
    if detailed {
        let mut p = json!({
            "Name": plugin_name(&c.document),
            "Status": inv.status,
            "StatusDetails": details(inv.status),
            "ResponseCode": if inv.ended.is_some() { inv.exit_code } else { -1 },
            "Output": inv.stdout,
            "StandardOutputUrl": "",
            "StandardErrorUrl": "",
            "OutputS3Region": "",
            "OutputS3BucketName": "",
            "OutputS3KeyPrefix": "",
        });
        if let Some(s) = inv.started {
            p["ResponseStartDateTime"] = json!(secs(s));
        }
        if let Some(e) = inv.ended {
            p["ResponseFinishDateTime"] = json!(secs(e));
        }
        v["CommandPlugins"] = json!([p]);
    } else {
        v["CommandPlugins"] = json!([]);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Wire;

    fn ctx(op: &str) -> RequestCtx {
        RequestCtx {
            request_id: "r".into(),
            region: "us-east-1".into(),
            host: "h".into(),
            path: "/".into(),
            service: Service::Ssm,
            wire: Wire::Json { version: "1.1" },
            op: op.into(),
        }
    }

    fn call(w: &mut World, op: &str, body: Value) -> Result<Value, AwsError> {
        let Value::Object(m) = body else { panic!() };
        run(w, &ctx(op), &JsonBody(m))
    }

    #[test]
    fn lifecycle_on_virtual_time_and_scripted_failure() {
        let mut w = World::new(1_000_000, Default::default());
        w.region("us-east-1").ssm.outcomes.push(OutcomeRule {
            instance_id: Some("i-bad".into()),
            command_contains: None,
            status: "Failed".into(),
            exit_code: Some(3),
            stdout: "boom".into(),
            stderr: String::new(),
            delay_seconds: Some(5.0),
            region: None,
        });
        let out = call(
            &mut w,
            "SendCommand",
            json!({"DocumentName": "AWS-RunShellScript", "InstanceIds": ["i-ok", "i-bad"],
                   "Parameters": {"commands": ["echo hi"]}}),
        )
        .unwrap();
        let id = out["Command"]["CommandId"].as_str().unwrap().to_owned();
        assert_eq!(out["Command"]["Status"], "Pending");
        let get = |w: &mut World, i: &str| {
            call(
                w,
                "GetCommandInvocation",
                json!({"CommandId": id, "InstanceId": i}),
            )
            .unwrap()
        };
        assert_eq!(get(&mut w, "i-ok")["Status"], "Pending");
        w.run_until(1_000_600);
        assert_eq!(get(&mut w, "i-ok")["Status"], "InProgress");
        w.run_until(1_002_000);
        let ok = get(&mut w, "i-ok");
        assert_eq!(ok["Status"], "Success");
        assert_eq!(ok["ResponseCode"], 0);
        assert_eq!(get(&mut w, "i-bad")["Status"], "InProgress");
        w.run_until(1_005_000);
        let bad = get(&mut w, "i-bad");
        assert_eq!(bad["Status"], "Failed");
        assert_eq!(bad["ResponseCode"], 3);
        assert_eq!(bad["StandardOutputContent"], "boom");
        let list = call(&mut w, "ListCommands", json!({})).unwrap();
        assert_eq!(list["Commands"][0]["Status"], "Failed");
        assert_eq!(list["Commands"][0]["ErrorCount"], 1);
        assert!(
            call(
                &mut w,
                "GetCommandInvocation",
                json!({"CommandId": id, "InstanceId": "i-x"})
            )
            .is_err()
        );
        assert!(
            call(
                &mut w,
                "SendCommand",
                json!({"DocumentName": "AWS-RunShellScript"})
            )
            .is_err()
        );
    }
}
