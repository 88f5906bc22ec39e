//! The three slice views (axial, coronal, sagittal) of the HU volume: window/level, a linked crosshair, the HU
//! value and patient position under the cursor, orientation letters, and the bone mask or HU window as an overlay.
//!
//! Why in voxel index space: a slice is a plane of constant `k`, `j` or `i`, so the image is the stored samples,
//! never resampled; the letters at the edges come from the grid's patient axes, so a tilted or flipped series still
//! says where right, anterior and superior are. Mouse: left click or drag moves the crosshair (linked across the
//! three views), the wheel scrolls slices, Ctrl + wheel zooms at the cursor, middle drag pans, right drag changes
//! window (left-right) and level (up-down).

use eframe::egui::{self, Color32, ColorImage, Pos2, Rect, Sense, TextureHandle, TextureOptions, Vec2};
use guidesmith::segment::{BoxMm, Mask, PlaneMm};
use guidesmith::volume::Volume;
use nalgebra::Point3;

/// One of the three orthogonal slice directions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Axis {
    /// Constant `k` (slices as stored).
    Axial,
    /// Constant `j`.
    Coronal,
    /// Constant `i`.
    Sagittal,
}

impl Axis {
    pub fn name(self) -> &'static str {
        match self {
            Axis::Axial => "Axial",
            Axis::Coronal => "Coronal",
            Axis::Sagittal => "Sagittal",
        }
    }

    fn index(self) -> usize {
        match self {
            Axis::Axial => 0,
            Axis::Coronal => 1,
            Axis::Sagittal => 2,
        }
    }

    /// The grid axes along the image's width and height, and the one across slices.
    fn grid_axes(self) -> (usize, usize, usize) {
        match self {
            Axis::Axial => (0, 1, 2),
            Axis::Coronal => (0, 2, 1),
            Axis::Sagittal => (1, 2, 0),
        }
    }
}

/// Window / level presets, (name, window HU, level HU).
pub const WINDOW_PRESETS: [(&str, f32, f32); 3] = [
    ("Bone", 2000.0, 400.0),
    ("Soft tissue", 400.0, 40.0),
    ("Full", 4000.0, 1000.0),
];

/// What is under the cursor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hover {
    /// Voxel indices.
    pub voxel: [usize; 3],
    /// Its HU value.
    pub hu: i16,
    /// Its centre, patient LPS mm.
    pub lps_mm: [f64; 3],
}

/// What is drawn over the grey values.
#[derive(Clone, Copy)]
pub enum Overlay<'a> {
    /// Voxels within an HU window and outside the scissors' cuts (the live preview of the segmentation).
    Window {
        min_hu: i16,
        max_hu: i16,
        cut_planes: &'a [PlaneMm],
        cut_boxes: &'a [BoxMm],
    },
    /// A segmentation mask.
    Mask(&'a Mask),
}

/// What a view draws over the grey values.
pub struct Layers<'a> {
    pub overlay: Overlay<'a>,
    /// Must change whenever the overlay's content does (the slice image is cached on it).
    pub overlay_version: u64,
    /// Places to mark (a finding's place), patient LPS mm.
    pub marks_mm: &'a [[f64; 3]],
    /// Cutting planes (point, normal; LPS) drawn where they cross the slice.
    pub planes: &'a [([f64; 3], [f64; 3])],
    /// Drill axes (entry, tip; LPS) marked where they cross the slice.
    pub drills: &'a [([f64; 3], [f64; 3])],
}

/// State of the three views.
pub struct SliceViews {
    /// Crosshair voxel `(i, j, k)`, shared by the views.
    pub cursor: [usize; 3],
    /// Window width, HU.
    pub window_hu: f32,
    /// Window centre, HU.
    pub level_hu: f32,
    zoom: [f32; 3],
    pan: [Vec2; 3],
    textures: [Option<(TextureKey, TextureHandle)>; 3],
    /// What the cursor is over, if a view is hovered.
    pub hover: Option<Hover>,
}

#[derive(Clone, Copy, PartialEq)]
struct TextureKey {
    slice: usize,
    window_hu: f32,
    level_hu: f32,
    overlay: u64,
}

impl SliceViews {
    /// Views centred on `volume`, bone window.
    pub fn new(volume: &Volume) -> SliceViews {
        let d = volume.geometry.dims;
        SliceViews {
            cursor: [d[0] / 2, d[1] / 2, d[2] / 2],
            window_hu: WINDOW_PRESETS[0].1,
            level_hu: WINDOW_PRESETS[0].2,
            zoom: [1.0; 3],
            pan: [Vec2::ZERO; 3],
            textures: [None, None, None],
            hover: None,
        }
    }

    /// Moves the crosshair to the voxel nearest `lps_mm` (clamped to the grid).
    pub fn center_on(&mut self, volume: &Volume, lps_mm: [f64; 3]) {
        let v = volume.geometry.to_voxel(Point3::from(lps_mm));
        self.cursor = [0, 1, 2].map(|a| (v[a].round().max(0.0) as usize).min(volume.geometry.dims[a] - 1));
    }

    /// Shows one view in `rect`.
    pub fn show(
        &mut self,
        ui: &mut egui::Ui,
        rect: Rect,
        axis: Axis,
        volume: &Volume,
        layers: &Layers<'_>,
    ) -> egui::Response {
        let (overlay, overlay_version, marks_mm) = (layers.overlay, layers.overlay_version, layers.marks_mm);
        let id = ui.scope_id().with(("slice-view", axis.name()));
        let response = ui.interact(rect, id, Sense::click_and_drag());
        let (ua, va, sa) = axis.grid_axes();
        let g = &volume.geometry;
        let (w, h) = (g.dims[ua], g.dims[va]);
        let flip_v = self.flip_vertical(volume, axis);
        let a = axis.index();

        // Input first, so this frame draws the result.
        if response.hovered() {
            let (scroll, zoom) = (wheel_steps(ui), ui.input(|i| i.zoom_delta()));
            if zoom != 1.0 {
                if let Some(p) = response.hover_pos() {
                    let before = self.image_rect(rect, axis, volume);
                    self.zoom[a] = (self.zoom[a] * zoom).clamp(0.25, 16.0);
                    let after = self.image_rect(rect, axis, volume);
                    // Keep the point under the cursor where it was.
                    let rel = (p - before.min) / before.size();
                    self.pan[a] += p - (after.min + rel * after.size());
                }
            } else if scroll != 0.0 {
                let step = if scroll > 0.0 { 1 } else { -1 };
                let s = self.cursor[sa] as i64 + step;
                self.cursor[sa] = s.clamp(0, g.dims[sa] as i64 - 1) as usize;
            }
        }
        if response.dragged_by(egui::PointerButton::Middle) {
            self.pan[a] += response.drag_delta();
        }
        if response.dragged_by(egui::PointerButton::Secondary) {
            let d = response.drag_delta();
            self.window_hu = (self.window_hu + d.x * 4.0).clamp(1.0, 8000.0);
            self.level_hu = (self.level_hu - d.y * 2.0).clamp(-1024.0, 4000.0);
        }
        let image_rect = self.image_rect(rect, axis, volume);
        let cursor = self.cursor;
        let voxel_at = |p: Pos2| -> Option<[usize; 3]> {
            let rel = (p - image_rect.min) / image_rect.size();
            if !(0.0..1.0).contains(&rel.x) || !(0.0..1.0).contains(&rel.y) {
                return None;
            }
            let u = (rel.x * w as f32) as usize;
            let mut v = (rel.y * h as f32) as usize;
            if flip_v {
                v = h - 1 - v;
            }
            let mut voxel = cursor;
            voxel[ua] = u.min(w - 1);
            voxel[va] = v.min(h - 1);
            Some(voxel)
        };
        if response.clicked_by(egui::PointerButton::Primary) || response.dragged_by(egui::PointerButton::Primary) {
            if let Some(voxel) = response.interact_pointer_pos().and_then(voxel_at) {
                self.cursor = voxel;
            }
        }
        if let Some(voxel) = response.hover_pos().and_then(voxel_at) {
            let p = g.to_patient([voxel[0] as f64, voxel[1] as f64, voxel[2] as f64]);
            self.hover = Some(Hover {
                voxel,
                hu: volume.at(voxel[0], voxel[1], voxel[2]),
                lps_mm: [p.x, p.y, p.z],
            });
        }

        let key = TextureKey {
            slice: self.cursor[sa],
            window_hu: self.window_hu,
            level_hu: self.level_hu,
            overlay: overlay_version,
        };
        if self.textures[a].as_ref().is_none_or(|(k, _)| *k != key) {
            let image = self.slice_image(volume, axis, overlay);
            let name = format!("slice-{}", axis.name());
            match &mut self.textures[a] {
                Some((k, tex)) => {
                    tex.set(image, TextureOptions::NEAREST);
                    *k = key;
                }
                None => self.textures[a] = Some((key, ui.ctx().load_texture(name, image, TextureOptions::NEAREST))),
            }
        }
        let painter = ui.painter_at(rect);
        painter.rect_filled(rect, 0.0, Color32::BLACK);
        if let Some((_, tex)) = &self.textures[a] {
            painter.image(
                tex.id(),
                image_rect,
                Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0)),
                Color32::WHITE,
            );
        }
        // Crosshair through the cursor voxel's centre.
        let cu = (self.cursor[ua] as f32 + 0.5) / w as f32;
        let mut cv = (self.cursor[va] as f32 + 0.5) / h as f32;
        if flip_v {
            cv = 1.0 - cv;
        }
        let c = image_rect.min + Vec2::new(cu, cv) * image_rect.size();
        let stroke = egui::Stroke::new(1.0, Color32::from_rgba_unmultiplied(255, 220, 0, 160));
        painter.line_segment([Pos2::new(rect.left(), c.y), Pos2::new(rect.right(), c.y)], stroke);
        painter.line_segment([Pos2::new(c.x, rect.top()), Pos2::new(c.x, rect.bottom())], stroke);
        // Where the plan's planes cross this slice: the line n . (x - p) = 0 within the slice, in voxel units.
        let c = self.cursor[sa] as f64;
        let to_screen = |u: f64, v: f64| {
            let mut y = ((v + 0.5) / h as f64) as f32;
            if flip_v {
                y = 1.0 - y;
            }
            image_rect.min + Vec2::new(((u + 0.5) / w as f64) as f32, y) * image_rect.size()
        };
        for (point, normal) in layers.planes {
            let pv = g.to_voxel(Point3::from(*point));
            // The normal in voxel units: d/dvoxel_k of n . x = (axis_k . n) * spacing_k.
            let nv: [f64; 3] =
                [0, 1, 2].map(|k| (0..3).map(|m| g.axes[k][m] * normal[m]).sum::<f64>() * g.spacing_mm[k]);
            let (nu, nvv, ns) = (nv[ua], nv[va], nv[sa]);
            let rest = ns * (c - pv[sa]) - nu * pv[ua] - nvv * pv[va];
            let ends = if nvv.abs() > nu.abs() {
                let v_at = |u: f64| -(rest + nu * u) / nvv;
                [(-0.5, v_at(-0.5)), (w as f64 - 0.5, v_at(w as f64 - 0.5))]
            } else if nu.abs() > 1e-12 {
                let u_at = |v: f64| -(rest + nvv * v) / nu;
                [(u_at(-0.5), -0.5), (u_at(h as f64 - 0.5), h as f64 - 0.5)]
            } else {
                continue;
            };
            painter.line_segment(
                [to_screen(ends[0].0, ends[0].1), to_screen(ends[1].0, ends[1].1)],
                egui::Stroke::new(1.5, Color32::from_rgb(90, 160, 255)),
            );
        }
        for (entry, tip) in layers.drills {
            let (a, b) = (g.to_voxel(Point3::from(*entry)), g.to_voxel(Point3::from(*tip)));
            let (lo, hi) = (a[sa].min(b[sa]), a[sa].max(b[sa]));
            if c < lo - 0.5 || c > hi + 0.5 || (b[sa] - a[sa]).abs() < 1e-9 && (c - a[sa]).abs() > 0.5 {
                continue;
            }
            let t = if (b[sa] - a[sa]).abs() < 1e-9 {
                0.0
            } else {
                ((c - a[sa]) / (b[sa] - a[sa])).clamp(0.0, 1.0)
            };
            let at = to_screen(a[ua] + (b[ua] - a[ua]) * t, a[va] + (b[va] - a[va]) * t);
            painter.circle_stroke(at, 5.0, egui::Stroke::new(2.0, Color32::from_rgb(120, 230, 120)));
        }
        // Marked places (a finding's place) within a slice of this one.
        for m in marks_mm {
            let v = g.to_voxel(Point3::from(*m));
            if (v[sa] - self.cursor[sa] as f64).abs() <= 1.0 {
                let mut mv = ((v[va] + 0.5) / h as f64) as f32;
                if flip_v {
                    mv = 1.0 - mv;
                }
                let at = image_rect.min + Vec2::new(((v[ua] + 0.5) / w as f64) as f32, mv) * image_rect.size();
                painter.circle_stroke(at, 8.0, egui::Stroke::new(2.0, Color32::from_rgb(255, 60, 160)));
            }
        }
        // Orientation letters: the patient direction of +u at the right edge, of +v (as drawn) at the bottom.
        let right = letter(g.axes[ua]);
        let mut down = letter(g.axes[va]);
        if flip_v {
            down = opposite(down);
        }
        let font = egui::FontId::proportional(15.0);
        let colour = Color32::from_rgb(255, 200, 80);
        let m = 4.0;
        painter.text(
            Pos2::new(rect.right() - m, rect.center().y),
            egui::Align2::RIGHT_CENTER,
            right,
            font.clone(),
            colour,
        );
        painter.text(
            Pos2::new(rect.left() + m, rect.center().y),
            egui::Align2::LEFT_CENTER,
            opposite(right),
            font.clone(),
            colour,
        );
        painter.text(
            Pos2::new(rect.center().x, rect.bottom() - m),
            egui::Align2::CENTER_BOTTOM,
            down,
            font.clone(),
            colour,
        );
        painter.text(
            Pos2::new(rect.center().x, rect.top() + m),
            egui::Align2::CENTER_TOP,
            opposite(down),
            font,
            colour,
        );
        painter.text(
            rect.left_top() + Vec2::new(m, m),
            egui::Align2::LEFT_TOP,
            format!("{} {}/{}", axis.name(), self.cursor[sa] + 1, g.dims[sa]),
            egui::FontId::proportional(13.0),
            Color32::LIGHT_GRAY,
        );
        response
    }

    /// Where the slice image goes in `rect`: fitted with its true aspect (mm), then zoomed and panned.
    fn image_rect(&self, rect: Rect, axis: Axis, volume: &Volume) -> Rect {
        let (ua, va, _) = axis.grid_axes();
        let g = &volume.geometry;
        let size_mm = Vec2::new(
            (g.dims[ua] as f64 * g.spacing_mm[ua]) as f32,
            (g.dims[va] as f64 * g.spacing_mm[va]) as f32,
        );
        let a = axis.index();
        let scale = (rect.width() / size_mm.x).min(rect.height() / size_mm.y) * self.zoom[a];
        Rect::from_center_size(rect.center() + self.pan[a], size_mm * scale)
    }

    /// Whether the image's rows run against `v` so that superior is up (coronal and sagittal views).
    fn flip_vertical(&self, volume: &Volume, axis: Axis) -> bool {
        let (_, va, _) = axis.grid_axes();
        // Screen down should point inferior (or, in the axial view, keep the stored row order).
        axis != Axis::Axial && volume.geometry.axes[va][2] > 0.0
    }

    fn slice_image(&self, volume: &Volume, axis: Axis, overlay: Overlay<'_>) -> ColorImage {
        let (ua, va, sa) = axis.grid_axes();
        let g = &volume.geometry;
        let (w, h) = (g.dims[ua], g.dims[va]);
        let flip_v = self.flip_vertical(volume, axis);
        let low = self.level_hu - self.window_hu / 2.0;
        let scale = 255.0 / self.window_hu;
        let mut pixels = Vec::with_capacity(w * h);
        for row in 0..h {
            let v = if flip_v { h - 1 - row } else { row };
            for u in 0..w {
                let mut ijk = [0usize; 3];
                ijk[ua] = u;
                ijk[va] = v;
                ijk[sa] = self.cursor[sa];
                let hu = volume.at(ijk[0], ijk[1], ijk[2]);
                let grey = ((hu as f32 - low) * scale).clamp(0.0, 255.0) as u8;
                let marked = match overlay {
                    Overlay::Window {
                        min_hu,
                        max_hu,
                        cut_planes,
                        cut_boxes,
                    } => {
                        (min_hu..=max_hu).contains(&hu)
                            && (cut_planes.is_empty() && cut_boxes.is_empty() || {
                                let p = g.to_patient([ijk[0] as f64, ijk[1] as f64, ijk[2] as f64]);
                                let p = [p.x, p.y, p.z];
                                !cut_planes
                                    .iter()
                                    .any(|c| (0..3).map(|k| (p[k] - c.point_mm[k]) * c.normal[k]).sum::<f64>() > 0.0)
                                    && !cut_boxes
                                        .iter()
                                        .any(|b| (0..3).all(|k| (b.min_mm[k]..=b.max_mm[k]).contains(&p[k])))
                            })
                    }
                    Overlay::Mask(mask) => mask.get(ijk[0], ijk[1], ijk[2]),
                };
                pixels.push(if marked {
                    // 45 % of the bone colour over the grey value.
                    let mix = |c: u8| ((grey as u16 * 55 + c as u16 * 45) / 100) as u8;
                    Color32::from_rgb(mix(240), mix(90), mix(60))
                } else {
                    Color32::from_gray(grey)
                });
            }
        }
        ColorImage::new([w, h], pixels)
    }
}

/// The patient direction a unit vector points to most: L, R, P, A, S or I (LPS: +x left, +y posterior, +z superior).
pub fn letter(direction: [f64; 3]) -> &'static str {
    let a = (0..3)
        .max_by(|&x, &y| direction[x].abs().total_cmp(&direction[y].abs()))
        .unwrap_or(0);
    match (a, direction[a] >= 0.0) {
        (0, true) => "L",
        (0, false) => "R",
        (1, true) => "P",
        (1, false) => "A",
        (_, true) => "S",
        (_, false) => "I",
    }
}

fn opposite(letter: &str) -> &'static str {
    match letter {
        "L" => "R",
        "R" => "L",
        "P" => "A",
        "A" => "P",
        "S" => "I",
        _ => "S",
    }
}

/// Wheel notches this frame (positive: away from the user), whatever unit the platform reports.
pub fn wheel_steps(ui: &egui::Ui) -> f32 {
    ui.input(|i| {
        i.raw
            .events
            .iter()
            .map(|e| match e {
                egui::Event::MouseWheel {
                    unit, delta, modifiers, ..
                } if !modifiers.command => match unit {
                    egui::MouseWheelUnit::Line => delta.y,
                    egui::MouseWheelUnit::Point => delta.y / 40.0,
                    egui::MouseWheelUnit::Page => delta.y * 10.0,
                },
                _ => 0.0,
            })
            .sum()
    })
}
