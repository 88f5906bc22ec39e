//! A serialisable segmentation recipe and the fixed pipeline that runs it.
//!
//! Why a recipe: a surgical plan must be reproducible. Storing the exact steps (HU window, cuts, radii, which
//! components were kept, by which seed) in the plan document lets anyone re-derive the same bone mask from the
//! same CT, and lets a reviewer see what was done. The order of the steps is fixed, not user-defined, so a recipe
//! always means one thing:
//!
//! 1. **threshold** with `hu` (inclusive);
//! 2. **crop** to each box of `crops` (their intersection is kept), then **cut_planes**, then **cut_boxes**;
//!    cutting before the morphology keeps removed structures (the CT table, the other jaw) from being bridged in;
//! 3. **close** by `close_mm` (if > 0), then **open** by `open_mm` (if > 0);
//! 4. **recut**: the cuts of step 2 again, if a morphology step ran, because a closing can re-bridge a scissors
//!    cut narrower than `2 * close_mm`;
//! 5. **keep** components per `keep`, with `connectivity`;
//! 6. **fill_cavities** (3D), then **fill_holes_2d** (per slice), if enabled;
//! 7. **recut** again if a fill ran, so the cuts are authoritative in the result (fills only add voxels, so this
//!    cannot split what step 5 kept).
//!
//! Every step records the voxel count after it; a step leaving an empty mask stops the pipeline with an error
//! naming the step, since nothing useful can follow.

use super::components::{label_components, Connectivity};
use super::cut::{crop_to_box_mm, cut_box_mm, cut_plane};
use super::error::SegmentError;
use super::fill::{fill_cavities, fill_holes_slice_by_slice};
use super::mask::Mask;
use super::morphology::{close_mm, open_mm, radius_sq};
use super::threshold::{check_volume, threshold, HuRange};
use crate::grid::GridGeometry;
use crate::progress::{NoProgress, Progress};
use nalgebra::{Point3, Vector3};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An axis-aligned box in patient LPS mm (closed).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BoxMm {
    /// Lowest corner (L, P, S) in mm.
    pub min_mm: [f64; 3],
    /// Highest corner (L, P, S) in mm.
    pub max_mm: [f64; 3],
}

/// A plane in patient LPS mm; the side the normal points to is cleared.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaneMm {
    /// A point of the plane, in mm.
    pub point_mm: [f64; 3],
    /// Normal towards the side to clear (any non-zero length).
    pub normal: [f64; 3],
}

/// Which connected components to keep.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum Keep {
    /// Keep everything (no component step).
    #[default]
    All,
    /// Keep the largest component.
    Largest,
    /// Keep the `n` largest components.
    NLargest {
        /// How many (at least 1).
        n: usize,
    },
    /// Keep the components under these seeds (patient LPS mm); each must lie on the mask.
    Containing {
        /// Seeds, at least one.
        seeds_mm: Vec<[f64; 3]>,
    },
}

/// Everything needed to turn an HU volume into a bone mask; see the module documentation for the order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentRecipe {
    /// HU window (inclusive).
    pub hu: HuRange,
    /// Connectivity of the component step.
    pub connectivity: Connectivity,
    /// Component selection.
    pub keep: Keep,
    /// Fill 3D cavities (background not 6-connected to the grid border).
    pub fill_cavities: bool,
    /// Fill holes slice by slice (2D, per `k` slice).
    pub fill_holes_2d: bool,
    /// Closing radius in mm (0 = none).
    pub close_mm: f64,
    /// Opening radius in mm (0 = none).
    pub open_mm: f64,
    /// Boxes to crop to (voxels outside any of them are cleared).
    pub crops: Vec<BoxMm>,
    /// Half-spaces to clear.
    pub cut_planes: Vec<PlaneMm>,
    /// Boxes to clear.
    pub cut_boxes: Vec<BoxMm>,
}

impl SegmentRecipe {
    /// A recipe that only thresholds with `hu`.
    pub fn new(hu: HuRange) -> Self {
        SegmentRecipe {
            hu,
            connectivity: Connectivity::default(),
            keep: Keep::All,
            fill_cavities: false,
            fill_holes_2d: false,
            close_mm: 0.0,
            open_mm: 0.0,
            crops: Vec::new(),
            cut_planes: Vec::new(),
            cut_boxes: Vec::new(),
        }
    }

    /// Runs the recipe; see [`apply`].
    pub fn apply(&self, geometry: &GridGeometry, hu: &[i16]) -> Result<(Mask, SegmentStats), SegmentError> {
        apply(self, geometry, hu)
    }

    /// Runs the recipe, stopping with [`SegmentError::Cancelled`] between steps once `progress` is cancelled.
    pub fn apply_with(
        &self,
        geometry: &GridGeometry,
        hu: &[i16],
        progress: &dyn Progress,
    ) -> Result<(Mask, SegmentStats), SegmentError> {
        apply_with(self, geometry, hu, progress)
    }

    /// Checks every parameter that does not depend on the volume, so a bad recipe fails before any work.
    pub fn validate(&self) -> Result<(), SegmentError> {
        for (what, r) in [("closing", self.close_mm), ("opening", self.open_mm)] {
            radius_sq(what, r)?;
        }
        for b in self.crops.iter().chain(&self.cut_boxes) {
            let ok = (0..3).all(|a| b.min_mm[a].is_finite() && b.max_mm[a].is_finite() && b.min_mm[a] <= b.max_mm[a]);
            if !ok {
                return Err(SegmentError::InvalidBox {
                    min_mm: b.min_mm,
                    max_mm: b.max_mm,
                });
            }
        }
        for p in &self.cut_planes {
            let n = Vector3::from(p.normal);
            if !p.point_mm.iter().all(|v| v.is_finite()) || !n.norm().is_finite() || n.norm() == 0.0 {
                return Err(SegmentError::InvalidPlane {
                    point_mm: p.point_mm,
                    normal: p.normal,
                });
            }
        }
        match &self.keep {
            Keep::NLargest { n: 0 } => Err(SegmentError::InvalidComponentCount { n: 0 }),
            Keep::Containing { seeds_mm } if seeds_mm.is_empty() => Err(SegmentError::InvalidRecipe {
                reason: "keep 'containing' needs at least one seed".to_string(),
            }),
            Keep::Containing { seeds_mm } if seeds_mm.iter().flatten().any(|v| !v.is_finite()) => {
                Err(SegmentError::InvalidRecipe {
                    reason: format!("seeds {seeds_mm:?} must be finite"),
                })
            }
            _ => Ok(()),
        }
    }

    /// True when the recipe only thresholds (every component kept, no cut, morphology or fill): its mask is then
    /// exactly the HU window, so the surface can be taken on the window directly while the mask is written in the
    /// same pass (see `bone`).
    pub fn is_threshold_only(&self) -> bool {
        matches!(self.keep, Keep::All)
            && !self.has_cuts()
            && self.close_mm == 0.0
            && self.open_mm == 0.0
            && !self.fill_cavities
            && !self.fill_holes_2d
    }

    /// Runs a threshold-only recipe ([`Self::is_threshold_only`]) whose thresholding `kernel` does (fused with other
    /// work). With `with_mask` the kernel gets a zeroed byte per voxel and must set exactly the voxels in the window
    /// to 1; without, it gets `None` and no mask is made. It returns its own result and the number of voxels in the
    /// window. Validation, errors and statistics are those of [`apply`].
    pub(crate) fn apply_threshold_with<T>(
        &self,
        geometry: &GridGeometry,
        hu: &[i16],
        with_mask: bool,
        kernel: impl FnOnce(Option<&mut [u8]>) -> (T, usize),
    ) -> Result<(Option<Mask>, SegmentStats, T), SegmentError> {
        debug_assert!(
            self.is_threshold_only(),
            "only a threshold-only recipe can be run by its threshold"
        );
        self.validate()?;
        let n = check_volume(geometry, hu)?;
        let (mask, (out, voxels)) = if with_mask {
            let mut data = vec![0u8; n];
            let out = kernel(Some(&mut data));
            (Some(Mask::from_raw(geometry.clone(), data)), out)
        } else {
            (None, kernel(None))
        };
        let mut stats = SegmentStats::default();
        stats.record_count(Step::Threshold, voxels, geometry)?;
        Ok((mask, stats, out))
    }

    fn has_cuts(&self) -> bool {
        !(self.crops.is_empty() && self.cut_planes.is_empty() && self.cut_boxes.is_empty())
    }

    /// Applies all crops, planes and boxes in place (the "recut" step).
    fn cut(&self, mask: &mut Mask) -> Result<(), SegmentError> {
        for b in &self.crops {
            crop_to_box_mm(mask, Point3::from(b.min_mm), Point3::from(b.max_mm))?;
        }
        for p in &self.cut_planes {
            cut_plane(mask, Point3::from(p.point_mm), Vector3::from(p.normal))?;
        }
        for b in &self.cut_boxes {
            cut_box_mm(mask, Point3::from(b.min_mm), Point3::from(b.max_mm))?;
        }
        Ok(())
    }
}

/// A pipeline step, as recorded in [`SegmentStats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// HU threshold.
    Threshold,
    /// Crop boxes.
    Crop,
    /// Cut planes.
    CutPlanes,
    /// Cut boxes.
    CutBoxes,
    /// Closing.
    Close,
    /// Opening.
    Open,
    /// Cuts applied again after morphology or fills.
    Recut,
    /// Component selection.
    Keep,
    /// 3D cavity filling.
    FillCavities,
    /// 2D hole filling.
    FillHoles2d,
}

impl Step {
    /// Name used in messages and serialisation.
    pub fn name(self) -> &'static str {
        match self {
            Step::Threshold => "threshold",
            Step::Crop => "crop",
            Step::CutPlanes => "cut_planes",
            Step::CutBoxes => "cut_boxes",
            Step::Close => "close",
            Step::Open => "open",
            Step::Recut => "recut",
            Step::Keep => "keep",
            Step::FillCavities => "fill_cavities",
            Step::FillHoles2d => "fill_holes_2d",
        }
    }
}

/// Voxel count after one step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepStats {
    /// The step.
    pub step: Step,
    /// Foreground voxels after it.
    pub voxels: usize,
    /// Foreground volume after it, mm^3.
    pub volume_mm3: f64,
}

/// What the pipeline did, step by step.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SegmentStats {
    /// Steps in the order they ran (disabled steps are absent).
    pub steps: Vec<StepStats>,
    /// Components found by the keep step, when it ran.
    pub components_found: Option<usize>,
}

impl SegmentStats {
    /// Voxel count after the last run of `step`.
    pub fn voxels_after(&self, step: Step) -> Option<usize> {
        self.steps.iter().rev().find(|s| s.step == step).map(|s| s.voxels)
    }

    fn record(&mut self, step: Step, mask: &Mask) -> Result<(), SegmentError> {
        self.record_count(step, mask.count(), mask.geometry())
    }

    fn record_count(&mut self, step: Step, voxels: usize, geometry: &GridGeometry) -> Result<(), SegmentError> {
        self.steps.push(StepStats {
            step,
            voxels,
            volume_mm3: voxels as f64 * geometry.voxel_volume_mm3(),
        });
        if voxels == 0 {
            return Err(SegmentError::EmptyResult { step: step.name() });
        }
        Ok(())
    }
}

/// Runs `recipe` on the HU volume `hu` sampled on `geometry`, in the order given in the module documentation.
pub fn apply(
    recipe: &SegmentRecipe,
    geometry: &GridGeometry,
    hu: &[i16],
) -> Result<(Mask, SegmentStats), SegmentError> {
    apply_with(recipe, geometry, hu, &NoProgress)
}

/// [`apply`], cancellable between steps through `progress`.
pub fn apply_with(
    recipe: &SegmentRecipe,
    geometry: &GridGeometry,
    hu: &[i16],
    progress: &dyn Progress,
) -> Result<(Mask, SegmentStats), SegmentError> {
    recipe.validate()?;
    let mut stats = SegmentStats::default();
    let mut mask = threshold(geometry, hu, recipe.hu)?;
    stats.record(Step::Threshold, &mask)?;
    progress.checkpoint()?;

    for b in &recipe.crops {
        crop_to_box_mm(&mut mask, Point3::from(b.min_mm), Point3::from(b.max_mm))?;
    }
    if !recipe.crops.is_empty() {
        stats.record(Step::Crop, &mask)?;
        progress.checkpoint()?;
    }
    for p in &recipe.cut_planes {
        cut_plane(&mut mask, Point3::from(p.point_mm), Vector3::from(p.normal))?;
    }
    if !recipe.cut_planes.is_empty() {
        stats.record(Step::CutPlanes, &mask)?;
        progress.checkpoint()?;
    }
    for b in &recipe.cut_boxes {
        cut_box_mm(&mut mask, Point3::from(b.min_mm), Point3::from(b.max_mm))?;
    }
    if !recipe.cut_boxes.is_empty() {
        stats.record(Step::CutBoxes, &mask)?;
        progress.checkpoint()?;
    }

    let mut morphology_ran = false;
    if recipe.close_mm > 0.0 {
        mask = close_mm(&mask, recipe.close_mm)?;
        stats.record(Step::Close, &mask)?;
        progress.checkpoint()?;
        morphology_ran = true;
    }
    if recipe.open_mm > 0.0 {
        mask = open_mm(&mask, recipe.open_mm)?;
        stats.record(Step::Open, &mask)?;
        progress.checkpoint()?;
        morphology_ran = true;
    }
    if morphology_ran && recipe.has_cuts() {
        recipe.cut(&mut mask)?;
        stats.record(Step::Recut, &mask)?;
        progress.checkpoint()?;
    }

    match &recipe.keep {
        Keep::All => {}
        keep => {
            let comps = label_components(&mask, recipe.connectivity)?;
            stats.components_found = Some(comps.len());
            mask = match keep {
                Keep::Largest => comps.mask_where(|c| c.label == 1),
                Keep::NLargest { n } => comps.mask_where(|c| (c.label as usize) <= *n),
                Keep::Containing { seeds_mm } => {
                    let labels = seeds_mm
                        .iter()
                        .map(|s| comps.label_at_mm(Point3::from(*s)))
                        .collect::<Result<Vec<u32>, _>>()?;
                    comps.mask_of_labels(&labels)
                }
                Keep::All => mask,
            };
            stats.record(Step::Keep, &mask)?;
            progress.checkpoint()?;
        }
    }

    if recipe.fill_cavities {
        mask = fill_cavities(&mask)?;
        stats.record(Step::FillCavities, &mask)?;
        progress.checkpoint()?;
    }
    if recipe.fill_holes_2d {
        mask = fill_holes_slice_by_slice(&mask)?;
        stats.record(Step::FillHoles2d, &mask)?;
        progress.checkpoint()?;
    }
    if (recipe.fill_cavities || recipe.fill_holes_2d) && recipe.has_cuts() {
        recipe.cut(&mut mask)?;
        stats.record(Step::Recut, &mask)?;
        progress.checkpoint()?;
    }
    Ok((mask, stats))
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// Two hollow bone balls (a big and a small one) in soft tissue, plus a speck, on a 0.5 mm grid.
    fn phantom() -> (GridGeometry, Vec<i16>) {
        let g = GridGeometry::axis_aligned([48, 32, 32], [0.5, 0.5, 0.5], [-12.0, -8.0, -8.0]);
        let hu = (0..g.len())
            .map(|x| {
                let p = g.to_patient({
                    let [i, j, k] = g.ijk(x);
                    [i as f64, j as f64, k as f64]
                });
                let big = (p - Point3::new(-4.0, 0.0, 0.0)).norm();
                let small = (p - Point3::new(7.0, 0.0, 0.0)).norm();
                let speck = (p - Point3::new(10.0, 6.0, 6.0)).norm();
                if (4.0..=6.0).contains(&big) || (2.0..=3.0).contains(&small) || speck < 0.3 {
                    1200
                } else if big < 4.0 || small < 2.0 {
                    400 // marrow: below the cortical window
                } else {
                    40
                }
            })
            .collect();
        (g, hu)
    }

    #[test]
    fn pipeline_runs_in_order_with_stats() -> TestResult {
        let (g, hu) = phantom();
        let mut recipe = SegmentRecipe::new(HuRange::CORTICAL);
        recipe.keep = Keep::Largest;
        recipe.fill_cavities = true;
        recipe.close_mm = 0.5;
        recipe.cut_planes.push(PlaneMm {
            point_mm: [11.0, 0.0, 0.0],
            normal: [1.0, 0.0, 0.0],
        });
        let (mask, stats) = apply(&recipe, &g, &hu)?;
        let steps: Vec<Step> = stats.steps.iter().map(|s| s.step).collect();
        assert_eq!(
            steps,
            [
                Step::Threshold,
                Step::CutPlanes,
                Step::Close,
                Step::Recut,
                Step::Keep,
                Step::FillCavities,
                Step::Recut
            ]
        );
        assert_eq!(stats.components_found, Some(3));

        // The same steps by hand.
        let (point, normal) = (Point3::new(11.0, 0.0, 0.0), Vector3::new(1.0, 0.0, 0.0));
        let mut m = threshold(&g, &hu, HuRange::CORTICAL)?;
        assert_eq!(stats.voxels_after(Step::Threshold), Some(m.count()));
        cut_plane(&mut m, point, normal)?;
        let mut m = close_mm(&m, 0.5)?;
        assert_eq!(stats.voxels_after(Step::Close), Some(m.count()));
        cut_plane(&mut m, point, normal)?;
        let m = super::super::components::keep_largest(&m, Connectivity::Six)?;
        let mut m = fill_cavities(&m)?;
        cut_plane(&mut m, point, normal)?;
        assert_eq!(mask, m);

        // The kept, filled big ball: its centre is filled, the small ball (centre voxel 38) is gone.
        assert!(mask.get(16, 16, 16) && !mask.get(38, 16, 16) && !mask.get(34, 16, 16));
        let solid_count = Mask::from_fn(g.clone(), |[i, j, k]| {
            (g.to_patient([i as f64, j as f64, k as f64]) - Point3::new(-4.0, 0.0, 0.0)).norm() <= 6.0
        })?
        .count();
        assert!(
            mask.count().abs_diff(solid_count) * 50 < solid_count,
            "{} vs {solid_count}",
            mask.count()
        );

        // Seeds pick the small ball instead (its shell: 7 mm + 2.5 mm).
        recipe.keep = Keep::Containing {
            seeds_mm: vec![[9.5, 0.0, 0.0]],
        };
        let (small, stats) = apply(&recipe, &g, &hu)?;
        assert!(small.get(38, 16, 16) && !small.get(16, 16, 16));
        assert_eq!(stats.components_found, Some(3));
        Ok(())
    }

    #[test]
    fn empty_steps_and_bad_recipes_fail_clearly() -> TestResult {
        let (g, hu) = phantom();
        let recipe = SegmentRecipe::new(HuRange::ENAMEL);
        let e = apply(&recipe, &g, &hu).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("empty after the step 'threshold'"), "{e}");

        let mut recipe = SegmentRecipe::new(HuRange::BONE);
        recipe.close_mm = -1.0;
        assert!(matches!(
            apply(&recipe, &g, &hu),
            Err(SegmentError::InvalidRadius { what: "closing", .. })
        ));
        recipe.close_mm = 0.0;
        recipe.keep = Keep::Containing { seeds_mm: vec![] };
        assert!(matches!(
            apply(&recipe, &g, &hu),
            Err(SegmentError::InvalidRecipe { .. })
        ));
        recipe.keep = Keep::Containing {
            seeds_mm: vec![[0.0, 0.0, 30.0]],
        };
        assert!(matches!(
            apply(&recipe, &g, &hu),
            Err(SegmentError::SeedOutsideGrid { .. })
        ));
        recipe.keep = Keep::NLargest { n: 0 };
        assert!(matches!(
            apply(&recipe, &g, &hu),
            Err(SegmentError::InvalidComponentCount { .. })
        ));
        Ok(())
    }

    #[test]
    fn recut_keeps_scissors_open_after_closing() -> TestResult {
        // Two bars meeting end to end; a 1 mm scissors box separates them, closing by 1 mm would re-bridge it.
        let g = GridGeometry::axis_aligned([40, 10, 10], [0.5, 0.5, 0.5], [0.0; 3]);
        let hu: Vec<i16> = (0..g.len())
            .map(|x| {
                let [_, j, k] = g.ijk(x);
                if (3..7).contains(&j) && (3..7).contains(&k) {
                    1000
                } else {
                    -1000
                }
            })
            .collect();
        let mut recipe = SegmentRecipe::new(HuRange::BONE);
        recipe.cut_boxes.push(BoxMm {
            min_mm: [9.4, -1.0, -1.0],
            max_mm: [10.1, 10.0, 10.0],
        });
        recipe.close_mm = 1.0;
        recipe.keep = Keep::NLargest { n: 5 };
        let (_, stats) = apply(&recipe, &g, &hu)?;
        assert_eq!(stats.components_found, Some(2));
        Ok(())
    }

    #[test]
    fn recipe_round_trips_through_json() -> TestResult {
        let mut recipe = SegmentRecipe::new(HuRange::BONE);
        recipe.connectivity = Connectivity::TwentySix;
        recipe.keep = Keep::Containing {
            seeds_mm: vec![[1.0, 2.0, 3.0]],
        };
        recipe.close_mm = 1.0;
        recipe.crops.push(BoxMm {
            min_mm: [-50.0, -60.0, -70.0],
            max_mm: [50.0, 60.0, 70.0],
        });
        let json = serde_json::to_string(&recipe)?;
        assert!(json.contains("\"mode\":\"containing\""), "{json}");
        assert!(json.contains("\"min_hu\":226"), "{json}");
        let back: SegmentRecipe = serde_json::from_str(&json)?;
        assert_eq!(back, recipe);

        // Omitted fields (the plan document rejects missing fields), inverted HU ranges and unknown fields are
        // refused.
        let minimal = serde_json::from_str::<SegmentRecipe>(r#"{"hu":{"min_hu":226,"max_hu":3071}}"#);
        let msg = minimal.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("missing field `connectivity`"), "{msg}");
        let bad = serde_json::from_str::<SegmentRecipe>(r#"{"hu":{"min_hu":3071,"max_hu":226}}"#);
        let msg = bad.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("3071..226"), "{msg}");
        assert!(serde_json::from_str::<SegmentRecipe>(r#"{"hu":{"min_hu":1,"max_hu":2},"clse_mm":1}"#).is_err());
        Ok(())
    }
}
