//! Closed, outward test meshes with known geometry (boxes and icospheres) for the export and render tests.
#![allow(dead_code)]

use std::collections::BTreeMap;

use guidesmith::mesh::Mesh;

/// An axis-aligned box from `min_mm` to `max_mm`: 8 vertices, 12 counter-clockwise (outward) triangles.
pub fn box_mesh(min_mm: [f64; 3], max_mm: [f64; 3]) -> Mesh {
    let p = |i: usize| {
        [
            if i & 1 == 0 { min_mm[0] } else { max_mm[0] },
            if i & 2 == 0 { min_mm[1] } else { max_mm[1] },
            if i & 4 == 0 { min_mm[2] } else { max_mm[2] },
        ]
    };
    let positions = (0..8).map(p).collect();
    // Faces as quads (outward CCW): -x, +x, -y, +y, -z, +z.
    let quads: [[u32; 4]; 6] = [
        [0, 4, 6, 2],
        [1, 3, 7, 5],
        [0, 1, 5, 4],
        [2, 6, 7, 3],
        [0, 2, 3, 1],
        [4, 5, 7, 6],
    ];
    let triangles = quads
        .iter()
        .flat_map(|q| [[q[0], q[1], q[2]], [q[0], q[2], q[3]]])
        .collect();
    Mesh::new(positions, triangles).expect("box indices are valid")
}

/// An icosphere of `radius_mm` around `center_mm`, the icosahedron subdivided `levels` times (20 * 4^levels
/// triangles), counter-clockwise seen from outside.
pub fn icosphere(center_mm: [f64; 3], radius_mm: f64, levels: u32) -> Mesh {
    let t = (1.0 + 5f64.sqrt()) / 2.0;
    let mut unit: Vec<[f64; 3]> = [
        [-1.0, t, 0.0],
        [1.0, t, 0.0],
        [-1.0, -t, 0.0],
        [1.0, -t, 0.0],
        [0.0, -1.0, t],
        [0.0, 1.0, t],
        [0.0, -1.0, -t],
        [0.0, 1.0, -t],
        [t, 0.0, -1.0],
        [t, 0.0, 1.0],
        [-t, 0.0, -1.0],
        [-t, 0.0, 1.0],
    ]
    .iter()
    .map(|&p| normalise(p))
    .collect();
    let mut triangles: Vec<[u32; 3]> = vec![
        [0, 11, 5],
        [0, 5, 1],
        [0, 1, 7],
        [0, 7, 10],
        [0, 10, 11],
        [1, 5, 9],
        [5, 11, 4],
        [11, 10, 2],
        [10, 7, 6],
        [7, 1, 8],
        [3, 9, 4],
        [3, 4, 2],
        [3, 2, 6],
        [3, 6, 8],
        [3, 8, 9],
        [4, 9, 5],
        [2, 4, 11],
        [6, 2, 10],
        [8, 6, 7],
        [9, 8, 1],
    ];
    for _ in 0..levels {
        let mut midpoints: BTreeMap<(u32, u32), u32> = BTreeMap::new();
        let mut mid = |a: u32, b: u32, unit: &mut Vec<[f64; 3]>| {
            *midpoints.entry((a.min(b), a.max(b))).or_insert_with(|| {
                let (pa, pb) = (unit[a as usize], unit[b as usize]);
                unit.push(normalise([pa[0] + pb[0], pa[1] + pb[1], pa[2] + pb[2]]));
                (unit.len() - 1) as u32
            })
        };
        let mut next = Vec::with_capacity(triangles.len() * 4);
        for [a, b, c] in triangles {
            let ab = mid(a, b, &mut unit);
            let bc = mid(b, c, &mut unit);
            let ca = mid(c, a, &mut unit);
            next.extend([[a, ab, ca], [b, bc, ab], [c, ca, bc], [ab, bc, ca]]);
        }
        triangles = next;
    }
    let positions = unit
        .iter()
        .map(|u| {
            [
                center_mm[0] + radius_mm * u[0],
                center_mm[1] + radius_mm * u[1],
                center_mm[2] + radius_mm * u[2],
            ]
        })
        .collect();
    Mesh::new(positions, triangles).expect("icosphere indices are valid")
}

fn normalise(p: [f64; 3]) -> [f64; 3] {
    let n = (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt();
    [p[0] / n, p[1] / n, p[2] / n]
}
