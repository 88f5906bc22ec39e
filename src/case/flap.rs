//! A free-flap reconstruction for a plan: the donor bone opened (its CT segmented, hash checked, or its STL models),
//! the target contour taken from the plan's bone, the segments proposed and laid along the donor, the fixation holes
//! found on the donor's lateral surface, and the donor guide that cuts every segment; all recorded in the plan.
//!
//! Why here and not in `flap`: the proposal needs both bones, the plan and the template (the slots' walls set how far
//! apart the donor cuts must be), which only the case layer brings together.

use std::path::{Path, PathBuf};

use nalgebra::Vector3;

use super::bone::{new_plan_from_ct, new_plan_from_stl, open_source, OpenCase};
use super::{CaseError, GuideBones};
use crate::finding::Finding;
use crate::flap::{self, FlapMeasures, FlapPlane, GapRule, LayoutOptions, ProposeLimits, RecipientSide};
use crate::measure::BoneQuery;
use crate::mesh::{BoundingBox, Mesh};
use crate::plan::Segmentation;
use crate::plan::{
    resection_plane_along, BoneSource, CaseId, ContourSource, CtReference, Donor, DonorKind, FlapParameters,
    FlapSegment, Footprint, GuideBone, GuideSpec, Plan, Reconstruction, TargetContour,
};
use crate::progress::NoProgress;
use crate::progress::Progress;
use crate::segment::{HuRange, Keep, SegmentRecipe};
use crate::template::{builtin_printers, builtin_template};
use crate::volume::LoadOptions;

/// The template of the donor guide: slots for the cuts and barrels for the fixation screws on one pad.
pub const DONOR_GUIDE_TEMPLATE: &str = "combined_guide";
/// The donor guide's name in the plan.
pub const DONOR_GUIDE_NAME: &str = "fibula-guide";
/// The fibula must lie this far from the centre of the donor's bone across the patient for its lateral side to be
/// read off it, mm.
const MIN_SIDE_OFFSET_MM: f64 = 5.0;
/// Bone left between two kerfs at the least, mm.
const KERF_MARGIN_MM: f64 = 0.1;
/// Edge moves tried on the donor guide's footprint when a wall beside a slot housing is too thin.
const MAX_WALL_FIXES: usize = 3;
/// The donor guide's pad reaches this far beyond the outermost cuts along the axis, mm.
const PAD_BEYOND_CUTS_MM: f64 = 10.0;
/// A slot housing's end walls reach this far beyond the donor's section across the axis, mm (the template's slot
/// overhang and wall).
const HOUSING_END_MM: f64 = 6.0;
/// Half the donor guide's pad width across the axis, as a fraction of the donor's radius (the pad stays on the
/// lateral face seen from the side).
const PAD_HALF_WIDTH_OF_RADIUS: f64 = 0.53;
/// Segments at least this long get two fixation screws (at a third and two thirds), shorter ones one (in the middle).
const TWO_SCREWS_FROM_MM: f64 = 30.0;
/// The seating play the donor guide is checked against, mm and deg. A fibula is nearly a straight cylinder: a pad
/// seated from the lateral side cannot lock sliding along it and turning about it as tightly as a guide on the
/// mandible (0.5 mm, 2 deg; measured on `leg-vhf-right`: 0.6-0.7 mm, 3.4-4.7 deg), so the donor guide is screwed
/// to every segment before the first cut. The values are in the plan's guide parameters, so the review and the
/// report show them.
pub const DONOR_SEATING_PLAY_MM: f64 = 1.0;
/// See [`DONOR_SEATING_PLAY_MM`].
pub const DONOR_SEATING_PLAY_DEG: f64 = 5.0;
/// How far beyond the donor's radius a slot housing reaches from the axis (pad, bone offset and slot depth), mm: the
/// walls between neighbouring slots are kept there.
const HOUSING_REACH_MM: f64 = 18.0;

/// The donor as it is opened or made: its surface and how the plan records it.
#[derive(Clone, Debug)]
pub struct DonorBone {
    /// The surface, donor CT mm.
    pub mesh: Mesh,
    /// The CT it was segmented from.
    pub ct: Option<CtReference>,
    /// How it is made.
    pub bone: BoneSource,
}

/// How a donor CT is segmented: the bone preset, the two largest pieces kept (a fibula that touches its tibia at the
/// joints is one piece with it; one that does not is the second piece).
pub fn donor_segmentation() -> Segmentation {
    let mut recipe = SegmentRecipe::new(HuRange::BONE);
    recipe.keep = Keep::NLargest { n: 2 };
    Segmentation {
        recipe,
        smooth_iterations: 0,
        decimate_keep_fraction: None,
    }
}

/// The donor of the plan's reconstruction, opened as the plan records it (the donor CT's path relative to the plan's
/// folder, or `ct_override`): its surface, as [`recorded_donor`] opens it.
pub fn open_donor(
    plan: &Plan,
    plan_path: &Path,
    ct_override: Option<&Path>,
    progress: &dyn Progress,
) -> Result<Option<Mesh>, CaseError> {
    Ok(recorded_donor(plan, plan_path, ct_override, progress)?.map(|d| d.mesh))
}

/// Where a donor bone comes from when a reconstruction is first proposed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DonorInput {
    /// The donor's CT (folder, DICOMDIR or file), segmented with [`donor_segmentation`].
    Ct(PathBuf),
    /// The donor's bone as an STL model.
    Stl(PathBuf),
}

/// Opens `input` as a donor of the plan saved at `plan_path` (paths are recorded relative to its folder).
pub fn make_donor(input: &DonorInput, plan_path: &Path, progress: &dyn Progress) -> Result<DonorBone, CaseError> {
    let case_id = CaseId::new("donor").map_err(|e| CaseError::Flap(e.to_string()))?;
    match input {
        DonorInput::Ct(ct) => {
            let made = new_plan_from_ct(
                ct,
                None,
                &LoadOptions::default(),
                case_id,
                donor_segmentation(),
                plan_path,
                progress,
            )?;
            Ok(DonorBone {
                mesh: made.bone.mesh,
                ct: made.plan.ct,
                bone: made.plan.bone,
            })
        }
        DonorInput::Stl(stl) => {
            let made = new_plan_from_stl(std::slice::from_ref(stl), None, case_id, plan_path, progress)?;
            Ok(DonorBone {
                mesh: made.bone,
                ct: made.plan.ct,
                bone: made.plan.bone,
            })
        }
    }
}

/// The donor the plan's reconstruction records, opened with how it is recorded (`None` when the plan has no
/// reconstruction); `ct_override` replaces the recorded CT's path.
pub fn recorded_donor(
    plan: &Plan,
    plan_path: &Path,
    ct_override: Option<&Path>,
    progress: &dyn Progress,
) -> Result<Option<DonorBone>, CaseError> {
    let Some(r) = &plan.reconstruction else {
        return Ok(None);
    };
    let base = plan_path.parent().unwrap_or(Path::new(""));
    let ct_path = match (ct_override, &r.donor.ct) {
        (Some(p), _) => p.to_path_buf(),
        (None, Some(ct)) => base.join(&ct.path),
        (None, None) => Default::default(),
    };
    let OpenCase { bone, .. } = open_source(r.donor.ct.as_ref(), &r.donor.bone, &ct_path, plan_path, progress)?;
    Ok(Some(DonorBone {
        mesh: bone.mesh,
        ct: r.donor.ct.clone(),
        bone: r.donor.bone.clone(),
    }))
}

/// What to propose.
#[derive(Clone, Debug)]
pub struct FlapRequest {
    /// The resection planes, in contour order (names of the plan's planes).
    pub planes: Vec<String>,
    /// The segment count; `None`: the fewest that meet the deviation limits.
    pub count: Option<usize>,
    /// The settings.
    pub parameters: FlapParameters,
    /// The target contour; `None`: the centre line of the bone the resection removes.
    pub contour_mm: Option<Vec<[f64; 3]>>,
    /// Segment ends on the contour given by the engineer (`count + 1` points, the first and last the contour's
    /// ends); `None`: proposed.
    pub ends_mm: Option<Vec<[f64; 3]>>,
    /// A point on the donor's shaft, when its CT holds another bone of its size.
    pub donor_point_mm: Option<[f64; 3]>,
    /// The donor is a right (`true`) or left leg; `None`: the side away from the rest of the leg's bone.
    pub donor_right: Option<bool>,
    /// The printer of the donor guide.
    pub printer: String,
    /// Build and check the donor guide while proposing (what is recorded); `false` for a quick look at the segments
    /// while the planes move (the proposal's guide is then unchecked and `verified` is `None`).
    pub build_donor_guide: bool,
}

impl FlapRequest {
    /// A request for `plan` bridging `planes` with what the plan records: the settings of its reconstruction (else
    /// the defaults, with the blade of the first plane), its edited contour, the donor guide's printer (else `sla`);
    /// the segment count left to the limits, the ends proposed.
    pub fn for_plan(plan: &Plan, planes: Vec<String>) -> FlapRequest {
        let recorded = plan.reconstruction.as_ref();
        let parameters = recorded
            .map(|r| r.parameters.clone())
            .unwrap_or_else(|| FlapParameters {
                blade_thickness_mm: plan
                    .planes
                    .iter()
                    .find(|q| Some(&q.name) == planes.first())
                    .map_or(FlapParameters::default().blade_thickness_mm, |q| q.blade_thickness_mm),
                ..FlapParameters::default()
            });
        let contour_mm = recorded
            .filter(|r| r.contour.source == ContourSource::Edited)
            .map(|r| r.contour.points_mm.clone());
        let printer = plan
            .guides
            .iter()
            .find(|g| g.name == DONOR_GUIDE_NAME)
            .map_or_else(|| "sla".to_string(), |g| g.printer.clone());
        FlapRequest {
            planes,
            count: None,
            parameters,
            contour_mm,
            ends_mm: None,
            donor_point_mm: None,
            donor_right: None,
            printer,
            build_donor_guide: true,
        }
    }
}

/// A proposed reconstruction, its measurements and findings.
#[derive(Clone, Debug)]
pub struct FlapProposal {
    /// To record in the plan.
    pub reconstruction: Reconstruction,
    /// The donor guide, to record in the plan (replacing one of the same name).
    pub guide: GuideSpec,
    /// Its measurements.
    pub measures: FlapMeasures,
    /// What refuses it (empty when it holds).
    pub findings: Vec<Finding>,
    /// The donor guide as built and checked while proposing, when it passed: `build_guides_reusing` takes it
    /// instead of building it again.
    pub verified: Option<super::VerifiedGuide>,
}

fn flap_error(error: flap::FlapError) -> CaseError {
    CaseError::Flap(error.to_string())
}

/// [`resection_plane_along`], refused as a case error.
fn plane_along(plan: &Plan, name: &str, first: bool) -> Result<FlapPlane, CaseError> {
    resection_plane_along(plan, name, first).map_err(CaseError::Flap)
}

/// Proposes a reconstruction of the plan's resection from `donor`, on the plan's bone `mandible`: see the module
/// documentation. The donor's axis is found again on its bone; the donor guide gets a slot for every cut and a
/// barrel for every fixation screw, seated from the lateral side.
pub fn propose_reconstruction(
    plan: &Plan,
    mandible: &Mesh,
    donor: &DonorBone,
    request: &FlapRequest,
    progress: &dyn Progress,
) -> Result<FlapProposal, CaseError> {
    progress.begin("proposing the reconstruction", 4);
    if request.planes.is_empty() || request.planes.len() > 2 {
        return Err(CaseError::Flap(format!(
            "{} resection planes given; a reconstruction bridges one or two",
            request.planes.len()
        )));
    }
    let first = plane_along(plan, &request.planes[0], true)?;
    let second = match request.planes.get(1) {
        Some(name) => Some(plane_along(plan, name, false)?),
        None => None,
    };
    let mandible_query = BoneQuery::new(mandible)?;
    let (contour, source) = match (&request.contour_mm, &second) {
        (Some(c), _) => (c.clone(), ContourSource::Edited),
        (None, Some(s)) => (
            flap::contour_from_bone(&mandible_query, (first.point_mm, first.normal), (s.point_mm, s.normal))
                .map_err(flap_error)?,
            ContourSource::Original,
        ),
        (None, None) => {
            return Err(CaseError::Flap(
                "with one resection plane the contour cannot be taken from the bone: give its points (--contour)"
                    .into(),
            ))
        }
    };
    progress.advance(1);
    progress.checkpoint()?;
    let p = &request.parameters;
    let ends = match &request.ends_mm {
        Some(e) => e.clone(),
        None => {
            flap::propose_ends(
                &contour,
                &ProposeLimits {
                    count: request.count,
                    min_length_mm: p.min_segment_length_mm,
                    max_mean_deviation_mm: p.max_mean_deviation_mm,
                    max_deviation_mm: p.max_deviation_mm,
                },
            )
            .map_err(flap_error)?
            .ends_mm
        }
    };
    if let Some(w) = ends
        .windows(2)
        .find(|w| (Vector3::from(w[1]) - Vector3::from(w[0])).norm() < 1.0)
    {
        return Err(CaseError::Flap(format!(
            "two segment ends, ({:.1}, {:.1}, {:.1}) and ({:.1}, {:.1}, {:.1}) mm, are less than 1 mm apart",
            w[0][0], w[0][1], w[0][2], w[1][0], w[1][1], w[1][2]
        )));
    }
    if ends.len() < 2 || ends.len() > 5 {
        return Err(CaseError::Flap(format!(
            "{} segment ends give {} segments; a reconstruction has 1 to 4",
            ends.len(),
            ends.len().saturating_sub(1)
        )));
    }
    progress.advance(1);
    progress.checkpoint()?;
    // The donor's axis; its lateral side is away from the rest of the leg (the fibula lies lateral to the tibia).
    let donor_query = BoneQuery::new(&donor.mesh)?;
    let mut axis = flap::donor_axis(
        &donor.mesh,
        &donor_query,
        request.donor_point_mm,
        [0.0, 0.0, -1.0],
        [1.0, 0.0, 0.0],
    )
    .map_err(flap_error)?;
    let n = donor.mesh.positions.len().max(1) as f64;
    let centre = donor
        .mesh
        .positions
        .iter()
        .map(|&q| Vector3::from(q))
        .sum::<Vector3<f64>>()
        / n;
    let middle = Vector3::from(axis.at(0.5 * axis.length_mm()));
    let away = (middle - centre).x;
    let right = match request.donor_right {
        Some(r) => r,
        None if away.abs() >= MIN_SIDE_OFFSET_MM => away < 0.0,
        None => {
            return Err(CaseError::Flap(format!(
                "the fibula lies {away:.1} mm from the rest of the donor across the patient: cannot tell the lateral \
                 side; give the leg (--donor-side right or left)"
            )))
        }
    };
    // LPS: the patient's right is -x.
    axis.lateral = [if right { -1.0 } else { 1.0 }, 0.0, 0.0];
    let lateral = axis.lateral();
    axis.lateral = [lateral.x, lateral.y, lateral.z];
    // What the donor guide's slots need between them: the template's wall between two slot cavities.
    let template = builtin_template(DONOR_GUIDE_TEMPLATE).map_err(|e| CaseError::Flap(e.to_string()))?;
    let printers = builtin_printers().map_err(|e| CaseError::Flap(e.to_string()))?;
    let profile = printers
        .get(&request.printer)
        .map_err(|e| CaseError::Flap(e.to_string()))?;
    let resolved = template
        .resolve(&Default::default(), profile)
        .map_err(|e| CaseError::Flap(e.to_string()))?;
    let clearance = resolved.tolerance.printer_clearance_mm;
    let slot_walls = resolved.min_wall_mm + 2.0 * p.blade_thickness_mm + 2.0 * clearance;
    let recipient = RecipientSide {
        ends_mm: ends,
        first_plane: first,
        second_plane: second,
        inside_mm: mesh_centre(mandible),
    };
    let layouts = flap::layout(
        &recipient,
        &axis,
        &LayoutOptions {
            distal_offset_mm: p.distal_offset_mm,
            keep_distal_mm: p.keep_distal_mm,
            pedicle_deg: p.pedicle_deg,
            blade_thickness_mm: p.blade_thickness_mm,
            min_gaps: vec![
                // Two kerfs need two blades between the faces, whatever gap_mm asks.
                GapRule {
                    radius_mm: axis.radius_mm,
                    gap_mm: p.gap_mm.max(2.0 * p.blade_thickness_mm + KERF_MARGIN_MM),
                    lateral_half: false,
                },
                GapRule {
                    radius_mm: axis.radius_mm + HOUSING_REACH_MM,
                    gap_mm: slot_walls,
                    lateral_half: true,
                },
            ],
        },
    )
    .map_err(flap_error)?;
    progress.advance(1);
    progress.checkpoint()?;
    // Fixation screws: into the lateral surface, across the axis, on every segment.
    let into = -lateral;
    let mut segments = Vec::with_capacity(layouts.len());
    for (k, s) in layouts.iter().enumerate() {
        let length = (Vector3::from(s.end_mm) - Vector3::from(s.start_mm)).norm();
        let places: &[f64] = if length >= TWO_SCREWS_FROM_MM {
            &[1.0 / 3.0, 2.0 / 3.0]
        } else {
            &[0.5]
        };
        let mut fixation_mm = Vec::with_capacity(places.len());
        for f in places {
            let on_axis = Vector3::from(axis.at(s.donor_start_mm + f * length));
            let from = on_axis + lateral * (axis.radius_mm + 30.0);
            let entry = donor_query
                .crossings([from.x, from.y, from.z], [into.x, into.y, into.z], 0.0, 60.0)?
                .into_iter()
                .find(|c| c.entering)
                .ok_or_else(|| {
                    CaseError::Flap(format!(
                        "the fixation screw of segment S{} at ({:.1}, {:.1}, {:.1}) mm meets no donor bone",
                        k + 1,
                        on_axis.x,
                        on_axis.y,
                        on_axis.z
                    ))
                })?;
            fixation_mm.push(entry.point_mm);
        }
        segments.push(FlapSegment {
            name: format!("S{}", k + 1),
            start_mm: s.start_mm,
            end_mm: s.end_mm,
            donor_start_mm: s.donor_start_mm,
            mandible_from_donor: s.mandible_from_donor,
            fixation_mm,
        });
    }
    let reconstruction = Reconstruction {
        planes: request.planes.clone(),
        donor: Donor {
            kind: DonorKind::Fibula,
            ct: donor.ct.clone(),
            bone: donor.bone.clone(),
            distal_tip_mm: axis.distal_tip_mm,
            proximal_tip_mm: axis.proximal_tip_mm,
            lateral: axis.lateral,
            radius_mm: axis.radius_mm,
        },
        contour: TargetContour {
            source,
            points_mm: contour,
        },
        arch_inside_mm: recipient.inside_mm,
        parameters: p.clone(),
        segments,
    };
    let mut with = plan.clone();
    with.reconstruction = Some(reconstruction.clone());
    let mut guide = donor_guide(&with, &reconstruction, &request.printer);
    // A wall the pad's edge leaves too thin beside a slot housing: take the edge move the build tried and checked.
    let mut trial = with.clone();
    let mut verified = None;
    let wall_fixes = if request.build_donor_guide { MAX_WALL_FIXES } else { 0 };
    for _ in 0..wall_fixes {
        progress.checkpoint()?;
        trial.guides = vec![guide.clone()];
        let bones = GuideBones {
            recipient: mandible,
            donor: Some(&donor.mesh),
            donor_guides: vec![guide.name.clone()],
        };
        let built = super::build::build_guides(&trial, bones, None, &NoProgress)?;
        if let (Some((g, check)), Ok(request)) = (
            built.guides.first().and_then(|g| g.built()),
            super::build::guide_request(&trial, &guide, None),
        ) {
            if check.passed {
                verified = Some(super::VerifiedGuide::new(
                    request,
                    &donor.mesh,
                    g.clone(),
                    check.clone(),
                ));
                break;
            }
        }
        let fix = built
            .guides
            .first()
            .and_then(|g| g.built())
            .and_then(|(_, check)| check.wall_fix.clone())
            .filter(|f| f.still_fails.is_empty());
        match fix {
            Some(f) => guide.footprint.outline_mm = f.outline_mm,
            None => break,
        }
    }
    let measures = reconstruction
        .measures(&with)
        .ok_or_else(|| CaseError::Flap("the reconstruction's planes are missing".into()))?;
    let findings = reconstruction.findings(&with);
    progress.advance(1);
    Ok(FlapProposal {
        reconstruction,
        guide,
        measures,
        findings,
        verified,
    })
}

/// Donor triangles farther than this many radii from the donor's axis are not part of a segment's patch (the tibia
/// beside a fibula).
const PATCH_REACH_OF_RADIUS: f64 = 2.5;

/// One segment as the window shows it: the donor's surface between the segment's two cuts, where it lies on the
/// donor and where the plan puts it in the mandible.
#[derive(Clone, Debug)]
pub struct SegmentPatch {
    /// The segment's name (`S1`...).
    pub name: String,
    /// The donor's triangles between the cuts, donor CT mm (an open surface: for drawing, not for printing; the
    /// neomandible model is the closed solid).
    pub on_donor: Mesh,
    /// The same triangles moved by the segment's `mandible_from_donor`.
    pub in_mandible: Mesh,
}

/// The segments of `reconstruction` (recorded in `plan` or only proposed for it) on `donor`: see [`SegmentPatch`].
pub fn segment_patches(plan: &Plan, reconstruction: &Reconstruction, donor: &Mesh) -> Vec<SegmentPatch> {
    let cuts = reconstruction.donor_cuts(plan);
    let axis = reconstruction.donor.axis();
    let a = axis.direction();
    let tip = Vector3::from(axis.distal_tip_mm);
    let reach = PATCH_REACH_OF_RADIUS * axis.radius_mm;
    reconstruction
        .segments
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let own: Vec<&FlapPlane> = cuts
                .iter()
                .filter(|c| c.cut.segment == k)
                .map(|c| &c.cut.plane)
                .collect();
            let inside = |t: &[u32; 3]| {
                let c = t
                    .iter()
                    .map(|&v| Vector3::from(donor.positions[v as usize]))
                    .sum::<Vector3<f64>>()
                    / 3.0;
                let off = c - tip;
                (off - a * off.dot(&a)).norm() <= reach
                    && own
                        .iter()
                        .all(|p| (c - Vector3::from(p.point_mm)).dot(&Vector3::from(p.normal)) < 0.0)
            };
            let on_donor = donor.select_triangles(inside);
            let mut in_mandible = on_donor.clone();
            for p in &mut in_mandible.positions {
                *p = s.mandible_from_donor.point(*p);
            }
            SegmentPatch {
                name: s.name.clone(),
                on_donor,
                in_mandible,
            }
        })
        .collect()
}

/// The donor's surface around the segments of `reconstruction`: within [`PATCH_REACH_OF_RADIUS`] radii of its axis
/// (the fibula, not the tibia beside it), from `margin_mm` below the first segment to `margin_mm` above the last.
pub fn donor_region(reconstruction: &Reconstruction, donor: &Mesh, margin_mm: f64) -> Mesh {
    let axis = reconstruction.donor.axis();
    let a = axis.direction();
    let tip = Vector3::from(axis.distal_tip_mm);
    let reach = PATCH_REACH_OF_RADIUS * axis.radius_mm;
    let lengths = reconstruction.layouts().into_iter().map(|s| {
        let length = (Vector3::from(s.end_mm) - Vector3::from(s.start_mm)).norm();
        (s.donor_start_mm, s.donor_start_mm + length)
    });
    let (lo, hi) = lengths.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (a, b)| {
        (lo.min(a), hi.max(b))
    });
    donor.select_triangles(|t| {
        let c = t
            .iter()
            .map(|&v| Vector3::from(donor.positions[v as usize]))
            .sum::<Vector3<f64>>()
            / 3.0;
        let off = c - tip;
        let along = off.dot(&a);
        (off - a * along).norm() <= reach && along >= lo - margin_mm && along <= hi + margin_mm
    })
}

/// The plan's bone without the triangles the reconstruction's resection removes (those on the removed side of each of
/// its planes, near the target contour), for drawing the segments in the gap: an open surface, not a model (the
/// `planned` model is the closed solid).
pub fn bone_beside_resection(plan: &Plan, reconstruction: &Reconstruction, bone: &Mesh) -> Mesh {
    let planes: Vec<(Vector3<f64>, Vector3<f64>)> = reconstruction
        .planes
        .iter()
        .filter_map(|name| plan.planes.iter().find(|p| &p.name == name))
        .filter(|p| p.resected_side != crate::plan::ResectedSide::None)
        .map(|p| {
            let sign = if p.resected_side == crate::plan::ResectedSide::Positive {
                1.0
            } else {
                -1.0
            };
            (Vector3::from(p.point_mm), Vector3::from(p.normal) * sign)
        })
        .collect();
    let near = reconstruction
        .contour
        .points_mm
        .iter()
        .fold(None::<BoundingBox>, |b, p| {
            let q = BoundingBox { min_mm: *p, max_mm: *p };
            Some(b.map_or(q, |b| b.union(&q)))
        })
        .map(|b| crate::mesh::grown(b, BESIDE_RESECTION_MM));
    let (Some(near), false) = (near, planes.is_empty()) else {
        return bone.clone();
    };
    bone.select_triangles(|t| {
        let c = t
            .iter()
            .map(|&v| Vector3::from(bone.positions[v as usize]))
            .sum::<Vector3<f64>>()
            / 3.0;
        let inside = (0..3).all(|k| c[k] >= near.min_mm[k] && c[k] <= near.max_mm[k]);
        !(inside && planes.iter().all(|(p, n)| (c - p).dot(n) > 0.0))
    })
}

/// How far around the target contour the resected bone is looked for, mm (the mandible's half height and more).
const BESIDE_RESECTION_MM: f64 = 25.0;

/// How far to move a part of the donor (bounding box `part`) so that it stands beside the recipient's bone
/// (`recipient`), a margin apart along +x and centred on it across: the two CTs' frames overlap, so a view or a
/// glTF of both shows the donor moved.
pub fn donor_shift_beside(recipient: &BoundingBox, part: &BoundingBox, margin_mm: f64) -> [f64; 3] {
    std::array::from_fn(|k| {
        if k == 0 {
            recipient.max_mm[0] + margin_mm - part.min_mm[0]
        } else {
            0.5 * (recipient.min_mm[k] + recipient.max_mm[k]) - 0.5 * (part.min_mm[k] + part.max_mm[k])
        }
    })
}

/// The centre of a mesh's vertices (inside the arch of a U-shaped mandible).
fn mesh_centre(mesh: &Mesh) -> [f64; 3] {
    let n = mesh.positions.len().max(1) as f64;
    let c = mesh.positions.iter().map(|&q| Vector3::from(q)).sum::<Vector3<f64>>() / n;
    [c.x, c.y, c.z]
}

/// The donor guide of `r` (recorded in `plan`): a slot for every cut, a barrel for every fixation screw, seated from
/// the lateral side onto a pad along all segments.
fn donor_guide(plan: &Plan, r: &Reconstruction, printer: &str) -> GuideSpec {
    let axis = r.donor.axis();
    let a = axis.direction();
    let lateral = axis.lateral();
    let across = a.cross(&lateral);
    let cuts = r.donor_cuts(plan);
    let axial = |p: [f64; 3]| (Vector3::from(p) - Vector3::from(axis.distal_tip_mm)).dot(&a);
    // Beyond the outermost cuts, also by as far as each leans along the axis across the slot housing's width, so
    // the pad's end does not cut a thin strip off the housing.
    let reach = |c: &crate::plan::NamedCut| {
        let n = Vector3::from(c.cut.plane.normal);
        let across = (n - a * n.dot(&a)).norm();
        PAD_BEYOND_CUTS_MM + (2.0 * axis.radius_mm + HOUSING_END_MM) * across / n.dot(&a).abs().max(1e-6)
    };
    let lo = cuts
        .iter()
        .map(|c| axial(c.cut.plane.point_mm) - reach(c))
        .fold(f64::INFINITY, f64::min);
    let hi = cuts
        .iter()
        .map(|c| axial(c.cut.plane.point_mm) + reach(c))
        .fold(f64::NEG_INFINITY, f64::max);
    let w = PAD_HALF_WIDTH_OF_RADIUS * axis.radius_mm;
    let corner = |t: f64, s: f64| {
        let q = Vector3::from(axis.at(t)) + lateral * axis.radius_mm + across * s;
        [q.x, q.y, q.z]
    };
    GuideSpec {
        name: DONOR_GUIDE_NAME.to_string(),
        template: DONOR_GUIDE_TEMPLATE.to_string(),
        printer: printer.to_string(),
        parameters: [
            ("fixation_hole_count".to_string(), 0.0),
            ("max_seating_play_mm".to_string(), DONOR_SEATING_PLAY_MM),
            ("max_seating_play_deg".to_string(), DONOR_SEATING_PLAY_DEG),
        ]
        .into_iter()
        .collect(),
        planes: cuts.iter().map(|c| c.name.clone()).collect(),
        drills: r.fixations().into_iter().map(|f| f.name).collect(),
        seating_direction: [-lateral.x, -lateral.y, -lateral.z],
        footprint: Footprint {
            outline_mm: vec![corner(lo, -w), corner(hi, -w), corner(hi, w), corner(lo, w)],
        },
        // A fibula is too narrow for a label's letters (2.5 mm capitals on two lines need 6 mm of flat pad):
        // the guide goes without, as `plan add-guide --no-label` would.
        label: None,
        bone: GuideBone::Donor,
    }
}

/// Each segment's ends reach this far past its faces in the neomandible model, mm, so neighbouring pieces and the
/// stumps overlap and join into one solid instead of touching on a plane (where a union is ill-defined).
const MODEL_OVERLAP_MM: f64 = 0.5;
/// The block a segment is cut from reaches this many donor radii from the axis: all of the fibula's section and
/// none of the tibia's (what else falls inside is a separate piece and dropped).
const PIECE_HALF_WIDTH_OF_RADIUS: f64 = 2.0;

/// The fibula segments of the plan's reconstruction cut from `donor` and placed in the mandible by their recorded
/// transforms, each reaching [`MODEL_OVERLAP_MM`] past its faces: the pieces of the neomandible model.
pub(crate) fn placed_segments(plan: &Plan, donor: &Mesh) -> Result<Vec<Mesh>, CaseError> {
    use crate::mesh::boolean::{boolean, BoolOp, Operand};
    let Some(r) = &plan.reconstruction else {
        return Ok(Vec::new());
    };
    let recipient = r
        .recipient(plan)
        .ok_or_else(|| CaseError::Flap("the reconstruction's resection planes are missing".into()))?;
    let faces = recipient.face_planes();
    let axis = r.donor.axis();
    let a = axis.direction();
    let l = axis.lateral();
    let c = a.cross(&l);
    let h = PIECE_HALF_WIDTH_OF_RADIUS * axis.radius_mm;
    let corners = [(h, h), (-h, h), (-h, -h), (h, -h)];
    let mut out = Vec::with_capacity(r.segments.len());
    for (k, s) in r.segments.iter().enumerate() {
        let donor_from_mandible = s.mandible_from_donor.inverse();
        // The face planes in the donor, moved outwards by the overlap (normals along the contour = along the axis).
        let face = |f: &FlapPlane, out_sign: f64| {
            let p = donor_from_mandible.plane(f);
            let n = Vector3::from(p.normal);
            (
                Vector3::from(p.point_mm) + n * (out_sign * MODEL_OVERLAP_MM / n.dot(&a).abs() * n.dot(&a).signum()),
                n,
            )
        };
        let (p0, n0) = face(&faces[k], -1.0);
        let (p1, n1) = face(&faces[k + 1], 1.0);
        let on_axis = Vector3::from(axis.at(s.donor_start_mm));
        let hit = |p: &Vector3<f64>, n: &Vector3<f64>, o: Vector3<f64>| {
            let from = on_axis + o;
            from + a * ((p - from).dot(n) / n.dot(&a))
        };
        let mut positions = Vec::with_capacity(8);
        for (p, n) in [(&p0, &n0), (&p1, &n1)] {
            for (u, v) in corners {
                let q = hit(p, n, l * u + c * v);
                positions.push([q.x, q.y, q.z]);
            }
        }
        // Each corner line must meet the start face below the end face, or the block turns inside out.
        for i in 0..4 {
            let (s0, e0) = (Vector3::from(positions[i]), Vector3::from(positions[i + 4]));
            if (e0 - s0).dot(&a) <= 0.0 {
                return Err(CaseError::Flap(format!(
                    "segment {}: its faces cross within {h:.1} mm of the donor's axis (too short for its wedges)",
                    s.name
                )));
            }
        }
        let mut triangles = vec![[0, 2, 1], [0, 3, 2], [4, 5, 6], [4, 6, 7]];
        for i in 0..4u32 {
            let j = (i + 1) % 4;
            triangles.push([i, j, j + 4]);
            triangles.push([i, j + 4, i + 4]);
        }
        let block = Mesh::new(positions, triangles).map_err(|e| CaseError::Flap(e.to_string()))?;
        let cut = boolean(
            Operand::new("donor", donor),
            Operand::new(&format!("segment {}", s.name), &block),
            BoolOp::Intersection,
        )
        .map_err(|e| CaseError::Flap(format!("cutting segment {} from the donor: {e}", s.name)))?;
        let piece = cut
            .split_components()
            .into_iter()
            .max_by(|x, y| x.signed_volume_mm3().total_cmp(&y.signed_volume_mm3()))
            .ok_or_else(|| CaseError::Flap(format!("segment {}: no donor bone between its faces", s.name)))?;
        let placed = Mesh::new(
            piece
                .positions
                .iter()
                .map(|&q| s.mandible_from_donor.point(q))
                .collect(),
            piece.triangles.clone(),
        )
        .map_err(|e| CaseError::Flap(e.to_string()))?;
        out.push(placed);
    }
    Ok(out)
}
