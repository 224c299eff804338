//! The exit-code contract of `lifehook` (`crates/cli/src/exit.rs`, the README): 0 success,
//! 1 runtime failure, 2 usage or configuration error — for every subcommand, through the
//! one place in `main` that exits. Each case runs the real binary.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Output;

use crate::common;

fn example(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name)
        .display()
        .to_string()
}

/// Runs `lifehook <args>` with fake credentials, a region and an endpoint nothing
/// listens on (port 1 of loopback: connections are refused at once).
async fn run(args: &[&str]) -> Output {
    let mut cmd = common::lifehook_cmd("http://127.0.0.1:1");
    cmd.args(args).env("LIFEHOOK_LOG", "error");
    tokio::time::timeout(common::patience(), cmd.output())
        .await
        .expect("lifehook finished in time")
        .expect("run lifehook")
}

fn assert_code(out: &Output, code: i32, args: &[&str]) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "lifehook {}\nstdout: {}\nstderr: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn exit_0_on_success() {
    let _serial = common::serial().await;
    let minimal = example("controller-minimal.toml");
    for args in [
        vec!["--help"],
        vec!["--version"],
        vec!["check", &minimal],
        vec!["policy", "--config", &minimal, "--mode", "controller"],
    ] {
        assert_code(&run(&args).await, 0, &args);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn exit_2_on_usage_and_configuration_errors() {
    let _serial = common::serial().await;
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, "[[pipeline]]\nname = 3\n").unwrap();
    let broken = broken.display().to_string();
    let agent = example("agent-ship-logs.toml");
    let no_setup = example("controller-local.toml");
    let minimal = example("controller-minimal.toml");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["no-such-command"], "unrecognized subcommand"),
        (vec!["check", &broken], "problem(s) found"),
        (vec!["controller", "--config", &broken], "problem(s) in"),
        (
            vec!["agent", "--config", &agent, "--admin-listen", "nope"],
            "--admin-listen",
        ),
        (vec!["setup", "--config", &no_setup], "no [setup] section"),
        (
            vec!["policy", "--config", &minimal, "--mode", "bogus"],
            "--mode",
        ),
        (vec!["lambda", "--config", &broken], "problem(s) in"),
        (vec!["demo", "--scenario", "9"], "there is no scenario 9"),
        (vec!["complete", "--group", "web"], "required"),
        // A configuration with nothing for the controller to read.
        (vec!["controller", "--config", &agent], "set `queue_url`"),
        (
            vec![
                "sandbox",
                "--listen",
                "127.0.0.1:0",
                "--enforce-policy",
                "/nonexistent/policy.json",
            ],
            "--enforce-policy /nonexistent/policy.json",
        ),
    ];
    for (args, says) in cases {
        let out = run(&args).await;
        assert_code(&out, 2, &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(says),
            "lifehook {}: {stderr}",
            args.join(" ")
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn exit_1_on_runtime_failures() {
    let _serial = common::serial().await;
    // An address already taken.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let minimal = example("controller-minimal.toml");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["sandbox", "--listen", &addr], "cannot listen on"),
        // Auto Scaling cannot be reached: the call fails (after the SDK's retries).
        (
            vec![
                "heartbeat",
                "--group",
                "web",
                "--hook",
                "h",
                "--instance-id",
                "i-1",
            ],
            "check the endpoint",
        ),
        (
            vec!["setup", "--config", &minimal, "--dry-run"],
            "reading what exists",
        ),
    ];
    for (args, says) in cases {
        let out = run(&args).await;
        assert_code(&out, 1, &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(says),
            "lifehook {}: {stderr}",
            args.join(" ")
        );
        // Users get Display with what to check, not Rust's Debug dumps.
        for dump in ["DispatchFailure(", "ConnectorError {", "Os { code"] {
            assert!(
                !stderr.contains(dump),
                "lifehook {}: {stderr}",
                args.join(" ")
            );
        }
    }
    drop(taken);
}
