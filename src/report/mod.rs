//! A small document model (title, headings, paragraphs, fields, tables, images, a sign-off block) laid out on A4
//! pages and written as PDF with krilla: real text in the bundled DejaVu fonts, embedded as subsets, so the report can
//! be searched, copied from and read by `pdftotext`, and looks the same on every machine.
//!
//! Why a layout of our own: the report is a fixed sequence of blocks with tables that may run over pages; wrapping
//! words by the fonts' advances, breaking tables between rows (the header repeated) and numbering pages "n of N" is
//! a few hundred lines, where a typesetting system would add a language and a dependency tree the size of this
//! project. Everything is laid out first and drawn second, so the page count is known for every footer.
//!
//! Deterministic: the same blocks give the same bytes (krilla derives the document ID from the content; no date is
//! written).

use krilla::color::rgb;
use krilla::geom::{PathBuilder, Point, Rect, Size, Transform};
use krilla::image::Image;
use krilla::metadata::Metadata;
use krilla::page::PageSettings;
use krilla::paint::{Fill, Stroke};
use krilla::surface::Surface;
use krilla::text::{Font, TextDirection};
use krilla::Document;

use crate::font::{Face, SANS, SANS_BOLD};

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// An image of the report is not a PNG krilla can read.
    #[error("report image {name:?} cannot be embedded: {detail}")]
    Image {
        /// The image's caption.
        name: String,
        /// The reader's message.
        detail: String,
    },
    /// The PDF writer failed.
    #[error("the PDF could not be written: {0}")]
    Pdf(String),
}

/// How a table column's text is aligned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    /// Left.
    Left,
    /// Right (numbers).
    Right,
}

/// One column of a [`Block::Table`].
#[derive(Clone, Debug)]
pub struct Column {
    /// Header text.
    pub title: String,
    /// Share of the table's width (the shares are normalised).
    pub width: f32,
    /// Alignment of its cells.
    pub align: Align,
}

impl Column {
    /// A left-aligned column.
    pub fn left(title: &str, width: f32) -> Column {
        Column {
            title: title.to_string(),
            width,
            align: Align::Left,
        }
    }

    /// A right-aligned column.
    pub fn right(title: &str, width: f32) -> Column {
        Column {
            title: title.to_string(),
            width,
            align: Align::Right,
        }
    }
}

/// Emphasis of a paragraph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    /// Body text.
    Normal,
    /// Quieter (explanations).
    Muted,
    /// A warning (amber bar).
    Warning,
    /// An error or a refusal (red bar).
    Error,
    /// A success (green bar).
    Good,
}

/// One block of a document.
#[derive(Clone, Debug)]
pub enum Block {
    /// The document's title (large, bold).
    Title(String),
    /// A section heading.
    Heading(String),
    /// A paragraph, wrapped to the page.
    Paragraph(String, Tone),
    /// Label and value pairs in two columns.
    Fields(Vec<(String, String)>),
    /// A table; rows are kept whole, the header repeats on each page.
    Table {
        /// The columns.
        columns: Vec<Column>,
        /// The rows (one string per column).
        rows: Vec<Vec<String>>,
    },
    /// A PNG image scaled to the page width (at most `max_height_pt` tall), with a caption.
    Image {
        /// The PNG bytes.
        png: Vec<u8>,
        /// Width over height of the image.
        aspect: f32,
        /// Largest height, points.
        max_height_pt: f32,
        /// Caption under it.
        caption: String,
    },
    /// Lines to sign on: each role gets name, signature and date fields.
    SignOff(Vec<String>),
    /// Start a new page here.
    PageBreak,
}

/// A document: its blocks and the text of every page's header (left) and footer (left; the page number is added).
#[derive(Clone, Debug)]
pub struct Report {
    /// The PDF's title (document information).
    pub title: String,
    /// Running header, left.
    pub header: String,
    /// Running header, right (a status such as DRAFT; drawn in red when not empty).
    pub header_status: String,
    /// Running footer, left.
    pub footer: String,
    /// The content.
    pub blocks: Vec<Block>,
}

/// A4, points.
const PAGE_W: f32 = 595.28;
const PAGE_H: f32 = 841.89;
const MARGIN: f32 = 50.0;
const TOP: f32 = 66.0;
const BOTTOM: f32 = PAGE_H - 56.0;
const CONTENT_W: f32 = PAGE_W - 2.0 * MARGIN;
const BODY: f32 = 9.0;
const SMALL: f32 = 7.5;
/// Fields (label and value) are a little smaller than body text, so a SHA-256 fits on one line.
const FIELD: f32 = 8.5;
const LEADING: f32 = 1.32;
const CELL_PAD: f32 = 3.0;
const INK: (u8, u8, u8) = (25, 30, 38);
const MUTED: (u8, u8, u8) = (95, 102, 112);
const RULE: (u8, u8, u8) = (180, 186, 194);
const HEADER_FILL: (u8, u8, u8) = (232, 236, 241);

/// One thing to draw on a page.
#[derive(Clone, Debug)]
enum Op {
    Text {
        x: f32,
        baseline: f32,
        size: f32,
        bold: bool,
        colour: (u8, u8, u8),
        text: String,
    },
    Rect {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
        fill: (u8, u8, u8),
    },
    Line {
        x0: f32,
        y0: f32,
        x1: f32,
        y1: f32,
        colour: (u8, u8, u8),
    },
    Image {
        block: usize,
        x: f32,
        y: f32,
        w: f32,
        h: f32,
    },
}

fn face(bold: bool) -> Face {
    if bold {
        SANS_BOLD
    } else {
        SANS
    }
}

fn width(text: &str, size: f32, bold: bool) -> f32 {
    face(bold).width(text, f64::from(size)) as f32
}

/// `text` broken into lines no wider than `max_w` at `size`: at spaces, and inside a word only when the word alone is
/// wider (hashes, paths).
pub fn wrap(text: &str, size: f32, bold: bool, max_w: f32) -> Vec<String> {
    let mut lines = Vec::new();
    for paragraph in text.split('\n') {
        let mut line = String::new();
        for word in paragraph.split(' ') {
            let candidate = if line.is_empty() {
                word.to_string()
            } else {
                format!("{line} {word}")
            };
            if width(&candidate, size, bold) <= max_w {
                line = candidate;
                continue;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            // The word alone: split it where it must.
            let mut piece = String::new();
            for c in word.chars() {
                piece.push(c);
                if width(&piece, size, bold) > max_w && piece.chars().count() > 1 {
                    piece.pop();
                    lines.push(std::mem::take(&mut piece));
                    piece.push(c);
                }
            }
            line = piece;
        }
        lines.push(line);
    }
    lines
}

/// Pages of draw operations, filled top to bottom.
struct Layout {
    pages: Vec<Vec<Op>>,
    y: f32,
}

impl Layout {
    fn new() -> Layout {
        Layout {
            pages: vec![Vec::new()],
            y: TOP,
        }
    }

    fn page(&mut self) -> &mut Vec<Op> {
        // `pages` is never empty.
        let last = self.pages.len() - 1;
        &mut self.pages[last]
    }

    fn new_page(&mut self) {
        self.pages.push(Vec::new());
        self.y = TOP;
    }

    /// Makes room for `h` points, starting a new page if they do not fit (unless the page is still empty).
    fn room(&mut self, h: f32) {
        if self.y + h > BOTTOM && self.y > TOP {
            self.new_page();
        }
    }

    fn text(&mut self, x: f32, baseline: f32, size: f32, bold: bool, colour: (u8, u8, u8), text: &str) {
        if !text.is_empty() {
            self.page().push(Op::Text {
                x,
                baseline,
                size,
                bold,
                colour,
                text: text.to_string(),
            });
        }
    }

    fn lines(&mut self, lines: &[String], x: f32, size: f32, bold: bool, colour: (u8, u8, u8)) {
        let lh = size * LEADING;
        for l in lines {
            self.room(lh);
            let baseline = self.y + size;
            self.text(x, baseline, size, bold, colour, l);
            self.y += lh;
        }
    }

    fn block(&mut self, index: usize, block: &Block) {
        match block {
            Block::Title(t) => {
                let lines = wrap(t, 17.0, true, CONTENT_W);
                self.lines(&lines, MARGIN, 17.0, true, INK);
                self.y += 6.0;
            }
            Block::Heading(t) => {
                // Keep a heading with at least three lines of what follows.
                self.room(13.0 * LEADING + 10.0 + 3.0 * BODY * LEADING);
                self.y += 8.0;
                let lines = wrap(t, 12.0, true, CONTENT_W);
                self.lines(&lines, MARGIN, 12.0, true, INK);
                let y = self.y + 1.0;
                self.page().push(Op::Line {
                    x0: MARGIN,
                    y0: y,
                    x1: MARGIN + CONTENT_W,
                    y1: y,
                    colour: RULE,
                });
                self.y += 5.0;
            }
            Block::Paragraph(t, tone) => {
                let (colour, bar) = match tone {
                    Tone::Normal => (INK, None),
                    Tone::Muted => (MUTED, None),
                    Tone::Warning => (INK, Some((214, 150, 20))),
                    Tone::Error => (INK, Some((200, 40, 40))),
                    Tone::Good => (INK, Some((40, 150, 70))),
                };
                let indent = if bar.is_some() { 8.0 } else { 0.0 };
                let lines = wrap(t, BODY, false, CONTENT_W - indent);
                let h = lines.len() as f32 * BODY * LEADING;
                if let Some(fill) = bar {
                    // A short paragraph stays whole with its bar.
                    if h < 200.0 {
                        self.room(h);
                    }
                    let y = self.y;
                    self.page().push(Op::Rect {
                        x: MARGIN,
                        y: y + 1.0,
                        w: 3.0,
                        h: h.min(BOTTOM - y) - 1.0,
                        fill,
                    });
                }
                self.lines(&lines, MARGIN + indent, BODY, false, colour);
                self.y += 4.0;
            }
            Block::Fields(fields) => {
                let label_w = fields
                    .iter()
                    .map(|(l, _)| width(l, FIELD, true))
                    .fold(0.0, f32::max)
                    .min(CONTENT_W * 0.35)
                    + 10.0;
                for (label, value) in fields {
                    let labels = wrap(label, FIELD, true, label_w - 10.0);
                    let values = wrap(value, FIELD, false, CONTENT_W - label_w);
                    let n = labels.len().max(values.len());
                    self.room(n as f32 * FIELD * LEADING);
                    let y0 = self.y;
                    self.lines(&labels, MARGIN, FIELD, true, MUTED);
                    self.y = y0;
                    self.lines(&values, MARGIN + label_w, FIELD, false, INK);
                    self.y = y0 + n as f32 * FIELD * LEADING + 1.0;
                }
                self.y += 4.0;
            }
            Block::Table { columns, rows } => self.table(columns, rows),
            Block::Image {
                aspect,
                max_height_pt,
                caption,
                ..
            } => {
                let mut w = CONTENT_W;
                let mut h = w / aspect.max(0.01);
                if h > *max_height_pt {
                    h = *max_height_pt;
                    w = h * aspect;
                }
                let captions = wrap(caption, SMALL, false, CONTENT_W);
                self.room(h + captions.len() as f32 * SMALL * LEADING + 6.0);
                let x = MARGIN + (CONTENT_W - w) / 2.0;
                let y = self.y;
                self.page().push(Op::Image {
                    block: index,
                    x,
                    y,
                    w,
                    h,
                });
                self.y += h + 3.0;
                self.lines(&captions, MARGIN, SMALL, false, MUTED);
                self.y += 6.0;
            }
            Block::SignOff(roles) => {
                for role in roles {
                    self.room(62.0);
                    let y = self.y;
                    self.text(MARGIN, y + BODY, BODY, true, INK, role);
                    let fields = [("Name", 0.0, 0.38), ("Signature", 0.42, 0.36), ("Date", 0.82, 0.18)];
                    for (label, at, share) in fields {
                        let x0 = MARGIN + at * CONTENT_W;
                        let x1 = x0 + share * CONTENT_W - 8.0;
                        let line_y = y + 40.0;
                        self.page().push(Op::Line {
                            x0,
                            y0: line_y,
                            x1,
                            y1: line_y,
                            colour: INK,
                        });
                        self.text(x0, line_y + SMALL + 2.0, SMALL, false, MUTED, label);
                    }
                    self.y = y + 62.0;
                }
            }
            Block::PageBreak => {
                if self.y > TOP {
                    self.new_page();
                }
            }
        }
    }

    fn table(&mut self, columns: &[Column], rows: &[Vec<String>]) {
        let total: f32 = columns.iter().map(|c| c.width).sum::<f32>().max(1e-6);
        let widths: Vec<f32> = columns.iter().map(|c| c.width / total * CONTENT_W).collect();
        let size = SMALL;
        let lh = size * LEADING;
        let cells = |texts: &[String], bold: bool| -> Vec<Vec<String>> {
            widths
                .iter()
                .enumerate()
                .map(|(i, w)| wrap(texts.get(i).map_or("", String::as_str), size, bold, w - 2.0 * CELL_PAD))
                .collect()
        };
        let header_texts: Vec<String> = columns.iter().map(|c| c.title.clone()).collect();
        let header = cells(&header_texts, true);
        let height = |c: &[Vec<String>]| c.iter().map(Vec::len).max().unwrap_or(1) as f32 * lh + 2.0 * CELL_PAD;
        let header_h = height(&header);
        let draw_row = |layout: &mut Layout, c: &[Vec<String>], h: f32, bold: bool, fill: Option<(u8, u8, u8)>| {
            let y = layout.y;
            if let Some(fill) = fill {
                layout.page().push(Op::Rect {
                    x: MARGIN,
                    y,
                    w: CONTENT_W,
                    h,
                    fill,
                });
            }
            let mut x = MARGIN;
            for (i, lines) in c.iter().enumerate() {
                let w = widths[i];
                for (k, l) in lines.iter().enumerate() {
                    let tx = match columns[i].align {
                        Align::Left => x + CELL_PAD,
                        Align::Right => x + w - CELL_PAD - width(l, size, bold),
                    };
                    layout.text(tx, y + CELL_PAD + size + k as f32 * lh, size, bold, INK, l);
                }
                x += w;
            }
            layout.page().push(Op::Line {
                x0: MARGIN,
                y0: y + h,
                x1: MARGIN + CONTENT_W,
                y1: y + h,
                colour: RULE,
            });
            layout.y += h;
        };
        self.room(header_h + lh + 2.0 * CELL_PAD);
        draw_row(self, &header, header_h, true, Some(HEADER_FILL));
        for row in rows {
            let c = cells(row, false);
            let h = height(&c);
            if self.y + h > BOTTOM {
                self.new_page();
                draw_row(self, &header, header_h, true, Some(HEADER_FILL));
            }
            draw_row(self, &c, h, false, None);
        }
        self.y += 8.0;
    }
}

/// The document as PDF bytes.
pub fn pdf_bytes(doc: &Report) -> Result<Vec<u8>, ReportError> {
    let mut layout = Layout::new();
    for (i, b) in doc.blocks.iter().enumerate() {
        layout.block(i, b);
    }
    let regular = Font::new(SANS.bytes.into(), 0).ok_or_else(|| ReportError::Pdf("the body font".into()))?;
    let bold = Font::new(SANS_BOLD.bytes.into(), 0).ok_or_else(|| ReportError::Pdf("the bold font".into()))?;
    let mut images: Vec<Option<Image>> = vec![None; doc.blocks.len()];
    for (i, b) in doc.blocks.iter().enumerate() {
        if let Block::Image { png, caption, .. } = b {
            images[i] = Some(
                Image::from_png(png.clone().into(), true).map_err(|detail| ReportError::Image {
                    name: caption.clone(),
                    detail,
                })?,
            );
        }
    }
    let mut pdf = Document::new();
    pdf.set_metadata(
        Metadata::new()
            .title(doc.title.clone())
            .creator(concat!("guidesmith ", env!("CARGO_PKG_VERSION")).to_string())
            .language("en".to_string()),
    );
    let page_count = layout.pages.len();
    let settings = PageSettings::from_wh(PAGE_W, PAGE_H).ok_or_else(|| ReportError::Pdf("page size".into()))?;
    for (n, ops) in layout.pages.iter().enumerate() {
        let mut page = pdf.start_page_with(settings.clone());
        let mut surface = page.surface();
        let mut running = vec![
            Op::Text {
                x: MARGIN,
                baseline: 34.0,
                size: SMALL,
                bold: true,
                colour: MUTED,
                text: doc.header.clone(),
            },
            Op::Line {
                x0: MARGIN,
                y0: 40.0,
                x1: MARGIN + CONTENT_W,
                y1: 40.0,
                colour: RULE,
            },
            Op::Text {
                x: MARGIN,
                baseline: PAGE_H - 30.0,
                size: SMALL,
                bold: false,
                colour: MUTED,
                text: doc.footer.clone(),
            },
        ];
        let number = format!("page {} of {page_count}", n + 1);
        running.push(Op::Text {
            x: MARGIN + CONTENT_W - width(&number, SMALL, false),
            baseline: PAGE_H - 30.0,
            size: SMALL,
            bold: false,
            colour: MUTED,
            text: number,
        });
        if !doc.header_status.is_empty() {
            running.push(Op::Text {
                x: MARGIN + CONTENT_W - width(&doc.header_status, 9.0, true),
                baseline: 34.0,
                size: 9.0,
                bold: true,
                colour: (200, 30, 30),
                text: doc.header_status.clone(),
            });
        }
        for op in running.iter().chain(ops) {
            draw(&mut surface, op, &regular, &bold, &images);
        }
        surface.finish();
        page.finish();
    }
    pdf.finish().map_err(|e| ReportError::Pdf(format!("{e:?}")))
}

fn colour(c: (u8, u8, u8)) -> krilla::paint::Paint {
    rgb::Color::new(c.0, c.1, c.2).into()
}

fn draw(surface: &mut Surface<'_>, op: &Op, regular: &Font, bold: &Font, images: &[Option<Image>]) {
    match op {
        Op::Text {
            x,
            baseline,
            size,
            bold: is_bold,
            colour: c,
            text,
        } => {
            surface.set_fill(Some(Fill {
                paint: colour(*c),
                ..Fill::default()
            }));
            let font = if *is_bold { bold } else { regular };
            surface.draw_text(
                Point::from_xy(*x, *baseline),
                font.clone(),
                *size,
                text,
                false,
                TextDirection::Auto,
            );
        }
        Op::Rect { x, y, w, h, fill } => {
            if let Some(rect) = Rect::from_xywh(*x, *y, *w, *h) {
                let mut pb = PathBuilder::new();
                pb.push_rect(rect);
                if let Some(path) = pb.finish() {
                    surface.set_stroke(None);
                    surface.set_fill(Some(Fill {
                        paint: colour(*fill),
                        ..Fill::default()
                    }));
                    surface.draw_path(&path);
                }
            }
        }
        Op::Line {
            x0,
            y0,
            x1,
            y1,
            colour: c,
        } => {
            let mut pb = PathBuilder::new();
            pb.move_to(*x0, *y0);
            pb.line_to(*x1, *y1);
            if let Some(path) = pb.finish() {
                surface.set_fill(None);
                surface.set_stroke(Some(Stroke {
                    paint: colour(*c),
                    width: 0.6,
                    ..Stroke::default()
                }));
                surface.draw_path(&path);
                surface.set_stroke(None);
            }
        }
        Op::Image { block, x, y, w, h } => {
            if let (Some(Some(image)), Some(size)) = (images.get(*block), Size::from_wh(*w, *h)) {
                surface.push_transform(&Transform::from_translate(*x, *y));
                surface.draw_image(image.clone(), size);
                surface.pop();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_wrap_to_the_width_and_long_words_are_split() {
        let lines = wrap("the quick brown fox jumps over the lazy dog", 10.0, false, 60.0);
        assert!(lines.len() > 2, "{lines:?}");
        assert!(lines.iter().all(|l| width(l, 10.0, false) <= 60.0), "{lines:?}");
        assert_eq!(lines.join(" "), "the quick brown fox jumps over the lazy dog");
        let hash = "0123456789abcdef".repeat(4);
        let lines = wrap(&hash, 10.0, false, 100.0);
        assert!(lines.len() > 1 && lines.concat() == hash, "{lines:?}");
    }

    #[test]
    fn a_long_table_runs_over_pages_and_the_pdf_is_deterministic() {
        let rows: Vec<Vec<String>> = (0..150).map(|i| vec![format!("row {i}"), format!("{i}.00")]).collect();
        let doc = Report {
            title: "t".into(),
            header: "CASE-1".into(),
            header_status: "DRAFT".into(),
            footer: "guidesmith".into(),
            blocks: vec![
                Block::Title("Report".into()),
                Block::Table {
                    columns: vec![Column::left("name", 3.0), Column::right("value", 1.0)],
                    rows,
                },
            ],
        };
        let mut layout = Layout::new();
        for (i, b) in doc.blocks.iter().enumerate() {
            layout.block(i, b);
        }
        assert!(layout.pages.len() >= 2, "{}", layout.pages.len());
        // Every page after the first starts with the repeated header row.
        for page in &layout.pages[1..] {
            assert!(
                page.iter()
                    .any(|op| matches!(op, Op::Text { text, bold: true, .. } if text == "name")),
                "header not repeated"
            );
        }
        let a = pdf_bytes(&doc).unwrap();
        assert!(a.starts_with(b"%PDF-"));
        assert_eq!(a, pdf_bytes(&doc).unwrap());
    }
}
