//! The bone as seen along the seating direction: exact offset height fields on a fine local grid, and the closed
//! solids (contact pad, blocked-out anatomy) built from them.
//!
//! Why a height field: a guide is put on along its seating direction, so everything of the bone below its top
//! surface (seen along that direction) is unreachable; "grow the bone by the offset, sweep it along the seating
//! direction" is exactly the region under the height field of the grown bone's top surface. That field is computed
//! exactly per grid column (the top of the vertical line's intersection with every bone triangle grown by a ball:
//! offset face, edge capsules, vertex spheres), so the contact surface sits at the bone offset from the bone at every
//! grid vertex; no mesh vertex is pushed and no undercut survives. Between the vertices a flat triangle would cut
//! into the grown bone across a ridge or the bone's edge, so the contact surface is lifted there
//! ([`conservative_top_surface`]). The pad's outer surface is the contact surface
//! grown again by the pad thickness (a discrete dilation with a hemisphere), so the pad has its thickness along the
//! surface normal, not only vertically. Solids between two height fields are closed by construction (top grid,
//! bottom grid, four side walls), which is what the boolean engine needs.

use nalgebra::{Matrix3, Point3, Vector3};
use rayon::prelude::*;

use crate::mesh::Mesh;

/// Columns per rayon work item (rows of the grid are processed in bands of this many).
const ROWS_PER_BAND: usize = 8;

/// A right-handed orthonormal frame whose `w` axis points away from the bone (against the seating direction).
#[derive(Clone, Debug, PartialEq)]
pub struct GuideFrame {
    /// Origin, patient LPS mm.
    pub origin_mm: Point3<f64>,
    /// Columns of `patient_from_frame`'s rotation: `u`, `v`, `w` (unit, right-handed, `w = -seating`).
    pub axes: Matrix3<f64>,
}

impl GuideFrame {
    /// The frame for a seating direction (any non-zero length); `u` is chosen deterministically from the patient
    /// axis least aligned with `w`.
    pub fn new(origin_mm: Point3<f64>, seating_direction: Vector3<f64>) -> Option<GuideFrame> {
        let w = -seating_direction.try_normalize(1e-12)?;
        let least = (0..3)
            .min_by(|&a, &b| w[a].abs().total_cmp(&w[b].abs()))
            .expect("three axes to choose from");
        let mut e = Vector3::zeros();
        e[least] = 1.0;
        let u = e.cross(&w).normalize();
        let v = w.cross(&u);
        Some(GuideFrame {
            origin_mm,
            axes: Matrix3::from_columns(&[u, v, w]),
        })
    }

    /// Frame coordinates `(u, v, w)` of a patient point.
    pub fn frame_from_patient(&self, p_mm: &Point3<f64>) -> Vector3<f64> {
        self.axes.transpose() * (p_mm - self.origin_mm)
    }

    /// Patient point of frame coordinates.
    pub fn patient_from_frame(&self, q: &Vector3<f64>) -> Point3<f64> {
        self.origin_mm + self.axes * q
    }

    /// The `w` axis (away from the bone).
    pub fn w(&self) -> Vector3<f64> {
        self.axes.column(2).into_owned()
    }
}

/// A scalar field `w(u, v)` sampled at `u0 + i*h, v0 + j*h`; `NEG_INFINITY` where the column holds nothing.
#[derive(Clone, Debug, PartialEq)]
pub struct HeightGrid {
    /// `u` of column 0, mm.
    pub u0_mm: f64,
    /// `v` of row 0, mm.
    pub v0_mm: f64,
    /// Grid spacing, mm.
    pub spacing_mm: f64,
    /// Columns (along `u`).
    pub nu: usize,
    /// Rows (along `v`).
    pub nv: usize,
    /// Heights, row-major (`j * nu + i`).
    pub w_mm: Vec<f64>,
}

impl HeightGrid {
    /// An empty field (all `NEG_INFINITY`) over a rectangle.
    pub fn empty(u0_mm: f64, v0_mm: f64, spacing_mm: f64, nu: usize, nv: usize) -> HeightGrid {
        HeightGrid {
            u0_mm,
            v0_mm,
            spacing_mm,
            nu,
            nv,
            w_mm: vec![f64::NEG_INFINITY; nu * nv],
        }
    }

    /// An empty field over the rectangle `lo..hi` (`(u, v)`, mm) grown by `margin_mm` on every side.
    pub fn around(lo: [f64; 2], hi: [f64; 2], margin_mm: f64, spacing_mm: f64) -> HeightGrid {
        let count = |a: f64, b: f64| ((b - a + 2.0 * margin_mm) / spacing_mm).ceil() as usize + 1;
        HeightGrid::empty(
            lo[0] - margin_mm,
            lo[1] - margin_mm,
            spacing_mm,
            count(lo[0], hi[0]),
            count(lo[1], hi[1]),
        )
    }

    /// `(u, v)` of a sample.
    pub fn uv(&self, i: usize, j: usize) -> (f64, f64) {
        (
            self.u0_mm + i as f64 * self.spacing_mm,
            self.v0_mm + j as f64 * self.spacing_mm,
        )
    }

    /// The sample at `(i, j)`.
    pub fn at(&self, i: usize, j: usize) -> f64 {
        self.w_mm[j * self.nu + i]
    }

    /// Bilinear interpolation at `(u, v)`; `None` outside the grid or where a corner is undefined.
    pub fn interpolate(&self, u: f64, v: f64) -> Option<f64> {
        let x = (u - self.u0_mm) / self.spacing_mm;
        let y = (v - self.v0_mm) / self.spacing_mm;
        if !(x >= 0.0 && y >= 0.0 && x <= (self.nu - 1) as f64 && y <= (self.nv - 1) as f64) {
            return None;
        }
        let i = (x.floor() as usize).min(self.nu.saturating_sub(2));
        let j = (y.floor() as usize).min(self.nv.saturating_sub(2));
        let (fx, fy) = (x - i as f64, y - j as f64);
        let c = [
            self.at(i, j),
            self.at(i + 1, j),
            self.at(i, j + 1),
            self.at(i + 1, j + 1),
        ];
        if c.iter().any(|w| !w.is_finite()) {
            return None;
        }
        Some((c[0] * (1.0 - fx) + c[1] * fx) * (1.0 - fy) + (c[2] * (1.0 - fx) + c[3] * fx) * fy)
    }
}

/// One bone triangle in frame coordinates, with what the column test needs.
struct FrameTriangle {
    p: [Vector3<f64>; 3],
    /// Unit normal with a non-negative `w` component (the grown triangle's top face), `None` if the triangle is
    /// degenerate.
    n_up: Option<Vector3<f64>>,
    /// 2D bounds grown by the offset.
    min_uv: [f64; 2],
    max_uv: [f64; 2],
    /// Highest `w` of the grown triangle (its highest vertex plus the offset): a column already at least this high
    /// cannot be raised by it.
    top_bound: f64,
}

/// The top surface of the bone grown by `offset_mm`, seen along `-w`, on the grid of `template` (its samples are
/// ignored): exact per column. Only triangles whose grown footprint meets the grid are used (the crop that makes
/// this cost independent of the bone's size).
pub fn offset_top_surface(bone: &Mesh, frame: &GuideFrame, template: &HeightGrid, offset_mm: f64) -> HeightGrid {
    let mut out = HeightGrid {
        w_mm: vec![f64::NEG_INFINITY; template.nu * template.nv],
        ..template.clone()
    };
    let h = template.spacing_mm;
    let (umax, vmax) = template.uv(template.nu - 1, template.nv - 1);
    let frame_points: Vec<Vector3<f64>> = bone
        .positions
        .par_iter()
        .map(|p| frame.frame_from_patient(&Point3::from(*p)))
        .collect();
    let triangles: Vec<FrameTriangle> = bone
        .triangles
        .iter()
        .filter_map(|t| {
            let p = [
                frame_points[t[0] as usize],
                frame_points[t[1] as usize],
                frame_points[t[2] as usize],
            ];
            let min_uv = [
                p[0].x.min(p[1].x).min(p[2].x) - offset_mm,
                p[0].y.min(p[1].y).min(p[2].y) - offset_mm,
            ];
            let max_uv = [
                p[0].x.max(p[1].x).max(p[2].x) + offset_mm,
                p[0].y.max(p[1].y).max(p[2].y) + offset_mm,
            ];
            if max_uv[0] < template.u0_mm || max_uv[1] < template.v0_mm || min_uv[0] > umax || min_uv[1] > vmax {
                return None;
            }
            let n = (p[1] - p[0]).cross(&(p[2] - p[0]));
            let n_up = n.try_normalize(1e-300).map(|n| if n.z < 0.0 { -n } else { n });
            Some(FrameTriangle {
                p,
                n_up,
                min_uv,
                max_uv,
                top_bound: p[0].z.max(p[1].z).max(p[2].z) + offset_mm,
            })
        })
        .collect();
    // Each band of rows owns its samples; a triangle is visited by every band it overlaps (listed per band first,
    // so a band does not scan every triangle). Max is order-free, so the result does not depend on scheduling or on
    // the order of a band's list: highest triangles first, so that bone deeper along the column (the far wall of
    // a sinus, the lingual cortex) is passed over by one comparison per sample instead of being evaluated.
    let band_len = ROWS_PER_BAND * template.nu;
    let bands = template.nv.div_ceil(ROWS_PER_BAND);
    let band_of = |v: f64| ((v - template.v0_mm) / (h * ROWS_PER_BAND as f64)).floor();
    let mut in_band: Vec<Vec<u32>> = vec![Vec::new(); bands];
    for (k, tri) in triangles.iter().enumerate() {
        let lo = band_of(tri.min_uv[1]).max(0.0) as usize;
        let hi = band_of(tri.max_uv[1]).min((bands - 1) as f64);
        if hi < 0.0 {
            continue;
        }
        for list in in_band.iter_mut().take(hi as usize + 1).skip(lo) {
            list.push(k as u32);
        }
    }
    in_band.par_iter_mut().for_each(|list| {
        list.sort_unstable_by(|&a, &b| {
            let (ta, tb) = (&triangles[a as usize], &triangles[b as usize]);
            tb.top_bound.total_cmp(&ta.top_bound).then(a.cmp(&b))
        })
    });
    out.w_mm
        .par_chunks_mut(band_len)
        .enumerate()
        .for_each(|(band, samples)| {
            let j0 = band * ROWS_PER_BAND;
            let j1 = j0 + samples.len() / template.nu;
            let band_v0 = template.v0_mm + j0 as f64 * h;
            let band_v1 = template.v0_mm + (j1 - 1) as f64 * h;
            for tri in in_band[band].iter().map(|&k| &triangles[k as usize]) {
                if tri.max_uv[1] < band_v0 || tri.min_uv[1] > band_v1 {
                    continue;
                }
                let i_lo = ((tri.min_uv[0] - template.u0_mm) / h).ceil().max(0.0) as usize;
                let i_hi = (((tri.max_uv[0] - template.u0_mm) / h).floor()).min((template.nu - 1) as f64);
                let j_lo = (((tri.min_uv[1] - template.v0_mm) / h).ceil().max(j0 as f64)) as usize;
                let j_hi = (((tri.max_uv[1] - template.v0_mm) / h).floor()).min((j1 - 1) as f64);
                if i_hi < 0.0 || j_hi < 0.0 {
                    continue;
                }
                for j in j_lo..=(j_hi as usize) {
                    for i in i_lo..=(i_hi as usize) {
                        let s = &mut samples[(j - j0) * template.nu + i];
                        if tri.top_bound <= *s {
                            continue;
                        }
                        let (u, v) = template.uv(i, j);
                        if let Some(w) = grown_triangle_top(tri, u, v, offset_mm) {
                            if w > *s {
                                *s = w;
                            }
                        }
                    }
                }
            }
        });
    out
}

/// How far the contact surface was lifted above the exact offset height at its nodes
/// ([`conservative_top_surface`]).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Lift {
    /// Nodes lifted.
    pub nodes: usize,
    /// Largest lift, mm (frame `w`).
    pub max_mm: f64,
}

/// The contact surface for a triangulated underside: [`offset_top_surface`] on `template`'s grid, each node then
/// lifted just enough that the piecewise-linear surface between the nodes is on or above the grown bone at the
/// midpoint of every cell edge and at every cell's centre for either diagonal (the places where a flat triangle
/// strays furthest below a curved surface: across a ridge or the bone's silhouette, where the exact nodes alone let
/// a triangle dip into the offset). The midpoints are sampled exactly on a grid of half the spacing; a node takes the
/// largest value any of its edges or diagonals asks for, so lifting never undoes another constraint.
pub fn conservative_top_surface(
    bone: &Mesh,
    frame: &GuideFrame,
    template: &HeightGrid,
    offset_mm: f64,
) -> (HeightGrid, Lift) {
    let (nu, nv) = (template.nu, template.nv);
    let fine_template = HeightGrid::empty(
        template.u0_mm,
        template.v0_mm,
        0.5 * template.spacing_mm,
        2 * nu - 1,
        2 * nv - 1,
    );
    let fine = offset_top_surface(bone, frame, &fine_template, offset_mm);
    let mut out = HeightGrid {
        w_mm: (0..nu * nv).map(|k| fine.at(2 * (k % nu), 2 * (k / nu))).collect(),
        ..template.clone()
    };
    // Each constraint asks for a pair of nodes whose mean reaches the midpoint's height; it raises the lower node
    // first (towards the higher one), so a cell across a drop is bridged from the bone's edge instead of lifting the
    // node that sits on the bone.
    let w = &out.w_mm;
    let mut raised = w.clone();
    let mut ask = |a: usize, b: usize, target: f64| {
        let need = 2.0 * target - w[a] - w[b];
        if !(w[a].is_finite() && w[b].is_finite() && need > 0.0) {
            return;
        }
        let (lo, hi) = if w[a] <= w[b] { (a, b) } else { (b, a) };
        let gap = w[hi] - w[lo];
        let (new_lo, new_hi) = if need <= gap {
            (w[lo] + need, w[hi])
        } else {
            let each = 0.5 * (need - gap);
            (w[hi] + each, w[hi] + each)
        };
        raised[lo] = raised[lo].max(new_lo);
        raised[hi] = raised[hi].max(new_hi);
    };
    for j in 0..nv {
        for i in 0..nu {
            let k = j * nu + i;
            if i + 1 < nu {
                ask(k, k + 1, fine.at(2 * i + 1, 2 * j));
            }
            if j + 1 < nv {
                ask(k, k + nu, fine.at(2 * i, 2 * j + 1));
            }
            if i + 1 < nu && j + 1 < nv {
                let centre = fine.at(2 * i + 1, 2 * j + 1);
                ask(k, k + nu + 1, centre);
                ask(k + 1, k + nu, centre);
            }
        }
    }
    let mut summary = Lift::default();
    for (w, r) in out.w_mm.iter_mut().zip(&raised) {
        if *r > *w {
            summary.nodes += 1;
            summary.max_mm = summary.max_mm.max(*r - *w);
            *w = *r;
        }
    }
    (out, summary)
}

/// Top of the vertical line `(u, v, ·)` inside the triangle grown by a ball of `r` (face, edge capsules).
fn grown_triangle_top(tri: &FrameTriangle, u: f64, v: f64, r: f64) -> Option<f64> {
    let mut best: Option<f64> = None;
    let mut take = |w: f64| {
        if best.is_none_or(|b| w > b) {
            best = Some(w);
        }
    };
    // The grown face: the point on the line whose foot (point - r n) lies in the triangle.
    if let Some(n) = tri.n_up {
        if n.z > 1e-9 {
            let p0 = tri.p[0];
            let w = p0.z + (r - n.x * (u - p0.x) - n.y * (v - p0.y)) / n.z;
            let foot = Vector3::new(u, v, w) - n * r;
            if inside_triangle_2d(&tri.p, foot.x, foot.y) {
                take(w);
            }
        }
    }
    for k in 0..3 {
        if let Some(w) = capsule_top(&tri.p[k], &tri.p[(k + 1) % 3], u, v, r) {
            take(w);
        }
    }
    best
}

fn inside_triangle_2d(p: &[Vector3<f64>; 3], x: f64, y: f64) -> bool {
    let d = |a: &Vector3<f64>, b: &Vector3<f64>| (b.x - a.x) * (y - a.y) - (b.y - a.y) * (x - a.x);
    let (d0, d1, d2) = (d(&p[0], &p[1]), d(&p[1], &p[2]), d(&p[2], &p[0]));
    (d0 >= 0.0 && d1 >= 0.0 && d2 >= 0.0) || (d0 <= 0.0 && d1 <= 0.0 && d2 <= 0.0)
}

/// Top of the vertical line `(u, v, ·)` inside the capsule of radius `r` around segment `a`-`b`.
fn capsule_top(a: &Vector3<f64>, b: &Vector3<f64>, u: f64, v: f64, r: f64) -> Option<f64> {
    let mut best: Option<f64> = None;
    for p in [a, b] {
        let d2 = (u - p.x).powi(2) + (v - p.y).powi(2);
        if d2 <= r * r {
            let w = p.z + (r * r - d2).sqrt();
            best = Some(best.map_or(w, |b: f64| b.max(w)));
        }
    }
    let ab = b - a;
    let len = ab.norm();
    if len <= 0.0 {
        return best;
    }
    let d = ab / len;
    // Line point a + (u - a.x, v - a.y, t); distance^2 to the axis: A t^2 + B t + C (t relative to a.z).
    let c = Vector3::new(u - a.x, v - a.y, 0.0);
    let cd = c.dot(&d);
    let qa = 1.0 - d.z * d.z;
    if qa <= 1e-12 {
        return best; // a vertical edge: its top is an end sphere.
    }
    let qb = 2.0 * (c.z - cd * d.z);
    let qc = c.norm_squared() - cd * cd - r * r;
    let disc = qb * qb - 4.0 * qa * qc;
    if disc < 0.0 {
        return best;
    }
    let t = (-qb + disc.sqrt()) / (2.0 * qa);
    let s = (cd + t * d.z) / len;
    if (0.0..=1.0).contains(&s) {
        let w = a.z + t;
        best = Some(best.map_or(w, |b: f64| b.max(w)));
    }
    best
}

/// `out(x) = max over samples y within radius of in(y) + sqrt(r^2 - |x - y|^2)`: the height field of the solid under
/// `grid` grown by a ball of `radius_mm` (sampled; exact at the samples of the input).
pub fn dilate(grid: &HeightGrid, radius_mm: f64) -> HeightGrid {
    let h = grid.spacing_mm;
    let reach = (radius_mm / h).floor() as isize;
    let mut offsets: Vec<(isize, isize, f64)> = Vec::new();
    for dj in -reach..=reach {
        for di in -reach..=reach {
            let d2 = ((di * di + dj * dj) as f64) * h * h;
            if d2 <= radius_mm * radius_mm {
                offsets.push((di, dj, (radius_mm * radius_mm - d2).sqrt()));
            }
        }
    }
    let (nu, nv) = (grid.nu as isize, grid.nv as isize);
    let mut w_mm = vec![f64::NEG_INFINITY; grid.w_mm.len()];
    w_mm.par_chunks_mut(grid.nu).enumerate().for_each(|(j, row)| {
        for (i, out) in row.iter_mut().enumerate() {
            let mut best = f64::NEG_INFINITY;
            for &(di, dj, lift) in &offsets {
                let (x, y) = (i as isize + di, j as isize + dj);
                if x < 0 || y < 0 || x >= nu || y >= nv {
                    continue;
                }
                let w = grid.w_mm[(y * nu + x) as usize] + lift;
                if w > best {
                    best = w;
                }
            }
            *out = best;
        }
    });
    HeightGrid { w_mm, ..grid.clone() }
}

/// Why a solid could not be built between two height fields.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HeightFieldError {
    /// The fields do not share a grid.
    #[error("the two height fields are on different grids")]
    GridMismatch,
    /// A sample is undefined or the top is not above the bottom.
    #[error(
        "at ({u_mm:.2}, {v_mm:.2}) mm in the guide frame the top ({top_mm}) is not above the bottom ({bottom_mm})"
    )]
    NotAbove {
        /// Column position.
        u_mm: f64,
        /// Row position.
        v_mm: f64,
        /// Top height.
        top_mm: f64,
        /// Bottom height.
        bottom_mm: f64,
    },
    /// Fewer than 2 x 2 samples.
    #[error("a height field needs at least 2 x 2 samples, got {nu} x {nv}")]
    TooSmall {
        /// Columns.
        nu: usize,
        /// Rows.
        nv: usize,
    },
}

/// The closed solid between `bottom` and `top` over their whole rectangle (outward, counter-clockwise), in patient
/// coordinates. Every top sample must be finite and strictly above its bottom sample.
pub fn solid_between(bottom: &HeightGrid, top: &HeightGrid, frame: &GuideFrame) -> Result<Mesh, HeightFieldError> {
    if bottom.nu != top.nu
        || bottom.nv != top.nv
        || bottom.u0_mm != top.u0_mm
        || bottom.v0_mm != top.v0_mm
        || bottom.spacing_mm != top.spacing_mm
    {
        return Err(HeightFieldError::GridMismatch);
    }
    let (nu, nv) = (top.nu, top.nv);
    if nu < 2 || nv < 2 {
        return Err(HeightFieldError::TooSmall { nu, nv });
    }
    for j in 0..nv {
        for i in 0..nu {
            let (t, b) = (top.at(i, j), bottom.at(i, j));
            if !(t.is_finite() && b.is_finite() && t > b) {
                let (u_mm, v_mm) = top.uv(i, j);
                return Err(HeightFieldError::NotAbove {
                    u_mm,
                    v_mm,
                    top_mm: t,
                    bottom_mm: b,
                });
            }
        }
    }
    let n = nu * nv;
    let mut positions = Vec::with_capacity(2 * n);
    for grid in [top, bottom] {
        for j in 0..nv {
            for i in 0..nu {
                let (u, v) = grid.uv(i, j);
                positions.push(
                    frame
                        .patient_from_frame(&Vector3::new(u, v, grid.at(i, j)))
                        .coords
                        .into(),
                );
            }
        }
    }
    let top_id = |i: usize, j: usize| (j * nu + i) as u32;
    let bot_id = |i: usize, j: usize| (n + j * nu + i) as u32;
    let mut triangles = Vec::with_capacity(4 * (nu - 1) * (nv - 1) + 4 * (nu + nv));
    for j in 0..nv - 1 {
        for i in 0..nu - 1 {
            // Split each cell along its shorter 3D diagonal (on the top; the bottom mirrors its own choice).
            for (grid, id, up) in [
                (top, &top_id as &dyn Fn(usize, usize) -> u32, true),
                (bottom, &bot_id, false),
            ] {
                let d_a = (grid.at(i, j) - grid.at(i + 1, j + 1)).abs();
                let d_b = (grid.at(i + 1, j) - grid.at(i, j + 1)).abs();
                let (a, b, c, d) = (id(i, j), id(i + 1, j), id(i + 1, j + 1), id(i, j + 1));
                let quad = if d_a <= d_b {
                    [[a, b, c], [a, c, d]]
                } else {
                    [[a, b, d], [b, c, d]]
                };
                for t in quad {
                    triangles.push(if up { t } else { [t[0], t[2], t[1]] });
                }
            }
        }
    }
    // Side walls: walk the border counter-clockwise seen from +w; each border edge (p -> q) gets the quad
    // top(p), bottom(p), bottom(q), top(q), whose outward normal points away from the rectangle.
    let mut border = Vec::with_capacity(2 * (nu + nv));
    border.extend((0..nu - 1).map(|i| ((i, 0), (i + 1, 0))));
    border.extend((0..nv - 1).map(|j| ((nu - 1, j), (nu - 1, j + 1))));
    border.extend((0..nu - 1).rev().map(|i| ((i + 1, nv - 1), (i, nv - 1))));
    border.extend((0..nv - 1).rev().map(|j| ((0, j + 1), (0, j))));
    for ((pi, pj), (qi, qj)) in border {
        let (tp, bp, bq, tq) = (top_id(pi, pj), bot_id(pi, pj), bot_id(qi, qj), top_id(qi, qj));
        triangles.push([tp, bp, bq]);
        triangles.push([tp, bq, tq]);
    }
    Ok(Mesh { positions, triangles })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::MeshReport;

    fn unit_frame() -> GuideFrame {
        // Seating along -z: w = +z.
        GuideFrame::new(Point3::origin(), Vector3::new(0.0, 0.0, -1.0)).expect("frame")
    }

    fn flat_square(z: f64, half: f64) -> Mesh {
        Mesh {
            positions: vec![[-half, -half, z], [half, -half, z], [half, half, z], [-half, half, z]],
            triangles: vec![[0, 1, 2], [0, 2, 3]],
        }
    }

    #[test]
    fn frame_is_right_handed_with_w_against_seating() {
        let f = GuideFrame::new(Point3::new(1.0, 2.0, 3.0), Vector3::new(0.3, -0.4, 0.5)).expect("frame");
        assert!((f.axes.determinant() - 1.0).abs() < 1e-12);
        assert!((f.w() + Vector3::new(0.3, -0.4, 0.5).normalize()).norm() < 1e-12);
        let p = Point3::new(5.0, -7.0, 11.0);
        assert!((f.patient_from_frame(&f.frame_from_patient(&p)) - p).norm() < 1e-12);
    }

    #[test]
    fn a_flat_surface_is_lifted_by_exactly_the_offset_and_its_edge_is_rounded() {
        let frame = unit_frame();
        let g = HeightGrid::empty(-6.0, -6.0, 0.25, 49, 49);
        let top = offset_top_surface(&flat_square(2.0, 5.0), &frame, &g, 0.5);
        // Inside: 2 + 0.5 exactly; beyond the edge by 0.25: on the edge capsule, sqrt(0.5^2 - 0.25^2).
        let inside = top.at(24, 24);
        assert!((inside - 2.5).abs() < 1e-12, "{inside}");
        let (u, _) = top.uv(45, 24);
        assert!((u - 5.25).abs() < 1e-12);
        let edge = top.at(45, 24);
        assert!((edge - (2.0 + (0.25f64 - 0.0625).sqrt())).abs() < 1e-12, "{edge}");
        assert_eq!(top.at(0, 0), f64::NEG_INFINITY);
    }

    /// The smallest distance from the piecewise-linear surface over `grid` (every cell split along either
    /// diagonal, sampled densely) to the triangles `bone` (patient mm).
    fn closest_approach(grid: &HeightGrid, frame: &GuideFrame, bone: &Mesh) -> f64 {
        let tris: Vec<Vec<Vector3<f64>>> = bone
            .triangles
            .iter()
            .map(|t| t.iter().map(|&k| Vector3::from(bone.positions[k as usize])).collect())
            .collect();
        let mut closest = f64::INFINITY;
        for j in 0..grid.nv - 1 {
            for i in 0..grid.nu - 1 {
                let c = [(i, j), (i + 1, j), (i + 1, j + 1), (i, j + 1)];
                // The four edges of the cell and both diagonals.
                for (a, b) in [(0, 1), (1, 2), (3, 2), (0, 3), (0, 2), (1, 3)] {
                    let (wa, wb) = (grid.at(c[a].0, c[a].1), grid.at(c[b].0, c[b].1));
                    if !(wa.is_finite() && wb.is_finite()) {
                        continue;
                    }
                    let (ua, va) = grid.uv(c[a].0, c[a].1);
                    let (ub, vb) = grid.uv(c[b].0, c[b].1);
                    for k in 0..=40 {
                        let t = f64::from(k) / 40.0;
                        let q = Vector3::new(ua + t * (ub - ua), va + t * (vb - va), wa + t * (wb - wa));
                        let p = frame.patient_from_frame(&q).coords;
                        for tri in &tris {
                            closest = closest.min(point_triangle_distance(&p, tri));
                        }
                    }
                }
            }
        }
        closest
    }

    #[test]
    fn the_lifted_contact_surface_keeps_the_offset_between_its_nodes_across_a_cliff() {
        // A 3 mm step whose vertical wall lies between two grid rows (x = 0.05 between nodes at 0.0 and 0.2).
        let bone = Mesh {
            positions: vec![
                [-3.0, -3.0, 0.0],
                [0.05, -3.0, 0.0],
                [0.05, 3.0, 0.0],
                [-3.0, 3.0, 0.0],
                [0.05, -3.0, -3.0],
                [0.05, 3.0, -3.0],
                [3.0, -3.0, -3.0],
                [3.0, 3.0, -3.0],
            ],
            triangles: vec![[0, 1, 2], [0, 2, 3], [1, 4, 5], [1, 5, 2], [4, 6, 7], [4, 7, 5]],
        };
        let frame = unit_frame();
        let offset = 0.3;
        // Frame u = -y, v = x: rows of the grid run across the wall.
        let g = HeightGrid::empty(-2.0, -2.0, 0.2, 21, 21);
        let exact = offset_top_surface(&bone, &frame, &g, offset);
        let (lifted, lift) = conservative_top_surface(&bone, &frame, &g, offset);
        let tol = crate::guide::check::CONTACT_TOL_MM;
        // The exact nodes alone let a triangle cut the edge of the step ...
        let before = closest_approach(&exact, &frame, &bone);
        assert!(before < offset - tol, "{before}");
        // ... the lifted surface stays at the offset everywhere (up to the tolerance of the contact check).
        let after = closest_approach(&lifted, &frame, &bone);
        assert!(after >= offset - tol, "{after}");
        // Only the rows next to the wall are lifted, and the nodes on the upper step keep their exact height.
        assert!(lift.nodes > 0 && lift.nodes <= 3 * 21, "{lift:?}");
        for j in 0..21 {
            for i in 0..21 {
                let (_, v) = g.uv(i, j);
                if v < -0.1 {
                    assert_eq!(lifted.at(i, j), exact.at(i, j), "({i}, {j})");
                }
                assert!(lifted.at(i, j) >= exact.at(i, j));
            }
        }
    }

    #[test]
    fn layers_below_the_top_are_passed_over_without_changing_any_sample() {
        // A wavy sheet over two flat sheets (the far walls of a sinus): every sample equals the maximum over every
        // triangle evaluated one by one, as if no triangle were skipped.
        let frame = unit_frame();
        let mut bone = Mesh::default();
        for (layer, z0) in [(0u32, 3.0), (1, 0.0), (2, -4.0)] {
            let n = 24u32;
            let base = bone.positions.len() as u32;
            for j in 0..=n {
                for i in 0..=n {
                    let (x, y) = (-6.0 + 0.5 * f64::from(i), -6.0 + 0.5 * f64::from(j));
                    let z = if layer == 0 {
                        z0 + 0.8 * (0.9 * x).sin() * (0.7 * y).cos()
                    } else {
                        z0
                    };
                    bone.positions.push([x, y, z]);
                }
            }
            for j in 0..n {
                for i in 0..n {
                    let k = base + j * (n + 1) + i;
                    bone.triangles.push([k, k + 1, k + n + 2]);
                    bone.triangles.push([k, k + n + 2, k + n + 1]);
                }
            }
        }
        let g = HeightGrid::empty(-7.0, -7.0, 0.1, 141, 141);
        let offset = 0.3;
        let top = offset_top_surface(&bone, &frame, &g, offset);
        let tris: Vec<FrameTriangle> = bone
            .triangles
            .iter()
            .map(|t| {
                let p = t.map(|k| frame.frame_from_patient(&Point3::from(bone.positions[k as usize])));
                let n = (p[1] - p[0]).cross(&(p[2] - p[0]));
                FrameTriangle {
                    p,
                    n_up: n.try_normalize(1e-300).map(|n| if n.z < 0.0 { -n } else { n }),
                    min_uv: [0.0; 2],
                    max_uv: [0.0; 2],
                    top_bound: f64::INFINITY,
                }
            })
            .collect();
        let mut checked = 0;
        for j in (0..g.nv).step_by(3) {
            for i in (0..g.nu).step_by(3) {
                let (u, v) = g.uv(i, j);
                let expected = tris
                    .iter()
                    .filter_map(|t| grown_triangle_top(t, u, v, offset))
                    .fold(f64::NEG_INFINITY, f64::max);
                assert_eq!(top.at(i, j), expected, "sample ({i}, {j})");
                checked += usize::from(expected.is_finite());
            }
        }
        assert!(checked > 1500, "{checked}");
    }

    #[test]
    fn a_grown_tilted_triangle_has_the_exact_top_everywhere() {
        let tri = Mesh {
            positions: vec![[0.0, 0.0, 0.0], [3.0, 0.5, 1.0], [0.5, 2.5, -1.0]],
            triangles: vec![[0, 1, 2]],
        };
        let frame = unit_frame();
        let g = HeightGrid::empty(-1.5, -1.5, 0.3, 22, 18);
        let r = 0.8;
        let top = offset_top_surface(&tri, &frame, &g, r);
        // Oracle: distance along the line is convex; find its minimum by ternary search, then the top crossing of
        // r by bisection, with an exact point-triangle distance.
        let p: Vec<Vector3<f64>> = tri
            .positions
            .iter()
            .map(|p| frame.frame_from_patient(&Point3::from(*p)))
            .collect();
        let dist = |u: f64, v: f64, w: f64| point_triangle_distance(&Vector3::new(u, v, w), &p);
        let mut checked = 0;
        for j in 0..18 {
            for i in 0..22 {
                let (u, v) = top.uv(i, j);
                let (mut lo, mut hi) = (-10.0, 10.0);
                for _ in 0..200 {
                    let (a, b) = (lo + (hi - lo) / 3.0, hi - (hi - lo) / 3.0);
                    if dist(u, v, a) < dist(u, v, b) {
                        hi = b;
                    } else {
                        lo = a;
                    }
                }
                let w_min = 0.5 * (lo + hi);
                let got = top.at(i, j);
                if dist(u, v, w_min) > r {
                    assert_eq!(got, f64::NEG_INFINITY, "({u},{v})");
                    continue;
                }
                let (mut inside, mut outside) = (w_min, 10.0);
                for _ in 0..200 {
                    let mid = 0.5 * (inside + outside);
                    if dist(u, v, mid) <= r {
                        inside = mid;
                    } else {
                        outside = mid;
                    }
                }
                assert!((got - inside).abs() < 1e-9, "({u},{v}): {got} vs {inside}");
                checked += 1;
            }
        }
        assert!(checked > 100, "{checked}");
    }

    /// Exact distance from a point to a triangle (closest point by regions, Ericson's Real-Time Collision Detection).
    fn point_triangle_distance(x: &Vector3<f64>, t: &[Vector3<f64>]) -> f64 {
        let (a, b, c) = (t[0], t[1], t[2]);
        let (ab, ac, ap) = (b - a, c - a, x - a);
        let (d1, d2) = (ab.dot(&ap), ac.dot(&ap));
        if d1 <= 0.0 && d2 <= 0.0 {
            return (x - a).norm();
        }
        let bp = x - b;
        let (d3, d4) = (ab.dot(&bp), ac.dot(&bp));
        if d3 >= 0.0 && d4 <= d3 {
            return (x - b).norm();
        }
        let vc = d1 * d4 - d3 * d2;
        if vc <= 0.0 && d1 >= 0.0 && d3 <= 0.0 {
            return (x - (a + ab * (d1 / (d1 - d3)))).norm();
        }
        let cp = x - c;
        let (d5, d6) = (ab.dot(&cp), ac.dot(&cp));
        if d6 >= 0.0 && d5 <= d6 {
            return (x - c).norm();
        }
        let vb = d5 * d2 - d1 * d6;
        if vb <= 0.0 && d2 >= 0.0 && d6 <= 0.0 {
            return (x - (a + ac * (d2 / (d2 - d6)))).norm();
        }
        let va = d3 * d6 - d5 * d4;
        if va <= 0.0 && (d4 - d3) >= 0.0 && (d5 - d6) >= 0.0 {
            return (x - (b + (c - b) * ((d4 - d3) / ((d4 - d3) + (d5 - d6))))).norm();
        }
        let denom = 1.0 / (va + vb + vc);
        (x - (a + ab * (vb * denom) + ac * (vc * denom))).norm()
    }

    #[test]
    fn dilation_of_a_point_is_a_hemisphere_and_solids_are_closed() {
        let mut g = HeightGrid::empty(0.0, 0.0, 0.5, 21, 21);
        g.w_mm[10 * 21 + 10] = 1.0;
        let d = dilate(&g, 3.0);
        assert_eq!(d.at(10, 10), 4.0);
        assert!((d.at(14, 10) - (1.0 + (9.0f64 - 4.0).sqrt())).abs() < 1e-12);
        assert_eq!(d.at(0, 0), f64::NEG_INFINITY);

        let frame = GuideFrame::new(Point3::new(3.0, -2.0, 7.0), Vector3::new(0.2, 1.0, -0.3)).expect("frame");
        let mut bottom = HeightGrid::empty(-2.0, -1.0, 0.5, 9, 7);
        for j in 0..7 {
            for i in 0..9 {
                bottom.w_mm[j * 9 + i] = ((i * j) as f64 * 0.37).sin();
            }
        }
        let top = HeightGrid {
            w_mm: bottom.w_mm.iter().map(|w| w + 2.0).collect(),
            ..bottom.clone()
        };
        let solid = solid_between(&bottom, &top, &frame).expect("solid");
        let report = MeshReport::new(&solid);
        assert!(report.is_valid(), "{report}");
        // Volume of a prism of height 2 over a 4 x 3 mm rectangle.
        assert!(
            (solid.signed_volume_mm3() - 24.0).abs() < 1e-9,
            "{}",
            solid.signed_volume_mm3()
        );
        let flat = HeightGrid {
            w_mm: bottom.w_mm.clone(),
            ..bottom.clone()
        };
        assert!(matches!(
            solid_between(&bottom, &flat, &frame),
            Err(HeightFieldError::NotAbove { .. })
        ));
    }
}
