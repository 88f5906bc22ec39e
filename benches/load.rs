//! Loader benchmark: the largest real series of the shared data set (skull phantom, 512 x 512 x 140).
//! Run with `cargo bench --bench load`; the data folder is `$GUIDESMITH_DATA` or `../shared/data`.

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion};
use guidesmith::progress::NoProgress;

fn data_dir() -> PathBuf {
    std::env::var_os("GUIDESMITH_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"))
}

fn bench_load(c: &mut Criterion) {
    let dir = data_dir().join("ct/skull-phantom-1mm");
    if !dir.is_dir() {
        eprintln!("SKIPPED: {} not found", dir.display());
        return;
    }
    let mut group = c.benchmark_group("load");
    group.sample_size(10);
    group.bench_function("skull-phantom-1mm (512x512x140)", |b| {
        b.iter(|| guidesmith::volume::load(&dir, None, &NoProgress).expect("load"))
    });
    group.bench_function("headers only", |b| {
        b.iter(|| guidesmith::volume::scan(&dir, &NoProgress).expect("scan"))
    });
    group.finish();
}

criterion_group!(benches, bench_load);
criterion_main!(benches);
