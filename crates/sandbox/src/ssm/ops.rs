//! The SSM operations: `handle`, its dispatch, and one function per operation.

use super::*;

type R = Result<Value, AwsError>;

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

/// One page of `items` under `key`, with `NextToken` if more follow.
fn paged(key: &str, items: Vec<Value>, b: &JsonBody) -> R {
    let max = max_results(b)?;
    let start = match b.str("NextToken")? {
        Some(t) => t.parse::<usize>().map_err(|_| {
            AwsError::new(400, "InvalidNextToken", "The specified token is invalid")
        })?,
        None => 0,
    };
    let (items, next) = crate::protocol::page_at(items, start, max);
    let mut m = serde_json::Map::new();
    m.insert(key.to_owned(), Value::Array(items));
    let mut out = Value::Object(m);
    if let Some(n) = next {
        out["NextToken"] = json!(n);
    }
    Ok(out)
}

/// The region's commands newest first, only `id` if given (which must exist).
fn commands_newest_first<'a>(
    ssm: &'a State,
    id: Option<&'a str>,
) -> Result<impl Iterator<Item = &'a Command>, AwsError> {
    if let Some(id) = id
        && !ssm.commands.iter().any(|c| c.id == id)
    {
        return Err(invalid_command(id));
    }
    Ok(ssm
        .commands
        .iter()
        .rev()
        .filter(move |c| id.is_none_or(|i| i == c.id)))
}

pub(crate) fn run(world: &mut World, ctx: &RequestCtx, b: &JsonBody) -> R {
    match ctx.op.as_str() {
        "SendCommand" => send_command(world, ctx, b),
        "GetCommandInvocation" => get_command_invocation(world, ctx, b),
        "ListCommandInvocations" => list_command_invocations(world, ctx, b),
        "ListCommands" => list_commands(world, ctx, b),
        "CancelCommand" => cancel_command(world, ctx, b),
        op => Err(AwsError::unknown_operation(Service::Ssm, op)),
    }
}

fn get_command_invocation(world: &mut World, ctx: &RequestCtx, b: &JsonBody) -> R {
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

fn list_command_invocations(world: &mut World, ctx: &RequestCtx, b: &JsonBody) -> R {
    let id = b.str("CommandId")?;
    let instance = b.str("InstanceId")?;
    let detailed = b.bool("Details")?.unwrap_or(false);
    let ssm = &world.region(&ctx.region).ssm;
    let items: Vec<Value> = commands_newest_first(ssm, id)?
        .flat_map(|c| {
            c.invocations
                .iter()
                .filter(|(i, _)| instance.is_none_or(|x| x == i.as_str()))
                .map(move |(i, inv)| invocation_json(c, i, inv, detailed))
        })
        .collect();
    paged("CommandInvocations", items, b)
}

fn list_commands(world: &mut World, ctx: &RequestCtx, b: &JsonBody) -> R {
    let id = b.str("CommandId")?;
    let instance = b.str("InstanceId")?;
    let ssm = &world.region(&ctx.region).ssm;
    let items: Vec<Value> = commands_newest_first(ssm, id)?
        .filter(|c| instance.is_none_or(|i| c.invocations.contains_key(i)))
        .map(command_json)
        .collect();
    paged("Commands", items, b)
}

fn cancel_command(world: &mut World, ctx: &RequestCtx, b: &JsonBody) -> R {
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
        if (only.is_empty() || only.contains(i)) && matches!(inv.status, "Pending" | "InProgress") {
            inv.status = "Cancelled";
            inv.ended = Some(now);
        }
    }
    Ok(json!({}))
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

fn send_command(world: &mut World, ctx: &RequestCtx, b: &JsonBody) -> R {
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

pub(super) fn command_json(c: &Command) -> Value {
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

pub(super) fn invocation_json(
    c: &Command,
    instance: &str,
    inv: &Invocation,
    detailed: bool,
) -> Value {
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
