//! The plan report: one PDF that says what was planned, on what data, with which numbers, which checks passed, what
//! the guides look like seated on the bone, and who approved it.
//!
//! Why: vendors send a surgeon a design proposal to sign before production, and a print lab and a regulatory file need
//! a readable record of the case next to the machine-checkable bundle. The report is made from the same plan, bone,
//! guides and hashes as the bundle, so what the surgeon reads is what the lab verifies. It carries no patient
//! identifier (the plan holds none; the CT is described by its geometry and the hash of its voxels) and no date but
//! those of the reviews, so the same plan and reviews give the same bytes.

use std::path::Path;

use serde::Serialize;

use super::build::{render_guides, CaseGuides};
use super::CaseError;
use crate::catalogue::Catalogue;
use crate::export::Attachment;
use crate::finding::{Finding, Severity};
use crate::guide::build::BuiltGuide;
use crate::mesh::shapes::{cylinder, plane_patch, polygon_mesh, tube};
use crate::mesh::{grown, Mesh};
use crate::plan::{evaluate, plan_content_sha256, release_approval, ApprovalState, DesignBinding, Evaluation, Plan};
use crate::progress::Progress;
use crate::render::{encode_png, render_views, Scene, View, BONE_COLOUR};
use crate::report::{pdf_bytes, Block, Column, Report, Tone};
use crate::template::builtin_printers;

/// The file name of a case's report.
pub fn report_file_name(case_id: &str) -> String {
    format!("{case_id}_report.pdf")
}

/// The report of `plan` on `bone` with its guides (built or refused), rendering the guides' views itself.
pub fn make_report<'a>(
    plan: &Plan,
    bones: impl Into<super::GuideBones<'a>>,
    guides: &CaseGuides,
    progress: &dyn Progress,
) -> Result<Vec<u8>, CaseError> {
    let bones = bones.into();
    let built: Vec<&BuiltGuide> = guides.guides.iter().filter_map(|g| g.built().map(|(b, _)| b)).collect();
    let renders = render_guides(plan.case_id.as_str(), bones.clone(), &built, progress)?;
    report_pdf(plan, bones.recipient, guides, &renders, progress)
}

/// The report of `plan`, with the guides' review images already rendered (`renders`, as
/// [`render_guides`] makes them: one sheet per guide named after it).
pub fn report_pdf(
    plan: &Plan,
    bone: &Mesh,
    guides: &CaseGuides,
    renders: &[Attachment],
    progress: &dyn Progress,
) -> Result<Vec<u8>, CaseError> {
    let evaluation = evaluate(plan, bone, Catalogue::builtin())?;
    progress.checkpoint()?;
    let case_id = plan.case_id.as_str();
    let now = DesignBinding::of(plan);
    let release = release_approval(plan, &now);
    let mut b: Vec<Block> = Vec::new();
    let para = |t: String| Block::Paragraph(t, Tone::Normal);
    let muted = |t: &str| Block::Paragraph(t.to_string(), Tone::Muted);

    b.push(Block::Title(format!("Surgical plan report: case {case_id}")));
    b.push(match &release {
        Ok(a) => Block::Paragraph(
            format!(
                "APPROVED for production by {} (surgeon) at {}, bound to design {}.",
                a.reviewer, a.at_utc, now.sha256
            ),
            Tone::Good,
        ),
        Err(e) => Block::Paragraph(
            format!("DRAFT: not approved for production ({e}). Guides made from this plan are marked DRAFT."),
            Tone::Error,
        ),
    });
    b.push(muted(
        "Positions are DICOM patient coordinates (LPS: x to the patient's left, y posterior, z superior) in \
         millimetres. The plan holds no patient identifier: the CT is identified by the SHA-256 of its voxels. \
         Every hash below can be recomputed from the print-lab bundle (docs/APPROVAL.md).",
    ));

    // Identification and hashes.
    b.push(Block::Heading("Case, software and hashes".into()));
    let mut fields = vec![
        ("Case ID".to_string(), case_id.to_string()),
        ("Software".to_string(), now.software.clone()),
        ("Plan content SHA-256".to_string(), plan_content_sha256(plan)),
        ("Design SHA-256".to_string(), now.sha256.clone()),
        (
            "CT volume SHA-256".to_string(),
            now.ct_volume_sha256.clone().unwrap_or_else(|| "no CT".into()),
        ),
    ];
    for (name, t) in &now.templates {
        fields.push((
            format!("Template {name}"),
            format!("version {}, SHA-256 {}", t.version, t.sha256),
        ));
    }
    fields.push(("Printer profiles SHA-256".into(), now.printers_sha256.clone()));
    fields.push(("Screw catalogue SHA-256".into(), now.screws_sha256.clone()));
    b.push(Block::Fields(fields));

    // The CT and the segmentation.
    b.push(Block::Heading("CT series and bone segmentation".into()));
    match &plan.ct {
        Some(ct) => {
            let axes = |k: usize| format!("({:.4}, {:.4}, {:.4})", ct.axes[k][0], ct.axes[k][1], ct.axes[k][2]);
            let mut f = vec![
                (
                    "Voxels".to_string(),
                    format!("{} x {} x {}", ct.dims[0], ct.dims[1], ct.dims[2]),
                ),
                (
                    "Spacing".to_string(),
                    format!(
                        "{:.4} x {:.4} x {:.4} mm",
                        ct.spacing_mm[0], ct.spacing_mm[1], ct.spacing_mm[2]
                    ),
                ),
                ("First voxel".to_string(), p3(ct.origin_mm)),
                (
                    "Axes (columns, rows, slices)".to_string(),
                    format!("{}, {}, {}", axes(0), axes(1), axes(2)),
                ),
            ];
            if let Some(hu) = ct.rescale_intercept_override_hu {
                f.push(("Rescale intercept (override)".into(), format!("{hu} HU")));
            }
            b.push(Block::Fields(f));
        }
        None => b.push(para("The plan has no CT; its bone is given as STL models.".into())),
    }
    match &plan.bone.segmentation {
        Some(s) => {
            let mut f: Vec<(String, String)> = Vec::new();
            if let Ok(serde_json::Value::Object(map)) = serde_json::to_value(&s.recipe) {
                for (k, v) in map {
                    f.push((format!("recipe: {k}"), compact(&v)));
                }
            }
            f.push(("Smoothing iterations".into(), s.smooth_iterations.to_string()));
            f.push((
                "Decimation".into(),
                s.decimate_keep_fraction
                    .map_or("none".to_string(), |k| format!("keep {k}")),
            ));
            b.push(Block::Fields(f));
        }
        None => {
            let names: Vec<String> = plan
                .bone
                .models
                .iter()
                .map(|m| format!("{} (SHA-256 {})", m.name, m.sha256))
                .collect();
            b.push(para(format!("Bone from STL models: {}.", names.join(", "))));
        }
    }
    let bb = &evaluation.bone.bounds;
    b.push(para(format!(
        "Bone surface: {} triangles, x {:.1}..{:.1}, y {:.1}..{:.1}, z {:.1}..{:.1} mm.",
        evaluation.bone.triangles, bb.min_mm[0], bb.max_mm[0], bb.min_mm[1], bb.max_mm[1], bb.min_mm[2], bb.max_mm[2]
    )));

    // The plan on the bone.
    progress.checkpoint()?;
    b.push(Block::PageBreak);
    b.push(Block::Heading("The plan on the bone".into()));
    b.push(plan_views(plan, bone, &evaluation)?);
    plan_tables(&mut b, plan, &evaluation);
    reconstruction_tables(&mut b, plan, &evaluation);

    // Guides.
    for g in &guides.guides {
        progress.checkpoint()?;
        b.push(Block::PageBreak);
        b.push(Block::Heading(format!("Guide {}", g.name)));
        let spec = plan.guides.iter().find(|s| s.name == g.name);
        if let Some(s) = spec {
            b.push(Block::Fields(vec![
                ("Template".into(), s.template.clone()),
                ("Printer".into(), s.printer.clone()),
                ("Planes".into(), list(&s.planes)),
                ("Drills".into(), list(&s.drills)),
                ("Seating direction".into(), d3(s.seating_direction)),
                ("Footprint".into(), format!("{} points", s.footprint.outline_mm.len())),
            ]));
        }
        match g.built() {
            None => {
                for f in g.findings() {
                    b.push(finding_block(&f));
                }
            }
            Some((built, check)) => {
                let sheet = format!(
                    "renders/{case_id}_{}.png",
                    crate::export::sanitize_file_component(&built.name)
                );
                if let Some(png) = renders.iter().find(|r| r.name == sheet) {
                    b.push(image(
                        &png.bytes,
                        format!(
                            "{}: seated on the bone along its seating direction, oblique and from above; its contact \
                             side alone (bottom right).",
                            built.name
                        ),
                        250.0,
                    ));
                }
                guide_tables(&mut b, built, check);
            }
        }
    }

    // Tolerance model and printers.
    b.push(Block::Heading("Tolerance model and printers".into()));
    b.push(muted(
        "A saw slot is the blade's thickness plus twice the printer clearance; a drill channel is the drill's \
         diameter plus twice the printer and drill clearances; the pad stands off the bone by the bone offset \
         (periosteum and segmentation error). Values per guide are in its parameter table.",
    ));
    if let Ok(printers) = builtin_printers() {
        let used: Vec<&str> = plan.guides.iter().map(|g| g.printer.as_str()).collect();
        let rows = printers
            .profiles
            .values()
            .map(|p| {
                vec![
                    format!(
                        "{}{}",
                        p.name,
                        if used.contains(&p.name.as_str()) { " (used)" } else { "" }
                    ),
                    p.description.clone(),
                    format!("{:.2}", p.bone_offset_mm),
                    format!("{:.2}", p.printer_clearance_mm),
                ]
            })
            .collect();
        b.push(Block::Table {
            columns: vec![
                Column::left("printer", 1.2),
                Column::left("description", 4.0),
                Column::right("bone offset mm", 1.2),
                Column::right("clearance mm", 1.2),
            ],
            rows,
        });
    }

    // Findings.
    b.push(Block::Heading("Findings".into()));
    let mut findings: Vec<Finding> = evaluation.findings.clone();
    findings.extend(guides.findings());
    if findings.is_empty() {
        b.push(Block::Paragraph(
            "No findings: the plan measures without error or warning, and every guide passed every check.".into(),
            Tone::Good,
        ));
    }
    for f in &findings {
        b.push(finding_block(f));
    }

    // Sign-off.
    b.push(Block::Heading("Reviews and sign-off".into()));
    b.push(para(format!(
        "Design {} is what an approval is bound to: the plan's content, the CT, the templates, the printer profiles, \
         the screw catalogue and the software (docs/APPROVAL.md).",
        now.sha256
    )));
    if plan.approvals.is_empty() {
        b.push(muted("No review is recorded in the plan (guidesmith approve)."));
    } else {
        let rows = plan
            .approvals
            .iter()
            .map(|a| {
                vec![
                    a.reviewer.clone(),
                    a.role.as_str().to_string(),
                    snake(&a.decision),
                    a.at_utc.clone(),
                    match a.state(&now) {
                        ApprovalState::Current => "current".to_string(),
                        ApprovalState::Stale(changes) => format!("STALE: {}", changes.join("; ")),
                    },
                    a.comment.clone(),
                ]
            })
            .collect();
        b.push(Block::Table {
            columns: vec![
                Column::left("reviewer", 1.6),
                Column::left("role", 0.9),
                Column::left("decision", 0.9),
                Column::left("at (UTC)", 1.9),
                Column::left("standing", 1.8),
                Column::left("comment", 2.0),
            ],
            rows,
        });
    }
    b.push(muted(
        "Signing below confirms the review of this virtual plan and its guides as shown in this report.",
    ));
    b.push(Block::SignOff(vec!["Surgeon".into(), "Design engineer".into()]));

    let report = Report {
        title: format!("Surgical plan report {case_id}"),
        header: format!(
            "guidesmith plan report  |  case {case_id}  |  design {}",
            short(&now.sha256)
        ),
        header_status: if release.is_ok() {
            String::new()
        } else {
            "DRAFT - NOT APPROVED".to_string()
        },
        footer: format!("{}  |  plan {}", now.software, short(&plan_content_sha256(plan))),
        blocks: b,
    };
    progress.checkpoint()?;
    pdf_bytes(&report).map_err(|e| CaseError::Document {
        what: "the report".into(),
        detail: e.to_string(),
    })
}

/// The bone with the planes, drills and structures, from four sides.
fn plan_views(plan: &Plan, bone: &Mesh, e: &Evaluation) -> Result<Block, CaseError> {
    let shape = |what: &str, r: Result<Mesh, crate::mesh::MeshError>| {
        r.map_err(|e| CaseError::Document {
            what: format!("the report's view of {what}"),
            detail: e.to_string(),
        })
    };
    let mut scene = Scene::new();
    scene.add(bone, BONE_COLOUR, 1.0);
    let Some(bb) = bone.bounding_box() else {
        return Ok(Block::Paragraph("The bone is empty.".into(), Tone::Error));
    };
    let region = grown(bb, 2.0);
    let diagonal_mm = (0..3)
        .map(|k| (region.max_mm[k] - region.min_mm[k]).powi(2))
        .sum::<f64>()
        .sqrt();
    let mut extra: Vec<(Mesh, [u8; 3], f32)> = Vec::new();
    for p in &plan.planes {
        // A square around the section of the bone, about its size (the whole box would hide the bone), from both
        // sides (the renderer culls triangles facing away).
        let section = e.planes.iter().find(|q| q.name == p.name);
        let centre = section.and_then(|q| q.centroid_mm).unwrap_or(p.point_mm);
        let size_mm = section.map_or(diagonal_mm, |q| (0.6 * q.perimeter_mm).clamp(20.0, diagonal_mm));
        let mut poly = plane_patch(centre, p.normal, size_mm, region.min_mm, region.max_mm);
        extra.push((shape(&p.name, polygon_mesh(&poly))?, [220, 60, 40], 0.45));
        poly.reverse();
        extra.push((shape(&p.name, polygon_mesh(&poly))?, [220, 60, 40], 0.45));
    }
    for d in &plan.drills {
        let tip = [0, 1, 2].map(|k| d.entry_mm[k] + d.direction[k] * d.length_mm);
        extra.push((
            shape(&d.name, cylinder(d.entry_mm, tip, d.diameter_mm / 2.0, 16))?,
            [40, 90, 220],
            1.0,
        ));
    }
    for s in &plan.structures {
        extra.push((
            shape(&s.name, tube(&s.points_mm, s.radius_mm, 12))?,
            [230, 200, 40],
            1.0,
        ));
    }
    for (m, c, o) in &extra {
        scene.add(m, *c, *o);
    }
    let views = [
        ("oblique, from the front left", View::Iso(35.0, 25.0)),
        ("oblique, from the front right", View::Iso(-35.0, 25.0)),
        ("superior", View::Superior),
        ("anterior", View::Anterior),
    ];
    let sheet = render_views(&scene, &views, (560, 420), Some(region));
    let png = encode_png(&sheet, Path::new("plan views"))?;
    Ok(image(
        &png,
        "The bone with the cutting planes (red, translucent), drills (blue) and structures to spare (yellow).".into(),
        370.0,
    ))
}

fn image(png: &[u8], caption: String, max_height_pt: f32) -> Block {
    // Width and height from the PNG header (IHDR).
    let dim = |at: usize| {
        png.get(at..at + 4)
            .map_or(1, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    let aspect = dim(16) as f32 / dim(20).max(1) as f32;
    Block::Image {
        png: png.to_vec(),
        aspect,
        max_height_pt,
        caption,
    }
}

/// The reconstruction: its donor, settings, every segment's measurements and the deviation, gaps and donor left.
fn reconstruction_tables(b: &mut Vec<Block>, plan: &Plan, e: &Evaluation) {
    let (Some(r), Some(m)) = (&plan.reconstruction, &e.reconstruction) else {
        return;
    };
    let axis = r.donor.axis();
    let p = &r.parameters;
    b.push(Block::Heading("Reconstruction (free fibula flap)".into()));
    b.push(Block::Paragraph(
        format!(
            "Between the resection planes {}; the donor fibula is {:.1} mm long (radius {:.2} mm), seen from its \
             lateral side {}. Target contour: {} ({} points). Limits: segments at least {:.1} mm, deviation at most \
             {:.2} mm ({:.2} mm mean), {:.2} mm between segments on the donor, {:.1} / {:.1} mm of fibula kept \
             distally / proximally; pedicle rotation {:.1} deg.",
            list(&r.planes),
            axis.length_mm(),
            axis.radius_mm,
            d3(r.donor.lateral),
            snake(&r.contour.source),
            r.contour.points_mm.len(),
            p.min_segment_length_mm,
            p.max_deviation_mm,
            p.max_mean_deviation_mm,
            p.gap_mm,
            p.keep_distal_mm,
            p.keep_proximal_mm,
            p.pedicle_deg
        ),
        Tone::Normal,
    ));
    b.push(Block::Table {
        columns: vec![
            Column::left("segment", 1.0),
            Column::right("length mm", 1.0),
            Column::right("buccal mm", 1.0),
            Column::right("lingual mm", 1.0),
            Column::right("wedge start deg", 1.1),
            Column::right("wedge end deg", 1.1),
            Column::right("from distal tip mm", 1.2),
            Column::right("from proximal tip mm", 1.2),
        ],
        rows: r
            .segments
            .iter()
            .zip(&m.segments)
            .map(|(s, sm)| {
                vec![
                    s.name.clone(),
                    format!("{:.2}", sm.length_mm),
                    format!("{:.2}", sm.buccal_length_mm),
                    format!("{:.2}", sm.lingual_length_mm),
                    format!("{:.2}", sm.start_wedge_deg),
                    format!("{:.2}", sm.end_wedge_deg),
                    format!("{:.2}", sm.from_distal_tip_mm),
                    format!("{:.2}", sm.from_proximal_tip_mm),
                ]
            })
            .collect(),
    });
    let mm = |v: &[f64]| v.iter().map(|g| format!("{g:.2}")).collect::<Vec<_>>().join(", ");
    b.push(Block::Paragraph(
        format!(
            "Deviation of the segments from the target contour: mean {:.2} mm, largest {:.2} mm at {}. Gaps between \
             segments [{}] mm, at the stumps [{}] mm, between neighbours on the donor [{}] mm. Fibula left: {:.1} mm \
             distally, {:.1} mm proximally.",
            m.deviation.mean_mm,
            m.deviation.max_mm,
            p3(m.deviation.at_mm),
            mm(&m.junction_gaps_mm),
            mm(&m.stump_gaps_mm),
            mm(&m.donor_gaps_mm),
            m.left_distal_mm,
            m.left_proximal_mm
        ),
        Tone::Normal,
    ));
}

fn plan_tables(b: &mut Vec<Block>, plan: &Plan, e: &Evaluation) {
    if !plan.structures.is_empty() {
        b.push(Block::Heading("Structures to spare".into()));
        b.push(Block::Table {
            columns: vec![
                Column::left("name", 2.0),
                Column::left("kind", 1.2),
                Column::right("points", 0.8),
                Column::right("radius mm", 1.0),
                Column::right("margin mm", 1.0),
            ],
            rows: plan
                .structures
                .iter()
                .map(|s| {
                    vec![
                        s.name.clone(),
                        snake(&s.kind),
                        s.points_mm.len().to_string(),
                        format!("{:.2}", s.radius_mm),
                        format!("{:.2}", s.margin_mm),
                    ]
                })
                .collect(),
        });
    }
    if !e.planes.is_empty() {
        b.push(Block::Heading("Cutting planes".into()));
        b.push(Block::Table {
            columns: vec![
                Column::left("plane", 1.6),
                Column::left("point mm", 2.0),
                Column::left("normal", 1.9),
                Column::right("blade mm", 0.8),
                Column::left("resected", 0.9),
                Column::right("loops", 0.6),
                Column::right("perimeter mm", 1.0),
                Column::right("area mm2", 1.0),
            ],
            rows: e
                .planes
                .iter()
                .map(|p| {
                    vec![
                        p.name.clone(),
                        p3(p.point_mm),
                        d3(p.normal),
                        format!("{:.2}", p.blade_thickness_mm),
                        snake(&p.resected_side),
                        p.loop_count.to_string(),
                        format!("{:.2}", p.perimeter_mm),
                        format!("{:.2}", p.area_mm2),
                    ]
                })
                .collect(),
        });
    }
    if !e.plane_pairs.is_empty() {
        b.push(Block::Table {
            columns: vec![
                Column::left("plane pair", 3.0),
                Column::right("angle deg", 1.0),
                Column::left("between", 1.0),
                Column::right("centroids mm", 1.2),
            ],
            rows: e
                .plane_pairs
                .iter()
                .map(|p| {
                    vec![
                        format!("{} / {}", p.first, p.second),
                        format!("{:.2}", p.angle_deg),
                        snake(&p.between),
                        p.centroid_distance_mm.map_or("-".into(), |d| format!("{d:.2}")),
                    ]
                })
                .collect(),
        });
    }
    if !e.drills.is_empty() {
        b.push(Block::Heading("Drills".into()));
        b.push(Block::Table {
            columns: vec![
                Column::left("drill", 1.3),
                Column::left("kind", 1.5),
                Column::left("entry mm", 1.9),
                Column::left("direction", 1.9),
                Column::right("length mm", 0.9),
                Column::right("diam. mm", 0.8),
                Column::right("bicortical mm", 1.2),
                Column::left("screw", 1.4),
                Column::right("nearest structure mm", 1.2),
            ],
            rows: e
                .drills
                .iter()
                .map(|d| {
                    let nearest = d
                        .clearances
                        .iter()
                        .min_by(|a, b| a.clearance_mm.total_cmp(&b.clearance_mm))
                        .map_or("-".into(), |c| format!("{:.2} ({})", c.clearance_mm, c.structure));
                    vec![
                        d.name.clone(),
                        snake(&d.kind),
                        p3(d.planned_entry_mm),
                        d3(d.direction),
                        format!("{:.2}", d.length_mm),
                        format!("{:.2}", d.diameter_mm),
                        d.bicortical_length_mm.map_or("-".into(), |l| format!("{l:.2}")),
                        d.screw.as_ref().map_or("-".into(), |s| {
                            format!(
                                "{}{}",
                                s.system,
                                s.suggested_length_mm.map_or(String::new(), |l| format!(", {l:.0} mm"))
                            )
                        }),
                        nearest,
                    ]
                })
                .collect(),
        });
    }
}

fn guide_tables(b: &mut Vec<Block>, g: &BuiltGuide, c: &crate::guide::check::GuideCheck) {
    let ok = |v: bool| if v { "holds" } else { "FAILS" }.to_string();
    b.push(Block::Paragraph(
        format!(
            "Template {} version {}, printer {}: bone offset {:.2} mm, printer clearance {:.2} mm, drill clearance \
             {:.2} mm.",
            g.params.template_name,
            g.params.template_version,
            g.params.printer,
            g.params.tolerance.bone_offset_mm,
            g.params.tolerance.printer_clearance_mm,
            g.params.tolerance.drill_clearance_mm
        ),
        Tone::Normal,
    ));
    let mut rows = vec![
        vec![
            "solid".into(),
            format!(
                "{} piece(s), closed and manifold {}, outward, no self-intersection",
                c.mesh.components,
                c.mesh.is_valid()
            ),
            ok(c.mesh.is_valid() && c.mesh.components == 1),
        ],
        vec![
            "contact".into(),
            format!(
                "gap {:.3} mm min at {} (offset {:.2} mm); {:.0} % of the underside at the offset; {} vertices in bone",
                c.contact.min_gap_mm,
                p3(c.contact.min_gap_at_mm),
                c.contact.bone_offset_mm,
                100.0 * c.contact.at_offset_fraction,
                c.contact.inside_bone
            ),
            ok(c.contact.ok),
        ],
        vec![
            "walls".into(),
            format!(
                "thinnest {:.2} mm{} (minimum {:.2} mm)",
                c.walls.thinnest_mm,
                c.walls
                    .thinnest_near
                    .as_ref()
                    .map_or(String::new(), |n| format!(" near {n}")),
                c.walls.min_wall_mm
            ),
            ok(c.walls.ok),
        ],
        vec![
            "removal".into(),
            format!(
                "{} vertices would hit the bone when taken off along the seating direction",
                c.blocked_on_removal
            ),
            ok(c.blocked_on_removal == 0),
        ],
    ];
    for s in &c.slots {
        rows.push(vec![
            format!("slot {}", s.plane),
            format!(
                "offset {:.3} mm, angle {:.2} deg, width {:.3} mm (specified {:.3}), guidance {:.1} mm",
                s.offset_mm, s.angle_deg, s.width_mm, s.expected_width_mm, s.guidance_mm
            ),
            ok(s.ok),
        ]);
    }
    for ch in &c.channels {
        rows.push(vec![
            format!("channel {}", ch.drill),
            format!(
                "offset {:.3} mm, angle {:.2} deg, narrowest radius {:.3} mm (bore {:.3} mm)",
                ch.offset_mm, ch.angle_deg, ch.min_radius_mm, ch.bore_diameter_mm
            ),
            ok(ch.ok),
        ]);
    }
    if let Some(s) = &c.seating {
        let allowed = &g.params.seating;
        rows.push(vec![
            "seating".into(),
            format!(
                "slides at most {} (allowed {:.2} mm), turns at most {} (allowed {:.2} deg); {} contact points",
                s.translation_mm.map_or("freely".into(), |t| format!("{t:.2} mm")),
                allowed.max_play_mm,
                s.rotation_deg.map_or("freely".into(), |r| format!("{r:.2} deg")),
                allowed.max_play_deg,
                s.contact_points
            ),
            ok(c.findings
                .iter()
                .all(|f| f.code != crate::finding::FindingCode::GuideSeatingLoose)),
        ]);
    }
    if let Some(l) = &c.label {
        rows.push(vec!["label".into(), l.summary(), ok(l.ok)]);
    }
    rows.push(vec![
        "fixation".into(),
        format!("{} screw hole(s) into bone the plan keeps", c.fixation_holes_mm.len()),
        "-".into(),
    ]);
    b.push(Block::Table {
        columns: vec![
            Column::left("check", 1.6),
            Column::left("measured on the guide's mesh", 6.0),
            Column::left("", 0.8),
        ],
        rows,
    });
    for f in &c.findings {
        b.push(finding_block(f));
    }
    // Parameters side by side in two halves: a template has a dozen.
    let cells = |p: &crate::template::ResolvedParameter| {
        vec![p.name.clone(), format!("{}", p.value), p.unit.clone(), snake(&p.source)]
    };
    let params = &g.params.parameters;
    let half = params.len().div_ceil(2);
    let rows = (0..half)
        .map(|i| {
            let mut row = cells(&params[i]);
            row.extend(params.get(i + half).map(cells).unwrap_or_default());
            row
        })
        .collect();
    let pair = || {
        [
            Column::left("parameter", 2.3),
            Column::right("value", 0.7),
            Column::left("unit", 0.6),
            Column::left("from", 0.8),
        ]
    };
    b.push(Block::Table {
        columns: pair().into_iter().chain(pair()).collect(),
        rows,
    });
}

fn finding_block(f: &Finding) -> Block {
    let tone = match f.severity {
        Severity::Error => Tone::Error,
        Severity::Warning => Tone::Warning,
    };
    Block::Paragraph(
        format!(
            "{} {} ({}): {}{}",
            snake(&f.severity).to_uppercase(),
            f.code.as_str(),
            f.element,
            f.message,
            f.place_mm.map_or(String::new(), |p| format!(" at {}", p3(p)))
        ),
        tone,
    )
}

fn p3(p: [f64; 3]) -> String {
    format!("({:.2}, {:.2}, {:.2})", p[0], p[1], p[2])
}

fn d3(d: [f64; 3]) -> String {
    format!("({:.3}, {:.3}, {:.3})", d[0], d[1], d[2])
}

fn short(hash: &str) -> String {
    hash.chars().take(12).collect()
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "-".into()
    } else {
        names.join(", ")
    }
}

fn snake<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// A JSON value on one line, without quotes around plain strings.
fn compact(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
