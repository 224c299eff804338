//! The systemd unit that runs `lifehook agent` on instances (`packaging/`): it names the
//! agent's real flags and environment, keeps the semantics the reboot and crash handling
//! rely on, and passes `systemd-analyze verify` where that tool is installed.

use std::path::{Path, PathBuf};
use std::process::Command;

fn packaging(name: &str) -> (PathBuf, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../packaging")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("packaging file");
    (path, text)
}

/// `KEY=VALUE` lines of `[section]`.
fn settings(unit: &str, section: &str) -> Vec<(String, String)> {
    let mut current = String::new();
    let mut out = Vec::new();
    for line in unit.lines().map(str::trim) {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = s.to_owned();
            continue;
        }
        if current == section
            && let Some((k, v)) = line.split_once('=')
        {
            out.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    out
}

fn get<'a>(s: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    s.iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

#[test]
fn the_agent_unit_runs_the_real_agent_with_the_semantics_it_relies_on() {
    let (_, unit) = packaging("lifehook-agent.service");
    let u = settings(&unit, "Unit");
    let s = settings(&unit, "Service");
    let i = settings(&unit, "Install");
    assert!(get(&u, "After").contains(&"network-online.target"));
    assert!(get(&u, "Wants").contains(&"network-online.target"));
    assert_eq!(get(&i, "WantedBy"), ["multi-user.target"], "starts at boot");
    assert_eq!(get(&s, "Restart"), ["always"]);
    assert_eq!(
        get(&s, "KillMode"),
        ["control-group"],
        "step processes die with the agent, as on a reboot"
    );
    assert_eq!(get(&s, "StateDirectory"), ["lifehook"]);
    let exec = get(&s, "ExecStart");
    assert_eq!(exec.len(), 1);
    let argv: Vec<&str> = exec[0].split_whitespace().collect();
    assert_eq!(
        argv,
        [
            "/usr/local/bin/lifehook",
            "agent",
            "--config",
            "${LIFEHOOK_CONFIG}",
            "--state-dir",
            "${LIFEHOOK_STATE_DIR}"
        ]
    );
    let env = get(&s, "Environment");
    assert!(
        env.contains(&"LIFEHOOK_CONFIG=/etc/lifehook/agent.toml"),
        "{env:?}"
    );
    assert!(
        env.contains(&"LIFEHOOK_STATE_DIR=/var/lib/lifehook"),
        "{env:?}"
    );

    // Every flag and LIFEHOOK_* variable the unit and its environment file name is one the
    // binary knows.
    let help = Command::new(env!("CARGO_BIN_EXE_lifehook"))
        .args(["agent", "--help"])
        .output()
        .expect("lifehook agent --help");
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    for flag in argv.iter().filter(|a| a.starts_with("--")) {
        assert!(help.contains(flag), "{flag} is not an agent flag:\n{help}");
    }
    let (_, envfile) = packaging("lifehook-agent.env");
    let mut named: Vec<String> = env
        .iter()
        .map(|e| e.split('=').next().unwrap().to_owned())
        .collect();
    for line in envfile.lines() {
        let l = line.trim_start_matches('#').trim();
        if let Some((k, _)) = l.split_once('=')
            && k.starts_with("LIFEHOOK_")
            && !k.contains(' ')
        {
            named.push(k.to_owned());
        }
    }
    assert!(
        named.iter().any(|k| k == "LIFEHOOK_GRACE_SECONDS"),
        "{named:?}"
    );
    for k in named {
        let logging = k == "LIFEHOOK_LOG" || k == "LIFEHOOK_LOG_FORMAT";
        assert!(
            logging || help.contains(&format!("[env: {k}=")),
            "{k} is not read by `lifehook agent`:\n{help}"
        );
    }
}

#[test]
fn the_agent_unit_passes_systemd_analyze_verify() {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("systemd-analyze").is_file()));
    if !found {
        eprintln!("skipped: systemd-analyze is not on PATH");
        return;
    }
    let (_, unit) = packaging("lifehook-agent.service");
    // verify checks that the executable exists: point ExecStart at the built binary.
    let bin = env!("CARGO_BIN_EXE_lifehook");
    assert!(unit.contains("ExecStart=/usr/local/bin/lifehook "));
    let unit = unit.replace(
        "ExecStart=/usr/local/bin/lifehook ",
        &format!("ExecStart={bin} "),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lifehook-agent.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("systemd-analyze");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "systemd-analyze verify failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    // Unknown or malformed settings are warnings with exit code 0: none may name the unit.
    let ours: Vec<&str> = stderr
        .lines()
        .chain(stdout.lines())
        .filter(|l| l.contains("lifehook-agent.service"))
        .collect();
    assert!(
        ours.is_empty(),
        "systemd-analyze verify warns:\n{}",
        ours.join("\n")
    );
    eprintln!("systemd-analyze verify: OK");
}
