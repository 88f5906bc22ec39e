//! Morphology with a Euclidean ball given in millimetres, through an exact distance transform.
//!
//! Why a distance transform: CT voxels are anisotropic (0.4 x 0.4 x 1.25 mm is common), so a "radius of 3
//! voxels" means different millimetres along each axis, and structuring-element loops cost `O(r^3)` per voxel.
//! Dilating by a ball of radius `r` mm is the same as keeping every voxel whose centre lies within `r` mm of a
//! foreground voxel centre, i.e. thresholding the squared Euclidean distance transform (EDT) at `r^2`. The EDT is
//! computed separably and exactly (Felzenszwalb & Huttenlocher's lower envelope of parabolas, as in Meijster
//! et al.): one integer pass along `k`, then two weighted passes along `i` and `j` inside each slice. Every pass
//! is `O(n)` per line, so the time is bounded by a constant times the number of voxels whatever `r`.
//!
//! What makes it fast on bone masks:
//! - only *boundary* features are sites (a feature voxel with a 6-neighbour of the other value): the nearest
//!   feature of a non-feature voxel is always on the boundary, so the sites form a thin surface and most lines of
//!   the later passes hold no site and are skipped;
//! - for morphology only distances up to `r` matter: the `k` distances are capped and stored in the narrowest
//!   integer type (`u8` for any practical radius), sites above `r^2` are dropped, each parabola is evaluated only
//!   where it can be below `r^2`, and the `j` pass only visits the row clusters of each 8-column block that hold
//!   values. Small radii are therefore cheaper than large ones, up to the `O(n)` bound;
//! - the `k` pass writes a `j`-major layout (`(j * nz + k) * nx + i`), so each `j` plane is one contiguous chunk for
//!   a rayon task and each slice pass reads contiguous rows; `f64` squared distances exist for one slice per thread
//!   only. Everything is parallel over planes or slices with no shared mutable state: results are identical for
//!   any thread count.
//!
//! [`squared_edt_mm2`] returns the full exact transform (one `f64` per voxel, no clamp), which is much slower than
//! the thresholded morphology and meant for distance queries, not for routine segmentation.
//!
//! Ties: a voxel whose centre is at exactly `r` from a feature is inside the ball. To make this hold despite
//! rounding (spacings like 0.488281 mm are not exact in binary), comparisons use `r^2 * (1 + 1e-9)`.
//!
//! Border policy. [`dilate_mm`] and [`erode_mm`] take an explicit [`Outside`]. [`close_mm`] and [`open_mm`] are
//! computed on the image extended beyond the grid by replicating its border voxels (an implicit pad of `2r`,
//! after which the result is cropped back), which models "the anatomy continues beyond the field of view as it is
//! at the edge". Consequences: bone cut by the field of view is neither eroded by a closing (the concern with
//! treating the outside as background) nor grown towards the border when it merely comes within `r` of it (the
//! artefact of treating the outside as foreground during the erosion), and an opening does not round off bone
//! where it leaves the scan. Closing stays extensive and opening anti-extensive on the grid, because they are on
//! the extended image. The price is the memory and time of the padded grid (a few percent for `r` of 1 to 2 mm).

use super::error::SegmentError;
use super::mask::Mask;
use crate::grid::GridGeometry;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Relative tolerance on `r^2`: centres at exactly `r` count as inside the ball despite rounding.
const RADIUS_REL_TOL: f64 = 1e-9;

/// What [`dilate_mm`] and [`erode_mm`] assume about the voxels outside the grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outside {
    /// Nothing outside the grid: a dilation never grows from the border, an erosion eats inwards from it.
    Background,
    /// Everything outside the grid is foreground: a dilation grows `r` inwards from the border, an erosion never
    /// eats from it.
    Foreground,
}

/// Squared Euclidean distance, in mm^2, from each voxel centre to the nearest centre of a voxel whose value is
/// `feature` (0 on those voxels; `f64::INFINITY` everywhere if there is none). Voxels outside the grid are never
/// features. Exact for anisotropic spacing; one `f64` per voxel.
pub fn squared_edt_mm2(mask: &Mask, feature: bool) -> Vec<f64> {
    let g = mask.geometry();
    let [nx, ny, nz] = g.dims;
    let mut out = vec![0.0f64; g.len()];
    if g.is_empty() {
        return out;
    }
    let f = u8::from(feature);
    let cap = nz.min(u32::MAX as usize - 1) as u32;
    let cols = column_pass::<u32>(mask.as_bytes(), g.dims, f, cap);
    let src = mask.as_bytes();
    let spacing = g.spacing_mm;
    out.par_chunks_mut(nx * ny)
        .enumerate()
        .for_each_init(Scratch::default, |s, (k, slice)| {
            slice_pass(&cols, [nx, ny, nz], spacing, k, f64::INFINITY, s, |j, d| {
                let base = (k * ny + j) * nx;
                let (orow, srow) = (&mut slice[j * nx..][..nx], &src[base..base + nx]);
                for ((o, &d2), &m) in orow.iter_mut().zip(d).zip(srow) {
                    // Features inside the feature set were not sites (see `column_pass`): their distance is 0.
                    *o = if m == f { 0.0 } else { d2 };
                }
            });
        });
    out
}

/// Dilation by the ball of radius `radius_mm`: voxels whose centre lies within `radius_mm` of a foreground voxel
/// centre become foreground. With [`Outside::Foreground`], voxels within `radius_mm` of the outside do too.
pub fn dilate_mm(mask: &Mask, radius_mm: f64, outside: Outside) -> Result<Mask, SegmentError> {
    let r2 = radius_sq("dilation", radius_mm)?;
    if radius_mm == 0.0 {
        return Ok(mask.clone());
    }
    Ok(ball_op(mask, r2, Op::Dilate, outside == Outside::Foreground))
}

/// Erosion by the ball of radius `radius_mm`: a foreground voxel stays foreground when no background voxel centre
/// lies within `radius_mm` of its centre. With [`Outside::Background`], voxels within `radius_mm` of the outside
/// are removed too.
pub fn erode_mm(mask: &Mask, radius_mm: f64, outside: Outside) -> Result<Mask, SegmentError> {
    let r2 = radius_sq("erosion", radius_mm)?;
    if radius_mm == 0.0 {
        return Ok(mask.clone());
    }
    Ok(ball_op(mask, r2, Op::Erode, outside == Outside::Background))
}

/// Closing (dilation then erosion) by the ball of radius `radius_mm`: fills gaps and notches narrower than about
/// `2 * radius_mm`, keeps convex shapes. Computed on the border-replicated extension of the image (module docs).
pub fn close_mm(mask: &Mask, radius_mm: f64) -> Result<Mask, SegmentError> {
    let r2 = radius_sq("closing", radius_mm)?;
    if radius_mm == 0.0 || !mask.any() {
        return Ok(mask.clone());
    }
    let pad = pad_for(mask.geometry(), r2);
    check_padding("closing", radius_mm, mask.geometry(), pad)?;
    let padded = pad_replicate(mask, pad)?;
    let dilated = ball_op(&padded, r2, Op::Dilate, false);
    drop(padded);
    let closed = ball_op(&dilated, r2, Op::Erode, false);
    drop(dilated);
    Ok(crop_padding(&closed, mask.geometry(), pad))
}

/// Opening (erosion then dilation) by the ball of radius `radius_mm`: removes specks and bridges thinner than
/// about `2 * radius_mm`. Computed on the border-replicated extension of the image (module docs).
pub fn open_mm(mask: &Mask, radius_mm: f64) -> Result<Mask, SegmentError> {
    let r2 = radius_sq("opening", radius_mm)?;
    if radius_mm == 0.0 || !mask.any() {
        return Ok(mask.clone());
    }
    let pad = pad_for(mask.geometry(), r2);
    check_padding("opening", radius_mm, mask.geometry(), pad)?;
    let padded = pad_replicate(mask, pad)?;
    let eroded = ball_op(&padded, r2, Op::Erode, false);
    drop(padded);
    let opened = ball_op(&eroded, r2, Op::Dilate, false);
    drop(eroded);
    Ok(crop_padding(&opened, mask.geometry(), pad))
}

/// `r^2` with the tie tolerance, after checking the radius.
pub(crate) fn radius_sq(what: &'static str, radius_mm: f64) -> Result<f64, SegmentError> {
    if !radius_mm.is_finite() || !(0.0..=MAX_RADIUS_MM).contains(&radius_mm) {
        return Err(SegmentError::InvalidRadius { what, radius_mm });
    }
    Ok(radius_mm * radius_mm * (1.0 + RADIUS_REL_TOL))
}

/// Largest accepted radius: larger than any anatomy a CT holds, small enough to keep every size computation
/// far from overflow.
pub const MAX_RADIUS_MM: f64 = 1000.0;

/// Largest number of voxel steps `n` of length `step_mm` with `(n * step_mm)^2 <= r2`, saturating at 2^31.
fn max_steps(r2: f64, step_mm: f64) -> usize {
    const LIMIT: usize = 1 << 31;
    let estimate = (r2.sqrt() / step_mm).floor();
    if estimate.is_nan() || estimate >= LIMIT as f64 {
        return LIMIT;
    }
    let mut n = estimate as usize;
    while n > 0 && (n as f64 * step_mm).powi(2) > r2 {
        n -= 1;
    }
    while n < LIMIT && ((n + 1) as f64 * step_mm).powi(2) <= r2 {
        n += 1;
    }
    n
}

/// Refuses a closing or opening whose padded grid would exceed four times the original voxel count (and 2^24
/// voxels, so that small grids may be padded freely).
fn check_padding(what: &'static str, radius_mm: f64, g: &GridGeometry, pad: [usize; 3]) -> Result<(), SegmentError> {
    let padded = (0..3).try_fold(1usize, |acc, a| {
        g.dims[a]
            .checked_add(pad[a].saturating_mul(2))
            .and_then(|n| acc.checked_mul(n))
    });
    match padded {
        Some(n) if n / 4 <= g.len() || n <= 1 << 24 => Ok(()),
        _ => Err(SegmentError::RadiusTooLarge {
            what,
            radius_mm,
            dims: g.dims,
        }),
    }
}

/// Padding per axis that makes a closing or opening on the padded grid exact on the original grid: dilation
/// values are read up to `r` outside the grid and depend on features up to `2r` outside.
fn pad_for(g: &GridGeometry, r2: f64) -> [usize; 3] {
    let two_r2 = 4.0 * r2;
    [0, 1, 2].map(|a| max_steps(two_r2, g.spacing_mm[a]) + 1)
}

/// The mask extended by `pad` voxels on each side of each axis, outer voxels copying the nearest border voxel.
fn pad_replicate(mask: &Mask, pad: [usize; 3]) -> Result<Mask, SegmentError> {
    let g = mask.geometry();
    let [nx, ny, nz] = g.dims;
    let dims = [nx + 2 * pad[0], ny + 2 * pad[1], nz + 2 * pad[2]];
    let origin = g.to_patient([-(pad[0] as f64), -(pad[1] as f64), -(pad[2] as f64)]);
    let geometry = GridGeometry {
        dims,
        spacing_mm: g.spacing_mm,
        origin_mm: origin.coords.into(),
        axes: g.axes,
    };
    let mut out = Mask::empty(geometry)?;
    let src = mask.as_bytes();
    let (px, py, pz) = (pad[0], pad[1], pad[2]);
    out.bytes_mut()
        .par_chunks_mut(dims[0] * dims[1])
        .enumerate()
        .for_each(|(kk, slice)| {
            let k = kk.saturating_sub(pz).min(nz - 1);
            for (jj, row) in slice.chunks_mut(dims[0]).enumerate() {
                let j = jj.saturating_sub(py).min(ny - 1);
                let s = &src[(k * ny + j) * nx..][..nx];
                row[..px].fill(s[0]);
                row[px..px + nx].copy_from_slice(s);
                row[px + nx..].fill(s[nx - 1]);
            }
        });
    Ok(out)
}

/// The original-grid part of a mask padded by `pad`.
fn crop_padding(padded: &Mask, original: &GridGeometry, pad: [usize; 3]) -> Mask {
    let [nx, ny, _] = original.dims;
    let pd = padded.geometry().dims;
    let src = padded.as_bytes();
    let mut out = vec![0u8; original.len()];
    out.par_chunks_mut(nx * ny).enumerate().for_each(|(k, slice)| {
        for (j, row) in slice.chunks_mut(nx).enumerate() {
            let start = ((k + pad[2]) * pd[1] + j + pad[1]) * pd[0] + pad[0];
            row.copy_from_slice(&src[start..start + nx]);
        }
    });
    Mask::from_raw(original.clone(), out)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Dilate,
    Erode,
}

/// Dilation (features = foreground) or erosion (features = background) at squared radius `r2`; `near_border`
/// also counts the outside of the grid as features.
fn ball_op(mask: &Mask, r2: f64, op: Op, near_border: bool) -> Mask {
    let g = mask.geometry();
    let [nx, ny, nz] = g.dims;
    let mut out = vec![0u8; g.len()];
    if g.is_empty() {
        return Mask::from_raw(g.clone(), out);
    }
    let feature = match op {
        Op::Dilate => 1,
        Op::Erode => 0,
    };
    let cap = max_steps(r2, g.spacing_mm[2]).min(nz).min(u32::MAX as usize - 1) as u32;
    let spacing = g.spacing_mm;
    // Squared distance to the outside along each axis, from each index.
    let border: [Vec<f64>; 3] = [0, 1, 2].map(|a| {
        let n = g.dims[a];
        (0..n)
            .map(|c| ((c + 1).min(n - c) as f64 * spacing[a]).powi(2))
            .collect()
    });
    let src = mask.as_bytes();
    // Voxels that are features keep their value; the others are `near` when a feature (or, with `near_border`,
    // the outside) lies within the radius. Dilation: result = m | near; erosion: result = m & !near.
    let emit = |k: usize, slice: &mut [u8], j: usize, d: &[f64]| {
        let base = (k * ny + j) * nx;
        let srow = &src[base..base + nx];
        let orow = &mut slice[j * nx..][..nx];
        let by = border[1][j].min(border[2][k]);
        // Dilation: m | near; erosion: m & !near. As one branch-free expression with `grow` = 1 for dilation:
        // (m & !near) | (near & grow). Non-short-circuit operators, so the loop vectorises.
        let grow = u8::from(op == Op::Dilate);
        for (((o, &d2), &m), &bx) in orow.iter_mut().zip(d).zip(srow).zip(&border[0]) {
            let near = u8::from((d2 <= r2) | (near_border & (bx.min(by) <= r2)));
            *o = (m & (near ^ 1)) | (near & grow);
        }
    };
    // The narrowest integer type that holds the capped distances: the column array is the largest buffer.
    if cap < u32::from(u8::MAX) {
        let cols = column_pass::<u8>(src, g.dims, feature, cap as u8);
        out.par_chunks_mut(nx * ny)
            .enumerate()
            .for_each_init(Scratch::default, |s, (k, slice)| {
                slice_pass(&cols, [nx, ny, nz], spacing, k, r2, s, |j, d| emit(k, slice, j, d));
            });
    } else if cap < u32::from(u16::MAX) {
        let cols = column_pass::<u16>(src, g.dims, feature, cap as u16);
        out.par_chunks_mut(nx * ny)
            .enumerate()
            .for_each_init(Scratch::default, |s, (k, slice)| {
                slice_pass(&cols, [nx, ny, nz], spacing, k, r2, s, |j, d| emit(k, slice, j, d));
            });
    } else {
        let cols = column_pass::<u32>(src, g.dims, feature, cap);
        out.par_chunks_mut(nx * ny)
            .enumerate()
            .for_each_init(Scratch::default, |s, (k, slice)| {
                slice_pass(&cols, [nx, ny, nz], spacing, k, r2, s, |j, d| emit(k, slice, j, d));
            });
    }
    Mask::from_raw(g.clone(), out)
}

/// Integer distance along `k`, capped: values above the cap are stored as `INF`.
trait ColumnDistance: Copy + Default + Send + Sync + PartialOrd + std::ops::BitAnd<Output = Self> {
    const INF: Self;
    fn to_u32(self) -> u32;
    /// `self + 1`, or `INF` when that exceeds `cap` (`cap < INF`).
    fn inc_capped(self, cap: Self) -> Self;
}

/// The three widths share one implementation: saturating increment, capped to `INF`.
macro_rules! impl_column_distance {
    ($($t:ty),*) => {$(
        impl ColumnDistance for $t {
            const INF: Self = <$t>::MAX;
            #[inline]
            fn to_u32(self) -> u32 {
                u32::from(self)
            }
            #[inline]
            fn inc_capped(self, cap: Self) -> Self {
                let n = self.saturating_add(1);
                if n > cap {
                    Self::INF
                } else {
                    n
                }
            }
        }
    )*};
}

impl_column_distance!(u8, u16, u32);

/// Marks in `out` the voxels of row `(k, j)` that are *boundary features*: value `feature` with at least one
/// 6-neighbour inside the grid of the other value.
///
/// Only boundary features need to be sites of the distance transform: if `y` is the feature nearest to a
/// non-feature `x`, the neighbour of `y` one step towards `x` along any axis where they differ is nearer to `x`,
/// hence a non-feature, so `y` is on the boundary. Interior features are handled by the callers (distance 0).
/// This makes the site set a thin surface, so most lines of the later passes are empty and skipped.
fn boundary_row(bytes: &[u8], dims: [usize; 3], k: usize, j: usize, feature: u8, out: &mut [u8]) {
    let [nx, ny, nz] = dims;
    let row = |kk: usize, jj: usize| &bytes[(kk * ny + jj) * nx..][..nx];
    let cur = row(k, j);
    // other[i] = 1 where a neighbour in another row has the other value.
    out.fill(0);
    let mut mark = |r: &[u8]| {
        for (o, &v) in out.iter_mut().zip(r) {
            *o |= v ^ feature;
        }
    };
    if j > 0 {
        mark(row(k, j - 1));
    }
    if j + 1 < ny {
        mark(row(k, j + 1));
    }
    if k > 0 {
        mark(row(k - 1, j));
    }
    if k + 1 < nz {
        mark(row(k + 1, j));
    }
    if nx > 1 {
        for (o, &v) in out[1..].iter_mut().zip(&cur[..nx - 1]) {
            *o |= v ^ feature;
        }
        for (o, &v) in out[..nx - 1].iter_mut().zip(&cur[1..]) {
            *o |= v ^ feature;
        }
    }
    for (o, &v) in out.iter_mut().zip(cur) {
        *o &= (v ^ feature) ^ 1;
    }
}

/// Distances along `k` (see [`column_pass`]), with a flag per row telling whether it holds any finite value.
struct ColumnDistances<T> {
    /// Layout `(j * nz + k) * nx + i`.
    dist: Vec<T>,
    /// Layout `j * nz + k`.
    row_has_site: Vec<bool>,
}

/// Distance in slices from each voxel to the nearest boundary feature (see [`boundary_row`]) in the same `(i, j)`
/// column, `INF` when none lies within `cap` slices (`cap < INF`). The output is `j`-major so that each `j` plane
/// is one contiguous chunk for a rayon task.
fn column_pass<T: ColumnDistance>(bytes: &[u8], dims: [usize; 3], feature: u8, cap: T) -> ColumnDistances<T> {
    let [nx, ny, nz] = dims;
    let mut dist = vec![T::default(); nx * ny * nz];
    let mut row_has_site = vec![false; ny * nz];
    dist.par_chunks_mut(nz * nx)
        .zip(row_has_site.par_chunks_mut(nz))
        .enumerate()
        .for_each_init(Vec::new, |sites: &mut Vec<u8>, (j, (plane, flags))| {
            sites.resize(nx, 0);
            for k in 0..nz {
                boundary_row(bytes, dims, k, j, feature, sites);
                let (before, rest) = plane.split_at_mut(k * nx);
                let row = &mut rest[..nx];
                if k == 0 {
                    for (d, &b) in row.iter_mut().zip(sites.iter()) {
                        *d = if b != 0 { T::default() } else { T::INF };
                    }
                } else {
                    forward_row(row, sites, &before[(k - 1) * nx..], cap);
                }
            }
            // INF is all ones, so a row is empty exactly when the AND of its values is INF.
            if let Some(last) = flags.last_mut() {
                let row = &plane[(nz - 1) * nx..];
                *last = row.iter().fold(T::INF, |a, &b| a & b) != T::INF;
            }
            for k in (0..nz.saturating_sub(1)).rev() {
                let (head, tail) = plane.split_at_mut((k + 1) * nx);
                flags[k] = backward_row(&mut head[k * nx..], &tail[..nx], cap) != T::INF;
            }
        });
    ColumnDistances { dist, row_has_site }
}

/// `row = site ? 0 : prev + 1` (capped); a separate function so that every operand is a register or a
/// non-aliasing slice and the loop vectorises.
#[inline(never)]
fn forward_row<T: ColumnDistance>(row: &mut [T], sites: &[u8], prev: &[T], cap: T) {
    for ((d, &b), &p) in row.iter_mut().zip(sites).zip(prev) {
        let n = p.inc_capped(cap);
        *d = if b != 0 { T::default() } else { n };
    }
}

/// `row = min(row, next + 1)` (capped); returns the AND of the new row (INF when it is empty).
#[inline(never)]
fn backward_row<T: ColumnDistance>(row: &mut [T], next: &[T], cap: T) -> T {
    let mut all = T::INF;
    for (d, &n) in row.iter_mut().zip(next) {
        let c = n.inc_capped(cap);
        let v = if c < *d { c } else { *d };
        *d = v;
        all = all & v;
    }
    all
}

/// Columns processed together in the `j` pass: one 64-byte cache line of `f64`, so that the slice buffer is read
/// line by line instead of with a (power-of-two, cache-aliasing) stride of a whole row.
const BLOCK: usize = 8;

/// Per-thread buffers of the slice pass.
#[derive(Default)]
struct Scratch {
    /// Squared distances of the current slice, `j * nx + i`.
    d: Vec<f64>,
    /// Per row `j`: the range of `i` holding finite values after the `i` pass, if any.
    row_range: Vec<Option<(usize, usize)>>,
    /// `BLOCK` columns of `d` as contiguous lines, before and after the `j` pass.
    cols_in: Vec<f64>,
    cols_out: Vec<f64>,
    line_in: Vec<f64>,
    sites: Vec<usize>,
    bounds: Vec<f64>,
}

/// Squared distances (mm^2) to the sites of slice `k`, from the column distances `cols`, handed row by row to
/// `emit(j, d)` with `d[i]` for voxel `(i, j, k)`. Values above `clamp` may be reported as infinity (they cannot
/// come back below it): the passes then only visit the neighbourhood of the sites.
#[allow(clippy::too_many_arguments)]
fn slice_pass<T: ColumnDistance>(
    cols: &ColumnDistances<T>,
    dims: [usize; 3],
    spacing: [f64; 3],
    k: usize,
    clamp: f64,
    s: &mut Scratch,
    mut emit: impl FnMut(usize, &[f64]),
) {
    let [nx, ny, nz] = dims;
    let (wx, wy, wz) = (
        spacing[0] * spacing[0],
        spacing[1] * spacing[1],
        spacing[2] * spacing[2],
    );
    s.d.clear();
    s.d.resize(nx * ny, f64::INFINITY);
    s.row_range.clear();
    s.row_range.resize(ny, None);
    let len = nx.max(ny);
    s.line_in.resize(len, 0.0);
    s.sites.resize(len, 0);
    s.bounds.resize(len + 1, 0.0);

    // Pass along i, row by row, on the rows with a site.
    for j in 0..ny {
        if !cols.row_has_site[j * nz + k] {
            continue;
        }
        let src = &cols.dist[(j * nz + k) * nx..][..nx];
        let Some(first) = src.iter().position(|&c| c != T::INF) else {
            continue;
        };
        let last = src.iter().rposition(|&c| c != T::INF).unwrap_or(first);
        let line = &mut s.line_in[..last + 1 - first];
        for (f, &c) in line.iter_mut().zip(&src[first..=last]) {
            *f = if c == T::INF {
                f64::INFINITY
            } else {
                let g = c.to_u32() as f64;
                g * g * wz
            };
        }
        let drow = &mut s.d[j * nx..(j + 1) * nx];
        s.row_range[j] = lower_envelope(line, first, wx, clamp, drow, 0, &mut s.sites, &mut s.bounds);
    }

    // Pass along j, BLOCK columns at a time, on the rows that have finite values in the block.
    let reach_j = if clamp.is_finite() {
        max_steps(clamp, spacing[1])
    } else {
        ny
    };
    for i0 in (0..nx).step_by(BLOCK) {
        let w = BLOCK.min(nx - i0);
        // Rows with finite values in this block, grouped into clusters separated by more than 2 * reach_j rows:
        // no parabola of one cluster reaches (below the clamp) the output window of another, so each cluster is
        // transformed on its own and the empty rows between them are never touched.
        let mut j = 0;
        while j < ny {
            let hits = |j: usize| matches!(s.row_range[j], Some((lo, hi)) if lo < i0 + w && hi >= i0);
            if !hits(j) {
                j += 1;
                continue;
            }
            let ja = j;
            let mut jb = j;
            j += 1;
            while j < ny && j <= jb.saturating_add(reach_j.saturating_mul(2)).saturating_add(1) {
                if hits(j) {
                    jb = j;
                }
                j += 1;
            }
            j = jb + 1;
            transform_columns(s, nx, ny, i0, w, ja, jb, reach_j, wy, clamp);
        }
    }
    for j in 0..ny {
        emit(j, &s.d[j * nx..(j + 1) * nx]);
    }
}

/// `x.ceil()` for finite `|x| < 2^53` without a libm call (the baseline x86-64 target has no rounding
/// instruction).
#[inline]
fn ceil(x: f64) -> f64 {
    let t = x as i64 as f64;
    if t < x {
        t + 1.0
    } else {
        t
    }
}

/// `x.floor()`, see [`ceil`].
#[inline]
fn floor(x: f64) -> f64 {
    let t = x as i64 as f64;
    if t > x {
        t - 1.0
    } else {
        t
    }
}

/// The `j` pass on columns `i0..i0 + w` of `s.d`, for the sites in rows `ja..=jb`, writing rows
/// `ja - reach_j ..= jb + reach_j` (clipped to the grid).
#[allow(clippy::too_many_arguments)]
fn transform_columns(
    s: &mut Scratch,
    nx: usize,
    ny: usize,
    i0: usize,
    w: usize,
    ja: usize,
    jb: usize,
    reach_j: usize,
    wy: f64,
    clamp: f64,
) {
    let n_in = jb + 1 - ja;
    let (oa, ob) = (
        ja.saturating_sub(reach_j),
        jb.saturating_add(reach_j).saturating_add(1).min(ny),
    );
    let n_out = ob - oa;
    // Line strides padded to an odd length: a power-of-two stride would map the BLOCK lines of one `j` to the
    // same cache set.
    let (st_in, st_out) = (n_in | 1, n_out | 1);
    s.cols_in.resize(BLOCK * st_in, 0.0);
    s.cols_out.clear();
    s.cols_out.resize(BLOCK * st_out, f64::INFINITY);
    for j in ja..=jb {
        for (c, &v) in s.d[j * nx + i0..j * nx + i0 + w].iter().enumerate() {
            s.cols_in[c * st_in + j - ja] = v;
        }
    }
    for c in 0..w {
        let line = &s.cols_in[c * st_in..c * st_in + n_in];
        let out = &mut s.cols_out[c * st_out..c * st_out + n_out];
        lower_envelope(line, ja, wy, clamp, out, oa, &mut s.sites, &mut s.bounds);
    }
    for j in oa..ob {
        for (c, v) in s.d[j * nx + i0..j * nx + i0 + w].iter_mut().enumerate() {
            *v = s.cols_out[c * st_out + j - oa];
        }
    }
}

/// One-dimensional squared distance transform (Felzenszwalb & Huttenlocher), `O(n)`: for the sites `q` with
/// finite `f[q - f_start]`, lowers `out[x - out_start]` to `w * (x - q)^2 + f[q - f_start]` wherever that is the
/// lower envelope and `<= clamp`; `out` must come in initialised (infinity). Each parabola is only evaluated where
/// it can be `<= clamp`, so a line with a few sites costs little more than its sites. Returns the range of `x`
/// written. `sites` and `bounds` are scratch of length `>= f.len()` and `>= f.len() + 1`.
#[allow(clippy::too_many_arguments)]
fn lower_envelope(
    f: &[f64],
    f_start: usize,
    w: f64,
    clamp: f64,
    out: &mut [f64],
    out_start: usize,
    sites: &mut [usize],
    bounds: &mut [f64],
) -> Option<(usize, usize)> {
    let first = f.iter().position(|&v| v.is_finite() && v <= clamp)?;
    // Abscissa where the parabolas rooted at p and q (p < q, indices into f) intersect, in f indices.
    let meet = |p: usize, q: usize| -> f64 {
        let (pf, qf) = (p as f64, q as f64);
        ((f[q] + w * qf * qf) - (f[p] + w * pf * pf)) / (2.0 * w * (qf - pf))
    };
    let mut top = 0;
    sites[0] = first;
    bounds[0] = f64::NEG_INFINITY;
    bounds[1] = f64::INFINITY;
    // A site above the clamp cannot lower any output below it: leaving it out changes nothing we report.
    let usable = |v: f64| v.is_finite() && v <= clamp;
    for (q, _) in f.iter().enumerate().skip(first + 1).filter(|&(_, &v)| usable(v)) {
        let mut s = meet(sites[top], q);
        while s <= bounds[top] {
            // bounds[0] is -inf, so `top` never underflows.
            top -= 1;
            s = meet(sites[top], q);
        }
        top += 1;
        sites[top] = q;
        bounds[top] = s;
        bounds[top + 1] = f64::INFINITY;
    }
    // Output window in f-index coordinates (may start below 0).
    let shift = out_start as f64 - f_start as f64;
    let (wlo, whi) = (shift, shift + out.len() as f64 - 1.0);
    let mut written: Option<(usize, usize)> = None;
    for t in 0..=top {
        let q = sites[t];
        let fq = f[q];
        if fq > clamp {
            continue;
        }
        let reach = ((clamp - fq) / w).sqrt();
        let qf = q as f64;
        let lo = ceil(bounds[t].max(qf - reach).max(wlo));
        let hi = floor(bounds[t + 1].min(qf + reach).min(whi));
        if lo > hi {
            continue;
        }
        // x (f coordinates) in lo..=hi maps to out index x - shift, which is within 0..out.len().
        let (a, b) = ((lo - shift) as usize, (hi - shift) as usize);
        let dx0 = a as f64 + shift - qf;
        for (xi, o) in out[a..=b].iter_mut().enumerate() {
            let dx = dx0 + xi as f64;
            let v = w * dx * dx + fq;
            if v < *o {
                *o = v;
            }
        }
        let (ga, gb) = (a + out_start, b + out_start);
        written = Some(written.map_or((ga, gb), |(x, y)| (x.min(ga), y.max(gb))));
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn lcg_mask(g: GridGeometry, percent: u64, seed: u64) -> Result<Mask, SegmentError> {
        let mut state = seed;
        let bytes = (0..g.len())
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                u8::from((state >> 33) % 100 < percent)
            })
            .collect();
        Mask::from_bytes(g, bytes)
    }

    fn brute_edt(mask: &Mask, feature: bool) -> Vec<f64> {
        let g = mask.geometry();
        let s = g.spacing_mm;
        let feats: Vec<[usize; 3]> = (0..g.len())
            .filter(|&x| (mask.as_bytes()[x] == 1) == feature)
            .map(|x| g.ijk(x))
            .collect();
        (0..g.len())
            .map(|x| {
                let p = g.ijk(x);
                feats
                    .iter()
                    .map(|q| {
                        (0..3)
                            .map(|a| ((p[a] as f64 - q[a] as f64) * s[a]).powi(2))
                            .sum::<f64>()
                    })
                    .fold(f64::INFINITY, f64::min)
            })
            .collect()
    }

    fn brute_dilate(mask: &Mask, r: f64) -> Vec<u8> {
        brute_edt(mask, true)
            .iter()
            .map(|&d| u8::from(d <= r * r * (1.0 + RADIUS_REL_TOL)))
            .collect()
    }

    #[test]
    fn edt_matches_brute_force_anisotropic() -> TestResult {
        let spacings = [[0.5, 0.5, 1.25], [1.0, 0.3, 0.7], [0.488281, 0.488281, 0.625]];
        for (n, sp) in spacings.iter().enumerate() {
            for (percent, seed) in [(3u64, 11u64), (20, 12), (70, 13)] {
                let g = GridGeometry::axis_aligned([9, 7, 8], *sp, [0.0; 3]);
                let mask = lcg_mask(g, percent, seed + n as u64)?;
                for feature in [true, false] {
                    let fast = squared_edt_mm2(&mask, feature);
                    let slow = brute_edt(&mask, feature);
                    for (a, b) in fast.iter().zip(&slow) {
                        assert!(
                            (a.is_infinite() && b.is_infinite()) || (a - b).abs() <= 1e-9 * b.max(1.0),
                            "{a} vs {b} (spacing {sp:?}, {percent}%)"
                        );
                    }
                }
            }
        }
        // No feature at all.
        let g = GridGeometry::axis_aligned([3, 3, 3], [1.0; 3], [0.0; 3]);
        assert!(squared_edt_mm2(&Mask::empty(g)?, true).iter().all(|d| d.is_infinite()));
        Ok(())
    }

    #[test]
    fn dilate_and_erode_match_brute_force() -> TestResult {
        let g = GridGeometry::axis_aligned([11, 9, 10], [0.6, 0.8, 1.3], [0.0; 3]);
        for (percent, seed) in [(2u64, 1u64), (10, 2), (50, 3), (85, 4)] {
            let mask = lcg_mask(g.clone(), percent, seed)?;
            for r in [0.6, 1.0, 1.3, 2.5] {
                let dil = dilate_mm(&mask, r, Outside::Background)?;
                assert_eq!(
                    dil.as_bytes(),
                    brute_dilate(&mask, r).as_slice(),
                    "dilate {r} {percent}%"
                );
                // Erosion with the outside as foreground is the complement of dilating the complement.
                let mut inv = mask.clone();
                inv.invert();
                let mut expected = Mask::from_bytes(g.clone(), brute_dilate(&inv, r))?;
                expected.invert();
                let ero = erode_mm(&mask, r, Outside::Foreground)?;
                assert_eq!(ero, expected, "erode {r} {percent}%");
            }
        }
        Ok(())
    }

    #[test]
    fn radius_exactly_on_a_voxel_counts() -> TestResult {
        // Spacing 0.3 is not exact in binary: a ball of radius 0.6 must still reach two voxels along i.
        let g = GridGeometry::axis_aligned([9, 3, 3], [0.3, 1.0, 1.0], [0.0; 3]);
        let mask = Mask::from_fn(g, |v| v == [4, 1, 1])?;
        let d = dilate_mm(&mask, 0.6, Outside::Background)?;
        assert_eq!(d.count(), 5);
        assert!(d.get(2, 1, 1) && d.get(6, 1, 1) && !d.get(1, 1, 1));
        Ok(())
    }

    #[test]
    fn border_policies() -> TestResult {
        let g = GridGeometry::axis_aligned([10, 10, 10], [1.0; 3], [0.0; 3]);
        let full = Mask::full(g.clone())?;
        assert_eq!(erode_mm(&full, 2.0, Outside::Foreground)?, full);
        // Outside as background: the two outer layers go.
        assert_eq!(erode_mm(&full, 2.0, Outside::Background)?.count(), 6 * 6 * 6);
        let empty = Mask::empty(g)?;
        assert_eq!(dilate_mm(&empty, 2.0, Outside::Background)?, empty);
        assert_eq!(dilate_mm(&empty, 1.0, Outside::Foreground)?.count(), 1000 - 8 * 8 * 8);
        assert!(matches!(
            dilate_mm(&empty, -1.0, Outside::Background),
            Err(SegmentError::InvalidRadius { what: "dilation", .. })
        ));
        assert!(close_mm(&empty, f64::NAN).is_err());
        assert!(matches!(
            dilate_mm(&empty, 1e300, Outside::Background),
            Err(SegmentError::InvalidRadius { .. })
        ));
        // A radius whose 2r padding would multiply the grid is refused before any allocation.
        let mut one = empty.clone();
        one.set(5, 5, 5, true)?;
        assert!(matches!(
            close_mm(&one, 500.0),
            Err(SegmentError::RadiusTooLarge { what: "closing", .. })
        ));
        Ok(())
    }

    #[test]
    fn closing_fills_a_narrow_gap_and_keeps_a_ball() -> TestResult {
        let g = GridGeometry::axis_aligned([40, 30, 30], [0.5, 0.5, 0.8], [0.0; 3]);
        // Two slabs along i separated by a gap of 3 voxels = 1.5 mm.
        let slabs = Mask::from_fn(g.clone(), |[i, j, k]| {
            (5..35).contains(&j) && (5..25).contains(&k) && ((5..18).contains(&i) || (21..35).contains(&i))
        })?;
        assert!(!slabs.get(19, 10, 10));
        let closed = close_mm(&slabs, 1.0)?; // 2r = 2 mm > 1.5 mm
        assert!(closed.get(18, 10, 10) && closed.get(19, 10, 10) && closed.get(20, 10, 10));
        let not_closed = close_mm(&slabs, 0.7)?; // 2r = 1.4 mm < 1.5 mm
        assert!(!not_closed.get(19, 10, 10));

        let c = [20.0 * 0.5, 15.0 * 0.5, 15.0 * 0.8];
        let ball = Mask::from_fn(g.clone(), |[i, j, k]| {
            let d = [i as f64 * 0.5 - c[0], j as f64 * 0.5 - c[1], k as f64 * 0.8 - c[2]];
            d[0] * d[0] + d[1] * d[1] + d[2] * d[2] <= 16.0
        })?;
        let closed = close_mm(&ball, 1.5)?;
        let grown = closed.count() - ball.count();
        // Closing is extensive; on a digital ball it may add a few voxels in the staircase, never many.
        assert!(grown * 100 <= ball.count(), "closing added {grown} of {}", ball.count());
        let mut check = ball.clone();
        check.subtract(&closed)?;
        assert_eq!(check.count(), 0);
        Ok(())
    }

    #[test]
    fn opening_removes_specks() -> TestResult {
        let g = GridGeometry::axis_aligned([40, 40, 20], [0.5, 0.5, 1.0], [0.0; 3]);
        let big = |[i, j, k]: [usize; 3]| (10..30).contains(&i) && (10..30).contains(&j) && (5..15).contains(&k);
        // Single voxels and a 3 x 3 x 1 speck (1.5 mm x 1.5 mm x 1 mm): all thinner than 2r = 2 mm.
        let plate = |[i, j, k]: [usize; 3]| (3..=5).contains(&i) && (29..=31).contains(&j) && k == 8;
        let mut specks = vec![[3usize, 3, 3], [35, 35, 10], [34, 4, 15]];
        specks.extend((3..=5).flat_map(|i| (29..=31).map(move |j| [i, j, 8])));
        let mask = Mask::from_fn(g.clone(), |v| big(v) || plate(v) || specks.contains(&v))?;
        let opened = open_mm(&mask, 1.0)?;
        assert!(specks.iter().all(|s| !opened.get(s[0], s[1], s[2])));
        let boxed = Mask::from_fn(g.clone(), big)?;
        let mut outside_box = opened.clone();
        outside_box.subtract(&boxed)?;
        assert_eq!(outside_box.count(), 0, "opening is anti-extensive");
        // The box survives, its faces included; only its edges and corners are rounded by the ball.
        let core = Mask::from_fn(g, |[i, j, k]| {
            (12..28).contains(&i) && (12..28).contains(&j) && (6..14).contains(&k)
                || (i == 10 || i == 29) && (14..26).contains(&j) && (7..13).contains(&k)
        })?;
        let mut missing = core.clone();
        missing.subtract(&opened)?;
        assert_eq!(missing.count(), 0);
        assert!(opened.count() * 10 > boxed.count() * 9);
        // A ball of 0.5 mm (a plus of 5 voxels in the slice) fits in the plate but not in single voxels.
        let opened_small = open_mm(&mask, 0.5)?;
        assert!(opened_small.get(4, 30, 8) && opened_small.get(3, 30, 8) && !opened_small.get(3, 29, 8));
        assert!(!opened_small.get(3, 3, 3));
        Ok(())
    }

    #[test]
    fn closing_a_ball_touching_the_border_does_not_shrink_it() -> TestResult {
        let g = GridGeometry::axis_aligned([30, 30, 20], [0.5, 0.5, 1.0], [0.0; 3]);
        // Ball centred on the i = 0 face, cut by the grid, and touching the k = 0 face too.
        let ball = Mask::from_fn(g, |[i, j, k]| {
            let d = [i as f64 * 0.5, (j as f64 - 15.0) * 0.5, k as f64 - 4.0];
            d[0] * d[0] + d[1] * d[1] + d[2] * d[2] <= 25.0
        })?;
        for r in [0.5, 1.0, 2.0] {
            let closed = close_mm(&ball, r)?;
            let mut lost = ball.clone();
            lost.subtract(&closed)?;
            assert_eq!(lost.count(), 0, "r = {r}");
            for j in 0..30 {
                for k in 0..20 {
                    assert_eq!(
                        closed.get(0, j, k),
                        ball.get(0, j, k),
                        "border face changed at j {j} k {k}"
                    );
                }
            }
            // Opening does not round off the cut face either.
            let opened = open_mm(&ball, r)?;
            assert!(
                (0..30).all(|j| (0..20).all(|k| !ball.get(0, j, k) || opened.get(0, j, k) || {
                    // Voxels of the cut face that lie at the ball's own rim may go; those deep inside may not.
                    let d = [(j as f64 - 15.0) * 0.5, k as f64 - 4.0];
                    d[0] * d[0] + d[1] * d[1] > (5.0 - 2.0 * r) * (5.0 - 2.0 * r)
                }))
            );
        }
        Ok(())
    }

    #[test]
    fn deterministic_across_thread_counts() -> TestResult {
        let g = GridGeometry::axis_aligned([23, 19, 29], [0.4, 0.4, 1.1], [0.0; 3]);
        let mask = lcg_mask(g, 40, 99)?;
        let mut outs = Vec::new();
        for n in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(n).build()?;
            outs.push(pool.install(|| -> Result<_, SegmentError> {
                Ok((
                    close_mm(&mask, 1.2)?,
                    open_mm(&mask, 0.9)?,
                    squared_edt_mm2(&mask, true),
                ))
            })?);
        }
        assert_eq!(outs[0], outs[1]);
        Ok(())
    }

    fn arb_mask() -> impl Strategy<Value = Mask> {
        (
            2usize..9,
            2usize..9,
            1usize..8,
            prop::sample::select(vec![0.4f64, 0.5, 0.75, 1.0, 1.3]),
            prop::sample::select(vec![0.5f64, 1.0, 2.0]),
        )
            .prop_flat_map(|(nx, ny, nz, sxy, sz)| {
                prop::collection::vec(prop::bool::weighted(0.4), nx * ny * nz).prop_map(move |bits| {
                    let g = GridGeometry::axis_aligned([nx, ny, nz], [sxy, sxy, sz], [0.0; 3]);
                    Mask::from_fn(g, |[i, j, k]| bits[(k * ny + j) * nx + i])
                })
            })
            .prop_filter_map("valid mask", |m| m.ok())
    }

    /// `mask` placed in the middle of a grid with `margin` empty voxels on each side of each axis.
    fn embed(mask: &Mask, margin: [usize; 3]) -> Result<Mask, SegmentError> {
        let g = mask.geometry();
        let dims = [0, 1, 2].map(|a| g.dims[a] + 2 * margin[a]);
        let big = GridGeometry::axis_aligned(dims, g.spacing_mm, [0.0; 3]);
        Mask::from_fn(big, |[i, j, k]| {
            i >= margin[0] && j >= margin[1] && k >= margin[2] && mask.get(i - margin[0], j - margin[1], k - margin[2])
        })
    }

    fn fail(e: SegmentError) -> TestCaseError {
        TestCaseError::fail(e.to_string())
    }

    proptest! {
        #![proptest_config(crate::testing::proptest_config(64))]

        #[test]
        fn closing_is_extensive_and_opening_anti_extensive(
            mask in arb_mask(),
            extra in prop::collection::vec(any::<bool>(), 512),
            r in 0.0f64..2.5,
        ) {
            let closed = close_mm(&mask, r).map_err(fail)?;
            let opened = open_mm(&mask, r).map_err(fail)?;
            for ((&m, &c), &o) in mask.as_bytes().iter().zip(closed.as_bytes()).zip(opened.as_bytes()) {
                prop_assert!(c >= m, "closing removed a voxel");
                prop_assert!(o <= m, "opening added a voxel");
            }
            // Increasing: a superset closes and opens to supersets.
            let superset = Mask::from_fn(mask.geometry().clone(), |[i, j, k]| {
                mask.get(i, j, k) || extra[(i * 7 + j * 13 + k * 29) % extra.len()]
            }).map_err(fail)?;
            let closed_sup = close_mm(&superset, r).map_err(fail)?;
            let opened_sup = open_mm(&superset, r).map_err(fail)?;
            for (a, b) in [(&closed, &closed_sup), (&opened, &opened_sup)] {
                prop_assert!(a.as_bytes().iter().zip(b.as_bytes()).all(|(x, y)| x <= y), "not increasing");
            }
            // Dilation and erosion are dual.
            let dil = dilate_mm(&mask, r, Outside::Background).map_err(fail)?;
            let mut inv = mask.clone();
            inv.invert();
            let mut dual = erode_mm(&inv, r, Outside::Foreground).map_err(fail)?;
            dual.invert();
            prop_assert_eq!(&dil, &dual);
        }

        #[test]
        fn closing_and_opening_are_idempotent_away_from_the_border(mask in arb_mask(), r in 0.0f64..2.5) {
            // At the border they are computed on the replicated extension, which is not idempotent; inside a
            // margin of 2r they are the exact morphological operators.
            let s = mask.geometry().spacing_mm;
            let margin = [0, 1, 2].map(|a| (2.0 * r / s[a]).ceil() as usize + 1);
            let m = embed(&mask, margin).map_err(fail)?;
            let closed = close_mm(&m, r).map_err(fail)?;
            prop_assert_eq!(&close_mm(&closed, r).map_err(fail)?, &closed);
            let opened = open_mm(&m, r).map_err(fail)?;
            prop_assert_eq!(&open_mm(&opened, r).map_err(fail)?, &opened);
        }
    }
}
