//! Surface benchmarks on the synthetic jaw sampled on a 512 x 512 x 300 grid (0.4 / 0.4 / 0.25 mm, 20 HU noise):
//! threshold + marching cubes (the peers' "iso" step), and quadric decimation to 10 %.
//! Run with `cargo bench --bench surface`.

use criterion::{criterion_group, criterion_main, Criterion};
use guidesmith::grid::GridGeometry;
use guidesmith::mesh::{self, DecimateOptions};
use guidesmith::segment::{self, HuRange};
use guidesmith::synth::Phantom;

fn jaw_volume() -> (GridGeometry, Vec<i16>) {
    let geometry = GridGeometry::axis_aligned([512, 512, 300], [0.4, 0.4, 0.25], [-102.2, -102.2, -37.4]);
    let hu = Phantom::jaw()
        .with_noise(20.0, 1)
        .sample(&geometry)
        .expect("sample the jaw");
    (geometry, hu)
}

fn bench_surface(c: &mut Criterion) {
    let (geometry, hu) = jaw_volume();
    let range = HuRange::new(300, 32767).expect("range");
    let mut group = c.benchmark_group("surface 512x512x300");
    group.sample_size(10);
    group.bench_function("threshold + marching cubes", |b| {
        b.iter(|| {
            let mask = segment::threshold(&geometry, &hu, range).expect("threshold");
            mesh::marching_cubes(&geometry, &hu, 299.5, Some(mask.as_bytes())).expect("surface")
        })
    });
    group.bench_function("marching cubes only", |b| {
        b.iter(|| mesh::marching_cubes(&geometry, &hu, 299.5, None).expect("surface"))
    });
    let surface = mesh::marching_cubes(&geometry, &hu, 299.5, None).expect("surface");
    let options = DecimateOptions {
        target_triangles: Some(surface.triangles.len() / 10),
        max_error_mm: None,
    };
    group.bench_function("decimate to 10 %", |b| {
        b.iter(|| mesh::decimate(&surface, options).expect("decimate"))
    });
    group.bench_function("decimate to 10 %, no self-intersection", |b| {
        b.iter(|| mesh::decimate_checked(&surface, options).expect("decimate"))
    });
    group.finish();
}

criterion_group!(benches, bench_surface);
criterion_main!(benches);
