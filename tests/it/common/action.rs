//! A runner for the composite steps of the repository's `action.yml`, doing what GitHub's
//! runner does with them (`act` is not available here): it evaluates each step's `if:`,
//! substitutes `${{ }}` in `env:`, `working-directory:` and `run:` (a `with:` belongs to a
//! `uses:` step, which never runs here), runs `run:`
//! with `bash --noprofile --norc -eo pipefail {0}` in the step's working directory with the
//! runner's files (`GITHUB_OUTPUT`, `GITHUB_ENV`, `GITHUB_PATH`, `GITHUB_STEP_SUMMARY`) and
//! variables (`GITHUB_ACTION_PATH`, `RUNNER_TEMP`, `RUNNER_TOOL_CACHE`, `GITHUB_ACTIONS=true`,
//! ...), reads each step's outputs (`k=v` and heredoc forms) into `steps.<id>.outputs`,
//! applies `GITHUB_PATH` and `GITHUB_ENV` to the steps after it, stops at the first failing
//! step, and evaluates the action's `outputs`.
//!
//! It supports exactly what action.yml uses, and fails the test loudly on anything else:
//! expressions are `inputs.x`, `steps.id.outputs.y`, `runner.*`, `github.*`, `env.X`,
//! string literals, `==`, `!=`, `&&`, `||`, `!` and parentheses (GitHub's rules: string
//! comparison ignores case, `&&` and `||` give an operand, null equals ''); steps are `run:`
//! steps with `shell: bash`, and `uses:` steps whose `if:` is false (skipped, as the runner
//! would): a `uses:` step that would run fails the test, since this runner cannot run it.
//! Workflow commands on a step's stdout: `::add-mask::` values are masked in [`Outcome::log`]
//! from then on, as the runner masks its log.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// One run of the action, set up fluently:
///
/// ```ignore
/// let outcome = Action::repository()
///     .input("path", env!("CARGO_BIN_EXE_hoist"))
///     .input("command", "plan")
///     .workspace(&app_root)
///     .run();
/// assert!(outcome.ok, "{}", outcome.log);
/// ```
pub(crate) struct Action {
    /// Where action.yml is: `GITHUB_ACTION_PATH`.
    dir: PathBuf,
    inputs: BTreeMap<String, String>,
    github: BTreeMap<String, String>,
    env: BTreeMap<String, String>,
    workspace: Option<PathBuf>,
    runner_dir: Option<PathBuf>,
    timeout: Duration,
}

/// What a run did.
pub(crate) struct Outcome {
    /// Every step that ran succeeded.
    pub ok: bool,
    /// The id (or name) of the step that failed.
    pub failed_step: Option<String>,
    /// The action's outputs, evaluated.
    pub outputs: BTreeMap<String, String>,
    /// Each step: its id or name, `success`, `failure` or `skipped`, its outputs.
    pub steps: Vec<StepRecord>,
    /// Every step's stdout, unmasked, in order.
    pub stdout: String,
    /// Every step's stderr, unmasked, in order.
    pub stderr: String,
    /// Every step's stdout and stderr with the masked values replaced by `***`, as the
    /// runner's log would show them.
    pub log: String,
    /// The values `::add-mask::` registered, in order.
    pub masks: Vec<String>,
    /// The directories steps added to `GITHUB_PATH`, in order.
    pub path: Vec<String>,
    /// The job summary: what the steps appended to `GITHUB_STEP_SUMMARY`.
    pub summary: String,
    /// The raw text of each step's `GITHUB_OUTPUT` file, in order.
    pub output_files: Vec<String>,
    /// `RUNNER_TEMP` and `RUNNER_TOOL_CACHE` live here (kept until the outcome is dropped,
    /// unless the test chose the directory).
    pub runner_dir: PathBuf,
    _scratch: Option<tempfile::TempDir>,
}

pub(crate) struct StepRecord {
    pub id: String,
    pub outcome: &'static str,
    pub outputs: BTreeMap<String, String>,
    /// What the step printed, unmasked (empty for a skipped step).
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// The step recorded under `id`.
    #[track_caller]
    pub(crate) fn step(&self, id: &str) -> &StepRecord {
        self.steps
            .iter()
            .find(|s| s.id == id)
            .unwrap_or_else(|| panic!("no step {id}"))
    }
}

impl Action {
    /// The repository's own action.yml.
    pub(crate) fn repository() -> Action {
        Action::at(Path::new(env!("CARGO_MANIFEST_DIR")))
    }

    pub(crate) fn at(dir: &Path) -> Action {
        let github = [
            ("server_url", "https://github.com"),
            ("action_repository", ""),
            ("action_ref", ""),
            ("repository", "example/app"),
            ("sha", "0000000000000000000000000000000000000000"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        Action {
            dir: dir.to_path_buf(),
            inputs: BTreeMap::new(),
            github,
            env: BTreeMap::new(),
            workspace: None,
            runner_dir: None,
            timeout: Duration::from_secs(600),
        }
    }

    /// An input (`with:` of the workflow step that uses the action).
    pub(crate) fn input(mut self, name: &str, value: impl AsRef<str>) -> Self {
        self.inputs
            .insert(name.to_owned(), value.as_ref().to_owned());
        self
    }

    /// A property of the `github` context (`server_url`, `action_repository`, ...).
    pub(crate) fn github(mut self, name: &str, value: impl AsRef<str>) -> Self {
        self.github
            .insert(name.to_owned(), value.as_ref().to_owned());
        self
    }

    /// A variable of the job's environment (the workflow's `env:`), which is also the `env`
    /// context.
    pub(crate) fn env(mut self, name: &str, value: impl AsRef<str>) -> Self {
        self.env.insert(name.to_owned(), value.as_ref().to_owned());
        self
    }

    /// `GITHUB_WORKSPACE`, where steps run by default (a scratch directory if not set).
    pub(crate) fn workspace(mut self, dir: &Path) -> Self {
        self.workspace = Some(dir.to_path_buf());
        self
    }

    /// Where `RUNNER_TEMP` (`DIR/temp`) and `RUNNER_TOOL_CACHE` (`DIR/tool-cache`) are: a
    /// test that runs the action twice on one "runner" passes the same directory.
    pub(crate) fn runner_dir(mut self, dir: &Path) -> Self {
        self.runner_dir = Some(dir.to_path_buf());
        self
    }

    /// The longest a step may run before the test fails.
    pub(crate) fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = limit;
        self
    }

    /// Runs every step as the runner would, and says what happened.
    pub(crate) fn run(self) -> Outcome {
        let text = std::fs::read_to_string(self.dir.join("action.yml")).expect("action.yml");
        let action: Value = serde_saphyr::from_str(&text).expect("action.yml is YAML");
        let runs = &action["runs"];
        assert_eq!(
            runs["using"], "composite",
            "this runner runs composite actions only"
        );
        let (scratch, runner_dir) = if let Some(d) = &self.runner_dir {
            (None, d.clone())
        } else {
            let t = tempfile::tempdir().unwrap();
            let d = t.path().to_path_buf();
            (Some(t), d)
        };
        let temp = runner_dir.join("temp");
        let tool_cache = runner_dir.join("tool-cache");
        let files = runner_dir.join("file-commands");
        let workspace = self
            .workspace
            .clone()
            .unwrap_or_else(|| runner_dir.join("workspace"));
        for d in [&temp, &tool_cache, &files, &workspace] {
            std::fs::create_dir_all(d).unwrap();
        }

        let mut ctx = Context {
            inputs: declared_inputs(&action, &self.inputs),
            github: self.github.clone(),
            runner: [
                ("os", "Linux".to_owned()),
                ("arch", runner_arch().to_owned()),
                ("name", "hoist-test-runner".to_owned()),
                ("temp", temp.display().to_string()),
                ("tool_cache", tool_cache.display().to_string()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
            env: self.env.clone(),
            steps: BTreeMap::new(),
        };
        ctx.github
            .insert("action_path".into(), self.dir.display().to_string());
        ctx.github
            .insert("workspace".into(), workspace.display().to_string());

        let mut out = Outcome {
            ok: true,
            failed_step: None,
            outputs: BTreeMap::new(),
            steps: Vec::new(),
            stdout: String::new(),
            stderr: String::new(),
            log: String::new(),
            masks: Vec::new(),
            path: Vec::new(),
            summary: String::new(),
            output_files: Vec::new(),
            runner_dir: runner_dir.clone(),
            _scratch: scratch,
        };
        let steps = runs["steps"].as_array().expect("runs.steps is a list");
        for (n, step) in steps.iter().enumerate() {
            let step = step.as_object().expect("a step is a mapping");
            for key in step.keys() {
                assert!(
                    matches!(
                        key.as_str(),
                        "name"
                            | "id"
                            | "if"
                            | "run"
                            | "shell"
                            | "env"
                            | "working-directory"
                            | "uses"
                            | "with"
                    ),
                    "step {n}: this runner does not support `{key}`"
                );
            }
            let id = step
                .get("id")
                .or_else(|| step.get("name"))
                .and_then(Value::as_str)
                .map_or_else(|| format!("step-{n}"), str::to_owned);
            if let Some(cond) = step.get("if") {
                let cond = cond
                    .as_str()
                    .unwrap_or_else(|| panic!("step {id}: `if:` must be a string"));
                if !truthy(&ctx.eval_condition(cond)) {
                    out.steps.push(StepRecord {
                        id,
                        outcome: "skipped",
                        outputs: BTreeMap::new(),
                        stdout: String::new(),
                        stderr: String::new(),
                    });
                    continue;
                }
            }
            if let Some(uses) = step.get("uses") {
                panic!(
                    "step {id} would run `uses: {}`, which this runner cannot run; \
                     choose inputs that skip it (its `if:` is false)",
                    uses.as_str().unwrap_or_default()
                );
            }
            let shell = step.get("shell").and_then(Value::as_str);
            assert_eq!(
                shell,
                Some("bash"),
                "step {id}: only `shell: bash` is supported"
            );
            let script = ctx.substitute(
                step.get("run")
                    .and_then(Value::as_str)
                    .unwrap_or_else(|| panic!("step {id}: no `run:`")),
            );
            let mut step_env = BTreeMap::new();
            if let Some(env) = step.get("env") {
                for (k, v) in env.as_object().expect("env: is a mapping") {
                    step_env.insert(k.clone(), ctx.substitute(&scalar(v)));
                }
            }
            let dir = match step.get("working-directory") {
                Some(wd) => {
                    let wd = ctx.substitute(&scalar(wd));
                    if Path::new(&wd).is_absolute() {
                        PathBuf::from(wd)
                    } else {
                        workspace.join(wd)
                    }
                }
                None => workspace.clone(),
            };

            let file = |what: &str| files.join(format!("{what}_{n}"));
            let (output, set_env, add_path, summary) = (
                file("set_output"),
                file("set_env"),
                file("add_path"),
                file("step_summary"),
            );
            for f in [&output, &set_env, &add_path, &summary] {
                std::fs::write(f, "").unwrap();
            }
            let script_file = temp.join(format!("step_{n}.sh"));
            std::fs::write(&script_file, &script).unwrap();

            let mut cmd = Command::new("bash");
            cmd.args(["--noprofile", "--norc", "-eo", "pipefail"])
                .arg(&script_file)
                .current_dir(&dir)
                .stdin(Stdio::null());
            // The runner's environment: this process's, less anything of a runner this test
            // may itself run under, plus the job's env, what earlier steps put in GITHUB_ENV,
            // the step's own env, and the runner's variables.
            for (k, _) in std::env::vars() {
                if k.starts_with("GITHUB_") || k.starts_with("RUNNER_") || k.starts_with("ACTIONS_")
                {
                    cmd.env_remove(k);
                }
            }
            cmd.envs(&ctx.env).envs(&step_env);
            let base_path = ctx
                .env
                .get("PATH")
                .cloned()
                .or_else(|| std::env::var("PATH").ok())
                .unwrap_or_default();
            let path: Vec<&str> = out
                .path
                .iter()
                .rev()
                .map(String::as_str)
                .chain([base_path.as_str()])
                .collect();
            cmd.env("PATH", path.join(":"))
                .env("CI", "true")
                .env("GITHUB_ACTIONS", "true")
                .env("GITHUB_ACTION_PATH", &self.dir)
                .env("GITHUB_WORKSPACE", &workspace)
                .env("GITHUB_SERVER_URL", &ctx.github["server_url"])
                .env("GITHUB_REPOSITORY", &ctx.github["repository"])
                .env("GITHUB_OUTPUT", &output)
                .env("GITHUB_ENV", &set_env)
                .env("GITHUB_PATH", &add_path)
                .env("GITHUB_STEP_SUMMARY", &summary)
                .env("RUNNER_OS", &ctx.runner["os"])
                .env("RUNNER_ARCH", &ctx.runner["arch"])
                .env("RUNNER_TEMP", &temp)
                .env("RUNNER_TOOL_CACHE", &tool_cache);
            let (code, stdout, stderr) = run_with_timeout(cmd, &temp, n, self.timeout, &id);

            for line in stdout.lines() {
                if let Some(value) = line.strip_prefix("::add-mask::") {
                    let value = unescape_command_data(value);
                    if !value.is_empty() {
                        out.masks.push(value);
                    }
                }
            }
            out.stdout.push_str(&stdout);
            out.stderr.push_str(&stderr);
            out.log.push_str(&mask(&out.masks, &stdout));
            out.log.push_str(&mask(&out.masks, &stderr));

            let written = std::fs::read_to_string(&output).unwrap();
            let outputs = parse_file_command(&written, &id, "GITHUB_OUTPUT");
            out.output_files.push(written);
            ctx.env.extend(parse_file_command(
                &std::fs::read_to_string(&set_env).unwrap(),
                &id,
                "GITHUB_ENV",
            ));
            out.path.extend(
                std::fs::read_to_string(&add_path)
                    .unwrap()
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(str::to_owned),
            );
            out.summary
                .push_str(&std::fs::read_to_string(&summary).unwrap());
            ctx.steps.insert(id.clone(), outputs.clone());
            let ok = code == 0;
            out.steps.push(StepRecord {
                id: id.clone(),
                outcome: if ok { "success" } else { "failure" },
                outputs,
                stdout,
                stderr,
            });
            if !ok {
                out.ok = false;
                out.failed_step = Some(id);
                break;
            }
        }

        if let Some(outputs) = action["outputs"].as_object() {
            for (name, def) in outputs {
                let value = def["value"]
                    .as_str()
                    .unwrap_or_else(|| panic!("output {name} has no value"));
                out.outputs.insert(name.clone(), ctx.substitute(value));
            }
        }
        out
    }
}

/// The inputs as the action sees them: each declared input, given or its default; an
/// input the action does not declare fails the test (GitHub warns and drops it).
fn declared_inputs(action: &Value, given: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let declared = action["inputs"].as_object().cloned().unwrap_or_default();
    for name in given.keys() {
        assert!(
            declared.contains_key(name),
            "action.yml declares no input `{name}`"
        );
    }
    declared
        .iter()
        .map(|(name, def)| {
            let value = given
                .get(name)
                .cloned()
                .unwrap_or_else(|| def.get("default").map(scalar).unwrap_or_default());
            (name.clone(), value)
        })
        .collect()
}

/// A YAML scalar as the runner reads it: a string.
fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Bool(_) | Value::Number(_) => v.to_string(),
        other => panic!("expected a scalar, got {other}"),
    }
}

fn runner_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "X64",
        "aarch64" => "ARM64",
        "x86" => "X86",
        "arm" => "ARM",
        other => panic!("no runner.arch for {other}"),
    }
}

/// Runs a step's process to its end (failing the test after `limit`), its output in files.
fn run_with_timeout(
    mut cmd: Command,
    temp: &Path,
    n: usize,
    limit: Duration,
    id: &str,
) -> (i32, String, String) {
    let out_file = temp.join(format!("step_{n}.stdout"));
    let err_file = temp.join(format!("step_{n}.stderr"));
    cmd.stdout(std::fs::File::create(&out_file).unwrap())
        .stderr(std::fs::File::create(&err_file).unwrap());
    let mut child = cmd.spawn().expect("bash starts");
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("step {id} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |f: &Path| String::from_utf8_lossy(&std::fs::read(f).unwrap()).into_owned();
    let (stdout, stderr) = (read(&out_file), read(&err_file));
    eprintln!("--- step {id} (exit {:?})\n{stdout}{stderr}", status.code());
    (status.code().unwrap_or(-1), stdout, stderr)
}

/// `name=value` lines and `name<<DELIMITER` … `DELIMITER` blocks, as the runner reads
/// `GITHUB_OUTPUT` and `GITHUB_ENV`.
pub(crate) fn parse_file_command(text: &str, step: &str, what: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    while let Some(line) = lines.next() {
        if line.is_empty() {
            continue;
        }
        let heredoc = line.find("<<");
        let equals = line.find('=');
        match (heredoc, equals) {
            (Some(h), e) if e.is_none_or(|e| h < e) => {
                let (name, delimiter) = (&line[..h], &line[h + 2..]);
                assert!(
                    !name.is_empty() && !delimiter.is_empty(),
                    "{what} of step {step}: bad line {line:?}"
                );
                let mut value = Vec::new();
                loop {
                    let next = lines.next().unwrap_or_else(|| {
                        panic!("{what} of step {step}: no {delimiter:?} closes {name}")
                    });
                    if next == delimiter {
                        break;
                    }
                    value.push(next);
                }
                out.insert(name.to_owned(), value.join("\n"));
            }
            (_, Some(e)) => {
                let name = &line[..e];
                assert!(!name.is_empty(), "{what} of step {step}: bad line {line:?}");
                out.insert(name.to_owned(), line[e + 1..].to_owned());
            }
            _ => panic!("{what} of step {step}: bad line {line:?}"),
        }
    }
    out
}

/// The data of a workflow command, unescaped as the runner does.
pub(crate) fn unescape_command_data(s: &str) -> String {
    s.replace("%0D", "\r")
        .replace("%0A", "\n")
        .replace("%25", "%")
}

fn mask(masks: &[String], text: &str) -> String {
    masks
        .iter()
        .fold(text.to_owned(), |t, m| t.replace(m.as_str(), "***"))
}

// ------------------------------------------------------------------------ expressions

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val {
    Null,
    Bool(bool),
    Str(String),
}

pub(crate) fn truthy(v: &Val) -> bool {
    match v {
        Val::Null => false,
        Val::Bool(b) => *b,
        Val::Str(s) => !s.is_empty(),
    }
}

fn to_text(v: &Val) -> String {
    match v {
        Val::Null => String::new(),
        Val::Bool(b) => b.to_string(),
        Val::Str(s) => s.clone(),
    }
}

fn to_number(v: &Val) -> f64 {
    match v {
        Val::Null => 0.0,
        Val::Bool(b) => f64::from(u8::from(*b)),
        Val::Str(s) if s.trim().is_empty() => 0.0,
        Val::Str(s) => s.trim().parse().unwrap_or(f64::NAN),
    }
}

/// `==` as GitHub compares: strings ignoring case; values of different types as numbers.
#[allow(clippy::float_cmp)] // GitHub's coercion compares the numbers exactly
fn equal(a: &Val, b: &Val) -> bool {
    match (a, b) {
        (Val::Str(x), Val::Str(y)) => x.to_lowercase() == y.to_lowercase(),
        (Val::Bool(x), Val::Bool(y)) => x == y,
        (Val::Null, Val::Null) => true,
        _ => to_number(a) == to_number(b),
    }
}

/// The contexts an expression reads.
pub(crate) struct Context {
    pub inputs: BTreeMap<String, String>,
    pub github: BTreeMap<String, String>,
    pub runner: BTreeMap<String, String>,
    pub env: BTreeMap<String, String>,
    pub steps: BTreeMap<String, BTreeMap<String, String>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Str(String),
    Path(Vec<String>),
    Eq,
    Ne,
    And,
    Or,
    Not,
    Open,
    Close,
}

fn tokenize(expr: &str) -> Vec<Token> {
    let chars: Vec<char> = expr.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '\'' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => panic!("expression `{expr}`: unterminated string"),
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            s.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(&ch) => {
                            s.push(ch);
                            i += 1;
                        }
                    }
                }
                tokens.push(Token::Str(s));
            }
            '=' if next == Some('=') => {
                tokens.push(Token::Eq);
                i += 2;
            }
            '!' if next == Some('=') => {
                tokens.push(Token::Ne);
                i += 2;
            }
            '!' => {
                tokens.push(Token::Not);
                i += 1;
            }
            '&' if next == Some('&') => {
                tokens.push(Token::And);
                i += 2;
            }
            '|' if next == Some('|') => {
                tokens.push(Token::Or);
                i += 2;
            }
            '(' => {
                tokens.push(Token::Open);
                i += 1;
            }
            ')' => {
                tokens.push(Token::Close);
                i += 1;
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut segments = Vec::new();
                loop {
                    let start = i;
                    while chars
                        .get(i)
                        .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
                    {
                        i += 1;
                    }
                    if start == i {
                        unsupported(expr, "an empty property name");
                    }
                    segments.push(chars[start..i].iter().collect::<String>());
                    if chars.get(i) == Some(&'.') {
                        i += 1;
                    } else {
                        break;
                    }
                }
                if chars.get(i) == Some(&'(') {
                    unsupported(expr, &format!("the function {}()", segments.join(".")));
                }
                if chars.get(i) == Some(&'[') {
                    unsupported(expr, "an index `[...]`");
                }
                if segments.len() == 1 && matches!(segments[0].as_str(), "true" | "false" | "null")
                {
                    unsupported(expr, &format!("the literal {}", segments[0]));
                }
                tokens.push(Token::Path(segments));
            }
            other => unsupported(expr, &format!("`{other}`")),
        }
    }
    tokens
}

fn unsupported(expr: &str, what: &str) -> ! {
    panic!("expression `{expr}`: {what} is not supported by this runner")
}

struct Parser<'a> {
    tokens: Vec<Token>,
    at: usize,
    expr: &'a str,
    ctx: &'a Context,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn or(&mut self) -> Val {
        let mut left = self.and();
        while self.peek() == Some(&Token::Or) {
            self.at += 1;
            let right = self.and();
            left = if truthy(&left) { left } else { right };
        }
        left
    }

    fn and(&mut self) -> Val {
        let mut left = self.equality();
        while self.peek() == Some(&Token::And) {
            self.at += 1;
            let right = self.equality();
            left = if truthy(&left) { right } else { left };
        }
        left
    }

    fn equality(&mut self) -> Val {
        let mut left = self.unary();
        loop {
            let op = match self.peek() {
                Some(Token::Eq) => true,
                Some(Token::Ne) => false,
                _ => return left,
            };
            self.at += 1;
            let right = self.unary();
            left = Val::Bool(equal(&left, &right) == op);
        }
    }

    fn unary(&mut self) -> Val {
        if self.peek() == Some(&Token::Not) {
            self.at += 1;
            return Val::Bool(!truthy(&self.unary()));
        }
        self.primary()
    }

    fn primary(&mut self) -> Val {
        let token = self
            .tokens
            .get(self.at)
            .cloned()
            .unwrap_or_else(|| panic!("expression `{}` ends too soon", self.expr));
        self.at += 1;
        match token {
            Token::Str(s) => Val::Str(s),
            Token::Path(p) => self.ctx.lookup(&p, self.expr),
            Token::Open => {
                let v = self.or();
                assert_eq!(
                    self.peek(),
                    Some(&Token::Close),
                    "expression `{}`: `(` is not closed",
                    self.expr
                );
                self.at += 1;
                v
            }
            other => panic!("expression `{}`: unexpected {other:?}", self.expr),
        }
    }
}

impl Context {
    /// Evaluates an expression (without `${{ }}`).
    pub(crate) fn eval(&self, expr: &str) -> Val {
        let mut p = Parser {
            tokens: tokenize(expr),
            at: 0,
            expr,
            ctx: self,
        };
        let v = p.or();
        assert!(
            p.at == p.tokens.len(),
            "expression `{expr}`: unexpected {:?}",
            p.tokens[p.at]
        );
        v
    }

    /// A step's `if:`: an expression, bare or wrapped whole in `${{ }}`.
    pub(crate) fn eval_condition(&self, cond: &str) -> Val {
        let c = cond.trim();
        let inner = match c.strip_prefix("${{").and_then(|c| c.strip_suffix("}}")) {
            Some(inner) => inner,
            None => c,
        };
        assert!(
            !inner.contains("${{"),
            "if: `{cond}`: mixing text and ${{{{ }}}} is not supported"
        );
        self.eval(inner)
    }

    /// Replaces each `${{ expr }}` in `text` with its value.
    pub(crate) fn substitute(&self, text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${{") {
            out.push_str(&rest[..start]);
            let body = &rest[start + 3..];
            // The closing braces, outside string literals.
            let mut in_str = false;
            let mut end = None;
            let bytes = body.as_bytes();
            let mut i = 0;
            while i < bytes.len() {
                match bytes[i] {
                    b'\'' => in_str = !in_str,
                    b'}' if !in_str && bytes.get(i + 1) == Some(&b'}') => {
                        end = Some(i);
                        break;
                    }
                    _ => {}
                }
                i += 1;
            }
            let end = end.unwrap_or_else(|| panic!("`${{{{` without `}}}}` in {text:?}"));
            out.push_str(&to_text(&self.eval(&body[..end])));
            rest = &body[end + 2..];
        }
        out.push_str(rest);
        out
    }

    fn lookup(&self, path: &[String], expr: &str) -> Val {
        let get = |map: &BTreeMap<String, String>, key: &str, what: &str| -> Val {
            Val::Str(
                map.get(key)
                    .unwrap_or_else(|| panic!("expression `{expr}`: no {what} `{key}`"))
                    .clone(),
            )
        };
        match path
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice()
        {
            ["inputs", name] => get(&self.inputs, name, "input"),
            ["github", name] => get(&self.github, name, "github property"),
            ["runner", name] => get(&self.runner, name, "runner property"),
            ["env", name] => self.env.get(*name).cloned().map_or(Val::Null, Val::Str),
            ["steps", id, "outputs", name] => self
                .steps
                .get(*id)
                .and_then(|o| o.get(*name))
                .cloned()
                .map_or(Val::Null, Val::Str),
            _ => panic!(
                "expression `{expr}`: `{}` is not supported by this runner",
                path.join(".")
            ),
        }
    }
}
