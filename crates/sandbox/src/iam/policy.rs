//! IAM policy documents, their evaluation, and the request context they are evaluated in.

use super::*;
use crate::wildcard::{self, Question};

// ---------------------------------------------------------------------------------------
// Policy documents
// ---------------------------------------------------------------------------------------

/// A parsed identity-based policy.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Policy {
    statements: Vec<Stmt>,
    /// `2012-10-17`: policy variables are substituted (older versions take them literally).
    variables: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Stmt {
    allow: bool,
    /// `NotAction` when true.
    not_action: bool,
    actions: Vec<String>,
    not_resource: bool,
    resources: Vec<String>,
    conditions: Vec<Cond>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cond {
    set: SetOp,
    op: Op,
    negated: bool,
    if_exists: bool,
    key: String,
    values: Vec<String>,
}

/// How a condition treats a key with several values in the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SetOp {
    /// No qualifier: some value of the request matches.
    Single,
    /// `ForAllValues:` every value of the request matches (true when the key is absent
    /// or empty, as in IAM).
    ForAll,
    /// `ForAnyValue:` some value of the request matches (false when the key is absent).
    ForAny,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Equals,
    EqualsIgnoreCase,
    Like,
}

impl Policy {
    /// Parses a policy document; the error names what is wrong and where.
    pub(crate) fn parse(doc: &Value) -> Result<Policy, String> {
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
    pub(crate) fn evaluate(&self, action: &str, resource: &Resource, ctx: &Context) -> Verdict {
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
pub(crate) enum Verdict {
    Allow,
    ImplicitDeny,
    ExplicitDeny,
}

pub(crate) fn strings(v: &Value, what: &str) -> Result<Vec<String>, String> {
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
    pub(crate) fn parse(v: &Value) -> Result<Stmt, String> {
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

    pub(crate) fn applies(
        &self,
        action: &str,
        resource: &Resource,
        ctx: &Context,
        vars: bool,
    ) -> bool {
        let action_hit = self.actions.iter().any(|p| {
            wildcard::matches(
                &p.to_ascii_lowercase(),
                &action.to_ascii_lowercase(),
                Question::AnyChar,
            )
        });
        if action_hit == self.not_action {
            return false;
        }
        let resource_hit = self.resources.iter().any(|p| {
            let p = if vars {
                substitute(p, resource, ctx)
            } else {
                Some(p.clone())
            };
            p.is_some_and(|p| wildcard::matches(&p, &resource.arn, Question::AnyChar))
        });
        if resource_hit == self.not_resource {
            return false;
        }
        self.conditions.iter().all(|c| c.holds(resource, ctx, vars))
    }
}

pub(crate) fn parse_operator(name: &str) -> Result<(SetOp, Op, bool, bool), String> {
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
    pub(crate) fn holds(&self, resource: &Resource, ctx: &Context, vars: bool) -> bool {
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
                Op::Like => wildcard::matches(v, a, Question::AnyChar),
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

/// Substitutes `${...}` policy variables; `None` when one cannot be resolved (the
/// pattern then matches nothing). `${*}`, `${?}`, `${$}` are the literal characters
/// (`*` and `?` then still act as wildcards, as IAM's escaping is only for the parser).
pub(crate) fn substitute(s: &str, resource: &Resource, ctx: &Context) -> Option<String> {
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
pub(crate) struct Resource {
    pub(crate) arn: String,
    pub(crate) keys: BTreeMap<String, Vec<String>>,
}

impl Resource {
    pub(crate) fn new(arn: impl Into<String>) -> Resource {
        Resource {
            arn: arn.into(),
            keys: BTreeMap::new(),
        }
    }

    pub(crate) fn any() -> Resource {
        Resource::new("*")
    }

    pub(crate) fn key(mut self, k: &str, v: impl Into<String>) -> Resource {
        self.keys
            .entry(k.to_ascii_lowercase())
            .or_default()
            .push(v.into());
        self
    }

    /// `PREFIX/KEY` for each tag, for every prefix (`aws:ResourceTag`, `ec2:ResourceTag` ...).
    pub(crate) fn tags<'a>(
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
pub(crate) struct Context {
    pub(crate) keys: BTreeMap<String, Vec<String>>,
}

impl Context {
    pub(crate) fn new(region: &str, access_key_id: &str) -> Context {
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

    pub(crate) fn values<'a>(
        &'a self,
        key: &str,
        resource: &'a Resource,
    ) -> Option<&'a Vec<String>> {
        resource.keys.get(key).or_else(|| self.keys.get(key))
    }
}

/// The ARN a denial names the principal by.
pub(crate) fn principal_arn(access_key_id: &str) -> String {
    format!("arn:aws:sts::{ACCOUNT_ID}:assumed-role/lifehook-sandbox/{access_key_id}")
}

/// What one request needs: an action on resources (some requests need two, e.g.
/// PutLifecycleHook with a RoleARN also needs `iam:PassRole`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Check {
    pub(crate) action: String,
    pub(crate) resources: Vec<Resource>,
}

/// Who makes a request, and what: the principal, the operation, where and when.
pub(crate) struct Caller<'a> {
    pub(crate) access_key_id: &'a str,
    pub(crate) service: Service,
    pub(crate) operation: &'a str,
    pub(crate) region: &'a str,
    pub(crate) now: u64,
    pub(crate) context: Context,
}

impl<'a> Caller<'a> {
    pub(crate) fn new(
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
