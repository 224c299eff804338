//! The lifecycle history of a region, for the timeline picture (`GET /_sandbox/timeline`,
//! the web view, `lifehook demo --report`): every state an instance entered, every
//! lifecycle action with its heartbeats, its deadlines and how it ended — with the result
//! and who gave it (a handler's `CompleteLifecycleAction`, or the hook's DefaultResult on a
//! timeout, spec §2.4).
//!
//! It is recorded where the state machine acts ([`super::engine`]), never by polling, so
//! no step is missed however fast the clock runs. It is bounded: the last
//! [`MAX_TIMELINE_EVENTS`] events per region are kept, and [`Timeline::dropped`] counts
//! the ones forgotten (an instance whose first events were dropped starts where its
//! history starts). `POST /_sandbox/reset` forgets it with the region.

use std::collections::{BTreeMap, VecDeque};

use lifehook_model::{LifecycleResult, LifecycleState as S, LifecycleTransition as T};
use serde_json::{Value, json};

use super::engine::Resolution;
use crate::clock::Millis;

/// Events kept per region; the oldest are dropped first.
pub(crate) const MAX_TIMELINE_EVENTS: usize = 50_000;

/// One thing that happened to an instance, at a virtual time.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Event {
    pub(crate) at: Millis,
    pub(crate) group: String,
    pub(crate) instance: String,
    pub(crate) what: What,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum What {
    /// The instance entered this lifecycle state.
    State(S),
    /// A lifecycle action began, one per hook of the transition (§2.5).
    ActionStarted {
        token: String,
        hook: String,
        transition: T,
        heartbeat_deadline: Millis,
        global_deadline: Millis,
    },
    /// `RecordLifecycleActionHeartbeat` moved the heartbeat deadline (§2.4).
    Heartbeat {
        token: String,
        heartbeat_deadline: Millis,
    },
    /// The action ended with a result.
    Resolved {
        token: String,
        result: LifecycleResult,
        how: Resolution,
    },
    /// The action ended without a result of its own: another hook's ABANDON, or the
    /// instance left its wait (terminated, force-deleted) while it was open.
    Cancelled { token: String },
}

/// A region's bounded history.
#[derive(Debug, Default)]
pub(crate) struct Timeline {
    events: VecDeque<Event>,
    /// Events dropped from the front to keep the history bounded.
    dropped: u64,
}

impl Timeline {
    pub(crate) fn push(&mut self, at: Millis, group: &str, instance: &str, what: What) {
        if self.events.len() >= MAX_TIMELINE_EVENTS {
            self.events.pop_front();
            self.dropped += 1;
        }
        self.events.push_back(Event {
            at,
            group: group.to_owned(),
            instance: instance.to_owned(),
            what,
        });
    }

    #[cfg(test)]
    pub(crate) fn events(&self) -> impl Iterator<Item = &Event> {
        self.events.iter()
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }

    /// One lane per instance, in order of first appearance.
    pub(crate) fn lanes(&self) -> Vec<Lane> {
        let mut order: Vec<String> = Vec::new();
        let mut lanes: BTreeMap<String, Lane> = BTreeMap::new();
        for e in &self.events {
            let lane = lanes.entry(e.instance.clone()).or_insert_with(|| {
                order.push(e.instance.clone());
                Lane {
                    instance: e.instance.clone(),
                    group: e.group.clone(),
                    states: Vec::new(),
                    actions: Vec::new(),
                }
            });
            lane.apply(e);
        }
        order
            .into_iter()
            .filter_map(|id| lanes.remove(&id))
            .collect()
    }
}

/// Who ended an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum By {
    /// `CompleteLifecycleAction`: a handler (or a person) answered.
    Handler,
    /// Nobody answered in time: the hook's DefaultResult applied (heartbeat or global
    /// timeout).
    DefaultResult,
    /// The hook was deleted while the action was open (§2.6).
    HookDeleted,
    /// Ended without a result of its own ([`What::Cancelled`]).
    Cancelled,
}

impl By {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            By::Handler => "handler",
            By::DefaultResult => "default-result",
            By::HookDeleted => "hook-deleted",
            By::Cancelled => "cancelled",
        }
    }
}

/// The wire name of a resolution (`GET /_sandbox/stats` uses the same).
pub(crate) fn how_str(how: Resolution) -> &'static str {
    match how {
        Resolution::Explicit => "completed",
        Resolution::Timeout => "heartbeat-timeout",
        Resolution::GlobalTimeout => "global-timeout",
        Resolution::HookDeleted => "hook-deleted",
    }
}

/// One instance's history.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Lane {
    pub(crate) instance: String,
    pub(crate) group: String,
    pub(crate) states: Vec<Segment>,
    pub(crate) actions: Vec<ActionSpan>,
}

/// A stretch of time in one state; `to` is `None` while the instance is still in it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Segment {
    pub(crate) state: S,
    pub(crate) from: Millis,
    pub(crate) to: Option<Millis>,
}

/// A lifecycle action from start to end.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ActionSpan {
    pub(crate) token: String,
    pub(crate) hook: String,
    pub(crate) transition: T,
    pub(crate) started: Millis,
    pub(crate) heartbeats: Vec<Millis>,
    /// The last heartbeat deadline set (where a heartbeat timeout fell).
    pub(crate) heartbeat_deadline: Millis,
    pub(crate) global_deadline: Millis,
    /// When it ended, with what and by whom; `None` while it is open.
    pub(crate) end: Option<End>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct End {
    pub(crate) at: Millis,
    pub(crate) result: Option<LifecycleResult>,
    pub(crate) by: By,
    pub(crate) how: &'static str,
}

impl Lane {
    fn apply(&mut self, e: &Event) {
        match &e.what {
            What::State(state) => {
                if let Some(last) = self.states.last_mut() {
                    last.to = Some(e.at);
                }
                self.states.push(Segment {
                    state: *state,
                    from: e.at,
                    to: None,
                });
            }
            What::ActionStarted {
                token,
                hook,
                transition,
                heartbeat_deadline,
                global_deadline,
            } => self.actions.push(ActionSpan {
                token: token.clone(),
                hook: hook.clone(),
                transition: *transition,
                started: e.at,
                heartbeats: Vec::new(),
                heartbeat_deadline: *heartbeat_deadline,
                global_deadline: *global_deadline,
                end: None,
            }),
            What::Heartbeat {
                token,
                heartbeat_deadline,
            } => {
                if let Some(a) = self.open_action(token) {
                    a.heartbeats.push(e.at);
                    a.heartbeat_deadline = *heartbeat_deadline;
                }
            }
            What::Resolved { token, result, how } => {
                let by = match how {
                    Resolution::Explicit => By::Handler,
                    Resolution::Timeout | Resolution::GlobalTimeout => By::DefaultResult,
                    Resolution::HookDeleted => By::HookDeleted,
                };
                if let Some(a) = self.open_action(token) {
                    a.end = Some(End {
                        at: e.at,
                        result: Some(*result),
                        by,
                        how: how_str(*how),
                    });
                }
            }
            What::Cancelled { token } => {
                if let Some(a) = self.open_action(token) {
                    a.end = Some(End {
                        at: e.at,
                        result: None,
                        by: By::Cancelled,
                        how: "cancelled",
                    });
                }
            }
        }
    }

    fn open_action(&mut self, token: &str) -> Option<&mut ActionSpan> {
        self.actions
            .iter_mut()
            .rev()
            .find(|a| a.token == token && a.end.is_none())
    }

    /// The lane as `GET /_sandbox/timeline` shows it (documented in `docs/sandbox.md`).
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "instance": self.instance,
            "group": self.group,
            "states": self.states.iter().map(|s| json!({
                "state": s.state.as_str(),
                "from_ms": s.from,
                "to_ms": s.to,
            })).collect::<Vec<_>>(),
            "actions": self.actions.iter().map(|a| json!({
                "token": a.token,
                "hook": a.hook,
                "transition": a.transition.as_str(),
                "started_ms": a.started,
                "heartbeats_ms": a.heartbeats,
                "heartbeat_deadline_ms": a.heartbeat_deadline,
                "global_deadline_ms": a.global_deadline,
                "ended_ms": a.end.as_ref().map(|e| e.at),
                "result": a.end.as_ref().and_then(|e| e.result).map(LifecycleResult::as_str),
                "by": a.end.as_ref().map(|e| e.by.as_str()),
                "how": a.end.as_ref().map(|e| e.how),
            })).collect::<Vec<_>>(),
        })
    }
}
