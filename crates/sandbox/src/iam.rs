//! Enforcing IAM identity-based policies (`lifehook sandbox --enforce-policy`, documented in
//! `docs/sandbox.md`).
//!
//! By default the sandbox accepts every request. Once a policy is bound, each request is
//! authorized as IAM would authorize it for the principal that signed it:
//!
//! - The principal is the access key id of the SigV4 credential (`Authorization:
//!   ... Credential=AKID/date/region/service/aws4_request`, or `X-Amz-Credential` of a
//!   presigned URL). A policy is bound to one access key id, or to every key (the default
//!   binding). The access key [`ADMIN_ACCESS_KEY_ID`] is never enforced, so that a test
//!   or a user can set up the world; keys without a binding are not enforced either.
//! - Each request is mapped to its IAM action (`autoscaling:CompleteLifecycleAction`;
//!   batch SQS calls are authorized as their single forms, as SQS does) and to the
//!   resources it acts on (the group's ARN, the queue's, the instances' ...; `*` for the
//!   actions IAM gives no resource type), each with the condition keys the sandbox knows
//!   (resource tags, `ecs:cluster`, `iam:PassedToService`, `aws:RequestedRegion` ...).
//! - Evaluation: an explicit `Deny` wins; otherwise some `Allow` must match every
//!   resource; otherwise the request is implicitly denied. Denied requests are answered
//!   with AccessDenied in the shape of their protocol and recorded ([`Denial`],
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

use std::collections::BTreeMap;

use http::HeaderMap;
use serde::Serialize;
use serde_json::{Value, json};

use crate::protocol::{AwsError, Service};
use crate::server::{Input, RequestCtx};
use crate::world::World;
use crate::{ACCOUNT_ID, Sandbox};

/// The access key id that is never enforced.
pub const ADMIN_ACCESS_KEY_ID: &str = "lifehook-admin";
/// Denials kept for `GET /_sandbox/iam` (the oldest are dropped).
pub const MAX_DENIALS: usize = 10_000;

// ---------------------------------------------------------------------------------------
// Policy documents
// ---------------------------------------------------------------------------------------

/// A parsed identity-based policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    statements: Vec<Stmt>,
    /// `2012-10-17`: policy variables are substituted (older versions take them literally).
    variables: bool,
}

#[derive(Debug, Clone, PartialEq)]
struct Stmt {
    allow: bool,
    /// `NotAction` when true.
    not_action: bool,
    actions: Vec<String>,
    not_resource: bool,
    resources: Vec<String>,
    conditions: Vec<Cond>,
}

#[derive(Debug, Clone, PartialEq)]
struct Cond {
    set: SetOp,
    op: Op,
    negated: bool,
    if_exists: bool,
    key: String,
    values: Vec<String>,
}

/// How a condition treats a key with several values in the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetOp {
    /// No qualifier: some value of the request matches.
    Single,
    /// `ForAllValues:` every value of the request matches (true when the key is absent
    /// or empty, as in IAM).
    ForAll,
    /// `ForAnyValue:` some value of the request matches (false when the key is absent).
    ForAny,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Equals,
    EqualsIgnoreCase,
    Like,
}

impl Policy {
    /// Parses a policy document; the error names what is wrong and where.
    pub fn parse(doc: &Value) -> Result<Policy, String> {
        let obj = doc
            .as_object()
            .ok_or("a policy document is a JSON object")?;
        for k in obj.keys() {
            if !matches!(k.as_str(), "Version" | "Id" | "Statement") {
                return Err(format!(
                    "unknown top-level element {k:?} (expected Version, Id, Statement)"
                ));
            }
        }
        let variables = match obj.get("Version") {
            None => false,
            Some(Value::String(v)) if v == "2012-10-17" => true,
            Some(Value::String(v)) if v == "2008-10-17" => false,
            Some(v) => {
                return Err(format!("Version {v} is not 2012-10-17 or 2008-10-17"));
            }
        };
        let stmts = match obj.get("Statement") {
            Some(Value::Array(a)) => a.iter().collect::<Vec<_>>(),
            Some(s @ Value::Object(_)) => vec![s],
            Some(_) => return Err("Statement must be an object or an array of objects".into()),
            None => return Err("the document has no Statement".into()),
        };
        let statements = stmts
            .iter()
            .enumerate()
            .map(|(i, s)| Stmt::parse(s).map_err(|e| format!("Statement[{i}]: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Policy {
            statements,
            variables,
        })
    }

    /// How the policy judges `action` on one resource.
    pub fn evaluate(&self, action: &str, resource: &Resource, ctx: &Context) -> Verdict {
        let mut allowed = false;
        for s in &self.statements {
            if s.applies(action, resource, ctx, self.variables) {
                if !s.allow {
                    return Verdict::ExplicitDeny;
                }
                allowed = true;
            }
        }
        if allowed {
            Verdict::Allow
        } else {
            Verdict::ImplicitDeny
        }
    }
}

/// One policy's judgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    ImplicitDeny,
    ExplicitDeny,
}

fn strings(v: &Value, what: &str) -> Result<Vec<String>, String> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(a) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("{what} must hold strings, found {x}"))
            })
            .collect(),
        other => Err(format!(
            "{what} must be a string or an array of strings, found {other}"
        )),
    }
}

impl Stmt {
    fn parse(v: &Value) -> Result<Stmt, String> {
        let o = v.as_object().ok_or("a statement is a JSON object")?;
        for k in o.keys() {
            match k.as_str() {
                "Sid" | "Effect" | "Action" | "NotAction" | "Resource" | "NotResource"
                | "Condition" => {}
                "Principal" | "NotPrincipal" => {
                    return Err(format!(
                        "{k} belongs to resource-based policies; an identity-based policy has none"
                    ));
                }
                other => return Err(format!("unknown element {other:?}")),
            }
        }
        let allow = match o.get("Effect").and_then(Value::as_str) {
            Some("Allow") => true,
            Some("Deny") => false,
            Some(e) => return Err(format!("Effect {e:?} is not Allow or Deny")),
            None => return Err("Effect is missing".into()),
        };
        let (not_action, actions) = match (o.get("Action"), o.get("NotAction")) {
            (Some(a), None) => (false, strings(a, "Action")?),
            (None, Some(a)) => (true, strings(a, "NotAction")?),
            _ => return Err("exactly one of Action and NotAction is required".into()),
        };
        for a in &actions {
            if a != "*"
                && !a
                    .split_once(':')
                    .is_some_and(|(p, n)| !p.is_empty() && !n.is_empty())
            {
                return Err(format!("action {a:?} is not `service:Action` or `*`"));
            }
        }
        let (not_resource, resources) = match (o.get("Resource"), o.get("NotResource")) {
            (Some(r), None) => (false, strings(r, "Resource")?),
            (None, Some(r)) => (true, strings(r, "NotResource")?),
            _ => return Err("exactly one of Resource and NotResource is required".into()),
        };
        let mut conditions = Vec::new();
        if let Some(c) = o.get("Condition") {
            let c = c.as_object().ok_or("Condition must be an object")?;
            for (op_name, keys) in c {
                let (set, op, negated, if_exists) = parse_operator(op_name)?;
                let keys = keys
                    .as_object()
                    .ok_or_else(|| format!("Condition {op_name} must map keys to values"))?;
                for (key, values) in keys {
                    let values = match values {
                        Value::Bool(b) => vec![b.to_string()],
                        Value::Number(n) => vec![n.to_string()],
                        v => strings(v, &format!("Condition {op_name} {key}"))?,
                    };
                    conditions.push(Cond {
                        set,
                        op,
                        negated,
                        if_exists,
                        key: key.to_ascii_lowercase(),
                        values,
                    });
                }
            }
        }
        Ok(Stmt {
            allow,
            not_action,
            actions,
            not_resource,
            resources,
            conditions,
        })
    }

    fn applies(&self, action: &str, resource: &Resource, ctx: &Context, vars: bool) -> bool {
        let action_hit = self
            .actions
            .iter()
            .any(|p| wildcard(&p.to_ascii_lowercase(), &action.to_ascii_lowercase()));
        if action_hit == self.not_action {
            return false;
        }
        let resource_hit = self.resources.iter().any(|p| {
            let p = if vars {
                substitute(p, resource, ctx)
            } else {
                Some(p.clone())
            };
            p.is_some_and(|p| wildcard(&p, &resource.arn))
        });
        if resource_hit == self.not_resource {
            return false;
        }
        self.conditions.iter().all(|c| c.holds(resource, ctx, vars))
    }
}

fn parse_operator(name: &str) -> Result<(SetOp, Op, bool, bool), String> {
    let (set, base) = match name.split_once(':') {
        None => (SetOp::Single, name),
        Some(("ForAllValues", op)) => (SetOp::ForAll, op),
        Some(("ForAnyValue", op)) => (SetOp::ForAny, op),
        Some((q, _)) => {
            return Err(format!(
                "condition operator {name:?}: {q:?} is not a qualifier (ForAllValues: or ForAnyValue:)"
            ));
        }
    };
    let (base, if_exists) = match base.strip_suffix("IfExists") {
        Some(b) => (b, true),
        None => (base, false),
    };
    let (op, negated) = match base {
        "StringEquals" => (Op::Equals, false),
        "StringNotEquals" => (Op::Equals, true),
        "StringEqualsIgnoreCase" => (Op::EqualsIgnoreCase, false),
        "StringNotEqualsIgnoreCase" => (Op::EqualsIgnoreCase, true),
        "StringLike" | "ArnEquals" | "ArnLike" => (Op::Like, false),
        "StringNotLike" | "ArnNotEquals" | "ArnNotLike" => (Op::Like, true),
        _ => {
            return Err(format!(
                "condition operator {name:?} is not supported by the sandbox (String(Not)Equals, String(Not)EqualsIgnoreCase, String(Not)Like, Arn(Not)Equals, Arn(Not)Like, each with IfExists)"
            ));
        }
    };
    Ok((set, op, negated, if_exists))
}

impl Cond {
    fn holds(&self, resource: &Resource, ctx: &Context, vars: bool) -> bool {
        let actual = ctx.values(&self.key, resource).filter(|v| !v.is_empty());
        let values: Vec<String> = self
            .values
            .iter()
            .filter_map(|v| {
                if vars {
                    substitute(v, resource, ctx)
                } else {
                    Some(v.clone())
                }
            })
            .collect();
        // Whether one request value matches one of the condition's values.
        let matches = |a: &String| {
            values.iter().any(|v| match self.op {
                Op::Equals => a == v,
                Op::EqualsIgnoreCase => a.eq_ignore_ascii_case(v),
                Op::Like => wildcard(v, a),
            })
        };
        match (self.set, actual) {
            // A missing key: negated operators hold, others do not (IfExists: both hold).
            (SetOp::Single, None) => self.negated || self.if_exists,
            (SetOp::Single, Some(actual)) => actual.iter().any(matches) != self.negated,
            (SetOp::ForAll, None) => true,
            (SetOp::ForAll, Some(actual)) => actual.iter().all(|a| matches(a) != self.negated),
            (SetOp::ForAny, None) => self.if_exists,
            (SetOp::ForAny, Some(actual)) => actual.iter().any(|a| matches(a) != self.negated),
        }
    }
}

/// IAM wildcard matching: `*` any run of characters (`/` and `:` included), `?` one.
pub fn wildcard(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Substitutes `${...}` policy variables; `None` when one cannot be resolved (the
/// pattern then matches nothing). `${*}`, `${?}`, `${$}` are the literal characters
/// (`*` and `?` then still act as wildcards, as IAM's escaping is only for the parser).
fn substitute(s: &str, resource: &Resource, ctx: &Context) -> Option<String> {
    if !s.contains("${") {
        return Some(s.to_owned());
    }
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after.find('}')?;
        let inner = after[..end].trim();
        match inner {
            "*" | "?" | "$" => out.push_str(inner),
            _ => {
                // `${key, 'default'}`
                let (key, default) = match inner.split_once(',') {
                    Some((k, d)) => (k.trim(), Some(d.trim().trim_matches('\'').to_owned())),
                    None => (inner, None),
                };
                let v = ctx
                    .values(&key.to_ascii_lowercase(), resource)
                    .and_then(|v| v.first().cloned())
                    .or(default)?;
                out.push_str(&v);
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

// ---------------------------------------------------------------------------------------
// Request context
// ---------------------------------------------------------------------------------------

/// A resource a request acts on, with its own condition keys (lowercase names).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Resource {
    pub arn: String,
    pub keys: BTreeMap<String, Vec<String>>,
}

impl Resource {
    pub fn new(arn: impl Into<String>) -> Resource {
        Resource {
            arn: arn.into(),
            keys: BTreeMap::new(),
        }
    }

    pub fn any() -> Resource {
        Resource::new("*")
    }

    pub fn key(mut self, k: &str, v: impl Into<String>) -> Resource {
        self.keys
            .entry(k.to_ascii_lowercase())
            .or_default()
            .push(v.into());
        self
    }

    /// `PREFIX/KEY` for each tag, for every prefix (`aws:ResourceTag`, `ec2:ResourceTag` ...).
    fn tags<'a>(
        mut self,
        prefixes: &[&str],
        tags: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Resource {
        for (k, v) in tags {
            for p in prefixes {
                self = self.key(&format!("{p}/{k}"), v);
            }
        }
        self
    }
}

/// The request-wide condition keys (lowercase names).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Context {
    pub keys: BTreeMap<String, Vec<String>>,
}

impl Context {
    pub fn new(region: &str, access_key_id: &str) -> Context {
        let mut keys = BTreeMap::new();
        keys.insert("aws:requestedregion".into(), vec![region.to_owned()]);
        keys.insert("aws:principalaccount".into(), vec![ACCOUNT_ID.to_owned()]);
        keys.insert(
            "aws:principalarn".into(),
            vec![principal_arn(access_key_id)],
        );
        keys.insert("aws:userid".into(), vec![access_key_id.to_owned()]);
        Context { keys }
    }

    fn values<'a>(&'a self, key: &str, resource: &'a Resource) -> Option<&'a Vec<String>> {
        resource.keys.get(key).or_else(|| self.keys.get(key))
    }
}

/// The ARN a denial names the principal by.
pub fn principal_arn(access_key_id: &str) -> String {
    format!("arn:aws:sts::{ACCOUNT_ID}:assumed-role/lifehook-sandbox/{access_key_id}")
}

/// What one request needs: an action on resources (some requests need two, e.g.
/// PutLifecycleHook with a RoleARN also needs `iam:PassRole`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub action: String,
    pub resources: Vec<Resource>,
}

/// Who makes a request, and what: the principal, the operation, where and when.
pub struct Caller<'a> {
    pub access_key_id: &'a str,
    pub service: Service,
    pub operation: &'a str,
    pub region: &'a str,
    pub now: u64,
    context: Context,
}

impl<'a> Caller<'a> {
    pub fn new(
        access_key_id: &'a str,
        service: Service,
        operation: &'a str,
        region: &'a str,
        now: u64,
    ) -> Caller<'a> {
        Caller {
            access_key_id,
            service,
            operation,
            region,
            now,
            context: Context::new(region, access_key_id),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Bindings and denials
// ---------------------------------------------------------------------------------------

/// Policies in force and the denials so far.
#[derive(Debug, Default)]
pub struct Iam {
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
pub struct Denial {
    pub access_key_id: String,
    pub service: String,
    pub operation: String,
    pub action: String,
    pub resource: String,
    pub explicit: bool,
    pub region: String,
    pub at_ms: u64,
}

impl Iam {
    pub fn is_enforcing(&self) -> bool {
        self.default.is_some() || !self.by_key.is_empty()
    }

    /// Binds `policy` to `access_key_id`, or to every key when `None`.
    pub fn bind(&mut self, access_key_id: Option<&str>, doc: Value) -> Result<(), String> {
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

    pub fn clear(&mut self) {
        self.default = None;
        self.by_key.clear();
        self.denials.clear();
        self.denied_total = 0;
        self.allowed.clear();
    }

    pub fn denials(&self) -> &[Denial] {
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
    pub fn authorize_internal(&mut self, who: &Caller<'_>, resource_arn: &str) -> bool {
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
    pub fn to_json(&self) -> Value {
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
pub fn access_key_id(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
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
pub fn authorize(
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
pub fn denied(
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

// ---------------------------------------------------------------------------------------
// Requests → actions and resources
// ---------------------------------------------------------------------------------------

fn param(input: &Input, k: &str) -> Option<String> {
    match input {
        Input::Query(p) => p.get_nonempty(k).map(str::to_owned),
        Input::Json(j) => j.get(k).and_then(Value::as_str).map(str::to_owned),
    }
}

fn param_list(input: &Input, k: &str) -> Vec<String> {
    match input {
        Input::Query(p) => p.list(k),
        Input::Json(j) => match j.get(k) {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            Some(Value::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        },
    }
}

fn arn(service: &str, region: &str, resource: &str) -> String {
    format!("arn:aws:{service}:{region}:{ACCOUNT_ID}:{resource}")
}

/// `aws:TagKeys` and `aws:RequestTag/KEY` of the `Tag.N` structures of a request.
fn request_tags(mut r: Resource, tags: &[crate::protocol::Params]) -> Resource {
    for t in tags {
        if let Some(k) = t.get("Key") {
            r = r.key("aws:TagKeys", k).key(
                &format!("aws:RequestTag/{k}"),
                t.get("Value").unwrap_or_default(),
            );
        }
    }
    r
}

/// The stack id of stacks the sandbox does not model.
const STACK_ID: &str = "00000000-0000-0000-0000-000000000000";
/// The id in a group ARN the sandbox does not know.
const UNKNOWN_GROUP_ID: &str = "00000000-0000-0000-0000-000000000000";

/// The IAM action of an API operation.
pub fn action_of(service: Service, op: &str) -> String {
    let op = match (service, op) {
        (Service::Sqs, "DeleteMessageBatch") => "DeleteMessage",
        (Service::Sqs, "ChangeMessageVisibilityBatch") => "ChangeMessageVisibility",
        (Service::Sqs, "SendMessageBatch") => "SendMessage",
        (_, op) => op,
    };
    format!("{}:{op}", service.signing_name())
}

/// What a (non-S3) request needs.
pub fn checks(w: &World, ctx: &RequestCtx, input: &Input) -> Vec<Check> {
    let region = ctx.region.as_str();
    let op = ctx.op.as_str();
    let action = action_of(ctx.service, op);
    let reg = w.regions.get(region);
    let any = || vec![Resource::any()];
    let instance = |id: &str, prefixes: &[&str]| {
        let mut r = Resource::new(arn("ec2", region, &format!("instance/{id}")));
        if let Some((rg, rec)) = reg.and_then(|rg| rg.ec2.instances.get(id).map(|rec| (rg, rec))) {
            let view = crate::ec2::view(rg, rec);
            let tags = view.tags();
            r = r.tags(prefixes, tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        }
        r
    };
    let mut out = Vec::new();
    let resources = match ctx.service {
        Service::Sts => return Vec::new(),
        Service::AutoScaling => {
            let group = param(input, "AutoScalingGroupName").or_else(|| {
                let id = param(input, "InstanceId")?;
                reg?.autoscaling.instances.get(&id).map(|i| i.group.clone())
            });
            match group {
                Some(g) if !op.starts_with("Describe") => {
                    let known = reg.and_then(|r| r.autoscaling.groups.get(&g));
                    let mut r = Resource::new(known.map(|k| k.arn.clone()).unwrap_or_else(|| {
                        crate::autoscaling::engine::group_arn(region, UNKNOWN_GROUP_ID, &g)
                    }));
                    if let Some(k) = known {
                        r = r.tags(
                            &["aws:ResourceTag", "autoscaling:ResourceTag"],
                            k.tags.iter().map(|t| (t.key.as_str(), t.value.as_str())),
                        );
                    }
                    if op == "PutLifecycleHook"
                        && let Some(role) = param(input, "RoleARN")
                    {
                        out.push(Check {
                            action: "iam:PassRole".into(),
                            resources: vec![
                                Resource::new(role)
                                    .key("iam:PassedToService", "autoscaling.amazonaws.com"),
                            ],
                        });
                    }
                    vec![r]
                }
                _ => any(),
            }
        }
        Service::Sqs => {
            let queue = |name: &str, account: Option<&str>| {
                Resource::new(format!(
                    "arn:aws:sqs:{region}:{}:{name}",
                    account.unwrap_or(ACCOUNT_ID)
                ))
            };
            match op {
                "ListQueues" => any(),
                "CreateQueue" | "GetQueueUrl" => match param(input, "QueueName") {
                    Some(n) => vec![queue(&n, param(input, "QueueOwnerAWSAccountId").as_deref())],
                    None => any(),
                },
                _ => {
                    let url = param(input, "QueueUrl").unwrap_or_else(|| ctx.path.clone());
                    let segs: Vec<&str> = url
                        .split('?')
                        .next()
                        .unwrap_or_default()
                        .rsplit('/')
                        .filter(|s| !s.is_empty())
                        .take(2)
                        .collect();
                    match segs.as_slice() {
                        [name, account] if account.chars().all(|c| c.is_ascii_digit()) => {
                            vec![queue(name, Some(account))]
                        }
                        [name, ..] => vec![queue(name, None)],
                        [] => any(),
                    }
                }
            }
        }
        Service::Sns => match op {
            "CreateTopic" => match param(input, "Name") {
                Some(n) => vec![Resource::new(arn("sns", region, &n))],
                None => any(),
            },
            _ => match param(input, "TopicArn").or_else(|| param(input, "TargetArn")) {
                Some(t) => vec![Resource::new(t)],
                None => any(),
            },
        },
        Service::Ec2 => {
            if op == "CreateImage"
                && let Input::Query(p) = input
            {
                // The new image and its snapshots, and their tags: `ec2:CreateTags` with
                // `ec2:CreateAction` (tag-on-create).
                for spec in p.struct_list("TagSpecification") {
                    let kind = spec.get("ResourceType").unwrap_or_default();
                    if kind == "image" || kind == "snapshot" {
                        out.push(Check {
                            action: "ec2:CreateTags".into(),
                            resources: vec![request_tags(
                                Resource::new(format!("arn:aws:ec2:{region}::{kind}/*"))
                                    .key("ec2:CreateAction", "CreateImage"),
                                &spec.struct_list("Tag"),
                            )],
                        });
                    }
                }
            }
            let tags = match (op, input) {
                ("CreateTags" | "DeleteTags", Input::Query(p)) => p.struct_list("Tag"),
                _ => Vec::new(),
            };
            let ids = match op {
                "CreateTags" | "DeleteTags" => param_list(input, "ResourceId"),
                "TerminateInstances" | "StopInstances" | "StartInstances" | "RebootInstances" => {
                    param_list(input, "InstanceId")
                }
                "CreateImage" => param(input, "InstanceId").into_iter().collect(),
                _ => Vec::new(),
            };
            let mut rs: Vec<Resource> = ids
                .iter()
                .map(|id| match id.split_once('-').map(|(p, _)| p) {
                    Some("i") => instance(id, &["aws:ResourceTag", "ec2:ResourceTag"]),
                    Some("ami") => Resource::new(format!("arn:aws:ec2:{region}::image/{id}")),
                    Some("snap") => Resource::new(format!("arn:aws:ec2:{region}::snapshot/{id}")),
                    _ => Resource::new(arn("ec2", region, &format!("resource/{id}"))),
                })
                .map(|r| request_tags(r, &tags))
                .collect();
            if op == "CreateImage" {
                for kind in ["image", "snapshot"] {
                    rs.push(Resource::new(format!("arn:aws:ec2:{region}::{kind}/*")));
                }
            }
            if rs.is_empty() { any() } else { rs }
        }
        Service::Ecs => {
            let cluster_name = param(input, "cluster")
                .map(|c| c.rsplit_once('/').map_or(c.clone(), |(_, n)| n.to_owned()))
                .unwrap_or_else(|| "default".into());
            let cluster_arn = arn("ecs", region, &format!("cluster/{cluster_name}"));
            let scoped = |kind: &str, ids: Vec<String>| -> Vec<Resource> {
                ids.iter()
                    .map(|id| {
                        let a = if id.starts_with("arn:") {
                            id.clone()
                        } else {
                            arn("ecs", region, &format!("{kind}/{cluster_name}/{id}"))
                        };
                        Resource::new(a).key("ecs:cluster", cluster_arn.clone())
                    })
                    .collect()
            };
            let rs = match op {
                "ListClusters" | "CreateCluster" => Vec::new(),
                "ListContainerInstances" | "ListServices" | "DeleteCluster" => {
                    vec![Resource::new(cluster_arn.clone())]
                }
                "UpdateContainerInstancesState" | "DescribeContainerInstances" => scoped(
                    "container-instance",
                    param_list(input, "containerInstances"),
                ),
                "ListTasks" | "DeregisterContainerInstance" => scoped(
                    "container-instance",
                    param(input, "containerInstance").into_iter().collect(),
                ),
                "DescribeTasks" => scoped("task", param_list(input, "tasks")),
                "StopTask" => scoped("task", param(input, "task").into_iter().collect()),
                "DescribeServices" => scoped("service", param_list(input, "services")),
                _ => Vec::new(),
            };
            if rs.is_empty() { any() } else { rs }
        }
        Service::Ssm => match op {
            "SendCommand" => {
                let mut rs = Vec::new();
                if let Some(doc) = param(input, "DocumentName") {
                    let owner = if doc.starts_with("AWS-") {
                        ""
                    } else {
                        ACCOUNT_ID
                    };
                    rs.push(Resource::new(if doc.starts_with("arn:") {
                        doc
                    } else {
                        format!("arn:aws:ssm:{region}:{owner}:document/{doc}")
                    }));
                }
                for id in param_list(input, "InstanceIds") {
                    rs.push(instance(&id, &["ssm:resourceTag", "aws:ResourceTag"]));
                }
                if rs.is_empty() { any() } else { rs }
            }
            _ => any(),
        },
        Service::CloudFormation => match param(input, "StackName") {
            Some(s) if s.starts_with("arn:") => vec![Resource::new(s)],
            Some(s) => vec![Resource::new(arn(
                "cloudformation",
                region,
                &format!("stack/{s}/{STACK_ID}"),
            ))],
            None => any(),
        },
        Service::Elbv2 => {
            let rs: Vec<Resource> = param(input, "TargetGroupArn")
                .or_else(|| param(input, "LoadBalancerArn"))
                .filter(|_| !op.starts_with("Describe"))
                .map(Resource::new)
                .into_iter()
                .collect();
            if rs.is_empty() { any() } else { rs }
        }
        Service::Events => match param(input, "Rule").or_else(|| param(input, "Name")) {
            Some(r) if op != "PutEvents" => {
                vec![Resource::new(arn("events", region, &format!("rule/{r}")))]
            }
            _ => any(),
        },
        Service::S3 => any(),
    };
    out.insert(0, Check { action, resources });
    out
}

/// What an S3 request needs.
pub fn s3_check(op: &str, bucket: Option<&str>, key: &str) -> Check {
    let object = || {
        vec![Resource::new(format!(
            "arn:aws:s3:::{}/{key}",
            bucket.unwrap_or_default()
        ))]
    };
    let bucket_arn = || {
        vec![Resource::new(format!(
            "arn:aws:s3:::{}",
            bucket.unwrap_or_default()
        ))]
    };
    let (action, resources) = match op {
        "GetObject" | "HeadObject" => ("s3:GetObject", object()),
        "PutObject" | "CopyObject" => ("s3:PutObject", object()),
        "DeleteObject" => ("s3:DeleteObject", object()),
        "ListObjects" | "ListObjectsV2" | "HeadBucket" => ("s3:ListBucket", bucket_arn()),
        "CreateBucket" => ("s3:CreateBucket", bucket_arn()),
        "DeleteBucket" => ("s3:DeleteBucket", bucket_arn()),
        "GetBucketLocation" => ("s3:GetBucketLocation", bucket_arn()),
        "ListBuckets" => ("s3:ListAllMyBuckets", vec![Resource::any()]),
        other => {
            return Check {
                action: format!("s3:{other}"),
                resources: vec![Resource::any()],
            };
        }
    };
    Check {
        action: action.into(),
        resources,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(v: Value) -> Policy {
        Policy::parse(&v).expect("valid policy")
    }

    fn ctx() -> Context {
        Context::new("eu-west-1", "handler")
    }

    #[test]
    fn allow_implicit_and_explicit_deny() {
        let p = policy(json!({
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "autoscaling:*LifecycleAction*", "Resource": "*"},
                {"Effect": "Deny", "Action": "autoscaling:RecordLifecycleActionHeartbeat", "Resource": "*"}
            ]
        }));
        let r = Resource::new(
            "arn:aws:autoscaling:eu-west-1:000000000000:autoScalingGroup:x:autoScalingGroupName/web",
        );
        assert_eq!(
            p.evaluate("autoscaling:CompleteLifecycleAction", &r, &ctx()),
            Verdict::Allow
        );
        // Actions compare without case.
        assert_eq!(
            p.evaluate("AutoScaling:completelifecycleaction", &r, &ctx()),
            Verdict::Allow
        );
        assert_eq!(
            p.evaluate("autoscaling:RecordLifecycleActionHeartbeat", &r, &ctx()),
            Verdict::ExplicitDeny
        );
        assert_eq!(
            p.evaluate("autoscaling:DeleteAutoScalingGroup", &r, &ctx()),
            Verdict::ImplicitDeny
        );
    }

    #[test]
    fn variables_wildcards_not_action_and_not_resource() {
        let p = policy(json!({
            "Version": "2012-10-17",
            "Statement": {"Effect": "Allow", "Action": ["sqs:ReceiveMessage"],
                "Resource": "arn:aws:sqs:${aws:RequestedRegion}:${aws:PrincipalAccount}:web-??"}
        }));
        let q =
            |n: &str, region: &str| Resource::new(format!("arn:aws:sqs:{region}:000000000000:{n}"));
        assert_eq!(
            p.evaluate("sqs:ReceiveMessage", &q("web-01", "eu-west-1"), &ctx()),
            Verdict::Allow
        );
        assert_eq!(
            p.evaluate("sqs:ReceiveMessage", &q("web-1", "eu-west-1"), &ctx()),
            Verdict::ImplicitDeny
        );
        assert_eq!(
            p.evaluate("sqs:ReceiveMessage", &q("web-01", "us-east-1"), &ctx()),
            Verdict::ImplicitDeny
        );
        // Without the 2012 version variables are literal text.
        let old = policy(json!({"Statement": {"Effect": "Allow", "Action": "*",
            "Resource": "arn:aws:sqs:${aws:RequestedRegion}:*"}}));
        assert_eq!(
            old.evaluate("sqs:ReceiveMessage", &q("a", "eu-west-1"), &ctx()),
            Verdict::ImplicitDeny
        );

        let p = policy(json!({
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"},
                {"Effect": "Deny", "Action": "*", "NotResource": "arn:aws:s3:::logs/*"}
            ]
        }));
        let obj = Resource::new("arn:aws:s3:::logs/a.txt");
        assert_eq!(p.evaluate("s3:PutObject", &obj, &ctx()), Verdict::Allow);
        assert_eq!(
            p.evaluate("iam:PassRole", &obj, &ctx()),
            Verdict::ImplicitDeny
        );
        assert_eq!(
            p.evaluate(
                "s3:PutObject",
                &Resource::new("arn:aws:s3:::other/a"),
                &ctx()
            ),
            Verdict::ExplicitDeny
        );
        assert!(wildcard("a*b?c", "a/x:yb1c"));
        assert!(!wildcard("a*b?c", "abc"));
        assert!(wildcard("*", ""));
    }

    #[test]
    fn conditions_on_resource_tags() {
        let p = policy(json!({
            "Version": "2012-10-17",
            "Statement": {"Effect": "Allow", "Action": "ec2:CreateTags", "Resource": "*",
                "Condition": {"StringLike": {"aws:ResourceTag/aws:autoscaling:groupName": ["web-*"]}}}
        }));
        let tagged = |g: &str| {
            Resource::new("arn:aws:ec2:eu-west-1:000000000000:instance/i-1")
                .key("aws:ResourceTag/aws:autoscaling:groupName", g)
        };
        assert_eq!(
            p.evaluate("ec2:CreateTags", &tagged("web-1"), &ctx()),
            Verdict::Allow
        );
        assert_eq!(
            p.evaluate("ec2:CreateTags", &tagged("db"), &ctx()),
            Verdict::ImplicitDeny
        );
        // A missing key fails a positive operator.
        let bare = Resource::new("arn:aws:ec2:eu-west-1:000000000000:instance/i-1");
        assert_eq!(
            p.evaluate("ec2:CreateTags", &bare, &ctx()),
            Verdict::ImplicitDeny
        );
        let p = policy(json!({
            "Version": "2012-10-17",
            "Statement": {"Effect": "Allow", "Action": "ec2:CreateTags", "Resource": "*",
                "Condition": {"StringNotEqualsIfExists": {"aws:ResourceTag/env": "prod"},
                              "StringEquals": {"aws:RequestedRegion": "${aws:RequestedRegion}"}}}
        }));
        assert_eq!(p.evaluate("ec2:CreateTags", &bare, &ctx()), Verdict::Allow);
        assert_eq!(
            p.evaluate(
                "ec2:CreateTags",
                &bare.clone().key("aws:ResourceTag/env", "prod"),
                &ctx()
            ),
            Verdict::ImplicitDeny
        );
    }

    #[test]
    fn set_operators_judge_every_or_any_value_of_a_multivalued_key() {
        let p = Policy::parse(&json!({"Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "ec2:CreateTags", "Resource": "*",
             "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": ["patched", "owner"]}}},
            {"Effect": "Allow", "Action": "ec2:DeleteTags", "Resource": "*",
             "Condition": {"ForAnyValue:StringLike": {"aws:TagKeys": "tmp-*"}}},
            {"Effect": "Deny", "Action": "ec2:CreateTags", "Resource": "*",
             "Condition": {"ForAnyValue:StringEqualsIfExists": {"aws:TagKeys": "locked"}}}
        ]}))
        .unwrap();
        let keys = |ks: &[&str]| {
            ks.iter().fold(
                Resource::new("arn:aws:ec2:us-east-1:1:instance/i-1"),
                |r, k| r.key("aws:TagKeys", *k),
            )
        };
        let create = |ks: &[&str]| p.evaluate("ec2:CreateTags", &keys(ks), &ctx());
        let delete = |ks: &[&str]| p.evaluate("ec2:DeleteTags", &keys(ks), &ctx());
        assert_eq!(create(&["patched"]), Verdict::Allow);
        assert_eq!(create(&["patched", "owner"]), Verdict::Allow);
        assert_eq!(
            create(&["patched", "role"]),
            Verdict::ImplicitDeny,
            "one key outside"
        );
        // IAM's ForAllValues holds when the request has no such key (the ForAny deny's
        // IfExists holds too).
        assert_eq!(create(&[]), Verdict::ExplicitDeny);
        assert_eq!(create(&["patched", "locked"]), Verdict::ExplicitDeny);
        assert_eq!(delete(&["tmp-1", "owner"]), Verdict::Allow);
        assert_eq!(delete(&["owner"]), Verdict::ImplicitDeny);
        assert_eq!(
            delete(&[]),
            Verdict::ImplicitDeny,
            "ForAnyValue needs a value"
        );
    }

    #[test]
    fn unsupported_documents_are_rejected_with_a_reason() {
        for (doc, needle) in [
            (
                json!({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*",
                "Condition": {"NumericLessThan": {"x": "1"}}}}),
                "NumericLessThan",
            ),
            (
                json!({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*",
                "Condition": {"ForEachValue:StringEquals": {"aws:TagKeys": "a"}}}}),
                "ForEachValue",
            ),
            (
                json!({"Statement": {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}}),
                "Principal",
            ),
            (
                json!({"Statement": {"Effect": "Maybe", "Action": "*", "Resource": "*"}}),
                "Effect",
            ),
            (
                json!({"Statement": {"Effect": "Allow", "Action": "s3", "Resource": "*"}}),
                "service:Action",
            ),
            (
                json!({"Statement": {"Effect": "Allow", "Action": "*"}}),
                "Resource",
            ),
            (json!([]), "object"),
            (json!({"Version": "2020-01-01", "Statement": []}), "Version"),
        ] {
            let e = Policy::parse(&doc).expect_err("rejected");
            assert!(e.contains(needle), "{e} should name {needle}");
        }
    }

    #[test]
    fn bindings_spare_the_admin_key() {
        let mut iam = Iam::default();
        assert!(!iam.is_enforcing());
        let doc = json!({"Version": "2012-10-17", "Statement": []});
        iam.bind(None, doc.clone()).unwrap();
        assert!(iam.policy_for("anyone").is_some());
        assert!(iam.policy_for(ADMIN_ACCESS_KEY_ID).is_none());
        assert!(iam.bind(Some(ADMIN_ACCESS_KEY_ID), doc.clone()).is_err());
        assert!(iam.bind(Some("bad key"), doc).is_err());
        let mut h = HeaderMap::new();
        h.insert(
            http::header::AUTHORIZATION,
            "AWS4-HMAC-SHA256 Credential=AKIDHANDLER/20261122/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=x"
                .parse()
                .unwrap(),
        );
        assert_eq!(access_key_id(&h, None).as_deref(), Some("AKIDHANDLER"));
        assert_eq!(
            access_key_id(
                &HeaderMap::new(),
                Some("X-Amz-Credential=KEY%2F2026%2Fus-east-1")
            )
            .as_deref(),
            Some("KEY")
        );
        assert_eq!(
            action_of(Service::Sqs, "DeleteMessageBatch"),
            "sqs:DeleteMessage"
        );
        assert_eq!(
            s3_check("HeadObject", Some("b"), "k/x").resources[0].arn,
            "arn:aws:s3:::b/k/x"
        );
    }
}
