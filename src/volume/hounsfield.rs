//! Whether a CT's loaded values can be Hounsfield units at all.
//!
//! HU come from the stored values through RescaleSlope and RescaleIntercept, and every later stage (the bone presets,
//! the thresholds in a plan) trusts them. Some exports get the rescale wrong: a real head series with
//! RescaleIntercept 0 and air stored as 0 loads as values 0..3926, and the bone preset (226..3071 HU) then segments
//! soft tissue, silently. Air is about -1000 HU on every calibrated CT, and almost every CT shows air (outside the
//! body, in the airways and sinuses), so two facts give such a series away: a smallest value of 0 or more (no air,
//! no fat, no lung), or a flat floor (a large share of the voxels at the smallest value: the background) far above
//! air. The check runs on the loaded volume, says which tags hold the numbers, and the user can give the intercept
//! (`LoadOptions::rescale_intercept_override`).

use rayon::prelude::*;
use serde::Serialize;

/// Air reads about -1000 HU; a background floor above this is not air, whatever the tags say.
pub const AIR_FLOOR_MAX_HU: i16 = -500;

/// Share of the voxels at exactly the smallest value from which that value is a flat background floor (padding
/// outside the field of view, clamped air) rather than the tail of the noise: 2 %. A real head CT has 4.7 % of its
/// voxels at its -1024 HU floor (cranium-0051); noisy tissue puts a few hundredths of a percent at its minimum.
pub const FLOOR_MIN_SHARE: f64 = 0.02;

/// Where air lands on a calibrated CT's padding / outside-field value, used to suggest an intercept.
const AIR_SUGGESTED_HU: f64 = -1024.0;

/// A CT whose values cannot be Hounsfield units, with the facts and tags that show it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct NotHounsfield {
    /// Modality (0008,0060) of the series.
    pub modality: String,
    /// RescaleIntercept (0028,1052) of the slices: smallest and largest (equal when all slices agree).
    pub rescale_intercept: [f64; 2],
    /// RescaleSlope (0028,1053) of the slices: smallest and largest.
    pub rescale_slope: [f64; 2],
    /// The intercept used instead of the files', when the user gave one.
    pub intercept_override: Option<f64>,
    /// Smallest and largest stored value, before the rescale (when slope and intercept are the same on every slice).
    pub stored_range: Option<[f64; 2]>,
    /// Smallest and largest loaded value.
    pub value_range: [i16; 2],
    /// Share of the voxels at the smallest value (0..1).
    pub share_at_min: f64,
    /// An intercept that puts the smallest stored value at -1024 HU (where scanners put air and padding).
    pub suggested_intercept: f64,
}

impl std::fmt::Display for NotHounsfield {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [lo, hi] = self.value_range;
        let range = |v: [f64; 2]| {
            if v[0] == v[1] {
                format!("{}", v[0])
            } else {
                format!("{}..{}", v[0], v[1])
            }
        };
        write!(
            f,
            "values {lo}..{hi} cannot be Hounsfield units (air reads about -1000 HU): the smallest value is {lo} and \
             {:.0} % of the voxels sit at it. Check the tags: Modality (0008,0060) {}, RescaleSlope (0028,1053) {}, \
             RescaleIntercept (0028,1052) {}",
            100.0 * self.share_at_min,
            if self.modality.is_empty() {
                "(none)"
            } else {
                &self.modality
            },
            range(self.rescale_slope),
            range(self.rescale_intercept),
        )?;
        if let Some(i) = self.intercept_override {
            write!(f, " (replaced by {i} as asked)")?;
        }
        if let Some([s0, s1]) = self.stored_range {
            write!(f, ", stored values {s0}..{s1}")?;
        }
        write!(
            f,
            ". HU thresholds (the bone presets) would select the wrong tissue. If the scanner stored air as {}, give \
             the intercept: --rescale-intercept {} (LoadOptions::rescale_intercept_override)",
            self.stored_range.map_or(0.0, |r| r[0]),
            self.suggested_intercept
        )
    }
}

/// The rescale tags of a series' slices, as the check reports them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RescaleTags {
    /// Smallest and largest RescaleIntercept.
    pub intercept: [f64; 2],
    /// Smallest and largest RescaleSlope.
    pub slope: [f64; 2],
    /// The intercept actually used, when the user replaced the files'.
    pub intercept_override: Option<f64>,
}

/// Check the loaded values of a CT series. `None` when they can be HU (or the series is not CT: those have their own
/// warning).
pub(crate) fn check(modality: &str, tags: RescaleTags, hu: &[i16]) -> Option<NotHounsfield> {
    if modality != "CT" || hu.is_empty() {
        return None;
    }
    let (min, max) = hu
        .par_chunks(1 << 16)
        .map(|c| {
            c.iter()
                .fold((i16::MAX, i16::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)))
        })
        .reduce(|| (i16::MAX, i16::MIN), |a, b| (a.0.min(b.0), a.1.max(b.1)));
    let at_min: u64 = hu
        .par_chunks(1 << 16)
        .map(|c| c.iter().filter(|&&v| v == min).count() as u64)
        .sum();
    let share_at_min = at_min as f64 / hu.len() as f64;
    let floor_not_air = min > AIR_FLOOR_MAX_HU && share_at_min >= FLOOR_MIN_SHARE;
    if min < 0 && !floor_not_air {
        return None;
    }
    let slope = tags.slope[0];
    let intercept = tags.intercept_override.unwrap_or(tags.intercept[0]);
    let uniform =
        tags.slope[0] == tags.slope[1] && (tags.intercept_override.is_some() || tags.intercept[0] == tags.intercept[1]);
    let stored = |v: i16| ((f64::from(v) - intercept) / slope).round();
    let stored_range = uniform.then(|| [stored(min), stored(max)]);
    let stored_min = stored_range.map_or(f64::from(min), |r| r[0]);
    Some(NotHounsfield {
        modality: modality.to_string(),
        rescale_intercept: tags.intercept,
        rescale_slope: tags.slope,
        intercept_override: tags.intercept_override,
        stored_range,
        value_range: [min, max],
        share_at_min,
        suggested_intercept: (AIR_SUGGESTED_HU - stored_min * slope).round(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TAGS: RescaleTags = RescaleTags {
        intercept: [0.0, 0.0],
        slope: [1.0, 1.0],
        intercept_override: None,
    };

    #[test]
    fn air_stored_as_zero_is_not_hounsfield() {
        // 40 % background at 0, the rest soft tissue and bone.
        let mut hu = vec![0i16; 400];
        hu.extend((0..600).map(|i| 900 + (i % 2000) as i16));
        let w = check("CT", TAGS, &hu).expect("warned");
        assert_eq!(w.value_range, [0, 1499]);
        assert_eq!(w.stored_range, Some([0.0, 1499.0]));
        assert_eq!(w.suggested_intercept, -1024.0);
        let text = w.to_string();
        for needle in [
            "RescaleIntercept (0028,1052) 0",
            "RescaleSlope (0028,1053) 1",
            "Modality (0008,0060) CT",
        ] {
            assert!(text.contains(needle), "{needle} in {text}");
        }
        assert!(text.contains("--rescale-intercept -1024"), "{text}");
    }

    #[test]
    fn a_floor_far_above_air_is_not_hounsfield_either() {
        // Background at -24 (an intercept of -1048 applied to stored 1024, say), 30 % of the voxels.
        let mut hu = vec![-24i16; 300];
        hu.extend((0..700).map(|i| (i % 1500) as i16));
        assert!(check("CT", TAGS, &hu).is_some());
    }

    #[test]
    fn calibrated_ct_and_other_modalities_pass() {
        // Air at -1024 (padding) and noisy air around -1000: a calibrated CT.
        let mut hu = vec![-1024i16; 300];
        hu.extend((0..700).map(|i| -1000 + (i % 2500) as i16));
        assert_eq!(check("CT", TAGS, &hu), None);
        // A crop inside the body with fat but no air: the minimum is below 0 and there is no flat floor.
        let hu: Vec<i16> = (0..1000).map(|i| -60 + (i % 1500) as i16).collect();
        assert_eq!(check("CT", TAGS, &hu), None);
        // Non-CT is not checked here (it has its own warning).
        assert_eq!(check("MR", TAGS, &[0; 100]), None);
    }
}
