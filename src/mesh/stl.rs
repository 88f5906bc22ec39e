//! STL export and import.
//!
//! Why both: guides leave guidesmith as binary STL for the printer, and bone or implant models (and our own output,
//! for re-checking) come back in as STL. STL stores every triangle with its own three `f32` corners, so a reader
//! must **weld** the corners back into shared vertices before any topology check is meaningful. Welding here is
//! exact (bit-identical coordinates, with `-0.0` equal to `0.0`), in order of first appearance, hence deterministic;
//! tolerant welding would silently merge distinct vertices of thin walls.
//!
//! The binary header carries a short identification (`guidesmith case=<ID>`). A binary header that begins with
//! `solid` would make many readers (including `stl_io`) take the file for ASCII, so such headers are prefixed on
//! writing; on reading, a file whose size matches the binary layout exactly is read as binary whatever its header
//! says. Errors name the file and what is wrong with it.

use std::collections::HashMap;
use std::io::{Cursor, Read, Write};
use std::path::Path;

use rayon::prelude::*;

use super::{Mesh, MeshError};

/// Size of the binary STL header.
const HEADER_LEN: usize = 80;

/// Writes `mesh` as binary STL with an 80-byte header holding `header_text` (non-ASCII characters replaced by `?`,
/// truncated to 80 bytes, prefixed when it would start with `solid`). Normals are computed from the `f32` corners.
///
/// Errors when an index is out of range, a coordinate does not fit in `f32`, there are more than `u32::MAX`
/// triangles, or writing fails.
pub fn write_stl_binary<W: Write>(mesh: &Mesh, writer: W, header_text: &str) -> Result<(), MeshError> {
    write_named(mesh, writer, header_text, "<stream>")
}

/// [`write_stl_binary`] to a file.
pub fn write_stl_file(mesh: &Mesh, path: &Path, header_text: &str) -> Result<(), MeshError> {
    let name = path.display().to_string();
    let file = std::fs::File::create(path).map_err(|source| MeshError::Io {
        path: name.clone(),
        error: source,
    })?;
    write_named(mesh, file, header_text, &name)
}

/// Bytes of one binary STL triangle record: normal, three corners (12 `f32`), attribute count (`u16`).
const RECORD_LEN: usize = 50;

/// Triangles encoded per write: big enough to keep every thread busy, small enough that the buffer stays in cache
/// and is reused instead of holding the whole file in memory.
const RECORDS_PER_BATCH: usize = 1 << 15;

fn write_named<W: Write>(mesh: &Mesh, mut writer: W, header_text: &str, name: &str) -> Result<(), MeshError> {
    mesh.validate()?;
    let count = u32::try_from(mesh.triangles.len()).map_err(|_| MeshError::StlFormat {
        path: name.to_string(),
        detail: format!("{} triangles do not fit a binary STL count", mesh.triangles.len()),
    })?;
    let corners: Vec<[f32; 3]> = mesh.positions.par_iter().map(|p| p.map(|c| c as f32)).collect();
    if let Some(v) = corners.iter().position(|c| !c.iter().all(|x| x.is_finite())) {
        return Err(MeshError::StlFormat {
            path: name.to_string(),
            detail: format!("vertex {v} at {:?} mm does not fit in 32-bit floats", mesh.positions[v]),
        });
    }
    let io = |error: std::io::Error| MeshError::Io {
        path: name.to_string(),
        error,
    };
    writer.write_all(&header_bytes(header_text)).map_err(io)?;
    writer.write_all(&count.to_le_bytes()).map_err(io)?;
    // Records are encoded in parallel into disjoint slices of one reused buffer, then written in order.
    let mut buffer = vec![0u8; RECORDS_PER_BATCH.min(mesh.triangles.len()) * RECORD_LEN];
    for batch in mesh.triangles.chunks(RECORDS_PER_BATCH) {
        let bytes = &mut buffer[..batch.len() * RECORD_LEN];
        bytes
            .par_chunks_mut(RECORD_LEN)
            .zip(batch.par_iter())
            .with_min_len(1 << 10)
            .for_each(|(record, t)| encode_record(record, t.map(|i| corners[i as usize])));
        writer.write_all(bytes).map_err(io)?;
    }
    writer.flush().map_err(io)
}

/// One triangle record; the normal is computed in `f64` from the `f32` corners (zero for a degenerate triangle).
fn encode_record(record: &mut [u8], v: [[f32; 3]; 3]) {
    let p = v.map(|c| c.map(f64::from));
    let n = super::cross(super::sub(p[1], p[0]), super::sub(p[2], p[0]));
    let len = super::norm(n);
    let unit = if len > 0.0 {
        n.map(|c| (c / len) as f32)
    } else {
        [0.0; 3]
    };
    let floats = unit.iter().chain(v.iter().flatten());
    for (dst, f) in record.chunks_exact_mut(4).zip(floats) {
        dst.copy_from_slice(&f.to_le_bytes());
    }
    record[RECORD_LEN - 2..].fill(0);
}

/// The 80 header bytes for `text`.
fn header_bytes(text: &str) -> [u8; HEADER_LEN] {
    let mut clean: String = text
        .chars()
        .map(|c| if c.is_ascii() && !c.is_ascii_control() { c } else { '?' })
        .collect();
    if clean.trim_start().to_ascii_lowercase().starts_with("solid") {
        clean.insert_str(0, "binary STL: ");
    }
    let mut h = [b' '; HEADER_LEN];
    for (d, s) in h.iter_mut().zip(clean.bytes()) {
        *d = s;
    }
    h
}

/// Reads an STL file (ASCII or binary) and welds exactly coincident corners.
pub fn read_stl_file(path: &Path) -> Result<Mesh, MeshError> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| MeshError::Io {
        path: name.clone(),
        error: source,
    })?;
    read_stl_bytes(bytes, &name)
}

/// Reads STL (ASCII or binary) from `reader`; `name` is used in error messages.
pub fn read_stl<R: Read>(mut reader: R, name: &str) -> Result<Mesh, MeshError> {
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes).map_err(|source| MeshError::Io {
        path: name.to_string(),
        error: source,
    })?;
    read_stl_bytes(bytes, name)
}

fn read_stl_bytes(mut bytes: Vec<u8>, name: &str) -> Result<Mesh, MeshError> {
    let format_error = |detail: String| MeshError::StlFormat {
        path: name.to_string(),
        detail,
    };
    let binary_size = (bytes.len() >= HEADER_LEN + 4).then(|| {
        let n = u32::from_le_bytes([bytes[80], bytes[81], bytes[82], bytes[83]]);
        (n, HEADER_LEN as u64 + 4 + 50 * u64::from(n))
    });
    let exact_binary = binary_size.is_some_and(|(_, size)| size == bytes.len() as u64);
    let text_start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let looks_ascii = bytes[text_start..].starts_with(b"solid");
    if exact_binary {
        // Make sure stl_io does not take a binary file with a "solid..." header for ASCII.
        bytes[0] = b'#';
    } else if looks_ascii {
        // stl_io wants "solid " at the very start; accept leading blanks and an unnamed "solid".
        let mut fixed = b"solid ".to_vec();
        fixed.extend_from_slice(&bytes[text_start + 5..]);
        bytes = fixed;
    } else {
        return Err(match binary_size {
            None => format_error(format!(
                "{} bytes is shorter than a binary STL header (84 bytes) and the file does not start with \"solid\"",
                bytes.len()
            )),
            Some((n, size)) => format_error(format!(
                "binary STL declares {n} triangles, which needs {size} bytes, but the file has {} bytes",
                bytes.len()
            )),
        });
    }
    let mut cursor = Cursor::new(bytes);
    let reader = stl_io::create_stl_reader(&mut cursor).map_err(|e| format_error(e.to_string()))?;
    let mut mesh = Mesh::default();
    let mut index: HashMap<[u32; 3], u32> = HashMap::new();
    for (t, tri) in reader.enumerate() {
        let tri = tri.map_err(|e| format_error(format!("triangle {t}: {e}")))?;
        let mut ids = [0u32; 3];
        for (k, v) in tri.vertices.iter().enumerate() {
            if !v.0.iter().all(|c| c.is_finite()) {
                return Err(format_error(format!("triangle {t} has a non-finite corner {:?}", v.0)));
            }
            // +0.0 + (-0.0) = +0.0: one key for both zeros.
            let key = v.0.map(|c| (c + 0.0).to_bits());
            let next = mesh.positions.len();
            let id = *index.entry(key).or_insert_with(|| {
                mesh.positions.push(v.0.map(f64::from));
                next as u32
            });
            ids[k] = id;
        }
        mesh.triangles.push(ids);
    }
    if mesh.positions.len() > u32::MAX as usize {
        return Err(MeshError::TooManyVertices {
            count: mesh.positions.len() as u64,
            max: u64::from(u32::MAX),
        });
    }
    Ok(mesh)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::GridGeometry;
    use crate::mesh::check::MeshReport;
    use crate::mesh::marching_cubes::{marching_cubes, tests::sphere_field};
    use crate::mesh::test_util::cube;

    fn round_f32(m: &Mesh) -> Mesh {
        let mut m = m.clone();
        m.round_to_f32();
        m
    }

    #[test]
    fn binary_round_trip_keeps_the_mesh_closed() {
        let g = GridGeometry::axis_aligned([30, 30, 30], [0.5; 3], [-100.0, 50.0, 200.0]);
        let field = sphere_field(&g, [-92.6, 57.3, 207.1], 5.0, 1.0);
        let mesh = marching_cubes(&g, &field, 0.0, None).expect("valid input");
        let mut buf = Vec::new();
        write_stl_binary(&mesh, &mut buf, "guidesmith case=CASE-0042").expect("writable");
        assert_eq!(buf.len(), 84 + 50 * mesh.triangles.len());
        assert!(buf.starts_with(b"guidesmith case=CASE-0042 "));
        let back = read_stl(buf.as_slice(), "sphere.stl").expect("readable");
        // Same triangles with the same (f32-rounded) corners; vertex numbering may differ after welding.
        assert_eq!(back.triangles.len(), mesh.triangles.len());
        assert_eq!(back.positions.len(), mesh.positions.len());
        let rounded = round_f32(&mesh);
        for (a, b) in back.triangles.iter().zip(&rounded.triangles) {
            for k in 0..3 {
                assert_eq!(back.positions[a[k] as usize], rounded.positions[b[k] as usize]);
            }
        }
        let report = MeshReport::new(&back);
        assert!(report.is_valid(), "{report}");
    }

    #[test]
    fn ascii_is_read_and_welded() {
        let m = cube([0.0; 3], [1.0, 2.0, 3.0]);
        let mut text = String::from("solid\n");
        for t in &m.triangles {
            text.push_str("  facet normal 0 0 0\n    outer loop\n");
            for &v in t {
                let p = m.positions[v as usize];
                text.push_str(&format!("      vertex {} {} {}\n", p[0], p[1], p[2]));
            }
            text.push_str("    endloop\n  endfacet\n");
        }
        text.push_str("endsolid\n");
        let back = read_stl(text.as_bytes(), "cube.stl").expect("readable");
        assert_eq!(back.positions.len(), 8);
        assert_eq!(back.triangles.len(), 12);
        assert!(MeshReport::new(&back).is_valid());
        assert!((back.signed_volume_mm3() - 6.0).abs() < 1e-9);
    }

    #[test]
    fn binary_with_solid_header_is_still_binary() {
        let m = cube([0.0; 3], [1.0; 3]);
        let mut buf = Vec::new();
        write_stl_binary(&m, &mut buf, "solid by some exporter").expect("writable");
        assert!(buf.starts_with(b"binary STL: solid"));
        // Emulate an exporter that writes "solid" into a binary header anyway.
        buf[..5].copy_from_slice(b"solid");
        let back = read_stl(buf.as_slice(), "cube.stl").expect("readable");
        assert_eq!(back.triangles.len(), 12);
        assert!(MeshReport::new(&back).is_valid());
    }

    #[test]
    fn errors_name_the_file_and_the_problem() {
        let m = cube([0.0; 3], [1.0; 3]);
        let mut buf = Vec::new();
        write_stl_binary(&m, &mut buf, "x").expect("writable");
        buf.truncate(buf.len() - 7);
        let err = read_stl(buf.as_slice(), "jaw.stl").expect_err("truncated").to_string();
        assert!(
            err.contains("jaw.stl") && err.contains("declares 12 triangles"),
            "{err}"
        );
        let err = read_stl(&b"solid x\n  facet normal 0 0 0\n  outer loop\n"[..], "bad.stl")
            .expect_err("unterminated")
            .to_string();
        assert!(err.contains("bad.stl"), "{err}");
        let err = read_stl(&b"tiny"[..], "tiny.stl").expect_err("too short").to_string();
        assert!(err.contains("tiny.stl") && err.contains("shorter"), "{err}");
        let err = read_stl_file(Path::new("/nonexistent/guide.stl"))
            .expect_err("missing")
            .to_string();
        assert!(err.contains("/nonexistent/guide.stl"), "{err}");
        let huge = Mesh {
            positions: vec![[1e300, 0.0, 0.0], [0.0; 3], [0.0, 1.0, 0.0]],
            triangles: vec![[0, 1, 2]],
        };
        assert!(write_stl_binary(&huge, Vec::new(), "x").is_err());
    }

    #[test]
    fn records_are_the_bytes_stl_io_writes() {
        // The parallel encoder replaced `stl_io::write_stl`; the files must not change.
        let g = GridGeometry::axis_aligned([30, 30, 30], [0.5; 3], [-7.0, -7.0, -7.0]);
        let mesh = marching_cubes(&g, &sphere_field(&g, [0.1, 0.2, -0.3], 5.0, 1.0), 0.0, None).expect("valid");
        assert!(mesh.triangles.len() > RECORDS_PER_BATCH / 16);
        let mut ours = Vec::new();
        write_stl_binary(&mesh, &mut ours, "case=x").expect("write");
        let triangles: Vec<stl_io::Triangle> = mesh
            .triangles
            .iter()
            .map(|t| {
                let v = t.map(|i| stl_io::Vertex::new(mesh.positions[i as usize].map(|c| c as f32)));
                let p = v.map(|c| c.0.map(f64::from));
                let n = crate::mesh::cross(crate::mesh::sub(p[1], p[0]), crate::mesh::sub(p[2], p[0]));
                let len = crate::mesh::norm(n);
                stl_io::Triangle {
                    normal: stl_io::Normal::new(n.map(|c| (c / len) as f32)),
                    vertices: v,
                }
            })
            .collect();
        let mut theirs = Vec::new();
        stl_io::write_stl(&mut theirs, triangles.iter()).expect("write");
        assert_eq!(ours.len(), theirs.len());
        assert_eq!(ours[..HEADER_LEN], header_bytes("case=x"));
        assert_eq!(ours[HEADER_LEN..], theirs[HEADER_LEN..]);
    }
}
