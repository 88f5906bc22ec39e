//! Triangle meshes of bone surfaces: extraction from CT, checking, smoothing, simplification, STL exchange and the
//! repair of surfaces segmented elsewhere.
//!
//! Why this module exists: a patient-specific guide is printed from a surface, and the CAD steps that follow
//! (offsetting, boolean subtraction of the bone from the guide blank, slicing) silently produce garbage when that
//! surface has holes, pinched vertices, flipped triangles or self-intersections. Off-the-shelf crates each broke one
//! of these properties (the `meshopt` decimator opened holes; plain Lorensen marching-cubes tables leave cracks on
//! ambiguous faces), so every stage here is written to *preserve* the invariants by construction and
//! [`check`] *proves* them afterwards, naming the failing places in patient millimetres so a message can be acted on.
//!
//! Conventions, fixed for the whole crate:
//! - positions are in DICOM patient space (LPS), millimetres, `f64` (STL rounds to `f32` only on export);
//! - triangles are counter-clockwise seen from outside, so the right-hand normal points out of the bone and a closed
//!   outward mesh has positive [`Mesh::signed_volume_mm3`];
//! - every algorithm is deterministic: the same input gives bit-identical output whatever the rayon thread count,
//!   because a planning tool must be reproducible for regulatory review.
//!
//! Pipeline: [`marching_cubes::marching_cubes`] -> [`smooth::taubin_smooth`] -> [`decimate::decimate`] ->
//! [`check::MeshReport`] -> [`stl::write_stl_binary`]; a surface left as marching cubes made it is checked by
//! [`GridSurface::report`] instead, which proves the same invariants from the construction.

pub mod boolean;
mod bvh;
pub mod check;
pub mod crop;
pub mod decimate;
mod grid_check;
mod intersect;
pub mod marching_cubes;
pub mod repair;
pub mod shapes;
pub mod sliver;
pub mod smooth;
pub mod stl;
mod tables;

use std::sync::atomic::{AtomicU32, Ordering};

use nalgebra::{Matrix4, Point3};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use check::{
    boundary_edges, degenerate_triangles, inconsistent_edges, invalid_triangles, inward_components, non_manifold_edges,
    non_manifold_vertices, self_intersections, ComponentDefect, DefectList, EdgeDefect, IntersectionDefect,
    InvalidTriangle, MeshReport, TriangleDefect, VertexDefect,
};
pub use decimate::{decimate, decimate_checked, decimate_checked_with, decimate_with_locks, DecimateOptions};
pub use marching_cubes::{grid_surface, grid_surface_of_window, marching_cubes, GridSurface};
pub use repair::{repair, RepairError, RepairOptions, RepairReport, Repaired, Unrepairable};
pub use smooth::{taubin_smooth, TAUBIN_LAMBDA, TAUBIN_MU};
pub use stl::{read_stl, read_stl_file, write_stl_binary, write_stl_file};

/// Errors of the mesh module. Each variant says what is wrong and, where there is one, which input (file, triangle,
/// vertex) is at fault.
#[derive(Debug, Error)]
pub enum MeshError {
    /// A file could not be opened, read or written.
    #[error("{path}: {error}")]
    Io {
        /// The file (or stream name) involved.
        path: String,
        /// The underlying I/O error (part of the message, so not repeated as a source).
        error: std::io::Error,
    },
    /// An STL file is malformed.
    #[error("{path}: not a valid STL file: {detail}")]
    StlFormat {
        /// The file (or stream name) involved.
        path: String,
        /// What is wrong with it.
        detail: String,
    },
    /// A triangle refers to a vertex that does not exist.
    #[error("triangle {triangle} refers to vertex {vertex}, but the mesh has only {vertex_count} vertices")]
    InvalidIndex {
        /// Index of the offending triangle.
        triangle: usize,
        /// The out-of-range vertex index.
        vertex: u32,
        /// Number of vertices of the mesh.
        vertex_count: usize,
    },
    /// A vertex position is NaN or infinite.
    #[error("vertex {vertex} has a non-finite position {position_mm:?} mm")]
    NonFinitePosition {
        /// Index of the offending vertex.
        vertex: usize,
        /// Its position.
        position_mm: [f64; 3],
    },
    /// The mesh would need more vertices than a `u32` index can address.
    #[error("the mesh would have {count} vertices, more than the {max} that 32-bit indices can address")]
    TooManyVertices {
        /// Number of vertices needed.
        count: u64,
        /// The limit.
        max: u64,
    },
    /// A sampled field does not match its grid.
    #[error("{what} has {actual} samples but the grid {dims:?} has {expected}")]
    FieldSizeMismatch {
        /// Which array is wrong (`"field"`, `"region"`).
        what: &'static str,
        /// Samples expected from the grid dimensions.
        expected: usize,
        /// Samples provided.
        actual: usize,
        /// Grid dimensions.
        dims: [usize; 3],
    },
    /// The grid geometry cannot place vertices (non-positive or non-finite spacing, non-finite origin or axes).
    #[error("invalid grid geometry: {0}")]
    InvalidGeometry(String),
    /// An option value is out of its valid range.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// A transform is not an invertible affine map.
    #[error("invalid transform: {0}")]
    InvalidTransform(String),
    /// The front end cancelled the work.
    #[error(transparent)]
    Cancelled(#[from] crate::progress::Cancelled),
}

/// Indexed triangle mesh in patient LPS millimetres.
///
/// Triangles are counter-clockwise seen from outside (outward right-hand normal). The fields are public because
/// meshes are plain data passed between stages; functions that must not panic on malformed data (every check,
/// [`decimate()`], [`taubin_smooth`]) validate indices themselves.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Mesh {
    /// Vertex positions, patient LPS mm.
    pub positions: Vec<[f64; 3]>,
    /// Triangles as indices into `positions`, counter-clockwise seen from outside.
    pub triangles: Vec<[u32; 3]>,
}

/// Axis-aligned bounding box in patient LPS mm.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BoundingBox {
    /// Smallest coordinate along L, P and S.
    pub min_mm: [f64; 3],
    /// Largest coordinate along L, P and S.
    pub max_mm: [f64; 3],
}

impl BoundingBox {
    /// Extent along each axis, mm.
    pub fn size_mm(&self) -> [f64; 3] {
        [
            self.max_mm[0] - self.min_mm[0],
            self.max_mm[1] - self.min_mm[1],
            self.max_mm[2] - self.min_mm[2],
        ]
    }

    /// Centre of the box, mm.
    pub fn center_mm(&self) -> [f64; 3] {
        [
            0.5 * (self.max_mm[0] + self.min_mm[0]),
            0.5 * (self.max_mm[1] + self.min_mm[1]),
            0.5 * (self.max_mm[2] + self.min_mm[2]),
        ]
    }

    /// The smallest box holding both.
    pub fn union(&self, other: &BoundingBox) -> BoundingBox {
        BoundingBox {
            min_mm: std::array::from_fn(|a| self.min_mm[a].min(other.min_mm[a])),
            max_mm: std::array::from_fn(|a| self.max_mm[a].max(other.max_mm[a])),
        }
    }

    fn of_points<'a>(points: impl IntoIterator<Item = &'a [f64; 3]>) -> Option<Self> {
        let mut it = points.into_iter();
        let first = *it.next()?;
        let mut b = BoundingBox {
            min_mm: first,
            max_mm: first,
        };
        for p in it {
            for (a, &c) in p.iter().enumerate() {
                b.min_mm[a] = b.min_mm[a].min(c);
                b.max_mm[a] = b.max_mm[a].max(c);
            }
        }
        Some(b)
    }
}

/// `b` grown by `margin_mm` on every side (shrunk for a negative margin).
pub fn grown(b: BoundingBox, margin_mm: f64) -> BoundingBox {
    BoundingBox {
        min_mm: b.min_mm.map(|c| c - margin_mm),
        max_mm: b.max_mm.map(|c| c + margin_mm),
    }
}

/// Connected components of a mesh: triangles sharing a vertex belong to the same component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Components {
    /// Component of each triangle. Components are numbered in the order of their first triangle, so the labelling is
    /// deterministic and label 0 holds triangle 0.
    pub labels: Vec<u32>,
    /// Number of components.
    pub count: usize,
}

/// Triangles per chunk of the deterministic parallel sums: the partition does not depend on the thread count, so the
/// floating-point summation order (and the result) is the same on every machine.
pub(crate) const SUM_CHUNK: usize = 4096;

impl Mesh {
    /// A mesh from positions and triangles, refusing out-of-range indices and non-finite positions.
    pub fn new(positions: Vec<[f64; 3]>, triangles: Vec<[u32; 3]>) -> Result<Self, MeshError> {
        let mesh = Mesh { positions, triangles };
        mesh.validate()?;
        Ok(mesh)
    }

    /// Checks that every index is in range and every position finite; names the first offender.
    pub fn validate(&self) -> Result<(), MeshError> {
        if let Some((vertex, p)) = self
            .positions
            .iter()
            .enumerate()
            .find(|(_, p)| !p.iter().all(|c| c.is_finite()))
        {
            return Err(MeshError::NonFinitePosition {
                vertex,
                position_mm: *p,
            });
        }
        let n = self.positions.len();
        for (triangle, t) in self.triangles.iter().enumerate() {
            if let Some(&vertex) = t.iter().find(|&&v| v as usize >= n) {
                return Err(MeshError::InvalidIndex {
                    triangle,
                    vertex,
                    vertex_count: n,
                });
            }
        }
        if n > u32::MAX as usize {
            return Err(MeshError::TooManyVertices {
                count: n as u64,
                max: u32::MAX as u64,
            });
        }
        Ok(())
    }

    /// Rounds every position to the nearest `f32` (kept as `f64`): the positions an STL file holds. A solid that is
    /// written is checked after this, so the checks see the file's geometry and every format (STL, 3MF, glTF) carries
    /// the same numbers.
    pub fn round_to_f32(&mut self) {
        for p in &mut self.positions {
            *p = p.map(|c| f64::from(c as f32));
        }
    }

    /// Number of triangles.
    pub fn triangle_count(&self) -> usize {
        self.triangles.len()
    }

    /// Number of vertices.
    pub fn vertex_count(&self) -> usize {
        self.positions.len()
    }

    /// True when the mesh has no triangle.
    pub fn is_empty(&self) -> bool {
        self.triangles.is_empty()
    }

    /// The three corner positions of a triangle, or `None` when an index is out of range.
    #[inline]
    pub fn triangle_points(&self, t: [u32; 3]) -> Option<[[f64; 3]; 3]> {
        Some([
            *self.positions.get(t[0] as usize)?,
            *self.positions.get(t[1] as usize)?,
            *self.positions.get(t[2] as usize)?,
        ])
    }

    /// Signed enclosed volume in mm^3 (divergence theorem, origin at patient (0, 0, 0)). Positive for a closed
    /// outward mesh; for a mesh with holes the value depends on the origin and is only indicative. Triangles with
    /// out-of-range indices are ignored.
    pub fn signed_volume_mm3(&self) -> f64 {
        self.chunked_sum(|p| {
            // a . (b x c) written with edge vectors: a . ((b - a) x (c - a)) is the same number with less cancellation.
            let n = cross(sub(p[1], p[0]), sub(p[2], p[0]));
            dot(p[0], n) / 6.0
        })
    }

    /// Total surface area in mm^2. Triangles with out-of-range indices are ignored.
    pub fn area_mm2(&self) -> f64 {
        self.chunked_sum(|p| 0.5 * norm(cross(sub(p[1], p[0]), sub(p[2], p[0]))))
    }

    fn chunked_sum(&self, f: impl Fn(&[[f64; 3]; 3]) -> f64 + Sync) -> f64 {
        let partial: Vec<f64> = self
            .triangles
            .par_chunks(SUM_CHUNK)
            .map(|chunk| {
                chunk
                    .iter()
                    .filter_map(|&t| self.triangle_points(t))
                    .map(|p| f(&p))
                    .sum::<f64>()
            })
            .collect();
        partial.iter().sum()
    }

    /// Bounding box of all vertex positions, `None` for a mesh without vertices.
    pub fn bounding_box(&self) -> Option<BoundingBox> {
        BoundingBox::of_points(&self.positions)
    }

    /// The triangles with at least one vertex inside `bb` (an open patch in general), vertices renumbered in
    /// first-use order: the neighbourhood of a guide for checks and renders, without the rest of a skull.
    pub fn triangles_touching(&self, bb: &BoundingBox) -> Mesh {
        let inside = |p: &[f64; 3]| (0..3).all(|a| p[a] >= bb.min_mm[a] && p[a] <= bb.max_mm[a]);
        self.select_triangles(|t| t.iter().any(|&v| inside(&self.positions[v as usize])))
    }

    /// The triangles for which `keep` holds, in order, with only the vertices they use, renumbered in first-use
    /// order (so equal inputs give equal bytes).
    pub fn select_triangles(&self, keep: impl Fn(&[u32; 3]) -> bool) -> Mesh {
        let mut map = vec![u32::MAX; self.positions.len()];
        let mut out = Mesh::default();
        for t in self.triangles.iter().filter(|t| keep(t)) {
            let mut tri = [0u32; 3];
            for (slot, &v) in tri.iter_mut().zip(t) {
                if map[v as usize] == u32::MAX {
                    map[v as usize] = out.positions.len() as u32;
                    out.positions.push(self.positions[v as usize]);
                }
                *slot = map[v as usize];
            }
            out.triangles.push(tri);
        }
        out
    }

    /// Connected components (triangles sharing a vertex), labelled deterministically in order of first triangle.
    /// A triangle with an out-of-range index is joined through its valid vertices only.
    pub fn connected_components(&self) -> Components {
        let n = self.positions.len();
        let root = self.vertex_roots();
        let mut root_label = vec![u32::MAX; n];
        let mut labels = Vec::with_capacity(self.triangles.len());
        let mut count: u32 = 0;
        for t in &self.triangles {
            let label = match t.iter().find(|&&v| (v as usize) < n) {
                Some(&v) => {
                    let r = root[v as usize] as usize;
                    if root_label[r] == u32::MAX {
                        root_label[r] = count;
                        count += 1;
                    }
                    root_label[r]
                }
                None => {
                    count += 1;
                    count - 1
                }
            };
            labels.push(label);
        }
        Components {
            labels,
            count: count as usize,
        }
    }

    /// For each vertex, a representative vertex of its component (the same for all vertices of a component; unused
    /// vertices are their own). Triangles with out-of-range indices join their valid vertices only.
    pub(crate) fn vertex_roots(&self) -> Vec<u32> {
        let n = self.positions.len();
        let uf = ConcurrentUnionFind::new(n);
        self.triangles.par_iter().with_min_len(1 << 12).for_each(|t| {
            let valid: smallvec::SmallVec<[u32; 3]> = t.iter().copied().filter(|&v| (v as usize) < n).collect();
            for w in valid.windows(2) {
                uf.union(w[0], w[1]);
            }
        });
        uf.into_roots()
    }

    /// One mesh per connected component, in label order, each with only the vertices it uses (in their original
    /// order). Triangles with out-of-range indices are dropped.
    pub fn split_components(&self) -> Vec<Mesh> {
        let comps = self.connected_components();
        let mut parts: Vec<Vec<[u32; 3]>> = vec![Vec::new(); comps.count];
        for (t, &label) in self.triangles.iter().zip(&comps.labels) {
            if self.triangle_points(*t).is_some() {
                parts[label as usize].push(*t);
            }
        }
        parts
            .into_iter()
            .filter(|p| !p.is_empty())
            .map(|tris| compact(&self.positions, tris))
            .collect()
    }

    /// Appends `other` (its indices shifted past this mesh's vertices).
    pub fn merge(&mut self, other: &Mesh) -> Result<(), MeshError> {
        let offset = self.positions.len();
        let total = offset as u64 + other.positions.len() as u64;
        if total > u32::MAX as u64 {
            return Err(MeshError::TooManyVertices {
                count: total,
                max: u32::MAX as u64,
            });
        }
        let offset = offset as u32;
        self.positions.extend_from_slice(&other.positions);
        // Saturating: an out-of-range index of `other` stays out of range instead of overflowing.
        self.triangles
            .extend(other.triangles.iter().map(|t| t.map(|v| v.saturating_add(offset))));
        Ok(())
    }

    /// Applies an affine transform (homogeneous 4x4, e.g. `GridGeometry::patient_from_voxel` or a registration) to
    /// every position. A reflection (negative determinant) would turn outward normals inward, so the triangle
    /// winding is reversed in that case to keep the mesh outward.
    pub fn transform(&mut self, m: &Matrix4<f64>) -> Result<(), MeshError> {
        if !m.iter().all(|v| v.is_finite()) {
            return Err(MeshError::InvalidTransform("non-finite coefficient".into()));
        }
        if m[(3, 0)] != 0.0 || m[(3, 1)] != 0.0 || m[(3, 2)] != 0.0 || m[(3, 3)] != 1.0 {
            return Err(MeshError::InvalidTransform(
                "the last row must be (0, 0, 0, 1): projective transforms are not supported".into(),
            ));
        }
        let det = m.fixed_view::<3, 3>(0, 0).determinant();
        if det == 0.0 || !det.is_finite() {
            return Err(MeshError::InvalidTransform("the linear part is singular".into()));
        }
        self.positions.par_iter_mut().for_each(|p| {
            let q = m.transform_point(&Point3::new(p[0], p[1], p[2]));
            *p = [q.x, q.y, q.z];
        });
        if det < 0.0 {
            for t in &mut self.triangles {
                t.swap(1, 2);
            }
        }
        Ok(())
    }
}

/// A mesh with the given triangles and only the vertices they use, renumbered in their original order.
pub(crate) fn compact(positions: &[[f64; 3]], triangles: Vec<[u32; 3]>) -> Mesh {
    let mut remap = vec![u32::MAX; positions.len()];
    for t in &triangles {
        for &v in t {
            remap[v as usize] = 0;
        }
    }
    let mut new_positions = Vec::new();
    for (v, r) in remap.iter_mut().enumerate() {
        if *r == 0 {
            *r = new_positions.len() as u32;
            new_positions.push(positions[v]);
        }
    }
    let triangles = triangles
        .into_iter()
        .map(|t| [remap[t[0] as usize], remap[t[1] as usize], remap[t[2] as usize]])
        .collect();
    Mesh {
        positions: new_positions,
        triangles,
    }
}

/// Union-find over `0..n` that threads share without locks: a root is only ever linked under a smaller root (by
/// compare-and-swap, so two unions cannot both link it) and paths are only ever shortened to an ancestor, so a parent
/// always has a smaller index, every find terminates, and the final partition is the connected components whatever
/// order the unions ran in.
pub(crate) struct ConcurrentUnionFind {
    parent: Vec<AtomicU32>,
}

impl ConcurrentUnionFind {
    pub(crate) fn new(n: usize) -> Self {
        ConcurrentUnionFind {
            parent: (0..n as u32).into_par_iter().map(AtomicU32::new).collect(),
        }
    }

    pub(crate) fn find(&self, mut x: u32) -> u32 {
        loop {
            let p = self.parent[x as usize].load(Ordering::Relaxed);
            if p == x {
                return x;
            }
            let g = self.parent[p as usize].load(Ordering::Relaxed);
            if g != p {
                // Path halving: any ancestor is a valid parent.
                self.parent[x as usize].store(g, Ordering::Relaxed);
            }
            x = g;
        }
    }

    pub(crate) fn union(&self, a: u32, b: u32) {
        // Most unions of a surface join vertices already joined, whose parents are often the same root.
        if self.parent[a as usize].load(Ordering::Relaxed) == self.parent[b as usize].load(Ordering::Relaxed) {
            return;
        }
        let (mut a, mut b) = (a, b);
        loop {
            let ra = self.find(a);
            let rb = self.find(b);
            if ra == rb {
                return;
            }
            let (hi, lo) = if ra > rb { (ra, rb) } else { (rb, ra) };
            match self.parent[hi as usize].compare_exchange(hi, lo, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return,
                // `hi` was linked meanwhile: start again from the two roots.
                Err(_) => (a, b) = (hi, lo),
            }
        }
    }

    /// The root of every element (the parent array, fully compressed in place).
    pub(crate) fn into_roots(self) -> Vec<u32> {
        (0..self.parent.len() as u32)
            .into_par_iter()
            .with_min_len(1 << 12)
            .for_each(|x| {
                // A read-only walk: the only writes now are these, each of a root to its own element, so no
                // element can be given a non-root parent after its own store.
                let mut r = x;
                loop {
                    let p = self.parent[r as usize].load(Ordering::Relaxed);
                    if p == r {
                        break;
                    }
                    r = p;
                }
                self.parent[x as usize].store(r, Ordering::Relaxed);
            });
        self.parent.into_iter().map(AtomicU32::into_inner).collect()
    }
}

#[inline]
pub(crate) fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

#[inline]
pub(crate) fn add(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}

#[inline]
pub(crate) fn scale(a: [f64; 3], s: f64) -> [f64; 3] {
    [a[0] * s, a[1] * s, a[2] * s]
}

#[inline]
pub(crate) fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

#[inline]
pub(crate) fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

#[inline]
pub(crate) fn norm(a: [f64; 3]) -> f64 {
    dot(a, a).sqrt()
}

#[inline]
pub(crate) fn centroid(p: &[[f64; 3]; 3]) -> [f64; 3] {
    [
        (p[0][0] + p[1][0] + p[2][0]) / 3.0,
        (p[0][1] + p[1][1] + p[2][1]) / 3.0,
        (p[0][2] + p[1][2] + p[2][2]) / 3.0,
    ]
}

#[cfg(test)]
pub(crate) mod test_util {
    use super::Mesh;

    /// Axis-aligned cube `[lo, hi]^3`, 12 outward triangles.
    pub(crate) fn cube(lo: [f64; 3], hi: [f64; 3]) -> Mesh {
        let mut positions = Vec::new();
        for c in 0..8u32 {
            positions.push([
                if c & 1 == 0 { lo[0] } else { hi[0] },
                if c & 2 == 0 { lo[1] } else { hi[1] },
                if c & 4 == 0 { lo[2] } else { hi[2] },
            ]);
        }
        let triangles = vec![
            // z = lo (normal -z)
            [0, 2, 3],
            [0, 3, 1],
            // z = hi (normal +z)
            [4, 5, 7],
            [4, 7, 6],
            // y = lo (normal -y)
            [0, 1, 5],
            [0, 5, 4],
            // y = hi (normal +y)
            [2, 6, 7],
            [2, 7, 3],
            // x = lo (normal -x)
            [0, 4, 6],
            [0, 6, 2],
            // x = hi (normal +x)
            [1, 3, 7],
            [1, 7, 5],
        ];
        Mesh { positions, triangles }
    }

    /// Regular tetrahedron-ish closed outward mesh.
    pub(crate) fn tetrahedron() -> Mesh {
        Mesh {
            positions: vec![[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            triangles: vec![[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::{cube, tetrahedron};
    use super::*;

    #[test]
    fn cube_volume_area_and_box() {
        let m = cube([1.0, 2.0, 3.0], [3.0, 5.0, 7.0]);
        assert!((m.signed_volume_mm3() - 24.0).abs() < 1e-12);
        assert!((m.area_mm2() - 2.0 * (6.0 + 8.0 + 12.0)).abs() < 1e-12);
        let b = m.bounding_box().expect("non-empty");
        assert_eq!(b.min_mm, [1.0, 2.0, 3.0]);
        assert_eq!(b.max_mm, [3.0, 5.0, 7.0]);
        assert!((tetrahedron().signed_volume_mm3() - 1.0 / 6.0).abs() < 1e-15);
    }

    #[test]
    fn components_split_and_merge() {
        let mut m = cube([0.0; 3], [1.0; 3]);
        m.merge(&tetrahedron()).expect("small");
        m.merge(&cube([5.0; 3], [6.0; 3])).expect("small");
        let c = m.connected_components();
        assert_eq!(c.count, 3);
        assert_eq!(c.labels[0], 0);
        assert_eq!(c.labels[12], 1);
        assert_eq!(c.labels[16], 2);
        let parts = m.split_components();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0].triangles.len(), 12);
        assert_eq!(parts[1].positions.len(), 4);
        assert!((parts[2].signed_volume_mm3() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn reflection_keeps_the_mesh_outward() {
        let mut m = cube([0.0; 3], [2.0; 3]);
        let mut mirror = Matrix4::identity();
        mirror[(0, 0)] = -1.0;
        mirror[(1, 3)] = 10.0;
        m.transform(&mirror).expect("affine");
        assert!((m.signed_volume_mm3() - 8.0).abs() < 1e-12);
        assert_eq!(m.bounding_box().expect("non-empty").min_mm, [-2.0, 10.0, 0.0]);
        let mut projective = Matrix4::identity();
        projective[(3, 0)] = 1.0;
        assert!(m.transform(&projective).is_err());
    }

    #[test]
    fn validate_names_bad_indices() {
        let err = Mesh::new(vec![[0.0; 3]], vec![[0, 0, 3]]).expect_err("index 3 is out of range");
        assert!(matches!(
            err,
            MeshError::InvalidIndex {
                triangle: 0,
                vertex: 3,
                ..
            }
        ));
        let bad = Mesh {
            positions: vec![[0.0; 3]],
            triangles: vec![[0, 0, 7]],
        };
        // Nothing panics on bad indices.
        assert_eq!(bad.signed_volume_mm3(), 0.0);
        assert_eq!(bad.connected_components().count, 1);
        assert!(bad.split_components().is_empty());
    }

    proptest::proptest! {
        #![proptest_config(crate::testing::proptest_config(300))]
        #[test]
        fn components_do_not_depend_on_the_thread_count(
            tris in proptest::collection::vec(proptest::array::uniform3(0u32..60), 0..80),
            threads in 1usize..4,
        ) {
            use proptest::prelude::*;
            let mesh = Mesh { positions: vec![[0.0; 3]; 50], triangles: tris };
            // Reference: repeated relaxation of labels to the smallest vertex reachable.
            let n = mesh.positions.len();
            let mut label: Vec<usize> = (0..n).collect();
            loop {
                let mut changed = false;
                for t in &mesh.triangles {
                    let valid: Vec<usize> = t.iter().map(|&v| v as usize).filter(|&v| v < n).collect();
                    let m = valid.iter().map(|&v| label[v]).min();
                    for &v in &valid {
                        if let Some(m) = m {
                            if label[v] > m {
                                label[v] = m;
                                changed = true;
                            }
                        }
                    }
                }
                if !changed {
                    break;
                }
            }
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("thread pool");
            let (roots, comps) = pool.install(|| (mesh.vertex_roots(), mesh.connected_components()));
            for a in 0..n {
                for b in 0..n {
                    prop_assert_eq!(roots[a] == roots[b], label[a] == label[b]);
                }
            }
            prop_assert_eq!(comps, pool.install(|| mesh.connected_components()));
        }
    }
}
