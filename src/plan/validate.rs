//! Semantic validation of a plan: the rules serde cannot express (ranges, unit vectors, unique names, references).
//!
//! Every rule reports the JSON path of the offending value, so an engineer editing the file by hand, or a GUI
//! highlighting a field, knows exactly where to look. The first problem found is reported, in document order.

use std::collections::BTreeSet;

use super::error::PlanError;
use super::model::{GuideBone, Plan, ResectedSide, SCHEMA_VERSION};
use super::reconstruction::Reconstruction;
use crate::catalogue::Catalogue;
use crate::template::{BLADE_THICKNESS_RANGE_MM, DRILL_DIAMETER_RANGE_MM};

/// How far a stored unit vector's length may be from 1. Commands store `v / |v|`, whose length is within a few
/// ulps (~1e-16) of 1; a hand-edited file with 9 or more significant digits passes; anything visibly off (a typo,
/// a non-normalised vector from another tool) is refused rather than silently rescaled.
pub const UNIT_LENGTH_TOLERANCE: f64 = 1e-9;

/// Longest element name, in characters (fits a label on a guide and a line in a report).
pub const NAME_MAX_CHARS: usize = 64;

impl Plan {
    /// Checks every rule against the built-in screw catalogue ([`Catalogue::builtin`]).
    pub fn validate(&self) -> Result<(), PlanError> {
        self.validate_with(Catalogue::builtin())
    }

    /// Checks every rule; a drill's `screw_system` must be a key of `catalogue`.
    pub fn validate_with(&self, catalogue: &Catalogue) -> Result<(), PlanError> {
        self.validate_inner(Some(catalogue))
    }

    /// Checks every rule; screw systems only when a catalogue is given.
    pub(crate) fn validate_inner(&self, catalogue: Option<&Catalogue>) -> Result<(), PlanError> {
        if self.schema_version != SCHEMA_VERSION {
            return Err(PlanError::SchemaVersion {
                found: u64::from(self.schema_version),
                expected: SCHEMA_VERSION,
            });
        }
        if let Some(ct) = &self.ct {
            non_empty("ct.path", &ct.path)?;
            printable("ct.series_uid", &ct.series_uid)?;
            sha256_hex("ct.volume_sha256", &ct.volume_sha256)?;
            if ct.dims.contains(&0) {
                return Err(PlanError::invalid("ct.dims", format!("{:?} has a zero size", ct.dims)));
            }
            for (a, s) in ct.spacing_mm.iter().enumerate() {
                positive(&format!("ct.spacing_mm[{a}]"), *s)?;
            }
            finite3("ct.origin_mm", &ct.origin_mm)?;
            for (a, axis) in ct.axes.iter().enumerate() {
                unit3(&format!("ct.axes[{a}]"), axis)?;
            }
            if let Some(i) = ct.rescale_intercept_override_hu {
                finite("ct.rescale_intercept_override_hu", i)?;
            }
        }

        if let Some(seg) = &self.bone.segmentation {
            if self.ct.is_none() {
                return Err(PlanError::invalid(
                    "bone.segmentation",
                    "a segmentation needs the CT it segments (ct is null)",
                ));
            }
            seg.recipe
                .validate()
                .map_err(|e| PlanError::invalid("bone.segmentation.recipe", e.to_string()))?;
            if let Some(f) = seg.decimate_keep_fraction {
                if !(f.is_finite() && f > 0.0 && f <= 1.0) {
                    return Err(PlanError::invalid(
                        "bone.segmentation.decimate_keep_fraction",
                        format!("{f} is outside (0, 1]"),
                    ));
                }
            }
        }
        let mut names = Names::new("bone.models");
        for (i, m) in self.bone.models.iter().enumerate() {
            let p = format!("bone.models[{i}]");
            names.add(&p, &m.name)?;
            non_empty(&format!("{p}.path"), &m.path)?;
            sha256_hex(&format!("{p}.sha256"), &m.sha256)?;
        }

        let mut names = Names::new("landmarks");
        for (i, l) in self.landmarks.iter().enumerate() {
            let p = format!("landmarks[{i}]");
            names.add(&p, &l.name)?;
            finite3(&format!("{p}.point_mm"), &l.point_mm)?;
        }

        let mut names = Names::new("structures");
        for (i, s) in self.structures.iter().enumerate() {
            let p = format!("structures[{i}]");
            names.add(&p, &s.name)?;
            if s.points_mm.is_empty() {
                return Err(PlanError::invalid(format!("{p}.points_mm"), "needs at least one point"));
            }
            for (j, q) in s.points_mm.iter().enumerate() {
                finite3(&format!("{p}.points_mm[{j}]"), q)?;
            }
            non_negative(&format!("{p}.radius_mm"), s.radius_mm)?;
            non_negative(&format!("{p}.margin_mm"), s.margin_mm)?;
        }

        let mut plane_names = Names::new("planes");
        for (i, c) in self.planes.iter().enumerate() {
            let p = format!("planes[{i}]");
            plane_names.add(&p, &c.name)?;
            finite3(&format!("{p}.point_mm"), &c.point_mm)?;
            unit3(&format!("{p}.normal"), &c.normal)?;
            in_range(
                &format!("{p}.blade_thickness_mm"),
                c.blade_thickness_mm,
                &BLADE_THICKNESS_RANGE_MM,
            )?;
        }

        let mut drill_names = Names::new("drills");
        for (i, d) in self.drills.iter().enumerate() {
            let p = format!("drills[{i}]");
            drill_names.add(&p, &d.name)?;
            finite3(&format!("{p}.entry_mm"), &d.entry_mm)?;
            unit3(&format!("{p}.direction"), &d.direction)?;
            positive(&format!("{p}.length_mm"), d.length_mm)?;
            in_range(&format!("{p}.diameter_mm"), d.diameter_mm, &DRILL_DIAMETER_RANGE_MM)?;
            if let (Some(system), Some(catalogue)) = (&d.screw_system, catalogue) {
                catalogue
                    .get(system)
                    .map_err(|e| PlanError::invalid(format!("{p}.screw_system"), e.to_string()))?;
            }
        }

        // The donor's cuts and fixation holes a donor guide names.
        let (donor_cut_list, donor_fix_list) = match &self.reconstruction {
            Some(r) => (r.donor_cut_names(), r.fixation_names()),
            None => (Vec::new(), Vec::new()),
        };
        let mut donor_cuts = Names::new("donor cuts");
        donor_cuts.seen.extend(donor_cut_list.iter().map(String::as_str));
        let mut donor_fixations = Names::new("donor fixation holes");
        donor_fixations.seen.extend(donor_fix_list.iter().map(String::as_str));
        if let Some(r) = &self.reconstruction {
            self.validate_reconstruction(r)?;
        }

        let mut names = Names::new("guides");
        for (i, g) in self.guides.iter().enumerate() {
            let p = format!("guides[{i}]");
            names.add(&p, &g.name)?;
            non_empty(&format!("{p}.template"), &g.template)?;
            printable(&format!("{p}.template"), &g.template)?;
            non_empty(&format!("{p}.printer"), &g.printer)?;
            printable(&format!("{p}.printer"), &g.printer)?;
            for (key, value) in &g.parameters {
                let kp = format!("{p}.parameters.{key}");
                if key.is_empty() || key.chars().any(char::is_control) {
                    return Err(PlanError::invalid(
                        kp,
                        "parameter names must be non-empty and printable",
                    ));
                }
                finite(&kp, *value)?;
            }
            match g.bone {
                GuideBone::Recipient => {
                    references(&format!("{p}.planes"), &g.planes, &plane_names, "plane")?;
                    references(&format!("{p}.drills"), &g.drills, &drill_names, "drill")?;
                }
                GuideBone::Donor => {
                    if self.reconstruction.is_none() {
                        return Err(PlanError::invalid(
                            format!("{p}.bone"),
                            "a guide on the donor needs the plan's reconstruction (there is none)",
                        ));
                    }
                    references(&format!("{p}.planes"), &g.planes, &donor_cuts, "donor cut")?;
                    references(
                        &format!("{p}.drills"),
                        &g.drills,
                        &donor_fixations,
                        "donor fixation hole",
                    )?;
                }
            }
            unit3(&format!("{p}.seating_direction"), &g.seating_direction)?;
            if g.footprint.outline_mm.len() < 3 {
                return Err(PlanError::invalid(
                    format!("{p}.footprint.outline_mm"),
                    format!(
                        "{} points; a closed outline needs at least 3",
                        g.footprint.outline_mm.len()
                    ),
                ));
            }
            for (j, q) in g.footprint.outline_mm.iter().enumerate() {
                finite3(&format!("{p}.footprint.outline_mm[{j}]"), q)?;
            }
        }

        for (i, a) in self.approvals.iter().enumerate() {
            let p = format!("approvals[{i}]");
            non_empty(&format!("{p}.reviewer"), &a.reviewer)?;
            printable(&format!("{p}.reviewer"), &a.reviewer)?;
            printable(&format!("{p}.comment"), &a.comment)?;
            if !super::approval::is_utc_time(&a.at_utc) {
                return Err(PlanError::invalid(
                    format!("{p}.at_utc"),
                    format!("{:?} is not a UTC time like 2026-12-07T08:15:00Z", a.at_utc),
                ));
            }
            let b = &a.binding;
            sha256_hex(&format!("{p}.binding.sha256"), &b.sha256)?;
            sha256_hex(&format!("{p}.binding.plan_sha256"), &b.plan_sha256)?;
            if let Some(ct) = &b.ct_volume_sha256 {
                sha256_hex(&format!("{p}.binding.ct_volume_sha256"), ct)?;
            }
            for (name, t) in &b.templates {
                sha256_hex(&format!("{p}.binding.templates.{name}.sha256"), &t.sha256)?;
            }
            sha256_hex(&format!("{p}.binding.printers_sha256"), &b.printers_sha256)?;
            sha256_hex(&format!("{p}.binding.screws_sha256"), &b.screws_sha256)?;
            for (part, h) in &b.plan_parts {
                sha256_hex(&format!("{p}.binding.plan_parts.{part}"), h)?;
            }
        }
        Ok(())
    }
}

impl Plan {
    /// The reconstruction's own rules: its planes remove bone, 1 to 4 named segments with proper rotations, settings
    /// in their ranges, a donor with an axis.
    fn validate_reconstruction(&self, r: &Reconstruction) -> Result<(), PlanError> {
        let p = "reconstruction";
        if r.planes.is_empty() || r.planes.len() > 2 {
            return Err(PlanError::invalid(
                format!("{p}.planes"),
                format!(
                    "{} planes; a reconstruction bridges one or two resection planes",
                    r.planes.len()
                ),
            ));
        }
        for (j, name) in r.planes.iter().enumerate() {
            match self.planes.iter().find(|q| &q.name == name) {
                None => {
                    return Err(PlanError::invalid(
                        format!("{p}.planes[{j}]"),
                        format!("no plane named '{name}' in the plan"),
                    ))
                }
                Some(q) if q.resected_side == ResectedSide::None => {
                    return Err(PlanError::invalid(
                        format!("{p}.planes[{j}]"),
                        format!("plane '{name}' removes nothing; a resection plane must remove one side"),
                    ))
                }
                Some(_) => {}
            }
        }
        if r.contour.points_mm.len() < 2 {
            return Err(PlanError::invalid(
                format!("{p}.contour.points_mm"),
                "a contour needs at least 2 points",
            ));
        }
        for (j, q) in r.contour.points_mm.iter().enumerate() {
            finite3(&format!("{p}.contour.points_mm[{j}]"), q)?;
        }
        let length: f64 = r
            .contour
            .points_mm
            .windows(2)
            .map(|w| (0..3).map(|i| (w[1][i] - w[0][i]).powi(2)).sum::<f64>().sqrt())
            .sum();
        if length > crate::flap::MAX_CONTOUR_MM {
            return Err(PlanError::invalid(
                format!("{p}.contour.points_mm"),
                format!(
                    "the contour is {length:.1} mm long, over {} mm",
                    crate::flap::MAX_CONTOUR_MM
                ),
            ));
        }
        finite3(&format!("{p}.arch_inside_mm"), &r.arch_inside_mm)?;
        let f = &r.parameters;
        for (name, v, lo, hi) in [
            ("min_segment_length_mm", f.min_segment_length_mm, 5.0, 150.0),
            ("max_mean_deviation_mm", f.max_mean_deviation_mm, 0.01, 20.0),
            ("max_deviation_mm", f.max_deviation_mm, 0.01, 20.0),
            ("gap_mm", f.gap_mm, 0.0, 30.0),
            ("max_gap_mm", f.max_gap_mm, 0.0, 10.0),
            ("keep_distal_mm", f.keep_distal_mm, 0.0, 200.0),
            ("keep_proximal_mm", f.keep_proximal_mm, 0.0, 200.0),
            ("pedicle_deg", f.pedicle_deg, -180.0, 180.0),
            ("blade_thickness_mm", f.blade_thickness_mm, 0.4, 1.25),
        ] {
            if !(v.is_finite() && (lo..=hi).contains(&v)) {
                return Err(PlanError::invalid(
                    format!("{p}.parameters.{name}"),
                    format!("{v} is outside {lo}..{hi}"),
                ));
            }
        }
        if let Some(o) = f.distal_offset_mm {
            finite(&format!("{p}.parameters.distal_offset_mm"), o)?;
        }
        let d = &r.donor;
        if let Some(ct) = &d.ct {
            non_empty(&format!("{p}.donor.ct.path"), &ct.path)?;
            sha256_hex(&format!("{p}.donor.ct.volume_sha256"), &ct.volume_sha256)?;
        }
        if d.bone.segmentation.is_some() && d.ct.is_none() {
            return Err(PlanError::invalid(
                format!("{p}.donor.bone.segmentation"),
                "a segmentation needs the CT it segments (donor.ct is null)",
            ));
        }
        if d.bone.segmentation.is_none() && d.bone.models.is_empty() {
            return Err(PlanError::invalid(
                format!("{p}.donor.bone"),
                "the donor has neither a segmentation nor models",
            ));
        }
        finite3(&format!("{p}.donor.distal_tip_mm"), &d.distal_tip_mm)?;
        finite3(&format!("{p}.donor.proximal_tip_mm"), &d.proximal_tip_mm)?;
        unit3(&format!("{p}.donor.lateral"), &d.lateral)?;
        positive(&format!("{p}.donor.radius_mm"), d.radius_mm)?;
        if d.axis().length_mm() < 1.0 {
            return Err(PlanError::invalid(
                format!("{p}.donor.proximal_tip_mm"),
                "the donor's tips coincide",
            ));
        }
        if r.segments.is_empty() || r.segments.len() > 4 {
            return Err(PlanError::invalid(
                format!("{p}.segments"),
                format!("{} segments; a reconstruction has 1 to 4", r.segments.len()),
            ));
        }
        let mut names = Names::new("segments");
        for (k, s) in r.segments.iter().enumerate() {
            let sp = format!("{p}.segments[{k}]");
            names.add(&sp, &s.name)?;
            finite3(&format!("{sp}.start_mm"), &s.start_mm)?;
            finite3(&format!("{sp}.end_mm"), &s.end_mm)?;
            finite(&format!("{sp}.donor_start_mm"), s.donor_start_mm)?;
            finite3(
                &format!("{sp}.mandible_from_donor.translation_mm"),
                &s.mandible_from_donor.translation_mm,
            )?;
            let e = s.mandible_from_donor.orthonormality_error();
            if e.is_nan() || e > 1e-9 {
                return Err(PlanError::invalid(
                    format!("{sp}.mandible_from_donor.rotation"),
                    format!("not a rotation (off by {e:.2e})"),
                ));
            }
            for (j, q) in s.fixation_mm.iter().enumerate() {
                finite3(&format!("{sp}.fixation_mm[{j}]"), q)?;
            }
            let apart = |a: [f64; 3], b: [f64; 3]| (0..3).map(|i| (a[i] - b[i]).powi(2)).sum::<f64>().sqrt();
            if apart(s.start_mm, s.end_mm) < 1.0 {
                return Err(PlanError::invalid(
                    format!("{sp}.end_mm"),
                    "a segment's ends must be at least 1 mm apart",
                ));
            }
            if let Some(next) = r.segments.get(k + 1) {
                if apart(s.end_mm, next.start_mm) > 1e-6 {
                    return Err(PlanError::invalid(
                        format!("{p}.segments[{}].start_mm", k + 1),
                        format!("must be segment {}'s end (the segments follow one another)", s.name),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The names seen so far within one kind, to refuse duplicates.
struct Names<'a> {
    kind: &'static str,
    seen: BTreeSet<&'a str>,
}

impl<'a> Names<'a> {
    fn new(kind: &'static str) -> Self {
        Names {
            kind,
            seen: BTreeSet::new(),
        }
    }

    /// Checks `name` (at `{path}.name`) and records it.
    fn add(&mut self, path: &str, name: &'a str) -> Result<(), PlanError> {
        let p = format!("{path}.name");
        check_name(&p, name)?;
        if !self.seen.insert(name) {
            return Err(PlanError::invalid(
                p,
                format!("duplicate name '{name}' (names are unique within {})", self.kind),
            ));
        }
        Ok(())
    }

    fn contains(&self, name: &str) -> bool {
        self.seen.contains(name)
    }
}

/// An element name: non-empty, at most [`NAME_MAX_CHARS`] characters, no control characters.
pub(crate) fn check_name(path: &str, name: &str) -> Result<(), PlanError> {
    non_empty(path, name)?;
    if name.chars().count() > NAME_MAX_CHARS {
        return Err(PlanError::invalid(
            path,
            format!("name '{name}' is longer than {NAME_MAX_CHARS} characters"),
        ));
    }
    printable(path, name)
}

fn references(path: &str, refs: &[String], known: &Names<'_>, kind: &str) -> Result<(), PlanError> {
    let mut seen = BTreeSet::new();
    for (j, r) in refs.iter().enumerate() {
        if !known.contains(r) {
            return Err(PlanError::invalid(
                format!("{path}[{j}]"),
                format!("no {kind} named '{r}' in the plan"),
            ));
        }
        if !seen.insert(r.as_str()) {
            return Err(PlanError::invalid(
                format!("{path}[{j}]"),
                format!("{kind} '{r}' listed twice"),
            ));
        }
    }
    Ok(())
}

fn non_empty(path: &str, s: &str) -> Result<(), PlanError> {
    if s.is_empty() {
        return Err(PlanError::invalid(path, "must not be empty"));
    }
    Ok(())
}

fn printable(path: &str, s: &str) -> Result<(), PlanError> {
    if s.chars().any(char::is_control) {
        return Err(PlanError::invalid(path, format!("{s:?} holds a control character")));
    }
    Ok(())
}

fn sha256_hex(path: &str, s: &str) -> Result<(), PlanError> {
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(PlanError::invalid(
            path,
            format!("'{s}' is not a SHA-256 (64 lower-case hex digits)"),
        ));
    }
    Ok(())
}

fn finite(path: &str, v: f64) -> Result<(), PlanError> {
    if !v.is_finite() {
        return Err(PlanError::invalid(path, format!("{v} is not a finite number")));
    }
    Ok(())
}

fn finite3(path: &str, v: &[f64; 3]) -> Result<(), PlanError> {
    if !v.iter().all(|x| x.is_finite()) {
        return Err(PlanError::invalid(path, format!("{v:?} is not finite")));
    }
    Ok(())
}

fn positive(path: &str, v: f64) -> Result<(), PlanError> {
    finite(path, v)?;
    if v <= 0.0 {
        return Err(PlanError::invalid(path, format!("{v} must be positive")));
    }
    Ok(())
}

fn non_negative(path: &str, v: f64) -> Result<(), PlanError> {
    finite(path, v)?;
    if v < 0.0 {
        return Err(PlanError::invalid(path, format!("{v} must not be negative")));
    }
    Ok(())
}

/// A value in `range`, mm. The blade and drill ranges are the ones the guide's tolerance model accepts
/// (`template::tolerance`), so a plan that passes here is not refused by `build` for its instruments.
fn in_range(path: &str, v: f64, range: &std::ops::RangeInclusive<f64>) -> Result<(), PlanError> {
    finite(path, v)?;
    if !range.contains(&v) {
        return Err(PlanError::invalid(
            path,
            format!("{v} is outside {}..={} mm", range.start(), range.end()),
        ));
    }
    Ok(())
}

/// A unit vector: finite, and its length within [`UNIT_LENGTH_TOLERANCE`] of 1.
pub(crate) fn unit3(path: &str, v: &[f64; 3]) -> Result<(), PlanError> {
    finite3(path, v)?;
    let len = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
    if (len - 1.0).abs() > UNIT_LENGTH_TOLERANCE {
        return Err(PlanError::invalid(path, format!("not a unit vector (length {len:.3})")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_vectors_within_the_tolerance_only() {
        assert!(unit3("n", &[0.0, 0.0, 1.0]).is_ok());
        assert!(unit3("n", &[0.0, 0.0, 1.0 + 0.5 * UNIT_LENGTH_TOLERANCE]).is_ok());
        let e = unit3("planes[0].normal", &[0.0, 2.0, 0.0]).err().map(|e| e.to_string());
        assert_eq!(e.as_deref(), Some("planes[0].normal: not a unit vector (length 2.000)"));
        assert!(unit3("n", &[0.0, 0.0, 1.0 + 3.0 * UNIT_LENGTH_TOLERANCE]).is_err());
        assert!(unit3("n", &[0.0, 0.0, 0.0]).is_err());
        assert!(unit3("n", &[f64::NAN, 0.0, 1.0]).is_err());
    }

    #[test]
    fn names_and_hashes() {
        assert!(check_name("x.name", "Le Fort I").is_ok());
        assert!(check_name("x.name", "").is_err());
        assert!(check_name("x.name", "a\tb").is_err());
        assert!(check_name("x.name", &"é".repeat(64)).is_ok());
        assert!(check_name("x.name", &"é".repeat(65)).is_err());
        assert!(sha256_hex("h", &"0a".repeat(32)).is_ok());
        assert!(sha256_hex("h", &"0A".repeat(32)).is_err());
        assert!(sha256_hex("h", &"0a".repeat(31)).is_err());
    }
}
