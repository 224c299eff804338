//! Validation: the raw configuration checked and converted into typed values, every
//! problem recorded with its position.

use std::collections::{BTreeMap, HashSet};
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use lifehook_model::{LifecycleResult, LifecycleTransition};
use toml::Spanned;
use toml::de::DeValue;

use super::raw::{
    Argv, RawAgent, RawConfig, RawHookSpec, RawPipeline, RawSetup, RawSource, RawStep,
};
use super::*;
use crate::template::Template;

mod aws_steps;
mod step;

/// The top-level keys.
const TOP_KEYS: &[&str] = &["source", "keepalive", "agent", "setup", "pipeline"];
/// The keys of a `[[pipeline]]`.
const PIPELINE_KEYS: &[&str] = &["name", "match", "policy", "step"];

/// Whether `inner` lies within `outer`.
fn within(inner: &Range<usize>, outer: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}

/// The key of `t` whose key or value holds `at`.
fn key_at(t: &toml::de::DeTable<'_>, at: Option<&Range<usize>>) -> Option<String> {
    let at = at?;
    t.iter()
        .find(|(k, v)| within(at, &v.span()) || within(at, &k.span()))
        .map(|(k, _)| k.get_ref().to_string())
}

/// Parses and validates TOML text (see [`Config::from_toml`]).
pub(super) fn from_toml(text: &str, file: &std::path::Path) -> Result<Config, Vec<Problem>> {
    let mut cx = Cx {
        file: file.to_path_buf(),
        text,
        problems: Vec::new(),
        failed: HashSet::new(),
    };
    let Some(raw) = cx.parse() else {
        return Err(cx.problems);
    };
    let cfg = cx.validate(raw);
    // File order reads best; problems without a position go last.
    cx.problems
        .sort_by_key(|p| (p.line.is_none(), p.line, p.col));
    if cx.problems.is_empty() {
        Ok(cfg)
    } else {
        Err(cx.problems)
    }
}

pub(super) struct Cx<'a> {
    file: PathBuf,
    text: &'a str,
    problems: Vec<Problem>,
    /// `place.key` of the values refused as the wrong type (left out of the raw tables), so
    /// that checks do not report them missing as well.
    failed: HashSet<String>,
}

impl Cx<'_> {
    pub(super) fn push(&mut self, span: Option<Range<usize>>, message: impl Into<String>) {
        let (line, col) = match span {
            Some(s) => {
                let (l, c) = line_col(self.text, s.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        self.problems.push(Problem {
            file: self.file.display().to_string(),
            line,
            col,
            message: message.into(),
        });
    }

    pub(super) fn at<T>(&mut self, s: &Spanned<T>, message: impl Into<String>) {
        self.push(Some(s.span()), message)
    }

    fn duration(
        &mut self,
        d: &Option<Spanned<HumanDuration>>,
        what: &str,
        default: Duration,
        min: Duration,
        max: Duration,
    ) -> Duration {
        match d {
            None => default,
            Some(s) => {
                let v = s.get_ref().0;
                if v < min || v > max {
                    self.at(
                        s,
                        format!(
                            "`{what}` = {} is out of range: it must be between {} and {}",
                            format_duration(v),
                            format_duration(min),
                            format_duration(max)
                        ),
                    );
                }
                v
            }
        }
    }

    fn int(
        &mut self,
        v: &Option<Spanned<i64>>,
        what: &str,
        default: i64,
        min: i64,
        max: i64,
    ) -> i64 {
        match v {
            None => default,
            Some(s) => {
                let n = *s.get_ref();
                if n < min || n > max {
                    self.at(
                        s,
                        format!(
                            "`{what}` = {n} is out of range: it must be between {min} and {max}"
                        ),
                    );
                }
                n.clamp(min, max)
            }
        }
    }

    fn template(&mut self, s: &Spanned<String>, what: &str) -> Template {
        match Template::parse(s.get_ref()) {
            Ok(t) if t.variables().any(|v| *v == crate::template::Var::FileName) => {
                self.at(
                    s,
                    format!(
                        "`{what}`: `{{{{ file_name }}}}` is only available in the `key` of an `s3-upload` step"
                    ),
                );
                t
            }
            Ok(t) => t,
            Err(e) => {
                // The span covers the quoted string; point inside it when it is a basic
                // string without escapes before the error.
                let span = s.span();
                let raw = &self.text[span.clone()];
                let basic = raw.starts_with('"')
                    && !raw.starts_with("\"\"\"")
                    && !raw[..raw.len().min(e.offset + 1)].contains('\\');
                let literal = raw.starts_with('\'') && !raw.starts_with("\'\'\'");
                let start = if basic || literal {
                    span.start + 1 + e.offset
                } else {
                    span.start
                };
                self.push(Some(start..start), format!("`{what}`: {e}"));
                Template::empty()
            }
        }
    }

    fn templates(
        &mut self,
        m: &Option<BTreeMap<String, Spanned<String>>>,
        what: &str,
    ) -> BTreeMap<String, Template> {
        m.iter()
            .flatten()
            .map(|(k, v)| (k.clone(), self.template(v, &format!("{what}.{k}"))))
            .collect()
    }

    fn url(&mut self, s: &Spanned<String>, what: &str) -> Template {
        let t = self.template(s, what);
        if !t.source().is_empty() {
            let sample = t.render_sample();
            match reqwest::Url::parse(&sample) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
                Ok(u) => self.at(
                    s,
                    format!(
                        "`{what}` must be an http or https URL with a host, not `{}:`",
                        u.scheme()
                    ),
                ),
                Err(e) => self.at(
                    s,
                    format!("`{what}` = {:?} is not a valid URL: {e}", t.source()),
                ),
            }
        }
        t
    }

    fn status(&mut self, v: &Option<Spanned<toml::Value>>) -> StatusSet {
        let Some(s) = v else {
            return StatusSet::default();
        };
        let one = |v: &toml::Value| match v {
            toml::Value::Integer(i) => u16::try_from(*i)
                .ok()
                .and_then(|c| StatusSet::parse_one(&c.to_string())),
            toml::Value::String(s) => StatusSet::parse_one(s),
            _ => None,
        };
        let parsed: Option<Vec<(u16, u16)>> = match s.get_ref() {
            toml::Value::Array(a) if !a.is_empty() => a.iter().map(one).collect(),
            toml::Value::Array(_) => None,
            other => one(other).map(|r| vec![r]),
        };
        match parsed {
            Some(r) => StatusSet(r),
            None => {
                self.at(s, "`expect_status` must be a status code (204), a range (\"200-299\", \"2xx\") or an array of them, with codes in 100..=599");
                StatusSet::default()
            }
        }
    }

    fn argv(&mut self, a: &Spanned<Argv>, what: &str) -> Vec<Template> {
        if a.get_ref().0.is_empty() {
            self.at(
                a,
                format!("`{what}` is empty: give at least the program to run"),
            );
        }
        let mut out = Vec::new();
        for (i, arg) in a.get_ref().0.iter().enumerate() {
            if i == 0 && arg.get_ref().is_empty() {
                self.at(arg, "the program (first element of `command`) is empty");
            }
            if i == 0
                && !Template::parse(arg.get_ref())
                    .map(|t| t.is_literal())
                    .unwrap_or(true)
            {
                self.at(
                    arg,
                    "the program (first element of `command`) must not be a template",
                );
            }
            out.push(self.template(arg, what));
        }
        out
    }

    fn result(
        &mut self,
        v: &Option<Spanned<String>>,
        what: &str,
        default: LifecycleResult,
    ) -> LifecycleResult {
        match v {
            None => default,
            Some(s) => match s.get_ref().to_ascii_lowercase().as_str() {
                "continue" => LifecycleResult::Continue,
                "abandon" => LifecycleResult::Abandon,
                other => {
                    self.at(
                        s,
                        format!("`{what}` = {other:?}: expected \"continue\" or \"abandon\""),
                    );
                    default
                }
            },
        }
    }

    /// Deserializes one table, recording its problems. Unknown keys are reported (with a
    /// suggestion) and left out; a value of the wrong type is reported and left out, and
    /// the rest of the table read again, so that one bad value hides nothing else. `None`
    /// when the table cannot be read at all (not a table, a required key missing).
    fn de_table<T: serde::de::DeserializeOwned>(
        &mut self,
        v: Spanned<DeValue<'_>>,
        place: &str,
    ) -> Option<T> {
        let span = v.span();
        let DeValue::Table(mut t) = v.into_inner() else {
            self.push(Some(span), format!("{place} must be a table"));
            return None;
        };
        let known = suggest::fields_of::<T>();
        self.drop_unknown_keys(&mut t, known, place, known);
        let mut removed: Vec<String> = Vec::new();
        loop {
            let attempt = Spanned::new(span.clone(), DeValue::Table(t.clone()));
            let e = match T::deserialize(toml::de::ValueDeserializer::from(attempt)) {
                Ok(v) => return Some(v),
                Err(e) => e,
            };
            let at = e.span();
            let key = key_at(&t, at.as_ref());
            let message = e.message().trim_end();
            // A required key whose value was refused is not missing as well.
            let follow_on = removed
                .iter()
                .any(|k| message == format!("missing field `{k}`"));
            if !follow_on {
                self.push(at, suggest::humanize(message, key.as_deref()));
            }
            let key = key?;
            self.failed.insert(format!("{place}.{key}"));
            t.remove(key.as_str());
            removed.push(key);
        }
    }

    /// Reports and removes the keys of `t` that are not in `known`; `listed` are the keys
    /// the message names (the keys of this kind of table).
    fn drop_unknown_keys(
        &mut self,
        t: &mut toml::de::DeTable<'_>,
        known: &[&str],
        place: &str,
        listed: &[&str],
    ) {
        let unknown: Vec<(String, Range<usize>)> = t
            .keys()
            .filter(|k| !known.contains(&k.get_ref().as_ref()))
            .map(|k| (k.get_ref().to_string(), k.span()))
            .collect();
        for (key, at) in unknown {
            self.push(
                Some(at),
                suggest::unknown_key(&key, &format!("in {place}"), listed),
            );
            t.remove(key.as_str());
        }
    }

    /// Parses the document table by table; `None` only on a syntax error.
    fn parse(&mut self) -> Option<RawConfig> {
        let root = match toml::de::DeTable::parse(self.text) {
            Ok(r) => r,
            Err(e) => {
                let msg = e.message().trim_end().to_owned();
                self.push(e.span(), msg);
                return None;
            }
        };
        let mut raw = RawConfig {
            source: None,
            keepalive: None,
            agent: None,
            setup: None,
            pipelines: Vec::new(),
            pipelines_declared: false,
        };
        for (k, v) in root.into_inner() {
            match k.get_ref().as_ref() {
                "source" => raw.source = self.de_table(v, "`[source]`"),
                "keepalive" => raw.keepalive = self.de_table(v, "`[keepalive]`"),
                "agent" => {
                    raw.agent = self
                        .with_hooks::<RawAgent>(v, "`[agent]`", "`[[agent.hook]]`")
                        .map(|(mut a, hooks)| {
                            a.hook = hooks;
                            a
                        })
                }
                "setup" => {
                    let span = v.span();
                    raw.setup = self
                        .with_hooks::<RawSetup>(v, "`[setup]`", "`[[setup.hook]]`")
                        .map(|(mut s, hooks)| {
                            s.hook = hooks;
                            Spanned::new(span, s)
                        })
                }
                "pipeline" => {
                    raw.pipelines_declared = true;
                    let span = v.span();
                    match v.into_inner() {
                        DeValue::Array(items) => {
                            for item in items {
                                if let Some(p) = self.raw_pipeline(item) {
                                    raw.pipelines.push(p);
                                }
                            }
                        }
                        _ => self.push(
                            Some(span),
                            "`pipeline` must be an array of tables: write `[[pipeline]]`",
                        ),
                    }
                }
                other => {
                    let msg = suggest::unknown_key(other, "at the top level", TOP_KEYS);
                    self.push(Some(k.span()), msg);
                }
            }
        }
        Some(raw)
    }

    /// `[agent]` or `[setup]`: the table, and each of its `hook` entries read on its own.
    fn with_hooks<T: serde::de::DeserializeOwned>(
        &mut self,
        mut v: Spanned<DeValue<'_>>,
        place: &str,
        hook_place: &str,
    ) -> Option<(T, Vec<Spanned<RawHookSpec>>)> {
        let mut hooks = Vec::new();
        if let DeValue::Table(t) = v.get_mut()
            && let Some(h) = t.remove("hook")
        {
            let span = h.span();
            match h.into_inner() {
                DeValue::Array(items) => {
                    for item in items {
                        let span = item.span();
                        if let Some(spec) = self.de_table::<RawHookSpec>(item, hook_place) {
                            hooks.push(Spanned::new(span, spec));
                        }
                    }
                }
                _ => self.push(
                    Some(span),
                    format!("`hook` must be an array of tables: write {hook_place}"),
                ),
            }
        }
        self.de_table::<T>(v, place).map(|t| (t, hooks))
    }

    fn raw_pipeline(&mut self, item: Spanned<DeValue<'_>>) -> Option<Spanned<RawPipeline>> {
        let span = item.span();
        let DeValue::Table(t) = item.into_inner() else {
            self.push(
                Some(span),
                "each `pipeline` must be a table: write `[[pipeline]]`",
            );
            return None;
        };
        let mut p = RawPipeline {
            name: None,
            matcher: None,
            steps: Vec::new(),
            policy: None,
            steps_declared: false,
        };
        let mut named = false;
        for (k, v) in t {
            match k.get_ref().as_ref() {
                "name" => {
                    named = true;
                    p.name = self.de_value::<Spanned<String>>(v, "name");
                }
                "match" => p.matcher = self.de_table(v, "`match`"),
                "policy" => p.policy = self.de_table(v, "`policy`"),
                "step" => {
                    p.steps_declared = true;
                    let sspan = v.span();
                    match v.into_inner() {
                        DeValue::Array(items) => {
                            for s in items {
                                if let Some(st) = self.raw_step(s) {
                                    p.steps.push(st);
                                }
                            }
                        }
                        _ => self.push(
                            Some(sspan),
                            "`step` must be an array of tables: write `[[pipeline.step]]`",
                        ),
                    }
                }
                other => {
                    let msg = suggest::unknown_key(other, "in `[[pipeline]]`", PIPELINE_KEYS);
                    self.push(Some(k.span()), msg);
                }
            }
        }
        if !named {
            self.push(
                Some(span.clone()),
                "a `[[pipeline]]` needs a `name` (missing key `name`)",
            );
        }
        Some(Spanned::new(span, p))
    }

    /// One value of a key, recording its problem.
    fn de_value<T: serde::de::DeserializeOwned>(
        &mut self,
        v: Spanned<DeValue<'_>>,
        key: &str,
    ) -> Option<T> {
        match T::deserialize(toml::de::ValueDeserializer::from(v)) {
            Ok(t) => Some(t),
            Err(e) => {
                self.push(e.span(), suggest::humanize(e.message(), Some(key)));
                None
            }
        }
    }

    /// One `[[pipeline.step]]`: keys no step type takes are reported against the keys of
    /// this step's type; a value of the wrong type drops the step (its checks would only
    /// repeat the problem).
    fn raw_step(&mut self, s: Spanned<DeValue<'_>>) -> Option<Spanned<RawStep>> {
        let span = s.span();
        let DeValue::Table(mut t) = s.into_inner() else {
            self.push(
                Some(span),
                "each `step` must be a table: write `[[pipeline.step]]`",
            );
            return None;
        };
        let ty = t
            .get("type")
            .and_then(|v| v.get_ref().as_str())
            .and_then(|s| s.parse::<StepType>().ok());
        let all = suggest::fields_of::<RawStep>();
        match ty {
            Some(ty) => {
                let listed = ty.keys();
                let place = format!("a step of type {:?}", ty.as_str());
                self.drop_unknown_keys(&mut t, all, &place, &listed);
            }
            None => self.drop_unknown_keys(&mut t, all, "a step", all),
        }
        let attempt = Spanned::new(span.clone(), DeValue::Table(t.clone()));
        match <RawStep as serde::Deserialize>::deserialize(toml::de::ValueDeserializer::from(
            attempt,
        )) {
            Ok(st) => Some(Spanned::new(span, st)),
            Err(e) => {
                let key = key_at(&t, e.span().as_ref());
                self.push(e.span(), suggest::humanize(e.message(), key.as_deref()));
                None
            }
        }
    }

    fn validate(&mut self, raw: RawConfig) -> Config {
        let source = match raw.source {
            None => Source::default(),
            Some(s) => self.source(s),
        };
        let keepalive = match raw.keepalive {
            None => Keepalive::default(),
            Some(k) => {
                let heartbeat_fraction = match &k.heartbeat_fraction {
                    None => DEFAULT_HEARTBEAT_FRACTION,
                    Some(f) => {
                        let v = *f.get_ref();
                        if !(v > 0.0 && v < 1.0) {
                            self.at(f, format!("`heartbeat_fraction` = {v} must be strictly between 0 and 1 (a heartbeat at or after the timeout is too late)"));
                        }
                        v
                    }
                };
                Keepalive {
                    heartbeat_fraction,
                    min_interval: self.duration(
                        &k.min_interval,
                        "min_interval",
                        DEFAULT_MIN_INTERVAL,
                        Duration::from_secs(1),
                        Duration::from_secs(3600),
                    ),
                    deadline_margin: self.duration(
                        &k.deadline_margin,
                        "deadline_margin",
                        DEFAULT_DEADLINE_MARGIN,
                        Duration::ZERO,
                        Duration::from_secs(6 * 3600),
                    ),
                }
            }
        };
        if !raw.pipelines_declared {
            self.push(
                Some(0..0),
                "no `[[pipeline]]`: the configuration must define at least one pipeline",
            );
        }
        let mut names = HashSet::new();
        let mut pipelines = Vec::new();
        for p in raw.pipelines {
            let span = p.span();
            let p = p.into_inner();
            if let Some(n) = &p.name
                && !names.insert(n.get_ref().clone())
            {
                self.at(n, format!("duplicate pipeline name {:?}", n.get_ref()));
            }
            pipelines.push(self.pipeline(p, span));
        }
        let agent = match raw.agent {
            None => Agent::default(),
            Some(a) => self.agent(a),
        };
        let setup = raw.setup.map(|s| self.setup(s, &source));
        Config {
            source,
            keepalive,
            agent,
            setup,
            pipelines,
        }
    }

    fn setup(&mut self, s: Spanned<RawSetup>, source: &Source) -> Setup {
        let span = s.span();
        let s = s.into_inner();
        let mut groups = Vec::new();
        for g in &s.groups {
            let name = g.get_ref();
            if name.is_empty() || name.len() > 255 {
                self.at(g, "`setup.groups`: a group name has 1 to 255 characters");
            } else if name.contains(['*', '?', '[']) {
                self.at(g, format!("`setup.groups`: {name:?} is a glob; setup puts hooks on groups it is given by name"));
            } else if groups.contains(name) {
                self.at(g, format!("`setup.groups`: {name:?} is listed twice"));
            } else {
                groups.push(name.clone());
            }
        }
        let delivery = match &s.delivery {
            None => Delivery::EventBridge,
            Some(d) => match d.get_ref().as_str() {
                "eventbridge" => Delivery::EventBridge,
                "sns" => Delivery::Sns,
                "direct" => Delivery::Direct,
                other => {
                    self.at(d, format!("`setup.delivery` = {other:?}: expected \"eventbridge\", \"sns\" or \"direct\""));
                    Delivery::EventBridge
                }
            },
        };
        let role_arn = s.role_arn.as_ref().map(|r| r.get_ref().clone());
        if let Some(r) = &s.role_arn
            && !(r.get_ref().starts_with("arn:") && r.get_ref().contains(":iam::"))
        {
            self.at(
                r,
                format!(
                    "`setup.role_arn` = {:?} is not an IAM role ARN (arn:PARTITION:iam::ACCOUNT:role/NAME)",
                    r.get_ref()
                ),
            );
        }
        match (delivery, &s.role_arn) {
            (Delivery::Direct | Delivery::Sns, None) => self.push(
                Some(span.clone()),
                format!(
                    "`setup.delivery` = \"{}\" needs `setup.role_arn`: the role Auto Scaling assumes to publish (spec §2.1)",
                    delivery.as_str()
                ),
            ),
            (Delivery::EventBridge, Some(r)) => self.at(
                r,
                "`setup.role_arn` is only for `delivery = \"direct\"` or `\"sns\"`: EventBridge needs no role",
            ),
            _ => {}
        }
        // Where the actions go: a queue, or (agents) a topic.
        let source_refused = ["queue_url", "topic_arn"]
            .iter()
            .any(|k| self.failed.contains(&format!("`[source]`.{k}")));
        match (delivery, &source.queue_url, &source.topic_arn) {
            _ if source_refused => {}
            (Delivery::Sns, None, Some(_)) | (_, Some(_), None) => {}
            (Delivery::Sns, _, _) => self.push(
                Some(span.clone()),
                "`[setup]` with `delivery = \"sns\"` needs `source.queue_url` (subscribed to a topic it creates) or `source.topic_arn` (agents subscribe themselves)",
            ),
            _ => self.push(
                Some(span.clone()),
                format!(
                    "`[setup]` with `delivery = \"{}\"` needs `source.queue_url`: the queue to create",
                    delivery.as_str()
                ),
            ),
        }
        let dead_letter_queue = s.dead_letter_queue.as_ref().is_none_or(|b| *b.get_ref());
        let max_receive_count = match &s.max_receive_count {
            None => DEFAULT_MAX_RECEIVE_COUNT,
            Some(n) => match u32::try_from(*n.get_ref()) {
                Ok(v) if (1..=1000).contains(&v) => v,
                _ => {
                    self.at(n, format!("`setup.max_receive_count` = {} is out of range: it must be between 1 and 1000 (SQS)", n.get_ref()));
                    DEFAULT_MAX_RECEIVE_COUNT
                }
            },
        };
        if s.groups.is_empty() && !self.failed.contains("`[setup]`.groups") {
            self.push(
                Some(span.clone()),
                "`[setup]` needs `groups`: the Auto Scaling groups to put the hooks on",
            );
        }
        if s.hook.is_empty() {
            self.push(Some(span), "`[setup]` needs at least one `[[setup.hook]]`");
        }
        for h in &s.hook {
            let h = h.get_ref();
            for v in [&h.notification_target_arn, &h.role_arn]
                .into_iter()
                .flatten()
            {
                self.at(v, "`setup.hook`: the notification target and role follow `setup.delivery` and `setup.role_arn`; leave them out here");
            }
        }
        let hooks = self.hook_specs(&s.hook, "setup.hook");
        Setup {
            groups,
            delivery,
            role_arn,
            dead_letter_queue,
            max_receive_count,
            hooks,
        }
    }

    fn agent(&mut self, a: RawAgent) -> Agent {
        let d = Agent::default();
        let state_dir = match &a.state_dir {
            Some(p) if p.get_ref().trim().is_empty() => {
                self.at(p, "`agent.state_dir` is empty");
                d.state_dir.clone()
            }
            Some(p) => p.get_ref().into(),
            None => d.state_dir.clone(),
        };
        let reboot_command = match &a.reboot_command {
            Some(c) if c.get_ref().is_empty() || c.get_ref()[0].trim().is_empty() => {
                self.at(c, "`agent.reboot_command` must name a program: an argv array such as [\"systemctl\", \"reboot\"]");
                d.reboot_command.clone()
            }
            Some(c) => c.get_ref().clone(),
            None => d.reboot_command.clone(),
        };
        let imds_poll_interval = self.duration(
            &a.imds_poll_interval,
            "imds_poll_interval",
            DEFAULT_IMDS_POLL_INTERVAL,
            Duration::from_millis(100),
            Duration::from_secs(300),
        );
        let group = a.group.as_ref().map(|g| g.get_ref().clone());
        if let Some(g) = &a.group
            && g.get_ref().trim().is_empty()
        {
            self.at(g, "`agent.group` is empty");
        }
        let hooks = self.hook_specs(&a.hook, "agent.hook");
        Agent {
            state_dir,
            reboot_command,
            imds_poll_interval,
            group,
            hooks,
        }
    }

    /// `[[agent.hook]]` or `[[setup.hook]]` (spec §2.1).
    fn hook_specs(&mut self, raw: &[Spanned<RawHookSpec>], table: &str) -> Vec<HookSpec> {
        let mut hooks = Vec::new();
        let mut seen = HashSet::new();
        for h in raw {
            let h = h.get_ref();
            let name = h.name.get_ref().clone();
            if name.is_empty() || name.len() > 255 {
                self.at(
                    &h.name,
                    format!("`{table}.name` must have 1 to 255 characters (spec §2.1)"),
                );
            }
            if !seen.insert(name.clone()) {
                self.at(&h.name, format!("duplicate `[[{table}]]` {name:?}"));
            }
            let transition = match h.transition.get_ref().to_ascii_lowercase().as_str() {
                "launching" | "launch" | "autoscaling:ec2_instance_launching" => {
                    LifecycleTransition::Launching
                }
                "terminating" | "terminate" | "autoscaling:ec2_instance_terminating" => {
                    LifecycleTransition::Terminating
                }
                other => {
                    self.at(&h.transition, format!("`{table}.transition`: unknown transition {other:?}: expected \"launching\" or \"terminating\""));
                    LifecycleTransition::Launching
                }
            };
            // Spec §2.1: HeartbeatTimeout 30..7200 s, default 3600.
            let heartbeat_timeout = self.duration(
                &h.heartbeat_timeout,
                "heartbeat_timeout",
                Duration::from_secs(3600),
                Duration::from_secs(30),
                Duration::from_secs(7200),
            );
            let default_result = self.result(
                &h.default_result,
                &format!("{table}.default_result"),
                LifecycleResult::Abandon,
            );
            if h.notification_target_arn.is_some() != h.role_arn.is_some() {
                self.at(&h.name, format!("`{table}`: `notification_target_arn` and `role_arn` go together (spec §2.1): give both or neither"));
            }
            if let Some(m) = &h.notification_metadata
                && m.get_ref().len() > 1023
            {
                self.at(
                    m,
                    format!(
                        "`{table}.notification_metadata` is longer than 1023 characters (spec §2.1)"
                    ),
                );
            }
            hooks.push(HookSpec {
                name,
                transition,
                heartbeat_timeout,
                default_result,
                notification_target_arn: h
                    .notification_target_arn
                    .as_ref()
                    .map(|v| v.get_ref().clone()),
                role_arn: h.role_arn.as_ref().map(|v| v.get_ref().clone()),
                notification_metadata: h
                    .notification_metadata
                    .as_ref()
                    .map(|v| v.get_ref().clone()),
            });
        }
        hooks
    }

    fn source(&mut self, s: RawSource) -> Source {
        let imds = s.imds.as_ref().is_some_and(|b| *b.get_ref());
        if let Some(q) = &s.queue_url {
            if let Err(e) = reqwest::Url::parse(q.get_ref()) {
                self.at(
                    q,
                    format!("`queue_url` = {:?} is not a URL: {e}", q.get_ref()),
                );
            }
            if imds {
                self.at(
                    q,
                    "`queue_url` and `imds = true` exclude each other: choose the queue or IMDS",
                );
            }
        }
        if let Some(t) = &s.topic_arn {
            if !t.get_ref().starts_with("arn:") || t.get_ref().split(':').count() != 6 {
                self.at(t, format!("`topic_arn` = {:?} is not an SNS topic ARN (arn:PARTITION:sns:REGION:ACCOUNT:NAME)", t.get_ref()));
            }
            if s.queue_url.is_some() || imds {
                self.at(
                    t,
                    "`topic_arn` excludes `queue_url` and `imds = true`: choose one source",
                );
            }
        }
        Source {
            queue_url: s.queue_url.map(Spanned::into_inner),
            topic_arn: s.topic_arn.map(Spanned::into_inner),
            imds,
            wait_time_seconds: self.int(
                &s.wait_time_seconds,
                "wait_time_seconds",
                DEFAULT_WAIT_TIME_SECONDS.into(),
                0,
                20,
            ) as u32,
            max_messages: self.int(
                &s.max_messages,
                "max_messages",
                DEFAULT_MAX_MESSAGES.into(),
                1,
                10,
            ) as u32,
            concurrency: self.int(
                &s.concurrency,
                "concurrency",
                DEFAULT_CONCURRENCY.into(),
                1,
                MAX_CONCURRENCY.into(),
            ) as u32,
            visibility_timeout: self.duration(
                &s.visibility_timeout,
                "visibility_timeout",
                DEFAULT_VISIBILITY_TIMEOUT,
                Duration::from_secs(1),
                MAX_VISIBILITY_TIMEOUT,
            ),
        }
    }

    fn pipeline(&mut self, p: RawPipeline, span: Range<usize>) -> Pipeline {
        let name = p
            .name
            .as_ref()
            .map(|n| n.get_ref().clone())
            .unwrap_or_default();
        if let Some(n) = &p.name
            && name.trim().is_empty()
        {
            self.at(n, "pipeline `name` is empty");
        }
        let matcher = match p.matcher {
            None => Match::default(),
            Some(m) => {
                // `what` and the thing it names ("groups", "group").
                let globs = |cx: &mut Self,
                             v: &[Spanned<String>],
                             (what, thing): (&str, &str)|
                 -> Vec<glob::Pattern> {
                    v.iter()
                        .filter_map(|g| match glob::Pattern::new(g.get_ref()) {
                            Ok(_) if g.get_ref().is_empty() => {
                                cx.at(
                                    g,
                                    format!("`match.{what}`: an empty pattern matches no {thing}"),
                                );
                                None
                            }
                            Ok(p) => Some(p),
                            Err(e) => {
                                cx.at(
                                    g,
                                    format!("`match.{what}`: bad glob {:?}: {e}", g.get_ref()),
                                );
                                None
                            }
                        })
                        .collect()
                };
                let groups = globs(self, &m.groups, ("groups", "group"));
                let hooks = globs(self, &m.hooks, ("hooks", "hook"));
                let mut transitions = Vec::new();
                for t in &m.transitions {
                    match t.get_ref().to_ascii_lowercase().as_str() {
                        "launching" | "launch" | "autoscaling:ec2_instance_launching" => transitions.push(LifecycleTransition::Launching),
                        "terminating" | "terminate" | "autoscaling:ec2_instance_terminating" => transitions.push(LifecycleTransition::Terminating),
                        other => self.at(t, format!("`match.transitions`: unknown transition {other:?}: expected \"launching\" or \"terminating\"")),
                    }
                }
                let mut tags = BTreeMap::new();
                for (k, v) in &m.tags {
                    // An empty value is a valid pattern: EC2 tags may have empty values.
                    if k.is_empty() {
                        self.at(v, "`match.tags`: an empty tag key matches no tag");
                        continue;
                    }
                    match glob::Pattern::new(v.get_ref()) {
                        Ok(p) => {
                            tags.insert(k.clone(), p);
                        }
                        Err(e) => self.at(
                            v,
                            format!("`match.tags.{k}`: bad glob {:?}: {e}", v.get_ref()),
                        ),
                    }
                }
                Match {
                    groups,
                    hooks,
                    transitions,
                    tags,
                }
            }
        };
        if !p.steps_declared {
            self.push(
                Some(span),
                format!("pipeline {name:?} has no steps: add at least one `[[pipeline.step]]`"),
            );
        }
        let mut step_names = HashSet::new();
        let mut steps = Vec::new();
        let mut expanded = Vec::new();
        for s in p.steps {
            let span = s.span();
            expanded.extend(self.expand_preset(s.into_inner(), &span));
        }
        for (i, (s, span)) in expanded.into_iter().enumerate() {
            if let Some(step) = self.step(s, i, span.clone()) {
                if !step_names.insert(step.name.clone()) {
                    self.push(
                        Some(span),
                        format!("pipeline {name:?}: duplicate step name {:?}", step.name),
                    );
                }
                steps.push(step);
            }
        }
        let policy = match p.policy {
            None => CompletionPolicy::default(),
            Some(r) => {
                let d = CompletionPolicy::default();
                let on_deadline = match &r.on_deadline {
                    None => d.on_deadline,
                    Some(s) => match s.get_ref().to_ascii_lowercase().as_str() {
                        "continue" => DeadlinePolicy::Complete(LifecycleResult::Continue),
                        "abandon" => DeadlinePolicy::Complete(LifecycleResult::Abandon),
                        "hold" => DeadlinePolicy::Hold,
                        other => {
                            self.at(s, format!("`on_deadline` = {other:?}: expected \"continue\", \"abandon\" or \"hold\""));
                            d.on_deadline
                        }
                    },
                };
                CompletionPolicy {
                    on_success: self.result(&r.on_success, "on_success", d.on_success),
                    on_failure: self.result(&r.on_failure, "on_failure", d.on_failure),
                    on_deadline,
                    deadline_margin: r.deadline_margin.as_ref().map(|_| {
                        self.duration(
                            &r.deadline_margin,
                            "deadline_margin",
                            DEFAULT_DEADLINE_MARGIN,
                            Duration::ZERO,
                            Duration::from_secs(6 * 3600),
                        )
                    }),
                }
            }
        };
        Pipeline {
            name,
            matcher,
            steps,
            policy,
        }
    }
}
