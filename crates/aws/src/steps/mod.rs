//! The step types that call AWS APIs, run for `lifehook-core`'s pipeline runner through
//! [`lifehook_core::step::ExternalSteps`]:
//!
//! - [`s3_fetch`] `s3-fetch`: GetObject to a local file, atomically, with an optional
//!   SHA-256 check.
//! - [`s3_upload`] `s3-upload`: PutObject of files and globs under a templated key.
//! - [`ssm_command`] `ssm-command`: SendCommand `AWS-RunShellScript` on the action's
//!   instance, then GetCommandInvocation until it ends.
//! - [`ecs_drain`] `ecs-drain`: the instance's container instance DRAINING, then wait until
//!   no task runs on it.
//! - [`signal`] `signal`: CloudFormation SignalResource.
//! - [`tag`] `tag`: EC2 CreateTags on the action's instance.
//! - [`image`] `image`: EC2 CreateImage of the action's instance (only for an unexpected
//!   scale-in with `only_if`), then DescribeImages until it is available.
//! - [`target_groups`] `target-groups`: ELBv2 registration on launch (until healthy) and
//!   deregistration on termination (until drained).
//!
//! Every step is safe to run again (after a crash, a retry or a redelivery) and returns
//! within the attempt's `limit`. API errors name the step, the call and AWS's error code
//! and message; throttling, 5xx and transport errors are retryable, other errors fatal.
//!
//! Talks to: S3, SSM, ECS, CloudFormation, EC2, Auto Scaling and ELBv2, through the shared
//! [`Clients`].
//!
//! ```no_run
//! # async fn f(clients: lifehook_aws::Clients) {
//! use std::sync::Arc;
//! let runner = lifehook_core::Runner::new()
//!     .with_external(Arc::new(lifehook_aws::steps::AwsSteps::new(&clients)));
//! # }
//! ```

pub mod ecs_drain;
pub mod image;
pub mod s3_fetch;
pub mod s3_upload;
pub mod signal;
pub mod ssm_command;
pub mod tag;
pub mod target_groups;

use std::time::Duration;

// The error types are the same in every SDK crate (re-exports of smithy's).
use aws_sdk_autoscaling::error::{ProvideErrorMetadata, SdkError};
use lifehook_core::config::{Step, StepKind, format_duration};
use lifehook_core::step::{AttemptFuture, ExternalSteps, Failure, StepEnv, Success};
use lifehook_core::template::Template;

use crate::Clients;
use crate::lifecycle::{ErrorClass, HasStatus, classify_sdk, describe_sdk};

/// The AWS step types, over clients shared with the rest of the process.
#[derive(Clone, Debug)]
pub struct AwsSteps {
    s3: aws_sdk_s3::Client,
    ssm: aws_sdk_ssm::Client,
    ecs: aws_sdk_ecs::Client,
    ec2: aws_sdk_ec2::Client,
    cloudformation: aws_sdk_cloudformation::Client,
    autoscaling: aws_sdk_autoscaling::Client,
    elbv2: aws_sdk_elasticloadbalancingv2::Client,
}

impl AwsSteps {
    /// Clients are cheap handles; nothing is called until a step runs.
    pub fn new(clients: &Clients) -> Self {
        AwsSteps {
            s3: clients.s3().clone(),
            ssm: clients.ssm().clone(),
            ecs: clients.ecs().clone(),
            ec2: clients.ec2().clone(),
            cloudformation: clients.cloudformation().clone(),
            autoscaling: clients.autoscaling().clone(),
            elbv2: clients.elbv2().clone(),
        }
    }
}

/// The step runner of the controller and the agent: the local step types plus these.
pub fn runner(clients: &Clients) -> lifehook_core::pipeline::Runner {
    lifehook_core::pipeline::Runner::new()
        .with_external(std::sync::Arc::new(AwsSteps::new(clients)))
}

impl ExternalSteps for AwsSteps {
    fn attempt<'a>(
        &'a self,
        step: &'a Step,
        env: &'a StepEnv<'a>,
        limit: Duration,
    ) -> AttemptFuture<'a> {
        Box::pin(async move {
            // Steps that wait (ssm-command, ecs-drain) stop on their own a little before
            // `limit` to clean up; this bound holds for every step whatever happens.
            let deadline = tokio::time::Instant::now() + work_time(limit);
            let cx = Cx {
                step,
                env,
                deadline,
                setback: std::sync::Mutex::new(None),
            };
            let run = async {
                match &step.kind {
                    StepKind::S3Fetch(f) => s3_fetch::run(&self.s3, &cx, f).await,
                    StepKind::S3Upload(u) => s3_upload::run(&self.s3, &cx, u).await,
                    StepKind::SsmCommand(c) => ssm_command::run(&self.ssm, &cx, c).await,
                    StepKind::EcsDrain(d) => ecs_drain::run(&self.ecs, &cx, d).await,
                    StepKind::Signal(g) => signal::run(&self.cloudformation, &cx, g).await,
                    StepKind::Tag(t) => tag::run(&self.ec2, &cx, t).await,
                    StepKind::Image(i) => image::run(&self.ec2, &self.autoscaling, &cx, i).await,
                    StepKind::TargetGroups(t) => {
                        target_groups::run(&self.elbv2, &self.autoscaling, &cx, t).await
                    }
                    StepKind::Exec(_)
                    | StepKind::Http(_)
                    | StepKind::Probe(_)
                    | StepKind::Notify(_)
                    | StepKind::File(_)
                    | StepKind::Wait(_) => Err(Failure::fatal(format!(
                        "step `{}`: type {} is not an AWS step",
                        step.name,
                        step.kind.type_name()
                    ))),
                }
            };
            match tokio::time::timeout(limit, run).await {
                Ok(r) => r,
                Err(_) => {
                    // What the step kept meeting while it waited, if anything.
                    let last = cx.setback.lock().ok().and_then(|mut s| s.take());
                    let last = last
                        .map(|m| format!("; last setback: {m}"))
                        .unwrap_or_default();
                    Err(Failure::timeout(format!(
                        "{} `{}`: not done within {}{last}",
                        step.kind.type_name(),
                        step.name,
                        format_duration(limit)
                    )))
                }
            }
        })
    }
}

/// The part of `limit` a step may spend before it must wrap up (cancel its command, say
/// what is left): `limit` less a tenth of it, at most one second.
fn work_time(limit: Duration) -> Duration {
    limit.saturating_sub((limit / 10).min(Duration::from_secs(1)))
}

/// One attempt of one step.
pub(crate) struct Cx<'a> {
    pub step: &'a Step,
    pub env: &'a StepEnv<'a>,
    /// When the step must stop waiting (a little before its `limit`).
    pub deadline: tokio::time::Instant,
    /// The last transient error the step waited through (a throttled poll ...), told if
    /// the attempt runs out of time.
    setback: std::sync::Mutex<Option<String>>,
}

impl Cx<'_> {
    /// `s3-fetch `name``, the prefix of every message.
    pub(crate) fn who(&self) -> String {
        format!("{} `{}`", self.step.kind.type_name(), self.step.name)
    }

    pub(crate) fn render(&self, t: &Template) -> Result<String, Failure> {
        t.render(&self.env.template)
            .map_err(|e| Failure::fatal(format!("{}: {e}", self.who())))
    }

    /// The value of tag `key` rendered from `t`, within EC2's 256 characters.
    pub(crate) fn render_tag_value(&self, key: &str, t: &Template) -> Result<String, Failure> {
        let value = self.render(t)?;
        let len = value.chars().count();
        if len > 256 {
            return Err(Failure::fatal(format!(
                "{}: the value of tag `{key}` is {len} characters long; EC2 allows 256",
                self.who()
            )));
        }
        Ok(value)
    }

    /// The action's instance id.
    pub(crate) fn instance_id(&self) -> &str {
        &self.env.template.event.instance_id
    }

    /// A failed AWS call, classified: throttling, 5xx and transport errors are
    /// retryable; the rest is fatal.
    pub(crate) fn api<E, R>(&self, call: &str, err: &SdkError<E, R>) -> Failure
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: HasStatus + std::fmt::Debug,
    {
        let message = format!("{}: {call}: {}", self.who(), describe_sdk(err));
        match classify_sdk(err) {
            ErrorClass::Retryable => Failure::retry(message),
            ErrorClass::Fatal | ErrorClass::AlreadyResolved => Failure::fatal(message),
        }
    }

    /// Logs a transient error the step will wait through, and keeps it for the timeout's
    /// message.
    pub(crate) fn setback(&self, what: &str, message: &str) {
        tracing::warn!(step = %self.step.name, error = %message, "{what} failed; trying again");
        if let Ok(mut s) = self.setback.lock() {
            *s = Some(message.to_owned());
        }
    }

    /// Time left before the deadline.
    pub(crate) fn left(&self) -> Duration {
        self.deadline
            .saturating_duration_since(tokio::time::Instant::now())
    }

    /// Sleeps `interval` (real time), or returns `false` at once when the deadline
    /// would pass first.
    pub(crate) async fn pause(&self, interval: Duration) -> bool {
        if interval >= self.left() {
            return false;
        }
        tokio::time::sleep(interval).await;
        true
    }

    pub(crate) fn timeout(&self, what: impl std::fmt::Display) -> Failure {
        Failure::timeout(format!("{}: {what}", self.who()))
    }
}

/// The error code of a service error, if it is one.
pub(crate) fn error_code<E, R>(err: &SdkError<E, R>) -> Option<&str>
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::ServiceError(ctx) => ctx.err().code(),
        _ => None,
    }
}

/// The error message of a service error, if it is one.
pub(crate) fn error_message<E, R>(err: &SdkError<E, R>) -> Option<&str>
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::ServiceError(ctx) => ctx.err().message(),
        _ => None,
    }
}

/// Lowercase hex of bytes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

pub(crate) fn done(detail: impl Into<String>) -> Success {
    Success::Done {
        detail: detail.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_time_keeps_room_to_clean_up() {
        assert_eq!(work_time(Duration::from_secs(60)), Duration::from_secs(59));
        assert_eq!(
            work_time(Duration::from_millis(500)),
            Duration::from_millis(450)
        );
        assert_eq!(work_time(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn hex_is_lowercase() {
        assert_eq!(hex(&[0, 0xab, 0x10]), "00ab10");
    }
}
