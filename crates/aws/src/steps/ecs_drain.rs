//! `ecs-drain`: drain the action's instance from ECS.
//!
//! 1. Find its container instance: in `cluster`, or in each cluster of the account
//!    (ListClusters) until one has it (`ListContainerInstances` with the filter
//!    `ec2InstanceId == i-…`). An instance that is in no cluster has nothing to drain.
//! 2. Set it DRAINING (UpdateContainerInstancesState; again on every attempt, harmlessly).
//! 3. Every `interval`, list the tasks on it (ListTasks for desired status RUNNING and
//!    STOPPED, every page; DescribeTasks by 100) and count those not yet STOPPED —
//!    PROVISIONING, PENDING, ACTIVATING, RUNNING, DEACTIVATING, STOPPING, DEPROVISIONING.
//!    Tasks of REPLICA services move away on their own (the scheduler starts replacements
//!    elsewhere, then stops them): wait.
//! 4. Once only other tasks remain — standalone tasks (RunTask) and tasks of DAEMON
//!    services, which ECS does not move — stop them (StopTask, unless `stop_tasks =
//!    false`), and wait until they are STOPPED too.
//! 5. Succeed when nothing runs on the instance. When time runs out, the failure says what
//!    still runs.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ecs::Client;
use aws_sdk_ecs::types::{ContainerInstanceStatus, DesiredStatus, SchedulingStrategy};
use lifehook_core::config::{EcsDrainStep, format_duration};
use lifehook_core::step::{Failure, Success};

use super::{Cx, done};

/// Task states that are over.
const STOPPED: &str = "STOPPED";

/// What runs on the container instance at one look.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Census {
    /// Tasks of REPLICA services not yet stopped (they move away by themselves).
    service: Vec<Task>,
    /// Standalone and DAEMON-service tasks not yet stopped.
    other: Vec<Task>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Task {
    arn: String,
    last_status: String,
    desired_status: String,
    /// `service:NAME`, `family:NAME` or a RunTask group.
    group: String,
}

impl Census {
    fn describe(&self) -> String {
        let count = |tasks: &[Task]| {
            let mut by: BTreeMap<&str, usize> = BTreeMap::new();
            for t in tasks {
                *by.entry(t.last_status.as_str()).or_default() += 1;
            }
            by.iter()
                .map(|(s, n)| format!("{n} {s}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match (self.service.is_empty(), self.other.is_empty()) {
            (true, true) => "no task".into(),
            (false, true) => format!(
                "{} service task(s) ({})",
                self.service.len(),
                count(&self.service)
            ),
            (true, false) => format!(
                "{} standalone/daemon task(s) ({})",
                self.other.len(),
                count(&self.other)
            ),
            (false, false) => format!(
                "{} service task(s) ({}) and {} standalone/daemon task(s) ({})",
                self.service.len(),
                count(&self.service),
                self.other.len(),
                count(&self.other)
            ),
        }
    }
}

pub(crate) async fn run(ecs: &Client, cx: &Cx<'_>, d: &EcsDrainStep) -> Result<Success, Failure> {
    let instance = cx.instance_id().to_owned();
    let cluster = match &d.cluster {
        Some(c) => Some(cx.render(c)?),
        None => None,
    };
    let Some((cluster, ci)) = find(ecs, cx, cluster, &instance).await? else {
        return Ok(done(format!(
            "{instance} is not a container instance of any cluster: nothing to drain"
        )));
    };
    let upd = ecs
        .update_container_instances_state()
        .cluster(&cluster)
        .container_instances(&ci)
        .status(ContainerInstanceStatus::Draining)
        .send()
        .await
        .map_err(|e| cx.api(&format!("UpdateContainerInstancesState {ci} DRAINING"), &e))?;
    if let Some(f) = upd.failures().first() {
        return Err(Failure::fatal(format!(
            "{}: UpdateContainerInstancesState {ci} DRAINING: {} {}",
            cx.who(),
            f.reason().unwrap_or("failure"),
            f.detail().unwrap_or_default()
        )));
    }
    let started = tokio::time::Instant::now();
    let mut stopped: BTreeSet<String> = BTreeSet::new();
    let mut strategies: BTreeMap<String, bool> = BTreeMap::new();
    let mut looks = 0u32;
    loop {
        looks += 1;
        let census = census(ecs, cx, &cluster, &ci, &mut strategies).await?;
        if census.service.is_empty() && census.other.is_empty() {
            return Ok(done(format!(
                "container instance {ci} of {instance} in cluster {cluster} drained: nothing runs \
                 after {} ({looks} look(s); stopped {} standalone/daemon task(s))",
                format_duration(started.elapsed()),
                stopped.len()
            )));
        }
        if census.service.is_empty() && d.stop_tasks {
            for t in &census.other {
                if t.desired_status != STOPPED && !stopped.contains(&t.arn) {
                    stop(ecs, cx, &cluster, t).await?;
                    stopped.insert(t.arn.clone());
                }
            }
        }
        tracing::debug!(step = %cx.step.name, cluster = %cluster, container_instance = %ci, running = %census.describe(), "draining");
        if !cx.pause(d.interval).await {
            return Err(cx.timeout(format!(
                "container instance {ci} of {instance} (cluster {cluster}) is DRAINING, but after {} {} still run(s) on it{}",
                format_duration(started.elapsed()),
                census.describe(),
                if !census.service.is_empty() {
                    ": services could not place the replacements elsewhere, or are slow to"
                } else if !d.stop_tasks {
                    " (stop_tasks = false: something else must stop them)"
                } else {
                    ""
                }
            )));
        }
    }
}

/// The cluster and container instance ARN of `instance`.
async fn find(
    ecs: &Client,
    cx: &Cx<'_>,
    cluster: Option<String>,
    instance: &str,
) -> Result<Option<(String, String)>, Failure> {
    let clusters = match cluster {
        Some(c) => vec![c],
        None => {
            let mut all = Vec::new();
            let mut token = None;
            loop {
                let out = ecs
                    .list_clusters()
                    .set_next_token(token)
                    .send()
                    .await
                    .map_err(|e| cx.api("ListClusters", &e))?;
                all.extend(out.cluster_arns().iter().cloned());
                match out.next_token() {
                    Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                    _ => break,
                }
            }
            all
        }
    };
    let filter = format!("ec2InstanceId == {instance}");
    for c in clusters {
        let mut token = None;
        loop {
            let out = ecs
                .list_container_instances()
                .cluster(&c)
                .filter(&filter)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| cx.api(&format!("ListContainerInstances in {c}"), &e))?;
            if let Some(arn) = out.container_instance_arns().first() {
                return Ok(Some((c, arn.clone())));
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => break,
            }
        }
    }
    Ok(None)
}

/// The tasks on the container instance that are not yet STOPPED.
async fn census(
    ecs: &Client,
    cx: &Cx<'_>,
    cluster: &str,
    ci: &str,
    strategies: &mut BTreeMap<String, bool>,
) -> Result<Census, Failure> {
    let mut arns: Vec<String> = Vec::new();
    // Desired RUNNING, and desired STOPPED but still shutting down.
    for desired in [DesiredStatus::Running, DesiredStatus::Stopped] {
        let mut token = None;
        loop {
            let out = ecs
                .list_tasks()
                .cluster(cluster)
                .container_instance(ci)
                .desired_status(desired.clone())
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| cx.api(&format!("ListTasks on {ci}"), &e))?;
            for a in out.task_arns() {
                if !arns.contains(a) {
                    arns.push(a.clone());
                }
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => break,
            }
        }
    }
    let mut live = Vec::new();
    for chunk in arns.chunks(100) {
        let out = ecs
            .describe_tasks()
            .cluster(cluster)
            .set_tasks(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| cx.api("DescribeTasks", &e))?;
        for t in out.tasks() {
            let last = t.last_status().unwrap_or_default();
            if last == STOPPED {
                continue;
            }
            live.push(Task {
                arn: t.task_arn().unwrap_or_default().to_owned(),
                last_status: last.to_owned(),
                desired_status: t.desired_status().unwrap_or_default().to_owned(),
                group: t.group().unwrap_or_default().to_owned(),
            });
        }
    }
    // Which services are REPLICA (their tasks move away) and which DAEMON (they stay).
    let unknown: Vec<String> = live
        .iter()
        .filter_map(|t| t.group.strip_prefix("service:"))
        .filter(|s| !strategies.contains_key(*s))
        .map(str::to_owned)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    for chunk in unknown.chunks(10) {
        let out = ecs
            .describe_services()
            .cluster(cluster)
            .set_services(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| cx.api("DescribeServices", &e))?;
        for s in out.services() {
            let replica = s.scheduling_strategy() != Some(&SchedulingStrategy::Daemon)
                && s.status() != Some("INACTIVE");
            if let Some(name) = s.service_name() {
                strategies.insert(name.to_owned(), replica);
            }
        }
        // A service that is gone does not move its tasks any more.
        for name in chunk {
            strategies.entry(name.clone()).or_insert(false);
        }
    }
    let mut census = Census::default();
    for t in live {
        let replica = t
            .group
            .strip_prefix("service:")
            .is_some_and(|s| strategies.get(s).copied().unwrap_or(false));
        if replica {
            census.service.push(t);
        } else {
            census.other.push(t);
        }
    }
    Ok(census)
}

async fn stop(ecs: &Client, cx: &Cx<'_>, cluster: &str, t: &Task) -> Result<(), Failure> {
    tracing::info!(step = %cx.step.name, task = %t.arn, group = %t.group, "stopping a task that no service moves away");
    match ecs
        .stop_task()
        .cluster(cluster)
        .task(&t.arn)
        .reason(format!(
            "lifehook {}: instance {} is leaving",
            cx.step.name,
            cx.instance_id()
        ))
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) => Err(cx.api(&format!("StopTask {}", t.arn), &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(status: &str) -> Task {
        Task {
            arn: "arn".into(),
            last_status: status.into(),
            desired_status: "RUNNING".into(),
            group: "service:web".into(),
        }
    }

    #[test]
    fn census_describes_what_runs() {
        let c = Census {
            service: vec![task("RUNNING"), task("RUNNING"), task("STOPPING")],
            other: vec![task("RUNNING")],
        };
        assert_eq!(
            c.describe(),
            "3 service task(s) (2 RUNNING, 1 STOPPING) and 1 standalone/daemon task(s) (1 RUNNING)"
        );
        assert_eq!(Census::default().describe(), "no task");
    }
}
