//! From a plan to files for the print lab: every guide of the plan built, checked, and only if all pass, exported
//! with renders.
//!
//! Why all-or-nothing: a lab receives a set of guides for one operation; a set with one guide silently missing is
//! worse than a clear refusal. A failed check is an error carrying every guide's report; nothing is written then.

use std::path::{Path, PathBuf};

use super::build::{build_guide, BuiltGuide, ChannelSpec, GuideError, GuideRequest, SlotSpec, DEFAULT_GRID_MM};
use super::check::{check_guide, GuideCheck};
use crate::export::{export_guides, sanitize, ExportError, ExportInfo, GuideExport, Manifest};
use crate::measure::{BoneQuery, MeasureError};
use crate::mesh::{BoundingBox, Mesh};
use crate::plan::Plan;
use crate::progress::Progress;
use crate::render::{render, write_png, View, BONE_RGB, GUIDE_RGB};
use crate::template::{builtin_printers, builtin_template, TemplateError};

/// Printer profile used when the plan's guide does not say otherwise.
pub const DEFAULT_PRINTER: &str = "sla";
/// Render size, pixels.
const RENDER_SIZE: (u32, u32) = (800, 600);

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
    #[error("{path}: {source}")]
    Render {
        /// File.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
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

/// Writes the guides (only if every check passed), the manifest and the renders into `out_dir`.
pub fn write_plan_guides(
    out_dir: &Path,
    plan: &Plan,
    bone: &Mesh,
    result: &PlanGuides,
) -> Result<Manifest, PipelineError> {
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
    let manifest = export_guides(out_dir, &info, &exports)?;
    let renders = out_dir.join("renders");
    std::fs::create_dir_all(&renders).map_err(|source| PipelineError::Render {
        path: renders.clone(),
        source,
    })?;
    for g in &result.guides {
        let Some(bb) = g.mesh.bounding_box() else { continue };
        let grow = 12.0;
        let focus = BoundingBox {
            min_mm: [bb.min_mm[0] - grow, bb.min_mm[1] - grow, bb.min_mm[2] - grow],
            max_mm: [bb.max_mm[0] + grow, bb.max_mm[1] + grow, bb.max_mm[2] + grow],
        };
        let seat = g.frame.w();
        let views = [
            (
                "seating",
                View::Along {
                    dir: (-seat).into(),
                    up: pick_up(&seat),
                },
            ),
            (
                "oblique",
                View::Along {
                    dir: (-seat + nalgebra::Vector3::new(0.0, 0.0, -0.6)).into(),
                    up: pick_up(&seat),
                },
            ),
            ("superior", View::Superior),
        ];
        for (label, view) in views {
            let image = render(
                &[(bone, BONE_RGB), (&g.mesh, GUIDE_RGB)],
                view,
                RENDER_SIZE.0,
                RENDER_SIZE.1,
                &focus,
            );
            let path = renders.join(format!("{}_{}_{label}.png", sanitize(&case_id), sanitize(&g.name)));
            write_png(&image, &path).map_err(|source| PipelineError::Render { path, source })?;
        }
    }
    Ok(manifest)
}

/// Superior (+z) as "up" unless the view looks along it.
fn pick_up(seat: &nalgebra::Vector3<f64>) -> [f64; 3] {
    if seat.z.abs() > 0.9 {
        [0.0, -1.0, 0.0]
    } else {
        [0.0, 0.0, 1.0]
    }
}
