//! `lifehook policy --config FILE`: the least-privilege IAM policy of each mode for a
//! configuration (see `docs/iam.md`).
//!
//! With one `--mode`, prints that mode's policy document as is (ready for
//! `aws iam put-role-policy --policy-document file://...`). With `--mode all` (the
//! default), prints one JSON object whose keys are the modes that apply to the
//! configuration (`agent`, `controller`, `lambda`) and whose values are their documents;
//! a mode that does not apply (the controller without a queue) is left out with a note on
//! stderr. A configuration error exits 2 with every problem located.

use std::path::PathBuf;

use lifehook_core::config;
use lifehook_core::policy::{Mode, PolicyError, PolicyOptions, policy};

use crate::exit::{Failure, Outcome};
use crate::out::outln;

#[derive(Debug, clap::Args)]
pub(crate) struct PolicyArgs {
    /// The configuration file (TOML).
    #[arg(long, short, env = "LIFEHOOK_CONFIG", value_name = "FILE")]
    pub config: PathBuf,
    /// `agent`, `controller`, `lambda` or `all`.
    #[arg(long, default_value = "all")]
    pub mode: String,
    /// The partition of the ARNs (`aws`, `aws-cn`, `aws-us-gov`); default: the one of the
    /// configuration's ARNs, else `aws`.
    #[arg(long)]
    pub partition: Option<String>,
    /// The region of the groups, stacks, clusters and instances; default: the
    /// `${aws:RequestedRegion}` policy variable.
    #[arg(long)]
    pub region: Option<String>,
    /// The account of the groups, stacks, clusters and instances; default: the
    /// `${aws:PrincipalAccount}` policy variable.
    #[arg(long)]
    pub account: Option<String>,
    /// The dead-letter queue (name or ARN) of the source queue, to allow setting messages
    /// aside to it.
    #[arg(long)]
    pub dead_letter_queue: Option<String>,
    /// The Lambda function's name, for its log group (lambda mode); default: any.
    #[arg(long)]
    pub function_name: Option<String>,
}

pub(crate) fn run(args: PolicyArgs) -> Outcome {
    let modes: Vec<Mode> = if args.mode == "all" {
        Mode::ALL.to_vec()
    } else {
        match args.mode.parse::<Mode>() {
            Ok(m) => vec![m],
            Err(e) => return Err(Failure::usage(format!("--mode: {e} (or all)"))),
        }
    };
    let cfg = match config::load(&args.config) {
        Ok(c) => c,
        Err(problems) => {
            return Err(Failure::problems(
                &problems,
                format!(
                    "{}: {} problem(s) found",
                    args.config.display(),
                    problems.len()
                ),
            ));
        }
    };
    let opts = PolicyOptions {
        partition: args.partition,
        region: args.region,
        account: args.account,
        dead_letter_queue: args.dead_letter_queue,
        function_name: args.function_name,
    };
    let invalid = |e: PolicyError| Failure {
        code: crate::exit::Code::Usage,
        lines: vec![format!("{}: {e}", args.config.display())],
    };
    if let [mode] = modes.as_slice() {
        let doc = policy(&cfg, *mode, &opts).map_err(invalid)?;
        outln!("{}", doc.to_json_pretty());
        return Ok(());
    }
    let mut all = serde_json::Map::new();
    for mode in modes {
        match policy(&cfg, mode, &opts) {
            Ok(doc) => {
                all.insert(mode.to_string(), serde_json::to_value(&doc)?);
            }
            Err(e @ PolicyError::NoQueue(_)) => {
                eprintln!("note: no {mode} policy: {e}");
            }
            Err(e) => return Err(invalid(e)),
        }
    }
    if opts.dead_letter_queue.is_none() && cfg.source.queue_url.is_some() {
        eprintln!(
            "note: without --dead-letter-queue, messages that cannot be handled are not moved to the queue's dead-letter queue by lifehook (SQS's redrive still moves them)"
        );
    }
    outln!("{}", serde_json::to_string_pretty(&all)?);
    Ok(())
}

/// `--enforce-policy [ACCESS_KEY_ID=]FILE`: (access key id, file). A `=` after a path
/// separator belongs to the file name.
pub(crate) fn enforce_spec(spec: &str) -> (Option<&str>, &str) {
    match spec.split_once('=') {
        Some((key, file)) if !key.is_empty() && !key.contains('/') => (Some(key), file),
        _ => (None, spec),
    }
}
