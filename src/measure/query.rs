//! [`BoneQuery`]: one bone mesh prepared for many queries, the line crossings and the drill measurements.
//!
//! A drill axis is a line; where it crosses the closed bone surface it alternately enters and leaves the bone, so
//! the inside intervals (cortices, bone pieces) follow from the crossings sorted along the axis. That only holds if
//! every geometric crossing is counted exactly once, which is why the line-triangle test here is combinatorial (signs
//! of exact orientation predicates per edge) rather than the usual barycentric test with a tolerance.

use parry3d::bounding_volume::{Aabb, BoundingVolume};
use parry3d::math::Vector;
use parry3d::query::{Ray, RayCast};
use parry3d::shape::TriMesh;
use rayon::prelude::*;
use robust::Coord3D;
use serde::Serialize;

use super::{finite_point, non_negative, unit, MeasureError};
use crate::mesh::{add, cross, dot, norm, scale, sub, BoundingBox, Mesh};

/// How much every BVH node box (f32) is loosened before a ray or plane is tested against it, mm. f32 positions near
/// 100 mm from the origin round by ~1e-5 mm, and a query ray converted to f32 drifts by ~1e-5 mm over 300 mm; 1e-3
/// mm is a hundred times that, so no triangle the exact f64 test would accept is ever missed (extra candidates are
/// only rejected by that test).
pub const CANDIDATE_MARGIN_MM: f64 = 1e-3;

/// Default lead-in of [`DrillOptions`], mm: a planned entry up to this far inside the bone still finds the surface.
pub const DEFAULT_LEAD_IN_MM: f64 = 2.0;

/// Default [`DrillOptions::marrow_gap_mm`]. An assumption, to be overridden where it does not hold: the medullary
/// cavity of the mandible and the facial bones, where a bone threshold leaves it hollow, is narrower than this, while
/// sinuses and the spaces between separate bones are wider, so they separate bone pieces.
pub const DEFAULT_MARROW_GAP_MM: f64 = 10.0;

/// Triangles per parry3d `TriMesh` chunk. parry3d builds a BVH on one thread; slabs of this many triangles along the
/// mesh's longest axis are built in parallel instead. A fixed size (not one per thread) keeps the partition, and so
/// every candidate set, independent of the thread count.
pub const CHUNK_TRIANGLES: usize = 65_536;

/// One slab of the mesh: a parry3d `TriMesh` over its own compacted vertices, and the mesh triangle of each leaf.
struct Chunk {
    trimesh: TriMesh,
    triangles: Vec<u32>,
}

/// One bone surface prepared for measurements: our f64 mesh and parry3d `TriMesh`es (f32) with their BVHs.
pub struct BoneQuery {
    mesh: Mesh,
    chunks: Vec<Chunk>,
    bounds: BoundingBox,
}

impl std::fmt::Debug for BoneQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoneQuery")
            .field("triangles", &self.mesh.triangles.len())
            .field("bounds", &self.bounds)
            .finish()
    }
}

/// Where a line crosses the bone surface.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Crossing {
    /// Parameter along the line, mm from its origin (the direction is unit length).
    pub t_mm: f64,
    /// The crossing point, LPS mm (computed in f64 on the mesh triangle).
    pub point_mm: [f64; 3],
    /// The triangle crossed (index into the mesh's triangles).
    pub triangle: u32,
    /// Unit outward normal of that triangle.
    pub normal: [f64; 3],
    /// True when the line goes into the bone here (against the outward normal).
    pub entering: bool,
}

/// A point where a drill meets the bone surface.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct SurfacePoint {
    /// Parameter along the drill axis, mm from the planned entry (negative: before the planned entry).
    pub t_mm: f64,
    /// The point, LPS mm.
    pub point_mm: [f64; 3],
    /// Unit outward surface normal there.
    pub normal: [f64; 3],
    /// Angle between the drill axis and the surface normal line, degrees in `0..=90` (0: perpendicular to the
    /// surface; large angles make a drill skid).
    pub incidence_deg: f64,
}

impl SurfacePoint {
    fn of(c: &Crossing, dir: [f64; 3]) -> Self {
        let cos = dot(c.normal, dir).abs().min(1.0);
        SurfacePoint {
            t_mm: c.t_mm,
            point_mm: c.point_mm,
            normal: c.normal,
            incidence_deg: cos.acos().to_degrees(),
        }
    }
}

/// A stretch of the drill axis inside bone.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct BoneInterval {
    /// Where the axis enters (`None` when the searched stretch starts inside bone).
    pub enter: Option<SurfacePoint>,
    /// Where it leaves (`None` when the searched stretch ends inside bone: an open mesh).
    pub leave: Option<SurfacePoint>,
    /// Start parameter, mm along the axis from the planned entry.
    pub start_t_mm: f64,
    /// End parameter, mm.
    pub end_t_mm: f64,
    /// `end_t_mm - start_t_mm`: the thickness of this cortex or bone piece along the axis, mm.
    pub length_mm: f64,
}

/// What the planned drill does in the bone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DrillKind {
    /// The axis never enters the bone within the search.
    Missed,
    /// The searched stretch already starts inside bone (the planned entry is deeper than the lead-in).
    StartsInBone,
    /// The tip stops before the far exit of the bone piece it entered.
    Monocortical,
    /// The tip reaches or passes the far exit of the bone piece it entered.
    Bicortical,
}

/// Parameters of [`BoneQuery::drill_with`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct DrillOptions {
    /// The entry is searched from this far before the planned entry, mm, so a planned entry slightly inside the bone
    /// still finds the surface.
    pub lead_in_mm: f64,
    /// Inside intervals separated by less than this (mm of non-bone along the axis, a marrow cavity) belong to one
    /// bone piece; the far exit is the exit of the piece the drill enters.
    pub marrow_gap_mm: f64,
}

impl Default for DrillOptions {
    fn default() -> Self {
        DrillOptions {
            lead_in_mm: DEFAULT_LEAD_IN_MM,
            marrow_gap_mm: DEFAULT_MARROW_GAP_MM,
        }
    }
}

/// A drill measured against the bone. Parameters `t_mm` are along the unit axis from the planned entry.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DrillPath {
    /// Planned entry point, LPS mm.
    pub planned_entry_mm: [f64; 3],
    /// Unit drill direction (into the bone).
    pub direction: [f64; 3],
    /// Planned drilling length from the planned entry, mm.
    pub length_mm: f64,
    /// Drill diameter, mm.
    pub diameter_mm: f64,
    /// The options used.
    pub options: DrillOptions,
    /// The planned tip, `planned_entry_mm + length_mm * direction`.
    pub tip_mm: [f64; 3],
    /// Every crossing of the axis from `-lead_in_mm` to the far side of the bone's bounding box, sorted by `t_mm`.
    pub crossings: Vec<Crossing>,
    /// Inside-bone stretches along the same range (their lengths are the cortex thicknesses of a hollow bone).
    pub intervals: Vec<BoneInterval>,
    /// The first entering crossing at or after `-lead_in_mm`.
    pub entry: Option<SurfacePoint>,
    /// The exit of the bone piece entered at `entry` (intervals joined across gaps below `marrow_gap_mm`).
    pub far_exit: Option<SurfacePoint>,
    /// Monocortical, bicortical, missed, or starting inside bone.
    pub kind: DrillKind,
    /// Bone along the axis between `-lead_in_mm` and the tip, mm.
    pub bone_within_length_mm: f64,
    /// Whether the planned tip is inside bone.
    pub tip_in_bone: bool,
    /// From the entry to the far exit, mm: the screw length that engages both cortices.
    pub bicortical_length_mm: Option<f64>,
    /// How far the tip goes past the far exit, mm (negative: it stops short of it).
    pub tip_past_far_exit_mm: Option<f64>,
}

impl DrillPath {
    /// Half the diameter, mm.
    pub fn radius_mm(&self) -> f64 {
        0.5 * self.diameter_mm
    }

    /// The point at parameter `t_mm` along the axis.
    pub fn point_at(&self, t_mm: f64) -> [f64; 3] {
        add(self.planned_entry_mm, scale(self.direction, t_mm))
    }
}

fn vec3(p: [f64; 3]) -> Vector {
    Vector::new(p[0] as f32, p[1] as f32, p[2] as f32)
}

fn coord(p: [f64; 3]) -> Coord3D<f64> {
    Coord3D {
        x: p[0],
        y: p[1],
        z: p[2],
    }
}

/// Sign of the oriented volume of the line `p`-`q` and the edge `a`-`b`, exact, with an exact zero broken by a
/// symbolic perturbation of the line (translated by `eps * x + eps^2 * y + eps^3 * z`): its first non-zero order is
/// `delta . ((q - p) x (a - b))`. Swapping `a` and `b` negates every term exactly, so the two triangles sharing an
/// edge always get opposite signs. Zero only when the edge is parallel to the line and on it.
fn edge_sign(p: [f64; 3], q: [f64; 3], a: [f64; 3], b: [f64; 3]) -> i8 {
    let s = robust::orient3d(coord(p), coord(q), coord(a), coord(b));
    if s != 0.0 {
        return if s > 0.0 { 1 } else { -1 };
    }
    let m = cross(sub(q, p), sub(a, b));
    for c in m {
        if c != 0.0 {
            return if c > 0.0 { 1 } else { -1 };
        }
    }
    0
}

/// Parameter range `[t0, t1]` where the line `o + t d` is inside the box loosened by `margin`, if any.
fn clip_to_box(o: [f64; 3], d: [f64; 3], b: &BoundingBox, margin: f64) -> Option<(f64, f64)> {
    let (mut t0, mut t1) = (f64::NEG_INFINITY, f64::INFINITY);
    for a in 0..3 {
        let (lo, hi) = (b.min_mm[a] - margin, b.max_mm[a] + margin);
        if d[a] == 0.0 {
            if o[a] < lo || o[a] > hi {
                return None;
            }
            continue;
        }
        let (ta, tb) = ((lo - o[a]) / d[a], (hi - o[a]) / d[a]);
        t0 = t0.max(ta.min(tb));
        t1 = t1.min(ta.max(tb));
    }
    (t0 <= t1).then_some((t0, t1))
}

impl BoneQuery {
    /// Prepares `mesh` (closed, outward, LPS mm) for queries: validates it and builds parry3d's `TriMesh` and BVH.
    pub fn new(mesh: &Mesh) -> Result<BoneQuery, MeasureError> {
        if mesh.triangles.is_empty() {
            return Err(MeasureError::EmptyMesh);
        }
        mesh.validate().map_err(|e| MeasureError::InvalidMesh(e.to_string()))?;
        let bounds = mesh.bounding_box().ok_or(MeasureError::EmptyMesh)?;
        // Slabs along the longest axis: triangles ordered by centroid (ties by index: a total order).
        let size = bounds.size_mm();
        let axis = (0..3).fold(0, |best, a| if size[a] > size[best] { a } else { best });
        let mut order: Vec<(f64, u32)> = mesh
            .triangles
            .par_iter()
            .enumerate()
            .map(|(i, t)| {
                let c: f64 = t.iter().map(|&v| mesh.positions[v as usize][axis]).sum();
                (c, i as u32)
            })
            .collect();
        order.par_sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let chunks = order
            .par_chunks(CHUNK_TRIANGLES)
            .map(|slab| {
                let triangles: Vec<u32> = slab.iter().map(|&(_, i)| i).collect();
                let mut used: Vec<u32> = triangles.iter().flat_map(|&t| mesh.triangles[t as usize]).collect();
                used.sort_unstable();
                used.dedup();
                let local = |v: u32| {
                    let i = used.binary_search(&v);
                    i.expect("every vertex of the slab's triangles was collected into `used`") as u32
                };
                let vertices: Vec<Vector> = used.iter().map(|&v| vec3(mesh.positions[v as usize])).collect();
                let indices: Vec<[u32; 3]> = triangles
                    .iter()
                    .map(|&t| mesh.triangles[t as usize].map(local))
                    .collect();
                let trimesh = TriMesh::new(vertices, indices)
                    .map_err(|e| MeasureError::InvalidMesh(format!("parry3d refused the mesh: {e}")))?;
                Ok(Chunk { trimesh, triangles })
            })
            .collect::<Result<Vec<Chunk>, MeasureError>>()?;
        Ok(BoneQuery {
            mesh: mesh.clone(),
            chunks,
            bounds,
        })
    }

    /// Mesh triangles whose BVH leaf passes `check`, sorted by index.
    fn candidates(&self, check: impl Fn(&parry3d::partitioning::BvhNode) -> bool) -> Vec<u32> {
        let mut out: Vec<u32> = self
            .chunks
            .iter()
            .flat_map(|c| {
                c.trimesh
                    .bvh()
                    .leaves(&check)
                    .filter_map(|leaf| c.triangles.get(leaf as usize).copied())
            })
            .collect();
        out.sort_unstable();
        out
    }

    /// The mesh queried.
    pub fn mesh(&self) -> &Mesh {
        &self.mesh
    }

    /// Bounding box of the mesh, LPS mm.
    pub fn bounds(&self) -> BoundingBox {
        self.bounds
    }

    /// Triangles whose (loosened) BVH box a plane can touch, sorted by index.
    pub(crate) fn plane_candidates(&self, point_mm: [f64; 3], normal: [f64; 3]) -> Vec<u32> {
        self.candidates(|node| {
            let (lo, hi) = (node.mins(), node.maxs());
            let (lo, hi) = ([lo.x, lo.y, lo.z], [hi.x, hi.y, hi.z]);
            let mut center_distance = 0.0;
            let mut reach = CANDIDATE_MARGIN_MM;
            for a in 0..3 {
                let c = 0.5 * (f64::from(lo[a]) + f64::from(hi[a]));
                let h = 0.5 * (f64::from(hi[a]) - f64::from(lo[a]));
                center_distance += (c - point_mm[a]) * normal[a];
                reach += h * normal[a].abs();
            }
            center_distance.abs() <= reach
        })
    }

    /// Every crossing of the line `origin_mm + t * dir` (`dir` is normalised, so `t` is in mm) with the surface for
    /// `t` in `[t_min_mm, t_max_mm]` (infinite bounds allowed), sorted by `t` then triangle. Each geometric crossing
    /// is reported once, also through a shared edge or vertex; a line that only touches the surface there gives none
    /// or an entering and a leaving crossing at the same `t`.
    pub fn crossings(
        &self,
        origin_mm: [f64; 3],
        dir: [f64; 3],
        t_min_mm: f64,
        t_max_mm: f64,
    ) -> Result<Vec<Crossing>, MeasureError> {
        let o = finite_point("line origin", origin_mm)?;
        let d = unit("line direction", dir)?;
        if t_min_mm.is_nan() || t_max_mm.is_nan() || t_min_mm > t_max_mm {
            return Err(MeasureError::BadValue {
                what: "line parameter range",
                expected: "t_min_mm <= t_max_mm",
                value: t_max_mm - t_min_mm,
            });
        }
        let Some((b0, b1)) = clip_to_box(o, d, &self.bounds, CANDIDATE_MARGIN_MM) else {
            return Ok(Vec::new());
        };
        let (t0, t1) = (t_min_mm.max(b0), t_max_mm.min(b1));
        if t0 > t1 {
            return Ok(Vec::new());
        }
        let ray_origin = add(o, scale(d, t0));
        let ray = Ray::new(vec3(ray_origin), vec3(d));
        let max_toi = (t1 - t0 + CANDIDATE_MARGIN_MM) as f32;
        let candidates = self.candidates(|node| {
            let aabb: Aabb = node.aabb().loosened(CANDIDATE_MARGIN_MM as f32);
            aabb.cast_local_ray(&ray, max_toi, true).is_some()
        });
        let q = add(o, d);
        let mut out: Vec<Crossing> = candidates
            .into_iter()
            .filter_map(|t| self.line_triangle(o, q, d, t))
            .filter(|c| c.t_mm >= t_min_mm && c.t_mm <= t_max_mm)
            .collect();
        out.sort_by(|a, b| a.t_mm.total_cmp(&b.t_mm).then(a.triangle.cmp(&b.triangle)));
        Ok(out)
    }

    /// The crossing of the line through `p` and `q = p + d` with triangle `index`, if the edge signs say it is hit.
    fn line_triangle(&self, p: [f64; 3], q: [f64; 3], d: [f64; 3], index: u32) -> Option<Crossing> {
        let tri = *self.mesh.triangles.get(index as usize)?;
        let [a, b, c] = self.mesh.triangle_points(tri)?;
        let s0 = edge_sign(p, q, a, b);
        if s0 == 0 || edge_sign(p, q, b, c) != s0 || edge_sign(p, q, c, a) != s0 {
            return None;
        }
        let n = cross(sub(b, a), sub(c, a));
        let denom = dot(n, d);
        let len = norm(n);
        if denom == 0.0 || len == 0.0 {
            // Edge-on or degenerate: the neighbours carry the crossing.
            return None;
        }
        let t_mm = dot(n, sub(a, p)) / denom;
        Some(Crossing {
            t_mm,
            point_mm: add(p, scale(d, t_mm)),
            triangle: index,
            normal: scale(n, 1.0 / len),
            entering: denom < 0.0,
        })
    }

    /// [`BoneQuery::drill_with`] with the default options.
    pub fn drill(
        &self,
        entry_mm: [f64; 3],
        dir: [f64; 3],
        length_mm: f64,
        diameter_mm: f64,
    ) -> Result<DrillPath, MeasureError> {
        self.drill_with(entry_mm, dir, length_mm, diameter_mm, &DrillOptions::default())
    }

    /// A drill from the planned entry `entry_mm` along `dir` for `length_mm`, measured against the bone along its
    /// axis: see [`DrillPath`].
    pub fn drill_with(
        &self,
        entry_mm: [f64; 3],
        dir: [f64; 3],
        length_mm: f64,
        diameter_mm: f64,
        options: &DrillOptions,
    ) -> Result<DrillPath, MeasureError> {
        let entry = finite_point("drill entry", entry_mm)?;
        let d = unit("drill direction", dir)?;
        let length_mm = non_negative("drill length_mm", length_mm)?;
        let diameter_mm = non_negative("drill diameter_mm", diameter_mm)?;
        let lead_in = non_negative("drill lead_in_mm", options.lead_in_mm)?;
        let gap = non_negative("drill marrow_gap_mm", options.marrow_gap_mm)?;
        let crossings = self.crossings(entry, d, -lead_in, f64::INFINITY)?;
        let intervals = inside_intervals(&crossings, d, -lead_in);

        let bone_within_length_mm = intervals
            .iter()
            .map(|iv| (iv.end_t_mm.min(length_mm) - iv.start_t_mm.max(-lead_in)).max(0.0))
            .sum();
        let tip_in_bone = intervals
            .iter()
            .any(|iv| iv.start_t_mm <= length_mm && length_mm <= iv.end_t_mm);

        // The bone piece entered: the first interval and those after it joined across gaps below `marrow_gap_mm`.
        let (kind, entry_point, far_exit) = match intervals.first() {
            None => (DrillKind::Missed, None, None),
            Some(first) if first.enter.is_none() => (DrillKind::StartsInBone, None, None),
            Some(first) => {
                let mut last = first;
                for iv in &intervals[1..] {
                    if iv.start_t_mm - last.end_t_mm < gap {
                        last = iv;
                    } else {
                        break;
                    }
                }
                let kind = if length_mm >= last.end_t_mm {
                    DrillKind::Bicortical
                } else {
                    DrillKind::Monocortical
                };
                (kind, first.enter, last.leave)
            }
        };
        let bicortical_length_mm = match (entry_point, far_exit) {
            (Some(e), Some(x)) => Some(x.t_mm - e.t_mm),
            _ => None,
        };
        Ok(DrillPath {
            planned_entry_mm: entry,
            direction: d,
            length_mm,
            diameter_mm,
            options: DrillOptions {
                lead_in_mm: lead_in,
                marrow_gap_mm: gap,
            },
            tip_mm: add(entry, scale(d, length_mm)),
            crossings,
            intervals,
            entry: entry_point,
            far_exit,
            kind,
            bone_within_length_mm,
            tip_in_bone,
            bicortical_length_mm,
            tip_past_far_exit_mm: far_exit.map(|x| length_mm - x.t_mm),
        })
    }
}

/// Inside-bone stretches from crossings sorted along the axis, by nesting depth (overlapping components nest). A
/// leaving crossing at depth 0 means the search started inside bone: that stretch starts at `t_start_mm`.
fn inside_intervals(crossings: &[Crossing], d: [f64; 3], t_start_mm: f64) -> Vec<BoneInterval> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut open: Option<(f64, Option<SurfacePoint>)> = None;
    for c in crossings {
        let sp = SurfacePoint::of(c, d);
        if c.entering {
            if depth == 0 {
                open = Some((c.t_mm, Some(sp)));
            }
            depth += 1;
        } else {
            let (start, enter) = match (depth, open.take()) {
                (0, _) | (_, None) => (t_start_mm, None),
                (_, Some(o)) => o,
            };
            depth = depth.saturating_sub(1);
            if depth > 0 {
                open = Some((start, enter));
                continue;
            }
            out.push(BoneInterval {
                enter,
                leave: Some(sp),
                start_t_mm: start,
                end_t_mm: c.t_mm,
                length_mm: c.t_mm - start,
            });
        }
    }
    if let Some((start, enter)) = open {
        out.push(BoneInterval {
            enter,
            leave: None,
            start_t_mm: start,
            end_t_mm: f64::INFINITY,
            length_mm: f64::INFINITY,
        });
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The unit cube [0, 1]^3, outward, two triangles per face.
    pub(crate) fn cube() -> Mesh {
        let positions = (0..8)
            .map(|i| [f64::from(i & 1), f64::from((i >> 1) & 1), f64::from((i >> 2) & 1)])
            .collect();
        let triangles = vec![
            [0, 2, 1],
            [1, 2, 3],
            [4, 5, 6],
            [5, 7, 6],
            [0, 1, 4],
            [1, 5, 4],
            [2, 6, 3],
            [3, 6, 7],
            [0, 4, 2],
            [2, 4, 6],
            [1, 3, 5],
            [3, 7, 5],
        ];
        Mesh::new(positions, triangles).expect("cube")
    }

    #[test]
    fn cube_is_outward() {
        assert!((cube().signed_volume_mm3() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn line_through_a_shared_diagonal_edge_counts_once_per_face() {
        let q = BoneQuery::new(&cube()).expect("query");
        // Both z faces are split along x + y = 1 (z = 0: triangles [0,2,1] and [1,2,3] share the edge 1-2).
        let c = q
            .crossings([0.3, 0.7, -1.0], [0.0, 0.0, 1.0], -10.0, 10.0)
            .expect("crossings");
        assert_eq!(c.len(), 2, "{c:?}");
        assert!(c[0].entering && !c[1].entering);
        assert_eq!((c[0].t_mm, c[1].t_mm), (1.0, 2.0));
    }

    #[test]
    fn line_through_vertices_and_edges_keeps_parity() {
        let q = BoneQuery::new(&cube()).expect("query");
        // Through two opposite corners (vertices shared by up to six triangles).
        let c = q
            .crossings([-1.0, -1.0, -1.0], [1.0, 1.0, 1.0], -10.0, 10.0)
            .expect("crossings");
        assert_eq!(c.len(), 2, "{c:?}");
        assert!(c[0].entering && !c[1].entering);
        assert!((c[0].t_mm - 3f64.sqrt()).abs() < 1e-12);
        assert!((c[1].t_mm - 2.0 * 3f64.sqrt()).abs() < 1e-12);
        // Along a cube edge (in two faces, parallel to the line): touches or crosses, but never an odd count.
        for origin in [[0.0, 0.0, -1.0], [0.5, 0.0, -1.0], [0.0, 1.0, -1.0]] {
            let c = q.crossings(origin, [0.0, 0.0, 1.0], -10.0, 10.0).expect("crossings");
            assert_eq!(c.len() % 2, 0, "{origin:?}: {c:?}");
            assert_eq!(c.iter().filter(|x| x.entering).count(), c.len() / 2);
        }
    }

    #[test]
    fn edge_sign_is_antisymmetric_also_on_zero() {
        let (p, q) = ([0.0, 0.0, 0.0], [0.0, 0.0, 1.0]);
        let (a, b) = ([1.0, 0.0, 5.0], [-1.0, 0.0, 5.0]);
        assert_ne!(edge_sign(p, q, a, b), 0);
        assert_eq!(edge_sign(p, q, a, b), -edge_sign(p, q, b, a));
    }

    #[test]
    fn bad_inputs_are_errors_naming_the_value() {
        assert!(matches!(BoneQuery::new(&Mesh::default()), Err(MeasureError::EmptyMesh)));
        let q = BoneQuery::new(&cube()).expect("query");
        let e = q.drill([0.0; 3], [0.0; 3], 10.0, 2.0).expect_err("zero direction");
        assert!(e.to_string().contains("drill direction"), "{e}");
        let e = q
            .drill([0.0; 3], [1.0, 0.0, 0.0], -1.0, 2.0)
            .expect_err("negative length");
        assert!(e.to_string().contains("-1"), "{e}");
    }
}
