//! Taubin lambda/mu smoothing: removes the voxel staircase of marching cubes without shrinking the bone.
//!
//! Why Taubin and not plain Laplacian: Laplacian smoothing pulls every vertex towards its neighbours' average and
//! shrinks the surface by a fraction of a millimetre per few iterations, which for a guide that must seat on bone is
//! a fit error. Taubin alternates a shrinking step (`lambda > 0`) with a slightly larger inflating step
//! (`mu < -lambda`), a low-pass filter that removes high-frequency staircase noise while keeping the low
//! frequencies (the shape and the volume) almost unchanged. Only positions move; the connectivity (and hence
//! closedness and manifoldness) is untouched.
//!
//! Uniform (umbrella) weights are used: marching-cubes triangles are of similar size, and uniform weights also
//! improve triangle shapes. Vertices on boundary or non-manifold edges stay fixed so that open borders do not
//! shrink. Each step computes all new positions from the old ones (Jacobi), in parallel and deterministically.

use rayon::prelude::*;

use super::{Mesh, MeshError};

/// Default shrinking factor.
pub const TAUBIN_LAMBDA: f64 = 0.5;
/// Default inflating factor (`mu < -lambda`; pass band ~0.1 as recommended by Taubin).
pub const TAUBIN_MU: f64 = -0.53;

/// Smooths `mesh` in place with `iterations` lambda/mu step pairs.
///
/// Errors when an index is out of range or `lambda`/`mu` are not `0 < lambda < -mu` (finite).
pub fn taubin_smooth(mesh: &mut Mesh, iterations: usize, lambda: f64, mu: f64) -> Result<(), MeshError> {
    if !(lambda.is_finite() && mu.is_finite() && lambda > 0.0 && -mu > lambda) {
        return Err(MeshError::InvalidOption(format!(
            "Taubin smoothing needs 0 < lambda < -mu, got lambda {lambda}, mu {mu}"
        )));
    }
    mesh.validate()?;
    if iterations == 0 || mesh.triangles.is_empty() {
        return Ok(());
    }
    let n = mesh.positions.len();
    // Undirected edges with their use count.
    let mut edges: Vec<(u32, u32)> = mesh
        .triangles
        .par_iter()
        .flat_map_iter(|t| {
            (0..3).filter_map(move |k| {
                let (a, b) = (t[k], t[(k + 1) % 3]);
                (a != b).then_some((a.min(b), a.max(b)))
            })
        })
        .collect();
    edges.par_sort_unstable();
    let mut fixed = vec![false; n];
    let mut unique: Vec<(u32, u32)> = Vec::with_capacity(edges.len() / 2 + 1);
    for run in edges.chunk_by(|a, b| a == b) {
        if run.len() != 2 {
            fixed[run[0].0 as usize] = true;
            fixed[run[0].1 as usize] = true;
        }
        unique.push(run[0]);
    }
    drop(edges);
    // Neighbour lists (compressed rows).
    let mut start = vec![0usize; n + 1];
    for &(a, b) in &unique {
        start[a as usize + 1] += 1;
        start[b as usize + 1] += 1;
    }
    for v in 0..n {
        start[v + 1] += start[v];
    }
    let mut fill = start.clone();
    let mut nbr = vec![0u32; start[n]];
    for &(a, b) in &unique {
        nbr[fill[a as usize]] = b;
        fill[a as usize] += 1;
        nbr[fill[b as usize]] = a;
        fill[b as usize] += 1;
    }
    drop(unique);
    let mut next = mesh.positions.clone();
    for _ in 0..iterations {
        for factor in [lambda, mu] {
            let cur = &mesh.positions;
            next.par_iter_mut().enumerate().for_each(|(v, out)| {
                let p = cur[v];
                let ns = &nbr[start[v]..start[v + 1]];
                if fixed[v] || ns.is_empty() {
                    *out = p;
                    return;
                }
                let mut avg = [0.0; 3];
                for &w in ns {
                    let q = cur[w as usize];
                    avg[0] += q[0];
                    avg[1] += q[1];
                    avg[2] += q[2];
                }
                let inv = 1.0 / ns.len() as f64;
                *out = [
                    p[0] + factor * (avg[0] * inv - p[0]),
                    p[1] + factor * (avg[1] * inv - p[1]),
                    p[2] + factor * (avg[2] * inv - p[2]),
                ];
            });
            std::mem::swap(&mut mesh.positions, &mut next);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::GridGeometry;
    use crate::mesh::check::MeshReport;
    use crate::mesh::marching_cubes::{marching_cubes, tests::sphere_field};

    #[test]
    fn smoothing_a_staircase_sphere_keeps_topology_and_volume() {
        // A hard-thresholded sphere (no partial volume): a visible voxel staircase.
        let g = GridGeometry::axis_aligned([48, 48, 48], [0.5; 3], [0.0; 3]);
        let c = [11.75, 11.75, 11.75];
        let r = 9.0;
        let field = sphere_field(&g, c, r, 1e-6);
        let mut mesh = marching_cubes(&g, &field, 0.0, None).expect("valid input");
        let before = mesh.clone();
        let rms = |m: &Mesh| {
            let s: f64 = m
                .positions
                .iter()
                .map(|p| (((p[0] - c[0]).powi(2) + (p[1] - c[1]).powi(2) + (p[2] - c[2]).powi(2)).sqrt() - r).powi(2))
                .sum();
            (s / m.positions.len() as f64).sqrt()
        };
        taubin_smooth(&mut mesh, 10, TAUBIN_LAMBDA, TAUBIN_MU).expect("valid");
        assert_eq!(mesh.triangles, before.triangles);
        let report = MeshReport::new(&mesh);
        assert!(report.is_closed_manifold(), "{report}");
        let v0 = before.signed_volume_mm3();
        let v1 = mesh.signed_volume_mm3();
        assert!(((v1 - v0) / v0).abs() < 0.01, "volume {v0} -> {v1}");
        assert!(
            rms(&mesh) < 0.7 * rms(&before),
            "rms {} -> {}",
            rms(&before),
            rms(&mesh)
        );
    }

    #[test]
    fn open_borders_stay_fixed_and_bad_factors_are_refused() {
        let mut m = crate::mesh::test_util::cube([0.0; 3], [1.0; 3]);
        m.triangles.truncate(2);
        let before = m.positions.clone();
        taubin_smooth(&mut m, 3, TAUBIN_LAMBDA, TAUBIN_MU).expect("valid");
        assert_eq!(m.positions, before);
        assert!(taubin_smooth(&mut m, 1, 0.5, -0.4).is_err());
        m.triangles.push([0, 1, 42]);
        assert!(taubin_smooth(&mut m, 1, TAUBIN_LAMBDA, TAUBIN_MU).is_err());
    }
}
