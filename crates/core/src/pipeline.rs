//! The pipeline runner: steps in order, retries with backoff, the action's deadline, and
//! the completion policy.
//!
//! The runner does not heartbeat and does not call Auto Scaling: the caller (the AWS
//! runtime) runs the heartbeat loop of [`crate::keepalive`] next to [`Runner::run`] and
//! turns the returned [`Decision`] into `CompleteLifecycleAction` (or into nothing, for
//! [`Decision::Hold`]).
//!
//! Time: each attempt is bounded by the step's `timeout` and by the action's *work
//! deadline* (global deadline − `deadline_margin`). Running out of the step's own timeout is
//! a failure (retried if retries remain); reaching the work deadline stops the pipeline and
//! applies `on_deadline`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use lifehook_model::{LifecycleEvent, LifecycleResult};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{DEFAULT_DEADLINE_MARGIN, DeadlinePolicy, MAX_BACKOFF, Pipeline, Step};
use crate::step::{self, Failure, StepEnv, Success};
use crate::template::TemplateContext;

pub use crate::clock::{Clock, SystemClock};

/// Everything the runner knows about one lifecycle action.
#[derive(Debug, Clone)]
pub struct ActionContext {
    pub event: LifecycleEvent,
    /// Instance (or group) tags, for templates; empty when unknown.
    pub tags: BTreeMap<String, String>,
    pub region: Option<String>,
    /// The hook's `HeartbeatTimeout`.
    pub heartbeat_timeout: Duration,
    /// When the instance entered the wait state (the message's `Time`, else receipt).
    pub started_at: SystemTime,
    /// `started_at + min(48 h, 100 × HeartbeatTimeout)`.
    pub global_deadline: SystemTime,
    /// `[keepalive] deadline_margin`; a pipeline's `policy.deadline_margin` overrides it.
    pub deadline_margin: Duration,
    pub clock: Arc<dyn Clock>,
}

impl ActionContext {
    /// A context with the global deadline computed from the heartbeat timeout, the
    /// default margin, no tags and the system clock.
    pub fn new(event: LifecycleEvent, heartbeat_timeout: Duration, started_at: SystemTime) -> Self {
        let global = lifehook_model::global_timeout_secs(heartbeat_timeout.as_secs());
        ActionContext {
            event,
            tags: BTreeMap::new(),
            region: None,
            heartbeat_timeout,
            started_at,
            global_deadline: started_at + Duration::from_secs(global),
            deadline_margin: DEFAULT_DEADLINE_MARGIN,
            clock: Arc::new(SystemClock),
        }
    }

    /// The heartbeat plan of this action under `[keepalive]` (the caller heartbeats while
    /// [`Runner::run`] works; see [`crate::keepalive`]).
    pub fn keepalive_plan(&self, k: &crate::config::Keepalive) -> crate::keepalive::KeepalivePlan {
        let mut plan = crate::keepalive::KeepalivePlan::new(k, self.heartbeat_timeout);
        plan.deadline_margin = self.deadline_margin;
        plan
    }

    /// The start of the wait from the event's `Time`, if it has a parseable one.
    pub fn event_time(event: &LifecycleEvent) -> Option<SystemTime> {
        let t = chrono::DateTime::parse_from_rfc3339(event.time.as_deref()?).ok()?;
        Some(SystemTime::from(t.with_timezone(&chrono::Utc)))
    }
}

/// What the caller should do with the lifecycle action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Call `CompleteLifecycleAction` with this result.
    Complete(LifecycleResult),
    /// Do not complete: keep heartbeating until the global deadline and let the hook's
    /// DefaultResult apply (`on_deadline = "hold"`).
    Hold,
    /// A step asked for a reboot (its `reboot_exit_code`): persist progress, reboot, then
    /// [`Runner::run_from`] `resume_from` after boot.
    Reboot { resume_from: usize },
    /// Cancelled (shutdown): do not complete; the action is left for a restart or another
    /// replica, which may resume at `resume_from` (steps are safe to run twice).
    Interrupted { resume_from: usize },
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Decision::Complete(r) => write!(f, "complete with {r}"),
            Decision::Hold => f.write_str("hold until the hook's DefaultResult applies"),
            Decision::Reboot { resume_from } => {
                write!(f, "reboot, then resume at step {resume_from}")
            }
            Decision::Interrupted { resume_from } => {
                write!(f, "interrupted; resume at step {resume_from}")
            }
        }
    }
}

/// How one step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepStatus {
    Succeeded,
    Failed,
    /// The action's work deadline arrived before the step finished.
    DeadlineReached,
    RebootRequested,
    Cancelled,
}

impl StepStatus {
    /// The name in logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Succeeded => "succeeded",
            StepStatus::Failed => "failed",
            StepStatus::DeadlineReached => "deadline",
            StepStatus::RebootRequested => "reboot",
            StepStatus::Cancelled => "cancelled",
        }
    }
}

/// At most this many characters of a step's output go into its log line.
pub const OUTPUT_EXCERPT: usize = 512;

/// The end of a step's output, on one line: its last [`OUTPUT_EXCERPT`] characters
/// (where the error usually is), marked `…` when cut.
pub fn excerpt(output: &str) -> String {
    let one_line = output.trim().replace('\n', "⏎");
    let n = one_line.chars().count();
    if n <= OUTPUT_EXCERPT {
        return one_line;
    }
    let tail: String = one_line.chars().skip(n - OUTPUT_EXCERPT).collect();
    format!("…{tail}")
}

/// The one log line of a step, when it ends: a warning when it failed or ran out of time,
/// with the end of what it printed; `debug` when it succeeded (the handler logs one line
/// per action, and a line per step is a large share of the CPU at high rates).
fn log_step(pipeline: &str, report: &StepReport) {
    macro_rules! step_finished {
        ($level:expr) => {
            tracing::event!(
                $level,
                pipeline,
                step = %report.name,
                step_type = report.step_type,
                status = report.status.as_str(),
                attempts = report.attempts,
                duration_ms = u64::try_from(report.duration.as_millis()).unwrap_or(u64::MAX),
                error = report.error.as_deref().unwrap_or(""),
                output = %report.detail.as_deref().map(excerpt).unwrap_or_default(),
                "step finished"
            )
        };
    }
    match report.status {
        StepStatus::Succeeded => step_finished!(tracing::Level::DEBUG),
        StepStatus::Failed | StepStatus::DeadlineReached => step_finished!(tracing::Level::WARN),
        StepStatus::RebootRequested | StepStatus::Cancelled => {
            step_finished!(tracing::Level::INFO)
        }
    }
}

/// The record of one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepReport {
    pub index: usize,
    pub name: String,
    pub step_type: &'static str,
    pub status: StepStatus,
    pub attempts: u32,
    pub duration: Duration,
    /// The last error, if the step did not succeed at the first attempt.
    pub error: Option<String>,
    /// Captured output (exec) or a short description (http).
    pub detail: Option<String>,
}

/// The result of running a pipeline for one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub pipeline: String,
    pub steps: Vec<StepReport>,
    pub decision: Decision,
}

/// Progress, for logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    StepStarted {
        index: usize,
        name: String,
    },
    AttemptFailed {
        index: usize,
        name: String,
        attempt: u32,
        error: String,
        retry_in: Option<Duration>,
    },
    StepFinished(StepReport),
    Decided(Decision),
}

/// Runs pipelines. Cheap to clone; share one per process (it holds the HTTP client pool).
#[derive(Clone, Default)]
pub struct Runner {
    http: reqwest::Client,
    progress: Option<mpsc::UnboundedSender<Progress>>,
    external: Option<Arc<dyn step::ExternalSteps>>,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("external", &self.external.is_some())
            .finish_non_exhaustive()
    }
}

impl Runner {
    /// A runner with a default HTTP client (honours `HTTPS_PROXY`/`NO_PROXY`).
    pub fn new() -> Self {
        Runner::default()
    }

    /// A runner with the given HTTP client.
    pub fn with_client(http: reqwest::Client) -> Self {
        Runner {
            http,
            progress: None,
            external: None,
        }
    }

    /// Runs the step types that call AWS APIs with `external`.
    pub fn with_external(mut self, external: Arc<dyn step::ExternalSteps>) -> Self {
        self.external = Some(external);
        self
    }

    /// Sends [`Progress`] events to `tx` (dropped silently when the receiver is gone).
    pub fn with_progress(mut self, tx: mpsc::UnboundedSender<Progress>) -> Self {
        self.progress = Some(tx);
        self
    }

    /// Sends the event `p` builds, building it only when someone listens.
    fn emit(&self, p: impl FnOnce() -> Progress) {
        if let Some(tx) = &self.progress {
            let _ = tx.send(p());
        }
    }

    /// Runs every step of `pipeline` for `ctx`.
    pub async fn run(
        &self,
        pipeline: &Pipeline,
        ctx: &ActionContext,
        cancel: &CancellationToken,
    ) -> Outcome {
        self.run_from(pipeline, ctx, 0, cancel).await
    }

    /// Runs the steps of `pipeline` from `start` (after a reboot or a restart).
    pub async fn run_from(
        &self,
        pipeline: &Pipeline,
        ctx: &ActionContext,
        start: usize,
        cancel: &CancellationToken,
    ) -> Outcome {
        let margin = pipeline
            .policy
            .deadline_margin
            .unwrap_or(ctx.deadline_margin);
        let work_deadline = ctx
            .global_deadline
            .checked_sub(margin)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let mut reports = Vec::new();
        let mut decision = Decision::Complete(pipeline.policy.on_success);
        for (index, s) in pipeline.steps.iter().enumerate().skip(start) {
            self.emit(|| Progress::StepStarted {
                index,
                name: s.name.clone(),
            });
            let report = self
                .run_step(pipeline, index, s, ctx, work_deadline, cancel)
                .await;
            let status = report.status;
            log_step(&pipeline.name, &report);
            self.emit(|| Progress::StepFinished(report.clone()));
            reports.push(report);
            let stop = match status {
                StepStatus::Succeeded => None,
                StepStatus::Failed => Some(Decision::Complete(pipeline.policy.on_failure)),
                StepStatus::DeadlineReached => Some(match pipeline.policy.on_deadline {
                    DeadlinePolicy::Complete(r) => Decision::Complete(r),
                    DeadlinePolicy::Hold => Decision::Hold,
                }),
                StepStatus::RebootRequested => Some(Decision::Reboot {
                    resume_from: index + 1,
                }),
                StepStatus::Cancelled => Some(Decision::Interrupted { resume_from: index }),
            };
            if let Some(d) = stop {
                decision = d;
                break;
            }
        }
        self.emit(|| Progress::Decided(decision));
        Outcome {
            pipeline: pipeline.name.clone(),
            steps: reports,
            decision,
        }
    }

    async fn run_step(
        &self,
        pipeline: &Pipeline,
        index: usize,
        s: &Step,
        ctx: &ActionContext,
        work_deadline: SystemTime,
        cancel: &CancellationToken,
    ) -> StepReport {
        let started = tokio::time::Instant::now();
        let mut report = StepReport {
            index,
            name: s.name.clone(),
            step_type: s.kind.type_name(),
            status: StepStatus::Failed,
            attempts: 0,
            duration: Duration::ZERO,
            error: None,
            detail: None,
        };
        let env = StepEnv {
            template: TemplateContext {
                event: &ctx.event,
                tags: &ctx.tags,
                region: ctx.region.as_deref(),
                pipeline: &pipeline.name,
                now: chrono::DateTime::<chrono::Utc>::from(ctx.clock.now()),
            },
            http: &self.http,
            clock: ctx.clock.as_ref(),
            external: self.external.as_deref(),
        };
        loop {
            let left = work_deadline
                .duration_since(ctx.clock.now())
                .unwrap_or(Duration::ZERO);
            if left.is_zero() {
                report.status = StepStatus::DeadlineReached;
                report.error.get_or_insert_with(|| {
                    "the action's deadline arrived before the step could start".into()
                });
                break;
            }
            let limited_by_deadline = left < s.timeout;
            let limit = s.timeout.min(left);
            report.attempts += 1;
            let r = tokio::select! {
                r = step::attempt(s, &env, limit) => r,
                () = cancel.cancelled() => {
                    report.status = StepStatus::Cancelled;
                    report.error = Some("cancelled".into());
                    break;
                }
                // The attempt's `limit` runs on real time; the action's clock may run
                // differently (the sandbox's virtual clock): its deadline stops the step too.
                () = ctx.clock.sleep_until(work_deadline), if limited_by_deadline => {
                    report.status = StepStatus::DeadlineReached;
                    report.error = Some(format!(
                        "the action's deadline arrived while step `{}` was running",
                        s.name
                    ));
                    break;
                }
            };
            match r {
                Ok(Success::Done { detail }) => {
                    report.status = StepStatus::Succeeded;
                    report.detail = Some(detail);
                    break;
                }
                Ok(Success::RebootRequested { detail }) => {
                    report.status = StepStatus::RebootRequested;
                    report.detail = Some(detail);
                    break;
                }
                Err(Failure {
                    message, timed_out, ..
                }) if timed_out && limited_by_deadline => {
                    report.status = StepStatus::DeadlineReached;
                    report.error = Some(format!("the action's deadline arrived: {message}"));
                    break;
                }
                Err(f) => {
                    let attempt = report.attempts;
                    report.error = Some(f.message.clone());
                    if !f.retryable || attempt > s.retries {
                        self.emit(|| Progress::AttemptFailed {
                            index,
                            name: s.name.clone(),
                            attempt,
                            error: f.message,
                            retry_in: None,
                        });
                        report.status = StepStatus::Failed;
                        break;
                    }
                    let delay = backoff_delay(s.backoff, attempt);
                    self.emit(|| Progress::AttemptFailed {
                        index,
                        name: s.name.clone(),
                        attempt,
                        error: f.message,
                        retry_in: Some(delay),
                    });
                    let left = work_deadline
                        .duration_since(ctx.clock.now())
                        .unwrap_or(Duration::ZERO);
                    if delay >= left {
                        report.status = StepStatus::DeadlineReached;
                        break;
                    }
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = cancel.cancelled() => {
                            report.status = StepStatus::Cancelled;
                            break;
                        }
                    }
                }
            }
        }
        report.duration = started.elapsed();
        report
    }
}

/// The delay before retry number `attempt` (1-based): `base × 2^(attempt−1)`, capped at
/// [`MAX_BACKOFF`], with "equal jitter" (a uniform pick in the upper half) so that replicas
/// retrying the same endpoint spread out.
pub(crate) fn backoff_delay(base: Duration, attempt: u32) -> Duration {
    let exp = base
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
        .min(MAX_BACKOFF);
    let half = exp / 2;
    let jitter_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
    half + Duration::from_millis(if jitter_ms == 0 {
        0
    } else {
        rand::random_range(0..=jitter_ms)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_output_excerpt_is_its_bounded_end_on_one_line() {
        assert_eq!(excerpt("  ok\n"), "ok");
        assert_eq!(excerpt("a\nb"), "a⏎b");
        let long = format!("{}END", "x".repeat(2000));
        let e = excerpt(&long);
        assert!(e.starts_with('…') && e.ends_with("END"), "{e}");
        assert_eq!(e.chars().count(), OUTPUT_EXCERPT + 1);
    }
    use crate::config::Config;
    use crate::test_support::event;
    use std::path::Path;
    use std::sync::Mutex;

    fn pipeline(text: &str) -> Pipeline {
        let c = Config::from_toml(text, Path::new("t.toml")).unwrap_or_else(|p| panic!("{p:?}"));
        c.pipelines[0].clone()
    }

    fn ctx() -> ActionContext {
        ActionContext::new(event(None), Duration::from_secs(3600), SystemTime::now())
    }

    #[derive(Debug)]
    struct FixedClock(Mutex<SystemTime>);
    impl Clock for FixedClock {
        fn now(&self) -> SystemTime {
            *self.0.lock().unwrap()
        }
        fn sleep_until(&self, _t: SystemTime) -> crate::clock::Sleep {
            Box::pin(std::future::pending())
        }
    }

    async fn run(p: &Pipeline, ctx: &ActionContext) -> (Outcome, Vec<Progress>) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let runner = Runner::with_client(reqwest::Client::builder().no_proxy().build().unwrap())
            .with_progress(tx);
        let o = runner.run(p, ctx, &CancellationToken::new()).await;
        drop(runner);
        let mut events = Vec::new();
        while let Some(e) = rx.recv().await {
            events.push(e);
        }
        (o, events)
    }

    #[tokio::test]
    async fn success_continues_and_reports() {
        let p = pipeline(
            r#"[[pipeline]]
name = "p"
[[pipeline.step]]
type = "exec"
name = "one"
command = ["true"]
[[pipeline.step]]
type = "exec"
name = "two"
command = ["echo", "{{ instance_id }}"]
"#,
        );
        let (o, ev) = run(&p, &ctx()).await;
        assert_eq!(o.decision, Decision::Complete(LifecycleResult::Continue));
        assert_eq!(o.steps.len(), 2);
        assert_eq!(o.steps[1].detail.as_deref(), Some("i-0123456789abcdef0\n"));
        assert!(
            o.steps
                .iter()
                .all(|s| s.status == StepStatus::Succeeded && s.attempts == 1)
        );
        assert_eq!(
            ev.first(),
            Some(&Progress::StepStarted {
                index: 0,
                name: "one".into()
            })
        );
        assert_eq!(ev.last(), Some(&Progress::Decided(o.decision)));
        assert_eq!(ev.len(), 5);
    }

    #[tokio::test]
    async fn failure_stops_after_retries_and_applies_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        let count = dir.path().join("count");
        let p = pipeline(&format!(
            r#"[[pipeline]]
name = "p"
policy = {{ on_failure = "abandon" }}
[[pipeline.step]]
type = "exec"
name = "flaky"
retries = 2
backoff = "10ms"
command = ["sh", "-c", "echo x >> {}; exit 1"]
[[pipeline.step]]
type = "exec"
name = "never"
command = ["true"]
"#,
            count.display()
        ));
        let (o, ev) = run(&p, &ctx()).await;
        assert_eq!(o.decision, Decision::Complete(LifecycleResult::Abandon));
        assert_eq!(o.steps.len(), 1);
        assert_eq!(o.steps[0].status, StepStatus::Failed);
        assert_eq!(o.steps[0].attempts, 3);
        assert_eq!(std::fs::read_to_string(&count).unwrap().lines().count(), 3);
        assert!(o.steps[0].error.as_deref().unwrap().contains("status 1"));
        let retries: Vec<_> = ev
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    Progress::AttemptFailed {
                        retry_in: Some(_),
                        ..
                    }
                )
            })
            .collect();
        assert_eq!(retries.len(), 2);
    }

    #[tokio::test]
    async fn retry_then_success() {
        let dir = tempfile::tempdir().unwrap();
        let flag = dir.path().join("flag");
        let p = pipeline(&format!(
            r#"[[pipeline]]
name = "p"
[[pipeline.step]]
type = "exec"
retries = 1
backoff = "1ms"
command = ["sh", "-c", "test -e {0} || {{ touch {0}; exit 1; }}"]
"#,
            flag.display()
        ));
        let (o, _) = run(&p, &ctx()).await;
        assert_eq!(o.decision, Decision::Complete(LifecycleResult::Continue));
        assert_eq!(o.steps[0].attempts, 2);
    }

    #[tokio::test]
    async fn deadline_applies_on_deadline_policy() {
        for (policy, want) in [
            ("hold", Decision::Hold),
            ("continue", Decision::Complete(LifecycleResult::Continue)),
            ("abandon", Decision::Complete(LifecycleResult::Abandon)),
        ] {
            let p = pipeline(&format!(
                r#"[[pipeline]]
name = "p"
policy = {{ on_deadline = "{policy}", deadline_margin = "1s" }}
[[pipeline.step]]
type = "exec"
timeout = "1h"
command = ["sleep", "30"]
"#
            ));
            let mut c = ctx();
            // 1.3 s to the global deadline, 1 s margin: 300 ms of work.
            c.global_deadline = SystemTime::now() + Duration::from_millis(1300);
            let t = std::time::Instant::now();
            let (o, _) = run(&p, &c).await;
            assert!(t.elapsed() < Duration::from_secs(5));
            assert_eq!(o.decision, want, "{policy}");
            assert_eq!(o.steps[0].status, StepStatus::DeadlineReached);
        }
    }

    #[tokio::test]
    async fn own_timeout_is_a_failure_not_the_deadline() {
        let p = pipeline(
            r#"[[pipeline]]
name = "p"
policy = { on_failure = "continue", on_deadline = "hold" }
[[pipeline.step]]
type = "exec"
timeout = "200ms"
command = ["sleep", "30"]
"#,
        );
        let (o, _) = run(&p, &ctx()).await;
        assert_eq!(o.decision, Decision::Complete(LifecycleResult::Continue));
        assert_eq!(o.steps[0].status, StepStatus::Failed);
    }

    #[tokio::test]
    async fn past_deadline_nothing_runs() {
        let p = pipeline(
            "[[pipeline]]\nname = \"p\"\npolicy = { on_deadline = \"abandon\" }\n[[pipeline.step]]\ntype = \"exec\"\ncommand = [\"true\"]\n",
        );
        let mut c = ctx();
        c.clock = Arc::new(FixedClock(Mutex::new(c.global_deadline)));
        let (o, _) = run(&p, &c).await;
        assert_eq!(o.decision, Decision::Complete(LifecycleResult::Abandon));
        assert_eq!(o.steps[0].attempts, 0);
    }

    #[tokio::test]
    async fn reboot_and_resume() {
        let p = pipeline(
            r#"[[pipeline]]
name = "p"
[[pipeline.step]]
type = "exec"
name = "patch"
command = ["sh", "-c", "exit 194"]
reboot_exit_code = 194
[[pipeline.step]]
type = "exec"
name = "install"
command = ["true"]
"#,
        );
        let runner = Runner::new();
        let c = ctx();
        let o = runner.run(&p, &c, &CancellationToken::new()).await;
        assert_eq!(o.decision, Decision::Reboot { resume_from: 1 });
        let o = runner.run_from(&p, &c, 1, &CancellationToken::new()).await;
        assert_eq!(o.decision, Decision::Complete(LifecycleResult::Continue));
        assert_eq!(o.steps.len(), 1);
        assert_eq!(o.steps[0].name, "install");
    }

    #[tokio::test]
    async fn cancellation_interrupts() {
        let p = pipeline(
            "[[pipeline]]\nname = \"p\"\n[[pipeline.step]]\ntype = \"exec\"\ncommand = [\"sleep\", \"30\"]\n",
        );
        let cancel = CancellationToken::new();
        let c2 = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            c2.cancel();
        });
        let t = std::time::Instant::now();
        let o = Runner::new().run(&p, &ctx(), &cancel).await;
        assert!(t.elapsed() < Duration::from_secs(5));
        assert_eq!(o.decision, Decision::Interrupted { resume_from: 0 });
    }

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let b = Duration::from_secs(1);
        for _ in 0..100 {
            let d1 = backoff_delay(b, 1);
            assert!(d1 >= Duration::from_millis(500) && d1 <= b);
            let d3 = backoff_delay(b, 3);
            assert!(d3 >= Duration::from_secs(2) && d3 <= Duration::from_secs(4));
            assert!(backoff_delay(b, 40) <= MAX_BACKOFF);
        }
        assert_eq!(backoff_delay(Duration::ZERO, 5), Duration::ZERO);
    }

    #[test]
    fn event_time_parses() {
        let e = event(None);
        let t = ActionContext::event_time(&e).unwrap();
        assert_eq!(
            t.duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
            1_694_403_033_136
        );
    }
}
