//! Time the two passes of the loader on a series: `cargo run --release --example load_timing -- <DIR>`.
use std::time::Instant;

use guidesmith::progress::NoProgress;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).ok_or("usage: load_timing <DICOM DIR>")?;
    for _ in 0..3 {
        let t0 = Instant::now();
        let mut scan = guidesmith::volume::scan(dir.as_ref(), &NoProgress)?;
        let t1 = Instant::now();
        let volume = scan.load(0, &NoProgress)?;
        let t2 = Instant::now();
        println!(
            "headers {:.3} s, pixels {:.3} s, total {:.3} s for {:?}",
            (t1 - t0).as_secs_f64(),
            (t2 - t1).as_secs_f64(),
            (t2 - t0).as_secs_f64(),
            volume.geometry.dims
        );
    }
    Ok(())
}
