#!/usr/bin/env python3
"""The performance suite: every contestant sends the same N subscribe messages,
one grant per message, to a fixed-answer nginx and to the WeChat sandbox, in
one run; then the in-process hot path and the token fetches of 16 processes
over a simulated token lifetime. Writes results.json and results.md to --out.

    bench/run.py                # what `make bench` runs (release build)
    bench/run.py --smoke        # tiny N, debug build: proves the script runs

Needs (scripts/deps.sh bench): nginx, wrk, php-cli with FFI and curl,
python3-venv. The wechatpy virtualenv is made under the target directory from
PyPI on first use. Every server listens on 127.0.0.1 only.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
APPID = "wxbench000000001"
SECRET = "bench-app-secret-0001"
TEMPLATE = "_uwlWXxdjm2IogKR7PfhIg8Ez9oP0ZV1YgHNMqhQY_C"
# A token of WeChat's length, for wrk and the fixed-answer server.
FIXED_TOKEN = "92_" + "F" * 133
SUBSCRIBE_PATH = "/cgi-bin/message/subscribe/send"
# Grants for wrk's one user in the sandbox: more than it can send in its time.
WRK_GRANTS = 20_000_000


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# builds and tools


def cargo_build(profile):
    """Builds the library, the sandbox and the send worker; returns their paths."""
    cmd = ["cargo", "build", "--workspace", "--lib", "--bins", "--bench", "send",
           "--bench", "hotpath", "--message-format=json-render-diagnostics"]
    if profile == "release":
        cmd.insert(2, "--release")
    out = subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True).stdout
    found = {}
    for line in out.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("reason") != "compiler-artifact":
            continue
        name = msg["target"]["name"]
        if msg.get("executable"):
            found[name] = msg["executable"]
        for f in msg.get("filenames", []):
            if f.endswith("libfashop_notify.so"):
                found["lib"] = f
    for need in ("lib", "fashop-notify-sandbox", "send", "hotpath"):
        if need not in found:
            sys.exit("bench: cargo did not report the artifact %r" % need)
    return found


def wechatpy_python(target_dir):
    """The virtualenv with wechatpy, made from PyPI on first use."""
    venv = os.path.join(target_dir, "bench", "venv")
    py = os.path.join(venv, "bin", "python")
    probe = [py, "-c", "import wechatpy"]
    if os.path.exists(py) and subprocess.run(probe, capture_output=True).returncode == 0:
        return py
    log("making the wechatpy virtualenv in " + venv)
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    # wechatpy refuses to import without one of its two crypto back ends.
    subprocess.run([py, "-m", "pip", "install", "--quiet", "wechatpy", "cryptography"], check=True)
    return py


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def wait_port(port, proc, what):
    deadline = time.time() + 20
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("%s exited with %s" % (what, proc.returncode))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("%s did not listen on %d" % (what, port))


def http_json(method, url, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


# --------------------------------------------------------------------------
# servers

NGINX_CONF = """\
worker_processes 2;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    default_type application/json;
    log_format token "$request_uri";
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location = /cgi-bin/stable_token {{
            access_log {tmp}/tokens.log token;
            return 200 '{{"access_token":"{token}","expires_in":7200}}';
        }}
        location = /cgi-bin/token {{
            access_log {tmp}/tokens.log token;
            return 200 '{{"access_token":"{token}","expires_in":7200}}';
        }}
        location = {send} {{
            return 200 '{{"errcode":0,"errmsg":"ok","msgid":3054713486963310592}}';
        }}
        location / {{
            return 200 '{{"errcode":40066,"errmsg":"invalid url"}}';
        }}
    }}
}}
"""


class Nginx:
    """Debian's nginx with fixed JSON answers; counts token requests in its log."""

    name = "nginx"

    def __init__(self, tmp):
        self.tmp = os.path.join(tmp, "nginx")
        os.makedirs(self.tmp)
        os.chmod(self.tmp, 0o755)
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        for _ in range(5):
            self.port = free_port()
            conf = os.path.join(self.tmp, "nginx.conf")
            with open(conf, "w") as f:
                f.write(NGINX_CONF.format(tmp=self.tmp, port=self.port, token=FIXED_TOKEN,
                                          send=SUBSCRIBE_PATH))
            self.proc = subprocess.Popen([nginx, "-p", self.tmp, "-e", self.tmp + "/error.log",
                                          "-c", conf, "-g", "daemon off;"],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                wait_port(self.port, self.proc, "nginx")
                break
            except RuntimeError:
                self.stop()
        else:
            raise RuntimeError("nginx did not start: see " + self.tmp + "/error.log")
        self.url = "http://127.0.0.1:%d" % self.port

    def prepare(self, grants):
        open(os.path.join(self.tmp, "tokens.log"), "a").close()
        self.token_mark = self._tokens()

    def token_fetches(self):
        # nginx logs a request after answering it: give the last line a moment.
        time.sleep(0.2)
        return self._tokens() - self.token_mark

    def _tokens(self):
        try:
            with open(os.path.join(self.tmp, "tokens.log")) as f:
                return sum(1 for _ in f)
        except FileNotFoundError:
            return 0

    def fixed_token(self):
        return FIXED_TOKEN

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class SandboxServer:
    """The WeChat sandbox binary; grants seeded through its control API."""

    name = "sandbox"

    def __init__(self, binary):
        self.proc = subprocess.Popen([binary, "--host", "127.0.0.1", "--port", "0",
                                      "--app", "%s:%s" % (APPID, SECRET)],
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        if not line.startswith("listening on http://127.0.0.1:"):
            raise RuntimeError("the sandbox did not start: %r" % line)
        self.url = line[len("listening on "):]

    def control(self, method, path, body=None):
        return http_json(method, self.url + "/sandbox/" + path, body)

    def prepare(self, grants):
        """Forgets the last run (tokens, grants, deliveries, counters) and seeds `grants`."""
        self.control("POST", "reset")
        for openid, count in grants.items():
            self.control("POST", "grants", {"appid": APPID, "openid": openid,
                                            "template_id": TEMPLATE, "count": count})

    def counters(self):
        return self.control("GET", "counters")["counters"]

    def token_fetches(self):
        fetched = self.counters().get("token_fetches", {}).get(APPID, {})
        return sum(fetched.values())

    def fixed_token(self):
        req = {"grant_type": "client_credential", "appid": APPID, "secret": SECRET}
        return http_json("POST", self.url + "/cgi-bin/stable_token", req)["access_token"]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def redis_binary(name):
    found = shutil.which(name) or ("/usr/bin/" + name if os.path.exists("/usr/bin/" + name) else None)
    if not found:
        raise RuntimeError("%s is missing: run scripts/deps.sh (redis-server, redis-tools)" % name)
    return found


class RedisNode:
    """Debian's redis-server on a free loopback port, no persistence (as the
    tests start it)."""

    def __init__(self, tmp, extra=(), cluster=False):
        self.port = free_port()
        # A cluster node also listens on its port + 10000 (the cluster bus).
        while cluster and (self.port > 55535 or not port_free(self.port + 10000)):
            self.port = free_port()
        self.dir = os.path.join(tmp, "redis-%d" % self.port)
        os.makedirs(self.dir)
        # It also listens on a Unix socket, as a server on the workers' host may.
        self.socket = os.path.join(self.dir, "redis.sock")
        self.proc = subprocess.Popen(
            [redis_binary("redis-server"), "--bind", "127.0.0.1", "--port", str(self.port),
             "--dir", self.dir, "--save", "", "--appendonly", "no", "--daemonize", "no",
             "--protected-mode", "yes", "--logfile", "",
             "--unixsocket", self.socket, "--unixsocketperm", "700"] + list(extra),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, self.proc, "redis-server")

    def cli(self, *args):
        return subprocess.run([redis_binary("redis-cli"), "-p", str(self.port)] + list(args),
                              check=True, stdout=subprocess.PIPE, text=True).stdout

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


class RedisStores:
    """A single Redis node and a Redis Cluster of three masters (no replicas,
    as the tests start it), started on first use; store specs with a prefix
    per contestant, so runs stay apart."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.single = None
        self.nodes = []

    def spec(self, cluster, prefix, unix=False):
        if cluster:
            if not self.nodes:
                self._start_cluster()
            hosts = ",".join("127.0.0.1:%d" % n.port for n in self.nodes)
            return "redis+cluster://%s/?prefix=%s:" % (hosts, prefix)
        if self.single is None:
            self.single = RedisNode(self.tmp)
        if unix:
            return "redis+unix://%s?db=0&prefix=%s:" % (self.single.socket, prefix)
        return "redis://127.0.0.1:%d/0?prefix=%s:" % (self.single.port, prefix)

    def _start_cluster(self):
        # One at a time into self.nodes, so that stop() stops those started
        # when a later one fails.
        for _ in range(3):
            self.nodes.append(RedisNode(self.tmp, ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                                                   "--cluster-node-timeout", "5000"], cluster=True))
        subprocess.run([redis_binary("redis-cli"), "--cluster", "create"]
                       + ["127.0.0.1:%d" % n.port for n in self.nodes]
                       + ["--cluster-replicas", "0", "--cluster-yes"],
                       check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        # The slot map spreads by gossip: wait until every node knows all three.
        deadline = time.time() + 30
        for n in self.nodes:
            while True:
                info = n.cli("cluster", "info")
                if "cluster_state:ok" in info and "cluster_known_nodes:3" in info:
                    break
                if time.time() > deadline:
                    raise RuntimeError("the Redis cluster never came up: " + info)
                time.sleep(0.05)

    def stop(self):
        for n in self.nodes + ([self.single] if self.single else []):
            n.stop()


# --------------------------------------------------------------------------
# contestants


def openid(worker, thread=0):
    return "oBench_%s_t%d" % (worker, thread)


class Run:
    """One contestant against one server: its workers and what they reported."""

    def __init__(self, key, label, workers, threads, per_thread, env=None):
        self.key, self.label = key, label
        self.workers = workers          # list of (worker id, argv)
        self.threads = threads
        self.per_thread = per_thread
        self.env = env


def worker_runs(cfg, server, n, procs, threads, phases=1, store="memory"):
    """The argv of each contestant's workers, keyed by contestant."""
    tmp, tools = cfg["tmp"], cfg["tools"]
    base = ["--api-base", server.url, "--appid", APPID, "--secret", SECRET,
            "--phases", str(phases)]
    runs = {}

    def per(total, count):
        return max(1, total // count)

    def build(key, label, cmd, procs, threads, extra=()):
        per_thread = per(n, procs * threads)
        workers = []
        for p in range(procs):
            wid = "%s%d" % (key.replace("-", "").replace("/", ""), p)
            argv = cmd + base + ["--worker", wid, "--per-thread", str(per_thread),
                                 "--lat-file", os.path.join(tmp, "lat-%s.txt" % wid)] + list(extra)
            if threads > 1 or key.startswith(("rust", "wechatpy")):
                argv += ["--threads", str(threads)]
            workers.append((wid, argv))
        runs[key] = Run(key, label, workers, threads, per_thread)

    php = ["php", "-d", "ffi.enable=1", "-d", "memory_limit=1G"]
    return runs, build, php, tools


def contestants(cfg, server, n):
    """The main table's contestants, in the order they run."""
    runs, build, php, tools = worker_runs(cfg, server, n, 1, 1)
    tmp = cfg["tmp"]
    sqlite = "sqlite:" + os.path.join(tmp, "ledger-%s.db" % server.name)
    build("rust/1t", "Rust, 1 thread, memory store", [tools["send"]], 1, 1)
    build("rust/8t", "Rust, 8 threads, memory store", [tools["send"]], 1, 8)
    ffi = php + [os.path.join(BENCH, "php", "ffi_send.php"), "--lib", tools["lib"]]
    build("php-ffi/1p-memory", "PHP FFI, 1 process, memory store", ffi, 1, 1)
    build("php-ffi/8p-memory", "PHP FFI, 8 processes, memory store each", ffi, 8, 1)
    build("php-ffi/1p-sqlite", "PHP FFI, 1 process, SQLite ledger", ffi, 1, 1,
          ["--store", sqlite + "-1p"])
    build("php-ffi/8p-sqlite", "PHP FFI, 8 processes, one SQLite ledger", ffi, 8, 1,
          ["--store", sqlite + "-8p"])
    redis = cfg["redis"]
    for cluster, unix, name, label in ((False, False, "redis", "Redis (single node)"),
                                       (False, True, "redis-unix", "Redis (single node, Unix socket)"),
                                       (True, False, "rcluster", "Redis Cluster (3 masters)")):
        for procs in (1, 8):
            key = "php-ffi/%dp-%s" % (procs, name)
            # The smoke proves the rows run: against one server is enough.
            if not cfg["select"](key) or (cfg.get("smoke") and server.name == "nginx"):
                continue
            spec = redis.spec(cluster, "bench-%s-%dp-%s" % (server.name, procs, name), unix)
            build(key, "PHP FFI, %d process%s, one %s" % (procs, "es" if procs > 1 else "", label),
                  ffi, procs, 1, ["--store", spec])
    curl = php + [os.path.join(BENCH, "php", "curl_send.php"),
                  "--token-file", os.path.join(tmp, "token-%s.json" % server.name)]
    build("php-curl/1p", "PHP curl by hand, 1 process", curl, 1, 1)
    build("php-curl/8p", "PHP curl by hand, 8 processes", curl, 8, 1)
    wpy = [tools["python"], os.path.join(BENCH, "wechatpy_send.py")]
    build("wechatpy/1p", "wechatpy, 1 process", wpy, 1, 1)
    build("wechatpy/8p", "wechatpy, 8 processes", wpy, 8, 1)
    return runs


def token_contestants(cfg, server, per_thread, procs):
    """`procs` processes × 8 threads (PHP: single-threaded processes) for the token test."""
    runs, build, php, tools = worker_runs(cfg, server, 0, procs, 8, phases=2)
    tmp = cfg["tmp"]

    # build() splits n evenly; PHP has no threads, so its processes send 8× each.
    # One SQLite store: the token is shared through it, as the PHP workers' is.
    build("rust/%dx8" % procs, "Rust, %d processes × 8 threads, one SQLite ledger" % procs,
          [tools["send"]], procs, 8, ["--store", "sqlite:" + os.path.join(tmp, "ledger-token-rust.db")])
    ffi = php + [os.path.join(BENCH, "php", "ffi_send.php"), "--lib", tools["lib"],
                 "--store", "sqlite:" + os.path.join(tmp, "ledger-token.db")]
    build("php-ffi/%dp" % procs, "PHP FFI, %d processes, one SQLite ledger" % procs, ffi, procs, 1)
    curl = php + [os.path.join(BENCH, "php", "curl_send.php"),
                  "--token-file", os.path.join(tmp, "token-tokentest.json")]
    build("php-curl/%dp" % procs, "PHP curl by hand, %d processes, token file" % procs, curl, procs, 1)
    wpy = [tools["python"], os.path.join(BENCH, "wechatpy_send.py")]
    build("wechatpy/%dx8" % procs, "wechatpy, %d processes × 8 threads" % procs, wpy, procs, 8)
    for key, run in runs.items():
        each = per_thread if key.endswith("x8") else per_thread * 8
        run.workers = [(w, _set(argv, "--per-thread", each)) for w, argv in run.workers]
        run.per_thread = each
    return runs


def forget_tokens(cfg):
    """Every contestant starts without a token (the curl client's file cache)."""
    for f in os.listdir(cfg["tmp"]):
        if f.startswith("token-") and f.endswith(".json"):
            os.unlink(os.path.join(cfg["tmp"], f))


def _set(argv, flag, value):
    argv = list(argv)
    argv[argv.index(flag) + 1] = str(value)
    return argv


def grants_of(run, phases=1):
    return {openid(w, t): run.per_thread * phases for w, _ in run.workers for t in range(run.threads)}


def percentile(sorted_values, q):
    if not sorted_values:
        return 0
    i = min(len(sorted_values) - 1, max(0, int(round(q * (len(sorted_values) - 1)))))
    return sorted_values[i]


def read_latencies(paths):
    values = []
    for p in paths:
        with open(p) as f:
            values.extend(int(line) for line in f if line.strip())
        os.unlink(p)
    values.sort()
    return values


def batch_wall(results):
    """The batch's wall time: from the first worker's start to the last one's
    end (monotonic clock, shared by the processes), so a rate is all messages
    over it, not a sum of per-process rates. Workers that report only their own
    loop time: the slowest one's."""
    if all("start_ns" in r and "end_ns" in r for r in results):
        return (max(r["end_ns"] for r in results) - min(r["start_ns"] for r in results)) / 1e9
    return max(r["elapsed_s"] for r in results)


def run_workers(run, between_phases=None, phases=1, timeout=1800):
    """Starts the workers, releases them together, returns the merged figures."""
    procs = []
    for wid, argv in run.workers:
        procs.append(subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      text=True, bufsize=1, env=run.env))

    def expect(p, word):
        line = p.stdout.readline().strip()
        if line != word:
            p.kill()
            rest = p.stdout.read()
            raise RuntimeError("%s: expected %r, got %r %s" % (run.key, word, line, rest[-500:]))

    try:
        for p in procs:
            expect(p, "ready")
        t0 = time.perf_counter()
        for phase in range(phases):
            if phase > 0:
                for p in procs:
                    expect(p, "phase")
                if between_phases:
                    between_phases()
            for p in procs:
                p.stdin.write("go\n")
                p.stdin.flush()
        results = []
        for p in procs:
            line = p.stdout.readline()
            if not line:
                raise RuntimeError("%s: a worker ended without a result (exit %s)" % (run.key, p.wait()))
            results.append(json.loads(line))
        wall = batch_wall(results) if results else time.perf_counter() - t0
    finally:
        for p in procs:
            if p.poll() is None:
                try:
                    p.stdin.close()
                except OSError:
                    pass
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
    lat = read_latencies([argv[argv.index("--lat-file") + 1] for _, argv in run.workers])
    sent = sum(r["sent"] for r in results)
    failed = sum(r["failed"] for r in results)
    return {
        "sent": sent,
        "failed": failed,
        "first_error": next((r["first_error"] for r in results if r.get("first_error")), None),
        "wall_s": wall,
        "msgs_per_s": sent / wall if wall > 0 else 0,
        "p50_us": percentile(lat, 0.50) / 1000,
        "p99_us": percentile(lat, 0.99) / 1000,
        "cpu_us_per_msg": 1e6 * sum(r["cpu_s"] for r in results) / max(1, sent),
        "peak_rss_mib": max(r["peak_rss_kib"] for r in results) / 1024,
        "processes": len(procs),
    }


WRK_LUA = """\
wrk.method = "POST"
wrk.body = [[%s]]
wrk.headers["Content-Type"] = "application/json"
local threads = {}
function setup(thread)
    table.insert(threads, thread)
end
bad = 0
function response(status, headers, body)
    if status ~= 200 or not string.find(body, '"errcode":0,', 1, true) then
        bad = bad + 1
    end
end
function done(summary, latency, requests)
    local wrong = 0
    for _, t in ipairs(threads) do
        wrong = wrong + t:get("bad")
    end
    io.write(string.format('WRK {"requests":%%d,"duration_us":%%d,"p50_us":%%d,"p99_us":%%d,"errors":%%d,"wrong_answers":%%d}\\n',
        summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
        summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout,
        wrong))
end
"""


def wrk_body(touser):
    """The body our library renders for message 0 (same template, fields, page)."""
    return json.dumps({
        "touser": touser,
        "template_id": TEMPLATE,
        "page": "/pages/order/detail?id=10086",
        "miniprogram_state": "formal",
        "lang": "zh_CN",
        "data": {
            "character_string1": {"value": "SNwrkT0N000000000"},
            "amount2": {"value": "¥128.50"},
            "thing3": {"value": "法式碎花连衣裙 等2件"},
            "time4": {"value": "2026-11-22 21:30"},
        },
    }, ensure_ascii=False, separators=(",", ":"))


def run_wrk(cfg, server, secs, connections):
    """wrk posting one fixed body with a fixed token for `secs` seconds (wrk
    runs for a time, not a count: its stop() leaves the clock running)."""
    to = "oBench_wrk%d_t0" % connections
    server.prepare({to: WRK_GRANTS})
    token = server.fixed_token()
    script = os.path.join(cfg["tmp"], "wrk-%d.lua" % connections)
    with open(script, "w") as f:
        # Each connection may have one request in flight when the thread stops.
        f.write(WRK_LUA % wrk_body(to))
    url = "%s%s?access_token=%s" % (server.url, SUBSCRIBE_PATH, token)
    cmd = ["wrk", "-t1", "-c%d" % connections, "-d%ds" % secs, "--latency", "-s", script, url]
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    out, _ = p.communicate()
    wall = time.perf_counter() - t0
    line = next((l for l in out.splitlines() if l.startswith("WRK ")), None)
    if line is None:
        raise RuntimeError("wrk printed no result: " + out[-500:])
    r = json.loads(line[4:])
    return r, wall


def wrk_result(cfg, server, secs, connections):
    before = time.perf_counter()
    rusage0 = os.times()
    r, wall = run_wrk(cfg, server, secs, connections)
    rusage1 = os.times()
    cpu = (rusage1.children_user - rusage0.children_user) + (rusage1.children_system - rusage0.children_system)
    secs = r["duration_us"] / 1e6
    failed = r["errors"] + r["wrong_answers"]
    return {
        "sent": r["requests"] - failed,
        "failed": failed,
        "first_error": None if failed == 0 else "wrk: %d socket errors, %d answers other than errcode 0" % (
            r["errors"], r["wrong_answers"]),
        "wall_s": secs,
        "msgs_per_s": r["requests"] / secs if secs > 0 else 0,
        "p50_us": r["p50_us"],
        "p99_us": r["p99_us"],
        "cpu_us_per_msg": 1e6 * cpu / max(1, r["requests"]),
        "peak_rss_mib": None,
        "processes": 1,
        "token_fetches": 0,
        "elapsed_total_s": time.perf_counter() - before,
    }


# --------------------------------------------------------------------------
# the suite


def main_table(cfg, servers, n, wrk_secs):
    table = {}
    for server in servers:
        log("== %s (%s)" % (server.name, server.url))
        for connections in (1, 8):
            key = "wrk/%dc" % connections
            if not cfg["select"](key):
                continue
            r = wrk_result(cfg, server, wrk_secs, connections)
            r["label"] = "wrk, %d connection%s, fixed token" % (connections, "s" if connections > 1 else "")
            # wrk's last requests may be answered with no grant left: count only the first n.
            table[(server.name, key)] = r
            log("%-22s %8.0f msg/s  p50 %7.1f µs  p99 %7.1f µs" % (key, r["msgs_per_s"], r["p50_us"], r["p99_us"]))
        for key, run in contestants(cfg, server, n).items():
            if not cfg["select"](key):
                continue
            server.prepare(grants_of(run))
            forget_tokens(cfg)
            r = run_workers(run)
            r["token_fetches"] = server.token_fetches()
            r["label"] = run.label
            table[(server.name, key)] = r
            log("%-22s %8.0f msg/s  p50 %7.1f µs  p99 %7.1f µs  cpu %6.1f µs/msg  tokens %d%s" % (
                key, r["msgs_per_s"], r["p50_us"], r["p99_us"], r["cpu_us_per_msg"],
                r["token_fetches"], "  FAILED %d: %s" % (r["failed"], r["first_error"]) if r["failed"] else ""))
    return table


def token_table(cfg, sandbox, per_thread, procs):
    """Fetches over two token lifetimes: the sandbox clock jumps past expiry between phases."""
    out = {}
    for key, run in token_contestants(cfg, sandbox, per_thread, procs).items():
        if not cfg["select"](key):
            continue
        sandbox.prepare(grants_of(run, phases=2))
        forget_tokens(cfg)
        # Past expires_in (7200 s) and the old token's grace: every cached token is dead.
        r = run_workers(run, phases=2,
                        between_phases=lambda: sandbox.control("POST", "clock", {"advance_secs": 7200 + 301}))
        fetches = sandbox.token_fetches()
        out[key] = {"label": run.label, "processes": len(run.workers), "threads": run.threads,
                    "sent": r["sent"], "failed": r["failed"], "first_error": r["first_error"],
                    "token_fetches": fetches, "per_lifetime": fetches / 2}
        log("%-16s token fetches over 2 lifetimes: %d%s" % (
            key, fetches, "  FAILED %d: %s" % (r["failed"], r["first_error"]) if r["failed"] else ""))
    return out


def criterion_hotpath(cfg, smoke):
    """Runs benches/hotpath.rs; returns {bench: mean ns} from criterion's estimates."""
    exe = cfg["tools"]["hotpath"]
    if smoke:
        # Test mode: each bench once; proves they run.
        subprocess.run([exe], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        return {}
    subprocess.run([exe, "--bench", "--warm-up-time", "1", "--measurement-time", "4"],
                   cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    base = os.path.join(cfg["target_dir"], "criterion", "hotpath")
    found = {}
    for dirpath, _, files in os.walk(base):
        if os.path.basename(dirpath) == "new" and "estimates.json" in files:
            with open(os.path.join(dirpath, "estimates.json")) as f:
                est = json.load(f)
            with open(os.path.join(dirpath, "benchmark.json")) as f:
                name = json.load(f)["full_id"]
            found[name] = est["mean"]["point_estimate"]
    return found


def php_hotpath(cfg, iterations):
    argv = ["php", "-d", "ffi.enable=1", "-d", "memory_limit=1G",
            os.path.join(BENCH, "php", "hotpath.php"), "--lib", cfg["tools"]["lib"],
            "--iterations", str(iterations)]
    out = subprocess.run(argv, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def load_ok():
    try:
        return os.getloadavg()[0]
    except OSError:
        return -1.0


# System calls that write: to the SQLite file and its WAL (pwrite64), to the
# log or a socket (write), and the syncs.
WRITE_SYSCALLS = ("pwrite64", "pwritev", "write", "writev", "fsync", "fdatasync")


def strace_counts(path):
    """Calls per system call name from an `strace -c` summary file."""
    counts = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            # % time, seconds, usecs/call, calls, [errors,] syscall
            if len(parts) >= 5 and parts[-1].isidentifier() and parts[3].isdigit():
                counts[parts[-1]] = int(parts[3])
    return counts


def sqlite_syscalls(cfg, sandbox, n):
    """Write-type system calls per send of one PHP process on a SQLite ledger,
    counted by `strace -c -f` over n and 2n sends (the difference leaves out
    loading, configure and seeding)."""
    if not shutil.which("strace"):
        return {"error": "strace is missing"}
    figures = {}
    for sends in (n, 2 * n):
        runs, build, php, tools = worker_runs(cfg, sandbox, sends, 1, 1)
        trace = os.path.join(cfg["tmp"], "strace-%d.txt" % sends)
        db = "sqlite:" + os.path.join(cfg["tmp"], "ledger-strace-%d.db" % sends)
        cmd = ["strace", "-f", "-c", "-o", trace, "-e", "trace=" + ",".join(WRITE_SYSCALLS)] + php
        build("php-ffi/strace", "strace", cmd + [os.path.join(BENCH, "php", "ffi_send.php"),
                                                 "--lib", tools["lib"]], 1, 1, ["--store", db])
        run = runs["php-ffi/strace"]
        sandbox.prepare(grants_of(run))
        got = run_workers(run)
        if got["failed"]:
            return {"error": "failed sends: %s" % got["first_error"]}
        figures[sends] = strace_counts(trace)
    per_send = {name: (figures[2 * n].get(name, 0) - figures[n].get(name, 0)) / n
                for name in WRITE_SYSCALLS}
    # The socket's request and the log line are not the store's.
    per_send["store_writes"] = per_send["pwrite64"] + per_send["pwritev"] + per_send["fsync"] \
        + per_send["fdatasync"]
    return {"sends": n, "per_send": per_send}


def drain(cfg, sandbox, counts, latency_ms, lanes):
    """A backlog of due messages in a SQLite outbox drained by one flush with
    `lanes` requests side by side while the sandbox delays every send's answer
    by `latency_ms`; and the cost of the enqueues that made it. The sandbox's
    deliveries prove each message went out once."""
    out = []
    for count in counts:
        wid = "drain%d" % count
        db = "sqlite:" + os.path.join(cfg["tmp"], "outbox-%s.db" % wid)
        argv = ["php", "-d", "ffi.enable=1", "-d", "memory_limit=1G",
                os.path.join(BENCH, "php", "drain.php"), "--lib", cfg["tools"]["lib"],
                "--api-base", sandbox.url, "--appid", APPID, "--secret", SECRET, "--store", db,
                "--worker", wid, "--per-thread", str(count), "--lanes", str(lanes)]
        sandbox.prepare({openid(wid): count})
        p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        try:
            line = p.stdout.readline().strip()
            if line != "ready":
                raise RuntimeError("drain: expected 'ready', got %r %s" % (line, p.stdout.read()[-500:]))
            sandbox.control("POST", "faults", {"path": SUBSCRIBE_PATH, "latency_ms": latency_ms})
            p.stdin.write("go\n")
            p.stdin.flush()
            r = json.loads(p.stdout.readline())
        finally:
            p.stdin.close()
            p.wait(60)
        sandbox.control("DELETE", "faults")
        delivered = sandbox.control("GET", "delivered?appid=%s&openid=%s" % (APPID, openid(wid)))["messages"]
        orders = [m["data"]["character_string1"]["value"] for m in delivered]
        r.update({"messages": count, "latency_ms": latency_ms, "lanes": lanes,
                  "delivered": len(orders), "delivered_distinct": len(set(orders)),
                  "once_each": r["sent"] == count == len(orders) == len(set(orders))})
        log("drain %d messages (%d ms, %d lanes): %.2f s, enqueue %.1f µs, delivered %d (%d distinct)" % (
            count, latency_ms, lanes, r["drain_s"], r["enqueue_us"], len(orders), len(set(orders))))
        out.append(r)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="tiny N, debug build, no criterion measurement")
    ap.add_argument("--n", type=int, help="messages per contestant (default 150000; smoke 40)")
    ap.add_argument("--token-per-thread", type=int, help="messages per thread per lifetime in the token test")
    ap.add_argument("--token-procs", type=int, help="processes in the token test (default 16; smoke 4)")
    ap.add_argument("--wrk-secs", type=int, help="how long wrk runs (default 10; smoke 1)")
    ap.add_argument("--syscall-sends", type=int, help="sends in the strace step (default 1000; smoke 20)")
    ap.add_argument("--drain", default=None,
                    help="backlog sizes drained in the drain step, comma-separated (default 2000,10000; smoke 100)")
    ap.add_argument("--drain-lanes", type=int, default=64, help="outbox.concurrency of the drain (default 64)")
    ap.add_argument("--profile", choices=["debug", "release"])
    ap.add_argument("--lib", help="measure this libfashop_notify.so instead of the one built (a before/after run)")
    ap.add_argument("--out", help="directory for results.json and results.md")
    ap.add_argument("--only", action="append", default=[],
                    help="run only contestants whose key starts with this (repeatable)")
    ap.add_argument("--servers", default="nginx,sandbox")
    ap.add_argument("--skip", action="append", default=[], help="parts to skip: main, token, drain, syscalls, hotpath")
    a = ap.parse_args()

    profile = a.profile or ("debug" if a.smoke else "release")
    n = a.n or (40 if a.smoke else 150_000)
    token_per_thread = a.token_per_thread or (2 if a.smoke else 20)
    meta = json.loads(subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps"],
                                     cwd=ROOT, check=True, stdout=subprocess.PIPE).stdout)
    target_dir = meta["target_directory"]
    out_dir = a.out or os.path.join(target_dir, "bench", "smoke" if a.smoke else "results")
    os.makedirs(out_dir, exist_ok=True)

    needed = ["php"] + (["nginx"] if "nginx" in a.servers.split(",") else []) \
        + (["wrk"] if "main" not in a.skip else [])
    for tool in needed:
        if not (shutil.which(tool) or os.path.exists("/usr/sbin/" + tool)):
            sys.exit("bench: %s is missing: run scripts/deps.sh bench" % tool)
    log("building (%s)" % profile)
    tools = cargo_build(profile)
    if a.lib:
        tools["lib"] = os.path.abspath(a.lib)
    if "main" not in a.skip or "token" not in a.skip:
        tools["python"] = wechatpy_python(target_dir)
    tmp = tempfile.mkdtemp(prefix="fashop-bench-")
    os.chmod(tmp, 0o755)
    cfg = {"tmp": tmp, "tools": tools, "target_dir": target_dir, "redis": RedisStores(tmp), "smoke": a.smoke,
           "select": lambda key: not a.only or any(key.startswith(o) for o in a.only)}
    results = {"n": n, "profile": profile, "smoke": a.smoke, "load_before": load_ok(),
               "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
               "cpus": os.cpu_count()}
    servers = []
    try:
        wanted = a.servers.split(",")
        if "nginx" in wanted:
            servers.append(Nginx(tmp))
        sandbox = SandboxServer(tools["fashop-notify-sandbox"])
        if "sandbox" in wanted:
            servers.append(sandbox)
        if "main" not in a.skip:
            table = main_table(cfg, servers, n, a.wrk_secs or (1 if a.smoke else 10))
            results["main"] = [dict(v, server=k[0], key=k[1]) for k, v in table.items()]
        if "token" not in a.skip:
            procs = a.token_procs or (4 if a.smoke else 16)
            log("== token fetches, %d processes, over two simulated token lifetimes (sandbox)" % procs)
            results["token"] = token_table(cfg, sandbox, token_per_thread, procs)
            results["token_procs"] = procs
        if "drain" not in a.skip:
            counts = [int(c) for c in (a.drain or ("100" if a.smoke else "2000,10000")).split(",")]
            log("== drain: backlogs of %s due messages, 100 ms injected latency (sandbox)" % counts)
            results["drain"] = drain(cfg, sandbox, counts, 100, a.drain_lanes)
        if "syscalls" not in a.skip:
            log("== write system calls per SQLite send (strace -c, one PHP process, sandbox)")
            results["syscalls"] = sqlite_syscalls(cfg, sandbox, a.syscall_sends or (20 if a.smoke else 1000))
            log("syscalls: %s" % results["syscalls"])
        if "hotpath" not in a.skip:
            log("== hot path (no network)")
            # A failure here must not lose the tables measured before it.
            try:
                results["hotpath_rust_ns"] = criterion_hotpath(cfg, a.smoke)
                results["hotpath_php"] = php_hotpath(cfg, 200 if a.smoke else 200_000)
                log("hot path: rust %s, php %s" % (results["hotpath_rust_ns"], results["hotpath_php"]))
            except (subprocess.CalledProcessError, ValueError) as e:
                results["hotpath_error"] = str(e)
                log("hot path failed: %s" % e)
    finally:
        for s in servers + ([sandbox] if "sandbox" in dir() and sandbox not in servers else []):
            s.stop()
        cfg["redis"].stop()
        shutil.rmtree(tmp, ignore_errors=True)
    results["load_after"] = load_ok()
    results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())

    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=2, ensure_ascii=False)
    md = subprocess.run([sys.executable, os.path.join(BENCH, "report.py"),
                         os.path.join(out_dir, "results.json")],
                        check=True, stdout=subprocess.PIPE, text=True).stdout
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write(md)
    print(md)
    failures = [r for r in results.get("main", []) if r["failed"]]
    failures += [r for r in results.get("token", {}).values() if r["failed"]]
    failures += [r for r in results.get("drain", []) if not r["once_each"]]
    if failures:
        log("%d runs had failed messages" % len(failures))
        for r in failures:
            log("  %s: %d failed, the first: %s" % (r["label"], r["failed"], r["first_error"]))
        sys.exit(1)
    if "hotpath_error" in results:
        sys.exit(1)
    log("wrote %s/results.md" % out_dir)


if __name__ == "__main__":
    main()
