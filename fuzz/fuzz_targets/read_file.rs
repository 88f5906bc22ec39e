//! Fuzz the reading of one DICOM file: header classification, then pixel decoding to HU.
//! Any input must give `Ok` or a clear error, never a panic.
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;

static QUIET_CAUGHT_PANICS: std::sync::Once = std::sync::Once::new();

fuzz_target!(|data: &[u8]| {
    // guidesmith catches panics of third-party codecs and turns them into errors (a damaged file is skipped, not a
    // crash). libfuzzer-sys's panic hook aborts on every panic, caught or not; replace it with one that only prints,
    // so a caught codec panic is not reported as a crash, while an uncaught panic still aborts (libfuzzer-sys's
    // catch_unwind around this closure).
    QUIET_CAUGHT_PANICS.call_once(|| {
        std::panic::set_hook(Box::new(|info| eprintln!("panic (caught by guidesmith if it is a codec's): {info}")))
    });
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
