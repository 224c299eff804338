//! Watches the embedded sandbox (`GET /_sandbox/state`) and prints what happens to the
//! instances of the demo's groups: state changes, lifecycle waits with their time left,
//! heartbeats. Keeps each instance's history for the demo's checks.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::out::Out;

/// What the demo knows of one instance.
#[derive(Debug, Clone, Default)]
pub(crate) struct Inst {
    pub group: String,
    pub state: String,
    /// Every lifecycle state seen, in order.
    pub history: Vec<String>,
    /// When the current wait began (real time), if waiting.
    pub wait_since: Option<Instant>,
    /// Completed waits: (state, how long it lasted).
    pub waits: Vec<(String, Duration)>,
    pub heartbeats: u32,
    /// Seconds left before the open lifecycle action times out, if one is open.
    pub seconds_left: Option<f64>,
    hb_deadline: Option<String>,
}

impl Inst {
    pub(crate) fn saw(&self, state: &str) -> bool {
        self.history.iter().any(|s| s == state)
    }
}

#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    pub instances: BTreeMap<String, Inst>,
    /// Instance refresh id → status.
    pub refreshes: BTreeMap<String, String>,
    /// Instances in the order they were first seen.
    pub order: Vec<String>,
    /// The sandbox time of the state last applied (older answers are ignored).
    now_ms: u64,
}

impl Snapshot {
    /// Instances of `group` in `state`.
    pub(crate) fn in_state(&self, group: &str, state: &str) -> Vec<String> {
        self.order
            .iter()
            .filter(|id| {
                self.instances
                    .get(*id)
                    .is_some_and(|i| i.group == group && i.state == state)
            })
            .cloned()
            .collect()
    }

    pub(crate) fn get(&self, id: &str) -> Option<&Inst> {
        self.instances.get(id)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Watch {
    out: Out,
    snap: Arc<Mutex<Snapshot>>,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl Watch {
    pub(crate) fn start(out: Out, endpoint: String) -> Watch {
        let snap = Arc::new(Mutex::new(Snapshot::default()));
        let s = snap.clone();
        let task = tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .no_proxy()
                .build()
                .unwrap_or_default();
            loop {
                if let Ok(r) = http.get(format!("{endpoint}/_sandbox/state")).send().await
                    && let Ok(v) = r.json::<serde_json::Value>().await
                {
                    update(&out, &s, &v);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        Watch {
            out,
            snap,
            task: Arc::new(task),
        }
    }

    /// Applies a state read elsewhere (the stub reads it when a call arrives, so that the
    /// state changes that led to the call are printed before it).
    pub(crate) fn ingest(&self, v: &serde_json::Value) {
        update(&self.out, &self.snap, v);
    }

    pub(crate) fn stop(&self) {
        self.task.abort();
    }

    pub(crate) fn with<T>(&self, f: impl FnOnce(&Snapshot) -> T) -> T {
        f(&self.snap.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Waits until `f` returns `Some`, for at most `limit` of real time.
    pub(crate) async fn until<T>(
        &self,
        limit: Duration,
        mut f: impl FnMut(&Snapshot) -> Option<T>,
    ) -> Option<T> {
        let start = Instant::now();
        loop {
            if let Some(v) = self.with(&mut f) {
                return Some(v);
            }
            if start.elapsed() > limit {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    }
}

fn secs(v: &serde_json::Value) -> String {
    format!("{:.0}s", v.as_f64().unwrap_or_default())
}

fn update(out: &Out, snap: &Mutex<Snapshot>, v: &serde_json::Value) {
    let region = &v["regions"]["us-east-1"];
    let mut snap = snap.lock().unwrap_or_else(|e| e.into_inner());
    let now_ms = v["now_ms"].as_u64().unwrap_or_default();
    if now_ms < snap.now_ms {
        return;
    }
    snap.now_ms = now_ms;
    let now = Instant::now();
    let hooks: BTreeMap<(String, String), (String, String)> = region["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| {
            let gname = g["name"].as_str().unwrap_or_default().to_owned();
            g["hooks"].as_array().into_iter().flatten().map(move |h| {
                (
                    (
                        gname.clone(),
                        h["name"].as_str().unwrap_or_default().to_owned(),
                    ),
                    (
                        h["default_result"].as_str().unwrap_or_default().to_owned(),
                        h["heartbeat_timeout"].to_string(),
                    ),
                )
            })
        })
        .collect();
    let actions: BTreeMap<String, &serde_json::Value> = region["actions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| (a["instance"].as_str().unwrap_or_default().to_owned(), a))
        .collect();
    for i in region["instances"].as_array().into_iter().flatten() {
        let id = i["id"].as_str().unwrap_or_default().to_owned();
        let group = i["group"].as_str().unwrap_or_default().to_owned();
        let state = i["lifecycle_state"].as_str().unwrap_or_default().to_owned();
        if !snap.instances.contains_key(&id) {
            snap.order.push(id.clone());
        }
        let inst = snap.instances.entry(id.clone()).or_insert_with(|| Inst {
            group: group.clone(),
            ..Default::default()
        });
        inst.seconds_left = actions.get(&id).and_then(|a| a["seconds_left"].as_f64());
        if inst.state != state {
            let mut line = if inst.state.is_empty() {
                format!("launched in {group}: {state}")
            } else {
                format!("{} → {state}", inst.state)
            };
            if let Some(since) = inst.wait_since.take() {
                let took = now.duration_since(since);
                line.push_str(&format!("  (waited {})", super::human(took)));
                inst.waits.push((inst.state.clone(), took));
            }
            if state.ends_with(":Wait") {
                inst.wait_since = Some(now);
                if let Some(a) = actions.get(&id) {
                    let hook = a["hook"].as_str().unwrap_or_default();
                    let (default, hb) = hooks
                        .get(&(group.clone(), hook.to_owned()))
                        .cloned()
                        .unwrap_or_default();
                    line.push_str(&format!(
                        " (hook {hook}, heartbeat timeout {hb}s: {} left, then {default})",
                        secs(&a["seconds_left"])
                    ));
                    inst.hb_deadline = a["heartbeat_deadline"].as_str().map(str::to_owned);
                }
            }
            inst.history.push(state.clone());
            inst.state = state.clone();
            out.event(&id, &line);
        } else if let Some(a) = actions.get(&id) {
            let d = a["heartbeat_deadline"].as_str().map(str::to_owned);
            if inst.hb_deadline.is_some() && d.is_some() && d > inst.hb_deadline {
                inst.heartbeats += 1;
                out.event(
                    &id,
                    &format!(
                        "heartbeat recorded: {} left again",
                        secs(&a["seconds_left"])
                    ),
                );
            }
            if d.is_some() {
                inst.hb_deadline = d;
            }
        }
    }
    for r in region["instance_refreshes"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let id = r["id"].as_str().unwrap_or_default().to_owned();
        let status = r["status"].as_str().unwrap_or_default().to_owned();
        if snap.refreshes.get(&id) != Some(&status) {
            out.event(
                "refresh",
                &format!(
                    "instance refresh {status} ({}% complete)",
                    r["percentage_complete"]
                ),
            );
            snap.refreshes.insert(id, status);
        }
    }
}
