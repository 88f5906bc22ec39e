//! The minimal crashers of the fuzz targets (`fuzz/`), each run through the target's entry point: every one must give
//! an error, not a panic, an abort or a gigabyte allocation.
//!
//! `tests/fuzz_regressions/read_file/` holds DICOM files whose element headers claim gigabytes (dicom-rs allocated and
//! zeroed the claimed length before the read failed: seconds and 4 GiB a file). They are synthetic (written by
//! `make_read_file.py` there), one per kind of crasher the fuzzer found or the length check covers, because the
//! fuzzer's own crashers are mutations of the shared test data, which stays out of the repository. The `plan_reader`
//! target found no crasher in 10 million executions (docs/PERFORMANCE.md); one it finds goes in `plan_reader/`, with
//! a test here.

use std::path::{Path, PathBuf};

use guidesmith::progress::NoProgress;
use guidesmith::volume;

fn folder(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz_regressions")
        .join(target)
}

fn files(target: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(folder(target))
        .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

/// The `read_file` target: header, then the first frame decoded. The error of whichever step fails.
fn read_file(path: &Path) -> Result<(), String> {
    let headers = volume::read_header(path).map_err(|e| e.to_string())?;
    assert!(!headers.is_empty());
    volume::decode_single(path).map(|_| ())
}

/// Files whose headers claim more bytes than they hold, with the element the refusal must name.
const LENGTH_CLAIMS: &[(&str, &str)] = &[
    (
        "private_ob_4gib.dcm",
        "element (0019,1001) at byte 446 claims 4294967280 bytes but only 44 are left",
    ),
    (
        "pixel_data_4gib.dcm",
        "element (7FE0,0010) PixelData at byte 446 claims 4294967280 bytes but only 32",
    ),
    (
        "nested_ut_4gib.dcm",
        "element (0008,1155) ReferencedSOPInstanceUID at byte 466 claims 4294967280 bytes",
    ),
    (
        "meta_ob_4gib.dcm",
        "element (0002,0001) FileMetaInformationVersion at byte 144 claims 4294967280 bytes",
    ),
    (
        "fragment_2gib.dcm",
        "element (FFFE,E000) Item at byte 466 claims 2147483632 bytes but only 64 are left",
    ),
    (
        "odd_at_length_4gib.dcm",
        "element (0019,1001) at byte 290 claims 4294967280 bytes but only 40 are left",
    ),
    (
        "odd_at_length_deflated_4gib.dcm",
        "element (0019,1001) at byte 56 of the inflated data set claims 4294967280",
    ),
    (
        "padded_ts_uid_4gib.dcm",
        "element (0019,1001) at byte 510 claims 4294967280 bytes but only 44 are left",
    ),
];

#[test]
fn gigabyte_length_claims_are_refused_naming_the_element() {
    for (name, expected) in LENGTH_CLAIMS {
        let path = folder("read_file").join(name);
        let err = read_file(&path).expect_err(name);
        assert!(err.contains(expected), "{name}: expected {expected:?} in: {err}");
        assert!(err.contains("truncated or damaged"), "{name}: {err}");
    }
}

#[test]
fn every_read_file_crasher_gives_an_error() {
    let files = files("read_file");
    assert!(files.len() >= LENGTH_CLAIMS.len(), "{} files", files.len());
    for path in &files {
        assert!(read_file(path).is_err(), "{} was read without an error", path.display());
    }
    // Scanned as a folder, each is a skipped file with its reason (the file named with it), and nothing loads.
    let scan = volume::scan(&folder("read_file"), &NoProgress).expect("scan");
    for (name, expected) in LENGTH_CLAIMS {
        let skipped = scan.skipped.iter().find(|s| s.path.ends_with(name));
        let reason = skipped.map(|s| s.reason.as_str()).unwrap_or_default();
        // The header pass stops at the pixel data, so the fragment is found when the file is decoded.
        if *name != "fragment_2gib.dcm" {
            assert!(reason.contains(expected), "{name}: skipped as {reason:?}");
        }
    }
}
