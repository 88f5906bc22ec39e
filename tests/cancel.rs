//! Long work stops when the front end cancels it: loading a series, segmenting, meshing, decimating, building guides
//! and rendering them each return `Cancelled` soon after the cancel (counted in progress steps, not in seconds), and
//! no output file appears.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use guidesmith::bone::{self, BoneError, SurfaceOptions};
use guidesmith::case::demo::{demo_in_memory, demo_segmentation};
use guidesmith::case::{build_guides, write_guides, CaseError, GuideOutcome};
use guidesmith::mesh::{decimate_checked_with, DecimateOptions, Mesh, MeshError};
use guidesmith::plan::Plan;
use guidesmith::progress::{CancelFlag, NoProgress, Progress};
use guidesmith::volume::VolumeError;

/// A progress reporter that cancels when stage `stage` has reported `after` steps (or at its start when `after` is
/// 0), and counts the steps reported after that, in any stage.
struct CancelAt {
    stage: &'static str,
    after: u64,
    current: Mutex<String>,
    steps_in_stage: AtomicU64,
    steps_after_cancel: AtomicU64,
    stages_after_cancel: Mutex<Vec<String>>,
    flag: CancelFlag,
}

impl CancelAt {
    fn new(stage: &'static str, after: u64) -> CancelAt {
        CancelAt {
            stage,
            after,
            current: Mutex::new(String::new()),
            steps_in_stage: AtomicU64::new(0),
            steps_after_cancel: AtomicU64::new(0),
            stages_after_cancel: Mutex::new(Vec::new()),
            flag: CancelFlag::new(),
        }
    }

    fn cancelled_at_all(&self) -> bool {
        self.flag.is_set()
    }
}

impl Progress for CancelAt {
    fn begin(&self, stage: &str, _total: u64) {
        if self.flag.is_set() {
            self.stages_after_cancel.lock().expect("lock").push(stage.to_string());
        }
        *self.current.lock().expect("lock") = stage.to_string();
        self.steps_in_stage.store(0, Ordering::SeqCst);
        if stage == self.stage && self.after == 0 {
            self.flag.cancel();
        }
    }

    fn advance(&self, steps: u64) {
        if self.flag.is_set() {
            self.steps_after_cancel.fetch_add(steps, Ordering::SeqCst);
            return;
        }
        let done = self.steps_in_stage.fetch_add(steps, Ordering::SeqCst) + steps;
        if *self.current.lock().expect("lock") == self.stage && done >= self.after {
            self.flag.cancel();
        }
    }

    fn is_cancelled(&self) -> bool {
        self.flag.is_set()
    }
}

/// The demo's volume, bone and plan (the CT sampled in memory).
fn demo() -> (guidesmith::volume::Volume, Mesh, Plan) {
    let demo = demo_in_memory(&NoProgress).expect("demo case");
    (demo.volume, demo.bone.mesh, demo.plan)
}

fn files_under(dir: &Path) -> usize {
    match std::fs::read_dir(dir) {
        Err(_) => 0,
        Ok(entries) => entries
            .map(|e| {
                let e = e.expect("entry");
                if e.path().is_dir() {
                    files_under(&e.path())
                } else {
                    1
                }
            })
            .sum(),
    }
}

#[test]
fn loading_a_real_series_stops_within_a_few_files_of_a_cancel() {
    let Some(ct) = common::data("ct/cranium-0051") else {
        return;
    };
    // Cancel after 10 of the 108 headers, and again after 10 of the 108 slices decoded.
    for stage in ["reading headers", "decoding slices"] {
        let progress = CancelAt::new(stage, 10);
        let err = guidesmith::volume::load(&ct, None, &progress)
            .map(|_| ())
            .expect_err(stage);
        assert!(matches!(err, VolumeError::Cancelled(_)), "{stage}: {err}");
        // Work already handed to the worker threads finishes; nothing new starts. Two workers: a handful of files.
        let after = progress.steps_after_cancel.load(Ordering::SeqCst);
        assert!(after <= 8, "{stage}: {after} files after the cancel");
        assert!(progress.stages_after_cancel.lock().expect("lock").is_empty());
    }
}

#[test]
fn segmentation_meshing_and_decimation_stop_at_their_next_step() {
    let (volume, bone, _) = demo();
    let seg = demo_segmentation();
    let options = SurfaceOptions {
        decimate_keep_fraction: Some(0.1),
        ..SurfaceOptions::default()
    };
    // Cancelled as the segmentation starts, as the surface starts, and as decimation starts: the next stage never
    // begins.
    for stage in ["segmenting", "surface", "decimating"] {
        let progress = CancelAt::new(stage, 0);
        let err = bone::extract_bone(&volume, &seg.recipe, &options, &progress)
            .map(|_| ())
            .expect_err(stage);
        assert!(matches!(err, BoneError::Cancelled(_)), "{stage}: {err}");
        assert!(progress.cancelled_at_all());
        assert_eq!(
            *progress.stages_after_cancel.lock().expect("lock"),
            Vec::<String>::new(),
            "{stage}: no stage after the cancel"
        );
    }
    // Decimation itself polls the flag while it collapses edges: a flag set before it starts stops it at once.
    let flag = guidesmith::progress::Cancellable(CancelFlag::new());
    flag.0.cancel();
    let err = decimate_checked_with(
        &bone,
        DecimateOptions {
            target_triangles: Some(bone.triangles.len() / 10),
            max_error_mm: None,
        },
        &flag,
    )
    .map(|_| ())
    .expect_err("cancelled");
    assert!(matches!(err, MeshError::Cancelled(_)), "{err}");
}

#[test]
fn guide_builds_and_renders_stop_and_write_nothing() {
    let (_, bone, plan) = demo();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("guides");

    // Cancelled as the guides start building: no guide is built.
    let progress = CancelAt::new("building guides", 0);
    let err = build_guides(&plan, &bone, None, &progress)
        .map(|_| ())
        .expect_err("build");
    assert!(matches!(err, CaseError::Cancelled(_)), "{err}");
    assert_eq!(progress.steps_after_cancel.load(Ordering::SeqCst), 0);

    // Cancelled after the first guide: the build stops (a guide built beside it reports no progress) and returns no
    // guide.
    let progress = CancelAt::new("building guides", 1);
    let err = build_guides(&plan, &bone, None, &progress)
        .map(|_| ())
        .expect_err("build");
    assert!(matches!(err, CaseError::Cancelled(_)), "{err}");
    assert_eq!(progress.steps_after_cancel.load(Ordering::SeqCst), 0);

    // Built, then cancelled while the review images are made: nothing is written.
    let built = build_guides(&plan, &bone, None, &NoProgress).expect("build");
    assert!(built
        .guides
        .iter()
        .all(|g| matches!(g.outcome, GuideOutcome::Built { .. })));
    for after in [0, 1] {
        let progress = CancelAt::new("rendering", after);
        let err = write_guides(&out, &plan, &bone, &built, &draft(&plan), &progress)
            .map(|_| ())
            .expect_err("render");
        assert!(matches!(err, CaseError::Cancelled(_)), "{err}");
        assert!(progress.steps_after_cancel.load(Ordering::SeqCst) == 0);
        assert_eq!(files_under(dir.path()), 0, "no output file after a cancel");
    }
    // Not cancelled: everything is written.
    write_guides(&out, &plan, &bone, &built, &draft(&plan), &NoProgress).expect("write");
    assert_eq!(files_under(&out), 7, "2 STL, 3MF, 3 review images and the manifest");
}

/// The plan's guides as drafts (nobody approved the test plan).
fn draft(plan: &guidesmith::plan::Plan) -> guidesmith::export::Release {
    guidesmith::case::release_for(plan, None, true).expect("a draft is always allowed")
}
