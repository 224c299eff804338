//! `lifehook agent` as it runs on instances: real agent processes, each pointed at the
//! sandbox's metadata service of one simulated instance.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::*;
use lifehook_conformance::Harness;

const LIMIT: Duration = Duration::from_secs(60);

/// A running agent for one instance.
struct AgentProc {
    child: tokio::process::Child,
    log: PathBuf,
}

impl AgentProc {
    fn start(h: &Harness, instance: &str, config: &Path, state: &Path, log: &Path) -> AgentProc {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("log file");
        let child = lifehook_cmd(&h.endpoint())
            .args(["agent", "--config"])
            .arg(config)
            .arg("--state-dir")
            .arg(state)
            .args(["--grace-seconds", "5"])
            .env(
                "AWS_EC2_METADATA_SERVICE_ENDPOINT",
                format!("{}/_imds/{instance}/", h.endpoint()),
            )
            .env(
                "LIFEHOOK_CLOCK_URL",
                format!("{}/_sandbox/clock", h.endpoint()),
            )
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .expect("spawn agent");
        AgentProc {
            child,
            log: log.to_path_buf(),
        }
    }

    fn signal(&self, sig: &str) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args([sig, &pid.to_string()])
                .status();
        }
    }

    async fn stop(mut self) -> std::process::ExitStatus {
        self.signal("-TERM");
        tokio::time::timeout(LIMIT, self.child.wait())
            .await
            .expect("the agent stops within the limit")
            .expect("wait")
    }

    /// A crash or a reboot: the agent and the steps it started die at once (as systemd's
    /// `KillMode=control-group` does, and a reboot).
    async fn kill(mut self) {
        // Stopped first, so it cannot see its steps die and act on it.
        self.signal("-STOP");
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("pkill")
                .args(["-KILL", "-P", &pid.to_string()])
                .status();
        }
        self.signal("-KILL");
        let _ = self.child.wait().await;
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

async fn topic(h: &Harness, name: &str) -> String {
    h.sns
        .create_topic()
        .name(name)
        .send()
        .await
        .expect("topic")
        .topic_arn()
        .expect("arn")
        .to_owned()
}

async fn queue_names(h: &Harness) -> Vec<String> {
    h.sqs
        .list_queues()
        .send()
        .await
        .expect("ListQueues")
        .queue_urls()
        .iter()
        .filter_map(|u| u.rsplit('/').next().map(str::to_owned))
        .collect()
}

async fn subscriptions(h: &Harness, topic: &str) -> usize {
    h.sns
        .list_subscriptions_by_topic()
        .topic_arn(topic)
        .send()
        .await
        .expect("ListSubscriptionsByTopic")
        .subscriptions()
        .len()
}

async fn reboots(h: &Harness, instance: &str) -> u64 {
    h.control_get(&format!("ec2/instances/{instance}")).await["reboots"]["count"]
        .as_u64()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_agents_on_one_topic_each_handle_only_their_own_instance() {
    const N: usize = 50;
    let h = Harness::manual().await;
    let dir = tempfile::tempdir().unwrap();
    let topic = topic(&h, "lifecycle").await;
    create_group(
        &h,
        "fleet",
        0,
        vec![hook(
            "ship-logs",
            TERMINATING,
            300,
            "CONTINUE",
            Some(&topic),
        )],
    )
    .await;
    h.asg
        .update_auto_scaling_group()
        .auto_scaling_group_name("fleet")
        .max_size(N as i32)
        .desired_capacity(N as i32)
        .send()
        .await
        .unwrap();
    let ids: Vec<String> = wait_for("50 instances InService", LIMIT, || async {
        let i = instances(&h, "fleet").await;
        (i.len() == N && i.iter().all(|(_, s)| s == "InService"))
            .then(|| i.into_iter().map(|(id, _)| id).collect())
    })
    .await;

    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            r#"[source]
topic_arn = "{topic}"
wait_time_seconds = 1

[[pipeline]]
name = "ship-logs"
match = {{ transitions = ["terminating"] }}

[[pipeline.step]]
type = "exec"
name = "mark"
command = ["sh", "-c", "printf '%s %s\n' \"$LIFEHOOK_INSTANCE_ID\" \"$LIFEHOOK_TRANSITION\" >> marks.txt"]
"#
        ),
    )
    .unwrap();
    let mut agents = Vec::new();
    for id in &ids {
        let home = dir.path().join(id);
        std::fs::create_dir_all(&home).unwrap();
        // Each agent runs its steps in its own directory (exec steps run in the agent's
        // working directory unless told otherwise).
        let cfg = home.join("agent.toml");
        std::fs::write(
            &cfg,
            std::fs::read_to_string(&config).unwrap().replace(
                "type = \"exec\"",
                &format!("type = \"exec\"\nworking_dir = \"{}\"", home.display()),
            ),
        )
        .unwrap();
        agents.push((
            id.clone(),
            home.clone(),
            AgentProc::start(&h, id, &cfg, &home.join("state"), &home.join("agent.log")),
        ));
    }
    wait_for("every agent subscribed its inbox", LIMIT, || async {
        (subscriptions(&h, &topic).await == N).then_some(())
    })
    .await;

    h.asg
        .set_desired_capacity()
        .auto_scaling_group_name("fleet")
        .desired_capacity(0)
        .send()
        .await
        .unwrap();
    wait_for("every instance terminated", LIMIT, || async {
        instances(&h, "fleet").await.is_empty().then_some(())
    })
    .await;

    for (id, home, agent) in &agents {
        wait_for(
            &format!("agent {id} logged its completion"),
            LIMIT,
            || async {
                agent
                    .log()
                    .contains("lifecycle action completed")
                    .then_some(())
            },
        )
        .await;
        assert_eq!(
            lines(&home.join("marks.txt")),
            vec![format!("{id} autoscaling:EC2_INSTANCE_TERMINATING")],
            "the agent of {id} ran its own action once, and nothing else"
        );
        let log = agent.log();
        assert!(
            !log.contains("another instance"),
            "agent {id} saw a message that was not its own:\n{log}"
        );
    }
    // Every agent removes what it created when it stops.
    for (id, _, agent) in agents {
        let status = agent.stop().await;
        assert!(status.success(), "agent {id}: {status}");
    }
    assert_eq!(subscriptions(&h, &topic).await, 0, "subscriptions left");
    let left: Vec<String> = queue_names(&h)
        .await
        .into_iter()
        .filter(|q| q.starts_with("lifehook-agent-"))
        .collect();
    assert!(left.is_empty(), "inbox queues left: {left:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn queue_less_mode_handles_termination_through_instance_metadata() {
    let h = Harness::manual().await;
    let dir = tempfile::tempdir().unwrap();
    create_group(
        &h,
        "web",
        1,
        vec![hook("drain", TERMINATING, 300, "ABANDON", None)],
    )
    .await;
    let id = wait_for("an instance InService", LIMIT, || async {
        instances(&h, "web")
            .await
            .into_iter()
            .find(|(_, s)| s == "InService")
            .map(|(i, _)| i)
    })
    .await;
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            r#"[source]
imds = true

[agent]
imds_poll_interval = "100ms"

[[pipeline]]
name = "drain"
match = {{ hooks = ["drain"] }}
policy = {{ on_success = "continue" }}

[[pipeline.step]]
type = "exec"
name = "mark"
working_dir = "{}"
command = ["sh", "-c", "printf '%s %s %s\n' \"$LIFEHOOK_INSTANCE_ID\" \"$LIFEHOOK_HOOK\" \"$LIFEHOOK_TRANSITION\" >> marks.txt"]
"#,
            dir.path().display()
        ),
    )
    .unwrap();
    let agent = AgentProc::start(
        &h,
        &id,
        &config,
        &dir.path().join("state"),
        &dir.path().join("agent.log"),
    );
    wait_for("the agent reads InService", LIMIT, || async {
        agent
            .log()
            .contains("target lifecycle state changed")
            .then_some(())
    })
    .await;
    h.asg
        .set_desired_capacity()
        .auto_scaling_group_name("web")
        .desired_capacity(0)
        .send()
        .await
        .unwrap();
    wait_for(
        "the instance terminated (CONTINUE by instance id)",
        LIMIT,
        || async { instances(&h, "web").await.is_empty().then_some(()) },
    )
    .await;
    assert_eq!(
        lines(&dir.path().join("marks.txt")),
        vec![format!("{id} drain autoscaling:EC2_INSTANCE_TERMINATING")]
    );
    wait_for("the completion logged", LIMIT, || async {
        agent
            .log()
            .contains("lifecycle action completed")
            .then_some(())
    })
    .await;
    let status = agent.stop().await;
    assert!(status.success(), "{status}");
}

/// Scenario 5's shape: an update that needs a reboot, then the application; the agent is
/// restarted by the "reboot" and resumes at the next step with the same action.
fn patch_config(dir: &Path, endpoint: &str, instance: &str) -> PathBuf {
    let config = dir.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            r#"[agent]
reboot_command = ["curl", "-sf", "-X", "POST", "{endpoint}/_sandbox/ec2/instances/{instance}/reboot"]

[[pipeline]]
name = "patch"
match = {{ transitions = ["launching"] }}
policy = {{ on_success = "continue", on_failure = "abandon" }}

[[pipeline.step]]
type = "exec"
name = "update"
working_dir = "{dir}"
# Like `needs-restarting -r`: 100 = a reboot is required (only the first time).
command = ["sh", "-c", "echo update >> marks.txt; if [ -e updated ]; then exit 0; fi; touch updated; exit 100"]
reboot_exit_code = 100

[[pipeline.step]]
type = "exec"
name = "install"
working_dir = "{dir}"
command = ["sh", "-c", "echo install >> marks.txt; touch install-started; until [ -e release ]; do sleep 0.02; done; echo installed >> marks.txt"]
"#,
            dir = dir.display()
        ),
    )
    .unwrap();
    config
}

#[tokio::test(flavor = "multi_thread")]
async fn patch_reboot_resume_completes_the_launch_even_after_a_sigkill_mid_step() {
    let h = Harness::manual().await;
    let dir = tempfile::tempdir().unwrap();
    create_group(
        &h,
        "app",
        1,
        vec![hook("patch", LAUNCHING, 600, "ABANDON", None)],
    )
    .await;
    let id = wait_for("an instance in Pending:Wait", LIMIT, || async {
        instances(&h, "app")
            .await
            .into_iter()
            .find(|(_, s)| s == "Pending:Wait")
            .map(|(i, _)| i)
    })
    .await;
    let config = patch_config(dir.path(), &h.endpoint(), &id);
    let state = dir.path().join("state");
    let log = dir.path().join("agent.log");
    eprintln!("agent log: {}", log.display());
    let _keep = std::env::var_os("LIFEHOOK_KEEP_TEST_DIR").map(|_| dir.path().to_path_buf());

    // Boot 1: the update asks for a reboot; the agent records the next step and reboots.
    let agent = AgentProc::start(&h, &id, &config, &state, &log);
    wait_for("the instance rebooted", LIMIT, || async {
        (reboots(&h, &id).await == 1).then_some(())
    })
    .await;
    agent.kill().await; // the machine goes down

    // Boot 2: resumes at `install`; killed in the middle of it.
    let agent = AgentProc::start(&h, &id, &config, &state, &log);
    wait_for("install started", LIMIT, || async {
        dir.path().join("install-started").exists().then_some(())
    })
    .await;
    agent.kill().await;
    std::fs::remove_file(dir.path().join("install-started")).unwrap();

    // Boot 3 (a crash restart): `install` runs again, finishes, the action completes.
    let agent = AgentProc::start(&h, &id, &config, &state, &log);
    wait_for("install started again", LIMIT, || async {
        dir.path().join("install-started").exists().then_some(())
    })
    .await;
    std::fs::write(dir.path().join("release"), b"").unwrap();
    wait_for("the instance InService", LIMIT, || async {
        (instances(&h, "app").await == vec![(id.clone(), "InService".to_owned())]).then_some(())
    })
    .await;
    assert_eq!(
        lines(&dir.path().join("marks.txt")),
        vec!["update", "install", "install", "installed"],
        "update ran once, install resumed after the reboot and again after the crash"
    );
    assert_eq!(reboots(&h, &id).await, 1);
    wait_for("the completion logged", LIMIT, || async {
        agent
            .log()
            .contains("lifecycle action completed")
            .then_some(())
    })
    .await;
    let text = agent.log();
    assert!(text.contains("resuming an action in progress"), "{text}");
    assert!(text.contains("heartbeat sent; resuming"), "{text}");
    assert!(agent.stop().await.success());
    // Nothing is left in progress.
    assert_eq!(std::fs::read_dir(state.join("actions")).unwrap().count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_group_the_steps_run_and_hook_calls_are_skipped() {
    let h = Harness::manual().await;
    let dir = tempfile::tempdir().unwrap();
    let made = h
        .control_post("ec2/instances", serde_json::json!({"region": "us-east-1"}))
        .await;
    let status = made.status();
    let v: serde_json::Value = made.json().await.unwrap();
    assert!(status.is_success(), "{v}");
    let id = v["instance_id"].as_str().expect("instance id").to_owned();
    let config = patch_config(dir.path(), &h.endpoint(), &id);
    std::fs::write(dir.path().join("release"), b"").unwrap();
    let state = dir.path().join("state");
    let log = dir.path().join("agent.log");
    let agent = AgentProc::start(&h, &id, &config, &state, &log);
    wait_for("the reboot", LIMIT, || async {
        (reboots(&h, &id).await == 1).then_some(())
    })
    .await;
    agent.kill().await;
    let agent = AgentProc::start(&h, &id, &config, &state, &log);
    wait_for("the pipeline finished", LIMIT, || async {
        lines(&dir.path().join("marks.txt"))
            .contains(&"installed".to_owned())
            .then_some(())
    })
    .await;
    wait_for("the action finished", LIMIT, || async {
        agent
            .log()
            .contains("no group: skipping CompleteLifecycleAction")
            .then_some(())
    })
    .await;
    let text = agent.log();
    assert_eq!(
        text.matches("this instance is in no Auto Scaling group")
            .count(),
        2,
        "one line per start:\n{text}"
    );
    assert_eq!(
        lines(&dir.path().join("marks.txt")),
        vec!["update", "install", "installed"]
    );
    assert!(agent.stop().await.success());
}
