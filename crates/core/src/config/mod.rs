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
//!
//! Layout: this module holds the typed model ([`Config`] and its sections) and [`load`];
//! `steps` the model of every step type and [`StepType`]; `defaults` the named defaults;
//! `env` the environment overrides; `raw` the file as written (serde, with spans);
//! `validate` the checks that turn it into the model (`validate/step.rs` and
//! `validate/aws_steps.rs` per step type); `presets` the service-registry presets;
//! `problem` and `duration` the small types they share.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use lifehook_model::{LifecycleEvent, LifecycleResult, LifecycleTransition};

mod defaults;
mod duration;
mod env;
pub mod logging;
mod presets;
mod problem;
mod raw;
mod steps;
mod suggest;
mod validate;

#[cfg(test)]
mod tests;

pub use defaults::*;
pub(crate) use duration::HumanDuration;
pub use duration::{format_duration, parse_duration};
pub use env::{ENV_CONCURRENCY, ENV_IMDS, ENV_QUEUE_URL, ENV_VISIBILITY_TIMEOUT};
pub use problem::Problem;
pub(crate) use problem::line_col;
pub use steps::*;

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
    pub policy: CompletionPolicy,
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

/// What the outcome of a pipeline means for the lifecycle action (`[pipeline.policy]`);
/// not to be confused with the IAM policy of [`crate::policy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompletionPolicy {
    pub on_success: LifecycleResult,
    pub on_failure: LifecycleResult,
    pub on_deadline: DeadlinePolicy,
    /// Overrides `[keepalive] deadline_margin` for this pipeline.
    pub deadline_margin: Option<Duration>,
}

impl Default for CompletionPolicy {
    fn default() -> Self {
        CompletionPolicy {
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
        validate::from_toml(text, file)
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
    let file = std::fs::File::open(path).map_err(|e| {
        vec![Problem {
            file: path.display().to_string(),
            line: None,
            col: None,
            message: format!("cannot read the configuration: {e}"),
        }]
    })?;
    load_from_reader_with_env(file, path, env)
}

/// [`load`] from a reader (standard input for `lifehook check -`); `name` names it in
/// problems ([`STDIN_NAME`] for standard input). Reads at most [`MAX_CONFIG_BYTES`].
pub fn load_from_reader(reader: impl Read, name: &Path) -> Result<Config, Vec<Problem>> {
    load_from_reader_with_env(reader, name, |k| std::env::var(k).ok())
}

/// [`load_from_reader`] with an injectable environment.
pub fn load_from_reader_with_env(
    reader: impl Read,
    name: &Path,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Config, Vec<Problem>> {
    let text = read_text(reader, name)?;
    let mut cfg = Config::from_toml(&text, name)?;
    env::apply_env(&mut cfg, env)?;
    Ok(cfg)
}

/// Reads at most [`MAX_CONFIG_BYTES`] (one more, to tell a larger input) and checks that it
/// is text: UTF-8 without NUL bytes, else a problem at the first bad byte.
fn read_text(reader: impl Read, name: &Path) -> Result<String, Vec<Problem>> {
    let problem = |line: Option<usize>, col: Option<usize>, message: String| {
        vec![Problem {
            file: name.display().to_string(),
            line,
            col,
            message,
        }]
    };
    let mut buf = Vec::new();
    let limit = u64::try_from(MAX_CONFIG_BYTES).unwrap_or(u64::MAX);
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|e| problem(None, None, format!("cannot read the configuration: {e}")))?;
    if buf.len() > MAX_CONFIG_BYTES {
        return Err(problem(
            None,
            None,
            format!(
                "configuration larger than {} MiB: not read (is it the right file?)",
                MAX_CONFIG_BYTES / (1024 * 1024)
            ),
        ));
    }
    let nul = buf.iter().position(|b| *b == 0);
    let text = match String::from_utf8(buf) {
        Ok(t) if nul.is_none() => return Ok(t),
        Ok(t) => t.into_bytes(),
        Err(e) => e.into_bytes(),
    };
    let utf8_end = std::str::from_utf8(&text).map_or_else(|e| e.valid_up_to(), |_| text.len());
    let bad = nul.map_or(utf8_end, |n| n.min(utf8_end));
    let before = String::from_utf8_lossy(&text[..bad]);
    let (line, col) = line_col(&before, bad);
    let what = if nul == Some(bad) {
        "a NUL byte".to_owned()
    } else {
        format!("byte 0x{:02x}, not UTF-8", text[bad])
    };
    Err(problem(
        Some(line),
        Some(col),
        format!("not a text file: {what} at byte offset {bad}"),
    ))
}
