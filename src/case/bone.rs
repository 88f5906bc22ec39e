//! A case's bone: obtained for a saved plan (its CT loaded and hash-checked and its segmentation re-run, or its STL
//! models read, hash-checked and repaired), or made for a new plan (on a CT, or on STL models segmented elsewhere).
//!
//! Why the bone is never cached: the plan records how to make it (the CT's hash and the segmentation recipe, or the
//! models' hashes), so the same plan gives the same bone on any machine, and a changed CT or model is caught by its
//! hash instead of silently used.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::CaseError;
use crate::bone::{self, BoneModel, SurfaceOptions};
use crate::mesh::{Mesh, RepairOptions, RepairReport};
use crate::plan::{
    ct_path_hint, sha256_hex, BoneModelRef, BoneSource, CaseId, CtReference, Plan, Segmentation, NAME_MAX_CHARS,
};
use crate::progress::Progress;
use crate::volume::{LoadOptions, SkippedFile, Volume, VolumeError};

/// Where a case's bone came from, for display.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "source")]
pub enum BoneOrigin {
    /// The plan's segmentation re-run on its CT (hash verified).
    Segmentation {
        /// The CT folder or file loaded.
        ct_path: String,
    },
    /// The plan's STL models (hashes verified), merged.
    Models {
        /// The files read.
        paths: Vec<String>,
    },
}

/// The bone of a plan and where it came from.
#[derive(Clone, Debug)]
pub struct CaseBone {
    /// The bone surface, LPS mm.
    pub mesh: Mesh,
    /// Where it came from.
    pub origin: BoneOrigin,
}

/// Where the plan's CT is looked for: `ct_override`, else the plan's `ct.path` relative to the folder of
/// `plan_path` (or as is when absolute). `None` when the plan has no CT.
pub fn plan_ct_path(plan: &Plan, plan_path: &Path, ct_override: Option<&Path>) -> Option<PathBuf> {
    let base = plan_path.parent().unwrap_or(Path::new(""));
    match (ct_override, &plan.ct) {
        (Some(p), _) => Some(p.to_path_buf()),
        (None, Some(reference)) => Some(base.join(&reference.path)),
        (None, None) => None,
    }
}

/// The bone of the plan saved at `plan_path`: its segmentation re-run on its CT (found as [`plan_ct_path`] says,
/// the series with the recorded SeriesInstanceUID if the input has it, else the default choice; the CT's hash
/// verified before anything else), or else its STL bone models (each file's SHA-256 verified) merged into one mesh.
pub fn open_bone(
    plan: &Plan,
    plan_path: &Path,
    ct_override: Option<&Path>,
    progress: &dyn Progress,
) -> Result<CaseBone, CaseError> {
    Ok(open_case(plan, plan_path, ct_override, progress)?.bone)
}

/// A plan's bone and, when the bone was segmented from the CT, the CT volume itself (for slice views).
#[derive(Clone, Debug)]
pub struct OpenCase {
    /// The bone.
    pub bone: CaseBone,
    /// The CT folder or file and its volume, when the bone came from it.
    pub volume: Option<(PathBuf, Volume)>,
}

/// [`open_bone`], keeping the CT volume it loaded (a front end shows it; loading it twice would double the wait).
pub fn open_case(
    plan: &Plan,
    plan_path: &Path,
    ct_override: Option<&Path>,
    progress: &dyn Progress,
) -> Result<OpenCase, CaseError> {
    let ct_path = plan_ct_path(plan, plan_path, ct_override).unwrap_or_default();
    open_source(plan.ct.as_ref(), &plan.bone, &ct_path, plan_path, progress)
}

/// The bone of one source: `bone`'s segmentation re-run on the CT at `ct_path` (hash checked against `reference`),
/// or else its STL models (relative to the folder of `plan_path`) merged. The plan's own bone and a reconstruction's
/// donor are both made here.
pub(crate) fn open_source(
    ct: Option<&CtReference>,
    bone: &BoneSource,
    ct_path: &Path,
    plan_path: &Path,
    progress: &dyn Progress,
) -> Result<OpenCase, CaseError> {
    if let (Some(reference), Some(seg)) = (ct, &bone.segmentation) {
        let path = ct_path.to_path_buf();
        let series = (!reference.series_uid.is_empty()).then_some(reference.series_uid.as_str());
        let options = LoadOptions {
            rescale_intercept_override: reference.rescale_intercept_override_hu,
        };
        // The recorded series when the input holds it; else the default choice, and the hash decides.
        let loaded = match crate::volume::load_with(&path, series, &options, progress) {
            Err(VolumeError::SeriesNotFound { .. }) if series.is_some() => {
                crate::volume::load_with(&path, None, &options, progress)
            }
            other => other,
        };
        let (volume, _) = loaded.map_err(|error| load_error(&path, error))?;
        reference.verify(&volume).map_err(|error| CaseError::CtMismatch {
            path: path.clone(),
            error,
        })?;
        let mesh = bone::extract_bone(&volume, &seg.recipe, &surface_options(seg), progress)?.mesh;
        return Ok(OpenCase {
            bone: CaseBone {
                mesh,
                origin: BoneOrigin::Segmentation {
                    ct_path: path.display().to_string(),
                },
            },
            volume: Some((path, volume)),
        });
    }
    let base = plan_path.parent().unwrap_or(Path::new(""));
    let mut mesh = Mesh::default();
    let mut paths = Vec::with_capacity(bone.models.len());
    for model in &bone.models {
        progress.checkpoint()?;
        let path = base.join(&model.path);
        let part = read_bone_model(&model.name, &path, Some(&model.sha256))?;
        mesh.merge(&part.mesh).map_err(|error| CaseError::Model {
            name: model.name.clone(),
            error,
        })?;
        paths.push(path.display().to_string());
    }
    if mesh.triangles.is_empty() {
        return Err(CaseError::NoBone);
    }
    Ok(OpenCase {
        bone: CaseBone {
            mesh,
            origin: BoneOrigin::Models { paths },
        },
        volume: None,
    })
}

/// How a plan saved at `plan_path` records the CT at `ct`: relative to the plan's folder when the CT lies inside
/// it, else the absolute path (as `plan new` records it).
pub fn ct_path_for_plan(plan_path: &Path, ct: &Path) -> Result<String, CaseError> {
    let ct_abs = ct.canonicalize().map_err(|e| CaseError::Output {
        path: ct.to_path_buf(),
        detail: format!("cannot resolve the CT path: {e}"),
    })?;
    Ok(ct_path_hint(&absolute_file_path(plan_path)?, &ct_abs))
}

/// A bone model read from an STL file and repaired ([`crate::mesh::repair`] with its default options, which is
/// deterministic: the same file gives the same bone every time).
#[derive(Clone, Debug)]
pub struct StlModel {
    /// The repaired surface, LPS mm.
    pub mesh: Mesh,
    /// What the repair did.
    pub repair: RepairReport,
    /// SHA-256 of the file's bytes.
    pub sha256: String,
}

/// Reads the STL at `path` as the bone model `name`, checks its SHA-256 against `expected_sha256` when one is given
/// (a plan's model), and repairs it; defects that cannot be repaired safely are an error naming their places.
pub fn read_bone_model(name: &str, path: &Path, expected_sha256: Option<&str>) -> Result<StlModel, CaseError> {
    let bytes = std::fs::read(path).map_err(|error| CaseError::ReadModel {
        name: name.to_string(),
        path: path.to_path_buf(),
        error,
    })?;
    let sha256 = sha256_hex(&bytes);
    if let Some(expected) = expected_sha256 {
        if sha256 != expected {
            return Err(CaseError::ModelMismatch {
                name: name.to_string(),
                path: path.to_path_buf(),
                expected: expected.to_string(),
                actual: sha256,
            });
        }
    }
    let read = crate::mesh::read_stl(&bytes[..], &path.display().to_string()).map_err(|error| CaseError::Model {
        name: name.to_string(),
        error,
    })?;
    let repaired = crate::mesh::repair(read, &RepairOptions::default()).map_err(|error| CaseError::Repair {
        name: name.to_string(),
        path: path.to_path_buf(),
        error,
    })?;
    Ok(StlModel {
        mesh: repaired.mesh,
        repair: repaired.report,
        sha256,
    })
}

/// A volume error as a case error: a cancel stays a cancel, anything else names the CT path.
fn load_error(path: &Path, error: VolumeError) -> CaseError {
    match error {
        VolumeError::Cancelled(c) => CaseError::Cancelled(c),
        error => CaseError::LoadCt {
            path: path.to_path_buf(),
            error,
        },
    }
}

/// The surface options a plan's segmentation records.
fn surface_options(seg: &Segmentation) -> SurfaceOptions {
    SurfaceOptions {
        smooth_iterations: seg.smooth_iterations as usize,
        decimate_keep_fraction: seg.decimate_keep_fraction,
        ..SurfaceOptions::default()
    }
}

/// A new plan and what was found making it.
#[derive(Clone, Debug)]
pub struct NewPlan {
    /// The plan (no elements yet), to be saved where it was planned to go.
    pub plan: Plan,
    /// The bone it refers to, with its checks.
    pub bone: BoneModel,
    /// Files of the CT input that were skipped, with the reason.
    pub skipped: Vec<SkippedFile>,
    /// Warnings about the CT series (resampling, gaps).
    pub warnings: Vec<String>,
}

/// A new plan for case `case_id` on the CT at `ct` (series `series`, or the default choice; loaded with `options`,
/// which the plan records), its bone segmented as `segmentation` says; the plan will be saved at `plan_path` (the CT
/// is recorded relative to the plan's folder when it lies inside it).
pub fn new_plan_from_ct(
    ct: &Path,
    series: Option<&str>,
    options: &LoadOptions,
    case_id: CaseId,
    segmentation: Segmentation,
    plan_path: &Path,
    progress: &dyn Progress,
) -> Result<NewPlan, CaseError> {
    let (volume, scan) =
        crate::volume::load_with(ct, series, options, progress).map_err(|error| load_error(ct, error))?;
    let bone = bone::extract_bone(&volume, &segmentation.recipe, &surface_options(&segmentation), progress)?;
    let ct_abs = ct.canonicalize().map_err(|e| CaseError::Output {
        path: ct.to_path_buf(),
        detail: format!("cannot resolve the CT path: {e}"),
    })?;
    let hint = ct_path_hint(&absolute_file_path(plan_path)?, &ct_abs);
    let mut reference = CtReference::from_volume(&volume, &hint);
    reference.rescale_intercept_override_hu = options.rescale_intercept_override;
    let plan = Plan::new(
        case_id,
        Some(reference),
        BoneSource {
            segmentation: Some(segmentation),
            models: Vec::new(),
        },
    );
    Ok(NewPlan {
        plan,
        bone,
        skipped: scan.skipped,
        warnings: volume.series.warnings.clone(),
    })
}

/// A new plan on bone models segmented elsewhere and what their repair did.
#[derive(Clone, Debug)]
pub struct NewPlanFromStl {
    /// The plan (no elements yet), to be saved where it was planned to go.
    pub plan: Plan,
    /// The merged, repaired bone.
    pub bone: Mesh,
    /// Each model's name, file and what its repair did, in the order given.
    pub models: Vec<(String, PathBuf, RepairReport)>,
    /// Files of the CT input that were skipped, with the reason (when a CT was given).
    pub skipped: Vec<SkippedFile>,
    /// Warnings about the CT series (when a CT was given).
    pub warnings: Vec<String>,
}

/// A new plan for case `case_id` whose bone is the STL models `stls` (each repaired as [`read_bone_model`] says,
/// named after its file), to be saved at `plan_path`. A CT (`ct`, loaded with `options`) is optional: it is recorded
/// with its hash, for the slice views and to check later that the models belong to it, but not segmented.
pub fn new_plan_from_stl(
    stls: &[PathBuf],
    ct: Option<(&Path, Option<&str>, &LoadOptions)>,
    case_id: CaseId,
    plan_path: &Path,
    progress: &dyn Progress,
) -> Result<NewPlanFromStl, CaseError> {
    let plan_file = absolute_file_path(plan_path)?;
    let mut models = Vec::with_capacity(stls.len());
    let mut refs: Vec<BoneModelRef> = Vec::with_capacity(stls.len());
    let mut bone = Mesh::default();
    for path in stls {
        progress.checkpoint()?;
        let name = model_name(path, &refs);
        let model = read_bone_model(&name, path, None)?;
        bone.merge(&model.mesh).map_err(|error| CaseError::Model {
            name: name.clone(),
            error,
        })?;
        let absolute = path.canonicalize().map_err(|e| CaseError::Output {
            path: path.clone(),
            detail: format!("cannot resolve the model's path: {e}"),
        })?;
        refs.push(BoneModelRef {
            name: name.clone(),
            path: ct_path_hint(&plan_file, &absolute),
            sha256: model.sha256,
        });
        models.push((name, path.clone(), model.repair));
    }
    if bone.triangles.is_empty() {
        return Err(CaseError::NoBone);
    }
    let (reference, skipped, warnings) = match ct {
        None => (None, Vec::new(), Vec::new()),
        Some((ct, series, options)) => {
            let (volume, scan) =
                crate::volume::load_with(ct, series, options, progress).map_err(|error| load_error(ct, error))?;
            let ct_abs = ct.canonicalize().map_err(|e| CaseError::Output {
                path: ct.to_path_buf(),
                detail: format!("cannot resolve the CT path: {e}"),
            })?;
            let mut reference = CtReference::from_volume(&volume, &ct_path_hint(&plan_file, &ct_abs));
            reference.rescale_intercept_override_hu = options.rescale_intercept_override;
            (Some(reference), scan.skipped, volume.series.warnings.clone())
        }
    };
    let plan = Plan::new(
        case_id,
        reference,
        BoneSource {
            segmentation: None,
            models: refs,
        },
    );
    Ok(NewPlanFromStl {
        plan,
        bone,
        models,
        skipped,
        warnings,
    })
}

/// A model name from the file's stem, made unique among `taken` (`jaw`, `jaw-2`, ...), at most
/// [`NAME_MAX_CHARS`] characters.
fn model_name(path: &Path, taken: &[BoneModelRef]) -> String {
    let stem: String = path
        .file_stem()
        .map(|s| {
            s.to_string_lossy()
                .chars()
                .filter(|c| !c.is_control())
                .take(NAME_MAX_CHARS - 4)
                .collect()
        })
        .filter(|s: &String| !s.trim().is_empty())
        .unwrap_or_else(|| "bone".to_string());
    let mut name = stem.clone();
    let mut k = 1;
    while taken.iter().any(|m| m.name == name) {
        k += 1;
        name = format!("{stem}-{k}");
    }
    name
}

/// `path` with its folder made absolute (the file itself need not exist yet).
pub(crate) fn absolute_file_path(path: &Path) -> Result<PathBuf, CaseError> {
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let folder = folder.canonicalize().map_err(|e| CaseError::Output {
        path: folder.clone(),
        detail: format!("the folder of {} cannot be used: {e}", path.display()),
    })?;
    let name = path.file_name().ok_or_else(|| CaseError::Output {
        path: path.to_path_buf(),
        detail: "names no file".to_string(),
    })?;
    Ok(folder.join(name))
}
