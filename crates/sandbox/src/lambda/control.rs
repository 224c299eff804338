//! The `/_sandbox/lambda/…` control routes and the Lambda part of `GET /_sandbox/state`.

use super::*;
use http::Method;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateFunction {
    #[serde(default)]
    region: Option<String>,
    name: String,
    #[serde(default)]
    timeout_secs: Option<u64>,
    #[serde(default)]
    max_retries: Option<u32>,
    /// Where the Runtime API listens (default `127.0.0.1:0`, an ephemeral loopback port).
    #[serde(default)]
    runtime_listen: Option<SocketAddr>,
    #[serde(default)]
    sqs_event_source: Option<SqsSourceSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SqsSourceSpec {
    /// The queue's name, URL or ARN (in the function's region).
    queue: String,
    #[serde(default)]
    batch_size: Option<usize>,
    #[serde(default)]
    report_batch_item_failures: bool,
    #[serde(default)]
    access_key_id: Option<String>,
}

/// Largest (and default) batch of an SQS event source.
pub(crate) const MAX_SQS_BATCH: usize = 10;

use crate::control::ControlResult;

/// `/_sandbox/lambda/…`:
///
/// | method | route | |
/// |---|---|---|
/// | POST | `/lambda/functions` | create a function (starts its Runtime API listener) |
/// | GET | `/lambda/functions` | every function with its invocations |
/// | GET | `/lambda/functions/<name or ARN>` | one function with its invocations |
/// | DELETE | `/lambda/functions/<name or ARN>` | delete it (stops its listener) |
/// | POST | `/lambda/functions/<name or ARN>/invocations` | queue an invocation with the body as payload |
pub(crate) fn control(
    sb: &Arc<Sandbox>,
    method: &Method,
    route: &str,
    body: &[u8],
) -> ControlResult {
    let rest = route.strip_prefix("/lambda/functions").unwrap_or("");
    if !route.starts_with("/lambda/functions") {
        return Err(crate::control::no_endpoint(method, route));
    }
    let rest = rest.trim_start_matches('/');
    let (target, sub) = match rest.split_once('/') {
        Some((t, s)) => (t, Some(s)),
        None => (rest, None),
    };
    match (method.clone(), target, sub) {
        (http::Method::POST, "", None) => create(sb, body),
        (http::Method::GET, "", None) => list_functions(sb),
        (http::Method::GET, t, None) => get_function(sb, t),
        (http::Method::DELETE, t, None) => delete_function(sb, t),
        (http::Method::POST, t, Some("invocations")) => invoke_function(sb, t, body),
        _ => Err(crate::control::no_endpoint(method, route)),
    }
}

/// `GET /lambda/functions`: every function with its invocations.
fn list_functions(sb: &Sandbox) -> ControlResult {
    let w = sb.lock();
    let now = w.now;
    let functions: Vec<Value> = w
        .regions
        .iter()
        .flat_map(|(r, reg)| {
            reg.lambda
                .functions
                .values()
                .map(move |f| function_json(r, f, now))
        })
        .collect();
    Ok(json!({ "functions": functions }))
}

/// `GET /lambda/functions/<name or ARN>`.
fn get_function(sb: &Sandbox, t: &str) -> ControlResult {
    let mut w = sb.lock();
    let now = w.now;
    let (region, name) = locate(&mut w, t)?;
    let f = w
        .region(&region)
        .lambda
        .functions
        .get(&name)
        .ok_or_else(|| not_found(t))?;
    Ok(function_json(&region, f, now))
}

/// `DELETE /lambda/functions/<name or ARN>`: stops its listener.
fn delete_function(sb: &Sandbox, t: &str) -> ControlResult {
    let mut w = sb.lock();
    let (region, name) = locate(&mut w, t)?;
    w.region(&region).lambda.functions.remove(&name);
    Ok(json!({"deleted": function_arn(&region, &name)}))
}

/// `POST /lambda/functions/<name or ARN>/invocations`: queues an invocation of the body.
fn invoke_function(sb: &Sandbox, t: &str, body: &[u8]) -> ControlResult {
    let payload = std::str::from_utf8(body)
        .map_err(|_| (400, "the payload must be UTF-8 JSON".to_owned()))?;
    if serde_json::from_str::<Value>(payload).is_err() {
        return Err((400, "the payload must be a JSON document".to_owned()));
    }
    let mut w = sb.lock();
    let (region, name) = locate(&mut w, t)?;
    let id = invoke(&mut w, &region, &name, payload, "control").map_err(|e| match e {
        InvokeError::NoSuchFunction => not_found(t),
        InvokeError::Refused(m) => (400, m),
    })?;
    drop(w);
    sb.poke();
    Ok(json!({"RequestId": id, "StatusCode": 202}))
}

fn not_found(what: &str) -> (u16, String) {
    (404, format!("Function not found: {what}"))
}

/// (region, name) of a function named by ARN, or by name in whichever region has it
/// (the default region first).
fn locate(w: &mut World, target: &str) -> Result<(String, String), (u16, String)> {
    if let Some((region, name)) = parse_arn(target) {
        return Ok((region.to_owned(), name.to_owned()));
    }
    if !valid_name(target) {
        return Err((
            400,
            format!("{target:?} is neither a function name nor a function ARN"),
        ));
    }
    if w.regions
        .get(DEFAULT_REGION)
        .is_some_and(|r| r.lambda.functions.contains_key(target))
    {
        return Ok((DEFAULT_REGION.to_owned(), target.to_owned()));
    }
    w.regions
        .iter()
        .find(|(_, r)| r.lambda.functions.contains_key(target))
        .map(|(region, _)| (region.clone(), target.to_owned()))
        .ok_or_else(|| not_found(target))
}

fn create(sb: &Arc<Sandbox>, body: &[u8]) -> ControlResult {
    let c: CreateFunction = crate::control::json_body(body)?;
    let region = c.region.unwrap_or_else(|| DEFAULT_REGION.to_owned());
    crate::control::check_region(&region)?;
    if !valid_name(&c.name) {
        return Err((
            400,
            format!(
                "invalid function name {:?}: 1 to 64 letters, digits, hyphens and underscores",
                c.name
            ),
        ));
    }
    let timeout_secs = c.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS);
    if !(1..=MAX_TIMEOUT_SECS).contains(&timeout_secs) {
        return Err((
            400,
            format!("timeout_secs must be between 1 and {MAX_TIMEOUT_SECS}, got {timeout_secs}"),
        ));
    }
    let max_retries = c.max_retries.unwrap_or(DEFAULT_MAX_RETRIES);
    if max_retries > DEFAULT_MAX_RETRIES {
        return Err((
            400,
            format!("max_retries must be between 0 and {DEFAULT_MAX_RETRIES}, got {max_retries}"),
        ));
    }
    if sb
        .lock()
        .region(&region)
        .lambda
        .functions
        .contains_key(&c.name)
    {
        return Err((
            409,
            format!(
                "ResourceConflictException: Function already exist: {}",
                c.name
            ),
        ));
    }
    let sqs_source = match c.sqs_event_source {
        None => None,
        Some(spec) => Some(sqs_source(sb, &region, spec)?),
    };
    let listen = c
        .runtime_listen
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let std_listener = std::net::TcpListener::bind(listen).map_err(|e| {
        (
            400,
            format!("cannot listen on {listen} for the Runtime API: {e}"),
        )
    })?;
    let runtime_api = std_listener
        .local_addr()
        .map_err(|e| (500, format!("Runtime API listener: {e}")))?;
    std_listener
        .set_nonblocking(true)
        .map_err(|e| (500, format!("Runtime API listener: {e}")))?;
    let listener = tokio::net::TcpListener::from_std(std_listener)
        .map_err(|e| (500, format!("Runtime API listener: {e}")))?;
    let id = ids::uuid();
    let rt = Rt {
        sb: Arc::downgrade(sb),
        region: region.clone(),
        name: c.name.clone(),
        id: id.clone(),
    };
    let app = runtime_router(rt);
    let server = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "Lambda Runtime API listener stopped");
        }
    });
    let mut w = sb.lock();
    let now = w.now;
    let functions = &mut w.region(&region).lambda.functions;
    if functions.contains_key(&c.name) {
        // Created concurrently: keep the first (dropping this one stops its listener).
        server.abort();
        return Err((
            409,
            format!(
                "ResourceConflictException: Function already exist: {}",
                c.name
            ),
        ));
    }
    let f = Function {
        id,
        name: c.name.clone(),
        arn: function_arn(&region, &c.name),
        timeout_secs,
        max_retries,
        runtime_api,
        created: now,
        notify: Arc::new(Notify::new()),
        queue: VecDeque::new(),
        invocations: Vec::new(),
        init_errors: Vec::new(),
        sqs_source,
        server,
    };
    tracing::info!(function = %f.arn, runtime_api = %runtime_api, "Lambda function created");
    let v = function_json(&region, &f, now);
    functions.insert(c.name, f);
    Ok(v)
}

/// Checks an `sqs_event_source`: the queue exists in the function's region, the batch
/// size is 1 to [`MAX_SQS_BATCH`].
fn sqs_source(
    sb: &Arc<Sandbox>,
    region: &str,
    spec: SqsSourceSpec,
) -> Result<SqsSource, (u16, String)> {
    let q = spec.queue.trim();
    let (q_region, name) = match crate::sqs::parse_arn(q) {
        Some((r, n)) => (r.to_owned(), n.to_owned()),
        None => (
            region.to_owned(),
            crate::sqs::name_from_url(q).unwrap_or_default().to_owned(),
        ),
    };
    if !q_region.is_empty() && q_region != region {
        return Err((
            400,
            format!("sqs_event_source.queue {q:?} is in {q_region}; the function is in {region}"),
        ));
    }
    if name.is_empty() || !crate::sqs::queue_exists(&mut sb.lock(), region, &name) {
        return Err((
            400,
            format!("sqs_event_source.queue {q:?}: no such queue in {region}"),
        ));
    }
    let batch_size = spec.batch_size.unwrap_or(MAX_SQS_BATCH);
    if !(1..=MAX_SQS_BATCH).contains(&batch_size) {
        return Err((
            400,
            format!(
                "sqs_event_source.batch_size must be between 1 and {MAX_SQS_BATCH}, got {batch_size}"
            ),
        ));
    }
    Ok(SqsSource {
        queue_arn: format!("arn:aws:sqs:{region}:{ACCOUNT_ID}:{name}"),
        queue: name,
        batch_size,
        report_batch_item_failures: spec.report_batch_item_failures,
        access_key_id: spec.access_key_id,
        batch: None,
        deleted: 0,
        failed_batches: 0,
    })
}

/// The environment a runtime process serving `f` needs (`lambda_runtime`'s
/// `Config::from_env` requires the first four).
fn runtime_env(region: &str, f: &Function) -> Value {
    json!({
        "AWS_LAMBDA_RUNTIME_API": f.runtime_api.to_string(),
        "AWS_LAMBDA_FUNCTION_NAME": f.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": MEMORY_SIZE_MB.to_string(),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": format!("/aws/lambda/{}", f.name),
        "AWS_LAMBDA_LOG_STREAM_NAME": "sandbox",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
    })
}

fn invocation_json(i: &Invocation) -> Value {
    let mut v = json!({
        "RequestId": i.request_id,
        "source": i.source,
        "status": i.status.as_str(),
        "attempts": i.attempts,
        "enqueued": iso_millis(i.enqueued),
        "payload": as_json(&i.payload),
        "errors": i.errors.iter().map(|e| json!({
            "attempt": e.attempt,
            "time": iso_millis(e.at),
            "errorType": e.error_type,
            "payload": as_json(&e.payload),
        })).collect::<Vec<_>>(),
        "trace_id": i.trace_id,
    });
    if let Some(d) = i.deadline {
        v["deadline"] = json!(iso_millis(d));
    }
    if let Some(r) = i.retry_at {
        v["retry_at"] = json!(iso_millis(r));
    }
    if let Some(f) = i.finished {
        v["finished"] = json!(iso_millis(f));
    }
    if let Some(r) = &i.response {
        v["response"] = as_json(r);
    }
    v
}

fn function_json(region: &str, f: &Function, _now: Millis) -> Value {
    let count = |s: Status| f.invocations.iter().filter(|i| i.status == s).count();
    json!({
        "FunctionName": f.name,
        "FunctionArn": f.arn,
        "region": region,
        "runtime_api": f.runtime_api.to_string(),
        "timeout_secs": f.timeout_secs,
        "max_retries": f.max_retries,
        "created": iso_millis(f.created),
        "env": runtime_env(region, f),
        "counts": {
            "pending": count(Status::Pending),
            "in_flight": count(Status::InFlight),
            "retry_scheduled": count(Status::RetryScheduled),
            "succeeded": count(Status::Succeeded),
            "failed": count(Status::Failed),
        },
        "invocations": f.invocations.iter().map(invocation_json).collect::<Vec<_>>(),
        "init_errors": f.init_errors,
        "sqs_event_source": f.sqs_source.as_ref().map(|s| json!({
            "queue_arn": s.queue_arn,
            "batch_size": s.batch_size,
            "report_batch_item_failures": s.report_batch_item_failures,
            "batch_in_flight": s.batch.as_ref().map(|(id, msgs)| json!({
                "RequestId": id,
                "messages": msgs.len(),
            })),
            "deleted": s.deleted,
            "failed_batches": s.failed_batches,
        })),
    })
}

/// The control API's view of a region's functions (in `GET /_sandbox/state`): per name,
/// its ARN, Runtime API address and invocation counts.
pub(crate) fn state_json(region: &str, state: &State, now: Millis) -> Value {
    let m: serde_json::Map<String, Value> = state
        .functions
        .values()
        .map(|f| {
            let mut v = function_json(region, f, now);
            if let Value::Object(o) = &mut v {
                o.remove("invocations");
                o.remove("env");
            }
            (f.name.clone(), v)
        })
        .collect();
    Value::Object(m)
}
