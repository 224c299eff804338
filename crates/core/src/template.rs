//! Templates: `{{ variable | filter }}` substitution over a lifecycle action's fields.
//!
//! Pure substitution — nothing is evaluated, no environment variable is read (secrets stay
//! out of templates), and the result is plain data: `exec` steps receive it as one argv
//! element or one environment value, never through a shell.
//!
//! Variables: `group`, `hook`, `instance_id`, `transition`, `token`, `origin`,
//! `destination`, `time`, `region`, `account`, `request_id`, `pipeline`, `metadata` (the raw
//! NotificationMetadata), `metadata.KEY` (a key of the metadata when it is a JSON object;
//! nested keys with dots), `tags.KEY` (an instance tag), `now` (RFC 3339, UTC) and `date`
//! (`YYYY-MM-DD`, UTC). Filters: `urlencode` (percent-encodes everything but RFC 3986
//! unreserved characters) and `json` (a JSON string literal, quotes included).
//!
//! Unknown variables and filters are rejected when the configuration is loaded; a
//! `metadata.KEY` or `tags.KEY` that is absent for one action fails that step with a
//! message naming the key.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use lifehook_model::LifecycleEvent;
use serde_json::Value;

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Var { var: Var, filters: Vec<Filter> },
}

/// A variable a template may name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Var {
    Group,
    Hook,
    InstanceId,
    Transition,
    Token,
    Origin,
    Destination,
    Time,
    Region,
    Account,
    RequestId,
    Pipeline,
    Metadata,
    MetadataKey(Vec<String>),
    Tag(String),
    Now,
    Date,
    /// The base name of the file being uploaded: only in the `key` of an `s3-upload` step.
    FileName,
}

/// A filter applied to a variable's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    UrlEncode,
    Json,
    /// An RFC 3339 time (`now`, `time`) → its UTC date, `YYYY-MM-DD`.
    Date,
}

/// The variable names accepted by templates (for messages and docs).
pub(crate) const VARIABLES: &[&str] = &[
    "group",
    "hook",
    "instance_id",
    "transition",
    "token",
    "origin",
    "destination",
    "time",
    "region",
    "account",
    "request_id",
    "pipeline",
    "metadata",
    "metadata.KEY",
    "tags.KEY",
    "now",
    "date",
    "file_name",
];

/// A template that cannot be parsed; `offset` is a byte offset into the template text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TemplateError {
    pub offset: usize,
    pub message: String,
}

/// A template that cannot be rendered for one action (a missing key, metadata that is not
/// JSON).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template {template:?}: {message}")]
pub struct RenderError {
    pub template: String,
    pub message: String,
}

impl Template {
    /// Parses `source`, rejecting unknown variables and filters and unclosed `{{`.
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = source;
        let mut pos = 0;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Lit(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else {
                return Err(TemplateError {
                    offset: pos + start,
                    message: "`{{` is not closed by `}}`".into(),
                });
            };
            let inner = &after[..end];
            let (var, filters) = parse_expr(inner).map_err(|message| TemplateError {
                offset: pos + start,
                message,
            })?;
            parts.push(Part::Var { var, filters });
            let consumed = start + 2 + end + 2;
            pos += consumed;
            rest = &rest[consumed..];
        }
        if !rest.is_empty() {
            parts.push(Part::Lit(rest.to_owned()));
        }
        Ok(Template {
            source: source.to_owned(),
            parts,
        })
    }

    /// The empty template (used where a required field is missing).
    pub fn empty() -> Self {
        Template {
            source: String::new(),
            parts: Vec::new(),
        }
    }

    /// The text the template was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the template has no variables.
    pub(crate) fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Lit(_)))
    }

    /// The variables the template uses.
    pub fn variables(&self) -> impl Iterator<Item = &Var> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var { var, .. } => Some(var),
            Part::Lit(_) => None,
        })
    }

    /// Substitutes the variables from `ctx`.
    pub fn render(&self, ctx: &TemplateContext<'_>) -> Result<String, RenderError> {
        self.render_inner(ctx, None, None)
    }

    /// Like [`Template::render`], with `{{ file_name }}` set (the key of an `s3-upload`).
    pub fn render_file(
        &self,
        ctx: &TemplateContext<'_>,
        file_name: &str,
    ) -> Result<String, RenderError> {
        self.render_inner(ctx, Some(file_name), None)
    }

    /// Like [`Template::render`], passing every substituted value (after its filters)
    /// through `escape`, e.g. [`shell_quote`] for text that becomes shell code.
    pub fn render_escaped(
        &self,
        ctx: &TemplateContext<'_>,
        escape: fn(&str) -> String,
    ) -> Result<String, RenderError> {
        self.render_inner(ctx, None, Some(escape))
    }

    fn render_inner(
        &self,
        ctx: &TemplateContext<'_>,
        file_name: Option<&str>,
        escape: Option<fn(&str) -> String>,
    ) -> Result<String, RenderError> {
        let err = |message: String| RenderError {
            template: self.source.clone(),
            message,
        };
        let mut out = String::with_capacity(self.source.len());
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Var { var, filters } => {
                    let mut v = match (var, file_name) {
                        (Var::FileName, Some(f)) => f.to_owned(),
                        _ => ctx.value(var).map_err(err)?,
                    };
                    for f in filters {
                        v = match f {
                            Filter::UrlEncode => urlencode(&v),
                            Filter::Json => Value::String(v).to_string(),
                            Filter::Date => DateTime::parse_from_rfc3339(v.trim())
                                .map(|t| t.with_timezone(&Utc).format("%Y-%m-%d").to_string())
                                .map_err(|_| {
                                    err(format!("`date` filter: {v:?} is not an RFC 3339 time"))
                                })?,
                        };
                    }
                    match escape {
                        Some(e) => out.push_str(&e(&v)),
                        None => out.push_str(&v),
                    }
                }
            }
        }
        Ok(out)
    }

    /// Renders with placeholder values, to check the shape of a URL at load time.
    pub(crate) fn render_sample(&self) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Var { .. } => out.push('x'),
            }
        }
        out
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

fn parse_expr(inner: &str) -> Result<(Var, Vec<Filter>), String> {
    let mut pieces = inner.split('|').map(str::trim);
    let name = pieces.next().unwrap_or_default();
    if name.is_empty() {
        return Err("empty `{{ }}`: name a variable".into());
    }
    let var = parse_var(name)?;
    let mut filters = Vec::new();
    for f in pieces {
        filters.push(match f {
            "urlencode" => Filter::UrlEncode,
            "json" => Filter::Json,
            "date" => Filter::Date,
            "" => return Err(format!("empty filter after `|` in `{{{{{inner}}}}}`")),
            other => {
                return Err(format!(
                    "unknown template filter `{other}` (filters: urlencode, json, date)"
                ));
            }
        });
    }
    Ok((var, filters))
}

fn parse_var(name: &str) -> Result<Var, String> {
    let key_ok = |k: &str| {
        !k.is_empty()
            && k.split('.').all(|s| !s.is_empty())
            && !k.chars().any(|c| c.is_whitespace() || c == '{' || c == '}')
    };
    Ok(match name {
        "group" => Var::Group,
        "hook" => Var::Hook,
        "instance_id" => Var::InstanceId,
        "transition" => Var::Transition,
        "token" => Var::Token,
        "origin" => Var::Origin,
        "destination" => Var::Destination,
        "time" => Var::Time,
        "region" => Var::Region,
        "account" => Var::Account,
        "request_id" => Var::RequestId,
        "pipeline" => Var::Pipeline,
        "metadata" => Var::Metadata,
        "now" => Var::Now,
        "date" => Var::Date,
        "file_name" => Var::FileName,
        n if n.starts_with("metadata.") && key_ok(&n["metadata.".len()..]) => Var::MetadataKey(
            n["metadata.".len()..]
                .split('.')
                .map(str::to_owned)
                .collect(),
        ),
        n if n.starts_with("tags.") && key_ok(&n["tags.".len()..]) => {
            Var::Tag(n["tags.".len()..].to_owned())
        }
        n if n.starts_with("env.") => {
            return Err(format!(
                "`{n}`: templates do not read environment variables (they may hold secrets); \
                 pass them to `exec` steps through the process environment instead"
            ));
        }
        other => {
            return Err(format!(
                "unknown template variable `{other}` (variables: {})",
                VARIABLES.join(", ")
            ));
        }
    })
}

/// Percent-encodes every byte except the RFC 3986 unreserved characters.
pub(crate) fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Quotes `s` as one POSIX shell word: `'…'`, with each `'` written `'\''`.
pub fn shell_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// What templates are rendered against: one lifecycle action.
#[derive(Debug, Clone)]
pub struct TemplateContext<'a> {
    pub event: &'a LifecycleEvent,
    pub tags: &'a BTreeMap<String, String>,
    pub region: Option<&'a str>,
    pub pipeline: &'a str,
    pub now: DateTime<Utc>,
}

impl TemplateContext<'_> {
    fn value(&self, var: &Var) -> Result<String, String> {
        let e = self.event;
        let opt = |o: Option<&str>| o.unwrap_or_default().to_owned();
        Ok(match var {
            Var::Group => e.group.clone(),
            Var::Hook => e.hook.clone(),
            Var::InstanceId => e.instance_id.clone(),
            Var::Transition => e.transition.as_str().to_owned(),
            Var::Token => e.token.clone(),
            Var::Origin => opt(e.origin.map(|o| o.as_str())),
            Var::Destination => opt(e.destination.map(|o| o.as_str())),
            Var::Time => opt(e.time.as_deref()),
            Var::Region => opt(self.region),
            Var::Account => opt(e.account.as_deref()),
            Var::RequestId => opt(e.request_id.as_deref()),
            Var::Pipeline => self.pipeline.to_owned(),
            Var::Metadata => opt(e.metadata.as_deref()),
            Var::Now => self.now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            Var::Date => self.now.format("%Y-%m-%d").to_string(),
            Var::FileName => {
                return Err("`file_name` is only set in the `key` of an `s3-upload` step".into());
            }
            Var::Tag(k) => self
                .tags
                .get(k)
                .cloned()
                .ok_or_else(|| format!("instance {} has no tag `{k}`", e.instance_id))?,
            Var::MetadataKey(path) => {
                let dotted = path.join(".");
                let raw = e.metadata.as_deref().ok_or_else(|| {
                    format!("`metadata.{dotted}`: the action has no NotificationMetadata")
                })?;
                let json: Value = serde_json::from_str(raw).map_err(|_| {
                    format!("`metadata.{dotted}`: NotificationMetadata is not JSON")
                })?;
                let mut cur = &json;
                for k in path {
                    cur = cur.get(k).ok_or_else(|| {
                        format!("`metadata.{dotted}`: NotificationMetadata has no key `{dotted}`")
                    })?;
                }
                match cur {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::event;

    fn render(t: &str, metadata: Option<&str>) -> Result<String, RenderError> {
        let ev = event(metadata);
        let mut tags = BTreeMap::new();
        tags.insert("app".to_owned(), "shop/api v2".to_owned());
        let ctx = TemplateContext {
            event: &ev,
            tags: &tags,
            region: Some("eu-west-1"),
            pipeline: "p",
            now: DateTime::parse_from_rfc3339("2024-02-29T23:59:58Z")
                .unwrap()
                .with_timezone(&Utc),
        };
        Template::parse(t).unwrap().render(&ctx)
    }

    #[test]
    fn substitutes_fields() {
        assert_eq!(
            render(
                "{{group}}/{{ hook }}/{{ instance_id }} {{transition}} {{token}} {{origin}}>{{destination}} {{region}} {{account}} {{time}}",
                None
            )
            .unwrap(),
            "web-asg/drain/i-0123456789abcdef0 autoscaling:EC2_INSTANCE_TERMINATING tok-1 AutoScalingGroup>EC2 eu-west-1 000000000000 2023-09-11T03:30:33.136Z"
        );
        assert_eq!(
            render("{{ date }} {{ now }}", None).unwrap(),
            "2024-02-29 2024-02-29T23:59:58Z"
        );
        assert_eq!(render("no vars", None).unwrap(), "no vars");
        assert_eq!(render("{{ metadata }}", None).unwrap(), "");
    }

    #[test]
    fn metadata_keys_and_tags() {
        let md = r#"{"app":"shop","deep":{"port":8080,"name":"a b"}}"#;
        assert_eq!(render("{{ metadata.app }}", Some(md)).unwrap(), "shop");
        assert_eq!(
            render("{{ metadata.deep.port }}", Some(md)).unwrap(),
            "8080"
        );
        assert_eq!(render("{{ metadata }}", Some(md)).unwrap(), md);
        assert_eq!(render("{{ tags.app }}", None).unwrap(), "shop/api v2");
        let e = render("{{ metadata.nope }}", Some(md)).unwrap_err();
        assert!(e.message.contains("no key `nope`"), "{e}");
        let e = render("{{ metadata.app }}", Some("plain text")).unwrap_err();
        assert!(e.message.contains("not JSON"), "{e}");
        let e = render("{{ tags.team }}", None).unwrap_err();
        assert!(e.message.contains("no tag `team`"), "{e}");
    }

    #[test]
    fn filters() {
        assert_eq!(
            render("{{ tags.app | urlencode }}", None).unwrap(),
            "shop%2Fapi%20v2"
        );
        assert_eq!(
            render(r#"{"m": {{ metadata | json }}}"#, Some("a\"b\n")).unwrap(),
            r#"{"m": "a\"b\n"}"#
        );
        let body = render(
            r#"{"m": {{ metadata | json }}}"#,
            Some("x\"}, \"evil\": {\""),
        )
        .unwrap();
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v.as_object().unwrap().len(), 1);
    }

    #[test]
    fn rejects_unknown_at_parse_time() {
        for (t, needle) in [
            ("{{ instanceid }}", "unknown template variable `instanceid`"),
            ("{{ env.SECRET }}", "do not read environment"),
            ("{{ group | upper }}", "unknown template filter `upper`"),
            ("abc {{ group", "not closed"),
            ("{{ }}", "empty"),
            ("{{ metadata. }}", "unknown template variable"),
        ] {
            let e = Template::parse(t).unwrap_err();
            assert!(e.message.contains(needle), "{t}: {e}");
        }
        assert_eq!(Template::parse("abc {{ group").unwrap_err().offset, 4);
    }

    #[test]
    fn date_filter_file_name_and_shell_quoting() {
        assert_eq!(render("{{ now | date }}", None).unwrap(), "2024-02-29");
        assert_eq!(render("{{ time | date }}", None).unwrap(), "2023-09-11");
        let e = render("{{ group | date }}", None).unwrap_err();
        assert!(e.message.contains("not an RFC 3339 time"), "{e}");
        let e = render("{{ file_name }}", None).unwrap_err();
        assert!(e.message.contains("s3-upload"), "{e}");
        let ev = event(Some("it's $(id)"));
        let tags = BTreeMap::new();
        let ctx = TemplateContext {
            event: &ev,
            tags: &tags,
            region: None,
            pipeline: "p",
            now: Utc::now(),
        };
        let t = Template::parse("logs/{{ instance_id }}/{{ file_name }}").unwrap();
        assert_eq!(
            t.render_file(&ctx, "app.log").unwrap(),
            "logs/i-0123456789abcdef0/app.log"
        );
        let t = Template::parse("echo {{ metadata }} > /tmp/x").unwrap();
        assert_eq!(
            t.render_escaped(&ctx, shell_quote).unwrap(),
            r"echo 'it'\''s $(id)' > /tmp/x"
        );
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn no_evaluation() {
        // Substituted values are never re-scanned for template syntax.
        assert_eq!(
            render("{{ metadata }}", Some("{{ token }} $(id) `id`")).unwrap(),
            "{{ token }} $(id) `id`"
        );
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(t in "\\PC{0,60}") {
            let _ = Template::parse(&t);
        }

        #[test]
        fn urlencode_is_safe_and_reversible(v in "\\PC{0,40}") {
            let e = urlencode(&v);
            proptest::prop_assert!(e.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)));
            let mut bytes = Vec::new();
            let mut it = e.bytes();
            while let Some(b) = it.next() {
                if b == b'%' {
                    let h = [it.next().unwrap(), it.next().unwrap()];
                    bytes.push(u8::from_str_radix(std::str::from_utf8(&h).unwrap(), 16).unwrap());
                } else {
                    bytes.push(b);
                }
            }
            proptest::prop_assert_eq!(String::from_utf8(bytes).unwrap(), v);
        }

        #[test]
        fn any_metadata_is_inserted_verbatim(md in "\\PC{0,200}") {
            proptest::prop_assert_eq!(render("{{ metadata }}", Some(&md)).unwrap(), md.clone());
            let body = render("{{ metadata | json }}", Some(&md)).unwrap();
            let back: String = serde_json::from_str(&body).unwrap();
            proptest::prop_assert_eq!(back, md);
        }
    }
}
