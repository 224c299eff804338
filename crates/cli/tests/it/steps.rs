//! The step types that call AWS, end to end: the real `lifehook controller` against the
//! sandbox (S3, SSM, ECS, EC2, CloudFormation), each pipeline completing a real lifecycle
//! action.

use crate::common;

use std::path::Path;

use common::*;
use lifehook_conformance::Harness;
use serde_json::{Value, json};

fn config(dir: &Path, queue_url: &str, pipelines: &str) -> std::path::PathBuf {
    let text = format!(
        "[source]\nqueue_url = \"{queue_url}\"\nwait_time_seconds = 1\nvisibility_timeout = \"60s\"\n\n{pipelines}"
    );
    let path = dir.join("controller.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

fn sha256_of(path: &Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("digest")
        .to_owned()
}

async fn object(h: &Harness, bucket: &str, key: &str) -> Option<String> {
    let out =
        h.s3.get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .ok()?;
    let bytes = out.body.collect().await.ok()?.into_bytes();
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

async fn all_gone(h: &Harness, group: &str) -> Option<()> {
    instances(h, group).await.is_empty().then_some(())
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_run_upload_and_file_then_checksum_mismatch_abandons() {
    let _serial = common::serial().await;
    let h = Harness::manual().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (url, arn, _dlq) = queue_with_dlq(&h, "hooks", 5).await;
    for b in ["ops", "fleet-logs"] {
        h.s3.create_bucket().bucket(b).send().await.unwrap();
    }
    let script = "#!/bin/sh\nmkdir -p logs\necho \"app $LIFEHOOK_INSTANCE_ID\" > logs/app.log\necho second > logs/worker.log\n";
    let local = d.join("reference.sh");
    std::fs::write(&local, script).unwrap();
    let sum = sha256_of(&local);
    h.s3.put_object()
        .bucket("ops")
        .key("lifecycle/on-terminate.sh")
        .body(script.as_bytes().to_vec().into())
        .send()
        .await
        .unwrap();
    let wrong = "0".repeat(64);
    let pipelines = format!(
        r#"[[pipeline]]
name = "collect"
match = {{ groups = ["web-*"], transitions = ["terminating"] }}
[[pipeline.step]]
type = "s3-fetch"
name = "fetch-script"
bucket = "ops"
key = "lifecycle/on-terminate.sh"
path = "{d}/on-terminate.sh"
mode = "0755"
sha256 = "{sum}"
[[pipeline.step]]
type = "exec"
command = ["{d}/on-terminate.sh"]
working_dir = "{d}"
[[pipeline.step]]
type = "s3-upload"
bucket = "fleet-logs"
key = "logs/{{{{ group }}}}/{{{{ instance_id }}}}/{{{{ file_name }}}}"
files = ["{d}/logs/*.log", "{d}/logs/none-*.gz"]
[[pipeline.step]]
type = "file"
path = "{d}/lifehook.sh"
content = "export LIFEHOOK_LEFT={{{{ instance_id }}}}\n"

[[pipeline]]
name = "tampered"
match = {{ groups = ["bad-*"], transitions = ["terminating"] }}
policy = {{ on_failure = "abandon" }}
[[pipeline.step]]
type = "s3-fetch"
bucket = "ops"
key = "lifecycle/on-terminate.sh"
path = "{d}/tampered.sh"
sha256 = "{wrong}"
[[pipeline.step]]
type = "exec"
command = ["{d}/tampered.sh"]
"#,
        d = d.display()
    );
    let cfg = config(d, &url, &pipelines);
    let c = Proc::controller(&h.endpoint(), &cfg, &d.join("controller.log"));
    create_group(
        &h,
        "web-1",
        1,
        vec![hook("terminate", TERMINATING, 300, "ABANDON", Some(&arn))],
    )
    .await;
    create_group(
        &h,
        "bad-1",
        1,
        vec![hook("terminate", TERMINATING, 300, "CONTINUE", Some(&arn))],
    )
    .await;
    let web = wait_for("web instance", common::patience(), || async {
        instances(&h, "web-1").await.first().map(|i| i.0.clone())
    })
    .await;
    for g in ["web-1", "bad-1"] {
        h.asg
            .set_desired_capacity()
            .auto_scaling_group_name(g)
            .desired_capacity(0)
            .send()
            .await
            .unwrap();
    }
    wait_for("web-1 terminated", common::patience(), || {
        all_gone(&h, "web-1")
    })
    .await;
    wait_for("bad-1 terminated", common::patience(), || {
        all_gone(&h, "bad-1")
    })
    .await;

    let app = object(&h, "fleet-logs", &format!("logs/web-1/{web}/app.log")).await;
    assert_eq!(app.as_deref(), Some(format!("app {web}\n").as_str()));
    let worker = object(&h, "fleet-logs", &format!("logs/web-1/{web}/worker.log")).await;
    assert_eq!(worker.as_deref(), Some("second\n"));
    assert_eq!(
        std::fs::read_to_string(d.join("lifehook.sh")).unwrap(),
        format!("export LIFEHOOK_LEFT={web}\n")
    );
    assert!(
        !d.join("tampered.sh").exists(),
        "a bad download is never installed"
    );
    wait_for(
        "one CONTINUE and one ABANDON",
        common::patience(),
        || async {
            let cont = c
                .metric("lifehook_actions_total{transition=\"terminating\",outcome=\"continue\"}")
                .await;
            let abandon = c
                .metric("lifehook_actions_total{transition=\"terminating\",outcome=\"abandon\"}")
                .await;
            (cont == 1.0 && abandon == 1.0).then_some(())
        },
    )
    .await;
    let log = std::fs::read_to_string(d.join("controller.log")).unwrap();
    assert!(
        log.contains(&format!("expected {wrong}")) && log.contains(&sum),
        "the mismatch names both digests:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ssm_command_tag_and_signal_then_a_scripted_failure() {
    let _serial = common::serial().await;
    let h = Harness::manual().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (url, arn, _dlq) = queue_with_dlq(&h, "hooks", 5).await;
    let r = h
        .control_post(
            "ssm/outcomes",
            json!({"command_contains": "fail-me", "status": "Failed", "exit_code": 3, "stderr": "boom: disk full"}),
        )
        .await;
    assert!(r.status().is_success());
    let pipelines = r#"[[pipeline]]
name = "patch"
match = { groups = ["app-*"], transitions = ["launching"] }
[[pipeline.step]]
type = "ssm-command"
interval = "50ms"
env = { META = "{{ metadata }}" }
commands = ["echo {{ instance_id }}", "echo \"$META\""]
[[pipeline.step]]
type = "tag"
tags = { "lifehook:patched" = "{{ now | date }}" }
[[pipeline.step]]
type = "signal"
stack = "web-stack"
resource = "WebGroup"

[[pipeline]]
name = "broken"
match = { groups = ["broken-*"], transitions = ["launching"] }
policy = { on_failure = "abandon" }
[[pipeline.step]]
type = "ssm-command"
interval = "50ms"
commands = ["fail-me"]
"#;
    let cfg = config(d, &url, pipelines);
    let c = Proc::controller(&h.endpoint(), &cfg, &d.join("controller.log"));
    let _tick = Ticker::start(h.endpoint());
    create_group(
        &h,
        "app-1",
        1,
        vec![hook("launch", LAUNCHING, 300, "ABANDON", Some(&arn))],
    )
    .await;
    let id = wait_for("app-1 InService", common::patience(), || async {
        let i = instances(&h, "app-1").await;
        i.first()
            .filter(|(_, s)| s == "InService")
            .map(|(i, _)| i.clone())
    })
    .await;
    let cmds = h.control_get("ssm/commands").await;
    let script = cmds["commands"][0]["Script"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        script.contains(&format!("echo '{id}'")) && script.contains("export META=''"),
        "values are shell-quoted: {cmds}"
    );
    let inst = h.control_get(&format!("ec2/instances/{id}")).await;
    let today_tag = inst.to_string();
    assert!(today_tag.contains("lifehook:patched"), "{inst}");
    let signals = h.control_get("cloudformation/signals").await;
    let s = &signals["signals"][0];
    assert_eq!(s["StackName"], "web-stack");
    assert_eq!(s["LogicalResourceId"], "WebGroup");
    assert_eq!(s["UniqueId"], Value::String(id.clone()));
    assert_eq!(s["Status"], "SUCCESS");

    create_group(
        &h,
        "broken-1",
        1,
        vec![hook("launch", LAUNCHING, 300, "CONTINUE", Some(&arn))],
    )
    .await;
    wait_for("a launch ABANDONed", common::patience(), || async {
        (c.metric("lifehook_actions_total{transition=\"launching\",outcome=\"abandon\"}")
            .await
            >= 1.0)
            .then_some(())
    })
    .await;
    let log = std::fs::read_to_string(d.join("controller.log")).unwrap();
    assert!(
        log.contains("ended Failed (exit code 3)") && log.contains("boom: disk full"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ecs_drain_moves_service_tasks_then_stops_the_standalone_task() {
    let _serial = common::serial().await;
    let h = Harness::manual().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (url, arn, _dlq) = queue_with_dlq(&h, "hooks", 5).await;
    create_group(
        &h,
        "ecs-1",
        1,
        vec![hook("drain", TERMINATING, 300, "ABANDON", Some(&arn))],
    )
    .await;
    let id = wait_for("ecs-1 instance", common::patience(), || async {
        instances(&h, "ecs-1").await.first().map(|i| i.0.clone())
    })
    .await;
    let standalone = ecs_service_on(&h, &id, "cron").await;
    let _tick = Ticker::start(h.endpoint());
    let pipelines = r#"[[pipeline]]
name = "drain"
match = { groups = ["ecs-*"], transitions = ["terminating"] }
[[pipeline.step]]
type = "ecs-drain"
interval = "50ms"
timeout = "2m"
"#;
    let cfg = config(d, &url, pipelines);
    let c = Proc::controller(&h.endpoint(), &cfg, &d.join("controller.log"));
    h.asg
        .set_desired_capacity()
        .auto_scaling_group_name("ecs-1")
        .desired_capacity(0)
        .send()
        .await
        .unwrap();
    wait_for("ecs-1 terminated", common::patience(), || {
        all_gone(&h, "ecs-1")
    })
    .await;
    // The action is counted once its message is deleted (after the batched delete), a
    // moment after the instance is gone.
    wait_for(
        "the action counted as CONTINUE",
        common::patience(),
        || async {
            (c.metric("lifehook_actions_total{transition=\"terminating\",outcome=\"continue\"}")
                .await
                == 1.0)
                .then_some(())
        },
    )
    .await;
    // The standalone task was stopped last: after every service task on the instance.
    assert_service_moved_then_standalone_stopped(&h, &standalone).await;
}
