//! The lifehook sandbox: a local engine that behaves like EC2 Auto Scaling with lifecycle
//! hooks, plus the neighbouring services lifecycle handlers talk to, speaking the real AWS
//! wire protocols on one port so that aws-sdk-rust, boto3 and the AWS CLI work against it
//! unchanged through an endpoint URL.
//!
//! - **Network**: one HTTP listener (loopback by default) serves every service. Requests
//!   are dispatched on the SigV4 credential scope, `X-Amz-Target` and `Action`/`Version`
//!   (see `server.rs`). Any credentials are accepted; signatures are not checked. The
//!   account is always `000000000000`; the region is taken from each request. Outbound,
//!   the sandbox connects only to the endpoints of SNS `http` subscriptions (POSTs).
//! - **IAM** ([`iam`]): optionally, identity-based policies bound to access key ids are
//!   enforced, and denied requests get AccessDenied in each protocol's shape.
//! - **Time** is virtual (`clock.rs`): real, sped up, or moved only on demand, so a one-hour
//!   heartbeat timeout takes milliseconds in a test.
//! - **Control API** under `/_sandbox/` (`control.rs`): health, clock, advance, state,
//!   reset, fault injection. Documented in `docs/sandbox.md`.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use lifehook_sandbox::{SandboxConfig, start};
//! let running = start(SandboxConfig { listen: "127.0.0.1:0".parse().unwrap(), ..Default::default() }).await?;
//! println!("AWS_ENDPOINT_URL=http://{}", running.addr());
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
// Tests may unwrap; production code handles every error (see `cargo clippy -- -W
// clippy::unwrap_used -W clippy::expect_used`).
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod autoscaling;
mod clock;
mod cloudformation;
mod control;
mod ec2;
mod ecs;
mod elbv2;
mod events;
mod faults;
/// IAM enforcement. Only [`iam::ADMIN_ACCESS_KEY_ID`] is public; policies are bound
/// with [`Sandbox::enforce_policy`].
pub mod iam;
mod ids;
mod imds;
mod lambda;
mod protocol;
mod s3;
mod server;
mod sns;
mod sqs;
mod ssm;
mod sts;
mod ui;
mod wildcard;
mod world;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

pub use clock::ClockMode;
use clock::{Clock, Millis};
use world::{Behaviour, World};

/// The account every sandbox resource belongs to.
pub const ACCOUNT_ID: &str = lifehook_model::SANDBOX_ACCOUNT_ID;
/// The region used when a request does not name one.
pub(crate) const DEFAULT_REGION: &str = "us-east-1";
/// The default listen address: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:4566";

/// How to run a sandbox.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    pub listen: SocketAddr,
    pub clock: ClockMode,
    pub behaviour: Behaviour,
}

impl Default for SandboxConfig {
    // DEFAULT_LISTEN is a constant, valid socket address.
    #[allow(clippy::expect_used)]
    fn default() -> Self {
        SandboxConfig {
            listen: DEFAULT_LISTEN.parse().expect("constant address"),
            clock: ClockMode::Real,
            behaviour: Behaviour::default(),
        }
    }
}

/// The shared sandbox: clock, state and fault rules.
#[derive(Debug)]
pub struct Sandbox {
    pub(crate) clock: Clock,
    world: Mutex<World>,
    faults: Mutex<Vec<faults::FaultRule>>,
    /// Wakes the timer task when timers may have changed.
    timers_changed: Notify,
    /// Requests served, by service and operation (`GET /_sandbox/stats`).
    requests: Mutex<RequestCounts>,
    /// Enforced IAM policies and denials ([`iam`]).
    iam: Mutex<iam::Iam>,
}

/// Requests served, by service and operation.
pub(crate) type RequestCounts =
    std::collections::BTreeMap<protocol::Service, std::collections::BTreeMap<String, u64>>;

impl Sandbox {
    pub fn new(clock: ClockMode, behaviour: Behaviour) -> Arc<Sandbox> {
        let clock = Clock::new(clock);
        let now = clock.now();
        Arc::new(Sandbox {
            clock,
            world: Mutex::new(World::new(now, behaviour)),
            faults: Mutex::new(Vec::new()),
            timers_changed: Notify::new(),
            requests: Mutex::new(RequestCounts::new()),
            iam: Mutex::new(iam::Iam::default()),
        })
    }

    /// Counts one recognised request (before fault injection, so retried calls count).
    pub(crate) fn count_request(&self, service: protocol::Service, op: &str) {
        let mut r = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        let ops = r.entry(service).or_default();
        match ops.get_mut(op) {
            Some(n) => *n += 1,
            None => {
                ops.insert(op.to_owned(), 1);
            }
        }
    }

    /// Requests served so far, by service and operation.
    pub(crate) fn request_counts(&self) -> RequestCounts {
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Locks the world after bringing it up to the clock's current time (every timer due
    /// by now has fired). Never hold the guard across an `.await`.
    pub fn lock(&self) -> MutexGuard<'_, World> {
        let mut w = self.world.lock().unwrap_or_else(|e| e.into_inner());
        let now = self.clock.now();
        if now > w.now || w.next_due().is_some_and(|d| d <= now) {
            w.run_until(now);
        }
        w
    }

    /// Moves the clock forward and fires, in order, every timer that falls due.
    pub fn advance(&self, ms: Millis) -> Millis {
        let mut w = self.world.lock().unwrap_or_else(|e| e.into_inner());
        let target = self.clock.advance(ms);
        w.run_until(target);
        drop(w);
        self.timers_changed.notify_one();
        target
    }

    /// Tells the timer task that timers may have changed. A manual clock never waits on
    /// real time, so its timer task has nothing to recompute (it only fires on `advance`
    /// and on requests): skip the wake-up, which would otherwise cost a task switch and a
    /// world lock per request.
    pub(crate) fn poke(&self) {
        if self.clock.mode().rate().is_some() {
            self.timers_changed.notify_one();
        }
    }

    /// The IAM policies in force and the denials so far.
    pub(crate) fn iam(&self) -> MutexGuard<'_, iam::Iam> {
        self.iam.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Enforces `policy` (an IAM policy document) for requests signed with
    /// `access_key_id`, or for every access key but [`iam::ADMIN_ACCESS_KEY_ID`] when
    /// `None`. The error says what the document has that the sandbox cannot evaluate.
    pub fn enforce_policy(
        &self,
        access_key_id: Option<&str>,
        policy: serde_json::Value,
    ) -> Result<(), String> {
        self.iam().bind(access_key_id, policy)
    }

    pub(crate) fn faults(&self) -> MutexGuard<'_, Vec<faults::FaultRule>> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Fires timers as virtual time reaches them (real and fast clocks). In manual mode
    /// timers fire only on `advance` and whenever a request brings the world up to date.
    async fn run_timers(self: Arc<Self>) {
        loop {
            let next = self.lock().next_due();
            let wait = next.and_then(|at| self.clock.real_until(at));
            match wait {
                Some(d) => {
                    tokio::select! {
                        _ = tokio::time::sleep(d.max(std::time::Duration::from_millis(1))) => {}
                        _ = self.timers_changed.notified() => {}
                    }
                }
                None => self.timers_changed.notified().await,
            }
        }
    }
}

/// A sandbox serving on a socket.
#[derive(Debug)]
pub struct RunningSandbox {
    pub sandbox: Arc<Sandbox>,
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    timers: JoinHandle<()>,
}

impl RunningSandbox {
    /// The address it listens on (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://addr`, for `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops serving and waits for the server task to end.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.timers.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for RunningSandbox {
    fn drop(&mut self) {
        self.timers.abort();
        self.task.abort();
    }
}

/// Binds `config.listen` and serves the sandbox on it in the background.
pub async fn start(config: SandboxConfig) -> std::io::Result<RunningSandbox> {
    let listener = TcpListener::bind(config.listen).await?;
    let sandbox = Sandbox::new(config.clock, config.behaviour);
    serve_on(listener, sandbox).await
}

/// Serves an existing sandbox on an already-bound listener, in the background.
pub(crate) async fn serve_on(
    listener: TcpListener,
    sandbox: Arc<Sandbox>,
) -> std::io::Result<RunningSandbox> {
    let addr = listener.local_addr()?;
    let (tx, rx) = oneshot::channel::<()>();
    let timers = tokio::spawn(sandbox.clone().run_timers());
    let app = server::router(sandbox.clone(), addr);
    let task = tokio::spawn(async move {
        let r = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await;
        if let Err(e) = r {
            tracing::error!(error = %e, "sandbox server stopped");
        }
    });
    Ok(RunningSandbox {
        sandbox,
        addr,
        shutdown: Some(tx),
        task,
        timers,
    })
}
