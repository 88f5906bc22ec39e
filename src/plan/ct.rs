//! The CT a plan refers to, identified by a hash of the loaded volume rather than of the DICOM files.
//!
//! Why hash the volume: the same CT can arrive as differently named, ordered, compressed or anonymised files, and
//! all of those give the same HU on the same grid, which is all later stages use. Conversely a re-export with
//! another slice spacing or a changed voxel is a different CT, and a plan made on one must not be applied to the
//! other. The hash covers the grid geometry and every HU sample, in a fixed little-endian layout:
//!
//! ```text
//! "guidesmith-volume-v1"                          (20 ASCII bytes)
//! dims[0..3]                                      u64 LE each
//! spacing_mm[0..3], origin_mm[0..3], axes[0..3][0..3] (row by row)   f64 LE each
//! hu[0..n]                                        i16 LE each, in the grid's storage order (i fastest, then j, k)
//! ```

use std::path::Path;

use sha2::{Digest, Sha256};

use super::error::PlanError;
use super::io::hex;
use super::model::CtReference;
use crate::grid::GridGeometry;
use crate::volume::Volume;

/// First bytes hashed by [`ct_sha256`]; the `v1` changes if the layout ever does.
pub const CT_HASH_HEADER: &[u8] = b"guidesmith-volume-v1";

/// Samples converted to bytes per hasher update: 1 MiB of bytes stays in L2 while SHA-NI consumes it, and is large
/// enough that the per-call overhead vanishes.
const HASH_CHUNK_SAMPLES: usize = 1 << 19;

/// Hex digits of a hash shown in a mismatch message (enough to tell two hashes apart at a glance).
const HASH_PREFIX_DIGITS: usize = 12;

/// Lower-case hex SHA-256 of `volume`'s geometry and HU samples; the layout is in the module documentation.
///
/// sha2 picks the SHA-NI instructions at run time where the CPU has them; samples are converted to little-endian
/// bytes in 1 MiB chunks so the hasher always sees large blocks.
pub fn ct_sha256(volume: &Volume) -> String {
    let mut hasher = Sha256::new();
    hash_geometry(&mut hasher, &volume.geometry);
    let mut bytes = vec![0u8; 2 * HASH_CHUNK_SAMPLES.min(volume.hu.len())];
    for chunk in volume.hu.chunks(HASH_CHUNK_SAMPLES) {
        let out = &mut bytes[..2 * chunk.len()];
        for (dst, v) in out.chunks_exact_mut(2).zip(chunk) {
            dst.copy_from_slice(&v.to_le_bytes());
        }
        hasher.update(&*out);
    }
    hex(&hasher.finalize())
}

fn hash_geometry(hasher: &mut Sha256, g: &GridGeometry) {
    hasher.update(CT_HASH_HEADER);
    for d in g.dims {
        hasher.update((d as u64).to_le_bytes());
    }
    let axes = g.axes.iter().flatten();
    for v in g.spacing_mm.iter().chain(&g.origin_mm).chain(axes) {
        hasher.update(v.to_le_bytes());
    }
}

impl CtReference {
    /// The reference to `volume` as loaded with the files' own rescale values, recorded with `path_hint` (see
    /// [`ct_path_hint`]); set `rescale_intercept_override_hu` when it was loaded with another intercept.
    pub fn from_volume(volume: &Volume, path_hint: &str) -> CtReference {
        let g = &volume.geometry;
        CtReference {
            path: path_hint.to_string(),
            series_uid: volume.series.series_uid.clone(),
            volume_sha256: ct_sha256(volume),
            dims: g.dims,
            spacing_mm: g.spacing_mm,
            origin_mm: g.origin_mm,
            axes: g.axes,
            rescale_intercept_override_hu: None,
        }
    }

    /// Checks that `volume` is the CT this reference was made from; on a mismatch the error gives both hash
    /// prefixes and says whether the dims, spacing, origin or axes differ.
    pub fn verify(&self, volume: &Volume) -> Result<(), PlanError> {
        let actual = ct_sha256(volume);
        if actual == self.volume_sha256 {
            return Ok(());
        }
        let g = &volume.geometry;
        let mut parts = vec![format!(
            "hash {}... expected, {}... found",
            prefix(&self.volume_sha256),
            prefix(&actual)
        )];
        let compare = |what: &str, expected: String, found: String| {
            if expected == found {
                format!("{what} same ({expected})")
            } else {
                format!("{what} differ ({expected} expected, {found} found)")
            }
        };
        parts.push(compare("dims", join(&self.dims), join(&g.dims)));
        parts.push(compare(
            "spacing",
            join(&self.spacing_mm) + " mm",
            join(&g.spacing_mm) + " mm",
        ));
        if self.origin_mm != g.origin_mm {
            parts.push(format!(
                "origin differs ({} expected, {} found)",
                join(&self.origin_mm),
                join(&g.origin_mm)
            ));
        }
        if self.axes != g.axes {
            parts.push("axes differ".to_string());
        }
        if self.dims == g.dims
            && self.spacing_mm == g.spacing_mm
            && self.origin_mm == g.origin_mm
            && self.axes == g.axes
        {
            parts.push("so the HU values differ".to_string());
        }
        Err(PlanError::CtMismatch {
            expected_sha256: self.volume_sha256.clone(),
            actual_sha256: actual,
            details: parts.join("; "),
        })
    }
}

fn prefix(hash: &str) -> &str {
    hash.get(..HASH_PREFIX_DIGITS).unwrap_or(hash)
}

fn join<T: std::fmt::Display>(values: &[T]) -> String {
    values.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(" x ")
}

/// The path to record for a CT at `ct_path` in a plan saved as `plan_file`: relative to the plan's folder when
/// the CT lies inside it (so a case folder can be moved as a whole), else `ct_path` as given. `/` separates the
/// components either way, so the plan reads the same on every system.
pub fn ct_path_hint(plan_file: &Path, ct_path: &Path) -> String {
    let folder = plan_file.parent().unwrap_or(Path::new(""));
    match ct_path.strip_prefix(folder) {
        Ok(rel) if !folder.as_os_str().is_empty() && !rel.as_os_str().is_empty() => rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/"),
        _ => ct_path.to_string_lossy().into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_hints() {
        assert_eq!(
            ct_path_hint(Path::new("/cases/c1/plan.json"), Path::new("/cases/c1/ct/series")),
            "ct/series"
        );
        assert_eq!(
            ct_path_hint(Path::new("/cases/c1/plan.json"), Path::new("/data/ct")),
            "/data/ct"
        );
        assert_eq!(ct_path_hint(Path::new("plan.json"), Path::new("ct")), "ct");
    }
}
