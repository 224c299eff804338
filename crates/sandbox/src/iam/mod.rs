//! Enforcing IAM identity-based policies (`lifehook sandbox --enforce-policy`, documented in
//! `docs/sandbox.md`).
//!
//! By default the sandbox accepts every request. Once a policy is bound, each request is
//! authorized as IAM would authorize it for the principal that signed it:
//!
//! - The principal is the access key id of the SigV4 credential (`Authorization:
//!   ... Credential=AKID/date/region/service/aws4_request`, or `X-Amz-Credential` of a
//!   presigned URL). A policy is bound to one access key id, or to every key (the default
//!   binding). The access key `ADMIN_ACCESS_KEY_ID` is never enforced, so that a test
//!   or a user can set up the world; keys without a binding are not enforced either.
//! - Each request is mapped to its IAM action (`autoscaling:CompleteLifecycleAction`;
//!   batch SQS calls are authorized as their single forms, as SQS does) and to the
//!   resources it acts on (the group's ARN, the queue's, the instances' ...; `*` for the
//!   actions IAM gives no resource type), each with the condition keys the sandbox knows
//!   (resource tags, `ecs:cluster`, `iam:PassedToService`, `aws:RequestedRegion` ...).
//! - Evaluation: an explicit `Deny` wins; otherwise some `Allow` must match every
//!   resource; otherwise the request is implicitly denied. Denied requests are answered
//!   with AccessDenied in the shape of their protocol and recorded (`Denial`,
//!   `GET /_sandbox/iam`, `GET /_sandbox/stats`).
//!
//! Policy language subset: `Version`, `Statement` (object or array), `Sid`, `Effect`,
//! `Action`/`NotAction`, `Resource`/`NotResource` with `*` and `?` wildcards and policy
//! variables (`${aws:RequestedRegion}`, `${aws:PrincipalAccount}`, any key of the request
//! context, `${*}`, `${?}`, `${$}`), and the condition operators `String(Not)Equals`,
//! `String(Not)EqualsIgnoreCase`, `String(Not)Like`, `Arn(Not)Equals`, `Arn(Not)Like`, each
//! optionally `...IfExists` and qualified with `ForAllValues:` or `ForAnyValue:` for
//! multivalued keys (`aws:TagKeys`). Anything else (another operator, a `Principal`)
//! rejects the whole document with a message naming it.
//!
//! Layout: this file holds the bindings, the denials and `authorize`; `policy.rs` policy
//! documents, their evaluation and the request context; `actions.rs` the IAM action and
//! resources of each operation of each service; `control.rs` the `/_sandbox/iam…` routes.
//! IAM has no API operations of its own, so there is no `ops.rs`.

use std::collections::BTreeMap;

use http::HeaderMap;
use serde::Serialize;
use serde_json::{Value, json};

use crate::protocol::{AwsError, Service};
use crate::protocol::{Input, RequestCtx};
use crate::world::World;
use crate::{ACCOUNT_ID, Sandbox};

mod actions;
mod control;
mod policy;
#[cfg(test)]
mod tests;

pub(crate) use actions::{action_of, checks, s3_check};
pub(crate) use control::control;
pub(crate) use policy::*;

/// The access key id that is never enforced.
pub const ADMIN_ACCESS_KEY_ID: &str = "lifehook-admin";
/// Denials kept for `GET /_sandbox/iam` (the oldest are dropped).
pub(crate) const MAX_DENIALS: usize = 10_000;

// ---------------------------------------------------------------------------------------
// Bindings and denials
// ---------------------------------------------------------------------------------------

/// Policies in force and the denials so far.
#[derive(Debug, Default)]
pub(crate) struct Iam {
    /// Applies to every access key without its own binding (but the admin key).
    default: Option<(Policy, Value)>,
    by_key: BTreeMap<String, (Policy, Value)>,
    denials: Vec<Denial>,
    denied_total: u64,
    /// The actions allowed so far, by access key (enforced keys only): what a policy was
    /// actually needed for.
    allowed: BTreeMap<String, std::collections::BTreeSet<String>>,
}

/// One denied request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Denial {
    pub(crate) access_key_id: String,
    pub(crate) service: String,
    pub(crate) operation: String,
    pub(crate) action: String,
    pub(crate) resource: String,
    pub(crate) explicit: bool,
    pub(crate) region: String,
    pub(crate) at_ms: u64,
}

impl Iam {
    #[cfg(test)]
    pub(crate) fn is_enforcing(&self) -> bool {
        self.default.is_some() || !self.by_key.is_empty()
    }

    /// Binds `policy` to `access_key_id`, or to every key when `None`.
    pub(crate) fn bind(&mut self, access_key_id: Option<&str>, doc: Value) -> Result<(), String> {
        if access_key_id == Some(ADMIN_ACCESS_KEY_ID) {
            return Err(format!(
                "{ADMIN_ACCESS_KEY_ID} is the sandbox's admin access key and is never enforced"
            ));
        }
        if let Some(k) = access_key_id
            && (k.is_empty()
                || k.len() > 128
                || !k
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        {
            return Err(format!(
                "access key id {k:?} must be 1 to 128 letters, digits, '-' or '_'"
            ));
        }
        let policy = Policy::parse(&doc)?;
        match access_key_id {
            Some(k) => {
                self.by_key.insert(k.to_owned(), (policy, doc));
            }
            None => self.default = Some((policy, doc)),
        }
        Ok(())
    }

    pub(crate) fn clear(&mut self) {
        self.default = None;
        self.by_key.clear();
        self.denials.clear();
        self.denied_total = 0;
        self.allowed.clear();
    }

    pub(crate) fn denials(&self) -> &[Denial] {
        &self.denials
    }

    fn policy_for(&self, access_key_id: &str) -> Option<&Policy> {
        if access_key_id == ADMIN_ACCESS_KEY_ID {
            return None;
        }
        self.by_key
            .get(access_key_id)
            .or(self.default.as_ref())
            .map(|(p, _)| p)
    }

    /// Judges `action` on `resource` for `who`: `None` when allowed (or nothing is enforced
    /// for that key); `Some(explicit)` when denied, the denial recorded.
    fn judge(&mut self, who: &Caller<'_>, action: &str, resource: &Resource) -> Option<bool> {
        let verdict = self
            .policy_for(who.access_key_id)?
            .evaluate(action, resource, &who.context);
        if verdict == Verdict::Allow {
            return None;
        }
        let explicit = verdict == Verdict::ExplicitDeny;
        tracing::info!(access_key_id = %who.access_key_id, action, resource = %resource.arn, explicit, "access denied");
        self.record(Denial {
            access_key_id: who.access_key_id.to_owned(),
            service: who.service.to_string(),
            operation: who.operation.to_owned(),
            action: action.to_owned(),
            resource: resource.arn.clone(),
            explicit,
            region: who.region.to_owned(),
            at_ms: who.now,
        });
        Some(explicit)
    }

    /// Notes `actions` as used by `access_key_id` (enforced keys only).
    fn mark_used(&mut self, access_key_id: &str, actions: impl IntoIterator<Item = String>) {
        if self.policy_for(access_key_id).is_none() {
            return;
        }
        self.allowed
            .entry(access_key_id.to_owned())
            .or_default()
            .extend(actions);
    }

    /// Authorizes a call AWS makes on a principal's behalf inside the sandbox (a Lambda
    /// event source mapping polling with the function's role): `who`'s operation on
    /// `resource_arn`. Records a denial, or the action as used, like a request; true when
    /// allowed (and when nothing is enforced for that key).
    pub(crate) fn authorize_internal(&mut self, who: &Caller<'_>, resource_arn: &str) -> bool {
        let action = action_of(who.service, who.operation);
        if self
            .judge(who, &action, &Resource::new(resource_arn))
            .is_some()
        {
            return false;
        }
        self.mark_used(who.access_key_id, [action]);
        true
    }

    fn record(&mut self, d: Denial) {
        self.denied_total += 1;
        if self.denials.len() >= MAX_DENIALS {
            self.denials.remove(0);
        }
        self.denials.push(d);
    }

    /// `GET /_sandbox/iam`.
    pub(crate) fn to_json(&self) -> Value {
        let keys: serde_json::Map<String, Value> = self
            .by_key
            .iter()
            .map(|(k, (_, doc))| (k.clone(), doc.clone()))
            .collect();
        json!({
            "admin_access_key_id": ADMIN_ACCESS_KEY_ID,
            "default": self.default.as_ref().map(|(_, d)| d.clone()),
            "access_keys": keys,
            "denied": self.denied_total,
            "denials": self.denials,
            "allowed_actions": self.allowed,
        })
    }
}

/// The access key id that signed a request (`None`: unsigned).
pub(crate) fn access_key_id(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    let from_auth = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split(['/', ',', ' ']).next())
        .map(str::to_owned);
    from_auth.or_else(|| {
        query?.split('&').find_map(|kv| {
            let v = kv.strip_prefix("X-Amz-Credential=")?;
            let v = v.replace("%2F", "/").replace("%2f", "/");
            v.split('/').next().map(str::to_owned)
        })
    })
}

/// Authorizes a request: `None` to go on, or the AccessDenied error to answer.
pub(crate) fn authorize(
    sb: &Sandbox,
    headers: &HeaderMap,
    query: Option<&str>,
    service: Service,
    operation: &str,
    region: &str,
    checks: impl FnOnce(&World) -> Vec<Check>,
) -> Option<AwsError> {
    let akid = access_key_id(headers, query).unwrap_or_else(|| "anonymous".into());
    // Policy first (cheap), world lookups only when enforced.
    {
        let iam = sb.iam();
        iam.policy_for(&akid)?;
    }
    let (checks, now) = {
        let w = sb.lock();
        (checks(&w), w.now)
    };
    let who = Caller::new(&akid, service, operation, region, now);
    let mut iam = sb.iam();
    for c in &checks {
        for r in &c.resources {
            if let Some(explicit) = iam.judge(&who, &c.action, r) {
                return Some(denied(service, &akid, &c.action, &r.arn, explicit));
            }
        }
    }
    iam.mark_used(&akid, checks.into_iter().map(|c| c.action));
    None
}

/// AccessDenied as `service` answers it.
pub(crate) fn denied(
    service: Service,
    akid: &str,
    action: &str,
    resource: &str,
    explicit: bool,
) -> AwsError {
    let why = if explicit {
        "with an explicit deny in an identity-based policy".to_owned()
    } else {
        format!("because no identity-based policy allows the {action} action")
    };
    let message = format!(
        "User: {} is not authorized to perform: {action} on resource: {resource} {why}",
        principal_arn(akid)
    );
    match service {
        Service::Ec2 => AwsError::new(
            403,
            "UnauthorizedOperation",
            format!("You are not authorized to perform this operation. {message}"),
        ),
        Service::Sns => AwsError::new(403, "AuthorizationError", message),
        // JSON 1.0 with the Query code in x-amzn-query-error (awsQueryCompatible).
        Service::Sqs => AwsError::new(403, "AccessDenied", message),
        Service::Ecs | Service::Ssm | Service::Events => {
            AwsError::new(400, "AccessDeniedException", message)
        }
        _ => AwsError::new(403, "AccessDenied", message),
    }
}
