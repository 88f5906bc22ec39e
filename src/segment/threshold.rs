//! HU windows and thresholding.
//!
//! Bone segmentation for guide design starts from a Hounsfield window; the presets are the ones surgeons and
//! technicians already know from InVesalius, so a plan written with `"bone"` means the same range there and here.
//! Both ends of a range are inclusive, as in InVesalius.
//!
//! The threshold kernel is a pure streaming pass (read 2 bytes, write 1 per voxel). It uses the unsigned
//! wrap-around trick `(v - min) as u16 <= (max - min) as u16`, one compare per voxel, which the compiler turns
//! into a few SIMD instructions per 16 voxels; work is split into 64 K-voxel chunks across rayon threads.
//! What is left is memory bandwidth and, for a freshly allocated mask, the kernel's first-touch page faults:
//! [`threshold_into`] reuses an existing mask to avoid the latter when thresholds are tuned interactively.

use super::error::{validate_geometry, SegmentError};
use super::mask::{Mask, PAR_CHUNK};
use crate::grid::GridGeometry;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// An inclusive Hounsfield window `min_hu ..= max_hu`, with `min_hu <= max_hu` guaranteed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "RawHuRange", into = "RawHuRange")]
pub struct HuRange {
    min_hu: i16,
    max_hu: i16,
}

/// Serialized form of [`HuRange`]; deserialization goes through [`HuRange::new`] so that an edited plan cannot
/// smuggle in an inverted range.
/// The schema derived for `HuRange` is this one (schemars follows `try_from`/`into`), so it shows both bounds.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "HuRange")]
struct RawHuRange {
    /// Lowest HU in the window (inclusive).
    min_hu: i16,
    /// Highest HU in the window (inclusive), at least `min_hu`.
    max_hu: i16,
}

impl TryFrom<RawHuRange> for HuRange {
    type Error = SegmentError;
    fn try_from(r: RawHuRange) -> Result<Self, SegmentError> {
        HuRange::new(r.min_hu, r.max_hu)
    }
}

impl From<HuRange> for RawHuRange {
    fn from(r: HuRange) -> Self {
        RawHuRange {
            min_hu: r.min_hu,
            max_hu: r.max_hu,
        }
    }
}

/// Named presets (InVesalius' CT threshold table), with the names accepted by [`HuRange::from_str`].
const PRESETS: &[(&[&str], HuRange)] = &[
    (&["bone"], HuRange::BONE),
    (&["cortical", "compact"], HuRange::CORTICAL),
    (&["spongy", "spongial", "cancellous"], HuRange::SPONGY),
    (&["cortical-child", "compact-child"], HuRange::CORTICAL_CHILD),
    (
        &["spongy-child", "spongial-child", "cancellous-child"],
        HuRange::SPONGY_CHILD,
    ),
    (&["enamel"], HuRange::ENAMEL),
    (&["enamel-child"], HuRange::ENAMEL_CHILD),
    (&["soft-tissue"], HuRange::SOFT_TISSUE),
];

impl HuRange {
    /// All bone, 226..3071 HU (InVesalius "Bone").
    pub const BONE: HuRange = HuRange {
        min_hu: 226,
        max_hu: 3071,
    };
    /// Compact (cortical) adult bone, 662..1988 HU (InVesalius "Compact Bone (Adult)").
    pub const CORTICAL: HuRange = HuRange {
        min_hu: 662,
        max_hu: 1988,
    };
    /// Spongy (cancellous) adult bone, 148..661 HU (InVesalius "Spongial Bone (Adult)").
    pub const SPONGY: HuRange = HuRange {
        min_hu: 148,
        max_hu: 661,
    };
    /// Compact child bone, 586..2198 HU (InVesalius "Compact Bone (Child)").
    pub const CORTICAL_CHILD: HuRange = HuRange {
        min_hu: 586,
        max_hu: 2198,
    };
    /// Spongy child bone, 156..585 HU (InVesalius "Spongial Bone (Child)").
    pub const SPONGY_CHILD: HuRange = HuRange {
        min_hu: 156,
        max_hu: 585,
    };
    /// Adult tooth enamel, 1553..2850 HU (InVesalius "Enamel (Adult)").
    pub const ENAMEL: HuRange = HuRange {
        min_hu: 1553,
        max_hu: 2850,
    };
    /// Child tooth enamel, 2042..3071 HU (InVesalius "Enamel (Child)").
    pub const ENAMEL_CHILD: HuRange = HuRange {
        min_hu: 2042,
        max_hu: 3071,
    };
    /// Soft tissue, -700..225 HU (InVesalius "Soft Tissue").
    pub const SOFT_TISSUE: HuRange = HuRange {
        min_hu: -700,
        max_hu: 225,
    };

    /// A window `min_hu ..= max_hu`; fails when `min_hu > max_hu`.
    pub fn new(min_hu: i16, max_hu: i16) -> Result<Self, SegmentError> {
        if min_hu > max_hu {
            return Err(SegmentError::InvalidHuRange { min_hu, max_hu });
        }
        Ok(HuRange { min_hu, max_hu })
    }

    /// The preset called `name` (case-insensitive; `_` and spaces count as `-`), if any.
    pub fn preset(name: &str) -> Option<HuRange> {
        let norm: String = name
            .trim()
            .chars()
            .map(|c| match c {
                '_' | ' ' => '-',
                c => c.to_ascii_lowercase(),
            })
            .collect();
        PRESETS
            .iter()
            .find(|(names, _)| names.contains(&norm.as_str()))
            .map(|(_, r)| *r)
    }

    /// Names accepted by [`HuRange::preset`], primary name first for each preset.
    pub fn preset_names() -> impl Iterator<Item = &'static str> {
        PRESETS.iter().flat_map(|(names, _)| names.iter().copied())
    }

    /// Lowest HU included.
    pub fn min_hu(&self) -> i16 {
        self.min_hu
    }

    /// Highest HU included.
    pub fn max_hu(&self) -> i16 {
        self.max_hu
    }

    /// Whether `hu` lies in the window (both ends included).
    #[inline]
    pub fn contains(&self, hu: i16) -> bool {
        self.min_hu <= hu && hu <= self.max_hu
    }
}

impl fmt::Display for HuRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.min_hu, self.max_hu)
    }
}

/// Why a text could not be read as an HU range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read '{text}' as an HU range: {reason}")]
pub struct ParseHuRangeError {
    /// The text given.
    pub text: String,
    /// What was wrong with it.
    pub reason: String,
}

impl FromStr for HuRange {
    type Err = ParseHuRangeError;

    /// Reads `"MIN..MAX"` (inclusive, e.g. `"226..3071"`, `"-700..225"`, `"226..=3071"`) or a preset name
    /// (`"bone"`, `"cortical"`, `"spongy"`, ...).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| ParseHuRangeError {
            text: text.to_string(),
            reason,
        };
        let trimmed = text.trim();
        if let Some((lo, hi)) = trimmed.split_once("..") {
            let hi = hi.strip_prefix('=').unwrap_or(hi);
            let parse = |s: &str, which: &str| {
                s.trim().parse::<i16>().map_err(|e| {
                    err(format!(
                        "the {which} '{}' is not an integer in {}..{} ({e})",
                        s.trim(),
                        i16::MIN,
                        i16::MAX
                    ))
                })
            };
            let min_hu = parse(lo, "minimum")?;
            let max_hu = parse(hi, "maximum")?;
            return HuRange::new(min_hu, max_hu).map_err(|e| err(e.to_string()));
        }
        HuRange::preset(trimmed).ok_or_else(|| {
            let names: Vec<&str> = HuRange::preset_names().collect();
            err(format!(
                "expected MIN..MAX (e.g. 226..3071) or a preset name ({})",
                names.join(", ")
            ))
        })
    }
}

/// Voxels whose HU lies in `range` (both ends inclusive) become foreground.
///
/// `hu` holds one value per voxel of `geometry`, index `(k * ny + j) * nx + i`.
pub fn threshold(geometry: &GridGeometry, hu: &[i16], range: HuRange) -> Result<Mask, SegmentError> {
    let n = check_volume(geometry, hu)?;
    // Filling through `collect_into_vec` would not be faster: the cost of a new mask is dominated by first
    // touching its pages, which happens in parallel inside the kernel below.
    let mut data = vec![0u8; n];
    threshold_kernel(hu, &mut data, range);
    Ok(Mask::from_raw(geometry.clone(), data))
}

/// Like [`threshold`], writing into an existing mask of the same geometry (no allocation, no page faults).
pub fn threshold_into(out: &mut Mask, hu: &[i16], range: HuRange) -> Result<(), SegmentError> {
    check_volume(out.geometry(), hu)?;
    threshold_kernel(hu, out.bytes_mut(), range);
    Ok(())
}

/// Fails unless `hu` has one sample per voxel of `geometry`.
pub(crate) fn check_volume(geometry: &GridGeometry, hu: &[i16]) -> Result<usize, SegmentError> {
    let n = validate_geometry(geometry)?;
    if hu.len() != n {
        return Err(SegmentError::LengthMismatch {
            what: "HU volume",
            expected: n,
            actual: hu.len(),
            dims: geometry.dims,
        });
    }
    Ok(n)
}

fn threshold_kernel(hu: &[i16], out: &mut [u8], range: HuRange) {
    let min = range.min_hu;
    // `min <= max` by construction, so the span fits u16 exactly.
    let span = range.max_hu.wrapping_sub(min) as u16;
    out.par_chunks_mut(PAR_CHUNK)
        .zip(hu.par_chunks(PAR_CHUNK))
        .for_each(|(o, h)| {
            for (b, &v) in o.iter_mut().zip(h) {
                *b = u8::from((v.wrapping_sub(min) as u16) <= span);
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field() -> (GridGeometry, Vec<i16>) {
        // 40 x 30 x 20 voxels whose HU is a deterministic function of the index covering the whole i16 range.
        let g = GridGeometry::axis_aligned([40, 30, 20], [0.4, 0.4, 1.25], [-8.0, -6.0, 10.0]);
        let hu = (0..g.len())
            .map(|x| ((x as i64 * 2654435761 % 65536) - 32768) as i16)
            .collect();
        (g, hu)
    }

    #[test]
    fn counts_are_exact() -> Result<(), SegmentError> {
        let (g, hu) = field();
        for range in [
            HuRange::BONE,
            HuRange::SPONGY,
            HuRange::new(-32768, 32767)?,
            HuRange::new(-32768, -32768)?,
            HuRange::new(32767, 32767)?,
            HuRange::new(0, 0)?,
        ] {
            let m = threshold(&g, &hu, range)?;
            let expected = hu.iter().filter(|&&v| range.contains(v)).count();
            assert_eq!(m.count(), expected, "{range}");
            for (b, &v) in m.as_bytes().iter().zip(&hu) {
                assert_eq!(*b == 1, range.contains(v));
            }
        }
        assert_eq!(threshold(&g, &hu, HuRange::new(-32768, 32767)?)?.count(), g.len());
        Ok(())
    }

    #[test]
    fn both_ends_inclusive() -> Result<(), SegmentError> {
        let g = GridGeometry::axis_aligned([6, 1, 1], [1.0; 3], [0.0; 3]);
        let hu = [225, 226, 227, 3070, 3071, 3072];
        let m = threshold(&g, &hu, HuRange::BONE)?;
        assert_eq!(m.as_bytes(), &[0, 1, 1, 1, 1, 0]);
        let mut reuse = Mask::full(g.clone())?;
        threshold_into(&mut reuse, &hu, HuRange::new(3071, 3072)?)?;
        assert_eq!(reuse.as_bytes(), &[0, 0, 0, 0, 1, 1]);
        Ok(())
    }

    #[test]
    fn wrong_volume_length_is_refused() {
        let (g, hu) = field();
        let r = threshold(&g, &hu[1..], HuRange::BONE);
        assert!(matches!(r, Err(SegmentError::LengthMismatch { what: "HU volume", .. })));
    }

    #[test]
    fn presets_parse() -> Result<(), ParseHuRangeError> {
        assert_eq!("bone".parse::<HuRange>()?, HuRange::BONE);
        assert_eq!(" Cortical ".parse::<HuRange>()?, HuRange::CORTICAL);
        assert_eq!("spongy".parse::<HuRange>()?, HuRange::SPONGY);
        assert_eq!("soft_tissue".parse::<HuRange>()?, HuRange::SOFT_TISSUE);
        assert_eq!("226..3071".parse::<HuRange>()?, HuRange::BONE);
        assert_eq!("662..=1988".parse::<HuRange>()?, HuRange::CORTICAL);
        assert_eq!("-700 .. 225".parse::<HuRange>()?, HuRange::SOFT_TISSUE);
        assert_eq!((HuRange::BONE.min_hu(), HuRange::BONE.max_hu()), (226, 3071));
        assert_eq!((HuRange::CORTICAL.min_hu(), HuRange::CORTICAL.max_hu()), (662, 1988));
        assert_eq!((HuRange::SPONGY.min_hu(), HuRange::SPONGY.max_hu()), (148, 661));
        assert_eq!(HuRange::BONE.to_string().parse::<HuRange>()?, HuRange::BONE);
        Ok(())
    }

    #[test]
    fn bad_ranges_are_rejected_with_the_text() {
        let e = "3071..226".parse::<HuRange>().err().map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some(
                "cannot read '3071..226' as an HU range: invalid HU range 3071..226: the minimum is above the maximum"
            )
        );
        let e = "200..40000"
            .parse::<HuRange>()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("'200..40000'") && e.contains("maximum '40000'"), "{e}");
        let e = "bones"
            .parse::<HuRange>()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("'bones'") && e.contains("cortical"), "{e}");
        let e = "abc..12"
            .parse::<HuRange>()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("minimum 'abc'"), "{e}");
        assert!(matches!(
            HuRange::new(5, 4),
            Err(SegmentError::InvalidHuRange { min_hu: 5, max_hu: 4 })
        ));
    }
}
