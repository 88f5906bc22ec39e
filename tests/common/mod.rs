//! Shared helpers of the integration tests: where the real data lives.
#![allow(dead_code)]

use std::path::PathBuf;

/// The bone surface of a synthetic phantom sampled on `geometry`: the product chain (threshold 300 HU, largest
/// component, cavities filled, closed surface), as the guide tests build on it.
pub fn phantom_bone(
    phantom: &guidesmith::synth::Phantom,
    geometry: guidesmith::grid::GridGeometry,
) -> guidesmith::mesh::Mesh {
    use guidesmith::segment::{HuRange, Keep, SegmentRecipe};
    let hu = phantom.sample(&geometry).expect("sample the phantom");
    let volume = guidesmith::volume::Volume {
        geometry,
        hu,
        series: guidesmith::volume::SeriesInfo::default(),
    };
    let mut recipe = SegmentRecipe::new(HuRange::new(300, 3071).expect("range"));
    recipe.keep = Keep::Largest;
    recipe.fill_cavities = true;
    guidesmith::bone::extract_bone(
        &volume,
        &recipe,
        &guidesmith::bone::SurfaceOptions::default(),
        &guidesmith::progress::NoProgress,
    )
    .expect("bone")
    .mesh
}

#[path = "../../src/testing.rs"]
mod testing;
// Not every test file has property tests.
#[allow(unused_imports)]
pub use testing::{data, data_dir, proptest_config, PROPTEST_SEED};

/// What a guide of a plan came to, confirmed from its own mesh independently of the checker's verdict.
#[derive(Debug, Clone, PartialEq)]
pub enum Verified {
    /// Passed every check, and the solid is valid, one piece, outward, on the plan, clear of the bone.
    Passed,
    /// Refused before it was built, for a problem of the plan (the code says which).
    Refused(guidesmith::finding::FindingCode),
    /// Built, failed these checks, each confirmed by measuring the mesh again.
    Failed(Vec<guidesmith::finding::FindingCode>),
}

/// Confirms `planned`'s outcome from its mesh: a pass is re-verified (valid closed solid, one piece, positive
/// volume, walls, slots and channels against the tolerances, no overlap with the bone, removable); a refusal must be
/// a plan problem with its code; a failed check must be true of the mesh. `Err` says what the checker got wrong.
pub fn verify_guide(
    bone: &guidesmith::mesh::Mesh,
    planned: &guidesmith::case::PlannedGuide,
) -> Result<Verified, String> {
    use guidesmith::case::GuideOutcome;
    use guidesmith::finding::FindingCode as C;
    use guidesmith::guide::check::{
        CHANNEL_ANGLE_TOL_DEG, CHANNEL_OFFSET_TOL_MM, SLOT_ANGLE_TOL_DEG, SLOT_OFFSET_TOL_MM, SLOT_WIDTH_TOL_MM,
    };
    use guidesmith::mesh::MeshReport;
    let (built, check) = match &planned.outcome {
        GuideOutcome::Refused(f) => {
            if !f.code.is_plan_problem() {
                return Err(format!("{}: refused for a reason of the engine: {f}", planned.name));
            }
            if f.element != format!("guides/{}", planned.name) {
                return Err(format!("{}: the refusal names {} instead", planned.name, f.element));
            }
            return Ok(Verified::Refused(f.code));
        }
        GuideOutcome::Built { guide, check } => (guide, check),
    };
    let report = MeshReport::new(&built.mesh);
    let slots_ok = check.slots.len() == built.slots.len()
        && check.slots.iter().all(|s| {
            s.offset_mm.abs() <= SLOT_OFFSET_TOL_MM
                && s.angle_deg <= SLOT_ANGLE_TOL_DEG
                && (s.width_mm - s.expected_width_mm).abs() <= SLOT_WIDTH_TOL_MM
        });
    let channels_ok = check.channels.len() == built.channels.len()
        && check
            .channels
            .iter()
            .all(|c| c.offset_mm <= CHANNEL_OFFSET_TOL_MM && c.angle_deg <= CHANNEL_ANGLE_TOL_DEG);
    let walls_ok = check.walls.thinnest_mm >= built.params.min_wall_mm - 1e-3;
    // The seating play measured again from the mesh's underside, against the template's thresholds.
    let allowed = &built.params.seating;
    let play = guidesmith::guide::seating::seating_play(
        bone,
        &built.frame,
        &guidesmith::guide::check::contact_points(built),
        built.pad.contact.spacing_mm,
    );
    let seating_ok = play.as_ref() == check.seating.as_ref()
        && play.as_ref().is_some_and(|p| {
            p.translation_mm.is_some_and(|t| t <= allowed.max_play_mm)
                && p.rotation_deg.is_some_and(|r| r <= allowed.max_play_deg)
        });
    if check.passed {
        let fail = |what: String| Err(format!("{}: passed its checks but {what}", planned.name));
        if !report.is_valid() {
            return fail(format!("the mesh is not valid: {report}"));
        }
        if report.components != 1 {
            return fail(format!("it is in {} pieces", report.components));
        }
        if built.mesh.signed_volume_mm3() <= 0.0 {
            return fail("its volume is not positive (inward normals)".into());
        }
        if !walls_ok {
            return fail(format!("a wall is {:.3} mm", check.walls.thinnest_mm));
        }
        if !slots_ok || !channels_ok {
            return fail(format!(
                "a slot or channel is off the plan: {:?} {:?}",
                check.slots, check.channels
            ));
        }
        if !seating_ok {
            return fail(format!(
                "its seating play {play:?} is beyond {allowed:?} or not the one reported"
            ));
        }
        if check.contact.inside_bone != 0 || check.blocked_on_removal != 0 {
            return fail(format!(
                "it overlaps the bone or cannot be removed: {:?}",
                check.contact
            ));
        }
        return Ok(Verified::Passed);
    }
    let mut codes = Vec::new();
    for f in &check.findings {
        let confirmed = match f.code {
            C::GuideNotClosed => {
                report.boundary_edges.count
                    + report.non_manifold_edges.count
                    + report.inconsistent_edges.count
                    + report.non_manifold_vertices.count
                    + report.invalid_triangles.count
                    > 0
            }
            C::GuideInward => report.inward_components.count > 0,
            C::GuideSelfIntersecting => report.self_intersections.count > 0,
            C::GuideDegenerateTriangles => report.degenerate_triangles.count > 0,
            C::GuideInPieces => report.components != 1,
            C::SlotOffPlan => !slots_ok,
            C::ChannelOffPlan => !channels_ok || check.channels.iter().any(|c| !c.ok),
            C::ContactGapTooSmall => !check.contact.ok,
            C::GuideInsideBone => check.contact.inside_bone > 0,
            C::RemovalBlocked => check.blocked_on_removal > 0,
            C::WallTooThin => !walls_ok,
            C::GuideSeatingLoose => !seating_ok,
            other => {
                return Err(format!(
                    "{}: a check reported the code {other}, which is not a check",
                    planned.name
                ))
            }
        };
        if !confirmed {
            return Err(format!("{}: the finding {f} is not true of the mesh", planned.name));
        }
        if f.element != format!("guides/{}", planned.name) {
            return Err(format!("{}: the finding names {} instead", planned.name, f.element));
        }
        codes.push(f.code);
    }
    if codes.is_empty() {
        return Err(format!("{}: failed without a finding", planned.name));
    }
    Ok(Verified::Failed(codes))
}

/// Runs the `guidesmith` binary with `--quiet` and `args`.
pub fn guidesmith_quiet(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_guidesmith"))
        .arg("--quiet")
        .args(args)
        .output()
        .expect("run guidesmith")
}

/// The demo case written by `guidesmith demo` into a new temporary folder: the folder and the demo's folder in it.
pub fn demo_case() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let demo = tmp.path().join("demo");
    let out = guidesmith_quiet(&["demo", "-o", demo.to_str().expect("utf-8")]);
    assert!(out.status.success(), "demo: {}", String::from_utf8_lossy(&out.stderr));
    (tmp, demo)
}

/// One mesh node of a glTF read back with the `gltf` crate.
#[allow(dead_code)]
pub struct GltfNode {
    /// Its group (the node above it).
    pub group: String,
    /// Its name.
    pub name: String,
    /// Its triangles as read (f32 positions widened).
    pub mesh: guidesmith::mesh::Mesh,
    /// Its material's base colour.
    pub colour_rgba: [f32; 4],
}

/// A `.glb` read with the `gltf` crate (a reader independent of guidesmith's writer): the root node's name, rotation
/// (x, y, z, w) and scale, and every mesh node under the groups. Panics with the reader's error on an invalid file.
#[allow(dead_code)]
pub fn read_glb(bytes: &[u8]) -> (String, [f32; 4], [f32; 3], Vec<GltfNode>) {
    let glb = gltf::Gltf::from_slice(bytes).expect("a valid glTF binary");
    let blob = glb.blob.as_deref().expect("a binary chunk");
    let scene = glb.default_scene().expect("a default scene");
    let roots: Vec<_> = scene.nodes().collect();
    assert_eq!(roots.len(), 1, "one root node");
    let root = &roots[0];
    let (_, rotation, scale) = root.transform().decomposed();
    let mut nodes = Vec::new();
    for group in root.children() {
        for node in group.children() {
            let mesh = node.mesh().expect("a mesh node");
            let mut positions = Vec::new();
            let mut triangles = Vec::new();
            let mut colour_rgba = [0.0; 4];
            for prim in mesh.primitives() {
                let reader = prim.reader(|_| Some(blob));
                let base = positions.len() as u32;
                positions.extend(reader.read_positions().expect("positions").map(|p| p.map(f64::from)));
                let idx: Vec<u32> = reader.read_indices().expect("indices").into_u32().collect();
                triangles.extend(idx.chunks(3).map(|t| [t[0] + base, t[1] + base, t[2] + base]));
                colour_rgba = prim.material().pbr_metallic_roughness().base_color_factor();
            }
            nodes.push(GltfNode {
                group: group.name().unwrap_or_default().to_string(),
                name: node.name().unwrap_or_default().to_string(),
                mesh: guidesmith::mesh::Mesh::new(positions, triangles).expect("valid triangles"),
                colour_rgba,
            });
        }
    }
    (root.name().unwrap_or_default().to_string(), rotation, scale, nodes)
}

/// The text of a PDF as `pdftotext -layout` extracts it (poppler-utils, installed by `.ci/run`): an independent
/// reader of the report.
#[allow(dead_code)]
pub fn pdf_text(pdf: &[u8]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("in.pdf");
    std::fs::write(&path, pdf).expect("write pdf");
    let out = std::process::Command::new("pdftotext")
        .args(["-layout", "-enc", "UTF-8"])
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils; .ci/run installs it)");
    assert!(
        out.status.success(),
        "pdftotext: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 text")
}

/// Whether `xvfb-run` is here (under CI it must be: `.ci/run` installs it; elsewhere its absence is said loudly).
pub fn has_xvfb() -> bool {
    let found = std::process::Command::new("sh")
        .args(["-c", "command -v xvfb-run"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "xvfb-run is missing under CI: .ci/run must install xvfb"
        );
        eprintln!("SKIPPED: xvfb-run not found (apt-get install xvfb xauth mesa-vulkan-drivers)");
    }
    found
}

/// A PNG's width, height and RGBA pixels.
pub fn read_png(path: &std::path::Path) -> (u32, u32, Vec<u8>) {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("a frame");
    assert_eq!(info.color_type, png::ColorType::Rgba);
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

/// Runs `guidesmith gui ARGS --screenshot PNG` as a real window under Xvfb (1600 x 1000, wgpu on lavapipe) and
/// returns its stderr (which lists the window's messages); panics if the window does not close cleanly.
pub fn window_screenshot(args: &[&std::ffi::OsStr], png: &std::path::Path) -> String {
    let runtime = png.with_extension("xdg");
    std::fs::create_dir_all(&runtime).expect("runtime folder");
    // `timeout`: a window waiting for input would otherwise hang the test run.
    let out = std::process::Command::new("timeout")
        .args(["900", "xvfb-run", "-a", "-s", "-screen 0 1600x1000x24"])
        .arg(env!("CARGO_BIN_EXE_guidesmith"))
        .arg("gui")
        .args(args)
        .arg("--screenshot")
        .arg(png)
        .env("WGPU_BACKEND", "vulkan")
        .env("XDG_RUNTIME_DIR", &runtime)
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .expect("xvfb-run starts");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "the window did not close cleanly: {stderr}");
    stderr
}
