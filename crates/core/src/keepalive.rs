//! Keepalive planning: when to heartbeat, when the deadline is near, how far to extend the
//! queue message's visibility. Pure functions of times, so the AWS runtime and the sandbox
//! tests share one arithmetic.
//!
//! The reasoning (spec `asg-lifecycle.md` §2.4, §5.3 items 5–6):
//!
//! - A heartbeat **restarts** the timer at `now + HeartbeatTimeout`; it does not add to the
//!   remaining time. So the interval between heartbeats must stay below the timeout, or the
//!   action expires between two heartbeats (§5.3 item 6). We heartbeat after
//!   `heartbeat_fraction × HeartbeatTimeout` (default 0.5), never more often than
//!   `min_interval`, and never later than 90 % of the timeout whatever the settings say.
//! - Heartbeats cannot extend past the **global timeout**, `min(48 h, 100 × HB)` counted
//!   from the start of the wait (§2.4, §5.3 item 5). Once the current heartbeat window
//!   already reaches the global deadline, further heartbeats are pointless; the plan then
//!   returns `None`.
//! - Work must stop a `deadline_margin` before the global deadline so that the completion
//!   call still lands in time; [`KeepalivePlan::deadline_approaching`] says when.
//! - The SQS message stays invisible while work runs: extend it by the configured
//!   visibility timeout every half of it, so one missed extension is not yet a redelivery.

use std::time::{Duration, SystemTime};

use lifehook_model::timeout::global_timeout_secs;

use crate::config;

/// SQS caps a message's visibility timeout at 12 hours.
pub(crate) const SQS_MAX_VISIBILITY: Duration = Duration::from_secs(43_200);

/// The heartbeat plan of one lifecycle action.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeepalivePlan {
    /// The hook's `HeartbeatTimeout`.
    pub heartbeat_timeout: Duration,
    pub fraction: f64,
    pub min_interval: Duration,
    pub deadline_margin: Duration,
}

impl KeepalivePlan {
    pub fn new(k: &config::Keepalive, heartbeat_timeout: Duration) -> Self {
        KeepalivePlan {
            heartbeat_timeout,
            fraction: k.heartbeat_fraction,
            min_interval: k.min_interval,
            deadline_margin: k.deadline_margin,
        }
    }

    /// The time between two heartbeats: `fraction × HB`, at least `min_interval`, at most
    /// 90 % of HB (so that a heartbeat always lands before the action expires).
    pub fn interval(&self) -> Duration {
        let hb = self.heartbeat_timeout;
        let fraction = if self.fraction.is_finite() {
            self.fraction.clamp(0.0, 1.0)
        } else {
            config::DEFAULT_HEARTBEAT_FRACTION
        };
        let want = hb.mul_f64(fraction).max(self.min_interval);
        want.min(hb.mul_f64(0.9))
    }

    /// The global deadline of an action that entered the wait state at `started`.
    pub fn global_deadline(&self, started: SystemTime) -> SystemTime {
        started + Duration::from_secs(global_timeout_secs(self.heartbeat_timeout.as_secs()))
    }

    /// When the action expires if no further heartbeat is sent, given the last heartbeat
    /// (or the start of the wait).
    pub fn expires_at(
        &self,
        last_heartbeat: SystemTime,
        global_deadline: SystemTime,
    ) -> SystemTime {
        (last_heartbeat + self.heartbeat_timeout).min(global_deadline)
    }

    /// When to send the next heartbeat, or `None` when the current window already reaches
    /// the global deadline (heartbeats cannot extend past it). Never later than the
    /// global deadline; `now` when one is overdue.
    pub fn next_heartbeat(
        &self,
        last_heartbeat: SystemTime,
        global_deadline: SystemTime,
        now: SystemTime,
    ) -> Option<SystemTime> {
        if last_heartbeat + self.heartbeat_timeout >= global_deadline || now >= global_deadline {
            return None;
        }
        let due = last_heartbeat + self.interval();
        Some(due.max(now).min(global_deadline))
    }

    /// The moment steps must have stopped: the global deadline less the margin.
    pub fn work_deadline(&self, global_deadline: SystemTime) -> SystemTime {
        global_deadline
            .checked_sub(self.deadline_margin)
            .unwrap_or(SystemTime::UNIX_EPOCH)
    }

    /// Whether `now` is within the margin of the global deadline: time to apply the
    /// pipeline's `on_deadline` policy.
    pub fn deadline_approaching(&self, now: SystemTime, global_deadline: SystemTime) -> bool {
        now >= self.work_deadline(global_deadline)
    }
}

/// How a received queue message is kept invisible while its action is worked on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VisibilityPlan {
    pub visibility_timeout: Duration,
}

impl VisibilityPlan {
    /// The `VisibilityTimeout` to pass to `ChangeMessageVisibility` (capped at 12 h).
    pub fn extension(&self) -> Duration {
        self.visibility_timeout
            .min(SQS_MAX_VISIBILITY)
            .max(Duration::from_secs(1))
    }

    /// When to extend next, given the last extension (or the receipt).
    pub fn next_extension(&self, last: SystemTime) -> SystemTime {
        last + self.extension() / 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T0: Duration = Duration::from_secs(1_700_000_000);

    fn at(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + T0 + Duration::from_secs(s)
    }

    fn plan(hb: u64) -> KeepalivePlan {
        KeepalivePlan::new(&config::Keepalive::default(), Duration::from_secs(hb))
    }

    #[test]
    fn heartbeats_at_half_the_timeout() {
        let p = plan(300);
        let gd = p.global_deadline(at(0));
        assert_eq!(gd, at(30_000));
        assert_eq!(p.next_heartbeat(at(0), gd, at(0)), Some(at(150)));
        assert_eq!(p.next_heartbeat(at(150), gd, at(151)), Some(at(300)));
        // Overdue: now.
        assert_eq!(p.next_heartbeat(at(0), gd, at(200)), Some(at(200)));
    }

    #[test]
    fn global_deadline_caps_at_48h() {
        let p = plan(3600);
        assert_eq!(p.global_deadline(at(0)), at(172_800));
    }

    #[test]
    fn no_heartbeat_once_window_reaches_global_deadline() {
        // HB 30 s: global 3000 s (keikoproj/lifecycle-manager#69).
        let p = plan(30);
        let gd = p.global_deadline(at(0));
        assert_eq!(gd, at(3000));
        assert!(p.next_heartbeat(at(2960), gd, at(2960)).is_some());
        assert_eq!(p.next_heartbeat(at(2970), gd, at(2970)), None);
        assert_eq!(p.next_heartbeat(at(2980), gd, at(2980)), None);
        assert_eq!(p.expires_at(at(2980), gd), gd);
    }

    #[test]
    fn min_interval_never_pushes_past_timeout() {
        let k = config::Keepalive {
            heartbeat_fraction: 0.5,
            min_interval: Duration::from_secs(600),
            deadline_margin: Duration::from_secs(60),
        };
        let p = KeepalivePlan::new(&k, Duration::from_secs(60));
        assert_eq!(p.interval(), Duration::from_secs(54));
    }

    #[test]
    fn deadline_approaching_respects_margin() {
        let p = plan(60);
        let gd = p.global_deadline(at(0));
        assert_eq!(gd, at(6000));
        assert!(!p.deadline_approaching(at(5939), gd));
        assert!(p.deadline_approaching(at(5940), gd));
        assert_eq!(p.work_deadline(gd), at(5940));
    }

    #[test]
    fn visibility() {
        let v = VisibilityPlan {
            visibility_timeout: Duration::from_secs(120),
        };
        assert_eq!(v.extension(), Duration::from_secs(120));
        assert_eq!(v.next_extension(at(0)), at(60));
        let big = VisibilityPlan {
            visibility_timeout: Duration::from_secs(100_000),
        };
        assert_eq!(big.extension(), SQS_MAX_VISIBILITY);
    }

    proptest! {
        #[test]
        fn heartbeats_keep_the_action_alive_and_stop_at_the_deadline(
            hb in 30u64..=7200,
            fraction in 0.01f64..0.99,
            min_interval in 1u64..10_000,
            start_offset in 0u64..1_000_000,
        ) {
            let k = config::Keepalive {
                heartbeat_fraction: fraction,
                min_interval: Duration::from_secs(min_interval),
                deadline_margin: Duration::from_secs(60),
            };
            let p = KeepalivePlan::new(&k, Duration::from_secs(hb));
            let started = at(start_offset);
            let gd = p.global_deadline(started);
            prop_assert!(p.interval() < p.heartbeat_timeout);
            // Simulate a handler that heartbeats exactly when told.
            let mut last = started;
            let mut now = started;
            let mut n = 0u32;
            while let Some(next) = p.next_heartbeat(last, gd, now) {
                prop_assert!(next <= gd, "never past the global deadline");
                prop_assert!(next < p.expires_at(last, gd), "the heartbeat lands before expiry");
                prop_assert!(next >= now);
                last = next;
                now = next;
                n += 1;
                prop_assert!(n < 200_000);
            }
            // When the plan stops, the last heartbeat's window reaches the global deadline.
            prop_assert!(last + p.heartbeat_timeout >= gd);
        }
    }
}
