//! Loading the real CT series and DICOM files of the shared data set (see its README for the reference values).

mod common;

use std::path::Path;

use guidesmith::progress::NoProgress;
use guidesmith::volume::{self, decode_single, read_header, Volume};

fn load(path: &Path) -> (Volume, volume::Scan) {
    volume::load(path, None, &NoProgress).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Trilinear sample of the volume at a patient position; `None` outside.
fn sample(v: &Volume, p: nalgebra::Point3<f64>) -> Option<f64> {
    let [nx, ny, nz] = v.geometry.dims;
    let [x, y, z] = v.geometry.to_voxel(p);
    let inside = |c: f64, n: usize| c > -1e-6 && c < (n - 1) as f64 + 1e-6;
    if !(inside(x, nx) && inside(y, ny) && inside(z, nz)) {
        return None;
    }
    let (x, y, z) = (
        x.clamp(0.0, (nx - 1) as f64),
        y.clamp(0.0, (ny - 1) as f64),
        z.clamp(0.0, (nz - 1) as f64),
    );
    let (i0, j0, k0) = (
        (x.floor() as usize).min(nx - 2),
        (y.floor() as usize).min(ny - 2),
        (z.floor() as usize).min(nz - 2),
    );
    let (fx, fy, fz) = (x - i0 as f64, y - j0 as f64, z - k0 as f64);
    let mut acc = 0.0;
    for (dk, wk) in [(0, 1.0 - fz), (1, fz)] {
        for (dj, wj) in [(0, 1.0 - fy), (1, fy)] {
            for (di, wi) in [(0, 1.0 - fx), (1, fx)] {
                acc += wi * wj * wk * f64::from(v.at(i0 + di, j0 + dj, k0 + dk));
            }
        }
    }
    Some(acc)
}

#[test]
fn cranium_0051_matches_the_reference_values_and_slice_order() {
    let Some(dir) = common::data("ct/cranium-0051") else {
        return;
    };
    let (v, scan) = load(&dir);
    assert_eq!(v.geometry.dims, [256, 256, 108]);
    assert!((v.geometry.spacing_mm[0] - 0.957).abs() < 1e-3 && (v.geometry.spacing_mm[1] - 0.957).abs() < 1e-3);
    assert!((v.geometry.spacing_mm[2] - 1.5).abs() < 1e-6);
    let stats = v.stats();
    assert_eq!((stats.min_hu, stats.max_hu), (-1024, 2986));
    assert_eq!(stats.voxels_at_or_above_226_hu, 475_759);
    assert!(scan.skipped.is_empty(), "{:?}", scan.skipped);
    // Slice order: every file's pixels must sit in the plane its own ImagePositionPatient names, whatever the
    // (shuffled) file names say.
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("list")
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    for f in files.iter().step_by(7) {
        let h = &read_header(f).expect("header")[0];
        let (_, pixels) = decode_single(f).expect("decode");
        let k = v.geometry.to_voxel(nalgebra::Point3::from(h.position_mm))[2];
        assert!(
            (k - k.round()).abs() < 1e-6,
            "{}: not on a grid plane (k = {k})",
            f.display()
        );
        let k = k.round() as usize;
        let plane = &v.hu[k * 256 * 256..(k + 1) * 256 * 256];
        assert!(plane == pixels.as_slice(), "{}: pixels not in plane {k}", f.display());
    }
    // Slice 0 is inferior: k grows towards the head (+S).
    assert!(v.geometry.axes[2][2] > 0.99);
}

#[test]
fn ge_head_tilt_is_reported_and_resampled_in_place() {
    let Some(dir) = common::data("ct/ge-head-tilt") else {
        return;
    };
    let (v, _) = load(&dir);
    let info = &v.series;
    assert!((info.tilt_deg - 18.5).abs() < 0.1, "tilt {}", info.tilt_deg);
    assert!(info.resampled);
    assert!(
        info.warnings.iter().any(|w| w.contains("gantry tilt 18.5")),
        "{:?}",
        info.warnings
    );
    assert!(
        info.warnings
            .iter()
            .any(|w| w.contains("thickness changes from 4 mm to 7 mm")),
        "{:?}",
        info.warnings
    );
    // Regular grid: orthonormal axes, third axis = slice normal.
    let g = &v.geometry;
    let r = nalgebra::Vector3::from(g.axes[0]);
    let c = nalgebra::Vector3::from(g.axes[1]);
    let n = nalgebra::Vector3::from(g.axes[2]);
    assert!((r.cross(&c) - n).norm() < 1e-9);
    // In the right place: the first and last acquired slices lie on grid planes (k = 0 and k = nz - 1); each of
    // their pixels, looked up in the volume at its own patient position, must read back. Control: the same look-up
    // ignoring the tilt (each slice's origin taken as if stacked along the normal) must not.
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("list")
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort_by(|a, b| {
        let d = |f: &Path| n.dot(&nalgebra::Vector3::from(read_header(f).expect("header")[0].position_mm));
        d(a).total_cmp(&d(b))
    });
    let first = &read_header(&files[0]).expect("header")[0];
    for (f, bound) in [(&files[0], 0.5), (&files[files.len() - 1], 10.0)] {
        let h = &read_header(f).expect("header")[0];
        let (_, pixels) = decode_single(f).expect("decode");
        let origin = nalgebra::Point3::from(h.position_mm);
        let untilted = nalgebra::Point3::from(first.position_mm)
            + n * n.dot(&(origin - nalgebra::Point3::from(first.position_mm)));
        let (mut err, mut control, mut count) = (0.0, 0.0, 0usize);
        for y in (0..h.rows as usize).step_by(9) {
            for x in (0..h.columns as usize).step_by(9) {
                let offset = r * (x as f64 * h.pixel_spacing_mm[1]) + c * (y as f64 * h.pixel_spacing_mm[0]);
                let want = f64::from(pixels[y * h.columns as usize + x]);
                err += (sample(&v, origin + offset).expect("acquired pixel inside the volume") - want).abs();
                control += sample(&v, untilted + offset).map_or(1000.0, |s| (s - want).abs());
                count += 1;
            }
        }
        let (err, control) = (err / count as f64, control / count as f64);
        eprintln!(
            "{}: mean |error| {err:.3} HU; read as untilted: {control:.1} HU",
            f.display()
        );
        assert!(err < bound, "{}: mean |error| {err} HU", f.display());
        if f != &files[0] {
            assert!(control > 5.0 * err, "{}: untilted control {control} HU", f.display());
        }
    }
}

#[test]
fn skull_phantom_skips_dirfile_with_a_reason() {
    let Some(dir) = common::data("ct/skull-phantom-1mm") else {
        return;
    };
    let (v, scan) = load(&dir);
    assert_eq!(v.geometry.dims, [512, 512, 140]);
    assert_eq!(scan.skipped.len(), 1);
    assert!(scan.skipped[0].path.ends_with("DIRFILE"));
    assert!(
        scan.skipped[0].reason.contains("DICOMDIR"),
        "{}",
        scan.skipped[0].reason
    );
}

#[test]
fn abdomen_j2k_loads_without_series_uid() {
    let Some(dir) = common::data("ct/abdomen-j2k") else {
        return;
    };
    let (v, _) = load(&dir);
    assert_eq!(v.geometry.dims, [512, 512, 20]);
    assert!(v.series.series_uid.is_empty());
    assert!(v.series.transfer_syntaxes[0].contains("JPEG 2000"));
    let s = v.stats();
    assert_eq!((s.min_hu, s.max_hu), (-1024, 1839));
}

/// The `n` 16-bit samples after the explicit-VR-LE pixel data element header (7FE0,0010) OW of length `2 n`,
/// read from the bytes without any DICOM parser.
fn raw_pixels_i16(path: &Path, n: usize) -> Vec<i16> {
    let bytes = std::fs::read(path).expect("read");
    let mut header = vec![0xE0, 0x7F, 0x10, 0x00, b'O', b'W', 0, 0];
    header.extend_from_slice(&((2 * n) as u32).to_le_bytes());
    let at = bytes
        .windows(header.len())
        .position(|w| w == header.as_slice())
        .expect("pixel data element")
        + header.len();
    bytes[at..at + 2 * n]
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect()
}

#[test]
fn every_syntax_decodes_to_the_reference_pixels() {
    let Some(dir) = common::data("dicom/syntaxes") else {
        return;
    };
    let (h, reference) = decode_single(&dir.join("CT2_UNC")).expect("uncompressed reference");
    // The reference itself, checked against the raw bytes at the end of the file (stored value + intercept).
    let raw = raw_pixels_i16(&dir.join("CT2_UNC"), reference.len());
    let icpt = h.rescale_intercept as i32;
    assert!(reference
        .iter()
        .zip(&raw)
        .all(|(&hu, &s)| i32::from(hu) == i32::from(s) + icpt));
    // Lossy bounds from the data README; pydicom with openjpeg gives the same maximum (402) for CT2_J2KI.
    for (name, bound) in [
        ("CT2_RLE", 0),
        ("CT2_JPLL", 0),
        ("CT2_JLSL", 0),
        ("CT2_J2KR", 0),
        ("CT2_JLSN", 4),
        ("CT2_J2KI", 410),
    ] {
        let (_, px) = decode_single(&dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(px.len(), reference.len(), "{name}");
        let max = px
            .iter()
            .zip(&reference)
            .map(|(a, b)| (i32::from(*a) - i32::from(*b)).abs())
            .max()
            .unwrap_or(0);
        assert!(max <= bound, "{name}: max difference {max} > {bound}");
        if bound > 0 {
            assert!(max > 0, "{name} is lossy and should differ somewhere");
        }
    }
    let mr = dir.join("mr-slice");
    let (_, first) = decode_single(&mr.join("1.dcm")).expect("mr 1");
    for i in 2..=9 {
        let (_, px) = decode_single(&mr.join(format!("{i}.dcm"))).unwrap_or_else(|e| panic!("mr {i}: {e}"));
        assert!(px == first, "mr-slice/{i}.dcm differs from 1.dcm");
    }
}

#[test]
fn every_tricky_file_loads_or_is_refused_clearly() {
    let Some(dir) = common::data("dicom/tricky") else {
        return;
    };
    // (file, Ok(dims) or Err(words the refusal must contain))
    let cases: &[(&str, Result<[usize; 3], &str>)] = &[
        ("CT_small.dcm", Ok([128, 128, 1])),
        ("bad_sequence.dcm", Ok([512, 512, 1])),
        ("explicit_VR-UN.dcm", Ok([512, 512, 1])),
        ("eCT_Supplemental.dcm", Ok([512, 512, 2])),
        ("J2K_pixelrep_mismatch.dcm", Ok([512, 512, 1])),
        ("MR_small_bigendian.dcm", Ok([64, 64, 1])),
        ("MR_small_implicit.dcm", Ok([64, 64, 1])),
        ("no_meta.dcm", Err("not a DICOM file")),
        ("ExplVR_LitEndNoMeta.dcm", Err("not an image: modality RTPLAN")),
        ("ExplVR_BigEndNoMeta.dcm", Err("not an image: modality RTPLAN")),
        ("meta_missing_tsyntax.dcm", Err("damaged")),
        ("no_meta_group_length.dcm", Err("not an image")),
        (
            "MR_truncated.dcm",
            Err("PixelData at byte 1488 claims 8192 bytes but only 8130 are left"),
        ),
        ("badVR.dcm", Err("NumberOfFrames is not an integer")),
        ("UN_sequence.dcm", Err("damaged")),
        ("image_dfl.dcm", Err("no ImagePositionPatient")),
        ("JPGExtended.dcm", Err("no ImagePositionPatient")),
        ("JPEG-lossy.dcm", Err("no ImagePositionPatient")),
        ("SC_rgb_jpeg.dcm", Err("colour image")),
        ("empty_charset_LEI.dcm", Err("not an image")),
    ];
    for (name, expected) in cases {
        let path = dir.join(name);
        let result = volume::load(&path, None, &NoProgress);
        match (expected, result) {
            (Ok(dims), Ok((v, _))) => assert_eq!(&v.geometry.dims, dims, "{name}"),
            (Err(words), Err(e)) => {
                let msg = e.to_string();
                assert!(msg.contains(name), "{name}: message does not name the file: {msg}");
                assert!(msg.contains(words), "{name}: expected {words:?} in: {msg}");
            }
            (Ok(_), Err(e)) => panic!("{name} should load: {e}"),
            (Err(words), Ok(_)) => panic!("{name} should be refused ({words})"),
        }
    }
    // Files without geometry are refused as slices but still decode (the codecs work).
    for name in ["image_dfl.dcm", "JPGExtended.dcm", "JPEG-lossy.dcm"] {
        assert!(
            decode_single(&dir.join(name)).is_err(),
            "{name}: decode_single needs geometry too"
        );
    }
    // The same two MR encodings give the same pixels.
    let (a, _) = load(&dir.join("MR_small_bigendian.dcm"));
    let (b, _) = load(&dir.join("MR_small_implicit.dcm"));
    assert!(a.hu == b.hu);
    // A whole folder of mixed files: the good series are found, every bad file is listed with a reason.
    let scan = volume::scan(&dir, &NoProgress).expect("scan");
    assert!(scan.series.len() >= 6, "{} series", scan.series.len());
    assert!(scan.skipped.len() >= 12, "{:?}", scan.skipped);
    assert!(scan.skipped.iter().all(|s| !s.reason.is_empty()));
}

#[test]
fn enhanced_ct_frames_are_placed_by_their_functional_groups() {
    let Some(path) = common::data("dicom/tricky/eCT_Supplemental.dcm") else {
        return;
    };
    let (v, _) = load(&path);
    assert!(
        (v.geometry.spacing_mm[2] - 10.0).abs() < 1e-6,
        "{:?}",
        v.geometry.spacing_mm
    );
    assert_eq!(v.series.slices, 2);
}
