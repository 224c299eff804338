//! EC2 in the sandbox (EC2 Query, `Version=2016-11-15`), to the depth lifecycle-hook steps
//! need: instances and their tags, images, reboots and terminations.
//!
//! - **Group instances** are the Auto Scaling engine's instances: this module does not
//!   keep a second state machine. An instance's EC2 state is derived from its lifecycle
//!   state ([`ec2_state_of`]); what EC2 adds is kept here in an [`Instance`] record:
//!   reservation, image, private address, the tags (the group's `PropagateAtLaunch` tags
//!   copied at launch, then changed by CreateTags/DeleteTags), reboots, and whether EC2
//!   itself terminated the instance. `aws:autoscaling:groupName` is not stored: it follows
//!   the instance's group membership (removed on detach, §1.5).
//! - **Standalone instances** (RunInstances, `POST /_sandbox/ec2/instances`) are `running`
//!   from the start (there is no boot time) until TerminateInstances.
//! - **Images** (CreateImage) are `pending`, then `available` (or `failed`, when an image
//!   outcome rule says so) after [`Options::create_image_secs`] of virtual time.
//! - TerminateInstances on a group instance terminates it **without lifecycle hooks**, as in
//!   AWS (§1.3): the group sees it gone and launches a replacement.
//!
//! Every request (and every IMDS or control call) first brings this view up to date with
//! the Auto Scaling state ([`sync`]).
//!
//! Layout: this file holds the EC2 view and its timers; `ops.rs` the API operations and
//! `handle`; `control.rs` the `/_sandbox/ec2/…` routes and the state JSON.

use std::collections::{BTreeMap, HashMap};

use lifehook_model::LifecycleState as S;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::clock::{Millis, iso_millis, iso_secs};
use crate::protocol::RequestCtx;
use crate::protocol::{AwsError, Params, Service, XmlWriter};
use crate::world::{Region, Timer as WorldTimer, World};
use crate::{ACCOUNT_ID, DEFAULT_REGION, Sandbox, autoscaling, ids};

mod control;
mod ops;
#[cfg(test)]
mod tests;

pub(crate) use control::{control, state_json};
pub(crate) use ops::dispatch;

/// The image id of instances whose image the sandbox does not know (group instances): the
/// example id of the EC2 documentation.
pub(crate) const DEFAULT_IMAGE_ID: &str = "ami-0abcdef1234567890";
/// RunInstances' default instance type when the request names none (as in AWS).
pub(crate) const DEFAULT_INSTANCE_TYPE: &str = "m1.small";
/// How long terminated instances stay visible in DescribeInstances (AWS: about an hour).
pub(crate) const TERMINATED_VISIBLE_MS: Millis = 3_600_000;
/// The most instances one RunInstances call may start in the sandbox.
pub(crate) const MAX_RUN_COUNT: i64 = 100;
/// At most 50 tags per resource (EC2's limit).
pub(crate) const MAX_TAGS: usize = 50;
/// The key of the tag Auto Scaling puts on its instances.
pub(crate) const GROUP_TAG: &str = "aws:autoscaling:groupName";

/// EC2 options (`PUT /_sandbox/behaviour` `{"ec2": {...}}`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Options {
    /// Virtual seconds from CreateImage until the image is `available` (or `failed`).
    /// Default 120.
    pub(crate) create_image_secs: u64,
    /// Whether instance tags are exposed in IMDS (`meta-data/tags/instance`), as with
    /// `InstanceMetadataTags=enabled`. Default `true`.
    pub(crate) instance_metadata_tags: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            create_image_secs: 120,
            instance_metadata_tags: true,
        }
    }
}

/// EC2 timers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Timer {
    /// A pending image is done.
    ImageDone { image: String },
}

/// `instanceState.name` and its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Ec2State {
    Pending,
    Running,
    ShuttingDown,
    Terminated,
    Stopped,
}

impl Ec2State {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Ec2State::Pending => "pending",
            Ec2State::Running => "running",
            Ec2State::ShuttingDown => "shutting-down",
            Ec2State::Terminated => "terminated",
            Ec2State::Stopped => "stopped",
        }
    }

    pub(crate) fn code(self) -> u32 {
        match self {
            Ec2State::Pending => 0,
            Ec2State::Running => 16,
            Ec2State::ShuttingDown => 32,
            Ec2State::Terminated => 48,
            Ec2State::Stopped => 80,
        }
    }
}

/// The EC2 state of a group instance in lifecycle state `s`. `Pending:Wait` is already
/// `running` (spec §1.2 note 4: user data runs during the launch hook).
pub(crate) fn ec2_state_of(s: S) -> Ec2State {
    match s {
        S::Pending | S::WarmedPending => Ec2State::Pending,
        S::TerminatingProceed => Ec2State::ShuttingDown,
        S::Terminated | S::WarmedTerminated => Ec2State::Terminated,
        S::WarmedStopped | S::WarmedHibernated => Ec2State::Stopped,
        _ => Ec2State::Running,
    }
}

/// What `meta-data/autoscaling/target-lifecycle-state` says in lifecycle state `s`: the
/// state the instance is heading to (spec §6.2).
pub(crate) fn target_lifecycle_state(s: S) -> &'static str {
    match s {
        S::EnteringStandby | S::Standby => "Standby",
        S::Detaching | S::Detached => "Detached",
        S::Terminating
        | S::TerminatingWait
        | S::TerminatingProceed
        | S::TerminatingRetained
        | S::Terminated => "Terminated",
        S::WarmedRunning => "Warmed:Running",
        S::WarmedHibernated => "Warmed:Hibernated",
        S::WarmedPending
        | S::WarmedPendingWait
        | S::WarmedPendingProceed
        | S::WarmedPendingRetained
        | S::WarmedStopped => "Warmed:Stopped",
        S::WarmedTerminating
        | S::WarmedTerminatingWait
        | S::WarmedTerminatingProceed
        | S::WarmedTerminatingRetained
        | S::WarmedTerminated => "Warmed:Terminated",
        _ => "InService",
    }
}

/// EC2 state of one region.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) instances: BTreeMap<String, Instance>,
    pub(crate) images: BTreeMap<String, Image>,
    /// Ids of deregistered images (DescribeImages answers nothing for them, not an error).
    deregistered: Vec<String>,
    image_outcomes: Vec<ImageOutcome>,
    /// IMDS session tokens: token → (instance id, expiry).
    pub(crate) imds_tokens: HashMap<String, (String, Millis)>,
    next_ip: u32,
}

/// What EC2 knows of an instance beyond the Auto Scaling engine.
#[derive(Debug, Clone)]
pub(crate) struct Instance {
    pub(crate) id: String,
    pub(crate) reservation_id: String,
    pub(crate) image_id: String,
    pub(crate) instance_type: String,
    pub(crate) az: String,
    pub(crate) launched_at: Millis,
    pub(crate) private_ip: String,
    /// Every tag but `aws:autoscaling:groupName`.
    pub(crate) tags: BTreeMap<String, String>,
    /// Started by RunInstances or the control API (not by a group).
    pub(crate) standalone: bool,
    /// The last lifecycle state seen (group instances), for after the engine forgets it.
    pub(crate) last_lifecycle: Option<S>,
    /// The group of the last lifecycle state seen.
    pub(crate) last_group: Option<String>,
    /// When EC2 (TerminateInstances) terminated it.
    pub(crate) terminated_at: Option<Millis>,
    /// When it became `terminated` (either way), as far as this view knows.
    pub(crate) ended_at: Option<Millis>,
    /// Virtual times of its reboots (RebootInstances, CreateImage without NoReboot, the
    /// control API).
    pub(crate) reboots: Vec<Millis>,
}

/// An AMI made by CreateImage.
#[derive(Debug, Clone)]
pub(crate) struct Image {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) instance_id: String,
    pub(crate) state: &'static str,
    pub(crate) created: Millis,
    pub(crate) snapshot_id: String,
    pub(crate) tags: BTreeMap<String, String>,
    pub(crate) snapshot_tags: BTreeMap<String, String>,
    /// How it ends: (`available` | `failed`, reason).
    outcome: (&'static str, Option<String>),
    pub(crate) reason: Option<String>,
}

/// How images made by CreateImage end (`POST /_sandbox/ec2/image-outcomes`). The first rule
/// that matches decides; without one an image becomes `available`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct ImageOutcome {
    /// Only images of this instance; omitted: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) instance_id: Option<String>,
    /// Only images whose name contains this; omitted: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) name_contains: Option<String>,
    /// `available` or `failed`.
    pub(crate) state: String,
    /// Overrides [`Options::create_image_secs`] for matching images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) delay_seconds: Option<f64>,
    /// The region the rule applies to; default `us-east-1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) region: Option<String>,
}

impl ImageOutcome {
    fn validate(&self) -> Result<(), String> {
        if !matches!(self.state.as_str(), "available" | "failed") {
            return Err(format!(
                "state must be available or failed, got {:?}",
                self.state
            ));
        }
        if let Some(d) = self.delay_seconds
            && (!d.is_finite() || !(0.0..=86_400.0 * 30.0).contains(&d))
        {
            return Err(format!("delay_seconds must be 0..30 days, got {d}"));
        }
        Ok(())
    }
}

/// An instance as EC2 shows it now.
#[derive(Debug, Clone, Copy)]
pub(crate) struct View<'a> {
    pub(crate) rec: &'a Instance,
    pub(crate) state: Ec2State,
    /// Its Auto Scaling lifecycle state (the last one seen, once the engine forgot it).
    pub(crate) lifecycle: Option<S>,
    /// The group named by its `aws:autoscaling:groupName` tag.
    pub(crate) group: Option<&'a str>,
}

impl View<'_> {
    /// Every tag, `aws:autoscaling:groupName` included, by key.
    pub(crate) fn tags(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .rec
            .tags
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let Some(g) = self.group {
            out.push((GROUP_TAG.to_owned(), g.to_owned()));
            out.sort();
        }
        out
    }

    /// `meta-data/autoscaling/target-lifecycle-state`, if the instance ever had one.
    pub(crate) fn target_lifecycle_state(&self) -> Option<&'static str> {
        if self.rec.terminated_at.is_some() && self.lifecycle.is_some() {
            return Some("Terminated");
        }
        self.lifecycle.map(target_lifecycle_state)
    }
}

/// The EC2 view of instance `rec` in `region`.
pub(crate) fn view<'a>(region: &'a Region, rec: &'a Instance) -> View<'a> {
    let (lifecycle, group) = match region.autoscaling.instances.get(&rec.id) {
        Some(ai) => (Some(ai.state), Some(ai.group.as_str())),
        None => (
            // The engine forgets instances a while after they left their group: they
            // were detached or terminated.
            rec.last_lifecycle.map(|l| {
                if matches!(l, S::Detached | S::Detaching) {
                    S::Detached
                } else {
                    S::Terminated
                }
            }),
            rec.last_group.as_deref(),
        ),
    };
    let group = match lifecycle {
        Some(S::Detached | S::Detaching) | None => None,
        Some(_) => group,
    };
    let state = if rec.terminated_at.is_some() {
        Ec2State::Terminated
    } else {
        lifecycle.map_or(Ec2State::Running, ec2_state_of)
    };
    View {
        rec,
        state,
        lifecycle,
        group,
    }
}

// ---------------------------------------------------------------------------------------
// Keeping in step with Auto Scaling
// ---------------------------------------------------------------------------------------

/// Brings the EC2 view of `region` up to date with its Auto Scaling instances, and forgets
/// instances terminated more than [`TERMINATED_VISIBLE_MS`] ago.
pub(crate) fn sync(w: &mut World, region: &str) {
    let now = w.now;
    let r = w.region(region);
    let ids: Vec<String> = r.autoscaling.instances.keys().cloned().collect();
    for id in &ids {
        sync_one(r, id);
    }
    let Region {
        autoscaling, ec2, ..
    } = r;
    ec2.instances.retain(|id, rec| {
        if autoscaling.instances.contains_key(id) {
            return true;
        }
        let gone = rec.terminated_at.is_some()
            || rec
                .last_lifecycle
                .is_some_and(|l| !matches!(l, S::Detached | S::Detaching));
        !gone
            || rec
                .ended_at
                .is_some_and(|e| now.saturating_sub(e) <= TERMINATED_VISIBLE_MS)
    });
    ec2.imds_tokens.retain(|_, (_, exp)| *exp > now);
}

/// Brings one instance's EC2 record up to date with the engine (creating it when the
/// instance is new). The Auto Scaling engine calls this at launch and detach, so that the
/// propagated tags are those of launch time and a detached instance is never taken for a
/// terminated one.
pub(crate) fn sync_instance(w: &mut World, region: &str, id: &str) {
    sync_one(w.region(region), id);
}

fn sync_one(r: &mut Region, id: &str) {
    let Region {
        autoscaling, ec2, ..
    } = r;
    let Some(ai) = autoscaling.instances.get(id) else {
        return;
    };
    let ended = if ai.state == S::Terminated {
        ai.ended_at
    } else {
        None
    };
    if let Some(rec) = ec2.instances.get_mut(id) {
        rec.last_lifecycle = Some(ai.state);
        rec.last_group = Some(ai.group.clone());
        if ended.is_some() && rec.ended_at.is_none() {
            rec.ended_at = ended;
        }
        return;
    }
    let tags: BTreeMap<String, String> = autoscaling
        .groups
        .get(&ai.group)
        .map(|g| {
            g.tags
                .iter()
                .filter(|t| t.propagate && !t.key.starts_with("aws:"))
                .map(|t| (t.key.clone(), t.value.clone()))
                .collect()
        })
        .unwrap_or_default();
    let ip = next_ip(ec2);
    ec2.instances.insert(
        id.to_owned(),
        Instance {
            id: id.to_owned(),
            reservation_id: ids::hex_id("r"),
            image_id: DEFAULT_IMAGE_ID.to_owned(),
            instance_type: ai.instance_type.clone(),
            az: ai.az.clone(),
            launched_at: ai.launched_at,
            private_ip: ip,
            tags,
            standalone: false,
            last_lifecycle: Some(ai.state),
            last_group: Some(ai.group.clone()),
            terminated_at: None,
            ended_at: ended,
            reboots: Vec::new(),
        },
    );
}

fn next_ip(s: &mut State) -> String {
    s.next_ip += 1;
    let n = s.next_ip;
    format!("10.0.{}.{}", (n / 250) % 256, n % 250 + 4)
}

/// The region an instance lives in (IMDS and the control API name instances without one).
pub(crate) fn find_region(w: &mut World, id: &str) -> Option<String> {
    let names: Vec<String> = w.regions.keys().cloned().collect();
    for name in names {
        sync(w, &name);
        if w.region(&name).ec2.instances.contains_key(id) {
            return Some(name);
        }
    }
    None
}

/// Starts a standalone instance (RunInstances and the control API); returns its id.
pub(crate) fn run_instance(
    w: &mut World,
    region: &str,
    image_id: &str,
    instance_type: &str,
    az: &str,
    reservation_id: &str,
    tags: BTreeMap<String, String>,
) -> String {
    let now = w.now;
    let ec2 = &mut w.region(region).ec2;
    let id = ids::hex_id("i");
    let ip = next_ip(ec2);
    ec2.instances.insert(
        id.clone(),
        Instance {
            id: id.clone(),
            reservation_id: reservation_id.to_owned(),
            image_id: image_id.to_owned(),
            instance_type: instance_type.to_owned(),
            az: az.to_owned(),
            launched_at: now,
            private_ip: ip,
            tags,
            standalone: true,
            last_lifecycle: None,
            last_group: None,
            terminated_at: None,
            ended_at: None,
            reboots: Vec::new(),
        },
    );
    id
}

/// Records a reboot of instance `id` (no state change: a rebooted instance stays
/// `running`). False when the instance is unknown.
pub(crate) fn record_reboot(w: &mut World, region: &str, id: &str) -> bool {
    let now = w.now;
    match w.region(region).ec2.instances.get_mut(id) {
        Some(rec) => {
            rec.reboots.push(now);
            true
        }
        None => false,
    }
}

pub(crate) fn on_timer(w: &mut World, region: &str, t: Timer) {
    match t {
        Timer::ImageDone { image } => {
            if let Some(img) = w.region(region).ec2.images.get_mut(&image)
                && img.state == "pending"
            {
                img.state = img.outcome.0;
                img.reason = img.outcome.1.clone();
            }
        }
    }
}
