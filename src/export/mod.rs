//! Export of finished guides for a print lab: one binary STL per guide, one 3MF holding all of them, and a
//! `manifest.json` that lists every written file with its SHA-256.
//!
//! Why it is built this way:
//! - A print lab (and a regulatory file) must be able to prove that the file it printed is the file that was checked,
//!   so the manifest carries the hash and size of every file, the plan's hash and the software version, and it is
//!   written *last*: a folder with a manifest is complete, a folder without one is not.
//! - The same plan must give the same bytes on every run (reviewers diff exports), so nothing time- or
//!   machine-dependent goes in: the STL header is built from the software version, case ID and guide name only, and
//!   the 3MF zip is packed here with a fixed timestamp, permissions and host system instead of through
//!   `threemf::write`, which stamps the current time into every zip entry (when `zip`'s `time` feature is on anywhere
//!   in the build) and names the model part `3D/model.model` rather than the conventional `3D/3dmodel.model`.
//!   The 3MF model itself is `threemf`'s types, serialised with quick-xml exactly as `threemf` does, so
//!   `threemf::read` reads it back.
//! - Only the case ID identifies the case: the inputs have no field for a patient name, ID or date, and nothing from
//!   the environment (time, user, host, output path) is written.
//! - Every file goes through [`write_atomic`], so a crash never leaves a truncated file under its final name.
//!
//! Positions are patient LPS millimetres, written as they are (3MF unit `millimeter`); STL rounds them to `f32`.

pub mod gltf;
mod threemf_pack;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::atomic::write_atomic;
use crate::mesh::{write_stl_binary, BoundingBox, Mesh};
use crate::template::{ResolvedParameter, ResolvedParams};

pub use threemf_pack::{three_mf_bytes, zip_bytes, THREE_MF_MODEL_PATH};

/// Name of the manifest file in the export folder.
pub const MANIFEST_FILE_NAME: &str = "manifest.json";
/// Identifies the manifest layout; bumped when a field changes meaning (2: guides list their template, printer and
/// every resolved parameter; review images are listed as files).
pub const MANIFEST_FORMAT: &str = "guidesmith-export-manifest/3";
/// Units of every length in the exported files and the manifest.
pub const UNITS: &str = "millimetre";
/// Coordinate frame of every position in the exported files and the manifest.
pub const COORDINATE_FRAME: &str = "DICOM patient LPS";
/// Length of a SHA-256 digest written as hexadecimal digits.
const SHA256_HEX_LEN: usize = 64;

/// One finished guide to export.
#[derive(Clone, Debug)]
pub struct GuideExport<'a> {
    /// The guide's name from the plan (e.g. `"LeFort-cutting"`); names the STL file and the 3MF object.
    pub name: &'a str,
    /// The closed, outward guide mesh in patient LPS mm.
    pub mesh: &'a Mesh,
    /// The template parameters it was built with (template, printer profile, every value with its unit).
    pub params: &'a ResolvedParams,
    /// The printer profile the plan names for it; differs from `params.printer` when the build overrode it.
    pub printer_in_plan: &'a str,
    /// The guide's check results, put into the manifest as they are.
    pub checks: serde_json::Value,
}

/// A further file of the export (a review image), written before the manifest and listed in it.
#[derive(Clone, Debug)]
pub struct Attachment {
    /// Path inside the export folder, `/`-separated (`renders/CASE_guide.png`); its folder is created.
    pub name: String,
    /// The file's bytes.
    pub bytes: Vec<u8>,
}

/// Whether guides are released for production or are drafts, as the manifest records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Release {
    /// Approved by a surgeon for production.
    Approved {
        /// The approving surgeon, as they signed.
        surgeon: String,
        /// When, UTC (RFC 3339).
        at_utc: String,
        /// The design binding the approval is bound to (see `docs/APPROVAL.md`).
        design_sha256: String,
    },
    /// Not approved: not for use on a patient. File names carry `_DRAFT`.
    Draft {
        /// The design binding of what was built.
        design_sha256: String,
    },
}

impl Release {
    /// `true` for a draft.
    pub fn is_draft(&self) -> bool {
        matches!(self, Release::Draft { .. })
    }

    /// What a file name carries before its extension: `_DRAFT` for a draft, nothing for a release.
    pub fn file_suffix(&self) -> &'static str {
        if self.is_draft() {
            "_DRAFT"
        } else {
            ""
        }
    }
}

/// What the export says about the case and the software; nothing else about the case is written.
#[derive(Clone, Copy, Debug)]
pub struct ExportInfo<'a> {
    /// The case ID: the only identifier written (file names, STL header, 3MF metadata, manifest).
    pub case_id: &'a str,
    /// SHA-256 of the plan the guides were made from (64 hexadecimal digits).
    pub plan_sha256: &'a str,
    /// The software version (`env!("CARGO_PKG_VERSION")` of the caller).
    pub software_version: &'a str,
    /// Released or draft.
    pub release: &'a Release,
}

/// One file written by [`export_guides`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportedFile {
    /// Where it was written.
    pub path: PathBuf,
    /// SHA-256 of its bytes, lower-case hexadecimal.
    pub sha256: String,
    /// Its size in bytes.
    pub size_bytes: u64,
}

/// What [`export_guides`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportSummary {
    /// The STL files (one per guide, in the order given) and then the 3MF.
    pub files: Vec<ExportedFile>,
    /// The manifest, written last.
    pub manifest: ExportedFile,
}

/// The manifest written beside the exported files (`manifest.json`). Field order is the key order in the file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_FORMAT`].
    pub format: String,
    /// The case ID.
    pub case_id: String,
    /// Always `"guidesmith"`.
    pub software: String,
    /// The software version that wrote the export.
    pub software_version: String,
    /// SHA-256 of the plan, lower-case hexadecimal.
    pub plan_sha256: String,
    /// Approved for production, or a draft.
    pub release: Release,
    /// [`UNITS`].
    pub units: String,
    /// [`COORDINATE_FRAME`].
    pub coordinate_frame: String,
    /// Every written file except the manifest itself.
    pub files: Vec<ManifestFile>,
    /// One entry per guide, in the order given.
    pub guides: Vec<ManifestGuide>,
}

/// One file in the manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// File name inside the export folder.
    pub name: String,
    /// SHA-256 of its bytes, lower-case hexadecimal.
    pub sha256: String,
    /// Its size in bytes.
    pub size_bytes: u64,
}

/// One guide in the manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ManifestGuide {
    /// The guide's name from the plan.
    pub name: String,
    /// Its STL file name.
    pub stl_file: String,
    /// Its object ID in the 3MF.
    pub three_mf_object_id: usize,
    /// Number of triangles.
    pub triangle_count: usize,
    /// Number of vertices.
    pub vertex_count: usize,
    /// Enclosed volume, mm^3 (signed; positive for a closed outward mesh).
    pub volume_mm3: f64,
    /// Axis-aligned bounding box in patient LPS mm.
    pub bounding_box: BoundingBox,
    /// Template name.
    pub template: String,
    /// Template version.
    pub template_version: String,
    /// The printer profile it was built for.
    pub printer: String,
    /// The printer profile the plan names; differs from `printer` when the build overrode it (`--printer`).
    pub printer_in_plan: String,
    /// Every template parameter as resolved: value, unit and source (template default, printer profile, plan).
    pub parameters: Vec<ResolvedParameter>,
    /// The guide's check results as given.
    pub checks: serde_json::Value,
}

/// Errors of the export. Each names the guide, value or path at fault.
#[derive(Debug, Error)]
pub enum ExportError {
    /// The export folder cannot be created.
    #[error("cannot create the export folder {path}: {error}")]
    Folder {
        /// The folder.
        path: PathBuf,
        /// The underlying error (part of the message).
        error: std::io::Error,
    },
    /// A file cannot be written.
    #[error("cannot write {path}: {error}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The underlying error (part of the message).
        error: std::io::Error,
    },
    /// Nothing to export.
    #[error("no guides to export")]
    NoGuides,
    /// The case ID is empty or has characters that are not allowed.
    #[error("case id {case_id:?} is not usable: {reason}")]
    InvalidCaseId {
        /// The case ID given.
        case_id: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The plan hash is not a SHA-256 digest.
    #[error("plan hash {value:?} is not a sha-256 digest (64 hexadecimal digits)")]
    InvalidPlanHash {
        /// The value given.
        value: String,
    },
    /// The software version is empty or not printable ASCII.
    #[error("software version {value:?} is not usable: it must be non-empty printable ascii")]
    InvalidVersion {
        /// The value given.
        value: String,
    },
    /// A guide has an empty name.
    #[error("guide {index} has an empty name")]
    EmptyName {
        /// Position of the guide in the list.
        index: usize,
    },
    /// Two guides have the same name.
    #[error("two guides are named {name:?}")]
    DuplicateName {
        /// The repeated name.
        name: String,
    },
    /// Two different guide names give the same file name once sanitised.
    #[error("guides {first:?} and {second:?} would both be written to {file_name}")]
    FileNameClash {
        /// The first guide.
        first: String,
        /// The second guide.
        second: String,
        /// The shared file name.
        file_name: String,
    },
    /// A guide's mesh has no triangles.
    #[error("guide {name:?} has an empty mesh (no triangles)")]
    EmptyMesh {
        /// The guide.
        name: String,
    },
    /// A guide's mesh is malformed or cannot be encoded.
    #[error("guide {name:?}: {detail}")]
    InvalidMesh {
        /// The guide.
        name: String,
        /// What is wrong (the mesh or STL error's message).
        detail: String,
    },
    /// The 3MF cannot be encoded.
    #[error("cannot encode {file_name}: {detail}")]
    ThreeMf {
        /// The 3MF file name.
        file_name: String,
        /// What failed.
        detail: String,
    },
    /// An attachment's name is not a plain relative path inside the export folder, or clashes with another file.
    #[error(
        "attachment {name:?} is not a plain relative path of [A-Za-z0-9._-] parts, or clashes with another file of \
         the export"
    )]
    InvalidAttachment {
        /// The name given.
        name: String,
    },
    /// The manifest cannot be encoded.
    #[error("cannot encode the manifest: {detail}")]
    Manifest {
        /// What failed.
        detail: String,
    },
}

/// Writes one binary STL per guide (`<case_id>_<name>.stl`), one 3MF with all guides (`<case_id>_guides.3mf`), the
/// attachments, and `manifest.json` (last) into `out_dir`, creating the folders if needed: the files of
/// [`export_files`], each written atomically.
pub fn export_guides(
    out_dir: &Path,
    info: &ExportInfo,
    guides: &[GuideExport],
    attachments: &[Attachment],
) -> Result<ExportSummary, ExportError> {
    let mut outputs = export_files(info, guides, attachments)?;
    let manifest = outputs.pop().expect("the manifest comes last");
    std::fs::create_dir_all(out_dir).map_err(|error| ExportError::Folder {
        path: out_dir.to_path_buf(),
        error,
    })?;
    let mut files = Vec::with_capacity(outputs.len());
    for f in &outputs {
        let path = out_dir.join(&f.name);
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder).map_err(|error| ExportError::Folder {
                path: folder.to_path_buf(),
                error,
            })?;
        }
        files.push(write_file(&path, &f.bytes)?);
    }
    let manifest = write_file(&out_dir.join(&manifest.name), &manifest.bytes)?;
    Ok(ExportSummary { files, manifest })
}

/// The files of an export, in memory and in order: one binary STL per guide (`<case_id>_<name>.stl`), one 3MF with
/// all guides (`<case_id>_guides.3mf`), the attachments, and last `manifest.json` with the hash of each.
///
/// File names are sanitised to `[A-Za-z0-9._-]` (anything else becomes `_`). Refused: no guides, an empty or
/// unusable case ID, a plan hash that is not 64 hex digits, empty or duplicate guide names (also after sanitising),
/// an empty or invalid mesh, an attachment name that is not a plain relative path.
pub fn export_files(
    info: &ExportInfo,
    guides: &[GuideExport],
    attachments: &[Attachment],
) -> Result<Vec<Attachment>, ExportError> {
    let plan_sha256 = validate_info(info)?;
    let planned = plan_files(info, guides)?;
    for a in attachments {
        let plain = a
            .name
            .split('/')
            .all(|part| !part.is_empty() && part != ".." && sanitize_file_component(part) == part);
        if !plain || a.name == MANIFEST_FILE_NAME || planned.contains(&a.name) {
            return Err(ExportError::InvalidAttachment { name: a.name.clone() });
        }
    }

    // Encode everything before writing anything, so a refused guide leaves the folder untouched.
    let mut outputs: Vec<(String, Vec<u8>)> = Vec::with_capacity(guides.len() + 1);
    for (guide, stl_name) in guides.iter().zip(&planned.stl_names) {
        outputs.push((stl_name.clone(), stl_bytes(info, guide)?));
    }
    let three_mf = three_mf_bytes(info, guides).map_err(|detail| ExportError::ThreeMf {
        file_name: planned.three_mf_name.clone(),
        detail,
    })?;
    outputs.push((planned.three_mf_name.clone(), three_mf));

    let mut files: Vec<Attachment> = outputs
        .into_iter()
        .map(|(name, bytes)| Attachment { name, bytes })
        .collect();
    files.extend(attachments.iter().cloned());
    let manifest = Manifest {
        format: MANIFEST_FORMAT.to_string(),
        case_id: info.case_id.to_string(),
        software: "guidesmith".to_string(),
        software_version: info.software_version.to_string(),
        plan_sha256,
        release: info.release.clone(),
        units: UNITS.to_string(),
        coordinate_frame: COORDINATE_FRAME.to_string(),
        files: files
            .iter()
            .map(|f| ManifestFile {
                name: f.name.clone(),
                sha256: sha256_hex(&f.bytes),
                size_bytes: f.bytes.len() as u64,
            })
            .collect(),
        guides: guides
            .iter()
            .zip(&planned.stl_names)
            .enumerate()
            .map(|(i, (g, stl_file))| manifest_guide(g, stl_file, threemf_pack::object_id(i)))
            .collect(),
    };
    let mut manifest_bytes =
        serde_json::to_vec_pretty(&manifest).map_err(|e| ExportError::Manifest { detail: e.to_string() })?;
    manifest_bytes.push(b'\n');
    files.push(Attachment {
        name: MANIFEST_FILE_NAME.to_string(),
        bytes: manifest_bytes,
    });
    Ok(files)
}

/// Reads and parses a manifest written by [`export_guides`].
pub fn read_manifest(path: &Path) -> Result<Manifest, ExportError> {
    let bytes = std::fs::read(path).map_err(|error| ExportError::Write {
        path: path.to_path_buf(),
        error,
    })?;
    serde_json::from_slice(&bytes).map_err(|e| ExportError::Manifest {
        detail: format!("{}: {e}", path.display()),
    })
}

/// SHA-256 of `bytes` as lower-case hexadecimal.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// `name` with every character outside `[A-Za-z0-9._-]` replaced by `_`.
pub fn sanitize_file_component(name: &str) -> String {
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

/// The 80-byte STL header text: software, version, case and guide; no date.
pub fn stl_header_text(info: &ExportInfo, guide_name: &str) -> String {
    // DRAFT first: the header is cut at 80 bytes.
    format!(
        "{}guidesmith {} case {} guide {}",
        if info.release.is_draft() { "DRAFT " } else { "" },
        info.software_version,
        info.case_id,
        guide_name
    )
}

/// Checks the case ID, plan hash and version; returns the plan hash in lower case.
fn validate_info(info: &ExportInfo) -> Result<String, ExportError> {
    if info.case_id.is_empty() {
        return Err(ExportError::InvalidCaseId {
            case_id: info.case_id.to_string(),
            reason: "it is empty",
        });
    }
    if sanitize_file_component(info.case_id) != info.case_id {
        return Err(ExportError::InvalidCaseId {
            case_id: info.case_id.to_string(),
            reason: "only letters, digits, '.', '_' and '-' are allowed",
        });
    }
    if info.case_id.starts_with('.') {
        return Err(ExportError::InvalidCaseId {
            case_id: info.case_id.to_string(),
            reason: "it must not start with '.' (hidden files)",
        });
    }
    if info.plan_sha256.len() != SHA256_HEX_LEN || !info.plan_sha256.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ExportError::InvalidPlanHash {
            value: info.plan_sha256.to_string(),
        });
    }
    if info.software_version.is_empty() || !info.software_version.chars().all(|c| c.is_ascii_graphic()) {
        return Err(ExportError::InvalidVersion {
            value: info.software_version.to_string(),
        });
    }
    Ok(info.plan_sha256.to_ascii_lowercase())
}

/// File names of an export, checked for clashes.
struct PlannedFiles {
    stl_names: Vec<String>,
    three_mf_name: String,
}

impl PlannedFiles {
    fn contains(&self, name: &str) -> bool {
        self.three_mf_name == name || self.stl_names.iter().any(|n| n == name)
    }
}

fn plan_files(info: &ExportInfo, guides: &[GuideExport]) -> Result<PlannedFiles, ExportError> {
    if guides.is_empty() {
        return Err(ExportError::NoGuides);
    }
    let suffix = info.release.file_suffix();
    let three_mf_name = format!("{}_guides{suffix}.3mf", info.case_id);
    // (file name, guide name) of every file so far, in a sorted vector: no hash map decides anything here.
    let mut taken: Vec<(String, String)> = vec![(three_mf_name.clone(), "(the 3MF of all guides)".to_string())];
    let mut stl_names = Vec::with_capacity(guides.len());
    for (index, g) in guides.iter().enumerate() {
        if g.name.is_empty() {
            return Err(ExportError::EmptyName { index });
        }
        if guides[..index].iter().any(|o| o.name == g.name) {
            return Err(ExportError::DuplicateName {
                name: g.name.to_string(),
            });
        }
        if g.mesh.triangles.is_empty() {
            return Err(ExportError::EmptyMesh {
                name: g.name.to_string(),
            });
        }
        g.mesh.validate().map_err(|e| ExportError::InvalidMesh {
            name: g.name.to_string(),
            detail: e.to_string(),
        })?;
        let file_name = format!("{}_{}{suffix}.stl", info.case_id, sanitize_file_component(g.name));
        // Case-insensitive file systems (print labs use them) would merge names differing only in case.
        let key = file_name.to_ascii_lowercase();
        match taken.binary_search_by(|(k, _)| k.as_str().cmp(&key)) {
            Ok(i) => {
                return Err(ExportError::FileNameClash {
                    first: taken[i].1.clone(),
                    second: g.name.to_string(),
                    file_name,
                })
            }
            Err(i) => taken.insert(i, (key, g.name.to_string())),
        }
        stl_names.push(file_name);
    }
    Ok(PlannedFiles {
        stl_names,
        three_mf_name,
    })
}

fn stl_bytes(info: &ExportInfo, guide: &GuideExport) -> Result<Vec<u8>, ExportError> {
    let mut bytes = Vec::new();
    write_stl_binary(guide.mesh, &mut bytes, &stl_header_text(info, guide.name)).map_err(|e| {
        ExportError::InvalidMesh {
            name: guide.name.to_string(),
            detail: e.to_string(),
        }
    })?;
    Ok(bytes)
}

fn manifest_guide(g: &GuideExport, stl_file: &str, three_mf_object_id: usize) -> ManifestGuide {
    let bounding_box = g.mesh.bounding_box().unwrap_or(BoundingBox {
        min_mm: [0.0; 3],
        max_mm: [0.0; 3],
    });
    ManifestGuide {
        name: g.name.to_string(),
        stl_file: stl_file.to_string(),
        three_mf_object_id,
        triangle_count: g.mesh.triangle_count(),
        vertex_count: g.mesh.vertex_count(),
        volume_mm3: g.mesh.signed_volume_mm3(),
        bounding_box,
        template: g.params.template_name.clone(),
        template_version: g.params.template_version.clone(),
        printer: g.params.printer.clone(),
        printer_in_plan: g.printer_in_plan.to_string(),
        parameters: g.params.parameters.clone(),
        checks: g.checks.clone(),
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<ExportedFile, ExportError> {
    write_atomic(path, |w| w.write_all(bytes)).map_err(|error| ExportError::Write {
        path: path.to_path_buf(),
        error,
    })?;
    Ok(ExportedFile {
        path: path.to_path_buf(),
        sha256: sha256_hex(bytes),
        size_bytes: bytes.len() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> ExportInfo<'static> {
        ExportInfo {
            case_id: "C-7",
            plan_sha256: "ab".repeat(32).leak(),
            software_version: "0.1.0",
            release: Box::leak(Box::new(Release::Approved {
                surgeon: "Dr S".into(),
                at_utc: "2026-12-07T08:15:00Z".into(),
                design_sha256: "cd".repeat(32),
            })),
        }
    }

    #[test]
    fn sanitising_replaces_everything_outside_the_allowed_set() {
        assert_eq!(sanitize_file_component("LeFort cutting/ü.v2"), "LeFort_cutting__.v2");
        assert_eq!(sanitize_file_component("a-b_c.9"), "a-b_c.9");
    }

    #[test]
    fn sha256_of_the_empty_string_is_the_standard_digest() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn unusable_case_id_plan_hash_and_version_are_refused_naming_the_value() {
        let mut bad = info();
        bad.case_id = "Doe^John";
        let e = validate_info(&bad).expect_err("caret refused");
        assert!(e.to_string().contains("Doe^John"), "{e}");
        let mut bad = info();
        bad.plan_sha256 = "xyz";
        let e = validate_info(&bad).expect_err("short hash refused");
        assert!(e.to_string().contains("\"xyz\""), "{e}");
        let mut bad = info();
        bad.software_version = "0.1 beta";
        assert!(matches!(validate_info(&bad), Err(ExportError::InvalidVersion { .. })));
        assert_eq!(validate_info(&info()).expect("valid"), "ab".repeat(32));
    }

    #[test]
    fn names_that_clash_after_sanitising_or_by_case_are_refused() {
        let m = Mesh::new(
            vec![[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            vec![[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]],
        )
        .expect("tetrahedron");
        let printers = crate::template::builtin_printers().expect("printers");
        let params = crate::template::builtin_template("drill_guide")
            .expect("template")
            .resolve(&Default::default(), printers.get("sla").expect("sla"))
            .expect("defaults resolve");
        let g = |name| GuideExport {
            name,
            mesh: &m,
            params: &params,
            printer_in_plan: "sla",
            checks: serde_json::Value::Null,
        };
        let e = plan_files(&info(), &[g("a b"), g("a/b")]).err().expect("clash");
        assert!(
            matches!(e, ExportError::FileNameClash { ref file_name, .. } if file_name == "C-7_a_b.stl"),
            "{e}"
        );
        let e = plan_files(&info(), &[g("Drill"), g("drill")])
            .err()
            .expect("case clash");
        assert!(matches!(e, ExportError::FileNameClash { .. }), "{e}");
        let planned = plan_files(&info(), &[g("x"), g("y")]).expect("distinct");
        assert_eq!(planned.stl_names, ["C-7_x.stl", "C-7_y.stl"]);
        assert_eq!(planned.three_mf_name, "C-7_guides.3mf");
    }
}
