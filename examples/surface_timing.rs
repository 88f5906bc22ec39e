//! The threshold + marching-cubes step alone, repeated on one loaded series (for profiling; the volume is loaded
//! once): `cargo run --release --example surface_timing -- <DICOM DIR> [MIN..MAX HU] [RUNS] [check] [mask]`.
//!
//! Prints the best and median wall and CPU time (all threads) of `grid_surface_of_window` (what `guidesmith segment`
//! runs for a threshold-only recipe; with `mask` also writing a fresh threshold mask, as `bone::extract_bone` does),
//! and with `check` also of `GridSurface::report`.
use std::time::Instant;

#[path = "support/cpu.rs"]
mod cpu;
use cpu::cpu_s;
use guidesmith::mesh;
use guidesmith::progress::NoProgress;
use guidesmith::segment::HuRange;

fn summary(mut times: Vec<f64>) -> String {
    times.sort_by(f64::total_cmp);
    format!("best {:.4} s, median {:.4} s", times[0], times[times.len() / 2])
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .ok_or("usage: surface_timing <DICOM DIR> [MIN..MAX HU] [RUNS] [check] [mask]")?;
    let range: HuRange = args.next().as_deref().unwrap_or("300..3071").parse()?;
    let runs: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(10).max(1);
    let flags: Vec<String> = args.collect();
    let check = flags.iter().any(|a| a == "check");
    let with_mask = flags.iter().any(|a| a == "mask");
    let (volume, _) = guidesmith::volume::load(dir.as_ref(), None, &NoProgress)?;
    let (mut surface_s, mut check_s, mut surface_cpu_s, mut check_cpu_s) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut triangles = 0;
    for _ in 0..runs {
        let (t, c) = (Instant::now(), cpu_s());
        let mut mask = if with_mask {
            vec![0u8; volume.hu.len()]
        } else {
            Vec::new()
        };
        let surface = mesh::grid_surface_of_window(
            &volume.geometry,
            &volume.hu,
            range.min_hu(),
            range.max_hu(),
            with_mask.then_some(&mut mask[..]),
        )?;
        surface_s.push(t.elapsed().as_secs_f64());
        surface_cpu_s.push(cpu_s() - c);
        triangles = surface.mesh().triangles.len();
        if check {
            let (t, c) = (Instant::now(), cpu_s());
            let report = surface.report();
            check_s.push(t.elapsed().as_secs_f64());
            check_cpu_s.push(cpu_s() - c);
            assert!(report.is_valid(), "{report}");
        }
    }
    println!(
        "{triangles} triangles; threshold + surface: wall {}; cpu {}",
        summary(surface_s),
        summary(surface_cpu_s)
    );
    if check {
        println!("check: wall {}; cpu {}", summary(check_s), summary(check_cpu_s));
    }
    Ok(())
}
