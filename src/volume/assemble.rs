//! From the slices of one series to the regular grid they will fill.
//!
//! Slice order comes from geometry alone: each slice's ImagePositionPatient projected on the slice normal
//! (row direction x column direction). File names and InstanceNumber are never trusted; they appear only in messages.
//!
//! What is checked, in this order, each failure naming the slices and values:
//! 1. one matrix size and one pixel spacing for all slices (refused otherwise);
//! 2. one orientation (refused otherwise: a series mixing planes is not one volume);
//! 3. no two slices at the same position (refused);
//! 4. the stacking direction against the slice normal: gantry tilt shows as slice origins that drift in-plane;
//! 5. the gaps between slices: equal within 1 % (and 0.01 mm) is regular; otherwise uneven (a missing slice is
//!    named as such).
//!
//! A regular, untilted series maps 1:1 onto the grid. A tilted or unevenly spaced one is resampled (see
//! `ResamplePlan` and docs/ARCHITECTURE.md): the output grid keeps the row and column directions and pixel spacing,
//! its third axis is the slice normal, and its slice spacing is the smallest gap found (but no finer than a quarter
//! of the median gap), so no acquired detail is dropped.

use nalgebra::Vector3;

use super::header::SliceHeader;
use crate::grid::GridGeometry;

/// Orientations whose cosines differ by less than this are the same plane.
const ORIENTATION_TOLERANCE: f64 = 1e-4;
/// Two slices closer than this along the normal are at the same position (mm).
const DUPLICATE_TOLERANCE_MM: f64 = 1e-3;
/// In-plane drift of slice origins below this is numerical noise, not tilt (mm).
const TILT_TOLERANCE_MM: f64 = 0.01;
/// Absolute tolerance on slice gaps (mm); the relative one is 1 %.
const GAP_TOLERANCE_MM: f64 = 0.01;

/// How the acquired slices become the regular grid.
#[derive(Clone, Debug)]
pub struct GridPlan {
    /// The output grid.
    pub geometry: GridGeometry,
    /// Slices sorted along the normal (ascending).
    pub order: Vec<usize>,
    /// Position of each sorted slice along the normal, relative to the first, in mm.
    pub offsets_mm: Vec<f64>,
    /// In-plane offset (row direction, column direction) of each sorted slice's first pixel relative to the grid
    /// origin, in mm. All zero for an untilted series.
    pub in_plane_mm: Vec<[f64; 2]>,
    /// Median gap between slices along the normal (mm); `None` for a single slice.
    pub median_gap_mm: Option<f64>,
    /// Angle between the stacking direction and the slice normal (deg).
    pub tilt_deg: f64,
    /// Whether the slices must be resampled (tilt or uneven gaps).
    pub resample: bool,
    /// Facts a user should know (resampling, tilt, thickness changes, single slice).
    pub warnings: Vec<String>,
}

/// Name a slice in messages: file name, frame and InstanceNumber.
pub fn slice_label(h: &SliceHeader) -> String {
    let name = h
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| h.path.display().to_string());
    let mut s = name;
    if h.frames_in_file > 1 {
        s.push_str(&format!(" frame {}", h.frame + 1));
    }
    if let Some(n) = h.instance_number {
        s.push_str(&format!(" (InstanceNumber {n})"));
    }
    s
}

fn fmt_vec(v: &[f64]) -> String {
    let parts: Vec<String> = v.iter().map(|x| format!("{x:.4}")).collect();
    format!("[{}]", parts.join(", "))
}

/// Plan the grid for the slices of one series. `Err` carries a message naming the offending slices and values.
pub fn plan_grid(slices: &[SliceHeader]) -> Result<GridPlan, String> {
    let first = slices.first().ok_or_else(|| "the series has no slices".to_string())?;
    // 1. matrix and pixel spacing
    for h in slices {
        if h.rows != first.rows || h.columns != first.columns {
            return Err(format!(
                "mixed matrix sizes: {} is {}x{} but {} is {}x{}",
                slice_label(first),
                first.columns,
                first.rows,
                slice_label(h),
                h.columns,
                h.rows
            ));
        }
        let ds = (h.pixel_spacing_mm[0] - first.pixel_spacing_mm[0]).abs()
            + (h.pixel_spacing_mm[1] - first.pixel_spacing_mm[1]).abs();
        if ds > 1e-4 {
            return Err(format!(
                "mixed pixel spacing: {} has {} mm but {} has {} mm",
                slice_label(first),
                fmt_vec(&first.pixel_spacing_mm),
                slice_label(h),
                fmt_vec(&h.pixel_spacing_mm)
            ));
        }
    }
    // 2. orientation
    let row = Vector3::new(first.orientation[0], first.orientation[1], first.orientation[2]);
    let col = Vector3::new(first.orientation[3], first.orientation[4], first.orientation[5]);
    if (row.norm() - 1.0).abs() > 1e-3 || (col.norm() - 1.0).abs() > 1e-3 || row.dot(&col).abs() > 1e-3 {
        return Err(format!(
            "ImageOrientationPatient {} of {} is not two orthogonal unit vectors",
            fmt_vec(&first.orientation),
            slice_label(first)
        ));
    }
    for h in slices {
        let differs = h
            .orientation
            .iter()
            .zip(first.orientation.iter())
            .any(|(a, b)| (a - b).abs() > ORIENTATION_TOLERANCE);
        if differs {
            return Err(format!(
                "mixed orientations: {} has ImageOrientationPatient {} but {} has {}",
                slice_label(first),
                fmt_vec(&first.orientation),
                slice_label(h),
                fmt_vec(&h.orientation)
            ));
        }
    }
    // Orthonormalise once, so that the grid axes are exactly orthonormal.
    let row = row.normalize();
    let col = (col - row * row.dot(&col)).normalize();
    let normal = row.cross(&col);

    // 3. order along the normal
    let position = |h: &SliceHeader| Vector3::new(h.position_mm[0], h.position_mm[1], h.position_mm[2]);
    let mut order: Vec<usize> = (0..slices.len()).collect();
    order.sort_by(|&a, &b| {
        let da = normal.dot(&position(&slices[a]));
        let db = normal.dot(&position(&slices[b]));
        da.total_cmp(&db).then(a.cmp(&b))
    });
    let base = position(&slices[order[0]]);
    let mut offsets_mm = Vec::with_capacity(order.len());
    let mut in_plane = Vec::with_capacity(order.len());
    for &i in &order {
        let d = position(&slices[i]) - base;
        offsets_mm.push(normal.dot(&d));
        in_plane.push([row.dot(&d), col.dot(&d)]);
    }
    for w in 0..order.len().saturating_sub(1) {
        if offsets_mm[w + 1] - offsets_mm[w] < DUPLICATE_TOLERANCE_MM {
            return Err(format!(
                "two slices at the same position {:.3} mm along the normal: {} and {}",
                normal.dot(&base) + offsets_mm[w],
                slice_label(&slices[order[w]]),
                slice_label(&slices[order[w + 1]])
            ));
        }
    }

    let mut warnings = Vec::new();
    // 4. tilt: in-plane drift of slice origins
    let n = order.len();
    let total_depth = offsets_mm[n - 1];
    let max_drift = in_plane
        .iter()
        .map(|p| (p[0] * p[0] + p[1] * p[1]).sqrt())
        .fold(0.0f64, f64::max);
    let tilted = n > 1 && max_drift > TILT_TOLERANCE_MM;
    let tilt_deg = if n > 1 {
        let last = in_plane[n - 1];
        let drift = (last[0] * last[0] + last[1] * last[1]).sqrt();
        drift.atan2(total_depth).to_degrees()
    } else {
        0.0
    };
    if tilted {
        warnings.push(format!(
            "gantry tilt {tilt_deg:.2} deg: slice origins drift {max_drift:.2} mm in-plane over {total_depth:.1} mm; \
             resampled onto a grid whose third axis is the slice normal"
        ));
    }

    // 5. gaps
    let gaps: Vec<f64> = offsets_mm.windows(2).map(|w| w[1] - w[0]).collect();
    let median_gap = median(&gaps);
    let mut uneven = false;
    if let Some(m) = median_gap {
        let tol = GAP_TOLERANCE_MM.max(0.01 * m);
        // Runs of equal, off-median gaps are reported once ("13 gaps of 6.999 mm from a to b").
        let mut w = 0;
        while w < gaps.len() {
            let g = gaps[w];
            if (g - m).abs() <= tol {
                w += 1;
                continue;
            }
            uneven = true;
            let mut end = w;
            while end + 1 < gaps.len() && (gaps[end + 1] - g).abs() <= tol {
                end += 1;
            }
            let a = slice_label(&slices[order[w]]);
            let b = slice_label(&slices[order[end + 1]]);
            let ratio = g / m;
            if (ratio - ratio.round()).abs() < 0.05 && ratio.round() >= 2.0 && end == w {
                warnings.push(format!(
                    "{} missing slice(s) between {a} and {b}: gap {g:.3} mm where the series steps {m:.3} mm",
                    ratio.round() as i64 - 1
                ));
            } else if end == w {
                warnings.push(format!(
                    "uneven spacing: gap {g:.3} mm between {a} and {b} (median {m:.3} mm)"
                ));
            } else {
                warnings.push(format!(
                    "uneven spacing: {} gaps of {g:.3} mm from {a} to {b} (median {m:.3} mm)",
                    end - w + 1
                ));
            }
            w = end + 1;
        }
    }
    // thickness changes
    let mut last_thickness = slices[order[0]].thickness_mm;
    for (w, &i) in order.iter().enumerate().skip(1) {
        let t = slices[i].thickness_mm;
        if let (Some(a), Some(b)) = (last_thickness, t) {
            if (a - b).abs() > 1e-3 {
                warnings.push(format!(
                    "slice thickness changes from {a} mm to {b} mm at {} (slice {} of {n})",
                    slice_label(&slices[i]),
                    w + 1
                ));
            }
        }
        last_thickness = t;
    }

    let resample = tilted || uneven;
    let [dy, dx] = first.pixel_spacing_mm;
    let (nx, ny) = (first.columns as usize, first.rows as usize);
    let (geometry, in_plane_mm) = if !resample {
        let dz = median_gap.unwrap_or_else(|| first.thickness_mm.filter(|t| *t > 0.0).unwrap_or(1.0));
        if n == 1 {
            warnings.push(format!(
                "single slice: slice spacing taken as {dz} mm (from SliceThickness, else 1 mm)"
            ));
        }
        let g = GridGeometry {
            dims: [nx, ny, n],
            spacing_mm: [dx, dy, dz],
            origin_mm: [base.x, base.y, base.z],
            axes: [row.into(), col.into(), normal.into()],
        };
        (g, vec![[0.0, 0.0]; n])
    } else {
        let m = median_gap.unwrap_or(1.0);
        let min_gap = gaps.iter().copied().fold(f64::INFINITY, f64::min);
        let dz = min_gap.max(m / 4.0);
        let nz = (total_depth / dz - 1e-6).ceil() as usize + 1;
        let dz = if nz > 1 { total_depth / (nz - 1) as f64 } else { dz };
        // The in-plane extent covers every slice; the origin stays on the first slice's pixel lattice.
        let (mut u_min, mut u_max, mut v_min, mut v_max) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
        for p in &in_plane {
            u_min = u_min.min(p[0]);
            u_max = u_max.max(p[0]);
            v_min = v_min.min(p[1]);
            v_max = v_max.max(p[1]);
        }
        let i0 = (u_min / dx - 1e-6).floor();
        let j0 = (v_min / dy - 1e-6).floor();
        let i1 = (u_max / dx + 1e-6).ceil();
        let j1 = (v_max / dy + 1e-6).ceil();
        let out_nx = nx + (i1 - i0) as usize;
        let out_ny = ny + (j1 - j0) as usize;
        let origin = base + row * (i0 * dx) + col * (j0 * dy);
        warnings.push(format!(
            "resampled to a regular grid of {out_nx}x{out_ny}x{nz} at {dx:.3}/{dy:.3}/{dz:.3} mm \
             (trilinear: bilinear within the two nearest slices, linear between them; outside the acquired slices -1024 HU)"
        ));
        let g = GridGeometry {
            dims: [out_nx, out_ny, nz],
            spacing_mm: [dx, dy, dz],
            origin_mm: [origin.x, origin.y, origin.z],
            axes: [row.into(), col.into(), normal.into()],
        };
        // Offsets of each slice's first pixel relative to the new origin, in-plane.
        let rel: Vec<[f64; 2]> = in_plane.iter().map(|p| [p[0] - i0 * dx, p[1] - j0 * dy]).collect();
        (g, rel)
    };
    Ok(GridPlan {
        geometry,
        order,
        offsets_mm,
        in_plane_mm,
        median_gap_mm: median_gap,
        tilt_deg: if tilted { tilt_deg } else { 0.0 },
        resample,
        warnings,
    })
}

fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        0.5 * (v[m - 1] + v[m])
    })
}

/// Fill the output grid from the decoded, sorted slices (`stack`: slice-major, each `rows x columns`).
///
/// For each output voxel the patient position is projected into the two acquired slices that bracket it along the
/// normal; each is sampled bilinearly at its own (possibly shifted) pixel lattice, and the two values are blended
/// linearly by distance. Positions outside an acquired slice read as -1024 HU.
pub fn resample_into(plan: &GridPlan, rows: usize, columns: usize, stack: &[i16], out: &mut [i16]) {
    use rayon::prelude::*;
    let g = &plan.geometry;
    let [nx, ny, _] = g.dims;
    let [dx, dy, dz] = g.spacing_mm;
    let slice_len = rows * columns;
    let offsets = &plan.offsets_mm;
    let sample = |s: usize, u: f64, v: f64| -> f64 {
        let p = plan.in_plane_mm[s];
        let x = (u - p[0]) / dx;
        let y = (v - p[1]) / dy;
        if x < -1e-9 || y < -1e-9 || x > (columns - 1) as f64 + 1e-9 || y > (rows - 1) as f64 + 1e-9 {
            return -1024.0;
        }
        let x = x.clamp(0.0, (columns - 1) as f64);
        let y = y.clamp(0.0, (rows - 1) as f64);
        let x0 = (x.floor() as usize).min(columns.saturating_sub(2));
        let y0 = (y.floor() as usize).min(rows.saturating_sub(2));
        let fx = if columns > 1 { x - x0 as f64 } else { 0.0 };
        let fy = if rows > 1 { y - y0 as f64 } else { 0.0 };
        let x1 = (x0 + 1).min(columns - 1);
        let y1 = (y0 + 1).min(rows - 1);
        let base = &stack[s * slice_len..(s + 1) * slice_len];
        let at = |xx: usize, yy: usize| f64::from(base[yy * columns + xx]);
        let top = at(x0, y0) * (1.0 - fx) + at(x1, y0) * fx;
        let bottom = at(x0, y1) * (1.0 - fx) + at(x1, y1) * fx;
        top * (1.0 - fy) + bottom * fy
    };
    out.par_chunks_mut(nx * ny).enumerate().for_each(|(k, plane)| {
        let w = k as f64 * dz;
        // bracketing slices
        let s1 = offsets.partition_point(|&o| o < w - 1e-9).min(offsets.len() - 1);
        let (s0, t) = if s1 == 0 || (offsets[s1] - w).abs() < 1e-9 {
            (s1, 0.0)
        } else {
            let s0 = s1 - 1;
            (s0, (w - offsets[s0]) / (offsets[s1] - offsets[s0]))
        };
        for j in 0..ny {
            let v = j as f64 * dy;
            for i in 0..nx {
                let u = i as f64 * dx;
                let a = sample(s0, u, v);
                let value = if t > 0.0 {
                    a * (1.0 - t) + sample(s1, u, v) * t
                } else {
                    a
                };
                plane[j * nx + i] = value.round().clamp(-32768.0, 32767.0) as i16;
            }
        }
    });
}
