//! The demo's stand-ins for the outside world, on one loopback HTTP server:
//!
//! - a Eureka registry: `PUT /eureka/apps/{app}/{instance}/status?value=…` and
//!   `DELETE /eureka/apps/{app}/{instance}` (answers 200 and records the call);
//! - a chat webhook: `POST /chat/…` (records the JSON body);
//! - an event recorder: `POST /events` (records the JSON body);
//! - the instances' health endpoints: `GET /health/{instance}`, 503 while the instance
//!   "boots", 200 once it is healthy (or never, for an instance planned broken).
//!
//! Every recorded call also notes which instances were waiting on a lifecycle hook at that
//! moment (read from the sandbox), so that the demo can check that the work happened
//! before the action was completed.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};

use super::out::Out;
use super::watch::Watch;

/// One recorded call.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub method: String,
    /// Path and query.
    pub target: String,
    pub body: String,
    /// Instances in `Pending:Wait` or `Terminating:Wait` when the call arrived.
    pub waiting: Vec<String>,
}

/// How an instance's health endpoint behaves.
#[derive(Debug, Clone)]
pub(crate) struct Health {
    pub first_check: Instant,
    /// `None`: never healthy.
    pub healthy_after: Option<Duration>,
    pub checks: u32,
    pub healthy_at: Option<Instant>,
}

#[derive(Debug)]
struct Inner {
    out: Out,
    watch: Watch,
    sandbox: String,
    http: reqwest::Client,
    calls: Mutex<Vec<Call>>,
    health: Mutex<BTreeMap<String, Health>>,
    /// Plans for the next instances seen for the first time (front first).
    plans: Mutex<VecDeque<Option<Duration>>>,
    default_delay: Duration,
}

/// The running stub server.
#[derive(Debug, Clone)]
pub(crate) struct Stub {
    pub base: String,
    inner: Arc<Inner>,
}

impl Stub {
    pub(crate) async fn start(
        out: Out,
        sandbox_endpoint: String,
        watch: Watch,
    ) -> std::io::Result<Stub> {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Inner {
            out,
            watch,
            sandbox: sandbox_endpoint,
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .map_err(std::io::Error::other)?,
            calls: Mutex::new(Vec::new()),
            health: Mutex::new(BTreeMap::new()),
            plans: Mutex::new(VecDeque::new()),
            default_delay: Duration::from_millis(800),
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(inner.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Stub {
            base: format!("http://{addr}"),
            inner,
        })
    }

    /// The next instance seen for the first time becomes healthy `after` its first check
    /// (`None`: never).
    pub(crate) fn plan_next(&self, after: Option<Duration>) {
        lock(&self.inner.plans).push_back(after);
    }

    pub(crate) fn calls(&self) -> Vec<Call> {
        lock(&self.inner.calls).clone()
    }

    pub(crate) fn health(&self, instance: &str) -> Option<Health> {
        lock(&self.inner.health).get(instance).cloned()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn handle(
    State(st): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    body: String,
) -> (StatusCode, String) {
    let path = uri.path().to_owned();
    let target = uri
        .path_and_query()
        .map_or(path.clone(), |p| p.as_str().to_owned());
    if method == Method::GET
        && let Some(id) = path.strip_prefix("/health/")
    {
        return health(&st, id).await;
    }
    let waiting = waiting_instances(&st).await;
    let (who, status) = if path.starts_with("/eureka/") {
        ("registry", StatusCode::OK)
    } else if path.starts_with("/chat/") {
        ("chat", StatusCode::OK)
    } else if path == "/events" {
        ("recorder", StatusCode::NO_CONTENT)
    } else {
        ("stub", StatusCode::NOT_FOUND)
    };
    match who {
        "registry" => st.out.event(
            who,
            &format!(
                "{method} {}  → {}",
                target.strip_prefix("/eureka/apps/").unwrap_or(&target),
                status.as_u16()
            ),
        ),
        "chat" => {
            let text = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["text"].as_str().map(str::to_owned))
                .unwrap_or_else(|| body.clone());
            st.out.event(who, &format!("message posted: \"{text}\""));
        }
        "recorder" => {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            st.out.event(
                "hook",
                &format!(
                    "terminate pipeline ran for {} (notify step)",
                    v["instance_id"].as_str().unwrap_or("?")
                ),
            );
        }
        _ => {}
    }
    lock(&st.calls).push(Call {
        method: method.to_string(),
        target,
        body,
        waiting,
    });
    (status, String::new())
}

async fn health(st: &Inner, id: &str) -> (StatusCode, String) {
    let first = !lock(&st.health).contains_key(id);
    if first {
        waiting_instances(st).await;
    }
    let now = Instant::now();
    let mut map = lock(&st.health);
    let h = map.entry(id.to_owned()).or_insert_with(|| Health {
        first_check: now,
        healthy_after: lock(&st.plans)
            .pop_front()
            .unwrap_or(Some(st.default_delay)),
        checks: 0,
        healthy_at: None,
    });
    h.checks += 1;
    let healthy = h
        .healthy_after
        .is_some_and(|d| now.duration_since(h.first_check) >= d);
    if healthy {
        if h.healthy_at.is_none() {
            h.healthy_at = Some(now);
            st.out.event(
                "health",
                &format!("GET /health/{id}  → 200 ready (check {})", h.checks),
            );
        }
        (StatusCode::OK, "ok".into())
    } else {
        if h.checks == 1 {
            let note = if h.healthy_after.is_some() {
                "booting"
            } else {
                "this one will never be healthy"
            };
            st.out.event(
                "health",
                &format!("GET /health/{id}  → 503 {note} (check 1)"),
            );
        }
        (StatusCode::SERVICE_UNAVAILABLE, "booting".into())
    }
}

/// Instances waiting on a hook right now, from the sandbox's state.
async fn waiting_instances(st: &Inner) -> Vec<String> {
    let Ok(r) = st
        .http
        .get(format!("{}/_sandbox/state", st.sandbox))
        .send()
        .await
    else {
        return Vec::new();
    };
    let v: serde_json::Value = r.json().await.unwrap_or_default();
    st.watch.ingest(&v);
    let mut out = Vec::new();
    if let Some(regions) = v["regions"].as_object() {
        for r in regions.values() {
            for i in r["instances"].as_array().into_iter().flatten() {
                let s = i["lifecycle_state"].as_str().unwrap_or_default();
                if s.ends_with(":Wait") {
                    out.push(i["id"].as_str().unwrap_or_default().to_owned());
                }
            }
        }
    }
    out
}
