//! guidesmith: patient-specific surgical guide CAD, from a CT series to checked, printable guides.
//!
//! The library holds all of the work; the `guidesmith` binary (CLI) and the GUI are thin layers over it. See
//! `docs/ARCHITECTURE.md` for the modules, the data flow and the coordinate frames.
#![warn(missing_docs)]

pub mod atomic;
pub mod bone;
pub mod export;
pub mod grid;
pub mod mesh;
pub mod npy;
pub mod progress;
pub mod render;
pub mod segment;
pub mod synth;
pub mod volume;
