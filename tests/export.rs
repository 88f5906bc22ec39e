//! Export for print labs: STL per guide, one 3MF, manifest with hashes; reproducible bytes; only the case ID.

mod shapes;

use std::fs::File;
use std::io::Read;
use std::path::Path;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use guidesmith::export::{
    export_guides, read_manifest, sha256_hex, Attachment, ExportError, ExportInfo, GuideExport, Release,
    MANIFEST_FILE_NAME, THREE_MF_MODEL_PATH,
};
use guidesmith::mesh::Mesh;
use guidesmith::template::{builtin_printers, builtin_template, ParameterSource, ResolvedParams};
use serde_json::json;

/// Parameters of the two test guides: a cutting guide planned for SLA with a thicker pad, built on an FDM printer
/// (a print lab's override); a drill guide with the defaults for SLA.
fn params() -> &'static (ResolvedParams, ResolvedParams) {
    static PARAMS: OnceLock<(ResolvedParams, ResolvedParams)> = OnceLock::new();
    PARAMS.get_or_init(|| {
        let printers = builtin_printers().expect("printers");
        let cutting = builtin_template("cutting_guide")
            .expect("template")
            .resolve(
                &BTreeMap::from([("pad_thickness_mm".to_string(), 5.0)]),
                printers.get("fdm").expect("fdm"),
            )
            .expect("resolves");
        let drilling = builtin_template("drill_guide")
            .expect("template")
            .resolve(&BTreeMap::new(), printers.get("sla").expect("sla"))
            .expect("resolves");
        (cutting, drilling)
    })
}

const PLAN_SHA: &str = "3f1a9c0d5e7b2a4c6e8f0a1b3c5d7e9f1a2b3c4d5e6f708192a3b4c5d6e7f809";

fn approved() -> &'static Release {
    static APPROVED: OnceLock<Release> = OnceLock::new();
    // Approved in another year than the clock's, so the test below can tell the approval's time (an input) from a
    // time stamp the export would add.
    APPROVED.get_or_init(|| Release::Approved {
        surgeon: "Dr S".into(),
        at_utc: "2001-02-03T04:05:06Z".into(),
        design_sha256: "d".repeat(64),
    })
}

fn info(case_id: &str) -> ExportInfo<'_> {
    ExportInfo {
        case_id,
        plan_sha256: PLAN_SHA,
        software_version: env!("CARGO_PKG_VERSION"),
        release: approved(),
    }
}

#[test]
fn a_draft_says_so_in_every_file_name_the_stl_header_the_3mf_title_and_the_manifest() {
    let (cutting, drilling) = guide_meshes();
    let dir = tempfile::tempdir().expect("tempdir");
    let draft = Release::Draft {
        design_sha256: "e".repeat(64),
    };
    let mut i = info("case-17");
    i.release = &draft;
    let summary = export_guides(dir.path(), &i, &guides(&cutting, &drilling), &[]).expect("export");
    let names: Vec<String> = summary
        .files
        .iter()
        .map(|f| f.path.file_name().expect("name").to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "case-17_LeFort-cutting_DRAFT.stl",
            "case-17_drill_guide__2_DRAFT.stl",
            "case-17_guides_DRAFT.3mf"
        ]
    );
    let stl = std::fs::read(dir.path().join(&names[0])).expect("stl");
    assert!(String::from_utf8_lossy(&stl[..80]).contains("DRAFT"));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("manifest.json")).expect("manifest")).expect("json");
    assert_eq!(manifest["release"]["status"], "draft");
    assert_eq!(manifest["release"]["design_sha256"], "e".repeat(64));
}

/// A cutting-guide-sized box and a drilling-guide-sized sphere away from the origin (patient mm).
fn guide_meshes() -> (Mesh, Mesh) {
    (
        shapes::box_mesh([-31.5, -82.25, 10.0], [8.5, -70.25, 22.5]),
        shapes::icosphere([12.0, -60.0, -5.0], 7.5, 3),
    )
}

fn guides<'a>(cutting: &'a Mesh, drilling: &'a Mesh) -> Vec<GuideExport<'a>> {
    vec![
        GuideExport {
            name: "LeFort-cutting",
            mesh: cutting,
            params: &params().0,
            printer_in_plan: "sla",
            checks: json!({"min_wall_mm": 2.1, "seats": true, "notes": ["fits"]}),
        },
        GuideExport {
            name: "drill guide #2",
            mesh: drilling,
            params: &params().1,
            printer_in_plan: "sla",
            checks: json!({"min_wall_mm": 3.0, "seats": true}),
        },
    ]
}

fn sorted_dir(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .expect("list export folder")
        .map(|e| {
            let e = e.expect("entry");
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).expect("read exported file"),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn manifest_lists_every_file_with_its_hash_size_and_the_guides_measures() {
    let (cutting, drilling) = guide_meshes();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("export");
    let summary = export_guides(&out, &info("case-17"), &guides(&cutting, &drilling), &[]).expect("export");

    let on_disk = sorted_dir(&out);
    let names: Vec<&str> = on_disk.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "case-17_LeFort-cutting.stl",
            "case-17_drill_guide__2.stl",
            "case-17_guides.3mf",
            MANIFEST_FILE_NAME
        ],
        "exactly the files, no temporary leftovers"
    );

    let manifest = read_manifest(&summary.manifest.path).expect("manifest parses");
    assert_eq!(manifest.files.len(), 3);
    for f in &manifest.files {
        let bytes = std::fs::read(out.join(&f.name)).expect("listed file exists");
        assert_eq!(sha256_hex(&bytes), f.sha256, "{}", f.name);
        assert_eq!(bytes.len() as u64, f.size_bytes, "{}", f.name);
    }
    for (listed, written) in manifest.files.iter().zip(&summary.files) {
        assert_eq!(out.join(&listed.name), written.path);
        assert_eq!(listed.sha256, written.sha256);
    }
    let manifest_bytes = std::fs::read(&summary.manifest.path).expect("manifest");
    assert_eq!(sha256_hex(&manifest_bytes), summary.manifest.sha256);
    assert!(manifest_bytes.ends_with(b"}\n"), "pretty with a trailing newline");
    assert_eq!(manifest.units, "millimetre");
    assert_eq!(manifest.coordinate_frame, "DICOM patient LPS");
    assert_eq!(manifest.plan_sha256, PLAN_SHA);
    assert_eq!(manifest.software_version, env!("CARGO_PKG_VERSION"));

    let [cut, drill] = &manifest.guides[..] else {
        panic!("two guides in the manifest: {:?}", manifest.guides)
    };
    assert_eq!(cut.name, "LeFort-cutting");
    assert_eq!(cut.triangle_count, 12);
    assert!(
        (cut.volume_mm3 - 40.0 * 12.0 * 12.5).abs() < 1e-9,
        "box volume {}",
        cut.volume_mm3
    );
    assert_eq!(cut.bounding_box.min_mm, [-31.5, -82.25, 10.0]);
    assert_eq!(cut.bounding_box.max_mm, [8.5, -70.25, 22.5]);
    assert_eq!(
        cut.checks,
        json!({"min_wall_mm": 2.1, "seats": true, "notes": ["fits"]})
    );
    // Every resolved parameter with its unit and source; the printer override next to the plan's printer.
    assert_eq!((cut.template.as_str(), cut.printer.as_str()), ("cutting_guide", "fdm"));
    assert_eq!(cut.printer_in_plan, "sla");
    assert_eq!(cut.parameters, params().0.parameters);
    let value = |name: &str| cut.parameters.iter().find(|p| p.name == name).expect("listed");
    assert_eq!(value("pad_thickness_mm").value, 5.0);
    assert_eq!(value("pad_thickness_mm").source, ParameterSource::Plan);
    assert_eq!(value("bone_offset_mm").value, 0.4);
    assert_eq!(value("bone_offset_mm").source, ParameterSource::Printer);
    assert_eq!(value("fixation_hole_count").unit, "count");
    assert_eq!(value("slot_depth_mm").unit, "mm");
    assert_eq!(value("slot_depth_mm").source, ParameterSource::Default);
    assert_eq!(drill.printer, drill.printer_in_plan);
    assert_eq!(drill.triangle_count, drilling.triangle_count());
    assert_eq!(drill.stl_file, "case-17_drill_guide__2.stl");
    let ball_mm3 = 4.0 / 3.0 * std::f64::consts::PI * 7.5f64.powi(3);
    assert!(
        drill.volume_mm3 < ball_mm3 && drill.volume_mm3 > 0.97 * ball_mm3,
        "inscribed polyhedron volume {} vs ball {ball_mm3}",
        drill.volume_mm3
    );
    // Key order is the declared order, not alphabetical: the format line comes first.
    let text = String::from_utf8(manifest_bytes).expect("utf-8");
    assert!(text.starts_with("{\n  \"format\": "), "{}", &text[..40]);
}

#[test]
fn guide_stl_reads_back_through_stl_io_with_a_dateless_header() {
    let (cutting, drilling) = guide_meshes();
    let dir = tempfile::tempdir().expect("tempdir");
    export_guides(dir.path(), &info("case-17"), &guides(&cutting, &drilling), &[]).expect("export");
    for (file, mesh, name) in [
        ("case-17_LeFort-cutting.stl", &cutting, "LeFort-cutting"),
        ("case-17_drill_guide__2.stl", &drilling, "drill guide #2"),
    ] {
        let path = dir.path().join(file);
        let bytes = std::fs::read(&path).expect("stl");
        assert_eq!(bytes.len(), 84 + 50 * mesh.triangle_count(), "binary STL layout");
        let header = String::from_utf8_lossy(&bytes[..80]);
        assert_eq!(
            header.trim_end(),
            format!("guidesmith {} case case-17 guide {name}", env!("CARGO_PKG_VERSION"))
        );
        let read = stl_io::read_stl(&mut File::open(&path).expect("open")).expect("stl_io reads it");
        assert_eq!(read.faces.len(), mesh.triangle_count());
        for (face, tri) in read.faces.iter().zip(&mesh.triangles) {
            for (&vi, &mi) in face.vertices.iter().zip(tri) {
                let expect = mesh.positions[mi as usize].map(|c| c as f32);
                assert_eq!(read.vertices[vi].0, expect, "vertex {mi} of {file}");
            }
        }
    }
}

#[test]
fn three_mf_reads_back_with_the_same_objects_triangles_and_vertices() {
    let (cutting, drilling) = guide_meshes();
    let dir = tempfile::tempdir().expect("tempdir");
    export_guides(dir.path(), &info("case-17"), &guides(&cutting, &drilling), &[]).expect("export");
    let path = dir.path().join("case-17_guides.3mf");

    let models = threemf::read(File::open(&path).expect("open 3mf")).expect("threemf reads it");
    let [model] = &models[..] else {
        panic!("one model part, got {}", models.len())
    };
    assert!(matches!(model.unit, threemf::model::Unit::Millimeter));
    let objects = &model.resources.object;
    assert_eq!(objects.len(), 2);
    for (object, (mesh, name)) in objects
        .iter()
        .zip([(&cutting, "LeFort-cutting"), (&drilling, "drill guide #2")])
    {
        assert_eq!(object.name.as_deref(), Some(name));
        let m = object.mesh.as_ref().expect("object has a mesh");
        assert_eq!(m.triangles.triangle.len(), mesh.triangle_count());
        assert_eq!(m.vertices.vertex.len(), mesh.vertex_count());
        for (v, p) in m.vertices.vertex.iter().zip(&mesh.positions) {
            assert_eq!([v.x, v.y, v.z], *p, "f64 positions round-trip exactly");
        }
        for (t, e) in m.triangles.triangle.iter().zip(&mesh.triangles) {
            assert_eq!([t.v1, t.v2, t.v3], e.map(|i| i as usize));
        }
    }
    assert_eq!(model.build.item.len(), 2);
    let meta = |key: &str| {
        model
            .metadata
            .iter()
            .find(|m| m.name == key)
            .and_then(|m| m.value.clone())
            .unwrap_or_default()
    };
    let description = meta("Description");
    for needle in ["case-17", "LeFort-cutting", "drill guide #2", PLAN_SHA] {
        assert!(description.contains(needle), "{needle} in {description}");
    }
    assert_eq!(meta("Application"), format!("guidesmith {}", env!("CARGO_PKG_VERSION")));

    // The package parts and their fixed timestamps.
    let mut zip = zip::ZipArchive::new(File::open(&path).expect("open")).expect("zip");
    let mut names = Vec::new();
    for i in 0..zip.len() {
        let entry = zip.by_index(i).expect("entry");
        let when = entry.last_modified().expect("timestamp");
        assert_eq!((when.year(), when.month(), when.day()), (1980, 1, 1));
        names.push(entry.name().expect("entry name").to_string());
    }
    assert_eq!(names, ["[Content_Types].xml", "_rels/.rels", THREE_MF_MODEL_PATH]);
    let mut rels = String::new();
    zip.by_name("_rels/.rels")
        .expect("rels")
        .read_to_string(&mut rels)
        .expect("read rels");
    assert!(rels.contains("Target=\"/3D/3dmodel.model\""), "{rels}");
}

#[test]
fn two_exports_are_byte_identical_wherever_they_are_written() {
    let (cutting, drilling) = guide_meshes();
    let dir = tempfile::tempdir().expect("tempdir");
    let a = dir.path().join("first");
    let b = dir.path().join("second/nested");
    export_guides(&a, &info("case-17"), &guides(&cutting, &drilling), &[]).expect("export a");
    export_guides(&b, &info("case-17"), &guides(&cutting, &drilling), &[]).expect("export b");
    let first = sorted_dir(&a);
    assert_eq!(first, sorted_dir(&b));
    // Again into the same folder (replacing the files) gives the same bytes too.
    export_guides(&a, &info("case-17"), &guides(&cutting, &drilling), &[]).expect("export a again");
    assert_eq!(first, sorted_dir(&a));
}

fn string_leaves(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(a) => a.iter().for_each(|x| string_leaves(x, out)),
        serde_json::Value::Object(o) => o.values().for_each(|x| string_leaves(x, out)),
        _ => {}
    }
}

#[test]
fn nothing_but_the_case_id_identifies_the_case() {
    let (cutting, drilling) = guide_meshes();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("Doe_John_export");
    let case_id = "CASE-0042";
    let guides = guides(&cutting, &drilling);
    let summary = export_guides(&out, &info(case_id), &guides, &[]).expect("export");

    for (name, _) in sorted_dir(&out) {
        assert!(
            name == MANIFEST_FILE_NAME || name.starts_with("CASE-0042_"),
            "file name {name} holds only the case ID"
        );
    }

    // Every string in the manifest is one we put there on purpose.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary.manifest.path).expect("manifest")).expect("json");
    let mut strings = Vec::new();
    string_leaves(&manifest, &mut strings);
    let mut allowed: Vec<String> = vec![
        guidesmith::export::MANIFEST_FORMAT.into(),
        case_id.into(),
        "guidesmith".into(),
        env!("CARGO_PKG_VERSION").into(),
        PLAN_SHA.into(),
        "millimetre".into(),
        "DICOM patient LPS".into(),
        "fits".into(),
        // The release record it was given.
        "approved".into(),
        "Dr S".into(),
        "2001-02-03T04:05:06Z".into(),
        "d".repeat(64),
    ];
    for f in &summary.files {
        allowed.push(f.sha256.clone());
        allowed.push(f.path.file_name().expect("name").to_string_lossy().into_owned());
    }
    allowed.extend(guides.iter().map(|g| g.name.to_string()));
    // The template, printer and parameter names and units, and where each value came from.
    for g in &guides {
        allowed.extend([
            g.params.template_name.clone(),
            g.params.template_version.clone(),
            g.params.printer.clone(),
            g.printer_in_plan.to_string(),
        ]);
        for p in &g.params.parameters {
            allowed.extend([p.name.clone(), p.unit.clone()]);
            allowed.push(
                serde_json::to_value(p.source)
                    .expect("json")
                    .as_str()
                    .expect("a name")
                    .to_string(),
            );
        }
    }
    for s in &strings {
        assert!(allowed.contains(s), "unexpected string {s:?} in the manifest");
    }

    // No trace of the environment: the output folder, the user, the host, the year.
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    let year = (1970 + secs / 31_556_952).to_string();
    let mut forbidden = vec!["Doe".to_string(), "John".to_string(), year];
    forbidden.push(dir.path().to_string_lossy().into_owned());
    for var in ["USER", "LOGNAME"] {
        if let Some(v) = std::env::var_os(var).filter(|v| v.len() >= 3) {
            forbidden.push(v.to_string_lossy().into_owned());
        }
    }
    if let Ok(host) = std::fs::read_to_string("/etc/hostname") {
        if host.trim().len() >= 3 {
            forbidden.push(host.trim().to_string());
        }
    }
    let mut texts: Vec<String> = strings;
    for f in &summary.files {
        let bytes = std::fs::read(&f.path).expect("file");
        if f.path.extension().is_some_and(|e| e == "stl") {
            texts.push(String::from_utf8_lossy(&bytes[..80]).into_owned());
        }
    }
    let mut zip = zip::ZipArchive::new(File::open(out.join("CASE-0042_guides.3mf")).expect("3mf")).expect("zip");
    for i in 0..zip.len() {
        let mut text = String::new();
        zip.by_index(i).expect("entry").read_to_string(&mut text).expect("xml");
        // Vertex coordinates are numbers and may contain any digit run; everything else is checked.
        texts.extend(text.lines().filter(|l| !l.contains("<vertex ")).map(str::to_string));
    }
    for text in &texts {
        for f in &forbidden {
            assert!(!text.contains(f.as_str()), "{f:?} found in {text:?}");
        }
    }
}

#[test]
fn bad_inputs_are_refused_naming_the_culprit_and_nothing_is_written() {
    let (cutting, drilling) = guide_meshes();
    let dir = tempfile::tempdir().expect("tempdir");

    // A folder that cannot be created: its parent is a file.
    let blocker = dir.path().join("not-a-folder");
    std::fs::write(&blocker, b"x").expect("write blocker");
    let target = blocker.join("export");
    let e = export_guides(&target, &info("c1"), &guides(&cutting, &drilling), &[]).expect_err("unwritable");
    assert!(matches!(e, ExportError::Folder { .. }), "{e}");
    assert!(e.to_string().contains(&target.display().to_string()), "{e}");

    let out = dir.path().join("refused");
    let empty = Mesh::default();
    let mut list = guides(&cutting, &drilling);
    list[1].mesh = &empty;
    let e = export_guides(&out, &info("c1"), &list, &[]).expect_err("empty mesh");
    assert!(e.to_string().contains("drill guide #2"), "{e}");
    assert!(!out.exists(), "nothing written for a refused export");

    let mut list = guides(&cutting, &drilling);
    list[1].name = "LeFort-cutting";
    let e = export_guides(&out, &info("c1"), &list, &[]).expect_err("duplicate");
    assert!(
        matches!(e, ExportError::DuplicateName { ref name } if name == "LeFort-cutting"),
        "{e}"
    );
    assert!(!out.exists());

    let broken = Mesh {
        positions: vec![[0.0; 3]],
        triangles: vec![[0, 0, 5]],
    };
    let mut list = guides(&cutting, &drilling);
    list[0].mesh = &broken;
    let e = export_guides(&out, &info("c1"), &list, &[]).expect_err("bad index");
    assert!(
        e.to_string().contains("LeFort-cutting") && e.to_string().contains("vertex 5"),
        "{e}"
    );

    let e = export_guides(&out, &info("c1"), &[], &[]).expect_err("no guides");
    assert!(matches!(e, ExportError::NoGuides));
    assert!(!out.exists());

    for name in [
        "../escape.png",
        "renders//x.png",
        "c1_guides.3mf",
        MANIFEST_FILE_NAME,
        "renders/a b.png",
    ] {
        let attachment = Attachment {
            name: name.to_string(),
            bytes: vec![1, 2, 3],
        };
        let e = export_guides(&out, &info("c1"), &guides(&cutting, &drilling), &[attachment]).expect_err(name);
        assert!(matches!(e, ExportError::InvalidAttachment { .. }), "{name}: {e}");
        assert!(!out.exists());
    }
}

#[test]
fn attachments_are_written_in_their_folder_and_listed_with_their_hashes() {
    let (cutting, drilling) = guide_meshes();
    let dir = tempfile::tempdir().expect("tempdir");
    let attachment = Attachment {
        name: "renders/case-17_overview.png".to_string(),
        bytes: b"not really a png".to_vec(),
    };
    let summary = export_guides(
        dir.path(),
        &info("case-17"),
        &guides(&cutting, &drilling),
        &[attachment],
    )
    .expect("export");
    let manifest = read_manifest(&summary.manifest.path).expect("manifest");
    let listed = manifest
        .files
        .iter()
        .find(|f| f.name == "renders/case-17_overview.png")
        .expect("the attachment is listed");
    assert_eq!(listed.sha256, sha256_hex(b"not really a png"));
    assert_eq!(
        std::fs::read(dir.path().join("renders/case-17_overview.png")).expect("written"),
        b"not really a png"
    );
    assert_eq!(manifest.files.len(), 4);
}
