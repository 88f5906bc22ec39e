//! The 3MF package of all guides, packed byte-for-byte reproducibly.
//!
//! The model is built from `threemf`'s types and serialised with quick-xml as `threemf::write` does, but the zip is
//! written here: every entry gets the same fixed timestamp (1980-01-01, the zip epoch), unix permissions 0644 and
//! "unix" as the host system, so the bytes depend on nothing but the guides. The part names follow the 3MF core
//! specification's conventions (`[Content_Types].xml`, `_rels/.rels`, `3D/3dmodel.model`).
//!
//! Metadata uses only the specification's well-known names (`Title`, `Application`, `Description`), because any
//! other name must be namespace-qualified and `threemf::Model` cannot declare extra namespaces.

use std::io::{Cursor, Write};

use quick_xml::events::{BytesDecl, Event};
use quick_xml::se::Serializer;
use quick_xml::Writer;
use rayon::prelude::*;
use serde::Serialize;
use threemf::model::{Build, Item, Metadata, Model, Object, Resources, Triangle, Triangles, Unit, Vertex, Vertices};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, System, ZipArchive, ZipWriter};

use super::{ExportInfo, GuideExport, COORDINATE_FRAME};

/// Path of the model part inside the package.
pub const THREE_MF_MODEL_PATH: &str = "3D/3dmodel.model";

/// Unix permissions of every entry (rw-r--r--), fixed so the package does not depend on the umask.
const ENTRY_PERMISSIONS: u32 = 0o644;
/// Deflate level of every entry: zlib's default, a fixed choice so the bytes do not change with crate defaults.
const DEFLATE_LEVEL: i64 = 6;

const CONTENT_TYPES_XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">
  <Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>
  <Default Extension="model" ContentType="application/vnd.ms-package.3dmanufacturing-3dmodel+xml"/>
</Types>
"#;

const RELS_XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
  <Relationship Target="/3D/3dmodel.model" Id="rel0" Type="http://schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel"/>
</Relationships>
"#;

/// A zip archive of `entries` (name, bytes) in the order given, byte-for-byte reproducible: every entry deflated at
/// a fixed level with the zip epoch as its time, permissions 0644 and "unix" as the host system. Errors as text.
pub fn zip_bytes(entries: &[(&str, &[u8])]) -> Result<Vec<u8>, String> {
    // Each entry is compressed on its own, side by side (deflate is most of a bundle's time), and copied into the
    // archive as it was compressed, in the given order: the result does not depend on the thread count.
    let singles: Vec<Result<Vec<u8>, String>> = entries
        .par_iter()
        .map(|(name, bytes)| {
            let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
            zip.start_file(*name, entry_options())
                .map_err(|e| format!("zip entry {name}: {e}"))?;
            zip.write_all(bytes).map_err(|e| format!("zip entry {name}: {e}"))?;
            Ok(zip.finish().map_err(|e| format!("zip entry {name}: {e}"))?.into_inner())
        })
        .collect();
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    for (single, (name, _)) in singles.into_iter().zip(entries) {
        let mut archive = ZipArchive::new(Cursor::new(single?)).map_err(|e| format!("zip entry {name}: {e}"))?;
        let file = archive.by_index_raw(0).map_err(|e| format!("zip entry {name}: {e}"))?;
        zip.raw_copy_file(file).map_err(|e| format!("zip entry {name}: {e}"))?;
    }
    let cursor = zip.finish().map_err(|e| format!("zip: {e}"))?;
    Ok(cursor.into_inner())
}

/// Every entry: deflated, at the zip epoch, `rw-r--r--`, made on Unix (nothing of the machine or the time).
fn entry_options() -> SimpleFileOptions {
    SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .compression_level(Some(DEFLATE_LEVEL))
        .last_modified_time(DateTime::DEFAULT)
        .unix_permissions(ENTRY_PERMISSIONS)
        .system(System::Unix)
}

/// The 3MF object ID of the guide at `index` (IDs start at 1).
pub(super) fn object_id(index: usize) -> usize {
    index + 1
}

/// The bytes of the 3MF package holding `guides` (one object and one build item each, named by the guide), in
/// millimetres. Errors are returned as text for the caller to name the file.
pub fn three_mf_bytes(info: &ExportInfo, guides: &[GuideExport]) -> Result<Vec<u8>, String> {
    let model_xml = model_xml(&model(info, guides))?;
    zip_bytes(&[
        ("[Content_Types].xml", CONTENT_TYPES_XML.as_bytes()),
        ("_rels/.rels", RELS_XML.as_bytes()),
        (THREE_MF_MODEL_PATH, model_xml.as_bytes()),
    ])
}

fn model(info: &ExportInfo, guides: &[GuideExport]) -> Model {
    let names: Vec<&str> = guides.iter().map(|g| g.name).collect();
    let metadata = vec![
        Metadata {
            name: "Title".to_string(),
            value: Some(format!(
                "case {} surgical guides{}",
                info.case_id,
                if info.release.is_draft() {
                    " (DRAFT, not for use on a patient)"
                } else {
                    ""
                }
            )),
        },
        Metadata {
            name: "Application".to_string(),
            value: Some(format!("guidesmith {}", info.software_version)),
        },
        Metadata {
            name: "Description".to_string(),
            value: Some(format!(
                "case {}; guides: {}; plan sha256 {}; software guidesmith {}; frame {COORDINATE_FRAME}, millimetre",
                info.case_id,
                names.join(", "),
                info.plan_sha256.to_ascii_lowercase(),
                info.software_version
            )),
        },
    ];
    let object = guides
        .iter()
        .enumerate()
        .map(|(i, g)| Object {
            id: object_id(i),
            name: Some(g.name.to_string()),
            mesh: Some(threemf::Mesh {
                vertices: Vertices {
                    vertex: g.mesh.positions.iter().map(|&[x, y, z]| Vertex { x, y, z }).collect(),
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
            ..Default::default()
        })
        .collect();
    let item = (0..guides.len())
        .map(|i| Item {
            objectid: object_id(i),
            transform: None,
            partnumber: None,
        })
        .collect();
    Model {
        // No materials are used, so no materials namespace.
        xmlns_m: None,
        metadata,
        resources: Resources {
            object,
            basematerials: None,
        },
        build: Build { item },
        unit: Unit::Millimeter,
        ..Default::default()
    }
}

fn model_xml(model: &Model) -> Result<String, String> {
    let mut body = String::new();
    let mut ser = Serializer::with_root(&mut body, Some("model")).map_err(|e| format!("3mf model: {e}"))?;
    ser.indent(' ', 1);
    model.serialize(ser).map_err(|e| format!("3mf model: {e}"))?;
    let mut out = Vec::with_capacity(body.len() + 64);
    let mut writer = Writer::new(&mut out);
    writer
        .write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))
        .map_err(|e| format!("3mf model: {e}"))?;
    out.push(b'\n');
    out.extend_from_slice(body.as_bytes());
    out.push(b'\n');
    String::from_utf8(out).map_err(|e| format!("3mf model: {e}"))
}
