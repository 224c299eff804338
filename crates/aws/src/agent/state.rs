//! The agent's state directory: the lifecycle actions it is working on, persisted after
//! every step so that a reboot (or a crash) resumes them at the next step, and a record of
//! the actions it finished so that a redelivered message is recognised.
//!
//! Layout under `state_dir` (created with mode 0700):
//! - `actions/<key>.json` — one [`Record`] per action in progress;
//! - `done/<key>` — an empty marker per finished action (pruned after 48 hours, the
//!   longest a lifecycle action can live, spec §2.4).
//!
//! Every write is atomic: a temporary file in the same directory, fsynced, then renamed
//! over the old one, so a power cut leaves either the old or the new record.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use lifehook_model::LifecycleEvent;
use serde::{Deserialize, Serialize};

/// How long "done" markers are kept: the longest life of a lifecycle action.
const DONE_RETENTION: Duration = Duration::from_secs(48 * 3600);

/// One action in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The action's key ([`action_key`]).
    pub key: String,
    pub event: LifecycleEvent,
    /// The pipeline running it (by name; if the configuration changed and it is gone, the
    /// action is routed again).
    pub pipeline: String,
    /// The first step not yet known to have succeeded.
    pub next_step: usize,
    /// When the wait started, milliseconds since the epoch (deadlines are computed from it).
    pub started_at_ms: u64,
    /// Reboots so far for this action.
    pub reboots: u32,
    /// Whether the agent is not in a group: steps run, hook calls are skipped.
    pub no_group: bool,
}

impl Record {
    pub fn started_at(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(self.started_at_ms)
    }
}

/// The key of an action: its token when it has one, else group, hook, instance and
/// transition (actions found through metadata or DescribeAutoScalingInstances have no
/// token). Only `[A-Za-z0-9._-]` survive, so the key is a safe file name.
pub fn action_key(event: &LifecycleEvent) -> String {
    let raw = if event.token.is_empty() {
        format!(
            "{}.{}.{}.{}",
            event.group,
            event.hook,
            event.instance_id,
            event.transition.as_str()
        )
    } else {
        event.token.clone()
    };
    let mut key: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if key.starts_with('.') {
        key.insert(0, '_');
    }
    key.truncate(200);
    key
}

/// Why the state directory could not be used.
#[derive(Debug, thiserror::Error)]
#[error("state directory {path}: {what}: {source}")]
pub struct StateError {
    pub path: PathBuf,
    pub what: &'static str,
    #[source]
    pub source: std::io::Error,
}

/// The state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// Opens (creating) `root` and its subdirectories.
    pub fn open(root: &Path) -> Result<StateDir, StateError> {
        for dir in [root.to_path_buf(), root.join("actions"), root.join("done")] {
            create_private_dir(&dir).map_err(|source| StateError {
                path: dir.clone(),
                what: "cannot create",
                source,
            })?;
        }
        let s = StateDir {
            root: root.to_path_buf(),
        };
        s.prune_done();
        s.remove_stale_temporaries();
        Ok(s)
    }

    /// Removes the temporary files of [`write_atomic`] that a process killed mid-write
    /// left behind (nothing of this process is being written yet when it opens the
    /// directory).
    fn remove_stale_temporaries(&self) {
        for dir in [self.root.join("actions"), self.root.join("done")] {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name();
                let name = name.to_string_lossy();
                if name.starts_with('.') && name.contains(".tmp.") {
                    tracing::info!(path = %e.path().display(), "removing a temporary file left by an interrupted write");
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn record_path(&self, key: &str) -> PathBuf {
        self.root.join("actions").join(format!("{key}.json"))
    }

    fn done_path(&self, key: &str) -> PathBuf {
        self.root.join("done").join(key)
    }

    /// Persists `record` atomically.
    pub fn save(&self, record: &Record) -> Result<(), StateError> {
        let path = self.record_path(&record.key);
        let body = serde_json::to_vec_pretty(record).map_err(|e| StateError {
            path: path.clone(),
            what: "cannot encode",
            source: std::io::Error::other(e),
        })?;
        write_atomic(&path, &body).map_err(|source| StateError {
            path,
            what: "cannot write",
            source,
        })
    }

    /// Every action in progress. A record that cannot be read is renamed to `*.bad` with a
    /// log line (never a crash, never the same failure at every start).
    pub fn load_all(&self) -> Vec<Record> {
        let dir = self.root.join("actions");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for e in entries.flatten() {
            let path = e.path();
            if path.extension().and_then(|x| x.to_str()) != Some("json") {
                continue;
            }
            match std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<Record>(&b).map_err(|e| e.to_string()))
            {
                Ok(r) => out.push(r),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "unreadable action record; moved aside as .bad");
                    let _ = std::fs::rename(&path, path.with_extension("bad"));
                }
            }
        }
        out.sort_by_key(|r| r.started_at_ms);
        out
    }

    /// The action is finished: its record goes, a "done" marker stays.
    pub fn finish(&self, key: &str) -> Result<(), StateError> {
        let done = self.done_path(key);
        write_atomic(&done, b"").map_err(|source| StateError {
            path: done,
            what: "cannot write",
            source,
        })?;
        let path = self.record_path(key);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StateError {
                path,
                what: "cannot remove",
                source,
            }),
        }
    }

    /// Forgets an action without marking it done (it was handed back unfinished and
    /// nothing of it ran).
    pub fn forget(&self, key: &str) {
        let _ = std::fs::remove_file(self.record_path(key));
    }

    pub fn is_done(&self, key: &str) -> bool {
        self.done_path(key).exists()
    }

    pub fn in_progress(&self, key: &str) -> bool {
        self.record_path(key).exists()
    }

    fn prune_done(&self) {
        let Ok(entries) = std::fs::read_dir(self.root.join("done")) else {
            return;
        };
        let now = SystemTime::now();
        for e in entries.flatten() {
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .is_some_and(|age| age > DONE_RETENTION);
            if old {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        b.mode(0o700);
    }
    b.create(dir)
}

/// Writes `body` to `path` atomically (temporary file, fsync, rename, fsync of the
/// directory).
pub fn write_atomic(path: &Path, body: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("state");
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(body)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifehook_model::LifecycleTransition;
    use lifehook_model::delivery::DeliveryPath;

    fn event(token: &str) -> LifecycleEvent {
        LifecycleEvent {
            group: "web".into(),
            hook: "launch".into(),
            instance_id: "i-0123456789abcdef0".into(),
            transition: LifecycleTransition::Launching,
            token: token.into(),
            origin: None,
            destination: None,
            metadata: Some("{\"a\": \"$(rm -rf /)\"}".into()),
            time: None,
            account: None,
            request_id: None,
            path: DeliveryPath::Direct,
        }
    }

    #[test]
    fn keys_are_safe_file_names() {
        assert_eq!(
            action_key(&event("")),
            "web.launch.i-0123456789abcdef0.autoscaling_EC2_INSTANCE_LAUNCHING"
        );
        assert_eq!(action_key(&event("../../etc/passwd")), "_.._.._etc_passwd");
        assert_eq!(action_key(&event("a/b c")), "a_b_c");
    }

    #[test]
    fn records_round_trip_and_finish() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = StateDir::open(&dir.path().join("state")).expect("open");
        let r = Record {
            key: action_key(&event("tok-1")),
            event: event("tok-1"),
            pipeline: "patch".into(),
            next_step: 2,
            started_at_ms: 1_700_000_000_000,
            reboots: 1,
            no_group: false,
        };
        s.save(&r).expect("save");
        assert!(s.in_progress("tok-1"));
        assert_eq!(s.load_all(), vec![r.clone()]);
        s.finish("tok-1").expect("finish");
        assert!(s.is_done("tok-1"));
        assert!(!s.in_progress("tok-1"));
        assert!(s.load_all().is_empty());
    }

    #[test]
    fn temporaries_of_an_interrupted_write_are_removed_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateDir::open(dir.path()).unwrap();
        let stale = dir.path().join("actions").join(".k.json.tmp.12345");
        std::fs::write(&stale, b"{").unwrap();
        let kept = dir.path().join("actions").join("other.bad");
        std::fs::write(&kept, b"x").unwrap();
        drop(s);
        StateDir::open(dir.path()).unwrap();
        assert!(!stale.exists());
        assert!(kept.exists());
    }

    #[test]
    fn a_corrupt_record_is_moved_aside() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = StateDir::open(dir.path()).expect("open");
        std::fs::write(dir.path().join("actions/x.json"), b"{not json").expect("write");
        assert!(s.load_all().is_empty());
        assert!(dir.path().join("actions/x.bad").exists());
        assert!(s.load_all().is_empty());
    }
}
