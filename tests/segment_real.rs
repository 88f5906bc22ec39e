//! Segmentation of the real cranium against the reference values of the data README.

mod common;

use guidesmith::progress::NoProgress;
use guidesmith::segment::{self, HuRange, Keep, SegmentRecipe, Step};

#[test]
fn cranium_bone_preset_keeps_exactly_the_reference_voxels() {
    let Some(dir) = common::data("ct/cranium-0051") else {
        return;
    };
    let (volume, _) = guidesmith::volume::load(&dir, None, &NoProgress).expect("load");
    let bone: HuRange = "bone".parse().expect("preset");
    assert_eq!((bone.min_hu(), bone.max_hu()), (226, 3071));
    let mask = segment::threshold(&volume.geometry, &volume.hu, bone).expect("threshold");
    // InVesalius' own mask agrees voxel for voxel with the plain threshold.
    assert_eq!(mask.count(), 475_759);
    // Keeping the largest component removes the loose bits (table, small fragments) but keeps most of the skull.
    let mut recipe = SegmentRecipe::new(bone);
    recipe.keep = Keep::Largest;
    let (largest, stats) = recipe.apply(&volume.geometry, &volume.hu).expect("recipe");
    assert_eq!(stats.voxels_after(Step::Threshold), Some(475_759));
    let kept = largest.count();
    assert!(kept < 475_759 && kept > 400_000, "largest component has {kept} voxels");
    assert!(stats.components_found.unwrap_or(0) > 1);
}
