//! Time decimation of an STL to 10 %: `cargo run --release --example decimate_timing -- bone.stl`.
use std::time::Instant;

use guidesmith::mesh::{self, DecimateOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: decimate_timing <STL>")?;
    let mut m = mesh::read_stl_file(path.as_ref())?;
    m.triangles.retain(|t| t[0] != t[1] && t[1] != t[2] && t[0] != t[2]);
    let options = DecimateOptions {
        target_triangles: Some(m.triangles.len() / 10),
        max_error_mm: None,
    };
    for _ in 0..2 {
        let t = Instant::now();
        let raw = mesh::decimate(&m, options)?;
        let t_raw = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let hits = mesh::check::self_intersections(&raw).len();
        let t_check = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let checked = mesh::decimate_checked(&m, options)?;
        let t_checked = t.elapsed().as_secs_f64();
        println!(
            "decimate {t_raw:.3} s ({hits} intersecting pairs), self-intersection check {t_check:.3} s, \
             decimate_checked {t_checked:.3} s -> {} triangles",
            checked.triangles.len()
        );
    }
    Ok(())
}
