//! Random plans on synthetic bones, built through the case layer: every guide either passes every check (and is then
//! verified again from its mesh, independently of the checker's verdict), or is refused for a plan problem with its
//! finding code, or fails checks that measuring its mesh again confirms. None that passes is ever open,
//! non-manifold, self-intersecting, under its minimum wall or off its plan.
//!
//! 200 plans by default (`GUIDESMITH_RANDOM_PLANS` to change), drawn from a fixed seed so a failure names a case that
//! can be rerun alone (`GUIDESMITH_RANDOM_PLAN=<index>`; add `GUIDESMITH_DEBUG_PARTS=1` for the reports of the
//! pad and tools and the triangles of any self-intersection, `GUIDESMITH_DUMP_GUIDES=DIR` to write every built guide
//! as `DIR/case-N.obj` with exact coordinates). Each plan: one of two jaws (round and tall cross-section),
//! a region (the symphysis seen from the front, or the left or right body seen from the side), a template (cutting,
//! drill or combined), one or two cutting planes tilted up to 15 degrees, one to three drills tilted up to 12
//! degrees, a seating direction up to 20 degrees off the region's normal, and random parameters within each
//! template's ranges (pad, wall, offset, slot depth, barrel, sleeve pocket, screws, printer).

mod common;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use common::{verify_guide, Verified};
use guidesmith::case::build_guides;
use guidesmith::finding::FindingCode;
use guidesmith::grid::GridGeometry;
use guidesmith::measure::BoneQuery;
use guidesmith::mesh::check::MeshReport;
use guidesmith::mesh::Mesh;
use guidesmith::plan::{
    BoneSource, CaseId, CuttingPlane, DrillTrajectory, Footprint, GuideSpec, Plan, ResectedSide, SCHEMA_VERSION,
};
use guidesmith::progress::NoProgress;
use guidesmith::synth::{splitmix64, JawParams, Phantom};
use rayon::prelude::*;

/// Guides the 200 plans must give that pass every check but perhaps the seating play (the rest are refused with a
/// finding code). The plans are drawn from a fixed seed, so this is what the pipeline reaches today (see
/// docs/PERFORMANCE.md for the breakdown by code); a change that refuses more fails here, and one that builds more
/// raises it.
const MIN_BUILT_OF_200: usize = 130;

/// Of those, the guides whose seating also holds within the template's default play (0.5 mm, 2 deg). The random
/// footprints are drawn rectangles on round and oval bars, most of them on straight stretches that nothing holds
/// along; `plan add-guide` proposes footprints that hold (tests/demo.rs).
const MIN_HELD_OF_200: usize = 8;

struct Bone {
    mesh: Mesh,
    query: BoneQuery,
    half_height_mm: f64,
}

fn bones() -> &'static [Bone; 2] {
    static BONES: OnceLock<[Bone; 2]> = OnceLock::new();
    BONES.get_or_init(|| {
        let round = JawParams::default();
        let tall = JawParams {
            arch_radius_mm: 30.0,
            leg_length_mm: 30.0,
            half_width_mm: 6.0,
            half_height_mm: 10.0,
            ..JawParams::default()
        };
        [round, tall].map(|params| {
            let geometry = GridGeometry::axis_aligned([190, 160, 60], [0.5, 0.5, 0.5], [-47.5, -40.0, -15.0]);
            let mesh = common::phantom_bone(&Phantom::jaw_with(&params), geometry);
            let query = BoneQuery::new(&mesh).expect("query");
            Bone {
                mesh,
                query,
                half_height_mm: params.half_height_mm,
            }
        })
    })
}

/// A small deterministic generator (a counter through splitmix64), so the cases do not depend on a crate's
/// sampling algorithm.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(1);
        splitmix64(self.0)
    }
    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn pick(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn unit(v: [f64; 3]) -> [f64; 3] {
    let n = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
    v.map(|c| c / n)
}

/// `v` turned by small random angles (up to `max_deg`) about two axes perpendicular to it.
fn tilt(rng: &mut Rng, v: [f64; 3], max_deg: f64) -> [f64; 3] {
    let v = unit(v);
    let a = if v[2].abs() < 0.9 {
        [0.0, 0.0, 1.0]
    } else {
        [1.0, 0.0, 0.0]
    };
    let p = unit([
        v[1] * a[2] - v[2] * a[1],
        v[2] * a[0] - v[0] * a[2],
        v[0] * a[1] - v[1] * a[0],
    ]);
    let q = [
        v[1] * p[2] - v[2] * p[1],
        v[2] * p[0] - v[0] * p[2],
        v[0] * p[1] - v[1] * p[0],
    ];
    let (s, t) = (
        rng.uniform(-max_deg, max_deg).to_radians().tan(),
        rng.uniform(-max_deg, max_deg).to_radians().tan(),
    );
    unit([0, 1, 2].map(|k| v[k] + s * p[k] + t * q[k]))
}

/// One random plan with one guide, on bone `bone_index`.
fn random_plan(case: u64) -> (usize, Plan) {
    let mut rng = Rng(splitmix64(0x5eed_0000 + case));
    let bone_index = rng.pick(2);
    let bone = &bones()[bone_index];
    let bb = bone.mesh.bounding_box().expect("bone");
    let template = ["cutting_guide", "drill_guide", "combined_guide"][rng.pick(3)];
    let region = ["front", "left", "right"][rng.pick(3)];
    let half_h = bone.half_height_mm - rng.uniform(2.0, 3.5);
    let half_len = rng.uniform(12.0, 18.0);
    // The region's outward normal, its footprint centre and the direction along the bone.
    let (outward, centre, along) = match region {
        "front" => (
            [0.0, -1.0, 0.0],
            [rng.uniform(-4.0, 4.0), bb.min_mm[1], 0.0],
            [1.0, 0.0, 0.0],
        ),
        "left" => (
            [1.0, 0.0, 0.0],
            [bb.max_mm[0], rng.uniform(0.0, 8.0), 0.0],
            [0.0, 1.0, 0.0],
        ),
        _ => (
            [-1.0, 0.0, 0.0],
            [bb.min_mm[0], rng.uniform(0.0, 8.0), 0.0],
            [0.0, 1.0, 0.0],
        ),
    };
    let seat = tilt(&mut rng, outward.map(|c: f64| -c), 20.0);
    let at = |s: f64, z: f64| [0, 1, 2].map(|k| centre[k] + s * along[k] + if k == 2 { z } else { 0.0 });
    let footprint = vec![
        at(-half_len, -half_h),
        at(half_len, -half_h),
        at(half_len, half_h),
        at(-half_len, half_h),
    ];

    let mut planes = Vec::new();
    if template != "drill_guide" {
        let n = 1 + rng.pick(2);
        for k in 0..n {
            // Planes across the bone, inside the footprint, far enough apart for two housings.
            let s = if n == 1 {
                rng.uniform(-0.4, 0.4) * half_len
            } else {
                (if k == 0 { -1.0 } else { 1.0 }) * rng.uniform(0.45, 0.7) * half_len
            };
            planes.push(CuttingPlane {
                name: format!("plane-{}", k + 1),
                point_mm: at(s, 0.0),
                normal: tilt(&mut rng, along, 15.0),
                blade_thickness_mm: rng.uniform(0.4, 1.25),
                resected_side: ResectedSide::None,
            });
        }
    }
    let mut drills = Vec::new();
    if template != "cutting_guide" {
        let n = if template == "combined_guide" {
            1
        } else {
            1 + rng.pick(3)
        };
        for k in 0..n {
            // Drills spread along the bone, away from the planes of a combined guide.
            let s = if template == "combined_guide" {
                0.0
            } else {
                (k as f64 - 0.5 * (n as f64 - 1.0)) * 0.55 * half_len
            };
            let z = rng.uniform(-0.3, 0.3) * half_h;
            let direction = tilt(&mut rng, outward.map(|c: f64| -c), 12.0);
            let start = [0, 1, 2].map(|i| at(s, z)[i] - 30.0 * direction[i]);
            let Some(entry) = bone
                .query
                .crossings(start, direction, 0.0, 60.0)
                .expect("ray")
                .into_iter()
                .find(|c| c.entering)
            else {
                continue;
            };
            drills.push(DrillTrajectory {
                name: format!("drill-{}", k + 1),
                entry_mm: entry.point_mm,
                direction,
                length_mm: rng.uniform(6.0, 16.0),
                diameter_mm: [1.1, 1.5, 1.8][rng.pick(3)],
                screw_system: None,
            });
        }
    }
    if template == "combined_guide" {
        // Its single plane sits to one side of the drill.
        for p in &mut planes {
            let side = if rng.pick(2) == 0 { -1.0 } else { 1.0 };
            p.point_mm = at(side * rng.uniform(0.5, 0.7) * half_len, 0.0);
        }
        planes.truncate(1);
    }

    let mut parameters = BTreeMap::new();
    parameters.insert("pad_thickness_mm".to_string(), rng.uniform(3.0, 6.0));
    let min_wall_mm = rng.uniform(1.5, 2.5);
    parameters.insert("min_wall_mm".to_string(), min_wall_mm);
    parameters.insert("bone_offset_mm".to_string(), rng.uniform(0.1, 0.5));
    parameters.insert("fixation_hole_count".to_string(), rng.pick(3) as f64);
    if template != "drill_guide" {
        parameters.insert("slot_depth_mm".to_string(), rng.uniform(10.0, 15.0));
    }
    if template != "cutting_guide" {
        parameters.insert("barrel_length_mm".to_string(), rng.uniform(5.0, 12.0));
        // The template refuses a barrel wall under the minimum wall; plans keep it above.
        parameters.insert("barrel_wall_mm".to_string(), min_wall_mm + rng.uniform(0.0, 1.0));
        if rng.pick(4) == 0 {
            parameters.insert("sleeve_pocket_diameter_mm".to_string(), 3.0);
            parameters.insert("sleeve_pocket_depth_mm".to_string(), 3.0);
        }
    }
    let printer = ["sla", "fdm", "sls"][rng.pick(3)].to_string();
    let plan = Plan {
        schema_version: SCHEMA_VERSION,
        case_id: CaseId::new(&format!("RANDOM-{case}")).expect("case id"),
        ct: None,
        bone: BoneSource {
            segmentation: None,
            models: vec![],
        },
        landmarks: vec![],
        structures: vec![],
        guides: vec![GuideSpec {
            name: format!("{region}-{template}"),
            template: template.to_string(),
            printer,
            parameters,
            planes: planes.iter().map(|p| p.name.clone()).collect(),
            drills: drills.iter().map(|d| d.name.clone()).collect(),
            seating_direction: seat,
            footprint: Footprint { outline_mm: footprint },
        }],
        planes,
        drills,
        approvals: vec![],
    };
    (bone_index, plan)
}

/// Builds and checks the guide of random plan `case` through the case layer and confirms the outcome from the mesh
/// ([`common::verify_guide`]); `GUIDESMITH_DEBUG_PARTS=1` prints the pad, the tools and any self-intersection.
fn run_case(case: u64) -> Result<Verified, String> {
    let (bone_index, plan) = random_plan(case);
    let bone = &bones()[bone_index];
    let result = build_guides(&plan, &bone.mesh, None, &NoProgress).map_err(|e| format!("case {case}: {e}"))?;
    let planned = &result.guides[0];
    if let (Some((built, _)), Some(_)) = (planned.built(), std::env::var_os("GUIDESMITH_DEBUG_PARTS")) {
        eprintln!("pad: {}", MeshReport::new(&built.pad.mesh));
        for (name, tool) in &built.tools {
            eprintln!("tool {name}: {}", MeshReport::new(tool));
        }
        for d in &MeshReport::new(&built.mesh).self_intersections.examples {
            for t in d.triangles {
                let tri = built.mesh.triangles[t as usize];
                eprintln!(
                    "  triangle {t}: {tri:?} {:?}",
                    tri.map(|v| built.mesh.positions[v as usize])
                );
            }
        }
    }
    if let (Some((built, _)), Some(dir)) = (planned.built(), std::env::var_os("GUIDESMITH_DUMP_GUIDES")) {
        // Exact positions (shortest round-trip f64 text), for checking a guide with other tools.
        let mut obj = String::new();
        for p in &built.mesh.positions {
            obj.push_str(&format!("v {} {} {}\n", p[0], p[1], p[2]));
        }
        for t in &built.mesh.triangles {
            obj.push_str(&format!("f {} {} {}\n", t[0] + 1, t[1] + 1, t[2] + 1));
        }
        std::fs::write(std::path::Path::new(&dir).join(format!("case-{case}.obj")), obj).expect("dump guide");
    }
    verify_guide(&bone.mesh, planned).map_err(|e| format!("case {case}: {e}"))
}

#[test]
fn random_plans_give_valid_on_plan_guides_or_refusals_with_a_code() {
    let count: u64 = std::env::var("GUIDESMITH_RANDOM_PLANS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let cases: Vec<u64> = match std::env::var("GUIDESMITH_RANDOM_PLAN")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        Some(one) => vec![one],
        None => (0..count).collect(),
    };
    bones();
    let outcomes: Vec<(u64, Result<Verified, String>)> = cases.par_iter().map(|&c| (c, run_case(c))).collect();
    let mut passed = 0usize;
    let mut only_loose = 0usize;
    let mut refusals: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut errors = Vec::new();
    for (case, outcome) in outcomes {
        match outcome {
            Ok(Verified::Passed) => passed += 1,
            Ok(Verified::Refused(code)) => refusals.entry(format!("refused: {code}")).or_default().push(case),
            Ok(Verified::Failed(codes)) => {
                if codes == [FindingCode::GuideSeatingLoose] {
                    only_loose += 1;
                }
                let codes: Vec<&str> = codes.iter().map(|c| c.as_str()).collect();
                refusals
                    .entry(format!("failed check: {}", codes.join(" + ")))
                    .or_default()
                    .push(case);
            }
            Err(e) => errors.push(e),
        }
    }
    eprintln!(
        "{} of {} random plans gave a guide that passed every check but perhaps the seating play; {passed} of them \
         also hold within it",
        passed + only_loose,
        cases.len()
    );
    for (kind, list) in &refusals {
        eprintln!("  x{:<3} {kind} (cases {list:?})", list.len());
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    if cases.len() as u64 == count && count == 200 {
        let built = passed + only_loose;
        assert!(
            built >= MIN_BUILT_OF_200,
            "only {built} of the 200 plans gave a guide (the pipeline reached {MIN_BUILT_OF_200})"
        );
        assert!(
            passed >= MIN_HELD_OF_200,
            "only {passed} of the 200 guides hold within the default seating play (they reached {MIN_HELD_OF_200})"
        );
    }
}
