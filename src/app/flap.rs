//! The fibula free-flap reconstruction in the window: the donor opened (its CT segmented, or its STL), the two
//! resection planes, the segment count and the settings chosen, the segments proposed again in the background
//! whenever the planes or the settings change (a plane's pose follows its handles while they are dragged), every
//! measurement and finding listed, and the segments drawn twice: in the mandible where the plan puts them, and on the
//! fibula, which stands beside the mandible in the same view. "Record in plan" proposes once more with the fibula
//! guide built and checked and records the reconstruction and its guide as one undoable edit.
//!
//! Why here and not in the library: nothing in this file computes geometry. The proposal, the segments' patches and
//! the donor's place beside the mandible are the case layer's (`case::propose_reconstruction`,
//! `case::segment_patches`, `case::donor_shift_beside`), so what the window shows is what `plan reconstruct` records.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use eframe::egui::{self, Color32, RichText};
use guidesmith::case::{self, DonorBone, DonorInput, FlapProposal, FlapRequest};
use guidesmith::measure::BoneQuery;
use guidesmith::mesh::Mesh;
use guidesmith::plan::{Edit, FlapParameters, Plan, ResectedSide};

use super::jobs::{Job, Polled};
use super::view3d::{GpuMesh, SceneItem};
use super::{hash_of, GuidesmithApp, Outcome};

/// The segments' colours (linear RGB), S1 to S4.
const SEGMENT_COLOURS: [[f32; 3]; 4] = [[0.95, 0.5, 0.1], [0.2, 0.7, 0.3], [0.55, 0.35, 0.9], [0.15, 0.6, 0.9]];
/// The donor stands this far beside the mandible in the view, mm.
const DONOR_BESIDE_MM: f64 = 20.0;
/// The donor is drawn this far beyond the segments, mm (the rest of the leg would dwarf the mandible).
const DONOR_CONTEXT_MM: f64 = 25.0;
/// The segment counts offered (`None`: the fewest that meet the deviation limits).
const COUNTS: [(Option<usize>, &str); 5] = [
    (None, "Fewest"),
    (Some(1), "1 segment"),
    (Some(2), "2 segments"),
    (Some(3), "3 segments"),
    (Some(4), "4 segments"),
];

/// What the reconstruction panel shows and is doing.
pub struct FlapPanel {
    /// The donor's CT folder or STL file, as typed.
    pub donor_path: String,
    /// The donor, once opened.
    pub donor: Option<OpenDonor>,
    /// The resection planes the flap bridges, in contour order (names of the plan's planes).
    pub planes: [String; 2],
    /// The segment count (`None`: the fewest that meet the limits).
    pub count: Option<usize>,
    /// The settings.
    pub parameters: FlapParameters,
    /// The plan the settings were last taken from (its version), so opening a plan with a reconstruction shows it.
    pub seeded_from: Option<u64>,
    /// The last proposal, and the one being made.
    pub preview: Option<Preview>,
    pub job: Option<(u64, Job<Preview>)>,
    /// Draw the segments and the donor.
    pub show: bool,
    /// Frame the mandible and the fibula side by side in the 3D view when the next proposal arrives (a plan with a
    /// reconstruction was opened).
    pub frame_next: bool,
}

impl Default for FlapPanel {
    fn default() -> Self {
        FlapPanel {
            donor_path: String::new(),
            donor: None,
            planes: Default::default(),
            count: None,
            parameters: FlapParameters::default(),
            seeded_from: None,
            preview: None,
            job: None,
            show: true,
            frame_next: false,
        }
    }
}

/// An opened donor.
pub struct OpenDonor {
    pub bone: Arc<DonorBone>,
    /// Where it was opened from (shown).
    pub source: String,
    pub version: u64,
}

/// A proposal for the panel's settings, with what the view draws of it.
pub struct Preview {
    /// The settings and plane poses it was made for.
    pub key: u64,
    pub result: Result<Box<PreviewParts>, String>,
}

/// A proposal and its meshes.
pub struct PreviewParts {
    pub proposal: FlapProposal,
    /// Per segment: its patch in the mandible, and on the donor moved beside the mandible.
    pub in_mandible: Vec<Arc<GpuMesh>>,
    pub on_donor: Vec<Arc<GpuMesh>>,
    /// The donor around the segments, moved beside the mandible.
    pub donor_region: Arc<GpuMesh>,
    /// The mandible without the bone the resection removes (drawn instead of the bone, so the segments show).
    pub bone_left: Arc<GpuMesh>,
    /// By how much the donor was moved, mm.
    pub shift_mm: [f64; 3],
    /// The box around the mandible and the moved donor, mm (what "Side by side" frames).
    pub bounds_mm: ([f64; 3], [f64; 3]),
}

/// The recorded proposal's parts for the view: the patches and the donor around them, moved beside `mandible`.
fn preview_parts(plan: &Plan, mandible: &Mesh, donor: &Mesh, proposal: FlapProposal) -> Result<PreviewParts, String> {
    let patches = case::segment_patches(plan, &proposal.reconstruction, donor);
    let Some(recipient) = mandible.bounding_box() else {
        return Err("the plan's bone is empty".into());
    };
    let region = case::donor_region(&proposal.reconstruction, donor, DONOR_CONTEXT_MM);
    let bone_left = case::bone_beside_resection(plan, &proposal.reconstruction, mandible);
    let Some(region_box) = region.bounding_box() else {
        return Err("the segments cover none of the donor's surface".into());
    };
    let shift = case::donor_shift_beside(&recipient, &region_box, DONOR_BESIDE_MM);
    let bounds_mm = (
        std::array::from_fn(|k| recipient.min_mm[k].min(region_box.min_mm[k] + shift[k])),
        std::array::from_fn(|k| recipient.max_mm[k].max(region_box.max_mm[k] + shift[k])),
    );
    let moved = |m: &Mesh| {
        let mut m = m.clone();
        for p in &mut m.positions {
            *p = [p[0] + shift[0], p[1] + shift[1], p[2] + shift[2]];
        }
        Arc::new(GpuMesh::smooth(&m))
    };
    Ok(PreviewParts {
        in_mandible: patches
            .iter()
            .map(|p| Arc::new(GpuMesh::smooth(&p.in_mandible)))
            .collect(),
        on_donor: patches.iter().map(|p| moved(&p.on_donor)).collect(),
        donor_region: moved(&region),
        bone_left: Arc::new(GpuMesh::smooth(&bone_left)),
        shift_mm: shift,
        bounds_mm,
        proposal,
    })
}

/// The last part of `path` (a CT folder's or an STL's name): what the window says, without the folders of this
/// machine.
fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

/// The plan with the planes' poses as drawn (following their handles during a drag).
type Poses = Vec<(String, [f64; 3], [f64; 3])>;

impl GuidesmithApp {
    /// Takes the panel's settings from the plan once per opened plan: its reconstruction's planes, count and
    /// settings, else its first two resecting planes and the defaults.
    fn seed_flap_panel(&mut self) {
        let Some(doc) = &self.doc else { return };
        let id = doc.id;
        if self.flap.seeded_from == Some(id) {
            return;
        }
        self.flap.seeded_from = Some(id);
        let plan = &doc.plan;
        match &plan.reconstruction {
            Some(r) => {
                self.flap.planes = [
                    r.planes.first().cloned().unwrap_or_default(),
                    r.planes.get(1).cloned().unwrap_or_default(),
                ];
                self.flap.count = Some(r.segments.len());
                self.flap.parameters = r.parameters.clone();
            }
            None => {
                let resecting: Vec<String> = plan
                    .planes
                    .iter()
                    .filter(|p| p.resected_side != ResectedSide::None)
                    .map(|p| p.name.clone())
                    .collect();
                self.flap.planes = [
                    resecting.first().cloned().unwrap_or_default(),
                    resecting.get(1).cloned().unwrap_or_default(),
                ];
                self.flap.count = None;
                self.flap.parameters = FlapRequest::for_plan(plan, self.flap.planes.to_vec()).parameters;
            }
        }
        self.flap.preview = None;
    }

    /// The request the panel's settings make for `plan`.
    fn flap_request(&self, plan: &Plan, build_donor_guide: bool) -> FlapRequest {
        let mut request = FlapRequest::for_plan(plan, self.flap.planes.to_vec());
        request.count = self.flap.count;
        request.parameters = self.flap.parameters.clone();
        request.build_donor_guide = build_donor_guide;
        // No second plane: a reconstruction to the condyle.
        request.planes.retain(|p| !p.is_empty());
        request
    }

    /// The chosen planes as drawn now.
    fn flap_poses(&self) -> Option<Poses> {
        let doc = self.doc.as_ref()?;
        self.flap
            .planes
            .iter()
            .filter(|name| !name.is_empty())
            .map(|name| {
                let p = doc.plan.planes.iter().find(|p| &p.name == name)?;
                let (point, normal) = self.dragged(guidesmith::plan::ElementKind::Plane, name, p.point_mm, p.normal);
                Some((name.clone(), point, normal))
            })
            .collect()
    }

    /// The key of the proposal the panel's settings and the planes as drawn ask for, with those poses; `None` when
    /// there is nothing to propose (no donor, no plane chosen).
    fn flap_key(&self) -> Option<(u64, Poses)> {
        let (Some(bone), Some(donor)) = (&self.bone, &self.flap.donor) else {
            return None;
        };
        if self.flap.planes[0].is_empty() {
            return None;
        }
        let poses = self.flap_poses()?;
        let key = hash_of(&(
            &poses,
            self.flap.count,
            &self.flap.parameters,
            donor.version,
            bone.version,
        ));
        Some((key, poses))
    }

    /// Whether the segments shown are not (yet) those the settings and the planes ask for.
    pub(super) fn flap_pending(&self) -> bool {
        self.flap.job.is_some()
            || self
                .flap_key()
                .is_some_and(|(key, _)| self.flap.preview.as_ref().is_none_or(|p| p.key != key))
    }

    /// Opens the donor at the typed path in the background (a CT folder, DICOMDIR or DICOM file, or an STL).
    pub fn open_donor(&mut self, ctx: &egui::Context) {
        let typed = self.flap.donor_path.trim().to_string();
        if typed.is_empty() {
            self.error("Donor: type the path of the leg's CT folder or of the fibula's STL");
            return;
        }
        let path = PathBuf::from(&typed);
        let input = if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("stl")) {
            DonorInput::Stl(path.clone())
        } else {
            DonorInput::Ct(path.clone())
        };
        let plan_path = self.flap_plan_path();
        self.start_job(ctx, "Opening the donor", move |progress| {
            let opened = case::make_donor(&input, &plan_path, progress)
                .map(|bone| Box::new((bone, file_name(&path))))
                .map_err(|e| format!("{}: {e}", path.display()));
            Outcome::Donor(opened)
        });
    }

    /// Opens the donor the open plan's reconstruction records (after the plan is opened).
    pub(super) fn open_recorded_donor(&mut self, ctx: &egui::Context) {
        let Some(doc) = &self.doc else { return };
        let (Some(r), Some(plan_path)) = (&doc.plan.reconstruction, doc.path.clone()) else {
            return;
        };
        let source = r.donor.ct.as_ref().map_or_else(
            || "the plan's donor models".to_string(),
            |ct| format!("the plan's donor CT {}", file_name(Path::new(&ct.path))),
        );
        let plan = doc.plan.clone();
        self.flap.frame_next = true;
        self.start_job(ctx, "Opening the plan's donor", move |progress| {
            let opened = case::recorded_donor(&plan, &plan_path, None, progress)
                .map_err(|e| format!("the plan's donor: {e}"))
                .and_then(|d| d.ok_or_else(|| "the plan has no reconstruction".to_string()))
                .map(|bone| Box::new((bone, source)));
            Outcome::Donor(opened)
        });
    }

    /// Where the plan is (or would be) saved: donor paths are recorded relative to its folder.
    fn flap_plan_path(&self) -> PathBuf {
        self.doc
            .as_ref()
            .and_then(|d| d.path.clone())
            .unwrap_or_else(|| Path::new("plan.json").to_path_buf())
    }

    /// The open donor, for the guides, the models and the bundle.
    pub(super) fn donor_mesh(&self) -> Option<Arc<DonorBone>> {
        self.flap.donor.as_ref().map(|d| Arc::clone(&d.bone))
    }

    /// The donor opened.
    pub(super) fn donor_opened(&mut self, bone: DonorBone, source: String) {
        let version = self.version();
        let fibula = format!("{} triangles from {source}", bone.mesh.triangles.len());
        self.info(format!("Donor opened: {fibula}"));
        // The path was for opening; the panel names what is open.
        self.flap.donor_path.clear();
        self.flap.donor = Some(OpenDonor {
            bone: Arc::new(bone),
            source,
            version,
        });
        self.flap.preview = None;
    }

    /// Proposes again in the background when the planes (as drawn), the settings or the donor changed since the
    /// last proposal; one proposal at a time, the newest settings next.
    pub(super) fn update_flap_preview(&mut self, ctx: &egui::Context) {
        self.seed_flap_panel();
        if let Some((key, job)) = &self.flap.job {
            match job.poll() {
                Polled::Running => return,
                Polled::Done(preview) => {
                    debug_assert_eq!(*key, preview.key);
                    if let (true, Ok(parts)) = (self.flap.frame_next, &preview.result) {
                        self.flap.frame_next = false;
                        self.camera = Some(super::view3d::Camera::framing(parts.bounds_mm.0, parts.bounds_mm.1));
                        self.layout = super::Layout::Only3d;
                    }
                    self.flap.preview = Some(preview);
                    self.flap.job = None;
                }
                Polled::Died => {
                    self.flap.job = None;
                    self.error(
                        "Reconstruction: the proposal stopped unexpectedly (a bug); change a setting to try again",
                    );
                }
            }
        }
        let Some((key, poses)) = self.flap_key() else { return };
        if self.flap.preview.as_ref().is_some_and(|p| p.key == key) {
            return;
        }
        let (Some(doc), Some(bone), Some(donor)) = (&self.doc, &self.bone, &self.flap.donor) else {
            return;
        };
        let mut plan = doc.plan.clone();
        for (name, point, normal) in &poses {
            if let Some(p) = plan.planes.iter_mut().find(|p| &p.name == name) {
                (p.point_mm, p.normal) = (*point, *normal);
            }
        }
        let request = self.flap_request(&plan, false);
        let query: Arc<BoneQuery> = Arc::clone(&bone.query);
        let donor = Arc::clone(&donor.bone);
        let job = Job::spawn("proposing the segments", ctx, self.repaint_every, move |progress| {
            let mandible = query.mesh();
            let result = case::propose_reconstruction(&plan, mandible, &donor, &request, progress)
                .map_err(|e| e.to_string())
                .and_then(|proposal| preview_parts(&plan, mandible, &donor.mesh, proposal))
                .map(Box::new);
            Preview { key, result }
        });
        self.flap.job = Some((key, job));
    }

    /// Proposes with the fibula guide built and checked, and records the reconstruction and its guide (one edit).
    pub fn record_reconstruction(&mut self, ctx: &egui::Context) {
        let (Some(doc), Some(bone), Some(donor)) = (&self.doc, &self.bone, &self.flap.donor) else {
            return;
        };
        let plan = doc.plan.clone();
        let request = self.flap_request(&plan, true);
        let query = Arc::clone(&bone.query);
        let donor = Arc::clone(&donor.bone);
        self.start_job(
            ctx,
            "Proposing the reconstruction and its fibula guide",
            move |progress| {
                let proposed = case::propose_reconstruction(&plan, query.mesh(), &donor, &request, progress)
                    .map(Box::new)
                    .map_err(|e| e.to_string());
                Outcome::Reconstructed(proposed)
            },
        );
    }

    /// A proposal to record: refused with its findings, else recorded as one edit.
    pub(super) fn reconstructed(&mut self, proposal: FlapProposal) {
        if !proposal.findings.is_empty() {
            let listed: Vec<String> = proposal.findings.iter().map(|f| f.to_string()).collect();
            self.error(format!(
                "Reconstruction not recorded, the plan is unchanged:\n{}",
                listed.join("\n")
            ));
            return;
        }
        let segments = proposal.reconstruction.segments.len();
        let checked = proposal.verified.is_some();
        if self.apply(Edit::SetReconstruction {
            reconstruction: Some(Box::new(proposal.reconstruction)),
            donor_guide: Some(Box::new(proposal.guide)),
        }) {
            self.info(format!(
                "Reconstruction recorded: {segments} segment(s) and the guide '{}'{}",
                case::DONOR_GUIDE_NAME,
                if checked {
                    " (built and every check passed)"
                } else {
                    "; the guide did not pass every check when built: Build guides lists what fails"
                }
            ));
        }
    }

    /// The panel.
    pub(super) fn flap_ui(&mut self, ui: &mut egui::Ui) {
        let Some(doc) = &self.doc else { return };
        let plane_names: Vec<String> = doc.plan.planes.iter().map(|p| p.name.clone()).collect();
        let recorded = doc.plan.reconstruction.as_ref().map(|r| r.segments.len());
        let ctx = ui.ctx().clone();
        egui::CollapsingHeader::new("Reconstruction (fibula free flap)")
            .default_open(recorded.is_some() || self.flap.donor.is_some())
            .show(ui, |ui| {
                ui.horizontal(|ui| {
                    let l = ui.label("Donor CT or STL");
                    ui.add(egui::TextEdit::singleline(&mut self.flap.donor_path).desired_width(150.0))
                        .labelled_by(l.id);
                    if ui.button("Open donor").clicked() {
                        self.open_donor(&ctx);
                    }
                });
                match &self.flap.donor {
                    Some(d) => ui.label(format!("donor: {}", d.source)),
                    None => ui.label("no donor open: a leg CT (segmented as bone) or a fibula STL"),
                };
                for (k, which) in ["first", "second"].into_iter().enumerate() {
                    egui::ComboBox::from_label(format!("{which} resection plane"))
                        .selected_text(if self.flap.planes[k].is_empty() {
                            "(none)".to_string()
                        } else {
                            self.flap.planes[k].clone()
                        })
                        .show_ui(ui, |ui| {
                            if k == 1 {
                                ui.selectable_value(&mut self.flap.planes[k], String::new(), "(none: to the condyle)");
                            }
                            for name in &plane_names {
                                ui.selectable_value(&mut self.flap.planes[k], name.clone(), name);
                            }
                        });
                }
                ui.horizontal_wrapped(|ui| {
                    for (count, label) in COUNTS {
                        ui.selectable_value(&mut self.flap.count, count, label);
                    }
                });
                let p = &mut self.flap.parameters;
                egui::Grid::new("flap settings").num_columns(2).show(ui, |ui| {
                    for (label, value, range, hover) in [
                        (
                            "Min segment mm",
                            &mut p.min_segment_length_mm,
                            5.0..=80.0,
                            "shortest segment",
                        ),
                        (
                            "Gap mm",
                            &mut p.gap_mm,
                            0.0..=10.0,
                            "between neighbouring segments on the fibula",
                        ),
                        (
                            "Max gap mm",
                            &mut p.max_gap_mm,
                            0.0..=5.0,
                            "largest gap at a junction or stump",
                        ),
                        (
                            "Pedicle deg",
                            &mut p.pedicle_deg,
                            -180.0..=180.0,
                            "turn of the fibula about its axis",
                        ),
                        (
                            "Keep distal mm",
                            &mut p.keep_distal_mm,
                            0.0..=200.0,
                            "fibula kept at the ankle",
                        ),
                        (
                            "Keep proximal mm",
                            &mut p.keep_proximal_mm,
                            0.0..=200.0,
                            "fibula kept at the knee",
                        ),
                        (
                            "Max deviation mm",
                            &mut p.max_deviation_mm,
                            0.1..=20.0,
                            "from the target contour",
                        ),
                        (
                            "Max mean deviation mm",
                            &mut p.max_mean_deviation_mm,
                            0.1..=20.0,
                            "from the target contour",
                        ),
                    ] {
                        let l = ui.label(label).on_hover_text(hover);
                        ui.add(egui::DragValue::new(value).range(range).speed(0.1).max_decimals(2))
                            .labelled_by(l.id);
                        ui.end_row();
                    }
                });
                ui.checkbox(&mut self.flap.show, "Show the segments and the fibula");
                ui.separator();
                self.flap_results_ui(ui, recorded);
            });
    }

    fn flap_results_ui(&mut self, ui: &mut egui::Ui, recorded: Option<usize>) {
        if self.flap.donor.is_none() {
            if let Some(n) = recorded {
                ui.label(format!("recorded: {n} segment(s); open the donor to see them"));
            }
            return;
        }
        if self.flap.job.is_some() {
            ui.label("proposing…");
        }
        let Some(preview) = &self.flap.preview else { return };
        let parts = match &preview.result {
            Ok(p) => p,
            Err(e) => {
                ui.colored_label(Color32::LIGHT_RED, format!("No proposal: {e}"));
                return;
            }
        };
        let r = &parts.proposal.reconstruction;
        let m = &parts.proposal.measures;
        let axis = r.donor.axis();
        ui.label(format!(
            "fibula {:.1} mm long, radius {:.2} mm; shown moved by ({:.0}, {:.0}, {:.0}) mm",
            axis.length_mm(),
            axis.radius_mm,
            parts.shift_mm[0],
            parts.shift_mm[1],
            parts.shift_mm[2]
        ));
        let (min, max) = parts.bounds_mm;
        if ui
            .button("Side by side")
            .on_hover_text("frame the mandible and the fibula beside it, from the front")
            .clicked()
        {
            self.camera = Some(super::view3d::Camera::framing(min, max));
            self.flap.show = true;
        }
        egui::Grid::new("flap segments")
            .striped(true)
            .num_columns(5)
            .show(ui, |ui| {
                for h in ["", "length mm", "faces mm", "wedges deg", "from ankle mm"] {
                    ui.strong(h);
                }
                ui.end_row();
                for (k, s) in m.segments.iter().enumerate() {
                    let c = SEGMENT_COLOURS[k % SEGMENT_COLOURS.len()];
                    ui.label(RichText::new(format!("S{}", k + 1)).color(Color32::from_rgb(
                        (c[0] * 255.0) as u8,
                        (c[1] * 255.0) as u8,
                        (c[2] * 255.0) as u8,
                    )));
                    ui.label(format!("{:.2}", s.length_mm));
                    ui.label(format!("{:.2} / {:.2}", s.buccal_length_mm, s.lingual_length_mm));
                    ui.label(format!("{:.2} / {:.2}", s.start_wedge_deg, s.end_wedge_deg));
                    ui.label(format!("{:.1}", s.from_distal_tip_mm));
                    ui.end_row();
                }
            });
        ui.label(format!(
            "deviation from the contour: mean {:.2} mm, max {:.2} mm at ({:.1}, {:.1}, {:.1})",
            m.deviation.mean_mm, m.deviation.max_mm, m.deviation.at_mm[0], m.deviation.at_mm[1], m.deviation.at_mm[2]
        ));
        let list = |v: &[f64]| v.iter().map(|g| format!("{g:.2}")).collect::<Vec<_>>().join(", ");
        ui.label(format!(
            "gaps: junctions [{}] mm, stumps [{}] mm; between cuts on the fibula [{}] mm",
            list(&m.junction_gaps_mm),
            list(&m.stump_gaps_mm),
            list(&m.donor_gaps_mm)
        ));
        ui.label(format!(
            "fibula left: {:.1} mm at the ankle, {:.1} mm at the knee",
            m.left_distal_mm, m.left_proximal_mm
        ));
        let findings = parts.proposal.findings.clone();
        for f in &findings {
            ui.colored_label(Color32::LIGHT_RED, f.to_string());
        }
        let same = recorded == Some(r.segments.len())
            && self
                .doc
                .as_ref()
                .and_then(|d| d.plan.reconstruction.as_ref())
                .is_some_and(|rec| rec.segments == r.segments);
        if same {
            ui.label("the plan records this reconstruction");
        } else if recorded.is_some() {
            ui.label("the plan records another reconstruction");
        }
        let ctx = ui.ctx().clone();
        let can = findings.is_empty() && !same && !self.review && self.job.is_none();
        let button = ui.add_enabled(can, egui::Button::new("Record in plan"));
        let button = if findings.is_empty() {
            button
        } else {
            button.on_disabled_hover_text("a finding refuses this proposal: change what it says")
        };
        if button.clicked() {
            self.record_reconstruction(&ctx);
        }
    }

    /// The bone to draw while the segments are shown: without what the resection removes.
    pub(super) fn flap_bone(&self) -> Option<Arc<GpuMesh>> {
        if !self.flap.show {
            return None;
        }
        let parts = self.flap.preview.as_ref()?.result.as_ref().ok()?;
        Some(Arc::clone(&parts.bone_left))
    }

    /// The segments in the mandible and on the fibula beside it.
    pub(super) fn flap_scene(&self, scene: &mut Vec<SceneItem>) {
        if !self.flap.show {
            return;
        }
        let Some(Ok(parts)) = self.flap.preview.as_ref().map(|p| p.result.as_ref()) else {
            return;
        };
        let version = self.flap.preview.as_ref().map_or(0, |p| p.key);
        scene.push(SceneItem {
            key: "flap:donor".into(),
            version,
            mesh: Arc::clone(&parts.donor_region),
            coarse: None,
            color: [self.bone_colour[0], self.bone_colour[1], self.bone_colour[2], 0.45],
        });
        for (k, (inside, on)) in parts.in_mandible.iter().zip(&parts.on_donor).enumerate() {
            let c = SEGMENT_COLOURS[k % SEGMENT_COLOURS.len()];
            for (tag, mesh) in [("mandible", inside), ("donor", on)] {
                scene.push(SceneItem {
                    key: format!("flap:S{}:{tag}", k + 1),
                    version,
                    mesh: Arc::clone(mesh),
                    coarse: None,
                    color: [c[0], c[1], c[2], 1.0],
                });
            }
        }
    }
}
