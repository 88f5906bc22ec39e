//! Marching cubes: the bone surface `field >= iso` of a CT volume as a closed, manifold, outward triangle mesh.
//!
//! Why written here rather than taken from a crate: the surface must be closed and edge- *and* vertex-manifold for
//! *any* input (noise, thin plates, bone cut by the field of view), because the guide CAD that follows does booleans
//! with it; it must be bit-reproducible whatever the thread count; and it must handle tilted / anisotropic grids in
//! patient mm. The properties come from:
//! - a case table generated from one face rule (see `tables`): cells sharing a face always agree on it, so the
//!   surface has no cracks, and no triangle diagonal lies on a cell face, so fans around vertices are disks;
//! - exactly one vertex per crossed grid edge, shared by the four cells around the edge;
//! - a virtual one-voxel border of -infinity around the volume: bone cut by the field of view is capped just
//!   outside the last sample instead of left open;
//! - the interpolation parameter clamped to `[T_MIN, 1 - T_MIN]`: a vertex never sits on a grid corner, so the
//!   three vertices of a triangle lie strictly inside three different edges of one cell and can never be collinear
//!   (no degenerate triangle, even after rounding to `f32` for STL: the smallest possible triangle still has sides
//!   of about `spacing / 256`, thousands of `f32` ulps at patient coordinates).
//!
//! Speed: the inside/outside state of the samples is packed into 64-bit words (a vectorisable pass), empty and
//! full cells are skipped a whole word at a time with bit operations, and vertex ids come from popcounts of the
//! per-row "crossed edge" bit masks, so nothing is allocated per voxel and nothing is hashed. The volume is cut into
//! slabs of slices processed in parallel; each slab packs its own slices (plus the two above it), places its
//! vertices right after packing a slice, while that part of the field is still in cache, and numbers its vertices
//! locally. A prefix sum over slabs then turns local ids into global ones. Vertex ids follow (slice, row, axis,
//! column) order and triangles follow cell order, whatever the slab size, so the output does not depend on the
//! number of threads.
//!
//! What the construction knows is kept with the mesh in a [`GridSurface`] (triangles per active cell, the grid edge of
//! each vertex, where each slice's vertices and each cell slice's triangles start), so its checks need no global
//! search (see `grid_check`).
//!
//! HU windows: [`grid_surface_of_window`] evaluates `min <= v <= max` while packing, so a threshold costs no pass of
//! its own, and can write the threshold mask from the same flags.
//!
//! Region masks: with `region`, a sample is inside only when it is above iso *and* in the region. On an edge from an
//! inside sample to an excluded sample that is itself above iso (another bone touching this one, or voxels a
//! segmentation cut away) the vertex goes to the midpoint, the unbiased guess for where the two separate; an
//! excluded sample below iso is an ordinary crossing, interpolated on the field, so restricting the surface to a
//! mask that equals the threshold changes nothing.

use rayon::prelude::*;

use super::tables::case_table;
use super::{Mesh, MeshError};
use crate::grid::GridGeometry;

/// Smallest interpolation parameter along an edge (and `1 - T_MIN` the largest).
pub const T_MIN: f64 = 1.0 / 256.0;

/// Extracts the surface `field >= iso` (restricted to `region[idx] != 0` when given) as an outward mesh in patient
/// mm. `field` and `region` are indexed like the grid (`(k * ny + j) * nx + i`).
///
/// The result is closed, edge- and vertex-manifold, consistently outward-oriented and free of degenerate triangles
/// for every input; it is empty when no sample is inside.
pub fn marching_cubes(
    geometry: &GridGeometry,
    field: &[i16],
    iso: f32,
    region: Option<&[u8]>,
) -> Result<Mesh, MeshError> {
    Ok(grid_surface(geometry, field, iso, region)?.into_mesh())
}

/// [`marching_cubes`], keeping what the construction knows about the surface (which grid cell made each triangle,
/// which grid edge carries each vertex), so [`GridSurface::report`] can prove the mesh invariants without a global
/// search.
pub fn grid_surface(
    geometry: &GridGeometry,
    field: &[i16],
    iso: f32,
    region: Option<&[u8]>,
) -> Result<GridSurface, MeshError> {
    let inside = match region {
        Some(r) => {
            check_len("region", r.len(), geometry.dims)?;
            Inside::Region(r)
        }
        None => Inside::Above,
    };
    extract(geometry, field, iso, inside, None)
}

/// The surface of the samples `min_hu <= v <= max_hu` at iso `min_hu - 0.5`, the same mesh, byte for byte, as
/// [`grid_surface`] with `iso = min_hu - 0.5` and a region equal to that window (a sample above `max_hu` is an
/// excluded one: the vertex towards it goes to the edge midpoint). The window is evaluated while the field is packed
/// for marching cubes, so thresholding costs no pass of its own: when `inside_out` is given (one byte per sample,
/// indexed like `field`), it receives 1 for every sample in the window and 0 for every other, i.e. the threshold
/// mask.
pub fn grid_surface_of_window(
    geometry: &GridGeometry,
    field: &[i16],
    min_hu: i16,
    max_hu: i16,
    inside_out: Option<&mut [u8]>,
) -> Result<GridSurface, MeshError> {
    if min_hu > max_hu {
        return Err(MeshError::InvalidOption(format!(
            "the HU window {min_hu}..{max_hu} is empty (its lower bound is above its upper bound)"
        )));
    }
    if let Some(out) = &inside_out {
        check_len("inside output", out.len(), geometry.dims)?;
    }
    let iso = f32::from(min_hu) - 0.5;
    extract(geometry, field, iso, Inside::Window { max: max_hu }, inside_out)
}

fn grid_len(dims: [usize; 3]) -> Result<usize, MeshError> {
    dims[0]
        .checked_mul(dims[1])
        .and_then(|v| v.checked_mul(dims[2]))
        .ok_or_else(|| MeshError::InvalidGeometry(format!("grid {dims:?} is too large")))
}

fn check_len(what: &'static str, actual: usize, dims: [usize; 3]) -> Result<(), MeshError> {
    let expected = grid_len(dims)?;
    if actual != expected {
        return Err(MeshError::FieldSizeMismatch {
            what,
            expected,
            actual,
            dims,
        });
    }
    Ok(())
}

fn extract(
    geometry: &GridGeometry,
    field: &[i16],
    iso: f32,
    inside: Inside,
    inside_out: Option<&mut [u8]>,
) -> Result<GridSurface, MeshError> {
    let dims = geometry.dims;
    check_len("field", field.len(), dims)?;
    if !geometry.spacing_mm.iter().all(|s| s.is_finite() && *s > 0.0) {
        return Err(MeshError::InvalidGeometry(format!(
            "spacing {:?} mm must be finite and positive",
            geometry.spacing_mm
        )));
    }
    if !geometry
        .origin_mm
        .iter()
        .chain(geometry.axes.iter().flatten())
        .all(|v| v.is_finite())
    {
        return Err(MeshError::InvalidGeometry("origin and axes must be finite".into()));
    }
    let Some(thr) = threshold(iso) else {
        if let Some(out) = inside_out {
            out.fill(0);
        }
        return Ok(GridSurface::default());
    };
    if field.is_empty() {
        return Ok(GridSurface::default());
    }
    let lay = Layout::new(dims);
    let ex = Extractor {
        lay: &lay,
        field,
        inside,
        geometry,
        iso: f64::from(iso),
        thr,
    };
    // Slab size only affects speed, never the output.
    let target_slabs = 6 * rayon::current_num_threads().max(1);
    let slab = lay.pz.div_ceil(target_slabs).clamp(4, 64);
    let slabs: Vec<(usize, usize)> = (0..lay.pz)
        .step_by(slab)
        .map(|k0| (k0, (k0 + slab).min(lay.pz)))
        .collect();
    // Each slab writes the window flags of the real slices among its own padded slices k0..k1.
    let slice_len = lay.nx * lay.ny;
    let mut out_chunks: Vec<Option<&mut [u8]>> = Vec::with_capacity(slabs.len());
    match inside_out {
        Some(mut rest) => {
            for &(k0, k1) in &slabs {
                let own = k1.min(lay.nz + 1).saturating_sub(k0.max(1));
                let (head, tail) = std::mem::take(&mut rest).split_at_mut(own * slice_len);
                out_chunks.push(Some(head));
                rest = tail;
            }
        }
        None => out_chunks.resize_with(slabs.len(), || None),
    }
    let parts: Vec<SlabOutput> = slabs
        .par_iter()
        .zip(out_chunks.into_par_iter())
        .map(|(&(k0, k1), out)| ex.slab(k0, k1, out))
        .collect();

    // Local -> global ids: slab s starts where slab s - 1 ends.
    let mut offsets = Vec::with_capacity(parts.len());
    let mut total: u64 = 0;
    for p in &parts {
        offsets.push(total as u32);
        total += p.positions.len() as u64;
        if total > u64::from(u32::MAX) || p.max_local_id > u64::from(u32::MAX) {
            return Err(MeshError::TooManyVertices {
                count: total.max(p.max_local_id),
                max: u64::from(u32::MAX),
            });
        }
    }
    let n_tris: usize = parts.iter().map(|p| p.triangles.len()).sum();
    if n_tris > u32::MAX as usize {
        return Err(MeshError::InvalidGeometry(format!(
            "grid {dims:?} gives {n_tris} triangles, more than 32-bit triangle indices can address"
        )));
    }
    let mut positions = vec![[0.0f64; 3]; total as usize];
    let mut triangles = vec![[0u32; 3]; n_tris];
    let mut pos_chunks = Vec::with_capacity(parts.len());
    let mut tri_chunks = Vec::with_capacity(parts.len());
    let (mut prest, mut trest): (&mut [[f64; 3]], &mut [[u32; 3]]) = (&mut positions, &mut triangles);
    for p in &parts {
        let (ph, pt) = std::mem::take(&mut prest).split_at_mut(p.positions.len());
        let (th, tt) = std::mem::take(&mut trest).split_at_mut(p.triangles.len());
        pos_chunks.push(ph);
        tri_chunks.push(th);
        prest = pt;
        trest = tt;
    }
    parts
        .par_iter()
        .zip(offsets.par_iter())
        .zip(pos_chunks.into_par_iter().zip(tri_chunks.into_par_iter()))
        .for_each(|((p, &off), (pc, tc))| {
            pc.copy_from_slice(&p.positions);
            for (d, s) in tc.iter_mut().zip(&p.triangles) {
                *d = [s[0] + off, s[1] + off, s[2] + off];
            }
        });
    let mut cell_triangles = Vec::with_capacity(parts.iter().map(|p| p.cell_triangles.len()).sum());
    let mut vertex_edges = Vec::with_capacity(total as usize);
    let mut slice_vertices = Vec::with_capacity(lay.pz + 1);
    let mut slice_triangles = Vec::with_capacity(lay.pz);
    let mut first_triangle = 0u32;
    for (p, &off) in parts.iter().zip(&offsets) {
        cell_triangles.extend_from_slice(&p.cell_triangles);
        vertex_edges.extend_from_slice(&p.vertex_edges);
        slice_vertices.extend(p.slice_vertices.iter().map(|&v| v + off));
        slice_triangles.extend(p.slice_triangles.iter().map(|&t| t + first_triangle));
        first_triangle += p.triangles.len() as u32;
    }
    slice_vertices.push(total as u32);
    slice_triangles.push(n_tris as u32);
    Ok(GridSurface {
        mesh: Mesh { positions, triangles },
        cell_triangles,
        vertex_edges,
        slice_vertices,
        slice_triangles,
        inside_samples: parts.iter().map(|p| p.inside_samples).sum(),
    })
}

/// A marching-cubes surface together with what its construction guarantees, so its checks need no global search
/// (see the `grid_check` module). Only marching cubes makes one, and the mesh is not mutable through it, so the
/// facts below always describe the mesh they come with.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GridSurface {
    pub(super) mesh: Mesh,
    /// Number of triangles made by each active cell, in the order of the triangles (a cell's are consecutive).
    pub(super) cell_triangles: Vec<u8>,
    /// Grid edge of each vertex (see [`vertex_edge`]).
    pub(super) vertex_edges: Vec<u8>,
    /// First vertex id of each padded slice (its rows' x-, y- and z-edges), and the number of vertices at the end.
    pub(super) slice_vertices: Vec<u32>,
    /// First triangle of each cell slice (cells whose lower corners are in padded slice `k`), and the number of
    /// triangles at the end.
    pub(super) slice_triangles: Vec<u32>,
    /// Number of samples inside the surface.
    inside_samples: u64,
}

/// Which kind of grid edge carries a vertex, as stored in [`GridSurface`].
pub(super) mod vertex_edge {
    /// A y- or z-edge.
    pub(crate) const OTHER: u8 = 0;
    /// An x-edge whose lower sample (smaller column) is inside.
    pub(crate) const X_FROM_INSIDE: u8 = 1;
    /// An x-edge whose lower sample is outside.
    pub(crate) const X_FROM_OUTSIDE: u8 = 2;
}

impl GridSurface {
    /// The mesh.
    pub fn mesh(&self) -> &Mesh {
        &self.mesh
    }

    /// The mesh, giving up what is known about its construction.
    pub fn into_mesh(self) -> Mesh {
        self.mesh
    }

    /// Number of grid samples inside the surface (above the iso value and in the region or window), counted while
    /// the field was packed.
    pub fn inside_samples(&self) -> u64 {
        self.inside_samples
    }
}

/// Which samples are inside the surface.
#[derive(Clone, Copy)]
enum Inside<'a> {
    /// `v >= thr`.
    Above,
    /// `v >= thr` and `region != 0`.
    Region(&'a [u8]),
    /// `thr <= v <= max`.
    Window {
        /// Largest inside value.
        max: i16,
    },
}

/// Smallest `i16` sample value that is inside (`v as f32 >= iso`), or `None` when no value is.
fn threshold(iso: f32) -> Option<i16> {
    if iso.is_nan() {
        return None;
    }
    let c = iso.ceil();
    if c > 32767.0 {
        None
    } else if c <= -32768.0 {
        Some(i16::MIN)
    } else {
        Some(c as i16)
    }
}

/// Inside flags (0 or 1) of up to 64 samples, by [`Inside`] mode.
#[inline]
fn inside_flags(chunk: &[i16], region: Option<&[u8]>, window: Option<(i16, i16)>, thr: i16, flags: &mut [u8; 64]) {
    // Fixed lengths let the compiler turn each loop into a few vector compares.
    match (<&[i16; 64]>::try_from(chunk), region, window) {
        (Ok(full), None, None) => {
            for (f, &v) in flags.iter_mut().zip(full) {
                *f = u8::from(v >= thr);
            }
        }
        (Ok(full), Some(r), _) if r.len() == 64 => {
            for ((f, &v), &r) in flags.iter_mut().zip(full).zip(r) {
                *f = u8::from(v >= thr) & u8::from(r != 0);
            }
        }
        (Ok(full), None, Some((lo, hi))) => {
            // One unsigned compare: `lo <= v <= hi` iff `v - lo` (wrapping) is at most `hi - lo`.
            let span = hi.wrapping_sub(lo) as u16;
            for (f, &v) in flags.iter_mut().zip(full) {
                *f = u8::from(v.wrapping_sub(lo) as u16 <= span);
            }
        }
        _ => {
            for (i, (f, &v)) in flags.iter_mut().zip(chunk).enumerate() {
                let ok = match (region, window) {
                    (Some(r), _) => v >= thr && r[i] != 0,
                    (None, Some((lo, hi))) => v >= lo && v <= hi,
                    (None, None) => v >= thr,
                };
                *f = u8::from(ok);
            }
        }
    }
}

/// Bit `b` of the result = `flags[b]` (each 0 or 1): eight bytes at a time with the multiply-gather trick.
#[inline]
fn gather_bits(flags: &[u8; 64]) -> u64 {
    let mut word = 0u64;
    for b in 0..8 {
        let f = &flags[8 * b..8 * b + 8];
        let x = u64::from_le_bytes([f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7]]);
        word |= (x.wrapping_mul(0x0102_0408_1020_4080) >> 56) << (8 * b);
    }
    word
}

/// Fills one padded bit row (bit `i + 1` = sample `i` inside) and, when given, the row's inside flags.
fn fill_row(
    frow: &[i16],
    rrow: Option<&[u8]>,
    window: Option<(i16, i16)>,
    thr: i16,
    out: &mut [u64],
    flags_out: Option<&mut [u8]>,
) {
    let mut carry = 0u64;
    let mut next = 0;
    let mut flags = [0u8; 64];
    let mut flags_out = flags_out;
    for (c, chunk) in frow.chunks(64).enumerate() {
        let rchunk = rrow.map(|r| &r[c * 64..c * 64 + chunk.len()]);
        inside_flags(chunk, rchunk, window, thr, &mut flags);
        if chunk.len() < 64 {
            flags[chunk.len()..].fill(0);
        }
        if let Some(fo) = flags_out.as_deref_mut() {
            let dst = &mut fo[c * 64..c * 64 + chunk.len()];
            match <&mut [u8; 64]>::try_from(&mut *dst) {
                // A fixed-size copy is a few vector stores, not a call.
                Ok(full) => *full = flags,
                Err(_) => dst.copy_from_slice(&flags[..chunk.len()]),
            }
        }
        let word = gather_bits(&flags);
        out[c] = (word << 1) | carry;
        carry = word >> 63;
        next = c + 1;
    }
    if let Some(o) = out.get_mut(next) {
        *o |= carry;
    }
}

/// Padded grid layout: samples `0..p*`, real sample `i` at padded `i + 1`.
struct Layout {
    nx: usize,
    ny: usize,
    nz: usize,
    px: usize,
    py: usize,
    pz: usize,
    /// Words per bit row.
    w: usize,
}

impl Layout {
    fn new(dims: [usize; 3]) -> Layout {
        let px = dims[0] + 2;
        Layout {
            nx: dims[0],
            ny: dims[1],
            nz: dims[2],
            px,
            py: dims[1] + 2,
            pz: dims[2] + 2,
            w: px.div_ceil(64),
        }
    }

    #[inline]
    fn is_padding(&self, p: [usize; 3]) -> bool {
        p[0] == 0 || p[1] == 0 || p[2] == 0 || p[0] == self.px - 1 || p[1] == self.py - 1 || p[2] == self.pz - 1
    }

    /// Linear sample index of a non-padding padded position.
    #[inline]
    fn sample(&self, p: [usize; 3]) -> usize {
        ((p[2] - 1) * self.ny + (p[1] - 1)) * self.nx + (p[0] - 1)
    }
}

/// Word `w` of the x-crossing mask of a bit row: bit `i` set when samples `i` and `i + 1` differ.
#[inline]
fn xmask_word(row: &[u64], w: usize) -> u64 {
    let next = row.get(w + 1).copied().unwrap_or(0);
    row[w] ^ ((row[w] >> 1) | (next << 63))
}

#[inline]
fn bit(row: &[u64], i: usize) -> bool {
    (row[i >> 6] >> (i & 63)) & 1 == 1
}

/// Bits `i` and `i + 1` of a row as a 2-bit number.
#[inline]
fn two_bits(row: &[u64], i: usize) -> usize {
    let w = i >> 6;
    let b = i & 63;
    let lo = (row[w] >> b) & 1;
    let hi = if b == 63 {
        row[w + 1] & 1
    } else {
        (row[w] >> (b + 1)) & 1
    };
    (lo | (hi << 1)) as usize
}

/// Cell edge -> (mask slot, column offset). Slots 0-3: x-edges of rows `(cj + dy, ck + dz)` (slot `dy + 2 dz`);
/// 4-5: y-edges of rows `(cj, ck + dz)`; 6-7: z-edges of rows `(cj + dy, ck)`.
const EDGE_SLOT: [(usize, usize); 12] = [
    (0, 0),
    (1, 0),
    (2, 0),
    (3, 0),
    (4, 0),
    (4, 1),
    (5, 0),
    (5, 1),
    (6, 0),
    (6, 1),
    (7, 0),
    (7, 1),
];

/// What one slab produces: its vertices (slab-local ids from 0) and its triangles in slab-local ids (ids at and
/// past `positions.len()` are the first vertices of the next slab).
struct SlabOutput {
    positions: Vec<[f64; 3]>,
    triangles: Vec<[u32; 3]>,
    /// Triangles of each active cell (see [`GridSurface`]).
    cell_triangles: Vec<u8>,
    /// Local id of the first vertex of each slice `k0..k1`.
    slice_vertices: Vec<u32>,
    /// Local index of the first triangle of each cell slice of the slab.
    slice_triangles: Vec<u32>,
    /// Grid edge kind of each vertex (see [`vertex_edge`]).
    vertex_edges: Vec<u8>,
    /// Inside samples of the slab's own slices.
    inside_samples: u64,
    /// Largest local id handed out (for the overflow check).
    max_local_id: u64,
}

/// The inside bits and first local vertex ids of the slices `k0..` of one slab.
struct SlabBits<'l> {
    lay: &'l Layout,
    k0: usize,
    bits: Vec<u64>,
    /// First local id of each (row, axis) of the slices `k0..=k1`.
    base: Vec<[u32; 3]>,
}

impl SlabBits<'_> {
    #[inline]
    fn words(&self, pj: usize, pk: usize) -> &[u64] {
        let r = (pk - self.k0) * self.lay.py + pj;
        &self.bits[r * self.lay.w..(r + 1) * self.lay.w]
    }

    #[inline]
    fn base(&self, pj: usize, pk: usize) -> [u32; 3] {
        self.base[(pk - self.k0) * self.lay.py + pj]
    }
}

struct Extractor<'a> {
    lay: &'a Layout,
    field: &'a [i16],
    inside: Inside<'a>,
    geometry: &'a GridGeometry,
    iso: f64,
    thr: i16,
}

impl Extractor<'_> {
    /// Everything for the rows of slices `k0..k1` and the cells whose lower slice is in `k0..k1`; the inside flags
    /// of the real slices among `k0..k1` go to `flags_out`.
    fn slab(&self, k0: usize, k1: usize, mut flags_out: Option<&mut [u8]>) -> SlabOutput {
        let lay = self.lay;
        // Bits of slices k0..k1 + 2: vertices of slice k1 - 1 need slice k1, ids of slice k1 need slice k1 + 1.
        let kend = (k1 + 2).min(lay.pz);
        let slice_words = lay.py * lay.w;
        let mut sb = SlabBits {
            lay,
            k0,
            bits: vec![0u64; (kend - k0) * slice_words],
            base: vec![[0u32; 3]; ((k1 + 1).min(lay.pz) - k0) * lay.py],
        };
        let mut positions = Vec::new();
        let mut vertex_edges = Vec::new();
        let slice_len = lay.nx * lay.ny;
        let first_own = k0.max(1);
        let mut fill = |sb: &mut SlabBits, pk: usize, pj: usize| {
            if pk == 0 || pk > lay.nz || pj == 0 || pj > lay.ny {
                return;
            }
            // Only this slab's own slices report their flags (each real slice is owned by one slab).
            let flags = match flags_out.as_deref_mut() {
                Some(f) if pk >= first_own && pk < k1 => {
                    let start = (pk - first_own) * slice_len + (pj - 1) * lay.nx;
                    Some(&mut f[start..start + lay.nx])
                }
                _ => None,
            };
            let r = (pk - k0) * lay.py + pj;
            self.fill_row(&mut sb.bits[r * lay.w..(r + 1) * lay.w], pk, pj, flags);
        };
        // Slices before `filled` are packed. Slice pk + 1 is packed row by row just before the vertices of the same
        // row of slice pk are placed, so the field samples those read (rows of slices pk and pk + 1) are still in
        // cache.
        let mut slice_vertices = Vec::with_capacity(k1 - k0);
        let mut filled = k0;
        for pk in k0..k1 {
            slice_vertices.push(positions.len() as u32);
            while filled <= pk {
                (0..lay.py).for_each(|pj| fill(&mut sb, filled, pj));
                filled += 1;
            }
            let interleave = filled == pk + 1 && filled < kend;
            for pj in 0..lay.py {
                if interleave {
                    fill(&mut sb, pk + 1, pj);
                }
                self.row_vertices(&mut sb, pj, pk, &mut positions, &mut vertex_edges);
            }
            if interleave {
                filled += 1;
            }
        }
        while filled < kend {
            (0..lay.py).for_each(|pj| fill(&mut sb, filled, pj));
            filled += 1;
        }
        let own_words = (first_own.min(k1) - k0) * slice_words..(k1.min(lay.nz + 1).max(first_own) - k0) * slice_words;
        let inside_samples = sb.bits[own_words].iter().map(|w| u64::from(w.count_ones())).sum();
        // Ids of the next slab's first slice continue after this slab's vertices.
        let mut next_id = positions.len() as u64;
        if k1 < lay.pz {
            for pj in 0..lay.py {
                let c = self.row_counts(&sb, pj, k1);
                let b = &mut sb.base[(k1 - k0) * lay.py + pj];
                for a in 0..3 {
                    b[a] = next_id as u32;
                    next_id += u64::from(c[a]);
                }
            }
        }
        let (triangles, cell_triangles, slice_triangles) = self.slab_triangles(&sb, k0, k1);
        SlabOutput {
            positions,
            triangles,
            cell_triangles,
            slice_vertices,
            slice_triangles,
            vertex_edges,
            inside_samples,
            max_local_id: next_id,
        }
    }

    /// Packs padded row `pj` of padded slice `pk`, both inside the real grid (padding rows stay zero).
    fn fill_row(&self, out: &mut [u64], pk: usize, pj: usize, flags_out: Option<&mut [u8]>) {
        let lay = self.lay;
        let start = ((pk - 1) * lay.ny + (pj - 1)) * lay.nx;
        let frow = &self.field[start..start + lay.nx];
        let (rrow, window) = match self.inside {
            Inside::Above => (None, None),
            Inside::Region(r) => (Some(&r[start..start + lay.nx]), None),
            Inside::Window { max } => (None, Some((self.thr, max))),
        };
        fill_row(frow, rrow, window, self.thr, out, flags_out);
    }

    /// Crossed x-, y- and z-edges of row `(pj, pk)`.
    fn row_counts(&self, sb: &SlabBits, pj: usize, pk: usize) -> [u32; 3] {
        let lay = self.lay;
        let r = sb.words(pj, pk);
        let cx = (0..lay.w).map(|w| xmask_word(r, w).count_ones()).sum();
        let cy = if pj + 1 < lay.py {
            r.iter()
                .zip(sb.words(pj + 1, pk))
                .map(|(a, b)| (a ^ b).count_ones())
                .sum()
        } else {
            0
        };
        let cz = if pk + 1 < lay.pz {
            r.iter()
                .zip(sb.words(pj, pk + 1))
                .map(|(a, b)| (a ^ b).count_ones())
                .sum()
        } else {
            0
        };
        [cx, cy, cz]
    }

    /// Appends the vertices of row `(pj, pk)` (x-, then y-, then z-edges, each by column) and records their first
    /// local ids.
    fn row_vertices(&self, sb: &mut SlabBits, pj: usize, pk: usize, out: &mut Vec<[f64; 3]>, edges: &mut Vec<u8>) {
        let lay = self.lay;
        let mut base = [0u32; 3];
        base[0] = out.len() as u32;
        {
            let row = sb.words(pj, pk);
            for w in 0..lay.w {
                let mut m = xmask_word(row, w);
                while m != 0 {
                    let pi = w * 64 + m.trailing_zeros() as usize;
                    let from_inside = bit(row, pi);
                    out.push(self.edge_vertex([pi, pj, pk], 0, from_inside));
                    edges.push(if from_inside {
                        vertex_edge::X_FROM_INSIDE
                    } else {
                        vertex_edge::X_FROM_OUTSIDE
                    });
                    m &= m - 1;
                }
            }
            base[1] = out.len() as u32;
            edges.resize(out.len(), vertex_edge::OTHER);
            if pj + 1 < lay.py {
                let up = sb.words(pj + 1, pk);
                for w in 0..lay.w {
                    let mut m = row[w] ^ up[w];
                    while m != 0 {
                        let pi = w * 64 + m.trailing_zeros() as usize;
                        out.push(self.edge_vertex([pi, pj, pk], 1, bit(row, pi)));
                        m &= m - 1;
                    }
                }
            }
            base[2] = out.len() as u32;
            if pk + 1 < lay.pz {
                let up = sb.words(pj, pk + 1);
                for w in 0..lay.w {
                    let mut m = row[w] ^ up[w];
                    while m != 0 {
                        let pi = w * 64 + m.trailing_zeros() as usize;
                        out.push(self.edge_vertex([pi, pj, pk], 2, bit(row, pi)));
                        m &= m - 1;
                    }
                }
            }
        }
        edges.resize(out.len(), vertex_edge::OTHER);
        sb.base[(pk - sb.k0) * lay.py + pj] = base;
    }

    /// Position of the vertex on the edge from padded `p0` along `axis`, whose start is inside iff `inside0`.
    #[inline]
    fn edge_vertex(&self, p0: [usize; 3], axis: usize, inside0: bool) -> [f64; 3] {
        let mut p1 = p0;
        p1[axis] += 1;
        let (a, b) = if inside0 { (p0, p1) } else { (p1, p0) };
        let t = if self.lay.is_padding(b) {
            0.0
        } else {
            let va = f64::from(self.field[self.lay.sample(a)]);
            let ib = self.lay.sample(b);
            let vb = f64::from(self.field[ib]);
            // An excluded sample above iso (another component, or a voxel the recipe cut away) puts the vertex at
            // the midpoint; one below iso is an ordinary crossing, interpolated on the field.
            let excluded_above = match self.inside {
                Inside::Above => false,
                Inside::Region(r) => vb >= self.iso && r[ib] == 0,
                Inside::Window { max } => self.field[ib] > max,
            };
            if excluded_above {
                0.5
            } else {
                (va - self.iso) / (va - vb)
            }
        };
        let t = t.clamp(T_MIN, 1.0 - T_MIN);
        let mut v = [a[0] as f64 - 1.0, a[1] as f64 - 1.0, a[2] as f64 - 1.0];
        v[axis] += if b[axis] > a[axis] { t } else { -t };
        let p = self.geometry.to_patient(v);
        [p.x, p.y, p.z]
    }

    /// Triangles of the cells whose lower slice is in `k0..k1`, in (slice, row, column) order, with local ids.
    /// Also returns the number of triangles of each active cell and the index of each cell slice's first triangle.
    fn slab_triangles(&self, sb: &SlabBits, k0: usize, k1: usize) -> (Vec<[u32; 3]>, Vec<u8>, Vec<u32>) {
        let lay = self.lay;
        let table = case_table();
        let w = lay.w;
        let mut tris = Vec::new();
        let mut cells = Vec::new();
        let mut slices = Vec::with_capacity(k1 - k0);
        // Per cell row: the 8 crossing masks, their running popcounts and base ids (see EDGE_SLOT).
        let mut masks = vec![0u64; 8 * w];
        let mut cum = vec![0u32; 8 * w];
        let mut or = vec![0u64; w + 1];
        let mut and = vec![0u64; w + 1];
        for ck in k0..k1.min(lay.pz - 1) {
            slices.push(tris.len() as u32);
            for cj in 0..lay.py - 1 {
                let rows: [&[u64]; 4] = [
                    sb.words(cj, ck),
                    sb.words(cj + 1, ck),
                    sb.words(cj, ck + 1),
                    sb.words(cj + 1, ck + 1),
                ];
                let mut any = 0u64;
                for x in 0..w {
                    or[x] = rows[0][x] | rows[1][x] | rows[2][x] | rows[3][x];
                    and[x] = rows[0][x] & rows[1][x] & rows[2][x] & rows[3][x];
                    any |= or[x];
                }
                if any == 0 {
                    continue;
                }
                let b00 = sb.base(cj, ck);
                let b10 = sb.base(cj + 1, ck);
                let b01 = sb.base(cj, ck + 1);
                let b11 = sb.base(cj + 1, ck + 1);
                let slot_base = [b00[0], b10[0], b01[0], b11[0], b00[1], b01[1], b00[2], b10[2]];
                for x in 0..w {
                    masks[x] = xmask_word(rows[0], x);
                    masks[w + x] = xmask_word(rows[1], x);
                    masks[2 * w + x] = xmask_word(rows[2], x);
                    masks[3 * w + x] = xmask_word(rows[3], x);
                    masks[4 * w + x] = rows[0][x] ^ rows[1][x];
                    masks[5 * w + x] = rows[2][x] ^ rows[3][x];
                    masks[6 * w + x] = rows[0][x] ^ rows[2][x];
                    masks[7 * w + x] = rows[1][x] ^ rows[3][x];
                }
                for s in 0..8 {
                    let mut acc = 0u32;
                    for x in 0..w {
                        cum[s * w + x] = acc;
                        // Most words of a row are empty: skip their (software, on baseline x86-64) popcount.
                        let m = masks[s * w + x];
                        if m != 0 {
                            acc += m.count_ones();
                        }
                    }
                }
                for x in 0..w {
                    let or_next = (or[x] >> 1) | (or.get(x + 1).copied().unwrap_or(0) << 63);
                    let and_next = (and[x] >> 1) | (and.get(x + 1).copied().unwrap_or(0) << 63);
                    // A cell is active when some corner is inside and not all are.
                    let mut active = (or[x] | or_next) & !(and[x] & and_next);
                    while active != 0 {
                        let ci = x * 64 + active.trailing_zeros() as usize;
                        active &= active - 1;
                        let case = two_bits(rows[0], ci)
                            | (two_bits(rows[1], ci) << 2)
                            | (two_bits(rows[2], ci) << 4)
                            | (two_bits(rows[3], ci) << 6);
                        let mut ids = [0u32; 12];
                        let mut em = table.edge_mask[case];
                        while em != 0 {
                            let e = em.trailing_zeros() as usize;
                            em &= em - 1;
                            let (s, off) = EDGE_SLOT[e];
                            let pos = ci + off;
                            let (ww, b) = (pos >> 6, pos & 63);
                            let below = masks[s * w + ww] & ((1u64 << b) - 1);
                            ids[e] = slot_base[s] + cum[s * w + ww] + below.count_ones();
                        }
                        let t0 = table.tri_start[case] as usize;
                        let t1 = table.tri_start[case + 1] as usize;
                        cells.push((t1 - t0) as u8);
                        for t in &table.tris[t0..t1] {
                            tris.push([ids[t[0] as usize], ids[t[1] as usize], ids[t[2] as usize]]);
                        }
                    }
                }
            }
        }
        (tris, cells, slices)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::mesh::check::MeshReport;
    use proptest::prelude::*;

    /// Partial-volume sphere: HU 1000 inside, -1000 outside, linear in the signed distance over `ramp_mm`.
    pub(crate) fn sphere_field(g: &GridGeometry, center: [f64; 3], radius_mm: f64, ramp_mm: f64) -> Vec<i16> {
        let [nx, ny, nz] = g.dims;
        let mut f = vec![0i16; g.len()];
        for k in 0..nz {
            for j in 0..ny {
                for i in 0..nx {
                    let p = g.to_patient([i as f64, j as f64, k as f64]);
                    let d = ((p.x - center[0]).powi(2) + (p.y - center[1]).powi(2) + (p.z - center[2]).powi(2)).sqrt();
                    let s = ((radius_mm - d) / (0.5 * ramp_mm)).clamp(-1.0, 1.0);
                    f[g.index(i, j, k)] = (1000.0 * s).round() as i16;
                }
            }
        }
        f
    }

    pub(crate) fn tilted_axes(deg: f64) -> [[f64; 3]; 3] {
        let (s, c) = deg.to_radians().sin_cos();
        [[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]]
    }

    /// A grid of `spacing` covering a sphere of radius `r` around `center` with a margin, axes `axes`.
    fn covering_grid(center: [f64; 3], r: f64, spacing: [f64; 3], axes: [[f64; 3]; 3]) -> GridGeometry {
        let half = r + 3.0;
        let dims: [usize; 3] = std::array::from_fn(|a| (2.0 * half / spacing[a]).ceil() as usize + 1);
        // Origin such that the grid centre is near `center` (axes orthonormal); the sub-voxel offset keeps the
        // sphere from sitting symmetrically in the grid, so tilted and straight grids sample it differently.
        let mut origin = [center[0] + 0.137, center[1] - 0.211, center[2] + 0.073];
        for a in 0..3 {
            let off = 0.5 * (dims[a] - 1) as f64 * spacing[a];
            for c in 0..3 {
                origin[c] -= off * axes[a][c];
            }
        }
        GridGeometry {
            dims,
            spacing_mm: spacing,
            origin_mm: origin,
            axes,
        }
    }

    fn check_sphere(g: &GridGeometry, center: [f64; 3], r: f64) {
        let ramp = 2.0 * g.spacing_mm.iter().cloned().fold(0.0, f64::max);
        let field = sphere_field(g, center, r, ramp);
        let mesh = marching_cubes(g, &field, 0.0, None).expect("valid input");
        let report = MeshReport::new(&mesh);
        assert!(report.is_valid(), "{report}");
        assert_eq!(report.components, 1);
        let dist: Vec<f64> = mesh
            .positions
            .iter()
            .map(|p| {
                (((p[0] - center[0]).powi(2) + (p[1] - center[1]).powi(2) + (p[2] - center[2]).powi(2)).sqrt() - r)
                    .abs()
            })
            .collect();
        let mean = dist.iter().sum::<f64>() / dist.len() as f64;
        let max = dist.iter().cloned().fold(0.0, f64::max);
        let exact = 4.0 / 3.0 * std::f64::consts::PI * r.powi(3);
        let rel = (mesh.signed_volume_mm3() - exact) / exact;
        eprintln!(
            "sphere {:?} {:?}: {} triangles, mean |d| {mean:.5} mm, max |d| {max:.5} mm, volume error {:.4} %",
            g.spacing_mm,
            g.dims,
            mesh.triangles.len(),
            rel * 100.0
        );
        assert!(mean <= 0.02, "mean distance {mean}");
        assert!(max <= 0.1, "max distance {max}");
        assert!(rel.abs() <= 0.005, "volume error {rel}");
        // Still no degenerate triangle after rounding to f32 for STL.
        for t in &mesh.triangles {
            let p: Vec<[f64; 3]> = t
                .iter()
                .map(|&v| mesh.positions[v as usize].map(|c| f64::from(c as f32)))
                .collect();
            let n = crate::mesh::cross(crate::mesh::sub(p[1], p[0]), crate::mesh::sub(p[2], p[0]));
            assert!(crate::mesh::norm(n) > 0.0);
        }
    }

    #[test]
    fn sphere_axis_aligned() {
        let c = [10.123, -20.456, 35.789];
        check_sphere(&covering_grid(c, 20.0, [0.5; 3], tilted_axes(0.0)), c, 20.0);
    }

    #[test]
    fn sphere_tilted() {
        let c = [-5.31, 12.7, 101.4];
        check_sphere(&covering_grid(c, 20.0, [0.5; 3], tilted_axes(18.5)), c, 20.0);
    }

    #[test]
    fn sphere_anisotropic() {
        let c = [0.37, 0.11, -0.29];
        check_sphere(&covering_grid(c, 20.0, [0.4, 0.4, 1.25], tilted_axes(0.0)), c, 20.0);
    }

    #[test]
    fn bone_cut_by_the_field_of_view_is_capped() {
        // Everything inside: the surface wraps the sample box tightly, at most T_MIN voxel outside it.
        let g = GridGeometry::axis_aligned([4, 3, 2], [0.5, 0.5, 1.0], [0.0; 3]);
        let field = vec![1000i16; g.len()];
        let mesh = marching_cubes(&g, &field, 300.0, None).expect("valid input");
        let r = MeshReport::new(&mesh);
        assert!(r.is_valid(), "{r}");
        let b = mesh.bounding_box().expect("non-empty");
        for a in 0..3 {
            let s = g.spacing_mm[a];
            assert!((b.min_mm[a] + T_MIN * s).abs() < 1e-12);
            assert!((b.max_mm[a] - (g.dims[a] as f64 - 1.0 + T_MIN) * s).abs() < 1e-12);
        }
        let ext = |n: usize, s: f64, m: f64| (n as f64 - 1.0 + m) * s;
        let inner = ext(4, 0.5, 0.0) * ext(3, 0.5, 0.0) * ext(2, 1.0, 0.0);
        let outer = ext(4, 0.5, 2.0 * T_MIN) * ext(3, 0.5, 2.0 * T_MIN) * ext(2, 1.0, 2.0 * T_MIN);
        let v = mesh.signed_volume_mm3();
        assert!(v > inner && v < outer, "{inner} < {v} < {outer}");
        // A single voxel gives a closed octahedron-like surface.
        let g1 = GridGeometry::axis_aligned([1, 1, 1], [1.0; 3], [0.0; 3]);
        let m1 = marching_cubes(&g1, &[5], 0.0, None).expect("valid input");
        assert_eq!(m1.triangles.len(), 8);
        assert!(MeshReport::new(&m1).is_valid());
    }

    #[test]
    fn region_splits_touching_bones_at_the_midpoint() {
        // A uniform slab of bone along x; the region keeps x < 5 only: the cut lies halfway between samples 4 and 5.
        let g = GridGeometry::axis_aligned([10, 4, 4], [1.0; 3], [0.0; 3]);
        let field = vec![1000i16; g.len()];
        let mut region = vec![0u8; g.len()];
        for k in 0..4 {
            for j in 0..4 {
                for i in 0..5 {
                    region[g.index(i, j, k)] = 1;
                }
            }
        }
        let mesh = marching_cubes(&g, &field, 300.0, Some(&region)).expect("valid input");
        let r = MeshReport::new(&mesh);
        assert!(r.is_valid(), "{r}");
        let max_x = mesh.positions.iter().map(|p| p[0]).fold(f64::MIN, f64::max);
        assert!((max_x - 4.5).abs() < 1e-12, "cut at {max_x}");
        // An excluded sample below iso keeps ordinary interpolation when that is nearer the inside sample.
        let mut f2 = field.clone();
        for k in 0..4 {
            for j in 0..4 {
                f2[g.index(5, j, k)] = -1000;
            }
        }
        let m2 = marching_cubes(&g, &f2, 300.0, Some(&region)).expect("valid input");
        let max_x2 = m2.positions.iter().map(|p| p[0]).fold(f64::MIN, f64::max);
        assert!((max_x2 - 4.35).abs() < 1e-12, "cut at {max_x2}");
    }

    #[test]
    fn size_mismatch_is_an_error() {
        let g = GridGeometry::axis_aligned([2, 2, 2], [1.0; 3], [0.0; 3]);
        assert!(matches!(
            marching_cubes(&g, &[0; 7], 0.0, None),
            Err(MeshError::FieldSizeMismatch { what: "field", .. })
        ));
        assert!(matches!(
            marching_cubes(&g, &[0; 8], 0.0, Some(&[1; 9])),
            Err(MeshError::FieldSizeMismatch { what: "region", .. })
        ));
        assert!(marching_cubes(&g, &[0; 8], f32::NAN, None).expect("valid").is_empty());
    }

    /// Deterministic pseudo-random blobs for the determinism tests.
    pub(crate) fn blob_field(dims: [usize; 3], seed: u64) -> Vec<i16> {
        let mut s = seed;
        let mut rnd = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s % 10_000) as f64 / 10_000.0
        };
        let blobs: Vec<([f64; 3], f64)> = (0..12)
            .map(|_| {
                (
                    [rnd() * dims[0] as f64, rnd() * dims[1] as f64, rnd() * dims[2] as f64],
                    2.0 + 6.0 * rnd(),
                )
            })
            .collect();
        let mut f = vec![0i16; dims[0] * dims[1] * dims[2]];
        for k in 0..dims[2] {
            for j in 0..dims[1] {
                for i in 0..dims[0] {
                    let mut v = -1000.0f64;
                    for (c, r) in &blobs {
                        let d =
                            ((i as f64 - c[0]).powi(2) + (j as f64 - c[1]).powi(2) + (k as f64 - c[2]).powi(2)).sqrt();
                        v = v.max(1000.0 * (r - d).clamp(-1.0, 1.0));
                    }
                    v += 300.0 * (rnd() - 0.5);
                    f[(k * dims[1] + j) * dims[0] + i] = v as i16;
                }
            }
        }
        f
    }

    #[test]
    fn identical_output_with_one_and_two_threads() {
        let g = GridGeometry::axis_aligned([37, 41, 29], [0.5, 0.6, 0.7], [1.0, 2.0, 3.0]);
        let field = blob_field(g.dims, 99);
        let run = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("thread pool")
                .install(|| {
                    let mut mask = vec![0u8; field.len()];
                    let window = grid_surface_of_window(&g, &field, -300, 700, Some(&mut mask)).expect("valid input");
                    (grid_surface(&g, &field, 0.0, None).expect("valid input"), window, mask)
                })
        };
        let one = run(1);
        let two = run(2);
        assert!(one.0.mesh().triangles.len() > 1000);
        // Meshes, cell and slice records, vertex edges, counts and masks alike.
        assert_eq!(one, two);
        assert!(MeshReport::new(one.0.mesh()).is_valid());
        assert!(one.1.inside_samples() > 0);
    }

    /// Small random grids (tilted, anisotropic), fields, iso values and region masks.
    pub(crate) fn field_case() -> impl Strategy<Value = (GridGeometry, Vec<i16>, f32, Option<Vec<u8>>)> {
        (
            1usize..7,
            1usize..7,
            1usize..7,
            0.3f64..2.0,
            0.3f64..2.0,
            0.3f64..2.0,
            -40.0f64..40.0,
        )
            .prop_flat_map(|(nx, ny, nz, sx, sy, sz, angle)| {
                let n = nx * ny * nz;
                let mut g = GridGeometry::axis_aligned([nx, ny, nz], [sx, sy, sz], [3.0, -7.0, 11.0]);
                g.axes = tilted_axes(angle);
                (
                    Just(g),
                    prop::collection::vec(prop_oneof![Just(-100i16), Just(100i16), -100i16..100], n),
                    prop_oneof![Just(0.0f32), -60.0f32..60.0],
                    prop::option::of(prop::collection::vec(0u8..2, n)),
                )
            })
    }

    proptest! {
        #![proptest_config(crate::testing::proptest_config(400))]
        #[test]
        fn every_random_field_gives_a_valid_mesh((g, field, iso, region) in field_case()) {
            let mesh = marching_cubes(&g, &field, iso, region.as_deref()).expect("valid input");
            let report = MeshReport::new(&mesh);
            prop_assert!(report.is_valid(), "{}", report);
            // Volume is bounded by the padded grid box.
            let v = mesh.signed_volume_mm3();
            let bound: f64 = (0..3).map(|a| (g.dims[a] as f64 + 1.0) * g.spacing_mm[a]).product();
            prop_assert!(v >= 0.0 && v <= bound);
            prop_assert_eq!(mesh.is_empty(), v == 0.0);
        }
    }
}
