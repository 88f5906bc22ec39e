//! The geometry of a regular voxel grid placed in DICOM patient space (LPS, mm).
//!
//! Every sampled field of guidesmith (the HU volume, a bone mask, a distance field) lives on a `GridGeometry`.
//! Keeping the placement in one small type means that a voxel index is turned into millimetres in exactly one
//! place (`patient_from_voxel`), and that a mask can never be paired with a volume of another shape unnoticed
//! (`GridGeometry` is compared with `==`).
//!
//! Conventions, fixed for the whole crate:
//! - samples are stored with `i` (column) fastest, then `j` (row), then `k` (slice): `index = (k * ny + j) * nx + i`;
//! - `origin_mm` is the patient position of the centre of voxel `(0, 0, 0)`;
//! - `axes` are the unit directions of increasing `i`, `j` and `k` in patient space; they are orthonormal and
//!   right-handed (`axes[0] x axes[1] = axes[2]`), so a mesh that is outward-oriented in voxel space stays outward
//!   in patient space. Loaders that meet a sheared or left-handed acquisition resample or reorder it to satisfy this.

use nalgebra::{Matrix3, Matrix4, Point3, Vector3};
use serde::{Deserialize, Serialize};

/// Placement of a regular grid of `dims[0] x dims[1] x dims[2]` samples in patient space.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GridGeometry {
    /// Number of samples along `i` (columns), `j` (rows) and `k` (slices).
    pub dims: [usize; 3],
    /// Distance between neighbouring samples along `i`, `j` and `k`, in mm.
    pub spacing_mm: [f64; 3],
    /// Patient position (LPS, mm) of the centre of voxel `(0, 0, 0)`.
    pub origin_mm: [f64; 3],
    /// Unit direction of increasing `i`, `j`, `k` in patient space (orthonormal, right-handed).
    pub axes: [[f64; 3]; 3],
}

impl GridGeometry {
    /// An axis-aligned grid (axes = patient L, P, S).
    pub fn axis_aligned(dims: [usize; 3], spacing_mm: [f64; 3], origin_mm: [f64; 3]) -> Self {
        GridGeometry {
            dims,
            spacing_mm,
            origin_mm,
            axes: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        }
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.dims[0] * self.dims[1] * self.dims[2]
    }

    /// True when the grid has no sample.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Linear index of sample `(i, j, k)`.
    #[inline]
    pub fn index(&self, i: usize, j: usize, k: usize) -> usize {
        (k * self.dims[1] + j) * self.dims[0] + i
    }

    /// `(i, j, k)` of a linear index.
    #[inline]
    pub fn ijk(&self, index: usize) -> [usize; 3] {
        let nx = self.dims[0];
        let ny = self.dims[1];
        [index % nx, (index / nx) % ny, index / (nx * ny)]
    }

    /// Rotation part: the columns are the unit axes.
    pub fn rotation(&self) -> Matrix3<f64> {
        Matrix3::from_columns(&[
            Vector3::from(self.axes[0]),
            Vector3::from(self.axes[1]),
            Vector3::from(self.axes[2]),
        ])
    }

    /// Homogeneous transform taking continuous voxel coordinates `(i, j, k)` to patient LPS mm.
    pub fn patient_from_voxel(&self) -> Matrix4<f64> {
        let scaled = self.rotation() * Matrix3::from_diagonal(&Vector3::from(self.spacing_mm));
        let mut m = Matrix4::identity();
        m.fixed_view_mut::<3, 3>(0, 0).copy_from(&scaled);
        m.fixed_view_mut::<3, 1>(0, 3).copy_from(&Vector3::from(self.origin_mm));
        m
    }

    /// Homogeneous transform taking patient LPS mm to continuous voxel coordinates.
    pub fn voxel_from_patient(&self) -> Matrix4<f64> {
        // The rotation is orthonormal, so the inverse is exact: scale^-1 * R^T * (p - origin).
        let inv_scale = Matrix3::from_diagonal(&Vector3::new(
            1.0 / self.spacing_mm[0],
            1.0 / self.spacing_mm[1],
            1.0 / self.spacing_mm[2],
        ));
        let linear = inv_scale * self.rotation().transpose();
        let translation = -(linear * Vector3::from(self.origin_mm));
        let mut m = Matrix4::identity();
        m.fixed_view_mut::<3, 3>(0, 0).copy_from(&linear);
        m.fixed_view_mut::<3, 1>(0, 3).copy_from(&translation);
        m
    }

    /// Patient position (LPS mm) of continuous voxel coordinates.
    #[inline]
    pub fn to_patient(&self, voxel: [f64; 3]) -> Point3<f64> {
        let a = &self.axes;
        let s = &self.spacing_mm;
        let o = &self.origin_mm;
        let (u, v, w) = (voxel[0] * s[0], voxel[1] * s[1], voxel[2] * s[2]);
        Point3::new(
            o[0] + u * a[0][0] + v * a[1][0] + w * a[2][0],
            o[1] + u * a[0][1] + v * a[1][1] + w * a[2][1],
            o[2] + u * a[0][2] + v * a[1][2] + w * a[2][2],
        )
    }

    /// Continuous voxel coordinates of a patient position (LPS mm).
    #[inline]
    pub fn to_voxel(&self, patient_mm: Point3<f64>) -> [f64; 3] {
        let d = patient_mm - Point3::from(self.origin_mm);
        let a = &self.axes;
        [
            d.dot(&Vector3::from(a[0])) / self.spacing_mm[0],
            d.dot(&Vector3::from(a[1])) / self.spacing_mm[1],
            d.dot(&Vector3::from(a[2])) / self.spacing_mm[2],
        ]
    }

    /// Volume of one voxel in mm^3.
    pub fn voxel_volume_mm3(&self) -> f64 {
        self.spacing_mm[0] * self.spacing_mm[1] * self.spacing_mm[2]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tilted() -> GridGeometry {
        let c = 18.5f64.to_radians().cos();
        let s = 18.5f64.to_radians().sin();
        GridGeometry {
            dims: [4, 5, 6],
            spacing_mm: [0.5, 0.75, 1.25],
            origin_mm: [-10.0, 20.0, 30.0],
            axes: [[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]],
        }
    }

    #[test]
    fn voxel_and_patient_transforms_are_inverse() {
        let g = tilted();
        let p = g.to_patient([1.5, 2.0, 3.25]);
        let v = g.to_voxel(p);
        assert!((v[0] - 1.5).abs() < 1e-12 && (v[1] - 2.0).abs() < 1e-12 && (v[2] - 3.25).abs() < 1e-12);
        let m = g.voxel_from_patient() * g.patient_from_voxel();
        assert!((m - Matrix4::identity()).norm() < 1e-12);
        let h = g.patient_from_voxel() * nalgebra::Vector4::new(1.5, 2.0, 3.25, 1.0);
        assert!((Point3::new(h.x, h.y, h.z) - p).norm() < 1e-12);
    }

    #[test]
    fn index_round_trip() {
        let g = tilted();
        for idx in [0, 7, 19, 119] {
            let [i, j, k] = g.ijk(idx);
            assert_eq!(g.index(i, j, k), idx);
        }
    }
}
