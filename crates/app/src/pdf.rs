//! A small PDF writer for the downtime pack: A4 pages of text in Helvetica (a standard PDF
//! font, so nothing is embedded), each with the same header and a footer with page numbers.
//! Text is WinAnsi-encoded: Latin-1 letters (Zoë, Siobhán) print as themselves; other
//! accented letters (ń, ł) lose their accent; anything else prints as '?'. Hand-written because a page of lines needs ~150 lines of code,
//! not a PDF library's dependency tree.

use std::fmt::Write;

use unicode_normalization::UnicodeNormalization;

const WIDTH: f32 = 595.0;
const HEIGHT: f32 = 842.0;
const MARGIN: f32 = 40.0;
const BODY_TOP: f32 = HEIGHT - 95.0;
const BODY_BOTTOM: f32 = 60.0;

/// A line of text: where it starts across the page, its size, and whether it is bold.
#[derive(Debug, Clone)]
struct Run {
    x: f32,
    y: f32,
    size: f32,
    bold: bool,
    text: String,
}

/// A document being laid out, top to bottom, page by page.
pub struct Document {
    title: String,
    header: Vec<String>,
    footer: String,
    pages: Vec<Vec<Run>>,
    y: f32,
}

impl Document {
    /// `header` lines repeat under the title on every page (printed at, data as of).
    pub fn new(title: &str, header: Vec<String>, footer: &str) -> Self {
        Self {
            title: title.to_string(),
            header,
            footer: footer.to_string(),
            pages: vec![Vec::new()],
            y: BODY_TOP,
        }
    }

    /// A line of body text; `columns` are (x offset from the margin, text).
    pub fn row(&mut self, columns: &[(f32, &str)], size: f32, bold: bool) {
        let leading = size * 1.35;
        if self.y - leading < BODY_BOTTOM {
            self.new_page();
        }
        self.y -= leading;
        let page = self.pages.last_mut().expect("a document always has a page");
        for (x, text) in columns {
            page.push(Run {
                x: MARGIN + x,
                y: self.y,
                size,
                bold,
                text: text.to_string(),
            });
        }
    }

    pub fn gap(&mut self, points: f32) {
        self.y -= points;
    }

    pub fn new_page(&mut self) {
        if self.pages.last().is_some_and(|p| !p.is_empty()) {
            self.pages.push(Vec::new());
        }
        self.y = BODY_TOP;
    }

    /// The finished PDF.
    pub fn render(&self) -> Vec<u8> {
        let total = self.pages.len();
        let mut objects: Vec<String> = vec![
            "<< /Type /Catalog /Pages 2 0 R >>".into(),
            String::new(), // the page tree, once the page objects are numbered
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".into(),
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>".into(),
        ];
        let mut kids = Vec::new();
        for (i, runs) in self.pages.iter().enumerate() {
            let mut all = runs.clone();
            all.push(Run {
                x: MARGIN,
                y: HEIGHT - 45.0,
                size: 15.0,
                bold: true,
                text: self.title.clone(),
            });
            for (j, line) in self.header.iter().enumerate() {
                all.push(Run {
                    x: MARGIN,
                    y: HEIGHT - 62.0 - 12.0 * j as f32,
                    size: 9.0,
                    bold: false,
                    text: line.clone(),
                });
            }
            all.push(Run {
                x: MARGIN,
                y: 30.0,
                size: 8.0,
                bold: false,
                text: self.footer.clone(),
            });
            all.push(Run {
                x: WIDTH - MARGIN - 60.0,
                y: 30.0,
                size: 8.0,
                bold: true,
                text: format!("Page {} of {total}", i + 1),
            });
            let mut content = String::new();
            for r in &all {
                let _ = writeln!(
                    content,
                    "BT /{} {:.1} Tf {:.1} {:.1} Td ({}) Tj ET",
                    if r.bold { "F2" } else { "F1" },
                    r.size,
                    r.x,
                    r.y,
                    escape(&r.text)
                );
            }
            let content_number = objects.len() + 2;
            objects.push(format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {WIDTH} {HEIGHT}] /Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents {content_number} 0 R >>"
            ));
            kids.push(format!("{} 0 R", objects.len()));
            objects.push(format!(
                "<< /Length {} >>\nstream\n{content}endstream",
                latin1(&content).len()
            ));
        }
        objects[1] = format!(
            "<< /Type /Pages /Kids [{}] /Count {total} >>",
            kids.join(" ")
        );
        let mut out: Vec<u8> = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
        let mut offsets = Vec::new();
        for (i, body) in objects.iter().enumerate() {
            offsets.push(out.len());
            out.extend(format!("{} 0 obj\n", i + 1).into_bytes());
            out.extend(latin1(body));
            out.extend(b"\nendobj\n");
        }
        let xref = out.len();
        let mut tail = format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1);
        for o in offsets {
            let _ = writeln!(tail, "{o:010} 00000 n ");
        }
        let _ = write!(
            tail,
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        );
        out.extend(tail.into_bytes());
        out
    }
}

/// Escapes a PDF string and maps it to WinAnsi (as chars <= 0xFF, written out as Latin-1).
fn escape(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '(' | ')' | '\\' => format!("\\{c}"),
            '\u{2013}' => '\u{96}'.to_string(),
            '\u{2018}' => '\u{91}'.to_string(),
            '\u{2019}' => '\u{92}'.to_string(),
            '\u{201c}' => '\u{93}'.to_string(),
            '\u{201d}' => '\u{94}'.to_string(),
            '\u{2022}' => '\u{95}'.to_string(),
            c if (' '..='~').contains(&c) || ('\u{a0}'..='\u{ff}').contains(&c) => c.to_string(),
            'ł' => "l".into(),
            'Ł' => "L".into(),
            // Outside Latin-1 (ń, ş, ő): the letter without its accent, so names stay legible.
            c => c
                .nfd()
                .next()
                .filter(|b| (' '..='~').contains(b))
                .map_or_else(|| "?".into(), |b| b.to_string()),
        })
        .collect()
}

/// The text's characters as single bytes (all are <= 0xFF after `escape`).
fn latin1(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_pdf_with_numbered_pages_and_latin1_names() {
        let mut d = Document::new(
            "Day list",
            vec!["Printed at Fri 19 Jul 2024 09:40".into()],
            "CONFIDENTIAL",
        );
        for i in 0..80 {
            d.row(&[(0.0, &format!("{i:02} Zoë Brontë (test)"))], 10.0, false);
        }
        let pdf = d.render();
        assert!(pdf.starts_with(b"%PDF-1.4"));
        assert!(pdf.ends_with(b"%%EOF\n"));
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.contains("/Count 2"), "80 lines take two pages");
        assert!(text.contains("(Page 2 of 2)"));
        assert!(
            pdf.windows(3).any(|w| w == [b'Z', b'o', 0xeb]),
            "ë as one WinAnsi byte"
        );
        assert!(text.contains("\\(test\\)"));
        assert_eq!(escape("Zieliński Łukasz 中"), "Zielinski Lukasz ?");
    }
}
