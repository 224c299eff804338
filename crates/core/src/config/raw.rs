//! The configuration as written: serde types that keep spans, before validation.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use toml::Spanned;

use super::HumanDuration;

/// The file as parsed. Each top-level table, each `[[pipeline]]` (each of its keys) and each
/// `[[pipeline.step]]` is deserialized on its own, so that one bad value does not hide the
/// problems of the others (`validate::Cx::parse`).
pub(super) struct RawConfig {
    pub(super) source: Option<RawSource>,
    pub(super) keepalive: Option<RawKeepalive>,
    pub(super) agent: Option<RawAgent>,
    pub(super) setup: Option<Spanned<RawSetup>>,
    pub(super) pipelines: Vec<Spanned<RawPipeline>>,
    /// A `pipeline` key was present (even if no entry could be parsed).
    pub(super) pipelines_declared: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSource {
    pub(super) queue_url: Option<Spanned<String>>,
    pub(super) topic_arn: Option<Spanned<String>>,
    pub(super) imds: Option<Spanned<bool>>,
    pub(super) wait_time_seconds: Option<Spanned<i64>>,
    pub(super) max_messages: Option<Spanned<i64>>,
    pub(super) concurrency: Option<Spanned<i64>>,
    pub(super) visibility_timeout: Option<Spanned<HumanDuration>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAgent {
    pub(super) state_dir: Option<Spanned<String>>,
    pub(super) reboot_command: Option<Spanned<Vec<String>>>,
    pub(super) imds_poll_interval: Option<Spanned<HumanDuration>>,
    pub(super) group: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) hook: Vec<Spanned<RawHookSpec>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSetup {
    #[serde(default)]
    pub(super) groups: Vec<Spanned<String>>,
    pub(super) delivery: Option<Spanned<String>>,
    pub(super) role_arn: Option<Spanned<String>>,
    pub(super) dead_letter_queue: Option<Spanned<bool>>,
    pub(super) max_receive_count: Option<Spanned<i64>>,
    #[serde(default)]
    pub(super) hook: Vec<Spanned<RawHookSpec>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHookSpec {
    pub(super) name: Spanned<String>,
    pub(super) transition: Spanned<String>,
    pub(super) heartbeat_timeout: Option<Spanned<HumanDuration>>,
    pub(super) default_result: Option<Spanned<String>>,
    pub(super) notification_target_arn: Option<Spanned<String>>,
    pub(super) role_arn: Option<Spanned<String>>,
    pub(super) notification_metadata: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawKeepalive {
    pub(super) heartbeat_fraction: Option<Spanned<f64>>,
    pub(super) min_interval: Option<Spanned<HumanDuration>>,
    pub(super) deadline_margin: Option<Spanned<HumanDuration>>,
}

pub(super) struct RawPipeline {
    /// `None`: missing or not text (already reported).
    pub(super) name: Option<Spanned<String>>,
    pub(super) matcher: Option<RawMatch>,
    pub(super) steps: Vec<Spanned<RawStep>>,
    pub(super) policy: Option<RawCompletionPolicy>,
    /// A `step` key was present (even if no entry could be parsed).
    pub(super) steps_declared: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMatch {
    #[serde(default)]
    pub(super) groups: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) hooks: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) transitions: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) tags: BTreeMap<String, Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCompletionPolicy {
    pub(super) on_success: Option<Spanned<String>>,
    pub(super) on_failure: Option<Spanned<String>>,
    pub(super) on_deadline: Option<Spanned<String>>,
    pub(super) deadline_margin: Option<Spanned<HumanDuration>>,
}

/// Every field any step type has; `Cx::step` (in `validate`) rejects fields of other types.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStep {
    #[serde(rename = "type")]
    pub(super) kind: Spanned<String>,
    pub(super) name: Option<Spanned<String>>,
    pub(super) timeout: Option<Spanned<HumanDuration>>,
    pub(super) retries: Option<Spanned<i64>>,
    pub(super) backoff: Option<Spanned<HumanDuration>>,
    // exec, probe
    pub(super) command: Option<Spanned<Argv>>,
    pub(super) env: Option<BTreeMap<String, Spanned<String>>>,
    pub(super) working_dir: Option<Spanned<String>>,
    pub(super) output_limit: Option<Spanned<i64>>,
    pub(super) reboot_exit_code: Option<Spanned<i64>>,
    // http, probe, notify
    pub(super) method: Option<Spanned<String>>,
    pub(super) url: Option<Spanned<String>>,
    pub(super) headers: Option<BTreeMap<String, Spanned<String>>>,
    pub(super) body: Option<Spanned<String>>,
    pub(super) expect_status: Option<Spanned<toml::Value>>,
    // http presets (expanded into plain http steps before validation)
    pub(super) preset: Option<Spanned<String>>,
    pub(super) registry_url: Option<Spanned<String>>,
    pub(super) app: Option<Spanned<String>>,
    pub(super) instance: Option<Spanned<String>>,
    // probe
    pub(super) interval: Option<Spanned<HumanDuration>>,
    // notify
    pub(super) format: Option<Spanned<String>>,
    pub(super) message: Option<Spanned<String>>,
    // file, s3-fetch
    pub(super) path: Option<Spanned<String>>,
    pub(super) mode: Option<Spanned<toml::Value>>,
    pub(super) content: Option<Spanned<String>>,
    // s3-fetch, s3-upload
    pub(super) bucket: Option<Spanned<String>>,
    pub(super) key: Option<Spanned<String>>,
    pub(super) sha256: Option<Spanned<String>>,
    pub(super) files: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) if_missing: Option<Spanned<String>>,
    // ssm-command
    pub(super) commands: Option<Spanned<Vec<Spanned<String>>>>,
    // ecs-drain
    pub(super) cluster: Option<Spanned<String>>,
    pub(super) stop_tasks: Option<Spanned<bool>>,
    // signal
    pub(super) stack: Option<Spanned<String>>,
    pub(super) resource: Option<Spanned<String>>,
    pub(super) unique_id: Option<Spanned<String>>,
    pub(super) status: Option<Spanned<String>>,
    // tag, image
    pub(super) tags: Option<BTreeMap<String, Spanned<String>>>,
    // wait
    pub(super) duration: Option<Spanned<HumanDuration>>,
    // image
    pub(super) image_name: Option<Spanned<String>>,
    pub(super) description: Option<Spanned<String>>,
    pub(super) no_reboot: Option<Spanned<bool>>,
    pub(super) only_if: Option<Spanned<String>>,
    pub(super) marker_tag: Option<Spanned<String>>,
    // target-groups
    pub(super) target_group_arns: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) port: Option<Spanned<i64>>,
}

/// argv: an array of strings; a string is refused with a pointed message.
#[derive(Clone)]
pub(super) struct Argv(pub(super) Vec<Spanned<String>>);

impl<'de> Deserialize<'de> for Argv {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Argv;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of strings (argv)")
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Err(E::custom(
                    "`command` is an argv array, not a shell string: write [\"program\", \"arg\", ...] \
                     (use [\"/bin/sh\", \"-c\", \"...\"] only if you need a shell, and never put \
                     templates inside the script)",
                ))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Self::Value, A::Error> {
                let mut v = Vec::new();
                while let Some(s) = a.next_element::<Spanned<String>>()? {
                    v.push(s);
                }
                Ok(Argv(v))
            }
        }
        d.deserialize_any(V)
    }
}
