//! The `/_sandbox/ec2/…` control routes and the EC2 part of `GET /_sandbox/state`.

use super::*;
use crate::control::ControlResult;
use http::Method;

/// One instance for the control API: its EC2 and Auto Scaling states, tags and reboots.
pub(crate) fn instance_json(region_name: &str, r: &Region, rec: &Instance) -> Value {
    let v = view(r, rec);
    let tags: serde_json::Map<String, Value> = v
        .tags()
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    json!({
        "instance_id": rec.id,
        "region": region_name,
        "state": v.state.name(),
        "lifecycle_state": v.lifecycle.map(|l| l.as_str()),
        "target_lifecycle_state": v.target_lifecycle_state(),
        "group": v.group,
        "standalone": rec.standalone,
        "availability_zone": rec.az,
        "instance_type": rec.instance_type,
        "image_id": rec.image_id,
        "private_ip": rec.private_ip,
        "launch_time": iso_millis(rec.launched_at),
        "tags": tags,
        "reboots": {
            "count": rec.reboots.len(),
            "times": rec.reboots.iter().map(|t| iso_millis(*t)).collect::<Vec<_>>(),
            "last": rec.reboots.last().map(|t| iso_millis(*t)),
        },
        "imds_path": format!("/_imds/{}/", rec.id),
    })
}

/// Instances and images, for `GET /_sandbox/state`.
pub(crate) fn state_json(r: &Region) -> Value {
    json!({
        "instances": r.ec2.instances.values().map(|i| instance_json(&r.name, r, i)).collect::<Vec<_>>(),
        "images": r.ec2.images.values().map(image_json).collect::<Vec<_>>(),
    })
}

fn image_json(i: &Image) -> Value {
    json!({
        "image_id": i.id,
        "name": i.name,
        "state": i.state,
        "instance_id": i.instance_id,
        "snapshot_id": i.snapshot_id,
        "created": iso_millis(i.created),
        "tags": i.tags,
    })
}

/// `/_sandbox/ec2/...`. Returns the JSON answer or (status, message).
///
/// | method | route | body / answer |
/// |---|---|---|
/// | POST | `/ec2/instances` | `{"region", "tags", "availability_zone", "instance_type", "image_id"}` (all optional) → the instance, with `instance_id` |
/// | GET | `/ec2/instances` | `{"instances": [...]}` |
/// | GET | `/ec2/instances/<id>` | the instance: state, lifecycle state, tags, reboots |
/// | POST | `/ec2/instances/<id>/reboot` | records a reboot; the instance |
/// | GET/POST/DELETE | `/ec2/image-outcomes` | how CreateImage images end |
pub(crate) fn control(sb: &Sandbox, method: &Method, route: &str, body: &[u8]) -> ControlResult {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct NewInstance {
        #[serde(default)]
        region: Option<String>,
        #[serde(default)]
        tags: BTreeMap<String, String>,
        #[serde(default)]
        availability_zone: Option<String>,
        #[serde(default)]
        instance_type: Option<String>,
        #[serde(default)]
        image_id: Option<String>,
    }
    let not_found = || crate::control::no_endpoint(method, route);
    match (method.as_str(), route) {
        ("POST", "/ec2/instances") => {
            let n: NewInstance = if body.iter().all(u8::is_ascii_whitespace) {
                NewInstance {
                    region: None,
                    tags: BTreeMap::new(),
                    availability_zone: None,
                    instance_type: None,
                    image_id: None,
                }
            } else {
                crate::control::json_body(body)?
            };
            let region = n.region.unwrap_or_else(|| DEFAULT_REGION.into());
            crate::control::check_region(&region)?;
            if n.tags.len() > MAX_TAGS {
                return Err((400, format!("at most {MAX_TAGS} tags")));
            }
            if let Some(k) = n.tags.keys().find(|k| {
                k.is_empty()
                    || k.chars().count() > 128
                    || k.to_ascii_lowercase().starts_with("aws:")
            }) {
                return Err((400, format!("invalid tag key {k:?}")));
            }
            let az = n.availability_zone.unwrap_or_else(|| format!("{region}a"));
            let itype = n
                .instance_type
                .unwrap_or_else(|| autoscaling::engine::DEFAULT_INSTANCE_TYPE.into());
            let image = n.image_id.unwrap_or_else(|| DEFAULT_IMAGE_ID.into());
            let mut w = sb.lock();
            let res = ids::hex_id("r");
            let id = run_instance(&mut w, &region, &image, &itype, &az, &res, n.tags);
            sync(&mut w, &region);
            let r = w.region(&region);
            let rec = r.ec2.instances.get(&id).ok_or_else(not_found)?;
            Ok(instance_json(&region, r, rec))
        }
        ("GET", "/ec2/instances") => {
            let mut w = sb.lock();
            let names: Vec<String> = w.regions.keys().cloned().collect();
            let mut out = Vec::new();
            for name in names {
                sync(&mut w, &name);
                let r = w.region(&name);
                out.extend(r.ec2.instances.values().map(|i| instance_json(&name, r, i)));
            }
            Ok(json!({"instances": out}))
        }
        ("POST" | "GET" | "DELETE", "/ec2/image-outcomes") => {
            crate::control::outcome_rules::<ImageOutcome>(sb, method, route, body)
        }
        (m, r) if r.starts_with("/ec2/instances/") => {
            let rest = &r["/ec2/instances/".len()..];
            let (id, action) = rest.split_once('/').unwrap_or((rest, ""));
            let mut w = sb.lock();
            let Some(region) = find_region(&mut w, id) else {
                return Err((404, format!("no instance {id}")));
            };
            match (m, action) {
                ("GET", "") => {}
                ("POST", "reboot") => {
                    let r = w.region(&region);
                    let terminated = r
                        .ec2
                        .instances
                        .get(id)
                        .is_some_and(|rec| view(r, rec).state == Ec2State::Terminated);
                    if terminated {
                        return Err((409, format!("instance {id} is terminated")));
                    }
                    record_reboot(&mut w, &region, id);
                }
                _ => return Err(not_found()),
            }
            let r = w.region(&region);
            let rec = r.ec2.instances.get(id).ok_or_else(not_found)?;
            Ok(instance_json(&region, r, rec))
        }
        _ => Err(not_found()),
    }
}

crate::control::impl_outcome_rule!(ImageOutcome, "image outcome rule", ec2.image_outcomes);
