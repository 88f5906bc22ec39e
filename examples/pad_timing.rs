//! Times the contact pad on a bone STL: `cargo run --release --example pad_timing -- bone.stl`.
use std::time::Instant;

use guidesmith::guide::footprint::Footprint;
use guidesmith::guide::heightfield::GuideFrame;
use guidesmith::guide::pad::{build_pad, PadOptions};
use guidesmith::mesh::{read_stl_file, MeshReport};
use nalgebra::{Point3, Vector3};

fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: pad_timing BONE.stl"))?;
    let bone = read_stl_file(std::path::Path::new(&path))?;
    let bb = bone.bounding_box().ok_or_else(|| anyhow::anyhow!("empty"))?;
    println!("bone {} triangles, bbox {:?}", bone.triangles.len(), bb);
    // Anterior chin: seat along +y (posterior) over x in [-15, 15], z in [-6, 6].
    let frame = GuideFrame::new(Point3::new(0.0, bb.min_mm[1], 0.0), Vector3::new(0.0, 1.0, 0.0)).expect("frame");
    let outline: Vec<[f64; 3]> = vec![
        [-15.0, bb.min_mm[1], -5.0],
        [15.0, bb.min_mm[1], -5.0],
        [15.0, bb.min_mm[1], 5.0],
        [-15.0, bb.min_mm[1], 5.0],
    ];
    let fp = Footprint::new(&frame, &outline)?;
    let g = guidesmith::guide::heightfield::HeightGrid::empty(-24.0, -13.0, 0.2, 240, 130);
    let t = Instant::now();
    let c = guidesmith::guide::heightfield::offset_top_surface(&bone, &frame, &g, 0.25);
    println!("offset surface: {:.3} s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let _d = guidesmith::guide::heightfield::dilate(&c, 4.0);
    println!("dilate: {:.3} s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let pad = build_pad(
        &bone,
        &frame,
        &fp,
        &PadOptions {
            bone_offset_mm: 0.25,
            thickness_mm: 4.0,
            spacing_mm: 0.2,
            margin_mm: 4.0,
        },
    )?;
    println!(
        "pad: {:.3} s, {} triangles, boolean fallback {}",
        t.elapsed().as_secs_f64(),
        pad.mesh.triangles.len(),
        pad.cut_by_boolean
    );
    let report = MeshReport::new(&pad.mesh);
    println!("{report}");
    guidesmith::mesh::write_stl_file(&pad.mesh, std::path::Path::new("/tmp/pad.stl"), "pad")?;
    Ok(())
}
