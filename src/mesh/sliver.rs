//! Removal of zero-area slivers that a mesh boolean can leave where faces of its operands meet almost exactly.
//!
//! Why: the boolean engine returns closed, manifold meshes, but where a tool face passes within rounding distance of
//! an operand's edge it can emit a triangle of area ~1e-14 mm^2 (a "cap": one vertex on the opposite edge, or a
//! "needle": two vertices nearly coincident). Such a triangle has no defined normal, so the guide checks rightly
//! refuse it, although the solid is otherwise exact. Manifold (C++) cleans these up after every boolean; boolmesh
//! does not always, so we do it here, topologically and without moving any vertex by more than the needle length:
//! - a needle's short edge is collapsed (when the link condition holds, so the mesh stays manifold);
//! - a cap's long edge is flipped with the triangle across it (when the new edge does not exist yet).
//!
//! The pass is deterministic (triangles in index order, one operation per round, adjacency rebuilt), and slivers it
//! cannot remove are left for the checks to report.

use std::collections::{BTreeSet, HashMap};

use super::{cross, norm, sub, Mesh};

/// Triangles with less area than this, mm^2, are slivers to remove; above the checks' degenerate threshold
/// (1e-12 mm^2) so near-degenerate neighbours go too, far below any real triangle of a guide (~1e-3 mm^2).
const SLIVER_AREA_MM2: f64 = 1e-9;
/// An edge shorter than this, mm, is a needle's edge and is collapsed (moves geometry by at most this much, 200 times
/// less than the slot check's tolerance). A triangle with such an edge is a sliver whatever its area: boolmesh leaves
/// clusters of vertices 2e-5 to 7e-5 mm apart where a tool face grazes the contact surface, and triangulates the
/// face polygon around them with long fans that fold over each other (the self-intersections of docs/PERFORMANCE.md);
/// merging the cluster leaves a polygon the fans cover once.
const NEEDLE_EDGE_MM: f64 = 1e-4;
/// A collapse may turn the faces around the merged vertex by at most this much, deg: less than the slot and channel
/// checks' angle tolerance (0.05 deg), so a tool's face keeps its plane.
const MAX_TURN_DEG: f64 = 0.01;
/// Most operations tried; a boolean leaves a handful of slivers, this bounds the work on pathological input.
const MAX_ROUNDS: usize = 256;

/// `mesh` with its slivers removed where that keeps it manifold; unused vertices dropped, vertices numbered in
/// first-use order. A mesh without slivers is returned unchanged.
pub fn remove_slivers(mesh: Mesh) -> Mesh {
    let mut m = mesh;
    let mut changed = false;
    let mut skipped: BTreeSet<[u32; 3]> = BTreeSet::new();
    for _ in 0..MAX_ROUNDS {
        let Some(t) = (0..m.triangles.len()).find(|&t| is_sliver(&m, t) && !skipped.contains(&m.triangles[t])) else {
            break;
        };
        if fix_one(&mut m, t) {
            changed = true;
        } else {
            skipped.insert(m.triangles[t]);
        }
    }
    if changed {
        m.select_triangles(|_| true)
    } else {
        m
    }
}

fn area(m: &Mesh, t: usize) -> f64 {
    let [a, b, c] = m.triangles[t].map(|v| m.positions[v as usize]);
    0.5 * norm(cross(sub(b, a), sub(c, a)))
}

fn is_sliver(m: &Mesh, t: usize) -> bool {
    let [a, b, c] = m.triangles[t];
    area(m, t) < SLIVER_AREA_MM2 || edge_len(m, a, b).min(edge_len(m, b, c)).min(edge_len(m, c, a)) < NEEDLE_EDGE_MM
}

fn normal(m: &Mesh, t: [u32; 3]) -> [f64; 3] {
    let [a, b, c] = t.map(|v| m.positions[v as usize]);
    cross(sub(b, a), sub(c, a))
}

fn edge_len(m: &Mesh, a: u32, b: u32) -> f64 {
    norm(sub(m.positions[b as usize], m.positions[a as usize]))
}

/// Directed edge -> triangle.
fn edge_map(m: &Mesh) -> HashMap<(u32, u32), usize> {
    let mut map = HashMap::with_capacity(3 * m.triangles.len());
    for (i, t) in m.triangles.iter().enumerate() {
        for k in 0..3 {
            map.insert((t[k], t[(k + 1) % 3]), i);
        }
    }
    map
}

/// Tries to remove sliver `t`; false if no topology-safe operation exists.
fn fix_one(m: &mut Mesh, t: usize) -> bool {
    let tri = m.triangles[t];
    // Edge k runs from tri[k] to tri[k+1]; the opposite vertex is tri[k+2].
    let lens: [f64; 3] = std::array::from_fn(|k| edge_len(m, tri[k], tri[(k + 1) % 3]));
    let shortest = (0..3).min_by(|&a, &b| lens[a].total_cmp(&lens[b])).unwrap_or(0);
    if lens[shortest] < NEEDLE_EDGE_MM {
        return collapse(m, tri[shortest], tri[(shortest + 1) % 3]);
    }
    let longest = (0..3).max_by(|&a, &b| lens[a].total_cmp(&lens[b])).unwrap_or(0);
    flip(m, t, longest)
}

/// The largest turn (radians) of a triangle around `v` when `v` moves onto `u`; `None` if one turns over (which would
/// trade this fold for another).
fn collapse_turn(m: &Mesh, u: u32, v: u32) -> Option<f64> {
    let mut worst = 0.0f64;
    for &t in m.triangles.iter().filter(|t| t.contains(&v) && !t.contains(&u)) {
        let after = t.map(|x| if x == v { u } else { x });
        let (n0, n1) = (normal(m, t), normal(m, after));
        let cos = (n0[0] * n1[0] + n0[1] * n1[1] + n0[2] * n1[2]) / (norm(n0) * norm(n1));
        if cos.is_nan() || cos <= 0.0 {
            return None;
        }
        worst = worst.max(cos.min(1.0).acos());
    }
    Some(worst)
}

/// Collapses edge (a, b) of a closed manifold mesh into whichever end turns the faces around the other less, if the
/// link condition holds and no face turns by more than `MAX_TURN_DEG` (a face of a slot or channel keeps its plane).
fn collapse(m: &mut Mesh, a: u32, b: u32) -> bool {
    let (u, v, turn) = match (collapse_turn(m, a, b), collapse_turn(m, b, a)) {
        (Some(x), Some(y)) if y < x => (b, a, y),
        (Some(x), _) => (a, b, x),
        (None, Some(y)) => (b, a, y),
        (None, None) => return false,
    };
    if turn > MAX_TURN_DEG.to_radians() {
        return false;
    }
    let ring = |x: u32| -> BTreeSet<u32> {
        m.triangles
            .iter()
            .filter(|t| t.contains(&x))
            .flat_map(|t| t.iter().copied())
            .filter(|&y| y != x)
            .collect()
    };
    let (ru, rv) = (ring(u), ring(v));
    let shared: Vec<u32> = ru.intersection(&rv).copied().collect();
    let opposite: BTreeSet<u32> = m
        .triangles
        .iter()
        .filter(|t| t.contains(&u) && t.contains(&v))
        .flat_map(|t| t.iter().copied())
        .filter(|&y| y != u && y != v)
        .collect();
    if opposite.len() != 2 || shared.len() != 2 || shared.iter().any(|s| !opposite.contains(s)) {
        return false;
    }
    m.triangles.retain(|t| !(t.contains(&u) && t.contains(&v)));
    for t in &mut m.triangles {
        for x in t.iter_mut() {
            if *x == v {
                *x = u;
            }
        }
    }
    true
}

/// Flips edge `k` of triangle `t` (from tri[k] to tri[k+1]) with the triangle across it.
fn flip(m: &mut Mesh, t: usize, k: usize) -> bool {
    let tri = m.triangles[t];
    let (a, b, c) = (tri[k], tri[(k + 1) % 3], tri[(k + 2) % 3]);
    let edges = edge_map(m);
    let Some(&t2) = edges.get(&(b, a)) else { return false };
    let Some(&d) = m.triangles[t2].iter().find(|&&x| x != a && x != b) else {
        return false;
    };
    if c == d || edges.contains_key(&(c, d)) || edges.contains_key(&(d, c)) {
        return false;
    }
    let before = [m.triangles[t], m.triangles[t2]];
    m.triangles[t] = [a, d, c];
    m.triangles[t2] = [d, b, c];
    // Only keep the flip if both new triangles are proper (d may lie on the line too).
    if is_sliver(m, t) || is_sliver(m, t2) {
        m.triangles[t] = before[0];
        m.triangles[t2] = before[1];
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::check::MeshReport;

    /// A closed tetrahedron-like solid: a square pyramid whose base is split into triangles with an extra vertex
    /// placed exactly on a base edge, giving a zero-area cap.
    fn pyramid_with_cap() -> Mesh {
        let positions = vec![
            [0.0, 0.0, 0.0],
            [2.0, 0.0, 0.0],
            [2.0, 2.0, 0.0],
            [0.0, 2.0, 0.0],
            [1.0, 1.0, 2.0],
            [1.0, 1.0, 0.0], // on the diagonal 0-2
        ];
        // Base (seen from below, outward normal -z): triangles 0-2-1 and 0-3-2 with vertex 5 splitting the diagonal,
        // plus the degenerate cap 0-5-2 / 2-5-0 arrangement made consistent.
        let triangles = vec![
            [0, 5, 1],
            [5, 2, 1],
            [0, 3, 5],
            [5, 3, 2],
            [0, 1, 4],
            [1, 2, 4],
            [2, 3, 4],
            [3, 0, 4],
        ];
        Mesh { positions, triangles }
    }

    #[test]
    fn a_mesh_without_slivers_is_unchanged() {
        let m = pyramid_with_cap();
        assert_eq!(remove_slivers(m.clone()), m);
    }

    #[test]
    fn a_cap_is_flipped_away_and_the_mesh_stays_closed() {
        let mut m = pyramid_with_cap();
        // Move vertex 5 onto the edge 0-1 and make triangle [0, 5, 1] a cap.
        m.positions[5] = [1.0, 0.0, 0.0];
        assert!(is_sliver(&m, 0));
        let fixed = remove_slivers(m.clone());
        assert!((0..fixed.triangles.len()).all(|t| !is_sliver(&fixed, t)), "{fixed:?}");
        let report = MeshReport::new(&fixed);
        assert!(report.is_valid(), "{report}");
        assert!((fixed.signed_volume_mm3() - m.signed_volume_mm3()).abs() < 1e-12);
    }

    #[test]
    fn a_needle_is_collapsed_and_the_mesh_stays_closed() {
        let mut m = pyramid_with_cap();
        // Vertex 5 a hair away from vertex 1: triangles around it become needles.
        m.positions[5] = [2.0 - 1e-10, 1e-10, 0.0];
        let fixed = remove_slivers(m.clone());
        assert!((0..fixed.triangles.len()).all(|t| !is_sliver(&fixed, t)), "{fixed:?}");
        let report = MeshReport::new(&fixed);
        assert!(report.is_valid(), "{report}");
        assert!(fixed.positions.len() < m.positions.len());
    }

    #[test]
    fn a_vertex_a_hair_from_its_neighbour_is_merged_although_its_triangles_have_area() {
        let mut m = pyramid_with_cap();
        // 5e-5 mm from vertex 1 in the base plane: the triangles around it have areas of ~1e-5 mm^2, far above the
        // area threshold, but the cluster is what boolmesh folds its fans over.
        m.positions[5] = [2.0 - 5e-5, 5e-5, 0.0];
        assert!((0..m.triangles.len()).all(|t| area(&m, t) > 1e3 * SLIVER_AREA_MM2));
        let fixed = remove_slivers(m.clone());
        assert_eq!(fixed.positions.len(), 5, "{fixed:?}");
        let report = MeshReport::new(&fixed);
        assert!(report.is_valid(), "{report}");
        // The base stays in its plane whichever end was kept.
        assert!(fixed.positions.iter().filter(|p| p[2] < 1.0).all(|p| p[2] == 0.0));
    }
}
