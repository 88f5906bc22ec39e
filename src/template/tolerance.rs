//! The named tolerance model: each allowance that used to hide in one "offset", with the rule it feeds.

use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

use super::TemplateError;

/// Saw blade thicknesses accepted, mm: sagittal / oscillating CMF blades run from 0.4 mm (fine) to 1.25 mm
/// (heavy reciprocating); anything outside is almost certainly a unit or typing mistake.
pub const BLADE_THICKNESS_RANGE_MM: RangeInclusive<f64> = 0.4..=1.25;

/// Drill diameters accepted, mm: CMF pilot drills run from about 0.8 mm (1.0 system) to 2.0 mm; 0.5..=6 mm also
/// covers K-wires and larger orthopaedic drills while still catching unit mistakes (a diameter of 20 is cm or a typo).
pub const DRILL_DIAMETER_RANGE_MM: RangeInclusive<f64> = 0.5..=6.0;

/// The allowances between bone, instruments and a printed guide, all in mm.
///
/// Rules (all clearances are *per side*, so a diameter or width grows by twice the clearance):
/// - slot width = blade thickness + 2 x `printer_clearance_mm`;
/// - drill channel diameter = drill diameter + 2 x (`printer_clearance_mm` + `drill_clearance_mm`): the printer
///   clearance makes the printed hole come out at the drill's size, the drill clearance is the running play that lets
///   the drill turn freely without losing its direction;
/// - the contact pad keeps `bone_offset_mm` from the bone surface.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToleranceModel {
    /// Gap between the bone surface and the contact pad (periosteum, segmentation error), mm.
    pub bone_offset_mm: f64,
    /// Per-side clearance for the printer's undersize holes and slots, mm.
    pub printer_clearance_mm: f64,
    /// Per-side running play of a drill in its channel, mm (0 for guides without barrels).
    pub drill_clearance_mm: f64,
}

fn check(what: &'static str, value_mm: f64, range: &RangeInclusive<f64>) -> Result<(), TemplateError> {
    if value_mm.is_finite() && range.contains(&value_mm) {
        Ok(())
    } else {
        Err(TemplateError::Instrument {
            what,
            value_mm,
            min_mm: *range.start(),
            max_mm: *range.end(),
        })
    }
}

impl ToleranceModel {
    /// Width of the saw slot for a blade: blade + 2 x printer clearance. The blade must be within
    /// [`BLADE_THICKNESS_RANGE_MM`].
    pub fn slot_width_mm(&self, blade_thickness_mm: f64) -> Result<f64, TemplateError> {
        check("blade thickness", blade_thickness_mm, &BLADE_THICKNESS_RANGE_MM)?;
        Ok(blade_thickness_mm + 2.0 * self.printer_clearance_mm)
    }

    /// Diameter of a drill channel: drill + 2 x (printer clearance + drill clearance). The drill must be within
    /// [`DRILL_DIAMETER_RANGE_MM`].
    pub fn channel_diameter_mm(&self, drill_diameter_mm: f64) -> Result<f64, TemplateError> {
        check("drill diameter", drill_diameter_mm, &DRILL_DIAMETER_RANGE_MM)?;
        Ok(drill_diameter_mm + 2.0 * (self.printer_clearance_mm + self.drill_clearance_mm))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SLA: ToleranceModel = ToleranceModel {
        bone_offset_mm: 0.25,
        printer_clearance_mm: 0.1,
        drill_clearance_mm: 0.05,
    };

    #[test]
    fn slot_is_blade_plus_two_clearances() {
        let w = SLA.slot_width_mm(0.9).expect("0.9 mm blade is valid");
        assert!((w - 1.1).abs() < 1e-12, "{w}");
        assert!(SLA.slot_width_mm(0.4).is_ok() && SLA.slot_width_mm(1.25).is_ok());
        let err = SLA.slot_width_mm(1.3).expect_err("1.3 mm is too thick").to_string();
        assert_eq!(err, "blade thickness 1.3 mm is outside 0.4..=1.25 mm");
        assert!(SLA.slot_width_mm(f64::NAN).is_err());
    }

    #[test]
    fn channel_is_drill_plus_both_clearances_per_side() {
        let d = SLA.channel_diameter_mm(1.5).expect("1.5 mm drill is valid");
        assert!((d - 1.8).abs() < 1e-12, "{d}");
        assert!(SLA.channel_diameter_mm(0.0).is_err());
        assert!(SLA.channel_diameter_mm(20.0).is_err());
    }
}
