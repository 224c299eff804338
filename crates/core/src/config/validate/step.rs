//! Validation of each step type.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use super::super::raw::RawStep;
use super::super::*;
use super::Cx;
use crate::template::Template;

impl Cx<'_> {
    pub(super) fn step(&mut self, s: RawStep, index: usize, span: Range<usize>) -> Option<Step> {
        let step_type = match s.kind.get_ref().parse::<StepType>() {
            Ok(t) => t,
            Err(e) => {
                self.at(&s.kind, e.to_string());
                return None;
            }
        };
        let ty = step_type.as_str();
        // Every field of `RawStep`: a new one is a compile error until it is listed here.
        let RawStep {
            kind: _,
            name: _,
            timeout: _,
            retries: _,
            backoff: _,
            command,
            env,
            working_dir,
            output_limit,
            reboot_exit_code,
            method,
            url,
            headers,
            body,
            expect_status,
            preset: _,
            registry_url: _,
            app: _,
            instance: _,
            interval,
            format,
            message,
            path,
            mode,
            content,
            bucket,
            key,
            sha256,
            files,
            if_missing,
            commands,
            cluster,
            stop_tasks,
            stack,
            resource,
            unique_id,
            status,
            tags,
            duration,
            image_name,
            description,
            no_reboot,
            only_if,
            marker_tag,
            target_group_arns,
            port,
        } = &s;
        let present: [(&str, bool); 37] = [
            ("command", command.is_some()),
            ("env", env.is_some()),
            ("working_dir", working_dir.is_some()),
            ("output_limit", output_limit.is_some()),
            ("reboot_exit_code", reboot_exit_code.is_some()),
            ("method", method.is_some()),
            ("url", url.is_some()),
            ("headers", headers.is_some()),
            ("body", body.is_some()),
            ("expect_status", expect_status.is_some()),
            ("interval", interval.is_some()),
            ("format", format.is_some()),
            ("message", message.is_some()),
            ("path", path.is_some()),
            ("mode", mode.is_some()),
            ("content", content.is_some()),
            ("bucket", bucket.is_some()),
            ("key", key.is_some()),
            ("sha256", sha256.is_some()),
            ("files", files.is_some()),
            ("if_missing", if_missing.is_some()),
            ("commands", commands.is_some()),
            ("cluster", cluster.is_some()),
            ("stop_tasks", stop_tasks.is_some()),
            ("stack", stack.is_some()),
            ("resource", resource.is_some()),
            ("unique_id", unique_id.is_some()),
            ("status", status.is_some()),
            ("tags", tags.is_some()),
            ("duration", duration.is_some()),
            ("image_name", image_name.is_some()),
            ("description", description.is_some()),
            ("no_reboot", no_reboot.is_some()),
            ("only_if", only_if.is_some()),
            ("marker_tag", marker_tag.is_some()),
            ("target_group_arns", target_group_arns.is_some()),
            ("port", port.is_some()),
        ];
        let allowed = step_type.fields();
        for (field, is) in present {
            if is && !allowed.contains(&field) {
                let hint = super::super::suggest::did_you_mean(field, &step_type.keys())
                    .map(|k| format!("; did you mean `{k}`?"))
                    .unwrap_or_default();
                self.push(
                    Some(span.clone()),
                    format!(
                        "a step of type {ty:?} has no field `{field}`{hint} (its fields: {})",
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
        let default_timeout = match step_type {
            StepType::Wait => s.duration.as_ref().map_or(DEFAULT_STEP_TIMEOUT, |d| {
                d.get_ref().0.clamp(DEFAULT_STEP_TIMEOUT, MAX_STEP_TIMEOUT)
            }),
            StepType::Image => DEFAULT_IMAGE_TIMEOUT,
            StepType::TargetGroups => DEFAULT_TARGET_GROUPS_TIMEOUT,
            StepType::Exec
            | StepType::Http
            | StepType::Probe
            | StepType::Notify
            | StepType::File
            | StepType::S3Fetch
            | StepType::S3Upload
            | StepType::SsmCommand
            | StepType::EcsDrain
            | StepType::Signal
            | StepType::Tag => DEFAULT_STEP_TIMEOUT,
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
        let default_retries = step_type.default_retries();
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
        let kind = match step_type {
            StepType::Exec => {
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
            StepType::Http => {
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
            StepType::Probe => {
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
            StepType::Wait => {
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
            StepType::File => self.file_step(&s, &span),
            StepType::S3Fetch => self.s3_fetch_step(&s, &span),
            StepType::S3Upload => self.s3_upload_step(&s, &span),
            StepType::SsmCommand => self.ssm_command_step(&s, &span),
            StepType::EcsDrain => self.ecs_drain_step(&s),
            StepType::Signal => self.signal_step(&s, &span),
            StepType::Tag => self.tag_step(&s, &span),
            StepType::Image => {
                let iv = self.step_interval(&s, DEFAULT_IMAGE_INTERVAL);
                self.image_step(&s, &span, iv)
            }
            StepType::TargetGroups => {
                let iv = self.step_interval(&s, DEFAULT_TARGET_GROUPS_INTERVAL);
                self.target_groups_step(&s, iv)
            }
            StepType::Notify => {
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
