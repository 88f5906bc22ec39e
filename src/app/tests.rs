//! The application driven as a user drives it (egui_kittest): clicks on buttons found by their labels, clicks on
//! the bone in the 3D view, typed numbers, keyboard shortcuts; the 3D view and the snapshots are rendered with wgpu
//! (lavapipe on machines without a GPU: `.ci/run` installs `mesa-vulkan-drivers`).
//!
//! Without any wgpu adapter the tests say so and pass, except under CI (`CI` set), where that is a failure.

use std::path::Path;
use std::time::{Duration, Instant};

use eframe::egui;
use egui_kittest::kittest::{NodeT as _, Queryable as _};
use egui_kittest::{Harness, SnapshotOptions};

use super::{GuidesmithApp, Layout, StartOptions, Tool};

/// The window size of every test (the snapshots are this size).
const SIZE: [f32; 2] = [1280.0, 800.0];

/// The application in a test harness with the wgpu renderer, its configuration folder (recent files, autosaves) in
/// a temporary folder of its own; or `None` (said loudly) when this machine has no adapter at all.
fn harness() -> Option<(Harness<'static, GuidesmithApp>, tempfile::TempDir)> {
    let config = tempfile::tempdir().expect("a temporary folder");
    harness_in(config.path()).map(|h| (h, config))
}

/// As [`harness`], with the configuration folder `config`.
fn harness_in(config: &Path) -> Option<Harness<'static, GuidesmithApp>> {
    let start = StartOptions {
        config_dir: Some(config.to_path_buf()),
        ..StartOptions::default()
    };
    let built = std::panic::catch_unwind(move || {
        Harness::builder()
            .with_size(egui::vec2(SIZE[0], SIZE[1]))
            .with_max_steps(10_000)
            .wgpu()
            .build_eframe(move |cc| GuidesmithApp::new(cc, start))
    });
    match built {
        Ok(mut h) => {
            // Snapshots without the pointer, which sits wherever the last click was.
            h.set_render_cursor(false);
            assert!(
                h.state().has_3d,
                "the harness's wgpu renderer must give the application a render state"
            );
            Some(h)
        }
        Err(_) if std::env::var_os("CI").is_none() => {
            eprintln!("SKIPPED: no wgpu adapter on this machine (install mesa-vulkan-drivers for lavapipe)");
            None
        }
        Err(_) => panic!("no wgpu adapter under CI: .ci/run must install mesa-vulkan-drivers"),
    }
}

/// The one place that sets the snapshot options: lavapipe renders the same pixels run to run, but allow a few
/// anti-aliased edge pixels to differ between Mesa versions.
fn snapshot(h: &mut Harness<'static, GuidesmithApp>, name: &str) {
    let options = SnapshotOptions::new().threshold(1.0).max_failed_pixels(300);
    h.snapshot_options(name, &options);
}

/// Steps frames until no job runs and the measurements are current.
fn wait(h: &mut Harness<'static, GuidesmithApp>) {
    let start = Instant::now();
    loop {
        h.step();
        if !h.state().busy() && !h.state().eval_stale {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "a job did not finish in 10 minutes"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    h.run_steps(3);
}

/// Opens the demo case and shows the 3D view alone.
fn open_demo_in_3d(h: &mut Harness<'static, GuidesmithApp>) {
    h.get_by_label("Open the demo case").click();
    wait(h);
    h.get_by_label("3D").click();
    h.run_steps(2);
}

/// A press and release at `pos`.
fn click_at(h: &mut Harness<'static, GuidesmithApp>, pos: egui::Pos2) {
    h.hover_at(pos);
    h.step();
    h.drag_at(pos);
    h.step();
    h.drop_at(pos);
    h.run_steps(2);
}

/// Replaces the text of the field labelled `label` and presses Enter.
fn type_into(h: &mut Harness<'static, GuidesmithApp>, label: &str, text: &str) {
    h.get_by_role_and_label(egui::accesskit::Role::TextInput, label).focus();
    h.run_steps(1);
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h.run_steps(1);
    h.get_by_role_and_label(egui::accesskit::Role::TextInput, label)
        .type_text(text);
    h.run_steps(1);
    h.key_press(egui::Key::Enter);
    h.run_steps(2);
}

fn plane_point(h: &Harness<'static, GuidesmithApp>, name: &str) -> Option<[f64; 3]> {
    let doc = h.state().doc.as_ref()?;
    doc.plan.planes.iter().find(|p| p.name == name).map(|p| p.point_mm)
}

#[test]
fn demo_case_segmented_planned_by_clicks_and_numbers_undone_redone_saved_and_reopened() {
    let Some((mut h, _config)) = harness() else { return };
    snapshot(&mut h, "start");
    h.get_by_label("Open the demo case").click();
    wait(&mut h);
    {
        let app = h.state();
        assert!(app.ct.is_some() && app.bone.is_some(), "{:?}", app.messages);
        let doc = app.doc.as_ref().expect("the demo plan");
        assert_eq!(doc.plan.planes.len(), 2);
        assert!(app
            .evaluation
            .as_ref()
            .is_some_and(|e| e.planes.iter().all(|p| p.cuts_bone)));
    }
    snapshot(&mut h, "demo_four_views");

    // Segment again from the panel (the demo's own recipe): a checked surface of the same size.
    let before = h.state().bone.as_ref().map(|b| b.summary.clone());
    h.get_by_label("Make surface").click();
    wait(&mut h);
    let after = h.state().bone.as_ref().map(|b| b.summary.clone());
    assert_eq!(
        before.as_deref().map(|s| s.split(' ').next()),
        after.as_deref().map(|s| s.split(' ').next())
    );
    assert!(after.unwrap_or_default().contains("every check passed"));

    // A plane placed by clicking on the bone in the 3D view, from the front.
    h.get_by_label("3D").click();
    h.run_steps(2);
    assert_eq!(h.state().layout, Layout::Only3d);
    h.get_by_label("Add plane").click();
    h.run_steps(2);
    assert_eq!(h.state().tool, Tool::Plane);
    h.get_by_label("A").click();
    h.run_steps(2);
    let (rect, camera) = (h.state().view3d_rect, h.state().camera.expect("a camera"));
    let bone = h.state().bone.as_ref().expect("a bone");
    // The most anterior point of the jaw faces the camera.
    let front = [
        0.5 * (bone.min_mm[0] + bone.max_mm[0]),
        bone.min_mm[1] + 0.5,
        0.5 * (bone.min_mm[2] + bone.max_mm[2]),
    ];
    let pos = camera.project(rect, front).expect("in front of the camera");
    click_at(&mut h, pos);
    wait(&mut h);
    let placed = plane_point(&h, "plane-1").expect("a plane placed by the click");
    assert!(
        (placed[0] - front[0]).abs() < 1.5 && (placed[2] - front[2]).abs() < 1.5,
        "{placed:?} vs {front:?}"
    );
    assert_eq!(
        h.state().selected,
        Some((guidesmith::plan::ElementKind::Plane, "plane-1".to_string()))
    );
    assert!(h
        .state()
        .evaluation
        .as_ref()
        .is_some_and(|e| e.planes.iter().any(|p| p.name == "plane-1" && p.cuts_bone)));

    // Moved by a number: 3 mm to the left.
    type_into(&mut h, "Move mm", "[3, 0, 0]");
    h.get_by_label("Move").click();
    h.run_steps(2);
    let moved = plane_point(&h, "plane-1").expect("the plane");
    assert!((moved[0] - placed[0] - 3.0).abs() < 1e-9 && moved[1] == placed[1] && moved[2] == placed[2]);
    // And its point typed in.
    type_into(&mut h, "point_mm", "[1.5, -20, 4]");
    assert_eq!(plane_point(&h, "plane-1"), Some([1.5, -20.0, 4.0]));

    // Undo twice, redo twice, from the keyboard.
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Z);
    h.run_steps(2);
    assert_eq!(plane_point(&h, "plane-1"), Some(moved));
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Z);
    h.run_steps(2);
    assert_eq!(plane_point(&h, "plane-1"), Some(placed));
    h.key_press_modifiers(egui::Modifiers::COMMAND | egui::Modifiers::SHIFT, egui::Key::Z);
    h.key_press_modifiers(egui::Modifiers::COMMAND | egui::Modifiers::SHIFT, egui::Key::Z);
    h.run_steps(2);
    assert_eq!(plane_point(&h, "plane-1"), Some([1.5, -20.0, 4.0]));
    wait(&mut h);
    snapshot(&mut h, "plane_added_3d");

    // The slice views alone and together.
    for (label, layout) in [
        ("Axial", Layout::OnlySlice(super::Axis::Axial)),
        ("Four views", Layout::FourUp),
    ] {
        h.get_by_label(label).click();
        h.run_steps(2);
        assert_eq!(h.state().layout, layout);
    }

    // Saved, reopened (CT loaded, hash checked, bone segmented again) and saved again: the same bytes.
    let dir = tempfile::tempdir().expect("a temporary folder");
    let first = dir.path().join("plan.json");
    assert!(h.state_mut().save_to(&first), "{:?}", h.state().messages);
    assert!(!h.state().doc.as_ref().expect("plan").dirty());
    let ctx = h.ctx.clone();
    h.state_mut().open_path(&ctx, first.clone());
    wait(&mut h);
    assert!(h.state().error_window.is_none(), "{:?}", h.state().messages);
    assert_eq!(plane_point(&h, "plane-1"), Some([1.5, -20.0, 4.0]));
    let second = dir.path().join("plan-again.json");
    assert!(h.state_mut().save_to(&second));
    assert_eq!(
        read(&first),
        read(&second),
        "reopened and saved again, the plan must be byte-identical"
    );
}

#[test]
fn a_folder_without_dicom_is_refused_by_name_and_the_slices_scroll_and_window() {
    let Some((mut h, _config)) = harness() else { return };
    let dir = tempfile::tempdir().expect("a temporary folder");
    std::fs::write(dir.path().join("notes.txt"), "not DICOM").expect("write");
    let ctx = h.ctx.clone();
    h.state_mut().open_path(&ctx, dir.path().to_path_buf());
    wait(&mut h);
    let shown = h.state().error_window.clone().expect("an error is shown");
    assert!(shown.contains(&dir.path().display().to_string()), "{shown}");
    assert!(h.state().ct.is_none());
    h.get_by_label("OK").click();
    h.run_steps(2);
    assert!(h.state().error_window.is_none());

    h.get_by_label("Open the demo case").click();
    wait(&mut h);
    h.get_by_label("Axial").click();
    h.run_steps(2);
    let centre = egui::pos2(SIZE[0] / 2.0, SIZE[1] / 2.0);
    let k0 = h.state().views.as_ref().expect("views").cursor[2];
    h.hover_at(centre);
    h.step();
    h.event(egui::Event::MouseWheel {
        unit: egui::MouseWheelUnit::Line,
        delta: egui::vec2(0.0, 1.0),
        phase: egui::TouchPhase::Move,
        source: egui::MouseWheelSource::Wheel,
        modifiers: egui::Modifiers::NONE,
    });
    h.run_steps(2);
    assert_eq!(
        h.state().views.as_ref().expect("views").cursor[2],
        k0 + 1,
        "one wheel notch is one slice"
    );
    let hover = h
        .state()
        .views
        .as_ref()
        .and_then(|v| v.hover)
        .expect("HU under the cursor");
    let volume = &h.state().ct.as_ref().expect("ct").volume;
    assert_eq!(hover.hu, volume.at(hover.voxel[0], hover.voxel[1], hover.voxel[2]));

    // Scissors: everything left of the crosshair (the patient's left half of the jaw) cut away, then a new surface.
    let voxels =
        |h: &Harness<'static, GuidesmithApp>| h.state().bone.as_ref().and_then(|b| b.mask.as_ref()).map(|m| m.count());
    let before = voxels(&h).expect("a mask");
    h.get_by_label("Scissors").click();
    h.run_steps(2);
    h.get_by_label("cut L").click();
    h.run_steps(2);
    assert_eq!(h.state().seg.cut_planes.len(), 1);
    h.get_by_label("Make surface").click();
    wait(&mut h);
    let after = voxels(&h).expect("a mask");
    assert!(
        after * 10 < before * 6 && after * 10 > before * 4,
        "half the jaw kept: {after} of {before} voxels"
    );
}

/// Presses at `from`, moves in steps to `to`, releases; a frame per event.
fn drag(h: &mut Harness<'static, GuidesmithApp>, from: egui::Pos2, to: egui::Pos2) {
    press_and_move(h, from, to);
    h.drop_at(to);
    h.run_steps(3);
}

/// A press at `from` moved to `to` in five steps, the button still held.
fn press_and_move(h: &mut Harness<'static, GuidesmithApp>, from: egui::Pos2, to: egui::Pos2) {
    h.hover_at(from);
    h.step();
    h.drag_at(from);
    h.step();
    for i in 1..=5 {
        h.hover_at(from + (to - from) * (i as f32 / 5.0));
        h.step();
    }
}

#[test]
fn the_handles_move_a_plane_in_one_undoable_edit_and_a_drag_beside_them_orbits() {
    let Some((mut h, _config)) = harness() else { return };
    open_demo_in_3d(&mut h);
    h.get_by_label("resection-left").click();
    h.run_steps(3);
    let before = plane_point(&h, "resection-left").expect("the plane");
    let (rect, camera) = (h.state().view3d_rect, h.state().camera.expect("a camera"));
    // A drag far from the handles orbits the camera and changes nothing in the plan.
    let corner = rect.left_bottom() + egui::vec2(30.0, -30.0);
    drag(&mut h, corner, corner + egui::vec2(40.0, 0.0));
    assert_ne!(h.state().camera.map(|c| c.yaw_deg), Some(camera.yaw_deg));
    assert_eq!(plane_point(&h, "resection-left"), Some(before));
    // The centre of the handles moves the plane in the view plane; the release makes one edit.
    let camera = h.state().camera.expect("a camera");
    let centre = camera.project(rect, before).expect("the plane's point is in view");
    drag(&mut h, centre, centre + egui::vec2(40.0, 0.0));
    wait(&mut h);
    let after = plane_point(&h, "resection-left").expect("the plane");
    let moved =
        ((after[0] - before[0]).powi(2) + (after[1] - before[1]).powi(2) + (after[2] - before[2]).powi(2)).sqrt();
    assert!(moved > 1.0, "the handles must move the plane ({before:?} -> {after:?})");
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Z);
    h.run_steps(2);
    assert_eq!(
        plane_point(&h, "resection-left"),
        Some(before),
        "one undo takes the whole drag back"
    );
}

#[test]
fn unsaved_changes_are_autosaved_and_offered_back_after_a_crash() {
    let config = tempfile::tempdir().expect("a temporary folder");
    let dir = tempfile::tempdir().expect("a temporary folder");
    let plan_path = dir.path().join("plan.json");
    {
        let Some(mut h) = harness_in(config.path()) else { return };
        h.get_by_label("Open the demo case").click();
        wait(&mut h);
        assert!(h.state_mut().save_to(&plan_path));
        assert!(
            h.state().recent.iter().any(|p| p.ends_with("plan.json")),
            "{:?}",
            h.state().recent
        );
        assert!(h.state_mut().apply(guidesmith::plan::Edit::Translate {
            kind: guidesmith::plan::ElementKind::Plane,
            name: "resection-left".into(),
            delta_mm: [2.0, 0.0, 0.0],
        }));
        let side = h.state_mut().autosave_now().expect("an autosave of the unsaved change");
        assert_eq!(side, dir.path().join("plan.json.autosave"));
        // The application ends here without saving (as in a crash): the harness is dropped.
    }
    let Some(mut h) = harness_in(config.path()) else { return };
    assert_eq!(
        h.state().recent.first().map(|p| p.ends_with("plan.json")),
        Some(true),
        "recent files survive"
    );
    let ctx = h.ctx.clone();
    h.state_mut().open_path(&ctx, plan_path.clone());
    wait(&mut h);
    assert!(h.state().recover.is_some(), "the autosaved changes are offered");
    let x_saved = h
        .state()
        .doc
        .as_ref()
        .and_then(|d| d.plan.planes.iter().find(|p| p.name == "resection-left"))
        .map(|p| p.point_mm[0]);
    h.get_by_label("Recover").click();
    wait(&mut h);
    let doc = h.state().doc.as_ref().expect("the plan");
    let x = doc
        .plan
        .planes
        .iter()
        .find(|p| p.name == "resection-left")
        .map(|p| p.point_mm[0]);
    assert_eq!(x, x_saved.map(|x| x + 2.0));
    assert!(doc.dirty(), "recovered changes are unsaved until saved");
    assert!(h.state_mut().save_to(&plan_path));
    assert!(
        !dir.path().join("plan.json.autosave").exists(),
        "a save removes the side file"
    );
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The contact the window shows for guide `name`: (footprint area, contact area, measured in ms).
fn contact_of(h: &Harness<'static, GuidesmithApp>, name: &str) -> (f64, f64, f64) {
    let c = h.state().guides.contact.get(name).expect("a contact measured");
    let f = c.result.as_ref().expect("a valid footprint");
    (f.area_mm2, f.contact_area_mm2, c.ms)
}

fn footprint_of(h: &Harness<'static, GuidesmithApp>, name: &str) -> Vec<[f64; 3]> {
    let doc = h.state().doc.as_ref().expect("a plan");
    doc.plan
        .guides
        .iter()
        .find(|g| g.name == name)
        .expect("the guide")
        .footprint
        .outline_mm
        .clone()
}

#[test]
fn a_cutting_guide_is_proposed_dragged_built_checked_and_bundled_in_the_window() {
    use egui::accesskit::Role;
    let Some((mut h, _config)) = harness() else { return };
    open_demo_in_3d(&mut h);
    // The demo's own cutting guide out, to design one in its place.
    h.get_by_label("symphysis-cutting").click();
    h.run_steps(2);
    h.get_by_label("Delete").click();
    wait(&mut h);
    assert_eq!(h.state().doc.as_ref().expect("plan").plan.guides.len(), 1);

    // Add guide: cutting, both resection planes; the footprint is proposed on the bone.
    h.get_by_label("Add guide…").click();
    h.run_steps(2);
    h.get_by_label("Cutting").click();
    h.get_by_role_and_label(Role::CheckBox, "resection-right").click();
    h.get_by_role_and_label(Role::CheckBox, "resection-left").click();
    h.run_steps(2);
    h.get_by_label("Propose and add").click();
    wait(&mut h);
    let outline = footprint_of(&h, "guide-1");
    assert!(outline.len() >= 3, "{:?}", h.state().messages);
    let (area, contact, _) = contact_of(&h, "guide-1");
    assert!(
        contact > 0.8 * area && contact <= area + 1.0,
        "{contact} of {area} mm^2"
    );

    // The proposal turns a little more than the 2 deg the template allows (it rolls about the jaw's long axis at the
    // symphysis); the live seating play says so before any build.
    let turns = |h: &Harness<'static, GuidesmithApp>| {
        let c = h.state().guides.contact.get("guide-1").expect("a contact");
        let play = c.result.as_ref().expect("valid").play.clone().expect("in contact");
        play.rotation_deg.unwrap_or(f64::INFINITY)
    };
    let proposed_turn = turns(&h);
    assert!(proposed_turn > 2.0, "{proposed_turn} deg");
    // Seen from the front, three vertices dragged up and down the jaw, each on the bone under the pointer: one edit
    // each, the contact and the play measured again on every move, the pad now wrapping enough bone to hold.
    h.get_by_label("A").click();
    h.run_steps(2);
    for (index, z_mm) in [(9, -5.3), (11, 5.4), (5, -5.0)] {
        let (rect, camera) = (h.state().view3d_rect, h.state().camera.expect("a camera"));
        let p = outline[index];
        let from = camera.project(rect, p).expect("the vertex is in view");
        let to = camera.project(rect, [p[0], p[1], z_mm]).expect("the target is in view");
        let edits = h.state().doc.as_ref().expect("plan").history.undo_len();
        drag(&mut h, from, to);
        wait(&mut h);
        let moved = footprint_of(&h, "guide-1");
        assert_eq!(moved.len(), outline.len());
        assert!((moved[index][2] - z_mm).abs() < 0.3, "{:?} for z {z_mm}", moved[index]);
        // (The view is in perspective: the bone under the pointer lies deeper than the vertex, a little aside.)
        assert!((moved[index][0] - p[0]).abs() < 1.0, "{:?} from {p:?}", moved[index]);
        assert_eq!(
            h.state().doc.as_ref().expect("plan").history.undo_len(),
            edits + 1,
            "one edit"
        );
        let (_, _, ms) = contact_of(&h, "guide-1");
        eprintln!("vertex {index}: contact and seating play measured again in {ms:.1} ms");
    }
    let (area2, _, _) = contact_of(&h, "guide-1");
    assert!(area2 > area, "the footprint grew: {area2} vs {area} mm^2");
    let dragged_turn = turns(&h);
    assert!(dragged_turn < 2.0, "{dragged_turn} deg");

    // Build: the new guide has no room for its label (its pad between the housings is 10 mm tall); the finding is
    // listed with its code, and a click on it marks its place in the 3D view.
    h.get_by_label("Build guides").click();
    wait(&mut h);
    let no_room = {
        let built = h.state().guides.built.as_ref().expect("built");
        let g = built
            .guides
            .guides
            .iter()
            .find(|g| g.name == "guide-1")
            .expect("guide-1");
        let f = g.findings();
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].code.as_str(), "label_no_room");
        f[0].clone()
    };
    let listed = format!("error label_no_room: {}", no_room.message);
    h.get_by_label(&listed).click();
    h.run_steps(2);
    assert_eq!(h.state().marked_place, no_room.place_mm);
    // Without the label (one edit), built again: every check of both guides passes, listed in the panel.
    h.get_by_label("Label (case ID, guide number, side; DRAFT until released)")
        .click();
    h.run_steps(2);
    assert!(h.state().doc.as_ref().expect("plan").plan.guides[1].label.is_none());
    h.get_by_label("Build guides").click();
    wait(&mut h);
    {
        let built = h.state().guides.built.as_ref().expect("built");
        for g in &built.guides.guides {
            assert!(g.findings().is_empty(), "{}: {:?}", g.name, g.findings());
        }
        assert_eq!(built.meshes.len(), 2);
    }
    assert!(h.query_by_label("Checks of guide-1").is_some());
    snapshot(&mut h, "guide_designed");

    // The underside coloured by its gap to the bone: the pad lies at the offset (green) almost everywhere it faces
    // the bone. Then the view clipped across the symphysis, seen from the left: the pad and the bone in section.
    let (green, facing) = {
        let app = h.state();
        let built = app.guides.built.as_ref().expect("built");
        let g = built
            .guides
            .guides
            .iter()
            .find(|g| g.name == "guide-1")
            .expect("guide-1");
        let (guide, _) = g.built().expect("built");
        let spec = &app.doc.as_ref().expect("plan").plan.guides[1];
        let query = &app.bone.as_ref().expect("bone").query;
        let tints = super::guides::gap_tints(
            query,
            &guide.mesh,
            spec.seating_direction,
            guide.params.tolerance.bone_offset_mm,
        );
        let green = tints.iter().filter(|t| t[1] > 1.5 && t[0] < 0.5).count();
        let facing = tints.iter().filter(|t| **t != [1.0; 3]).count();
        (green, facing)
    };
    assert!(
        facing > 1000 && green as f64 > 0.9 * facing as f64,
        "{green} green of {facing} facing the bone"
    );
    h.get_by_label("L").click();
    h.get_by_label("Clip the view").click();
    h.run_steps(2);
    h.get_by_label("Show planes").click();
    let centre = {
        let o = footprint_of(&h, "guide-1");
        let n = o.len() as f64;
        [0, 1, 2].map(|k| o.iter().map(|p| p[k]).sum::<f64>() / n)
    };
    if let Some(c) = &mut h.state_mut().camera {
        (c.target_mm, c.distance_mm) = ([0.0, centre[1], centre[2]], 60.0);
    }
    h.run_steps(3);
    assert!(h.state().guides.clip);
    snapshot(&mut h, "guide_section");
    h.get_by_label("Clip the view").click();
    h.get_by_label("Show planes").click();
    h.run_steps(2);

    // The bundle from the window, checked offline as `guidesmith verify` does: every check holds, a draft.
    let dir = tempfile::tempdir().expect("a temporary folder");
    let zip = dir.path().join("DEMO-JAW.zip");
    let ctx = h.ctx.clone();
    h.state_mut().export_bundle(&ctx, zip.clone());
    wait(&mut h);
    let report = guidesmith::case::verify_bundle(&std::fs::read(&zip).expect("the bundle"));
    assert!(report.all_hold(), "{:?}", report.checks);
    assert!(!report.released(), "nobody approved the demo: a draft");
    // The guides, the models and the glTF from File > Export, as the CLI writes them.
    for (kind, path) in [
        (super::guides::Export::Guides, dir.path().join("guides")),
        (super::guides::Export::Models, dir.path().join("models")),
        (super::guides::Export::Gltf, dir.path().join("DEMO-JAW_plan.glb")),
    ] {
        h.state_mut().export(&ctx, kind, path);
        wait(&mut h);
    }
    for name in [
        "guides/DEMO-JAW_guide-1_DRAFT.stl",
        "guides/DEMO-JAW_guides_DRAFT.3mf",
        "guides/manifest.json",
        "models/DEMO-JAW_model_planned.stl",
        "DEMO-JAW_plan.glb",
    ] {
        assert!(dir.path().join(name).is_file(), "{name}: {:?}", h.state().messages);
    }
    // The seating direction taken from the view (from the front: the guide comes on along +y), one edit; the contact
    // is measured again for it.
    h.get_by_label("A").click();
    h.run_steps(2);
    h.get_by_label("Seat along the view").click();
    h.run_steps(2);
    let d = h.state().doc.as_ref().expect("plan").plan.guides[1].seating_direction;
    assert!(
        (d[1] - 1.0).abs() < 1e-9 && d[0].abs() < 1e-9 && d[2].abs() < 1e-9,
        "{d:?}"
    );
    assert!(h
        .state()
        .guides
        .contact
        .get("guide-1")
        .is_some_and(|c| c.result.is_ok()));

    // The drill guide's label put by a click on the bone (seen from the left, at its footprint's most lateral point).
    h.get_by_label("left-body-drilling").click();
    h.get_by_label("Reset").click();
    h.get_by_label("L").click();
    h.run_steps(2);
    let target = footprint_of(&h, "left-body-drilling")
        .into_iter()
        .reduce(|a, b| if b[0] > a[0] { b } else { a })
        .expect("points");
    let (rect, camera) = (h.state().view3d_rect, h.state().camera.expect("a camera"));
    let pos = camera.project(rect, target).expect("in view");
    h.get_by_label("Put the label at the next click").click();
    h.run_steps(2);
    assert_eq!(h.state().guides.label_pick.as_deref(), Some("left-body-drilling"));
    assert!(rect.contains(pos), "{pos:?} outside {rect:?}");
    click_at(&mut h, pos);
    wait(&mut h);
    let near = {
        let doc = h.state().doc.as_ref().expect("plan");
        let g = doc
            .plan
            .guides
            .iter()
            .find(|g| g.name == "left-body-drilling")
            .expect("guide");
        g.label
            .as_ref()
            .and_then(|l| l.near_mm)
            .unwrap_or_else(|| panic!("the label put: {:?} {:?}", g.label, h.state().messages))
    };
    let off: f64 = (0..3).map(|k| (near[k] - target[k]).powi(2)).sum::<f64>().sqrt();
    assert!(off < 3.0, "{near:?} vs {target:?}");
    assert!(h.state().guides.label_pick.is_none());

    // The template's parameters with their units, ranges and sources; a value the plan sets is shown as the plan's,
    // and "default" takes it out again (one edit each).
    h.get_by_label("guide-1").click();
    h.run_steps(2);
    h.get_by_label("Parameters of guide-1").click();
    h.run_steps(2);
    assert!(h.query_by_label("pad_thickness_mm").is_some());
    assert!(h.query_by_label("printer").is_some());
    let set = guidesmith::plan::Edit::Set {
        kind: guidesmith::plan::ElementKind::Guide,
        name: "guide-1".into(),
        field: "parameters.pad_thickness_mm".into(),
        value: serde_json::json!(3.0),
    };
    assert!(h.state_mut().apply(set));
    h.run_steps(2);
    let parameters = |h: &Harness<'static, GuidesmithApp>| {
        let doc = h.state().doc.as_ref().expect("plan");
        doc.plan
            .guides
            .iter()
            .find(|g| g.name == "guide-1")
            .expect("guide")
            .parameters
            .clone()
    };
    assert_eq!(parameters(&h).get("pad_thickness_mm"), Some(&3.0));
    h.get_by_label("default").click();
    h.run_steps(2);
    assert!(parameters(&h).is_empty(), "{:?}", parameters(&h));
}

#[test]
fn the_plan_is_reviewed_read_only_approved_and_the_approval_goes_stale_when_a_plane_moves() {
    use guidesmith::plan::{ApprovalState, DesignBinding, Edit, ElementKind};
    let Some((mut h, _config)) = harness() else { return };
    open_demo_in_3d(&mut h);
    h.get_by_label("Review").click();
    h.run_steps(2);
    assert!(h.state().review);
    // Read-only: an edit and an undo are refused, the plan unchanged.
    let before = h.state().doc.as_ref().expect("plan").plan.to_json();
    let edit = Edit::Translate {
        kind: ElementKind::Plane,
        name: "resection-right".into(),
        delta_mm: [1.0, 0.0, 0.0],
    };
    assert!(!h.state_mut().apply(edit.clone()));
    assert_eq!(h.state().doc.as_ref().expect("plan").plan.to_json(), before);
    h.run_steps(2);
    let said = h.state().error_window.clone().expect("the refusal is shown");
    assert!(said.contains("read-only"), "{said}");
    h.get_by_label("OK").click();
    h.run_steps(2);

    // The view of a cut looks along its plane's normal (the demo's cuts are sagittal: along x).
    h.get_by_label("Cut resection-right").click();
    h.run_steps(2);
    let camera = h.state().camera.expect("a camera");
    assert!(
        camera.pitch_deg.abs() < 1e-6 && (camera.yaw_deg.abs() < 1e-6 || (camera.yaw_deg.abs() - 180.0).abs() < 1e-6),
        "{camera:?}"
    );
    // The distance between two points picked on the bone (from the front).
    h.get_by_label("A").click();
    h.get_by_label("Distance").click();
    h.run_steps(2);
    let (rect, camera) = (h.state().view3d_rect, h.state().camera.expect("a camera"));
    let (min, max) = {
        let bone = h.state().bone.as_ref().expect("a bone");
        (bone.min_mm, bone.max_mm)
    };
    let z = 0.5 * (min[2] + max[2]);
    for x in [-10.0, 10.0] {
        let pos = camera.project(rect, [x, min[1] + 0.5, z]).expect("in view");
        click_at(&mut h, pos);
    }
    let points = h.state().distance_points.clone();
    assert_eq!(points.len(), 2);
    let d = h.state().distance_mm().expect("a distance");
    assert!((d - 20.0).abs() < 2.0, "{d} mm between {points:?}");

    // Approved by a surgeon from the window: bound to the plan, current, and the release allowed.
    // (At a fixed time, so the snapshot is the same every run.)
    h.state_mut().now_utc = || "2026-12-07T14:00:00Z".to_string();
    h.get_by_label("Approve or reject…").click();
    h.run_steps(2);
    type_into(&mut h, "Name", "Dr Review");
    h.get_by_label("Approve").click();
    h.run_steps(3);
    {
        let plan = &h.state().doc.as_ref().expect("plan").plan;
        assert_eq!(plan.approvals.len(), 1, "{:?}", h.state().messages);
        assert_eq!(plan.approvals[0].reviewer, "Dr Review");
        assert_eq!(
            plan.approvals[0].state(&DesignBinding::of(plan)),
            ApprovalState::Current
        );
    }
    assert!(h.query_by_label("current").is_some());
    assert!(h.query_by_label("release: allowed (approved by Dr Review)").is_some());
    snapshot(&mut h, "review_approved");
    // The report written from the window: a whole PDF that names the approving surgeon.
    let dir = tempfile::tempdir().expect("a temporary folder");
    let pdf = dir.path().join("DEMO-JAW_report.pdf");
    let ctx = h.ctx.clone();
    h.state_mut().write_report(&ctx, pdf.clone());
    wait(&mut h);
    let bytes = std::fs::read(&pdf).expect("the report");
    assert!(
        bytes.starts_with(b"%PDF") && bytes.len() > 10_000,
        "{} bytes",
        bytes.len()
    );

    // Back in design mode a plane moves: the approval is stale, and says what changed.
    h.get_by_label("Design").click();
    h.run_steps(2);
    assert!(h.state_mut().apply(edit));
    h.get_by_label("Review").click();
    h.run_steps(2);
    let plan = &h.state().doc.as_ref().expect("plan").plan;
    let ApprovalState::Stale(changes) = plan.approvals[0].state(&DesignBinding::of(plan)) else {
        panic!("the approval stayed current")
    };
    assert!(changes.iter().any(|c| c.contains("resection-right")), "{changes:?}");
    let shown = format!("STALE: {}", changes.join("; "));
    assert!(h.query_by_label(&shown).is_some(), "{shown}");
}

/// The shared test support (the data folder; its proptest configuration is not used here).
#[path = "../testing.rs"]
#[allow(dead_code)]
mod shared;

/// A plan on the real mandible with two resection planes across its body, saved in `dir` (made by the library, as
/// `plan new --ct` and `plan add-plane` make it).
fn mandible_plan_with_resection(dir: &Path, mandible: &Path) -> std::path::PathBuf {
    use guidesmith::case;
    use guidesmith::plan::{CaseId, CuttingPlane, Edit, Element, ResectedSide, Segmentation};
    use guidesmith::segment::{HuRange, SegmentRecipe};
    let path = dir.join("plan.json");
    let segmentation = Segmentation {
        recipe: SegmentRecipe::new(HuRange::BONE),
        smooth_iterations: 0,
        decimate_keep_fraction: None,
    };
    let made = case::new_plan_from_ct(
        mandible,
        None,
        &guidesmith::volume::LoadOptions::default(),
        CaseId::new("FLAP-GUI").expect("a case ID"),
        segmentation,
        &path,
        &guidesmith::progress::NoProgress,
    )
    .expect("the mandible's plan");
    let mut plan = made.plan;
    // The right parasymphysis to the left body (the two-segment case of `tests/flap_cli.rs`).
    for (name, point_mm, normal) in [
        ("first", [-22.46, -47.42, -8.0], [-0.5, 0.866, 0.0]),
        ("second", [28.0, -38.0, -8.0], [0.5, 0.866, 0.0]),
    ] {
        plan.apply(Edit::Add(Element::Plane(CuttingPlane {
            name: name.into(),
            point_mm,
            normal,
            // The CLI's default blade, so the numbers are those of `docs/PLANNING.md`.
            blade_thickness_mm: 1.0,
            resected_side: ResectedSide::Negative,
        })))
        .expect("a plane");
    }
    plan.save(&path).expect("saved");
    path
}

/// The segment lengths of the proposal the panel shows, mm.
fn shown_lengths(h: &Harness<'static, GuidesmithApp>) -> Vec<f64> {
    let preview = h.state().flap.preview.as_ref().expect("a proposal");
    assert!(preview.result.is_ok(), "a proposal, not an error");
    shown_lengths_of(preview)
}

#[test]
fn a_fibula_flap_is_proposed_as_the_planes_move_shown_on_both_bones_and_recorded_in_one_edit() {
    use guidesmith::case::{self, DonorInput, FlapRequest};
    use guidesmith::plan::ElementKind;
    let (Some(mandible), Some(leg)) = (shared::data("ct/mandible-0014"), shared::data("ct/leg-vhf-right")) else {
        return;
    };
    let Some((mut h, _config)) = harness() else { return };
    let dir = tempfile::tempdir().expect("a temporary folder");
    let plan_path = mandible_plan_with_resection(dir.path(), &mandible);
    let ctx = h.ctx.clone();
    h.state_mut().open_path(&ctx, plan_path.clone());
    wait(&mut h);
    h.get_by_label("3D").click();
    h.run_steps(2);

    // The donor: the leg's CT, typed and opened; the panel takes the two resecting planes and proposes at once.
    h.get_by_label("Reconstruction (fibula free flap)").click();
    h.run_steps(2);
    type_into(&mut h, "Donor CT or STL", leg.to_str().expect("a UTF-8 path"));
    h.get_by_label("Open donor").click();
    wait(&mut h);
    assert!(h.state().flap.donor.is_some(), "{:?}", h.state().messages);
    assert_eq!(h.state().flap.planes, ["first".to_string(), "second".to_string()]);
    // Two segments at the default limits (2 mm largest, 1 mm mean): too far from the contour, said as a finding,
    // and nothing to record.
    h.get_by_label("2 segments").click();
    wait(&mut h);
    assert_eq!(shown_lengths(&h).len(), 2);
    let codes: Vec<String> = {
        let parts = h
            .state()
            .flap
            .preview
            .as_ref()
            .and_then(|p| p.result.as_ref().ok())
            .expect("shown");
        parts
            .proposal
            .findings
            .iter()
            .map(|f| f.code.as_str().to_string())
            .collect()
    };
    assert_eq!(codes, ["flap_deviation_over_limit"], "{codes:?}");
    assert!(h.get_by_label("Record in plan").accesskit_node().is_disabled());

    // The limits of the two-segment case: the proposal holds, and it is the one `plan reconstruct` makes (the same
    // library call, run here independently), measurement for measurement.
    for (label, value) in [("Max deviation mm", 4.5), ("Max mean deviation mm", 2.5)] {
        let field = h.get_by_role_and_label(egui::accesskit::Role::SpinButton, label);
        field.scroll_to_me();
        field.set_value_accesskit(value);
        h.run_steps(2);
    }
    wait(&mut h);
    assert_eq!(h.state().flap.parameters.max_deviation_mm, 4.5);
    assert_eq!(h.state().flap.parameters.max_mean_deviation_mm, 2.5);
    let plan = h.state().doc.as_ref().expect("plan").plan.clone();
    let donor = case::make_donor(
        &DonorInput::Ct(leg.clone()),
        &plan_path,
        &guidesmith::progress::NoProgress,
    )
    .expect("the donor");
    let mut request = FlapRequest::for_plan(&plan, vec!["first".into(), "second".into()]);
    request.count = Some(2);
    request.parameters.max_deviation_mm = 4.5;
    request.parameters.max_mean_deviation_mm = 2.5;
    let bone = h.state().bone.as_ref().expect("the bone").query.clone();
    let expected =
        case::propose_reconstruction(&plan, bone.mesh(), &donor, &request, &guidesmith::progress::NoProgress)
            .expect("a proposal");
    assert!(expected.findings.is_empty(), "{:?}", expected.findings);
    {
        let preview = h.state().flap.preview.as_ref().expect("a proposal");
        let parts = preview.result.as_ref().expect("a proposal");
        assert!(parts.proposal.findings.is_empty(), "{:?}", parts.proposal.findings);
        assert_eq!(parts.proposal.measures, expected.measures);
        assert_eq!(parts.proposal.reconstruction.segments, expected.reconstruction.segments);
        // Every segment is drawn in the mandible and on the fibula, which stands beside the mandible (+x).
        assert_eq!(parts.in_mandible.len(), 2);
        assert_eq!(parts.on_donor.len(), 2);
        assert!(parts.shift_mm[0] > 0.0, "{:?}", parts.shift_mm);
    }
    for (k, s) in expected.measures.segments.iter().enumerate() {
        let c = SEGMENT_NAMES[k];
        assert!(h.query_by_label(c).is_some(), "{c} is listed");
        assert!(h.query_by_label(&format!("{:.2}", s.length_mm)).is_some(), "{s:?}");
    }
    // Side by side, the planes hidden: the mandible without the resected bone, the segments in the gap, and the
    // fibula beside it with the same segments coloured alike.
    h.get_by_label("Show planes").click();
    h.get_by_label("Side by side").click();
    h.run_steps(3);
    snapshot(&mut h, "flap_side_by_side");
    h.get_by_label("Show planes").click();
    h.run_steps(2);

    // The second plane dragged with its handles: while the button is held (the plan not edited yet) the segments
    // are proposed again for the plane as drawn; the release makes one edit.
    let before = shown_lengths(&h);
    let edits = h.state().doc.as_ref().expect("plan").history.undo_len();
    h.get_by_label("A").click();
    h.run_steps(2);
    h.state_mut().selected = Some((ElementKind::Plane, "second".into()));
    h.run_steps(3);
    let second = plane_point(&h, "second").expect("the plane");
    let (rect, camera) = (h.state().view3d_rect, h.state().camera.expect("a camera"));
    let from = camera.project(rect, second).expect("the plane's point is in view");
    let to = from + egui::vec2(25.0, 0.0);
    press_and_move(&mut h, from, to);
    // Held: the proposal for the dragged pose arrives.
    let start = Instant::now();
    while h.state().flap.job.is_some()
        || h.state()
            .flap
            .preview
            .as_ref()
            .is_none_or(|p| shown_lengths_of(p) == before)
    {
        h.step();
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "no proposal while the plane was dragged"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let during = shown_lengths(&h);
    assert_eq!(
        h.state().doc.as_ref().expect("plan").history.undo_len(),
        edits,
        "no edit while held"
    );
    h.drop_at(to);
    wait(&mut h);
    assert_eq!(
        h.state().doc.as_ref().expect("plan").history.undo_len(),
        edits + 1,
        "one edit"
    );
    let moved = plane_point(&h, "second").expect("the plane");
    let shift = ((moved[0] - second[0]).powi(2) + (moved[1] - second[1]).powi(2)).sqrt();
    assert!(shift > 1.0, "{second:?} -> {moved:?}");
    let after = shown_lengths(&h);
    eprintln!("segment lengths {before:?} -> {during:?} (held) -> {after:?} (released)");
    assert_ne!(after, before);
    let total = |v: &[f64]| v.iter().sum::<f64>();
    assert!((total(&after) - total(&before)).abs() > 0.5, "{before:?} -> {after:?}");

    // Recorded: one edit with the fibula guide (built and checked while proposing), undone and redone as one.
    // (At the foot of the panel, below the window's edge at this size: pressed through accessibility.)
    h.get_by_label("Record in plan").click_accesskit();
    wait(&mut h);
    {
        let plan = &h.state().doc.as_ref().expect("plan").plan;
        let findings: Vec<String> = h
            .state()
            .flap
            .preview
            .as_ref()
            .and_then(|p| p.result.as_ref().ok())
            .map(|p| p.proposal.findings.iter().map(|f| f.to_string()).collect())
            .unwrap_or_default();
        let Some(r) = plan.reconstruction.as_ref() else {
            panic!("not recorded: {findings:?} {:?}", h.state().messages)
        };
        assert_eq!(r.segments.len(), 2);
        assert!(plan.guides.iter().any(|g| g.name == case::DONOR_GUIDE_NAME));
        assert_eq!(h.state().doc.as_ref().expect("plan").history.undo_len(), edits + 2);
    }
    assert!(h.query_by_label("the plan records this reconstruction").is_some());
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Z);
    h.run_steps(2);
    assert!(h.state().doc.as_ref().expect("plan").plan.reconstruction.is_none());
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Y);
    h.run_steps(2);
    assert!(h.state().doc.as_ref().expect("plan").plan.reconstruction.is_some());

    // Saved and opened again: the window opens the donor the plan records and shows the recorded segments.
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::S);
    wait(&mut h);
    let recorded = h
        .state()
        .doc
        .as_ref()
        .expect("plan")
        .plan
        .reconstruction
        .clone()
        .expect("recorded");
    let Some((mut h2, _config2)) = harness() else { return };
    let ctx2 = h2.ctx.clone();
    h2.state_mut().open_path(&ctx2, plan_path.clone());
    wait(&mut h2);
    assert!(h2.state().flap.donor.is_some(), "{:?}", h2.state().messages);
    let parts_segments = {
        let preview = h2.state().flap.preview.as_ref().expect("a proposal");
        preview
            .result
            .as_ref()
            .expect("a proposal")
            .proposal
            .reconstruction
            .segments
            .clone()
    };
    assert_eq!(parts_segments, recorded.segments);
}

/// The segments' names as the panel lists them.
const SEGMENT_NAMES: [&str; 4] = ["S1", "S2", "S3", "S4"];

fn shown_lengths_of(p: &super::flap::Preview) -> Vec<f64> {
    p.result
        .as_ref()
        .map(|parts| parts.proposal.measures.segments.iter().map(|s| s.length_mm).collect())
        .unwrap_or_default()
}
