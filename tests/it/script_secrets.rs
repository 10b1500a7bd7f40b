//! Secrets stay off disks in the host scripts: no here-string, here-document or process
//! substitution in `src/scripts/**` carries a secret value. Bash before 5.1 (Amazon Linux 2,
//! Ubuntu 20.04) writes here-strings and here-documents to a file in `$TMPDIR`, whole and
//! unshredded, and a process substitution is a named pipe there where `/dev/fd` is missing.
//!
//! The check is a small taint analysis of the real files, read as bash itself prints them
//! (`declare -f`: one command a line, comments gone), over all of them at once:
//!
//! - **sources**: a secret AWS read (`get-parameter(s) --with-decryption`,
//!   `get-secret-value`, `get-login-password`), the run's secret files read back (`cat` or
//!   `<` of `$ENV_FILE`, `$LOGIN_FILE`), and the functions whose standard output is a secret
//!   (found, not listed: a function that prints an AWS read or a tainted value, e.g.
//!   `host_secret`, `read_secrets`). A source piped into a command that consumes it
//!   (`docker login --password-stdin`, a hash, a `read` loop) is not one;
//! - **propagation**: a variable assigned (`=`, `+=`, `local`, `printf -v`) from a value that
//!   carries a secret, a `for` variable over one, the names a `read` or `mapfile` fills from a
//!   secret stdin (a pipe from a source, its here-string, or the redirection of the `while`
//!   loop it is the condition of), and the positional parameters of a function called with a
//!   secret argument. A variable a function declares `local` is tainted in that function only,
//!   any other one everywhere. `${#v}` (a length) and `${v%%=*}` (the name of a `NAME=value`
//!   line) carry no secret;
//! - **findings**: a here-string whose word carries a secret, a process substitution whose
//!   command does, an unquoted here-document whose body does.
//!
//! Not seen: values that go through a file the analysis does not know of, through `eval`, or
//! through the output of a function that prints a secret file (`cat "$ENV_FILE"` counts in a
//! substitution, not as a function's output: `release_spec` hashes it). The test checks the
//! analysis on the shapes it must find (among them the here-string of the `#key` secret that bash before
//! 5.1 wrote to /tmp, and the process substitution of the secret channel), on shapes it must
//! leave alone, and that it sees the real scripts' secrets flow (so that a rename cannot make
//! it pass by seeing nothing).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::process::Command;

use hoist::plan::script::Lexer;

/// One command line of a file as bash prints it, in the scope of its function.
#[derive(Debug)]
struct Line {
    /// The text, with a string that spans lines joined into it.
    raw: String,
    /// What the lexer says is code (strings' insides and comments blanked).
    code: String,
    scope: usize,
    /// The here-documents this line opens: (quoted delimiter, body).
    heredocs: Vec<(bool, String)>,
}

#[derive(Debug)]
struct Scope {
    /// The function's name, or `<file>` for a file's top level.
    name: String,
    locals: HashSet<String>,
}

#[derive(Default, Debug)]
struct Taint {
    global: HashSet<String>,
    local: HashMap<usize, HashSet<String>>,
    /// Functions whose standard output is a secret.
    printers: BTreeSet<String>,
    /// Functions called with a secret argument: their positional parameters are tainted.
    args: HashSet<String>,
}

struct Analysis {
    lines: Vec<Line>,
    scopes: Vec<Scope>,
    functions: HashSet<String>,
    taint: Taint,
}

const SECRET_FILES: &[&str] = &["ENV_FILE", "LOGIN_FILE"];

/// `text` as bash prints it: the file's text as the body of one function, `declare -f`.
fn normalized(text: &str) -> String {
    let program = format!("__file__() {{\n{text}\n}}\ndeclare -f __file__\n");
    let out = Command::new("bash")
        .args(["--noprofile", "--norc", "-c", &program])
        .env_clear()
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The end of the shell word that starts at byte `i` of `s`: quotes, `$(…)`, `${…}`,
/// `(…)` (an array's value) and escapes are part of it.
fn word_end(s: &[u8], mut i: usize) -> usize {
    let mut depth = 0usize;
    let mut quote: Option<u8> = None;
    while i < s.len() {
        let c = s[i];
        match quote {
            Some(b'\'') => {
                if c == b'\'' {
                    quote = None;
                }
            }
            Some(_) => match c {
                b'\\' => i += 1,
                b'"' => quote = None,
                b'$' if s.get(i + 1) == Some(&b'(') => {
                    // A command substitution inside double quotes: to its end.
                    let end = word_end_paren(s, i + 1);
                    i = end;
                    continue;
                }
                _ => {}
            },
            None => match c {
                b'\\' => i += 1,
                b'\'' | b'"' => quote = Some(c),
                b'$' if s.get(i + 1) == Some(&b'\'') => {
                    i += 2;
                    while i < s.len() && s[i] != b'\'' {
                        if s[i] == b'\\' {
                            i += 1;
                        }
                        i += 1;
                    }
                }
                b'(' | b'{' => depth += 1,
                b')' | b'}' if depth > 0 => depth -= 1,
                b' ' | b'\t' | b'\n' | b';' | b'|' | b'&' | b'<' | b'>' | b')' if depth == 0 => {
                    return i;
                }
                _ => {}
            },
        }
        i += 1;
    }
    i
}

/// The end (one past the `)`) of the parenthesis that opens at byte `open` of `s`.
fn word_end_paren(s: &[u8], open: usize) -> usize {
    let mut depth = 0usize;
    let mut i = open;
    let mut quote: Option<u8> = None;
    while i < s.len() {
        let c = s[i];
        match quote {
            Some(b'\'') => {
                if c == b'\'' {
                    quote = None;
                }
            }
            Some(_) => match c {
                b'\\' => i += 1,
                b'"' => quote = None,
                _ => {}
            },
            None => match c {
                b'\\' => i += 1,
                b'\'' | b'"' => quote = Some(c),
                b'(' => depth += 1,
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        return i + 1;
                    }
                }
                _ => {}
            },
        }
        i += 1;
    }
    s.len()
}

/// The words of `s` from byte `i` to the end of its simple command (`;`, `|`, `&`, `)`).
fn words_from(s: &str, mut i: usize) -> Vec<String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    loop {
        while i < b.len() && matches!(b[i], b' ' | b'\t') {
            i += 1;
        }
        if i >= b.len() || matches!(b[i], b';' | b'|' | b'&' | b')' | b'\n') {
            return out;
        }
        if matches!(b[i], b'<' | b'>') {
            // A redirection: its operator, then its word.
            let start = i;
            while i < b.len() && matches!(b[i], b'<' | b'>' | b'&') {
                i += 1;
            }
            if b.get(i) == Some(&b'(') {
                let end = word_end_paren(b, i);
                out.push(s[start..end].to_owned());
                i = end;
                continue;
            }
            while i < b.len() && b[i] == b' ' {
                i += 1;
            }
            let end = word_end(b, i);
            out.push(s[start..end].to_owned());
            i = end;
            continue;
        }
        let end = word_end(b, i).max(i + 1);
        out.push(s[i..end].to_owned());
        i = end;
    }
}

/// The variables `text` expands (`$v`, `${v…}`, `$1`, `$@`), leaving out those in single
/// quotes (unless `heredoc`: a here-document's body has no quoting), lengths (`${#v}`),
/// indirections (`${!v}`) and the name of a `NAME=value` line (`${v%%=*}`, `${v%=*}`).
fn expansions(text: &str, heredoc: bool) -> Vec<String> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut in_double = false;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'\'' if !heredoc && !in_double => {
                i += 1;
                while i < b.len() && b[i] != b'\'' {
                    i += 1;
                }
            }
            b'"' if !heredoc => in_double = !in_double,
            b'$' if b.get(i + 1) == Some(&b'{') => {
                let rest = &text[i + 2..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                let after = &rest[name.len()..];
                let special = rest.starts_with(['#', '!']) && !name.is_empty() || name.is_empty();
                let name_of_line = after.starts_with("%%=*}") || after.starts_with("%=*}");
                if !special && !name_of_line {
                    out.push(name);
                } else if name.is_empty() && rest.starts_with(['@', '*']) {
                    out.push(rest[..1].to_owned());
                }
                i += 1;
            }
            b'$' => {
                let rest = &text[i + 1..];
                let name: String =
                    if rest.starts_with(|c: char| c.is_ascii_digit() || c == '@' || c == '*') {
                        rest[..1].to_owned()
                    } else {
                        rest.chars()
                            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                            .collect()
                    };
                if !name.is_empty() {
                    out.push(name);
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

fn is_positional(name: &str) -> bool {
    name == "@" || name == "*" || name.bytes().all(|c| c.is_ascii_digit())
}

/// Whether `word` occurs in `text` as a command word's whole name.
fn calls(text: &str, word: &str) -> bool {
    text.match_indices(word)
        .any(|(at, _)| command_at(text, at, word.len()))
}

/// Whether the `len` bytes at byte `at` of `text` are a whole command word.
fn command_at(text: &str, at: usize, len: usize) -> bool {
    let mut before = text[..at].trim_end();
    // Assignments before a command (`IFS= read`) are part of it.
    while let Some(word) = before.rsplit([' ', '\t']).next().filter(|w| {
        w.split_once('=').is_some_and(|(n, _)| {
            !n.is_empty()
                && !n.starts_with(|c: char| c.is_ascii_digit())
                && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
    }) {
        before = before[..before.len() - word.len()].trim_end();
    }
    let after = text.as_bytes().get(at + len);
    let starts = before.is_empty()
        || before.ends_with([';', '&', '|', '(', '{', '!', '`', '\n'])
        || ["then", "do", "else", "if", "elif", "while", "until"]
            .iter()
            .any(|k| {
                before.ends_with(k)
                    && !before[..before.len() - k.len()]
                        .ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
            });
    starts && after.is_none_or(|c| matches!(c, b' ' | b';' | b')' | b'\n' | b'|' | b'&'))
}

/// Whether `text` reads a secret from AWS.
fn aws_secret_read(text: &str) -> bool {
    (text.contains("get-parameter") && text.contains("--with-decryption"))
        || text.contains("get-secret-value")
        || text.contains("get-login-password")
}

/// Whether `text` reads one of the run's secret files back.
fn reads_secret_file(text: &str) -> bool {
    SECRET_FILES.iter().any(|f| {
        ["cat \"$", "cat $", "<\"$", "< \"$", "<$", "< $"]
            .iter()
            .any(|op| text.contains(&format!("{op}{f}")) || text.contains(&format!("{op}{{{f}}}")))
    })
}

/// `text` with its `$(…)`, `<(…)` and `>(…)` replaced by a placeholder (the outer
/// command), and what they run.
fn substitutions(text: &str) -> (String, Vec<String>) {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut inner = Vec::new();
    let mut i = 0;
    let mut single = false;
    while i < b.len() {
        if b[i] == b'\'' {
            single = !single;
        } else if !single && matches!(b[i], b'$' | b'<' | b'>') && b.get(i + 1) == Some(&b'(') {
            let end = word_end_paren(b, i + 1);
            inner.push(
                String::from_utf8_lossy(&b[i + 2..end.saturating_sub(1).max(i + 2)]).into_owned(),
            );
            out.extend_from_slice(b"SUBST");
            i = end;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    (String::from_utf8_lossy(&out).into_owned(), inner)
}

/// Whether `stage` (a pipeline's last stage, or a command with its redirections) takes a
/// secret in and prints none of it.
fn consumes(stage: &str) -> bool {
    stage.contains("--password-stdin")
        || [
            "while ",
            "read ",
            "mapfile ",
            "readarray ",
            "sha256sum",
            "md5sum",
        ]
        .iter()
        .any(|k| stage.starts_with(k))
}

/// The top-level `|` stages of `text`.
fn stages(text: &str) -> Vec<String> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\'' | b'"' => {
                i = word_end(b, i);
                continue;
            }
            b'$' | b'<' | b'>' if b.get(i + 1) == Some(&b'(') => {
                i = word_end_paren(b, i + 1);
                continue;
            }
            b'|' if b.get(i + 1) == Some(&b'|') => i += 1,
            b'|' => {
                out.push(text[start..i].to_owned());
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    out.push(text[start..].to_owned());
    out
}

/// Whether `text`, a command, sends its standard output elsewhere (`>`, `>>`, `>&2`, `&>`).
fn stdout_redirected(text: &str) -> bool {
    let b = text.as_bytes();
    (0..b.len()).any(|i| {
        b[i] == b'>'
            && (i == 0 || !(b[i - 1].is_ascii_digit() && b[i - 1] != b'1') && b[i - 1] != b'>')
            && b.get(i + 1) != Some(&b'(')
    })
}

impl Analysis {
    fn new(files: &[(String, String)]) -> Self {
        let mut a = Analysis {
            lines: Vec::new(),
            scopes: Vec::new(),
            functions: HashSet::new(),
            taint: Taint::default(),
        };
        for (path, text) in files {
            a.read(path, &normalized(text));
        }
        a.find_locals();
        a.run();
        a
    }

    fn read(&mut self, path: &str, printed: &str) {
        self.scopes.push(Scope {
            name: format!("<{path}>"),
            locals: HashSet::new(),
        });
        let mut stack: Vec<(usize, usize)> = vec![(self.scopes.len() - 1, 0)];
        let mut lexer = Lexer::default();
        let mut pending: Vec<(String, bool, bool)> = Vec::new();
        let mut body: Option<(String, bool, bool, String)> = None;
        for line in printed.lines() {
            let info = lexer.line(line);
            if let Some((delim, dash, quoted, mut text)) = body.take() {
                let end = if dash {
                    line.trim_start_matches('\t')
                } else {
                    line
                };
                if end == delim {
                    let at = self.lines.len() - 1;
                    self.lines[at].heredocs.push((quoted, text));
                    if !pending.is_empty() {
                        let (d, dash, q) = pending.remove(0);
                        body = Some((d, dash, q, String::new()));
                    }
                } else {
                    text.push_str(line);
                    text.push('\n');
                    body = Some((delim, dash, quoted, text));
                }
                continue;
            }
            if info.at_code {
                let trimmed = line.trim_end();
                let indent = line.len() - line.trim_start().len();
                if let Some(name) = trimmed
                    .trim_start()
                    .strip_prefix("function ")
                    .and_then(|r| r.strip_suffix(" ()"))
                {
                    self.functions.insert(name.to_owned());
                    self.scopes.push(Scope {
                        name: name.to_owned(),
                        locals: HashSet::new(),
                    });
                    stack.push((self.scopes.len() - 1, indent));
                    continue;
                }
                if stack.len() > 1
                    && indent == stack.last().unwrap().1
                    && matches!(trimmed.trim_start(), "}" | "};")
                {
                    stack.pop();
                    continue;
                }
                self.lines.push(Line {
                    raw: line.to_owned(),
                    code: info.code.clone(),
                    scope: stack.last().unwrap().0,
                    heredocs: Vec::new(),
                });
            } else {
                // A string that spans lines: part of the line before.
                let last = self.lines.last_mut().unwrap();
                last.raw.push('\n');
                last.raw.push_str(line);
                last.code.push('\n');
                last.code.push_str(&info.code);
            }
            // Here-documents this line opens (in its code: not `<<<`, which the lexer's code
            // shows as `<< `).
            let code = info.code.as_bytes();
            let raw = line.as_bytes();
            let mut i = 0;
            while i + 1 < code.len() {
                if raw[i..].starts_with(b"<<<") {
                    i += 3;
                } else if code[i] == b'<' && code[i + 1] == b'<' {
                    let mut j = i + 2;
                    let dash = code.get(j) == Some(&b'-');
                    if dash {
                        j += 1;
                    }
                    while j < line.len() && line.as_bytes()[j] == b' ' {
                        j += 1;
                    }
                    let end = word_end(line.as_bytes(), j);
                    let word = &line[j..end];
                    let quoted = word.contains(['\'', '"', '\\']);
                    pending.push((word.replace(['\'', '"', '\\'], ""), dash, quoted));
                    i = end;
                } else {
                    i += 1;
                }
            }
            if body.is_none() && !pending.is_empty() {
                let (d, dash, q) = pending.remove(0);
                body = Some((d, dash, q, String::new()));
            }
        }
    }

    /// Each function's `local` (and `declare`) names.
    fn find_locals(&mut self) {
        for line in &self.lines {
            let t = line.raw.trim_start();
            for keyword in ["local ", "declare "] {
                if let Some(rest) = t.strip_prefix(keyword) {
                    let at = line.raw.len() - rest.len();
                    for w in words_from(&line.raw, at) {
                        if w.starts_with('-') {
                            continue;
                        }
                        let name = w.split(['=', '+']).next().unwrap().to_owned();
                        self.scopes[line.scope].locals.insert(name);
                    }
                }
            }
        }
    }

    fn tainted(&self, scope: usize, name: &str) -> bool {
        if is_positional(name) {
            return self.taint.args.contains(&self.scopes[scope].name);
        }
        if self.scopes[scope].locals.contains(name) {
            self.taint
                .local
                .get(&scope)
                .is_some_and(|s| s.contains(name))
        } else {
            self.taint.global.contains(name)
        }
    }

    fn set(&mut self, scope: usize, name: &str) -> bool {
        if is_positional(name) || name.is_empty() {
            return false;
        }
        if self.scopes[scope].locals.contains(name) {
            self.taint
                .local
                .entry(scope)
                .or_default()
                .insert(name.to_owned())
        } else {
            self.taint.global.insert(name.to_owned())
        }
    }

    /// Whether `word` (a shell word: what its expansions and substitutions give) holds a
    /// secret in `scope`.
    fn carries(&self, scope: usize, word: &str) -> bool {
        expansions(word, false)
            .iter()
            .any(|v| self.tainted(scope, v))
            || substitutions(word)
                .1
                .iter()
                .any(|c| self.command_carries(scope, c))
    }

    /// Whether what `command` prints holds a secret in `scope` (conservatively: it runs a
    /// source, or any of its words carries one).
    fn command_carries(&self, scope: usize, command: &str) -> bool {
        expansions(command, false)
            .iter()
            .any(|v| self.tainted(scope, v))
            || self.runs_source(command)
    }

    /// Whether `text` runs something whose output is a secret: a source not piped into a
    /// command that consumes it (`docker login --password-stdin`, a hash, a `read` loop).
    /// With `files`, reading a secret file back counts.
    fn runs_source_with(&self, text: &str, files: bool) -> bool {
        let (outer, inner) = substitutions(text);
        if inner.iter().any(|t| self.runs_source_with(t, files)) {
            return true;
        }
        let parts = stages(&outer);
        let consumed = parts.len() > 1 && consumes(parts.last().unwrap().trim_start());
        let parts = if consumed {
            &parts[parts.len() - 1..]
        } else {
            &parts[..]
        };
        parts.iter().filter(|p| !consumes(p.trim_start())).any(|p| {
            aws_secret_read(p)
                || (files && reads_secret_file(p))
                || self.taint.printers.iter().any(|f| calls(p, f))
        })
    }

    fn runs_source(&self, text: &str) -> bool {
        self.runs_source_with(text, true)
    }

    /// Whether the standard input of the `read`/`mapfile` at byte `at` of line `n` is a
    /// secret: a pipe from a source, its own redirection, or that of the `while` loop it is
    /// the condition of.
    fn secret_stdin(&self, n: usize, at: usize) -> bool {
        let line = &self.lines[n];
        let before = &line.raw[..at];
        let piped = stages(before);
        if piped.len() > 1
            && piped[..piped.len() - 1]
                .iter()
                .any(|s| self.command_carries(line.scope, s))
        {
            return true;
        }
        if self.redirect_carries(line.scope, &line.raw[at..]) {
            return true;
        }
        if before.trim_start().starts_with("while ") {
            let indent = line.raw.len() - line.raw.trim_start().len();
            let done = self.lines[n + 1..].iter().find(|l| {
                l.scope == line.scope
                    && l.raw.len() - l.raw.trim_start().len() == indent
                    && l.raw.trim_start().starts_with("done")
            });
            if let Some(done) = done {
                return self.redirect_carries(line.scope, &done.raw);
            }
        }
        false
    }

    /// Whether a here-string, process substitution or file redirection in `text` feeds a
    /// secret to standard input.
    fn redirect_carries(&self, scope: usize, text: &str) -> bool {
        let b = text.as_bytes();
        (0..b.len()).any(|i| {
            if b[i] != b'<' || (i > 0 && b[i - 1] == b'<') {
                return false;
            }
            let rest = &text[i..];
            if let Some(word) = rest.strip_prefix("<<<") {
                let word = word.trim_start();
                let end = word_end(word.as_bytes(), 0);
                return self.carries(scope, &word[..end]);
            }
            let word = rest[1..].trim_start();
            if word.starts_with("<(") {
                let end = word_end_paren(word.as_bytes(), 1);
                return self.carries(scope, &word[..end]);
            }
            let cut = (0..=rest.len().min(40))
                .rev()
                .find(|&c| rest.is_char_boundary(c))
                .unwrap_or(0);
            reads_secret_file(&rest[..cut])
        })
    }

    /// One pass over every line; whether anything new was tainted.
    fn pass(&mut self) -> bool {
        let mut changed = false;
        for n in 0..self.lines.len() {
            let (scope, raw, code) = {
                let l = &self.lines[n];
                (l.scope, l.raw.clone(), l.code.clone())
            };
            let fname = self.scopes[scope].name.clone();
            // Assignments: NAME=, NAME+=, at a command word (code, so not in a string).
            let cb = code.as_bytes();
            for (i, _) in code.match_indices('=') {
                let start = code[..i]
                    .trim_end_matches('+')
                    .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .map_or(0, |p| p + 1);
                let name_end = if i > 0 && cb[i - 1] == b'+' { i - 1 } else { i };
                let name = &code[start..name_end];
                let at_word = start == 0 || matches!(cb[start - 1], b' ' | b'\t' | b';' | b'(');
                if name.is_empty()
                    || !at_word
                    || name.starts_with(|c: char| c.is_ascii_digit())
                    || cb.get(i + 1) == Some(&b'=')
                    || (i > 0 && matches!(cb[i - 1], b'!' | b'=' | b'<' | b'>'))
                {
                    continue;
                }
                let end = word_end(raw.as_bytes(), i + 1);
                if self.carries(scope, &raw[i + 1..end]) {
                    changed |= self.set(scope, name);
                }
            }
            // read / mapfile: the names they fill.
            for cmd in ["read", "mapfile", "readarray"] {
                for (at, _) in code.match_indices(cmd) {
                    if !command_at(&code, at, cmd.len()) {
                        continue;
                    }
                    let words = words_from(&raw, at + cmd.len());
                    let mut names = Vec::new();
                    let mut skip = false;
                    for w in &words {
                        if skip {
                            skip = false;
                            continue;
                        }
                        if w.starts_with(['<', '>']) || w.starts_with("2>") {
                            continue;
                        }
                        if let Some(opt) = w.strip_prefix('-') {
                            skip = opt
                                .ends_with(['d', 'p', 't', 'u', 'n', 'N', 'i', 's', 'C', 'c'])
                                && cmd != "read"
                                || opt.ends_with(['d', 'p', 't', 'u', 'n', 'N', 'i']);
                            if opt.ends_with('a') {
                                skip = false;
                            }
                            continue;
                        }
                        names.push(w.clone());
                    }
                    if self.secret_stdin(n, at) {
                        for name in names {
                            changed |= self.set(scope, &name);
                        }
                    }
                }
            }
            // for NAME in WORDS
            if let Some(rest) = raw.trim_start().strip_prefix("for ")
                && let Some((name, words)) = rest.split_once(" in ")
                && self.carries(scope, words)
            {
                changed |= self.set(scope, name.trim());
            }
            // printf -v NAME FORMAT ARGS
            for (at, _) in code.match_indices("printf -v ") {
                let words = words_from(&raw, at + "printf -v ".len());
                if words.len() > 1 && words[1..].iter().any(|w| self.carries(scope, w)) {
                    changed |= self.set(scope, &words[0]);
                }
            }
            // Calls with a secret argument; functions whose output is a secret.
            let functions: Vec<String> = self.functions.iter().cloned().collect();
            for f in &functions {
                for (at, _) in code.match_indices(f.as_str()) {
                    if !command_at(&code, at, f.len()) || self.taint.args.contains(f) {
                        continue;
                    }
                    let args = words_from(&raw, at + f.len());
                    if args.iter().any(|w| self.carries(scope, w)) {
                        changed |= self.taint.args.insert(f.clone());
                    }
                }
            }
            if !fname.starts_with('<') && !self.taint.printers.contains(&fname) {
                let command = substitutions(&raw).0;
                let parts = stages(&command);
                let last = parts.last().unwrap().trim_start();
                let consumed = parts.len() > 1 && consumes(last);
                let prints = self.runs_source_with(&command, false)
                    || ["printf", "echo"].iter().any(|p| {
                        code.match_indices(p).any(|(at, _)| {
                            command_at(&code, at, p.len())
                                && !code[at..].starts_with("printf -v")
                                && words_from(&raw, at + p.len())
                                    .iter()
                                    .any(|w| self.carries(scope, w))
                        })
                    });
                if prints && !consumed && !stdout_redirected(last) {
                    changed |= self.taint.printers.insert(fname.clone());
                }
            }
        }
        changed
    }

    fn run(&mut self) {
        let mut rounds = 0;
        while self.pass() {
            rounds += 1;
            assert!(rounds < 50, "the taint analysis does not settle");
        }
    }

    /// Each here-string, process substitution and here-document that carries a secret.
    fn findings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for line in &self.lines {
            let scope = &self.scopes[line.scope].name;
            let b = line.code.as_bytes();
            let mut i = 0;
            while i < b.len() {
                if b[i] == b'<' && line.raw.as_bytes()[i..].starts_with(b"<<<") {
                    let word = line.raw[i + 3..].trim_start();
                    let end = word_end(word.as_bytes(), 0);
                    if self.carries(line.scope, &word[..end]) {
                        out.push(format!("{scope}: here-string: {}", line.raw.trim()));
                    }
                    i += 3;
                    continue;
                }
                if matches!(b[i], b'<' | b'>')
                    && b.get(i + 1) == Some(&b'(')
                    && (i == 0 || b[i - 1] != b'$')
                {
                    let end = word_end_paren(line.raw.as_bytes(), i + 1);
                    let inside = line.raw.get(i + 2..end.saturating_sub(1)).unwrap_or("");
                    if self.command_carries(line.scope, inside) {
                        out.push(format!(
                            "{scope}: process substitution: {}",
                            line.raw.trim()
                        ));
                    }
                }
                i += 1;
            }
            for (quoted, body) in &line.heredocs {
                if !quoted
                    && (expansions(body, true)
                        .iter()
                        .any(|v| self.tainted(line.scope, v))
                        || substitutions(body)
                            .1
                            .iter()
                            .any(|c| self.command_carries(line.scope, c)))
                {
                    out.push(format!("{scope}: here-document: {}", line.raw.trim()));
                }
            }
        }
        out
    }

    /// The tainted variables of function `name` (its locals) and the global ones.
    fn tainted_in(&self, name: &str) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = self.taint.global.iter().cloned().collect();
        for (i, s) in self.scopes.iter().enumerate() {
            if s.name == name {
                out.extend(self.taint.local.get(&i).into_iter().flatten().cloned());
            }
        }
        out
    }
}

/// Every shell file under src/scripts, by path.
fn script_files() -> Vec<(String, String)> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.extension().is_some_and(|e| e == "sh") {
                let name = path.strip_prefix(root).unwrap().display().to_string();
                out.push((name, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    walk(&root.join("src/scripts"), root, &mut out);
    out.sort();
    out
}

fn findings_in(snippet: &str) -> Vec<String> {
    Analysis::new(&[("snippet.sh".into(), snippet.into())]).findings()
}

/// The analysis finds what it must: each of these carries a secret through a here-string,
/// a here-document or a process substitution.
#[test]
fn the_secret_lint_finds_secrets_in_here_strings_heredocs_and_process_substitutions() {
    let flagged = [
        // The `#key` secret before it was piped (bash before 5.1 wrote it to /tmp).
        "host_secret() {\n    local kind=$1 id=$2 key=$3\n    case $kind in\n        \
         secretsmanager)\n            local json\n            json=$(aws secretsmanager \
         get-secret-value --secret-id \"$id\" --query SecretString --output text) || return 1\n            \
         json_field \"$key\" <<<\"$json\"\n            ;;\n    esac\n}\n",
        // The secret channel through a process substitution (the loop's redirection).
        "read_secrets() {\n    aws ssm get-parameter --with-decryption --name \"$P\" --query Parameter.Value --output text\n}\n\
         write_env_file() {\n    local line\n    while IFS= read -r line; do\n        \
         printf '%s\\n' \"$line\" >>\"$ENV_FILE\"\n    done < <(read_secrets)\n}\n",
        // A value copied, then in an unquoted here-document.
        "f() {\n    local v w\n    v=$(aws secretsmanager get-secret-value --secret-id x)\n    w=\"pre-$v\"\n    \
         cat <<EOF\n$w\nEOF\n}\n",
        // Through a global, into another function.
        "fetch() {\n    TOKEN=$(aws ecr get-login-password)\n}\nuse() {\n    grep -q x <<<\"$TOKEN\"\n}\n",
        // Lines read from a secret pipe.
        "reader() {\n    aws ssm get-parameter --with-decryption --name n | while IFS= read -r l; do\n        \
         tr a b <<<\"$l\"\n    done\n}\n",
        // A function that prints a secret, found as such.
        "pw() {\n    aws secretsmanager get-secret-value --secret-id x | jq -r .pw\n}\n\
         h() {\n    local p\n    p=$(pw)\n    sha256sum <<<\"$p\"\n}\n",
        // A secret argument: the callee's positional parameters.
        "k() {\n    python3 -c 'import sys' <<<\"$1\"\n}\n\
         g() {\n    local v\n    v=$(aws secretsmanager get-secret-value --secret-id x)\n    k \"$v\"\n}\n",
        // An array from a process substitution; a `for` over it; printf -v.
        "m() {\n    local a x y\n    mapfile -t a < <(cat \"$ENV_FILE\")\n    for x in \"${a[@]}\"; do\n        \
         printf -v y '%s' \"$x\"\n        wc -c <<<\"$y\"\n    done\n}\n",
        // The env file read back into a here-string.
        "n() {\n    base64 <<<\"$(cat \"$ENV_FILE\")\"\n}\n",
    ];
    for snippet in flagged {
        assert!(!findings_in(snippet).is_empty(), "not found in:\n{snippet}");
    }
    // … and leaves alone what carries none: a non-secret here-string, a quoted
    // here-document, a length, the name of a NAME=value line, a local of the same name as a
    // secret one in another function, a secret sent to a file, a pipe.
    let fine = [
        "a() {\n    IFS='|' read -r name kind id key <<<\"$entry\"\n    tail -n 3 <<<\"$out\"\n}\n",
        "b() {\n    local v\n    v=$(aws secretsmanager get-secret-value --secret-id x)\n    \
         cat <<'EOF'\n$v\nEOF\n    tr a b <<<\"${#v}\"\n}\n",
        "c() {\n    local line name\n    aws ssm get-parameter --with-decryption --name n | while read -r line; do\n        \
         name=${line%%=*}\n        grep -q x <<<\"$name\"\n    done\n}\n",
        "d() {\n    local value\n    value=$(aws secretsmanager get-secret-value --secret-id x)\n}\n\
         e() {\n    local value=plain\n    tr a b <<<\"$value\"\n}\n",
        "f() {\n    aws ecr get-login-password >\"$LOGIN_FILE\"\n}\ng() {\n    local x\n    x=$(f)\n    tr a b <<<\"$x\"\n}\n",
        "h() {\n    aws secretsmanager get-secret-value --secret-id x | python3 -c 'import json'\n    \
         docker logs --tail 20 c | sed 's/^/  | /' >&2\n}\n",
    ];
    for snippet in fine {
        assert_eq!(findings_in(snippet), Vec::<String>::new(), "{snippet}");
    }
}

/// No here-string, here-document or process substitution in src/scripts carries a secret;
/// and the analysis sees the scripts' secrets: the functions that print one, the variables
/// that hold one.
#[test]
fn no_here_string_heredoc_or_process_substitution_in_the_scripts_carries_a_secret() {
    let files = script_files();
    assert!(files.len() >= 15, "{files:?}");
    let a = Analysis::new(&files);
    let findings = a.findings();
    assert!(findings.is_empty(), "{}", findings.join("\n"));
    for printer in ["read_secrets", "host_secret"] {
        assert!(
            a.taint.printers.contains(printer),
            "{printer} prints a secret: {:?}",
            a.taint.printers
        );
    }
    let env = a.tainted_in("write_env_file");
    for var in ["line", "value", "SECRET_VALUES"] {
        assert!(env.contains(var), "{var} holds a secret: {env:?}");
    }
}

/// Runs `body` after the rendered library of the state module (with core), a fake `docker`
/// whose `logs` prints `log` first on PATH; returns (exit code, stdout, stderr).
fn run_failing_gate(body: &str, log: &str) -> (Option<i32>, String, String) {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let docker = dir.path().join("docker");
    std::fs::write(
        &docker,
        format!("#!/bin/sh\ncase $1 in logs) cat <<'LOG'\n{log}LOG\n;; esac\n"),
    )
    .unwrap();
    std::fs::set_permissions(&docker, std::fs::Permissions::from_mode(0o755)).unwrap();
    let program = format!(
        "#!/bin/bash\n{}\nHOIST_APP=web\nbegin_script on_exit\nTARGET_ID=c0ffee\nTARGET_NAME=web-r1\n{body}\nfail 'the gate failed'\n",
        hoist::plan::script::library(&[hoist::plan::script::Module::State])
    );
    let out = Command::new("bash")
        .args(["--noprofile", "--norc", "-c", &program])
        .env_clear()
        .env(
            "PATH",
            format!(
                "{}:{}",
                dir.path().display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// On a failed gate the container's last log lines are relayed with every secret value of
/// the run masked, as written, JSON-escaped (with and without `\/`) and percent-encoded,
/// longest first (a value holding another is masked whole); ordinary text stays. With a
/// value under 4 bytes (it cannot be masked) the lines are not relayed at all.
#[test]
fn a_failed_gate_relays_the_log_with_every_secret_value_masked() {
    let log = "dsn=pg://u:p@ss/w\"rd@db connection refused\n\
               {\"password\":\"p@ss\\/w\\\"rd\",\"other\":\"p@ss/w\\\"rd\"}\n\
               url=pg://u:p%40ss%2Fw%22rd@db\n\
               token tok-3f9a-and-more and tok-3f9a\n\
               an ordinary line\n";
    let (code, stdout, stderr) = run_failing_gate(
        "SECRET_VALUES=('p@ss/w\"rd' 'tok-3f9a' 'tok-3f9a-and-more')",
        log,
    );
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    let relayed: Vec<&str> = stderr
        .lines()
        .skip_while(|l| !l.starts_with("hoist: last log lines of web-r1"))
        .skip(1)
        .take_while(|l| l.starts_with("  | "))
        .collect();
    assert_eq!(
        relayed,
        [
            "  | dsn=pg://u:***@db connection refused",
            "  | {\"password\":\"***\",\"other\":\"***\"}",
            "  | url=pg://u:***@db",
            "  | token *** and ***",
            "  | an ordinary line",
        ],
        "{stderr}"
    );

    let (code, stdout, stderr) = run_failing_gate("SECRET_VALUES=('p@ss/w\"rd' 'ab')", log);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains(
            "hoist: last log lines of web-r1: not shown (a secret of this run is shorter than 4 bytes"
        ),
        "{stderr}"
    );
    assert!(
        !stderr.contains("p@ss") && !stderr.contains("  | "),
        "{stderr}"
    );
}
