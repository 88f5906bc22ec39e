//! Fuzz the reading of one DICOM file: header classification, then pixel decoding to HU.
//! Any input must give `Ok` or a clear error, never a panic.
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The loader reads files by path (that is what users give it), so the input goes through a file in tmpfs.
    let dir = std::env::temp_dir();
    let path = dir.join(format!("guidesmith-fuzz-{}.dcm", std::process::id()));
    let Ok(mut f) = std::fs::File::create(&path) else { return };
    if f.write_all(data).is_err() {
        return;
    }
    drop(f);
    if let Ok(headers) = guidesmith::volume::read_header(&path) {
        let _ = headers.len();
        let _ = guidesmith::volume::decode_single(&path);
    }
    let _ = std::fs::remove_file(&path);
});
