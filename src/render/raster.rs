//! The rasteriser behind [`super::render`]: projection, a z-buffer pass per layer (opaque, then the front-most
//! semi-transparent surface) over horizontal bands in parallel, deferred shading, edge darkening and a 2x2 box
//! downsample.
//!
//! Determinism: triangles are binned to bands in (item, triangle) order; each band is drawn by one task in that
//! order with a strict depth test, so ties go to the first triangle drawn whatever the thread count. Shading and
//! downsampling read finished buffers and write disjoint rows.

use rayon::prelude::*;

use super::{CameraAxes, RgbImage, Scene};
use crate::mesh::check::VertexTriangles;
use crate::mesh::{cross, dot, norm, sub, BoundingBox, Mesh};

/// Supersampling factor per axis: each output pixel averages `SUPERSAMPLE^2` shaded samples (anti-aliasing).
const SUPERSAMPLE: usize = 2;
/// Rows (at the supersampled resolution) per band, the unit of parallel work: small enough to balance two to many
/// cores, large enough that binning overhead stays below the drawing work.
const BAND_ROWS: usize = 16;
/// Empty space kept around the focus box, as a fraction of the image size on each side.
const FRAME_FRACTION: f64 = 0.04;
/// Smallest extent of the focus box across the screen, mm: a box that is flat or a point seen along its thin axis
/// still gives a finite scale (1 micrometre is far below any mesh feature).
const MIN_EXTENT_MM: f64 = 1e-3;
/// Cosine of the crease angle (35 deg): faces meeting at a sharper angle do not share a shading normal, so guide
/// edges stay sharp while the bone (whose neighbouring faces differ by far less) shades smooth.
const CREASE_COS: f64 = 0.819;
/// Depth step beyond the surface's own slope that counts as a silhouette, in supersampled pixels of lateral size.
const EDGE_DEPTH_JUMP_PX: f32 = 3.0;
/// Smallest |normal . view| used when predicting the depth slope of a surface (about 87 deg from facing): limits the
/// predicted slope of grazing surfaces to 20 pixels per pixel.
const GRAZING_NZ: f32 = 0.05;
/// Smallest depth step that counts as a silhouette, mm (so fine bone texture at high zoom is not outlined).
const EDGE_MIN_DEPTH_JUMP_MM: f32 = 0.5;
/// Cosine of the normal angle between neighbouring samples (50 deg) above which a crease line is drawn.
const CREASE_EDGE_COS: f32 = 0.643;
/// Brightness kept on silhouette and crease lines.
const SILHOUETTE_KEEP: f32 = 0.35;
const CREASE_KEEP: f32 = 0.7;
/// Darkening of the farthest part of the scene relative to the nearest (depth cue).
const DEPTH_CUE: f32 = 0.25;
/// No item drawn at a sample.
const NO_ITEM: u16 = u16::MAX;

/// Lights in camera space (x right, y up, z forward into the scene); directions point from the surface to the light.
const KEY_LIGHT: [f32; 3] = [-0.48, 0.56, -0.675];
/// Key light plus the view direction (0, 0, -1); normalised, the Blinn-Phong half vector.
const KEY_LIGHT_UNIT_SUM: [f32; 3] = [-0.48, 0.56, -1.675];
const KEY_INTENSITY: f32 = 0.85;
const HEAD_INTENSITY: f32 = 0.22;
const SKY_AMBIENT: f32 = 0.17;
const GROUND_AMBIENT: f32 = 0.05;
const SPECULAR: f32 = 0.16;
const SHININESS: i32 = 24;

/// Background gradient, sRGB, top and bottom of the image.
const BACKGROUND_TOP: [u8; 3] = [250, 251, 253];
const BACKGROUND_BOTTOM: [u8; 3] = [196, 206, 220];

/// One item projected to the supersampled screen.
struct Projected<'a> {
    /// (x px, y px, depth mm) per vertex; x right, y down, depth along the view.
    screen: Vec<[f32; 3]>,
    /// Unit shading normals of each triangle's corners in camera space.
    corners: Vec<[[f32; 3]; 3]>,
    /// Unit face normals in camera space (zero for degenerate triangles).
    faces: Vec<[f32; 3]>,
    mesh: &'a Mesh,
    /// Index into the scene.
    item: u16,
}

/// One layer's buffers at the supersampled resolution.
struct GBuffer {
    depth: Vec<f32>,
    normal: Vec<[f32; 3]>,
    item: Vec<u16>,
}

/// Screen placement of camera space: pixel = centre + (right, -up) * scale.
struct Screen {
    width: usize,
    height: usize,
    scale_px_per_mm: f64,
    axes: CameraAxes,
    center_mm: [f64; 3],
}

impl Screen {
    fn camera(&self, p: [f64; 3]) -> [f64; 3] {
        let d = sub(p, self.center_mm);
        [dot(d, self.axes.right), dot(d, self.axes.up), dot(d, self.axes.forward)]
    }

    fn pixel(&self, p: [f64; 3]) -> [f32; 3] {
        let c = self.camera(p);
        [
            (0.5 * self.width as f64 + c[0] * self.scale_px_per_mm) as f32,
            (0.5 * self.height as f64 - c[1] * self.scale_px_per_mm) as f32,
            c[2] as f32,
        ]
    }

    fn direction(&self, n: [f64; 3]) -> [f32; 3] {
        let c = [dot(n, self.axes.right), dot(n, self.axes.up), dot(n, self.axes.forward)];
        let len = (c[0] * c[0] + c[1] * c[1] + c[2] * c[2]).sqrt();
        if len > 0.0 && len.is_finite() {
            c.map(|x| (x / len) as f32)
        } else {
            [0.0; 3]
        }
    }
}

pub(super) fn render(scene: &Scene, axes: CameraAxes, width: u32, height: u32, focus: Option<BoundingBox>) -> RgbImage {
    let (w, h) = (width as usize * SUPERSAMPLE, height as usize * SUPERSAMPLE);
    if w == 0 || h == 0 {
        return RgbImage::new(width, height, BACKGROUND_TOP);
    }
    let scene_box = scene.bounding_box();
    let Some(fit) = focus
        .filter(|b| b.min_mm.iter().chain(&b.max_mm).all(|c| c.is_finite()))
        .or(scene_box)
    else {
        let background = background_rows(h);
        return downsample(|_, y| background[y], width, height);
    };
    let center_mm = fit.center_mm();
    let mut screen = Screen {
        width: w,
        height: h,
        scale_px_per_mm: 1.0,
        axes,
        center_mm,
    };
    let (mut half_r, mut half_u) = (MIN_EXTENT_MM, MIN_EXTENT_MM);
    for corner in box_corners(&fit) {
        let c = screen.camera(corner);
        half_r = half_r.max(c[0].abs());
        half_u = half_u.max(c[1].abs());
    }
    let usable = 1.0 - 2.0 * FRAME_FRACTION;
    screen.scale_px_per_mm = (usable * w as f64 / (2.0 * half_r)).min(usable * h as f64 / (2.0 * half_u));

    // Depth range of the whole scene, for the depth cue.
    let (mut near_mm, mut far_mm) = (f64::INFINITY, f64::NEG_INFINITY);
    for corner in scene_box.iter().flat_map(box_corners) {
        let d = screen.camera(corner)[2];
        near_mm = near_mm.min(d);
        far_mm = far_mm.max(d);
    }

    let projected: Vec<Projected> = scene
        .items
        .iter()
        .enumerate()
        .filter(|(_, it)| it.opacity > 0.0)
        .map(|(i, it)| project(&it.mesh, i as u16, &screen))
        .collect();
    let is_opaque = |p: &&Projected| scene.items[p.item as usize].opacity >= 1.0;
    let opaque: Vec<&Projected> = projected.iter().filter(is_opaque).collect();
    let transparent: Vec<&Projected> = projected.iter().filter(|p| !is_opaque(p)).collect();
    let opaque_buf = rasterise(&opaque, w, h);
    let transparent_buf = (!transparent.is_empty()).then(|| rasterise(&transparent, w, h));

    let albedo: Vec<[f32; 3]> = scene.items.iter().map(|it| it.colour.map(srgb_to_linear)).collect();
    let background = background_rows(h);
    let shade = Shading {
        albedo: &albedo,
        background: &background,
        key: normalise3(KEY_LIGHT),
        half: normalise3([KEY_LIGHT_UNIT_SUM[0], KEY_LIGHT_UNIT_SUM[1], KEY_LIGHT_UNIT_SUM[2]]),
        near_mm: near_mm as f32,
        far_mm: far_mm as f32,
        edge_jump_mm: (EDGE_DEPTH_JUMP_PX / screen.scale_px_per_mm as f32).max(EDGE_MIN_DEPTH_JUMP_MM),
        pixel_mm: 1.0 / screen.scale_px_per_mm as f32,
        width: w,
        height: h,
    };
    let sample = |x: usize, y: usize| -> [f32; 3] {
        let i = y * w + x;
        let mut out = if opaque_buf.item[i] != NO_ITEM {
            shade.layer(&opaque_buf, x, y)
        } else {
            shade.background[y]
        };
        if let Some(t) = &transparent_buf {
            if t.item[i] != NO_ITEM && t.depth[i] < opaque_buf.depth[i] {
                let a = scene.items[t.item[i] as usize].opacity.clamp(0.0, 1.0);
                let front = shade.layer(t, x, y);
                out = [0, 1, 2].map(|c| out[c] * (1.0 - a) + front[c] * a);
            }
        }
        out
    };
    downsample(sample, width, height)
}

fn box_corners(b: &BoundingBox) -> [[f64; 3]; 8] {
    std::array::from_fn(|i| {
        [
            if i & 1 == 0 { b.min_mm[0] } else { b.max_mm[0] },
            if i & 2 == 0 { b.min_mm[1] } else { b.max_mm[1] },
            if i & 4 == 0 { b.min_mm[2] } else { b.max_mm[2] },
        ]
    })
}

fn project<'a>(mesh: &'a Mesh, item: u16, screen: &Screen) -> Projected<'a> {
    let screen_pts: Vec<[f32; 3]> = mesh.positions.par_iter().map(|&p| screen.pixel(p)).collect();
    let n = mesh.positions.len();
    let valid = |t: &[u32; 3]| t.iter().all(|&i| (i as usize) < n);
    // Area-weighted (unnormalised) and unit face normals, patient frame.
    let face_world: Vec<([f64; 3], [f64; 3])> = mesh
        .triangles
        .par_iter()
        .map(|t| {
            if !valid(t) {
                return ([0.0; 3], [0.0; 3]);
            }
            let [a, b, c] = t.map(|i| mesh.positions[i as usize]);
            let f = cross(sub(b, a), sub(c, a));
            let len = norm(f);
            (f, if len > 0.0 { f.map(|x| x / len) } else { [0.0; 3] })
        })
        .collect();
    // Triangles around each vertex (in triangle order).
    let around = VertexTriangles::build(mesh);
    // Corner normals: the area-weighted mean of the faces around the corner's vertex that lie within the crease angle
    // of this face, so smooth surfaces shade smooth and sharp edges stay sharp.
    let corners: Vec<[[f32; 3]; 3]> = mesh
        .triangles
        .par_iter()
        .enumerate()
        .map(|(ti, t)| {
            let own = face_world[ti].1;
            if !valid(t) {
                return [[0.0; 3]; 3];
            }
            t.map(|v| {
                let mut sum = [0.0f64; 3];
                for &f in &around.tris[around.start[v as usize]..around.start[v as usize + 1]] {
                    let (weighted, unit) = face_world[f as usize];
                    if dot(unit, own) >= CREASE_COS {
                        for k in 0..3 {
                            sum[k] += weighted[k];
                        }
                    }
                }
                screen.direction(sum)
            })
        })
        .collect();
    Projected {
        screen: screen_pts,
        corners,
        faces: face_world.par_iter().map(|&(f, _)| screen.direction(f)).collect(),
        mesh,
        item,
    }
}

/// Draws `items` into a fresh z-buffer of `w` x `h` samples, band by band in parallel.
fn rasterise(items: &[&Projected], w: usize, h: usize) -> GBuffer {
    let bands = h.div_ceil(BAND_ROWS);
    let mut bins: Vec<Vec<(u16, u32)>> = vec![Vec::new(); bands];
    for (k, p) in items.iter().enumerate() {
        for (t, tri) in p.mesh.triangles.iter().enumerate() {
            let Some(pts) = triangle_screen(p, tri) else { continue };
            let ymin = pts.iter().map(|q| q[1]).fold(f32::INFINITY, f32::min);
            let ymax = pts.iter().map(|q| q[1]).fold(f32::NEG_INFINITY, f32::max);
            let xmin = pts.iter().map(|q| q[0]).fold(f32::INFINITY, f32::min);
            let xmax = pts.iter().map(|q| q[0]).fold(f32::NEG_INFINITY, f32::max);
            if ymax < 0.0 || xmax < 0.0 || ymin >= h as f32 || xmin >= w as f32 {
                continue;
            }
            let first = (ymin.max(0.0) as usize) / BAND_ROWS;
            let last = ((ymax as usize).min(h - 1)) / BAND_ROWS;
            for bin in &mut bins[first..=last] {
                bin.push((k as u16, t as u32));
            }
        }
    }
    let mut buf = GBuffer {
        depth: vec![f32::INFINITY; w * h],
        normal: vec![[0.0; 3]; w * h],
        item: vec![NO_ITEM; w * h],
    };
    buf.depth
        .par_chunks_mut(BAND_ROWS * w)
        .zip(buf.normal.par_chunks_mut(BAND_ROWS * w))
        .zip(buf.item.par_chunks_mut(BAND_ROWS * w))
        .zip(bins.par_iter())
        .enumerate()
        .for_each(|(band, (((depth, normal), item), bin))| {
            let mut target = Band {
                y0: band * BAND_ROWS,
                rows: depth.len() / w,
                width: w,
                depth,
                normal,
                item,
            };
            for &(k, t) in bin {
                let p = items[k as usize];
                target.draw(p, t as usize);
            }
        });
    buf
}

fn triangle_screen(p: &Projected, tri: &[u32; 3]) -> Option<[[f32; 3]; 3]> {
    let mut out = [[0.0f32; 3]; 3];
    for (o, &i) in out.iter_mut().zip(tri) {
        *o = *p.screen.get(i as usize)?;
        if !o.iter().all(|c| c.is_finite()) {
            return None;
        }
    }
    Some(out)
}

/// The rows of one band of a layer's buffers.
struct Band<'a> {
    y0: usize,
    rows: usize,
    width: usize,
    depth: &'a mut [f32],
    normal: &'a mut [[f32; 3]],
    item: &'a mut [u16],
}

impl Band<'_> {
    fn draw(&mut self, p: &Projected, t: usize) {
        let tri = p.mesh.triangles[t];
        let Some([a, b, c]) = triangle_screen(p, &tri) else {
            return;
        };
        let area = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]);
        if area == 0.0 || !area.is_finite() {
            return;
        }
        let inv_area = 1.0 / area;
        // Closed outward meshes (the crate's invariant) hide their back faces behind front faces, so back faces are
        // skipped: half the work, and the transparent layer keeps the front-most surface.
        if p.faces[t][2] >= 0.0 {
            return;
        }
        let vn = p.corners[t];
        let x_lo = a[0].min(b[0]).min(c[0]).floor().max(0.0) as usize;
        let x_hi = (a[0].max(b[0]).max(c[0]).ceil() as usize).min(self.width);
        let y_lo = (a[1].min(b[1]).min(c[1]).floor().max(0.0) as usize).max(self.y0);
        let y_hi = (a[1].max(b[1]).max(c[1]).ceil() as usize).min(self.y0 + self.rows);
        for y in y_lo..y_hi {
            let py = y as f32 + 0.5;
            let row = (y - self.y0) * self.width;
            for x in x_lo..x_hi {
                let px = x as f32 + 0.5;
                let l0 = ((b[0] - px) * (c[1] - py) - (b[1] - py) * (c[0] - px)) * inv_area;
                let l1 = ((c[0] - px) * (a[1] - py) - (c[1] - py) * (a[0] - px)) * inv_area;
                let l2 = 1.0 - l0 - l1;
                if l0 < 0.0 || l1 < 0.0 || l2 < 0.0 {
                    continue;
                }
                let z = l0 * a[2] + l1 * b[2] + l2 * c[2];
                let i = row + x;
                if z < self.depth[i] {
                    self.depth[i] = z;
                    self.item[i] = p.item;
                    let n = [0, 1, 2].map(|k| l0 * vn[0][k] + l1 * vn[1][k] + l2 * vn[2][k]);
                    let len = (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt();
                    let smooth = if len > 0.0 { n.map(|v| v / len) } else { p.faces[t] };
                    self.normal[i] = smooth;
                }
            }
        }
    }
}

fn dot3(a: [f32; 3], b: [f32; 3]) -> f32 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

struct Shading<'a> {
    albedo: &'a [[f32; 3]],
    /// Background colour of each supersampled row, linear.
    background: &'a [[f32; 3]],
    /// Unit key light direction.
    key: [f32; 3],
    /// Unit Blinn-Phong half vector of the key light and the view direction.
    half: [f32; 3],
    near_mm: f32,
    far_mm: f32,
    edge_jump_mm: f32,
    /// Lateral size of one supersampled pixel, mm.
    pixel_mm: f32,
    width: usize,
    height: usize,
}

impl Shading<'_> {
    /// Linear colour of the layer's sample at (`x`, `y`), which holds a surface.
    fn layer(&self, g: &GBuffer, x: usize, y: usize) -> [f32; 3] {
        let i = y * self.width + x;
        let n = g.normal[i];
        let albedo = self.albedo[g.item[i] as usize];
        let (key, half) = (self.key, self.half);
        let view = [0.0, 0.0, -1.0];
        let hemi = 0.5 + 0.5 * n[1];
        let ambient = GROUND_AMBIENT + (SKY_AMBIENT - GROUND_AMBIENT) * hemi;
        let diffuse = KEY_INTENSITY * dot3(n, key).max(0.0) + HEAD_INTENSITY * dot3(n, view).max(0.0);
        let spec = SPECULAR * dot3(n, half).max(0.0).powi(SHININESS);
        let range = self.far_mm - self.near_mm;
        let t = if range > 0.0 {
            ((g.depth[i] - self.near_mm) / range).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let cue = 1.0 - DEPTH_CUE * t;
        let edge = self.edge_factor(g, x, y);
        albedo.map(|c| ((c * (ambient + diffuse) + spec) * cue * edge).min(1.0))
    }

    /// Darkening of silhouettes (a neighbour is empty, another item behind, or farther than the sample's own
    /// surface slope explains) and creases.
    fn edge_factor(&self, g: &GBuffer, x: usize, y: usize) -> f32 {
        let i = y * self.width + x;
        let (d, n, item) = (g.depth[i], g.normal[i], g.item[i]);
        // Depth change per pixel step that the surface's own slope explains, along x and along y; a grazing surface
        // changes depth fast without being an outline.
        let facing = n[2].abs().max(GRAZING_NZ);
        let slope_x = self.pixel_mm * n[0].abs() / facing;
        let slope_y = self.pixel_mm * n[1].abs() / facing;
        let mut keep: f32 = 1.0;
        let neighbours = [
            ((x > 0).then(|| i - 1), slope_x),
            ((x + 1 < self.width).then(|| i + 1), slope_x),
            ((y > 0).then(|| i - self.width), slope_y),
            ((y + 1 < self.height).then(|| i + self.width), slope_y),
        ];
        for (j, slope) in neighbours.into_iter().filter_map(|(j, s)| Some((j?, s))) {
            let jump = g.depth[j] - d;
            if g.item[j] == NO_ITEM || jump > self.edge_jump_mm + 2.0 * slope || (g.item[j] != item && jump > 0.0) {
                return SILHOUETTE_KEEP;
            }
            if dot3(n, g.normal[j]) < CREASE_EDGE_COS {
                keep = CREASE_KEEP;
            }
        }
        keep
    }
}

fn normalise3(v: [f32; 3]) -> [f32; 3] {
    let len = dot3(v, v).sqrt();
    v.map(|c| c / len)
}

/// The background gradient colour of each supersampled row, linear light.
fn background_rows(h: usize) -> Vec<[f32; 3]> {
    let top = BACKGROUND_TOP.map(srgb_to_linear);
    let bottom = BACKGROUND_BOTTOM.map(srgb_to_linear);
    (0..h)
        .map(|y| {
            let t = if h > 1 { y as f32 / (h - 1) as f32 } else { 0.0 };
            // Ease the gradient so the upper half stays light behind the object.
            let t = t * t;
            [0, 1, 2].map(|k| top[k] + (bottom[k] - top[k]) * t)
        })
        .collect()
}

/// Output image from `sample(x, y)` at the supersampled resolution: each pixel averages its `SUPERSAMPLE` x
/// `SUPERSAMPLE` block in linear light, then is encoded sRGB. Rows in parallel; no supersampled image is stored.
fn downsample(sample: impl Fn(usize, usize) -> [f32; 3] + Sync, width: u32, height: u32) -> RgbImage {
    let (w, h) = (width as usize, height as usize);
    let encode = SrgbEncoder::new();
    let mut data = vec![0u8; w * h * 3];
    data.par_chunks_mut((w * 3).max(1)).enumerate().for_each(|(y, row)| {
        for x in 0..w {
            let mut sum = [0.0f32; 3];
            for dy in 0..SUPERSAMPLE {
                for dx in 0..SUPERSAMPLE {
                    let s = sample(x * SUPERSAMPLE + dx, y * SUPERSAMPLE + dy);
                    for k in 0..3 {
                        sum[k] += s[k];
                    }
                }
            }
            let n = (SUPERSAMPLE * SUPERSAMPLE) as f32;
            for k in 0..3 {
                row[x * 3 + k] = encode.byte(sum[k] / n);
            }
        }
    });
    RgbImage::from_raw(width, height, data).expect("buffer sized width * height * 3 above")
}

/// Linear light to sRGB bytes by binary search in the 255 linear values half-way between consecutive bytes: the
/// same result as rounding the sRGB curve, without a `powf` per sample.
struct SrgbEncoder {
    midpoints: [f32; 255],
}

impl SrgbEncoder {
    fn new() -> Self {
        SrgbEncoder {
            midpoints: std::array::from_fn(|k| srgb_curve_inverse((k as f32 + 0.5) / 255.0)),
        }
    }

    fn byte(&self, v: f32) -> u8 {
        self.midpoints.partition_point(|&m| m <= v) as u8
    }
}

/// sRGB-encoded value (0..1) to linear light.
fn srgb_curve_inverse(v: f32) -> f32 {
    if v <= 0.04045 {
        v / 12.92
    } else {
        ((v + 0.055) / 1.055).powf(2.4)
    }
}

fn srgb_to_linear(c: u8) -> f32 {
    srgb_curve_inverse(f32::from(c) / 255.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srgb_encoding_round_trips_every_byte_and_is_monotone() {
        let e = SrgbEncoder::new();
        for c in 0..=255u8 {
            assert_eq!(e.byte(srgb_to_linear(c)), c);
        }
        assert_eq!(e.byte(-1.0), 0);
        assert_eq!(e.byte(2.0), 255);
        let mut last = 0;
        for i in 0..=1000 {
            let b = e.byte(i as f32 / 1000.0);
            assert!(b >= last);
            last = b;
        }
    }
}
