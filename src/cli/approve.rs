//! `guidesmith approve PLAN --name NAME --role surgeon|engineer`: a review of the plan, bound to its inputs.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use guidesmith::case::{approve, open_bone};
use guidesmith::plan::{Decision, Plan, Role};
use guidesmith::progress::Progress;

#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// The plan (JSON); the review is added to it.
    plan: PathBuf,
    /// The reviewer's name, as they sign.
    #[arg(long)]
    name: String,
    /// The reviewer's role: only a surgeon's approval releases the guides for production.
    #[arg(long, value_enum)]
    role: RoleArg,
    /// A comment kept with the review.
    #[arg(long, default_value = "")]
    comment: String,
    /// Record a rejection instead of an approval (the plan must be changed; `build` refuses release).
    #[arg(long)]
    reject: bool,
    /// The CT series, if not where the plan says (its hash must still match).
    #[arg(long)]
    ct: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum RoleArg {
    Surgeon,
    Engineer,
}

pub fn run_approve(args: &ApproveArgs, progress: &dyn Progress) -> anyhow::Result<ExitCode> {
    let mut plan = Plan::load(&args.plan)?;
    // The plan's own bone, its CT's hash checked: the review is of this CT.
    let bone = open_bone(&plan, &args.plan, args.ct.as_deref(), progress)?.mesh;
    let role = match args.role {
        RoleArg::Surgeon => Role::Surgeon,
        RoleArg::Engineer => Role::Engineer,
    };
    let decision = if args.reject {
        Decision::Rejected
    } else {
        Decision::Approved
    };
    let at_utc = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let approval = approve(&mut plan, &bone, &args.name, role, decision, &args.comment, &at_utc)?.clone();
    plan.save(&args.plan)?;
    println!(
        "{} by {} ({}) at {}, bound to design {}",
        if args.reject { "rejected" } else { "approved" },
        approval.reviewer,
        role.as_str(),
        approval.at_utc,
        approval.binding.sha256
    );
    Ok(ExitCode::SUCCESS)
}
