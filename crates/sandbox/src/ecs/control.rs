//! The `/_sandbox/ecs/…` control routes and the ECS part of `GET /_sandbox/state`.

use super::*;
use crate::control::ControlResult;
use http::Method;

/// `POST /_sandbox/ecs/container-instances` `{"cluster": "...", "ec2_instance_id": "i-...",
/// "region": "..."}`: registers a container instance as the ECS agent would (the cluster is
/// created when missing). Returns the JSON answer or (status, message).
pub(crate) fn control(sb: &Sandbox, method: &Method, route: &str, body: &[u8]) -> ControlResult {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Reg {
        #[serde(default)]
        cluster: Option<String>,
        ec2_instance_id: String,
        #[serde(default)]
        region: Option<String>,
    }
    match (method.as_str(), route) {
        ("POST", "/ecs/container-instances") => {
            let r: Reg = crate::control::json_body(body)?;
            if !r.ec2_instance_id.starts_with("i-") {
                return Err((400, "ec2_instance_id must look like i-...".into()));
            }
            let region = r.region.unwrap_or_else(|| DEFAULT_REGION.into());
            let cluster = r.cluster.unwrap_or_else(|| DEFAULT_CLUSTER.into());
            let mut w = sb.lock();
            ensure_cluster(&mut w, &region, cluster_name(&cluster));
            let v = register_instance(&mut w, &region, cluster_name(&cluster), &r.ec2_instance_id);
            drop(w);
            sb.poke();
            Ok(json!({"containerInstance": v}))
        }
        _ => Err(crate::control::no_endpoint(method, route)),
    }
}

/// Clusters, instances and tasks, for `GET /_sandbox/state`.
pub(crate) fn state_json(state: &State) -> Value {
    let clusters: Map<String, Value> = state
        .clusters
        .iter()
        .map(|(n, c)| {
            let instances: Vec<Value> = c
                .instances
                .iter()
                .map(|i| json!({"id": i.id, "ec2_instance_id": i.ec2_instance_id, "status": i.status}))
                .collect();
            let tasks: Vec<Value> = c
                .tasks
                .iter()
                .map(|t| {
                    json!({"id": t.id, "group": t.group, "container_instance": t.instance,
                           "last_status": t.last, "desired_status": t.desired})
                })
                .collect();
            let services: Vec<Value> = c
                .services
                .values()
                .map(|s| json!({"name": s.name, "status": s.status, "desired_count": s.desired}))
                .collect();
            (
                n.clone(),
                json!({"container_instances": instances, "services": services, "tasks": tasks}),
            )
        })
        .collect();
    json!({ "clusters": clusters })
}
