//! Configuration: one TOML file, parsed then validated into typed values.
//!
//! `load(path)` returns a [`Config`] or every [`Problem`] found, each with file, line and
//! column. Syntax and type errors come from `toml` with their spans; semantic checks (step
//! types, durations, globs, URLs, templates, duplicate names ...) keep spans through
//! `toml::Spanned`. See `docs/configuration.md` for every option.
//!
//! ```toml
//! [source]
//! queue_url = "https://sqs.us-east-1.amazonaws.com/000000000000/lifecycle"
//!
//! [[pipeline]]
//! name = "deregister"
//! match = { groups = ["web-*"], transitions = ["terminating"] }
//!
//! [[pipeline.step]]
//! type = "http"
//! method = "DELETE"
//! url = "http://registry.internal/instances/{{ instance_id | urlencode }}"
//! ```

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lifehook_model::{LifecycleEvent, LifecycleResult, LifecycleTransition};
use serde::Deserialize;
use toml::Spanned;
use toml::de::DeValue;

use crate::template::Template;

/// SQS long-poll wait (seconds); 20 is the SQS maximum and the cheapest.
pub const DEFAULT_WAIT_TIME_SECONDS: u32 = 20;
/// Messages per ReceiveMessage call (SQS maximum 10).
pub const DEFAULT_MAX_MESSAGES: u32 = 10;
/// Lifecycle actions handled at once by one process.
pub const DEFAULT_CONCURRENCY: u32 = 16;
/// How long a received message stays invisible before it is extended again.
pub const DEFAULT_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(120);
/// Heartbeat after this fraction of the hook's HeartbeatTimeout.
pub const DEFAULT_HEARTBEAT_FRACTION: f64 = 0.5;
/// Never heartbeat more often than this.
pub const DEFAULT_MIN_INTERVAL: Duration = Duration::from_secs(10);
/// Stop steps and apply `on_deadline` this long before the global deadline.
pub const DEFAULT_DEADLINE_MARGIN: Duration = Duration::from_secs(60);
/// A step's timeout when none is given.
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(300);
/// First retry delay; doubles each attempt (with jitter) up to [`MAX_BACKOFF`].
pub const DEFAULT_BACKOFF: Duration = Duration::from_secs(1);
/// Longest delay between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Retries of `exec` and `probe` steps when none is given.
pub const DEFAULT_RETRIES_LOCAL: u32 = 0;
/// Retries of `http` and `notify` steps when none is given.
pub const DEFAULT_RETRIES_NETWORK: u32 = 3;
/// Captured bytes of each of stdout and stderr of an `exec` step.
pub const DEFAULT_OUTPUT_LIMIT: usize = 64 * 1024;
/// How often a `probe` step checks.
pub const DEFAULT_PROBE_INTERVAL: Duration = Duration::from_secs(5);
/// The longest a step may be given: the global timeout cap of a lifecycle action.
pub const MAX_STEP_TIMEOUT: Duration = Duration::from_secs(172_800);
/// SQS caps visibility at 12 hours.
pub const MAX_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(43_200);
/// The largest `max_concurrency` accepted.
pub const MAX_CONCURRENCY: u32 = 4096;

/// Environment variables that override the file (applied by [`load`]).
pub const ENV_QUEUE_URL: &str = "LIFEHOOK_QUEUE_URL";
pub const ENV_CONCURRENCY: &str = "LIFEHOOK_CONCURRENCY";
pub const ENV_VISIBILITY_TIMEOUT: &str = "LIFEHOOK_VISIBILITY_TIMEOUT";
pub const ENV_IMDS: &str = "LIFEHOOK_IMDS";

// ---------------------------------------------------------------------------------------
// Typed configuration
// ---------------------------------------------------------------------------------------

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub source: Source,
    pub keepalive: Keepalive,
    /// `[agent]`: settings of `lifehook agent` only.
    pub agent: Agent,
    /// `[setup]`: what `lifehook setup` provisions; `None` without the section.
    pub setup: Option<Setup>,
    /// In file order; [`Config::route`] picks the first that matches.
    pub pipelines: Vec<Pipeline>,
}

/// Where lifecycle actions come from.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// The SQS queue the controller or agent reads; `None` for the Lambda or IMDS mode.
    pub queue_url: Option<String>,
    /// Agent only: the SNS topic the hooks notify. The agent subscribes a queue of its own
    /// with a filter on its instance id, so it receives only its own instance's actions.
    pub topic_arn: Option<String>,
    /// Queue-less agent mode: watch IMDS `autoscaling/target-lifecycle-state`.
    pub imds: bool,
    pub wait_time_seconds: u32,
    pub max_messages: u32,
    pub concurrency: u32,
    pub visibility_timeout: Duration,
}

impl Default for Source {
    fn default() -> Self {
        Source {
            queue_url: None,
            topic_arn: None,
            imds: false,
            wait_time_seconds: DEFAULT_WAIT_TIME_SECONDS,
            max_messages: DEFAULT_MAX_MESSAGES,
            concurrency: DEFAULT_CONCURRENCY,
            visibility_timeout: DEFAULT_VISIBILITY_TIMEOUT,
        }
    }
}

/// `[agent]`: how `lifehook agent` runs on an instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Agent {
    /// Where in-flight work is persisted (survives reboots and crashes).
    pub state_dir: std::path::PathBuf,
    /// The command that reboots the instance (argv, no shell).
    pub reboot_command: Vec<String>,
    /// How often the queue-less mode reads `autoscaling/target-lifecycle-state`.
    pub imds_poll_interval: Duration,
    /// The group, when it should not be discovered (tag or DescribeAutoScalingInstances).
    pub group: Option<String>,
    /// Hooks to create on the group at start when missing (`[[agent.hook]]`).
    pub hooks: Vec<HookSpec>,
}

/// The default state directory of the agent.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/lifehook";
/// The default interval of the queue-less mode (the AWS tutorial polls every 5 s).
pub const DEFAULT_IMDS_POLL_INTERVAL: Duration = Duration::from_secs(5);

impl Default for Agent {
    fn default() -> Self {
        Agent {
            state_dir: DEFAULT_STATE_DIR.into(),
            reboot_command: vec!["systemctl".into(), "reboot".into()],
            imds_poll_interval: DEFAULT_IMDS_POLL_INTERVAL,
            group: None,
            hooks: Vec::new(),
        }
    }
}

/// A lifecycle hook the agent makes sure exists (spec §2.1).
#[derive(Debug, Clone, PartialEq)]
pub struct HookSpec {
    pub name: String,
    pub transition: LifecycleTransition,
    pub heartbeat_timeout: Duration,
    pub default_result: LifecycleResult,
    pub notification_target_arn: Option<String>,
    pub role_arn: Option<String>,
    pub notification_metadata: Option<String>,
}

/// `[setup]`: the plumbing `lifehook setup` creates or updates for the handlers.
#[derive(Debug, Clone, PartialEq)]
pub struct Setup {
    /// The groups that get the hooks (exact names: setup never guesses from globs).
    pub groups: Vec<String>,
    /// How the hooks' lifecycle actions reach the handlers.
    pub delivery: Delivery,
    /// The role Auto Scaling assumes to publish to the queue or topic (`direct` and `sns`
    /// delivery; spec §2.1). Given, never created.
    pub role_arn: Option<String>,
    /// Give the queue a dead-letter queue (`<queue>-dlq`).
    pub dead_letter_queue: bool,
    /// Receives before a message moves to the dead-letter queue.
    pub max_receive_count: u32,
    /// The hooks to put on every group; their notification target follows `delivery`.
    pub hooks: Vec<HookSpec>,
}

/// How lifecycle actions travel from the hooks to the handlers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Hooks without a target; an EventBridge rule sends their events to the queue.
    EventBridge,
    /// Hooks notify an SNS topic (`source.topic_arn`, or `<queue>-lifecycle`), to which the
    /// queue is subscribed.
    Sns,
    /// Hooks notify the queue directly.
    Direct,
}

impl Delivery {
    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::EventBridge => "eventbridge",
            Delivery::Sns => "sns",
            Delivery::Direct => "direct",
        }
    }
}

/// Default `setup.max_receive_count`.
pub const DEFAULT_MAX_RECEIVE_COUNT: u32 = 5;

/// Heartbeat planning parameters (see [`crate::keepalive`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Keepalive {
    pub heartbeat_fraction: f64,
    pub min_interval: Duration,
    pub deadline_margin: Duration,
}

impl Default for Keepalive {
    fn default() -> Self {
        Keepalive {
            heartbeat_fraction: DEFAULT_HEARTBEAT_FRACTION,
            min_interval: DEFAULT_MIN_INTERVAL,
            deadline_margin: DEFAULT_DEADLINE_MARGIN,
        }
    }
}

/// A named, ordered list of steps for the actions its [`Match`] selects.
#[derive(Debug, Clone)]
pub struct Pipeline {
    pub name: String,
    pub matcher: Match,
    pub steps: Vec<Step>,
    pub policy: Policy,
}

/// Which actions a pipeline handles. Empty lists match everything.
#[derive(Debug, Clone, Default)]
pub struct Match {
    pub groups: Vec<glob::Pattern>,
    pub hooks: Vec<glob::Pattern>,
    pub transitions: Vec<LifecycleTransition>,
    /// Every key must be a tag of the instance (or group) with a value matching the glob.
    pub tags: BTreeMap<String, glob::Pattern>,
}

impl Match {
    /// Whether this matcher selects `event` on an instance with `tags`.
    pub fn matches(&self, event: &LifecycleEvent, tags: &BTreeMap<String, String>) -> bool {
        let any =
            |pats: &[glob::Pattern], s: &str| pats.is_empty() || pats.iter().any(|p| p.matches(s));
        any(&self.groups, &event.group)
            && any(&self.hooks, &event.hook)
            && (self.transitions.is_empty() || self.transitions.contains(&event.transition))
            && self
                .tags
                .iter()
                .all(|(k, p)| tags.get(k).is_some_and(|v| p.matches(v)))
    }
}

/// What the outcome of a pipeline means for the lifecycle action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub on_success: LifecycleResult,
    pub on_failure: LifecycleResult,
    pub on_deadline: DeadlinePolicy,
    /// Overrides `[keepalive] deadline_margin` for this pipeline.
    pub deadline_margin: Option<Duration>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            on_success: LifecycleResult::Continue,
            on_failure: LifecycleResult::Abandon,
            on_deadline: DeadlinePolicy::Hold,
            deadline_margin: None,
        }
    }
}

/// What to do when the global deadline approaches with steps still running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadlinePolicy {
    Complete(LifecycleResult),
    /// Keep heartbeating to the end and let the hook's DefaultResult apply.
    Hold,
}

/// One step of a pipeline.
#[derive(Debug, Clone)]
pub struct Step {
    pub name: String,
    pub timeout: Duration,
    pub retries: u32,
    pub backoff: Duration,
    pub kind: StepKind,
}

/// What a step does.
#[derive(Debug, Clone)]
pub enum StepKind {
    Exec(ExecStep),
    Http(HttpStep),
    Probe(ProbeStep),
    Notify(NotifyStep),
    /// Write a file atomically (local, no AWS).
    File(FileStep),
    /// Wait on the action's clock (local, no AWS).
    Wait(WaitStep),
    // The step types below call AWS APIs: they run in `lifehook-aws` (see
    // `step::ExternalSteps`).
    S3Fetch(S3FetchStep),
    S3Upload(S3UploadStep),
    SsmCommand(SsmCommandStep),
    EcsDrain(EcsDrainStep),
    Signal(SignalStep),
    Tag(TagStep),
    /// EC2 CreateImage of the action's instance, waited until `available`.
    Image(ImageStep),
    /// ELBv2 register (launch) or deregister (termination), waited until healthy or drained.
    TargetGroups(TargetGroupsStep),
}

impl StepKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            StepKind::Exec(_) => "exec",
            StepKind::Http(_) => "http",
            StepKind::Probe(_) => "probe",
            StepKind::Notify(_) => "notify",
            StepKind::File(_) => "file",
            StepKind::Wait(_) => "wait",
            StepKind::S3Fetch(_) => "s3-fetch",
            StepKind::S3Upload(_) => "s3-upload",
            StepKind::SsmCommand(_) => "ssm-command",
            StepKind::EcsDrain(_) => "ecs-drain",
            StepKind::Signal(_) => "signal",
            StepKind::Tag(_) => "tag",
            StepKind::Image(_) => "image",
            StepKind::TargetGroups(_) => "target-groups",
        }
    }

    /// Whether the step calls AWS APIs (and so needs `step::ExternalSteps`).
    pub fn is_aws(&self) -> bool {
        matches!(
            self,
            StepKind::S3Fetch(_)
                | StepKind::S3Upload(_)
                | StepKind::SsmCommand(_)
                | StepKind::EcsDrain(_)
                | StepKind::Signal(_)
                | StepKind::Tag(_)
                | StepKind::Image(_)
                | StepKind::TargetGroups(_)
        )
    }

    /// Every template of the step.
    pub fn templates(&self) -> Vec<&Template> {
        let mut out: Vec<&Template> = Vec::new();
        match self {
            StepKind::Exec(e) => {
                out.extend(&e.command);
                out.extend(e.env.values());
            }
            StepKind::Http(h) => {
                out.push(&h.url);
                out.extend(h.headers.values());
                out.extend(&h.body);
            }
            StepKind::Probe(p) => match &p.check {
                ProbeCheck::Http { url, headers, .. } => {
                    out.push(url);
                    out.extend(headers.values());
                }
                ProbeCheck::Exec { command, env, .. } => {
                    out.extend(command);
                    out.extend(env.values());
                }
            },
            StepKind::Notify(n) => {
                out.push(&n.url);
                out.push(&n.message);
                out.extend(n.headers.values());
            }
            StepKind::File(f) => {
                out.push(&f.path);
                out.push(&f.content);
            }
            StepKind::Wait(_) => {}
            StepKind::S3Fetch(f) => {
                out.extend([&f.bucket, &f.key, &f.path]);
            }
            StepKind::S3Upload(u) => {
                out.extend([&u.bucket, &u.key]);
                out.extend(&u.files);
            }
            StepKind::SsmCommand(c) => {
                out.extend(&c.commands);
                out.extend(c.env.values());
                out.extend(&c.working_dir);
            }
            StepKind::EcsDrain(d) => out.extend(&d.cluster),
            StepKind::Signal(g) => {
                out.extend([&g.stack, &g.resource, &g.unique_id]);
            }
            StepKind::Tag(t) => out.extend(t.tags.values()),
            StepKind::Image(i) => {
                out.push(&i.image_name);
                out.extend(&i.description);
                out.extend(i.tags.values());
            }
            StepKind::TargetGroups(_) => {}
        }
        out
    }
}

/// `wait`: wait `duration` on the action's clock, then succeed ("give connections 30 s to
/// drain"). With the default `duration` of 0 it is a no-op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitStep {
    pub duration: Duration,
}

/// `file`: write `content` to `path` atomically (a temporary file in the same directory,
/// then a rename), with `mode` (default 0644).
#[derive(Debug, Clone)]
pub struct FileStep {
    pub path: Template,
    pub content: Template,
    pub mode: u32,
}

/// `s3-fetch`: download `s3://bucket/key` to `path`.
#[derive(Debug, Clone)]
pub struct S3FetchStep {
    pub bucket: Template,
    pub key: Template,
    pub path: Template,
    /// Unix permissions of the file; `None`: 0644 for a new file (an existing file keeps
    /// its mode).
    pub mode: Option<u32>,
    /// Expected SHA-256 of the object, lowercase hex; a mismatch is a fatal failure.
    pub sha256: Option<String>,
}

/// `s3-upload`: files (paths or globs) to `s3://bucket/key`, the key rendered per file
/// with `{{ file_name }}`.
#[derive(Debug, Clone)]
pub struct S3UploadStep {
    pub bucket: Template,
    pub key: Template,
    pub files: Vec<Template>,
    pub if_missing: IfMissing,
}

/// What an `s3-upload` does when a path or glob matches no file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfMissing {
    /// Nothing to upload is fine.
    Ok,
    /// A fatal failure naming the pattern.
    Fail,
}

/// `ssm-command`: `AWS-RunShellScript` on the action's instance, polled until it ends.
#[derive(Debug, Clone)]
pub struct SsmCommandStep {
    /// Script lines; every substituted value is inserted shell-quoted.
    pub commands: Vec<Template>,
    /// Exported (shell-quoted) before the script runs.
    pub env: BTreeMap<String, Template>,
    pub working_dir: Option<Template>,
    /// Time between two GetCommandInvocation calls.
    pub interval: Duration,
}

/// `ecs-drain`: set the instance's container instance DRAINING and wait until no task
/// runs on it, stopping the tasks no REPLICA service moves away.
#[derive(Debug, Clone)]
pub struct EcsDrainStep {
    /// `None`: the cluster is discovered (ListClusters, then the instance in each).
    pub cluster: Option<Template>,
    /// Time between two looks at the instance's tasks.
    pub interval: Duration,
    /// Stop standalone and daemon tasks once only they remain (default true); `false`
    /// waits for something else to stop them.
    pub stop_tasks: bool,
}

/// `signal`: CloudFormation `SignalResource`.
#[derive(Debug, Clone)]
pub struct SignalStep {
    pub stack: Template,
    pub resource: Template,
    pub unique_id: Template,
    pub status: SignalStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalStatus {
    Success,
    Failure,
}

impl SignalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SignalStatus::Success => "SUCCESS",
            SignalStatus::Failure => "FAILURE",
        }
    }
}

/// `tag`: EC2 `CreateTags` on the action's instance.
#[derive(Debug, Clone)]
pub struct TagStep {
    pub tags: BTreeMap<String, Template>,
}

/// `image`: EC2 `CreateImage` of the action's instance, then DescribeImages every
/// `interval` until the image is `available` (see `docs/configuration.md`).
#[derive(Debug, Clone)]
pub struct ImageStep {
    /// The AMI name; characters EC2 does not allow in a name become `-`.
    pub image_name: Template,
    pub description: Option<Template>,
    /// Added to the tags lifehook always sets ([`IMAGE_TAG_INSTANCE`], [`IMAGE_TAG_GROUP`],
    /// [`IMAGE_TAG_TOKEN`]).
    pub tags: BTreeMap<String, Template>,
    /// `NoReboot` of CreateImage (default true: a terminating instance is not rebooted).
    pub no_reboot: bool,
    pub interval: Duration,
    /// `None`: always create the image.
    pub only_if: Option<ImageCondition>,
    /// With `only_if = "unexpected-scale-in"`: this tag on the group or the instance marks
    /// the termination as expected (any value but `false`).
    pub marker_tag: String,
}

/// When an `image` step creates its image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageCondition {
    /// Only for a termination that is not part of a deployment: no instance refresh in
    /// progress, the group not being deleted or emptied by CloudFormation, no marker tag.
    UnexpectedScaleIn,
}

impl ImageCondition {
    pub fn as_str(self) -> &'static str {
        match self {
            ImageCondition::UnexpectedScaleIn => "unexpected-scale-in",
        }
    }
}

/// `target-groups`: on launch, register the instance in the target groups and wait until
/// it is healthy in all of them; on termination, deregister it and wait out the draining.
#[derive(Debug, Clone)]
pub struct TargetGroupsStep {
    /// Empty: the group's `TargetGroupARNs` (DescribeAutoScalingGroups).
    pub target_group_arns: Vec<String>,
    /// Registration port; `None`: each target group's port.
    pub port: Option<u16>,
    /// Time between two DescribeTargetHealth calls.
    pub interval: Duration,
}

/// The default AMI name of an `image` step.
pub const DEFAULT_IMAGE_NAME: &str = "{{ group }}-{{ instance_id }}-{{ date }}";
/// How often `image` polls DescribeImages.
pub const DEFAULT_IMAGE_INTERVAL: Duration = Duration::from_secs(15);
/// An `image` step's timeout when none is given: creating an AMI takes minutes.
pub const DEFAULT_IMAGE_TIMEOUT: Duration = Duration::from_secs(3600);
/// The tag that marks a termination as expected (`only_if = "unexpected-scale-in"`).
pub const DEFAULT_MARKER_TAG: &str = "lifehook:expected-termination";
/// Tags every image of an `image` step carries.
pub const IMAGE_TAG_INSTANCE: &str = "lifehook:instance-id";
pub const IMAGE_TAG_GROUP: &str = "lifehook:group";
/// The action's token: how a second attempt finds the image of the first.
pub const IMAGE_TAG_TOKEN: &str = "lifehook:lifecycle-action-token";
/// How often `target-groups` polls DescribeTargetHealth.
pub const DEFAULT_TARGET_GROUPS_INTERVAL: Duration = Duration::from_secs(5);
/// A `target-groups` step's timeout when none is given: the default health check takes
/// 150 s to call a target healthy, the default deregistration delay is 300 s.
pub const DEFAULT_TARGET_GROUPS_TIMEOUT: Duration = Duration::from_secs(900);

/// How often `ssm-command` polls GetCommandInvocation.
pub const DEFAULT_SSM_INTERVAL: Duration = Duration::from_secs(2);
/// How often `ecs-drain` looks at the instance's tasks.
pub const DEFAULT_ECS_INTERVAL: Duration = Duration::from_secs(10);
/// Permissions of a file written by `file` (and of a new file fetched by `s3-fetch`).
pub const DEFAULT_FILE_MODE: u32 = 0o644;

/// Run a program: `command` is argv, never a shell string.
#[derive(Debug, Clone)]
pub struct ExecStep {
    pub command: Vec<Template>,
    pub env: BTreeMap<String, Template>,
    pub working_dir: Option<PathBuf>,
    pub output_limit: usize,
    pub reboot_exit_code: Option<i32>,
}

/// Call an HTTP endpoint.
#[derive(Debug, Clone)]
pub struct HttpStep {
    pub method: reqwest::Method,
    pub url: Template,
    pub headers: BTreeMap<String, Template>,
    pub body: Option<Template>,
    pub expect_status: StatusSet,
}

/// Repeat a check every `interval` until it succeeds or the step's time runs out.
#[derive(Debug, Clone)]
pub struct ProbeStep {
    pub interval: Duration,
    pub check: ProbeCheck,
}

#[derive(Debug, Clone)]
pub enum ProbeCheck {
    /// `GET url` with the expected status.
    Http {
        url: Template,
        headers: BTreeMap<String, Template>,
        expect_status: StatusSet,
    },
    /// A program that exits 0 when ready.
    Exec {
        command: Vec<Template>,
        env: BTreeMap<String, Template>,
        working_dir: Option<PathBuf>,
    },
}

/// POST a JSON message to a webhook.
#[derive(Debug, Clone)]
pub struct NotifyStep {
    pub url: Template,
    pub format: NotifyFormat,
    pub message: Template,
    pub headers: BTreeMap<String, Template>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyFormat {
    /// `{"text": message, "group": ..., "hook": ..., "instance_id": ..., "transition": ...,
    /// "pipeline": ...}`
    Json,
    /// `{"text": message}`, which Slack incoming webhooks (and Mattermost, Teams
    /// connectors for Slack) accept.
    Slack,
}

/// Accepted HTTP status codes: inclusive ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSet(pub Vec<(u16, u16)>);

impl Default for StatusSet {
    fn default() -> Self {
        StatusSet(vec![(200, 299)])
    }
}

impl StatusSet {
    pub fn contains(&self, code: u16) -> bool {
        self.0.iter().any(|&(lo, hi)| (lo..=hi).contains(&code))
    }

    fn parse_one(s: &str) -> Option<(u16, u16)> {
        let s = s.trim();
        if let Some(d) = s.strip_suffix("xx").or_else(|| s.strip_suffix("XX")) {
            let d: u16 = d.parse().ok().filter(|d| (1..=5).contains(d))?;
            return Some((d * 100, d * 100 + 99));
        }
        if let Some((a, b)) = s.split_once('-') {
            let a: u16 = a.trim().parse().ok()?;
            let b: u16 = b.trim().parse().ok()?;
            return ((100..=599).contains(&a) && (a..=599).contains(&b)).then_some((a, b));
        }
        let c: u16 = s.parse().ok()?;
        (100..=599).contains(&c).then_some((c, c))
    }
}

impl fmt::Display for StatusSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|&(a, b)| {
                if a == b {
                    a.to_string()
                } else {
                    format!("{a}-{b}")
                }
            })
            .collect();
        f.write_str(&parts.join(", "))
    }
}

impl Config {
    /// The pipeline for an action: the **first** pipeline, in file order, whose `match`
    /// selects it. `tags` are the instance's tags (empty when unknown; a pipeline that
    /// matches on tags then does not match). `None`: no pipeline handles the action, and
    /// the caller leaves it to the hook's DefaultResult (or its own fallback).
    pub fn route(
        &self,
        event: &LifecycleEvent,
        tags: &BTreeMap<String, String>,
    ) -> Option<&Pipeline> {
        self.pipelines
            .iter()
            .find(|p| p.matcher.matches(event, tags))
    }

    /// Whether routing or any step's templates look at tags (so the runtime needs to
    /// fetch them).
    pub fn needs_tags(&self) -> bool {
        self.pipelines.iter().any(|p| {
            !p.matcher.tags.is_empty()
                || p.steps.iter().any(|s| {
                    s.kind.templates().iter().any(|t| {
                        t.variables()
                            .any(|v| matches!(v, crate::template::Var::Tag(_)))
                    })
                })
        })
    }

    /// Parses and validates TOML text; `file` names it in problems. No environment
    /// overrides are applied.
    pub fn from_toml(text: &str, file: &Path) -> Result<Config, Vec<Problem>> {
        let mut cx = Cx {
            file: file.to_path_buf(),
            text,
            problems: Vec::new(),
        };
        let Some(raw) = cx.parse() else {
            return Err(cx.problems);
        };
        let cfg = cx.validate(raw);
        // File order reads best; problems without a position go last.
        cx.problems
            .sort_by_key(|p| (p.line.is_none(), p.line, p.col));
        if cx.problems.is_empty() {
            Ok(cfg)
        } else {
            Err(cx.problems)
        }
    }
}

/// Reads and validates `path`, then applies the environment overrides
/// (`LIFEHOOK_QUEUE_URL`, `LIFEHOOK_CONCURRENCY`, `LIFEHOOK_VISIBILITY_TIMEOUT`,
/// `LIFEHOOK_IMDS`).
pub fn load(path: &Path) -> Result<Config, Vec<Problem>> {
    load_with_env(path, |k| std::env::var(k).ok())
}

/// [`load`] with an injectable environment.
pub fn load_with_env(
    path: &Path,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Config, Vec<Problem>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![Problem {
            file: path.display().to_string(),
            line: None,
            col: None,
            message: format!("cannot read the configuration: {e}"),
        }]
    })?;
    let mut cfg = Config::from_toml(&text, path)?;
    apply_env(&mut cfg, env)?;
    Ok(cfg)
}

fn apply_env(cfg: &mut Config, env: impl Fn(&str) -> Option<String>) -> Result<(), Vec<Problem>> {
    let mut problems = Vec::new();
    let mut bad = |var: &str, message: String| {
        problems.push(Problem {
            file: format!("environment variable {var}"),
            line: None,
            col: None,
            message,
        })
    };
    if let Some(v) = env(ENV_QUEUE_URL).filter(|v| !v.is_empty()) {
        match reqwest::Url::parse(&v) {
            Ok(_) => cfg.source.queue_url = Some(v),
            Err(e) => bad(ENV_QUEUE_URL, format!("`{v}` is not a URL: {e}")),
        }
    }
    if let Some(v) = env(ENV_CONCURRENCY).filter(|v| !v.is_empty()) {
        match v.trim().parse::<u32>() {
            Ok(n) if (1..=MAX_CONCURRENCY).contains(&n) => cfg.source.concurrency = n,
            _ => bad(
                ENV_CONCURRENCY,
                format!("`{v}` is not a number between 1 and {MAX_CONCURRENCY}"),
            ),
        }
    }
    if let Some(v) = env(ENV_VISIBILITY_TIMEOUT).filter(|v| !v.is_empty()) {
        match parse_duration(&v) {
            Ok(d) if d >= Duration::from_secs(1) && d <= MAX_VISIBILITY_TIMEOUT => {
                cfg.source.visibility_timeout = d
            }
            Ok(_) => bad(
                ENV_VISIBILITY_TIMEOUT,
                "must be between 1s and 12h (the SQS maximum)".into(),
            ),
            Err(e) => bad(ENV_VISIBILITY_TIMEOUT, e),
        }
    }
    if let Some(v) = env(ENV_IMDS).filter(|v| !v.is_empty()) {
        match v.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" => cfg.source.imds = true,
            "0" | "false" | "no" => cfg.source.imds = false,
            _ => bad(ENV_IMDS, format!("`{v}` is not true or false")),
        }
    }
    if cfg.source.imds && cfg.source.queue_url.is_some() {
        bad(
            ENV_IMDS,
            "`imds` and `queue_url` exclude each other: choose the queue or IMDS".into(),
        );
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

// ---------------------------------------------------------------------------------------
// Problems
// ---------------------------------------------------------------------------------------

/// One thing wrong with a configuration, located in its file where possible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    /// 1-based.
    pub line: Option<usize>,
    /// 1-based, in characters.
    pub col: Option<usize>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.col) {
            (Some(l), Some(c)) => write!(f, "{}:{l}:{c}: {}", self.file, self.message),
            _ => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = text[line_start..offset].chars().count() + 1;
    (line, col)
}

// ---------------------------------------------------------------------------------------
// Durations
// ---------------------------------------------------------------------------------------

/// A duration written as an integer number of seconds or a humane string: `"500ms"`,
/// `"30s"`, `"10m"`, `"2h"`, `"1d"`, or a sum such as `"1h30m"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = HumanDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration: seconds as an integer, or a string such as \"30s\", \"10m\", \"2h\"")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
                u64::try_from(v)
                    .map(|s| HumanDuration(Duration::from_secs(s)))
                    .map_err(|_| E::custom("a duration cannot be negative"))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(HumanDuration(Duration::from_secs(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                parse_duration(v).map(HumanDuration).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// Parses `"1h30m"`, `"30s"`, `"500ms"`, `"2d"` or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(n) = t.parse::<u64>() {
        return Ok(Duration::from_secs(n));
    }
    let mut total = Duration::ZERO;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!(
                "invalid duration {s:?}: expected a number then a unit (ms, s, m, h, d), e.g. \"30s\" or \"1h30m\""
            ));
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("invalid duration {s:?}: number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let part = match unit.trim() {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.saturating_mul(60)),
            "h" => Duration::from_secs(n.saturating_mul(3600)),
            "d" => Duration::from_secs(n.saturating_mul(86_400)),
            "" => {
                return Err(format!(
                    "invalid duration {s:?}: missing unit after {n} (ms, s, m, h, d)"
                ));
            }
            other => {
                return Err(format!(
                    "invalid duration {s:?}: unknown unit {other:?} (ms, s, m, h, d)"
                ));
            }
        };
        total = total.saturating_add(part);
    }
    Ok(total)
}

/// Formats a duration humanely (`90s` → `1m30s`).
pub fn format_duration(d: Duration) -> String {
    let ms = d.subsec_millis();
    let mut s = d.as_secs();
    if s == 0 && ms > 0 {
        return format!("{ms}ms");
    }
    let mut out = String::new();
    for (unit, len) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if s >= len {
            out.push_str(&format!("{}{unit}", s / len));
            s %= len;
        }
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

// ---------------------------------------------------------------------------------------
// Raw (as written) configuration
// ---------------------------------------------------------------------------------------

/// The file as parsed. Each `[[pipeline]]` and each `[[pipeline.step]]` is deserialized on
/// its own, so that one bad step does not hide the problems of the others.
struct RawConfig {
    source: Option<RawSource>,
    keepalive: Option<RawKeepalive>,
    agent: Option<RawAgent>,
    setup: Option<Spanned<RawSetup>>,
    pipelines: Vec<Spanned<RawPipeline>>,
    /// A `pipeline` key was present (even if no entry could be parsed).
    pipelines_declared: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTop {
    source: Option<RawSource>,
    keepalive: Option<RawKeepalive>,
    agent: Option<RawAgent>,
    setup: Option<Spanned<RawSetup>>,
    /// Taken out before deserializing; listed so that messages name it.
    #[serde(default, rename = "pipeline")]
    _pipelines: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPipelineHead {
    name: Spanned<String>,
    #[serde(rename = "match")]
    matcher: Option<RawMatch>,
    policy: Option<RawPolicy>,
    /// Taken out before deserializing; listed so that messages name it.
    #[serde(default, rename = "step")]
    _steps: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    queue_url: Option<Spanned<String>>,
    topic_arn: Option<Spanned<String>>,
    imds: Option<Spanned<bool>>,
    wait_time_seconds: Option<Spanned<i64>>,
    max_messages: Option<Spanned<i64>>,
    concurrency: Option<Spanned<i64>>,
    visibility_timeout: Option<Spanned<HumanDuration>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgent {
    state_dir: Option<Spanned<String>>,
    reboot_command: Option<Spanned<Vec<String>>>,
    imds_poll_interval: Option<Spanned<HumanDuration>>,
    group: Option<Spanned<String>>,
    #[serde(default)]
    hook: Vec<Spanned<RawHookSpec>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSetup {
    #[serde(default)]
    groups: Vec<Spanned<String>>,
    delivery: Option<Spanned<String>>,
    role_arn: Option<Spanned<String>>,
    dead_letter_queue: Option<Spanned<bool>>,
    max_receive_count: Option<Spanned<i64>>,
    #[serde(default)]
    hook: Vec<Spanned<RawHookSpec>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHookSpec {
    name: Spanned<String>,
    transition: Spanned<String>,
    heartbeat_timeout: Option<Spanned<HumanDuration>>,
    default_result: Option<Spanned<String>>,
    notification_target_arn: Option<Spanned<String>>,
    role_arn: Option<Spanned<String>>,
    notification_metadata: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKeepalive {
    heartbeat_fraction: Option<Spanned<f64>>,
    min_interval: Option<Spanned<HumanDuration>>,
    deadline_margin: Option<Spanned<HumanDuration>>,
}

struct RawPipeline {
    name: Spanned<String>,
    matcher: Option<RawMatch>,
    steps: Vec<Spanned<RawStep>>,
    policy: Option<RawPolicy>,
    /// A `step` key was present (even if no entry could be parsed).
    steps_declared: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMatch {
    #[serde(default)]
    groups: Vec<Spanned<String>>,
    #[serde(default)]
    hooks: Vec<Spanned<String>>,
    #[serde(default)]
    transitions: Vec<Spanned<String>>,
    #[serde(default)]
    tags: BTreeMap<String, Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    on_success: Option<Spanned<String>>,
    on_failure: Option<Spanned<String>>,
    on_deadline: Option<Spanned<String>>,
    deadline_margin: Option<Spanned<HumanDuration>>,
}

/// Every field any step type has; [`Cx::step`] rejects fields of other types.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    #[serde(rename = "type")]
    kind: Spanned<String>,
    name: Option<Spanned<String>>,
    timeout: Option<Spanned<HumanDuration>>,
    retries: Option<Spanned<i64>>,
    backoff: Option<Spanned<HumanDuration>>,
    // exec, probe
    command: Option<Spanned<Argv>>,
    env: Option<BTreeMap<String, Spanned<String>>>,
    working_dir: Option<Spanned<String>>,
    output_limit: Option<Spanned<i64>>,
    reboot_exit_code: Option<Spanned<i64>>,
    // http, probe, notify
    method: Option<Spanned<String>>,
    url: Option<Spanned<String>>,
    headers: Option<BTreeMap<String, Spanned<String>>>,
    body: Option<Spanned<String>>,
    expect_status: Option<Spanned<toml::Value>>,
    // http presets (expanded into plain http steps before validation)
    preset: Option<Spanned<String>>,
    registry_url: Option<Spanned<String>>,
    app: Option<Spanned<String>>,
    instance: Option<Spanned<String>>,
    // probe
    interval: Option<Spanned<HumanDuration>>,
    // notify
    format: Option<Spanned<String>>,
    message: Option<Spanned<String>>,
    // file, s3-fetch
    path: Option<Spanned<String>>,
    mode: Option<Spanned<toml::Value>>,
    content: Option<Spanned<String>>,
    // s3-fetch, s3-upload
    bucket: Option<Spanned<String>>,
    key: Option<Spanned<String>>,
    sha256: Option<Spanned<String>>,
    files: Option<Spanned<Vec<Spanned<String>>>>,
    if_missing: Option<Spanned<String>>,
    // ssm-command
    commands: Option<Spanned<Vec<Spanned<String>>>>,
    // ecs-drain
    cluster: Option<Spanned<String>>,
    stop_tasks: Option<Spanned<bool>>,
    // signal
    stack: Option<Spanned<String>>,
    resource: Option<Spanned<String>>,
    unique_id: Option<Spanned<String>>,
    status: Option<Spanned<String>>,
    // tag, image
    tags: Option<BTreeMap<String, Spanned<String>>>,
    // wait
    duration: Option<Spanned<HumanDuration>>,
    // image
    image_name: Option<Spanned<String>>,
    description: Option<Spanned<String>>,
    no_reboot: Option<Spanned<bool>>,
    only_if: Option<Spanned<String>>,
    marker_tag: Option<Spanned<String>>,
    // target-groups
    target_group_arns: Option<Spanned<Vec<Spanned<String>>>>,
    port: Option<Spanned<i64>>,
}

/// argv: an array of strings; a string is refused with a pointed message.
#[derive(Clone)]
struct Argv(Vec<Spanned<String>>);

impl<'de> Deserialize<'de> for Argv {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Argv;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of strings (argv)")
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Err(E::custom(
                    "`command` is an argv array, not a shell string: write [\"program\", \"arg\", ...] \
                     (use [\"/bin/sh\", \"-c\", \"...\"] only if you need a shell, and never put \
                     templates inside the script)",
                ))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Self::Value, A::Error> {
                let mut v = Vec::new();
                while let Some(s) = a.next_element::<Spanned<String>>()? {
                    v.push(s);
                }
                Ok(Argv(v))
            }
        }
        d.deserialize_any(V)
    }
}

// ---------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------

struct Cx<'a> {
    file: PathBuf,
    text: &'a str,
    problems: Vec<Problem>,
}

/// One request of a service-registry preset: `{app}` and `{instance}` in `path` are the
/// step's `app` and `instance` templates, URL-encoded.
struct PresetRequest {
    suffix: &'static str,
    method: &'static str,
    path: &'static str,
    expect: &'static [i64],
}

/// Service-registry presets of the `http` step: each is the plain `http` steps it stands
/// for, appended to `registry_url`. Another registry is one more entry (or, without a
/// preset, the same steps written out: see docs/configuration.md).
const REGISTRY_PRESETS: &[(&str, &[PresetRequest])] = &[(
    // Eureka REST operations: take the instance out of service (traffic stops as soon as
    // clients refresh), then delete it from the registry; a 404 means already gone.
    "eureka",
    &[
        PresetRequest {
            suffix: "out-of-service",
            method: "PUT",
            path: "/apps/{app}/{instance}/status?value=OUT_OF_SERVICE",
            expect: &[200],
        },
        PresetRequest {
            suffix: "delete",
            method: "DELETE",
            path: "/apps/{app}/{instance}",
            expect: &[200, 404],
        },
    ],
)];

/// A preset's `app` or `instance` as a URL path segment: a single template expression gets
/// the `urlencode` filter, a literal is percent-encoded now, a mix is used as written.
fn url_segment(v: &str) -> String {
    let t = v.trim();
    if let Some(inner) = t.strip_prefix("{{").and_then(|r| r.strip_suffix("}}"))
        && !inner.contains("{{")
        && !inner.contains("}}")
    {
        let inner = inner.trim();
        if inner.ends_with("urlencode") {
            return format!("{{{{ {inner} }}}}");
        }
        return format!("{{{{ {inner} | urlencode }}}}");
    }
    if !t.contains("{{") {
        return crate::template::urlencode(t);
    }
    t.to_owned()
}

const STEP_TYPES: &[&str] = &[
    "exec",
    "http",
    "probe",
    "notify",
    "file",
    "wait",
    "s3-fetch",
    "s3-upload",
    "ssm-command",
    "ecs-drain",
    "signal",
    "tag",
    "image",
    "target-groups",
];

impl Cx<'_> {
    fn push(&mut self, span: Option<Range<usize>>, message: impl Into<String>) {
        let (line, col) = match span {
            Some(s) => {
                let (l, c) = line_col(self.text, s.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        self.problems.push(Problem {
            file: self.file.display().to_string(),
            line,
            col,
            message: message.into(),
        });
    }

    fn at<T>(&mut self, s: &Spanned<T>, message: impl Into<String>) {
        self.push(Some(s.span()), message)
    }

    fn duration(
        &mut self,
        d: &Option<Spanned<HumanDuration>>,
        what: &str,
        default: Duration,
        min: Duration,
        max: Duration,
    ) -> Duration {
        match d {
            None => default,
            Some(s) => {
                let v = s.get_ref().0;
                if v < min || v > max {
                    self.at(
                        s,
                        format!(
                            "`{what}` = {} is out of range: it must be between {} and {}",
                            format_duration(v),
                            format_duration(min),
                            format_duration(max)
                        ),
                    );
                }
                v
            }
        }
    }

    fn int(
        &mut self,
        v: &Option<Spanned<i64>>,
        what: &str,
        default: i64,
        min: i64,
        max: i64,
    ) -> i64 {
        match v {
            None => default,
            Some(s) => {
                let n = *s.get_ref();
                if n < min || n > max {
                    self.at(
                        s,
                        format!(
                            "`{what}` = {n} is out of range: it must be between {min} and {max}"
                        ),
                    );
                }
                n.clamp(min, max)
            }
        }
    }

    fn template(&mut self, s: &Spanned<String>, what: &str) -> Template {
        match Template::parse(s.get_ref()) {
            Ok(t) if t.variables().any(|v| *v == crate::template::Var::FileName) => {
                self.at(
                    s,
                    format!(
                        "`{what}`: `{{{{ file_name }}}}` is only available in the `key` of an `s3-upload` step"
                    ),
                );
                t
            }
            Ok(t) => t,
            Err(e) => {
                // The span covers the quoted string; point inside it when it is a basic
                // string without escapes before the error.
                let span = s.span();
                let raw = &self.text[span.clone()];
                let basic = raw.starts_with('"')
                    && !raw.starts_with("\"\"\"")
                    && !raw[..raw.len().min(e.offset + 1)].contains('\\');
                let literal = raw.starts_with('\'') && !raw.starts_with("\'\'\'");
                let start = if basic || literal {
                    span.start + 1 + e.offset
                } else {
                    span.start
                };
                self.push(Some(start..start), format!("`{what}`: {e}"));
                Template::empty()
            }
        }
    }

    fn templates(
        &mut self,
        m: &Option<BTreeMap<String, Spanned<String>>>,
        what: &str,
    ) -> BTreeMap<String, Template> {
        m.iter()
            .flatten()
            .map(|(k, v)| (k.clone(), self.template(v, &format!("{what}.{k}"))))
            .collect()
    }

    fn url(&mut self, s: &Spanned<String>, what: &str) -> Template {
        let t = self.template(s, what);
        if !t.source().is_empty() {
            let sample = t.render_sample();
            match reqwest::Url::parse(&sample) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
                Ok(u) => self.at(
                    s,
                    format!(
                        "`{what}` must be an http or https URL with a host, not `{}:`",
                        u.scheme()
                    ),
                ),
                Err(e) => self.at(
                    s,
                    format!("`{what}` = {:?} is not a valid URL: {e}", t.source()),
                ),
            }
        }
        t
    }

    fn status(&mut self, v: &Option<Spanned<toml::Value>>) -> StatusSet {
        let Some(s) = v else {
            return StatusSet::default();
        };
        let one = |v: &toml::Value| match v {
            toml::Value::Integer(i) => u16::try_from(*i)
                .ok()
                .and_then(|c| StatusSet::parse_one(&c.to_string())),
            toml::Value::String(s) => StatusSet::parse_one(s),
            _ => None,
        };
        let parsed: Option<Vec<(u16, u16)>> = match s.get_ref() {
            toml::Value::Array(a) if !a.is_empty() => a.iter().map(one).collect(),
            toml::Value::Array(_) => None,
            other => one(other).map(|r| vec![r]),
        };
        match parsed {
            Some(r) => StatusSet(r),
            None => {
                self.at(s, "`expect_status` must be a status code (204), a range (\"200-299\", \"2xx\") or an array of them, with codes in 100..=599");
                StatusSet::default()
            }
        }
    }

    fn argv(&mut self, a: &Spanned<Argv>, what: &str) -> Vec<Template> {
        if a.get_ref().0.is_empty() {
            self.at(
                a,
                format!("`{what}` is empty: give at least the program to run"),
            );
        }
        let mut out = Vec::new();
        for (i, arg) in a.get_ref().0.iter().enumerate() {
            if i == 0 && arg.get_ref().is_empty() {
                self.at(arg, "the program (first element of `command`) is empty");
            }
            if i == 0
                && !Template::parse(arg.get_ref())
                    .map(|t| t.is_literal())
                    .unwrap_or(true)
            {
                self.at(
                    arg,
                    "the program (first element of `command`) must not be a template",
                );
            }
            out.push(self.template(arg, what));
        }
        out
    }

    fn result(
        &mut self,
        v: &Option<Spanned<String>>,
        what: &str,
        default: LifecycleResult,
    ) -> LifecycleResult {
        match v {
            None => default,
            Some(s) => match s.get_ref().to_ascii_lowercase().as_str() {
                "continue" => LifecycleResult::Continue,
                "abandon" => LifecycleResult::Abandon,
                other => {
                    self.at(
                        s,
                        format!("`{what}` = {other:?}: expected \"continue\" or \"abandon\""),
                    );
                    default
                }
            },
        }
    }

    /// Deserializes one value, recording its problem.
    fn de<T: serde::de::DeserializeOwned>(&mut self, v: Spanned<DeValue<'_>>) -> Option<T> {
        match T::deserialize(toml::de::ValueDeserializer::from(v)) {
            Ok(t) => Some(t),
            Err(e) => {
                let msg = e.message().trim_end().to_owned();
                self.push(e.span(), msg);
                None
            }
        }
    }

    /// Parses the document piece by piece; `None` only on a syntax error.
    fn parse(&mut self) -> Option<RawConfig> {
        let root = match toml::de::DeTable::parse(self.text) {
            Ok(r) => r,
            Err(e) => {
                let msg = e.message().trim_end().to_owned();
                self.push(e.span(), msg);
                return None;
            }
        };
        let root_span = root.span();
        let mut table = root.into_inner();
        let pipelines_val = table.remove("pipeline");
        let top: Option<RawTop> = self.de(Spanned::new(root_span, DeValue::Table(table)));
        let (source, keepalive, agent, setup) = top.map_or((None, None, None, None), |t| {
            (t.source, t.keepalive, t.agent, t.setup)
        });
        let pipelines_declared = pipelines_val.is_some();
        let mut pipelines = Vec::new();
        if let Some(pv) = pipelines_val {
            let span = pv.span();
            match pv.into_inner() {
                DeValue::Array(items) => {
                    for item in items {
                        if let Some(p) = self.raw_pipeline(item) {
                            pipelines.push(p);
                        }
                    }
                }
                _ => self.push(
                    Some(span),
                    "`pipeline` must be an array of tables: write `[[pipeline]]`",
                ),
            }
        }
        Some(RawConfig {
            source,
            keepalive,
            agent,
            setup,
            pipelines,
            pipelines_declared,
        })
    }

    fn raw_pipeline(&mut self, item: Spanned<DeValue<'_>>) -> Option<Spanned<RawPipeline>> {
        let span = item.span();
        let DeValue::Table(mut t) = item.into_inner() else {
            self.push(
                Some(span),
                "each `pipeline` must be a table: write `[[pipeline]]`",
            );
            return None;
        };
        let steps_val = t.remove("step");
        let steps_declared = steps_val.is_some();
        let mut steps = Vec::new();
        if let Some(sv) = steps_val {
            let sspan = sv.span();
            match sv.into_inner() {
                DeValue::Array(items) => {
                    for s in items {
                        if let Some(st) = self.de::<Spanned<RawStep>>(s) {
                            steps.push(st);
                        }
                    }
                }
                _ => self.push(
                    Some(sspan),
                    "`step` must be an array of tables: write `[[pipeline.step]]`",
                ),
            }
        }
        let head: RawPipelineHead = self.de(Spanned::new(span.clone(), DeValue::Table(t)))?;
        Some(Spanned::new(
            span,
            RawPipeline {
                name: head.name,
                matcher: head.matcher,
                steps,
                policy: head.policy,
                steps_declared,
            },
        ))
    }

    fn validate(&mut self, raw: RawConfig) -> Config {
        let source = match raw.source {
            None => Source::default(),
            Some(s) => self.source(s),
        };
        let keepalive = match raw.keepalive {
            None => Keepalive::default(),
            Some(k) => {
                let heartbeat_fraction = match &k.heartbeat_fraction {
                    None => DEFAULT_HEARTBEAT_FRACTION,
                    Some(f) => {
                        let v = *f.get_ref();
                        if !(v > 0.0 && v < 1.0) {
                            self.at(f, format!("`heartbeat_fraction` = {v} must be strictly between 0 and 1 (a heartbeat at or after the timeout is too late)"));
                        }
                        v
                    }
                };
                Keepalive {
                    heartbeat_fraction,
                    min_interval: self.duration(
                        &k.min_interval,
                        "min_interval",
                        DEFAULT_MIN_INTERVAL,
                        Duration::from_secs(1),
                        Duration::from_secs(3600),
                    ),
                    deadline_margin: self.duration(
                        &k.deadline_margin,
                        "deadline_margin",
                        DEFAULT_DEADLINE_MARGIN,
                        Duration::ZERO,
                        Duration::from_secs(6 * 3600),
                    ),
                }
            }
        };
        if !raw.pipelines_declared {
            self.push(
                Some(0..0),
                "no `[[pipeline]]`: the configuration must define at least one pipeline",
            );
        }
        let mut names = HashSet::new();
        let mut pipelines = Vec::new();
        for p in raw.pipelines {
            let span = p.span();
            let p = p.into_inner();
            if !names.insert(p.name.get_ref().clone()) {
                self.at(
                    &p.name,
                    format!("duplicate pipeline name {:?}", p.name.get_ref()),
                );
            }
            pipelines.push(self.pipeline(p, span));
        }
        let agent = match raw.agent {
            None => Agent::default(),
            Some(a) => self.agent(a),
        };
        let setup = raw.setup.map(|s| self.setup(s, &source));
        Config {
            source,
            keepalive,
            agent,
            setup,
            pipelines,
        }
    }

    fn setup(&mut self, s: Spanned<RawSetup>, source: &Source) -> Setup {
        let span = s.span();
        let s = s.into_inner();
        let mut groups = Vec::new();
        for g in &s.groups {
            let name = g.get_ref();
            if name.is_empty() || name.len() > 255 {
                self.at(g, "`setup.groups`: a group name has 1 to 255 characters");
            } else if name.contains(['*', '?', '[']) {
                self.at(g, format!("`setup.groups`: {name:?} is a glob; setup puts hooks on groups it is given by name"));
            } else if groups.contains(name) {
                self.at(g, format!("`setup.groups`: {name:?} is listed twice"));
            } else {
                groups.push(name.clone());
            }
        }
        let delivery = match &s.delivery {
            None => Delivery::EventBridge,
            Some(d) => match d.get_ref().as_str() {
                "eventbridge" => Delivery::EventBridge,
                "sns" => Delivery::Sns,
                "direct" => Delivery::Direct,
                other => {
                    self.at(d, format!("`setup.delivery` = {other:?}: expected \"eventbridge\", \"sns\" or \"direct\""));
                    Delivery::EventBridge
                }
            },
        };
        let role_arn = s.role_arn.as_ref().map(|r| r.get_ref().clone());
        if let Some(r) = &s.role_arn
            && !(r.get_ref().starts_with("arn:") && r.get_ref().contains(":iam::"))
        {
            self.at(
                r,
                format!(
                    "`setup.role_arn` = {:?} is not an IAM role ARN (arn:PARTITION:iam::ACCOUNT:role/NAME)",
                    r.get_ref()
                ),
            );
        }
        match (delivery, &s.role_arn) {
            (Delivery::Direct | Delivery::Sns, None) => self.push(
                Some(span.clone()),
                format!(
                    "`setup.delivery` = \"{}\" needs `setup.role_arn`: the role Auto Scaling assumes to publish (spec §2.1)",
                    delivery.as_str()
                ),
            ),
            (Delivery::EventBridge, Some(r)) => self.at(
                r,
                "`setup.role_arn` is only for `delivery = \"direct\"` or `\"sns\"`: EventBridge needs no role",
            ),
            _ => {}
        }
        // Where the actions go: a queue, or (agents) a topic.
        match (delivery, &source.queue_url, &source.topic_arn) {
            (Delivery::Sns, None, Some(_)) | (_, Some(_), None) => {}
            (Delivery::Sns, _, _) => self.push(
                Some(span.clone()),
                "`[setup]` with `delivery = \"sns\"` needs `source.queue_url` (subscribed to a topic it creates) or `source.topic_arn` (agents subscribe themselves)",
            ),
            _ => self.push(
                Some(span.clone()),
                format!(
                    "`[setup]` with `delivery = \"{}\"` needs `source.queue_url`: the queue to create",
                    delivery.as_str()
                ),
            ),
        }
        let dead_letter_queue = s.dead_letter_queue.as_ref().is_none_or(|b| *b.get_ref());
        let max_receive_count = match &s.max_receive_count {
            None => DEFAULT_MAX_RECEIVE_COUNT,
            Some(n) => match u32::try_from(*n.get_ref()) {
                Ok(v) if (1..=1000).contains(&v) => v,
                _ => {
                    self.at(n, format!("`setup.max_receive_count` = {} is out of range: it must be between 1 and 1000 (SQS)", n.get_ref()));
                    DEFAULT_MAX_RECEIVE_COUNT
                }
            },
        };
        if s.groups.is_empty() {
            self.push(
                Some(span.clone()),
                "`[setup]` needs `groups`: the Auto Scaling groups to put the hooks on",
            );
        }
        if s.hook.is_empty() {
            self.push(Some(span), "`[setup]` needs at least one `[[setup.hook]]`");
        }
        for h in &s.hook {
            let h = h.get_ref();
            for v in [&h.notification_target_arn, &h.role_arn]
                .into_iter()
                .flatten()
            {
                self.at(v, "`setup.hook`: the notification target and role follow `setup.delivery` and `setup.role_arn`; leave them out here");
            }
        }
        let hooks = self.hook_specs(&s.hook, "setup.hook");
        Setup {
            groups,
            delivery,
            role_arn,
            dead_letter_queue,
            max_receive_count,
            hooks,
        }
    }

    fn agent(&mut self, a: RawAgent) -> Agent {
        let d = Agent::default();
        let state_dir = match &a.state_dir {
            Some(p) if p.get_ref().trim().is_empty() => {
                self.at(p, "`agent.state_dir` is empty");
                d.state_dir.clone()
            }
            Some(p) => p.get_ref().into(),
            None => d.state_dir.clone(),
        };
        let reboot_command = match &a.reboot_command {
            Some(c) if c.get_ref().is_empty() || c.get_ref()[0].trim().is_empty() => {
                self.at(c, "`agent.reboot_command` must name a program: an argv array such as [\"systemctl\", \"reboot\"]");
                d.reboot_command.clone()
            }
            Some(c) => c.get_ref().clone(),
            None => d.reboot_command.clone(),
        };
        let imds_poll_interval = self.duration(
            &a.imds_poll_interval,
            "imds_poll_interval",
            DEFAULT_IMDS_POLL_INTERVAL,
            Duration::from_millis(100),
            Duration::from_secs(300),
        );
        let group = a.group.as_ref().map(|g| g.get_ref().clone());
        if let Some(g) = &a.group
            && g.get_ref().trim().is_empty()
        {
            self.at(g, "`agent.group` is empty");
        }
        let hooks = self.hook_specs(&a.hook, "agent.hook");
        Agent {
            state_dir,
            reboot_command,
            imds_poll_interval,
            group,
            hooks,
        }
    }

    /// `[[agent.hook]]` or `[[setup.hook]]` (spec §2.1).
    fn hook_specs(&mut self, raw: &[Spanned<RawHookSpec>], table: &str) -> Vec<HookSpec> {
        let mut hooks = Vec::new();
        let mut seen = HashSet::new();
        for h in raw {
            let h = h.get_ref();
            let name = h.name.get_ref().clone();
            if name.is_empty() || name.len() > 255 {
                self.at(
                    &h.name,
                    format!("`{table}.name` must have 1 to 255 characters (spec §2.1)"),
                );
            }
            if !seen.insert(name.clone()) {
                self.at(&h.name, format!("duplicate `[[{table}]]` {name:?}"));
            }
            let transition = match h.transition.get_ref().to_ascii_lowercase().as_str() {
                "launching" | "launch" | "autoscaling:ec2_instance_launching" => {
                    LifecycleTransition::Launching
                }
                "terminating" | "terminate" | "autoscaling:ec2_instance_terminating" => {
                    LifecycleTransition::Terminating
                }
                other => {
                    self.at(&h.transition, format!("`{table}.transition`: unknown transition {other:?}: expected \"launching\" or \"terminating\""));
                    LifecycleTransition::Launching
                }
            };
            // Spec §2.1: HeartbeatTimeout 30..7200 s, default 3600.
            let heartbeat_timeout = self.duration(
                &h.heartbeat_timeout,
                "heartbeat_timeout",
                Duration::from_secs(3600),
                Duration::from_secs(30),
                Duration::from_secs(7200),
            );
            let default_result = self.result(
                &h.default_result,
                &format!("{table}.default_result"),
                LifecycleResult::Abandon,
            );
            if h.notification_target_arn.is_some() != h.role_arn.is_some() {
                self.at(&h.name, format!("`{table}`: `notification_target_arn` and `role_arn` go together (spec §2.1): give both or neither"));
            }
            if let Some(m) = &h.notification_metadata
                && m.get_ref().len() > 1023
            {
                self.at(
                    m,
                    format!(
                        "`{table}.notification_metadata` is longer than 1023 characters (spec §2.1)"
                    ),
                );
            }
            hooks.push(HookSpec {
                name,
                transition,
                heartbeat_timeout,
                default_result,
                notification_target_arn: h
                    .notification_target_arn
                    .as_ref()
                    .map(|v| v.get_ref().clone()),
                role_arn: h.role_arn.as_ref().map(|v| v.get_ref().clone()),
                notification_metadata: h
                    .notification_metadata
                    .as_ref()
                    .map(|v| v.get_ref().clone()),
            });
        }
        hooks
    }

    fn source(&mut self, s: RawSource) -> Source {
        let imds = s.imds.as_ref().is_some_and(|b| *b.get_ref());
        if let Some(q) = &s.queue_url {
            if let Err(e) = reqwest::Url::parse(q.get_ref()) {
                self.at(
                    q,
                    format!("`queue_url` = {:?} is not a URL: {e}", q.get_ref()),
                );
            }
            if imds {
                self.at(
                    q,
                    "`queue_url` and `imds = true` exclude each other: choose the queue or IMDS",
                );
            }
        }
        if let Some(t) = &s.topic_arn {
            if !t.get_ref().starts_with("arn:") || t.get_ref().split(':').count() != 6 {
                self.at(t, format!("`topic_arn` = {:?} is not an SNS topic ARN (arn:PARTITION:sns:REGION:ACCOUNT:NAME)", t.get_ref()));
            }
            if s.queue_url.is_some() || imds {
                self.at(
                    t,
                    "`topic_arn` excludes `queue_url` and `imds = true`: choose one source",
                );
            }
        }
        Source {
            queue_url: s.queue_url.map(Spanned::into_inner),
            topic_arn: s.topic_arn.map(Spanned::into_inner),
            imds,
            wait_time_seconds: self.int(
                &s.wait_time_seconds,
                "wait_time_seconds",
                DEFAULT_WAIT_TIME_SECONDS.into(),
                0,
                20,
            ) as u32,
            max_messages: self.int(
                &s.max_messages,
                "max_messages",
                DEFAULT_MAX_MESSAGES.into(),
                1,
                10,
            ) as u32,
            concurrency: self.int(
                &s.concurrency,
                "concurrency",
                DEFAULT_CONCURRENCY.into(),
                1,
                MAX_CONCURRENCY.into(),
            ) as u32,
            visibility_timeout: self.duration(
                &s.visibility_timeout,
                "visibility_timeout",
                DEFAULT_VISIBILITY_TIMEOUT,
                Duration::from_secs(1),
                MAX_VISIBILITY_TIMEOUT,
            ),
        }
    }

    fn pipeline(&mut self, p: RawPipeline, span: Range<usize>) -> Pipeline {
        let name = p.name.get_ref().clone();
        if name.trim().is_empty() {
            self.at(&p.name, "pipeline `name` is empty");
        }
        let matcher = match p.matcher {
            None => Match::default(),
            Some(m) => {
                let globs =
                    |cx: &mut Self, v: &[Spanned<String>], what: &str| -> Vec<glob::Pattern> {
                        v.iter()
                            .filter_map(|g| match glob::Pattern::new(g.get_ref()) {
                                Ok(p) => Some(p),
                                Err(e) => {
                                    cx.at(
                                        g,
                                        format!("`match.{what}`: bad glob {:?}: {e}", g.get_ref()),
                                    );
                                    None
                                }
                            })
                            .collect()
                    };
                let groups = globs(self, &m.groups, "groups");
                let hooks = globs(self, &m.hooks, "hooks");
                let mut transitions = Vec::new();
                for t in &m.transitions {
                    match t.get_ref().to_ascii_lowercase().as_str() {
                        "launching" | "launch" | "autoscaling:ec2_instance_launching" => transitions.push(LifecycleTransition::Launching),
                        "terminating" | "terminate" | "autoscaling:ec2_instance_terminating" => transitions.push(LifecycleTransition::Terminating),
                        other => self.at(t, format!("`match.transitions`: unknown transition {other:?}: expected \"launching\" or \"terminating\"")),
                    }
                }
                let mut tags = BTreeMap::new();
                for (k, v) in &m.tags {
                    match glob::Pattern::new(v.get_ref()) {
                        Ok(p) => {
                            tags.insert(k.clone(), p);
                        }
                        Err(e) => self.at(
                            v,
                            format!("`match.tags.{k}`: bad glob {:?}: {e}", v.get_ref()),
                        ),
                    }
                }
                Match {
                    groups,
                    hooks,
                    transitions,
                    tags,
                }
            }
        };
        if !p.steps_declared {
            self.push(
                Some(span),
                format!("pipeline {name:?} has no steps: add at least one `[[pipeline.step]]`"),
            );
        }
        let mut step_names = HashSet::new();
        let mut steps = Vec::new();
        let mut expanded = Vec::new();
        for s in p.steps {
            let span = s.span();
            expanded.extend(self.expand_preset(s.into_inner(), &span));
        }
        for (i, (s, span)) in expanded.into_iter().enumerate() {
            if let Some(step) = self.step(s, i, span.clone()) {
                if !step_names.insert(step.name.clone()) {
                    self.push(
                        Some(span),
                        format!("pipeline {name:?}: duplicate step name {:?}", step.name),
                    );
                }
                steps.push(step);
            }
        }
        let policy = match p.policy {
            None => Policy::default(),
            Some(r) => {
                let d = Policy::default();
                let on_deadline = match &r.on_deadline {
                    None => d.on_deadline,
                    Some(s) => match s.get_ref().to_ascii_lowercase().as_str() {
                        "continue" => DeadlinePolicy::Complete(LifecycleResult::Continue),
                        "abandon" => DeadlinePolicy::Complete(LifecycleResult::Abandon),
                        "hold" => DeadlinePolicy::Hold,
                        other => {
                            self.at(s, format!("`on_deadline` = {other:?}: expected \"continue\", \"abandon\" or \"hold\""));
                            d.on_deadline
                        }
                    },
                };
                Policy {
                    on_success: self.result(&r.on_success, "on_success", d.on_success),
                    on_failure: self.result(&r.on_failure, "on_failure", d.on_failure),
                    on_deadline,
                    deadline_margin: r.deadline_margin.as_ref().map(|_| {
                        self.duration(
                            &r.deadline_margin,
                            "deadline_margin",
                            DEFAULT_DEADLINE_MARGIN,
                            Duration::ZERO,
                            Duration::from_secs(6 * 3600),
                        )
                    }),
                }
            }
        };
        Pipeline {
            name,
            matcher,
            steps,
            policy,
        }
    }

    /// An `http` step with `preset` becomes the plain `http` steps of its registry
    /// ([`REGISTRY_PRESETS`]); any other step is returned as it is.
    fn expand_preset(
        &mut self,
        mut s: RawStep,
        span: &Range<usize>,
    ) -> Vec<(RawStep, Range<usize>)> {
        let preset_keys = [
            ("registry_url", s.registry_url.is_some()),
            ("app", s.app.is_some()),
            ("instance", s.instance.is_some()),
        ];
        let Some(preset) = s.preset.take() else {
            for (key, present) in preset_keys {
                if present {
                    self.push(
                        Some(span.clone()),
                        format!("`{key}` goes with `preset` (a service-registry preset of an `http` step)"),
                    );
                }
            }
            return vec![(s, span.clone())];
        };
        if s.kind.get_ref() != "http" {
            self.at(
                &preset,
                format!("`preset` is for `http` steps, not {:?}", s.kind.get_ref()),
            );
            return Vec::new();
        }
        let Some((_, requests)) = REGISTRY_PRESETS
            .iter()
            .find(|(n, _)| *n == preset.get_ref().as_str())
        else {
            let known: Vec<&str> = REGISTRY_PRESETS.iter().map(|(n, _)| *n).collect();
            self.at(
                &preset,
                format!(
                    "unknown preset {:?} (presets: {})",
                    preset.get_ref(),
                    known.join(", ")
                ),
            );
            return Vec::new();
        };
        for (key, present) in [
            ("method", s.method.is_some()),
            ("url", s.url.is_some()),
            ("body", s.body.is_some()),
            ("expect_status", s.expect_status.is_some()),
        ] {
            if present {
                self.push(
                    Some(span.clone()),
                    format!(
                        "`{key}` is set by preset {:?}: write plain `http` steps to change it",
                        preset.get_ref()
                    ),
                );
            }
        }
        let Some(base) = s.registry_url.take() else {
            self.push(
                Some(span.clone()),
                format!(
                    "preset {:?} needs `registry_url`, e.g. \"http://eureka.internal:8761/eureka\"",
                    preset.get_ref()
                ),
            );
            return Vec::new();
        };
        let Some(app) = s.app.take() else {
            self.push(
                Some(span.clone()),
                format!("preset {:?} needs `app`, e.g. \"{{{{ metadata.app }}}}\" or \"{{{{ tags.app }}}}\"", preset.get_ref()),
            );
            return Vec::new();
        };
        let instance = s
            .instance
            .take()
            .unwrap_or_else(|| Spanned::new(span.clone(), "{{ instance_id }}".to_owned()));
        let base_url = base.get_ref().trim_end_matches('/').to_owned();
        let name = s
            .name
            .as_ref()
            .map_or_else(|| preset.get_ref().clone(), |n| n.get_ref().clone());
        let at = |v: &str| Spanned::new(span.clone(), v.to_owned());
        requests
            .iter()
            .map(|r| {
                let path = r
                    .path
                    .replace("{app}", &url_segment(app.get_ref()))
                    .replace("{instance}", &url_segment(instance.get_ref()));
                let expect =
                    toml::Value::Array(r.expect.iter().map(|c| toml::Value::Integer(*c)).collect());
                // Keys the step has beyond the preset's stay, so that `step` reports
                // those an `http` step does not take.
                let step = RawStep {
                    name: Some(at(&format!("{name}-{}", r.suffix))),
                    method: Some(at(r.method)),
                    url: Some(Spanned::new(base.span(), format!("{base_url}{path}"))),
                    body: None,
                    expect_status: Some(Spanned::new(span.clone(), expect)),
                    ..s.clone()
                };
                (step, span.clone())
            })
            .collect()
    }

    fn step(&mut self, s: RawStep, index: usize, span: Range<usize>) -> Option<Step> {
        let ty = s.kind.get_ref().as_str();
        if !STEP_TYPES.contains(&ty) {
            self.at(
                &s.kind,
                format!(
                    "unknown step type {ty:?} (step types: {})",
                    STEP_TYPES.join(", ")
                ),
            );
            return None;
        }
        let present: [(&str, bool); 37] = [
            ("command", s.command.is_some()),
            ("env", s.env.is_some()),
            ("working_dir", s.working_dir.is_some()),
            ("output_limit", s.output_limit.is_some()),
            ("reboot_exit_code", s.reboot_exit_code.is_some()),
            ("method", s.method.is_some()),
            ("url", s.url.is_some()),
            ("headers", s.headers.is_some()),
            ("body", s.body.is_some()),
            ("expect_status", s.expect_status.is_some()),
            ("interval", s.interval.is_some()),
            ("format", s.format.is_some()),
            ("message", s.message.is_some()),
            ("path", s.path.is_some()),
            ("mode", s.mode.is_some()),
            ("content", s.content.is_some()),
            ("bucket", s.bucket.is_some()),
            ("key", s.key.is_some()),
            ("sha256", s.sha256.is_some()),
            ("files", s.files.is_some()),
            ("if_missing", s.if_missing.is_some()),
            ("commands", s.commands.is_some()),
            ("cluster", s.cluster.is_some()),
            ("stop_tasks", s.stop_tasks.is_some()),
            ("stack", s.stack.is_some()),
            ("resource", s.resource.is_some()),
            ("unique_id", s.unique_id.is_some()),
            ("status", s.status.is_some()),
            ("tags", s.tags.is_some()),
            ("duration", s.duration.is_some()),
            ("image_name", s.image_name.is_some()),
            ("description", s.description.is_some()),
            ("no_reboot", s.no_reboot.is_some()),
            ("only_if", s.only_if.is_some()),
            ("marker_tag", s.marker_tag.is_some()),
            ("target_group_arns", s.target_group_arns.is_some()),
            ("port", s.port.is_some()),
        ];
        let allowed: &[&str] = match ty {
            "exec" => &[
                "command",
                "env",
                "working_dir",
                "output_limit",
                "reboot_exit_code",
            ],
            "http" => &["method", "url", "headers", "body", "expect_status"],
            "probe" => &[
                "command",
                "env",
                "working_dir",
                "url",
                "headers",
                "expect_status",
                "interval",
            ],
            "notify" => &["url", "headers", "format", "message"],
            "file" => &["path", "content", "mode"],
            "s3-fetch" => &["bucket", "key", "path", "mode", "sha256"],
            "s3-upload" => &["bucket", "key", "files", "if_missing"],
            "ssm-command" => &["commands", "env", "working_dir", "interval"],
            "ecs-drain" => &["cluster", "interval", "stop_tasks"],
            "signal" => &["stack", "resource", "unique_id", "status"],
            "wait" => &["duration"],
            "image" => &[
                "image_name",
                "description",
                "tags",
                "no_reboot",
                "interval",
                "only_if",
                "marker_tag",
            ],
            "target-groups" => &["target_group_arns", "port", "interval"],
            _ => &["tags"],
        };
        for (field, is) in present {
            if is && !allowed.contains(&field) {
                self.push(
                    Some(span.clone()),
                    format!(
                        "a step of type {ty:?} has no field `{field}` (its fields: {})",
                        allowed.join(", ")
                    ),
                );
            }
        }
        let name = match &s.name {
            Some(n) if n.get_ref().trim().is_empty() => {
                self.at(n, "step `name` is empty");
                n.get_ref().clone()
            }
            Some(n) => n.get_ref().clone(),
            None => format!("{ty}-{}", index + 1),
        };
        if let Some(t) = s
            .timeout
            .as_ref()
            .filter(|t| t.get_ref().0 > MAX_STEP_TIMEOUT)
        {
            self.at(
                t,
                format!(
                    "`timeout` = {} is longer than 48h, the longest a lifecycle action can wait",
                    format_duration(t.get_ref().0)
                ),
            );
        }
        // A `wait` longer than the default timeout gets a timeout that lets it finish.
        let default_timeout = match (ty, &s.duration) {
            ("wait", Some(d)) => d.get_ref().0.clamp(DEFAULT_STEP_TIMEOUT, MAX_STEP_TIMEOUT),
            ("image", _) => DEFAULT_IMAGE_TIMEOUT,
            ("target-groups", _) => DEFAULT_TARGET_GROUPS_TIMEOUT,
            _ => DEFAULT_STEP_TIMEOUT,
        };
        let timeout = match &s.timeout {
            Some(t) if t.get_ref().0 > MAX_STEP_TIMEOUT => MAX_STEP_TIMEOUT,
            other => self.duration(
                other,
                "timeout",
                default_timeout,
                Duration::from_millis(1),
                MAX_STEP_TIMEOUT,
            ),
        };
        let default_retries = if matches!(
            ty,
            "http"
                | "notify"
                | "s3-fetch"
                | "s3-upload"
                | "ecs-drain"
                | "signal"
                | "tag"
                | "image"
                | "target-groups"
        ) {
            DEFAULT_RETRIES_NETWORK
        } else {
            DEFAULT_RETRIES_LOCAL
        };
        let retries = self.int(&s.retries, "retries", default_retries.into(), 0, 100) as u32;
        let backoff = self.duration(
            &s.backoff,
            "backoff",
            DEFAULT_BACKOFF,
            Duration::ZERO,
            MAX_BACKOFF,
        );
        let missing = |cx: &mut Self, field: &str| {
            cx.push(
                Some(span.clone()),
                format!("a step of type {ty:?} needs `{field}`"),
            );
        };
        let working_dir = s.working_dir.as_ref().map(|w| PathBuf::from(w.get_ref()));
        let kind = match ty {
            "exec" => {
                let command = match &s.command {
                    Some(c) => self.argv(c, "command"),
                    None => {
                        missing(self, "command");
                        Vec::new()
                    }
                };
                let output_limit = self.int(
                    &s.output_limit,
                    "output_limit",
                    DEFAULT_OUTPUT_LIMIT as i64,
                    0,
                    64 * 1024 * 1024,
                ) as usize;
                let reboot_exit_code = s.reboot_exit_code.as_ref().map(|c| {
                    let v = *c.get_ref();
                    if !(1..=255).contains(&v) {
                        self.at(
                            c,
                            format!("`reboot_exit_code` = {v} must be between 1 and 255"),
                        );
                    }
                    v as i32
                });
                StepKind::Exec(ExecStep {
                    command,
                    env: self.templates(&s.env, "env"),
                    working_dir,
                    output_limit,
                    reboot_exit_code,
                })
            }
            "http" => {
                let method = match &s.method {
                    None => reqwest::Method::POST,
                    Some(m) => match reqwest::Method::from_bytes(
                        m.get_ref().to_ascii_uppercase().as_bytes(),
                    ) {
                        Ok(m) => m,
                        Err(_) => {
                            self.at(
                                m,
                                format!("`method` = {:?} is not an HTTP method", m.get_ref()),
                            );
                            reqwest::Method::POST
                        }
                    },
                };
                let url = match &s.url {
                    Some(u) => self.url(u, "url"),
                    None => {
                        missing(self, "url");
                        Template::empty()
                    }
                };
                let body = s.body.as_ref().map(|b| self.template(b, "body"));
                StepKind::Http(HttpStep {
                    method,
                    url,
                    headers: self.templates(&s.headers, "headers"),
                    body,
                    expect_status: self.status(&s.expect_status),
                })
            }
            "probe" => {
                let interval = self.duration(
                    &s.interval,
                    "interval",
                    DEFAULT_PROBE_INTERVAL,
                    Duration::from_millis(10),
                    Duration::from_secs(3600),
                );
                let check = match (&s.command, &s.url) {
                    (Some(c), None) => ProbeCheck::Exec {
                        command: self.argv(c, "command"),
                        env: self.templates(&s.env, "env"),
                        working_dir,
                    },
                    (None, Some(u)) => {
                        if s.env.is_some() || s.working_dir.is_some() {
                            self.push(
                                Some(span.clone()),
                                "an HTTP probe has no `env` or `working_dir`",
                            );
                        }
                        ProbeCheck::Http {
                            url: self.url(u, "url"),
                            headers: self.templates(&s.headers, "headers"),
                            expect_status: self.status(&s.expect_status),
                        }
                    }
                    _ => {
                        self.push(Some(span.clone()), "a step of type \"probe\" needs exactly one of `url` (HTTP GET) or `command` (argv)");
                        ProbeCheck::Exec {
                            command: Vec::new(),
                            env: BTreeMap::new(),
                            working_dir: None,
                        }
                    }
                };
                StepKind::Probe(ProbeStep { interval, check })
            }
            "wait" => {
                let duration = self.duration(
                    &s.duration,
                    "duration",
                    Duration::ZERO,
                    Duration::ZERO,
                    MAX_STEP_TIMEOUT,
                );
                if duration > timeout {
                    let at = s.duration.as_ref().map_or(span.clone(), |d| d.span());
                    self.push(
                        Some(at),
                        format!(
                            "`duration` = {} is longer than the step's `timeout` ({}): the wait would always time out",
                            format_duration(duration),
                            format_duration(timeout)
                        ),
                    );
                }
                StepKind::Wait(WaitStep { duration })
            }
            "file" | "s3-fetch" | "s3-upload" | "ssm-command" | "ecs-drain" | "signal" | "tag"
            | "image" | "target-groups" => self.aws_or_file_step(ty, &s, &span),
            _ => {
                let url = match &s.url {
                    Some(u) => self.url(u, "url"),
                    None => {
                        missing(self, "url");
                        Template::empty()
                    }
                };
                let message = match &s.message {
                    Some(m) => self.template(m, "message"),
                    None => {
                        missing(self, "message");
                        Template::empty()
                    }
                };
                let format = match &s.format {
                    None => NotifyFormat::Json,
                    Some(f) => match f.get_ref().as_str() {
                        "json" => NotifyFormat::Json,
                        "slack" => NotifyFormat::Slack,
                        other => {
                            self.at(
                                f,
                                format!("`format` = {other:?}: expected \"json\" or \"slack\""),
                            );
                            NotifyFormat::Json
                        }
                    },
                };
                StepKind::Notify(NotifyStep {
                    url,
                    format,
                    message,
                    headers: self.templates(&s.headers, "headers"),
                })
            }
        };
        Some(Step {
            name,
            timeout,
            retries,
            backoff,
            kind,
        })
    }
}

// The `file` step and the step types that call AWS.
impl Cx<'_> {
    fn required_template(
        &mut self,
        v: &Option<Spanned<String>>,
        ty: &str,
        what: &str,
        span: &Range<usize>,
    ) -> Template {
        match v {
            Some(t) => {
                let t2 = self.template(t, what);
                if t2.source().trim().is_empty() {
                    self.at(t, format!("`{what}` is empty"));
                }
                t2
            }
            None => {
                self.push(
                    Some(span.clone()),
                    format!("a step of type {ty:?} needs `{what}`"),
                );
                Template::empty()
            }
        }
    }

    /// A Unix mode: a string of octal digits (`"0755"`) or a TOML octal integer (`0o755`).
    fn mode(&mut self, v: &Option<Spanned<toml::Value>>) -> Option<u32> {
        let m = v.as_ref()?;
        let raw = self.text.get(m.span()).unwrap_or_default().trim();
        let parsed = match m.get_ref() {
            toml::Value::String(s) => {
                let d = s.trim().trim_start_matches("0o");
                (!d.is_empty() && d.len() <= 4)
                    .then(|| u32::from_str_radix(d, 8).ok())
                    .flatten()
            }
            toml::Value::Integer(i) if raw.starts_with("0o") => u32::try_from(*i).ok(),
            _ => None,
        };
        match parsed.filter(|p| *p <= 0o7777) {
            Some(p) => Some(p),
            None => {
                self.at(m, "`mode` must be octal permissions: a string such as \"0644\" or \"0755\", or a TOML octal integer (0o644)");
                None
            }
        }
    }

    fn string_list(
        &mut self,
        v: &Option<Spanned<Vec<Spanned<String>>>>,
        ty: &str,
        what: &str,
        span: &Range<usize>,
    ) -> Vec<Template> {
        let Some(list) = v else {
            self.push(
                Some(span.clone()),
                format!("a step of type {ty:?} needs `{what}`"),
            );
            return Vec::new();
        };
        if list.get_ref().is_empty() {
            self.at(list, format!("`{what}` is empty"));
        }
        list.get_ref()
            .iter()
            .map(|t| self.template(t, what))
            .collect()
    }

    fn aws_or_file_step(&mut self, ty: &str, s: &RawStep, span: &Range<usize>) -> StepKind {
        let interval = |cx: &mut Self, default: Duration| {
            cx.duration(
                &s.interval,
                "interval",
                default,
                Duration::from_millis(10),
                Duration::from_secs(3600),
            )
        };
        match ty {
            "file" => StepKind::File(FileStep {
                path: self.required_template(&s.path, ty, "path", span),
                content: match &s.content {
                    Some(c) => self.template(c, "content"),
                    None => {
                        self.push(
                            Some(span.clone()),
                            "a step of type \"file\" needs `content` (use \"\" for an empty file)",
                        );
                        Template::empty()
                    }
                },
                mode: self.mode(&s.mode).unwrap_or(DEFAULT_FILE_MODE),
            }),
            "s3-fetch" => {
                let sha256 = s.sha256.as_ref().and_then(|h| {
                    let v = h.get_ref().trim().to_ascii_lowercase();
                    if v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()) {
                        Some(v)
                    } else {
                        self.at(h, format!("`sha256` = {:?} is not a SHA-256 digest: expected 64 hexadecimal digits (`sha256sum FILE`)", h.get_ref()));
                        None
                    }
                });
                StepKind::S3Fetch(S3FetchStep {
                    bucket: self.required_template(&s.bucket, ty, "bucket", span),
                    key: self.required_template(&s.key, ty, "key", span),
                    path: self.required_template(&s.path, ty, "path", span),
                    mode: self.mode(&s.mode),
                    sha256,
                })
            }
            "s3-upload" => {
                let bucket = self.required_template(&s.bucket, ty, "bucket", span);
                let files = self.string_list(&s.files, ty, "files", span);
                let key = match &s.key {
                    None => {
                        self.push(
                            Some(span.clone()),
                            "a step of type \"s3-upload\" needs `key`, e.g. \"logs/{{ group }}/{{ instance_id }}/{{ file_name }}\"",
                        );
                        Template::empty()
                    }
                    Some(k) => match Template::parse(k.get_ref()) {
                        Ok(t) => {
                            let per_file =
                                t.variables().any(|v| *v == crate::template::Var::FileName);
                            let several = files.len() > 1
                                || files.iter().any(|f| f.source().contains(['*', '?', '[']));
                            if several && !per_file {
                                self.at(k, "`key` must contain `{{ file_name }}` when `files` has several entries or a glob: otherwise every file would be uploaded to the same key");
                            }
                            if t.source().trim().is_empty() {
                                self.at(k, "`key` is empty");
                            }
                            t
                        }
                        // Reports the parse error with its position.
                        Err(_) => self.template(k, "key"),
                    },
                };
                let if_missing = match &s.if_missing {
                    None => IfMissing::Ok,
                    Some(v) => match v.get_ref().as_str() {
                        "ok" => IfMissing::Ok,
                        "fail" => IfMissing::Fail,
                        other => {
                            self.at(
                                v,
                                format!("`if_missing` = {other:?}: expected \"ok\" or \"fail\""),
                            );
                            IfMissing::Ok
                        }
                    },
                };
                StepKind::S3Upload(S3UploadStep {
                    bucket,
                    key,
                    files,
                    if_missing,
                })
            }
            "ssm-command" => {
                let commands = self.string_list(&s.commands, ty, "commands", span);
                let env = self.templates(&s.env, "env");
                for k in env.keys() {
                    let ok = !k.is_empty()
                        && !k.starts_with(|c: char| c.is_ascii_digit())
                        && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
                    if !ok {
                        self.push(
                            Some(span.clone()),
                            format!("`env`: {k:?} is not a shell variable name (letters, digits and `_`, not starting with a digit)"),
                        );
                    }
                }
                StepKind::SsmCommand(SsmCommandStep {
                    commands,
                    env,
                    working_dir: s
                        .working_dir
                        .as_ref()
                        .map(|w| self.template(w, "working_dir")),
                    interval: interval(self, DEFAULT_SSM_INTERVAL),
                })
            }
            "ecs-drain" => StepKind::EcsDrain(EcsDrainStep {
                cluster: s.cluster.as_ref().map(|c| {
                    let t = self.template(c, "cluster");
                    if t.source().trim().is_empty() {
                        self.at(
                            c,
                            "`cluster` is empty: leave it out to discover the cluster",
                        );
                    }
                    t
                }),
                interval: interval(self, DEFAULT_ECS_INTERVAL),
                stop_tasks: s.stop_tasks.as_ref().is_none_or(|b| *b.get_ref()),
            }),
            "signal" => StepKind::Signal(SignalStep {
                stack: self.required_template(&s.stack, ty, "stack", span),
                resource: self.required_template(&s.resource, ty, "resource", span),
                unique_id: match &s.unique_id {
                    Some(u) => self.template(u, "unique_id"),
                    None => {
                        Template::parse("{{ instance_id }}").unwrap_or_else(|_| Template::empty())
                    }
                },
                status: match &s.status {
                    None => SignalStatus::Success,
                    Some(v) => match v.get_ref().to_ascii_uppercase().as_str() {
                        "SUCCESS" => SignalStatus::Success,
                        "FAILURE" => SignalStatus::Failure,
                        _ => {
                            self.at(
                                v,
                                format!(
                                    "`status` = {:?}: expected \"SUCCESS\" or \"FAILURE\"",
                                    v.get_ref()
                                ),
                            );
                            SignalStatus::Success
                        }
                    },
                },
            }),
            "image" => {
                let iv = interval(self, DEFAULT_IMAGE_INTERVAL);
                self.image_step(s, span, iv)
            }
            "target-groups" => {
                let iv = interval(self, DEFAULT_TARGET_GROUPS_INTERVAL);
                self.target_groups_step(s, iv)
            }
            _ => {
                let tags = self.templates(&s.tags, "tags");
                match &s.tags {
                    None => self.push(
                        Some(span.clone()),
                        "a step of type \"tag\" needs `tags`, e.g. tags = { patched = \"{{ now | date }}\" }",
                    ),
                    Some(t) if t.is_empty() => {
                        self.push(Some(span.clone()), "`tags` is empty: give at least one tag")
                    }
                    Some(_) => {}
                }
                self.tag_keys(&tags, span);
                StepKind::Tag(TagStep { tags })
            }
        }
    }

    /// EC2 tag keys: 1 to 128 characters, not `aws:`.
    fn tag_keys(&mut self, tags: &BTreeMap<String, Template>, span: &Range<usize>) {
        for k in tags.keys() {
            if k.is_empty() || k.chars().count() > 128 {
                self.push(
                    Some(span.clone()),
                    format!("`tags`: {k:?} is not a tag key (1 to 128 characters)"),
                );
            } else if k.to_ascii_lowercase().starts_with("aws:") {
                self.push(
                    Some(span.clone()),
                    format!("`tags`: {k:?}: keys starting with `aws:` are reserved by AWS"),
                );
            }
        }
    }

    fn image_step(&mut self, s: &RawStep, span: &Range<usize>, interval: Duration) -> StepKind {
        let image_name = match &s.image_name {
            Some(n) => {
                let t = self.template(n, "image_name");
                let sample = t.render_sample();
                let parsed = Template::parse(n.get_ref()).is_ok();
                if parsed && t.is_literal() && !(3..=128).contains(&sample.chars().count()) {
                    self.at(
                        n,
                        format!("`image_name` = {sample:?}: an AMI name has 3 to 128 characters"),
                    );
                }
                t
            }
            None => Template::parse(DEFAULT_IMAGE_NAME).unwrap_or_else(|_| Template::empty()),
        };
        let description = s.description.as_ref().map(|d| {
            let t = self.template(d, "description");
            if t.is_literal() && t.source().chars().count() > 255 {
                self.at(
                    d,
                    "`description` is longer than 255 characters, the EC2 limit",
                );
            }
            t
        });
        let tags = self.templates(&s.tags, "tags");
        self.tag_keys(&tags, span);
        for k in tags.keys() {
            if [IMAGE_TAG_INSTANCE, IMAGE_TAG_GROUP, IMAGE_TAG_TOKEN].contains(&k.as_str()) {
                self.push(
                    Some(span.clone()),
                    format!("`tags`: {k:?} is set by lifehook on every image; choose another key"),
                );
            }
        }
        let only_if = s.only_if.as_ref().and_then(|o| match o.get_ref().as_str() {
            "unexpected-scale-in" => Some(ImageCondition::UnexpectedScaleIn),
            other => {
                self.at(
                    o,
                    format!("`only_if` = {other:?}: expected \"unexpected-scale-in\" (or leave it out to always create the image)"),
                );
                None
            }
        });
        let marker_tag = match &s.marker_tag {
            None => DEFAULT_MARKER_TAG.to_owned(),
            Some(m) => {
                let k = m.get_ref();
                if k.is_empty() || k.chars().count() > 128 {
                    self.at(
                        m,
                        format!("`marker_tag` = {k:?} is not a tag key (1 to 128 characters)"),
                    );
                }
                if s.only_if.is_none() {
                    self.at(
                        m,
                        "`marker_tag` applies only with `only_if = \"unexpected-scale-in\"`",
                    );
                }
                k.clone()
            }
        };
        StepKind::Image(ImageStep {
            image_name,
            description,
            tags,
            no_reboot: s.no_reboot.as_ref().is_none_or(|b| *b.get_ref()),
            interval,
            only_if,
            marker_tag,
        })
    }

    fn target_groups_step(&mut self, s: &RawStep, interval: Duration) -> StepKind {
        let mut arns = Vec::new();
        if let Some(list) = &s.target_group_arns {
            if list.get_ref().is_empty() {
                self.at(
                    list,
                    "`target_group_arns` is empty: leave it out to use the group's target groups",
                );
            }
            for a in list.get_ref() {
                let v = a.get_ref();
                let parts: Vec<&str> = v.splitn(6, ':').collect();
                let ok = parts.len() == 6
                    && parts[0] == "arn"
                    && parts[2] == "elasticloadbalancing"
                    && parts[5].starts_with("targetgroup/");
                if !ok {
                    self.at(a, format!("`target_group_arns`: {v:?} is not a target group ARN (arn:PARTITION:elasticloadbalancing:REGION:ACCOUNT:targetgroup/NAME/ID)"));
                } else if arns.contains(v) {
                    self.at(a, format!("`target_group_arns`: {v:?} is listed twice"));
                } else {
                    arns.push(v.clone());
                }
            }
        }
        let port = s.port.as_ref().map(|p| {
            let v = *p.get_ref();
            match u16::try_from(v) {
                Ok(n) if n >= 1 => n,
                _ => {
                    self.at(p, format!("`port` = {v} is not a port (1 to 65535)"));
                    1
                }
            }
        });
        StepKind::TargetGroups(TargetGroupsStep {
            target_group_arns: arns,
            port,
            interval,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::event;

    fn parse(text: &str) -> Result<Config, Vec<Problem>> {
        Config::from_toml(text, Path::new("c.toml"))
    }

    fn problems(text: &str) -> Vec<String> {
        parse(text)
            .unwrap_err()
            .iter()
            .map(|p| p.to_string())
            .collect()
    }

    const MIN: &str = r#"
[[pipeline]]
name = "p"
[[pipeline.step]]
type = "exec"
command = ["true"]
"#;

    #[test]
    fn eureka_preset_expands_to_two_http_steps() {
        let c = parse(
            r#"
[[pipeline]]
name = "p"
[[pipeline.step]]
type = "http"
preset = "eureka"
name = "registry"
registry_url = "http://eureka.internal:8761/eureka/"
app = "{{ metadata.app }}"
retries = 5
timeout = "7s"
headers = { Authorization = "Bearer x" }
"#,
        )
        .unwrap();
        let steps = &c.pipelines[0].steps;
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[0].name, "registry-out-of-service");
        assert_eq!(steps[1].name, "registry-delete");
        let ev = event(Some(r#"{"app": "WEB APP"}"#));
        let tags = BTreeMap::new();
        let cx = crate::template::TemplateContext {
            event: &ev,
            tags: &tags,
            region: None,
            pipeline: "p",
            now: chrono::Utc::now(),
        };
        let (StepKind::Http(a), StepKind::Http(b)) = (&steps[0].kind, &steps[1].kind) else {
            panic!("not http steps: {steps:?}");
        };
        assert_eq!(a.method, reqwest::Method::PUT);
        assert_eq!(
            a.url.render(&cx).unwrap(),
            "http://eureka.internal:8761/eureka/apps/WEB%20APP/i-0123456789abcdef0/status?value=OUT_OF_SERVICE"
        );
        assert!(a.expect_status.contains(200) && !a.expect_status.contains(404));
        assert_eq!(b.method, reqwest::Method::DELETE);
        assert_eq!(
            b.url.render(&cx).unwrap(),
            "http://eureka.internal:8761/eureka/apps/WEB%20APP/i-0123456789abcdef0"
        );
        assert!(b.expect_status.contains(404) && !b.expect_status.contains(204));
        assert_eq!(steps[1].retries, 5);
        assert_eq!(steps[1].timeout, Duration::from_secs(7));
        assert_eq!(b.headers.len(), 1);
    }

    #[test]
    fn preset_problems_are_located() {
        let bad = |step: &str| {
            problems(&format!(
                "[[pipeline]]\nname = \"p\"\n[[pipeline.step]]\n{step}\n"
            ))
            .join("\n")
        };
        let p = bad(
            "type = \"http\"\npreset = \"zookeeper\"\nregistry_url = \"http://x\"\napp = \"a\"",
        );
        assert!(
            p.contains("c.toml:5:10: unknown preset \"zookeeper\" (presets: eureka)"),
            "{p}"
        );
        let p = bad("type = \"exec\"\npreset = \"eureka\"");
        assert!(
            p.contains("`preset` is for `http` steps, not \"exec\""),
            "{p}"
        );
        let p = bad("type = \"http\"\npreset = \"eureka\"\nregistry_url = \"http://x\"");
        assert!(p.contains("preset \"eureka\" needs `app`"), "{p}");
        let p = bad(
            "type = \"http\"\npreset = \"eureka\"\nregistry_url = \"http://x\"\napp = \"a\"\nurl = \"http://y\"",
        );
        assert!(p.contains("`url` is set by preset \"eureka\""), "{p}");
        let p = bad("type = \"http\"\nurl = \"http://y\"\napp = \"a\"");
        assert!(p.contains("`app` goes with `preset`"), "{p}");
        let p = bad(
            "type = \"http\"\npreset = \"eureka\"\nregistry_url = \"http://x\"\napp = \"a\"\ncommand = [\"true\"]",
        );
        assert!(
            p.contains("a step of type \"http\" has no field `command`"),
            "{p}"
        );
    }

    #[test]
    fn wait_step() {
        let c = parse(
            "[[pipeline]]\nname = \"p\"\n[[pipeline.step]]\ntype = \"wait\"\n\
             [[pipeline.step]]\ntype = \"wait\"\nduration = \"30s\"\n\
             [[pipeline.step]]\ntype = \"wait\"\nduration = \"1h\"\n",
        )
        .unwrap();
        let steps = &c.pipelines[0].steps;
        let durations: Vec<_> = steps
            .iter()
            .map(|s| match &s.kind {
                StepKind::Wait(w) => (w.duration, s.timeout),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            durations,
            [
                (Duration::ZERO, DEFAULT_STEP_TIMEOUT),
                (Duration::from_secs(30), DEFAULT_STEP_TIMEOUT),
                // A wait longer than the default timeout gets a timeout to match.
                (Duration::from_secs(3600), Duration::from_secs(3600)),
            ]
        );
        assert!(steps[0].kind.templates().is_empty());

        let p = problems(
            "[[pipeline]]\nname = \"p\"\n[[pipeline.step]]\ntype = \"wait\"\n\
             duration = \"2m\"\ntimeout = \"1m\"\n\
             [[pipeline.step]]\ntype = \"wait\"\nduration = \"3d\"\n\
             [[pipeline.step]]\ntype = \"wait\"\nurl = \"http://x\"\n",
        );
        let want = [
            "c.toml:5:12: `duration` = 2m is longer than the step's `timeout` (1m)",
            "c.toml:9:12: `duration` = 3d is out of range",
            "c.toml:10:1: a step of type \"wait\" has no field `url` (its fields: duration)",
        ];
        for w in want {
            assert!(p.iter().any(|x| x.contains(w)), "missing {w:?} in {p:#?}");
        }
    }

    #[test]
    fn minimal_defaults() {
        let c = parse(MIN).unwrap();
        assert_eq!(c.source, Source::default());
        assert_eq!(c.keepalive, Keepalive::default());
        let p = &c.pipelines[0];
        assert_eq!(p.policy, Policy::default());
        assert_eq!(p.steps[0].name, "exec-1");
        assert_eq!(p.steps[0].timeout, DEFAULT_STEP_TIMEOUT);
        assert_eq!(p.steps[0].retries, DEFAULT_RETRIES_LOCAL);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("45").unwrap(), Duration::from_secs(45));
        assert!(parse_duration("10 minutes").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("5").is_ok());
        assert!(parse_duration("5x").unwrap_err().contains("unknown unit"));
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn syntax_error_has_line_and_column() {
        let p = problems("[source]\nqueue_url = \n");
        assert_eq!(p.len(), 1);
        assert!(p[0].starts_with("c.toml:2:"), "{p:?}");
    }

    #[test]
    fn unknown_field_is_located() {
        let p = problems("[source]\nqueue_urll = \"x\"\n");
        assert!(
            p.iter()
                .any(|p| p.starts_with("c.toml:2:1: ") && p.contains("queue_urll")),
            "{p:?}"
        );
    }

    #[test]
    fn type_errors_in_several_steps_are_all_reported() {
        let p = problems(
            r#"[oops]
[[pipeline]]
name = "a"
[[pipeline.step]]
type = "exec"
command = "rm -rf /"
[[pipeline.step]]
type = "exec"
command = ["true"]
timeout = "5 parsecs"
[[pipeline.step]]
type = "exec"
command = ["true"]
retries = "many"

[[pipeline]]
name = "b"
mtach = {}
[[pipeline.step]]
type = "exec"
command = ["true"]
"#,
        );
        let want = [
            "c.toml:1:2: unknown field `oops`, expected one of `source`, `keepalive`, `agent`, `setup`, `pipeline`",
            "c.toml:6:11: `command` is an argv array",
            "c.toml:10:11: invalid duration",
            "c.toml:14:11: invalid type: string \"many\"",
            "c.toml:18:1: unknown field `mtach`",
        ];
        for w in want {
            assert!(
                p.iter().any(|x| x.starts_with(w)),
                "missing {w:?} in {p:#?}"
            );
        }
        assert_eq!(p.len(), want.len(), "{p:#?}");
    }

    #[test]
    fn semantic_errors_are_all_reported_with_positions() {
        let text = r#"[keepalive]
heartbeat_fraction = 1.5

[[pipeline]]
name = "a"
match = { groups = ["web-[*"], transitions = ["rebooting"] }
[[pipeline.step]]
type = "shell"
[[pipeline.step]]
type = "exec"
command = ["x"]
timeout = "49h"
[[pipeline.step]]
type = "http"
url = "not a url {{ instance_id }}"
[[pipeline.step]]
type = "notify"
url = "https://hooks.example/{{ instanceid }}"
message = "hi"

[[pipeline]]
name = "a"
"#;
        let p = problems(text);
        let want = [
            "c.toml:2:22: `heartbeat_fraction` = 1.5",
            "c.toml:6:21: `match.groups`: bad glob",
            "c.toml:6:47: `match.transitions`: unknown transition \"rebooting\"",
            "c.toml:8:8: unknown step type \"shell\"",
            "c.toml:12:11: `timeout` = 2d1h is longer than 48h",
            "c.toml:15:7: `url` = \"not a url {{ instance_id }}\" is not a valid URL",
            "c.toml:18:30: `url`: unknown template variable `instanceid`",
            "c.toml:22:8: duplicate pipeline name \"a\"",
            "has no steps",
        ];
        for w in want {
            assert!(p.iter().any(|x| x.contains(w)), "missing {w:?} in {p:#?}");
        }
    }

    #[test]
    fn fields_of_other_step_types_are_refused() {
        let p = problems(
            r#"[[pipeline]]
name = "p"
[[pipeline.step]]
type = "exec"
command = ["true"]
url = "http://x"
"#,
        );
        assert!(
            p[0].contains("c.toml:3:1: a step of type \"exec\" has no field `url`"),
            "{p:?}"
        );
    }

    #[test]
    fn shell_string_command_is_refused() {
        let p = problems(
            r#"[[pipeline]]
name = "p"
[[pipeline.step]]
type = "exec"
command = "rm -rf /tmp/x"
"#,
        );
        assert!(p[0].starts_with("c.toml:5:11: "), "{p:?}");
        assert!(p[0].contains("argv array"), "{p:?}");
    }

    #[test]
    fn template_errors_point_into_the_string() {
        let p = problems(
            "[[pipeline]]\nname = \"p\"\n[[pipeline.step]]\ntype = \"http\"\nurl = \"http://h/\"\nbody = '{\"a\": {{ tags.x | upper }}}'\n",
        );
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("c.toml:6:15: `body`: unknown template filter `upper`"),
            "{p:?}"
        );
    }

    #[test]
    fn empty_config_needs_a_pipeline() {
        let p = problems("");
        assert!(p[0].contains("at least one pipeline"), "{p:?}");
    }

    #[test]
    fn policy_and_status_parse() {
        let c = parse(
            r#"[[pipeline]]
name = "p"
policy = { on_success = "continue", on_failure = "continue", on_deadline = "abandon", deadline_margin = "2m" }
[[pipeline.step]]
type = "http"
method = "put"
url = "http://127.0.0.1/x"
expect_status = [204, "3xx", "400-404"]
"#,
        )
        .unwrap();
        let p = &c.pipelines[0];
        assert_eq!(p.policy.on_failure, LifecycleResult::Continue);
        assert_eq!(
            p.policy.on_deadline,
            DeadlinePolicy::Complete(LifecycleResult::Abandon)
        );
        assert_eq!(p.policy.deadline_margin, Some(Duration::from_secs(120)));
        let StepKind::Http(h) = &p.steps[0].kind else {
            panic!()
        };
        assert_eq!(h.method, reqwest::Method::PUT);
        assert!(
            h.expect_status.contains(204)
                && h.expect_status.contains(302)
                && h.expect_status.contains(404)
        );
        assert!(!h.expect_status.contains(200) && !h.expect_status.contains(405));
        assert_eq!(p.steps[0].retries, DEFAULT_RETRIES_NETWORK);
    }

    #[test]
    fn routing_first_match_wins() {
        let c = parse(
            r#"[[pipeline]]
name = "tagged"
match = { groups = ["web-*"], tags = { role = "api*" } }
[[pipeline.step]]
type = "exec"
command = ["true"]

[[pipeline]]
name = "web-terminate"
match = { groups = ["web-*"], hooks = ["drain"], transitions = ["terminating"] }
[[pipeline.step]]
type = "exec"
command = ["true"]

[[pipeline]]
name = "catch-all"
[[pipeline.step]]
type = "exec"
command = ["true"]
"#,
        )
        .unwrap();
        let ev = event(None);
        let mut tags = BTreeMap::new();
        assert!(c.needs_tags());
        assert_eq!(c.route(&ev, &tags).unwrap().name, "web-terminate");
        tags.insert("role".to_owned(), "api-v2".to_owned());
        assert_eq!(c.route(&ev, &tags).unwrap().name, "tagged");
        let mut other = ev.clone();
        other.group = "batch".into();
        assert_eq!(c.route(&other, &tags).unwrap().name, "catch-all");
        let mut launch = ev.clone();
        launch.transition = LifecycleTransition::Launching;
        tags.clear();
        assert_eq!(c.route(&launch, &tags).unwrap().name, "catch-all");
    }

    #[test]
    fn no_route() {
        let c = parse(
            r#"[[pipeline]]
name = "x"
match = { groups = ["other"] }
[[pipeline.step]]
type = "exec"
command = ["true"]
"#,
        )
        .unwrap();
        assert!(c.route(&event(None), &BTreeMap::new()).is_none());
    }

    #[test]
    fn env_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, MIN).unwrap();
        let c = load_with_env(&f, |k| match k {
            ENV_QUEUE_URL => Some("https://sqs.eu-west-1.amazonaws.com/1/q".into()),
            ENV_CONCURRENCY => Some("3".into()),
            ENV_VISIBILITY_TIMEOUT => Some("5m".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(
            c.source.queue_url.as_deref(),
            Some("https://sqs.eu-west-1.amazonaws.com/1/q")
        );
        assert_eq!(c.source.concurrency, 3);
        assert_eq!(c.source.visibility_timeout, Duration::from_secs(300));
        let e = load_with_env(&f, |k| (k == ENV_CONCURRENCY).then(|| "0".into())).unwrap_err();
        assert!(e[0].to_string().contains("LIFEHOOK_CONCURRENCY"), "{e:?}");
        let e = load_with_env(&dir.path().join("missing.toml"), |_| None).unwrap_err();
        assert!(e[0].to_string().contains("cannot read"), "{e:?}");
    }

    #[test]
    fn line_col_counts_chars() {
        assert_eq!(line_col("ab\ncé\nx", 0), (1, 1));
        assert_eq!(line_col("ab\ncé\nx", 3), (2, 1));
        assert_eq!(line_col("ab\ncé\nx", 7), (3, 1));
        assert_eq!(line_col("ab\ncé\nx", 6), (2, 3));
    }

    #[test]
    fn tags_are_needed_when_a_template_names_one() {
        let base = "[source]\nqueue_url = \"http://q\"\n[[pipeline]]\nname = \"p\"\n[[pipeline.step]]\ntype = \"http\"\nname = \"s\"\n";
        let with = parse(&format!(
            "{base}url = \"http://r/{{{{ tags.app | urlencode }}}}\"\n"
        ))
        .unwrap();
        assert!(with.needs_tags(), "a step template uses tags.app");
        let without = parse(&format!("{base}url = \"http://r/{{{{ instance_id }}}}\"\n")).unwrap();
        assert!(!without.needs_tags());
    }

    #[test]
    fn examples_are_valid() {
        for name in [
            "controller-minimal.toml",
            "controller-local.toml",
            "agent-collect-logs.toml",
            "demo-deregister.toml",
            "demo-launch-gate.toml",
            "scenario3-ami-and-target-groups.toml",
        ] {
            example_is_valid(name);
        }
    }

    fn example_is_valid(name: &str) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples")
            .join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        let c = Config::from_toml(&text, &path).unwrap_or_else(|p| {
            panic!(
                "{}",
                p.iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        });
        assert!(!c.pipelines.is_empty());
    }

    #[test]
    fn aws_and_file_steps_parse() {
        let c = parse(
            r#"[[pipeline]]
name = "p"
[[pipeline.step]]
type = "s3-fetch"
bucket = "{{ metadata.bucket }}"
key = "scripts/drain.sh"
path = "/usr/local/bin/drain-{{ instance_id }}.sh"
mode = "0755"
sha256 = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"
[[pipeline.step]]
type = "s3-upload"
bucket = "logs"
key = "logs/{{ group }}/{{ instance_id }}/{{ file_name }}"
files = ["/var/log/app/*.log", "/var/log/messages"]
if_missing = "fail"
[[pipeline.step]]
type = "ssm-command"
commands = ["systemctl stop app", "echo {{ instance_id }}"]
env = { APP = "{{ tags.app }}" }
interval = "500ms"
[[pipeline.step]]
type = "ecs-drain"
cluster = "prod"
interval = "2s"
stop_tasks = false
[[pipeline.step]]
type = "file"
path = "/etc/profile.d/lifehook.sh"
content = "export PATCHED={{ date }}\n"
mode = 0o600
[[pipeline.step]]
type = "signal"
stack = "web"
resource = "Group"
status = "failure"
[[pipeline.step]]
type = "tag"
tags = { patched = "{{ now | date }}" }
"#,
        )
        .unwrap_or_else(|p| panic!("{p:#?}"));
        let steps = &c.pipelines[0].steps;
        let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "s3-fetch-1",
                "s3-upload-2",
                "ssm-command-3",
                "ecs-drain-4",
                "file-5",
                "signal-6",
                "tag-7"
            ]
        );
        let StepKind::S3Fetch(f) = &steps[0].kind else {
            panic!()
        };
        assert_eq!(f.mode, Some(0o755));
        assert_eq!(
            f.sha256.as_deref(),
            Some("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
        assert_eq!(steps[0].retries, DEFAULT_RETRIES_NETWORK);
        let StepKind::S3Upload(u) = &steps[1].kind else {
            panic!()
        };
        assert_eq!(u.files.len(), 2);
        assert_eq!(u.if_missing, IfMissing::Fail);
        let StepKind::SsmCommand(s) = &steps[2].kind else {
            panic!()
        };
        assert_eq!(s.interval, Duration::from_millis(500));
        assert_eq!(steps[2].retries, DEFAULT_RETRIES_LOCAL);
        let StepKind::EcsDrain(d) = &steps[3].kind else {
            panic!()
        };
        assert!(!d.stop_tasks && d.cluster.is_some());
        let StepKind::File(fl) = &steps[4].kind else {
            panic!()
        };
        assert_eq!(fl.mode, 0o600);
        assert!(!steps[4].kind.is_aws() && steps[5].kind.is_aws());
        let StepKind::Signal(g) = &steps[5].kind else {
            panic!()
        };
        assert_eq!(g.status, SignalStatus::Failure);
        assert_eq!(g.unique_id.source(), "{{ instance_id }}");
        assert!(c.needs_tags(), "the ssm-command env names tags.app");
    }

    #[test]
    fn aws_and_file_step_problems_are_located() {
        let p = problems(
            r#"[[pipeline]]
name = "p"
[[pipeline.step]]
type = "s3-fetch"
bucket = "b"
path = "/tmp/x"
sha256 = "abc"
mode = 755
[[pipeline.step]]
type = "s3-upload"
bucket = "b"
key = "logs/{{ instance_id }}"
files = ["/var/log/*.log"]
if_missing = "maybe"
[[pipeline.step]]
type = "file"
path = "/tmp/{{ file_name }}"
content = "x"
[[pipeline.step]]
type = "signal"
stack = "s"
status = "DONE"
[[pipeline.step]]
type = "tag"
tags = { "aws:x" = "y" }
command = ["true"]
[[pipeline.step]]
type = "ssm-command"
commands = []
env = { "1BAD" = "x" }
[[pipeline.step]]
type = "ecs-drain"
url = "http://x"
"#,
        );
        let want = [
            "c.toml:3:1: a step of type \"s3-fetch\" needs `key`",
            "c.toml:7:10: `sha256` = \"abc\" is not a SHA-256 digest",
            "c.toml:8:8: `mode` must be octal permissions",
            "c.toml:12:7: `key` must contain `{{ file_name }}`",
            "c.toml:14:14: `if_missing` = \"maybe\": expected \"ok\" or \"fail\"",
            "c.toml:17:8: `path`: `{{ file_name }}` is only available in the `key` of an `s3-upload` step",
            "c.toml:19:1: a step of type \"signal\" needs `resource`",
            "c.toml:22:10: `status` = \"DONE\": expected \"SUCCESS\" or \"FAILURE\"",
            "c.toml:23:1: a step of type \"tag\" has no field `command`",
            "c.toml:23:1: `tags`: \"aws:x\": keys starting with `aws:` are reserved",
            "c.toml:29:12: `commands` is empty",
            "c.toml:27:1: `env`: \"1BAD\" is not a shell variable name",
            "c.toml:31:1: a step of type \"ecs-drain\" has no field `url`",
        ];
        for w in want {
            assert!(
                p.iter().any(|x| x.starts_with(w)),
                "missing {w:?} in {p:#?}"
            );
        }
        assert_eq!(p.len(), want.len(), "{p:#?}");
        // Unknown step types list the new ones.
        let p = problems("[[pipeline]]\nname = \"p\"\n[[pipeline.step]]\ntype = \"s3\"\n");
        assert!(
            p[0].contains("s3-fetch, s3-upload, ssm-command, ecs-drain, signal, tag"),
            "{p:?}"
        );
    }

    #[test]
    fn image_and_target_groups_steps_parse() {
        let c = parse(
            r#"[[pipeline]]
name = "p"
[[pipeline.step]]
type = "target-groups"
[[pipeline.step]]
type = "image"
name = "keep-ami"
only_if = "unexpected-scale-in"
image_name = "postmortem-{{ group }}-{{ instance_id }}"
description = "{{ instance_id }} of {{ group }}"
tags = { team = "{{ tags.team }}" }
interval = "50ms"
[[pipeline.step]]
type = "image"
no_reboot = false
[[pipeline.step]]
type = "target-groups"
target_group_arns = ["arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web/0123456789abcdef"]
port = 8080
timeout = "20m"
"#,
        )
        .unwrap_or_else(|p| panic!("{p:#?}"));
        let steps = &c.pipelines[0].steps;
        let StepKind::TargetGroups(t) = &steps[0].kind else {
            panic!()
        };
        assert!(t.target_group_arns.is_empty() && t.port.is_none());
        assert_eq!(t.interval, DEFAULT_TARGET_GROUPS_INTERVAL);
        assert_eq!(steps[0].timeout, DEFAULT_TARGET_GROUPS_TIMEOUT);
        assert_eq!(steps[0].retries, DEFAULT_RETRIES_NETWORK);
        assert_eq!(steps[0].name, "target-groups-1");
        let StepKind::Image(i) = &steps[1].kind else {
            panic!()
        };
        assert_eq!(steps[1].name, "keep-ami");
        assert_eq!(i.only_if, Some(ImageCondition::UnexpectedScaleIn));
        assert_eq!(i.marker_tag, DEFAULT_MARKER_TAG);
        assert!(i.no_reboot);
        assert_eq!(
            i.image_name.source(),
            "postmortem-{{ group }}-{{ instance_id }}"
        );
        assert_eq!(i.interval, Duration::from_millis(50));
        assert_eq!(steps[1].timeout, DEFAULT_IMAGE_TIMEOUT);
        let StepKind::Image(d) = &steps[2].kind else {
            panic!()
        };
        assert!(!d.no_reboot && d.only_if.is_none());
        assert_eq!(d.image_name.source(), DEFAULT_IMAGE_NAME);
        let StepKind::TargetGroups(t) = &steps[3].kind else {
            panic!()
        };
        assert_eq!(t.target_group_arns.len(), 1);
        assert_eq!(t.port, Some(8080));
        assert_eq!(steps[3].timeout, Duration::from_secs(1200));
        assert!(steps[1].kind.is_aws() && steps[3].kind.is_aws());
        assert!(c.needs_tags(), "the image tags name tags.team");
    }

    #[test]
    fn image_and_target_groups_problems_are_located() {
        let p = problems(
            r#"[[pipeline]]
name = "p"
[[pipeline.step]]
type = "image"
only_if = "always"
image_name = "ab"
tags = { "aws:x" = "y", "lifehook:group" = "z" }
url = "http://x"
[[pipeline.step]]
type = "image"
marker_tag = "deploying"
image_name = "{{ instanceid }}"
[[pipeline.step]]
type = "target-groups"
target_group_arns = ["web", "arn:aws:elasticloadbalancing:us-east-1:0:loadbalancer/app/x/1"]
port = 70000
[[pipeline.step]]
type = "target-groups"
target_group_arns = []
tags = { a = "b" }
"#,
        );
        let want = [
            "c.toml:3:1: a step of type \"image\" has no field `url`",
            "c.toml:3:1: `tags`: \"aws:x\": keys starting with `aws:` are reserved",
            "c.toml:3:1: `tags`: \"lifehook:group\" is set by lifehook on every image",
            "c.toml:5:11: `only_if` = \"always\": expected \"unexpected-scale-in\"",
            "c.toml:6:14: `image_name` = \"ab\": an AMI name has 3 to 128 characters",
            "c.toml:11:14: `marker_tag` applies only with `only_if = \"unexpected-scale-in\"`",
            "c.toml:12:15: `image_name`: unknown template variable `instanceid`",
            "c.toml:15:22: `target_group_arns`: \"web\" is not a target group ARN",
            "c.toml:15:29: `target_group_arns`: \"arn:aws:elasticloadbalancing:us-east-1:0:loadbalancer/app/x/1\" is not a target group ARN",
            "c.toml:16:8: `port` = 70000 is not a port",
            "c.toml:17:1: a step of type \"target-groups\" has no field `tags`",
            "c.toml:19:21: `target_group_arns` is empty",
        ];
        for w in want {
            assert!(
                p.iter().any(|x| x.starts_with(w)),
                "missing {w:?} in {p:#?}"
            );
        }
        assert_eq!(p.len(), want.len(), "{p:#?}");
    }

    proptest::proptest! {
        #[test]
        fn parse_duration_never_panics(s in "\\PC{0,20}") {
            let _ = parse_duration(&s);
        }

        #[test]
        fn duration_round_trips(secs in 0u64..10_000_000) {
            let d = Duration::from_secs(secs);
            proptest::prop_assert_eq!(parse_duration(&format_duration(d)).unwrap(), d);
        }

        #[test]
        fn config_parser_never_panics(s in "\\PC{0,200}") {
            let _ = Config::from_toml(&s, Path::new("f.toml"));
        }
    }
}
