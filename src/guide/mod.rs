//! Patient-specific guides: a contact pad that follows the bone, template parts placed from the plan, the anatomy,
//! saw slots, drill channels and screw holes subtracted, and every result checked before it may be written.

pub mod build;
pub mod check;
mod clip;
pub mod footprint;
pub mod heightfield;
pub mod pad;
pub mod pipeline;
