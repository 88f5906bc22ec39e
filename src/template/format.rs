//! The template file format (TOML), its validation, the builtin registry and parameter resolution.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::printer::PrinterProfile;
use super::tolerance::ToleranceModel;
use super::TemplateError;

/// The template file format version this code reads.
pub const TEMPLATE_SCHEMA_VERSION: u32 = 1;

/// Builtin templates: file name and text, embedded at compile time.
pub const BUILTIN_TEMPLATE_FILES: [(&str, &str); 3] = [
    ("cutting_guide.toml", include_str!("../../templates/cutting_guide.toml")),
    ("drill_guide.toml", include_str!("../../templates/drill_guide.toml")),
    (
        "combined_guide.toml",
        include_str!("../../templates/combined_guide.toml"),
    ),
];

/// Every parameter name the guide code understands. A template may only use these (a typo would otherwise be a
/// parameter nobody reads); names carry their unit (`_mm`, `_deg`) or say they count (`_count`).
pub const KNOWN_PARAMETERS: [&str; 16] = [
    "pad_thickness_mm",
    "min_wall_mm",
    "bone_offset_mm",
    "printer_clearance_mm",
    "slot_depth_mm",
    "slot_wall_mm",
    "slot_overhang_mm",
    "fixation_hole_count",
    "fixation_hole_diameter_mm",
    "barrel_length_mm",
    "barrel_wall_mm",
    "drill_clearance_mm",
    "sleeve_pocket_diameter_mm",
    "sleeve_pocket_depth_mm",
    "max_seating_play_mm",
    "max_seating_play_deg",
];

/// Parameters every template needs, whatever its kind.
const COMMON_PARAMETERS: [&str; 8] = [
    "pad_thickness_mm",
    "min_wall_mm",
    "bone_offset_mm",
    "printer_clearance_mm",
    "fixation_hole_count",
    "fixation_hole_diameter_mm",
    "max_seating_play_mm",
    "max_seating_play_deg",
];
/// Parameters of a slot housing (cutting and combined guides).
const SLOT_PARAMETERS: [&str; 3] = ["slot_depth_mm", "slot_wall_mm", "slot_overhang_mm"];
/// Parameters of a drill barrel (drill and combined guides).
const DRILL_PARAMETERS: [&str; 5] = [
    "barrel_length_mm",
    "barrel_wall_mm",
    "drill_clearance_mm",
    "sleeve_pocket_diameter_mm",
    "sleeve_pocket_depth_mm",
];
/// Parameters whose default may be `"printer"` (taken from the printer profile's field of the same name).
const PRINTER_PARAMETERS: [&str; 2] = ["bone_offset_mm", "printer_clearance_mm"];

/// What a guide carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GuideKind {
    /// Slot housings for cutting planes, plus fixation holes.
    Cutting,
    /// Drill barrels along drill trajectories, plus fixation holes.
    Drill,
    /// Both.
    Combined,
}

impl GuideKind {
    fn has_slots(self) -> bool {
        matches!(self, GuideKind::Cutting | GuideKind::Combined)
    }
    fn has_barrels(self) -> bool {
        matches!(self, GuideKind::Drill | GuideKind::Combined)
    }
    fn required(self) -> impl Iterator<Item = &'static str> {
        let slots: &[&str] = if self.has_slots() { &SLOT_PARAMETERS } else { &[] };
        let drills: &[&str] = if self.has_barrels() { &DRILL_PARAMETERS } else { &[] };
        COMMON_PARAMETERS
            .into_iter()
            .chain(slots.iter().copied())
            .chain(drills.iter().copied())
    }
}

/// A parameter's default: a number, or `"printer"` (from the printer profile).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DefaultValue {
    /// A fixed default in the parameter's unit.
    Number(f64),
    /// A keyword; only `"printer"` is valid, and only for [`PRINTER_PARAMETERS`].
    Keyword(String),
}

/// One `[parameters.<name>]` table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParameterSpec {
    /// `"mm"` for `_mm` names, `"deg"` for `_deg` names, `"count"` for `_count` names.
    pub unit: String,
    /// Default value.
    pub default: DefaultValue,
    /// Smallest allowed value (inclusive).
    pub min: f64,
    /// Largest allowed value (inclusive).
    pub max: f64,
    /// One sentence: what the parameter does and why its range is what it is.
    pub doc: String,
}

/// A guide template as read from its TOML file (validated).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// File format version; must be [`TEMPLATE_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Template name (`cutting_guide`, ...): lower-case letters, digits and `_`.
    pub name: String,
    /// Template version, semantic versioning `MAJOR.MINOR.PATCH`.
    pub version: String,
    /// What the guide carries.
    pub kind: GuideKind,
    /// One line for a user choosing a template.
    pub description: String,
    /// Parameters by name (sorted: deterministic order everywhere).
    pub parameters: BTreeMap<String, ParameterSpec>,
}

/// Slot housing parameters of a resolved template (cutting and combined guides).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct SlotParams {
    /// Guidance length of the slot (housing height), mm.
    pub slot_depth_mm: f64,
    /// Housing wall each side of the slot, mm.
    pub slot_wall_mm: f64,
    /// Housing end wall beyond each end of the cut, mm.
    pub slot_overhang_mm: f64,
}

/// Drill barrel parameters of a resolved template (drill and combined guides).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct DrillParams {
    /// Barrel length along the trajectory, mm.
    pub barrel_length_mm: f64,
    /// Barrel wall around its widest bore, mm.
    pub barrel_wall_mm: f64,
    /// Sleeve pocket diameter, mm; `None` when the template has no pocket.
    pub sleeve_pocket_diameter_mm: Option<f64>,
    /// Sleeve pocket depth from the barrel top, mm (0 without a pocket).
    pub sleeve_pocket_depth_mm: f64,
}

/// How loose a seated guide may be (see `crate::guide::seating`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct SeatingParams {
    /// Largest translation perpendicular to the seating direction before the guide meets the bone, mm.
    pub max_play_mm: f64,
    /// Largest rotation about an axis through the contact centroid before it meets the bone, degrees.
    pub max_play_deg: f64,
}

/// Fixation screw holes of a resolved template.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct FixationParams {
    /// Number of holes.
    pub hole_count: u32,
    /// Hole diameter, mm.
    pub hole_diameter_mm: f64,
}

/// A template's parameters after defaults, printer profile and overrides: every value checked against its range
/// and against the others.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ResolvedParams {
    /// Template name.
    pub template_name: String,
    /// Template version.
    pub template_version: String,
    /// Guide kind.
    pub kind: GuideKind,
    /// Printer profile name.
    pub printer: String,
    /// Bone offset, clearances.
    pub tolerance: ToleranceModel,
    /// Contact pad thickness, mm.
    pub pad_thickness_mm: f64,
    /// Minimum wall, mm.
    pub min_wall_mm: f64,
    /// Slot housing parameters (cutting and combined guides).
    pub slot: Option<SlotParams>,
    /// Drill barrel parameters (drill and combined guides).
    pub drill: Option<DrillParams>,
    /// Fixation holes.
    pub fixation: FixationParams,
    /// Seating play allowed.
    pub seating: SeatingParams,
    /// Every parameter with its value, unit and where the value came from, sorted by name (for the manifest).
    pub parameters: Vec<ResolvedParameter>,
}

/// Where a resolved parameter's value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParameterSource {
    /// The template's default.
    Default,
    /// The printer profile (bone offset, printer clearance).
    Printer,
    /// The plan's guide overrides it.
    Plan,
}

/// One template parameter after resolution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResolvedParameter {
    /// Parameter name (`pad_thickness_mm`).
    pub name: String,
    /// Its value, in `unit`.
    pub value: f64,
    /// `mm` or `count`.
    pub unit: String,
    /// Where the value came from.
    pub source: ParameterSource,
}

/// A template file of a folder that could not be used, and why.
#[derive(Debug)]
pub struct SkippedTemplate {
    /// The file.
    pub path: String,
    /// Why it was skipped.
    pub error: TemplateError,
}

/// The templates of a folder: the good ones (sorted by file name) and the skipped files with their reasons.
#[derive(Debug, Default)]
pub struct FolderTemplates {
    /// Valid templates, in file name order.
    pub templates: Vec<Template>,
    /// Files that failed to parse or validate.
    pub skipped: Vec<SkippedTemplate>,
}

/// Deserialises a TOML document, naming the key path and line on failure.
pub(super) fn parse_toml<T: serde::de::DeserializeOwned>(text: &str, file: &str) -> Result<T, TemplateError> {
    let line_of = |span: Option<std::ops::Range<usize>>| {
        span.map_or(0, |s| text[..s.start.min(text.len())].matches('\n').count() + 1)
    };
    let de = toml::de::Deserializer::parse(text).map_err(|e| TemplateError::Syntax {
        file: file.to_string(),
        key: ".".to_string(),
        message: e.message().to_string(),
        line: line_of(e.span()),
    })?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        let inner = e.into_inner();
        TemplateError::Syntax {
            file: file.to_string(),
            key,
            message: inner.message().to_string(),
            line: line_of(inner.span()),
        }
    })
}

fn is_semver(v: &str) -> bool {
    let parts: Vec<&str> = v.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && (p.len() == 1 || !p.starts_with('0')))
}

impl Template {
    /// Parses and validates a template from TOML text; `file` names it in errors.
    pub fn from_toml_str(text: &str, file: &str) -> Result<Template, TemplateError> {
        let template: Template = parse_toml(text, file)?;
        template.validate(file)?;
        Ok(template)
    }

    /// Checks everything serde cannot: schema version, name, semver, known and required parameters, units, ranges,
    /// defaults.
    pub fn validate(&self, file: &str) -> Result<(), TemplateError> {
        let invalid = |key: &str, message: String| TemplateError::Invalid {
            file: file.to_string(),
            key: key.to_string(),
            message,
        };
        if self.schema_version != TEMPLATE_SCHEMA_VERSION {
            return Err(invalid(
                "schema_version",
                format!(
                    "version {} is not supported (this build reads {TEMPLATE_SCHEMA_VERSION})",
                    self.schema_version
                ),
            ));
        }
        if self.name.is_empty()
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(invalid(
                "name",
                format!("{:?} must be lower-case letters, digits and _", self.name),
            ));
        }
        if !is_semver(&self.version) {
            return Err(invalid(
                "version",
                format!("{:?} is not MAJOR.MINOR.PATCH", self.version),
            ));
        }
        if self.description.trim().is_empty() {
            return Err(invalid("description", "is empty".to_string()));
        }
        for (name, spec) in &self.parameters {
            let key = |field: &str| format!("parameters.{name}.{field}");
            if !KNOWN_PARAMETERS.contains(&name.as_str()) {
                return Err(invalid(
                    &format!("parameters.{name}"),
                    format!("unknown parameter; known parameters: {}", KNOWN_PARAMETERS.join(", ")),
                ));
            }
            let expected_unit = if name.ends_with("_count") {
                "count"
            } else if name.ends_with("_deg") {
                "deg"
            } else {
                "mm"
            };
            if spec.unit != expected_unit {
                return Err(invalid(
                    &key("unit"),
                    format!("{:?} does not match the name's unit {expected_unit:?}", spec.unit),
                ));
            }
            if !(spec.min.is_finite() && spec.max.is_finite() && spec.min <= spec.max) {
                return Err(invalid(
                    &key("min"),
                    format!("range {}..={} is empty or not finite", spec.min, spec.max),
                ));
            }
            if spec.doc.trim().is_empty() {
                return Err(invalid(&key("doc"), "is empty".to_string()));
            }
            let is_count = expected_unit == "count";
            if is_count && (spec.min.fract() != 0.0 || spec.max.fract() != 0.0 || spec.min < 0.0) {
                return Err(invalid(
                    &key("min"),
                    format!(
                        "a count range must be whole numbers >= 0, got {}..={}",
                        spec.min, spec.max
                    ),
                ));
            }
            match &spec.default {
                DefaultValue::Number(v) => {
                    if !(v.is_finite() && spec.min <= *v && *v <= spec.max) {
                        return Err(invalid(
                            &key("default"),
                            format!(
                                "{v} {} is outside the range {}..={} {}",
                                spec.unit, spec.min, spec.max, spec.unit
                            ),
                        ));
                    }
                    if is_count && v.fract() != 0.0 {
                        return Err(invalid(&key("default"), format!("{v} is not a whole number")));
                    }
                }
                DefaultValue::Keyword(k) => {
                    if k != "printer" || !PRINTER_PARAMETERS.contains(&name.as_str()) {
                        return Err(invalid(
                            &key("default"),
                            format!(
                                "{k:?} is not a number; only {} may default to \"printer\"",
                                PRINTER_PARAMETERS.join(" and ")
                            ),
                        ));
                    }
                }
            }
        }
        if let Some(missing) = self.kind.required().find(|r| !self.parameters.contains_key(*r)) {
            return Err(invalid(
                &format!("parameters.{missing}"),
                format!(
                    "missing; a {:?} template needs {}",
                    self.kind,
                    self.kind.required().collect::<Vec<_>>().join(", ")
                )
                .to_lowercase(),
            ));
        }
        Ok(())
    }

    /// The template's values: defaults (printer-profile defaults from `printer`), then `overrides`; every value is
    /// checked against its range and the values against each other (walls at least the minimum wall, a sleeve
    /// pocket with a depth inside its barrel).
    pub fn resolve(
        &self,
        overrides: &BTreeMap<String, f64>,
        printer: &PrinterProfile,
    ) -> Result<ResolvedParams, TemplateError> {
        if let Some(name) = overrides.keys().find(|n| !self.parameters.contains_key(*n)) {
            return Err(TemplateError::UnknownParameter {
                template: self.name.clone(),
                name: name.clone(),
                valid: self.parameters.keys().cloned().collect::<Vec<_>>().join(", "),
            });
        }
        let mut values = BTreeMap::new();
        let mut parameters = Vec::with_capacity(self.parameters.len());
        for (name, spec) in &self.parameters {
            let (value, from, source) = match (overrides.get(name), &spec.default) {
                (Some(v), _) => (*v, ParameterSource::Plan, "; given as an override".to_string()),
                (None, DefaultValue::Number(v)) => (*v, ParameterSource::Default, String::new()),
                (None, DefaultValue::Keyword(_)) => {
                    let v = if name == "bone_offset_mm" {
                        printer.bone_offset_mm
                    } else {
                        printer.printer_clearance_mm
                    };
                    (
                        v,
                        ParameterSource::Printer,
                        format!("; from printer profile {:?}", printer.name),
                    )
                }
            };
            let whole = spec.unit != "count" || value.fract() == 0.0;
            if !(value.is_finite() && spec.min <= value && value <= spec.max && whole) {
                return Err(TemplateError::OutOfRange {
                    template: self.name.clone(),
                    name: name.clone(),
                    value,
                    min: spec.min,
                    max: spec.max,
                    unit: spec.unit.clone(),
                    why: if whole {
                        source
                    } else {
                        format!("{source}; a count must be a whole number")
                    },
                });
            }
            values.insert(name.clone(), value);
            parameters.push(ResolvedParameter {
                name: name.clone(),
                value,
                unit: spec.unit.clone(),
                source: from,
            });
        }
        let get = |name: &str| -> Result<f64, TemplateError> {
            values.get(name).copied().ok_or_else(|| TemplateError::Inconsistent {
                template: self.name.clone(),
                message: format!("parameter {name} is missing (validate() was not run)"),
            })
        };
        let min_wall_mm = get("min_wall_mm")?;
        let inconsistent = |message: String| TemplateError::Inconsistent {
            template: self.name.clone(),
            message,
        };
        let wall_check = |name: &str| -> Result<f64, TemplateError> {
            let v = get(name)?;
            if v < min_wall_mm {
                return Err(inconsistent(format!(
                    "{name} = {v} mm is below min_wall_mm = {min_wall_mm} mm"
                )));
            }
            Ok(v)
        };
        let slot = if self.kind.has_slots() {
            Some(SlotParams {
                slot_depth_mm: get("slot_depth_mm")?,
                slot_wall_mm: wall_check("slot_wall_mm")?,
                slot_overhang_mm: wall_check("slot_overhang_mm")?,
            })
        } else {
            None
        };
        let drill = if self.kind.has_barrels() {
            let barrel_length_mm = get("barrel_length_mm")?;
            let pocket_d = get("sleeve_pocket_diameter_mm")?;
            let pocket_depth = get("sleeve_pocket_depth_mm")?;
            if pocket_d > 0.0 && !(pocket_depth > 0.0 && pocket_depth < barrel_length_mm) {
                return Err(inconsistent(format!(
                    "sleeve_pocket_depth_mm = {pocket_depth} mm must be above 0 and below barrel_length_mm = \
                     {barrel_length_mm} mm when sleeve_pocket_diameter_mm = {pocket_d} mm"
                )));
            }
            Some(DrillParams {
                barrel_length_mm,
                barrel_wall_mm: wall_check("barrel_wall_mm")?,
                sleeve_pocket_diameter_mm: (pocket_d > 0.0).then_some(pocket_d),
                sleeve_pocket_depth_mm: if pocket_d > 0.0 { pocket_depth } else { 0.0 },
            })
        } else {
            None
        };
        let tolerance = ToleranceModel {
            bone_offset_mm: get("bone_offset_mm")?,
            printer_clearance_mm: get("printer_clearance_mm")?,
            drill_clearance_mm: if self.kind.has_barrels() {
                get("drill_clearance_mm")?
            } else {
                0.0
            },
        };
        Ok(ResolvedParams {
            template_name: self.name.clone(),
            template_version: self.version.clone(),
            kind: self.kind,
            printer: printer.name.clone(),
            tolerance,
            pad_thickness_mm: get("pad_thickness_mm")?,
            min_wall_mm,
            slot,
            drill,
            fixation: FixationParams {
                // Whole number in 0..=max checked above; the cast cannot truncate.
                hole_count: get("fixation_hole_count")? as u32,
                hole_diameter_mm: get("fixation_hole_diameter_mm")?,
            },
            seating: SeatingParams {
                max_play_mm: get("max_seating_play_mm")?,
                max_play_deg: get("max_seating_play_deg")?,
            },
            parameters,
        })
    }
}

/// Every builtin template, parsed and validated, in [`BUILTIN_TEMPLATE_FILES`] order.
pub fn builtin_templates() -> Result<Vec<Template>, TemplateError> {
    BUILTIN_TEMPLATE_FILES
        .iter()
        .map(|(file, text)| Template::from_toml_str(text, &format!("builtin:{file}")))
        .collect()
}

/// The builtin template called `name` (`cutting_guide`, `drill_guide`, `combined_guide`).
pub fn builtin_template(name: &str) -> Result<Template, TemplateError> {
    let all = builtin_templates()?;
    let available = all.iter().map(|t| t.name.clone()).collect::<Vec<_>>().join(", ");
    all.into_iter()
        .find(|t| t.name == name)
        .ok_or_else(|| TemplateError::NotFound {
            what: "template",
            name: name.to_string(),
            available,
        })
}

/// Reads and validates one template file.
pub fn load_template_file(path: &Path) -> Result<Template, TemplateError> {
    let (file, text) = read_text(path)?;
    Template::from_toml_str(&text, &file)
}

/// A file's display name and text.
pub(super) fn read_text(path: &Path) -> Result<(String, String), TemplateError> {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => Ok((file, text)),
        Err(error) => Err(TemplateError::Io { path: file, error }),
    }
}

/// Reads every `*.toml` template of a folder (not recursive; `printers.toml` is not a template and is left out),
/// in file name order. A bad file is listed in [`FolderTemplates::skipped`] with its reason, not an error of the
/// whole folder; two files with the same template name keep the first and skip the second.
pub fn load_template_folder(dir: &Path) -> Result<FolderTemplates, TemplateError> {
    let io = |error| TemplateError::Io {
        path: dir.display().to_string(),
        error,
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let is_toml = path.extension().is_some_and(|e| e == "toml");
        let is_printers = path.file_name().is_some_and(|n| n == "printers.toml");
        if is_toml && !is_printers && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    let mut out = FolderTemplates::default();
    for path in paths {
        match load_template_file(&path) {
            Ok(t) if out.templates.iter().any(|o| o.name == t.name) => out.skipped.push(SkippedTemplate {
                path: path.display().to_string(),
                error: TemplateError::Invalid {
                    file: path.display().to_string(),
                    key: "name".to_string(),
                    message: format!("{:?} is already defined by an earlier file", t.name),
                },
            }),
            Ok(t) => out.templates.push(t),
            Err(error) => out.skipped.push(SkippedTemplate {
                path: path.display().to_string(),
                error,
            }),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver_accepts_only_three_plain_numbers() {
        assert!(is_semver("1.0.0"));
        assert!(is_semver("10.2.33"));
        assert!(!is_semver("1.0"));
        assert!(!is_semver("1.0.0-beta"));
        assert!(!is_semver("01.0.0"));
        assert!(!is_semver("1..0"));
    }

    #[test]
    fn kinds_require_their_parameter_groups() {
        assert!(GuideKind::Cutting.required().any(|p| p == "slot_depth_mm"));
        assert!(!GuideKind::Cutting.required().any(|p| p == "barrel_length_mm"));
        assert!(GuideKind::Drill.required().any(|p| p == "barrel_length_mm"));
        assert!(GuideKind::Combined.required().any(|p| p == "slot_wall_mm"));
        for p in GuideKind::Combined.required() {
            assert!(KNOWN_PARAMETERS.contains(&p), "{p} is required but not known");
        }
    }
}
