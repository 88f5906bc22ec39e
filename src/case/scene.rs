//! The whole plan as one glTF binary for viewing outside guidesmith: the bone, the structures to spare, the cutting
//! planes, the drills, the built guides and the anatomical models, each named after the plan's element.
//!
//! Why: surgeons ask to walk through a plan in a browser, in Blender or in a VR headset, and a print lab wants to see
//! how the parts sit on each other; a `.glb` opens in all of them. Positions stay patient mm (`export::gltf`).

use std::borrow::Cow;

use serde_json::json;

use super::build::{CaseGuides, GuideBones};
use super::model::AnatomicalModel;
use super::CaseError;
use crate::export::gltf::{glb_bytes, linear_rgba, GltfPart};
use crate::mesh::shapes::{cylinder, plane_patch, polygon_mesh, tube};
use crate::mesh::Mesh;
use crate::plan::{plan_content_sha256, Plan, StructureKind};
use crate::render::{BONE_COLOUR, GUIDE_COLOUR};

/// Sides of the cylinders that show drills and structures.
const SIDES: u32 = 24;
/// Donor bone shown around a donor guide, and the space between it and the plan's bone, mm.
const DONOR_MARGIN_MM: f64 = 20.0;
/// Reach of a plane's patch beyond the bone's box, mm.
const PLANE_MARGIN_MM: f64 = 5.0;

/// The `.glb` of `plan` on `bone` with the guides that were built and passed and the given `models`.
pub fn plan_glb<'a>(
    plan: &Plan,
    bones: impl Into<GuideBones<'a>>,
    guides: &CaseGuides,
    models: &[AnatomicalModel],
) -> Result<Vec<u8>, CaseError> {
    let bones = bones.into();
    let bone = bones.recipient;
    let shape = |what: &str, r: Result<Mesh, crate::mesh::MeshError>| {
        r.map_err(|e| CaseError::Document {
            what: format!("the glTF's shape of {what}"),
            detail: e.to_string(),
        })
    };
    let mut parts: Vec<GltfPart<'_>> = vec![part(
        "anatomy",
        "bone".into(),
        Cow::Borrowed(bone),
        linear_rgba(BONE_COLOUR, 1.0),
    )];
    for s in &plan.structures {
        let colour = match s.kind {
            StructureKind::Nerve => [230, 200, 40],
            StructureKind::Vessel => [200, 40, 40],
            StructureKind::ToothRoot => [245, 245, 235],
            StructureKind::Other => [150, 90, 200],
        };
        let mesh = shape(&s.name, tube(&s.points_mm, s.radius_mm, SIDES))?;
        parts.push(part(
            "anatomy",
            format!("structure {}", s.name),
            Cow::Owned(mesh),
            linear_rgba(colour, 1.0),
        ));
    }
    if let Some(bb) = bone.bounding_box() {
        let min = bb.min_mm.map(|x| x - PLANE_MARGIN_MM);
        let max = bb.max_mm.map(|x| x + PLANE_MARGIN_MM);
        let diagonal_mm = (0..3).map(|k| (max[k] - min[k]).powi(2)).sum::<f64>().sqrt();
        for p in &plan.planes {
            let poly = plane_patch(p.point_mm, p.normal, diagonal_mm, min, max);
            let mesh = shape(&p.name, polygon_mesh(&poly))?;
            parts.push(part(
                "plan",
                format!("plane {}", p.name),
                Cow::Owned(mesh),
                linear_rgba([220, 60, 40], 0.45),
            ));
        }
    }
    for d in &plan.drills {
        let tip = [0, 1, 2].map(|k| d.entry_mm[k] + d.direction[k] * d.length_mm);
        let mesh = shape(&d.name, cylinder(d.entry_mm, tip, d.diameter_mm / 2.0, SIDES))?;
        parts.push(part(
            "plan",
            format!("drill {}", d.name),
            Cow::Owned(mesh),
            linear_rgba([40, 90, 220], 1.0),
        ));
    }
    // A donor guide is shown on the part of the donor it seats on, moved beside the plan's bone (the two CTs'
    // frames overlap); the part's name says by how much.
    let mut donor_parts: Vec<(String, Mesh)> = Vec::new();
    for g in &guides.guides {
        if let Some((built, check)) = g.built() {
            let on_donor = bones.donor_guides.contains(&g.name);
            if let (true, Some(donor), true) = (on_donor, bones.donor, check.findings.is_empty()) {
                if let (Some(gb), Some(bb)) = (built.mesh.bounding_box(), bone.bounding_box()) {
                    let near = donor.triangles_touching(&crate::mesh::grown(gb, DONOR_MARGIN_MM));
                    let shift = super::flap::donor_shift_beside(&bb, &gb, DONOR_MARGIN_MM);
                    let moved = |m: &Mesh| {
                        Mesh::new(
                            m.positions
                                .iter()
                                .map(|p| std::array::from_fn(|k| p[k] + shift[k]))
                                .collect(),
                            m.triangles.clone(),
                        )
                    };
                    let note = format!("moved by ({:.1}, {:.1}, {:.1}) mm", shift[0], shift[1], shift[2]);
                    donor_parts.push((format!("donor bone ({note})"), shape("the donor", moved(&near))?));
                    donor_parts.push((
                        format!("guide {} ({note})", built.name),
                        shape(&g.name, moved(&built.mesh))?,
                    ));
                }
                continue;
            }
            if check.findings.is_empty() && !on_donor {
                parts.push(part(
                    "guides",
                    format!("guide {}", built.name),
                    Cow::Borrowed(&built.mesh),
                    linear_rgba(GUIDE_COLOUR, 1.0),
                ));
            }
        }
    }
    for m in models {
        let colour = match m.name {
            "resected" => linear_rgba([210, 90, 80], 1.0),
            "planned" => linear_rgba([225, 210, 170], 1.0),
            _ => linear_rgba(BONE_COLOUR, 0.6),
        };
        parts.push(part(
            "models",
            format!("model {}", m.name),
            Cow::Borrowed(&m.mesh),
            colour,
        ));
    }
    for (name, mesh) in donor_parts {
        let colour = if name.starts_with("guide") {
            linear_rgba(GUIDE_COLOUR, 1.0)
        } else {
            linear_rgba(BONE_COLOUR, 1.0)
        };
        parts.push(part("donor", name, Cow::Owned(mesh), colour));
    }
    let extras = json!({
        "case_id": plan.case_id.as_str(),
        "plan_sha256": plan_content_sha256(plan),
        "units": "millimetre (positions); the root node scales to metres",
        "coordinate_frame": crate::export::COORDINATE_FRAME,
    });
    Ok(glb_bytes(plan.case_id.as_str(), &parts, extras))
}

fn part<'a>(group: &str, name: String, mesh: Cow<'a, Mesh>, colour_rgba: [f32; 4]) -> GltfPart<'a> {
    GltfPart {
        group: group.to_string(),
        name,
        mesh,
        colour_rgba,
    }
}

/// The file name of a case's `.glb`.
pub fn glb_file_name(case_id: &str) -> String {
    format!("{case_id}_plan.glb")
}
