//! Boolean benchmark: a guide box minus the synthetic jaw's bone surface (512 x 512 x 300 grid, 0.4 / 0.4 / 0.25 mm,
//! 20 HU noise, iso-surface at 300 HU), the peers' "boolean" step. The box sits over the anterior alveolar crest,
//! its bounds offset by odd fractions of a millimetre. Measures the crop alone, `difference_near` (crop +
//! boolean) and, for comparison, the boolean on the whole bone. Run with `cargo bench --bench boolean`.

use criterion::{criterion_group, criterion_main, Criterion};
use guidesmith::grid::GridGeometry;
use guidesmith::mesh::boolean::{boolean, BoolOp, Operand};
use guidesmith::mesh::crop::{box_mesh, crop_to_box, difference_near, grown};
use guidesmith::mesh::{self, BoundingBox, Mesh};
use guidesmith::synth::Phantom;

/// Crop margin around the box, mm (as in the `bool_box` example).
const MARGIN_MM: f64 = 0.25;

fn jaw_bone() -> Mesh {
    let geometry = GridGeometry::axis_aligned([512, 512, 300], [0.4, 0.4, 0.25], [-102.2, -102.2, -37.4]);
    let hu = Phantom::jaw()
        .with_noise(20.0, 1)
        .sample(&geometry)
        .expect("sample the jaw");
    mesh::marching_cubes(&geometry, &hu, 299.5, None).expect("surface")
}

/// 44 x 32 x 16 mm over the front of the bone: centred left-right, from just in front of the most anterior point.
fn guide_box(bone: &Mesh) -> BoundingBox {
    let b = bone.bounding_box().expect("non-empty bone");
    let c = b.center_mm();
    let front = b.min_mm[1] - 1.913;
    BoundingBox {
        min_mm: [c[0] - 21.937, front, c[2] - 8.127],
        max_mm: [c[0] + 22.061, front + 31.826, c[2] + 7.731],
    }
}

fn bench_boolean(c: &mut Criterion) {
    let bone = jaw_bone();
    let b = guide_box(&bone);
    let guide = box_mesh(b);
    let result = difference_near(&guide, &bone, MARGIN_MM).expect("box minus bone");
    assert!(
        result.signed_volume_mm3() < 0.99 * guide.signed_volume_mm3(),
        "the bone must cut the box"
    );
    let cropped = crop_to_box(&bone, grown(b, MARGIN_MM)).expect("crop");
    let mut group = c.benchmark_group(format!(
        "box minus bone ({} triangles, {} in the crop)",
        bone.triangle_count(),
        cropped.triangle_count()
    ));
    group.sample_size(10);
    group.bench_function("crop to the box", |bench| {
        bench.iter(|| crop_to_box(&bone, grown(b, MARGIN_MM)).expect("crop"))
    });
    group.bench_function("difference_near (crop + boolean)", |bench| {
        bench.iter(|| difference_near(&guide, &bone, MARGIN_MM).expect("box minus bone"))
    });
    group.bench_function("boolean on the whole bone (no crop)", |bench| {
        bench.iter(|| {
            boolean(
                Operand::new("guide", &guide),
                Operand::new("bone", &bone),
                BoolOp::Difference,
            )
            .expect("difference")
        })
    });
    group.finish();
}

criterion_group!(benches, bench_boolean);
criterion_main!(benches);
