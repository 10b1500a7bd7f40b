//! A YAML document as a tree of nodes that remember where they came from.
//!
//! serde-saphyr parses the text; every node is captured as a `Spanned` value so the schema
//! decoder ([`super::decode`]) can report *every* problem with its line, column and field path,
//! instead of stopping at the first one as a derived `Deserialize` would.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// Where a node sits in the source: 1-based line and column, and a byte range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Loc {
    pub line: u64,
    pub column: u64,
    pub offset: usize,
    pub len: usize,
}

impl Loc {
    fn from_saphyr(loc: serde_saphyr::Location) -> Self {
        let span = loc.span();
        Loc {
            line: loc.line(),
            column: loc.column(),
            offset: span.byte_offset().unwrap_or(span.offset()) as usize,
            len: span.byte_len().unwrap_or(span.len()) as usize,
        }
    }

    /// The location of a saphyr error, when it has one.
    pub fn of_error(err: &serde_saphyr::Error) -> Option<Self> {
        err.location()
            .filter(|l| l.line() > 0)
            .map(Self::from_saphyr)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub loc: Loc,
}

impl Value {
    /// How the value reads in an error message ("a string", "a list", ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "nothing (null)",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

/// Parses a YAML document. An empty document is `Null`.
pub fn parse(text: &str) -> Result<Node, serde_saphyr::Error> {
    if text.trim().is_empty() {
        return Ok(Node {
            value: Value::Null,
            loc: Loc::default(),
        });
    }
    let spanned: Spanned<Value> = serde_saphyr::from_str(text)?;
    Ok(Node::from(spanned))
}

impl From<Spanned<Value>> for Node {
    fn from(s: Spanned<Value>) -> Self {
        Node {
            value: s.value,
            loc: Loc::from_saphyr(s.referenced),
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }
    fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<Value, E> {
        i128::try_from(v)
            .map(Value::Int)
            .map_err(|_| E::custom("integer too large"))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Value>>()? {
            items.push(Node::from(item));
        }
        Ok(Value::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<Value>>()? {
            let value = map.next_value::<Spanned<Value>>()?;
            entries.push((Node::from(key), Node::from(value)));
        }
        Ok(Value::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_carry_lines_and_columns() {
        let text = "app: hello\ncontainer:\n  port: 8080\n";
        let root = parse(text).unwrap();
        let Value::Map(entries) = &root.value else {
            panic!("not a map: {root:?}")
        };
        let (_, container) = &entries[1];
        let Value::Map(inner) = &container.value else {
            panic!()
        };
        let (key, port) = &inner[0];
        assert_eq!(key.value, Value::Str("port".into()));
        assert_eq!(port.value, Value::Int(8080));
        assert_eq!((port.loc.line, port.loc.column), (3, 9));
        assert_eq!(
            &text[port.loc.offset..port.loc.offset + port.loc.len],
            "8080"
        );
    }

    #[test]
    fn syntax_errors_have_a_location() {
        let err = parse("app: [unclosed\n").unwrap_err();
        assert!(Loc::of_error(&err).is_some(), "{err}");
    }
}
