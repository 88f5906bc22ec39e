//! Test support shared by the unit tests (`crate::testing`) and the integration tests (`tests/common` includes this
//! file): the one proptest configuration, so every property test gives the same answer on every run.

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
