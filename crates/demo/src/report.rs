//! `lifehook demo --report FILE`: the run's timeline — one lane per instance, a mark for
//! every heartbeat and every action's end with its result and who gave it — written as
//! one self-contained HTML file (inline SVG, no script, no external URL) that opens
//! offline. The sandbox draws it (`lifehook_sandbox::Sandbox::timeline_report`, the same
//! picture as its web view and `GET /_sandbox/report`).

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::DemoError;

/// Checks before the run that the report can be written where asked: its directory
/// exists and the path is not a directory. A usage error otherwise, so a wrong path does
/// not cost a whole run.
pub(crate) fn check_path(path: &Path) -> Result<PathBuf, DemoError> {
    if path.as_os_str().is_empty() {
        return Err(DemoError::Usage("--report needs a file name".into()));
    }
    if path.is_dir() {
        return Err(DemoError::Usage(format!(
            "--report {}: is a directory; give a file name, e.g. {}",
            path.display(),
            path.join("run.html").display()
        )));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(DemoError::Usage(format!(
            "--report {}: directory {} does not exist",
            path.display(),
            dir.display()
        )));
    }
    Ok(path.to_path_buf())
}

/// Writes the timeline of everything the sandbox recorded for scenarios `run`.
pub(crate) fn write(
    sandbox: &lifehook_sandbox::Sandbox,
    path: &Path,
    run: &[u32],
) -> anyhow::Result<()> {
    let list: Vec<String> = run.iter().map(u32::to_string).collect();
    let title = format!("lifehook demo: scenario(s) {}", list.join(", "));
    let html = sandbox.timeline_report(&title);
    std::fs::write(path, html)
        .with_context(|| format!("cannot write the report {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_directory_or_a_directory_is_a_usage_error() {
        let dir = std::env::temp_dir();
        assert!(
            matches!(check_path(&dir), Err(DemoError::Usage(m)) if m.contains("is a directory"))
        );
        let missing = dir.join("lifehook-no-such-dir").join("run.html");
        assert!(
            matches!(check_path(&missing), Err(DemoError::Usage(m)) if m.contains("does not exist"))
        );
        assert!(check_path(Path::new("run.html")).is_ok());
        assert!(check_path(&dir.join("run.html")).is_ok());
    }
}
