"""The demo's report: per day, the partitions written, their rows, the top models' share of the
day's tokens, ``as_of`` and the citation. Partitions are read by the storage reader rule
(manifest first, then the data file it names, checked against its sha256), so this works for
any output store the DAG wrote to.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from airflow.sdk import ObjectStoragePath

from airflow_provider_openrouter import lake
from airflow_provider_openrouter.api.datasets import app_rankings, rankings_daily, session_cost
from airflow_provider_openrouter.api.datasets.app_rankings import APP_CATEGORIES, APP_SORTS
from airflow_provider_openrouter.api.datasets.rankings_daily import OTHER_PERMASLUG
from airflow_provider_openrouter.windows import Window

TOP_MODELS = 5


def top_models(rows: list[dict[str, Any]]) -> list[tuple[str, int, float]]:
    """The biggest models with their share of the day's total (the ``other`` row included in it)."""
    total = sum(int(row["total_tokens"]) for row in rows)
    models = [row for row in rows if row["model_permaslug"] != OTHER_PERMASLUG]
    models.sort(key=lambda row: (-int(row["total_tokens"]), row["model_permaslug"]))
    return [
        (
            row["model_permaslug"],
            int(row["total_tokens"]),
            int(row["total_tokens"]) / total if total else 0.0,
        )
        for row in models[:TOP_MODELS]
    ]


def report(output_uri: str, conn_id: str | None, days: list[date]) -> None:
    base = ObjectStoragePath(output_uri, conn_id=conn_id)
    for day in days:
        print(f"\n{day}")
        daily = lake.read_partition(base / rankings_daily.partition_key(day))
        if daily is None:
            print(f"  rankings_daily/date={day}: MISSING")
            continue
        rows = lake.read_records(daily)
        total = sum(int(row["total_tokens"]) for row in rows)
        print(
            f"  {daily.manifest['partition']}/{daily.data_file}: {daily.manifest['row_count']} rows "
            f"(sha256 {daily.sha256[:12]})"
        )
        print(
            f"  top models by share of the day's {total:,} tokens (the 'other' row completes the total):"
        )
        for rank, (slug, tokens, share) in enumerate(top_models(rows), 1):
            print(f"    {rank}. {slug:<48} {tokens:>18,}  {share:6.1%}")
        apps = []
        for sort in APP_SORTS:
            for category in (None, *APP_CATEGORIES):
                part = lake.read_partition(
                    base / app_rankings.partition_key(sort, category, None, Window(day, day))
                )
                apps.append(
                    f"{sort}/{category or 'all'} {'MISSING' if part is None else part.manifest['row_count']}"
                )
        print(f"  app_rankings (window={day}_{day}), apps per partition: {', '.join(apps)}")
        print(f"  as_of {daily.manifest['meta']['as_of']}")
        print(f"  {daily.manifest['citation']}")
    print(
        f"\nFiles: {output_uri}/rankings_daily/date=YYYY-MM-DD/ and {output_uri}/app_rankings/sort=.../"
        "category=.../subcategory=all/window=START_END/ (data file + _manifest.json each; "
        "read the manifest first)."
    )


def report_session_cost(output_uri: str, conn_id: str | None) -> None:
    """The newest session-cost partition: its snapshot window, cells, cheapest and dearest cells, citation."""
    everything = session_cost.filter_segments(None, None, None)  # the unfiltered snapshots
    root = ObjectStoragePath(
        "/".join([output_uri.rstrip("/"), session_cost.DIRECTORY, *everything]), conn_id=conn_id
    )
    ends = (
        sorted(p.name for p in root.iterdir() if p.name.startswith("window_end="))
        if root.exists()
        else []
    )
    partition = lake.read_partition(root / ends[-1]) if ends else None
    if partition is None:
        print("\nsession_cost: no snapshot landed (none published?)")
        return
    m = partition.manifest
    cells = sorted(
        lake.read_records(partition), key=lambda c: c["median_session_cost_usd"]
    )  # exact Decimals
    print(
        f"\n{session_cost.partition_key(date.fromisoformat(ends[-1].split('=')[1]))}: {m['row_count']} cells, window {m['window']['start']}..{m['window']['end']} "
        f"({m['snapshot']['window_days']} days), complete={m['complete']}, {len(m['request']['params'])} page request(s)"
    )
    for label, cell in (("cheapest", cells[0]), ("dearest", cells[-1])):
        print(
            f"  {label}: {cell['app_name']} / {cell['model_permaslug']} / {cell['turn_range']}: "
            f"${cell['median_session_cost_usd']} median per session"
        )
    print(f"  {m['citation']}")
