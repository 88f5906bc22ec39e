//! The checks of a raw marching-cubes surface ([`GridSurface`]), proven from its construction where the general
//! checks search.
//!
//! Why: [`MeshReport::new`] finds self-intersections with a BVH over all triangles and nesting with rays, which on a
//! 2.3 M-triangle skull cost 30 times the surface itself. A surface straight out of marching cubes carries more
//! information than a triangle soup: every triangle belongs to one grid cell and every vertex to one grid edge. That
//! makes the expensive searches unnecessary, and the report is still a proof, not a sampling:
//!
//! - **Self-intersections: only triangles of the same cell are tested.** A vertex lies strictly inside its grid edge
//!   (the interpolation parameter is clamped to `[T_MIN, 1 - T_MIN]`), so a triangle lies in the closed box of its
//!   cell. Cells that share no corner are disjoint. Two cells that share a face, an edge or a corner meet exactly in
//!   it, and a triangle meets a face of its own (convex) cell in the convex hull of its vertices on that face: for a
//!   corner, nothing (no vertex sits on a corner); for a grid edge, at most the one vertex of that edge; for a face,
//!   at most a segment between two vertices on the face. Such a segment is always one of the face's segments of the
//!   face rule, never a diagonal (the table never joins two vertices of one face by a diagonal, and a triangle
//!   cannot have all three vertices on one face, which carries at most two segments). Both cells see the same face
//!   segments, and the two segments of an ambiguous face cut off opposite corners, so they are disjoint. Hence two
//!   triangles of different cells meet only in a shared vertex or along a shared edge with each triangle on its own
//!   side of the face: exactly the contacts the intersection rules accept (the margins, at least `T_MIN` of a voxel,
//!   are many orders of magnitude above the tolerances of the exact tests, so those tests agree). Triangles of one
//!   cell are tested pairwise with the same exact test as the full check; there are at most twelve of them.
//! - **Outward: the nesting of each component is read from the grid, not cast.** The grid line through a row of
//!   samples meets the surface only at the vertices of that row's x-edges (a triangle meets a grid edge at most in
//!   its vertex there), and crossing such a vertex flips the state between the two samples of the edge. The smallest
//!   x-edge vertex id of a component is its leftmost crossing of the first row it crosses (vertex ids run by slice,
//!   row, axis, column), so the sample just before it is reached from outside the grid without crossing the
//!   component: that sample is inside the bone exactly when the component is a cavity (nested in an odd number of
//!   others). Its signed volume must then be negative, and positive otherwise; both are checked.
//! - **Closed, manifold, consistently oriented:** the linear fan test of the general check (no search there either).
//! - **Invalid and degenerate triangles, volume, area, bounding box:** as in the general check.
//!
//! The premises (vertices on their own edges, the table's face rule) hold because only marching cubes makes a
//! [`GridSurface`] and its mesh cannot be changed through it; the table properties are tested exhaustively in
//! `tables`, and the tests below compare this report with the full one on random fields, real CT and deliberately
//! broken surfaces. When any step here cannot prove its invariant, the report is [`MeshReport::new`]'s, which names
//! the failures, so a failing surface gets exactly the same report either way.

use rayon::prelude::*;

use super::check::{fans_are_closed_disks, points, DefectList, MeshReport, VertexTriangles, DEGENERATE_AREA_MM2};
use super::intersect::{triangles_intersect, Plane};
use super::marching_cubes::{vertex_edge, GridSurface};
use super::Mesh;

/// Cells per parallel task of the within-cell intersection test.
const CELL_BLOCK: usize = 1 << 13;

impl GridSurface {
    /// Every check of [`MeshReport`], proven from the construction where possible (see the module documentation);
    /// the same report as `MeshReport::new(self.mesh())`.
    pub fn report(&self) -> MeshReport {
        self.proven_report().unwrap_or_else(|| MeshReport::new(&self.mesh))
    }

    /// The report of a surface proven valid here, or `None` when some invariant could not be proven.
    fn proven_report(&self) -> Option<MeshReport> {
        let mesh = &self.mesh;
        if mesh.triangles.is_empty() || self.vertex_edges.len() != mesh.positions.len() {
            return None;
        }
        let (volume_mm3, area_mm2, volume_terms) = mesh.checked_volume_terms(DEGENERATE_AREA_MM2)?;
        let vt = VertexTriangles::build(mesh);
        if !fans_are_closed_disks(mesh, &vt) {
            return None;
        }
        drop(vt);
        let components = self.outward_components(mesh, &volume_terms)?;
        drop(volume_terms);
        if !self.cells_free_of_intersections(mesh) {
            return None;
        }
        Some(MeshReport {
            vertices: mesh.positions.len(),
            triangles: mesh.triangles.len(),
            components,
            closed_components: components,
            volume_mm3,
            area_mm2,
            bounding_box: mesh.bounding_box(),
            invalid_triangles: DefectList::none(),
            boundary_edges: DefectList::none(),
            non_manifold_edges: DefectList::none(),
            non_manifold_vertices: DefectList::none(),
            inconsistent_edges: DefectList::none(),
            inward_components: DefectList::none(),
            degenerate_triangles: DefectList::none(),
            self_intersections: DefectList::none(),
        })
    }

    /// The number of components when each is oriented as its nesting requires, else `None`. Needs a closed,
    /// consistently oriented mesh; `volume_terms` are the triangles' signed volume terms.
    fn outward_components(&self, mesh: &Mesh, volume_terms: &[f64]) -> Option<usize> {
        let root = mesh.vertex_roots();
        // Each component's volume, summed in triangle order as the general check sums it (so the signs agree), kept
        // at the component's root vertex.
        let mut volume = vec![0.0f64; mesh.positions.len()];
        let mut used = vec![false; mesh.positions.len()];
        for (t, term) in mesh.triangles.iter().zip(volume_terms) {
            let r = root[t[0] as usize] as usize;
            volume[r] += term;
            used[r] = true;
        }
        // Some(true): a cavity, Some(false): an outer shell; from the sample before the component's first x-vertex.
        let mut cavity: Vec<Option<bool>> = vec![None; mesh.positions.len()];
        for (&kind, &r) in self.vertex_edges.iter().zip(&root) {
            let slot = &mut cavity[r as usize];
            if kind != vertex_edge::OTHER && slot.is_none() {
                *slot = Some(kind == vertex_edge::X_FROM_INSIDE);
            }
        }
        let mut components = 0;
        for ((&u, c), &v) in used.iter().zip(&cavity).zip(&volume) {
            if !u {
                continue;
            }
            components += 1;
            let outward = match c {
                Some(true) => v < 0.0,
                Some(false) => v > 0.0,
                None => false,
            };
            if !outward {
                return None;
            }
        }
        Some(components)
    }

    /// True when no two triangles of the same cell intersect (the only pairs that can; see the module doc).
    fn cells_free_of_intersections(&self, mesh: &Mesh) -> bool {
        let blocks: Vec<&[u8]> = self.cell_triangles.chunks(CELL_BLOCK).collect();
        let mut starts = Vec::with_capacity(blocks.len());
        let mut total = 0usize;
        for b in &blocks {
            starts.push(total);
            total += b.iter().map(|&n| usize::from(n)).sum::<usize>();
        }
        if total != mesh.triangles.len() {
            return false;
        }
        blocks.par_iter().zip(starts.par_iter()).all(|(cells, &start)| {
            let mut first = start;
            for &n in cells.iter() {
                let n = usize::from(n);
                if n >= 2 && !cell_free_of_intersections(mesh, first, n) {
                    return false;
                }
                first += n;
            }
            true
        })
    }
}

/// A triangle's indices, corners and plane, as the exact intersection test takes them.
type EvaluatedTriangle = ([u32; 3], [[f64; 3]; 3], Plane);

/// No two of the `n` triangles from `first` intersect.
fn cell_free_of_intersections(mesh: &Mesh, first: usize, n: usize) -> bool {
    let mut planes: smallvec::SmallVec<[EvaluatedTriangle; 12]> = smallvec::SmallVec::new();
    for t in &mesh.triangles[first..first + n] {
        let Some(p) = points(mesh, *t) else {
            return false;
        };
        let Some(plane) = Plane::of(&p) else {
            return false;
        };
        planes.push((*t, p, plane));
    }
    for (a, (ia, pa, qa)) in planes.iter().enumerate() {
        for (ib, pb, qb) in &planes[a + 1..] {
            if triangles_intersect(*ia, pa, qa, *ib, pb, qb) {
                return false;
            }
        }
    }
    true
}
