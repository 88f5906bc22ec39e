//! Printer profiles (`templates/printers.toml`): the tolerances that depend on how a guide is printed.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::format::{parse_toml, read_text};
use super::TemplateError;

/// The printer file format version this code reads.
pub const PRINTER_SCHEMA_VERSION: u32 = 1;

/// The builtin printer profiles, embedded at compile time.
const BUILTIN_PRINTERS: &str = include_str!("../../templates/printers.toml");

/// Largest bone offset a profile may set, mm: beyond 1 mm a pad no longer seats reproducibly on the bone.
const MAX_BONE_OFFSET_MM: f64 = 1.0;
/// Largest per-side printer clearance a profile may set, mm: beyond 0.5 mm a slot or channel stops guiding.
const MAX_PRINTER_CLEARANCE_MM: f64 = 0.5;

/// One printer profile.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PrinterProfile {
    /// Profile name (`sla`, `fdm`, `sls`), the key of its table in the file.
    #[serde(skip_deserializing)]
    pub name: String,
    /// What printer / process this is.
    pub description: String,
    /// Default gap between bone and contact pad, mm.
    pub bone_offset_mm: f64,
    /// Default per-side clearance added to slots, channels and holes, mm.
    pub printer_clearance_mm: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PrinterFile {
    schema_version: u32,
    printers: BTreeMap<String, ProfileFields>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFields {
    description: String,
    bone_offset_mm: f64,
    printer_clearance_mm: f64,
}

/// A set of printer profiles, sorted by name.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PrinterProfiles {
    /// Profiles by name.
    pub profiles: BTreeMap<String, PrinterProfile>,
}

impl PrinterProfiles {
    /// Parses and validates a printer file; `file` names it in errors.
    pub fn from_toml_str(text: &str, file: &str) -> Result<PrinterProfiles, TemplateError> {
        let parsed: PrinterFile = parse_toml(text, file)?;
        let invalid = |key: String, message: String| TemplateError::Invalid {
            file: file.to_string(),
            key,
            message,
        };
        if parsed.schema_version != PRINTER_SCHEMA_VERSION {
            return Err(invalid(
                "schema_version".to_string(),
                format!(
                    "version {} is not supported (this build reads {PRINTER_SCHEMA_VERSION})",
                    parsed.schema_version
                ),
            ));
        }
        let mut profiles = BTreeMap::new();
        for (name, f) in parsed.printers {
            for (field, value, max) in [
                ("bone_offset_mm", f.bone_offset_mm, MAX_BONE_OFFSET_MM),
                ("printer_clearance_mm", f.printer_clearance_mm, MAX_PRINTER_CLEARANCE_MM),
            ] {
                if !(value.is_finite() && (0.0..=max).contains(&value)) {
                    return Err(invalid(
                        format!("printers.{name}.{field}"),
                        format!("{value} mm is outside 0..={max} mm"),
                    ));
                }
            }
            let profile = PrinterProfile {
                name: name.clone(),
                description: f.description,
                bone_offset_mm: f.bone_offset_mm,
                printer_clearance_mm: f.printer_clearance_mm,
            };
            profiles.insert(name, profile);
        }
        if profiles.is_empty() {
            return Err(invalid(
                "printers".to_string(),
                "no printer profile defined".to_string(),
            ));
        }
        Ok(PrinterProfiles { profiles })
    }

    /// The profile called `name`.
    pub fn get(&self, name: &str) -> Result<&PrinterProfile, TemplateError> {
        self.profiles.get(name).ok_or_else(|| TemplateError::NotFound {
            what: "printer profile",
            name: name.to_string(),
            available: self.profiles.keys().cloned().collect::<Vec<_>>().join(", "),
        })
    }
}

/// The builtin printer profiles (`sla`, `fdm`, `sls`).
pub fn builtin_printers_text() -> &'static str {
    BUILTIN_PRINTERS
}

/// The printer profiles shipped in `templates/printers.toml`.
pub fn builtin_printers() -> Result<PrinterProfiles, TemplateError> {
    PrinterProfiles::from_toml_str(BUILTIN_PRINTERS, "builtin:printers.toml")
}

/// Reads and validates a printer file.
pub fn load_printers_file(path: &Path) -> Result<PrinterProfiles, TemplateError> {
    let (file, text) = read_text(path)?;
    PrinterProfiles::from_toml_str(&text, &file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_profiles_hold_the_documented_defaults() {
        let p = builtin_printers().expect("builtin printers parse");
        let sla = p.get("sla").expect("sla exists");
        assert_eq!((sla.bone_offset_mm, sla.printer_clearance_mm), (0.25, 0.1));
        let fdm = p.get("fdm").expect("fdm exists");
        assert_eq!(fdm.bone_offset_mm, 0.4);
        assert!(fdm.printer_clearance_mm > sla.printer_clearance_mm);
        assert!(p.get("sls").is_ok());
        let err = p.get("polyjet").expect_err("no such profile").to_string();
        assert!(err.contains("fdm, sla, sls"), "{err}");
    }

    #[test]
    fn out_of_range_profile_value_names_the_key() {
        let text =
            "schema_version = 1\n[printers.x]\ndescription = \"x\"\nbone_offset_mm = 2.0\nprinter_clearance_mm = 0.1\n";
        let err = PrinterProfiles::from_toml_str(text, "p.toml")
            .expect_err("offset 2 mm is refused")
            .to_string();
        assert!(err.contains("p.toml: printers.x.bone_offset_mm: 2 mm"), "{err}");
    }
}
