//! A proposed seating direction and footprint for a guide, from its slots and channels, grown until the guide holds.
//!
//! Why: drawing a footprint is where engineers lose time and where guides go wrong (a pad on a straight stretch of
//! bone slides; a pad over steep bone is refused). The proposal is ordinary plan values (a direction and an outline
//! of points on the bone) that the engineer can edit, and the guide built from it is checked like any other.
//!
//! How, in the guide frame of the proposed seating direction (`w` away from the bone):
//! 1. Anchors: each drill's entry on the bone and each cutting plane's point (deeper in the bone: the nearest point
//!    of its cut's contour; put it on the surface the guide sits on), with the bone's outward normal there (averaged over the triangles within [`NORMAL_RADIUS_MM`]). The seating direction is minus the mean normal.
//! 2. The bone seen along the seating direction: its top `B(u, v)` on a grid of [`GRID_MM`]; a node is usable when
//!    the bone there faces the guide within [`MAX_SLOPE_DEG`]; the usable nodes connected to the anchors form the
//!    region the footprint may cover.
//! 3. Start: the nodes within [`START_RADIUS_MM`] of an anchor, of the plane's trace near its point (where the slot
//!    housing stands), of a segment [`KEPT_SIDE_MM`] into the bone a resecting plane keeps (the screws go there),
//!    and of the segments between anchors (one pad). Then grow by [`GROW_STEP_MM`] at a time,
//!    within the usable region, until the seating play of the contact surface (`super::seating`) is within
//!    a share (`margin`, e.g. [`PROPOSAL_MARGINS`]) of the template's thresholds, or the region cannot grow.
//! 4. The outline: the boundary of the region's cells, simplified to within [`SIMPLIFY_MM`], lifted onto the bone.

use std::collections::{BTreeMap, VecDeque};

use nalgebra::{Point3, Vector3};

use super::build::{ChannelSpec, SlotSpec};
use super::heightfield::{offset_top_surface, GuideFrame, HeightGrid};
use super::seating::{seating_play, SeatingPlay};
use crate::measure::{segment_distance_2d as segment_distance, BoneQuery};
use crate::template::SeatingParams;

/// Radius (mm) over which bone normals are averaged at an anchor.
pub const NORMAL_RADIUS_MM: f64 = 3.0;
/// Spacing of the proposal's grid, mm.
pub const GRID_MM: f64 = 0.5;
/// Bone steeper than this (degrees between its normal and `w`) is not covered.
pub const MAX_SLOPE_DEG: f64 = 50.0;
/// The first region: this far (mm) around the anchors (walls, barrels and fixation holes need room).
pub const START_RADIUS_MM: f64 = 6.0;
/// Half-length (mm) of a plane's trace covered around its point (the slot housing's reach over the bone).
pub const SLOT_TRACE_MM: f64 = 10.0;
/// One growth step, mm.
pub const GROW_STEP_MM: f64 = 2.0;
/// Growth steps at most (the region then reaches about 40 mm beyond the first one).
pub const MAX_GROW_STEPS: usize = 20;
/// How far (mm) around the anchors the bone is looked at.
const SEARCH_MM: f64 = 50.0;
/// Shares of the template's seating thresholds a proposal is grown to, in the order the case layer tries them: the
/// built underside is sampled finer than this grid and cut to the simplified outline, and its play came out up to
/// 40 % larger than the proposal's on the real cranium; a smaller footprint is the fallback when the larger one
/// does not build.
pub const PROPOSAL_MARGINS: [f64; 3] = [0.7, 0.85, 1.0];
/// Tolerance of the outline's simplification, mm.
pub const SIMPLIFY_MM: f64 = 0.8;

/// Why no footprint could be proposed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProposeError {
    /// The guide has neither planes nor drills to cover.
    #[error("the guide has no cutting plane and no drill: nothing to place a footprint around")]
    NothingToCover,
    /// A drill's axis does not meet the bone near its entry.
    #[error("drill '{0}': its axis does not meet the bone within 20 mm of its entry")]
    DrillMissesBone(String),
    /// No bone near an anchor.
    #[error("{0}: no bone within {NORMAL_RADIUS_MM} mm of its point")]
    NoBoneNear(String),
    /// The anchors' normals cancel out (anchors on opposite sides of the bone).
    #[error("the planes and drills face opposite ways (their bone normals cancel); give a seating direction")]
    NoSeatingDirection,
    /// Nothing usable under the anchors.
    #[error(
        "no bone faces the seating direction {0:?} at the planes and drills (all steeper than {MAX_SLOPE_DEG} deg)"
    )]
    NoUsableBone([f64; 3]),
}

/// The proposal.
#[derive(Clone, Debug, PartialEq)]
pub struct Proposal {
    /// Unit seating direction (into the bone), patient LPS.
    pub seating_direction: [f64; 3],
    /// The footprint: points on the bone, patient LPS mm, in order.
    pub outline_mm: Vec<[f64; 3]>,
    /// The seating play of the proposed contact surface (the built guide is checked again).
    pub play: Option<SeatingPlay>,
    /// Whether that play is within the thresholds.
    pub holds: bool,
    /// Growth steps taken.
    pub grow_steps: usize,
    /// Area of the footprint seen along the seating direction, mm^2.
    pub area_mm2: f64,
}

/// An anchor: a point the guide must cover, with the bone's outward normal there.
struct Anchor {
    point: Vector3<f64>,
    normal: Vector3<f64>,
    /// A plane's normal (its trace is covered too).
    plane_normal: Option<Vector3<f64>>,
    /// Into the side the plane removes: the footprint reaches [`KEPT_SIDE_MM`] into the other side, for the screws.
    removes: Option<Vector3<f64>>,
}

/// How far (mm) the first region reaches beyond a resecting plane into the bone that remains, where the fixation
/// screws go (a hole, its walls and the slot housing's wall).
pub const KEPT_SIDE_MM: f64 = 12.0;

/// Proposes a seating direction and a footprint for a guide with `slots` and `channels` on `bone`, with bone offset
/// `bone_offset_mm` and the seating thresholds `allowed`, grown until its play is within `margin` of them.
pub fn propose_footprint(
    bone: &BoneQuery,
    slots: &[SlotSpec],
    channels: &[ChannelSpec],
    bone_offset_mm: f64,
    allowed: &SeatingParams,
    margin: f64,
) -> Result<Proposal, ProposeError> {
    if slots.is_empty() && channels.is_empty() {
        return Err(ProposeError::NothingToCover);
    }
    let mut anchors = Vec::new();
    for c in channels {
        let d = Vector3::from(c.direction).normalize();
        let start = Vector3::from(c.entry_mm) - d * 10.0;
        let hit = bone
            .crossings(start.into(), d.into(), 0.0, 30.0)
            .ok()
            .and_then(|hits| hits.into_iter().find(|h| h.entering))
            .ok_or_else(|| ProposeError::DrillMissesBone(c.name.clone()))?;
        let point = Vector3::from(hit.point_mm);
        let normal = mean_normal(bone, point).ok_or_else(|| ProposeError::NoBoneNear(format!("drill '{}'", c.name)))?;
        anchors.push(Anchor {
            point,
            normal,
            plane_normal: None,
            removes: None,
        });
    }
    for s in slots {
        // The plane's point, or when it lies deeper in the bone, the nearest point of its cut's contour.
        let mut point = Vector3::from(s.point_mm);
        if mean_normal(bone, point).is_none() {
            if let Ok(section) = bone.section(s.point_mm, s.normal) {
                let piece = section.piece_at(s.point_mm);
                if let Some(nearest) = piece
                    .section
                    .loops
                    .iter()
                    .flat_map(|l| l.points_mm.iter())
                    .min_by(|a, b| {
                        (Vector3::from(**a) - point)
                            .norm_squared()
                            .total_cmp(&(Vector3::from(**b) - point).norm_squared())
                    })
                {
                    point = Vector3::from(*nearest);
                }
            }
        }
        let normal = mean_normal(bone, point).ok_or_else(|| ProposeError::NoBoneNear(format!("plane '{}'", s.name)))?;
        anchors.push(Anchor {
            point,
            normal,
            plane_normal: Some(Vector3::from(s.normal).normalize()),
            removes: s.removes.map(|d| Vector3::from(d).normalize()),
        });
    }
    let sum: Vector3<f64> = anchors.iter().map(|a| a.normal).sum();
    let seating = -sum.try_normalize(1e-6).ok_or(ProposeError::NoSeatingDirection)?;
    let mut best = grow(bone, &anchors, seating, bone_offset_mm, allowed, margin)?;
    // Still sliding: tilt the seating direction away from the way it slides, so that way becomes part of lifting
    // off and the bone on the far side of a bend holds it (a pad seated square onto a straight stretch cannot be
    // held along it by any footprint).
    for tilt_deg in TILTS_DEG {
        let Some(play) = best.play.as_ref().filter(|_| !best.holds) else {
            break;
        };
        if play.translation_mm.is_some_and(|t| t <= allowed.max_play_mm) {
            break;
        }
        let slide = Vector3::from(play.translation_direction);
        let tilted = (Vector3::from(best.seating_direction) * tilt_deg.to_radians().cos()
            - slide * tilt_deg.to_radians().sin())
        .normalize();
        let candidate = grow(bone, &anchors, tilted, bone_offset_mm, allowed, margin)?;
        if candidate.holds || candidate.play.as_ref().map(loose_by) < best.play.as_ref().map(loose_by) {
            best = candidate;
        }
    }
    Ok(best)
}

/// Tilts of the seating direction tried when a square seating slides, degrees.
const TILTS_DEG: [f64; 2] = [30.0, 45.0];

/// How far a play is from holding, for comparing proposals: unlimited motions count as their search limits.
fn loose_by(play: &SeatingPlay) -> f64 {
    play.translation_mm
        .unwrap_or(2.0 * super::seating::TRANSLATION_LIMIT_MM)
        + 0.1 * play.rotation_deg.unwrap_or(2.0 * super::seating::ROTATION_LIMIT_DEG)
}

/// The footprint for one seating direction: the first region around the anchors, grown until it holds.
fn grow(
    bone: &BoneQuery,
    anchors: &[Anchor],
    seating: Vector3<f64>,
    bone_offset_mm: f64,
    allowed: &SeatingParams,
    margin: f64,
) -> Result<Proposal, ProposeError> {
    let mesh = bone.mesh();
    let centre = anchors.iter().map(|a| a.point).sum::<Vector3<f64>>() / anchors.len() as f64;
    let frame = GuideFrame::new(Point3::from(centre), seating).ok_or(ProposeError::NoSeatingDirection)?;
    let flat: Vec<[f64; 2]> = anchors
        .iter()
        .map(|a| {
            let q = frame.frame_from_patient(&Point3::from(a.point));
            [q.x, q.y]
        })
        .collect();

    // The bone seen along the seating direction, and where it is usable.
    let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
    for p in &flat {
        lo = [lo[0].min(p[0]), lo[1].min(p[1])];
        hi = [hi[0].max(p[0]), hi[1].max(p[1])];
    }
    let template = HeightGrid::around(lo, hi, SEARCH_MM, GRID_MM);
    let top = offset_top_surface(mesh, &frame, &template, 0.0);
    let (nu, nv) = (top.nu, top.nv);
    let max_rise = GRID_MM * MAX_SLOPE_DEG.to_radians().tan();
    let usable_node = |i: usize, j: usize| -> bool {
        if i == 0 || j == 0 || i + 1 >= nu || j + 1 >= nv {
            return false;
        }
        let c = top.at(i, j);
        let around = [top.at(i - 1, j), top.at(i + 1, j), top.at(i, j - 1), top.at(i, j + 1)];
        c.is_finite() && around.iter().all(|w| w.is_finite() && (w - c).abs() <= max_rise)
    };
    let usable: Vec<bool> = (0..nv)
        .flat_map(|j| (0..nu).map(move |i| (i, j)))
        .map(|(i, j)| usable_node(i, j))
        .collect();
    let node_of = |p: [f64; 2]| -> (usize, usize) {
        let i = ((p[0] - top.u0_mm) / GRID_MM).round().clamp(0.0, (nu - 1) as f64) as usize;
        let j = ((p[1] - top.v0_mm) / GRID_MM).round().clamp(0.0, (nv - 1) as f64) as usize;
        (i, j)
    };
    // Usable nodes connected to an anchor (4-neighbours).
    let mut reachable = vec![false; nu * nv];
    let mut queue = VecDeque::new();
    for p in &flat {
        let (i, j) = node_of(*p);
        // The anchor's own node, or the nearest usable one within the start radius.
        let r = (START_RADIUS_MM / GRID_MM).ceil() as i64;
        let mut best: Option<(i64, usize)> = None;
        for dj in -r..=r {
            for di in -r..=r {
                let (ii, jj) = (i as i64 + di, j as i64 + dj);
                if ii < 0 || jj < 0 || ii >= nu as i64 || jj >= nv as i64 {
                    continue;
                }
                let k = jj as usize * nu + ii as usize;
                let d2 = di * di + dj * dj;
                if usable[k] && best.is_none_or(|(b, bk)| (d2, k) < (b, bk)) {
                    best = Some((d2, k));
                }
            }
        }
        if let Some((_, k)) = best {
            if !reachable[k] {
                reachable[k] = true;
                queue.push_back(k);
            }
        }
    }
    if queue.is_empty() {
        return Err(ProposeError::NoUsableBone(seating.into()));
    }
    while let Some(k) = queue.pop_front() {
        let (i, j) = (k % nu, k / nu);
        for (di, dj) in [(-1i64, 0i64), (1, 0), (0, -1), (0, 1)] {
            let (ii, jj) = (i as i64 + di, j as i64 + dj);
            if ii < 0 || jj < 0 || ii >= nu as i64 || jj >= nv as i64 {
                continue;
            }
            let kk = jj as usize * nu + ii as usize;
            if usable[kk] && !reachable[kk] {
                reachable[kk] = true;
                queue.push_back(kk);
            }
        }
    }

    // The first region: around the anchors, the planes' traces and the segments between anchors.
    let mut skeleton: Vec<([f64; 2], [f64; 2])> = Vec::new();
    for (a, p) in anchors.iter().zip(&flat) {
        skeleton.push((*p, *p));
        if let Some(pn) = a.plane_normal {
            let trace = pn.cross(&frame.w());
            let t = frame.axes.transpose() * trace;
            if let Some(t2) = Vector3::new(t.x, t.y, 0.0).try_normalize(1e-9) {
                let e = [t2.x * SLOT_TRACE_MM, t2.y * SLOT_TRACE_MM];
                skeleton.push(([p[0] - e[0], p[1] - e[1]], [p[0] + e[0], p[1] + e[1]]));
            }
        }
        if let Some(d) = a.removes {
            let kept = frame.axes.transpose() * (-d);
            if let Some(k2) = Vector3::new(kept.x, kept.y, 0.0).try_normalize(1e-9) {
                skeleton.push((*p, [p[0] + k2.x * KEPT_SIDE_MM, p[1] + k2.y * KEPT_SIDE_MM]));
            }
        }
    }
    for i in 0..flat.len() {
        for j in i + 1..flat.len() {
            skeleton.push((flat[i], flat[j]));
        }
    }
    let uv = |k: usize| top.uv(k % nu, k / nu);
    let mut region: Vec<bool> = (0..nu * nv)
        .map(|k| {
            reachable[k] && {
                let (u, v) = uv(k);
                skeleton
                    .iter()
                    .any(|(a, b)| segment_distance([u, v], *a, *b) <= START_RADIUS_MM)
            }
        })
        .collect();

    let grid = offset_top_surface(mesh, &frame, &top, bone_offset_mm);
    let contact_of = |region: &[bool]| -> Vec<[f64; 3]> {
        (0..nu * nv)
            .filter(|&k| region[k] && grid.w_mm[k].is_finite())
            .map(|k| {
                let (u, v) = uv(k);
                frame.patient_from_frame(&Vector3::new(u, v, grid.w_mm[k])).into()
            })
            .collect()
    };
    let holds_within = |play: &Option<SeatingPlay>, share: f64| {
        play.as_ref().is_some_and(|p| {
            p.translation_mm.is_some_and(|t| t <= share * allowed.max_play_mm)
                && p.rotation_deg.is_some_and(|r| r <= share * allowed.max_play_deg)
        })
    };
    // Shrunk by a node so the outline stays over usable bone; one piece, without holes or cells that touch only at
    // a corner (the outline is then a simple polygon). The play is measured on what will be outlined.
    let finish = |region: &[bool]| {
        let mut region = erode(region, nu, nv);
        loop {
            region = fill_holes(&largest_component(&region, nu, nv), nu, nv);
            if !remove_pinches(&mut region, nu, nv) {
                break;
            }
        }
        region
    };
    let mut outlined = finish(&region);
    let mut play = seating_play(mesh, &frame, &contact_of(&outlined), GRID_MM);
    let mut grow_steps = 0;
    while !holds_within(&play, margin) && grow_steps < MAX_GROW_STEPS {
        let grown = dilate(&region, &reachable, nu, nv, (GROW_STEP_MM / GRID_MM).round() as i64);
        if grown == region {
            break;
        }
        // Growing around bone that is not usable (a hole, a steep pit) would cover it: the pad cannot.
        let candidate = finish(&grown);
        if candidate.iter().zip(&reachable).any(|(&c, &r)| c && !r) {
            break;
        }
        region = grown;
        grow_steps += 1;
        outlined = candidate;
        play = seating_play(mesh, &frame, &contact_of(&outlined), GRID_MM);
    }
    let region = outlined;
    let outline_uv = simplify(&outline(&region, nu, nv, &top), SIMPLIFY_MM);
    let outline_mm: Vec<[f64; 3]> = outline_uv
        .iter()
        .map(|p| {
            let (i, j) = node_of(*p);
            let w = nearest_height(&top, &region, i, j);
            frame.patient_from_frame(&Vector3::new(p[0], p[1], w)).into()
        })
        .collect();
    let area_mm2 = 0.5
        * (0..outline_uv.len())
            .map(|i| {
                let (a, b) = (outline_uv[i], outline_uv[(i + 1) % outline_uv.len()]);
                a[0] * b[1] - b[0] * a[1]
            })
            .sum::<f64>()
            .abs();
    Ok(Proposal {
        seating_direction: seating.into(),
        outline_mm,
        holds: holds_within(&play, 1.0),
        play,
        grow_steps,
        area_mm2,
    })
}

/// Area-weighted mean outward normal of the bone triangles with a vertex within [`NORMAL_RADIUS_MM`] of `p`.
fn mean_normal(bone: &BoneQuery, p: Vector3<f64>) -> Option<Vector3<f64>> {
    let mesh = bone.mesh();
    let r2 = NORMAL_RADIUS_MM * NORMAL_RADIUS_MM;
    let mut sum = Vector3::zeros();
    for t in &mesh.triangles {
        let [a, b, c] = t.map(|v| Vector3::from(mesh.positions[v as usize]));
        if [a, b, c].iter().any(|q| (q - p).norm_squared() <= r2) {
            sum += (b - a).cross(&(c - a));
        }
    }
    sum.try_normalize(1e-12)
}

/// `region` grown by `r` nodes (a disc), within `allowed`.
fn dilate(region: &[bool], allowed: &[bool], nu: usize, nv: usize, r: i64) -> Vec<bool> {
    let mut out = region.to_vec();
    for (k, _) in region.iter().enumerate().filter(|(_, &inside)| inside) {
        let (i, j) = ((k % nu) as i64, (k / nu) as i64);
        for dj in -r..=r {
            for di in -r..=r {
                if di * di + dj * dj > r * r {
                    continue;
                }
                let (ii, jj) = (i + di, j + dj);
                if ii < 0 || jj < 0 || ii >= nu as i64 || jj >= nv as i64 {
                    continue;
                }
                let kk = jj as usize * nu + ii as usize;
                if allowed[kk] {
                    out[kk] = true;
                }
            }
        }
    }
    out
}

/// `region` without the nodes that have a 4-neighbour outside it.
fn erode(region: &[bool], nu: usize, nv: usize) -> Vec<bool> {
    (0..nu * nv)
        .map(|k| {
            let (i, j) = (k % nu, k / nu);
            region[k]
                && i > 0
                && j > 0
                && i + 1 < nu
                && j + 1 < nv
                && region[k - 1]
                && region[k + 1]
                && region[k - nu]
                && region[k + nu]
        })
        .collect()
}

/// The largest 4-connected part of `region` (ties: the one with the lowest node).
fn largest_component(region: &[bool], nu: usize, nv: usize) -> Vec<bool> {
    let mut label = vec![usize::MAX; nu * nv];
    let mut best: (usize, usize) = (0, usize::MAX);
    let mut next = 0;
    for start in 0..nu * nv {
        if !region[start] || label[start] != usize::MAX {
            continue;
        }
        let mut size = 0;
        let mut queue = VecDeque::from([start]);
        label[start] = next;
        while let Some(k) = queue.pop_front() {
            size += 1;
            for kk in neighbours(k, nu, nv) {
                if region[kk] && label[kk] == usize::MAX {
                    label[kk] = next;
                    queue.push_back(kk);
                }
            }
        }
        if size > best.0 {
            best = (size, next);
        }
        next += 1;
    }
    label.iter().map(|&l| l == best.1).collect()
}

/// Removes one node of every 2 x 2 block whose two nodes in the region touch only at a corner (the one with fewer
/// 4-neighbours in the region); whether anything was removed.
fn remove_pinches(region: &mut [bool], nu: usize, nv: usize) -> bool {
    let mut removed = false;
    for j in 0..nv.saturating_sub(1) {
        for i in 0..nu.saturating_sub(1) {
            let k = j * nu + i;
            let (a, b, c, d) = (region[k], region[k + 1], region[k + nu], region[k + nu + 1]);
            let pair = if a && d && !b && !c {
                Some((k, k + nu + 1))
            } else if b && c && !a && !d {
                Some((k + 1, k + nu))
            } else {
                None
            };
            if let Some((x, y)) = pair {
                let count = |n: usize| neighbours(n, nu, nv).filter(|&m| region[m]).count();
                let drop = if count(x) <= count(y) { x } else { y };
                region[drop] = false;
                removed = true;
            }
        }
    }
    removed
}

/// `region` with every hole (a part of the outside not connected to the grid's border) filled.
fn fill_holes(region: &[bool], nu: usize, nv: usize) -> Vec<bool> {
    let mut outside = vec![false; nu * nv];
    let mut queue = VecDeque::new();
    for k in 0..nu * nv {
        let (i, j) = (k % nu, k / nu);
        if !region[k] && (i == 0 || j == 0 || i + 1 == nu || j + 1 == nv) {
            outside[k] = true;
            queue.push_back(k);
        }
    }
    while let Some(k) = queue.pop_front() {
        for kk in neighbours(k, nu, nv) {
            if !region[kk] && !outside[kk] {
                outside[kk] = true;
                queue.push_back(kk);
            }
        }
    }
    outside.iter().map(|&o| !o).collect()
}

fn neighbours(k: usize, nu: usize, nv: usize) -> impl Iterator<Item = usize> {
    let (i, j) = (k % nu, k / nu);
    [
        (i > 0).then(|| k - 1),
        (i + 1 < nu).then(|| k + 1),
        (j > 0).then(|| k - nu),
        (j + 1 < nv).then(|| k + nu),
    ]
    .into_iter()
    .flatten()
}

/// The boundary of the union of the region's cells (a square of one grid step around each node), counter-clockwise,
/// as `(u, v)` corner points. At a corner where two cells touch only diagonally the walk keeps the cells apart.
fn outline(region: &[bool], nu: usize, nv: usize, grid: &HeightGrid) -> Vec<[f64; 2]> {
    let inside =
        |i: i64, j: i64| i >= 0 && j >= 0 && i < nu as i64 && j < nv as i64 && region[j as usize * nu + i as usize];
    // Directed boundary edges between corners (corner (i, j) is the lower-left corner of cell (i, j)), the region on
    // the left: from each corner, the edges leaving it.
    let mut edges: BTreeMap<(i64, i64), Vec<(i64, i64)>> = BTreeMap::new();
    for j in 0..nv as i64 {
        for i in 0..nu as i64 {
            if !inside(i, j) {
                continue;
            }
            if !inside(i, j - 1) {
                edges.entry((i, j)).or_default().push((i + 1, j));
            }
            if !inside(i + 1, j) {
                edges.entry((i + 1, j)).or_default().push((i + 1, j + 1));
            }
            if !inside(i, j + 1) {
                edges.entry((i + 1, j + 1)).or_default().push((i, j + 1));
            }
            if !inside(i - 1, j) {
                edges.entry((i, j + 1)).or_default().push((i, j));
            }
        }
    }
    let Some((&start, _)) = edges.iter().next() else {
        return Vec::new();
    };
    let mut loop_corners = vec![start];
    let mut at = start;
    let mut came: (i64, i64) = (1, 0);
    while let Some(out) = edges.get_mut(&at).filter(|out| !out.is_empty()) {
        // Prefer the left turn (hugging the cell on the left), then straight, then right.
        let turn = |d: (i64, i64)| {
            let cross = came.0 * d.1 - came.1 * d.0;
            let dot = came.0 * d.0 + came.1 * d.1;
            if cross > 0 {
                0
            } else if dot > 0 {
                1
            } else {
                2
            }
        };
        let pick = (0..out.len())
            .min_by_key(|&k| turn((out[k].0 - at.0, out[k].1 - at.1)))
            .expect("a corner with an edge");
        let next = out.remove(pick);
        came = (next.0 - at.0, next.1 - at.1);
        at = next;
        if at == start {
            break;
        }
        loop_corners.push(at);
    }
    let h = grid.spacing_mm;
    loop_corners
        .iter()
        .map(|&(i, j)| [grid.u0_mm + (i as f64 - 0.5) * h, grid.v0_mm + (j as f64 - 0.5) * h])
        .collect()
}

/// A closed polyline simplified (Douglas-Peucker) to within `tolerance` mm, keeping its first point.
fn simplify(points: &[[f64; 2]], tolerance: f64) -> Vec<[f64; 2]> {
    if points.len() < 4 {
        return points.to_vec();
    }
    // Split at the point farthest from the first, simplify both halves.
    let far = (1..points.len())
        .max_by(|&a, &b| {
            dist2(points[0], points[a])
                .total_cmp(&dist2(points[0], points[b]))
                .then(b.cmp(&a))
        })
        .expect("points");
    let mut keep = vec![false; points.len() + 1];
    keep[0] = true;
    keep[far] = true;
    keep[points.len()] = true;
    let closed: Vec<[f64; 2]> = points.iter().copied().chain(std::iter::once(points[0])).collect();
    let mut stack = vec![(0, far), (far, points.len())];
    while let Some((a, b)) = stack.pop() {
        if b <= a + 1 {
            continue;
        }
        let (k, d) = (a + 1..b)
            .map(|k| (k, segment_distance(closed[k], closed[a], closed[b])))
            .max_by(|x, y| x.1.total_cmp(&y.1).then(y.0.cmp(&x.0)))
            .expect("a point between");
        if d > tolerance {
            keep[k] = true;
            stack.push((a, k));
            stack.push((k, b));
        }
    }
    (0..points.len()).filter(|&k| keep[k]).map(|k| points[k]).collect()
}

fn dist2(a: [f64; 2], b: [f64; 2]) -> f64 {
    (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)
}

/// The bone's height at the region node nearest to `(i, j)` (searched in growing squares).
fn nearest_height(top: &HeightGrid, region: &[bool], i: usize, j: usize) -> f64 {
    let (nu, nv) = (top.nu as i64, top.nv as i64);
    for r in 0..nu.max(nv) {
        let mut best: Option<(i64, f64)> = None;
        for dj in -r..=r {
            for di in -r..=r {
                if di.abs().max(dj.abs()) != r {
                    continue;
                }
                let (ii, jj) = (i as i64 + di, j as i64 + dj);
                if ii < 0 || jj < 0 || ii >= nu || jj >= nv {
                    continue;
                }
                let k = (jj * nu + ii) as usize;
                let w = top.w_mm[k];
                if region[k] && w.is_finite() && best.is_none_or(|(d, _)| di * di + dj * dj < d) {
                    best = Some((di * di + dj * dj, w));
                }
            }
        }
        if let Some((_, w)) = best {
            return w;
        }
    }
    0.0
}
