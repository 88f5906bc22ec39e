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
pub mod grid;
pub mod guide;
pub mod measure;
pub mod mesh;
pub mod npy;
pub mod plan;
pub mod progress;
pub mod render;
pub mod segment;
pub mod synth;
pub mod template;
#[cfg(test)]
pub(crate) mod testing;
pub mod volume;
