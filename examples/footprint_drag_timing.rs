//! Time what the desktop application does on every move of a dragged footprint vertex: the guide's bone offset from
//! its template and printer, then the footprint's contact area and seating play (`footprint_contact`), for each guide
//! of a plan, its first vertex moved 0.25 mm at a time along its outgoing edge (20 moves):
//! `cargo run --release --example footprint_drag_timing -- <PLAN.json> [CT]` (the approved cranium plan that
//! `GUIDESMITH_RENDER_DIR=DIR cargo test --test guide_cranium` keeps as DIR/plan.json, with `../shared/data/ct/cranium-0051`;
//! docs/PERFORMANCE.md).
use std::time::Instant;

use guidesmith::case::{guide_request, open_bone};
use guidesmith::guide::seating::footprint_contact;
use guidesmith::progress::NoProgress;

/// Moves per guide, and the step of each, mm.
const MOVES: usize = 20;
const STEP_MM: f64 = 0.25;
/// The window's contact grid, mm.
const GRID_MM: f64 = 0.5;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = std::path::PathBuf::from(args.next().ok_or("usage: footprint_drag_timing <PLAN.json> [CT]")?);
    let ct = args.next().map(std::path::PathBuf::from);
    let plan = guidesmith::plan::Plan::load(&path)?;
    let bone = open_bone(&plan, &path, ct.as_deref(), &NoProgress)?.mesh;
    println!("bone: {} triangles", bone.triangles.len());
    for g in &plan.guides {
        let outline = &g.footprint.outline_mm;
        let (a, b) = (outline[0], outline[1]);
        let len = (0..3).map(|k| (b[k] - a[k]).powi(2)).sum::<f64>().sqrt();
        let mut times_ms = Vec::with_capacity(MOVES);
        let mut offsets_ms = Vec::with_capacity(MOVES);
        let mut last = None;
        for m in 1..=MOVES {
            let mut moved = outline.clone();
            moved[0] = std::array::from_fn(|k| a[k] + (b[k] - a[k]) / len * STEP_MM * m as f64);
            let t = Instant::now();
            let offset_mm = guide_request(&plan, g, None)
                .map_err(|f| f.message)?
                .params
                .tolerance
                .bone_offset_mm;
            let offset_ms = t.elapsed().as_secs_f64() * 1e3;
            let contact = footprint_contact(&bone, g.seating_direction, &moved, offset_mm, GRID_MM)?;
            times_ms.push(t.elapsed().as_secs_f64() * 1e3);
            offsets_ms.push(offset_ms);
            last = Some(contact);
        }
        times_ms.sort_by(f64::total_cmp);
        offsets_ms.sort_by(f64::total_cmp);
        let c = last.ok_or("no move")?;
        println!(
            "{}: {MOVES} moves, contact and play in {:.1} ms median, {:.1} ms max (of which the template's offset {:.1} ms \
             median; last: contact {:.0} of {:.0} mm^2, turns {:?} deg)",
            g.name,
            times_ms[MOVES / 2],
            times_ms[MOVES - 1],
            offsets_ms[MOVES / 2],
            c.contact_area_mm2,
            c.area_mm2,
            c.play.as_ref().and_then(|p| p.rotation_deg)
        );
    }
    Ok(())
}
