//! Renders a bone STL and optional guide STLs into a contact sheet of labelled views.
//!
//! `cargo run --release --example render_stl -- bone.stl [guide.stl ...] -o out.png [--cell 480x360]
//! [--bone-opacity 0.8] [--margin-mm 15]`
//!
//! With guides, the camera is fitted to the guides' box grown by the margin (the guide fills the view with the bone
//! around it) and the bone defaults to semi-transparent; without guides it is fitted to the bone, opaque.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Parser;
use guidesmith::mesh::read_stl_file;
use guidesmith::render::{grown, render, render_views, standard_views, write_png, Scene, View, BONE_COLOUR};

/// Guide colours, cycled: teal, blue, orange, violet.
const GUIDE_COLOURS: [[u8; 3]; 4] = [[0, 140, 160], [40, 90, 200], [230, 120, 30], [140, 70, 170]];

#[derive(Parser)]
struct Args {
    /// The bone STL, then any guide STLs.
    #[arg(required = true)]
    stl: Vec<PathBuf>,
    /// The PNG to write.
    #[arg(short, long)]
    output: PathBuf,
    /// Size of each view, WIDTHxHEIGHT pixels.
    #[arg(long, default_value = "480x360")]
    cell: String,
    /// Opacity of the bone (default 1 without guides, 0.8 with).
    #[arg(long)]
    bone_opacity: Option<f32>,
    /// Margin around the guides' box, mm.
    #[arg(long, default_value_t = 15.0)]
    margin_mm: f64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let (cw, ch) = args
        .cell
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
        .with_context(|| format!("--cell {:?} is not WIDTHxHEIGHT", args.cell))?;
    if cw == 0 || ch == 0 {
        bail!("--cell {:?} has a zero side", args.cell);
    }
    let t = Instant::now();
    let meshes = args
        .stl
        .iter()
        .map(|p| read_stl_file(p).with_context(|| format!("reading {}", p.display())))
        .collect::<Result<Vec<_>>>()?;
    eprintln!("read {} STL files in {:.3} s", meshes.len(), t.elapsed().as_secs_f64());

    let (bone, guides) = meshes.split_first().context("no STL given")?;
    let mut scene = Scene::new();
    let bone_opacity = args.bone_opacity.unwrap_or(if guides.is_empty() { 1.0 } else { 0.8 });
    scene.add(bone, BONE_COLOUR, bone_opacity);
    let mut focus = None;
    for (i, g) in guides.iter().enumerate() {
        scene.add(g, GUIDE_COLOURS[i % GUIDE_COLOURS.len()], 1.0);
    }
    if !guides.is_empty() {
        let mut guide_scene = Scene::new();
        for g in guides {
            guide_scene.add(g, [0; 3], 1.0);
        }
        focus = guide_scene.bounding_box().map(|b| grown(b, args.margin_mm));
    }
    let triangles: usize = scene.items.iter().map(|i| i.mesh.triangle_count()).sum();

    // Timing of one 800x600 view: the best of five runs (the machine may be shared).
    let mut best_s = f64::INFINITY;
    for _ in 0..5 {
        let t = Instant::now();
        let single = render(&scene, View::Anterior, 800, 600, focus);
        best_s = best_s.min(t.elapsed().as_secs_f64());
        std::hint::black_box(single);
    }
    eprintln!(
        "one 800x600 view of {triangles} triangles: {:.1} ms (best of 5, {} threads)",
        best_s * 1e3,
        rayon::current_num_threads()
    );
    let views = standard_views();
    let t = Instant::now();
    let sheet = render_views(&scene, &views, (cw, ch), focus);
    eprintln!(
        "contact sheet of {} views at {cw}x{ch}: {:.1} ms",
        views.len(),
        t.elapsed().as_secs_f64() * 1e3
    );
    write_png(&sheet, &args.output)?;
    eprintln!("wrote {}", args.output.display());
    Ok(())
}
