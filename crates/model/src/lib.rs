//! The lifecycle model of lifehook: the wire types of EC2 Auto Scaling lifecycle
//! notifications, lifecycle states and transitions, and the timeout arithmetic of hooks.
//!
//! This crate has no AWS SDK in it and talks to nothing over the network. Both the
//! handlers (`lifehook-core`, `lifehook-aws`) and the sandbox (`lifehook-sandbox`) use it,
//! so the sandbox emits exactly what the handlers parse. The formats follow
//! `spec/asg-lifecycle.md` §3; fixtures of every delivery path live in `tests/fixtures`.
//!
//! ```
//! use lifehook_model::delivery::{parse_delivery, Delivery};
//! let body = r#"{"Origin":"EC2","LifecycleHookName":"h","Destination":"AutoScalingGroup",
//!   "AccountId":"000000000000","RequestId":"r","LifecycleTransition":"autoscaling:EC2_INSTANCE_LAUNCHING",
//!   "AutoScalingGroupName":"g","Service":"AWS Auto Scaling","Time":"2023-09-11T03:30:33.136Z",
//!   "EC2InstanceId":"i-0853dfa8ce1627af9","LifecycleActionToken":"917070d0-a303-474b-a36c-a5e38a19de5e"}"#;
//! match parse_delivery(body).unwrap() {
//!     Delivery::Action(a) => assert_eq!(a.instance_id, "i-0853dfa8ce1627af9"),
//!     other => panic!("unexpected {other:?}"),
//! }
//! ```

#![forbid(unsafe_code)]

pub mod delivery;
pub mod message;
pub mod state;
pub mod timeout;
pub mod transition;

pub use delivery::{Delivery, DeliveryError, LifecycleEvent, parse_delivery};
pub use message::{LifecycleMessage, TestNotification};
pub use state::LifecycleState;
pub use timeout::{GLOBAL_TIMEOUT_CAP_SECS, HeartbeatTimeout, global_timeout_secs};
pub use transition::{Endpoint, LifecycleResult, LifecycleTransition};

/// The account id the sandbox uses, and the one examples show.
pub const SANDBOX_ACCOUNT_ID: &str = "000000000000";

/// Formats a timestamp as Auto Scaling does in lifecycle messages: ISO-8601 UTC with
/// milliseconds and `Z` (spec §3.1), e.g. `2023-09-11T03:30:33.136Z`.
pub fn format_time_millis(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Formats a timestamp as EventBridge does at the top level: second precision (spec §3.4).
pub fn format_time_secs(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
