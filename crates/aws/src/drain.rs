//! Stopping a handler: what the controller and the agent share once they stop receiving.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::task::{JoinError, JoinSet};
use tokio_util::sync::CancellationToken;

/// How many actions ended each way, by outcome label.
pub type Outcomes = BTreeMap<&'static str, u64>;

/// Counts one finished action task under `label` of its outcome (`failed` if the task
/// itself failed).
pub fn count<T>(
    outcomes: &mut Outcomes,
    done: Result<T, JoinError>,
    label: impl Fn(&T) -> &'static str,
) {
    let label = match &done {
        Ok(o) => label(o),
        Err(e) => {
            tracing::warn!(error = %e, "action task failed");
            "failed"
        }
    };
    *outcomes.entry(label).or_default() += 1;
}

/// Lets `tasks` finish within `grace`, then cancels the rest (`cancel`) and waits for them
/// to wind down. Every finished task goes to `on_done`. Returns how many were still
/// running when the grace period ran out (0 when all finished in time).
pub async fn drain<T: 'static>(
    tasks: &mut JoinSet<T>,
    grace: Duration,
    cancel: &CancellationToken,
    mut on_done: impl FnMut(Result<T, JoinError>),
) -> usize {
    let deadline = tokio::time::sleep(grace);
    tokio::pin!(deadline);
    let mut left = 0;
    loop {
        tokio::select! {
            _ = &mut deadline => {
                left = tasks.len();
                cancel.cancel();
                break;
            }
            done = tasks.join_next() => match done {
                Some(done) => on_done(done),
                None => break,
            },
        }
    }
    while let Some(done) = tasks.join_next().await {
        on_done(done);
    }
    left
}
