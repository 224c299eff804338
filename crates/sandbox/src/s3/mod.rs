//! S3 in the sandbox (REST-XML): buckets and objects in memory, enough for lifecycle-hook
//! handlers that upload logs or read configuration.
//!
//! S3 is the one REST service: it is recognised before the JSON/Query dispatch (see
//! [`is_s3_request`]) and answers with fully formed responses. Path-style
//! (`/bucket/key`) and virtual-hosted-style (`bucket.localhost:port`,
//! `bucket.s3.<anything>`) addressing both work. Bodies up to [`MAX_OBJECT_BYTES`] are
//! accepted; `aws-chunked` bodies (the SDK's streamed uploads, signed chunks and a
//! trailing checksum) are decoded by [`decode_aws_chunked`].
//!
//! Buckets live in the state of the region they were created in; bucket names are global,
//! so lookups search every region.
//!
//! Layout: this file holds buckets and objects; `wire.rs` how an S3 request is recognised
//! and how its body is decoded; `ops.rs` `serve`, the dispatch and one function per
//! operation. S3 has no control routes.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::response::Response;
use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use http_body_util::BodyExt;
use md5::{Digest, Md5};
use serde_json::{Value, json};

use crate::clock::{Millis, iso_millis, to_datetime};
use crate::protocol::{AwsError, Service, Wire, XmlWriter};
use crate::world::World;
use crate::{DEFAULT_REGION, Sandbox, faults};

mod ops;
#[cfg(test)]
mod tests;
mod wire;

pub(crate) use ops::serve;
pub(crate) use wire::is_s3_request;

/// The largest S3 request body accepted (the API services accept 2 MiB).
pub(crate) const MAX_OBJECT_BYTES: usize = 64 * 1024 * 1024;
const NS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// S3 state of one region: the buckets created in it.
#[derive(Debug, Default)]
pub(crate) struct State {
    buckets: BTreeMap<String, Bucket>,
}

#[derive(Debug)]
struct Bucket {
    created: Millis,
    objects: BTreeMap<String, Object>,
}

#[derive(Debug, Clone)]
struct Object {
    data: Bytes,
    etag: String,
    modified: Millis,
    content_type: Option<String>,
    crc32: Option<String>,
    meta: BTreeMap<String, String>,
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

fn no_bucket(b: &str) -> AwsError {
    AwsError::new(
        404,
        "NoSuchBucket",
        format!("The specified bucket does not exist: {b}"),
    )
}

fn no_key() -> AwsError {
    AwsError::new(404, "NoSuchKey", "The specified key does not exist.")
}

fn invalid_request(m: impl Into<String>) -> AwsError {
    AwsError::new(400, "InvalidRequest", m)
}

/// The buckets and objects, for `GET /_sandbox/state`.
pub(crate) fn state_json(state: &State) -> Value {
    let buckets: serde_json::Map<String, Value> = state
        .buckets
        .iter()
        .map(|(n, b)| {
            let objects: Vec<Value> = b
                .objects
                .iter()
                .map(|(k, o)| json!({"key": k, "size": o.data.len(), "etag": o.etag}))
                .collect();
            (
                n.clone(),
                json!({"created": iso_millis(b.created), "objects": objects}),
            )
        })
        .collect();
    json!({ "buckets": buckets })
}
