"""Benchmark: what the hook adds over ``import airflow.sdk``, and per-request overhead on loopback.

Run: ``.venv/bin/python benchmarks/hook_overhead.py`` (or ``make bench``). Prints figures; asserts nothing.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

import httpx

REPEATS = 7
REQUESTS = 200


def import_seconds(statement: str, env: dict[str, str]) -> float:
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def import_overhead() -> None:
    env = {**os.environ, "AIRFLOW_HOME": tempfile.mkdtemp(prefix="bench_airflow_")}
    sdk = [import_seconds("import airflow.sdk", env) for _ in range(REPEATS)]
    both = [
        import_seconds("import airflow.sdk; t2 = time.perf_counter(); import airflow_provider_openrouter.hooks.openrouter; t = t2", env)
        for _ in range(REPEATS)
    ]
    print(f"import airflow.sdk:                    median {statistics.median(sdk) * 1000:7.1f} ms")
    print(f"import hook after airflow.sdk (added): median {statistics.median(both) * 1000:7.1f} ms  (goal < 50 ms)")


def request_overhead() -> None:
    from airflow_provider_openrouter.api.client import OpenRouterClient
    from airflow_provider_openrouter.api.datasets.rankings_daily import PATH as RANKINGS_DAILY_PATH
    from airflow_provider_openrouter.testing import Emulator
    from airflow_provider_openrouter.api.datasets.rankings_daily import parse_rankings_daily
    from airflow_provider_openrouter.windows.intervals import Window
    from datetime import date

    params = {"start_date": "2025-03-01", "end_date": "2025-03-01"}
    window = Window(date(2025, 3, 1), date(2025, 3, 1))
    with Emulator(rpm=None, daily_limit=None) as emulator:
        raw = httpx.Client(headers={"Authorization": "Bearer sk-or-emulator"})
        client = OpenRouterClient(emulator.base_url, "sk-or-emulator", requests_per_minute=10**6)
        for _ in range(20):  # warm up both connections and the emulator's caches
            raw.get(emulator.base_url + RANKINGS_DAILY_PATH, params=params).json()
            client.get(RANKINGS_DAILY_PATH, params)

        def timed(fn) -> float:
            samples = []
            for _ in range(REQUESTS):
                t = time.perf_counter()
                fn()
                samples.append(time.perf_counter() - t)
            return statistics.median(samples)

        bare = timed(lambda: raw.get(emulator.base_url + RANKINGS_DAILY_PATH, params=params).json())
        ours = timed(lambda: client.get(RANKINGS_DAILY_PATH, params))
        parsed = timed(lambda: parse_rankings_daily(client.get(RANKINGS_DAILY_PATH, params), window))
    print(f"raw httpx GET + json, 51 rows:         median {bare * 1000:7.2f} ms")
    print(f"OpenRouterClient.get (pacing, policy): median {ours * 1000:7.2f} ms  (+{(ours - bare) * 1000:.2f} ms)")
    print(f"... plus validation to typed rows:     median {parsed * 1000:7.2f} ms  (+{(parsed - bare) * 1000:.2f} ms)")


if __name__ == "__main__":
    import_overhead()
    request_overhead()
