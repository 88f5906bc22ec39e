//! Errors of the plan module. Every message names where the problem is: a JSON path (`planes[1].normal`), a file,
//! or an element by kind and name.

use std::path::PathBuf;

use thiserror::Error;

/// Why a plan could not be read, written, validated or edited.
#[derive(Debug, Error)]
pub enum PlanError {
    /// The text is not JSON (or ends early).
    #[error("invalid JSON: {reason}")]
    Syntax {
        /// What the parser said, with line and column.
        reason: String,
    },
    /// The document was written by a format version this build does not read.
    #[error("schema_version: version {found} is not supported (this build reads versions 1 to {expected})")]
    SchemaVersion {
        /// The version in the document.
        found: u64,
        /// [`super::SCHEMA_VERSION`].
        expected: u32,
    },
    /// A value is of the wrong type, a field is unknown or missing, or a value is out of its valid range.
    #[error("{path}: {reason}")]
    Invalid {
        /// JSON path of the value (`planes[0].normal`).
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An error in a plan file, with the file named.
    #[error("{}: {error}", path.display())]
    InFile {
        /// The plan file.
        path: PathBuf,
        /// The error inside it.
        error: Box<PlanError>,
    },
    /// The plan file could not be read.
    #[error("cannot read plan {}: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The plan file could not be written.
    #[error("cannot write plan {}: {error}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The loaded CT is not the one the plan was made on.
    #[error("the CT differs from the one the plan was made on: {details}")]
    CtMismatch {
        /// Hash recorded in the plan.
        expected_sha256: String,
        /// Hash of the loaded volume.
        actual_sha256: String,
        /// Hash prefixes and which parts of the geometry differ.
        details: String,
    },
    /// An edit names an element that does not exist.
    #[error("no {kind} named '{name}' (known: {known})")]
    NoSuchElement {
        /// Element kind (`plane`).
        kind: &'static str,
        /// The name asked for.
        name: String,
        /// The names of that kind, comma separated.
        known: String,
    },
    /// A plane or drill cannot be removed while a guide references it.
    #[error("{kind} '{name}' is used by guide '{guide}'; remove it from the guide first")]
    InUse {
        /// Element kind.
        kind: &'static str,
        /// The element.
        name: String,
        /// The first guide that references it.
        guide: String,
    },
    /// A `Set` edit names a field the element does not have.
    #[error("{kind} '{name}' has no field '{field}' (fields: {valid})")]
    UnknownField {
        /// Element kind.
        kind: &'static str,
        /// The element.
        name: String,
        /// The field asked for.
        field: String,
        /// The element's fields, comma separated.
        valid: String,
    },
    /// An edit's own parameters are invalid (zero rotation axis, non-finite offset...).
    #[error("invalid edit: {reason}")]
    InvalidEdit {
        /// What is wrong.
        reason: String,
    },
    /// An undo record does not fit the plan it is applied to (the plan was changed outside the history).
    #[error("undo does not fit the plan: {reason}")]
    UndoMismatch {
        /// What did not fit.
        reason: String,
    },
}

impl PlanError {
    /// An [`PlanError::Invalid`] at `path`.
    pub(crate) fn invalid(path: impl Into<String>, reason: impl Into<String>) -> PlanError {
        PlanError::Invalid {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
