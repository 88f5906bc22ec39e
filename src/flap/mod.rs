//! Free-flap reconstruction geometry: a defect between resection planes bridged by straight bone segments cut from a
//! donor bone (the fibula now; the donor is only an axis with a reference side, so iliac crest and scapula can
//! follow).
//!
//! Why straight chords with their ends on the target contour: a fibula segment is a straight piece of bone, and its
//! ends must meet the neighbouring segment or the mandible stump where the contour is, or the reconstruction steps
//! out of line. The target contour is the centre line of the bone that is removed (so the neomandible restores the
//! shape the patient had), or a curve the engineer gives.
//!
//! What is proposed (`propose_ends`): for a segment count, the ends on the contour that minimise the largest distance
//! of the contour from the chords (then the mean), each chord at least the minimum length; the count is the one asked
//! for or the fewest that meets the deviation limits. On a circular arc the optimum is the equal division, which a
//! test checks against the sagitta `R (1 - cos(phi / 2n))`.
//!
//! What is laid out (`layout`): each segment's end planes on the mandible (a resection plane at a stump, the bisector
//! of the two chords between neighbours, so the two faces close on one plane: the closing wedge), its place on the
//! donor's axis (in contour order from the distal end, a gap between neighbours that keeps both the bone between
//! the cuts and the guide's wall between its slots), and the rigid transform `mandible_from_donor` that takes the
//! donor's axis onto the chord and the donor's lateral side onto the lingual side turned by the pedicle angle (see
//! [`LayoutOptions::pedicle_deg`]).
//!
//! Measured (`measure`): lengths along the centre line and along the buccal and lingual faces, wedge angles at each
//! end, the place on the donor, the deviation of the chords from the target contour, the gaps the recorded transforms
//! leave between neighbours and at the stumps, the donor left at both tips; and the findings that refuse a plan.

pub mod contour;
pub mod donor;

use nalgebra::{Matrix3, Rotation3, Unit, Vector3};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use contour::{
    contour_from_bone, deviation, propose_ends, resample, ContourDeviation, EndsProposal, ProposeLimits, MAX_CONTOUR_MM,
};
pub use donor::{donor_axis, DonorAxis};

/// Why a reconstruction cannot be computed.
#[derive(Debug, thiserror::Error)]
pub enum FlapError {
    /// A value is out of range or not finite.
    #[error("{what} is {value}: {expected}")]
    BadValue {
        /// What the value is.
        what: String,
        /// The value.
        value: f64,
        /// What it should be.
        expected: String,
    },
    /// The contour cannot be made from the bone.
    #[error("target contour: {0}")]
    Contour(String),
    /// No segmentation of the contour meets the limits.
    #[error("no {count_text} of at least {min_length_mm:.1} mm fits the {length_mm:.1} mm contour{hint}")]
    NoSegmentation {
        /// "1 to 4 segments" or "3 segments".
        count_text: String,
        /// The minimum length asked for.
        min_length_mm: f64,
        /// The contour's length.
        length_mm: f64,
        /// What to change.
        hint: String,
    },
    /// The donor's axis cannot be found.
    #[error("donor bone: {0}")]
    Donor(String),
    /// A bone query failed.
    #[error(transparent)]
    Measure(#[from] crate::measure::MeasureError),
}

/// A plane by a point and a unit normal.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct FlapPlane {
    /// A point of the plane, mm.
    pub point_mm: [f64; 3],
    /// Unit normal.
    pub normal: [f64; 3],
}

impl FlapPlane {
    fn p(&self) -> Vector3<f64> {
        Vector3::from(self.point_mm)
    }

    fn n(&self) -> Vector3<f64> {
        Vector3::from(self.normal)
    }

    /// Where the line `origin + s dir` meets the plane (`None` when parallel).
    fn hit(&self, origin: &Vector3<f64>, dir: &Vector3<f64>) -> Option<Vector3<f64>> {
        let den = self.n().dot(dir);
        (den.abs() > 1e-12).then(|| origin + dir * ((self.p() - origin).dot(&self.n()) / den))
    }
}

/// A rigid transform `y = rotation x + translation_mm`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rigid {
    /// Rotation matrix, rows.
    pub rotation: [[f64; 3]; 3],
    /// Translation, mm.
    pub translation_mm: [f64; 3],
}

impl Rigid {
    fn from_parts(r: &Matrix3<f64>, t: &Vector3<f64>) -> Rigid {
        Rigid {
            rotation: [0, 1, 2].map(|i| [r[(i, 0)], r[(i, 1)], r[(i, 2)]]),
            translation_mm: [t.x, t.y, t.z],
        }
    }

    /// The rotation as a matrix.
    pub fn matrix(&self) -> Matrix3<f64> {
        Matrix3::from_fn(|i, j| self.rotation[i][j])
    }

    /// `rotation p + translation`.
    pub fn point(&self, p: [f64; 3]) -> [f64; 3] {
        let q = self.matrix() * Vector3::from(p) + Vector3::from(self.translation_mm);
        [q.x, q.y, q.z]
    }

    /// `rotation v`.
    pub fn vector(&self, v: [f64; 3]) -> [f64; 3] {
        let q = self.matrix() * Vector3::from(v);
        [q.x, q.y, q.z]
    }

    /// The inverse transform.
    pub fn inverse(&self) -> Rigid {
        let rt = self.matrix().transpose();
        let t = -(rt * Vector3::from(self.translation_mm));
        Rigid::from_parts(&rt, &t)
    }

    /// The plane mapped by this transform.
    pub fn plane(&self, p: &FlapPlane) -> FlapPlane {
        FlapPlane {
            point_mm: self.point(p.point_mm),
            normal: self.vector(p.normal),
        }
    }

    /// How far the rotation is from a proper rotation (largest entry of `R Rᵀ - I`, and `det - 1`).
    pub fn orthonormality_error(&self) -> f64 {
        let r = self.matrix();
        let e = (r * r.transpose() - Matrix3::identity()).abs().max();
        e.max((r.determinant() - 1.0).abs())
    }
}

/// The settings a layout is made with.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayoutOptions {
    /// Distance from the donor's distal tip to the first segment's start face on the centre line, mm; `None`: the
    /// smallest that keeps `keep_distal_mm` of donor below the first cut.
    pub distal_offset_mm: Option<f64>,
    /// Donor kept at the distal tip, mm (the ankle).
    pub keep_distal_mm: f64,
    /// Rotation of every segment about its own axis from the reference, deg, right-handed about the segment's
    /// direction along the contour. At 0 the donor's lateral surface (where its guide seats) faces lingual and its
    /// medial side (the fibula's peroneal pedicle) buccal: each closing wedge then has its apex on the pedicle's
    /// side, where the periosteum stays whole, and opens towards the guide, whose slots diverge.
    pub pedicle_deg: f64,
    /// Thickness of the saw blade that cuts the donor, mm: each donor cut is centred half a blade outside its
    /// segment's face, so the segment keeps its planned length.
    pub blade_thickness_mm: f64,
    /// Smallest distances between the faces of neighbouring segments on the donor, each within a distance from the
    /// donor's axis, mm: the bone's own (its radius, the safety gap, all round) and the guide's (the reach of its
    /// slot housings, the wall its slots need between them, on the lateral half only, where the guide is).
    pub min_gaps: Vec<GapRule>,
}

/// A smallest distance between neighbouring faces on the donor.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct GapRule {
    /// Out to this distance from the axis, mm.
    pub radius_mm: f64,
    /// The gap, mm.
    pub gap_mm: f64,
    /// Only on the lateral half (the guide's side); else all round.
    pub lateral_half: bool,
}

/// One segment as laid out.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SegmentLayout {
    /// Start and end of the chord on the target contour, mandible mm.
    pub start_mm: [f64; 3],
    /// See `start_mm`.
    pub end_mm: [f64; 3],
    /// Distance of its start face from the donor's distal tip along the axis, on the centre line, mm.
    pub donor_start_mm: f64,
    /// The rigid transform from the donor CT into the mandible CT.
    pub mandible_from_donor: Rigid,
}

/// What a layout needs of the mandible side: the segment ends on the contour, the resection planes (the second is
/// `None` for a reconstruction that ends at the condyle) with normals pointing along the contour, and a point inside
/// the arch (the buccal side is away from it).
#[derive(Clone, Debug)]
pub struct RecipientSide {
    /// Segment ends, in contour order (n + 1 points for n segments).
    pub ends_mm: Vec<[f64; 3]>,
    /// The first resection plane, its normal along the contour.
    pub first_plane: FlapPlane,
    /// The second resection plane, its normal along the contour.
    pub second_plane: Option<FlapPlane>,
    /// A point inside the arch (the mandible's centroid).
    pub inside_mm: [f64; 3],
}

impl RecipientSide {
    fn chord(&self, k: usize) -> Vector3<f64> {
        (Vector3::from(self.ends_mm[k + 1]) - Vector3::from(self.ends_mm[k])).normalize()
    }

    /// The face planes on the mandible: `n + 1` planes, normals along the contour.
    pub fn face_planes(&self) -> Vec<FlapPlane> {
        let n = self.ends_mm.len() - 1;
        (0..=n)
            .map(|k| {
                if k == 0 {
                    self.first_plane
                } else if k == n {
                    self.second_plane.unwrap_or_else(|| FlapPlane {
                        point_mm: self.ends_mm[n],
                        normal: arr(self.chord(n - 1)),
                    })
                } else {
                    FlapPlane {
                        point_mm: self.ends_mm[k],
                        normal: arr((self.chord(k - 1) + self.chord(k)).normalize()),
                    }
                }
            })
            .collect()
    }

    /// Unit buccal direction of segment `k`: across its chord, horizontal (perpendicular to the patient's z), away
    /// from the inside of the arch.
    pub fn buccal(&self, k: usize) -> Vector3<f64> {
        let d = self.chord(k);
        let mut b = d.cross(&Vector3::z());
        if b.norm() < 1e-9 {
            b = d.cross(&Vector3::x());
        }
        let b = b.normalize();
        let mid = (Vector3::from(self.ends_mm[k]) + Vector3::from(self.ends_mm[k + 1])) * 0.5;
        if b.dot(&(mid - Vector3::from(self.inside_mm))) < 0.0 {
            -b
        } else {
            b
        }
    }
}

fn arr(v: Vector3<f64>) -> [f64; 3] {
    [v.x, v.y, v.z]
}

/// The rotation taking the orthonormal frame (`a`, `l`, `a x l`) to (`d`, `b`, `d x b`).
fn frame_rotation(a: &Vector3<f64>, l: &Vector3<f64>, d: &Vector3<f64>, b: &Vector3<f64>) -> Matrix3<f64> {
    let from = Matrix3::from_columns(&[*a, *l, a.cross(l)]);
    let to = Matrix3::from_columns(&[*d, *b, d.cross(b)]);
    to * from.transpose()
}

/// How much a face plane with unit normal `m` leans along the axis `a` at distance `radius` from it: the plane meets
/// the lines parallel to the axis at `radius` within this far of where it meets the axis, mm.
fn lean_mm(m: &Vector3<f64>, a: &Vector3<f64>, radius: f64) -> f64 {
    let along = m.dot(a);
    let across = (m - a * along).norm();
    radius * across / along.abs().max(1e-9)
}

/// The smallest distance along the axis between two face planes (both through the axis, `gap_mm` apart there, the
/// first below the second) over the lines parallel to the axis at `radius`, all round or (`half`: its unit
/// direction) on one half only.
fn narrowest_gap_mm(
    gap_mm: f64,
    m1: &Vector3<f64>,
    m2: &Vector3<f64>,
    a: &Vector3<f64>,
    radius: f64,
    half: Option<&Vector3<f64>>,
) -> f64 {
    // The gap at offset w (perpendicular to the axis) is gap + w . v.
    let v = m1 / m1.dot(a) - m2 / m2.dot(a);
    let v = v - a * v.dot(a);
    let worst = match half {
        // The narrowest direction, -v, lies in the half: all of |v|; else the half's rim, across it.
        Some(l) if v.dot(l) > 0.0 => v.dot(&a.cross(l)).abs(),
        _ => v.norm(),
    };
    gap_mm - radius * worst
}

/// Lays the segments out on the donor: see the module documentation.
pub fn layout(
    recipient: &RecipientSide,
    axis: &DonorAxis,
    options: &LayoutOptions,
) -> Result<Vec<SegmentLayout>, FlapError> {
    let n = recipient.ends_mm.len().saturating_sub(1);
    if n == 0 {
        return Err(FlapError::BadValue {
            what: "segment ends".into(),
            value: recipient.ends_mm.len() as f64,
            expected: "at least two points".into(),
        });
    }
    for (what, v) in [
        ("pedicle angle (deg)", options.pedicle_deg),
        ("distal keep (mm)", options.keep_distal_mm),
        ("blade thickness (mm)", options.blade_thickness_mm),
    ] {
        if !v.is_finite() {
            return Err(FlapError::BadValue {
                what: what.into(),
                value: v,
                expected: "a finite number".into(),
            });
        }
    }
    let a = axis.direction();
    let lateral = axis.lateral();
    let faces = recipient.face_planes();
    let rotations: Vec<Matrix3<f64>> = (0..n)
        .map(|k| {
            let d = recipient.chord(k);
            // The lateral side faces lingual at 0 deg.
            let b = Rotation3::from_axis_angle(&Unit::new_normalize(d), options.pedicle_deg.to_radians())
                * -recipient.buccal(k);
            frame_rotation(&a, &lateral, &d, &b)
        })
        .collect();
    // Face normals in the donor frame: start and end face of each segment.
    let donor_normal = |k: usize, face: usize| rotations[k].transpose() * faces[face].n();
    let first = match options.distal_offset_mm {
        Some(t) => t,
        None => {
            // The kerf's far face meets the axis a blade / cos(tilt) below the start face.
            let m = donor_normal(0, 0);
            options.keep_distal_mm + options.blade_thickness_mm / m.dot(&a).abs() + lean_mm(&m, &a, axis.radius_mm)
        }
    };
    let mut out = Vec::with_capacity(n);
    let mut t = first;
    for (k, rotation) in rotations.iter().enumerate() {
        if k > 0 {
            let (m1, m2) = (donor_normal(k - 1, k), donor_normal(k, k));
            // The centre-line gap that meets every requirement: narrowest_gap is linear in the centre-line gap.
            let need = options
                .min_gaps
                .iter()
                .map(|rule| {
                    let half = rule.lateral_half.then_some(&lateral);
                    rule.gap_mm - narrowest_gap_mm(0.0, &m1, &m2, &a, rule.radius_mm, half)
                })
                .fold(0.0, f64::max);
            t += need;
        }
        let start = Vector3::from(recipient.ends_mm[k]);
        let end = Vector3::from(recipient.ends_mm[k + 1]);
        let length = (end - start).norm();
        let donor_start = Vector3::from(axis.distal_tip_mm) + a * t;
        let translation = start - rotation * donor_start;
        out.push(SegmentLayout {
            start_mm: recipient.ends_mm[k],
            end_mm: recipient.ends_mm[k + 1],
            donor_start_mm: t,
            mandible_from_donor: Rigid::from_parts(rotation, &translation),
        });
        t += length;
    }
    Ok(out)
}

/// One saw cut on the donor.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DonorCut {
    /// The segment (0-based) and whether this is its start face (`false`: its end face).
    pub segment: usize,
    /// See `segment`.
    pub start: bool,
    /// The saw's centre plane, donor mm; the normal points away from the segment (into the bone the cut frees).
    pub plane: FlapPlane,
}

/// The donor cuts of a laid-out reconstruction, two per segment in order along the axis: each face plane taken into
/// the donor by the segment's transform and moved half a blade away from the segment.
pub fn donor_cuts(recipient: &RecipientSide, segments: &[SegmentLayout], blade_thickness_mm: f64) -> Vec<DonorCut> {
    let faces = recipient.face_planes();
    let mut out = Vec::with_capacity(2 * segments.len());
    for (k, s) in segments.iter().enumerate() {
        let donor_from_mandible = s.mandible_from_donor.inverse();
        for (face, start) in [(k, true), (k + 1, false)] {
            let p = donor_from_mandible.plane(&faces[face]);
            // Face normals point along the contour: away from the segment at its end, into it at its start.
            let away = if start {
                -Vector3::from(p.normal)
            } else {
                Vector3::from(p.normal)
            };
            let point = Vector3::from(p.point_mm) + away * (0.5 * blade_thickness_mm);
            out.push(DonorCut {
                segment: k,
                start,
                plane: FlapPlane {
                    point_mm: arr(point),
                    normal: arr(away),
                },
            });
        }
    }
    out
}

/// The measurements of one segment.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SegmentMeasures {
    /// Length along the centre line (the chord), mm.
    pub length_mm: f64,
    /// Length along the buccal face (the line parallel to the chord at the donor's radius on the buccal side), mm.
    pub buccal_length_mm: f64,
    /// Length along the lingual face, mm.
    pub lingual_length_mm: f64,
    /// Angle between the start face and the segment's cross-section, deg (0: a square cut).
    pub start_wedge_deg: f64,
    /// Angle between the end face and the segment's cross-section, deg.
    pub end_wedge_deg: f64,
    /// Donor between its distal tip and the segment's start face (centre line), mm.
    pub from_distal_tip_mm: f64,
    /// Donor between the segment's end face and the proximal tip (centre line), mm.
    pub from_proximal_tip_mm: f64,
}

/// The measurements of a whole reconstruction.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FlapMeasures {
    /// Per segment, in contour order.
    pub segments: Vec<SegmentMeasures>,
    /// Deviation of the segments' centre lines from the target contour.
    pub deviation: ContourDeviation,
    /// Per junction between neighbours (in order): the distance between the centres of the two faces as the recorded
    /// transforms place them, mm (0 when they close on one another).
    pub junction_gaps_mm: Vec<f64>,
    /// At the first and (when there is one) second resection plane: the distance of the segment's face centre from
    /// the stump's cut face (the resection plane moved half its blade into the stump), mm.
    pub stump_gaps_mm: Vec<f64>,
    /// Per junction: the narrowest distance between the neighbouring faces on the donor within the donor's radius,
    /// mm (negative: the two cuts meet inside the bone).
    pub donor_gaps_mm: Vec<f64>,
    /// Donor left below the first cut's kerf and above the last one's, measured at the donor's radius, mm.
    pub left_distal_mm: f64,
    /// See `left_distal_mm`.
    pub left_proximal_mm: f64,
}

/// Measures a recorded reconstruction. `stump_blades_mm` are the blade thicknesses of the resection planes (the
/// stump's face lies half a blade inside the stump).
pub fn measure(
    recipient: &RecipientSide,
    segments: &[SegmentLayout],
    contour_mm: &[[f64; 3]],
    axis: &DonorAxis,
    blade_thickness_mm: f64,
    stump_blades_mm: &[f64],
) -> FlapMeasures {
    let faces = recipient.face_planes();
    let r = axis.radius_mm;
    let a = axis.direction();
    let mut per = Vec::with_capacity(segments.len());
    for (k, s) in segments.iter().enumerate() {
        let start = Vector3::from(s.start_mm);
        let end = Vector3::from(s.end_mm);
        let d = (end - start).normalize();
        let b = recipient.buccal(k);
        let along = |offset: f64| -> f64 {
            let o = start + b * offset;
            match (faces[k].hit(&o, &d), faces[k + 1].hit(&o, &d)) {
                (Some(p), Some(q)) => (q - p).dot(&d),
                _ => f64::NAN,
            }
        };
        let wedge = |f: &FlapPlane| f.n().dot(&d).abs().clamp(0.0, 1.0).acos().to_degrees();
        let length = (end - start).norm();
        per.push(SegmentMeasures {
            length_mm: length,
            buccal_length_mm: along(r),
            lingual_length_mm: along(-r),
            start_wedge_deg: wedge(&faces[k]),
            end_wedge_deg: wedge(&faces[k + 1]),
            from_distal_tip_mm: s.donor_start_mm,
            from_proximal_tip_mm: axis.length_mm() - s.donor_start_mm - length,
        });
    }
    // Where the recorded transforms put the centre of each face (the donor's centre-line point of the face).
    let placed_face = |k: usize, start: bool| -> Vector3<f64> {
        let s = &segments[k];
        let t = s.donor_start_mm + if start { 0.0 } else { per[k].length_mm };
        Vector3::from(
            s.mandible_from_donor
                .point(arr(Vector3::from(axis.distal_tip_mm) + a * t)),
        )
    };
    let junction_gaps_mm = (1..segments.len())
        .map(|k| (placed_face(k - 1, false) - placed_face(k, true)).norm())
        .collect();
    // A stump's face is half the resection blade inside the stump from the resection plane.
    let stump_gap = |c: Vector3<f64>, face: &FlapPlane, into_stump: f64, blade: f64| {
        (c - (face.p() + face.n() * (into_stump * 0.5 * blade)))
            .dot(&face.n())
            .abs()
    };
    let mut stump_gaps_mm = Vec::new();
    if !segments.is_empty() {
        let blade = stump_blades_mm.first().copied().unwrap_or(0.0);
        stump_gaps_mm.push(stump_gap(placed_face(0, true), &faces[0], -1.0, blade));
        if recipient.second_plane.is_some() {
            let last = segments.len() - 1;
            let blade = stump_blades_mm.get(1).copied().unwrap_or(0.0);
            stump_gaps_mm.push(stump_gap(placed_face(last, false), &faces[last + 1], 1.0, blade));
        }
    }
    let cuts = donor_cuts(recipient, segments, blade_thickness_mm);
    let donor_gaps_mm = (1..segments.len())
        .map(|k| {
            let m1 = Vector3::from(cuts[2 * k - 1].plane.normal);
            let m2 = -Vector3::from(cuts[2 * k].plane.normal);
            let centre = segments[k].donor_start_mm - (segments[k - 1].donor_start_mm + per[k - 1].length_mm);
            narrowest_gap_mm(centre, &m1, &m2, &a, r, None)
        })
        .collect();
    // The donor left at a tip: from the tip to where the kerf's outer face comes nearest it at the bone's radius.
    let (left_distal_mm, left_proximal_mm) = match (cuts.first(), cuts.last()) {
        (Some(c0), Some(c1)) => {
            let left = |c: &DonorCut| {
                let n = Vector3::from(c.plane.normal);
                let axial = (Vector3::from(c.plane.point_mm) - Vector3::from(axis.distal_tip_mm)).dot(&n) / n.dot(&a);
                let half_kerf = 0.5 * blade_thickness_mm / n.dot(&a).abs();
                (axial, half_kerf + lean_mm(&n, &a, r))
            };
            let ((t0, m0), (t1, m1)) = (left(c0), left(c1));
            (t0 - m0, axis.length_mm() - t1 - m1)
        }
        _ => (axis.length_mm(), axis.length_mm()),
    };
    let chords: Vec<[f64; 3]> = segments
        .iter()
        .map(|s| s.start_mm)
        .chain(segments.last().map(|s| s.end_mm))
        .collect();
    FlapMeasures {
        segments: per,
        deviation: deviation(contour_mm, &chords),
        junction_gaps_mm,
        stump_gaps_mm,
        donor_gaps_mm,
        left_distal_mm,
        left_proximal_mm,
    }
}

#[cfg(test)]
mod tests;
