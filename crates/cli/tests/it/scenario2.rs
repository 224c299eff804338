//! Reference scenario 2 in controller mode, with `examples/controller-deregister.toml` as
//! shipped (only its endpoints pointed at the test): `lifehook setup` builds the queue,
//! rule and hooks; on a scale-in the controller marks the instance OUT_OF_SERVICE in a
//! Eureka registry started by the test, deletes it, posts to a chat webhook — all while the
//! instance waits in Terminating:Wait — and completes CONTINUE. A registry that answers 500
//! still ends CONTINUE (the example's on_failure), with a log line saying why.

use crate::common;

use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use common::{create_group, instances, lifehook_cmd, wait_for};
use lifehook_conformance::Harness;

#[derive(Debug, Clone)]
struct Call {
    method: String,
    path: String,
    body: String,
    /// Instances in a `*:Wait` state when the call arrived.
    waiting: Vec<String>,
}

#[derive(Clone)]
struct Recorder {
    calls: Arc<Mutex<Vec<Call>>>,
    sandbox: String,
    http: reqwest::Client,
    status: Arc<Mutex<StatusCode>>,
}

async fn record(State(r): State<Recorder>, req: Request) -> StatusCode {
    let method = req.method().to_string();
    let path = req
        .uri()
        .path_and_query()
        .map(ToString::to_string)
        .unwrap_or_default();
    let body = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    let state: serde_json::Value = r
        .http
        .get(format!("{}/_sandbox/state", r.sandbox))
        .send()
        .await
        .expect("sandbox state")
        .json()
        .await
        .expect("state json");
    let waiting = state["regions"]["us-east-1"]["instances"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| {
            i["lifecycle_state"]
                .as_str()
                .is_some_and(|s| s.ends_with(":Wait"))
        })
        .filter_map(|i| i["id"].as_str().map(str::to_owned))
        .collect();
    r.calls.lock().unwrap().push(Call {
        method,
        path,
        body: String::from_utf8_lossy(&body).into_owned(),
        waiting,
    });
    *r.status.lock().unwrap()
}

/// A server playing both the Eureka registry and the chat webhook.
async fn start_server(sandbox: &str) -> (String, Recorder) {
    let rec = Recorder {
        calls: Arc::default(),
        sandbox: sandbox.to_owned(),
        http: reqwest::Client::builder().no_proxy().build().unwrap(),
        status: Arc::new(Mutex::new(StatusCode::OK)),
    };
    let app = axum::Router::new().fallback(record).with_state(rec.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), rec)
}

fn example(endpoint: &str, server: &str) -> String {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/controller-deregister.toml"),
    )
    .unwrap();
    let swaps = [
        (
            "https://sqs.us-east-1.amazonaws.com/123456789012/lifehook-deregister",
            format!("{endpoint}/000000000000/lifehook-deregister"),
        ),
        ("http://eureka.internal:8761", server.to_owned()),
        (
            "https://hooks.slack.com/services/T000/B000/XXXX",
            format!("{server}/chat/T000"),
        ),
    ];
    let mut text = text;
    for (from, to) in swaps {
        assert!(
            text.contains(from),
            "the example no longer contains {from:?}"
        );
        text = text.replace(from, &to);
    }
    text
}

async fn scale_in_one(h: &Harness, group: &str) -> String {
    let serving = wait_for("2 instances InService", common::patience(), || async {
        let v: Vec<String> = instances(h, group)
            .await
            .into_iter()
            .filter(|(_, s)| s == "InService")
            .map(|(i, _)| i)
            .collect();
        (v.len() == 2).then_some(v)
    })
    .await;
    h.asg
        .set_desired_capacity()
        .auto_scaling_group_name(group)
        .desired_capacity(1)
        .send()
        .await
        .unwrap();
    wait_for("the victim to terminate", common::patience(), || async {
        let now = instances(h, group).await;
        serving
            .iter()
            .find(|id| !now.iter().any(|(i, _)| i == *id))
            .cloned()
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn deregister_from_eureka_and_tell_chat_before_continue() {
    let _serial = common::serial().await;
    let h = Harness::with_clock(lifehook_sandbox::ClockMode::Real).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (server, rec) = start_server(&h.endpoint()).await;
    create_group(&h, "web-1", 2, vec![]).await;
    create_group(&h, "web-2", 0, vec![]).await;
    let cfg = d.join("deregister.toml");
    std::fs::write(&cfg, example(&h.endpoint(), &server)).unwrap();
    let out = lifehook_cmd(&h.endpoint())
        .args(["setup", "--config"])
        .arg(&cfg)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let c = common::Proc::controller(&h.endpoint(), &cfg, &d.join("controller.log"));

    let victim = scale_in_one(&h, "web-1").await;
    wait_for(
        "the action counted CONTINUE",
        common::patience(),
        || async {
            (c.metric("lifehook_actions_total{transition=\"terminating\",outcome=\"continue\"}")
                .await
                == 1.0)
                .then_some(())
        },
    )
    .await;
    let calls = rec.calls.lock().unwrap().clone();
    let put = calls
        .iter()
        .position(|c| {
            c.method == "PUT"
                && c.path == format!("/eureka/apps/WEB/{victim}/status?value=OUT_OF_SERVICE")
        })
        .unwrap_or_else(|| panic!("no OUT_OF_SERVICE call: {calls:#?}"));
    let delete = calls
        .iter()
        .position(|c| c.method == "DELETE" && c.path == format!("/eureka/apps/WEB/{victim}"))
        .unwrap_or_else(|| panic!("no DELETE call: {calls:#?}"));
    let chat = calls
        .iter()
        .position(|c| c.path == "/chat/T000")
        .unwrap_or_else(|| panic!("no chat message: {calls:#?}"));
    assert!(put < delete && delete < chat, "order: {calls:#?}");
    for i in [put, delete, chat] {
        assert!(
            calls[i].waiting.contains(&victim),
            "{victim} was not waiting during {:?}",
            calls[i]
        );
    }
    let msg: serde_json::Value = serde_json::from_str(&calls[chat].body).unwrap();
    assert_eq!(
        msg["text"],
        format!("{victim} left web-1: out of service and removed from Eureka")
    );

    // The registry fails: the steps retry, then the example's on_failure CONTINUE applies,
    // with a log line naming the step and the status.
    *rec.status.lock().unwrap() = StatusCode::INTERNAL_SERVER_ERROR;
    h.asg
        .set_desired_capacity()
        .auto_scaling_group_name("web-1")
        .desired_capacity(2)
        .send()
        .await
        .unwrap();
    let second = scale_in_one(&h, "web-1").await;
    wait_for(
        "the second action counted CONTINUE",
        common::patience(),
        || async {
            (c.metric("lifehook_actions_total{transition=\"terminating\",outcome=\"continue\"}")
                .await
                == 2.0)
                .then_some(())
        },
    )
    .await;
    let log = std::fs::read_to_string(d.join("controller.log")).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains(&second) && l.contains("eureka-out-of-service") && l.contains("500"))
        .unwrap_or_else(|| panic!("no log line about the failed registry call:\n{log}"));
    assert!(line.contains("Failed") || line.contains("failed"), "{line}");
}
