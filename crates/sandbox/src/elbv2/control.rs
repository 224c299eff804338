//! The `/_sandbox/elbv2/…` control routes and the ELBv2 part of `GET /_sandbox/state`.

use super::*;
use crate::control::ControlResult;
use http::Method;

/// `POST /_sandbox/elbv2/target-health`: hold a target `unhealthy`, or release it
/// (`healthy`, at once). Returns the JSON answer or (status, message).
pub(crate) fn control(sb: &Sandbox, method: &Method, route: &str, body: &[u8]) -> ControlResult {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct SetHealth {
        target_group_arn: String,
        instance_id: String,
        state: String,
        #[serde(default)]
        reason: Option<String>,
        #[serde(default)]
        description: Option<String>,
    }
    match (method.as_str(), route) {
        ("POST", "/elbv2/target-health") => {
            let b: SetHealth = serde_json::from_slice(body)
                .map_err(|e| (400, format!("invalid target-health body: {e}")))?;
            let region = arn_region(&b.target_group_arn)
                .ok_or_else(|| {
                    (
                        400,
                        format!("not a target group ARN: {}", b.target_group_arn),
                    )
                })?
                .to_owned();
            let mut w = sb.lock();
            let s = st(&mut w, &region);
            let tg = s
                .target_groups
                .get_mut(&b.target_group_arn)
                .ok_or_else(|| (404, format!("no target group {}", b.target_group_arn)))?;
            match b.state.as_str() {
                "unhealthy" => {
                    let reason = b
                        .reason
                        .unwrap_or_else(|| "Target.FailedHealthChecks".into());
                    let desc = b
                        .description
                        .unwrap_or_else(|| "Health checks failed".into());
                    for ((id, _), t) in tg.targets.iter_mut() {
                        if *id == b.instance_id
                            && matches!(t.health, Health::Initial | Health::Healthy)
                        {
                            set_health(t, Health::Unhealthy, Some(&reason), Some(&desc));
                        }
                    }
                    tg.forced_unhealthy
                        .insert(b.instance_id.clone(), (reason, desc));
                }
                "healthy" => {
                    tg.forced_unhealthy.remove(&b.instance_id);
                    for ((id, _), t) in tg.targets.iter_mut() {
                        if *id == b.instance_id
                            && matches!(t.health, Health::Initial | Health::Unhealthy)
                        {
                            set_health(t, Health::Healthy, None, None);
                        }
                    }
                }
                other => {
                    return Err((
                        400,
                        format!("state must be \"unhealthy\" or \"healthy\", got {other:?}"),
                    ));
                }
            }
            let tg = tg.clone();
            Ok(json!({
                "target_group_arn": tg.arn,
                "instance_id": b.instance_id,
                "targets": targets_json(&tg),
            }))
        }
        _ => Err(crate::control::no_endpoint(method, route)),
    }
}

fn targets_json(tg: &TargetGroup) -> Vec<Value> {
    tg.targets
        .iter()
        .map(|((id, port), t)| {
            json!({
                "id": id,
                "port": port,
                "state": t.health.as_str(),
                "reason": t.reason,
            })
        })
        .collect()
}

/// Target groups and their targets, for `GET /_sandbox/state`.
pub(crate) fn state_json(state: &State) -> Value {
    json!({
        "target_groups": state.target_groups.values().map(|tg| json!({
            "arn": tg.arn,
            "name": tg.name,
            "deregistration_delay_secs": tg.deregistration_delay_ms() / 1000,
            "seconds_to_healthy": tg.time_to_healthy_ms() / 1000,
            "targets": targets_json(tg),
            "forced_unhealthy": tg.forced_unhealthy.keys().collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}
