//! Filling enclosed background: marrow cavities in 3D, and holes slice by slice.
//!
//! Why: a bone threshold leaves the medullary canal and low-density cancellous pockets as background. Marching
//! cubes would then produce inner surfaces that a guide designer never wants (they double the triangle count and
//! confuse the "outer surface" queries of guide fitting). A cavity is background that cannot reach the grid
//! border through background; in 3D we use face (6-) connectivity for the background, the complement of the
//! 26-connectivity commonly used for bone, so a cavity that touches the outside only through a voxel corner or
//! edge of bone is still a cavity.
//!
//! The 3D version reuses the run-length labelling of [`super::components`] on the inverted mask, so it is
//! parallel and deterministic like it. The 2D version handles canals that run out of the scan (a long bone cut
//! by the field of view, whose canal is open at the end slices and thus not a 3D cavity): each `k` slice is
//! filled independently, background 4-connected to the slice border being kept; it reuses the same labelling
//! with the adjacency restricted to the slice.

use super::components::{label_components, label_components_per_slice, Connectivity};
use super::error::SegmentError;
use super::mask::Mask;

/// Background that is not 6-connected (through background) to a face of the grid becomes foreground.
pub fn fill_cavities(mask: &Mask) -> Result<Mask, SegmentError> {
    let dims = mask.geometry().dims;
    let mut background = mask.clone();
    background.invert();
    let comps = label_components(&background, Connectivity::Six)?;
    drop(background);
    let mut out = mask.clone();
    comps.add_where(&mut out, |info| !info.touches_border(dims))?;
    Ok(out)
}

/// In every `k` slice, background not 4-connected (through background, within the slice) to the slice border
/// becomes foreground. Uses the run-length labelling restricted to in-slice adjacency, parallel over slabs.
pub fn fill_holes_slice_by_slice(mask: &Mask) -> Result<Mask, SegmentError> {
    let [nx, ny, _] = mask.geometry().dims;
    let mut background = mask.clone();
    background.invert();
    let comps = label_components_per_slice(&background)?;
    drop(background);
    let mut out = mask.clone();
    comps.add_where(&mut out, |info| {
        info.bbox_min[0] > 0 && info.bbox_min[1] > 0 && info.bbox_max[0] + 1 < nx && info.bbox_max[1] + 1 < ny
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::GridGeometry;

    fn dist(v: [usize; 3], c: [f64; 3]) -> f64 {
        let d = [v[0] as f64 - c[0], v[1] as f64 - c[1], v[2] as f64 - c[2]];
        (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt()
    }

    #[test]
    fn hollow_sphere_is_filled() -> Result<(), SegmentError> {
        let g = GridGeometry::axis_aligned([24, 24, 24], [0.5, 0.5, 0.8], [0.0; 3]);
        let c = [11.5, 11.5, 11.5];
        let shell = Mask::from_fn(g.clone(), |v| (6.0..=9.0).contains(&dist(v, c)))?;
        let solid = Mask::from_fn(g.clone(), |v| dist(v, c) <= 9.0)?;
        let filled = fill_cavities(&shell)?;
        assert!(shell.count() < solid.count());
        assert_eq!(filled, solid);
        Ok(())
    }

    #[test]
    fn cavity_open_to_the_border_is_not_filled() -> Result<(), SegmentError> {
        let g = GridGeometry::axis_aligned([24, 24, 24], [1.0; 3], [0.0; 3]);
        let c = [11.5, 11.5, 11.5];
        // Hollow sphere with a 3-voxel wide tunnel from the cavity to the i = 23 face.
        let tunnel = |[i, j, k]: [usize; 3]| i >= 12 && (10..=13).contains(&j) && (10..=13).contains(&k);
        let open = Mask::from_fn(g.clone(), |v| (6.0..=9.0).contains(&dist(v, c)) && !tunnel(v))?;
        assert_eq!(fill_cavities(&open)?, open);
        // A leak through a voxel corner does not open a cavity: background is 6-connected. Box with 2-voxel
        // walls (3..=4 and 13..=14 on every axis); two wall voxels removed that touch only by a corner.
        let wall = |x: usize| (3..=4).contains(&x) || (13..=14).contains(&x);
        let inside_box = |x: usize| (3..=14).contains(&x);
        let boxed = Mask::from_fn(g.clone(), |[i, j, k]| {
            inside_box(i) && inside_box(j) && inside_box(k) && (wall(i) || wall(j) || wall(k))
        })?;
        let mut leaky = boxed.clone();
        leaky.set(13, 8, 8, false)?;
        leaky.set(14, 9, 9, false)?;
        let filled = fill_cavities(&leaky)?;
        assert!(
            filled.get(8, 8, 8) && filled.get(13, 8, 8),
            "cavity behind a corner leak is filled"
        );
        assert!(!filled.get(14, 9, 9), "the outer notch stays open");
        assert_eq!(filled.count(), 12 * 12 * 12 - 1);
        // Removing the edge-adjacent voxel too makes a face path: no longer a cavity.
        leaky.set(14, 8, 8, false)?;
        assert_eq!(fill_cavities(&leaky)?, leaky);
        Ok(())
    }

    #[test]
    fn slice_holes_are_filled_per_slice() -> Result<(), SegmentError> {
        // A tube along k, open at both ends: no 3D cavity, but a hole in every slice.
        let g = GridGeometry::axis_aligned([16, 16, 6], [1.0; 3], [0.0; 3]);
        let ring = |[i, j, _]: [usize; 3]| {
            let d = dist([i, j, 0], [7.5, 7.5, 0.0]);
            (3.0..=6.0).contains(&d)
        };
        let tube = Mask::from_fn(g.clone(), ring)?;
        assert_eq!(fill_cavities(&tube)?, tube);
        let filled = fill_holes_slice_by_slice(&tube)?;
        let disc = Mask::from_fn(g.clone(), |[i, j, _]| dist([i, j, 0], [7.5, 7.5, 0.0]) <= 6.0)?;
        assert_eq!(filled, disc);
        // A ring cut open (C shape) keeps its hole.
        let c_shape = Mask::from_fn(g, |v| ring(v) && !(v[0] >= 8 && (7..=8).contains(&v[1])))?;
        assert_eq!(fill_holes_slice_by_slice(&c_shape)?, c_shape);
        Ok(())
    }
}
