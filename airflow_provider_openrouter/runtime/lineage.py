"""OpenLineage for the provider: which OpenRouter dataset a run read, which lake dataset it wrote.

Inputs are named after the API endpoint: namespace ``https://openrouter.ai`` (the dataset's
identity, whichever base URL, proxy or emulator, served it) and name the endpoint's path under the
connection's base URL, e.g. ``/api/v1/datasets/rankings-daily``; the window, the query parameters
sent, ``as_of`` and the base URL actually used are in the input facet ``openrouter_request``.
Outputs are named by OpenLineage's rules for the store (``file`` + absolute path, ``s3://bucket`` +
key, ...; the same names the providers give Airflow assets), one per dataset directory
(``{output_uri}/rankings_daily``, ``{output_uri}/app_rankings/sort=.../category=.../subcategory=...``),
never one per day: the partitions of the run are listed in the output facet ``openrouter_partitions``.

Everything from OpenLineage is imported inside the functions, so nothing here needs the
OpenLineage provider; without it the operators return no lineage and the hook records none.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from airflow_provider_openrouter.api.datasets import (
    CAVEATS,
    LICENSE,
    app_rankings,
    rankings_daily,
    session_cost,
)

if TYPE_CHECKING:
    from airflow.sdk import Asset

log = logging.getLogger(__name__)

#: The namespace of every OpenRouter input dataset.
NAMESPACE = "https://openrouter.ai"
#: URI scheme of the assets the hook reports to Airflow's hook lineage collector
#: (``openrouter://openrouter.ai/api/v1/datasets/rankings-daily``), registered with a converter to
#: OpenLineage in ``get_provider_info`` (no provider converts ``https`` assets).
ASSET_SCHEME = "openrouter"
#: Facet keys of this provider.
REQUEST_FACET = "openrouter_request"
PARTITIONS_FACET = "openrouter_partitions"
SOURCE_FACET = "openrouter_source"
#: Identifies the provider's custom facets (no public JSON schema is published for them yet).
SCHEMA_URL = "urn:airflow-provider-openrouter:openlineage-facets:1"

#: Endpoint path -> the dataset module that documents it.
DATASETS = {
    rankings_daily.PATH: rankings_daily,
    app_rankings.PATH: app_rankings,
    session_cost.PATH: session_cost,
}
#: Column kinds of ``COLUMNS`` -> the type names in the schema facet (JSON Lines; parquet files say their own).
COLUMN_TYPES = {"date": "date", "string": "string", "int": "integer"}


def endpoint_name(base_url: str, path: str) -> str:
    """``/api/v1/datasets/rankings-daily``: the connection's base URL path, then the endpoint path."""
    return urlsplit(base_url).path.rstrip("/") + "/" + path.lstrip("/")


def public_url(url: str) -> str:
    """``url`` without user info, query or fragment (safe in events)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path.rstrip('/')}"


@dataclass(frozen=True)
class PartitionRecord:
    """One partition of a run as it landed."""

    key: str
    status: str
    rows: int
    size: int
    sha256: str
    previous_sha256: str | None
    data_file: str

    @property
    def rewritten(self) -> bool:
        """Earlier, different data of this partition was overwritten (a restatement or format change)."""
        return self.status in ("restated", "replaced")

    @property
    def written(self) -> bool:
        return self.status != "unchanged"


@dataclass(frozen=True)
class SourceInfo:
    """What a lineage graph should say about where the data comes from and how to use it."""

    name: str
    description: str
    citation: str | None = None
    license: str | None = None
    caveats: str | None = None
    public_page: str | None = None

    def documentation(self) -> str:
        parts = [
            self.description,
            self.citation or "",
            f"Licence: {self.license}" if self.license else "",
            self.caveats or "",
        ]
        return " ".join(p for p in parts if p)


def public_dataset_source(request_path: str, as_of: str) -> SourceInfo:
    """A public dataset's (``api/datasets``) citation, CC BY 4.0 licence, caveats and page; a
    citation without ``as_of`` (a hook call) ends after the source."""
    module = DATASETS.get(request_path)
    if module is None:
        return SourceInfo(name=request_path, description=f"OpenRouter API {request_path}.")
    cite = (
        module.CITATION.format(as_of=as_of) if as_of else module.CITATION.split(", as of")[0] + "."
    )
    return SourceInfo(
        name=module.NAME,
        description=f"OpenRouter {module.NAME} dataset ({module.PUBLIC_PAGE}).",
        citation=cite,
        license=getattr(module, "LICENSE", LICENSE),
        caveats=getattr(module, "CAVEATS", CAVEATS),
        public_page=module.PUBLIC_PAGE,
    )


@dataclass
class LandingRecord:
    """What one operator run read and wrote: everything its lineage needs, no request more."""

    dataset: str
    request_path: str
    base_url: str
    output_uri: str
    output_dir: str
    window: Mapping[str, Any]
    parameters: Sequence[Mapping[str, Any]]
    as_of: str
    requests: int
    data_format: str
    source: SourceInfo | None = None
    columns: Sequence[tuple[str, str]] = ()
    parquet_schema: Mapping[str, str] | None = None
    partitions: list[PartitionRecord] = field(default_factory=list)

    @property
    def output_asset_uri(self) -> str:
        return self.output_uri.rstrip("/") + "/" + self.output_dir

    @property
    def source_info(self) -> SourceInfo:
        return self.source or public_dataset_source(self.request_path, self.as_of)


@cache
def _facet_classes() -> tuple[type, type, type]:
    """The provider's custom facets (attrs classes built on OpenLineage's base facets, on first use)."""
    import attr
    from openlineage.client.generated.base import (
        DatasetFacet,
        InputDatasetFacet,
        OutputDatasetFacet,
    )

    @attr.define
    class OpenRouterRequestInputDatasetFacet(InputDatasetFacet):
        """The window, query parameters and ``as_of`` of what a run read from OpenRouter."""

        window: dict[str, Any] = attr.field(factory=dict)
        parameters: list[dict[str, Any]] = attr.field(factory=list)
        asOf: str | None = attr.field(default=None)
        requests: int | None = attr.field(default=None)
        baseUrl: str | None = attr.field(default=None)

        @staticmethod
        def _get_schema() -> str:
            return SCHEMA_URL + "#/$defs/OpenRouterRequestInputDatasetFacet"

    @attr.define
    class OpenRouterSourceDatasetFacet(DatasetFacet):
        """Citation, licence and caveats OpenRouter attaches to its datasets (None where none applies)."""

        citation: str | None = attr.field(default=None)
        license: str | None = attr.field(default=None)
        caveats: str | None = attr.field(default=None)
        publicPage: str | None = attr.field(default=None)

        @staticmethod
        def _get_schema() -> str:
            return SCHEMA_URL + "#/$defs/OpenRouterSourceDatasetFacet"

    @attr.define
    class OpenRouterPartitionsOutputDatasetFacet(OutputDatasetFacet):
        """The partitions of the output dataset this run landed, with their status and checksums."""

        partitions: list[dict[str, Any]] = attr.field(factory=list)

        @staticmethod
        def _get_schema() -> str:
            return SCHEMA_URL + "#/$defs/OpenRouterPartitionsOutputDatasetFacet"

    return (
        OpenRouterRequestInputDatasetFacet,
        OpenRouterSourceDatasetFacet,
        OpenRouterPartitionsOutputDatasetFacet,
    )


def _source_facets(source: SourceInfo) -> dict[str, Any]:
    from airflow.providers.common.compat.openlineage.facet import DocumentationDatasetFacet

    _, source_facet, _ = _facet_classes()
    return {
        "documentation": DocumentationDatasetFacet(description=source.documentation()),
        SOURCE_FACET: source_facet(
            citation=source.citation,
            license=source.license,
            caveats=source.caveats,
            publicPage=source.public_page,
        ),
    }


def input_dataset(record: LandingRecord) -> Any:
    """The OpenRouter endpoint the run read, with its request facet."""
    from airflow.providers.common.compat.openlineage.facet import InputDataset

    request_facet, _, _ = _facet_classes()
    return InputDataset(
        namespace=NAMESPACE,
        name=endpoint_name(record.base_url, record.request_path),
        facets=_source_facets(record.source_info),
        inputFacets={
            REQUEST_FACET: request_facet(
                window=dict(record.window),
                parameters=[
                    {k: v for k, v in p.items() if v is not None} for p in record.parameters
                ],
                asOf=record.as_of or None,
                requests=record.requests,
                baseUrl=public_url(record.base_url),
            )
        },
    )


def store_dataset_name(uri: str) -> tuple[str, str]:
    """``(namespace, name)`` of a stored dataset by OpenLineage's naming rules for its store.

    Uses the converters the installed providers register for Airflow assets (``file`` from
    common-io, ``s3`` from amazon, ``gs`` from google, ...), so the names equal those of the same
    asset elsewhere in the lineage graph; else ``scheme://authority`` and the path.
    """
    try:
        from airflow.providers.common.compat.openlineage.utils.utils import translate_airflow_asset
        from airflow.sdk import Asset

        converted = translate_airflow_asset(Asset(uri), None)
    except Exception:
        converted = None
    if converted is not None:
        return converted.namespace, converted.name
    parts = urlsplit(uri)
    if parts.scheme in ("file", "local", ""):
        return "file", parts.path
    authority = parts.hostname or parts.netloc
    return f"{parts.scheme}://{authority}", parts.path.lstrip("/")


def output_dataset(record: LandingRecord) -> Any:
    """The lake dataset the run wrote: statistics, schema, documentation, partitions, overwrite mark."""
    from airflow.providers.common.compat.openlineage.facet import (
        LifecycleStateChange,
        LifecycleStateChangeDatasetFacet,
        OutputDataset,
        OutputStatisticsOutputDatasetFacet,
        SchemaDatasetFacet,
        SchemaDatasetFacetFields,
    )

    _, _, partitions_facet = _facet_classes()
    namespace, name = store_dataset_name(record.output_asset_uri)
    written = [p for p in record.partitions if p.written]
    types = dict(record.parquet_schema or {})
    facets: dict[str, Any] = {
        "schema": SchemaDatasetFacet(
            fields=[
                SchemaDatasetFacetFields(
                    name=column, type=types.get(column, COLUMN_TYPES.get(kind, kind))
                )
                for column, kind in record.columns
            ]
        ),
        **_source_facets(record.source_info),
    }
    if any(p.rewritten for p in record.partitions):
        facets["lifecycleStateChange"] = LifecycleStateChangeDatasetFacet(
            lifecycleStateChange=LifecycleStateChange.OVERWRITE
        )
    return OutputDataset(
        namespace=namespace,
        name=name,
        facets=facets,
        outputFacets={
            "outputStatistics": OutputStatisticsOutputDatasetFacet(
                rowCount=sum(p.rows for p in written),
                size=sum(p.size for p in written),
                fileCount=len(written),
            ),
            PARTITIONS_FACET: partitions_facet(
                partitions=[
                    {
                        "key": p.key,
                        "status": p.status,
                        "rows": p.rows,
                        "size": p.size,
                        "dataFile": p.data_file,
                        "sha256": p.sha256,
                        "previousSha256": p.previous_sha256,
                    }
                    for p in record.partitions
                ]
            ),
        },
    )


def operator_lineage(record: LandingRecord | None) -> Any:
    """An ``OperatorLineage`` for the run, or None when the OpenLineage provider is not installed."""
    try:
        from airflow.providers.openlineage.extractors import OperatorLineage
    except ImportError:
        return None
    if record is None:
        return OperatorLineage()
    return OperatorLineage(inputs=[input_dataset(record)], outputs=[output_dataset(record)])


# ------------------------------------------------------------------ hook-level lineage
def asset_uri(base_url: str, path: str) -> str:
    """``openrouter://openrouter.ai/api/v1/datasets/rankings-daily``: the asset a hook call reports."""
    return f"{ASSET_SCHEME}://{urlsplit(NAMESPACE).netloc}{endpoint_name(base_url, path)}"


def record_hook_input(hook: Any, base_url: str, path: str, parameters: Mapping[str, Any]) -> None:
    """Tell Airflow's hook lineage collector that ``hook`` read an OpenRouter endpoint.

    A task calling the hook directly (``@task``, ``PythonOperator``) then shows the endpoint as its
    input in OpenLineage. Best effort: without a collector (Airflow or provider too old) nothing happens.
    Outside a task (plugins never loaded, so no lineage reader either) it does nothing rather than
    load every plugin, which takes seconds.
    """
    if not _plugins_loaded():
        return
    try:
        try:
            from airflow.providers.common.compat.lineage.hook import get_hook_lineage_collector
        except ImportError:
            from airflow.sdk.lineage import get_hook_lineage_collector  # type: ignore[no-redef, unused-ignore]
        get_hook_lineage_collector().add_input_asset(
            context=hook,
            uri=asset_uri(base_url, path),
            asset_extra={
                "parameters": {k: str(v) for k, v in parameters.items() if v is not None},
                "base_url": public_url(base_url),
            },
        )
    except Exception:
        log.debug("Could not record hook lineage for %s.", path, exc_info=True)


def _plugins_loaded() -> bool:
    """Whether this process has loaded Airflow's plugins (a task process has, for its listeners)."""
    try:
        from airflow.sdk import plugins_manager

        return plugins_manager._get_plugins.cache_info().currsize != 0
    except (ImportError, AttributeError):  # another Airflow version: assume loaded
        return True


def asset_to_openlineage(asset: Asset, lineage_context: Any) -> Any:
    """Converter of ``openrouter://`` assets to OpenLineage datasets (registered in ``get_provider_info``)."""
    from airflow.providers.common.compat.openlineage.facet import Dataset

    parts = urlsplit(asset.uri)
    extra = dict(asset.extra or {})
    path = parts.path
    endpoint = next((p for p in DATASETS if path.endswith(p)), None)
    facets: dict[str, Any] = _source_facets(public_dataset_source(endpoint, "")) if endpoint else {}
    if extra:
        request_facet, _, _ = _facet_classes()
        # the request facet is an input facet; on a bare Dataset it travels with the dataset facets
        facets[REQUEST_FACET] = request_facet(
            parameters=[dict(cast("Mapping[str, Any]", extra.get("parameters") or {}))],
            baseUrl=extra.get("base_url"),
        )
    return Dataset(namespace=f"https://{parts.netloc}", name=path, facets=facets)
