"""Provider metadata that Airflow reads through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any


def get_provider_info() -> dict[str, Any]:
    """Describe this provider to Airflow's providers manager (cheap: imports nothing)."""
    from airflow_provider_openrouter import __version__

    return {
        "package-name": "airflow-provider-openrouter",
        "name": "OpenRouter",
        "description": "Land OpenRouter's public usage datasets (model and app rankings, cost per session) in any object store.",
        "versions": [__version__],
        "connection-types": [
            {
                "connection-type": "openrouter",
                "hook-class-name": "airflow_provider_openrouter.hooks.openrouter.OpenRouterHook",
                "hook-name": "OpenRouter",
                "conn-fields": {
                    "http_referer": {
                        "label": "HTTP-Referer (your app's URL)",
                        "schema": {"type": ["string", "null"]},
                        "description": "Sent as HTTP-Referer; OpenRouter attributes the calling app by it.",
                    },
                    "x_title": {
                        "label": "App title",
                        "schema": {"type": ["string", "null"]},
                        "description": "Sent as X-OpenRouter-Title.",
                    },
                    "categories": {
                        "label": "App categories",
                        "schema": {"type": ["string", "null"]},
                        "description": "Comma-separated, sent as X-OpenRouter-Categories (e.g. cli-agent,cloud-agent).",
                    },
                    "timeout": {
                        "label": "Timeout (seconds)",
                        "schema": {"type": ["number", "null"], "default": 60},
                    },
                    "management_api_key": {
                        "label": "Management key (analytics)",
                        "schema": {"type": ["string", "null"], "format": "password"},
                        "description": "Only for the beta analytics API; or name another connection in management_conn_id.",
                    },
                    "management_conn_id": {
                        "label": "Management key connection",
                        "schema": {"type": ["string", "null"]},
                        "description": "An openrouter connection whose API key is a management key (analytics).",
                    },
                    "requests_per_minute": {
                        "label": "Requests per minute",
                        "schema": {"type": ["integer", "null"], "default": 30},
                        "description": "Pacing per key inside each task process (OpenRouter allows 30).",
                    },
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "login"],
                    "relabeling": {"password": "API key", "host": "Base URL"},
                    "placeholders": {
                        "host": "https://openrouter.ai/api/v1",
                        "password": "sk-or-...",
                    },
                },
            }
        ],
        "hooks": [
            {
                "integration-name": "OpenRouter",
                "python-modules": ["airflow_provider_openrouter.hooks.openrouter"],
            }
        ],
        "operators": [
            {
                "integration-name": "OpenRouter",
                "python-modules": [
                    "airflow_provider_openrouter.operators.rankings",
                    "airflow_provider_openrouter.operators.analytics",
                    "airflow_provider_openrouter.operators.session_cost",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": "OpenRouter",
                "python-modules": [
                    "airflow_provider_openrouter.sensors.as_of",
                    "airflow_provider_openrouter.sensors.session_cost",
                ],
            }
        ],
        "triggers": [
            {
                "integration-name": "OpenRouter",
                "python-modules": [
                    "airflow_provider_openrouter.triggers.as_of",
                    "airflow_provider_openrouter.triggers.session_cost",
                ],
            }
        ],
        "extra-links": [
            "airflow_provider_openrouter.operators.links.OpenRouterDatasetPageLink",
            "airflow_provider_openrouter.operators.links.OpenRouterPartitionLink",
        ],
        "asset-uris": [
            {
                # assets the hook reports to Airflow's hook lineage collector, e.g.
                # openrouter://openrouter.ai/api/v1/datasets/rankings-daily; OpenLineage names them
                # namespace https://openrouter.ai, name /api/v1/datasets/rankings-daily
                "schemes": ["openrouter"],
                "handler": None,
                "to_openlineage_converter": "airflow_provider_openrouter.runtime.lineage.asset_to_openlineage",
            }
        ],
        "integrations": [
            {
                "integration-name": "OpenRouter",
                "external-doc-url": "https://openrouter.ai/docs",
                "tags": ["service"],
            }
        ],
    }
