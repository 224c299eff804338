//! Prometheus metrics and the loopback admin server (`/metrics`, `/healthz`).
//!
//! Labels are bounded: transition, outcome, step type and status, reason — never an
//! instance, token or group (a per-instance label grows without bound; see
//! `prior-art.md` on aws-node-termination-handler's `actions_node`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The default admin address: loopback only.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9464";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    /// `launching` or `terminating`.
    pub transition: &'static str,
    /// `continue`, `abandon`, `already-resolved`, `held`, `handed-back`, `set-aside`, `failed`.
    pub outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StepLabels {
    pub step_type: &'static str,
    /// `succeeded`, `failed`, `timed-out`, `deadline`, `cancelled`, `reboot`, `skipped`.
    pub status: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

fn duration_histogram() -> Histogram {
    // 10 ms .. ~11 h.
    Histogram::new(exponential_buckets(0.01, 4.0, 12))
}

/// Every metric lifehook exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub actions: Family<ActionLabels, Counter>,
    pub action_duration: Family<ActionLabels, Histogram, fn() -> Histogram>,
    pub step_duration: Family<StepLabels, Histogram, fn() -> Histogram>,
    pub heartbeats: Counter,
    pub heartbeat_failures: Counter,
    pub deadline_misses: Counter,
    pub set_aside: Family<ReasonLabels, Counter>,
    pub in_flight: Gauge,
    ready: AtomicBool,
}

impl Metrics {
    /// Records one finished step: its duration by type and status, and a deadline miss
    /// when the action's deadline stopped it. Returns the status label.
    pub fn observe_step(&self, r: &lifehook_core::pipeline::StepReport) -> &'static str {
        use lifehook_core::pipeline::StepStatus;
        if r.status == StepStatus::DeadlineReached {
            self.deadline_misses.inc();
        }
        let status = r.status.as_str();
        self.step_duration
            .get_or_create(&StepLabels {
                step_type: r.step_type,
                status,
            })
            .observe(r.duration.as_secs_f64());
        status
    }

    pub fn new() -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("lifehook");
        let actions = Family::<ActionLabels, Counter>::default();
        registry.register(
            "actions",
            "Lifecycle actions handled, by transition and outcome",
            actions.clone(),
        );
        let action_duration =
            Family::<ActionLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                duration_histogram,
            );
        registry.register(
            "action_duration_seconds",
            "Time from receiving a lifecycle action to its outcome",
            action_duration.clone(),
        );
        let step_duration =
            Family::<StepLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                duration_histogram,
            );
        registry.register(
            "step_duration_seconds",
            "Duration of pipeline steps",
            step_duration.clone(),
        );
        let heartbeats = Counter::default();
        registry.register(
            "heartbeats",
            "RecordLifecycleActionHeartbeat calls that succeeded",
            heartbeats.clone(),
        );
        let heartbeat_failures = Counter::default();
        registry.register(
            "heartbeat_failures",
            "Heartbeats that failed",
            heartbeat_failures.clone(),
        );
        let deadline_misses = Counter::default();
        registry.register(
            "deadline_misses",
            "Actions whose pipeline reached the global deadline before finishing",
            deadline_misses.clone(),
        );
        let set_aside = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "messages_set_aside",
            "Messages set aside (dead-letter queue or deleted)",
            set_aside.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "actions_in_flight",
            "Lifecycle actions being worked on",
            in_flight.clone(),
        );
        Arc::new(Metrics {
            registry,
            actions,
            action_duration,
            step_duration,
            heartbeats,
            heartbeat_failures,
            deadline_misses,
            set_aside,
            in_flight,
            ready: AtomicBool::new(false),
        })
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut s = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut s, &self.registry);
        s
    }

    /// Marks the process ready (`/healthz` answers 200 from then on).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }
}

/// Serves `/metrics` and `/healthz` on `addr` until the returned task is aborted.
pub async fn serve_admin(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    use axum::Router;
    use axum::http::{StatusCode, header};
    use axum::routing::get;

    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let m1 = metrics.clone();
    let app = Router::new()
        .route(
            "/metrics",
            get(move || {
                let m = m1.clone();
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        m.encode(),
                    )
                }
            }),
        )
        .route(
            "/healthz",
            get(move || {
                let m = metrics.clone();
                async move {
                    if m.is_ready() {
                        (StatusCode::OK, "ok\n")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "starting\n")
                    }
                }
            }),
        );
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "admin server stopped");
        }
    });
    Ok((local, task))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_with_help_and_bounded_labels() {
        let m = Metrics::new();
        m.actions
            .get_or_create(&ActionLabels {
                transition: "launching",
                outcome: "continue",
            })
            .inc();
        m.heartbeats.inc();
        let text = m.encode();
        assert!(
            text.contains("# HELP lifehook_actions Lifecycle actions handled"),
            "{text}"
        );
        assert!(
            text.contains(
                "lifehook_actions_total{transition=\"launching\",outcome=\"continue\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("lifehook_heartbeats_total 1"), "{text}");
    }
}
