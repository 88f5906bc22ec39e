//! Cropping a bone surface to a box and the boolean on the crop, on the synthetic jaw's iso-surface (marching
//! cubes, so many vertices lie exactly on grid planes): the crop is closed, manifold, outward and free of
//! self-intersections, equals the engine's `bone ∩ box`, and `difference_near` equals the boolean on the whole bone.

use guidesmith::grid::GridGeometry;
use guidesmith::mesh::boolean::{boolean, BoolOp, Operand};
use guidesmith::mesh::crop::{box_mesh, crop_to_box, difference_near, grown, PLANE_SHIFT_STEP_MM};
use guidesmith::mesh::{self, BoundingBox, Mesh, MeshReport};
use guidesmith::synth::Phantom;

const ORIGIN_MM: [f64; 3] = [-102.2, -102.2, -37.4];
const SPACING_MM: [f64; 3] = [0.8, 0.8, 0.5];

fn jaw_bone() -> Mesh {
    let geometry = GridGeometry::axis_aligned([256, 256, 150], SPACING_MM, ORIGIN_MM);
    let hu = Phantom::jaw()
        .with_noise(20.0, 1)
        .sample(&geometry)
        .expect("sample the jaw");
    mesh::marching_cubes(&geometry, &hu, 299.5, None).expect("surface")
}

/// Boxes over the bone: a guide-sized box over the front, a slab across the whole jaw, and a box whose faces lie on
/// grid planes (where marching-cubes vertices sit exactly).
fn boxes(bone: &Mesh) -> Vec<BoundingBox> {
    let b = bone.bounding_box().expect("non-empty bone");
    let c = b.center_mm();
    let front = b.min_mm[1] - 1.913;
    let on_grid = |a: usize, x: f64| ORIGIN_MM[a] + ((x - ORIGIN_MM[a]) / SPACING_MM[a]).round() * SPACING_MM[a];
    vec![
        BoundingBox {
            min_mm: [c[0] - 21.937, front, c[2] - 8.127],
            max_mm: [c[0] + 22.061, front + 31.826, c[2] + 7.731],
        },
        BoundingBox {
            min_mm: [b.min_mm[0] - 5.0, b.min_mm[1] - 5.0, c[2] - 2.317],
            max_mm: [b.max_mm[0] + 5.0, b.max_mm[1] + 5.0, c[2] + 1.893],
        },
        BoundingBox {
            min_mm: [
                on_grid(0, c[0] - 10.0),
                on_grid(1, b.min_mm[1] + 3.0),
                on_grid(2, c[2] - 4.0),
            ],
            max_mm: [
                on_grid(0, c[0] + 30.0),
                on_grid(1, b.min_mm[1] + 40.0),
                on_grid(2, c[2] + 6.0),
            ],
        },
    ]
}

#[test]
fn crops_of_the_jaw_are_valid_and_equal_the_engine_intersection() {
    let bone = jaw_bone();
    assert!(MeshReport::new(&bone).is_closed_manifold());
    let mut shifted = 0;
    for b in boxes(&bone) {
        let crop = crop_to_box(&bone, b).expect("crop");
        let report = MeshReport::new(&crop);
        assert!(report.is_valid(), "{b:?}: {report}");
        assert!(
            crop.triangle_count() < bone.triangle_count() / 2,
            "{b:?}: the crop keeps too much"
        );
        // A face that sits on vertices is moved outward by whole shift steps (at most 64); the crop reaches it.
        let cb = crop.bounding_box().expect("non-empty crop");
        let reach = grown(b, 64.0 * PLANE_SHIFT_STEP_MM);
        for a in 0..3 {
            assert!(
                cb.min_mm[a] >= reach.min_mm[a] && cb.max_mm[a] <= reach.max_mm[a],
                "{cb:?} beyond {b:?}"
            );
        }
        let moved = BoundingBox {
            min_mm: [0, 1, 2].map(|a| b.min_mm[a].min(cb.min_mm[a])),
            max_mm: [0, 1, 2].map(|a| b.max_mm[a].max(cb.max_mm[a])),
        };
        shifted += usize::from(moved != b);
        let cube = box_mesh(moved);
        let expected = boolean(
            Operand::new("bone", &bone),
            Operand::new("box", &cube),
            BoolOp::Intersection,
        )
        .expect("engine intersection")
        .signed_volume_mm3();
        let got = crop.signed_volume_mm3();
        assert!(expected > 0.0);
        assert!(((got - expected) / expected).abs() < 1e-9, "{b:?}: {got} vs {expected}");
    }
    assert!(
        shifted >= 1,
        "the box on grid planes must have moved a face off the vertices"
    );
}

#[test]
fn difference_near_equals_the_boolean_on_the_whole_bone() {
    let bone = jaw_bone();
    for b in boxes(&bone) {
        let guide = box_mesh(b);
        let full = boolean(
            Operand::new("guide", &guide),
            Operand::new("bone", &bone),
            BoolOp::Difference,
        )
        .expect("whole-bone difference");
        let near = difference_near(&guide, &bone, 0.25).expect("difference near");
        let report = MeshReport::new(&near);
        assert!(report.is_closed_manifold(), "{b:?}: {report}");
        let (v_near, v_full) = (near.signed_volume_mm3(), full.signed_volume_mm3());
        assert!(
            v_full < 0.99 * guide.signed_volume_mm3(),
            "{b:?}: the bone must cut the box"
        );
        assert!(((v_near - v_full) / v_full).abs() < 1e-6, "{b:?}: {v_near} vs {v_full}");
    }
}
