#!/usr/bin/env python3
"""hoist against the pipeline it replaces, side by side, on the emulated fleet.

One command: brings up an emulated fleet (three instances, each its own Docker engine), then
runs every scenario several times in alternating rounds (pipeline, hoist, pipeline, hoist…),
each deploy a new commit of the example app:

  * bench/pipeline.sh (registry login, docker build, push, `aws ssm send-command` with the
    pull-and-run commands, `aws ssm wait command-executed`, `get-command-invocation`) against
    `hoist deploy`, on 1 and 3 instances, on fresh hosts (nothing running, image not pulled)
    and replacing a running container, with the same builder on both sides (BuildKit, and
    the classic one) and with each one's default (the docker CLI 23+ builds with BuildKit
    only through the buildx plugin, else with the classic builder; hoist's `auto` asks the
    engine's API for BuildKit);
  * hoist's own timeline per deploy, from its JSON report: build, push, the slowest
    instance's script, and the rest (hoist's overhead = wall - build - push - slowest script);
  * the control plane with light instances (a stateful docker stub, no engine): N = 1, 10,
    50, 200, with the API answering at once and with 50 ms of latency: wall time and hoist's
    API calls per operation, from the fleet's journal;
  * the CLI: `--version`, `validate` and `plan`, median time and peak memory, and the
    binary's size (debug, and the release profile's, stripped, when target/release/hoist
    is built).

Writes bench/RESULTS.md (median, min, max, the machine, the command) and prints it.

    sudo bench/speed.py [--rounds 3] [--quick] [--light 1,10,50,200]

Needs what `sudo tests/run` installs, and `cargo build --workspace` (hoist and hoist-fleet in
target/debug). Measures; asserts nothing.
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOIST = os.path.join(ROOT, "target/debug/hoist")
FLEET = os.path.join(ROOT, "target/debug/hoist-fleet")
PIPELINE = os.path.join(ROOT, "bench/pipeline.sh")
SECRET = "bench-secret-0123456789"


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


class App:
    """A scratch git copy of examples/hello; each deploy commits a new VERSION."""

    def __init__(self, workdir, name, port, builder):
        self.name, self.port, self.builder = name, port, builder
        self.dir = os.path.join(workdir, name)
        shutil.copytree(os.path.join(ROOT, "examples/hello"), self.dir)
        run(["git", "-C", self.dir, "init", "-q", "-b", "main"])
        run(["git", "-C", self.dir, "config", "user.name", "bench"])
        run(["git", "-C", self.dir, "config", "user.email", "bench@example.com"])
        self.n = 0

    def commit(self, targets):
        """A new commit: a new VERSION (the image's last layer changes) and the targets."""
        self.n += 1
        self.version = f"{self.name}-{self.n}-{time.time_ns()}"
        ids = "".join(f"\n    - {i}" for i in targets)
        yaml = (
            f"app: {self.name}\nregion: us-east-1\n"
            f"image:\n  repository: bench/{self.name}\n"
            f"  builder: {'auto' if self.builder == 'default' else self.builder}\n"
            f"  build_args:\n    VERSION: \"{self.version}\"\n"
            f"targets:\n  instance_ids:{ids}\n  max_concurrency: \"100%\"\n"
            f"container:\n  port: 8080\n  publish: {self.port}\n  stop_timeout: 2s\n"
            "healthcheck:\n  path: /healthz\n  interval: 1s\n  timeout: 20s\n"
            "env:\n  secret: [HELLO_API_TOKEN]\n"
        )
        with open(os.path.join(self.dir, "hoist.yaml"), "w") as f:
            f.write(yaml)
        run(["git", "-C", self.dir, "add", "-A"])
        run(["git", "-C", self.dir, "commit", "-qm", self.version])
        return run(["git", "-C", self.dir, "rev-parse", "HEAD"]).stdout.strip()


def clean_instance(inst, apps):
    """Fresh host: no container, image or hoist state of these apps."""
    docker = ["docker", "-H", inst["docker_host"]]
    for app in apps:
        ids = subprocess.run(docker + ["ps", "-aq", "--filter", f"label=hoist.app={app}"],
                             capture_output=True, text=True).stdout.split()
        ids += subprocess.run(docker + ["ps", "-aq", "--filter", f"name=^{app}$"],
                              capture_output=True, text=True).stdout.split()
        if ids:
            subprocess.run(docker + ["rm", "-f"] + ids, capture_output=True)
        listed = subprocess.run(docker + ["images", "--format", "{{.Repository}} {{.ID}}"],
                                capture_output=True, text=True).stdout.splitlines()
        images = {line.split()[1] for line in listed
                  if line.split()[0].endswith(f"/bench/{app}")}
        if images:
            subprocess.run(docker + ["rmi", "-f"] + sorted(images), capture_output=True)
        shutil.rmtree(os.path.join(inst["root"], "hoist", app), ignore_errors=True)


def deploy_hoist(app, env, targets, new_commit=True):
    if new_commit:
        app.commit(targets)
    started = time.monotonic()
    done = subprocess.run([HOIST, "deploy", "--format", "json"], cwd=app.dir, env=env,
                          capture_output=True, text=True)
    wall = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"hoist deploy exited {done.returncode}:\n{done.stderr[-3000:]}")
    report = json.loads(done.stdout)
    by_kind = {}
    for step in report["steps"]:
        by_kind[step["step"]] = by_kind.get(step["step"], 0) + step["duration_ms"] / 1000
    scripts = [inv["duration"] / 1000 for p in report["phases"] for inv in p["invocations"]]
    build, push = by_kind.get("build", 0.0), by_kind.get("push", 0.0)
    slowest = max(scripts) if scripts else 0.0
    timings = report.get("timings", {})
    outcomes = [inv.get("outcome") for p in report["phases"][-1:] for inv in p["invocations"]]
    return {
        "unchanged": sum(1 for o in outcomes if o == "unchanged"),
        "wall": wall,
        "build": build,
        "push": push,
        "script": slowest,
        "overhead": wall - build - push - slowest,
        # hoist's own account (from the command's start, after the process is up).
        "own_overhead": timings.get("overhead_ms", 0) / 1000,
        "before_steps": timings.get("before_steps_ms", 0) / 1000,
    }


def deploy_pipeline(app, env, targets, registry, new_commit=True):
    if new_commit:
        app.commit(targets)
    penv = dict(env, REGISTRY=registry, REPO=f"bench/{app.name}", TAG=app.version,
                VERSION=app.version, CONTEXT=app.dir, INSTANCE_IDS=" ".join(targets),
                APP=app.name, PORT=str(app.port), SECRET_NAME="HELLO_API_TOKEN",
                SECRET_VALUE=SECRET, BUILDER=app.builder,
                DOCKER=BUILDKIT_CLIENT if app.builder == "buildkit" else "docker")
    started = time.monotonic()
    done = subprocess.run(["bash", PIPELINE], env=penv, capture_output=True, text=True)
    wall = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"pipeline exited {done.returncode}:\n{done.stderr[-3000:]}"
                           f"\n{done.stdout[-2000:]}")
    return {"wall": wall}


def buildkit_client():
    """A docker CLI that builds with BuildKit under DOCKER_BUILDKIT=1: one with the buildx
    plugin, or one older than 23 (its BuildKit client is built in), as Debian 12's."""
    for client in ("docker", "/usr/bin/docker", "/usr/local/bin/docker"):
        if not shutil.which(client):
            continue
        if subprocess.run([client, "buildx", "version"], capture_output=True).returncode == 0:
            return client
        version = subprocess.run([client, "version", "--format", "{{.Client.Version}}"],
                                 capture_output=True, text=True).stdout.strip()
        try:
            if int(version.split(".")[0]) < 23:
                return client
        except ValueError:
            pass
    return None


BUILDKIT_CLIENT = None
SAME_COMMIT = "SAME-COMMIT"


def control_plane(workdir, sizes, latencies):
    """Light instances (a stateful docker stub, no engine): hoist's wall time and the API calls
    it makes per operation, at each size, with the API answering at once and with latency."""
    rows = []
    for latency in latencies:
        for n in sizes:
            fleet_dir = os.path.join("/var/tmp", f"hoist-speed-light-{os.getpid()}-{n}")
            print(f"control plane: {n} light instance(s), {latency} ms API latency",
                  file=sys.stderr)
            up = run([FLEET, "up", "--instances", "0", "--light", str(n), "--format", "json",
                      "--dir", fleet_dir])
            try:
                env = dict(os.environ)
                env.update(json.loads(up.stdout)["env"])
                env["CI"] = "true"
                if latency:
                    run([FLEET, "fault", "--dir", fleet_dir, "latency", "*", str(latency)])
                app = App(workdir, f"light-{n}-{latency}", 8080, "default")
                app.n += 1
                yaml = (
                    f"app: {app.name}\nregion: us-east-1\n"
                    f"image:\n  repository: bench/{app.name}\n"
                    "targets:\n  tags:\n    Env: [light]\n  max_concurrency: \"100%\"\n"
                    "container:\n  port: 8080\n  publish: 8080\n  stop_timeout: 2s\n"
                    "healthcheck:\n  interval: 1s\n  timeout: 30s\n"
                )
                with open(os.path.join(app.dir, "hoist.yaml"), "w") as f:
                    f.write(yaml)
                run(["git", "-C", app.dir, "add", "-A"])
                run(["git", "-C", app.dir, "commit", "-qm", "light"])
                journal = os.path.join(fleet_dir, "run/journal.jsonl")
                before = sum(1 for _ in open(journal)) if os.path.exists(journal) else 0
                started = time.monotonic()
                done = subprocess.run([HOIST, "deploy", "--format", "json"], cwd=app.dir,
                                      env=env, capture_output=True, text=True)
                wall = time.monotonic() - started
                report = json.loads(done.stdout) if done.stdout.strip() else {}
                calls = {}
                with open(journal) as f:
                    for i, line in enumerate(f):
                        if i < before:
                            continue
                        call = json.loads(line)
                        if call.get("caller") == env.get("AWS_ACCESS_KEY_ID"):
                            op = call.get("operation", "?")
                            calls[op] = calls.get(op, 0) + 1
                rows.append({"n": n, "latency": latency, "wall": wall,
                             "ok": done.returncode == 0,
                             "deployed": report.get("deployed", 0), "calls": calls})
            finally:
                subprocess.run([FLEET, "down", "--dir", fleet_dir], capture_output=True)
    return rows


def stats(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def fmt(s):
    return f"{s['median']:.1f} ({s['min']:.1f}–{s['max']:.1f})"


def cli_costs():
    """Median wall time and peak memory of quick commands, and the binary's size."""
    example = os.path.join(ROOT, "examples/hello/hoist.yaml")
    out = {}
    for label, args in [("--version", ["--version"]),
                        ("validate", ["validate", "-f", example]),
                        ("plan", ["plan", "-f", example])]:
        times = []
        for _ in range(15):
            started = time.monotonic()
            subprocess.run([HOIST] + args, capture_output=True, cwd=ROOT)
            times.append(time.monotonic() - started)
        # Peak memory of the command alone: measured in a child of its own.
        peak = run([sys.executable, "-c",
                    "import resource, subprocess, sys\n"
                    "subprocess.run(sys.argv[1:], capture_output=True)\n"
                    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)",
                    HOIST] + args, cwd=ROOT).stdout.strip()
        out[label] = {"ms": statistics.median(times) * 1000, "peak_kib": int(peak)}
    sizes = {"debug": os.path.getsize(HOIST)}
    release = os.path.join(ROOT, "target/release/hoist")
    if os.path.exists(release):
        sizes["release"] = os.path.getsize(release)
    out["sizes"] = sizes
    return out


def headline(results):
    """The ratios that matter, in words: one instance replacing a running container, per
    builder, and the overhead against its 300 ms target."""
    ratio = {}
    for row in results:
        if row["instances"] == 1 and row["state"] == "replacing":
            p = statistics.median(d["wall"] for d in row["pipeline"])
            h = statistics.median(d["wall"] for d in row["hoist"])
            ratio[row["builder"]] = h / p
    words = {"buildkit": "BuildKit on both sides", "classic": "the classic builder on both sides",
             "default": "each one's default builder"}
    parts = [f"**{ratio[b]:.2f}×** with {words[b]}" for b in ("buildkit", "classic", "default")
             if b in ratio]
    overheads = [d["overhead"] for row in results for d in row["hoist"]]
    text = ("**Headline** — hoist's wall time as a share of the pipeline's, one instance "
            "replacing a running container: " + ", ".join(parts) + " (target: at most 0.5×).")
    if overheads:
        text += (f" hoist's overhead: median {statistics.median(overheads) * 1000:.0f} ms over "
                 f"every deploy, {min(overheads) * 1000:.0f}–{max(overheads) * 1000:.0f} ms "
                 "(target: under 300 ms).")
    return text


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true",
                        help="one instance, replacing, the classic builder (a first look)")
    parser.add_argument("--out", default=os.path.join(ROOT, "bench/RESULTS.md"))
    parser.add_argument("--light", default="1,10,50,200",
                        help="light-instance counts for the control plane ('' to skip)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("speed: run as root (sudo), like tests/run")
    for exe in (HOIST, FLEET):
        if not os.access(exe, os.X_OK):
            sys.exit(f"speed: {exe} is missing; run `cargo build --workspace`")
    run(["bash", os.path.join(ROOT, "tests/support/base-image.sh")])
    workdir = tempfile.mkdtemp(prefix="hoist-speed-")
    fleet_dir = os.path.join("/var/tmp", f"hoist-speed-{os.getpid()}")
    up = run([FLEET, "up", "--instances", "3", "--format", "json", "--dir", fleet_dir])
    results = []
    try:
        env = dict(os.environ)
        env.update(json.loads(up.stdout)["env"])
        env.update(HELLO_API_TOKEN=SECRET, CI="true")
        registry = env["HOIST_FLEET_REGISTRY"]
        with open(os.path.join(fleet_dir, "world.json")) as f:
            instances = json.load(f)["instances"]
        # The same builder on both sides: BuildKit (with a docker CLI that can: the buildx
        # plugin, or a client older than 23) and the classic one. And each one's default
        # beside them.
        global BUILDKIT_CLIENT
        BUILDKIT_CLIENT = buildkit_client()
        builders = ["classic"] if args.quick else ["buildkit", "classic", "default"]
        if BUILDKIT_CLIENT is None and "buildkit" in builders:
            print("speed: no docker CLI here builds with BuildKit: BuildKit on both sides "
                  "is left out", file=sys.stderr)
            builders.remove("buildkit")
        sizes = [1] if args.quick else [1, 3]
        states = ["replacing"] if args.quick else ["fresh", "replacing"]
        # The same commit again (hoist: `unchanged` on every host; the pipeline replaces the
        # container whatever it runs), with each one's default builder.
        port = 18100
        for builder in builders:
            for size in sizes:
                on = instances[:size]
                targets = [i["id"] for i in on]
                port += 2
                pipe = App(workdir, f"pipe-{builder}-{size}", port, builder)
                mine = App(workdir, f"hoist-{builder}-{size}", port + 1, builder)
                # Both start from a deployed state (and the registry holds a base layer).
                deploy_pipeline(pipe, env, targets, registry)
                deploy_hoist(mine, env, targets)
                for state in states:
                    row = {"builder": builder, "instances": size, "state": state,
                           "pipeline": [], "hoist": []}
                    for r in range(args.rounds):
                        print(f"{builder} {size} instance(s) {state}: round {r + 1}",
                              file=sys.stderr)
                        if state == "fresh":
                            for inst in on:
                                clean_instance(inst, [pipe.name, mine.name])
                        row["pipeline"].append(deploy_pipeline(pipe, env, targets, registry))
                        if state == "fresh":
                            for inst in on:
                                clean_instance(inst, [pipe.name, mine.name])
                        row["hoist"].append(deploy_hoist(mine, env, targets))
                    results.append(row)
                if builder == "default":
                    row = {"builder": builder, "instances": size, "state": "same commit again",
                           "pipeline": [], "hoist": []}
                    for r in range(args.rounds):
                        print(f"{builder} {size} instance(s) same commit: round {r + 1}",
                              file=sys.stderr)
                        row["pipeline"].append(
                            deploy_pipeline(pipe, env, targets, registry, new_commit=False))
                        row["hoist"].append(deploy_hoist(mine, env, targets, new_commit=False))
                    results.append(row)
        cli = cli_costs()
    finally:
        subprocess.run([FLEET, "down", "--dir", fleet_dir], capture_output=True)
    try:
        sizes = [int(n) for n in args.light.split(",") if n]
        light = control_plane(workdir, sizes, [0, 50]) if sizes else []
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    docker_version = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"],
                                    capture_output=True, text=True).stdout.strip()
    lines = [
        "# hoist against the pipeline it replaces",
        "",
        f"Made by `sudo bench/speed.py --rounds {args.rounds}{' --quick' if args.quick else ''}`"
        f" on {time.strftime('%Y-%m-%d')}: {platform.machine()}, {os.cpu_count()} CPUs, "
        f"{platform.system()} {platform.release()}, Docker {docker_version}, the emulated "
        "fleet (each instance its own dockerd; the AWS API emulated, with its eventual "
        "consistency). Seconds: median (min–max) of the rounds; pipeline and hoist alternate, "
        "each deploy a new commit of examples/hello.",
        "",
        "HEADLINE",
        "",
        "| builder | instances | hosts | pipeline s | hoist s | hoist / pipeline | "
        "hoist: build | push | slowest script | overhead | of it, before the steps |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in results:
        p = stats([d["wall"] for d in row["pipeline"]])
        h = stats([d["wall"] for d in row["hoist"]])
        part = {k: stats([d[k] for d in row["hoist"]]) for k in
                ("build", "push", "script", "overhead")}
        lines.append(
            f"| {row['builder']} | {row['instances']} | {row['state']} | {fmt(p)} | {fmt(h)} | "
            f"**{h['median'] / p['median']:.2f}×** | {part['build']['median']:.1f} | "
            f"{part['push']['median']:.1f} | {part['script']['median']:.1f} | "
            f"{part['overhead']['median'] * 1000:.0f} ms | "
            f"{statistics.median(d['before_steps'] for d in row['hoist']) * 1000:.0f} ms |")
    lines += [
        "",
        SAME_COMMIT,
        "",
        "hoist's overhead is the deploy's wall time, measured outside it, less its build, "
        "push and slowest instance's script (from `hoist deploy --format json`): starting, "
        "planning, preflight, ECR and SSM calls, noticing the end of the scripts, fetching "
        "their output. 'Before the steps' is the part spent on the engine's ping, preflight "
        "and the registry login, which run at once. hoist's own account of its overhead (its "
        "report's `timings`, from the command's start) is in the per-deploy table.",
        "",
        "## Per deploy",
        "",
        "| builder | instances | hosts | round | pipeline s | hoist s | overhead ms | "
        "hoist's own account ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in results:
        for n, (p, h) in enumerate(zip(row["pipeline"], row["hoist"]), 1):
            lines.append(f"| {row['builder']} | {row['instances']} | {row['state']} | {n} | "
                         f"{p['wall']:.1f} | {h['wall']:.1f} | {h['overhead'] * 1000:.0f} | "
                         f"{h['own_overhead'] * 1000:.0f} |")
    if light:
        lines += [
            "",
            "## The control plane at scale",
            "",
            "Light instances (a stateful `docker` stub instead of an engine: the real scripts "
            "run, nothing is pulled or started), one deploy each, `max_concurrency: 100%`. "
            "hoist's API calls from the fleet's journal.",
            "",
            "| instances | API latency | wall s | deployed | SendCommand | "
            "ListCommandInvocations | GetCommandInvocation | all calls |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in light:
            c = r["calls"]
            lines.append(
                f"| {r['n']} | {r['latency']} ms | {r['wall']:.1f} | "
                f"{r['deployed']}{'' if r['ok'] else ' (failed)'} | "
                f"{c.get('SendCommand', 0)} | {c.get('ListCommandInvocations', 0)} | "
                f"{c.get('GetCommandInvocation', 0)} | {sum(c.values())} |")
    lines += ["", "## The CLI", "", "| command | median ms | peak memory KiB |", "|---|---|---|"]
    for label in ("--version", "validate", "plan"):
        lines.append(f"| `hoist {label}` | {cli[label]['ms']:.1f} | {cli[label]['peak_kib']} |")
    lines.append("")
    for profile, size in cli["sizes"].items():
        what = "release profile, stripped, thin LTO" if profile == "release" else "debug profile"
        lines.append(f"Binary ({what}): {size / 1e6:.1f} MB.")
    lines[lines.index("HEADLINE")] = headline(results)
    again = [row for row in results if row["state"] == "same commit again"]
    lines[lines.index(SAME_COMMIT)] = (
        "'Same commit again': hoist reported `unchanged` on "
        + ", ".join(f"{min(d['unchanged'] for d in row['hoist'])} of {row['instances']}"
                    for row in again)
        + " hosts in every round (it left their containers alone); the pipeline replaced "
        "them." if again else "")
    text = "\n".join(lines) + "\n"
    with open(args.out, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
