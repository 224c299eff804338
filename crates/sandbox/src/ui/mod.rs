//! The web view and the timeline picture, on the sandbox's own port (documented in
//! `docs/sandbox.md`, "Web view").
//!
//! | method | path | what |
//! |---|---|---|
//! | GET | `/_sandbox/ui/` | the live web view (HTML; its script and style sheet next to it) |
//! | GET | `/_sandbox/timeline` | every instance's lane: states, actions, heartbeats, ends (JSON) |
//! | GET | `/_sandbox/timeline.svg` | the timeline picture |
//! | GET | `/_sandbox/report` | the self-contained HTML report (the picture and every action) |
//!
//! The assets are plain HTML, CSS and JavaScript compiled into the binary
//! (`include_str!`): no build step, no CDN, nothing fetched from outside, so the view works
//! offline. The page reads only the control API (`/_sandbox/state`, `/_sandbox/faults`,
//! `/_sandbox/timeline.svg`) once a second, and builds its DOM with `textContent`, never
//! from markup, so names and metadata (user input) cannot inject anything; the one piece
//! of markup it inserts, the picture, is escaped here ([`render::esc`]). Its
//! Content-Security-Policy allows only its own scripts and styles.

pub(crate) mod render;
#[cfg(test)]
mod tests;

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, Method, StatusCode};
use serde_json::{Value, json};

use crate::Sandbox;
use crate::clock::iso_millis;
use render::RegionLanes;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const ERRORS_JS: &str = include_str!("assets/errors.js");
const STYLE_CSS: &str = include_str!("assets/style.css");

/// The web view's policy: its own scripts, styles and requests only.
const UI_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Answers a GET under `/_sandbox/ui`, `/_sandbox/timeline…` or `/_sandbox/report`;
/// `None` for any other route (the caller answers 404).
pub(crate) fn handle(sb: &Sandbox, method: &Method, route: &str) -> Option<Response> {
    if method != Method::GET {
        return None;
    }
    let (body, ctype) = match route {
        "/ui" | "/ui/index.html" => (INDEX_HTML.to_owned(), "text/html; charset=utf-8"),
        "/ui/app.js" => (APP_JS.to_owned(), "text/javascript; charset=utf-8"),
        "/ui/errors.js" => (ERRORS_JS.to_owned(), "text/javascript; charset=utf-8"),
        "/ui/style.css" => (STYLE_CSS.to_owned(), "text/css; charset=utf-8"),
        "/timeline" => (timeline_json(sb).to_string(), "application/json"),
        "/timeline.svg" => {
            let (regions, now) = lanes(sb);
            (render::svg(&regions, now), "image/svg+xml")
        }
        "/report" => (
            sb.timeline_report("lifehook sandbox timeline"),
            "text/html; charset=utf-8",
        ),
        _ => return None,
    };
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = StatusCode::OK;
    let h = r.headers_mut();
    h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    h.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    if route.starts_with("/ui") {
        h.insert(
            http::header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(UI_CSP),
        );
    }
    Some(r)
}

/// Every region's lanes, and the virtual time they were read at.
fn lanes(sb: &Sandbox) -> (Vec<RegionLanes>, crate::clock::Millis) {
    let w = sb.lock();
    let regions = w
        .regions
        .iter()
        .map(|(name, r)| RegionLanes {
            region: name.clone(),
            lanes: r.autoscaling.timeline.lanes(),
            dropped_events: r.autoscaling.timeline.dropped(),
        })
        .filter(|r| !r.lanes.is_empty() || r.dropped_events > 0)
        .collect();
    (regions, w.now)
}

/// `GET /_sandbox/timeline`.
fn timeline_json(sb: &Sandbox) -> Value {
    let (regions, now) = lanes(sb);
    let regions: serde_json::Map<String, Value> = regions
        .iter()
        .map(|r| {
            (
                r.region.clone(),
                json!({
                    "dropped_events": r.dropped_events,
                    "instances": r.lanes.iter().map(|l| l.to_json()).collect::<Vec<_>>(),
                }),
            )
        })
        .collect();
    json!({"now": iso_millis(now), "now_ms": now, "regions": regions})
}

impl Sandbox {
    /// The current session's timeline as a self-contained HTML page (the picture and a
    /// table of every lifecycle action with its result and who gave it), titled `title`.
    /// `lifehook demo --report` writes it; `GET /_sandbox/report` serves it.
    pub fn timeline_report(&self, title: &str) -> String {
        let (regions, now) = lanes(self);
        render::report_html(title, &regions, now)
    }
}
