//! The one error type of the segmentation module.
//!
//! Every failure a user can provoke (a recipe typed by hand, a seed clicked outside the scan, a volume paired
//! with the wrong grid) must come back as a message that says what was wrong and with which value, so that the
//! plan document or the CLI can show it as is. Each variant therefore carries the offending numbers.

use crate::grid::GridGeometry;
use thiserror::Error;

/// Errors of the `segment` module.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum SegmentError {
    /// Two masks, or a mask and a volume, are not sampled on the same grid.
    #[error("grids differ: {detail}")]
    GeometryMismatch {
        /// Which field differs, with both values.
        detail: String,
    },
    /// A buffer does not hold one sample per voxel of its grid.
    #[error("{what} holds {actual} samples but the grid {dims:?} has {expected} voxels")]
    LengthMismatch {
        /// What the buffer is ("HU volume", "mask bytes").
        what: &'static str,
        /// Voxel count of the grid.
        expected: usize,
        /// Length of the buffer.
        actual: usize,
        /// Grid dimensions.
        dims: [usize; 3],
    },
    /// The grid cannot be processed (non-positive spacing, non-finite placement, too many voxels).
    #[error("invalid grid geometry: {reason}")]
    InvalidGeometry {
        /// Why the geometry was refused.
        reason: String,
    },
    /// `min_hu > max_hu`.
    #[error("invalid HU range {min_hu}..{max_hu}: the minimum is above the maximum")]
    InvalidHuRange {
        /// Lower bound given.
        min_hu: i16,
        /// Upper bound given.
        max_hu: i16,
    },
    /// A morphology radius that is negative, not finite or absurdly large.
    #[error("invalid {what} radius {radius_mm} mm: it must be finite, >= 0 and <= 1000 mm")]
    InvalidRadius {
        /// Which operation ("closing", "dilation", ...).
        what: &'static str,
        /// The radius given.
        radius_mm: f64,
    },
    /// A closing or opening radius so large that the padded grid would be more than four times the scan (and more
    /// than 2^24 voxels).
    #[error("{what} radius {radius_mm} mm is too large for a grid of {dims:?} voxels (its padding would more than quadruple the grid)")]
    RadiusTooLarge {
        /// Which operation.
        what: &'static str,
        /// The radius given.
        radius_mm: f64,
        /// Grid dimensions.
        dims: [usize; 3],
    },
    /// A box whose corners are not finite or not ordered.
    #[error("invalid box {min_mm:?}..{max_mm:?} mm: corners must be finite with min <= max on every axis")]
    InvalidBox {
        /// Lower corner given.
        min_mm: [f64; 3],
        /// Upper corner given.
        max_mm: [f64; 3],
    },
    /// A plane whose point is not finite or whose normal is zero or not finite.
    #[error("invalid cut plane through {point_mm:?} mm with normal {normal:?}: point must be finite, normal finite and non-zero")]
    InvalidPlane {
        /// Point given.
        point_mm: [f64; 3],
        /// Normal given.
        normal: [f64; 3],
    },
    /// `keep_n_largest(0)`, which would always produce an empty mask.
    #[error("keeping the {n} largest components makes no sense: n must be at least 1")]
    InvalidComponentCount {
        /// The count given.
        n: usize,
    },
    /// A seed that maps to no voxel of the grid.
    #[error(
        "seed {seed_mm:?} mm lies outside the grid: it maps to voxel coordinates {voxel:?}, \
         the grid has {dims:?} voxels (valid range -0.5 .. n-0.5 on each axis)"
    )]
    SeedOutsideGrid {
        /// Seed in patient LPS mm.
        seed_mm: [f64; 3],
        /// Continuous voxel coordinates of the seed.
        voxel: [f64; 3],
        /// Grid dimensions.
        dims: [usize; 3],
    },
    /// A seed on a background voxel.
    #[error("seed {seed_mm:?} mm (voxel {voxel:?}) is not on the mask; {}", describe_nearest(*.nearest_mm, *.nearest_distance_mm))]
    SeedNotOnMask {
        /// Seed in patient LPS mm.
        seed_mm: [f64; 3],
        /// Voxel the seed falls in.
        voxel: [usize; 3],
        /// Centre of the nearest mask voxel (patient mm), if the mask is not empty.
        nearest_mm: Option<[f64; 3]>,
        /// Distance from the seed to that centre, in mm.
        nearest_distance_mm: Option<f64>,
    },
    /// A voxel index outside the grid.
    #[error("voxel ({i}, {j}, {k}) is outside the grid {dims:?}")]
    IndexOutOfGrid {
        /// Column.
        i: usize,
        /// Row.
        j: usize,
        /// Slice.
        k: usize,
        /// Grid dimensions.
        dims: [usize; 3],
    },
    /// A recipe that cannot be run as written.
    #[error("invalid segmentation recipe: {reason}")]
    InvalidRecipe {
        /// What is wrong with it.
        reason: String,
    },
    /// A segmentation step removed every voxel; the later steps of a recipe would only propagate nothing.
    #[error("the mask is empty after the step '{step}' of the recipe; check the HU range, crops and cuts")]
    EmptyResult {
        /// Name of the step after which the mask was empty.
        step: &'static str,
    },
    /// The front end cancelled the segmentation.
    #[error(transparent)]
    Cancelled(#[from] crate::progress::Cancelled),
}

fn describe_nearest(nearest_mm: Option<[f64; 3]>, distance_mm: Option<f64>) -> String {
    match (nearest_mm, distance_mm) {
        (Some(p), Some(d)) => format!(
            "the nearest mask voxel is centred at [{:.2}, {:.2}, {:.2}] mm, {:.2} mm away",
            p[0], p[1], p[2], d
        ),
        _ => "the mask is empty".to_string(),
    }
}

/// Fails with [`SegmentError::GeometryMismatch`] naming the first differing field when `a != b`.
pub fn ensure_same_geometry(a: &GridGeometry, b: &GridGeometry) -> Result<(), SegmentError> {
    if a == b {
        return Ok(());
    }
    let detail = if a.dims != b.dims {
        format!("dims {:?} vs {:?}", a.dims, b.dims)
    } else if a.spacing_mm != b.spacing_mm {
        format!("spacing {:?} mm vs {:?} mm", a.spacing_mm, b.spacing_mm)
    } else if a.origin_mm != b.origin_mm {
        format!("origin {:?} mm vs {:?} mm", a.origin_mm, b.origin_mm)
    } else {
        format!("axes {:?} vs {:?}", a.axes, b.axes)
    };
    Err(SegmentError::GeometryMismatch { detail })
}

/// Checks that a geometry can be processed by this module and returns its voxel count.
///
/// Refused: non-finite or non-positive spacing, non-finite origin or axes, a voxel count that overflows
/// `usize`, and a row longer than `u32::MAX` (run-length kernels store column indices as `u32`).
pub fn validate_geometry(g: &GridGeometry) -> Result<usize, SegmentError> {
    if g.spacing_mm.iter().any(|s| !s.is_finite() || *s <= 0.0) {
        return Err(SegmentError::InvalidGeometry {
            reason: format!("spacing {:?} mm must be finite and positive", g.spacing_mm),
        });
    }
    if g.origin_mm.iter().any(|o| !o.is_finite()) {
        return Err(SegmentError::InvalidGeometry {
            reason: format!("origin {:?} mm is not finite", g.origin_mm),
        });
    }
    if g.axes.iter().flatten().any(|a| !a.is_finite()) {
        return Err(SegmentError::InvalidGeometry {
            reason: format!("axes {:?} are not finite", g.axes),
        });
    }
    if g.dims[0] >= u32::MAX as usize {
        return Err(SegmentError::InvalidGeometry {
            reason: format!("rows of {} voxels are longer than supported", g.dims[0]),
        });
    }
    g.dims[0]
        .checked_mul(g.dims[1])
        .and_then(|n| n.checked_mul(g.dims[2]))
        .ok_or_else(|| SegmentError::InvalidGeometry {
            reason: format!("dims {:?} overflow the address space", g.dims),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mismatch_names_the_field() {
        let a = GridGeometry::axis_aligned([2, 2, 2], [1.0; 3], [0.0; 3]);
        let mut b = a.clone();
        b.spacing_mm[2] = 2.0;
        let e = ensure_same_geometry(&a, &b).err().map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("grids differ: spacing [1.0, 1.0, 1.0] mm vs [1.0, 1.0, 2.0] mm")
        );
        assert!(ensure_same_geometry(&a, &a.clone()).is_ok());
    }

    #[test]
    fn geometry_validation() {
        let mut g = GridGeometry::axis_aligned([2, 3, 4], [0.5, 0.5, 1.0], [0.0; 3]);
        assert_eq!(validate_geometry(&g), Ok(24));
        g.spacing_mm[1] = 0.0;
        assert!(validate_geometry(&g).is_err());
        g.spacing_mm[1] = 0.5;
        g.dims = [usize::MAX / 2, 4, 1];
        assert!(validate_geometry(&g).is_err());
    }

    #[test]
    fn seed_message_reports_nearest() {
        let e = SegmentError::SeedNotOnMask {
            seed_mm: [1.0, 2.0, 3.0],
            voxel: [1, 2, 3],
            nearest_mm: Some([4.0, 2.0, 3.0]),
            nearest_distance_mm: Some(3.0),
        };
        let s = e.to_string();
        assert!(s.contains("3.00 mm away"), "{s}");
        let e = SegmentError::SeedNotOnMask {
            seed_mm: [1.0, 2.0, 3.0],
            voxel: [1, 2, 3],
            nearest_mm: None,
            nearest_distance_mm: None,
        };
        assert!(e.to_string().contains("the mask is empty"));
    }
}
