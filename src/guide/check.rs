//! The checks every guide must pass before it may be written: a solid that prints, and geometry exact to the plan.
//!
//! Why measured on the finished mesh and not trusted from construction: booleans, tessellation and placement each
//! could move a face; a surgeon approves the plan, so the file must be shown to carry the plan. Every check measures
//! the result against the plan's numbers (slot faces against the planned plane, channel walls against the planned
//! axis, the underside against the bone), and a failure names the element and the place.

use nalgebra::{Point3, Vector3};
use serde::Serialize;

use super::build::{slot_tool_name, BuiltGuide, PlacedLabel};
use super::seating::{seating_play, SeatingPlay, ROTATION_LIMIT_DEG, TRANSLATION_LIMIT_MM};
use crate::finding::{element, Finding, FindingCode};
use crate::label::MIN_CAP_HEIGHT_MM;
use crate::measure::BoneQuery;
use crate::mesh::{Mesh, MeshReport};
use crate::template::SeatingParams;

/// Slot mid-plane: largest offset from the planned plane, mm.
pub const SLOT_OFFSET_TOL_MM: f64 = 0.02;
/// Slot faces: largest angle of either face (its area-weighted normal) to the planned plane, degrees.
pub const SLOT_ANGLE_TOL_DEG: f64 = 0.05;
/// Slot width: largest difference from the specified width, mm.
pub const SLOT_WIDTH_TOL_MM: f64 = 0.01;
/// Channel axis: largest offset from the planned trajectory, mm.
pub const CHANNEL_OFFSET_TOL_MM: f64 = 0.02;
/// Channel axis: largest angle to the planned trajectory, degrees.
pub const CHANNEL_ANGLE_TOL_DEG: f64 = 0.05;
/// Contact surface: allowed deviation of the bone gap from the bone offset, mm.
pub const CONTACT_TOL_MM: f64 = 0.05;
/// Wall thickness may fall short of the minimum by this much (float noise of the ray test), mm.
const WALL_TOL_MM: f64 = 1e-3;
/// Two faces bound a wall when their normals are opposed within this angle (deg): wedges sharper than this are
/// walls and are measured; blunter edges are ordinary corners.
const OPPOSED_DEG: f64 = 30.0;
/// Vertices within this distance (mm) of the bore's wall are fitted as the channel wall; points of the underside
/// around the channel's mouth lie farther out.
const CHANNEL_BAND_MM: f64 = 0.05;
/// A face lies on a tool's surface when its centroid is within this distance of it, mm.
const ON_TOOL_MM: f64 = 1e-4;
/// Faces are taken as slot faces when within this distance of the expected face position (mm) and this angle (deg):
/// loose, so a misplaced slot is measured (and fails) instead of being missed.
const SLOT_SEARCH_MM: f64 = 0.5;
const SLOT_SEARCH_DEG: f64 = 5.0;

/// One slot measured on the mesh.
#[derive(Clone, Debug, Serialize)]
pub struct SlotCheck {
    /// Plane name.
    pub plane: String,
    /// Mid-plane offset from the planned plane, mm.
    pub offset_mm: f64,
    /// Largest angle of either slot face to the planned plane, deg: each face's normal weighted by area, the plane
    /// the blade rests on. (Single triangles are not measured: a 0.3 mm triangle of a face tilts by up to 1 deg when
    /// the positions are rounded to `f32` for the file, while the face as a whole moves by 1e-6 deg.)
    pub angle_deg: f64,
    /// Measured width, mm.
    pub width_mm: f64,
    /// Specified width, mm.
    pub expected_width_mm: f64,
    /// Guidance length, mm.
    pub guidance_mm: f64,
    /// Within tolerance.
    pub ok: bool,
}

/// One drill channel measured on the mesh.
#[derive(Clone, Debug, Serialize)]
pub struct ChannelCheck {
    /// Drill name.
    pub drill: String,
    /// Offset of the measured axis from the planned one (at the entry), mm.
    pub offset_mm: f64,
    /// Angle between measured and planned axes, deg.
    pub angle_deg: f64,
    /// Narrowest radius of the channel wall around the planned axis, mm (never below the nominal bore).
    pub min_radius_mm: f64,
    /// Nominal bore diameter, mm.
    pub bore_diameter_mm: f64,
    /// Within tolerance.
    pub ok: bool,
}

/// The underside against the bone.
#[derive(Clone, Debug, Serialize)]
pub struct ContactCheck {
    /// Bone offset asked for, mm.
    pub bone_offset_mm: f64,
    /// Guide vertices on the contact surface.
    pub contact_vertices: usize,
    /// Smallest gap of any guide vertex to the bone, mm.
    pub min_gap_mm: f64,
    /// Where that vertex is, patient mm.
    pub min_gap_at_mm: [f64; 3],
    /// Largest gap of a contact vertex, mm (large over blocked-out undercuts).
    pub max_contact_gap_mm: f64,
    /// Share of contact vertices whose gap is the offset within the tolerance.
    pub at_offset_fraction: f64,
    /// Guide vertices inside the bone.
    pub inside_bone: usize,
    /// No vertex closer than offset - tolerance, none inside.
    pub ok: bool,
}

/// Wall thickness around slots, channels and holes.
#[derive(Clone, Debug, Serialize)]
pub struct WallCheck {
    /// Minimum wall asked for, mm.
    pub min_wall_mm: f64,
    /// Thinnest wall found, mm.
    pub thinnest_mm: f64,
    /// Where (LPS mm), and next to which tool.
    pub thinnest_at_mm: Option<[f64; 3]>,
    /// Tool next to the thinnest wall.
    pub thinnest_near: Option<String>,
    /// Faces sampled.
    pub samples: usize,
    /// Thinnest >= minimum.
    pub ok: bool,
}

/// Every check of one guide.
#[derive(Clone, Debug, Serialize)]
pub struct GuideCheck {
    /// Guide name.
    pub guide: String,
    /// All checks passed (no finding).
    pub passed: bool,
    /// What failed, one finding each, with its code and place.
    pub findings: Vec<Finding>,
    /// Closed, manifold, outward, no self-intersections, no degenerate triangles.
    pub mesh: MeshReport,
    /// Slots.
    pub slots: Vec<SlotCheck>,
    /// Channels.
    pub channels: Vec<ChannelCheck>,
    /// Contact and overlap.
    pub contact: ContactCheck,
    /// Vertices that would hit the bone when the guide is taken off along its seating direction.
    pub blocked_on_removal: usize,
    /// Where the first of them is, LPS mm.
    pub blocked_at_mm: Option<[f64; 3]>,
    /// Walls.
    pub walls: WallCheck,
    /// How far the seated guide can slide or turn before it meets the bone (`None`: no contact point).
    pub seating: Option<SeatingPlay>,
    /// Where the fixation screw holes enter the bone side of the pad, LPS mm (in bone the plan keeps).
    pub fixation_holes_mm: Vec<[f64; 3]>,
    /// When a wall is too thin: a footprint that was built and checked and whose walls hold (filled in by the case
    /// layer, which tries it; the plan is not changed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wall_fix: Option<WallFix>,
    /// The label, as measured on the finished guide (`None`: the guide has none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<LabelCheck>,
}

/// The embossed label, measured on the finished guide.
#[derive(Clone, Debug, Serialize)]
pub struct LabelCheck {
    /// Its lines.
    pub lines: Vec<String>,
    /// Letter height (capitals), mm.
    pub cap_height_mm: f64,
    /// Centre of the text block, LPS mm.
    pub centre_mm: [f64; 3],
    /// What it stands on (`pad`, or `slot housing '<plane>'`).
    pub on: String,
    /// Vertices of the letters' tops as placed.
    pub top_points: usize,
    /// How many of them are vertices of the finished guide.
    pub top_points_found: usize,
    /// Lowest height of a letter top above what it stands on, mm.
    pub relief_mm: f64,
    /// All found, relief and height at least the minimum.
    pub ok: bool,
}

impl LabelCheck {
    /// One line: the text, what it stands on, letter height, relief and the letter-top points found.
    pub fn summary(&self) -> String {
        format!(
            "\"{}\" on the {}, letters {:.1} mm tall standing {:.2} mm out; {} of {} letter-top points on the guide",
            self.lines.join(" / "),
            self.on,
            self.cap_height_mm,
            self.relief_mm,
            self.top_points_found,
            self.top_points
        )
    }
}

/// A change of the footprint that makes a too-thin wall hold: one edge moved along its normal.
#[derive(Clone, Debug, Serialize)]
pub struct WallFix {
    /// The edge's first point in the plan's outline (counted from 0; the edge runs to the next point).
    pub edge: usize,
    /// How far the edge moves, mm: positive outward, negative inward.
    pub by_mm: f64,
    /// The footprint with the edge moved, patient LPS mm, in the plan's order.
    pub outline_mm: Vec<[f64; 3]>,
    /// The thinnest wall of the guide built on it, mm.
    pub thinnest_wall_mm: f64,
    /// The codes of what that guide still fails (the seating play, typically), empty when it passes.
    pub still_fails: Vec<FindingCode>,
}

/// The solid's failures as findings about `element`: one per kind of defect, placed at its first example.
pub fn solid_findings(report: &MeshReport, element: &str) -> Vec<Finding> {
    use FindingCode as C;
    let mut out = Vec::new();
    let mut add = |code: FindingCode, count: usize, what: &str, place: Option<[f64; 3]>| {
        if count > 0 {
            let f = Finding::error(code, element.to_string(), format!("the solid has {count} {what}"));
            out.push(match place {
                Some(p) => f.at(p),
                None => f,
            });
        }
    };
    let open = report.boundary_edges.count + report.non_manifold_edges.count + report.inconsistent_edges.count;
    let first_edge = [
        &report.boundary_edges,
        &report.non_manifold_edges,
        &report.inconsistent_edges,
    ]
    .iter()
    .find_map(|l| l.examples.first().map(|e| e.from_mm));
    add(
        C::GuideNotClosed,
        open,
        "open, non-manifold or inconsistently oriented edges",
        first_edge,
    );
    add(
        C::GuideNotClosed,
        report.non_manifold_vertices.count + report.invalid_triangles.count,
        "non-manifold vertices or invalid triangles",
        report.non_manifold_vertices.examples.first().map(|v| v.position_mm),
    );
    add(
        C::GuideInward,
        report.inward_components.count,
        "parts turned inside out",
        report.inward_components.examples.first().map(|c| c.position_mm),
    );
    add(
        C::GuideSelfIntersecting,
        report.self_intersections.count,
        "intersecting triangle pairs",
        report.self_intersections.examples.first().map(|d| d.position_mm),
    );
    add(
        C::GuideDegenerateTriangles,
        report.degenerate_triangles.count,
        "degenerate triangles",
        report.degenerate_triangles.examples.first().map(|t| t.centroid_mm),
    );
    out
}

/// Runs every check on `built` against `bone`.
pub fn check_guide(built: &BuiltGuide, bone: &BoneQuery) -> GuideCheck {
    use FindingCode as C;
    let mesh = &built.mesh;
    let el = element("guides", &built.name);
    let report = MeshReport::new(mesh);
    let mut findings = solid_findings(&report, &el);
    if report.components != 1 {
        findings.push(Finding::error(
            C::GuideInPieces,
            el.clone(),
            format!("the guide is in {} pieces, not one", report.components),
        ));
    }
    let origin = built.frame.origin_mm.coords;
    let slots: Vec<SlotCheck> = built
        .slots
        .iter()
        .map(|s| {
            let tool = built
                .tools
                .iter()
                .find(|(name, _)| *name == slot_tool_name(&s.spec.name))
                .and_then(|(_, m)| local_trimesh(m, &origin));
            check_slot(mesh, s, tool.as_ref(), &origin)
        })
        .collect();
    for (s, placed) in slots.iter().zip(&built.slots).filter(|(s, _)| !s.ok) {
        findings.push(
            Finding::error(
                C::SlotOffPlan,
                el.clone(),
                format!(
                    "slot '{}': mid-plane {:.4} mm / {:.4} deg from the plan, width {:.4} mm (specified {:.4} mm)",
                    s.plane, s.offset_mm, s.angle_deg, s.width_mm, s.expected_width_mm
                ),
            )
            .at(placed.spec.point_mm),
        );
    }
    let channels: Vec<ChannelCheck> = built.channels.iter().map(|c| check_channel(mesh, c)).collect();
    for (c, placed) in channels.iter().zip(&built.channels).filter(|(c, _)| !c.ok) {
        findings.push(
            Finding::error(
                C::ChannelOffPlan,
                el.clone(),
                format!(
                    "channel '{}': axis {:.4} mm / {:.4} deg from the trajectory, narrowest radius {:.4} mm (bore \
                     {:.4} mm)",
                    c.drill, c.offset_mm, c.angle_deg, c.min_radius_mm, c.bore_diameter_mm
                ),
            )
            .at(placed.spec.entry_mm),
        );
    }
    let contact = check_contact(built, bone);
    if !contact.ok && contact.inside_bone == 0 {
        findings.push(
            Finding::error(
                C::ContactGapTooSmall,
                el.clone(),
                format!(
                    "smallest gap to the bone {:.3} mm (offset {:.3} mm, tolerance {CONTACT_TOL_MM} mm; {} vertices \
                     on the contact surface)",
                    contact.min_gap_mm, contact.bone_offset_mm, contact.contact_vertices
                ),
            )
            .at(contact.min_gap_at_mm),
        );
    }
    if contact.inside_bone > 0 {
        findings.push(
            Finding::error(
                C::GuideInsideBone,
                el.clone(),
                format!("{} vertices of the guide lie inside the bone", contact.inside_bone),
            )
            .at(contact.min_gap_at_mm),
        );
    }
    let (blocked_on_removal, blocked_at_mm) = check_removal(built, bone);
    if let Some(at) = blocked_at_mm {
        findings.push(
            Finding::error(
                C::RemovalBlocked,
                el.clone(),
                format!(
                    "{blocked_on_removal} vertices would hit the bone when the guide is lifted off along its seating \
                     direction"
                ),
            )
            .at(at),
        );
    }
    let seating = seating_play(
        bone.mesh(),
        &built.frame,
        &contact_points(built),
        built.pad.contact.spacing_mm,
    );
    if let Some(f) = seating
        .as_ref()
        .and_then(|play| loose_seating(play, &built.params.seating, &el))
    {
        findings.push(f);
    }
    let walls = check_walls(built);
    if !walls.ok {
        let f = Finding::error(
            C::WallTooThin,
            el.clone(),
            format!(
                "wall of {:.3} mm (minimum {:.3} mm) next to {}",
                walls.thinnest_mm,
                walls.min_wall_mm,
                walls.thinnest_near.as_deref().unwrap_or("a part")
            ),
        );
        findings.push(match walls.thinnest_at_mm {
            Some(p) => f.at(p),
            None => f,
        });
    }
    let label = built.label.as_ref().map(|l| check_label(built, l));
    if let Some(l) = label.as_ref().filter(|l| !l.ok) {
        findings.push(
            Finding::error(
                C::GuideLabelMissing,
                el.clone(),
                format!(
                    "label {:?}: {} of {} letter-top points on the finished guide, relief {:.2} mm (at least \
                     {MIN_LABEL_RELIEF_MM} mm), letters {:.2} mm tall (at least {MIN_CAP_HEIGHT_MM} mm)",
                    l.lines, l.top_points_found, l.top_points, l.relief_mm, l.cap_height_mm
                ),
            )
            .at(l.centre_mm),
        );
    }
    GuideCheck {
        guide: built.name.clone(),
        passed: findings.is_empty(),
        findings,
        mesh: report,
        slots,
        channels,
        contact,
        blocked_on_removal,
        blocked_at_mm,
        walls,
        seating,
        fixation_holes_mm: built.holes.iter().map(|h| h.point_mm).collect(),
        wall_fix: None,
        label,
    }
}

/// The least relief a label must stand above the pad, mm.
pub const MIN_LABEL_RELIEF_MM: f64 = 0.5;

/// The label measured on the finished guide: every vertex of the letters' tops is a vertex of the guide (the booleans
/// kept the letters), and how high each stands above what it stands on (a ray back along the letters' outward
/// direction to the pad's top or the housing's wall, before the union).
fn check_label(built: &BuiltGuide, l: &PlacedLabel) -> LabelCheck {
    const QUANTUM_MM: f64 = 1e-3;
    let key = |p: &[f64; 3]| p.map(|c| (c / QUANTUM_MM).round() as i64);
    let on_guide: std::collections::HashSet<[i64; 3]> = built.mesh.positions.iter().map(key).collect();
    let found = l
        .top_points_mm
        .iter()
        .filter(|p| {
            let k = key(p);
            (-1..=1).any(|a| (-1..=1).any(|b| (-1..=1).any(|c| on_guide.contains(&[k[0] + a, k[1] + b, k[2] + c]))))
        })
        .count();
    // Down onto what the letters stand on, as it was before the union: the pad's top or the housing's wall.
    let down = l.outward.map(|c| -c);
    let base = l.base_housing.as_ref().unwrap_or(&built.pad.mesh);
    let relief_mm = match BoneQuery::new(base) {
        Ok(base) => l
            .top_points_mm
            .iter()
            .map(|p| {
                base.crossings(*p, down, 0.0, 10.0)
                    .ok()
                    .and_then(|c| c.first().map(|c| c.t_mm))
                    .unwrap_or(f64::INFINITY)
            })
            .fold(f64::INFINITY, f64::min),
        Err(_) => 0.0,
    };
    LabelCheck {
        lines: l.lines.clone(),
        cap_height_mm: l.cap_height_mm,
        centre_mm: l.centre_mm,
        on: l.on.clone(),
        top_points: l.top_points_mm.len(),
        top_points_found: found,
        relief_mm,
        ok: found == l.top_points_mm.len()
            && !l.top_points_mm.is_empty()
            && relief_mm >= MIN_LABEL_RELIEF_MM
            && relief_mm.is_finite()
            && l.cap_height_mm >= MIN_CAP_HEIGHT_MM,
    }
}

/// The finding when `play` exceeds what the template allows: which way the guide is loose, and what to do.
pub fn loose_seating(play: &SeatingPlay, allowed: &SeatingParams, el: &str) -> Option<Finding> {
    let v = |a: [f64; 3]| format!("({:.2}, {:.2}, {:.2})", a[0], a[1], a[2]);
    let mut loose = Vec::new();
    match play.translation_mm {
        None => loose.push(format!(
            "slides without limit towards {} (more than {TRANSLATION_LIMIT_MM} mm)",
            v(play.translation_direction)
        )),
        Some(mm) if mm > allowed.max_play_mm => loose.push(format!(
            "slides {mm:.2} mm towards {} (at most {} mm allowed)",
            v(play.translation_direction),
            allowed.max_play_mm
        )),
        Some(_) => {}
    }
    match play.rotation_deg {
        None => loose.push(format!(
            "turns without limit about {} (more than {ROTATION_LIMIT_DEG} deg)",
            v(play.rotation_axis)
        )),
        Some(deg) if deg > allowed.max_play_deg => loose.push(format!(
            "turns {deg:.2} deg about {} (at most {} deg allowed)",
            v(play.rotation_axis),
            allowed.max_play_deg
        )),
        Some(_) => {}
    }
    (!loose.is_empty()).then(|| {
        Finding::error(
            FindingCode::GuideSeatingLoose,
            el.to_string(),
            format!(
                "the seated guide {} before it meets the bone; extend the footprint over bone that holds it that way \
                 (a ridge, a curvature, the inferior border), or let `plan add-guide` propose one",
                loose.join(" and ")
            ),
        )
        .at(play.centroid_mm)
    })
}

/// The vertices of the guide's underside (on the pad's contact surface): what the seating analysis moves.
pub fn contact_points(built: &BuiltGuide) -> Vec<[f64; 3]> {
    built
        .mesh
        .positions
        .iter()
        .filter(|p| on_contact(built, p))
        .copied()
        .collect()
}

/// Whether `p` (a vertex of the guide) lies on the pad's contact surface, within [`CONTACT_TOL_MM`].
fn on_contact(built: &BuiltGuide, p: &[f64; 3]) -> bool {
    built
        .pad
        .contact_under(&built.frame, &Point3::from(*p))
        .is_some_and(|h| (built.frame.frame_from_patient(&Point3::from(*p)).z - h).abs() <= CONTACT_TOL_MM)
}

fn triangle_geometry(mesh: &Mesh, t: &[u32; 3]) -> Option<(Vector3<f64>, Vector3<f64>, f64)> {
    let [a, b, c] = mesh.triangle_points(*t)?;
    let (a, b, c) = (Vector3::from(a), Vector3::from(b), Vector3::from(c));
    let n = (b - a).cross(&(c - a));
    let area2 = n.norm();
    (area2 > 0.0).then(|| ((a + b + c) / 3.0, n / area2, 0.5 * area2))
}

/// `p` as parry's `f32` point relative to `origin` (the guide frame's origin keeps the rounding small).
fn local_point(p: &Vector3<f64>, origin: &Vector3<f64>) -> parry3d::math::Vec3 {
    let d = p - origin;
    parry3d::math::Vec3::new(d.x as f32, d.y as f32, d.z as f32)
}

/// The most that rounding `mesh`'s positions to `f32` (as the guide's files hold them) moved any of them, mm: half
/// an `f32` step at its largest coordinate.
fn f32_half_step_mm(mesh: &Mesh) -> f64 {
    let largest = mesh.positions.iter().flatten().fold(0.0f64, |a, c| a.max(c.abs())) as f32;
    0.5 * f64::from(largest.next_up() - largest)
}

/// A tool's mesh for distance queries, relative to `origin`.
fn local_trimesh(m: &Mesh, origin: &Vector3<f64>) -> Option<parry3d::shape::TriMesh> {
    let v = m
        .positions
        .iter()
        .map(|p| local_point(&Vector3::from(*p), origin))
        .collect();
    parry3d::shape::TriMesh::new(v, m.triangles.clone()).ok()
}

/// Whether `p` lies on the surface of `tool` (within [`ON_TOOL_MM`], or the `f32` rounding of parry's query).
fn on_tool(tool: &parry3d::shape::TriMesh, p: &Vector3<f64>, origin: &Vector3<f64>) -> bool {
    use parry3d::query::PointQuery;
    f64::from(tool.distance_to_local_point(local_point(p, origin), false)) <= ON_TOOL_MM.max(1e-3)
}

/// The slot's faces are the faces the slot's tool made (lying on its surface) near where the plan puts them: a face
/// of the housing's underside that happens to lie near the slot and parallel to it, where the bone meets the cut at
/// a grazing angle, is not a face of the slot and is not measured as one. Without the tool (`None`) every face near
/// the expected position counts.
fn check_slot(
    mesh: &Mesh,
    slot: &super::build::PlacedSlot,
    tool: Option<&parry3d::shape::TriMesh>,
    origin: &Vector3<f64>,
) -> SlotCheck {
    let n = Vector3::from(slot.spec.normal).normalize();
    let p0 = Vector3::from(slot.spec.point_mm);
    let half = 0.5 * slot.width_mm;
    let m = &slot.patient_from_part;
    let x_axis = Vector3::new(m[(0, 0)], m[(1, 0)], m[(2, 0)]);
    let x_mid = (Vector3::new(m[(0, 3)], m[(1, 3)], m[(2, 3)]) - p0).dot(&x_axis);
    let cos_search = SLOT_SEARCH_DEG.to_radians().cos();
    // side +1: the face at +half, whose outward normal (into the slot) is -n.
    let mut sums = [(0.0f64, 0.0f64, Vector3::zeros(), 0.0f64); 2];
    for t in &mesh.triangles {
        let Some((c, normal, area)) = triangle_geometry(mesh, t) else {
            continue;
        };
        let y = (c - p0).dot(&n);
        let x = (c - p0).dot(&x_axis) - x_mid;
        if x.abs() > 0.5 * slot.length_mm {
            continue;
        }
        for (k, side) in [1.0f64, -1.0].iter().enumerate() {
            if (y - side * half).abs() <= SLOT_SEARCH_MM
                && normal.dot(&(-n * *side)) >= cos_search
                && tool.is_none_or(|tm| on_tool(tm, &c, origin))
            {
                let verts: f64 = t
                    .iter()
                    .map(|&v| (Vector3::from(mesh.positions[v as usize]) - p0).dot(&n))
                    .sum();
                sums[k].0 += verts;
                sums[k].1 += 3.0;
                sums[k].2 += normal * area;
                sums[k].3 += area;
            }
        }
    }
    let found = sums[0].1 > 0.0 && sums[1].1 > 0.0;
    let (y_plus, y_minus) = if found {
        (sums[0].0 / sums[0].1, sums[1].0 / sums[1].1)
    } else {
        (f64::NAN, f64::NAN)
    };
    let offset_mm = if found { 0.5 * (y_plus + y_minus) } else { f64::INFINITY };
    let worst_angle = if found {
        [1.0f64, -1.0]
            .iter()
            .zip(&sums)
            .map(|(side, s)| s.2.normalize().dot(&(-n * *side)).clamp(-1.0, 1.0).acos().to_degrees())
            .fold(0.0, f64::max)
    } else {
        f64::INFINITY
    };
    let width_mm = if found { y_plus - y_minus } else { 0.0 };
    let ok = found
        && offset_mm.abs() <= SLOT_OFFSET_TOL_MM
        && worst_angle <= SLOT_ANGLE_TOL_DEG
        && (width_mm - slot.width_mm).abs() <= SLOT_WIDTH_TOL_MM;
    SlotCheck {
        plane: slot.spec.name.clone(),
        offset_mm,
        angle_deg: worst_angle,
        width_mm,
        expected_width_mm: slot.width_mm,
        guidance_mm: slot.guidance_mm,
        ok,
    }
}

fn check_channel(mesh: &Mesh, ch: &super::build::PlacedChannel) -> ChannelCheck {
    let d = Vector3::from(ch.spec.direction).normalize();
    let out = -d;
    let entry = Vector3::from(ch.spec.entry_mm);
    let r = 0.5 * ch.bore_diameter_mm;
    let n = ch.segments as f64;
    let r_vertex = r / (std::f64::consts::PI / n).cos();
    // Wall vertices: within the search band around the planned axis and along the barrel.
    let (ex, ey) = {
        let least = (0..3)
            .min_by(|&a, &b| out[a].abs().total_cmp(&out[b].abs()))
            .expect("three axes");
        let mut e = Vector3::zeros();
        e[least] = 1.0;
        let x = e.cross(&out).normalize();
        (x, out.cross(&x))
    };
    let mut wall: Vec<Vector3<f64>> = Vec::new();
    let mut min_radius = f64::INFINITY;
    // The barrel's top ring lies at `top_t_mm` as built; rounding to f32 moves it by up to half a step either way.
    let rounding_mm = f32_half_step_mm(mesh);
    for p in &mesh.positions {
        let q = Vector3::from(*p) - entry;
        let t = q.dot(&out);
        if t < ch.contact_t_mm - 0.5 || t > ch.top_t_mm + 1e-6 + 2.0 * rounding_mm {
            continue;
        }
        let rad = (q - out * t).norm();
        if rad > r_vertex + SLOT_SEARCH_MM {
            continue;
        }
        min_radius = min_radius.min(rad);
        if rad >= r - CHANNEL_BAND_MM && rad <= r_vertex + CHANNEL_BAND_MM {
            wall.push(q);
        }
    }
    // Least-squares cylinder of the bore's radius through the wall points (Gauss-Newton from the planned axis):
    // the measured axis, whatever way it might have moved.
    let r_mean = 0.5 * (r + r_vertex);
    let axis_of = |x: &[f64; 4]| {
        let c = ex * x[0] + ey * x[1];
        let d = (out + ex * x[2] + ey * x[3]).normalize();
        (c, d)
    };
    let residuals = |x: &[f64; 4]| -> Vec<f64> {
        let (c, d) = axis_of(x);
        wall.iter()
            .map(|q| {
                let v = q - c;
                (v - d * v.dot(&d)).norm() - r_mean
            })
            .collect()
    };
    let mut x = [0.0f64; 4];
    if wall.len() >= 8 {
        for _ in 0..8 {
            let r0 = residuals(&x);
            let mut jac = vec![[0.0f64; 4]; r0.len()];
            for k in 0..4 {
                let mut xk = x;
                xk[k] += 1e-7;
                for (row, (rk, r0i)) in jac.iter_mut().zip(residuals(&xk).iter().zip(&r0)) {
                    row[k] = (rk - r0i) / 1e-7;
                }
            }
            let mut jtj = nalgebra::Matrix4::<f64>::zeros();
            let mut jtr = nalgebra::Vector4::<f64>::zeros();
            for (row, ri) in jac.iter().zip(&r0) {
                let jr = nalgebra::Vector4::from(*row);
                jtj += jr * jr.transpose();
                jtr += jr * *ri;
            }
            let Some(step) = jtj.try_inverse().map(|inv| inv * jtr) else {
                break;
            };
            for k in 0..4 {
                x[k] -= step[k];
            }
            if step.norm() < 1e-12 {
                break;
            }
        }
    }
    let (offset_mm, angle_deg) = if wall.len() >= 8 {
        let (c, d) = axis_of(&x);
        // Offset at the entry: the fitted axis's point in the plane through the entry normal to the planned axis.
        let at_entry = c - d * (c.dot(&out) / d.dot(&out));
        (at_entry.norm(), d.dot(&out).clamp(-1.0, 1.0).acos().to_degrees())
    } else {
        (f64::INFINITY, f64::INFINITY)
    };
    let ok = offset_mm <= CHANNEL_OFFSET_TOL_MM
        && angle_deg <= CHANNEL_ANGLE_TOL_DEG
        && min_radius >= r - 1e-6 - 2.0 * rounding_mm;
    ChannelCheck {
        drill: ch.spec.name.clone(),
        offset_mm,
        angle_deg,
        min_radius_mm: min_radius,
        bore_diameter_mm: ch.bore_diameter_mm,
        ok,
    }
}

/// The bone triangles near the guide (its box grown by `margin_mm`), as a mesh for point queries.
fn bone_near(bone: &Mesh, guide: &Mesh, margin_mm: f64) -> Mesh {
    guide.bounding_box().map_or_else(Mesh::default, |bb| {
        bone.triangles_touching(&crate::mesh::grown(bb, margin_mm))
    })
}

fn check_contact(built: &BuiltGuide, bone: &BoneQuery) -> ContactCheck {
    use parry3d::math::Vec3;
    use parry3d::query::PointQuery;
    use parry3d::shape::TriMesh;
    let offset = built.params.tolerance.bone_offset_mm;
    let near = bone_near(bone.mesh(), &built.mesh, offset + 2.0);
    let origin = built.frame.origin_mm.coords;
    let local = |p: &[f64; 3]| {
        Vec3::new(
            (p[0] - origin.x) as f32,
            (p[1] - origin.y) as f32,
            (p[2] - origin.z) as f32,
        )
    };
    let trimesh = (!near.triangles.is_empty())
        .then(|| TriMesh::new(near.positions.iter().map(local).collect(), near.triangles.clone()).ok())
        .flatten();
    let mut min_gap = f64::INFINITY;
    let mut min_gap_at = [f64::NAN; 3];
    let mut contact_vertices = 0usize;
    let mut at_offset = 0usize;
    let mut max_contact_gap = 0.0f64;
    let mut inside_bone = 0usize;
    let w = built.frame.w();
    for p in &built.mesh.positions {
        let Some(tm) = &trimesh else { break };
        let gap = f64::from(tm.distance_to_local_point(local(p), false));
        if gap < min_gap {
            min_gap = gap;
            min_gap_at = *p;
        }
        if on_contact(built, p) {
            contact_vertices += 1;
            max_contact_gap = max_contact_gap.max(gap);
            if (gap - offset).abs() <= CONTACT_TOL_MM {
                at_offset += 1;
            }
        }
        if gap < offset {
            // Close to the bone: make sure it is outside (parity of crossings along the seating direction).
            let hits = bone
                .crossings(*p, (-w).into(), 0.0, f64::INFINITY)
                .map_or(0, |c| c.len());
            if hits % 2 == 1 {
                inside_bone += 1;
            }
        }
    }
    let ok = trimesh.is_some() && min_gap >= offset - CONTACT_TOL_MM && inside_bone == 0 && contact_vertices > 0;
    ContactCheck {
        bone_offset_mm: offset,
        contact_vertices,
        min_gap_mm: min_gap,
        min_gap_at_mm: min_gap_at,
        max_contact_gap_mm: max_contact_gap,
        at_offset_fraction: if contact_vertices > 0 {
            at_offset as f64 / contact_vertices as f64
        } else {
            0.0
        },
        inside_bone,
        ok,
    }
}

/// Vertices that meet the bone when moved along the seating direction's reverse, and the first of them (in vertex
/// order, so the place does not depend on the thread count).
fn check_removal(built: &BuiltGuide, bone: &BoneQuery) -> (usize, Option<[f64; 3]>) {
    use rayon::prelude::*;
    let w: [f64; 3] = built.frame.w().into();
    let blocked: Vec<[f64; 3]> = built
        .mesh
        .positions
        .par_iter()
        .filter(|p| bone.crossings(**p, w, 1e-6, f64::INFINITY).is_ok_and(|c| !c.is_empty()))
        .copied()
        .collect();
    (blocked.len(), blocked.first().copied())
}

fn check_walls(built: &BuiltGuide) -> WallCheck {
    use parry3d::shape::TriMesh;
    use rayon::prelude::*;
    let min_wall = built.params.min_wall_mm;
    let mut result = WallCheck {
        min_wall_mm: min_wall,
        thinnest_mm: f64::INFINITY,
        thinnest_at_mm: None,
        thinnest_near: None,
        samples: 0,
        ok: false,
    };
    let Ok(query) = BoneQuery::new(&built.mesh) else {
        return result;
    };
    let origin = built.frame.origin_mm.coords;
    // Each tool with its bounding box grown by the on-surface tolerance: a face whose centre lies outside the box is
    // not on the tool, without a distance query.
    let reach = ON_TOOL_MM.max(1e-3) + 1e-6;
    let tools: Vec<(&str, TriMesh, [f64; 3], [f64; 3])> = built
        .tools
        .iter()
        .filter_map(|(name, m)| {
            let (mut lo, mut hi) = ([f64::INFINITY; 3], [f64::NEG_INFINITY; 3]);
            for p in &m.positions {
                for k in 0..3 {
                    lo[k] = lo[k].min(p[k] - reach);
                    hi[k] = hi[k].max(p[k] + reach);
                }
            }
            local_trimesh(m, &origin).map(|t| (name.as_str(), t, lo, hi))
        })
        .collect();
    let inside = |c: &Vector3<f64>, lo: &[f64; 3], hi: &[f64; 3]| (0..3).all(|k| c[k] >= lo[k] && c[k] <= hi[k]);
    // Faces in parallel; the thinnest is the smallest thickness, the first face among equal ones, as in order.
    let (samples, thinnest) = built
        .mesh
        .triangles
        .par_iter()
        .enumerate()
        .map(|(k, t)| {
            let Some((c, normal, _)) = triangle_geometry(&built.mesh, t) else {
                return (0, None);
            };
            let Some(tool) = tools
                .iter()
                .position(|(_, tm, lo, hi)| inside(&c, lo, hi) && on_tool(tm, &c, &origin))
            else {
                return (0, None);
            };
            let inward: [f64; 3] = (-normal).into();
            // A wall is material between two faces that face away from each other within [`OPPOSED_DEG`]; a ray
            // leaving through an inclined face is at an ordinary edge, not in a thin wall.
            let thickness = query
                .crossings(c.into(), inward, 1e-6, f64::INFINITY)
                .ok()
                .and_then(|h| h.first().copied())
                .filter(|hit| Vector3::from(hit.normal).dot(&normal) <= -OPPOSED_DEG.to_radians().cos())
                .map(|hit| (hit.t_mm, k, c, tool));
            (1, thickness)
        })
        .reduce(
            || (0, None),
            |(na, a), (nb, b)| {
                let thinner = match (a, b) {
                    (Some(a), Some(b)) => Some(if (b.0, b.1) < (a.0, a.1) { b } else { a }),
                    (a, b) => a.or(b),
                };
                (na + nb, thinner)
            },
        );
    result.samples = samples;
    if let Some((thickness, _, c, tool)) = thinnest {
        result.thinnest_mm = thickness;
        result.thinnest_at_mm = Some(c.into());
        result.thinnest_near = Some(tools[tool].0.to_string());
    }
    result.ok = result.thinnest_mm >= min_wall - WALL_TOL_MM;
    result
}
