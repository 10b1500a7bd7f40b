//! Reading a mapping: its keys declared once per section, the unknown ones reported with
//! the closest known key.
//!
//! A section names its keys once, in a [`keys!`] declaration: the declaration is the struct
//! the section reads its fields from, the list its unknown-key message and did-you-mean
//! offer, and part of [`super::schema_keys`]. A field's path in messages
//! (`container.port`) is built from it, never written out.

use super::Decoder;
use crate::config::yaml::{Loc, Node, Value};

/// Declares a section's keys, in the order messages list them: a struct with one
/// [`Field`] per key (named as the key is spelled in `hoist.yaml`), and its [`Keys`] impl.
macro_rules! keys {
    ($(#[$doc:meta])* $name:ident { $($key:ident),+ $(,)? }) => {
        $(#[$doc])*
        pub(super) struct $name<'n> {
            $(pub(super) $key: super::fields::Field<'n>,)+
        }

        impl<'n> super::fields::Keys<'n> for $name<'n> {
            const NAMES: &'static [&'static str] = &[$(stringify!($key)),+];

            fn take(f: &super::fields::Fields<'n>) -> Self {
                $name { $($key: f.field(stringify!($key)),)+ }
            }
        }
    };
}
pub(super) use keys;

/// The keys of one section, as [`keys!`] declares them.
pub(super) trait Keys<'n>: Sized {
    /// Every key the section knows, whether or not a file gives it.
    const NAMES: &'static [&'static str];
    /// Each key's field of `f`.
    fn take(f: &Fields<'n>) -> Self;
}

/// One key of a mapping being read.
pub(super) struct Field<'n> {
    pub(super) key: &'static str,
    /// Its value; `None` when the key is absent or its value is null.
    pub(super) node: Option<&'n Node>,
    /// Where the key is written, if it is (also with no value).
    pub(super) key_loc: Option<Loc>,
    /// The dotted field path for messages, e.g. `container.port`.
    pub(super) path: String,
}

/// A mapping being read: its entries with string keys (the first of a repeated key), and
/// the keys its section knows; the others are reported by [`Decoder::finish`].
pub(super) struct Fields<'n> {
    pub(super) path: String,
    pub(super) loc: Loc,
    pub(super) entries: Vec<(&'n str, &'n Node, &'n Node)>,
    known: &'static [&'static str],
}

impl<'n> Fields<'n> {
    pub(super) fn field(&self, key: &'static str) -> Field<'n> {
        let entry = self.entries.iter().find(|(k, _, _)| *k == key);
        Field {
            key,
            node: entry.map(|(_, _, v)| *v).filter(|n| n.value != Value::Null),
            key_loc: entry.map(|(_, k, _)| k.loc),
            path: join(&self.path, key),
        }
    }
}

pub(super) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

impl Decoder {
    /// The entries of the mapping at `path`; `None` (reported) when `node` is not one.
    pub(super) fn fields<'n>(&mut self, node: &'n Node, path: &str) -> Option<Fields<'n>> {
        let Value::Map(entries) = &node.value else {
            self.wrong_type(path, node, "a mapping");
            return None;
        };
        let mut out: Vec<(&'n str, &'n Node, &'n Node)> = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            match &k.value {
                // A repeated key was reported by `check_text`; the first one is read.
                Value::Str(key) if out.iter().any(|(seen, _, _)| seen == key) => {}
                Value::Str(key) => out.push((key.as_str(), k, v)),
                _ => self.wrong_type(path, k, "a string key"),
            }
        }
        Some(Fields {
            path: path.to_owned(),
            loc: node.loc,
            entries: out,
            known: &[],
        })
    }

    /// A section's mapping and its keys' fields; [`Decoder::finish`] it once read.
    pub(super) fn section<'n, K: Keys<'n>>(
        &mut self,
        node: &'n Node,
        path: &str,
    ) -> Option<(Fields<'n>, K)> {
        let mut f = self.fields(node, path)?;
        f.known = K::NAMES;
        let keys = K::take(&f);
        Some((f, keys))
    }

    /// Reports every key of `f` its section does not know, suggesting the closest known key.
    pub(super) fn finish(&mut self, f: Fields<'_>) {
        let Fields {
            path,
            entries,
            known,
            ..
        } = f;
        for (key, knode, _) in entries {
            if known.contains(&key) {
                continue;
            }
            let field = join(&path, key);
            let help = match closest(key, known) {
                Some(k) => format!("did you mean `{k}`? Known keys here: {}", known.join(", ")),
                None => format!("known keys here: {}", known.join(", ")),
            };
            self.issue_help(&field, knode.loc, format!("unknown key `{key}`"), help);
        }
    }

    /// `field`'s value, or an issue (at the mapping `f`) saying it is missing.
    pub(super) fn required<'n>(
        &mut self,
        f: &Fields<'n>,
        field: &Field<'n>,
        what: &str,
    ) -> Option<&'n Node> {
        if field.node.is_none() {
            self.issue(
                &field.path,
                f.loc,
                format!("missing required field `{}` ({what})", field.key),
            );
        }
        field.node
    }
}

/// The known key closest to `key` by edit distance, if it is close enough to be a typo.
pub(super) fn closest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (edit_distance(key, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    // Optimal string alignment: insertions, deletions, substitutions and transpositions.
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}
