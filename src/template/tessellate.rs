//! B-rep solid (truck) to our [`Mesh`]: truck-meshalgo's triangulation, snapped back to the exact B-rep vertices,
//! welded, and checked face by face and as a whole.
//!
//! Why the snapping: truck-meshalgo evaluates every output vertex from the face's surface parameters
//! (`surface.subs(u, v)` after a parameter search), so the same B-rep vertex comes out a few ulps apart in the
//! faces that share it, and a planar face is planar only to rounding. Every face here is planar with straight edges,
//! so each tessellated vertex must be one of its face's boundary vertices; it is replaced by that exact point (or
//! the part is refused if it is not within [`SNAP_TOLERANCE_MM`] of one), and welding is then exact equality.

use std::collections::BTreeMap;

use truck_meshalgo::prelude::{MeshableShape, PolygonMesh};
use truck_modeling::{Invertible, Point3, Solid};

use crate::mesh::{Mesh, MeshReport};

use super::parts::PartError;

/// Chord tolerance handed to truck-meshalgo, mm. Every face is planar with straight edges, so it only matters for
/// the parameter search; the segment count of round faces is chosen by the part builders instead.
const MESHALGO_TOLERANCE_MM: f64 = 0.01;

/// Largest distance between a tessellated vertex and the B-rep vertex it is snapped to, mm: meshalgo's parameter
/// round trip moves points by about 1e-14 mm on parts of a few cm; anything farther is a point meshalgo invented
/// (which a planar face with straight edges must not have) and the part is refused.
const SNAP_TOLERANCE_MM: f64 = 1e-7;

/// Relative tolerance between a face's triangulated area vector and its boundary loops' area vector: both are
/// exact sums over the same exact points, so only rounding (about 1e-15 per triangle) separates them; a missing or
/// flipped triangle changes the area by far more.
const FACE_AREA_REL_TOLERANCE: f64 = 1e-9;

fn to_array(p: Point3) -> [f64; 3] {
    // `+ 0.0` turns -0.0 into 0.0, so that the bit pattern used for welding is unique per value.
    [p.x + 0.0, p.y + 0.0, p.z + 0.0]
}

fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

fn add_assign(acc: &mut [f64; 3], v: [f64; 3]) {
    acc.iter_mut().zip(v).for_each(|(a, b)| *a += b);
}

fn norm(v: [f64; 3]) -> f64 {
    (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt()
}

/// Tessellates `solid` and returns the welded, checked mesh. `part` names the part in errors.
pub(super) fn solid_to_mesh(solid: &Solid, part: &'static str) -> Result<Mesh, PartError> {
    let meshed = solid.triangulation(MESHALGO_TOLERANCE_MM);
    let mut index_of: BTreeMap<[u64; 3], u32> = BTreeMap::new();
    let mut positions: Vec<[f64; 3]> = Vec::new();
    let mut triangles: Vec<[u32; 3]> = Vec::new();
    let face_error = |face: usize, detail: String| PartError::Tessellation { part, face, detail };
    let faces = meshed.boundaries().iter().flat_map(|shell| shell.face_iter());
    for (face_index, face) in faces.enumerate() {
        let Some(mut polygon): Option<PolygonMesh> = face.surface() else {
            return Err(face_error(
                face_index,
                "truck-meshalgo returned no triangles".to_string(),
            ));
        };
        if !face.orientation() {
            polygon.invert();
        }
        let loops: Vec<Vec<[f64; 3]>> = face
            .boundaries()
            .iter()
            .map(|wire| wire.vertex_iter().map(|v| to_array(v.point())).collect())
            .collect();
        let corners: Vec<[f64; 3]> = loops.iter().flatten().copied().collect();
        // Each tessellated vertex -> the exact boundary vertex it stands for.
        let mut snapped = Vec::with_capacity(polygon.positions().len());
        for p in polygon.positions() {
            let p = to_array(*p);
            let (best, dist) = corners
                .iter()
                .map(|c| (*c, norm(sub(*c, p))))
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .ok_or_else(|| face_error(face_index, "face has no boundary vertex".to_string()))?;
            if dist > SNAP_TOLERANCE_MM {
                return Err(face_error(
                    face_index,
                    format!(
                        "vertex {p:?} mm is {dist:e} mm from every boundary vertex (more than {SNAP_TOLERANCE_MM} mm)"
                    ),
                ));
            }
            let key = best.map(f64::to_bits);
            let next = positions.len() as u32;
            let id = *index_of.entry(key).or_insert(next);
            if id == next {
                positions.push(best);
            }
            snapped.push(id);
        }
        let mut area_tri = [0.0; 3];
        for tri in polygon.faces().triangle_iter() {
            let t = [snapped[tri[0].pos], snapped[tri[1].pos], snapped[tri[2].pos]];
            if t[0] == t[1] || t[1] == t[2] || t[0] == t[2] {
                continue; // collapsed by snapping: zero area, dropped
            }
            let [a, b, c] = t.map(|i| positions[i as usize]);
            add_assign(&mut area_tri, cross(sub(b, a), sub(c, a)));
            triangles.push(t);
        }
        // Newell area vector of the boundary loops (inner loops wind the other way and subtract).
        let mut area_loops = [0.0; 3];
        for lp in &loops {
            for (i, &p) in lp.iter().enumerate() {
                add_assign(&mut area_loops, cross(p, lp[(i + 1) % lp.len()]));
            }
        }
        let diff = norm(sub(area_tri, area_loops));
        if diff > FACE_AREA_REL_TOLERANCE * norm(area_loops) {
            return Err(face_error(
                face_index,
                format!(
                    "triangles cover an area of {:.6} mm^2 but the face has {:.6} mm^2 (difference {diff:e})",
                    0.5 * norm(area_tri),
                    0.5 * norm(area_loops)
                ),
            ));
        }
    }
    let mesh = Mesh { positions, triangles };
    let report = MeshReport::new(&mesh);
    if !report.is_valid() {
        return Err(PartError::Check {
            part,
            report: report.to_string(),
        });
    }
    Ok(mesh)
}
