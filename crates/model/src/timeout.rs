//! Hook timeouts (spec §2.1, §2.4): the heartbeat timeout and the global timeout.

use std::fmt;

/// The global timeout is never more than 48 hours.
pub const GLOBAL_TIMEOUT_CAP_SECS: u64 = 172_800;
/// The smallest heartbeat timeout Auto Scaling accepts.
pub const MIN_HEARTBEAT_TIMEOUT_SECS: u64 = 30;
/// The largest heartbeat timeout Auto Scaling accepts.
pub const MAX_HEARTBEAT_TIMEOUT_SECS: u64 = 7_200;
/// The heartbeat timeout a hook gets when none is given.
pub const DEFAULT_HEARTBEAT_TIMEOUT_SECS: u64 = 3_600;

/// The global timeout of a hook: `min(48 h, 100 × HeartbeatTimeout)` (spec §2.1).
pub fn global_timeout_secs(heartbeat_timeout_secs: u64) -> u64 {
    GLOBAL_TIMEOUT_CAP_SECS.min(heartbeat_timeout_secs.saturating_mul(100))
}

/// A validated heartbeat timeout, 30..=7200 seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HeartbeatTimeout(u64);

/// A heartbeat timeout outside 30..=7200 seconds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "heartbeat timeout {0} s is out of range: it must be between {MIN_HEARTBEAT_TIMEOUT_SECS} and {MAX_HEARTBEAT_TIMEOUT_SECS} seconds"
)]
pub struct HeartbeatTimeoutOutOfRange(pub i64);

impl HeartbeatTimeout {
    pub const DEFAULT: HeartbeatTimeout = HeartbeatTimeout(DEFAULT_HEARTBEAT_TIMEOUT_SECS);

    pub fn new(secs: i64) -> Result<Self, HeartbeatTimeoutOutOfRange> {
        if (MIN_HEARTBEAT_TIMEOUT_SECS as i64..=MAX_HEARTBEAT_TIMEOUT_SECS as i64).contains(&secs) {
            Ok(HeartbeatTimeout(secs as u64))
        } else {
            Err(HeartbeatTimeoutOutOfRange(secs))
        }
    }

    pub fn secs(self) -> u64 {
        self.0
    }

    /// The global timeout that goes with this heartbeat timeout.
    pub fn global_timeout_secs(self) -> u64 {
        global_timeout_secs(self.0)
    }
}

impl fmt::Display for HeartbeatTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}s", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn documented_examples() {
        // spec §2.1: HB 3600 → 172800; HB 30 → 3000; HB 60 → 6000; HB 1728 → 172800.
        assert_eq!(global_timeout_secs(3600), 172_800);
        assert_eq!(global_timeout_secs(30), 3000);
        assert_eq!(global_timeout_secs(60), 6000);
        assert_eq!(global_timeout_secs(1728), 172_800);
    }

    #[test]
    fn range() {
        assert!(HeartbeatTimeout::new(29).is_err());
        assert!(HeartbeatTimeout::new(7201).is_err());
        assert_eq!(HeartbeatTimeout::new(30).unwrap().secs(), 30);
    }

    proptest! {
        #[test]
        fn global_never_exceeds_cap(hb in 0u64..u64::MAX) {
            let g = global_timeout_secs(hb);
            prop_assert!(g <= GLOBAL_TIMEOUT_CAP_SECS);
            prop_assert!(g <= hb.saturating_mul(100));
        }
    }
}
