//! Validation of the `file` step and of the step types that call AWS.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use toml::Spanned;

use super::super::raw::RawStep;
use super::super::*;
use super::Cx;
use crate::template::Template;

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

    /// The `interval` of a step that polls.
    pub(super) fn step_interval(&mut self, s: &RawStep, default: Duration) -> Duration {
        self.duration(
            &s.interval,
            "interval",
            default,
            Duration::from_millis(10),
            Duration::from_secs(3600),
        )
    }

    /// A `file` step.
    pub(super) fn file_step(&mut self, s: &RawStep, span: &Range<usize>) -> StepKind {
        let ty = StepType::File.as_str();
        StepKind::File(FileStep {
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
        })
    }

    /// An `s3-fetch` step.
    pub(super) fn s3_fetch_step(&mut self, s: &RawStep, span: &Range<usize>) -> StepKind {
        let ty = StepType::S3Fetch.as_str();
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

    /// An `s3-upload` step.
    pub(super) fn s3_upload_step(&mut self, s: &RawStep, span: &Range<usize>) -> StepKind {
        let ty = StepType::S3Upload.as_str();
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
                    let per_file = t.variables().any(|v| *v == crate::template::Var::FileName);
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

    /// An `ssm-command` step.
    pub(super) fn ssm_command_step(&mut self, s: &RawStep, span: &Range<usize>) -> StepKind {
        let ty = StepType::SsmCommand.as_str();
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
            interval: self.step_interval(s, DEFAULT_SSM_INTERVAL),
        })
    }

    /// An `ecs-drain` step.
    pub(super) fn ecs_drain_step(&mut self, s: &RawStep) -> StepKind {
        StepKind::EcsDrain(EcsDrainStep {
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
            interval: self.step_interval(s, DEFAULT_ECS_INTERVAL),
            stop_tasks: s.stop_tasks.as_ref().is_none_or(|b| *b.get_ref()),
        })
    }

    /// A `signal` step.
    pub(super) fn signal_step(&mut self, s: &RawStep, span: &Range<usize>) -> StepKind {
        let ty = StepType::Signal.as_str();
        StepKind::Signal(SignalStep {
            stack: self.required_template(&s.stack, ty, "stack", span),
            resource: self.required_template(&s.resource, ty, "resource", span),
            unique_id: match &s.unique_id {
                Some(u) => self.template(u, "unique_id"),
                None => Template::parse("{{ instance_id }}").unwrap_or_else(|_| Template::empty()),
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
        })
    }

    /// A `tag` step.
    pub(super) fn tag_step(&mut self, s: &RawStep, span: &Range<usize>) -> StepKind {
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

    pub(super) fn image_step(
        &mut self,
        s: &RawStep,
        span: &Range<usize>,
        interval: Duration,
    ) -> StepKind {
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

    pub(super) fn target_groups_step(&mut self, s: &RawStep, interval: Duration) -> StepKind {
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
