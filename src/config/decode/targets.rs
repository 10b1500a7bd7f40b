//! `targets:`: which instances a deploy runs on, and how many at a time.

use std::collections::BTreeMap;

use super::Decoder;
use super::fields::{join, keys};
use super::names::is_instance_id;
use crate::config::schema::{Rate, Targets};
use crate::config::yaml::{Node, Value};

/// SSM accepts at most 5 tag filters per `SendCommand`, and 50 values each.
const MAX_TAG_KEYS: usize = 5;
const MAX_TAG_VALUES: usize = 50;

keys! {
    TargetKeys { instance_ids, tags, max_concurrency, max_errors }
}

impl Decoder {
    pub(super) fn targets(&mut self, node: &Node, path: &str) -> Option<Targets> {
        let (f, k) = self.section::<TargetKeys>(node, path)?;
        let mut instance_ids = Vec::new();
        if let Some(n) = k.instance_ids.node {
            for (i, (id, loc)) in self
                .string_list(n, &k.instance_ids.path)
                .into_iter()
                .enumerate()
            {
                let field = format!("{}[{i}]", k.instance_ids.path);
                let id = self.accept(id, is_instance_id, &field, loc, |id| {
                    format!(
                        "`{id}` is not an EC2 instance id (i- followed by 8 or 17 lowercase hex \
                         digits)"
                    )
                });
                if let Some(id) = id
                    && !instance_ids.contains(&id)
                {
                    instance_ids.push(id);
                }
            }
        }
        let mut tags = BTreeMap::new();
        if let Some(n) = k.tags.node
            && let Some(tf) = self.fields(n, &k.tags.path)
        {
            let count = tf.entries.len();
            if count > MAX_TAG_KEYS {
                self.issue(
                    &k.tags.path,
                    n.loc,
                    format!("{count} tag keys given; SSM accepts at most {MAX_TAG_KEYS}"),
                );
            }
            for (key, knode, vnode) in tf.entries {
                let field = join(&k.tags.path, key);
                if key.is_empty() || key.len() > 128 {
                    self.issue(&field, knode.loc, "tag keys are 1-128 characters");
                    continue;
                }
                let values: Vec<String> = match &vnode.value {
                    Value::Seq(_) => self
                        .string_list(vnode, &field)
                        .into_iter()
                        .map(|(v, _)| v)
                        .collect(),
                    Value::Null => Vec::new(),
                    _ => self.scalar_text(vnode, &field).into_iter().collect(),
                };
                if values.is_empty() {
                    self.issue(&field, vnode.loc, format!("tag `{key}` lists no value"));
                } else if values.len() > MAX_TAG_VALUES {
                    self.issue(
                        &field,
                        vnode.loc,
                        format!(
                            "{} values given; SSM accepts at most {MAX_TAG_VALUES} per tag",
                            values.len()
                        ),
                    );
                } else {
                    tags.insert(key.to_owned(), values);
                }
            }
        }
        let max_concurrency = match k.max_concurrency.node {
            Some(n) => self.rate(n, &k.max_concurrency.path, 1),
            None => Some(Rate::Count(50)),
        };
        let max_errors = match k.max_errors.node {
            Some(n) => self.rate(n, &k.max_errors.path, 0),
            None => Some(Rate::Count(0)),
        };
        let had_issue_here = self.issues.iter().any(|i| {
            i.field.starts_with(&k.instance_ids.path) || i.field.starts_with(&k.tags.path)
        });
        if instance_ids.is_empty() && tags.is_empty() && !had_issue_here {
            self.issue_help(
                path,
                node.loc,
                "no targets: give `instance_ids`, `tags`, or both",
                "e.g. `tags: {Env: [staging]}` or `instance_ids: [i-0123456789abcdef0]`".into(),
            );
        }
        self.finish(f);
        Some(Targets {
            instance_ids,
            tags,
            max_concurrency: max_concurrency?,
            max_errors: max_errors?,
        })
    }
}
