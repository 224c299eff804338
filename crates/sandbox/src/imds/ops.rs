//! Serving IMDS: tokens (`PUT latest/api/token`) and metadata items (`GET latest/…`).

use super::*;

/// Serves one IMDS request: `path` is the full request path (`/_imds/<id>/latest/...`).
pub(crate) fn serve(sb: &Sandbox, method: &Method, path: &str, headers: &HeaderMap) -> Response {
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
        return put_token(&mut r.ec2.imds_tokens, id, item, headers, now);
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
    get_item(&region, &v, item, tags_enabled)
}

/// `PUT latest/api/token`: a new token for instance `id`, valid for the TTL header's
/// seconds.
fn put_token(
    tokens: &mut std::collections::HashMap<String, (String, Millis)>,
    id: &str,
    item: &str,
    headers: &HeaderMap,
    now: Millis,
) -> Response {
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
    resp
}

/// `GET latest/…` with a valid token: the metadata item, or 404.
fn get_item(region: &str, v: &ec2::View, item: &str, tags_enabled: bool) -> Response {
    match item_of(region, v, item, tags_enabled) {
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
