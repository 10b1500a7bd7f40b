# hoist-fleet light instance: a stateful stand-in for the `docker` CLI (there is no engine).
#
# The fleet writes this file, with a `#!PYTHON -IS` line above it and the two @…@ values filled
# in, to DIR/run/stub/docker; light instances find it first on PATH and bound over the host's
# docker CLI. Every call is appended to /run/hoist-fleet-docker-calls.log and sleeps
# SLEEP_MS (the engine's latency), then answers from the instance's own state:
# /run/hoist-fleet-docker/state.json — the instance's private /run, ROOT/run/ on the host —
# images (names and ids) and containers (id, name, image, labels, state, restart policy,
# published ports; never the contents of an env file), under an exclusive lock.
#
# It answers the subset of the CLI hoist's remote scripts use (src/scripts/*.sh), with the
# real CLI's output and exit codes: version, info, pull, login, image inspect / rm / ls,
# create, run, start, stop, rm, update, rename, ps, inspect, logs, port. A container has no
# process: it is `running` from `start` until `stop`, answers no HTTP, has no address, logs
# nothing, and a `--health-cmd` stays `starting`. A pull checks only that the config in effect
# holds a login for a registry host (no network); images without a registry host are made up.
# Go templates (`--format`): exactly the fields, `index .Config.Labels "x"`, `.Label "x"`,
# if / with / range / else / end the scripts use (SCHEMA below). Anything else — another
# field, function, pipe, variable, subcommand, option or filter — fails with exit 2 and a
# message naming it, so that a script change needing more shows up here first.

import fcntl
import json
import os
import sys
import time

# Each call starts a fresh interpreter: modules that are slow to import (re, hashlib, base64,
# datetime) are imported only by the commands that need them, or not at all.
HEX = frozenset("0123456789abcdef")

SLEEP_MS = int("@SLEEP_MS@")
CALLS_LOG = "@CALLS_LOG@"
STATE_DIR = "/run/hoist-fleet-docker"
VERSION = "20.10.24"
ZERO_TIME = "0001-01-01T00:00:00Z"
STUB_FILE = "tests/fleet/src/docker_stub.py"


class Exit(Exception):
    """Ends the call: `message` on stderr, exit `code`."""

    def __init__(self, code, message=""):
        Exception.__init__(self, message)
        self.code = code
        self.message = message


def unsupported(what):
    raise Exit(
        2,
        "hoist-fleet docker stub: %s is not emulated (light instances answer only what "
        "hoist's scripts use; extend %s)" % (what, STUB_FILE),
    )


def no_such_container(name):
    return "Error response from daemon: No such container: %s" % name


# ---------------------------------------------------------------- time and names
def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(t))) + ".%09dZ" % (int(t * 1e9) % 1000000000)


def is_hex(s, length=None):
    return bool(s) and (length is None or len(s) == length) and all(c in HEX for c in s)


def valid_repository(name):
    """Lowercase letters and digits, in components separated by one of . _ : / -."""
    after_separator = True
    for ch in name:
        if ch in HEX or "g" <= ch <= "z" or ch.isdigit():
            after_separator = False
        elif ch in "._:/-" and not after_separator:
            after_separator = True
        else:
            return False
    return not after_separator


def human_duration(secs):
    """go-units' HumanDuration, as `docker ps` shows ages."""
    s = int(secs)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return "%d seconds" % s
    m = s // 60
    if m == 1:
        return "About a minute"
    if m < 60:
        return "%d minutes" % m
    h = int(secs / 3600 + 0.5)
    if h == 1:
        return "About an hour"
    if h < 48:
        return "%d hours" % h
    if h < 24 * 7 * 2:
        return "%d days" % (h // 24)
    if h < 24 * 30 * 2:
        return "%d weeks" % (h // 24 // 7)
    if h < 24 * 365 * 2:
        return "%d months" % (h // 24 // 30)
    return "%d years" % (int(secs / 3600) // 24 // 365)


def split_ref(ref):
    """(name, tag, digest) of an image reference."""
    name, digest = ref, None
    if "@" in name:
        name, digest = name.split("@", 1)
    tag = None
    if ":" in name.rsplit("/", 1)[-1]:
        name, tag = name.rsplit(":", 1)
    return name, tag, digest


def normalize(ref):
    name, tag, digest = split_ref(ref)
    if name != name.lower():
        raise Exit(1, "invalid reference format: repository name must be lowercase")
    if not valid_repository(name) or (
        digest is not None and not (digest.startswith("sha256:") and is_hex(digest[7:], 64))
    ):
        raise Exit(1, "invalid reference format")
    if digest:
        return name + "@" + digest
    return "%s:%s" % (name, tag or "latest")


def registry_host(name):
    first = name.split("/", 1)[0]
    if "/" in name and ("." in first or ":" in first or first == "localhost"):
        return first
    return None


# ---------------------------------------------------------------- state
class State:
    """The instance's engine state, locked for the whole call."""

    def __init__(self):
        instance = os.environ.get("AWS_SSM_INSTANCE_ID", "")
        if not instance:
            raise Exit(2, "hoist-fleet docker stub: AWS_SSM_INSTANCE_ID is not set: the stub runs "
                          "only in a light instance's commands (its state is the instance's /run)")
        os.makedirs(STATE_DIR, mode=0o700, exist_ok=True)
        self.lock = open(os.path.join(STATE_DIR, "lock"), "a+")
        fcntl.flock(self.lock, fcntl.LOCK_EX)
        self.path = os.path.join(STATE_DIR, "state.json")
        try:
            with open(self.path) as f:
                self.data = json.load(f)
        except FileNotFoundError:
            self.data = {"instance": instance, "seq": 0, "images": {}, "containers": {}}
        if self.data.get("instance") != instance:
            raise Exit(2, "hoist-fleet docker stub: %s holds the state of instance %s, not %s"
                       % (STATE_DIR, self.data.get("instance"), instance))
        self.dirty = False

    @property
    def images(self):
        return self.data["images"]

    @property
    def containers(self):
        return self.data["containers"]

    def save(self):
        if not self.dirty:
            return
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.data, f, indent=1, sort_keys=True)
        os.replace(tmp, self.path)

    def next_seq(self):
        self.data["seq"] += 1
        return self.data["seq"]

    # ---- lookups, as the engine resolves them: full id, name, unique id prefix
    def container(self, ref):
        if ref in self.containers:
            return self.containers[ref]
        name = "/" + ref.lstrip("/")
        for c in self.containers.values():
            if c["Name"] == name:
                return c
        if is_hex(ref):
            found = [c for cid, c in self.containers.items() if cid.startswith(ref)]
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise Exit(1, "Error response from daemon: multiple IDs found with provided prefix: " + ref)
        return None

    def image(self, ref):
        """By id (`sha256:HEX`, or a unique HEX prefix), else by reference."""
        if ref.startswith("sha256:"):
            found = [i for iid, i in self.images.items() if iid.startswith(ref)] if len(ref) > 7 else []
            return found[0] if len(found) == 1 else None
        try:
            norm = normalize(ref)
        except Exit:
            norm = None
        for i in self.images.values():
            if norm in i["RepoTags"] or norm in i["RepoDigests"]:
                return i
        if is_hex(ref) and len(ref) <= 64:
            found = [i for iid, i in self.images.items() if iid[7:].startswith(ref)]
            if len(found) == 1:
                return found[0]
        return None

    def name_taken(self, name):
        for c in self.containers.values():
            if c["Name"] == "/" + name:
                return c
        return None


# ---------------------------------------------------------------- Go templates
# The objects a template can reach, and exactly the fields hoist's scripts read of them.
# A kind is a struct name, `str`, `int`, `map:KIND`, `list:KIND`, a pointer `KIND?` (nil
# prints <nil> and is false) or, in `docker ps`, `method:str` (`.Label "x"`).
SCHEMA = {
    "container": {
        "Id": "str",
        "Name": "str",
        "Image": "str",
        "State": "state",
        "Config": "config",
        "HostConfig": "hostconfig",
        "NetworkSettings": "netsettings",
        "RestartCount": "int",
    },
    "state": {"Status": "str", "ExitCode": "int", "StartedAt": "str", "Health": "health?"},
    "health": {"Status": "str"},
    "config": {"Image": "str", "Labels": "map:str"},
    "hostconfig": {"RestartPolicy": "restartpolicy"},
    "restartpolicy": {"Name": "str", "MaximumRetryCount": "int"},
    "netsettings": {"Networks": "map:network"},
    "network": {"IPAddress": "str"},
    "image": {"Id": "str", "RepoDigests": "list:str"},
    "pscontainer": {
        "ID": "str",
        "Names": "str",
        "State": "str",
        "Status": "str",
        "Image": "str",
        "CreatedAt": "str",
        "Labels": "str",
        "Label": "method:str",
    },
    "version": {"Server": "version_part", "Client": "version_part"},
    "version_part": {"Version": "str"},
    "info": {
        "ServerVersion": "str",
        "DockerRootDir": "str",
        "Containers": "int",
        "ContainersRunning": "int",
        "ContainersStopped": "int",
        "Images": "int",
    },
}
SCALARS = ("str", "int", "bool")


class TemplateError(Exception):
    """A template the stub does not answer (exit 2)."""


class ExecError(Exception):
    """An error the real CLI would report too (exit 1), e.g. a nil pointer."""


IDENT_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
IDENT = IDENT_START | frozenset("0123456789")


def parse_args(text):
    """The arguments of an action: "strings", .Field.Chains, . and identifiers."""
    args = []
    pos = 0
    n = len(text)
    while True:
        while pos < n and text[pos].isspace():
            pos += 1
        if pos >= n:
            return args
        ch = text[pos]
        if ch == '"':
            end = pos + 1
            while end < n and text[end] != '"':
                end += 2 if text[end] == "\\" else 1
            if end >= n:
                raise TemplateError("an unterminated string")
            args.append(("str", json.loads(text[pos:end + 1])))
            pos = end + 1
        elif ch == "." or ch in IDENT_START:
            end = pos
            while end < n and (text[end] in IDENT or text[end] == "."):
                end += 1
            word = text[pos:end]
            if word == ".":
                args.append(("dot",))
            elif ch == ".":
                names = word[1:].split(".")
                if not all(names) or any(w[0] not in IDENT_START for w in names):
                    raise TemplateError(repr(word))
                args.append(("field", names))
            elif "." in word:
                raise TemplateError(repr(word))
            else:
                args.append(("ident", word))
            pos = end
        else:
            raise TemplateError("%r (pipes, variables, parentheses and literals other than strings)" % ch)


def parse_template(text):
    root = []
    stack = [("root", root, None)]
    cur = root
    pos = 0
    while True:
        i = text.find("{{", pos)
        if i < 0:
            cur.append(("text", text[pos:]))
            break
        j = text.find("}}", i + 2)
        if j < 0:
            raise TemplateError("an unclosed action")
        inner = text[i + 2:j]
        chunk = text[pos:i]
        if inner.startswith("-") and inner[1:2].isspace():
            chunk = chunk.rstrip()
            inner = inner[1:]
        pos = j + 2
        if inner.endswith("-") and inner[-2:-1].isspace():
            inner = inner[:-1]
            rest = text[pos:]
            pos += len(rest) - len(rest.lstrip())
        cur.append(("text", chunk))
        inner = inner.strip()
        if inner.startswith("/*"):
            continue
        word = inner.split(None, 1)[0] if inner else ""
        if word in ("if", "with", "range"):
            node = [word, parse_args(inner[len(word):]), [], []]
            cur.append(node)
            stack.append((word, node, "then"))
            cur = node[2]
        elif word == "else":
            if inner != "else":
                raise TemplateError("{{%s}}" % inner)
            kind, node, part = stack[-1]
            if kind == "root" or part != "then":
                raise TemplateError("an {{else}} outside if/with/range")
            stack[-1] = (kind, node, "else")
            cur = node[3]
        elif word == "end":
            if len(stack) == 1:
                raise TemplateError("an {{end}} without if/with/range")
            stack.pop()
            kind, node, part = stack[-1]
            cur = node if kind == "root" else node[2 if part == "then" else 3]
        elif word in ("define", "template", "block", "break", "continue"):
            raise TemplateError("{{%s}}" % word)
        else:
            cur.append(("action", parse_args(inner)))
    if len(stack) != 1:
        raise TemplateError("an if/with/range without {{end}}")
    return root


def zero(kind):
    if kind == "str":
        return ""
    if kind == "int":
        return 0
    if kind == "bool":
        return False
    if kind.startswith("map:"):
        return {}
    if kind.startswith("list:"):
        return []
    return None


def field_kind(kind, name):
    if kind.endswith("?"):
        kind = kind[:-1]
    spec = SCHEMA.get(kind)
    if spec is None or name not in spec:
        raise TemplateError(".%s (of a %s)" % (name, kind))
    return spec[name]


def cmd_kind(args, dot):
    """The kind a command yields with dot of kind `dot` (static check)."""
    if not args:
        raise TemplateError("an empty action")
    head = args[0]
    if head[0] == "ident":
        if head[1] == "index" and len(args) == 3 and args[1][0] in ("field", "dot") and args[2][0] == "str":
            kind = cmd_kind([args[1]], dot)
            if not kind.startswith("map:"):
                raise TemplateError("index of a %s" % kind)
            return kind[4:]
        raise TemplateError("the function %s" % head[1] + (" in this form" if head[1] == "index" else ""))
    if head[0] == "str":
        raise TemplateError("a string literal as a value")
    if head[0] == "dot":
        if len(args) > 1:
            raise TemplateError("arguments after .")
        return dot
    kind = dot
    for n, name in enumerate(head[1]):
        kind = field_kind(kind, name)
        if kind.startswith("method:"):
            if n != len(head[1]) - 1 or len(args) != 2 or args[1][0] != "str":
                raise TemplateError(".%s without exactly one string argument" % name)
            return kind[7:]
    if len(args) > 1:
        raise TemplateError("arguments after .%s" % ".".join(head[1]))
    return kind


def check(nodes, dot):
    for node in nodes:
        if node[0] == "text":
            continue
        if node[0] == "action":
            kind = cmd_kind(node[1], dot)
            printable = kind in SCALARS or (
                kind.split(":", 1)[0] in ("list", "map") and kind.split(":", 1)[1] in SCALARS)
            if not printable:
                raise TemplateError("printing a %s" % kind)
            continue
        word, args, then, other = node
        kind = cmd_kind(args, dot)
        if word == "if":
            check(then, dot)
        elif word == "with":
            check(then, kind)
        else:
            if not (kind.startswith("map:") or kind.startswith("list:")):
                raise TemplateError("range over a %s" % kind)
            check(then, kind.split(":", 1)[1])
        check(other, dot)


def evaluate(args, dot_kind, dot):
    head = args[0]
    if head[0] == "ident":  # index MAP "key": the zero value when the key is missing
        kind, m = evaluate([args[1]], dot_kind, dot)
        return kind[4:], m.get(args[2][1], zero(kind[4:]))
    if head[0] == "dot":
        return dot_kind, dot
    kind, val = dot_kind, dot
    for n, name in enumerate(head[1]):
        if kind.endswith("?") and val is None:
            raise ExecError("at <.%s>: nil pointer evaluating *types.%s.%s"
                            % (".".join(head[1][:n + 1]), kind[:-1].capitalize(), name))
        kind = field_kind(kind, name)
        if kind.startswith("method:"):
            return kind[7:], val["Labels_map"].get(args[1][1], "")
        val = val.get(name, zero(kind)) if isinstance(val, dict) else zero(kind)
    return kind, val


def truth(val):
    if val is None:
        return False
    if isinstance(val, (str, list, dict)):
        return len(val) > 0
    return bool(val)


def show(kind, val):
    if val is None:
        return "<nil>"
    if kind == "str":
        return val
    if kind == "bool":
        return "true" if val else "false"
    if kind == "int":
        return str(val)
    if kind.startswith("list:"):
        return "[" + " ".join(show(kind[5:], v) for v in val) + "]"
    return "map[" + " ".join("%s:%s" % (k, show(kind[4:], val[k])) for k in sorted(val)) + "]"


def run(nodes, kind, dot, out):
    for node in nodes:
        if node[0] == "text":
            out.append(node[1])
        elif node[0] == "action":
            k, v = evaluate(node[1], kind, dot)
            out.append(show(k, v))
        else:
            word, args, then, other = node
            k, v = evaluate(args, kind, dot)
            if word == "range":
                items = [v[key] for key in sorted(v)] if isinstance(v, dict) else list(v or [])
                for item in items:
                    run(then, k.split(":", 1)[1], item, out)
                if not items:
                    run(other, kind, dot, out)
            elif truth(v):
                run(then, k if word == "with" else kind, v if word == "with" else dot, out)
            else:
                run(other, kind, dot, out)


class Template:
    def __init__(self, text, kind):
        self.text = text
        self.kind = kind
        try:
            self.nodes = parse_template(text)
            check(self.nodes, kind)
        except TemplateError as e:
            raise Exit(2, "hoist-fleet docker stub: the template %r uses %s, which the stub does not "
                          "answer (it answers what hoist's scripts use; extend %s)" % (text, e, STUB_FILE))

    def render(self, obj):
        out = []
        try:
            run(self.nodes, self.kind, obj, out)
        except ExecError as e:
            raise Exit(1, "Template parsing error: template: :1: executing \"\" %s" % e)
        return "".join(out)


# ---------------------------------------------------------------- option parsing
def parse_options(args, values, flags, command, stop_at_positional=True):
    """Docker's flag parsing, as far as the stub goes: --opt value, --opt=value, -o value,
    -ovalue, clustered short flags (-aq). Returns ({option: [values] or count}, positionals)."""
    opts = {}
    positional = []
    i = 0
    while i < len(args):
        a = args[i]
        i += 1
        if a == "--":
            positional.extend(args[i:])
            break
        if a.startswith("--"):
            name, eq, val = a.partition("=")
            if name in values:
                if not eq:
                    if i >= len(args):
                        raise Exit(125 if command in ("create", "run") else 1,
                                   'flag needs an argument: %s\nSee \'docker %s --help\'.' % (name, command))
                    val = args[i]
                    i += 1
                opts.setdefault(values[name], []).append(val)
            elif name in flags:
                if eq and val not in ("true", "1"):
                    continue
                opts[flags[name]] = opts.get(flags[name], 0) + 1
            else:
                unsupported("the option %s of `docker %s`" % (name, command))
        elif a.startswith("-") and len(a) > 1:
            j = 1
            while j < len(a):
                o = "-" + a[j]
                j += 1
                if o in values:
                    val = a[j:]
                    if not val:
                        if i >= len(args):
                            raise Exit(125 if command in ("create", "run") else 1,
                                       'flag needs an argument: %s\nSee \'docker %s --help\'.' % (o, command))
                        val = args[i]
                        i += 1
                    opts.setdefault(values[o], []).append(val.lstrip("=") if val.startswith("=") else val)
                    break
                if o in flags:
                    opts[flags[o]] = opts.get(flags[o], 0) + 1
                else:
                    unsupported("the option %s of `docker %s`" % (o, command))
        else:
            positional.append(a)
            if stop_at_positional:
                positional.extend(args[i:])
                break
    return opts, positional


def last(opts, key, default=None):
    v = opts.get(key)
    return v[-1] if v else default


# ---------------------------------------------------------------- registry config
def config_dir(g):
    if g.get("config"):
        return g["config"]
    return os.environ.get("DOCKER_CONFIG") or os.path.join(os.environ.get("HOME") or "/root", ".docker")


def load_config(d):
    try:
        with open(os.path.join(d, "config.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def has_login(d, host):
    conf = load_config(d)
    if conf.get("credsStore") or host in (conf.get("credHelpers") or {}):
        return True
    auths = conf.get("auths") or {}
    return host in auths or "https://" + host in auths


# ---------------------------------------------------------------- commands
def cmd_version(st, args, g):
    opts, pos = parse_options(args, {"--format": "format", "-f": "format"}, {}, "version", False)
    if pos:
        unsupported("arguments to `docker version`")
    fmt = last(opts, "format")
    if fmt is not None:
        obj = {"Client": {"Version": VERSION}, "Server": {"Version": VERSION}}
        print(Template(fmt, "version").render(obj))
        return
    print("Client:\n Version:           %s (hoist-fleet stub)\n API version:       1.41\n\n"
          "Server: hoist-fleet stub (a light instance: no engine, no processes)\n Engine:\n"
          "  Version:          %s\n  API version:      1.41 (minimum version 1.12)" % (VERSION, VERSION))


def cmd_info(st, args, g):
    opts, pos = parse_options(args, {"--format": "format", "-f": "format"}, {}, "info", False)
    if pos:
        unsupported("arguments to `docker info`")
    cs = list(st.containers.values())
    running = sum(1 for c in cs if c["State"] == "running")
    obj = {"ServerVersion": VERSION, "DockerRootDir": STATE_DIR, "Containers": len(cs),
           "ContainersRunning": running, "ContainersStopped": len(cs) - running,
           "Images": len(st.images)}
    fmt = last(opts, "format")
    if fmt is not None:
        print(Template(fmt, "info").render(obj))
        return
    print("Server:\n Containers: %d\n  Running: %d\n  Paused: 0\n  Stopped: %d\n Images: %d\n"
          " Server Version: %s\n Storage Driver: none (hoist-fleet stub)\n Docker Root Dir: %s"
          % (len(cs), running, len(cs) - running, len(st.images), VERSION, STATE_DIR))


def pull(st, ref, g, quiet=True, implicit=False):
    norm = normalize(ref)
    name, tag, digest = split_ref(norm)
    host = registry_host(name)
    if host and not has_login(config_dir(g), host):
        raise Exit(1, 'Error response from daemon: Head "https://%s/v2/%s/manifests/%s": no basic auth credentials'
                   % (host, name[len(host) + 1:], digest or tag))
    img = st.image(norm)
    fresh = img is None
    if fresh:
        import hashlib

        iid = "sha256:" + hashlib.sha256(("hoist-fleet-stub " + norm).encode()).hexdigest()
        img = st.images.setdefault(iid, {"Id": iid, "RepoTags": [], "RepoDigests": [], "Created": time.time()})
        if digest:
            img["RepoDigests"].append(norm)
        else:
            img["RepoTags"].append(norm)
            img["RepoDigests"].append(name + "@sha256:" + hashlib.sha256(norm.encode()).hexdigest())
        st.dirty = True
    if implicit:
        return img
    if quiet:
        print(norm)
    else:
        print("%s: Pulling from %s" % (tag or digest, name))
        print("Digest: %s" % (digest or img["RepoDigests"][0].split("@", 1)[1]))
        print("Status: %s for %s" % ("Downloaded newer image" if fresh else "Image is up to date", norm))
        print(norm)
    return img


def cmd_pull(st, args, g):
    opts, pos = parse_options(args, {"--platform": "platform"}, {"--quiet": "quiet", "-q": "quiet"}, "pull")
    if len(pos) != 1:
        raise Exit(1, '"docker pull" requires exactly 1 argument.')
    pull(st, pos[0], g, quiet=bool(opts.get("quiet")))


def cmd_login(st, args, g):
    opts, pos = parse_options(args, {"--username": "user", "-u": "user", "--password": "pw", "-p": "pw"},
                              {"--password-stdin": "stdin"}, "login")
    server = pos[0] if pos else "https://index.docker.io/v1/"
    if len(pos) > 1:
        raise Exit(1, '"docker login" requires at most 1 argument.')
    user = last(opts, "user")
    pw = last(opts, "pw")
    if opts.get("stdin"):
        if pw is not None:
            raise Exit(1, "--password and --password-stdin are mutually exclusive")
        if not user:
            raise Exit(1, "Must provide --username with --password-stdin")
        pw = sys.stdin.read().rstrip("\r\n")
    if not user or not pw:
        raise Exit(1, "Error: Cannot perform an interactive login from a non TTY device")
    import base64

    d = config_dir(g)
    os.makedirs(d, mode=0o700, exist_ok=True)
    conf = load_config(d)
    conf.setdefault("auths", {})[server] = {"auth": base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()}
    path = os.path.join(d, "config.json")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(conf, f, indent="\t")
    sys.stderr.write("WARNING! Your password will be stored unencrypted in %s.\n" % path)
    print("Login Succeeded")


CREATE_VALUES = {
    "--name": "name", "--label": "label", "-l": "label", "--env-file": "env_file", "--env": "env",
    "-e": "env", "--publish": "publish", "-p": "publish", "--restart": "restart",
    "--stop-timeout": "stop_timeout", "--memory": "memory", "-m": "memory", "--cpus": "cpus",
    "--volume": "volume", "-v": "volume", "--network": "network", "--user": "user", "-u": "user",
    "--workdir": "workdir", "-w": "workdir", "--entrypoint": "entrypoint", "--hostname": "hostname",
    "--log-driver": "log_driver", "--log-opt": "log_opt", "--health-cmd": "health_cmd",
    "--health-interval": "health_opt", "--health-timeout": "health_opt",
    "--health-retries": "health_opt", "--health-start-period": "health_opt", "--tmpfs": "tmpfs",
    "--cap-add": "cap", "--cap-drop": "cap", "--ulimit": "ulimit", "--add-host": "add_host",
    "--stop-signal": "stop_signal", "--memory-reservation": "memory_opt",
    "--memory-swap": "memory_opt", "--pids-limit": "pids_limit", "--pull": "pull",
    "--shm-size": "shm_size", "--security-opt": "security_opt",
}
CREATE_FLAGS = {"--init": "init", "--read-only": "read_only", "--rm": "rm",
                "--no-healthcheck": "no_healthcheck", "--interactive": "interactive",
                "-i": "interactive", "--tty": "tty", "-t": "tty"}
RESTART_RE = r"^(no|always|unless-stopped|on-failure(:[0-9]+)?)$"
NAME_RE = r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$"
PUBLISH_RE = r"^(?:(?:(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]):)?(\d{1,5})?:)?(\d{1,5})(?:/(tcp|udp|sctp))?$"


def matches(pattern, text):
    import re

    return re.match(pattern, text)


def restart_policy(text, command):
    if not matches(RESTART_RE, text):
        raise Exit(125 if command != "update" else 1, "invalid restart policy format: %s" % text)
    name, _, count = text.partition(":")
    return {"Name": name, "MaximumRetryCount": int(count or 0)}


def create(st, args, g, command):
    values = dict(CREATE_VALUES)
    flags = dict(CREATE_FLAGS)
    if command == "run":
        flags.update({"--detach": "detach", "-d": "detach"})
    opts, pos = parse_options(args, values, flags, command)
    if not pos:
        raise Exit(125, '"docker %s" requires at least 1 argument.' % command)
    image_ref, cmd = pos[0], pos[1:]
    restart = restart_policy(last(opts, "restart", "no"), command)
    if opts.get("rm") and restart["Name"] != "no":
        raise Exit(125, "Conflicting options: --restart and --rm")
    stop_timeout = last(opts, "stop_timeout")
    if stop_timeout is not None and not matches(r"^-?\d+$", stop_timeout):
        raise Exit(125, 'invalid argument "%s" for "--stop-timeout" flag: strconv.ParseInt: parsing "%s": invalid syntax'
                   % (stop_timeout, stop_timeout))
    memory = last(opts, "memory")
    if memory is not None and not matches(r"^\d+(\.\d+)?[bkmgBKMG]?$", memory):
        raise Exit(125, 'invalid argument "%s" for "-m, --memory" flag: invalid size: \'%s\'' % (memory, memory))
    cpus = last(opts, "cpus")
    if cpus is not None:
        try:
            float(cpus)
        except ValueError:
            raise Exit(125, 'invalid argument "%s" for "--cpus" flag: failed to parse %s as a rational number'
                       % (cpus, cpus))
    ports = []
    for p in opts.get("publish", []):
        m = matches(PUBLISH_RE, p)
        if not m:
            raise Exit(125, "Invalid containerPort: %s" % p)
        ports.append({"HostIp": (m.group(1) or "").strip("[]"), "HostPort": m.group(2) or "",
                      "ContainerPort": "%s/%s" % (m.group(3), m.group(4) or "tcp")})
    for f in opts.get("env_file", []):
        try:  # the engine reads it; the stub only checks it can (its contents are never kept)
            with open(f, "rb"):
                pass
        except OSError as e:
            raise Exit(125, "open %s: %s" % (f, (e.strerror or str(e)).lower()))
    labels = {}
    for lab in opts.get("label", []):
        k, _, v = lab.partition("=")
        labels[k] = v
    name = last(opts, "name")
    if name is not None:
        if not matches(NAME_RE, name):
            raise Exit(125, "Error response from daemon: Invalid container name (%s), only "
                            "[a-zA-Z0-9][a-zA-Z0-9_.-] are allowed" % name)
        name = name.lstrip("/")
    else:
        name = "stub_" + os.urandom(4).hex()
    taken = st.name_taken(name)
    if taken:
        raise Exit(125, 'Error response from daemon: Conflict. The container name "/%s" is already in use by '
                        'container "%s". You have to remove (or rename) that container to be able to reuse '
                        'that name.' % (name, taken["Id"]))
    img = st.image(image_ref)
    if img is None:
        if last(opts, "pull") == "never":
            raise Exit(125, "Error response from daemon: No such image: %s" % normalize(image_ref))
        sys.stderr.write("Unable to find image '%s' locally\n" % normalize(image_ref))
        try:
            img = pull(st, image_ref, g, implicit=True)
        except Exit as e:
            raise Exit(125, e.message)
    now = time.time()
    cid = os.urandom(32).hex()
    st.containers[cid] = {
        "Id": cid,
        "Seq": st.next_seq(),
        "Name": "/" + name,
        "Created": now,
        "Image": img["Id"],
        "ConfigImage": image_ref,
        "Cmd": cmd,
        "Labels": labels,
        "State": "created",
        "ExitCode": 0,
        "StartedAt": ZERO_TIME,
        "FinishedAt": ZERO_TIME,
        "Health": {"Status": "starting", "FailingStreak": 0, "Log": []} if opts.get("health_cmd") else None,
        "RestartPolicy": restart,
        "AutoRemove": bool(opts.get("rm")),
        "Ports": ports,
        "StopTimeout": int(stop_timeout) if stop_timeout is not None else None,
        "Memory": memory,
        "Cpus": cpus,
        "Volumes": opts.get("volume", []),
        "Init": bool(opts.get("init")),
    }
    st.dirty = True
    return st.containers[cid]


def cmd_create(st, args, g):
    print(create(st, args, g, "create")["Id"])


def port_clash(st, c):
    for other in st.containers.values():
        if other is c or other["State"] != "running":
            continue
        for mine in c["Ports"]:
            for theirs in other["Ports"]:
                if mine["HostPort"] and mine["HostPort"] == theirs["HostPort"] and \
                        mine["ContainerPort"][-3:] == theirs["ContainerPort"][-3:] and \
                        (not mine["HostIp"] or not theirs["HostIp"] or mine["HostIp"] == theirs["HostIp"]):
                    return "%s:%s" % (mine["HostIp"] or "0.0.0.0", mine["HostPort"])
    return None


def start(st, c):
    if c["State"] == "running":
        return None
    clash = port_clash(st, c)
    if clash:
        return ("Error response from daemon: driver failed programming external connectivity on endpoint "
                "%s (%s): Bind for %s failed: port is already allocated" % (c["Name"][1:], c["Id"], clash))
    c["State"] = "running"
    c["ExitCode"] = 0
    c["StartedEpoch"] = time.time()
    c["StartedAt"] = iso(c["StartedEpoch"])
    if c["Health"] is not None:
        c["Health"]["Status"] = "starting"
    st.dirty = True
    return None


def stop(st, c):
    if c["State"] == "running":
        c["State"] = "exited"
        c["ExitCode"] = 0
        c["FinishedEpoch"] = time.time()
        c["FinishedAt"] = iso(c["FinishedEpoch"])
        if c["Health"] is not None:
            c["Health"]["Status"] = "unhealthy"
        st.dirty = True
    if c["AutoRemove"]:
        del st.containers[c["Id"]]
        st.dirty = True


def cmd_run(st, args, g):
    opts, _ = parse_options(args, CREATE_VALUES, dict(CREATE_FLAGS, **{"--detach": "detach", "-d": "detach"}), "run")
    c = create(st, args, g, "run")
    err = start(st, c)
    if err:
        raise Exit(125, "docker: " + err + ".")
    if opts.get("detach"):
        print(c["Id"])
    else:  # attached: there is no process, so it has ended already
        stop(st, c)


def each_container(st, refs, action, command, fail_line=None):
    failed = []
    for ref in refs:
        c = st.container(ref)
        if c is None:
            sys.stderr.write(no_such_container(ref) + "\n")
            failed.append(ref)
            continue
        err = action(c)
        if err:
            sys.stderr.write(err + "\n")
            failed.append(ref)
        else:
            print(ref)
    if failed:
        raise Exit(1, fail_line % ", ".join(failed) if fail_line else "")


def cmd_start(st, args, g):
    opts, pos = parse_options(args, {}, {"--attach": "attach", "-a": "attach", "--interactive": "i", "-i": "i"},
                              "start", False)
    if opts:
        unsupported("an attached `docker start`")
    if not pos:
        raise Exit(1, '"docker start" requires at least 1 argument.')
    each_container(st, pos, lambda c: start(st, c), "start", "Error: failed to start containers: %s")


def cmd_stop(st, args, g):
    opts, pos = parse_options(args, {"--time": "time", "-t": "time", "--signal": "signal", "-s": "signal"}, {},
                              "stop", False)
    t = last(opts, "time")
    if t is not None and not t.lstrip("-").isdigit():
        raise Exit(1, 'invalid argument "%s" for "-t, --time" flag' % t)
    if not pos:
        raise Exit(1, '"docker stop" requires at least 1 argument.')
    each_container(st, pos, lambda c: stop(st, c), "stop")


def cmd_rm(st, args, g):
    opts, pos = parse_options(args, {}, {"--force": "force", "-f": "force", "--volumes": "volumes", "-v": "volumes"},
                              "rm", False)
    if not pos:
        raise Exit(1, '"docker rm" requires at least 1 argument.')
    failed = False
    for ref in pos:
        c = st.container(ref)
        if c is None:
            if opts.get("force"):
                continue
            sys.stderr.write(no_such_container(ref) + "\n")
            failed = True
            continue
        if c["State"] == "running" and not opts.get("force"):
            sys.stderr.write('Error response from daemon: You cannot remove a running container %s. Stop the '
                             'container before attempting removal or force remove\n' % c["Id"])
            failed = True
            continue
        del st.containers[c["Id"]]
        st.dirty = True
        print(ref)
    if failed:
        raise Exit(1)


def cmd_update(st, args, g):
    opts, pos = parse_options(args, {"--restart": "restart", "--memory": "memory", "-m": "memory", "--cpus": "cpus"},
                              {}, "update", False)
    if not opts:
        raise Exit(1, "You must provide one or more flags when using this command.")
    if not pos:
        raise Exit(1, '"docker update" requires at least 1 argument.')
    policy = restart_policy(last(opts, "restart"), "update") if opts.get("restart") else None

    def update(c):
        if policy is not None:
            if c["AutoRemove"] and policy["Name"] != "no":
                return "Error response from daemon: Cannot update container %s: can't set restart policy on " \
                       "a container with AutoRemove enabled" % c["Id"]
            c["RestartPolicy"] = dict(policy)
        if opts.get("memory"):
            c["Memory"] = last(opts, "memory")
        if opts.get("cpus"):
            c["Cpus"] = last(opts, "cpus")
        st.dirty = True
        return None

    each_container(st, pos, update, "update")


def cmd_rename(st, args, g):
    _, pos = parse_options(args, {}, {}, "rename", False)
    if len(pos) != 2:
        raise Exit(1, '"docker rename" requires exactly 2 arguments.')
    c = st.container(pos[0])
    if c is None:
        raise Exit(1, no_such_container(pos[0]))
    new = pos[1].lstrip("/")
    if not matches(NAME_RE, new):
        raise Exit(1, "Error response from daemon: Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] "
                      "are allowed" % new)
    if c["Name"] == "/" + new:
        raise Exit(1, "Error response from daemon: Renaming a container with the same name as its current "
                      "name")
    taken = st.name_taken(new)
    if taken:
        raise Exit(1, 'Error response from daemon: Conflict. The container name "/%s" is already in use by '
                      'container "%s". You have to remove (or rename) that container to be able to reuse '
                      'that name.' % (new, taken["Id"]))
    c["Name"] = "/" + new
    st.dirty = True


def cmd_logs(st, args, g):
    opts, pos = parse_options(args, {"--tail": "tail", "-n": "tail", "--since": "since", "--until": "until"},
                              {"--timestamps": "ts", "-t": "ts", "--follow": "follow", "-f": "follow"},
                              "logs", False)
    if opts.get("follow"):
        unsupported("`docker logs --follow`")
    if len(pos) != 1:
        raise Exit(1, '"docker logs" requires exactly 1 argument.')
    if st.container(pos[0]) is None:
        raise Exit(1, "Error: No such container: %s" % pos[0])
    # No process, no output.


def cmd_port(st, args, g):
    _, pos = parse_options(args, {}, {}, "port", False)
    if not 1 <= len(pos) <= 2:
        raise Exit(1, '"docker port" requires at least 1 and at most 2 arguments.')
    c = st.container(pos[0])
    if c is None:
        raise Exit(1, "Error: No such container: %s" % pos[0])
    want = pos[1] if len(pos) == 2 else None
    if want and "/" not in want:
        want += "/tcp"
    lines = []
    if c["State"] == "running":
        for p in c["Ports"]:
            if want and p["ContainerPort"] != want:
                continue
            host = p["HostPort"] or "0"
            addr = "%s:%s" % (p["HostIp"] or "0.0.0.0", host)
            lines.append(addr if want else "%s -> %s" % (p["ContainerPort"], addr))
    if want and not lines:
        raise Exit(1, "Error: No public port '%s' published for %s" % (want, pos[0]))
    for line in lines:
        print(line)


def ps_view(st, c, now, trunc):
    labels = c["Labels"]
    if c["State"] == "running":
        status = "Up " + human_duration(now - c["StartedEpoch"])
        if c["Health"] is not None:
            status += " (health: %s)" % c["Health"]["Status"]
    elif c["State"] == "exited":
        status = "Exited (%d) %s ago" % (c["ExitCode"], human_duration(now - c["FinishedEpoch"]))
    else:
        status = "Created"
    return {
        "ID": c["Id"][:12] if trunc else c["Id"],
        "Names": c["Name"][1:],
        "State": c["State"],
        "Status": status,
        "Image": c["ConfigImage"],
        "CreatedAt": time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(int(c["Created"]))),
        "Labels": ",".join("%s=%s" % (k, labels[k]) for k in sorted(labels)),
        "Labels_map": labels,
        "Command": '"%s"' % " ".join(c["Cmd"]) if c["Cmd"] else '""',
        "CreatedHuman": human_duration(now - c["Created"]) + " ago",
        "Ports": ", ".join("%s:%s->%s" % (p["HostIp"] or "0.0.0.0", p["HostPort"], p["ContainerPort"])
                           for p in c["Ports"]) if c["State"] == "running" else "",
    }


STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")


def cmd_ps(st, args, g):
    opts, pos = parse_options(
        args, {"--filter": "filter", "-f": "filter", "--format": "format", "--last": "last", "-n": "last"},
        {"--all": "all", "-a": "all", "--quiet": "quiet", "-q": "quiet", "--no-trunc": "no_trunc",
         "--latest": "latest", "-l": "latest", "--size": "size", "-s": "size"}, "ps", False)
    if pos:
        raise Exit(1, '"docker ps" accepts no arguments.')
    filters = {}
    for f in opts.get("filter", []):
        key, eq, val = f.partition("=")
        if not eq:
            raise Exit(1, "Error: bad format of filter (expected name=value)")
        if key not in ("label", "status", "name", "id"):
            unsupported("the filter %s of `docker ps`" % key)
        if key == "status" and val not in STATUSES:
            raise Exit(1, "Error response from daemon: invalid filter 'status=%s'" % val)
        filters.setdefault(key, []).append(val)
    cs = sorted(st.containers.values(), key=lambda c: -c["Seq"])
    show_all = opts.get("all") or opts.get("latest") or opts.get("last") or "status" in filters
    if not show_all:
        cs = [c for c in cs if c["State"] == "running"]
    if opts.get("latest"):
        cs = cs[:1]
    if opts.get("last"):
        cs = cs[:int(last(opts, "last"))]

    def keep(c):
        for lab in filters.get("label", []):  # every label filter must hold
            k, eq, v = lab.partition("=")
            if k not in c["Labels"] or (eq and c["Labels"][k] != v):
                return False
        if "status" in filters and c["State"] not in filters["status"]:
            return False
        if "name" in filters and not any(__import__("re").search(n, c["Name"]) for n in filters["name"]):
            return False
        if "id" in filters and not any(c["Id"].startswith(i) for i in filters["id"]):
            return False
        return True

    cs = [c for c in cs if keep(c)]
    trunc = not opts.get("no_trunc")
    now = time.time()
    views = [ps_view(st, c, now, trunc) for c in cs]
    fmt = last(opts, "format")
    if opts.get("quiet"):
        out = [v["ID"] for v in views]
    elif fmt is not None:
        if fmt.startswith("table") or fmt == "json":
            unsupported("the format %r of `docker ps`" % fmt)
        t = Template(fmt, "pscontainer")
        out = [t.render(v) for v in views]
    else:
        rows = [("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES")]
        rows += [(v["ID"], v["Image"], v["Command"], v["CreatedHuman"], v["Status"], v["Ports"], v["Names"])
                 for v in views]
        widths = [max(len(r[i]) for r in rows) for i in range(7)]
        out = ["   ".join(r[i].ljust(widths[i]) for i in range(7)).rstrip() for r in rows]
    for line in out:
        print(line)


def container_json(st, c):
    ports = {}
    bindings = {}
    for p in c["Ports"]:
        bindings.setdefault(p["ContainerPort"], []).append({"HostIp": p["HostIp"], "HostPort": p["HostPort"]})
        if c["State"] == "running":
            ports.setdefault(p["ContainerPort"], []).append(
                {"HostIp": p["HostIp"] or "0.0.0.0", "HostPort": p["HostPort"] or "0"})
    state = {
        "Status": c["State"],
        "Running": c["State"] == "running",
        "Paused": False,
        "Restarting": False,
        "OOMKilled": False,
        "Dead": False,
        "Pid": 0,
        "ExitCode": c["ExitCode"],
        "Error": "",
        "StartedAt": c["StartedAt"],
        "FinishedAt": c["FinishedAt"],
    }
    if c["Health"] is not None:
        state["Health"] = c["Health"]
    return {
        "Id": c["Id"],
        "Created": iso(c["Created"]),
        "Path": c["Cmd"][0] if c["Cmd"] else "",
        "Args": c["Cmd"][1:],
        "State": state,
        "Image": c["Image"],
        "Name": c["Name"],
        "RestartCount": 0,
        "Driver": "none",
        "HostConfig": {
            "Binds": c["Volumes"] or None,
            "PortBindings": bindings,
            "RestartPolicy": c["RestartPolicy"],
            "AutoRemove": c["AutoRemove"],
            "Init": c["Init"] or None,
            "Memory": c["Memory"],
            "NanoCpus": int(float(c["Cpus"]) * 1e9) if c["Cpus"] else 0,
        },
        "Config": {
            "Hostname": c["Id"][:12],
            "Image": c["ConfigImage"],
            "Cmd": c["Cmd"] or None,
            "Labels": c["Labels"],
            "StopTimeout": c["StopTimeout"],
        },
        "NetworkSettings": {
            "Ports": ports,
            # No network: a stub container has no address.
            "Networks": {"bridge": {"IPAddress": ""}},
        },
    }


def image_json(i):
    return {"Id": i["Id"], "RepoTags": i["RepoTags"], "RepoDigests": i["RepoDigests"], "Created": iso(i["Created"]),
            "Os": "linux", "Architecture": "amd64", "Size": 0}


def inspect(st, args, g, kinds, command):
    opts, pos = parse_options(args, {"--format": "format", "-f": "format", "--type": "type"},
                              {"--size": "size", "-s": "size"}, command, False)
    if not pos:
        raise Exit(1, '"docker %s" requires at least 1 argument.' % command)
    want = last(opts, "type")
    if want is not None:
        if want not in ("container", "image"):
            unsupported("`docker inspect --type %s`" % want)
        kinds = [want]
    fmt = last(opts, "format")
    templates = {}

    def template(kind):
        if kind not in templates:
            templates[kind] = Template(fmt, kind)
        return templates[kind]

    if fmt is not None:
        template(kinds[0])  # checked even when nothing is found
    found = []
    missing = []
    for ref in pos:
        obj = None
        for kind in kinds:
            if kind == "container":
                c = st.container(ref)
                obj = ("container", container_json(st, c)) if c else None
            else:
                i = st.image(ref)
                obj = ("image", image_json(i)) if i else None
            if obj:
                break
        if obj:
            found.append(obj)
        else:
            missing.append(ref)
    if fmt is not None:
        out = "".join(template(k).render(o) + "\n" for k, o in found)
    else:
        out = json.dumps([o for _, o in found], indent=4) + "\n"
    sys.stdout.write(out)
    if missing:
        what = kinds[0] if len(kinds) == 1 else "object"
        raise Exit(1, "\n".join("Error: No such %s: %s" % (what, r) for r in missing))


def cmd_inspect(st, args, g):
    inspect(st, args, g, ["container", "image"], "inspect")


def cmd_image_rm(st, args, g):
    opts, pos = parse_options(args, {}, {"--force": "force", "-f": "force", "--no-prune": "no_prune"},
                              "image rm", False)
    if not pos:
        raise Exit(1, '"docker image rm" requires at least 1 argument.')
    failed = False
    for ref in pos:
        i = st.image(ref)
        if i is None:
            sys.stderr.write("Error: No such image: %s\n" % ref)
            failed = True
            continue
        users = [c for c in st.containers.values() if c["Image"] == i["Id"]]
        running = [c for c in users if c["State"] == "running"]
        if running or (users and not opts.get("force")):
            c = (running or users)[0]
            sys.stderr.write("Error response from daemon: conflict: unable to delete %s (%s) - image is being "
                             "used by %s container %s\n" % (i["Id"][7:19], "cannot be forced" if running else
                                                            "must be forced", c["State"] if running else "stopped",
                                                            c["Id"][:12]))
            failed = True
            continue
        for name in i["RepoTags"] + i["RepoDigests"]:
            print("Untagged: " + name)
        print("Deleted: " + i["Id"])
        del st.images[i["Id"]]
        st.dirty = True
    if failed:
        raise Exit(1)


def cmd_images(st, args, g):
    opts, pos = parse_options(args, {}, {"--quiet": "quiet", "-q": "quiet", "--all": "all", "-a": "all",
                                         "--no-trunc": "no_trunc"}, "images", False)
    if pos:
        unsupported("`docker images REPOSITORY`")
    imgs = sorted(st.images.values(), key=lambda i: -i["Created"])
    if opts.get("quiet"):
        for i in imgs:
            print(i["Id"] if opts.get("no_trunc") else i["Id"][7:19])
        return
    print("REPOSITORY   TAG   IMAGE ID   CREATED   SIZE")
    for i in imgs:
        for name in i["RepoTags"] or ["<none>:<none>"]:
            repo, _, tag = name.rpartition(":")
            print("%s   %s   %s   %s   0B" % (repo, tag, i["Id"][7:19],
                                             human_duration(time.time() - i["Created"]) + " ago"))


def management(table, group):
    def handler(st, args, g):
        if not args or args[0] not in table:
            unsupported("`docker %s %s`" % (group, args[0] if args else ""))
        return table[args[0]](st, args[1:], g)
    return handler


CONTAINER_CMDS = {
    "create": cmd_create, "run": cmd_run, "start": cmd_start, "stop": cmd_stop, "rm": cmd_rm,
    "remove": cmd_rm, "update": cmd_update, "rename": cmd_rename, "logs": cmd_logs, "port": cmd_port,
    "ps": cmd_ps, "ls": cmd_ps, "list": cmd_ps,
    "inspect": lambda st, a, g: inspect(st, a, g, ["container"], "container inspect"),
}
IMAGE_CMDS = {
    "inspect": lambda st, a, g: inspect(st, a, g, ["image"], "image inspect"),
    "rm": cmd_image_rm, "remove": cmd_image_rm, "pull": cmd_pull, "ls": cmd_images, "list": cmd_images,
}
COMMANDS = dict(CONTAINER_CMDS)
COMMANDS.update({
    "version": cmd_version, "info": cmd_info, "pull": cmd_pull, "login": cmd_login,
    "inspect": cmd_inspect, "rmi": cmd_image_rm, "images": cmd_images,
    "container": management(CONTAINER_CMDS, "container"), "image": management(IMAGE_CMDS, "image"),
})
STATELESS = ("version",)


def main(argv):
    try:
        line = "%.9f docker %s\n" % (time.time(), " ".join(argv))
        with open(CALLS_LOG, "a") as f:
            f.write(line)
    except OSError:
        pass
    if SLEEP_MS > 0:
        time.sleep(SLEEP_MS / 1000.0)
    g = {}
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        a = argv[i]
        if a in ("--config",) and i + 1 < len(argv):
            g["config"] = argv[i + 1]
            i += 2
        elif a.startswith("--config="):
            g["config"] = a.split("=", 1)[1]
            i += 1
        elif a in ("--log-level", "-l") and i + 1 < len(argv):
            i += 2
        elif a in ("-D", "--debug") or a.startswith("--log-level="):
            i += 1
        elif a in ("-v", "--version"):
            print("Docker version %s, build hoist-fleet-stub" % VERSION)
            return 0
        else:
            unsupported("the global option %s" % a)
    if i >= len(argv):
        unsupported("`docker` without a command")
    command, args = argv[i], argv[i + 1:]
    handler = COMMANDS.get(command)
    if handler is None:
        unsupported("`docker %s`" % command)
    if command in STATELESS:
        handler(None, args, g)
        return 0
    st = State()
    try:
        handler(st, args, g)
    finally:
        st.save()
    return 0


if __name__ == "__main__":
    try:
        code = main(sys.argv[1:])
    except Exit as e:
        sys.stdout.flush()
        if e.message:
            sys.stderr.write(e.message + "\n")
        code = e.code
    sys.stdout.flush()
    sys.exit(code)
