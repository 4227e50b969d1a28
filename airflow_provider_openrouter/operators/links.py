"""Extra links of the dataset operators: the dataset's public page and the partition a run wrote.

Registered in ``get_provider_info`` (``extra-links``). The task runner resolves them when the task
ends and stores the URLs in XCom, which the UI shows as buttons on the task instance.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperatorLink

from airflow_provider_openrouter.api.datasets import app_rankings, rankings_daily, session_cost

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator

#: XCom key under which a dataset operator stores the URI of the newest partition it landed.
PARTITION_XCOM_KEY = "openrouter_partition_uri"

#: Endpoint path -> the page where people see that dataset on openrouter.ai.
PUBLIC_PAGES = {
    rankings_daily.PATH: rankings_daily.PUBLIC_PAGE,
    app_rankings.PATH: app_rankings.PUBLIC_PAGE,
    session_cost.PATH: session_cost.PUBLIC_PAGE,
}


class OpenRouterDatasetPageLink(BaseOperatorLink):
    """The dataset on openrouter.ai (``/rankings`` for rankings-daily, ``/apps`` for app-rankings)."""

    name = "OpenRouter dataset page"

    def get_link(self, operator: BaseOperator, *, ti_key: Any) -> str:
        return PUBLIC_PAGES.get(getattr(operator, "request_path", ""), "")


class OpenRouterPartitionLink(BaseOperatorLink):
    """The partition the task landed (the newest one when the run covered several)."""

    name = "Partition written"

    def get_link(self, operator: BaseOperator, *, ti_key: Any) -> str:
        try:
            from airflow.sdk.bases.xcom import BaseXCom as XCom
        except ImportError:  # pragma: no cover - Airflow 3.0
            from airflow.sdk.execution_time.xcom import XCom  # type: ignore[no-redef, unused-ignore]
        value = XCom.get_value(ti_key=ti_key, key=PARTITION_XCOM_KEY)
        return value if isinstance(value, str) else ""
