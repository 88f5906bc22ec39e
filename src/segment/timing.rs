//! Timing of the main kernels on a scan-sized synthetic head (512 x 512 x 300, 0.45 x 0.45 x 0.625 mm), ignored by
//! default. Run with
//! `cargo test --release --lib -- --ignored --nocapture segment::timing` (optionally `RAYON_NUM_THREADS=1`).

use super::*;
use crate::grid::GridGeometry;
use nalgebra::Point3;
use rayon::prelude::*;
use std::time::Instant;

/// A deterministic hash of a voxel index in `0..1`.
fn noise(x: usize) -> f64 {
    let mut h = (x as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    h ^= h >> 31;
    h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h ^= h >> 29;
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// Skull shell with two cortical tables and diploe, a mandible arch with teeth, vertebrae, a CT table, noise and
/// bright specks.
fn head() -> (GridGeometry, Vec<i16>) {
    let g = GridGeometry::axis_aligned([512, 512, 300], [0.45, 0.45, 0.625], [-115.0, -115.0, -90.0]);
    let mut hu = vec![0i16; g.len()];
    let [nx, ny, _] = g.dims;
    hu.par_chunks_mut(nx * ny).enumerate().for_each(|(k, slice)| {
        for (j, row) in slice.chunks_mut(nx).enumerate() {
            for (i, v) in row.iter_mut().enumerate() {
                let p = g.to_patient([i as f64, j as f64, k as f64]);
                let idx = (k * ny + j) * nx + i;
                // Ellipsoidal skull, upper part only (z > -20).
                let e = ((p.x / 75.0).powi(2) + (p.y / 95.0).powi(2) + ((p.z - 10.0) / 80.0).powi(2)).sqrt();
                let head = ((p.x / 85.0).powi(2) + (p.y / 105.0).powi(2) + ((p.z - 5.0) / 95.0).powi(2)).sqrt();
                let mut value = if head <= 1.0 { 40.0 } else { -1000.0 };
                let depth_mm = (1.0 - e) * 80.0;
                if p.z > -20.0 && (0.0..7.0).contains(&depth_mm) {
                    value = if !(1.5..5.5).contains(&depth_mm) { 1500.0 } else { 450.0 };
                }
                // Mandible: a U-shaped arch of 10 mm thick bone below the skull, teeth on top.
                let arch_r = (p.x.powi(2) + ((p.y + 20.0) * 1.3).powi(2)).sqrt();
                if (-65.0..-35.0).contains(&p.z) && (45.0..57.0).contains(&arch_r) && p.y < 10.0 {
                    value = if (47.0..55.0).contains(&arch_r) { 700.0 } else { 1400.0 };
                }
                if (-35.0..-25.0).contains(&p.z) && (48.0..54.0).contains(&arch_r) && p.y < 0.0 {
                    value = 2500.0;
                }
                // Cervical vertebrae: discs of bone every 15 mm behind the mandible.
                let rv = (p.x.powi(2) + (p.y - 30.0).powi(2)).sqrt();
                if p.z < -20.0 && rv < 12.0 && (p.z + 90.0).rem_euclid(15.0) < 11.0 {
                    value = if rv > 10.0 { 1100.0 } else { 300.0 };
                }
                // CT table: a curved plate below the head (posterior).
                if (108.0..111.0).contains(&(p.y + 0.002 * p.x * p.x)) {
                    value = 250.0;
                }
                value += (noise(idx) - 0.5) * 120.0;
                if noise(idx ^ 0x5555_5555) < 1e-4 {
                    value = 3071.0;
                }
                *v = value.clamp(-1024.0, 3071.0) as i16;
            }
        }
    });
    (g, hu)
}

fn time<T>(label: &str, runs: usize, mut f: impl FnMut() -> T) -> T {
    let mut best = f64::INFINITY;
    let mut out = None;
    for _ in 0..runs {
        let t = Instant::now();
        let r = f();
        best = best.min(t.elapsed().as_secs_f64() * 1e3);
        out = Some(r);
    }
    println!("{label:<44} {best:>9.1} ms (best of {runs})");
    match out {
        Some(r) => r,
        None => f(),
    }
}

#[test]
#[ignore = "timing on a 78.6 M voxel volume; run in release"]
fn timing_512x512x300() -> Result<(), SegmentError> {
    let t = Instant::now();
    let (g, hu) = head();
    println!(
        "volume {:?} ({} voxels) built in {:.0} ms, {} rayon threads",
        g.dims,
        g.len(),
        t.elapsed().as_secs_f64() * 1e3,
        rayon::current_num_threads()
    );
    let mask = time("threshold bone 226..3071 (new mask)", 5, || {
        threshold(&g, &hu, HuRange::BONE)
    })?;
    let mut reuse = Mask::empty(g.clone())?;
    time("threshold_into (reused mask)", 5, || {
        threshold_into(&mut reuse, &hu, HuRange::BONE)
    })?;
    println!("  foreground {} voxels", mask.count());
    time("count", 5, || mask.count());
    let comps = time("label_components 26", 3, || {
        label_components(&mask, Connectivity::TwentySix)
    })?;
    println!(
        "  {} components, largest {} voxels",
        comps.len(),
        comps.infos()[0].voxel_count
    );
    let comps6 = time("label_components 6", 3, || label_components(&mask, Connectivity::Six))?;
    println!("  {} components", comps6.len());
    time("  mask of largest (from labels)", 3, || {
        comps.mask_where(|c| c.label == 1)
    });
    time("keep_largest 26 (label + mask)", 3, || {
        keep_largest(&mask, Connectivity::TwentySix)
    })?;
    let seed = Point3::new(0.0, -95.0 * 0.94, 10.0);
    let kept = time("keep_containing 6 (seed in skull)", 3, || {
        keep_containing(&mask, seed, Connectivity::Six)
    });
    println!("  seed result: {:?}", kept.as_ref().map(|m| m.count()));
    time("dilate 1 mm", 3, || dilate_mm(&mask, 1.0, Outside::Background))?;
    time("erode 1 mm", 3, || erode_mm(&mask, 1.0, Outside::Foreground))?;
    let closed = time("close 1 mm (padded)", 3, || close_mm(&mask, 1.0))?;
    println!(
        "  closed {} voxels (+{})",
        closed.count(),
        closed.count() - mask.count()
    );
    time("close 3 mm (padded)", 1, || close_mm(&mask, 3.0))?;
    time("open 1 mm (padded)", 3, || open_mm(&mask, 1.0))?;
    time("squared EDT to bone (f64 out)", 1, || squared_edt_mm2(&mask, true));
    let filled = time("fill_cavities", 3, || fill_cavities(&mask))?;
    println!(
        "  filled {} voxels (+{})",
        filled.count(),
        filled.count() - mask.count()
    );
    time("fill_holes_slice_by_slice", 3, || fill_holes_slice_by_slice(&mask))?;
    let mut cut = mask.clone();
    time(
        "cut_plane + cut_box + crop (in place)",
        3,
        || -> Result<(), SegmentError> {
            cut_plane(
                &mut cut,
                Point3::new(0.0, 0.0, -22.0),
                nalgebra::Vector3::new(0.0, 0.2, -1.0),
            )?;
            cut_box_mm(
                &mut cut,
                Point3::new(-60.0, -80.0, -36.0),
                Point3::new(60.0, 20.0, -33.0),
            )?;
            crop_to_box_mm(
                &mut cut,
                Point3::new(-100.0, -110.0, -80.0),
                Point3::new(100.0, 100.0, 90.0),
            )
        },
    )?;
    let mut recipe = SegmentRecipe::new(HuRange::BONE);
    recipe.connectivity = Connectivity::TwentySix;
    recipe.keep = Keep::Largest;
    recipe.close_mm = 1.0;
    recipe.fill_cavities = true;
    let (out, stats) = time("recipe: threshold, close 1, keep largest 26, fill", 1, || {
        apply(&recipe, &g, &hu)
    })?;
    for s in &stats.steps {
        println!(
            "  {:<14} {:>10} voxels {:>12.0} mm3",
            s.step.name(),
            s.voxels,
            s.volume_mm3
        );
    }
    assert_eq!(out.count(), stats.steps.last().map_or(0, |s| s.voxels));
    Ok(())
}
