//! ECS in the sandbox (JSON 1.1, `X-Amz-Target: AmazonEC2ContainerServiceV20141113.<Op>`):
//! clusters of EC2 container instances, services and standalone tasks, scheduled on
//! virtual time, to the depth container-instance draining in a lifecycle hook needs.
//!
//! - Tasks start `PENDING` and are `RUNNING` [`TASK_START_MS`] later.
//! - A stopped task (StopTask, a draining replacement, a scale-in) keeps `lastStatus`
//!   `RUNNING` with `desiredStatus` `STOPPED`, then goes `DEACTIVATING` → `STOPPING` →
//!   `DEPROVISIONING` → `STOPPED`, one step every [`STOP_STEP_MS`]. A `PENDING` task goes
//!   straight to `STOPPED` after one step.
//! - The service scheduler ([`reconcile`]) runs after every change and every task
//!   transition. REPLICA services keep `desiredCount` tasks on ACTIVE instances (spread
//!   over instances, then by total load). Tasks on a DRAINING instance are replaced: the
//!   replacements start first, within `maximumPercent`; a draining task is stopped only
//!   while the RUNNING tasks left stay at or above `minimumHealthyPercent`. DAEMON
//!   services run one task on each ACTIVE instance; their tasks, like standalone tasks,
//!   stay on a DRAINING instance until stopped.
//!
//! Layout: this file holds clusters, services, tasks, their scheduling and JSON shapes;
//! `ops.rs` the operations and `handle`; `control.rs` the `/_sandbox/ecs/…` routes and
//! the state JSON.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::clock::Millis;
use crate::protocol::RequestCtx;
use crate::protocol::json::JsonBody;
use crate::protocol::{AwsError, Service as Svc};
use crate::world::{Timer as WorldTimer, World};
use crate::{ACCOUNT_ID, DEFAULT_REGION, Sandbox, ids};

mod control;
mod ops;
#[cfg(test)]
mod tests;

pub(crate) use control::{control, state_json};
pub(crate) use ops::run;

/// PENDING → RUNNING, virtual ms.
pub(crate) const TASK_START_MS: Millis = 2_000;
/// Each step of a stopping task (RUNNING → DEACTIVATING → STOPPING → DEPROVISIONING →
/// STOPPED), virtual ms.
pub(crate) const STOP_STEP_MS: Millis = 2_000;
const DEFAULT_CLUSTER: &str = "default";
const MAX_PAGE: usize = 100;

/// ECS state of one region.
#[derive(Debug, Default)]
pub(crate) struct State {
    clusters: BTreeMap<String, Cluster>,
    /// Task definitions by family: every revision, in order.
    task_defs: BTreeMap<String, Vec<TaskDef>>,
}

#[derive(Debug, Clone)]
struct TaskDef {
    family: String,
    revision: u32,
    arn: String,
    body: Map<String, Value>,
    containers: Vec<String>,
    registered: Millis,
}

#[derive(Debug, Default)]
struct Cluster {
    name: String,
    arn: String,
    instances: Vec<ContainerInstance>,
    services: BTreeMap<String, Service>,
    tasks: Vec<Task>,
}

#[derive(Debug, Clone)]
struct ContainerInstance {
    id: String,
    arn: String,
    ec2_instance_id: String,
    status: &'static str,
    registered: Millis,
}

#[derive(Debug, Clone)]
struct Service {
    name: String,
    arn: String,
    task_def: String,
    containers: Vec<String>,
    desired: usize,
    min_healthy_pct: usize,
    max_pct: usize,
    daemon: bool,
    status: &'static str,
    created: Millis,
    deployment_id: String,
}

#[derive(Debug, Clone)]
struct Task {
    id: String,
    arn: String,
    task_def: String,
    containers: Vec<String>,
    instance: String,
    last: &'static str,
    desired: &'static str,
    group: String,
    started_by: Option<String>,
    service: Option<String>,
    created: Millis,
    started: Option<Millis>,
    stopping: Option<Millis>,
    stopped: Option<Millis>,
    stopped_reason: Option<String>,
    stop_code: Option<&'static str>,
    /// Bumped whenever the task's pending step is replaced; stale timers are ignored.
    epoch: u64,
}

/// ECS timers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Timer {
    /// The next lifecycle step of a task.
    Step {
        cluster: String,
        task: String,
        epoch: u64,
    },
}

type Sched = Vec<(Millis, Timer)>;

// ---------------------------------------------------------------------------------------
// Names and errors
// ---------------------------------------------------------------------------------------

fn arn(region: &str, rest: &str) -> String {
    format!("arn:aws:ecs:{region}:{ACCOUNT_ID}:{rest}")
}

/// The last `/`-separated segment of an ARN, or the value itself.
fn short(v: &str) -> &str {
    if v.starts_with("arn:") {
        v.rsplit('/').next().unwrap_or(v)
    } else {
        v
    }
}

fn cluster_name(v: &str) -> &str {
    if v.starts_with("arn:") {
        v.split_once(":cluster/").map_or(v, |(_, n)| n)
    } else {
        v
    }
}

fn client(m: impl Into<String>) -> AwsError {
    AwsError::new(400, "ClientException", m)
}

fn invalid(m: impl Into<String>) -> AwsError {
    AwsError::new(400, "InvalidParameterException", m)
}

fn no_cluster() -> AwsError {
    AwsError::new(400, "ClusterNotFoundException", "Cluster not found.")
}

fn no_service() -> AwsError {
    AwsError::new(400, "ServiceNotFoundException", "Service not found.")
}

fn secs(ms: Millis) -> f64 {
    ms as f64 / 1000.0
}

fn is_live(t: &Task) -> bool {
    t.desired == "RUNNING"
}

// ---------------------------------------------------------------------------------------
// Scheduling
// ---------------------------------------------------------------------------------------

pub(crate) fn on_timer(world: &mut World, region: &str, t: Timer) {
    let Timer::Step {
        cluster,
        task,
        epoch,
    } = t;
    let now = world.now;
    let mut sched = Sched::new();
    {
        let Some(c) = world.region(region).ecs.clusters.get_mut(&cluster) else {
            return;
        };
        let Some(t) = c.tasks.iter_mut().find(|t| t.id == task) else {
            return;
        };
        if t.epoch != epoch {
            return;
        }
        match (t.desired, t.last) {
            ("RUNNING", "PENDING") => {
                t.last = "RUNNING";
                t.started = Some(now);
            }
            ("STOPPED", last) => {
                let next = match last {
                    "PENDING" | "DEPROVISIONING" => "STOPPED",
                    "RUNNING" => "DEACTIVATING",
                    "DEACTIVATING" => "STOPPING",
                    "STOPPING" => "DEPROVISIONING",
                    _ => return,
                };
                t.last = next;
                if next == "STOPPED" {
                    t.stopped = Some(now);
                } else {
                    sched.push((
                        now + STOP_STEP_MS,
                        Timer::Step {
                            cluster: cluster.clone(),
                            task: task.clone(),
                            epoch,
                        },
                    ));
                }
            }
            _ => return,
        }
    }
    for (at, t) in sched {
        world.schedule(at, region, WorldTimer::Ecs(t));
    }
    reconcile(world, region, &cluster);
}

fn begin_stop(
    cluster: &str,
    t: &mut Task,
    reason: &str,
    code: &'static str,
    now: Millis,
    sched: &mut Sched,
) {
    if t.desired == "STOPPED" {
        return;
    }
    t.desired = "STOPPED";
    t.stopping = Some(now);
    t.stopped_reason = Some(reason.to_owned());
    t.stop_code = Some(code);
    t.epoch += 1;
    sched.push((
        now + STOP_STEP_MS,
        Timer::Step {
            cluster: cluster.to_owned(),
            task: t.id.clone(),
            epoch: t.epoch,
        },
    ));
}

#[allow(clippy::too_many_arguments)]
fn new_task(
    c: &mut Cluster,
    region: &str,
    instance: &str,
    task_def: &str,
    containers: &[String],
    group: String,
    started_by: Option<String>,
    service: Option<String>,
    now: Millis,
    sched: &mut Sched,
) -> usize {
    let id = ids::hex32();
    c.tasks.push(Task {
        arn: arn(region, &format!("task/{}/{id}", c.name)),
        id: id.clone(),
        task_def: task_def.to_owned(),
        containers: containers.to_vec(),
        instance: instance.to_owned(),
        last: "PENDING",
        desired: "RUNNING",
        group,
        started_by,
        service,
        created: now,
        started: None,
        stopping: None,
        stopped: None,
        stopped_reason: None,
        stop_code: None,
        epoch: 0,
    });
    sched.push((
        now + TASK_START_MS,
        Timer::Step {
            cluster: c.name.clone(),
            task: id,
            epoch: 0,
        },
    ));
    c.tasks.len() - 1
}

/// The ACTIVE instance to place the next task of `service` (or a standalone task) on:
/// fewest live tasks of that service, then fewest live tasks, then oldest registration.
fn place(c: &Cluster, service: Option<&str>) -> Option<String> {
    c.instances
        .iter()
        .enumerate()
        .filter(|(_, i)| i.status == "ACTIVE")
        .min_by_key(|(n, i)| {
            let on = c.tasks.iter().filter(|t| is_live(t) && t.instance == i.id);
            let mine = on
                .clone()
                .filter(|t| t.service.as_deref() == service)
                .count();
            (if service.is_some() { mine } else { 0 }, on.count(), *n)
        })
        .map(|(_, i)| i.id.clone())
}

/// Runs the service scheduler of one cluster (see the module documentation).
pub(crate) fn reconcile(world: &mut World, region: &str, cluster: &str) {
    let now = world.now;
    let mut sched = Sched::new();
    if let Some(c) = world.region(region).ecs.clusters.get_mut(cluster) {
        let names: Vec<String> = c.services.keys().cloned().collect();
        for name in names {
            reconcile_service(c, region, &name, now, &mut sched);
        }
    }
    for (at, t) in sched {
        world.schedule(at, region, WorldTimer::Ecs(t));
    }
}

fn reconcile_service(c: &mut Cluster, region: &str, name: &str, now: Millis, sched: &mut Sched) {
    let Some(svc) = c.services.get(name).cloned() else {
        return;
    };
    let cname = c.name.clone();
    let group = format!("service:{name}");
    let active: Vec<String> = c
        .instances
        .iter()
        .filter(|i| i.status == "ACTIVE")
        .map(|i| i.id.clone())
        .collect();
    let mine = |t: &Task| t.service.as_deref() == Some(name);
    // One more task of the service's deployment on `inst`.
    let start_task = |c: &mut Cluster, inst: &str, sched: &mut Sched| {
        new_task(
            c,
            region,
            inst,
            &svc.task_def,
            &svc.containers,
            group.clone(),
            Some(svc.deployment_id.clone()),
            Some(name.to_owned()),
            now,
            sched,
        );
    };

    if svc.status != "ACTIVE" {
        for t in c.tasks.iter_mut().filter(|t| mine(t) && is_live(t)) {
            begin_stop(
                &cname,
                t,
                "Service deleted",
                "ServiceSchedulerInitiated",
                now,
                sched,
            );
        }
        if c.tasks
            .iter()
            .filter(|t| mine(t))
            .all(|t| t.last == "STOPPED")
            && let Some(s) = c.services.get_mut(name)
        {
            s.status = "INACTIVE";
        }
        return;
    }

    if svc.daemon {
        if let Some(s) = c.services.get_mut(name) {
            s.desired = active.len();
        }
        for inst in &active {
            if !c
                .tasks
                .iter()
                .any(|t| mine(t) && is_live(t) && &t.instance == inst)
            {
                start_task(c, inst, sched);
            }
        }
        return;
    }

    let desired = svc.desired;
    let max_total = desired * svc.max_pct / 100;
    let min_healthy = (desired * svc.min_healthy_pct).div_ceil(100);
    for _round in 0..2 {
        // Start tasks on ACTIVE instances, within maximumPercent.
        let live = c.tasks.iter().filter(|t| mine(t) && is_live(t)).count();
        let good = c
            .tasks
            .iter()
            .filter(|t| mine(t) && is_live(t) && active.contains(&t.instance))
            .count();
        let start = desired
            .saturating_sub(good)
            .min(max_total.saturating_sub(live));
        for _ in 0..start {
            let Some(inst) = place(c, Some(name)) else {
                break;
            };
            start_task(c, &inst, sched);
        }
        // Scale in: too many tasks on ACTIVE instances; PENDING first, then the newest.
        let mut good: Vec<usize> = (0..c.tasks.len())
            .filter(|&i| {
                let t = &c.tasks[i];
                mine(t) && is_live(t) && active.contains(&t.instance)
            })
            .collect();
        if good.len() > desired {
            good.sort_by_key(|&i| (c.tasks[i].last == "RUNNING", std::cmp::Reverse(i)));
            for &i in good.iter().take(good.len() - desired) {
                begin_stop(
                    &cname,
                    &mut c.tasks[i],
                    "Scaling activity initiated by (deployment)",
                    "ServiceSchedulerInitiated",
                    now,
                    sched,
                );
            }
        }
        // Tasks on instances that are not ACTIVE: stop them while enough stay RUNNING.
        let mut healthy = c
            .tasks
            .iter()
            .filter(|t| mine(t) && is_live(t) && t.last == "RUNNING")
            .count();
        let mut draining: Vec<usize> = (0..c.tasks.len())
            .filter(|&i| {
                let t = &c.tasks[i];
                mine(t) && is_live(t) && !active.contains(&t.instance)
            })
            .collect();
        draining.sort_by_key(|&i| (c.tasks[i].last == "RUNNING", i));
        for i in draining {
            let running = c.tasks[i].last == "RUNNING";
            if running {
                if healthy == 0 || healthy - 1 < min_healthy {
                    continue;
                }
                healthy -= 1;
            }
            begin_stop(
                &cname,
                &mut c.tasks[i],
                "Service task stopped: container instance is DRAINING",
                "ServiceSchedulerInitiated",
                now,
                sched,
            );
        }
    }
}

/// The `stoppedReason` of a task whose host was terminated, as ECS words it.
fn host_terminated_reason(ec2_instance_id: &str) -> String {
    format!("Host EC2 (instance {ec2_instance_id}) terminated.")
}

/// What ECS does when the EC2 instance behind container instances is terminated: "If you
/// terminate a running container instance, Amazon ECS automatically deregisters the
/// instance from your cluster" (DeregisterContainerInstance API reference), and "when you
/// stop or terminate a container instance, the tasks that are running on the instance
/// transition to the STOPPED status" (Amazon ECS Developer Guide, "Task state change
/// events"). So every container instance of `ec2_instance_id` in `region` becomes
/// `INACTIVE` (gone from ListContainerInstances), its tasks are `STOPPED` at once (the host
/// is gone: no graceful stop steps) with `stoppedReason` "Host EC2 (instance …)
/// terminated." and `stopCode` `TerminationNotice`, and the service scheduler replaces
/// service tasks on the instances left. Idempotent: called by every terminate path (EC2
/// TerminateInstances, an Auto Scaling instance reaching `Terminated`, a forced group
/// delete).
pub(crate) fn instance_terminated(world: &mut World, region: &str, ec2_instance_id: &str) {
    let now = world.now;
    let Some(st) = world.regions.get_mut(region) else {
        return;
    };
    let mut touched = Vec::new();
    for c in st.ecs.clusters.values_mut() {
        let ids: Vec<String> = c
            .instances
            .iter_mut()
            .filter(|i| i.ec2_instance_id == ec2_instance_id && i.status != "INACTIVE")
            .map(|i| {
                i.status = "INACTIVE";
                i.id.clone()
            })
            .collect();
        if ids.is_empty() {
            continue;
        }
        for t in c
            .tasks
            .iter_mut()
            .filter(|t| ids.contains(&t.instance) && t.last != "STOPPED")
        {
            if t.desired != "STOPPED" {
                t.desired = "STOPPED";
                t.stopping = Some(now);
                t.stopped_reason = Some(host_terminated_reason(ec2_instance_id));
                t.stop_code = Some("TerminationNotice");
            }
            t.last = "STOPPED";
            t.stopped = Some(now);
            // Any pending step of the task is void.
            t.epoch += 1;
        }
        touched.push(c.name.clone());
    }
    for cluster in touched {
        reconcile(world, region, &cluster);
    }
}

fn ensure_cluster<'w>(world: &'w mut World, region: &str, name: &str) -> &'w mut Cluster {
    world
        .region(region)
        .ecs
        .clusters
        .entry(name.to_owned())
        .or_insert_with(|| Cluster {
            name: name.to_owned(),
            arn: arn(region, &format!("cluster/{name}")),
            ..Cluster::default()
        })
}

fn register_instance(world: &mut World, region: &str, cluster: &str, ec2: &str) -> Value {
    let now = world.now;
    let c = ensure_cluster(world, region, cluster);
    let existing = c
        .instances
        .iter()
        .position(|i| i.ec2_instance_id == ec2 && i.status != "INACTIVE");
    let idx = match existing {
        Some(i) => i,
        None => {
            let id = ids::hex32();
            c.instances.push(ContainerInstance {
                arn: arn(region, &format!("container-instance/{cluster}/{id}")),
                id,
                ec2_instance_id: ec2.to_owned(),
                status: "ACTIVE",
                registered: now,
            });
            c.instances.len() - 1
        }
    };
    let id = c.instances[idx].id.clone();
    reconcile(world, region, cluster);
    let c = ensure_cluster(world, region, cluster);
    c.instances
        .iter()
        .find(|i| i.id == id)
        .map(|i| instance_json(c, i))
        .unwrap_or(Value::Null)
}

// ---------------------------------------------------------------------------------------
// JSON shapes
// ---------------------------------------------------------------------------------------

fn cluster_json(c: &Cluster) -> Value {
    let registered = c
        .instances
        .iter()
        .filter(|i| i.status != "INACTIVE")
        .count();
    let running = c.tasks.iter().filter(|t| t.last == "RUNNING").count();
    let pending = c.tasks.iter().filter(|t| t.last == "PENDING").count();
    let services = c.services.values().filter(|s| s.status == "ACTIVE").count();
    json!({
        "clusterArn": c.arn,
        "clusterName": c.name,
        "status": "ACTIVE",
        "registeredContainerInstancesCount": registered,
        "runningTasksCount": running,
        "pendingTasksCount": pending,
        "activeServicesCount": services,
        "statistics": [],
        "tags": [],
        "settings": [{"name": "containerInsights", "value": "disabled"}],
        "capacityProviders": [],
        "defaultCapacityProviderStrategy": [],
    })
}

fn instance_json(c: &Cluster, i: &ContainerInstance) -> Value {
    let on = c.tasks.iter().filter(|t| t.instance == i.id);
    let running = on.clone().filter(|t| t.last == "RUNNING").count();
    let pending = on.filter(|t| t.last == "PENDING").count();
    json!({
        "containerInstanceArn": i.arn,
        "ec2InstanceId": i.ec2_instance_id,
        "version": 1,
        "versionInfo": {"agentVersion": "1.80.0", "agentHash": "sandbox", "dockerVersion": "DockerVersion: 20.10.25"},
        "remainingResources": [],
        "registeredResources": [],
        "status": i.status,
        "agentConnected": i.status != "INACTIVE",
        "runningTasksCount": running,
        "pendingTasksCount": pending,
        "attributes": [],
        "registeredAt": secs(i.registered),
        "attachments": [],
        "tags": [],
    })
}

fn task_def_json(td: &TaskDef) -> Value {
    let mut v = Value::Object(td.body.clone());
    v["taskDefinitionArn"] = json!(td.arn);
    v["family"] = json!(td.family);
    v["revision"] = json!(td.revision);
    v["status"] = json!("ACTIVE");
    v["registeredAt"] = json!(secs(td.registered));
    if v.get("networkMode").is_none() {
        v["networkMode"] = json!("bridge");
    }
    v.as_object_mut().map(|m| m.remove("tags"));
    v
}

fn service_json(c: &Cluster, s: &Service) -> Value {
    let mine = c
        .tasks
        .iter()
        .filter(|t| t.service.as_deref() == Some(&s.name) && is_live(t));
    let running = mine.clone().filter(|t| t.last == "RUNNING").count();
    let pending = mine.filter(|t| t.last == "PENDING").count();
    let rollout = if running == s.desired && pending == 0 {
        "COMPLETED"
    } else {
        "IN_PROGRESS"
    };
    json!({
        "serviceArn": s.arn,
        "serviceName": s.name,
        "clusterArn": c.arn,
        "status": s.status,
        "desiredCount": s.desired,
        "runningCount": running,
        "pendingCount": pending,
        "launchType": "EC2",
        "taskDefinition": s.task_def,
        "deploymentConfiguration": {
            "maximumPercent": s.max_pct,
            "minimumHealthyPercent": s.min_healthy_pct,
        },
        "schedulingStrategy": if s.daemon { "DAEMON" } else { "REPLICA" },
        "createdAt": secs(s.created),
        "deployments": [{
            "id": s.deployment_id,
            "status": "PRIMARY",
            "taskDefinition": s.task_def,
            "desiredCount": s.desired,
            "pendingCount": pending,
            "runningCount": running,
            "failedTasks": 0,
            "createdAt": secs(s.created),
            "updatedAt": secs(s.created),
            "launchType": "EC2",
            "rolloutState": rollout,
        }],
        "events": [],
        "loadBalancers": [],
        "serviceRegistries": [],
        "placementConstraints": [],
        "placementStrategy": [],
        "enableECSManagedTags": false,
        "propagateTags": "NONE",
        "enableExecuteCommand": false,
    })
}

fn task_json(c: &Cluster, region: &str, t: &Task) -> Value {
    let inst_arn = c
        .instances
        .iter()
        .find(|i| i.id == t.instance)
        .map(|i| i.arn.clone())
        .unwrap_or_else(|| {
            arn(
                region,
                &format!("container-instance/{}/{}", c.name, t.instance),
            )
        });
    let container_status = match t.last {
        "PENDING" => "PENDING",
        "RUNNING" => "RUNNING",
        "STOPPED" => "STOPPED",
        _ => "RUNNING",
    };
    let containers: Vec<Value> = t
        .containers
        .iter()
        .map(|n| {
            let mut v = json!({
                "containerArn": arn(region, &format!("container/{}/{}/{}", c.name, t.id, n)),
                "taskArn": t.arn,
                "name": n,
                "lastStatus": container_status,
                "networkBindings": [],
                "networkInterfaces": [],
                "healthStatus": "UNKNOWN",
            });
            if t.last == "STOPPED" {
                v["exitCode"] = json!(143);
            }
            v
        })
        .collect();
    let mut v = json!({
        "taskArn": t.arn,
        "clusterArn": c.arn,
        "taskDefinitionArn": t.task_def,
        "containerInstanceArn": inst_arn,
        "lastStatus": t.last,
        "desiredStatus": t.desired,
        "group": t.group,
        "launchType": "EC2",
        "createdAt": secs(t.created),
        "version": 1,
        "containers": containers,
        "overrides": {"containerOverrides": [], "inferenceAcceleratorOverrides": []},
        "attachments": [],
        "tags": [],
        "healthStatus": "UNKNOWN",
    });
    if let Some(s) = &t.started_by {
        v["startedBy"] = json!(s);
    }
    if let Some(s) = t.started {
        v["startedAt"] = json!(secs(s));
        v["pullStartedAt"] = json!(secs(t.created));
        v["pullStoppedAt"] = json!(secs(s));
    }
    if let Some(s) = t.stopping {
        v["stoppingAt"] = json!(secs(s));
        v["executionStoppedAt"] = json!(secs(s));
    }
    if let Some(s) = t.stopped {
        v["stoppedAt"] = json!(secs(s));
    }
    if let Some(r) = &t.stopped_reason {
        v["stoppedReason"] = json!(r);
    }
    if let Some(c) = t.stop_code {
        v["stopCode"] = json!(c);
    }
    v
}
