//! The contact pad: a shell of constant thickness over the footprint, whose underside is the bone grown by the bone
//! offset and swept along the seating direction, and the blocked-out anatomy that trims every other part.
//!
//! Why this way: the pad's underside *is* the offset surface (sampled exactly per grid column and lifted where a
//! triangle between the columns would dip below it, see [`super::heightfield::conservative_top_surface`]), so the
//! contact gap is at least the bone offset everywhere by construction, nothing of the pad reaches into an undercut,
//! and the guide comes off along its seating direction. The pad is a closed solid between two height fields
//! over a rectangle, cut to the footprint by one boolean with the footprint's prism.

use nalgebra::{Point3, Vector3};

use super::clip::clipped_solid;
use super::footprint::Footprint;
use super::heightfield::{conservative_top_surface, dilate, solid_between, GuideFrame, HeightFieldError, HeightGrid};
use crate::mesh::boolean::{boolean, BoolOp, BooleanError, Operand};
use crate::mesh::{boundary_edges, degenerate_triangles, inconsistent_edges, non_manifold_edges, Mesh};

/// How far (mm) the block of anatomy reaches below the lowest contact height; parts are trimmed by it, so it only
/// needs to be deeper than any part reaches into the bone.
pub const BLOCK_DEPTH_MM: f64 = 30.0;

/// Where the pad has no bone under it within reach, the pad keeps its thickness as a lid over the gap; where neither
/// the contact surface nor the outer surface exists the footprint is off the bone.
#[derive(Debug, thiserror::Error)]
pub enum PadError {
    /// A point of the footprint has no bone within the pad thickness below it.
    #[error("the footprint reaches beyond the bone: no bone under ({0:.1}, {1:.1}, {2:.1}) mm within the pad's reach")]
    OffBone(f64, f64, f64),
    /// The bone under the footprint drops away along the seating direction (the edge of a hole such as a thin sinus
    /// wall missing in the segmentation, or bone nearly parallel to the seating direction): the pad would follow it
    /// down as a deep, thin fin.
    #[error(
        "the bone under the footprint drops {3:.1} mm at ({0:.1}, {1:.1}, {2:.1}) mm (a hole in the bone, or bone \
         within 5 deg of the seating direction); move the footprint off it or change the seating direction"
    )]
    Drop(f64, f64, f64, f64),
    /// A height-field solid could not be built.
    #[error(transparent)]
    HeightField(#[from] HeightFieldError),
    /// A boolean failed.
    #[error(transparent)]
    Boolean(#[from] BooleanError),
}

/// The pad and the fields it was built from (the checks and the part placement read them).
#[derive(Clone, Debug)]
pub struct Pad {
    /// The pad solid, patient mm, closed and outward.
    pub mesh: Mesh,
    /// The contact surface (bone grown by the offset, swept, lifted where a triangle would dip below it), over the
    /// working rectangle.
    pub contact: HeightGrid,
    /// The pad's outer surface over the working rectangle.
    pub outer: HeightGrid,
    /// Lowest finite contact height in the working rectangle, mm (frame `w`).
    pub lowest_contact_mm: f64,
    /// Whether the outline cut needed the boolean fallback.
    pub cut_by_boolean: bool,
}

/// Options of the pad.
#[derive(Clone, Copy, Debug)]
pub struct PadOptions {
    /// Bone offset (gap between bone and pad), mm.
    pub bone_offset_mm: f64,
    /// Pad thickness, mm.
    pub thickness_mm: f64,
    /// Grid spacing of the height fields, mm.
    pub spacing_mm: f64,
    /// Extra margin (mm) of the working rectangle around the footprint, for the parts that reach beyond it.
    pub margin_mm: f64,
}

/// Steepest bone under a footprint, degrees between the surface and the seating direction's normal plane (the
/// refusal message says 90 minus this): a surface closer than 5 deg to parallel to the seating direction (or the edge of a hole, which is a vertical drop) would
/// make the pad a deep, thin fin that follows it down.
pub const MAX_CONTACT_SLOPE_DEG: f64 = 85.0;

/// Smallest drop refused, mm: a shallower pit (a small segmentation hole in a thin wall) only gets a short plug, which
/// seats and prints; deeper ones make fins.
const MIN_FIN_DROP_MM: f64 = 4.0;

/// The largest drop of the contact surface between neighbouring grid points inside the footprint: (u, v, w of the
/// lower point, drop), if any is steeper than [`MAX_CONTACT_SLOPE_DEG`] and deeper than [`MIN_FIN_DROP_MM`].
fn find_drop(contact: &HeightGrid, footprint: &Footprint) -> Option<(f64, f64, f64, f64)> {
    let limit_mm = (contact.spacing_mm * MAX_CONTACT_SLOPE_DEG.to_radians().tan()).max(MIN_FIN_DROP_MM);
    let inside = |i: usize, j: usize| {
        let (u, v) = contact.uv(i, j);
        let w = contact.at(i, j);
        (w.is_finite() && footprint.contains(u, v)).then_some((u, v, w))
    };
    let mut worst: Option<(f64, f64, f64, f64)> = None;
    for j in 0..contact.nv {
        for i in 0..contact.nu {
            let Some(here) = inside(i, j) else { continue };
            for (ni, nj) in [(i + 1, j), (i, j + 1)] {
                if ni >= contact.nu || nj >= contact.nv {
                    continue;
                }
                let Some(there) = inside(ni, nj) else { continue };
                let drop = (here.2 - there.2).abs();
                let low = if here.2 < there.2 { here } else { there };
                if drop > limit_mm && worst.is_none_or(|(_, _, _, d)| drop > d) {
                    worst = Some((low.0, low.1, low.2, drop));
                }
            }
        }
    }
    worst
}

/// Builds the pad over `footprint` on `bone`.
pub fn build_pad(
    bone: &Mesh,
    frame: &GuideFrame,
    footprint: &Footprint,
    options: &PadOptions,
) -> Result<Pad, PadError> {
    let h = options.spacing_mm;
    let b = footprint.bounds_mm();
    // The working rectangle: the footprint, grown by the dilation reach and the margin, snapped to the grid.
    let grow = options.thickness_mm + options.margin_mm + 2.0 * h;
    let u0 = ((b[0] - grow) / h).floor() * h;
    let v0 = ((b[1] - grow) / h).floor() * h;
    let nu = ((b[2] + grow - u0) / h).ceil() as usize + 1;
    let nv = ((b[3] + grow - v0) / h).ceil() as usize + 1;
    let grid = HeightGrid::empty(u0, v0, h, nu, nv);
    let (contact, _) = conservative_top_surface(bone, frame, &grid, options.bone_offset_mm);
    if let Some((u, v, w, drop)) = find_drop(&contact, footprint) {
        let p = frame.patient_from_frame(&Vector3::new(u, v, w));
        return Err(PadError::Drop(p.x, p.y, p.z, drop));
    }
    let outer = dilate(&contact, options.thickness_mm);
    let lowest_contact_mm = contact
        .w_mm
        .iter()
        .copied()
        .filter(|w| w.is_finite())
        .fold(f64::INFINITY, f64::min);

    // The pad's own rectangle: the footprint plus two cells.
    let i0 = ((b[0] - u0) / h).floor() as usize - 2;
    let j0 = ((b[1] - v0) / h).floor() as usize - 2;
    let i1 = (((b[2] - u0) / h).ceil() as usize + 2).min(nu - 1);
    let j1 = (((b[3] - v0) / h).ceil() as usize + 2).min(nv - 1);
    let (pnu, pnv) = (i1 - i0 + 1, j1 - j0 + 1);
    let sub = |g: &HeightGrid| {
        let (su, sv) = g.uv(i0, j0);
        let mut out = HeightGrid::empty(su, sv, h, pnu, pnv);
        for j in 0..pnv {
            out.w_mm[j * pnu..(j + 1) * pnu].copy_from_slice(&g.w_mm[(j0 + j) * nu + i0..(j0 + j) * nu + i0 + pnu]);
        }
        out
    };
    let mut bottom = sub(&contact);
    let mut top = sub(&outer);
    let fallback = top
        .w_mm
        .iter()
        .copied()
        .filter(|w| w.is_finite())
        .fold(f64::INFINITY, f64::min);
    for j in 0..pnv {
        for i in 0..pnu {
            let k = j * pnu + i;
            let (u, v) = top.uv(i, j);
            if !top.w_mm[k].is_finite() {
                // Within the footprint (or at one cell from it) the pad needs bone below; outside it the values only
                // close the rectangle's solid, which the prism cuts away.
                if footprint.contains(u, v) || footprint.distance_to_outline_mm(u, v) < h {
                    let p = frame.patient_from_frame(&Vector3::new(u, v, lowest_contact_mm.min(fallback)));
                    return Err(PadError::OffBone(p.x, p.y, p.z));
                }
                top.w_mm[k] = if fallback.is_finite() { fallback } else { 0.0 };
            }
            if !bottom.w_mm[k].is_finite() {
                bottom.w_mm[k] = top.w_mm[k] - options.thickness_mm;
            }
        }
    }
    let direct = clipped_solid(&bottom, &top, frame, footprint);
    let closed = boundary_edges(&direct).is_empty()
        && non_manifold_edges(&direct).is_empty()
        && inconsistent_edges(&direct).is_empty()
        && degenerate_triangles(&direct).is_empty();
    let (mesh, cut_by_boolean) = if closed {
        (direct, false)
    } else {
        // A grid vertex exactly on the outline can leave the direct cut open; the boolean has no such case.
        let slab = solid_between(&bottom, &top, frame)?;
        let w_lo = bottom.w_mm.iter().copied().fold(f64::INFINITY, f64::min) - 1.0;
        let w_hi = top.w_mm.iter().copied().fold(f64::NEG_INFINITY, f64::max) + 1.0;
        let prism = footprint.prism(frame, w_lo, w_hi);
        let cut = boolean(
            Operand::new("pad blank", &slab),
            Operand::new("footprint prism", &prism),
            BoolOp::Intersection,
        )?;
        (cut, true)
    };
    Ok(Pad {
        mesh,
        contact,
        outer,
        lowest_contact_mm,
        cut_by_boolean,
    })
}

impl Pad {
    /// The blocked-out anatomy (bone grown by the offset and swept along the seating direction) as a closed solid
    /// over the part of the working rectangle covering `uv_bounds` (`[min_u, min_v, max_u, max_v]`), reaching
    /// [`BLOCK_DEPTH_MM`] below the lowest contact. Columns without bone get the block's floor plus a hair, so the
    /// block stays closed.
    ///
    /// Inside `footprint` the pad is there, and a part trimmed by the block only has to end inside the pad, not on
    /// the contact surface: there the block's top is raised to the middle of the pad ([`Pad::mid_pad_top`]). Parts
    /// trimmed that way end away from both of the pad's surfaces, and their union with the pad has no faces lying a
    /// hair apart (which cost the engine most of its time); the guide is the same solid.
    pub fn block(&self, frame: &GuideFrame, uv_bounds: [f64; 4], footprint: &Footprint) -> Result<Mesh, PadError> {
        let g = &self.contact;
        let h = g.spacing_mm;
        let clamp_i = |u: f64| (((u - g.u0_mm) / h).max(0.0) as usize).min(g.nu - 1);
        let clamp_j = |v: f64| (((v - g.v0_mm) / h).max(0.0) as usize).min(g.nv - 1);
        let (i0, j0) = (
            clamp_i(uv_bounds[0]).saturating_sub(1),
            clamp_j(uv_bounds[1]).saturating_sub(1),
        );
        let (i1, j1) = (
            (clamp_i(uv_bounds[2]) + 2).min(g.nu - 1),
            (clamp_j(uv_bounds[3]) + 2).min(g.nv - 1),
        );
        let (nu, nv) = (i1 - i0 + 1, j1 - j0 + 1);
        let floor = self.lowest_contact_mm - BLOCK_DEPTH_MM;
        let (su, sv) = g.uv(i0, j0);
        let mut top = HeightGrid::empty(su, sv, h, nu, nv);
        let inside = self.nodes_inside(footprint, i0, j0, nu, nv);
        // Each column takes the highest contact of its 3 x 3 neighbourhood: the piecewise-linear block then never
        // cuts inside the grown bone, also across the bone's silhouette where a column without bone sits next to one
        // with bone (there the true offset surface falls steeply within one cell).
        for j in 0..nv {
            for i in 0..nu {
                let mut w = f64::NEG_INFINITY;
                for dj in -1isize..=1 {
                    for di in -1isize..=1 {
                        let (x, y) = ((i0 + i) as isize + di, (j0 + j) as isize + dj);
                        if x >= 0 && y >= 0 && (x as usize) < g.nu && (y as usize) < g.nv {
                            w = w.max(g.at(x as usize, y as usize));
                        }
                    }
                }
                // Under the pad (inside the footprint) but short of its middle, the pad's own underside is there:
                // the block follows it (its nodes are lifted so that no triangle between them comes closer to the
                // bone than the offset), and the pad's edge is not left standing below a housing by the
                // neighbourhood's higher contact.
                let own = g.at(i0 + i, j0 + j);
                let under_pad = inside[(j + MID_PAD_RING) * (nu + 2 * MID_PAD_RING) + i + MID_PAD_RING];
                top.w_mm[j * nu + i] = match self.mid_pad_top(&inside, (i0, j0), (i, j), (nu, nv), w) {
                    Some(mid) => mid,
                    None if under_pad && own.is_finite() && w.is_finite() => own,
                    None if w.is_finite() => w,
                    None => floor + BLOCK_FLOOR_LIFT_MM,
                };
            }
        }
        let bottom = HeightGrid {
            w_mm: vec![floor; nu * nv],
            ..top.clone()
        };
        Ok(solid_between(&bottom, &top, frame)?)
    }

    /// Which nodes of the block's window (`nu` x `nv` from node `(i0, j0)` of the contact grid, grown by
    /// [`MID_PAD_RING`] on every side) lie inside `footprint`, row by row.
    fn nodes_inside(&self, footprint: &Footprint, i0: usize, j0: usize, nu: usize, nv: usize) -> Vec<bool> {
        let r = MID_PAD_RING as isize;
        let (wu, wv) = (nu + 2 * MID_PAD_RING, nv + 2 * MID_PAD_RING);
        let h = self.contact.spacing_mm;
        let (su, sv) = self.contact.uv(i0, j0);
        (0..wv as isize)
            .flat_map(|j| (0..wu as isize).map(move |i| (i, j)))
            .map(|(i, j)| footprint.contains(su + (i - r) as f64 * h, sv + (j - r) as f64 * h))
            .collect()
    }

    /// The raised top of the block at window node `(i, j)` (contact node `(i0 + i, j0 + j)`), whose own top would be
    /// `w`: halfway between `w` and the lowest outer surface of its 3 x 3 neighbourhood, when every node within
    /// [`MID_PAD_RING`] lies inside the footprint (`inside`, from [`Pad::nodes_inside`]) on bone, and that keeps
    /// [`MID_PAD_CLEARANCE_MM`] from both. Over any cell touching the node the raised top then lies between the pad's
    /// underside (every contact node of those cells is at most `w`) and its outer surface.
    fn mid_pad_top(
        &self,
        inside: &[bool],
        (i0, j0): (usize, usize),
        (i, j): (usize, usize),
        (nu, _nv): (usize, usize),
        w: f64,
    ) -> Option<f64> {
        if !w.is_finite() {
            return None;
        }
        let r = MID_PAD_RING;
        let wu = nu + 2 * r;
        for dj in 0..=2 * r {
            for di in 0..=2 * r {
                if !inside[(j + dj) * wu + i + di] {
                    return None;
                }
            }
        }
        let (c, o) = (&self.contact, &self.outer);
        let (ci, cj) = (i0 + i, j0 + j);
        if ci == 0 || cj == 0 || ci + 1 >= c.nu || cj + 1 >= c.nv {
            return None;
        }
        let mut lowest_outer = f64::INFINITY;
        for y in cj - 1..=cj + 1 {
            for x in ci - 1..=ci + 1 {
                let (cw, ow) = (c.at(x, y), o.at(x, y));
                if !cw.is_finite() || !ow.is_finite() {
                    return None;
                }
                lowest_outer = lowest_outer.min(ow);
            }
        }
        let mid = 0.5 * (w + lowest_outer);
        (mid - w >= MID_PAD_CLEARANCE_MM && lowest_outer - mid >= MID_PAD_CLEARANCE_MM).then_some(mid)
    }

    /// The contact height (frame `w`) under patient point `p` seen along the seating direction, if there is bone.
    pub fn contact_under(&self, frame: &GuideFrame, p: &Point3<f64>) -> Option<f64> {
        let q = frame.frame_from_patient(p);
        self.contact.interpolate(q.x, q.y)
    }
}

/// Thickness (mm) of the block where a column has no bone: any positive value keeps the block closed.
const BLOCK_FLOOR_LIFT_MM: f64 = 0.5;
/// Nodes around a block column (in each direction) that must lie inside the footprint for the block's top to be
/// raised into the pad there: every cell touching the column, and the next ring, is then under the pad.
const MID_PAD_RING: usize = 2;
/// Least distance (mm) a raised block top keeps from each of the pad's surfaces (else it stays on the contact).
const MID_PAD_CLEARANCE_MM: f64 = 0.3;

#[cfg(test)]
mod tests {
    use super::*;

    /// A flat bone plate `z = 0` (outward up), 40 x 40 mm, 2 mm thick.
    fn plate() -> Mesh {
        let (h, t) = (20.0, 2.0);
        let p = |x: f64, y: f64, z: f64| [x, y, z];
        Mesh {
            positions: vec![
                p(-h, -h, -t),
                p(h, -h, -t),
                p(h, h, -t),
                p(-h, h, -t),
                p(-h, -h, 0.0),
                p(h, -h, 0.0),
                p(h, h, 0.0),
                p(-h, h, 0.0),
            ],
            triangles: vec![
                [0, 2, 1],
                [0, 3, 2],
                [4, 5, 6],
                [4, 6, 7],
                [0, 1, 5],
                [0, 5, 4],
                [1, 2, 6],
                [1, 6, 5],
                [2, 3, 7],
                [2, 7, 6],
                [3, 0, 4],
                [3, 4, 7],
            ],
        }
    }

    #[test]
    fn the_block_rises_into_the_middle_of_the_pad_only_well_inside_the_footprint() {
        let frame = GuideFrame::new(Point3::origin(), Vector3::new(0.0, 0.0, -1.0)).expect("frame");
        let outline: Vec<[f64; 3]> = [[-5.0, -5.0], [5.0, -5.0], [5.0, 5.0], [-5.0, 5.0]]
            .iter()
            .map(|q| [q[0], q[1], 0.0])
            .collect();
        let footprint = Footprint::new(&frame, &outline).expect("footprint");
        let (offset, thickness, h) = (0.25, 3.0, 0.2);
        let pad = build_pad(
            &plate(),
            &frame,
            &footprint,
            &PadOptions {
                bone_offset_mm: offset,
                thickness_mm: thickness,
                spacing_mm: h,
                margin_mm: 4.0,
            },
        )
        .expect("pad");
        let block = pad.block(&frame, [-8.0, -8.0, 8.0, 8.0], &footprint).expect("block");
        assert!(crate::mesh::boundary_edges(&block).is_empty());
        // The block's top vertices: on the contact (offset) outside the footprint and within the ring of it, in the
        // middle of the pad (offset + thickness / 2) well inside it, and a ramp of one cell between.
        let (mut mid, mut on_contact) = (0, 0);
        for q in &block.positions {
            if q[2] < -1.0 {
                continue; // the floor
            }
            let inner = 5.0 - q[0].abs().max(q[1].abs()); // distance inside the square outline
            if inner >= (MID_PAD_RING as f64 + 1.0) * h + 1e-9 {
                assert!((q[2] - (offset + 0.5 * thickness)).abs() < 1e-9, "{q:?}");
                mid += 1;
            } else if inner < MID_PAD_RING as f64 * h - 1e-9 {
                assert!((q[2] - offset).abs() < 1e-9, "{q:?}");
                on_contact += 1;
            }
        }
        assert!(
            mid > 1000 && on_contact > 1000,
            "{mid} raised, {on_contact} on the contact"
        );
    }
}
