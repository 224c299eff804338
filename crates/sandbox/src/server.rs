//! One port for every service: how a request is recognised and dispatched.
//!
//! 1. `/_sandbox/...` is the control API.
//! 2. A request with `X-Amz-Target` is a JSON-protocol call; the prefix names the service
//!    (`AmazonSQS.`, `AWSEvents.`, `AmazonEC2ContainerServiceV20141113.`, `AmazonSSM.`).
//! 3. A form-encoded `POST` (or a `GET` with `Action=`) is a Query call; the service comes
//!    from the SigV4 credential scope (`Authorization`, or a presigned URL's
//!    `X-Amz-Credential`), else from `Version=`, else from a queue URL's path (SQS).
//! 4. Anything else that is signed for `s3`, or unsigned with a bucket-like path or a
//!    virtual-hosted bucket `Host`, is S3 (REST-XML, [`crate::s3`]); it is recognised
//!    before the body is read, so S3 may accept larger bodies.
//! 5. Anything else is refused with an AWS-shaped error.
//!
//! The region is read from the credential scope (`Credential=AKID/date/REGION/service/...`),
//! defaulting to `us-east-1`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use http_body_util::BodyExt;

use crate::protocol::json::JsonBody;
use crate::protocol::{AwsError, Input, Params, Reply, RequestCtx, Service, Wire};
use crate::{
    DEFAULT_REGION, Sandbox, autoscaling, control, ecs, events, faults, ids, s3, sns, sqs, ssm,
};

/// The largest request body accepted by the API services.
pub(crate) const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

#[derive(Clone)]
struct AppState {
    sandbox: Arc<Sandbox>,
    addr: SocketAddr,
}

pub(crate) fn router(sandbox: Arc<Sandbox>, addr: SocketAddr) -> Router {
    Router::new()
        .fallback(handle)
        .with_state(AppState { sandbox, addr })
}

async fn handle(State(app): State<AppState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let request_id = ids::uuid();
    // Instance metadata (IMDS) is plain HTTP, not an AWS protocol: route it first.
    if crate::imds::is_imds_path(parts.uri.path()) {
        return crate::imds::serve(
            &app.sandbox,
            &parts.method,
            parts.uri.path(),
            &parts.headers,
        );
    }
    if parts.uri.path().starts_with("/_sandbox/") || parts.uri.path() == "/_sandbox" {
        let bytes = match read_body(body).await {
            Ok(b) => b,
            Err(e) => return e.render(Service::AutoScaling, Wire::Query, &request_id),
        };
        return control::handle(&app.sandbox, &parts.method, parts.uri.path(), &bytes).await;
    }
    // S3 (REST-XML) is routed before the JSON/Query dispatch and reads larger bodies.
    if s3::is_s3_request(&parts.method, &parts.uri, &parts.headers) {
        let host = request_host(&parts.headers, app.addr);
        return s3::serve(&app.sandbox, parts, body, request_id, host).await;
    }
    let bytes = match read_body(body).await {
        Ok(b) => b,
        Err(e) => return e.render(guess_service(&parts.headers), Wire::Query, &request_id),
    };
    let host = request_host(&parts.headers, app.addr);
    let (ctx, input) = match recognise(
        &parts.method,
        &parts.uri,
        &parts.headers,
        &bytes,
        request_id.clone(),
        host,
    ) {
        Ok(x) => x,
        Err((Service::Sqs, _, e)) if sqs::is_unknown_operation(&e) => {
            return sqs::unknown_operation_response(&request_id);
        }
        Err((service, wire, e)) => return e.render(service, wire, &request_id),
    };
    tracing::debug!(service = %ctx.service, op = %ctx.op, region = %ctx.region, "request");
    app.sandbox.count_request(ctx.service, &ctx.op);
    if let Some(e) = crate::iam::authorize(
        &app.sandbox,
        &parts.headers,
        parts.uri.query(),
        ctx.service,
        &ctx.op,
        &ctx.region,
        |w| crate::iam::checks(w, &ctx, &input),
    ) {
        return e.render(ctx.service, ctx.wire, &ctx.request_id);
    }

    let verdict = {
        let mut rules = app.sandbox.faults();
        if rules.is_empty() {
            faults::Verdict::default()
        } else {
            faults::judge(
                &mut rules,
                ctx.service,
                &ctx.op,
                matches!(ctx.wire, Wire::Json { .. }),
            )
        }
    };
    if let Some(d) = verdict.delay {
        tokio::time::sleep(d).await;
    }
    if let Some(e) = verdict.error {
        return e.render(ctx.service, ctx.wire, &ctx.request_id);
    }

    let result = match ctx.service {
        Service::AutoScaling => {
            crate::protocol::answer_query(&app.sandbox, &ctx, input, autoscaling::dispatch)
        }
        Service::Sqs => {
            let trace = parts
                .headers
                .get("x-amzn-trace-id")
                .and_then(|v| v.to_str().ok());
            sqs::handle(&app.sandbox, &ctx, input, trace).await
        }
        Service::Sns => crate::protocol::answer_query(&app.sandbox, &ctx, input, sns::run),
        Service::Events => crate::protocol::answer_json(&app.sandbox, &ctx, input, events::run),
        Service::Ssm => crate::protocol::answer_json(&app.sandbox, &ctx, input, ssm::run),
        Service::Ecs => crate::protocol::answer_json(&app.sandbox, &ctx, input, ecs::run),
        Service::Ec2 => {
            crate::protocol::answer_query(&app.sandbox, &ctx, input, crate::ec2::dispatch)
        }
        Service::Elbv2 => {
            crate::protocol::answer_query(&app.sandbox, &ctx, input, crate::elbv2::dispatch)
        }
        Service::CloudFormation => {
            crate::protocol::answer_query(&app.sandbox, &ctx, input, crate::cloudformation::run)
        }
        Service::Sts => {
            let akid = crate::iam::access_key_id(&parts.headers, parts.uri.query());
            crate::sts::handle(&ctx, input, akid.as_deref().unwrap_or("anonymous"))
        }
        other => Err(AwsError::unknown_operation(other, &ctx.op)),
    };
    app.sandbox.poke();
    match result {
        Ok(reply) => render(reply, &ctx),
        Err(e) => e.render(ctx.service, ctx.wire, &ctx.request_id),
    }
}

/// The `Host` the client used, else the address the sandbox listens on.
fn request_host(headers: &HeaderMap, addr: SocketAddr) -> String {
    headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| addr.to_string())
}

fn render(reply: Reply, ctx: &RequestCtx) -> Response {
    let (ct, body) = match reply {
        Reply::Xml(s) => ("text/xml", s),
        Reply::Json(v) => {
            let ct = match ctx.wire {
                Wire::Json { version: "1.0" } => "application/x-amz-json-1.0",
                _ => "application/x-amz-json-1.1",
            };
            (ct, v.to_string())
        }
    };
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(ct));
    if let Ok(v) = HeaderValue::from_str(&ctx.request_id) {
        h.insert("x-amzn-requestid", v);
    }
    resp
}

async fn read_body(body: Body) -> Result<Bytes, AwsError> {
    let limited = http_body_util::Limited::new(body, MAX_BODY_BYTES);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Err(AwsError::new(
                    400,
                    "RequestEntityTooLarge",
                    format!(
                        "Request body is larger than the {MAX_BODY_BYTES} bytes the sandbox accepts"
                    ),
                ))
            } else {
                Err(AwsError::new(
                    400,
                    "IncompleteBody",
                    format!("Could not read the request body: {e}"),
                ))
            }
        }
    }
}

/// The credential scope of a SigV4 `Authorization` header, or of a presigned URL's
/// `X-Amz-Credential` (SigV4 query authentication, what SQS's queue-URL `GET`s use):
/// (region, service).
pub(crate) fn credential_scope(
    headers: &HeaderMap,
    query: Option<&str>,
) -> Option<(String, String)> {
    let from_header = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|a| a.to_str().ok())
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split([',', ' ']).next())
        .map(str::to_owned);
    let cred = from_header.or_else(|| {
        form_urlencoded::parse(query?.as_bytes())
            .find(|(k, _)| k == "X-Amz-Credential")
            .map(|(_, v)| v.into_owned())
    })?;
    let mut parts = cred.split('/');
    let _akid = parts.next()?;
    let _date = parts.next()?;
    let region = parts.next()?.to_owned();
    let service = parts.next()?.to_owned();
    Some((region, service))
}

fn guess_service(headers: &HeaderMap) -> Service {
    credential_scope(headers, None)
        .and_then(|(_, s)| Service::from_signing_name(&s))
        .unwrap_or(Service::AutoScaling)
}

/// Whether `path` is a queue URL's path, `/<12-digit account>/<queue name>`: SQS clients
/// may send Query requests to the queue URL itself without `Version` (Amazon SQS Developer
/// Guide, "Making Query API requests").
fn is_queue_path(path: &str) -> bool {
    let mut seg = path.trim_matches('/').split('/');
    matches!(
        (seg.next(), seg.next(), seg.next()),
        (Some(account), Some(name), None)
            if account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) && !name.is_empty()
    )
}

type Recognised = Result<(RequestCtx, Input), (Service, Wire, AwsError)>;

/// Works out the service, operation and region of a request, and decodes its input.
/// The links SNS hands out (`SubscribeURL`, `UnsubscribeURL`) are unsigned GETs without a
/// `Version`: their actions exist in SNS only.
fn sns_link_action(params: &Params) -> Option<Service> {
    matches!(
        params.get("Action"),
        Some("ConfirmSubscription" | "Unsubscribe")
    )
    .then_some(Service::Sns)
}

pub(crate) fn recognise(
    method: &Method,
    uri: &http::Uri,
    headers: &HeaderMap,
    body: &[u8],
    request_id: String,
    host: String,
) -> Recognised {
    let scope = credential_scope(headers, uri.query());
    let region = scope
        .as_ref()
        .map(|(r, _)| r.clone())
        .filter(|r| crate::world::is_region_name(r))
        .unwrap_or_else(|| DEFAULT_REGION.to_owned());
    let scope_service = scope
        .as_ref()
        .and_then(|(_, s)| Service::from_signing_name(s));
    let path = uri.path().to_owned();
    let ctx = |service, wire, op: String| RequestCtx {
        request_id: request_id.clone(),
        region: region.clone(),
        host: host.clone(),
        path: path.clone(),
        service,
        wire,
        op,
    };

    // JSON protocols.
    if let Some(target) = headers.get("x-amz-target") {
        let target = target.to_str().unwrap_or_default();
        let (prefix, op) = target.split_once('.').unwrap_or((target, ""));
        let service = Service::from_target_prefix(prefix)
            .or(scope_service)
            .unwrap_or(Service::Sqs);
        let version = if service == Service::Sqs {
            "1.0"
        } else {
            "1.1"
        };
        let wire = Wire::Json { version };
        if Service::from_target_prefix(prefix).is_none() || op.is_empty() {
            return Err((
                service,
                wire,
                AwsError::new(
                    400,
                    "UnknownOperationException",
                    format!("Unknown X-Amz-Target {target:?}"),
                ),
            ));
        }
        let body = JsonBody::parse(body).map_err(|e| (service, wire, e))?;
        return Ok((ctx(service, wire, op.to_owned()), Input::Json(body)));
    }

    // Query protocols: form body, or the query string of a GET.
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let is_form = content_type.starts_with("application/x-www-form-urlencoded");
    let query_has_action = uri.query().is_some_and(|q| q.contains("Action="));
    if (*method == Method::POST && is_form) || query_has_action {
        let fallback = scope_service.unwrap_or(Service::AutoScaling);
        let fallback_wire = if fallback == Service::Ec2 {
            Wire::Ec2Query
        } else {
            Wire::Query
        };
        let mut params = Params::default();
        if let Some(q) = uri.query() {
            params = Params::parse(q.as_bytes()).map_err(|e| (fallback, fallback_wire, e))?;
        }
        if is_form {
            let body_params = Params::parse(body).map_err(|e| (fallback, fallback_wire, e))?;
            for (k, v) in body_params.iter() {
                params.insert(k, v);
            }
        }
        let service = scope_service
            .or_else(|| params.get("Version").and_then(Service::from_query_version))
            .or_else(|| sns_link_action(&params))
            .or_else(|| is_queue_path(&path).then_some(Service::Sqs))
            .unwrap_or(Service::AutoScaling);
        let wire = if service == Service::Ec2 {
            Wire::Ec2Query
        } else {
            Wire::Query
        };
        let Some(op) = params.get_nonempty("Action").map(str::to_owned) else {
            return Err((
                service,
                wire,
                AwsError::new(
                    400,
                    "MissingAction",
                    "The request must contain the parameter Action.",
                ),
            ));
        };
        if op.len() > 128 || !op.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err((
                service,
                wire,
                AwsError::new(400, "InvalidAction", "The action is not a valid name."),
            ));
        }
        return Ok((ctx(service, wire, op), Input::Query(params)));
    }

    let service = scope_service.unwrap_or(Service::AutoScaling);
    if service == Service::Sqs {
        return Err((service, Wire::Query, sqs::unknown_operation()));
    }
    let wire = match service {
        Service::S3 => Wire::RestXml,
        Service::Ec2 => Wire::Ec2Query,
        s if Service::from_target_prefix(match s {
            Service::Sqs => "AmazonSQS",
            Service::Events => "AWSEvents",
            Service::Ecs => "AmazonEC2ContainerServiceV20141113",
            Service::Ssm => "AmazonSSM",
            _ => "",
        })
        .is_some() =>
        {
            Wire::Json {
                version: if s == Service::Sqs { "1.0" } else { "1.1" },
            }
        }
        _ => Wire::Query,
    };
    Err((
        service,
        wire,
        AwsError::new(
            400,
            "MissingAction",
            format!(
                "Cannot tell which operation this is: {method} {} with content-type {content_type:?} carries neither X-Amz-Target nor Action",
                uri.path()
            ),
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    const AUTH: &str = "AWS4-HMAC-SHA256 Credential=test/20261122/eu-west-1/autoscaling/aws4_request, SignedHeaders=host, Signature=x";

    #[test]
    fn query_by_scope() {
        let h = headers(&[
            ("authorization", AUTH),
            ("content-type", "application/x-www-form-urlencoded"),
        ]);
        let (ctx, input) = recognise(
            &Method::POST,
            &"/".parse().unwrap(),
            &h,
            b"Action=DescribeAutoScalingGroups&Version=2011-01-01",
            "r".into(),
            "h".into(),
        )
        .unwrap();
        assert_eq!(ctx.service, Service::AutoScaling);
        assert_eq!(ctx.region, "eu-west-1");
        assert_eq!(ctx.op, "DescribeAutoScalingGroups");
        assert!(matches!(input, Input::Query(_)));
    }

    #[test]
    fn query_by_version_without_auth() {
        let h = headers(&[(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )]);
        let (ctx, _) = recognise(
            &Method::POST,
            &"/".parse().unwrap(),
            &h,
            b"Action=Publish&Version=2010-03-31",
            "r".into(),
            "h".into(),
        )
        .unwrap();
        assert_eq!(ctx.service, Service::Sns);
        assert_eq!(ctx.region, "us-east-1");
    }

    #[test]
    fn queue_url_gets_are_sqs_by_presigned_scope_or_by_path() {
        // SigV4 query authentication (a presigned URL), as SQS's queue-URL GETs are signed.
        let uri = "/000000000000/q?Action=GetQueueAttributes&AttributeName.1=All&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=test%2F20261203%2Feu-north-1%2Fsqs%2Faws4_request&X-Amz-Signature=0";
        let (ctx, _) = recognise(
            &Method::GET,
            &uri.parse().unwrap(),
            &HeaderMap::new(),
            b"",
            "r".into(),
            "h".into(),
        )
        .unwrap();
        assert_eq!(
            (ctx.service, ctx.region.as_str(), ctx.op.as_str()),
            (Service::Sqs, "eu-north-1", "GetQueueAttributes")
        );
        // Unsigned, without Version: a queue URL's path says SQS.
        let (ctx, _) = recognise(
            &Method::GET,
            &"/000000000000/q?Action=ReceiveMessage".parse().unwrap(),
            &HeaderMap::new(),
            b"",
            "r".into(),
            "h".into(),
        )
        .unwrap();
        assert_eq!(ctx.service, Service::Sqs);
        // Signed for SQS but naming no operation: 404 UnknownOperationException.
        let h = headers(&[(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=test/20261203/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=x",
        )]);
        let Err((service, _, e)) = recognise(
            &Method::GET,
            &"/000000000000/q".parse().unwrap(),
            &h,
            b"",
            "r".into(),
            "h".into(),
        ) else {
            panic!("recognised");
        };
        assert_eq!(service, Service::Sqs);
        assert!(sqs::is_unknown_operation(&e));
        let resp = sqs::unknown_operation_response("r");
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        assert!(is_queue_path("/123456789012/my-queue"));
        assert!(!is_queue_path("/"));
        assert!(!is_queue_path("/bucket/key"));
        assert!(!is_queue_path("/000000000000/q/extra"));
    }

    #[test]
    fn json_by_target() {
        let h = headers(&[
            ("x-amz-target", "AmazonSQS.ReceiveMessage"),
            ("content-type", "application/x-amz-json-1.0"),
        ]);
        let (ctx, _) = recognise(
            &Method::POST,
            &"/".parse().unwrap(),
            &h,
            br#"{"QueueUrl":"x"}"#,
            "r".into(),
            "h".into(),
        )
        .unwrap();
        assert_eq!(ctx.service, Service::Sqs);
        assert_eq!(ctx.op, "ReceiveMessage");
    }

    #[test]
    fn broken_inputs_are_errors_not_panics() {
        let h = headers(&[("x-amz-target", "AmazonSQS.ReceiveMessage")]);
        assert!(
            recognise(
                &Method::POST,
                &"/".parse().unwrap(),
                &h,
                b"{not json",
                "r".into(),
                "h".into()
            )
            .is_err()
        );
        let h = headers(&[("x-amz-target", "Nope.Op")]);
        assert!(
            recognise(
                &Method::POST,
                &"/".parse().unwrap(),
                &h,
                b"{}",
                "r".into(),
                "h".into()
            )
            .is_err()
        );
        let h = headers(&[("content-type", "application/x-www-form-urlencoded")]);
        assert!(
            recognise(
                &Method::POST,
                &"/".parse().unwrap(),
                &h,
                b"Version=2011-01-01",
                "r".into(),
                "h".into()
            )
            .is_err()
        );
        assert!(
            recognise(
                &Method::PUT,
                &"/b/k".parse().unwrap(),
                &HeaderMap::new(),
                b"",
                "r".into(),
                "h".into()
            )
            .is_err()
        );
    }
}
