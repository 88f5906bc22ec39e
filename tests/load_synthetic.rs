//! The loader against synthetic series with known truth: every transfer syntax and pixel format voxel for voxel,
//! shuffled names, tilt, uneven spacing, damaged files among good ones, refusals, privacy and determinism.

use std::path::Path;

use guidesmith::progress::NoProgress;
use guidesmith::synth::{
    write_series_with, Compression, FileNaming, InstanceOrder, Phantom, PixelFormat, SeriesSpec, SliceLayout,
    WriteOptions, WrittenSeries,
};
use guidesmith::volume::{self, Volume};

fn small_spec() -> SeriesSpec {
    SeriesSpec::axial(48, 40, 12, 2.5, 2.0).centered_on([0.0, 0.0, 0.0])
}

fn write(dir: &Path, phantom: &Phantom, spec: &SeriesSpec) -> WrittenSeries {
    let options = WriteOptions {
        keep_hu: true,
        ..WriteOptions::default()
    };
    write_series_with(phantom, spec, dir, options).expect("write synthetic series")
}

fn load(dir: &Path) -> Volume {
    volume::load(dir, None, &NoProgress)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .0
}

#[test]
fn every_compression_and_pixel_format_loads_voxel_for_voxel() {
    let phantom = Phantom::jaw().with_noise(20.0, 7);
    for compression in Compression::ALL {
        for format in [
            PixelFormat::SIGNED_16,
            PixelFormat::UNSIGNED_16_OFFSET,
            PixelFormat::SIGNED_12,
            PixelFormat::UNSIGNED_12_OFFSET,
        ] {
            let tmp = tempfile::tempdir().expect("tempdir");
            let mut spec = small_spec();
            spec.compression = compression;
            spec.pixel_format = format;
            spec.file_naming = FileNaming::Shuffled;
            spec.instance_order = InstanceOrder::Decreasing;
            let written = write(tmp.path(), &phantom, &spec);
            let v = load(tmp.path());
            let truth = written.geometry().expect("regular series has a geometry");
            assert_eq!(v.geometry.dims, truth.dims, "{compression:?} {format:?}");
            for a in 0..3 {
                assert!((v.geometry.origin_mm[a] - truth.origin_mm[a]).abs() < 1e-6);
                assert!((v.geometry.spacing_mm[a] - truth.spacing_mm[a]).abs() < 1e-6);
            }
            let expected = written.hu.as_ref().expect("kept hu");
            assert!(
                &v.hu == expected,
                "{compression:?} {format:?}: HU differ from what was written"
            );
        }
    }
}

#[test]
fn native_fast_path_and_dicom_pixeldata_agree() {
    // The same series through the fast path (default) and through dicom-pixeldata (a deflated copy has no fast
    // path) must give the same volume.
    let phantom = Phantom::jaw().with_noise(20.0, 3);
    let a = tempfile::tempdir().expect("tempdir");
    let b = tempfile::tempdir().expect("tempdir");
    let mut spec = small_spec();
    write(a.path(), &phantom, &spec);
    spec.compression = Compression::DeflatedExplicitVrLittleEndian;
    write(b.path(), &phantom, &spec);
    assert!(load(a.path()).hu == load(b.path()).hu);
}

/// Mean |HU - truth| over voxels well inside the acquired field, against the noise-free phantom.
fn mean_error_against_phantom(v: &Volume, phantom: &Phantom) -> f64 {
    let [nx, ny, nz] = v.geometry.dims;
    let mut sum = 0.0;
    let mut n = 0usize;
    for k in 1..nz - 1 {
        for j in (4..ny - 4).step_by(2) {
            for i in (4..nx - 4).step_by(2) {
                let hu = f64::from(v.at(i, j, k));
                if hu <= -1020.0 {
                    continue; // outside the acquired slices
                }
                let p = v.geometry.to_patient([i as f64, j as f64, k as f64]);
                sum += (hu - phantom.hu_at([p.x, p.y, p.z])).abs();
                n += 1;
            }
        }
    }
    sum / n as f64
}

#[test]
fn tilted_series_is_resampled_into_place() {
    let phantom = Phantom::jaw();
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut spec = SeriesSpec::axial(96, 96, 30, 1.0, 1.0);
    spec.gantry_tilt_deg = 15.0;
    let spec = spec.centered_on([0.0, 10.0, 0.0]);
    write(tmp.path(), &phantom, &spec);
    let v = load(tmp.path());
    assert!((v.series.tilt_deg - 15.0).abs() < 0.05, "tilt {}", v.series.tilt_deg);
    assert!(v.series.resampled);
    let err = mean_error_against_phantom(&v, &phantom);
    eprintln!("tilted synthetic series: mean |HU error| {err:.2}");
    // A bone edge of 1500 HU sampled at 1 mm and interpolated: a few HU on average; a misplaced slice would be
    // off by hundreds along every edge.
    assert!(err < 15.0, "mean |HU error| {err}");
}

#[test]
fn missing_slice_is_reported_and_resampled() {
    let phantom = Phantom::jaw();
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut spec = SeriesSpec::axial(96, 96, 1, 1.0, 1.0);
    let offsets: Vec<f64> = (0..24).filter(|&s| s != 11).map(|s| s as f64).collect();
    spec.slices = SliceLayout::Offsets { offsets_mm: offsets };
    let spec = spec.centered_on([0.0, 10.0, 0.0]);
    write(tmp.path(), &phantom, &spec);
    let v = load(tmp.path());
    assert!(
        v.series.warnings.iter().any(|w| w.contains("1 missing slice")),
        "{:?}",
        v.series.warnings
    );
    assert_eq!(v.geometry.dims[2], 24, "regular 1 mm grid over 23 mm");
    assert!((v.geometry.spacing_mm[2] - 1.0).abs() < 1e-9);
    assert!(mean_error_against_phantom(&v, &phantom) < 15.0);
}

#[test]
fn damaged_and_foreign_files_are_skipped_and_the_load_goes_on() {
    let phantom = Phantom::jaw();
    let tmp = tempfile::tempdir().expect("tempdir");
    let spec = SeriesSpec::axial(64, 64, 16, 1.5, 1.0).centered_on([0.0, 10.0, 0.0]);
    let written = write(tmp.path(), &phantom, &spec);
    // A truncated slice (header intact, pixels cut) and two foreign files.
    let victim = &written.slices[7].path;
    let bytes = std::fs::read(victim).expect("read");
    std::fs::write(victim, &bytes[..bytes.len() / 2]).expect("truncate");
    std::fs::write(tmp.path().join("notes.txt"), "scanned on the usual protocol\n").expect("txt");
    std::fs::create_dir(tmp.path().join("sub")).expect("mkdir");
    std::fs::write(tmp.path().join("sub/garbage.bin"), [0u8, 159, 146, 150, 1, 2, 3]).expect("bin");
    let (v, scan) = volume::load(tmp.path(), None, &NoProgress).expect("load goes on");
    let reasons: Vec<String> = scan
        .skipped
        .iter()
        .map(|s| format!("{}: {}", s.path.display(), s.reason))
        .collect();
    assert_eq!(scan.skipped.len(), 3, "{reasons:?}");
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("notes.txt") && r.contains("not a DICOM file")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("garbage.bin") && r.contains("not a DICOM file")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains(&*victim.to_string_lossy()) && r.contains("PixelData") && r.contains("truncated")),
        "{reasons:?}"
    );
    assert!(
        v.series.warnings.iter().any(|w| w.contains("missing slice")),
        "{:?}",
        v.series.warnings
    );
    assert_eq!(v.geometry.dims[2], 16);
}

#[test]
fn duplicate_positions_are_refused_naming_both_files() {
    let phantom = Phantom::jaw();
    let tmp = tempfile::tempdir().expect("tempdir");
    let spec = SeriesSpec::axial(32, 32, 6, 2.0, 2.0).centered_on([0.0, 10.0, 0.0]);
    let written = write(tmp.path(), &phantom, &spec);
    std::fs::copy(&written.slices[2].path, tmp.path().join("copy-of-slice-3")).expect("copy");
    let err = volume::load(tmp.path(), None, &NoProgress).expect_err("duplicate must be refused");
    let msg = err.to_string();
    assert!(
        msg.contains("same position") && msg.contains("copy-of-slice-3"),
        "{msg}"
    );
}

#[test]
fn no_patient_identity_reaches_the_volume_or_the_cli() {
    let phantom = Phantom::jaw();
    let tmp = tempfile::tempdir().expect("tempdir");
    write(tmp.path(), &phantom, &small_spec());
    let v = load(tmp.path());
    let json = serde_json::to_string(&v.series).expect("json");
    for secret in ["SYNTHETIC", "PHANTOM", "SYNTH-0001"] {
        assert!(!json.contains(secret), "{secret} leaked into {json}");
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_guidesmith"))
        .args(["info", "--stats", "--json"])
        .arg(tmp.path())
        .output()
        .expect("run guidesmith info");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for secret in ["SYNTHETIC", "PHANTOM", "SYNTH-0001"] {
        assert!(!text.contains(secret), "{secret} leaked into info output");
    }
}

#[test]
fn same_volume_whatever_the_thread_count() {
    let phantom = Phantom::jaw().with_noise(20.0, 5);
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut spec = SeriesSpec::axial(64, 64, 20, 1.5, 1.0);
    spec.gantry_tilt_deg = 10.0;
    write(tmp.path(), &phantom, &spec.centered_on([0.0, 10.0, 0.0]));
    let with = |n: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .expect("pool")
            .install(|| load(tmp.path()).hu)
    };
    assert!(with(1) == with(2));
}

/// Found by fuzzing (fuzz/fuzz_targets/read_file.rs): dicom-rs's RLE decoder indexes out of bounds on an RLE
/// header whose segment offsets do not fit the frame, and panics. The loader must turn that into a skipped file
/// with a reason, never a crash.
#[test]
fn rle_decoder_panic_on_bad_segment_offsets_is_an_error() {
    let phantom = Phantom::jaw();
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut spec = SeriesSpec::axial(24, 24, 3, 3.0, 2.0).centered_on([0.0, 10.0, 0.0]);
    spec.compression = Compression::RleLossless;
    let written = write(tmp.path(), &phantom, &spec);
    let victim = &written.slices[1].path;
    let mut bytes = std::fs::read(victim).expect("read");
    // The RLE header (16 little-endian u32: segment count, then offsets) follows the empty basic offset table item
    // (FE FF 00 E0 00 00 00 00) and the first fragment's item header (FE FF 00 E0 + length).
    let bot = bytes
        .windows(8)
        .position(|w| w == [0xFE, 0xFF, 0x00, 0xE0, 0, 0, 0, 0])
        .expect("offset table");
    let header = bot + 8 + 8;
    let segments = u32::from_le_bytes(bytes[header..header + 4].try_into().expect("4 bytes"));
    let fragment_len = u32::from_le_bytes(bytes[bot + 12..bot + 16].try_into().expect("4 bytes"));
    // Turn the first segment's data into no-op codes (0x80): it then decodes to fewer bytes than the frame needs,
    // which is what the fuzzer's mutation did.
    assert!(segments >= 1);
    let first = u32::from_le_bytes(bytes[header + 4..header + 8].try_into().expect("4 bytes")) as usize;
    let second = if segments >= 2 {
        u32::from_le_bytes(bytes[header + 8..header + 12].try_into().expect("4 bytes")) as usize
    } else {
        fragment_len as usize
    };
    bytes[header + first..header + second].fill(0x80);
    std::fs::write(victim, &bytes).expect("write");
    let (v, scan) = volume::load(tmp.path(), None, &NoProgress).expect("the load goes on without the damaged slice");
    assert_eq!(scan.skipped.len(), 1, "{:?}", scan.skipped);
    assert!(scan.skipped[0].path == *victim);
    assert_eq!(v.series.slices, 2);
}
