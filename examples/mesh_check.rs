//! Reports meshes with guidesmith's own checker (closed, manifold, outward, self-intersecting pairs), whichever
//! engine made them: `cargo run --release --example mesh_check -- A.obj B.stl ...`. OBJ files are read with their
//! exact `f64` positions (triangles only), STL through the library's reader.

use std::path::Path;

use anyhow::{bail, Context, Result};
use guidesmith::mesh::check::MeshReport;
use guidesmith::mesh::{read_stl_file, Mesh};

fn read_obj(path: &Path) -> Result<Mesh> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut mesh = Mesh::default();
    for (n, line) in text.lines().enumerate() {
        let mut words = line.split_whitespace();
        let numbers = |words: std::str::SplitWhitespace<'_>| -> Result<Vec<f64>> {
            words
                .take(3)
                .map(|w| {
                    w.parse::<f64>()
                        .with_context(|| format!("{}:{}: bad number {w}", path.display(), n + 1))
                })
                .collect()
        };
        match words.next() {
            Some("v") => {
                let v = numbers(words)?;
                mesh.positions.push([v[0], v[1], v[2]]);
            }
            Some("f") => {
                let f = numbers(words)?;
                if f.len() != 3 {
                    bail!("{}:{}: only triangles are read", path.display(), n + 1);
                }
                mesh.triangles.push([f[0] as u32 - 1, f[1] as u32 - 1, f[2] as u32 - 1]);
            }
            _ => {}
        }
    }
    Ok(mesh)
}

fn main() -> Result<()> {
    for arg in std::env::args().skip(1) {
        let path = Path::new(&arg);
        let mesh = if arg.ends_with(".obj") {
            read_obj(path)?
        } else {
            read_stl_file(path).with_context(|| format!("reading {arg}"))?
        };
        let report = MeshReport::new(&mesh);
        println!(
            "{}: {report}; {} self-intersecting pairs",
            path.file_name()
                .map_or(arg.clone(), |n| n.to_string_lossy().into_owned()),
            report.self_intersections.count
        );
    }
    Ok(())
}
