//! The bundled demo case: a synthetic jaw CT written as real DICOM files, loaded back, its bone segmented, a plan
//! with a symphysis resection and three drills, and a cutting guide and a drill guide built, checked and written.
//!
//! Why it lives here, once: the README's first command runs it (`guidesmith demo`), the tests build its guides, and
//! the guide timing example measures them; three copies of the plan had drifted apart before. Everything about the
//! case (the CT's geometry, the segmentation, the plan) is a function of this module, and [`run_demo`] runs it end
//! to end, reporting each step as a [`DemoEvent`] for the front end to show.

use std::path::Path;

use super::{build_guides_reusing, propose_guide, write_guides, CaseError, CaseGuides, VerifiedGuide};
use crate::bone::{self, BoneModel, SurfaceOptions};
use crate::export::ExportSummary;
use crate::measure::BoneQuery;
use crate::mesh::Mesh;
use crate::plan::{
    BoneSource, CaseId, CtReference, CuttingPlane, DrillTrajectory, Footprint, GuideLabel, GuideSpec, Plan,
    ResectedSide, Segmentation, SCHEMA_VERSION,
};
use crate::progress::Progress;
use crate::segment::{HuRange, Keep, SegmentRecipe};
use crate::synth::{self, Phantom, SeriesSpec};
use crate::volume::{Scan, Volume};

/// The demo's case ID.
pub const DEMO_CASE_ID: &str = "DEMO-JAW";
/// Marks a folder as the demo's own output, so running the demo again may replace it.
pub const DEMO_MARKER: &str = ".guidesmith-demo";
/// The printer profile of the demo's guides.
pub const DEMO_PRINTER: &str = "sla";

/// The demo CT: the U-shaped jaw phantom (cortical shell, marrow, soft tissue, 20 HU noise) on a 256 x 256 x 96
/// grid of 0.5 mm, centred on the origin.
pub fn demo_ct() -> (Phantom, SeriesSpec) {
    let phantom = Phantom::jaw().with_noise(20.0, 1);
    let mut spec = SeriesSpec::axial(256, 256, 96, 0.5, 0.5);
    spec.series_description = "guidesmith synthetic jaw".into();
    (phantom, spec.centered_on([0.0, 0.0, 0.0]))
}

/// The demo's segmentation: the bone preset (226..3071 HU), largest component, no smoothing or decimation.
pub fn demo_segmentation() -> Segmentation {
    let mut recipe = SegmentRecipe::new(HuRange::BONE);
    recipe.keep = Keep::Largest;
    Segmentation {
        recipe,
        smooth_iterations: 0,
        decimate_keep_fraction: None,
    }
}

/// The demo CT's volume sampled in memory, exactly as loading the written files gives it (the synthetic series
/// stores the sampled HU losslessly).
pub fn demo_volume() -> Result<Volume, CaseError> {
    let (phantom, spec) = demo_ct();
    let geometry = spec.layout()?.geometry.ok_or_else(|| CaseError::Demo {
        detail: "the demo series spec is not a regular grid".to_string(),
    })?;
    let hu = phantom.sample(&geometry)?;
    Ok(Volume {
        geometry,
        hu,
        series: Default::default(),
    })
}

/// The demo's plan on its bone: a symphysis resection between two sagittal planes with a cutting guide seated from
/// the front (a fixation screw on each side of the resection, in bone that remains), and three bicortical drills in
/// the left body with a drill guide whose seating direction and footprint are proposed (`propose_guide`). `ct` is the CT reference to record (`None` for a bone given without its CT).
pub fn demo_plan(bone: &Mesh, ct: Option<CtReference>, segmentation: Option<Segmentation>) -> Result<Plan, CaseError> {
    demo_plan_verified(bone, ct, segmentation).map(|(plan, _)| plan)
}

/// [`demo_plan`], with the proposed guide as its proposal's verification built and checked it (for
/// [`build_guides_reusing`]).
pub fn demo_plan_verified(
    bone: &Mesh,
    ct: Option<CtReference>,
    segmentation: Option<Segmentation>,
) -> Result<(Plan, Vec<VerifiedGuide>), CaseError> {
    let bb = bone.bounding_box().ok_or_else(|| CaseError::Demo {
        detail: "the demo bone is empty".to_string(),
    })?;
    let query = BoneQuery::new(bone)?;
    let front = bb.min_mm[1];
    let side = bb.max_mm[0];
    let plane = |name: &str, x: f64, side: ResectedSide| CuttingPlane {
        name: name.into(),
        point_mm: [x, front, 0.0],
        normal: [1.0, 0.0, 0.0],
        blade_thickness_mm: 0.6,
        resected_side: side,
    };
    let mut drills = Vec::new();
    for k in 0..3 {
        let y = -2.0 + 7.0 * k as f64;
        let hits = query.crossings([side + 5.0, y, 0.0], [-1.0, 0.0, 0.0], 0.0, 50.0)?;
        let entry = hits.first().ok_or_else(|| CaseError::Demo {
            detail: format!("the demo drill line at y = {y} mm misses the jaw"),
        })?;
        drills.push(DrillTrajectory {
            name: format!("body-{}", k + 1),
            entry_mm: entry.point_mm,
            direction: [-1.0, 0.0, 0.0],
            length_mm: 16.0,
            diameter_mm: 1.5,
            screw_system: Some("2.0".into()),
        });
    }
    let rect = |pts: [[f64; 3]; 4]| Footprint {
        outline_mm: pts.to_vec(),
    };
    let mut plan = Plan {
        reconstruction: None,
        schema_version: SCHEMA_VERSION,
        case_id: CaseId::new(DEMO_CASE_ID)?,
        ct,
        bone: BoneSource {
            segmentation,
            models: vec![],
        },
        landmarks: vec![],
        structures: vec![],
        planes: vec![
            plane("resection-right", -12.0, ResectedSide::Positive),
            plane("resection-left", 12.0, ResectedSide::Negative),
        ],
        drills,
        guides: vec![
            GuideSpec {
                bone: Default::default(),
                name: "symphysis-cutting".into(),
                template: "cutting_guide".into(),
                printer: DEMO_PRINTER.into(),
                // One fixation screw on each side of the resection, in bone that remains (the template's two).
                parameters: Default::default(),
                planes: vec!["resection-right".into(), "resection-left".into()],
                drills: vec![],
                seating_direction: [0.0, 1.0, 0.0],
                footprint: rect([
                    [-25.0, front, -5.0],
                    [25.0, front, -5.0],
                    [25.0, front, 5.0],
                    [-25.0, front, 5.0],
                ]),
                // No label (left out as `plan set ... label null` does): its pad is 10 mm tall and its housings stand
                // 8 mm above it, too small for the case ID and DRAFT in 2.5 mm letters; the build would refuse the
                // guide with `label_no_room` and its place.
                label: None,
            },
            // Seating direction and footprint proposed below (on the straight arm of the jaw a drawn strip slides).
            GuideSpec {
                bone: Default::default(),
                name: "left-body-drilling".into(),
                template: "drill_guide".into(),
                printer: DEMO_PRINTER.into(),
                parameters: Default::default(),
                planes: vec![],
                drills: vec!["body-1".into(), "body-2".into(), "body-3".into()],
                seating_direction: [-1.0, 0.0, 0.0],
                footprint: Footprint { outline_mm: vec![] },
                // The case ID, G2 and the side embossed where the pad is free (DRAFT until a surgeon approves).
                label: Some(GuideLabel::default()),
            },
        ],
        approvals: vec![],
    };
    let proposed = propose_guide(&plan, &plan.guides[1], bone)?;
    plan.guides[1].seating_direction = proposed.proposal.seating_direction;
    plan.guides[1].footprint.outline_mm = proposed.proposal.outline_mm;
    Ok((plan, proposed.verified.into_iter().collect()))
}

/// The demo case made in memory: its CT volume (sampled, not written), its bone and its plan (as `run_demo` writes
/// it, the CT recorded as `ct`). For tests and measurements of what follows the bone.
pub struct DemoCase {
    /// The CT volume.
    pub volume: Volume,
    /// The bone and its checks.
    pub bone: BoneModel,
    /// The plan.
    pub plan: Plan,
}

/// [`DemoCase`]: the demo's volume, bone and plan, without writing anything.
pub fn demo_in_memory(progress: &dyn Progress) -> Result<DemoCase, CaseError> {
    let volume = demo_volume()?;
    let segmentation = demo_segmentation();
    let bone = bone::extract_bone(&volume, &segmentation.recipe, &SurfaceOptions::default(), progress)?;
    let plan = demo_plan(
        &bone.mesh,
        Some(CtReference::from_volume(&volume, "ct")),
        Some(segmentation),
    )?;
    Ok(DemoCase { volume, bone, plan })
}

/// A step of [`run_demo`], for the front end to show.
#[derive(Debug)]
pub enum DemoEvent<'a> {
    /// The CT is about to be written.
    WritingCt {
        /// Its folder.
        dir: &'a Path,
        /// Its spec.
        spec: &'a SeriesSpec,
    },
    /// The CT was written.
    CtWritten {
        /// Number of DICOM files.
        files: usize,
    },
    /// The CT was loaded back.
    Loaded {
        /// What the folder holds.
        scan: &'a Scan,
        /// The loaded volume.
        volume: &'a Volume,
    },
    /// The bone was segmented and its surface written.
    BoneWritten {
        /// The STL file.
        path: &'a Path,
        /// The bone and its checks.
        bone: &'a BoneModel,
    },
    /// The plan was written.
    PlanWritten {
        /// The plan file.
        path: &'a Path,
        /// The plan.
        plan: &'a Plan,
    },
    /// The guides were built and checked.
    GuidesBuilt {
        /// Each guide's outcome.
        guides: &'a CaseGuides,
    },
    /// The guides were written.
    GuidesWritten {
        /// Their folder.
        dir: &'a Path,
        /// What was written.
        summary: &'a ExportSummary,
    },
}

/// Runs the demo case into `out`: `ct/` (DICOM), `bone.stl`, `plan.json` and `guides/` (STL, 3MF, review images,
/// manifest). A folder the demo made before (it holds [`DEMO_MARKER`]) is replaced; any other non-empty `ct/` is
/// refused. Returns the guides' outcomes; when a guide fails, nothing is written to `guides/` and the error lists the
/// findings.
pub fn run_demo(
    out: &Path,
    progress: &dyn Progress,
    on_event: &mut dyn FnMut(DemoEvent<'_>),
) -> Result<CaseGuides, CaseError> {
    let ct = out.join("ct");
    let stl = out.join("bone.stl");
    let plan_path = out.join("plan.json");
    let guides_dir = out.join("guides");
    let output_err = |path: &Path, e: std::io::Error| CaseError::Output {
        path: path.to_path_buf(),
        detail: e.to_string(),
    };
    let marker = out.join(DEMO_MARKER);
    if marker.is_file() {
        for old in [&ct, &stl, &plan_path, &guides_dir] {
            if old.is_dir() {
                std::fs::remove_dir_all(old).map_err(|e| output_err(old, e))?;
            } else if old.exists() {
                std::fs::remove_file(old).map_err(|e| output_err(old, e))?;
            }
        }
    }
    if ct.exists() && std::fs::read_dir(&ct).map_err(|e| output_err(&ct, e))?.next().is_some() {
        return Err(CaseError::Output {
            path: ct,
            detail: "is not empty and was not made by the demo; choose a new output folder".to_string(),
        });
    }
    std::fs::create_dir_all(out).map_err(|e| output_err(out, e))?;
    std::fs::write(
        &marker,
        "written by `guidesmith demo`; the demo replaces this folder's ct/, bone.stl, plan.json and guides/\n",
    )
    .map_err(|e| output_err(&marker, e))?;

    let (phantom, spec) = demo_ct();
    on_event(DemoEvent::WritingCt { dir: &ct, spec: &spec });
    let written = synth::write_series(&phantom, &spec, &ct)?;
    on_event(DemoEvent::CtWritten {
        files: written.slices.len(),
    });
    let (volume, scan) = crate::volume::load(&ct, None, progress).map_err(|error| match error {
        crate::volume::VolumeError::Cancelled(c) => CaseError::Cancelled(c),
        error => CaseError::LoadCt {
            path: ct.clone(),
            error,
        },
    })?;
    on_event(DemoEvent::Loaded {
        scan: &scan,
        volume: &volume,
    });
    let segmentation = demo_segmentation();
    let model = bone::extract_bone(&volume, &segmentation.recipe, &SurfaceOptions::default(), progress)?;
    crate::atomic::write_atomic(&stl, |w| {
        crate::mesh::write_stl_binary(&model.mesh, w, &format!("guidesmith case={DEMO_CASE_ID}"))
            .map_err(std::io::Error::other)
    })
    .map_err(|e| output_err(&stl, e))?;
    on_event(DemoEvent::BoneWritten {
        path: &stl,
        bone: &model,
    });
    let (plan, verified) = demo_plan_verified(
        &model.mesh,
        Some(CtReference::from_volume(&volume, "ct")),
        Some(segmentation),
    )?;
    plan.save(&plan_path)?;
    on_event(DemoEvent::PlanWritten {
        path: &plan_path,
        plan: &plan,
    });
    // The proposed guide was built and checked while its proposal was verified; it is not built twice.
    let guides = build_guides_reusing(&plan, &model.mesh, None, &verified, progress)?;
    on_event(DemoEvent::GuidesBuilt { guides: &guides });
    // Nobody has approved the demo's plan: its guides are drafts (file names and manifest say so).
    let release = super::release_for(&plan, None, true)?;
    let summary = write_guides(&guides_dir, &plan, &model.mesh, &guides, &release, progress)?;
    on_event(DemoEvent::GuidesWritten {
        dir: &guides_dir,
        summary: &summary,
    });
    Ok(guides)
}
