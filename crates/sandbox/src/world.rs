//! The sandbox's state: every region's services, the timers of virtual time, and the
//! options that choose between unconfirmed behaviours (spec §7).
//!
//! All state lives in one [`World`] behind one mutex. Services that act on one another
//! (Auto Scaling publishing to SQS, SNS or EventBridge; SNS delivering to SQS; EventBridge
//! rules targeting queues) do so synchronously under that lock, so every request sees a
//! consistent world and every cross-service effect is atomic.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::clock::Millis;

/// Whether `r` can name a region: 1–64 ASCII letters, digits and dashes.
pub(crate) fn is_region_name(r: &str) -> bool {
    !r.is_empty() && r.len() <= 64 && r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}
use crate::{autoscaling, ecs, elbv2, events, s3, sns, sqs, ssm};

/// Options for behaviour the spec marks unconfirmed (§7), with the documented defaults.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields, rename_all = "snake_case")]
pub struct Behaviour {
    pub(crate) autoscaling: autoscaling::Options,
    pub(crate) ec2: crate::ec2::Options,
}

#[allow(clippy::derivable_impls)]
impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            autoscaling: autoscaling::Options::default(),
            ec2: crate::ec2::Options::default(),
        }
    }
}

/// One region's services.
#[derive(Debug, Default)]
pub struct Region {
    pub(crate) name: String,
    pub autoscaling: autoscaling::State,
    pub(crate) sqs: sqs::State,
    pub(crate) sns: sns::State,
    pub(crate) events: events::State,
    pub(crate) s3: s3::State,
    pub(crate) ssm: ssm::State,
    pub(crate) ecs: ecs::State,
    pub(crate) ec2: crate::ec2::State,
    pub(crate) elbv2: elbv2::State,
    pub(crate) cloudformation: crate::cloudformation::State,
    pub(crate) lambda: crate::lambda::State,
}

/// Something to do at a point of virtual time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Timer {
    AutoScaling(autoscaling::Timer),
    Sqs(sqs::Timer),
    Ssm(ssm::Timer),
    Ecs(ecs::Timer),
    Ec2(crate::ec2::Timer),
    Elbv2(elbv2::Timer),
    Lambda(crate::lambda::Timer),
}

/// The whole sandbox state.
#[derive(Debug)]
pub struct World {
    /// The virtual time this state has been brought up to.
    pub(crate) now: Millis,
    pub(crate) behaviour: Behaviour,
    pub regions: BTreeMap<String, Region>,
    timers: BTreeMap<(Millis, u64), (String, Timer)>,
    next_seq: u64,
}

impl World {
    pub(crate) fn new(now: Millis, behaviour: Behaviour) -> Self {
        World {
            now,
            behaviour,
            regions: BTreeMap::new(),
            timers: BTreeMap::new(),
            next_seq: 0,
        }
    }

    /// The region named `name`, created empty on first use.
    // The region is inserted just above when missing.
    #[allow(clippy::expect_used)]
    pub(crate) fn region(&mut self, name: &str) -> &mut Region {
        // Look up before inserting: this is called many times per request, and `entry`
        // would allocate the key every time.
        if !self.regions.contains_key(name) {
            self.regions.insert(
                name.to_owned(),
                Region {
                    name: name.to_owned(),
                    ..Region::default()
                },
            );
        }
        self.regions
            .get_mut(name)
            .expect("region inserted just above")
    }

    /// Schedules `timer` for `region` at virtual time `at`.
    pub(crate) fn schedule(&mut self, at: Millis, region: &str, timer: Timer) {
        self.next_seq += 1;
        self.timers
            .insert((at, self.next_seq), (region.to_owned(), timer));
    }

    /// When the next timer falls due.
    pub(crate) fn next_due(&self) -> Option<Millis> {
        self.timers.keys().next().map(|(at, _)| *at)
    }

    pub fn pending_timers(&self) -> usize {
        self.timers.len()
    }

    /// Brings the world up to virtual time `to`, firing every timer due by then in order
    /// of due time (and of scheduling, for equal times). Each timer runs with `now` set to
    /// its own due time, so deadlines are exact however far the clock jumps. Returns how
    /// many timers fired.
    pub(crate) fn run_until(&mut self, to: Millis) -> usize {
        let mut fired = 0;
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > to {
                break;
            }
            let ((at, _), (region, timer)) = entry.remove_entry();
            self.now = self.now.max(at);
            self.fire(&region, timer);
            fired += 1;
        }
        self.now = self.now.max(to);
        fired
    }

    fn fire(&mut self, region: &str, timer: Timer) {
        match timer {
            Timer::AutoScaling(t) => autoscaling::on_timer(self, region, t),
            Timer::Sqs(t) => sqs::on_timer(self, region, t),
            Timer::Ssm(t) => ssm::on_timer(self, region, t),
            Timer::Ecs(t) => ecs::on_timer(self, region, t),
            Timer::Ec2(t) => crate::ec2::on_timer(self, region, t),
            Timer::Elbv2(t) => elbv2::on_timer(self, region, t),
            Timer::Lambda(t) => crate::lambda::on_timer(self, region, t),
        }
    }

    /// Forgets every resource of every region (the clock and the options stay).
    pub(crate) fn reset(&mut self) {
        self.regions.clear();
        self.timers.clear();
    }
}

/// The region and name a delivery to `arn` goes to: the ARN's own region, or `region` where
/// the ARN names none; `NoSuchTarget` where `parse` does not take the ARN.
pub(crate) fn delivery_target<'a>(
    region: &'a str,
    arn: &'a str,
    parse: impl Fn(&'a str) -> Option<(&'a str, &'a str)>,
) -> Result<(&'a str, &'a str), DeliveryError> {
    let (arn_region, name) =
        parse(arn).ok_or_else(|| DeliveryError::NoSuchTarget(arn.to_owned()))?;
    Ok((
        if arn_region.is_empty() {
            region
        } else {
            arn_region
        },
        name,
    ))
}

/// Why a service could not deliver a message to a target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DeliveryError {
    #[error("target {0} does not exist")]
    NoSuchTarget(String),
    #[error("target {arn} refused the message: {reason}")]
    Refused { arn: String, reason: String },
}
