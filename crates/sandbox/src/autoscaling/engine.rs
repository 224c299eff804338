//! The Auto Scaling data model and the lifecycle state machine of spec §1.11, driven by
//! virtual time. Every function here works on a [`World`] and a region name, so that the
//! engine can call SQS, SNS and EventBridge (spec §2.8) under the same lock.
//!
//! Simplifications (documented, deliberate):
//! - Instances are simulated: `Pending`, `Pending:Proceed`, `Terminating` and
//!   `Terminating:Proceed` are passed through at once (there is no EC2 boot time); only
//!   the hook waits (`Pending:Wait`, `Terminating:Wait`) take virtual time, and so does
//!   `Terminating` while the instance drains from its target groups ([`crate::elbv2::asg`]).
//! - Terminated and detached instances leave the group at once but stay in the state (and in
//!   `GET /_sandbox/state`) for [`super::Options::terminated_visible_secs`].

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

use lifehook_model::{Endpoint, LifecycleResult, LifecycleState as S, LifecycleTransition as T};

use super::timeline::{Timeline, What};
use super::{Timer, notify};
use crate::clock::{Millis, iso_secs};
use crate::ids;
use crate::world::{Timer as WorldTimer, World};

/// The largest MaxSize a group may have in the sandbox (keeps every request bounded).
pub(crate) const MAX_GROUP_SIZE: i64 = 50_000;
/// At most 50 lifecycle hooks per group (spec §2.1).
pub(crate) const MAX_HOOKS_PER_GROUP: usize = 50;
/// At most 50 tags per group (spec §4.5).
pub(crate) const MAX_TAGS_PER_GROUP: usize = 50;
/// Default instance type of simulated instances when the group does not name one.
pub(crate) const DEFAULT_INSTANCE_TYPE: &str = "t3.micro";

/// A launch template reference.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct LtSpec {
    pub(crate) id: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) version: Option<String>,
}

/// The launch template part of a MixedInstancesPolicy (the rest is not simulated).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct MixedPolicy {
    pub(crate) launch_template: LtSpec,
    pub(crate) instance_types: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tag {
    pub(crate) key: String,
    pub(crate) value: String,
    pub(crate) propagate: bool,
}

/// A lifecycle hook (spec §2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hook {
    pub(crate) name: String,
    pub(crate) transition: T,
    pub(crate) target: Option<String>,
    pub(crate) role: Option<String>,
    pub(crate) metadata: Option<String>,
    pub(crate) heartbeat_secs: u64,
    pub(crate) default_result: LifecycleResult,
}

/// An Auto Scaling group.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub(crate) name: String,
    pub(crate) arn: String,
    pub(crate) created: Millis,
    pub(crate) min: i64,
    pub(crate) max: i64,
    pub(crate) desired: i64,
    pub(crate) default_cooldown: i64,
    pub(crate) azs: Vec<String>,
    pub(crate) subnets: Vec<String>,
    pub(crate) vpc_zone_identifier: Option<String>,
    pub(crate) launch_template: Option<LtSpec>,
    pub(crate) launch_config: Option<String>,
    pub(crate) mixed: Option<MixedPolicy>,
    pub(crate) health_check_type: String,
    pub(crate) grace: i64,
    pub(crate) termination_policies: Vec<String>,
    pub(crate) new_protected: bool,
    pub(crate) target_groups: Vec<String>,
    pub(crate) load_balancers: Vec<String>,
    pub(crate) tags: Vec<Tag>,
    /// In creation order.
    pub(crate) hooks: Vec<Hook>,
    /// `InstanceLifecyclePolicy.RetentionTriggers.TerminateHookAbandon = retain` (§1.8).
    pub(crate) retain_on_abandon: bool,
    pub(crate) deletion_protection: Option<String>,
    pub(crate) max_instance_lifetime: Option<i64>,
    pub(crate) capacity_rebalance: bool,
    /// Consecutive launch ABANDONs, for the replacement back-off (§2.5).
    pub(crate) consecutive_abandons: u32,
    /// No launches before this time (back-off after consecutive ABANDONs).
    pub(crate) next_launch_at: Millis,
    /// The earliest pending Reconcile timer, if any (avoids piling up timers).
    pub(crate) reconcile_at: Option<Millis>,
    /// The first half of the next activity's Cause (what the user asked for).
    pub(crate) pending_cause: Option<String>,
}

impl Group {
    pub(crate) fn hook(&self, name: &str) -> Option<&Hook> {
        self.hooks.iter().find(|h| h.name == name)
    }

    /// The group's hooks for `transition`, in creation order.
    pub(crate) fn hooks_for(&self, transition: T) -> Vec<Hook> {
        self.hooks
            .iter()
            .filter(|h| h.transition == transition)
            .cloned()
            .collect()
    }

    pub(crate) fn instance_type(&self) -> String {
        self.mixed
            .as_ref()
            .and_then(|m| m.instance_types.first().cloned())
            .unwrap_or_else(|| DEFAULT_INSTANCE_TYPE.to_owned())
    }

    pub(crate) fn effective_launch_template(&self) -> Option<LtSpec> {
        self.launch_template
            .clone()
            .or_else(|| self.mixed.as_ref().map(|m| m.launch_template.clone()))
    }
}

/// A simulated EC2 instance that is or was in a group.
#[derive(Debug, Clone)]
pub struct Instance {
    pub id: String,
    pub group: String,
    /// False once the instance is `Terminated` or `Detached` (it left the group).
    pub in_group: bool,
    pub(crate) az: String,
    pub(crate) subnet: Option<String>,
    pub(crate) state: S,
    pub(crate) healthy: bool,
    pub(crate) protected: bool,
    pub(crate) launch_template: Option<LtSpec>,
    pub(crate) launch_config: Option<String>,
    pub(crate) instance_type: String,
    pub(crate) launched_at: Millis,
    pub(crate) seq: u64,
    /// When it left the group.
    pub(crate) ended_at: Option<Millis>,
    /// The launch or terminate activity in progress.
    pub(crate) activity: Option<String>,
}

impl Instance {
    /// A new member of group `g` (named `group`) in `state` and the placement `(az, subnet)`,
    /// launched at `(time, seq)` with the group's launch settings.
    pub(crate) fn new_member(
        g: &Group,
        group: &str,
        id: String,
        (az, subnet): (String, Option<String>),
        state: S,
        (launched_at, seq): (Millis, u64),
    ) -> Instance {
        Instance {
            id,
            group: group.to_owned(),
            in_group: true,
            az,
            subnet,
            state,
            healthy: true,
            protected: g.new_protected,
            launch_template: g.effective_launch_template(),
            launch_config: g.launch_config.clone(),
            instance_type: g.instance_type(),
            launched_at,
            seq,
            ended_at: None,
            activity: None,
        }
    }
}

/// One outstanding lifecycle action (spec §2.2).
#[derive(Debug, Clone)]
pub(crate) struct Action {
    pub(crate) token: String,
    pub(crate) group: String,
    pub(crate) hook: String,
    pub(crate) instance: String,
    pub(crate) transition: T,
    pub(crate) started: Millis,
    pub(crate) heartbeat_deadline: Millis,
    pub(crate) global_deadline: Millis,
    /// The launch/terminate activity, also the notification's RequestId (§7.7).
    pub(crate) activity: String,
    /// DefaultResult of the hook when the action began (used if the hook is gone).
    pub(crate) default_result: LifecycleResult,
    /// Heartbeats received (`RecordLifecycleActionHeartbeat`).
    pub(crate) heartbeats: u32,
}

impl Action {
    pub(crate) fn deadline(&self) -> Millis {
        self.heartbeat_deadline.min(self.global_deadline)
    }
}

/// A scaling activity (spec §1.10).
#[derive(Debug, Clone)]
pub(crate) struct Activity {
    pub(crate) id: String,
    pub(crate) group: String,
    pub(crate) group_arn: String,
    pub(crate) description: String,
    pub(crate) cause: String,
    pub(crate) start: Millis,
    pub(crate) end: Option<Millis>,
    /// Only `ScalingActivityStatusCode` enum values.
    pub(crate) status: &'static str,
    pub(crate) message: Option<String>,
    pub(crate) progress: i64,
    pub(crate) details: String,
    pub(crate) group_deleted: bool,
    pub(crate) seq: u64,
}

/// An instance refresh (only `Rolling`).
#[derive(Debug, Clone)]
pub(crate) struct Refresh {
    pub(crate) id: String,
    pub(crate) group: String,
    pub(crate) status: &'static str,
    pub(crate) reason: Option<String>,
    pub(crate) start: Millis,
    pub(crate) end: Option<Millis>,
    pub(crate) min_healthy: i64,
    pub(crate) max_healthy: i64,
    pub(crate) warmup: Option<i64>,
    pub(crate) skip_matching: bool,
    pub(crate) scale_in_protected: String,
    pub(crate) standby: String,
    pub(crate) desired_config: Option<LtSpec>,
    pub(crate) total: usize,
    /// Instances still to replace.
    pub(crate) remaining: Vec<String>,
    /// Instances of this refresh being terminated now.
    pub(crate) in_flight: Vec<String>,
}

impl Refresh {
    pub(crate) fn is_active(&self) -> bool {
        matches!(self.status, "Pending" | "InProgress" | "Cancelling")
    }

    pub(crate) fn percentage(&self) -> i64 {
        if self.total == 0 {
            return 100;
        }
        let done = self
            .total
            .saturating_sub(self.remaining.len() + self.in_flight.len());
        (done * 100 / self.total) as i64
    }
}

/// Auto Scaling state of one region.
///
/// `instances`, `actions` and `activities` are public for reading; every change goes
/// through the methods below, which keep the indexes (open actions by instance, counted
/// instances by group and AZ, activity positions by id) in step, so the per-request work
/// does not grow with the number of instances.
#[derive(Debug, Default)]
pub struct State {
    pub(crate) groups: BTreeMap<String, Group>,
    pub instances: BTreeMap<String, Instance>,
    /// By token.
    pub(crate) actions: BTreeMap<String, Action>,
    /// Oldest first.
    pub(crate) activities: VecDeque<Activity>,
    pub(crate) refreshes: Vec<Refresh>,
    pub(crate) seq: u64,
    /// Resolved lifecycle actions, oldest first, at most [`MAX_RESOLVED_LOG`]
    /// (`GET /_sandbox/stats`: benchmarks measure wait-to-completion latency from it).
    pub resolved: VecDeque<ResolvedAction>,
    /// Every state change, action, heartbeat and resolution, bounded (the timeline
    /// picture and the web view draw it).
    pub(crate) timeline: Timeline,
    index: Index,
}

/// Resolved actions kept per region; the oldest are dropped first.
pub(crate) const MAX_RESOLVED_LOG: usize = 100_000;

/// A lifecycle action that ended, with its start and end in virtual milliseconds.
#[derive(Debug, Clone)]
pub struct ResolvedAction {
    pub group: String,
    pub(crate) hook: String,
    pub(crate) instance: String,
    pub(crate) transition: T,
    pub(crate) started: Millis,
    pub(crate) resolved: Millis,
    pub(crate) result: LifecycleResult,
    pub(crate) how: Resolution,
}

/// Indexes over [`State`], maintained incrementally.
#[derive(Debug, Default)]
struct Index {
    /// Open action tokens by instance id.
    actions_by_instance: HashMap<String, BTreeSet<String>>,
    /// Instances that count toward desired capacity, by group, then AZ.
    counted: HashMap<String, HashMap<String, i64>>,
    /// Activity id → absolute position (positions of dropped activities included).
    activity_pos: HashMap<String, u64>,
    /// How many activities were dropped from the front of the history.
    activity_base: u64,
    /// A lower bound of `ended_at` over instances out of their group (for [`prune`]).
    earliest_ended: Option<Millis>,
}

/// What an instance contributes to the `counted` index.
fn contribution(i: &Instance) -> Option<(String, String)> {
    (i.in_group && counts(i.state)).then(|| (i.group.clone(), i.az.clone()))
}

impl Index {
    fn add(&mut self, c: Option<(String, String)>, delta: i64) {
        if let Some((g, az)) = c {
            let by_az = self.counted.entry(g).or_default();
            let n = by_az.entry(az).or_default();
            *n += delta;
        }
    }

    fn note_ended(&mut self, i: &Instance) {
        if !i.in_group
            && let Some(e) = i.ended_at
        {
            self.earliest_ended = Some(self.earliest_ended.map_or(e, |x| x.min(e)));
        }
    }
}

impl State {
    pub(crate) fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Instances that are members of `group`.
    pub(crate) fn members<'a>(&'a self, group: &'a str) -> impl Iterator<Item = &'a Instance> + 'a {
        self.instances
            .values()
            .filter(move |i| i.in_group && i.group == group)
    }

    /// Instances that count toward desired capacity (§1.2 note 5): `Pending*` and
    /// `InService`.
    pub(crate) fn counted(&self, group: &str) -> i64 {
        let n = self
            .index
            .counted
            .get(group)
            .map_or(0, |m| m.values().sum());
        #[cfg(debug_assertions)]
        if self.instances.len() <= 2_000 {
            let scan = self.members(group).filter(|i| counts(i.state)).count() as i64;
            debug_assert_eq!(n, scan, "counted index of group {group}");
        }
        n
    }

    /// Counted instances of `group` in `az`.
    pub(crate) fn counted_in_az(&self, group: &str, az: &str) -> i64 {
        self.index
            .counted
            .get(group)
            .and_then(|m| m.get(az))
            .copied()
            .unwrap_or(0)
    }

    /// Adds (or replaces) an instance; its state is recorded as entered at its launch.
    pub(crate) fn insert_instance(&mut self, i: Instance) {
        self.timeline
            .push(i.launched_at, &i.group, &i.id, What::State(i.state));
        self.index.add(contribution(&i), 1);
        self.index.note_ended(&i);
        if let Some(old) = self.instances.insert(i.id.clone(), i) {
            self.index.add(contribution(&old), -1);
        }
    }

    /// Changes the instance `id` with `f` at virtual time `now`, keeping the indexes in
    /// step and recording a change of lifecycle state in the timeline (every state change
    /// of the state machine goes through here).
    pub(crate) fn update_instance<R>(
        &mut self,
        id: &str,
        now: Millis,
        f: impl FnOnce(&mut Instance) -> R,
    ) -> Option<R> {
        let i = self.instances.get_mut(id)?;
        let before = contribution(i);
        let state = i.state;
        let r = f(i);
        if i.state != state {
            self.timeline
                .push(now, &i.group, &i.id, What::State(i.state));
        }
        let after = contribution(i);
        if before != after {
            self.index.add(before, -1);
            self.index.add(after, 1);
        }
        self.index.note_ended(i);
        Some(r)
    }

    /// Forgets instances out of their group for longer than `keep` ms.
    fn prune_instances(&mut self, now: Millis, keep: Millis) {
        if self
            .index
            .earliest_ended
            .is_none_or(|e| now.saturating_sub(e) <= keep)
        {
            return;
        }
        self.instances
            .retain(|_, i| i.in_group || i.ended_at.is_none_or(|e| now.saturating_sub(e) <= keep));
        // Every removed instance was out of its group: it counted for nothing.
        self.index.earliest_ended = self
            .instances
            .values()
            .filter(|i| !i.in_group)
            .filter_map(|i| i.ended_at)
            .min();
    }

    pub(crate) fn activity(&self, id: &str) -> Option<&Activity> {
        let pos = self.index.activity_pos.get(id)?;
        self.activities
            .get(pos.checked_sub(self.index.activity_base)? as usize)
    }

    pub(crate) fn activity_mut(&mut self, id: &str) -> Option<&mut Activity> {
        let pos = self.index.activity_pos.get(id)?;
        self.activities
            .get_mut(pos.checked_sub(self.index.activity_base)? as usize)
    }

    /// Appends an activity, keeping the history to the last `cap`.
    fn push_activity(&mut self, a: Activity, cap: usize) {
        let pos = self.index.activity_base + self.activities.len() as u64;
        self.index.activity_pos.insert(a.id.clone(), pos);
        self.activities.push_back(a);
        while self.activities.len() > cap {
            if let Some(old) = self.activities.pop_front() {
                self.index.activity_pos.remove(&old.id);
            }
            self.index.activity_base += 1;
        }
    }

    pub(crate) fn active_refresh(&self, group: &str) -> Option<&Refresh> {
        self.refreshes
            .iter()
            .rev()
            .find(|r| r.group == group && r.is_active())
    }

    fn active_refresh_mut(&mut self, group: &str) -> Option<&mut Refresh> {
        self.refreshes
            .iter_mut()
            .rev()
            .find(|r| r.group == group && r.is_active())
    }

    /// Tokens of the open actions of `instance`, in token order.
    pub(crate) fn open_actions_of(&self, instance: &str) -> Vec<String> {
        self.index
            .actions_by_instance
            .get(instance)
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The open action of `instance` for hook `hook` of `group` (the first by token).
    pub(crate) fn action_of(&self, group: &str, hook: &str, instance: &str) -> Option<&Action> {
        self.index
            .actions_by_instance
            .get(instance)?
            .iter()
            .filter_map(|t| self.actions.get(t))
            .find(|a| a.group == group && a.hook == hook)
    }

    /// Adds an open action, recorded in the timeline as started at `a.started`.
    pub(crate) fn insert_action(&mut self, a: Action) {
        if let Some(old) = self.actions.remove(&a.token) {
            self.unindex_action(&old);
        }
        self.timeline.push(
            a.started,
            &a.group,
            &a.instance,
            What::ActionStarted {
                token: a.token.clone(),
                hook: a.hook.clone(),
                transition: a.transition,
                heartbeat_deadline: a.heartbeat_deadline,
                global_deadline: a.global_deadline,
            },
        );
        self.index
            .actions_by_instance
            .entry(a.instance.clone())
            .or_default()
            .insert(a.token.clone());
        self.actions.insert(a.token.clone(), a);
    }

    pub(crate) fn remove_action(&mut self, token: &str) -> Option<Action> {
        let a = self.actions.remove(token)?;
        self.unindex_action(&a);
        Some(a)
    }

    /// Ends an open action without a result of its own (another hook's ABANDON, or the
    /// instance left its wait), recorded in the timeline at `now`.
    pub(crate) fn cancel_action(&mut self, token: &str, now: Millis) {
        if let Some(a) = self.remove_action(token) {
            self.timeline.push(
                now,
                &a.group,
                &a.instance,
                What::Cancelled { token: a.token },
            );
        }
    }

    /// Cancels every open action of `instance` at `now`.
    pub(crate) fn cancel_actions_of(&mut self, instance: &str, now: Millis) {
        for t in self.open_actions_of(instance) {
            self.cancel_action(&t, now);
        }
    }

    /// Cancels the actions for which `keep` does not hold, at `now`.
    pub(crate) fn retain_actions(&mut self, now: Millis, mut keep: impl FnMut(&Action) -> bool) {
        let gone: Vec<String> = self
            .actions
            .values()
            .filter(|a| !keep(a))
            .map(|a| a.token.clone())
            .collect();
        for t in gone {
            self.cancel_action(&t, now);
        }
    }

    fn unindex_action(&mut self, a: &Action) {
        if let Some(set) = self.index.actions_by_instance.get_mut(&a.instance) {
            set.remove(&a.token);
            if set.is_empty() {
                self.index.actions_by_instance.remove(&a.instance);
            }
        }
    }
}

/// Whether an instance in `state` counts toward desired capacity (§1.2 note 5).
pub(crate) fn counts(state: S) -> bool {
    state.is_pending() || state == S::InService
}

pub(crate) fn group_arn(region: &str, uuid: &str, name: &str) -> String {
    format!(
        "arn:aws:autoscaling:{region}:{}:autoScalingGroup:{uuid}:autoScalingGroupName/{name}",
        crate::ACCOUNT_ID
    )
}

pub(crate) fn instance_arn(region: &str, id: &str) -> String {
    format!("arn:aws:ec2:{region}:{}:instance/{id}", crate::ACCOUNT_ID)
}

fn st<'a>(w: &'a mut World, region: &str) -> &'a mut State {
    &mut w.region(region).autoscaling
}

fn schedule(w: &mut World, at: Millis, region: &str, t: Timer) {
    w.schedule(at, region, WorldTimer::AutoScaling(t));
}

/// Creates an activity and returns its id.
#[allow(clippy::too_many_arguments)]
pub(crate) fn new_activity(
    w: &mut World,
    region: &str,
    group: &str,
    description: String,
    cause: String,
    status: &'static str,
    progress: i64,
    details: String,
) -> String {
    let now = w.now;
    let s = st(w, region);
    let arn = s
        .groups
        .get(group)
        .map(|g| g.arn.clone())
        .unwrap_or_default();
    let seq = s.next_seq();
    let id = ids::uuid();
    s.push_activity(
        Activity {
            id: id.clone(),
            group: group.to_owned(),
            group_arn: arn,
            description,
            cause,
            start: now,
            end: None,
            status,
            message: None,
            progress,
            details,
            group_deleted: false,
            seq,
        },
        // Keep the history bounded (six weeks in AWS; here: the last 10 000).
        10_000,
    );
    id
}

fn set_activity(
    w: &mut World,
    region: &str,
    id: &str,
    status: &'static str,
    progress: i64,
    message: Option<String>,
    finished: bool,
) {
    let now = w.now;
    if let Some(a) = st(w, region).activity_mut(id) {
        a.status = status;
        a.progress = progress;
        if message.is_some() {
            a.message = message;
        }
        if finished {
            a.end = Some(now);
        }
    }
}

fn details_json(az: &str, subnet: Option<&str>) -> String {
    let mut m = serde_json::Map::new();
    if let Some(s) = subnet {
        m.insert("Subnet ID".into(), s.into());
    }
    m.insert("Availability Zone".into(), az.into());
    serde_json::Value::Object(m).to_string()
}

fn full_cause(prefix: Option<&str>, rest: String) -> String {
    match prefix {
        // Two spaces between sentences, as AWS writes them (§1.10).
        Some(p) => format!("{p}  {rest}"),
        None => rest,
    }
}

/// Asks for a reconcile of `group` at `at` (from inside the state machine, where a direct
/// call could recurse). Nothing is scheduled when one is already due by then.
pub(crate) fn request_reconcile(w: &mut World, region: &str, group: &str, at: Millis) {
    let needed = match st(w, region).groups.get_mut(group) {
        Some(g) if g.reconcile_at.is_none_or(|t| t > at) => {
            g.reconcile_at = Some(at);
            true
        }
        _ => false,
    };
    if needed {
        schedule(
            w,
            at,
            region,
            Timer::Reconcile {
                group: group.to_owned(),
            },
        );
    }
}

/// Brings the group to its desired capacity (§1.2 note 5): launches while
/// `count(Pending*, InService) < desired` (subject to the ABANDON back-off, §2.5), and
/// scales in when above.
///
/// **Default termination policy** (the sandbox's simplification of AWS's `Default`):
/// only unprotected `InService` instances are candidates (§2.7); each victim is taken from
/// the Availability Zone that has the most counted instances, then the oldest instance
/// (earliest launch), then the lowest instance id. Instances still in `Pending*` are not
/// scaled in; the group reconciles again when they reach `InService`. If every candidate is
/// protected, nothing is terminated and the group stays above desired.
pub(crate) fn reconcile(w: &mut World, region: &str, group: &str) {
    let now = w.now;
    let s = st(w, region);
    let Some(g) = s.groups.get_mut(group) else {
        return;
    };
    g.reconcile_at = None;
    let desired = g.desired;
    let next_launch_at = g.next_launch_at;
    let prefix = g.pending_cause.take();
    let have = s.counted(group);
    if have < desired {
        if now < next_launch_at {
            if let Some(g) = st(w, region).groups.get_mut(group) {
                g.pending_cause = prefix;
            }
            request_reconcile(w, region, group, next_launch_at);
            return;
        }
        for k in 0..(desired - have).min(MAX_GROUP_SIZE) {
            let rest = format!(
                "At {} an instance was started in response to a difference between desired and actual capacity, increasing the capacity from {} to {}.",
                iso_secs(now),
                have + k,
                have + k + 1
            );
            launch(w, region, group, full_cause(prefix.as_deref(), rest));
        }
    } else if have > desired {
        let victims = choose_victims(st(w, region), group, (have - desired) as usize);
        let n = victims.len() as i64;
        for (k, v) in victims.into_iter().enumerate() {
            let rest = format!(
                "At {} an instance was taken out of service in response to a difference between desired and actual capacity, shrinking the capacity from {} to {}.",
                iso_secs(now),
                have,
                have - n
            );
            let cause = if k == 0 {
                full_cause(prefix.as_deref(), rest)
            } else {
                rest
            };
            begin_termination(w, region, &v, cause, true);
        }
    }
}

/// The victims of a scale-in by the default termination policy (see [`reconcile`]).
pub(crate) fn choose_victims(s: &State, group: &str, n: usize) -> Vec<String> {
    let mut az_count: BTreeMap<String, i64> = BTreeMap::new();
    for i in s.members(group).filter(|i| counts(i.state)) {
        *az_count.entry(i.az.clone()).or_default() += 1;
    }
    // Candidates by AZ, each list oldest first (earliest launch, then seq, then id), so
    // each pick compares only the heads of the AZ lists: O(candidates × log) overall.
    let mut by_az: BTreeMap<&str, VecDeque<&Instance>> = BTreeMap::new();
    for i in s
        .members(group)
        .filter(|i| i.state == S::InService && !i.protected)
    {
        by_az.entry(i.az.as_str()).or_default().push_back(i);
    }
    for list in by_az.values_mut() {
        list.make_contiguous().sort_by(|a, b| {
            a.launched_at
                .cmp(&b.launched_at)
                .then(a.seq.cmp(&b.seq))
                .then(a.id.cmp(&b.id))
        });
    }
    let mut out = Vec::new();
    while out.len() < n {
        // The best candidate: the most counted AZ, then the oldest, the lowest seq, the
        // lowest id.
        let best = by_az
            .iter()
            .filter_map(|(az, list)| list.front().map(|i| (*az, *i)))
            .max_by(|(_, a), (_, b)| {
                let ca = az_count.get(&a.az).copied().unwrap_or(0);
                let cb = az_count.get(&b.az).copied().unwrap_or(0);
                ca.cmp(&cb)
                    .then(b.launched_at.cmp(&a.launched_at))
                    .then(b.seq.cmp(&a.seq))
                    .then(b.id.cmp(&a.id))
            })
            .map(|(az, _)| az);
        let Some(az) = best else { break };
        let Some(v) = by_az.get_mut(az).and_then(|l| l.pop_front()) else {
            break;
        };
        if let Some(c) = az_count.get_mut(&v.az) {
            *c -= 1;
        }
        out.push(v.id.clone());
    }
    out
}

/// The AZ (and subnet) for a new instance: the group's AZ with the fewest counted
/// instances, the first listed on a tie.
pub(crate) fn pick_az(s: &State, g: &Group, region: &str) -> (String, Option<String>) {
    let zones: Vec<(String, Option<String>)> = if !g.subnets.is_empty() {
        g.subnets
            .iter()
            .enumerate()
            .map(|(k, sn)| (subnet_az(region, k), Some(sn.clone())))
            .collect()
    } else if !g.azs.is_empty() {
        g.azs.iter().map(|a| (a.clone(), None)).collect()
    } else {
        vec![(format!("{region}a"), None)]
    };
    let mut best: Option<(i64, (String, Option<String>))> = None;
    for z in zones {
        let c = s.counted_in_az(&g.name, &z.0);
        if best.as_ref().is_none_or(|(bc, _)| c < *bc) {
            best = Some((c, z));
        }
    }
    best.map(|(_, z)| z)
        .unwrap_or_else(|| (format!("{region}a"), None))
}

/// The simulated AZ of the `k`th subnet of `VPCZoneIdentifier`: `<region>a`, `b`, `c`...
pub(crate) fn subnet_az(region: &str, k: usize) -> String {
    let letters = b"abcdef";
    let c = letters.get(k % letters.len()).copied().unwrap_or(b'a') as char;
    format!("{region}{c}")
}

/// Launches one instance into `group` (spec §1.11 `on launch`).
pub(crate) fn launch(w: &mut World, region: &str, group: &str, cause: String) -> Option<String> {
    let now = w.now;
    let s = st(w, region);
    let g = s.groups.get(group)?.clone();
    let (az, subnet) = pick_az(s, &g, region);
    let id = ids::hex_id("i");
    let seq = s.next_seq();
    s.insert_instance(Instance::new_member(
        &g,
        group,
        id.clone(),
        (az.clone(), subnet.clone()),
        S::Pending,
        (now, seq),
    ));
    // EC2's record of the instance: its propagated tags are those of launch time.
    crate::ec2::sync_instance(w, region, &id);
    let activity = new_activity(
        w,
        region,
        group,
        format!("Launching a new EC2 instance: {id}"),
        cause,
        "PreInService",
        30,
        details_json(&az, subnet.as_deref()),
    );
    st(w, region).update_instance(&id, now, |i| i.activity = Some(activity.clone()));
    let hooks = g.hooks_for(T::Launching);
    if hooks.is_empty() {
        finish_launch(w, region, &id);
    } else {
        st(w, region).update_instance(&id, now, |i| i.state = S::PendingWait);
        set_activity(w, region, &activity, "MidLifecycleAction", 40, None, false);
        start_actions(w, region, &id, &hooks, T::Launching, &activity);
    }
    Some(id)
}

/// Creates one action per hook, all at once (§2.5), and delivers the notifications (§2.8).
fn start_actions(
    w: &mut World,
    region: &str,
    instance: &str,
    hooks: &[Hook],
    transition: T,
    activity: &str,
) {
    let now = w.now;
    let group = match st(w, region).instances.get(instance) {
        Some(i) => i.group.clone(),
        None => return,
    };
    let mut tokens = Vec::new();
    for h in hooks {
        let token = ids::uuid();
        let hb = h.heartbeat_secs * 1000;
        let global = lifehook_model::global_timeout_secs(h.heartbeat_secs) * 1000;
        let a = Action {
            token: token.clone(),
            group: group.clone(),
            hook: h.name.clone(),
            instance: instance.to_owned(),
            transition,
            started: now,
            heartbeat_deadline: now.saturating_add(hb),
            global_deadline: now.saturating_add(global),
            activity: activity.to_owned(),
            default_result: h.default_result,
            heartbeats: 0,
        };
        let at = a.deadline();
        st(w, region).insert_action(a);
        schedule(
            w,
            at,
            region,
            Timer::ActionTimeout {
                token: token.clone(),
            },
        );
        tokens.push(token);
    }
    for t in tokens {
        let delivered = notify::notify_action(w, region, &t);
        if !delivered
            && w.behaviour
                .autoscaling
                .notification_failure_applies_default_result
        {
            // §7.6 option: a failed delivery applies the DefaultResult at once.
            if let Some(a) = st(w, region).actions.get_mut(&t) {
                a.heartbeat_deadline = now;
            }
            schedule(w, now, region, Timer::ActionTimeout { token: t });
        }
    }
}

/// `Pending` (or `Pending:Wait` resolved CONTINUE) → `Pending:Proceed` → `InService`.
fn finish_launch(w: &mut World, region: &str, id: &str) {
    let now = w.now;
    let s = st(w, region);
    let Some((group, activity)) = s.update_instance(id, now, |i| {
        i.state = S::InService;
        (i.group.clone(), i.activity.take())
    }) else {
        return;
    };
    if let Some(g) = s.groups.get_mut(&group) {
        g.consecutive_abandons = 0;
    }
    // §1.2 note 1, §2.7: registration with the group's target groups comes after
    // `Pending:Proceed` (every launch hook is over) as the instance enters `InService`.
    crate::elbv2::asg::register_group_instance(w, region, &group, id);
    if let Some(a) = &activity {
        set_activity(w, region, a, "Successful", 100, None, true);
        notify::instance_event(w, region, id, a, true);
    }
    after_change(w, region, &group);
}

/// Something changed that an instance refresh or an over-capacity group may be waiting on.
fn after_change(w: &mut World, region: &str, group: &str) {
    let now = w.now;
    let s = st(w, region);
    let Some(g) = s.groups.get(group) else {
        return;
    };
    let desired = g.desired;
    let refresh = s.active_refresh(group).is_some();
    if s.counted(group) != desired {
        request_reconcile(w, region, group, now);
    }
    if refresh {
        schedule(
            w,
            now,
            region,
            Timer::RefreshStep {
                group: group.to_owned(),
            },
        );
    }
}

/// Starts the terminate path (§1.11 `on terminate`): `Terminating`, then the terminate
/// hooks (when `run_hooks`), else straight to `Terminated`. Open actions of the instance
/// (a terminate from `Pending:Wait`) are dropped.
pub(crate) fn begin_termination(
    w: &mut World,
    region: &str,
    id: &str,
    cause: String,
    run_hooks: bool,
) {
    let now = w.now;
    let s = st(w, region);
    s.cancel_actions_of(id, now);
    let Some(Some((old_activity, group, az, subnet))) = s.update_instance(id, now, |i| {
        if !i.in_group {
            return None;
        }
        // An unfinished launch activity ends here.
        let old_activity = i.activity.take();
        i.state = S::Terminating;
        Some((
            old_activity,
            i.group.clone(),
            i.az.clone(),
            i.subnet.clone(),
        ))
    }) else {
        return;
    };
    let hooks: Vec<Hook> = s
        .groups
        .get(&group)
        .map(|g| g.hooks_for(T::Terminating))
        .unwrap_or_default();
    if let Some(a) = old_activity {
        let open = st(w, region)
            .activity_mut(&a)
            .is_some_and(|a| a.end.is_none());
        if open {
            set_activity(w, region, &a, "Cancelled", 100, None, true);
        }
    }
    let activity = new_activity(
        w,
        region,
        &group,
        format!("Terminating EC2 instance: {id}"),
        cause,
        "InProgress",
        50,
        details_json(&az, subnet.as_deref()),
    );
    st(w, region).update_instance(id, now, |i| i.activity = Some(activity.clone()));
    // The instance no longer counts toward desired capacity: replace it if needed.
    let now = w.now;
    request_reconcile(w, region, &group, now);
    // §1.2 note 2, §1.11, §2.7: deregistration from the group's target groups happens in
    // `Terminating`, and the deregistration delay is waited out before the terminate hooks.
    let drain = crate::elbv2::asg::deregister_group_instance(w, region, &group, id);
    if drain > 0 && w.behaviour.autoscaling.wait_for_deregistration_delay {
        set_activity(
            w,
            region,
            &activity,
            "WaitingForELBConnectionDraining",
            50,
            None,
            false,
        );
        let instance = id.to_owned();
        let t = Timer::Drained {
            instance,
            run_hooks,
        };
        schedule(w, now.saturating_add(drain), region, t);
        return;
    }
    run_terminate_hooks(w, region, id, &hooks, &activity, run_hooks);
}

/// `Terminating` → `Terminating:Wait` with the terminate hooks (when `run_hooks` and there
/// are any), else straight on to `Terminated`.
fn run_terminate_hooks(
    w: &mut World,
    region: &str,
    id: &str,
    hooks: &[Hook],
    activity: &str,
    run_hooks: bool,
) {
    let now = w.now;
    if run_hooks && !hooks.is_empty() {
        st(w, region).update_instance(id, now, |i| i.state = S::TerminatingWait);
        set_activity(w, region, activity, "MidLifecycleAction", 60, None, false);
        start_actions(w, region, id, hooks, T::Terminating, activity);
    } else {
        finish_termination(w, region, id, false);
    }
}

/// `Terminating:Proceed` → `Terminated` (the instance leaves the group), or
/// `Terminating:Retained` when `retain` (§1.8).
pub(crate) fn finish_termination(w: &mut World, region: &str, id: &str, retain: bool) {
    let now = w.now;
    let s = st(w, region);
    s.cancel_actions_of(id, now);
    let Some((group, activity)) = s.update_instance(id, now, |i| {
        if retain {
            i.state = S::TerminatingRetained;
        } else {
            i.state = S::Terminated;
            i.in_group = false;
            i.ended_at = Some(now);
        }
        (i.group.clone(), i.activity.take())
    }) else {
        return;
    };
    if retain {
        if let Some(a) = &activity {
            set_activity(
                w,
                region,
                a,
                "Cancelled",
                100,
                Some("Instance retained: the terminate lifecycle action was abandoned and the group's retention policy is retain.".into()),
                true,
            );
        }
    } else {
        if let Some(a) = &activity {
            set_activity(w, region, a, "Successful", 100, None, true);
            notify::instance_event(w, region, id, a, false);
        }
        // ECS deregisters the instance's container instances and stops their tasks.
        crate::ecs::instance_terminated(w, region, id);
    }
    let s = st(w, region);
    if let Some(r) = s.active_refresh_mut(&group) {
        r.in_flight.retain(|x| x != id);
    }
    after_change(w, region, &group);
    prune(w, region);
}

/// Forgets terminated/detached instances older than the visibility window.
pub(crate) fn prune(w: &mut World, region: &str) {
    let now = w.now;
    let keep = w
        .behaviour
        .autoscaling
        .terminated_visible_secs
        .saturating_mul(1000);
    st(w, region).prune_instances(now, keep);
}

/// How an action was resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resolution {
    /// `CompleteLifecycleAction`.
    Explicit,
    /// The heartbeat timeout elapsed: DefaultResult.
    Timeout,
    /// The global timeout elapsed: DefaultResult, but ABANDON for retention (§7.3).
    GlobalTimeout,
    /// The hook was deleted (§2.6).
    HookDeleted,
}

/// Resolves one action with `result` and moves the instance on when its wait is over
/// (§1.11, §2.5).
pub(crate) fn resolve_action(
    w: &mut World,
    region: &str,
    token: &str,
    result: LifecycleResult,
    how: Resolution,
) {
    let now = w.now;
    let s = st(w, region);
    let Some(a) = s.remove_action(token) else {
        return;
    };
    if s.resolved.len() >= MAX_RESOLVED_LOG {
        s.resolved.pop_front();
    }
    s.resolved.push_back(ResolvedAction {
        group: a.group.clone(),
        hook: a.hook.clone(),
        instance: a.instance.clone(),
        transition: a.transition,
        started: a.started,
        resolved: now,
        result,
        how,
    });
    s.timeline.push(
        now,
        &a.group,
        &a.instance,
        What::Resolved {
            token: a.token.clone(),
            result,
            how,
        },
    );
    let remaining = s.open_actions_of(&a.instance);
    match (a.transition, result) {
        (T::Launching, LifecycleResult::Abandon) => {
            // §2.5: the first ABANDON cancels the other actions.
            for t in &remaining {
                s.cancel_action(t, now);
            }
            let group = a.group.clone();
            let (backoff_base, backoff_max, run_hooks) = {
                let o = &w.behaviour.autoscaling;
                (
                    o.abandon_backoff_base_secs,
                    o.abandon_backoff_max_secs,
                    o.launch_abandon_runs_terminate_hooks,
                )
            };
            let now = w.now;
            let s = st(w, region);
            if let Some(g) = s.groups.get_mut(&group) {
                g.consecutive_abandons = g.consecutive_abandons.saturating_add(1);
                // §2.5 rate limiting: the first replacement is immediate, then
                // base, 2×base, 4×base ... up to max.
                if g.consecutive_abandons >= 2 && backoff_base > 0 {
                    let exp = (g.consecutive_abandons - 2).min(30);
                    let delay = backoff_base
                        .saturating_mul(1u64 << exp)
                        .min(backoff_max.max(backoff_base));
                    g.next_launch_at = now.saturating_add(delay.saturating_mul(1000));
                }
            }
            let why = match how {
                Resolution::Explicit | Resolution::HookDeleted => {
                    "Lifecycle Action Completed with ABANDON Result"
                }
                Resolution::Timeout => "Lifecycle Action timed out with ABANDON Result",
                Resolution::GlobalTimeout => {
                    "Lifecycle Action reached the global timeout with ABANDON Result"
                }
            };
            let msg = format!(
                "Instance failed to complete user's Lifecycle Action: Lifecycle Action with token {} was abandoned: {why}",
                a.token
            );
            set_activity(w, region, &a.activity, "Cancelled", 100, Some(msg), true);
            st(w, region).update_instance(&a.instance, now, |i| i.activity = None);
            let cause = format!(
                "At {} an instance was taken out of service in response to a launch lifecycle action being abandoned.",
                iso_secs(now)
            );
            // §1.2 note 3 / §7.2: terminate hooks run by default (configurable).
            begin_termination(w, region, &a.instance, cause, run_hooks);
            request_reconcile(w, region, &group, now);
        }
        (T::Launching, LifecycleResult::Continue) => {
            if remaining.is_empty() {
                st(w, region).update_instance(&a.instance, now, |i| i.state = S::PendingProceed);
                finish_launch(w, region, &a.instance);
            }
        }
        (T::Terminating, result) => {
            let abandon = result == LifecycleResult::Abandon || how == Resolution::GlobalTimeout;
            if result == LifecycleResult::Abandon {
                // §2.5: ABANDON stops the remaining terminate hooks.
                for t in &remaining {
                    s.cancel_action(t, now);
                }
            }
            let done = result == LifecycleResult::Abandon || remaining.is_empty();
            if done {
                let retain_policy = st(w, region)
                    .groups
                    .get(&a.group)
                    .is_some_and(|g| g.retain_on_abandon);
                // §1.8: ABANDON, a DefaultResult=ABANDON timeout or a global timeout
                // retains; a hook deletion completes with CONTINUE.
                let retain = retain_policy && abandon && how != Resolution::HookDeleted;
                if !retain {
                    st(w, region)
                        .update_instance(&a.instance, now, |i| i.state = S::TerminatingProceed);
                }
                finish_termination(w, region, &a.instance, retain);
            }
        }
    }
}

/// `RecordLifecycleActionHeartbeat`: restarts the timer with the hook's current
/// HeartbeatTimeout, never past the global deadline (§2.4).
pub(crate) fn heartbeat(w: &mut World, region: &str, token: &str) {
    let now = w.now;
    let s = st(w, region);
    let Some(a) = s.actions.get(token) else {
        return;
    };
    let hb = s
        .groups
        .get(&a.group)
        .and_then(|g| g.hook(&a.hook))
        .map(|h| h.heartbeat_secs)
        .unwrap_or(lifehook_model::timeout::DEFAULT_HEARTBEAT_TIMEOUT_SECS);
    let Some(a) = s.actions.get_mut(token) else {
        return;
    };
    a.heartbeat_deadline = now.saturating_add(hb * 1000).min(a.global_deadline);
    a.heartbeats = a.heartbeats.saturating_add(1);
    let at = a.deadline();
    let (group, instance, what) = (
        a.group.clone(),
        a.instance.clone(),
        What::Heartbeat {
            token: token.to_owned(),
            heartbeat_deadline: a.heartbeat_deadline,
        },
    );
    s.timeline.push(now, &group, &instance, what);
    schedule(
        w,
        at,
        region,
        Timer::ActionTimeout {
            token: token.to_owned(),
        },
    );
}

/// A timer fired.
pub(crate) fn on_timer(w: &mut World, region: &str, t: Timer) {
    let now = w.now;
    match t {
        Timer::ActionTimeout { token } => {
            let s = st(w, region);
            let Some(a) = s.actions.get(&token) else {
                return;
            };
            // A heartbeat moved the deadline: this timer is stale.
            if a.deadline() > now {
                return;
            }
            let global = a.global_deadline <= now;
            // §7.13: the hook's current DefaultResult applies at the timeout.
            let result = s
                .groups
                .get(&a.group)
                .and_then(|g| g.hook(&a.hook))
                .map(|h| h.default_result)
                .unwrap_or(a.default_result);
            let how = if global {
                Resolution::GlobalTimeout
            } else {
                Resolution::Timeout
            };
            resolve_action(w, region, &token, result, how);
        }
        Timer::Reconcile { group } => reconcile(w, region, &group),
        Timer::RefreshStep { group } => refresh_step(w, region, &group),
        Timer::Drained {
            instance,
            run_hooks,
        } => {
            let s = st(w, region);
            // Force-deleted (or otherwise moved on) while draining: nothing left to do.
            let Some(i) = s
                .instances
                .get(&instance)
                .filter(|i| i.in_group && i.state == S::Terminating)
            else {
                return;
            };
            let activity = i.activity.clone().unwrap_or_default();
            let hooks: Vec<Hook> = s
                .groups
                .get(&i.group)
                .map(|g| g.hooks_for(T::Terminating))
                .unwrap_or_default();
            run_terminate_hooks(w, region, &instance, &hooks, &activity, run_hooks);
        }
    }
}

/// Origin and Destination of an action (§1.7), when the options include them.
pub(crate) fn endpoints(w: &World, transition: T) -> (Option<Endpoint>, Option<Endpoint>) {
    if !w.behaviour.autoscaling.include_origin_destination {
        return (None, None);
    }
    match transition {
        T::Launching => (Some(Endpoint::EC2), Some(Endpoint::AutoScalingGroup)),
        T::Terminating => (Some(Endpoint::AutoScalingGroup), Some(Endpoint::EC2)),
    }
}

/// Advances a Rolling instance refresh: when the group is back at full healthy capacity,
/// terminates the next batch (through the terminate hooks; the replacements go through the
/// launch hooks). The batch keeps at least `MinHealthyPercentage` of desired capacity in
/// service: `max(1, desired - ceil(desired × MinHealthy / 100))` instances at a time.
pub(crate) fn refresh_step(w: &mut World, region: &str, group: &str) {
    let now = w.now;
    let s = st(w, region);
    let Some(g) = s.groups.get(group) else {
        return;
    };
    let desired = g.desired;
    let in_service = s
        .members(group)
        .filter(|i| i.state == S::InService && i.healthy)
        .count() as i64;
    let pending = s.members(group).any(|i| i.state.is_pending());
    let live: HashSet<String> = s
        .members(group)
        .filter(|i| counts(i.state))
        .map(|i| i.id.clone())
        .collect();
    let Some(r) = s.active_refresh_mut(group) else {
        return;
    };
    if r.status == "Pending" {
        r.status = "InProgress";
    }
    // Instances that left by other means are no longer to be replaced.
    r.remaining.retain(|x| live.contains(x));
    if r.status == "Cancelling" {
        if r.in_flight.is_empty() {
            r.status = "Cancelled";
            r.end = Some(now);
            r.reason = Some("The instance refresh was cancelled by a user request.".into());
        }
        return;
    }
    if r.remaining.is_empty() && r.in_flight.is_empty() {
        if !pending && in_service >= desired {
            r.status = "Successful";
            r.end = Some(now);
            r.reason = None;
        }
        return;
    }
    if !r.in_flight.is_empty() || pending || in_service < desired {
        return;
    }
    let keep = (desired * r.min_healthy + 99) / 100;
    let batch = (desired - keep).max(1) as usize;
    let take = batch.min(r.remaining.len());
    let victims: Vec<String> = r.remaining.drain(..take).collect();
    r.in_flight.extend(victims.iter().cloned());
    let rid = r.id.clone();
    for v in victims {
        let cause = format!(
            "At {} an instance was taken out of service in response to an instance refresh.  At {} instance {v} was selected for termination (instance refresh {rid}).",
            iso_secs(now),
            iso_secs(now)
        );
        begin_termination(w, region, &v, cause, true);
    }
}
