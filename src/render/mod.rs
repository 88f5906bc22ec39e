//! PNG renders of guides seated on the bone, drawn by a small software rasteriser.
//!
//! Why a rasteriser of our own: renders are made on CI and on planning laptops without a GPU, they go into review
//! documents where the same scene must give the same bytes, and the meshes are plain triangle lists already in
//! memory. A z-buffer rasteriser over image bands (rayon) does 100k+ triangles in a few tens of milliseconds, needs no
//! graphics stack and is deterministic: each band owns its rows and draws its triangles in a fixed order, so no pixel
//! depends on thread scheduling.
//!
//! Conventions:
//! - Orthographic projection; the camera is fitted to a focus box (by default the whole scene) with a small frame.
//! - Views follow the **anatomical** ("facing the patient") convention, not the radiological one for the frontal
//!   views: in the [`View::Anterior`] view the viewer stands in front of the patient, so the patient's right (-x in
//!   LPS) appears on the image's left and superior (+z) is up. [`View::Posterior`] puts the patient's right on the
//!   image's right. [`View::Left`] and [`View::Right`] look at that side of the patient, superior up, so the face is
//!   on the image's left in a left view. [`View::Superior`] looks down from above with anterior up (patient's right
//!   on the image's right); [`View::Inferior`] looks up from the feet with anterior up, which is the radiological
//!   axial convention (patient's right on the image's left).
//! - Shading: interpolated vertex normals (Phong-style, per pixel) with a crease rule so sharp guide edges stay
//!   sharp; a hemisphere ambient, a key light from the upper left, a headlight and a soft specular; far parts are
//!   slightly darkened (depth cue) and silhouettes and creases drawn darker. Rendering is 2x2 supersampled and
//!   averaged in linear light before sRGB encoding.
//! - Semi-transparent items (opacity below 1) are drawn as one layer: the front-most transparent surface is blended
//!   over the opaque scene, so a guide behind a semi-transparent bone stays visible.

mod font;
mod raster;

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::atomic::write_atomic;
use crate::mesh::{BoundingBox, Mesh};

pub use font::{draw_text, text_width};

/// Colour of bone in renders (ivory).
pub const BONE_COLOUR: [u8; 3] = [230, 220, 200];
/// Colour of a guide in renders (teal).
pub const GUIDE_COLOUR: [u8; 3] = [0, 140, 160];

/// Errors of the render module.
#[derive(Debug, Error)]
pub enum RenderError {
    /// The image cannot be written as PNG.
    #[error("cannot write {path}: {detail}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What failed.
        detail: String,
    },
    /// An image with no pixels cannot be written as PNG.
    #[error("cannot write {path}: the image is {width} x {height} pixels")]
    EmptyImage {
        /// The file.
        path: PathBuf,
        /// Image width.
        width: u32,
        /// Image height.
        height: u32,
    },
}

/// An 8-bit RGB image, rows top to bottom, pixels left to right.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RgbImage {
    width: u32,
    height: u32,
    data: Vec<u8>,
}

impl RgbImage {
    /// An image filled with `colour`.
    pub fn new(width: u32, height: u32, colour: [u8; 3]) -> Self {
        let n = width as usize * height as usize;
        let mut data = Vec::with_capacity(n * 3);
        for _ in 0..n {
            data.extend_from_slice(&colour);
        }
        RgbImage { width, height, data }
    }

    /// An image from raw RGB bytes; `None` when the length does not match.
    pub fn from_raw(width: u32, height: u32, data: Vec<u8>) -> Option<Self> {
        (data.len() == width as usize * height as usize * 3).then_some(RgbImage { width, height, data })
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The RGB bytes, row by row.
    pub fn as_raw(&self) -> &[u8] {
        &self.data
    }

    /// The pixel at (`x`, `y`); black outside the image.
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        if x >= self.width || y >= self.height {
            return [0; 3];
        }
        let i = (y as usize * self.width as usize + x as usize) * 3;
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }

    /// Sets the pixel at (`x`, `y`); ignored outside the image.
    pub fn set_pixel(&mut self, x: u32, y: u32, colour: [u8; 3]) {
        if x < self.width && y < self.height {
            let i = (y as usize * self.width as usize + x as usize) * 3;
            self.data[i..i + 3].copy_from_slice(&colour);
        }
    }

    /// Fills a rectangle, clipped to the image.
    pub fn fill_rect(&mut self, x: u32, y: u32, w: u32, h: u32, colour: [u8; 3]) {
        self.blend_rect(x, y, w, h, colour, 1.0);
    }

    /// Blends `colour` with weight `alpha` (0..1) over a rectangle, clipped to the image.
    pub fn blend_rect(&mut self, x: u32, y: u32, w: u32, h: u32, colour: [u8; 3], alpha: f32) {
        let a = alpha.clamp(0.0, 1.0);
        for py in y..y.saturating_add(h).min(self.height) {
            for px in x..x.saturating_add(w).min(self.width) {
                let old = self.pixel(px, py);
                let mixed = [0, 1, 2].map(|c| (f32::from(old[c]) * (1.0 - a) + f32::from(colour[c]) * a).round() as u8);
                self.set_pixel(px, py, mixed);
            }
        }
    }

    /// Copies `other` into this image with its top-left corner at (`x`, `y`), clipped.
    pub fn paste(&mut self, other: &RgbImage, x: u32, y: u32) {
        for oy in 0..other.height {
            for ox in 0..other.width {
                self.set_pixel(x.saturating_add(ox), y.saturating_add(oy), other.pixel(ox, oy));
            }
        }
    }
}

/// One mesh of a scene with its colour and opacity.
#[derive(Clone, Debug)]
pub struct SceneItem<'a> {
    /// The mesh, patient LPS mm; borrowed or owned.
    pub mesh: Cow<'a, Mesh>,
    /// Its colour (sRGB).
    pub colour: [u8; 3],
    /// 1 is opaque; below 1 the item is drawn semi-transparent (front surface only); 0 or less hides it.
    pub opacity: f32,
}

impl<'a> From<&'a Mesh> for Cow<'a, Mesh> {
    fn from(mesh: &'a Mesh) -> Self {
        Cow::Borrowed(mesh)
    }
}

impl From<Mesh> for Cow<'_, Mesh> {
    fn from(mesh: Mesh) -> Self {
        Cow::Owned(mesh)
    }
}

/// What to draw: meshes with colours and opacities, drawn in this order (ties in depth go to the earlier item).
#[derive(Clone, Debug, Default)]
pub struct Scene<'a> {
    /// The items.
    pub items: Vec<SceneItem<'a>>,
}

impl<'a> Scene<'a> {
    /// An empty scene.
    pub fn new() -> Self {
        Scene { items: Vec::new() }
    }

    /// Adds a mesh (borrowed `&Mesh` or owned `Mesh`) with its colour and opacity.
    pub fn add(&mut self, mesh: impl Into<Cow<'a, Mesh>>, colour: [u8; 3], opacity: f32) -> &mut Self {
        self.items.push(SceneItem {
            mesh: mesh.into(),
            colour,
            opacity,
        });
        self
    }

    /// The box around every visible item's finite vertices; `None` for an empty scene.
    pub fn bounding_box(&self) -> Option<BoundingBox> {
        let mut out: Option<BoundingBox> = None;
        for item in self.items.iter().filter(|i| i.opacity > 0.0) {
            for p in item.mesh.positions.iter().filter(|p| p.iter().all(|c| c.is_finite())) {
                let b = out.get_or_insert(BoundingBox { min_mm: *p, max_mm: *p });
                for (a, &c) in p.iter().enumerate() {
                    b.min_mm[a] = b.min_mm[a].min(c);
                    b.max_mm[a] = b.max_mm[a].max(c);
                }
            }
        }
        out
    }
}

pub use crate::mesh::grown;

/// A viewing direction. See the module documentation for the conventions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum View {
    /// From the front of the patient (looking along +y), superior up, patient's right on the image's left.
    Anterior,
    /// From behind (looking along -y), superior up, patient's right on the image's right.
    Posterior,
    /// From the patient's left side (looking along -x), superior up, anterior on the image's left.
    Left,
    /// From the patient's right side (looking along +x), superior up, anterior on the image's right.
    Right,
    /// From above (looking along -z), anterior up.
    Superior,
    /// From below (looking along +z), anterior up.
    Inferior,
    /// From the front turned by an azimuth (degrees, positive toward the patient's left) about the superior axis,
    /// then raised by an elevation (degrees, positive from above); superior stays up.
    Iso(f64, f64),
    /// Looking along `dir` (patient LPS) with `up` (made perpendicular to `dir`) toward the image top.
    Along {
        /// Viewing direction, from the camera into the scene.
        dir: [f64; 3],
        /// Image-up direction.
        up: [f64; 3],
    },
}

/// The camera's orthonormal axes in patient LPS: `right = forward x up`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CameraAxes {
    /// Viewing direction, from the camera into the scene.
    pub forward: [f64; 3],
    /// Image-up direction.
    pub up: [f64; 3],
    /// Image-right direction.
    pub right: [f64; 3],
}

/// Below this length (unitless, of a direction vector) a view's `dir` or `up` counts as zero or parallel, and a
/// fallback is used; far above rounding, far below any intended direction.
const DEGENERATE_DIRECTION: f64 = 1e-9;

impl View {
    /// The camera axes of this view. Degenerate `Along` input (zero or non-finite `dir`) falls back to the anterior
    /// view; an `up` parallel to `dir` is replaced by the world axis least aligned with `dir`.
    pub fn axes(&self) -> CameraAxes {
        let (forward, up) = match *self {
            View::Anterior => ([0.0, 1.0, 0.0], [0.0, 0.0, 1.0]),
            View::Posterior => ([0.0, -1.0, 0.0], [0.0, 0.0, 1.0]),
            View::Left => ([-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]),
            View::Right => ([1.0, 0.0, 0.0], [0.0, 0.0, 1.0]),
            View::Superior => ([0.0, 0.0, -1.0], [0.0, -1.0, 0.0]),
            View::Inferior => ([0.0, 0.0, 1.0], [0.0, -1.0, 0.0]),
            View::Iso(azimuth_deg, elevation_deg) => {
                let (az, el) = (azimuth_deg.to_radians(), elevation_deg.to_radians());
                // Direction from the scene to the camera.
                let eye = [az.sin() * el.cos(), -az.cos() * el.cos(), el.sin()];
                ([-eye[0], -eye[1], -eye[2]], [0.0, 0.0, 1.0])
            }
            View::Along { dir, up } => (dir, up),
        };
        let forward = normalised(forward).unwrap_or([0.0, 1.0, 0.0]);
        let up = perpendicular_part(up, forward)
            .or_else(|| {
                // The world axis least aligned with forward always has a usable perpendicular part.
                let least = (0..3)
                    .min_by(|&a, &b| forward[a].abs().total_cmp(&forward[b].abs()))
                    .unwrap_or(2);
                let mut axis = [0.0; 3];
                axis[least] = 1.0;
                perpendicular_part(axis, forward)
            })
            .unwrap_or([0.0, 0.0, 1.0]);
        CameraAxes {
            forward,
            up,
            right: crate::mesh::cross(forward, up),
        }
    }
}

fn normalised(v: [f64; 3]) -> Option<[f64; 3]> {
    let n = crate::mesh::norm(v);
    (n.is_finite() && n > DEGENERATE_DIRECTION).then(|| v.map(|c| c / n))
}

/// `v` without its component along the unit vector `axis`, normalised.
fn perpendicular_part(v: [f64; 3], axis: [f64; 3]) -> Option<[f64; 3]> {
    let d = crate::mesh::dot(v, axis);
    normalised([v[0] - d * axis[0], v[1] - d * axis[1], v[2] - d * axis[2]])
}

/// Renders `scene` seen along `view` into a `width` x `height` image, the camera fitted to `focus` (or to the whole
/// scene) with a small frame. An empty scene gives the background.
pub fn render(scene: &Scene, view: View, width: u32, height: u32, focus: Option<BoundingBox>) -> RgbImage {
    raster::render(scene, view.axes(), width, height, focus)
}

/// Writes `image` as an 8-bit RGB PNG, atomically.
pub fn write_png(image: &RgbImage, path: &Path) -> Result<(), RenderError> {
    let bytes = encode_png(image, path)?;
    write_atomic(path, |w| w.write_all(&bytes)).map_err(|e| RenderError::Write {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })
}

/// `image` as the bytes of an 8-bit RGB PNG; `path` is where it is meant to go (named in errors).
pub fn encode_png(image: &RgbImage, path: &Path) -> Result<Vec<u8>, RenderError> {
    png_bytes(image).map_err(|e| match e {
        PngError::Empty => RenderError::EmptyImage {
            path: path.to_path_buf(),
            width: image.width,
            height: image.height,
        },
        PngError::Encode(detail) => RenderError::Write {
            path: path.to_path_buf(),
            detail,
        },
    })
}

enum PngError {
    Empty,
    Encode(String),
}

fn png_bytes(image: &RgbImage) -> Result<Vec<u8>, PngError> {
    if image.width == 0 || image.height == 0 {
        return Err(PngError::Empty);
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, image.width, image.height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Balanced);
    let mut writer = encoder.write_header().map_err(|e| PngError::Encode(e.to_string()))?;
    writer
        .write_image_data(&image.data)
        .map_err(|e| PngError::Encode(e.to_string()))?;
    writer.finish().map_err(|e| PngError::Encode(e.to_string()))?;
    Ok(out)
}

/// Scale of the label font on contact sheets (image pixels per font pixel).
const LABEL_SCALE: u32 = 2;
/// Padding around a label and from the cell corner, image pixels.
const LABEL_PAD_PX: u32 = 6;
/// Width of the lines between contact-sheet cells, image pixels.
const CELL_GAP_PX: u32 = 2;
/// Colour of the lines between cells and of label text.
const SHEET_LINE_COLOUR: [u8; 3] = [150, 158, 170];
const LABEL_TEXT_COLOUR: [u8; 3] = [40, 46, 56];

/// A contact sheet: each view rendered into a `cell_size` (width, height) cell with its label in the cell's top-left
/// corner, in a grid of `ceil(sqrt(n))` columns, cells separated by thin lines.
pub fn render_views(
    scene: &Scene,
    views: &[(&str, View)],
    cell_size: (u32, u32),
    focus: Option<BoundingBox>,
) -> RgbImage {
    let n = views.len().max(1) as u32;
    let cols = (1..=n).find(|c| c * c >= n).unwrap_or(n);
    let rows = n.div_ceil(cols);
    let (cw, ch) = cell_size;
    let mut sheet = RgbImage::new(
        cols * cw + (cols - 1) * CELL_GAP_PX,
        rows * ch + (rows - 1) * CELL_GAP_PX,
        SHEET_LINE_COLOUR,
    );
    for (i, (label, view)) in views.iter().enumerate() {
        let (col, row) = (i as u32 % cols, i as u32 / cols);
        let mut cell = render(scene, *view, cw, ch, focus);
        let tw = text_width(label, LABEL_SCALE);
        let th = font::GLYPH_HEIGHT * LABEL_SCALE;
        cell.blend_rect(
            LABEL_PAD_PX / 2,
            LABEL_PAD_PX / 2,
            tw + 2 * LABEL_PAD_PX,
            th + 2 * LABEL_PAD_PX,
            [255, 255, 255],
            0.7,
        );
        draw_text(
            &mut cell,
            LABEL_PAD_PX / 2 + LABEL_PAD_PX,
            LABEL_PAD_PX / 2 + LABEL_PAD_PX,
            label,
            LABEL_SCALE,
            LABEL_TEXT_COLOUR,
        );
        sheet.paste(&cell, col * (cw + CELL_GAP_PX), row * (ch + CELL_GAP_PX));
    }
    sheet
}

/// The six standard views and two oblique ones, labelled, for a contact sheet.
pub fn standard_views() -> Vec<(&'static str, View)> {
    vec![
        ("anterior", View::Anterior),
        ("left", View::Left),
        ("right", View::Right),
        ("superior", View::Superior),
        ("inferior", View::Inferior),
        ("posterior", View::Posterior),
        ("iso left 35/25", View::Iso(35.0, 25.0)),
        ("iso right 35/25", View::Iso(-35.0, 25.0)),
        ("iso below 20/-30", View::Iso(20.0, -30.0)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_axes_follow_the_documented_conventions() {
        let a = View::Anterior.axes();
        assert_eq!(a.right, [1.0, 0.0, 0.0], "patient left (+x) on the image right");
        let p = View::Posterior.axes();
        assert_eq!(p.right, [-1.0, 0.0, 0.0]);
        let l = View::Left.axes();
        assert_eq!(
            l.right,
            [0.0, 1.0, 0.0],
            "posterior on the image right, face on the left"
        );
        let i = View::Inferior.axes();
        assert_eq!(
            i.right,
            [1.0, 0.0, 0.0],
            "radiological axial: patient right on the image left"
        );
        let iso = View::Iso(0.0, 0.0).axes();
        for k in 0..3 {
            assert!((iso.forward[k] - a.forward[k]).abs() < 1e-12);
            assert!((iso.right[k] - a.right[k]).abs() < 1e-12);
        }
    }

    #[test]
    fn degenerate_along_views_fall_back_to_orthonormal_axes() {
        for v in [
            View::Along {
                dir: [0.0, 0.0, 0.0],
                up: [0.0, 0.0, 1.0],
            },
            View::Along {
                dir: [0.0, 0.0, 2.0],
                up: [0.0, 0.0, 5.0],
            },
            View::Along {
                dir: [f64::NAN, 0.0, 1.0],
                up: [0.0, 0.0, 1.0],
            },
            View::Iso(0.0, 90.0),
        ] {
            let c = v.axes();
            for (x, y) in [(c.forward, c.up), (c.up, c.right), (c.forward, c.right)] {
                assert!(crate::mesh::dot(x, y).abs() < 1e-12, "{v:?}: {c:?}");
            }
            for x in [c.forward, c.up, c.right] {
                assert!((crate::mesh::norm(x) - 1.0).abs() < 1e-12, "{v:?}: {c:?}");
            }
        }
    }
}
