//! Plan geometry measured against the bone: cross-sections of cutting planes, drill trajectories through the bone,
//! distances between planes, drills and structures (nerves), and where a drill crosses a saw blade's slab.
//!
//! Why it is built this way:
//! - **Primitive inputs only.** Every function takes points, unit vectors, lengths, radii and a [`Mesh`], never a
//!   plan type, so the plan document can change without touching the geometry, and the GUI, the CLI and the guide
//!   generator all measure the same way.
//! - **parry3d finds, f64 measures.** [`BoneQuery`] builds parry3d's `TriMesh` (f32) once per bone and uses its BVH
//!   only to find *which* triangles a ray or a plane can touch (each node box loosened by
//!   [`query::CANDIDATE_MARGIN_MM`] so f32 rounding can never lose a candidate). Every reported number is then
//!   recomputed in f64 against our own `Mesh` triangle: f32 positions near 100 mm carry ~1e-5 mm of rounding, fine
//!   for finding, not for reporting a cortex thickness to 0.01 mm.
//! - **Each crossing counted once.** A drill axis through a shared edge or vertex must not count twice (or zero
//!   times), or the inside/outside parity and every length after it are wrong. The line-triangle test uses Shewchuk's
//!   exact `orient3d` (crate `robust`) on each *edge*, which is exactly antisymmetric, so the two triangles of an
//!   edge always disagree; an exact zero (the line through the edge) is decided by a symbolic perturbation of the
//!   line, also per edge and antisymmetric. Cross-sections classify each *vertex* once (on the plane counts as
//!   above), so every loop closes on a closed mesh.
//! - **Deterministic.** Candidate triangles are sorted by index, crossings by (t, triangle), loops start at their
//!   lowest segment; nothing depends on hash order or the thread count.
//!
//! Coordinates are DICOM patient LPS, millimetres; directions and normals need not be unit length on input (they
//! are normalised; a zero or non-finite one is an error).

mod distance;
pub mod query;
mod section;

use serde::Serialize;
use thiserror::Error;

pub use distance::{
    angle_between_planes_deg, distance_along_bone, drill_crosses_slab, segment_polyline_distance,
    segment_segment_distance, Closest, PlaneDistance, PolylineClosest, SlabCrossing,
};
pub use query::{BoneInterval, BoneQuery, Crossing, DrillKind, DrillOptions, DrillPath, SurfacePoint};
pub(crate) use section::segment_distance_2d;
pub use section::{Contour, Piece, Section};

/// Errors of the measurements; each names the bad value.
#[derive(Debug, Error)]
pub enum MeasureError {
    /// The bone mesh has no triangle.
    #[error("the bone mesh has no triangle")]
    EmptyMesh,
    /// The bone mesh is malformed (index out of range, non-finite position).
    #[error("invalid bone mesh: {0}")]
    InvalidMesh(String),
    /// A direction or normal is zero or not finite.
    #[error("{what} must be a finite non-zero vector, got {value:?}")]
    BadDirection {
        /// Which argument (`"drill direction"`, `"plane normal"`).
        what: &'static str,
        /// The value given.
        value: [f64; 3],
    },
    /// A point is not finite.
    #[error("{what} must be finite, got {value:?} mm")]
    BadPoint {
        /// Which argument.
        what: &'static str,
        /// The value given.
        value: [f64; 3],
    },
    /// A length, radius or parameter is out of range.
    #[error("{what} must be {expected}, got {value}")]
    BadValue {
        /// Which argument.
        what: &'static str,
        /// What it must be (`"finite and >= 0"`).
        expected: &'static str,
        /// The value given.
        value: f64,
    },
}

/// A unit vector from `v`, or an error naming `what`.
pub(crate) fn unit(what: &'static str, v: [f64; 3]) -> Result<[f64; 3], MeasureError> {
    let n = crate::mesh::norm(v);
    if !(n.is_finite() && n > 0.0 && v.iter().all(|c| c.is_finite())) {
        return Err(MeasureError::BadDirection { what, value: v });
    }
    Ok(crate::mesh::scale(v, 1.0 / n))
}

/// `p` if finite, or an error naming `what`.
pub(crate) fn finite_point(what: &'static str, p: [f64; 3]) -> Result<[f64; 3], MeasureError> {
    if p.iter().all(|c| c.is_finite()) {
        Ok(p)
    } else {
        Err(MeasureError::BadPoint { what, value: p })
    }
}

/// `v` if finite and `>= 0`, or an error naming `what`.
pub(crate) fn non_negative(what: &'static str, v: f64) -> Result<f64, MeasureError> {
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(MeasureError::BadValue {
            what,
            expected: "finite and >= 0",
            value: v,
        })
    }
}

/// A plane given by a point on it and its unit normal (LPS mm), as measured.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Plane {
    /// A point on the plane, mm.
    pub point_mm: [f64; 3],
    /// Unit normal.
    pub normal: [f64; 3],
}

impl Plane {
    /// Signed distance of `p` from the plane, mm (positive on the normal's side).
    pub fn signed_distance_mm(&self, p: [f64; 3]) -> f64 {
        crate::mesh::dot(crate::mesh::sub(p, self.point_mm), self.normal)
    }
}
