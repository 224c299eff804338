//! `s3-upload`: PutObject of files (paths or globs) to `s3://bucket/key`, the key rendered
//! for each file with `{{ file_name }}`.
//!
//! Uploading again writes the same keys, so a second run is harmless. Every file is tried;
//! the step fails (naming each failed file) if any upload fails.

use std::collections::BTreeMap;
use std::path::PathBuf;

use lifehook_core::config::{IfMissing, S3UploadStep};
use lifehook_core::step::{Failure, Success};

use super::{Cx, done};

pub(crate) async fn run(
    s3: &aws_sdk_s3::Client,
    cx: &Cx<'_>,
    u: &S3UploadStep,
) -> Result<Success, Failure> {
    let bucket = cx.render(&u.bucket)?;
    let mut files: Vec<PathBuf> = Vec::new();
    let mut missing: Vec<String> = Vec::new();
    for pattern in &u.files {
        let pattern = cx.render(pattern)?;
        let found = expand(&pattern)
            .map_err(|e| Failure::fatal(format!("{}: `files` {pattern:?}: {e}", cx.who())))?;
        if found.is_empty() {
            missing.push(pattern);
        }
        for f in found {
            if !files.contains(&f) {
                files.push(f);
            }
        }
    }
    if !missing.is_empty() && u.if_missing == IfMissing::Fail {
        return Err(Failure::fatal(format!(
            "{}: no file matches {} (if_missing = \"fail\")",
            cx.who(),
            missing
                .iter()
                .map(|m| format!("{m:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    // Keys first: two files for one key would silently overwrite each other.
    let mut keys: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut plan = Vec::new();
    for f in files {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let key = u
            .key
            .render_file(&cx.env.template, &name)
            .map_err(|e| Failure::fatal(format!("{}: {e}", cx.who())))?;
        if key.is_empty() {
            return Err(Failure::fatal(format!(
                "{}: the key of {} is empty",
                cx.who(),
                f.display()
            )));
        }
        if let Some(other) = keys.insert(key.clone(), f.clone()) {
            return Err(Failure::fatal(format!(
                "{}: {} and {} would both be uploaded to s3://{bucket}/{key}: put more of the path in `key`",
                cx.who(),
                other.display(),
                f.display()
            )));
        }
        plan.push((f, key));
    }
    let mut uploaded = Vec::new();
    let mut failures: Vec<Failure> = Vec::new();
    for (f, key) in &plan {
        let url = format!("s3://{bucket}/{key}");
        let body = match aws_sdk_s3::primitives::ByteStream::from_path(f).await {
            Ok(b) => b,
            Err(e) => {
                // Gone between the listing and now (rotated logs): as if missing.
                if !f.exists() && u.if_missing == IfMissing::Ok {
                    missing.push(f.display().to_string());
                    continue;
                }
                failures.push(Failure::retry(format!(
                    "{}: reading {}: {e}",
                    cx.who(),
                    f.display()
                )));
                continue;
            }
        };
        match s3
            .put_object()
            .bucket(&bucket)
            .key(key)
            .body(body)
            .send()
            .await
        {
            Ok(_) => uploaded.push(url),
            Err(e) => failures.push(cx.api(&format!("PutObject {} to {url}", f.display()), &e)),
        }
    }
    if !failures.is_empty() {
        let retryable = failures.iter().all(|f| f.retryable);
        let message = format!(
            "{} of {} upload(s) failed: {}",
            failures.len(),
            plan.len(),
            failures
                .iter()
                .map(|f| f.message.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        );
        return Err(if retryable {
            Failure::retry(message)
        } else {
            Failure::fatal(message)
        });
    }
    let mut detail = format!("uploaded {} file(s)", uploaded.len());
    if !uploaded.is_empty() {
        detail.push_str(": ");
        detail.push_str(&uploaded.join(", "));
    }
    if !missing.is_empty() {
        detail.push_str(&format!("; nothing matched {}", missing.join(", ")));
    }
    Ok(done(detail))
}

/// The regular files a path or glob names, sorted.
fn expand(pattern: &str) -> Result<Vec<PathBuf>, String> {
    if !pattern.contains(['*', '?', '[']) {
        let p = PathBuf::from(pattern);
        return Ok(if p.is_file() { vec![p] } else { Vec::new() });
    }
    let mut out: Vec<PathBuf> = glob::glob(pattern)
        .map_err(|e| format!("bad glob: {e}"))?
        .filter_map(Result::ok)
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expand_paths_and_globs() {
        let d = tempfile_dir();
        std::fs::write(d.join("a.log"), "a").unwrap();
        std::fs::write(d.join("b.log"), "b").unwrap();
        std::fs::write(d.join("c.txt"), "c").unwrap();
        std::fs::create_dir(d.join("dir.log")).unwrap();
        let g = expand(&format!("{}/*.log", d.display())).unwrap();
        assert_eq!(g, vec![d.join("a.log"), d.join("b.log")]);
        assert_eq!(
            expand(&d.join("c.txt").display().to_string()).unwrap(),
            vec![d.join("c.txt")]
        );
        assert!(expand(&format!("{}/*.gz", d.display())).unwrap().is_empty());
        assert!(
            expand(&d.join("nope").display().to_string())
                .unwrap()
                .is_empty()
        );
        assert!(expand("/tmp/[").is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "lifehook-upload-test-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
