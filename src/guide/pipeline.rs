//! From a plan to files for the print lab: every guide of the plan built, checked, and only if all pass, exported
//! with renders.
//!
//! Why all-or-nothing: a lab receives a set of guides for one operation; a set with one guide silently missing is
//! worse than a clear refusal. A failed check is an error carrying every guide's report; nothing is written then.

use std::path::{Path, PathBuf};

use super::build::{build_guide, BuiltGuide, ChannelSpec, GuideError, GuideRequest, SlotSpec, DEFAULT_GRID_MM};
use super::check::{check_guide, GuideCheck};
use crate::export::{export_guides, sanitize_file_component, ExportError, ExportInfo, ExportSummary, GuideExport};
use crate::measure::{BoneQuery, MeasureError};
use crate::mesh::{BoundingBox, Mesh};
use crate::plan::Plan;
use crate::progress::Progress;
use crate::render::{grown, render_views, write_png, Scene, View, BONE_COLOUR, GUIDE_COLOUR};
use crate::template::{builtin_printers, builtin_template, TemplateError};

/// Printer profile used when the plan's guide does not say otherwise.
pub const DEFAULT_PRINTER: &str = "sla";

/// Why a plan's guides could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A template or printer profile problem.
    #[error("guide '{guide}': {source}")]
    Template {
        /// Guide.
        guide: String,
        /// Why.
        source: Box<TemplateError>,
    },
    /// A guide references an element the plan lacks (plan validation normally refuses this first).
    #[error("guide '{guide}' references {what} '{name}', which the plan does not have")]
    Missing {
        /// Guide.
        guide: String,
        /// Plane or drill.
        what: &'static str,
        /// Name.
        name: String,
    },
    /// A guide could not be built.
    #[error(transparent)]
    Build(#[from] GuideError),
    /// The bone could not be queried.
    #[error("bone surface: {0}")]
    Bone(#[from] MeasureError),
    /// Guides failed their checks; nothing was written.
    #[error("{} guide(s) failed their checks; nothing was written:\n{}", .0.iter().filter(|c| !c.passed).count(), failures(.0))]
    Checks(Vec<GuideCheck>),
    /// Writing failed.
    #[error(transparent)]
    Export(#[from] ExportError),
    /// A render could not be written.
    #[error("{path}: {detail}")]
    Render {
        /// File.
        path: PathBuf,
        /// Why.
        detail: String,
    },
}

fn failures(checks: &[GuideCheck]) -> String {
    checks
        .iter()
        .filter(|c| !c.passed)
        .flat_map(|c| c.failures.iter().map(move |f| format!("  {}: {}", c.guide, f)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The build requests of every guide of `plan` (the template's `printer` parameter is not a number, so the printer
/// profile is chosen by name here).
pub fn requests_from_plan(plan: &Plan, printer: &str) -> Result<Vec<GuideRequest>, PipelineError> {
    let printers = builtin_printers().map_err(|e| PipelineError::Template {
        guide: String::new(),
        source: Box::new(e),
    })?;
    let mut out = Vec::new();
    for g in &plan.guides {
        let terr = |e: TemplateError| PipelineError::Template {
            guide: g.name.clone(),
            source: Box::new(e),
        };
        let template = builtin_template(&g.template).map_err(terr)?;
        let profile = printers.get(printer).map_err(terr)?;
        let params = template.resolve(&g.parameters, profile).map_err(terr)?;
        let mut slots = Vec::new();
        for name in &g.planes {
            let p = plan
                .planes
                .iter()
                .find(|p| &p.name == name)
                .ok_or_else(|| PipelineError::Missing {
                    guide: g.name.clone(),
                    what: "cutting plane",
                    name: name.clone(),
                })?;
            slots.push(SlotSpec {
                name: p.name.clone(),
                point_mm: p.point_mm,
                normal: p.normal,
                blade_thickness_mm: p.blade_thickness_mm,
            });
        }
        let mut channels = Vec::new();
        for name in &g.drills {
            let d = plan
                .drills
                .iter()
                .find(|d| &d.name == name)
                .ok_or_else(|| PipelineError::Missing {
                    guide: g.name.clone(),
                    what: "drill",
                    name: name.clone(),
                })?;
            channels.push(ChannelSpec {
                name: d.name.clone(),
                entry_mm: d.entry_mm,
                direction: d.direction,
                drill_diameter_mm: d.diameter_mm,
            });
        }
        out.push(GuideRequest {
            name: g.name.clone(),
            params,
            slots,
            channels,
            seating_direction: g.seating_direction,
            footprint_mm: g.footprint.outline_mm.clone(),
            grid_mm: DEFAULT_GRID_MM,
        });
    }
    Ok(out)
}

/// Every guide of the plan, built and checked.
pub struct PlanGuides {
    /// Built guides, in plan order.
    pub guides: Vec<BuiltGuide>,
    /// Their checks.
    pub checks: Vec<GuideCheck>,
}

/// Builds and checks every guide of `plan` on `bone`.
pub fn build_plan_guides(
    plan: &Plan,
    bone: &Mesh,
    printer: &str,
    progress: &dyn Progress,
) -> Result<PlanGuides, PipelineError> {
    let requests = requests_from_plan(plan, printer)?;
    let query = BoneQuery::new(bone)?;
    progress.begin("building guides", requests.len() as u64);
    let mut guides = Vec::new();
    let mut checks = Vec::new();
    for request in &requests {
        let built = build_guide(bone, request)?;
        checks.push(check_guide(&built, &query));
        guides.push(built);
        progress.advance(1);
    }
    progress.end();
    Ok(PlanGuides { guides, checks })
}

/// Writes the guides (only if every check passed), their renders and, last, the manifest into `out_dir`.
///
/// Renders are review images, not print files: `renders/<case>_<guide>.png` is a labelled contact sheet of the guide
/// seated on the bone (along its seating direction, oblique, from above) and of its contact side alone, and
/// `renders/<case>_overview.png` shows every guide on the bone. The manifest lists the print files.
pub fn write_plan_guides(
    out_dir: &Path,
    plan: &Plan,
    bone: &Mesh,
    result: &PlanGuides,
) -> Result<ExportSummary, PipelineError> {
    if result.checks.iter().any(|c| !c.passed) {
        return Err(PipelineError::Checks(result.checks.clone()));
    }
    let plan_sha256 = plan.sha256();
    let case_id = plan.case_id.to_string();
    let info = ExportInfo {
        case_id: &case_id,
        plan_sha256: &plan_sha256,
        software_version: env!("CARGO_PKG_VERSION"),
    };
    let exports: Vec<GuideExport<'_>> = result
        .guides
        .iter()
        .zip(&result.checks)
        .map(|(g, c)| GuideExport {
            name: &g.name,
            mesh: &g.mesh,
            checks: serde_json::to_value(c).unwrap_or(serde_json::Value::Null),
        })
        .collect();
    write_renders(&out_dir.join("renders"), &case_id, bone, &result.guides)?;
    Ok(export_guides(out_dir, &info, &exports)?)
}

/// Margin around a guide in its renders, mm: enough bone to see where the guide sits.
const RENDER_MARGIN_MM: f64 = 12.0;
/// Bone kept around a guide in its renders, mm: more than the margin, so the frame is full of bone.
const RENDER_BONE_MARGIN_MM: f64 = 25.0;
/// Margin around all guides in the overview, mm (the bone is cropped to it as well).
const OVERVIEW_MARGIN_MM: f64 = 30.0;
/// One contact-sheet cell, pixels.
const RENDER_CELL: (u32, u32) = (640, 480);
/// Overview image size, pixels.
const OVERVIEW_SIZE: (u32, u32) = (1000, 750);

fn write_renders(dir: &Path, case_id: &str, bone: &Mesh, guides: &[BuiltGuide]) -> Result<(), PipelineError> {
    std::fs::create_dir_all(dir).map_err(|source| PipelineError::Render {
        path: dir.to_path_buf(),
        detail: source.to_string(),
    })?;
    let png = |image: &crate::render::RgbImage, path: PathBuf| {
        write_png(image, &path).map_err(|e| PipelineError::Render {
            path,
            detail: e.to_string(),
        })
    };
    let mut overview = Scene::new();
    let mut all: Option<BoundingBox> = None;
    for g in guides {
        overview.add(&g.mesh, GUIDE_COLOUR, 1.0);
        let Some(bb) = g.mesh.bounding_box() else { continue };
        all = Some(all.map_or(bb, |a| a.union(&bb)));
        let focus = Some(grown(bb, RENDER_MARGIN_MM));
        // Only the bone around the guide: the rest of a skull would hide it in some views.
        let bone = &bone.triangles_touching(&grown(bb, RENDER_BONE_MARGIN_MM));
        let seat = g.frame.w();
        let up = pick_up(&seat);
        let toward_bone: [f64; 3] = (-seat).into();
        let oblique: [f64; 3] = (-seat + nalgebra::Vector3::new(0.0, 0.0, -0.6)).into();
        let mut seated = Scene::new();
        seated.add(bone, BONE_COLOUR, 1.0);
        seated.add(&g.mesh, GUIDE_COLOUR, 1.0);
        let views = [
            ("seated, along seating", View::Along { dir: toward_bone, up }),
            ("seated, oblique", View::Along { dir: oblique, up }),
            ("seated, superior", View::Superior),
        ];
        let mut sheet = render_views(&seated, &views, RENDER_CELL, focus);
        // The contact side: the guide alone, seen from the bone.
        let mut alone = Scene::new();
        alone.add(&g.mesh, GUIDE_COLOUR, 1.0);
        let contact = render_views(
            &alone,
            &[("contact side", View::Along { dir: seat.into(), up })],
            RENDER_CELL,
            Some(grown(bb, 2.0)),
        );
        let (cw, ch) = RENDER_CELL;
        let gap = sheet.width().saturating_sub(2 * cw);
        sheet.paste(&contact, cw + gap, ch + gap);
        png(
            &sheet,
            dir.join(format!("{}_{}.png", case_id, sanitize_file_component(&g.name))),
        )?;
    }
    if let Some(all) = all {
        overview.add(
            bone.triangles_touching(&grown(all, OVERVIEW_MARGIN_MM)),
            BONE_COLOUR,
            1.0,
        );
    }
    let focus = all.map(|a| grown(a, OVERVIEW_MARGIN_MM));
    let image = crate::render::render(
        &overview,
        View::Iso(20.0, 20.0),
        OVERVIEW_SIZE.0,
        OVERVIEW_SIZE.1,
        focus,
    );
    png(&image, dir.join(format!("{case_id}_overview.png")))
}

/// Superior (+z) as "up" unless the view looks along it.
fn pick_up(seat: &nalgebra::Vector3<f64>) -> [f64; 3] {
    if seat.z.abs() > 0.9 {
        [0.0, -1.0, 0.0]
    } else {
        [0.0, 0.0, 1.0]
    }
}
