//! Analytic shapes and their signed distance functions (SDF) in patient space, mm, negative inside.
//!
//! Why exact distances: tests measure how far a reconstructed surface lies from the true one, in mm, by evaluating
//! the SDF at mesh vertices, and the partial-volume ramp of the phantom is defined on the SDF. Both are only
//! meaningful if the SDF is the true Euclidean distance, not merely a function with the right zero set. Every shape
//! here is exact, including the ellipse (solved by a monotone Newton iteration on Eberly's root function rather
//! than the usual first-order approximation) and the horseshoe "jaw" sweep (see [`Horseshoe`]).
//!
//! Sampling a 512x512x300 series evaluates these functions ~10^8 times, so the evaluators used while sampling
//! (`Prepared`) cache trigonometry and accept a `band`: when the true distance is farther than `band` from the
//! surface they may return a cheaper bound of the same sign whose magnitude is still at least `band`, which is
//! all the partial-volume ramp needs.

use nalgebra::{Vector2, Vector3};
use serde::{Deserialize, Serialize};

/// An analytic solid in patient coordinates (LPS, mm).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Shape {
    /// A ball.
    Sphere {
        /// Centre (LPS mm).
        center_mm: [f64; 3],
        /// Radius in mm.
        radius_mm: f64,
    },
    /// A solid circular cylinder between two points, with flat caps (an implant or a drill sleeve).
    Cylinder {
        /// Centre of one cap (LPS mm).
        start_mm: [f64; 3],
        /// Centre of the other cap (LPS mm).
        end_mm: [f64; 3],
        /// Radius in mm.
        radius_mm: f64,
    },
    /// All points within `radius_mm` of the segment `start_mm`-`end_mm` (a cylinder with hemispherical caps).
    Capsule {
        /// One end of the axis segment (LPS mm).
        start_mm: [f64; 3],
        /// The other end of the axis segment (LPS mm).
        end_mm: [f64; 3],
        /// Radius in mm.
        radius_mm: f64,
    },
    /// A box aligned with the patient axes.
    Box {
        /// Centre (LPS mm).
        center_mm: [f64; 3],
        /// Half of the edge lengths along x, y, z, in mm.
        half_size_mm: [f64; 3],
    },
    /// A cylinder of elliptic section, axis along patient z, flat caps (a simple head or neck of soft tissue).
    EllipticCylinder {
        /// Centre (LPS mm).
        center_mm: [f64; 3],
        /// Semi-axes of the section along x and y, in mm.
        semi_axes_mm: [f64; 2],
        /// Half of the length along z, in mm.
        half_length_mm: f64,
    },
    /// A U-shaped tube, the stand-in for a mandible.
    Horseshoe(Horseshoe),
}

/// A U-shaped tube lying in an axial plane: a stand-in for a mandible.
///
/// The centre line, in the plane `z = arch_center_mm[2]`, is an arc of radius `arch_radius_mm` around
/// `arch_center_mm` on its anterior side (anterior is -y in LPS), continued at both ends by straight legs of
/// `leg_length_mm` that run posterior and diverge outward by `divergence_deg` each. The arc spans
/// `180 - 2 * divergence_deg` degrees, so that the legs leave it tangentially: the centre line is G1-continuous and
/// the surface has no crease at the junctions. The cross-section, in the plane normal to the centre line, is an
/// ellipse with semi-axes `half_width_mm` (horizontal, buccal-lingual) and `half_height_mm` (along z); equal
/// semi-axes give a circular tube. The two leg ends are closed by flat caps perpendicular to the legs.
///
/// Why this SDF is exact: the horizontal distance to a G1 planar curve is 1-Lipschitz, and the cross-section is
/// the same in every normal plane, so the 3D distance to the tube is the 2D distance, in the normal plane of the
/// nearest centre-line point, from (horizontal distance, height) to the section ellipse, as long as
/// `half_width_mm < arch_radius_mm`. Beyond the caps, the section distance and the distance past the cap plane
/// combine as for any straight extrusion.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Horseshoe {
    /// Centre of the front arc (LPS mm); its z is the height of the centre line.
    pub arch_center_mm: [f64; 3],
    /// Radius of the front arc of the centre line, in mm.
    pub arch_radius_mm: f64,
    /// Length of each straight leg, in mm.
    pub leg_length_mm: f64,
    /// Outward angle of each leg from the posterior (+y) direction, in degrees.
    pub divergence_deg: f64,
    /// Horizontal semi-axis of the cross-section, in mm.
    pub half_width_mm: f64,
    /// Vertical semi-axis of the cross-section, in mm.
    pub half_height_mm: f64,
}

impl Horseshoe {
    /// The two ends of the centre line (right leg, left leg), LPS mm. "Right leg" is the one on +x.
    pub fn leg_ends_mm(&self) -> [[f64; 3]; 2] {
        let p = PreparedHorseshoe::new(self);
        let z = self.arch_center_mm[2];
        let end = |s: Vector2<f64>, d: Vector2<f64>| {
            let e = p.center + s + d * p.leg_length;
            [e.x, e.y, z]
        };
        [end(p.start_right, p.dir_right), end(p.start_left, p.dir_left)]
    }

    /// Horizontal (in-plane) distance from `p_mm` to the centre line, in mm, ignoring the end caps.
    pub fn centre_line_distance_mm(&self, p_mm: [f64; 3]) -> f64 {
        PreparedHorseshoe::new(self).horizontal(p_mm[0], p_mm[1]).0
    }
}

impl Shape {
    /// Exact signed distance from `p_mm` to the surface, in mm (negative inside).
    pub fn sdf(&self, p_mm: [f64; 3]) -> f64 {
        Prepared::new(self).sdf_band(p_mm, f64::INFINITY)
    }

    /// Axis-aligned bounding box `(min, max)` in LPS mm.
    pub fn bounds_mm(&self) -> ([f64; 3], [f64; 3]) {
        Prepared::new(self).bounds()
    }

    /// Checks that every parameter is finite and in range; the message names the offending value.
    pub fn validate(&self) -> Result<(), String> {
        fn finite3(name: &str, v: &[f64; 3]) -> Result<(), String> {
            if v.iter().all(|x| x.is_finite()) {
                Ok(())
            } else {
                Err(format!("{name} must be finite, got {v:?}"))
            }
        }
        fn positive(name: &str, v: f64) -> Result<(), String> {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(format!("{name} must be finite and > 0, got {v}"))
            }
        }
        match self {
            Shape::Sphere { center_mm, radius_mm } => {
                finite3("sphere center_mm", center_mm)?;
                positive("sphere radius_mm", *radius_mm)
            }
            Shape::Cylinder {
                start_mm,
                end_mm,
                radius_mm,
            } => {
                finite3("cylinder start_mm", start_mm)?;
                finite3("cylinder end_mm", end_mm)?;
                positive("cylinder radius_mm", *radius_mm)?;
                if start_mm == end_mm {
                    return Err("cylinder start_mm and end_mm must differ".to_string());
                }
                Ok(())
            }
            Shape::Capsule {
                start_mm,
                end_mm,
                radius_mm,
            } => {
                finite3("capsule start_mm", start_mm)?;
                finite3("capsule end_mm", end_mm)?;
                positive("capsule radius_mm", *radius_mm)
            }
            Shape::Box {
                center_mm,
                half_size_mm,
            } => {
                finite3("box center_mm", center_mm)?;
                for h in half_size_mm {
                    positive("box half_size_mm", *h)?;
                }
                Ok(())
            }
            Shape::EllipticCylinder {
                center_mm,
                semi_axes_mm,
                half_length_mm,
            } => {
                finite3("elliptic cylinder center_mm", center_mm)?;
                positive("elliptic cylinder semi_axes_mm[0]", semi_axes_mm[0])?;
                positive("elliptic cylinder semi_axes_mm[1]", semi_axes_mm[1])?;
                positive("elliptic cylinder half_length_mm", *half_length_mm)
            }
            Shape::Horseshoe(h) => {
                finite3("horseshoe arch_center_mm", &h.arch_center_mm)?;
                positive("horseshoe arch_radius_mm", h.arch_radius_mm)?;
                positive("horseshoe half_width_mm", h.half_width_mm)?;
                positive("horseshoe half_height_mm", h.half_height_mm)?;
                if !(h.leg_length_mm.is_finite() && h.leg_length_mm >= 0.0) {
                    return Err(format!(
                        "horseshoe leg_length_mm must be finite and >= 0, got {}",
                        h.leg_length_mm
                    ));
                }
                if !(h.divergence_deg.is_finite() && (0.0..60.0).contains(&h.divergence_deg)) {
                    return Err(format!(
                        "horseshoe divergence_deg must be in [0, 60), got {}",
                        h.divergence_deg
                    ));
                }
                if h.half_width_mm >= h.arch_radius_mm {
                    return Err(format!(
                        "horseshoe half_width_mm ({}) must be smaller than arch_radius_mm ({}) for the \
                         tube not to fold onto itself",
                        h.half_width_mm, h.arch_radius_mm
                    ));
                }
                Ok(())
            }
        }
    }
}

/// Exact signed distance from `(x, y)` to the ellipse `x^2/semi_x^2 + y^2/semi_y^2 = 1` (negative inside).
///
/// Follows D. Eberly, "Distance from a Point to an Ellipse, an Ellipsoid, or a Hyperellipsoid" (2013), but finds
/// the root of his function `F(s)` by Newton's method started at his lower bracket: `F` is convex and decreasing
/// there, so the iterates increase monotonically to the root without overshoot (typically 5 to 15 steps instead
/// of ~60 bisections). Semi-axes must be > 0.
pub fn ellipse_sdf(x: f64, y: f64, semi_x: f64, semi_y: f64) -> f64 {
    let (mut y0, mut y1) = (x.abs(), y.abs());
    let (mut e0, mut e1) = (semi_x, semi_y);
    if e0 < e1 {
        std::mem::swap(&mut e0, &mut e1);
        std::mem::swap(&mut y0, &mut y1);
    }
    if e0 == e1 {
        return y0.hypot(y1) - e0;
    }
    let z0 = y0 / e0;
    let z1 = y1 / e1;
    let g = z0 * z0 + z1 * z1 - 1.0;
    let distance = if y1 > 0.0 {
        if y0 > 0.0 {
            if g == 0.0 {
                0.0
            } else {
                let r0 = (e0 / e1) * (e0 / e1);
                let s = ellipse_root(r0, z0, z1, g);
                let x0 = r0 * y0 / (s + r0);
                let x1 = y1 / (s + 1.0);
                (x0 - y0).hypot(x1 - y1)
            }
        } else {
            (y1 - e1).abs()
        }
    } else {
        let numer0 = e0 * y0;
        let denom0 = e0 * e0 - e1 * e1;
        if numer0 < denom0 {
            let xde0 = numer0 / denom0;
            let x0 = e0 * xde0;
            let x1 = e1 * (1.0 - xde0 * xde0).max(0.0).sqrt();
            (x0 - y0).hypot(x1)
        } else {
            (y0 - e0).abs()
        }
    };
    if g < 0.0 {
        -distance
    } else {
        distance
    }
}

/// Root of `F(s) = (r0 z0 / (s + r0))^2 + (z1 / (s + 1))^2 - 1` on Eberly's bracket, by monotone Newton.
fn ellipse_root(r0: f64, z0: f64, z1: f64, g: f64) -> f64 {
    let n0 = r0 * z0;
    let mut s = z1 - 1.0; // F(s) >= 0 here, and F is convex decreasing on the bracket.
    let upper = if g < 0.0 { 0.0 } else { n0.hypot(z1) - 1.0 };
    for _ in 0..200 {
        let a = n0 / (s + r0);
        let b = z1 / (s + 1.0);
        let f = a * a + b * b - 1.0;
        if f <= 0.0 {
            break;
        }
        let slope = -2.0 * (a * a / (s + r0) + b * b / (s + 1.0));
        let next = (s - f / slope).min(upper);
        if next <= s {
            break;
        }
        s = next;
    }
    s
}

/// Signed distance of an extrusion from its section distance `d_section` and the distance past the end plane(s)
/// `d_axial` (negative between them). Exact when both inputs are.
#[inline]
pub(crate) fn extrude(d_section: f64, d_axial: f64) -> f64 {
    if d_section > 0.0 || d_axial > 0.0 {
        // sqrt rather than hypot: mm-scale values cannot overflow, and hypot is several times slower.
        let (a, b) = (d_section.max(0.0), d_axial.max(0.0));
        (a * a + b * b).sqrt()
    } else {
        d_section.max(d_axial)
    }
}

/// A shape with its derived constants computed once, for evaluation at many points.
#[derive(Clone, Debug)]
pub(crate) enum Prepared {
    Sphere {
        center: Vector3<f64>,
        radius: f64,
    },
    Cylinder {
        start: Vector3<f64>,
        axis: Vector3<f64>,
        half_length: f64,
        radius: f64,
    },
    Capsule {
        start: Vector3<f64>,
        segment: Vector3<f64>,
        segment_len2: f64,
        radius: f64,
    },
    Box {
        center: Vector3<f64>,
        half: Vector3<f64>,
    },
    EllipticCylinder {
        center: Vector3<f64>,
        semi: [f64; 2],
        half_length: f64,
    },
    Horseshoe(PreparedHorseshoe),
}

/// Lower and upper bounds of the signed distance to an ellipse, from the distance `r` to its centre.
#[inline]
fn ellipse_bounds(r: f64, semi_a: f64, semi_b: f64) -> (f64, f64) {
    (r - semi_a.max(semi_b), r - semi_a.min(semi_b))
}

/// Exact `extrude(ellipse_sdf(u, v), w)` unless a cheap bound shows `|result| > band`.
#[inline]
fn banded_elliptic_extrusion(u: f64, v: f64, semi: [f64; 2], w: f64, band: f64) -> f64 {
    let (lower, upper) = ellipse_bounds((u * u + v * v).sqrt(), semi[0], semi[1]);
    let low = extrude(lower, w);
    if low > band {
        return low;
    }
    let high = extrude(upper, w);
    if high < -band {
        return high;
    }
    extrude(ellipse_sdf(u, v, semi[0], semi[1]), w)
}

impl Prepared {
    pub(crate) fn new(shape: &Shape) -> Self {
        match shape {
            Shape::Sphere { center_mm, radius_mm } => Prepared::Sphere {
                center: Vector3::from(*center_mm),
                radius: *radius_mm,
            },
            Shape::Cylinder {
                start_mm,
                end_mm,
                radius_mm,
            } => {
                let start = Vector3::from(*start_mm);
                let along = Vector3::from(*end_mm) - start;
                let length = along.norm();
                let axis = if length > 0.0 { along / length } else { Vector3::z() };
                Prepared::Cylinder {
                    start,
                    axis,
                    half_length: 0.5 * length,
                    radius: *radius_mm,
                }
            }
            Shape::Capsule {
                start_mm,
                end_mm,
                radius_mm,
            } => {
                let start = Vector3::from(*start_mm);
                let segment = Vector3::from(*end_mm) - start;
                Prepared::Capsule {
                    start,
                    segment,
                    segment_len2: segment.norm_squared(),
                    radius: *radius_mm,
                }
            }
            Shape::Box {
                center_mm,
                half_size_mm,
            } => Prepared::Box {
                center: Vector3::from(*center_mm),
                half: Vector3::from(*half_size_mm),
            },
            Shape::EllipticCylinder {
                center_mm,
                semi_axes_mm,
                half_length_mm,
            } => Prepared::EllipticCylinder {
                center: Vector3::from(*center_mm),
                semi: *semi_axes_mm,
                half_length: *half_length_mm,
            },
            Shape::Horseshoe(h) => Prepared::Horseshoe(PreparedHorseshoe::new(h)),
        }
    }

    /// Signed distance, exact whenever its magnitude is at most `band`; otherwise a value of the right sign
    /// whose magnitude exceeds `band`. Pass `f64::INFINITY` for the exact distance everywhere.
    #[inline]
    pub(crate) fn sdf_band(&self, p_mm: [f64; 3], band: f64) -> f64 {
        let p = Vector3::from(p_mm);
        match self {
            Prepared::Sphere { center, radius } => (p - center).norm() - radius,
            Prepared::Cylinder {
                start,
                axis,
                half_length,
                radius,
            } => {
                let d = p - start;
                let t = d.dot(axis);
                let radial = (d - axis * t).norm();
                extrude(radial - radius, (t - half_length).abs() - half_length)
            }
            Prepared::Capsule {
                start,
                segment,
                segment_len2,
                radius,
            } => {
                let d = p - start;
                let t = if *segment_len2 > 0.0 {
                    (d.dot(segment) / segment_len2).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                (d - segment * t).norm() - radius
            }
            Prepared::Box { center, half } => {
                let q = (p - center).abs() - half;
                let outside = q.map(|c| c.max(0.0)).norm();
                outside + q.max().min(0.0)
            }
            Prepared::EllipticCylinder {
                center,
                semi,
                half_length,
            } => {
                let d = p - center;
                let w = d.z.abs() - half_length;
                banded_elliptic_extrusion(d.x, d.y, *semi, w, band)
            }
            Prepared::Horseshoe(h) => h.sdf_band(p_mm, band),
        }
    }

    /// Axis-aligned bounding box `(min, max)` of the solid, LPS mm.
    pub(crate) fn bounds(&self) -> ([f64; 3], [f64; 3]) {
        let around = |c: Vector3<f64>, h: Vector3<f64>| -> ([f64; 3], [f64; 3]) { ((c - h).into(), (c + h).into()) };
        match self {
            Prepared::Sphere { center, radius } => around(*center, Vector3::repeat(*radius)),
            Prepared::Cylinder {
                start,
                axis,
                half_length,
                radius,
            } => {
                let end = start + axis * (2.0 * half_length);
                let lo = start.inf(&end) - Vector3::repeat(*radius);
                let hi = start.sup(&end) + Vector3::repeat(*radius);
                (lo.into(), hi.into())
            }
            Prepared::Capsule {
                start, segment, radius, ..
            } => {
                let end = start + segment;
                let lo = start.inf(&end) - Vector3::repeat(*radius);
                let hi = start.sup(&end) + Vector3::repeat(*radius);
                (lo.into(), hi.into())
            }
            Prepared::Box { center, half } => around(*center, *half),
            Prepared::EllipticCylinder {
                center,
                semi,
                half_length,
            } => around(*center, Vector3::new(semi[0], semi[1], *half_length)),
            Prepared::Horseshoe(h) => h.bounds(),
        }
    }
}

/// [`Horseshoe`] with its junction points and leg directions computed once.
#[derive(Clone, Debug)]
pub(crate) struct PreparedHorseshoe {
    center: Vector2<f64>,
    z: f64,
    radius: f64,
    sin_div: f64,
    leg_length: f64,
    /// Leg start relative to `center` (end of the arc), and unit leg direction, for the +x and -x legs.
    start_right: Vector2<f64>,
    dir_right: Vector2<f64>,
    start_left: Vector2<f64>,
    dir_left: Vector2<f64>,
    semi: [f64; 2],
}

impl PreparedHorseshoe {
    fn new(h: &Horseshoe) -> Self {
        let (sin_div, cos_div) = h.divergence_deg.to_radians().sin_cos();
        let r = h.arch_radius_mm;
        PreparedHorseshoe {
            center: Vector2::new(h.arch_center_mm[0], h.arch_center_mm[1]),
            z: h.arch_center_mm[2],
            radius: r,
            sin_div,
            leg_length: h.leg_length_mm,
            // Arc point at angle t: center + r (cos t, -sin t), t in [div, 180 - div]; anterior is -y.
            start_right: Vector2::new(r * cos_div, -r * sin_div),
            dir_right: Vector2::new(sin_div, cos_div),
            start_left: Vector2::new(-r * cos_div, -r * sin_div),
            dir_left: Vector2::new(-sin_div, cos_div),
            semi: [h.half_width_mm, h.half_height_mm],
        }
    }

    /// Horizontal distance to the (uncapped) centre line, and the distance past the cap plane of the leg that
    /// owns the nearest point (`-inf` when the arc owns it).
    #[inline]
    fn horizontal(&self, x: f64, y: f64) -> (f64, f64) {
        let q = Vector2::new(x, y) - self.center;
        let rho = q.norm();
        // Inside the arc's angular sector the nearest arc point is the radial projection.
        let arc = if -q.y >= rho * self.sin_div {
            (rho - self.radius).abs()
        } else {
            f64::INFINITY
        };
        let mut best = (arc, f64::NEG_INFINITY);
        for (start, dir) in [(self.start_right, self.dir_right), (self.start_left, self.dir_left)] {
            let d = q - start;
            let t = d.dot(&dir);
            let (h, w) = if t >= 0.0 {
                ((d - dir * t).norm(), t - self.leg_length)
            } else {
                (d.norm(), f64::NEG_INFINITY)
            };
            if h < best.0 {
                best = (h, w);
            }
        }
        best
    }

    #[inline]
    fn sdf_band(&self, p: [f64; 3], band: f64) -> f64 {
        let (h, w) = self.horizontal(p[0], p[1]);
        banded_elliptic_extrusion(h, p[2] - self.z, self.semi, w, band)
    }

    fn bounds(&self) -> ([f64; 3], [f64; 3]) {
        let [a, b] = self.semi;
        let end_right = self.start_right + self.dir_right * self.leg_length;
        let end_left = self.start_left + self.dir_left * self.leg_length;
        let x_max = self.start_right.x.max(end_right.x) + a;
        let x_min = self.start_left.x.min(end_left.x) - a;
        let y_min = -self.radius - a;
        let y_max = self.start_right.y.max(end_right.y).max(end_left.y) + a;
        (
            [self.center.x + x_min, self.center.y + y_min, self.z - b],
            [self.center.x + x_max, self.center.y + y_max, self.z + b],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Brute-force distance to an ellipse by dense parametric sampling and local refinement.
    fn ellipse_distance_brute(x: f64, y: f64, a: f64, b: f64) -> f64 {
        let n = 20_000;
        let mut best = (f64::INFINITY, 0.0);
        for i in 0..n {
            let t = std::f64::consts::TAU * i as f64 / n as f64;
            let d = (a * t.cos() - x).hypot(b * t.sin() - y);
            if d < best.0 {
                best = (d, t);
            }
        }
        // Golden-section refinement around the best sample.
        let step = std::f64::consts::TAU / n as f64;
        let (mut lo, mut hi) = (best.1 - step, best.1 + step);
        let f = |t: f64| (a * t.cos() - x).hypot(b * t.sin() - y);
        for _ in 0..100 {
            let m1 = lo + (hi - lo) * 0.381_966;
            let m2 = lo + (hi - lo) * 0.618_034;
            if f(m1) < f(m2) {
                hi = m2;
            } else {
                lo = m1;
            }
        }
        f(0.5 * (lo + hi))
    }

    #[test]
    fn ellipse_sdf_matches_brute_force() {
        let (a, b) = (7.0, 4.5);
        let mut worst: f64 = 0.0;
        for i in -30..=30 {
            for j in -30..=30 {
                let (x, y) = (i as f64 * 0.37, j as f64 * 0.29);
                let exact = ellipse_distance_brute(x, y, a, b);
                let inside = (x / a).powi(2) + (y / b).powi(2) < 1.0;
                let expected = if inside { -exact } else { exact };
                let got = ellipse_sdf(x, y, a, b);
                worst = worst.max((got - expected).abs());
                // The same ellipse with swapped axes and swapped point.
                let swapped = ellipse_sdf(y, x, b, a);
                assert!((swapped - got).abs() < 1e-12);
            }
        }
        assert!(worst < 1e-9, "worst error {worst}");
        // On the axes and at the centre.
        assert!((ellipse_sdf(0.0, 0.0, a, b) + b).abs() < 1e-12);
        assert!((ellipse_sdf(10.0, 0.0, a, b) - 3.0).abs() < 1e-12);
        assert!((ellipse_sdf(0.0, -6.0, a, b) - 1.5).abs() < 1e-12);
        assert_eq!(ellipse_sdf(a, 0.0, a, b), 0.0);
    }

    #[test]
    fn ellipse_sdf_far_and_near_degenerate() {
        // Far away the distance tends to r - semi axis along that direction.
        let d = ellipse_sdf(1000.0, 0.0, 50.0, 40.0);
        assert!((d - 950.0).abs() < 1e-9);
        // Very flat ellipse, point near the major axis inside.
        let got = ellipse_sdf(3.0, 1e-9, 10.0, 0.5);
        let expected = -ellipse_distance_brute(3.0, 1e-9, 10.0, 0.5);
        assert!((got - expected).abs() < 1e-7, "{got} vs {expected}");
    }

    #[test]
    fn primitive_distances() {
        let sphere = Shape::Sphere {
            center_mm: [1.0, 2.0, 3.0],
            radius_mm: 5.0,
        };
        assert!((sphere.sdf([1.0, 2.0, 3.0]) + 5.0).abs() < 1e-12);
        assert!((sphere.sdf([1.0, 9.0, 3.0]) - 2.0).abs() < 1e-12);

        let cylinder = Shape::Cylinder {
            start_mm: [0.0, 0.0, 0.0],
            end_mm: [0.0, 0.0, 10.0],
            radius_mm: 2.0,
        };
        assert!((cylinder.sdf([0.0, 0.0, 5.0]) + 2.0).abs() < 1e-12);
        assert!((cylinder.sdf([0.0, 0.0, 12.0]) - 2.0).abs() < 1e-12);
        assert!((cylinder.sdf([5.0, 0.0, 14.0]) - 5.0).abs() < 1e-12); // 3-4-5 past the rim
        assert!((cylinder.sdf([0.0, 1.5, 9.8]) + 0.2).abs() < 1e-12); // nearest is the cap

        let capsule = Shape::Capsule {
            start_mm: [0.0, 0.0, 0.0],
            end_mm: [10.0, 0.0, 0.0],
            radius_mm: 1.0,
        };
        assert!((capsule.sdf([-3.0, 0.0, 0.0]) - 2.0).abs() < 1e-12);
        assert!((capsule.sdf([5.0, 0.0, 0.5]) + 0.5).abs() < 1e-12);

        let cuboid = Shape::Box {
            center_mm: [0.0; 3],
            half_size_mm: [1.0, 2.0, 3.0],
        };
        assert!((cuboid.sdf([0.0, 0.0, 0.0]) + 1.0).abs() < 1e-12);
        assert!((cuboid.sdf([4.0, 6.0, 0.0]) - 5.0).abs() < 1e-12);

        let tissue = Shape::EllipticCylinder {
            center_mm: [0.0; 3],
            semi_axes_mm: [50.0, 40.0],
            half_length_mm: 20.0,
        };
        assert!((tissue.sdf([0.0, 0.0, 0.0]) + 20.0).abs() < 1e-12);
        assert!((tissue.sdf([0.0, 45.0, 0.0]) - 5.0).abs() < 1e-12);
        assert!((tissue.sdf([0.0, 43.0, 24.0]) - 5.0).abs() < 1e-12);
    }

    fn jaw_shape() -> Horseshoe {
        Horseshoe {
            arch_center_mm: [0.0, 0.0, 10.0],
            arch_radius_mm: 25.0,
            leg_length_mm: 35.0,
            divergence_deg: 10.0,
            half_width_mm: 6.0,
            half_height_mm: 8.0,
        }
    }

    #[test]
    fn horseshoe_distances_on_arc_legs_and_caps() {
        let h = jaw_shape();
        let shape = Shape::Horseshoe(h.clone());
        // Front of the arc (anterior = -y): centre line at (0, -25, 10).
        assert!((shape.sdf([0.0, -25.0, 10.0]) + 6.0).abs() < 1e-12);
        assert!((shape.sdf([0.0, -33.0, 10.0]) - 2.0).abs() < 1e-12);
        assert!((shape.sdf([0.0, -25.0, 20.0]) - 2.0).abs() < 1e-12);
        // The legs: a point half way along the right leg, offset outward along the leg normal.
        let div = 10f64.to_radians();
        let start = [25.0 * div.cos(), -25.0 * div.sin()];
        let dir = [div.sin(), div.cos()];
        let normal = [div.cos(), -div.sin()];
        let mid = |t: f64, off: f64| {
            [
                start[0] + dir[0] * t + normal[0] * off,
                start[1] + dir[1] * t + normal[1] * off,
                10.0,
            ]
        };
        assert!((shape.sdf(mid(17.5, 9.0)) - 3.0).abs() < 1e-12);
        assert!((shape.sdf(mid(17.5, -2.0)) + 4.0).abs() < 1e-12);
        // Past the cap: 3 mm beyond the end plane, on the centre line.
        assert!((shape.sdf(mid(38.0, 0.0)) - 3.0).abs() < 1e-12);
        // Inside near the cap: 1 mm before the end plane, on the centre line.
        assert!((shape.sdf(mid(34.0, 0.0)) + 1.0).abs() < 1e-12);
        // Past the cap and beside the tube: 3-4-5.
        assert!((shape.sdf(mid(38.0, 10.0)) - 5.0).abs() < 1e-12);
        let ends = h.leg_ends_mm();
        let expected_end = mid(35.0, 0.0);
        for k in 0..3 {
            assert!((ends[0][k] - expected_end[k]).abs() < 1e-12);
        }
        assert!((ends[1][0] + expected_end[0]).abs() < 1e-12);
    }

    #[test]
    fn horseshoe_is_continuous_across_the_junction() {
        // The junction of the arc and the right leg is at angle 10 degrees; walk across it along a parallel of
        // the centre line and check the distance stays constant (G1 join: no crease).
        let shape = Shape::Horseshoe(jaw_shape());
        let div = 10f64.to_radians();
        for k in -20..=20 {
            let angle = div + k as f64 * 0.002;
            let r = 25.0 + 3.0;
            let p = if angle >= div {
                [r * angle.cos(), -r * angle.sin(), 10.0]
            } else {
                // Continue along the leg, keeping the 3 mm outward offset.
                let t = 25.0 * (div - angle);
                let start = [25.0 * div.cos(), -25.0 * div.sin()];
                let dir = [div.sin(), div.cos()];
                let normal = [div.cos(), -div.sin()];
                [
                    start[0] + dir[0] * t + normal[0] * 3.0,
                    start[1] + dir[1] * t + normal[1] * 3.0,
                    10.0,
                ]
            };
            assert!((shape.sdf(p) + 3.0).abs() < 1e-9, "angle {angle}: {}", shape.sdf(p));
        }
    }

    #[test]
    fn horseshoe_bounds_contain_the_solid() {
        let shape = Shape::Horseshoe(jaw_shape());
        let (lo, hi) = shape.bounds_mm();
        // Sample a grid around the box: every point with sdf <= 0 must lie inside it.
        for i in -50..=50 {
            for j in -50..=50 {
                for k in -12..=12 {
                    let p = [i as f64, j as f64, 10.0 + k as f64];
                    if shape.sdf(p) <= 0.0 {
                        for a in 0..3 {
                            assert!(p[a] >= lo[a] - 1e-9 && p[a] <= hi[a] + 1e-9, "{p:?}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn banded_evaluation_keeps_sign_and_exactness_near_the_surface() {
        let shapes = [
            Shape::Horseshoe(jaw_shape()),
            Shape::EllipticCylinder {
                center_mm: [0.0, 0.0, 0.0],
                semi_axes_mm: [30.0, 20.0],
                half_length_mm: 15.0,
            },
        ];
        for shape in &shapes {
            let prepared = Prepared::new(shape);
            for i in -45..=45 {
                for j in -45..=45 {
                    for k in -4..=4 {
                        let p = [i as f64 * 0.9, j as f64 * 0.9, 10.0 + k as f64 * 2.7];
                        let exact = shape.sdf(p);
                        let band = 0.75;
                        let fast = prepared.sdf_band(p, band);
                        if exact.abs() <= band {
                            assert!((fast - exact).abs() < 1e-12, "{p:?}: {fast} vs {exact}");
                        } else {
                            assert!(fast.abs() > band && fast.signum() == exact.signum());
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn validation_rejects_bad_parameters() {
        let mut h = jaw_shape();
        h.half_width_mm = 30.0;
        assert!(Shape::Horseshoe(h).validate().is_err());
        assert!(Shape::Sphere {
            center_mm: [0.0, f64::NAN, 0.0],
            radius_mm: 1.0
        }
        .validate()
        .is_err());
        assert!(Shape::Box {
            center_mm: [0.0; 3],
            half_size_mm: [1.0, 0.0, 1.0]
        }
        .validate()
        .is_err());
        assert!(Shape::Horseshoe(jaw_shape()).validate().is_ok());
    }
}
