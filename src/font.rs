//! The fonts bundled with guidesmith (DejaVu Sans and DejaVu Sans Bold, `src/fonts/LICENSE`): text widths for laying
//! out the report, and glyph outlines as polygons for the labels embossed on guides and models.
//!
//! Why bundled: a report must look the same and embed the same font on every machine, and a label must be the same
//! solid wherever the case is built; a system font would make both depend on the machine. DejaVu is under the
//! Bitstream Vera licence, which allows embedding and redistribution. Outlines are read with skrifa (the font reader
//! krilla uses for the PDF), unhinted, in font units scaled to the size asked.

use skrifa::instance::{LocationRef, Size};
use skrifa::outline::{DrawSettings, OutlinePen};
use skrifa::{FontRef, MetadataProvider};

/// One bundled typeface.
#[derive(Clone, Copy, Debug)]
pub struct Face {
    /// The TrueType file.
    pub bytes: &'static [u8],
}

/// DejaVu Sans (body text).
pub const SANS: Face = Face {
    bytes: include_bytes!("fonts/DejaVuSans.ttf"),
};
/// DejaVu Sans Bold (headings; the labels on guides and models: its strokes are wide enough to print).
pub const SANS_BOLD: Face = Face {
    bytes: include_bytes!("fonts/DejaVuSans-Bold.ttf"),
};

/// A closed contour of a glyph, in order (counter-clockwise for outer contours of TrueType glyphs as laid out
/// here, y up); the first point is not repeated.
pub type Contour = Vec<[f64; 2]>;

impl Face {
    fn font(&self) -> FontRef<'static> {
        // The bundled files are valid fonts (tests/unit test below reads both).
        FontRef::new(self.bytes).expect("bundled font")
    }

    /// Width of `text` at `size` (the em size, any unit), from the glyphs' advances (no kerning).
    pub fn width(&self, text: &str, size: f64) -> f64 {
        let font = self.font();
        let charmap = font.charmap();
        let metrics = font.glyph_metrics(Size::unscaled(), LocationRef::default());
        let upem = f64::from(font.metrics(Size::unscaled(), LocationRef::default()).units_per_em);
        let units: f64 = text
            .chars()
            .map(|c| {
                let gid = charmap.map(c).unwrap_or_default();
                f64::from(metrics.advance_width(gid).unwrap_or(0.0))
            })
            .sum();
        units / upem * size
    }

    /// Height of a capital letter as a fraction of the em size: the top of 'H' (DejaVu's OS/2 table carries no cap
    /// height).
    pub fn cap_height_em(&self) -> f64 {
        let (contours, _) = self.outlines("H", 1.0, 1e-4);
        contours.iter().flatten().map(|p| p[1]).fold(0.0, f64::max)
    }

    /// Whether every character of `text` has a glyph.
    pub fn covers(&self, text: &str) -> bool {
        let charmap = self.font().charmap();
        text.chars()
            .all(|c| c.is_whitespace() || charmap.map(c).is_some_and(|g| g.to_u32() != 0))
    }

    /// The outlines of `text` set on one line at em size `size`, starting at x = 0 on the baseline y = 0 (y up),
    /// curves flattened so that no point of a chord is farther than `tolerance` from the curve. Returns the
    /// contours and the advance width.
    pub fn outlines(&self, text: &str, size: f64, tolerance: f64) -> (Vec<Contour>, f64) {
        let font = self.font();
        let charmap = font.charmap();
        let metrics = font.glyph_metrics(Size::unscaled(), LocationRef::default());
        let outlines = font.outline_glyphs();
        let upem = f64::from(font.metrics(Size::unscaled(), LocationRef::default()).units_per_em);
        let scale = size / upem;
        let mut pen = FlatteningPen {
            contours: Vec::new(),
            current: Vec::new(),
            x0: 0.0,
            scale,
            tolerance_units: (tolerance / scale).max(1e-3),
        };
        for c in text.chars() {
            let gid = charmap.map(c).unwrap_or_default();
            if let Some(glyph) = outlines.get(gid) {
                // A glyph that fails to draw leaves what it drew; the bundled fonts draw every glyph.
                let _ = glyph.draw(
                    DrawSettings::unhinted(Size::unscaled(), LocationRef::default()),
                    &mut pen,
                );
                pen.close();
            }
            pen.x0 += f64::from(metrics.advance_width(gid).unwrap_or(0.0));
        }
        (pen.contours, pen.x0 * scale)
    }
}

/// Collects a glyph's contours, flattening quadratic and cubic curves into chords.
struct FlatteningPen {
    contours: Vec<Contour>,
    current: Contour,
    /// Pen x offset of the glyph, font units.
    x0: f64,
    scale: f64,
    tolerance_units: f64,
}

impl FlatteningPen {
    fn point(&self, x: f32, y: f32) -> [f64; 2] {
        [(self.x0 + f64::from(x)) * self.scale, f64::from(y) * self.scale]
    }

    fn last_units(&self) -> [f64; 2] {
        self.current
            .last()
            .map_or([0.0, 0.0], |p| [p[0] / self.scale - self.x0, p[1] / self.scale])
    }

    /// Segments for a curve whose control polygon deviates `deviation` (font units) from its chord.
    fn segments(&self, deviation: f64) -> usize {
        // A quadratic's distance from its chord is at most a quarter of the control point's; subdividing into n
        // pieces divides it by n^2.
        ((deviation / (4.0 * self.tolerance_units)).sqrt().ceil() as usize).clamp(1, 64)
    }
}

fn dist(a: [f64; 2], b: [f64; 2]) -> f64 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
}

impl OutlinePen for FlatteningPen {
    fn move_to(&mut self, x: f32, y: f32) {
        self.close();
        self.current.push(self.point(x, y));
    }

    fn line_to(&mut self, x: f32, y: f32) {
        self.current.push(self.point(x, y));
    }

    fn quad_to(&mut self, cx0: f32, cy0: f32, x: f32, y: f32) {
        let p0 = self.last_units();
        let (c, p1) = ([f64::from(cx0), f64::from(cy0)], [f64::from(x), f64::from(y)]);
        let mid = [(p0[0] + p1[0]) / 2.0, (p0[1] + p1[1]) / 2.0];
        let n = self.segments(2.0 * dist(c, mid));
        for i in 1..=n {
            let t = i as f64 / n as f64;
            let q = [0, 1].map(|k| (1.0 - t).powi(2) * p0[k] + 2.0 * (1.0 - t) * t * c[k] + t * t * p1[k]);
            self.current.push([(self.x0 + q[0]) * self.scale, q[1] * self.scale]);
        }
    }

    fn curve_to(&mut self, cx0: f32, cy0: f32, cx1: f32, cy1: f32, x: f32, y: f32) {
        let p0 = self.last_units();
        let (c0, c1) = ([f64::from(cx0), f64::from(cy0)], [f64::from(cx1), f64::from(cy1)]);
        let p1 = [f64::from(x), f64::from(y)];
        let n = self.segments(2.0 * dist(c0, p0).max(dist(c1, p1)));
        for i in 1..=n {
            let t = i as f64 / n as f64;
            let s = 1.0 - t;
            let q = [0, 1]
                .map(|k| s * s * s * p0[k] + 3.0 * s * s * t * c0[k] + 3.0 * s * t * t * c1[k] + t * t * t * p1[k]);
            self.current.push([(self.x0 + q[0]) * self.scale, q[1] * self.scale]);
        }
    }

    fn close(&mut self) {
        let mut c = std::mem::take(&mut self.current);
        if c.len() > 1 && dist(c[0], c[c.len() - 1]) < 1e-12 {
            c.pop();
        }
        c.dedup_by(|a, b| dist(*a, *b) < 1e-12);
        if c.len() >= 3 {
            self.contours.push(c);
        }
    }
}

/// Signed area of a contour (positive counter-clockwise, y up).
pub fn contour_area(c: &[[f64; 2]]) -> f64 {
    let n = c.len();
    (0..n)
        .map(|i| {
            let (a, b) = (c[i], c[(i + 1) % n]);
            a[0] * b[1] - b[0] * a[1]
        })
        .sum::<f64>()
        / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_and_outlines_of_the_bundled_faces() {
        // DejaVu Sans: 'H' advances 1540 of 2048 units; the bold face is wider.
        let w = SANS.width("H", 2048.0);
        assert!((w - 1540.0).abs() < 1e-9, "{w}");
        assert!(SANS_BOLD.width("HELLO", 10.0) > SANS.width("HELLO", 10.0));
        assert!(
            (SANS_BOLD.cap_height_em() - 0.729).abs() < 0.01,
            "{}",
            SANS_BOLD.cap_height_em()
        );
        // 'O' is two contours of opposite orientation; '8' three; the box of 'H' is its cap height tall.
        let (o, adv) = SANS_BOLD.outlines("O", 10.0, 0.01);
        assert_eq!(o.len(), 2);
        assert!(contour_area(&o[0]) * contour_area(&o[1]) < 0.0);
        assert!((adv - SANS_BOLD.width("O", 10.0)).abs() < 1e-9);
        assert_eq!(SANS_BOLD.outlines("8", 10.0, 0.01).0.len(), 3);
        assert!(SANS.covers("DEMO-JAW résection"));
        assert!(!SANS.covers("\u{4E2D}"), "CJK is not in DejaVu Sans");
    }
}
