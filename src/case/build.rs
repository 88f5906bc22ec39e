//! From a plan to files for the print lab: every guide of the plan built and checked, and only if all pass, exported
//! with review images.
//!
//! Why all-or-nothing: a lab receives a set of guides for one operation; a set with one guide silently missing is
//! worse than a clear refusal. Each guide's outcome is kept (a refused guide as a [`Finding`] with its code, a built
//! one with its checks), so a front end can show every problem at once; writing refuses while any guide has a
//! finding, and then writes nothing.
//!
//! Why the printer can be overridden here and not only in the plan: a print lab may print on another machine than
//! the one planned. The plan's printer is what was approved; an override is recorded next to it in the manifest.

use rayon::prelude::*;
use std::path::Path;

use super::CaseError;
use crate::export::{
    export_files, export_guides, sanitize_file_component, Attachment, ExportInfo, ExportSummary, GuideExport, Release,
};
use crate::finding::{element, Finding, FindingCode};
use crate::guide::build::{
    build_guide, BuiltGuide, ChannelSpec, GuideError, GuideRequest, LabelRequest, SlotSpec, DEFAULT_GRID_MM,
};
use crate::guide::check::{check_guide, GuideCheck, WallFix};
use crate::guide::footprint::move_nearest_edge;
use crate::guide::propose::{propose_footprint, Proposal, PROPOSAL_MARGINS};
use crate::label::MIN_CAP_HEIGHT_MM;
use crate::measure::BoneQuery;
use crate::mesh::{BoundingBox, Mesh};
use crate::plan::{plan_content_sha256, GuideBone, GuideSpec, Plan, ResectedSide, FIXATION_DIAMETER_MM};
use crate::progress::{NoProgress, Progress};
use crate::render::{encode_png, grown, render, render_views, RgbImage, Scene, View, BONE_COLOUR, GUIDE_COLOUR};
use crate::template::{builtin_printers, builtin_template};

/// The bones a plan's guides seat on: the plan's own and, for a reconstruction, its donor. A `&Mesh` converts into
/// the plan's own bone alone (a plan without a donor guide).
#[derive(Clone, Debug)]
pub struct GuideBones<'a> {
    /// The plan's own bone.
    pub recipient: &'a Mesh,
    /// The reconstruction's donor bone, when opened.
    pub donor: Option<&'a Mesh>,
    /// The names of the guides that seat on the donor (their renders show the donor).
    pub donor_guides: Vec<String>,
}

impl<'a> From<&'a Mesh> for GuideBones<'a> {
    fn from(recipient: &'a Mesh) -> Self {
        GuideBones {
            recipient,
            donor: None,
            donor_guides: Vec::new(),
        }
    }
}

impl<'a> GuideBones<'a> {
    /// The bones of `plan`'s guides: its own bone and its reconstruction's donor.
    pub fn of(plan: &Plan, recipient: &'a Mesh, donor: Option<&'a Mesh>) -> GuideBones<'a> {
        GuideBones {
            recipient,
            donor,
            donor_guides: plan
                .guides
                .iter()
                .filter(|g| g.bone == GuideBone::Donor)
                .map(|g| g.name.clone())
                .collect(),
        }
    }

    /// The bone the built guide `name` seats on (the donor for a donor guide when it is open).
    pub fn for_name(&self, name: &str) -> &'a Mesh {
        match self.donor {
            Some(d) if self.donor_guides.iter().any(|n| n == name) => d,
            _ => self.recipient,
        }
    }

    /// The bone guide `g` seats on, or `None` for a donor guide when the donor is not open.
    pub fn for_guide(&self, g: &GuideSpec) -> Option<&'a Mesh> {
        match g.bone {
            GuideBone::Recipient => Some(self.recipient),
            GuideBone::Donor => self.donor,
        }
    }
}

/// What became of one guide of the plan.
#[derive(Clone, Debug)]
pub enum GuideOutcome {
    /// It was built and checked (its check may have failed: see [`GuideCheck::findings`]).
    Built {
        /// The solid and how it was placed.
        guide: Box<BuiltGuide>,
        /// Its checks.
        check: Box<GuideCheck>,
    },
    /// It could not be built as planned.
    Refused(Finding),
}

/// One guide of the plan and its outcome.
#[derive(Clone, Debug)]
pub struct PlannedGuide {
    /// The guide's name in the plan.
    pub name: String,
    /// The printer profile the plan names for it.
    pub printer_in_plan: String,
    /// What became of it.
    pub outcome: GuideOutcome,
}

impl PlannedGuide {
    /// The guide's findings: its refusal, or its failed checks (empty when it passed).
    pub fn findings(&self) -> Vec<Finding> {
        match &self.outcome {
            GuideOutcome::Built { check, .. } => check.findings.clone(),
            GuideOutcome::Refused(f) => vec![f.clone()],
        }
    }

    /// The built guide and its checks, if it was built.
    pub fn built(&self) -> Option<(&BuiltGuide, &GuideCheck)> {
        match &self.outcome {
            GuideOutcome::Built { guide, check } => Some((guide, check)),
            GuideOutcome::Refused(_) => None,
        }
    }
}

/// Every guide of a plan, in plan order.
#[derive(Clone, Debug, Default)]
pub struct CaseGuides {
    /// The guides.
    pub guides: Vec<PlannedGuide>,
}

impl CaseGuides {
    /// Every finding of every guide, in plan order.
    pub fn findings(&self) -> Vec<Finding> {
        self.guides.iter().flat_map(PlannedGuide::findings).collect()
    }

    /// Whether every guide was built and passed every check.
    pub fn all_passed(&self) -> bool {
        self.guides.iter().all(|g| g.findings().is_empty())
    }
}

/// A guide built and checked by [`propose_guide`] while it verified its proposal: [`build_guides_reusing`] takes it
/// instead of building the same guide again. It is reused only for exactly the request it was built from, on exactly
/// the bone it was built on (the bone's SHA-256), so a plan edited since, another printer or another bone builds anew;
/// builds are deterministic, so a reused guide is byte for byte the one a new build would make.
#[derive(Clone, Debug)]
pub struct VerifiedGuide {
    request: GuideRequest,
    bone_sha256: String,
    built: Box<BuiltGuide>,
    check: Box<GuideCheck>,
}

impl VerifiedGuide {
    /// The guide `built` from `request` on `bone`, with its checks, for [`build_guides_reusing`].
    pub(super) fn new(request: GuideRequest, bone: &Mesh, built: BuiltGuide, check: GuideCheck) -> VerifiedGuide {
        VerifiedGuide {
            request,
            bone_sha256: mesh_sha256(bone),
            built: Box::new(built),
            check: Box::new(check),
        }
    }

    /// The guide's name.
    pub fn name(&self) -> &str {
        &self.request.name
    }

    /// The guide as built.
    pub fn guide(&self) -> &BuiltGuide {
        &self.built
    }
}

/// SHA-256 of a mesh's vertex coordinates and triangles (little-endian), the identity of a bone for
/// [`VerifiedGuide`].
fn mesh_sha256(mesh: &Mesh) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update((mesh.positions.len() as u64).to_le_bytes());
    for p in &mesh.positions {
        for c in p {
            hasher.update(c.to_le_bytes());
        }
    }
    hasher.update((mesh.triangles.len() as u64).to_le_bytes());
    for t in &mesh.triangles {
        for i in t {
            hasher.update(i.to_le_bytes());
        }
    }
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// A seating direction and a footprint proposed for `guide`, and the guide built from it when it passed every check.
#[derive(Clone, Debug)]
pub struct CaseProposal {
    /// The proposal, to write into the plan.
    pub proposal: Proposal,
    /// The guide built and checked from it, when it passed (for [`build_guides_reusing`]).
    pub verified: Option<VerifiedGuide>,
}

/// A seating direction and a footprint proposed for `guide` (its own footprint and seating direction are ignored)
/// on `bone`: see [`crate::guide::propose`]. Each proposal is built and checked here, from the largest margin under
/// the seating thresholds to none ([`PROPOSAL_MARGINS`]); the first whose guide passes every check is returned with
/// that guide, else the first made (its build will report why). The caller writes it into the plan.
pub fn propose_guide(plan: &Plan, guide: &GuideSpec, bone: &Mesh) -> Result<CaseProposal, CaseError> {
    let request = guide_request(plan, guide, None).map_err(|f| CaseError::GuideRefused(Box::new(f)))?;
    let query = BoneQuery::new(bone)?;
    let mut first = None;
    for margin in PROPOSAL_MARGINS {
        let proposal = propose_footprint(
            &query,
            &request.slots,
            &request.channels,
            request.params.tolerance.bone_offset_mm,
            &request.params.seating,
            margin,
        )
        .map_err(|error| CaseError::Propose {
            guide: guide.name.clone(),
            error,
        })?;
        // With the label the build will give it (its side depends on the proposed footprint), so the guide built
        // here is the one the build reuses.
        let mut proposed = guide.clone();
        proposed.footprint.outline_mm = proposal.outline_mm.clone();
        let index = plan
            .guides
            .iter()
            .position(|g| g.name == guide.name)
            .map_or(plan.guides.len() + 1, |i| i + 1);
        let trial = GuideRequest {
            seating_direction: proposal.seating_direction,
            footprint_mm: proposal.outline_mm.clone(),
            label: label_request(plan, index, &proposed, bone, unreleased(plan, None)),
            ..request.clone()
        };
        match build_guide(bone, &trial, &NoProgress) {
            Ok(built) => {
                let check = check_guide(&built, &query);
                if check.passed {
                    let verified = VerifiedGuide {
                        request: trial,
                        bone_sha256: mesh_sha256(bone),
                        built: Box::new(built),
                        check: Box::new(check),
                    };
                    return Ok(CaseProposal {
                        proposal,
                        verified: Some(verified),
                    });
                }
            }
            // A label with no room does not make the footprint wrong: the first footprint whose guide passes
            // without it is the proposal, and the build says where the label had no room.
            Err(GuideError::NoRoomForLabel { .. }) => {
                let bare = GuideRequest { label: None, ..trial };
                if build_guide(bone, &bare, &NoProgress).is_ok_and(|built| check_guide(&built, &query).passed) {
                    return Ok(CaseProposal {
                        proposal,
                        verified: None,
                    });
                }
            }
            Err(_) => {}
        }
        first.get_or_insert(proposal);
    }
    Ok(CaseProposal {
        proposal: first.expect("at least one margin was tried"),
        verified: None,
    })
}

/// The build request of each guide of `plan`, or the finding that stops it: an unknown template or printer,
/// parameters the template refuses, a plane or drill the plan lacks. `printer_override` replaces every guide's
/// printer profile (a print lab's own machine).
pub fn guide_requests(plan: &Plan, printer_override: Option<&str>) -> Vec<Result<GuideRequest, Finding>> {
    plan.guides
        .iter()
        .map(|g| guide_request(plan, g, printer_override))
        .collect()
}

/// The build request of guide `g` of `plan` (or one being added to it), or the finding that stops it; see
/// [`guide_requests`].
pub fn guide_request(plan: &Plan, g: &GuideSpec, printer_override: Option<&str>) -> Result<GuideRequest, Finding> {
    let el = element("guides", &g.name);
    let refuse = |code, message: String| Finding::error(code, el.clone(), format!("guide '{}': {message}", g.name));
    let template = builtin_template(&g.template).map_err(|e| refuse(FindingCode::UnknownTemplate, e.to_string()))?;
    let printer_name = printer_override.unwrap_or(&g.printer);
    let printers = builtin_printers().map_err(|e| refuse(FindingCode::UnknownPrinter, e.to_string()))?;
    let profile = printers
        .get(printer_name)
        .map_err(|e| refuse(FindingCode::UnknownPrinter, e.to_string()))?;
    let params = template
        .resolve(&g.parameters, profile)
        .map_err(|e| refuse(FindingCode::TemplateParameterInvalid, e.to_string()))?;
    let missing = |what: &str, name: &str| {
        refuse(
            FindingCode::GuideReferenceMissing,
            format!("references {what} '{name}', which the plan does not have"),
        )
    };
    let (slots, channels) = if g.bone == GuideBone::Donor {
        let Some(r) = &plan.reconstruction else {
            return Err(missing("the reconstruction's donor", "donor"));
        };
        let cuts = r.donor_cuts(plan);
        let fixations = r.fixations();
        let slots = g
            .planes
            .iter()
            .map(|name| {
                let c = cuts
                    .iter()
                    .find(|c| &c.name == name)
                    .ok_or_else(|| missing("donor cut", name))?;
                Ok(SlotSpec {
                    name: c.name.clone(),
                    point_mm: c.cut.plane.point_mm,
                    normal: c.cut.plane.normal,
                    blade_thickness_mm: r.parameters.blade_thickness_mm,
                    removes: Some(c.cut.plane.normal),
                })
            })
            .collect::<Result<Vec<_>, Finding>>()?;
        let channels = g
            .drills
            .iter()
            .map(|name| {
                let f = fixations
                    .iter()
                    .find(|f| &f.name == name)
                    .ok_or_else(|| missing("donor fixation hole", name))?;
                Ok(ChannelSpec {
                    name: f.name.clone(),
                    entry_mm: f.entry_mm,
                    direction: f.direction,
                    drill_diameter_mm: FIXATION_DIAMETER_MM,
                })
            })
            .collect::<Result<Vec<_>, Finding>>()?;
        (slots, channels)
    } else {
        let slots = g
            .planes
            .iter()
            .map(|name| {
                let p = plan
                    .planes
                    .iter()
                    .find(|p| &p.name == name)
                    .ok_or_else(|| missing("cutting plane", name))?;
                Ok(SlotSpec {
                    name: p.name.clone(),
                    point_mm: p.point_mm,
                    normal: p.normal,
                    blade_thickness_mm: p.blade_thickness_mm,
                    removes: match p.resected_side {
                        ResectedSide::Positive => Some(p.normal),
                        ResectedSide::Negative => Some(p.normal.map(|c| -c)),
                        ResectedSide::None => None,
                    },
                })
            })
            .collect::<Result<Vec<_>, Finding>>()?;
        let channels = g
            .drills
            .iter()
            .map(|name| {
                let d = plan
                    .drills
                    .iter()
                    .find(|d| &d.name == name)
                    .ok_or_else(|| missing("drill", name))?;
                Ok(ChannelSpec {
                    name: d.name.clone(),
                    entry_mm: d.entry_mm,
                    direction: d.direction,
                    drill_diameter_mm: d.diameter_mm,
                })
            })
            .collect::<Result<Vec<_>, Finding>>()?;
        (slots, channels)
    };
    Ok(GuideRequest {
        name: g.name.clone(),
        params,
        slots,
        channels,
        seating_direction: g.seating_direction,
        footprint_mm: g.footprint.outline_mm.clone(),
        grid_mm: DEFAULT_GRID_MM,
        keep_operands: false,
        // Filled in by the build, which knows the bone (the side) and the release (DRAFT).
        label: None,
    })
}

/// Builds and checks every guide of `plan` on `bone`. A guide that cannot be built is a [`GuideOutcome::Refused`]
/// with its finding, not an error; errors are a bone that cannot be queried and a cancel.
pub fn build_guides<'a>(
    plan: &Plan,
    bone: impl Into<GuideBones<'a>>,
    printer_override: Option<&str>,
    progress: &dyn Progress,
) -> Result<CaseGuides, CaseError> {
    build_guides_reusing(plan, bone, printer_override, &[], progress)
}

/// [`build_guides`], taking a guide from `verified` instead of building it again where its request and bone are
/// exactly those it was built from (a guide whose proposal was just verified by [`propose_guide`]).
pub fn build_guides_reusing<'a>(
    plan: &Plan,
    bone: impl Into<GuideBones<'a>>,
    printer_override: Option<&str>,
    verified: &[VerifiedGuide],
    progress: &dyn Progress,
) -> Result<CaseGuides, CaseError> {
    build_guides_marked(
        plan,
        bone.into(),
        printer_override,
        verified,
        unreleased(plan, printer_override),
        progress,
    )
}

/// Labels say DRAFT unless the guides could be released as they are.
fn unreleased(plan: &Plan, printer_override: Option<&str>) -> bool {
    super::release_for(plan, printer_override, false).map_or(true, |r| r.is_draft())
}

/// [`build_guides`] for `release`: the guides' labels say DRAFT exactly when the release is a draft (an approved plan
/// built with `--draft` too), as the file names and the manifest do.
pub fn build_guides_for<'a>(
    plan: &Plan,
    bone: impl Into<GuideBones<'a>>,
    printer_override: Option<&str>,
    release: &crate::export::Release,
    progress: &dyn Progress,
) -> Result<CaseGuides, CaseError> {
    build_guides_marked(plan, bone.into(), printer_override, &[], release.is_draft(), progress)
}

/// A guide is on the patient's left (L), right (R) or across the middle (MID) when its footprint's centre lies this
/// far from the middle of the bone's box, mm.
const SIDE_OFFSET_MM: f64 = 10.0;

/// The label of guide `g` (number `index` from 1 in the plan) as the build embosses it, in capitals: the plan's lines,
/// or the case ID, `G<index>` (the report and the manifest give its name) and the guide's side; DRAFT on a draft.
/// Ways to set it are tried from the most lines to the fewest.
fn label_request(plan: &Plan, index: usize, g: &GuideSpec, bone: &Mesh, draft: bool) -> Option<LabelRequest> {
    let label = g.label.as_ref()?;
    let draft_word = if draft { Some("DRAFT".to_string()) } else { None };
    let settings: Vec<Vec<String>> = if label.text.is_empty() {
        let n = g.footprint.outline_mm.len().max(1) as f64;
        let x = g.footprint.outline_mm.iter().map(|p| p[0]).sum::<f64>() / n;
        let middle = bone.bounding_box().map_or(0.0, |b| b.center_mm()[0]);
        // LPS: +x is the patient's left.
        let side = if x - middle > SIDE_OFFSET_MM {
            "L"
        } else if middle - x > SIDE_OFFSET_MM {
            "R"
        } else {
            "MID"
        };
        let (case, code) = (plan.case_id.to_string(), format!("G{index} {side}"));
        let joined = |a: &str, b: Option<&String>| b.map_or(a.to_string(), |b| format!("{a} {b}"));
        let mut three = vec![case.clone(), code.clone()];
        three.extend(draft_word.clone());
        vec![
            three,
            vec![case.clone(), joined(&code, draft_word.as_ref())],
            vec![format!("{case} G{index}"), joined(side, draft_word.as_ref())],
        ]
    } else {
        let mut lines = label.text.clone();
        lines.extend(draft_word.clone());
        let mut settings = vec![lines.clone()];
        for width_mm in [30.0, 22.0, 15.0] {
            let wrapped = crate::label::wrap_lines(&lines, label.cap_height_mm, width_mm);
            if !settings.contains(&wrapped) {
                settings.push(wrapped);
            }
        }
        settings
    };
    Some(LabelRequest {
        settings: settings
            .into_iter()
            .map(|lines| lines.iter().map(|l| l.to_uppercase()).collect())
            .collect(),
        cap_height_mm: label.cap_height_mm,
        near_mm: label.near_mm,
    })
}

fn build_guides_marked(
    plan: &Plan,
    bones: GuideBones<'_>,
    printer_override: Option<&str>,
    verified: &[VerifiedGuide],
    draft: bool,
    progress: &dyn Progress,
) -> Result<CaseGuides, CaseError> {
    let mut requests = guide_requests(plan, printer_override);
    for (index, (request, g)) in requests.iter_mut().zip(&plan.guides).enumerate() {
        let Some(bone) = bones.for_guide(g) else {
            *request = Err(Finding::error(
                FindingCode::GuideReferenceMissing,
                element("guides", &g.name),
                format!(
                    "guide '{}' seats on the reconstruction's donor, which was not opened (the desktop application \
                     does not open a donor yet): build it with `guidesmith build`, which opens the plan's donor CT",
                    g.name
                ),
            ));
            continue;
        };
        if let Ok(r) = request {
            r.label = label_request(plan, index + 1, g, bone, draft);
            if let Some(l) = r.label.as_ref().filter(|l| l.cap_height_mm < MIN_CAP_HEIGHT_MM) {
                *request = Err(Finding::error(
                    FindingCode::LabelNoRoom,
                    element("guides", &g.name),
                    format!(
                        "guide '{}': label letters of {} mm are below the {MIN_CAP_HEIGHT_MM} mm that print legibly",
                        g.name, l.cap_height_mm
                    ),
                ));
            }
        }
    }
    let query = BoneQuery::new(bones.recipient)?;
    let donor_query = match bones.donor {
        Some(d) if plan.guides.iter().any(|g| g.bone == GuideBone::Donor) => Some(BoneQuery::new(d)?),
        _ => None,
    };
    // The identity of each bone, when a verified guide could be taken.
    let bone_sha256 = (!verified.is_empty()).then(|| mesh_sha256(bones.recipient));
    let donor_sha256 = bones.donor.filter(|_| !verified.is_empty()).map(mesh_sha256);
    let reusable = |request: &GuideRequest, on: GuideBone| {
        let sha = match on {
            GuideBone::Recipient => bone_sha256.as_deref(),
            GuideBone::Donor => donor_sha256.as_deref(),
        };
        verified
            .iter()
            .find(|v| &v.request == request && sha == Some(v.bone_sha256.as_str()))
    };
    let requests: Vec<(Result<GuideRequest, Finding>, GuideBone)> =
        requests.into_iter().zip(plan.guides.iter().map(|g| g.bone)).collect();
    progress.begin("building guides", requests.len() as u64);
    let reported = std::sync::Mutex::new(());
    // Guides are independent: each is built and checked on its own thread (most of a build, the booleans, runs on
    // one core), and collected in the plan's order, so the result does not depend on which finishes first.
    let outcomes: Vec<Result<GuideOutcome, CaseError>> = requests
        .into_par_iter()
        .map(|(request, on)| {
            let (bone, query): (&Mesh, &BoneQuery) = match (on, bones.donor, &donor_query) {
                (GuideBone::Donor, Some(d), Some(q)) => (d, q),
                _ => (bones.recipient, &query),
            };
            let reusable = |r: &GuideRequest| reusable(r, on);
            let outcome = match request {
                Err(finding) => GuideOutcome::Refused(finding),
                Ok(request) => match reusable(&request) {
                    Some(v) => GuideOutcome::Built {
                        guide: v.built.clone(),
                        check: v.check.clone(),
                    },
                    None => match build_guide(bone, &request, progress) {
                        Ok(built) => {
                            progress.checkpoint()?;
                            let mut check = check_guide(&built, query);
                            suggest_wall_fix(bone, query, &request, &built, &mut check, progress)?;
                            GuideOutcome::Built {
                                guide: Box::new(built),
                                check: Box::new(check),
                            }
                        }
                        Err(e) => match e.finding() {
                            Some(finding) => GuideOutcome::Refused(finding),
                            None => return Err(CaseError::Cancelled(crate::progress::Cancelled)),
                        },
                    },
                },
            };
            // A guide finished after a cancel reports nothing; the lock makes "not cancelled, one more done" one step.
            let _one_at_a_time = reported.lock().unwrap_or_else(|e| e.into_inner());
            progress.checkpoint()?;
            progress.advance(1);
            Ok(outcome)
        })
        .collect();
    // A cancel while the last guides finished still cancels: nothing is returned to write.
    progress.checkpoint()?;
    let mut guides = Vec::with_capacity(outcomes.len());
    for (spec, outcome) in plan.guides.iter().zip(outcomes) {
        guides.push(PlannedGuide {
            name: spec.name.clone(),
            printer_in_plan: spec.printer.clone(),
            outcome: outcome?,
        });
    }
    progress.end();
    Ok(CaseGuides { guides })
}

/// Moves of a footprint edge tried when a wall is too thin, mm (positive: outward), smallest first.
const WALL_FIX_MOVES_MM: [f64; 4] = [1.0, -1.0, 2.0, -2.0];

/// When `check` has a wall that is too thin, tries moving the footprint edge nearest that wall by each of
/// [`WALL_FIX_MOVES_MM`], builds and checks each (on this thread, without progress), and adds the first move whose
/// guide fails nothing but perhaps the seating play to the finding's message and to [`GuideCheck::wall_fix`]: a
/// change the engineer can make to the plan that was tried, not a guess. Nothing is added when no move helps. The plan itself is never changed here.
///
/// Why the nearest edge: a wall too thin next to a slot or barrel is, in most cases, the pad's own edge left as a
/// strip under the housing where the footprint's edge runs beside it (see docs/PERFORMANCE.md); whether moving that
/// edge out (so the pad runs under the housing) or in (so the housing stands on its own) helps depends on the bone.
fn suggest_wall_fix(
    bone: &Mesh,
    query: &BoneQuery,
    request: &GuideRequest,
    built: &BuiltGuide,
    check: &mut GuideCheck,
    progress: &dyn Progress,
) -> Result<(), CaseError> {
    let Some(index) = check.findings.iter().position(|f| f.code == FindingCode::WallTooThin) else {
        return Ok(());
    };
    let Some(at) = check.findings[index].place_mm else {
        return Ok(());
    };
    for by_mm in WALL_FIX_MOVES_MM {
        progress.checkpoint()?;
        let Some(moved) = move_nearest_edge(&built.frame, &request.footprint_mm, at, by_mm) else {
            return Ok(());
        };
        let mut trial = request.clone();
        trial.footprint_mm = moved.outline_mm.clone();
        let Ok(again) = build_guide(bone, &trial, &NoProgress) else {
            continue;
        };
        let again_check = check_guide(&again, query);
        // Only a footprint that fails nothing but perhaps the seating play (also a matter of the footprint) is offered.
        if !again_check.walls.ok
            || again_check
                .findings
                .iter()
                .any(|f| f.code != FindingCode::GuideSeatingLoose)
        {
            continue;
        }
        let n = request.footprint_mm.len();
        let still: Vec<FindingCode> = again_check.findings.iter().map(|f| f.code).collect();
        let names: Vec<&str> = still.iter().map(|c| c.as_str()).collect();
        let finding = &mut check.findings[index];
        finding.message.push_str(&format!(
            "; moving the footprint's edge from point {} to point {} (counted from 1; it runs {:.1} mm from here) {} mm \
             {} gives walls of at least {:.2} mm (built and checked{})",
            moved.edge + 1,
            (moved.edge + 1) % n + 1,
            moved.distance_mm,
            by_mm.abs(),
            if by_mm > 0.0 { "outward" } else { "inward" },
            again_check.walls.thinnest_mm,
            if names.is_empty() {
                ", every check passes".to_string()
            } else {
                format!("; it still fails {}", names.join(", "))
            }
        ));
        check.wall_fix = Some(WallFix {
            edge: moved.edge,
            by_mm,
            outline_mm: moved.outline_mm,
            thinnest_wall_mm: again_check.walls.thinnest_mm,
            still_fails: still,
        });
        return Ok(());
    }
    Ok(())
}

/// Writes the guides (only if every guide was built and passed every check), their review images and, last, the
/// manifest into `out_dir`. Everything is made in memory first (cancellable), then written, so a cancel or a failure
/// leaves no file. `release` ([`super::release_for`]) says whether they are released or drafts (file names then
/// carry `_DRAFT`); the manifest records it.
///
/// Review images are not print files: `renders/<case>_<guide>.png` is a labelled contact sheet of the guide seated
/// on the bone (along its seating direction, oblique, from above) and of its contact side alone, and
/// `renders/<case>_overview.png` shows every guide on the bone. The manifest lists them with the print files.
pub fn write_guides<'a>(
    out_dir: &Path,
    plan: &Plan,
    bone: impl Into<GuideBones<'a>>,
    guides: &CaseGuides,
    release: &Release,
    progress: &dyn Progress,
) -> Result<ExportSummary, CaseError> {
    with_export(
        plan,
        bone.into(),
        guides,
        release,
        None,
        progress,
        |info, exports, renders| export_guides(out_dir, info, exports, renders),
    )
}

/// The files [`write_guides`] writes, in memory (for a bundle), under the same rules: only if every guide passed.
/// `renders` are the guides' review images as [`render_guides`] made them (a bundle renders them while it makes the
/// models); `extra` files (anatomical models) are listed in the manifest with them.
pub fn guide_files<'a>(
    plan: &Plan,
    bone: impl Into<GuideBones<'a>>,
    guides: &CaseGuides,
    release: &Release,
    renders: &[Attachment],
    extra: &[Attachment],
    progress: &dyn Progress,
) -> Result<Vec<Attachment>, CaseError> {
    with_export(
        plan,
        bone.into(),
        guides,
        release,
        Some(renders),
        progress,
        |info, exports, renders| {
            let mut attachments = renders.to_vec();
            attachments.extend(extra.iter().cloned());
            export_files(info, exports, &attachments)
        },
    )
}

/// Renders the review images of the guides unless `rendered` gives them (only if every guide passed) and hands the
/// export's description to `export`. The export names the plan by its content hash (`plan_content_sha256`: without approvals and path hints),
/// which is the same in the engineer's plan file and in a bundle's plan.
fn with_export<T>(
    plan: &Plan,
    bone: GuideBones<'_>,
    guides: &CaseGuides,
    release: &Release,
    rendered: Option<&[Attachment]>,
    progress: &dyn Progress,
    export: impl FnOnce(&ExportInfo, &[GuideExport], &[Attachment]) -> Result<T, crate::export::ExportError>,
) -> Result<T, CaseError> {
    let findings = guides.findings();
    if !findings.is_empty() {
        return Err(CaseError::GuidesRefused(findings));
    }
    let built: Vec<(&PlannedGuide, &BuiltGuide, &GuideCheck)> = guides
        .guides
        .iter()
        .filter_map(|g| g.built().map(|(b, c)| (g, b, c)))
        .collect();
    let plan_sha256 = plan_content_sha256(plan);
    let case_id = plan.case_id.to_string();
    let renders = match rendered {
        Some(r) => r.to_vec(),
        None => render_guides(
            &case_id,
            bone,
            &built.iter().map(|(_, b, _)| *b).collect::<Vec<_>>(),
            progress,
        )?,
    };
    progress.checkpoint()?;
    let info = ExportInfo {
        case_id: &case_id,
        plan_sha256: &plan_sha256,
        software_version: env!("CARGO_PKG_VERSION"),
        release,
    };
    let exports: Vec<GuideExport<'_>> = built
        .iter()
        .map(|(planned, g, c)| GuideExport {
            name: &g.name,
            mesh: &g.mesh,
            params: &g.params,
            printer_in_plan: &planned.printer_in_plan,
            checks: serde_json::to_value(c).unwrap_or(serde_json::Value::Null),
        })
        .collect();
    Ok(export(&info, &exports, &renders)?)
}

/// Margin around a guide in its renders, mm: enough bone to see where the guide sits.
const RENDER_MARGIN_MM: f64 = 12.0;
/// Bone kept around a guide in its renders, mm: more than the margin, so the frame is full of bone.
const RENDER_BONE_MARGIN_MM: f64 = 25.0;
/// Margin around all guides in the overview, mm (the bone is cropped to it as well).
const OVERVIEW_MARGIN_MM: f64 = 30.0;
/// One contact-sheet cell, pixels.
const RENDER_CELL: (u32, u32) = (640, 480);
/// Overview image size, pixels.
const OVERVIEW_SIZE: (u32, u32) = (1000, 750);
/// Folder of the review images inside the export folder.
const RENDERS_FOLDER: &str = "renders";

/// The review images of `guides` on `bone` as PNG files (one contact sheet per guide and an overview), in memory.
/// Cancellable between images.
pub fn render_guides<'a>(
    case_id: &str,
    bones: impl Into<GuideBones<'a>>,
    guides: &[&BuiltGuide],
    progress: &dyn Progress,
) -> Result<Vec<Attachment>, CaseError> {
    let bones = bones.into();
    progress.begin("rendering", guides.len() as u64 + 1);
    let png = |image: &RgbImage, name: String| -> Result<Attachment, CaseError> {
        let name = format!("{RENDERS_FOLDER}/{name}");
        let bytes = encode_png(image, Path::new(&name))?;
        Ok(Attachment { name, bytes })
    };
    let mut out = Vec::with_capacity(guides.len() + 1);
    let mut overview = Scene::new();
    let mut all: Option<BoundingBox> = None;
    for g in guides {
        progress.checkpoint()?;
        let on = bones.for_name(&g.name);
        let Some(bb) = g.mesh.bounding_box() else { continue };
        // The overview shows the guides on the plan's own bone; a donor guide has its own sheet only.
        if std::ptr::eq(on, bones.recipient) {
            overview.add(&g.mesh, GUIDE_COLOUR, 1.0);
            all = Some(all.map_or(bb, |a| a.union(&bb)));
        }
        let focus = Some(grown(bb, RENDER_MARGIN_MM));
        // Only the bone around the guide: the rest of a skull would hide it in some views.
        let bone = &on.triangles_touching(&grown(bb, RENDER_BONE_MARGIN_MM));
        let seat = g.frame.w();
        let up = pick_up(&seat);
        let toward_bone: [f64; 3] = (-seat).into();
        let oblique: [f64; 3] = (-seat + nalgebra::Vector3::new(0.0, 0.0, -0.6)).into();
        let mut seated = Scene::new();
        seated.add(bone, BONE_COLOUR, 1.0);
        seated.add(&g.mesh, GUIDE_COLOUR, 1.0);
        let views = [
            ("seated, along seating", View::Along { dir: toward_bone, up }),
            ("seated, oblique", View::Along { dir: oblique, up }),
            ("seated, superior", View::Superior),
        ];
        let mut sheet = render_views(&seated, &views, RENDER_CELL, focus);
        // The contact side: the guide alone, seen from the bone.
        let mut alone = Scene::new();
        alone.add(&g.mesh, GUIDE_COLOUR, 1.0);
        let contact = render_views(
            &alone,
            &[("contact side", View::Along { dir: seat.into(), up })],
            RENDER_CELL,
            Some(grown(bb, 2.0)),
        );
        let (cw, ch) = RENDER_CELL;
        let gap = sheet.width().saturating_sub(2 * cw);
        sheet.paste(&contact, cw + gap, ch + gap);
        out.push(png(
            &sheet,
            format!("{}_{}.png", case_id, sanitize_file_component(&g.name)),
        )?);
        progress.advance(1);
    }
    progress.checkpoint()?;
    if let Some(all) = all {
        overview.add(
            bones.recipient.triangles_touching(&grown(all, OVERVIEW_MARGIN_MM)),
            BONE_COLOUR,
            1.0,
        );
    }
    let focus = all.map(|a| grown(a, OVERVIEW_MARGIN_MM));
    let image = render(
        &overview,
        View::Iso(20.0, 20.0),
        OVERVIEW_SIZE.0,
        OVERVIEW_SIZE.1,
        focus,
    );
    out.push(png(&image, format!("{case_id}_overview.png"))?);
    progress.advance(1);
    progress.end();
    Ok(out)
}

/// Superior (+z) as "up" unless the view looks along it.
fn pick_up(seat: &nalgebra::Vector3<f64>) -> [f64; 3] {
    if seat.z.abs() > 0.9 {
        [0.0, -1.0, 0.0]
    } else {
        [0.0, 0.0, 1.0]
    }
}
