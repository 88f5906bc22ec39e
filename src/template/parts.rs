//! Solid template parts, each built in its own local frame as a truck B-rep solid and returned as a checked
//! [`Mesh`].
//!
//! Frames (all mm, right-handed; the guide module places them in patient LPS with a `patient_from_part` transform):
//! - **slot housing** ([`slot_housing`]): x along the cut line, centred (the cut spans `|x| <= cut_length / 2`);
//!   y = the cutting plane's normal, the slot is `|y| <= slot_width / 2`, so the planned plane is y = 0; z = the
//!   blade's approach direction away from the bone, the housing spans `0 <= z <= depth` (z = 0 is its base on the
//!   pad). It is a rectangular frame (outer rectangle with the slot as an inner loop) swept along z; the end walls
//!   beyond the cut are the bridge that keeps the guide one piece across its slot.
//! - **barrel** ([`barrel`], [`fixation_boss`]): axis = z through the origin, `0 <= z <= length`, z = 0 at the bone
//!   side, the drill enters at z = length; an optional sleeve pocket is a wider bore over the top `depth`.
//! - **boolean tools** ([`slot_slab`], [`cylinder_tool`]): same frames as the part they cut, with their own z range
//!   (negative z reaches through the pad toward the bone).
//!
//! Round faces are regular n-gons whose *flats* lie on the nominal circle (vertices at `r / cos(pi / n)`): a hole is
//! never narrower than planned and an outer wall never thinner. Every ring of a part uses the same n and phase (a
//! flat faces +x), so a barrel's wall between parallel flats is exactly `outer - inner` radius. n comes from
//! [`circle_segments`] with the part's largest radius and [`CHORD_TOLERANCE_MM`].

use std::f64::consts::PI;

use thiserror::Error;
use truck_modeling::{builder, Edge, Face, Point3, Shell, Solid, Vector3, Vertex, Wire};

use crate::mesh::Mesh;

use super::tessellate::solid_to_mesh;

/// Largest distance between a round face's polygon and its nominal circle, mm: a tenth of the finest SLA layer
/// (about 0.025..0.05 mm in x/y) is below what the printer can reproduce, and keeps barrels at a few hundred
/// triangles.
pub const CHORD_TOLERANCE_MM: f64 = 0.005;

/// Fewest segments of a round face: below 8 a "cylinder" is a square-ish prism whose flats guide a drill badly.
pub const MIN_SEGMENTS: usize = 8;
/// Most segments of a round face: caps the triangle count when a caller passes an absurdly small tolerance.
pub const MAX_SEGMENTS: usize = 1024;

/// Smallest dimension a part accepts, mm: thinner than the finest printable feature (about 0.05 mm); also keeps
/// every triangle far above the mesh module's degenerate-area threshold.
pub const MIN_FEATURE_MM: f64 = 0.05;

/// Errors of part construction. Each names the part and the value or face at fault.
#[derive(Debug, Error)]
pub enum PartError {
    /// A dimension is not finite, too small, or breaks a rule between dimensions.
    #[error("{part}: {name} = {value_mm} mm {rule}")]
    Dimension {
        /// The part (`"slot housing"`, `"barrel"`, ...).
        part: &'static str,
        /// The dimension's field name.
        name: &'static str,
        /// Its value.
        value_mm: f64,
        /// The rule it breaks.
        rule: String,
    },
    /// truck refused to build a face or solid (a bug in the construction, reported instead of panicking).
    #[error("{part}: b-rep construction failed: {detail}")]
    Construction {
        /// The part.
        part: &'static str,
        /// truck's error.
        detail: String,
    },
    /// truck-meshalgo's triangulation of a face could not be used.
    #[error("{part}: tessellation of face {face} failed: {detail}")]
    Tessellation {
        /// The part.
        part: &'static str,
        /// Index of the face in the solid's shell.
        face: usize,
        /// What was wrong.
        detail: String,
    },
    /// The welded mesh failed a mesh check.
    #[error("{part}: the tessellated part failed its mesh check: {report}")]
    Check {
        /// The part.
        part: &'static str,
        /// The check report.
        report: String,
    },
}

/// A saw slot housing (see the module doc for its frame).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SlotHousing {
    /// Length of the cut along x that the slot must let the blade sweep, mm.
    pub cut_length_mm: f64,
    /// Slot width (y), from [`super::ToleranceModel::slot_width_mm`], mm.
    pub slot_width_mm: f64,
    /// Wall each side of the slot (y), mm.
    pub slot_wall_mm: f64,
    /// End wall beyond each end of the cut (x): the bridge across the slot, mm.
    pub slot_overhang_mm: f64,
    /// Housing height along z = the slot's guidance length, mm.
    pub depth_mm: f64,
}

/// A pocket for a metal sleeve at a barrel's top.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SleevePocket {
    /// Pocket diameter, mm (larger than the bore).
    pub diameter_mm: f64,
    /// Pocket depth from the barrel's top, mm (less than the barrel length).
    pub depth_mm: f64,
}

/// A drill barrel or fixation boss: a tube along z (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Barrel {
    /// Bore diameter, mm: the drill channel ([`super::ToleranceModel::channel_diameter_mm`]) or the screw hole.
    pub bore_diameter_mm: f64,
    /// Wall around the widest bore (the pocket if any), mm.
    pub wall_mm: f64,
    /// Length along z, mm.
    pub length_mm: f64,
    /// Optional sleeve pocket at the top.
    pub sleeve_pocket: Option<SleevePocket>,
    /// Segments of the round faces; `None` = [`circle_segments`] of the outer radius at [`CHORD_TOLERANCE_MM`].
    pub segments: Option<usize>,
}

/// The slot's boolean tool: a box exactly the slot's width (slot-housing frame).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SlotSlab {
    /// Length along x, mm (at least the cut length; more lets it open the pad beyond the housing's slot).
    pub length_mm: f64,
    /// Width along y = the slot width, mm; the faces are at exactly y = +/- width / 2.
    pub width_mm: f64,
    /// Lower end along z, mm (negative: through the pad, open toward the bone).
    pub z_min_mm: f64,
    /// Upper end along z, mm (above the housing's top).
    pub z_max_mm: f64,
}

/// A round boolean tool (drill channel, screw hole): a prism along z whose flats are on the nominal circle.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CylinderTool {
    /// Nominal diameter, mm (the hole is never narrower).
    pub diameter_mm: f64,
    /// Lower end along z, mm.
    pub z_min_mm: f64,
    /// Upper end along z, mm.
    pub z_max_mm: f64,
    /// Segments; `None` = [`circle_segments`] of the radius at [`CHORD_TOLERANCE_MM`]. Pass the barrel's count to
    /// make the tool's flats coincide with the barrel's bore.
    pub segments: Option<usize>,
}

/// Segments of a regular polygon whose flats touch a circle of `radius_mm` and whose vertices stick out by at most
/// `chord_tolerance_mm` (`r (1 / cos(pi / n) - 1) <= tol`), rounded up to a multiple of 4 (so flats face +/-x and
/// +/-y) and clamped to [`MIN_SEGMENTS`]..=[`MAX_SEGMENTS`].
pub fn circle_segments(radius_mm: f64, chord_tolerance_mm: f64) -> usize {
    if !(radius_mm > 0.0 && chord_tolerance_mm > 0.0 && radius_mm.is_finite() && chord_tolerance_mm.is_finite()) {
        return MIN_SEGMENTS;
    }
    let half_angle = (radius_mm / (radius_mm + chord_tolerance_mm)).acos();
    let n = (PI / half_angle).ceil();
    let n = if n.is_finite() {
        n.min(MAX_SEGMENTS as f64) as usize
    } else {
        MAX_SEGMENTS
    };
    n.div_ceil(4).saturating_mul(4).clamp(MIN_SEGMENTS, MAX_SEGMENTS)
}

/// Vertex radius of the `segments`-gon whose flats touch a circle of `radius_mm`.
pub fn circumradius_mm(radius_mm: f64, segments: usize) -> f64 {
    radius_mm / (PI / segments as f64).cos()
}

fn check_dim(part: &'static str, name: &'static str, value_mm: f64, min_mm: f64) -> Result<(), PartError> {
    if value_mm.is_finite() && value_mm >= min_mm {
        Ok(())
    } else {
        Err(PartError::Dimension {
            part,
            name,
            value_mm,
            rule: format!("must be finite and at least {min_mm} mm"),
        })
    }
}

fn check_segments(part: &'static str, segments: usize) -> Result<usize, PartError> {
    if (MIN_SEGMENTS..=MAX_SEGMENTS).contains(&segments) {
        Ok(segments)
    } else {
        Err(PartError::Dimension {
            part,
            name: "segments",
            value_mm: segments as f64,
            rule: format!("must be a count in {MIN_SEGMENTS}..={MAX_SEGMENTS}"),
        })
    }
}

fn construction(part: &'static str) -> impl Fn(truck_modeling::errors::Error) -> PartError {
    move |e| PartError::Construction {
        part,
        detail: e.to_string(),
    }
}

/// Closed polygon wire through `points` in order.
fn polygon_wire(points: &[Point3]) -> Wire {
    let vertices: Vec<Vertex> = points.iter().map(|p| builder::vertex(*p)).collect();
    (0..vertices.len())
        .map(|i| builder::line(&vertices[i], &vertices[(i + 1) % vertices.len()]))
        .collect()
}

/// Prism from z0 to z1: `outer` (counter-clockwise seen from +z) minus `holes` (each counter-clockwise too; they are
/// reversed here), as a face at z0 swept along +z.
fn prism(
    part: &'static str,
    outer: &[[f64; 2]],
    holes: &[Vec<[f64; 2]>],
    z0: f64,
    z1: f64,
) -> Result<Solid, PartError> {
    let at = |pts: &[[f64; 2]]| pts.iter().map(|p| Point3::new(p[0], p[1], z0)).collect::<Vec<_>>();
    let mut wires = vec![polygon_wire(&at(outer))];
    for hole in holes {
        wires.push(polygon_wire(&at(hole)).inverse());
    }
    let face: Face = builder::try_attach_plane(&wires).map_err(construction(part))?;
    Ok(builder::tsweep(&face, Vector3::new(0.0, 0.0, z1 - z0)))
}

fn rectangle(half_x: f64, half_y: f64) -> [[f64; 2]; 4] {
    [
        [-half_x, -half_y],
        [half_x, -half_y],
        [half_x, half_y],
        [-half_x, half_y],
    ]
}

/// Unit directions of the polygon's vertices: vertex k at angle (2k + 1) pi / n, so the flat between vertices
/// n - 1 and 0 faces +x.
fn ring_directions(segments: usize) -> Vec<[f64; 2]> {
    (0..segments)
        .map(|k| {
            let a = (2 * k + 1) as f64 * PI / segments as f64;
            [a.cos(), a.sin()]
        })
        .collect()
}

/// Polygonal lathe: the solid swept by the closed profile `(r, z)` (counter-clockwise with r to the right and z up,
/// material on the left, every r > 0, consecutive points distinct) around the z axis, as `segments` planar facets per
/// profile edge. Horizontal profile edges become annular faces (two loops), others bands of quads. Built face by
/// face with shared edges, so truck itself checks the shell is closed and oriented.
fn lathe(part: &'static str, profile: &[(f64, f64)], segments: usize) -> Result<Solid, PartError> {
    let dirs = ring_directions(segments);
    let rings: Vec<Vec<Vertex>> = profile
        .iter()
        .map(|&(r, z)| {
            let big_r = circumradius_mm(r, segments);
            dirs.iter()
                .map(|d| builder::vertex(Point3::new(big_r * d[0], big_r * d[1], z)))
                .collect()
        })
        .collect();
    // ring_edges[i][k]: vertex k -> k + 1 of ring i (counter-clockwise seen from +z).
    let ring_edges: Vec<Vec<Edge>> = rings
        .iter()
        .map(|ring| {
            (0..segments)
                .map(|k| builder::line(&ring[k], &ring[(k + 1) % segments]))
                .collect()
        })
        .collect();
    let ring_wire = |i: usize| -> Wire { ring_edges[i].iter().cloned().collect() };
    let mut faces = Vec::new();
    for i in 0..profile.len() {
        let j = (i + 1) % profile.len();
        // Every ring is the start of one profile edge (used forward) and the end of another (used reversed), so
        // each ring edge appears once in each direction.
        if profile[i].1 == profile[j].1 {
            let wires = [ring_wire(i), ring_wire(j).inverse()];
            faces.push(builder::try_attach_plane(&wires).map_err(construction(part))?);
        } else {
            let up: Vec<Edge> = (0..segments)
                .map(|k| builder::line(&rings[i][k], &rings[j][k]))
                .collect();
            for k in 0..segments {
                let k1 = (k + 1) % segments;
                // A -> D -> C -> B with A = ring i vertex k, D = ring i vertex k+1, C = ring j vertex k+1: the
                // right-hand normal e_theta x profile direction points out of the material.
                let wire: Wire = [
                    ring_edges[i][k].clone(),
                    up[k1].clone(),
                    ring_edges[j][k].inverse(),
                    up[k].inverse(),
                ]
                .into_iter()
                .collect();
                faces.push(builder::try_attach_plane(&[wire]).map_err(construction(part))?);
            }
        }
    }
    let shell: Shell = faces.into_iter().collect();
    Solid::try_new(vec![shell]).map_err(|e| PartError::Construction {
        part,
        detail: e.to_string(),
    })
}

/// The saw slot housing (frame in the module doc).
pub fn slot_housing(p: &SlotHousing) -> Result<Mesh, PartError> {
    const PART: &str = "slot housing";
    check_dim(PART, "cut_length_mm", p.cut_length_mm, MIN_FEATURE_MM)?;
    check_dim(PART, "slot_width_mm", p.slot_width_mm, MIN_FEATURE_MM)?;
    check_dim(PART, "slot_wall_mm", p.slot_wall_mm, MIN_FEATURE_MM)?;
    check_dim(PART, "slot_overhang_mm", p.slot_overhang_mm, MIN_FEATURE_MM)?;
    check_dim(PART, "depth_mm", p.depth_mm, MIN_FEATURE_MM)?;
    let (half_cut, half_slot) = (0.5 * p.cut_length_mm, 0.5 * p.slot_width_mm);
    let outer = rectangle(half_cut + p.slot_overhang_mm, half_slot + p.slot_wall_mm);
    let slot = rectangle(half_cut, half_slot).to_vec();
    solid_to_mesh(&prism(PART, &outer, &[slot], 0.0, p.depth_mm)?, PART)
}

/// A drill barrel, with an optional sleeve pocket (frame in the module doc). Outer radius = widest bore radius +
/// wall.
pub fn barrel(p: &Barrel) -> Result<Mesh, PartError> {
    barrel_named("barrel", p)
}

/// A fixation boss: a barrel around a screw hole, without a pocket.
pub fn fixation_boss(hole_diameter_mm: f64, wall_mm: f64, length_mm: f64) -> Result<Mesh, PartError> {
    let p = Barrel {
        bore_diameter_mm: hole_diameter_mm,
        wall_mm,
        length_mm,
        sleeve_pocket: None,
        segments: None,
    };
    barrel_named("fixation boss", &p)
}

fn barrel_named(part: &'static str, p: &Barrel) -> Result<Mesh, PartError> {
    check_dim(part, "bore_diameter_mm", p.bore_diameter_mm, MIN_FEATURE_MM)?;
    check_dim(part, "wall_mm", p.wall_mm, MIN_FEATURE_MM)?;
    check_dim(part, "length_mm", p.length_mm, MIN_FEATURE_MM)?;
    let r_bore = 0.5 * p.bore_diameter_mm;
    let l = p.length_mm;
    let (profile, widest) = match p.sleeve_pocket {
        None => (
            vec![
                (r_bore, 0.0),
                (r_bore + p.wall_mm, 0.0),
                (r_bore + p.wall_mm, l),
                (r_bore, l),
            ],
            r_bore,
        ),
        Some(pocket) => {
            check_dim(
                part,
                "sleeve_pocket.diameter_mm",
                pocket.diameter_mm,
                p.bore_diameter_mm + 2.0 * MIN_FEATURE_MM,
            )?;
            check_dim(part, "sleeve_pocket.depth_mm", pocket.depth_mm, MIN_FEATURE_MM)?;
            if pocket.depth_mm > l - MIN_FEATURE_MM {
                return Err(PartError::Dimension {
                    part,
                    name: "sleeve_pocket.depth_mm",
                    value_mm: pocket.depth_mm,
                    rule: format!("must leave at least {MIN_FEATURE_MM} mm of the {l} mm barrel below the pocket"),
                });
            }
            let r_pocket = 0.5 * pocket.diameter_mm;
            let r_out = r_pocket + p.wall_mm;
            let z_step = l - pocket.depth_mm;
            let profile = vec![
                (r_bore, 0.0),
                (r_out, 0.0),
                (r_out, l),
                (r_pocket, l),
                (r_pocket, z_step),
                (r_bore, z_step),
            ];
            (profile, r_pocket)
        }
    };
    let r_out = widest + p.wall_mm;
    let segments = check_segments(
        part,
        p.segments.unwrap_or_else(|| circle_segments(r_out, CHORD_TOLERANCE_MM)),
    )?;
    solid_to_mesh(&lathe(part, &profile, segments)?, part)
}

/// The slot's boolean tool (slot-housing frame): faces at exactly y = +/- width / 2 and x = +/- length / 2.
pub fn slot_slab(p: &SlotSlab) -> Result<Mesh, PartError> {
    const PART: &str = "slot slab";
    check_dim(PART, "length_mm", p.length_mm, MIN_FEATURE_MM)?;
    check_dim(PART, "width_mm", p.width_mm, MIN_FEATURE_MM)?;
    check_dim(PART, "z_min_mm", p.z_min_mm, f64::MIN)?;
    check_dim(PART, "z_max_mm", p.z_max_mm, p.z_min_mm + MIN_FEATURE_MM)?;
    let outer = rectangle(0.5 * p.length_mm, 0.5 * p.width_mm);
    solid_to_mesh(&prism(PART, &outer, &[], p.z_min_mm, p.z_max_mm)?, PART)
}

/// A round boolean tool along z (drill channel or screw hole), flats on the nominal circle.
pub fn cylinder_tool(p: &CylinderTool) -> Result<Mesh, PartError> {
    const PART: &str = "cylinder tool";
    check_dim(PART, "diameter_mm", p.diameter_mm, MIN_FEATURE_MM)?;
    check_dim(PART, "z_min_mm", p.z_min_mm, f64::MIN)?;
    check_dim(PART, "z_max_mm", p.z_max_mm, p.z_min_mm + MIN_FEATURE_MM)?;
    let r = 0.5 * p.diameter_mm;
    let segments = check_segments(
        PART,
        p.segments.unwrap_or_else(|| circle_segments(r, CHORD_TOLERANCE_MM)),
    )?;
    let big_r = circumradius_mm(r, segments);
    let outer: Vec<[f64; 2]> = ring_directions(segments)
        .iter()
        .map(|d| [big_r * d[0], big_r * d[1]])
        .collect();
    solid_to_mesh(&prism(PART, &outer, &[], p.z_min_mm, p.z_max_mm)?, PART)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_count_meets_the_chord_tolerance() {
        for r in [0.5, 1.0, 2.5, 7.0, 30.0] {
            let n = circle_segments(r, CHORD_TOLERANCE_MM);
            assert_eq!(n % 4, 0);
            assert!(circumradius_mm(r, n) - r <= CHORD_TOLERANCE_MM, "r {r}: n {n}");
            if n > MIN_SEGMENTS {
                // The next smaller multiple of 4 would break the tolerance (n is the smallest that meets it).
                assert!(
                    circumradius_mm(r, n - 4) - r > CHORD_TOLERANCE_MM,
                    "r {r}: n {n} is not minimal"
                );
            }
        }
        assert_eq!(circle_segments(f64::NAN, 0.01), MIN_SEGMENTS);
        assert_eq!(circle_segments(1e9, 1e-12), MAX_SEGMENTS);
    }

    #[test]
    fn ring_has_a_flat_facing_plus_x() {
        let d = ring_directions(12);
        let (a, b) = (d[11], d[0]);
        assert!((a[0] - b[0]).abs() < 1e-15 && (a[1] + b[1]).abs() < 1e-15);
    }
}
