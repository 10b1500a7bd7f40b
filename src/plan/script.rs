//! Remote scripts: a rendered header of quoted parameters, then the modules of the host
//! library (`src/scripts/lib/*.sh`) that the body needs, then a static body from
//! `src/scripts/`, as one self-contained file, each source without its comments and named by
//! its path and sha256. The rendered text is what the plan shows, hashes, and a transport runs.

use std::fmt::Write as _;

use serde::Serialize;

pub use crate::domain::script::{Param, Script, Source, quote, sha256_hex};

/// The static bodies, compiled in. Each is a real shell file in the repository, checked by
/// shellcheck; the header only assigns variables. Every rendered script holds the library
/// modules the body needs ([`Body::modules`]) between the header and its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Body {
    /// A deploy with the recreate strategy.
    Recreate,
    /// The host checks (`hoist doctor`, a deploy's check-hosts step).
    Doctor,
    /// Recreate, two-phase rollout, phase 1: the image onto every host (pull only).
    RecreateStage,
    /// A deploy with the blue-green strategy (stage, switch, verify, retire).
    BlueGreen,
    /// Blue-green, two-phase rollout, phase 1: stage the release in the idle color.
    BgStage,
    /// Blue-green, two-phase rollout, phase 2: switch to what this run staged.
    BgSwitch,
    /// Blue-green, two-phase rollout: remove what this run staged (staging failed).
    BgDiscard,
    /// Reports the app's releases on a host (read-only).
    Status,
    /// Makes a retained release the live one again.
    Rollback,
    /// Prints the log lines of the app's live (or a retained) release, secrets masked.
    Logs,
    /// Runs a command in the app's live container, its output's secrets masked.
    Exec,
    /// Takes the app off a host: nginx file, containers, images, state, history.
    Remove,
}

impl Body {
    pub fn file_name(self) -> &'static str {
        match self {
            Body::Recreate => "recreate.sh",
            Body::RecreateStage => "recreate-stage.sh",
            Body::BlueGreen => "blue-green.sh",
            Body::BgStage => "bg-stage.sh",
            Body::BgSwitch => "bg-switch.sh",
            Body::BgDiscard => "bg-discard.sh",
            Body::Status => "status.sh",
            Body::Rollback => "rollback.sh",
            Body::Logs => "logs.sh",
            Body::Exec => "exec.sh",
            Body::Remove => "remove.sh",
            Body::Doctor => "doctor.sh",
        }
    }

    pub fn text(self) -> &'static str {
        match self {
            Body::Recreate => include_str!("../scripts/recreate.sh"),
            Body::RecreateStage => include_str!("../scripts/recreate-stage.sh"),
            Body::BlueGreen => include_str!("../scripts/blue-green.sh"),
            Body::BgStage => include_str!("../scripts/bg-stage.sh"),
            Body::BgSwitch => include_str!("../scripts/bg-switch.sh"),
            Body::BgDiscard => include_str!("../scripts/bg-discard.sh"),
            Body::Status => include_str!("../scripts/status.sh"),
            Body::Rollback => include_str!("../scripts/rollback.sh"),
            Body::Logs => include_str!("../scripts/logs.sh"),
            Body::Exec => include_str!("../scripts/exec.sh"),
            Body::Remove => include_str!("../scripts/remove.sh"),
            Body::Doctor => include_str!("../scripts/doctor.sh"),
        }
    }
}

impl Body {
    /// Every body, in a fixed order.
    pub const ALL: [Body; 12] = [
        Body::Recreate,
        Body::RecreateStage,
        Body::BlueGreen,
        Body::BgStage,
        Body::BgSwitch,
        Body::BgDiscard,
        Body::Status,
        Body::Rollback,
        Body::Logs,
        Body::Exec,
        Body::Remove,
        Body::Doctor,
    ];

    /// The library modules rendered above this body, in rendering order: the transitive
    /// closure of the `# requires:` lines of the body and of its modules (a unit test holds
    /// this table to them, and to the functions each of them calls).
    pub fn modules(self) -> &'static [Module] {
        use Module::{Aws, Core, Engine, Image, Look, Nginx, Release, Secrets, State};
        match self {
            Body::Recreate => &[Core, Engine, Look, State, Aws, Secrets, Image, Release],
            Body::RecreateStage => &[Core, State, Aws, Image],
            Body::Status => &[Core, Engine, Look],
            Body::Logs | Body::Exec => &[Core, Look],
            Body::Remove => &[Core, Look, Nginx],
            Body::Doctor => &[Core, Aws],
            Body::BlueGreen | Body::BgStage | Body::BgSwitch | Body::BgDiscard | Body::Rollback => {
                &Module::ALL
            }
        }
    }
}

/// A module of the host library, `src/scripts/lib/<name>.sh`: variable defaults and functions,
/// grouped by concern. Its first comment line after the shebang, `# requires: a b`, names the
/// modules whose functions it calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Module {
    /// The run's result and exit, logging, parameter checks.
    Core,
    /// The Docker engine, a container's state, the health probe.
    Engine,
    /// Read-only looks at the host: releases, the lock, the live color.
    Look,
    /// The lock, the state file, the watchdog, the private tmpfs, the exit of a run.
    State,
    /// The host's own AWS CLI calls, retried while throttled.
    Aws,
    /// The env file and the secrets.
    Secrets,
    /// The image: registry login and pull.
    Image,
    /// A new release's container, recreate's switch and restore, pruning.
    Release,
    /// nginx: its file, its lock, reload, probes through it.
    Nginx,
    /// Two-phase rollouts: what a stage left that never switched.
    Twophase,
    /// Blue-green: stage, switch, verify, retire, and its restore.
    Bluegreen,
}

impl Module {
    /// Every module, in rendering order: each after the modules it requires.
    pub const ALL: [Module; 11] = [
        Module::Core,
        Module::Engine,
        Module::Look,
        Module::State,
        Module::Aws,
        Module::Secrets,
        Module::Image,
        Module::Release,
        Module::Nginx,
        Module::Twophase,
        Module::Bluegreen,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Module::Core => "core",
            Module::Engine => "engine",
            Module::Look => "look",
            Module::State => "state",
            Module::Aws => "aws",
            Module::Secrets => "secrets",
            Module::Image => "image",
            Module::Release => "release",
            Module::Nginx => "nginx",
            Module::Twophase => "twophase",
            Module::Bluegreen => "bluegreen",
        }
    }

    /// Its path in the repository, as the plan names it.
    pub fn path(self) -> String {
        format!("src/scripts/lib/{}.sh", self.name())
    }

    /// The commented source, compiled in.
    pub fn text(self) -> &'static str {
        match self {
            Module::Core => include_str!("../scripts/lib/core.sh"),
            Module::Engine => include_str!("../scripts/lib/engine.sh"),
            Module::Look => include_str!("../scripts/lib/look.sh"),
            Module::State => include_str!("../scripts/lib/state.sh"),
            Module::Aws => include_str!("../scripts/lib/aws.sh"),
            Module::Secrets => include_str!("../scripts/lib/secrets.sh"),
            Module::Image => include_str!("../scripts/lib/image.sh"),
            Module::Release => include_str!("../scripts/lib/release.sh"),
            Module::Nginx => include_str!("../scripts/lib/nginx.sh"),
            Module::Twophase => include_str!("../scripts/lib/twophase.sh"),
            Module::Bluegreen => include_str!("../scripts/lib/bluegreen.sh"),
        }
    }

    /// The names on its `# requires:` line.
    pub fn requires(self) -> Vec<&'static str> {
        requires_line(self.text())
    }
}

/// The names on the `# requires:` line of a module or body source (the first line after the
/// shebang).
pub fn requires_line(source: &'static str) -> Vec<&'static str> {
    source
        .lines()
        .find_map(|l| l.strip_prefix("# requires:"))
        .map(|rest| rest.split_whitespace().collect())
        .unwrap_or_default()
}

/// The modules `wanted` need, with everything they require, in rendering order.
pub fn closure(wanted: &[Module]) -> Vec<Module> {
    let mut have: std::collections::BTreeSet<Module> = wanted.iter().copied().collect();
    loop {
        let more: Vec<Module> = have
            .iter()
            .flat_map(|m| m.requires())
            .filter_map(|name| Module::ALL.into_iter().find(|m| m.name() == name))
            .filter(|m| !have.contains(m))
            .collect();
        if more.is_empty() {
            break;
        }
        have.extend(more);
    }
    Module::ALL
        .into_iter()
        .filter(|m| have.contains(m))
        .collect()
}

/// The rendered library of `modules` and everything they require (for tests and tools that
/// run library functions without a body): each module's provenance line and code.
pub fn library(modules: &[Module]) -> String {
    let mut text = String::new();
    for m in closure(modules) {
        push_source(&mut text, &m.path(), m.text());
    }
    text
}

/// Renders header + library modules + body into one self-contained script. `comment` lines
/// describe the script for a human reader. Each source goes in without its comment and blank
/// lines (see [`strip`]), after one provenance line naming its path and sha256.
pub fn render(body: Body, comment: &[String], params: &[(&str, Param)]) -> Script {
    let mut text = String::from("#!/bin/bash\n");
    for line in comment {
        let _ = writeln!(text, "# {}", line.replace('\n', " "));
    }
    let _ = writeln!(
        text,
        "# Parameters rendered by hoist; below them the library modules src/scripts/{} needs and the body, each without its comments (the commented source is at the path named, with that sha256).",
        body.file_name()
    );
    // Values are single-quoted literals on purpose; `$` in them must not expand. A
    // recreate stage's header is the deploy's less the env (src/strategy/mod.rs), and a
    // blue-green status's has blue-green's parameters (src/plan/maintenance.rs): they carry
    // parameters their bodies never read.
    if matches!(body, Body::RecreateStage | Body::Status) {
        text.push_str("# shellcheck disable=SC2016,SC2034\n");
    } else {
        text.push_str("# shellcheck disable=SC2016\n");
    }
    for (name, value) in params {
        debug_assert!(name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'));
        match value {
            Param::Str(s) => {
                let _ = writeln!(text, "{name}={}", quote(s));
            }
            Param::Array(items) => {
                let words: Vec<String> = items.iter().map(|s| quote(s)).collect();
                let _ = writeln!(text, "{name}=({})", words.join(" "));
            }
        }
    }
    text.push('\n');
    let mut modules = Vec::new();
    for m in body.modules() {
        modules.push(push_source(&mut text, &m.path(), m.text()));
    }
    modules.push(push_source(
        &mut text,
        &format!("src/scripts/{}", body.file_name()),
        body.text(),
    ));
    Script {
        body: body.file_name().to_owned(),
        sha256: sha256_hex(text.as_bytes()),
        text,
        modules,
    }
}

/// Appends source file `path` (its text `source`): its provenance line, then its code.
fn push_source(text: &mut String, path: &str, source: &str) -> Source {
    let sha256 = sha256_hex(source.as_bytes());
    let _ = writeln!(text, "# {path} sha256:{sha256}");
    text.push_str(&strip(source));
    Source {
        path: path.to_owned(),
        sha256,
    }
}

/// A shell source without its comment lines and blank lines: what the renderer keeps of a
/// module or body. Kept: shellcheck directives (`# shellcheck ...`), every line of a heredoc
/// or of a string that spans lines (data: the `# hoist-live:` line of the nginx file, the
/// python program in a single-quoted string), a line after one that ends in a backslash, and
/// the rest of each code line as written (its indentation and any comment after code
/// included). The shebang goes too: the script has its own. Lines are told apart by a small
/// lexer that follows quotes, `$(…)`, `${…}`, backquotes, comments and heredocs
/// (`<<WORD`, `<<'WORD'`, `<<"WORD"`, `<<-WORD`) across lines.
pub fn strip(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut lexer = Lexer::default();
    for line in source.split_inclusive('\n') {
        let content = line.strip_suffix('\n').unwrap_or(line);
        let info = lexer.line(content);
        if info.at_code && !info.continued_from_before {
            let t = content.trim_start();
            if t.is_empty() || (t.starts_with('#') && !is_directive(t)) {
                continue;
            }
        }
        out.push_str(line);
    }
    out
}

/// A shellcheck directive comment (`# shellcheck disable=…`, `# shellcheck source=…`).
fn is_directive(comment: &str) -> bool {
    let rest = comment.trim_start_matches('#').trim_start();
    rest.starts_with("shellcheck ")
}

/// Where the lexer is inside a line: code (at top level, or inside `$(…)`, `<(…)`, `>(…)`
/// with its own count of open parentheses), a single-quoted string, an ANSI-C `$'…'`
/// string, a double-quoted string, a `${…}` expansion (inside double quotes or not), or
/// backquotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Code { subst: bool, depth: u32 },
    Single,
    Ansi,
    Double,
    Brace { in_double: bool },
    Backtick,
}

/// A line-by-line lexer of bash, just enough to tell code from data: see [`strip`].
#[derive(Debug)]
pub struct Lexer {
    stack: Vec<Ctx>,
    /// Heredocs opened on the current line, waiting for their bodies: (delimiter, `<<-`).
    pending: std::collections::VecDeque<(String, bool)>,
    /// The heredoc whose body the next lines are.
    heredoc: Option<(String, bool)>,
    /// The previous line ended in a backslash, in code.
    continued: bool,
}

impl Default for Lexer {
    fn default() -> Self {
        Lexer {
            stack: vec![Ctx::Code {
                subst: false,
                depth: 0,
            }],
            pending: std::collections::VecDeque::default(),
            heredoc: None,
            continued: false,
        }
    }
}

/// What the lexer says of one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineInfo {
    /// The line starts in code (not in a string or a heredoc's body).
    pub at_code: bool,
    /// The line before ended in a backslash: this one continues its command.
    pub continued_from_before: bool,
    /// The line's code, with its comment, the insides of its quoted strings (but not of the
    /// `$(…)` in them) and any heredoc body replaced by spaces: where commands are.
    pub code: String,
}

impl Lexer {
    /// Reads one line (without its newline).
    pub fn line(&mut self, line: &str) -> LineInfo {
        if let Some((delim, tabs)) = &self.heredoc {
            let end = if *tabs {
                line.trim_start_matches('\t')
            } else {
                line
            };
            if end == delim {
                self.heredoc = self.pending.pop_front();
            }
            return LineInfo {
                at_code: false,
                continued_from_before: false,
                code: String::new(),
            };
        }
        let at_code = matches!(self.stack.last(), Some(Ctx::Code { .. }));
        let continued_from_before = std::mem::take(&mut self.continued);
        let b = line.as_bytes();
        let mut code = vec![b' '; b.len()];
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            let next = b.get(i + 1).copied();
            let top = *self.stack.last().expect("the lexer's stack is never empty");
            let in_code = matches!(top, Ctx::Code { .. } | Ctx::Brace { .. } | Ctx::Backtick);
            if in_code {
                code[i] = c;
            }
            match top {
                Ctx::Single => {
                    if c == b'\'' {
                        self.stack.pop();
                        code[i] = c;
                    }
                    i += 1;
                }
                Ctx::Ansi => {
                    if c == b'\\' {
                        i += 2;
                        continue;
                    }
                    if c == b'\'' {
                        self.stack.pop();
                        code[i] = c;
                    }
                    i += 1;
                }
                Ctx::Double => {
                    match (c, next) {
                        (b'\\', _) => i += 1,
                        (b'"', _) => {
                            self.stack.pop();
                            code[i] = c;
                        }
                        (b'$', Some(b'(')) => {
                            self.open_subst(&mut code, b, i);
                            i += 1;
                        }
                        (b'$', Some(b'{')) => {
                            self.stack.push(Ctx::Brace { in_double: true });
                            code[i] = c;
                            code[i + 1] = b'{';
                            i += 1;
                        }
                        (b'`', _) => {
                            self.stack.push(Ctx::Backtick);
                            code[i] = c;
                        }
                        _ => {}
                    }
                    i += 1;
                }
                Ctx::Brace { in_double } => {
                    match (c, next) {
                        (b'\\', _) => i += 1,
                        (b'}', _) => {
                            self.stack.pop();
                        }
                        (b'"', _) => self.stack.push(Ctx::Double),
                        (b'\'', _) if !in_double => self.stack.push(Ctx::Single),
                        (b'$', Some(b'(')) => {
                            self.open_subst(&mut code, b, i);
                            i += 1;
                        }
                        (b'$', Some(b'{')) => {
                            self.stack.push(Ctx::Brace { in_double });
                            code[i + 1] = b'{';
                            i += 1;
                        }
                        (b'`', _) => self.stack.push(Ctx::Backtick),
                        _ => {}
                    }
                    i += 1;
                }
                Ctx::Backtick => {
                    match c {
                        b'\\' => i += 1,
                        b'`' => {
                            self.stack.pop();
                        }
                        _ => {}
                    }
                    i += 1;
                }
                Ctx::Code { subst, depth } => {
                    match (c, next) {
                        (b'\\', None) => {
                            self.continued = true;
                        }
                        (b'\\', Some(_)) => {
                            code[i + 1] = b' ';
                            i += 1;
                        }
                        (b'\'', _) => self.stack.push(Ctx::Single),
                        (b'$', Some(b'\'')) => {
                            self.stack.push(Ctx::Ansi);
                            i += 1;
                        }
                        (b'"', _) => self.stack.push(Ctx::Double),
                        (b'$' | b'<' | b'>', Some(b'(')) => {
                            self.open_subst(&mut code, b, i);
                            i += 1;
                        }
                        (b'$', Some(b'{')) => {
                            self.stack.push(Ctx::Brace { in_double: false });
                            code[i + 1] = b'{';
                            i += 1;
                        }
                        (b'(', _) => self.set_depth(subst, depth + 1),
                        (b')', _) => {
                            if depth > 0 {
                                self.set_depth(subst, depth - 1);
                            } else if subst {
                                self.stack.pop();
                            }
                        }
                        (b'`', _) => self.stack.push(Ctx::Backtick),
                        (b'#', _) if i == 0 || b" \t;&|()".contains(&b[i - 1]) => {
                            // A comment: the rest of the line.
                            code[i] = b' ';
                            break;
                        }
                        (b'<', Some(b'<')) if b.get(i + 2) != Some(&b'<') => {
                            i = self.heredoc_start(b, i, &mut code);
                            continue;
                        }
                        _ => {}
                    }
                    i += 1;
                }
            }
        }
        if self.heredoc.is_none() {
            self.heredoc = self.pending.pop_front();
        }
        LineInfo {
            at_code,
            continued_from_before,
            code: String::from_utf8_lossy(&code).into_owned(),
        }
    }

    fn open_subst(&mut self, code: &mut [u8], b: &[u8], i: usize) {
        self.stack.push(Ctx::Code {
            subst: true,
            depth: 0,
        });
        code[i] = b[i];
        code[i + 1] = b[i + 1];
    }

    fn set_depth(&mut self, subst: bool, depth: u32) {
        if let Some(top) = self.stack.last_mut() {
            *top = Ctx::Code { subst, depth };
        }
    }

    /// At `<<` (not `<<<`) in code: records the heredoc's delimiter when a word follows
    /// (`<<WORD`, `<<-WORD`, `<<'WORD'`, `<<"WORD"`, `<< WORD`); returns where to go on.
    fn heredoc_start(&mut self, b: &[u8], at: usize, code: &mut [u8]) -> usize {
        let mut j = at + 2;
        let tabs = b.get(j) == Some(&b'-');
        if tabs {
            j += 1;
        }
        while matches!(b.get(j), Some(b' ' | b'\t')) {
            j += 1;
        }
        let quote = match b.get(j) {
            Some(&q @ (b'\'' | b'"')) => {
                j += 1;
                Some(q)
            }
            Some(b'\\') => {
                j += 1;
                None
            }
            _ => None,
        };
        let start = j;
        while b
            .get(j)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
        {
            j += 1;
        }
        let word = &b[start..j];
        if word.is_empty() || word[0].is_ascii_digit() {
            // Not a heredoc (an arithmetic shift, say): go on after the `<<`.
            return at + 2;
        }
        if let Some(q) = quote
            && b.get(j) == Some(&q)
        {
            j += 1;
        }
        code[at..j].copy_from_slice(&b[at..j]);
        self.pending
            .push_back((String::from_utf8_lossy(word).into_owned(), tabs));
        j
    }
}

#[cfg(test)]
mod tests;
