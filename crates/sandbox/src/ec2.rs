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

use std::collections::{BTreeMap, HashMap};

use lifehook_model::LifecycleState as S;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::clock::{Millis, iso_millis, iso_secs};
use crate::protocol::{AwsError, Params, Service, XmlWriter};
use crate::server::{Input, Reply, RequestCtx};
use crate::world::{Region, Timer as WorldTimer, World};
use crate::{ACCOUNT_ID, DEFAULT_REGION, Sandbox, autoscaling, ids};

/// The image id of instances whose image the sandbox does not know (group instances): the
/// example id of the EC2 documentation.
pub const DEFAULT_IMAGE_ID: &str = "ami-0abcdef1234567890";
/// RunInstances' default instance type when the request names none (as in AWS).
pub const DEFAULT_INSTANCE_TYPE: &str = "m1.small";
/// How long terminated instances stay visible in DescribeInstances (AWS: about an hour).
pub const TERMINATED_VISIBLE_MS: Millis = 3_600_000;
/// The most instances one RunInstances call may start in the sandbox.
pub const MAX_RUN_COUNT: i64 = 100;
/// At most 50 tags per resource (EC2's limit).
pub const MAX_TAGS: usize = 50;
/// The key of the tag Auto Scaling puts on its instances.
pub const GROUP_TAG: &str = "aws:autoscaling:groupName";

/// EC2 options (`PUT /_sandbox/behaviour` `{"ec2": {...}}`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// Virtual seconds from CreateImage until the image is `available` (or `failed`).
    /// Default 120.
    pub create_image_secs: u64,
    /// Whether instance tags are exposed in IMDS (`meta-data/tags/instance`), as with
    /// `InstanceMetadataTags=enabled`. Default `true`.
    pub instance_metadata_tags: bool,
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
pub enum Timer {
    /// A pending image is done.
    ImageDone { image: String },
}

/// `instanceState.name` and its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ec2State {
    Pending,
    Running,
    ShuttingDown,
    Terminated,
    Stopping,
    Stopped,
}

impl Ec2State {
    pub fn name(self) -> &'static str {
        match self {
            Ec2State::Pending => "pending",
            Ec2State::Running => "running",
            Ec2State::ShuttingDown => "shutting-down",
            Ec2State::Terminated => "terminated",
            Ec2State::Stopping => "stopping",
            Ec2State::Stopped => "stopped",
        }
    }

    pub fn code(self) -> u32 {
        match self {
            Ec2State::Pending => 0,
            Ec2State::Running => 16,
            Ec2State::ShuttingDown => 32,
            Ec2State::Terminated => 48,
            Ec2State::Stopping => 64,
            Ec2State::Stopped => 80,
        }
    }
}

/// The EC2 state of a group instance in lifecycle state `s`. `Pending:Wait` is already
/// `running` (spec §1.2 note 4: user data runs during the launch hook).
pub fn ec2_state_of(s: S) -> Ec2State {
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
pub fn target_lifecycle_state(s: S) -> &'static str {
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
pub struct State {
    pub instances: BTreeMap<String, Instance>,
    pub images: BTreeMap<String, Image>,
    /// Ids of deregistered images (DescribeImages answers nothing for them, not an error).
    deregistered: Vec<String>,
    image_outcomes: Vec<ImageOutcome>,
    /// IMDS session tokens: token → (instance id, expiry).
    pub(crate) imds_tokens: HashMap<String, (String, Millis)>,
    next_ip: u32,
}

/// What EC2 knows of an instance beyond the Auto Scaling engine.
#[derive(Debug, Clone)]
pub struct Instance {
    pub id: String,
    pub reservation_id: String,
    pub image_id: String,
    pub instance_type: String,
    pub az: String,
    pub launched_at: Millis,
    pub private_ip: String,
    /// Every tag but `aws:autoscaling:groupName`.
    pub tags: BTreeMap<String, String>,
    /// Started by RunInstances or the control API (not by a group).
    pub standalone: bool,
    /// The last lifecycle state seen (group instances), for after the engine forgets it.
    pub last_lifecycle: Option<S>,
    /// The group of the last lifecycle state seen.
    pub last_group: Option<String>,
    /// When EC2 (TerminateInstances) terminated it.
    pub terminated_at: Option<Millis>,
    /// When it became `terminated` (either way), as far as this view knows.
    pub ended_at: Option<Millis>,
    /// Virtual times of its reboots (RebootInstances, CreateImage without NoReboot, the
    /// control API).
    pub reboots: Vec<Millis>,
}

/// An AMI made by CreateImage.
#[derive(Debug, Clone)]
pub struct Image {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub instance_id: String,
    pub state: &'static str,
    pub created: Millis,
    pub snapshot_id: String,
    pub tags: BTreeMap<String, String>,
    pub snapshot_tags: BTreeMap<String, String>,
    /// How it ends: (`available` | `failed`, reason).
    outcome: (&'static str, Option<String>),
    pub reason: Option<String>,
}

/// How images made by CreateImage end (`POST /_sandbox/ec2/image-outcomes`). The first rule
/// that matches decides; without one an image becomes `available`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ImageOutcome {
    /// Only images of this instance; omitted: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    /// Only images whose name contains this; omitted: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_contains: Option<String>,
    /// `available` or `failed`.
    pub state: String,
    /// Overrides [`Options::create_image_secs`] for matching images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_seconds: Option<f64>,
    /// The region the rule applies to; default `us-east-1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
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
pub struct View<'a> {
    pub rec: &'a Instance,
    pub state: Ec2State,
    /// Its Auto Scaling lifecycle state (the last one seen, once the engine forgot it).
    pub lifecycle: Option<S>,
    /// The group named by its `aws:autoscaling:groupName` tag.
    pub group: Option<&'a str>,
}

impl View<'_> {
    /// Every tag, `aws:autoscaling:groupName` included, by key.
    pub fn tags(&self) -> Vec<(String, String)> {
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
    pub fn target_lifecycle_state(&self) -> Option<&'static str> {
        if self.rec.terminated_at.is_some() && self.lifecycle.is_some() {
            return Some("Terminated");
        }
        self.lifecycle.map(target_lifecycle_state)
    }
}

/// The EC2 view of instance `rec` in `region`.
pub fn view<'a>(region: &'a Region, rec: &'a Instance) -> View<'a> {
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
pub fn sync(w: &mut World, region: &str) {
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
pub fn sync_instance(w: &mut World, region: &str, id: &str) {
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
pub fn find_region(w: &mut World, id: &str) -> Option<String> {
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
pub fn run_instance(
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
pub fn record_reboot(w: &mut World, region: &str, id: &str) -> bool {
    let now = w.now;
    match w.region(region).ec2.instances.get_mut(id) {
        Some(rec) => {
            rec.reboots.push(now);
            true
        }
        None => false,
    }
}

pub fn on_timer(w: &mut World, region: &str, t: Timer) {
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

// ---------------------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------------------

pub async fn handle(sb: &Sandbox, ctx: &RequestCtx, input: Input) -> Result<Reply, AwsError> {
    let Input::Query(p) = input else {
        return Err(AwsError::unknown_operation(Service::Ec2, &ctx.op));
    };
    let mut w = sb.lock();
    dispatch(&mut w, ctx, &p).map(Reply::Xml)
}

type R = Result<String, AwsError>;

/// Runs one EC2 operation on the world.
pub fn dispatch(w: &mut World, ctx: &RequestCtx, p: &Params) -> R {
    sync(w, &ctx.region);
    let cx = Cx {
        op: &ctx.op,
        rid: &ctx.request_id,
        region: &ctx.region,
    };
    match ctx.op.as_str() {
        "DescribeInstances" => describe_instances(w, &cx, p),
        "RunInstances" => run_instances(w, &cx, p),
        "TerminateInstances" => terminate_instances(w, &cx, p),
        "RebootInstances" => reboot_instances(w, &cx, p),
        "DescribeInstanceStatus" => describe_instance_status(w, &cx, p),
        "CreateTags" => create_tags(w, &cx, p),
        "DeleteTags" => delete_tags(w, &cx, p),
        "DescribeTags" => describe_tags(w, &cx, p),
        "CreateImage" => create_image(w, &cx, p),
        "DescribeImages" => describe_images(w, &cx, p),
        "DeregisterImage" => deregister_image(w, &cx, p),
        op => Err(AwsError::unknown_operation(Service::Ec2, op)),
    }
}

struct Cx<'a> {
    op: &'a str,
    rid: &'a str,
    region: &'a str,
}

impl Cx<'_> {
    /// `<OpResponse xmlns=…><requestId>…</requestId>`.
    fn writer(&self) -> XmlWriter {
        let mut x = XmlWriter::root(
            &format!("{}Response", self.op),
            Some(Service::Ec2.xml_namespace()),
        );
        x.elem("requestId", self.rid);
        x
    }

    fn returned_true(&self) -> String {
        let mut x = self.writer();
        x.elem("return", "true");
        x.finish_bare()
    }
}

fn missing_parameter(name: &str) -> AwsError {
    AwsError::new(
        400,
        "MissingParameter",
        format!("The request must contain the parameter {name}"),
    )
}

fn invalid_value(param: &str, v: &str, why: &str) -> AwsError {
    AwsError::new(
        400,
        "InvalidParameterValue",
        format!("Value ({v}) for parameter {param} is invalid. {why}"),
    )
}

fn looks_like(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix).is_some_and(|rest| {
        (rest.len() == 8 || rest.len() == 17) && rest.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

fn instance_not_found(missing: &[String]) -> AwsError {
    let msg = if missing.len() == 1 {
        format!("The instance ID '{}' does not exist", missing[0])
    } else {
        format!("The instance IDs '{}' do not exist", missing.join(", "))
    };
    AwsError::new(400, "InvalidInstanceID.NotFound", msg)
}

fn image_not_found(id: &str) -> AwsError {
    AwsError::new(
        400,
        "InvalidAMIID.NotFound",
        format!("The image id '[{id}]' does not exist"),
    )
}

/// Checks that every id names an instance of the region: malformed ids first, then every
/// unknown id in one `InvalidInstanceID.NotFound`.
fn check_instances(w: &mut World, region: &str, ids: &[String]) -> Result<(), AwsError> {
    let ec2 = &w.region(region).ec2;
    let mut missing = Vec::new();
    for id in ids {
        if ec2.instances.contains_key(id) {
            continue;
        }
        if !looks_like(id, "i-") {
            return Err(AwsError::new(
                400,
                "InvalidInstanceID.Malformed",
                format!("Invalid id: \"{id}\""),
            ));
        }
        if !missing.contains(id) {
            missing.push(id.clone());
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(instance_not_found(&missing))
    }
}

fn instance_ids(p: &Params) -> Vec<String> {
    p.list("InstanceId")
}

/// `*` and `?` wildcards, as in EC2 filter values.
pub fn glob(pattern: &str, s: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = s.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(sp) = star {
            pi = sp + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// A filter: `Filter.N.Name` with its `Value.M`s.
struct Filter {
    name: String,
    values: Vec<String>,
}

fn filters(p: &Params) -> Result<Vec<Filter>, AwsError> {
    p.struct_list("Filter")
        .into_iter()
        .map(|f| {
            let name = f
                .get_nonempty("Name")
                .ok_or_else(|| missing_parameter("Filter.Name"))?
                .to_owned();
            Ok(Filter {
                name,
                values: f.list("Value"),
            })
        })
        .collect()
}

fn bad_filter(name: &str) -> AwsError {
    AwsError::new(
        400,
        "InvalidParameterValue",
        format!("The filter '{name}' is invalid"),
    )
}

fn any_glob(values: &[String], s: &str) -> bool {
    values.iter().any(|v| glob(v, s))
}

/// Whether tags match a `tag:KEY`, `tag-key` or `tag-value` filter (`None`: not a tag
/// filter).
fn tag_filter(f: &Filter, tags: &[(String, String)]) -> Option<bool> {
    if let Some(key) = f.name.strip_prefix("tag:") {
        return Some(tags.iter().any(|(k, v)| k == key && any_glob(&f.values, v)));
    }
    match f.name.as_str() {
        "tag-key" => Some(tags.iter().any(|(k, _)| any_glob(&f.values, k))),
        "tag-value" => Some(tags.iter().any(|(_, v)| any_glob(&f.values, v))),
        _ => None,
    }
}

fn instance_matches(v: &View, fs: &[Filter]) -> Result<bool, AwsError> {
    let tags = v.tags();
    for f in fs {
        if let Some(ok) = tag_filter(f, &tags) {
            if !ok {
                return Ok(false);
            }
            continue;
        }
        let field = match f.name.as_str() {
            "instance-id" => v.rec.id.clone(),
            "instance-state-name" => v.state.name().to_owned(),
            "instance-state-code" => v.state.code().to_string(),
            "availability-zone" | "placement.availability-zone" => v.rec.az.clone(),
            "instance-type" => v.rec.instance_type.clone(),
            "image-id" => v.rec.image_id.clone(),
            "reservation-id" => v.rec.reservation_id.clone(),
            "private-ip-address" => v.rec.private_ip.clone(),
            "owner-id" => ACCOUNT_ID.to_owned(),
            other => return Err(bad_filter(other)),
        };
        if !any_glob(&f.values, &field) {
            return Ok(false);
        }
    }
    Ok(true)
}

fn page_args(p: &Params, min: i64, max: i64) -> Result<(usize, usize), AwsError> {
    let size = match p.int("MaxResults")? {
        None => usize::MAX,
        Some(n) if (min..=max).contains(&n) => n as usize,
        Some(n) => {
            return Err(AwsError::new(
                400,
                "InvalidParameterValue",
                format!(
                    "Value ( {n} ) for parameter maxResults is invalid. Expecting a value between {min} and {max}."
                ),
            ));
        }
    };
    let start = match p.get_nonempty("NextToken") {
        None => 0,
        Some(t) => t.parse::<usize>().map_err(|_| {
            AwsError::new(
                400,
                "InvalidParameterValue",
                format!("Unable to parse pagination token: {t}"),
            )
        })?,
    };
    Ok((start, size))
}

fn write_state(x: &mut XmlWriter, name: &str, s: Ec2State) {
    x.start(name);
    x.elem("code", s.code());
    x.elem("name", s.name());
    x.end();
}

fn write_tag_set(x: &mut XmlWriter, tags: &[(String, String)]) {
    if tags.is_empty() {
        x.empty("tagSet");
        return;
    }
    x.start("tagSet");
    for (k, v) in tags {
        x.start("item");
        x.elem("key", k);
        x.elem("value", v);
        x.end();
    }
    x.end();
}

fn write_instance(x: &mut XmlWriter, v: &View, state: Ec2State, launch_index: usize) {
    let r = v.rec;
    let dns = format!("ip-{}.ec2.internal", r.private_ip.replace('.', "-"));
    x.start("item");
    x.elem("instanceId", &r.id);
    x.elem("imageId", &r.image_id);
    write_state(x, "instanceState", state);
    x.elem("privateDnsName", &dns);
    x.empty("dnsName");
    if state == Ec2State::Terminated {
        x.elem(
            "reason",
            format!(
                "User initiated ({} GMT)",
                crate::clock::to_datetime(r.ended_at.or(r.terminated_at).unwrap_or(r.launched_at))
                    .format("%Y-%m-%d %H:%M:%S")
            ),
        );
    } else {
        x.empty("reason");
    }
    x.elem("amiLaunchIndex", launch_index);
    x.empty("productCodes");
    x.elem("instanceType", &r.instance_type);
    x.elem("launchTime", iso_millis(r.launched_at));
    x.start("placement");
    x.elem("availabilityZone", &r.az);
    x.empty("groupName");
    x.elem("tenancy", "default");
    x.end();
    x.start("monitoring");
    x.elem("state", "disabled");
    x.end();
    if state != Ec2State::Terminated {
        x.elem("privateIpAddress", &r.private_ip);
    }
    x.elem("architecture", "x86_64");
    x.elem("rootDeviceType", "ebs");
    x.elem("rootDeviceName", "/dev/xvda");
    x.elem("virtualizationType", "hvm");
    x.elem("hypervisor", "xen");
    write_tag_set(x, &v.tags());
    if state == Ec2State::Terminated {
        x.start("stateReason");
        x.elem("code", "Client.UserInitiatedShutdown");
        x.elem(
            "message",
            "Client.UserInitiatedShutdown: User initiated shutdown",
        );
        x.end();
    }
    x.start("metadataOptions");
    x.elem("state", "applied");
    x.elem("httpTokens", "required");
    x.elem("httpPutResponseHopLimit", 2);
    x.elem("httpEndpoint", "enabled");
    x.elem("httpProtocolIpv6", "disabled");
    x.elem("instanceMetadataTags", "enabled");
    x.end();
    x.end();
}

fn describe_instances(w: &mut World, cx: &Cx, p: &Params) -> R {
    let ids = instance_ids(p);
    let fs = filters(p)?;
    if !ids.is_empty() && p.get("MaxResults").is_some() {
        return Err(AwsError::new(
            400,
            "InvalidParameterCombination",
            "The parameter instancesSet cannot be used with the parameter maxResults",
        ));
    }
    check_instances(w, cx.region, &ids)?;
    let (start, size) = page_args(p, 5, 1000)?;
    let r = w.region(cx.region);
    let mut views = Vec::new();
    for rec in r.ec2.instances.values() {
        if !ids.is_empty() && !ids.contains(&rec.id) {
            continue;
        }
        let v = view(r, rec);
        if instance_matches(&v, &fs)? {
            views.push(v);
        }
    }
    // One reservation per RunInstances call (and per group launch), in launch order.
    views.sort_by(|a, b| {
        (a.rec.launched_at, &a.rec.reservation_id, &a.rec.id).cmp(&(
            b.rec.launched_at,
            &b.rec.reservation_id,
            &b.rec.id,
        ))
    });
    let total = views.len();
    let page: Vec<View> = views.into_iter().skip(start).take(size).collect();
    let next = (start + page.len() < total).then(|| (start + page.len()).to_string());
    let mut x = cx.writer();
    if page.is_empty() {
        x.empty("reservationSet");
    } else {
        x.start("reservationSet");
        let mut i = 0;
        while i < page.len() {
            let res = &page[i].rec.reservation_id;
            x.start("item");
            x.elem("reservationId", res);
            x.elem("ownerId", ACCOUNT_ID);
            x.empty("groupSet");
            x.start("instancesSet");
            let mut k = 0;
            while i < page.len() && &page[i].rec.reservation_id == res {
                write_instance(&mut x, &page[i], page[i].state, k);
                i += 1;
                k += 1;
            }
            x.end();
            x.end();
        }
        x.end();
    }
    x.opt("nextToken", next);
    Ok(x.finish_bare())
}

fn tag_specs(p: &Params, resource_type: &str) -> Result<BTreeMap<String, String>, AwsError> {
    let mut out = BTreeMap::new();
    for spec in p.struct_list("TagSpecification") {
        let rt = spec.get("ResourceType").unwrap_or_default();
        if rt != resource_type {
            continue;
        }
        for t in spec.struct_list("Tag") {
            let (k, v) = check_tag(&t)?;
            out.insert(k, v.unwrap_or_default());
        }
    }
    if out.len() > MAX_TAGS {
        return Err(tag_limit());
    }
    Ok(out)
}

fn tag_specs_types(p: &Params, allowed: &[&str]) -> Result<(), AwsError> {
    for spec in p.struct_list("TagSpecification") {
        let rt = spec.get("ResourceType").unwrap_or_default();
        if !allowed.contains(&rt) {
            return Err(AwsError::new(
                400,
                "InvalidParameterValue",
                format!("'{rt}' is not a valid taggable resource type for this operation."),
            ));
        }
    }
    Ok(())
}

fn tag_limit() -> AwsError {
    AwsError::new(
        400,
        "TagLimitExceeded",
        format!("The maximum number of tags per resource is {MAX_TAGS}."),
    )
}

/// A `Tag.N` structure: its key (checked) and value.
fn check_tag(t: &Params) -> Result<(String, Option<String>), AwsError> {
    let k = t.get("Key").ok_or_else(|| missing_parameter("Tag.Key"))?;
    if k.is_empty() || k.chars().count() > 128 {
        return Err(invalid_value(
            "key",
            k,
            "Tag keys must be between 1 and 128 characters long.",
        ));
    }
    if k.to_ascii_lowercase().starts_with("aws:") {
        return Err(invalid_value(
            "key",
            k,
            "Tag keys starting with 'aws:' are reserved for internal use",
        ));
    }
    let v = t.get("Value");
    if let Some(v) = v
        && v.chars().count() > 256
    {
        return Err(invalid_value(
            "value",
            v,
            "Tag values may be at most 256 characters long.",
        ));
    }
    Ok((k.to_owned(), v.map(str::to_owned)))
}

fn run_instances(w: &mut World, cx: &Cx, p: &Params) -> R {
    let image = p
        .get_nonempty("ImageId")
        .ok_or_else(|| missing_parameter("ImageId"))?
        .to_owned();
    if !image.starts_with("ami-") {
        return Err(AwsError::new(
            400,
            "InvalidAMIID.Malformed",
            format!("Invalid id: \"{image}\" (expecting \"ami-...\")"),
        ));
    }
    let min = p
        .int("MinCount")?
        .ok_or_else(|| missing_parameter("MinCount"))?;
    let max = p
        .int("MaxCount")?
        .ok_or_else(|| missing_parameter("MaxCount"))?;
    if min < 1 {
        return Err(AwsError::new(
            400,
            "InvalidParameterValue",
            format!("Value ({min}) for parameter minCount is invalid. Expected a positive value."),
        ));
    }
    if max < min {
        return Err(AwsError::new(
            400,
            "InvalidParameterValue",
            "Value for parameter maxCount is invalid. maxCount must be greater than or equal to minCount.",
        ));
    }
    if min > MAX_RUN_COUNT {
        return Err(AwsError::new(
            400,
            "InstanceLimitExceeded",
            format!(
                "You have requested more instances ({min}) than your current instance limit of {MAX_RUN_COUNT} allows for the specified instance type."
            ),
        ));
    }
    let count = max.min(MAX_RUN_COUNT) as usize;
    let itype = p
        .get_nonempty("InstanceType")
        .unwrap_or(DEFAULT_INSTANCE_TYPE)
        .to_owned();
    let az = match p.get_nonempty("Placement.AvailabilityZone") {
        Some(az) => {
            let ok = az
                .strip_prefix(cx.region)
                .is_some_and(|s| s.len() == 1 && s.bytes().all(|b| b.is_ascii_lowercase()));
            if !ok {
                return Err(AwsError::new(
                    400,
                    "InvalidParameterValue",
                    format!("Invalid availability zone: [{az}]"),
                ));
            }
            az.to_owned()
        }
        None => format!("{}a", cx.region),
    };
    tag_specs_types(p, &["instance", "volume", "network-interface"])?;
    let tags = tag_specs(p, "instance")?;
    let reservation = ids::hex_id("r");
    let ids: Vec<String> = (0..count)
        .map(|_| {
            run_instance(
                w,
                cx.region,
                &image,
                &itype,
                &az,
                &reservation,
                tags.clone(),
            )
        })
        .collect();
    let r = w.region(cx.region);
    let mut x = cx.writer();
    x.elem("reservationId", &reservation);
    x.elem("ownerId", ACCOUNT_ID);
    x.empty("groupSet");
    x.start("instancesSet");
    for (k, id) in ids.iter().enumerate() {
        if let Some(rec) = r.ec2.instances.get(id) {
            let v = view(r, rec);
            // The answer shows the instance as it starts; it is `running` at once.
            write_instance(&mut x, &v, Ec2State::Pending, k);
        }
    }
    x.end();
    Ok(x.finish_bare())
}

fn require_ids(p: &Params) -> Result<Vec<String>, AwsError> {
    let ids = instance_ids(p);
    if ids.is_empty() {
        return Err(missing_parameter("InstanceId"));
    }
    Ok(ids)
}

fn terminate_instances(w: &mut World, cx: &Cx, p: &Params) -> R {
    let ids = require_ids(p)?;
    check_instances(w, cx.region, &ids)?;
    let now = w.now;
    let mut changes = Vec::new();
    for id in &ids {
        let before = {
            let r = w.region(cx.region);
            let Some(rec) = r.ec2.instances.get(id) else {
                continue;
            };
            view(r, rec).state
        };
        if before != Ec2State::Terminated {
            // A group instance leaves its group without hooks (§1.3); the group replaces
            // it as it would after a failed health check.
            let in_group = w
                .region(cx.region)
                .autoscaling
                .instances
                .get(id)
                .is_some_and(|i| i.in_group);
            if in_group {
                autoscaling::engine::begin_termination(
                    w,
                    cx.region,
                    id,
                    format!(
                        "At {} an instance was taken out of service in response to an EC2 health check indicating it has been terminated or stopped.",
                        iso_secs(now)
                    ),
                    false,
                );
            }
            if let Some(rec) = w.region(cx.region).ec2.instances.get_mut(id) {
                rec.terminated_at = Some(now);
                rec.ended_at.get_or_insert(now);
            }
            sync_one(w.region(cx.region), id);
        }
        let current = if before == Ec2State::Terminated {
            Ec2State::Terminated
        } else {
            Ec2State::ShuttingDown
        };
        changes.push((id.clone(), current, before));
    }
    let mut x = cx.writer();
    x.start("instancesSet");
    for (id, current, previous) in changes {
        x.start("item");
        x.elem("instanceId", id);
        write_state(&mut x, "currentState", current);
        write_state(&mut x, "previousState", previous);
        x.end();
    }
    x.end();
    Ok(x.finish_bare())
}

fn reboot_instances(w: &mut World, cx: &Cx, p: &Params) -> R {
    let ids = require_ids(p)?;
    check_instances(w, cx.region, &ids)?;
    for id in &ids {
        let r = w.region(cx.region);
        let state = r.ec2.instances.get(id).map(|rec| view(r, rec).state);
        if state == Some(Ec2State::Terminated) {
            return Err(AwsError::new(
                400,
                "IncorrectState",
                format!("The instance '{id}' is not in a state from which it can be rebooted."),
            ));
        }
    }
    for id in &ids {
        record_reboot(w, cx.region, id);
    }
    Ok(cx.returned_true())
}

fn describe_instance_status(w: &mut World, cx: &Cx, p: &Params) -> R {
    let ids = instance_ids(p);
    check_instances(w, cx.region, &ids)?;
    let all = p.bool("IncludeAllInstances")?.unwrap_or(false);
    let fs = filters(p)?;
    let r = w.region(cx.region);
    let mut x = cx.writer();
    x.start("instanceStatusSet");
    for rec in r.ec2.instances.values() {
        if !ids.is_empty() && !ids.contains(&rec.id) {
            continue;
        }
        let v = view(r, rec);
        if !all && v.state != Ec2State::Running {
            continue;
        }
        let mut keep = true;
        for f in &fs {
            let field = match f.name.as_str() {
                "instance-state-name" => v.state.name().to_owned(),
                "availability-zone" => rec.az.clone(),
                other => return Err(bad_filter(other)),
            };
            keep &= any_glob(&f.values, &field);
        }
        if !keep {
            continue;
        }
        let ok = if v.state == Ec2State::Running {
            "ok"
        } else {
            "not-applicable"
        };
        x.start("item");
        x.elem("instanceId", &rec.id);
        x.elem("availabilityZone", &rec.az);
        write_state(&mut x, "instanceState", v.state);
        for name in ["systemStatus", "instanceStatus"] {
            x.start(name);
            x.elem("status", ok);
            x.start("details");
            x.start("item");
            x.elem("name", "reachability");
            x.elem("status", if ok == "ok" { "passed" } else { ok });
            x.end();
            x.end();
            x.end();
        }
        x.end();
    }
    x.end();
    Ok(x.finish_bare())
}

/// A resource that can carry tags.
enum Resource {
    Instance(String),
    Image(String),
    Snapshot(String),
}

fn resources(w: &mut World, region: &str, p: &Params) -> Result<Vec<Resource>, AwsError> {
    let ids = p.list("ResourceId");
    if ids.is_empty() {
        return Err(missing_parameter("ResourceId"));
    }
    let mut out = Vec::new();
    let mut instances = Vec::new();
    for id in ids {
        if id.starts_with("i-") {
            instances.push(id.clone());
            out.push(Resource::Instance(id));
        } else if id.starts_with("ami-") {
            if !w.region(region).ec2.images.contains_key(&id) {
                return Err(image_not_found(&id));
            }
            out.push(Resource::Image(id));
        } else if id.starts_with("snap-") {
            let known = w
                .region(region)
                .ec2
                .images
                .values()
                .any(|i| i.snapshot_id == id);
            if !known {
                return Err(AwsError::new(
                    400,
                    "InvalidSnapshot.NotFound",
                    format!("The snapshot '{id}' does not exist."),
                ));
            }
            out.push(Resource::Snapshot(id));
        } else {
            return Err(AwsError::new(
                400,
                "InvalidID",
                format!("The ID '{id}' is not valid"),
            ));
        }
    }
    check_instances(w, region, &instances)?;
    Ok(out)
}

fn tags_of<'a>(ec2: &'a mut State, r: &Resource) -> Option<&'a mut BTreeMap<String, String>> {
    match r {
        Resource::Instance(id) => ec2.instances.get_mut(id).map(|i| &mut i.tags),
        Resource::Image(id) => ec2.images.get_mut(id).map(|i| &mut i.tags),
        Resource::Snapshot(id) => ec2
            .images
            .values_mut()
            .find(|i| &i.snapshot_id == id)
            .map(|i| &mut i.snapshot_tags),
    }
}

fn create_tags(w: &mut World, cx: &Cx, p: &Params) -> R {
    let res = resources(w, cx.region, p)?;
    let tags = p.struct_list("Tag");
    if tags.is_empty() {
        return Err(missing_parameter("Tag"));
    }
    let mut pairs = Vec::new();
    for t in &tags {
        let (k, v) = check_tag(t)?;
        pairs.push((k, v.unwrap_or_default()));
    }
    let ec2 = &mut w.region(cx.region).ec2;
    for r in &res {
        if let Some(map) = tags_of(ec2, r) {
            let mut next = map.clone();
            for (k, v) in &pairs {
                next.insert(k.clone(), v.clone());
            }
            if next.len() > MAX_TAGS {
                return Err(tag_limit());
            }
        }
    }
    for r in &res {
        if let Some(map) = tags_of(ec2, r) {
            for (k, v) in &pairs {
                map.insert(k.clone(), v.clone());
            }
        }
    }
    Ok(cx.returned_true())
}

fn delete_tags(w: &mut World, cx: &Cx, p: &Params) -> R {
    let res = resources(w, cx.region, p)?;
    let tags = p.struct_list("Tag");
    let mut keys = Vec::new();
    for t in &tags {
        keys.push(check_tag(t)?);
    }
    let ec2 = &mut w.region(cx.region).ec2;
    for r in &res {
        if let Some(map) = tags_of(ec2, r) {
            if tags.is_empty() {
                // No Tag parameter: every (user) tag goes.
                map.clear();
                continue;
            }
            for (k, v) in &keys {
                // With a value, only a tag with that value goes.
                if v.as_ref().is_none_or(|v| map.get(k) == Some(v)) {
                    map.remove(k);
                }
            }
        }
    }
    Ok(cx.returned_true())
}

fn describe_tags(w: &mut World, cx: &Cx, p: &Params) -> R {
    let fs = filters(p)?;
    let (start, size) = page_args(p, 5, 1000)?;
    let r = w.region(cx.region);
    // (resource id, type, key, value)
    let mut all: Vec<(String, &'static str, String, String)> = Vec::new();
    for rec in r.ec2.instances.values() {
        for (k, v) in view(r, rec).tags() {
            all.push((rec.id.clone(), "instance", k, v));
        }
    }
    for img in r.ec2.images.values() {
        for (k, v) in &img.tags {
            all.push((img.id.clone(), "image", k.clone(), v.clone()));
        }
        for (k, v) in &img.snapshot_tags {
            all.push((img.snapshot_id.clone(), "snapshot", k.clone(), v.clone()));
        }
    }
    let mut out = Vec::new();
    for t in all {
        let mut keep = true;
        for f in &fs {
            let field = match f.name.as_str() {
                "resource-id" => &t.0,
                "resource-type" => t.1,
                "key" => &t.2,
                "value" => &t.3,
                other => return Err(bad_filter(other)),
            };
            if !any_glob(&f.values, field) {
                keep = false;
                break;
            }
        }
        if keep {
            out.push(t);
        }
    }
    out.sort_by(|a, b| (&a.0, &a.2).cmp(&(&b.0, &b.2)));
    let total = out.len();
    let page: Vec<_> = out.into_iter().skip(start).take(size).collect();
    let next = (start + page.len() < total).then(|| (start + page.len()).to_string());
    let mut x = cx.writer();
    if page.is_empty() {
        x.empty("tagSet");
    } else {
        x.start("tagSet");
        for (id, ty, k, v) in &page {
            x.start("item");
            x.elem("resourceId", id);
            x.elem("resourceType", ty);
            x.elem("key", k);
            x.elem("value", v);
            x.end();
        }
        x.end();
    }
    x.opt("nextToken", next);
    Ok(x.finish_bare())
}

fn check_image_name(name: &str) -> Result<(), AwsError> {
    let n = name.chars().count();
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "()[] ./-'@_".contains(c));
    if !(3..=128).contains(&n) || !ok_chars {
        return Err(AwsError::new(
            400,
            "InvalidAMIName.Malformed",
            "AMI names must be between 3 and 128 characters long, and may contain letters, numbers, '(', ')', '.', '-', '/' and '_'",
        ));
    }
    Ok(())
}

fn create_image(w: &mut World, cx: &Cx, p: &Params) -> R {
    let instance = p
        .get_nonempty("InstanceId")
        .ok_or_else(|| missing_parameter("InstanceId"))?
        .to_owned();
    let name = p
        .get("Name")
        .ok_or_else(|| missing_parameter("Name"))?
        .to_owned();
    check_image_name(&name)?;
    let no_reboot = p.bool("NoReboot")?.unwrap_or(false);
    let description = p.get("Description").map(str::to_owned);
    tag_specs_types(p, &["image", "snapshot"])?;
    let tags = tag_specs(p, "image")?;
    let snapshot_tags = tag_specs(p, "snapshot")?;
    check_instances(w, cx.region, std::slice::from_ref(&instance))?;
    let now = w.now;
    let default_secs = w.behaviour.ec2.create_image_secs;
    let r = w.region(cx.region);
    if let Some(rec) = r.ec2.instances.get(&instance)
        && matches!(
            view(r, rec).state,
            Ec2State::Terminated | Ec2State::ShuttingDown | Ec2State::Pending
        )
    {
        return Err(AwsError::new(
            400,
            "IncorrectInstanceState",
            format!("The instance '{instance}' is not in a state from which it can be imaged."),
        ));
    }
    if let Some(other) = r.ec2.images.values().find(|i| i.name == name) {
        return Err(AwsError::new(
            400,
            "InvalidAMIName.Duplicate",
            format!("AMI name {name} is already in use by AMI {}", other.id),
        ));
    }
    let rule = r
        .ec2
        .image_outcomes
        .iter()
        .find(|o| {
            o.instance_id.as_deref().is_none_or(|i| i == instance)
                && o.name_contains.as_deref().is_none_or(|c| name.contains(c))
        })
        .cloned();
    let (outcome, delay_ms) = match rule {
        Some(o) => {
            let state = if o.state == "failed" {
                "failed"
            } else {
                "available"
            };
            let reason = (state == "failed").then(|| {
                "Client.ImageCreationFailed: the sandbox's image outcome rule failed this image"
                    .to_owned()
            });
            let delay = o
                .delay_seconds
                .map_or(default_secs.saturating_mul(1000), |d| {
                    (d * 1000.0).round() as u64
                });
            ((state, reason), delay)
        }
        None => (("available", None), default_secs.saturating_mul(1000)),
    };
    let id = ids::hex_id("ami");
    r.ec2.images.insert(
        id.clone(),
        Image {
            id: id.clone(),
            name,
            description,
            instance_id: instance.clone(),
            state: "pending",
            created: now,
            snapshot_id: ids::hex_id("snap"),
            tags,
            snapshot_tags,
            outcome,
            reason: None,
        },
    );
    if !no_reboot {
        // Without NoReboot, EC2 shuts the instance down for the snapshot and restarts it.
        record_reboot(w, cx.region, &instance);
    }
    w.schedule(
        now.saturating_add(delay_ms),
        cx.region,
        WorldTimer::Ec2(Timer::ImageDone { image: id.clone() }),
    );
    let mut x = cx.writer();
    x.elem("imageId", &id);
    Ok(x.finish_bare())
}

fn describe_images(w: &mut World, cx: &Cx, p: &Params) -> R {
    let ids = p.list("ImageId");
    let owners = p.list("Owner");
    let fs = filters(p)?;
    let ec2 = &w.region(cx.region).ec2;
    for id in &ids {
        if ec2.images.contains_key(id) || ec2.deregistered.contains(id) {
            continue;
        }
        if !looks_like(id, "ami-") {
            return Err(AwsError::new(
                400,
                "InvalidAMIID.Malformed",
                format!("Invalid id: \"{id}\" (expecting \"ami-...\")"),
            ));
        }
        return Err(image_not_found(id));
    }
    let mine = owners.is_empty() || owners.iter().any(|o| o == "self" || o == ACCOUNT_ID);
    let mut out = Vec::new();
    if mine {
        for img in ec2.images.values() {
            if !ids.is_empty() && !ids.contains(&img.id) {
                continue;
            }
            let tags: Vec<(String, String)> = img
                .tags
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let mut keep = true;
            for f in &fs {
                if let Some(ok) = tag_filter(f, &tags) {
                    keep &= ok;
                    continue;
                }
                let field = match f.name.as_str() {
                    "name" => img.name.clone(),
                    "state" => img.state.to_owned(),
                    "image-id" => img.id.clone(),
                    "owner-id" => ACCOUNT_ID.to_owned(),
                    "description" => img.description.clone().unwrap_or_default(),
                    other => return Err(bad_filter(other)),
                };
                keep &= any_glob(&f.values, &field);
            }
            if keep {
                out.push(img);
            }
        }
    }
    let mut x = cx.writer();
    if out.is_empty() {
        x.empty("imagesSet");
    } else {
        x.start("imagesSet");
        for img in out {
            let tags: Vec<(String, String)> = img
                .tags
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            x.start("item");
            x.elem("imageId", &img.id);
            x.elem("imageLocation", format!("{ACCOUNT_ID}/{}", img.name));
            x.elem("imageState", img.state);
            x.elem("imageOwnerId", ACCOUNT_ID);
            x.elem("creationDate", iso_millis(img.created));
            x.elem("isPublic", "false");
            x.elem("architecture", "x86_64");
            x.elem("imageType", "machine");
            x.elem("name", &img.name);
            x.opt("description", img.description.as_deref());
            x.elem("rootDeviceType", "ebs");
            x.elem("rootDeviceName", "/dev/xvda");
            x.start("blockDeviceMapping");
            x.start("item");
            x.elem("deviceName", "/dev/xvda");
            x.start("ebs");
            x.elem("snapshotId", &img.snapshot_id);
            x.elem("volumeSize", 8);
            x.elem("deleteOnTermination", "true");
            x.elem("volumeType", "gp3");
            x.elem("encrypted", "false");
            x.end();
            x.end();
            x.end();
            x.elem("virtualizationType", "hvm");
            x.elem("hypervisor", "xen");
            write_tag_set(&mut x, &tags);
            if let Some(reason) = &img.reason {
                x.start("stateReason");
                x.elem("code", "Client.ImageCreationFailed");
                x.elem("message", reason);
                x.end();
            }
            x.end();
        }
        x.end();
    }
    Ok(x.finish_bare())
}

fn deregister_image(w: &mut World, cx: &Cx, p: &Params) -> R {
    let id = p
        .get_nonempty("ImageId")
        .ok_or_else(|| missing_parameter("ImageId"))?
        .to_owned();
    let ec2 = &mut w.region(cx.region).ec2;
    if ec2.images.remove(&id).is_none() {
        if !looks_like(&id, "ami-") {
            return Err(AwsError::new(
                400,
                "InvalidAMIID.Malformed",
                format!("Invalid id: \"{id}\" (expecting \"ami-...\")"),
            ));
        }
        if ec2.deregistered.contains(&id) {
            return Err(AwsError::new(
                400,
                "InvalidAMIID.Unavailable",
                format!("AMI '{id}' is pending deregistration or deregistered"),
            ));
        }
        return Err(image_not_found(&id));
    }
    ec2.deregistered.push(id);
    Ok(cx.returned_true())
}

// ---------------------------------------------------------------------------------------
// Control API
// ---------------------------------------------------------------------------------------

/// One instance for the control API: its EC2 and Auto Scaling states, tags and reboots.
pub fn instance_json(region_name: &str, r: &Region, rec: &Instance) -> Value {
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
pub fn state_json(r: &Region) -> Value {
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
pub fn control(
    sb: &Sandbox,
    method: &http::Method,
    route: &str,
    body: &[u8],
) -> Result<Value, (u16, String)> {
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
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Rules {
        Many { rules: Vec<ImageOutcome> },
        List(Vec<ImageOutcome>),
        One(ImageOutcome),
    }
    let not_found = || {
        (
            404,
            format!("no control endpoint {method} /_sandbox{route}; see docs/sandbox.md"),
        )
    };
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
                serde_json::from_slice(body)
                    .map_err(|e| (400, format!("invalid JSON body: {e}")))?
            };
            let region = n.region.unwrap_or_else(|| DEFAULT_REGION.into());
            if region.is_empty()
                || region.len() > 64
                || !region
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                return Err((400, format!("invalid region {region:?}")));
            }
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
        ("POST", "/ec2/image-outcomes") => {
            let rules = match serde_json::from_slice::<Rules>(body) {
                Ok(Rules::One(r)) => vec![r],
                Ok(Rules::List(r) | Rules::Many { rules: r }) => r,
                Err(e) => return Err((400, format!("invalid image outcome rule: {e}"))),
            };
            for (i, r) in rules.iter().enumerate() {
                r.validate().map_err(|e| (400, format!("rule {i}: {e}")))?;
            }
            let mut w = sb.lock();
            for r in rules {
                let region = r.region.clone().unwrap_or_else(|| DEFAULT_REGION.into());
                w.region(&region).ec2.image_outcomes.push(r);
            }
            Ok(json!({"rules": all_outcomes(&w)}))
        }
        ("GET", "/ec2/image-outcomes") => Ok(json!({"rules": all_outcomes(&sb.lock())})),
        ("DELETE", "/ec2/image-outcomes") => {
            let mut w = sb.lock();
            for r in w.regions.values_mut() {
                r.ec2.image_outcomes.clear();
            }
            Ok(json!({"rules": []}))
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

fn all_outcomes(w: &World) -> Vec<Value> {
    w.regions
        .iter()
        .flat_map(|(name, r)| {
            r.ec2.image_outcomes.iter().map(move |o| {
                let mut v = serde_json::to_value(o).unwrap_or(Value::Null);
                v["region"] = json!(name);
                v
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Wire;

    const REGION: &str = "us-east-1";
    const T0: Millis = 1_700_000_000_000;

    fn ctx(service: Service, op: &str) -> RequestCtx {
        RequestCtx {
            request_id: "rid".into(),
            region: REGION.into(),
            host: "h".into(),
            path: "/".into(),
            service,
            wire: if service == Service::Ec2 {
                Wire::Ec2Query
            } else {
                Wire::Query
            },
            op: op.into(),
        }
    }

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    fn ec2(w: &mut World, op: &str, pairs: &[(&str, &str)]) -> Result<String, AwsError> {
        let r = dispatch(w, &ctx(Service::Ec2, op), &params(pairs));
        let now = w.now;
        w.run_until(now);
        r
    }

    fn asg(w: &mut World, op: &str, pairs: &[(&str, &str)]) -> String {
        let r = autoscaling::ops::dispatch(w, &ctx(Service::AutoScaling, op), &params(pairs));
        let now = w.now;
        w.run_until(now);
        r.unwrap_or_else(|e| panic!("{op}: {e}"))
    }

    /// A group of `n` with a propagated and a non-propagated tag and, when `hooks`, a
    /// launch and a terminate hook of 300 s.
    fn group(w: &mut World, n: &str, hooks: bool) -> Vec<String> {
        let mut pairs = vec![
            ("AutoScalingGroupName", "web"),
            ("MinSize", "0"),
            ("MaxSize", "5"),
            ("DesiredCapacity", n),
            ("LaunchTemplate.LaunchTemplateName", "lt-web"),
            ("AvailabilityZones.member.1", "us-east-1a"),
            ("Tags.member.1.Key", "team"),
            ("Tags.member.1.Value", "blue"),
            ("Tags.member.1.PropagateAtLaunch", "true"),
            ("Tags.member.2.Key", "hidden"),
            ("Tags.member.2.Value", "x"),
            ("Tags.member.2.PropagateAtLaunch", "false"),
        ];
        if hooks {
            pairs.extend([
                (
                    "LifecycleHookSpecificationList.member.1.LifecycleHookName",
                    "up",
                ),
                (
                    "LifecycleHookSpecificationList.member.1.LifecycleTransition",
                    "autoscaling:EC2_INSTANCE_LAUNCHING",
                ),
                (
                    "LifecycleHookSpecificationList.member.1.HeartbeatTimeout",
                    "300",
                ),
                (
                    "LifecycleHookSpecificationList.member.2.LifecycleHookName",
                    "down",
                ),
                (
                    "LifecycleHookSpecificationList.member.2.LifecycleTransition",
                    "autoscaling:EC2_INSTANCE_TERMINATING",
                ),
                (
                    "LifecycleHookSpecificationList.member.2.HeartbeatTimeout",
                    "300",
                ),
            ]);
        }
        asg(w, "CreateAutoScalingGroup", &pairs);
        w.region(REGION)
            .autoscaling
            .members("web")
            .map(|i| i.id.clone())
            .collect()
    }

    #[test]
    fn group_instances_are_ec2_instances_with_propagated_tags() {
        let mut w = World::new(T0, Default::default());
        let ids = group(&mut w, "2", true);
        assert_eq!(ids.len(), 2);
        let out = ec2(&mut w, "DescribeInstances", &[]).unwrap();
        assert!(out.starts_with(
            "<DescribeInstancesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>rid</requestId><reservationSet><item>"
        ));
        for id in &ids {
            assert!(out.contains(&format!("<instanceId>{id}</instanceId>")));
        }
        // Pending:Wait is already `running` (§1.2 note 4).
        assert_eq!(out.matches("<name>running</name>").count(), 2);
        assert!(out.contains("<key>aws:autoscaling:groupName</key><value>web</value>"));
        assert!(out.contains("<key>team</key><value>blue</value>"));
        assert!(!out.contains("hidden"));
        let by_tag = ec2(
            &mut w,
            "DescribeInstances",
            &[
                ("Filter.1.Name", "tag:aws:autoscaling:groupName"),
                ("Filter.1.Value.1", "we*"),
                ("Filter.2.Name", "instance-state-name"),
                ("Filter.2.Value.1", "running"),
            ],
        )
        .unwrap();
        assert_eq!(by_tag.matches("<instanceId>").count(), 2);
        let none = ec2(
            &mut w,
            "DescribeInstances",
            &[("Filter.1.Name", "tag-key"), ("Filter.1.Value.1", "nope")],
        )
        .unwrap();
        assert!(none.contains("<reservationSet/>"));
        let err = ec2(
            &mut w,
            "DescribeInstances",
            &[("Filter.1.Name", "bogus"), ("Filter.1.Value.1", "x")],
        )
        .unwrap_err();
        assert_eq!(err.code, "InvalidParameterValue");
    }

    #[test]
    fn unknown_and_malformed_ids() {
        let mut w = World::new(T0, Default::default());
        let e = ec2(
            &mut w,
            "DescribeInstances",
            &[("InstanceId.1", "i-0123456789abcdef0")],
        )
        .unwrap_err();
        assert_eq!(e.code, "InvalidInstanceID.NotFound");
        assert_eq!(
            e.message,
            "The instance ID 'i-0123456789abcdef0' does not exist"
        );
        let e = ec2(
            &mut w,
            "TerminateInstances",
            &[
                ("InstanceId.1", "i-0123456789abcdef0"),
                ("InstanceId.2", "i-0123456789abcdef1"),
            ],
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            "The instance IDs 'i-0123456789abcdef0, i-0123456789abcdef1' do not exist"
        );
        let e = ec2(&mut w, "RebootInstances", &[("InstanceId.1", "web-1")]).unwrap_err();
        assert_eq!(e.code, "InvalidInstanceID.Malformed");
        assert_eq!(e.message, "Invalid id: \"web-1\"");
        let e = ec2(&mut w, "Nope", &[]).unwrap_err();
        assert_eq!(e.code, "InvalidAction");
    }

    #[test]
    fn terminate_group_instance_skips_hooks_and_is_replaced() {
        let mut w = World::new(T0, Default::default());
        let ids = group(&mut w, "1", true);
        let id = ids[0].clone();
        // Complete the launch action so the instance is InService.
        let token = w
            .region(REGION)
            .autoscaling
            .open_actions_of(&id)
            .pop()
            .unwrap();
        asg(
            &mut w,
            "CompleteLifecycleAction",
            &[
                ("AutoScalingGroupName", "web"),
                ("LifecycleHookName", "up"),
                ("LifecycleActionToken", &token),
                ("LifecycleActionResult", "CONTINUE"),
            ],
        );
        let out = ec2(&mut w, "TerminateInstances", &[("InstanceId.1", &id)]).unwrap();
        assert!(out.contains("<currentState><code>32</code><name>shutting-down</name></currentState><previousState><code>16</code><name>running</name></previousState>"));
        let s = &w.region(REGION).autoscaling;
        assert_eq!(s.instances[&id].state, S::Terminated);
        assert!(s.open_actions_of(&id).is_empty(), "no terminate hook");
        let members: Vec<String> = s.members("web").map(|i| i.id.clone()).collect();
        assert_eq!(members.len(), 1, "replaced");
        assert_ne!(members[0], id);
        assert_eq!(
            s.instances[&members[0]].state,
            S::PendingWait,
            "the replacement runs the launch hook"
        );
        let out = ec2(&mut w, "DescribeInstances", &[("InstanceId.1", &id)]).unwrap();
        assert!(out.contains("<name>terminated</name>"));
        // Terminating again reports terminated → terminated.
        let out = ec2(&mut w, "TerminateInstances", &[("InstanceId.1", &id)]).unwrap();
        assert!(out.contains("<currentState><code>48</code>"));
        // Terminated instances disappear after an hour.
        let later = w.now + TERMINATED_VISIBLE_MS + 7_200_000;
        w.run_until(later);
        let e = ec2(&mut w, "DescribeInstances", &[("InstanceId.1", &id)]).unwrap_err();
        assert_eq!(e.code, "InvalidInstanceID.NotFound");
    }

    #[test]
    fn detached_instance_keeps_running_without_group_tag() {
        let mut w = World::new(T0, Default::default());
        let id = group(&mut w, "1", false)[0].clone();
        asg(
            &mut w,
            "DetachInstances",
            &[
                ("AutoScalingGroupName", "web"),
                ("InstanceIds.member.1", &id),
                ("ShouldDecrementDesiredCapacity", "true"),
            ],
        );
        // Long after the engine forgot it, it still runs.
        let later = w.now + 3 * 3_600_000;
        w.run_until(later);
        autoscaling::engine::prune(&mut w, REGION);
        let out = ec2(&mut w, "DescribeInstances", &[("InstanceId.1", &id)]).unwrap();
        assert!(out.contains("<name>running</name>"), "{out}");
        assert!(!out.contains("aws:autoscaling:groupName"));
        assert!(
            out.contains("<key>team</key>"),
            "other propagated tags stay"
        );
    }

    #[test]
    fn standalone_instances_and_tags() {
        let mut w = World::new(T0, Default::default());
        let out = ec2(
            &mut w,
            "RunInstances",
            &[
                ("ImageId", "ami-12345678"),
                ("MinCount", "2"),
                ("MaxCount", "2"),
                ("InstanceType", "t3.small"),
                ("Placement.AvailabilityZone", "us-east-1c"),
                ("TagSpecification.1.ResourceType", "instance"),
                ("TagSpecification.1.Tag.1.Key", "Name"),
                ("TagSpecification.1.Tag.1.Value", "box"),
            ],
        )
        .unwrap();
        assert!(out.contains("<name>pending</name>"));
        assert_eq!(out.matches("<instanceId>").count(), 2);
        let ids: Vec<String> = w.region(REGION).ec2.instances.keys().cloned().collect();
        let a = ids[0].clone();
        let out = ec2(&mut w, "DescribeInstances", &[("InstanceId.1", &a)]).unwrap();
        assert!(out.contains("<name>running</name>"));
        assert!(out.contains("<availabilityZone>us-east-1c</availabilityZone>"));
        assert!(out.contains("<key>Name</key><value>box</value>"));
        ec2(
            &mut w,
            "CreateTags",
            &[
                ("ResourceId.1", &a),
                ("Tag.1.Key", "role"),
                ("Tag.1.Value", "db"),
            ],
        )
        .unwrap();
        let e = ec2(
            &mut w,
            "CreateTags",
            &[
                ("ResourceId.1", &a),
                ("Tag.1.Key", "aws:x"),
                ("Tag.1.Value", "1"),
            ],
        )
        .unwrap_err();
        assert_eq!(e.code, "InvalidParameterValue");
        let tags = ec2(
            &mut w,
            "DescribeTags",
            &[
                ("Filter.1.Name", "resource-id"),
                ("Filter.1.Value.1", &a),
                ("Filter.2.Name", "key"),
                ("Filter.2.Value.1", "role"),
            ],
        )
        .unwrap();
        assert!(tags.contains(&format!(
            "<item><resourceId>{a}</resourceId><resourceType>instance</resourceType><key>role</key><value>db</value></item>"
        )));
        // A value that does not match keeps the tag; no value removes it.
        ec2(
            &mut w,
            "DeleteTags",
            &[
                ("ResourceId.1", &a),
                ("Tag.1.Key", "role"),
                ("Tag.1.Value", "web"),
            ],
        )
        .unwrap();
        assert!(w.region(REGION).ec2.instances[&a].tags.contains_key("role"));
        ec2(
            &mut w,
            "DeleteTags",
            &[("ResourceId.1", &a), ("Tag.1.Key", "role")],
        )
        .unwrap();
        assert!(!w.region(REGION).ec2.instances[&a].tags.contains_key("role"));
        let e = ec2(
            &mut w,
            "RunInstances",
            &[("ImageId", "ami-1"), ("MinCount", "1")],
        )
        .unwrap_err();
        assert_eq!(e.code, "MissingParameter");
        ec2(&mut w, "RebootInstances", &[("InstanceId.1", &a)]).unwrap();
        assert_eq!(w.region(REGION).ec2.instances[&a].reboots, vec![T0]);
    }

    #[test]
    fn images_become_available_or_failed_on_virtual_time() {
        let mut w = World::new(T0, Default::default());
        let id = group(&mut w, "1", false)[0].clone();
        let out = ec2(
            &mut w,
            "CreateImage",
            &[
                ("InstanceId", &id),
                ("Name", "web-backup-1"),
                ("TagSpecification.1.ResourceType", "image"),
                ("TagSpecification.1.Tag.1.Key", "k"),
                ("TagSpecification.1.Tag.1.Value", "v"),
                ("TagSpecification.2.ResourceType", "snapshot"),
                ("TagSpecification.2.Tag.1.Key", "s"),
                ("TagSpecification.2.Tag.1.Value", "t"),
            ],
        )
        .unwrap();
        let ami = out
            .split("<imageId>")
            .nth(1)
            .and_then(|s| s.split('<').next())
            .unwrap()
            .to_owned();
        assert_eq!(
            w.region(REGION).ec2.instances[&id].reboots.len(),
            1,
            "CreateImage without NoReboot reboots"
        );
        let d = ec2(&mut w, "DescribeImages", &[("ImageId.1", &ami)]).unwrap();
        assert!(d.contains("<imageState>pending</imageState>"));
        assert!(d.contains("<key>k</key><value>v</value>"));
        let e = ec2(
            &mut w,
            "CreateImage",
            &[
                ("InstanceId", &id),
                ("Name", "web-backup-1"),
                ("NoReboot", "true"),
            ],
        )
        .unwrap_err();
        assert_eq!(e.code, "InvalidAMIName.Duplicate");
        assert_eq!(
            e.message,
            format!("AMI name web-backup-1 is already in use by AMI {ami}")
        );
        w.run_until(T0 + 119_000);
        let d = ec2(&mut w, "DescribeImages", &[("Owner.1", "self")]).unwrap();
        assert!(d.contains("<imageState>pending</imageState>"));
        w.run_until(T0 + 120_000);
        let d = ec2(
            &mut w,
            "DescribeImages",
            &[
                ("Filter.1.Name", "state"),
                ("Filter.1.Value.1", "available"),
            ],
        )
        .unwrap();
        assert!(d.contains(&ami));
        let snaps = ec2(
            &mut w,
            "DescribeTags",
            &[
                ("Filter.1.Name", "resource-type"),
                ("Filter.1.Value.1", "snapshot"),
            ],
        )
        .unwrap();
        assert!(snaps.contains("<key>s</key><value>t</value>"));

        // A scripted failure.
        w.region(REGION).ec2.image_outcomes.push(ImageOutcome {
            instance_id: None,
            name_contains: Some("doomed".into()),
            state: "failed".into(),
            delay_seconds: Some(10.0),
            region: None,
        });
        let out = ec2(
            &mut w,
            "CreateImage",
            &[
                ("InstanceId", &id),
                ("Name", "doomed-1"),
                ("NoReboot", "true"),
            ],
        )
        .unwrap();
        assert!(out.contains("<imageId>ami-"));
        assert_eq!(w.region(REGION).ec2.instances[&id].reboots.len(), 1);
        let now = w.now;
        w.run_until(now + 10_000);
        let d = ec2(
            &mut w,
            "DescribeImages",
            &[("Filter.1.Name", "name"), ("Filter.1.Value.1", "doomed-*")],
        )
        .unwrap();
        assert!(d.contains("<imageState>failed</imageState>"), "{d}");
        assert!(d.contains("<stateReason>"));

        ec2(&mut w, "DeregisterImage", &[("ImageId", &ami)]).unwrap();
        let d = ec2(&mut w, "DescribeImages", &[("ImageId.1", &ami)]).unwrap();
        assert!(d.contains("<imagesSet/>"));
        let e = ec2(
            &mut w,
            "DescribeImages",
            &[("ImageId.1", "ami-0123456789abcdef0")],
        )
        .unwrap_err();
        assert_eq!(e.code, "InvalidAMIID.NotFound");
        let e = ec2(&mut w, "CreateImage", &[("InstanceId", &id), ("Name", "x")]).unwrap_err();
        assert_eq!(e.code, "InvalidAMIName.Malformed");
    }

    #[test]
    fn target_lifecycle_states() {
        assert_eq!(target_lifecycle_state(S::PendingWait), "InService");
        assert_eq!(target_lifecycle_state(S::InService), "InService");
        assert_eq!(target_lifecycle_state(S::TerminatingWait), "Terminated");
        assert_eq!(target_lifecycle_state(S::Standby), "Standby");
        assert_eq!(target_lifecycle_state(S::Detached), "Detached");
        assert_eq!(ec2_state_of(S::PendingWait), Ec2State::Running);
        assert_eq!(ec2_state_of(S::Terminated), Ec2State::Terminated);
    }

    #[test]
    fn globs() {
        assert!(glob("web-*", "web-1"));
        assert!(glob("*", ""));
        assert!(glob("a?c", "abc"));
        assert!(!glob("a?c", "ac"));
        assert!(glob("*b*", "abc"));
        assert!(!glob("web", "web-1"));
    }
}
