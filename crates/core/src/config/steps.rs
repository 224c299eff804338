//! The model of every step type.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use super::{DEFAULT_RETRIES_LOCAL, DEFAULT_RETRIES_NETWORK};
use crate::template::Template;

/// The type of a step: its `type = "..."` in the configuration.
///
/// Every table about step types is an exhaustive `match` on this enum, so that a new
/// variant is a compile error wherever it must be handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepType {
    Exec,
    Http,
    Probe,
    Notify,
    File,
    Wait,
    S3Fetch,
    S3Upload,
    SsmCommand,
    EcsDrain,
    Signal,
    Tag,
    Image,
    TargetGroups,
}

impl StepType {
    /// Every step type, in declaration order (the order messages list them).
    pub const ALL: [StepType; 14] = [
        StepType::Exec,
        StepType::Http,
        StepType::Probe,
        StepType::Notify,
        StepType::File,
        StepType::Wait,
        StepType::S3Fetch,
        StepType::S3Upload,
        StepType::SsmCommand,
        StepType::EcsDrain,
        StepType::Signal,
        StepType::Tag,
        StepType::Image,
        StepType::TargetGroups,
    ];

    /// The name written in `type = "..."`.
    pub fn as_str(self) -> &'static str {
        match self {
            StepType::Exec => "exec",
            StepType::Http => "http",
            StepType::Probe => "probe",
            StepType::Notify => "notify",
            StepType::File => "file",
            StepType::Wait => "wait",
            StepType::S3Fetch => "s3-fetch",
            StepType::S3Upload => "s3-upload",
            StepType::SsmCommand => "ssm-command",
            StepType::EcsDrain => "ecs-drain",
            StepType::Signal => "signal",
            StepType::Tag => "tag",
            StepType::Image => "image",
            StepType::TargetGroups => "target-groups",
        }
    }

    /// Whether steps of this type call AWS APIs (and so need `step::ExternalSteps`).
    pub fn is_aws(self) -> bool {
        match self {
            StepType::Exec
            | StepType::Http
            | StepType::Probe
            | StepType::Notify
            | StepType::File
            | StepType::Wait => false,
            StepType::S3Fetch
            | StepType::S3Upload
            | StepType::SsmCommand
            | StepType::EcsDrain
            | StepType::Signal
            | StepType::Tag
            | StepType::Image
            | StepType::TargetGroups => true,
        }
    }

    /// Retries when the step gives none: steps that talk over the network retry by default,
    /// local ones (and `ssm-command`, whose script may not be safe to run twice) do not.
    pub(crate) fn default_retries(self) -> u32 {
        match self {
            StepType::Http
            | StepType::Notify
            | StepType::S3Fetch
            | StepType::S3Upload
            | StepType::EcsDrain
            | StepType::Signal
            | StepType::Tag
            | StepType::Image
            | StepType::TargetGroups => DEFAULT_RETRIES_NETWORK,
            StepType::Exec
            | StepType::Probe
            | StepType::File
            | StepType::Wait
            | StepType::SsmCommand => DEFAULT_RETRIES_LOCAL,
        }
    }

    /// Every key a step of this type takes: the common ones, then [`StepType::fields`] (and,
    /// for `http`, the keys of a preset).
    pub(crate) fn keys(self) -> Vec<&'static str> {
        let mut keys = vec!["type", "name", "timeout", "retries", "backoff"];
        keys.extend(self.fields());
        if self == StepType::Http {
            keys.extend(["preset", "registry_url", "app", "instance"]);
        }
        keys
    }

    /// The keys a step of this type takes besides `type`, `name`, `timeout`, `retries` and
    /// `backoff`.
    pub(crate) fn fields(self) -> &'static [&'static str] {
        match self {
            StepType::Exec => &[
                "command",
                "env",
                "working_dir",
                "output_limit",
                "reboot_exit_code",
            ],
            StepType::Http => &["method", "url", "headers", "body", "expect_status"],
            StepType::Probe => &[
                "command",
                "env",
                "working_dir",
                "url",
                "headers",
                "expect_status",
                "interval",
            ],
            StepType::Notify => &["url", "headers", "format", "message"],
            StepType::File => &["path", "content", "mode"],
            StepType::S3Fetch => &["bucket", "key", "path", "mode", "sha256"],
            StepType::S3Upload => &["bucket", "key", "files", "if_missing"],
            StepType::SsmCommand => &["commands", "env", "working_dir", "interval"],
            StepType::EcsDrain => &["cluster", "interval", "stop_tasks"],
            StepType::Signal => &["stack", "resource", "unique_id", "status"],
            StepType::Wait => &["duration"],
            StepType::Image => &[
                "image_name",
                "description",
                "tags",
                "no_reboot",
                "interval",
                "only_if",
                "marker_tag",
            ],
            StepType::TargetGroups => &["target_group_arns", "port", "interval"],
            StepType::Tag => &["tags"],
        }
    }
}

// `ALL` lists the variants in declaration order, each once.
const _: () = {
    let mut i = 0;
    while i < StepType::ALL.len() {
        assert!(StepType::ALL[i] as usize == i);
        i += 1;
    }
};

impl fmt::Display for StepType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `type` that names no step type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownStepType(pub String);

impl fmt::Display for UnknownStepType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let known: Vec<&str> = StepType::ALL.iter().map(|t| t.as_str()).collect();
        write!(f, "unknown step type {:?}", self.0)?;
        if let Some(s) = super::suggest::did_you_mean(&self.0, &known) {
            write!(f, "; did you mean {s:?}?")?;
        }
        write!(f, " (step types: {})", known.join(", "))
    }
}

impl std::error::Error for UnknownStepType {}

impl FromStr for StepType {
    type Err = UnknownStepType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StepType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownStepType(s.to_owned()))
    }
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
    /// The type of the step.
    pub fn step_type(&self) -> StepType {
        match self {
            StepKind::Exec(_) => StepType::Exec,
            StepKind::Http(_) => StepType::Http,
            StepKind::Probe(_) => StepType::Probe,
            StepKind::Notify(_) => StepType::Notify,
            StepKind::File(_) => StepType::File,
            StepKind::Wait(_) => StepType::Wait,
            StepKind::S3Fetch(_) => StepType::S3Fetch,
            StepKind::S3Upload(_) => StepType::S3Upload,
            StepKind::SsmCommand(_) => StepType::SsmCommand,
            StepKind::EcsDrain(_) => StepType::EcsDrain,
            StepKind::Signal(_) => StepType::Signal,
            StepKind::Tag(_) => StepType::Tag,
            StepKind::Image(_) => StepType::Image,
            StepKind::TargetGroups(_) => StepType::TargetGroups,
        }
    }

    /// The name of the step's type, as written in `type = "..."`.
    pub fn type_name(&self) -> &'static str {
        self.step_type().as_str()
    }

    /// Whether the step calls AWS APIs (and so needs `step::ExternalSteps`).
    pub fn is_aws(&self) -> bool {
        self.step_type().is_aws()
    }

    /// Every template of the step.
    pub(crate) fn templates(&self) -> Vec<&Template> {
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
    /// Added to the tags lifehook always sets ([`IMAGE_TAG_INSTANCE`](super::IMAGE_TAG_INSTANCE), [`IMAGE_TAG_GROUP`](super::IMAGE_TAG_GROUP),
    /// [`IMAGE_TAG_TOKEN`](super::IMAGE_TAG_TOKEN)).
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

    pub(super) fn parse_one(s: &str) -> Option<(u16, u16)> {
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
