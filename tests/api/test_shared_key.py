"""Many processes, one key: 429 is shared back-pressure, and nobody fails or hot-loops."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import Any

PROCESSES = 16
CALLS_EACH = 2

WORKER = textwrap.dedent(
    """
    import json, sys
    from airflow_provider_openrouter.hooks.openrouter import OpenRouterHook
    hook = OpenRouterHook("openrouter_shared")
    worker = int(sys.argv[1])
    days = []
    for call in range(CALLS_EACH):
        day = f"2025-03-{1 + (worker * CALLS_EACH + call) % 28:02d}"
        days.append(len(hook.get_rankings_daily(day, day).rows))
    print(json.dumps({"rows": days, "requests": hook.request_count}))
    """
).replace("CALLS_EACH", str(CALLS_EACH))


def test_sixteen_processes_share_the_real_minute_limit_without_failing(
    openrouter_emulator_factory: Any, tmp_path: Any
) -> None:
    emulator = openrouter_emulator_factory(rpm=30, daily_limit=None)
    env = {
        **os.environ,
        "AIRFLOW_CONN_OPENROUTER_SHARED": json.dumps(
            {"conn_type": "openrouter", "password": "sk-or-emulator", "host": emulator.base_url}
        ),
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(i)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(PROCESSES)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))

    assert all(r["rows"] == [51] * CALLS_EACH for r in results)
    ok = emulator.request_count("/datasets/rankings-daily", status=200)
    rejected = emulator.request_count("/datasets/rankings-daily", status=429)
    assert ok == PROCESSES * CALLS_EACH
    assert rejected > 0, "the processes never contended: the test proves nothing"
    # every 429 was followed by a wait for Retry-After, so rejections stay a small multiple of the work
    assert rejected < 10 * PROCESSES * CALLS_EACH
    assert sum(r["requests"] for r in results) == ok + rejected
