//! The plan's reconstruction of a resection with a free flap: the resection planes it bridges, the donor bone, the
//! target contour, the settings, and the segments with their transforms, exactly as recorded; and what follows from
//! them without any bone: the face planes, the donor cuts and fixation holes a guide carries, the measurements and
//! the findings that refuse the plan.
//!
//! Why the segments' transforms are recorded and not only recomputed: the approval and the bundle cover what was
//! recorded, and every measurement is taken from it, so a hand-edited or outdated reconstruction shows as a gap or
//! an out-of-date finding instead of being silently replaced.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::model::{present, BoneSource, CtReference, Nullable, Plan, ResectedSide};
use crate::finding::{element, Finding, FindingCode};
use crate::flap::{self, DonorAxis, DonorCut, FlapMeasures, FlapPlane, RecipientSide, Rigid, SegmentLayout};

/// What bone the flap is taken from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DonorKind {
    /// The fibula (free fibula flap).
    Fibula,
}

/// A free-flap reconstruction of the defect between the plan's resection planes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Reconstruction {
    /// The resection planes (names of `planes`), in contour order: the first segment starts at the first. One plane
    /// for a reconstruction that ends at the condyle (the contour then is the engineer's).
    #[schemars(length(min = 1, max = 2))]
    pub planes: Vec<String>,
    /// The donor bone.
    pub donor: Donor,
    /// The contour the segments restore.
    pub contour: TargetContour,
    /// A point inside the arch (the mandible's centroid when proposed): each segment's buccal side faces away from
    /// it, mm.
    pub arch_inside_mm: [f64; 3],
    /// The settings the segments were proposed and are checked with.
    pub parameters: FlapParameters,
    /// The segments, in contour order (1 to 4).
    #[schemars(length(min = 1, max = 4))]
    pub segments: Vec<FlapSegment>,
}

/// The donor bone: its CT (or STL models) and the axis found on it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Donor {
    /// What bone it is.
    pub kind: DonorKind,
    /// Its CT; `None` when it comes only from STL models.
    #[serde(deserialize_with = "present")]
    #[schemars(with = "Nullable<CtReference>")]
    pub ct: Option<CtReference>,
    /// How its surface is made (as the plan's own bone).
    pub bone: BoneSource,
    /// The distal tip (the ankle's end), on the axis, donor mm.
    pub distal_tip_mm: [f64; 3],
    /// The proximal tip (the knee's end), on the axis, donor mm.
    pub proximal_tip_mm: [f64; 3],
    /// Unit vector across the axis towards the lateral surface, where the guide seats.
    pub lateral: [f64; 3],
    /// Radius of the shaft (the median of its sections' outer reach), mm.
    pub radius_mm: f64,
}

impl Donor {
    /// The donor's axis.
    pub fn axis(&self) -> DonorAxis {
        DonorAxis {
            distal_tip_mm: self.distal_tip_mm,
            proximal_tip_mm: self.proximal_tip_mm,
            lateral: self.lateral,
            radius_mm: self.radius_mm,
        }
    }
}

/// Where the target contour came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContourSource {
    /// The centre line of the bone the resection removes: the neomandible restores the shape the patient had.
    Original,
    /// Points the engineer gave.
    Edited,
}

/// The curve the segments restore, from the first resection plane to the second.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetContour {
    /// Where it came from.
    pub source: ContourSource,
    /// Its points, mandible mm, at least 2.
    #[schemars(length(min = 2))]
    pub points_mm: Vec<[f64; 3]>,
}

/// The settings of a reconstruction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FlapParameters {
    /// Shortest segment, mm (a shorter one loses its blood supply and its screws).
    pub min_segment_length_mm: f64,
    /// Largest mean distance of the target contour from the segments' centre lines, mm.
    pub max_mean_deviation_mm: f64,
    /// Largest distance anywhere, mm.
    pub max_deviation_mm: f64,
    /// Smallest distance between the faces of neighbouring segments on the donor, within the bone, mm (the saw's
    /// kerf plus a safety gap).
    pub gap_mm: f64,
    /// Largest gap between a segment and its neighbour or a stump on the mandible, mm.
    pub max_gap_mm: f64,
    /// Donor kept at the distal tip, mm (the ankle's stability).
    pub keep_distal_mm: f64,
    /// Donor kept at the proximal tip, mm (the peroneal nerve).
    pub keep_proximal_mm: f64,
    /// Rotation of the segments about their own axes, deg: at 0 the donor's lateral surface faces lingual and the
    /// vascular pedicle (medial) buccal, at the apex of every closing wedge (see `flap::LayoutOptions`).
    pub pedicle_deg: f64,
    /// Blade thickness of the donor cuts, mm.
    pub blade_thickness_mm: f64,
    /// Distance from the distal tip to the first segment's start face on the centre line, mm; `None`: the least that
    /// keeps `keep_distal_mm`.
    #[serde(deserialize_with = "present")]
    #[schemars(with = "Nullable<f64>")]
    pub distal_offset_mm: Option<f64>,
}

impl Default for FlapParameters {
    /// Values from practice: 20 mm segments at least, 2 mm deviation at most (1 mm mean), 1.5 mm between segments
    /// on the donor, 1 mm at most between bone ends, 70 mm of fibula kept at each end.
    fn default() -> Self {
        FlapParameters {
            min_segment_length_mm: 20.0,
            max_mean_deviation_mm: 1.0,
            max_deviation_mm: 2.0,
            gap_mm: 1.5,
            max_gap_mm: 1.0,
            keep_distal_mm: 70.0,
            keep_proximal_mm: 70.0,
            pedicle_deg: 0.0,
            blade_thickness_mm: 0.6,
            distal_offset_mm: None,
        }
    }
}

/// One segment of the flap.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FlapSegment {
    /// `S1`, `S2`... in contour order.
    #[schemars(length(min = 1, max = 64))]
    pub name: String,
    /// Start of its chord on the target contour, mandible mm.
    pub start_mm: [f64; 3],
    /// End of its chord, mandible mm.
    pub end_mm: [f64; 3],
    /// Distance of its start face from the donor's distal tip along the axis, mm.
    pub donor_start_mm: f64,
    /// The rigid transform from the donor CT into the mandible CT.
    pub mandible_from_donor: Rigid,
    /// Where the fixation screws of the donor guide enter the donor, donor mm (along `-lateral`).
    pub fixation_mm: Vec<[f64; 3]>,
}

/// Length of a fixation hole into the donor, mm.
pub const FIXATION_LENGTH_MM: f64 = 6.0;
/// Diameter of a fixation hole, mm (a 2.0 mm screw's passage).
pub const FIXATION_DIAMETER_MM: f64 = 2.0;

/// A saw cut on the donor, named for the guide that carries its slot.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NamedCut {
    /// `S1-distal`, `S1-proximal`...
    pub name: String,
    /// The cut.
    pub cut: DonorCut,
}

/// A fixation hole on the donor.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NamedFixation {
    /// `S1-fixation-1`...
    pub name: String,
    /// Entry on the donor, mm.
    pub entry_mm: [f64; 3],
    /// Unit direction into the bone.
    pub direction: [f64; 3],
}

/// Resection plane `name` of `plan` with its normal along the contour: into the removed bone at the `first` plane,
/// out of it at the second. Refused (with what to change) when the plan lacks it or it removes nothing.
pub fn resection_plane_along(plan: &Plan, name: &str, first: bool) -> Result<FlapPlane, String> {
    let p = plan
        .planes
        .iter()
        .find(|p| p.name == name)
        .ok_or_else(|| format!("the plan has no plane named '{name}'"))?;
    let into_removed = match p.resected_side {
        ResectedSide::Positive => 1.0,
        ResectedSide::Negative => -1.0,
        ResectedSide::None => {
            return Err(format!(
                "plane '{name}' removes nothing: a reconstruction bridges resection planes (set its resected side)"
            ))
        }
    };
    let sign = if first { into_removed } else { -into_removed };
    Ok(FlapPlane {
        point_mm: p.point_mm,
        normal: p.normal.map(|c| c * sign),
    })
}

/// The name of a segment's donor cut at its start (distal) or end (proximal) face.
fn cut_name(segment: &str, start: bool) -> String {
    format!("{segment}-{}", if start { "distal" } else { "proximal" })
}

impl Reconstruction {
    /// The names of the donor cuts, as [`Reconstruction::donor_cuts`] names them (no plan needed).
    pub fn donor_cut_names(&self) -> Vec<String> {
        self.segments
            .iter()
            .flat_map(|s| [cut_name(&s.name, true), cut_name(&s.name, false)])
            .collect()
    }

    /// The names of the fixation holes, as [`Reconstruction::fixations`] names them.
    pub fn fixation_names(&self) -> Vec<String> {
        self.fixations().into_iter().map(|f| f.name).collect()
    }

    /// The mandible side: the segment ends, the resection planes with normals along the contour, the inside point.
    /// `None` when a named plane is missing or removes nothing.
    pub fn recipient(&self, plan: &Plan) -> Option<RecipientSide> {
        let first_plane = resection_plane_along(plan, self.planes.first()?, true).ok()?;
        let second_plane = match self.planes.get(1) {
            Some(name) => Some(resection_plane_along(plan, name, false).ok()?),
            None => None,
        };
        let mut ends_mm: Vec<[f64; 3]> = self.segments.iter().map(|s| s.start_mm).collect();
        ends_mm.push(self.segments.last()?.end_mm);
        Some(RecipientSide {
            ends_mm,
            first_plane,
            second_plane,
            inside_mm: self.arch_inside_mm,
        })
    }

    /// The segments as the geometry takes them.
    pub fn layouts(&self) -> Vec<SegmentLayout> {
        self.segments
            .iter()
            .map(|s| SegmentLayout {
                start_mm: s.start_mm,
                end_mm: s.end_mm,
                donor_start_mm: s.donor_start_mm,
                mandible_from_donor: s.mandible_from_donor,
            })
            .collect()
    }

    /// Every donor cut, named: two per segment, from the distal tip up.
    pub fn donor_cuts(&self, plan: &Plan) -> Vec<NamedCut> {
        let Some(recipient) = self.recipient(plan) else {
            return Vec::new();
        };
        flap::donor_cuts(&recipient, &self.layouts(), self.parameters.blade_thickness_mm)
            .into_iter()
            .map(|cut| NamedCut {
                name: cut_name(&self.segments[cut.segment].name, cut.start),
                cut,
            })
            .collect()
    }

    /// Every fixation hole on the donor, named.
    pub fn fixations(&self) -> Vec<NamedFixation> {
        let into = self.donor.axis().lateral().map(|c| -c);
        self.segments
            .iter()
            .flat_map(|s| {
                s.fixation_mm.iter().enumerate().map(move |(i, p)| NamedFixation {
                    name: format!("{}-fixation-{}", s.name, i + 1),
                    entry_mm: *p,
                    direction: [into.x, into.y, into.z],
                })
            })
            .collect()
    }

    /// The measurements, or `None` when the planes it names are missing.
    pub fn measures(&self, plan: &Plan) -> Option<FlapMeasures> {
        let recipient = self.recipient(plan)?;
        let blades: Vec<f64> = self
            .planes
            .iter()
            .filter_map(|n| plan.planes.iter().find(|p| &p.name == n).map(|p| p.blade_thickness_mm))
            .collect();
        Some(flap::measure(
            &recipient,
            &self.layouts(),
            &self.contour.points_mm,
            &self.donor.axis(),
            self.parameters.blade_thickness_mm,
            &blades,
        ))
    }

    /// The findings that refuse the reconstruction, each saying what to change.
    pub fn findings(&self, plan: &Plan) -> Vec<Finding> {
        let el = element("reconstruction", "flap");
        let Some(recipient) = self.recipient(plan) else {
            return vec![Finding::error(
                FindingCode::GuideReferenceMissing,
                el,
                format!(
                    "the reconstruction names the resection plane(s) {:?}: each must be in the plan and remove bone",
                    self.planes
                ),
            )];
        };
        let Some(m) = self.measures(plan) else {
            return Vec::new();
        };
        let p = &self.parameters;
        let mut out = Vec::new();
        let seg_el = |k: usize| element("reconstruction/segments", &self.segments[k].name);
        // The ends must still lie on the resection planes (a plane moved since the proposal).
        let faces = recipient.face_planes();
        let off = |point: [f64; 3], f: &FlapPlane| {
            (0..3)
                .map(|i| (point[i] - f.point_mm[i]) * f.normal[i])
                .sum::<f64>()
                .abs()
        };
        let first_off = off(self.segments[0].start_mm, &faces[0]);
        let last_off = match recipient.second_plane {
            Some(ref f) => off(self.segments[self.segments.len() - 1].end_mm, f),
            None => 0.0,
        };
        if first_off.max(last_off) > 0.01 {
            out.push(
                Finding::error(
                    FindingCode::FlapOutOfDate,
                    el.clone(),
                    format!(
                        "the segments end {:.2} mm off the resection planes (moved since the proposal): run \
                         `guidesmith plan reconstruct` again",
                        first_off.max(last_off)
                    ),
                )
                .at(self.segments[0].start_mm),
            );
        }
        for (k, s) in m.segments.iter().enumerate() {
            if s.length_mm < p.min_segment_length_mm {
                out.push(
                    Finding::error(
                        FindingCode::FlapSegmentTooShort,
                        seg_el(k),
                        format!(
                            "segment {} is {:.2} mm long, under the {:.1} mm minimum: use fewer segments or move its \
                             ends",
                            self.segments[k].name, s.length_mm, p.min_segment_length_mm
                        ),
                    )
                    .at(self.segments[k].start_mm),
                );
            }
        }
        for (k, g) in m.donor_gaps_mm.iter().enumerate() {
            // Each face's kerf reaches a blade away from it: closer than two blades, the saw cuts meet; closer than
            // gap_mm, the safety gap is not kept.
            if *g < (2.0 * p.blade_thickness_mm).max(p.gap_mm) - 0.01 {
                let what = if *g < 0.0 {
                    "the cuts meet inside the bone"
                } else if *g < 2.0 * p.blade_thickness_mm {
                    "the saw kerfs overlap"
                } else {
                    "the safety gap is not kept"
                };
                out.push(Finding::error(
                    FindingCode::FlapCutsMeet,
                    seg_el(k + 1),
                    format!(
                        "between {} and {} on the donor {what} (narrowest {:.2} mm between the faces; two blades are \
                         {:.2} mm, gap_mm {:.2} mm): lay the segments out again (`plan reconstruct --keep-ends`)",
                        self.segments[k].name,
                        self.segments[k + 1].name,
                        g,
                        2.0 * p.blade_thickness_mm,
                        p.gap_mm
                    ),
                ));
            }
        }
        let axis = self.donor.axis();
        for (left, keep, tip, name) in [
            (m.left_distal_mm, p.keep_distal_mm, axis.distal_tip_mm, "distal"),
            (m.left_proximal_mm, p.keep_proximal_mm, axis.proximal_tip_mm, "proximal"),
        ] {
            // Rounding of the layout's own default (exactly `keep`) is not a shortfall.
            if left < keep - 1e-6 {
                out.push(
                    Finding::error(
                        FindingCode::FlapDonorEndShort,
                        el.clone(),
                        format!(
                            "{left:.1} mm of the donor is left at its {name} tip, under the {keep:.1} mm to keep: \
                             shorten or move the segments (distal_offset_mm) or use fewer"
                        ),
                    )
                    .at(tip),
                );
            }
        }
        let gaps = m
            .junction_gaps_mm
            .iter()
            .enumerate()
            .map(|(k, g)| {
                (
                    *g,
                    format!("between {} and {}", self.segments[k].name, self.segments[k + 1].name),
                )
            })
            .chain(m.stump_gaps_mm.iter().enumerate().map(|(i, g)| {
                (
                    *g,
                    format!("between the stump at plane '{}' and its segment", self.planes[i]),
                )
            }));
        for (g, what) in gaps {
            if g > p.max_gap_mm {
                out.push(Finding::error(
                    FindingCode::FlapGapOverLimit,
                    el.clone(),
                    format!(
                        "the bone ends {what} are {g:.2} mm apart, over the {:.2} mm limit: run `guidesmith plan \
                         reconstruct` again to lay the segments onto their chords",
                        p.max_gap_mm
                    ),
                ));
            }
        }
        if m.deviation.max_mm > p.max_deviation_mm || m.deviation.mean_mm > p.max_mean_deviation_mm {
            out.push(
                Finding::error(
                    FindingCode::FlapDeviationOverLimit,
                    el,
                    format!(
                        "the segments lie up to {:.2} mm (mean {:.2} mm) from the target contour, over the {:.2} mm \
                         ({:.2} mm mean) limits: use more segments",
                        m.deviation.max_mm, m.deviation.mean_mm, p.max_deviation_mm, p.max_mean_deviation_mm
                    ),
                )
                .at(m.deviation.at_mm),
            );
        }
        out
    }
}
