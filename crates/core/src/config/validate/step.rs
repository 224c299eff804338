//! Validation of each step type.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use super::super::raw::RawStep;
use super::super::*;
use super::{Cx, STEP_TYPES};
use crate::template::Template;

impl Cx<'_> {
    pub(super) fn step(&mut self, s: RawStep, index: usize, span: Range<usize>) -> Option<Step> {
        let ty = s.kind.get_ref().as_str();
        if !STEP_TYPES.contains(&ty) {
            self.at(
                &s.kind,
                format!(
                    "unknown step type {ty:?} (step types: {})",
                    STEP_TYPES.join(", ")
                ),
            );
            return None;
        }
        let present: [(&str, bool); 37] = [
            ("command", s.command.is_some()),
            ("env", s.env.is_some()),
            ("working_dir", s.working_dir.is_some()),
            ("output_limit", s.output_limit.is_some()),
            ("reboot_exit_code", s.reboot_exit_code.is_some()),
            ("method", s.method.is_some()),
            ("url", s.url.is_some()),
            ("headers", s.headers.is_some()),
            ("body", s.body.is_some()),
            ("expect_status", s.expect_status.is_some()),
            ("interval", s.interval.is_some()),
            ("format", s.format.is_some()),
            ("message", s.message.is_some()),
            ("path", s.path.is_some()),
            ("mode", s.mode.is_some()),
            ("content", s.content.is_some()),
            ("bucket", s.bucket.is_some()),
            ("key", s.key.is_some()),
            ("sha256", s.sha256.is_some()),
            ("files", s.files.is_some()),
            ("if_missing", s.if_missing.is_some()),
            ("commands", s.commands.is_some()),
            ("cluster", s.cluster.is_some()),
            ("stop_tasks", s.stop_tasks.is_some()),
            ("stack", s.stack.is_some()),
            ("resource", s.resource.is_some()),
            ("unique_id", s.unique_id.is_some()),
            ("status", s.status.is_some()),
            ("tags", s.tags.is_some()),
            ("duration", s.duration.is_some()),
            ("image_name", s.image_name.is_some()),
            ("description", s.description.is_some()),
            ("no_reboot", s.no_reboot.is_some()),
            ("only_if", s.only_if.is_some()),
            ("marker_tag", s.marker_tag.is_some()),
            ("target_group_arns", s.target_group_arns.is_some()),
            ("port", s.port.is_some()),
        ];
        let allowed: &[&str] = match ty {
            "exec" => &[
                "command",
                "env",
                "working_dir",
                "output_limit",
                "reboot_exit_code",
            ],
            "http" => &["method", "url", "headers", "body", "expect_status"],
            "probe" => &[
                "command",
                "env",
                "working_dir",
                "url",
                "headers",
                "expect_status",
                "interval",
            ],
            "notify" => &["url", "headers", "format", "message"],
            "file" => &["path", "content", "mode"],
            "s3-fetch" => &["bucket", "key", "path", "mode", "sha256"],
            "s3-upload" => &["bucket", "key", "files", "if_missing"],
            "ssm-command" => &["commands", "env", "working_dir", "interval"],
            "ecs-drain" => &["cluster", "interval", "stop_tasks"],
            "signal" => &["stack", "resource", "unique_id", "status"],
            "wait" => &["duration"],
            "image" => &[
                "image_name",
                "description",
                "tags",
                "no_reboot",
                "interval",
                "only_if",
                "marker_tag",
            ],
            "target-groups" => &["target_group_arns", "port", "interval"],
            _ => &["tags"],
        };
        for (field, is) in present {
            if is && !allowed.contains(&field) {
                self.push(
                    Some(span.clone()),
                    format!(
                        "a step of type {ty:?} has no field `{field}` (its fields: {})",
                        allowed.join(", ")
                    ),
                );
            }
        }
        let name = match &s.name {
            Some(n) if n.get_ref().trim().is_empty() => {
                self.at(n, "step `name` is empty");
                n.get_ref().clone()
            }
            Some(n) => n.get_ref().clone(),
            None => format!("{ty}-{}", index + 1),
        };
        if let Some(t) = s
            .timeout
            .as_ref()
            .filter(|t| t.get_ref().0 > MAX_STEP_TIMEOUT)
        {
            self.at(
                t,
                format!(
                    "`timeout` = {} is longer than 48h, the longest a lifecycle action can wait",
                    format_duration(t.get_ref().0)
                ),
            );
        }
        // A `wait` longer than the default timeout gets a timeout that lets it finish.
        let default_timeout = match (ty, &s.duration) {
            ("wait", Some(d)) => d.get_ref().0.clamp(DEFAULT_STEP_TIMEOUT, MAX_STEP_TIMEOUT),
            ("image", _) => DEFAULT_IMAGE_TIMEOUT,
            ("target-groups", _) => DEFAULT_TARGET_GROUPS_TIMEOUT,
            _ => DEFAULT_STEP_TIMEOUT,
        };
        let timeout = match &s.timeout {
            Some(t) if t.get_ref().0 > MAX_STEP_TIMEOUT => MAX_STEP_TIMEOUT,
            other => self.duration(
                other,
                "timeout",
                default_timeout,
                Duration::from_millis(1),
                MAX_STEP_TIMEOUT,
            ),
        };
        let default_retries = if matches!(
            ty,
            "http"
                | "notify"
                | "s3-fetch"
                | "s3-upload"
                | "ecs-drain"
                | "signal"
                | "tag"
                | "image"
                | "target-groups"
        ) {
            DEFAULT_RETRIES_NETWORK
        } else {
            DEFAULT_RETRIES_LOCAL
        };
        let retries = self.int(&s.retries, "retries", default_retries.into(), 0, 100) as u32;
        let backoff = self.duration(
            &s.backoff,
            "backoff",
            DEFAULT_BACKOFF,
            Duration::ZERO,
            MAX_BACKOFF,
        );
        let missing = |cx: &mut Self, field: &str| {
            cx.push(
                Some(span.clone()),
                format!("a step of type {ty:?} needs `{field}`"),
            );
        };
        let working_dir = s.working_dir.as_ref().map(|w| PathBuf::from(w.get_ref()));
        let kind = match ty {
            "exec" => {
                let command = match &s.command {
                    Some(c) => self.argv(c, "command"),
                    None => {
                        missing(self, "command");
                        Vec::new()
                    }
                };
                let output_limit = self.int(
                    &s.output_limit,
                    "output_limit",
                    DEFAULT_OUTPUT_LIMIT as i64,
                    0,
                    64 * 1024 * 1024,
                ) as usize;
                let reboot_exit_code = s.reboot_exit_code.as_ref().map(|c| {
                    let v = *c.get_ref();
                    if !(1..=255).contains(&v) {
                        self.at(
                            c,
                            format!("`reboot_exit_code` = {v} must be between 1 and 255"),
                        );
                    }
                    v as i32
                });
                StepKind::Exec(ExecStep {
                    command,
                    env: self.templates(&s.env, "env"),
                    working_dir,
                    output_limit,
                    reboot_exit_code,
                })
            }
            "http" => {
                let method = match &s.method {
                    None => reqwest::Method::POST,
                    Some(m) => match reqwest::Method::from_bytes(
                        m.get_ref().to_ascii_uppercase().as_bytes(),
                    ) {
                        Ok(m) => m,
                        Err(_) => {
                            self.at(
                                m,
                                format!("`method` = {:?} is not an HTTP method", m.get_ref()),
                            );
                            reqwest::Method::POST
                        }
                    },
                };
                let url = match &s.url {
                    Some(u) => self.url(u, "url"),
                    None => {
                        missing(self, "url");
                        Template::empty()
                    }
                };
                let body = s.body.as_ref().map(|b| self.template(b, "body"));
                StepKind::Http(HttpStep {
                    method,
                    url,
                    headers: self.templates(&s.headers, "headers"),
                    body,
                    expect_status: self.status(&s.expect_status),
                })
            }
            "probe" => {
                let interval = self.duration(
                    &s.interval,
                    "interval",
                    DEFAULT_PROBE_INTERVAL,
                    Duration::from_millis(10),
                    Duration::from_secs(3600),
                );
                let check = match (&s.command, &s.url) {
                    (Some(c), None) => ProbeCheck::Exec {
                        command: self.argv(c, "command"),
                        env: self.templates(&s.env, "env"),
                        working_dir,
                    },
                    (None, Some(u)) => {
                        if s.env.is_some() || s.working_dir.is_some() {
                            self.push(
                                Some(span.clone()),
                                "an HTTP probe has no `env` or `working_dir`",
                            );
                        }
                        ProbeCheck::Http {
                            url: self.url(u, "url"),
                            headers: self.templates(&s.headers, "headers"),
                            expect_status: self.status(&s.expect_status),
                        }
                    }
                    _ => {
                        self.push(Some(span.clone()), "a step of type \"probe\" needs exactly one of `url` (HTTP GET) or `command` (argv)");
                        ProbeCheck::Exec {
                            command: Vec::new(),
                            env: BTreeMap::new(),
                            working_dir: None,
                        }
                    }
                };
                StepKind::Probe(ProbeStep { interval, check })
            }
            "wait" => {
                let duration = self.duration(
                    &s.duration,
                    "duration",
                    Duration::ZERO,
                    Duration::ZERO,
                    MAX_STEP_TIMEOUT,
                );
                if duration > timeout {
                    let at = s.duration.as_ref().map_or(span.clone(), |d| d.span());
                    self.push(
                        Some(at),
                        format!(
                            "`duration` = {} is longer than the step's `timeout` ({}): the wait would always time out",
                            format_duration(duration),
                            format_duration(timeout)
                        ),
                    );
                }
                StepKind::Wait(WaitStep { duration })
            }
            "file" | "s3-fetch" | "s3-upload" | "ssm-command" | "ecs-drain" | "signal" | "tag"
            | "image" | "target-groups" => self.aws_or_file_step(ty, &s, &span),
            _ => {
                let url = match &s.url {
                    Some(u) => self.url(u, "url"),
                    None => {
                        missing(self, "url");
                        Template::empty()
                    }
                };
                let message = match &s.message {
                    Some(m) => self.template(m, "message"),
                    None => {
                        missing(self, "message");
                        Template::empty()
                    }
                };
                let format = match &s.format {
                    None => NotifyFormat::Json,
                    Some(f) => match f.get_ref().as_str() {
                        "json" => NotifyFormat::Json,
                        "slack" => NotifyFormat::Slack,
                        other => {
                            self.at(
                                f,
                                format!("`format` = {other:?}: expected \"json\" or \"slack\""),
                            );
                            NotifyFormat::Json
                        }
                    },
                };
                StepKind::Notify(NotifyStep {
                    url,
                    format,
                    message,
                    headers: self.templates(&s.headers, "headers"),
                })
            }
        };
        Some(Step {
            name,
            timeout,
            retries,
            backoff,
            kind,
        })
    }
}

// The `file` step and the step types that call AWS.
impl Cx<'_> {
    fn required_template(
        &mut self,
        v: &Option<Spanned<String>>,
        ty: &str,
        what: &str,
        span: &Range<usize>,
    ) -> Template {
        match v {
            Some(t) => {
                let t2 = self.template(t, what);
                if t2.source().trim().is_empty() {
                    self.at(t, format!("`{what}` is empty"));
                }
                t2
            }
            None => {
                self.push(
                    Some(span.clone()),
                    format!("a step of type {ty:?} needs `{what}`"),
                );
                Template::empty()
            }
        }
    }

    /// A Unix mode: a string of octal digits (`"0755"`) or a TOML octal integer (`0o755`).
    fn mode(&mut self, v: &Option<Spanned<toml::Value>>) -> Option<u32> {
        let m = v.as_ref()?;
        let raw = self.text.get(m.span()).unwrap_or_default().trim();
        let parsed = match m.get_ref() {
            toml::Value::String(s) => {
                let d = s.trim().trim_start_matches("0o");
                (!d.is_empty() && d.len() <= 4)
                    .then(|| u32::from_str_radix(d, 8).ok())
                    .flatten()
            }
            toml::Value::Integer(i) if raw.starts_with("0o") => u32::try_from(*i).ok(),
            _ => None,
        };
        match parsed.filter(|p| *p <= 0o7777) {
            Some(p) => Some(p),
            None => {
                self.at(m, "`mode` must be octal permissions: a string such as \"0644\" or \"0755\", or a TOML octal integer (0o644)");
                None
            }
        }
    }

    fn string_list(
        &mut self,
        v: &Option<Spanned<Vec<Spanned<String>>>>,
        ty: &str,
        what: &str,
        span: &Range<usize>,
    ) -> Vec<Template> {
        let Some(list) = v else {
            self.push(
                Some(span.clone()),
                format!("a step of type {ty:?} needs `{what}`"),
            );
            return Vec::new();
        };
        if list.get_ref().is_empty() {
            self.at(list, format!("`{what}` is empty"));
        }
        list.get_ref()
            .iter()
            .map(|t| self.template(t, what))
            .collect()
    }

    fn aws_or_file_step(&mut self, ty: &str, s: &RawStep, span: &Range<usize>) -> StepKind {
        let interval = |cx: &mut Self, default: Duration| {
            cx.duration(
                &s.interval,
                "interval",
                default,
                Duration::from_millis(10),
                Duration::from_secs(3600),
            )
        };
        match ty {
            "file" => StepKind::File(FileStep {
                path: self.required_template(&s.path, ty, "path", span),
                content: match &s.content {
                    Some(c) => self.template(c, "content"),
                    None => {
                        self.push(
                            Some(span.clone()),
                            "a step of type \"file\" needs `content` (use \"\" for an empty file)",
                        );
                        Template::empty()
                    }
                },
                mode: self.mode(&s.mode).unwrap_or(DEFAULT_FILE_MODE),
            }),
            "s3-fetch" => {
                let sha256 = s.sha256.as_ref().and_then(|h| {
                    let v = h.get_ref().trim().to_ascii_lowercase();
                    if v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()) {
                        Some(v)
                    } else {
                        self.at(h, format!("`sha256` = {:?} is not a SHA-256 digest: expected 64 hexadecimal digits (`sha256sum FILE`)", h.get_ref()));
                        None
                    }
                });
                StepKind::S3Fetch(S3FetchStep {
                    bucket: self.required_template(&s.bucket, ty, "bucket", span),
                    key: self.required_template(&s.key, ty, "key", span),
                    path: self.required_template(&s.path, ty, "path", span),
                    mode: self.mode(&s.mode),
                    sha256,
                })
            }
            "s3-upload" => {
                let bucket = self.required_template(&s.bucket, ty, "bucket", span);
                let files = self.string_list(&s.files, ty, "files", span);
                let key = match &s.key {
                    None => {
                        self.push(
                            Some(span.clone()),
                            "a step of type \"s3-upload\" needs `key`, e.g. \"logs/{{ group }}/{{ instance_id }}/{{ file_name }}\"",
                        );
                        Template::empty()
                    }
                    Some(k) => match Template::parse(k.get_ref()) {
                        Ok(t) => {
                            let per_file =
                                t.variables().any(|v| *v == crate::template::Var::FileName);
                            let several = files.len() > 1
                                || files.iter().any(|f| f.source().contains(['*', '?', '[']));
                            if several && !per_file {
                                self.at(k, "`key` must contain `{{ file_name }}` when `files` has several entries or a glob: otherwise every file would be uploaded to the same key");
                            }
                            if t.source().trim().is_empty() {
                                self.at(k, "`key` is empty");
                            }
                            t
                        }
                        // Reports the parse error with its position.
                        Err(_) => self.template(k, "key"),
                    },
                };
                let if_missing = match &s.if_missing {
                    None => IfMissing::Ok,
                    Some(v) => match v.get_ref().as_str() {
                        "ok" => IfMissing::Ok,
                        "fail" => IfMissing::Fail,
                        other => {
                            self.at(
                                v,
                                format!("`if_missing` = {other:?}: expected \"ok\" or \"fail\""),
                            );
                            IfMissing::Ok
                        }
                    },
                };
                StepKind::S3Upload(S3UploadStep {
                    bucket,
                    key,
                    files,
                    if_missing,
                })
            }
            "ssm-command" => {
                let commands = self.string_list(&s.commands, ty, "commands", span);
                let env = self.templates(&s.env, "env");
                for k in env.keys() {
                    let ok = !k.is_empty()
                        && !k.starts_with(|c: char| c.is_ascii_digit())
                        && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
                    if !ok {
                        self.push(
                            Some(span.clone()),
                            format!("`env`: {k:?} is not a shell variable name (letters, digits and `_`, not starting with a digit)"),
                        );
                    }
                }
                StepKind::SsmCommand(SsmCommandStep {
                    commands,
                    env,
                    working_dir: s
                        .working_dir
                        .as_ref()
                        .map(|w| self.template(w, "working_dir")),
                    interval: interval(self, DEFAULT_SSM_INTERVAL),
                })
            }
            "ecs-drain" => StepKind::EcsDrain(EcsDrainStep {
                cluster: s.cluster.as_ref().map(|c| {
                    let t = self.template(c, "cluster");
                    if t.source().trim().is_empty() {
                        self.at(
                            c,
                            "`cluster` is empty: leave it out to discover the cluster",
                        );
                    }
                    t
                }),
                interval: interval(self, DEFAULT_ECS_INTERVAL),
                stop_tasks: s.stop_tasks.as_ref().is_none_or(|b| *b.get_ref()),
            }),
            "signal" => StepKind::Signal(SignalStep {
                stack: self.required_template(&s.stack, ty, "stack", span),
                resource: self.required_template(&s.resource, ty, "resource", span),
                unique_id: match &s.unique_id {
                    Some(u) => self.template(u, "unique_id"),
                    None => {
                        Template::parse("{{ instance_id }}").unwrap_or_else(|_| Template::empty())
                    }
                },
                status: match &s.status {
                    None => SignalStatus::Success,
                    Some(v) => match v.get_ref().to_ascii_uppercase().as_str() {
                        "SUCCESS" => SignalStatus::Success,
                        "FAILURE" => SignalStatus::Failure,
                        _ => {
                            self.at(
                                v,
                                format!(
                                    "`status` = {:?}: expected \"SUCCESS\" or \"FAILURE\"",
                                    v.get_ref()
                                ),
                            );
                            SignalStatus::Success
                        }
                    },
                },
            }),
            "image" => {
                let iv = interval(self, DEFAULT_IMAGE_INTERVAL);
                self.image_step(s, span, iv)
            }
            "target-groups" => {
                let iv = interval(self, DEFAULT_TARGET_GROUPS_INTERVAL);
                self.target_groups_step(s, iv)
            }
            _ => {
                let tags = self.templates(&s.tags, "tags");
                match &s.tags {
                    None => self.push(
                        Some(span.clone()),
                        "a step of type \"tag\" needs `tags`, e.g. tags = { patched = \"{{ now | date }}\" }",
                    ),
                    Some(t) if t.is_empty() => {
                        self.push(Some(span.clone()), "`tags` is empty: give at least one tag")
                    }
                    Some(_) => {}
                }
                self.tag_keys(&tags, span);
                StepKind::Tag(TagStep { tags })
            }
        }
    }

    /// EC2 tag keys: 1 to 128 characters, not `aws:`.
    fn tag_keys(&mut self, tags: &BTreeMap<String, Template>, span: &Range<usize>) {
        for k in tags.keys() {
            if k.is_empty() || k.chars().count() > 128 {
                self.push(
                    Some(span.clone()),
                    format!("`tags`: {k:?} is not a tag key (1 to 128 characters)"),
                );
            } else if k.to_ascii_lowercase().starts_with("aws:") {
                self.push(
                    Some(span.clone()),
                    format!("`tags`: {k:?}: keys starting with `aws:` are reserved by AWS"),
                );
            }
        }
    }

    fn image_step(&mut self, s: &RawStep, span: &Range<usize>, interval: Duration) -> StepKind {
        let image_name = match &s.image_name {
            Some(n) => {
                let t = self.template(n, "image_name");
                let sample = t.render_sample();
                let parsed = Template::parse(n.get_ref()).is_ok();
                if parsed && t.is_literal() && !(3..=128).contains(&sample.chars().count()) {
                    self.at(
                        n,
                        format!("`image_name` = {sample:?}: an AMI name has 3 to 128 characters"),
                    );
                }
                t
            }
            None => Template::parse(DEFAULT_IMAGE_NAME).unwrap_or_else(|_| Template::empty()),
        };
        let description = s.description.as_ref().map(|d| {
            let t = self.template(d, "description");
            if t.is_literal() && t.source().chars().count() > 255 {
                self.at(
                    d,
                    "`description` is longer than 255 characters, the EC2 limit",
                );
            }
            t
        });
        let tags = self.templates(&s.tags, "tags");
        self.tag_keys(&tags, span);
        for k in tags.keys() {
            if [IMAGE_TAG_INSTANCE, IMAGE_TAG_GROUP, IMAGE_TAG_TOKEN].contains(&k.as_str()) {
                self.push(
                    Some(span.clone()),
                    format!("`tags`: {k:?} is set by lifehook on every image; choose another key"),
                );
            }
        }
        let only_if = s.only_if.as_ref().and_then(|o| match o.get_ref().as_str() {
            "unexpected-scale-in" => Some(ImageCondition::UnexpectedScaleIn),
            other => {
                self.at(
                    o,
                    format!("`only_if` = {other:?}: expected \"unexpected-scale-in\" (or leave it out to always create the image)"),
                );
                None
            }
        });
        let marker_tag = match &s.marker_tag {
            None => DEFAULT_MARKER_TAG.to_owned(),
            Some(m) => {
                let k = m.get_ref();
                if k.is_empty() || k.chars().count() > 128 {
                    self.at(
                        m,
                        format!("`marker_tag` = {k:?} is not a tag key (1 to 128 characters)"),
                    );
                }
                if s.only_if.is_none() {
                    self.at(
                        m,
                        "`marker_tag` applies only with `only_if = \"unexpected-scale-in\"`",
                    );
                }
                k.clone()
            }
        };
        StepKind::Image(ImageStep {
            image_name,
            description,
            tags,
            no_reboot: s.no_reboot.as_ref().is_none_or(|b| *b.get_ref()),
            interval,
            only_if,
            marker_tag,
        })
    }

    fn target_groups_step(&mut self, s: &RawStep, interval: Duration) -> StepKind {
        let mut arns = Vec::new();
        if let Some(list) = &s.target_group_arns {
            if list.get_ref().is_empty() {
                self.at(
                    list,
                    "`target_group_arns` is empty: leave it out to use the group's target groups",
                );
            }
            for a in list.get_ref() {
                let v = a.get_ref();
                let parts: Vec<&str> = v.splitn(6, ':').collect();
                let ok = parts.len() == 6
                    && parts[0] == "arn"
                    && parts[2] == "elasticloadbalancing"
                    && parts[5].starts_with("targetgroup/");
                if !ok {
                    self.at(a, format!("`target_group_arns`: {v:?} is not a target group ARN (arn:PARTITION:elasticloadbalancing:REGION:ACCOUNT:targetgroup/NAME/ID)"));
                } else if arns.contains(v) {
                    self.at(a, format!("`target_group_arns`: {v:?} is listed twice"));
                } else {
                    arns.push(v.clone());
                }
            }
        }
        let port = s.port.as_ref().map(|p| {
            let v = *p.get_ref();
            match u16::try_from(v) {
                Ok(n) if n >= 1 => n,
                _ => {
                    self.at(p, format!("`port` = {v} is not a port (1 to 65535)"));
                    1
                }
            }
        });
        StepKind::TargetGroups(TargetGroupsStep {
            target_group_arns: arns,
            port,
            interval,
        })
    }
}
