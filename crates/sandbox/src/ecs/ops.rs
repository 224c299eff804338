//! The ECS operations: `handle`, its dispatch, and one function per operation.

use super::*;

type R = Result<Value, AwsError>;

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
    Ok(crate::protocol::page_at(items, start, max))
}

fn paged(key: &str, items: Vec<String>, b: &JsonBody) -> R {
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

pub(crate) fn run(world: &mut World, ctx: &RequestCtx, b: &JsonBody) -> R {
    match ctx.op.as_str() {
        "CreateCluster" => create_cluster(world, ctx, b),
        "DescribeClusters" => describe_clusters(world, ctx, b),
        "ListClusters" => list_clusters(world, ctx, b),
        "DeleteCluster" => delete_cluster(world, ctx, b),
        "RegisterContainerInstance" => register_container_instance(world, ctx, b),
        "DeregisterContainerInstance" => deregister_container_instance(world, ctx, b),
        "ListContainerInstances" => list_container_instances(world, ctx, b),
        "DescribeContainerInstances" => describe_container_instances(world, ctx, b),
        "UpdateContainerInstancesState" => update_container_instances_state(world, ctx, b),
        "RegisterTaskDefinition" => register_task_definition(world, ctx, b),
        "DescribeTaskDefinition" => describe_task_definition(world, ctx, b),
        "CreateService" => create_service(world, ctx, b),
        "UpdateService" => update_service(world, ctx, b),
        "DescribeServices" => describe_services(world, ctx, b),
        "ListServices" => list_services(world, ctx, b),
        "DeleteService" => delete_service(world, ctx, b),
        "RunTask" => run_task(world, ctx, b),
        "ListTasks" => list_tasks(world, ctx, b),
        "DescribeTasks" => describe_tasks(world, ctx, b),
        "StopTask" => stop_task(world, ctx, b),
        op => Err(AwsError::unknown_operation(Svc::Ecs, op)),
    }
}

fn create_cluster(world: &mut World, ctx: &RequestCtx, b: &JsonBody) -> R {
    let region = ctx.region.as_str();
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

/// A `Describe*` answer: under `key`, what `find` finds for each wanted name; under
/// `failures`, a `MISSING` failure at the ARN `missing_arn` gives for each it does not.
fn described(
    key: &str,
    wanted: Vec<String>,
    find: impl Fn(&str) -> Option<Value>,
    missing_arn: impl Fn(&str) -> String,
) -> Value {
    let mut out = Vec::new();
    let mut failures = Vec::new();
    for w in wanted {
        match find(&w) {
            Some(v) => out.push(v),
            None => failures.push(json!({"arn": missing_arn(&w), "reason": "MISSING"})),
        }
    }
    let mut m = serde_json::Map::new();
    m.insert(key.to_owned(), Value::Array(out));
    m.insert("failures".to_owned(), Value::Array(failures));
    Value::Object(m)
}

/// The cluster's service `name`, which must be `ACTIVE`.
fn active_service<'a>(c: &'a mut Cluster, name: &str) -> Result<&'a mut Service, AwsError> {
    let svc = c.services.get_mut(name).ok_or_else(no_service)?;
    if svc.status != "ACTIVE" {
        return Err(AwsError::new(
            400,
            "ServiceNotActiveException",
            "Service was not ACTIVE.",
        ));
    }
    Ok(svc)
}

fn describe_clusters(world: &mut World, ctx: &RequestCtx, b: &JsonBody) -> R {
    let region = ctx.region.as_str();
    let mut names = b.str_list("clusters")?;
    if names.is_empty() {
        names.push(DEFAULT_CLUSTER.into());
    }
    let st = &world.region(region).ecs;
    Ok(described(
        "clusters",
        names,
        |n| st.clusters.get(cluster_name(n)).map(cluster_json),
        |n| arn(region, &format!("cluster/{}", cluster_name(n))),
    ))
}

fn list_clusters(world: &mut World, ctx: &RequestCtx, b: &JsonBody) -> R {
    let region = ctx.region.as_str();
    let arns = world
        .region(region)
        .ecs
        .clusters
        .values()
        .map(|c| c.arn.clone())
        .collect();
    paged("clusterArns", arns, b)
}

fn delete_cluster(world: &mut World, ctx: &RequestCtx, b: &JsonBody) -> R {
    let region = ctx.region.as_str();
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

fn register_container_instance(world: &mut World, ctx: &RequestCtx, b: &JsonBody) -> R {
    let region = ctx.region.as_str();
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
        .ok_or_else(|| client("instanceIdentityDocument must be JSON with an instanceId"))?;
    let v = register_instance(world, region, &cluster, &ec2);
    Ok(json!({"containerInstance": v}))
}

fn deregister_container_instance(world: &mut World, ctx: &RequestCtx, b: &JsonBody) -> R {
    let region = ctx.region.as_str();
    let now = world.now;
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

fn list_container_instances(world: &mut World, ctx: &RequestCtx, b: &JsonBody) -> R {
    let region = ctx.region.as_str();
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

fn describe_container_instances(world: &mut World, ctx: &RequestCtx, b: &JsonBody) -> R {
    let region = ctx.region.as_str();
    let cluster = cluster_arg(b)?;
    let wanted = b.str_list("containerInstances")?;
    let c = &*cluster_mut(world, region, &cluster)?;
    Ok(described(
        "containerInstances",
        wanted,
        |w| {
            let i = c.instances.iter().find(|i| i.id == short(w))?;
            Some(instance_json(c, i))
        },
        str::to_owned,
    ))
}

fn update_container_instances_state(world: &mut World, ctx: &RequestCtx, b: &JsonBody) -> R {
    let region = ctx.region.as_str();
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

fn register_task_definition(world: &mut World, ctx: &RequestCtx, b: &JsonBody) -> R {
    let region = ctx.region.as_str();
    let now = world.now;
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

fn describe_task_definition(world: &mut World, ctx: &RequestCtx, b: &JsonBody) -> R {
    let region = ctx.region.as_str();
    let td = resolve_task_def(&world.region(region).ecs, b.required_str("taskDefinition")?)?;
    Ok(json!({"taskDefinition": task_def_json(&td), "tags": []}))
}

fn create_service(world: &mut World, ctx: &RequestCtx, b: &JsonBody) -> R {
    let region = ctx.region.as_str();
    let now = world.now;
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
    let (min_pct, max_pct) = deployment_config(b, if daemon { (0, 100) } else { (100, 200) })?;
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

fn update_service(world: &mut World, ctx: &RequestCtx, b: &JsonBody) -> R {
    let region = ctx.region.as_str();
    let cluster = cluster_arg(b)?;
    let name = short(b.required_str("service")?).to_owned();
    let td = match b.str("taskDefinition")? {
        Some(v) => Some(resolve_task_def(&world.region(region).ecs, v)?),
        None => None,
    };
    let c = cluster_mut(world, region, &cluster)?;
    let svc = active_service(c, &name)?;
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

fn describe_services(world: &mut World, ctx: &RequestCtx, b: &JsonBody) -> R {
    let region = ctx.region.as_str();
    let cluster = cluster_arg(b)?;
    let wanted = b.str_list("services")?;
    let c = &*cluster_mut(world, region, &cluster)?;
    Ok(described(
        "services",
        wanted,
        |w| c.services.get(short(w)).map(|s| service_json(c, s)),
        |w| arn(region, &format!("service/{}/{}", c.name, short(w))),
    ))
}

fn list_services(world: &mut World, ctx: &RequestCtx, b: &JsonBody) -> R {
    let region = ctx.region.as_str();
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

fn delete_service(world: &mut World, ctx: &RequestCtx, b: &JsonBody) -> R {
    let region = ctx.region.as_str();
    let cluster = cluster_arg(b)?;
    let name = short(b.required_str("service")?).to_owned();
    let force = b.bool("force")?.unwrap_or(false);
    let c = cluster_mut(world, region, &cluster)?;
    let svc = active_service(c, &name)?;
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

fn run_task(world: &mut World, ctx: &RequestCtx, b: &JsonBody) -> R {
    let region = ctx.region.as_str();
    let now = world.now;
    let cluster = cluster_arg(b)?;
    let td = resolve_task_def(&world.region(region).ecs, b.required_str("taskDefinition")?)?;
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

fn list_tasks(world: &mut World, ctx: &RequestCtx, b: &JsonBody) -> R {
    let region = ctx.region.as_str();
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

fn describe_tasks(world: &mut World, ctx: &RequestCtx, b: &JsonBody) -> R {
    let region = ctx.region.as_str();
    let cluster = cluster_arg(b)?;
    let wanted = b.str_list("tasks")?;
    if wanted.is_empty() {
        return Err(invalid("Tasks cannot be empty."));
    }
    let c = &*cluster_mut(world, region, &cluster)?;
    Ok(described(
        "tasks",
        wanted,
        |w| {
            let t = c.tasks.iter().find(|t| t.id == short(w))?;
            Some(task_json(c, region, t))
        },
        str::to_owned,
    ))
}

fn stop_task(world: &mut World, ctx: &RequestCtx, b: &JsonBody) -> R {
    let region = ctx.region.as_str();
    let now = world.now;
    let cluster = cluster_arg(b)?;
    let id = short(b.required_str("task")?).to_owned();
    let reason = b
        .str("reason")?
        .unwrap_or("Task stopped by user")
        .to_owned();
    let mut sched = Sched::new();
    let c = cluster_mut(world, region, &cluster)?;
    let cname = c.name.clone();
    let i = c
        .tasks
        .iter()
        .position(|t| t.id == id)
        .ok_or_else(|| invalid("The referenced task was not found."))?;
    begin_stop(
        &cname,
        &mut c.tasks[i],
        &reason,
        "UserInitiated",
        now,
        &mut sched,
    );
    let v = task_json(c, region, &c.tasks[i]);
    for (at, t) in sched {
        world.schedule(at, region, WorldTimer::Ecs(t));
    }
    reconcile(world, region, &cluster);
    Ok(json!({"task": v}))
}

/// The subset of the cluster query language the sandbox understands in
/// ListContainerInstances `filter`: `ec2InstanceId == i-x` and `ec2InstanceId in [i-a, i-b]`
/// (values optionally quoted).
pub(super) struct Filter {
    pub(super) ec2_ids: Vec<String>,
}

impl Filter {
    fn matches(&self, i: &ContainerInstance) -> bool {
        self.ec2_ids.contains(&i.ec2_instance_id)
    }
}

pub(super) fn parse_filter(f: &str) -> Result<Filter, AwsError> {
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
