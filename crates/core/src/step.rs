//! Steps: one attempt of `exec`, `http`, `probe` or `notify`, bounded by a time limit.
//!
//! Retries, backoff and the action's deadline are the pipeline runner's business
//! ([`crate::pipeline`]); an attempt only says whether it succeeded, whether a failure is
//! worth retrying, and whether it ran out of time.
//!
//! Network: `http`, `notify` and HTTP `probe` steps call the URLs of the configuration;
//! nothing else.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::config::{
    ExecStep, HttpStep, NotifyFormat, NotifyStep, ProbeCheck, ProbeStep, StatusSet, Step, StepKind,
    WaitStep,
};
use crate::template::{Template, TemplateContext};

/// How much of a response body or stderr goes into an error message.
const ERROR_SNIPPET: usize = 1024;

/// What a successful attempt produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Success {
    /// Done; a short description (status, captured output) for the report.
    Done { detail: String },
    /// An `exec` step exited with its `reboot_exit_code`: reboot, then resume after it.
    RebootRequested { detail: String },
}

/// A failed attempt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    pub message: String,
    /// Worth another attempt (5xx, connection error, non-zero exit, timeout); `false` for
    /// failures that a retry cannot fix (a 4xx, a template that cannot render, a missing
    /// program).
    pub retryable: bool,
    /// The attempt ran out of its time limit.
    pub timed_out: bool,
}

impl Failure {
    pub fn retry(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            retryable: true,
            timed_out: false,
        }
    }
    pub fn fatal(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            retryable: false,
            timed_out: false,
        }
    }
    pub fn timeout(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            retryable: true,
            timed_out: true,
        }
    }
}

/// What a step needs besides its configuration.
pub struct StepEnv<'a> {
    pub template: TemplateContext<'a>,
    pub http: &'a reqwest::Client,
    /// The action's clock (deadlines; the sandbox's virtual clock in tests).
    pub clock: &'a dyn crate::clock::Clock,
    /// Runs the step types this crate cannot (those that call AWS APIs); `None` where no
    /// AWS clients are available, and such steps then fail with a clear message.
    pub external: Option<&'a dyn ExternalSteps>,
}

/// A boxed step attempt, as returned by [`ExternalSteps::attempt`].
pub type AttemptFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Success, Failure>> + Send + 'a>>;

/// The step types that need AWS clients, implemented by `lifehook-aws`. An attempt has the
/// same contract as [`attempt`]: succeed, or fail saying whether a retry can help, within
/// `limit`.
pub trait ExternalSteps: Send + Sync {
    fn attempt<'a>(
        &'a self,
        step: &'a Step,
        env: &'a StepEnv<'a>,
        limit: Duration,
    ) -> AttemptFuture<'a>;
}

/// The failure of a step that needs AWS clients where there are none.
pub(crate) fn no_external(step: &Step) -> Failure {
    Failure::fatal(format!(
        "step `{}` ({}) calls AWS APIs, and this runner has no AWS clients",
        step.name,
        step.kind.type_name()
    ))
}

/// Runs one attempt of `step` within `limit`.
pub async fn attempt(step: &Step, env: &StepEnv<'_>, limit: Duration) -> Result<Success, Failure> {
    match &step.kind {
        StepKind::Exec(e) => exec(e, env, limit).await,
        StepKind::Http(h) => http(h, env, limit).await,
        StepKind::Probe(p) => probe(p, env, limit).await,
        StepKind::Notify(n) => notify(n, env, limit).await,
        StepKind::File(f) => file(f, env, limit).await,
        StepKind::Wait(w) => wait(w, env, limit).await,
        StepKind::S3Fetch(_)
        | StepKind::S3Upload(_)
        | StepKind::SsmCommand(_)
        | StepKind::EcsDrain(_)
        | StepKind::Signal(_)
        | StepKind::Tag(_)
        | StepKind::Image(_)
        | StepKind::TargetGroups(_) => match env.external {
            Some(x) => x.attempt(step, env, limit).await,
            None => Err(no_external(step)),
        },
    }
}

// ---------------------------------------------------------------------------------------
// wait
// ---------------------------------------------------------------------------------------

/// Waits `duration` on the action's clock (so the sandbox's virtual clock in tests); a
/// duration of 0 returns at once. A wait longer than `limit` (the attempt's share of the
/// action's time) waits `limit`, then times out.
async fn wait(w: &WaitStep, env: &StepEnv<'_>, limit: Duration) -> Result<Success, Failure> {
    if w.duration.is_zero() {
        return Ok(Success::Done {
            detail: String::new(),
        });
    }
    let now = env.clock.now();
    if w.duration > limit {
        env.clock.sleep_until(now + limit).await;
        return Err(Failure::timeout(format!(
            "waiting {} would outlast the time left to the step ({})",
            crate::config::format_duration(w.duration),
            crate::config::format_duration(limit)
        )));
    }
    env.clock.sleep_until(now + w.duration).await;
    Ok(Success::Done {
        detail: format!("waited {}", crate::config::format_duration(w.duration)),
    })
}

// ---------------------------------------------------------------------------------------
// file
// ---------------------------------------------------------------------------------------

/// Writes `content` to `path` with `mode`, atomically, creating no directory.
async fn file(
    f: &crate::config::FileStep,
    env: &StepEnv<'_>,
    limit: Duration,
) -> Result<Success, Failure> {
    let path = std::path::PathBuf::from(render(&f.path, env)?);
    let content = render(&f.content, env)?;
    let len = content.len();
    let mode = f.mode;
    let target = path.clone();
    let write =
        tokio::task::spawn_blocking(move || write_atomic(&target, content.as_bytes(), mode));
    match tokio::time::timeout(limit, write).await {
        Err(_) => Err(Failure::timeout(format!(
            "writing {}: not done within {}",
            path.display(),
            crate::config::format_duration(limit)
        ))),
        Ok(Err(e)) => Err(Failure::retry(format!("writing {}: {e}", path.display()))),
        Ok(Ok(Err(e))) => Err(e),
        Ok(Ok(Ok(()))) => Ok(Success::Done {
            detail: format!("wrote {len} bytes to {} (mode {mode:04o})", path.display()),
        }),
    }
}

/// Writes `bytes` to a temporary file next to `path`, syncs it, sets `mode`, then renames
/// it over `path`: a reader sees the old file or the new one, never a part. A missing
/// directory or a permission problem is fatal (a retry cannot fix it); other I/O errors
/// are retryable. Used by `file` and by `s3-fetch` (in `lifehook-aws`).
pub fn write_atomic(path: &std::path::Path, bytes: &[u8], mode: u32) -> Result<(), Failure> {
    use std::io::Write as _;
    let classify = |what: &str, e: std::io::Error| {
        let m = format!("{what} {}: {e}", path.display());
        match e.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
                Failure::fatal(m)
            }
            _ => Failure::retry(m),
        }
    };
    let name = path
        .file_name()
        .ok_or_else(|| Failure::fatal(format!("{} is not a file path", path.display())))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    // Missing parent directories are created (like `install -D`).
    std::fs::create_dir_all(&dir).map_err(|e| classify("creating the directory of", e))?;
    let tmp = dir.join(format!(
        ".{}.lifehook-{}-{:08x}",
        name.to_string_lossy(),
        std::process::id(),
        rand::random::<u32>()
    ));
    let result = (|| {
        let mut f =
            std::fs::File::create(&tmp).map_err(|e| classify("creating a file next to", e))?;
        f.write_all(bytes).map_err(|e| classify("writing", e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            f.set_permissions(std::fs::Permissions::from_mode(mode))
                .map_err(|e| classify("setting the mode of", e))?;
        }
        #[cfg(not(unix))]
        let _ = mode;
        f.sync_all().map_err(|e| classify("syncing", e))?;
        std::fs::rename(&tmp, path).map_err(|e| classify("renaming onto", e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn render(t: &Template, env: &StepEnv<'_>) -> Result<String, Failure> {
    t.render(&env.template)
        .map_err(|e| Failure::fatal(e.to_string()))
}

fn render_map(
    m: &BTreeMap<String, Template>,
    env: &StepEnv<'_>,
) -> Result<Vec<(String, String)>, Failure> {
    m.iter()
        .map(|(k, v)| Ok((k.clone(), render(v, env)?)))
        .collect()
}

// ---------------------------------------------------------------------------------------
// exec
// ---------------------------------------------------------------------------------------

/// The environment every `exec` step gets, besides its own `env` and the process's.
pub(crate) fn action_env(t: &TemplateContext<'_>) -> Vec<(&'static str, String)> {
    let e = t.event;
    let opt = |o: Option<&str>| o.unwrap_or_default().to_owned();
    vec![
        ("LIFEHOOK_GROUP", e.group.clone()),
        ("LIFEHOOK_HOOK", e.hook.clone()),
        ("LIFEHOOK_INSTANCE_ID", e.instance_id.clone()),
        ("LIFEHOOK_TRANSITION", e.transition.as_str().to_owned()),
        ("LIFEHOOK_TOKEN", e.token.clone()),
        ("LIFEHOOK_METADATA", opt(e.metadata.as_deref())),
        ("LIFEHOOK_ORIGIN", opt(e.origin.map(|o| o.as_str()))),
        (
            "LIFEHOOK_DESTINATION",
            opt(e.destination.map(|o| o.as_str())),
        ),
        ("LIFEHOOK_TIME", opt(e.time.as_deref())),
        ("LIFEHOOK_PIPELINE", t.pipeline.to_owned()),
    ]
}

/// Output of a finished program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExecOutput {
    /// `None` when a signal ended it.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Kills the whole process group when dropped, unless disarmed: a timeout, a cancellation
/// or a dropped future must not leave the step's children running.
struct GroupGuard(Option<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(pid) = self
            .0
            .take()
            .and_then(|p| i32::try_from(p).ok())
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    }
}

/// Runs argv with the action environment; the program is never given to a shell.
pub(crate) async fn run_program(
    argv: &[String],
    env: &[(String, String)],
    action: &[(&'static str, String)],
    working_dir: Option<&std::path::Path>,
    output_limit: usize,
    limit: Duration,
) -> Result<ExecOutput, Failure> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| Failure::fatal("empty command"))?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    #[cfg(unix)]
    cmd.process_group(0);
    for (k, v) in action {
        cmd.env(k, v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    if let Some(d) = working_dir {
        cmd.current_dir(d);
    }
    let mut child = cmd.spawn().map_err(|e| {
        let f = format!("cannot start {program:?}: {e}");
        if e.kind() == std::io::ErrorKind::NotFound {
            Failure::fatal(f)
        } else {
            Failure::retry(f)
        }
    })?;
    let mut guard = GroupGuard(child.id());
    let out = child.stdout.take();
    let err = child.stderr.take();
    let run = async {
        let (o, e, status) = tokio::join!(
            read_capped(out, output_limit),
            read_capped(err, output_limit),
            child.wait()
        );
        (o, e, status)
    };
    match tokio::time::timeout(limit, run).await {
        Ok((stdout, stderr, status)) => {
            let status =
                status.map_err(|e| Failure::retry(format!("waiting for {program:?}: {e}")))?;
            // The program has exited and its output is closed: leave the group alone.
            guard.0 = None;
            Ok(ExecOutput {
                code: status.code(),
                stdout,
                stderr,
            })
        }
        Err(_) => {
            drop(guard);
            let _ = child.start_kill();
            let _ = child.wait().await;
            Err(Failure::timeout(format!(
                "{program:?} did not finish within {} and was killed with its process group",
                crate::config::format_duration(limit)
            )))
        }
    }
}

async fn read_capped(r: Option<impl AsyncRead + Unpin>, cap: usize) -> String {
    let Some(mut r) = r else { return String::new() };
    let mut kept = Vec::new();
    let mut dropped = 0usize;
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = cap.saturating_sub(kept.len());
                let take = room.min(n);
                kept.extend_from_slice(&buf[..take]);
                dropped += n - take;
            }
        }
    }
    let mut s = String::from_utf8_lossy(&kept).into_owned();
    if dropped > 0 {
        let _ = write!(s, "\n[lifehook: output truncated, {dropped} more bytes]");
    }
    s
}

fn snippet(s: &str) -> String {
    let t = s.trim();
    if t.len() <= ERROR_SNIPPET {
        return t.to_owned();
    }
    let mut end = ERROR_SNIPPET;
    while !t.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &t[..end])
}

async fn exec(e: &ExecStep, env: &StepEnv<'_>, limit: Duration) -> Result<Success, Failure> {
    let argv: Vec<String> = e
        .command
        .iter()
        .map(|t| render(t, env))
        .collect::<Result<_, _>>()?;
    let vars = render_map(&e.env, env)?;
    let out = run_program(
        &argv,
        &vars,
        &action_env(&env.template),
        e.working_dir.as_deref(),
        e.output_limit,
        limit,
    )
    .await?;
    match out.code {
        Some(0) => Ok(Success::Done { detail: out.stdout }),
        Some(c) if Some(c) == e.reboot_exit_code => {
            Ok(Success::RebootRequested { detail: out.stdout })
        }
        Some(c) => Err(Failure::retry(format!(
            "{:?} exited with status {c}: {}",
            argv[0],
            snippet(&out.stderr)
        ))),
        None => Err(Failure::retry(format!(
            "{:?} was killed by a signal: {}",
            argv[0],
            snippet(&out.stderr)
        ))),
    }
}

// ---------------------------------------------------------------------------------------
// http, notify
// ---------------------------------------------------------------------------------------

async fn send(
    req: reqwest::RequestBuilder,
    expect: &StatusSet,
    limit: Duration,
    what: &str,
) -> Result<Success, Failure> {
    let resp = match tokio::time::timeout(limit, req.timeout(limit).send()).await {
        Err(_) => {
            return Err(Failure::timeout(format!(
                "{what}: no response within {}",
                crate::config::format_duration(limit)
            )));
        }
        // `what` names the URL where it may be shown; the error must not repeat it.
        Ok(Err(e)) if e.is_timeout() => {
            return Err(Failure::timeout(format!(
                "{what}: {}",
                error_chain(&e.without_url())
            )));
        }
        Ok(Err(e)) => {
            return Err(Failure::retry(format!(
                "{what}: {}",
                error_chain(&e.without_url())
            )));
        }
        Ok(Ok(r)) => r,
    };
    let status = resp.status().as_u16();
    let body = tokio::time::timeout(limit, resp.text())
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    if expect.contains(status) {
        return Ok(Success::Done {
            detail: format!("HTTP {status}"),
        });
    }
    let message = format!(
        "{what}: unexpected status {status} (expected {expect}): {}",
        snippet(&body)
    );
    if status >= 500 || status == 429 || status == 408 {
        Err(Failure::retry(message))
    } else {
        Err(Failure::fatal(message))
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let _ = write!(s, ": {c}");
        cur = c.source();
    }
    s
}

fn with_headers(
    mut req: reqwest::RequestBuilder,
    headers: &[(String, String)],
) -> reqwest::RequestBuilder {
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    req
}

async fn http(h: &HttpStep, env: &StepEnv<'_>, limit: Duration) -> Result<Success, Failure> {
    let url = render(&h.url, env)?;
    let headers = render_map(&h.headers, env)?;
    let mut req = with_headers(env.http.request(h.method.clone(), &url), &headers);
    if let Some(b) = &h.body {
        let body = render(b, env)?;
        let has_ct = headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
        if !has_ct && serde_json::from_str::<serde_json::Value>(&body).is_ok() {
            req = req.header("content-type", "application/json");
        }
        req = req.body(body);
    }
    send(req, &h.expect_status, limit, &format!("{} {url}", h.method)).await
}

/// The JSON a `notify` step posts.
pub(crate) fn notify_body(n: &NotifyStep, env: &StepEnv<'_>) -> Result<serde_json::Value, Failure> {
    let text = render(&n.message, env)?;
    let e = env.template.event;
    Ok(match n.format {
        NotifyFormat::Slack => json!({ "text": text }),
        NotifyFormat::Json => json!({
            "text": text,
            "group": e.group,
            "hook": e.hook,
            "instance_id": e.instance_id,
            "transition": e.transition.as_str(),
            "pipeline": env.template.pipeline,
        }),
    })
}

async fn notify(n: &NotifyStep, env: &StepEnv<'_>, limit: Duration) -> Result<Success, Failure> {
    let url = render(&n.url, env)?;
    let headers = render_map(&n.headers, env)?;
    let body = notify_body(n, env)?;
    let req = with_headers(env.http.post(&url), &headers).json(&body);
    // The URL of a webhook is often a secret: name only its host in messages.
    let host = reqwest::Url::parse(&url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    send(req, &StatusSet::default(), limit, &format!("notify {host}")).await
}

// ---------------------------------------------------------------------------------------
// probe
// ---------------------------------------------------------------------------------------

async fn probe(p: &ProbeStep, env: &StepEnv<'_>, limit: Duration) -> Result<Success, Failure> {
    let start = tokio::time::Instant::now();
    let end = start + limit;
    let mut checks = 0u32;
    let last = loop {
        checks += 1;
        let remaining = end.saturating_duration_since(tokio::time::Instant::now());
        let r = match &p.check {
            ProbeCheck::Http {
                url,
                headers,
                expect_status,
            } => {
                let url = render(url, env)?;
                let headers = render_map(headers, env)?;
                let req = with_headers(env.http.get(&url), &headers);
                send(req, expect_status, remaining, &format!("GET {url}")).await
            }
            ProbeCheck::Exec {
                command,
                env: vars,
                working_dir,
            } => {
                let argv: Vec<String> = command
                    .iter()
                    .map(|t| render(t, env))
                    .collect::<Result<_, _>>()?;
                let vars = render_map(vars, env)?;
                run_program(
                    &argv,
                    &vars,
                    &action_env(&env.template),
                    working_dir.as_deref(),
                    4096,
                    remaining,
                )
                .await
                .and_then(|o| match o.code {
                    Some(0) => Ok(Success::Done {
                        detail: String::new(),
                    }),
                    c => Err(Failure::retry(format!(
                        "{:?} exited with {c:?}: {}",
                        argv[0],
                        snippet(&o.stderr)
                    ))),
                })
            }
        };
        match r {
            Ok(_) => {
                return Ok(Success::Done {
                    detail: format!("ready after {checks} check(s)"),
                });
            }
            Err(f) if !f.retryable && !f.timed_out => return Err(f),
            Err(f) => {
                let now = tokio::time::Instant::now();
                if now + p.interval >= end {
                    break f;
                }
                tokio::time::sleep(p.interval).await;
            }
        }
    };
    Err(Failure::timeout(format!(
        "not ready after {checks} check(s) in {}: {}",
        crate::config::format_duration(start.elapsed()),
        last.message
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::test_support::event;
    use std::path::Path;
    use std::sync::{Arc, Mutex};

    fn step(toml_step: &str) -> Step {
        let text = format!("[[pipeline]]\nname = \"p\"\n[[pipeline.step]]\n{toml_step}\n");
        let c = Config::from_toml(&text, Path::new("t.toml")).unwrap_or_else(|p| panic!("{p:?}"));
        c.pipelines[0].steps[0].clone()
    }

    fn client() -> reqwest::Client {
        reqwest::Client::builder().no_proxy().build().unwrap()
    }

    async fn run(s: &Step, metadata: Option<&str>, limit: Duration) -> Result<Success, Failure> {
        let ev = event(metadata);
        let tags = BTreeMap::from([("team".to_owned(), "core".to_owned())]);
        let http = client();
        let env = StepEnv {
            template: TemplateContext {
                event: &ev,
                tags: &tags,
                region: Some("eu-west-1"),
                pipeline: "p",
                now: chrono::Utc::now(),
            },
            http: &http,
            clock: &crate::clock::SystemClock,
            external: None,
        };
        attempt(s, &env, limit).await
    }

    const HOSTILE: &str =
        "$(touch /tmp/lifehook-pwned) `touch /tmp/lifehook-pwned2` ; rm -rf / ' \" \\ \n|& > < * ?";

    fn hostile_metadata() -> String {
        let mut s = String::from(HOSTILE);
        while s.len() < 4000 {
            s.push_str("x$(id)`id`'\"\n");
        }
        s
    }

    #[tokio::test]
    async fn exec_success_and_env() {
        let s = step(
            r#"type = "exec"
command = ["sh", "-c", "printf '%s|%s|%s|%s' \"$LIFEHOOK_GROUP\" \"$LIFEHOOK_INSTANCE_ID\" \"$LIFEHOOK_TRANSITION\" \"$TEAM\"", "ignored"]
env = { TEAM = "{{ tags.team }}" }"#,
        );
        let r = run(&s, None, Duration::from_secs(10)).await.unwrap();
        assert_eq!(
            r,
            Success::Done {
                detail: "web-asg|i-0123456789abcdef0|autoscaling:EC2_INSTANCE_TERMINATING|core"
                    .into()
            }
        );
    }

    #[tokio::test]
    async fn hostile_metadata_reaches_exec_only_as_data() {
        let md = hostile_metadata();
        assert!(md.len() >= 4000);
        let dir = tempfile::tempdir().unwrap();
        // As an argv element: printf prints it verbatim.
        let s = step(&format!(
            r#"type = "exec"
command = ["printf", "%s", "{{{{ metadata }}}}"]
working_dir = "{}""#,
            dir.path().display()
        ));
        let r = run(&s, Some(&md), Duration::from_secs(10)).await.unwrap();
        assert_eq!(r, Success::Done { detail: md.clone() });
        // As an environment variable, expanded by a script as a quoted variable.
        let s = step(
            r#"type = "exec"
command = ["sh", "-c", "printf '%s' \"$LIFEHOOK_METADATA\""]"#,
        );
        let r = run(&s, Some(&md), Duration::from_secs(10)).await.unwrap();
        assert_eq!(r, Success::Done { detail: md.clone() });
        // Through a templated env value.
        let s = step(
            r#"type = "exec"
command = ["sh", "-c", "printf '%s' \"$M\""]
env = { M = "{{ metadata }}" }"#,
        );
        let r = run(&s, Some(&md), Duration::from_secs(10)).await.unwrap();
        assert_eq!(r, Success::Done { detail: md });
        assert!(!Path::new("/tmp/lifehook-pwned").exists());
        assert!(!Path::new("/tmp/lifehook-pwned2").exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn exec_exit_codes() {
        let s = step("type = \"exec\"\ncommand = [\"sh\", \"-c\", \"echo oops >&2; exit 3\"]");
        let f = run(&s, None, Duration::from_secs(10)).await.unwrap_err();
        assert!(f.retryable && !f.timed_out);
        assert!(
            f.message.contains("status 3") && f.message.contains("oops"),
            "{f}"
        );
        let s = step(
            "type = \"exec\"\ncommand = [\"sh\", \"-c\", \"echo rebooting; exit 194\"]\nreboot_exit_code = 194",
        );
        assert_eq!(
            run(&s, None, Duration::from_secs(10)).await.unwrap(),
            Success::RebootRequested {
                detail: "rebooting\n".into()
            }
        );
        let s = step("type = \"exec\"\ncommand = [\"/nonexistent/program\"]");
        let f = run(&s, None, Duration::from_secs(10)).await.unwrap_err();
        assert!(!f.retryable, "{f:?}");
    }

    #[tokio::test]
    async fn exec_output_is_capped() {
        let s = step(
            "type = \"exec\"\ncommand = [\"sh\", \"-c\", \"head -c 100000 /dev/zero | tr '\\\\0' a\"]\noutput_limit = 1000",
        );
        let Success::Done { detail } = run(&s, None, Duration::from_secs(10)).await.unwrap() else {
            panic!()
        };
        assert!(detail.starts_with(&"a".repeat(1000)));
        assert!(
            detail.ends_with("[lifehook: output truncated, 99000 more bytes]"),
            "{}",
            &detail[1000..]
        );
    }

    #[tokio::test]
    async fn exec_timeout_kills_the_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        // A grandchild in the background, its pid written down; then the child hangs.
        let s = step(&format!(
            "type = \"exec\"\ncommand = [\"sh\", \"-c\", \"sleep 60 & echo $! > {}; sleep 30\"]",
            pidfile.display()
        ));
        let t = std::time::Instant::now();
        let f = run(&s, None, Duration::from_millis(300)).await.unwrap_err();
        assert!(f.timed_out, "{f:?}");
        assert!(t.elapsed() < Duration::from_secs(5));
        let pid = std::fs::read_to_string(&pidfile).unwrap().trim().to_owned();
        // Eventually (bounded): the grandchild is gone or a zombie awaiting its reaper.
        let alive = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|st| {
                let state = st.rsplit_once(')').map(|(_, r)| r.trim_start());
                !state.is_some_and(|r| r.starts_with('Z') || r.starts_with('X'))
            })
        };
        let until = std::time::Instant::now() + Duration::from_secs(3);
        while alive() && std::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            !alive(),
            "process {pid} of the step's group survived the timeout"
        );
    }

    type Seen = Arc<Mutex<Vec<(String, String)>>>;
    type Statuses = Arc<Mutex<std::vec::IntoIter<u16>>>;

    /// A local HTTP server that answers with the given statuses in turn and records bodies.
    async fn server(statuses: Vec<u16>) -> (String, Arc<Mutex<Vec<(String, String)>>>) {
        use axum::extract::{Request, State};
        let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let statuses = Arc::new(Mutex::new(statuses.into_iter()));
        let app = axum::Router::new()
            .fallback(
                |State((seen, statuses)): State<(Seen, Statuses)>, req: Request| async move {
                    let uri = format!("{} {}", req.method(), req.uri());
                    let body = axum::body::to_bytes(req.into_body(), 1 << 20)
                        .await
                        .unwrap();
                    seen.lock()
                        .unwrap()
                        .push((uri, String::from_utf8_lossy(&body).into_owned()));
                    let code = statuses.lock().unwrap().next().unwrap_or(200);
                    (
                        axum::http::StatusCode::from_u16(code).unwrap(),
                        "server says hi",
                    )
                },
            )
            .with_state((seen.clone(), statuses));
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        (format!("http://{addr}"), seen)
    }

    #[tokio::test]
    async fn http_renders_and_classifies() {
        let (base, seen) = server(vec![204, 503, 404]).await;
        let s = step(&format!(
            r#"type = "http"
method = "PUT"
url = "{base}/apps/{{{{ tags.team | urlencode }}}}/{{{{ instance_id | urlencode }}}}?value=OUT_OF_SERVICE"
body = '{{"m": {{{{ metadata | json }}}}}}'"#
        ));
        assert_eq!(
            run(&s, Some("a\"b"), Duration::from_secs(5)).await.unwrap(),
            Success::Done {
                detail: "HTTP 204".into()
            }
        );
        let f = run(&s, None, Duration::from_secs(5)).await.unwrap_err();
        assert!(f.retryable && f.message.contains("503"), "{f:?}");
        let f = run(&s, None, Duration::from_secs(5)).await.unwrap_err();
        assert!(
            !f.retryable && f.message.contains("404") && f.message.contains("server says hi"),
            "{f:?}"
        );
        let seen = seen.lock().unwrap();
        assert_eq!(
            seen[0].0,
            "PUT /apps/core/i-0123456789abcdef0?value=OUT_OF_SERVICE"
        );
        assert_eq!(seen[0].1, r#"{"m": "a\"b"}"#);
    }

    #[tokio::test]
    async fn http_connection_refused_is_retryable() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let s = step(&format!("type = \"http\"\nurl = \"http://{addr}/\""));
        let f = run(&s, None, Duration::from_secs(5)).await.unwrap_err();
        assert!(f.retryable && !f.timed_out, "{f:?}");
    }

    #[tokio::test]
    async fn notify_slack_and_json() {
        let (base, seen) = server(vec![]).await;
        let s = step(&format!(
            "type = \"notify\"\nformat = \"slack\"\nurl = \"{base}/hook\"\nmessage = \"{{{{ instance_id }}}} leaving {{{{ group }}}}\""
        ));
        run(&s, None, Duration::from_secs(5)).await.unwrap();
        let s = step(&format!(
            "type = \"notify\"\nurl = \"{base}/hook\"\nmessage = \"bye\""
        ));
        run(&s, None, Duration::from_secs(5)).await.unwrap();
        let seen = seen.lock().unwrap();
        let slack: serde_json::Value = serde_json::from_str(&seen[0].1).unwrap();
        assert_eq!(
            slack,
            json!({"text": "i-0123456789abcdef0 leaving web-asg"})
        );
        let j: serde_json::Value = serde_json::from_str(&seen[1].1).unwrap();
        assert_eq!(j["text"], "bye");
        assert_eq!(j["instance_id"], "i-0123456789abcdef0");
        assert_eq!(j["transition"], "autoscaling:EC2_INSTANCE_TERMINATING");
    }

    #[tokio::test]
    async fn probe_http_until_ready() {
        let (base, seen) = server(vec![503, 503, 200]).await;
        let s = step(&format!(
            "type = \"probe\"\ninterval = \"20ms\"\nurl = \"{base}/health\""
        ));
        let r = run(&s, None, Duration::from_secs(5)).await.unwrap();
        assert_eq!(
            r,
            Success::Done {
                detail: "ready after 3 check(s)".into()
            }
        );
        assert_eq!(seen.lock().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn probe_gives_up_at_its_limit() {
        let s = step("type = \"probe\"\ninterval = \"20ms\"\ncommand = [\"false\"]");
        let t = std::time::Instant::now();
        let f = run(&s, None, Duration::from_millis(300)).await.unwrap_err();
        assert!(f.timed_out && f.message.contains("not ready"), "{f:?}");
        assert!(t.elapsed() < Duration::from_secs(3));
        let dir = tempfile::tempdir().unwrap();
        let flag = dir.path().join("ready");
        let s = step(&format!(
            "type = \"probe\"\ninterval = \"20ms\"\ncommand = [\"sh\", \"-c\", \"test -e {0} || {{ touch {0}; exit 1; }}\"]",
            flag.display()
        ));
        assert!(run(&s, None, Duration::from_secs(5)).await.is_ok());
    }

    #[tokio::test]
    async fn file_is_written_atomically_with_its_mode() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lifehook.sh");
        std::fs::write(&path, "old").unwrap();
        let s = step(&format!(
            "type = \"file\"\npath = \"{}\"\ncontent = \"export PATCHED_ON={{{{ date }}}}\\nexport M={{{{ metadata }}}}\\n\"\nmode = \"0600\"",
            path.display()
        ));
        let r = run(&s, Some("m"), Duration::from_secs(5)).await.unwrap();
        let Success::Done { detail } = r else {
            panic!()
        };
        assert!(detail.contains("mode 0600"), "{detail}");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("export PATCHED_ON=20") && text.ends_with("export M=m\n"),
            "{text}"
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o600);
        // Again: same result, and no temporary file is left behind.
        run(&s, Some("m"), Duration::from_secs(5)).await.unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // Missing parent directories are created (like `install -D`).
        let s = step(&format!(
            "type = \"file\"\npath = \"{}/new/dir/x\"\ncontent = \"x\"",
            dir.path().display()
        ));
        run(&s, None, Duration::from_secs(5)).await.unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("new/dir/x")).unwrap(),
            "x"
        );
        // A parent that is a file cannot be a directory: not worth retrying.
        std::fs::write(dir.path().join("plain"), b"").unwrap();
        let s = step(&format!(
            "type = \"file\"\npath = \"{}/plain/x\"\ncontent = \"\"",
            dir.path().display()
        ));
        let f = run(&s, None, Duration::from_secs(5)).await.unwrap_err();
        assert!(f.message.contains("plain"), "{f:?}");
    }

    #[tokio::test]
    async fn aws_steps_need_an_external_runner() {
        let s = step("type = \"tag\"\nname = \"mark\"\ntags = { a = \"b\" }");
        let f = run(&s, None, Duration::from_secs(5)).await.unwrap_err();
        assert!(!f.retryable, "{f:?}");
        assert!(
            f.message.contains("step `mark` (tag) calls AWS APIs"),
            "{f}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn wait_waits_its_duration_on_the_clock() {
        let zero = step("type = \"wait\"");
        let t0 = tokio::time::Instant::now();
        let r = run(&zero, None, Duration::from_secs(5)).await.unwrap();
        assert!(matches!(r, Success::Done { .. }), "{r:?}");
        assert_eq!(t0.elapsed(), Duration::ZERO);

        let s = step("type = \"wait\"\nduration = \"2s\"");
        let clock = crate::clock::TokioClock::new();
        let ev = event(None);
        let tags = BTreeMap::new();
        let http = client();
        let env = StepEnv {
            template: TemplateContext {
                event: &ev,
                tags: &tags,
                region: None,
                pipeline: "p",
                now: chrono::Utc::now(),
            },
            http: &http,
            clock: &clock,
            external: None,
        };
        let t0 = tokio::time::Instant::now();
        let r = attempt(&s, &env, Duration::from_secs(5)).await.unwrap();
        assert_eq!(
            r,
            Success::Done {
                detail: "waited 2s".into()
            }
        );
        assert!(t0.elapsed() >= Duration::from_secs(2), "{:?}", t0.elapsed());

        // Bounded by the attempt's limit: waits the limit, then times out.
        let t0 = tokio::time::Instant::now();
        let f = attempt(&s, &env, Duration::from_secs(1)).await.unwrap_err();
        assert!(f.timed_out, "{f:?}");
        let waited = t0.elapsed();
        assert!(
            waited >= Duration::from_secs(1) && waited < Duration::from_secs(2),
            "{waited:?}"
        );
    }

    #[tokio::test]
    async fn missing_template_key_fails_the_step_clearly() {
        let s = step("type = \"exec\"\ncommand = [\"echo\", \"{{ tags.owner }}\"]");
        let f = run(&s, None, Duration::from_secs(5)).await.unwrap_err();
        assert!(!f.retryable && f.message.contains("no tag `owner`"), "{f}");
    }
}
