//! Distributions and the steps' times in the controller's log.

use std::collections::HashMap;

use serde_json::{Value, json};

/// p50, p90, p99 and max of a set of millisecond values (nearest rank).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Dist {
    pub n: usize,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub max: u64,
}

impl Dist {
    pub(crate) fn of(mut v: Vec<u64>) -> Dist {
        if v.is_empty() {
            return Dist::default();
        }
        v.sort_unstable();
        let rank = |p: f64| {
            let i = ((p / 100.0) * v.len() as f64).ceil() as usize;
            v[i.clamp(1, v.len()) - 1]
        };
        Dist {
            n: v.len(),
            p50: rank(50.0),
            p90: rank(90.0),
            p99: rank(99.0),
            max: v[v.len() - 1],
        }
    }

    pub(crate) fn json(&self) -> Value {
        json!({"n": self.n, "p50": self.p50, "p90": self.p90, "p99": self.p99, "max": self.max})
    }

    /// `p50 / p90 / p99 / max`.
    pub(crate) fn row(&self) -> String {
        if self.n == 0 {
            return "–".into();
        }
        format!("{} / {} / {} / {}", self.p50, self.p90, self.p99, self.max)
    }
}

/// The steps' own time per instance, in milliseconds, from the controller's one `info`
/// line per action, `action done` (text format: the action span carries `instance=…`,
/// the event `steps_ms=…`, the sum of its steps' times). Several runs of one instance are
/// summed.
pub(crate) fn step_times(log: &str) -> HashMap<String, u64> {
    let mut out: HashMap<String, u64> = HashMap::new();
    for line in log.lines().filter(|l| l.contains("action done")) {
        let (Some(instance), Some(ms)) = (field(line, "instance="), field(line, "steps_ms="))
        else {
            continue;
        };
        if let Ok(ms) = ms.parse::<u64>() {
            *out.entry(instance.to_owned()).or_default() += ms;
        }
    }
    out
}

/// The value of `key` (`name=`) in a tracing text line, up to a space, `}` or `:`.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let at = line
        .find(&format!(" {key}"))
        .or_else(|| line.find(&format!("{{{key}")))?;
    let rest = &line[at + 1 + key.len()..];
    let end = rest.find([' ', '}', ':']).unwrap_or(rest.len());
    Some(rest[..end].trim_matches('"'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let d = Dist::of((1..=100).collect());
        assert_eq!((d.p50, d.p90, d.p99, d.max), (50, 90, 99, 100));
        let d = Dist::of(vec![7]);
        assert_eq!((d.p50, d.p99, d.max), (7, 7, 7));
        assert_eq!(Dist::of(vec![]).n, 0);
    }

    #[test]
    fn step_times_are_read_per_instance() {
        let log = "2026-11-22T18:00:00.1Z DEBUG action{token=ab-cd instance=i-0123 group=bench-burst hook=launch transition=autoscaling:EC2_INSTANCE_LAUNCHING}: lifehook_core::pipeline: step finished pipeline=\"bench\" step=noop step_type=\"exec\" status=\"succeeded\" attempts=1 duration_ms=3\n\
                   2026-11-22T18:00:00.1Z  INFO action{token=ab-cd instance=i-0123 group=bench-burst hook=launch transition=autoscaling:EC2_INSTANCE_LAUNCHING}: lifehook_aws::controller: action done outcome=\"completed\" elapsed_ms=5 steps_ms=3\n\
                   2026-11-22T18:00:00.2Z  INFO action{instance=i-9 token=x}: lifehook_aws::controller: action done outcome=\"completed\" elapsed_ms=14 steps_ms=12\n";
        let t = step_times(log);
        assert_eq!(t.len(), 2);
        assert_eq!(t["i-0123"], 3);
        assert_eq!(t["i-9"], 12);
    }
}
