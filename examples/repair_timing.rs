//! Time the repair of bone STL files against reading them and checking them:
//! `cargo run --release --example repair_timing -- CT_DIR [OUT_DIR]`, or repair STL files made elsewhere and print
//! what was done or why not: `cargo run --release --example repair_timing -- FILE.stl...`.
//!
//! Makes our bone surface of the CT (300 HU, every component), writes it as binary STL twice into OUT_DIR (default
//! the system temporary folder): `clean.stl`, and `noisy.stl` with every facet's corners moved by up to one f32 ulp
//! on their own (as an exporter that transforms each facet separately writes them, so exact welding leaves the
//! surface in pieces). Then, three times each, times reading the file, `MeshReport::new` on the result and
//! `mesh::repair` (which includes one `MeshReport::new` of its result), and prints the medians.
use std::path::PathBuf;
use std::time::Instant;

use guidesmith::mesh::{self, Mesh, MeshReport, RepairOptions};
use guidesmith::progress::NoProgress;
use guidesmith::segment::{HuRange, SegmentRecipe};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ct = std::env::args()
        .nth(1)
        .ok_or("usage: repair_timing CT_DIR [OUT_DIR] | FILE.stl...")?;
    if ct.ends_with(".stl") {
        for path in std::env::args().skip(1) {
            let t = Instant::now();
            let m = mesh::read_stl_file(path.as_ref())?;
            let read_s = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let result = mesh::repair(m, &RepairOptions::default());
            let repair_s = t.elapsed().as_secs_f64();
            println!("{path}: read {read_s:.3} s, repair {repair_s:.3} s");
            match result {
                Ok(r) => println!("{}", r.report),
                Err(e) => println!("{e}"),
            }
        }
        return Ok(());
    }
    let out = std::env::args().nth(2).map_or_else(std::env::temp_dir, PathBuf::from);
    let (volume, _) = guidesmith::volume::load(ct.as_ref(), None, &NoProgress)?;
    let recipe = SegmentRecipe::new(HuRange::new(300, 3071)?);
    let bone = guidesmith::bone::extract_bone(&volume, &recipe, &Default::default(), &NoProgress)?.mesh;
    let clean = out.join("clean.stl");
    mesh::write_stl_file(&bone, &clean, "clean")?;
    let mut state = 1u64;
    let mut noisy = Mesh::default();
    for t in &bone.triangles {
        for &v in t {
            noisy.positions.push(bone.positions[v as usize].map(|c| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let f = c as f32;
                let k = (state >> 62) as i64 % 3 - 1;
                if f == 0.0 {
                    0.0
                } else {
                    f64::from(f32::from_bits((i64::from(f.to_bits()) + k) as u32))
                }
            }));
        }
        let n = noisy.positions.len() as u32;
        noisy.triangles.push([n - 3, n - 2, n - 1]);
    }
    let noisy_path = out.join("noisy.stl");
    mesh::write_stl_file(&noisy, &noisy_path, "noisy")?;
    println!(
        "{} faces, {} vertices, {} threads",
        bone.triangles.len(),
        bone.positions.len(),
        rayon::current_num_threads()
    );
    for path in [clean, noisy_path] {
        let (mut read_s, mut check_s, mut repair_s) = (Vec::new(), Vec::new(), Vec::new());
        let mut summary = String::new();
        for _ in 0..3 {
            let t = Instant::now();
            let m = mesh::read_stl_file(&path)?;
            read_s.push(t.elapsed().as_secs_f64());
            let t = Instant::now();
            let r = mesh::repair(m, &RepairOptions::default())?;
            repair_s.push(t.elapsed().as_secs_f64());
            let t = Instant::now();
            let check = MeshReport::new(&r.mesh);
            check_s.push(t.elapsed().as_secs_f64());
            assert!(check.is_valid());
            summary = format!(
                "{} vertices welded exactly, {} within the tolerance, {} faces flipped, {} faces out",
                r.report.exact_duplicate_vertices,
                r.report.near_duplicate_vertices.count,
                r.report.flipped_faces.count,
                r.report.triangles
            );
        }
        let (read, check, repair) = (median(read_s), median(check_s), median(repair_s));
        println!(
            "{}: read {read:.3} s, check {check:.3} s, repair {repair:.3} s (own work {:.3} s = {:.2} of read + check); {summary}",
            path.display(),
            repair - check,
            (repair - check) / (read + check)
        );
    }
    Ok(())
}
