//! Fuzz the readers of the user's text files: the plan (JSON), guide templates, printer profiles and the screw
//! catalogue (TOML). The first byte picks the reader, the rest is the text. Any input must give `Ok` or a clear
//! error, never a panic; a plan that reads must write back to JSON that reads again to the same plan.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    match which % 4 {
        0 => {
            if let Ok(plan) = guidesmith::plan::Plan::from_json(&text) {
                let json = plan.to_json();
                let again = guidesmith::plan::Plan::from_json(&json).expect("a written plan reads back");
                assert_eq!(again.to_json(), json, "a plan does not survive write -> read -> write");
            }
        }
        1 => {
            let _ = guidesmith::template::Template::from_toml_str(&text, "fuzz.toml");
        }
        2 => {
            let _ = guidesmith::template::PrinterProfiles::from_toml_str(&text, "printers.toml");
        }
        _ => {
            let _ = guidesmith::catalogue::Catalogue::from_toml_str(&text);
        }
    }
});
