#!/usr/bin/env python3
"""Deploys under load: blue-green (two-phase and one-phase rollouts) beside recreate.

Brings up an emulated fleet of three instances (each with its own Docker engine and its own
nginx), then for each variant runs N consecutive deploys of the example app alternating two
versions while one client per instance requests /version back to back. Prints, per variant:
deploys and how many succeeded, requests sent, requests failed (connection error or non-2xx),
the mixed-version window (how long the fleet served two versions during a deploy: as hoist's
report measures it from the hosts' switch times, and as the clients saw it, from the first
instance's first answer of the new version to the last one's), and per instance the versions
observed over time. Tears the fleet down at the end.

    sudo bench/deploy_under_load.py [--deploys 10] [--max-concurrency 3]

Needs what `sudo tests/run` installs, and `cargo build --workspace` (hoist and hoist-fleet in
target/debug). Prints numbers; it asserts nothing.
"""

import argparse
import http.client
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOIST = os.path.join(ROOT, "target/debug/hoist")
FLEET = os.path.join(ROOT, "target/debug/hoist-fleet")
SECRET = "bench-secret-0123456789"


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


class Client(threading.Thread):
    """Requests /version on one address back to back until stopped."""

    def __init__(self, address, port):
        super().__init__(daemon=True)
        self.address, self.port = address, port
        self.stop = threading.Event()
        self.sent = 0
        self.failed = 0
        self.timeline = []  # (seconds since start, version) at each change
        self.start_time = time.monotonic()

    def run(self):
        while not self.stop.is_set():
            self.sent += 1
            try:
                conn = http.client.HTTPConnection(self.address, self.port, timeout=5)
                conn.request("GET", "/version", headers={"Connection": "close"})
                resp = conn.getresponse()
                body = resp.read().decode(errors="replace").strip()
                conn.close()
                if not 200 <= resp.status < 300:
                    self.failed += 1
                    continue
                if not self.timeline or self.timeline[-1][1] != body:
                    self.timeline.append((time.monotonic() - self.start_time, body))
            except (OSError, http.client.HTTPException):
                # Refused, reset, cut short (IncompleteRead) or timed out: failed.
                self.failed += 1
            time.sleep(0.02)


def write_config(app_dir, name, strategy, rollout, version, port, concurrency):
    extra = ""
    if strategy == "blue-green":
        extra = "blue_green:\n  drain: 2s\n  post_switch_check: 3s\n"
    yaml = (
        f"app: {name}\nregion: us-east-1\nstrategy: {strategy}\nrollout: {rollout}\n"
        f"image:\n  repository: bench/{name}\n  build_args:\n    VERSION: \"{version}\"\n"
        f"targets:\n  tags:\n    Env: [test]\n  max_concurrency: \"{concurrency}\"\n"
        f"container:\n  port: 8080\n  publish: {port}\n  stop_timeout: 2s\n"
        "healthcheck:\n  path: /healthz\n  interval: 1s\n  timeout: 20s\n"
        f"{extra}"
        "env:\n  clear:\n    GREETING: hi\n  secret: [HELLO_API_TOKEN]\n"
    )
    with open(os.path.join(app_dir, "hoist.yaml"), "w") as f:
        f.write(yaml)
    run(["git", "-C", app_dir, "add", "-A"])
    run(["git", "-C", app_dir, "commit", "-qm", f"{strategy} {version}"])


def observed_windows(clients, versions):
    """Per deploy: from the first instance's first answer of its new version to the last
    instance's (None when an instance never answered it)."""
    windows = []
    for version in versions:
        firsts = [next((t for t, v in c.timeline if v == version), None) for c in clients]
        if None in firsts:
            windows.append(None)
        else:
            windows.append(max(firsts) - min(firsts))
    return windows


def bench(strategy, rollout, port, deploys, env, instances, workdir, concurrency):
    name = f"bench-{strategy}-{rollout}"
    app_dir = os.path.join(workdir, name)
    shutil.copytree(os.path.join(ROOT, "examples/hello"), app_dir)
    run(["git", "-C", app_dir, "init", "-q", "-b", "main"])
    run(["git", "-C", app_dir, "-c", "user.name=bench", "-c", "user.email=b@b", "commit",
         "--allow-empty", "-qm", "init"])
    run(["git", "-C", app_dir, "config", "user.name", "bench"])
    run(["git", "-C", app_dir, "config", "user.email", "bench@example.com"])
    write_config(app_dir, name, strategy, rollout, "A-0", port, concurrency)
    deploy_env = dict(env, HELLO_API_TOKEN=SECRET, CI="true")
    subprocess.run([HOIST, "deploy"], cwd=app_dir, env=deploy_env, check=True,
                   capture_output=True)
    clients = [Client(i["address"], port) for i in instances]
    for c in clients:
        c.start()
    ok = 0
    seconds = []
    reported = []  # hoist's mixed-version window of each deploy, in seconds
    versions = []
    for n in range(1, deploys + 1):
        version = f"{'B' if n % 2 else 'A'}-{n}"
        versions.append(version)
        write_config(app_dir, name, strategy, rollout, version, port, concurrency)
        started = time.monotonic()
        done = subprocess.run([HOIST, "deploy", "--format", "json"], cwd=app_dir,
                              env=deploy_env, capture_output=True, text=True)
        seconds.append(time.monotonic() - started)
        ok += done.returncode == 0
        try:
            window = json.loads(done.stdout).get("mixed_version_window_ms")
        except ValueError:
            window = None
        if window is not None:
            reported.append(window / 1000.0)
        if done.returncode != 0:
            print(f"  {strategy} {rollout} deploy {n} exited {done.returncode}:\n"
                  f"{done.stderr[-2000:]}", file=sys.stderr)
    time.sleep(1)
    for c in clients:
        c.stop.set()
    for c in clients:
        c.join()
    seen = [w for w in observed_windows(clients, versions) if w is not None]
    return {
        "strategy": strategy if strategy == "recreate" else f"{strategy} {rollout}",
        "reported_windows": reported,
        "observed_windows": seen,
        "deploys": deploys,
        "ok": ok,
        "deploy_seconds": sum(seconds) / len(seconds),
        "sent": sum(c.sent for c in clients),
        "failed": sum(c.failed for c in clients),
        "instances": [
            {"address": c.address, "sent": c.sent, "failed": c.failed,
             "timeline": c.timeline}
            for c in clients
        ],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deploys", type=int, default=10)
    parser.add_argument("--max-concurrency", default="3",
                        help="targets.max_concurrency of every variant (a one-phase rollout "
                             "deploys that many hosts at a time; a two-phase one switches them)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("deploy_under_load: run as root (sudo), like tests/run")
    for exe in (HOIST, FLEET):
        if not os.access(exe, os.X_OK):
            sys.exit(f"deploy_under_load: {exe} is missing; run `cargo build --workspace`")
    run(["bash", os.path.join(ROOT, "tests/support/base-image.sh")])
    workdir = tempfile.mkdtemp(prefix="hoist-bench-")
    fleet_dir = os.path.join("/var/tmp", f"hoist-bench-{os.getpid()}")
    up = run([FLEET, "up", "--instances", "3", "--format", "json", "--dir", fleet_dir])
    try:
        env = dict(os.environ)
        env.update(json.loads(up.stdout)["env"])
        with open(os.path.join(fleet_dir, "world.json")) as f:
            instances = json.load(f)["instances"]
        c = args.max_concurrency
        results = [
            bench("blue-green", "two-phase", 8080, args.deploys, env, instances, workdir, c),
            bench("blue-green", "one-phase", 7070, args.deploys, env, instances, workdir, c),
            bench("recreate", "one-phase", 9090, args.deploys, env, instances, workdir, c),
        ]
    finally:
        subprocess.run([FLEET, "down", "--dir", fleet_dir], capture_output=True)
        shutil.rmtree(workdir, ignore_errors=True)

    cpus = os.cpu_count()
    print(f"\nmachine: {platform.node()} {platform.machine()}, {cpus} CPUs, "
          f"{platform.system()} {platform.release()}")
    print(f"{args.deploys} consecutive deploys per variant, 3 instances, max concurrency "
          f"{args.max_concurrency}, one client per instance requesting /version back to back "
          "(20 ms apart)\n")
    print(f"{'variant':<21} {'deploys ok':>10} {'s/deploy':>9} {'requests':>9} "
          f"{'failed':>7} {'failed %':>9}")
    for r in results:
        pct = 100.0 * r["failed"] / max(r["sent"], 1)
        print(f"{r['strategy']:<21} {r['ok']:>4} of {r['deploys']:<3} "
              f"{r['deploy_seconds']:>9.1f} {r['sent']:>9} {r['failed']:>7} {pct:>8.2f}%")
    two, one, rc = results
    print(f"\nfailed requests, recreate : blue-green two-phase : blue-green one-phase = "
          f"{rc['failed']} : {two['failed']} : {one['failed']}")

    def stats(ws):
        if not ws:
            return "n/a"
        return f"mean {sum(ws) / len(ws):.2f} s, max {max(ws):.2f} s ({len(ws)} deploys)"

    print("\nmixed-version window (the fleet serving two versions during a deploy)")
    for r in (two, one):
        print(f"  {r['strategy']:<21} reported by hoist: {stats(r['reported_windows'])}; "
              f"seen by the clients: {stats(r['observed_windows'])}")
    print(f"  {'recreate':<21} seen by the clients: {stats(rc['observed_windows'])}")
    for r in results:
        print(f"\n{r['strategy']}: versions observed per instance (s: version)")
        for i in r["instances"]:
            line = " ".join(f"{t:.0f}:{v}" for t, v in i["timeline"])
            print(f"  {i['address']}: {i['sent']} sent, {i['failed']} failed; {line}")


if __name__ == "__main__":
    main()
