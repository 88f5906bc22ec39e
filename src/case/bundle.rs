//! The print-lab bundle: one zip with everything a lab receives for a case, and its offline verification.
//!
//! Why one file that verifies itself: a print lab receives guides by mail or upload and must be able to tell, without
//! the engineer's machine, that nothing was lost or changed on the way and that the plan and the inputs it holds are
//! what the surgeon approved (the files are not signed: a forger who rewrites a guide, the manifest and the checksum
//! list consistently is not detected; `docs/APPROVAL.md`). The bundle therefore carries, besides the guides (STL, 3MF, review images,
//! manifest, anatomical models, the glTF of the plan), the plan report (PDF), the plan (its path hints replaced, so no folder of the engineer's machine is shipped), the template,
//! printer-profile and screw-catalogue files the approval is bound to, and `checksums.sha256` (`sha256sum -c` reads
//! it). [`verify_bundle`] recomputes every hash and the approval's design binding from the bundle alone
//! (`docs/APPROVAL.md`). The zip is reproducible: the same approved plan gives the same bytes.

use std::io::Read;

use super::build::{guide_files, render_guides};
use super::model::{make_models, model_file_name, model_stl_bytes, DEFAULT_MODEL_MARGIN_MM};
use super::report::report_pdf;
use super::scene::{glb_file_name, plan_glb};
use super::{CaseError, CaseGuides};
use crate::export::{zip_bytes, Attachment, Manifest, Release, MANIFEST_FILE_NAME};
use crate::guide::build::BuiltGuide;
use crate::mesh::{read_stl, MeshReport};
use crate::plan::{
    plan_content_sha256, plan_part_hashes, sha256_hex, Decision, DesignBinding, Plan, Role, TemplateHash,
};
use crate::progress::Progress;
use crate::template::{builtin_printers_text, Template, BUILTIN_TEMPLATE_FILES};

/// Folder of the guides' files (the export: STL, 3MF, renders, manifest) inside the bundle.
pub const GUIDES_FOLDER: &str = "guides";
/// Folder of the anatomical models inside the export (`guides/models/`).
pub const MODELS_FOLDER: &str = "models";
/// The plan inside the bundle.
pub const PLAN_FILE: &str = "plan.json";
/// The plan report inside the bundle (PDF).
pub const REPORT_FILE: &str = "report.pdf";
/// Folder of the bound input files (templates, printers, screws) inside the bundle.
pub const INPUTS_FOLDER: &str = "inputs";
/// The checksum list (`sha256sum` format), the bundle's last entry.
pub const CHECKSUMS_FILE: &str = "checksums.sha256";
/// What replaces the plan's path hints in the bundle (the CT and bone models are identified by their hashes).
pub const PATH_NOT_SHIPPED: &str = "not-in-bundle";

/// The bundle of `plan`'s guides (built and all passed) as zip bytes. Deterministic.
pub fn make_bundle<'a>(
    plan: &Plan,
    bones: impl Into<super::GuideBones<'a>>,
    guides: &CaseGuides,
    release: &Release,
    progress: &dyn Progress,
) -> Result<Vec<u8>, CaseError> {
    let bones = bones.into();
    let bone = bones.recipient;
    // The anatomical models of the case travel with the guides, listed in the manifest; they are made while the
    // guides' review images render, and the report is written while the export is packed (each half is mostly
    // single-threaded).
    let case_id = plan.case_id.as_str();
    let findings = guides.findings();
    if !findings.is_empty() {
        return Err(CaseError::GuidesRefused(findings));
    }
    let built: Vec<&BuiltGuide> = guides.guides.iter().filter_map(|g| g.built().map(|(b, _)| b)).collect();
    let (models, renders) = rayon::join(
        || make_models(plan, bones.clone(), DEFAULT_MODEL_MARGIN_MM, progress),
        || render_guides(case_id, bones.clone(), &built, progress),
    );
    let (models, renders) = (models?, renders?);
    let mut extra = Vec::new();
    for m in &models {
        extra.push(Attachment {
            name: format!("{MODELS_FOLDER}/{}", model_file_name(case_id, m)),
            bytes: model_stl_bytes(case_id, m)?,
        });
    }
    // The whole plan for viewing (bone, planes, drills, guides, models), listed in the manifest like the models.
    extra.push(Attachment {
        name: glb_file_name(case_id),
        bytes: plan_glb(plan, bones.clone(), guides, &models)?,
    });
    let (files, report) = rayon::join(
        || guide_files(plan, bones.clone(), guides, release, &renders, &extra, progress),
        || report_pdf(plan, bone, guides, &renders, progress),
    );
    let mut entries: Vec<(String, Vec<u8>)> = files?
        .into_iter()
        .map(|f| (format!("{GUIDES_FOLDER}/{}", f.name), f.bytes))
        .collect();
    entries.push((REPORT_FILE.to_string(), report?));
    entries.push((PLAN_FILE.to_string(), shipped_plan(plan).to_json().into_bytes()));
    // Named by the template's name (as the plan names it), so `verify` finds each from the plan alone.
    for (file, text) in BUILTIN_TEMPLATE_FILES {
        if let Ok(t) = Template::from_toml_str(text, &format!("builtin:{file}")) {
            if plan.guides.iter().any(|g| g.template == t.name) {
                entries.push((template_entry(&t.name), text.as_bytes().to_vec()));
            }
        }
    }
    entries.push((
        format!("{INPUTS_FOLDER}/printers.toml"),
        builtin_printers_text().as_bytes().to_vec(),
    ));
    entries.push((
        format!("{INPUTS_FOLDER}/screws.toml"),
        crate::catalogue::BUILTIN_SCREWS_TOML.as_bytes().to_vec(),
    ));
    let checksums: String = entries
        .iter()
        .map(|(name, bytes)| format!("{}  {name}\n", sha256_hex(bytes)))
        .collect();
    entries.push((CHECKSUMS_FILE.to_string(), checksums.into_bytes()));
    progress.checkpoint()?;
    let refs: Vec<(&str, &[u8])> = entries.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
    zip_bytes(&refs).map_err(|detail| CaseError::Output {
        path: "bundle.zip".into(),
        detail,
    })
}

/// The bundle entry of the template named `name`.
fn template_entry(name: &str) -> String {
    format!("{INPUTS_FOLDER}/templates/{name}.toml")
}

/// The largest entry `verify` reads, bytes: far above any guide, model or image, far below a machine's memory.
const MAX_ENTRY_BYTES: u64 = 1 << 30;
/// The most `verify` reads from one bundle, bytes.
const MAX_BUNDLE_BYTES: u64 = 4 << 30;

/// `plan` as shipped: its path hints (where the CT and bone models were on the engineer's machine) replaced by
/// [`PATH_NOT_SHIPPED`] and the CT's SeriesInstanceUID removed. Its content hash and its approvals' bindings are
/// unchanged (they exclude the hints and the UID).
pub fn shipped_plan(plan: &Plan) -> Plan {
    let mut shipped = plan.clone();
    if let Some(ct) = &mut shipped.ct {
        ct.path = PATH_NOT_SHIPPED.to_string();
        // A DICOM UID can be traced back to the patient in the hospital's archive; the volume hash identifies the CT.
        ct.series_uid.clear();
    }
    for m in &mut shipped.bone.models {
        m.path = PATH_NOT_SHIPPED.to_string();
    }
    if let Some(r) = &mut shipped.reconstruction {
        if let Some(ct) = &mut r.donor.ct {
            ct.path = PATH_NOT_SHIPPED.to_string();
            ct.series_uid.clear();
        }
        for m in &mut r.donor.bone.models {
            m.path = PATH_NOT_SHIPPED.to_string();
        }
    }
    shipped
}

/// One check of [`verify_bundle`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleCheck {
    /// What was checked.
    pub what: String,
    /// `Err` says what does not match.
    pub result: Result<(), String>,
}

/// What [`verify_bundle`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleReport {
    /// Every check, in order.
    pub checks: Vec<BundleCheck>,
    /// The release the manifest records (`None` if it could not be read).
    pub release: Option<Release>,
}

impl BundleReport {
    /// Every check holds.
    pub fn all_hold(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.result.is_ok())
    }

    /// The bundle holds guides released by a surgeon (not a draft), and every check holds.
    pub fn released(&self) -> bool {
        self.all_hold() && matches!(self.release, Some(Release::Approved { .. }))
    }

    fn check(&mut self, what: impl Into<String>, result: Result<(), String>) {
        self.checks.push(BundleCheck {
            what: what.into(),
            result,
        });
    }
}

/// Verifies a bundle from its bytes alone: a well-formed zip (no duplicate, aliasing or escaping names, within size
/// limits), every file against `checksums.sha256` (and no file missing from it or extra to the bundle), the
/// manifest's file hashes, each guide STL a closed valid solid, the manifest's case and guides those of the plan, the
/// plan's content hash against the manifest, and the design binding recomputed from the bundled plan and input files
/// against the release (and, when released, the latest surgeon's review in the plan: an approval by the surgeon at
/// the time the manifest names, bound to exactly that design). Never fails: what does not hold is a failed check.
pub fn verify_bundle(bytes: &[u8]) -> BundleReport {
    let mut report = BundleReport {
        checks: Vec::new(),
        release: None,
    };
    let files = match read_zip(bytes) {
        Ok(files) => files,
        Err(e) => {
            report.check("the bundle is a readable zip", Err(e));
            return report;
        }
    };
    let get = |name: &str| files.iter().find(|(n, _)| n == name).map(|(_, b)| b.as_slice());

    // 1. The checksum list covers every file and every hash matches.
    let Some(checksums) = get(CHECKSUMS_FILE) else {
        report.check(format!("{CHECKSUMS_FILE} is present"), Err("missing".into()));
        return report;
    };
    let mut listed: Vec<(String, String)> = Vec::new();
    for (i, line) in String::from_utf8_lossy(checksums).lines().enumerate() {
        let parsed = line
            .split_once("  ")
            .filter(|(h, n)| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) && !n.is_empty());
        match parsed {
            Some((_, n)) if listed.iter().any(|(_, m)| m == n) => {
                report.check(
                    format!("{CHECKSUMS_FILE} line {}", i + 1),
                    Err(format!("{n} is listed twice")),
                );
            }
            Some((h, n)) => listed.push((h.to_ascii_lowercase(), n.to_string())),
            None => report.check(
                format!("{CHECKSUMS_FILE} line {}", i + 1),
                Err(format!("{line:?} is not `<sha256>  <name>`")),
            ),
        }
    }
    for (hash, name) in &listed {
        let result = match get(name) {
            None => Err("listed but not in the bundle".to_string()),
            Some(b) if sha256_hex(b) != *hash => {
                Err(format!("SHA-256 {} differs from the list's {hash}", sha256_hex(b)))
            }
            Some(_) => Ok(()),
        };
        report.check(format!("{name}: checksum"), result);
    }
    for (name, _) in files.iter().filter(|(n, _)| n != CHECKSUMS_FILE) {
        if !listed.iter().any(|(_, n)| n == name) {
            report.check(format!("{name}: listed"), Err(format!("not in {CHECKSUMS_FILE}")));
        }
    }

    // 2. The manifest's own hashes, and the guides as solids.
    let manifest_name = format!("{GUIDES_FOLDER}/{MANIFEST_FILE_NAME}");
    let manifest: Option<Manifest> = match get(&manifest_name).map(serde_json::from_slice::<Manifest>) {
        Some(Ok(m)) => Some(m),
        Some(Err(e)) => {
            report.check(&manifest_name, Err(format!("not a manifest: {e}")));
            None
        }
        None => {
            report.check(&manifest_name, Err("missing".into()));
            None
        }
    };
    if let Some(m) = &manifest {
        report.release = Some(m.release.clone());
        for f in &m.files {
            let name = format!("{GUIDES_FOLDER}/{}", f.name);
            let result = match get(&name) {
                None => Err("in the manifest but not in the bundle".to_string()),
                Some(b) if sha256_hex(b) != f.sha256 || b.len() as u64 != f.size_bytes => {
                    Err(format!("differs from the manifest (SHA-256 {})", sha256_hex(b)))
                }
                Some(_) => Ok(()),
            };
            report.check(format!("{name}: manifest hash"), result);
        }
        for g in &m.guides {
            let name = format!("{GUIDES_FOLDER}/{}", g.stl_file);
            let result = stl_solid(get(&name), &name, true);
            report.check(format!("{name}: guide '{}' is one closed valid solid", g.name), result);
        }
        for f in m
            .files
            .iter()
            .filter(|f| f.name.starts_with(&format!("{MODELS_FOLDER}/")))
        {
            let name = format!("{GUIDES_FOLDER}/{}", f.name);
            let result = stl_solid(get(&name), &name, false);
            report.check(format!("{name}: a closed valid model"), result);
        }
    }

    let pdf = get(REPORT_FILE);
    report.check(
        format!("{REPORT_FILE}: a PDF"),
        match pdf {
            None => Err("missing".to_string()),
            Some(b) if b.starts_with(b"%PDF-") && b.trim_ascii_end().ends_with(b"%%EOF") => Ok(()),
            Some(_) => Err("not a complete PDF file".to_string()),
        },
    );

    // 3. The plan, and the design binding recomputed from the bundle's own files.
    let plan = match get(PLAN_FILE).map(|b| Plan::from_json(&String::from_utf8_lossy(b))) {
        Some(Ok(p)) => Some(p),
        Some(Err(e)) => {
            report.check(PLAN_FILE, Err(format!("not a valid plan: {e}")));
            None
        }
        None => {
            report.check(PLAN_FILE, Err("missing".into()));
            None
        }
    };
    let (Some(plan), Some(manifest)) = (plan, manifest) else {
        return report;
    };
    let content = plan_content_sha256(&plan);
    report.check(
        format!("{PLAN_FILE}: the plan the guides were made from"),
        if content == manifest.plan_sha256 {
            Ok(())
        } else {
            Err(format!(
                "its content hash {content} differs from the manifest's {}",
                manifest.plan_sha256
            ))
        },
    );
    // Every file is one the bundle should hold, and the guides are the plan's guides.
    let mut expected: Vec<String> = manifest
        .files
        .iter()
        .map(|f| format!("{GUIDES_FOLDER}/{}", f.name))
        .collect();
    expected.push(manifest_name.clone());
    expected.push(PLAN_FILE.to_string());
    expected.push(REPORT_FILE.to_string());
    let mut templates: Vec<&str> = plan.guides.iter().map(|g| g.template.as_str()).collect();
    templates.sort_unstable();
    templates.dedup();
    expected.extend(templates.iter().map(|t| template_entry(t)));
    expected.push(format!("{INPUTS_FOLDER}/printers.toml"));
    expected.push(format!("{INPUTS_FOLDER}/screws.toml"));
    expected.push(CHECKSUMS_FILE.to_string());
    for (name, _) in &files {
        if !expected.contains(name) {
            report.check(
                format!("{name}: expected"),
                Err("a file the bundle should not hold".to_string()),
            );
        }
    }
    for name in &expected {
        if get(name).is_none()
            && !manifest
                .files
                .iter()
                .any(|f| format!("{GUIDES_FOLDER}/{}", f.name) == *name)
        {
            report.check(format!("{name}: present"), Err("missing".to_string()));
        }
    }
    report.check(
        "the manifest's case is the plan's",
        if manifest.case_id == plan.case_id.as_str() {
            Ok(())
        } else {
            Err(format!(
                "manifest case {} but plan case {}",
                manifest.case_id, plan.case_id
            ))
        },
    );
    let in_manifest: Vec<&str> = manifest.guides.iter().map(|g| g.name.as_str()).collect();
    let in_plan: Vec<&str> = plan.guides.iter().map(|g| g.name.as_str()).collect();
    report.check(
        "the manifest's guides are the plan's",
        if in_manifest == in_plan {
            Ok(())
        } else {
            Err(format!("manifest {in_manifest:?}, plan {in_plan:?}"))
        },
    );
    let binding = match bundled_binding(&plan, &manifest, get) {
        Ok(b) => b,
        Err(e) => {
            report.check("the design binding can be recomputed from the bundle", Err(e));
            return report;
        }
    };
    match &manifest.release {
        Release::Draft { design_sha256 } => report.check(
            "the draft's design hash",
            if *design_sha256 == binding.sha256 {
                Ok(())
            } else {
                Err(format!(
                    "recomputed {} differs from the manifest's {design_sha256}",
                    binding.sha256
                ))
            },
        ),
        Release::Approved {
            surgeon,
            design_sha256,
            at_utc,
        } => {
            report.check(
                "the released design hash",
                if *design_sha256 == binding.sha256 {
                    Ok(())
                } else {
                    Err(format!(
                        "recomputed {} from the bundle differs from the manifest's {design_sha256}: something the \
                         approval is bound to changed",
                        binding.sha256
                    ))
                },
            );
            let latest = plan.approvals.iter().rev().find(|a| a.role == Role::Surgeon);
            let result = match latest {
                None => Err("the plan holds no surgeon's review".to_string()),
                Some(a) if a.decision != Decision::Approved => Err(format!(
                    "the latest surgeon's review ({}, {}) rejects the plan",
                    a.reviewer, a.at_utc
                )),
                Some(a) if a.reviewer != *surgeon || a.at_utc != *at_utc => Err(format!(
                    "the plan's approval is by {} at {}, the manifest names {surgeon} at {at_utc}",
                    a.reviewer, a.at_utc
                )),
                Some(a) if !a.binding.is_consistent() => {
                    Err("the approval's recorded hash does not match its recorded inputs".to_string())
                }
                Some(a) if a.binding.sha256 != binding.sha256 => Err(format!(
                    "the approval is bound to {}, the bundle's inputs give {}: {}",
                    a.binding.sha256,
                    binding.sha256,
                    binding.changes_since(&a.binding).join("; ")
                )),
                Some(_) => Ok(()),
            };
            report.check(
                format!("the surgeon's approval ({surgeon}) is bound to exactly this bundle"),
                result,
            );
        }
    }
    report
}

/// `bytes` (an entry named `name`, if present) as a closed valid solid, in one piece when `one_piece`.
fn stl_solid(bytes: Option<&[u8]>, name: &str, one_piece: bool) -> Result<(), String> {
    let mesh = read_stl(bytes.ok_or("missing")?, name).map_err(|e| format!("not a readable STL: {e}"))?;
    let r = MeshReport::new(&mesh);
    if r.is_valid() && (r.components == 1 || !one_piece) {
        Ok(())
    } else {
        Err(format!(
            "not a closed valid solid{}: {r}",
            if one_piece { " in one piece" } else { "" }
        ))
    }
}

/// The design binding of `plan` from the bundle's input files and the manifest's software version.
fn bundled_binding<'a>(
    plan: &Plan,
    manifest: &Manifest,
    get: impl Fn(&str) -> Option<&'a [u8]>,
) -> Result<DesignBinding, String> {
    let mut templates = std::collections::BTreeMap::new();
    for name in plan.guides.iter().map(|g| g.template.as_str()) {
        if templates.contains_key(name) {
            continue;
        }
        let file = template_entry(name);
        let bytes = get(&file).ok_or_else(|| format!("{file} is missing"))?;
        let text = String::from_utf8_lossy(bytes);
        let t = Template::from_toml_str(&text, &file).map_err(|e| format!("{file}: {e}"))?;
        if t.name != name {
            return Err(format!("{file} holds template '{}', not '{name}'", t.name));
        }
        templates.insert(
            name.to_string(),
            TemplateHash {
                version: t.version,
                sha256: sha256_hex(bytes),
            },
        );
    }
    let file_hash = |name: &str| {
        let file = format!("{INPUTS_FOLDER}/{name}");
        get(&file).map(sha256_hex).ok_or_else(|| format!("{file} is missing"))
    };
    // As `SOFTWARE` names it: the software that built the guides, from the manifest.
    let software = format!("{} {}", manifest.software, manifest.software_version);
    let mut binding = DesignBinding::new(
        plan_content_sha256(plan),
        plan.ct.as_ref().map(|c| c.volume_sha256.clone()),
        templates,
        file_hash("printers.toml")?,
        file_hash("screws.toml")?,
        software,
    );
    binding.plan_parts = plan_part_hashes(plan);
    Ok(binding)
}

/// Every file of a zip (name, bytes), in the archive's order. Refused: a zip whose central directory and local
/// headers disagree, two entries of one name (tools differ in which they take), a name that is not a plain relative
/// path (`..`, `.`, `\\`, absolute) or that clashes with another ignoring case, and entries beyond the size limits
/// (read through a limit, never trusting the declared size).
fn read_zip(bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| format!("not a zip: {e}"))?;
    if zip.has_duplicate_names() {
        return Err("two entries have the same name".to_string());
    }
    zip.validate_header_consistency()
        .map_err(|e| format!("its headers disagree: {e}"))?;
    let mut out: Vec<(String, Vec<u8>)> = Vec::with_capacity(zip.len());
    let mut total = 0u64;
    for i in 0..zip.len() {
        let f = zip.by_index(i).map_err(|e| format!("entry {i}: {e}"))?;
        let name = f.name().map_err(|e| format!("entry {i}: {e}"))?.into_owned();
        if f.is_dir() {
            continue;
        }
        let plain = !name.starts_with('/')
            && !name.contains('\\')
            && name
                .split('/')
                .all(|part| !part.is_empty() && part != "." && part != "..");
        if !plain {
            return Err(format!("entry {name:?} is not a plain relative path"));
        }
        if out.iter().any(|(n, _)| n.eq_ignore_ascii_case(&name)) {
            return Err(format!("entry {name:?} clashes with another ignoring case"));
        }
        let mut b = Vec::new();
        let read = f
            .take(MAX_ENTRY_BYTES + 1)
            .read_to_end(&mut b)
            .map_err(|e| format!("{name}: {e}"))?;
        total += read as u64;
        if read as u64 > MAX_ENTRY_BYTES || total > MAX_BUNDLE_BYTES {
            return Err(format!("{name}: larger than a bundle's entries may be"));
        }
        out.push((name, b));
    }
    Ok(out)
}
