"""SessionCostOperator: land OpenRouter's weekly session-cost snapshot, once per snapshot.

``GET /datasets/session-cost`` serves only the *current* snapshot (median USD spend per session
by harness, model and turn range over a trailing window). So the snapshot, not the DAG run's data
interval, decides the partition:

    {output_uri}/session_cost/app_slug=A|all/model=M|all/turn_range=T|all/window_end=YYYY-MM-DD/{data.jsonl, _manifest.json}

The same snapshot fetched again serialises to the same bytes, so a rerun (or a run before the
next snapshot) writes nothing; a new snapshot is a new partition. When no snapshot is published
the task skips (no write, no asset event). Writes follow :mod:`airflow_provider_openrouter.lake.storage`
(staged, then committed by the manifest). Old snapshots cannot be fetched: backfills are pointless,
schedule with ``catchup=False`` and put
:class:`~airflow_provider_openrouter.sensors.session_cost.OpenRouterSessionCostSensor` in front to
wait for the next snapshot without spending requests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_openrouter.api.datasets import session_cost
from airflow_provider_openrouter.compat import AirflowSkipException
from airflow_provider_openrouter.exceptions import InvalidParameterError
from airflow_provider_openrouter.hooks.openrouter import OpenRouterHook
from airflow_provider_openrouter.lake import formats
from airflow_provider_openrouter.lake.manifest import SESSION_COST
from airflow_provider_openrouter.operators.base import (
    Fetch,
    Landing,
    OpenRouterDatasetOperator,
    templated,
)
from airflow_provider_openrouter.runtime import session_cost_memory

if TYPE_CHECKING:
    from airflow.sdk import Context


__all__ = ["SessionCostOperator"]

NUMBERS = (
    "median_session_cost_usd is a JSON number carrying every digit the API sent; parse it as a decimal "
    "(e.g. json.loads(line, parse_float=decimal.Decimal)), not as a binary float."
)


class SessionCostOperator(OpenRouterDatasetOperator):
    """Land the current weekly snapshot of ``/datasets/session-cost`` as one partition.

    Pages through the snapshot (500 cells per request, up to ``max_cells``; the API reaches at most
    5500 cells per filter set) and writes
    ``{output_uri}/session_cost/app_slug=A/model=M/turn_range=T/window_end={window_end_date}/``
    (``all`` for each filter left unset; a permaslug's ``/`` is written ``%2F``) with
    ``data.jsonl`` and ``_manifest.json`` (meta, requests sent, snapshot, citation, licence,
    caveats). Costs keep every digit (exact decimals). A snapshot already landed with identical
    data is not touched; no snapshot published skips the task. Emits an event on
    ``Asset("{output_uri}/session_cost/app_slug=.../model=.../turn_range=...")`` (just
    ``.../session_cost`` when a filter is templated) with the snapshot's window.

    :param app_slug: one published harness (e.g. ``hermes-agent``), or None for all. Templated.
    :param model: an exact model permaslug (across harnesses), or None for all. Templated.
    :param turn_range: ``1-turn``, ``2-9-turns``, ``10-49-turns``, ``50-plus-turns``, or None. Templated.
    :param max_cells: 1-5500 (default 5500, everything reachable; one request per 500 cells).
    :param fail_if_incomplete: fail instead of landing (with a warning) when the API's 5500-cell
        ceiling or ``max_cells`` cut the snapshot short (default False).
    Other parameters as :class:`~airflow_provider_openrouter.operators.rankings.RankingsDailyOperator`,
    except ``window_start``/``window_end`` (the snapshot decides the partition) and ``format``
    (``jsonl`` only: exact decimals).
    """

    template_fields: Sequence[str] = (
        "output_uri",
        "output_conn_id",
        "app_slug",
        "model",
        "turn_range",
    )
    dataset = SESSION_COST
    request_path = session_cost.PATH
    caveats = session_cost.CAVEATS
    ui_color = "#eef7e8"

    def __init__(
        self,
        *,
        output_uri: str,
        app_slug: str | None = None,
        model: str | None = None,
        turn_range: str | None = None,
        max_cells: int = session_cost.CEILING,
        fail_if_incomplete: bool = False,
        **kwargs: Any,
    ) -> None:
        task = kwargs.get("task_id", "?")
        for name in ("window_start", "window_end"):
            if kwargs.get(name) is not None:
                raise InvalidParameterError(
                    f"Task {task!r}: {name} does not apply to session cost: OpenRouter serves only the current "
                    "weekly snapshot, and the snapshot's window_end_date decides the partition."
                )
        if kwargs.get("format", "jsonl") != "jsonl":
            raise InvalidParameterError(
                f"Task {task!r}: format={kwargs['format']!r} is not supported for session cost; use 'jsonl' "
                "(median_session_cost_usd is an exact decimal)."
            )
        self.app_slug, self.model, self.turn_range = app_slug, model, turn_range
        self.max_cells = max_cells
        self.fail_if_incomplete = fail_if_incomplete
        slug, mdl, turns = (None if templated(v) else v for v in (app_slug, model, turn_range))
        try:
            session_cost.validate_params(slug, mdl, turns, max_cells=max_cells)
        except InvalidParameterError as exc:
            raise InvalidParameterError(f"Task {task!r}: {exc}") from None
        super().__init__(output_uri=output_uri, **kwargs)

    def serialise(
        self, records: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]]
    ) -> tuple[bytes, None]:
        """JSON Lines with ``median_session_cost_usd`` as a number literal carrying every digit."""
        return formats.exact_jsonl_bytes(records), None

    def _filters(self) -> tuple[str | None, str | None, str | None]:
        return (self.app_slug or None, self.model or None, self.turn_range or None)

    def _asset_suffix(self) -> str | None:
        if any(templated(v) for v in (self.app_slug, self.model, self.turn_range)):
            return session_cost.DIRECTORY
        return "/".join([session_cost.DIRECTORY, *session_cost.filter_segments(*self._filters())])

    def land(self, context: Context) -> dict[str, Any]:
        app_slug, model, turn_range = self._filters()
        try:
            session_cost.validate_params(app_slug, model, turn_range, self.max_cells)
        except InvalidParameterError as exc:
            raise InvalidParameterError(f"Task {self.task_id!r}: {exc}") from None
        base = self._base()
        hook = OpenRouterHook(self.openrouter_conn_id)
        self.log.info(
            "Requesting OpenRouter session-cost: app_slug=%s model=%s turn_range=%s max_cells=%d via connection %r.",
            app_slug or "all",
            model or "all",
            turn_range or "all",
            self.max_cells,
            self.openrouter_conn_id,
        )
        result = hook.get_session_cost(app_slug, model, turn_range, self.max_cells)
        meta = result.meta
        seen = session_cost_memory.from_meta(meta, hook.get_conn().base_url)
        if seen is not None:
            session_cost_memory.remember(self.openrouter_conn_id, seen)
        window = meta.window
        if window is None or meta.window_end_date is None:
            message = (
                f"Skipping: OpenRouter has no session-cost snapshot published ({meta.describe()}: "
                f"window_end_date is null). Nothing was written; {hook.request_count} request(s) spent. "
                "A later run will look again (OpenRouterSessionCostSensor waits without spending requests)."
            )
            self.log.info(message)
            raise AirflowSkipException(message)
        if not result.complete:
            why = (
                f"the API's ceiling of {session_cost.CEILING} cells was reached"
                if result.capped
                else f"max_cells={self.max_cells} was reached"
            )
            problem = (
                f"The snapshot ending {meta.window_end_date} may hold more cells than the {len(result.rows)} "
                f"fetched: {why}. Narrow the task with app_slug, model or turn_range (one task each) to reach the rest."
            )
            if self.fail_if_incomplete:
                raise InvalidParameterError(
                    f"{problem} Nothing was written (fail_if_incomplete=True)."
                )
            self.log.warning(
                "%s Landing what was fetched (the manifest says complete=false).", problem
            )
        key = session_cost.partition_key(meta.window_end_date, app_slug, model, turn_range)
        fetch = Fetch(window, dict(meta.raw), tuple(result.requests), datetime.now(timezone.utc))
        with Landing(self, base) as landing:
            landing.stage(
                key, [row.to_record() for row in result.rows], session_cost.COLUMNS, fetch, window
            )
            landing.commit(
                window,
                extra={
                    "snapshot": {
                        "window_end_date": meta.window_end_date.isoformat(),
                        "window_days": meta.window_days,
                        "version": meta.version,
                    },
                    "session_cost_query": {
                        "app_slug": app_slug,
                        "model": model,
                        "turn_range": turn_range,
                        "max_cells": self.max_cells,
                    },
                    "complete": result.complete,
                    "capped": result.capped,
                    "truncated": result.truncated,
                    "public_page": session_cost.PUBLIC_PAGE,
                    "numbers": NUMBERS,
                },
            )
        if landing.items and landing.items[0][0].status == "unchanged":
            self.log.info(
                "The snapshot ending %s is already landed with identical data at %s: nothing written.",
                meta.window_end_date,
                key,
            )
        summary = self._report(context, window, landing, hook)
        summary.update(
            partition=key,
            window_end_date=meta.window_end_date.isoformat(),
            complete=result.complete,
        )
        return summary
