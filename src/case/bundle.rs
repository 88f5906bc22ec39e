//! The print-lab bundle: one zip with everything a lab receives for a case, and its offline verification.
//!
//! Why one file that verifies itself: a print lab receives guides by mail or upload and must be able to tell, without
//! our software's help and without the engineer's machine, that nothing was lost or changed on the way and that what
//! it holds is what the surgeon approved. The bundle therefore carries, besides the guides (STL, 3MF, review images,
//! manifest), the plan (its path hints replaced, so no folder of the engineer's machine is shipped), the template,
//! printer-profile and screw-catalogue files the approval is bound to, and `checksums.sha256` (`sha256sum -c` reads
//! it). [`verify_bundle`] recomputes every hash and the approval's design binding from the bundle alone
//! (`docs/APPROVAL.md`). The zip is reproducible: the same approved plan gives the same bytes.

use std::io::Read;

use super::build::guide_files;
use super::{CaseError, CaseGuides};
use crate::export::{zip_bytes, Manifest, Release, MANIFEST_FILE_NAME};
use crate::mesh::{read_stl, MeshReport};
use crate::plan::{
    plan_content_sha256, plan_part_hashes, sha256_hex, Decision, DesignBinding, Plan, Role, TemplateHash,
};
use crate::progress::Progress;
use crate::template::{builtin_printers_text, Template, BUILTIN_TEMPLATE_FILES};

/// Folder of the guides' files (the export: STL, 3MF, renders, manifest) inside the bundle.
pub const GUIDES_FOLDER: &str = "guides";
/// The plan inside the bundle.
pub const PLAN_FILE: &str = "plan.json";
/// Folder of the bound input files (templates, printers, screws) inside the bundle.
pub const INPUTS_FOLDER: &str = "inputs";
/// The checksum list (`sha256sum` format), the bundle's last entry.
pub const CHECKSUMS_FILE: &str = "checksums.sha256";
/// What replaces the plan's path hints in the bundle (the CT and bone models are identified by their hashes).
pub const PATH_NOT_SHIPPED: &str = "not-in-bundle";

/// The bundle of `plan`'s guides (built and all passed) as zip bytes. Deterministic.
pub fn make_bundle(
    plan: &Plan,
    bone: &crate::mesh::Mesh,
    guides: &CaseGuides,
    release: &Release,
    progress: &dyn Progress,
) -> Result<Vec<u8>, CaseError> {
    let mut entries: Vec<(String, Vec<u8>)> = guide_files(plan, bone, guides, release, progress)?
        .into_iter()
        .map(|f| (format!("{GUIDES_FOLDER}/{}", f.name), f.bytes))
        .collect();
    entries.push((PLAN_FILE.to_string(), shipped_plan(plan).to_json().into_bytes()));
    for (file, text) in BUILTIN_TEMPLATE_FILES {
        let name = Template::from_toml_str(text, &format!("builtin:{file}")).map(|t| t.name);
        if name.is_ok_and(|n| plan.guides.iter().any(|g| g.template == n)) {
            entries.push((format!("{INPUTS_FOLDER}/templates/{file}"), text.as_bytes().to_vec()));
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

/// `plan` as shipped: its path hints (where the CT and bone models were on the engineer's machine) replaced by
/// [`PATH_NOT_SHIPPED`]. Its content hash and its approvals' bindings are unchanged (they exclude the hints).
pub fn shipped_plan(plan: &Plan) -> Plan {
    let mut shipped = plan.clone();
    if let Some(ct) = &mut shipped.ct {
        ct.path = PATH_NOT_SHIPPED.to_string();
    }
    for m in &mut shipped.bone.models {
        m.path = PATH_NOT_SHIPPED.to_string();
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

/// Verifies a bundle from its bytes alone: every file against `checksums.sha256` (and no file missing from it), the
/// manifest's file hashes, each guide STL a closed valid solid, the plan's content hash against the manifest, and the
/// design binding recomputed from the bundled plan and input files against the release (and, when released, the
/// surgeon's approval in the plan). Never fails: what does not hold is a failed check.
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
    let listed: Vec<(String, String)> = String::from_utf8_lossy(checksums)
        .lines()
        .filter_map(|l| l.split_once("  ").map(|(h, n)| (h.to_string(), n.to_string())))
        .collect();
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
            let result = match get(&name).map(|b| read_stl(b, &name)) {
                None => Err("missing".to_string()),
                Some(Err(e)) => Err(format!("not a readable STL: {e}")),
                Some(Ok(mesh)) => {
                    let r = MeshReport::new(&mesh);
                    if r.is_valid() && r.components == 1 {
                        Ok(())
                    } else {
                        Err(format!("not one closed valid solid: {r}"))
                    }
                }
            };
            report.check(format!("{name}: guide '{}' is one closed valid solid", g.name), result);
        }
    }

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
            surgeon, design_sha256, ..
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
                Some(a) if a.decision != Decision::Approved => {
                    Err(format!("the latest surgeon's review ({}) rejects it", a.reviewer))
                }
                Some(a) if a.reviewer != *surgeon => Err(format!(
                    "the plan's approval is by {}, the manifest names {surgeon}",
                    a.reviewer
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
        let file = format!("{INPUTS_FOLDER}/templates/{name}.toml");
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

/// Every file of a zip (name, bytes), in the archive's order.
fn read_zip(bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| format!("not a zip: {e}"))?;
    let mut out = Vec::with_capacity(zip.len());
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).map_err(|e| format!("entry {i}: {e}"))?;
        if f.is_dir() {
            continue;
        }
        let name = f.name().map_err(|e| format!("entry {i}: {e}"))?.into_owned();
        let mut b = Vec::with_capacity(usize::try_from(f.size()).unwrap_or(0));
        f.read_to_end(&mut b).map_err(|e| format!("{name}: {e}"))?;
        out.push((name, b));
    }
    Ok(out)
}
