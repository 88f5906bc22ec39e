//! PNG renders of guides seated on the bone, so a person can look at what will be printed.
//!
//! Why a software rasteriser: CI has no GPU and the renders must be byte-identical run to run; an orthographic
//! z-buffer with two directional lights is a few hundred lines, deterministic (each pixel's value depends only on
//! the triangles, which are drawn in order), and fast enough for a few views of a 100k-triangle bone.

use std::path::Path;

use nalgebra::{Matrix3, Vector3};

use crate::atomic::write_atomic;
use crate::mesh::{BoundingBox, Mesh};

/// Bone colour (ivory).
pub const BONE_RGB: [u8; 3] = [226, 216, 196];
/// Guide colour (medical teal-blue).
pub const GUIDE_RGB: [u8; 3] = [46, 134, 193];

/// A standard view, named as radiology names the direction the viewer looks from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum View {
    /// From the front (viewer at -y, looking +y); superior up; the patient's right on the image's left.
    Anterior,
    /// From the patient's left (viewer at +x).
    Left,
    /// From the patient's right (viewer at -x).
    Right,
    /// From above (viewer at +z), anterior down.
    Superior,
    /// From below (viewer at -z).
    Inferior,
    /// Looking along `dir` (from the viewer into the scene) with `up` up.
    Along {
        /// Viewing direction.
        dir: [f64; 3],
        /// Up direction.
        up: [f64; 3],
    },
}

impl View {
    /// `(dir, up)` in patient LPS.
    fn basis(self) -> (Vector3<f64>, Vector3<f64>) {
        match self {
            View::Anterior => (Vector3::new(0.0, 1.0, 0.0), Vector3::z()),
            View::Left => (Vector3::new(-1.0, 0.0, 0.0), Vector3::z()),
            View::Right => (Vector3::new(1.0, 0.0, 0.0), Vector3::z()),
            View::Superior => (Vector3::new(0.0, 0.0, -1.0), Vector3::new(0.0, -1.0, 0.0)),
            View::Inferior => (Vector3::new(0.0, 0.0, 1.0), Vector3::new(0.0, -1.0, 0.0)),
            View::Along { dir, up } => (Vector3::from(dir), Vector3::from(up)),
        }
    }
}

/// An RGB image, row-major from the top.
#[derive(Clone, Debug, PartialEq)]
pub struct Image {
    /// Width, pixels.
    pub width: u32,
    /// Height, pixels.
    pub height: u32,
    /// RGB bytes.
    pub rgb: Vec<u8>,
}

/// Renders `items` (mesh, colour) seen from `view`, fitted to `focus` grown by 15 %.
pub fn render(items: &[(&Mesh, [u8; 3])], view: View, width: u32, height: u32, focus: &BoundingBox) -> Image {
    let (dir, up) = view.basis();
    let forward = dir.try_normalize(1e-12).unwrap_or_else(Vector3::y);
    let right = forward.cross(&up).try_normalize(1e-12).unwrap_or_else(Vector3::x);
    let up = right.cross(&forward);
    // Camera rows: right, up, forward (depth grows away from the viewer).
    let cam = Matrix3::from_rows(&[right.transpose(), up.transpose(), forward.transpose()]);
    let centre = Vector3::from(focus.center_mm());
    let size = focus.size_mm();
    let extent = 0.5 * 1.15 * Vector3::from(size).norm().max(1.0);
    let scale = f64::from(width.min(height)) / (2.0 * extent);
    let (w, h) = (width as usize, height as usize);
    let mut depth = vec![f64::INFINITY; w * h];
    let mut rgb = vec![0u8; w * h * 3];
    // Background: a soft vertical gradient.
    for y in 0..h {
        let t = y as f64 / h.max(1) as f64;
        let c = [
            (248.0 - 40.0 * t) as u8,
            (250.0 - 36.0 * t) as u8,
            (252.0 - 28.0 * t) as u8,
        ];
        for x in 0..w {
            rgb[(y * w + x) * 3..(y * w + x) * 3 + 3].copy_from_slice(&c);
        }
    }
    let key = cam * Vector3::new(-0.4, -0.8, 0.6).normalize();
    let key = Vector3::new(key.x, key.y, key.z);
    for (mesh, colour) in items {
        let screen: Vec<Vector3<f64>> = mesh
            .positions
            .iter()
            .map(|p| {
                let q = cam * (Vector3::from(*p) - centre);
                Vector3::new(0.5 * w as f64 + q.x * scale, 0.5 * h as f64 - q.y * scale, q.z)
            })
            .collect();
        for t in &mesh.triangles {
            let (a, b, c) = (screen[t[0] as usize], screen[t[1] as usize], screen[t[2] as usize]);
            // Normal in camera space (y flipped on screen): from the patient-space triangle.
            let pa = Vector3::from(mesh.positions[t[0] as usize]);
            let n = (Vector3::from(mesh.positions[t[1] as usize]) - pa)
                .cross(&(Vector3::from(mesh.positions[t[2] as usize]) - pa));
            let Some(n) = n.try_normalize(1e-300) else { continue };
            let n_cam = cam * n;
            // Two-sided: faces seen from behind are shaded by their reversed normal.
            let facing = if n_cam.z > 0.0 { -n_cam } else { n_cam };
            let head = (-facing.z).clamp(0.0, 1.0);
            let diffuse = 0.25 + 0.5 * head + 0.35 * (-facing.dot(&key)).max(0.0);
            let shade = |k: usize| (f64::from(colour[k]) * diffuse).clamp(0.0, 255.0) as u8;
            let colour_px = [shade(0), shade(1), shade(2)];
            let min_x = a.x.min(b.x).min(c.x).floor().max(0.0) as usize;
            let max_x = (a.x.max(b.x).max(c.x).ceil() as usize).min(w.saturating_sub(1));
            let min_y = a.y.min(b.y).min(c.y).floor().max(0.0) as usize;
            let max_y = (a.y.max(b.y).max(c.y).ceil() as usize).min(h.saturating_sub(1));
            let area = (b.x - a.x) * (c.y - a.y) - (b.y - a.y) * (c.x - a.x);
            if area.abs() < 1e-12 || min_x > max_x || min_y > max_y {
                continue;
            }
            for y in min_y..=max_y {
                for x in min_x..=max_x {
                    let (px, py) = (x as f64 + 0.5, y as f64 + 0.5);
                    let w0 = ((b.x - px) * (c.y - py) - (b.y - py) * (c.x - px)) / area;
                    let w1 = ((c.x - px) * (a.y - py) - (c.y - py) * (a.x - px)) / area;
                    let w2 = 1.0 - w0 - w1;
                    if w0 < 0.0 || w1 < 0.0 || w2 < 0.0 {
                        continue;
                    }
                    let z = w0 * a.z + w1 * b.z + w2 * c.z;
                    let k = y * w + x;
                    if z < depth[k] {
                        depth[k] = z;
                        rgb[k * 3..k * 3 + 3].copy_from_slice(&colour_px);
                    }
                }
            }
        }
    }
    // Silhouettes: darken pixels where depth jumps (outline between objects and against the background).
    let mut out = rgb.clone();
    let jump = 1.5;
    for y in 1..h.saturating_sub(1) {
        for x in 1..w.saturating_sub(1) {
            let k = y * w + x;
            let d = depth[k];
            let neighbours = [depth[k - 1], depth[k + 1], depth[k - w], depth[k + w]];
            let edge = neighbours
                .iter()
                .any(|&e| (d.is_finite() != e.is_finite()) || (d.is_finite() && (e - d).abs() > jump));
            if edge && d.is_finite() {
                for c in 0..3 {
                    out[k * 3 + c] = (f64::from(out[k * 3 + c]) * 0.45) as u8;
                }
            }
        }
    }
    Image {
        width,
        height,
        rgb: out,
    }
}

/// Writes an image as PNG, atomically.
pub fn write_png(image: &Image, path: &Path) -> std::io::Result<()> {
    write_atomic(path, |w| {
        let mut encoder = png::Encoder::new(w, image.width, image.height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(std::io::Error::other)?;
        writer.write_image_data(&image.rgb).map_err(std::io::Error::other)?;
        writer.finish().map_err(std::io::Error::other)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cube(c: [f64; 3], h: f64) -> Mesh {
        let p = |i: usize| {
            [
                c[0] + if i & 1 == 1 { h } else { -h },
                c[1] + if i & 2 == 2 { h } else { -h },
                c[2] + if i & 4 == 4 { h } else { -h },
            ]
        };
        Mesh {
            positions: (0..8).map(p).collect(),
            triangles: vec![
                [0, 2, 1],
                [1, 2, 3],
                [4, 5, 6],
                [5, 7, 6],
                [0, 1, 4],
                [1, 5, 4],
                [2, 6, 3],
                [3, 6, 7],
                [0, 4, 2],
                [2, 4, 6],
                [1, 3, 5],
                [3, 7, 5],
            ],
        }
    }

    #[test]
    fn the_anterior_view_puts_the_patients_right_on_the_left_and_occludes_by_depth() {
        // Patient right is -x.
        let right = cube([-20.0, 0.0, 0.0], 5.0);
        let left = cube([20.0, 0.0, 0.0], 5.0);
        let focus = BoundingBox {
            min_mm: [-25.0, -5.0, -5.0],
            max_mm: [25.0, 5.0, 5.0],
        };
        let img = render(
            &[(&right, [255, 0, 0]), (&left, [0, 0, 255])],
            View::Anterior,
            200,
            100,
            &focus,
        );
        let px = |x: u32, y: u32| {
            let k = ((y * img.width + x) * 3) as usize;
            [img.rgb[k], img.rgb[k + 1], img.rgb[k + 2]]
        };
        let l = px(60, 50);
        let r = px(140, 50);
        assert!(l[0] > 0 && l[2] == 0, "{l:?}");
        assert!(r[2] > 0 && r[0] == 0, "{r:?}");
        assert!(px(2, 2)[0] > 200, "background");
        // A cube in front hides one behind.
        let front = cube([0.0, -10.0, 0.0], 3.0);
        let back = cube([0.0, 10.0, 0.0], 3.0);
        let focus = BoundingBox {
            min_mm: [-5.0, -15.0, -5.0],
            max_mm: [5.0, 15.0, 5.0],
        };
        let img2 = render(
            &[(&back, [0, 255, 0]), (&front, [255, 0, 0])],
            View::Anterior,
            100,
            100,
            &focus,
        );
        let k = ((50 * 100 + 50) * 3) as usize;
        assert!(img2.rgb[k] > 0 && img2.rgb[k + 1] == 0);
        assert_eq!(
            img,
            render(
                &[(&right, [255, 0, 0]), (&left, [0, 0, 255])],
                View::Anterior,
                200,
                100,
                &focus_of(&img)
            )
        );
    }

    fn focus_of(_: &Image) -> BoundingBox {
        BoundingBox {
            min_mm: [-25.0, -5.0, -5.0],
            max_mm: [25.0, 5.0, 5.0],
        }
    }
}
