//! Connected components of a mask: labelling, sizes, bounding boxes, and the usual selections
//! (largest, N largest, the one under a seed).
//!
//! Why run-length labelling: a bone mask of a 512 x 512 x 300 scan has tens of millions of voxels but a few
//! million runs (maximal horizontal segments of foreground along `i`). Union-find over runs touches far less
//! memory than union-find over voxels, and two runs in neighbouring rows are adjacent exactly when their
//! `i` intervals overlap (6-connectivity) or overlap after widening by one voxel (26-connectivity).
//!
//! Parallelism and determinism: the grid is cut into z-slabs; each slab extracts its runs and labels them with
//! its own union-find (linking always to the smaller index) in parallel. A small sequential pass then unites
//! the provisional per-slab components across slab boundaries. The final labels do not depend on how the work
//! was split: components are numbered by voxel count descending, ties broken by the lowest linear voxel index
//! they contain, so label 1 is always the largest component and the output is identical for any thread count.

use super::error::SegmentError;
use super::mask::Mask;
use crate::grid::GridGeometry;
use nalgebra::Point3;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Which voxels count as neighbours.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Connectivity {
    /// Voxels sharing a face (6 neighbours). The strictest choice: thin contacts (teeth in occlusion, a condyle
    /// touching the fossa) are less likely to merge two bones.
    #[default]
    Six,
    /// Voxels sharing a face, an edge or a corner (26 neighbours).
    TwentySix,
}

impl Connectivity {
    /// Neighbour rows already visited when rows are scanned in `(k, j)` order, as `(dj, dk)`, and the widening of
    /// the `i` interval that makes two runs in such rows adjacent.
    fn previous_rows(self) -> (&'static [(isize, isize)], u32) {
        match self {
            Connectivity::Six => (&[(-1, 0), (0, -1)], 0),
            Connectivity::TwentySix => (&[(-1, 0), (-1, -1), (0, -1), (1, -1)], 1),
        }
    }
}

impl fmt::Display for Connectivity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Connectivity::Six => "6",
            Connectivity::TwentySix => "26",
        })
    }
}

/// Why a text could not be read as a connectivity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read '{text}' as a connectivity: expected 6 (or 'six') or 26 (or 'twenty-six')")]
pub struct ParseConnectivityError {
    /// The text given.
    pub text: String,
}

impl FromStr for Connectivity {
    type Err = ParseConnectivityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "6" | "six" => Ok(Connectivity::Six),
            "26" | "twenty-six" | "twentysix" => Ok(Connectivity::TwentySix),
            _ => Err(ParseConnectivityError { text: s.to_string() }),
        }
    }
}

/// Size and extent of one connected component.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentInfo {
    /// Label, 1 for the largest component.
    pub label: u32,
    /// Number of voxels.
    pub voxel_count: usize,
    /// Lowest linear voxel index in the component (breaks ties between equal sizes).
    pub first_voxel: usize,
    /// Lowest `(i, j, k)` of the bounding box.
    pub bbox_min: [usize; 3],
    /// Highest `(i, j, k)` of the bounding box, inclusive.
    pub bbox_max: [usize; 3],
}

impl ComponentInfo {
    /// Volume in mm^3 on `geometry`.
    pub fn volume_mm3(&self, geometry: &GridGeometry) -> f64 {
        self.voxel_count as f64 * geometry.voxel_volume_mm3()
    }

    /// True when the component has a voxel on a face of a grid of `dims`.
    pub fn touches_border(&self, dims: [usize; 3]) -> bool {
        (0..3).any(|a| self.bbox_min[a] == 0 || self.bbox_max[a] + 1 == dims[a])
    }

    fn merge(&mut self, o: &ComponentInfo) {
        self.voxel_count += o.voxel_count;
        self.first_voxel = self.first_voxel.min(o.first_voxel);
        for a in 0..3 {
            self.bbox_min[a] = self.bbox_min[a].min(o.bbox_min[a]);
            self.bbox_max[a] = self.bbox_max[a].max(o.bbox_max[a]);
        }
    }
}

/// A maximal run of foreground voxels `start..end` along `i` in one row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Run {
    start: u32,
    end: u32,
}

/// Runs of the rows of slices `k0..k1`, with their labels.
#[derive(Clone, Debug)]
struct Slab {
    k0: usize,
    k1: usize,
    /// `row_start[r]..row_start[r + 1]` are the runs of local row `r = (k - k0) * ny + j`.
    row_start: Vec<u32>,
    runs: Vec<Run>,
    /// Per run: the slab-local provisional component while labelling, the final label afterwards.
    labels: Vec<u32>,
}

impl Slab {
    fn row(&self, k: usize, j: usize, ny: usize) -> (&[Run], &[u32]) {
        let r = (k - self.k0) * ny + j;
        let (a, b) = (self.row_start[r] as usize, self.row_start[r + 1] as usize);
        (&self.runs[a..b], &self.labels[a..b])
    }
}

/// The connected components of a mask.
///
/// Stored as labelled runs (compact); [`Components::label_volume`] expands to one label per voxel on demand.
#[derive(Clone, Debug)]
pub struct Components {
    geometry: GridGeometry,
    connectivity: Connectivity,
    slabs: Vec<Slab>,
    /// Slab holding slice `k`.
    slab_of_k: Vec<u32>,
    /// `infos[label - 1]`.
    infos: Vec<ComponentInfo>,
}

/// Labels the connected components of `mask`. See the module documentation for the numbering.
pub fn label_components(mask: &Mask, connectivity: Connectivity) -> Result<Components, SegmentError> {
    label_with(mask, connectivity, connectivity.previous_rows())
}

/// Labels the 4-connected components of each `k` slice separately (no adjacency across slices); used for 2D
/// hole filling. The result reports [`Connectivity::Six`], whose in-slice part this is.
pub(crate) fn label_components_per_slice(mask: &Mask) -> Result<Components, SegmentError> {
    label_with(mask, Connectivity::Six, (&[(-1, 0)], 0))
}

/// Labelling with explicit adjacency: `rows` are the already-scanned neighbour rows `(dj, dk)` with `dk` in
/// `{-1, 0}`, `tol` the widening of the `i` interval (0 or 1).
fn label_with(
    mask: &Mask,
    connectivity: Connectivity,
    (prev_rows, tol): (&'static [(isize, isize)], u32),
) -> Result<Components, SegmentError> {
    let geometry = mask.geometry().clone();
    let [_, _, nz] = geometry.dims;
    if geometry.is_empty() {
        return Ok(Components {
            geometry,
            connectivity,
            slabs: Vec::new(),
            slab_of_k: Vec::new(),
            infos: Vec::new(),
        });
    }
    // Four slabs per thread balance uneven slabs (a skull has more bone in some slices); the result does not
    // depend on this choice.
    let n_slabs = (rayon::current_num_threads() * 4).clamp(1, nz);
    let bytes = mask.as_bytes();
    let dims = geometry.dims;
    let partial: Vec<(Slab, Vec<ComponentInfo>)> = (0..n_slabs)
        .into_par_iter()
        .map(|s| label_slab(bytes, dims, s * nz / n_slabs, (s + 1) * nz / n_slabs, prev_rows, tol))
        .collect::<Result<_, _>>()?;

    // Provisional components are numbered across slabs in slab order.
    let mut offsets = Vec::with_capacity(partial.len() + 1);
    let mut total = 0usize;
    for (_, infos) in &partial {
        offsets.push(total);
        total += infos.len();
    }
    offsets.push(total);
    if total >= u32::MAX as usize {
        return Err(too_many("provisional components", total));
    }

    // Unite provisional components across slab boundaries (sequential, touches only boundary rows).
    let mut parent: Vec<u32> = (0..total as u32).collect();
    let ny = dims[1];
    for s in 1..partial.len() {
        let (below, _) = &partial[s - 1];
        let (above, _) = &partial[s];
        let (ob, oa) = (offsets[s - 1] as u32, offsets[s] as u32);
        let k = above.k0;
        for j in 0..ny {
            let (cur, cur_lab) = above.row(k, j, ny);
            if cur.is_empty() {
                continue;
            }
            for &(dj, dk) in prev_rows {
                if dk != -1 {
                    continue;
                }
                let Some(nj) = j.checked_add_signed(dj).filter(|&nj| nj < ny) else {
                    continue;
                };
                let (nb, nb_lab) = below.row(k - 1, nj, ny);
                for_overlaps(cur, nb, tol, |a, b| {
                    union(&mut parent, cur_lab[a] + oa, nb_lab[b] + ob);
                });
            }
        }
    }
    // Links always go to the smaller index, so one forward pass resolves every provisional component to its root.
    for p in 0..parent.len() {
        parent[p] = parent[parent[p] as usize];
    }

    // Merge the per-slab statistics into global components (roots in increasing order).
    let mut dense = vec![u32::MAX; total];
    let mut infos: Vec<ComponentInfo> = Vec::new();
    for (s, (_, local)) in partial.iter().enumerate() {
        for (l, info) in local.iter().enumerate() {
            let p = offsets[s] + l;
            let root = parent[p] as usize;
            if root == p {
                dense[p] = infos.len() as u32;
                infos.push(info.clone());
            } else {
                infos[dense[root] as usize].merge(info);
            }
        }
    }
    // Canonical numbering: size descending, then lowest voxel index.
    let mut order: Vec<u32> = (0..infos.len() as u32).collect();
    order.sort_unstable_by(|&a, &b| {
        let (ia, ib) = (&infos[a as usize], &infos[b as usize]);
        ib.voxel_count
            .cmp(&ia.voxel_count)
            .then(ia.first_voxel.cmp(&ib.first_voxel))
    });
    let mut label_of_dense = vec![0u32; infos.len()];
    for (rank, &d) in order.iter().enumerate() {
        label_of_dense[d as usize] = rank as u32 + 1;
    }
    let mut sorted: Vec<ComponentInfo> = order.iter().map(|&d| infos[d as usize].clone()).collect();
    for (rank, info) in sorted.iter_mut().enumerate() {
        info.label = rank as u32 + 1;
    }
    let label_of_provisional: Vec<u32> = parent
        .iter()
        .map(|&root| label_of_dense[dense[root as usize] as usize])
        .collect();

    let mut slabs: Vec<Slab> = partial.into_iter().map(|(slab, _)| slab).collect();
    slabs.par_iter_mut().zip(offsets.par_iter()).for_each(|(slab, &off)| {
        for l in slab.labels.iter_mut() {
            *l = label_of_provisional[off + *l as usize];
        }
    });
    let mut slab_of_k = vec![0u32; nz];
    for (s, slab) in slabs.iter().enumerate() {
        slab_of_k[slab.k0..slab.k1].fill(s as u32);
    }
    Ok(Components {
        geometry,
        connectivity,
        slabs,
        slab_of_k,
        infos: sorted,
    })
}

fn too_many(what: &str, n: usize) -> SegmentError {
    SegmentError::InvalidGeometry {
        reason: format!("the mask has {n} {what}, more than the 32-bit run labelling supports"),
    }
}

/// Finds the root of `x`, halving the path on the way (every node on it then points two levels up).
#[inline]
fn find(parent: &mut [u32], mut x: u32) -> u32 {
    loop {
        let p = parent[x as usize];
        if p == x {
            return x;
        }
        let gp = parent[p as usize];
        parent[x as usize] = gp;
        x = gp;
    }
}

/// Unites the sets of `a` and `b`, the larger root pointing to the smaller, so `parent[x] <= x` always.
#[inline]
fn union(parent: &mut [u32], a: u32, b: u32) {
    let ra = find(parent, a);
    let rb = find(parent, b);
    if ra < rb {
        parent[rb as usize] = ra;
    } else if rb < ra {
        parent[ra as usize] = rb;
    }
}

/// Calls `f(a, b)` for every pair of runs `cur[a]`, `nb[b]` whose intervals overlap after widening by `tol`.
#[inline]
fn for_overlaps(cur: &[Run], nb: &[Run], tol: u32, mut f: impl FnMut(usize, usize)) {
    let mut lo = 0;
    for (a, ra) in cur.iter().enumerate() {
        while lo < nb.len() && nb[lo].end + tol <= ra.start {
            lo += 1;
        }
        let mut b = lo;
        while b < nb.len() && nb[b].start < ra.end + tol {
            f(a, b);
            b += 1;
        }
    }
}

/// First index `>= i` whose byte differs from `value` (0 or 1), scanning eight bytes at a time.
#[inline]
fn skip_equal(row: &[u8], mut i: usize, value: u8) -> usize {
    let pattern = u64::from_ne_bytes([value; 8]);
    while let Some(chunk) = row.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        if u64::from_ne_bytes(word) != pattern {
            break;
        }
        i += 8;
    }
    while i < row.len() && row[i] == value {
        i += 1;
    }
    i
}

/// Appends the maximal foreground runs of `row`.
#[inline]
fn extract_runs(row: &[u8], out: &mut Vec<Run>) {
    let mut i = 0;
    while i < row.len() {
        i = skip_equal(row, i, 0);
        if i >= row.len() {
            break;
        }
        let start = i;
        i = skip_equal(row, i, 1);
        out.push(Run {
            start: start as u32,
            end: i as u32,
        });
    }
}

/// Extracts and labels the runs of slices `k0..k1`; returns the slab with slab-local provisional components
/// (numbered in order of their lowest run) and the statistics of each.
fn label_slab(
    bytes: &[u8],
    dims: [usize; 3],
    k0: usize,
    k1: usize,
    prev_rows: &[(isize, isize)],
    tol: u32,
) -> Result<(Slab, Vec<ComponentInfo>), SegmentError> {
    let [nx, ny, _] = dims;
    let n_rows = (k1 - k0) * ny;
    let mut row_start: Vec<u32> = Vec::with_capacity(n_rows + 1);
    row_start.push(0);
    let mut runs: Vec<Run> = Vec::new();
    let mut parent: Vec<u32> = Vec::new();
    for k in k0..k1 {
        for j in 0..ny {
            let base = (k * ny + j) * nx;
            let first = runs.len();
            extract_runs(&bytes[base..base + nx], &mut runs);
            if runs.len() >= u32::MAX as usize {
                return Err(too_many("runs in one slab", runs.len()));
            }
            parent.extend(first as u32..runs.len() as u32);
            row_start.push(runs.len() as u32);
            if runs.len() == first {
                continue;
            }
            for &(dj, dk) in prev_rows {
                let Some(nk) = k.checked_add_signed(dk).filter(|&nk| nk >= k0) else {
                    continue;
                };
                let Some(nj) = j.checked_add_signed(dj).filter(|&nj| nj < ny) else {
                    continue;
                };
                let r = (nk - k0) * ny + nj;
                let (nb0, nb1) = (row_start[r] as usize, row_start[r + 1] as usize);
                let (done, cur) = runs.split_at(first);
                for_overlaps(cur, &done[nb0..nb1], tol, |a, b| {
                    union(&mut parent, (first + a) as u32, (nb0 + b) as u32);
                });
            }
        }
    }
    // Resolve every run to its root (parents precede children), then number the roots in run order.
    let mut labels = vec![0u32; runs.len()];
    let mut infos: Vec<ComponentInfo> = Vec::new();
    for r in 0..runs.len() {
        let root = parent[parent[r] as usize];
        parent[r] = root;
        if root as usize == r {
            labels[r] = infos.len() as u32;
            infos.push(ComponentInfo {
                label: 0,
                voxel_count: 0,
                first_voxel: usize::MAX,
                bbox_min: [usize::MAX; 3],
                bbox_max: [0; 3],
            });
        } else {
            labels[r] = labels[root as usize];
        }
    }
    for k in k0..k1 {
        for j in 0..ny {
            let r = (k - k0) * ny + j;
            for idx in row_start[r] as usize..row_start[r + 1] as usize {
                let run = runs[idx];
                let info = &mut infos[labels[idx] as usize];
                let (s, e) = (run.start as usize, run.end as usize - 1);
                info.voxel_count += e + 1 - s;
                info.first_voxel = info.first_voxel.min((k * ny + j) * nx + s);
                info.bbox_min = [
                    info.bbox_min[0].min(s),
                    info.bbox_min[1].min(j),
                    info.bbox_min[2].min(k),
                ];
                info.bbox_max = [
                    info.bbox_max[0].max(e),
                    info.bbox_max[1].max(j),
                    info.bbox_max[2].max(k),
                ];
            }
        }
    }
    Ok((
        Slab {
            k0,
            k1,
            row_start,
            runs,
            labels,
        },
        infos,
    ))
}

impl Components {
    /// The grid of the labelled mask.
    pub fn geometry(&self) -> &GridGeometry {
        &self.geometry
    }

    /// The connectivity used.
    pub fn connectivity(&self) -> Connectivity {
        self.connectivity
    }

    /// Number of components.
    pub fn len(&self) -> usize {
        self.infos.len()
    }

    /// True when the mask had no foreground.
    pub fn is_empty(&self) -> bool {
        self.infos.is_empty()
    }

    /// All components, ordered by label (largest first).
    pub fn infos(&self) -> &[ComponentInfo] {
        &self.infos
    }

    /// The component with label `label` (1-based).
    pub fn info(&self, label: u32) -> Option<&ComponentInfo> {
        label.checked_sub(1).and_then(|l| self.infos.get(l as usize))
    }

    /// Label of voxel `(i, j, k)`: 0 for background or outside the grid.
    pub fn label_at(&self, i: usize, j: usize, k: usize) -> u32 {
        let [nx, ny, nz] = self.geometry.dims;
        if i >= nx || j >= ny || k >= nz {
            return 0;
        }
        let slab = &self.slabs[self.slab_of_k[k] as usize];
        let (runs, labels) = slab.row(k, j, ny);
        let i = i as u32;
        let idx = runs.partition_point(|r| r.end <= i);
        match runs.get(idx) {
            Some(r) if r.start <= i => labels[idx],
            _ => 0,
        }
    }

    /// One label per voxel (0 = background), index `(k * ny + j) * nx + i`.
    pub fn label_volume(&self) -> Vec<u32> {
        let mut out = vec![0u32; self.geometry.len()];
        self.paint(&mut out, |label| label);
        out
    }

    /// The mask of the components for which `keep` is true.
    pub fn mask_where(&self, keep: impl Fn(&ComponentInfo) -> bool) -> Mask {
        let mut table = vec![0u8; self.infos.len() + 1];
        for info in &self.infos {
            table[info.label as usize] = u8::from(keep(info));
        }
        let mut out = vec![0u8; self.geometry.len()];
        self.paint(&mut out, |label| table[label as usize]);
        Mask::from_raw(self.geometry.clone(), out)
    }

    /// Sets to foreground, in `out` (a mask on the same grid), the voxels of the components for which `keep` is
    /// true; other voxels of `out` are left as they are.
    pub fn add_where(&self, out: &mut Mask, keep: impl Fn(&ComponentInfo) -> bool) -> Result<(), SegmentError> {
        out.ensure_same_geometry(&self.geometry)?;
        let mut table = vec![0u8; self.infos.len() + 1];
        for info in &self.infos {
            table[info.label as usize] = u8::from(keep(info));
        }
        self.paint(out.bytes_mut(), |label| table[label as usize]);
        Ok(())
    }

    /// The mask of the components whose labels are listed (unknown labels are ignored).
    pub fn mask_of_labels(&self, labels: &[u32]) -> Mask {
        self.mask_where(|info| labels.contains(&info.label))
    }

    /// Writes `value(label)` over every run of `out` (one value per voxel), in parallel over slices.
    fn paint<T: Copy + Default + PartialEq + Send>(&self, out: &mut [T], value: impl Fn(u32) -> T + Sync) {
        let [nx, ny, _] = self.geometry.dims;
        if nx == 0 || ny == 0 {
            return;
        }
        out.par_chunks_mut(nx * ny).enumerate().for_each(|(k, slice)| {
            let slab = &self.slabs[self.slab_of_k[k] as usize];
            for (j, row) in slice.chunks_mut(nx).enumerate() {
                let (runs, labels) = slab.row(k, j, ny);
                for (run, &label) in runs.iter().zip(labels) {
                    let v = value(label);
                    if v != T::default() {
                        row[run.start as usize..run.end as usize].fill(v);
                    }
                }
            }
        });
    }

    /// Label of the component under `seed_mm` (patient LPS mm, rounded to the nearest voxel centre).
    ///
    /// Fails with [`SegmentError::SeedOutsideGrid`] when the seed maps to no voxel, and with
    /// [`SegmentError::SeedNotOnMask`] (giving the nearest mask voxel and its distance) on background.
    pub fn label_at_mm(&self, seed_mm: Point3<f64>) -> Result<u32, SegmentError> {
        let voxel = self.geometry.to_voxel(seed_mm);
        let dims = self.geometry.dims;
        let mut ijk = [0usize; 3];
        for a in 0..3 {
            let r = (voxel[a] + 0.5).floor();
            if !r.is_finite() || r < 0.0 || r >= dims[a] as f64 {
                return Err(SegmentError::SeedOutsideGrid {
                    seed_mm: seed_mm.coords.into(),
                    voxel,
                    dims,
                });
            }
            ijk[a] = r as usize;
        }
        let label = self.label_at(ijk[0], ijk[1], ijk[2]);
        if label != 0 {
            return Ok(label);
        }
        let nearest = self.nearest_foreground(voxel);
        Err(SegmentError::SeedNotOnMask {
            seed_mm: seed_mm.coords.into(),
            voxel: ijk,
            nearest_mm: nearest.map(|(v, _)| {
                self.geometry
                    .to_patient([v[0] as f64, v[1] as f64, v[2] as f64])
                    .coords
                    .into()
            }),
            nearest_distance_mm: nearest.map(|(_, d2)| d2.sqrt()),
        })
    }

    /// The foreground voxel whose centre is nearest to continuous voxel coordinates `p`, and its squared
    /// distance in mm^2 (ties: lowest linear index). Scans every run: meant for error reporting.
    fn nearest_foreground(&self, p: [f64; 3]) -> Option<([usize; 3], f64)> {
        let s = self.geometry.spacing_mm;
        let [_, ny, _] = self.geometry.dims;
        self.slabs
            .par_iter()
            .filter_map(|slab| {
                let mut best: Option<([usize; 3], f64)> = None;
                for k in slab.k0..slab.k1 {
                    let dz = (k as f64 - p[2]) * s[2];
                    for j in 0..ny {
                        let dy = (j as f64 - p[1]) * s[1];
                        let (runs, _) = slab.row(k, j, ny);
                        for run in runs {
                            let i = p[0].round().clamp(run.start as f64, (run.end - 1) as f64);
                            let dx = (i - p[0]) * s[0];
                            let d2 = dx * dx + dy * dy + dz * dz;
                            if best.is_none_or(|(_, b)| d2 < b) {
                                best = Some(([i as usize, j, k], d2));
                            }
                        }
                    }
                }
                best
            })
            // Slabs come back in order and `reduce_with` keeps the first of equal distances: lowest index wins.
            .reduce_with(|a, b| if b.1 < a.1 { b } else { a })
    }
}

/// Keeps the largest component (empty mask in, empty mask out).
pub fn keep_largest(mask: &Mask, connectivity: Connectivity) -> Result<Mask, SegmentError> {
    keep_n_largest(mask, 1, connectivity)
}

/// Keeps the `n` largest components (ties broken by lowest voxel index, see the module documentation).
pub fn keep_n_largest(mask: &Mask, n: usize, connectivity: Connectivity) -> Result<Mask, SegmentError> {
    if n == 0 {
        return Err(SegmentError::InvalidComponentCount { n });
    }
    let comps = label_components(mask, connectivity)?;
    Ok(comps.mask_where(|info| (info.label as usize) <= n))
}

/// Keeps the component under `seed_mm` (patient LPS mm).
pub fn keep_containing(mask: &Mask, seed_mm: Point3<f64>, connectivity: Connectivity) -> Result<Mask, SegmentError> {
    keep_containing_any(mask, &[seed_mm], connectivity)
}

/// Keeps every component under one of `seeds_mm` (patient LPS mm); each seed must lie on the mask.
pub fn keep_containing_any(
    mask: &Mask,
    seeds_mm: &[Point3<f64>],
    connectivity: Connectivity,
) -> Result<Mask, SegmentError> {
    let comps = label_components(mask, connectivity)?;
    let labels = seeds_mm
        .iter()
        .map(|&s| comps.label_at_mm(s))
        .collect::<Result<Vec<u32>, _>>()?;
    Ok(comps.mask_of_labels(&labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn ball(c: [f64; 3], r: f64) -> impl Fn([usize; 3]) -> bool {
        move |[i, j, k]| {
            let d = [i as f64 - c[0], j as f64 - c[1], k as f64 - c[2]];
            d[0] * d[0] + d[1] * d[1] + d[2] * d[2] <= r * r
        }
    }

    fn brute_force_labels(mask: &Mask, conn: Connectivity) -> Vec<u32> {
        // Flood fill with an explicit stack; labels in order of first voxel (not size).
        let g = mask.geometry();
        let [nx, ny, nz] = g.dims;
        let mut lab = vec![0u32; g.len()];
        let mut next = 0;
        for start in 0..g.len() {
            if mask.as_bytes()[start] == 0 || lab[start] != 0 {
                continue;
            }
            next += 1;
            lab[start] = next;
            let mut stack = vec![start];
            while let Some(v) = stack.pop() {
                let [i, j, k] = g.ijk(v);
                for dk in -1isize..=1 {
                    for dj in -1isize..=1 {
                        for di in -1isize..=1 {
                            let manhattan = di.abs() + dj.abs() + dk.abs();
                            if manhattan == 0 || (conn == Connectivity::Six && manhattan > 1) {
                                continue;
                            }
                            let (Some(a), Some(b), Some(c)) = (
                                i.checked_add_signed(di),
                                j.checked_add_signed(dj),
                                k.checked_add_signed(dk),
                            ) else {
                                continue;
                            };
                            if a < nx && b < ny && c < nz {
                                let w = g.index(a, b, c);
                                if mask.as_bytes()[w] == 1 && lab[w] == 0 {
                                    lab[w] = next;
                                    stack.push(w);
                                }
                            }
                        }
                    }
                }
            }
        }
        lab
    }

    /// Same partition: a bijection between the labels of `a` and `b`.
    fn same_partition(a: &[u32], b: &[u32]) -> bool {
        let mut ab = std::collections::HashMap::new();
        let mut ba = std::collections::HashMap::new();
        a.iter()
            .zip(b)
            .all(|(&x, &y)| (x == 0) == (y == 0) && *ab.entry(x).or_insert(y) == y && *ba.entry(y).or_insert(x) == x)
    }

    #[test]
    fn two_blobs_two_labels_exact_sizes() -> TestResult {
        let g = GridGeometry::axis_aligned([30, 20, 16], [1.0; 3], [0.0; 3]);
        let small = ball([22.0, 10.0, 8.0], 3.0);
        let big = ball([8.0, 10.0, 8.0], 5.0);
        let mask = Mask::from_fn(g.clone(), |v| small(v) || big(v))?;
        let n_small = Mask::from_fn(g.clone(), &small)?.count();
        let n_big = Mask::from_fn(g.clone(), &big)?.count();
        for conn in [Connectivity::Six, Connectivity::TwentySix] {
            let c = label_components(&mask, conn)?;
            assert_eq!(c.len(), 2);
            assert_eq!(c.infos()[0].voxel_count, n_big);
            assert_eq!(c.infos()[1].voxel_count, n_small);
            assert_eq!(c.infos()[0].bbox_min, [3, 5, 3]);
            assert_eq!(c.infos()[0].bbox_max, [13, 15, 13]);
            assert_eq!(c.infos()[1].bbox_min, [19, 7, 5]);
            assert_eq!(c.infos()[1].bbox_max, [25, 13, 11]);
            assert_eq!(c.label_at(8, 10, 8), 1);
            assert_eq!(c.label_at(22, 10, 8), 2);
            assert_eq!(c.label_at(0, 0, 0), 0);
            let vol = c.label_volume();
            assert_eq!(vol.iter().filter(|&&l| l == 2).count(), n_small);
            assert_eq!(keep_largest(&mask, conn)?.count(), n_big);
            assert_eq!(keep_n_largest(&mask, 2, conn)?, mask);
        }
        assert!(matches!(
            keep_n_largest(&mask, 0, Connectivity::Six),
            Err(SegmentError::InvalidComponentCount { n: 0 })
        ));
        Ok(())
    }

    #[test]
    fn six_and_twenty_six_differ_on_diagonal_contacts() -> TestResult {
        let g = GridGeometry::axis_aligned([5, 5, 5], [1.0; 3], [0.0; 3]);
        // Three voxels touching only by a corner, an edge, nothing: (1,1,1)-(2,2,2) corner, (2,2,2)-(3,3,2) edge.
        let on = [[1, 1, 1], [2, 2, 2], [3, 3, 2]];
        let mask = Mask::from_fn(g, |v| on.contains(&v))?;
        assert_eq!(label_components(&mask, Connectivity::Six)?.len(), 3);
        let c26 = label_components(&mask, Connectivity::TwentySix)?;
        assert_eq!(c26.len(), 1);
        assert_eq!(c26.infos()[0].voxel_count, 3);
        Ok(())
    }

    #[test]
    fn equal_sizes_are_ordered_by_first_voxel() -> TestResult {
        let g = GridGeometry::axis_aligned([9, 3, 3], [1.0; 3], [0.0; 3]);
        let mask = Mask::from_fn(g, |[i, j, k]| j == 1 && k == 1 && (i == 6 || i == 1 || i == 3))?;
        let c = label_components(&mask, Connectivity::TwentySix)?;
        assert_eq!(c.label_at(1, 1, 1), 1);
        assert_eq!(c.label_at(3, 1, 1), 2);
        assert_eq!(c.label_at(6, 1, 1), 3);
        Ok(())
    }

    fn random_mask(dims: [usize; 3], density: u64, seed: u64) -> Result<Mask, SegmentError> {
        let g = GridGeometry::axis_aligned(dims, [0.7, 0.7, 1.5], [1.0, -2.0, 3.0]);
        let n = g.len();
        let mut state = seed;
        let bytes = (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                u8::from((state >> 33) % 100 < density)
            })
            .collect();
        Mask::from_bytes(g, bytes)
    }

    #[test]
    fn matches_flood_fill_on_random_masks() -> TestResult {
        for (seed, density) in [(1u64, 30u64), (2, 45), (3, 60)] {
            let mask = random_mask([13, 11, 17], density, seed)?;
            for conn in [Connectivity::Six, Connectivity::TwentySix] {
                let c = label_components(&mask, conn)?;
                let lv = c.label_volume();
                let bf = brute_force_labels(&mask, conn);
                assert!(same_partition(&lv, &bf), "seed {seed} {conn}");
                let total: usize = c.infos().iter().map(|i| i.voxel_count).sum();
                assert_eq!(total, mask.count());
                assert!(c.infos().windows(2).all(|w| w[0].voxel_count >= w[1].voxel_count));
            }
        }
        Ok(())
    }

    #[test]
    fn deterministic_across_thread_counts() -> TestResult {
        let mask = random_mask([40, 37, 61], 12, 7)?;
        let mut results = Vec::new();
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
            let (vol, infos) = pool.install(|| -> Result<_, SegmentError> {
                let c = label_components(&mask, Connectivity::TwentySix)?;
                Ok((c.label_volume(), c.infos().to_vec()))
            })?;
            results.push((vol, infos));
        }
        assert!(results[0].1.len() > 10, "the random mask should have many components");
        assert_eq!(results[0], results[1]);
        assert_eq!(results[0], results[2]);
        Ok(())
    }

    #[test]
    fn keep_containing_by_seed_in_mm() -> TestResult {
        // Tilted, anisotropic grid: the seed has to go through the geometry.
        let c = 30f64.to_radians().cos();
        let s = 30f64.to_radians().sin();
        let g = GridGeometry {
            dims: [30, 20, 16],
            spacing_mm: [0.5, 0.5, 1.25],
            origin_mm: [-10.0, 5.0, 40.0],
            axes: [[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]],
        };
        let small = ball([22.0, 10.0, 8.0], 3.0);
        let big = ball([8.0, 10.0, 8.0], 5.0);
        let mask = Mask::from_fn(g.clone(), |v| small(v) || big(v))?;
        let seed = g.to_patient([21.2, 10.3, 7.8]);
        let kept = keep_containing(&mask, seed, Connectivity::Six)?;
        assert_eq!(kept, Mask::from_fn(g.clone(), &small)?);

        let background = g.to_patient([16.0, 10.0, 8.0]);
        let err = keep_containing(&mask, background, Connectivity::Six).err();
        match err {
            Some(SegmentError::SeedNotOnMask {
                voxel,
                nearest_distance_mm: Some(d),
                nearest_mm: Some(_),
                ..
            }) => {
                assert_eq!(voxel, [16, 10, 8]);
                // Nearest mask voxels: (13,10,8) of the big ball and (19,10,8) of the small one, 3 voxels of 0.5 mm.
                assert!((d - 1.5).abs() < 1e-9, "{d}");
            }
            other => panic!("expected SeedNotOnMask, got {other:?}"),
        }
        let msg = keep_containing(&mask, background, Connectivity::Six)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(msg.contains("not on the mask") && msg.contains("1.50 mm away"), "{msg}");

        let outside = g.to_patient([-3.0, 10.0, 8.0]);
        assert!(matches!(
            keep_containing(&mask, outside, Connectivity::Six),
            Err(SegmentError::SeedOutsideGrid { .. })
        ));
        let both = keep_containing_any(&mask, &[seed, g.to_patient([8.0, 10.0, 8.0])], Connectivity::Six)?;
        assert_eq!(both, mask);
        Ok(())
    }

    #[test]
    fn connectivity_parses() {
        assert_eq!("6".parse(), Ok(Connectivity::Six));
        assert_eq!("twenty_six".parse(), Ok(Connectivity::TwentySix));
        assert_eq!(" 26 ".parse(), Ok(Connectivity::TwentySix));
        assert!("18".parse::<Connectivity>().is_err());
    }

    #[test]
    fn empty_and_degenerate_grids() -> TestResult {
        let g = GridGeometry::axis_aligned([0, 4, 4], [1.0; 3], [0.0; 3]);
        let c = label_components(&Mask::empty(g)?, Connectivity::Six)?;
        assert!(c.is_empty());
        let g = GridGeometry::axis_aligned([4, 4, 1], [1.0; 3], [0.0; 3]);
        let m = Mask::empty(g)?;
        assert!(label_components(&m, Connectivity::TwentySix)?.is_empty());
        assert_eq!(keep_largest(&m, Connectivity::Six)?.count(), 0);
        Ok(())
    }
}
