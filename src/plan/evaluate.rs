//! A plan measured against its bone: every plane's section, every pair of planes, every drill's path through the
//! bone and its clearances, every guide's references, and the findings (errors and warnings) a reviewer must see.
//!
//! Why it is built this way:
//! - **One evaluation, every front end.** The CLI's `plan show` / `plan check`, the GUI and the guide build all need
//!   the same numbers and the same verdicts; they are computed here once, from the plan document and a bone mesh,
//!   and returned as one serialisable [`Evaluation`] (JSON keys are the field names, units in the names).
//! - **The geometry lives in [`crate::measure`].** This module only maps plan elements to primitive queries and
//!   turns results into findings, so a measurement is never computed two ways.
//! - **Findings are data, not log lines.** Each [`Finding`] (the type every check of the library reports) names its
//!   element as `kind/name` (`planes/LeFort-R`), its place in patient mm, and a stable [`FindingCode`], so a GUI
//!   can highlight the element and a test can assert the exact check that fired.
//! - **Deterministic.** Everything is in plan order (planes, plane pairs, drills, drill pairs, guides), pairs in
//!   `(i, j)` order with `i < j`; nothing depends on hash order or the thread count.
//! - **The bone is given.** Obtaining it (loading the CT, checking its hash, re-running the segmentation, or reading
//!   the plan's STL models) is the case layer's work (`crate::case`); the plan reads no file but its own.
//!
//! Coordinates are DICOM patient LPS, millimetres.

use serde::Serialize;
use thiserror::Error;

use super::model::{CuttingPlane, DrillTrajectory, GuideBone, GuideSpec, Plan, ResectedSide, Structure};
use crate::catalogue::Catalogue;
use crate::finding::{element, Finding, FindingCode, Severity};
use crate::measure::{
    angle_between_planes_deg, distance_along_bone, drill_crosses_slab, segment_polyline_distance,
    segment_segment_distance, BoneQuery, DrillKind, DrillOptions, DrillPath, MeasureError, Piece, Section,
    SurfacePoint,
};
use crate::mesh::{BoundingBox, Mesh};
use crate::template::{builtin_printers, builtin_template};

/// Default [`EvaluateOptions::overshoot_warning_mm`]: a drill tip more than this past the far cortex is warned
/// about. 2 mm is the usual allowance for a self-tapping screw's tip to engage the far cortex fully; beyond it the
/// drill reaches soft tissue (sinus mucosa, muscle) for no gain in hold.
pub const DEFAULT_OVERSHOOT_WARNING_MM: f64 = 2.0;

/// Default [`EvaluateOptions::incidence_warning_deg`]: a drill meeting the bone surface more than this far from its
/// normal tends to skid off the cortex before it bites, even through a guide sleeve.
pub const DEFAULT_INCIDENCE_WARNING_DEG: f64 = 60.0;

/// How far a drill's diameter may differ from its screw system's pilot drill before it is a different bit, mm.
/// Catalogue drill diameters are given to 0.05 mm; 0.005 mm only absorbs a value typed with fewer digits.
pub const DRILL_DIAMETER_MATCH_MM: f64 = 0.005;

/// Why a plan could not be evaluated. Messages name the element.
#[derive(Debug, Error)]
pub enum EvaluateError {
    /// A measurement was refused (an empty or malformed bone mesh, a non-finite value).
    #[error("{element}: {error}")]
    Measure {
        /// The element measured (`drills/D1`), or `bone`.
        element: String,
        /// Why.
        error: MeasureError,
    },
}

/// Thresholds of the checks; [`Default`] gives the documented defaults.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct EvaluateOptions {
    /// How drills are measured (lead-in before the planned entry, marrow gap joining cortices).
    pub drill: DrillOptions,
    /// A tip further than this past the far cortex is a warning, mm.
    pub overshoot_warning_mm: f64,
    /// An entry incidence (angle between drill axis and surface normal) above this is a warning, degrees.
    pub incidence_warning_deg: f64,
}

impl Default for EvaluateOptions {
    fn default() -> Self {
        EvaluateOptions {
            drill: DrillOptions::default(),
            overshoot_warning_mm: DEFAULT_OVERSHOOT_WARNING_MM,
            incidence_warning_deg: DEFAULT_INCIDENCE_WARNING_DEG,
        }
    }
}

/// The bone the plan was evaluated on.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BoneSummary {
    /// Triangles of the bone mesh.
    pub triangles: usize,
    /// Its bounding box, LPS mm.
    pub bounds: BoundingBox,
}

/// One contour of a plane's section.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct LoopSummary {
    /// Whether the contour closed (false only on an open mesh).
    pub closed: bool,
    /// Contour points.
    pub points: usize,
    /// Length, mm.
    pub perimeter_mm: f64,
    /// Enclosed area, mm^2: positive for an outer boundary of bone, negative for a hole.
    pub signed_area_mm2: f64,
}

/// A cutting plane against the bone.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlaneEvaluation {
    /// The plane's name.
    pub name: String,
    /// Its point, LPS mm.
    pub point_mm: [f64; 3],
    /// Its unit normal.
    pub normal: [f64; 3],
    /// Saw blade thickness, mm.
    pub blade_thickness_mm: f64,
    /// Which side is removed.
    pub resected_side: ResectedSide,
    /// Unit vector pointing into the removed side (the normal, its opposite, or `None` when nothing is removed).
    pub resected_direction: Option<[f64; 3]>,
    /// Whether the plane cuts the bone at all.
    pub cuts_bone: bool,
    /// Number of contours of the section.
    pub loop_count: usize,
    /// Contours that did not close (an open bone mesh).
    pub open_loops: usize,
    /// Total contour length, mm: the saw's path in bone (both walls of a hollow bone).
    pub perimeter_mm: f64,
    /// Net bone area of the section, mm^2 (outer loops minus holes).
    pub area_mm2: f64,
    /// Centroid of the net section area, LPS mm (`None` when the plane misses the bone).
    pub centroid_mm: Option<[f64; 3]>,
    /// Other pieces of bone the infinite plane crosses; the figures above are of the piece at the plane's point.
    pub other_pieces: usize,
    /// Each contour, largest area first.
    pub loops: Vec<LoopSummary>,
}

/// What lies between two cutting planes, from their resected sides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Between {
    /// Both planes remove the bone between them: the distance is a resection length.
    Resected,
    /// Both planes keep the bone between them: the distance is a segment length (a graft, a transported segment).
    Kept,
    /// Anything else (a plane removes nothing, or they disagree).
    Other,
}

/// Two cutting planes against the bone.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlanePairEvaluation {
    /// First plane (earlier in the plan).
    pub first: String,
    /// Second plane.
    pub second: String,
    /// Acute angle between the planes, degrees.
    pub angle_deg: f64,
    /// What lies between them.
    pub between: Between,
    /// Distance between the two section centroids, mm: the resection or segment length along the bone (`None`
    /// when a plane misses the bone).
    pub centroid_distance_mm: Option<f64>,
    /// Perpendicular distance from the first section's centroid to the second plane, mm.
    pub first_centroid_to_second_plane_mm: Option<f64>,
    /// Perpendicular distance from the second section's centroid to the first plane, mm.
    pub second_centroid_to_first_plane_mm: Option<f64>,
}

/// A stretch of a drill axis inside bone.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct IntervalSummary {
    /// Start, mm along the axis from the planned entry.
    pub start_t_mm: f64,
    /// End, mm.
    pub end_t_mm: f64,
    /// Thickness of this cortex or bone piece along the axis, mm.
    pub length_mm: f64,
}

/// A drill's closest approach to a structure.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Clearance {
    /// The structure's name.
    pub structure: String,
    /// Distance from the drill axis (planned entry to tip) to the structure's centre line, mm.
    pub axis_distance_mm: f64,
    /// `axis_distance - drill radius - structure radius`, mm; negative when the drill cuts into the structure.
    pub clearance_mm: f64,
    /// The clearance the structure asks for, mm.
    pub margin_mm: f64,
    /// Whether `clearance_mm < margin_mm` (an error).
    pub within_margin: bool,
    /// Closest point on the drill axis, LPS mm.
    pub drill_point_mm: [f64; 3],
    /// Closest point on the structure's centre line, LPS mm.
    pub structure_point_mm: [f64; 3],
}

/// Where a drill meets a cutting plane's blade slab inside bone.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlaneCrossing {
    /// The plane's name.
    pub plane: String,
    /// First parameter along the drill where its cylinder is in the slab with the axis in bone, mm.
    pub start_t_mm: f64,
    /// Last such parameter, mm.
    pub end_t_mm: f64,
    /// Axis length both in the slab and in bone, mm.
    pub in_bone_mm: f64,
}

/// The screw system of a drill, from the catalogue.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScrewSummary {
    /// The system's name (`2.0`).
    pub system: String,
    /// Thread diameter, mm.
    pub screw_diameter_mm: f64,
    /// The pilot drill the catalogue gives, mm.
    pub drill_diameter_mm: f64,
    /// Screw head diameter, mm.
    pub head_diameter_mm: f64,
    /// Shortest stock length that reaches through both cortices (bicortical), or the longest that fits within the
    /// bone from the entry (monocortical); `None` when no stock length fits.
    pub suggested_length_mm: Option<f64>,
}

/// A drill against the bone.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DrillEvaluation {
    /// The drill's name.
    pub name: String,
    /// Planned entry, LPS mm.
    pub planned_entry_mm: [f64; 3],
    /// Unit direction.
    pub direction: [f64; 3],
    /// Planned length, mm.
    pub length_mm: f64,
    /// Drill diameter, mm.
    pub diameter_mm: f64,
    /// Planned tip, LPS mm.
    pub tip_mm: [f64; 3],
    /// Missed, starts in bone, monocortical or bicortical.
    pub kind: DrillKind,
    /// Where the axis enters the bone.
    pub entry: Option<SurfacePoint>,
    /// Where it leaves the bone piece it entered (the far cortex).
    pub exit: Option<SurfacePoint>,
    /// Every inside-bone stretch along the axis (cortices of a hollow bone), from the lead-in to the far side of
    /// the bone.
    pub intervals: Vec<IntervalSummary>,
    /// From the entry to the far exit, mm.
    pub bicortical_length_mm: Option<f64>,
    /// Bone along the axis up to the planned tip, mm.
    pub bone_within_length_mm: f64,
    /// Whether the planned tip is in bone.
    pub tip_in_bone: bool,
    /// How far the tip goes past the far exit, mm (negative: short of it).
    pub tip_past_exit_mm: Option<f64>,
    /// Closest approach to each structure, in plan order.
    pub clearances: Vec<Clearance>,
    /// Cutting planes whose blade slab the drill crosses inside bone.
    pub plane_crossings: Vec<PlaneCrossing>,
    /// The screw system, if the drill takes a screw.
    pub screw: Option<ScrewSummary>,
}

/// Two drills against each other.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DrillPairEvaluation {
    /// First drill (earlier in the plan).
    pub first: String,
    /// Second drill.
    pub second: String,
    /// Distance between the two axes (planned entry to tip), mm.
    pub axis_distance_mm: f64,
    /// `axis_distance - both radii`, mm; negative when the drill holes overlap.
    pub clearance_mm: f64,
    /// Whether the holes overlap.
    pub collide: bool,
}

/// A guide's references.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GuideEvaluation {
    /// The guide's name.
    pub name: String,
    /// Its template.
    pub template: String,
    /// Whether the template is a built-in one.
    pub template_found: bool,
    /// Its printer profile.
    pub printer: String,
    /// Whether the printer profile exists.
    pub printer_found: bool,
    /// Whether its parameters resolve against the template and printer (ranges, consistency).
    pub parameters_valid: bool,
    /// Referenced planes that the plan does not have.
    pub missing_planes: Vec<String>,
    /// Referenced drills that the plan does not have.
    pub missing_drills: Vec<String>,
    /// Whether everything it references exists and its parameters resolve.
    pub resolved: bool,
}

/// A plan measured against its bone.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Evaluation {
    /// The options the checks used.
    pub options: EvaluateOptions,
    /// The bone measured against.
    pub bone: BoneSummary,
    /// Each cutting plane, in plan order.
    pub planes: Vec<PlaneEvaluation>,
    /// Each pair of planes `(i, j)`, `i < j`.
    pub plane_pairs: Vec<PlanePairEvaluation>,
    /// Each drill, in plan order.
    pub drills: Vec<DrillEvaluation>,
    /// Each pair of drills `(i, j)`, `i < j`.
    pub drill_pairs: Vec<DrillPairEvaluation>,
    /// Each guide, in plan order.
    pub guides: Vec<GuideEvaluation>,
    /// The reconstruction's measurements (absent when the plan has none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconstruction: Option<crate::flap::FlapMeasures>,
    /// Every check that fired, in the order above.
    pub findings: Vec<Finding>,
}

impl Evaluation {
    /// Number of findings of `severity`.
    pub fn count(&self, severity: Severity) -> usize {
        self.findings.iter().filter(|f| f.severity == severity).count()
    }

    /// Whether any finding is an error.
    pub fn has_errors(&self) -> bool {
        self.count(Severity::Error) > 0
    }
}

/// Collects findings in order.
struct Findings(Vec<Finding>);

impl Findings {
    fn push(
        &mut self,
        severity: Severity,
        code: FindingCode,
        element: String,
        place_mm: Option<[f64; 3]>,
        message: String,
    ) {
        self.0.push(Finding {
            severity,
            code,
            element,
            message,
            place_mm,
        });
    }
}

fn fmt_point(p: [f64; 3]) -> String {
    format!("({:.2}, {:.2}, {:.2})", p[0], p[1], p[2])
}

/// [`evaluate_with`] with the default options.
pub fn evaluate(plan: &Plan, bone: &Mesh, catalogue: &Catalogue) -> Result<Evaluation, EvaluateError> {
    let query = BoneQuery::new(bone).map_err(|error| EvaluateError::Measure {
        element: "bone".to_string(),
        error,
    })?;
    evaluate_with(plan, &query, catalogue, &EvaluateOptions::default())
}

/// Measures every element of `plan` against the bone prepared in `query` and runs every check. `catalogue` gives
/// the screw systems (a system missing from it is a finding, not an error).
pub fn evaluate_with(
    plan: &Plan,
    query: &BoneQuery,
    catalogue: &Catalogue,
    options: &EvaluateOptions,
) -> Result<Evaluation, EvaluateError> {
    let mut findings = Findings(Vec::new());
    let mut sections = Vec::with_capacity(plan.planes.len());
    let mut planes = Vec::with_capacity(plan.planes.len());
    for p in &plan.planes {
        let whole = query
            .section(p.point_mm, p.normal)
            .map_err(|error| EvaluateError::Measure {
                element: element("planes", &p.name),
                error,
            })?;
        // The saw cuts the piece of bone at the plane's point; the rest of the infinite plane is only reported.
        let piece = whole.piece_at(p.point_mm);
        planes.push(plane_evaluation(p, &piece, &mut findings));
        sections.push(piece.section);
    }
    let mut plane_pairs = Vec::new();
    for i in 0..plan.planes.len() {
        for j in i + 1..plan.planes.len() {
            plane_pairs.push(plane_pair(
                &plan.planes[i],
                &plan.planes[j],
                &sections[i],
                &sections[j],
            )?);
        }
    }

    let mut paths = Vec::with_capacity(plan.drills.len());
    let mut drills = Vec::with_capacity(plan.drills.len());
    for d in &plan.drills {
        let path = query
            .drill_with(d.entry_mm, d.direction, d.length_mm, d.diameter_mm, &options.drill)
            .map_err(|error| EvaluateError::Measure {
                element: element("drills", &d.name),
                error,
            })?;
        drills.push(drill_evaluation(plan, d, &path, catalogue, options, &mut findings)?);
        paths.push(path);
    }
    let mut drill_pairs = Vec::new();
    for i in 0..paths.len() {
        for j in i + 1..paths.len() {
            let pair = drill_pair(&plan.drills[i], &plan.drills[j], &paths[i], &paths[j]);
            if pair.collide {
                findings.push(
                    Severity::Error,
                    FindingCode::DrillsCollide,
                    element("drills", &pair.first),
                    Some(plan.drills[i].entry_mm),
                    format!(
                        "drill '{}' and drill '{}' overlap: their axes pass {:.2} mm apart, {:.2} mm less than the \
                         sum of their radii",
                        pair.first, pair.second, pair.axis_distance_mm, -pair.clearance_mm
                    ),
                );
            }
            drill_pairs.push(pair);
        }
    }

    let guides = plan
        .guides
        .iter()
        .map(|g| guide_evaluation(plan, g, &mut findings))
        .collect();
    let reconstruction = plan.reconstruction.as_ref().and_then(|r| {
        findings.0.extend(r.findings(plan));
        r.measures(plan)
    });

    Ok(Evaluation {
        options: *options,
        bone: BoneSummary {
            triangles: query.mesh().triangles.len(),
            bounds: query.bounds(),
        },
        planes,
        plane_pairs,
        drills,
        drill_pairs,
        guides,
        reconstruction,
        findings: findings.0,
    })
}

fn plane_evaluation(p: &CuttingPlane, piece: &Piece, findings: &mut Findings) -> PlaneEvaluation {
    let section = &piece.section;
    let normal = section.plane.normal;
    let resected_direction = match p.resected_side {
        ResectedSide::Positive => Some(normal),
        ResectedSide::Negative => Some(normal.map(|c| -c)),
        ResectedSide::None => None,
    };
    let el = element("planes", &p.name);
    if section.is_empty() {
        findings.push(
            Severity::Error,
            FindingCode::PlaneMissesBone,
            el.clone(),
            Some(p.point_mm),
            format!(
                "plane '{}' through {} with normal {} does not cut the bone",
                p.name,
                fmt_point(p.point_mm),
                fmt_point(p.normal)
            ),
        );
    }
    if section.open_loops > 0 {
        findings.push(
            Severity::Warning,
            FindingCode::PlaneSectionOpen,
            el,
            Some(p.point_mm),
            format!(
                "plane '{}': {} of {} section contours do not close (the bone mesh is open there), so its area is \
                 unreliable",
                p.name,
                section.open_loops,
                section.loops.len()
            ),
        );
    }
    if piece.other_pieces > 0 {
        findings.push(
            Severity::Warning,
            FindingCode::PlaneCrossesOtherBone,
            element("planes", &p.name),
            piece.nearest_other_mm,
            format!(
                "plane '{}' extended also crosses {} other piece{} of bone (the nearest is the place given); the \
                 measurements are of the piece at the plane's point, and the blade must stop before the other{}",
                p.name,
                piece.other_pieces,
                if piece.other_pieces == 1 { "" } else { "s" },
                if piece.other_pieces == 1 { "" } else { "s" },
            ),
        );
    }
    PlaneEvaluation {
        name: p.name.clone(),
        point_mm: p.point_mm,
        normal: p.normal,
        blade_thickness_mm: p.blade_thickness_mm,
        resected_side: p.resected_side,
        resected_direction,
        cuts_bone: !section.is_empty(),
        loop_count: section.loops.len(),
        open_loops: section.open_loops,
        perimeter_mm: section.total_length_mm,
        area_mm2: section.net_area_mm2,
        centroid_mm: section.centroid_mm,
        other_pieces: piece.other_pieces,
        loops: section
            .loops
            .iter()
            .map(|l| LoopSummary {
                closed: l.closed,
                points: l.points_mm.len(),
                perimeter_mm: l.perimeter_mm,
                signed_area_mm2: l.signed_area_mm2,
            })
            .collect(),
    }
}

/// Whether the side of `plane` that holds `point` is the one it removes (`None`: it removes nothing).
fn removes_side_of(plane: &CuttingPlane, section: &Section, point: [f64; 3]) -> Option<bool> {
    let s = section.plane.signed_distance_mm(point);
    match plane.resected_side {
        ResectedSide::Positive => Some(s > 0.0),
        ResectedSide::Negative => Some(s < 0.0),
        ResectedSide::None => None,
    }
}

fn plane_pair(
    a: &CuttingPlane,
    b: &CuttingPlane,
    sa: &Section,
    sb: &Section,
) -> Result<PlanePairEvaluation, EvaluateError> {
    let distance = distance_along_bone(sa, sb);
    // The bone between the planes: seen from each plane, it lies towards the other section's centroid (or the
    // other plane's point when that plane misses the bone).
    let toward_b = sb.centroid_mm.unwrap_or(b.point_mm);
    let toward_a = sa.centroid_mm.unwrap_or(a.point_mm);
    let between = match (removes_side_of(a, sa, toward_b), removes_side_of(b, sb, toward_a)) {
        (Some(true), Some(true)) => Between::Resected,
        (Some(false), Some(false)) => Between::Kept,
        _ => Between::Other,
    };
    let angle_deg =
        angle_between_planes_deg(sa.plane.normal, sb.plane.normal).map_err(|error| EvaluateError::Measure {
            element: element("planes", &a.name),
            error,
        })?;
    Ok(PlanePairEvaluation {
        first: a.name.clone(),
        second: b.name.clone(),
        angle_deg,
        between,
        centroid_distance_mm: distance.map(|d| d.centroid_distance_mm),
        first_centroid_to_second_plane_mm: distance.map(|d| d.first_centroid_to_second_plane_mm),
        second_centroid_to_first_plane_mm: distance.map(|d| d.second_centroid_to_first_plane_mm),
    })
}

fn drill_evaluation(
    plan: &Plan,
    d: &DrillTrajectory,
    path: &DrillPath,
    catalogue: &Catalogue,
    options: &EvaluateOptions,
    findings: &mut Findings,
) -> Result<DrillEvaluation, EvaluateError> {
    let el = element("drills", &d.name);
    let measure_err = |error| EvaluateError::Measure {
        element: el.clone(),
        error,
    };
    match path.kind {
        DrillKind::Missed => findings.push(
            Severity::Error,
            FindingCode::DrillMissesBone,
            el.clone(),
            Some(d.entry_mm),
            format!(
                "drill '{}' from {} along {} never enters the bone",
                d.name,
                fmt_point(d.entry_mm),
                fmt_point(d.direction)
            ),
        ),
        DrillKind::StartsInBone => findings.push(
            Severity::Error,
            FindingCode::DrillStartsInBone,
            el.clone(),
            Some(d.entry_mm),
            format!(
                "drill '{}': the planned entry {} lies more than {} mm (the lead-in) inside the bone; move it to \
                 the bone surface",
                d.name,
                fmt_point(d.entry_mm),
                options.drill.lead_in_mm
            ),
        ),
        DrillKind::Monocortical | DrillKind::Bicortical => {}
    }
    if let Some(past) = path.tip_past_far_exit_mm {
        if past > options.overshoot_warning_mm {
            findings.push(
                Severity::Warning,
                FindingCode::DrillOvershoots,
                el.clone(),
                Some(d.entry_mm),
                format!(
                    "drill '{}' goes {past:.2} mm past the far cortex (more than {} mm): shorten it to about {:.1} mm",
                    d.name,
                    options.overshoot_warning_mm,
                    d.length_mm - past + options.overshoot_warning_mm
                ),
            );
        }
    }
    if let Some(entry) = &path.entry {
        if entry.incidence_deg > options.incidence_warning_deg {
            findings.push(
                Severity::Warning,
                FindingCode::DrillObliqueEntry,
                el.clone(),
                Some(d.entry_mm),
                format!(
                    "drill '{}' meets the bone {:.1} deg from the surface normal (more than {} deg): it may skid",
                    d.name, entry.incidence_deg, options.incidence_warning_deg
                ),
            );
        }
    }

    let radius_mm = 0.5 * d.diameter_mm;
    let mut clearances = Vec::with_capacity(plan.structures.len());
    for s in &plan.structures {
        let Some(c) =
            segment_polyline_distance(path.planned_entry_mm, path.tip_mm, &s.points_mm, radius_mm, s.radius_mm)
                .map_err(measure_err)?
        else {
            continue;
        };
        let clearance = Clearance {
            structure: s.name.clone(),
            axis_distance_mm: c.closest.distance_mm,
            clearance_mm: c.clearance_mm,
            margin_mm: s.margin_mm,
            within_margin: c.clearance_mm < s.margin_mm,
            drill_point_mm: c.closest.first_mm,
            structure_point_mm: c.closest.second_mm,
        };
        if clearance.within_margin {
            findings.push(
                Severity::Error,
                FindingCode::DrillWithinMargin,
                el.clone(),
                Some(d.entry_mm),
                margin_message(d, s, &clearance),
            );
        }
        clearances.push(clearance);
    }

    let mut plane_crossings = Vec::new();
    for p in &plan.planes {
        if let Some(x) = drill_crosses_slab(path, p.point_mm, p.normal, p.blade_thickness_mm).map_err(measure_err)? {
            findings.push(
                Severity::Error,
                FindingCode::DrillCrossesPlane,
                el.clone(),
                Some(d.entry_mm),
                format!(
                    "drill '{}' crosses the blade slab of plane '{}' inside bone, {:.2} to {:.2} mm from its entry \
                     ({:.2} mm of bone in the slab)",
                    d.name, p.name, x.start_t_mm, x.end_t_mm, x.in_bone_mm
                ),
            );
            plane_crossings.push(PlaneCrossing {
                plane: p.name.clone(),
                start_t_mm: x.start_t_mm,
                end_t_mm: x.end_t_mm,
                in_bone_mm: x.in_bone_mm,
            });
        }
    }

    let screw = match &d.screw_system {
        None => None,
        Some(system) => match catalogue.get(system) {
            Err(e) => {
                findings.push(
                    Severity::Error,
                    FindingCode::UnknownScrewSystem,
                    el.clone(),
                    Some(d.entry_mm),
                    format!("drill '{}': {e}", d.name),
                );
                None
            }
            Ok(s) => {
                if (s.drill_diameter_mm - d.diameter_mm).abs() > DRILL_DIAMETER_MATCH_MM {
                    findings.push(
                        Severity::Warning,
                        FindingCode::DrillDiameterDiffers,
                        el.clone(),
                        Some(d.entry_mm),
                        format!(
                            "drill '{}' is {} mm wide but screw system {system} takes a {} mm pilot drill",
                            d.name, d.diameter_mm, s.drill_diameter_mm
                        ),
                    );
                }
                let suggested_length_mm = suggested_screw_length_mm(path, &s.lengths_mm);
                if suggested_length_mm.is_none() && path.entry.is_some() {
                    findings.push(
                        Severity::Warning,
                        FindingCode::NoStockScrew,
                        el.clone(),
                        Some(d.entry_mm),
                        format!(
                            "drill '{}': no stock length of screw system {system} fits (bicortical length {}, \
                             stock {:?} mm)",
                            d.name,
                            path.bicortical_length_mm
                                .map_or("unknown".to_string(), |l| format!("{l:.2} mm")),
                            s.lengths_mm
                        ),
                    );
                }
                Some(ScrewSummary {
                    system: system.clone(),
                    screw_diameter_mm: s.screw_diameter_mm,
                    drill_diameter_mm: s.drill_diameter_mm,
                    head_diameter_mm: s.head_diameter_mm,
                    suggested_length_mm,
                })
            }
        },
    };

    Ok(DrillEvaluation {
        name: d.name.clone(),
        planned_entry_mm: path.planned_entry_mm,
        direction: path.direction,
        length_mm: path.length_mm,
        diameter_mm: path.diameter_mm,
        tip_mm: path.tip_mm,
        kind: path.kind,
        entry: path.entry,
        exit: path.far_exit,
        intervals: path
            .intervals
            .iter()
            .map(|iv| IntervalSummary {
                start_t_mm: iv.start_t_mm,
                end_t_mm: iv.end_t_mm,
                length_mm: iv.length_mm,
            })
            .collect(),
        bicortical_length_mm: path.bicortical_length_mm,
        bone_within_length_mm: path.bone_within_length_mm,
        tip_in_bone: path.tip_in_bone,
        tip_past_exit_mm: path.tip_past_far_exit_mm,
        clearances,
        plane_crossings,
        screw,
    })
}

fn margin_message(d: &DrillTrajectory, s: &Structure, c: &Clearance) -> String {
    let kind = serde_json::to_value(s.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
        .replace('_', " ");
    if c.clearance_mm < 0.0 {
        format!(
            "drill '{}' cuts {:.2} mm into {kind} '{}' near {} (margin {} mm)",
            d.name,
            -c.clearance_mm,
            s.name,
            fmt_point(c.structure_point_mm),
            s.margin_mm
        )
    } else {
        format!(
            "drill '{}' passes {:.2} mm from {kind} '{}' near {}, within its margin of {} mm",
            d.name,
            c.clearance_mm,
            s.name,
            fmt_point(c.structure_point_mm),
            s.margin_mm
        )
    }
}

/// Bicortical: the shortest stock length at least the entry-to-far-exit length. Otherwise: the longest stock length
/// that stays within the bone piece from the entry (to the far exit when known).
fn suggested_screw_length_mm(path: &DrillPath, stock_mm: &[f64]) -> Option<f64> {
    let reach_mm = path.bicortical_length_mm?;
    if path.kind == DrillKind::Bicortical {
        stock_mm.iter().copied().filter(|&l| l >= reach_mm).reduce(f64::min)
    } else {
        stock_mm.iter().copied().filter(|&l| l <= reach_mm).reduce(f64::max)
    }
}

fn drill_pair(a: &DrillTrajectory, b: &DrillTrajectory, pa: &DrillPath, pb: &DrillPath) -> DrillPairEvaluation {
    // The holes as capsules around their axes (the flat drill ends are ignored, which can only report an overlap
    // at the very tips that a flat end would miss by less than a radius).
    let c = segment_segment_distance(pa.planned_entry_mm, pa.tip_mm, pb.planned_entry_mm, pb.tip_mm);
    let clearance_mm = c.distance_mm - pa.radius_mm() - pb.radius_mm();
    DrillPairEvaluation {
        first: a.name.clone(),
        second: b.name.clone(),
        axis_distance_mm: c.distance_mm,
        clearance_mm,
        collide: clearance_mm < 0.0,
    }
}

fn guide_evaluation(plan: &Plan, g: &GuideSpec, findings: &mut Findings) -> GuideEvaluation {
    let el = element("guides", &g.name);
    let template = builtin_template(&g.template);
    if template.is_err() {
        let known = crate::template::builtin_templates()
            .map(|all| all.into_iter().map(|t| t.name).collect::<Vec<_>>().join(", "))
            .unwrap_or_default();
        findings.push(
            Severity::Error,
            FindingCode::UnknownTemplate,
            el.clone(),
            None,
            format!(
                "guide '{}': no template named '{}' (known: {known})",
                g.name, g.template
            ),
        );
    }
    let printers = builtin_printers();
    let printer = printers
        .as_ref()
        .map_err(|e| e.to_string())
        .and_then(|all| all.get(&g.printer).map_err(|e| e.to_string()));
    if let Err(e) = &printer {
        findings.push(
            Severity::Error,
            FindingCode::UnknownPrinter,
            el.clone(),
            None,
            format!("guide '{}': {e}", g.name),
        );
    }
    // The parameters are resolved as `build` resolves them (defaults, printer profile, overrides, ranges), so a
    // plan that passes `plan check` is not refused by `build` for a parameter.
    let parameters_valid = match (&template, &printer) {
        (Ok(t), Ok(profile)) => match t.resolve(&g.parameters, profile) {
            Ok(_) => true,
            Err(e) => {
                findings.push(
                    Severity::Error,
                    FindingCode::TemplateParameterInvalid,
                    el.clone(),
                    None,
                    format!("guide '{}': {e}", g.name),
                );
                false
            }
        },
        _ => false,
    };
    // A donor guide names the reconstruction's donor cuts and fixation holes.
    let (plane_names, drill_names): (Vec<String>, Vec<String>) = match (g.bone, &plan.reconstruction) {
        (GuideBone::Donor, Some(r)) => (r.donor_cut_names(), r.fixation_names()),
        _ => (
            plan.planes.iter().map(|p| p.name.clone()).collect(),
            plan.drills.iter().map(|d| d.name.clone()).collect(),
        ),
    };
    let missing_planes: Vec<String> = g.planes.iter().filter(|n| !plane_names.contains(n)).cloned().collect();
    let missing_drills: Vec<String> = g.drills.iter().filter(|n| !drill_names.contains(n)).cloned().collect();
    for (what, names) in [("plane", &missing_planes), ("drill", &missing_drills)] {
        for n in names {
            findings.push(
                Severity::Error,
                FindingCode::GuideReferenceMissing,
                el.clone(),
                None,
                format!(
                    "guide '{}' references {what} '{n}', which the plan does not have",
                    g.name
                ),
            );
        }
    }
    let template_found = template.is_ok();
    GuideEvaluation {
        name: g.name.clone(),
        template: g.template.clone(),
        template_found,
        printer: g.printer.clone(),
        printer_found: printer.is_ok(),
        parameters_valid,
        resolved: template_found && parameters_valid && missing_planes.is_empty() && missing_drills.is_empty(),
        missing_planes,
        missing_drills,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::test_util::cube;
    use crate::plan::{BoneSource, CaseId, Footprint, Landmark, StructureKind, SCHEMA_VERSION};
    use std::collections::BTreeMap;

    /// A 40 x 16 x 20 mm block of "bone" (drills along y cross 16 mm of it).
    const LO: [f64; 3] = [0.0, 0.0, 0.0];
    const HI: [f64; 3] = [40.0, 16.0, 20.0];

    fn plane(name: &str, x_mm: f64, side: ResectedSide) -> CuttingPlane {
        CuttingPlane {
            name: name.into(),
            point_mm: [x_mm, 10.0, 10.0],
            normal: [1.0, 0.0, 0.0],
            blade_thickness_mm: 1.0,
            resected_side: side,
        }
    }

    fn drill(name: &str, x_mm: f64, z_mm: f64, length_mm: f64) -> DrillTrajectory {
        DrillTrajectory {
            name: name.into(),
            entry_mm: [x_mm, -1.0, z_mm],
            direction: [0.0, 1.0, 0.0],
            length_mm,
            diameter_mm: 1.5,
            screw_system: Some("2.0".into()),
        }
    }

    fn plan() -> Plan {
        Plan {
            reconstruction: None,
            schema_version: SCHEMA_VERSION,
            case_id: CaseId::new("unit").expect("case id"),
            ct: None,
            bone: BoneSource {
                segmentation: None,
                models: vec![],
            },
            landmarks: vec![Landmark {
                name: "L".into(),
                point_mm: [0.0; 3],
            }],
            structures: vec![Structure {
                name: "nerve".into(),
                kind: StructureKind::Nerve,
                points_mm: vec![[0.0, 10.0, 4.0], [40.0, 10.0, 4.0]],
                radius_mm: 1.0,
                margin_mm: 1.0,
            }],
            planes: vec![
                plane("A", 8.0, ResectedSide::Positive),
                plane("B", 20.5, ResectedSide::Negative),
            ],
            drills: vec![drill("D1", 30.0, 14.0, 18.0), drill("D2", 34.0, 14.0, 18.0)],
            guides: vec![GuideSpec {
                bone: Default::default(),
                name: "G".into(),
                template: "cutting_guide".into(),
                printer: "sla".into(),
                parameters: BTreeMap::new(),
                planes: vec!["A".into(), "B".into()],
                drills: vec!["D1".into()],
                seating_direction: [0.0, 1.0, 0.0],
                footprint: Footprint {
                    outline_mm: vec![[0.0, 0.0, 20.0], [40.0, 0.0, 20.0], [40.0, 20.0, 20.0]],
                },
                label: None,
            }],
            approvals: vec![],
        }
    }

    fn eval(plan: &Plan) -> Evaluation {
        plan.validate().expect("valid plan");
        evaluate(plan, &cube(LO, HI), Catalogue::builtin()).expect("evaluation")
    }

    fn codes(e: &Evaluation) -> Vec<(&'static str, &str)> {
        e.findings
            .iter()
            .map(|f| (f.code.as_str(), f.element.as_str()))
            .collect()
    }

    #[test]
    fn clean_plan_measures_and_has_no_findings() {
        let e = eval(&plan());
        assert!(e.findings.is_empty(), "{:?}", e.findings);
        let a = &e.planes[0];
        assert!(a.cuts_bone && a.loop_count == 1);
        assert!((a.area_mm2 - 320.0).abs() < 1e-9 && (a.perimeter_mm - 72.0).abs() < 1e-9);
        assert_eq!(a.resected_direction, Some([1.0, 0.0, 0.0]));
        let pair = &e.plane_pairs[0];
        assert_eq!(pair.between, Between::Resected);
        assert!((pair.centroid_distance_mm.expect("both cut") - 12.5).abs() < 1e-9);
        assert!(pair.angle_deg.abs() < 1e-12);
        let d = &e.drills[0];
        assert_eq!(d.kind, DrillKind::Bicortical);
        assert!((d.bicortical_length_mm.expect("bicortical") - 16.0).abs() < 1e-9);
        assert!((d.tip_past_exit_mm.expect("past") - 1.0).abs() < 1e-9);
        // Nerve at z = 4, drill at z = 14: 10 mm apart, minus 0.75 and 1.0 mm of radii.
        assert!((d.clearances[0].clearance_mm - 8.25).abs() < 1e-9);
        assert_eq!(d.screw.as_ref().and_then(|s| s.suggested_length_mm), Some(16.0));
        assert!((e.drill_pairs[0].clearance_mm - 2.5).abs() < 1e-9);
        assert!(e.guides[0].resolved);
    }

    #[test]
    fn every_check_fires_on_its_case() {
        let mut p = plan();
        // A plane beside the bone; a drill beside it; one through the nerve's margin; two overlapping; one across
        // plane A's slab; one far too long; an unknown template.
        p.planes.push(plane("Out", 45.0, ResectedSide::None));
        p.drills = vec![
            drill("Miss", 50.0, 10.0, 22.0),
            drill("Near", 30.0, 6.5, 22.0),
            drill("Hit", 34.0, 14.0, 22.0),
            drill("Hit2", 35.0, 14.0, 22.0),
            drill("Cross", 8.2, 14.0, 22.0),
            drill("Long", 25.0, 17.0, 30.0),
        ];
        p.guides[0].drills = vec!["Near".into()];
        p.guides[0].template = "no_such_template".into();
        let e = eval(&p);
        let got = codes(&e);
        for want in [
            ("plane_misses_bone", "planes/Out"),
            ("drill_misses_bone", "drills/Miss"),
            ("drill_within_margin", "drills/Near"),
            ("drill_crosses_plane", "drills/Cross"),
            ("drill_overshoots", "drills/Long"),
            ("drills_collide", "drills/Hit"),
            ("unknown_template", "guides/G"),
        ] {
            assert!(got.contains(&want), "{want:?} not in {got:?}");
        }
        // Near: axis 2.5 mm from the nerve's centre line, clearance 2.5 - 0.75 - 1.0 = 0.75 < 1 mm margin.
        let near = &e.drills[1].clearances[0];
        assert!(near.within_margin && (near.clearance_mm - 0.75).abs() < 1e-9);
        assert!(e.has_errors());
        // Findings about elements with a place carry it.
        let out = e
            .findings
            .iter()
            .find(|f| f.element == "planes/Out")
            .expect("plane finding");
        assert_eq!(out.place_mm, Some(p.planes[2].point_mm));
        // A guide referencing a missing plane (as a hand-made plan could, bypassing validation).
        let mut q = plan();
        q.guides[0].planes.push("Gone".into());
        let e = evaluate(&q, &cube(LO, HI), Catalogue::builtin()).expect("evaluation");
        assert!(e.guides[0].missing_planes == ["Gone"] && !e.guides[0].resolved);
        assert!(e
            .findings
            .iter()
            .any(|f| f.code == FindingCode::GuideReferenceMissing && f.message.contains("plane 'Gone'")));
    }

    #[test]
    fn an_unknown_printer_and_a_parameter_out_of_range_are_found_as_build_would_refuse_them() {
        let mut p = plan();
        p.guides[0].printer = "laser-cutter".into();
        assert_eq!(codes(&eval(&p)), vec![("unknown_printer", "guides/G")]);
        let mut p = plan();
        p.guides[0].parameters.insert("pad_thickness_mm".into(), 9.0);
        let e = eval(&p);
        assert_eq!(codes(&e), vec![("template_parameter_invalid", "guides/G")]);
        assert!(
            e.findings[0].message.contains("pad_thickness_mm"),
            "{}",
            e.findings[0].message
        );
        assert!(!e.guides[0].parameters_valid && !e.guides[0].resolved);
    }

    #[test]
    fn diameter_and_stock_length_warnings() {
        let mut p = plan();
        p.drills[0].diameter_mm = 2.0;
        // System 1.5 stocks screws up to 12 mm; the bone is 16 mm thick.
        p.drills[1].diameter_mm = 1.1;
        p.drills[1].screw_system = Some("1.5".into());
        p.guides[0].drills.clear();
        let e = eval(&p);
        assert_eq!(
            codes(&e),
            vec![("drill_diameter_differs", "drills/D1"), ("no_stock_screw", "drills/D2")]
        );
        assert_eq!(e.count(Severity::Warning), 2);
        assert!(!e.has_errors());
    }
}
