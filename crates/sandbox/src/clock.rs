//! The sandbox's virtual clock.
//!
//! Virtual time is milliseconds since the Unix epoch. It starts at the real time when the
//! sandbox starts and then moves according to the mode:
//! - `real`: one virtual second per real second;
//! - `fast:N`: N virtual seconds per real second (N may be fractional, e.g. `fast:60`);
//! - `manual`: only `POST /_sandbox/clock/advance` moves it.
//!
//! `advance` works in every mode and fires every timer that falls due, in order.

use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, in virtual time.
pub(crate) type Millis = u64;

/// How virtual time moves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ClockMode {
    Real,
    Fast(f64),
    Manual,
}

impl ClockMode {
    /// Virtual milliseconds per real millisecond, or `None` when time moves only on demand.
    pub(crate) fn rate(self) -> Option<f64> {
        match self {
            ClockMode::Real => Some(1.0),
            ClockMode::Fast(n) => Some(n),
            ClockMode::Manual => None,
        }
    }
}

impl FromStr for ClockMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "real" => Ok(ClockMode::Real),
            "manual" => Ok(ClockMode::Manual),
            other => match other.strip_prefix("fast:") {
                Some(n) => match n.parse::<f64>() {
                    Ok(n) if n.is_finite() && n > 0.0 && n <= 1_000_000.0 => Ok(ClockMode::Fast(n)),
                    _ => Err(format!(
                        "invalid clock mode {other:?}: the speed-up in fast:N must be a number above 0 and at most 1000000"
                    )),
                },
                None => Err(format!(
                    "invalid clock mode {other:?}: expected real, manual or fast:N (for example fast:60)"
                )),
            },
        }
    }
}

impl fmt::Display for ClockMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClockMode::Real => f.write_str("real"),
            ClockMode::Fast(n) => write!(f, "fast:{n}"),
            ClockMode::Manual => f.write_str("manual"),
        }
    }
}

#[derive(Debug)]
struct Anchor {
    virtual_ms: Millis,
    real: Instant,
}

/// The virtual clock. Cheap to read from any thread.
#[derive(Debug)]
pub(crate) struct Clock {
    mode: ClockMode,
    anchor: Mutex<Anchor>,
}

impl Clock {
    pub(crate) fn new(mode: ClockMode) -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        Self::starting_at(mode, now)
    }

    pub(crate) fn starting_at(mode: ClockMode, virtual_ms: Millis) -> Self {
        Clock {
            mode,
            anchor: Mutex::new(Anchor {
                virtual_ms,
                real: Instant::now(),
            }),
        }
    }

    pub(crate) fn mode(&self) -> ClockMode {
        self.mode
    }

    /// The current virtual time.
    pub(crate) fn now(&self) -> Millis {
        let a = self.anchor.lock().unwrap_or_else(|e| e.into_inner());
        Self::at(self.mode, &a, Instant::now())
    }

    fn at(mode: ClockMode, a: &Anchor, real: Instant) -> Millis {
        match mode.rate() {
            None => a.virtual_ms,
            Some(rate) => {
                let elapsed = real.saturating_duration_since(a.real).as_secs_f64() * 1000.0;
                a.virtual_ms + (elapsed * rate) as u64
            }
        }
    }

    /// Moves virtual time forward by `ms`; returns the new time.
    pub(crate) fn advance(&self, ms: Millis) -> Millis {
        let mut a = self.anchor.lock().unwrap_or_else(|e| e.into_inner());
        let real = Instant::now();
        let now = Self::at(self.mode, &a, real);
        a.virtual_ms = now.saturating_add(ms);
        a.real = real;
        a.virtual_ms
    }

    /// How long, in real time, until virtual time reaches `target` (None in manual mode).
    pub(crate) fn real_until(&self, target: Millis) -> Option<Duration> {
        let rate = self.mode.rate()?;
        let now = self.now();
        let ms = target.saturating_sub(now) as f64 / rate;
        Some(Duration::from_micros((ms * 1000.0) as u64))
    }
}

/// Formats virtual time as ISO-8601 with milliseconds.
pub(crate) fn iso_millis(ms: Millis) -> String {
    lifehook_model::format_time_millis(to_datetime(ms))
}

/// Formats virtual time as ISO-8601 with seconds.
pub(crate) fn iso_secs(ms: Millis) -> String {
    lifehook_model::format_time_secs(to_datetime(ms))
}

pub(crate) fn to_datetime(ms: Millis) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms as i64).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse() {
        assert_eq!("real".parse::<ClockMode>().unwrap(), ClockMode::Real);
        assert_eq!("manual".parse::<ClockMode>().unwrap(), ClockMode::Manual);
        assert_eq!(
            "fast:60".parse::<ClockMode>().unwrap(),
            ClockMode::Fast(60.0)
        );
        assert!("fast:0".parse::<ClockMode>().is_err());
        assert!("fast:x".parse::<ClockMode>().is_err());
        assert!("slow".parse::<ClockMode>().is_err());
    }

    #[test]
    fn manual_moves_only_on_advance() {
        let c = Clock::starting_at(ClockMode::Manual, 1_000);
        assert_eq!(c.now(), 1_000);
        assert_eq!(c.advance(500), 1_500);
        assert_eq!(c.now(), 1_500);
        assert_eq!(c.real_until(2_000), None);
    }

    #[test]
    fn iso_formats() {
        assert_eq!(iso_millis(1_694_403_033_136), "2023-09-11T03:30:33.136Z");
        assert_eq!(iso_secs(1_694_403_033_136), "2023-09-11T03:30:33Z");
    }
}
