//! The checks of a raw marching-cubes surface ([`GridSurface`]), proven from its construction where the general
//! checks search.
//!
//! Why: [`MeshReport::new`] finds self-intersections with a BVH over all triangles and nesting with rays, which on a
//! 2.3 M-triangle skull cost 24 times the surface itself (3.5 s; this check: 0.11 s). A surface straight out of marching cubes carries more
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
//!   cell (at most twelve) are tested pairwise: a conservative quick plane test settles almost every pair, the exact
//!   test of the general check the rest. That they never intersect either, wherever their vertices sit on the
//!   edges, is what the sampling test below finds for all 256 cases; the check does not rely on it.
//! - **Outward: the nesting of each component is read from the grid, not cast.** The grid line through a row of
//!   samples meets the surface only at the vertices of that row's x-edges (a triangle meets a grid edge at most in
//!   its vertex there), and crossing such a vertex flips the state between the two samples of the edge. The smallest
//!   x-edge vertex id of a component is its leftmost crossing of the first row it crosses (vertex ids run by slice,
//!   row, axis, column), so the sample just before it is reached from outside the grid without crossing the
//!   component: that sample is inside the bone exactly when the component is a cavity (nested in an odd number of
//!   others). Its signed volume must then be negative, and positive otherwise; both are checked.
//! - **Closed, manifold, consistently oriented:** every vertex's triangles must form one closed fan with each edge used
//!   once in each direction (the fan test of the general check). The triangles around a vertex of slice `k` come
//!   from cell slices `k - 1` and `k` only, so fans are gathered slice by slice in memory that stays in cache, and a
//!   range test makes sure no other triangle uses the vertex. That the test always passes is proven for every
//!   configuration by the two-cell and four-cell tests in `tables`; here it guards the implementation.
//! - **Invalid and degenerate triangles, volume, area, bounding box:** as in the general check.
//!
//! The premises (vertices on their own edges, the table's face rule) hold because only marching cubes makes a
//! [`GridSurface`] and its mesh cannot be changed through it; the table properties are tested exhaustively in
//! `tables`, and the tests below compare this report with the full one on random fields, real CT and deliberately
//! broken surfaces. When any step here cannot prove its invariant, the report is [`MeshReport::new`]'s, which names
//! the failures, so a failing surface gets exactly the same report either way.

use rayon::prelude::*;

use super::check::{ends_form_one_disk, points, DefectList, MeshReport, DEGENERATE_AREA_MM2};
use super::intersect::{certainly_apart, triangles_intersect, Plane, QuickPlane};
use super::marching_cubes::{vertex_edge, GridSurface};
use super::Mesh;
use super::{cross, dot, norm, sub, SUM_CHUNK};

/// Cells per parallel task of the within-cell intersection test.
const CELL_BLOCK: usize = 1 << 13;

/// Relative size (to the sum of the magnitudes of its terms) below which a component's volume is too close to zero
/// for its sign to be trusted whatever the summation order (rounding is about `1e-16` per term); such a component
/// sends the surface to the general check.
const VOLUME_SIGN_MARGIN: f64 = 1e-9;

/// A component's signed volume, summed over its triangles.
struct ComponentVolume {
    /// The component's root vertex (see `Mesh::vertex_roots`).
    root: u32,
    /// Signed volume, mm^3.
    volume_mm3: f64,
    /// Sum of the magnitudes of the triangles' volume terms, mm^3.
    magnitude_mm3: f64,
}

/// What one pass over the triangles establishes.
struct TriangleSums {
    /// As `Mesh::signed_volume_mm3` computes it (same chunks, same order, same bits).
    volume_mm3: f64,
    /// As `Mesh::area_mm2` computes it.
    area_mm2: f64,
    /// Every component's volume, by root.
    components: Vec<ComponentVolume>,
}

impl TriangleSums {
    /// The sums, or `None` when a triangle has an index out of range, a repeated vertex, a non-finite corner or an
    /// area below [`DEGENERATE_AREA_MM2`] (the general check then names it).
    fn of(mesh: &Mesh, root: &[u32]) -> Option<TriangleSums> {
        let chunks: Vec<Option<(f64, f64, Vec<ComponentVolume>)>> = mesh
            .triangles
            .par_chunks(SUM_CHUNK)
            .map(|chunk| chunk_sums(mesh, root, chunk))
            .collect();
        let (mut volume, mut area, mut parts) = (Vec::new(), Vec::new(), Vec::new());
        for c in chunks {
            let (v, a, p) = c?;
            volume.push(v);
            area.push(a);
            parts.extend(p);
        }
        // Stable: a component's parts stay in chunk order, so its sum does not depend on the thread count.
        parts.sort_by_key(|p| p.root);
        let components = parts
            .chunk_by(|a, b| a.root == b.root)
            .map(|run| ComponentVolume {
                root: run[0].root,
                volume_mm3: run.iter().map(|p| p.volume_mm3).sum(),
                magnitude_mm3: run.iter().map(|p| p.magnitude_mm3).sum(),
            })
            .collect();
        Some(TriangleSums {
            volume_mm3: volume.iter().sum(),
            area_mm2: area.iter().sum(),
            components,
        })
    }
}

/// One chunk's volume and area sums (each as `Mesh::chunked_sum` folds them) and its components' volumes.
fn chunk_sums(mesh: &Mesh, root: &[u32], chunk: &[[u32; 3]]) -> Option<(f64, f64, Vec<ComponentVolume>)> {
    let n = mesh.positions.len();
    let mut volume = [0.0f64; SUM_CHUNK];
    let mut area = [0.0f64; SUM_CHUNK];
    let mut parts: Vec<ComponentVolume> = Vec::new();
    for ((t, v), a) in chunk.iter().zip(volume.iter_mut()).zip(area.iter_mut()) {
        if t.iter().any(|&i| i as usize >= n) || t[0] == t[1] || t[1] == t[2] || t[0] == t[2] {
            return None;
        }
        let p = points(mesh, *t)?;
        let c = cross(sub(p[1], p[0]), sub(p[2], p[0]));
        *a = 0.5 * norm(c);
        if *a < DEGENERATE_AREA_MM2 {
            return None;
        }
        *v = dot(p[0], c) / 6.0;
        let r = root[t[0] as usize];
        // Triangles of one component mostly follow each other: try the last component first.
        let part = match parts.last_mut() {
            Some(last) if last.root == r => Some(last),
            _ => parts.iter_mut().find(|q| q.root == r),
        };
        match part {
            Some(q) => {
                q.volume_mm3 += *v;
                q.magnitude_mm3 += v.abs();
            }
            None => parts.push(ComponentVolume {
                root: r,
                volume_mm3: *v,
                magnitude_mm3: v.abs(),
            }),
        }
    }
    let len = chunk.len();
    Some((
        volume[..len].iter().copied().sum::<f64>(),
        area[..len].iter().copied().sum::<f64>(),
        parts,
    ))
}

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
        let root = mesh.vertex_roots();
        let sums = TriangleSums::of(mesh, &root)?;
        if !self.fans_are_closed_disks(mesh) {
            return None;
        }
        if !self.components_outward(&root, &sums.components) {
            return None;
        }
        drop(root);
        if !self.cells_free_of_intersections(mesh) {
            return None;
        }
        let components = sums.components.len();
        Some(MeshReport {
            vertices: mesh.positions.len(),
            triangles: mesh.triangles.len(),
            components,
            closed_components: components,
            volume_mm3: sums.volume_mm3,
            area_mm2: sums.area_mm2,
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

    /// True when the triangles around every vertex form one closed fan with each edge used once in each direction
    /// (the fan test of the general check), and every triangle uses only vertices of the two slices its cell spans.
    ///
    /// The triangles around a vertex of slice `k` all come from the cells of cell slices `k - 1` and `k`, so each
    /// slice's fans are gathered from those two cell slices alone, in parallel, in memory that stays in cache; the
    /// range test makes sure no triangle elsewhere uses the vertex.
    fn fans_are_closed_disks(&self, mesh: &Mesh) -> bool {
        let (sv, st) = (&self.slice_vertices, &self.slice_triangles);
        if sv.len() < 2 || st.is_empty() || st[st.len() - 1] as usize != mesh.triangles.len() {
            return false;
        }
        let cell_slices = st.len() - 1;
        (0..sv.len() - 1)
            .into_par_iter()
            .map_init(SliceFans::default, |scratch, k| {
                // Triangles of cell slice k only use vertices of slices k and k + 1.
                let own = st.get(k).zip(st.get(k + 1));
                let in_range = own.is_none_or(|(&t0, &t1)| {
                    let (v0, v1) = (sv[k], sv[(k + 2).min(sv.len() - 1)]);
                    mesh.triangles[t0 as usize..t1 as usize]
                        .iter()
                        .flatten()
                        .all(|&v| v >= v0 && v < v1)
                });
                let t0 = st[k.saturating_sub(1).min(cell_slices)] as usize;
                let t1 = st[(k + 1).min(cell_slices)] as usize;
                in_range && scratch.all_disks(&mesh.triangles[t0..t1], sv[k], sv[k + 1])
            })
            .all(|ok| ok)
    }

    /// True when every component is oriented as its nesting requires (needs a closed, consistently oriented mesh):
    /// an outer shell has a positive volume, a cavity a negative one, and which it is comes from the sample before
    /// the component's first x-vertex (see the module documentation).
    fn components_outward(&self, root: &[u32], components: &[ComponentVolume]) -> bool {
        const UNSEEN: u8 = 0;
        const SHELL: u8 = 1;
        const CAVITY: u8 = 2;
        let mut kind = vec![UNSEEN; root.len()];
        for (&edge, &r) in self.vertex_edges.iter().zip(root) {
            let k = &mut kind[r as usize];
            if edge != vertex_edge::OTHER && *k == UNSEEN {
                *k = if edge == vertex_edge::X_FROM_INSIDE {
                    CAVITY
                } else {
                    SHELL
                };
            }
        }
        components.iter().all(|c| {
            // A sum this close to zero could have the other sign in the general check's summation order.
            let sure = c.volume_mm3.abs() > VOLUME_SIGN_MARGIN * c.magnitude_mm3;
            sure && match kind[c.root as usize] {
                SHELL => c.volume_mm3 > 0.0,
                CAVITY => c.volume_mm3 < 0.0,
                _ => false,
            }
        })
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

/// Reused buffers for the fans of one slice's vertices.
#[derive(Default)]
struct SliceFans {
    /// Per local vertex: where its fan starts in `ends`.
    start: Vec<u32>,
    /// Per local vertex, while filling: where its next entry goes.
    fill: Vec<u32>,
    /// (next, previous) vertex of each triangle around each vertex, grouped by vertex.
    ends: Vec<(u32, u32)>,
}

impl SliceFans {
    /// True when the fans of vertices `v0..v1`, made of the corners of `triangles` at those vertices, are closed
    /// disks.
    fn all_disks(&mut self, triangles: &[[u32; 3]], v0: u32, v1: u32) -> bool {
        let n = (v1 - v0) as usize;
        // Corners at other vertices (about half) go to a last, ignored slot: no unpredictable branch.
        let slot = |v: u32| (v.wrapping_sub(v0) as usize).min(n);
        self.start.clear();
        self.start.resize(n + 2, 0);
        for &v in triangles.iter().flatten() {
            self.start[slot(v) + 1] += 1;
        }
        for i in 0..=n {
            self.start[i + 1] += self.start[i];
        }
        self.ends.clear();
        self.ends.resize(self.start[n + 1] as usize, (0, 0));
        self.fill.clear();
        self.fill.extend_from_slice(&self.start[..=n]);
        for t in triangles {
            for k in 0..3 {
                let i = slot(t[k]);
                self.ends[self.fill[i] as usize] = (t[(k + 1) % 3], t[(k + 2) % 3]);
                self.fill[i] += 1;
            }
        }
        (0..n).all(|i| ends_form_one_disk(&self.ends[self.start[i] as usize..self.start[i + 1] as usize]))
    }
}

/// A triangle's indices, corners and quick plane.
type EvaluatedTriangle = ([u32; 3], [[f64; 3]; 3], QuickPlane);

/// No two of the `n` triangles from `first` intersect: almost every pair is settled by [`certainly_apart`], the rest
/// by the exact test of the general check.
fn cell_free_of_intersections(mesh: &Mesh, first: usize, n: usize) -> bool {
    let mut tris: smallvec::SmallVec<[EvaluatedTriangle; 12]> = smallvec::SmallVec::new();
    for t in &mesh.triangles[first..first + n] {
        let Some(p) = points(mesh, *t) else {
            return false;
        };
        tris.push((*t, p, QuickPlane::of(&p)));
    }
    for (k, (ia, pa, qa)) in tris.iter().enumerate() {
        for (ib, pb, qb) in &tris[k + 1..] {
            if certainly_apart(*ia, pa, qa, *ib, pb, qb) {
                continue;
            }
            let (Some(plane_a), Some(plane_b)) = (Plane::of(pa), Plane::of(pb)) else {
                return false;
            };
            if triangles_intersect(*ia, pa, &plane_a, *ib, pb, &plane_b) {
                return false;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::GridGeometry;
    use crate::mesh::intersect::triangles_intersect_points;
    use crate::mesh::marching_cubes::tests::{blob_field, field_case, tilted_axes};
    use crate::mesh::marching_cubes::{grid_surface, grid_surface_of_window, T_MIN};
    use crate::mesh::tables::{case_table, EDGE_CORNERS};
    use proptest::prelude::*;

    /// Deterministic numbers in `[0, 1)`.
    fn uniform(seed: &mut u64) -> f64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        (*seed >> 11) as f64 / (1u64 << 53) as f64
    }

    #[test]
    fn triangles_of_one_cell_never_intersect_wherever_their_vertices_sit_on_the_edges() {
        // Every case, 2000 placements of its vertices on their edges: at either clamp (T_MIN from a corner), at the
        // midpoint (an excluded sample above the window) or anywhere between, mixed. No pair of the cell's
        // triangles meets other than in shared vertices and edges (the exact test of the general check), and the
        // quick test never calls a pair apart that the exact test finds touching. This is the evidence for the
        // within-cell half of the grid check's argument; the check itself still tests those pairs.
        let table = case_table();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut pairs = 0usize;
        for case in 0..256 {
            let tris = &table.tris[table.tri_start[case] as usize..table.tri_start[case + 1] as usize];
            for _ in 0..2000 {
                let mut at = [[0.0f64; 3]; 12];
                for (e, p) in at.iter_mut().enumerate() {
                    let t = match (uniform(&mut seed) * 4.0) as u32 {
                        0 => T_MIN,
                        1 => 1.0 - T_MIN,
                        2 => 0.5,
                        _ => T_MIN + (1.0 - 2.0 * T_MIN) * uniform(&mut seed),
                    };
                    let [c0, c1] =
                        EDGE_CORNERS[e].map(|c| [f64::from(c & 1), f64::from((c >> 1) & 1), f64::from(c >> 2)]);
                    *p = std::array::from_fn(|a| c0[a] + t * (c1[a] - c0[a]));
                }
                for (k, ta) in tris.iter().enumerate() {
                    for tb in &tris[k + 1..] {
                        let (ia, ib) = (ta.map(u32::from), tb.map(u32::from));
                        let (pa, pb) = (ia.map(|e| at[e as usize]), ib.map(|e| at[e as usize]));
                        assert!(
                            !triangles_intersect_points(ia, &pa, ib, &pb),
                            "case {case}: triangles {ta:?} and {tb:?} intersect at {at:?}"
                        );
                        pairs += 1;
                    }
                }
            }
        }
        assert!(pairs > 1_000_000, "{pairs}");
    }

    /// The grid check proves a valid surface by itself and says exactly what the general check says.
    fn assert_proven_and_agrees(s: &GridSurface) {
        let general = MeshReport::new(s.mesh());
        assert!(general.is_valid(), "{general}");
        assert!(
            s.proven_report().is_some(),
            "the grid check could not prove a valid surface"
        );
        assert_eq!(s.report(), general);
    }

    /// Small grids with windows and fields full of extreme values: samples at the window's ends and beyond (vertices
    /// at edge midpoints), and far from the iso value (vertices clamped to T_MIN from a corner), where triangles of
    /// neighbouring cells come closest.
    fn window_case() -> impl Strategy<Value = (GridGeometry, Vec<i16>, i16, i16)> {
        (1usize..7, 1usize..7, 1usize..7, -40.0f64..40.0, -50i16..50, 0i16..60).prop_flat_map(
            |(nx, ny, nz, angle, lo, width)| {
                let mut g = GridGeometry::axis_aligned([nx, ny, nz], [0.4, 0.7, 1.3], [3.0, -7.0, 11.0]);
                g.axes = tilted_axes(angle);
                let hi = lo + width;
                let value = prop_oneof![
                    Just(i16::MIN),
                    Just(i16::MAX),
                    Just(lo - 1),
                    Just(lo),
                    Just(hi),
                    Just(hi + 1),
                    -100i16..100,
                ];
                (Just(g), prop::collection::vec(value, nx * ny * nz), Just(lo), Just(hi))
            },
        )
    }

    proptest! {
        #![proptest_config(crate::testing::proptest_config(300))]
        #[test]
        fn grid_check_proves_what_the_general_check_finds_on_random_fields((g, field, iso, region) in field_case()) {
            let s = grid_surface(&g, &field, iso, region.as_deref()).expect("valid input");
            if !s.mesh().is_empty() {
                assert_proven_and_agrees(&s);
            }
        }

        #[test]
        fn window_surfaces_equal_region_surfaces_and_are_proven((g, field, lo, hi) in window_case()) {
            let mut mask = vec![7u8; field.len()];
            let s = grid_surface_of_window(&g, &field, lo, hi, Some(&mut mask)).expect("valid input");
            let expected: Vec<u8> = field.iter().map(|&v| u8::from(v >= lo && v <= hi)).collect();
            prop_assert_eq!(&mask, &expected);
            prop_assert_eq!(s.inside_samples(), expected.iter().map(|&b| u64::from(b)).sum::<u64>());
            let by_region = grid_surface(&g, &field, f32::from(lo) - 0.5, Some(&expected)).expect("valid input");
            prop_assert_eq!(&s, &by_region);
            let without_mask = grid_surface_of_window(&g, &field, lo, hi, None).expect("valid input");
            prop_assert_eq!(&s, &without_mask);
            if !s.mesh().is_empty() {
                assert_proven_and_agrees(&s);
            }
        }
    }

    /// Three nested spheres (a bone, its marrow cavity and a ball in the cavity: nesting depths 0, 1 and 2) and a
    /// blob elsewhere, on an anisotropic tilted grid.
    fn nested_surface() -> GridSurface {
        let mut g = GridGeometry::axis_aligned([34, 30, 26], [0.5, 0.55, 0.6], [-8.0, -8.0, -7.0]);
        g.axes = tilted_axes(12.0);
        let field: Vec<i16> = (0..g.len())
            .map(|x| {
                let [i, j, k] = g.ijk(x);
                let p = g.to_patient([i as f64, j as f64, k as f64]);
                let c = g.to_patient([15.5, 14.5, 12.5]);
                let d = (p - c).norm();
                let s = if d < 3.5 {
                    2.5 - d
                } else if d < 6.0 {
                    d - 4.5
                } else {
                    7.5 - d
                };
                let blob = 1.2 - (p - g.to_patient([30.0, 4.0, 4.0])).norm();
                (400.0 * s.max(blob)).clamp(-1000.0, 1000.0) as i16
            })
            .collect();
        grid_surface(&g, &field, 0.0, None).expect("valid input")
    }

    #[test]
    fn nested_components_are_proven_outward() {
        let s = nested_surface();
        assert_eq!(s.mesh().connected_components().count, 4);
        assert_proven_and_agrees(&s);
        assert!(s.report().volume_mm3 > 0.0);
    }

    #[test]
    fn every_flipped_component_is_caught() {
        let s = nested_surface();
        let comps = s.mesh().connected_components();
        for c in 0..comps.count as u32 {
            let mut flipped = s.clone();
            for (t, &l) in flipped.mesh.triangles.iter_mut().zip(&comps.labels) {
                if l == c {
                    t.swap(1, 2);
                }
            }
            // Still closed and consistently oriented: only the nesting test can see it.
            assert!(flipped.fans_are_closed_disks(&flipped.mesh), "component {c}");
            assert!(flipped.proven_report().is_none(), "component {c}");
            let report = flipped.report();
            assert_eq!(report, MeshReport::new(flipped.mesh()));
            assert_eq!(report.inward_components.count, 1, "component {c}: {report}");
            assert_eq!(report.inward_components.examples[0].component, c);
        }
    }

    /// `s` without triangle `t`, its cell and slice counts updated (so only the mesh is wrong, not the records).
    fn without_triangle(s: &GridSurface, t: usize) -> GridSurface {
        let mut out = s.clone();
        out.mesh.triangles.remove(t);
        let mut first = 0usize;
        for n in out.cell_triangles.iter_mut() {
            if t < first + usize::from(*n) {
                *n -= 1;
                break;
            }
            first += usize::from(*n);
        }
        for start in out.slice_triangles.iter_mut() {
            if *start as usize > t {
                *start -= 1;
            }
        }
        out
    }

    #[test]
    fn a_hole_is_caught() {
        let g = GridGeometry::axis_aligned([20, 18, 16], [0.5, 0.6, 0.7], [1.0, 2.0, 3.0]);
        let s = grid_surface(&g, &blob_field(g.dims, 5), 0.0, None).expect("valid input");
        assert_proven_and_agrees(&s);
        let holed = without_triangle(&s, s.mesh().triangles.len() / 2);
        assert!(!holed.fans_are_closed_disks(&holed.mesh));
        let report = holed.report();
        assert_eq!(report, MeshReport::new(holed.mesh()));
        assert_eq!(report.boundary_edges.count, 3, "{report}");
    }

    #[test]
    fn an_intersection_inside_a_cell_is_caught() {
        // Two triangles of one cell sharing an edge ac, with third vertices b and d: moving d into triangle abc
        // folds acd onto abc. The within-cell test must find it; the general check then names the pair.
        let g = GridGeometry::axis_aligned([20, 18, 16], [0.5, 0.6, 0.7], [1.0, 2.0, 3.0]);
        let s = grid_surface(&g, &blob_field(g.dims, 11), 0.0, None).expect("valid input");
        let mut first = 0usize;
        let mut folded = None;
        for &n in &s.cell_triangles {
            let n = usize::from(n);
            if n >= 2 && folded.is_none() {
                let (ta, tb) = (s.mesh.triangles[first], s.mesh.triangles[first + 1]);
                let shared: Vec<u32> = ta.iter().copied().filter(|v| tb.contains(v)).collect();
                if shared.len() == 2 {
                    let b = ta
                        .iter()
                        .copied()
                        .find(|v| !shared.contains(v))
                        .expect("a third vertex");
                    let d = tb
                        .iter()
                        .copied()
                        .find(|v| !shared.contains(v))
                        .expect("a third vertex");
                    let [pa, pb, pc] = [shared[0], b, shared[1]].map(|v| s.mesh.positions[v as usize]);
                    let mut broken = s.clone();
                    broken.mesh.positions[d as usize] =
                        std::array::from_fn(|k| 0.25 * pa[k] + 0.5 * pb[k] + 0.25 * pc[k]);
                    folded = Some((broken, [first as u32, first as u32 + 1]));
                }
            }
            first += n;
        }
        let (broken, pair) = folded.expect("a cell with two triangles sharing an edge");
        assert!(!broken.cells_free_of_intersections(&broken.mesh));
        let report = broken.report();
        assert_eq!(report, MeshReport::new(broken.mesh()));
        assert!(
            crate::mesh::self_intersections(broken.mesh())
                .iter()
                .any(|d| d.triangles == pair),
            "{report}"
        );
    }
}
