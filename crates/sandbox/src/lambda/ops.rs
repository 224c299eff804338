//! The Lambda Runtime API (one listener per function): one handler per route.

use super::*;

pub(super) use crate::control::respond as runtime_json;

fn accepted() -> Response {
    runtime_json(StatusCode::ACCEPTED, json!({"status": "OK"}))
}

pub(super) fn runtime_router(rt: Rt) -> Router {
    Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(invocation_response),
        )
        .route(
            "/2018-06-01/runtime/invocation/{id}/error",
            post(invocation_error),
        )
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .fallback(|req: axum::extract::Request| async move {
            runtime_json(
                StatusCode::NOT_FOUND,
                json!({"errorType": "NotFound", "errorMessage": format!("The sandbox's Runtime API has no {} {}", req.method(), req.uri().path())}),
            )
        })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_RUNTIME_BODY_BYTES))
        .with_state(rt)
}

/// `GET /2018-06-01/runtime/invocation/next`: waits for an invocation (as long as it
/// takes, like the real API), never holding the world lock while waiting.
async fn next(AxState(rt): AxState<Rt>) -> Response {
    loop {
        let notify = {
            let Some(sb) = rt.sb.upgrade() else {
                return RuntimeError::Gone.into_response();
            };
            let mut w = sb.lock();
            let (notify, queue) = match function_mut(&mut w, &rt) {
                Ok(f) => (
                    f.notify.clone(),
                    f.sqs_source.as_ref().map(|s| s.queue.clone()),
                ),
                Err(e) => return e.into_response(),
            };
            // A message sent to the event source's queue (or visible again) wakes the poll.
            let queue_notify = queue
                .and_then(|q| crate::sqs::queue_notify(&mut w, &rt.region, &q))
                .unwrap_or_else(|| Arc::new(Notify::new()));
            (notify, queue_notify)
        };
        let (notify, queue_notify) = notify;
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let queue_notified = queue_notify.notified();
        tokio::pin!(queue_notified);
        queue_notified.as_mut().enable();
        let got = {
            let Some(sb) = rt.sb.upgrade() else {
                return RuntimeError::Gone.into_response();
            };
            let r = take_next(&mut sb.lock(), &rt);
            sb.poke();
            r
        };
        match got {
            Ok(Some(n)) => return next_response(n),
            Ok(None) => {}
            Err(e) => return e.into_response(),
        }
        tokio::select! {
            () = &mut notified => {}
            () = &mut queue_notified => {}
        }
    }
}

fn next_response(n: Next) -> Response {
    let mut r = Response::new(Body::from(n.payload));
    *r.status_mut() = StatusCode::OK;
    let h = r.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    for (k, v) in [
        ("lambda-runtime-aws-request-id", n.request_id),
        ("lambda-runtime-deadline-ms", n.deadline_ms.to_string()),
        ("lambda-runtime-invoked-function-arn", n.arn),
        ("lambda-runtime-trace-id", n.trace_id),
    ] {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    }
    r
}

/// The in-flight invocation `id` of `rt`'s function, or the Runtime API's error.
fn in_flight<'w>(
    world: &'w mut World,
    rt: &Rt,
    id: &str,
) -> Result<&'w mut Invocation, RuntimeError> {
    let f = function_mut(world, rt)?;
    let inv = f
        .invocations
        .iter_mut()
        .find(|i| i.request_id == id)
        .ok_or_else(|| {
            RuntimeError::BadRequest("InvalidRequestID", format!("Invalid request ID: {id}"))
        })?;
    if inv.status != Status::InFlight {
        return Err(RuntimeError::BadRequest(
            "InvalidStateTransition",
            format!(
                "Invocation {id} is {}, not in flight: it was already answered or timed out",
                inv.status.as_str()
            ),
        ));
    }
    Ok(inv)
}

async fn invocation_response(
    AxState(rt): AxState<Rt>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let Some(sb) = rt.sb.upgrade() else {
        return RuntimeError::Gone.into_response();
    };
    let mut w = sb.lock();
    let now = w.now;
    let r = in_flight(&mut w, &rt, &id).map(|inv| {
        inv.status = Status::Succeeded;
        inv.finished = Some(now);
        inv.deadline = None;
        inv.response = Some(String::from_utf8_lossy(&body).into_owned());
    });
    match r {
        Ok(()) => {
            if let Ok(f) = function_mut(&mut w, &rt) {
                tracing::debug!(function = %f.arn, request_id = %id, "invocation succeeded");
                prune(f);
            }
            let answer = String::from_utf8_lossy(&body);
            finish_sqs_batch(Some(&sb), &mut w, &rt.region, &rt.name, &id, Some(&answer));
            drop(w);
            sb.poke();
            accepted()
        }
        Err(e) => e.into_response(),
    }
}

async fn invocation_error(
    AxState(rt): AxState<Rt>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(sb) = rt.sb.upgrade() else {
        return RuntimeError::Gone.into_response();
    };
    let mut w = sb.lock();
    if let Err(e) = in_flight(&mut w, &rt, &id) {
        return e.into_response();
    }
    let payload = String::from_utf8_lossy(&body).into_owned();
    let error_type = error_type(&headers, &payload);
    fail_attempt(&mut w, &rt.region, &rt.name, &id, &error_type, payload);
    drop(w);
    sb.poke();
    accepted()
}

/// The error's type: `Lambda-Runtime-Function-Error-Type`, else the body's `errorType`.
fn error_type(headers: &HeaderMap, payload: &str) -> String {
    headers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .or_else(|| {
            serde_json::from_str::<Value>(payload)
                .ok()?
                .get("errorType")?
                .as_str()
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "Unhandled".to_owned())
}

async fn init_error(AxState(rt): AxState<Rt>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(sb) = rt.sb.upgrade() else {
        return RuntimeError::Gone.into_response();
    };
    let mut w = sb.lock();
    let now = w.now;
    let payload = String::from_utf8_lossy(&body).into_owned();
    let error_type = error_type(&headers, &payload);
    match function_mut(&mut w, &rt) {
        Ok(f) => {
            tracing::warn!(function = %f.arn, error_type = %error_type, "runtime init error");
            if f.init_errors.len() >= 100 {
                f.init_errors.remove(0);
            }
            f.init_errors.push(json!({
                "time": iso_millis(now),
                "errorType": error_type,
                "payload": as_json(&payload),
            }));
            accepted()
        }
        Err(e) => e.into_response(),
    }
}
