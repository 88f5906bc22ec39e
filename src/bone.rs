//! From a CT volume to the closed bone surface a guide will sit on: segmentation recipe, marching cubes restricted
//! to the kept voxels, optional Taubin smoothing and quadric decimation, then every mesh check.
//!
//! This is the one place that chains `segment` and `mesh`, so the CLI, the plan (which stores the recipe to make
//! the bone reproducible) and the GUI all get the same bone for the same inputs. A surface that fails a check is an
//! error carrying the report; it is never handed on.
//!
//! The surface is taken on the HU field itself at the lower threshold (sub-voxel accurate), restricted to the mask
//! the recipe produced. Voxels the recipe added below the threshold (filled cavities, closing) would otherwise be
//! outside the surface again; their value is mirrored above the threshold (`2 t - hu`), which puts the surface
//! half-way between such a voxel and a background neighbour of the same HU, as a binary mask's surface would be.
//!
//! Speed: when the recipe only thresholds, its mask is the HU window itself, so marching cubes runs on the window
//! and writes the mask while it packs the field ([`mesh::grid_surface_of_window`]): one pass over the HU instead of
//! a threshold pass, a mask pass and a surface pass. A surface that is not smoothed or decimated is still the raw
//! marching-cubes surface, and is checked by [`GridSurface::report`], which proves the same invariants as
//! [`MeshReport::new`] from the construction instead of searching; after smoothing or decimation the full check
//! runs.

use std::time::Instant;

use serde::Serialize;
use thiserror::Error;

use rayon::prelude::*;

use crate::mesh::{self, DecimateOptions, GridSurface, Mesh, MeshError, MeshReport};
use crate::progress::{Cancelled, Progress};
use crate::segment::{Mask, SegmentError, SegmentRecipe, SegmentStats};
use crate::volume::Volume;

/// What to do to the surface after marching cubes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SurfaceOptions {
    /// Taubin smoothing iterations (0: none). Volume-preserving; keeps the topology.
    #[serde(default)]
    pub smooth_iterations: usize,
    /// Quadric decimation (none when both bounds are `None`).
    #[serde(default)]
    pub decimate: Option<DecimateOptions>,
    /// Decimate to this fraction (0, 1] of the surface's triangles; the target is resolved once the surface is
    /// made, and the smaller of it and `decimate.target_triangles` applies.
    #[serde(default)]
    pub decimate_keep_fraction: Option<f64>,
}

/// Why a bone surface could not be made.
#[derive(Debug, Error)]
pub enum BoneError {
    /// The segmentation recipe failed.
    #[error("segmentation: {0}")]
    Segment(SegmentError),
    /// Meshing failed.
    #[error("surface: {0}")]
    Mesh(MeshError),
    /// The recipe kept no voxel.
    #[error("the segmentation kept no voxel (HU range {min_hu}..{max_hu}); widen the range or check the series")]
    Empty {
        /// Lower HU bound of the recipe.
        min_hu: i16,
        /// Upper HU bound of the recipe.
        max_hu: i16,
    },
    /// The surface failed a check; nothing was written.
    #[error("the bone surface failed its checks:\n{0}")]
    Invalid(Box<MeshReport>),
    /// The front end cancelled the work.
    #[error(transparent)]
    Cancelled(#[from] Cancelled),
}

// The causes are part of the messages above, so they are converted by hand rather than kept as `source`s (which
// would print them twice in an error chain).
impl From<SegmentError> for BoneError {
    fn from(e: SegmentError) -> Self {
        match e {
            SegmentError::Cancelled(c) => BoneError::Cancelled(c),
            e => BoneError::Segment(e),
        }
    }
}

impl From<MeshError> for BoneError {
    fn from(e: MeshError) -> Self {
        match e {
            MeshError::Cancelled(c) => BoneError::Cancelled(c),
            e => BoneError::Mesh(e),
        }
    }
}

/// Wall time of each stage, in seconds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct BoneTimings {
    /// Segmentation recipe (0 for a threshold-only recipe, whose threshold is part of `surface_s`).
    pub segment_s: f64,
    /// Marching cubes (with the threshold, for a threshold-only recipe).
    pub surface_s: f64,
    /// Smoothing.
    pub smooth_s: f64,
    /// Decimation.
    pub decimate_s: f64,
    /// All checks.
    pub check_s: f64,
}

/// A checked bone surface and how it was made.
#[derive(Clone, Debug)]
pub struct BoneModel {
    /// The kept voxels.
    pub mask: Mask,
    /// Voxels after each segmentation step.
    pub segment_stats: SegmentStats,
    /// The surface, patient LPS mm, outward.
    pub mesh: Mesh,
    /// Its checks (all passed).
    pub report: MeshReport,
    /// Stage timings.
    pub timings: BoneTimings,
}

/// The iso value for a lower HU bound: integer HU at or above `min_hu` are inside.
pub fn iso_for(min_hu: i16) -> f32 {
    f32::from(min_hu) - 0.5
}

/// Marching cubes on `volume` at `iso`, restricted to `mask` (see the module documentation for voxels the mask adds
/// below the iso value).
pub fn surface_of_mask(volume: &Volume, mask: &Mask, iso: f32) -> Result<Mesh, MeshError> {
    Ok(grid_surface_of_mask(volume, mask, iso)?.into_mesh())
}

/// [`surface_of_mask`], keeping what marching cubes knows about the surface for [`GridSurface::report`].
pub fn grid_surface_of_mask(volume: &Volume, mask: &Mask, iso: f32) -> Result<GridSurface, MeshError> {
    let region = mask.as_bytes();
    let needs_mirror = volume
        .hu
        .par_chunks(MIRROR_CHUNK)
        .zip(region.par_chunks(MIRROR_CHUNK))
        .any(|(hu, m)| hu.iter().zip(m).any(|(&hu, &m)| m != 0 && f32::from(hu) < iso));
    if !needs_mirror {
        return mesh::grid_surface(&volume.geometry, &volume.hu, iso, Some(region));
    }
    let field: Vec<i16> = volume
        .hu
        .iter()
        .zip(region)
        .map(|(&hu, &m)| {
            if m != 0 && f32::from(hu) < iso {
                (2.0 * iso - f32::from(hu)).round().clamp(-32768.0, 32767.0) as i16
            } else {
                hu
            }
        })
        .collect();
    mesh::grid_surface(&volume.geometry, &field, iso, Some(region))
}

/// Voxels per parallel task of the scan for voxels the mask adds below the iso value.
const MIRROR_CHUNK: usize = 1 << 16;

/// Segment `volume` with `recipe`, extract the surface, post-process it and check it. Cancellable through
/// `progress` between the segmentation's steps, between stages and during decimation.
pub fn extract_bone(
    volume: &Volume,
    recipe: &SegmentRecipe,
    options: &SurfaceOptions,
    progress: &dyn Progress,
) -> Result<BoneModel, BoneError> {
    let (mask, surface) = extract(volume, recipe, options, progress, true)?;
    Ok(BoneModel {
        mask: mask.expect("extract keeps the mask when asked to"),
        segment_stats: surface.segment_stats,
        mesh: surface.mesh,
        report: surface.report,
        timings: surface.timings,
    })
}

/// [`extract_bone`] without the voxel mask, for callers that only need the surface and the number of voxels kept
/// (the `segment` command): a threshold-only recipe then writes no mask at all (for a 512 x 512 x 300 series, 79 MB
/// of memory touched for the first time, a third of the threshold + surface time).
pub fn extract_bone_surface(
    volume: &Volume,
    recipe: &SegmentRecipe,
    options: &SurfaceOptions,
    progress: &dyn Progress,
) -> Result<BoneSurface, BoneError> {
    Ok(extract(volume, recipe, options, progress, false)?.1)
}

/// A checked bone surface without its voxel mask (see [`extract_bone_surface`]).
#[derive(Clone, Debug)]
pub struct BoneSurface {
    /// Voxels the segmentation kept.
    pub voxels_kept: usize,
    /// Voxels after each segmentation step.
    pub segment_stats: SegmentStats,
    /// The surface, patient LPS mm, outward.
    pub mesh: Mesh,
    /// Its checks (all passed).
    pub report: MeshReport,
    /// Stage timings.
    pub timings: BoneTimings,
}

/// Segmentation, surface, post-processing and checks; the mask is returned only with `keep_mask` (a threshold-only
/// recipe makes none otherwise).
fn extract(
    volume: &Volume,
    recipe: &SegmentRecipe,
    options: &SurfaceOptions,
    progress: &dyn Progress,
    keep_mask: bool,
) -> Result<(Option<Mask>, BoneSurface), BoneError> {
    let mut timings = BoneTimings::default();
    if recipe.is_threshold_only() {
        // The mask is the window: threshold while packing the field for marching cubes.
        progress.begin("surface", 1);
        let t = Instant::now();
        let (min_hu, max_hu) = (recipe.hu.min_hu(), recipe.hu.max_hu());
        let (mask, segment_stats, surface) =
            recipe.apply_threshold_with(&volume.geometry, &volume.hu, keep_mask, |out| {
                let surface = mesh::grid_surface_of_window(&volume.geometry, &volume.hu, min_hu, max_hu, out);
                let inside = surface.as_ref().map_or(0, |s| s.inside_samples() as usize);
                (surface, inside)
            })?;
        let surface = surface?;
        timings.surface_s = t.elapsed().as_secs_f64();
        progress.end();
        progress.checkpoint()?;
        let finished = finish(segment_stats, Surface::Grid(surface), timings, options, progress)?;
        return Ok((mask, finished));
    }
    progress.begin("segmenting", 1);
    let t = Instant::now();
    let (mask, segment_stats) = recipe.apply_with(&volume.geometry, &volume.hu, progress)?;
    timings.segment_s = t.elapsed().as_secs_f64();
    progress.end();
    progress.checkpoint()?;
    if !mask.any() {
        return Err(BoneError::Empty {
            min_hu: recipe.hu.min_hu(),
            max_hu: recipe.hu.max_hu(),
        });
    }
    progress.begin("surface", 1);
    let t = Instant::now();
    let surface = grid_surface_of_mask(volume, &mask, iso_for(recipe.hu.min_hu()))?;
    timings.surface_s = t.elapsed().as_secs_f64();
    progress.end();
    progress.checkpoint()?;
    let finished = finish(segment_stats, Surface::Grid(surface), timings, options, progress)?;
    Ok((keep_mask.then_some(mask), finished))
}

/// A surface to finish: straight from marching cubes (checked from its construction if left as it is), or any mesh.
enum Surface {
    Grid(GridSurface),
    Mesh(Mesh),
}

/// Smooth and decimate an already checked model again with other options (e.g. to a fraction of its triangles),
/// then check it.
pub fn refine(model: BoneModel, options: &SurfaceOptions, progress: &dyn Progress) -> Result<BoneModel, BoneError> {
    let surface = finish(
        model.segment_stats,
        Surface::Mesh(model.mesh),
        model.timings,
        options,
        progress,
    )?;
    Ok(BoneModel {
        mask: model.mask,
        segment_stats: surface.segment_stats,
        mesh: surface.mesh,
        report: surface.report,
        timings: surface.timings,
    })
}

fn finish(
    segment_stats: SegmentStats,
    surface: Surface,
    mut timings: BoneTimings,
    options: &SurfaceOptions,
    progress: &dyn Progress,
) -> Result<BoneSurface, BoneError> {
    let triangles = match &surface {
        Surface::Grid(g) => g.mesh().triangles.len(),
        Surface::Mesh(m) => m.triangles.len(),
    };
    let decimate = resolved_decimation(options, triangles)?;
    let (surface, report) = match surface {
        Surface::Grid(grid) if options.smooth_iterations == 0 && decimate.is_none() => {
            // Still the raw marching-cubes surface: proven from its construction.
            progress.begin("checking", 1);
            let t = Instant::now();
            let report = grid.report();
            timings.check_s = t.elapsed().as_secs_f64();
            progress.end();
            (grid.into_mesh(), report)
        }
        surface => {
            let mesh = match surface {
                Surface::Grid(g) => g.into_mesh(),
                Surface::Mesh(m) => m,
            };
            let mesh = post_process(mesh, options, decimate, &mut timings, progress)?;
            progress.begin("checking", 1);
            let t = Instant::now();
            let report = MeshReport::new(&mesh);
            timings.check_s = t.elapsed().as_secs_f64();
            progress.end();
            (mesh, report)
        }
    };
    if !report.is_valid() {
        return Err(BoneError::Invalid(Box::new(report)));
    }
    Ok(BoneSurface {
        // The last step recorded is the final mask.
        voxels_kept: segment_stats.steps.last().map_or(0, |s| s.voxels),
        segment_stats,
        mesh: surface,
        report,
        timings,
    })
}

/// The decimation `options` ask for on a surface of `triangles` triangles, `None` for none.
fn resolved_decimation(options: &SurfaceOptions, triangles: usize) -> Result<Option<DecimateOptions>, BoneError> {
    let mut decimate = options.decimate;
    if let Some(fraction) = options.decimate_keep_fraction {
        if !(fraction > 0.0 && fraction <= 1.0) {
            return Err(BoneError::Mesh(MeshError::InvalidOption(format!(
                "the fraction of triangles to keep must be in (0, 1], not {fraction}"
            ))));
        }
        let from_fraction = ((triangles as f64 * fraction).round() as usize).max(4);
        let d = decimate.get_or_insert_with(DecimateOptions::default);
        d.target_triangles = Some(d.target_triangles.map_or(from_fraction, |t| t.min(from_fraction)));
    }
    Ok(decimate.filter(|d| d.target_triangles.is_some() || d.max_error_mm.is_some()))
}

/// Smoothing and decimation.
fn post_process(
    mut surface: Mesh,
    options: &SurfaceOptions,
    decimate: Option<DecimateOptions>,
    timings: &mut BoneTimings,
    progress: &dyn Progress,
) -> Result<Mesh, BoneError> {
    if options.smooth_iterations > 0 {
        progress.begin("smoothing", 1);
        let t = Instant::now();
        mesh::taubin_smooth(
            &mut surface,
            options.smooth_iterations,
            mesh::TAUBIN_LAMBDA,
            mesh::TAUBIN_MU,
        )?;
        timings.smooth_s = t.elapsed().as_secs_f64();
        progress.end();
        progress.checkpoint()?;
    }
    if let Some(decimate) = decimate {
        progress.begin("decimating", 1);
        let t = Instant::now();
        surface = mesh::decimate_checked_with(&surface, decimate, progress)?;
        timings.decimate_s = t.elapsed().as_secs_f64();
        progress.end();
    }
    progress.checkpoint()?;
    Ok(surface)
}
