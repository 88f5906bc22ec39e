//! The screw catalogue: which CMF screw systems a drill trajectory may name, with their drill (pilot) diameters.
//!
//! Why a data file and not code: screw dimensions belong to the hardware a hospital stocks, and differ between
//! manufacturers. The defaults ship as `templates/screws.toml` (compiled in, so the tool works out of the box); a
//! site can load its own file with the same format. The file is strict (unknown or missing keys are errors, each
//! value is checked) because a wrong pilot diameter ends up as a wrong hole in a printed guide.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Version of the catalogue file format this build reads.
pub const CATALOGUE_SCHEMA_VERSION: u32 = 1;

/// The built-in catalogue file.
/// The text of `templates/screws.toml`, compiled in (its hash is bound by approvals).
pub const BUILTIN_SCREWS_TOML: &str = include_str!("../templates/screws.toml");
const BUILTIN_TOML: &str = BUILTIN_SCREWS_TOML;

/// Why a catalogue could not be read, or a system is not in it.
#[derive(Debug, Error)]
pub enum CatalogueError {
    /// The file could not be read.
    #[error("cannot read screw catalogue {}: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The TOML is malformed, or a key is unknown, missing or of the wrong type.
    #[error("screw catalogue{}: {reason}", origin_suffix(path.as_deref()))]
    Parse {
        /// The file, when read from one.
        path: Option<PathBuf>,
        /// What the TOML parser said, with the position.
        reason: String,
    },
    /// A value is out of its valid range.
    #[error("screw catalogue{}, {key}: {reason}", origin_suffix(path.as_deref()))]
    Invalid {
        /// The file, when read from one.
        path: Option<PathBuf>,
        /// The TOML key concerned (`systems."2.0".drill_diameter_mm`).
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A system name that the catalogue does not hold.
    #[error("unknown screw system '{name}' (known: {known})")]
    UnknownSystem {
        /// The name asked for.
        name: String,
        /// The catalogue's keys, comma separated.
        known: String,
    },
}

fn origin_suffix(path: Option<&Path>) -> String {
    path.map(|p| format!(" {}", p.display())).unwrap_or_default()
}

/// What a screw system is typically used for in CMF surgery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TypicalUse {
    /// Midface (maxilla, zygoma, orbit rims): thin bone, short screws.
    Midface,
    /// Mandible: fracture fixation and osteotomies with miniplates.
    Mandible,
    /// Load-bearing reconstruction plates (segmental defects, fibula flaps).
    Reconstruction,
}

/// One screw system.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrewSystem {
    /// Thread (outer) diameter, mm; the system's name.
    pub screw_diameter_mm: f64,
    /// Pilot hole drilled before inserting the screw, mm.
    pub drill_diameter_mm: f64,
    /// Head diameter, mm.
    pub head_diameter_mm: f64,
    /// Available lengths, mm, strictly increasing.
    pub lengths_mm: Vec<f64>,
    /// Typical uses.
    pub typical_use: Vec<TypicalUse>,
}

/// A set of screw systems keyed by name ("2.0").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalogue {
    /// Must equal [`CATALOGUE_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The systems, by name (sorted, so listings are deterministic).
    pub systems: BTreeMap<String, ScrewSystem>,
}

impl Catalogue {
    /// The catalogue shipped in `templates/screws.toml`, parsed once.
    pub fn builtin() -> &'static Catalogue {
        static BUILTIN: OnceLock<Catalogue> = OnceLock::new();
        BUILTIN.get_or_init(|| {
            Catalogue::from_toml(BUILTIN_TOML, None)
                .expect("templates/screws.toml is compiled in and checked by the test builtin_catalogue_is_valid")
        })
    }

    /// Parses and validates a catalogue from TOML text.
    pub fn from_toml_str(text: &str) -> Result<Catalogue, CatalogueError> {
        Catalogue::from_toml(text, None)
    }

    /// Reads and validates a catalogue file; errors name the file.
    pub fn load(path: &Path) -> Result<Catalogue, CatalogueError> {
        let text = std::fs::read_to_string(path).map_err(|error| CatalogueError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        Catalogue::from_toml(&text, Some(path))
    }

    fn from_toml(text: &str, path: Option<&Path>) -> Result<Catalogue, CatalogueError> {
        let catalogue: Catalogue = toml::from_str(text).map_err(|e| CatalogueError::Parse {
            path: path.map(Path::to_path_buf),
            reason: e.to_string().trim_end().to_string(),
        })?;
        catalogue.validate().map_err(|(key, reason)| CatalogueError::Invalid {
            path: path.map(Path::to_path_buf),
            key,
            reason,
        })?;
        Ok(catalogue)
    }

    /// The system called `name`, or an error listing the known names.
    pub fn get(&self, name: &str) -> Result<&ScrewSystem, CatalogueError> {
        self.systems.get(name).ok_or_else(|| CatalogueError::UnknownSystem {
            name: name.to_string(),
            known: self.systems.keys().cloned().collect::<Vec<_>>().join(", "),
        })
    }

    /// Checks every value; the error is `(key, reason)`.
    fn validate(&self) -> Result<(), (String, String)> {
        if self.schema_version != CATALOGUE_SCHEMA_VERSION {
            return Err((
                "schema_version".into(),
                format!(
                    "version {} is not supported (this build reads version {CATALOGUE_SCHEMA_VERSION})",
                    self.schema_version
                ),
            ));
        }
        if self.systems.is_empty() {
            return Err(("systems".into(), "no screw system".into()));
        }
        for (name, s) in &self.systems {
            let key = |field: &str| format!("systems.\"{name}\".{field}");
            if name.is_empty() || name.chars().any(char::is_control) {
                return Err((
                    format!("systems.\"{name}\""),
                    "name must be non-empty and printable".into(),
                ));
            }
            for (field, v) in [
                ("screw_diameter_mm", s.screw_diameter_mm),
                ("drill_diameter_mm", s.drill_diameter_mm),
                ("head_diameter_mm", s.head_diameter_mm),
            ] {
                if !(v.is_finite() && v > 0.0) {
                    return Err((key(field), format!("{v} mm must be positive")));
                }
            }
            if s.drill_diameter_mm >= s.screw_diameter_mm {
                return Err((
                    key("drill_diameter_mm"),
                    format!(
                        "{} mm must be smaller than the screw diameter {} mm",
                        s.drill_diameter_mm, s.screw_diameter_mm
                    ),
                ));
            }
            if s.head_diameter_mm <= s.screw_diameter_mm {
                return Err((
                    key("head_diameter_mm"),
                    format!(
                        "{} mm must be larger than the screw diameter {} mm",
                        s.head_diameter_mm, s.screw_diameter_mm
                    ),
                ));
            }
            if s.lengths_mm.is_empty() {
                return Err((key("lengths_mm"), "no length".into()));
            }
            let increasing = s.lengths_mm.windows(2).all(|w| w[0] < w[1]);
            if !increasing || !s.lengths_mm.iter().all(|l| l.is_finite() && *l > 0.0) {
                return Err((
                    key("lengths_mm"),
                    format!("{:?} must be positive and strictly increasing", s.lengths_mm),
                ));
            }
            if s.typical_use.is_empty() {
                return Err((key("typical_use"), "no use given".into()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalogue_is_valid() {
        let c = Catalogue::from_toml_str(BUILTIN_TOML).expect("built-in catalogue parses");
        assert_eq!(
            c.systems.keys().map(String::as_str).collect::<Vec<_>>(),
            ["1.5", "2.0", "2.3", "2.4"]
        );
        let drills: Vec<f64> = c.systems.values().map(|s| s.drill_diameter_mm).collect();
        assert_eq!(drills, [1.1, 1.5, 1.8, 1.8]);
        for (name, s) in &c.systems {
            assert_eq!(
                name.parse::<f64>().ok(),
                Some(s.screw_diameter_mm),
                "system named by its diameter"
            );
        }
        assert_eq!(Catalogue::builtin(), &c);
    }

    #[test]
    fn unknown_system_lists_the_known_ones() {
        let e = Catalogue::builtin()
            .get("2.7")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert_eq!(e, "unknown screw system '2.7' (known: 1.5, 2.0, 2.3, 2.4)");
        assert!(Catalogue::builtin().get("2.0").is_ok());
    }

    #[test]
    fn bad_catalogues_are_refused_with_the_key() {
        let bad_drill = BUILTIN_TOML.replacen("drill_diameter_mm = 1.5", "drill_diameter_mm = 2.5", 1);
        let e = Catalogue::from_toml_str(&bad_drill)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("systems.\"2.0\".drill_diameter_mm: 2.5 mm must be smaller"),
            "{e}"
        );

        let unknown = BUILTIN_TOML.replacen("head_diameter_mm = 2.7", "head_diameter_mm = 2.7\ncolour = \"gold\"", 1);
        let e = Catalogue::from_toml_str(&unknown)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("unknown field `colour`"), "{e}");

        let missing = BUILTIN_TOML.replacen("typical_use = [\"midface\"]\n", "", 1);
        let e = Catalogue::from_toml_str(&missing)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("missing field `typical_use`"), "{e}");

        let version = BUILTIN_TOML.replacen("schema_version = 1", "schema_version = 9", 1);
        let e = Catalogue::from_toml_str(&version)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("schema_version: version 9 is not supported"), "{e}");

        let lengths = BUILTIN_TOML.replacen("[3.0, 4.0,", "[4.0, 3.0,", 1);
        let e = Catalogue::from_toml_str(&lengths)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("strictly increasing"), "{e}");

        let e = Catalogue::load(Path::new("/nonexistent/screws.toml"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("/nonexistent/screws.toml"), "{e}");
    }
}
