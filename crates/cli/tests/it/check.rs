//! Black-box tests of `lifehook check CONFIG`: the real binary on real files.

use std::path::Path;
use std::process::Command;

fn check(path: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_lifehook"))
        .arg("check")
        .arg(path)
        .env_remove("LIFEHOOK_QUEUE_URL")
        .env_remove("LIFEHOOK_CONCURRENCY")
        .env_remove("LIFEHOOK_VISIBILITY_TIMEOUT")
        .env_remove("LIFEHOOK_IMDS")
        .output()
        .expect("run lifehook")
}

#[test]
fn valid_example_exits_0_with_a_summary() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/controller-minimal.toml");
    let out = check(&path);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(": OK"), "{stdout}");
    assert!(stdout.contains("web-terminate"), "{stdout}");
}

#[test]
fn every_example_is_accepted() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("examples/") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let out = check(&path);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: stdout: {}\nstderr: {}",
            path.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        seen.push(path.file_name().unwrap().to_string_lossy().into_owned());
    }
    for name in ["agent-ship-logs.toml", "agent-patch-reboot.toml"] {
        assert!(seen.iter().any(|s| s == name), "{name} missing: {seen:?}");
    }
    let out = check(&dir.join("agent-ship-logs.toml"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("SNS arn:aws:sns:"), "{stdout}");
}

#[test]
fn invalid_file_exits_2_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        r#"[source]
concurrency = 0

[[pipeline]]
name = "p"
[[pipeline.step]]
type = "shell"
"#,
    )
    .unwrap();
    let out = check(&path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let p = path.display().to_string();
    assert!(
        stderr.contains(&format!("{p}:2:15: `concurrency` = 0 is out of range")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{p}:7:8: unknown step type \"shell\"")),
        "{stderr}"
    );
    assert!(stderr.contains("2 problem(s)"), "{stderr}");
}

#[test]
fn syntax_error_exits_2_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("syntax.toml");
    std::fs::write(
        &path,
        "[[pipeline]]\nname = \"p\"\nmatch = { groups = [\"a\" }\n",
    )
    .unwrap();
    let out = check(&path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with(&format!("{}:3:", path.display())),
        "{stderr}"
    );
}

#[test]
fn missing_file_exits_2() {
    let out = check(Path::new("/nonexistent/lifehook.toml"));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
}

#[test]
fn dash_reads_standard_input() {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_lifehook"))
        .args(["check", "-"])
        .env_remove("LIFEHOOK_QUEUE_URL")
        .env_remove("LIFEHOOK_CONCURRENCY")
        .env_remove("LIFEHOOK_VISIBILITY_TIMEOUT")
        .env_remove("LIFEHOOK_IMDS")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run lifehook");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"[sorce]\n[[pipeline]]\nname = \"p\"\n[[pipeline.step]]\ntype = \"wait\"\n")
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait for lifehook");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr
            .contains("<stdin>:1:2: unknown key `sorce` at the top level; did you mean `source`?"),
        "{stderr}"
    );
    assert!(stderr.contains("<stdin>: 1 problem(s) found"), "{stderr}");
}

#[cfg(unix)]
#[test]
fn endless_input_is_refused_unread() {
    let out = check(Path::new("/dev/zero"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("/dev/zero: configuration larger than 1 MiB"),
        "{stderr}"
    );
}
