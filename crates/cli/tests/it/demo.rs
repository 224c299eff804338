//! `lifehook demo` as a newcomer runs it: the real binary, everything in-process, no AWS
//! account and no AWS environment.

use crate::common;

fn demo() -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_lifehook"));
    // No AWS variables at all: the demo configures its clients in code.
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AWS_CONFIG_FILE", "/nonexistent/lifehook-test-config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/lifehook-test-credentials",
        )
        .arg("demo")
        .kill_on_drop(true);
    cmd
}

async fn run(cmd: &mut tokio::process::Command) -> (Option<i32>, String, String) {
    let out = tokio::time::timeout(common::patience(), cmd.output())
        .await
        .expect("the demo finished in time")
        .expect("the demo ran");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The summary row of scenario `n`: `"2. deregister ...   PASS"`.
fn scenario_row(stdout: &str, n: u32) -> String {
    let summary = stdout
        .split("== Summary")
        .nth(1)
        .unwrap_or_else(|| panic!("no summary:\n{stdout}"));
    summary
        .lines()
        .find(|l| l.starts_with(&format!("{n}. ")))
        .unwrap_or_else(|| panic!("no row for scenario {n}:\n{summary}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_runs_every_available_scenario_and_passes() {
    let _serial = common::serial().await;
    let (code, stdout, stderr) = run(&mut demo()).await;
    assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    for n in 1..=5 {
        let row = scenario_row(&stdout, n);
        assert!(row.trim_end().ends_with("PASS"), "scenario {n}: {row}");
    }
    assert!(!stdout.contains("FAIL"), "{stdout}");
    // Not a terminal: plain text.
    assert!(!stdout.contains('\x1b'), "no escape sequences when piped");
    // The live progress shows the registry calls and the chat message.
    assert!(stdout.contains("status?value=OUT_OF_SERVICE"), "{stdout}");
    assert!(stdout.contains("chat      message posted"), "{stdout}");
    assert!(stdout.contains("Pending:Wait → InService"), "{stdout}");
    // Scenario 5: the reboot and the resume after it.
    assert!(stdout.contains("a reboot is required"), "{stdout}");
    assert!(
        stdout.contains("boot 2: starting the agent again"),
        "{stdout}"
    );
    // Scenario 1: the victim's agent shipped its logs; scenario 4: the tasks moved.
    assert!(
        stdout.contains("s3://lifehook-demo-logs/logs/demo-logs/i-"),
        "{stdout}"
    );
    assert!(stdout.contains(": nothing"), "{stdout}");
    // Scenario 3: the scale-in victim's AMI.
    assert!(stdout.contains("AMI ami-"), "{stdout}");
    // Issue 15, the demo for a person watching it. Lines are wrapped to the terminal:
    // phrases are looked for in the text with its line breaks undone.
    let flat = stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    // In order 1 to 5:
    let headings: Vec<usize> = (1..=5)
        .map(|n| {
            stdout
                .find(&format!("== Scenario {n}:"))
                .unwrap_or_else(|| panic!("no heading for scenario {n}:\n{stdout}"))
        })
        .collect();
    assert!(headings.windows(2).all(|w| w[0] < w[1]), "{headings:?}");
    // The agents' steps as they end (1: s3-fetch, exec, s3-upload; 5: the update asking
    // for a reboot, then the install after it).
    for step in [
        "step fetch-script (s3-fetch) ok",
        "step run-script (exec) ok",
        "step upload-logs (s3-upload) ok",
        "step update (exec) asks for a reboot",
        "step install-app (exec) ok",
    ] {
        assert!(flat.contains(step), "{step}:\n{flat}");
    }
    // A failed step is the demo's line, not a raw log line.
    assert!(flat.contains("step healthy (probe) failed after"), "{flat}");
    assert!(!stderr.contains("step finished"), "{stderr}");
    // Per action: the result sent and who gave it, the pipeline and the heartbeats.
    assert!(
        flat.contains("done: ABANDON by the handler (pipeline launch-gate,"),
        "{flat}"
    );
    assert!(
        flat.contains("done: CONTINUE by the handler (pipeline ecs-drain,"),
        "{flat}"
    );
    // Which clock: wall-clock stamps, sandbox-clock deadlines, said once at the top.
    assert!(
        flat.contains("is wall-clock time since the demo started"),
        "{flat}"
    );
    assert!(flat.contains("on the sandbox clock"), "{flat}");
    // How to run each scenario yourself, and the IAM actions its handler needed.
    for (n, file) in [
        (1, "examples/demo-ship-logs.toml"),
        (2, "examples/demo-deregister.toml"),
        (3, "examples/demo-launch-gate.toml"),
        (4, "examples/demo-ecs-drain.toml"),
        (5, "examples/demo-patch-reboot.toml"),
    ] {
        assert!(
            flat.contains(&format!("(docs/demo.md, scenario {n})")),
            "{n}:\n{flat}"
        );
        assert!(flat.contains(file), "{file}:\n{flat}");
    }
    assert!(flat.contains("IAM it needed"), "{flat}");
    assert!(flat.contains("ecs:UpdateContainerInstancesState"), "{flat}");
    // It fits an 80-column terminal (one word longer than a line may not: none here).
    let wide: Vec<&str> = stdout.lines().filter(|l| l.chars().count() > 80).collect();
    assert!(wide.is_empty(), "lines wider than 80 columns: {wide:#?}");
    assert!(
        stdout.contains("All scenarios run (1, 2, 3, 4, 5) passed"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn one_scenario_can_be_run_alone() {
    let _serial = common::serial().await;
    let (code, stdout, stderr) = run(demo().args(["--scenario", "2"])).await;
    assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(scenario_row(&stdout, 2).trim_end().ends_with("PASS"));
    assert!(
        !stdout.contains("launch gate"),
        "only scenario 2 ran: {stdout}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_list_of_scenarios_runs_those_in_order() {
    let _serial = common::serial().await;
    let (code, stdout, stderr) = run(demo().args(["--scenario", "5,1"])).await;
    assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let one = stdout.find("== Scenario 1:").expect("scenario 1 ran");
    let five = stdout.find("== Scenario 5:").expect("scenario 5 ran");
    assert!(one < five, "{stdout}");
    for n in [2, 3, 4] {
        assert!(
            !stdout.contains(&format!("== Scenario {n}:")),
            "{n} did not run: {stdout}"
        );
    }
    assert!(
        stdout.contains("All scenarios run (1, 5) passed"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_scenario_is_a_usage_error() {
    let _serial = common::serial().await;
    let (code, stdout, stderr) = run(demo().args(["--scenario", "99"])).await;
    assert_eq!(code, Some(2), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stderr.contains("there is no scenario 99"), "{stderr}");
}
