//! `lifehook check CONFIG`: validate a configuration file (`-`: standard input).
//!
//! Prints every problem as `path:line:col: message` on stderr and exits 2; prints a short
//! summary on stdout and exits 0 when the file is valid. Environment overrides
//! (`LIFEHOOK_QUEUE_URL`, `LIFEHOOK_CONCURRENCY`, ...) are applied and checked as they
//! would be at run time.

use std::path::{Path, PathBuf};

use lifehook_core::config::{self, DeadlinePolicy, Source, format_duration};

use crate::exit::{Failure, Outcome};
use crate::out::outln;

#[derive(Debug, clap::Args)]
pub(crate) struct CheckArgs {
    /// The configuration file (TOML) to validate; `-` reads it from standard input.
    #[arg(value_name = "FILE", required_unless_present = "config_flag")]
    pub config: Option<PathBuf>,
    /// The same, as the other subcommands take it (`--config FILE`, `LIFEHOOK_CONFIG`).
    #[arg(
        long = "config",
        short = 'c',
        env = "LIFEHOOK_CONFIG",
        value_name = "FILE",
        conflicts_with = "config"
    )]
    pub config_flag: Option<PathBuf>,
}

pub(crate) fn run(args: CheckArgs) -> Outcome {
    let Some(path) = args.config.or(args.config_flag) else {
        return Err(Failure::usage("which configuration? `lifehook check FILE`"));
    };
    let (loaded, name) = if path == Path::new("-") {
        let name = PathBuf::from(config::STDIN_NAME);
        (
            config::load_from_reader(std::io::stdin().lock(), &name),
            name,
        )
    } else {
        (config::load(&path), path)
    };
    match loaded {
        Ok(cfg) => {
            outln!("{}: OK", name.display());
            outln!("  source: {}", describe_source(&cfg.source));
            outln!(
                "  keepalive: heartbeat at {} of the heartbeat timeout (at least every {}), stop {} before the deadline",
                cfg.keepalive.heartbeat_fraction,
                format_duration(cfg.keepalive.min_interval),
                format_duration(cfg.keepalive.deadline_margin)
            );
            if let Some(s) = &cfg.setup {
                let hooks: Vec<&str> = s.hooks.iter().map(|h| h.name.as_str()).collect();
                outln!(
                    "  setup: hook(s) {} on {}, delivered by {}",
                    hooks.join(", "),
                    s.groups.join(", "),
                    s.delivery.as_str()
                );
            }
            outln!("  {} pipeline(s), first match wins:", cfg.pipelines.len());
            for p in &cfg.pipelines {
                let steps: Vec<String> = p
                    .steps
                    .iter()
                    .map(|s| format!("{} ({})", s.name, s.kind.type_name()))
                    .collect();
                let deadline = match p.policy.on_deadline {
                    DeadlinePolicy::Complete(r) => r.as_str().to_owned(),
                    DeadlinePolicy::Hold => "HOLD".to_owned(),
                };
                outln!(
                    "    {}: {} → success {}, failure {}, deadline {}",
                    p.name,
                    steps.join(", "),
                    p.policy.on_success,
                    p.policy.on_failure,
                    deadline
                );
            }
            Ok(())
        }
        Err(problems) => Err(Failure::problems(
            &problems,
            format!("{}: {} problem(s) found", name.display(), problems.len()),
        )),
    }
}

fn describe_source(s: &Source) -> String {
    match (&s.queue_url, s.imds) {
        (Some(q), _) => format!(
            "SQS {q} (concurrency {}, visibility {})",
            s.concurrency,
            format_duration(s.visibility_timeout)
        ),
        (None, true) => "IMDS target-lifecycle-state (no queue)".to_owned(),
        (None, false) => match &s.topic_arn {
            Some(t) => format!("SNS {t} (agent: an inbox queue filtered on its instance id)"),
            None => "none (Lambda events, the agent's launch action at start, or LIFEHOOK_QUEUE_URL at run time)".to_owned(),
        },
    }
}
