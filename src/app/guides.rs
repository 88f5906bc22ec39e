//! Guide design in the window: add a guide from a template with its planes and drills, its seating direction and
//! footprint proposed on the bone (`case::propose_guide`, as `plan add-guide` does), the footprint's vertices dragged
//! on the bone (one edit of the plan per drag, undoable) with its contact area and seating play measured again on
//! every move (`guide::seating::footprint_contact`), the guides built and checked in the background, every check and
//! finding listed (a click shows its place), the guides drawn on the bone, and the print lab's bundle written.
//!
//! Why here and not in the library: nothing in this file computes geometry; it holds what the engineer sees and
//! calls the same case layer as the CLI, so a guide designed in the window is the guide `guidesmith build` makes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use eframe::egui::{self, Color32, RichText};
use guidesmith::case::{self, CaseGuides, GuideBones, GuideOutcome};
use guidesmith::export::Release;
use guidesmith::finding::Finding;
use guidesmith::guide::seating::{footprint_contact, FootprintContact};
use guidesmith::plan::{Edit, Element, ElementKind, Footprint, GuideLabel, GuideSpec, Plan};

use super::view3d::{GpuMesh, SceneItem};
use super::{free_name, hash_of, marker, GuidesmithApp, Outcome, Tool};

/// The templates a guide is made from, with the names the window shows.
pub const TEMPLATES: [(&str, &str); 3] = [
    ("cutting_guide", "Cutting"),
    ("drill_guide", "Drill"),
    ("combined_guide", "Combined"),
];
/// The printer profiles.
pub const PRINTERS: [&str; 3] = ["sla", "fdm", "sls"];
/// Grid of the live contact measurement, mm (the proposal's).
const CONTACT_GRID_MM: f64 = 0.5;
/// A press this close to a footprint vertex on the screen grabs it, px.
const GRAB_PX: f32 = 10.0;

/// What the guide design shows and is doing.
pub struct GuideDesign {
    /// The "Add guide" window is open.
    pub add_open: bool,
    /// Its choices.
    pub template: String,
    pub printer: String,
    pub planes: BTreeSet<String>,
    pub drills: BTreeSet<String>,
    /// The last build, and the plan it was built from.
    pub built: Option<BuiltGuides>,
    /// Draw the built guides, and how opaque.
    pub show: bool,
    pub opacity: f32,
    /// The live contact of each guide's footprint.
    pub contact: BTreeMap<String, Contact>,
    /// A footprint vertex being dragged.
    pub drag: Option<VertexDrag>,
    /// A template parameter's value while its field is dragged (committed as one edit when the drag ends).
    pub param_drag: Option<(String, String, f64)>,
    /// The clipping plane: on, and how far beyond the view's centre (mm, along the view).
    pub clip: bool,
    pub clip_depth_mm: f64,
    /// Colour each guide's underside by its gap to the bone.
    pub gap_map: bool,
    /// The next click on the bone puts this guide's label there.
    pub label_pick: Option<String>,
    /// The open plan's content hash, computed once a frame (what a build is compared against).
    pub plan_key: Option<String>,
}

impl Default for GuideDesign {
    fn default() -> Self {
        GuideDesign {
            add_open: false,
            template: TEMPLATES[0].0.to_string(),
            printer: PRINTERS[0].to_string(),
            planes: BTreeSet::new(),
            drills: BTreeSet::new(),
            built: None,
            show: true,
            opacity: 1.0,
            contact: BTreeMap::new(),
            drag: None,
            param_drag: None,
            clip: false,
            clip_depth_mm: 0.0,
            gap_map: true,
            label_pick: None,
            plan_key: None,
        }
    }
}

/// The contact of one guide's footprint as it is (or as the drag has it).
pub struct Contact {
    /// Hash of the footprint, seating direction, template, printer and parameters it was measured for.
    key: u64,
    pub result: Result<FootprintContact, String>,
    /// How long the measurement took, ms.
    pub ms: f64,
}

/// Guides built and checked, with what the 3D view draws of them.
pub struct BuiltGuides {
    /// The content hash of the plan they were built from (`plan::plan_content_sha256`: approvals and path hints left
    /// out, so a review does not put them out of date; any other change does).
    pub plan_key: String,
    pub guides: CaseGuides,
    /// Each guide plain, and with its underside coloured by the gap to the bone.
    pub meshes: Vec<(String, Arc<GpuMesh>, Arc<GpuMesh>)>,
}

/// Gaps (mm) of the contact-gap colours: green up to the bone offset plus this, yellow at [`GAP_YELLOW_MM`], red from
/// [`GAP_RED_MM`]; a point of the guide farther than [`GAP_SHOWN_MM`] from the bone (along the seating direction) or
/// not facing it keeps the guide's colour.
const GAP_GREEN_MARGIN_MM: f64 = 0.05;
const GAP_YELLOW_MM: f64 = 0.5;
const GAP_RED_MM: f64 = 1.0;
const GAP_SHOWN_MM: f64 = 3.0;

/// A drag of vertex `index` of guide `guide`'s footprint; `outline` is the footprint as dragged so far.
pub struct VertexDrag {
    pub guide: String,
    pub index: usize,
    pub outline: Vec<[f64; 3]>,
}

/// The centre of a guide's footprint (the mean of its points), patient mm.
pub fn footprint_centre(g: &GuideSpec) -> [f64; 3] {
    let n = g.footprint.outline_mm.len().max(1) as f64;
    [0, 1, 2].map(|k| g.footprint.outline_mm.iter().map(|p| p[k]).sum::<f64>() / n)
}

/// One line on a seating play: how far the guide slides and turns.
pub fn play_text(p: &guidesmith::guide::seating::SeatingPlay) -> String {
    format!(
        "slides {}, turns {}",
        p.translation_mm
            .map_or("without limit".into(), |t| format!("{t:.2} mm")),
        p.rotation_deg.map_or("without limit".into(), |r| format!("{r:.2} deg"))
    )
}

/// Writes `bytes` to `path` atomically; the line the window says.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<String, String> {
    guidesmith::atomic::write_atomic(path, |w| std::io::Write::write_all(w, bytes))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(format!("wrote {} ({} bytes)", path.display(), bytes.len()))
}

impl GuideDesign {
    /// Whether the last build is of the plan as it is now (`None`: nothing built).
    pub fn built_is_current(&self) -> Option<bool> {
        let b = self.built.as_ref()?;
        Some(self.plan_key.as_deref() == Some(b.plan_key.as_str()))
    }
}

impl GuidesmithApp {
    /// The guides of the plan: their state, contact and checks; buttons to add, build and export.
    pub(super) fn guides_ui(&mut self, ui: &mut egui::Ui) {
        let Some(doc) = &self.doc else { return };
        ui.strong("Guides");
        let current = self.guides.built_is_current();
        let specs = doc.plan.guides.clone();
        let mut clicked = None;
        let mut remove = None;
        for g in &specs {
            let state = match (&self.guides.built, current) {
                (Some(_), Some(false)) => "changed since the build".to_string(),
                (None, _) | (_, None) => "not built".to_string(),
                (Some(b), Some(true)) => match b.guides.guides.iter().find(|p| p.name == g.name) {
                    Some(p) if p.findings().is_empty() => "all checks passed".to_string(),
                    Some(p) => format!("FAILED ({} finding(s))", p.findings().len()),
                    None => "not built".to_string(),
                },
            };
            ui.horizontal(|ui| {
                let is = self.selected.as_ref() == Some(&(ElementKind::Guide, g.name.clone()));
                if ui.selectable_label(is, &g.name).clicked() {
                    clicked = Some(g.name.clone());
                }
                ui.label(RichText::new(state).small());
                if is && ui.small_button("Delete").clicked() {
                    remove = Some(g.name.clone());
                }
            });
            if let Some(c) = self.guides.contact.get(&g.name) {
                ui.label(RichText::new(contact_text(c)).small())
                    .on_hover_text(format!("measured in {:.0} ms", c.ms));
            }
        }
        if let Some(name) = clicked {
            self.selected = Some((ElementKind::Guide, name));
        }
        if let Some(name) = remove {
            if self.apply(Edit::Remove {
                kind: ElementKind::Guide,
                name,
            }) {
                self.selected = None;
            }
        }
        if let Some((ElementKind::Guide, name)) = self.selected.clone() {
            if let Some(g) = specs.iter().find(|g| g.name == name) {
                let mut labelled = g.label.is_some();
                if ui
                    .checkbox(
                        &mut labelled,
                        "Label (case ID, guide number, side; DRAFT until released)",
                    )
                    .changed()
                {
                    self.set_label(&name, labelled.then(GuideLabel::default).as_ref());
                }
                let d = g.seating_direction;
                ui.horizontal(|ui| {
                    ui.label(format!("seating ({:.3}, {:.3}, {:.3})", d[0], d[1], d[2]));
                    if ui
                        .button("Seat along the view")
                        .on_hover_text("The guide comes onto the bone the way the 3D view looks")
                        .clicked()
                    {
                        if let Some(c) = self.camera {
                            let eye = c.eye_mm();
                            let f = [0, 1, 2].map(|k| c.target_mm[k] - eye[k]);
                            let clean = f.map(|x| if x.abs() < 1e-9 { 0.0 } else { x });
                            self.apply(Edit::Set {
                                kind: ElementKind::Guide,
                                name: name.clone(),
                                field: "seating_direction".into(),
                                value: serde_json::json!(clean),
                            });
                        }
                    }
                });
                if let Some(label) = &g.label {
                    ui.horizontal(|ui| {
                        let picking = self.guides.label_pick.as_deref() == Some(name.as_str());
                        if ui
                            .selectable_label(picking, "Put the label at the next click")
                            .on_hover_text(
                                "Click the bone where the label should go; it goes to the free place nearest it",
                            )
                            .clicked()
                        {
                            self.guides.label_pick = (!picking).then(|| name.clone());
                        }
                        if label.near_mm.is_some() && ui.button("Automatic place").clicked() {
                            let mut l = label.clone();
                            l.near_mm = None;
                            self.set_label(&name, Some(&l));
                        }
                    });
                }
                self.parameters_ui(ui, g);
            }
            ui.label(
                RichText::new("Drag a footprint vertex on the bone; double-click the bone to add one, right-click one to remove it.")
                    .small(),
            );
        }
        ui.horizontal(|ui| {
            if ui.button("Add guide…").clicked() {
                self.guides.add_open = true;
            }
            if ui.button("Build guides").clicked() {
                self.build_guides(ui.ctx());
            }
        });
        self.clip_ui(ui);
        ui.horizontal(|ui| {
            ui.checkbox(&mut self.guides.show, "Show guides");
            ui.checkbox(&mut self.guides.gap_map, "Gap colours").on_hover_text(
                "A guide's underside by its gap to the bone: green at the offset, yellow 0.5 mm, red from 1 mm",
            );
            let l = ui.label("opacity");
            ui.add(egui::Slider::new(&mut self.guides.opacity, 0.1..=1.0).show_value(false))
                .labelled_by(l.id);
        });
        self.checks_ui(ui);
    }

    /// The selected guide's printer and every parameter of its template: its value with its unit and allowed range,
    /// and where the value comes from (the template's default, the printer profile, or the plan); a changed value is
    /// one edit, "default" removes the plan's value.
    fn parameters_ui(&mut self, ui: &mut egui::Ui, g: &GuideSpec) {
        let template = match guidesmith::template::builtin_template(&g.template) {
            Ok(t) => t,
            Err(e) => {
                ui.colored_label(Color32::LIGHT_RED, e.to_string());
                return;
            }
        };
        let resolved = self.doc.as_ref().and_then(|d| resolved_parameters(&d.plan, g));
        let mut edit = None;
        egui::CollapsingHeader::new(format!("Parameters of {}", g.name))
            .id_salt(("parameters", &g.name))
            .show(ui, |ui| {
                ui.horizontal(|ui| {
                    ui.label("printer");
                    for p in PRINTERS {
                        if ui.selectable_label(g.printer == p, p).clicked() && g.printer != p {
                            edit = Some(("printer".to_string(), serde_json::json!(p)));
                        }
                    }
                });
                egui::Grid::new(("parameter grid", &g.name))
                    .num_columns(3)
                    .show(ui, |ui| {
                        for (name, spec) in &template.parameters {
                            let Some((value, source)) = resolved
                                .as_ref()
                                .and_then(|r| r.iter().find(|p| &p.name == name))
                                .map(|p| (p.value, p.source))
                            else {
                                continue;
                            };
                            ui.label(name).on_hover_text(&spec.doc);
                            let dragging = match &self.guides.param_drag {
                                Some((guide, param, v)) if guide == &g.name && param == name => Some(*v),
                                _ => None,
                            };
                            let mut shown = dragging.unwrap_or(value);
                            let step = if spec.unit == "count" { 1.0 } else { 0.05 };
                            let r = ui.add(
                                egui::DragValue::new(&mut shown)
                                    .range(spec.min..=spec.max)
                                    .speed(step)
                                    .suffix(format!(" {}", spec.unit)),
                            );
                            if r.dragged() {
                                self.guides.param_drag = Some((g.name.clone(), name.clone(), shown));
                            } else if r.drag_stopped() || (r.changed() && dragging.is_none()) {
                                self.guides.param_drag = None;
                                if shown != value {
                                    edit = Some((format!("parameters.{name}"), serde_json::json!(shown)));
                                }
                            }
                            ui.horizontal(|ui| {
                                let from = match source {
                                    guidesmith::template::ParameterSource::Default => "default",
                                    guidesmith::template::ParameterSource::Printer => "printer",
                                    guidesmith::template::ParameterSource::Plan => "plan",
                                };
                                ui.label(RichText::new(format!("{from}, {}..{}", spec.min, spec.max)).small());
                                if source == guidesmith::template::ParameterSource::Plan
                                    && ui.small_button("default").clicked()
                                {
                                    edit = Some((format!("parameters.{name}"), serde_json::Value::Null));
                                }
                            });
                            ui.end_row();
                        }
                    });
            });
        if let Some((field, value)) = edit {
            self.apply(Edit::Set {
                kind: ElementKind::Guide,
                name: g.name.clone(),
                field,
                value,
            });
        }
    }

    /// The clipping plane: across the view through its centre, pushed back by a depth; what lies in front is not
    /// drawn, so the slot and the contact gap show in section.
    pub(super) fn clip_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.checkbox(&mut self.guides.clip, "Clip the view");
            let l = ui.label("depth mm");
            ui.add_enabled(
                self.guides.clip,
                egui::Slider::new(&mut self.guides.clip_depth_mm, -40.0..=40.0),
            )
            .labelled_by(l.id);
        });
    }

    /// The clipping plane of this frame (a point and the normal of the side not drawn), when it is on.
    pub(super) fn clip_plane(&self, camera: &super::view3d::Camera) -> Option<([f64; 3], [f64; 3])> {
        if !self.guides.clip {
            return None;
        }
        let eye = camera.eye_mm();
        let f = [0, 1, 2].map(|k| camera.target_mm[k] - eye[k]);
        let len = (f[0] * f[0] + f[1] * f[1] + f[2] * f[2]).sqrt().max(1e-12);
        let forward = f.map(|x| x / len);
        let point = [0, 1, 2].map(|k| camera.target_mm[k] + forward[k] * self.guides.clip_depth_mm);
        Some((point, forward.map(|x| -x)))
    }

    /// Every check of every built guide, and its findings; a click on a finding marks its place.
    fn checks_ui(&mut self, ui: &mut egui::Ui) {
        let Some(built) = &self.guides.built else { return };
        if self.guides.built_is_current() == Some(false) {
            ui.label(RichText::new("The plan changed since the build: build again.").color(Color32::YELLOW));
        }
        let mut show_place = None;
        for g in &built.guides.guides {
            let findings = g.findings();
            egui::CollapsingHeader::new(format!("Checks of {}", g.name))
                .default_open(true)
                .show(ui, |ui| {
                    if let GuideOutcome::Built { check, .. } = &g.outcome {
                        for row in check_rows(check) {
                            ui.label(RichText::new(row).small());
                        }
                    }
                    for f in &findings {
                        let word = match f.severity {
                            guidesmith::finding::Severity::Error => "error",
                            guidesmith::finding::Severity::Warning => "warning",
                        };
                        let text = format!("{word} {}: {}", f.code.as_str(), f.message);
                        let r = ui.add(
                            egui::Label::new(RichText::new(text).color(Color32::LIGHT_RED)).sense(egui::Sense::click()),
                        );
                        if r.clicked() {
                            show_place = Some(f.clone());
                        }
                    }
                    if findings.is_empty() {
                        ui.label(RichText::new("all checks passed").color(Color32::LIGHT_GREEN));
                    }
                });
        }
        if let Some(f) = show_place {
            self.show_finding_place(&f);
        }
    }

    /// Marks a finding's place in the 3D view and turns the view to it.
    fn show_finding_place(&mut self, f: &Finding) {
        if let Some(p) = f.place_mm {
            self.marked_place = Some(p);
            if let Some(c) = &mut self.camera {
                c.target_mm = p;
            }
        }
    }

    /// The "Add guide" window: template, planes, drills and printer; its seating direction and footprint proposed
    /// on the bone in the background.
    pub(super) fn add_guide_window(&mut self, ctx: &egui::Context) {
        if !self.guides.add_open {
            return;
        }
        let Some(doc) = &self.doc else {
            self.guides.add_open = false;
            return;
        };
        let planes: Vec<String> = doc.plan.planes.iter().map(|p| p.name.clone()).collect();
        let drills: Vec<String> = doc.plan.drills.iter().map(|d| d.name.clone()).collect();
        let mut open = true;
        let mut propose = false;
        egui::Window::new("Add guide").open(&mut open).show(ctx, |ui| {
            ui.horizontal(|ui| {
                ui.label("Template");
                for (t, label) in TEMPLATES {
                    ui.selectable_value(&mut self.guides.template, t.to_string(), label);
                }
            });
            ui.horizontal(|ui| {
                ui.label("Printer");
                for p in PRINTERS {
                    ui.selectable_value(&mut self.guides.printer, p.to_string(), p);
                }
            });
            ui.label("Planes (a slot each)");
            for p in &planes {
                let mut on = self.guides.planes.contains(p);
                if ui.checkbox(&mut on, p).changed() {
                    toggle(&mut self.guides.planes, p, on);
                }
            }
            ui.label("Drills (a barrel each)");
            for d in &drills {
                let mut on = self.guides.drills.contains(d);
                if ui.checkbox(&mut on, d).changed() {
                    toggle(&mut self.guides.drills, d, on);
                }
            }
            propose = ui.button("Propose and add").clicked();
        });
        self.guides.add_open = open && !propose;
        if propose {
            self.propose_guide(ctx);
        }
    }

    /// Proposes a seating direction and footprint for a new guide with the window's choices, in the background.
    fn propose_guide(&mut self, ctx: &egui::Context) {
        let (Some(doc), Some(bone)) = (&self.doc, &self.bone) else {
            return;
        };
        let taken: Vec<&str> = doc.plan.guides.iter().map(|g| g.name.as_str()).collect();
        let spec = GuideSpec {
            bone: Default::default(),
            name: free_name(&taken, "guide"),
            template: self.guides.template.clone(),
            printer: self.guides.printer.clone(),
            parameters: Default::default(),
            planes: self.guides.planes.iter().cloned().collect(),
            drills: self.guides.drills.iter().cloned().collect(),
            seating_direction: [0.0, 0.0, -1.0],
            footprint: Footprint { outline_mm: vec![] },
            label: Some(GuideLabel::default()),
        };
        let plan = doc.plan.clone();
        let query = Arc::clone(&bone.query);
        self.start_job(ctx, "proposing a footprint", move |_| {
            let proposed = case::propose_guide(&plan, &spec, query.mesh()).map(|p| {
                let mut spec = spec;
                spec.seating_direction = p.proposal.seating_direction;
                spec.footprint.outline_mm = p.proposal.outline_mm;
                spec
            });
            Outcome::Proposed(proposed.map(Box::new).map_err(|e| e.to_string()))
        });
    }

    /// Builds and checks every guide of the plan in the background (progress and Cancel in the bottom bar).
    pub fn build_guides(&mut self, ctx: &egui::Context) {
        let (Some(doc), Some(bone)) = (&self.doc, &self.bone) else {
            return;
        };
        let plan = doc.plan.clone();
        let query = Arc::clone(&bone.query);
        let donor = self.donor_mesh();
        self.start_job(ctx, "building the guides", move |progress| {
            let plan_key = guidesmith::plan::plan_content_sha256(&plan);
            let bones = GuideBones::of(&plan, query.mesh(), donor.as_ref().map(|d| &d.mesh));
            let built = case::build_guides(&plan, bones, None, progress).map(|guides| {
                let meshes = guides
                    .guides
                    .iter()
                    .filter_map(|g| {
                        let (b, _) = g.built()?;
                        let spec = plan.guides.iter().find(|s| s.name == g.name)?;
                        let tints = gap_tints(
                            &query,
                            &b.mesh,
                            spec.seating_direction,
                            b.params.tolerance.bone_offset_mm,
                        );
                        Some((
                            g.name.clone(),
                            Arc::new(GpuMesh::smooth(&b.mesh)),
                            Arc::new(GpuMesh::tinted(&b.mesh, &tints)),
                        ))
                    })
                    .collect();
                Box::new(BuiltGuides {
                    plan_key,
                    guides,
                    meshes,
                })
            });
            Outcome::Built(built.map_err(|e| e.to_string()))
        });
    }

    /// Writes the print lab's bundle of the plan to `path` in the background: released with a current surgeon's
    /// approval, else a draft (as `guidesmith bundle [--draft]`).
    pub fn export_bundle(&mut self, ctx: &egui::Context, path: PathBuf) {
        let (Some(doc), Some(bone)) = (&self.doc, &self.bone) else {
            return;
        };
        let plan = doc.plan.clone();
        let query = Arc::clone(&bone.query);
        let donor = self.donor_mesh();
        self.start_job(ctx, "writing the bundle", move |progress| {
            let result = write_bundle(&plan, query.mesh(), donor.as_deref(), &path, progress);
            Outcome::Wrote(result)
        });
    }

    /// Writes what `kind` names into `path` in the background, as the CLI does: `guides` (a folder: STL, 3MF, review
    /// images and manifest, released with a current surgeon's approval, else drafts), `models` (a folder: the
    /// anatomical models) or `gltf` (a `.glb` file of the whole plan).
    pub fn export(&mut self, ctx: &egui::Context, kind: Export, path: PathBuf) {
        let (Some(doc), Some(bone)) = (&self.doc, &self.bone) else {
            return;
        };
        let plan = doc.plan.clone();
        let query = Arc::clone(&bone.query);
        let donor = self.donor_mesh();
        self.start_job(ctx, kind.doing(), move |progress| {
            Outcome::Wrote(export_to(&plan, query.mesh(), donor.as_deref(), kind, &path, progress))
        });
    }

    /// A guide proposed: added to the plan (one undoable edit) and selected.
    pub(super) fn proposed(&mut self, spec: GuideSpec) {
        let name = spec.name.clone();
        let points = spec.footprint.outline_mm.len();
        if self.apply(Edit::Add(Element::Guide(spec))) {
            self.selected = Some((ElementKind::Guide, name.clone()));
            self.info(format!(
                "{name}: footprint of {points} points proposed; drag its vertices to change it"
            ));
        }
    }

    /// The contact of every guide's footprint, measured again where the footprint (or the drag) changed.
    pub(super) fn update_contacts(&mut self) {
        self.guides.plan_key = self
            .doc
            .as_ref()
            .map(|d| guidesmith::plan::plan_content_sha256(&d.plan));
        let (Some(doc), Some(bone)) = (&self.doc, &self.bone) else {
            return;
        };
        let mut fresh = BTreeMap::new();
        // A guide on the reconstruction's donor lies in the donor CT's frame, not on this bone.
        for g in doc.plan.guides.iter().filter(|g| g.bone.is_recipient()) {
            let outline = match &self.guides.drag {
                Some(d) if d.guide == g.name => d.outline.clone(),
                _ => g.footprint.outline_mm.clone(),
            };
            if outline.len() < 3 {
                continue;
            }
            let key = hash_of(&(&outline, g.seating_direction, &g.template, &g.printer, &g.parameters));
            match self.guides.contact.remove(&g.name) {
                Some(c) if c.key == key => {
                    fresh.insert(g.name.clone(), c);
                }
                _ => {
                    let t = Instant::now();
                    // The pad's gap to the bone, from the guide's template and printer.
                    let result = case::guide_request(&doc.plan, g, None)
                        .map_err(|f| f.message)
                        .and_then(|r| {
                            footprint_contact(
                                bone.query.mesh(),
                                g.seating_direction,
                                &outline,
                                r.params.tolerance.bone_offset_mm,
                                CONTACT_GRID_MM,
                            )
                            .map_err(|e| e.to_string())
                        });
                    let ms = t.elapsed().as_secs_f64() * 1e3;
                    fresh.insert(g.name.clone(), Contact { key, result, ms });
                }
            }
        }
        self.guides.contact = fresh;
    }

    /// The selected guide's footprint under the pointer: a press near a vertex drags it over the bone, a
    /// double-click on the bone adds a vertex in the nearest edge, a right-click on a vertex removes it. Returns
    /// true while it has the pointer (the view does not orbit).
    pub(super) fn footprint_handles(&mut self, response: &egui::Response, rect: egui::Rect) -> bool {
        let Some(camera) = self.camera else { return false };
        if let Some(name) = self.guides.label_pick.clone() {
            if response.clicked_by(egui::PointerButton::Primary) {
                self.guides.label_pick = None;
                let pos = response.interact_pointer_pos();
                let label = self
                    .doc
                    .as_ref()
                    .and_then(|d| d.plan.guides.iter().find(|g| g.name == name))
                    .and_then(|g| g.label.clone());
                match (pos.and_then(|p| self.pick(p)), label) {
                    (Some((point, _)), Some(mut l)) => {
                        l.near_mm = Some(point);
                        self.set_label(&name, Some(&l));
                        self.info(format!(
                            "{name}: the label goes to the free place nearest the click; build to see it"
                        ));
                    }
                    _ => self.info("No bone under the cursor"),
                }
                return true;
            }
        }
        let guide = match (&self.selected, self.tool) {
            (Some((ElementKind::Guide, name)), Tool::Navigate) if !self.review => name.clone(),
            _ => {
                self.guides.drag = None;
                return false;
            }
        };
        let Some(outline) = self
            .doc
            .as_ref()
            .and_then(|d| d.plan.guides.iter().find(|g| g.name == guide && g.bone.is_recipient()))
            .map(|g| g.footprint.outline_mm.clone())
        else {
            return false;
        };
        let near = |pos: egui::Pos2| {
            outline
                .iter()
                .enumerate()
                .filter_map(|(i, p)| camera.project(rect, *p).map(|s| (i, s.distance(pos))))
                .filter(|(_, d)| *d <= GRAB_PX)
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(i, _)| i)
        };
        if response.drag_started_by(egui::PointerButton::Primary) {
            let origin = response.ctx.input(|i| i.pointer.press_origin());
            if let Some(index) = origin.and_then(near) {
                self.guides.drag = Some(VertexDrag {
                    guide: guide.clone(),
                    index,
                    outline: outline.clone(),
                });
            }
        }
        if self.guides.drag.is_some() {
            if let Some(pos) = response.interact_pointer_pos() {
                if let Some((p, _)) = self.pick(pos) {
                    if let Some(d) = &mut self.guides.drag {
                        d.outline[d.index] = p;
                    }
                }
            }
            self.update_contacts();
            if !response.dragged() {
                if let Some(d) = self.guides.drag.take() {
                    self.set_footprint(&d.guide, d.outline);
                }
            }
            return true;
        }
        if response.secondary_clicked() {
            if let Some(i) = response.interact_pointer_pos().and_then(near) {
                if outline.len() > 3 {
                    let mut o = outline.clone();
                    o.remove(i);
                    self.set_footprint(&guide, o);
                }
                return true;
            }
        }
        if response.double_clicked() {
            if let Some((p, _)) = response.interact_pointer_pos().and_then(|pos| self.pick(pos)) {
                let at = nearest_edge(&outline, p);
                let mut o = outline.clone();
                o.insert(at + 1, p);
                self.set_footprint(&guide, o);
                return true;
            }
        }
        false
    }

    /// Replaces a guide's label, or takes it out with `None` (one edit).
    fn set_label(&mut self, guide: &str, label: Option<&GuideLabel>) {
        match serde_json::to_value(label) {
            Ok(value) => {
                self.apply(Edit::Set {
                    kind: ElementKind::Guide,
                    name: guide.to_string(),
                    field: "label".into(),
                    value,
                });
            }
            Err(e) => self.error(format!("label of {guide}: {e}")),
        }
    }

    /// Replaces a guide's footprint (one edit).
    fn set_footprint(&mut self, guide: &str, outline: Vec<[f64; 3]>) {
        self.apply(Edit::Set {
            kind: ElementKind::Guide,
            name: guide.to_string(),
            field: "footprint".into(),
            value: serde_json::json!({ "outline_mm": outline }),
        });
    }

    /// What the 3D view draws of the guides: the built ones, and the selected guide's footprint with its vertices.
    pub(super) fn guide_scene(&self, scene: &mut Vec<SceneItem>) {
        let Some(doc) = &self.doc else { return };
        if let (true, Some(b)) = (self.guides.show, &self.guides.built) {
            let current = self.guides.built_is_current() == Some(true);
            let version = hash_of(&b.plan_key);
            for (name, plain, mapped) in &b.meshes {
                // Two keys: the view keeps one GPU copy per key and version, and the two meshes differ.
                let (key, mesh) = if self.guides.gap_map && current {
                    (format!("guide:{name}:gap"), mapped)
                } else {
                    (format!("guide:{name}"), plain)
                };
                let colour = if current {
                    [0.0, 0.55, 0.63, self.guides.opacity]
                } else {
                    [0.45, 0.5, 0.55, self.guides.opacity.min(0.5)]
                };
                scene.push(SceneItem {
                    key,
                    version,
                    mesh: Arc::clone(mesh),
                    coarse: None,
                    color: colour,
                });
            }
        }
        let Some((ElementKind::Guide, name)) = &self.selected else {
            return;
        };
        let Some(g) = doc
            .plan
            .guides
            .iter()
            .find(|g| &g.name == name && g.bone.is_recipient())
        else {
            return;
        };
        let outline = match &self.guides.drag {
            Some(d) if &d.guide == name => &d.outline,
            _ => &g.footprint.outline_mm,
        };
        let version = hash_of(outline);
        for (i, p) in outline.iter().enumerate() {
            let q = outline[(i + 1) % outline.len()];
            scene.push(SceneItem {
                key: format!("footprint:{name}:{i}"),
                version,
                mesh: Arc::new(GpuMesh::cylinder(*p, q, 0.25)),
                coarse: None,
                color: [1.0, 0.6, 0.1, 1.0],
            });
            scene.push(marker(
                format!("footprint-vertex:{name}:{i}"),
                *p,
                0.8,
                [1.0, 0.85, 0.2, 1.0],
            ));
        }
    }
}

fn toggle(set: &mut BTreeSet<String>, name: &str, on: bool) {
    if on {
        set.insert(name.to_string());
    } else {
        set.remove(name);
    }
}

/// The guide's template parameters as resolved for its printer and the plan's values (`None`: the plan refuses it).
fn resolved_parameters(plan: &Plan, g: &GuideSpec) -> Option<Vec<guidesmith::template::ResolvedParameter>> {
    case::guide_request(plan, g, None).ok().map(|r| r.params.parameters)
}

/// The edge of `outline` (by its first point) nearest `p`.
fn nearest_edge(outline: &[[f64; 3]], p: [f64; 3]) -> usize {
    let n = outline.len();
    (0..n)
        .min_by(|&a, &b| {
            let d = |i: usize| segment_distance(p, outline[i], outline[(i + 1) % n]);
            d(a).total_cmp(&d(b))
        })
        .unwrap_or(0)
}

/// Distance from `p` to the segment `a`-`b`, mm.
fn segment_distance(p: [f64; 3], a: [f64; 3], b: [f64; 3]) -> f64 {
    let (ab, ap) = ([0, 1, 2].map(|k| b[k] - a[k]), [0, 1, 2].map(|k| p[k] - a[k]));
    let len2: f64 = ab.iter().map(|x| x * x).sum();
    let t = if len2 > 0.0 {
        ((0..3).map(|k| ab[k] * ap[k]).sum::<f64>() / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    (0..3).map(|k| (ap[k] - t * ab[k]).powi(2)).sum::<f64>().sqrt()
}

/// One line on a footprint's contact.
fn contact_text(c: &Contact) -> String {
    match &c.result {
        Err(e) => format!("footprint: {e}"),
        Ok(f) => {
            let play = f.play.as_ref().map_or("no contact".to_string(), play_text);
            format!("contact {:.0} of {:.0} mm^2, {play}", f.contact_area_mm2, f.area_mm2)
        }
    }
}

/// The rows of a guide's checks as the window lists them.
fn check_rows(c: &guidesmith::guide::check::GuideCheck) -> Vec<String> {
    let mut rows = Vec::new();
    for s in &c.slots {
        rows.push(format!(
            "slot {}: {:.4} mm / {:.4} deg from plan, width {:.3} mm",
            s.plane, s.offset_mm, s.angle_deg, s.width_mm
        ));
    }
    for ch in &c.channels {
        rows.push(format!(
            "channel {}: {:.4} mm / {:.4} deg from plan, bore {:.2} mm",
            ch.drill, ch.offset_mm, ch.angle_deg, ch.bore_diameter_mm
        ));
    }
    rows.push(format!(
        "contact gap {:.3} mm min, thinnest wall {:.2} mm, closed and manifold: {}",
        c.contact.min_gap_mm,
        c.walls.thinnest_mm,
        c.mesh.is_valid()
    ));
    if let Some(p) = &c.seating {
        rows.push(format!("seating: {}", play_text(p)));
    }
    if let Some(l) = &c.label {
        rows.push(format!("label {}", l.summary()));
    }
    rows
}

/// What File > Export writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Export {
    Guides,
    Models,
    Gltf,
}

impl Export {
    fn doing(self) -> &'static str {
        match self {
            Export::Guides => "exporting the guides",
            Export::Models => "exporting the anatomical models",
            Export::Gltf => "exporting the glTF",
        }
    }
}

/// The plan's release, or a draft when no surgeon's approval is current.
fn release_or_draft(plan: &Plan) -> Result<Release, String> {
    match case::release_for(plan, None, false) {
        Ok(released) => Ok(released),
        Err(_) => case::release_for(plan, None, true).map_err(|e| e.to_string()),
    }
}

/// Writes one export (see [`GuidesmithApp::export`]); the line the window says.
fn export_to(
    plan: &Plan,
    bone: &guidesmith::mesh::Mesh,
    donor: Option<&case::DonorBone>,
    kind: Export,
    path: &Path,
    progress: &dyn guidesmith::progress::Progress,
) -> Result<String, String> {
    let text = |e: case::CaseError| e.to_string();
    let recipient = bone;
    let bone = || GuideBones::of(plan, recipient, donor.map(|d| &d.mesh));
    match kind {
        Export::Guides => {
            let release = release_or_draft(plan)?;
            let guides = case::build_guides_for(plan, bone(), None, &release, progress).map_err(text)?;
            if !guides.all_passed() {
                return Err("guides were refused or failed their checks; nothing was written".into());
            }
            case::write_guides(path, plan, bone(), &guides, &release, progress).map_err(text)?;
            Ok(format!(
                "wrote the guides ({}) to {}",
                if release.is_draft() { "DRAFT" } else { "released" },
                path.display()
            ))
        }
        Export::Models => {
            let models = case::make_models(plan, bone(), case::DEFAULT_MODEL_MARGIN_MM, progress).map_err(text)?;
            let paths = case::write_models(path, plan.case_id.as_str(), &models).map_err(text)?;
            Ok(format!("wrote {} anatomical models to {}", paths.len(), path.display()))
        }
        Export::Gltf => {
            let guides = case::build_guides(plan, bone(), None, progress).map_err(text)?;
            let models = case::make_models(plan, bone(), case::DEFAULT_MODEL_MARGIN_MM, progress).map_err(text)?;
            let bytes = case::plan_glb(plan, bone(), &guides, &models).map_err(text)?;
            write_file(path, &bytes)
        }
    }
}

/// Builds the guides for the plan's release (or a draft) and writes the bundle atomically; the line the window says.
fn write_bundle(
    plan: &Plan,
    bone: &guidesmith::mesh::Mesh,
    donor: Option<&case::DonorBone>,
    path: &Path,
    progress: &dyn guidesmith::progress::Progress,
) -> Result<String, String> {
    let recipient = bone;
    let bone = || GuideBones::of(plan, recipient, donor.map(|d| &d.mesh));
    let release = release_or_draft(plan)?;
    let guides = case::build_guides_for(plan, bone(), None, &release, progress).map_err(|e| e.to_string())?;
    if !guides.all_passed() {
        let codes: Vec<&str> = guides.findings().iter().map(|f| f.code.as_str()).collect();
        return Err(format!(
            "guides were refused or failed their checks ({}); no bundle was written",
            codes.join(", ")
        ));
    }
    let bytes = case::make_bundle(plan, bone(), &guides, &release, progress).map_err(|e| e.to_string())?;
    let line = write_file(path, &bytes)?;
    Ok(format!(
        "{line}, {}",
        if release.is_draft() { "DRAFT" } else { "released" }
    ))
}

/// The tint of each vertex of a guide: where it faces the bone and the bone lies within [`GAP_SHOWN_MM`] along the
/// seating direction, the colour of its gap to the bone's plane there (green at the offset, yellow, red); elsewhere
/// white.
pub(super) fn gap_tints(
    query: &guidesmith::measure::BoneQuery,
    mesh: &guidesmith::mesh::Mesh,
    seating: [f64; 3],
    offset_mm: f64,
) -> Vec<[f32; 3]> {
    use rayon::prelude::*;
    let len = (seating[0] * seating[0] + seating[1] * seating[1] + seating[2] * seating[2])
        .sqrt()
        .max(1e-12);
    let d = seating.map(|x| x / len);
    let normals = super::view3d::vertex_normals(mesh);
    mesh.positions
        .par_iter()
        .zip(&normals)
        .map(|(p, n)| {
            let nl = (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt().max(1e-30);
            // Facing the bone: the outward normal within 60 deg of the seating direction.
            if (n[0] * d[0] + n[1] * d[1] + n[2] * d[2]) / nl < 0.5 {
                return [1.0; 3];
            }
            // The gap along the seating direction, turned into the distance from the bone's local plane there (the
            // pad's underside is the bone grown along its normal).
            let gap = query.crossings(*p, d, -1e-6, GAP_SHOWN_MM).ok().and_then(|c| {
                c.iter().find(|c| c.entering).map(|c| {
                    let cos = (c.normal[0] * d[0] + c.normal[1] * d[1] + c.normal[2] * d[2]).abs();
                    c.t_mm * cos
                })
            });
            match gap {
                Some(g) => gap_colour(g - offset_mm),
                None => [1.0; 3],
            }
        })
        .collect()
}

/// The colour of a gap beyond the offset, mm: green to [`GAP_GREEN_MARGIN_MM`], then to yellow at
/// [`GAP_YELLOW_MM`] and red at [`GAP_RED_MM`] (tints: they multiply the guide's colour, so they are bright).
fn gap_colour(excess_mm: f64) -> [f32; 3] {
    let green = [0.4, 1.6, 0.5];
    let yellow = [2.6, 1.6, 0.2];
    let red = [3.0, 0.4, 0.3];
    let mix = |a: [f32; 3], b: [f32; 3], t: f64| [0, 1, 2].map(|k| a[k] + (b[k] - a[k]) * t.clamp(0.0, 1.0) as f32);
    if excess_mm <= GAP_GREEN_MARGIN_MM {
        green
    } else if excess_mm <= GAP_YELLOW_MM {
        mix(
            green,
            yellow,
            (excess_mm - GAP_GREEN_MARGIN_MM) / (GAP_YELLOW_MM - GAP_GREEN_MARGIN_MM),
        )
    } else {
        mix(yellow, red, (excess_mm - GAP_YELLOW_MM) / (GAP_RED_MM - GAP_YELLOW_MM))
    }
}
