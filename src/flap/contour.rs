//! The target contour and the segment ends proposed on it.
//!
//! Why the centre line of sections: the neomandible should restore the bone that is removed, and a fibula segment is
//! centred on its chord, so the chords should follow the centre of the removed bone. The sections are taken on a fan
//! of planes from the first resection plane to the second (points and normals interpolated), each on the piece of
//! bone nearest the previous centroid, so the fan follows one body of the U-shaped jaw.
//!
//! Why a dynamic programme and then a local balance: the deviation of a chord from the contour it spans depends only
//! on its two ends, so the best ends on a grid of contour points are found exactly by a dynamic programme (minimax,
//! then the smallest sum of squares); each inner end is then moved continuously between its neighbours until the
//! two chords beside it deviate equally (a ternary search, repeated), which takes the grid's step out of the answer.

use nalgebra::Vector3;
use serde::Serialize;

use super::FlapError;
use crate::measure::BoneQuery;

/// Longest target contour, mm (a whole mandible's arch is about 250 mm).
pub const MAX_CONTOUR_MM: f64 = 400.0;
/// Step of the section fan along the chord between the resection planes' points, mm.
const FAN_STEP_MM: f64 = 1.0;
/// Spacing of candidate segment ends for the dynamic programme, mm.
const GRID_STEP_MM: f64 = 0.5;
/// Spacing of the contour samples a chord's squared deviation is summed over in the dynamic programme, mm.
const SAMPLE_STEP_MM: f64 = 0.25;
/// Spacing of the contour samples the reported deviation is measured on, mm: between two samples the distance to
/// the chords changes by at most half this (its slope is at most 1), so the reported largest is within 0.01 mm.
const MEASURE_STEP_MM: f64 = 0.02;

/// The contour's centre line from the first resection plane to the second (both `point`, `normal` with the normal
/// pointing along the contour, from the first plane towards the second), as section centroids on a fan of planes.
pub fn contour_from_bone(
    query: &BoneQuery,
    first: ([f64; 3], [f64; 3]),
    second: ([f64; 3], [f64; 3]),
) -> Result<Vec<[f64; 3]>, FlapError> {
    let (p0, n0) = (Vector3::from(first.0), Vector3::from(first.1).normalize());
    let (p1, n1) = (Vector3::from(second.0), Vector3::from(second.1).normalize());
    if n0.dot(&n1) < -0.99 {
        return Err(FlapError::Contour(
            "the resection planes face each other head on; give the contour's points instead".into(),
        ));
    }
    let steps = (((p1 - p0).norm() / FAN_STEP_MM).ceil() as usize).max(4);
    let mut previous = p0;
    let mut out = Vec::with_capacity(steps + 1);
    for i in 0..=steps {
        let u = i as f64 / steps as f64;
        let point = p0 * (1.0 - u) + p1 * u;
        let normal = (n0 * (1.0 - u) + n1 * u).normalize();
        let section = query.section([point.x, point.y, point.z], [normal.x, normal.y, normal.z])?;
        let piece = section.piece_at([previous.x, previous.y, previous.z]);
        let Some(c) = piece.section.centroid_mm else {
            return Err(FlapError::Contour(format!(
                "the plane through ({:.1}, {:.1}, {:.1}) mm between the resection planes meets no bone",
                point.x, point.y, point.z
            )));
        };
        let c = Vector3::from(c);
        if i > 0 && (c - previous).norm() > 10.0 * FAN_STEP_MM.max((p1 - p0).norm() / steps as f64) {
            return Err(FlapError::Contour(format!(
                "the bone's centre jumps from ({:.1}, {:.1}, {:.1}) to ({:.1}, {:.1}, {:.1}) mm between sections: the \
                 resection planes do not bound one piece of bone; give the contour's points instead",
                previous.x, previous.y, previous.z, c.x, c.y, c.z
            )));
        }
        out.push([c.x, c.y, c.z]);
        previous = c;
    }
    Ok(out)
}

/// Cumulative arc length at each point of a polyline, mm.
fn arc_lengths(points: &[[f64; 3]]) -> Vec<f64> {
    let mut s = Vec::with_capacity(points.len());
    let mut acc = 0.0;
    for (i, p) in points.iter().enumerate() {
        if i > 0 {
            acc += (Vector3::from(*p) - Vector3::from(points[i - 1])).norm();
        }
        s.push(acc);
    }
    s
}

/// The point at arc length `s` along the polyline (clamped to its ends).
fn point_at(points: &[[f64; 3]], lengths: &[f64], s: f64) -> Vector3<f64> {
    let last = points.len() - 1;
    if s <= 0.0 {
        return Vector3::from(points[0]);
    }
    if s >= lengths[last] {
        return Vector3::from(points[last]);
    }
    let i = lengths.partition_point(|&l| l <= s).saturating_sub(1).min(last - 1);
    let span = lengths[i + 1] - lengths[i];
    let u = if span > 0.0 { (s - lengths[i]) / span } else { 0.0 };
    Vector3::from(points[i]) * (1.0 - u) + Vector3::from(points[i + 1]) * u
}

/// The polyline resampled at `step_mm` of arc length (the ends kept exactly).
pub fn resample(points: &[[f64; 3]], step_mm: f64) -> Vec<[f64; 3]> {
    if points.len() < 2 {
        return points.to_vec();
    }
    let lengths = arc_lengths(points);
    let total = lengths[lengths.len() - 1];
    let n = ((total / step_mm).ceil() as usize).max(1);
    (0..=n)
        .map(|i| {
            let p = point_at(points, &lengths, total * i as f64 / n as f64);
            [p.x, p.y, p.z]
        })
        .collect()
}

fn segment_distance(p: &Vector3<f64>, a: &Vector3<f64>, b: &Vector3<f64>) -> f64 {
    let ab = b - a;
    let len2 = ab.norm_squared();
    let u = if len2 > 0.0 {
        ((p - a).dot(&ab) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    (p - (a + ab * u)).norm()
}

/// How far the chords lie from the target contour.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ContourDeviation {
    /// Mean distance of the contour from the chord polyline along its arc (trapezoidal rule, samples every 0.02 mm),
    /// mm.
    pub mean_mm: f64,
    /// Largest distance, mm.
    pub max_mm: f64,
    /// The contour point farthest from the chords, mm.
    pub at_mm: [f64; 3],
}

/// The deviation of the chord polyline through `chord_points` from `contour`: the distance of each contour sample
/// (every 0.02 mm of arc) to the nearest chord, the largest taken over the contour's own points too.
pub fn deviation(contour: &[[f64; 3]], chord_points: &[[f64; 3]]) -> ContourDeviation {
    let chords: Vec<(Vector3<f64>, Vector3<f64>)> = chord_points
        .windows(2)
        .map(|w| (Vector3::from(w[0]), Vector3::from(w[1])))
        .collect();
    let distance = |p: &[f64; 3]| {
        let p = Vector3::from(*p);
        chords
            .iter()
            .map(|(a, b)| segment_distance(&p, a, b))
            .fold(f64::INFINITY, f64::min)
    };
    let samples = resample(contour, MEASURE_STEP_MM);
    // The mean along the arc: the trapezoidal rule over the samples.
    let d: Vec<f64> = samples.iter().map(distance).collect();
    let (mut integral, mut length) = (0.0, 0.0);
    for i in 1..samples.len() {
        let h = (Vector3::from(samples[i]) - Vector3::from(samples[i - 1])).norm();
        integral += 0.5 * (d[i - 1] + d[i]) * h;
        length += h;
    }
    let mean = if length > 0.0 {
        integral / length
    } else {
        d.first().copied().unwrap_or(0.0)
    };
    let (mut max, mut at) = (0.0, contour.first().copied().unwrap_or_default());
    for p in contour.iter().chain(&samples) {
        let d = distance(p);
        if d > max {
            max = d;
            at = *p;
        }
    }
    ContourDeviation {
        mean_mm: mean,
        max_mm: max,
        at_mm: at,
    }
}

/// Limits of a proposal.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProposeLimits {
    /// The segment count; `None`: the fewest from 1 to 4 that meets both deviation limits.
    pub count: Option<usize>,
    /// Shortest segment, mm.
    pub min_length_mm: f64,
    /// Largest mean deviation from the contour, mm.
    pub max_mean_deviation_mm: f64,
    /// Largest deviation anywhere, mm.
    pub max_deviation_mm: f64,
}

/// Segment ends proposed on a contour.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EndsProposal {
    /// The ends, `count + 1` points in contour order (the first and last are the contour's ends).
    pub ends_mm: Vec<[f64; 3]>,
    /// Arc length of each end along the contour, mm.
    pub ends_arc_mm: Vec<f64>,
    /// How far the chords lie from the contour.
    pub deviation: ContourDeviation,
    /// Whether the deviation is within both limits.
    pub within_limits: bool,
}

/// Deviation of the contour between arc lengths `s0` and `s1` from their chord: the largest (over the contour's
/// points between them, where it lies on a polyline) and the integral of its square (samples every 0.25 mm).
struct Span<'a> {
    points: &'a [[f64; 3]],
    lengths: &'a [f64],
}

impl Span<'_> {
    fn max(&self, s0: f64, s1: f64) -> f64 {
        let (a, b) = (
            point_at(self.points, self.lengths, s0),
            point_at(self.points, self.lengths, s1),
        );
        let lo = self.lengths.partition_point(|&l| l <= s0);
        let hi = self.lengths.partition_point(|&l| l < s1);
        (lo..hi)
            .map(|i| segment_distance(&Vector3::from(self.points[i]), &a, &b))
            .fold(0.0, f64::max)
    }

    fn squares(&self, s0: f64, s1: f64) -> f64 {
        let (a, b) = (
            point_at(self.points, self.lengths, s0),
            point_at(self.points, self.lengths, s1),
        );
        let n = (((s1 - s0) / SAMPLE_STEP_MM).ceil() as usize).max(1);
        let h = (s1 - s0) / n as f64;
        (0..n)
            .map(|i| {
                let p = point_at(self.points, self.lengths, s0 + (i as f64 + 0.5) * h);
                segment_distance(&p, &a, &b).powi(2) * h
            })
            .sum()
    }

    fn chord(&self, s0: f64, s1: f64) -> f64 {
        (point_at(self.points, self.lengths, s1) - point_at(self.points, self.lengths, s0)).norm()
    }
}

/// The best ends for exactly `count` segments: see the module documentation. `None` when no chords of at least
/// `min_length_mm` fit.
fn best_ends(span: &Span, count: usize, min_length_mm: f64) -> Option<Vec<f64>> {
    let total = span.lengths[span.lengths.len() - 1];
    let n = ((total / GRID_STEP_MM).ceil() as usize).max(count);
    let s = |i: usize| total * i as f64 / n as f64;
    // cost[i][j]: (max, squares) of the chord from grid point i to j, or None when shorter than the minimum.
    let cost = |i: usize, j: usize| -> Option<(f64, f64)> {
        (span.chord(s(i), s(j)) >= min_length_mm).then(|| (span.max(s(i), s(j)), span.squares(s(i), s(j))))
    };
    let better = |a: (f64, f64), b: (f64, f64)| a.0 < b.0 - 1e-12 || (a.0 <= b.0 + 1e-12 && a.1 < b.1);
    // best[k][j]: the best (max, squares, previous) of k chords from point 0 to point j.
    let mut best: Vec<Vec<Option<(f64, f64, usize)>>> = vec![vec![None; n + 1]; count + 1];
    best[0][0] = Some((0.0, 0.0, 0));
    let pairs: Vec<Vec<Option<(f64, f64)>>> = (0..=n)
        .map(|i| (0..=n).map(|j| if j > i { cost(i, j) } else { None }).collect())
        .collect();
    for k in 1..=count {
        for j in 1..=n {
            let mut here: Option<(f64, f64, usize)> = None;
            for i in 0..j {
                let (Some((m0, q0, _)), Some((m, q))) = (best[k - 1][i], pairs[i][j]) else {
                    continue;
                };
                let candidate = (m0.max(m), q0 + q, i);
                if here.is_none_or(|h| better((candidate.0, candidate.1), (h.0, h.1))) {
                    here = Some(candidate);
                }
            }
            best[k][j] = here;
        }
    }
    best[count][n]?;
    let mut ends = vec![n; count + 1];
    for k in (1..=count).rev() {
        ends[k - 1] = best[k][ends[k]].expect("on the best path").2;
    }
    let mut arc: Vec<f64> = ends.iter().map(|&i| s(i)).collect();
    // Balance each inner end between its neighbours.
    for _ in 0..30 {
        let mut moved = 0.0f64;
        for k in 1..count {
            let (lo, hi) = (arc[k - 1], arc[k + 1]);
            let f = |x: f64| {
                let too_short = span.chord(lo, x) < min_length_mm || span.chord(x, hi) < min_length_mm;
                if too_short {
                    f64::INFINITY
                } else {
                    span.max(lo, x).max(span.max(x, hi))
                }
            };
            let (mut a, mut b) = (lo, hi);
            for _ in 0..60 {
                let (m1, m2) = (a + (b - a) / 3.0, b - (b - a) / 3.0);
                if f(m1) <= f(m2) {
                    b = m2;
                } else {
                    a = m1;
                }
            }
            let x = 0.5 * (a + b);
            if f(x) < f(arc[k]) {
                moved = moved.max((x - arc[k]).abs());
                arc[k] = x;
            }
        }
        if moved < 1e-6 {
            break;
        }
    }
    Some(arc)
}

/// Proposes the segment ends on `contour`: see the module documentation.
pub fn propose_ends(contour: &[[f64; 3]], limits: &ProposeLimits) -> Result<EndsProposal, FlapError> {
    if contour.len() < 2 {
        return Err(FlapError::Contour("a contour needs at least two points".into()));
    }
    for (what, v) in [
        ("minimum segment length (mm)", limits.min_length_mm),
        ("largest mean deviation (mm)", limits.max_mean_deviation_mm),
        ("largest deviation (mm)", limits.max_deviation_mm),
    ] {
        if !(v.is_finite() && v > 0.0) {
            return Err(FlapError::BadValue {
                what: what.into(),
                value: v,
                expected: "a positive number".into(),
            });
        }
    }
    if let Some(c) = limits.count.filter(|c| !(1..=4).contains(c)) {
        return Err(FlapError::BadValue {
            what: "segment count".into(),
            value: c as f64,
            expected: "1 to 4".into(),
        });
    }
    let lengths = arc_lengths(contour);
    let total = lengths[lengths.len() - 1];
    if !(total.is_finite() && total <= MAX_CONTOUR_MM) {
        return Err(FlapError::Contour(format!(
            "the contour is {total:.1} mm long; a mandible's is under {MAX_CONTOUR_MM} mm: check its points"
        )));
    }
    let span = Span {
        points: contour,
        lengths: &lengths,
    };
    let counts: Vec<usize> = match limits.count {
        Some(c) => vec![c],
        None => (1..=4).collect(),
    };
    let mut last = None;
    for &count in &counts {
        let Some(arc) = best_ends(&span, count, limits.min_length_mm) else {
            continue;
        };
        let ends_mm: Vec<[f64; 3]> = arc
            .iter()
            .map(|&s| {
                let p = point_at(contour, &lengths, s);
                [p.x, p.y, p.z]
            })
            .collect();
        let deviation = deviation(contour, &ends_mm);
        let within_limits =
            deviation.max_mm <= limits.max_deviation_mm && deviation.mean_mm <= limits.max_mean_deviation_mm;
        let proposal = EndsProposal {
            ends_mm,
            ends_arc_mm: arc,
            deviation,
            within_limits,
        };
        if within_limits || limits.count.is_some() {
            return Ok(proposal);
        }
        last = Some(proposal);
    }
    // The fewest-count search found none within the limits: the most segments that fit, marked as outside them.
    last.ok_or_else(|| FlapError::NoSegmentation {
        count_text: match limits.count {
            Some(c) => format!("{c} segment(s)"),
            None => "1 to 4 segments".into(),
        },
        min_length_mm: limits.min_length_mm,
        length_mm: lengths[lengths.len() - 1],
        hint: ": lower the minimum segment length or the segment count".into(),
    })
}
