//! The handlers' own account in the demo's output: each step as it ends and each action
//! when it is done (its pipeline, the result sent and who gave it, the heartbeats sent),
//! read from the tracing events lifehook's controller and agent emit anyway ("step
//! finished", "keepalive stopped", "action done" in their action span), so the demo shows
//! what the real handlers did, not a story of its own.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::out::Out;

/// Where the account goes; nothing is told before the demo starts.
static OUT: OnceLock<Out> = OnceLock::new();

/// Starts telling, on `out`.
pub(crate) fn start(out: Out) {
    let _ = OUT.set(out);
}

/// Whether an event is one the narrator tells (the log lines need not repeat it).
pub(crate) fn is_narrated(meta: &Metadata<'_>) -> bool {
    meta.is_event()
        && meta.target() == "lifehook_core::pipeline"
        && meta.fields().field("step_type").is_some()
}

/// The tracing layer.
pub(crate) struct Narrator;

/// The fields of a span or event, as text.
#[derive(Debug, Default)]
struct Fields(BTreeMap<&'static str, String>);

impl Fields {
    fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str).filter(|v| !v.is_empty())
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name(), value.to_owned());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name(), value.to_string());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name(), value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name(), format!("{value:?}"));
    }
}

/// Heartbeats the action's keepalive sent, kept on its span until the action is done.
#[derive(Debug, Default)]
struct Heartbeats(u64);

impl<S> Layer<S> for Narrator
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != "action" {
            return;
        }
        let mut f = Fields::default();
        attrs.record(&mut f);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(f);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(f) = span.extensions_mut().get_mut::<Fields>()
        {
            values.record(f);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let Some(out) = OUT.get() else { return };
        let mut f = Fields::default();
        event.record(&mut f);
        let message = f.get("message").unwrap_or_default();
        if !matches!(
            message,
            "step finished" | "keepalive stopped" | "action done"
        ) {
            return;
        }
        // The action span: who the line is about, and where heartbeats are counted.
        let Some(span) = ctx
            .event_scope(event)
            .and_then(|mut s| s.find(|s| s.extensions().get::<Fields>().is_some()))
        else {
            return;
        };
        let (instance, pipeline) = {
            let ext = span.extensions();
            let sf = ext.get::<Fields>();
            (
                sf.and_then(|s| s.get("instance")).unwrap_or("?").to_owned(),
                sf.and_then(|s| s.get("pipeline")).map(str::to_owned),
            )
        };
        match message {
            "keepalive stopped" => {
                let n: u64 = f
                    .get("heartbeats")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                let mut ext = span.extensions_mut();
                match ext.get_mut::<Heartbeats>() {
                    Some(h) => h.0 += n,
                    None => ext.insert(Heartbeats(n)),
                }
            }
            "step finished" => out.event(&instance, &step_line(&f)),
            _ => {
                let heartbeats = span.extensions().get::<Heartbeats>().map_or(0, |h| h.0);
                out.event(&instance, &done_line(&f, pipeline.as_deref(), heartbeats));
            }
        }
    }
}

/// `step healthy (probe) failed after 3.9s: not ready …`, `step notify (notify) ok, 12ms`.
fn step_line(f: &Fields) -> String {
    let name = f.get("step").unwrap_or("?");
    let kind = f.get("step_type").unwrap_or("?");
    let status = f.get("status").unwrap_or("?");
    let took = f
        .get("duration_ms")
        .and_then(|ms| ms.parse::<u64>().ok())
        .map(|ms| crate::human(std::time::Duration::from_millis(ms)))
        .unwrap_or_default();
    let mut line = match status {
        "succeeded" => format!("step {name} ({kind}) ok, {took}"),
        "reboot" => format!("step {name} ({kind}) asks for a reboot"),
        other => format!("step {name} ({kind}) {other} after {took}"),
    };
    if let Some(e) = f.get("error") {
        line.push_str(": ");
        line.push_str(&shorten(e, 160));
    }
    line
}

/// `done: CONTINUE by the handler (pipeline launch-gate, 1 heartbeat)`.
fn done_line(f: &Fields, pipeline: Option<&str>, heartbeats: u64) -> String {
    let outcome = f.get("outcome").unwrap_or("?");
    let what = match (f.get("result"), f.get("by")) {
        (Some(r), Some("handler")) if r != "none" => format!("{r} by the handler"),
        (_, Some("default-result")) => "held: the hook's DefaultResult applies".to_owned(),
        _ => outcome.replace('-', " "),
    };
    let mut detail = Vec::new();
    if let Some(p) = pipeline {
        detail.push(format!("pipeline {p}"));
    }
    detail.push(match heartbeats {
        1 => "1 heartbeat".to_owned(),
        n => format!("{n} heartbeats"),
    });
    format!("done: {what} ({})", detail.join(", "))
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let cut: String = s.chars().take(max).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&'static str, &str)]) -> Fields {
        Fields(pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect())
    }

    #[test]
    fn a_step_reads_as_its_name_type_status_and_time() {
        let ok = fields(&[
            ("step", "ship"),
            ("step_type", "s3-upload"),
            ("status", "succeeded"),
            ("duration_ms", "12"),
            ("error", ""),
        ]);
        assert_eq!(step_line(&ok), "step ship (s3-upload) ok, 12ms");
        let failed = fields(&[
            ("step", "healthy"),
            ("step_type", "probe"),
            ("status", "failed"),
            ("duration_ms", "3900"),
            ("error", "not ready"),
        ]);
        assert_eq!(
            step_line(&failed),
            "step healthy (probe) failed after 3.9s: not ready"
        );
    }

    #[test]
    fn an_action_reads_as_its_result_who_gave_it_pipeline_and_heartbeats() {
        let done = fields(&[
            ("outcome", "continue"),
            ("result", "CONTINUE"),
            ("by", "handler"),
        ]);
        assert_eq!(
            done_line(&done, Some("launch-gate"), 1),
            "done: CONTINUE by the handler (pipeline launch-gate, 1 heartbeat)"
        );
        let held = fields(&[
            ("outcome", "held"),
            ("result", "none"),
            ("by", "default-result"),
        ]);
        assert_eq!(
            done_line(&held, None, 3),
            "done: held: the hook's DefaultResult applies (3 heartbeats)"
        );
        let resolved = fields(&[
            ("outcome", "already-resolved"),
            ("result", "none"),
            ("by", "none"),
        ]);
        assert_eq!(
            done_line(&resolved, Some("p"), 0),
            "done: already resolved (pipeline p, 0 heartbeats)"
        );
    }
}
