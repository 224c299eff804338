//! `lifehook setup --config FILE [--dry-run]`: provisions, idempotently, what the
//! configuration's handlers need (see `lifehook_aws::setup`), printing the plan and then
//! each change as it is made.
//!
//! Exit codes: 0 done (or nothing to do); 1 an AWS call failed (what was done is printed;
//! running setup again carries on); 2 usage or configuration error (including a missing
//! `[setup]` section or group).

use std::path::PathBuf;

use lifehook_aws::setup::{self, SetupError, Status};

use crate::controller::load_config;
use crate::exit::{Failure, Outcome};
use crate::out::outln;

#[derive(Debug, clap::Args)]
pub(crate) struct SetupArgs {
    /// The configuration whose `[setup]` section says what to provision.
    #[arg(long, short = 'c', env = "LIFEHOOK_CONFIG", value_name = "FILE")]
    pub config: PathBuf,
    /// Print the plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub(crate) async fn run(args: SetupArgs) -> Outcome {
    let config = load_config(&args.config)?;
    if config.setup.is_none() {
        return Err(Failure::usage(format!(
            "{} has no [setup] section: nothing to provision (see docs/configuration.md, \"setup\")",
            args.config.display()
        )));
    }
    let clients = lifehook_aws::Clients::load()
        .await
        .map_err(Failure::error)?;
    let plan = match setup::plan(&clients, &config).await {
        Ok(p) => p,
        Err(e @ (SetupError::MissingGroups(_) | SetupError::Config(_) | SetupError::NoSetup)) => {
            return Err(Failure::usage(format!("{}: {e}", args.config.display())));
        }
        Err(e) => return Err(Failure::runtime(format!("reading what exists: {e}"))),
    };
    outln!(
        "lifehook setup: {} in {}{}",
        args.config.display(),
        plan.region,
        if args.dry_run {
            " (dry run: nothing is changed)"
        } else {
            ""
        }
    );
    for c in &plan.changes {
        outln!("  {c}");
    }
    let (create, update, same) = (
        plan.count(Status::Create),
        plan.count(Status::Update),
        plan.count(Status::Unchanged),
    );
    if plan.is_empty() {
        outln!("Nothing to change: {same} resource(s) up to date.");
        return Ok(());
    }
    outln!("Plan: {create} to create, {update} to update, {same} unchanged.");
    if args.dry_run {
        return Ok(());
    }
    let mut n = 0;
    let result = setup::apply(&clients, &plan, |c| {
        n += 1;
        let verb = if c.status == Status::Create {
            "created"
        } else {
            "updated"
        };
        outln!("  {verb} {}", c.resource);
    })
    .await;
    match result {
        Ok(()) => {
            outln!("Done: {n} change(s) made.");
            Ok(())
        }
        Err(e) => Err(Failure::runtime(format!(
            "{e}\n{n} change(s) were made before this; run setup again to carry on"
        ))),
    }
}
