//! Turning byte offsets into `line:column` spans.
//!
//! The TOML parser reports positions as byte ranges; users want 1-based lines and
//! columns counted in characters (what editors show), so we convert here.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::model::Span;

pub(crate) struct SourceMap<'a> {
    text: &'a str,
    file: Arc<PathBuf>,
    /// Byte offset at which each line starts; `line_starts[0] == 0`.
    line_starts: Vec<usize>,
}

impl<'a> SourceMap<'a> {
    pub(crate) fn new(text: &'a str, file: &Path) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self {
            text,
            file: Arc::new(file.to_owned()),
            line_starts,
        }
    }

    /// The span of the character starting at byte `offset` (clamped to the text).
    pub(crate) fn span(&self, offset: usize) -> Span {
        let offset = self.floor_char_boundary(offset.min(self.text.len()));
        // Index of the last line starting at or before `offset`.
        let line_index = self.line_starts.partition_point(|&start| start <= offset) - 1;
        let line_start = self.line_starts[line_index];
        let column = self.text[line_start..offset].chars().count() + 1;
        Span {
            file: Arc::clone(&self.file),
            line: saturating_u32(line_index + 1),
            column: saturating_u32(column),
        }
    }

    /// The source text in `range`, or `""` if the range is out of bounds.
    pub(crate) fn text(&self, range: std::ops::Range<usize>) -> &'a str {
        self.text.get(range).unwrap_or_default()
    }

    /// The source text from `offset` to the end (empty if out of bounds).
    pub(crate) fn rest(&self, offset: usize) -> &'a str {
        self.text.get(offset..).unwrap_or_default()
    }

    /// How to name what is at `offset` in a "found ..." message.
    pub(crate) fn describe(&self, offset: usize) -> String {
        let offset = self.floor_char_boundary(offset.min(self.text.len()));
        match self.text[offset..].chars().next() {
            None => "end of file".to_owned(),
            Some('\n' | '\r') => "end of line".to_owned(),
            Some(c) => format!("`{c}`"),
        }
    }

    // A byte range from a parser should always start on a character, but a
    // wrong offset must not turn into a panic while reporting another error.
    fn floor_char_boundary(&self, mut offset: usize) -> usize {
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        offset
    }
}

fn saturating_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str, offset: usize) -> (u32, u32) {
        let span = SourceMap::new(text, Path::new("f")).span(offset);
        (span.line, span.column)
    }

    #[test]
    fn offsets_become_lines_and_character_columns() {
        let text = "ab\ncdé f\n\nx";
        assert_eq!(at(text, 0), (1, 1));
        assert_eq!(at(text, 2), (1, 3)); // the newline itself
        assert_eq!(at(text, 3), (2, 1));
        // `é` is two bytes but one column.
        assert_eq!(at(text, 7), (2, 4));
        assert_eq!(at(text, 8), (2, 5));
        assert_eq!(at(text, 10), (3, 1));
        assert_eq!(at(text, 11), (4, 1));
        assert_eq!(at(text, 12), (4, 2)); // end of file
        assert_eq!(at(text, 99), (4, 2));
    }

    #[test]
    fn describes_characters_and_ends() {
        let map = SourceMap::new("a\n", Path::new("f"));
        assert_eq!(map.describe(0), "`a`");
        assert_eq!(map.describe(1), "end of line");
        assert_eq!(map.describe(2), "end of file");
    }
}
