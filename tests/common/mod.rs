//! Shared helpers of the integration tests: where the real data lives.
#![allow(dead_code)]

use std::path::PathBuf;

/// The shared test data folder: `$GUIDESMITH_DATA`, else `../shared/data` from the repository root.
///
/// Returns `None` (and says so loudly) when the folder is missing on a developer machine; panics when `CI` is set,
/// because a CI run that skips the real-data tests proves nothing.
pub fn data_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("GUIDESMITH_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    if dir.join("README.md").is_file() {
        return Some(dir);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "test data not found at {} (set GUIDESMITH_DATA); CI must not skip real-data tests",
            dir.display()
        );
    }
    eprintln!(
        "SKIPPED: test data not found at {} (set GUIDESMITH_DATA)",
        dir.display()
    );
    None
}

/// A path inside the data folder, or `None` as for `data_dir`.
pub fn data(rel: &str) -> Option<PathBuf> {
    data_dir().map(|d| d.join(rel))
}

/// The bone surface of a synthetic phantom sampled on `geometry`: the product chain (threshold 300 HU, largest
/// component, cavities filled, closed surface), as the guide tests build on it.
pub fn phantom_bone(
    phantom: &guidesmith::synth::Phantom,
    geometry: guidesmith::grid::GridGeometry,
) -> guidesmith::mesh::Mesh {
    use guidesmith::segment::{HuRange, Keep, SegmentRecipe};
    let hu = phantom.sample(&geometry).expect("sample the phantom");
    let volume = guidesmith::volume::Volume {
        geometry,
        hu,
        series: guidesmith::volume::SeriesInfo::default(),
    };
    let mut recipe = SegmentRecipe::new(HuRange::new(300, 3071).expect("range"));
    recipe.keep = Keep::Largest;
    recipe.fill_cavities = true;
    guidesmith::bone::extract_bone(
        &volume,
        &recipe,
        &guidesmith::bone::SurfaceOptions::default(),
        &guidesmith::progress::NoProgress,
    )
    .expect("bone")
    .mesh
}
