//! Render timing: a 100k-triangle "bone" and a 30k-triangle "guide" at 800x600, opaque and with a semi-transparent
//! bone (the case the brief sets at well under 0.2 s in release).

#[path = "../tests/shapes/mod.rs"]
mod shapes;

use criterion::{criterion_group, criterion_main, Criterion};
use guidesmith::mesh::Mesh;
use guidesmith::render::{grown, render, Scene, View, BONE_COLOUR, GUIDE_COLOUR};

fn merged(parts: &[Mesh]) -> Mesh {
    let mut out = Mesh::default();
    for p in parts {
        out.merge(p).expect("valid parts merge");
    }
    out
}

fn bench_render(c: &mut Criterion) {
    // 81,920 + 20,480 = 102,400 triangles of bone; 20,480 + 2 x 5,120 = 30,720 of guide.
    let bone = merged(&[
        shapes::icosphere([0.0, 0.0, 0.0], 40.0, 6),
        shapes::icosphere([0.0, 10.0, -45.0], 25.0, 5),
    ]);
    let guide = merged(&[
        shapes::icosphere([0.0, -38.0, 5.0], 12.0, 5),
        shapes::icosphere([-10.0, -50.0, 5.0], 3.0, 4),
        shapes::icosphere([10.0, -50.0, 5.0], 3.0, 4),
    ]);
    let focus = guide.bounding_box().map(|b| grown(b, 15.0));
    let mut group = c.benchmark_group("render_800x600_102k_bone_31k_guide");
    group.sample_size(20);
    for (name, opacity) in [("opaque_bone", 1.0), ("transparent_bone", 0.6)] {
        let mut scene = Scene::new();
        scene.add(&bone, BONE_COLOUR, opacity).add(&guide, GUIDE_COLOUR, 1.0);
        group.bench_function(name, |b| {
            b.iter(|| render(&scene, View::Iso(30.0, 20.0), 800, 600, focus))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_render);
criterion_main!(benches);
