//! The web view's routes and the timeline picture over real HTTP, on a manual clock.

use serde_json::Value;

use crate::{ClockMode, RunningSandbox, SandboxConfig};

/// A group name a user could give (Auto Scaling accepts any printable characters).
const HOSTILE: &str = r#"web<script>alert(1)</script>&"'"#;

async fn sandbox() -> RunningSandbox {
    crate::start(SandboxConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        clock: ClockMode::Manual,
        ..Default::default()
    })
    .await
    .unwrap()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn query(sb: &RunningSandbox, pairs: &[(&str, &str)]) -> String {
    let mut body = form_urlencoded::Serializer::new(String::new());
    body.append_pair("Version", "2011-01-01");
    for (k, v) in pairs {
        body.append_pair(k, v);
    }
    let r = client()
        .post(sb.endpoint())
        .header("content-type", "application/x-www-form-urlencoded")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=k/20260101/us-east-1/autoscaling/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body(body.finish())
        .send()
        .await
        .unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    assert!(status.is_success(), "{text}");
    text
}

async fn get(sb: &RunningSandbox, path: &str) -> reqwest::Response {
    client()
        .get(format!("{}{path}", sb.endpoint()))
        .send()
        .await
        .unwrap()
}

/// A group named [`HOSTILE`] with one launch hook (60 s, DefaultResult ABANDON) and one
/// instance waiting on it.
async fn waiting_instance(sb: &RunningSandbox) -> (String, String) {
    query(
        sb,
        &[
            ("Action", "CreateAutoScalingGroup"),
            ("AutoScalingGroupName", HOSTILE),
            ("MinSize", "0"),
            ("MaxSize", "2"),
            ("DesiredCapacity", "1"),
            ("LaunchTemplate.LaunchTemplateName", "lt-web"),
            ("AvailabilityZones.member.1", "us-east-1a"),
            (
                "LifecycleHookSpecificationList.member.1.LifecycleHookName",
                "gate",
            ),
            (
                "LifecycleHookSpecificationList.member.1.LifecycleTransition",
                "autoscaling:EC2_INSTANCE_LAUNCHING",
            ),
            (
                "LifecycleHookSpecificationList.member.1.HeartbeatTimeout",
                "60",
            ),
            (
                "LifecycleHookSpecificationList.member.1.DefaultResult",
                "ABANDON",
            ),
        ],
    )
    .await;
    let state: Value = get(sb, "/_sandbox/state").await.json().await.unwrap();
    let a = &state["regions"]["us-east-1"]["actions"][0];
    (
        a["instance"].as_str().unwrap().to_owned(),
        a["token"].as_str().unwrap().to_owned(),
    )
}

/// `GET /_sandbox/timeline.svg`, checked well-formed.
async fn picture(sb: &RunningSandbox) -> String {
    let svg = get(sb, "/_sandbox/timeline.svg")
        .await
        .text()
        .await
        .unwrap();
    assert_well_formed(&svg);
    svg
}

/// Reads `xml` to the end: it must be well-formed, as a browser's SVG parser needs.
fn assert_well_formed(xml: &str) {
    let mut r = quick_xml::Reader::from_str(xml);
    loop {
        match r.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!("not well-formed at {}: {e}\n{xml}", r.buffer_position()),
        }
    }
}

#[tokio::test]
async fn the_web_view_and_its_assets_are_served_with_a_strict_policy() {
    let sb = sandbox().await;
    for (path, ctype) in [
        ("/_sandbox/ui/", "text/html"),
        ("/_sandbox/ui", "text/html"),
        ("/_sandbox/ui/app.js", "text/javascript"),
        ("/_sandbox/ui/errors.js", "text/javascript"),
        ("/_sandbox/ui/style.css", "text/css"),
    ] {
        let r = get(&sb, path).await;
        assert_eq!(r.status(), 200, "{path}");
        let h = r.headers();
        assert!(
            h["content-type"].to_str().unwrap().starts_with(ctype),
            "{path}"
        );
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'"), "{csp}");
        let body = r.text().await.unwrap();
        // Offline: nothing is fetched from anywhere but the sandbox.
        assert!(
            !body.contains("http://") && !body.contains("https://"),
            "{path}"
        );
    }
    let page = get(&sb, "/_sandbox/ui/").await.text().await.unwrap();
    // The error collector comes before any other script.
    let first = page.find("<script").unwrap();
    assert!(page[first..].starts_with(r#"<script src="/_sandbox/ui/errors.js">"#));
    assert_eq!(get(&sb, "/_sandbox/ui/nothing.js").await.status(), 404);
    let r = client()
        .post(format!("{}/_sandbox/ui/", sb.endpoint()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn state_shows_heartbeats_and_deadlines_in_milliseconds_and_recent_activities() {
    let sb = sandbox().await;
    let (instance, _) = waiting_instance(&sb).await;
    sb.sandbox.advance(5_000);
    query(
        &sb,
        &[
            ("Action", "RecordLifecycleActionHeartbeat"),
            ("AutoScalingGroupName", HOSTILE),
            ("LifecycleHookName", "gate"),
            ("InstanceId", &instance),
        ],
    )
    .await;
    let state: Value = get(&sb, "/_sandbox/state").await.json().await.unwrap();
    let now = state["now_ms"].as_u64().unwrap();
    let r = &state["regions"]["us-east-1"];
    let a = &r["actions"][0];
    assert_eq!(a["heartbeats"], 1);
    assert_eq!(a["heartbeat_deadline_ms"].as_u64().unwrap(), now + 60_000);
    assert_eq!(
        a["global_deadline_ms"].as_u64().unwrap(),
        a["started_ms"].as_u64().unwrap() + 6_000_000
    );
    assert_eq!(a["default_result"], "ABANDON");
    let acts = r["recent_activities"].as_array().unwrap();
    assert_eq!(acts[0]["status"], "MidLifecycleAction");
    assert_eq!(
        acts[0]["description"],
        format!("Launching a new EC2 instance: {instance}")
    );
}

#[tokio::test]
async fn the_timeline_shows_each_action_with_its_result_and_who_gave_it_escaped() {
    let sb = sandbox().await;
    let (first, token) = waiting_instance(&sb).await;
    // Open: the SVG draws the wait and the deadline ahead of it.
    let svg = picture(&sb).await;
    assert!(svg.contains(r#"data-state="Pending:Wait""#), "{svg}");
    assert!(svg.contains("heartbeat deadline of gate"), "{svg}");
    // A handler completes the first.
    query(
        &sb,
        &[
            ("Action", "CompleteLifecycleAction"),
            ("AutoScalingGroupName", HOSTILE),
            ("LifecycleHookName", "gate"),
            ("LifecycleActionToken", &token),
            ("LifecycleActionResult", "CONTINUE"),
        ],
    )
    .await;
    // Scale to two: the second instance times out with the DefaultResult ABANDON.
    query(
        &sb,
        &[
            ("Action", "SetDesiredCapacity"),
            ("AutoScalingGroupName", HOSTILE),
            ("DesiredCapacity", "2"),
        ],
    )
    .await;
    sb.sandbox.advance(60_000);
    let t: Value = get(&sb, "/_sandbox/timeline").await.json().await.unwrap();
    let lanes = t["regions"]["us-east-1"]["instances"].as_array().unwrap();
    let ends: Vec<(String, String, String)> = lanes
        .iter()
        .flat_map(|l| l["actions"].as_array().unwrap())
        // The ABANDONed instance's replacement waits: its action is open.
        .filter(|a| a["ended_ms"].is_u64())
        .map(|a| {
            (
                a["result"].as_str().unwrap().to_owned(),
                a["by"].as_str().unwrap().to_owned(),
                a["how"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        ends[0],
        ("CONTINUE".into(), "handler".into(), "completed".into())
    );
    assert_eq!(
        ends[1],
        (
            "ABANDON".into(),
            "default-result".into(),
            "heartbeat-timeout".into()
        )
    );
    assert_eq!(lanes[0]["instance"], first);
    assert_eq!(lanes[0]["group"], HOSTILE);
    assert_eq!(lanes[0]["states"][3]["state"], "InService");

    let svg = picture(&sb).await;
    assert!(!svg.contains("<script"), "{svg}");
    assert!(svg.contains("web&lt;script&gt;alert(1)&lt;/script&gt;&amp;&quot;&#39;"));
    assert!(svg.contains(r#"data-result="CONTINUE" data-by="handler""#));
    assert!(svg.contains(r#"data-result="ABANDON" data-by="default-result""#));
    assert!(
        svg.contains("heartbeat deadline of gate fell at +1m00s"),
        "{svg}"
    );

    let r = get(&sb, "/_sandbox/report").await;
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let report = r.text().await.unwrap();
    assert!(!report.contains("<script"));
    assert!(!report.contains("http://") && !report.contains("https://"));
    assert!(report.contains(
        "<td class=\"result\">CONTINUE</td><td>a handler (CompleteLifecycleAction)</td>"
    ));
    assert!(
        report.contains("<td class=\"result\">ABANDON</td><td>the DefaultResult (timeout)</td>")
    );
    // The two ended and the replacement's open one.
    assert!(report.contains("3 lifecycle action(s)"), "{report}");
}

#[test]
fn escaping_covers_markup_and_both_quotes() {
    assert_eq!(
        super::render::esc(r#"<a href="x">'&'</a>"#),
        "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
    );
}

#[test]
fn an_empty_sandbox_draws_an_empty_picture_and_many_instances_are_capped() {
    use crate::autoscaling::timeline::{Timeline, What};
    use lifehook_model::LifecycleState as S;
    let svg = super::render::svg(&[], 0);
    assert_well_formed(&svg);
    assert!(svg.contains("No instance yet"));
    let mut t = Timeline::default();
    for k in 0..super::render::MAX_LANES_DRAWN + 7 {
        t.push(
            k as u64 * 1000,
            "g",
            &format!("i-{k:04}"),
            What::State(S::InService),
        );
    }
    let regions = [super::render::RegionLanes {
        region: "us-east-1".into(),
        lanes: t.lanes(),
        dropped_events: 0,
    }];
    let svg = super::render::svg(&regions, 1_000_000);
    assert_well_formed(&svg);
    assert!(svg.contains("7 earlier instance(s) not drawn"));
    assert!(!svg.contains("i-0006") && svg.contains("i-0007"));
}
