//! Guide benchmark: the demo's two guides (synthetic jaw, 77,800-triangle bone) built, checked, and the seating
//! analysis alone, to hold the seating analysis to at most a tenth of a guide's build (issue #12). Run with
//! `cargo bench --bench guide`.

use criterion::{criterion_group, criterion_main, Criterion};
use guidesmith::case::demo::demo_in_memory;
use guidesmith::case::guide_requests;
use guidesmith::guide::build::build_guide;
use guidesmith::guide::check::{check_guide, contact_points};
use guidesmith::guide::seating::seating_play;
use guidesmith::measure::BoneQuery;
use guidesmith::progress::NoProgress;

fn bench_guides(c: &mut Criterion) {
    let demo = demo_in_memory(&NoProgress).expect("the demo case");
    let bone = &demo.bone.mesh;
    let query = BoneQuery::new(bone).expect("bone query");
    let mut group = c.benchmark_group("demo guides");
    group.sample_size(10);
    for request in guide_requests(&demo.plan, None) {
        let request = request.expect("the demo's guides are buildable");
        let built = build_guide(bone, &request, &NoProgress).expect("built");
        let check = check_guide(&built, &query);
        assert!(check.passed, "{:?}", check.findings);
        let points = contact_points(&built);
        group.bench_function(format!("{}: build", request.name), |b| {
            b.iter(|| build_guide(bone, &request, &NoProgress).expect("built"))
        });
        group.bench_function(format!("{}: every check", request.name), |b| {
            b.iter(|| check_guide(&built, &query))
        });
        group.bench_function(format!("{}: seating analysis", request.name), |b| {
            b.iter(|| seating_play(bone, &built.frame, &points, built.pad.contact.spacing_mm))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_guides);
criterion_main!(benches);
