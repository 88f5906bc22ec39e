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
    pub fn block(&self, frame: &GuideFrame, uv_bounds: [f64; 4]) -> Result<Mesh, PadError> {
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
                top.w_mm[j * nu + i] = if w.is_finite() { w } else { floor + BLOCK_FLOOR_LIFT_MM };
            }
        }
        let bottom = HeightGrid {
            w_mm: vec![floor; nu * nv],
            ..top.clone()
        };
        Ok(solid_between(&bottom, &top, frame)?)
    }

    /// The contact height (frame `w`) under patient point `p` seen along the seating direction, if there is bone.
    pub fn contact_under(&self, frame: &GuideFrame, p: &Point3<f64>) -> Option<f64> {
        let q = frame.frame_from_patient(p);
        self.contact.interpolate(q.x, q.y)
    }
}

/// Thickness (mm) of the block where a column has no bone: any positive value keeps the block closed.
const BLOCK_FLOOR_LIFT_MM: f64 = 0.5;
