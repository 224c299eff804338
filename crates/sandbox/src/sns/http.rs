//! Deliveries to HTTP/HTTPS subscriptions: one POST per message, made by a task on the
//! runtime so that `Publish` and `Subscribe` never wait for an endpoint.
//!
//! What AWS sends (<https://docs.aws.amazon.com/sns/latest/dg/http-header.html>): a POST
//! with `Content-Type: text/plain; charset=UTF-8`, the `x-amz-sns-message-type`,
//! `-message-id`, `-topic-arn` and `-subscription-arn` headers, and the JSON message
//! (or, with raw delivery, the message itself and `x-amz-sns-rawdelivery: true`). A failed
//! delivery is retried up to three times, 20 s apart, AWS's default policy
//! (<https://docs.aws.amazon.com/sns/latest/dg/SendMessageToHttp.retry.html>); an answer of
//! 500 or more, a refused connection or a timeout is a failure worth retrying, any other
//! answer ends the delivery.
//!
//! The sandbox speaks plain HTTP only: an `https://` endpoint's deliveries fail (logged),
//! and its subscription stays pending unless confirmed with the token by other means.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Retries after the first attempt (AWS's default `numRetries`).
pub(super) const RETRIES: u32 = 3;
/// Between attempts (AWS's default `minDelayTarget` = `maxDelayTarget`, linear).
pub(super) const RETRY_DELAY: Duration = Duration::from_secs(20);
/// AWS waits 15 s for an endpoint's answer by default; the connection gets 5 s of that.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
const NO_TLS: &str = "the sandbox delivers to http:// endpoints only (no TLS)";
const USER_AGENT: &str = "Amazon Simple Notification Service Agent";

/// The `x-amz-sns-message-type` of a POST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    SubscriptionConfirmation,
    Notification,
    UnsubscribeConfirmation,
}

impl Kind {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Kind::SubscriptionConfirmation => "SubscriptionConfirmation",
            Kind::Notification => "Notification",
            Kind::UnsubscribeConfirmation => "UnsubscribeConfirmation",
        }
    }
}

/// One message for an HTTP/S endpoint.
#[derive(Debug, Clone)]
pub(super) struct Post {
    pub(super) url: String,
    pub(super) kind: Kind,
    pub(super) message_id: String,
    pub(super) topic_arn: String,
    /// Absent from a `SubscriptionConfirmation`, which precedes the subscription.
    pub(super) subscription_arn: Option<String>,
    pub(super) raw: bool,
    pub(super) body: String,
}

/// Delivers `post` in the background. Outside a runtime (a synchronous unit test) there
/// is nothing to run the delivery on: it is logged and dropped.
pub(super) fn send(post: Post) {
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => {
            rt.spawn(deliver(post));
        }
        Err(_) => {
            tracing::warn!(endpoint = %post.url, kind = post.kind.as_str(), "no runtime to deliver an SNS HTTP message on; dropped");
        }
    }
}

/// Delivers `post` with AWS's retries; the last status, or why the last attempt failed.
pub(super) async fn deliver(post: Post) -> Result<u16, String> {
    // Nothing to retry for an endpoint the sandbox cannot reach at all.
    if !post.url.starts_with("http://") {
        tracing::warn!(endpoint = %post.url, kind = post.kind.as_str(), "SNS delivers to http:// endpoints only (no TLS); message dropped");
        return Err(NO_TLS.into());
    }
    let mut last = Err(String::new());
    for attempt in 0..=RETRIES {
        if attempt > 0 {
            tokio::time::sleep(RETRY_DELAY).await;
        }
        last = post_once(&post).await;
        match &last {
            Ok(status) if *status < 500 => {
                if *status >= 300 {
                    tracing::warn!(endpoint = %post.url, status, kind = post.kind.as_str(), "SNS HTTP endpoint refused the message");
                }
                return last;
            }
            Ok(status) => {
                tracing::warn!(endpoint = %post.url, status, attempt, kind = post.kind.as_str(), "SNS HTTP delivery failed");
            }
            Err(e) => {
                tracing::warn!(endpoint = %post.url, error = %e, attempt, kind = post.kind.as_str(), "SNS HTTP delivery failed");
            }
        }
    }
    last
}

async fn post_once(post: &Post) -> Result<u16, String> {
    let uri: http::Uri = post
        .url
        .parse()
        .map_err(|e| format!("invalid endpoint URL: {e}"))?;
    if uri.scheme_str() != Some("http") {
        return Err(NO_TLS.into());
    }
    let host = uri.host().ok_or("the endpoint URL has no host")?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(80);
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((host, port)))
        .await
        .map_err(|_| "connection timed out".to_owned())?
        .map_err(|e| format!("cannot connect: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake failed: {e}"))?;
    let conn = tokio::spawn(conn);
    let authority = uri.authority().map_or(host, |a| a.as_str());
    let mut req = http::Request::post(uri.path_and_query().map_or("/", |p| p.as_str()))
        .header(http::header::HOST, authority)
        .header(http::header::CONTENT_TYPE, "text/plain; charset=UTF-8")
        .header(http::header::USER_AGENT, USER_AGENT)
        .header("x-amz-sns-message-type", post.kind.as_str())
        .header("x-amz-sns-message-id", &post.message_id)
        .header("x-amz-sns-topic-arn", &post.topic_arn);
    if let Some(s) = &post.subscription_arn {
        req = req.header("x-amz-sns-subscription-arn", s);
    }
    if post.raw {
        req = req.header("x-amz-sns-rawdelivery", "true");
    }
    let req = req
        .body(Full::new(Bytes::from(post.body.clone())))
        .map_err(|e| format!("cannot build the request: {e}"))?;
    let answer = tokio::time::timeout(REQUEST_TIMEOUT, sender.send_request(req)).await;
    conn.abort();
    let resp = answer
        .map_err(|_| "the endpoint did not answer in time".to_owned())?
        .map_err(|e| format!("request failed: {e}"))?;
    Ok(resp.status().as_u16())
}
