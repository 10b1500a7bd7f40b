//! `env:`: the container's environment, clear values and secrets, and where a host reads
//! a secret itself (`NAME: {ssm: …}`).

use std::collections::BTreeMap;

use super::Decoder;
use super::fields::{join, keys};
use super::names::{is_env_name, is_parameter_ref, is_secret_id, not_env_name};
use crate::config::schema::{Env, SecretSource};
use crate::config::yaml::{Node, Value};

/// The longest `NAME=value` line Docker reads from an env file. The Docker CLI parses
/// `--env-file` with Go's `bufio.Scanner` at its default `MaxScanTokenSize` (64 KiB); the
/// buffer must hold the line and its newline, so a longer line fails the container's
/// creation with "bufio.Scanner: token too long".
pub const MAX_ENV_LINE: usize = 64 * 1024 - 1;

keys! {
    EnvKeys { clear, secret }
}

keys! {
    /// A secret's source: `{ssm: NAME}` or `{secretsmanager: ID, key: FIELD}`.
    SourceKeys { ssm, secretsmanager, key }
}

/// A clear value as the container gets it: `$${VAR}` and `$$VAR` are a literal `${VAR}` and
/// `$VAR`; an unescaped `${VAR}` or `$VAR` is the reference returned as the error (hoist does
/// not interpolate, and passing it on as written would surprise whoever wrote it). Any other
/// `$` (`$1`, `$$` before anything else, a lone `$`) is kept as it is.
fn literal_dollars(value: &str) -> Result<String, String> {
    let starts_name = |c: Option<char>| c.is_some_and(|c| c == '_' || c.is_ascii_alphabetic());
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let next = after.chars().next();
        if next == Some('$')
            && (after[1..].starts_with('{') || starts_name(after[1..].chars().next()))
        {
            // What follows (`{VAR}` or `VAR`) holds no `$` up front: copied as text next.
            out.push('$');
            rest = &after[1..];
            continue;
        }
        if next == Some('{') {
            let end = after.find('}').map_or(after.len(), |i| i + 1);
            return Err(format!("${}", &after[..end]));
        }
        if starts_name(next) {
            let end = after
                .find(|c: char| c != '_' && !c.is_ascii_alphanumeric())
                .unwrap_or(after.len());
            return Err(format!("${}", &after[..end]));
        }
        out.push('$');
        rest = after;
    }
    out.push_str(rest);
    Ok(out)
}

impl Decoder {
    pub(super) fn env(&mut self, node: &Node, path: &str) -> Option<Env> {
        let (f, k) = self.section::<EnvKeys>(node, path)?;
        let mut clear = BTreeMap::new();
        if let Some(n) = k.clear.node {
            for (name, kloc, value, vloc) in self.text_map(n, &k.clear.path) {
                let field = join(&k.clear.path, &name);
                if !is_env_name(&name) {
                    self.issue(&field, kloc, not_env_name(&name));
                } else if value.contains(['\n', '\r', '\0']) {
                    // Reported by `check_text` (control characters).
                } else if name.len() + 1 + value.len() > MAX_ENV_LINE {
                    self.issue(
                        &field,
                        vloc,
                        format!(
                            "the env line `{name}=…` is {} bytes; Docker reads env files a line \
                             at a time and refuses lines over {MAX_ENV_LINE} bytes",
                            name.len() + 1 + value.len()
                        ),
                    );
                } else {
                    match literal_dollars(&value) {
                        Ok(value) => {
                            clear.insert(name, value);
                        }
                        Err(reference) => self.issue_help(
                            &field,
                            vloc,
                            format!(
                                "`{reference}` looks like a variable, but hoist does not \
                                 interpolate: the container would get `{reference}` as written"
                            ),
                            format!(
                                "write the value itself; list the variable under env.secret to \
                                 pass it from hoist's environment; or write `${reference}` for \
                                 a literal `{reference}`"
                            ),
                        ),
                    }
                }
            }
        }
        let mut secret: Vec<String> = Vec::new();
        let mut sources = BTreeMap::new();
        if let Some(n) = k.secret.node {
            let items = if let Value::Seq(items) = &n.value {
                items.as_slice()
            } else {
                self.wrong_type(&k.secret.path, n, "a list of names (or NAME: {ssm: …})");
                &[]
            };
            for (i, item) in items.iter().enumerate() {
                let field = format!("{}[{i}]", k.secret.path);
                let (name, loc, source) = match &item.value {
                    Value::Str(name) => (name.clone(), item.loc, None),
                    Value::Map(entries) if entries.len() == 1 => {
                        let (knode, vnode) = &entries[0];
                        let Value::Str(name) = &knode.value else {
                            self.wrong_type(&field, knode, "a name");
                            continue;
                        };
                        let source = self.secret_source(vnode, &join(&field, name));
                        (name.clone(), knode.loc, Some(source))
                    }
                    _ => {
                        self.issue_help(
                            &field,
                            item.loc,
                            "expected a name, or one `NAME: {source}` entry",
                            "write `- NAME` for a value from hoist's environment, \
                             `- NAME: {ssm: /path}` or `- NAME: {secretsmanager: id, key: field}` \
                             for one the host reads itself"
                                .into(),
                        );
                        continue;
                    }
                };
                if !is_env_name(&name) {
                    self.issue(&field, loc, not_env_name(&name));
                } else if clear.contains_key(&name) {
                    self.issue(
                        &field,
                        loc,
                        format!("`{name}` is listed in both env.clear and env.secret"),
                    );
                } else if secret.contains(&name) {
                    self.issue(&field, loc, format!("`{name}` is listed twice"));
                } else {
                    match source {
                        None => {}
                        Some(Some(source)) => {
                            sources.insert(name.clone(), source);
                        }
                        Some(None) => continue,
                    }
                    secret.push(name);
                }
            }
        }
        self.finish(f);
        Some(Env {
            clear,
            secret,
            sources,
        })
    }

    /// `{ssm: NAME}` or `{secretsmanager: ID, key: FIELD}`: where a host reads a secret.
    fn secret_source(&mut self, node: &Node, field: &str) -> Option<SecretSource> {
        let (f, k) = self.section::<SourceKeys>(node, field)?;
        let ssm = k.ssm.node;
        let sm = k.secretsmanager.node;
        let key = k.key.node;
        let source = match (ssm, sm) {
            (Some(n), None) => {
                let name = self.string(n, &k.ssm.path)?;
                if is_parameter_ref(&name) {
                    if let Some(key_node) = key {
                        self.issue(
                            &k.key.path,
                            key_node.loc,
                            "`key` picks a field of a Secrets Manager secret; an SSM parameter \
                             has one value",
                        );
                    }
                    Some(SecretSource::Ssm(name))
                } else {
                    self.issue_help(
                        &k.ssm.path,
                        n.loc,
                        format!("`{name}` is not an SSM parameter name"),
                        "a name like /prod/db-url (letters, digits, _ . - /), an ARN, or \
                         name:version / name:label"
                            .into(),
                    );
                    None
                }
            }
            (None, Some(n)) => {
                let id = self.string(n, &k.secretsmanager.path)?;
                let key = match key {
                    Some(key_node) => {
                        let name = self.string(key_node, &k.key.path)?;
                        if name.is_empty() || name.contains(['|', '\'']) {
                            self.issue(
                                &k.key.path,
                                node.loc,
                                "a JSON field name, not empty, without `|` or `'`",
                            );
                            return None;
                        }
                        Some(name)
                    }
                    None => None,
                };
                if is_secret_id(&id) {
                    Some(SecretSource::SecretsManager { secret: id, key })
                } else {
                    self.issue_help(
                        &k.secretsmanager.path,
                        n.loc,
                        format!("`{id}` is not a Secrets Manager secret name or ARN"),
                        "1-512 of letters, digits and /_+=.@- (a name), or its ARN".into(),
                    );
                    None
                }
            }
            _ => {
                self.issue_help(
                    field,
                    node.loc,
                    "name exactly one source",
                    "`{ssm: /path/to/parameter}` or `{secretsmanager: name-or-arn, key: field}`"
                        .into(),
                );
                None
            }
        };
        self.finish(f);
        source
    }
}

#[cfg(test)]
mod tests {
    use super::literal_dollars;

    #[test]
    fn only_escaped_references_pass_and_lose_one_dollar() {
        assert_eq!(literal_dollars("$${VAR}").as_deref(), Ok("${VAR}"));
        assert_eq!(literal_dollars("a$$HOME/b").as_deref(), Ok("a$HOME/b"));
        assert_eq!(
            literal_dollars("cost $5, 100$ $$ $").as_deref(),
            Ok("cost $5, 100$ $$ $")
        );
        assert_eq!(
            literal_dollars("x${DB_HOST}:5432"),
            Err("${DB_HOST}".into())
        );
        assert_eq!(literal_dollars("$HOME/x"), Err("$HOME".into()));
        assert_eq!(literal_dollars("${unclosed"), Err("${unclosed".into()));
    }
}
