//! The instance metadata service (IMDSv2) of every sandbox instance, spec §6.1/§6.2.
//!
//! Each instance's IMDS lives under a path prefix of the sandbox's one port:
//! `http://127.0.0.1:PORT/_imds/<instance-id>/latest/...`. aws-sdk-rust's
//! `aws_config::imds::Client` keeps an endpoint's path when it builds request URIs (it
//! merges the endpoint path with `/latest/...`), so an agent on "instance" `i-…` is pointed
//! at its IMDS with
//!
//! ```sh
//! AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:4566/_imds/i-0123456789abcdef0/
//! ```
//!
//! - `PUT latest/api/token` with `X-aws-ec2-metadata-token-ttl-seconds: 1..21600` answers a
//!   token and echoes the TTL header (aws-sdk-rust refuses a token answer without it); a
//!   missing or bad TTL is 400, a `PUT` carrying `X-Forwarded-For` or to another path is
//!   403. Tokens belong to one instance and expire on virtual time.
//! - Every `GET` needs a valid token in `X-aws-ec2-metadata-token` (401 otherwise): the
//!   sandbox behaves like `HttpTokens=required` (no IMDSv1).
//! - Unknown items, unknown and terminated instances answer 404.
//!
//! Items: `meta-data/` (listing), `ami-id`, `ami-launch-index`, `hostname`, `instance-id`,
//! `instance-type`, `local-hostname`, `local-ipv4`, `reservation-id`, `placement/`
//! (`availability-zone`, `region`), `autoscaling/target-lifecycle-state` (only for
//! instances that are or were in a group), `tags/instance/<key>` (when
//! [`crate::ec2::Options::instance_metadata_tags`]), and
//! `dynamic/instance-identity/document`.
//!
//! Layout: this file holds the constants and the rules on tag keys; `ops.rs` `serve`
//! (tokens and items). IMDS has no control routes.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde_json::json;

use crate::Sandbox;
use crate::clock::{Millis, iso_secs};
use crate::ec2::{self, Ec2State};
use crate::ids;

mod ops;
#[cfg(test)]
mod tests;

pub(crate) use ops::serve;

/// The path prefix of every instance's IMDS on the sandbox port.
pub(crate) const PREFIX: &str = "/_imds/";
/// The longest token TTL IMDS grants (6 hours).
pub(crate) const MAX_TOKEN_TTL_SECS: u64 = 21_600;
/// The most live tokens one instance may hold (bounds memory; AWS has a similar cap).
pub(crate) const MAX_TOKENS_PER_INSTANCE: usize = 5_000;

const TOKEN_HEADER: &str = "x-aws-ec2-metadata-token";
const TTL_HEADER: &str = "x-aws-ec2-metadata-token-ttl-seconds";

/// Whether a request is for an instance's IMDS (routed before any AWS protocol).
pub(crate) fn is_imds_path(path: &str) -> bool {
    path.starts_with(PREFIX)
}

/// IMDS exposes only tag keys made of letters, digits and `+ - = . , _ : @` (no `/`, no
/// spaces), and not `.` or `..`.
pub(crate) fn imds_key_allowed(k: &str) -> bool {
    !k.is_empty()
        && k != "."
        && k != ".."
        && k.chars()
            .all(|c| c.is_alphanumeric() || "+-=.,_:@".contains(c))
}
