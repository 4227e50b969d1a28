"""Benchmark: the hook beside raw ``httpx`` + ``json.loads`` and the official ``openrouter`` SDK.

Run: ``.venv/bin/python benchmarks/hook_speed.py`` (``make bench`` installs the ``bench`` extra
first), or ``--quick`` for the short version CI prints. Prints figures; asserts nothing.

Client side only. Answers are recorded once from the bundled emulator, then replayed byte for byte
by a static HTTP/1.1 server in a separate process on loopback, so the server costs the same for
every client. Per window, each round times the three clients one after the other (the order
rotates every round); the figure is the median over rounds of each client's time divided by raw's
in the same round, so load from other processes on the machine cancels out as far as it can. The
spread (the 25th and 75th percentile of those ratios) says how noisy the machine was.

* **raw**: ``httpx.Client.get`` + ``json.loads``: the floor for any client of this API;
* **SDK**: ``openrouter.OpenRouter().datasets.get_rankings_daily`` (pydantic models; ``bench`` extra);
* **hook**: ``OpenRouterHook.get_rankings_daily``: pacing, retry policy, and every validation rule.

Then: parse-only figures for an app-rankings page and an analytics answer, the import cost of the
hook, operators and sensor over ``import airflow.sdk``, and (not in ``--quick``) the per-run cost of
a coalesced backfill run against a naive one (``benchmarks/backfill.py`` on a short range).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parents[1]
KEY = "sk-or-emulator"
#: The emulator's frozen clock: the last complete day is 2026-01-04.
NOW = datetime(2026, 1, 5, 2, tzinfo=timezone.utc)
WINDOWS = {
    1: ("2026-01-01", "2026-01-01"),
    30: ("2025-12-03", "2026-01-01"),
    366: ("2025-01-01", "2026-01-01"),
}
APP_WINDOW = ("2025-12-03", "2026-01-01")
#: A week of hourly cost, tokens and requests per model: about 300 rows with exact decimals.
ANALYTICS_QUERY: dict[str, Any] = {
    "metrics": ["cost", "total_tokens", "request_count"],
    "dimensions": ["model"],
    "granularity": "hour",
    "time_range": {"start": "2025-12-01T00:00:00Z", "end": "2025-12-08T00:00:00Z"},
    "limit": 10000,
}
#: Rounds per window size (full, quick).
ROUNDS = {1: (200, 40), 30: (60, 12), 366: (21, 5), "apps": (150, 30), "analytics": (150, 30)}


# ----------------------------------------------------------------------------- recording
def record(folder: Path) -> dict[str, Any]:
    """Ask the emulator once for every answer the benchmark replays; write them to ``folder``."""
    import httpx

    from airflow_provider_openrouter.testing import Emulator
    from airflow_provider_openrouter.testing.analytics_engine import MANAGEMENT_KEY

    routes: dict[str, str] = {}
    with (
        Emulator(rpm=None, daily_limit=None, now=NOW) as emulator,
        httpx.Client(timeout=120) as http,
    ):
        auth = {"Authorization": f"Bearer {KEY}"}
        for days, (start, end) in WINDOWS.items():
            answer = http.get(
                emulator.base_url + "/datasets/rankings-daily",
                params={"start_date": start, "end_date": end},
                headers=auth,
            )
            answer.raise_for_status()
            name = f"rankings-daily-{days}.json"
            (folder / name).write_bytes(answer.content)
            routes[f"/api/v1/datasets/rankings-daily?{start}/{end}"] = name
        params = {
            "start_date": APP_WINDOW[0],
            "end_date": APP_WINDOW[1],
            "sort": "popular",
            "limit": 100,
            "offset": 0,
        }
        answer = http.get(emulator.base_url + "/datasets/app-rankings", params=params, headers=auth)
        answer.raise_for_status()
        (folder / "app-rankings.json").write_bytes(answer.content)
        routes[f"/api/v1/datasets/app-rankings?{APP_WINDOW[0]}/{APP_WINDOW[1]}"] = (
            "app-rankings.json"
        )
        body = ANALYTICS_QUERY
        answer = http.post(
            emulator.base_url + "/analytics/query",
            json=body,
            headers={"Authorization": f"Bearer {MANAGEMENT_KEY}"},
        )
        answer.raise_for_status()
        (folder / "analytics.json").write_bytes(answer.content)
        routes["/api/v1/analytics/query?/"] = "analytics.json"
        answer = http.get(
            emulator.base_url + "/analytics/meta",
            headers={"Authorization": f"Bearer {MANAGEMENT_KEY}"},
        )
        answer.raise_for_status()
        (folder / "analytics-meta.json").write_bytes(answer.content)
        routes["/api/v1/analytics/meta?/"] = "analytics-meta.json"
    (folder / "routes.json").write_text(json.dumps(routes))
    return routes


# ----------------------------------------------------------------------------- static server
def serve(folder: Path) -> None:
    """Replay the recorded answers (keyed by path and window) until killed; prints the port."""
    routes = json.loads((folder / "routes.json").read_text())
    bodies = {route: (folder / name).read_bytes() for route, name in routes.items()}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # headers and body go out in two writes: without TCP_NODELAY the body waits for the
        # client's delayed ACK (up to 40 ms), which would swamp the wall-time figures
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.do_GET()

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            route = (
                f"{parts.path}?{query.get('start_date', [''])[0]}/{query.get('end_date', [''])[0]}"
            )
            body = bodies.get(route)
            status = 200 if body is not None else 404
            body = body if body is not None else b'{"error": {"message": "not recorded"}}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


# ----------------------------------------------------------------------------- timing
def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def interleaved(
    contenders: dict[str, Callable[[], Any]], rounds: int
) -> dict[str, list[tuple[float, float]]]:
    """(wall, CPU) seconds per call of each contender, one call each per round, the order rotating.

    CPU is this process's (the client's) CPU time: the server runs in another process, and time
    spent waiting for a core on a busy machine is not counted, so it is the steadier figure.
    """
    names = list(contenders)
    for name in names:  # warm-up: connections open, caches filled, code paths compiled
        for _ in range(3):
            contenders[name]()
    gc.collect()
    gc.freeze()  # what is alive now is never scanned again: each call starts from a clean young heap
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for index in range(rounds):
        order = names[index % len(names) :] + names[: index % len(names)]
        for name in order:
            gc.collect()
            wall, cpu = time.perf_counter(), time.process_time()
            contenders[name]()
            times[name].append((time.perf_counter() - wall, time.process_time() - cpu))
    gc.unfreeze()
    return times


def ratios(times: dict[str, list[tuple[float, float]]], name: str, which: int) -> list[float]:
    return [t[which] / max(r[which], 1e-9) for t, r in zip(times[name], times["raw"], strict=True)]


def ratio_line(label: str, times: dict[str, list[tuple[float, float]]]) -> str:
    cells = [f"{label:<28}"]
    for which in (0, 1):
        cells.append(f"{statistics.median(t[which] for t in times['raw']) * 1000:8.2f} ms")
        for name in ("sdk", "hook"):
            if name not in times:
                cells.append(f"{'n/a':>18}")
                continue
            r = ratios(times, name, which)
            cells.append(
                f"{statistics.median(r):5.2f}x [{pct(r, 0.25):4.2f}-{pct(r, 0.75):4.2f}]".rjust(18)
            )
        cells.append("  |")
    return "".join(cells[:-1])


def client_side(folder: Path, quick: bool) -> None:
    import httpx

    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench_airflow_"))
    # the hook's INFO line per call would otherwise be timed as console output
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(folder)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        base_url = f"http://127.0.0.1:{server.stdout.readline().strip()}/api/v1"
        os.environ["AIRFLOW_CONN_OPENROUTER_BENCH"] = json.dumps(
            {
                "conn_type": "openrouter",
                "password": KEY,
                "host": base_url,
                "extra": {"requests_per_minute": 10**6},
            }
        )
        from airflow_provider_openrouter.hooks.openrouter import OpenRouterHook

        hook = OpenRouterHook("openrouter_bench")
        raw = httpx.Client(headers={"Authorization": f"Bearer {KEY}"}, timeout=60)
        try:
            from openrouter import OpenRouter

            sdk = OpenRouter(api_key=KEY, server_url=base_url)
        except ImportError:
            sdk = None
        print(
            "Client side: median of per-round ratios to raw [25th-75th percentile]; raw's median time"
        )
        print(
            f"{'':<28}{'wall: raw':>11}{'official SDK':>18}{'hook':>18}  |{'CPU: raw':>11}{'official SDK':>18}{'hook':>18}"
        )
        for days, (start, end) in WINDOWS.items():
            params = {"start_date": start, "end_date": end}
            contenders: dict[str, Callable[[], Any]] = {
                "raw": lambda p=params: json.loads(
                    raw.get(base_url + "/datasets/rankings-daily", params=p).content
                ),
                "hook": lambda s=start, e=end: hook.get_rankings_daily(s, e),
            }
            if sdk is not None:
                contenders["sdk"] = lambda s=start, e=end: sdk.datasets.get_rankings_daily(
                    start_date=s, end_date=e
                )
            rows = len(hook.get_rankings_daily(start, end).rows)
            times = interleaved(contenders, ROUNDS[days][quick])
            print(ratio_line(f"rankings {days:>3} d ({rows} rows)", times), flush=True)
        start, end = APP_WINDOW
        params = {
            "start_date": start,
            "end_date": end,
            "sort": "popular",
            "limit": 100,
            "offset": 0,
        }
        contenders = {
            "raw": lambda: json.loads(
                raw.get(base_url + "/datasets/app-rankings", params=params).content
            ),
            "hook": lambda: hook.get_app_rankings(start, end, max_apps=100),
        }
        if sdk is not None:
            contenders["sdk"] = lambda: sdk.datasets.get_app_rankings(
                start_date=start, end_date=end, limit=100, offset=0
            )
        times = interleaved(contenders, ROUNDS["apps"][quick])
        print(ratio_line("app-rankings, 100 apps", times), flush=True)
        from airflow_provider_openrouter.analytics.query import AnalyticsQuery

        spec = ANALYTICS_QUERY
        query = AnalyticsQuery(
            spec["metrics"],
            spec["dimensions"],
            granularity=spec["granularity"],
            time_range=spec["time_range"],
            limit=spec["limit"],
        )
        contenders = {
            "raw": lambda: json.loads(raw.post(base_url + "/analytics/query", json=spec).content),
            "hook": lambda: hook.execute_analytics_query(query),
        }
        rows = len(hook.execute_analytics_query(query).rows)
        times = interleaved(contenders, ROUNDS["analytics"][quick])
        print(ratio_line(f"analytics query ({rows} rows)", times), flush=True)
        if sdk is None:
            print(
                "(official SDK not installed: `pip install -e '.[bench]'` or `make bench` adds it)"
            )
    finally:
        server.terminate()
        server.wait()


def parse_only(folder: Path, quick: bool) -> None:
    """Decode + validate a recorded answer, against decode alone (no HTTP)."""
    from airflow_provider_openrouter.analytics.answers import parse_query_response
    from airflow_provider_openrouter.api.answers import loads_exact
    from airflow_provider_openrouter.api.datasets import app_rankings, rankings_daily
    from airflow_provider_openrouter.windows.intervals import Window

    year = (folder / "rankings-daily-366.json").read_bytes()
    apps = (folder / "app-rankings.json").read_bytes()
    analytics = (folder / "analytics.json").read_bytes()
    window = Window(date.fromisoformat(WINDOWS[366][0]), date.fromisoformat(WINDOWS[366][1]))
    rounds = 5 if quick else 25
    # each with the decoder the hook hands the client for that endpoint
    cases = [
        (
            "rankings 366 d",
            year,
            lambda body: rankings_daily.parse_rankings_daily(rankings_daily.decode(body), window),
        ),
        (
            "app-rankings page",
            apps,
            lambda body: app_rankings.parse_app_rankings_page(app_rankings.decode(body), 0),
        ),
        (
            "analytics answer",
            analytics,
            lambda body: parse_query_response(loads_exact(body)),
        ),
    ]
    print(
        "\nParse only (no HTTP), CPU time, medians: json.loads, then the hook's decode + every validation rule"
    )
    for label, body, parse in cases:
        decoded = json.loads(body)
        rows = (
            len(decoded["data"])
            if isinstance(decoded["data"], list)
            else len(decoded["data"]["data"])
        )
        repeat = rounds if len(body) > 10**6 else rounds * 20
        times = interleaved(
            {"raw": lambda b=body: json.loads(b), "hook": lambda b=body, p=parse: p(b)}, repeat
        )
        loads = statistics.median(t[1] for t in times["raw"])
        total = statistics.median(t[1] for t in times["hook"])
        print(
            f"  {label:<18} {len(body) / 1000:7.1f} kB {rows:6d} rows   json.loads {loads * 1000:7.2f} ms"
            f"   decode + validate {total * 1000:7.2f} ms = {statistics.median(ratios(times, 'hook', 1)):5.2f}x"
        )


# ----------------------------------------------------------------------------- imports, backfill
def import_seconds(statement: str, env: dict[str, str]) -> float:
    code = f"import time, airflow.sdk; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def import_cost(quick: bool) -> None:
    # as an installed package imports: from compiled bytecode (a cache of our own, warmed below),
    # even where PYTHONDONTWRITEBYTECODE would have every interpreter compile the source again
    env = {
        **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
        "AIRFLOW_HOME": tempfile.mkdtemp(prefix="bench_airflow_"),
        "PYTHONPYCACHEPREFIX": tempfile.mkdtemp(prefix="bench_pycache_"),
    }
    repeats = 2 if quick else 5
    modules = {
        "hook": "import airflow_provider_openrouter.hooks.openrouter",
        "operators": "import airflow_provider_openrouter.operators.rankings, airflow_provider_openrouter.operators.analytics",
        "sensor": "import airflow_provider_openrouter.sensors.as_of",
        "all three": "import airflow_provider_openrouter.hooks.openrouter, airflow_provider_openrouter.operators.rankings, "
        "airflow_provider_openrouter.operators.analytics, airflow_provider_openrouter.sensors.as_of",
    }
    import_seconds(modules["all three"], env)  # warms the bytecode cache
    base = statistics.median(
        float(
            subprocess.run(
                [
                    sys.executable,
                    "-c",
                    "import time; t = time.perf_counter(); import airflow.sdk; print(time.perf_counter() - t)",
                ],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout.split()[-1]
        )
        for _ in range(repeats)
    )
    print(
        f"\nImport cost (fresh interpreter, bytecode cached, median of {repeats}): import airflow.sdk {base * 1000:.0f} ms, then"
    )
    for label, statement in modules.items():
        added = statistics.median(import_seconds(statement, env) for _ in range(repeats))
        print(f"  + {label:<10} {added * 1000:6.1f} ms")


def backfill_cost(days: int) -> None:
    """Per-run wall time of a coalesced backfill run and a naive one (``benchmarks/backfill.py``)."""
    last = date(2025, 1, 1).toordinal() + days - 1
    args = [
        sys.executable,
        str(ROOT / "benchmarks" / "backfill.py"),
        "--now",
        "2026-01-05T02:00:00Z",
        "--from",
        "2025-01-01",
        "--to",
        date.fromordinal(last).isoformat(),
        "--apps",
        "none",
    ]
    print(
        f"\nBackfill, {days} daily runs in process (benchmarks/backfill.py {' '.join(args[2:])}):",
        flush=True,
    )
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.startswith(
            (
                "requests ",
                "total",
                "wall time here",
                "  per run, ms",
                "  CPU per run",
                "failed runs",
            )
        ):
            print("  " + line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="few rounds, no backfill: what CI prints"
    )
    parser.add_argument("--serve", metavar="DIR", help=argparse.SUPPRESS)
    parser.add_argument(
        "--backfill-days",
        type=int,
        default=60,
        help="daily runs in the backfill figure (default 60)",
    )
    args = parser.parse_args(argv)
    if args.serve:
        serve(Path(args.serve))
        return 0
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory(prefix="bench_answers_") as tmp:
        folder = Path(tmp)
        record(folder)
        print(
            f"Python {sys.version.split()[0]}, {os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.1f}"
            f"{' (quick: few rounds, expect noise)' if args.quick else ''}\n"
        )
        client_side(folder, args.quick)
        parse_only(folder, args.quick)
    import_cost(args.quick)
    if not args.quick:
        backfill_cost(args.backfill_days)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
