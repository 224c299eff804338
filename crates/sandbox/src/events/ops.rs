//! The EventBridge operations: `handle`, its dispatch, and one function per operation.

use super::*;

type R = Result<Value, AwsError>;

fn rule_name<'b>(b: &'b JsonBody, key: &str) -> Result<&'b str, AwsError> {
    let name = b.str(key)?.ok_or_else(|| {
        validation(format!(
            "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
            key.to_ascii_lowercase()
        ))
    })?;
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_'))
    {
        return Err(validation(format!(
            "1 validation error detected: Value '{name}' at '{}' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\.\\-_A-Za-z0-9]+",
            key.to_ascii_lowercase()
        )));
    }
    Ok(name)
}

/// A target id: 1–64 of `[.\-_A-Za-z0-9]`, checked as AWS checks `targets.N.member.id`.
fn target_id(id: &str, n: usize) -> Result<(), AwsError> {
    if id.len() > 64 {
        return Err(validation(format!(
            "1 validation error detected: Value '{id}' at 'targets.{n}.member.id' failed to satisfy constraint: Member must have length less than or equal to 64"
        )));
    }
    if id.is_empty()
        || !id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_'))
    {
        return Err(validation(format!(
            "1 validation error detected: Value '{id}' at 'targets.{n}.member.id' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\.\\-_A-Za-z0-9]+"
        )));
    }
    Ok(())
}

/// `EventBusName` of a request: a name or an ARN, the default bus when absent.
fn bus_param(b: &JsonBody) -> Result<&str, AwsError> {
    Ok(b.str("EventBusName")?.unwrap_or(DEFAULT_BUS))
}

/// Tokens are opaque on AWS; ours say where the next page starts, in a form no name or
/// ARN contains.
const TOKEN_PREFIX: &str = "lifehook-page-";

/// The page of `items` that `Limit` (1–100, default 100) and `NextToken` ask for, as
/// `{key: [...], "NextToken": ...}` (no token on the last page).
fn paged(b: &JsonBody, key: &str, items: Vec<Value>) -> R {
    let limit = b.int("Limit")?.unwrap_or(100).clamp(1, 100) as usize;
    let start = match b.str("NextToken")? {
        None => 0,
        Some(t) => t
            .strip_prefix(TOKEN_PREFIX)
            .and_then(|n| usize::from_str_radix(n, 16).ok())
            .ok_or_else(|| validation("The NextToken provided is invalid."))?,
    };
    let total = items.len();
    let page: Vec<Value> = items.into_iter().skip(start).take(limit).collect();
    let mut out = json!({ key: page });
    if start + limit < total {
        out["NextToken"] = json!(format!("{TOKEN_PREFIX}{:08x}", start + limit));
    }
    Ok(out)
}

fn invalid_pattern(reason: pattern::PatternError) -> AwsError {
    AwsError::new(
        400,
        "InvalidEventPatternException",
        format!("Event pattern is not valid. Reason: {reason}"),
    )
}

pub(crate) fn run(world: &mut World, ctx: &RequestCtx, b: &JsonBody) -> R {
    if ctx.op == "PutEvents" {
        return put_events(world, ctx, b);
    }
    let now = world.now;
    let state = &mut world.region(&ctx.region).events;
    match ctx.op.as_str() {
        "CreateEventBus" => create_event_bus(state, ctx, b, now),
        "DescribeEventBus" => describe_event_bus(state, ctx, b),
        "DeleteEventBus" => delete_event_bus(state, b),
        "ListEventBuses" => list_event_buses(state, ctx, b),
        "PutPermission" => put_permission(state, ctx, b, now),
        "RemovePermission" => remove_permission(state, b),
        "PutRule" => put_rule(state, ctx, b),
        "DescribeRule" => describe_rule(state, b),
        "ListRules" => list_rules(state, b),
        "DeleteRule" => delete_rule(state, b),
        "EnableRule" | "DisableRule" => enable_or_disable_rule(state, ctx, b),
        "PutTargets" => put_targets(state, b),
        "ListTargetsByRule" => list_targets_by_rule(state, b),
        "ListRuleNamesByTarget" => list_rule_names_by_target(state, b),
        "RemoveTargets" => remove_targets(state, b),
        "TestEventPattern" => test_event_pattern(b),
        "TagResource" | "UntagResource" | "ListTagsForResource" => tagging(state, ctx, b),
        op => Err(AwsError::unknown_operation(Service::Events, op)),
    }
}

fn bus_json(region: &str, bus: &Bus, policy: bool) -> Value {
    let mut v = json!({
        "Name": bus.name,
        "Arn": bus_arn(region, &bus.name),
        "CreationTime": bus.created as f64 / 1000.0,
        "LastModifiedTime": bus.modified as f64 / 1000.0,
    });
    if let Some(d) = &bus.description {
        v["Description"] = json!(d);
    }
    if policy && !bus.statements.is_empty() {
        v["Policy"] =
            json!(json!({"Version": "2012-10-17", "Statement": bus.statements}).to_string());
    }
    v
}

fn create_event_bus(state: &mut State, ctx: &RequestCtx, b: &JsonBody, now: clock::Millis) -> R {
    let name = b.required_str("Name")?;
    if name.is_empty()
        || name.len() > 256
        || !name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_' | b'/'))
    {
        return Err(validation(format!(
            "1 validation error detected: Value '{name}' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: [/\\.\\-_A-Za-z0-9]+"
        )));
    }
    if name == DEFAULT_BUS || state.buses.contains_key(name) {
        return Err(AwsError::new(
            400,
            "ResourceAlreadyExistsException",
            format!("Event bus {name} already exists."),
        ));
    }
    if b.str("EventSourceName")?.is_some() {
        return Err(validation(
            "EventSourceName (partner event buses) is not supported by the lifehook sandbox.",
        ));
    }
    let description = b.str("Description")?.map(str::to_owned);
    let mut out = json!({"EventBusArn": bus_arn(&ctx.region, name)});
    if let Some(d) = &description {
        out["Description"] = json!(d);
    }
    let mut bus = Bus::new(name, description, now);
    bus.tags = tags_param(b)?;
    state.buses.insert(name.to_owned(), bus);
    Ok(out)
}

fn describe_event_bus(state: &mut State, ctx: &RequestCtx, b: &JsonBody) -> R {
    let name = b.str("Name")?.unwrap_or(DEFAULT_BUS);
    Ok(bus_json(&ctx.region, state.bus(name)?, true))
}

fn delete_event_bus(state: &mut State, b: &JsonBody) -> R {
    let name = bus_name(b.required_str("Name")?);
    if name == DEFAULT_BUS {
        return Err(validation("Cannot delete event bus default."));
    }
    // Deleting a bus that does not exist succeeds, as on AWS.
    state.buses.remove(name);
    Ok(json!({}))
}

fn list_event_buses(state: &mut State, ctx: &RequestCtx, b: &JsonBody) -> R {
    let prefix = b.str("NamePrefix")?.unwrap_or("");
    let all: Vec<Value> = state
        .buses
        .values()
        .filter(|bus| bus.name.starts_with(prefix))
        .map(|bus| bus_json(&ctx.region, bus, false))
        .collect();
    paged(b, "EventBuses", all)
}

/// PutPermission: a statement allowing `events:PutEvents` to a principal (an account or
/// `*`), or the whole `Policy` document. The sandbox stores the policy; it does not
/// enforce it (every caller is the one account).
fn put_permission(state: &mut State, ctx: &RequestCtx, b: &JsonBody, now: clock::Millis) -> R {
    let region = ctx.region.clone();
    let bus = state.bus_mut(bus_param(b)?)?;
    if let Some(policy) = b.str("Policy")? {
        let doc: Value =
            serde_json::from_str(policy).map_err(|_| validation("Policy is not valid JSON."))?;
        bus.statements = doc
            .get("Statement")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        bus.modified = now;
        return Ok(json!({}));
    }
    let action = b.str("Action")?.unwrap_or("events:PutEvents");
    if action != "events:PutEvents" {
        return Err(validation(format!(
            "Provided value in parameter 'action' is not supported: {action}"
        )));
    }
    let principal = b.required_str("Principal")?;
    let sid = b.required_str("StatementId")?;
    let principal_json = if principal == "*" {
        json!("*")
    } else {
        json!({"AWS": format!("arn:aws:iam::{principal}:root")})
    };
    let statement = json!({
        "Sid": sid,
        "Effect": "Allow",
        "Principal": principal_json,
        "Action": action,
        "Resource": bus_arn(&region, &bus.name),
    });
    bus.statements.retain(|s| s["Sid"] != sid);
    bus.statements.push(statement);
    bus.modified = now;
    Ok(json!({}))
}

fn remove_permission(state: &mut State, b: &JsonBody) -> R {
    let bus = state.bus_mut(bus_param(b)?)?;
    if b.bool("RemoveAllPermissions")?.unwrap_or(false) {
        if bus.statements.is_empty() {
            return Err(AwsError::new(
                400,
                "ResourceNotFoundException",
                "EventBus does not have a policy.",
            ));
        }
        bus.statements.clear();
        return Ok(json!({}));
    }
    let sid = b.required_str("StatementId")?;
    let before = bus.statements.len();
    bus.statements.retain(|s| s["Sid"] != sid);
    if bus.statements.len() == before {
        return Err(AwsError::new(
            400,
            "ResourceNotFoundException",
            "Statement with the provided id does not exist.",
        ));
    }
    Ok(json!({}))
}

fn put_rule(state: &mut State, ctx: &RequestCtx, b: &JsonBody) -> R {
    let name = rule_name(b, "Name")?.to_owned();
    let bus = state.bus_mut(bus_param(b)?)?;
    if b.str("ScheduleExpression")?.is_some() {
        return Err(validation(
            "ScheduleExpression is not supported by the lifehook sandbox: only event pattern rules are.",
        ));
    }
    let text = b
        .str("EventPattern")?
        .ok_or_else(|| {
            validation("Parameter(s) EventPattern or ScheduleExpression must be specified.")
        })?
        .to_owned();
    let pattern = pattern::parse(&text).map_err(invalid_pattern)?;
    let enabled = match b.str("State")? {
        None | Some("ENABLED") => true,
        Some("DISABLED") => false,
        Some(s) => {
            return Err(validation(format!(
                "1 validation error detected: Value '{s}' at 'state' failed to satisfy constraint: Member must satisfy enum value set: [ENABLED, DISABLED]"
            )));
        }
    };
    let arn = rule_arn(&ctx.region, &bus.name, &name);
    let description = b.str("Description")?.map(str::to_owned);
    let role_arn = b.str("RoleArn")?.map(str::to_owned);
    let (targets, mut tags) = bus
        .rules
        .get(&name)
        .map(|r| (r.targets.clone(), r.tags.clone()))
        .unwrap_or_default();
    tags.extend(tags_param(b)?);
    let rule = Rule {
        name: name.clone(),
        arn: arn.clone(),
        bus: bus.name.clone(),
        pattern_text: text,
        pattern,
        enabled,
        description,
        role_arn,
        targets,
        tags,
    };
    bus.rules.insert(name, rule);
    Ok(json!({"RuleArn": arn}))
}

/// The rule `key` of a request names, on the bus it names.
fn rule_mut<'s>(state: &'s mut State, b: &JsonBody, key: &str) -> Result<&'s mut Rule, AwsError> {
    let name = rule_name(b, key)?;
    let bus = state.bus_mut(bus_param(b)?)?;
    let bus_name = bus.name.clone();
    bus.rules
        .get_mut(name)
        .ok_or_else(|| not_found(name, &bus_name))
}

fn describe_rule(state: &mut State, b: &JsonBody) -> R {
    let r = rule_mut(state, b, "Name")?;
    let mut v = rule_json(r);
    v["CreatedBy"] = json!(ACCOUNT_ID);
    Ok(v)
}

fn list_rules(state: &mut State, b: &JsonBody) -> R {
    let bus = state.bus(bus_param(b)?)?;
    let prefix = b.str("NamePrefix")?.unwrap_or("");
    let all: Vec<Value> = bus
        .rules
        .values()
        .filter(|r| r.name.starts_with(prefix))
        .map(rule_json)
        .collect();
    paged(b, "Rules", all)
}

fn delete_rule(state: &mut State, b: &JsonBody) -> R {
    let name = rule_name(b, "Name")?;
    let bus = state.bus_mut(bus_param(b)?)?;
    let force = b.bool("Force")?.unwrap_or(false);
    match bus.rules.get(name) {
        // Deleting a rule that does not exist succeeds, as on AWS.
        None => {}
        Some(r) if !r.targets.is_empty() && !force => {
            return Err(validation("Rule can't be deleted since it has targets."));
        }
        Some(_) => {
            bus.rules.remove(name);
        }
    }
    Ok(json!({}))
}

fn enable_or_disable_rule(state: &mut State, ctx: &RequestCtx, b: &JsonBody) -> R {
    let r = rule_mut(state, b, "Name")?;
    r.enabled = ctx.op == "EnableRule";
    Ok(json!({}))
}

fn input_transformer(t: &JsonBody, id: &str) -> Result<Option<InputTransformer>, AwsError> {
    let Some(it) = t.object("InputTransformer")? else {
        return Ok(None);
    };
    let it = JsonBody(it.clone());
    let template = it.required_str("InputTemplate")?.to_owned();
    let paths = it.object("InputPathsMap")?.cloned().unwrap_or_default();
    if paths.len() > 100 {
        return Err(validation(format!(
            "Target {id}: InputPathsMap may hold at most 100 entries."
        )));
    }
    for (k, p) in &paths {
        if k.starts_with("aws.events.") {
            return Err(validation(format!(
                "Target {id}: InputPathsMap key {k} is reserved: keys starting with aws.events. are predefined."
            )));
        }
        let ok = p.as_str().is_some_and(|p| p.trim().starts_with('$'));
        if !ok {
            return Err(validation(format!(
                "Target {id}: InputPathsMap value for {k} must be a JSON path starting with $."
            )));
        }
    }
    let t = InputTransformer { paths, template };
    if let Some(name) = t.unknown_placeholder() {
        return Err(validation(format!(
            "InputTemplate for target {id} contains invalid placeholder {name}."
        )));
    }
    Ok(Some(t))
}

fn put_targets(state: &mut State, b: &JsonBody) -> R {
    let targets = b.array("Targets")?;
    if targets.is_empty() || targets.len() > 10 {
        return Err(validation(
            "1 validation error detected: Value at 'targets' failed to satisfy constraint: Member must have length between 1 and 10",
        ));
    }
    for (n, t) in targets.iter().enumerate() {
        if let Some(id) = t.get("Id").and_then(Value::as_str) {
            target_id(id, n + 1)?;
        }
    }
    let r = rule_mut(state, b, "Rule")?;
    let mut failed = Vec::new();
    let mut parsed = Vec::new();
    for t in targets {
        let Value::Object(m) = t else {
            return Err(validation("Each target must be an object."));
        };
        let t = JsonBody(m.clone());
        let id = t.required_str("Id")?.to_owned();
        let arn = t.required_str("Arn")?.to_owned();
        let service = arn.split(':').nth(2).unwrap_or("");
        if !matches!(service, "sqs" | "sns" | "lambda") {
            failed.push(json!({"TargetId": id, "ErrorCode": "ValidationException", "ErrorMessage": format!("Target {arn}: only SQS, SNS and Lambda targets are supported by the lifehook sandbox.")}));
            continue;
        }
        let input = t.str("Input")?.map(str::to_owned);
        if let Some(i) = &input
            && serde_json::from_str::<Value>(i).is_err()
        {
            return Err(validation(format!("Target {id}: Input is not valid JSON.")));
        }
        let input_path = t.str("InputPath")?.map(str::to_owned);
        let input_transformer = input_transformer(&t, &id)?;
        let given = [
            input.is_some(),
            input_path.is_some(),
            input_transformer.is_some(),
        ];
        if given.iter().filter(|g| **g).count() > 1 {
            return Err(validation(format!(
                "Only one of Input, InputPath, or InputTransformer must be provided for target {id}."
            )));
        }
        parsed.push(Target {
            id,
            arn,
            input,
            input_path,
            input_transformer,
            role_arn: t.str("RoleArn")?.map(str::to_owned),
        });
    }
    let new = parsed
        .iter()
        .filter(|t| !r.targets.iter().any(|x| x.id == t.id))
        .count();
    if r.targets.len() + new > MAX_TARGETS {
        return Err(AwsError::new(
            400,
            "LimitExceededException",
            "The requested resource exceeds the maximum number allowed.",
        ));
    }
    for t in parsed {
        match r.targets.iter_mut().find(|x| x.id == t.id) {
            Some(slot) => *slot = t,
            None => r.targets.push(t),
        }
    }
    Ok(json!({"FailedEntryCount": failed.len(), "FailedEntries": failed}))
}

fn target_json(t: &Target) -> Value {
    let mut v = json!({"Id": t.id, "Arn": t.arn});
    if let Some(i) = &t.input {
        v["Input"] = json!(i);
    }
    if let Some(i) = &t.input_path {
        v["InputPath"] = json!(i);
    }
    if let Some(i) = &t.input_transformer {
        v["InputTransformer"] = json!({"InputPathsMap": i.paths, "InputTemplate": i.template});
    }
    if let Some(i) = &t.role_arn {
        v["RoleArn"] = json!(i);
    }
    v
}

fn list_targets_by_rule(state: &mut State, b: &JsonBody) -> R {
    let r = rule_mut(state, b, "Rule")?;
    let targets = r.targets.iter().map(target_json).collect();
    paged(b, "Targets", targets)
}

fn list_rule_names_by_target(state: &mut State, b: &JsonBody) -> R {
    let arn = b.required_str("TargetArn")?;
    let bus = state.bus(bus_param(b)?)?;
    let names = bus
        .rules
        .values()
        .filter(|r| r.targets.iter().any(|t| t.arn == arn))
        .map(|r| json!(r.name))
        .collect();
    paged(b, "RuleNames", names)
}

fn remove_targets(state: &mut State, b: &JsonBody) -> R {
    let ids = b.str_list("Ids")?;
    let r = rule_mut(state, b, "Rule")?;
    let mut failed = Vec::new();
    for id in ids {
        let before = r.targets.len();
        r.targets.retain(|t| t.id != id);
        if r.targets.len() == before {
            failed.push(json!({"TargetId": id, "ErrorCode": "ResourceNotFoundException", "ErrorMessage": format!("Target {id} does not exist.")}));
        }
    }
    Ok(json!({"FailedEntryCount": failed.len(), "FailedEntries": failed}))
}

/// `Tags: [{"Key", "Value"}]` of a request.
fn tags_param(b: &JsonBody) -> Result<BTreeMap<String, String>, AwsError> {
    let Some(Value::Array(tags)) = b.get("Tags") else {
        return Ok(BTreeMap::new());
    };
    tags.iter()
        .map(|t| {
            let k = t.get("Key").and_then(Value::as_str);
            let v = t.get("Value").and_then(Value::as_str);
            match (k, v) {
                (Some(k), Some(v)) if !k.is_empty() && k.len() <= 128 && v.len() <= 256 => {
                    Ok((k.to_owned(), v.to_owned()))
                }
                _ => Err(validation(
                    "Each tag needs a Key (1-128 characters) and a Value (up to 256 characters).",
                )),
            }
        })
        .collect()
}

/// TagResource, UntagResource and ListTagsForResource on a bus
/// (`event-bus/<name>`) or a rule (`rule/<name>`, `rule/<bus>/<name>`).
fn tagging(state: &mut State, ctx: &RequestCtx, b: &JsonBody) -> R {
    let arn = b.required_str("ResourceARN")?;
    let resource = arn
        .strip_prefix(&format!("arn:aws:events:{}:{ACCOUNT_ID}:", ctx.region))
        .ok_or_else(|| validation(format!("Provided ARN {arn} is not valid.")))?;
    let tags = if let Some(bus) = resource.strip_prefix("event-bus/") {
        &mut state.bus_mut(bus)?.tags
    } else if let Some(rule) = resource.strip_prefix("rule/") {
        let (bus, rule) = rule.split_once('/').unwrap_or((DEFAULT_BUS, rule));
        let bus = state.bus_mut(bus)?;
        let bus_name = bus.name.clone();
        &mut bus
            .rules
            .get_mut(rule)
            .ok_or_else(|| not_found(rule, &bus_name))?
            .tags
    } else {
        return Err(validation(format!("Provided ARN {arn} is not valid.")));
    };
    match ctx.op.as_str() {
        "TagResource" => tags.extend(tags_param(b)?),
        "UntagResource" => {
            for k in b.str_list("TagKeys")? {
                tags.remove(&k);
            }
        }
        _ => {
            let list: Vec<Value> = tags
                .iter()
                .map(|(k, v)| json!({"Key": k, "Value": v}))
                .collect();
            return Ok(json!({"Tags": list}));
        }
    }
    Ok(json!({}))
}

/// The fields TestEventPattern requires of an event (its `Event` parameter).
const REQUIRED_EVENT_FIELDS: [&str; 6] =
    ["id", "account", "source", "time", "region", "detail-type"];

fn test_event_pattern(b: &JsonBody) -> R {
    let text = b.required_str("EventPattern")?;
    let event = b.required_str("Event")?;
    let p = pattern::parse(text).map_err(invalid_pattern)?;
    let e: Value = serde_json::from_str(event)
        .ok()
        .filter(|e: &Value| {
            e.as_object()
                .is_some_and(|o| REQUIRED_EVENT_FIELDS.iter().all(|k| o.contains_key(*k)))
        })
        .ok_or_else(|| validation("Parameter Event is not valid."))?;
    Ok(json!({"Result": p.matches(&e)}))
}

/// An entry as AWS's validation message shows it (the service's Java `toString`):
/// `PutEventsRequestEntry(time=null, source=..., resources=[a, b], ...)`.
fn java_entry_text(e: &Value) -> String {
    let field = |k: &str| match e.get(k) {
        None | Some(Value::Null) => "null".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => {
            clock::to_datetime(n.as_f64().map_or(0, |secs| (secs * 1000.0) as u64))
                .format("%a %b %d %H:%M:%S UTC %Y")
                .to_string()
        }
        Some(Value::Array(a)) => format!(
            "[{}]",
            a.iter()
                .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Some(v) => v.to_string(),
    };
    format!(
        "PutEventsRequestEntry(time={}, source={}, resources={}, detailType={}, detail={}, eventBusName={}, traceHeader={}, kmsKeyIdentifier=null, internalMetadata=null)",
        field("Time"),
        field("Source"),
        field("Resources"),
        field("DetailType"),
        field("Detail"),
        field("EventBusName"),
        field("TraceHeader"),
    )
}

/// Largest PutEvents request (the entries' sizes summed), bytes.
const MAX_PUT_EVENTS_BYTES: usize = 256 * 1024;

/// An entry's size as the EventBridge user guide counts it ("Calculating PutEvents event
/// entry size"): Source, DetailType and Detail as UTF-8, each resource, and 14 bytes for
/// a Time.
fn entry_size(e: &Value) -> usize {
    let s = |k: &str| e.get(k).and_then(Value::as_str).map_or(0, str::len);
    let resources: usize = e.get("Resources").and_then(Value::as_array).map_or(0, |a| {
        a.iter().filter_map(Value::as_str).map(str::len).sum()
    });
    let time = if e.get("Time").is_some() { 14 } else { 0 };
    s("Source") + s("DetailType") + s("Detail") + resources + time
}

fn put_events(world: &mut World, ctx: &RequestCtx, b: &JsonBody) -> R {
    let entries = b.array("Entries")?.to_vec();
    if entries.is_empty() || entries.len() > 10 {
        let bound = if entries.is_empty() {
            "greater than or equal to 1"
        } else {
            "less than or equal to 10"
        };
        let listed: Vec<String> = entries.iter().map(java_entry_text).collect();
        return Err(validation(format!(
            "1 validation error detected: Value '[{}]' at 'entries' failed to satisfy constraint: Member must have length {bound}",
            listed.join(", ")
        )));
    }
    if entries.iter().map(entry_size).sum::<usize>() > MAX_PUT_EVENTS_BYTES {
        return Err(validation(
            "Total size of the entries in the request is over the limit.",
        ));
    }
    let mut results = Vec::new();
    let mut failed = 0;
    for e in &entries {
        match event_from_entry(world, &ctx.region, e) {
            Ok((bus, event)) => {
                let id = event["id"].clone();
                put_event_on_bus(world, &ctx.region, &bus, &event);
                results.push(json!({"EventId": id}));
            }
            Err((code, msg)) => {
                failed += 1;
                results.push(json!({"ErrorCode": code, "ErrorMessage": msg}));
            }
        }
    }
    Ok(json!({"FailedEntryCount": failed, "Entries": results}))
}

/// Builds the full event of one PutEvents entry, or the entry's error.
fn event_from_entry(
    world: &World,
    region: &str,
    e: &Value,
) -> Result<(String, Value), (String, String)> {
    let s = |k: &str| e.get(k).and_then(Value::as_str);
    let bad = |m: &str| ("InvalidArgument".to_string(), m.to_string());
    let source = s("Source").filter(|x| !x.is_empty()).ok_or_else(|| {
        bad("Parameter Source is not valid. Reason: Source is a required argument.")
    })?;
    let detail_type = s("DetailType").filter(|x| !x.is_empty()).ok_or_else(|| {
        bad("Parameter DetailType is not valid. Reason: DetailType is a required argument.")
    })?;
    let detail_text = s("Detail").ok_or_else(|| {
        bad("Parameter Detail is not valid. Reason: Detail is a required argument.")
    })?;
    let detail: Value = serde_json::from_str(detail_text)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| {
            (
                "MalformedDetail".to_string(),
                "Detail is malformed.".to_string(),
            )
        })?;
    // An entry for a bus that does not exist is accepted and dropped, as on AWS.
    let bus = bus_name(s("EventBusName").unwrap_or(DEFAULT_BUS)).to_owned();
    let resources: Vec<Value> = e
        .get("Resources")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let time = match e.get("Time") {
        // The SDK sends epoch seconds.
        Some(Value::Number(n)) => n
            .as_f64()
            .map(|secs| clock::iso_secs((secs * 1000.0) as u64))
            .unwrap_or_else(|| clock::iso_secs(world.now)),
        Some(Value::String(t)) => t.clone(),
        _ => clock::iso_secs(world.now),
    };
    Ok((
        bus,
        json!({
            "version": "0",
            "id": ids::uuid(),
            "detail-type": detail_type,
            "source": source,
            "account": ACCOUNT_ID,
            "time": time,
            "region": region,
            "resources": resources,
            "detail": detail,
        }),
    ))
}
