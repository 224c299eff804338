//! Lifecycle transitions, results and the Origin/Destination endpoints (spec §1.7, §2.1, §2.5).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The transition a hook is attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub enum LifecycleTransition {
    #[serde(rename = "autoscaling:EC2_INSTANCE_LAUNCHING")]
    Launching,
    #[serde(rename = "autoscaling:EC2_INSTANCE_TERMINATING")]
    Terminating,
}

impl LifecycleTransition {
    pub const LAUNCHING: &'static str = "autoscaling:EC2_INSTANCE_LAUNCHING";
    pub const TERMINATING: &'static str = "autoscaling:EC2_INSTANCE_TERMINATING";

    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleTransition::Launching => Self::LAUNCHING,
            LifecycleTransition::Terminating => Self::TERMINATING,
        }
    }

    /// The short word used in SNS subjects and EventBridge detail-types.
    pub fn short(self) -> &'static str {
        match self {
            LifecycleTransition::Launching => "LAUNCHING",
            LifecycleTransition::Terminating => "TERMINATING",
        }
    }

    /// The EventBridge detail-type of this transition's lifecycle action (spec §3.4; note
    /// the hyphen).
    pub fn detail_type(self) -> &'static str {
        match self {
            LifecycleTransition::Launching => "EC2 Instance-launch Lifecycle Action",
            LifecycleTransition::Terminating => "EC2 Instance-terminate Lifecycle Action",
        }
    }

    /// Parses a detail-type back into a transition.
    pub fn from_detail_type(s: &str) -> Option<Self> {
        match s {
            "EC2 Instance-launch Lifecycle Action" => Some(LifecycleTransition::Launching),
            "EC2 Instance-terminate Lifecycle Action" => Some(LifecycleTransition::Terminating),
            _ => None,
        }
    }
}

impl FromStr for LifecycleTransition {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            Self::LAUNCHING => Ok(LifecycleTransition::Launching),
            Self::TERMINATING => Ok(LifecycleTransition::Terminating),
            other => Err(format!(
                "unknown lifecycle transition {other:?} (expected {} or {})",
                Self::LAUNCHING,
                Self::TERMINATING
            )),
        }
    }
}

impl fmt::Display for LifecycleTransition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result of a lifecycle action (`LifecycleActionResult`, `DefaultResult`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum LifecycleResult {
    Continue,
    Abandon,
}

impl LifecycleResult {
    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleResult::Continue => "CONTINUE",
            LifecycleResult::Abandon => "ABANDON",
        }
    }
}

impl FromStr for LifecycleResult {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "CONTINUE" => Ok(LifecycleResult::Continue),
            "ABANDON" => Ok(LifecycleResult::Abandon),
            other => Err(format!(
                "unknown lifecycle action result {other:?} (expected CONTINUE or ABANDON)"
            )),
        }
    }
}

impl fmt::Display for LifecycleResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an instance comes from or goes to (spec §1.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Endpoint {
    EC2,
    AutoScalingGroup,
    WarmPool,
}

impl Endpoint {
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::EC2 => "EC2",
            Endpoint::AutoScalingGroup => "AutoScalingGroup",
            Endpoint::WarmPool => "WarmPool",
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
