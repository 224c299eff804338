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

pub(crate) fn run(world: &mut World, ctx: &RequestCtx, b: &JsonBody) -> R {
    if ctx.op == "PutEvents" {
        return put_events(world, ctx, b);
    }
    let state = &mut world.region(&ctx.region).events;
    match ctx.op.as_str() {
        "PutRule" => put_rule(state, ctx, b),
        "DescribeRule" => describe_rule(state, b),
        "ListRules" => list_rules(state, b),
        "DeleteRule" => delete_rule(state, b),
        "EnableRule" | "DisableRule" => enable_or_disable_rule(state, ctx, b),
        "PutTargets" => put_targets(state, b),
        "ListTargetsByRule" => list_targets_by_rule(state, b),
        "RemoveTargets" => remove_targets(state, b),
        "TestEventPattern" => test_event_pattern(b),
        op => Err(AwsError::unknown_operation(Service::Events, op)),
    }
}

fn put_rule(state: &mut State, ctx: &RequestCtx, b: &JsonBody) -> R {
    let name = rule_name(b, "Name")?.to_owned();
    check_bus(b, "EventBusName")?;
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
    let pattern: Value = serde_json::from_str(&text).map_err(|e| {
        AwsError::new(
            400,
            "InvalidEventPatternException",
            format!("Event pattern is not valid. Reason: {e}"),
        )
    })?;
    pattern::validate(&pattern).map_err(|e| {
        AwsError::new(
            400,
            "InvalidEventPatternException",
            format!("Event pattern is not valid. Reason: {e}"),
        )
    })?;
    let enabled = match b.str("State")? {
        None | Some("ENABLED") => true,
        Some("DISABLED") => false,
        Some(s) => {
            return Err(validation(format!(
                "1 validation error detected: Value '{s}' at 'state' failed to satisfy constraint: Member must satisfy enum value set: [ENABLED, DISABLED]"
            )));
        }
    };
    let arn = rule_arn(&ctx.region, &name);
    let description = b.str("Description")?.map(str::to_owned);
    let role_arn = b.str("RoleArn")?.map(str::to_owned);
    let targets = state
        .rules
        .get(&name)
        .map(|r| r.targets.clone())
        .unwrap_or_default();
    state.rules.insert(
        name.clone(),
        Rule {
            name,
            arn: arn.clone(),
            pattern_text: text,
            pattern,
            enabled,
            description,
            role_arn,
            targets,
        },
    );
    Ok(json!({"RuleArn": arn}))
}

fn describe_rule(state: &mut State, b: &JsonBody) -> R {
    let name = rule_name(b, "Name")?;
    check_bus(b, "EventBusName")?;
    let r = state.rules.get(name).ok_or_else(|| not_found(name))?;
    let mut v = rule_json(r);
    v["CreatedBy"] = json!(ACCOUNT_ID);
    Ok(v)
}

fn list_rules(state: &mut State, b: &JsonBody) -> R {
    check_bus(b, "EventBusName")?;
    let prefix = b.str("NamePrefix")?.unwrap_or("");
    let after = b.str("NextToken")?;
    let limit = b.int("Limit")?.unwrap_or(100).clamp(1, 100) as usize;
    let matching: Vec<&Rule> = state
        .rules
        .values()
        .filter(|r| r.name.starts_with(prefix))
        .filter(|r| after.is_none_or(|a| r.name.as_str() > a))
        .collect();
    let mut out = json!({
        "Rules": matching.iter().take(limit).map(|r| rule_json(r)).collect::<Vec<_>>()
    });
    if matching.len() > limit {
        out["NextToken"] = json!(matching[limit - 1].name);
    }
    Ok(out)
}

fn delete_rule(state: &mut State, b: &JsonBody) -> R {
    let name = rule_name(b, "Name")?;
    check_bus(b, "EventBusName")?;
    let force = b.bool("Force")?.unwrap_or(false);
    match state.rules.get(name) {
        // Deleting a rule that does not exist succeeds, as on AWS.
        None => {}
        Some(r) if !r.targets.is_empty() && !force => {
            return Err(validation("Rule can't be deleted since it has targets."));
        }
        Some(_) => {
            state.rules.remove(name);
        }
    }
    Ok(json!({}))
}

fn enable_or_disable_rule(state: &mut State, ctx: &RequestCtx, b: &JsonBody) -> R {
    let name = rule_name(b, "Name")?;
    check_bus(b, "EventBusName")?;
    let r = state.rules.get_mut(name).ok_or_else(|| not_found(name))?;
    r.enabled = ctx.op == "EnableRule";
    Ok(json!({}))
}

fn put_targets(state: &mut State, b: &JsonBody) -> R {
    let name = rule_name(b, "Rule")?.to_owned();
    check_bus(b, "EventBusName")?;
    let targets = b.array("Targets")?;
    if targets.is_empty() || targets.len() > 10 {
        return Err(validation(
            "1 validation error detected: Value at 'targets' failed to satisfy constraint: Member must have length between 1 and 10",
        ));
    }
    let r = state.rules.get_mut(&name).ok_or_else(|| not_found(&name))?;
    let mut failed = Vec::new();
    for t in targets {
        let Value::Object(m) = t else {
            return Err(validation("Each target must be an object."));
        };
        let t = JsonBody(m.clone());
        let id = t.required_str("Id")?.to_owned();
        let arn = t.required_str("Arn")?.to_owned();
        let fail = |code: &str, msg: String| json!({"TargetId": id, "ErrorCode": code, "ErrorMessage": msg});
        let service = arn.split(':').nth(2).unwrap_or("");
        if !matches!(service, "sqs" | "sns" | "lambda") {
            failed.push(fail(
                "ValidationException",
                format!("Target {arn}: only SQS, SNS and Lambda targets are supported by the lifehook sandbox."),
            ));
            continue;
        }
        let input = t.str("Input")?.map(str::to_owned);
        if let Some(i) = &input
            && serde_json::from_str::<Value>(i).is_err()
        {
            return Err(validation(format!("Target {id}: Input is not valid JSON.")));
        }
        let input_path = t.str("InputPath")?.map(str::to_owned);
        if input.is_some() && input_path.is_some() {
            return Err(validation(format!(
                "Target {id}: Only one of Input, InputPath, or InputTransformer may be specified."
            )));
        }
        if t.get("InputTransformer").is_some() {
            failed.push(fail(
                "ValidationException",
                "InputTransformer is not supported by the lifehook sandbox.".into(),
            ));
            continue;
        }
        if !r.targets.contains_key(&id) && r.targets.len() >= MAX_TARGETS {
            failed.push(fail(
                "LimitExceededException",
                format!("The requested resource exceeds the maximum number allowed ({MAX_TARGETS} targets per rule)."),
            ));
            continue;
        }
        r.targets.insert(
            id.clone(),
            Target {
                id,
                arn,
                input,
                input_path,
                role_arn: t.str("RoleArn")?.map(str::to_owned),
            },
        );
    }
    Ok(json!({"FailedEntryCount": failed.len(), "FailedEntries": failed}))
}

fn list_targets_by_rule(state: &mut State, b: &JsonBody) -> R {
    let name = rule_name(b, "Rule")?;
    check_bus(b, "EventBusName")?;
    let r = state.rules.get(name).ok_or_else(|| not_found(name))?;
    let targets: Vec<Value> = r
        .targets
        .values()
        .map(|t| {
            let mut v = json!({"Id": t.id, "Arn": t.arn});
            if let Some(i) = &t.input {
                v["Input"] = json!(i);
            }
            if let Some(i) = &t.input_path {
                v["InputPath"] = json!(i);
            }
            if let Some(i) = &t.role_arn {
                v["RoleArn"] = json!(i);
            }
            v
        })
        .collect();
    Ok(json!({"Targets": targets}))
}

fn remove_targets(state: &mut State, b: &JsonBody) -> R {
    let name = rule_name(b, "Rule")?.to_owned();
    check_bus(b, "EventBusName")?;
    let ids = b.str_list("Ids")?;
    let r = state.rules.get_mut(&name).ok_or_else(|| not_found(&name))?;
    let mut failed = Vec::new();
    for id in ids {
        if r.targets.remove(&id).is_none() {
            failed.push(json!({"TargetId": id, "ErrorCode": "ResourceNotFoundException", "ErrorMessage": format!("Target {id} does not exist.")}));
        }
    }
    Ok(json!({"FailedEntryCount": failed.len(), "FailedEntries": failed}))
}

fn test_event_pattern(b: &JsonBody) -> R {
    let text = b.required_str("EventPattern")?;
    let event = b.required_str("Event")?;
    let p: Value = serde_json::from_str(text)
        .ok()
        .filter(|p| pattern::validate(p).is_ok())
        .ok_or_else(|| {
            AwsError::new(
                400,
                "InvalidEventPatternException",
                "Event pattern is not valid.",
            )
        })?;
    let e: Value =
        serde_json::from_str(event).map_err(|_| validation("Parameter Event is not valid."))?;
    Ok(json!({"Result": pattern::matches(&p, &e)}))
}

fn put_events(world: &mut World, ctx: &RequestCtx, b: &JsonBody) -> R {
    let entries = b.array("Entries")?.to_vec();
    if entries.is_empty() || entries.len() > 10 {
        return Err(validation(
            "1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length between 1 and 10",
        ));
    }
    let mut results = Vec::new();
    let mut failed = 0;
    for e in &entries {
        match event_from_entry(world, &ctx.region, e) {
            Ok(event) => {
                let id = event["id"].clone();
                put_event(world, &ctx.region, &event);
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
fn event_from_entry(world: &World, region: &str, e: &Value) -> Result<Value, (String, String)> {
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
    if let Some(bus) = s("EventBusName")
        && bus != DEFAULT_BUS
        && !bus.ends_with(":event-bus/default")
    {
        return Err((
            "ResourceNotFoundException".into(),
            format!("Event bus {bus} does not exist."),
        ));
    }
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
    Ok(json!({
        "version": "0",
        "id": ids::uuid(),
        "detail-type": detail_type,
        "source": source,
        "account": ACCOUNT_ID,
        "time": time,
        "region": region,
        "resources": resources,
        "detail": detail,
    }))
}
