//! Building one guide: pad, template parts placed from the plan, anatomy blocked out, slots, channels and screw holes
//! subtracted; the result goes to [`super::check`] before anyone may write it.
//!
//! Why in this order: the parts (slot housings, barrels) are first trimmed by the blocked-out anatomy (bone grown by
//! the offset and swept along the seating direction), so none of them reaches into the bone or behind an undercut;
//! then they are united with the pad (whose underside is already the offset surface) and the cutting tools are
//! subtracted last, so a slot or channel is open all the way to the bone. Small parts are united with each other
//! before they meet the pad, and all tools are united before the one subtraction, so the boolean engine sees the
//! large pad mesh only twice. The block's top is lifted by [`BLOCK_LIFT_MM`] above the pad's underside so the two
//! never share a face (coplanar faces cost the engine orders of magnitude more time and add nothing).

use std::time::Instant;

use nalgebra::{Matrix4, Point3, Vector3};
use serde::Serialize;

use super::footprint::{Footprint, FootprintError};
use super::heightfield::GuideFrame;
use super::pad::{build_pad, Pad, PadError, PadOptions};
use crate::finding::{element, Finding, FindingCode};
use crate::label::{emboss, find_place, find_place_near, FreeMask, LabelError, LabelLayout, RELIEF_MM, SINK_MM};
use crate::measure::segment_segment_distance;
use crate::mesh::boolean::{boolean, fold, BoolOp, BooleanError, Operand};
use crate::mesh::{Mesh, MeshError};
use crate::progress::{Cancelled, Progress};
use crate::template::parts::{
    circle_segments, cylinder_tool, slot_slab, CylinderTool, PartError, SlotSlab, CHORD_TOLERANCE_MM,
};
use crate::template::{ResolvedParams, TemplateError};

/// Lift (mm) of the blocked-out anatomy above the pad's underside: parts resting on bone beyond the pad end this
/// far above the contact surface (well inside the ±0.05 mm contact tolerance), and no part face is coplanar with
/// the pad's underside.
pub const BLOCK_LIFT_MM: f64 = 0.02;
/// How far (mm) parts reach below the contact surface before the block trims them.
const PART_REACH_BELOW_MM: f64 = 3.0;
/// How far (mm) tools reach beyond the parts they cut.
const TOOL_OVERSHOOT_MM: f64 = 2.0;
/// Largest angle (deg) between a cutting plane and the seating direction: beyond it the slot would lie nearly flat
/// on the bone and the blade could not enter along the guide.
pub const MAX_PLANE_TILT_DEG: f64 = 60.0;
/// Default grid spacing (mm) of the pad's height fields.
pub const DEFAULT_GRID_MM: f64 = 0.2;
/// Spacing (mm) of candidate fixation hole positions.
const HOLE_CANDIDATE_STEP_MM: f64 = 0.5;
/// Steepest contact surface (deg from the seating direction's normal plane, mean across a hole and its walls) a
/// fixation hole is placed on: the hole runs along the seating direction, and through a pad inclined more steeply
/// its mouth cuts a thin wedge off the pad's underside. Gentler ground is preferred ([`HOLE_SLOPE_PENALTY`]).
const MAX_HOLE_SLOPE_DEG: f64 = 55.0;
/// Score lost per degree of slope above 30 deg when choosing among fixation hole candidates.
const HOLE_SLOPE_PENALTY: f64 = 0.3;
/// Angles (around the barrel's axis) at which the contact under a sleeve pocket's rim is sampled.
const POCKET_RIM_SAMPLES: usize = 32;

/// The name under which a plane's slot tool is kept in [`BuiltGuide::tools`] (the checks find its faces by it).
pub fn slot_tool_name(plane: &str) -> String {
    format!("slot '{plane}'")
}

/// A cutting plane as the guide needs it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SlotSpec {
    /// Plane name (from the plan).
    pub name: String,
    /// A point of the plane, LPS mm.
    pub point_mm: [f64; 3],
    /// Unit normal.
    pub normal: [f64; 3],
    /// Saw blade thickness, mm.
    pub blade_thickness_mm: f64,
    /// Unit vector into the side the cut removes (`None`: it removes nothing). Fixation screws stay out of bone on
    /// the removed side of every plane of the guide that removes something (the resected segment).
    pub removes: Option<[f64; 3]>,
}

/// A drill trajectory as the guide needs it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChannelSpec {
    /// Drill name (from the plan).
    pub name: String,
    /// Entry point on the bone, LPS mm.
    pub entry_mm: [f64; 3],
    /// Unit direction into the bone.
    pub direction: [f64; 3],
    /// Drill bit diameter, mm.
    pub drill_diameter_mm: f64,
}

/// Everything one guide is built from.
#[derive(Clone, Debug, PartialEq)]
pub struct GuideRequest {
    /// Guide name.
    pub name: String,
    /// Resolved template parameters.
    pub params: ResolvedParams,
    /// Slots (cutting planes).
    pub slots: Vec<SlotSpec>,
    /// Channels (drills).
    pub channels: Vec<ChannelSpec>,
    /// Direction the guide moves to seat on the bone (any length).
    pub seating_direction: [f64; 3],
    /// Footprint outline, LPS mm.
    pub footprint_mm: Vec<[f64; 3]>,
    /// Grid spacing of the pad, mm.
    pub grid_mm: f64,
    /// Keep the operands of every boolean in [`BuiltGuide::operands`] (to check them with another engine).
    pub keep_operands: bool,
    /// Text to emboss on the pad's top (`None`: no label).
    pub label: Option<LabelRequest>,
}

/// The label a guide carries: the ways to set its text, tried in order, and the letter height.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LabelRequest {
    /// Settings of the text (each its lines, top to bottom), the preferred first: the first that fits anywhere is
    /// used.
    pub settings: Vec<Vec<String>>,
    /// Height of the capital letters, mm (at least [`crate::label::MIN_CAP_HEIGHT_MM`]).
    pub cap_height_mm: f64,
    /// Put it on the pad at the free place nearest this point (seen along the seating direction), patient mm;
    /// `None`: where it has the most room.
    pub near_mm: Option<[f64; 3]>,
}

/// The label as placed on a built guide.
#[derive(Clone, Debug, Serialize)]
pub struct PlacedLabel {
    /// The lines as set (after breaking long ones).
    pub lines: Vec<String>,
    /// Height of the capital letters, mm.
    pub cap_height_mm: f64,
    /// Size of the text block, mm.
    pub width_mm: f64,
    /// Height of the text block, mm.
    pub height_mm: f64,
    /// Centre of the block on the pad, patient mm (on the pad's top).
    pub centre_mm: [f64; 3],
    /// Which way the letters stand out (unit, patient).
    pub outward: [f64; 3],
    /// What the letters stand on: `pad` (its top) or `slot housing '<plane>'` (its outer wall).
    pub on: String,
    /// Every vertex of the letters' tops, patient mm (the checks find them on the finished guide).
    #[serde(skip)]
    pub top_points_mm: Vec<[f64; 3]>,
    /// The housing the letters stand on (`None`: the pad), to measure their relief from.
    #[serde(skip)]
    pub base_housing: Option<Mesh>,
}

/// The operands of a guide's booleans, in order: `parts - block = trimmed`, `pad + trimmed = body`,
/// `body - tools = guide`.
#[derive(Clone, Debug, Default)]
pub struct BooleanOperands {
    /// Slot housings and barrels, united.
    pub parts: Mesh,
    /// The blocked-out anatomy (lifted).
    pub block: Mesh,
    /// The parts trimmed by the block.
    pub trimmed: Mesh,
    /// The pad with the trimmed parts.
    pub body: Mesh,
    /// Slots, channels and holes, united.
    pub tools: Mesh,
}

/// Why a guide could not be built. [`GuideError::finding`] gives each one as a [`Finding`] with its code and place.
#[derive(Debug, thiserror::Error)]
pub enum GuideError {
    /// The seating direction is zero or not finite.
    #[error("guide '{0}': the seating direction is not a usable direction")]
    Seating(String),
    /// The footprint outline is unusable.
    #[error("guide '{guide}': {source}")]
    Footprint {
        /// Guide.
        guide: String,
        /// Why.
        source: FootprintError,
    },
    /// The pad could not be built.
    #[error("guide '{guide}': contact pad: {source}")]
    Pad {
        /// Guide.
        guide: String,
        /// Why.
        source: PadError,
    },
    /// A template part could not be built.
    #[error("guide '{guide}': {source}")]
    Part {
        /// Guide.
        guide: String,
        /// Why.
        source: PartError,
    },
    /// A tolerance rule refused a blade or drill.
    #[error("guide '{guide}': {element}: {source}")]
    Instrument {
        /// Guide.
        guide: String,
        /// Plane or drill name.
        element: String,
        /// Where the plane or drill is, LPS mm.
        place_mm: [f64; 3],
        /// Why.
        source: Box<TemplateError>,
    },
    /// The template has no slot housing but the guide serves cutting planes.
    #[error("guide '{guide}': template '{template}' has no slot housing but the guide serves cutting planes")]
    TemplateLacksSlots {
        /// Guide.
        guide: String,
        /// Template name.
        template: String,
    },
    /// The template has no drill barrels but the guide serves drills.
    #[error("guide '{guide}': template '{template}' has no drill barrels but the guide serves drills")]
    TemplateLacksBarrels {
        /// Guide.
        guide: String,
        /// Template name.
        template: String,
    },
    /// A cutting plane is tilted too far from the seating direction.
    #[error(
        "guide '{guide}': cutting plane '{plane}' is tilted {tilt_deg:.1} deg from the seating direction (at most \
         {MAX_PLANE_TILT_DEG} deg): the slot would lie flat on the bone; tilt the plane or the seating direction"
    )]
    PlaneTooTilted {
        /// Guide.
        guide: String,
        /// Plane.
        plane: String,
        /// Its tilt, deg.
        tilt_deg: f64,
        /// The plane's point, LPS mm.
        place_mm: [f64; 3],
    },
    /// A cutting plane does not cross the bone inside the footprint.
    #[error(
        "guide '{guide}': cutting plane '{plane}' does not cross the bone inside the footprint; widen the footprint \
         over the cut"
    )]
    PlaneOutsideFootprint {
        /// Guide.
        guide: String,
        /// Plane.
        plane: String,
        /// The plane's point, LPS mm.
        place_mm: [f64; 3],
    },
    /// A drill's axis does not meet the contact surface.
    #[error(
        "guide '{guide}': drill '{drill}' does not meet the contact surface inside the guide's reach; widen the \
         footprint around its entry"
    )]
    DrillOutsideFootprint {
        /// Guide.
        guide: String,
        /// Drill.
        drill: String,
        /// Its entry, LPS mm.
        place_mm: [f64; 3],
    },
    /// A drill is tilted too far from the seating direction.
    #[error(
        "guide '{guide}': drill '{drill}' is more than {MAX_PLANE_TILT_DEG} deg from the seating direction: its \
         barrel would hook behind the bone; turn the seating direction toward the drill"
    )]
    DrillTooTilted {
        /// Guide.
        guide: String,
        /// Drill.
        drill: String,
        /// Its entry, LPS mm.
        place_mm: [f64; 3],
    },
    /// The fixation holes do not fit.
    #[error(
        "guide '{guide}': no room for {count} fixation holes of {diameter_mm:.2} mm inside the footprint (found \
         {found}), keeping {min_wall_mm:.1} mm of wall to the outline, slots, barrels and each other; use fewer holes \
         or widen the footprint"
    )]
    NoRoomForHoles {
        /// Guide.
        guide: String,
        /// Holes asked for.
        count: usize,
        /// Holes that fit.
        found: usize,
        /// Hole diameter, mm.
        diameter_mm: f64,
        /// Minimum wall, mm.
        min_wall_mm: f64,
        /// The footprint's centre, LPS mm.
        place_mm: [f64; 3],
    },
    /// The label fits nowhere on the pad's top.
    #[error(
        "guide '{guide}': no room for the label ({lines} line(s), {width_mm:.1} x {height_mm:.1} mm in its last \
         setting) on the pad's top or a slot housing's wall: it needs a free, gentle area that size plus 1 mm all \
         round, away from slot housings, barrels and holes; widen the footprint, shorten the label's text or leave \
         the label out (`guidesmith plan set PLAN guide {guide} label null`)"
    )]
    NoRoomForLabel {
        /// Guide name.
        guide: String,
        /// Lines of the narrowest setting tried.
        lines: usize,
        /// Its width, mm.
        width_mm: f64,
        /// Its height, mm.
        height_mm: f64,
        /// The footprint's centre, LPS mm.
        place_mm: [f64; 3],
    },
    /// The label's text or glyphs could not be made.
    #[error("guide '{guide}': label: {source}")]
    Label {
        /// Guide name.
        guide: String,
        /// Why.
        source: LabelError,
    },
    /// A boolean failed.
    #[error("guide '{guide}': {source}")]
    Boolean {
        /// Guide.
        guide: String,
        /// Why.
        source: BooleanError,
    },
    /// A transform could not be applied.
    #[error("guide '{guide}': {source}")]
    Mesh {
        /// Guide.
        guide: String,
        /// Why.
        source: MeshError,
    },
    /// The front end cancelled the build.
    #[error(transparent)]
    Cancelled(#[from] Cancelled),
}

impl GuideError {
    /// The refusal as a finding (code, the guide as element, the place where there is one); `None` when the build
    /// was cancelled, which is not a finding.
    pub fn finding(&self) -> Option<Finding> {
        use FindingCode as C;
        let (guide, code, place) = match self {
            GuideError::Seating(guide) => (guide, C::SeatingDirectionInvalid, None),
            GuideError::Footprint { guide, .. } => (guide, C::FootprintInvalid, None),
            GuideError::Pad { guide, source } => match source {
                PadError::OffBone(x, y, z) => (guide, C::FootprintOffBone, Some([*x, *y, *z])),
                PadError::Drop(x, y, z, _) => (guide, C::FootprintOverDrop, Some([*x, *y, *z])),
                PadError::HeightField(_) | PadError::Boolean(_) => (guide, C::GuideBuildFailed, None),
            },
            GuideError::Part { guide, .. } | GuideError::Boolean { guide, .. } | GuideError::Mesh { guide, .. } => {
                (guide, C::GuideBuildFailed, None)
            }
            GuideError::Instrument { guide, place_mm, .. } => (guide, C::InstrumentOutOfRange, Some(*place_mm)),
            GuideError::TemplateLacksSlots { guide, .. } => (guide, C::TemplateLacksSlots, None),
            GuideError::TemplateLacksBarrels { guide, .. } => (guide, C::TemplateLacksBarrels, None),
            GuideError::PlaneTooTilted { guide, place_mm, .. } => (guide, C::PlaneTooTilted, Some(*place_mm)),
            GuideError::PlaneOutsideFootprint { guide, place_mm, .. } => {
                (guide, C::PlaneOutsideFootprint, Some(*place_mm))
            }
            GuideError::DrillOutsideFootprint { guide, place_mm, .. } => {
                (guide, C::DrillOutsideFootprint, Some(*place_mm))
            }
            GuideError::DrillTooTilted { guide, place_mm, .. } => (guide, C::DrillTooTilted, Some(*place_mm)),
            GuideError::NoRoomForHoles { guide, place_mm, .. } => (guide, C::NoRoomForFixationHoles, Some(*place_mm)),
            GuideError::NoRoomForLabel { guide, place_mm, .. } => (guide, C::LabelNoRoom, Some(*place_mm)),
            GuideError::Label { guide, .. } => (guide, C::LabelNoRoom, None),
            GuideError::Cancelled(_) => return None,
        };
        let finding = Finding::error(code, element("guides", guide), self.to_string());
        Some(match place {
            Some(p) => finding.at(p),
            None => finding,
        })
    }
}

/// Where a slot ended up (for the checks and the report).
#[derive(Clone, Debug, Serialize)]
pub struct PlacedSlot {
    /// The plane.
    pub spec: SlotSpec,
    /// Slot width, mm.
    pub width_mm: f64,
    /// `patient_from_part` of the housing frame (x along the cut, y = normal, z away from the bone).
    #[serde(skip)]
    pub patient_from_part: Matrix4<f64>,
    /// Length of the open slot along the cut, mm.
    pub length_mm: f64,
    /// Guidance length: from the highest contact along the cut to the housing top, mm.
    pub guidance_mm: f64,
    /// The housing block's length (x), width (y) and height (z from the part origin), mm.
    pub housing_mm: [f64; 3],
}

/// Where a channel ended up.
#[derive(Clone, Debug, Serialize)]
pub struct PlacedChannel {
    /// The drill.
    pub spec: ChannelSpec,
    /// Channel (bore) diameter, mm.
    pub bore_diameter_mm: f64,
    /// Segments of the bore polygon.
    pub segments: usize,
    /// Distance from the planned entry, outward along the axis, to the contact surface, mm.
    pub contact_t_mm: f64,
    /// Barrel top, mm from the entry outward along the axis.
    pub top_t_mm: f64,
    /// The barrel's outer diameter, mm.
    pub outer_diameter_mm: f64,
}

/// A fixation screw hole.
#[derive(Clone, Debug, Serialize)]
pub struct PlacedHole {
    /// Hole axis point on the contact surface, LPS mm.
    pub point_mm: [f64; 3],
    /// Unit axis (the seating direction reversed: from the bone outward).
    pub axis: [f64; 3],
    /// Diameter, mm.
    pub diameter_mm: f64,
}

/// A built (not yet checked) guide.
#[derive(Clone, Debug)]
pub struct BuiltGuide {
    /// Guide name.
    pub name: String,
    /// The guide solid, LPS mm.
    pub mesh: Mesh,
    /// The frame (w against the seating direction).
    pub frame: GuideFrame,
    /// The pad with its height fields.
    pub pad: Pad,
    /// Slots.
    pub slots: Vec<PlacedSlot>,
    /// Channels.
    pub channels: Vec<PlacedChannel>,
    /// Fixation holes.
    pub holes: Vec<PlacedHole>,
    /// The cutting tools (slots, channels, holes) as placed, by name: the checks find the faces they made.
    pub tools: Vec<(String, Mesh)>,
    /// Parameters used.
    pub params: ResolvedParams,
    /// Seconds per step.
    pub timings_s: Vec<(&'static str, f64)>,
    /// The booleans' operands, when the request asked to keep them.
    pub operands: Option<Box<BooleanOperands>>,
    /// The label embossed on the pad (`None` when the request had none).
    pub label: Option<PlacedLabel>,
}

/// Builds one guide on `bone` (not checked: see [`super::check::check_guide`]). Cancellable between steps.
pub fn build_guide(bone: &Mesh, request: &GuideRequest, progress: &dyn Progress) -> Result<BuiltGuide, GuideError> {
    let g = request.name.clone();
    progress.checkpoint()?;
    let mut timings_s = Vec::new();
    let mut clock = Instant::now();
    let mut lap = |name: &'static str, timings: &mut Vec<(&'static str, f64)>| {
        timings.push((name, clock.elapsed().as_secs_f64()));
        clock = Instant::now();
    };
    let p = &request.params;
    let seating = Vector3::from(request.seating_direction);
    let centre = request
        .footprint_mm
        .iter()
        .fold(Vector3::zeros(), |a, q| a + Vector3::from(*q))
        / request.footprint_mm.len().max(1) as f64;
    let frame = GuideFrame::new(Point3::from(centre), seating).ok_or_else(|| GuideError::Seating(g.clone()))?;
    let footprint = Footprint::new(&frame, &request.footprint_mm).map_err(|source| GuideError::Footprint {
        guide: g.clone(),
        source,
    })?;

    // Parts reach beyond the footprint by at most the slot end walls or a barrel radius.
    let max_part_reach = p
        .slot
        .map_or(0.0, |s| s.slot_overhang_mm + p.pad_thickness_mm + 2.0)
        .max(p.drill.map_or(0.0, |d| {
            0.5 * d.sleeve_pocket_diameter_mm.unwrap_or(0.0).max(6.0) + d.barrel_wall_mm
        }));
    let pad = build_pad(
        bone,
        &frame,
        &footprint,
        &PadOptions {
            bone_offset_mm: p.tolerance.bone_offset_mm,
            thickness_mm: p.pad_thickness_mm,
            spacing_mm: request.grid_mm,
            margin_mm: max_part_reach + 1.0,
        },
    )
    .map_err(|source| GuideError::Pad {
        guide: g.clone(),
        source,
    })?;
    lap("pad", &mut timings_s);
    progress.checkpoint()?;

    let w = frame.w();
    let part_err = |source: PartError| GuideError::Part {
        guide: g.clone(),
        source,
    };
    let mut parts: Vec<(String, Mesh)> = Vec::new();
    let mut tools: Vec<(String, Mesh)> = Vec::new();

    // Slots.
    let mut slots = Vec::new();
    if !request.slots.is_empty() && p.slot.is_none() {
        return Err(GuideError::TemplateLacksSlots {
            guide: g.clone(),
            template: p.template_name.clone(),
        });
    }
    for spec in &request.slots {
        let sp = p.slot.expect("checked above: the template has slot parameters");
        let n = Vector3::from(spec.normal).normalize();
        let tilt_deg = n.dot(&w).abs().asin().to_degrees();
        if tilt_deg > MAX_PLANE_TILT_DEG {
            return Err(GuideError::PlaneTooTilted {
                guide: g.clone(),
                plane: spec.name.clone(),
                tilt_deg,
                place_mm: spec.point_mm,
            });
        }
        let z_axis = (w - n * n.dot(&w)).normalize();
        let x_axis = n.cross(&z_axis);
        let p0 = Vector3::from(spec.point_mm);
        // The cut on the contact surface inside the footprint: columns whose contact point is within half a cell
        // of the plane.
        let (mut x_lo, mut x_hi, mut z_lo, mut z_hi) =
            (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
        let c = &pad.contact;
        for j in 0..c.nv {
            for i in 0..c.nu {
                let hgt = c.at(i, j);
                let (u, v) = c.uv(i, j);
                if !hgt.is_finite() || !footprint.contains(u, v) {
                    continue;
                }
                let q = frame.patient_from_frame(&Vector3::new(u, v, hgt)).coords - p0;
                if q.dot(&n).abs() <= 0.5 * c.spacing_mm {
                    let (x, z) = (q.dot(&x_axis), q.dot(&z_axis));
                    (x_lo, x_hi, z_lo, z_hi) = (x_lo.min(x), x_hi.max(x), z_lo.min(z), z_hi.max(z));
                }
            }
        }
        if x_lo >= x_hi {
            return Err(GuideError::PlaneOutsideFootprint {
                guide: g.clone(),
                plane: spec.name.clone(),
                place_mm: spec.point_mm,
            });
        }
        let width_mm = p
            .tolerance
            .slot_width_mm(spec.blade_thickness_mm)
            .map_err(|source| GuideError::Instrument {
                guide: g.clone(),
                element: spec.name.clone(),
                place_mm: spec.point_mm,
                source: Box::new(source),
            })?;
        let length_mm = x_hi - x_lo;
        let z_base = z_lo - PART_REACH_BELOW_MM - p.pad_thickness_mm;
        let z_top = z_hi + sp.slot_depth_mm;
        let origin = p0 + x_axis * (0.5 * (x_lo + x_hi)) + z_axis * z_base;
        let patient_from_part = frame_matrix(&origin, &x_axis, &n, &z_axis);
        // The housing goes in as a solid block and the slab cuts the slot: a housing with the slot already in it
        // would put the slab's faces exactly on the slot's, and coplanar faces are where the boolean engine left
        // slivers and self-intersections in the property tests.
        // The slot runs past the footprint's outline by the pad thickness and a millimetre, so it cuts the pad
        // through instead of leaving a sliver of pad at an oblique outline; the housing's end walls beyond it are the
        // bridge that keeps the guide one piece.
        let length_mm = length_mm + 2.0 * (p.pad_thickness_mm + 1.0);
        let housing = slot_slab(&SlotSlab {
            length_mm: length_mm + 2.0 * sp.slot_overhang_mm,
            width_mm: width_mm + 2.0 * sp.slot_wall_mm,
            z_min_mm: 0.0,
            z_max_mm: z_top - z_base,
        })
        .map_err(part_err)?;
        let slab = slot_slab(&SlotSlab {
            length_mm,
            width_mm,
            z_min_mm: -TOOL_OVERSHOOT_MM,
            z_max_mm: z_top - z_base + TOOL_OVERSHOOT_MM,
        })
        .map_err(part_err)?;
        parts.push((
            format!("slot housing '{}'", spec.name),
            placed(housing, &patient_from_part, &g)?,
        ));
        tools.push((slot_tool_name(&spec.name), placed(slab, &patient_from_part, &g)?));
        slots.push(PlacedSlot {
            spec: spec.clone(),
            width_mm,
            patient_from_part,
            length_mm,
            guidance_mm: z_top - z_hi,
            housing_mm: [
                length_mm + 2.0 * sp.slot_overhang_mm,
                width_mm + 2.0 * sp.slot_wall_mm,
                z_top - z_base,
            ],
        });
    }

    // Channels.
    let mut channels = Vec::new();
    if !request.channels.is_empty() && p.drill.is_none() {
        return Err(GuideError::TemplateLacksBarrels {
            guide: g.clone(),
            template: p.template_name.clone(),
        });
    }
    for spec in &request.channels {
        let dp = p.drill.expect("checked above: the template has drill parameters");
        let d = Vector3::from(spec.direction).normalize();
        let out = -d;
        let entry = Vector3::from(spec.entry_mm);
        let contact_t_mm =
            axis_contact(&pad, &frame, &entry, &out).ok_or_else(|| GuideError::DrillOutsideFootprint {
                guide: g.clone(),
                drill: spec.name.clone(),
                place_mm: spec.entry_mm,
            })?;
        if out.dot(&w) < (90.0f64 - MAX_PLANE_TILT_DEG).to_radians().sin() {
            return Err(GuideError::DrillTooTilted {
                guide: g.clone(),
                drill: spec.name.clone(),
                place_mm: spec.entry_mm,
            });
        }
        let bore = p
            .tolerance
            .channel_diameter_mm(spec.drill_diameter_mm)
            .map_err(|source| GuideError::Instrument {
                guide: g.clone(),
                element: spec.name.clone(),
                place_mm: spec.entry_mm,
                source: Box::new(source),
            })?;
        let outer_r = 0.5 * dp.sleeve_pocket_diameter_mm.unwrap_or(bore).max(bore) + dp.barrel_wall_mm;
        let segments = circle_segments(outer_r, CHORD_TOLERANCE_MM);
        let z_base = contact_t_mm - PART_REACH_BELOW_MM - p.pad_thickness_mm;
        let (ex, ey) = perpendicular_pair(&out);
        // A sleeve pocket's floor stays a minimum wall above the bone under the barrel's rim: on a slope the bone
        // rises on one side of the axis, and a barrel of the template's length would leave only a sliver between
        // the pocket and the blocked-out anatomy there, so the barrel is made longer (more guidance, same axis).
        let pocket_floor_min_t_mm = dp.sleeve_pocket_diameter_mm.map_or(f64::NEG_INFINITY, |_| {
            (0..POCKET_RIM_SAMPLES)
                .filter_map(|k| {
                    let a = std::f64::consts::TAU * k as f64 / POCKET_RIM_SAMPLES as f64;
                    let rim = entry + (ex * a.cos() + ey * a.sin()) * outer_r;
                    axis_contact(&pad, &frame, &rim, &out)
                })
                .fold(contact_t_mm, f64::max)
                + p.min_wall_mm
        });
        let top_t_mm = (contact_t_mm + dp.barrel_length_mm).max(pocket_floor_min_t_mm + dp.sleeve_pocket_depth_mm);
        let origin = entry + out * z_base;
        let patient_from_part = frame_matrix(&origin, &ex, &ey, &out);
        // A solid barrel; the channel (and the sleeve pocket) are cut by tools, so no tool face is coplanar with a
        // part face (see the slot housing above).
        let b = cylinder_tool(&CylinderTool {
            diameter_mm: 2.0 * outer_r,
            z_min_mm: 0.0,
            z_max_mm: top_t_mm - z_base,
            segments: Some(segments),
        })
        .map_err(part_err)?;
        if let Some(pocket_mm) = dp.sleeve_pocket_diameter_mm {
            let pocket = cylinder_tool(&CylinderTool {
                diameter_mm: pocket_mm,
                z_min_mm: top_t_mm - z_base - dp.sleeve_pocket_depth_mm,
                z_max_mm: top_t_mm - z_base + TOOL_OVERSHOOT_MM,
                segments: Some(segments),
            })
            .map_err(part_err)?;
            tools.push((
                format!("sleeve pocket '{}'", spec.name),
                placed(pocket, &patient_from_part, &g)?,
            ));
        }
        let tool = cylinder_tool(&CylinderTool {
            diameter_mm: bore,
            z_min_mm: -TOOL_OVERSHOOT_MM,
            z_max_mm: top_t_mm - z_base + TOOL_OVERSHOOT_MM,
            segments: Some(segments),
        })
        .map_err(part_err)?;
        parts.push((format!("barrel '{}'", spec.name), placed(b, &patient_from_part, &g)?));
        tools.push((
            format!("channel '{}'", spec.name),
            placed(tool, &patient_from_part, &g)?,
        ));
        channels.push(PlacedChannel {
            spec: spec.clone(),
            bore_diameter_mm: bore,
            segments,
            contact_t_mm,
            top_t_mm,
            outer_diameter_mm: 2.0 * outer_r,
        });
    }

    // Fixation holes, as far as possible from the slots, barrels and each other.
    let holes =
        place_holes(&frame, &footprint, &pad, p, &slots, &channels).map_err(|found| GuideError::NoRoomForHoles {
            guide: g.clone(),
            count: p.fixation.hole_count as usize,
            found,
            diameter_mm: p.fixation.hole_diameter_mm,
            min_wall_mm: p.min_wall_mm,
            place_mm: centre.into(),
        })?;
    for (k, hole) in holes.iter().enumerate() {
        let axis = Vector3::from(hole.axis);
        let (ex, ey) = perpendicular_pair(&axis);
        let base = Vector3::from(hole.point_mm) - axis * (PART_REACH_BELOW_MM + TOOL_OVERSHOOT_MM);
        let q = frame.frame_from_patient(&Point3::from(hole.point_mm));
        let above = hole_reach_mm(&pad, q.x, q.y, q.z, 0.5 * hole.diameter_mm, p.pad_thickness_mm);
        let reach = PART_REACH_BELOW_MM + TOOL_OVERSHOOT_MM + above;
        let tool = cylinder_tool(&CylinderTool {
            diameter_mm: hole.diameter_mm,
            z_min_mm: 0.0,
            z_max_mm: reach,
            segments: None,
        })
        .map_err(part_err)?;
        tools.push((
            format!("fixation hole {}", k + 1),
            placed(tool, &frame_matrix(&base, &ex, &ey, &axis), &g)?,
        ));
    }
    // The label, on the pad's top where nothing else is; joined with the other parts.
    let label = match &request.label {
        None => None,
        Some(l) => {
            let (placed, mesh) = place_label(&g, l, &frame, &footprint, &pad, &slots, &parts, &tools, centre.into())?;
            parts.push(("label".to_string(), mesh));
            Some(placed)
        }
    };
    lap("parts", &mut timings_s);
    progress.checkpoint()?;

    // Booleans.
    let bool_err = |source: BooleanError| GuideError::Boolean {
        guide: g.clone(),
        source,
    };
    let mut body = pad.mesh.clone();
    let mut operands = request.keep_operands.then(Box::<BooleanOperands>::default);
    if let Some((first, rest)) = parts.split_first() {
        let rest: Vec<Operand<'_>> = rest.iter().map(|(n, m)| Operand::new(n, m)).collect();
        let all_parts = fold(Operand::new(&first.0, &first.1), &rest, BoolOp::Union).map_err(bool_err)?;
        let mut bounds = [f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY];
        for q in &all_parts.positions {
            let f = frame.frame_from_patient(&Point3::from(*q));
            bounds = [
                bounds[0].min(f.x),
                bounds[1].min(f.y),
                bounds[2].max(f.x),
                bounds[3].max(f.y),
            ];
        }
        let mut block = pad
            .block(&frame, bounds, &footprint)
            .map_err(|source| GuideError::Pad {
                guide: g.clone(),
                source,
            })?;
        lift_top(&mut block, &frame, &pad, BLOCK_LIFT_MM);
        let trimmed = boolean(
            Operand::new("template parts", &all_parts),
            Operand::new("blocked-out anatomy", &block),
            BoolOp::Difference,
        )
        .map_err(bool_err)?;
        body = boolean(
            Operand::new("contact pad", &body),
            Operand::new("trimmed parts", &trimmed),
            BoolOp::Union,
        )
        .map_err(bool_err)?;
        if let Some(o) = operands.as_mut() {
            (o.parts, o.block, o.trimmed) = (all_parts, block, trimmed);
        }
    }
    lap("union", &mut timings_s);
    progress.checkpoint()?;
    if let Some((first, rest)) = tools.split_first() {
        let rest: Vec<Operand<'_>> = rest.iter().map(|(n, m)| Operand::new(n, m)).collect();
        let all_tools = fold(Operand::new(&first.0, &first.1), &rest, BoolOp::Union).map_err(bool_err)?;
        let cut = boolean(
            Operand::new("guide body", &body),
            Operand::new("slots, channels and holes", &all_tools),
            BoolOp::Difference,
        )
        .map_err(bool_err)?;
        if let Some(o) = operands.as_mut() {
            (o.body, o.tools) = (std::mem::take(&mut body), all_tools);
        }
        body = cut;
    }
    // The guide as its files hold it: the checks that follow see the written geometry.
    let body = crate::mesh::sliver::rounded_for_files(body);
    lap("subtract", &mut timings_s);
    Ok(BuiltGuide {
        name: request.name.clone(),
        mesh: body,
        frame,
        pad,
        slots,
        channels,
        holes,
        tools,
        params: p.clone(),
        timings_s,
        operands,
        label,
    })
}

/// Free space kept around a label, mm.
const LABEL_MARGIN_MM: f64 = 0.6;
/// Steepest pad top a label sits on (the letters are set in the frame's plane and follow the surface), deg.
const LABEL_MAX_SLOPE_DEG: f64 = 35.0;
/// Grid step of the masks of free points, mm.
const LABEL_MASK_STEP_MM: f64 = 0.25;

/// Places `l`: each setting of its text in turn, first on the pad's top (the free points are inside the footprint, on
/// a top no steeper than [`LABEL_MAX_SLOPE_DEG`], outside the outline seen along the seating direction of every other
/// part and tool; lines along the footprint's long axis or across it), then on the outer walls of the slot housings
/// (flat, above the pad). Returns the placed label and its solids.
#[allow(clippy::too_many_arguments)]
fn place_label(
    g: &str,
    l: &LabelRequest,
    frame: &GuideFrame,
    footprint: &Footprint,
    pad: &Pad,
    slots: &[PlacedSlot],
    parts: &[(String, Mesh)],
    tools: &[(String, Mesh)],
    centre_mm: [f64; 3],
) -> Result<(PlacedLabel, Mesh), GuideError> {
    let label_err = |source: LabelError| GuideError::Label {
        guide: g.to_string(),
        source,
    };
    let hulls: Vec<Vec<[f64; 2]>> = parts
        .iter()
        .chain(tools)
        .map(|(_, m)| {
            let uv: Vec<[f64; 2]> = m
                .positions
                .iter()
                .map(|q| {
                    let f = frame.frame_from_patient(&Point3::from(*q));
                    [f.x, f.y]
                })
                .collect();
            convex_hull(uv)
        })
        .collect();
    let max_slope = LABEL_MAX_SLOPE_DEG.to_radians().tan();
    let step = LABEL_MASK_STEP_MM;
    let outer = &pad.outer;
    let free = |p: [f64; 2]| {
        if !footprint.contains(p[0], p[1]) || hulls.iter().any(|h| in_convex(h, p)) {
            return false;
        }
        let h = |du: f64, dv: f64| outer.interpolate(p[0] + du, p[1] + dv);
        match (h(-step, 0.0), h(step, 0.0), h(0.0, -step), h(0.0, step)) {
            (Some(a), Some(b), Some(c), Some(d)) => {
                (b - a).abs() / (2.0 * step) <= max_slope && (d - c).abs() / (2.0 * step) <= max_slope
            }
            _ => false,
        }
    };
    let [u0, v0, u1, v1] = footprint.bounds_mm();
    let pad_mask = FreeMask::new([u0, v0], [u1, v1], step, free);
    // The footprint's long axis (its outline's principal direction) and across it.
    let pts = &footprint.uv_mm;
    let n = pts.len().max(1) as f64;
    let m = pts.iter().fold([0.0, 0.0], |a, p| [a[0] + p[0] / n, a[1] + p[1] / n]);
    let (mut suu, mut svv, mut suv) = (0.0, 0.0, 0.0);
    for p in pts {
        let (du, dv) = (p[0] - m[0], p[1] - m[1]);
        (suu, svv, suv) = (suu + du * du, svv + dv * dv, suv + du * dv);
    }
    let long = 0.5 * (2.0 * suv).atan2(suu - svv);
    let angles = [long, long + std::f64::consts::FRAC_PI_2];
    let on_pad = |p: [f64; 3]| -> [f64; 3] { frame.patient_from_frame(&Vector3::from(p)).coords.into() };
    let mut last = None;
    for lines in &l.settings {
        let layout = LabelLayout::new(lines, l.cap_height_mm).map_err(label_err)?;
        let near = l.near_mm.map(|p| {
            let f = frame.frame_from_patient(&Point3::from(p));
            [f.x, f.y]
        });
        if let Some(placement) = find_place_near(&layout, &pad_mask, &angles, LABEL_MARGIN_MM, 0.5, near) {
            let e = emboss(
                &layout,
                &placement,
                |p| outer.interpolate(p[0], p[1]),
                on_pad,
                RELIEF_MM,
                SINK_MM,
            )
            .map_err(label_err)?;
            let c = placement.centre;
            let top = outer.interpolate(c[0], c[1]).unwrap_or(0.0);
            let placed = placed_label(
                &layout,
                l,
                on_pad([c[0], c[1], top]),
                frame.w().into(),
                "pad",
                e.top_points_mm,
            );
            return Ok((placed, e.mesh));
        }
        for s in slots {
            let [length, width, height] = s.housing_mm;
            let m = &s.patient_from_part;
            let part = |q: [f64; 3]| -> [f64; 3] {
                let v = m * nalgebra::Vector4::new(q[0], q[1], q[2], 1.0);
                [v.x, v.y, v.z]
            };
            for side in [1.0, -1.0] {
                // The wall's plane: first axis along the housing (turned so the text reads from outside), second up
                // the housing, the third out of the wall.
                let wall = |a: f64, b: f64, h: f64| part([-side * a, side * (0.5 * width + h), b]);
                let above_pad = |p: [f64; 2]| {
                    let q = frame.frame_from_patient(&Point3::from(wall(p[0], p[1], 0.0)));
                    outer.interpolate(q.x, q.y).is_some_and(|top| q.z >= top)
                };
                let mask = FreeMask::new([-0.5 * length, 0.0], [0.5 * length, height], step, above_pad);
                let Some(placement) = find_place(&layout, &mask, &[0.0], LABEL_MARGIN_MM, 0.5) else {
                    continue;
                };
                let e = emboss(
                    &layout,
                    &placement,
                    |_| Some(0.0),
                    |p| wall(p[0], p[1], p[2]),
                    RELIEF_MM,
                    SINK_MM,
                )
                .map_err(label_err)?;
                let c = placement.centre;
                let outward = (Vector3::from(wall(0.0, 0.0, 1.0)) - Vector3::from(wall(0.0, 0.0, 0.0))).normalize();
                let mut placed = placed_label(
                    &layout,
                    l,
                    wall(c[0], c[1], 0.0),
                    outward.into(),
                    &format!("slot housing '{}'", s.spec.name),
                    e.top_points_mm,
                );
                let housing = parts
                    .iter()
                    .find(|(name, _)| *name == format!("slot housing '{}'", s.spec.name))
                    .map(|(_, mesh)| mesh.clone());
                placed.base_housing = housing;
                return Ok((placed, e.mesh));
            }
        }
        last = Some(layout);
    }
    let layout = last.ok_or_else(|| label_err(LabelError::Character("(no text)".to_string())))?;
    Err(GuideError::NoRoomForLabel {
        guide: g.to_string(),
        lines: layout.lines.len(),
        width_mm: layout.width_mm,
        height_mm: layout.height_mm,
        place_mm: centre_mm,
    })
}

fn placed_label(
    layout: &LabelLayout,
    l: &LabelRequest,
    centre_mm: [f64; 3],
    outward: [f64; 3],
    on: &str,
    top_points_mm: Vec<[f64; 3]>,
) -> PlacedLabel {
    PlacedLabel {
        lines: layout.lines.clone(),
        cap_height_mm: l.cap_height_mm,
        width_mm: layout.width_mm,
        height_mm: layout.height_mm,
        centre_mm,
        outward,
        on: on.to_string(),
        top_points_mm,
        base_housing: None,
    }
}

/// Convex hull of points (counter-clockwise, monotone chain).
fn convex_hull(mut p: Vec<[f64; 2]>) -> Vec<[f64; 2]> {
    p.sort_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
    p.dedup();
    if p.len() < 3 {
        return p;
    }
    let cross = |o: [f64; 2], a: [f64; 2], b: [f64; 2]| (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
    let mut hull: Vec<[f64; 2]> = Vec::with_capacity(2 * p.len());
    for pass in 0..2 {
        let start = hull.len();
        let iter: Box<dyn Iterator<Item = &[f64; 2]>> = if pass == 0 {
            Box::new(p.iter())
        } else {
            Box::new(p.iter().rev())
        };
        for &q in iter {
            while hull.len() >= start + 2 && cross(hull[hull.len() - 2], hull[hull.len() - 1], q) <= 0.0 {
                hull.pop();
            }
            hull.push(q);
        }
        hull.pop();
    }
    hull
}

/// Whether `p` is inside (or on) the counter-clockwise convex polygon `h`.
fn in_convex(h: &[[f64; 2]], p: [f64; 2]) -> bool {
    h.len() >= 3
        && (0..h.len()).all(|k| {
            let (a, b) = (h[k], h[(k + 1) % h.len()]);
            (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0]) >= 0.0
        })
}

/// `patient_from_part` with the given origin and axes (columns).
fn frame_matrix(origin: &Vector3<f64>, x: &Vector3<f64>, y: &Vector3<f64>, z: &Vector3<f64>) -> Matrix4<f64> {
    let mut m = Matrix4::identity();
    for r in 0..3 {
        m[(r, 0)] = x[r];
        m[(r, 1)] = y[r];
        m[(r, 2)] = z[r];
        m[(r, 3)] = origin[r];
    }
    m
}

fn placed(mut mesh: Mesh, patient_from_part: &Matrix4<f64>, guide: &str) -> Result<Mesh, GuideError> {
    mesh.transform(patient_from_part).map_err(|source| GuideError::Mesh {
        guide: guide.to_string(),
        source,
    })?;
    Ok(mesh)
}

/// A deterministic right-handed pair completing `axis` (unit) to a frame.
fn perpendicular_pair(axis: &Vector3<f64>) -> (Vector3<f64>, Vector3<f64>) {
    let least = (0..3)
        .min_by(|&a, &b| axis[a].abs().total_cmp(&axis[b].abs()))
        .expect("three axes");
    let mut e = Vector3::zeros();
    e[least] = 1.0;
    let x = e.cross(axis).normalize();
    (x, axis.cross(&x))
}

/// Where the axis `entry + t * out` meets the contact surface (smallest `t` in a search window with the point on
/// or above it), by stepping and bisection.
fn axis_contact(pad: &Pad, frame: &GuideFrame, entry: &Vector3<f64>, out: &Vector3<f64>) -> Option<f64> {
    let f = |t: f64| {
        let q = frame.frame_from_patient(&Point3::from(entry + out * t));
        pad.contact.interpolate(q.x, q.y).map(|h| q.z - h)
    };
    let step = 0.5 * pad.contact.spacing_mm;
    let mut t = -20.0;
    let mut prev: Option<(f64, f64)> = None;
    while t <= 40.0 {
        if let Some(v) = f(t) {
            if v >= 0.0 {
                if let Some((t0, v0)) = prev {
                    if v0 < 0.0 {
                        let (mut lo, mut hi) = (t0, t);
                        for _ in 0..60 {
                            let mid = 0.5 * (lo + hi);
                            match f(mid) {
                                Some(m) if m >= 0.0 => hi = mid,
                                _ => lo = mid,
                            }
                        }
                        return Some(hi);
                    }
                }
            }
            prev = Some((t, v));
        } else {
            prev = None;
        }
        t += step;
    }
    None
}

/// How far (mm along `w`, from the contact height `hgt` at `(u, v)`) a fixation hole of radius `r` is cut: through
/// the pad's top everywhere around its rim, and the tool overshoot beyond. Only through the pad: a longer hole would
/// notch a slot housing or barrel standing next to it.
fn hole_reach_mm(pad: &Pad, u: f64, v: f64, hgt: f64, r: f64, pad_thickness_mm: f64) -> f64 {
    let rim = r + pad.outer.spacing_mm;
    let top = (0..16)
        .filter_map(|k| {
            let a = std::f64::consts::TAU * f64::from(k) / 16.0;
            pad.outer.interpolate(u + rim * a.cos(), v + rim * a.sin())
        })
        .fold(hgt + pad_thickness_mm, f64::max);
    top - hgt + TOOL_OVERSHOOT_MM
}

/// Raises the top sheet of a block (vertices at the contact height) by `lift_mm` along `w`.
fn lift_top(block: &mut Mesh, frame: &GuideFrame, pad: &Pad, lift_mm: f64) {
    let w = frame.w();
    let floor = pad.lowest_contact_mm - super::pad::BLOCK_DEPTH_MM;
    for p in &mut block.positions {
        let q = frame.frame_from_patient(&Point3::from(*p));
        if q.z > floor + 1e-9 {
            let moved = Vector3::from(*p) + w * lift_mm;
            *p = moved.into();
        }
    }
}

/// Score of a fixation hole candidate on a side of a slot that has no hole yet; larger than any distance term, so
/// the sides are covered first.
const UNCOVERED_SIDE_BONUS: f64 = 100.0;

/// Chooses fixation hole positions by farthest-point sampling over the footprint interior outside the bone the plan
/// removes, covering both sides of every slot first when there are holes enough. `Err(n)`: only `n` holes fit.
fn place_holes(
    frame: &GuideFrame,
    footprint: &Footprint,
    pad: &Pad,
    p: &ResolvedParams,
    slots: &[PlacedSlot],
    channels: &[PlacedChannel],
) -> Result<Vec<PlacedHole>, usize> {
    let count = p.fixation.hole_count as usize;
    if count == 0 {
        return Ok(Vec::new());
    }
    let r = 0.5 * p.fixation.hole_diameter_mm;
    let clearance = r + p.min_wall_mm;
    let w = frame.w();
    // Bone the plan removes: on the removed side of every plane that removes something. Screws go into bone that
    // remains (a guide screwed only to the resected segment holds nothing once it is cut free).
    let resecting: Vec<(Vector3<f64>, Vector3<f64>)> = slots
        .iter()
        .filter_map(|s| {
            s.spec
                .removes
                .map(|d| (Vector3::from(s.spec.point_mm), Vector3::from(d)))
        })
        .collect();
    let removed = |q: &Vector3<f64>| !resecting.is_empty() && resecting.iter().all(|(p0, d)| (q - p0).dot(d) > 0.0);
    // The contact surface's mean slope across the hole and its walls, deg.
    let slope_deg = |u: f64, v: f64| {
        let at = |du: f64, dv: f64| pad.contact.interpolate(u + du, v + dv);
        match (
            at(-clearance, 0.0),
            at(clearance, 0.0),
            at(0.0, -clearance),
            at(0.0, clearance),
        ) {
            (Some(a), Some(b), Some(c), Some(d)) => ((b - a).hypot(d - c) / (2.0 * clearance)).atan().to_degrees(),
            _ => 90.0,
        }
    };
    // Features as points/segments in patient space with the clearance they need.
    let b = footprint.bounds_mm();
    let mut candidates: Vec<(Vector3<f64>, f64)> = Vec::new();
    let mut v = b[1];
    while v <= b[3] {
        let mut u = b[0];
        while u <= b[2] {
            if footprint.contains(u, v) && footprint.distance_to_outline_mm(u, v) >= clearance {
                let slope = slope_deg(u, v);
                if let Some(hgt) = pad.contact.interpolate(u, v).filter(|_| slope <= MAX_HOLE_SLOPE_DEG) {
                    let point = frame.patient_from_frame(&Vector3::new(u, v, hgt)).coords;
                    if removed(&point) {
                        u += HOLE_CANDIDATE_STEP_MM;
                        continue;
                    }
                    // The hole's tool from the contact up through the pad: its wall keeps the minimum to slot
                    // housings and bores along it.
                    let (h0, h1) = (point, point + w * hole_reach_mm(pad, u, v, hgt, r, p.pad_thickness_mm));
                    let mut free = f64::INFINITY;
                    for s in slots {
                        let n = Vector3::from(s.spec.normal);
                        let half = 0.5 * s.width_mm + p.slot.map_or(0.0, |x| x.slot_wall_mm);
                        let p0 = Vector3::from(s.spec.point_mm);
                        let (d0, d1) = ((h0 - p0).dot(&n), (h1 - p0).dot(&n));
                        let apart = if d0 * d1 <= 0.0 { 0.0 } else { d0.abs().min(d1.abs()) };
                        free = free.min(apart - half - clearance);
                    }
                    for c in channels {
                        // At the contact: the barrel stands on the pad there (a hole's axis leaning towards a
                        // tilted barrel above the pad only grazes the barrel's outside, which holds no wall).
                        let axis = Vector3::from(c.spec.direction).normalize();
                        let entry = Vector3::from(c.spec.entry_mm);
                        let rel = point - entry;
                        let radial = (rel - axis * rel.dot(&axis)).norm();
                        free = free.min(radial - 0.5 * c.outer_diameter_mm - clearance);
                        // Along the hole's height its wall keeps the minimum to the bore and the sleeve pocket.
                        let bore_r = 0.5
                            * c.bore_diameter_mm
                                .max(p.drill.and_then(|d| d.sleeve_pocket_diameter_mm).unwrap_or(0.0));
                        let (c0, c1) = (entry - axis * c.contact_t_mm, entry - axis * c.top_t_mm);
                        let apart = segment_segment_distance(h0.into(), h1.into(), c0.into(), c1.into()).distance_mm;
                        free = free.min(apart - bore_r - clearance);
                    }
                    if free >= 0.0 {
                        candidates.push((point, free - HOLE_SLOPE_PENALTY * (slope - 30.0).max(0.0)));
                    }
                }
            }
            u += HOLE_CANDIDATE_STEP_MM;
        }
        v += HOLE_CANDIDATE_STEP_MM;
    }
    let mut chosen: Vec<Vector3<f64>> = Vec::new();
    for _ in 0..count {
        let mut best: Option<(f64, Vector3<f64>)> = None;
        for (point, free) in &candidates {
            // Holes run along `w`: their walls are apart by the distance across it.
            let spacing = chosen
                .iter()
                .map(|c| {
                    let d = c - point;
                    (d - w * d.dot(&w)).norm() - 2.0 * r - p.min_wall_mm
                })
                .fold(f64::INFINITY, f64::min);
            if spacing < 0.0 {
                continue;
            }
            // A side of a slot without a hole yet comes first (a cutting guide is held on both sides of its cut),
            // then far from features, then far from the other holes; ties keep the first candidate (row order).
            let uncovered = slots
                .iter()
                .filter(|s| {
                    let side = |q: &Vector3<f64>| {
                        (q - Vector3::from(s.spec.point_mm)).dot(&Vector3::from(s.spec.normal)) > 0.0
                    };
                    !chosen.iter().any(|c| side(c) == side(point))
                })
                .count();
            let score = UNCOVERED_SIDE_BONUS * uncovered as f64 + free.min(20.0) + spacing.min(40.0);
            if best.is_none_or(|(s, _)| score > s) {
                best = Some((score, *point));
            }
        }
        match best {
            Some((_, point)) => chosen.push(point),
            None => return Err(chosen.len()),
        }
    }
    Ok(chosen
        .into_iter()
        .map(|point| PlacedHole {
            point_mm: point.into(),
            axis: w.into(),
            diameter_mm: p.fixation.hole_diameter_mm,
        })
        .collect())
}
