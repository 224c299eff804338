//! Long work on virtual time: a two-hour step on a hook with a ten-minute heartbeat
//! timeout, run by the real `lifehook controller` following the sandbox's manual clock
//! (`LIFEHOOK_CLOCK_URL`). The controller must heartbeat before every heartbeat deadline
//! and keep the message invisible for the whole two hours, and the action must complete
//! CONTINUE.

use crate::common;

use std::process::Stdio;

use common::*;
use lifehook_conformance::Harness;

/// The time left, in virtual seconds, before the action's heartbeat timeout and before the
/// visibility timeout of its message in `queue`.
async fn seconds_left(h: &Harness, instance: &str, queue: &str) -> Option<(f64, f64)> {
    let s = h.state().await;
    let r = &s["regions"]["us-east-1"];
    let action = r["actions"]
        .as_array()?
        .iter()
        .find(|a| a["instance"] == instance)
        .and_then(|a| a["seconds_left"].as_f64())?;
    let message = r["sqs"][queue]["in_flight_seconds_left"].as_f64()?;
    Some((action, message))
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hour_step_on_a_ten_minute_heartbeat_timeout_completes_continue() {
    let _serial = common::serial().await;
    let h = Harness::manual().await;
    let dir = tempfile::tempdir().unwrap();
    let (url, arn, dlq) = queue_with_dlq(&h, "long", 2).await;
    create_group(
        &h,
        "batch",
        0,
        vec![hook("warm-up", LAUNCHING, 600, "ABANDON", Some(&arn))],
    )
    .await;
    // The step: note that it started, then wait until the test says two hours passed.
    let config = dir.path().join("long.toml");
    std::fs::write(
        &config,
        format!(
            r#"[source]
queue_url = "{url}"
wait_time_seconds = 1
visibility_timeout = "5m"

[[pipeline]]
name = "warm-up"
policy = {{ on_success = "continue", on_failure = "abandon", on_deadline = "abandon" }}

[[pipeline.step]]
type = "exec"
name = "two-hours"
command = ["sh", "-c", "touch started; until [ -e done ]; do sleep 0.02; done; echo finished > finished"]
working_dir = "{}"
timeout = "3h"
"#,
            dir.path().display()
        ),
    )
    .unwrap();
    let port = free_port();
    let admin = format!("127.0.0.1:{port}");
    let log = std::fs::File::create(dir.path().join("controller.log")).unwrap();
    let child = lifehook_cmd(&h.endpoint())
        .args(["controller", "--config"])
        .arg(&config)
        .args(["--admin-listen", &admin])
        .env(
            "LIFEHOOK_CLOCK_URL",
            format!("{}/_sandbox/clock", h.endpoint()),
        )
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn controller");
    let c = Proc { child, admin };

    h.asg
        .set_desired_capacity()
        .auto_scaling_group_name("batch")
        .desired_capacity(1)
        .send()
        .await
        .unwrap();
    let id = wait_for(
        "an instance in Pending:Wait",
        common::patience(),
        || async {
            instances(&h, "batch")
                .await
                .into_iter()
                .find(|(_, s)| s == "Pending:Wait")
                .map(|(i, _)| i)
        },
    )
    .await;
    wait_for("the step started", common::patience(), || async {
        dir.path().join("started").exists().then_some(())
    })
    .await;

    // Two hours of virtual time, a minute at a time. The controller heartbeats every five
    // minutes (half the ten-minute heartbeat timeout) and extends the message's visibility
    // every two and a half (half of five minutes). Before each minute, the test waits until
    // whatever was due has been done: more than five minutes left on the action, more than
    // two and a half on the message. A controller that stopped doing either, or did it
    // late, makes this wait time out.
    for minute in 0..120 {
        wait_for_logged(
            &format!("a heartbeat keeping the action alive at minute {minute}"),
            &dir.path().join("controller.log"),
            || async {
                seconds_left(&h, &id, "long")
                    .await
                    .filter(|(action, message)| *action > 300.0 && *message > 150.0)
            },
        )
        .await;
        h.advance(60.0).await;
        if minute == 60 {
            // The message stayed invisible (its visibility is extended on virtual time):
            // one delivery so far, none in the queue.
            let (visible, in_flight) = queue_depth(&h, &url).await;
            assert_eq!(
                (visible, in_flight),
                (0, 1),
                "minute {minute}:\n{}",
                std::fs::read_to_string(dir.path().join("controller.log")).unwrap_or_default()
            );
        }
    }
    assert_eq!(
        instances(&h, "batch").await,
        vec![(id.clone(), "Pending:Wait".to_owned())],
        "still waiting after two hours"
    );
    std::fs::write(dir.path().join("done"), b"").unwrap();
    wait_for("the instance InService", common::patience(), || async {
        (instances(&h, "batch").await == vec![(id.clone(), "InService".to_owned())]).then_some(())
    })
    .await;
    assert!(dir.path().join("finished").exists());
    wait_for("the message deleted", common::patience(), || async {
        (queue_depth(&h, &url).await == (0, 0)).then_some(())
    })
    .await;
    assert_eq!(queue_depth(&h, &dlq).await, (0, 0), "nothing set aside");
    let continued = "lifehook_actions_total{transition=\"launching\",outcome=\"continue\"}";
    wait_for(
        "the action counted as CONTINUE",
        common::patience(),
        || async { (c.metric(continued).await == 1.0).then_some(()) },
    )
    .await;
    // 7,200 s at one heartbeat per 300 s: 24 beats (the first falls at 300 s, the last at
    // 7,200 s, just before the step ends).
    let beats = c.metric("lifehook_heartbeats_total").await;
    assert!((23.0..=24.0).contains(&beats), "heartbeats: {beats}");
}
