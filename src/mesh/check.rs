//! Mesh invariants, one function per invariant, each returning *where* it fails.
//!
//! Why: a surface that is not closed, manifold, outward and free of self-intersections breaks the CAD steps that
//! follow (offsets, booleans, slicing) in ways that are discovered only on the printed part. Each check therefore
//! reports the failing vertices / edges / triangles together with their patient-space position in mm, so a message
//! can say "hole at (12.3, -40.1, 88.0) mm" rather than "mesh invalid". [`MeshReport`] gathers all checks for the
//! CLI (serialised as JSON) and the logs (its `Display` names the first few failures).
//!
//! Definitions used:
//! - an *edge* is an unordered vertex pair used by at least one triangle; it is a **boundary edge** with one
//!   triangle, a **non-manifold edge** with more than two, and **inconsistently oriented** when the same *directed*
//!   edge occurs in two triangles (neighbours must traverse a shared edge in opposite directions);
//! - a **non-manifold vertex** has incident triangles that form more than one fan (triangles connected through edges
//!   at that vertex), e.g. two cones touching at their tips;
//! - a **component** is a set of triangles connected through shared vertices; it is **closed** when all its edges
//!   have exactly two triangles. A closed component nested inside an odd number of other closed components is a
//!   cavity and must have negative signed volume; all others must have positive volume. A violation is an
//!   **inward** component (a whole bone turned inside out, or a cavity turned outwards);
//! - a **degenerate triangle** repeats a vertex index or has an area below [`DEGENERATE_AREA_MM2`] (computed in f64);
//! - a **self-intersection** is a pair of triangles that meet anywhere other than the vertices and edge they share
//!   (see the `intersect` module for the exact rules).
//!
//! Triangles with out-of-range indices or non-finite positions are reported by [`invalid_triangles`] and ignored by
//! every other check, so no check ever panics on malformed input.
//!
//! Speed: the edge and vertex checks first run one linear pass (each vertex's triangles must form one closed fan);
//! the sort of all half-edges that names failing edges runs only when that pass fails. Self-intersections (BVH) and
//! nesting (rays) are searches over the whole mesh; a raw marching-cubes surface avoids them (`grid_check`).

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use super::bvh::Bvh;
use super::intersect::{triangles_intersect, Plane};
use super::{centroid, cross, dot, norm, sub, BoundingBox, Components, Mesh};

/// Triangles with an area below this (mm^2) are degenerate.
pub const DEGENERATE_AREA_MM2: f64 = 1e-12;

/// How many failures of each kind a [`MeshReport`] keeps as examples.
pub const MAX_EXAMPLES: usize = 20;

/// How many failures of each kind the `Display` of a [`MeshReport`] names.
const DISPLAY_EXAMPLES: usize = 3;

/// An edge that fails a check.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EdgeDefect {
    /// The two vertex indices (smaller first).
    pub vertices: [u32; 2],
    /// The triangles using the edge.
    pub triangles: Vec<u32>,
    /// Position of `vertices[0]`, mm.
    pub from_mm: [f64; 3],
    /// Position of `vertices[1]`, mm.
    pub to_mm: [f64; 3],
}

/// A vertex whose triangles do not form a single fan.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VertexDefect {
    /// Vertex index.
    pub vertex: u32,
    /// Number of separate fans around it (more than one).
    pub fans: usize,
    /// Number of triangles around it.
    pub triangles: usize,
    /// Its position, mm.
    pub position_mm: [f64; 3],
}

/// A degenerate triangle.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TriangleDefect {
    /// Triangle index.
    pub triangle: u32,
    /// Its vertex indices.
    pub vertices: [u32; 3],
    /// Its area, mm^2.
    pub area_mm2: f64,
    /// Its centroid, mm.
    pub centroid_mm: [f64; 3],
}

/// A triangle that cannot be evaluated: an index out of range or a non-finite corner.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InvalidTriangle {
    /// Triangle index.
    pub triangle: u32,
    /// Its vertex indices.
    pub vertices: [u32; 3],
    /// What is wrong.
    pub reason: &'static str,
}

/// A closed component whose orientation contradicts its nesting.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ComponentDefect {
    /// Component label (see [`Mesh::connected_components`]).
    pub component: u32,
    /// Number of triangles in it.
    pub triangles: usize,
    /// Its signed volume, mm^3 (negative for an inverted outer shell).
    pub signed_volume_mm3: f64,
    /// Number of closed components enclosing it (odd: it is a cavity and should be negative).
    pub nesting_depth: usize,
    /// A point on it (centroid of its first triangle), mm.
    pub position_mm: [f64; 3],
    /// Its bounding box.
    pub bounding_box: BoundingBox,
}

/// Two triangles that intersect.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IntersectionDefect {
    /// The two triangles (smaller index first).
    pub triangles: [u32; 2],
    /// Midpoint of their centroids, mm (within one triangle size of the intersection).
    pub position_mm: [f64; 3],
}

/// Failures of one kind: their number and the first [`MAX_EXAMPLES`] of them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DefectList<T> {
    /// Number of failures.
    pub count: usize,
    /// The first failures, in deterministic order.
    pub examples: Vec<T>,
}

impl<T> Default for DefectList<T> {
    fn default() -> Self {
        DefectList {
            count: 0,
            examples: Vec::new(),
        }
    }
}

impl<T> DefectList<T> {
    /// No failure.
    pub(crate) fn none() -> Self {
        Self::default()
    }

    pub(crate) fn from_vec(mut all: Vec<T>) -> Self {
        let count = all.len();
        all.truncate(MAX_EXAMPLES);
        DefectList { count, examples: all }
    }

    /// Counts one more, keeping it as an example while there are fewer than [`MAX_EXAMPLES`].
    pub(crate) fn push(&mut self, item: T) {
        self.count += 1;
        if self.examples.len() < MAX_EXAMPLES {
            self.examples.push(item);
        }
    }
}

/// Corner positions of a triangle whose indices are in range and corners finite.
#[inline]
pub(super) fn points(mesh: &Mesh, t: [u32; 3]) -> Option<[[f64; 3]; 3]> {
    let p = mesh.triangle_points(t)?;
    if p.iter().flatten().all(|c| c.is_finite()) {
        Some(p)
    } else {
        None
    }
}

fn position(mesh: &Mesh, v: u32) -> [f64; 3] {
    mesh.positions.get(v as usize).copied().unwrap_or([f64::NAN; 3])
}

/// Triangles with out-of-range indices or non-finite corners.
pub fn invalid_triangles(mesh: &Mesh) -> Vec<InvalidTriangle> {
    let n = mesh.positions.len();
    mesh.triangles
        .par_iter()
        .enumerate()
        .filter_map(|(i, &t)| {
            let reason = if t.iter().any(|&v| v as usize >= n) {
                "vertex index out of range"
            } else if points(mesh, t).is_none() {
                "non-finite vertex position"
            } else {
                return None;
            };
            Some(InvalidTriangle {
                triangle: i as u32,
                vertices: t,
                reason,
            })
        })
        .collect()
}

/// Half-edges sorted by undirected edge, the shared basis of the edge checks.
struct EdgeTable {
    /// `(lo << 32 | hi, triangle, forward)`, sorted; `forward` when the triangle runs lo -> hi.
    half: Vec<(u64, u32, bool)>,
}

impl EdgeTable {
    fn build(mesh: &Mesh) -> EdgeTable {
        let mut half: Vec<(u64, u32, bool)> = mesh
            .triangles
            .par_iter()
            .enumerate()
            .flat_map_iter(|(i, &t)| {
                let ok = points(mesh, t).is_some();
                (0..3).filter_map(move |k| {
                    let (a, b) = (t[k], t[(k + 1) % 3]);
                    if !ok || a == b {
                        return None;
                    }
                    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
                    Some(((u64::from(lo) << 32) | u64::from(hi), i as u32, a < b))
                })
            })
            .collect();
        half.par_sort_unstable();
        EdgeTable { half }
    }

    /// Runs of half-edges with the same undirected edge.
    fn groups(&self) -> impl Iterator<Item = &[(u64, u32, bool)]> {
        self.half.chunk_by(|a, b| a.0 == b.0)
    }
}

struct EdgeDefects {
    boundary: Vec<EdgeDefect>,
    non_manifold: Vec<EdgeDefect>,
    inconsistent: Vec<EdgeDefect>,
}

fn classify_edges(mesh: &Mesh, table: &EdgeTable) -> EdgeDefects {
    let mut out = EdgeDefects {
        boundary: Vec::new(),
        non_manifold: Vec::new(),
        inconsistent: Vec::new(),
    };
    for g in table.groups() {
        let forward = g.iter().filter(|h| h.2).count();
        let backward = g.len() - forward;
        let is_boundary = g.len() == 1;
        let is_non_manifold = g.len() > 2;
        let is_inconsistent = forward > 1 || backward > 1;
        if !(is_boundary || is_non_manifold || is_inconsistent) {
            continue;
        }
        let lo = (g[0].0 >> 32) as u32;
        let hi = g[0].0 as u32;
        let mut triangles: Vec<u32> = g.iter().map(|h| h.1).collect();
        triangles.dedup();
        let d = EdgeDefect {
            vertices: [lo, hi],
            triangles,
            from_mm: position(mesh, lo),
            to_mm: position(mesh, hi),
        };
        if is_inconsistent {
            out.inconsistent.push(d.clone());
        }
        if is_non_manifold {
            out.non_manifold.push(d.clone());
        }
        if is_boundary {
            out.boundary.push(d);
        }
    }
    out
}

/// Edges used by exactly one triangle (holes, open borders).
pub fn boundary_edges(mesh: &Mesh) -> Vec<EdgeDefect> {
    classify_edges(mesh, &EdgeTable::build(mesh)).boundary
}

/// Edges used by more than two triangles.
pub fn non_manifold_edges(mesh: &Mesh) -> Vec<EdgeDefect> {
    classify_edges(mesh, &EdgeTable::build(mesh)).non_manifold
}

/// Edges traversed twice in the same direction (a flipped neighbour).
pub fn inconsistent_edges(mesh: &Mesh) -> Vec<EdgeDefect> {
    classify_edges(mesh, &EdgeTable::build(mesh)).inconsistent
}

/// Vertex -> triangles adjacency (compressed rows) over evaluable, non-repeating triangles.
pub(crate) struct VertexTriangles {
    pub(crate) start: Vec<usize>,
    pub(crate) tris: Vec<u32>,
}

impl VertexTriangles {
    /// The adjacency, each vertex's triangles in increasing order (as a sequential fill would leave them).
    ///
    /// Built in parallel without changing that order: the triangles are cut into one block per thread, each block
    /// counts its own vertex uses, and the offsets put block `b`'s entries for a vertex after those of blocks
    /// `0..b`. Each slot is written by exactly one block (through relaxed atomic stores, plain stores on common
    /// hardware, because the slots of a block are scattered).
    pub(crate) fn build(mesh: &Mesh) -> VertexTriangles {
        Self::build_from(mesh.positions.len(), &mesh.triangles)
    }

    /// The adjacency of `triangles` over `n` vertices.
    pub(crate) fn build_from(n: usize, triangles: &[[u32; 3]]) -> VertexTriangles {
        let usable = |t: &[u32; 3]| t.iter().all(|&v| (v as usize) < n) && t[0] != t[1] && t[1] != t[2] && t[0] != t[2];
        let blocks = rayon::current_num_threads().clamp(1, 8);
        let block_len = triangles.len().div_ceil(blocks).max(1);
        // Per block: how often each vertex is used, then where the block's entries start within the vertex's list.
        let mut offsets: Vec<Vec<u32>> = triangles
            .par_chunks(block_len)
            .map(|block| {
                let mut count = vec![0u32; n];
                for t in block.iter().filter(|t| usable(t)) {
                    for &v in t {
                        count[v as usize] += 1;
                    }
                }
                count
            })
            .collect();
        let mut start = vec![0usize; n + 1];
        let mut total = 0usize;
        for v in 0..n {
            start[v] = total;
            let mut within = 0u32;
            for block in offsets.iter_mut() {
                let uses = block[v];
                block[v] = within;
                within += uses;
            }
            total += within as usize;
        }
        start[n] = total;
        let slots: Vec<AtomicU32> = (0..total).into_par_iter().map(|_| AtomicU32::new(0)).collect();
        triangles
            .par_chunks(block_len)
            .zip(offsets.par_iter_mut())
            .enumerate()
            .for_each(|(b, (block, offset))| {
                let first = b * block_len;
                for (i, t) in block.iter().enumerate() {
                    if usable(t) {
                        for &v in t {
                            let o = &mut offset[v as usize];
                            slots[start[v as usize] + *o as usize].store((first + i) as u32, Ordering::Relaxed);
                            *o += 1;
                        }
                    }
                }
            });
        drop(offsets);
        let tris = slots.into_iter().map(AtomicU32::into_inner).collect();
        VertexTriangles { start, tris }
    }

    pub(crate) fn of(&self, v: usize) -> &[u32] {
        &self.tris[self.start[v]..self.start[v + 1]]
    }
}

/// Number of edge-connected fans formed by `tris` around vertex `v`.
pub(crate) fn fan_count(mesh: &Mesh, v: u32, tris: &[u32]) -> usize {
    if tris.len() <= 1 {
        return tris.len();
    }
    // (other vertex, local triangle) pairs: two triangles sharing another vertex share an edge at v.
    let mut ends: SmallVec<[(u32, u32); 32]> = SmallVec::new();
    for (li, &t) in tris.iter().enumerate() {
        for &w in &mesh.triangles[t as usize] {
            if w != v {
                ends.push((w, li as u32));
            }
        }
    }
    ends.sort_unstable();
    let mut parent: SmallVec<[u32; 16]> = (0..tris.len() as u32).collect();
    fn find(p: &mut [u32], mut x: u32) -> u32 {
        while p[x as usize] != x {
            let up = p[p[x as usize] as usize];
            p[x as usize] = up;
            x = up;
        }
        x
    }
    for w in ends.windows(2) {
        if w[0].0 == w[1].0 {
            let a = find(&mut parent, w[0].1);
            let b = find(&mut parent, w[1].1);
            if a != b {
                parent[a.max(b) as usize] = a.min(b);
            }
        }
    }
    (0..tris.len() as u32).filter(|&i| find(&mut parent, i) == i).count()
}

/// True when the triangles around every vertex form one closed fan in which each edge at the vertex is used once in
/// each direction. Every edge is seen from both its ends, so then no edge is a boundary, non-manifold or
/// inconsistently oriented edge and no vertex is non-manifold. Only meaningful when every triangle is usable (indices
/// in range, no repeated vertex), because [`VertexTriangles`] leaves the others out.
///
/// Why: it is one linear pass over small fans, where naming the failing edges needs a sort of all half-edges;
/// [`MeshReport::new`] runs that sort only when this fails.
pub(crate) fn fans_are_closed_disks(mesh: &Mesh, vt: &VertexTriangles) -> bool {
    (0..mesh.positions.len())
        .into_par_iter()
        .with_min_len(1 << 12)
        .all(|v| fan_is_closed_disk(mesh, v as u32, vt.of(v)))
}

fn fan_is_closed_disk(mesh: &Mesh, v: u32, tris: &[u32]) -> bool {
    // (next, previous) vertex of each triangle, walking counter-clockwise around v.
    let ends: SmallVec<[(u32, u32); 16]> = tris
        .iter()
        .map(|&t| {
            let tri = mesh.triangles[t as usize];
            let k = if tri[0] == v {
                0
            } else if tri[1] == v {
                1
            } else {
                2
            };
            (tri[(k + 1) % 3], tri[(k + 2) % 3])
        })
        .collect();
    ends_form_one_disk(&ends)
}

/// The triangles around a vertex, given as (next, previous) vertex of each in counter-clockwise order, form one
/// closed fan in which each edge at the vertex is used once in each direction.
///
/// The triangle after triangle `i` in the fan is the one whose previous vertex is `i`'s next (they share that edge
/// in opposite directions). Walking from the first triangle, each step must find exactly one successor, and the
/// walk must visit every triangle once before coming back: one cycle, one fan. (Fans have about six triangles, so
/// the quadratic search is cheaper than sorting.)
pub(crate) fn ends_form_one_disk(ends: &[(u32, u32)]) -> bool {
    let n = ends.len();
    if n == 0 {
        return true;
    }
    let mut small = 0u64;
    let mut large = vec![false; if n > 64 { n } else { 0 }];
    let mut cur = 0;
    for step in 0..n {
        // Mark `cur` visited; it must not have been.
        let seen = if n > 64 {
            std::mem::replace(&mut large[cur], true)
        } else {
            let was = small >> cur & 1 == 1;
            small |= 1 << cur;
            was
        };
        if seen {
            return false;
        }
        let target = ends[cur].0;
        let mut count = 0u32;
        let mut found = 0usize;
        for (j, e) in ends.iter().enumerate() {
            let hit = e.1 == target;
            count += u32::from(hit);
            found = if hit { j } else { found };
        }
        if count != 1 {
            return false;
        }
        if step + 1 == n {
            return found == 0;
        }
        cur = found;
    }
    false
}

fn non_manifold_vertices_with(mesh: &Mesh, vt: &VertexTriangles) -> Vec<VertexDefect> {
    (0..mesh.positions.len())
        .into_par_iter()
        .filter_map(|v| {
            let tris = vt.of(v);
            let fans = fan_count(mesh, v as u32, tris);
            (fans > 1).then(|| VertexDefect {
                vertex: v as u32,
                fans,
                triangles: tris.len(),
                position_mm: mesh.positions[v],
            })
        })
        .collect()
}

/// Vertices whose triangles form more than one fan (bow-ties, pinches).
pub fn non_manifold_vertices(mesh: &Mesh) -> Vec<VertexDefect> {
    non_manifold_vertices_with(mesh, &VertexTriangles::build(mesh))
}

/// Twice the area vector of a triangle.
#[inline]
pub(super) fn area_vector(p: &[[f64; 3]; 3]) -> [f64; 3] {
    cross(sub(p[1], p[0]), sub(p[2], p[0]))
}

/// Triangles that repeat a vertex or have an area below [`DEGENERATE_AREA_MM2`].
pub fn degenerate_triangles(mesh: &Mesh) -> Vec<TriangleDefect> {
    mesh.triangles
        .par_iter()
        .enumerate()
        .filter_map(|(i, &t)| {
            let p = points(mesh, t)?;
            let area = 0.5 * norm(area_vector(&p));
            let repeated = t[0] == t[1] || t[1] == t[2] || t[0] == t[2];
            (repeated || area < DEGENERATE_AREA_MM2).then(|| TriangleDefect {
                triangle: i as u32,
                vertices: t,
                area_mm2: area,
                centroid_mm: centroid(&p),
            })
        })
        .collect()
}

/// BVH over the evaluable, non-degenerate triangles (ids = triangle indices).
fn triangle_bvh(mesh: &Mesh) -> Bvh {
    Bvh::build(mesh.triangles.len(), |i| {
        let p = points(mesh, mesh.triangles[i])?;
        if norm(area_vector(&p)) == 0.0 {
            return None;
        }
        let lo = std::array::from_fn(|a| p[0][a].min(p[1][a]).min(p[2][a]));
        let hi = std::array::from_fn(|a| p[0][a].max(p[1][a]).max(p[2][a]));
        Some((lo, hi))
    })
}

fn self_intersections_with(mesh: &Mesh, bvh: &Bvh) -> Vec<IntersectionDefect> {
    // Triangle indices and planes in leaf order (neighbouring leaves are spatially close, so this is read with
    // good locality); each plane is computed once instead of once per candidate pair.
    let data: Vec<Option<([u32; 3], Plane)>> = bvh
        .order
        .par_iter()
        .map(|&id| {
            let t = mesh.triangles[id as usize];
            Some((t, Plane::of(&points(mesh, t)?)?))
        })
        .collect();
    let pos = &mesh.positions;
    let corners = |t: &[u32; 3]| [pos[t[0] as usize], pos[t[1] as usize], pos[t[2] as usize]];
    let mut pairs: Vec<(u32, u32)> = (0..bvh.leaf_count())
        .into_par_iter()
        .flat_map_iter(|leaf| {
            let mut found: SmallVec<[(u32, u32); 2]> = SmallVec::new();
            bvh.for_each_pair_from_leaf(leaf, |p, q| {
                if let (Some((ia, pa)), Some((ib, pb))) = (&data[p], &data[q]) {
                    if triangles_intersect(*ia, &corners(ia), pa, *ib, &corners(ib), pb) {
                        let (a, b) = (bvh.order[p], bvh.order[q]);
                        found.push((a.min(b), a.max(b)));
                    }
                }
            });
            found
        })
        .collect();
    drop(data);
    pairs.par_sort_unstable();
    pairs
        .into_iter()
        .filter_map(|(a, b)| {
            let pa = points(mesh, mesh.triangles[a as usize])?;
            let pb = points(mesh, mesh.triangles[b as usize])?;
            let (ca, cb) = (centroid(&pa), centroid(&pb));
            Some(IntersectionDefect {
                triangles: [a, b],
                position_mm: [0.5 * (ca[0] + cb[0]), 0.5 * (ca[1] + cb[1]), 0.5 * (ca[2] + cb[2])],
            })
        })
        .collect()
}

/// Pairs of triangles that intersect other than in their shared vertices / edge. Degenerate triangles are left to
/// [`degenerate_triangles`].
pub fn self_intersections(mesh: &Mesh) -> Vec<IntersectionDefect> {
    self_intersections_with(mesh, &triangle_bvh(mesh))
}

/// Generic ray directions for the nesting test (no alignment with grid axes or common mesh planes).
const RAY_DIRECTIONS: [[f64; 3]; 3] = [
    [0.573_462_1, 0.371_925_3, 0.729_930_2],
    [-0.618_034_0, 0.497_171_9, -0.608_966_1],
    [0.262_847_5, -0.913_575_2, 0.310_318_7],
];

/// Parameter `t > 0` of the hit of ray `o + t d` with triangle `p`, if any (Moller-Trumbore).
fn ray_hits(o: [f64; 3], d: [f64; 3], p: &[[f64; 3]; 3]) -> bool {
    let e1 = sub(p[1], p[0]);
    let e2 = sub(p[2], p[0]);
    let pv = cross(d, e2);
    let det = dot(e1, pv);
    if det == 0.0 || !det.is_finite() {
        return false;
    }
    let inv = 1.0 / det;
    let tv = sub(o, p[0]);
    let u = dot(tv, pv) * inv;
    if !(0.0..=1.0).contains(&u) {
        return false;
    }
    let qv = cross(tv, e1);
    let v = dot(d, qv) * inv;
    if v < 0.0 || u + v > 1.0 {
        return false;
    }
    dot(e2, qv) * inv > 0.0
}

struct ComponentInfo {
    comps: Components,
    closed: Vec<bool>,
    volume: Vec<f64>,
    triangles: Vec<usize>,
    first: Vec<u32>,
}

/// Components, their closedness, volumes and first triangles. `table` is `None` when every edge is known to have
/// exactly two triangles.
fn component_info(mesh: &Mesh, table: Option<&EdgeTable>) -> ComponentInfo {
    let comps = mesh.connected_components();
    let c = comps.count;
    let mut closed = vec![true; c];
    for g in table.iter().flat_map(|t| t.groups()) {
        if g.len() != 2 {
            for h in g {
                closed[comps.labels[h.1 as usize] as usize] = false;
            }
        }
    }
    let mut volume = vec![0.0; c];
    let mut triangles = vec![0usize; c];
    let mut first = vec![u32::MAX; c];
    for (i, (&t, &l)) in mesh.triangles.iter().zip(&comps.labels).enumerate() {
        let l = l as usize;
        triangles[l] += 1;
        match points(mesh, t) {
            Some(p) => {
                volume[l] += dot(p[0], area_vector(&p)) / 6.0;
                if first[l] == u32::MAX && norm(area_vector(&p)) > 0.0 {
                    first[l] = i as u32;
                }
            }
            // A component with an unusable triangle cannot be judged.
            None => closed[l] = false,
        }
    }
    for (l, f) in first.iter().enumerate() {
        if *f == u32::MAX {
            closed[l] = false;
        }
    }
    ComponentInfo {
        comps,
        closed,
        volume,
        triangles,
        first,
    }
}

fn inward_components_with(mesh: &Mesh, info: &ComponentInfo, bvh: &Bvh) -> Vec<ComponentDefect> {
    let labels = &info.comps.labels;
    let n_closed = info.closed.iter().filter(|&&c| c).count();
    (0..info.comps.count)
        .into_par_iter()
        .filter_map(|c| {
            if !info.closed[c] {
                return None;
            }
            let first = info.first[c];
            let p = points(mesh, mesh.triangles[first as usize])?;
            let origin = centroid(&p);
            let depth = if n_closed < 2 {
                0
            } else {
                let mut depths: [usize; 3] = [0; 3];
                for (k, dir) in RAY_DIRECTIONS.iter().enumerate() {
                    let mut hit_labels: SmallVec<[u32; 16]> = SmallVec::new();
                    bvh.for_each_on_ray(origin, *dir, |t| {
                        let l = labels[t as usize];
                        if l as usize == c || !info.closed[l as usize] {
                            return;
                        }
                        if let Some(q) = points(mesh, mesh.triangles[t as usize]) {
                            if ray_hits(origin, *dir, &q) {
                                hit_labels.push(l);
                            }
                        }
                    });
                    hit_labels.sort_unstable();
                    depths[k] = hit_labels
                        .chunk_by(|a, b| a == b)
                        .filter(|run| run.len() % 2 == 1)
                        .count();
                }
                depths.sort_unstable();
                depths[1]
            };
            let v = info.volume[c];
            let cavity = depth % 2 == 1;
            let wrong = if cavity { v > 0.0 } else { v < 0.0 };
            if !wrong {
                return None;
            }
            let bounding_box = component_box(mesh, labels, c as u32)?;
            Some(ComponentDefect {
                component: c as u32,
                triangles: info.triangles[c],
                signed_volume_mm3: v,
                nesting_depth: depth,
                position_mm: origin,
                bounding_box,
            })
        })
        .collect()
}

fn component_box(mesh: &Mesh, labels: &[u32], c: u32) -> Option<BoundingBox> {
    let pts = mesh
        .triangles
        .iter()
        .zip(labels)
        .filter(|(_, &l)| l == c)
        .filter_map(|(&t, _)| points(mesh, t))
        .flatten()
        .collect::<Vec<_>>();
    BoundingBox::of_points(&pts)
}

/// Closed components whose orientation contradicts their nesting: an outer shell with negative volume (inside
/// out), or a cavity (inside an odd number of shells) with positive volume. Open components are not judged (the
/// boundary-edge check reports them).
pub fn inward_components(mesh: &Mesh) -> Vec<ComponentDefect> {
    let table = EdgeTable::build(mesh);
    let info = component_info(mesh, Some(&table));
    inward_components_with(mesh, &info, &triangle_bvh(mesh))
}

/// Everything known about a mesh's validity, for the CLI (JSON) and logs (`Display`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MeshReport {
    /// Number of vertices.
    pub vertices: usize,
    /// Number of triangles.
    pub triangles: usize,
    /// Number of connected components.
    pub components: usize,
    /// Number of closed components.
    pub closed_components: usize,
    /// Signed volume, mm^3.
    pub volume_mm3: f64,
    /// Surface area, mm^2.
    pub area_mm2: f64,
    /// Bounding box of the vertices.
    pub bounding_box: Option<BoundingBox>,
    /// Triangles with out-of-range indices or non-finite corners.
    pub invalid_triangles: DefectList<InvalidTriangle>,
    /// Edges with one triangle.
    pub boundary_edges: DefectList<EdgeDefect>,
    /// Edges with more than two triangles.
    pub non_manifold_edges: DefectList<EdgeDefect>,
    /// Vertices with more than one fan.
    pub non_manifold_vertices: DefectList<VertexDefect>,
    /// Directed edges used twice.
    pub inconsistent_edges: DefectList<EdgeDefect>,
    /// Closed components oriented against their nesting.
    pub inward_components: DefectList<ComponentDefect>,
    /// Degenerate triangles.
    pub degenerate_triangles: DefectList<TriangleDefect>,
    /// Intersecting triangle pairs.
    pub self_intersections: DefectList<IntersectionDefect>,
}

impl MeshReport {
    /// Runs every check (the edge table, components and BVH are built once and shared). The edge and vertex checks
    /// first try the linear fan test (each vertex's triangles form one closed fan); the sort that names failing edges runs only when
    /// it fails.
    pub fn new(mesh: &Mesh) -> MeshReport {
        let invalid = invalid_triangles(mesh);
        let vt = VertexTriangles::build(mesh);
        let all_usable = invalid.is_empty()
            && mesh
                .triangles
                .par_iter()
                .all(|t| t[0] != t[1] && t[1] != t[2] && t[0] != t[2]);
        let (edges, non_manifold_vertices, info) = if all_usable && fans_are_closed_disks(mesh, &vt) {
            let none = EdgeDefects {
                boundary: Vec::new(),
                non_manifold: Vec::new(),
                inconsistent: Vec::new(),
            };
            (none, Vec::new(), component_info(mesh, None))
        } else {
            let table = EdgeTable::build(mesh);
            let info = component_info(mesh, Some(&table));
            (
                classify_edges(mesh, &table),
                non_manifold_vertices_with(mesh, &vt),
                info,
            )
        };
        drop(vt);
        let bvh = triangle_bvh(mesh);
        MeshReport {
            vertices: mesh.positions.len(),
            triangles: mesh.triangles.len(),
            components: info.comps.count,
            closed_components: info.closed.iter().filter(|&&c| c).count(),
            volume_mm3: mesh.signed_volume_mm3(),
            area_mm2: mesh.area_mm2(),
            bounding_box: mesh.bounding_box(),
            invalid_triangles: DefectList::from_vec(invalid),
            boundary_edges: DefectList::from_vec(edges.boundary),
            non_manifold_edges: DefectList::from_vec(edges.non_manifold),
            non_manifold_vertices: DefectList::from_vec(non_manifold_vertices),
            inconsistent_edges: DefectList::from_vec(edges.inconsistent),
            inward_components: DefectList::from_vec(inward_components_with(mesh, &info, &bvh)),
            degenerate_triangles: DefectList::from_vec(degenerate_triangles(mesh)),
            self_intersections: DefectList::from_vec(self_intersections_with(mesh, &bvh)),
        }
    }

    /// Closed, edge- and vertex-manifold, consistently and outward oriented, without degenerate or invalid
    /// triangles (self-intersections not considered).
    pub fn is_closed_manifold(&self) -> bool {
        self.invalid_triangles.count == 0
            && self.boundary_edges.count == 0
            && self.non_manifold_edges.count == 0
            && self.non_manifold_vertices.count == 0
            && self.inconsistent_edges.count == 0
            && self.inward_components.count == 0
            && self.degenerate_triangles.count == 0
    }

    /// Every check passes (including self-intersections).
    pub fn is_valid(&self) -> bool {
        self.is_closed_manifold() && self.self_intersections.count == 0
    }
}

pub(crate) fn fmt_mm(p: [f64; 3]) -> String {
    format!("({:.3}, {:.3}, {:.3}) mm", p[0], p[1], p[2])
}

pub(crate) fn write_list<T>(
    f: &mut fmt::Formatter<'_>,
    name: &str,
    list: &DefectList<T>,
    describe: impl Fn(&T) -> String,
) -> fmt::Result {
    if list.count == 0 {
        return Ok(());
    }
    write!(f, "\n  {} {name}:", list.count)?;
    for (i, d) in list.examples.iter().take(DISPLAY_EXAMPLES).enumerate() {
        write!(f, "{} {}", if i == 0 { "" } else { ";" }, describe(d))?;
    }
    if list.count > DISPLAY_EXAMPLES {
        write!(f, "; ...")?;
    }
    Ok(())
}

impl fmt::Display for MeshReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} triangles, {} vertices, {} component(s) ({} closed), volume {:.3} mm^3, area {:.3} mm^2: {}",
            self.triangles,
            self.vertices,
            self.components,
            self.closed_components,
            self.volume_mm3,
            self.area_mm2,
            if self.is_valid() { "valid" } else { "INVALID" }
        )?;
        write_list(f, "invalid triangles", &self.invalid_triangles, |d| {
            format!("triangle {} {:?} ({})", d.triangle, d.vertices, d.reason)
        })?;
        let edge = |d: &EdgeDefect| {
            format!(
                "edge v{}-v{} from {} to {} (triangles {:?})",
                d.vertices[0],
                d.vertices[1],
                fmt_mm(d.from_mm),
                fmt_mm(d.to_mm),
                d.triangles
            )
        };
        write_list(f, "boundary edges", &self.boundary_edges, edge)?;
        write_list(f, "non-manifold edges", &self.non_manifold_edges, edge)?;
        write_list(f, "non-manifold vertices", &self.non_manifold_vertices, |d| {
            format!("vertex {} at {} ({} fans)", d.vertex, fmt_mm(d.position_mm), d.fans)
        })?;
        write_list(f, "inconsistently oriented edges", &self.inconsistent_edges, edge)?;
        write_list(f, "inward components", &self.inward_components, |d| {
            format!(
                "component {} near {} ({} triangles, volume {:.3} mm^3, nesting depth {})",
                d.component,
                fmt_mm(d.position_mm),
                d.triangles,
                d.signed_volume_mm3,
                d.nesting_depth
            )
        })?;
        write_list(f, "degenerate triangles", &self.degenerate_triangles, |d| {
            format!(
                "triangle {} at {} (area {:.3e} mm^2)",
                d.triangle,
                fmt_mm(d.centroid_mm),
                d.area_mm2
            )
        })?;
        write_list(f, "self-intersections", &self.self_intersections, |d| {
            format!(
                "triangles {} and {} near {}",
                d.triangles[0],
                d.triangles[1],
                fmt_mm(d.position_mm)
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{cube, tetrahedron};
    use super::*;

    #[test]
    fn a_clean_cube_passes_everything() {
        let r = MeshReport::new(&cube([0.0; 3], [1.0; 3]));
        assert!(r.is_valid(), "{r}");
        assert_eq!(r.closed_components, 1);
        assert!((r.volume_mm3 - 1.0).abs() < 1e-12);
    }

    #[test]
    fn removed_triangle_gives_boundary_edges() {
        let mut m = cube([0.0; 3], [1.0; 3]);
        m.triangles.remove(3);
        let b = boundary_edges(&m);
        assert_eq!(b.len(), 3);
        assert!(b.iter().all(|d| d.triangles.len() == 1));
        // The hole is on the z = 1 face.
        assert!(b.iter().all(|d| d.from_mm[2] == 1.0 && d.to_mm[2] == 1.0));
        let r = MeshReport::new(&m);
        assert!(!r.is_valid());
        assert_eq!(r.closed_components, 0);
        assert!(r.to_string().contains("3 boundary edges"), "{r}");
    }

    #[test]
    fn flipped_triangle_gives_inconsistent_edges() {
        let mut m = cube([0.0; 3], [1.0; 3]);
        m.triangles[0].swap(1, 2);
        let e = inconsistent_edges(&m);
        assert_eq!(e.len(), 3);
        assert!(e.iter().all(|d| d.triangles.contains(&0)));
        assert!(boundary_edges(&m).is_empty());
    }

    #[test]
    fn inverted_closed_mesh_is_inward_but_a_cavity_is_not() {
        let mut inverted = cube([0.0; 3], [1.0; 3]);
        for t in &mut inverted.triangles {
            t.swap(1, 2);
        }
        let d = inward_components(&inverted);
        assert_eq!(d.len(), 1);
        assert!(d[0].signed_volume_mm3 < 0.0);
        assert_eq!(d[0].nesting_depth, 0);
        // A hollow cube: outer shell outward, inner (inverted) shell is a legitimate cavity.
        let mut hollow = cube([0.0; 3], [3.0; 3]);
        let mut cavity = cube([1.0; 3], [2.0; 3]);
        for t in &mut cavity.triangles {
            t.swap(1, 2);
        }
        hollow.merge(&cavity).expect("small");
        assert!(inward_components(&hollow).is_empty());
        assert!((hollow.signed_volume_mm3() - 26.0).abs() < 1e-12);
        // The same cavity oriented outwards is wrong.
        let mut bad = cube([0.0; 3], [3.0; 3]);
        bad.merge(&cube([1.0; 3], [2.0; 3])).expect("small");
        let d = inward_components(&bad);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].component, 1);
        assert_eq!(d[0].nesting_depth, 1);
    }

    #[test]
    fn crossing_cubes_self_intersect_touching_fans_do_not() {
        let mut m = cube([0.0; 3], [2.0; 3]);
        m.merge(&cube([1.0, 0.5, 0.5], [3.0, 1.5, 1.5])).expect("small");
        let s = self_intersections(&m);
        assert!(!s.is_empty());
        assert!(s.iter().all(|d| d.triangles[0] < 12 && d.triangles[1] >= 12));
        // The contact is on the plane x = 2 of the first cube or x = 1 of the second.
        assert!(s.iter().all(|d| d.position_mm[0] > 0.5 && d.position_mm[0] < 2.5));
        assert!(self_intersections(&cube([0.0; 3], [1.0; 3])).is_empty());
        assert!(self_intersections(&tetrahedron()).is_empty());
    }

    #[test]
    fn bow_tie_vertex_is_non_manifold() {
        // Two tetrahedra sharing one vertex (index 0).
        let mut m = tetrahedron();
        let other = Mesh {
            positions: vec![[-1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]],
            triangles: vec![],
        };
        let base = m.positions.len() as u32;
        m.positions.extend_from_slice(&other.positions);
        let (a, b, c) = (base, base + 1, base + 2);
        // Tetrahedron (0, a, b, c) reflected through the origin: outward winding.
        m.triangles
            .extend_from_slice(&[[0, a, b], [0, c, a], [0, b, c], [a, c, b]]);
        let v = non_manifold_vertices(&m);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].vertex, 0);
        assert_eq!(v[0].fans, 2);
        assert_eq!(v[0].position_mm, [0.0; 3]);
        assert!(boundary_edges(&m).is_empty() && non_manifold_edges(&m).is_empty());
        // Two tetrahedra meeting in a vertex do not intersect elsewhere.
        assert!(self_intersections(&m).is_empty());
    }

    #[test]
    fn degenerate_and_invalid_triangles_are_named() {
        let mut m = cube([0.0; 3], [1.0; 3]);
        m.positions.push([0.5, 0.5, 0.5]);
        m.positions.push([0.5, 0.5, 0.5 + 1e-14]);
        m.triangles.push([8, 9, 8]);
        m.triangles.push([0, 8, 9]);
        m.triangles.push([0, 1, 99]);
        let d = degenerate_triangles(&m);
        assert_eq!(d.iter().map(|d| d.triangle).collect::<Vec<_>>(), vec![12, 13]);
        let inv = invalid_triangles(&m);
        assert_eq!(inv.len(), 1);
        assert_eq!(inv[0].triangle, 14);
        let r = MeshReport::new(&m);
        assert!(!r.is_valid());
        assert_eq!(r.degenerate_triangles.count, 2);
    }

    #[test]
    fn non_manifold_edge_is_reported() {
        let mut m = cube([0.0; 3], [1.0; 3]);
        // A fin on the edge 0-1.
        m.positions.push([0.5, -1.0, -1.0]);
        m.triangles.push([0, 1, 8]);
        let e = non_manifold_edges(&m);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].vertices, [0, 1]);
        assert_eq!(e[0].triangles.len(), 3);
    }

    #[test]
    fn report_serialises_to_json() {
        let mut m = cube([0.0; 3], [1.0; 3]);
        m.triangles.pop();
        let r = MeshReport::new(&m);
        let json = serde_json::to_value(&r).expect("serialisable");
        assert_eq!(json["boundary_edges"]["count"], 3);
        assert_eq!(json["triangles"], 11);
        assert!(json["boundary_edges"]["examples"][0]["from_mm"].is_array());
    }

    /// The adjacency as the sequential fill made it: each vertex's triangles in increasing order.
    fn sequential_adjacency(mesh: &Mesh) -> Vec<Vec<u32>> {
        let n = mesh.positions.len();
        let mut out = vec![Vec::new(); n];
        for (i, t) in mesh.triangles.iter().enumerate() {
            let usable = t.iter().all(|&v| (v as usize) < n) && t[0] != t[1] && t[1] != t[2] && t[0] != t[2];
            if usable {
                for &v in t {
                    out[v as usize].push(i as u32);
                }
            }
        }
        out
    }

    proptest::proptest! {
        #![proptest_config(crate::testing::proptest_config(500))]
        #[test]
        fn fan_test_agrees_with_the_edge_and_vertex_checks(
            tris in proptest::collection::vec(proptest::array::uniform3(0u32..9), 0..40),
            closed in proptest::bool::ANY,
            threads in 1usize..4,
        ) {
            use proptest::prelude::*;
            // Either random soup over nine vertices, or a closed cube with random extra triangles (often broken in
            // only one way).
            let mut mesh = if closed { cube([0.0; 3], [1.0; 3]) } else { Mesh::default() };
            mesh.positions.resize(9, [0.3, 0.7, 0.2]);
            for (v, p) in mesh.positions.iter_mut().enumerate().skip(8) {
                *p = [0.1 * v as f64, 0.5, 0.5];
            }
            mesh.triangles.extend(tris.iter().take(if closed { 2 } else { tris.len() }));
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("thread pool");
            let vt = pool.install(|| VertexTriangles::build(&mesh));
            let expected = sequential_adjacency(&mesh);
            for (v, e) in expected.iter().enumerate() {
                prop_assert_eq!(vt.of(v), &e[..]);
            }
            let all_usable = mesh.triangles.iter().all(|t| t[0] != t[1] && t[1] != t[2] && t[0] != t[2]);
            if all_usable {
                let e = classify_edges(&mesh, &EdgeTable::build(&mesh));
                let clean = e.boundary.is_empty()
                    && e.non_manifold.is_empty()
                    && e.inconsistent.is_empty()
                    && non_manifold_vertices_with(&mesh, &vt).is_empty();
                prop_assert_eq!(fans_are_closed_disks(&mesh, &vt), clean);
            }
        }
    }

    #[test]
    fn a_large_fan_is_one_disk() {
        // A cone of 100 triangles around its tip (more than fit the fan test's bit mask), closed by a fan at the base.
        let n = 100u32;
        let mut positions = vec![[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]];
        positions.extend((0..n).map(|k| {
            let a = f64::from(k) * std::f64::consts::TAU / f64::from(n);
            [a.cos(), a.sin(), 0.0]
        }));
        let mut triangles = Vec::new();
        for k in 0..n {
            let (a, b) = (2 + k, 2 + (k + 1) % n);
            triangles.push([0, a, b]);
            triangles.push([1, b, a]);
        }
        let mesh = Mesh { positions, triangles };
        assert!(fans_are_closed_disks(&mesh, &VertexTriangles::build(&mesh)));
        assert!(MeshReport::new(&mesh).is_valid());
        let mut pinched = mesh.clone();
        pinched.triangles.swap_remove(0);
        assert!(!fans_are_closed_disks(&pinched, &VertexTriangles::build(&pinched)));
    }
}
