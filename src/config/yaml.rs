//! A YAML document as a tree of nodes that remember where they came from.
//!
//! serde-saphyr parses the text; every node is captured as a `Spanned` value so the schema
//! decoder ([`super::decode`]) can report *every* problem with its line, column and field path,
//! instead of stopping at the first one as a derived `Deserialize` would.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Budget, DuplicateKeyPolicy, Options, Spanned};

/// The deepest nesting of collections accepted.
pub const MAX_DEPTH: usize = 24;

/// Where a node sits in the source: 1-based line and column, and a byte range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Loc {
    pub line: u64,
    pub column: u64,
    pub offset: usize,
    pub len: usize,
    /// Which file: 0 the config file, 1 the environment's overlay merged over it
    /// ([`merge`]).
    pub file: u8,
}

impl Loc {
    fn from_saphyr(loc: serde_saphyr::Location) -> Self {
        let span = loc.span();
        Loc {
            line: loc.line(),
            column: loc.column(),
            offset: usize::try_from(span.byte_offset().unwrap_or(span.offset()))
                .unwrap_or(usize::MAX),
            len: usize::try_from(span.byte_len().unwrap_or(span.len())).unwrap_or(usize::MAX),
            file: 0,
        }
    }

    /// The location of a saphyr error in `text`, when it has one.
    ///
    /// Error spans may come without byte offsets; their character offsets are converted
    /// against `text` (a snippet indexes bytes, so after a multibyte character a character
    /// offset would point too far left).
    pub fn of_error(err: &serde_saphyr::Error, text: &str) -> Option<Self> {
        let loc = err.location().filter(|l| l.line() > 0)?;
        let mut out = Self::from_saphyr(loc);
        let span = loc.span();
        if span.byte_offset().is_none() {
            let byte_at = |chars: u64| {
                usize::try_from(chars)
                    .ok()
                    .and_then(|n| text.char_indices().nth(n).map(|(i, _)| i))
                    .unwrap_or(text.len())
            };
            let start = byte_at(span.offset());
            out.offset = start;
            out.len = byte_at(span.offset().saturating_add(span.len())) - start;
        }
        Some(out)
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
    /// Where the value itself is written: `loc` unless the node is an alias (`*name`), whose
    /// value is written at its anchor.
    pub defined: Loc,
    /// For a number, boolean or null written as a plain scalar: its exact source text
    /// (`1.10`, `0123`, `off`), for fields that take text. `None` for other nodes, and when
    /// the text could not be recovered exactly.
    pub raw: Option<String>,
}

impl Node {
    /// A node that was not in the source (defaults), placed at `loc` for messages.
    pub fn synthetic(value: Value, loc: Loc) -> Self {
        Node {
            value,
            loc,
            defined: loc,
            raw: None,
        }
    }
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
///
/// Repeated keys are kept (the decoder reports them with both lines) rather than failing
/// the whole parse.
pub fn parse(text: &str) -> Result<Node, serde_saphyr::Error> {
    if text.trim().is_empty() {
        return Ok(Node::synthetic(Value::Null, Loc::default()));
    }
    let mut options = Options::default();
    options.duplicate_keys = DuplicateKeyPolicy::PassThrough;
    // A hoist.yaml nests 4 levels deep; the default budget (64) lets a hostile file recurse
    // deep enough to overflow a 2 MiB thread stack in a debug build.
    let mut budget = Budget::default();
    budget.max_depth = MAX_DEPTH;
    options.budget = Some(budget);
    let spanned: Spanned<Value> = serde_saphyr::from_str_with_options(text, options)?;
    let mut root = Node::from(spanned);
    attach_raw(&mut root, text);
    Ok(root)
}

/// Records the source text of every plain number, boolean and null scalar.
fn attach_raw(node: &mut Node, text: &str) {
    match &mut node.value {
        Value::Seq(items) => items.iter_mut().for_each(|n| attach_raw(n, text)),
        Value::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
            attach_raw(k, text);
            attach_raw(v, text);
        }),
        Value::Str(_) => {}
        Value::Null | Value::Bool(_) | Value::Int(_) | Value::Float(_) => {
            node.raw = scalar_source(text, node.defined, &node.value);
        }
    }
}

/// The text at `loc`, if it is exactly one plain scalar that reads back as `value`.
fn scalar_source(text: &str, loc: Loc, value: &Value) -> Option<String> {
    let raw = text
        .get(loc.offset..loc.offset.checked_add(loc.len)?)?
        .trim();
    if raw.is_empty()
        || raw.contains(['\n', '\r', '#'])
        || raw.starts_with(['&', '!', '*', '"', '\'', '[', '{'])
    {
        return None;
    }
    let again: Value = serde_saphyr::from_str(raw).ok()?;
    (again == *value).then(|| raw.to_owned())
}

impl From<Spanned<Value>> for Node {
    fn from(s: Spanned<Value>) -> Self {
        Node {
            value: s.value,
            loc: Loc::from_saphyr(s.referenced),
            defined: Loc::from_saphyr(s.defined),
            raw: None,
        }
    }
}

/// Marks every location in `node` as being in file `file` (1: an overlay).
pub fn set_file(node: &mut Node, file: u8) {
    node.loc.file = file;
    node.defined.file = file;
    match &mut node.value {
        Value::Seq(items) => items.iter_mut().for_each(|n| set_file(n, file)),
        Value::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
            set_file(k, file);
            set_file(v, file);
        }),
        _ => {}
    }
}

/// Merges `overlay` over `base`: two mappings merge key by key, recursively; anything else
/// (a scalar, a sequence, a null, a mapping over a non-mapping) replaces what `base` had,
/// key and value, so a value keeps the location of the file that set it. A key the
/// overlay repeats is kept repeated, for the decoder to report.
pub fn merge(base: Node, overlay: Node) -> Node {
    match (base.value, overlay.value) {
        (Value::Map(mut entries), Value::Map(over)) => {
            let mut merged: Vec<bool> = vec![false; entries.len()];
            for (k, v) in over {
                let at = match &k.value {
                    Value::Str(key) => entries
                        .iter()
                        .position(|(bk, _)| bk.value == Value::Str(key.clone())),
                    _ => None,
                };
                match at {
                    Some(i) if !merged[i] => {
                        merged[i] = true;
                        let (bk, bv) = std::mem::replace(
                            &mut entries[i],
                            (
                                Node::synthetic(Value::Null, Loc::default()),
                                Node::synthetic(Value::Null, Loc::default()),
                            ),
                        );
                        entries[i] =
                            if matches!((&bv.value, &v.value), (Value::Map(_), Value::Map(_))) {
                                (bk, merge(bv, v))
                            } else {
                                (k, v)
                            };
                    }
                    _ => {
                        entries.push((k, v));
                        merged.push(true);
                    }
                }
            }
            Node {
                value: Value::Map(entries),
                ..base
            }
        }
        (_, value) => Node { value, ..overlay },
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
    fn deep_nesting_is_refused_before_it_exhausts_a_small_stack() {
        let worker = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(|| {
                for n in [MAX_DEPTH - 1, 60, 255, 1000] {
                    let text = format!("x: {}1{}\n", "[".repeat(n), "]".repeat(n));
                    assert_eq!(parse(&text).is_ok(), n < MAX_DEPTH, "depth {n}");
                }
            })
            .unwrap();
        worker.join().expect("no stack overflow, no panic");
    }

    #[test]
    fn plain_numbers_and_booleans_keep_their_source_text() {
        let text = "a: 1.10\nb: [0123, off, 0x1F, 1e3]\nc: &n yes\nd: *n\ne: \"1.10\"\nf: ~\n";
        let root = parse(text).unwrap();
        let Value::Map(entries) = &root.value else {
            panic!()
        };
        let raw = |n: &Node| n.raw.clone();
        assert_eq!(raw(&entries[0].1), Some("1.10".into()));
        let Value::Seq(items) = &entries[1].1.value else {
            panic!()
        };
        let items: Vec<_> = items.iter().map(raw).collect();
        assert_eq!(
            items,
            [
                Some("0123".into()),
                Some("off".into()),
                Some("0x1F".into()),
                Some("1e3".into())
            ]
        );
        assert_eq!(raw(&entries[2].1), Some("yes".into()), "an anchored value");
        assert_eq!(
            raw(&entries[3].1),
            Some("yes".into()),
            "an alias: its anchor's text"
        );
        assert_eq!(raw(&entries[4].1), None, "strings need no raw text");
        assert_eq!(raw(&entries[5].1), Some("~".into()));
    }

    #[test]
    fn merging_maps_key_by_key_replacing_scalars_and_lists_keeping_the_setters_file() {
        let base = parse("a: 1\nm:\n  xx: 1\n  yy: [1, 2]\n  zz: {k: v}\nl: [1]\n").unwrap();
        let mut over = parse("m:\n  yy: [3]\n  zz: 7\n  ww: new\nl: ~\n").unwrap();
        set_file(&mut over, 1);
        let merged = merge(base, over);
        let Value::Map(top) = &merged.value else {
            panic!()
        };
        let get = |entries: &[(Node, Node)], key: &str| -> Node {
            entries
                .iter()
                .find(|(k, _)| k.value == Value::Str(key.into()))
                .map_or_else(|| panic!("no {key}"), |(_, v)| v.clone())
        };
        let keys: Vec<_> = top.iter().map(|(k, _)| k.value.clone()).collect();
        assert_eq!(
            keys,
            ["a", "m", "l"].map(|k| Value::Str(k.into())),
            "the file's order, its keys kept"
        );
        assert_eq!(get(top, "a").value, Value::Int(1));
        assert_eq!(get(top, "a").loc.file, 0);
        assert_eq!(get(top, "l").value, Value::Null, "null replaces");
        let m = get(top, "m");
        assert_eq!(
            m.loc.file, 0,
            "a merged mapping stays where the file wrote it"
        );
        let Value::Map(inner) = &m.value else {
            panic!()
        };
        assert_eq!(get(inner, "xx").value, Value::Int(1));
        let y = get(inner, "yy");
        let Value::Seq(items) = &y.value else {
            panic!()
        };
        assert_eq!(items.len(), 1, "a list is replaced, not appended to");
        assert_eq!((y.loc.file, y.loc.line), (1, 2), "where the overlay set it");
        assert_eq!(
            get(inner, "zz").value,
            Value::Int(7),
            "a scalar over a mapping"
        );
        let w = get(inner, "ww");
        assert_eq!((w.loc.file, w.loc.line), (1, 4));
    }

    #[test]
    fn syntax_errors_have_a_location() {
        let text = "app: [unclosed\n";
        let err = parse(text).unwrap_err();
        assert!(Loc::of_error(&err, text).is_some(), "{err}");
    }
}
