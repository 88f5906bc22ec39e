//! Where `guidesmith segment` spends its time, step by step and check by check:
//! `cargo run --release --example segment_timing -- <DICOM DIR> [MIN..MAX HU] [RUNS] [quick]`.
//!
//! Each step is printed with its wall time and the CPU time of all the process's threads (from
//! `/proc/self/task/*/schedstat`, Linux only), which is what a step costs whatever else loads a shared machine.
//! The general checks are timed through their public functions, so the shared parts (edge table, BVH) are counted
//! in every check that builds them; `MeshReport::new` builds them once. `quick` skips them (tens of seconds on a
//! large surface).
use std::time::Instant;

#[path = "support/cpu.rs"]
mod cpu;
use cpu::cpu_s;
use guidesmith::bone;
use guidesmith::mesh::{self, MeshReport};
use guidesmith::progress::NoProgress;
use guidesmith::segment::{HuRange, SegmentRecipe};

/// Runs `f`, prints its wall and CPU time under `name`, and returns its result.
fn step<T>(name: &str, f: impl FnOnce() -> T) -> T {
    let (wall, cpu) = (Instant::now(), cpu_s());
    let out = f();
    println!(
        "  {name:<34} wall {:.3} s  cpu {:.3} s",
        wall.elapsed().as_secs_f64(),
        cpu_s() - cpu
    );
    out
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .ok_or("usage: segment_timing <DICOM DIR> [MIN..MAX HU] [RUNS] [quick]")?;
    let range: HuRange = args.next().as_deref().unwrap_or("300..3071").parse()?;
    let (min_hu, max_hu) = (range.min_hu(), range.max_hu());
    let runs: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1);
    let quick = args.next().is_some_and(|a| a == "quick");
    for run in 0..runs {
        println!("run {}", run + 1);
        let (volume, _) = step("load", || guidesmith::volume::load(dir.as_ref(), None, &NoProgress))?;
        let recipe = SegmentRecipe::new(range);
        let (mask, _) = step("threshold", || recipe.apply(&volume.geometry, &volume.hu))?;
        let surface = step("surface restricted to the mask", || {
            bone::grid_surface_of_mask(&volume, &mask, bone::iso_for(min_hu))
        })?;
        let fused = step("fused threshold + surface", || {
            let mut inside = vec![0u8; volume.hu.len()];
            let s = mesh::grid_surface_of_window(&volume.geometry, &volume.hu, min_hu, max_hu, Some(&mut inside));
            (s, inside)
        });
        let (fused, inside) = (fused.0?, fused.1);
        assert!(
            fused == surface && inside == mask.as_bytes(),
            "the fused surface and mask differ"
        );
        drop((fused, inside));
        let grid_report = step("grid check (GridSurface::report)", || surface.report());
        let surface = surface.into_mesh();
        println!(
            "  {} triangles, {} components",
            surface.triangles.len(),
            grid_report.components
        );
        step("STL write (no fsync)", || -> Result<(), Box<dyn std::error::Error>> {
            let mut bytes = Vec::new();
            mesh::write_stl_binary(&surface, &mut bytes, "timing")?;
            std::fs::write(std::env::temp_dir().join("segment_timing.stl"), &bytes)?;
            Ok(())
        })?;
        if quick {
            continue;
        }
        step("invalid triangles", || mesh::invalid_triangles(&surface).len());
        step("edges (boundary)", || mesh::boundary_edges(&surface).len());
        step("non-manifold vertices", || mesh::non_manifold_vertices(&surface).len());
        step("degenerate triangles", || mesh::degenerate_triangles(&surface).len());
        step("components", || surface.connected_components().count);
        step("inward components", || mesh::inward_components(&surface).len());
        step("self-intersections", || mesh::self_intersections(&surface).len());
        step("volume + area + box", || {
            (surface.signed_volume_mm3(), surface.area_mm2(), surface.bounding_box())
        });
        let full = step("general check (MeshReport::new)", || MeshReport::new(&surface));
        assert_eq!(full, grid_report, "the grid check and the general check disagree");
    }
    Ok(())
}
