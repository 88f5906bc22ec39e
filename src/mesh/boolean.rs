//! Mesh booleans (union, difference, intersection) of closed, manifold meshes, behind one narrow function.
//!
//! Why this shape: the engine is the part of a guide tool that users of today's tools fight with (3D Slicer's
//! BoneReconstructionPlanner retries failed booleans with random jitter). We use `boolmesh`, a pure-Rust port of
//! Manifold's algorithm: it takes manifold input, resolves coplanar and touching faces by symbolic perturbation
//! and always returns a manifold result, so there is nothing to retry. It sits behind [`boolean`] so that the
//! rest of the crate never sees its types and the engine can be swapped (e.g. for C++ Manifold) by changing this
//! file alone. The input is checked here, before the engine sees it, so a bad operand gives an error that names the
//! operand and its defect instead of an engine message; the output is read back into our [`Mesh`] with unused
//! vertices dropped and vertices numbered in first-use order, so equal inputs give equal bytes.

use boolmesh::prelude::{compute_boolean, Manifold, OpType};
use thiserror::Error;

use super::{boundary_edges, inconsistent_edges, non_manifold_edges, Mesh};

/// The message boolmesh 0.2 returns when the result has no vertices (its own tests treat it as zero volume).
const ENGINE_EMPTY_RESULT: &str = "empty pos matrix";

/// Which boolean operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoolOp {
    /// `a ∪ b`.
    Union,
    /// `a − b`.
    Difference,
    /// `a ∩ b`.
    Intersection,
}

impl BoolOp {
    fn name(self) -> &'static str {
        match self {
            BoolOp::Union => "union",
            BoolOp::Difference => "difference",
            BoolOp::Intersection => "intersection",
        }
    }
}

/// Why a boolean could not be computed.
#[derive(Debug, Error)]
pub enum BooleanError {
    /// An operand is not a closed, consistently oriented 2-manifold (the engine's precondition).
    #[error("{operand} of the {op} is not a closed manifold: {detail}")]
    InvalidOperand {
        /// Which operand, by the caller's name for it.
        operand: String,
        /// The operation.
        op: &'static str,
        /// What is wrong (counts of open / non-manifold / inconsistent edges).
        detail: String,
    },
    /// The engine refused or failed.
    #[error("the {op} of {a} and {b} failed in the boolean engine: {detail}")]
    Engine {
        /// The operation.
        op: &'static str,
        /// Name of the first operand.
        a: String,
        /// Name of the second operand.
        b: String,
        /// The engine's message.
        detail: String,
    },
}

/// A named operand, so errors can say which part of a guide was at fault.
#[derive(Clone, Copy)]
pub struct Operand<'a> {
    /// What this mesh is ("pad", "slot housing 'LeFort'", ...).
    pub name: &'a str,
    /// The mesh: closed, manifold, outward.
    pub mesh: &'a Mesh,
}

impl<'a> Operand<'a> {
    /// Names a mesh.
    pub fn new(name: &'a str, mesh: &'a Mesh) -> Self {
        Operand { name, mesh }
    }
}

/// Computes `a op b`. Both operands must be closed and manifold; the result is closed and manifold (possibly empty).
pub fn boolean(a: Operand<'_>, b: Operand<'_>, op: BoolOp) -> Result<Mesh, BooleanError> {
    // The engine cannot hold an empty mesh; the answers are known.
    match (a.mesh.triangles.is_empty(), b.mesh.triangles.is_empty(), op) {
        (true, _, BoolOp::Union) => return Ok(b.mesh.clone()),
        (_, true, BoolOp::Union | BoolOp::Difference) => return Ok(a.mesh.clone()),
        (true, _, _) | (_, true, _) => return Ok(Mesh::default()),
        _ => {}
    }
    let ma = to_engine(a, op)?;
    let mb = to_engine(b, op)?;
    let engine_op = match op {
        BoolOp::Union => OpType::Add,
        BoolOp::Difference => OpType::Subtract,
        BoolOp::Intersection => OpType::Intersect,
    };
    match compute_boolean(&ma, &mb, engine_op) {
        Ok(result) => Ok(super::sliver::remove_slivers(from_engine(&result))),
        // The engine reports an empty result (e.g. `a − b` with `b ⊇ a`) as this error; it is a valid answer.
        Err(detail) if detail == ENGINE_EMPTY_RESULT => Ok(Mesh::default()),
        Err(detail) => Err(BooleanError::Engine {
            op: op.name(),
            a: a.name.to_string(),
            b: b.name.to_string(),
            detail,
        }),
    }
}

/// Folds `op` over `operands` left to right (`((m0 op m1) op m2) ...`); the first operand is named `first`.
pub fn fold(first: Operand<'_>, rest: &[Operand<'_>], op: BoolOp) -> Result<Mesh, BooleanError> {
    let mut acc = first.mesh.clone();
    let mut acc_name = first.name.to_string();
    for b in rest {
        acc = boolean(Operand::new(&acc_name, &acc), *b, op)?;
        acc_name = format!("{} {} {}", acc_name, op.name(), b.name);
        if acc_name.len() > 200 {
            acc_name = format!("{} (after {} operations)", first.name, op.name());
        }
    }
    Ok(acc)
}

fn to_engine(operand: Operand<'_>, op: BoolOp) -> Result<Manifold, BooleanError> {
    let mesh = operand.mesh;
    let invalid = |detail: String| BooleanError::InvalidOperand {
        operand: operand.name.to_string(),
        op: op.name(),
        detail,
    };
    if let Err(e) = mesh.validate() {
        return Err(invalid(e.to_string()));
    }
    let open = boundary_edges(mesh).len();
    let non_manifold = non_manifold_edges(mesh).len();
    let inconsistent = inconsistent_edges(mesh).len();
    if open + non_manifold + inconsistent > 0 {
        return Err(invalid(format!(
            "{open} open, {non_manifold} non-manifold and {inconsistent} inconsistently oriented edges"
        )));
    }
    let positions: Vec<f64> = mesh.positions.iter().flatten().copied().collect();
    let indices: Vec<usize> = mesh.triangles.iter().flatten().map(|&i| i as usize).collect();
    Manifold::new(&positions, &indices).map_err(invalid)
}

fn from_engine(m: &Manifold) -> Mesh {
    let mut new_index = vec![u32::MAX; m.ps.len()];
    let mut positions = Vec::new();
    let mut triangles = Vec::with_capacity(m.hs.len() / 3);
    for face in m.hs.chunks_exact(3) {
        let (Some(a), Some(b), Some(c)) = (face[0].tail(), face[1].tail(), face[2].tail()) else {
            continue;
        };
        let mut tri = [0u32; 3];
        for (slot, v) in tri.iter_mut().zip([a, b, c]) {
            if new_index[v] == u32::MAX {
                new_index[v] = positions.len() as u32;
                let p = m.ps[v];
                positions.push([p.x, p.y, p.z]);
            }
            *slot = new_index[v];
        }
        triangles.push(tri);
    }
    Mesh { positions, triangles }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::MeshReport;

    fn cube(min: [f64; 3], max: [f64; 3]) -> Mesh {
        let p = |i: usize| {
            [
                [min[0], max[0]][i & 1],
                [min[1], max[1]][(i >> 1) & 1],
                [min[2], max[2]][(i >> 2) & 1],
            ]
        };
        let positions = (0..8).map(p).collect();
        // Outward, counter-clockwise seen from outside.
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
        Mesh { positions, triangles }
    }

    #[test]
    fn difference_of_overlapping_cubes_has_the_exact_volume_and_is_valid() {
        let a = cube([0.0; 3], [10.0; 3]);
        let b = cube([5.0, 5.0, -1.0], [15.0, 15.0, 11.0]);
        assert!(a.signed_volume_mm3() > 0.0);
        let r = boolean(Operand::new("a", &a), Operand::new("b", &b), BoolOp::Difference).expect("difference");
        assert!(
            (r.signed_volume_mm3() - 750.0).abs() < 1e-9,
            "{}",
            r.signed_volume_mm3()
        );
        assert!(MeshReport::new(&r).is_valid(), "{}", MeshReport::new(&r));
    }

    #[test]
    fn flush_and_coplanar_operands_give_closed_results() {
        let a = cube([0.0; 3], [10.0; 3]);
        // Shares the face z = 10 and the faces x = 0, y = 0 with `a`.
        let b = cube([0.0, 0.0, 5.0], [4.0, 4.0, 10.0]);
        for (op, volume) in [
            (BoolOp::Difference, 920.0),
            (BoolOp::Union, 1000.0),
            (BoolOp::Intersection, 80.0),
        ] {
            let r = boolean(Operand::new("a", &a), Operand::new("b", &b), op).expect("boolean");
            assert!(
                (r.signed_volume_mm3() - volume).abs() < 1e-9,
                "{op:?}: {}",
                r.signed_volume_mm3()
            );
            assert!(MeshReport::new(&r).is_valid(), "{op:?}: {}", MeshReport::new(&r));
        }
        // Touching along a face: the union is one box.
        let c = cube([10.0, 0.0, 0.0], [20.0, 10.0, 10.0]);
        let u = boolean(Operand::new("a", &a), Operand::new("c", &c), BoolOp::Union).expect("union");
        assert!((u.signed_volume_mm3() - 2000.0).abs() < 1e-9);
        assert!(MeshReport::new(&u).is_valid(), "{}", MeshReport::new(&u));
    }

    #[test]
    fn an_open_operand_is_refused_by_name() {
        let a = cube([0.0; 3], [10.0; 3]);
        let mut open = cube([1.0; 3], [2.0; 3]);
        open.triangles.pop();
        let err = boolean(
            Operand::new("guide body", &a),
            Operand::new("slot", &open),
            BoolOp::Difference,
        )
        .expect_err("open operand");
        let msg = err.to_string();
        assert!(msg.contains("slot") && msg.contains("3 open"), "{msg}");
    }

    #[test]
    fn disjoint_difference_keeps_a_and_empty_intersection_is_empty() {
        let a = cube([0.0; 3], [1.0; 3]);
        let b = cube([5.0; 3], [6.0; 3]);
        let d = boolean(Operand::new("a", &a), Operand::new("b", &b), BoolOp::Difference).expect("difference");
        assert!((d.signed_volume_mm3() - 1.0).abs() < 1e-12);
        let i = boolean(Operand::new("a", &a), Operand::new("b", &b), BoolOp::Intersection).expect("intersection");
        assert!(i.triangles.is_empty());
    }
}
