//! What `hoist init` reads from a Dockerfile: the final stage's `EXPOSE` and `HEALTHCHECK`.

use std::collections::BTreeMap;

/// What a Dockerfile's final stage says about the app.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dockerfile {
    /// The TCP ports `EXPOSE` declares, in order (`$VAR`s resolved from the stage's `ARG`
    /// and `ENV` defaults; UDP ports and what cannot be resolved left out).
    pub ports: Vec<u16>,
    /// The `HEALTHCHECK` instruction, if the stage has one.
    pub healthcheck: Option<Healthcheck>,
}

/// A Dockerfile's `HEALTHCHECK`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`.
    Disabled,
    /// A command that requests an HTTP URL (`curl -f http://localhost:8080/healthz`): its path.
    Http { path: String, command: String },
    /// A command that requests no URL hoist could probe (`pg_isready`).
    Command(String),
}

/// The instructions of a Dockerfile: comments and blank lines dropped, continuation lines
/// (`\` at the end) joined, each as (INSTRUCTION in upper case, its arguments).
fn instructions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
            continue;
        }
        current.push_str(trimmed);
        let joined = std::mem::take(&mut current);
        let joined = joined.trim();
        if joined.is_empty() {
            continue;
        }
        let (name, args) = joined
            .split_once(char::is_whitespace)
            .unwrap_or((joined, ""));
        out.push((name.to_ascii_uppercase(), args.trim().to_owned()));
    }
    out
}

/// Reads a Dockerfile's final stage (`EXPOSE` and `HEALTHCHECK` do not carry over a `FROM`).
pub fn read(text: &str) -> Dockerfile {
    let mut found = Dockerfile::default();
    let mut vars = BTreeMap::new();
    for (name, args) in instructions(text) {
        match name.as_str() {
            "FROM" => {
                found = Dockerfile::default();
                vars.clear();
            }
            "ARG" => {
                for word in args.split_whitespace() {
                    if let Some((k, v)) = word.split_once('=') {
                        vars.insert(k.to_owned(), unquote(v).to_owned());
                    }
                }
            }
            "ENV" => env(&args, &mut vars),
            "EXPOSE" => {
                for word in args.split_whitespace() {
                    let word = substitute(word, &vars);
                    let (port, proto) = word.split_once('/').unwrap_or((&word, "tcp"));
                    if proto.eq_ignore_ascii_case("tcp")
                        && let Ok(port) = port.parse::<u16>()
                        && port > 0
                    {
                        found.ports.push(port);
                    }
                }
            }
            "HEALTHCHECK" => found.healthcheck = Some(healthcheck(&args)),
            _ => {}
        }
    }
    found
}

/// `ENV K=V K2="V 2"` or the old `ENV K V`.
fn env(args: &str, vars: &mut BTreeMap<String, String>) {
    let first = args.split_whitespace().next().unwrap_or_default();
    if first.contains('=') {
        for word in args.split_whitespace() {
            if let Some((k, v)) = word.split_once('=') {
                vars.insert(k.to_owned(), unquote(v).to_owned());
            }
        }
    } else if let Some((k, v)) = args.split_once(char::is_whitespace) {
        vars.insert(k.to_owned(), unquote(v.trim()).to_owned());
    }
}

fn unquote(s: &str) -> &str {
    s.trim_matches(|c| c == '"' || c == '\'')
}

/// `$VAR`, `${VAR}` and `${VAR:-default}` in one word, from `vars`; unknown ones are left.
fn substitute(word: &str, vars: &BTreeMap<String, String>) -> String {
    let name_of = |s: &str| {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect::<String>()
    };
    let Some(at) = word.find('$') else {
        return word.to_owned();
    };
    let (before, rest) = word.split_at(at);
    let rest = &rest[1..];
    let (value, after) = if let Some(inner) = rest.strip_prefix('{') {
        let Some(end) = inner.find('}') else {
            return word.to_owned();
        };
        let body = &inner[..end];
        let (name, default) = match body.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (body, None),
        };
        let value = vars
            .get(name)
            .cloned()
            .or_else(|| default.map(str::to_owned));
        (value, &inner[end + 1..])
    } else {
        let name = name_of(rest);
        (vars.get(&name).cloned(), &rest[name.len()..])
    };
    match value {
        Some(v) => format!("{before}{v}{after}"),
        None => word.to_owned(),
    }
}

/// `HEALTHCHECK [--option=…]… CMD command`, or `HEALTHCHECK NONE`.
fn healthcheck(args: &str) -> Healthcheck {
    let mut rest = args.trim();
    while let Some(option) = rest.strip_prefix("--") {
        rest = option
            .split_once(char::is_whitespace)
            .map_or("", |(_, r)| r)
            .trim_start();
    }
    if rest.eq_ignore_ascii_case("NONE") {
        return Healthcheck::Disabled;
    }
    let command = match rest.split_once(char::is_whitespace) {
        Some((cmd, c)) if cmd.eq_ignore_ascii_case("CMD") => c.trim(),
        _ => rest,
    };
    let command = command.to_owned();
    match url_path(&command) {
        Some(path) => Healthcheck::Http { path, command },
        None => Healthcheck::Command(command),
    }
}

/// The path of the first `http://` or `https://` URL in `command` (`/` when it has none),
/// if it is one hoist can probe as written (no `$`, quotes or spaces in it).
fn url_path(command: &str) -> Option<String> {
    let start = command
        .find("http://")
        .map(|i| i + "http://".len())
        .or_else(|| command.find("https://").map(|i| i + "https://".len()))?;
    let url: String = command[start..]
        .chars()
        .take_while(|c| {
            !c.is_whitespace() && !matches!(c, '"' | '\'' | ',' | ']' | ';' | '|' | '&' | ')' | '`')
        })
        .collect();
    let path = match url.find('/') {
        Some(i) => &url[i..],
        None => "/",
    };
    let clean = path.chars().all(|c| {
        c.is_ascii_alphanumeric()
            || matches!(
                c,
                '/' | '-' | '_' | '.' | '~' | '%' | '?' | '=' | '+' | ':' | '@'
            )
    });
    clean.then(|| path.to_owned())
}
