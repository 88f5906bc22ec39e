//! The case: one place that runs a surgical case end to end, for every front end.
//!
//! Why a layer of its own: the CLI, the GUI and the tests need the same chains — obtain a plan's bone (the CT loaded
//! and its hash checked, the recorded segmentation re-run; or the plan's STL models read, hash-checked and repaired),
//! make a new plan on a CT or on a bone segmented elsewhere (STL from 3D Slicer, Mimics, InVesalius: repaired where
//! that is safe, refused with the places where it is not), build and check every guide of a plan, write the outputs
//! for the print lab, and run the bundled demo case. Written once here, they cannot drift apart, and the modules
//! below stay single-purpose: `plan` reads no file but its own, `guide` knows nothing of plans, exports or renders,
//! and the front ends only parse and present.
//!
//! Everything here is cancellable through the [`Progress`](crate::progress::Progress) it is given, and writes
//! nothing until all of its work is done (every file atomically, the manifest last).

mod approval;
mod bone;
mod build;
mod bundle;
pub mod demo;
mod error;
mod flap;
mod model;
mod report;
mod scene;

pub use approval::{approve, release_for};
pub use bone::{
    ct_path_for_plan, new_plan_from_ct, new_plan_from_stl, open_bone, open_case, plan_ct_path, read_bone_model,
    BoneOrigin, CaseBone, NewPlan, NewPlanFromStl, OpenCase, StlModel,
};
pub use build::{
    build_guides, build_guides_for, build_guides_reusing, guide_files, guide_request, guide_requests, propose_guide,
    render_guides, write_guides, CaseGuides, CaseProposal, GuideBones, GuideOutcome, PlannedGuide, VerifiedGuide,
};
pub use bundle::{
    make_bundle, shipped_plan, verify_bundle, BundleCheck, BundleReport, CHECKSUMS_FILE, GUIDES_FOLDER, INPUTS_FOLDER,
    PATH_NOT_SHIPPED, PLAN_FILE, REPORT_FILE,
};
pub use error::CaseError;
pub use flap::{
    bone_beside_resection, donor_region, donor_segmentation, donor_shift_beside, make_donor, open_donor,
    propose_reconstruction, recorded_donor, segment_patches, DonorBone, DonorInput, FlapProposal, FlapRequest,
    SegmentPatch, DONOR_GUIDE_NAME, DONOR_GUIDE_TEMPLATE,
};
pub use model::{
    make_models, make_models_with, write_models, AnatomicalModel, ModelBase, ModelLabel, ModelOptions,
    DEFAULT_MODEL_MARGIN_MM,
};
pub use report::{make_report, report_file_name, report_pdf};
pub use scene::{glb_file_name, plan_glb};
