//! Review mode: the plan opened read-only for the surgeon: the elements and their measurements, the guides with
//! their checks and seating play, the findings, views of each cut and each seated guide, a distance between two
//! picked points, the reviews with their standing (current, or STALE with what changed), an approval or rejection
//! bound to the plan as `guidesmith approve` binds it, and the plan report written from the window.
//!
//! Why a mode and not a second program: the surgeon sees exactly the plan the engineer designed, measured by the same
//! library; the mode only removes the ways to change it (every edit is refused while it is on).

use std::path::PathBuf;
use std::sync::Arc;

use eframe::egui::{self, Color32, RichText};
use guidesmith::case;
use guidesmith::plan::{release_approval, ApprovalState, Decision, DesignBinding, Role};

use super::guides::{footprint_centre, play_text, write_file};
use super::{GuidesmithApp, Outcome, Tool};

/// The "Approve" window's fields.
pub struct ApproveForm {
    pub open: bool,
    pub name: String,
    pub surgeon: bool,
    pub comment: String,
}

impl Default for ApproveForm {
    fn default() -> Self {
        ApproveForm {
            open: false,
            name: String::new(),
            surgeon: true,
            comment: String::new(),
        }
    }
}

impl GuidesmithApp {
    /// The plan panel in review mode.
    pub(super) fn review_panel(&mut self, ui: &mut egui::Ui) {
        let Some(doc) = &self.doc else { return };
        let plan = doc.plan.clone();
        ui.label(RichText::new("Review: read-only").color(Color32::from_rgb(150, 200, 255)));
        // Views a surgeon needs: each cut seen along its plane, each guide seen along its seating direction.
        ui.strong("Views");
        ui.horizontal_wrapped(|ui| {
            for p in &plan.planes {
                if ui.button(format!("Cut {}", p.name)).clicked() {
                    self.look_along(p.point_mm, p.normal);
                }
            }
            for g in &plan.guides {
                if ui.button(format!("Guide {}", g.name)).clicked() {
                    self.look_along(footprint_centre(g), g.seating_direction);
                }
            }
        });
        ui.horizontal(|ui| {
            ui.selectable_value(&mut self.tool, Tool::Navigate, "Orbit");
            ui.selectable_value(&mut self.tool, Tool::Distance, "Distance");
            if let Some(d) = self.distance_mm() {
                ui.label(format!("{d:.2} mm"));
            }
        });
        ui.separator();
        ui.strong("Elements");
        for p in &plan.planes {
            ui.label(format!(
                "plane {}: point ({:.1}, {:.1}, {:.1}) mm, blade {:.2} mm",
                p.name, p.point_mm[0], p.point_mm[1], p.point_mm[2], p.blade_thickness_mm
            ));
        }
        for d in &plan.drills {
            ui.label(format!(
                "drill {}: entry ({:.1}, {:.1}, {:.1}) mm, {:.1} mm long, {:.1} mm wide",
                d.name, d.entry_mm[0], d.entry_mm[1], d.entry_mm[2], d.length_mm, d.diameter_mm
            ));
        }
        ui.separator();
        ui.strong("Guides");
        match (&self.guides.built, self.guides.built_is_current()) {
            (Some(b), Some(true)) => {
                for g in &b.guides.guides {
                    let seating = g
                        .built()
                        .and_then(|(_, c)| c.seating.as_ref())
                        .map_or("not measured".to_string(), play_text);
                    let state = if g.findings().is_empty() {
                        "all checks passed".to_string()
                    } else {
                        format!(
                            "FAILED: {}",
                            g.findings()
                                .iter()
                                .map(|f| f.code.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    };
                    ui.label(format!("{}: {state}; seating play: {seating}", g.name));
                }
            }
            (Some(_), Some(false)) => {
                ui.label("Not built since the plan changed.");
            }
            _ => {
                ui.label("Not built yet.");
            }
        }
        if ui.button("Build guides").clicked() {
            self.build_guides(ui.ctx());
        }
        ui.separator();
        self.approvals_ui(ui, &plan);
        ui.separator();
        self.measurements(ui);
    }

    /// The reviews and their standing, the release, and the buttons to approve and to write the report.
    pub(super) fn approvals_ui(&mut self, ui: &mut egui::Ui, plan: &guidesmith::plan::Plan) {
        ui.strong("Reviews");
        let now = DesignBinding::of(plan);
        if plan.approvals.is_empty() {
            ui.label("none yet");
        }
        for a in &plan.approvals {
            let decision = match a.decision {
                Decision::Approved => "approved",
                Decision::Rejected => "rejected",
            };
            let (text, colour) = match a.state(&now) {
                ApprovalState::Current => ("current".to_string(), Color32::LIGHT_GREEN),
                ApprovalState::Stale(changes) => (format!("STALE: {}", changes.join("; ")), Color32::YELLOW),
            };
            ui.label(format!(
                "{decision} by {} ({}) at {}",
                a.reviewer,
                a.role.as_str(),
                a.at_utc
            ));
            ui.label(RichText::new(text).color(colour));
        }
        match release_approval(plan, &now) {
            Ok(a) => ui.label(
                RichText::new(format!("release: allowed (approved by {})", a.reviewer)).color(Color32::LIGHT_GREEN),
            ),
            Err(e) => ui.label(RichText::new(format!("release: not allowed: {e}")).small()),
        };
        ui.horizontal(|ui| {
            if ui.button("Approve or reject…").clicked() {
                self.approve_form.open = true;
            }
            if ui.button("Write report…").clicked() {
                let name = format!("{}_report.pdf", plan.case_id.as_str());
                if let Some(p) = rfd::FileDialog::new()
                    .add_filter("PDF", &["pdf"])
                    .set_file_name(name)
                    .save_file()
                {
                    self.write_report(ui.ctx(), p);
                }
            }
        });
    }

    /// The window that records a review: name, role, comment; approve or reject.
    pub(super) fn approve_window(&mut self, ctx: &egui::Context) {
        if !self.approve_form.open {
            return;
        }
        let mut open = true;
        let mut decided = None;
        egui::Window::new("Review the plan").open(&mut open).show(ctx, |ui| {
            let l = ui.label("Name");
            ui.text_edit_singleline(&mut self.approve_form.name).labelled_by(l.id);
            ui.horizontal(|ui| {
                ui.selectable_value(&mut self.approve_form.surgeon, true, "Surgeon");
                ui.selectable_value(&mut self.approve_form.surgeon, false, "Engineer");
            });
            let l = ui.label("Comment");
            ui.text_edit_multiline(&mut self.approve_form.comment).labelled_by(l.id);
            ui.horizontal(|ui| {
                if ui.button("Approve").clicked() {
                    decided = Some(Decision::Approved);
                }
                if ui.button("Reject").clicked() {
                    decided = Some(Decision::Rejected);
                }
            });
        });
        self.approve_form.open = open && decided.is_none();
        if let Some(decision) = decided {
            self.review_plan(decision);
        }
    }

    /// Records a review of the plan as `guidesmith approve` does: measured on its bone first (a plan with errors is
    /// not approved), bound to its inputs, stamped with the time.
    pub fn review_plan(&mut self, decision: Decision) {
        let (Some(doc), Some(bone)) = (&mut self.doc, &self.bone) else {
            return;
        };
        let role = if self.approve_form.surgeon {
            Role::Surgeon
        } else {
            Role::Engineer
        };
        let at_utc = (self.now_utc)();
        let form = &self.approve_form;
        let result = case::approve(
            &mut doc.plan,
            bone.query.mesh(),
            &form.name,
            role,
            decision,
            &form.comment,
            &at_utc,
        )
        .map(|a| {
            let word = match a.decision {
                Decision::Approved => "approved",
                Decision::Rejected => "rejected",
            };
            format!("{word} by {} ({}) at {}", a.reviewer, a.role.as_str(), a.at_utc)
        });
        match result {
            Ok(line) => {
                doc.version += 1;
                self.info(format!("Review recorded: {line}; save the plan to keep it"));
            }
            Err(e) => self.error(format!("Review refused: {e}")),
        }
    }

    /// Writes the plan report (PDF) in the background, building the guides first when they are out of date.
    pub fn write_report(&mut self, ctx: &egui::Context, path: PathBuf) {
        let (Some(doc), Some(bone)) = (&self.doc, &self.bone) else {
            return;
        };
        let plan = doc.plan.clone();
        let query = Arc::clone(&bone.query);
        let donor = self.donor_mesh();
        self.start_job(ctx, "writing the report", move |progress| {
            let result = report_to(&plan, query.mesh(), donor.as_deref(), &path, progress);
            Outcome::Wrote(result)
        });
    }

    /// Turns the 3D view to look at `point` along `direction`.
    pub(super) fn look_along(&mut self, point: [f64; 3], direction: [f64; 3]) {
        if let Some(c) = &mut self.camera {
            let d = direction;
            let len = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt().max(1e-12);
            // The eye sits against the direction: yaw about superior from +L, pitch up.
            let (x, y, z) = (-d[0] / len, -d[1] / len, -d[2] / len);
            c.target_mm = point;
            c.yaw_deg = y.atan2(x).to_degrees();
            c.pitch_deg = z.clamp(-1.0, 1.0).asin().to_degrees();
        }
    }

    /// The distance between the two points picked with the distance tool, mm.
    pub(super) fn distance_mm(&self) -> Option<f64> {
        match self.distance_points.as_slice() {
            [a, b] => Some((0..3).map(|k| (a[k] - b[k]).powi(2)).sum::<f64>().sqrt()),
            _ => None,
        }
    }
}

/// Builds the guides of `plan`, makes its report and writes it to `path` atomically; the line the window says.
fn report_to(
    plan: &guidesmith::plan::Plan,
    bone: &guidesmith::mesh::Mesh,
    donor: Option<&case::DonorBone>,
    path: &std::path::Path,
    progress: &dyn guidesmith::progress::Progress,
) -> Result<String, String> {
    let bones = || case::GuideBones::of(plan, bone, donor.map(|d| &d.mesh));
    let guides = case::build_guides(plan, bones(), None, progress).map_err(|e| e.to_string())?;
    let bytes = case::make_report(plan, bones(), &guides, progress).map_err(|e| e.to_string())?;
    write_file(path, &bytes)
}
