//! The donor bone's axis, tips, lateral side and radius, found on its segmented surface.
//!
//! Why sections and not the whole mesh's principal axis: a leg CT holds the tibia with the fibula, and the two touch
//! at both joints, so one segmentation gives one piece. Across the middle of the shaft they are two loops; the
//! fibula is the smaller (or the one at the engineer's point). From there its cross-sections are followed up and
//! down while they stay one slender loop, the axis is the line fitted through their centroids, and each tip is where
//! that line, continued from the last such section, leaves the bone.

use nalgebra::{Matrix3, SymmetricEigen, Vector3};
use serde::Serialize;

use super::FlapError;
use crate::measure::BoneQuery;
use crate::mesh::Mesh;

/// Step between the sections followed along the donor, mm.
const TRACK_STEP_MM: f64 = 4.0;
/// A section is still the donor's shaft while its area stays under this many times the middle section's.
const SHAFT_AREA_RATIO: f64 = 2.0;
/// ... and its centroid within this distance of where the previous two predict it, mm.
const SHAFT_JUMP_MM: f64 = 4.0;

/// A tip is where the axis leaves the bone for at least this long, mm.
const TIP_GAP_MM: f64 = 5.0;

/// A donor bone's axis: from its distal tip to its proximal tip, with the side the guide is seated from.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct DonorAxis {
    /// The distal tip (the ankle's end of a fibula), on the axis line, mm.
    pub distal_tip_mm: [f64; 3],
    /// The proximal tip, on the axis line, mm.
    pub proximal_tip_mm: [f64; 3],
    /// Unit vector perpendicular to the axis towards the bone's lateral surface.
    pub lateral: [f64; 3],
    /// Radius of the shaft: the median over its sections of the farthest point of the outer contour from the
    /// section's centroid (its crests), mm.
    pub radius_mm: f64,
}

impl DonorAxis {
    /// Unit direction from the distal to the proximal tip.
    pub fn direction(&self) -> Vector3<f64> {
        (Vector3::from(self.proximal_tip_mm) - Vector3::from(self.distal_tip_mm)).normalize()
    }

    /// The lateral direction, made exactly perpendicular to the axis.
    pub fn lateral(&self) -> Vector3<f64> {
        let a = self.direction();
        let l = Vector3::from(self.lateral);
        (l - a * l.dot(&a)).normalize()
    }

    /// Length between the tips, mm.
    pub fn length_mm(&self) -> f64 {
        (Vector3::from(self.proximal_tip_mm) - Vector3::from(self.distal_tip_mm)).norm()
    }

    /// The point `t_mm` from the distal tip along the axis.
    pub fn at(&self, t_mm: f64) -> [f64; 3] {
        let p = Vector3::from(self.distal_tip_mm) + self.direction() * t_mm;
        [p.x, p.y, p.z]
    }
}

/// Principal direction (largest spread) and mean of points.
fn principal(points: &[Vector3<f64>]) -> (Vector3<f64>, Vector3<f64>) {
    let n = points.len().max(1) as f64;
    let mean = points.iter().sum::<Vector3<f64>>() / n;
    let mut cov = Matrix3::zeros();
    for p in points {
        let d = p - mean;
        cov += d * d.transpose();
    }
    let eig = SymmetricEigen::new(cov / n);
    let i = eig.eigenvalues.imax();
    let v: Vector3<f64> = eig.eigenvectors.column(i).into();
    (v.normalize(), mean)
}

/// Finds the donor's axis on `bone` (its segmented surface).
///
/// `near_mm`: a point on or next to the donor's shaft, for a CT that holds other bone of the same size; `None`: the
/// smaller of the two loops across the middle of the bone's long axis (the fibula beside the tibia). `distal` is a
/// unit vector that points towards the distal end (the patient's feet: `-z` in LPS), `lateral_hint` the side the
/// guide is seated from (the patient's right, `-x`, for a right fibula).
pub fn donor_axis(
    bone: &Mesh,
    query: &BoneQuery,
    near_mm: Option<[f64; 3]>,
    distal: [f64; 3],
    lateral_hint: [f64; 3],
) -> Result<DonorAxis, FlapError> {
    let vertices: Vec<Vector3<f64>> = bone.positions.iter().map(|&p| Vector3::from(p)).collect();
    if vertices.len() < 4 {
        return Err(FlapError::Donor("the donor bone has no surface".into()));
    }
    let (mut long, centre) = principal(&vertices);
    let distal = Vector3::from(distal).normalize();
    if long.dot(&distal) > 0.0 {
        long = -long;
    }
    // The middle section and the donor's loop in it.
    let start = near_mm.map_or(centre, Vector3::from);
    let middle = query.section([start.x, start.y, start.z], [long.x, long.y, long.z])?;
    let outer: Vec<&crate::measure::Contour> = middle
        .loops
        .iter()
        .filter(|l| l.closed && l.signed_area_mm2 > 1.0)
        .collect();
    let seed = match near_mm {
        Some(p) => middle.piece_within(p, 0.0).section.centroid_mm,
        None => match outer.len() {
            0 => None,
            1 => middle.centroid_mm,
            2 => {
                // Loops come largest first: the second largest is the donor (the fibula beside the tibia).
                let l = outer[1];
                let c = l.points_mm.iter().map(|&p| Vector3::from(p)).sum::<Vector3<f64>>() / l.points_mm.len() as f64;
                middle.piece_within([c.x, c.y, c.z], 0.0).section.centroid_mm
            }
            n => {
                return Err(FlapError::Donor(format!(
                    "{n} bones cross the middle of the donor (both legs?): give a point on the fibula's shaft \
                     (--donor-point)"
                )))
            }
        },
    };
    let Some(seed) = seed else {
        return Err(FlapError::Donor(format!(
            "no bone across the middle of the donor at ({:.1}, {:.1}, {:.1}) mm; give a point on its shaft",
            start.x, start.y, start.z
        )));
    };
    // A section's centroid, net area and outer reach (the farthest point of its outer contours from the centroid).
    let area_at = |p: Vector3<f64>, n: Vector3<f64>| -> Result<Option<(Vector3<f64>, f64, f64)>, FlapError> {
        let s = query.section([p.x, p.y, p.z], [n.x, n.y, n.z])?;
        let piece = s.piece_within([p.x, p.y, p.z], 0.0).section;
        Ok(piece.centroid_mm.map(|c| {
            let c = Vector3::from(c);
            let reach = piece
                .loops
                .iter()
                .filter(|l| l.signed_area_mm2 > 0.0)
                .flat_map(|l| l.points_mm.iter())
                .map(|&q| (Vector3::from(q) - c).norm())
                .fold(0.0, f64::max);
            (c, piece.net_area_mm2, reach)
        }))
    };
    let Some((seed, seed_area, seed_reach)) = area_at(Vector3::from(seed), long)? else {
        return Err(FlapError::Donor("the donor's middle section is empty".into()));
    };
    // Follow the shaft both ways.
    let mut centroids = vec![seed];
    let mut reaches = vec![seed_reach];
    let mut ends = [seed, seed];
    for (side, sign) in [(0usize, -1.0f64), (1, 1.0)] {
        let mut previous = seed;
        let mut direction = long * sign;
        loop {
            let predicted = previous + direction * TRACK_STEP_MM;
            let Some((c, area, reach)) = area_at(predicted, direction)? else {
                break;
            };
            let plane_offset = (c - predicted) - direction * (c - predicted).dot(&direction);
            if area > SHAFT_AREA_RATIO * seed_area || plane_offset.norm() > SHAFT_JUMP_MM {
                break;
            }
            direction = (c - previous).normalize();
            if direction.dot(&(long * sign)) < 0.7 {
                break;
            }
            centroids.push(c);
            reaches.push(reach);
            previous = c;
        }
        ends[side] = previous;
    }
    if centroids.len() < 5 {
        return Err(FlapError::Donor(format!(
            "the donor's shaft could be followed over only {} sections; give a point on its shaft",
            centroids.len()
        )));
    }
    let (mut axis, mean) = principal(&centroids);
    if axis.dot(&distal) > 0.0 {
        axis = -axis;
    }
    let on_axis = |p: Vector3<f64>| mean + axis * (p - mean).dot(&axis);
    // Each tip: where the axis line, from the last shaft section on, leaves the bone.
    let tip = |from: Vector3<f64>, dir: Vector3<f64>| -> Result<Vector3<f64>, FlapError> {
        let o = on_axis(from);
        let crossings = query.crossings([o.x, o.y, o.z], [dir.x, dir.y, dir.z], 0.0, f64::INFINITY)?;
        // The first exit after which the line stays out of bone for a while (not a gap in a joint's cortex).
        let exit = crossings.iter().enumerate().find_map(|(i, c)| {
            let next_entry = crossings[i + 1..].iter().find(|n| n.entering).map(|n| n.t_mm);
            (!c.entering && next_entry.is_none_or(|t| t - c.t_mm > TIP_GAP_MM)).then_some(c)
        });
        exit.map(|c| on_axis(Vector3::from(c.point_mm)))
            .ok_or_else(|| FlapError::Donor("the donor's axis does not leave the bone".into()))
    };
    let distal_tip = tip(ends[0], -axis)?;
    let proximal_tip = tip(ends[1], axis)?;
    let hint = Vector3::from(lateral_hint);
    let lateral = hint - axis * hint.dot(&axis);
    if lateral.norm() < 1e-6 {
        return Err(FlapError::Donor("the lateral side lies along the donor's axis".into()));
    }
    let lateral = lateral.normalize();
    // The shaft's radius: the median over its sections of the outer contour's reach (its crests, not a mean).
    reaches.sort_by(f64::total_cmp);
    let radius_mm = reaches[reaches.len() / 2];
    Ok(DonorAxis {
        distal_tip_mm: [distal_tip.x, distal_tip.y, distal_tip.z],
        proximal_tip_mm: [proximal_tip.x, proximal_tip.y, proximal_tip.z],
        lateral: [lateral.x, lateral.y, lateral.z],
        radius_mm,
    })
}
