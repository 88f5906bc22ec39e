//! Guide templates, printer profiles, the tolerance model and the solid template parts.

mod common;

use std::collections::BTreeMap;

use guidesmith::mesh::{Mesh, MeshReport};
use guidesmith::template::parts::{
    barrel, circle_segments, circumradius_mm, cylinder_tool, fixation_boss, slot_housing, slot_slab, Barrel,
    CylinderTool, SleevePocket, SlotHousing, SlotSlab, CHORD_TOLERANCE_MM,
};
use guidesmith::template::{
    builtin_printers, builtin_template, builtin_templates, load_template_folder, GuideKind, Template, TemplateError,
    BUILTIN_TEMPLATE_FILES,
};
use proptest::prelude::*;

const CUTTING: &str = BUILTIN_TEMPLATE_FILES[0].1;

fn sla() -> guidesmith::template::PrinterProfile {
    builtin_printers()
        .expect("builtin printers")
        .get("sla")
        .expect("sla")
        .clone()
}

fn assert_valid(mesh: &Mesh, what: &str) -> MeshReport {
    let report = MeshReport::new(mesh);
    assert!(report.is_valid(), "{what}: {report}");
    assert_eq!(report.components, 1, "{what}: {report}");
    report
}

/// Exact volume of a prism whose cross-section is the regular n-gon with flats at `r`.
fn polygon_area_mm2(r: f64, n: usize) -> f64 {
    n as f64 * r * r * (std::f64::consts::PI / n as f64).tan()
}

/// Triangle planes with their outward normals: (unit normal, offset) with normal . p = offset.
fn planes(mesh: &Mesh) -> Vec<([f64; 3], f64)> {
    mesh.triangles
        .iter()
        .map(|t| {
            let [a, b, c] = t.map(|i| mesh.positions[i as usize]);
            let u = [b[0] - a[0], b[1] - a[1], b[2] - a[2]];
            let v = [c[0] - a[0], c[1] - a[1], c[2] - a[2]];
            let n = [
                u[1] * v[2] - u[2] * v[1],
                u[2] * v[0] - u[0] * v[2],
                u[0] * v[1] - u[1] * v[0],
            ];
            let len = (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt();
            let n = [n[0] / len, n[1] / len, n[2] / len];
            (n, n[0] * a[0] + n[1] * a[1] + n[2] * a[2])
        })
        .collect()
}

// ---------------------------------------------------------------- templates

#[test]
fn every_builtin_template_parses_and_resolves_with_every_printer() {
    let templates = builtin_templates().expect("builtin templates are valid");
    let kinds: Vec<GuideKind> = templates.iter().map(|t| t.kind).collect();
    assert_eq!(kinds, [GuideKind::Cutting, GuideKind::Drill, GuideKind::Combined]);
    let printers = builtin_printers().expect("builtin printers");
    for t in &templates {
        assert_eq!(t.version, "1.1.0");
        for spec in t.parameters.values() {
            assert!(!spec.doc.is_empty() && spec.min <= spec.max);
        }
        for profile in printers.profiles.values() {
            let r = t.resolve(&BTreeMap::new(), profile).expect("defaults resolve");
            assert_eq!(r.tolerance.bone_offset_mm, profile.bone_offset_mm);
            assert_eq!(r.tolerance.printer_clearance_mm, profile.printer_clearance_mm);
            assert_eq!(r.slot.is_some(), t.kind != GuideKind::Drill, "{}", t.name);
            assert_eq!(r.drill.is_some(), t.kind != GuideKind::Cutting, "{}", t.name);
            assert_eq!(r.pad_thickness_mm, 4.0);
            assert_eq!(r.parameters.len(), t.parameters.len());
            assert!(r.parameters.iter().all(|p| p.unit == t.parameters[&p.name].unit));
        }
    }
    let fdm = printers.get("fdm").expect("fdm");
    let r = builtin_template("cutting_guide")
        .expect("exists")
        .resolve(&BTreeMap::new(), fdm)
        .expect("resolves");
    assert_eq!(r.tolerance.bone_offset_mm, 0.4);
    let slot = r.slot.expect("cutting guide has slots");
    assert_eq!(
        (slot.slot_depth_mm, r.fixation.hole_count, r.fixation.hole_diameter_mm),
        (12.0, 2, 2.2)
    );
}

#[test]
fn unknown_builtin_name_lists_the_available_ones() {
    let err = builtin_template("cuting_guide").expect_err("typo").to_string();
    assert!(err.contains("cutting_guide, drill_guide, combined_guide"), "{err}");
}

#[test]
fn bad_toml_names_file_and_line() {
    let text = CUTTING.replace("kind = \"cutting\"", "kind = cutting");
    let err = Template::from_toml_str(&text, "x.toml").expect_err("bare word is not TOML");
    match &err {
        TemplateError::Syntax { file, line, .. } => assert_eq!((file.as_str(), *line), ("x.toml", 5)),
        other => panic!("expected a syntax error, got {other}"),
    }
}

#[test]
fn unknown_key_in_a_parameter_table_names_its_path() {
    let text = CUTTING.replacen("min = 3.0", "min = 3.0\nminimum = 2.0", 1);
    let err = Template::from_toml_str(&text, "x.toml")
        .expect_err("unknown field")
        .to_string();
    assert!(err.starts_with("x.toml: parameters.pad_thickness_mm"), "{err}");
    assert!(err.contains("unknown field `minimum`"), "{err}");
}

#[test]
fn unknown_top_level_key_and_unknown_parameter_are_refused() {
    let text = CUTTING.replacen("version = \"1.1.0\"", "version = \"1.1.0\"\nauthor = \"x\"", 1);
    let err = Template::from_toml_str(&text, "x.toml")
        .expect_err("unknown field")
        .to_string();
    assert!(err.contains("unknown field `author`"), "{err}");
    let text = format!(
        "{CUTTING}\n[parameters.slot_depht_mm]\nunit = \"mm\"\ndefault = 12.0\nmin = 10.0\nmax = 15.0\ndoc = \"x\"\n"
    );
    let err = Template::from_toml_str(&text, "x.toml")
        .expect_err("unknown parameter")
        .to_string();
    assert!(
        err.starts_with("x.toml: parameters.slot_depht_mm: unknown parameter"),
        "{err}"
    );
    assert!(err.contains("slot_depth_mm"), "{err}");
}

#[test]
fn invalid_values_in_a_template_name_their_key() {
    let cases = [
        (
            CUTTING.replacen("default = 12.0", "default = 20.0", 1),
            "parameters.slot_depth_mm.default: 20 mm is outside the range 10..=15 mm",
        ),
        (
            CUTTING.replacen("version = \"1.1.0\"", "version = \"1.0\"", 1),
            "version: \"1.0\" is not MAJOR.MINOR.PATCH",
        ),
        (
            CUTTING.replacen("schema_version = 1", "schema_version = 2", 1),
            "schema_version: version 2 is not supported",
        ),
        (
            CUTTING.replacen("unit = \"count\"", "unit = \"mm\"", 1),
            "parameters.fixation_hole_count.unit",
        ),
        (
            CUTTING.replacen("default = 4.0", "default = \"printer\"", 1),
            "parameters.pad_thickness_mm.default",
        ),
    ];
    for (text, expected) in cases {
        let err = Template::from_toml_str(&text, "x.toml")
            .expect_err(expected)
            .to_string();
        assert!(err.contains(expected), "expected {expected:?} in {err:?}");
    }
    // A template without a parameter its kind needs.
    let start = CUTTING.find("[parameters.slot_wall_mm]").expect("present");
    let end = CUTTING[start..].find("\n\n").expect("table ends") + start;
    let text = format!("{}{}", &CUTTING[..start], &CUTTING[end..]);
    let err = Template::from_toml_str(&text, "x.toml")
        .expect_err("slot_wall_mm missing")
        .to_string();
    assert!(err.contains("parameters.slot_wall_mm: missing"), "{err}");
}

#[test]
fn overrides_are_checked_by_name_range_unit_and_against_each_other() {
    let t = builtin_template("combined_guide").expect("exists");
    let p = sla();
    let with =
        |pairs: &[(&str, f64)]| -> BTreeMap<String, f64> { pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect() };
    let err = t
        .resolve(&with(&[("slot_width_mm", 1.0)]), &p)
        .expect_err("unknown")
        .to_string();
    assert!(
        err.contains("unknown parameter \"slot_width_mm\"") && err.contains("slot_depth_mm"),
        "{err}"
    );
    let err = t
        .resolve(&with(&[("pad_thickness_mm", 7.5)]), &p)
        .expect_err("range")
        .to_string();
    assert!(
        err.contains("pad_thickness_mm = 7.5 mm is outside its allowed range 3..=6 mm"),
        "{err}"
    );
    let err = t
        .resolve(&with(&[("fixation_hole_count", 2.5)]), &p)
        .expect_err("count")
        .to_string();
    assert!(err.contains("whole number"), "{err}");
    let err = t
        .resolve(&with(&[("min_wall_mm", 3.0), ("slot_wall_mm", 2.5)]), &p)
        .expect_err("wall")
        .to_string();
    assert!(
        err.contains("slot_wall_mm = 2.5 mm is below min_wall_mm = 3 mm"),
        "{err}"
    );
    let err = t
        .resolve(
            &with(&[("sleeve_pocket_diameter_mm", 4.0), ("sleeve_pocket_depth_mm", 9.0)]),
            &p,
        )
        .expect_err("pocket deeper than the barrel")
        .to_string();
    assert!(err.contains("sleeve_pocket_depth_mm = 9 mm"), "{err}");
    let err = t
        .resolve(&with(&[("bone_offset_mm", f64::NAN)]), &p)
        .expect_err("nan")
        .to_string();
    assert!(err.contains("bone_offset_mm = NaN"), "{err}");

    let r = t
        .resolve(
            &with(&[
                ("bone_offset_mm", 0.3),
                ("sleeve_pocket_diameter_mm", 4.0),
                ("sleeve_pocket_depth_mm", 3.0),
            ]),
            &p,
        )
        .expect("valid overrides");
    assert_eq!(r.tolerance.bone_offset_mm, 0.3);
    assert_eq!(r.tolerance.printer_clearance_mm, 0.1);
    let drill = r.drill.expect("combined has barrels");
    assert_eq!(
        (drill.sleeve_pocket_diameter_mm, drill.sleeve_pocket_depth_mm),
        (Some(4.0), 3.0)
    );
}

#[test]
fn a_printer_default_outside_the_template_range_is_an_error() {
    let t = builtin_template("drill_guide").expect("exists");
    let mut p = sla();
    p.printer_clearance_mm = 0.6;
    let err = t.resolve(&BTreeMap::new(), &p).expect_err("0.6 > 0.5").to_string();
    assert!(
        err.contains("printer_clearance_mm = 0.6 mm") && err.contains("from printer profile \"sla\""),
        "{err}"
    );
}

#[test]
fn folder_loading_keeps_good_files_and_lists_bad_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (file, text) in BUILTIN_TEMPLATE_FILES {
        std::fs::write(dir.path().join(file), text).expect("write");
    }
    std::fs::write(dir.path().join("broken.toml"), "name = ").expect("write");
    std::fs::write(dir.path().join("zz_copy.toml"), CUTTING).expect("write");
    std::fs::write(dir.path().join("printers.toml"), "not a template").expect("write");
    std::fs::write(dir.path().join("notes.txt"), "ignored").expect("write");
    let got = load_template_folder(dir.path()).expect("folder readable");
    let names: Vec<&str> = got.templates.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["combined_guide", "cutting_guide", "drill_guide"]);
    let skipped: Vec<String> = got.skipped.iter().map(|s| s.error.to_string()).collect();
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert!(skipped[0].contains("broken.toml"), "{skipped:?}");
    assert!(
        skipped[1].contains("zz_copy.toml: name: \"cutting_guide\" is already defined"),
        "{skipped:?}"
    );
    assert!(load_template_folder(&dir.path().join("missing")).is_err());
}

// ---------------------------------------------------------------- parts

fn housing(cut: f64, width: f64, wall: f64, overhang: f64, depth: f64) -> SlotHousing {
    SlotHousing {
        cut_length_mm: cut,
        slot_width_mm: width,
        slot_wall_mm: wall,
        slot_overhang_mm: overhang,
        depth_mm: depth,
    }
}

#[test]
fn slot_housing_from_the_template_has_the_exact_slot() {
    let r = builtin_template("cutting_guide")
        .expect("exists")
        .resolve(&BTreeMap::new(), &sla())
        .expect("resolves");
    let slot = r.slot.expect("slots");
    let width = r.tolerance.slot_width_mm(0.9).expect("blade ok");
    assert!((width - 1.1).abs() < 1e-12);
    let h = housing(
        25.0,
        width,
        slot.slot_wall_mm,
        slot.slot_overhang_mm,
        slot.slot_depth_mm,
    );
    let mesh = slot_housing(&h).expect("housing builds");
    let report = assert_valid(&mesh, "slot housing");
    // Slot faces: every vertex not on the outer wall is exactly at y = +/- width / 2 (planar, mid-plane y = 0).
    let outer_y = 0.5 * width + slot.slot_wall_mm;
    for p in &mesh.positions {
        assert!(
            p[1].abs() == outer_y || (p[1].abs() - 0.5 * width).abs() <= 1e-9,
            "{p:?}"
        );
        assert!(p[2] == 0.0 || (p[2] - slot.slot_depth_mm).abs() <= 1e-9, "{p:?}");
    }
    // Triangles facing into the slot lie on the planes y = +/- width / 2 to 1e-9 mm and cover the cut length.
    // (n . p = d with n = -/+y at y = +/- width / 2, so d = -width / 2: the normal points into the slot.)
    let slot_planes: Vec<_> = planes(&mesh).into_iter().filter(|(n, _)| n[1].abs() > 0.5).collect();
    let inner: Vec<_> = slot_planes.iter().filter(|(_, d)| d.abs() < outer_y - 1e-6).collect();
    assert_eq!(inner.len(), 4, "two triangles per slot face");
    for (n, d) in inner {
        assert!(
            (d + 0.5 * width).abs() <= 1e-9 && (n[1].abs() - 1.0).abs() <= 1e-12,
            "slot face {n:?} {d}"
        );
    }
    let bb = report.bounding_box.expect("non-empty");
    assert_eq!(
        bb.size_mm(),
        [25.0 + 2.0 * slot.slot_overhang_mm, 2.0 * outer_y, slot.slot_depth_mm]
    );
    let expected = ((25.0 + 2.0 * slot.slot_overhang_mm) * 2.0 * outer_y - 25.0 * width) * slot.slot_depth_mm;
    assert!(
        (report.volume_mm3 - expected).abs() <= 1e-9 * expected,
        "{} vs {expected}",
        report.volume_mm3
    );
}

#[test]
fn barrel_bore_is_never_narrower_and_volume_matches() {
    let r = builtin_template("drill_guide")
        .expect("exists")
        .resolve(&BTreeMap::new(), &sla())
        .expect("resolves");
    let d = r.drill.expect("barrels");
    let channel = r.tolerance.channel_diameter_mm(1.5).expect("drill ok");
    assert!((channel - 1.8).abs() < 1e-12);
    let b = Barrel {
        bore_diameter_mm: channel,
        wall_mm: d.barrel_wall_mm,
        length_mm: d.barrel_length_mm,
        sleeve_pocket: None,
        segments: None,
    };
    let mesh = barrel(&b).expect("barrel builds");
    let report = assert_valid(&mesh, "barrel");
    let (r_in, r_out) = (0.5 * channel, 0.5 * channel + d.barrel_wall_mm);
    let n = circle_segments(r_out, CHORD_TOLERANCE_MM);
    // Bore faces (normal toward the axis): their distance from the axis is at least the nominal radius.
    let mut bore_faces = 0;
    for (nrm, off) in planes(&mesh) {
        if nrm[2].abs() < 1e-9 && off < 0.0 {
            bore_faces += 1;
            assert!(-off >= r_in - 1e-12, "bore flat at {} < {r_in}", -off);
            assert!((-off - r_in).abs() <= 1e-9);
        }
    }
    assert_eq!(bore_faces, 2 * n);
    // Vertices: bore ring at the circumradius, outer ring too; heights exactly 0 and the length.
    for p in &mesh.positions {
        let rad = p[0].hypot(p[1]);
        let on_bore = (rad - circumradius_mm(r_in, n)).abs() <= 1e-9;
        let on_outer = (rad - circumradius_mm(r_out, n)).abs() <= 1e-9;
        assert!(on_bore || on_outer, "{p:?}");
        assert!(p[2] == 0.0 || p[2] == d.barrel_length_mm, "{p:?}");
        assert!(circumradius_mm(r_out, n) - r_out <= CHORD_TOLERANCE_MM);
    }
    let exact = (polygon_area_mm2(r_out, n) - polygon_area_mm2(r_in, n)) * d.barrel_length_mm;
    assert!(
        (report.volume_mm3 - exact).abs() <= 1e-9 * exact,
        "{} vs {exact}",
        report.volume_mm3
    );
    // Against the round barrel: larger, by at most the polygon's excess (tan(x)/x - 1 with x = pi / n).
    let round = std::f64::consts::PI * (r_out * r_out - r_in * r_in) * d.barrel_length_mm;
    let x = std::f64::consts::PI / n as f64;
    assert!(report.volume_mm3 >= round * (1.0 - 1e-12));
    assert!(report.volume_mm3 <= round * x.tan() / x * (1.0 + 1e-12));
    // The same inputs give the same mesh.
    assert_eq!(barrel(&b).expect("again"), mesh);
}

#[test]
fn barrel_with_sleeve_pocket_has_the_step_where_planned() {
    let b = Barrel {
        bore_diameter_mm: 1.8,
        wall_mm: 2.0,
        length_mm: 10.0,
        sleeve_pocket: Some(SleevePocket {
            diameter_mm: 4.0,
            depth_mm: 4.0,
        }),
        segments: None,
    };
    let mesh = barrel(&b).expect("pocket barrel builds");
    let report = assert_valid(&mesh, "pocket barrel");
    let n = circle_segments(4.0, CHORD_TOLERANCE_MM);
    let zs: std::collections::BTreeSet<u64> = mesh.positions.iter().map(|p| p[2].to_bits()).collect();
    let zs: Vec<f64> = zs.into_iter().map(f64::from_bits).collect();
    assert_eq!(zs, [0.0, 6.0, 10.0]);
    let a = |r: f64| polygon_area_mm2(r, n);
    let exact = (a(4.0) - a(0.9)) * 6.0 + (a(4.0) - a(2.0)) * 4.0;
    assert!(
        (report.volume_mm3 - exact).abs() <= 1e-9 * exact,
        "{} vs {exact}",
        report.volume_mm3
    );
    // The pocket's flats are at least its nominal radius from the axis.
    for (nrm, off) in planes(&mesh) {
        if nrm[2].abs() < 1e-9 && off < 0.0 {
            assert!(-off >= 0.9 - 1e-12);
        }
    }
    let bad = Barrel {
        sleeve_pocket: Some(SleevePocket {
            diameter_mm: 4.0,
            depth_mm: 10.0,
        }),
        ..b
    };
    assert!(barrel(&bad)
        .expect_err("pocket through the barrel")
        .to_string()
        .contains("sleeve_pocket.depth_mm"));
    let bad = Barrel {
        sleeve_pocket: Some(SleevePocket {
            diameter_mm: 1.0,
            depth_mm: 3.0,
        }),
        ..b
    };
    assert!(barrel(&bad).is_err(), "pocket narrower than the bore");
}

#[test]
fn fixation_boss_and_tools_are_closed_and_exact() {
    let boss = fixation_boss(2.2, 2.0, 5.0).expect("boss");
    assert_valid(&boss, "fixation boss");

    let slab = slot_slab(&SlotSlab {
        length_mm: 31.0,
        width_mm: 1.1,
        z_min_mm: -7.5,
        z_max_mm: 14.0,
    })
    .expect("slab");
    let report = assert_valid(&slab, "slot slab");
    for p in &slab.positions {
        assert_eq!(p[1].abs(), 0.55, "{p:?}");
        assert_eq!(p[0].abs(), 15.5, "{p:?}");
    }
    let bb = report.bounding_box.expect("non-empty");
    assert!((bb.min_mm[2] + 7.5).abs() <= 1e-12 && (bb.max_mm[2] - 14.0).abs() <= 1e-12);
    assert!((report.volume_mm3 - 31.0 * 1.1 * 21.5).abs() <= 1e-9);

    let tool = CylinderTool {
        diameter_mm: 2.2,
        z_min_mm: -6.0,
        z_max_mm: 12.0,
        segments: None,
    };
    let mesh = cylinder_tool(&tool).expect("cylinder");
    let report = assert_valid(&mesh, "cylinder tool");
    let n = circle_segments(1.1, CHORD_TOLERANCE_MM);
    for (nrm, off) in planes(&mesh) {
        if nrm[2].abs() < 1e-9 {
            assert!((off - 1.1).abs() <= 1e-9, "flat at {off}");
        }
    }
    let exact = polygon_area_mm2(1.1, n) * 18.0;
    assert!((report.volume_mm3 - exact).abs() <= 1e-9 * exact);
    // A caller-chosen segment count (to match a barrel's bore) is used as given.
    let matched = cylinder_tool(&CylinderTool {
        segments: Some(40),
        ..tool
    })
    .expect("40 segments");
    assert_eq!(matched.positions.len(), 80);
    assert!(cylinder_tool(&CylinderTool {
        segments: Some(3),
        ..tool
    })
    .is_err());
}

#[test]
fn bad_dimensions_are_refused_with_the_field_name() {
    let err = slot_housing(&housing(25.0, f64::NAN, 3.0, 3.0, 12.0))
        .expect_err("nan width")
        .to_string();
    assert!(err.contains("slot housing: slot_width_mm = NaN mm"), "{err}");
    let err = slot_slab(&SlotSlab {
        length_mm: 10.0,
        width_mm: 1.0,
        z_min_mm: 5.0,
        z_max_mm: 5.0,
    })
    .expect_err("empty z range")
    .to_string();
    assert!(err.contains("z_max_mm"), "{err}");
    assert!(fixation_boss(2.2, -1.0, 5.0).is_err());
}

proptest! {
    #![proptest_config(common::proptest_config(24))]

    #[test]
    fn slot_housings_are_valid_across_the_ranges(
        cut in 5.0f64..60.0, blade in 0.4f64..=1.25, clearance in 0.0f64..=0.5,
        wall in 1.5f64..6.0, overhang in 1.5f64..10.0, depth in 10.0f64..=15.0,
    ) {
        let width = blade + 2.0 * clearance;
        let mesh = slot_housing(&housing(cut, width, wall, overhang, depth)).expect("builds");
        let report = MeshReport::new(&mesh);
        prop_assert!(report.is_valid(), "{}", report);
        for p in &mesh.positions {
            prop_assert!(p[1].abs() == 0.5 * width + wall || p[1].abs() == 0.5 * width);
        }
    }

    #[test]
    fn barrels_are_valid_across_the_ranges(
        drill in 0.5f64..=6.0, clearance in 0.0f64..=0.8, wall in 1.5f64..5.0, length in 5.0f64..20.0,
        pocket in prop::option::of((0.2f64..3.0, 0.05f64..0.95)),
    ) {
        let bore = drill + clearance;
        let sleeve_pocket = pocket.map(|(extra, frac)| SleevePocket { diameter_mm: bore + extra, depth_mm: frac * length });
        let b = Barrel { bore_diameter_mm: bore, wall_mm: wall, length_mm: length, sleeve_pocket, segments: None };
        let mesh = barrel(&b).expect("builds");
        let report = MeshReport::new(&mesh);
        prop_assert!(report.is_valid(), "{}", report);
        prop_assert!(report.volume_mm3 > 0.0);
    }

    #[test]
    fn tools_are_valid_across_the_ranges(
        d in 0.5f64..8.0, z0 in -20.0f64..0.0, h in 1.0f64..40.0, w in 0.4f64..2.5, len in 5.0f64..80.0,
    ) {
        let c = cylinder_tool(&CylinderTool { diameter_mm: d, z_min_mm: z0, z_max_mm: z0 + h, segments: None }).expect("cylinder");
        prop_assert!(MeshReport::new(&c).is_valid());
        let s = slot_slab(&SlotSlab { length_mm: len, width_mm: w, z_min_mm: z0, z_max_mm: z0 + h }).expect("slab");
        prop_assert!(MeshReport::new(&s).is_valid());
    }
}

/// Tessellation timings per part (no assertion on time): `cargo test --release --test templates -- --ignored
/// --nocapture part_timings`.
#[test]
#[ignore = "prints timings; run in release by hand"]
fn part_timings() {
    const RUNS: u32 = 50;
    let time = |name: &str, f: &dyn Fn() -> Mesh| {
        let start = std::time::Instant::now();
        let mut triangles = 0;
        for _ in 0..RUNS {
            triangles = f().triangles.len();
        }
        let ms = start.elapsed().as_secs_f64() * 1e3 / f64::from(RUNS);
        println!("{name:<24} {triangles:>6} triangles {ms:>8.3} ms");
    };
    time("slot housing", &|| {
        slot_housing(&housing(25.0, 1.1, 3.0, 3.0, 12.0)).expect("ok")
    });
    time("barrel 1.8/2 x 8", &|| {
        barrel(&Barrel {
            bore_diameter_mm: 1.8,
            wall_mm: 2.0,
            length_mm: 8.0,
            sleeve_pocket: None,
            segments: None,
        })
        .expect("ok")
    });
    time("barrel with pocket", &|| {
        let pocket = Some(SleevePocket {
            diameter_mm: 4.0,
            depth_mm: 4.0,
        });
        barrel(&Barrel {
            bore_diameter_mm: 1.8,
            wall_mm: 2.0,
            length_mm: 10.0,
            sleeve_pocket: pocket,
            segments: None,
        })
        .expect("ok")
    });
    time("fixation boss 2.2", &|| fixation_boss(2.2, 2.0, 5.0).expect("ok"));
    time("slot slab", &|| {
        slot_slab(&SlotSlab {
            length_mm: 31.0,
            width_mm: 1.1,
            z_min_mm: -8.0,
            z_max_mm: 14.0,
        })
        .expect("ok")
    });
    time("drill channel 1.8", &|| {
        cylinder_tool(&CylinderTool {
            diameter_mm: 1.8,
            z_min_mm: -8.0,
            z_max_mm: 12.0,
            segments: None,
        })
        .expect("ok")
    });
}

/// Every corner of the combined template's ranges (each slot and barrel parameter at its min or max, with the
/// thinnest and thickest blade and drill, and the pocket at its extremes) gives valid parts.
#[test]
fn parts_at_the_template_range_corners_are_valid() {
    let t = builtin_template("combined_guide").expect("exists");
    let spec = |name: &str| {
        let s = &t.parameters[name];
        [s.min, s.max]
    };
    let printer = builtin_printers().expect("printers");
    for profile in [printer.get("sla").expect("sla"), printer.get("fdm").expect("fdm")] {
        for depth in spec("slot_depth_mm") {
            for wall in spec("slot_wall_mm") {
                for overhang in spec("slot_overhang_mm") {
                    let overrides: BTreeMap<String, f64> = [
                        ("slot_depth_mm", depth),
                        ("slot_wall_mm", wall),
                        ("slot_overhang_mm", overhang),
                        ("min_wall_mm", 2.0),
                    ]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect();
                    let r = t.resolve(&overrides, profile).expect("corner resolves");
                    let slot = r.slot.expect("slots");
                    for blade in [0.4, 1.25] {
                        let width = r.tolerance.slot_width_mm(blade).expect("blade ok");
                        let h = housing(
                            20.0,
                            width,
                            slot.slot_wall_mm,
                            slot.slot_overhang_mm,
                            slot.slot_depth_mm,
                        );
                        assert_valid(&slot_housing(&h).expect("housing"), "corner housing");
                    }
                }
            }
        }
        for length in spec("barrel_length_mm") {
            for wall in spec("barrel_wall_mm") {
                for pocket_d in [0.0, spec("sleeve_pocket_diameter_mm")[1]] {
                    let mut overrides: BTreeMap<String, f64> = [
                        ("barrel_length_mm", length),
                        ("barrel_wall_mm", wall),
                        ("min_wall_mm", 1.5),
                    ]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect();
                    if pocket_d > 0.0 {
                        overrides.insert("sleeve_pocket_diameter_mm".into(), pocket_d);
                        overrides.insert("sleeve_pocket_depth_mm".into(), 0.5 * length);
                    }
                    let r = t.resolve(&overrides, profile).expect("corner resolves");
                    let d = r.drill.expect("barrels");
                    for drill in [0.5, 6.0] {
                        let channel = r.tolerance.channel_diameter_mm(drill).expect("drill ok");
                        let sleeve_pocket =
                            d.sleeve_pocket_diameter_mm
                                .filter(|&p| p > channel)
                                .map(|p| SleevePocket {
                                    diameter_mm: p,
                                    depth_mm: d.sleeve_pocket_depth_mm,
                                });
                        let b = Barrel {
                            bore_diameter_mm: channel,
                            wall_mm: d.barrel_wall_mm,
                            length_mm: d.barrel_length_mm,
                            sleeve_pocket,
                            segments: None,
                        };
                        assert_valid(&barrel(&b).expect("barrel"), "corner barrel");
                    }
                }
            }
        }
    }
}
