//! Patient-specific guides: a contact pad that follows the bone, template parts placed as the request says, the
//! anatomy, saw slots, drill channels and screw holes subtracted, and every result checked before it may be written.
//!
//! A guide is built from a [`build::GuideRequest`] (resolved template parameters, slots, channels, seating direction,
//! footprint) on a bone mesh; it knows nothing of plans, files or renders, which the case layer (`crate::case`)
//! joins. Every refusal and every failed check is a [`crate::finding::Finding`] with its code and place.

pub mod build;
pub mod check;
mod clip;
pub mod footprint;
pub mod heightfield;
pub mod pad;
pub mod propose;
pub mod seating;
