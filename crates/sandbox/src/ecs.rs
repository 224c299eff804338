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

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::clock::Millis;
use crate::protocol::json::JsonBody;
use crate::protocol::{AwsError, Service as Svc};
use crate::server::{Input, Reply, RequestCtx};
use crate::world::{Timer as WorldTimer, World};
use crate::{ACCOUNT_ID, DEFAULT_REGION, Sandbox, ids};

/// PENDING → RUNNING, virtual ms.
pub const TASK_START_MS: Millis = 2_000;
/// Each step of a stopping task (RUNNING → DEACTIVATING → STOPPING → DEPROVISIONING →
/// STOPPED), virtual ms.
pub const STOP_STEP_MS: Millis = 2_000;
const DEFAULT_CLUSTER: &str = "default";
const MAX_PAGE: usize = 100;

/// ECS state of one region.
#[derive(Debug, Default)]
pub struct State {
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
pub enum Timer {
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

pub fn on_timer(world: &mut World, region: &str, t: Timer) {
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
pub fn reconcile(world: &mut World, region: &str, cluster: &str) {
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
            new_task(
                c,
                region,
                &inst,
                &svc.task_def,
                &svc.containers,
                group.clone(),
                Some(svc.deployment_id.clone()),
                Some(name.to_owned()),
                now,
                sched,
            );
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

// ---------------------------------------------------------------------------------------
// Control API
// ---------------------------------------------------------------------------------------

/// `POST /_sandbox/ecs/container-instances` `{"cluster": "...", "ec2_instance_id": "i-...",
/// "region": "..."}`: registers a container instance as the ECS agent would (the cluster is
/// created when missing). Returns the JSON answer or (status, message).
pub fn control(
    sb: &Sandbox,
    method: &http::Method,
    route: &str,
    body: &[u8],
) -> Result<Value, (u16, String)> {
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
            let r: Reg = serde_json::from_slice(body)
                .map_err(|e| (400, format!("invalid JSON body: {e}")))?;
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
        _ => Err((
            404,
            format!("no control endpoint {method} /_sandbox{route}; see docs/sandbox.md"),
        )),
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

/// Clusters, instances and tasks, for `GET /_sandbox/state`.
pub fn state_json(state: &State) -> Value {
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

// ---------------------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------------------

pub async fn handle(sb: &Sandbox, ctx: &RequestCtx, input: Input) -> Result<Reply, AwsError> {
    let Input::Json(b) = input else {
        return Err(AwsError::unknown_operation(Svc::Ecs, &ctx.op));
    };
    let mut w = sb.lock();
    run(&mut w, ctx, &b).map(Reply::Json)
}

fn cluster_arg(b: &JsonBody) -> Result<String, AwsError> {
    Ok(cluster_name(b.str("cluster")?.unwrap_or(DEFAULT_CLUSTER)).to_owned())
}

fn cluster_mut<'w>(
    world: &'w mut World,
    region: &str,
    name: &str,
) -> Result<&'w mut Cluster, AwsError> {
    world
        .region(region)
        .ecs
        .clusters
        .get_mut(name)
        .ok_or_else(no_cluster)
}

fn page(items: Vec<String>, b: &JsonBody) -> Result<(Vec<String>, Option<String>), AwsError> {
    let max = match b.int("maxResults")? {
        None => MAX_PAGE,
        Some(n) if (1..=MAX_PAGE as i64).contains(&n) => n as usize,
        Some(_) => return Err(invalid("maxResults must be between 1 and 100.")),
    };
    let start = match b.str("nextToken")? {
        Some(t) => t.parse::<usize>().map_err(|_| invalid("Invalid token"))?,
        None => 0,
    };
    let total = items.len();
    let out: Vec<String> = items.into_iter().skip(start).take(max).collect();
    let next = (start + out.len() < total).then(|| (start + out.len()).to_string());
    Ok((out, next))
}

fn paged(key: &str, items: Vec<String>, b: &JsonBody) -> Result<Value, AwsError> {
    let (items, next) = page(items, b)?;
    let mut v = json!({ key: items });
    if let Some(n) = next {
        v["nextToken"] = json!(n);
    }
    Ok(v)
}

fn resolve_task_def(st: &State, v: &str) -> Result<TaskDef, AwsError> {
    let v = if v.starts_with("arn:") {
        v.split_once(":task-definition/").map_or(v, |(_, r)| r)
    } else {
        v
    };
    let (family, rev) = match v.split_once(':') {
        Some((f, r)) => (
            f,
            Some(
                r.parse::<u32>()
                    .map_err(|_| client("Invalid revision number."))?,
            ),
        ),
        None => (v, None),
    };
    let revs = st
        .task_defs
        .get(family)
        .ok_or_else(|| client("Unable to describe task definition."))?;
    match rev {
        Some(r) => revs.iter().find(|d| d.revision == r).cloned(),
        None => revs.last().cloned(),
    }
    .ok_or_else(|| client("Unable to describe task definition."))
}

fn run(world: &mut World, ctx: &RequestCtx, b: &JsonBody) -> Result<Value, AwsError> {
    let region = ctx.region.as_str();
    let now = world.now;
    match ctx.op.as_str() {
        "CreateCluster" => {
            let name = b.str("clusterName")?.unwrap_or(DEFAULT_CLUSTER).to_owned();
            if name.is_empty()
                || name.len() > 255
                || !name
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
            {
                return Err(invalid("Invalid cluster name."));
            }
            let c = ensure_cluster(world, region, &name);
            Ok(json!({"cluster": cluster_json(c)}))
        }
        "DescribeClusters" => {
            let mut names = b.str_list("clusters")?;
            if names.is_empty() {
                names.push(DEFAULT_CLUSTER.into());
            }
            let st = &world.region(region).ecs;
            let mut out = Vec::new();
            let mut failures = Vec::new();
            for n in names {
                match st.clusters.get(cluster_name(&n)) {
                    Some(c) => out.push(cluster_json(c)),
                    None => failures.push(json!({"arn": arn(region, &format!("cluster/{}", cluster_name(&n))), "reason": "MISSING"})),
                }
            }
            Ok(json!({"clusters": out, "failures": failures}))
        }
        "ListClusters" => {
            let arns = world
                .region(region)
                .ecs
                .clusters
                .values()
                .map(|c| c.arn.clone())
                .collect();
            paged("clusterArns", arns, b)
        }
        "DeleteCluster" => {
            let name = cluster_name(b.required_str("cluster")?).to_owned();
            let c = cluster_mut(world, region, &name)?;
            if c.instances.iter().any(|i| i.status != "INACTIVE") {
                return Err(AwsError::new(
                    400,
                    "ClusterContainsContainerInstancesException",
                    "The Cluster cannot be deleted while Container Instances are active or draining.",
                ));
            }
            if c.services.values().any(|s| s.status == "ACTIVE") {
                return Err(AwsError::new(
                    400,
                    "ClusterContainsServicesException",
                    "The Cluster cannot be deleted while Services are active.",
                ));
            }
            let mut v = cluster_json(c);
            v["status"] = json!("INACTIVE");
            world.region(region).ecs.clusters.remove(&name);
            Ok(json!({"cluster": v}))
        }
        "RegisterContainerInstance" => {
            let cluster = cluster_arg(b)?;
            cluster_mut(world, region, &cluster)?;
            let doc = b
                .str("instanceIdentityDocument")?
                .ok_or_else(|| client("instanceIdentityDocument is required by the sandbox"))?;
            let ec2 = serde_json::from_str::<Value>(doc)
                .ok()
                .and_then(|v| {
                    v.get("instanceId")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
                .ok_or_else(|| {
                    client("instanceIdentityDocument must be JSON with an instanceId")
                })?;
            let v = register_instance(world, region, &cluster, &ec2);
            Ok(json!({"containerInstance": v}))
        }
        "DeregisterContainerInstance" => {
            let cluster = cluster_arg(b)?;
            let id = short(b.required_str("containerInstance")?).to_owned();
            let force = b.bool("force")?.unwrap_or(false);
            let mut sched = Sched::new();
            let c = cluster_mut(world, region, &cluster)?;
            let cname = c.name.clone();
            let idx = c
                .instances
                .iter()
                .position(|i| i.id == id && i.status != "INACTIVE")
                .ok_or_else(|| invalid("The referenced container instance was not found."))?;
            let has_tasks = c.tasks.iter().any(|t| is_live(t) && t.instance == id);
            if has_tasks && !force {
                return Err(invalid(
                    "Found running tasks on the instance; use force to deregister it anyway.",
                ));
            }
            c.instances[idx].status = "INACTIVE";
            for t in c
                .tasks
                .iter_mut()
                .filter(|t| is_live(t) && t.instance == id)
            {
                begin_stop(
                    &cname,
                    t,
                    "Container instance deregistered",
                    "UserInitiated",
                    now,
                    &mut sched,
                );
            }
            let v = instance_json(c, &c.instances[idx]);
            for (at, t) in sched {
                world.schedule(at, region, WorldTimer::Ecs(t));
            }
            reconcile(world, region, &cluster);
            Ok(json!({"containerInstance": v}))
        }
        "ListContainerInstances" => {
            let cluster = cluster_arg(b)?;
            let status = b.str("status")?.map(str::to_owned);
            let filter = b.str("filter")?.map(parse_filter).transpose()?;
            let c = cluster_mut(world, region, &cluster)?;
            let arns = c
                .instances
                .iter()
                .filter(|i| match &status {
                    Some(s) => i.status == s,
                    None => i.status != "INACTIVE",
                })
                .filter(|i| filter.as_ref().is_none_or(|f| f.matches(i)))
                .map(|i| i.arn.clone())
                .collect();
            paged("containerInstanceArns", arns, b)
        }
        "DescribeContainerInstances" => {
            let cluster = cluster_arg(b)?;
            let wanted = b.str_list("containerInstances")?;
            let c = cluster_mut(world, region, &cluster)?;
            let mut out = Vec::new();
            let mut failures = Vec::new();
            for w in wanted {
                match c.instances.iter().find(|i| i.id == short(&w)) {
                    Some(i) => out.push(instance_json(c, i)),
                    None => failures.push(json!({"arn": w, "reason": "MISSING"})),
                }
            }
            Ok(json!({"containerInstances": out, "failures": failures}))
        }
        "UpdateContainerInstancesState" => {
            let cluster = cluster_arg(b)?;
            let wanted = b.str_list("containerInstances")?;
            let status = b.required_str("status")?;
            let status: &'static str = match status {
                "ACTIVE" => "ACTIVE",
                "DRAINING" => "DRAINING",
                s => {
                    return Err(invalid(format!(
                        "Container instance status {s} is not supported; use ACTIVE or DRAINING."
                    )));
                }
            };
            let c = cluster_mut(world, region, &cluster)?;
            let mut failures = Vec::new();
            let mut ids = Vec::new();
            for w in wanted {
                match c
                    .instances
                    .iter_mut()
                    .find(|i| i.id == short(&w) && i.status != "INACTIVE")
                {
                    Some(i) => {
                        i.status = status;
                        ids.push(i.id.clone());
                    }
                    None => failures.push(json!({"arn": w, "reason": "MISSING"})),
                }
            }
            reconcile(world, region, &cluster);
            let c = cluster_mut(world, region, &cluster)?;
            let out: Vec<Value> = ids
                .iter()
                .filter_map(|id| c.instances.iter().find(|i| &i.id == id))
                .map(|i| instance_json(c, i))
                .collect();
            Ok(json!({"containerInstances": out, "failures": failures}))
        }
        "RegisterTaskDefinition" => {
            let family = b.required_str("family")?.to_owned();
            let defs = b.array("containerDefinitions")?;
            if defs.is_empty() {
                return Err(client("Container list cannot be empty."));
            }
            let containers: Vec<String> = defs
                .iter()
                .map(|d| {
                    d.get("name")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .ok_or_else(|| client("Container.name should not be null or empty."))
                })
                .collect::<Result<_, _>>()?;
            let st = &mut world.region(region).ecs;
            let revs = st.task_defs.entry(family.clone()).or_default();
            let revision = revs.last().map_or(1, |d| d.revision + 1);
            let td = TaskDef {
                arn: arn(region, &format!("task-definition/{family}:{revision}")),
                family,
                revision,
                body: b.0.clone(),
                containers,
                registered: now,
            };
            revs.push(td.clone());
            Ok(json!({"taskDefinition": task_def_json(&td), "tags": []}))
        }
        "DescribeTaskDefinition" => {
            let td =
                resolve_task_def(&world.region(region).ecs, b.required_str("taskDefinition")?)?;
            Ok(json!({"taskDefinition": task_def_json(&td), "tags": []}))
        }
        "CreateService" => {
            let cluster = cluster_arg(b)?;
            let name = b.required_str("serviceName")?.to_owned();
            let td_arg = b.required_str("taskDefinition")?;
            let td = resolve_task_def(&world.region(region).ecs, td_arg)?;
            let daemon = match b.str("schedulingStrategy")?.unwrap_or("REPLICA") {
                "REPLICA" => false,
                "DAEMON" => true,
                s => return Err(invalid(format!("Invalid schedulingStrategy {s}"))),
            };
            let desired = b.int("desiredCount")?;
            if daemon && desired.is_some_and(|d| d != 0) {
                return Err(invalid(
                    "The daemon scheduling strategy does not support a desired count for services.",
                ));
            }
            let desired = desired.unwrap_or(if daemon { 0 } else { 1 });
            if desired < 0 {
                return Err(invalid("desiredCount must be non-negative."));
            }
            let (min_pct, max_pct) =
                deployment_config(b, if daemon { (0, 100) } else { (100, 200) })?;
            let c = cluster_mut(world, region, &cluster)?;
            if c.services
                .get(&name)
                .is_some_and(|s| s.status != "INACTIVE")
            {
                return Err(invalid("Creation of service was not idempotent."));
            }
            let svc = Service {
                arn: arn(region, &format!("service/{}/{name}", c.name)),
                name: name.clone(),
                task_def: td.arn.clone(),
                containers: td.containers.clone(),
                desired: desired as usize,
                min_healthy_pct: min_pct,
                max_pct,
                daemon,
                status: "ACTIVE",
                created: now,
                deployment_id: format!("ecs-svc/{}", &ids::hex32()[..19]),
            };
            c.services.insert(name.clone(), svc);
            reconcile(world, region, &cluster);
            let c = cluster_mut(world, region, &cluster)?;
            Ok(json!({"service": service_json(c, &c.services[&name])}))
        }
        "UpdateService" => {
            let cluster = cluster_arg(b)?;
            let name = short(b.required_str("service")?).to_owned();
            let td = match b.str("taskDefinition")? {
                Some(v) => Some(resolve_task_def(&world.region(region).ecs, v)?),
                None => None,
            };
            let c = cluster_mut(world, region, &cluster)?;
            let svc = c.services.get_mut(&name).ok_or_else(no_service)?;
            if svc.status != "ACTIVE" {
                return Err(AwsError::new(
                    400,
                    "ServiceNotActiveException",
                    "Service was not ACTIVE.",
                ));
            }
            if let Some(d) = b.int("desiredCount")? {
                if d < 0 {
                    return Err(invalid("desiredCount must be non-negative."));
                }
                if !svc.daemon {
                    svc.desired = d as usize;
                }
            }
            if b.get("deploymentConfiguration").is_some() {
                let (min, max) = deployment_config(b, (svc.min_healthy_pct, svc.max_pct))?;
                svc.min_healthy_pct = min;
                svc.max_pct = max;
            }
            if let Some(td) = td {
                // New tasks use the new definition; running ones are not rolled.
                svc.task_def = td.arn;
                svc.containers = td.containers;
            }
            reconcile(world, region, &cluster);
            let c = cluster_mut(world, region, &cluster)?;
            Ok(json!({"service": service_json(c, &c.services[&name])}))
        }
        "DescribeServices" => {
            let cluster = cluster_arg(b)?;
            let wanted = b.str_list("services")?;
            let c = cluster_mut(world, region, &cluster)?;
            let mut out = Vec::new();
            let mut failures = Vec::new();
            for w in wanted {
                match c.services.get(short(&w)) {
                    Some(s) => out.push(service_json(c, s)),
                    None => failures.push(json!({"arn": arn(region, &format!("service/{}/{}", c.name, short(&w))), "reason": "MISSING"})),
                }
            }
            Ok(json!({"services": out, "failures": failures}))
        }
        "ListServices" => {
            let cluster = cluster_arg(b)?;
            let c = cluster_mut(world, region, &cluster)?;
            let arns = c
                .services
                .values()
                .filter(|s| s.status != "INACTIVE")
                .map(|s| s.arn.clone())
                .collect();
            paged("serviceArns", arns, b)
        }
        "DeleteService" => {
            let cluster = cluster_arg(b)?;
            let name = short(b.required_str("service")?).to_owned();
            let force = b.bool("force")?.unwrap_or(false);
            let c = cluster_mut(world, region, &cluster)?;
            let svc = c.services.get_mut(&name).ok_or_else(no_service)?;
            if svc.status != "ACTIVE" {
                return Err(AwsError::new(
                    400,
                    "ServiceNotActiveException",
                    "Service was not ACTIVE.",
                ));
            }
            if !svc.daemon && svc.desired > 0 && !force {
                return Err(invalid(
                    "The service cannot be stopped while it is scaled above 0.",
                ));
            }
            svc.status = "DRAINING";
            svc.desired = 0;
            let v = service_json(c, &c.services[&name]);
            reconcile(world, region, &cluster);
            Ok(json!({"service": v}))
        }
        "RunTask" => {
            let cluster = cluster_arg(b)?;
            let td =
                resolve_task_def(&world.region(region).ecs, b.required_str("taskDefinition")?)?;
            let count = b.int("count")?.unwrap_or(1);
            if !(1..=10).contains(&count) {
                return Err(invalid("count must be between 1 and 10."));
            }
            let started_by = b.str("startedBy")?.map(str::to_owned);
            let group = b
                .str("group")?
                .map(str::to_owned)
                .unwrap_or_else(|| format!("family:{}", td.family));
            let mut sched = Sched::new();
            let c = cluster_mut(world, region, &cluster)?;
            if !c.instances.iter().any(|i| i.status == "ACTIVE") {
                return Err(invalid(
                    "No Container Instances were found in your cluster.",
                ));
            }
            let mut created = Vec::new();
            for _ in 0..count {
                let Some(inst) = place(c, None) else { break };
                let i = new_task(
                    c,
                    region,
                    &inst,
                    &td.arn,
                    &td.containers,
                    group.clone(),
                    started_by.clone(),
                    None,
                    now,
                    &mut sched,
                );
                created.push(task_json(c, region, &c.tasks[i]));
            }
            for (at, t) in sched {
                world.schedule(at, region, WorldTimer::Ecs(t));
            }
            Ok(json!({"tasks": created, "failures": []}))
        }
        "ListTasks" => {
            let cluster = cluster_arg(b)?;
            let inst = b.str("containerInstance")?.map(|s| short(s).to_owned());
            let service = b.str("serviceName")?.map(|s| short(s).to_owned());
            let started_by = b.str("startedBy")?.map(str::to_owned);
            let family = b.str("family")?.map(str::to_owned);
            let desired = b.str("desiredStatus")?.unwrap_or("RUNNING").to_owned();
            if !matches!(desired.as_str(), "RUNNING" | "PENDING" | "STOPPED") {
                return Err(invalid(format!("Invalid desiredStatus {desired}")));
            }
            let c = cluster_mut(world, region, &cluster)?;
            if let Some(s) = &service
                && !c.services.contains_key(s)
            {
                return Err(no_service());
            }
            let arns = c
                .tasks
                .iter()
                .filter(|t| match desired.as_str() {
                    "STOPPED" => t.desired == "STOPPED",
                    "PENDING" => t.desired == "RUNNING" && t.last == "PENDING",
                    _ => t.desired == "RUNNING",
                })
                .filter(|t| inst.as_ref().is_none_or(|i| &t.instance == i))
                .filter(|t| service.is_none() || t.service == service)
                .filter(|t| started_by.is_none() || t.started_by == started_by)
                .filter(|t| {
                    family
                        .as_ref()
                        .is_none_or(|f| t.task_def.contains(&format!("task-definition/{f}:")))
                })
                .map(|t| t.arn.clone())
                .collect();
            paged("taskArns", arns, b)
        }
        "DescribeTasks" => {
            let cluster = cluster_arg(b)?;
            let wanted = b.str_list("tasks")?;
            if wanted.is_empty() {
                return Err(invalid("Tasks cannot be empty."));
            }
            let c = cluster_mut(world, region, &cluster)?;
            let mut out = Vec::new();
            let mut failures = Vec::new();
            for w in wanted {
                match c.tasks.iter().find(|t| t.id == short(&w)) {
                    Some(t) => out.push(task_json(c, region, t)),
                    None => failures.push(json!({"arn": w, "reason": "MISSING"})),
                }
            }
            Ok(json!({"tasks": out, "failures": failures}))
        }
        "StopTask" => {
            let cluster = cluster_arg(b)?;
            let id = short(b.required_str("task")?).to_owned();
            let reason = b
                .str("reason")?
                .unwrap_or("Task stopped by user")
                .to_owned();
            let mut sched = Sched::new();
            let c = cluster_mut(world, region, &cluster)?;
            let cname = c.name.clone();
            let t = c
                .tasks
                .iter_mut()
                .find(|t| t.id == id)
                .ok_or_else(|| invalid("The referenced task was not found."))?;
            begin_stop(&cname, t, &reason, "UserInitiated", now, &mut sched);
            let v = task_json(
                c,
                region,
                c.tasks.iter().find(|t| t.id == id).expect("task"),
            );
            for (at, t) in sched {
                world.schedule(at, region, WorldTimer::Ecs(t));
            }
            reconcile(world, region, &cluster);
            Ok(json!({"task": v}))
        }
        op => Err(AwsError::unknown_operation(Svc::Ecs, op)),
    }
}

/// The subset of the cluster query language the sandbox understands in
/// ListContainerInstances `filter`: `ec2InstanceId == i-x` and `ec2InstanceId in [i-a, i-b]`
/// (values optionally quoted).
struct Filter {
    ec2_ids: Vec<String>,
}

impl Filter {
    fn matches(&self, i: &ContainerInstance) -> bool {
        self.ec2_ids.contains(&i.ec2_instance_id)
    }
}

fn parse_filter(f: &str) -> Result<Filter, AwsError> {
    let unsupported = || {
        invalid(format!(
            "The sandbox supports only 'ec2InstanceId == <id>' and 'ec2InstanceId in [<ids>]' filters, not {f:?}"
        ))
    };
    let unquote = |v: &str| v.trim().trim_matches(['"', '\'']).to_owned();
    let f2 = f.trim();
    let rest = f2
        .strip_prefix("ec2InstanceId")
        .ok_or_else(unsupported)?
        .trim();
    let ec2_ids = if let Some(v) = rest.strip_prefix("==") {
        vec![unquote(v)]
    } else if let Some(v) = rest.strip_prefix("in") {
        let v = v.trim();
        let inner = v
            .strip_prefix('[')
            .and_then(|v| v.strip_suffix(']'))
            .ok_or_else(unsupported)?;
        inner
            .split(',')
            .map(unquote)
            .filter(|s| !s.is_empty())
            .collect()
    } else {
        return Err(unsupported());
    };
    Ok(Filter { ec2_ids })
}

fn deployment_config(b: &JsonBody, default: (usize, usize)) -> Result<(usize, usize), AwsError> {
    let Some(dc) = b.object("deploymentConfiguration")? else {
        return Ok(default);
    };
    let get = |k: &str, d: usize| -> Result<usize, AwsError> {
        match dc.get(k) {
            None | Some(Value::Null) => Ok(d),
            Some(v) => v
                .as_u64()
                .map(|n| n as usize)
                .ok_or_else(|| invalid(format!("{k} must be a non-negative integer"))),
        }
    };
    let min = get("minimumHealthyPercent", default.0)?;
    let max = get("maximumPercent", default.1)?;
    if min > 100 {
        return Err(invalid("minimumHealthyPercent must be between 0 and 100."));
    }
    if max < min {
        return Err(invalid(
            "maximumPercent must be at least minimumHealthyPercent.",
        ));
    }
    Ok((min, max))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Wire;

    fn ctx(op: &str) -> RequestCtx {
        RequestCtx {
            request_id: "r".into(),
            region: "us-east-1".into(),
            host: "h".into(),
            path: "/".into(),
            service: Svc::Ecs,
            wire: Wire::Json { version: "1.1" },
            op: op.into(),
        }
    }

    fn call(w: &mut World, op: &str, body: Value) -> Result<Value, AwsError> {
        let Value::Object(m) = body else { panic!() };
        run(w, &ctx(op), &JsonBody(m))
    }

    fn tasks_on(w: &mut World, inst: &str) -> Vec<(String, String)> {
        let c = &w.region("us-east-1").ecs.clusters["c"];
        c.tasks
            .iter()
            .filter(|t| t.instance == inst)
            .map(|t| (t.group.clone(), t.last.to_owned()))
            .collect()
    }

    #[test]
    fn drain_replaces_service_tasks_before_stopping_them() {
        let mut w = World::new(0, Default::default());
        call(&mut w, "CreateCluster", json!({"clusterName": "c"})).unwrap();
        let mut inst = Vec::new();
        for i in 0..3 {
            let doc = json!({"instanceId": format!("i-{i}")}).to_string();
            let v = call(
                &mut w,
                "RegisterContainerInstance",
                json!({"cluster": "c", "instanceIdentityDocument": doc}),
            )
            .unwrap();
            inst.push(
                short(
                    v["containerInstance"]["containerInstanceArn"]
                        .as_str()
                        .unwrap(),
                )
                .to_owned(),
            );
        }
        call(
            &mut w,
            "RegisterTaskDefinition",
            json!({"family": "web", "containerDefinitions": [{"name": "app"}]}),
        )
        .unwrap();
        call(
            &mut w,
            "CreateService",
            json!({"cluster": "c", "serviceName": "s", "taskDefinition": "web", "desiredCount": 3}),
        )
        .unwrap();
        w.run_until(TASK_START_MS);
        for i in &inst {
            assert_eq!(
                tasks_on(&mut w, i),
                vec![("service:s".into(), "RUNNING".into())]
            );
        }
        call(
            &mut w,
            "UpdateContainerInstancesState",
            json!({"cluster": "c", "containerInstances": [inst[0]], "status": "DRAINING"}),
        )
        .unwrap();
        // The replacement starts first; the old task keeps running meanwhile.
        assert_eq!(
            tasks_on(&mut w, &inst[0]),
            vec![("service:s".into(), "RUNNING".into())]
        );
        let live: usize = [1, 2]
            .iter()
            .map(|&i| tasks_on(&mut w, &inst[i]).len())
            .sum();
        assert_eq!(live, 3);
        w.run_until(2 * TASK_START_MS);
        let c = &w.region("us-east-1").ecs.clusters["c"];
        let old = c.tasks.iter().find(|t| t.instance == inst[0]).unwrap();
        assert_eq!((old.last, old.desired), ("RUNNING", "STOPPED"));
        w.run_until(2 * TASK_START_MS + 4 * STOP_STEP_MS);
        assert_eq!(
            tasks_on(&mut w, &inst[0]),
            vec![("service:s".into(), "STOPPED".into())]
        );
    }

    #[test]
    fn stopped_service_tasks_are_replaced_daemons_follow_instances_and_delete_drains() {
        let mut w = World::new(0, Default::default());
        call(&mut w, "CreateCluster", json!({"clusterName": "c"})).unwrap();
        let reg = |w: &mut World, i: &str| {
            let doc = json!({ "instanceId": i }).to_string();
            call(
                w,
                "RegisterContainerInstance",
                json!({"cluster": "c", "instanceIdentityDocument": doc}),
            )
            .unwrap();
        };
        reg(&mut w, "i-1");
        call(
            &mut w,
            "RegisterTaskDefinition",
            json!({"family": "web", "containerDefinitions": [{"name": "app"}]}),
        )
        .unwrap();
        call(&mut w, "CreateService", json!({"cluster": "c", "serviceName": "s", "taskDefinition": "web:1", "desiredCount": 2})).unwrap();
        call(&mut w, "CreateService", json!({"cluster": "c", "serviceName": "d", "taskDefinition": "web", "schedulingStrategy": "DAEMON"})).unwrap();
        w.run_until(TASK_START_MS);
        let list = |w: &mut World, body: Value| -> Vec<String> {
            call(w, "ListTasks", body).unwrap()["taskArns"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(
            list(&mut w, json!({"cluster": "c", "serviceName": "s"})).len(),
            2
        );
        assert_eq!(
            list(&mut w, json!({"cluster": "c", "serviceName": "d"})).len(),
            1
        );
        // A second instance gets a daemon task.
        reg(&mut w, "i-2");
        assert_eq!(
            list(&mut w, json!({"cluster": "c", "serviceName": "d"})).len(),
            2
        );
        // StopTask on a service task: the scheduler replaces it at once.
        let victim = list(&mut w, json!({"cluster": "c", "serviceName": "s"}))[0].clone();
        call(&mut w, "StopTask", json!({"cluster": "c", "task": victim})).unwrap();
        let now_live = list(&mut w, json!({"cluster": "c", "serviceName": "s"}));
        assert_eq!(now_live.len(), 2);
        assert!(!now_live.contains(&victim));
        // DeleteService needs desiredCount 0 (or force), then drains to INACTIVE.
        assert!(
            call(
                &mut w,
                "DeleteService",
                json!({"cluster": "c", "service": "s"})
            )
            .is_err()
        );
        let v = call(
            &mut w,
            "DeleteService",
            json!({"cluster": "c", "service": "s", "force": true}),
        )
        .unwrap();
        assert_eq!(v["service"]["status"], "DRAINING");
        w.run_until(TASK_START_MS + 5 * STOP_STEP_MS);
        let v = call(
            &mut w,
            "DescribeServices",
            json!({"cluster": "c", "services": ["s"]}),
        )
        .unwrap();
        assert_eq!(v["services"][0]["status"], "INACTIVE");
        assert!(list(&mut w, json!({"cluster": "c", "serviceName": "s"})).is_empty());
        // Bad inputs are errors, not panics.
        for (op, body) in [
            ("ListTasks", json!({"cluster": "nope"})),
            ("ListTasks", json!({"cluster": "c", "maxResults": 0})),
            ("ListTasks", json!({"cluster": "c", "nextToken": "x"})),
            (
                "ListContainerInstances",
                json!({"cluster": "c", "filter": "attribute:x == y"}),
            ),
            (
                "UpdateContainerInstancesState",
                json!({"cluster": "c", "containerInstances": [], "status": "GONE"}),
            ),
            (
                "RunTask",
                json!({"cluster": "c", "taskDefinition": "web:99"}),
            ),
            (
                "RunTask",
                json!({"cluster": "c", "taskDefinition": "web:x"}),
            ),
            (
                "RegisterContainerInstance",
                json!({"cluster": "c", "instanceIdentityDocument": "{"}),
            ),
            ("DescribeTasks", json!({"cluster": "c", "tasks": []})),
        ] {
            assert!(call(&mut w, op, body.clone()).is_err(), "{op} {body}");
        }
        assert!(
            parse_filter("ec2InstanceId in ['i-1', \"i-2\"]")
                .unwrap()
                .ec2_ids
                == ["i-1", "i-2"]
        );
    }
}
