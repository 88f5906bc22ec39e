//! Anatomical models of a case for printing: the bone of the planned region as it is, as it will be after the planned
//! resection, and the resected segment, each closed and checked like a guide.
//!
//! Why: surgeons rehearse the operation and pre-bend reconstruction plates on printed models; a vendor ships them
//! with the guides. The region is the box around everything the plan places (guide footprints, planes, drills) grown
//! by a margin, so a model shows the operative site and not the whole skull, and prints in an hour instead of a day.
//! The planned state is the bone minus the segment the cutting planes enclose: the intersection of every resecting
//! plane's resected half-space (a segmental resection between two planes, or everything beyond one plane).
//!
//! Every model is made with the crop (`mesh::crop`, closed by caps on the box faces) and the boolean engine, and is
//! refused with a clear error unless it is closed, manifold, outward and free of self-intersections.
//!
//! On request the region and the planned state stand on a flat base (`guidesmith model --base-mm`): a plate below the
//! bone (towards the feet), joined to it by posts wherever the bone faces down, with the case label on a strip in
//! front. The base keeps the pieces of a resected jaw in their planned places, so a plate bent on the model fits the
//! plan, and gives the print a flat face to stand on. Posts, not a solid plinth: the bone stays visible and the
//! print light.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::CaseError;
use super::GuideBones;
use crate::mesh::boolean::{fold, BoolOp, Operand};
use crate::mesh::crop::{box_mesh, crop_to_box};
use crate::mesh::{grown, write_stl_binary, BoundingBox, Mesh, MeshReport};
use crate::plan::{GuideBone, Plan, ResectedSide};
use crate::progress::Progress;

/// Bone kept around everything the plan places, mm (default of `guidesmith model --margin-mm`).
pub const DEFAULT_MODEL_MARGIN_MM: f64 = 15.0;
/// The resected region reaches this far beyond the model's box, so none of its faces lies on a cap of the crop.
const REGION_OVERLAP_MM: f64 = 2.0;

/// What the models are made with.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ModelOptions {
    /// Bone kept around everything the plan places, mm.
    pub margin_mm: f64,
    /// Thickness of a flat base under the region and the planned state, mm (`None`: no base).
    pub base_mm: Option<f64>,
}

impl Default for ModelOptions {
    fn default() -> Self {
        ModelOptions {
            margin_mm: DEFAULT_MODEL_MARGIN_MM,
            base_mm: None,
        }
    }
}

/// Thinnest and thickest base plate, mm.
pub const BASE_THICKNESS_RANGE_MM: (f64, f64) = (2.0, 20.0);
/// Gap between the base plate and the lowest point of the bone, bridged by the posts, mm.
const BASE_CLEARANCE_MM: f64 = 3.0;
/// The plate reaches this far beyond the bone's outline seen from above, mm.
const BASE_BORDER_MM: f64 = 3.0;
/// Depth of the strip in front of the bone that carries the case label, mm.
const BASE_LABEL_STRIP_MM: f64 = 12.0;
/// Posts stand at least this far apart, mm, chosen from candidates on a grid of this step.
const POST_SPACING_MM: f64 = 8.0;
const POST_CANDIDATE_STEP_MM: f64 = 1.0;
/// Radius of a post, mm, and its sides.
const POST_RADIUS_MM: f64 = 2.0;
const POST_SIDES: u32 = 16;
/// How far a post reaches into the bone above the point it meets, mm.
const POST_DEPTH_MM: f64 = 1.0;
/// A post stands only where the bone faces down at least this much (the cosine of the surface's tilt from
/// horizontal-facing-down).
const POST_MIN_DOWN: f64 = 0.5;

/// The flat base of a model.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelBase {
    /// Plate thickness, mm.
    pub thickness_mm: f64,
    /// Height of the plate's underside (LPS `z`), mm.
    pub floor_z_mm: f64,
    /// Number of posts joining the plate to the bone.
    pub posts: usize,
}

/// One printable model.
#[derive(Clone, Debug)]
pub struct AnatomicalModel {
    /// `anatomy`, `planned`, `neomandible` or `resected`.
    pub name: &'static str,
    /// What it shows.
    pub description: &'static str,
    /// The closed solid, patient LPS mm.
    pub mesh: Mesh,
    /// Its checks.
    pub report: MeshReport,
    /// The case label embossed on its largest flat face, or on its base (`None`: no flat face had room).
    pub label: Option<ModelLabel>,
    /// The flat base it stands on (`None`: none asked for, or the resected segment).
    pub base: Option<ModelBase>,
}

/// The label on a model.
#[derive(Clone, Debug)]
pub struct ModelLabel {
    /// Its lines.
    pub lines: Vec<String>,
    /// Volume the letters add above the face, mm^3 (their area times their relief).
    pub added_mm3: f64,
}

/// The models of `plan` on `bone`: the bone in the planned region (`anatomy`), and when the plan resects, the bone
/// after the resection (`planned`) and the resected segment (`resected`). Every model passed its checks.
pub fn make_models<'a>(
    plan: &Plan,
    bone: impl Into<GuideBones<'a>>,
    margin_mm: f64,
    progress: &dyn Progress,
) -> Result<Vec<AnatomicalModel>, CaseError> {
    make_models_with(
        plan,
        bone,
        &ModelOptions {
            margin_mm,
            base_mm: None,
        },
        progress,
    )
}

/// [`make_models`] with every option: with `base_mm`, the region and the planned state stand on a flat base that
/// carries the case label.
pub fn make_models_with<'a>(
    plan: &Plan,
    bone: impl Into<GuideBones<'a>>,
    options: &ModelOptions,
    progress: &dyn Progress,
) -> Result<Vec<AnatomicalModel>, CaseError> {
    let bones = bone.into();
    let bone = bones.recipient;
    let margin_mm = options.margin_mm;
    if let Some(t) = options.base_mm {
        let (lo, hi) = BASE_THICKNESS_RANGE_MM;
        if !(t.is_finite() && (lo..=hi).contains(&t)) {
            return Err(CaseError::AnatomicalModel {
                detail: format!("base {t} mm thick: give {lo} to {hi} mm (--base-mm)"),
            });
        }
    }
    if !(margin_mm.is_finite() && margin_mm > 0.0) {
        return Err(CaseError::AnatomicalModel {
            detail: format!("margin {margin_mm} mm: give a positive number of millimetres (--margin-mm)"),
        });
    }
    let region = grown(plan_region(plan, bone)?, margin_mm);
    progress.begin("anatomical models", 3);
    let anatomy = crop_to_box(bone, region).map_err(|e| CaseError::AnatomicalModel {
        detail: format!("cropping the bone to the planned region: {e}"),
    })?;
    let mut models = vec![checked(
        "anatomy",
        "the bone of the planned region, as it is",
        anatomy.clone(),
    )?];
    progress.advance(1);
    let resecting: Vec<_> = plan
        .planes
        .iter()
        .filter(|p| p.resected_side != ResectedSide::None)
        .collect();
    if !resecting.is_empty() {
        progress.checkpoint()?;
        let outer = grown(region, REGION_OVERLAP_MM);
        let diagonal = (0..3)
            .map(|a| (outer.max_mm[a] - outer.min_mm[a]).powi(2))
            .sum::<f64>()
            .sqrt();
        let centre: [f64; 3] = std::array::from_fn(|a| 0.5 * (outer.min_mm[a] + outer.max_mm[a]));
        let half_spaces: Vec<Mesh> = resecting
            .iter()
            .map(|p| {
                let sign = if p.resected_side == ResectedSide::Positive {
                    1.0
                } else {
                    -1.0
                };
                half_space_block(p.point_mm, p.normal.map(|c| sign * c), centre, 2.0 * diagonal)
            })
            .collect();
        let outer_box = box_mesh(outer);
        let operands: Vec<Operand<'_>> = half_spaces.iter().map(|m| Operand::new("resected side", m)).collect();
        let segment_region = fold(
            Operand::new("model region", &outer_box),
            &operands,
            BoolOp::Intersection,
        )
        .map_err(|e| CaseError::AnatomicalModel {
            detail: format!("the region the cutting planes enclose: {e}"),
        })?;
        progress.checkpoint()?;
        let with_segment = |op: BoolOp, what: &str| {
            fold(
                Operand::new("bone of the region", &anatomy),
                &[Operand::new("resected region", &segment_region)],
                op,
            )
            .map_err(|e| CaseError::AnatomicalModel {
                detail: format!("{what}: {e}"),
            })
        };
        let planned = with_segment(BoolOp::Difference, "removing the resected segment")?;
        // The reconstruction in place: the stumps and the donor's segments where the plan puts them, one solid.
        if let (Some(donor), Some(_)) = (bones.donor, &plan.reconstruction) {
            let pieces = super::flap::placed_segments(plan, donor)?;
            let operands: Vec<Operand<'_>> = pieces.iter().map(|m| Operand::new("flap segment", m)).collect();
            let neomandible = fold(
                Operand::new("bone after the resection", &planned),
                &operands,
                BoolOp::Union,
            )
            .map_err(|e| CaseError::AnatomicalModel {
                detail: format!("joining the flap's segments to the stumps: {e}"),
            })?;
            models.push(checked(
                "neomandible",
                "the stumps and the flap's segments in place, for bending the reconstruction plate",
                neomandible,
            )?);
        }
        models.push(checked("planned", "the bone after the planned resection", planned)?);
        progress.advance(1);
        let resected = with_segment(BoolOp::Intersection, "the resected segment")?;
        if !resected.triangles.is_empty() {
            models.push(checked("resected", "the segment the plan removes", resected)?);
        }
    }
    // The case label on each model's largest flat face (the case ID and what the model is, or the case ID alone).
    let case_id = plan.case_id.to_string();
    for m in &mut models {
        progress.checkpoint()?;
        let settings = [vec![case_id.clone(), m.name.to_uppercase()], vec![case_id.clone()]];
        if let (Some(thickness_mm), true) = (options.base_mm, m.name != "resected") {
            let (mesh, base, label) = with_base(&m.mesh, m.name, thickness_mm, &settings)?;
            let based = written(m.name, m.description, mesh)?;
            *m = AnatomicalModel {
                label,
                base: Some(base),
                ..based
            };
            continue;
        }
        let (mesh, label) = with_label(std::mem::take(&mut m.mesh), &settings)?;
        let labelled = written(m.name, m.description, mesh)?;
        *m = AnatomicalModel { label, ..labelled };
    }
    progress.end();
    Ok(models)
}

/// The box around everything the plan places (guide footprints, plane points, drill entries and tips); the bone's
/// box when the plan places nothing.
fn plan_region(plan: &Plan, bone: &Mesh) -> Result<BoundingBox, CaseError> {
    let mut points: Vec<[f64; 3]> = plan.planes.iter().map(|p| p.point_mm).collect();
    for d in &plan.drills {
        points.push(d.entry_mm);
        points.push(std::array::from_fn(|a| d.entry_mm[a] + d.length_mm * d.direction[a]));
    }
    // The reconstruction's target contour: the whole of the removed bone and of the segments that replace it.
    if let Some(r) = &plan.reconstruction {
        points.extend(r.contour.points_mm.iter().copied());
    }
    // A donor guide lies on the donor, in its own CT's frame.
    for g in plan.guides.iter().filter(|g| g.bone == GuideBone::Recipient) {
        points.extend(g.footprint.outline_mm.iter().copied());
    }
    let Some(first) = points.first() else {
        return bone.bounding_box().ok_or_else(|| CaseError::AnatomicalModel {
            detail: "the bone is empty".to_string(),
        });
    };
    let mut b = BoundingBox {
        min_mm: *first,
        max_mm: *first,
    };
    for p in &points {
        b.min_mm = std::array::from_fn(|a| b.min_mm[a].min(p[a]));
        b.max_mm = std::array::from_fn(|a| b.max_mm[a].max(p[a]));
    }
    Ok(b)
}

/// A closed block standing on the plane through `point` with unit normal `into` (the block lies on that side),
/// `size` wide around the projection of `centre` and `size` deep: inside a region smaller than `size`, the same as
/// the half-space.
fn half_space_block(point: [f64; 3], into: [f64; 3], centre: [f64; 3], size: f64) -> Mesh {
    let n = nalgebra::Vector3::from(into).normalize();
    let helper = if n.x.abs() < 0.9 {
        nalgebra::Vector3::x()
    } else {
        nalgebra::Vector3::y()
    };
    let u = n.cross(&helper).normalize();
    // u x v = (n x h) x (n x (n x h)) = n: a proper rotation, so the box keeps its outward orientation.
    let v = n.cross(&u);
    let c = nalgebra::Vector3::from(centre);
    let p = nalgebra::Vector3::from(point);
    let origin = c - n * (c - p).dot(&n);
    let mut block = box_mesh(BoundingBox {
        min_mm: [-size, -size, 0.0],
        max_mm: [size, size, size],
    });
    for q in &mut block.positions {
        *q = (origin + u * q[0] + v * q[1] + n * q[2]).into();
    }
    block
}

/// Flat faces are grouped by their plane: normals within this (per component) and offsets within this, mm.
const PLANE_NORMAL_QUANTUM: f64 = 1e-4;
const PLANE_OFFSET_QUANTUM_MM: f64 = 1e-3;

/// `mesh` with `lines` embossed on its largest flat face (a cap of the crop or a cut): the face's triangles as the mask
/// of free points, the letters standing out of it. `None` for the label when no setting fits.
fn with_label(mesh: Mesh, settings: &[Vec<String>]) -> Result<(Mesh, Option<ModelLabel>), CaseError> {
    use crate::label::{emboss, find_place, FreeMask, LabelLayout, Placement, MIN_CAP_HEIGHT_MM, RELIEF_MM, SINK_MM};
    use std::collections::BTreeMap;
    let err = |detail: String| CaseError::AnatomicalModel { detail };
    // The flat faces: triangles grouped by their plane, the largest group by area.
    let mut groups: BTreeMap<[i64; 4], (f64, Vec<usize>)> = BTreeMap::new();
    for (t, tri) in mesh.triangles.iter().enumerate() {
        let [a, b, c] = tri.map(|i| nalgebra::Vector3::from(mesh.positions[i as usize]));
        let cross = (b - a).cross(&(c - a));
        let area = 0.5 * cross.norm();
        if area < 1e-12 {
            continue;
        }
        let n = cross / (2.0 * area);
        let key = [
            (n.x / PLANE_NORMAL_QUANTUM).round() as i64,
            (n.y / PLANE_NORMAL_QUANTUM).round() as i64,
            (n.z / PLANE_NORMAL_QUANTUM).round() as i64,
            (n.dot(&a) / PLANE_OFFSET_QUANTUM_MM).round() as i64,
        ];
        let g = groups.entry(key).or_insert((0.0, Vec::new()));
        g.0 += area;
        g.1.push(t);
    }
    let Some((_, (_, tris))) = groups.iter().max_by(|x, y| x.1 .0.total_cmp(&y.1 .0)) else {
        return Ok((mesh, None));
    };
    // The face's own normal (area-weighted over its triangles), not the rounded key.
    let n = tris
        .iter()
        .map(|&t| {
            let [a, b, c] = mesh.triangles[t].map(|i| nalgebra::Vector3::from(mesh.positions[i as usize]));
            (b - a).cross(&(c - a))
        })
        .fold(nalgebra::Vector3::zeros(), |acc, v| acc + v)
        .normalize();
    let helper = if n.x.abs() < 0.9 {
        nalgebra::Vector3::x()
    } else {
        nalgebra::Vector3::y()
    };
    let e1 = n.cross(&helper).normalize();
    let e2 = n.cross(&e1);
    let p0 = nalgebra::Vector3::from(mesh.positions[mesh.triangles[tris[0]][0] as usize]);
    let to2 = |p: &[f64; 3]| {
        let d = nalgebra::Vector3::from(*p) - p0;
        [d.dot(&e1), d.dot(&e2)]
    };
    let flat: Vec<[[f64; 2]; 3]> = tris
        .iter()
        .map(|&t| mesh.triangles[t].map(|i| to2(&mesh.positions[i as usize])))
        .collect();
    let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
    for p in flat.iter().flatten() {
        lo = [lo[0].min(p[0]), lo[1].min(p[1])];
        hi = [hi[0].max(p[0]), hi[1].max(p[1])];
    }
    // Triangles bucketed by 2 mm cells, so each mask point tests a few.
    const CELL_MM: f64 = 2.0;
    let cells = [0, 1].map(|k| (((hi[k] - lo[k]) / CELL_MM).ceil() as usize).max(1));
    let mut bucket: Vec<Vec<usize>> = vec![Vec::new(); cells[0] * cells[1]];
    let cell_of = |x: f64, k: usize| (((x - lo[k]) / CELL_MM).floor().max(0.0) as usize).min(cells[k] - 1);
    for (i, t) in flat.iter().enumerate() {
        let (a0, a1) = (
            t.iter().map(|p| p[0]).fold(f64::INFINITY, f64::min),
            t.iter().map(|p| p[0]).fold(f64::NEG_INFINITY, f64::max),
        );
        let (b0, b1) = (
            t.iter().map(|p| p[1]).fold(f64::INFINITY, f64::min),
            t.iter().map(|p| p[1]).fold(f64::NEG_INFINITY, f64::max),
        );
        for cy in cell_of(b0, 1)..=cell_of(b1, 1) {
            for cx in cell_of(a0, 0)..=cell_of(a1, 0) {
                bucket[cy * cells[0] + cx].push(i);
            }
        }
    }
    let inside = |p: [f64; 2]| {
        if p[0] < lo[0] || p[1] < lo[1] || p[0] > hi[0] || p[1] > hi[1] {
            return false;
        }
        bucket[cell_of(p[1], 1) * cells[0] + cell_of(p[0], 0)].iter().any(|&i| {
            let [a, b, c] = flat[i];
            let side = |u: [f64; 2], v: [f64; 2]| (v[0] - u[0]) * (p[1] - u[1]) - (v[1] - u[1]) * (p[0] - u[0]);
            let (s1, s2, s3) = (side(a, b), side(b, c), side(c, a));
            (s1 >= 0.0 && s2 >= 0.0 && s3 >= 0.0) || (s1 <= 0.0 && s2 <= 0.0 && s3 <= 0.0)
        })
    };
    let mask = FreeMask::new(lo, hi, 0.25, inside);
    for lines in settings {
        let layout = LabelLayout::new(lines, MIN_CAP_HEIGHT_MM).map_err(|e| err(format!("the case label: {e}")))?;
        let placement: Option<Placement> = find_place(&layout, &mask, &[0.0, std::f64::consts::FRAC_PI_2], 1.0, 0.5);
        let Some(placement) = placement else { continue };
        let to_patient = |q: [f64; 3]| -> [f64; 3] { (p0 + e1 * q[0] + e2 * q[1] + n * q[2]).into() };
        let letters = emboss(&layout, &placement, |_| Some(0.0), to_patient, RELIEF_MM, SINK_MM)
            .map_err(|e| err(format!("the case label: {e}")))?;
        let added_mm3 = letters.mesh.signed_volume_mm3() * RELIEF_MM / (RELIEF_MM + SINK_MM);
        let labelled = fold(
            Operand::new("model", &mesh),
            &[Operand::new("case label", &letters.mesh)],
            BoolOp::Union,
        )
        .map_err(|e| err(format!("joining the case label: {e}")))?;
        return Ok((
            labelled,
            Some(ModelLabel {
                lines: layout.lines.clone(),
                added_mm3,
            }),
        ));
    }
    Ok((mesh, None))
}

/// `mesh` standing on a plate `thickness_mm` thick, [`BASE_CLEARANCE_MM`] below its lowest point (LPS `z`), joined to
/// it by posts where a vertical line from below first meets bone that faces down (each post ends [`POST_DEPTH_MM`]
/// inside the bone, its whole top checked to be inside; the lowest such places first, [`POST_SPACING_MM`] apart), and
/// the case label on the plate's strip in front (anterior, `-y`), read from the front. Every piece of the model must
/// get a post: the result is one solid.
fn with_base(
    mesh: &Mesh,
    name: &str,
    thickness_mm: f64,
    settings: &[Vec<String>],
) -> Result<(Mesh, ModelBase, Option<ModelLabel>), CaseError> {
    use crate::label::{emboss, find_place, FreeMask, LabelLayout, MIN_CAP_HEIGHT_MM, RELIEF_MM, SINK_MM};
    use crate::measure::BoneQuery;
    let err = |detail: String| CaseError::AnatomicalModel {
        detail: format!("the base of the {name} model: {detail}"),
    };
    let b = mesh.bounding_box().ok_or_else(|| err("the model is empty".into()))?;
    let query = BoneQuery::new(mesh).map_err(|e| err(e.to_string()))?;
    let top_z = b.min_mm[2] - BASE_CLEARANCE_MM;
    let floor_z = top_z - thickness_mm;
    let plate = box_mesh(BoundingBox {
        min_mm: [
            b.min_mm[0] - BASE_BORDER_MM,
            b.min_mm[1] - BASE_BORDER_MM - BASE_LABEL_STRIP_MM,
            floor_z,
        ],
        max_mm: [b.max_mm[0] + BASE_BORDER_MM, b.max_mm[1] + BASE_BORDER_MM, top_z],
    });
    // Inside the model: the first crossing above the point leaves it.
    let inside = |p: [f64; 3]| {
        query
            .crossings(p, [0.0, 0.0, 1.0], 0.0, f64::INFINITY)
            .ok()
            .and_then(|c| c.first().map(|c| !c.entering))
            .unwrap_or(false)
    };
    // Candidates on a fine grid, the lowest first; posts kept at least the spacing apart.
    let steps = |k: usize| ((b.max_mm[k] - b.min_mm[k]) / POST_CANDIDATE_STEP_MM).floor() as usize + 1;
    let start = |k: usize| 0.5 * (b.min_mm[k] + b.max_mm[k]) - 0.5 * (steps(k) - 1) as f64 * POST_CANDIDATE_STEP_MM;
    let rows: Vec<Result<Vec<[f64; 3]>, CaseError>> = (0..steps(1))
        .into_par_iter()
        .map(|j| {
            let mut row = Vec::new();
            for i in 0..steps(0) {
                let (x, y) = (
                    start(0) + i as f64 * POST_CANDIDATE_STEP_MM,
                    start(1) + j as f64 * POST_CANDIDATE_STEP_MM,
                );
                let hits = query
                    .crossings([x, y, floor_z], [0.0, 0.0, 1.0], 0.0, f64::INFINITY)
                    .map_err(|e| err(e.to_string()))?;
                let Some(first) = hits.first().filter(|c| c.entering && -c.normal[2] >= POST_MIN_DOWN) else {
                    continue;
                };
                let z_top = first.point_mm[2] + POST_DEPTH_MM;
                let rim_inside = (0..8).all(|k| {
                    let a = f64::from(k) * std::f64::consts::FRAC_PI_4;
                    inside([x + POST_RADIUS_MM * a.cos(), y + POST_RADIUS_MM * a.sin(), z_top])
                });
                if rim_inside && inside([x, y, z_top]) {
                    row.push([x, y, z_top]);
                }
            }
            Ok(row)
        })
        .collect();
    let mut candidates = Vec::new();
    for row in rows {
        candidates.extend(row?);
    }
    candidates.sort_by(|p, q| p[2].total_cmp(&q[2]));
    let mut chosen: Vec<[f64; 3]> = Vec::new();
    for c in candidates {
        if chosen
            .iter()
            .all(|p| (p[0] - c[0]).hypot(p[1] - c[1]) >= POST_SPACING_MM)
        {
            chosen.push(c);
        }
    }
    let posts = chosen
        .iter()
        .map(|&[x, y, z_top]| {
            crate::mesh::shapes::cylinder(
                [x, y, top_z - 0.5 * thickness_mm],
                [x, y, z_top],
                POST_RADIUS_MM,
                POST_SIDES,
            )
            .map_err(|e| err(e.to_string()))
        })
        .collect::<Result<Vec<Mesh>, CaseError>>()?;
    if posts.is_empty() {
        return Err(err(
            "no place for a post: no bone under it faces down; leave the base out".to_string(),
        ));
    }
    // The case label on the strip in front of the bone, on the plate's top.
    let strip_lo = [
        b.min_mm[0] - BASE_BORDER_MM,
        b.min_mm[1] - BASE_BORDER_MM - BASE_LABEL_STRIP_MM,
    ];
    let strip_hi = [b.max_mm[0] + BASE_BORDER_MM, b.min_mm[1] - BASE_BORDER_MM];
    let mask = FreeMask::new(strip_lo, strip_hi, 0.25, |_| true);
    let mut letters = None;
    for lines in settings {
        let layout = LabelLayout::new(lines, MIN_CAP_HEIGHT_MM).map_err(|e| err(format!("the case label: {e}")))?;
        let Some(placement) = find_place(&layout, &mask, &[0.0], 1.0, 0.5) else {
            continue;
        };
        // (x, y, z) is right-handed: the text reads from the front, looking down.
        let e = emboss(
            &layout,
            &placement,
            |_| Some(0.0),
            |q| [q[0], q[1], top_z + q[2]],
            RELIEF_MM,
            SINK_MM,
        )
        .map_err(|e| err(format!("the case label: {e}")))?;
        let added_mm3 = e.mesh.signed_volume_mm3() * RELIEF_MM / (RELIEF_MM + SINK_MM);
        letters = Some((
            e.mesh,
            ModelLabel {
                lines: layout.lines.clone(),
                added_mm3,
            },
        ));
        break;
    }
    // The base's small parts joined first, then the base with the bone once (each boolean with the bone costs in
    // proportion to the bone's triangles: one instead of one per post).
    let mut operands: Vec<Operand<'_>> = posts.iter().map(|p| Operand::new("post", p)).collect();
    if let Some((m, _)) = &letters {
        operands.push(Operand::new("case label", m));
    }
    let base = fold(Operand::new("base plate", &plate), &operands, BoolOp::Union)
        .map_err(|e| err(format!("joining the posts to the plate: {e}")))?;
    let joined = fold(
        Operand::new("model", mesh),
        &[Operand::new("base", &base)],
        BoolOp::Union,
    )
    .map_err(|e| err(format!("joining the base: {e}")))?;
    let report = MeshReport::new(&joined);
    if report.components != 1 {
        return Err(err(format!(
            "{} pieces after joining: a piece of the bone has no post under it (none of its bone faces down); \
             leave the base out",
            report.components
        )));
    }
    let base = ModelBase {
        thickness_mm,
        floor_z_mm: floor_z,
        posts: posts.len(),
    };
    Ok((joined, base, letters.map(|(_, l)| l)))
}

/// `mesh` as its STL will hold it (positions rounded to `f32`), checked: a model as it is written.
fn written(name: &'static str, description: &'static str, mesh: Mesh) -> Result<AnatomicalModel, CaseError> {
    checked(name, description, crate::mesh::sliver::rounded_for_files(mesh))
}

/// `mesh` checked (in `f64`: its cap faces still exactly flat for the label to find).
fn checked(name: &'static str, description: &'static str, mesh: Mesh) -> Result<AnatomicalModel, CaseError> {
    let report = MeshReport::new(&mesh);
    if mesh.triangles.is_empty() || !report.is_valid() {
        return Err(CaseError::AnatomicalModel {
            detail: format!("the {name} model ({description}) is not a valid closed solid: {report}"),
        });
    }
    Ok(AnatomicalModel {
        name,
        description,
        mesh,
        report,
        label: None,
        base: None,
    })
}

/// The file name of model `m` of case `case_id`.
pub fn model_file_name(case_id: &str, m: &AnatomicalModel) -> String {
    format!("{case_id}_model_{}.stl", m.name)
}

/// Model `m` as binary STL bytes (header: software, case and model name).
pub fn model_stl_bytes(case_id: &str, m: &AnatomicalModel) -> Result<Vec<u8>, CaseError> {
    let mut bytes = Vec::new();
    write_stl_binary(
        &m.mesh,
        &mut bytes,
        &format!("guidesmith case {case_id} model {}", m.name),
    )
    .map_err(|e| CaseError::AnatomicalModel {
        detail: format!("the {} model: {e}", m.name),
    })?;
    Ok(bytes)
}

/// Writes each model as binary STL `<case>_model_<name>.stl` into `out_dir` (atomically), returns the paths.
pub fn write_models(out_dir: &Path, case_id: &str, models: &[AnatomicalModel]) -> Result<Vec<PathBuf>, CaseError> {
    std::fs::create_dir_all(out_dir).map_err(|e| CaseError::Output {
        path: out_dir.to_path_buf(),
        detail: format!("cannot create the folder: {e}"),
    })?;
    let mut paths = Vec::with_capacity(models.len());
    for m in models {
        let path = out_dir.join(model_file_name(case_id, m));
        let bytes = model_stl_bytes(case_id, m)?;
        crate::atomic::write_atomic(&path, |w| std::io::Write::write_all(w, &bytes)).map_err(|e| {
            CaseError::Output {
                path: path.clone(),
                detail: format!("cannot write: {e}"),
            }
        })?;
        paths.push(path);
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{BoneSource, CaseId, CuttingPlane};
    use crate::progress::NoProgress;

    /// A 60 x 10 x 10 mm bar along x, and a plan resecting the slab between two planes through (+-5, 0, 0) whose
    /// normals are tilted `tilt_deg` from x about z (each resecting the side towards the other).
    fn bar_and_plan(tilt_deg: f64) -> (Mesh, Plan) {
        let bar = box_mesh(BoundingBox {
            min_mm: [-30.0, -5.0, -5.0],
            max_mm: [30.0, 5.0, 5.0],
        });
        let (s, c) = tilt_deg.to_radians().sin_cos();
        let mut plan = Plan::new(
            CaseId::new("BAR").expect("case"),
            None,
            BoneSource {
                segmentation: None,
                models: vec![],
            },
        );
        for (name, x, sign) in [("left", -5.0, 1.0), ("right", 5.0, -1.0)] {
            plan.planes.push(CuttingPlane {
                name: name.into(),
                point_mm: [x, 0.0, 0.0],
                normal: [sign * c, sign * s, 0.0],
                blade_thickness_mm: 0.5,
                resected_side: ResectedSide::Positive,
            });
        }
        (bar, plan)
    }

    /// The models' positions are rounded to `f32` as their STL files hold them (by up to 2e-6 mm on these 50 mm
    /// parts), which changes a volume of thousands of mm^3 by a few 1e-6 mm^3; a wrong cut changes it by hundreds.
    const VOLUME_TOL_MM3: f64 = 1e-4;

    #[test]
    fn the_models_of_a_bar_have_the_volumes_computed_by_hand() {
        for tilt_deg in [0.0, 20.0] {
            let (bar, plan) = bar_and_plan(tilt_deg);
            let models = make_models(&plan, &bar, 15.0, &NoProgress).expect("models");
            let names: Vec<&str> = models.iter().map(|m| m.name).collect();
            assert_eq!(names, ["anatomy", "planned", "resected"]);
            // Without the case label's letters (each model has one on a 10 x 10 mm cap: their area times relief).
            let volume = |k: usize| {
                let label = models[k].label.as_ref().expect("a case label on a 10 x 10 mm cap");
                assert!(label.added_mm3 > 1.0, "{label:?}");
                models[k].mesh.signed_volume_mm3() - label.added_mm3
            };
            // The region: the planes' points grown by 15 mm, so x in -20..20 (the bar's y and z lie inside).
            assert!(
                (volume(0) - 40.0 * 100.0).abs() < VOLUME_TOL_MM3,
                "{tilt_deg}: anatomy {}",
                volume(0)
            );
            // Two parallel planes 10 mm apart along x, tilted: the slab is 10 cos(t) thick along its normal and
            // crosses the 10 x 10 mm bar at 1/cos(t): 1000 mm^3 whatever the tilt (Cavalieri).
            assert!(
                (volume(2) - 1000.0).abs() < VOLUME_TOL_MM3,
                "{tilt_deg}: resected {}",
                volume(2)
            );
            assert!(
                (volume(1) - 3000.0).abs() < VOLUME_TOL_MM3,
                "{tilt_deg}: planned {}",
                volume(1)
            );
            assert_eq!(models[1].report.components, 2);
            assert_eq!(models[2].report.components, 1);
            assert!(models.iter().all(|m| m.report.is_valid()));
        }
    }

    #[test]
    fn a_plan_without_resecting_planes_gives_only_the_anatomy_and_a_bad_margin_is_refused() {
        let (bar, mut plan) = bar_and_plan(0.0);
        for p in &mut plan.planes {
            p.resected_side = ResectedSide::None;
        }
        let models = make_models(&plan, &bar, 5.0, &NoProgress).expect("models");
        assert_eq!(models.len(), 1);
        let added = models[0].label.as_ref().map_or(0.0, |l| l.added_mm3);
        assert!((models[0].mesh.signed_volume_mm3() - added - 20.0 * 100.0).abs() < VOLUME_TOL_MM3);
        let err = make_models(&plan, &bar, -1.0, &NoProgress).expect_err("refused");
        assert!(err.to_string().contains("--margin-mm"), "{err}");
    }

    #[test]
    fn a_base_joins_every_piece_to_a_flat_plate_with_the_volume_computed_by_hand() {
        let (bar, plan) = bar_and_plan(0.0);
        let options = ModelOptions {
            margin_mm: 15.0,
            base_mm: Some(3.0),
        };
        let models = make_models_with(&plan, &bar, &options, &NoProgress).expect("models");
        let names: Vec<&str> = models.iter().map(|m| m.name).collect();
        assert_eq!(names, ["anatomy", "planned", "resected"]);
        // The bar's underside is at z = -5: the plate's top 3 mm below it, its underside 3 mm lower.
        let polygon_area = 0.5 * f64::from(POST_SIDES) * POST_RADIUS_MM.powi(2) * (std::f64::consts::TAU / 16.0).sin();
        // Post centres need their rims inside the bar (|y| <= 3 mm, |x| <= 18 mm from its ends or cuts) on the 1 mm
        // grid; all at the same height, so the first in grid order wins: one row at y = -3 (y = 3 is 6 mm away),
        // x = -18, -10, -2, 6, 14 on the whole bar, and -18, -10 | 7, 15 on the two pieces left by the resection.
        for (k, bone_mm3, posts) in [(0, 4000.0, 5), (1, 3000.0, 4)] {
            let m = &models[k];
            let base = m.base.as_ref().expect("a base");
            assert_eq!(base.floor_z_mm, -11.0);
            assert_eq!(m.report.components, 1, "{}: the pieces joined", m.name);
            assert!(m.report.is_valid());
            let label = m.label.as_ref().expect("the label on the strip");
            assert_eq!(label.lines, ["BAR", &m.name.to_uppercase()]);
            // Bar x in -20..20, y in -5..5: the plate 3 mm beyond, 12 mm more in front (-y): 46 x 28 x 3 mm.
            let plate_mm3 = 46.0 * 28.0 * 3.0;
            // Each post shows 3 mm between the plate and the bar (the rest is inside one of them).
            let posts_mm3 = base.posts as f64 * polygon_area * 3.0;
            let expected = bone_mm3 + plate_mm3 + posts_mm3 + label.added_mm3;
            let got = m.mesh.signed_volume_mm3();
            assert!(
                (got - expected).abs() < VOLUME_TOL_MM3,
                "{}: {got} vs {expected}",
                m.name
            );
            assert_eq!(base.posts, posts, "{}", m.name);
            // The underside is one flat face: every vertex at the floor lies on the plate's corners.
            let bottom: Vec<_> = m.mesh.positions.iter().filter(|p| p[2] <= -11.0 + 1e-9).collect();
            assert_eq!(bottom.len(), 4, "{bottom:?}");
        }
        // The resected segment has no base, its label on a cap.
        assert!(models[2].base.is_none());
        let bad = ModelOptions {
            margin_mm: 15.0,
            base_mm: Some(0.5),
        };
        let err = make_models_with(&plan, &bar, &bad, &NoProgress).expect_err("too thin");
        assert!(err.to_string().contains("--base-mm"), "{err}");
    }
}
