//! Why a case step failed. Each message names the file, the element or the value at fault.

use std::path::PathBuf;

use thiserror::Error;

use crate::bone::BoneError;
use crate::export::ExportError;
use crate::finding::Finding;
use crate::measure::MeasureError;
use crate::mesh::{MeshError, RepairError};
use crate::plan::{CaseIdError, EvaluateError, PlanError};
use crate::progress::Cancelled;
use crate::render::RenderError;
use crate::synth::SynthError;
use crate::volume::VolumeError;

/// Why a case step failed.
#[derive(Debug, Error)]
pub enum CaseError {
    /// The plan's CT (or the CT given) could not be loaded.
    #[error("cannot load the CT from {}: {error}", path.display())]
    LoadCt {
        /// Where it was looked for.
        path: PathBuf,
        /// Why it failed.
        error: VolumeError,
    },
    /// The CT found is not the one the plan was made on.
    #[error("the CT at {}: {error}", path.display())]
    CtMismatch {
        /// The CT folder or file.
        path: PathBuf,
        /// The hash mismatch, with what differs.
        error: PlanError,
    },
    /// The segmentation failed on the CT.
    #[error("segmenting the bone: {0}")]
    Bone(BoneError),
    /// A bone model could not be read.
    #[error("cannot read bone model '{name}' at {}: {error}", path.display())]
    ReadModel {
        /// The model's name in the plan.
        name: String,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// A bone model's bytes are not the ones the plan was made on.
    #[error(
        "bone model '{name}' at {}: SHA-256 {actual} differs from the plan's {expected}; it is not the model the \
         plan was made on",
        path.display()
    )]
    ModelMismatch {
        /// The model's name in the plan.
        name: String,
        /// The file.
        path: PathBuf,
        /// Hash recorded in the plan.
        expected: String,
        /// Hash of the file.
        actual: String,
    },
    /// A bone model is not a valid STL, or the models cannot be merged.
    #[error("bone model '{name}': {error}")]
    Model {
        /// The model's name in the plan.
        name: String,
        /// The mesh error.
        error: MeshError,
    },
    /// A bone model has defects that cannot be repaired safely.
    #[error("bone model '{name}' at {}: {error}", path.display())]
    Repair {
        /// The model's name in the plan.
        name: String,
        /// The file.
        path: PathBuf,
        /// What cannot be repaired, and where.
        error: RepairError,
    },
    /// The plan has no bone: neither a CT segmentation nor a model.
    #[error("the plan has no bone: bone.segmentation is null and bone.models is empty")]
    NoBone,
    /// The reconstruction cannot be proposed as asked; the message says what to change.
    #[error("reconstruction: {0}")]
    Flap(String),
    /// The case ID is not valid.
    #[error(transparent)]
    CaseId(#[from] CaseIdError),
    /// The plan document was refused.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The plan could not be measured.
    #[error(transparent)]
    Evaluate(#[from] EvaluateError),
    /// The bone could not be queried.
    #[error("bone surface: {0}")]
    Measure(#[from] MeasureError),
    /// No footprint could be proposed for a guide.
    #[error("guide '{guide}': no footprint could be proposed: {error}")]
    Propose {
        /// The guide.
        guide: String,
        /// Why.
        error: crate::guide::propose::ProposeError,
    },
    /// The guide to propose a footprint for is not usable (unknown template, missing plane or drill).
    #[error("{0}")]
    GuideRefused(Box<Finding>),
    /// Guides were refused or failed their checks; nothing was written.
    #[error(
        "{} guide finding(s); nothing was written:\n{}",
        .0.len(),
        .0.iter().map(|f| format!("  {f}")).collect::<Vec<_>>().join("\n")
    )]
    GuidesRefused(Vec<Finding>),
    /// Writing the guides failed.
    #[error(transparent)]
    Export(#[from] ExportError),
    /// A review image could not be made.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// The demo CT could not be written.
    #[error(transparent)]
    Synth(#[from] SynthError),
    /// An output folder cannot be used.
    #[error("{}: {detail}", path.display())]
    Output {
        /// The folder or file.
        path: PathBuf,
        /// What is wrong and what to do.
        detail: String,
    },
    /// The demo case could not be made on the bone it was given (a bug of the demo, or a bone that is not its jaw).
    #[error("the demo case: {detail}")]
    Demo {
        /// What went wrong.
        detail: String,
    },
    /// The plan may not be released for production (no current surgeon's approval, or a printer other than the
    /// approved one).
    #[error("not released: {0}")]
    NotReleased(String),
    /// An approval was refused (the plan has errors a reviewer must not sign off).
    #[error("cannot approve: {0}")]
    ApprovalRefused(String),
    /// An anatomical model could not be made or is not a valid solid.
    #[error("anatomical model: {detail}")]
    AnatomicalModel {
        /// What went wrong, and what to change.
        detail: String,
    },
    /// The plan's glTF or report could not be made (a plan element has no valid shape).
    #[error("{what}: {detail}")]
    Document {
        /// The document and the element ("the glTF's shape of drill 'd1'").
        what: String,
        /// What went wrong.
        detail: String,
    },
    /// The front end cancelled the work; nothing was written.
    #[error(transparent)]
    Cancelled(#[from] Cancelled),
}

impl From<BoneError> for CaseError {
    fn from(e: BoneError) -> Self {
        match e {
            BoneError::Cancelled(c) => CaseError::Cancelled(c),
            other => CaseError::Bone(other),
        }
    }
}
