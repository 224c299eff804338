//! The sandbox's web view in a real browser: the real `lifehook sandbox` binary, headless
//! Chromium driven over WebDriver by chromedriver (Debian's `chromium` and
//! `chromium-driver`, which `.ci/run` installs when missing).
//!
//! The WebDriver client is the few W3C endpoints this test needs (new session, navigate,
//! execute script, delete session) over the `reqwest` client the tests already use:
//! `fantoccini` would add 23 crates, among them second versions of `http`, `thiserror` and
//! `cookie`, for the same four calls.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{self, LAUNCHING, free_port, hook, wait_for};

/// The packages to install when the browser or its driver is missing.
const PACKAGES: &str = "apt-get install chromium chromium-driver";

/// The first of `names` on `PATH`, unless `var` names the executable.
fn find(var: &str, names: &[&str]) -> PathBuf {
    if let Some(p) = std::env::var_os(var) {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for n in names {
            let p = dir.join(n);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "the web view's browser test needs {} on PATH (or {var} naming it): {PACKAGES} (Debian's packages; .ci/run installs them when missing)",
        names.join(" or ")
    );
}

/// A W3C WebDriver session.
struct Browser {
    http: reqwest::Client,
    session: String,
    /// chromedriver; killed on drop.
    _driver: tokio::process::Child,
}

impl Browser {
    async fn start() -> Browser {
        let chromium = find("LIFEHOOK_CHROMIUM", &["chromium", "chromium-browser"]);
        let chromedriver = find("LIFEHOOK_CHROMEDRIVER", &["chromedriver"]);
        let port = free_port();
        let driver = tokio::process::Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let base = format!("http://127.0.0.1:{port}");
        wait_for("chromedriver is ready", common::patience(), || async {
            let r = http.get(format!("{base}/status")).send().await.ok()?;
            let v: Value = r.json().await.ok()?;
            v["value"]["ready"].as_bool().filter(|r| *r)
        })
        .await;
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,1000"],
            },
        }}});
        let v = Self::call(http.post(format!("{base}/session")).json(&caps)).await;
        let session = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_owned();
        Browser {
            http,
            session: format!("{base}/session/{session}"),
            _driver: driver,
        }
    }

    /// The `value` of a WebDriver answer; a WebDriver error fails the test with its message.
    async fn call(req: reqwest::RequestBuilder) -> Value {
        let r = tokio::time::timeout(common::patience(), req.send())
            .await
            .expect("WebDriver answered in time")
            .expect("WebDriver reachable");
        let v: Value = r.json().await.expect("WebDriver answers JSON");
        if let Some(e) = v["value"]["error"].as_str() {
            panic!("WebDriver error {e}: {}", v["value"]["message"]);
        }
        v["value"].clone()
    }

    async fn goto(&self, url: &str) {
        let req = self
            .http
            .post(format!("{}/url", self.session))
            .json(&json!({ "url": url }));
        Self::call(req).await;
    }

    /// Runs `script` (a function body) in the page and returns what it returns.
    async fn eval(&self, script: &str) -> Value {
        let req = self
            .http
            .post(format!("{}/execute/sync", self.session))
            .json(&json!({"script": script, "args": []}));
        Self::call(req).await
    }

    /// Waits (bounded) until `script` returns `want`; fails with what it returned last.
    async fn wait_until(&self, what: &str, script: &str, want: Value) {
        let limit = common::patience();
        let start = std::time::Instant::now();
        loop {
            let v = self.eval(script).await;
            if v == want {
                return;
            }
            assert!(
                start.elapsed() < limit,
                "timed out after {limit:?} waiting for {what}: wanted {want}, the page shows {v}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn quit(self) {
        let req = self.http.delete(&self.session);
        Self::call(req).await;
    }
}

fn text_of(selector: &str) -> String {
    format!(
        "const e = document.querySelector({}); return e ? e.textContent : null;",
        json!(selector)
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_web_view_counts_a_waiting_instance_down_and_shows_it_in_service_after_completion() {
    let _serial = common::serial().await;
    let (_sandbox, endpoint) = common::sandbox_process(&[]).await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let sdk = lifehook_conformance::sdk_config(&endpoint).await;
    let asg = aws_sdk_autoscaling::Client::new(&sdk);
    asg.create_auto_scaling_group()
        .auto_scaling_group_name("web")
        .min_size(0)
        .max_size(2)
        .desired_capacity(1)
        .availability_zones("us-east-1a")
        .launch_template(
            aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
                .launch_template_name("lt-web")
                .build(),
        )
        .lifecycle_hook_specification_list(hook("gate", LAUNCHING, 300, "ABANDON", None))
        .send()
        .await
        .unwrap();
    let state: Value = http
        .get(format!("{endpoint}/_sandbox/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let action = &state["regions"]["us-east-1"]["actions"][0];
    let instance = action["instance"].as_str().unwrap().to_owned();
    let token = action["token"].as_str().unwrap().to_owned();

    let browser = Browser::start().await;
    browser.goto(&format!("{endpoint}/_sandbox/ui/")).await;
    let state_cell = format!(
        "const e = document.querySelector('#instances tr[data-instance=\"{instance}\"] .lifecycle-state'); return e ? e.getAttribute('data-state') : null;"
    );
    browser
        .wait_until("the instance waiting", &state_cell, json!("Pending:Wait"))
        .await;
    let countdown = text_of(&format!(
        "#actions tr[data-instance=\"{instance}\"] .hb-left"
    ));
    // The manual clock stands still: exactly the hook's 300 s.
    browser
        .wait_until("the heartbeat countdown", &countdown, json!("5m 00s"))
        .await;
    let tokens = text_of(&format!("#actions tr[data-instance=\"{instance}\"] code"));
    browser
        .wait_until("the action's token", &tokens, json!(token))
        .await;
    // The clock moves (as the page's own button moves it): the countdown follows.
    browser
        .eval(
            "document.querySelector('#advance button[data-seconds=\"60\"]').click(); return null;",
        )
        .await;
    browser
        .wait_until(
            "the countdown after one minute",
            &countdown,
            json!("4m 00s"),
        )
        .await;
    http.post(format!("{endpoint}/_sandbox/clock/advance"))
        .json(&json!({"seconds": 90}))
        .send()
        .await
        .unwrap();
    browser
        .wait_until(
            "the countdown after 2.5 minutes",
            &countdown,
            json!("2m 30s"),
        )
        .await;
    // The timeline draws the wait and its deadline ahead.
    browser
        .wait_until(
            "the wait in the timeline",
            &format!(
                "return document.querySelectorAll('#timeline g.lane[data-instance=\"{instance}\"] rect[data-state=\"Pending:Wait\"]').length;"
            ),
            json!(1),
        )
        .await;

    asg.complete_lifecycle_action()
        .auto_scaling_group_name("web")
        .lifecycle_hook_name("gate")
        .lifecycle_action_token(&token)
        .lifecycle_action_result("CONTINUE")
        .send()
        .await
        .unwrap();
    browser
        .wait_until("the instance in service", &state_cell, json!("InService"))
        .await;
    browser
        .wait_until(
            "no open action",
            "return document.querySelectorAll('#actions tr[data-token]').length;",
            json!(0),
        )
        .await;
    browser
        .wait_until(
            "the completion in the timeline, by a handler",
            &format!(
                "const e = document.querySelector('#timeline g.end[data-token=\"{token}\"]'); return e ? e.getAttribute('data-result') + ' ' + e.getAttribute('data-by') : null;"
            ),
            json!("CONTINUE handler"),
        )
        .await;
    let errors = browser.eval("return window.__lifehookErrors;").await;
    assert_eq!(errors, json!([]), "the page logged errors");
    browser.quit().await;
}
