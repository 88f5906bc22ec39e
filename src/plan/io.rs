//! Reading and writing the plan document, its hash and its JSON Schema.
//!
//! Writing is canonical: serde_json's pretty printer (two spaces, fields in declaration order, floats in their
//! shortest round-trip form) plus a trailing newline. Because the float form round-trips exactly, write -> read ->
//! write gives the same bytes, which is what lets [`Plan::sha256`] identify a plan for approvals and manifests.
//!
//! Reading goes through `serde_path_to_error`, so a wrong type, an unknown or a missing field names its JSON path,
//! and then through [`Plan::validate_with`] for the rules serde cannot express.
//!
//! Older versions are upgraded as they are read, so no engineer's plan is lost to a format change: version 1 guides
//! did not name a printer and were built for [`V1_PRINTER`] unless `build --printer` said otherwise; they get it
//! written in. The upgraded plan is a different document (its hash changes when it is saved).

use std::path::Path;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::error::PlanError;
use super::model::{Plan, SCHEMA_VERSION, V1_PRINTER};
use crate::atomic::write_atomic;
use crate::catalogue::Catalogue;

/// Path shown for an error about the document as a whole (a missing top-level field, a non-object).
const DOCUMENT_PATH: &str = "document";

impl Plan {
    /// Parses and validates a plan against the built-in screw catalogue.
    pub fn from_json(text: &str) -> Result<Plan, PlanError> {
        Plan::from_json_with(text, Catalogue::builtin())
    }

    /// Parses and validates a plan; drills' screw systems are looked up in `catalogue`.
    pub fn from_json_with(text: &str, catalogue: &Catalogue) -> Result<Plan, PlanError> {
        let plan: Plan = if document_version(text) == Some(1) {
            let mut value: serde_json::Value =
                serde_json::from_str(text).map_err(|e| PlanError::Syntax { reason: e.to_string() })?;
            upgrade_v1(&mut value);
            serde_path_to_error::deserialize(value).map_err(|e| parse_error(text, e))?
        } else {
            let mut de = serde_json::Deserializer::from_str(text);
            let plan = serde_path_to_error::deserialize(&mut de).map_err(|e| parse_error(text, e))?;
            de.end().map_err(|e| PlanError::Syntax { reason: e.to_string() })?;
            plan
        };
        plan.validate_with(catalogue)?;
        Ok(plan)
    }

    /// The canonical JSON text: pretty (two spaces), fields in declaration order, trailing newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self)
            .expect("plan types serialise infallibly: plain structs, string map keys, no custom serialisers");
        text.push('\n');
        text
    }

    /// Reads and validates a plan file (built-in screw catalogue); errors name the file.
    pub fn load(path: &Path) -> Result<Plan, PlanError> {
        Plan::load_with(path, Catalogue::builtin())
    }

    /// Reads and validates a plan file against `catalogue`; errors name the file.
    pub fn load_with(path: &Path, catalogue: &Catalogue) -> Result<Plan, PlanError> {
        let text = std::fs::read_to_string(path).map_err(|error| PlanError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        Plan::from_json_with(&text, catalogue).map_err(|e| PlanError::InFile {
            path: path.to_path_buf(),
            error: Box::new(e),
        })
    }

    /// Writes [`Plan::to_json`] atomically. The plan is validated first (except the screw systems, which depend on
    /// the catalogue the reader uses), so no file is written that could not be read back.
    pub fn save(&self, path: &Path) -> Result<(), PlanError> {
        self.validate_inner(None).map_err(|e| PlanError::InFile {
            path: path.to_path_buf(),
            error: Box::new(e),
        })?;
        let text = self.to_json();
        write_atomic(path, |w| w.write_all(text.as_bytes())).map_err(|error| PlanError::Write {
            path: path.to_path_buf(),
            error,
        })
    }

    /// Lower-case hex SHA-256 of [`Plan::to_json`]: the plan's identity for approvals and export manifests.
    pub fn sha256(&self) -> String {
        sha256_hex(self.to_json().as_bytes())
    }
}

/// Lower-case hex SHA-256 of `bytes` (e.g. an imported STL file, for [`super::BoneModelRef::sha256`]).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(2 * bytes.len());
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// The JSON Schema (draft 2020-12) of the plan document, pretty printed with a trailing newline; committed as
/// `docs/plan.schema.json`.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(Plan);
    let mut text =
        serde_json::to_string_pretty(&schema).expect("a schemars Schema is a serde_json::Value, which serialises");
    text.push('\n');
    text
}

/// The document's `schema_version`, when it is a JSON object that has one.
fn document_version(text: &str) -> Option<u64> {
    #[derive(Deserialize)]
    struct VersionOnly {
        schema_version: u64,
    }
    serde_json::from_str::<VersionOnly>(text).ok().map(|v| v.schema_version)
}

/// Version 1 to 2: every guide names its printer ([`V1_PRINTER`], what `build` used by default), and the CT
/// reference says it was loaded with the files' own intercept (version 1 had no other way).
fn upgrade_v1(value: &mut serde_json::Value) {
    let Some(object) = value.as_object_mut() else { return };
    object.insert("schema_version".into(), SCHEMA_VERSION.into());
    if let Some(ct) = object.get_mut("ct").and_then(|c| c.as_object_mut()) {
        ct.entry("rescale_intercept_override_hu")
            .or_insert(serde_json::Value::Null);
    }
    let Some(guides) = object.get_mut("guides").and_then(|g| g.as_array_mut()) else {
        return;
    };
    for guide in guides.iter_mut().filter_map(|g| g.as_object_mut()) {
        guide.entry("printer").or_insert_with(|| V1_PRINTER.into());
    }
}

/// Turns a deserialisation error into a [`PlanError`], preferring "unsupported version" when the document says it
/// is of a version this build does not read (its other errors would only be symptoms of that).
fn parse_error(text: &str, e: serde_path_to_error::Error<serde_json::Error>) -> PlanError {
    if let Some(found) = document_version(text) {
        if found != u64::from(SCHEMA_VERSION) && found != 1 {
            return PlanError::SchemaVersion {
                found,
                expected: SCHEMA_VERSION,
            };
        }
    }
    let path = e.path().to_string();
    let inner = e.into_inner();
    match inner.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof | serde_json::error::Category::Io => {
            let reason = if path == "." {
                inner.to_string()
            } else {
                format!("{inner} (in {path})")
            };
            PlanError::Syntax { reason }
        }
        serde_json::error::Category::Data => {
            let path = if path == "." { DOCUMENT_PATH.to_string() } else { path };
            PlanError::invalid(path, inner.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_matches_a_known_digest() {
        // FIPS 180-2 example "abc".
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
