//! Keeping a lifecycle action alive while its work runs.
//!
//! A [`Keepalive`] sends `RecordLifecycleActionHeartbeat` every `fraction ×
//! HeartbeatTimeout` (default 0.5; the timing is `lifehook_core::keepalive::KeepalivePlan`,
//! shared with the sandbox tests), and never after the action's global deadline, computed
//! as the message's `Time` plus the hook's `GlobalTimeout` (spec §2.4): past it,
//! heartbeats cannot extend the wait. It stops at once when told to (the action
//! completed), and by itself when Auto Scaling says the action is already resolved or a
//! heartbeat fails fatally.
//!
//! The queue message's visibility is kept by the message itself
//! ([`crate::queue::InFlight`]), on the queue's cadence (the visibility timeout is usually
//! much shorter than the hook's heartbeat timeout), for as long as the message is held.

use std::future::Future;
use std::time::{Duration, SystemTime};

use lifehook_core::keepalive::KeepalivePlan;
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use lifehook_core::clock::Clock;

use crate::lifecycle::{ActionTarget, ErrorClass, HookInfo, LifecycleApi, LifecycleError};

/// The default fraction of the heartbeat timeout between two heartbeats.
pub const DEFAULT_HEARTBEAT_FRACTION: f64 = 0.5;
/// Never heartbeat more often than this.
pub const DEFAULT_MIN_INTERVAL: Duration = Duration::from_secs(5);
/// After a transient heartbeat failure, wait this fraction of the interval before trying
/// again (at least one second).
const RETRY_FRACTION: f64 = 0.1;

/// How often to heartbeat.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeepaliveConfig {
    pub fraction: f64,
    pub min_interval: Duration,
}

impl From<&lifehook_core::config::Keepalive> for KeepaliveConfig {
    /// The heartbeat cadence of a configuration's `[keepalive]`.
    fn from(k: &lifehook_core::config::Keepalive) -> Self {
        KeepaliveConfig {
            fraction: k.heartbeat_fraction,
            min_interval: k.min_interval,
        }
    }
}

impl Default for KeepaliveConfig {
    fn default() -> Self {
        KeepaliveConfig {
            fraction: DEFAULT_HEARTBEAT_FRACTION,
            min_interval: DEFAULT_MIN_INTERVAL,
        }
    }
}

/// Why a keepalive ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeepaliveEnd {
    /// [`Keepalive::stop`] was called.
    Stopped,
    /// Auto Scaling reports the action resolved: the work is moot.
    AlreadyResolved,
    /// The global deadline is reached (or the last heartbeat window already reaches it).
    GlobalDeadline,
    /// A heartbeat failed in a way retrying will not fix.
    Failed(String),
}

/// What a keepalive did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeepaliveReport {
    pub heartbeats: u32,
    pub failures: u32,
    pub end: KeepaliveEnd,
}

/// When the heartbeats of one action are due.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    pub plan: KeepalivePlan,
    /// When the action's timer last (re)started: the message's `Time`, or now.
    pub last_heartbeat: SystemTime,
    /// `Time + GlobalTimeout`.
    pub global_deadline: SystemTime,
}

impl Schedule {
    /// The schedule of an action of `hook` that started at `started` (the message's
    /// `Time`; `None` means now, which overestimates the deadline).
    pub fn new(
        hook: &HookInfo,
        started: Option<SystemTime>,
        cfg: KeepaliveConfig,
        now: SystemTime,
    ) -> Schedule {
        let started = started.unwrap_or(now);
        Schedule {
            plan: KeepalivePlan {
                heartbeat_timeout: hook.heartbeat_timeout,
                fraction: cfg.fraction,
                min_interval: cfg.min_interval,
                deadline_margin: Duration::ZERO,
            },
            last_heartbeat: started,
            global_deadline: started + hook.global_timeout,
        }
    }

    /// The next heartbeat, or `None` when no further heartbeat can help.
    pub fn next(&self, now: SystemTime) -> Option<SystemTime> {
        self.plan
            .next_heartbeat(self.last_heartbeat, self.global_deadline, now)
    }
}

/// Parses a lifecycle message `Time` (ISO-8601) into a [`SystemTime`].
pub fn parse_message_time(time: &str) -> Option<SystemTime> {
    let t = chrono::DateTime::parse_from_rfc3339(time).ok()?;
    let ms = u64::try_from(t.timestamp_millis()).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_millis(ms))
}

/// A running keepalive. Dropping it stops the heartbeats too (without a report).
#[derive(Debug)]
pub struct Keepalive {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<KeepaliveReport>>,
    /// Cancelled when Auto Scaling says the action is already resolved.
    resolved: CancellationToken,
}

impl Keepalive {
    /// Heartbeats `target` through `api` on the schedule of `hook`, on `clock`'s time.
    pub fn start(
        api: LifecycleApi,
        target: ActionTarget,
        hook: &HookInfo,
        started: Option<SystemTime>,
        cfg: KeepaliveConfig,
        clock: Arc<dyn Clock>,
    ) -> Keepalive {
        let schedule = Schedule::new(hook, started, cfg, clock.now());
        Keepalive::start_with(schedule, clock, move || {
            let api = api.clone();
            let target = target.clone();
            async move { api.heartbeat(&target).await }
        })
    }

    /// Heartbeats with any sender (tests use a counter).
    pub fn start_with<F, Fut>(schedule: Schedule, clock: Arc<dyn Clock>, beat: F) -> Keepalive
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), LifecycleError>> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let resolved = CancellationToken::new();
        let task = tokio::spawn(run(schedule, beat, clock, rx, resolved.clone()));
        Keepalive {
            stop: Some(tx),
            task: Some(task),
            resolved,
        }
    }

    /// Cancelled when a heartbeat learns that the action is already resolved (completed
    /// elsewhere, or timed out): whatever works on it can stop.
    pub fn resolved(&self) -> CancellationToken {
        self.resolved.clone()
    }

    /// True once the keepalive ended by itself (resolved, deadline, failure).
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Stops the heartbeats at once (an in-flight heartbeat is abandoned) and reports.
    pub async fn stop(mut self) -> KeepaliveReport {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        match self.task.take() {
            Some(t) => t.await.unwrap_or_else(|e| KeepaliveReport {
                heartbeats: 0,
                failures: 0,
                end: KeepaliveEnd::Failed(format!("keepalive task failed: {e}")),
            }),
            None => KeepaliveReport {
                heartbeats: 0,
                failures: 0,
                end: KeepaliveEnd::Stopped,
            },
        }
    }
}

impl Drop for Keepalive {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

async fn run<F, Fut>(
    mut schedule: Schedule,
    beat: F,
    clock: Arc<dyn Clock>,
    mut stop: oneshot::Receiver<()>,
    resolved: CancellationToken,
) -> KeepaliveReport
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), LifecycleError>> + Send + 'static,
{
    let mut report = KeepaliveReport {
        heartbeats: 0,
        failures: 0,
        end: KeepaliveEnd::Stopped,
    };
    loop {
        let now = clock.now();
        let Some(due) = schedule.next(now) else {
            report.end = KeepaliveEnd::GlobalDeadline;
            return report;
        };
        if due >= schedule.global_deadline {
            report.end = KeepaliveEnd::GlobalDeadline;
            return report;
        }
        tokio::select! {
            biased;
            _ = &mut stop => return report,
            _ = clock.sleep_until(due) => {}
        }
        let result = tokio::select! {
            biased;
            _ = &mut stop => return report,
            r = beat() => r,
        };
        match result {
            Ok(()) => {
                report.heartbeats += 1;
                schedule.last_heartbeat = clock.now();
            }
            Err(e) if e.class() == ErrorClass::AlreadyResolved => {
                report.end = KeepaliveEnd::AlreadyResolved;
                resolved.cancel();
                return report;
            }
            Err(e) => {
                // Transient or not, the action may still be waiting: giving up would leave
                // it to its heartbeat timeout. Try again after a back-off, for as long as
                // the action can live; a failure that persists is in the log every time.
                report.failures += 1;
                let wait = schedule
                    .plan
                    .interval()
                    .mul_f64(RETRY_FRACTION)
                    .max(Duration::from_secs(1));
                if e.class() == ErrorClass::Retryable {
                    tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "heartbeat failed, will retry");
                } else {
                    tracing::error!(error = %e, retry_in_ms = wait.as_millis() as u64, "heartbeat failed and retrying may not help; will retry while the action can live");
                }
                // A back-off, so on real time like every other back-off (the heartbeat
                // is overdue on the action's clock already): on a virtual clock that
                // stands still, a retry planned on it would never come.
                tokio::select! {
                    biased;
                    _ = &mut stop => return report,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::ActionKey;
    use lifehook_model::{LifecycleResult, LifecycleTransition};
    use std::sync::atomic::{AtomicU32, Ordering};

    fn hook(hb: u64) -> HookInfo {
        HookInfo {
            group: "g".into(),
            name: "h".into(),
            transition: Some(LifecycleTransition::Terminating),
            heartbeat_timeout: Duration::from_secs(hb),
            global_timeout: Duration::from_secs(lifehook_model::global_timeout_secs(hb)),
            default_result: LifecycleResult::Continue,
        }
    }

    fn target() -> ActionTarget {
        ActionTarget::new("g", "h", ActionKey::Token("t".into()))
    }

    fn counting(
        n: Arc<AtomicU32>,
        fail_with: Option<LifecycleError>,
    ) -> impl Fn() -> std::future::Ready<Result<(), LifecycleError>> + Send + 'static {
        move || {
            n.fetch_add(1, Ordering::SeqCst);
            std::future::ready(match &fail_with {
                Some(e) => Err(e.clone()),
                None => Ok(()),
            })
        }
    }

    #[test]
    fn message_time_parses() {
        let t = parse_message_time("2023-09-11T03:30:33.136Z").unwrap();
        let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(d.as_millis(), 1_694_403_033_136);
        assert!(parse_message_time("yesterday").is_none());
    }

    #[test]
    fn schedule_heartbeats_at_half_the_timeout_and_not_past_the_deadline() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let s = Schedule::new(&hook(60), Some(t0), KeepaliveConfig::default(), t0);
        assert_eq!(s.global_deadline, t0 + Duration::from_secs(6000));
        assert_eq!(s.next(t0), Some(t0 + Duration::from_secs(30)));
        // A stale message: past the global deadline, no heartbeat helps.
        assert_eq!(s.next(t0 + Duration::from_secs(6001)), None);
        // Close to the deadline: the last window already covers it.
        let late = Schedule {
            last_heartbeat: t0 + Duration::from_secs(5950),
            ..s
        };
        assert_eq!(late.next(t0 + Duration::from_secs(5950)), None);
    }

    #[tokio::test(start_paused = true)]
    async fn heartbeats_every_half_timeout_until_stopped() {
        let n = Arc::new(AtomicU32::new(0));
        let s = Schedule::new(
            &hook(60),
            None,
            KeepaliveConfig::default(),
            SystemTime::now(),
        );
        let k = Keepalive::start_with(
            s,
            Arc::new(lifehook_core::TokioClock::new()),
            counting(n.clone(), None),
        );
        // 95 s at 30 s per heartbeat: beats at 30, 60, 90.
        tokio::time::sleep(Duration::from_secs(95)).await;
        let report = k.stop().await;
        assert_eq!(report.heartbeats, 3);
        assert_eq!(report.end, KeepaliveEnd::Stopped);
        assert_eq!(n.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn stop_is_immediate() {
        let n = Arc::new(AtomicU32::new(0));
        let s = Schedule::new(
            &hook(3600),
            None,
            KeepaliveConfig::default(),
            SystemTime::now(),
        );
        let k = Keepalive::start_with(
            s,
            Arc::new(lifehook_core::TokioClock::new()),
            counting(n.clone(), None),
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        let started = tokio::time::Instant::now();
        let report = k.stop().await;
        assert_eq!(started.elapsed(), Duration::ZERO);
        assert_eq!(report.heartbeats, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn never_heartbeats_past_the_global_deadline() {
        let n = Arc::new(AtomicU32::new(0));
        let now = SystemTime::now();
        // HB 30 s → global 3000 s; the action started 2950 s ago.
        let s = Schedule::new(
            &hook(30),
            Some(now - Duration::from_secs(2950)),
            KeepaliveConfig::default(),
            now,
        );
        let k = Keepalive::start_with(
            s,
            Arc::new(lifehook_core::TokioClock::new()),
            counting(n.clone(), None),
        );
        tokio::time::sleep(Duration::from_secs(500)).await;
        assert!(k.is_finished());
        let report = k.stop().await;
        assert_eq!(report.end, KeepaliveEnd::GlobalDeadline);
        // Deadline at +50 s. An overdue beat at once (the timer started 2950 s ago), then
        // every 15 s while the window (last + 30 s) still ends before the deadline: at 0,
        // 15 and 30 s; after that, last + 30 ≥ 50 and heartbeats cannot help.
        assert_eq!(report.heartbeats, 3, "{report:?}");
        assert_eq!(n.load(Ordering::SeqCst), report.heartbeats);
    }

    #[tokio::test(start_paused = true)]
    async fn already_resolved_ends_the_keepalive() {
        let n = Arc::new(AtomicU32::new(0));
        let s = Schedule::new(
            &hook(60),
            None,
            KeepaliveConfig::default(),
            SystemTime::now(),
        );
        let err = LifecycleError::AlreadyResolved {
            op: "RecordLifecycleActionHeartbeat",
            target: target(),
            message: "No active Lifecycle Action found with token t".into(),
        };
        let k = Keepalive::start_with(
            s,
            Arc::new(lifehook_core::TokioClock::new()),
            counting(n.clone(), Some(err)),
        );
        tokio::time::sleep(Duration::from_secs(120)).await;
        assert!(k.is_finished());
        let report = k.stop().await;
        assert_eq!(report.end, KeepaliveEnd::AlreadyResolved);
        assert_eq!(report.heartbeats, 0);
        assert_eq!(n.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_are_retried_soon_but_not_in_a_loop() {
        let n = Arc::new(AtomicU32::new(0));
        let s = Schedule::new(
            &hook(60),
            None,
            KeepaliveConfig::default(),
            SystemTime::now(),
        );
        let err = LifecycleError::Transient {
            op: "RecordLifecycleActionHeartbeat",
            context: "x".into(),
            attempts: 1,
            detail: "Throttling".into(),
        };
        let k = Keepalive::start_with(
            s,
            Arc::new(lifehook_core::TokioClock::new()),
            counting(n.clone(), Some(err)),
        );
        // First try at 30 s, then every 3 s (10 % of the interval).
        tokio::time::sleep(Duration::from_secs(40)).await;
        let report = k.stop().await;
        assert_eq!(report.heartbeats, 0);
        assert_eq!(report.failures, 4, "{report:?}");
    }
}
