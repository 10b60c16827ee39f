//! A TOML document as a tree that remembers where each key and value was written.
//!
//! `toml::Table` forgets positions, and `toml::Spanned<T>` fails outright on tables
//! that have no position of their own: the implicit ones made by dotted keys
//! (`group` in `[group."foo"]`, `memory` in `memory.max = 1`). [`Located`] speaks
//! the same serde protocol as `toml::Spanned` but treats the position as optional,
//! so any document deserializes and every key and scalar value keeps its span.

use std::fmt;
use std::ops::Range;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

// The private names by which `toml` (0.8, via serde_spanned 0.6) hands a value's
// byte range to `toml::Spanned`. Asking for a struct with these names makes the
// deserializer send a map `{start, end, value}` instead of the bare value, when it
// knows the range. The tests below fail loudly if a toml upgrade changes them.
const SPANNED_NAME: &str = "$__serde_spanned_private_Spanned";
const SPANNED_START: &str = "$__serde_spanned_private_start";
const SPANNED_END: &str = "$__serde_spanned_private_end";
const SPANNED_VALUE: &str = "$__serde_spanned_private_value";
const SPANNED_FIELDS: &[&str] = &[SPANNED_START, SPANNED_END, SPANNED_VALUE];
/// How toml passes a datetime through `deserialize_any`: a one-entry map.
const DATETIME_KEY: &str = "$__toml_private_datetime";

/// A value with the byte range it came from, when the parser knows it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Located<T> {
    pub(crate) span: Option<Range<usize>>,
    pub(crate) value: T,
}

/// Any TOML value. Tables keep their entries in file order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    String(String),
    Integer(i64),
    Float(f64),
    Boolean(bool),
    Datetime(String),
    Array(Vec<Located<Node>>),
    Table(Vec<(Located<String>, Located<Node>)>),
}

impl Node {
    /// "a string", "an array", ... for messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::String(_) => "a string",
            Self::Integer(_) => "an integer",
            Self::Float(_) => "a float",
            Self::Boolean(_) => "a boolean",
            Self::Datetime(_) => "a date-time",
            Self::Array(_) => "an array",
            Self::Table(_) => "a table",
        }
    }
}

fn unlocated<T>(value: T) -> Located<T> {
    Located { span: None, value }
}

impl<'de> Deserialize<'de> for Located<String> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_struct(SPANNED_NAME, SPANNED_FIELDS, LocatedStringVisitor)
    }
}

struct LocatedStringVisitor;

impl<'de> Visitor<'de> for LocatedStringVisitor {
    type Value = Located<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    // No span: a key without a position, or one of the protocol's own field names.
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(unlocated(v.to_owned()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        match map.next_key::<String>()? {
            Some(key) if key == SPANNED_START => finish_spanned(map),
            _ => Err(de::Error::custom("expected a string key")),
        }
    }
}

impl<'de> Deserialize<'de> for Located<Node> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_struct(SPANNED_NAME, SPANNED_FIELDS, LocatedNodeVisitor)
    }
}

/// Receives either the `{start, end, value}` map of a value with a known range,
/// or (for implicit tables) the value itself.
struct LocatedNodeVisitor;

impl<'de> Visitor<'de> for LocatedNodeVisitor {
    type Value = Located<Node>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a TOML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        NodeVisitor.visit_bool(v).map(unlocated)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        NodeVisitor.visit_i64(v).map(unlocated)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        NodeVisitor.visit_u64(v).map(unlocated)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        NodeVisitor.visit_f64(v).map(unlocated)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        NodeVisitor.visit_str(v).map(unlocated)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        NodeVisitor.visit_seq(seq).map(unlocated)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        match map.next_key::<Located<String>>()? {
            None => Ok(unlocated(Node::Table(Vec::new()))),
            // Protocol field names arrive without a span; real keys always have one.
            Some(key) if key.span.is_none() && key.value == SPANNED_START => finish_spanned(map),
            Some(first) => table_or_datetime(first, map).map(unlocated),
        }
    }
}

/// Reads the rest of a `{start, end, value}` map whose `start` key was consumed.
fn finish_spanned<'de, A, T>(mut map: A) -> Result<Located<T>, A::Error>
where
    A: MapAccess<'de>,
    T: Deserialize<'de>,
{
    let start: usize = map.next_value()?;
    expect_key(&mut map, SPANNED_END)?;
    let end: usize = map.next_value()?;
    expect_key(&mut map, SPANNED_VALUE)?;
    let value: T = map.next_value()?;
    Ok(Located {
        span: Some(start..end),
        value,
    })
}

fn expect_key<'de, A: MapAccess<'de>>(map: &mut A, want: &'static str) -> Result<(), A::Error> {
    match map.next_key::<String>()? {
        Some(key) if key == want => Ok(()),
        _ => Err(de::Error::missing_field(want)),
    }
}

/// A table whose first key was already read (to tell it from the span protocol).
fn table_or_datetime<'de, A: MapAccess<'de>>(
    first: Located<String>,
    mut map: A,
) -> Result<Node, A::Error> {
    if first.span.is_none() && first.value == DATETIME_KEY {
        return Ok(Node::Datetime(map.next_value()?));
    }
    let mut entries = vec![(first, map.next_value()?)];
    while let Some(key) = map.next_key()? {
        entries.push((key, map.next_value()?));
    }
    Ok(Node::Table(entries))
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a TOML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Boolean(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Integer(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        i64::try_from(v)
            .map(Node::Integer)
            .map_err(|_| E::custom("integer is too large"))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::String(v.to_owned()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        match map.next_key::<Located<String>>()? {
            None => Ok(Node::Table(Vec::new())),
            Some(first) => table_or_datetime(first, map),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Located<Node> {
        toml::from_str(text).unwrap()
    }

    fn table(node: &Node) -> &[(Located<String>, Located<Node>)] {
        match node {
            Node::Table(entries) => entries,
            other => panic!("not a table: {other:?}"),
        }
    }

    fn entry<'a>(node: &'a Node, key: &str) -> &'a (Located<String>, Located<Node>) {
        table(node).iter().find(|(k, _)| k.value == key).unwrap()
    }

    fn text<'a>(source: &'a str, span: &Option<Range<usize>>) -> &'a str {
        &source[span.clone().unwrap()]
    }

    #[test]
    fn keys_and_scalars_keep_their_spans() {
        let source = "[group.\"foo\"]\n\"cpu.shares\" = 100\nmemory.max = \"1G\"\nd = 1979-05-27\n";
        let root = parse(source);
        let (group_key, group) = &table(&root.value)[0];
        assert_eq!(text(source, &group_key.span), "group");
        // Implicit table: no span of its own, but it deserializes.
        assert_eq!(group.span, None);
        let (foo_key, foo) = &table(&group.value)[0];
        assert_eq!(text(source, &foo_key.span), "\"foo\"");

        let (key, value) = entry(&foo.value, "cpu.shares");
        assert_eq!(text(source, &key.span), "\"cpu.shares\"");
        assert_eq!(text(source, &value.span), "100");
        assert_eq!(value.value, Node::Integer(100));

        let (key, memory) = entry(&foo.value, "memory");
        assert_eq!(text(source, &key.span), "memory");
        let (key, value) = entry(&memory.value, "max");
        assert_eq!(text(source, &key.span), "max");
        assert_eq!(text(source, &value.span), "\"1G\"");
        assert_eq!(value.value, Node::String("1G".to_owned()));

        let (_, date) = entry(&foo.value, "d");
        assert_eq!(date.value, Node::Datetime("1979-05-27".to_owned()));
    }

    #[test]
    fn arrays_inline_tables_and_order() {
        let source = "z = [\"a\", 2]\na = { y = true, b = 1.5 }\n";
        let root = parse(source);
        let keys: Vec<_> = table(&root.value)
            .iter()
            .map(|(k, _)| k.value.as_str())
            .collect();
        assert_eq!(keys, ["z", "a"]);
        let (_, array) = entry(&root.value, "z");
        let Node::Array(items) = &array.value else {
            panic!("not an array")
        };
        assert_eq!(text(source, &items[1].span), "2");
        let (_, inline) = entry(&root.value, "a");
        assert!(inline.span.is_some());
        let (_, y) = entry(&inline.value, "y");
        assert_eq!(
            (y.value.clone(), text(source, &y.span)),
            (Node::Boolean(true), "true")
        );
        assert_eq!(entry(&inline.value, "b").1.value, Node::Float(1.5));
    }

    #[test]
    fn empty_document() {
        assert_eq!(table(&parse("").value).len(), 0);
    }
}
