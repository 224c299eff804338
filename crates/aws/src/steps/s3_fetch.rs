//! `s3-fetch`: GetObject `s3://bucket/key` to a local file.
//!
//! The object is streamed to a temporary file next to the destination while its SHA-256
//! is computed; only when it is complete (and matches `sha256`, when given) is it given
//! its mode and renamed over the destination. A reader never sees half a script, and a
//! second run simply fetches it again.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use lifehook_core::config::{DEFAULT_FILE_MODE, S3FetchStep};
use lifehook_core::step::{Failure, Success};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt as _;

use super::{Cx, done, hex};

pub(crate) async fn run(
    s3: &aws_sdk_s3::Client,
    cx: &Cx<'_>,
    f: &S3FetchStep,
) -> Result<Success, Failure> {
    let bucket = cx.render(&f.bucket)?;
    let key = cx.render(&f.key)?;
    let path = PathBuf::from(cx.render(&f.path)?);
    let url = format!("s3://{bucket}/{key}");
    let out = s3
        .get_object()
        .bucket(&bucket)
        .key(&key)
        .send()
        .await
        .map_err(|e| cx.api(&format!("GetObject {url}"), &e))?;
    let mode = match f.mode {
        Some(m) => m,
        // An existing file keeps its mode.
        None => tokio::fs::metadata(&path)
            .await
            .map(|m| m.permissions().mode() & 0o7777)
            .unwrap_or(DEFAULT_FILE_MODE),
    };
    let tmp = temp_path(&path)?;
    // Missing parent directories are created, as the `file` step does (like `install -D`).
    if let Some(dir) = tmp.parent().filter(|d| !d.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| io_failure(cx, "creating the directory", dir, e))?;
    }
    let result = async {
        let mut file = tokio::fs::File::create(&tmp)
            .await
            .map_err(|e| io_failure(cx, "creating", &tmp, e))?;
        let mut hasher = Sha256::new();
        let mut len = 0u64;
        let mut body = out.body;
        while let Some(chunk) = body.next().await {
            let chunk =
                chunk.map_err(|e| Failure::retry(format!("{}: reading {url}: {e}", cx.who())))?;
            hasher.update(&chunk);
            len += chunk.len() as u64;
            file.write_all(&chunk)
                .await
                .map_err(|e| io_failure(cx, "writing", &tmp, e))?;
        }
        let got = hex(&hasher.finalize());
        if let Some(want) = &f.sha256
            && *want != got
        {
            return Err(Failure::fatal(format!(
                "{}: the SHA-256 of {url} is {got}, expected {want}: {} left unchanged",
                cx.who(),
                path.display()
            )));
        }
        file.set_permissions(std::fs::Permissions::from_mode(mode))
            .await
            .map_err(|e| io_failure(cx, "setting the mode of", &tmp, e))?;
        file.sync_all()
            .await
            .map_err(|e| io_failure(cx, "syncing", &tmp, e))?;
        drop(file);
        tokio::fs::rename(&tmp, &path)
            .await
            .map_err(|e| io_failure(cx, "renaming onto", &path, e))?;
        Ok(done(format!(
            "fetched {url} ({len} bytes, sha256 {got}) to {} (mode {mode:04o})",
            path.display()
        )))
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&tmp).await;
    }
    result
}

/// A hidden temporary name in the destination's directory (so the rename is atomic).
pub(crate) fn temp_path(path: &Path) -> Result<PathBuf, Failure> {
    let name = path
        .file_name()
        .ok_or_else(|| Failure::fatal(format!("{} is not a file path", path.display())))?;
    Ok(path.with_file_name(format!(
        ".{}.lifehook-{}-{:08x}",
        name.to_string_lossy(),
        std::process::id(),
        rand_u32()
    )))
}

fn rand_u32() -> u32 {
    // No RNG dependency here: the time and a counter are unique enough for a temp name
    // that is also created exclusively by a single writer.
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    t ^ N.fetch_add(1, Ordering::Relaxed).rotate_left(16)
}

/// A missing directory or a permission problem is fatal; other I/O errors retryable.
fn io_failure(cx: &Cx<'_>, what: &str, path: &Path, e: std::io::Error) -> Failure {
    let m = format!("{}: {what} {}: {e}", cx.who(), path.display());
    match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => Failure::fatal(m),
        _ => Failure::retry(m),
    }
}
