//! The phantom: layers of analytic shapes with CT numbers, a partial-volume ramp and deterministic noise.
//!
//! Why painter-style layers: a CT of a jaw is nested materials (air, soft tissue, cortical bone, marrow). Composing
//! layers outer first, each one blending over what is below it by its coverage, models that nesting without any
//! explicit topology, and each layer keeps its own analytic surface that tests can measure against.
//!
//! The partial-volume profile (why a linear ramp): a voxel that straddles a surface records a mix of both
//! materials. We model the mix as `coverage = clamp(0.5 - sdf / edge_width_mm, 0, 1)`: the fraction of the layer
//! rises linearly from 0 at `edge_width_mm / 2` outside the surface to 1 at `edge_width_mm / 2` inside, and is
//! exactly one half on the surface. Hence the value on the analytic surface is exactly the midpoint between the
//! layer's HU and the HU beneath it, and so the iso-surface at that midpoint *is* the analytic surface (provided
//! the layers' ramps do not overlap, i.e. nested surfaces are more than `edge_width_mm` apart). A real scanner's
//! edge is smoother (an error function), but the linear ramp keeps that property exact and easy to reason about.
//! With `edge_width_mm = 0` the edge is a step (coverage 1/2 exactly on the surface).
//!
//! Noise (why hashed): Gaussian with `sigma_hu`, drawn from a hash of `(seed, voxel index)` through the inverse normal CDF, so the
//! noisy volume does not depend on the order or the thread that evaluates voxels.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::grid::GridGeometry;

use super::hash::gaussian;
use super::sdf::{Horseshoe, Prepared, Shape};
use super::SynthError;

/// Default width of the partial-volume ramp: two voxels at the 0.5 mm spacing typical of jaw CT.
pub const DEFAULT_EDGE_WIDTH_MM: f64 = 1.0;

/// Gaussian noise added to every sample.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Noise {
    /// Standard deviation in HU (0 for a noise-free phantom).
    pub sigma_hu: f64,
    /// Seed of the counter-based generator.
    pub seed: u64,
}

/// One material region of the phantom, bounded by a named surface.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Layer {
    /// Name of the layer and of its surface, unique within the phantom (used by [`Phantom::sdf`]).
    pub name: String,
    /// The solid.
    pub shape: Shape,
    /// CT number of the material, in HU.
    pub hu: f64,
    /// The surface is the shape's surface moved inward by this distance (mm): its signed distance is
    /// `shape.sdf(p) + inset_mm`. This is how a marrow cavity sits at a constant depth under a cortex.
    #[serde(default)]
    pub inset_mm: f64,
}

impl Layer {
    /// Signed distance from `p_mm` to this layer's surface, in mm (negative inside). Exact when the shape's SDF is
    /// exact and `inset_mm >= 0` (an inward offset of an exact SDF stays exact inside, where it matters).
    pub fn sdf(&self, p_mm: [f64; 3]) -> f64 {
        self.shape.sdf(p_mm) + self.inset_mm
    }
}

/// A synthetic object: a background material and layers painted over it, outer first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Phantom {
    /// HU where no layer covers (air: -1000).
    pub background_hu: f64,
    /// Layers in painting order: each one blends over the result of those before it.
    pub layers: Vec<Layer>,
    /// Width of the linear partial-volume ramp across every surface, in mm (>= 0).
    pub edge_width_mm: f64,
    /// Noise added by [`Phantom::sample`] and the series writer (never by [`Phantom::hu_at`]).
    #[serde(default)]
    pub noise: Noise,
}

/// Name of the soft-tissue layer of [`Phantom::jaw`].
pub const JAW_SOFT_TISSUE: &str = "soft_tissue";
/// Name of the bone layer of [`Phantom::jaw`]: its surface is the outer (periosteal) bone surface.
pub const JAW_BONE: &str = "bone";
/// Name of the marrow layer of [`Phantom::jaw`]: its surface is the inner (endosteal) surface of the cortex.
pub const JAW_MARROW: &str = "marrow";

/// Parameters of [`Phantom::jaw_with`]. The defaults are an adult mandible-sized horseshoe that fits a 256x256
/// field at 0.5 mm with air around the soft tissue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JawParams {
    /// Centre of the bounding box of the bone (LPS mm); the soft tissue is centred there too.
    pub center_mm: [f64; 3],
    /// Radius of the front arc of the centre line, mm.
    pub arch_radius_mm: f64,
    /// Length of each posterior leg, mm.
    pub leg_length_mm: f64,
    /// Outward divergence of each leg from straight posterior, degrees.
    pub divergence_deg: f64,
    /// Horizontal semi-axis of the bone cross-section, mm.
    pub half_width_mm: f64,
    /// Vertical semi-axis of the bone cross-section, mm (equal to `half_width_mm` for a circular tube).
    pub half_height_mm: f64,
    /// Thickness of the cortical shell, mm (the marrow surface is the bone surface moved inward by this much).
    pub cortex_thickness_mm: f64,
    /// HU of cortical bone.
    pub cortical_hu: f64,
    /// HU of the marrow (cancellous bone).
    pub marrow_hu: f64,
    /// HU of soft tissue.
    pub soft_tissue_hu: f64,
    /// HU outside the soft tissue.
    pub air_hu: f64,
    /// Soft tissue: an elliptic cylinder whose semi-axes are the bone's half extents plus this margin, mm.
    pub soft_tissue_margin_mm: f64,
    /// Half length (along z) of the soft-tissue cylinder, mm.
    pub soft_tissue_half_length_mm: f64,
    /// Partial-volume ramp width, mm.
    pub edge_width_mm: f64,
}

impl Default for JawParams {
    fn default() -> Self {
        JawParams {
            center_mm: [0.0, 0.0, 0.0],
            arch_radius_mm: 25.0,
            leg_length_mm: 35.0,
            divergence_deg: 10.0,
            half_width_mm: 7.0,
            half_height_mm: 7.0,
            cortex_thickness_mm: 2.0,
            cortical_hu: 1500.0,
            marrow_hu: 400.0,
            soft_tissue_hu: 40.0,
            air_hu: -1000.0,
            soft_tissue_margin_mm: 12.0,
            soft_tissue_half_length_mm: 30.0,
            edge_width_mm: DEFAULT_EDGE_WIDTH_MM,
        }
    }
}

impl Phantom {
    /// An empty phantom: `background_hu` everywhere, default edge width, no noise.
    pub fn new(background_hu: f64) -> Self {
        Phantom {
            background_hu,
            layers: Vec::new(),
            edge_width_mm: DEFAULT_EDGE_WIDTH_MM,
            noise: Noise::default(),
        }
    }

    /// Adds a layer on top of the existing ones.
    pub fn with_layer(self, name: &str, shape: Shape, hu: f64) -> Self {
        self.with_inset_layer(name, shape, hu, 0.0)
    }

    /// Adds a layer whose surface is `shape`'s surface moved inward by `inset_mm`.
    pub fn with_inset_layer(mut self, name: &str, shape: Shape, hu: f64, inset_mm: f64) -> Self {
        self.layers.push(Layer {
            name: name.to_string(),
            shape,
            hu,
            inset_mm,
        });
        self
    }

    /// Sets the noise.
    pub fn with_noise(mut self, sigma_hu: f64, seed: u64) -> Self {
        self.noise = Noise { sigma_hu, seed };
        self
    }

    /// Sets the partial-volume ramp width (mm); about two voxels is realistic.
    pub fn with_edge_width(mut self, edge_width_mm: f64) -> Self {
        self.edge_width_mm = edge_width_mm;
        self
    }

    /// A ball of `hu` (layer and surface name `"sphere"`) in air (-1000 HU), no noise.
    pub fn sphere(center_mm: [f64; 3], radius_mm: f64, hu: f64) -> Self {
        Phantom::new(-1000.0).with_layer("sphere", Shape::Sphere { center_mm, radius_mm }, hu)
    }

    /// The standard jaw: [`JawParams::default`], no noise.
    pub fn jaw() -> Self {
        Phantom::jaw_with(&JawParams::default())
    }

    /// A horseshoe mandible (cortex over marrow, capped ends) inside an elliptic cylinder of soft tissue, in air.
    ///
    /// Layers, outer first: [`JAW_SOFT_TISSUE`], [`JAW_BONE`] (cortical HU, outer bone surface) and
    /// [`JAW_MARROW`] (the bone shape inset by the cortex thickness, so the cortex is exactly that thick
    /// everywhere, ends included). No noise; add it with [`Phantom::with_noise`].
    pub fn jaw_with(params: &JawParams) -> Self {
        let mut horseshoe = Horseshoe {
            arch_center_mm: [0.0, 0.0, 0.0],
            arch_radius_mm: params.arch_radius_mm,
            leg_length_mm: params.leg_length_mm,
            divergence_deg: params.divergence_deg,
            half_width_mm: params.half_width_mm,
            half_height_mm: params.half_height_mm,
        };
        let (lo, hi) = Shape::Horseshoe(horseshoe.clone()).bounds_mm();
        let half = [0.5 * (hi[0] - lo[0]), 0.5 * (hi[1] - lo[1])];
        for a in 0..3 {
            horseshoe.arch_center_mm[a] = params.center_mm[a] - 0.5 * (lo[a] + hi[a]);
        }
        let bone = Shape::Horseshoe(horseshoe);
        let tissue = Shape::EllipticCylinder {
            center_mm: params.center_mm,
            semi_axes_mm: [
                half[0] + params.soft_tissue_margin_mm,
                half[1] + params.soft_tissue_margin_mm,
            ],
            half_length_mm: params.soft_tissue_half_length_mm,
        };
        Phantom::new(params.air_hu)
            .with_edge_width(params.edge_width_mm)
            .with_layer(JAW_SOFT_TISSUE, tissue, params.soft_tissue_hu)
            .with_layer(JAW_BONE, bone.clone(), params.cortical_hu)
            .with_inset_layer(JAW_MARROW, bone, params.marrow_hu, params.cortex_thickness_mm)
    }

    /// Checks every parameter; the error names the layer and value at fault.
    pub fn validate(&self) -> Result<(), SynthError> {
        let bad = |msg: String| Err(SynthError::InvalidPhantom(msg));
        if !self.background_hu.is_finite() {
            return bad(format!("background_hu must be finite, got {}", self.background_hu));
        }
        if !(self.edge_width_mm.is_finite() && self.edge_width_mm >= 0.0) {
            return bad(format!(
                "edge_width_mm must be finite and >= 0, got {}",
                self.edge_width_mm
            ));
        }
        if !(self.noise.sigma_hu.is_finite() && self.noise.sigma_hu >= 0.0) {
            return bad(format!(
                "noise sigma_hu must be finite and >= 0, got {}",
                self.noise.sigma_hu
            ));
        }
        for (i, layer) in self.layers.iter().enumerate() {
            if layer.name.is_empty() {
                return bad(format!("layer {i} has an empty name"));
            }
            if self.layers[..i].iter().any(|l| l.name == layer.name) {
                return bad(format!("layer name {:?} is used twice", layer.name));
            }
            if !layer.hu.is_finite() {
                return bad(format!("layer {:?}: hu must be finite", layer.name));
            }
            if !layer.inset_mm.is_finite() {
                return bad(format!("layer {:?}: inset_mm must be finite", layer.name));
            }
            layer
                .shape
                .validate()
                .or_else(|msg| bad(format!("layer {:?}: {msg}", layer.name)))?;
        }
        Ok(())
    }

    /// The layer called `name`.
    pub fn layer(&self, name: &str) -> Option<&Layer> {
        self.layers.iter().find(|l| l.name == name)
    }

    /// Names of the layers (and surfaces), in painting order.
    pub fn surface_names(&self) -> Vec<&str> {
        self.layers.iter().map(|l| l.name.as_str()).collect()
    }

    /// Exact signed distance (mm, negative inside) from `p_mm` to the surface of the layer called `name`.
    pub fn sdf(&self, name: &str, p_mm: [f64; 3]) -> Result<f64, SynthError> {
        self.layer(name)
            .map(|l| l.sdf(p_mm))
            .ok_or_else(|| SynthError::UnknownSurface {
                name: name.to_string(),
                known: self.surface_names().join(", "),
            })
    }

    /// The partial-volume coverage of a layer at signed distance `sdf_mm` from its surface (see module docs).
    pub fn coverage(&self, sdf_mm: f64) -> f64 {
        coverage(sdf_mm, self.edge_width_mm)
    }

    /// Noise-free CT number at `p_mm` (LPS mm), including the partial-volume ramps.
    pub fn hu_at(&self, p_mm: [f64; 3]) -> f64 {
        Evaluator::new(self).hu(p_mm)
    }

    /// Samples the phantom with noise at the centres of `geometry`'s voxels, rounded to whole HU (and clamped to
    /// the `i16` range, ties to even), in `geometry`'s index order. The noise of voxel `index` is drawn from
    /// `(noise.seed, index)`, so the result does not depend on the thread count.
    pub fn sample(&self, geometry: &GridGeometry) -> Result<Vec<i16>, SynthError> {
        let evaluator = self.checked_evaluator(geometry)?;
        Ok(fill_grid(geometry, |p, index| {
            round_hu(evaluator.noisy(evaluator.hu(p), index as u64))
        }))
    }

    /// Samples the noise-free phantom (unrounded) at the centres of `geometry`'s voxels, in index order.
    pub fn sample_noise_free(&self, geometry: &GridGeometry) -> Result<Vec<f32>, SynthError> {
        let evaluator = self.checked_evaluator(geometry)?;
        Ok(fill_grid(geometry, |p, _| evaluator.hu(p) as f32))
    }

    fn checked_evaluator(&self, geometry: &GridGeometry) -> Result<Evaluator, SynthError> {
        self.validate()?;
        let finite = geometry.spacing_mm.iter().all(|s| s.is_finite())
            && geometry.origin_mm.iter().all(|s| s.is_finite())
            && geometry.axes.iter().flatten().all(|s| s.is_finite());
        if !finite {
            return Err(SynthError::InvalidSpec {
                field: "geometry",
                reason: format!("non-finite spacing, origin or axes: {geometry:?}"),
            });
        }
        let voxels = geometry.dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
        if voxels.is_none_or(|n| n > isize::MAX as usize / 4) {
            return Err(SynthError::InvalidSpec {
                field: "geometry",
                reason: format!("{:?} voxels do not fit in memory", geometry.dims),
            });
        }
        Ok(Evaluator::new(self))
    }
}

/// Linear partial-volume ramp; a step (with exactly 1/2 on the surface) when `edge_width_mm` is 0.
#[inline]
fn coverage(sdf_mm: f64, edge_width_mm: f64) -> f64 {
    if edge_width_mm > 0.0 {
        (0.5 - sdf_mm / edge_width_mm).clamp(0.0, 1.0)
    } else if sdf_mm < 0.0 {
        1.0
    } else if sdf_mm == 0.0 {
        0.5
    } else {
        0.0
    }
}

/// Rounds a CT number to whole HU, ties to even, saturating at the `i16` range.
///
/// Why not `f64::round`: it (and `round_ties_even` without SSE4.1) is a libm call, 8 % of the time spent writing
/// a series. Adding and subtracting 1.5 * 2^52 rounds any |x| < 2^51 to an integer, ties to even, in the default
/// floating-point rounding mode; the value is clamped first so that always holds. NaN gives 0.
#[inline]
pub(crate) fn round_hu(hu: f64) -> i16 {
    const ROUNDING: f64 = 6_755_399_441_055_744.0; // 1.5 * 2^52
    let clamped = hu.clamp(f64::from(i16::MIN), f64::from(i16::MAX));
    ((clamped + ROUNDING) - ROUNDING) as i16
}

/// A layer prepared for evaluation at many points.
#[derive(Clone, Debug)]
struct PreparedLayer {
    shape: Prepared,
    hu: f64,
    inset_mm: f64,
    /// The SDF is needed exactly only within this distance of the shape's own surface.
    band_mm: f64,
    /// Bounding box grown by the distance at which the layer's coverage becomes 0.
    lo: [f64; 3],
    hi: [f64; 3],
}

/// The phantom with every shape prepared: what the samplers evaluate per voxel.
#[derive(Clone, Debug)]
pub(crate) struct Evaluator {
    background_hu: f64,
    edge_width_mm: f64,
    layers: Vec<PreparedLayer>,
    noise: Noise,
}

impl Evaluator {
    pub(crate) fn new(phantom: &Phantom) -> Self {
        let half_edge = 0.5 * phantom.edge_width_mm;
        let layers = phantom
            .layers
            .iter()
            .map(|layer| {
                let shape = Prepared::new(&layer.shape);
                let (mut lo, mut hi) = shape.bounds();
                // Coverage is 0 where shape_sdf >= half_edge - inset; outside the box grown by that margin the
                // shape's SDF is at least the distance to the box, hence larger.
                let margin = (half_edge - layer.inset_mm).max(0.0);
                for a in 0..3 {
                    lo[a] -= margin;
                    hi[a] += margin;
                }
                PreparedLayer {
                    shape,
                    hu: layer.hu,
                    inset_mm: layer.inset_mm,
                    band_mm: layer.inset_mm.abs() + half_edge,
                    lo,
                    hi,
                }
            })
            .collect();
        Evaluator {
            background_hu: phantom.background_hu,
            edge_width_mm: phantom.edge_width_mm,
            layers,
            noise: phantom.noise,
        }
    }

    /// Noise-free HU at `p`.
    #[inline]
    pub(crate) fn hu(&self, p: [f64; 3]) -> f64 {
        let mut value = self.background_hu;
        for layer in &self.layers {
            let outside_box = (0..3).any(|a| p[a] < layer.lo[a] || p[a] > layer.hi[a]);
            if outside_box {
                continue;
            }
            let sdf = layer.shape.sdf_band(p, layer.band_mm) + layer.inset_mm;
            let c = coverage(sdf, self.edge_width_mm);
            if c >= 1.0 {
                value = layer.hu;
            } else if c > 0.0 {
                value = value * (1.0 - c) + layer.hu * c;
            }
        }
        value
    }

    /// `clean_hu` plus the noise of voxel `index`.
    #[inline]
    pub(crate) fn noisy(&self, clean_hu: f64, index: u64) -> f64 {
        if self.noise.sigma_hu > 0.0 {
            clean_hu + self.noise.sigma_hu * gaussian(self.noise.seed, index)
        } else {
            clean_hu
        }
    }
}

/// Evaluates `value(patient_mm, linear_index)` at every voxel centre of `geometry`, in index order, parallel over
/// slices (the value depends only on its arguments, so the result does not depend on the thread count).
fn fill_grid<T, F>(geometry: &GridGeometry, value: F) -> Vec<T>
where
    T: Copy + Default + Send,
    F: Fn([f64; 3], usize) -> T + Sync,
{
    let mut out = vec![T::default(); geometry.len()];
    let plane = geometry.dims[0] * geometry.dims[1];
    if plane == 0 {
        return out;
    }
    out.par_chunks_mut(plane).enumerate().for_each(|(k, slab)| {
        for (offset, v) in slab.iter_mut().enumerate() {
            let i = offset % geometry.dims[0];
            let j = offset / geometry.dims[0];
            let p = geometry.to_patient([i as f64, j as f64, k as f64]);
            *v = value([p.x, p.y, p.z], k * plane + offset);
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sphere_values_at_centre_surface_and_outside() {
        let phantom = Phantom::sphere([10.0, -5.0, 3.0], 8.0, 1000.0);
        assert_eq!(phantom.hu_at([10.0, -5.0, 3.0]), 1000.0);
        assert_eq!(phantom.hu_at([100.0, -5.0, 3.0]), -1000.0);
        // On the surface: exactly the midpoint of -1000 and 1000.
        for dir in [[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.6, 0.0, 0.8]] {
            let p = [10.0 + 8.0 * dir[0], -5.0 + 8.0 * dir[1], 3.0 + 8.0 * dir[2]];
            assert!(phantom.hu_at(p).abs() < 1e-9, "{}", phantom.hu_at(p));
        }
        // The ramp is linear over the edge width (1 mm): a quarter inside is 75% covered.
        let p = [10.0 + 7.75, -5.0, 3.0];
        assert!((phantom.hu_at(p) - 500.0).abs() < 1e-9);
        // Just beyond half the edge width, fully outside / inside.
        assert_eq!(phantom.hu_at([10.0 + 8.5, -5.0, 3.0]), -1000.0);
        assert_eq!(phantom.hu_at([10.0 + 7.5, -5.0, 3.0]), 1000.0);
        assert!(phantom.sdf("sphere", [10.0, -5.0, 3.0]).is_ok_and(|d| d == -8.0));
        assert!(matches!(
            phantom.sdf("bone", [0.0; 3]),
            Err(SynthError::UnknownSurface { .. })
        ));
    }

    #[test]
    fn step_edge_has_half_value_on_the_surface() {
        let phantom = Phantom::sphere([0.0; 3], 2.0, 1000.0).with_edge_width(0.0);
        assert_eq!(phantom.hu_at([2.0, 0.0, 0.0]), 0.0);
        assert_eq!(phantom.hu_at([1.999, 0.0, 0.0]), 1000.0);
        assert_eq!(phantom.hu_at([2.001, 0.0, 0.0]), -1000.0);
    }

    #[test]
    fn jaw_has_its_materials_where_expected() {
        let phantom = Phantom::jaw();
        assert!(phantom.validate().is_ok());
        let bone = match &phantom.layer(JAW_BONE).map(|l| &l.shape) {
            Some(Shape::Horseshoe(h)) => h.clone(),
            other => panic!("unexpected bone shape {other:?}"),
        };
        let c = bone.arch_center_mm;
        // Front of the arch: centre line at c + (0, -25, 0). Marrow on the centre line.
        let front = [c[0], c[1] - 25.0, c[2]];
        assert_eq!(phantom.hu_at(front), 400.0);
        // In the cortex, 1 mm under the outer surface (tube radius 7): 6 mm from the centre line.
        assert_eq!(phantom.hu_at([c[0], c[1] - 31.0, c[2]]), 1500.0);
        assert_eq!(phantom.hu_at([c[0], c[1] - 25.0, c[2] + 6.0]), 1500.0);
        // On the outer surface: midpoint of soft tissue and cortex; on the marrow surface: of cortex and marrow.
        assert!((phantom.hu_at([c[0], c[1] - 32.0, c[2]]) - 770.0).abs() < 1e-9);
        assert!((phantom.hu_at([c[0], c[1] - 30.0, c[2]]) - 950.0).abs() < 1e-9);
        // Soft tissue in front of the chin and between the legs; air far away.
        assert_eq!(phantom.hu_at([c[0], c[1] - 36.0, c[2]]), 40.0);
        assert_eq!(phantom.hu_at([c[0], c[1] + 10.0, c[2]]), 40.0);
        assert_eq!(phantom.hu_at([c[0], c[1] - 200.0, c[2]]), -1000.0);
        // Capped ends: marrow just inside the end plane minus the cortex, cortex within 2 mm of it.
        let [end_right, end_left] = bone.leg_ends_mm();
        let div = 10f64.to_radians();
        let dir = [div.sin(), div.cos()];
        let at = |e: [f64; 3], d: f64, sx: f64| [e[0] + sx * dir[0] * d, e[1] + dir[1] * d, e[2]];
        assert_eq!(phantom.hu_at(at(end_right, -3.0, 1.0)), 400.0);
        assert_eq!(phantom.hu_at(at(end_right, -1.0, 1.0)), 1500.0);
        assert_eq!(phantom.hu_at(at(end_right, 1.0, 1.0)), 40.0);
        assert_eq!(phantom.hu_at(at(end_left, -1.0, -1.0)), 1500.0);
        // The bounding box of the bone is centred on the requested centre.
        let (lo, hi) = phantom.layers[1].shape.bounds_mm();
        for a in 0..3 {
            assert!((lo[a] + hi[a]).abs() < 1e-9);
        }
    }

    #[test]
    fn midpoint_iso_surface_is_the_analytic_surface() {
        // Walk outward from the centre line at the front of the arch, in its normal plane (so the signed distance
        // is linear along the walk), sampling every 0.1 mm from an off-grid start, and locate where the HU crosses
        // each midpoint by linear interpolation: within a ramp the HU is linear in the signed distance, so the
        // crossing is the analytic surface up to rounding.
        let phantom = Phantom::jaw();
        let c = match phantom.layer(JAW_BONE).map(|l| &l.shape) {
            Some(Shape::Horseshoe(h)) => h.arch_center_mm,
            _ => panic!("jaw has a horseshoe bone"),
        };
        let along = |t: f64| [c[0], c[1] - 25.0 - t, c[2] + 0.2 * t];
        let dir_norm = (1.0f64 + 0.2 * 0.2).sqrt();
        // Each level is crossed twice (950 HU also on the soft-tissue-to-cortex ramp, 770 HU also on the
        // marrow-to-cortex ramp): the marrow surface is the first crossing, the bone surface the last.
        let crossing = |level: f64, last: bool| -> Option<f64> {
            let step = 0.1 / dir_norm;
            let at = |n: usize| {
                let (t0, t1) = (0.013 + n as f64 * step, 0.013 + (n + 1) as f64 * step);
                let (v0, v1) = (phantom.hu_at(along(t0)), phantom.hu_at(along(t1)));
                ((v0 - level) * (v1 - level) <= 0.0 && v0 != v1).then(|| t0 + (level - v0) / (v1 - v0) * (t1 - t0))
            };
            if last {
                (0..200).rev().find_map(at)
            } else {
                (0..200).find_map(at)
            }
        };
        for (name, level, last) in [(JAW_MARROW, 950.0, false), (JAW_BONE, 770.0, true)] {
            let t = crossing(level, last).expect("the profile crosses the level");
            let d = phantom.sdf(name, along(t)).expect("named surface");
            assert!(d.abs() < 1e-9, "{name}: iso-surface {d} mm from the analytic surface");
        }
    }

    #[test]
    fn jaw_fits_a_256_field_at_half_a_millimetre_with_tissue_around_the_bone() {
        let phantom = Phantom::jaw();
        let (lo, hi) = phantom.layers[0].shape.bounds_mm();
        for a in 0..2 {
            assert!(lo[a] > -60.0 && hi[a] < 60.0, "{lo:?} {hi:?}");
        }
        // Every point of the bone surface (sampled) is at least 3 mm inside the soft tissue.
        let g = GridGeometry::axis_aligned([121, 121, 1], [1.0, 1.0, 1.0], [-60.0, -60.0, 0.0]);
        for idx in 0..g.len() {
            let [i, j, k] = g.ijk(idx);
            let p = g.to_patient([i as f64, j as f64, k as f64]);
            let p = [p.x, p.y, p.z];
            if phantom.sdf(JAW_BONE, p).is_ok_and(|d| d <= 0.0) {
                assert!(phantom.sdf(JAW_SOFT_TISSUE, p).is_ok_and(|d| d < -3.0));
            }
        }
    }

    #[test]
    fn sample_matches_hu_at_plus_noise_and_is_thread_independent() {
        let phantom = Phantom::sphere([0.0; 3], 5.0, 1000.0).with_noise(20.0, 99);
        let g = GridGeometry::axis_aligned([12, 10, 8], [1.0, 1.1, 1.3], [-6.0, -5.0, -4.0]);
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .expect("thread pool");
        let a = one.install(|| phantom.sample(&g)).expect("sample");
        let b = phantom.sample(&g).expect("sample");
        assert_eq!(a, b);
        let clean = phantom.sample_noise_free(&g).expect("sample");
        let evaluator = Evaluator::new(&phantom);
        let mut diff_sq = 0.0;
        for idx in 0..g.len() {
            let [i, j, k] = g.ijk(idx);
            let p = g.to_patient([i as f64, j as f64, k as f64]);
            let expected = phantom.hu_at([p.x, p.y, p.z]);
            assert!((f64::from(clean[idx]) - expected).abs() < 1e-3);
            assert_eq!(a[idx], round_hu(evaluator.noisy(expected, idx as u64)));
            diff_sq += (f64::from(a[idx]) - expected).powi(2);
        }
        let sigma = (diff_sq / g.len() as f64).sqrt();
        assert!((sigma - 20.0).abs() < 2.0, "measured noise {sigma}");
    }

    #[test]
    fn rounding_is_ties_to_even_and_saturating() {
        for (x, r) in [
            (0.4, 0),
            (0.5, 0),
            (1.5, 2),
            (2.5, 2),
            (-0.5, 0),
            (-1.5, -2),
            (-2.6, -3),
            (1499.7, 1500),
            (-1000.2, -1000),
            (1e9, i16::MAX),
            (-1e9, i16::MIN),
            (f64::NAN, 0),
        ] {
            assert_eq!(round_hu(x), r, "{x}");
            if x.is_finite() && x.abs() < 30000.0 {
                assert_eq!(f64::from(round_hu(x)), x.round_ties_even());
            }
        }
    }

    #[test]
    fn validation_names_the_fault() {
        let p = Phantom::sphere([0.0; 3], -1.0, 1000.0);
        assert!(matches!(p.validate(), Err(SynthError::InvalidPhantom(m)) if m.contains("radius")));
        let p = Phantom::sphere([0.0; 3], 1.0, 1000.0).with_layer(
            "sphere",
            Shape::Sphere {
                center_mm: [0.0; 3],
                radius_mm: 1.0,
            },
            0.0,
        );
        assert!(matches!(p.validate(), Err(SynthError::InvalidPhantom(m)) if m.contains("twice")));
        let p = Phantom::jaw().with_noise(-1.0, 0);
        assert!(p.validate().is_err());
    }

    #[test]
    fn phantom_round_trips_through_serde() {
        let phantom = Phantom::jaw().with_noise(12.0, 5);
        let text = serde_json::to_string(&phantom).expect("serialise");
        let back: Phantom = serde_json::from_str(&text).expect("deserialise");
        let again = serde_json::to_value(&back).expect("serialise");
        let original = serde_json::to_value(&phantom).expect("serialise");
        crate::synth::assert_json_close(&again, &original);
        assert_eq!(back.surface_names(), vec![JAW_SOFT_TISSUE, JAW_BONE, JAW_MARROW]);
    }
}
