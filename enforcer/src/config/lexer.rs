//! Tokens of libcgroup's cgconfig.conf.
//!
//! Like libcgroup's flex scanner, a word is any run of characters that is not
//! blank, punctuation (`{ } ; =`), a quote or a comment, so paths (`/a/b`), sizes
//! (`50M`), ranges (`0-1`) and `%u`-style template names need no quotes. Keywords
//! are just words here; the parser decides by position whether `group` is one.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::ConfigError;
use super::model::Span;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenKind {
    Word(String),
    /// A double-quoted string, quotes removed (libcgroup has no escapes).
    Quoted(String),
    Open,
    Close,
    Semicolon,
    Equals,
    Eof,
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub(crate) kind: TokenKind,
    /// Where the token starts (the opening quote for a quoted string).
    pub(crate) span: Span,
}

impl Token {
    /// The text of a word or quoted string: anything that can be a name or value.
    pub(crate) fn text(&self) -> Option<&str> {
        match &self.kind {
            TokenKind::Word(text) | TokenKind::Quoted(text) => Some(text),
            _ => None,
        }
    }

    /// How to name this token in a "found ..." message.
    pub(crate) fn describe(&self) -> String {
        match &self.kind {
            TokenKind::Quoted(text) if text.is_empty() => "an empty string `\"\"`".to_owned(),
            TokenKind::Word(text) => format!("`{text}`"),
            TokenKind::Quoted(text) => format!("`\"{text}\"`"),
            TokenKind::Open => "`{`".to_owned(),
            TokenKind::Close => "`}`".to_owned(),
            TokenKind::Semicolon => "`;`".to_owned(),
            TokenKind::Equals => "`=`".to_owned(),
            TokenKind::Eof => "end of file".to_owned(),
        }
    }
}

pub(crate) struct Lexer<'a> {
    text: &'a str,
    /// Byte offset of the next character.
    pos: usize,
    line: u32,
    column: u32,
    file: Arc<PathBuf>,
}

fn is_word_char(c: char) -> bool {
    !c.is_whitespace() && !matches!(c, '{' | '}' | ';' | '=' | '"' | '#')
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(text: &'a str, file: &Path) -> Self {
        Self {
            text,
            pos: 0,
            line: 1,
            column: 1,
            file: Arc::new(file.to_owned()),
        }
    }

    pub(crate) fn next_token(&mut self) -> Result<Token, ConfigError> {
        self.skip_blanks_and_comments();
        let span = self.span();
        let kind = match self.peek() {
            None => TokenKind::Eof,
            Some('"') => self.quoted(&span)?,
            Some(c) if is_word_char(c) => self.word(),
            Some(c) => {
                self.bump();
                match c {
                    '{' => TokenKind::Open,
                    '}' => TokenKind::Close,
                    ';' => TokenKind::Semicolon,
                    _ => TokenKind::Equals, // the only other non-word character left
                }
            }
        };
        Ok(Token { kind, span })
    }

    fn span(&self) -> Span {
        Span {
            file: Arc::clone(&self.file),
            line: self.line,
            column: self.column,
        }
    }

    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn peek_second(&self) -> Option<char> {
        self.text[self.pos..].chars().nth(1)
    }

    fn bump(&mut self) {
        if let Some(c) = self.peek() {
            self.pos += c.len_utf8();
            if c == '\n' {
                self.line += 1;
                self.column = 1;
            } else {
                self.column += 1;
            }
        }
    }

    fn skip_blanks_and_comments(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_whitespace() {
                self.bump();
            } else if c == '#' {
                while self.peek().is_some_and(|c| c != '\n') {
                    self.bump();
                }
            } else {
                break;
            }
        }
    }

    fn word(&mut self) -> TokenKind {
        let start = self.pos;
        self.eat_word_chars();
        // Named hierarchies are written `name=systemd`. `=` normally ends a word (so
        // `cpu.shares=100;` works), but no setting is called `name`, so glue the two.
        if &self.text[start..self.pos] == "name"
            && self.peek() == Some('=')
            && self.peek_second().is_some_and(is_word_char)
        {
            self.bump();
            self.eat_word_chars();
        }
        TokenKind::Word(self.text[start..self.pos].to_owned())
    }

    fn eat_word_chars(&mut self) {
        while self.peek().is_some_and(is_word_char) {
            self.bump();
        }
    }

    /// A string in double quotes. libcgroup would let it run over newlines, but a
    /// value never needs to, and stopping at the end of the line points the user at
    /// the missing quote instead of at some later line.
    fn quoted(&mut self, open: &Span) -> Result<TokenKind, ConfigError> {
        self.bump();
        let start = self.pos;
        loop {
            match self.peek() {
                Some('"') => {
                    let text = self.text[start..self.pos].to_owned();
                    self.bump();
                    return Ok(TokenKind::Quoted(text));
                }
                Some('\n') => return Err(unterminated(open, "end of line")),
                None => return Err(unterminated(open, "end of file")),
                Some(_) => self.bump(),
            }
        }
    }
}

fn unterminated(open: &Span, found: &str) -> ConfigError {
    ConfigError::syntax(
        open.clone(),
        "a closing `\"` for the string that starts here",
        found,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lex(text: &str) -> Vec<(TokenKind, u32, u32)> {
        let mut lexer = Lexer::new(text, Path::new("t.conf"));
        let mut out = Vec::new();
        loop {
            let token = lexer.next_token().unwrap();
            let done = token.kind == TokenKind::Eof;
            out.push((token.kind, token.span.line, token.span.column));
            if done {
                return out;
            }
        }
    }

    fn word(text: &str) -> TokenKind {
        TokenKind::Word(text.to_owned())
    }

    #[test]
    fn words_punctuation_and_positions() {
        use TokenKind::*;
        let tokens = lex("# c\n  cpu.shares=100; # x\n\tk = \"0-5\" }");
        assert_eq!(
            tokens,
            vec![
                (word("cpu.shares"), 2, 3),
                (Equals, 2, 13),
                (word("100"), 2, 14),
                (Semicolon, 2, 17),
                (word("k"), 3, 2),
                (Equals, 3, 4),
                (Quoted("0-5".to_owned()), 3, 6),
                (Close, 3, 12),
                (Eof, 3, 13),
            ]
        );
    }

    #[test]
    fn bare_values_and_named_hierarchies() {
        let kinds: Vec<_> = lex("name=systemd { } /sys/fs/cgroup/cpu 50M 0-1 max %u@x")
            .into_iter()
            .map(|(kind, _, _)| kind)
            .collect();
        assert_eq!(
            kinds,
            vec![
                word("name=systemd"),
                TokenKind::Open,
                TokenKind::Close,
                word("/sys/fs/cgroup/cpu"),
                word("50M"),
                word("0-1"),
                word("max"),
                word("%u@x"),
                TokenKind::Eof,
            ]
        );
    }

    #[test]
    fn columns_count_characters() {
        let tokens = lex("\"é\" x");
        assert_eq!(tokens[1], (word("x"), 1, 5));
    }

    #[test]
    fn unterminated_string_points_at_the_opening_quote() {
        let mut lexer = Lexer::new("a = \"0-5;\nb", Path::new("t.conf"));
        lexer.next_token().unwrap();
        lexer.next_token().unwrap();
        let err = lexer.next_token().unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.conf:1:5: expected a closing `\"` for the string that starts here, found end of line"
        );
    }
}
