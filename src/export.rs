//! What goes to the print lab: one binary STL per guide, one 3MF with all guides, and `manifest.json` with every
//! file's SHA-256, the plan's hash and each guide's figures and check results.
//!
//! Why this way: a lab must be able to prove that what it prints is what the surgeon approved, so every file is
//! hashed in the manifest and the manifest names the plan's hash. Everything is rendered to bytes in memory first
//! and written through [`crate::atomic::write_atomic`], the manifest last, so a crash never leaves a half-written
//! file under its final name and a manifest never names a file that is not complete. Outputs are byte-identical for
//! the same inputs (no dates: STL headers and the 3MF's zip entries carry fixed values), and the only identifier
//! in names and contents is the case ID.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::atomic::write_atomic;
use crate::mesh::{BoundingBox, Mesh};
use crate::plan::sha256_hex;

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A guide has no triangles.
    #[error("guide '{0}' is empty; nothing to export")]
    Empty(String),
    /// Two guides share a file name.
    #[error("two guides would be written as '{0}'")]
    Duplicate(String),
    /// The 3MF writer failed.
    #[error("3MF: {0}")]
    ThreeMf(String),
}

/// One guide to export.
pub struct GuideExport<'a> {
    /// Guide name from the plan.
    pub name: &'a str,
    /// The checked solid, LPS mm.
    pub mesh: &'a Mesh,
    /// The guide's check results, copied into the manifest.
    pub checks: serde_json::Value,
}

/// What identifies the export.
pub struct ExportInfo<'a> {
    /// Case ID (never a patient identifier).
    pub case_id: &'a str,
    /// SHA-256 of the plan document.
    pub plan_sha256: &'a str,
    /// Software version.
    pub software_version: &'a str,
}

/// A file written, as listed in the manifest.
#[derive(Clone, Debug, Serialize)]
pub struct FileEntry {
    /// File name inside the output folder.
    pub file: String,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256, lower-case hex.
    pub sha256: String,
}

/// One guide in the manifest.
#[derive(Clone, Debug, Serialize)]
pub struct GuideEntry {
    /// Guide name.
    pub name: String,
    /// Its STL file.
    pub stl: String,
    /// Volume, mm^3.
    pub volume_mm3: f64,
    /// Bounding box, LPS mm.
    pub bounding_box: Option<BoundingBox>,
    /// Triangles.
    pub triangles: usize,
    /// Check results.
    pub checks: serde_json::Value,
}

/// The manifest.
#[derive(Clone, Debug, Serialize)]
pub struct Manifest {
    /// Format version of this file.
    pub manifest_version: u32,
    /// Case ID.
    pub case_id: String,
    /// Plan hash.
    pub plan_sha256: String,
    /// guidesmith version.
    pub software: String,
    /// Length unit of every file.
    pub units: &'static str,
    /// Coordinate frame of every file.
    pub coordinate_frame: &'static str,
    /// Files, in writing order.
    pub files: Vec<FileEntry>,
    /// Guides.
    pub guides: Vec<GuideEntry>,
}

/// Keeps `[A-Za-z0-9._-]`, replaces anything else by `_`.
pub fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn stl_bytes(mesh: &Mesh, header: &str) -> Result<Vec<u8>, std::io::Error> {
    let triangles: Vec<stl_io::Triangle> = mesh
        .triangles
        .iter()
        .map(|t| {
            let p = t.map(|i| mesh.positions[i as usize]);
            let v = |k: usize| stl_io::Vertex::new([p[k][0] as f32, p[k][1] as f32, p[k][2] as f32]);
            let (a, b, c) = (
                nalgebra::Vector3::from(p[0]),
                nalgebra::Vector3::from(p[1]),
                nalgebra::Vector3::from(p[2]),
            );
            let n = (b - a)
                .cross(&(c - a))
                .try_normalize(0.0)
                .unwrap_or_else(nalgebra::Vector3::zeros);
            stl_io::Triangle {
                normal: stl_io::Normal::new([n.x as f32, n.y as f32, n.z as f32]),
                vertices: [v(0), v(1), v(2)],
            }
        })
        .collect();
    let mut out = Cursor::new(Vec::new());
    stl_io::write_stl(&mut out, triangles.iter())?;
    let mut bytes = out.into_inner();
    // stl_io leaves the 80-byte header zeroed; ours says what the file is, without a date.
    let text = header.as_bytes();
    let n = text.len().min(80);
    bytes[..n].copy_from_slice(&text[..n]);
    Ok(bytes)
}

fn three_mf_bytes(info: &ExportInfo<'_>, guides: &[GuideExport<'_>]) -> Result<Vec<u8>, ExportError> {
    use threemf::model::{
        Build, Item, Metadata, Model, Object, Resources, Triangle, Triangles, Unit, Vertex, Vertices,
    };
    let objects: Vec<Object> = guides
        .iter()
        .enumerate()
        .map(|(k, g)| Object {
            id: k + 1,
            name: Some(g.name.to_string()),
            mesh: Some(threemf::model::Mesh {
                vertices: Vertices {
                    vertex: g
                        .mesh
                        .positions
                        .iter()
                        .map(|p| Vertex {
                            x: p[0],
                            y: p[1],
                            z: p[2],
                        })
                        .collect(),
                },
                triangles: Triangles {
                    triangle: g
                        .mesh
                        .triangles
                        .iter()
                        .map(|t| Triangle {
                            v1: t[0] as usize,
                            v2: t[1] as usize,
                            v3: t[2] as usize,
                        })
                        .collect(),
                },
            }),
            ..Object::default()
        })
        .collect();
    let names: Vec<&str> = guides.iter().map(|g| g.name).collect();
    let model = Model {
        xmlns: "http://schemas.microsoft.com/3dmanufacturing/core/2015/02".into(),
        xmlns_m: None,
        metadata: vec![
            Metadata {
                name: "Title".into(),
                value: Some(format!("guidesmith guides, case {}", info.case_id)),
            },
            Metadata {
                name: "Application".into(),
                value: Some(format!("guidesmith {}", info.software_version)),
            },
            Metadata {
                name: "guidesmith:case_id".into(),
                value: Some(info.case_id.to_string()),
            },
            Metadata {
                name: "guidesmith:guides".into(),
                value: Some(names.join(", ")),
            },
            Metadata {
                name: "guidesmith:plan_sha256".into(),
                value: Some(info.plan_sha256.to_string()),
            },
        ],
        resources: Resources {
            object: objects,
            basematerials: None,
        },
        build: Build {
            item: (0..guides.len())
                .map(|k| Item {
                    objectid: k + 1,
                    transform: None,
                    partnumber: None,
                })
                .collect(),
        },
        unit: Unit::Millimeter,
    };
    let mut out = Cursor::new(Vec::new());
    threemf::write(&mut out, model).map_err(|e| ExportError::ThreeMf(e.to_string()))?;
    Ok(out.into_inner())
}

/// Writes every guide's STL, the 3MF and the manifest into `out_dir` (created).
pub fn export_guides(
    out_dir: &Path,
    info: &ExportInfo<'_>,
    guides: &[GuideExport<'_>],
) -> Result<Manifest, ExportError> {
    std::fs::create_dir_all(out_dir).map_err(|source| ExportError::Io {
        path: out_dir.to_path_buf(),
        source,
    })?;
    let case = sanitize(info.case_id);
    let mut files = Vec::new();
    let mut entries = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let write = |name: String, bytes: &[u8], files: &mut Vec<FileEntry>| -> Result<(), ExportError> {
        let path = out_dir.join(&name);
        write_atomic(&path, |w| w.write_all(bytes)).map_err(|source| ExportError::Io { path, source })?;
        files.push(FileEntry {
            file: name,
            bytes: bytes.len() as u64,
            sha256: sha256_hex(bytes),
        });
        Ok(())
    };
    for g in guides {
        if g.mesh.triangles.is_empty() {
            return Err(ExportError::Empty(g.name.to_string()));
        }
        let stl = format!("{case}_{}.stl", sanitize(g.name));
        if !seen.insert(stl.clone()) {
            return Err(ExportError::Duplicate(stl));
        }
        let header = format!(
            "guidesmith {} case {} guide {}",
            info.software_version, info.case_id, g.name
        );
        let bytes = stl_bytes(g.mesh, &header).map_err(|source| ExportError::Io {
            path: out_dir.join(&stl),
            source,
        })?;
        write(stl.clone(), &bytes, &mut files)?;
        entries.push(GuideEntry {
            name: g.name.to_string(),
            stl,
            volume_mm3: g.mesh.signed_volume_mm3(),
            bounding_box: g.mesh.bounding_box(),
            triangles: g.mesh.triangles.len(),
            checks: g.checks.clone(),
        });
    }
    if !guides.is_empty() {
        let bytes = three_mf_bytes(info, guides)?;
        write(format!("{case}_guides.3mf"), &bytes, &mut files)?;
    }
    let manifest = Manifest {
        manifest_version: 1,
        case_id: info.case_id.to_string(),
        plan_sha256: info.plan_sha256.to_string(),
        software: format!("guidesmith {}", info.software_version),
        units: "millimetre",
        coordinate_frame: "DICOM patient LPS",
        files,
        guides: entries,
    };
    let mut text = serde_json::to_string_pretty(&manifest).map_err(|e| ExportError::ThreeMf(e.to_string()))?;
    text.push('\n');
    let path = out_dir.join("manifest.json");
    write_atomic(&path, |w| w.write_all(text.as_bytes())).map_err(|source| ExportError::Io { path, source })?;
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tetra() -> Mesh {
        Mesh {
            positions: vec![[0.0, 0.0, 0.0], [10.0, 0.0, 0.0], [0.0, 10.0, 0.0], [0.0, 0.0, 10.0]],
            triangles: vec![[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]],
        }
    }

    #[test]
    fn files_match_their_manifest_hashes_read_back_and_are_byte_identical_across_runs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mesh = tetra();
        let info = ExportInfo {
            case_id: "CASE-007",
            plan_sha256: "ab12",
            software_version: "0.1.0",
        };
        let guides = [GuideExport {
            name: "cut guide/1",
            mesh: &mesh,
            checks: serde_json::json!({"passed": true}),
        }];
        let m1 = export_guides(dir.path(), &info, &guides).expect("export");
        assert_eq!(m1.files.len(), 2);
        assert_eq!(m1.files[0].file, "CASE-007_cut_guide_1.stl");
        let mut first = Vec::new();
        for f in &m1.files {
            let bytes = std::fs::read(dir.path().join(&f.file)).expect("read");
            assert_eq!(sha256_hex(&bytes), f.sha256);
            assert_eq!(bytes.len() as u64, f.bytes);
            first.push(bytes);
        }
        let manifest1 = std::fs::read(dir.path().join("manifest.json")).expect("manifest");
        // STL reads back with the same triangles.
        let stl = stl_io::read_stl(&mut Cursor::new(&first[0])).expect("stl");
        assert_eq!(stl.faces.len(), 4);
        // 3MF reads back with the same object.
        let models = threemf::read(Cursor::new(&first[1])).expect("3mf");
        let obj = &models[0].resources.object[0];
        assert_eq!(obj.name.as_deref(), Some("cut guide/1"));
        assert_eq!(obj.mesh.as_ref().expect("mesh").triangles.triangle.len(), 4);
        // Again: same bytes.
        let m2 = export_guides(dir.path(), &info, &guides).expect("export");
        for (f, bytes) in m2.files.iter().zip(&first) {
            assert_eq!(&std::fs::read(dir.path().join(&f.file)).expect("read"), bytes);
        }
        assert_eq!(
            std::fs::read(dir.path().join("manifest.json")).expect("manifest"),
            manifest1
        );
    }

    #[test]
    fn empty_and_duplicate_guides_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let info = ExportInfo {
            case_id: "C1",
            plan_sha256: "x",
            software_version: "0",
        };
        let empty = Mesh::default();
        let err = export_guides(
            dir.path(),
            &info,
            &[GuideExport {
                name: "g",
                mesh: &empty,
                checks: serde_json::Value::Null,
            }],
        )
        .expect_err("empty");
        assert!(err.to_string().contains("'g' is empty"));
        let m = tetra();
        let two = [
            GuideExport {
                name: "a b",
                mesh: &m,
                checks: serde_json::Value::Null,
            },
            GuideExport {
                name: "a_b",
                mesh: &m,
                checks: serde_json::Value::Null,
            },
        ];
        assert!(matches!(
            export_guides(dir.path(), &info, &two),
            Err(ExportError::Duplicate(_))
        ));
    }
}
