//! The surgical plan: the JSON document that is the single source of truth engineers build and surgeons approve.
//!
//! Why a plain, strict JSON document: a plan is reviewed by people, diffed, archived with the case and signed off
//! by its hash, so it must be readable, canonical and unambiguous. Hence:
//! - every field is required and unknown fields are errors (a typo never silently falls back to a default);
//! - errors name the JSON path (`planes[1].normal: not a unit vector (length 2.000)`);
//! - writing is canonical (fixed field order, shortest round-trip floats), so write -> read -> write is
//!   byte-identical and [`Plan::sha256`] identifies a plan;
//! - all geometry is in DICOM patient LPS millimetres, the frame of the loaded CT, with units in the field names;
//! - the CT is referenced by a hash of the loaded volume ([`ct_sha256`]), not by file names;
//! - changes go through [`Edit`]s with exact undo ([`History`]), and are validated before they land;
//! - [`evaluate`] measures the plan against a given bone and lists the findings a reviewer must see; the plan reads
//!   no file but its own (obtaining the bone is `crate::case`'s work).
//!
//! The format is described field by field in `docs/PLAN_FORMAT.md`; [`json_schema`] gives the JSON Schema
//! (committed as `docs/plan.schema.json`).

mod approval;
mod ct;
mod edit;
mod error;
mod evaluate;
mod io;
mod model;
mod reconstruction;
mod validate;

pub use approval::{
    plan_content_sha256, plan_part_hashes, release_approval, ApprovalState, DesignBinding, ReleaseRefusal,
    TemplateHash, BINDING_FORMAT, SOFTWARE,
};
pub use ct::{ct_path_hint, ct_sha256, CT_HASH_HEADER};
pub use edit::{Edit, Element, ElementKind, History, Undo};
pub use error::PlanError;
pub use evaluate::{
    evaluate, evaluate_with, Between, BoneSummary, Clearance, DrillEvaluation, DrillPairEvaluation, EvaluateError,
    EvaluateOptions, Evaluation, GuideEvaluation, IntervalSummary, LoopSummary, PlaneCrossing, PlaneEvaluation,
    PlanePairEvaluation, ScrewSummary, DEFAULT_INCIDENCE_WARNING_DEG, DEFAULT_OVERSHOOT_WARNING_MM,
    DRILL_DIAMETER_MATCH_MM,
};
pub use io::{json_schema, sha256_hex};
pub use model::{
    default_label_cap_height_mm, Approval, BoneModelRef, BoneSource, CaseId, CaseIdError, CtReference, CuttingPlane,
    Decision, DrillTrajectory, Footprint, GuideBone, GuideLabel, GuideSpec, Landmark, Plan, ResectedSide, Role,
    Segmentation, Structure, StructureKind, CASE_ID_MAX_CHARS, SCHEMA_VERSION, V1_PRINTER,
};
pub use reconstruction::{
    resection_plane_along, ContourSource, Donor, DonorKind, FlapParameters, FlapSegment, NamedCut, NamedFixation,
    Reconstruction, TargetContour, FIXATION_DIAMETER_MM, FIXATION_LENGTH_MM,
};
pub use validate::{NAME_MAX_CHARS, UNIT_LENGTH_TOLERANCE};
