//! The plan as one glTF 2.0 binary (`.glb`): bone, structures, planes, drills, guides and anatomical models, named and
//! coloured, for a browser, Blender or a VR headset.
//!
//! Why written here and not with a glTF crate: a `.glb` is a 12-byte header, one JSON chunk and one binary chunk; the
//! little this needs (positions, indices, one material per part, a node tree) is shorter to write with `serde_json`
//! than to assemble in `gltf-json`'s index types, and the test reads the file back with the `gltf` crate, a reader
//! that shares no code with this writer. The same parts give the same bytes (the JSON's keys are sorted; nothing
//! time- or machine-dependent is written).
//!
//! Units and frame: vertex positions are patient LPS millimetres (as `f32`), so a third party can compare them with
//! the STL and 3MF files. The root node scales by 0.001 and turns superior to glTF's +Y and anterior to +Z, so a
//! viewer shows the case upright, life size in metres, seen from the front.

use std::borrow::Cow;

use serde_json::{json, Value};

use crate::mesh::Mesh;

/// One named, coloured mesh of the scene, in a group (a node under the root: "anatomy", "plan", "guides", ...).
#[derive(Clone, Debug)]
pub struct GltfPart<'a> {
    /// The group it is shown under.
    pub group: String,
    /// Its name (node, mesh and material).
    pub name: String,
    /// Its triangles, patient LPS mm.
    pub mesh: Cow<'a, Mesh>,
    /// Linear RGBA, each 0..1; alpha below 1 is drawn blended, and such parts are shown from both sides.
    pub colour_rgba: [f32; 4],
}

/// The root node's rotation (x, y, z, w): -90 deg about x, taking patient superior (+z) to glTF up (+Y) and anterior
/// (-y) to glTF +Z.
pub const ROOT_ROTATION_XYZW: [f64; 4] = [
    -std::f64::consts::FRAC_1_SQRT_2,
    0.0,
    0.0,
    std::f64::consts::FRAC_1_SQRT_2,
];
/// The root node's scale: millimetres to metres.
pub const ROOT_SCALE: f64 = 0.001;

const GLB_MAGIC: u32 = 0x4654_6C67; // "glTF"
const CHUNK_JSON: u32 = 0x4E4F_534A; // "JSON"
const CHUNK_BIN: u32 = 0x004E_4942; // "BIN\0"
const FLOAT: u32 = 5126;
const UNSIGNED_INT: u32 = 5125;
const ARRAY_BUFFER: u32 = 34962;
const ELEMENT_ARRAY_BUFFER: u32 = 34963;

/// `parts` as a `.glb` under a root node named `root_name`, with `extras` (JSON) on the asset. Parts without
/// triangles are left out (glTF has no empty accessor).
pub fn glb_bytes(root_name: &str, parts: &[GltfPart<'_>], extras: Value) -> Vec<u8> {
    let mut bin: Vec<u8> = Vec::new();
    let (mut accessors, mut views, mut meshes, mut materials, mut nodes) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), vec![Value::Null]);
    let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
    for part in parts.iter().filter(|p| !p.mesh.is_empty()) {
        let m = part.mesh.as_ref();
        // Positions (f32, with the bounds glTF requires), then indices; each view 4-byte aligned.
        let mut lo = [f32::INFINITY; 3];
        let mut hi = [f32::NEG_INFINITY; 3];
        let start = bin.len();
        for p in &m.positions {
            for k in 0..3 {
                let x = p[k] as f32;
                lo[k] = lo[k].min(x);
                hi[k] = hi[k].max(x);
                bin.extend_from_slice(&x.to_le_bytes());
            }
        }
        views.push(json!({"buffer": 0, "byteOffset": start, "byteLength": bin.len() - start, "target": ARRAY_BUFFER}));
        accessors.push(json!({
            "bufferView": views.len() - 1, "componentType": FLOAT, "count": m.positions.len(), "type": "VEC3",
            "min": lo, "max": hi,
        }));
        let start = bin.len();
        for t in &m.triangles {
            for i in t {
                bin.extend_from_slice(&i.to_le_bytes());
            }
        }
        views.push(
            json!({"buffer": 0, "byteOffset": start, "byteLength": bin.len() - start, "target": ELEMENT_ARRAY_BUFFER}),
        );
        accessors.push(json!({
            "bufferView": views.len() - 1, "componentType": UNSIGNED_INT, "count": 3 * m.triangles.len(),
            "type": "SCALAR",
        }));
        let translucent = part.colour_rgba[3] < 1.0;
        let mut material = json!({
            "name": part.name,
            "pbrMetallicRoughness": {
                "baseColorFactor": part.colour_rgba.map(f64::from),
                "metallicFactor": 0.0,
                "roughnessFactor": 0.7,
            },
        });
        if translucent {
            material["alphaMode"] = json!("BLEND");
            material["doubleSided"] = json!(true);
        }
        materials.push(material);
        meshes.push(json!({
            "name": part.name,
            "primitives": [{
                "attributes": {"POSITION": accessors.len() - 2},
                "indices": accessors.len() - 1,
                "material": materials.len() - 1,
            }],
        }));
        nodes.push(json!({"name": part.name, "mesh": meshes.len() - 1}));
        let node = nodes.len() - 1;
        match groups.iter_mut().find(|(g, _)| *g == part.group) {
            Some((_, members)) => members.push(node),
            None => groups.push((part.group.clone(), vec![node])),
        }
    }
    let mut root_children = Vec::with_capacity(groups.len());
    for (name, children) in groups {
        nodes.push(json!({"name": name, "children": children}));
        root_children.push(nodes.len() - 1);
    }
    nodes[0] = json!({
        "name": root_name,
        "rotation": ROOT_ROTATION_XYZW,
        "scale": [ROOT_SCALE, ROOT_SCALE, ROOT_SCALE],
        "children": root_children,
    });
    let mut doc = json!({
        "asset": {
            "version": "2.0",
            "generator": concat!("guidesmith ", env!("CARGO_PKG_VERSION")),
            "extras": extras,
        },
        "scene": 0,
        "scenes": [{"name": root_name, "nodes": [0]}],
        "nodes": nodes,
        "meshes": meshes,
        "materials": materials,
        "accessors": accessors,
        "bufferViews": views,
        "buffers": [{"byteLength": bin.len()}],
    });
    if meshes_is_empty(&doc) {
        // glTF requires these arrays to be absent rather than empty.
        for key in ["meshes", "materials", "accessors", "bufferViews", "buffers"] {
            if let Some(o) = doc.as_object_mut() {
                o.remove(key);
            }
        }
    }
    let mut json_chunk = doc.to_string().into_bytes();
    while !json_chunk.len().is_multiple_of(4) {
        json_chunk.push(b' ');
    }
    while !bin.len().is_multiple_of(4) {
        bin.push(0);
    }
    let with_bin = !bin.is_empty();
    let total = 12 + 8 + json_chunk.len() + if with_bin { 8 + bin.len() } else { 0 };
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&GLB_MAGIC.to_le_bytes());
    out.extend_from_slice(&2u32.to_le_bytes());
    out.extend_from_slice(&(total as u32).to_le_bytes());
    out.extend_from_slice(&(json_chunk.len() as u32).to_le_bytes());
    out.extend_from_slice(&CHUNK_JSON.to_le_bytes());
    out.extend_from_slice(&json_chunk);
    if with_bin {
        out.extend_from_slice(&(bin.len() as u32).to_le_bytes());
        out.extend_from_slice(&CHUNK_BIN.to_le_bytes());
        out.extend_from_slice(&bin);
    }
    out
}

fn meshes_is_empty(doc: &Value) -> bool {
    doc["meshes"].as_array().is_none_or(Vec::is_empty)
}

/// sRGB colour bytes (as the renders use) to glTF's linear colour factors with `alpha`.
pub fn linear_rgba(srgb: [u8; 3], alpha: f32) -> [f32; 4] {
    let lin = |c: u8| {
        let c = f32::from(c) / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    [lin(srgb[0]), lin(srgb[1]), lin(srgb[2]), alpha]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tetra() -> Mesh {
        Mesh::new(
            vec![[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            vec![[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]],
        )
        .unwrap()
    }

    #[test]
    fn a_glb_has_its_header_chunks_and_lengths() {
        let m = tetra();
        let parts = [GltfPart {
            group: "guides".into(),
            name: "g".into(),
            mesh: Cow::Borrowed(&m),
            colour_rgba: [1.0, 0.0, 0.0, 1.0],
        }];
        let glb = glb_bytes("CASE-1", &parts, json!({}));
        assert_eq!(&glb[0..4], b"glTF");
        assert_eq!(u32::from_le_bytes(glb[8..12].try_into().unwrap()) as usize, glb.len());
        let json_len = u32::from_le_bytes(glb[12..16].try_into().unwrap()) as usize;
        let doc: Value = serde_json::from_slice(&glb[20..20 + json_len]).unwrap();
        assert_eq!(doc["nodes"][0]["name"], "CASE-1");
        assert_eq!(doc["accessors"][0]["count"], 4);
        assert_eq!(doc["accessors"][1]["count"], 12);
        let bin_len = u32::from_le_bytes(glb[20 + json_len..24 + json_len].try_into().unwrap()) as usize;
        assert_eq!(bin_len, 4 * 12 + 4 * 12);
        assert_eq!(glb, glb_bytes("CASE-1", &parts, json!({})), "deterministic");
        let empty = glb_bytes("CASE-1", &[], json!({}));
        let json_len = u32::from_le_bytes(empty[12..16].try_into().unwrap()) as usize;
        assert_eq!(empty.len(), 20 + json_len, "no binary chunk without meshes");
    }
}
