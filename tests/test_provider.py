"""Airflow discovers the provider: CLI listings and the connection form's metadata."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_openrouter.compat import AIRFLOW_VERSION

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
    # the JSON is the last line that parses (older Airflow logs a few lines of its own to stdout first)
    for line in reversed(out.stdout.splitlines()):
        if line.startswith("["):
            try:
                return json.loads(line)
            except ValueError:
                continue
    raise AssertionError(f"no JSON list in the output of airflow {' '.join(args)}:\n{out.stdout}")


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


@pytest.mark.skipif(
    AIRFLOW_VERSION < (3, 1, 0),
    reason="Airflow 3.0 builds custom connection-form fields only from Flask-AppBuilder widgets; "
    "it reads a provider's conn-fields from 3.1 on",
)
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
