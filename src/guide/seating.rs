//! The seating analysis: how far a seated guide can slide or turn on the bone before its contact surface meets it.
//!
//! Why: a guide is only as accurate as its seating. Every check before this one looks at the guide standing still;
//! a pad on a flat or a straight stretch of bone passes them all and still slides with the saw. None of the tools
//! our users have today measures this.
//!
//! How: in the guide's frame (`w` the seating direction) the bone is a height field `B(u, v)`, its top seen along
//! `-w`, exact per grid column (the same sampling as the pad's underside). The guide's contact points are the
//! vertices of its underside. A rigid motion moves them; the guide touches the bone when a moved point comes down to
//! `B` at its new `(u, v)`. For translations in 32 directions perpendicular to `w` and for rotations both ways about
//! `u`, `v` and `w` through the contact centroid, the motion grows in coarse steps until a point touches, then
//! bisects to 1/1024 of a step. Lifting along `w` is the way off the bone and is not play. A motion that reaches the
//! search limit without touching is reported as unlimited.

use nalgebra::{Rotation3, Unit, Vector3};
use rayon::prelude::*;
use serde::Serialize;

use super::heightfield::{offset_top_surface, GuideFrame, HeightGrid};
use crate::mesh::Mesh;

/// Translations searched up to this, mm: beyond it a guide "slides without limit".
pub const TRANSLATION_LIMIT_MM: f64 = 5.0;
/// Rotations searched up to this, degrees: beyond it a guide "turns without limit".
pub const ROTATION_LIMIT_DEG: f64 = 10.0;
/// Coarse steps of the search (then bisected 10 times).
const TRANSLATION_STEP_MM: f64 = 0.1;
const ROTATION_STEP_DEG: f64 = 0.2;
const BISECTIONS: usize = 10;
/// Directions of translation perpendicular to the seating direction.
const DIRECTIONS: usize = 32;

/// How far the seated guide can move before it touches the bone.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SeatingPlay {
    /// The largest translation perpendicular to the seating direction, mm; `None`: at least
    /// [`TRANSLATION_LIMIT_MM`] (it slides without limit).
    pub translation_mm: Option<f64>,
    /// The direction of that translation, unit, patient LPS.
    pub translation_direction: [f64; 3],
    /// The smallest translation over the directions, mm (how tightly it is held in its best direction).
    pub tightest_translation_mm: f64,
    /// The largest rotation about an axis through the contact centroid, degrees; `None`: at least
    /// [`ROTATION_LIMIT_DEG`].
    pub rotation_deg: Option<f64>,
    /// The axis of that rotation (right-handed, unit, patient LPS).
    pub rotation_axis: [f64; 3],
    /// The smallest rotation over the six (how tightly it is held against its best turn), degrees.
    pub tightest_rotation_deg: f64,
    /// The rotation about the seating direction alone (in-plane turning), degrees, the larger of both senses;
    /// `None` when unlimited.
    pub rotation_about_seating_deg: Option<f64>,
    /// The centroid of the contact points, patient LPS mm (the rotations' pivot).
    pub centroid_mm: [f64; 3],
    /// Contact points the analysis moved (at the outline all, inside one per cell of twice the grid spacing).
    pub contact_points: usize,
}

/// The contact a footprint drawn on the bone would give, before any guide is built: what the design window shows
/// while the engineer drags the footprint's vertices.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FootprintContact {
    /// Area of the footprint seen along the seating direction, mm^2.
    pub area_mm2: f64,
    /// Area of it with bone under it (the pad's contact surface), mm^2.
    pub contact_area_mm2: f64,
    /// The seating play of that contact surface (`None`: no contact at all).
    pub play: Option<SeatingPlay>,
}

/// Why a footprint's contact cannot be measured.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ContactError {
    /// The seating direction has no length.
    #[error("the seating direction has no length")]
    Seating,
    /// The outline is not a simple polygon seen along the seating direction.
    #[error(transparent)]
    Footprint(#[from] super::footprint::FootprintError),
}

/// The contact of the footprint `outline_mm` seated along `seating_direction` on `bone`, the bone grown by
/// `bone_offset_mm` (the pad's underside), sampled every `spacing_mm`: the same contact surface and seating analysis
/// as the proposal's (`super::propose`), so a dragged vertex shows what the build will measure within a grid cell.
pub fn footprint_contact(
    bone: &Mesh,
    seating_direction: [f64; 3],
    outline_mm: &[[f64; 3]],
    bone_offset_mm: f64,
    spacing_mm: f64,
) -> Result<FootprintContact, ContactError> {
    let n = outline_mm.len().max(1) as f64;
    let centre = outline_mm.iter().fold(Vector3::zeros(), |a, q| a + Vector3::from(*q)) / n;
    let frame = GuideFrame::new(centre.into(), Vector3::from(seating_direction)).ok_or(ContactError::Seating)?;
    let footprint = super::footprint::Footprint::new(&frame, outline_mm)?;
    let [u0, v0, u1, v1] = footprint.bounds_mm();
    let template = HeightGrid::around([u0, v0], [u1, v1], 0.0, spacing_mm);
    let top = offset_top_surface(bone, &frame, &template, bone_offset_mm);
    let contact: Vec<[f64; 3]> = (0..top.nv)
        .flat_map(|j| (0..top.nu).map(move |i| (i, j)))
        .filter_map(|(i, j)| {
            let (u, v) = top.uv(i, j);
            let w = top.w_mm[j * top.nu + i];
            (w.is_finite() && footprint.contains(u, v)).then(|| frame.patient_from_frame(&Vector3::new(u, v, w)).into())
        })
        .collect();
    Ok(FootprintContact {
        area_mm2: footprint.area_mm2(),
        contact_area_mm2: contact.len() as f64 * spacing_mm * spacing_mm,
        play: seating_play(bone, &frame, &contact, spacing_mm),
    })
}

/// Measures the play of a guide whose underside points are `contact_mm` (patient LPS mm), seated in `frame`, on
/// `bone`, sampling the bone's top on a grid of `spacing_mm`. `None` when there is no contact point.
pub fn seating_play(bone: &Mesh, frame: &GuideFrame, contact_mm: &[[f64; 3]], spacing_mm: f64) -> Option<SeatingPlay> {
    if contact_mm.is_empty() || spacing_mm.is_nan() || spacing_mm <= 0.0 {
        return None;
    }
    let points: Vec<Vector3<f64>> = contact_mm
        .iter()
        .map(|p| frame.frame_from_patient(&(*p).into()))
        .collect();
    let centroid = points.iter().sum::<Vector3<f64>>() / points.len() as f64;
    // The bone's top over the contact points' rectangle grown by the farthest any point can move.
    let reach = points.iter().map(|p| (p - centroid).norm()).fold(0.0f64, f64::max) * ROTATION_LIMIT_DEG.to_radians()
        + TRANSLATION_LIMIT_MM
        + 2.0 * spacing_mm;
    let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
    for p in &points {
        lo = [lo[0].min(p.x), lo[1].min(p.y)];
        hi = [hi[0].max(p.x), hi[1].max(p.y)];
    }
    let template = HeightGrid::around(lo, hi, reach, spacing_mm);
    let top = offset_top_surface(bone, frame, &template, 0.0);
    // Inside the outline, one point per cell of twice the grid spacing, the one closest to the bone below it (the
    // first to touch there): the underside's vertices are the grid's nodes, and a feature that holds a guide is wider
    // than two of them. In cells at the outline every point stays: the farthest points decide the rotations.
    let gap = |p: &Vector3<f64>| top.interpolate(p.x, p.y).map_or(f64::INFINITY, |b| p.z - b);
    let cell_of = |p: &Vector3<f64>| {
        (
            ((p.x - template.u0_mm) / (2.0 * spacing_mm)).floor() as i64,
            ((p.y - template.v0_mm) / (2.0 * spacing_mm)).floor() as i64,
        )
    };
    let mut cells: Vec<((i64, i64), f64, usize)> = points
        .iter()
        .enumerate()
        .map(|(i, p)| (cell_of(p), gap(p), i))
        .collect();
    cells.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)).then(a.2.cmp(&b.2)));
    let occupied: std::collections::BTreeSet<(i64, i64)> = cells.iter().map(|c| c.0).collect();
    let at_outline = |(x, y): (i64, i64)| (-1..=1).any(|dx| (-1..=1).any(|dy| !occupied.contains(&(x + dx, y + dy))));
    let mut kept: Vec<usize> = Vec::with_capacity(cells.len());
    for (k, c) in cells.iter().enumerate() {
        if k == 0 || cells[k - 1].0 != c.0 || at_outline(c.0) {
            kept.push(c.2);
        }
    }
    kept.sort_unstable();
    let points: Vec<Vector3<f64>> = kept.iter().map(|&i| points[i]).collect();
    let touches = |moved: &dyn Fn(&Vector3<f64>) -> Vector3<f64>| {
        points.iter().any(|p| {
            let q = moved(p);
            top.interpolate(q.x, q.y).is_some_and(|b| q.z <= b)
        })
    };
    // The first amount of a motion at which it touches, searched in `step`s up to `limit`, then bisected.
    let first_touch = |motion: &(dyn Fn(f64, &Vector3<f64>) -> Vector3<f64> + Sync), step: f64, limit: f64| {
        let mut free = 0.0;
        let mut amount = step;
        while amount <= limit + 1e-12 {
            if touches(&|p| motion(amount, p)) {
                let mut hit = amount;
                for _ in 0..BISECTIONS {
                    let mid = 0.5 * (free + hit);
                    if touches(&|p| motion(mid, p)) {
                        hit = mid;
                    } else {
                        free = mid;
                    }
                }
                return Some(hit);
            }
            free = amount;
            amount += step;
        }
        None
    };
    let translations: Vec<(Vector3<f64>, Option<f64>)> = (0..DIRECTIONS)
        .into_par_iter()
        .map(|k| {
            let a = k as f64 / DIRECTIONS as f64 * std::f64::consts::TAU;
            let d = Vector3::new(a.cos(), a.sin(), 0.0);
            let play = first_touch(&|s, p| p + d * s, TRANSLATION_STEP_MM, TRANSLATION_LIMIT_MM);
            (d, play)
        })
        .collect();
    let rotations: Vec<(Vector3<f64>, Option<f64>)> = [
        Vector3::x(),
        -Vector3::x(),
        Vector3::y(),
        -Vector3::y(),
        Vector3::z(),
        -Vector3::z(),
    ]
    .into_par_iter()
    .map(|axis| {
        let unit = Unit::new_normalize(axis);
        let play = first_touch(
            &|deg, p| centroid + Rotation3::from_axis_angle(&unit, deg.to_radians()) * (p - centroid),
            ROTATION_STEP_DEG,
            ROTATION_LIMIT_DEG,
        );
        (axis, play)
    })
    .collect();
    // Largest over the motions, `None` (unlimited) first; ties to the first in order.
    let largest = |plays: &[(Vector3<f64>, Option<f64>)]| {
        let mut best = 0;
        for (i, (_, play)) in plays.iter().enumerate() {
            let better = match (play, plays[best].1) {
                (None, Some(_)) => true,
                (Some(a), Some(b)) => *a > b,
                _ => false,
            };
            if better {
                best = i;
            }
        }
        best
    };
    let patient = |v: Vector3<f64>| -> [f64; 3] { (frame.axes * v).into() };
    let t = largest(&translations);
    let r = largest(&rotations);
    let about_w = match (rotations[4].1, rotations[5].1) {
        (Some(a), Some(b)) => Some(a.max(b)),
        _ => None,
    };
    Some(SeatingPlay {
        translation_mm: translations[t].1,
        translation_direction: patient(translations[t].0),
        tightest_translation_mm: translations
            .iter()
            .map(|(_, p)| p.unwrap_or(TRANSLATION_LIMIT_MM))
            .fold(f64::INFINITY, f64::min),
        rotation_deg: rotations[r].1,
        tightest_rotation_deg: rotations
            .iter()
            .map(|(_, p)| p.unwrap_or(ROTATION_LIMIT_DEG))
            .fold(f64::INFINITY, f64::min),
        rotation_axis: patient(rotations[r].0),
        rotation_about_seating_deg: about_w,
        centroid_mm: frame.patient_from_frame(&centroid).into(),
        contact_points: points.len(),
    })
}

#[cfg(test)]
mod tests {
    use nalgebra::Point3;

    use super::*;

    const OFFSET_MM: f64 = 0.3;
    const SPACING_MM: f64 = 0.25;

    /// The surface `z = f(x, y)` triangulated on a grid of `step` over `[-half, half]^2`, where `f` is defined.
    fn height_field(f: &dyn Fn(f64, f64) -> Option<f64>, half: f64, step: f64) -> Mesh {
        let n = (2.0 * half / step).round() as usize + 1;
        let mut positions = Vec::new();
        let mut index = vec![None; n * n];
        for j in 0..n {
            for i in 0..n {
                let (x, y) = (-half + i as f64 * step, -half + j as f64 * step);
                if let Some(z) = f(x, y) {
                    index[j * n + i] = Some(positions.len() as u32);
                    positions.push([x, y, z]);
                }
            }
        }
        let mut triangles = Vec::new();
        for j in 0..n - 1 {
            for i in 0..n - 1 {
                let k = j * n + i;
                if let (Some(a), Some(b), Some(c), Some(d)) = (index[k], index[k + 1], index[k + n], index[k + n + 1]) {
                    triangles.push([a, b, d]);
                    triangles.push([a, d, c]);
                }
            }
        }
        Mesh { positions, triangles }
    }

    /// Contact points on the grid of the play's spacing where `inside(x, y)`, at height `g(x, y)`.
    fn contact(inside: &dyn Fn(f64, f64) -> bool, g: &dyn Fn(f64, f64) -> f64, half: f64) -> Vec<[f64; 3]> {
        let n = (2.0 * half / SPACING_MM).round() as i64;
        let mut out = Vec::new();
        for j in -n..=n {
            for i in -n..=n {
                let (x, y) = (i as f64 * SPACING_MM, j as f64 * SPACING_MM);
                if inside(x, y) {
                    out.push([x, y, g(x, y)]);
                }
            }
        }
        out
    }

    fn from_above() -> GuideFrame {
        GuideFrame::new(Point3::origin(), Vector3::new(0.0, 0.0, -1.0)).expect("frame")
    }

    /// Sliding across a cylinder of radius `r` (or a sphere) until a rim point of a pad of half-width `a`, at the
    /// offset `d`, comes down onto the bone: `a - sqrt(a^2 - 2 r d - d^2)` (worked out by hand from the circle).
    fn across_by_hand(r: f64, a: f64, d: f64) -> f64 {
        a - (a * a - 2.0 * r * d - d * d).sqrt()
    }

    #[test]
    fn a_pad_on_a_flat_plate_slides_and_turns_without_limit_and_tilts_by_the_offset_over_its_half_length() {
        let bone = height_field(&|_, _| Some(0.0), 20.0, 0.5);
        let pad = contact(&|x, y| x.abs() <= 10.0 && y.abs() <= 5.0, &|_, _| OFFSET_MM, 12.0);
        let play = seating_play(&bone, &from_above(), &pad, SPACING_MM).expect("contact points");
        assert_eq!(play.translation_mm, None, "{play:?}");
        assert_eq!(play.tightest_translation_mm, TRANSLATION_LIMIT_MM);
        assert_eq!(play.rotation_about_seating_deg, None);
        assert_eq!(play.rotation_deg, None);
        // Tilting about the short axis lowers the far end (10 mm away) by the offset.
        let by_hand = (OFFSET_MM / 10.0).asin().to_degrees();
        assert!(
            (play.tightest_rotation_deg - by_hand).abs() < 0.005,
            "{} vs {by_hand}",
            play.tightest_rotation_deg
        );
    }

    #[test]
    fn a_pad_on_a_cylinder_slides_along_its_axis_only() {
        let r = 10.0;
        let bone = height_field(&|_, y: f64| (y.abs() < 9.9).then(|| (r * r - y * y).sqrt()), 20.0, 0.1);
        let a = 6.0;
        let grown = r + OFFSET_MM;
        let pad = contact(
            &|x, y| x.abs() <= 8.0 && y.abs() <= a,
            &|_, y| (grown * grown - y * y).sqrt(),
            10.0,
        );
        let play = seating_play(&bone, &from_above(), &pad, SPACING_MM).expect("contact points");
        assert_eq!(play.translation_mm, None, "{play:?}");
        // The direction it slides: along the axis (x).
        assert!(
            play.translation_direction[0].abs() > 0.999,
            "{:?}",
            play.translation_direction
        );
        let by_hand = across_by_hand(r, a, OFFSET_MM);
        assert!(
            (play.tightest_translation_mm - by_hand).abs() < 0.01,
            "across {} vs {by_hand}",
            play.tightest_translation_mm
        );
    }

    #[test]
    fn a_pad_on_a_sphere_is_held_in_every_direction_and_turns_freely_about_the_seating_direction() {
        let r = 10.0;
        let bone = height_field(
            &|x: f64, y: f64| (x * x + y * y < 9.9 * 9.9).then(|| (r * r - x * x - y * y).sqrt()),
            11.0,
            0.1,
        );
        let a = 6.0;
        let grown = r + OFFSET_MM;
        let pad = contact(
            &|x, y| x * x + y * y <= a * a,
            &|x, y| (grown * grown - x * x - y * y).sqrt(),
            7.0,
        );
        let play = seating_play(&bone, &from_above(), &pad, SPACING_MM).expect("contact points");
        let by_hand = across_by_hand(r, a, OFFSET_MM);
        let most = play.translation_mm.expect("held");
        assert!((most - by_hand).abs() < 0.03, "largest {most} vs {by_hand}");
        assert!(
            (play.tightest_translation_mm - by_hand).abs() < 0.03,
            "smallest {}",
            play.tightest_translation_mm
        );
        assert_eq!(play.rotation_about_seating_deg, None, "{play:?}");
    }

    #[test]
    fn no_contact_point_gives_no_play() {
        let bone = height_field(&|_, _| Some(0.0), 5.0, 0.5);
        assert_eq!(seating_play(&bone, &from_above(), &[], SPACING_MM), None);
    }

    /// A footprint drawn on a flat plate, half of it beyond the plate's edge: the area seen along the seating
    /// direction is the polygon's, the contact only the half over bone (to a grid cell), and nothing holds it.
    #[test]
    fn a_footprint_half_over_the_edge_of_a_plate_touches_with_half_its_area_and_slides() {
        let plate = height_field(&|x, _| (x <= 0.0).then_some(0.0), 10.0, 0.5);
        let outline = [[-4.0, -3.0, 0.0], [4.0, -3.0, 0.0], [4.0, 3.0, 0.0], [-4.0, 3.0, 0.0]];
        let c = footprint_contact(&plate, [0.0, 0.0, -1.0], &outline, OFFSET_MM, 0.5).expect("contact");
        assert!((c.area_mm2 - 48.0).abs() < 1e-9, "{c:?}");
        // Half of 8 x 6 mm over bone: 24 mm^2, to within the 0.5 mm strip along the half's 14 mm of outline (nodes on
        // the outline count on one side only).
        assert!((c.contact_area_mm2 - 24.0).abs() <= 14.0 * 0.5, "{c:?}");
        assert!(c.contact_area_mm2 < 0.75 * c.area_mm2, "{c:?}");
        let play = c.play.expect("in contact");
        assert_eq!(play.translation_mm, None, "a flat plate holds nothing: {play:?}");
        // A footprint that crosses itself is refused by name.
        let bow = [[-4.0, -3.0, 0.0], [4.0, 3.0, 0.0], [4.0, -3.0, 0.0], [-4.0, 3.0, 0.0]];
        let err = footprint_contact(&plate, [0.0, 0.0, -1.0], &bow, OFFSET_MM, 0.5).expect_err("crossing");
        assert!(err.to_string().contains("crosses itself"), "{err}");
    }
}
