//! Move and rotate handles in the 3D view for the selected plane or drill, with transform-gizmo's core (the egui
//! adapter crate pins another egui, so the few lines that connect it to egui 0.37 are here).
//!
//! Why the handles produce edits only on release: a drag is one change for the user, so it becomes one rotation and
//! one translation of the plan (two undo steps at most), not one edit per frame; while the drag goes on the 3D view
//! shows the element where it would go.

use eframe::egui;
use nalgebra::{Matrix4, Quaternion, UnitQuaternion};
use transform_gizmo::math::{Pos2 as GPos2, Rect as GRect, Transform};
use transform_gizmo::{mint, Gizmo, GizmoConfig, GizmoInteraction, GizmoMode, GizmoOrientation};

fn rows(m: &Matrix4<f64>) -> mint::RowMatrix4<f64> {
    let r = |i: usize| [m[(i, 0)], m[(i, 1)], m[(i, 2)], m[(i, 3)]];
    mint::RowMatrix4::from([r(0), r(1), r(2), r(3)])
}

/// A pose at `point_mm` with no rotation.
pub fn at(point_mm: [f64; 3]) -> Transform {
    Transform {
        translation: mint::Vector3 {
            x: point_mm[0],
            y: point_mm[1],
            z: point_mm[2],
        },
        ..Transform::default()
    }
}

/// The rotation of a pose.
pub fn rotation(t: &Transform) -> UnitQuaternion<f64> {
    UnitQuaternion::from_quaternion(Quaternion::new(
        t.rotation.s,
        t.rotation.v.x,
        t.rotation.v.y,
        t.rotation.v.z,
    ))
}

/// The translation of a pose.
pub fn translation(t: &Transform) -> [f64; 3] {
    [t.translation.x, t.translation.y, t.translation.z]
}

/// Updates and draws the gizmo over `viewport` for `target`; returns true while it changes `target`.
pub fn interact(
    gizmo: &mut Gizmo,
    ui: &egui::Ui,
    viewport: egui::Rect,
    view_from_world: &Matrix4<f64>,
    clip_from_view: &Matrix4<f64>,
    target: &mut Transform,
) -> bool {
    gizmo.update_config(GizmoConfig {
        view_matrix: rows(view_from_world),
        projection_matrix: rows(clip_from_view),
        viewport: GRect::from_min_max(
            GPos2::new(viewport.min.x, viewport.min.y),
            GPos2::new(viewport.max.x, viewport.max.y),
        ),
        modes: GizmoMode::all_translate() | GizmoMode::all_rotate(),
        orientation: GizmoOrientation::Global,
        pixels_per_point: ui.ctx().pixels_per_point(),
        ..*gizmo.config()
    });
    let cursor = ui.input(|i| i.pointer.hover_pos()).unwrap_or_default();
    let result = gizmo.update(
        GizmoInteraction {
            cursor_pos: (cursor.x, cursor.y),
            hovered: ui.rect_contains_pointer(viewport),
            drag_started: ui.input(|i| i.pointer.button_pressed(egui::PointerButton::Primary)),
            dragging: ui.input(|i| i.pointer.button_down(egui::PointerButton::Primary)),
        },
        &[*target],
    );
    let draw = gizmo.draw();
    let mesh = egui::Mesh {
        indices: draw.indices,
        vertices: draw
            .vertices
            .into_iter()
            .zip(draw.colors)
            .map(|(pos, [r, g, b, a])| egui::epaint::Vertex {
                pos: egui::pos2(pos[0], pos[1]),
                uv: egui::Pos2::ZERO,
                color: egui::Rgba::from_rgba_premultiplied(r, g, b, a).into(),
            })
            .collect(),
        ..Default::default()
    };
    ui.painter().with_clip_rect(viewport).add(mesh);
    match result {
        Some((_, new)) if !new.is_empty() => {
            *target = new[0];
            true
        }
        _ => false,
    }
}
