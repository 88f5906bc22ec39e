//! `guidesmith bundle PLAN -o CASE.zip` and `guidesmith verify CASE.zip`: the print lab's package and its check.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use guidesmith::case::{build_guides_for, make_bundle, open_bone, open_donor, release_for, verify_bundle, GuideBones};
use guidesmith::export::Release;
use guidesmith::plan::Plan;
use guidesmith::progress::Progress;

use super::build::{print_summary, SourceArgs};
use super::FAILED;

#[derive(Debug, Args)]
pub struct BundleArgs {
    /// The plan (JSON).
    plan: PathBuf,
    /// The bundle to write (a zip).
    #[arg(short, long)]
    output: PathBuf,
    #[command(flatten)]
    source: SourceArgs,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The bundle (a zip written by `guidesmith bundle`).
    bundle: PathBuf,
    /// Accept a draft bundle (exit 0 when all its hashes hold); without it a draft fails.
    #[arg(long)]
    draft: bool,
}

pub fn run_bundle(args: &BundleArgs, progress: &dyn Progress) -> anyhow::Result<ExitCode> {
    let plan = Plan::load(&args.plan)?;
    let release = release_for(&plan, None, args.source.draft)?;
    let bone = open_bone(&plan, &args.plan, args.source.ct.as_deref(), progress)?.mesh;
    let donor = open_donor(&plan, &args.plan, None, progress)?;
    let bones = GuideBones::of(&plan, &bone, donor.as_ref());
    let result = build_guides_for(&plan, bones.clone(), None, &release, progress)?;
    print_summary(&result);
    if !result.all_passed() {
        eprintln!("error: guides were refused or failed their checks; no bundle was written");
        return Ok(ExitCode::from(FAILED));
    }
    let bytes = make_bundle(&plan, bones, &result, &release, progress)?;
    guidesmith::atomic::write_atomic(&args.output, |w| w.write_all(&bytes))
        .with_context(|| format!("writing {}", args.output.display()))?;
    println!(
        "wrote {} ({} bytes, {}; SHA-256 {})",
        args.output.display(),
        bytes.len(),
        if release.is_draft() { "DRAFT" } else { "released" },
        guidesmith::plan::sha256_hex(&bytes)
    );
    Ok(ExitCode::SUCCESS)
}

pub fn run_verify(args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(&args.bundle).with_context(|| format!("reading {}", args.bundle.display()))?;
    let report = verify_bundle(&bytes);
    let failed: Vec<_> = report.checks.iter().filter(|c| c.result.is_err()).collect();
    for c in &failed {
        if let Err(why) = &c.result {
            println!("DOES NOT HOLD {}: {why}", c.what);
        }
    }
    let release = match &report.release {
        Some(Release::Approved {
            surgeon,
            at_utc,
            design_sha256,
        }) => {
            format!("released: approved by {surgeon} (surgeon) at {at_utc}, design {design_sha256}")
        }
        Some(Release::Draft { design_sha256 }) => format!("DRAFT (not for use on a patient), design {design_sha256}"),
        None => "release unknown".to_string(),
    };
    let verified = report.released() || (args.draft && report.all_hold());
    println!(
        "{}: {}; {} of {} checks hold; {release}",
        args.bundle.display(),
        if verified { "VERIFIED" } else { "NOT VERIFIED" },
        report.checks.len() - failed.len(),
        report.checks.len()
    );
    Ok(if verified {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(FAILED)
    })
}
