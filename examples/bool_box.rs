//! The boolean step of the peer benchmark: an axis-aligned guide box minus a bone, on the bone cropped to the box.
//!
//! `cargo run --release --example bool_box -- BONE.stl X0,Y0,Z0,X1,Y1,Z1 OUT.stl [--margin-mm 0.25] [--full]`
//!
//! Reading the STL is not timed; the timed step is what manifold3d's is in `peer_boolean.py` (build both meshes,
//! boolean, get the result arrays): here [`difference_near`] (crop + boolean) and converting the result to `f32`
//! arrays. It is printed as `PEER_RESULT {"step_s": ...}` on stdout; details go to stderr. The result is written as
//! binary STL through `write_atomic`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Parser;
use guidesmith::atomic::write_atomic;
use guidesmith::mesh::boolean::{boolean, BoolOp, Operand};
use guidesmith::mesh::crop::{box_mesh, crop_to_box, difference_near, grown};
use guidesmith::mesh::{
    boundary_edges, inconsistent_edges, non_manifold_edges, read_stl_file, write_stl_binary, BoundingBox,
};

#[derive(Parser)]
struct Args {
    /// The bone surface, binary or ASCII STL (closed, manifold, outward).
    bone: PathBuf,
    /// The guide box, `X0,Y0,Z0,X1,Y1,Z1` in mm (patient LPS).
    #[arg(allow_hyphen_values = true)]
    r#box: String,
    /// The binary STL to write (box minus bone).
    out: PathBuf,
    /// How far the crop reaches beyond the box, mm (keeps the cut faces off the box faces).
    #[arg(long, default_value_t = 0.25)]
    margin_mm: f64,
    /// Also time the boolean on the whole bone (no crop), for comparison (stderr only).
    #[arg(long)]
    full: bool,
}

fn parse_box(text: &str) -> Result<BoundingBox> {
    let values = text
        .split(',')
        .map(|s| {
            s.trim()
                .parse::<f64>()
                .with_context(|| format!("box value {s:?} is not a number"))
        })
        .collect::<Result<Vec<_>>>()?;
    let [x0, y0, z0, x1, y1, z1] = values[..] else {
        bail!("box {text:?} needs six values X0,Y0,Z0,X1,Y1,Z1, got {}", values.len());
    };
    let b = BoundingBox {
        min_mm: [x0, y0, z0],
        max_mm: [x1, y1, z1],
    };
    if !(0..3).all(|a| b.min_mm[a] < b.max_mm[a]) {
        bail!("box {text:?} needs X0 < X1, Y0 < Y1 and Z0 < Z1");
    }
    Ok(b)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let b = parse_box(&args.r#box)?;
    let mut bone = read_stl_file(&args.bone).with_context(|| format!("reading {}", args.bone.display()))?;
    // As the harness does for every engine (not timed): triangles that welding left with a repeated vertex go.
    let welded = bone.triangle_count();
    bone.triangles.retain(|t| t[0] != t[1] && t[1] != t[2] && t[2] != t[0]);
    let dropped = welded - bone.triangle_count();
    let guide = box_mesh(b);

    let t = Instant::now();
    let result = difference_near(&guide, &bone, args.margin_mm).context("box minus bone")?;
    let positions_f32: Vec<[f32; 3]> = result.positions.iter().map(|p| p.map(|c| c as f32)).collect();
    let triangles: Vec<u32> = result.triangles.iter().flatten().copied().collect();
    let step_s = t.elapsed().as_secs_f64();
    println!("PEER_RESULT {{\"step_s\": {step_s:.6}}}");

    // Details, outside the timed step: the crop alone.
    let t = Instant::now();
    let cropped = crop_to_box(&bone, grown(b, args.margin_mm)).context("crop")?;
    let crop_s = t.elapsed().as_secs_f64();
    // The operand checks the boolean runs on the crop (part of the step).
    let t = Instant::now();
    let defects =
        boundary_edges(&cropped).len() + non_manifold_edges(&cropped).len() + inconsistent_edges(&cropped).len();
    let check_s = t.elapsed().as_secs_f64();
    eprintln!(
        "bone {} triangles ({dropped} with a repeated vertex dropped); crop {} triangles in {crop_s:.4} s (its checks {check_s:.4} s, {defects} defects); result {} vertices, {} triangles, {:.3} mm3; step {step_s:.4} s",
        bone.triangle_count(),
        cropped.triangle_count(),
        positions_f32.len(),
        triangles.len() / 3,
        result.signed_volume_mm3(),
    );

    if args.full {
        let t = Instant::now();
        let whole = boolean(
            Operand::new("guide box", &guide),
            Operand::new("bone", &bone),
            BoolOp::Difference,
        )
        .context("box minus the whole bone")?;
        eprintln!(
            "whole bone: {:.4} s, {:.3} mm3 (crop result differs by {:.2e} relative)",
            t.elapsed().as_secs_f64(),
            whole.signed_volume_mm3(),
            (result.signed_volume_mm3() - whole.signed_volume_mm3()) / whole.signed_volume_mm3()
        );
    }

    write_atomic(&args.out, |w| {
        write_stl_binary(&result, w, "guidesmith bool_box").map_err(std::io::Error::other)
    })
    .with_context(|| format!("writing {}", args.out.display()))?;
    Ok(())
}
