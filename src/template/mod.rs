//! Guide templates, the tolerance model and the solid template parts a guide is assembled from.
//!
//! Why it is built this way:
//! - A guide design is a handful of numbers (pad thickness, slot depth, barrel length, ...) whose safe ranges are
//!   surgical and printing knowledge, not code. They live in versioned TOML files (`templates/`), one per guide
//!   kind, each parameter with its unit, default, allowed range and a sentence of explanation, so a reviewer can
//!   read and change them without reading Rust, and a plan can record exactly which template version it used.
//!   The files are embedded in the binary ([`builtin_templates`]) and can also be loaded from a folder.
//! - "Offset" is not one number. [`ToleranceModel`] names each allowance (bone offset, printer clearance per side,
//!   drill running play) and derives the slot width and channel diameter from the instrument by one documented rule,
//!   so a wrong slot can be traced to the number that made it.
//! - Template parts ([`parts`]) are built as B-rep solids by construction with `truck-modeling` (a face with inner
//!   loops swept, or a polygonal lathe of planar faces) and tessellated with `truck-meshalgo`; no B-rep booleans
//!   (truck-shapeops returned nothing on coplanar and flush cases). Round faces are regular polygons that
//!   *circumscribe* the nominal circle, so a hole is never narrower than planned, and every tessellated vertex is
//!   snapped back to the exact B-rep vertex it came from, so planar faces stay exactly planar (slot faces at exactly
//!   +/- width / 2) and shared edges weld exactly. Each part is then checked closed, manifold, outward, non-degenerate
//!   and free of self-intersections before it is returned as a [`crate::mesh::Mesh`]; `truck` types never leave
//!   this module.
//!
//! See `docs/TEMPLATES.md` for the file format, the tolerance rules and each part's local frame.

mod format;
pub mod parts;
mod printer;
mod tessellate;
mod tolerance;

pub use format::{
    builtin_template, builtin_templates, load_template_file, load_template_folder, DefaultValue, DrillParams,
    FixationParams, FolderTemplates, GuideKind, ParameterSource, ParameterSpec, ResolvedParameter, ResolvedParams,
    SeatingParams, SkippedTemplate, SlotParams, Template, BUILTIN_TEMPLATE_FILES, KNOWN_PARAMETERS,
    TEMPLATE_SCHEMA_VERSION,
};
pub use printer::{
    builtin_printers, builtin_printers_text, load_printers_file, PrinterProfile, PrinterProfiles,
    PRINTER_SCHEMA_VERSION,
};
pub use tolerance::{ToleranceModel, BLADE_THICKNESS_RANGE_MM, DRILL_DIAMETER_RANGE_MM};

use thiserror::Error;

/// Errors of the template module: each names the file (or builtin name) and the key or value at fault.
#[derive(Debug, Error)]
pub enum TemplateError {
    /// A template or printer file could not be read.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// The underlying I/O error (part of the message, so not repeated as a source).
        error: std::io::Error,
    },
    /// A file is not valid TOML or does not have the expected structure.
    #[error("{file}: {key}: {message} (line {line})")]
    Syntax {
        /// The file (or `builtin:<name>`).
        file: String,
        /// The dotted key path where deserialisation stopped (`.` for the document root).
        key: String,
        /// What is wrong, as reported by the TOML parser.
        message: String,
        /// 1-based line of the offending text (0 when unknown).
        line: usize,
    },
    /// A value is well-formed TOML but not allowed (range, unit, version, missing parameter, ...).
    #[error("{file}: {key}: {message}")]
    Invalid {
        /// The file (or `builtin:<name>`).
        file: String,
        /// The dotted key path at fault.
        key: String,
        /// What is wrong, with the value and what would be allowed.
        message: String,
    },
    /// An override names a parameter the template does not have.
    #[error("template {template}: unknown parameter {name:?}; valid parameters: {valid}")]
    UnknownParameter {
        /// The template's name.
        template: String,
        /// The unknown name.
        name: String,
        /// The template's parameters, comma separated.
        valid: String,
    },
    /// A parameter value (override, default or printer profile value) is outside its allowed range.
    #[error("template {template}: {name} = {value} {unit} is outside its allowed range {min}..={max} {unit}{why}")]
    OutOfRange {
        /// The template's name.
        template: String,
        /// The parameter.
        name: String,
        /// The value given.
        value: f64,
        /// Smallest allowed value.
        min: f64,
        /// Largest allowed value.
        max: f64,
        /// The parameter's unit.
        unit: String,
        /// Where the value came from or which rule it breaks (empty or starting with "; ").
        why: String,
    },
    /// Resolved parameters contradict each other (a wall below the minimum wall, a pocket deeper than its barrel).
    #[error("template {template}: {message}")]
    Inconsistent {
        /// The template's name.
        template: String,
        /// Which parameters and values conflict.
        message: String,
    },
    /// A builtin template or printer profile name that does not exist.
    #[error("no {what} named {name:?}; available: {available}")]
    NotFound {
        /// `"template"` or `"printer profile"`.
        what: &'static str,
        /// The requested name.
        name: String,
        /// The names that exist, comma separated.
        available: String,
    },
    /// An instrument dimension outside what the tolerance model accepts.
    #[error("{what} {value_mm} mm is outside {min_mm}..={max_mm} mm")]
    Instrument {
        /// `"blade thickness"` or `"drill diameter"`.
        what: &'static str,
        /// The value given.
        value_mm: f64,
        /// Smallest accepted value.
        min_mm: f64,
        /// Largest accepted value.
        max_mm: f64,
    },
}
