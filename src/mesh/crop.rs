//! Cropping a closed bone surface to an axis-aligned box, and the boolean `a − bone` computed on the crop.
//!
//! Why: a guide touches a few square centimetres of a bone surface of half a million triangles, and a boolean
//! engine pays for every triangle it is given (building its half-edge structure is most of the cost). Since the
//! guide body `a` lies inside its bounding box, `a − bone = a − (bone ∩ box)` for any box around `a`; if that box is
//! grown by a margin, the cut faces of the crop stay clear of `a`'s faces (no coplanar faces, which the engine
//! resolves slowly), and the result is exact.
//!
//! How the crop stays closed and manifold:
//! - a parallel first pass keeps only the triangles whose bounding box meets the (slightly grown) box; every other
//!   triangle lies wholly beyond one of the six planes, so dropping it changes nothing inside the box. Kept
//!   triangles keep their order and their vertices are renumbered in first-use order (deterministic);
//! - each of the six planes that the kept triangles cross splits them; the point where an edge crosses the plane is
//!   created once per edge (keyed by its sorted vertex pair), so neighbouring triangles share it and the cut has no
//!   cracks. Cut points get their plane coordinate exactly, so later planes see them exactly on the plane;
//! - a vertex closer to a plane than [`PLANE_CLEARANCE_MM`] would give slivers of zero width and edges lying in
//!   the plane, so such a plane is moved *outward* by [`PLANE_SHIFT_STEP_MM`] steps until every vertex is clear of
//!   it. The crop therefore equals the mesh inside `box_mm` exactly; it may reach a few micrometres beyond it;
//! - the cut edges form loops on the box surface; each box face is capped by a constrained Delaunay triangulation
//!   (spade) of the face rectangle with the cut edges and the rectangle sides as constraints; which regions are
//!   inside follows from the orientation of the cut edges (the surface's outward orientation), spread by flood fill
//!   across unconstrained edges, and across box edges to faces without any cut. Cut points on box edges and box
//!   corners are shared by the faces that meet there. When no face is cut at all, one winding-number test tells
//!   whether the box lies inside the solid (then its whole surface is the cap).

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;
use spade::{ConstrainedDelaunayTriangulation, Point2, Triangulation};
use thiserror::Error;

use super::boolean::{boolean, BoolOp, BooleanError, Operand};
use super::{BoundingBox, Mesh, MeshError};

/// How close (mm) a vertex may come to a clip plane before the plane is moved: nearer vertices would give cut
/// points within rounding of the vertex, i.e. zero-width slivers and edges lying in the plane. 0.1 µm is a dozen
/// `f32` steps at 100 mm, so cut points stay distinct from the vertices after an STL round trip.
pub const PLANE_CLEARANCE_MM: f64 = 1e-4;

/// Step (mm) by which a plane too close to a vertex is moved outward; twice the clearance, so one step clears a
/// vertex that lay exactly on the plane.
pub const PLANE_SHIFT_STEP_MM: f64 = 2e-4;

/// Most steps a plane is moved before giving up (at most 12.8 µm in all: the crop differs from `box_mm` by less
/// than a CT voxel's thousandth).
const MAX_SHIFT_STEPS: u32 = 64;

/// Growth (mm) of the box used by the first pass, larger than the largest plane shift, so that every dropped
/// triangle lies strictly beyond a (shifted) plane.
const SELECT_GROWTH_MM: f64 = PLANE_SHIFT_STEP_MM * (MAX_SHIFT_STEPS as f64 + 2.0);

/// Triangles per task of the parallel first pass (fixed, so the partition does not depend on the thread count).
const SELECT_CHUNK: usize = 16 * 1024;

/// Why a crop (or a boolean on the crop) could not be computed.
#[derive(Debug, Error)]
pub enum CropError {
    /// The box is not a finite box with `min < max` on every axis.
    #[error("invalid crop box: min {min_mm:?} mm, max {max_mm:?} mm (needs finite bounds with min < max)")]
    InvalidBox {
        /// The box minimum.
        min_mm: [f64; 3],
        /// The box maximum.
        max_mm: [f64; 3],
    },
    /// The margin of [`difference_near`] is not a positive finite length.
    #[error("invalid crop margin {margin_mm} mm (needs a positive finite length)")]
    InvalidMargin {
        /// The margin given.
        margin_mm: f64,
    },
    /// The mesh itself is malformed (index out of range, non-finite position).
    #[error("invalid mesh: {0}")]
    Mesh(#[from] MeshError),
    /// No position of a clip plane within the allowed shift keeps clear of every vertex.
    #[error("the {face} face at {value_mm:.6} mm has vertices within {PLANE_CLEARANCE_MM} mm after {MAX_SHIFT_STEPS} shifts of {PLANE_SHIFT_STEP_MM} mm")]
    NoClearance {
        /// Which face (`"min x"`, ...).
        face: &'static str,
        /// The requested plane coordinate.
        value_mm: f64,
    },
    /// The cut through a face could not be capped: the mesh is not closed, manifold and free of self-intersections
    /// near that face.
    #[error("cannot cap the cut on the {face} face: {detail}")]
    Section {
        /// Which face (`"min x"`, ...).
        face: &'static str,
        /// What is wrong, with a position in mm.
        detail: String,
    },
    /// The boolean on the cropped mesh failed.
    #[error(transparent)]
    Boolean(#[from] BooleanError),
}

/// The six box faces, plane `p = 2 * axis + side` (side 0 the minimum, 1 the maximum).
const FACE_NAMES: [&str; 6] = ["min x", "max x", "min y", "max y", "min z", "max z"];

/// `a − bone`, computed as `a − crop_to_box(bone, bbox(a) grown by margin_mm)`.
///
/// Exact: `a` lies inside the grown box, where the crop equals the bone. The margin (> 0) keeps the crop's cut faces
/// away from `a`'s faces, so the engine never sees coplanar faces; a fraction of a millimetre is enough, and a larger
/// margin only costs time. `a` must be closed and manifold (the boolean checks both operands); `bone` closed,
/// manifold, outward and free of self-intersections near `a`.
pub fn difference_near(a: &Mesh, bone: &Mesh, margin_mm: f64) -> Result<Mesh, CropError> {
    if !(margin_mm.is_finite() && margin_mm > 0.0) {
        return Err(CropError::InvalidMargin { margin_mm });
    }
    let Some(a_box) = a.bounding_box() else {
        return Ok(Mesh::default());
    };
    let cropped = crop_to_box(bone, grown(a_box, margin_mm))?;
    Ok(boolean(
        Operand::new("guide body", a),
        Operand::new("bone cropped to the guide", &cropped),
        BoolOp::Difference,
    )?)
}

pub use super::grown;

/// The closed, outward surface of an axis-aligned box: 8 vertices (bit `a` of the index set = maximum along axis
/// `a`), 12 triangles.
pub fn box_mesh(b: BoundingBox) -> Mesh {
    let positions = (0..8u8).map(|c| corner_position(&[b.min_mm, b.max_mm], c)).collect();
    let triangles = (0..6)
        .flat_map(|p| {
            let [c0, c1, c2, c3] = face_corners(p);
            [[c0, c1, c2], [c0, c2, c3]]
        })
        .map(|t| t.map(u32::from))
        .collect();
    Mesh { positions, triangles }
}

/// The part of `mesh` inside `box_mm`, closed and outward.
///
/// `mesh` must be closed, manifold, outward and free of self-intersections where it meets the box (open or
/// self-intersecting input that reaches the cut is reported as [`CropError::Section`]; elsewhere it is passed
/// through). The result equals `mesh` inside `box_mm`; a face of the box may have been moved outward by a few
/// micrometres to keep clear of vertices (see [`PLANE_CLEARANCE_MM`]). A box that contains the mesh returns it
/// unchanged; a box that misses the solid returns an empty mesh; a box inside the solid returns the box.
pub fn crop_to_box(mesh: &Mesh, box_mm: BoundingBox) -> Result<Mesh, CropError> {
    let finite = box_mm.min_mm.iter().chain(&box_mm.max_mm).all(|c| c.is_finite());
    if !finite || (0..3).any(|a| box_mm.min_mm[a] >= box_mm.max_mm[a]) {
        return Err(CropError::InvalidBox {
            min_mm: box_mm.min_mm,
            max_mm: box_mm.max_mm,
        });
    }
    mesh.validate()?;
    let Some(mesh_box) = mesh.bounding_box() else {
        return Ok(Mesh::default());
    };
    if (0..3).all(|a| mesh_box.min_mm[a] >= box_mm.min_mm[a] && mesh_box.max_mm[a] <= box_mm.max_mm[a]) {
        return Ok(mesh.clone());
    }
    if (0..3).any(|a| mesh_box.max_mm[a] < box_mm.min_mm[a] || mesh_box.min_mm[a] > box_mm.max_mm[a]) {
        return Ok(Mesh::default());
    }

    let mut work = select(mesh, grown(box_mm, SELECT_GROWTH_MM));
    let mut bounds = [box_mm.min_mm, box_mm.max_mm];
    for p in 0..6 {
        if work.triangles.is_empty() {
            break;
        }
        work.clip(p, &mut bounds)?;
    }
    let segments = work.cut_segments()?;
    let caps = if segments.iter().all(Vec::is_empty) {
        // The box surface meets no triangle: it lies wholly inside or wholly outside the solid.
        let corner = corner_position(&bounds, 0);
        if winding_number(mesh, corner) > 0.5 {
            (0..6).map(|p| FaceCap::whole(p, true)).collect()
        } else {
            Vec::new()
        }
    } else {
        cap_faces(&work, &bounds, &segments)?
    };
    Ok(work.finish(&bounds, &caps))
}

/// The working mesh of a crop: kept triangles, their vertices and the planes each vertex lies on.
struct Work {
    positions: Vec<[f64; 3]>,
    /// Bit `p` set: the vertex lies exactly on plane `p` (its coordinate equals the plane's).
    on_planes: Vec<u8>,
    triangles: Vec<[u32; 3]>,
}

/// First pass: the triangles whose bounding box meets `b`, in their order, vertices renumbered in first-use order.
fn select(mesh: &Mesh, b: BoundingBox) -> Work {
    let touches = |t: &[u32; 3]| {
        let p = t.map(|v| mesh.positions[v as usize]);
        (0..3).all(|a| {
            let lo = p[0][a].min(p[1][a]).min(p[2][a]);
            let hi = p[0][a].max(p[1][a]).max(p[2][a]);
            hi >= b.min_mm[a] && lo <= b.max_mm[a]
        })
    };
    let kept: Vec<Vec<u32>> = mesh
        .triangles
        .par_chunks(SELECT_CHUNK)
        .enumerate()
        .map(|(chunk, tris)| {
            let base = (chunk * SELECT_CHUNK) as u32;
            (0..tris.len() as u32)
                .filter(|&i| touches(&tris[i as usize]))
                .map(|i| base + i)
                .collect()
        })
        .collect();
    let mut remap = vec![u32::MAX; mesh.positions.len()];
    let mut positions = Vec::new();
    let mut triangles = Vec::with_capacity(kept.iter().map(Vec::len).sum());
    for &t in kept.iter().flatten() {
        let tri = mesh.triangles[t as usize].map(|v| {
            let slot = &mut remap[v as usize];
            if *slot == u32::MAX {
                *slot = positions.len() as u32;
                positions.push(mesh.positions[v as usize]);
            }
            *slot
        });
        triangles.push(tri);
    }
    let on_planes = vec![0; positions.len()];
    Work {
        positions,
        on_planes,
        triangles,
    }
}

impl Work {
    /// Splits the triangles at plane `p` and keeps the inside parts; `bounds` gets the plane's final (possibly
    /// shifted) coordinate. A plane that no triangle crosses is left alone.
    fn clip(&mut self, p: usize, bounds: &mut [[f64; 3]; 2]) -> Result<(), CropError> {
        let (axis, side) = (p / 2, p % 2);
        let outward = if side == 1 { 1.0 } else { -1.0 };
        let requested = bounds[side][axis];
        let mut value = requested;
        let mut steps = 0;
        while self
            .triangles
            .iter()
            .flatten()
            .any(|&v| (self.positions[v as usize][axis] - value).abs() < PLANE_CLEARANCE_MM)
        {
            steps += 1;
            if steps > MAX_SHIFT_STEPS {
                return Err(CropError::NoClearance {
                    face: FACE_NAMES[p],
                    value_mm: requested,
                });
            }
            value = requested + outward * f64::from(steps) * PLANE_SHIFT_STEP_MM;
        }
        bounds[side][axis] = value;
        // Positive beyond the plane (to be removed).
        let is_beyond: Vec<bool> = self
            .positions
            .iter()
            .map(|q| outward * (q[axis] - value) > 0.0)
            .collect();
        let beyond = |v: u32| is_beyond[v as usize];
        let any_beyond = self.triangles.iter().flatten().any(|&v| beyond(v));
        if !any_beyond {
            return Ok(());
        }
        let mut cuts: HashMap<(u32, u32), u32> = HashMap::new();
        let mut triangles = Vec::with_capacity(self.triangles.len());
        let old = std::mem::take(&mut self.triangles);
        for t in old {
            let out = t.map(beyond);
            match out.iter().filter(|&&o| o).count() {
                0 => triangles.push(t),
                1 => {
                    // Rotate so the vertex beyond is the third: (a, b) inside, c beyond, order kept.
                    let r = out.iter().position(|&o| o).unwrap_or(0);
                    let [a, b, c] = [t[(r + 1) % 3], t[(r + 2) % 3], t[r]];
                    let bc = self.cut(&mut cuts, b, c, p, axis, value);
                    let ca = self.cut(&mut cuts, c, a, p, axis, value);
                    // The quad (a, b, bc, ca), split along its shorter diagonal.
                    let d_a = squared_distance(self.positions[a as usize], self.positions[bc as usize]);
                    let d_b = squared_distance(self.positions[b as usize], self.positions[ca as usize]);
                    if d_a <= d_b {
                        triangles.push([a, b, bc]);
                        triangles.push([a, bc, ca]);
                    } else {
                        triangles.push([a, b, ca]);
                        triangles.push([b, bc, ca]);
                    }
                }
                2 => {
                    // Rotate so the vertex inside is the first: a inside, (b, c) beyond.
                    let r = out.iter().position(|&o| !o).unwrap_or(0);
                    let [a, b, c] = [t[r], t[(r + 1) % 3], t[(r + 2) % 3]];
                    let ab = self.cut(&mut cuts, a, b, p, axis, value);
                    let ca = self.cut(&mut cuts, c, a, p, axis, value);
                    triangles.push([a, ab, ca]);
                }
                _ => {}
            }
        }
        self.triangles = triangles;
        Ok(())
    }

    /// The point where edge `u`–`v` crosses plane `p` (`axis` = `value`), created once per edge.
    fn cut(&mut self, cuts: &mut HashMap<(u32, u32), u32>, u: u32, v: u32, p: usize, axis: usize, value: f64) -> u32 {
        let key = (u.min(v), u.max(v));
        if let Some(&i) = cuts.get(&key) {
            return i;
        }
        // Interpolated from the lower index, so the point does not depend on which triangle asked first.
        let (lo, hi) = (self.positions[key.0 as usize], self.positions[key.1 as usize]);
        let t = (value - lo[axis]) / (hi[axis] - lo[axis]);
        let mut q = [0.0; 3];
        for (k, c) in q.iter_mut().enumerate() {
            *c = lo[k] + t * (hi[k] - lo[k]);
        }
        q[axis] = value;
        // On any earlier plane both ends lie on, the interpolation is already exact (equal coordinates).
        let on = (1u8 << p) | (self.on_planes[key.0 as usize] & self.on_planes[key.1 as usize]);
        let i = self.positions.len() as u32;
        self.positions.push(q);
        self.on_planes.push(on);
        cuts.insert(key, i);
        i
    }

    /// The cut edges (open edges of the clipped surface) per plane, as directed in their triangles.
    fn cut_segments(&self) -> Result<[Vec<[u32; 2]>; 6], CropError> {
        let mut segments: [Vec<[u32; 2]>; 6] = Default::default();
        for t in &self.triangles {
            for k in 0..3 {
                let (u, v) = (t[k], t[(k + 1) % 3]);
                let common = self.on_planes[u as usize] & self.on_planes[v as usize];
                if common == 0 {
                    continue;
                }
                if common.count_ones() > 1 {
                    let p = common.trailing_zeros() as usize;
                    return Err(CropError::Section {
                        face: FACE_NAMES[p],
                        detail: format!(
                            "an edge runs along a box edge at {}",
                            fmt_mm(self.positions[u as usize])
                        ),
                    });
                }
                segments[common.trailing_zeros() as usize].push([u, v]);
            }
        }
        Ok(segments)
    }

    /// The clipped triangles followed by the caps, with only the vertices used, numbered in first-use order.
    fn finish(self, bounds: &[[f64; 3]; 2], caps: &[FaceCap]) -> Mesh {
        let corner_base = self.positions.len() as u32;
        let mut all = self.triangles;
        for cap in caps {
            all.extend(cap.triangles.iter().map(|t| {
                t.map(|c| match c {
                    CapVertex::Mesh(v) => v,
                    CapVertex::Corner(k) => corner_base + u32::from(k),
                })
            }));
        }
        let mut positions_in = self.positions;
        positions_in.extend((0..8u8).map(|c| corner_position(bounds, c)));
        compact_first_use(&positions_in, all)
    }
}

/// A vertex of a cap triangle: a vertex of the clipped mesh or a box corner (index bits as in [`box_mesh`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum CapVertex {
    Mesh(u32),
    Corner(u8),
}

/// The cap triangles of one face (outward) and what it tells its neighbours: the inside/outside state along each box
/// edge that no cut crosses, keyed by its corner pair.
struct FaceCap {
    triangles: Vec<[CapVertex; 3]>,
    edge_states: Vec<((u8, u8), bool)>,
}

impl FaceCap {
    /// A face without cuts: all inside (two triangles) or all outside (none).
    fn whole(p: usize, inside: bool) -> FaceCap {
        let [c0, c1, c2, c3] = face_corners(p);
        let triangles = if inside {
            vec![[c0, c1, c2], [c0, c2, c3]]
                .into_iter()
                .map(|t| t.map(CapVertex::Corner))
                .collect()
        } else {
            Vec::new()
        };
        let edge_states = (0..4)
            .map(|k| (corner_pair(c_at(p, k), c_at(p, k + 1)), inside))
            .collect();
        FaceCap { triangles, edge_states }
    }
}

fn c_at(p: usize, k: usize) -> u8 {
    face_corners(p)[k % 4]
}

fn corner_pair(a: u8, b: u8) -> (u8, u8) {
    (a.min(b), a.max(b))
}

/// Caps every face: faces with cuts by their own triangulation, the others by the state of a neighbour along a
/// shared box edge.
fn cap_faces(work: &Work, bounds: &[[f64; 3]; 2], segments: &[Vec<[u32; 2]>; 6]) -> Result<Vec<FaceCap>, CropError> {
    let mut caps: Vec<Option<FaceCap>> = (0..6)
        .map(|p| {
            if segments[p].is_empty() {
                Ok(None)
            } else {
                cap_face(work, bounds, p, &segments[p]).map(Some)
            }
        })
        .collect::<Result<_, _>>()?;
    // Faces without cuts take the state of a box edge they share with a decided face; each round decides at least
    // one more face while any is undecided next to a decided one.
    for _ in 0..6 {
        let mut known: HashMap<(u8, u8), bool> = HashMap::new();
        for cap in caps.iter().flatten() {
            known.extend(cap.edge_states.iter().copied());
        }
        let mut progress = false;
        for (p, cap) in caps.iter_mut().enumerate() {
            if cap.is_some() {
                continue;
            }
            let state = (0..4).find_map(|k| known.get(&corner_pair(c_at(p, k), c_at(p, k + 1))).copied());
            if let Some(inside) = state {
                *cap = Some(FaceCap::whole(p, inside));
                progress = true;
            }
        }
        if !progress {
            break;
        }
    }
    caps.into_iter()
        .enumerate()
        .map(|(p, cap)| {
            cap.ok_or_else(|| CropError::Section {
                face: FACE_NAMES[p],
                detail: "no neighbouring face decides whether it is inside".into(),
            })
        })
        .collect()
}

/// The corners of face `p`, counter-clockwise seen from outside.
fn face_corners(p: usize) -> [u8; 4] {
    let (axis, side) = (p / 2, p % 2);
    let (u, v) = ((axis + 1) % 3, (axis + 2) % 3);
    let base = (side as u8) << axis;
    let (bu, bv) = (1u8 << u, 1u8 << v);
    // (u, v, axis) is right-handed, so counter-clockwise in (u, v) faces +axis.
    let ccw = [base, base | bu, base | bu | bv, base | bv];
    if side == 1 {
        ccw
    } else {
        [ccw[0], ccw[3], ccw[2], ccw[1]]
    }
}

fn corner_position(bounds: &[[f64; 3]; 2], c: u8) -> [f64; 3] {
    [0, 1, 2].map(|a| bounds[usize::from((c >> a) & 1)][a])
}

/// Triangulates the part of face `p` inside the solid: a constrained Delaunay triangulation of the face rectangle
/// (corners, the cut points on its sides) with the cut edges and the rectangle's sides as constraints; the side of
/// each cut edge that is inside follows from its direction, and flood fill across unconstrained edges reaches the
/// rest.
fn cap_face(work: &Work, bounds: &[[f64; 3]; 2], p: usize, segments: &[[u32; 2]]) -> Result<FaceCap, CropError> {
    let face = FACE_NAMES[p];
    let err = |detail: String| CropError::Section { face, detail };
    let (axis, side) = (p / 2, p % 2);
    let (u, v) = ((axis + 1) % 3, (axis + 2) % 3);
    let to_2d = |q: [f64; 3]| Point2::new(q[u], q[v]);

    let mut cdt: ConstrainedDelaunayTriangulation<Point2<f64>> = ConstrainedDelaunayTriangulation::new();
    let mut vertex_of: Vec<Option<CapVertex>> = Vec::new();
    let mut handle_of: HashMap<CapVertex, spade::handles::FixedVertexHandle> = HashMap::new();
    let mut insert = |cdt: &mut ConstrainedDelaunayTriangulation<Point2<f64>>,
                      vertex: CapVertex,
                      q: [f64; 3]|
     -> Result<spade::handles::FixedVertexHandle, CropError> {
        if let Some(&h) = handle_of.get(&vertex) {
            return Ok(h);
        }
        let h = cdt
            .insert(to_2d(q))
            .map_err(|e| err(format!("point {} not accepted: {e:?}", fmt_mm(q))))?;
        let i = h.index();
        if vertex_of.len() <= i {
            vertex_of.resize(i + 1, None);
        }
        if vertex_of[i].is_some_and(|other| other != vertex) {
            return Err(err(format!("two cut points coincide at {}", fmt_mm(q))));
        }
        vertex_of[i] = Some(vertex);
        handle_of.insert(vertex, h);
        Ok(h)
    };

    // Corners, then the rectangle's sides with the cut points on them, in order along each side.
    let corners = face_corners(p);
    let mut corner_handles = [None; 4];
    for (k, &c) in corners.iter().enumerate() {
        corner_handles[k] = Some(insert(&mut cdt, CapVertex::Corner(c), corner_position(bounds, c))?);
    }
    let endpoints: Vec<u32> = {
        let mut seen = Vec::new();
        let mut mark: HashSet<u32> = HashSet::new();
        for s in segments {
            for &w in s {
                if mark.insert(w) {
                    seen.push(w);
                }
            }
        }
        seen
    };
    let mut sides: Vec<(usize, usize, [u8; 2])> = Vec::new();
    for k in 0..4 {
        let (ca, cb) = (corners[k], corners[(k + 1) % 4]);
        // The axis along this side is the one whose corner bit differs; the other in-face axis fixes the side.
        let along = (ca ^ cb).trailing_zeros() as usize;
        let across = if along == u { v } else { u };
        let across_plane = 2 * across + usize::from((ca >> across) & 1);
        sides.push((along, across_plane, [ca, cb]));
    }
    for &(along, across_plane, [ca, cb]) in &sides {
        let mut on_side: Vec<u32> = endpoints
            .iter()
            .copied()
            .filter(|&w| work.on_planes[w as usize] & (1 << across_plane) != 0)
            .collect();
        let from = corner_position(bounds, ca)[along];
        let dir = if corner_position(bounds, cb)[along] > from {
            1.0
        } else {
            -1.0
        };
        on_side.sort_by(|&x, &y| {
            let dx = dir * (work.positions[x as usize][along] - from);
            let dy = dir * (work.positions[y as usize][along] - from);
            dx.total_cmp(&dy).then(x.cmp(&y))
        });
        let mut chain = vec![(CapVertex::Corner(ca), corner_position(bounds, ca))];
        chain.extend(
            on_side
                .iter()
                .map(|&w| (CapVertex::Mesh(w), work.positions[w as usize])),
        );
        chain.push((CapVertex::Corner(cb), corner_position(bounds, cb)));
        for pair in chain.windows(2) {
            let ha = insert(&mut cdt, pair[0].0, pair[0].1)?;
            let hb = insert(&mut cdt, pair[1].0, pair[1].1)?;
            if cdt.try_add_constraint(ha, hb).len() != 1 {
                return Err(err(format!(
                    "the face side from {} to {} is crossed or touched",
                    fmt_mm(pair[0].1),
                    fmt_mm(pair[1].1)
                )));
            }
        }
    }
    // Cut edges, remembered by their direction in the surface.
    let mut direction: HashSet<(usize, usize)> = HashSet::new();
    for &[a, b] in segments {
        let (pa, pb) = (work.positions[a as usize], work.positions[b as usize]);
        let ha = insert(&mut cdt, CapVertex::Mesh(a), pa)?;
        let hb = insert(&mut cdt, CapVertex::Mesh(b), pb)?;
        if cdt.exists_constraint(ha, hb) {
            return Err(err(format!(
                "the cut edge from {} to {} is shared by more than one triangle",
                fmt_mm(pa),
                fmt_mm(pb)
            )));
        }
        if cdt.try_add_constraint(ha, hb).len() != 1 {
            return Err(err(format!(
                "the cut edge from {} to {} crosses or touches another (self-intersecting or open surface)",
                fmt_mm(pa),
                fmt_mm(pb)
            )));
        }
        direction.insert((ha.index(), hb.index()));
    }

    // Inside lies right of a surface edge u -> v (seen from outside) on a max face, left of it on a min face.
    let inside_left_of_surface_edge = side == 0;
    let mut state: Vec<Option<bool>> = vec![None; cdt.num_all_faces()];
    let mut stack = Vec::new();
    for f in cdt.inner_faces() {
        for e in f.adjacent_edges() {
            let (from, to) = (e.from().fix().index(), e.to().fix().index());
            // `f` lies left of `e`.
            let s = if direction.contains(&(from, to)) {
                inside_left_of_surface_edge
            } else if direction.contains(&(to, from)) {
                !inside_left_of_surface_edge
            } else {
                continue;
            };
            let i = f.fix().index();
            match state[i] {
                None => {
                    state[i] = Some(s);
                    stack.push(i);
                }
                Some(old) if old != s => {
                    let q = f.vertices()[0].position();
                    return Err(err(format!(
                        "the cut loops are inconsistently oriented near ({:.3}, {:.3}) in the face plane",
                        q.x, q.y
                    )));
                }
                Some(_) => {}
            }
        }
    }
    let faces: Vec<_> = cdt.inner_faces().collect();
    let by_index: HashMap<usize, usize> = faces.iter().enumerate().map(|(k, f)| (f.fix().index(), k)).collect();
    while let Some(i) = stack.pop() {
        let Some(&k) = by_index.get(&i) else { continue };
        let s = state[i];
        for e in faces[k].adjacent_edges() {
            if e.as_undirected().data().is_constraint_edge() {
                continue;
            }
            let Some(n) = e.rev().face().as_inner() else { continue };
            let j = n.fix().index();
            match state[j] {
                None => {
                    state[j] = s;
                    stack.push(j);
                }
                old if old != s => {
                    return Err(err(
                        "a region is both inside and outside (open or self-intersecting surface)".into(),
                    ))
                }
                _ => {}
            }
        }
    }

    let mut triangles = Vec::new();
    let mut edge_states = Vec::new();
    for f in &faces {
        let Some(inside) = state[f.fix().index()] else {
            let q = f.vertices()[0].position();
            return Err(err(format!(
                "a region near ({:.3}, {:.3}) in the face plane touches no cut",
                q.x, q.y
            )));
        };
        let verts = f.vertices().map(|h| vertex_of.get(h.fix().index()).copied().flatten());
        let [Some(a), Some(b), Some(c)] = verts else {
            return Err(err("the triangulation has a vertex that was not inserted".into()));
        };
        for (x, y) in [(a, b), (b, c), (c, a)] {
            if let (CapVertex::Corner(cx), CapVertex::Corner(cy)) = (x, y) {
                if (cx ^ cy).count_ones() == 1 {
                    edge_states.push((corner_pair(cx, cy), inside));
                }
            }
        }
        if inside {
            // Counter-clockwise in (u, v) faces +axis: kept on a max face, reversed on a min face.
            triangles.push(if side == 1 { [a, b, c] } else { [a, c, b] });
        }
    }
    Ok(FaceCap { triangles, edge_states })
}

/// Generalised winding number of a closed mesh around `q` (1 inside, 0 outside for an outward mesh): the sum of the
/// solid angles of its triangles over 4π (Van Oosterom and Strackee), in fixed chunks so the sum is deterministic.
fn winding_number(mesh: &Mesh, q: [f64; 3]) -> f64 {
    let partial: Vec<f64> = mesh
        .triangles
        .par_chunks(SELECT_CHUNK)
        .map(|chunk| {
            chunk
                .iter()
                .filter_map(|&t| mesh.triangle_points(t))
                .map(|p| {
                    let [a, b, c] = p.map(|x| super::sub(x, q));
                    let (la, lb, lc) = (super::norm(a), super::norm(b), super::norm(c));
                    let det = super::dot(a, super::cross(b, c));
                    let den = la * lb * lc + super::dot(a, b) * lc + super::dot(b, c) * la + super::dot(c, a) * lb;
                    2.0 * det.atan2(den)
                })
                .sum::<f64>()
        })
        .collect();
    partial.iter().sum::<f64>() / (4.0 * std::f64::consts::PI)
}

/// A mesh of `triangles` with only the vertices they use, numbered in order of first use.
fn compact_first_use(positions: &[[f64; 3]], triangles: Vec<[u32; 3]>) -> Mesh {
    let mut remap = vec![u32::MAX; positions.len()];
    let mut new_positions = Vec::new();
    let triangles = triangles
        .into_iter()
        .map(|t| {
            t.map(|v| {
                let slot = &mut remap[v as usize];
                if *slot == u32::MAX {
                    *slot = new_positions.len() as u32;
                    new_positions.push(positions[v as usize]);
                }
                *slot
            })
        })
        .collect();
    Mesh {
        positions: new_positions,
        triangles,
    }
}

fn squared_distance(a: [f64; 3], b: [f64; 3]) -> f64 {
    let d = super::sub(a, b);
    super::dot(d, d)
}

fn fmt_mm(p: [f64; 3]) -> String {
    format!("({:.4}, {:.4}, {:.4}) mm", p[0], p[1], p[2])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::MeshReport;

    /// Torus around +z: `n_around` segments around the axis, `n_tube` around the tube; outward.
    fn torus(center: [f64; 3], major_mm: f64, minor_mm: f64, n_around: u32, n_tube: u32) -> Mesh {
        let mut positions = Vec::new();
        for i in 0..n_around {
            let theta = std::f64::consts::TAU * f64::from(i) / f64::from(n_around);
            for j in 0..n_tube {
                let phi = std::f64::consts::TAU * f64::from(j) / f64::from(n_tube);
                let rho = major_mm + minor_mm * phi.cos();
                positions.push([
                    center[0] + rho * theta.cos(),
                    center[1] + rho * theta.sin(),
                    center[2] + minor_mm * phi.sin(),
                ]);
            }
        }
        let id = |i: u32, j: u32| (i % n_around) * n_tube + (j % n_tube);
        let mut triangles = Vec::new();
        for i in 0..n_around {
            for j in 0..n_tube {
                let (a, b, c, d) = (id(i, j), id(i + 1, j), id(i + 1, j + 1), id(i, j + 1));
                triangles.push([a, b, c]);
                triangles.push([a, c, d]);
            }
        }
        Mesh { positions, triangles }
    }

    /// UV sphere: `n_lon` meridians, `n_lat` latitude bands; outward.
    fn sphere(center: [f64; 3], radius_mm: f64, n_lon: u32, n_lat: u32) -> Mesh {
        let mut positions = vec![[center[0], center[1], center[2] - radius_mm]];
        for j in 1..n_lat {
            let phi = -std::f64::consts::FRAC_PI_2 + std::f64::consts::PI * f64::from(j) / f64::from(n_lat);
            for i in 0..n_lon {
                let theta = std::f64::consts::TAU * f64::from(i) / f64::from(n_lon);
                positions.push([
                    center[0] + radius_mm * phi.cos() * theta.cos(),
                    center[1] + radius_mm * phi.cos() * theta.sin(),
                    center[2] + radius_mm * phi.sin(),
                ]);
            }
        }
        let north = positions.len() as u32;
        positions.push([center[0], center[1], center[2] + radius_mm]);
        let ring = |j: u32, i: u32| 1 + (j - 1) * n_lon + (i % n_lon);
        let mut triangles = Vec::new();
        for i in 0..n_lon {
            triangles.push([0, ring(1, i + 1), ring(1, i)]);
            triangles.push([north, ring(n_lat - 1, i), ring(n_lat - 1, i + 1)]);
            for j in 1..n_lat - 1 {
                let (a, b, c, d) = (ring(j, i), ring(j, i + 1), ring(j + 1, i + 1), ring(j + 1, i));
                triangles.push([a, b, c]);
                triangles.push([a, c, d]);
            }
        }
        Mesh { positions, triangles }
    }

    fn bx(min_mm: [f64; 3], max_mm: [f64; 3]) -> BoundingBox {
        BoundingBox { min_mm, max_mm }
    }

    /// The reference: the mesh intersected with the box by the boolean engine.
    fn reference_volume(mesh: &Mesh, b: BoundingBox) -> f64 {
        let cube = box_mesh(b);
        boolean(
            Operand::new("mesh", mesh),
            Operand::new("box", &cube),
            BoolOp::Intersection,
        )
        .expect("reference intersection")
        .signed_volume_mm3()
    }

    fn assert_valid(m: &Mesh) {
        let report = MeshReport::new(m);
        assert!(report.is_valid(), "{report}");
    }

    #[test]
    fn generated_shapes_are_valid_outward_solids() {
        for m in [sphere([0.0; 3], 10.0, 48, 24), torus([0.0; 3], 10.0, 3.0, 64, 24)] {
            assert_valid(&m);
            assert!(m.signed_volume_mm3() > 0.0);
        }
        assert_valid(&box_mesh(bx([0.0; 3], [1.0, 2.0, 3.0])));
        assert!((box_mesh(bx([0.0; 3], [1.0, 2.0, 3.0])).signed_volume_mm3() - 6.0).abs() < 1e-12);
    }

    #[test]
    fn sphere_cut_by_boxes_is_closed_and_has_the_clipped_volume() {
        let s = sphere([0.3, -0.2, 0.1], 10.0, 64, 32);
        let boxes = [
            // one face through the sphere
            bx([-20.0, -20.0, -20.0], [20.0, 20.0, 3.137]),
            // a corner of the box inside the sphere: three faces cut
            bx([1.234, 2.345, 1.456], [30.0, 30.0, 30.0]),
            // a slab through the middle: two parallel caps
            bx([-20.0, -1.111, -20.0], [20.0, 2.222, 20.0]),
            // a box crossing the surface on all six faces
            bx([-7.77, -7.31, -7.13], [7.21, 7.43, 6.97]),
        ];
        for b in boxes {
            let c = crop_to_box(&s, b).expect("crop");
            assert_valid(&c);
            let expected = reference_volume(&s, b);
            let got = c.signed_volume_mm3();
            assert!(((got - expected) / expected).abs() < 1e-9, "{b:?}: {got} vs {expected}");
            let cb = c.bounding_box().expect("non-empty");
            for a in 0..3 {
                assert!(
                    cb.min_mm[a] >= b.min_mm[a] && cb.max_mm[a] <= b.max_mm[a],
                    "{cb:?} outside {b:?}"
                );
            }
        }
    }

    #[test]
    fn cube_cut_by_a_box_has_the_exact_box_intersection_volume() {
        let cube = box_mesh(bx([0.0; 3], [10.0; 3]));
        let c = crop_to_box(&cube, bx([2.5, -1.0, 3.5], [7.25, 4.0, 20.0])).expect("crop");
        assert_valid(&c);
        assert!(
            (c.signed_volume_mm3() - 4.75 * 4.0 * 6.5).abs() < 1e-9,
            "{}",
            c.signed_volume_mm3()
        );
    }

    #[test]
    fn torus_sections_with_holes_are_capped() {
        let t = torus([0.0; 3], 10.0, 3.0, 96, 32);
        let boxes = [
            // a plane across the tube all around: the cap is an annulus (a loop with a hole)
            bx([-20.0, -20.0, -5.0], [20.0, 20.0, 0.731]),
            // two separate tube sections, and a box face inside the hole
            bx([-4.3, -20.0, -5.0], [4.1, 20.0, 5.0]),
            // a box around the hole only meets the inner wall
            bx([-8.2, -8.3, -1.1], [8.4, 8.1, 1.3]),
        ];
        for b in boxes {
            let c = crop_to_box(&t, b).expect("crop");
            assert_valid(&c);
            let expected = reference_volume(&t, b);
            let got = c.signed_volume_mm3();
            assert!(((got - expected) / expected).abs() < 1e-9, "{b:?}: {got} vs {expected}");
        }
    }

    #[test]
    fn boxes_missing_containing_or_inside_the_solid() {
        let t = torus([0.0; 3], 10.0, 3.0, 64, 24);
        // Far away, and inside the hole of the torus (within its bounding box).
        assert!(crop_to_box(&t, bx([50.0; 3], [60.0; 3])).expect("crop").is_empty());
        assert!(crop_to_box(&t, bx([-2.0; 3], [2.0; 3])).expect("crop").is_empty());
        // Containing the mesh: unchanged.
        assert_eq!(crop_to_box(&t, bx([-14.0; 3], [14.0; 3])).expect("crop"), t);
        // Inside the solid: the box itself.
        let s = sphere([0.0; 3], 10.0, 48, 24);
        let inner = bx([-1.0, -2.0, -3.0], [1.5, 2.5, 3.5]);
        let c = crop_to_box(&s, inner).expect("crop");
        assert_valid(&c);
        assert!((c.signed_volume_mm3() - 2.5 * 4.5 * 6.5).abs() < 1e-9);
        assert_eq!(c.triangle_count(), 12);
    }

    #[test]
    fn vertices_on_a_plane_move_it_outward_and_stay_closed() {
        // Ring j of the sphere lies exactly at z = r sin(phi_j); cut there, and along x through the meridian vertices.
        let s = sphere([0.0; 3], 10.0, 32, 16);
        let z = s.positions[1 + 9 * 32][2];
        let b = bx([0.0, -20.0, -20.0], [20.0, 20.0, z]);
        assert!(s.positions.iter().filter(|p| p[2] == z || p[0] == 0.0).count() > 10);
        let c = crop_to_box(&s, b).expect("crop");
        assert_valid(&c);
        let shift = PLANE_SHIFT_STEP_MM * f64::from(MAX_SHIFT_STEPS);
        let v = c.signed_volume_mm3();
        assert!(
            v > reference_volume(&s, b) && v < reference_volume(&s, grown(b, shift)),
            "{v}"
        );
        // No vertex of the crop lies nearer the requested planes than the clearance, except on them.
        let cb = c.bounding_box().expect("non-empty");
        assert!(cb.max_mm[2] > z && cb.min_mm[0] < 0.0);
    }

    #[test]
    fn same_bytes_whatever_the_thread_count() {
        let t = torus([0.1, 0.2, 0.3], 10.0, 3.0, 128, 48);
        let b = bx([-4.3, -20.0, -5.0], [4.1, 20.0, 0.77]);
        let run = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("pool")
                .install(|| crop_to_box(&t, b).expect("crop"))
        };
        assert_eq!(run(1), run(4));
    }

    #[test]
    fn difference_near_equals_the_full_difference() {
        let s = sphere([0.0; 3], 10.0, 96, 48);
        let guide = box_mesh(bx([-3.3, -4.1, 7.3], [4.4, 3.7, 12.9]));
        let full = boolean(
            Operand::new("guide", &guide),
            Operand::new("bone", &s),
            BoolOp::Difference,
        )
        .expect("full difference");
        let near = difference_near(&guide, &s, 0.25).expect("difference near");
        assert_valid(&near);
        let (a, b) = (near.signed_volume_mm3(), full.signed_volume_mm3());
        assert!(((a - b) / b).abs() < 1e-6, "{a} vs {b}");
        assert!(b < guide.signed_volume_mm3() * 0.99, "the bone must cut the guide: {b}");
        assert!(matches!(
            difference_near(&guide, &s, 0.0),
            Err(CropError::InvalidMargin { .. })
        ));
    }

    #[test]
    fn bad_boxes_are_refused_with_their_bounds() {
        let s = sphere([0.0; 3], 1.0, 8, 4);
        let err = crop_to_box(&s, bx([0.0; 3], [1.0, f64::NAN, 1.0])).expect_err("nan");
        assert!(err.to_string().contains("invalid crop box"), "{err}");
        assert!(crop_to_box(&s, bx([0.0; 3], [1.0, 0.0, 1.0])).is_err());
    }

    #[test]
    fn an_open_surface_through_the_cut_is_reported() {
        let mut s = sphere([0.0; 3], 10.0, 32, 16);
        // Remove the triangles of the band between the rings at z = 0 and z = 1.95 on the +x side.
        let before = s.triangles.len();
        let positions = s.positions.clone();
        s.triangles.retain(|t| {
            let c = crate::mesh::centroid(&t.map(|v| positions[v as usize]));
            !(c[2] > 0.0 && c[2] < 1.9 && c[0] > 0.0)
        });
        assert!(s.triangles.len() < before);
        let err = crop_to_box(&s, bx([-20.0; 3], [20.0, 20.0, 0.123])).expect_err("open");
        assert!(matches!(err, CropError::Section { face: "max z", .. }), "{err}");
    }
}
