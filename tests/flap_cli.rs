//! A mandible reconstructed with a free fibula flap through the CLI, as an engineer would: the real mandible
//! `ct/mandible-0014` resected between two planes, the real leg `ct/leg-vhf-right` as the donor, with 1, 2 and 3
//! segments. Each case is proposed (`plan reconstruct`), gets a cutting guide for the mandible's cuts, is built (the
//! fibula guide with its slots on the wedge cuts and the mandible's guides, every check passing) and modelled (the
//! neomandible one closed solid). Every printed measurement is computed again here from the recorded plan alone, with
//! this file's own geometry: lengths to 0.01 mm, angles to 0.01 deg.
//!
//! The defects (planes read off the CT as in `tests/mandible_cli.rs`): the right body (21.5 mm between the cuts, one
//! segment); the right parasymphysis to the left body (two); the right body to the left body (three).

mod common;

use std::path::Path;
use std::process::{Command, Output};

use guidesmith::plan::Plan;
use nalgebra::{Matrix3, Vector3};
use serde_json::Value;

fn guidesmith(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_guidesmith"))
        .args(args)
        .output()
        .expect("run guidesmith")
}

/// Runs `args`, asserts exit code `code`, returns stdout.
fn run(args: &[&str], code: i32) -> String {
    let out = guidesmith(args);
    assert_eq!(
        out.status.code(),
        Some(code),
        "guidesmith {}\nstdout: {}\nstderr: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn xyz(p: [f64; 3]) -> String {
    format!("{},{},{}", p[0], p[1], p[2])
}

fn v(p: [f64; 3]) -> Vector3<f64> {
    Vector3::from(p)
}

/// One resection: the two planes (point, normal, resected side) and the limits the engineer proposes with.
struct Defect {
    case: &'static str,
    first: ([f64; 3], [f64; 3]),
    second: ([f64; 3], [f64; 3]),
    segments: usize,
    limits: [&'static str; 4],
    /// The mandible's cutting guides: their planes.
    guides: &'static [&'static [&'static str]],
}

const BODY: [f64; 3] = [-0.5, 0.866, 0.0];
const LEFT_BODY: [f64; 3] = [0.5, 0.866, 0.0];

/// A plane's recorded face on the mandible: point and unit normal.
struct Face {
    p: Vector3<f64>,
    n: Vector3<f64>,
}

impl Face {
    fn hit(&self, o: &Vector3<f64>, d: &Vector3<f64>) -> Vector3<f64> {
        o + d * ((self.p - o).dot(&self.n) / self.n.dot(d))
    }
}

/// The distance along `a` from `origin` at which the line `origin + r (cos t l + sin t c) + s a` meets `face`, for
/// t every 0.01 deg: the smallest and the largest.
fn along_circle(face: &Face, origin: Vector3<f64>, a: Vector3<f64>, l: Vector3<f64>, r: f64) -> Vec<f64> {
    let c = a.cross(&l);
    (0..36000)
        .map(|i| {
            let t = (i as f64 * 0.01).to_radians();
            let o = origin + (l * t.cos() + c * t.sin()) * r;
            (face.p - o).dot(&face.n) / face.n.dot(&a)
        })
        .collect()
}

fn reconstruct_and_check(d: &Defect) {
    let (Some(mandible), Some(leg)) = (common::data("ct/mandible-0014"), common::data("ct/leg-vhf-right")) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let plan_path = dir.path().join("plan.json");
    let plan = plan_path.to_str().expect("utf-8");
    run(
        &[
            "plan",
            "new",
            "--ct",
            mandible.to_str().unwrap(),
            "--case",
            d.case,
            "-o",
            plan,
        ],
        0,
    );
    for (name, (p, n)) in [("first", d.first), ("second", d.second)] {
        run(
            &[
                "plan",
                "add-plane",
                plan,
                "--name",
                name,
                "--point",
                &xyz(p),
                "--normal",
                &xyz(n),
                "--resect",
                "negative",
            ],
            0,
        );
    }
    let count = d.segments.to_string();
    let mut args = vec![
        "plan",
        "reconstruct",
        plan,
        "--planes",
        "first,second",
        "--donor-ct",
        leg.to_str().unwrap(),
        "--segments",
        &count,
        "--json",
    ];
    args.extend(d.limits);
    let printed: Value = serde_json::from_str(&run(&args, 0)).expect("json");
    for (i, planes) in d.guides.iter().enumerate() {
        let name = format!("cut-{}", i + 1);
        run(
            &[
                "plan",
                "add-guide",
                plan,
                "--name",
                &name,
                "--template",
                "cutting_guide",
                "--planes",
                &planes.join(","),
            ],
            0,
        );
    }

    // Every guide is built and passes every check: the fibula guide's slots lie on the wedge cuts within 0.02 mm and
    // 0.05 deg (`slot_off_plan` otherwise).
    let out = dir.path().join("out");
    let built = run(&["build", plan, "-o", out.to_str().unwrap(), "--draft"], 0);
    eprintln!("{built}");
    assert!(built.contains("fibula-guide"), "{built}");
    assert_eq!(
        built.matches("all checks passed").count(),
        1 + d.guides.len(),
        "{built}"
    );
    assert!(out.join(format!("{}_fibula-guide_DRAFT.stl", d.case)).is_file());
    let slots: Vec<&str> = built.lines().filter(|l| l.trim_start().starts_with("slot S")).collect();
    assert_eq!(slots.len(), 2 * d.segments, "{built}");
    // The files as written (positions rounded to f32) are closed, manifold and free of self-intersections too: the
    // build checks the rounded mesh (a cutting guide of the 3-segment case once passed in f64 and self-intersected in
    // its STL).
    let written = |dir: &std::path::Path| -> Vec<String> {
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .expect("output folder")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "stl"))
            .map(|p| p.to_str().expect("utf-8 path").to_string())
            .collect();
        files.sort();
        files
    };
    let guide_files = written(&out);
    assert_eq!(guide_files.len(), 1 + d.guides.len(), "{guide_files:?}");
    for f in &guide_files {
        assert!(run(&["check", f], 0).contains(": valid"), "{f}");
    }

    // The neomandible: the stumps and the segments, one closed solid; and the resected segment.
    let models = dir.path().join("models");
    let made = run(&["model", plan, "-o", models.to_str().unwrap()], 0);
    let neo = made
        .lines()
        .find(|l| l.trim_start().starts_with("neomandible"))
        .expect("neomandible");
    assert!(neo.contains("1 piece(s), closed and manifold: true"), "{made}");
    assert!(made.lines().any(|l| l.trim_start().starts_with("resected")), "{made}");
    for f in written(&models) {
        assert!(run(&["check", &f], 0).contains(": valid"), "{f}");
    }
    // The desktop application, a real window under Xvfb, opens the plan and its donor and shows the segments.
    #[cfg(feature = "gui")]
    if d.segments == 3 {
        window_shows_the_segments(&plan_path, d.case, dir.path());
    }
    // The glTF shows the neomandible, and the fibula guide on its donor beside the mandible.
    if d.segments == 3 {
        let glb = dir.path().join("case.glb");
        run(&["gltf", plan, "-o", glb.to_str().unwrap()], 0);
        let bytes = std::fs::read(&glb).expect("glb");
        let has = |s: &str| bytes.windows(s.len()).any(|w| w == s.as_bytes());
        assert!(has("model neomandible") && has("guide fibula-guide (moved by") && has("donor bone (moved by"));
    }

    // Every measurement again, from the recorded plan alone.
    let recorded = Plan::load(&plan_path).expect("plan");
    let r = recorded.reconstruction.as_ref().expect("recorded");
    assert_eq!(r.segments.len(), d.segments);
    let m = &printed["measures"];
    let plane = |name: &str| recorded.planes.iter().find(|p| p.name == name).expect("plane");
    // Normals along the contour: into the removed bone at the first plane, out of it at the second (both remove
    // the side against their normal here).
    let (p1, p2) = (plane("first"), plane("second"));
    let first = Face {
        p: v(p1.point_mm),
        n: -v(p1.normal),
    };
    let second = Face {
        p: v(p2.point_mm),
        n: v(p2.normal),
    };
    let ends: Vec<Vector3<f64>> = r
        .segments
        .iter()
        .map(|s| v(s.start_mm))
        .chain(std::iter::once(v(r.segments.last().unwrap().end_mm)))
        .collect();
    let chord = |k: usize| (ends[k + 1] - ends[k]).normalize();
    let n = d.segments;
    let faces: Vec<Face> = (0..=n)
        .map(|k| match k {
            0 => Face { p: first.p, n: first.n },
            k if k == n => Face {
                p: second.p,
                n: second.n,
            },
            k => Face {
                p: ends[k],
                n: (chord(k - 1) + chord(k)).normalize(),
            },
        })
        .collect();
    let tip_d = v(r.donor.distal_tip_mm);
    let tip_p = v(r.donor.proximal_tip_mm);
    let axis_len = (tip_p - tip_d).norm();
    let a = (tip_p - tip_d) / axis_len;
    let radius = r.donor.radius_mm;
    let close = |what: String, got: &Value, want: f64, tol: f64| {
        let got = got.as_f64().unwrap_or_else(|| panic!("{what}: not a number: {got}"));
        assert!((got - want).abs() <= tol, "{what}: printed {got}, computed {want}");
    };
    for (k, s) in r.segments.iter().enumerate() {
        let pm = &m["segments"][k];
        let dk = chord(k);
        let length = (ends[k + 1] - ends[k]).norm();
        close(format!("{} length", s.name), &pm["length_mm"], length, 0.01);
        // Buccal: across the chord, horizontal, away from the inside of the arch.
        let mut b = dk.cross(&Vector3::z()).normalize();
        let mid = (ends[k] + ends[k + 1]) / 2.0;
        if b.dot(&(mid - v(r.arch_inside_mm))) < 0.0 {
            b = -b;
        }
        for (key, side) in [("buccal_length_mm", 1.0), ("lingual_length_mm", -1.0)] {
            let o = ends[k] + b * (side * radius);
            let want = (faces[k + 1].hit(&o, &dk) - faces[k].hit(&o, &dk)).dot(&dk);
            close(format!("{} {key}", s.name), &pm[key], want, 0.01);
        }
        for (key, f) in [("start_wedge_deg", &faces[k]), ("end_wedge_deg", &faces[k + 1])] {
            let want = f.n.dot(&dk).abs().min(1.0).acos().to_degrees();
            close(format!("{} {key}", s.name), &pm[key], want, 0.01);
        }
        close(
            format!("{} from distal tip", s.name),
            &pm["from_distal_tip_mm"],
            s.donor_start_mm,
            0.01,
        );
        close(
            format!("{} from proximal tip", s.name),
            &pm["from_proximal_tip_mm"],
            axis_len - s.donor_start_mm - length,
            0.01,
        );
        // The recorded transform takes the donor's centre line onto the chord.
        let rot = Matrix3::from_fn(|i, j| s.mandible_from_donor.rotation[i][j]);
        let t = v(s.mandible_from_donor.translation_mm);
        let place = |q: Vector3<f64>| rot * q + t;
        assert!((place(tip_d + a * s.donor_start_mm) - ends[k]).norm() < 1e-6);
        assert!((place(tip_d + a * (s.donor_start_mm + length)) - ends[k + 1]).norm() < 1e-6);
        assert!((rot * a - dk).norm() < 1e-9);
    }
    // Deviation of the chords from the contour: the contour sampled every 0.005 mm of arc.
    let contour: Vec<Vector3<f64>> = r.contour.points_mm.iter().map(|&p| v(p)).collect();
    let distance = |p: &Vector3<f64>| {
        (0..n)
            .map(|k| {
                let ab = ends[k + 1] - ends[k];
                let u = ((p - ends[k]).dot(&ab) / ab.norm_squared()).clamp(0.0, 1.0);
                (p - (ends[k] + ab * u)).norm()
            })
            .fold(f64::INFINITY, f64::min)
    };
    let (mut max, mut integral, mut arc) = (0.0f64, 0.0, 0.0);
    for w in contour.windows(2) {
        let len = (w[1] - w[0]).norm();
        let steps = ((len / 0.005).ceil() as usize).max(1);
        for i in 0..steps {
            let p0 = w[0] + (w[1] - w[0]) * (i as f64 / steps as f64);
            let p1 = w[0] + (w[1] - w[0]) * ((i + 1) as f64 / steps as f64);
            let (d0, d1) = (distance(&p0), distance(&p1));
            max = max.max(d0).max(d1);
            integral += 0.5 * (d0 + d1) * len / steps as f64;
        }
        arc += len;
    }
    close("deviation max".into(), &m["deviation"]["max_mm"], max, 0.01);
    close(
        "deviation mean".into(),
        &m["deviation"]["mean_mm"],
        integral / arc,
        0.01,
    );
    // The bone ends: segments close on one another; each stump's face is half the resection blade away.
    let placed_centre = |k: usize, at_end: bool| {
        let s = &r.segments[k];
        let rot = Matrix3::from_fn(|i, j| s.mandible_from_donor.rotation[i][j]);
        let tt = s.donor_start_mm + if at_end { (ends[k + 1] - ends[k]).norm() } else { 0.0 };
        rot * (tip_d + a * tt) + v(s.mandible_from_donor.translation_mm)
    };
    for k in 1..n {
        let want = (placed_centre(k - 1, true) - placed_centre(k, false)).norm();
        close(format!("junction {k} gap"), &m["junction_gaps_mm"][k - 1], want, 0.01);
    }
    let stump =
        |c: Vector3<f64>, f: &Face, sign: f64, blade: f64| (c - (f.p + f.n * (sign * blade / 2.0))).dot(&f.n).abs();
    close(
        "first stump gap".into(),
        &m["stump_gaps_mm"][0],
        stump(placed_centre(0, false), &first, -1.0, p1.blade_thickness_mm),
        0.01,
    );
    close(
        "second stump gap".into(),
        &m["stump_gaps_mm"][1],
        stump(placed_centre(n - 1, true), &second, 1.0, p2.blade_thickness_mm),
        0.01,
    );
    // On the donor: each face taken into the donor by its segment's transform; the narrowest gap between
    // neighbours and the donor left beyond the outermost kerfs, on the circle of the donor's radius.
    let lateral = v(r.donor.lateral);
    let lateral = (lateral - a * lateral.dot(&a)).normalize();
    let donor_face = |k: usize, face: &Face| {
        let s = &r.segments[k];
        let rot = Matrix3::from_fn(|i, j| s.mandible_from_donor.rotation[i][j]);
        Face {
            p: rot.transpose() * (face.p - v(s.mandible_from_donor.translation_mm)),
            n: rot.transpose() * face.n,
        }
    };
    for k in 1..n {
        let end = along_circle(&donor_face(k - 1, &faces[k]), tip_d, a, lateral, radius);
        let start = along_circle(&donor_face(k, &faces[k]), tip_d, a, lateral, radius);
        let want = end.iter().zip(&start).map(|(e, s)| s - e).fold(f64::INFINITY, f64::min);
        close(format!("donor gap {k}"), &m["donor_gaps_mm"][k - 1], want, 0.01);
        assert!(want >= r.parameters.gap_mm - 0.01, "donor gap {k}: {want}");
    }
    let blade = r.parameters.blade_thickness_mm;
    let shifted = |f: Face, by: f64| Face {
        p: f.p + f.n * by,
        n: f.n,
    };
    // The kerf's far face: a blade beyond the segment's face, along the axis.
    let first_kerf = shifted(donor_face(0, &faces[0]), -blade);
    let left_distal = along_circle(&first_kerf, tip_d, a, lateral, radius)
        .into_iter()
        .fold(f64::INFINITY, f64::min);
    close("donor left distal".into(), &m["left_distal_mm"], left_distal, 0.01);
    let last_kerf = shifted(donor_face(n - 1, &faces[n]), blade);
    let reach = along_circle(&last_kerf, tip_d, a, lateral, radius)
        .into_iter()
        .fold(f64::NEG_INFINITY, f64::max);
    close(
        "donor left proximal".into(),
        &m["left_proximal_mm"],
        axis_len - reach,
        0.01,
    );
    assert!(left_distal >= r.parameters.keep_distal_mm - 0.01 && axis_len - reach >= r.parameters.keep_proximal_mm);
    // The donor's fibula: a plausible adult length and shaft, lateral on the patient's right.
    assert!(
        (300.0..380.0).contains(&axis_len) && (3.0..9.0).contains(&radius),
        "{axis_len} {radius}"
    );
    assert!(lateral.x < -0.9, "{lateral}");
}

/// `guidesmith gui PLAN --screenshot`: the plan opens with its donor, the segments are proposed and the view frames
/// the mandible and the fibula side by side; the screenshot shows each segment's colour on both (left half: the
/// mandible, right half: the fibula). With `GUIDESMITH_RENDER_DIR` the screenshot is kept there (the README shows it).
#[cfg(feature = "gui")]
fn window_shows_the_segments(plan: &Path, case: &str, dir: &Path) {
    if !common::has_xvfb() {
        return;
    }
    let png = dir.join(format!("{case}_gui_flap.png"));
    let stderr = common::window_screenshot(&[plan.as_os_str()], &png);
    assert!(stderr.contains("Donor opened"), "{stderr}");
    assert!(!stderr.contains("error:"), "{stderr}");
    let (w, h, pixels) = common::read_png(&png);
    assert_eq!((w, h), (1600, 1000));
    // Pixels of the first two segments' colours (orange, green: `src/app/flap.rs`), left and right of the 3D view's
    // middle (the side panels are grey).
    let mut counts = [[0usize; 2]; 2];
    let (x_lo, x_hi) = (320, 1160);
    for (i, p) in pixels.chunks_exact(4).enumerate() {
        let x = i % w as usize;
        if x < x_lo || x >= x_hi {
            continue;
        }
        let (r, g, b) = (i32::from(p[0]), i32::from(p[1]), i32::from(p[2]));
        let half = usize::from(x >= (x_lo + x_hi) / 2);
        if r > g + 40 && g > b + 40 {
            counts[0][half] += 1;
        } else if g > r + 40 && g > b + 30 {
            counts[1][half] += 1;
        }
    }
    eprintln!("segment pixels (orange, green) x (left, right): {counts:?}");
    assert!(counts.iter().flatten().all(|&n| n > 200), "{counts:?}");
    if let Some(keep) = std::env::var_os("GUIDESMITH_RENDER_DIR") {
        std::fs::copy(&png, Path::new(&keep).join(png.file_name().expect("name"))).expect("keep the screenshot");
    }
}

#[test]
fn one_segment_bridges_the_right_body() {
    reconstruct_and_check(&Defect {
        case: "FLAP-1",
        first: ([-22.46, -47.42, -8.0], [0.5, -0.866, 0.0]),
        second: ([-35.25, -29.98, -8.0], BODY),
        segments: 1,
        limits: ["--max-deviation-mm", "2", "--max-mean-deviation-mm", "1"],
        guides: &[&["first", "second"]],
    });
}

#[test]
fn two_segments_bridge_the_right_parasymphysis_to_the_left_body() {
    reconstruct_and_check(&Defect {
        case: "FLAP-2",
        first: ([-22.46, -47.42, -8.0], BODY),
        second: ([28.0, -38.0, -8.0], LEFT_BODY),
        segments: 2,
        limits: ["--max-deviation-mm", "4.5", "--max-mean-deviation-mm", "2.5"],
        guides: &[&["first"], &["second"]],
    });
}

#[test]
fn three_segments_bridge_the_right_body_to_the_left_body() {
    reconstruct_and_check(&Defect {
        case: "FLAP-3",
        first: ([-30.0, -35.0, -8.0], BODY),
        second: ([28.0, -38.0, -8.0], LEFT_BODY),
        segments: 3,
        limits: ["--max-deviation-mm", "3.5", "--max-mean-deviation-mm", "2"],
        guides: &[&["first"], &["second"]],
    });
}

/// What refuses a reconstruction, each with the finding that says what to change, and the plan unchanged.
#[test]
fn a_reconstruction_that_breaks_a_limit_is_refused_and_a_moved_plane_makes_it_out_of_date() {
    let (Some(mandible), Some(leg)) = (common::data("ct/mandible-0014"), common::data("ct/leg-vhf-right")) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let plan_path = dir.path().join("plan.json");
    let plan = plan_path.to_str().expect("utf-8");
    run(
        &[
            "plan",
            "new",
            "--ct",
            mandible.to_str().unwrap(),
            "--case",
            "FLAP-R",
            "-o",
            plan,
        ],
        0,
    );
    for (name, p, n) in [
        ("first", [-30.0, -35.0, -8.0], BODY),
        ("second", [28.0, -38.0, -8.0], LEFT_BODY),
    ] {
        run(
            &[
                "plan",
                "add-plane",
                plan,
                "--name",
                name,
                "--point",
                &xyz(p),
                "--normal",
                &xyz(n),
                "--resect",
                "negative",
            ],
            0,
        );
    }
    let leg = leg.to_str().unwrap();
    let base = [
        "plan",
        "reconstruct",
        plan,
        "--planes",
        "first,second",
        "--donor-ct",
        leg,
    ];
    let refused = |extra: &[&str], code: &str| {
        let before = std::fs::read(&plan_path).expect("plan");
        let mut args = base.to_vec();
        args.extend(extra);
        let out = guidesmith(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{extra:?}: {err}");
        assert!(err.contains(code), "{extra:?}: expected {code}: {err}");
        assert_eq!(
            std::fs::read(&plan_path).expect("plan"),
            before,
            "a refused reconstruction changed the plan"
        );
    };
    // One straight segment across the whole arc lies far from it.
    refused(&["--segments", "1"], "flap_deviation_over_limit");
    // A fibula cannot give 300 mm of donor at its proximal end.
    refused(
        &[
            "--segments",
            "3",
            "--max-deviation-mm",
            "3.5",
            "--max-mean-deviation-mm",
            "2",
            "--keep-proximal-mm",
            "200",
        ],
        "flap_donor_end_short",
    );
    // Given ends 10 mm apart make a segment under the minimum.
    let r = Plan::load(&plan_path).expect("plan").reconstruction;
    assert!(r.is_none());
    run(
        &[
            &base[..],
            &[
                "--segments",
                "3",
                "--max-deviation-mm",
                "3.5",
                "--max-mean-deviation-mm",
                "2",
            ],
        ]
        .concat(),
        0,
    );
    let recorded = Plan::load(&plan_path).expect("plan").reconstruction.expect("recorded");
    let s = &recorded.segments;
    let short_end = v(s[0].start_mm) + (v(s[0].end_mm) - v(s[0].start_mm)).normalize() * 10.0;
    let ends = format!(
        "{};{};{};{}",
        xyz(s[0].start_mm),
        xyz([short_end.x, short_end.y, short_end.z]),
        xyz(s[2].start_mm),
        xyz(s[2].end_mm)
    );
    refused(
        &[
            "--ends",
            &ends,
            "--max-deviation-mm",
            "10",
            "--max-mean-deviation-mm",
            "10",
        ],
        "flap_segment_too_short",
    );
    // The recorded reconstruction passes `plan check`; moving a resection plane makes it out of date.
    run(&["plan", "check", plan], 0);
    run(&["plan", "move", plan, "plane", "first", "--by", "-0.5,0.866,0"], 0);
    let out = guidesmith(&["plan", "check", plan]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("flap_out_of_date"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let _ = Path::new(plan);
}
