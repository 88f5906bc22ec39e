//! Repair of bone STL files as other tools write them, made from our own surface of a real CT (mandible-0014) and
//! degraded the way 3D Slicer, Mimics or InVesalius exports are: unwelded corners with float noise (ASCII with 6
//! significant digits, binary with f32 noise), flipped facets, a whole part inside out, duplicated facets,
//! zero-area facets, holes, parts glued along an edge and overlapping parts.

mod common;

use std::fmt::Write as _;
use std::sync::OnceLock;

use guidesmith::mesh::repair::{HoleStatus, Unrepairable};
use guidesmith::mesh::{self, Mesh, MeshReport, RepairError, RepairOptions, Repaired};
use guidesmith::progress::NoProgress;
use guidesmith::segment::{HuRange, Keep, SegmentRecipe};

type Facet = [[f64; 3]; 3];

/// Our closed bone surface of the real mandible CT (about 32k faces), or `None` without the data.
fn mandible() -> Option<&'static Mesh> {
    static BONE: OnceLock<Option<Mesh>> = OnceLock::new();
    BONE.get_or_init(|| {
        let dir = common::data("ct/mandible-0014")?;
        let (volume, _) = guidesmith::volume::load(&dir, None, &NoProgress).expect("load the mandible");
        let mut recipe = SegmentRecipe::new(HuRange::new(300, 3071).expect("range"));
        recipe.keep = Keep::Largest;
        recipe.fill_cavities = true;
        let bone =
            guidesmith::bone::extract_bone(&volume, &recipe, &Default::default(), &NoProgress).expect("bone surface");
        Some(bone.mesh)
    })
    .as_ref()
}

fn facets(m: &Mesh) -> Vec<Facet> {
    m.triangles.iter().map(|t| t.map(|v| m.positions[v as usize])).collect()
}

fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

fn dist(a: [f64; 3], b: [f64; 3]) -> f64 {
    let d = sub(a, b);
    (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt()
}

fn normal(f: &Facet) -> [f64; 3] {
    let (a, b) = (sub(f[1], f[0]), sub(f[2], f[0]));
    let n = [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ];
    let len = dist(n, [0.0; 3]);
    if len > 0.0 {
        n.map(|c| c / len)
    } else {
        [0.0; 3]
    }
}

/// Deterministic pseudo-random numbers.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    /// In `0..n`.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// `k` distinct indices below `n`, sorted.
    fn pick(&mut self, k: usize, n: usize) -> Vec<usize> {
        let mut out = std::collections::BTreeSet::new();
        while out.len() < k {
            out.insert(self.below(n));
        }
        out.into_iter().collect()
    }
}

/// `x` as `f32`, moved by up to `max_ulps` units in the last place: the noise of an exporter that computes each
/// facet's corners on its own in single precision.
fn jitter(x: f64, max_ulps: i64, rng: &mut Rng) -> f32 {
    let f = x as f32;
    if f == 0.0 {
        return f;
    }
    let k = rng.below(2 * max_ulps as usize + 1) as i64 - max_ulps;
    f32::from_bits((i64::from(f.to_bits()) + k) as u32)
}

/// `%.6g` as C prints it (6 significant digits), without the exponent form.
fn g6(x: f64) -> String {
    let rounded: f64 = format!("{x:.5e}").parse().expect("a number");
    format!("{rounded}")
}

/// ASCII STL as VTK-based tools (3D Slicer, InVesalius) write it: `%.6g`, every facet with its own corners. Each
/// corner gets its own f32 noise first, except that a facet marked in `same_corners` keeps its first two corners
/// identical (a zero-area facet as written).
fn ascii_stl(facets: &[Facet], same_corners: &[bool], rng: &mut Rng) -> Vec<u8> {
    let mut s = String::from("solid mandible-0014\n");
    for (f, facet) in facets.iter().enumerate() {
        let n = normal(facet);
        let _ = writeln!(
            s,
            "  facet normal {} {} {}\n    outer loop",
            g6(n[0]),
            g6(n[1]),
            g6(n[2])
        );
        let mut corners: Vec<[f32; 3]> = facet.iter().map(|p| p.map(|c| jitter(c, 2, rng))).collect();
        if same_corners[f] {
            corners[1] = corners[0];
        }
        for c in corners {
            let _ = writeln!(
                s,
                "      vertex {} {} {}",
                g6(f64::from(c[0])),
                g6(f64::from(c[1])),
                g6(f64::from(c[2]))
            );
        }
        s.push_str("    endloop\n  endfacet\n");
    }
    s.push_str("endsolid mandible-0014\n");
    s.into_bytes()
}

/// Binary STL with up to `max_ulps` of f32 noise on every corner (as Mimics-like exporters that transform each
/// facet on its own leave).
fn binary_stl(facets: &[Facet], max_ulps: i64, rng: &mut Rng) -> Vec<u8> {
    let mut out = vec![b' '; 80];
    out[..22].copy_from_slice(b"exported bone, binary ");
    out.extend_from_slice(&(facets.len() as u32).to_le_bytes());
    for facet in facets {
        for c in normal(facet) {
            out.extend_from_slice(&(c as f32).to_le_bytes());
        }
        for p in facet {
            for &c in p {
                out.extend_from_slice(&jitter(c, max_ulps, rng).to_le_bytes());
            }
        }
        out.extend_from_slice(&[0, 0]);
    }
    out
}

fn read(bytes: &[u8], name: &str) -> Mesh {
    mesh::read_stl(bytes, name).expect("readable STL")
}

fn repaired(m: Mesh) -> Repaired {
    match mesh::repair(m, &RepairOptions::default()) {
        Ok(r) => r,
        Err(e) => panic!("repair failed: {e}"),
    }
}

fn refused(m: Mesh) -> Unrepairable {
    match mesh::repair(m, &RepairOptions::default()) {
        Ok(r) => panic!("repaired although it should not: {}", r.report),
        Err(RepairError::Unrepairable(u)) => *u,
        Err(e) => panic!("wrong error: {e}"),
    }
}

/// Volume agreement asked of a repaired file with its original: 1 ppm. If every vertex moved outward by its
/// largest rounding error (half a unit of the 6th digit plus two f32 ulps in ASCII), the volume would change by the
/// area times that, 4e-5 of the mandible's volume; independent rounding errors average out to about 1e-7.
const VOLUME_TOLERANCE: f64 = 1e-6;

#[test]
fn slicer_like_ascii_with_noise_flips_duplicates_and_zero_area_facets_is_repaired() {
    let Some(bone) = mandible() else {
        return;
    };
    let mut rng = Rng(14);
    let mut soup = facets(bone);
    let n = soup.len();
    let picked = rng.pick(45, n);
    let (flip, rest) = picked.split_at(25);
    let (duplicate, sliver) = rest.split_at(10);
    for &f in flip {
        soup[f].swap(1, 2);
    }
    for &f in duplicate {
        soup.push(soup[f]);
    }
    // Zero-area facets along an edge of a face (two corners written identically), as marching cubes leaves where a
    // sample equals the iso value.
    for &f in sliver {
        let t = soup[f];
        soup.push([t[0], t[0], t[1]]);
    }
    let mut same_corners = vec![false; soup.len()];
    for s in same_corners.iter_mut().skip(n + duplicate.len()) {
        *s = true;
    }
    let bytes = ascii_stl(&soup, &same_corners, &mut rng);
    let read_back = read(&bytes, "slicer.stl");
    // The noise splits some vertices apart even after exact welding: the file is open as read.
    let before = MeshReport::new(&read_back);
    assert!(before.boundary_edges.count > 100, "{before}");
    let r = repaired(read_back);
    assert!(r.check.is_valid(), "{}", r.check);
    assert_eq!(MeshReport::new(&r.mesh), r.check);
    assert_eq!(r.report.flipped_faces.count, flip.len(), "{}", r.report);
    assert_eq!(
        r.report
            .flipped_faces
            .examples
            .iter()
            .map(|d| d.facet as usize)
            .collect::<Vec<_>>(),
        flip.iter().copied().take(20).collect::<Vec<_>>()
    );
    assert_eq!(r.report.duplicate_faces.count, duplicate.len());
    assert_eq!(r.report.degenerate_faces.count, sliver.len());
    assert_eq!(r.report.collapsed_by_weld.count, 0);
    assert_eq!(r.report.inverted_components.count, 0);
    assert_eq!(r.report.filled_holes.count, 0);
    assert!(r.report.near_duplicate_vertices.count > 100, "{}", r.report);
    assert!(r.report.max_weld_shift_mm < mesh::repair::WELD_TOLERANCE_MM);
    // Every vertex and face of the original comes back, and nothing else.
    assert_eq!(r.mesh.positions.len(), bone.positions.len());
    assert_eq!(r.mesh.triangles.len(), bone.triangles.len());
    let bbox = bone.bounding_box().expect("non-empty");
    assert!(bbox.min_mm.iter().chain(&bbox.max_mm).all(|c| c.abs() < 100.0));
    let dv = (r.mesh.signed_volume_mm3() - bone.signed_volume_mm3()).abs();
    assert!(
        dv < VOLUME_TOLERANCE * bone.signed_volume_mm3(),
        "volume off by {dv} mm^3"
    );
    // Repairing the result again changes nothing.
    let again = repaired(r.mesh.clone());
    assert!(again.report.is_unchanged(), "{}", again.report);
}

#[test]
fn mimics_like_binary_with_one_part_inside_out_is_turned_outward() {
    let Some(bone) = mandible() else {
        return;
    };
    let mut rng = Rng(15);
    // Two parts in one file: the mandible and a copy 200 mm to the left, the copy inside out except for 15 facets.
    let mut soup = facets(bone);
    let n = soup.len();
    let copy: Vec<Facet> = soup.iter().map(|f| f.map(|p| [p[0] + 200.0, p[1], p[2]])).collect();
    soup.extend(copy);
    let kept = rng.pick(15, n);
    for (f, facet) in soup.iter_mut().enumerate().skip(n) {
        if kept.binary_search(&(f - n)).is_err() {
            facet.swap(1, 2);
        }
    }
    let r = repaired(read(&binary_stl(&soup, 1, &mut rng), "mimics.stl"));
    assert!(r.check.is_valid(), "{}", r.check);
    assert_eq!(r.report.components, 2);
    assert_eq!(r.report.inverted_components.count, 1, "{}", r.report);
    let part = &r.report.inverted_components.examples[0];
    assert!(part.bounding_box.min_mm[0] > 100.0, "{:?}", part.bounding_box);
    assert_eq!(part.triangles, n);
    assert_eq!(r.report.flipped_faces.count, 15);
    assert!(r.report.flipped_faces.examples.iter().all(|d| d.facet as usize >= n));
    assert_eq!(r.mesh.positions.len(), 2 * bone.positions.len());
    let dv = (r.mesh.signed_volume_mm3() - 2.0 * bone.signed_volume_mm3()).abs();
    assert!(
        dv < VOLUME_TOLERANCE * 2.0 * bone.signed_volume_mm3(),
        "volume off by {dv} mm^3"
    );
    assert!(
        r.report.to_string().contains("1 components turned inside out"),
        "{}",
        r.report
    );
}

/// The vertex of `m` farthest along `direction` (a point on a broad part of the surface, for the defects).
fn extreme_vertex(m: &Mesh, direction: [f64; 3]) -> [f64; 3] {
    let along = |p: &[f64; 3]| p[0] * direction[0] + p[1] * direction[1] + p[2] * direction[2];
    *m.positions
        .iter()
        .max_by(|a, b| along(a).total_cmp(&along(b)))
        .expect("non-empty")
}

#[test]
fn a_missing_facet_is_filled_and_a_cut_hole_is_refused_near_the_cut() {
    let Some(bone) = mandible() else {
        return;
    };
    let mut rng = Rng(16);
    let soup = facets(bone);
    // One facet missing (an exporter that dropped it): filled with the same triangle.
    let gone = rng.below(soup.len());
    let mut one = soup.clone();
    let removed = one.remove(gone);
    let clean = read(&binary_stl(&soup, 0, &mut rng), "clean.stl");
    let r = repaired(read(&binary_stl(&one, 0, &mut rng), "one-missing.stl"));
    assert_eq!(r.report.filled_holes.count, 1, "{}", r.report);
    let hole = &r.report.filled_holes.examples[0];
    assert_eq!(hole.edges, 3);
    let centre = [0, 1, 2].map(|a| (removed[0][a] + removed[1][a] + removed[2][a]) / 3.0);
    assert!(
        dist(hole.center_mm, centre) < 1e-4,
        "{:?} vs {centre:?}",
        hole.center_mm
    );
    assert!((r.mesh.signed_volume_mm3() - clean.signed_volume_mm3()).abs() < 1e-9 * clean.signed_volume_mm3());
    // A hole of 4 mm radius cut into the front of the chin: refused, the place named near the cut.
    let chin = extreme_vertex(bone, [0.0, -1.0, 0.0]);
    let cut: Vec<Facet> = soup
        .iter()
        .filter(|f| f.iter().all(|p| dist(*p, chin) > 4.0))
        .copied()
        .collect();
    let u = refused(read(&binary_stl(&cut, 0, &mut rng), "cut.stl"));
    assert_eq!(u.holes.count, 1, "{u}");
    let hole = &u.holes.examples[0];
    assert_eq!(hole.status, HoleStatus::TooManyEdges);
    // The rim lies about 4 mm from the cut point all round (behind the tip of the chin): its middle is inside the
    // cut ball.
    assert!(
        dist(hole.center_mm, chin) < 4.0,
        "hole at {:?}, cut at {chin:?}",
        hole.center_mm
    );

    // About 2 pi 4 mm, longer for the zig-zag of the rim.
    assert!(
        hole.perimeter_mm > 20.0 && hole.perimeter_mm < 50.0,
        "{}",
        hole.perimeter_mm
    );
    assert_eq!(u.check.non_manifold_edges.count + u.check.self_intersections.count, 0);
    let text = u.to_string();
    assert!(text.contains("close the holes in the segmentation tool"), "{text}");
}

/// A closed outward tetrahedron on `a`, `b` and two points `height_mm` out along `out`.
fn tetrahedron_on(a: [f64; 3], b: [f64; 3], out: [f64; 3], side: [f64; 3], height_mm: f64) -> Vec<Facet> {
    let mid = [0, 1, 2].map(|k| 0.5 * (a[k] + b[k]));
    let c = [0, 1, 2].map(|k| mid[k] + height_mm * out[k] + 0.5 * height_mm * side[k]);
    let d = [0, 1, 2].map(|k| mid[k] + height_mm * out[k] - 0.5 * height_mm * side[k]);
    let mut t = vec![[a, b, c], [a, d, b], [a, c, d], [b, d, c]];
    let volume: f64 = t
        .iter()
        .map(|f| {
            let n = {
                let (u, v) = (sub(f[1], f[0]), sub(f[2], f[0]));
                [
                    u[1] * v[2] - u[2] * v[1],
                    u[2] * v[0] - u[0] * v[2],
                    u[0] * v[1] - u[1] * v[0],
                ]
            };
            f[0][0] * n[0] + f[0][1] * n[1] + f[0][2] * n[2]
        })
        .sum();
    if volume < 0.0 {
        t.iter_mut().for_each(|f| f.swap(1, 2));
    }
    t
}

#[test]
fn a_part_glued_along_an_edge_is_refused_naming_the_edge() {
    let Some(bone) = mandible() else {
        return;
    };
    let mut rng = Rng(17);
    let mut soup = facets(bone);
    // A small closed part sharing one edge of the bone's most inferior face, standing out of the surface.
    let bottom = extreme_vertex(bone, [0.0, 0.0, -1.0]);
    let f = soup.iter().position(|f| f[0] == bottom).expect("a face at the vertex");
    let face = soup[f];
    let n = normal(&face);
    let edge = sub(face[1], face[0]);
    let len = dist(edge, [0.0; 3]);
    let side = [
        n[1] * edge[2] - n[2] * edge[1],
        n[2] * edge[0] - n[0] * edge[2],
        n[0] * edge[1] - n[1] * edge[0],
    ]
    .map(|c| c / len);
    soup.extend(tetrahedron_on(face[0], face[1], n, side, 2.0));
    let u = refused(read(&binary_stl(&soup, 0, &mut rng), "glued.stl"));
    assert_eq!(u.check.non_manifold_edges.count, 1, "{u}");
    let e = &u.check.non_manifold_edges.examples[0];
    let ends = [face[0], face[1]].map(|p| p.map(|c| f64::from(c as f32)));
    assert!(
        (e.from_mm == ends[0] && e.to_mm == ends[1]) || (e.from_mm == ends[1] && e.to_mm == ends[0]),
        "{e:?} vs {ends:?}"
    );
    assert_eq!(u.holes.count, 0);
    assert!(u.to_string().contains("edges shared by more than two faces"), "{u}");
}

/// A closed outward octahedron of `radius_mm` around `center`.
fn octahedron(center: [f64; 3], radius_mm: f64) -> Vec<Facet> {
    let v = |a: usize, s: f64| {
        let mut p = center;
        p[a] += s * radius_mm;
        p
    };
    let mut out = Vec::new();
    for sx in [-1.0, 1.0] {
        for sy in [-1.0, 1.0] {
            for sz in [-1.0, 1.0] {
                let f = [v(0, sx), v(1, sy), v(2, sz)];
                // Counter-clockwise seen from outside when the octant has an even number of negative signs.
                out.push(if sx * sy * sz > 0.0 { f } else { [f[0], f[2], f[1]] });
            }
        }
    }
    out
}

#[test]
fn an_overlapping_part_is_refused_where_it_crosses() {
    let Some(bone) = mandible() else {
        return;
    };
    let mut rng = Rng(18);
    let mut soup = facets(bone);
    let chin = extreme_vertex(bone, [0.0, -1.0, 0.0]);
    soup.extend(octahedron(chin, 1.5));
    let u = refused(read(&binary_stl(&soup, 0, &mut rng), "overlap.stl"));
    assert!(u.check.self_intersections.count > 0, "{u}");
    assert!(u
        .check
        .self_intersections
        .examples
        .iter()
        .all(|d| dist(d.position_mm, chin) < 4.0));
    assert_eq!(u.holes.count + u.check.non_manifold_edges.count, 0, "{u}");
    assert!(u.to_string().contains("merge overlapping parts"), "{u}");
}

#[test]
fn repair_gives_the_same_bytes_whatever_the_thread_count() {
    let Some(bone) = mandible() else {
        return;
    };
    let mut rng = Rng(19);
    let mut soup = facets(bone);
    for f in rng.pick(30, soup.len()) {
        soup[f].swap(0, 2);
    }
    let same = vec![false; soup.len()];
    let bytes = ascii_stl(&soup, &same, &mut rng);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool");
        pool.install(|| {
            let r = repaired(read(&bytes, "slicer.stl"));
            (r.mesh, serde_json::to_string(&r.report).expect("json"))
        })
    };
    assert_eq!(run(1), run(2));
}
