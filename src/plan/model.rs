//! The plan's data types, exactly as they appear in the JSON document.
//!
//! Every struct denies unknown fields and has no serde defaults, so a typo or a missing field is an error with its
//! JSON path rather than a silently ignored or invented value. Field order here is the order in the file.

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize};

use crate::segment::SegmentRecipe;

/// Deserialises an `Option` field that must be present, as `null` or a value. Serde fills a missing `Option` field
/// with `None` unless the field has its own `deserialize_with`, and the plan must not invent values for missing
/// fields.
pub(crate) fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer)
}

/// Schema stand-in for an `Option<T>` field read with [`present`]: the same schema as `Option<T>` (the value or
/// `null`), but listed as required, as the reader requires it.
pub(crate) struct Nullable<T>(std::marker::PhantomData<T>);

impl<T: JsonSchema> JsonSchema for Nullable<T> {
    fn inline_schema() -> bool {
        Option::<T>::inline_schema()
    }

    fn schema_name() -> Cow<'static, str> {
        Option::<T>::schema_name()
    }

    fn schema_id() -> Cow<'static, str> {
        Option::<T>::schema_id()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        Option::<T>::json_schema(generator)
    }
}

/// Version of the plan format this build writes. It also reads version 1 (before guides named their printer), see
/// [`Plan::from_json`].
pub const SCHEMA_VERSION: u32 = 2;

/// The printer profile of guides in version 1 plans, which did not name one: `guidesmith build` used it when no
/// `--printer` was given.
pub const V1_PRINTER: &str = "sla";

/// Longest case ID, in characters.
pub const CASE_ID_MAX_CHARS: usize = 64;

/// The surgical plan: the single document engineers build and surgeons approve. Coordinates are DICOM patient
/// LPS, millimetres.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Format version; must equal [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Names the case in file names and reports (never a patient name or ID).
    pub case_id: CaseId,
    /// The CT the plan was made on; `None` when the bone comes only from STL models.
    #[serde(deserialize_with = "present")]
    #[schemars(with = "Nullable<CtReference>")]
    pub ct: Option<CtReference>,
    /// Where the bone surface comes from.
    pub bone: BoneSource,
    /// Named anatomical points.
    pub landmarks: Vec<Landmark>,
    /// Structures drills must keep clear of (nerves, vessels, tooth roots).
    pub structures: Vec<Structure>,
    /// Saw cuts.
    pub planes: Vec<CuttingPlane>,
    /// Drill holes.
    pub drills: Vec<DrillTrajectory>,
    /// Guides to generate.
    pub guides: Vec<GuideSpec>,
    /// The free-flap reconstruction of the resection (absent when the plan has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconstruction: Option<super::Reconstruction>,
    /// Reviews of this plan.
    pub approvals: Vec<Approval>,
}

impl Plan {
    /// A plan of the current schema with no elements yet: its case, CT and bone.
    pub fn new(case_id: CaseId, ct: Option<CtReference>, bone: BoneSource) -> Plan {
        Plan {
            schema_version: SCHEMA_VERSION,
            case_id,
            ct,
            bone,
            landmarks: Vec::new(),
            structures: Vec::new(),
            planes: Vec::new(),
            drills: Vec::new(),
            guides: Vec::new(),
            reconstruction: None,
            approvals: Vec::new(),
        }
    }
}

/// A case identifier: 1 to 64 characters of `[A-Za-z0-9._-]`, not starting with `.` or `-` (safe as a file name
/// on every system, and never a hidden file or a command-line option).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CaseId(String);

/// Why a string is not a valid [`CaseId`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("case id {value:?} {reason}")]
pub struct CaseIdError {
    /// The refused string.
    pub value: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl CaseId {
    /// Validates `value` as a case ID.
    pub fn new(value: &str) -> Result<CaseId, CaseIdError> {
        let reason = if value.is_empty() {
            Some("is empty")
        } else if value.chars().count() > CASE_ID_MAX_CHARS {
            Some("is longer than 64 characters")
        } else if !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            Some("may only hold the characters A-Z a-z 0-9 . _ -")
        } else if value.starts_with(['.', '-']) {
            Some("must not start with '.' or '-'")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(CaseIdError {
                value: value.to_string(),
                reason,
            }),
            None => Ok(CaseId(value.to_string())),
        }
    }

    /// The ID as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for CaseId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for CaseId {
    type Error = CaseIdError;
    fn try_from(value: String) -> Result<Self, CaseIdError> {
        CaseId::new(&value)
    }
}

impl From<CaseId> for String {
    fn from(id: CaseId) -> String {
        id.0
    }
}

impl JsonSchema for CaseId {
    fn schema_name() -> Cow<'static, str> {
        "CaseId".into()
    }

    fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "1 to 64 characters of [A-Za-z0-9._-], not starting with '.' or '-'.",
            "type": "string",
            "minLength": 1,
            "maxLength": CASE_ID_MAX_CHARS,
            "pattern": "^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$"
        })
    }
}

/// The CT a plan was made on. The hash is the identity; the rest is for display and for a helpful message when a
/// different CT is loaded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CtReference {
    /// Where the CT was loaded from, relative to the plan file's folder when possible (a hint only).
    pub path: String,
    /// SeriesInstanceUID (empty when the files had none).
    pub series_uid: String,
    /// [`crate::plan::ct_sha256`] of the loaded volume: 64 lower-case hex digits.
    #[schemars(regex(pattern = r"^[0-9a-f]{64}$"))]
    pub volume_sha256: String,
    /// Samples along i, j, k.
    pub dims: [usize; 3],
    /// Sample spacing along i, j, k, mm.
    pub spacing_mm: [f64; 3],
    /// Patient position (LPS, mm) of the centre of voxel (0, 0, 0).
    pub origin_mm: [f64; 3],
    /// Unit directions of increasing i, j, k in patient space.
    pub axes: [[f64; 3]; 3],
    /// The RescaleIntercept (HU) the CT was loaded with instead of the files' own (`plan new --rescale-intercept`,
    /// for a series whose values are not HU); `None`: the files' own. The volume hash is of the volume so loaded.
    #[serde(deserialize_with = "present")]
    #[schemars(with = "Nullable<f64>")]
    pub rescale_intercept_override_hu: Option<f64>,
}

/// Where the bone surface comes from: a segmentation of the CT, imported STL models, or both.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BoneSource {
    /// How the bone was segmented from the CT (needs `ct`).
    #[serde(deserialize_with = "present")]
    #[schemars(with = "Nullable<Segmentation>")]
    pub segmentation: Option<Segmentation>,
    /// Imported bone models.
    pub models: Vec<BoneModelRef>,
}

/// The segmentation and surface settings that re-create the bone surface from the CT.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Segmentation {
    /// The segmentation recipe (see `segment::recipe` for the fixed order of its steps).
    pub recipe: SegmentRecipe,
    /// Taubin smoothing iterations of the surface (0 = none).
    pub smooth_iterations: u32,
    /// Fraction of triangles decimation keeps, in (0, 1]; `None` = no decimation.
    #[serde(deserialize_with = "present")]
    #[schemars(with = "Nullable<f64>", range(min = 0.0, max = 1.0))]
    pub decimate_keep_fraction: Option<f64>,
}

/// An imported STL bone model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BoneModelRef {
    /// Unique among the models.
    #[schemars(length(min = 1, max = 64))]
    pub name: String,
    /// Where the file was read from (a hint; the hash is the truth).
    pub path: String,
    /// SHA-256 of the file bytes, 64 lower-case hex digits.
    #[schemars(regex(pattern = r"^[0-9a-f]{64}$"))]
    pub sha256: String,
}

/// A named point.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Landmark {
    /// Unique among the landmarks.
    #[schemars(length(min = 1, max = 64))]
    pub name: String,
    /// Position, patient LPS mm.
    pub point_mm: [f64; 3],
}

/// What kind of structure must be protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StructureKind {
    /// A nerve (inferior alveolar, infraorbital...).
    Nerve,
    /// A blood vessel.
    Vessel,
    /// A tooth root.
    ToothRoot,
    /// Anything else.
    Other,
}

/// A structure drills must keep clear of: a tube of `radius_mm` around a polyline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Structure {
    /// Unique among the structures.
    #[schemars(length(min = 1, max = 64))]
    pub name: String,
    /// What it is.
    pub kind: StructureKind,
    /// Centre line, patient LPS mm; at least one point (one point = a sphere).
    #[schemars(length(min = 1))]
    pub points_mm: Vec<[f64; 3]>,
    /// Radius of the tube around the centre line, mm (>= 0).
    #[schemars(range(min = 0.0))]
    pub radius_mm: f64,
    /// Smallest clearance a drill must keep from the tube's surface, mm (>= 0).
    #[schemars(range(min = 0.0))]
    pub margin_mm: f64,
}

/// Which side of a cutting plane is removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResectedSide {
    /// The side the normal points to.
    Positive,
    /// The side opposite to the normal.
    Negative,
    /// Nothing is removed (an osteotomy that only separates).
    None,
}

/// A saw cut.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CuttingPlane {
    /// Unique among the planes.
    #[schemars(length(min = 1, max = 64))]
    pub name: String,
    /// A point of the plane (centre of the cut), patient LPS mm.
    pub point_mm: [f64; 3],
    /// Unit normal.
    pub normal: [f64; 3],
    /// Saw blade thickness, mm, 0.4 to 1.25 (`template::BLADE_THICKNESS_RANGE_MM`, the range a guide's slot
    /// accepts; a test keeps the two equal).
    #[schemars(range(min = 0.4, max = 1.25))]
    pub blade_thickness_mm: f64,
    /// Which side of the normal is removed.
    pub resected_side: ResectedSide,
}

/// A drill hole: a cylinder from `entry_mm` along `direction`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DrillTrajectory {
    /// Unique among the drills.
    #[schemars(length(min = 1, max = 64))]
    pub name: String,
    /// Where the drill enters the bone, patient LPS mm.
    pub entry_mm: [f64; 3],
    /// Unit direction, into the bone.
    pub direction: [f64; 3],
    /// Depth, mm (> 0).
    pub length_mm: f64,
    /// Drill bit diameter, mm, 0.5 to 6.
    #[schemars(range(min = 0.5, max = 6.0))]
    pub diameter_mm: f64,
    /// Screw system (a key of the screw catalogue, e.g. "2.0"), if the hole takes a screw.
    #[serde(deserialize_with = "present")]
    #[schemars(with = "Nullable<String>")]
    pub screw_system: Option<String>,
}

/// A guide to generate from a template.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GuideSpec {
    /// Unique among the guides.
    #[schemars(length(min = 1, max = 64))]
    pub name: String,
    /// Template name.
    #[schemars(length(min = 1))]
    pub template: String,
    /// Printer profile (`sla`, `fdm`, `sls` in `templates/printers.toml`): it sets the bone offset and the
    /// clearances, so it is part of the plan and of its hash.
    #[schemars(length(min = 1))]
    pub printer: String,
    /// Template parameters (names end with their unit, e.g. `pad_thickness_mm`).
    pub parameters: BTreeMap<String, f64>,
    /// Names of the cutting planes the guide carries a slot for.
    pub planes: Vec<String>,
    /// Names of the drills the guide carries a sleeve for.
    pub drills: Vec<String>,
    /// Unit direction in which the guide moves to seat onto the bone.
    pub seating_direction: [f64; 3],
    /// Where the guide's pad lies on the bone.
    pub footprint: Footprint,
    /// The label embossed on the guide's pad (none when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<GuideLabel>,
    /// The bone the guide seats on: the plan's own (absent) or the reconstruction's donor, whose cuts and fixation
    /// holes its `planes` and `drills` then name.
    #[serde(default, skip_serializing_if = "GuideBone::is_recipient")]
    pub bone: GuideBone,
}

/// The bone a guide seats on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GuideBone {
    /// The plan's own bone.
    #[default]
    Recipient,
    /// The reconstruction's donor bone.
    Donor,
}

impl GuideBone {
    /// Whether this is the plan's own bone (the field is then left out of the file).
    pub fn is_recipient(&self) -> bool {
        *self == GuideBone::Recipient
    }
}

/// Text embossed on a guide's pad, placed automatically where the pad is free and gentle.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GuideLabel {
    /// The lines; empty for the automatic text: the case ID, the guide's name and its side (L, R or MID, from where
    /// its footprint lies against the middle of the bone), and DRAFT on guides that are not released. Letters A-Z,
    /// digits, `-`, `_` and spaces; lower case is set in capitals.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub text: Vec<String>,
    /// Height of the capital letters, mm (at least 2.5).
    #[serde(default = "default_label_cap_height_mm")]
    #[schemars(range(min = 2.5, max = 10.0))]
    pub cap_height_mm: f64,
    /// Where the engineer put it, patient LPS mm: the label goes to the free place on the pad nearest this point seen
    /// along the seating direction. Absent: placed automatically (the free place with the most room around it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub near_mm: Option<[f64; 3]>,
}

impl Default for GuideLabel {
    /// The automatic text at the default letter height, placed automatically.
    fn default() -> Self {
        GuideLabel {
            text: Vec::new(),
            cap_height_mm: default_label_cap_height_mm(),
            near_mm: None,
        }
    }
}

/// The default letter height of a guide's label, mm: the smallest that prints legibly in relief.
pub fn default_label_cap_height_mm() -> f64 {
    2.5
}

/// A closed polygon, projected along the seating direction onto the bone; the pad covers the bone inside it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Footprint {
    /// Polygon corners, patient LPS mm, at least 3 (closed implicitly: the last joins the first).
    #[schemars(length(min = 3))]
    pub outline_mm: Vec<[f64; 3]>,
}

/// A reviewer's decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// The plan may be built.
    Approved,
    /// The plan must be changed.
    Rejected,
}

/// Who reviews a plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The operating surgeon: only a surgeon's approval releases a plan for production.
    Surgeon,
    /// The engineer who designed the guides.
    Engineer,
}

impl Role {
    /// The role as written in the plan (`surgeon`, `engineer`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Surgeon => "surgeon",
            Role::Engineer => "engineer",
        }
    }
}

/// A review of the plan, bound to every input that determines its guides (see [`super::DesignBinding`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// The reviewer's role.
    pub role: Role,
    /// Who reviewed (a person's name as they sign; never the patient's).
    #[schemars(length(min = 1))]
    pub reviewer: String,
    /// The decision.
    pub decision: Decision,
    /// When, UTC, RFC 3339 to the second (`2026-12-07T08:15:00Z`).
    pub at_utc: String,
    /// Free text.
    pub comment: String,
    /// The inputs reviewed: the plan's content, the CT, templates, printer profiles, screw catalogue, software.
    pub binding: super::approval::DesignBinding,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_ids() {
        for ok in ["a", "case-001", "Case_7.v2", "0", &"x".repeat(64)] {
            assert_eq!(CaseId::new(ok).map(|c| c.to_string()), Ok(ok.to_string()));
        }
        for (bad, why) in [
            ("", "is empty"),
            (".hidden", "must not start"),
            ("-rf", "must not start"),
            ("a b", "may only hold"),
            ("a/b", "may only hold"),
            ("é", "may only hold"),
            (&"x".repeat(65), "longer than 64"),
        ] {
            let e = CaseId::new(bad).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains(why) && e.contains(&format!("{bad:?}")), "{bad}: {e}");
        }
    }
}
