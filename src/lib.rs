//! guidesmith: patient-specific surgical guide CAD, from a CT series to checked, printable guides.
//!
//! The library holds all of the work; the `guidesmith` binary (CLI) and the GUI are thin layers over it. Modules
//! are in layers (foundation, data, geometry, domain, case); a module imports only from its own layer and those
//! below, which `.ci/check_layers.py` checks. See `docs/ARCHITECTURE.md` for the layers, the data flow and the
//! coordinate frames.
#![warn(missing_docs)]

pub mod atomic;
pub mod bone;
pub mod case;
pub mod catalogue;
pub mod export;
pub mod finding;
pub mod flap;
pub mod font;
pub mod grid;
pub mod guide;
pub mod label;
pub mod measure;
pub mod mesh;
pub mod npy;
pub mod plan;
pub mod progress;
pub mod render;
pub mod report;
pub mod segment;
pub mod synth;
pub mod template;
#[cfg(test)]
pub(crate) mod testing;
pub mod volume;

#[cfg(test)]
mod source_rules {
    /// Every property test of the crate and of `tests/` takes [`crate::testing::proptest_config`]: a block with proptest's own
    /// configuration would draw a fresh random seed on every run.
    #[test]
    fn every_property_test_runs_from_the_fixed_seed() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut offenders = Vec::new();
        let mut blocks = 0;
        let mut stack = vec![root.join("src"), root.join("tests")];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("source folder").flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).expect("source file");
                    for (i, line) in text.lines().enumerate() {
                        // Assembled so this line itself is not a match.
                        if line.contains(concat!("#![proptest_", "config(")) {
                            blocks += 1;
                            if !line.contains("proptest_config(crate::testing::") && !line.contains("(common::") {
                                offenders.push(format!("{}:{}", path.display(), i + 1));
                            }
                        }
                    }
                }
            }
        }
        assert!(
            blocks >= 10,
            "found only {blocks} proptest blocks; is the scan looking in the right place?"
        );
        assert!(
            offenders.is_empty(),
            "property tests not on the fixed seed: {offenders:?}"
        );
    }
}
