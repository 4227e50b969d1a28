"""The ``_manifest.json`` of a partition: what was fetched, from where, as of when, and its checksum.

A manifest is the commit record of its partition (see :mod:`airflow_provider_openrouter.lake.storage`):
readers trust a data file only through the manifest that names it and carries its sha256.
Pure functions, no I/O. Manifests never hold secrets: ``request`` is the query parameters or the
body sent, which carry no API key (the key only ever travels in the ``Authorization`` header).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

from airflow_provider_openrouter import __version__
from airflow_provider_openrouter.api.datasets import (
    CAVEATS,
    LICENSE,
    app_rankings,
    rankings_daily,
    session_cost,
)
from airflow_provider_openrouter.windows.intervals import Window

MANIFEST_VERSION = 1

RANKINGS_DAILY = rankings_daily.NAME
APP_RANKINGS = app_rankings.NAME
SESSION_COST = session_cost.NAME
#: Public dataset name -> citation template (``{as_of}`` is the snapshot time from ``meta.as_of``).
#: A public dataset is one line here; the caller's own data needs none (``own_data=True``).
CITATIONS = {
    RANKINGS_DAILY: rankings_daily.CITATION,
    APP_RANKINGS: app_rankings.CITATION,
    SESSION_COST: session_cost.CITATION,
}

#: Keys every manifest must carry; a manifest without one of them is not a commit record.
REQUIRED_KEYS = (
    "manifest_version",
    "dataset",
    "partition",
    "data_file",
    "sha256",
    "row_count",
    "meta",
)
_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,99}")


class ManifestError(ValueError):
    """A ``_manifest.json`` that cannot be a commit record (unreadable JSON, missing keys, bad names)."""


def window_record(window: Window) -> dict[str, Any]:
    """A JSON-ready description of a window of UTC days (``clamped_from`` when cut at the floor)."""
    return {
        "start": window.start.isoformat(),
        "end": window.end.isoformat(),
        "days": window.days,
        "clamped_from": window.clamped_from.isoformat() if window.clamped_from else None,
    }


def citation(dataset: str, as_of: str) -> str:
    """The attribution line OpenRouter asks for, e.g. ``Source: OpenRouter (openrouter.ai/rankings), as of ...``."""
    return CITATIONS[dataset].format(as_of=as_of)


def build_manifest(
    *,
    dataset: str,
    partition: str,
    row_count: int,
    data_format: str,
    data_file: str,
    sha256: str,
    size: int,
    meta: Mapping[str, Any],
    window: Window | None = None,
    run_window: Window | None = None,
    request_path: str | None = None,
    request_params: Sequence[Mapping[str, Any]] | None = None,
    request_body: Mapping[str, Any] | None = None,
    request_details: Mapping[str, Any] | None = None,
    fetched_at: datetime | None = None,
    own_data: bool = False,
    inputs: Sequence[Mapping[str, Any]] | None = None,
    computed_at: datetime | None = None,
    citation: str | None = None,
    license: str | None = None,
    caveats: str | None = None,
    previous_sha256: str | None = None,
    schema: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble a manifest (a plain dict, keys in a stable order): the one schema of every dataset.

    Every manifest holds ``manifest_version, dataset, partition, window, meta, row_count, format,
    data_file, sha256, size, previous_sha256, provider_version, citation, license, caveats`` (plus
    ``schema`` for parquet and the caller's ``extra`` keys last), and its provenance, one of:

    * fetched from OpenRouter: ``run_window``, ``request`` and ``fetched_at``. ``request`` is
      ``{"path", "params"}`` for GET requests (``request_params``: the query parameters of every
      request) or ``{"path", "body"}`` for a POST (``request_body``: the JSON body sent), followed
      by ``request_details`` (e.g. how the body was split and how many requests it took).
      Public data (``dataset`` is one of :data:`CITATIONS`) is cited by its dataset's template,
      under :data:`LICENSE` and :data:`CAVEATS`. The caller's own data (``own_data=True``, e.g.
      their organisation's usage read with a management key; any plain dataset name outside
      :data:`CITATIONS`) has nothing to cite and no public licence: ``citation`` and ``license``
      are null, ``caveats`` too unless given;
    * derived from committed partitions (any other dataset name): ``inputs`` (see
      :func:`input_record`: each input's dataset, partition, window, sha256, row count, as_of and
      citation) and ``computed_at``; the citation defaults to the inputs' distinct citations, and
      the licence and caveats to the public ones when any input is public (cited), else null.

    :param partition: the partition's path relative to the output root (e.g. ``rankings_daily/date=2025-07-04``).
    :param window: the days this partition covers (may be None for derived data not tied to days);
        ``run_window`` the days of the whole run (``clamped_from`` set when the run's interval started
        before the dataset's first day).
    :param meta: the API's ``meta`` block, verbatim (derived data: ``as_of`` of its newest input and
        the caller's own keys).
    :param previous_sha256: the sha256 of the data this commit replaced, when it differed (a restatement).
    :param schema: column types of a parquet file.
    """
    public = dataset in CITATIONS
    fetched = public or own_data
    if fetched:
        if public and own_data:
            raise ValueError(
                f"{dataset!r} is public OpenRouter data with a citation, not the caller's own data"
            )
        if own_data:
            check_dataset_name(dataset)
            if citation is not None or license is not None:
                raise ValueError(
                    f"{dataset!r} is the caller's own data: it has no citation or licence to record"
                )
        if inputs is not None or computed_at is not None:
            raise ValueError(
                f"{dataset!r} is fetched from OpenRouter; a derived dataset needs a name of its own"
            )
        if window is None or run_window is None or request_path is None or fetched_at is None:
            raise ValueError(
                f"a {dataset!r} manifest needs window, run_window, request_path and fetched_at"
            )
        if (request_params is None) == (request_body is None):
            raise ValueError(
                f"a {dataset!r} manifest needs request_params (GET query parameters) or request_body (a POST's body), "
                "exactly one of them"
            )
    else:
        check_dataset_name(dataset)
        if inputs is None or computed_at is None:
            raise ValueError(
                f"unknown dataset {dataset!r}: a derived dataset's manifest needs inputs and computed_at "
                f"(public datasets: {', '.join(CITATIONS)}; own_data=True for the caller's own data)"
            )
    as_of = str(meta.get("as_of", ""))
    manifest: dict[str, Any] = {
        "manifest_version": MANIFEST_VERSION,
        "dataset": dataset,
        "partition": partition,
        "window": window_record(window) if window is not None else None,
    }
    if fetched:
        assert run_window is not None  # checked above
        manifest["run_window"] = window_record(run_window)
        manifest["request"] = request_record(
            request_path, request_params, request_body, request_details
        )
    else:
        manifest["inputs"] = [dict(item) for item in inputs or ()]
    manifest.update(
        {
            "meta": dict(meta),
            "row_count": row_count,
            "format": data_format,
            "data_file": data_file,
            "sha256": sha256,
            "size": size,
            "previous_sha256": previous_sha256,
        }
    )
    moment = fetched_at if fetched else computed_at
    assert moment is not None  # checked above
    manifest["fetched_at" if fetched else "computed_at"] = _utc_text(moment)
    if public:
        cited = True
        citation = CITATIONS[dataset].format(as_of=as_of) if citation is None else citation
    elif own_data:
        cited = False
    else:
        cited = bool(input_citations(inputs or ()))
        citation = derived_citation(inputs or ()) if citation is None else citation
    manifest.update(
        {
            "provider_version": __version__,
            "citation": citation,
            "license": license if license is not None else (LICENSE if cited else None),
            "caveats": caveats if caveats is not None else (CAVEATS if cited else None),
        }
    )
    if schema is not None:
        manifest["schema"] = dict(schema)
    if extra:
        clash = [key for key in extra if key in manifest or key in REQUIRED_KEYS]
        if clash:
            raise ValueError(f"extra manifest keys {clash} would overwrite the manifest's own")
        manifest.update(extra)
    return manifest


def request_record(
    path: str | None,
    params: Sequence[Mapping[str, Any]] | None = None,
    body: Mapping[str, Any] | None = None,
    details: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``{"path", "params"}`` (GET: each request's query parameters) or ``{"path", "body"}`` (POST),
    then ``details``. Never a secret: keys travel in the ``Authorization`` header only."""
    record: dict[str, Any] = {"path": path}
    if params is not None:
        record["params"] = [dict(p) for p in params]
    if body is not None:
        record["body"] = dict(body)
    clash = [key for key in details or () if key in ("path", "params", "body")]
    if clash:
        raise ValueError(f"request details {clash} would overwrite the request's own")
    record.update(details or {})
    return record


def input_record(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """What a derived partition's manifest records of one input: the input's own manifest, condensed."""
    window = manifest.get("window")
    return {
        "dataset": manifest.get("dataset"),
        "partition": manifest.get("partition"),
        "window": {"start": window["start"], "end": window["end"]}
        if isinstance(window, Mapping)
        else None,
        "sha256": manifest["sha256"],
        "row_count": manifest["row_count"],
        "as_of": (manifest.get("meta") or {}).get("as_of"),
        "citation": manifest.get("citation"),
    }


def input_citations(inputs: Sequence[Mapping[str, Any]]) -> list[str]:
    """The distinct citation lines of ``inputs``, in order (one per source and snapshot time)."""
    seen: list[str] = []
    for item in inputs:
        line = str(item.get("citation") or "")
        if line and line not in seen:
            seen.append(line)
    return seen


def derived_citation(inputs: Sequence[Mapping[str, Any]]) -> str | None:
    """The default citation of derived data: ``Derived from: <each distinct input citation>``, or
    None when no input is cited (all are the caller's own data)."""
    lines = input_citations(inputs)
    return "Derived from: " + " ".join(lines) if lines else None


def check_dataset_name(name: str) -> None:
    """Raise :class:`ValueError` unless ``name`` is a plain dataset name (lowercase, digits, ``-_.``)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(
            f"dataset {name!r} is not a plain name: use lowercase letters, digits, '-', '_' or '.' "
            "(e.g. 'rankings-weekly-share')"
        )


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def with_data_file(manifest: Mapping[str, Any], data_file: str) -> dict[str, Any]:
    """The same manifest naming another file of the partition (pending file, then canonical file)."""
    return {**manifest, "data_file": data_file}


def dumps(manifest: Mapping[str, Any]) -> bytes:
    """Serialise a manifest: UTF-8 JSON, two-space indent, keys in insertion order, trailing newline."""
    return (
        json.dumps(manifest, ensure_ascii=False, indent=2, default=_json_default) + "\n"
    ).encode("utf-8")


def loads(raw: bytes) -> dict[str, Any]:
    """Parse and check a manifest; raise :class:`ManifestError` saying what is wrong."""
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ManifestError(f"_manifest.json is not valid UTF-8 JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise ManifestError("_manifest.json is not a JSON object")
    missing = [key for key in REQUIRED_KEYS if key not in manifest]
    if missing:
        raise ManifestError(f"_manifest.json lacks {', '.join(missing)}")
    name = manifest["data_file"]
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or name in (".", ".."):
        raise ManifestError(
            f"_manifest.json names {name!r} as its data file; it must be a plain file name"
        )
    digest = manifest["sha256"]
    if (
        not isinstance(digest, str)
        or len(digest) != 64
        or any(c not in "0123456789abcdef" for c in digest)
    ):
        raise ManifestError(
            f"_manifest.json has sha256 {digest!r}; expected 64 lowercase hex digits"
        )
    return manifest


def _json_default(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):  # the client parses JSON floats as Decimal to keep them exact
        as_float = float(value)
        return as_float if Decimal(repr(as_float)) == value else str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
