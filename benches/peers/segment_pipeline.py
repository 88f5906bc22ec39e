#!/usr/bin/env python3
"""The peer of `guidesmith segment` as a whole process: pydicom + VTK flying edges + binary STL.

What a user without guidesmith would run to get a bone surface from a CT folder:

  1. pydicom reads every file of the folder (files that are not DICOM images are skipped), keeps the series of the
     first image, sorts the slices by ImagePositionPatient along the slice normal and stacks the pixels into an int16
     HU volume (RescaleSlope / RescaleIntercept applied);
  2. the volume is padded with one voxel of -1024 HU on every side, so bone cut by the field of view still gives a
     closed surface (guidesmith closes it with a virtual border); `--no-pad` skips this;
  3. vtkFlyingEdges3D extracts the iso-surface at `--iso` (default: MIN - 0.5 for `--hu MIN..MAX`, which is the iso
     `guidesmith segment --hu MIN..MAX` uses: integer HU at or above MIN are inside), normals, gradients and scalars
     off, on the grid placed in patient coordinates (axial series; other orientations are rotated afterwards);
  4. vtkSTLWriter writes a binary STL.

Everything is timed, from the interpreter's start to its exit, by the driver `compare_segment.py`; the phase times
printed on stderr (`--verbose`) are for information only.

    /tmp/peers/venv/bin/python benches/peers/segment_pipeline.py CT_DIR --hu 300..3071 -o out.stl
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pydicom
import vtk
from vtk.util import numpy_support


def read_series(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """HU volume (z, y, x) int16, spacing (z, y, x) mm, origin (x, y, z) mm, row/column/normal directions (3x3)."""
    images = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            ds = pydicom.dcmread(path)
        except pydicom.errors.InvalidDicomError:
            continue
        if "PixelData" in ds and "ImagePositionPatient" in ds:
            images.append(ds)
    if not images:
        raise SystemExit(f"{folder}: no DICOM image with a position")
    series = images[0].SeriesInstanceUID
    images = [d for d in images if d.SeriesInstanceUID == series]
    iop = np.array(images[0].ImageOrientationPatient, dtype=float)
    row, col = iop[:3], iop[3:]
    normal = np.cross(row, col)
    images.sort(key=lambda d: float(np.dot(normal, np.array(d.ImagePositionPatient, float))))
    positions = np.array([np.dot(normal, np.array(d.ImagePositionPatient, float)) for d in images])
    dz = float(np.median(np.diff(positions))) if len(images) > 1 else float(images[0].SliceThickness)
    dy, dx = (float(v) for v in images[0].PixelSpacing)
    slope = float(getattr(images[0], "RescaleSlope", 1) or 1)
    intercept = float(getattr(images[0], "RescaleIntercept", 0) or 0)
    rows, cols = int(images[0].Rows), int(images[0].Columns)
    vol = np.empty((len(images), rows, cols), dtype=np.int16)
    for i, d in enumerate(images):
        a = d.pixel_array
        if slope == 1.0 and intercept == int(intercept):
            vol[i] = a
            vol[i] += np.int16(intercept)
        else:
            vol[i] = np.rint(a.astype(np.float32) * slope + intercept)
    origin = np.array(images[0].ImagePositionPatient, float)
    return vol, np.array([dz, dy, dx]), origin, np.stack([row, col, normal])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ct", type=Path, help="CT folder (searched recursively)")
    ap.add_argument("--hu", default="300..3071", help="MIN..MAX as for guidesmith; the iso is MIN - 0.5")
    ap.add_argument("--iso", type=float, help="iso value (overrides --hu)")
    ap.add_argument("--no-pad", action="store_true", help="do not pad the volume with -1024 HU")
    ap.add_argument("-o", "--output", type=Path, required=True, help="binary STL to write")
    ap.add_argument("--verbose", action="store_true", help="print phase times on stderr")
    args = ap.parse_args()
    iso = args.iso if args.iso is not None else float(args.hu.split("..")[0]) - 0.5

    t0 = time.perf_counter()
    vol, spacing, origin, axes = read_series(args.ct)
    t1 = time.perf_counter()
    if not args.no_pad:
        vol = np.pad(vol, 1, mode="constant", constant_values=-1024)
        origin = origin - axes.T @ spacing[::-1]
    nz, ny, nx = vol.shape
    img = vtk.vtkImageData()
    img.SetDimensions(nx, ny, nz)
    img.SetSpacing(spacing[2], spacing[1], spacing[0])
    axial = np.allclose(axes, np.eye(3))
    img.SetOrigin(*(origin if axial else (0.0, 0.0, 0.0)))
    scalars = numpy_support.numpy_to_vtk(vol.reshape(-1), deep=False)
    img.GetPointData().SetScalars(scalars)
    fe = vtk.vtkFlyingEdges3D()
    fe.SetInputData(img)
    fe.SetValue(0, iso)
    fe.ComputeNormalsOff()
    fe.ComputeGradientsOff()
    fe.ComputeScalarsOff()
    fe.Update()
    surface = fe.GetOutput()
    if not axial:
        points = numpy_support.vtk_to_numpy(surface.GetPoints().GetData())
        points[:] = points @ axes + origin
    t2 = time.perf_counter()
    writer = vtk.vtkSTLWriter()
    writer.SetFileTypeToBinary()
    writer.SetFileName(str(args.output))
    writer.SetInputData(surface)
    if writer.Write() != 1:
        raise SystemExit(f"could not write {args.output}")
    t3 = time.perf_counter()
    if args.verbose:
        print(
            f"read {t1 - t0:.3f} s, pad + surface {t2 - t1:.3f} s, STL {t3 - t2:.3f} s, "
            f"{surface.GetNumberOfPolys()} triangles",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
