//! Findings: what a check found wrong with a plan or a guide, in one shape for every front end.
//!
//! Why one type for the plan's findings and every guide check: the GUI highlights the element a finding concerns and
//! shows its place in the 3D view, the report lists plan and guide findings in one table, and the tests assert the
//! exact check that fired. So a finding carries a stable [`FindingCode`] (never a sentence to match on), the element
//! as `list/name` (`planes/LeFort-R`, `guides/symphysis-cutting`), a message with the numbers, and the place in
//! patient LPS mm where there is one.
//!
//! Each code says who must act ([`FindingCode::is_plan_problem`]): a plan problem is fixed by changing the plan (the
//! message says what); a guide-check failure means the built solid did not meet a rule, and no file is written for
//! it. Codes are listed with their meaning in `docs/CLI.md`.

use serde::{Deserialize, Serialize};

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The plan must not be built as it is, or the guide must not be written.
    Error,
    /// It can be built, but a person should look.
    Warning,
}

/// Stable identifier of a check. Serialised in snake_case (`plane_misses_bone`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingCode {
    // --- the plan measured against the bone ---
    /// A cutting plane's section through the bone is empty.
    PlaneMissesBone,
    /// A contour of a plane's section did not close (the bone mesh is open there).
    PlaneSectionOpen,
    /// The infinite plane also crosses bone away from the piece cut at its point (measured: that piece only).
    PlaneCrossesOtherBone,
    /// A drill's axis does not meet the bone.
    DrillMissesBone,
    /// A drill's planned entry lies deeper in bone than the lead-in.
    DrillStartsInBone,
    /// A drill's tip is more than the allowance past the far cortex.
    DrillOvershoots,
    /// A drill meets the bone far from the surface normal and may skid.
    DrillObliqueEntry,
    /// A drill comes closer to a structure (nerve, vessel, root) than its margin.
    DrillWithinMargin,
    /// A drill's cylinder reaches a cutting plane's blade slab in bone.
    DrillCrossesPlane,
    /// Two drill holes overlap.
    DrillsCollide,
    /// A drill names a screw system the catalogue lacks.
    UnknownScrewSystem,
    /// A drill is not its screw system's pilot drill.
    DrillDiameterDiffers,
    /// No stock length of the screw system fits the drill.
    NoStockScrew,
    /// A guide names a plane or drill the plan lacks.
    GuideReferenceMissing,
    /// A guide names a template that does not exist.
    UnknownTemplate,
    /// A guide names a printer profile that does not exist.
    UnknownPrinter,
    /// A guide's template parameters are refused (out of range, inconsistent, unknown).
    TemplateParameterInvalid,
    /// A flap segment is shorter than the reconstruction's minimum.
    FlapSegmentTooShort,
    /// Two neighbouring donor cuts meet inside the donor bone.
    FlapCutsMeet,
    /// Less donor than the reconstruction keeps is left at a tip.
    FlapDonorEndShort,
    /// Bone ends on the mandible (segment to segment, segment to stump) are farther apart than the limit.
    FlapGapOverLimit,
    /// The segments lie farther from the target contour than the limits.
    FlapDeviationOverLimit,
    /// The segments no longer end on the resection planes (a plane moved since the proposal).
    FlapOutOfDate,

    // --- a guide that cannot be built as planned ---
    /// The seating direction is zero or not finite.
    SeatingDirectionInvalid,
    /// The footprint outline crosses itself, has no area or too few points.
    FootprintInvalid,
    /// The footprint reaches beyond the bone.
    FootprintOffBone,
    /// The bone under the footprint drops away (a hole, or bone parallel to the seating direction).
    FootprintOverDrop,
    /// A cutting plane does not cross the bone inside the footprint.
    PlaneOutsideFootprint,
    /// A cutting plane is tilted too far from the seating direction for a slot.
    PlaneTooTilted,
    /// A drill does not meet the guide's contact surface.
    DrillOutsideFootprint,
    /// A drill is tilted too far from the seating direction for a barrel.
    DrillTooTilted,
    /// The template has no slot housing but the guide serves cutting planes.
    TemplateLacksSlots,
    /// The template has no drill barrels but the guide serves drills.
    TemplateLacksBarrels,
    /// A blade or drill is outside the range the guide's tolerance model accepts.
    InstrumentOutOfRange,
    /// The fixation holes do not fit on the footprint clear of slots, barrels and each other.
    NoRoomForFixationHoles,
    /// The guide's label fits nowhere free and gentle on the pad's top.
    LabelNoRoom,
    /// The geometry engine failed (a boolean, a part, a height field); not a problem of the plan.
    GuideBuildFailed,

    // --- checks of the finished guide solid ---
    /// The solid has open or non-manifold edges or vertices, or inconsistent orientation.
    GuideNotClosed,
    /// A part of the solid is turned inside out.
    GuideInward,
    /// Triangles of the solid intersect.
    GuideSelfIntersecting,
    /// The solid has degenerate (zero-area) triangles.
    GuideDegenerateTriangles,
    /// The guide is in more than one piece.
    GuideInPieces,
    /// A slot's faces are off the planned plane or its width is off.
    SlotOffPlan,
    /// A drill channel's axis is off the planned trajectory or narrower than its bore.
    ChannelOffPlan,
    /// The underside comes closer to the bone than the offset allows.
    ContactGapTooSmall,
    /// Part of the guide lies inside the bone.
    GuideInsideBone,
    /// The guide would hit the bone when lifted off along its seating direction.
    RemovalBlocked,
    /// A wall is thinner than the minimum.
    WallTooThin,
    /// The seated guide can slide or turn on the bone more than its template allows.
    GuideSeatingLoose,
    /// The label is not on the finished guide as placed, or stands too low or too small.
    GuideLabelMissing,
}

impl FindingCode {
    /// Every code, in declaration order.
    pub const ALL: [FindingCode; 50] = [
        FindingCode::PlaneMissesBone,
        FindingCode::PlaneSectionOpen,
        FindingCode::PlaneCrossesOtherBone,
        FindingCode::DrillMissesBone,
        FindingCode::DrillStartsInBone,
        FindingCode::DrillOvershoots,
        FindingCode::DrillObliqueEntry,
        FindingCode::DrillWithinMargin,
        FindingCode::DrillCrossesPlane,
        FindingCode::DrillsCollide,
        FindingCode::UnknownScrewSystem,
        FindingCode::DrillDiameterDiffers,
        FindingCode::NoStockScrew,
        FindingCode::GuideReferenceMissing,
        FindingCode::UnknownTemplate,
        FindingCode::UnknownPrinter,
        FindingCode::TemplateParameterInvalid,
        FindingCode::FlapSegmentTooShort,
        FindingCode::FlapCutsMeet,
        FindingCode::FlapDonorEndShort,
        FindingCode::FlapGapOverLimit,
        FindingCode::FlapDeviationOverLimit,
        FindingCode::FlapOutOfDate,
        FindingCode::SeatingDirectionInvalid,
        FindingCode::FootprintInvalid,
        FindingCode::FootprintOffBone,
        FindingCode::FootprintOverDrop,
        FindingCode::PlaneOutsideFootprint,
        FindingCode::PlaneTooTilted,
        FindingCode::DrillOutsideFootprint,
        FindingCode::DrillTooTilted,
        FindingCode::TemplateLacksSlots,
        FindingCode::TemplateLacksBarrels,
        FindingCode::InstrumentOutOfRange,
        FindingCode::NoRoomForFixationHoles,
        FindingCode::LabelNoRoom,
        FindingCode::GuideBuildFailed,
        FindingCode::GuideNotClosed,
        FindingCode::GuideInward,
        FindingCode::GuideSelfIntersecting,
        FindingCode::GuideDegenerateTriangles,
        FindingCode::GuideInPieces,
        FindingCode::SlotOffPlan,
        FindingCode::ChannelOffPlan,
        FindingCode::ContactGapTooSmall,
        FindingCode::GuideInsideBone,
        FindingCode::RemovalBlocked,
        FindingCode::WallTooThin,
        FindingCode::GuideSeatingLoose,
        FindingCode::GuideLabelMissing,
    ];

    /// The code as written in JSON and printed (`plane_misses_bone`).
    pub fn as_str(self) -> &'static str {
        use FindingCode::*;
        match self {
            PlaneMissesBone => "plane_misses_bone",
            PlaneSectionOpen => "plane_section_open",
            PlaneCrossesOtherBone => "plane_crosses_other_bone",
            DrillMissesBone => "drill_misses_bone",
            DrillStartsInBone => "drill_starts_in_bone",
            DrillOvershoots => "drill_overshoots",
            DrillObliqueEntry => "drill_oblique_entry",
            DrillWithinMargin => "drill_within_margin",
            DrillCrossesPlane => "drill_crosses_plane",
            DrillsCollide => "drills_collide",
            UnknownScrewSystem => "unknown_screw_system",
            DrillDiameterDiffers => "drill_diameter_differs",
            NoStockScrew => "no_stock_screw",
            GuideReferenceMissing => "guide_reference_missing",
            UnknownTemplate => "unknown_template",
            UnknownPrinter => "unknown_printer",
            TemplateParameterInvalid => "template_parameter_invalid",
            FlapSegmentTooShort => "flap_segment_too_short",
            FlapCutsMeet => "flap_cuts_meet",
            FlapDonorEndShort => "flap_donor_end_short",
            FlapGapOverLimit => "flap_gap_over_limit",
            FlapDeviationOverLimit => "flap_deviation_over_limit",
            FlapOutOfDate => "flap_out_of_date",
            SeatingDirectionInvalid => "seating_direction_invalid",
            FootprintInvalid => "footprint_invalid",
            FootprintOffBone => "footprint_off_bone",
            FootprintOverDrop => "footprint_over_drop",
            PlaneOutsideFootprint => "plane_outside_footprint",
            PlaneTooTilted => "plane_too_tilted",
            DrillOutsideFootprint => "drill_outside_footprint",
            DrillTooTilted => "drill_too_tilted",
            TemplateLacksSlots => "template_lacks_slots",
            TemplateLacksBarrels => "template_lacks_barrels",
            InstrumentOutOfRange => "instrument_out_of_range",
            NoRoomForFixationHoles => "no_room_for_fixation_holes",
            LabelNoRoom => "label_no_room",
            GuideBuildFailed => "guide_build_failed",
            GuideNotClosed => "guide_not_closed",
            GuideInward => "guide_inward",
            GuideSelfIntersecting => "guide_self_intersecting",
            GuideDegenerateTriangles => "guide_degenerate_triangles",
            GuideInPieces => "guide_in_pieces",
            SlotOffPlan => "slot_off_plan",
            ChannelOffPlan => "channel_off_plan",
            ContactGapTooSmall => "contact_gap_too_small",
            GuideInsideBone => "guide_inside_bone",
            RemovalBlocked => "removal_blocked",
            WallTooThin => "wall_too_thin",
            GuideSeatingLoose => "guide_seating_loose",
            GuideLabelMissing => "guide_label_missing",
        }
    }

    /// Whether the plan must change to clear this finding (as opposed to a built solid that failed a check, or the
    /// engine failing).
    pub fn is_plan_problem(self) -> bool {
        use FindingCode::*;
        !matches!(
            self,
            GuideBuildFailed
                | GuideNotClosed
                | GuideInward
                | GuideSelfIntersecting
                | GuideDegenerateTriangles
                | GuideInPieces
                | SlotOffPlan
                | ChannelOffPlan
                | ContactGapTooSmall
                | GuideInsideBone
                | RemovalBlocked
                | WallTooThin
                | GuideLabelMissing
        )
    }
}

impl std::fmt::Display for FindingCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One check that fired.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// Which check.
    pub code: FindingCode,
    /// The element, as `list/name` (`planes/LeFort-R`, `drills/D1`, `guides/symphysis-cutting`).
    pub element: String,
    /// What is wrong, with the numbers, in one sentence.
    pub message: String,
    /// Where, in patient LPS mm, when the finding has a place.
    pub place_mm: Option<[f64; 3]>,
}

impl Finding {
    /// An error about `element`.
    pub fn error(code: FindingCode, element: String, message: String) -> Finding {
        Finding {
            severity: Severity::Error,
            code,
            element,
            message,
            place_mm: None,
        }
    }

    /// A warning about `element`.
    pub fn warning(code: FindingCode, element: String, message: String) -> Finding {
        Finding {
            severity: Severity::Warning,
            ..Finding::error(code, element, message)
        }
    }

    /// The same finding placed at `place_mm`.
    pub fn at(mut self, place_mm: [f64; 3]) -> Finding {
        self.place_mm = Some(place_mm);
        self
    }

    /// Whether it is an error.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// The element string of `name` in the plan's list `list` (`element("planes", "R")` is `planes/R`).
pub fn element(list: &str, name: &str) -> String {
    format!("{list}/{name}")
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.code, self.element, self.message)?;
        if let Some(p) = self.place_mm {
            write!(f, " at ({:.1}, {:.1}, {:.1}) mm", p[0], p[1], p[2])?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialise_as_their_names() {
        for code in FindingCode::ALL {
            assert_eq!(
                serde_json::to_value(code).expect("json"),
                serde_json::Value::String(code.as_str().to_string())
            );
        }
        let unique: std::collections::BTreeSet<&str> = FindingCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(unique.len(), FindingCode::ALL.len());
        assert!(FindingCode::NoRoomForFixationHoles.is_plan_problem());
        // Every code is documented for the users who read it in a report or a manifest.
        let cli = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/CLI.md")).expect("docs/CLI.md");
        for code in FindingCode::ALL {
            assert!(cli.contains(&format!("`{code}`")), "docs/CLI.md does not name `{code}`");
        }
        assert!(!FindingCode::GuideSelfIntersecting.is_plan_problem());
    }
}
