//! Repair of a bone surface segmented elsewhere (3D Slicer, Mimics, InVesalius ...) and read from STL.
//!
//! Why: a plan can start from a bone model made in another tool instead of from a CT. Those STL files are rarely
//! clean: STL stores every facet with its own corners, so an exporter that computes each facet's corners on its own
//! (or prints them with 6 significant digits) leaves copies of one vertex a few micrometres apart; facets come
//! duplicated, flipped, or with two corners at the same point, and whole parts inside out. None of that changes the
//! bone, and all of it breaks the checks every guide step relies on ([`super::check`]). Holes, surfaces glued along
//! an edge or through each other do change the bone, and guessing there would put a guide on a surface nobody
//! segmented. So [`repair`] fixes what can be fixed without inventing geometry, refuses the rest naming the places
//! in patient mm with what to do in the segmentation tool, and reports what it did; the result passes every check
//! of [`MeshReport`] or is refused.
//!
//! What is repaired, in this order:
//! 1. **Exact welding**: corners with bit-identical coordinates become one vertex (`-0.0` equals `0.0`).
//!    [`super::stl::read_stl`] already does this; it is repeated for meshes from elsewhere.
//! 2. **Welding within [`WELD_TOLERANCE_MM`]** (`RepairOptions::weld_tolerance_mm`), of vertices on *open* edges
//!    only, and never two corners of one face. A surface that is closed after exact welding is therefore never
//!    touched by it, however small its features. Two copies of one vertex printed with 6 significant digits differ
//!    by at most one unit of the last digit on each axis, 0.001 mm for coordinates under 1000 mm, so at most
//!    0.0017 mm apart; the tolerance covers that. Distinct vertices that close are below anything a CT resolves
//!    (voxels of 0.2 mm and more) or a printer reproduces (~0.05 mm); the shortest edge of our own marching-cubes
//!    surfaces of the real test CTs is 0.0025 mm (skull-phantom-1mm, 0.45 mm pixels; 0.005 mm for cranium-0051 and
//!    mandible-0014). An open edge shorter than the tolerance is collapsed (its faces are counted in
//!    [`RepairReport::collapsed_by_weld`]); every merged vertex takes the position of the first of its copies and
//!    moves by at most a chain of tolerances (the largest move is reported). Welding that makes the surface
//!    non-manifold (two separate sheets closer than the tolerance) is not undone but refused by the final checks,
//!    naming the place; a tolerance of 0 turns this step off.
//! 3. **Faces with a repeated corner** (as written in the file, or made by the weld) are dropped.
//! 4. **Duplicate faces**: faces with the same three vertices (in any order) keep only the first.
//! 5. **Zero-area faces** whose three distinct corners lie on a line (area below [`DEGENERATE_AREA_MM2`]) are
//!    dropped when they are extra faces (their edges are balanced without them); when one fills a T-junction (its
//!    middle corner on the opposite edge, each edge shared with one other face) the face across its long edge is
//!    split at that corner instead, which changes no geometry. Otherwise it is dropped and the checks name what is
//!    left.
//! 6. **Orientation**: each patch of faces connected through manifold edges is made consistent with the
//!    orientation most of its faces have (flipped faces are reported); a patch where no consistent orientation
//!    exists (Moebius-like) is refused.
//! 7. **Small holes** are filled when `RepairOptions::fill_small_holes` is on (the default) and the hole is a
//!    simple loop of at most [`MAX_FILLED_HOLE_EDGES`] edges and [`MAX_FILLED_HOLE_PERIMETER_MM`] of perimeter
//!    whose corners lie within [`MAX_FILLED_HOLE_OUT_OF_PLANE_MM`] of one plane: that is the size of a few of the
//!    surface's own triangles (a bone surface from a 1 mm CT has edges of about 1.2 mm), missing where an exporter
//!    dropped faces, and a flat patch over it is as close to the bone as the triangles around it. Each filled hole
//!    is reported with its place and perimeter. Larger or warped holes are refused: only the segmentation knows
//!    what surface was there. A loop whose patch would turn more than [`FOLD_BACK_DEG`] against a face on it is
//!    not a hole in a surface but the rim of a lone face or strip, and is refused too.
//! 8. **Outward**: the checks of [`MeshReport`] find the closed components whose orientation contradicts their
//!    nesting (an outer shell with negative volume, a cavity nested inside an odd number of shells with positive
//!    volume, the definitions of [`super::check`]); those are turned over, which changes nothing else the checks
//!    see, so they are not run again. Only on a closed, manifold surface: while a shell is open, nothing can be
//!    said to lie inside it, and such a surface is refused anyway.
//!
//! Refused, with the places: holes that are not filled, non-manifold edges and vertices, self-intersections and
//! non-orientable patches. Small disconnected parts are *not* dropped (a loose fragment may be a bone piece the
//! surgeon needs); the report lists the closed parts under [`FRAGMENT_VOLUME_FRACTION`] of the largest part's
//! volume, so a user can see them and remove them in the segmentation tool if they are debris.
//!
//! Everything runs in a fixed order (sorts with total orders, the first face or vertex wins), so the same input
//! gives the same bytes whatever the thread count.

use std::collections::{HashMap, HashSet};
use std::fmt;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;
use thiserror::Error;

use super::check::{
    fmt_mm, inward_components, write_list, DefectList, EdgeDefect, MeshReport, VertexTriangles, DEGENERATE_AREA_MM2,
};
use super::{centroid, compact, cross, dot, norm, sub, BoundingBox, ConcurrentUnionFind, Mesh, MeshError};

/// Default tolerance of the weld of vertices on open edges, mm: two copies of one vertex printed with 6
/// significant digits are at most 0.0017 mm apart (coordinates under 1000 mm); the shortest edges of bone surfaces
/// from CT are 0.0025 mm and longer. See the module documentation.
pub const WELD_TOLERANCE_MM: f64 = 0.002;
/// Largest weld tolerance accepted, mm: beyond it welding would merge real features of a fine bone surface
/// (a quarter of a 0.2 mm voxel).
pub const MAX_WELD_TOLERANCE_MM: f64 = 0.05;
/// Most edges of a hole that is filled: a few missing triangles.
pub const MAX_FILLED_HOLE_EDGES: usize = 8;
/// Longest perimeter of a hole that is filled, mm: two or three triangles of a surface from a 1 mm CT.
pub const MAX_FILLED_HOLE_PERIMETER_MM: f64 = 8.0;
/// Farthest a corner of a filled hole may lie from the plane of the patch, mm: below the sub-voxel accuracy of a
/// surface from a CT with 0.2 mm voxels, so the patch is as flat as the bone around it.
pub const MAX_FILLED_HOLE_OUT_OF_PLANE_MM: f64 = 0.1;
/// A patch turning more than this against a face around its hole, degrees, folds back onto it: the rim of a lone
/// face or flat strip turns 180 degrees, while neighbouring faces of a surface from a CT turn at most about 90
/// degrees (the marching-cubes staircase, the corner of a box).
pub const FOLD_BACK_DEG: f64 = 120.0;
/// Closed parts with less volume than this fraction of the largest part are listed as fragments in the report.
pub const FRAGMENT_VOLUME_FRACTION: f64 = 0.01;

/// No face / no neighbour.
const NONE: u32 = u32::MAX;

/// What [`repair`] may do. The default is what a plan made from bone STL files uses.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepairOptions {
    /// Vertices on open edges closer than this, mm, are welded; 0 welds exactly equal positions only. At most
    /// [`MAX_WELD_TOLERANCE_MM`].
    pub weld_tolerance_mm: f64,
    /// Fill holes up to [`MAX_FILLED_HOLE_EDGES`] edges and [`MAX_FILLED_HOLE_PERIMETER_MM`] of perimeter (refuse
    /// every hole when off).
    pub fill_small_holes: bool,
}

impl Default for RepairOptions {
    fn default() -> Self {
        RepairOptions {
            weld_tolerance_mm: WELD_TOLERANCE_MM,
            fill_small_holes: true,
        }
    }
}

/// A face that was dropped, flipped or split.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FacePlace {
    /// Index of the face in the input (the facet number of the STL file, from 0).
    pub facet: u32,
    /// Its centroid, mm.
    pub centroid_mm: [f64; 3],
}

/// A vertex merged into another within the weld tolerance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WeldPlace {
    /// Where the merged vertex now is, mm.
    pub position_mm: [f64; 3],
    /// How far it moved, mm.
    pub shift_mm: f64,
}

/// A connected component (turned outward, or a small fragment).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ComponentPlace {
    /// Number of faces.
    pub triangles: usize,
    /// Its signed volume after repair, mm^3 (negative for a cavity).
    pub volume_mm3: f64,
    /// A point on it (centroid of its first face), mm.
    pub position_mm: [f64; 3],
    /// Its bounding box.
    pub bounding_box: BoundingBox,
}

/// What became of a hole.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoleStatus {
    /// Filled with a flat patch.
    Filled,
    /// More than [`MAX_FILLED_HOLE_EDGES`] edges.
    TooManyEdges,
    /// Perimeter above [`MAX_FILLED_HOLE_PERIMETER_MM`].
    TooLong,
    /// Corners farther than [`MAX_FILLED_HOLE_OUT_OF_PLANE_MM`] from one plane.
    NotFlat,
    /// Not a simple loop (it touches itself or another hole in a vertex), or its edges do not chain.
    NotSimple,
    /// The patch would turn more than [`FOLD_BACK_DEG`] against a face around the hole: the loop is the rim of a
    /// lone face or strip rather than a hole in a surface.
    FoldsBack,
    /// No patch without a new non-manifold edge or a degenerate triangle exists.
    NoPatch,
    /// Hole filling was turned off.
    FillingOff,
}

impl HoleStatus {
    fn describe(self) -> &'static str {
        match self {
            HoleStatus::Filled => "filled",
            HoleStatus::TooManyEdges => "too many edges to fill",
            HoleStatus::TooLong => "too long to fill",
            HoleStatus::NotFlat => "too warped to fill flat",
            HoleStatus::NotSimple => "not a simple loop",
            HoleStatus::FoldsBack => "a patch would fold back onto the faces around it",
            HoleStatus::NoPatch => "no valid patch",
            HoleStatus::FillingOff => "hole filling is off",
        }
    }
}

/// A hole: a loop of open edges.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hole {
    /// Number of edges of the loop.
    pub edges: usize,
    /// Its length, mm.
    pub perimeter_mm: f64,
    /// Mean of its corners, mm: the middle of the hole.
    pub center_mm: [f64; 3],
    /// Largest distance of a corner from the loop's mean plane, mm.
    pub out_of_plane_mm: f64,
    /// Bounding box of its corners.
    pub bounding_box: BoundingBox,
    /// Filled, or why not.
    pub status: HoleStatus,
}

/// What [`repair`] did. Counts, with the first [`super::check::MAX_EXAMPLES`] places of each kind.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RepairReport {
    /// Vertices of the input.
    pub input_vertices: usize,
    /// Faces of the input.
    pub input_triangles: usize,
    /// Vertices after repair.
    pub vertices: usize,
    /// Faces after repair.
    pub triangles: usize,
    /// Vertices merged into an earlier one with bit-identical coordinates.
    pub exact_duplicate_vertices: usize,
    /// The weld tolerance used, mm.
    pub weld_tolerance_mm: f64,
    /// Vertices on open edges merged into an earlier one within the tolerance.
    pub near_duplicate_vertices: DefectList<WeldPlace>,
    /// Largest distance a welded vertex moved, mm.
    pub max_weld_shift_mm: f64,
    /// Faces dropped because two of their corners are the same point in the input.
    pub degenerate_faces: DefectList<FacePlace>,
    /// Faces dropped because the weld within the tolerance put two of their corners together.
    pub collapsed_by_weld: DefectList<FacePlace>,
    /// Faces dropped as repeats of an earlier face with the same three vertices.
    pub duplicate_faces: DefectList<FacePlace>,
    /// Faces of zero area with three distinct corners on a line, dropped.
    pub zero_area_faces: DefectList<FacePlace>,
    /// Faces split at the middle corner of a zero-area face across their edge (a T-junction closed).
    pub split_faces: DefectList<FacePlace>,
    /// Faces turned to agree with their neighbours.
    pub flipped_faces: DefectList<FacePlace>,
    /// Closed components turned inside out (outer shells to positive volume, cavities to negative).
    pub inverted_components: DefectList<ComponentPlace>,
    /// Holes filled (see [`HoleStatus`]).
    pub filled_holes: DefectList<Hole>,
    /// Connected components after repair.
    pub components: usize,
    /// Closed parts under [`FRAGMENT_VOLUME_FRACTION`] of the largest part's volume (kept, listed for review).
    pub fragments: DefectList<ComponentPlace>,
    /// Enclosed volume after repair, mm^3.
    pub volume_mm3: f64,
}

impl RepairReport {
    /// True when the input was used as it is (no vertex merged, no face dropped, flipped, split or added).
    pub fn is_unchanged(&self) -> bool {
        self.exact_duplicate_vertices == 0
            && self.near_duplicate_vertices.count == 0
            && self.degenerate_faces.count == 0
            && self.collapsed_by_weld.count == 0
            && self.duplicate_faces.count == 0
            && self.zero_area_faces.count == 0
            && self.split_faces.count == 0
            && self.flipped_faces.count == 0
            && self.inverted_components.count == 0
            && self.filled_holes.count == 0
    }
}

impl fmt::Display for RepairReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} faces, {} vertices in; {} faces, {} vertices, {} component(s), volume {:.1} mm^3 out{}",
            self.input_triangles,
            self.input_vertices,
            self.triangles,
            self.vertices,
            self.components,
            self.volume_mm3,
            if self.is_unchanged() { "; nothing to repair" } else { "" }
        )?;
        if self.exact_duplicate_vertices > 0 {
            write!(
                f,
                "\n  {} exactly coincident vertices welded",
                self.exact_duplicate_vertices
            )?;
        }
        let weld = format!(
            "vertices on open edges welded within {} mm (largest move {:.1e} mm)",
            self.weld_tolerance_mm, self.max_weld_shift_mm
        );
        write_list(f, &weld, &self.near_duplicate_vertices, |d| fmt_mm(d.position_mm))?;
        let face = |d: &FacePlace| format!("facet {} at {}", d.facet, fmt_mm(d.centroid_mm));
        write_list(
            f,
            "faces with two corners at one point dropped",
            &self.degenerate_faces,
            face,
        )?;
        write_list(f, "faces collapsed by the weld dropped", &self.collapsed_by_weld, face)?;
        write_list(f, "duplicate faces dropped", &self.duplicate_faces, face)?;
        write_list(f, "zero-area faces dropped", &self.zero_area_faces, face)?;
        write_list(f, "faces split to close a T-junction", &self.split_faces, face)?;
        write_list(
            f,
            "faces flipped to agree with their neighbours",
            &self.flipped_faces,
            face,
        )?;
        let component = |d: &ComponentPlace| {
            format!(
                "{} faces near {} (volume {:.3} mm^3)",
                d.triangles,
                fmt_mm(d.position_mm),
                d.volume_mm3
            )
        };
        write_list(f, "components turned inside out", &self.inverted_components, component)?;
        write_list(f, "holes filled", &self.filled_holes, |h| {
            format!(
                "{} edges, perimeter {:.2} mm around {}",
                h.edges,
                h.perimeter_mm,
                fmt_mm(h.center_mm)
            )
        })?;
        write_list(
            f,
            "small parts kept (under 1 % of the largest part; remove them in the segmentation tool if they are debris)",
            &self.fragments,
            component,
        )
    }
}

/// What could not be repaired safely, with the places, and what was done before.
#[derive(Clone, Debug, Serialize)]
pub struct Unrepairable {
    /// Holes that were not filled, with why.
    pub holes: DefectList<Hole>,
    /// Edges where no consistent orientation exists (Moebius-like patches).
    pub non_orientable: DefectList<EdgeDefect>,
    /// The checks of the surface as far as it was repaired.
    pub check: MeshReport,
    /// What was repaired before giving up.
    pub repaired: RepairReport,
}

impl fmt::Display for Unrepairable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the surface cannot be repaired safely ({} faces after repair):",
            self.check.triangles
        )?;
        let advise = |f: &mut fmt::Formatter<'_>, text: &str| write!(f, "\n    -> {text}");
        let edge = |d: &EdgeDefect| format!("edge from {} to {}", fmt_mm(d.from_mm), fmt_mm(d.to_mm));
        let c = &self.check;
        if self.holes.count > 0 {
            write_list(f, "holes (open boundaries)", &self.holes, |h| {
                format!(
                    "{} edges, perimeter {:.1} mm around {} ({}{})",
                    h.edges,
                    h.perimeter_mm,
                    fmt_mm(h.center_mm),
                    h.status.describe(),
                    if h.out_of_plane_mm <= MAX_FILLED_HOLE_OUT_OF_PLANE_MM {
                        "; flat: cut by the edge of the scan or a plane?"
                    } else {
                        ""
                    }
                )
            })?;
            advise(
                f,
                "close the holes in the segmentation tool (fill holes, or export a closed surface / \"closed \
                 surface representation\") and export again",
            )?;
        } else if c.boundary_edges.count > 0 {
            write_list(f, "open edges", &c.boundary_edges, edge)?;
            advise(f, "close the surface in the segmentation tool and export again")?;
        }
        if c.non_manifold_edges.count > 0 {
            write_list(f, "edges shared by more than two faces", &c.non_manifold_edges, edge)?;
            advise(
                f,
                "parts touch along an edge or the model has an inner wall: merge the parts into one segment \
                 (or move them apart) in the segmentation tool",
            )?;
        }
        if c.non_manifold_vertices.count > 0 {
            write_list(
                f,
                "vertices where parts touch in a point",
                &c.non_manifold_vertices,
                |d| format!("{} ({} fans)", fmt_mm(d.position_mm), d.fans),
            )?;
            advise(
                f,
                "parts touch in a single point: merge them into one segment or move them apart in the \
                 segmentation tool",
            )?;
        }
        if self.non_orientable.count > 0 {
            write_list(f, "edges of a non-orientable patch", &self.non_orientable, edge)?;
            advise(
                f,
                "the surface twists into itself there: remake it in the segmentation tool",
            )?;
        } else if c.inconsistent_edges.count > 0 {
            write_list(f, "inconsistently oriented edges", &c.inconsistent_edges, edge)?;
        }
        if c.self_intersections.count > 0 {
            write_list(f, "pairs of faces crossing each other", &c.self_intersections, |d| {
                format!("near {}", fmt_mm(d.position_mm))
            })?;
            advise(
                f,
                "parts overlap or the surface folds through itself: merge overlapping parts (union) in the \
                 segmentation tool, or smooth the surface less",
            )?;
        }
        // With open or non-manifold shells the nesting, hence "inward", means nothing: left out.
        let closed = c.boundary_edges.count == 0 && c.non_manifold_edges.count == 0;
        if closed && c.inward_components.count > 0 {
            write_list(f, "components with unclear inside", &c.inward_components, |d| {
                format!("near {}", fmt_mm(d.position_mm))
            })?;
        }
        if c.degenerate_triangles.count > 0 {
            write_list(f, "degenerate faces left", &c.degenerate_triangles, |d| {
                format!("at {}", fmt_mm(d.centroid_mm))
            })?;
        }
        if !self.repaired.is_unchanged() {
            write!(f, "\n  repaired before giving up: {}", self.repaired)?;
        }
        Ok(())
    }
}

/// Why [`repair`] gave no mesh.
#[derive(Debug, Error)]
pub enum RepairError {
    /// The mesh itself is malformed (index out of range, non-finite position) or an option is out of range.
    #[error("{0}")]
    Mesh(#[from] MeshError),
    /// The mesh has no face.
    #[error("the model has no triangles; export the bone surface again")]
    Empty,
    /// Defects that cannot be repaired safely; nothing was produced.
    #[error("{0}")]
    Unrepairable(Box<Unrepairable>),
}

/// A repaired mesh, what was done, and its checks (all passed).
#[derive(Clone, Debug)]
pub struct Repaired {
    /// The surface: closed, manifold, outward, without degenerate faces or self-intersections.
    pub mesh: Mesh,
    /// What was done.
    pub report: RepairReport,
    /// Its checks, so a caller need not run them again.
    pub check: MeshReport,
}

/// Faces with the input facet each came from (`NONE` for patches).
struct Faces {
    tris: Vec<[u32; 3]>,
    source: Vec<u32>,
}

impl Faces {
    fn retain(&mut self, keep: &[bool]) {
        let mut k = 0;
        self.tris.retain(|_| {
            k += 1;
            keep[k - 1]
        });
        let mut k = 0;
        self.source.retain(|_| {
            k += 1;
            keep[k - 1]
        });
    }
}

fn place(positions: &[[f64; 3]], t: [u32; 3], facet: u32) -> FacePlace {
    FacePlace {
        facet,
        centroid_mm: centroid(&t.map(|v| positions[v as usize])),
    }
}

fn area_mm2(positions: &[[f64; 3]], t: [u32; 3]) -> f64 {
    let [a, b, c] = t.map(|v| positions[v as usize]);
    0.5 * norm(cross(sub(b, a), sub(c, a)))
}

fn repeats(t: &[u32; 3]) -> bool {
    t[0] == t[1] || t[1] == t[2] || t[0] == t[2]
}

#[inline]
fn edge_key(a: u32, b: u32) -> u64 {
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    (u64::from(lo) << 32) | u64::from(hi)
}

/// True when `t` runs from `a` to `b` (in its cyclic order).
fn runs(t: &[u32; 3], a: u32, b: u32) -> bool {
    (0..3).any(|k| t[k] == a && t[(k + 1) % 3] == b)
}

/// Half-edges sorted by undirected edge: `(edge key, face << 2 | slot)`, slot `k` running `t[k] -> t[k + 1]`.
/// Faces with a repeated corner are left out.
fn half_edges(tris: &[[u32; 3]]) -> Vec<(u64, u64)> {
    let mut half: Vec<(u64, u64)> = tris
        .par_iter()
        .enumerate()
        .filter(|(_, t)| !repeats(t))
        .flat_map_iter(|(f, t)| (0..3).map(move |k| (edge_key(t[k], t[(k + 1) % 3]), ((f as u64) << 2) | k as u64)))
        .collect();
    half.par_sort_unstable();
    half
}

/// Repairs `mesh` as described in the module documentation.
///
/// Errors: [`RepairError::Mesh`] for an out-of-range index, a non-finite position or an invalid option,
/// [`RepairError::Empty`] without faces, [`RepairError::Unrepairable`] naming every defect left and its place.
pub fn repair(mesh: Mesh, options: &RepairOptions) -> Result<Repaired, RepairError> {
    let tol = options.weld_tolerance_mm;
    if !(0.0..=MAX_WELD_TOLERANCE_MM).contains(&tol) {
        return Err(MeshError::InvalidOption(format!(
            "the weld tolerance must be between 0 and {MAX_WELD_TOLERANCE_MM} mm, not {tol} mm"
        ))
        .into());
    }
    mesh.validate()?;
    if mesh.triangles.is_empty() {
        return Err(RepairError::Empty);
    }
    let mut report = RepairReport {
        input_vertices: mesh.positions.len(),
        input_triangles: mesh.triangles.len(),
        weld_tolerance_mm: tol,
        ..RepairReport::default()
    };
    let Mesh { positions, triangles } = mesh;
    let mut faces = Faces {
        source: (0..triangles.len() as u32).collect(),
        tris: triangles,
    };

    // 1. Exact weld.
    let remap = exact_weld(&positions);
    report.exact_duplicate_vertices = remap.iter().enumerate().filter(|&(v, &r)| r as usize != v).count();
    if report.exact_duplicate_vertices > 0 {
        faces
            .tris
            .par_iter_mut()
            .for_each(|t| *t = t.map(|v| remap[v as usize]));
    }
    let repeated_before_weld: Vec<bool> = faces.tris.par_iter().map(repeats).collect();

    // 2. Weld within the tolerance, of vertices on open edges.
    let mut half = half_edges(&faces.tris);
    if tol > 0.0 {
        let remap = near_weld(&positions, &faces.tris, &half, tol, &mut report);
        if let Some(remap) = remap {
            faces
                .tris
                .par_iter_mut()
                .for_each(|t| *t = t.map(|v| remap[v as usize]));
        }
    }

    // 3-5. Repeated corners, duplicate faces, zero-area faces.
    let mut keep = vec![true; faces.tris.len()];
    for (f, t) in faces.tris.iter().enumerate() {
        if repeats(t) {
            keep[f] = false;
            let p = place(&positions, *t, faces.source[f]);
            if repeated_before_weld[f] {
                report.degenerate_faces.push(p);
            } else {
                report.collapsed_by_weld.push(p);
            }
        }
    }
    mark_duplicates(&faces, &positions, &mut keep, &mut report);
    let mut changed = keep.iter().any(|k| !k);
    if changed {
        faces.retain(&keep);
    }
    changed |= fix_zero_area(&mut faces, &positions, &mut report);
    if changed || report.near_duplicate_vertices.count > 0 {
        half = half_edges(&faces.tris);
    }

    // 6. Consistent orientation per edge-connected patch.
    let edges = classify(&faces.tris, &half);
    drop(half);
    let non_orientable = orient(&mut faces, &positions, &edges, &mut report);

    // 7. Holes.
    let mut holes = DefectList::default();
    fill_holes(&mut faces, &positions, &edges, options, &mut holes, &mut report);
    drop(edges);

    // 8. Unused vertices go (the rest keep their order), then the checks and the outward turn.
    let mut mesh = compact(&positions, std::mem::take(&mut faces.tris));
    drop(positions);
    let (check, components) = outward(&mut mesh, &mut report);
    report.vertices = mesh.positions.len();
    report.triangles = mesh.triangles.len();
    report.components = components.count;
    report.volume_mm3 = check.volume_mm3;
    if !check.is_valid() || holes.count > 0 || non_orientable.count > 0 {
        return Err(RepairError::Unrepairable(Box::new(Unrepairable {
            holes,
            non_orientable,
            check,
            repaired: report,
        })));
    }
    report.fragments = fragments(&mesh, &components);
    Ok(Repaired { mesh, report, check })
}

/// Each vertex mapped to the first vertex with bit-identical coordinates.
fn exact_weld(positions: &[[f64; 3]]) -> Vec<u32> {
    // +0.0 + (-0.0) = +0.0: one key for both zeros.
    let mut keyed: Vec<([u64; 3], u32)> = positions
        .par_iter()
        .enumerate()
        .map(|(v, p)| (p.map(|c| (c + 0.0).to_bits()), v as u32))
        .collect();
    keyed.par_sort_unstable();
    let mut remap: Vec<u32> = (0..positions.len() as u32).collect();
    for run in keyed.chunk_by(|a, b| a.0 == b.0) {
        for &(_, v) in &run[1..] {
            remap[v as usize] = run[0].1;
        }
    }
    remap
}

/// Welds vertices on open edges within `tol` (never two corners of one face); `None` when nothing merges.
fn near_weld(
    positions: &[[f64; 3]],
    tris: &[[u32; 3]],
    half: &[(u64, u64)],
    tol: f64,
    report: &mut RepairReport,
) -> Option<Vec<u32>> {
    let mut is_open = vec![false; positions.len()];
    for g in half.chunk_by(|a, b| a.0 == b.0).filter(|g| g.len() == 1) {
        is_open[(g[0].0 >> 32) as usize] = true;
        is_open[g[0].0 as u32 as usize] = true;
    }
    let open: Vec<u32> = (0..positions.len() as u32).filter(|&v| is_open[v as usize]).collect();
    if open.is_empty() {
        return None;
    }
    // Cells of the tolerance's size, sorted: a vertex's partners lie in its own or one of the 26 cells around it.
    // Each cell pairs its vertices with those of its own cell after them and of the 13 neighbouring cells after it
    // in the sort order, so every pair is seen once; for a fixed x and y the cells z - 1..z + 1 are one range.
    let cell_of = |v: u32| positions[v as usize].map(|c| (c / tol).floor() as i64);
    let mut cells: Vec<([i64; 3], u32)> = open.par_iter().map(|&v| (cell_of(v), v)).collect();
    cells.par_sort_unstable();
    let runs: Vec<(usize, usize)> = {
        let mut runs = Vec::new();
        let mut start = 0;
        for run in cells.chunk_by(|a, b| a.0 == b.0) {
            runs.push((start, start + run.len()));
            start += run.len();
        }
        runs
    };
    let vt = VertexTriangles::build_from(positions.len(), tris);
    // Two corners of one face are never welded. They can only be within the tolerance when that face has an edge
    // that short, so the (slow, scattered) adjacency test is asked for those vertices only.
    let mut short = vec![false; positions.len()];
    for t in tris.iter().filter(|t| !repeats(t)) {
        for k in 0..3 {
            let (a, b) = (t[k], t[(k + 1) % 3]);
            if norm(sub(positions[a as usize], positions[b as usize])) <= tol {
                short[a as usize] = true;
                short[b as usize] = true;
            }
        }
    }
    let share_face = |v: u32, w: u32| {
        short[v as usize] && short[w as usize] && vt.of(v as usize).iter().any(|&f| tris[f as usize].contains(&w))
    };
    const WELD_CHUNK: usize = 4096;
    const FORWARD: [(i64, i64, i64, i64); 5] = [
        (0, 0, 1, 1),
        (0, 1, -1, 1),
        (1, -1, -1, 1),
        (1, 0, -1, 1),
        (1, 1, -1, 1),
    ];
    // The neighbour keys grow with the run, so each chunk of runs walks five pointers forward instead of searching.
    let pairs: Vec<(u32, u32)> = runs
        .par_chunks(WELD_CHUNK)
        .flat_map_iter(|chunk| {
            let mut found: Vec<(u32, u32)> = Vec::new();
            let mut try_pair = |v: u32, w: u32| {
                if norm(sub(positions[v as usize], positions[w as usize])) <= tol && !share_face(v, w) {
                    found.push((v.min(w), v.max(w)));
                }
            };
            let mut range = [(0usize, 0usize); 5];
            for (n, &(s, e)) in chunk.iter().enumerate() {
                for i in s..e {
                    for j in i + 1..e {
                        try_pair(cells[i].1, cells[j].1);
                    }
                }
                let c = cells[s].0;
                for (k, (dx, dy, z_lo, z_hi)) in FORWARD.into_iter().enumerate() {
                    let x = c[0].saturating_add(dx);
                    let y = c[1].saturating_add(dy);
                    let lo_key = [x, y, c[2].saturating_add(z_lo)];
                    let hi_key = [x, y, c[2].saturating_add(z_hi)];
                    let (lo, hi) = &mut range[k];
                    if n == 0 {
                        *lo = cells.partition_point(|q| q.0 < lo_key);
                        *hi = cells.partition_point(|q| q.0 <= hi_key);
                    } else {
                        while *lo < cells.len() && cells[*lo].0 < lo_key {
                            *lo += 1;
                        }
                        *hi = (*hi).max(*lo);
                        while *hi < cells.len() && cells[*hi].0 <= hi_key {
                            *hi += 1;
                        }
                    }
                    for i in s..e {
                        for q in &cells[*lo..*hi] {
                            try_pair(cells[i].1, q.1);
                        }
                    }
                }
            }
            found
        })
        .collect();
    if pairs.is_empty() {
        return None;
    }
    // The union-find keeps the smallest index as root, so the order of the pairs does not matter.
    let uf = ConcurrentUnionFind::new(positions.len());
    for &(v, w) in &pairs {
        uf.union(v, w);
    }
    let mut remap: Vec<u32> = (0..positions.len() as u32).collect();
    for &v in &open {
        let root = uf.find(v);
        if root != v {
            remap[v as usize] = root;
            let shift_mm = norm(sub(positions[v as usize], positions[root as usize]));
            report.max_weld_shift_mm = report.max_weld_shift_mm.max(shift_mm);
            report.near_duplicate_vertices.push(WeldPlace {
                position_mm: positions[root as usize],
                shift_mm,
            });
        }
    }
    Some(remap)
}

/// Marks all but the first of the faces with the same three vertices.
fn mark_duplicates(faces: &Faces, positions: &[[f64; 3]], keep: &mut [bool], report: &mut RepairReport) {
    let mut order: Vec<([u32; 3], u32)> = faces
        .tris
        .par_iter()
        .enumerate()
        .filter(|&(f, _)| keep[f])
        .map(|(f, t)| {
            let mut s = *t;
            s.sort_unstable();
            (s, f as u32)
        })
        .collect();
    order.par_sort_unstable();
    let mut dropped: Vec<u32> = order
        .chunk_by(|a, b| a.0 == b.0)
        .flat_map(|run| run[1..].iter().map(|&(_, f)| f))
        .collect();
    dropped.sort_unstable();
    for f in dropped {
        keep[f as usize] = false;
        report
            .duplicate_faces
            .push(place(positions, faces.tris[f as usize], faces.source[f as usize]));
    }
}

/// Zero-area faces with three distinct corners: dropped when extra, a T-junction closed by splitting the face
/// across the long edge otherwise (see the module documentation). True when anything changed.
fn fix_zero_area(faces: &mut Faces, positions: &[[f64; 3]], report: &mut RepairReport) -> bool {
    let flat: Vec<u32> = faces
        .tris
        .par_iter()
        .enumerate()
        .filter(|(_, t)| area_mm2(positions, **t) < DEGENERATE_AREA_MM2)
        .map(|(f, _)| f as u32)
        .collect();
    if flat.is_empty() {
        return false;
    }
    let mut by_edge: HashMap<u64, SmallVec<[u32; 2]>> = HashMap::new();
    for (f, t) in faces.tris.iter().enumerate() {
        for k in 0..3 {
            by_edge
                .entry(edge_key(t[k], t[(k + 1) % 3]))
                .or_default()
                .push(f as u32);
        }
    }
    let mut alive = vec![true; faces.tris.len()];
    for &c in &flat {
        let t = faces.tris[c as usize];
        // A face split for an earlier one is no longer flat.
        if !alive[c as usize] || area_mm2(positions, t) >= DEGENERATE_AREA_MM2 {
            continue;
        }
        let length = |k: usize| norm(sub(positions[t[(k + 1) % 3] as usize], positions[t[k] as usize]));
        let k = (0..3)
            .max_by(|&a, &b| length(a).total_cmp(&length(b)).then(b.cmp(&a)))
            .unwrap_or(0);
        let (p, q, w) = (t[k], t[(k + 1) % 3], t[(k + 2) % 3]);
        let others = |by_edge: &HashMap<u64, SmallVec<[u32; 2]>>, a: u32, b: u32| -> SmallVec<[u32; 2]> {
            by_edge
                .get(&edge_key(a, b))
                .map(|fs| fs.iter().copied().filter(|&g| g != c).collect())
                .unwrap_or_default()
        };
        let (long, s1, s2) = (others(&by_edge, p, q), others(&by_edge, q, w), others(&by_edge, w, p));
        alive[c as usize] = false;
        for (a, b) in [(p, q), (q, w), (w, p)] {
            if let Some(fs) = by_edge.get_mut(&edge_key(a, b)) {
                fs.retain(|g| *g != c);
            }
        }
        let extra = [&long, &s1, &s2].iter().all(|o| o.len() % 2 == 0);
        let split = !extra && long.len() == 1 && s1.len() == 1 && s2.len() == 1;
        if split {
            let n = long[0];
            let nt = faces.tris[n as usize];
            let x = nt.iter().copied().find(|&v| v != p && v != q).unwrap_or(NONE);
            // The split runs s -> w -> e along the neighbour's edge, keeping its winding.
            let (s, e) = if runs(&nt, p, q) { (p, q) } else { (q, p) };
            let new = [[s, w, x], [w, e, x]];
            let ok = x != NONE
                && x != w
                && !by_edge.contains_key(&edge_key(w, x))
                && new.iter().all(|t| area_mm2(positions, *t) >= DEGENERATE_AREA_MM2);
            if ok {
                for k in 0..3 {
                    let key = edge_key(nt[k], nt[(k + 1) % 3]);
                    if let Some(fs) = by_edge.get_mut(&key) {
                        fs.retain(|g| *g != n);
                    }
                }
                let m = faces.tris.len() as u32;
                faces.tris[n as usize] = new[0];
                faces.tris.push(new[1]);
                faces.source.push(faces.source[n as usize]);
                alive.push(true);
                for (f, t) in [(n, new[0]), (m, new[1])] {
                    for k in 0..3 {
                        by_edge.entry(edge_key(t[k], t[(k + 1) % 3])).or_default().push(f);
                    }
                }
                report.split_faces.push(place(positions, nt, faces.source[n as usize]));
            }
        }
        report
            .zero_area_faces
            .push(place(positions, t, faces.source[c as usize]));
    }
    faces.retain(&alive);
    true
}

/// Edges of the faces, classified.
struct Edges {
    /// Manifold neighbour across each edge slot `k` (`t[k] -> t[k + 1]`); `NONE` when open or non-manifold.
    neighbour: Vec<[u32; 3]>,
    /// Per face, bit `k` set when the neighbour across slot `k` runs that edge in the same direction.
    same: Vec<u8>,
    /// Open edges: `(edge key, face)`.
    open: Vec<(u64, u32)>,
    /// Keys of all edges (sorted), to test whether a patch's diagonal exists.
    keys: Vec<u64>,
}

fn classify(tris: &[[u32; 3]], half: &[(u64, u64)]) -> Edges {
    let mut edges = Edges {
        neighbour: vec![[NONE; 3]; tris.len()],
        same: vec![0; tris.len()],
        open: Vec::new(),
        keys: Vec::new(),
    };
    let forward = |h: u64| {
        let t = tris[(h >> 2) as usize];
        let k = (h & 3) as usize;
        t[k] < t[(k + 1) % 3]
    };
    for g in half.chunk_by(|a, b| a.0 == b.0) {
        edges.keys.push(g[0].0);
        match g.len() {
            1 => edges.open.push((g[0].0, (g[0].1 >> 2) as u32)),
            2 => {
                let same = forward(g[0].1) == forward(g[1].1);
                for (a, b) in [(g[0].1, g[1].1), (g[1].1, g[0].1)] {
                    let (f, k) = ((a >> 2) as usize, (a & 3) as usize);
                    edges.neighbour[f][k] = (b >> 2) as u32;
                    if same {
                        edges.same[f] |= 1 << k;
                    }
                }
            }
            _ => {}
        }
    }
    edges
}

/// Flips faces so each edge-connected patch agrees with its majority; returns the edges where that is impossible.
fn orient(
    faces: &mut Faces,
    positions: &[[f64; 3]],
    edges: &Edges,
    report: &mut RepairReport,
) -> DefectList<EdgeDefect> {
    const UNSET: u8 = 2;
    let n = faces.tris.len();
    let mut flip = vec![UNSET; n];
    let mut conflicts = DefectList::default();
    let mut patch: Vec<u32> = Vec::new();
    for seed in 0..n {
        if flip[seed] != UNSET {
            continue;
        }
        flip[seed] = 0;
        patch.clear();
        patch.push(seed as u32);
        let mut next = 0;
        while next < patch.len() {
            let f = patch[next] as usize;
            next += 1;
            for k in 0..3 {
                let g = edges.neighbour[f][k];
                if g == NONE {
                    continue;
                }
                let want = flip[f] ^ ((edges.same[f] >> k) & 1);
                if flip[g as usize] == UNSET {
                    flip[g as usize] = want;
                    patch.push(g);
                } else if flip[g as usize] != want && (f as u32) < g {
                    let t = faces.tris[f];
                    let (a, b) = (t[k].min(t[(k + 1) % 3]), t[k].max(t[(k + 1) % 3]));
                    conflicts.push(EdgeDefect {
                        vertices: [a, b],
                        triangles: vec![faces.source[f], faces.source[g as usize]],
                        from_mm: positions[a as usize],
                        to_mm: positions[b as usize],
                    });
                }
            }
        }
        let flipped = patch.iter().filter(|&&f| flip[f as usize] == 1).count();
        if 2 * flipped > patch.len() {
            for &f in &patch {
                flip[f as usize] ^= 1;
            }
        }
    }
    for (f, t) in faces.tris.iter_mut().enumerate() {
        if flip[f] == 1 {
            t.swap(1, 2);
            report.flipped_faces.push(place(positions, *t, faces.source[f]));
        }
    }
    conflicts
}

/// Traces the open edges into loops and fills the small ones; the others go to `holes`.
fn fill_holes(
    faces: &mut Faces,
    positions: &[[f64; 3]],
    edges: &Edges,
    options: &RepairOptions,
    holes: &mut DefectList<Hole>,
    report: &mut RepairReport,
) {
    if edges.open.is_empty() {
        return;
    }
    // Directed open half-edges (start, end, face), sorted by start.
    let mut out: Vec<(u32, u32, u32)> = edges
        .open
        .iter()
        .map(|&(key, f)| {
            let (a, b) = ((key >> 32) as u32, key as u32);
            if runs(&faces.tris[f as usize], a, b) {
                (a, b, f)
            } else {
                (b, a, f)
            }
        })
        .collect();
    out.sort_unstable();
    let mut used = vec![false; out.len()];
    let mut added: HashSet<u64> = HashSet::new();
    for first in 0..out.len() {
        if used[first] {
            continue;
        }
        let mut simple = true;
        let mut loop_vertices = vec![out[first].0];
        let mut loop_faces = Vec::new();
        let mut i = first;
        loop {
            used[i] = true;
            loop_faces.push(out[i].2);
            let end = out[i].1;
            if end == loop_vertices[0] {
                break;
            }
            let lo = out.partition_point(|h| h.0 < end);
            let hi = out.partition_point(|h| h.0 <= end);
            if hi - lo != 1 {
                simple = false;
            }
            match (lo..hi).find(|&j| !used[j]) {
                Some(j) => {
                    loop_vertices.push(end);
                    i = j;
                }
                None => {
                    simple = false;
                    break;
                }
            }
        }
        // The start vertex may have more than one outgoing open edge too.
        let lo = out.partition_point(|h| h.0 < loop_vertices[0]);
        let hi = out.partition_point(|h| h.0 <= loop_vertices[0]);
        simple &= hi - lo == 1;
        let mut hole = describe_hole(positions, &loop_vertices);
        hole.status = if !options.fill_small_holes {
            HoleStatus::FillingOff
        } else if !simple || loop_vertices.len() < 3 {
            HoleStatus::NotSimple
        } else if hole.edges > MAX_FILLED_HOLE_EDGES {
            HoleStatus::TooManyEdges
        } else if hole.perimeter_mm > MAX_FILLED_HOLE_PERIMETER_MM {
            HoleStatus::TooLong
        } else if hole.out_of_plane_mm > MAX_FILLED_HOLE_OUT_OF_PLANE_MM {
            HoleStatus::NotFlat
        } else if folds_back(positions, &faces.tris, &loop_vertices, &loop_faces) {
            HoleStatus::FoldsBack
        } else {
            // The patch runs against the loop (each open edge gets its second face the other way round).
            let polygon: Vec<u32> = loop_vertices.iter().rev().copied().collect();
            let exists = |a: u32, b: u32| {
                let k = edge_key(a, b);
                edges.keys.binary_search(&k).is_ok() || added.contains(&k)
            };
            match triangulate(positions, &polygon, exists) {
                Some(patch) => {
                    for t in patch {
                        for k in 0..3 {
                            added.insert(edge_key(t[k], t[(k + 1) % 3]));
                        }
                        faces.tris.push(t);
                        faces.source.push(NONE);
                    }
                    HoleStatus::Filled
                }
                None => HoleStatus::NoPatch,
            }
        };
        if hole.status == HoleStatus::Filled {
            report.filled_holes.push(hole);
        } else {
            holes.push(hole);
        }
    }
}

/// True when the patch of a loop (running against it) would turn more than [`FOLD_BACK_DEG`] against a face on
/// the loop.
fn folds_back(positions: &[[f64; 3]], tris: &[[u32; 3]], loop_vertices: &[u32], loop_faces: &[u32]) -> bool {
    let pts: Vec<[f64; 3]> = loop_vertices.iter().rev().map(|&v| positions[v as usize]).collect();
    let patch = newell_normal(&pts);
    let limit = FOLD_BACK_DEG.to_radians().cos();
    loop_faces.iter().any(|&f| {
        let p = tris[f as usize].map(|v| positions[v as usize]);
        let n = cross(sub(p[1], p[0]), sub(p[2], p[0]));
        dot(patch, n) < limit * norm(patch) * norm(n)
    })
}

fn describe_hole(positions: &[[f64; 3]], loop_vertices: &[u32]) -> Hole {
    let pts: Vec<[f64; 3]> = loop_vertices.iter().map(|&v| positions[v as usize]).collect();
    let n = pts.len();
    let perimeter_mm: f64 = (0..n).map(|i| norm(sub(pts[(i + 1) % n], pts[i]))).sum();
    let center_mm = pts
        .iter()
        .fold([0.0; 3], |s, p| [s[0] + p[0], s[1] + p[1], s[2] + p[2]])
        .map(|c| c / n as f64);
    let normal = newell_normal(&pts);
    let len = norm(normal);
    let out_of_plane_mm = if len > 0.0 {
        pts.iter()
            .map(|p| (dot(sub(*p, center_mm), normal) / len).abs())
            .fold(0.0, f64::max)
    } else {
        f64::INFINITY
    };
    let bounding_box = BoundingBox::of_points(&pts).unwrap_or(BoundingBox {
        min_mm: center_mm,
        max_mm: center_mm,
    });
    Hole {
        edges: n,
        perimeter_mm,
        center_mm,
        out_of_plane_mm,
        bounding_box,
        status: HoleStatus::NotSimple,
    }
}

/// Twice the area vector of a closed polygon (Newell's method), robust for non-planar loops.
fn newell_normal(pts: &[[f64; 3]]) -> [f64; 3] {
    let n = pts.len();
    let mut s = [0.0; 3];
    for i in 0..n {
        let c = cross(pts[i], pts[(i + 1) % n]);
        s = [s[0] + c[0], s[1] + c[1], s[2] + c[2]];
    }
    s
}

/// Ear clipping of a small, nearly flat polygon (counter-clockwise about its Newell normal), best ear first (the
/// largest smallest angle). `None` when no ear is left that is convex, empty of other corners, non-degenerate and
/// whose new edge does not exist yet.
fn triangulate(positions: &[[f64; 3]], polygon: &[u32], exists: impl Fn(u32, u32) -> bool) -> Option<Vec<[u32; 3]>> {
    let pts3: Vec<[f64; 3]> = polygon.iter().map(|&v| positions[v as usize]).collect();
    let normal = newell_normal(&pts3);
    let len = norm(normal);
    if len == 0.0 {
        return None;
    }
    let nz = normal.map(|c| c / len);
    // An axis least aligned with the normal gives the in-plane basis.
    let axis = if nz[0].abs() < 0.6 {
        [1.0, 0.0, 0.0]
    } else {
        [0.0, 1.0, 0.0]
    };
    let u = cross(axis, nz);
    let u = u.map(|c| c / norm(u));
    let v = cross(nz, u);
    let pts: Vec<[f64; 2]> = pts3.iter().map(|p| [dot(*p, u), dot(*p, v)]).collect();
    let cross2 = |a: [f64; 2], b: [f64; 2], c: [f64; 2]| (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]);
    let mut ring: Vec<usize> = (0..polygon.len()).collect();
    let mut out = Vec::new();
    while ring.len() > 3 {
        let m = ring.len();
        let mut best: Option<(f64, usize)> = None;
        for i in 0..m {
            let (a, b, c) = (ring[(i + m - 1) % m], ring[i], ring[(i + 1) % m]);
            if cross2(pts[a], pts[b], pts[c]) <= 0.0 || exists(polygon[a], polygon[c]) {
                continue;
            }
            let inside = ring.iter().any(|&j| {
                j != a
                    && j != b
                    && j != c
                    && cross2(pts[a], pts[b], pts[j]) >= 0.0
                    && cross2(pts[b], pts[c], pts[j]) >= 0.0
                    && cross2(pts[c], pts[a], pts[j]) >= 0.0
            });
            let t = [polygon[a], polygon[b], polygon[c]];
            if inside || area_mm2(positions, t) < DEGENERATE_AREA_MM2 {
                continue;
            }
            let q = min_angle(&t.map(|v| positions[v as usize]));
            if best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, i));
            }
        }
        let (_, i) = best?;
        let (a, b, c) = (ring[(i + m - 1) % m], ring[i], ring[(i + 1) % m]);
        out.push([polygon[a], polygon[b], polygon[c]]);
        ring.remove(i);
    }
    let t = [polygon[ring[0]], polygon[ring[1]], polygon[ring[2]]];
    if area_mm2(positions, t) < DEGENERATE_AREA_MM2 {
        return None;
    }
    out.push(t);
    Some(out)
}

/// Smallest corner angle of a triangle, radians.
fn min_angle(p: &[[f64; 3]; 3]) -> f64 {
    (0..3)
        .map(|k| {
            let a = sub(p[(k + 1) % 3], p[k]);
            let b = sub(p[(k + 2) % 3], p[k]);
            norm(cross(a, b)).atan2(dot(a, b))
        })
        .fold(f64::INFINITY, f64::min)
}

/// Checks the mesh and turns over the closed components the checks find inward (outer shells with negative volume,
/// cavities with positive volume); returns the checks and the components.
fn outward(mesh: &mut Mesh, report: &mut RepairReport) -> (MeshReport, super::Components) {
    let components = mesh.connected_components();
    let mut check = MeshReport::new(mesh);
    // Nesting is judged among closed components only: while a shell is open, what lies inside it cannot be told
    // from what lies outside, and the surface is refused anyway.
    let closed = check.boundary_edges.count == 0
        && check.non_manifold_edges.count == 0
        && check.non_manifold_vertices.count == 0;
    if closed && check.inward_components.count > 0 {
        let wrong: Vec<u32> = if check.inward_components.count == check.inward_components.examples.len() {
            check.inward_components.examples.iter().map(|d| d.component).collect()
        } else {
            inward_components(mesh).iter().map(|d| d.component).collect()
        };
        let mut flip = vec![false; components.count];
        for &l in &wrong {
            flip[l as usize] = true;
        }
        flip_components(mesh, &components.labels, &flip);
        // Turning whole components over changes no edge, vertex, degenerate face or crossing, and the nesting does
        // not depend on the orientation: the checks stand, with no inward component left and the new volume.
        check.inward_components = DefectList::default();
        check.volume_mm3 = mesh.signed_volume_mm3();
        let places = component_places(mesh, &components);
        for l in wrong {
            report.inverted_components.push(places[l as usize].clone());
        }
    }
    (check, components)
}

fn flip_components(mesh: &mut Mesh, labels: &[u32], flip: &[bool]) {
    if !flip.iter().any(|&f| f) {
        return;
    }
    mesh.triangles.par_iter_mut().zip(labels).for_each(|(t, &l)| {
        if flip[l as usize] {
            t.swap(1, 2);
        }
    });
}

/// Size, volume, place and box of every component, in one pass.
fn component_places(mesh: &Mesh, components: &super::Components) -> Vec<ComponentPlace> {
    let mut places = vec![
        ComponentPlace {
            triangles: 0,
            volume_mm3: 0.0,
            position_mm: [0.0; 3],
            bounding_box: BoundingBox {
                min_mm: [f64::INFINITY; 3],
                max_mm: [f64::NEG_INFINITY; 3],
            },
        };
        components.count
    ];
    for (&t, &l) in mesh.triangles.iter().zip(&components.labels) {
        let place = &mut places[l as usize];
        let p = t.map(|v| mesh.positions[v as usize]);
        if place.triangles == 0 {
            place.position_mm = centroid(&p);
        }
        place.triangles += 1;
        place.volume_mm3 += signed_volume(&p);
        if let Some(b) = BoundingBox::of_points(&p) {
            place.bounding_box = place.bounding_box.union(&b);
        }
    }
    places
}

/// Signed volume of the tetrahedron from the origin to a face, mm^3.
fn signed_volume(p: &[[f64; 3]; 3]) -> f64 {
    dot(p[0], cross(sub(p[1], p[0]), sub(p[2], p[0]))) / 6.0
}

/// Outer shells under [`FRAGMENT_VOLUME_FRACTION`] of the largest one.
fn fragments(mesh: &Mesh, components: &super::Components) -> DefectList<ComponentPlace> {
    let places = component_places(mesh, components);
    let largest = places.iter().map(|p| p.volume_mm3).fold(0.0, f64::max);
    let mut out = DefectList::default();
    for p in places {
        if p.volume_mm3 > 0.0 && p.volume_mm3 < FRAGMENT_VOLUME_FRACTION * largest {
            out.push(p);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::GridGeometry;
    use crate::mesh::marching_cubes::{marching_cubes, tests::sphere_field};
    use crate::mesh::test_util::{cube, tetrahedron};

    /// A closed MC sphere of radius 5 mm (about 1k faces) centred at `SPHERE_CENTER`.
    fn sphere() -> Mesh {
        let g = GridGeometry::axis_aligned([24, 24, 24], [0.5; 3], [-100.0, 50.0, 200.0]);
        let field = sphere_field(&g, SPHERE_CENTER, 5.0, 1.0);
        marching_cubes(&g, &field, 0.0, None).expect("valid input")
    }
    const SPHERE_CENTER: [f64; 3] = [-94.2, 55.9, 205.7];

    /// Every face with its own three corners, as STL stores them.
    fn unweld(m: &Mesh) -> Mesh {
        let mut out = Mesh::default();
        for t in &m.triangles {
            let base = out.positions.len() as u32;
            out.positions.extend(t.map(|v| m.positions[v as usize]));
            out.triangles.push([base, base + 1, base + 2]);
        }
        out
    }

    /// Deterministic noise in `[-1, 1)`.
    fn noise(state: &mut u64) -> f64 {
        *state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }

    fn repaired(m: Mesh) -> Repaired {
        match repair(m, &RepairOptions::default()) {
            Ok(r) => r,
            Err(e) => panic!("repair failed: {e}"),
        }
    }

    fn refused(m: Mesh, options: &RepairOptions) -> Unrepairable {
        match repair(m, options) {
            Ok(r) => panic!("repaired although it should not: {}", r.report),
            Err(RepairError::Unrepairable(u)) => *u,
            Err(e) => panic!("wrong error: {e}"),
        }
    }

    fn near(a: [f64; 3], b: [f64; 3], tol: f64) -> bool {
        norm(sub(a, b)) <= tol
    }

    #[test]
    fn a_clean_mesh_comes_back_unchanged() {
        let s = sphere();
        let r = repaired(s.clone());
        assert!(r.report.is_unchanged(), "{}", r.report);
        assert_eq!(r.mesh, s);
        assert!(r.check.is_valid());
        assert!(r.report.to_string().contains("nothing to repair"), "{}", r.report);
    }

    #[test]
    fn exact_copies_of_corners_are_welded() {
        let r = repaired(unweld(&cube([0.0; 3], [1.0; 3])));
        assert_eq!(r.report.exact_duplicate_vertices, 36 - 8);
        assert_eq!((r.mesh.positions.len(), r.mesh.triangles.len()), (8, 12));
        assert!((r.mesh.signed_volume_mm3() - 1.0).abs() < 1e-12);
    }

    /// `m` unwelded, each corner moved by up to `amplitude_mm` on each axis.
    fn unweld_noisy(m: &Mesh, amplitude_mm: f64, seed: u64) -> Mesh {
        let mut out = unweld(m);
        let mut state = seed;
        for p in &mut out.positions {
            for c in p.iter_mut() {
                *c += amplitude_mm * noise(&mut state);
            }
        }
        out
    }

    #[test]
    fn noisy_copies_on_open_edges_are_welded_within_the_tolerance() {
        // The sphere's shortest edge is 0.0028 mm: copies moved by up to 0.0002 mm on each axis stay farther than
        // the tolerance from the other end's copies, and within it of each other.
        let s = sphere();
        let amplitude_mm = 0.0002;
        let m = unweld_noisy(&s, amplitude_mm, 7);
        let r = repaired(m.clone());
        assert_eq!(r.mesh.positions.len(), s.positions.len());
        assert_eq!(r.mesh.triangles.len(), s.triangles.len());
        assert_eq!(r.report.exact_duplicate_vertices, 0);
        assert_eq!(
            r.report.near_duplicate_vertices.count,
            3 * s.triangles.len() - s.positions.len()
        );
        assert_eq!(r.report.collapsed_by_weld.count, 0);
        assert!(r.report.max_weld_shift_mm <= 2.0 * amplitude_mm * 3f64.sqrt());
        assert!((r.mesh.signed_volume_mm3() - s.signed_volume_mm3()).abs() < 1e-4 * s.signed_volume_mm3());
        // Without the tolerance the faces stay apart and are refused, not glued by a guess.
        let exact_only = RepairOptions {
            weld_tolerance_mm: 0.0,
            ..RepairOptions::default()
        };
        let u = refused(m, &exact_only);
        assert_eq!(u.holes.count, s.triangles.len());
        assert!(u.holes.examples.iter().all(|h| h.status == HoleStatus::FoldsBack));
        assert!(u.to_string().contains("close the holes"), "{u}");
    }

    #[test]
    fn an_open_edge_shorter_than_the_tolerance_is_collapsed_and_counted() {
        // With 0.0005 mm of noise the 0.0028 mm edge of the sphere comes within the tolerance: its two faces go.
        let s = sphere();
        let r = repaired(unweld_noisy(&s, 0.0005, 7));
        assert_eq!(r.report.collapsed_by_weld.count, 2);
        assert_eq!(r.mesh.positions.len(), s.positions.len() - 1);
        assert_eq!(r.mesh.triangles.len(), s.triangles.len() - 2);
        assert!(r.report.max_weld_shift_mm <= 0.0028 + 2.0 * 0.0005 * 3f64.sqrt());
        assert!((r.mesh.signed_volume_mm3() - s.signed_volume_mm3()).abs() < 1e-4 * s.signed_volume_mm3());
    }

    #[test]
    fn the_weld_never_touches_a_closed_surface() {
        // Two closed cubes 0.001 mm apart: closer than the tolerance, but nothing is open, so nothing is welded.
        let mut m = cube([0.0; 3], [1.0; 3]);
        m.merge(&cube([1.001, 0.0, 0.0], [2.0, 1.0, 1.0])).expect("small");
        let r = repaired(m.clone());
        assert!(r.report.is_unchanged(), "{}", r.report);
        assert_eq!(r.mesh, m);
        assert_eq!(r.report.components, 2);
    }

    #[test]
    fn faces_with_two_corners_at_one_point_are_dropped() {
        let mut m = cube([0.0; 3], [1.0; 3]);
        m.triangles.push([0, 0, 5]);
        // The same with a separate vertex at the same place (as an STL facet has): welded, then dropped.
        m.positions.push([1.0, 1.0, 1.0]);
        m.triangles.push([7, 8, 3]);
        let r = repaired(m);
        assert_eq!(r.report.degenerate_faces.count, 2);
        assert_eq!(r.report.degenerate_faces.examples[0].facet, 12);
        assert_eq!(r.report.exact_duplicate_vertices, 1);
        assert_eq!(r.mesh.triangles.len(), 12);
        assert!((r.mesh.signed_volume_mm3() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn an_extra_zero_area_face_is_dropped_and_a_t_junction_is_closed() {
        // Extra: a flat face along the edge 0-1 of a cube, through a new middle vertex.
        let mut m = cube([0.0; 3], [1.0; 3]);
        m.positions.push([0.5, 0.0, 0.0]);
        m.triangles.push([0, 8, 1]);
        let r = repaired(m);
        assert_eq!(r.report.zero_area_faces.count, 1);
        assert_eq!(r.report.split_faces.count, 0);
        assert_eq!(r.mesh.triangles.len(), 12);
        // T-junction: the top face [4, 5, 7] is split at the middle m of its edge 7-4, its neighbour [4, 7, 6] is
        // not, and a flat face [4, m, 7] fills the crack.
        let mut m = cube([0.0; 3], [1.0; 3]);
        m.positions.push([0.5, 0.5, 1.0]);
        let top = m.triangles.iter().position(|t| *t == [4, 5, 7]).expect("cube face");
        m.triangles[top] = [4, 5, 8];
        m.triangles.push([8, 5, 7]);
        m.triangles.push([4, 8, 7]);
        assert_eq!(MeshReport::new(&m).degenerate_triangles.count, 1);
        let r = repaired(m);
        assert_eq!(r.report.zero_area_faces.count, 1);
        assert_eq!(r.report.split_faces.count, 1);
        assert_eq!(r.mesh.triangles.len(), 14);
        assert!((r.mesh.signed_volume_mm3() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn duplicate_faces_keep_the_first() {
        let mut m = cube([0.0; 3], [1.0; 3]);
        m.triangles.push(m.triangles[3]);
        let t = m.triangles[5];
        m.triangles.push([t[0], t[2], t[1]]);
        let r = repaired(m);
        assert_eq!(r.report.duplicate_faces.count, 2);
        assert_eq!(
            r.report
                .duplicate_faces
                .examples
                .iter()
                .map(|d| d.facet)
                .collect::<Vec<_>>(),
            vec![12, 13]
        );
        assert_eq!(r.mesh, cube([0.0; 3], [1.0; 3]));
    }

    #[test]
    fn flipped_faces_follow_their_neighbours() {
        let s = sphere();
        let mut m = s.clone();
        for f in [3, 100, 101, 400, 777] {
            m.triangles[f].swap(0, 1);
        }
        let r = repaired(m);
        assert_eq!(r.report.flipped_faces.count, 5);
        assert_eq!(r.report.inverted_components.count, 0);
        assert_eq!(
            r.report
                .flipped_faces
                .examples
                .iter()
                .map(|d| d.facet)
                .collect::<Vec<_>>(),
            vec![3, 100, 101, 400, 777]
        );
        assert!((r.mesh.signed_volume_mm3() - s.signed_volume_mm3()).abs() < 1e-9);
    }

    #[test]
    fn inverted_shells_turn_outward_and_cavities_stay_inward() {
        let flip = |m: &mut Mesh| m.triangles.iter_mut().for_each(|t| t.swap(1, 2));
        let mut inverted = sphere();
        flip(&mut inverted);
        let r = repaired(inverted);
        assert_eq!(r.report.inverted_components.count, 1);
        assert_eq!(r.report.flipped_faces.count, 0);
        assert!(r.mesh.signed_volume_mm3() > 0.0);
        // A hollow cube with its cavity (correctly) inward is left alone ...
        let mut hollow = cube([0.0; 3], [3.0; 3]);
        let mut cavity = cube([1.0; 3], [2.0; 3]);
        flip(&mut cavity);
        hollow.merge(&cavity).expect("small");
        let r = repaired(hollow.clone());
        assert!(r.report.is_unchanged(), "{}", r.report);
        assert!((r.report.volume_mm3 - 26.0).abs() < 1e-12);
        assert_eq!(r.report.fragments.count, 0);
        // ... and turned inward when it faces out, also with the outer shell inside out.
        let mut bad = cube([0.0; 3], [3.0; 3]);
        flip(&mut bad);
        bad.merge(&cube([1.0; 3], [2.0; 3])).expect("small");
        let r = repaired(bad);
        assert_eq!(MeshReport::new(&r.mesh), r.check);
        assert_eq!(r.report.inverted_components.count, 2);
        assert!((r.report.volume_mm3 - 26.0).abs() < 1e-12);
        let cavity = &r.report.inverted_components.examples[1];
        assert!((cavity.volume_mm3 + 1.0).abs() < 1e-12);
        assert_eq!(cavity.bounding_box.min_mm, [1.0; 3]);
    }

    /// Indices of the faces of the sphere with a corner within `radius_mm` of `at`.
    fn faces_near(m: &Mesh, at: [f64; 3], radius_mm: f64) -> Vec<usize> {
        (0..m.triangles.len())
            .filter(|&f| {
                m.triangles[f]
                    .iter()
                    .any(|&v| near(m.positions[v as usize], at, radius_mm))
            })
            .collect()
    }

    #[test]
    fn a_small_hole_is_filled_and_reported_where_it_was() {
        let s = sphere();
        let volume = s.signed_volume_mm3();
        // One face missing: refilled with exactly that face.
        let mut m = s.clone();
        let gone = m.triangles.remove(200);
        let p = gone.map(|v| s.positions[v as usize]);
        let r = repaired(m.clone());
        assert_eq!(r.report.filled_holes.count, 1);
        let hole = &r.report.filled_holes.examples[0];
        assert_eq!(hole.edges, 3);
        assert!(near(hole.center_mm, centroid(&p), 1e-12));
        let perimeter: f64 = (0..3).map(|k| norm(sub(p[(k + 1) % 3], p[k]))).sum();
        assert!((hole.perimeter_mm - perimeter).abs() < 1e-12);
        assert!((r.mesh.signed_volume_mm3() - volume).abs() < 1e-9);
        assert!(r.report.to_string().contains("1 holes filled"), "{}", r.report);
        // Refused when filling is off, naming the same place.
        let off = RepairOptions {
            fill_small_holes: false,
            ..RepairOptions::default()
        };
        let u = refused(m, &off);
        assert_eq!(u.holes.count, 1);
        assert_eq!(u.holes.examples[0].status, HoleStatus::FillingOff);
        assert!(near(u.holes.examples[0].center_mm, centroid(&p), 1e-12));
        // Two neighbouring faces missing: a four-edge hole, filled with two faces close to the sphere.
        let mut m = s.clone();
        let t = m.triangles[300];
        let other = (0..m.triangles.len())
            .find(|&f| f != 300 && runs(&m.triangles[f], t[1], t[0]))
            .expect("closed sphere");
        m.triangles.remove(other.max(300));
        m.triangles.remove(other.min(300));
        let r = repaired(m);
        assert_eq!(r.report.filled_holes.count, 1);
        assert_eq!(r.report.filled_holes.examples[0].edges, 4);
        assert_eq!(r.mesh.triangles.len(), s.triangles.len());
        assert!((r.mesh.signed_volume_mm3() - volume).abs() < 1e-3 * volume);
        // A face missing at a box corner, its neighbours at 90 degrees: refilled.
        let mut m = cube([0.0; 3], [1.0; 3]);
        m.triangles.remove(3);
        let r = repaired(m);
        assert_eq!(r.report.filled_holes.count, 1);
        assert!((r.mesh.signed_volume_mm3() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn a_large_hole_is_refused_with_its_place() {
        let s = sphere();
        let top = [SPHERE_CENTER[0], SPHERE_CENTER[1], SPHERE_CENTER[2] + 5.0];
        let cut = faces_near(&s, top, 2.0);
        let keep: Vec<bool> = (0..s.triangles.len()).map(|f| cut.binary_search(&f).is_err()).collect();
        let m = s.select_triangles(|t| {
            let f = s.triangles.iter().position(|u| u == t).expect("own face");
            keep[f]
        });
        // A cavity inside, rightly inward: with the shell open it cannot be judged, and is not turned over.
        let mut m = m;
        let mut cavity = cube(SPHERE_CENTER.map(|c| c - 1.0), SPHERE_CENTER.map(|c| c + 1.0));
        cavity.triangles.iter_mut().for_each(|t| t.swap(1, 2));
        m.merge(&cavity).expect("small");
        let u = refused(m, &RepairOptions::default());
        assert_eq!(u.repaired.inverted_components.count, 0);
        assert_eq!(u.holes.count, 1);
        let hole = &u.holes.examples[0];
        assert_eq!(hole.status, HoleStatus::TooManyEdges);
        // The rim runs about 2.5 mm around the top (zig-zag), a little below it.
        assert!(near(hole.center_mm, top, 0.6), "{:?}", hole.center_mm);
        assert!(
            hole.perimeter_mm > 12.0 && hole.perimeter_mm < 25.0,
            "{}",
            hole.perimeter_mm
        );
        let text = u.to_string();
        assert!(
            text.contains("1 holes (open boundaries)") && text.contains("too many edges"),
            "{text}"
        );
    }

    #[test]
    fn a_non_manifold_edge_is_refused_with_its_place() {
        // Two cubes sharing the edge x = y = 1.
        let mut m = unweld(&cube([0.0; 3], [1.0; 3]));
        m.merge(&unweld(&cube([1.0, 1.0, 0.0], [2.0, 2.0, 1.0])))
            .expect("small");
        let u = refused(m, &RepairOptions::default());
        assert_eq!(u.check.non_manifold_edges.count, 1);
        let e = &u.check.non_manifold_edges.examples[0];
        let mut ends = [e.from_mm, e.to_mm];
        ends.sort_by(|a, b| a[2].total_cmp(&b[2]));
        assert_eq!(ends, [[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]]);
        assert_eq!(u.holes.count, 0);
        assert!(u.to_string().contains("edges shared by more than two faces"), "{u}");
    }

    #[test]
    fn parts_touching_in_a_point_are_refused() {
        let mut m = tetrahedron();
        let other = Mesh {
            positions: vec![[0.0; 3], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]],
            triangles: vec![[0, 1, 2], [0, 3, 1], [0, 2, 3], [1, 3, 2]],
        };
        m.merge(&other).expect("small");
        let u = refused(m, &RepairOptions::default());
        assert_eq!(u.check.non_manifold_vertices.count, 1);
        assert_eq!(u.check.non_manifold_vertices.examples[0].position_mm, [0.0; 3]);
    }

    #[test]
    fn crossing_parts_are_refused_where_they_cross() {
        let mut m = cube([0.0; 3], [2.0; 3]);
        m.merge(&cube([1.0, 0.5, 0.5], [3.0, 1.5, 1.5])).expect("small");
        let u = refused(m, &RepairOptions::default());
        assert!(u.check.self_intersections.count > 0);
        assert!(u
            .check
            .self_intersections
            .examples
            .iter()
            .all(|d| d.position_mm[0] > 0.5 && d.position_mm[0] < 2.5));
        assert!(u.to_string().contains("crossing each other"), "{u}");
    }

    #[test]
    fn a_moebius_strip_is_refused_as_non_orientable() {
        let n = 12;
        let mut m = Mesh::default();
        for i in 0..n {
            let a = std::f64::consts::TAU * i as f64 / n as f64;
            let twist = a / 2.0;
            for s in [-1.0, 1.0] {
                let r = 10.0 + s * twist.cos();
                m.positions.push([r * a.cos(), r * a.sin(), s * twist.sin()]);
            }
        }
        for i in 0..n as u32 {
            let (a, b) = (2 * i, 2 * i + 1);
            // The last quad joins the first with its sides swapped: the twist.
            let (c, d) = if i + 1 == n as u32 {
                (1, 0)
            } else {
                (2 * i + 2, 2 * i + 3)
            };
            m.triangles.push([a, c, b]);
            m.triangles.push([b, c, d]);
        }
        let u = refused(m, &RepairOptions::default());
        assert_eq!(u.non_orientable.count, 1);
        assert!(u.to_string().contains("non-orientable"), "{u}");
    }

    #[test]
    fn small_parts_are_kept_and_listed() {
        let mut m = cube([0.0; 3], [10.0; 3]);
        m.merge(&cube([20.0; 3], [21.0; 3])).expect("small");
        let r = repaired(m);
        assert!(r.report.is_unchanged());
        assert_eq!(r.report.fragments.count, 1);
        assert_eq!(r.report.fragments.examples[0].bounding_box.min_mm, [20.0; 3]);
        assert_eq!(r.mesh.triangles.len(), 24);
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let mut m = cube([0.0; 3], [1.0; 3]);
        m.positions[3][1] = f64::NAN;
        assert!(matches!(
            repair(m, &RepairOptions::default()),
            Err(RepairError::Mesh(MeshError::NonFinitePosition { vertex: 3, .. }))
        ));
        let mut m = cube([0.0; 3], [1.0; 3]);
        m.triangles[2][0] = 99;
        assert!(matches!(
            repair(m, &RepairOptions::default()),
            Err(RepairError::Mesh(MeshError::InvalidIndex { triangle: 2, .. }))
        ));
        assert!(matches!(
            repair(Mesh::default(), &RepairOptions::default()),
            Err(RepairError::Empty)
        ));
        let wide = RepairOptions {
            weld_tolerance_mm: 0.5,
            ..RepairOptions::default()
        };
        let err = repair(cube([0.0; 3], [1.0; 3]), &wide)
            .expect_err("too wide")
            .to_string();
        assert!(err.contains("weld tolerance"), "{err}");
    }

    #[test]
    fn the_report_serialises_and_reads_back() {
        let mut m = unweld(&cube([0.0; 3], [1.0; 3]));
        m.triangles[4].swap(0, 1);
        let r = repaired(m);
        let json = serde_json::to_string(&r.report).expect("serialisable");
        let back: RepairReport = serde_json::from_str(&json).expect("readable");
        assert_eq!(back, r.report);
        let value: serde_json::Value = serde_json::from_str(&json).expect("json");
        assert_eq!(value["flipped_faces"]["count"], 1);
        assert_eq!(value["flipped_faces"]["examples"][0]["facet"], 4);
    }

    mod properties {
        use super::*;
        use crate::mesh::marching_cubes::tests::blob_field;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(crate::testing::proptest_config(300))]
            /// Any soup of faces over a few grid points (so corners coincide, faces repeat, fold and cross): never a
            /// panic, and whatever is accepted passes every check.
            #[test]
            fn random_soups_are_repaired_or_refused(
                points in prop::collection::vec((0u8..3, 0u8..3, 0u8..3), 3..12),
                faces in prop::collection::vec((0usize..12, 0usize..12, 0usize..12), 1..40),
            ) {
                let positions: Vec<[f64; 3]> =
                    points.iter().map(|&(x, y, z)| [f64::from(x), f64::from(y), f64::from(z)]).collect();
                let n = positions.len();
                let triangles = faces.iter().map(|&(a, b, c)| [(a % n) as u32, (b % n) as u32, (c % n) as u32]).collect();
                match repair(Mesh { positions, triangles }, &RepairOptions::default()) {
                    Ok(r) => {
                        let check = MeshReport::new(&r.mesh);
                        prop_assert!(check.is_valid(), "{}", check);
                        prop_assert_eq!(check, r.check);
                    }
                    Err(RepairError::Unrepairable(u)) => prop_assert!(!u.to_string().is_empty()),
                    Err(e) => prop_assert!(false, "unexpected error {}", e),
                }
            }

            /// A closed marching-cubes surface, unwelded, with faces flipped and repeated, comes back whole.
            #[test]
            fn degraded_closed_surfaces_come_back(seed in 1u64..u64::MAX, flips in prop::collection::vec(any::<prop::sample::Index>(), 0..20), copies in prop::collection::vec(any::<prop::sample::Index>(), 0..5)) {
                let dims = [14, 12, 10];
                let g = GridGeometry::axis_aligned(dims, [0.7, 0.8, 1.1], [-20.0, 10.0, 40.0]);
                let field = blob_field(dims, seed);
                let clean = marching_cubes(&g, &field, 500.0, None).expect("valid input");
                prop_assume!(!clean.is_empty());
                let mut m = unweld(&clean);
                let n = m.triangles.len();
                for i in &flips {
                    m.triangles[i.index(n)].swap(0, 1);
                }
                let mut copied: Vec<usize> = copies.iter().map(|i| i.index(n)).collect();
                copied.sort_unstable();
                copied.dedup();
                for &f in &copied {
                    m.triangles.push(m.triangles[f]);
                }
                let r = repaired(m);
                prop_assert!(r.check.is_valid());
                prop_assert_eq!(r.mesh.triangles.len(), clean.triangles.len());
                prop_assert_eq!(r.mesh.positions.len(), clean.positions.len());
                prop_assert_eq!(r.report.duplicate_faces.count, copied.len());
                let v = clean.signed_volume_mm3();
                prop_assert!((r.mesh.signed_volume_mm3() - v).abs() <= 1e-9 * v.abs().max(1.0));
            }
        }
    }
}
