//! Test support shared by the unit tests (`crate::testing`), the integration tests (`tests/common` includes this
//! file) and the window's tests (`src/app/tests.rs` includes it): the one proptest configuration, so every property
//! test gives the same answer on every run, and the one place that finds the real data.

use std::path::PathBuf;

/// The proptest configuration of every property test: `cases` cases from a fixed seed, so `cargo test` gives the
/// same answer on every run. `GUIDESMITH_PROPTEST_FRESH=1` draws from a fresh random seed and runs ten times as many
/// cases (`GUIDESMITH_PROPTEST_CASES` sets the count), for an opt-in search for new failures. Failures are kept in
/// the `*.proptest-regressions` file beside the test and replayed first on every run.
pub fn proptest_config(cases: u32) -> proptest::test_runner::Config {
    use proptest::test_runner::{Config, FileFailurePersistence, RngSeed};
    let fresh = std::env::var_os("GUIDESMITH_PROPTEST_FRESH").is_some_and(|v| v != "0");
    let cases = std::env::var("GUIDESMITH_PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if fresh { 10 * cases } else { cases });
    Config {
        cases,
        rng_seed: if fresh {
            RngSeed::Random
        } else {
            RngSeed::Fixed(PROPTEST_SEED)
        },
        failure_persistence: Some(Box::new(FileFailurePersistence::SourceParallel("proptest-regressions"))),
        ..Config::default()
    }
}

/// The fixed seed of [`proptest_config`].
pub const PROPTEST_SEED: u64 = 0x6775_6964_6573_6d74;

/// The shared test data folder: `$GUIDESMITH_DATA`, else `../shared/data` from the repository root.
///
/// Returns `None` (and says so loudly) when the folder is missing on a developer machine; panics when `CI` is set,
/// because a CI run that skips the real-data tests proves nothing.
#[allow(dead_code)] // (the library's unit tests use no real data)
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
#[allow(dead_code)]
pub fn data(rel: &str) -> Option<PathBuf> {
    data_dir().map(|d| d.join(rel))
}
