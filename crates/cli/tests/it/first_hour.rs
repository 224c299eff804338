//! What a newcomer meets in the first hour, kept fixed: output that survives a closed pipe,
//! and a sandbox banner that works with the AWS CLI v1 as well as v2.

use std::path::PathBuf;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::common;

fn example(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name)
        .display()
        .to_string()
}

/// `lifehook policy … | head -1` used to panic (exit 101, a backtrace on stderr) when the
/// reader closed the pipe; a closed stdout is a normal end.
#[tokio::test(flavor = "multi_thread")]
async fn a_closed_pipe_is_a_normal_end_of_output() {
    let _serial = common::serial().await;
    let minimal = example("controller-minimal.toml");
    for args in [
        vec!["policy", "--config", minimal.as_str()],
        vec!["check", minimal.as_str()],
    ] {
        let mut cmd = common::lifehook_cmd("http://127.0.0.1:1");
        let mut child = cmd
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn lifehook");
        // The reader goes away before reading anything.
        drop(child.stdout.take());
        let out = tokio::time::timeout(common::patience(), child.wait_with_output())
            .await
            .expect("lifehook finished in time")
            .expect("wait for lifehook");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(0),
            "lifehook {}: {stderr}",
            args.join(" ")
        );
        assert!(
            !stderr.contains("panicked"),
            "lifehook {}: {stderr}",
            args.join(" ")
        );
    }
}

/// The banner's `export` lines name `AWS_DEFAULT_REGION` too: the AWS CLI v1 (and boto3)
/// read only that one, and answered "You must specify a region"; and the v1 CLI, which
/// ignores `AWS_ENDPOINT_URL` for SQS, gets the endpoint through an alias.
#[tokio::test(flavor = "multi_thread")]
async fn the_sandbox_banner_sets_the_region_for_every_client() {
    let _serial = common::serial().await;
    let port = common::free_port();
    let mut child = common::lifehook_cmd("http://127.0.0.1:1")
        .args(["sandbox", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the sandbox");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    // The banner up to its last line, the AWS CLI v1's endpoint alias.
    let export = tokio::time::timeout(common::patience(), async {
        let mut banner = String::new();
        while let Ok(Some(l)) = lines.next_line().await {
            banner.push_str(&l);
            banner.push('\n');
            if l.contains("alias aws=") {
                break;
            }
        }
        banner
    })
    .await
    .expect("the banner in time");
    assert!(
        export.contains(&format!(
            "alias aws='aws --endpoint-url http://127.0.0.1:{port}'"
        )),
        "{export}"
    );
    assert!(export.lines().all(|l| l.chars().count() <= 80), "{export}");
    for var in [
        "AWS_ENDPOINT_URL=",
        "AWS_REGION=us-east-1",
        "AWS_DEFAULT_REGION=us-east-1",
        "AWS_ACCESS_KEY_ID=",
        "AWS_SECRET_ACCESS_KEY=",
    ] {
        assert!(export.contains(var), "{var} missing from: {export}");
    }
    let _ = child.kill().await;
    let out = child
        .wait_with_output()
        .await
        .expect("the sandbox's output");
    let said = |text: &[u8]| String::from_utf8_lossy(text).matches("listening").count();
    // The banner says it once; the log does not say it again.
    assert_eq!(
        said(&out.stderr),
        0,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every subcommand that reads a configuration takes it the same way: `--config FILE`,
/// `-c FILE` or `LIFEHOOK_CONFIG` (and `check` also as its one argument, `-` for standard
/// input), and names the value `FILE` in its help.
#[tokio::test(flavor = "multi_thread")]
async fn every_subcommand_takes_the_configuration_the_same_way() {
    let _serial = common::serial().await;
    let minimal = example("controller-minimal.toml");
    for args in [
        vec!["check", "--config", minimal.as_str()],
        vec!["check", "-c", minimal.as_str()],
        vec!["check", minimal.as_str()],
        vec!["policy", "-c", minimal.as_str(), "--mode", "controller"],
    ] {
        let out = common::lifehook_cmd("http://127.0.0.1:1")
            .args(&args)
            .output()
            .await
            .expect("run lifehook");
        assert_eq!(
            out.status.code(),
            Some(0),
            "lifehook {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for sub in ["check", "policy"] {
        let out = common::lifehook_cmd("http://127.0.0.1:1")
            .arg(sub)
            .env("LIFEHOOK_CONFIG", &minimal)
            .output()
            .await
            .expect("run lifehook");
        assert_eq!(out.status.code(), Some(0), "{sub} with LIFEHOOK_CONFIG");
    }
    for sub in ["check", "policy", "setup", "controller", "agent", "lambda"] {
        let out = common::lifehook_cmd("http://127.0.0.1:1")
            .args([sub, "--help"])
            .output()
            .await
            .expect("run lifehook");
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(help.contains("--config <FILE>"), "{sub} --help: {help}");
        assert!(help.contains("LIFEHOOK_CONFIG"), "{sub} --help: {help}");
    }
}

/// `--version` names the commit the binary was built from: a commit of this repository
/// (`unknown` only outside a git checkout).
#[tokio::test(flavor = "multi_thread")]
async fn the_version_names_the_commit() {
    let _serial = common::serial().await;
    let out = common::lifehook_cmd("http://127.0.0.1:1")
        .arg("--version")
        .output()
        .await
        .expect("run lifehook");
    let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let prefix = format!("lifehook {} (", env!("CARGO_PKG_VERSION"));
    let commit = version
        .strip_prefix(&prefix)
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("not `{prefix}COMMIT)`: {version}"));
    let in_git = std::process::Command::new("git")
        .args(["rev-parse", "--git-dir"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .is_ok_and(|o| o.status.success());
    if !in_git {
        assert_eq!(commit, "unknown");
        return;
    }
    assert!(
        commit.len() == 12 && commit.chars().all(|c| c.is_ascii_hexdigit()),
        "{version}"
    );
    let known = std::process::Command::new("git")
        .args(["cat-file", "-e", &format!("{commit}^{{commit}}")])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("git");
    assert!(
        known.success(),
        "{commit} is not a commit of this repository"
    );
}
