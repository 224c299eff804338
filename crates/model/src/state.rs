//! Instance lifecycle states (spec §1.1): the complete `LifecycleState` enum.

use std::fmt;
use std::str::FromStr;

macro_rules! states {
    ($($variant:ident => $wire:literal),* $(,)?) => {
        /// A value of the Auto Scaling `LifecycleState` enum, spelled on the wire exactly as
        /// in spec §1.1 (for example `Pending:Wait`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum LifecycleState { $($variant),* }

        impl LifecycleState {
            /// Every state, in the order of the model's enum.
            pub const ALL: &'static [LifecycleState] = &[$(LifecycleState::$variant),*];

            /// The wire spelling.
            pub fn as_str(self) -> &'static str {
                match self { $(LifecycleState::$variant => $wire),* }
            }
        }

        impl FromStr for LifecycleState {
            type Err = UnknownState;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s { $($wire => Ok(LifecycleState::$variant),)* _ => Err(UnknownState(s.to_owned())) }
            }
        }
    };
}

states! {
    Pending => "Pending",
    PendingWait => "Pending:Wait",
    PendingProceed => "Pending:Proceed",
    Quarantined => "Quarantined",
    InService => "InService",
    Terminating => "Terminating",
    TerminatingWait => "Terminating:Wait",
    TerminatingProceed => "Terminating:Proceed",
    TerminatingRetained => "Terminating:Retained",
    Terminated => "Terminated",
    Detaching => "Detaching",
    Detached => "Detached",
    EnteringStandby => "EnteringStandby",
    Standby => "Standby",
    ReplacingRootVolume => "ReplacingRootVolume",
    ReplacingRootVolumeWait => "ReplacingRootVolume:Wait",
    ReplacingRootVolumeProceed => "ReplacingRootVolume:Proceed",
    RootVolumeReplaced => "RootVolumeReplaced",
    WarmedPending => "Warmed:Pending",
    WarmedPendingWait => "Warmed:Pending:Wait",
    WarmedPendingProceed => "Warmed:Pending:Proceed",
    WarmedPendingRetained => "Warmed:Pending:Retained",
    WarmedTerminating => "Warmed:Terminating",
    WarmedTerminatingWait => "Warmed:Terminating:Wait",
    WarmedTerminatingProceed => "Warmed:Terminating:Proceed",
    WarmedTerminatingRetained => "Warmed:Terminating:Retained",
    WarmedTerminated => "Warmed:Terminated",
    WarmedStopped => "Warmed:Stopped",
    WarmedRunning => "Warmed:Running",
    WarmedHibernated => "Warmed:Hibernated",
}

/// A string that is not a `LifecycleState`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown lifecycle state {0:?}")]
pub struct UnknownState(pub String);

impl LifecycleState {
    /// True for the states in which an instance waits on lifecycle hooks.
    pub fn is_wait(self) -> bool {
        matches!(
            self,
            LifecycleState::PendingWait
                | LifecycleState::TerminatingWait
                | LifecycleState::WarmedPendingWait
                | LifecycleState::WarmedTerminatingWait
                | LifecycleState::ReplacingRootVolumeWait
        )
    }

    /// True for the states on the launch path before `InService` (spec §1.2 note 5: these
    /// count as capacity the group already provides).
    pub fn is_pending(self) -> bool {
        matches!(
            self,
            LifecycleState::Pending | LifecycleState::PendingWait | LifecycleState::PendingProceed
        )
    }

    /// True for the states on the termination path.
    pub fn is_terminating(self) -> bool {
        matches!(
            self,
            LifecycleState::Terminating
                | LifecycleState::TerminatingWait
                | LifecycleState::TerminatingProceed
                | LifecycleState::TerminatingRetained
                | LifecycleState::Terminated
        )
    }
}

impl fmt::Display for LifecycleState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thirty_states_round_trip() {
        assert_eq!(LifecycleState::ALL.len(), 30);
        for s in LifecycleState::ALL {
            assert_eq!(s.as_str().parse::<LifecycleState>().unwrap(), *s);
        }
        assert!("Pending:wait".parse::<LifecycleState>().is_err());
    }

    #[test]
    fn wait_states() {
        assert!(LifecycleState::PendingWait.is_wait());
        assert!(LifecycleState::TerminatingWait.is_wait());
        assert!(!LifecycleState::InService.is_wait());
    }
}
