//! Service-registry presets of the `http` step.

use std::ops::Range;

use toml::Spanned;

use super::StepType;
use super::raw::RawStep;
use super::validate::Cx;

/// One request of a service-registry preset: `{app}` and `{instance}` in `path` are the
/// step's `app` and `instance` templates, URL-encoded.
struct PresetRequest {
    suffix: &'static str,
    method: &'static str,
    path: &'static str,
    expect: &'static [i64],
}

/// Service-registry presets of the `http` step: each is the plain `http` steps it stands
/// for, appended to `registry_url`. Another registry is one more entry (or, without a
/// preset, the same steps written out: see docs/configuration.md).
const REGISTRY_PRESETS: &[(&str, &[PresetRequest])] = &[(
    // Eureka REST operations: take the instance out of service (traffic stops as soon as
    // clients refresh), then delete it from the registry; a 404 means already gone.
    "eureka",
    &[
        PresetRequest {
            suffix: "out-of-service",
            method: "PUT",
            path: "/apps/{app}/{instance}/status?value=OUT_OF_SERVICE",
            expect: &[200],
        },
        PresetRequest {
            suffix: "delete",
            method: "DELETE",
            path: "/apps/{app}/{instance}",
            expect: &[200, 404],
        },
    ],
)];

/// A preset's `app` or `instance` as a URL path segment: a single template expression gets
/// the `urlencode` filter, a literal is percent-encoded now, a mix is used as written.
fn url_segment(v: &str) -> String {
    let t = v.trim();
    if let Some(inner) = t.strip_prefix("{{").and_then(|r| r.strip_suffix("}}"))
        && !inner.contains("{{")
        && !inner.contains("}}")
    {
        let inner = inner.trim();
        if inner.ends_with("urlencode") {
            return format!("{{{{ {inner} }}}}");
        }
        return format!("{{{{ {inner} | urlencode }}}}");
    }
    if !t.contains("{{") {
        return crate::template::urlencode(t);
    }
    t.to_owned()
}

impl Cx<'_> {
    /// An `http` step with `preset` becomes the plain `http` steps of its registry
    /// ([`REGISTRY_PRESETS`]); any other step is returned as it is.
    pub(super) fn expand_preset(
        &mut self,
        mut s: RawStep,
        span: &Range<usize>,
    ) -> Vec<(RawStep, Range<usize>)> {
        let preset_keys = [
            ("registry_url", s.registry_url.is_some()),
            ("app", s.app.is_some()),
            ("instance", s.instance.is_some()),
        ];
        let Some(preset) = s.preset.take() else {
            for (key, present) in preset_keys {
                if present {
                    self.push(
                        Some(span.clone()),
                        format!("`{key}` goes with `preset` (a service-registry preset of an `http` step)"),
                    );
                }
            }
            return vec![(s, span.clone())];
        };
        if s.kind.get_ref() != StepType::Http.as_str() {
            self.at(
                &preset,
                format!("`preset` is for `http` steps, not {:?}", s.kind.get_ref()),
            );
            return Vec::new();
        }
        let Some((_, requests)) = REGISTRY_PRESETS
            .iter()
            .find(|(n, _)| *n == preset.get_ref().as_str())
        else {
            let known: Vec<&str> = REGISTRY_PRESETS.iter().map(|(n, _)| *n).collect();
            self.at(
                &preset,
                format!(
                    "unknown preset {:?} (presets: {})",
                    preset.get_ref(),
                    known.join(", ")
                ),
            );
            return Vec::new();
        };
        for (key, present) in [
            ("method", s.method.is_some()),
            ("url", s.url.is_some()),
            ("body", s.body.is_some()),
            ("expect_status", s.expect_status.is_some()),
        ] {
            if present {
                self.push(
                    Some(span.clone()),
                    format!(
                        "`{key}` is set by preset {:?}: write plain `http` steps to change it",
                        preset.get_ref()
                    ),
                );
            }
        }
        let Some(base) = s.registry_url.take() else {
            self.push(
                Some(span.clone()),
                format!(
                    "preset {:?} needs `registry_url`, e.g. \"http://eureka.internal:8761/eureka\"",
                    preset.get_ref()
                ),
            );
            return Vec::new();
        };
        let Some(app) = s.app.take() else {
            self.push(
                Some(span.clone()),
                format!("preset {:?} needs `app`, e.g. \"{{{{ metadata.app }}}}\" or \"{{{{ tags.app }}}}\"", preset.get_ref()),
            );
            return Vec::new();
        };
        let instance = s
            .instance
            .take()
            .unwrap_or_else(|| Spanned::new(span.clone(), "{{ instance_id }}".to_owned()));
        let base_url = base.get_ref().trim_end_matches('/').to_owned();
        let name = s
            .name
            .as_ref()
            .map_or_else(|| preset.get_ref().clone(), |n| n.get_ref().clone());
        let at = |v: &str| Spanned::new(span.clone(), v.to_owned());
        requests
            .iter()
            .map(|r| {
                let path = r
                    .path
                    .replace("{app}", &url_segment(app.get_ref()))
                    .replace("{instance}", &url_segment(instance.get_ref()));
                let expect =
                    toml::Value::Array(r.expect.iter().map(|c| toml::Value::Integer(*c)).collect());
                // Keys the step has beyond the preset's stay, so that `step` reports
                // those an `http` step does not take.
                let step = RawStep {
                    name: Some(at(&format!("{name}-{}", r.suffix))),
                    method: Some(at(r.method)),
                    url: Some(Spanned::new(base.span(), format!("{base_url}{path}"))),
                    body: None,
                    expect_status: Some(Spanned::new(span.clone(), expect)),
                    ..s.clone()
                };
                (step, span.clone())
            })
            .collect()
    }
}
