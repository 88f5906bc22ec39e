//! Embossed text for printed parts: lines of text set in the bundled bold face, placed where a part has a free and
//! gentle surface, and turned into closed solids that follow that surface, to be joined in the part's booleans.
//!
//! Why: a print lab and an operating room must tell guides apart (case, guide, side) and see a draft at a glance;
//! vendors emboss this on every guide. Raised letters (not engraved ones) leave every wall and the contact surface as
//! they are, so every check of the part still measures the same geometry. Each glyph becomes one closed solid: its
//! outline (flattened to 0.02 mm) is triangulated with its holes (constrained Delaunay, spade), the top follows the
//! surface `relief` above it and the bottom sinks `sink` into the part, so the union with the part is a proper
//! overlap, never a touching face. Placement is a search over a mask of free points (no other part, inside the
//! part's outline, not steep), so it is the same on every machine.

use spade::{ConstrainedDelaunayTriangulation, Point2, Triangulation};

use crate::font::{contour_area, Contour, SANS_BOLD};
use crate::mesh::{Mesh, MeshError};

/// Smallest letter height a label may have (capital letters), mm: smaller relief letters do not print legibly.
pub const MIN_CAP_HEIGHT_MM: f64 = 2.5;
/// Height of the letters above the surface, mm (at least 0.5 mm asked).
pub const RELIEF_MM: f64 = 0.6;
/// How far the letters reach into the part below its surface, mm.
pub const SINK_MM: f64 = 0.4;
/// Distance between lines, as a share of the letter height.
const LINE_GAP: f64 = 0.45;
/// Chord tolerance of the letters' curves, mm.
const FLATTEN_MM: f64 = 0.05;

/// Why a label could not be made.
#[derive(Debug, thiserror::Error)]
pub enum LabelError {
    /// A character has no glyph in the bundled font.
    #[error("the label {0:?} has a character the bundled font does not have; use letters A-Z, digits and - _ .")]
    Character(String),
    /// A glyph's outline could not be triangulated.
    #[error("the glyph {0:?} of the label could not be triangulated: {1}")]
    Glyph(char, String),
    /// The surface under the label is missing somewhere.
    #[error("the surface under the label is missing at ({0:.1}, {1:.1})")]
    NoSurface(f64, f64),
    /// The solid is not a valid mesh.
    #[error(transparent)]
    Mesh(#[from] MeshError),
}

/// One glyph set in the label's own plane (mm, y up, the block centred on the origin).
#[derive(Clone, Debug)]
struct Glyph {
    ch: char,
    contours: Vec<Contour>,
}

/// Lines of text set in the bundled bold face at a letter height.
#[derive(Clone, Debug)]
pub struct LabelLayout {
    /// The lines, as set.
    pub lines: Vec<String>,
    /// Height of the capital letters, mm.
    pub cap_height_mm: f64,
    /// Width of the block, mm.
    pub width_mm: f64,
    /// Height of the block (cap height of each line and the gaps), mm.
    pub height_mm: f64,
    glyphs: Vec<Glyph>,
}

impl LabelLayout {
    /// `lines` (each centred) at `cap_height_mm`, the block centred on the origin.
    pub fn new(lines: &[String], cap_height_mm: f64) -> Result<LabelLayout, LabelError> {
        let font = SANS_BOLD;
        let em_mm = cap_height_mm / font.cap_height_em();
        let n = lines.len().max(1) as f64;
        let height_mm = cap_height_mm * (n + LINE_GAP * (n - 1.0));
        let mut width_mm: f64 = 0.0;
        let mut glyphs = Vec::new();
        for (k, line) in lines.iter().enumerate() {
            if !font.covers(line) {
                return Err(LabelError::Character(line.clone()));
            }
            let line_w = font.width(line, em_mm);
            width_mm = width_mm.max(line_w);
            let baseline = height_mm / 2.0 - cap_height_mm * (1.0 + (1.0 + LINE_GAP) * k as f64);
            let mut x = -line_w / 2.0;
            for ch in line.chars() {
                let text = ch.to_string();
                let (contours, advance) = font.outlines(&text, em_mm, FLATTEN_MM);
                let contours: Vec<Contour> = contours
                    .into_iter()
                    .map(|c| c.into_iter().map(|p| [p[0] + x, p[1] + baseline]).collect())
                    .collect();
                if !contours.is_empty() {
                    glyphs.push(Glyph { ch, contours });
                }
                x += advance;
            }
        }
        Ok(LabelLayout {
            lines: lines.to_vec(),
            cap_height_mm,
            width_mm,
            height_mm,
            glyphs,
        })
    }
}

/// Where a label sits: its centre and the direction of its lines in the placement plane.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Placement {
    /// Centre of the block, mm.
    pub centre: [f64; 2],
    /// Angle of the lines from the plane's first axis, radians.
    pub angle_rad: f64,
}

impl Placement {
    /// A point of the label's own plane in the placement plane.
    pub fn place(&self, p: [f64; 2]) -> [f64; 2] {
        let (s, c) = self.angle_rad.sin_cos();
        [
            self.centre[0] + c * p[0] - s * p[1],
            self.centre[1] + s * p[0] + c * p[1],
        ]
    }
}

/// A mask of the points where a label may go, on a square grid over a rectangle of the placement plane.
#[derive(Clone, Debug)]
pub struct FreeMask {
    /// Corner of the grid, mm.
    pub origin: [f64; 2],
    /// Grid step, mm.
    pub step_mm: f64,
    /// Nodes along each axis.
    pub n: [usize; 2],
    /// Whether each node (row-major, first axis fastest) is free.
    pub free: Vec<bool>,
}

impl FreeMask {
    /// The mask of `free` over `[lo, hi]` at `step_mm`.
    pub fn new(lo: [f64; 2], hi: [f64; 2], step_mm: f64, free: impl Fn([f64; 2]) -> bool) -> FreeMask {
        let n = [0, 1].map(|k| (((hi[k] - lo[k]) / step_mm).ceil().max(0.0) as usize) + 1);
        let mut mask = Vec::with_capacity(n[0] * n[1]);
        for j in 0..n[1] {
            for i in 0..n[0] {
                mask.push(free([lo[0] + i as f64 * step_mm, lo[1] + j as f64 * step_mm]));
            }
        }
        FreeMask {
            origin: lo,
            step_mm,
            n,
            free: mask,
        }
    }

    /// Whether `p` is free: every node of the grid cell around it is (outside the grid: not free).
    pub fn is_free(&self, p: [f64; 2]) -> bool {
        let f = [0, 1].map(|k| (p[k] - self.origin[k]) / self.step_mm);
        if f.iter().any(|x| !x.is_finite() || *x < 0.0) {
            return false;
        }
        let (i, j) = (f[0].floor() as usize, f[1].floor() as usize);
        if i + 1 >= self.n[0] || j + 1 >= self.n[1] {
            return false;
        }
        [(i, j), (i + 1, j), (i, j + 1), (i + 1, j + 1)]
            .iter()
            .all(|&(a, b)| self.free[b * self.n[0] + a])
    }
}

/// The points of the label's block grown by `margin_mm`, every `step_mm`, in the label's own plane.
fn block_samples(layout: &LabelLayout, margin_mm: f64, step_mm: f64) -> Vec<[f64; 2]> {
    let hw = layout.width_mm / 2.0 + margin_mm;
    let hh = layout.height_mm / 2.0 + margin_mm;
    let nx = (2.0 * hw / step_mm).ceil() as usize + 1;
    let ny = (2.0 * hh / step_mm).ceil() as usize + 1;
    let mut out = Vec::with_capacity(nx * ny);
    for j in 0..ny {
        for i in 0..nx {
            out.push([
                -hw + 2.0 * hw * i as f64 / (nx - 1).max(1) as f64,
                -hh + 2.0 * hh * j as f64 / (ny - 1).max(1) as f64,
            ]);
        }
    }
    out
}

/// The place for `layout` on `mask`: centres every `step_mm` over the mask and each of `angles_rad`, the block grown
/// by `margin_mm` all free. Of those that fit, the one with the most room around it (free points of the block grown by
/// three times the margin), the first in scan order on a tie. `None` when it fits nowhere.
pub fn find_place(
    layout: &LabelLayout,
    mask: &FreeMask,
    angles_rad: &[f64],
    margin_mm: f64,
    step_mm: f64,
) -> Option<Placement> {
    find_place_near(layout, mask, angles_rad, margin_mm, step_mm, None)
}

/// [`find_place`], or with `near` the place that fits whose centre is nearest `near` (the most room on a tie): where
/// the engineer put the label, moved as little as it takes to fit.
pub fn find_place_near(
    layout: &LabelLayout,
    mask: &FreeMask,
    angles_rad: &[f64],
    margin_mm: f64,
    step_mm: f64,
    near: Option<[f64; 2]>,
) -> Option<Placement> {
    let inner = block_samples(layout, margin_mm, mask.step_mm);
    let outer = block_samples(layout, 3.0 * margin_mm, 2.0 * mask.step_mm);
    let lo = mask.origin;
    let hi = [0, 1].map(|k| mask.origin[k] + (mask.n[k] - 1) as f64 * mask.step_mm);
    let steps = [0, 1].map(|k| ((hi[k] - lo[k]) / step_mm).floor() as usize + 1);
    // Better: nearer `near` (if any), then more room; equal keeps the first in scan order.
    let mut best: Option<(f64, usize, Placement)> = None;
    for &angle_rad in angles_rad {
        for j in 0..steps[1] {
            for i in 0..steps[0] {
                let candidate = Placement {
                    centre: [lo[0] + i as f64 * step_mm, lo[1] + j as f64 * step_mm],
                    angle_rad,
                };
                if !inner.iter().all(|&p| mask.is_free(candidate.place(p))) {
                    continue;
                }
                let room = outer.iter().filter(|&&p| mask.is_free(candidate.place(p))).count();
                let distance = near.map_or(0.0, |q| (candidate.centre[0] - q[0]).hypot(candidate.centre[1] - q[1]));
                if best.is_none_or(|(d, r, _)| distance < d || (distance == d && room > r)) {
                    best = Some((distance, room, candidate));
                }
            }
        }
    }
    best.map(|(_, _, p)| p)
}

/// The label's solids and the points of its letters' tops (for checking the finished part).
#[derive(Clone, Debug)]
pub struct Embossed {
    /// Every glyph a closed outward solid (one mesh, one component or more per glyph).
    pub mesh: Mesh,
    /// Every vertex of the letters' top faces, patient mm.
    pub top_points_mm: Vec<[f64; 3]>,
}

/// The letters of `layout` at `placement`, standing `relief_mm` above the surface `height(p)` of the placement plane
/// and reaching `sink_mm` below it; `to_patient([a, b, h])` maps a point of the plane at height `h` (along the
/// surface's outward side) to patient mm, and must be right-handed (the letters then read from outside).
pub fn emboss(
    layout: &LabelLayout,
    placement: &Placement,
    height: impl Fn([f64; 2]) -> Option<f64>,
    to_patient: impl Fn([f64; 3]) -> [f64; 3],
    relief_mm: f64,
    sink_mm: f64,
) -> Result<Embossed, LabelError> {
    let mut positions: Vec<[f64; 3]> = Vec::new();
    let mut triangles: Vec<[u32; 3]> = Vec::new();
    let mut top_points_mm = Vec::new();
    for glyph in &layout.glyphs {
        // Outer contours counter-clockwise, holes clockwise (TrueType draws them the other way round): then the solid
        // is on the left of every contour.
        let contours: Vec<Contour> = glyph
            .contours
            .iter()
            .enumerate()
            .map(|(k, c)| {
                let depth = glyph
                    .contours
                    .iter()
                    .enumerate()
                    .filter(|&(m, other)| m != k && point_in_polygon(c[0], other))
                    .count();
                let want_ccw = depth % 2 == 0;
                let mut c = c.clone();
                if (contour_area(&c) > 0.0) != want_ccw {
                    c.reverse();
                }
                c
            })
            .collect();
        let mut cdt: ConstrainedDelaunayTriangulation<Point2<f64>> = ConstrainedDelaunayTriangulation::new();
        let base = positions.len() as u32;
        // Our vertex of each spade vertex: top at 2k, bottom at 2k + 1.
        let mut ours: Vec<Option<u32>> = Vec::new();
        // The spade vertex of each of ours, in our order.
        let mut handle_of = Vec::new();
        let mut rings: Vec<Vec<u32>> = Vec::new();
        let mut k = 0u32;
        for c in &contours {
            let mut ring = Vec::with_capacity(c.len());
            for &p in c {
                let q = placement.place(p);
                let h = height(q).ok_or(LabelError::NoSurface(q[0], q[1]))?;
                positions.push(to_patient([q[0], q[1], h + relief_mm]));
                positions.push(to_patient([q[0], q[1], h - sink_mm]));
                top_points_mm.push(positions[positions.len() - 2]);
                let handle = cdt
                    .insert(Point2::new(p[0], p[1]))
                    .map_err(|e| LabelError::Glyph(glyph.ch, format!("{e:?}")))?;
                let i = handle.index();
                if ours.len() <= i {
                    ours.resize(i + 1, None);
                }
                if ours[i].is_some() {
                    return Err(LabelError::Glyph(glyph.ch, "two outline points coincide".into()));
                }
                ours[i] = Some(k);
                handle_of.push(handle);
                ring.push(k);
                k += 1;
            }
            rings.push(ring);
        }
        for ring in &rings {
            for e in 0..ring.len() {
                let (a, b) = (ring[e], ring[(e + 1) % ring.len()]);
                let (ha, hb) = (handle_of[a as usize], handle_of[b as usize]);
                if cdt.try_add_constraint(ha, hb).len() != 1 {
                    return Err(LabelError::Glyph(glyph.ch, "outline edges cross or touch".into()));
                }
                // Wall: the solid is on the left of a -> b.
                let (ta, ba, tb, bb) = (base + 2 * a, base + 2 * a + 1, base + 2 * b, base + 2 * b + 1);
                triangles.push([ba, bb, tb]);
                triangles.push([ba, tb, ta]);
            }
        }
        for f in cdt.inner_faces() {
            let pos = f.positions();
            let centroid = [
                (pos[0].x + pos[1].x + pos[2].x) / 3.0,
                (pos[0].y + pos[1].y + pos[2].y) / 3.0,
            ];
            let inside = contours.iter().filter(|c| point_in_polygon(centroid, c)).count() % 2 == 1;
            if !inside {
                continue;
            }
            let v = f.vertices().map(|h| ours[h.fix().index()]);
            let (Some(a), Some(b), Some(c)) = (v[0], v[1], v[2]) else {
                return Err(LabelError::Glyph(
                    glyph.ch,
                    "a triangle has a point not on the outline".into(),
                ));
            };
            // spade's faces are counter-clockwise: the top faces up, the bottom down.
            triangles.push([base + 2 * a, base + 2 * b, base + 2 * c]);
            triangles.push([base + 2 * a + 1, base + 2 * c + 1, base + 2 * b + 1]);
        }
    }
    Ok(Embossed {
        mesh: Mesh::new(positions, triangles)?,
        top_points_mm,
    })
}

/// Even-odd point in polygon.
fn point_in_polygon(p: [f64; 2], poly: &[[f64; 2]]) -> bool {
    let mut inside = false;
    let n = poly.len();
    for k in 0..n {
        let (a, b) = (poly[k], poly[(k + 1) % n]);
        if (a[1] > p[1]) != (b[1] > p[1]) {
            let x = a[0] + (p[1] - a[1]) / (b[1] - a[1]) * (b[0] - a[0]);
            if p[0] < x {
                inside = !inside;
            }
        }
    }
    inside
}

/// Lines of at most `max_width_mm` at `cap_height_mm`: each of `lines` broken at hyphens, underscores and spaces
/// where it is wider (a part too long on its own stays whole).
pub fn wrap_lines(lines: &[String], cap_height_mm: f64, max_width_mm: f64) -> Vec<String> {
    let em_mm = cap_height_mm / SANS_BOLD.cap_height_em();
    let fits = |s: &str| SANS_BOLD.width(s, em_mm) <= max_width_mm;
    let mut out = Vec::new();
    for line in lines {
        let mut current = String::new();
        let mut piece = String::new();
        for ch in line.chars() {
            piece.push(ch);
            if matches!(ch, '-' | '_' | ' ') {
                if !current.is_empty() && !fits(format!("{current}{piece}").trim_end()) {
                    out.push(current.trim_end().to_string());
                    current.clear();
                }
                current.push_str(&piece);
                piece.clear();
            }
        }
        if !current.is_empty() && !fits(&format!("{current}{piece}")) {
            out.push(current.trim_end().to_string());
            current.clear();
        }
        current.push_str(&piece);
        out.push(current.trim_end().to_string());
    }
    out.retain(|l| !l.is_empty());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::check::MeshReport;

    #[test]
    fn letters_on_a_flat_plate_are_closed_solids_of_the_asked_height_and_relief() {
        let lines = vec!["CASE-7".to_string(), "OB8 R".to_string()];
        let layout = LabelLayout::new(&lines, 3.0).unwrap();
        assert!((layout.height_mm - 3.0 * (2.0 + LINE_GAP)).abs() < 1e-9);
        let placement = Placement {
            centre: [10.0, 5.0],
            angle_rad: 0.3,
        };
        let e = emboss(&layout, &placement, |_| Some(2.0), |p| p, RELIEF_MM, SINK_MM).unwrap();
        let r = MeshReport::new(&e.mesh);
        assert!(r.is_valid(), "{r}");
        // One piece per glyph contour that is not a hole: C A S E - 7 O B 8 R = 10 outer outlines (B, 8, O, A, R
        // have holes, which are not pieces).
        assert_eq!(r.components, 10, "{r}");
        // Tops at surface + relief, bottoms at surface - sink; capital letters as tall as asked (the 'E' of line 1).
        let zs: Vec<f64> = e.mesh.positions.iter().map(|p| p[2]).collect();
        assert!(zs.iter().all(|z| (z - 2.6).abs() < 1e-12 || (z - 1.6).abs() < 1e-12));
        assert!(e.top_points_mm.iter().all(|p| (p[2] - 2.6).abs() < 1e-12));
        // Volume: the letters' area times 1.0 mm, and the area of a filled 'O' ring is positive and below its box.
        assert!(e.mesh.signed_volume_mm3() > 0.0);
        let o = LabelLayout::new(&["O".to_string()], 3.0).unwrap();
        let oe = emboss(
            &o,
            &Placement {
                centre: [0.0, 0.0],
                angle_rad: 0.0,
            },
            |_| Some(0.0),
            |p| p,
            1.0,
            0.0,
        )
        .unwrap();
        let v = oe.mesh.signed_volume_mm3();
        assert!(v > 0.3 * o.width_mm * 3.0 && v < o.width_mm * 3.1, "{v} {}", o.width_mm);
        let zmax = oe.mesh.positions.iter().map(|p| p[1]).fold(f64::MIN, f64::max);
        let zmin = oe.mesh.positions.iter().map(|p| p[1]).fold(f64::MAX, f64::min);
        // An 'O' overshoots the cap height a little (round letters do).
        assert!((zmax - zmin) > 3.0 && (zmax - zmin) < 3.3, "{}", zmax - zmin);
    }

    #[test]
    fn a_label_goes_where_the_mask_is_free_and_nowhere_else() {
        let layout = LabelLayout::new(&["AB".to_string()], 2.5).unwrap();
        // A 30 x 10 mm plate with a 6 mm wide post in its middle: the label fits left or right of it.
        let mask = FreeMask::new([0.0, 0.0], [30.0, 10.0], 0.25, |p| {
            p[0] > 0.2 && p[0] < 29.8 && p[1] > 0.2 && p[1] < 9.8 && !(12.0..18.0).contains(&p[0])
        });
        let place = find_place(&layout, &mask, &[0.0, std::f64::consts::FRAC_PI_2], 1.0, 0.5).unwrap();
        let hw = layout.width_mm / 2.0 + 1.0;
        let x = place.centre[0];
        assert!(x + hw <= 12.0 || x - hw >= 18.0, "{place:?}");
        // Too big for any free area: none.
        let big = LabelLayout::new(&["ABCDEFGHIJKLMN".to_string()], 2.5).unwrap();
        assert!(find_place(&big, &mask, &[0.0], 1.0, 0.5).is_none());
    }

    #[test]
    fn long_lines_break_at_hyphens() {
        let lines = wrap_lines(&["SYMPHYSIS-CUTTING-GUIDE".to_string()], 2.5, 25.0);
        assert!(lines.len() >= 2, "{lines:?}");
        assert_eq!(lines.concat(), "SYMPHYSIS-CUTTING-GUIDE");
        assert_eq!(wrap_lines(&["AB".to_string()], 2.5, 25.0), vec!["AB".to_string()]);
    }
}
