//! The instance metadata service (IMDSv2) of every sandbox instance, spec §6.1/§6.2.
//!
//! Each instance's IMDS lives under a path prefix of the sandbox's one port:
//! `http://127.0.0.1:PORT/_imds/<instance-id>/latest/...`. aws-sdk-rust's
//! `aws_config::imds::Client` keeps an endpoint's path when it builds request URIs (it
//! merges the endpoint path with `/latest/...`), so an agent on "instance" `i-…` is pointed
//! at its IMDS with
//!
//! ```sh
//! AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:4566/_imds/i-0123456789abcdef0/
//! ```
//!
//! - `PUT latest/api/token` with `X-aws-ec2-metadata-token-ttl-seconds: 1..21600` answers a
//!   token and echoes the TTL header (aws-sdk-rust refuses a token answer without it); a
//!   missing or bad TTL is 400, a `PUT` carrying `X-Forwarded-For` or to another path is
//!   403. Tokens belong to one instance and expire on virtual time.
//! - Every `GET` needs a valid token in `X-aws-ec2-metadata-token` (401 otherwise): the
//!   sandbox behaves like `HttpTokens=required` (no IMDSv1).
//! - Unknown items, unknown and terminated instances answer 404.
//!
//! Items: `meta-data/` (listing), `ami-id`, `ami-launch-index`, `hostname`, `instance-id`,
//! `instance-type`, `local-hostname`, `local-ipv4`, `reservation-id`, `placement/`
//! (`availability-zone`, `region`), `autoscaling/target-lifecycle-state` (only for
//! instances that are or were in a group), `tags/instance/<key>` (when
//! [`crate::ec2::Options::instance_metadata_tags`]), and
//! `dynamic/instance-identity/document`.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde_json::json;

use crate::Sandbox;
use crate::clock::{Millis, iso_secs};
use crate::ec2::{self, Ec2State};
use crate::ids;

/// The path prefix of every instance's IMDS on the sandbox port.
pub const PREFIX: &str = "/_imds/";
/// The longest token TTL IMDS grants (6 hours).
pub const MAX_TOKEN_TTL_SECS: u64 = 21_600;
/// The most live tokens one instance may hold (bounds memory; AWS has a similar cap).
pub const MAX_TOKENS_PER_INSTANCE: usize = 5_000;

const TOKEN_HEADER: &str = "x-aws-ec2-metadata-token";
const TTL_HEADER: &str = "x-aws-ec2-metadata-token-ttl-seconds";

/// Whether a request is for an instance's IMDS (routed before any AWS protocol).
pub fn is_imds_path(path: &str) -> bool {
    path.starts_with(PREFIX)
}

/// Serves one IMDS request: `path` is the full request path (`/_imds/<id>/latest/...`).
pub fn serve(sb: &Sandbox, method: &Method, path: &str, headers: &HeaderMap) -> Response {
    let rest = path.strip_prefix(PREFIX).unwrap_or_default();
    let (id, item) = rest.split_once('/').unwrap_or((rest, ""));
    let mut w = sb.lock();
    let Some(region) = ec2::find_region(&mut w, id) else {
        return not_found();
    };
    let now = w.now;
    let tags_enabled = w.behaviour.ec2.instance_metadata_tags;
    let r = w.region(&region);
    let Some(rec) = r.ec2.instances.get(id) else {
        return not_found();
    };
    let v = ec2::view(r, rec);
    if v.state == Ec2State::Terminated {
        return not_found();
    }

    if *method == Method::PUT {
        if headers.contains_key("x-forwarded-for") {
            return text(StatusCode::FORBIDDEN, "Forbidden".into());
        }
        if item != "latest/api/token" {
            return text(StatusCode::FORBIDDEN, "Forbidden".into());
        }
        let ttl = headers
            .get(TTL_HEADER)
            .and_then(|h| h.to_str().ok())
            .and_then(|s| s.trim().parse::<u64>().ok())
            .filter(|t| (1..=MAX_TOKEN_TTL_SECS).contains(t));
        let Some(ttl) = ttl else {
            return text(StatusCode::BAD_REQUEST, "Bad Request".into());
        };
        let tokens = &mut r.ec2.imds_tokens;
        tokens.retain(|_, (_, exp)| *exp > now);
        if tokens.values().filter(|(i, _)| i == id).count() >= MAX_TOKENS_PER_INSTANCE {
            return text(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests".into());
        }
        let token = format!("AQAE{}{}", ids::hex32(), ids::hex32());
        tokens.insert(
            token.clone(),
            (id.to_owned(), now.saturating_add(ttl * 1000)),
        );
        let mut resp = text(StatusCode::OK, token);
        if let Ok(h) = HeaderValue::from_str(&ttl.to_string()) {
            resp.headers_mut().insert(TTL_HEADER, h);
        }
        return resp;
    }
    if *method != Method::GET && *method != Method::HEAD {
        let mut resp = text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed".into());
        resp.headers_mut()
            .insert(http::header::ALLOW, HeaderValue::from_static("GET, PUT"));
        return resp;
    }
    let valid = headers
        .get(TOKEN_HEADER)
        .and_then(|h| h.to_str().ok())
        .and_then(|t| r.ec2.imds_tokens.get(t))
        .is_some_and(|(inst, exp)| inst == id && *exp > now);
    if !valid {
        return text(StatusCode::UNAUTHORIZED, "Unauthorized".into());
    }
    match item_of(&region, &v, item, tags_enabled) {
        Some(body) => text(StatusCode::OK, body),
        None => not_found(),
    }
}

/// The body of metadata item `item` (`latest/...`), or `None` (404).
fn item_of(region: &str, v: &ec2::View, item: &str, tags_enabled: bool) -> Option<String> {
    let rec = v.rec;
    let item = item.strip_prefix("latest")?;
    let item = item.strip_prefix('/').unwrap_or(item);
    let hostname = format!("ip-{}.ec2.internal", rec.private_ip.replace('.', "-"));
    let target = v.target_lifecycle_state();
    let tags: Vec<(String, String)> = v
        .tags()
        .into_iter()
        .filter(|(k, _)| imds_key_allowed(k))
        .collect();
    let listing = |items: &[&str]| Some(items.join("\n"));
    let dir = item.trim_end_matches('/');
    Some(match dir {
        "" => return listing(&["dynamic", "meta-data"]),
        "meta-data" => {
            let mut items = vec!["ami-id", "ami-launch-index"];
            if target.is_some() {
                items.push("autoscaling/");
            }
            items.extend([
                "hostname",
                "instance-id",
                "instance-type",
                "local-hostname",
                "local-ipv4",
                "placement/",
                "reservation-id",
            ]);
            if tags_enabled {
                items.push("tags/");
            }
            return listing(&items);
        }
        "meta-data/ami-id" => rec.image_id.clone(),
        "meta-data/ami-launch-index" => "0".into(),
        "meta-data/hostname" | "meta-data/local-hostname" => hostname,
        "meta-data/instance-id" => rec.id.clone(),
        "meta-data/instance-type" => rec.instance_type.clone(),
        "meta-data/local-ipv4" => rec.private_ip.clone(),
        "meta-data/reservation-id" => rec.reservation_id.clone(),
        "meta-data/placement" => return listing(&["availability-zone", "region"]),
        "meta-data/placement/availability-zone" => rec.az.clone(),
        "meta-data/placement/region" => region.to_owned(),
        "meta-data/autoscaling" => {
            target?;
            return listing(&["target-lifecycle-state"]);
        }
        "meta-data/autoscaling/target-lifecycle-state" => target?.to_owned(),
        "meta-data/tags" if tags_enabled => return listing(&["instance"]),
        "meta-data/tags/instance" if tags_enabled => {
            return Some(
                tags.iter()
                    .map(|(k, _)| k.as_str())
                    .collect::<Vec<_>>()
                    .join("\n"),
            );
        }
        "dynamic" => return listing(&["instance-identity/"]),
        "dynamic/instance-identity" => return listing(&["document"]),
        "dynamic/instance-identity/document" => identity_document(region, rec),
        other => {
            let key = other.strip_prefix("meta-data/tags/instance/")?;
            if !tags_enabled || item.ends_with('/') {
                return None;
            }
            tags.into_iter().find(|(k, _)| k == key).map(|(_, v)| v)?
        }
    })
}

/// IMDS exposes only tag keys made of letters, digits and `+ - = . , _ : @` (no `/`, no
/// spaces), and not `.` or `..`.
pub fn imds_key_allowed(k: &str) -> bool {
    !k.is_empty()
        && k != "."
        && k != ".."
        && k.chars()
            .all(|c| c.is_alphanumeric() || "+-=.,_:@".contains(c))
}

fn identity_document(region: &str, rec: &ec2::Instance) -> String {
    let doc = json!({
        "accountId": crate::ACCOUNT_ID,
        "architecture": "x86_64",
        "availabilityZone": rec.az,
        "billingProducts": null,
        "devpayProductCodes": null,
        "marketplaceProductCodes": null,
        "imageId": rec.image_id,
        "instanceId": rec.id,
        "instanceType": rec.instance_type,
        "kernelId": null,
        "pendingTime": iso_secs(rec.launched_at as Millis),
        "privateIp": rec.private_ip,
        "ramdiskId": null,
        "region": region,
        "version": "2017-09-30",
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

fn text(status: StatusCode, body: String) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain"),
    );
    r
}

fn not_found() -> Response {
    let mut r = Response::new(Body::from(
        "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>\n<html><head><title>404 - Not Found</title></head><body><h1>404 - Not Found</h1></body></html>\n",
    ));
    *r.status_mut() = StatusCode::NOT_FOUND;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/html"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ClockMode, SandboxConfig};

    struct Env {
        sb: crate::RunningSandbox,
        http: reqwest::Client,
    }

    impl Env {
        async fn new() -> Env {
            let sb = crate::start(SandboxConfig {
                listen: "127.0.0.1:0".parse().unwrap(),
                clock: ClockMode::Manual,
                ..Default::default()
            })
            .await
            .unwrap();
            Env {
                sb,
                http: reqwest::Client::new(),
            }
        }

        fn url(&self, path: &str) -> String {
            format!("{}{path}", self.sb.endpoint())
        }

        async fn instance(&self, tags: serde_json::Value) -> String {
            let v: serde_json::Value = self
                .http
                .post(self.url("/_sandbox/ec2/instances"))
                .json(&json!({ "tags": tags }))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["instance_id"].as_str().unwrap().to_owned()
        }

        async fn token(&self, id: &str, ttl: &str) -> reqwest::Response {
            self.http
                .put(self.url(&format!("/_imds/{id}/latest/api/token")))
                .header(TTL_HEADER, ttl)
                .send()
                .await
                .unwrap()
        }

        async fn get(&self, id: &str, item: &str, token: &str) -> (u16, String) {
            let r = self
                .http
                .get(self.url(&format!("/_imds/{id}/latest/{item}")))
                .header(TOKEN_HEADER, token)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    }

    #[tokio::test]
    async fn token_flow_items_and_expiry_on_virtual_time() {
        let e = Env::new().await;
        let id = e.instance(json!({"Name": "box", "bad key": "x"})).await;
        for bad in ["0", "21601", "x"] {
            assert_eq!(e.token(&id, bad).await.status(), 400, "ttl {bad}");
        }
        let r = e
            .http
            .put(e.url(&format!("/_imds/{id}/latest/api/token")))
            .header(TTL_HEADER, "60")
            .header("x-forwarded-for", "1.2.3.4")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        let r = e.token(&id, "60").await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()[TTL_HEADER], "60");
        let token = r.text().await.unwrap();

        assert_eq!(e.get(&id, "meta-data/instance-id", "nope").await.0, 401);
        assert_eq!(
            e.get(&id, "meta-data/instance-id", &token).await,
            (200, id.clone())
        );
        assert_eq!(
            e.get(&id, "meta-data/placement/region", &token).await,
            (200, "us-east-1".into())
        );
        assert_eq!(
            e.get(&id, "meta-data/placement/availability-zone", &token)
                .await,
            (200, "us-east-1a".into())
        );
        let (s, doc) = e
            .get(&id, "dynamic/instance-identity/document", &token)
            .await;
        assert_eq!(s, 200);
        let doc: serde_json::Value = serde_json::from_str(&doc).unwrap();
        assert_eq!(doc["instanceId"], id.as_str());
        assert_eq!(doc["accountId"], "000000000000");
        let (s, list) = e.get(&id, "meta-data/", &token).await;
        assert_eq!(s, 200);
        assert!(list.lines().any(|l| l == "instance-id"));
        assert!(list.lines().any(|l| l == "placement/"));
        assert!(
            !list.contains("autoscaling/"),
            "standalone: no target state"
        );
        assert_eq!(
            e.get(&id, "meta-data/autoscaling/target-lifecycle-state", &token)
                .await
                .0,
            404
        );
        assert_eq!(
            e.get(&id, "meta-data/tags/instance", &token).await,
            (200, "Name".into()),
            "keys with spaces are not exposed"
        );
        assert_eq!(
            e.get(&id, "meta-data/tags/instance/Name", &token).await,
            (200, "box".into())
        );
        assert_eq!(e.get(&id, "meta-data/nope", &token).await.0, 404);
        // Another instance's token is not valid here; unknown instances are 404.
        let other = e.instance(json!({})).await;
        assert_eq!(e.get(&other, "meta-data/instance-id", &token).await.0, 401);
        assert_eq!(
            e.get("i-0123456789abcdef0", "meta-data/instance-id", &token)
                .await
                .0,
            404
        );
        // Tags can be switched off.
        e.sb.sandbox.lock().behaviour.ec2.instance_metadata_tags = false;
        assert_eq!(e.get(&id, "meta-data/tags/instance", &token).await.0, 404);
        // The token expires on virtual time.
        e.sb.sandbox.advance(61_000);
        assert_eq!(e.get(&id, "meta-data/instance-id", &token).await.0, 401);
    }

    #[tokio::test]
    async fn group_instances_report_their_target_lifecycle_state() {
        let e = Env::new().await;
        let id = {
            let mut w = e.sb.sandbox.lock();
            let ctx = crate::server::RequestCtx {
                request_id: "r".into(),
                region: "us-east-1".into(),
                host: "h".into(),
                path: "/".into(),
                service: crate::protocol::Service::AutoScaling,
                wire: crate::protocol::Wire::Query,
                op: "CreateAutoScalingGroup".into(),
            };
            let p = crate::protocol::Params::from_pairs([
                ("AutoScalingGroupName", "web"),
                ("MinSize", "0"),
                ("MaxSize", "2"),
                ("DesiredCapacity", "1"),
                ("LaunchTemplate.LaunchTemplateName", "lt-web"),
                ("AvailabilityZones.member.1", "us-east-1b"),
                (
                    "LifecycleHookSpecificationList.member.1.LifecycleHookName",
                    "up",
                ),
                (
                    "LifecycleHookSpecificationList.member.1.LifecycleTransition",
                    "autoscaling:EC2_INSTANCE_LAUNCHING",
                ),
            ]);
            crate::autoscaling::ops::dispatch(&mut w, &ctx, &p).unwrap();
            w.region("us-east-1")
                .autoscaling
                .members("web")
                .next()
                .unwrap()
                .id
                .clone()
        };
        let token = e.token(&id, "21600").await.text().await.unwrap();
        assert_eq!(
            e.get(&id, "meta-data/autoscaling/target-lifecycle-state", &token)
                .await,
            (200, "InService".into()),
            "already InService during Pending:Wait"
        );
        assert_eq!(
            e.get(
                &id,
                "meta-data/tags/instance/aws:autoscaling:groupName",
                &token
            )
            .await,
            (200, "web".into())
        );
        assert_eq!(
            e.get(&id, "meta-data/placement/availability-zone", &token)
                .await,
            (200, "us-east-1b".into())
        );
    }
}
