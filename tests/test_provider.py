"""Airflow discovers the provider: CLI listings and the connection form's metadata."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

AIRFLOW = str(Path(sys.executable).with_name("airflow"))


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("airflow_cli_home")
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    env.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", None)
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True, timeout=180)
    return env


def airflow_json(env: dict[str, str], *args: str) -> list[dict[str, object]]:
    out = subprocess.run([AIRFLOW, *args, "-o", "json"], env=env, check=True, capture_output=True, text=True, timeout=120)
    return json.loads(out.stdout[out.stdout.index("[") :])


def test_providers_list_and_hooks_show_openrouter(cli_env: dict[str, str]) -> None:
    providers = {p["package_name"]: p for p in airflow_json(cli_env, "providers", "list")}
    assert providers["airflow-provider-openrouter"]["version"] == "0.1.0"
    hooks = {h["connection_type"]: h for h in airflow_json(cli_env, "providers", "hooks")}
    assert hooks["openrouter"]["class"] == "airflow_provider_openrouter.hooks.openrouter.OpenRouterHook"
    assert hooks["openrouter"]["hook_name"] == "OpenRouter"


def test_a_connection_of_type_openrouter_can_be_added_and_listed(cli_env: dict[str, str]) -> None:
    subprocess.run(
        [AIRFLOW, "connections", "add", "openrouter_cli", "--conn-type", "openrouter",
         "--conn-host", "http://127.0.0.1:1/api/v1", "--conn-password", "sk-or-cli-test-key"],
        env=cli_env, check=True, capture_output=True, timeout=120,
    )
    listed = {c["conn_id"]: c for c in airflow_json(cli_env, "connections", "list")}
    assert listed["openrouter_cli"]["conn_type"] == "openrouter"


def test_connection_form_metadata_labels_the_api_key_and_hides_unused_fields() -> None:
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

    meta = {m.connection_type: m for m in HookMetaService.hook_meta_data()}["openrouter"]
    standard = meta.standard_fields.model_dump() if meta.standard_fields else {}
    assert standard["password"]["title"] == "API key"
    assert standard["host"]["title"] == "Base URL"
    assert standard["login"]["hidden"] and standard["port"]["hidden"]
    assert {"http_referer", "x_title", "categories", "timeout", "requests_per_minute", "management_api_key"} <= {
        name.rsplit("__", 1)[-1] for name in (meta.extra_fields or {})
    }


def test_hook_declares_the_same_form_as_provider_info() -> None:
    from airflow_provider_openrouter.get_provider_info import get_provider_info
    from airflow_provider_openrouter.hooks.openrouter import OpenRouterHook

    conn = get_provider_info()["connection-types"][0]
    behaviour = OpenRouterHook.get_ui_field_behaviour()
    assert conn["ui-field-behaviour"]["hidden-fields"] == behaviour["hidden_fields"]
    assert conn["ui-field-behaviour"]["relabeling"] == behaviour["relabeling"]
    assert conn["connection-type"] == OpenRouterHook.conn_type


def test_extra_links_and_the_lineage_asset_scheme_are_registered() -> None:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    assert {
        "airflow_provider_openrouter.operators.links.OpenRouterDatasetPageLink",
        "airflow_provider_openrouter.operators.links.OpenRouterPartitionLink",
    } <= set(manager.extra_links_class_names)
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    converters = ProvidersManagerTaskRuntime().asset_to_openlineage_converters  # what tasks translate with
    assert converters["openrouter"].__name__ == "asset_to_openlineage"
