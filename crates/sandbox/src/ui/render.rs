//! The timeline picture: SVG drawn from the recorded lanes ([`crate::autoscaling::timeline`]),
//! and the self-contained HTML report around it.
//!
//! One panel per group, each on its own time axis (a group that finished long ago is not
//! squeezed by one that runs now). One lane per instance: a bar per lifecycle state, a tick
//! per heartbeat, a mark per action's end — its colour is the result (CONTINUE green,
//! ABANDON red, none grey), its shape who gave it (a circle: a handler's
//! `CompleteLifecycleAction`; a diamond: the hook's DefaultResult on a timeout; a square:
//! the hook was deleted; a cross: cancelled) — and a dashed line where a deadline fell or
//! will fall. Colours are presentation attributes, not a style sheet, so the picture looks
//! the same inline in the web view (whose Content-Security-Policy allows no inline
//! styles), in the report and on its own. Every name is escaped: group names and metadata
//! are user input.

use std::fmt::Write as _;

use lifehook_model::{LifecycleResult, LifecycleState as S};

use crate::autoscaling::timeline::{ActionSpan, By, Lane};
use crate::clock::{Millis, iso_millis};

/// At most this many instances are drawn (the most recent ones); the picture says how
/// many were left out.
pub(crate) const MAX_LANES_DRAWN: usize = 300;

const LABEL_W: f64 = 190.0;
const PLOT_W: f64 = 820.0;
const WIDTH: f64 = LABEL_W + PLOT_W + 20.0;
const ROW_H: f64 = 22.0;
const BAR_H: f64 = 12.0;
const PANEL_HEAD: f64 = 40.0;
const LEGEND_H: f64 = 58.0;

/// The lanes of one region, with how many events its history dropped.
#[derive(Debug)]
pub(crate) struct RegionLanes {
    pub(crate) region: String,
    pub(crate) lanes: Vec<Lane>,
    pub(crate) dropped_events: u64,
}

/// Escapes text for HTML and SVG (element content and quoted attributes).
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The fill of a state's bar.
pub(crate) fn state_colour(s: S) -> &'static str {
    match s {
        S::Pending => "#cbd5e1",
        S::PendingWait => "#f59e0b",
        S::PendingProceed => "#bef264",
        S::InService => "#22c55e",
        S::Standby => "#60a5fa",
        S::Terminating => "#fca5a5",
        S::TerminatingWait => "#dc2626",
        S::TerminatingProceed => "#fb7185",
        S::TerminatingRetained => "#a855f7",
        S::Terminated | S::Detached => "#64748b",
        _ => "#e2e8f0",
    }
}

fn result_colour(r: Option<LifecycleResult>) -> &'static str {
    match r {
        Some(LifecycleResult::Continue) => "#15803d",
        Some(LifecycleResult::Abandon) => "#b91c1c",
        None => "#94a3b8",
    }
}

/// How a span of virtual time reads on an axis: `+45s`, `+2m30s`, `+1h05m`.
fn rel(ms: Millis) -> String {
    let s = ms / 1000;
    if s < 60 {
        if ms.is_multiple_of(1000) || s >= 10 {
            format!("+{s}s")
        } else {
            format!("+{:.1}s", ms as f64 / 1000.0)
        }
    } else if s < 3600 {
        format!("+{}m{:02}s", s / 60, s % 60)
    } else {
        format!("+{}h{:02}m", s / 3600, (s % 3600) / 60)
    }
}

/// A tick step (ms) giving at most about eight ticks over `span`.
fn tick_step(span: Millis) -> Millis {
    const STEPS: [Millis; 16] = [
        1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21_600, 43_200,
    ];
    STEPS
        .iter()
        .map(|s| s * 1000)
        .find(|s| span / s <= 8)
        .unwrap_or(86_400_000)
}

/// One group's lanes and time axis.
struct Panel<'a> {
    region: &'a str,
    group: &'a str,
    lanes: Vec<&'a Lane>,
    t0: Millis,
    t1: Millis,
}

impl Panel<'_> {
    fn x(&self, t: Millis) -> f64 {
        let span = (self.t1 - self.t0).max(1) as f64;
        LABEL_W + (t.clamp(self.t0, self.t1) - self.t0) as f64 / span * PLOT_W
    }

    fn height(&self) -> f64 {
        PANEL_HEAD + self.lanes.len() as f64 * ROW_H + 6.0
    }
}

fn panels<'a>(regions: &'a [RegionLanes], now: Millis) -> (Vec<Panel<'a>>, usize) {
    let total: usize = regions.iter().map(|r| r.lanes.len()).sum();
    let mut skip = total.saturating_sub(MAX_LANES_DRAWN);
    let left_out = skip;
    let mut panels: Vec<Panel<'a>> = Vec::new();
    for r in regions {
        for lane in &r.lanes {
            if skip > 0 {
                skip -= 1;
                continue;
            }
            match panels
                .iter_mut()
                .find(|p| p.region == r.region && p.group == lane.group)
            {
                Some(p) => p.lanes.push(lane),
                None => panels.push(Panel {
                    region: &r.region,
                    group: &lane.group,
                    lanes: vec![lane],
                    t0: 0,
                    t1: 0,
                }),
            }
        }
    }
    for p in &mut panels {
        let (t0, t1) = axis(&p.lanes, now);
        p.t0 = t0;
        p.t1 = t1;
    }
    (panels, left_out)
}

/// The time axis of a group: from its first event to its last — or, while an action is
/// open, to now and the open actions' heartbeat deadlines, so a wait grows live and its
/// deadline shows ahead of it. At least ten seconds wide.
fn axis(lanes: &[&Lane], now: Millis) -> (Millis, Millis) {
    let mut t0 = Millis::MAX;
    let mut t1 = 0;
    for l in lanes {
        for s in &l.states {
            t0 = t0.min(s.from);
            t1 = t1.max(s.to.unwrap_or(s.from));
        }
        for a in &l.actions {
            t0 = t0.min(a.started);
            t1 = t1.max(a.heartbeats.last().copied().unwrap_or(a.started));
            match &a.end {
                Some(e) => t1 = t1.max(e.at),
                None => t1 = t1.max(now).max(a.heartbeat_deadline.min(a.global_deadline)),
            }
        }
    }
    if t0 == Millis::MAX {
        return (now, now + 10_000);
    }
    // A little room after the last event, so its mark is not cut in half.
    let t1 = t1.max(t0 + 10_000);
    (t0, t1 + (t1 - t0) / 50)
}

/// The timeline picture of every region's lanes, as one SVG document.
pub(crate) fn svg(regions: &[RegionLanes], now: Millis) -> String {
    let (panels, left_out) = panels(regions, now);
    let dropped: u64 = regions.iter().map(|r| r.dropped_events).sum();
    let mut notes = Vec::new();
    if left_out > 0 {
        notes.push(format!(
            "{left_out} earlier instance(s) not drawn (at most {MAX_LANES_DRAWN})"
        ));
    }
    if dropped > 0 {
        notes.push(format!(
            "{dropped} oldest event(s) forgotten (the sandbox keeps the last {} per region)",
            crate::autoscaling::timeline::MAX_TIMELINE_EVENTS
        ));
    }
    let notes_h = notes.len() as f64 * 16.0;
    let body_h: f64 = panels.iter().map(Panel::height).sum();
    let empty_h = if panels.is_empty() { 30.0 } else { 0.0 };
    let height = LEGEND_H + notes_h + body_h + empty_h + 10.0;
    let mut o = String::new();
    let _ = write!(
        o,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="system-ui, sans-serif" font-size="11" role="img" aria-label="lifecycle timeline"><rect width="100%" height="100%" fill="#ffffff"/>"##
    );
    legend(&mut o);
    let mut y = LEGEND_H;
    for n in &notes {
        let _ = write!(
            o,
            r##"<text x="8" y="{}" fill="#b45309">{}</text>"##,
            y + 12.0,
            esc(n)
        );
        y += 16.0;
    }
    if panels.is_empty() {
        let _ = write!(
            o,
            r##"<text x="8" y="{}" fill="#475569">No instance yet: create an Auto Scaling group.</text>"##,
            y + 18.0
        );
    }
    for p in &panels {
        panel(&mut o, p, y, now);
        y += p.height();
    }
    o.push_str("</svg>");
    o
}

fn legend(o: &mut String) {
    let states = [
        S::Pending,
        S::PendingWait,
        S::InService,
        S::Standby,
        S::Terminating,
        S::TerminatingWait,
        S::TerminatingRetained,
        S::Terminated,
    ];
    let mut x = 8.0;
    for s in states {
        let _ = write!(
            o,
            r##"<rect x="{x}" y="8" width="12" height="10" fill="{}"/><text x="{}" y="17">{}</text>"##,
            state_colour(s),
            x + 16.0,
            s.as_str()
        );
        x += 16.0 + s.as_str().len() as f64 * 6.2 + 14.0;
    }
    let y = 36.0;
    let mut x = 8.0;
    let items: [(&str, &str); 6] = [
        ("heartbeat", ""),
        ("CONTINUE by a handler", "continue-handler"),
        ("ABANDON by a handler", "abandon-handler"),
        ("DefaultResult on timeout (colour: result)", "default"),
        ("cancelled", "cancelled"),
        ("deadline", "deadline"),
    ];
    for (label, kind) in items {
        match kind {
            "" => {
                let _ = write!(
                    o,
                    r##"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#1d4ed8" stroke-width="2"/>"##,
                    x + 5.0,
                    y - 6.0,
                    x + 5.0,
                    y + 6.0
                );
            }
            "continue-handler" => mark(o, x + 5.0, y, By::Handler, Some(LifecycleResult::Continue)),
            "abandon-handler" => mark(o, x + 5.0, y, By::Handler, Some(LifecycleResult::Abandon)),
            "default" => mark(
                o,
                x + 5.0,
                y,
                By::DefaultResult,
                Some(LifecycleResult::Continue),
            ),
            "cancelled" => mark(o, x + 5.0, y, By::Cancelled, None),
            _ => {
                let _ = write!(
                    o,
                    r##"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#7c3aed" stroke-width="1.5" stroke-dasharray="3,2"/>"##,
                    x + 5.0,
                    y - 7.0,
                    x + 5.0,
                    y + 7.0
                );
            }
        }
        let _ = write!(
            o,
            r##"<text x="{}" y="{}">{label}</text>"##,
            x + 14.0,
            y + 4.0
        );
        x += 14.0 + label.len() as f64 * 6.0 + 18.0;
    }
}

/// An action's end mark: colour by result, shape by who gave it.
fn mark(o: &mut String, x: f64, y: f64, by: By, result: Option<LifecycleResult>) {
    let fill = result_colour(result);
    let _ = match by {
        By::Handler => write!(
            o,
            r##"<circle cx="{x}" cy="{y}" r="5" fill="{fill}" stroke="#ffffff" stroke-width="1"/>"##
        ),
        By::DefaultResult => write!(
            o,
            r##"<path d="M{x} {} L{} {y} L{x} {} L{} {y} Z" fill="{fill}" stroke="#0f172a" stroke-width="1.5"/>"##,
            y - 7.0,
            x + 7.0,
            y + 7.0,
            x - 7.0
        ),
        By::HookDeleted => write!(
            o,
            r##"<rect x="{}" y="{}" width="9" height="9" fill="{fill}" stroke="#0f172a"/>"##,
            x - 4.5,
            y - 4.5
        ),
        By::Cancelled => write!(
            o,
            r##"<path d="M{} {} L{} {} M{} {} L{} {}" stroke="{fill}" stroke-width="2"/>"##,
            x - 4.0,
            y - 4.0,
            x + 4.0,
            y + 4.0,
            x - 4.0,
            y + 4.0,
            x + 4.0,
            y - 4.0
        ),
    };
}

fn panel(o: &mut String, p: &Panel<'_>, y0: f64, now: Millis) {
    let _ = write!(
        o,
        r##"<g class="group" data-group="{}"><text x="8" y="{}" font-size="13" font-weight="600">{} <tspan font-weight="400" fill="#475569">{} · from {}</tspan></text>"##,
        esc(p.group),
        y0 + 16.0,
        esc(p.group),
        esc(p.region),
        iso_millis(p.t0)
    );
    // The axis.
    let axis_y = y0 + PANEL_HEAD - 6.0;
    let bottom = y0 + p.height() - 6.0;
    let step = tick_step(p.t1 - p.t0);
    let mut t = 0;
    while p.t0 + t <= p.t1 {
        let x = p.x(p.t0 + t);
        let _ = write!(
            o,
            r##"<line x1="{x:.1}" y1="{axis_y}" x2="{x:.1}" y2="{bottom}" stroke="#e2e8f0"/><text x="{x:.1}" y="{}" text-anchor="middle" fill="#64748b">{}</text>"##,
            axis_y - 3.0,
            rel(t)
        );
        t += step;
    }
    if now >= p.t0 && now <= p.t1 {
        let x = p.x(now);
        let _ = write!(
            o,
            r##"<line x1="{x:.1}" y1="{axis_y}" x2="{x:.1}" y2="{bottom}" stroke="#0ea5e9" stroke-width="1"><title>now {}</title></line>"##,
            iso_millis(now)
        );
    }
    for (k, lane) in p.lanes.iter().enumerate() {
        lane_svg(o, p, lane, axis_y + 4.0 + k as f64 * ROW_H, now);
    }
    o.push_str("</g>");
}

fn lane_svg(o: &mut String, p: &Panel<'_>, lane: &Lane, y: f64, now: Millis) {
    let mid = y + ROW_H / 2.0;
    let _ = write!(
        o,
        r##"<g class="lane" data-instance="{0}"><text x="8" y="{1}" font-family="ui-monospace, monospace">{0}</text>"##,
        esc(&lane.instance),
        mid + 4.0
    );
    for s in &lane.states {
        let to = s.to.unwrap_or(p.t1);
        let (x0, x1) = (p.x(s.from), p.x(to));
        let title = format!(
            "{} {}: {} from {} to {}",
            lane.instance,
            lane.group,
            s.state.as_str(),
            rel(s.from - p.t0),
            s.to.map_or_else(|| "now".to_owned(), |t| rel(t - p.t0))
        );
        if matches!(s.state, S::Terminated | S::Detached) {
            let _ = write!(
                o,
                r##"<rect x="{x0:.1}" y="{:.1}" width="{:.1}" height="2" fill="{}"><title>{}</title></rect>"##,
                mid - 1.0,
                (x1 - x0).max(0.5),
                state_colour(s.state),
                esc(&title)
            );
            continue;
        }
        let _ = write!(
            o,
            r##"<rect class="state" data-state="{}" x="{x0:.1}" y="{:.1}" width="{:.1}" height="{BAR_H}" fill="{}"><title>{}</title></rect>"##,
            s.state.as_str(),
            mid - BAR_H / 2.0,
            (x1 - x0).max(1.0),
            state_colour(s.state),
            esc(&title)
        );
        if x1 - x0 > s.state.as_str().len() as f64 * 5.6 + 8.0 {
            let dark = matches!(s.state, S::TerminatingWait | S::TerminatingRetained);
            let _ = write!(
                o,
                r##"<text x="{:.1}" y="{:.1}" font-size="9" fill="{}" pointer-events="none">{}</text>"##,
                x0 + 3.0,
                mid + 3.0,
                if dark { "#ffffff" } else { "#1e293b" },
                s.state.as_str()
            );
        }
    }
    for a in &lane.actions {
        action_svg(o, p, lane, a, mid, now);
    }
    o.push_str("</g>");
}

fn deadline_line(o: &mut String, x: f64, mid: f64, colour: &str, title: &str) {
    let _ = write!(
        o,
        r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="{colour}" stroke-width="1.5" stroke-dasharray="3,2"><title>{}</title></line>"##,
        mid - 9.0,
        mid + 9.0,
        esc(title)
    );
}

fn action_svg(o: &mut String, p: &Panel<'_>, lane: &Lane, a: &ActionSpan, mid: f64, now: Millis) {
    for hb in &a.heartbeats {
        let x = p.x(*hb);
        let _ = write!(
            o,
            r##"<line class="heartbeat" x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#1d4ed8" stroke-width="2"><title>heartbeat for {} at {}</title></line>"##,
            mid - 8.0,
            mid - 2.0,
            esc(&a.hook),
            rel(hb - p.t0)
        );
    }
    match &a.end {
        Some(e) => {
            // A timeout fell where its deadline was: draw the deadline there.
            if e.by == By::DefaultResult {
                let which = if e.how == "global-timeout" {
                    "global"
                } else {
                    "heartbeat"
                };
                deadline_line(
                    o,
                    p.x(e.at),
                    mid,
                    "#7c3aed",
                    &format!(
                        "{which} deadline of {} fell at {}",
                        a.hook,
                        rel(e.at - p.t0)
                    ),
                );
            }
            let result = e.result.map_or("no result", LifecycleResult::as_str);
            let _ = write!(
                o,
                r##"<g class="end" data-token="{}" data-result="{}" data-by="{}"><title>{} {}: {} by {} ({}) at {}, {} heartbeat(s)</title>"##,
                esc(&a.token),
                result,
                e.by.as_str(),
                esc(&lane.instance),
                esc(&a.hook),
                result,
                e.by.as_str(),
                e.how,
                rel(e.at - p.t0),
                a.heartbeats.len()
            );
            mark(o, p.x(e.at), mid, e.by, e.result);
            o.push_str("</g>");
        }
        None => {
            for (which, at) in [
                ("heartbeat", a.heartbeat_deadline),
                ("global", a.global_deadline),
            ] {
                if at <= p.t1 {
                    let left = at.saturating_sub(now);
                    deadline_line(
                        o,
                        p.x(at),
                        mid,
                        "#f97316",
                        &format!(
                            "{which} deadline of {} at {} ({} left)",
                            a.hook,
                            rel(at - p.t0),
                            rel(left).trim_start_matches('+')
                        ),
                    );
                }
            }
        }
    }
}

/// The self-contained HTML report: the picture and a table of every action with its
/// result and who gave it. No script, no external URL; its Content-Security-Policy allows
/// nothing but its own inline style.
pub(crate) fn report_html(title: &str, regions: &[RegionLanes], now: Millis) -> String {
    let mut rows = String::new();
    let mut count = 0;
    for r in regions {
        for lane in &r.lanes {
            for a in &lane.actions {
                count += 1;
                let (ended, result, by, how) = match &a.end {
                    Some(e) => (
                        iso_millis(e.at),
                        e.result.map_or("—", LifecycleResult::as_str),
                        match e.by {
                            By::Handler => "a handler (CompleteLifecycleAction)",
                            By::DefaultResult => "the DefaultResult (timeout)",
                            By::HookDeleted => "hook deleted",
                            By::Cancelled => "cancelled",
                        },
                        e.how,
                    ),
                    None => ("open".to_owned(), "—", "—", "waiting"),
                };
                let cls = match a.end.as_ref().and_then(|e| e.result) {
                    Some(LifecycleResult::Continue) => "continue",
                    Some(LifecycleResult::Abandon) => "abandon",
                    None => "none",
                };
                let _ = writeln!(
                    rows,
                    "<tr class=\"{cls}\"><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"result\">{result}</td><td>{by}</td><td>{how}</td></tr>",
                    esc(&r.region),
                    esc(&lane.group),
                    esc(&lane.instance),
                    esc(&a.hook),
                    a.transition
                        .as_str()
                        .trim_start_matches("autoscaling:EC2_INSTANCE_"),
                    iso_millis(a.started),
                    ended,
                    a.heartbeats.len(),
                );
            }
        }
    }
    // Inline in HTML, SVG needs no namespace: the report then names no URL at all.
    let picture = svg(regions, now).replacen(r#" xmlns="http://www.w3.org/2000/svg""#, "", 1);
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; color: #0f172a; }}
table {{ border-collapse: collapse; font-size: 12px; margin-top: 1em; }}
td {{ white-space: nowrap; }}
th, td {{ border-bottom: 1px solid #e2e8f0; padding: 3px 8px; text-align: left; }}
tr.continue td.result {{ color: #15803d; font-weight: 600; }}
tr.abandon td.result {{ color: #b91c1c; font-weight: 600; }}
.picture {{ overflow-x: auto; }}
</style></head>
<body>
<h1>{title}</h1>
<p>Virtual time at export: {now_iso}. {count} lifecycle action(s). Hover a mark for its details.</p>
<div class="picture">{picture}</div>
<h2>Every lifecycle action</h2>
<table>
<thead><tr><th>region</th><th>group</th><th>instance</th><th>hook</th><th>transition</th><th>started</th><th>ended</th><th>heartbeats</th><th>result</th><th>given by</th><th>how</th></tr></thead>
<tbody>
{rows}</tbody></table>
</body></html>
"#,
        title = esc(title),
        now_iso = iso_millis(now),
    )
}
