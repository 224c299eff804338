//! Wall-clock time for handlers: when an action's deadlines fall and when its heartbeats
//! are due.
//!
//! Everything that compares with an action's deadlines (the pipeline runner, heartbeats,
//! holding until the DefaultResult) reads time through a [`Clock`], so that the same code
//! runs on the system clock in production, on tokio's clock in paused-time unit tests,
//! and on the sandbox's **virtual** clock in integration tests and the demo
//! ([`SandboxClock`], chosen with `LIFEHOOK_CLOCK_URL`): a two-hour step on a ten-minute
//! heartbeat timeout then takes seconds, and heartbeats still fall when Auto Scaling
//! expects them.
//!
//! Step timeouts, retry back-off and polling intervals stay on real time: they bound how
//! long this process waits for programs and servers, which run in real time.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The environment variable that makes a handler follow a sandbox's virtual clock: the URL
/// of its `GET /_sandbox/clock` (for tests and the demo; never set in production).
pub const ENV_CLOCK_URL: &str = "LIFEHOOK_CLOCK_URL";

/// A boxed future, as returned by [`Clock::sleep_until`].
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A source of wall-clock time that can also wait.
pub trait Clock: Send + Sync + fmt::Debug {
    fn now(&self) -> SystemTime;
    /// Resolves once [`Clock::now`] has reached `t` (at once if it already has).
    fn sleep_until(&self, t: SystemTime) -> Sleep;
}

/// The system clock (waits with tokio timers).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn sleep_until(&self, t: SystemTime) -> Sleep {
        let wait = t.duration_since(SystemTime::now()).unwrap_or_default();
        Box::pin(tokio::time::sleep(wait))
    }
}

/// Wall-clock time as tokio's clock moves it: the system time when created plus tokio's
/// elapsed time. Under `tokio::time::pause` it jumps with `advance`, so paused-time tests
/// of heartbeat schedules are exact.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    sys0: SystemTime,
    tokio0: tokio::time::Instant,
}

impl TokioClock {
    pub fn new() -> Self {
        TokioClock {
            sys0: SystemTime::now(),
            tokio0: tokio::time::Instant::now(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        TokioClock::new()
    }
}

impl Clock for TokioClock {
    fn now(&self) -> SystemTime {
        self.sys0 + self.tokio0.elapsed()
    }

    fn sleep_until(&self, t: SystemTime) -> Sleep {
        let at = match t.duration_since(self.sys0) {
            Ok(d) => self.tokio0 + d,
            Err(_) => self.tokio0,
        };
        Box::pin(tokio::time::sleep_until(at))
    }
}

/// How often [`SandboxClock`] reads the sandbox's clock (real time).
const POLL: Duration = Duration::from_millis(20);

#[derive(Debug)]
struct Reading {
    /// Virtual milliseconds since the epoch at `at`.
    virtual_ms: u64,
    at: std::time::Instant,
    /// Virtual per real milliseconds; `0` for a manual clock (moves only when told).
    rate: f64,
}

/// Follows the virtual clock of a lifehook sandbox by polling its `GET /_sandbox/clock`
/// every 20 ms (and extrapolating in between for `real`/`fast:N` clocks). Waits resolve
/// within one poll of the virtual time passing.
#[derive(Clone)]
pub struct SandboxClock {
    url: String,
    reading: Arc<Mutex<Reading>>,
}

impl fmt::Debug for SandboxClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SandboxClock")
            .field("url", &self.url)
            .finish()
    }
}

/// Why [`SandboxClock::connect`] failed.
#[derive(Debug, thiserror::Error)]
#[error("{ENV_CLOCK_URL}={url}: {detail}")]
pub struct ClockError {
    pub url: String,
    pub detail: String,
}

impl SandboxClock {
    /// Reads the clock once (so a wrong URL fails here, clearly) and starts following it.
    /// Needs a tokio runtime; the follower task stops when the last clone is dropped.
    pub async fn connect(url: &str) -> Result<SandboxClock, ClockError> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| ClockError {
                url: url.to_owned(),
                detail: e.to_string(),
            })?;
        let first = read(&http, url).await.map_err(|detail| ClockError {
            url: url.to_owned(),
            detail,
        })?;
        let clock = SandboxClock {
            url: url.to_owned(),
            reading: Arc::new(Mutex::new(first)),
        };
        let weak = Arc::downgrade(&clock.reading);
        let url = url.to_owned();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(POLL).await;
                let r = read(&http, &url).await;
                let Some(cell) = weak.upgrade() else { return };
                match r {
                    Ok(r) => *cell.lock().unwrap_or_else(|e| e.into_inner()) = r,
                    Err(e) => tracing::debug!(error = %e, "cannot read the sandbox clock"),
                }
            }
        });
        Ok(clock)
    }
}

async fn read(http: &reqwest::Client, url: &str) -> Result<Reading, String> {
    let resp = http.get(url).send().await.map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("HTTP {}", resp.status()));
    }
    let v: serde_json::Value = resp.json().await.map_err(|e| e.to_string())?;
    let virtual_ms = v
        .get("now_ms")
        .and_then(serde_json::Value::as_u64)
        .ok_or("the answer has no `now_ms`: is this a lifehook sandbox's /_sandbox/clock?")?;
    let mode = v
        .get("mode")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("");
    let rate = match mode {
        "real" => 1.0,
        m => m
            .strip_prefix("fast:")
            .and_then(|n| n.parse::<f64>().ok())
            .unwrap_or(0.0),
    };
    Ok(Reading {
        virtual_ms,
        at: std::time::Instant::now(),
        rate,
    })
}

impl Clock for SandboxClock {
    fn now(&self) -> SystemTime {
        let r = self.reading.lock().unwrap_or_else(|e| e.into_inner());
        let extra = r.at.elapsed().as_secs_f64() * 1000.0 * r.rate;
        UNIX_EPOCH
            + Duration::from_millis(r.virtual_ms)
            + Duration::from_micros((extra * 1000.0) as u64)
    }

    fn sleep_until(&self, t: SystemTime) -> Sleep {
        let me = self.clone();
        Box::pin(async move {
            while me.now() < t {
                tokio::time::sleep(POLL).await;
            }
        })
    }
}

/// The clock a handler process should use: [`SandboxClock`] when `LIFEHOOK_CLOCK_URL` is
/// set (and not empty), else the system clock.
pub async fn from_env() -> Result<Arc<dyn Clock>, ClockError> {
    match std::env::var(ENV_CLOCK_URL) {
        Ok(url) if !url.trim().is_empty() => {
            let c = SandboxClock::connect(url.trim()).await?;
            tracing::info!(url = %url.trim(), "following the sandbox's virtual clock");
            Ok(Arc::new(c))
        }
        _ => Ok(Arc::new(SystemClock)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_moves_with_tokio_time() {
        let c = TokioClock::new();
        let t0 = c.now();
        let wake = t0 + Duration::from_secs(600);
        let sleeper = tokio::spawn(c.sleep_until(wake));
        tokio::time::advance(Duration::from_secs(599)).await;
        assert!(!sleeper.is_finished());
        tokio::time::advance(Duration::from_secs(2)).await;
        sleeper.await.expect("sleep task");
        assert!(c.now() >= wake);
    }

    #[tokio::test]
    async fn sandbox_clock_follows_a_manual_clock() {
        use axum::{Router, routing::get};
        use std::sync::atomic::{AtomicU64, Ordering};
        let now = Arc::new(AtomicU64::new(1_700_000_000_000));
        let n2 = now.clone();
        let app = Router::new().route(
            "/_sandbox/clock",
            get(move || {
                let n = n2.load(Ordering::SeqCst);
                async move { serde_json::json!({"now_ms": n, "mode": "manual"}).to_string() }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        let c = SandboxClock::connect(&format!("http://{addr}/_sandbox/clock"))
            .await
            .expect("connect");
        let t0 = UNIX_EPOCH + Duration::from_millis(1_700_000_000_000);
        assert_eq!(c.now(), t0);
        let wake = t0 + Duration::from_secs(7200);
        let sleeper = tokio::spawn(c.sleep_until(wake));
        now.store(1_700_000_000_000 + 7_200_000, Ordering::SeqCst);
        tokio::time::timeout(Duration::from_secs(5), sleeper)
            .await
            .expect("woke within 5 s of real time")
            .expect("sleep task");
        assert!(c.now() >= wake);
    }

    #[tokio::test]
    async fn a_wrong_url_is_a_clear_error() {
        let e = SandboxClock::connect("http://127.0.0.1:1/_sandbox/clock")
            .await
            .expect_err("nothing listens on port 1");
        assert!(
            e.to_string()
                .contains("LIFEHOOK_CLOCK_URL=http://127.0.0.1:1"),
            "{e}"
        );
    }
}
