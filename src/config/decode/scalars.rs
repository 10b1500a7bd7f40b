//! Reading scalar values, lists and name-to-text mappings, each reporting what is wrong
//! with it (for the field path it is given).

use std::time::Duration;

use super::Decoder;
use super::fields::{Field, join};
use crate::config::duration;
use crate::config::schema::Rate;
use crate::config::yaml::{Loc, Node, Value};

impl Decoder {
    /// `value` when `valid` says it is, else an issue at `loc` saying what it is not.
    pub(super) fn accept(
        &mut self,
        value: String,
        valid: fn(&str) -> bool,
        field: &str,
        loc: Loc,
        not: impl FnOnce(&str) -> String,
    ) -> Option<String> {
        if valid(&value) {
            Some(value)
        } else {
            self.issue(field, loc, not(&value));
            None
        }
    }

    pub(super) fn string(&mut self, node: &Node, field: &str) -> Option<String> {
        if let Value::Str(s) = &node.value {
            Some(s.clone())
        } else {
            self.wrong_type(field, node, "a string");
            None
        }
    }

    pub(super) fn boolean(&mut self, node: &Node, field: &str) -> Option<bool> {
        if let Value::Bool(b) = node.value {
            Some(b)
        } else {
            self.wrong_type(field, node, "true or false");
            None
        }
    }

    /// A true/false field; false when absent, and when invalid (reported).
    pub(super) fn flag(&mut self, field: &Field<'_>) -> bool {
        field
            .node
            .and_then(|n| self.boolean(n, &field.path))
            .unwrap_or(false)
    }

    /// A scalar read as text: strings, numbers and booleans (env values, labels, build args).
    /// An unquoted number or boolean is taken exactly as written (`1.10`, `0123`, `off`),
    /// never as YAML's reading of it (`1.1`, `123`, `false`).
    pub(super) fn scalar_text(&mut self, node: &Node, field: &str) -> Option<String> {
        match &node.value {
            Value::Str(s) => Some(s.clone()),
            Value::Int(_) | Value::Float(_) | Value::Bool(_) => {
                if let Some(raw) = &node.raw {
                    Some(raw.clone())
                } else {
                    self.issue_help(
                        field,
                        node.loc,
                        format!(
                            "{} where text is expected, and its exact spelling cannot be \
                         recovered",
                            node.value.kind()
                        ),
                        "quote it (e.g. \"1.10\") so YAML keeps the text as written".into(),
                    );
                    None
                }
            }
            _ => {
                self.wrong_type(field, node, "a string, number or boolean");
                None
            }
        }
    }

    pub(super) fn int_in(&mut self, node: &Node, field: &str, lo: i128, hi: i128) -> Option<i128> {
        match node.value {
            Value::Int(i) if (lo..=hi).contains(&i) => Some(i),
            Value::Int(i) => {
                self.issue(field, node.loc, format!("{i} is out of range ({lo}-{hi})"));
                None
            }
            _ => {
                self.wrong_type(field, node, &format!("an integer ({lo}-{hi})"));
                None
            }
        }
    }

    pub(super) fn port(&mut self, node: &Node, field: &str) -> Option<u16> {
        self.int_in(node, field, 1, 65535)
            .map(|p| u16::try_from(p).expect("checked to be 1-65535"))
    }

    pub(super) fn duration(&mut self, node: &Node, field: &str) -> Option<Duration> {
        let text = match &node.value {
            Value::Str(s) => s.clone(),
            Value::Int(i) => i.to_string(),
            _ => {
                self.wrong_type(field, node, "a duration such as \"30s\" or \"2m\"");
                return None;
            }
        };
        match duration::parse(&text) {
            Ok(d) => Some(d),
            Err(e) => {
                self.issue(field, node.loc, e);
                None
            }
        }
    }

    /// A duration within `range`; `help` says what it is for when it is not.
    pub(super) fn duration_in(
        &mut self,
        node: &Node,
        field: &str,
        range: std::ops::RangeInclusive<Duration>,
        help: &str,
    ) -> Option<Duration> {
        let d = self.duration(node, field)?;
        if range.contains(&d) {
            return Some(d);
        }
        self.issue_help(
            field,
            node.loc,
            format!(
                "{} is out of range ({}-{})",
                duration::format(d),
                duration::format(*range.start()),
                duration::format(*range.end())
            ),
            help.to_owned(),
        );
        None
    }

    pub(super) fn string_list(&mut self, node: &Node, field: &str) -> Vec<(String, Loc)> {
        let Value::Seq(items) = &node.value else {
            self.wrong_type(field, node, "a list of strings");
            return Vec::new();
        };
        items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| {
                let f = format!("{field}[{i}]");
                self.string(item, &f).map(|s| (s, item.loc))
            })
            .collect()
    }

    /// A mapping of names to scalar values (`build_args`, `labels`, `env.clear`).
    pub(super) fn text_map(&mut self, node: &Node, field: &str) -> Vec<(String, Loc, String, Loc)> {
        let Some(f) = self.fields(node, field) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (key, knode, vnode) in f.entries {
            let vfield = join(field, key);
            if vnode.value == Value::Null {
                self.issue_help(
                    &vfield,
                    knode.loc,
                    format!("`{key}` has no value"),
                    "YAML reads an empty value, `~` and `null` as nothing: write \"\" for an \
                     empty string, or quote the text (\"~\")"
                        .into(),
                );
                continue;
            }
            if let Some(value) = self.scalar_text(vnode, &vfield) {
                out.push((key.to_owned(), knode.loc, value, vnode.loc));
            }
        }
        out
    }

    /// SSM's `MaxConcurrency` / `MaxErrors`: an integer, or a percentage string `"10%"`.
    pub(super) fn rate(&mut self, node: &Node, field: &str, min: u32) -> Option<Rate> {
        let bad = |d: &mut Self| {
            d.issue(
                field,
                node.loc,
                format!(
                    "expected a number ({min} or more) or a percentage such as \"10%\", \
                     found {}",
                    describe(node)
                ),
            );
            None
        };
        match &node.value {
            Value::Int(i) if *i >= i128::from(min) && *i <= 100_000 => Some(Rate::Count(
                u32::try_from(*i).expect("checked to be at most 100000"),
            )),
            Value::Str(s) => {
                if let Some(p) = s.strip_suffix('%') {
                    match p.parse::<u8>() {
                        Ok(p) if p <= 100 && u32::from(p) >= min => Some(Rate::Percent(p)),
                        _ => bad(self),
                    }
                } else {
                    match s.parse::<u32>() {
                        Ok(n) if n >= min => Some(Rate::Count(n)),
                        _ => bad(self),
                    }
                }
            }
            _ => bad(self),
        }
    }
}

pub(super) fn describe(node: &Node) -> String {
    match &node.value {
        Value::Str(s) => format!("`{s}`"),
        Value::Int(i) => i.to_string(),
        Value::Float(x) => x.to_string(),
        other => other.kind().to_owned(),
    }
}
