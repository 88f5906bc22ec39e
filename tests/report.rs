//! The plan report, read back by independent tools (poppler's pdffonts, pdftotext and pdftoppm): real text with
//! every element of the plan, its hashes and its review, fonts embedded, pages that render, the same bytes for the
//! same plan. `GUIDESMITH_REPORT_PAGES=DIR` keeps the pages as PNG (docs/report/ holds them).

mod common;

use std::path::Path;
use std::process::Command;

use common::{demo_case, guidesmith_quiet, pdf_text};

fn ok(args: &[&str]) -> String {
    let out = guidesmith_quiet(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The pages of `pdf` as PNG files at `dpi` in `dir` (pdftoppm), in page order.
fn pages_as_png(pdf: &Path, dir: &Path, dpi: u32) -> Vec<std::path::PathBuf> {
    std::fs::create_dir_all(dir).expect("mkdir");
    let out = Command::new("pdftoppm")
        .args(["-r", &dpi.to_string(), "-png"])
        .arg(pdf)
        .arg(dir.join("page"))
        .output()
        .expect("pdftoppm (poppler-utils; .ci/run installs it)");
    assert!(
        out.status.success(),
        "pdftoppm: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut pages: Vec<_> = std::fs::read_dir(dir)
        .expect("pages")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    pages.sort();
    pages
}

/// N of the footer's "page 1 of N".
fn page_count(text: &str) -> usize {
    text.lines()
        .find_map(|l| l.split("page 1 of ").nth(1))
        .and_then(|s| s.trim().parse::<usize>().ok())
        .expect("page 1 of N")
}

#[test]
fn the_demo_report_has_real_text_embedded_fonts_and_pages_that_render() {
    let (tmp, demo) = demo_case();
    let plan_path = demo.join("plan.json");
    let plan = plan_path.to_str().expect("utf-8");
    ok(&[
        "approve",
        plan,
        "--name",
        "Dr R. Surgeon",
        "--role",
        "surgeon",
        "--comment",
        "cuts as discussed",
    ]);
    let pdf = tmp.path().join("report.pdf");
    ok(&["report", plan, "-o", pdf.to_str().expect("utf-8")]);
    let bytes = std::fs::read(&pdf).expect("report");

    // Fonts: every font embedded (pdffonts' "emb" column).
    let fonts = Command::new("pdffonts")
        .arg(&pdf)
        .output()
        .expect("pdffonts (poppler-utils)");
    let fonts = String::from_utf8_lossy(&fonts.stdout).into_owned();
    let rows: Vec<&str> = fonts.lines().skip(2).collect();
    assert!(rows.len() >= 2, "{fonts}");
    for row in &rows {
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert!(row.contains("DejaVuSans"), "{fonts}");
        assert_eq!(cols[cols.len() - 5], "yes", "not embedded: {row}");
    }

    // Text: what the plan holds, as a reader extracts it.
    let text = pdf_text(&bytes);
    let document = guidesmith::plan::Plan::load(&plan_path).expect("plan");
    let design = guidesmith::plan::DesignBinding::of(&document);
    let content = guidesmith::plan::plan_content_sha256(&document);
    let squeezed: String = text.split_whitespace().collect();
    for expected in [
        "Surgical plan report: case DEMO-JAW".to_string(),
        "APPROVED for production by Dr R. Surgeon (surgeon)".to_string(),
        "cuts as discussed".to_string(),
        "256 x 256 x 96".to_string(),
        "Tolerance model and printers".to_string(),
        "Reviews and sign-off".to_string(),
        format!("guidesmith {}", env!("CARGO_PKG_VERSION")),
    ] {
        assert!(text.contains(&expected), "{expected:?} not in the report:\n{text}");
    }
    // Hashes in full (a line break may fall inside a long value).
    for hash in [&design.sha256, &content, design.ct_volume_sha256.as_ref().expect("ct")] {
        assert!(squeezed.contains(hash.as_str()), "{hash} not in the report");
    }
    for name in document
        .planes
        .iter()
        .map(|p| &p.name)
        .chain(document.drills.iter().map(|d| &d.name))
    {
        assert!(text.contains(name.as_str()), "{name} not in the report");
    }
    for g in &document.guides {
        assert!(
            text.contains(&format!("Guide {}", g.name)),
            "guide {} not in the report",
            g.name
        );
        for p in &g.planes {
            assert!(
                text.contains(&format!("slot {p}")),
                "the slot check of {p} is not in the report"
            );
        }
        for d in &g.drills {
            assert!(
                text.contains(&format!("channel {d}")),
                "the channel check of {d} is not in the report"
            );
        }
    }
    let n = page_count(&text);
    // Pages: pdftoppm renders each; none is blank.
    let png_dir = tmp.path().join("pages");
    let pngs = pages_as_png(&pdf, &png_dir, 70);
    assert_eq!(pngs.len(), n, "{pngs:?}");
    for p in &pngs {
        let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(p).expect("png")));
        let mut reader = decoder.read_info().expect("png header");
        let mut buf = vec![0; reader.output_buffer_size().expect("size")];
        let info = reader.next_frame(&mut buf).expect("png pixels");
        let ink = buf[..info.buffer_size()].iter().filter(|&&v| v < 128).count();
        assert!(ink > 500, "{} is blank", p.display());
    }
    if let Some(keep) = std::env::var_os("GUIDESMITH_REPORT_PAGES") {
        let keep = Path::new(&keep);
        std::fs::create_dir_all(keep).expect("mkdir");
        for (i, p) in pngs.iter().enumerate() {
            std::fs::copy(p, keep.join(format!("DEMO-JAW_report_page-{}.png", i + 1))).expect("copy page");
        }
    }

    // The same plan and review: the same bytes.
    let again = tmp.path().join("again.pdf");
    ok(&["report", plan, "-o", again.to_str().expect("utf-8")]);
    assert!(
        std::fs::read(&again).expect("report") == bytes,
        "two reports of one plan differ"
    );

    // Without a current approval the report says DRAFT on every page.
    let moved = std::fs::read_to_string(&plan_path).expect("plan").replacen(
        "\"blade_thickness_mm\": 0.6",
        "\"blade_thickness_mm\": 0.7",
        1,
    );
    std::fs::write(&plan_path, moved).expect("write plan");
    let draft = tmp.path().join("draft.pdf");
    ok(&["report", plan, "-o", draft.to_str().expect("utf-8")]);
    let text = pdf_text(&std::fs::read(&draft).expect("report"));
    assert!(text.contains("DRAFT: not approved for production"), "{text}");
    assert_eq!(
        text.matches("DRAFT - NOT APPROVED").count(),
        page_count(&text),
        "DRAFT on every page"
    );
    assert!(text.contains("STALE: the plan"), "{text}");
}
