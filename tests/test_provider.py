"""Airflow discovers the provider: CLI listings and the connection form's metadata."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_openrouter.compat import AIRFLOW_VERSION

AIRFLOW = str(Path(sys.executable).with_name("airflow"))


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("airflow_cli_home")
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    env.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", None)
    subprocess.run(
        [AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True, timeout=180
    )
    return env


def airflow_json(env: dict[str, str], *args: str) -> list[dict[str, object]]:
    out = subprocess.run(
        [AIRFLOW, *args, "-o", "json"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
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
    assert (
        hooks["openrouter"]["class"]
        == "airflow_provider_openrouter.hooks.openrouter.OpenRouterHook"
    )
    assert hooks["openrouter"]["hook_name"] == "OpenRouter"


def test_a_connection_of_type_openrouter_can_be_added_and_listed(cli_env: dict[str, str]) -> None:
    subprocess.run(
        [
            AIRFLOW,
            "connections",
            "add",
            "openrouter_cli",
            "--conn-type",
            "openrouter",
            "--conn-host",
            "http://127.0.0.1:1/api/v1",
            "--conn-password",
            "sk-or-cli-test-key",
        ],
        env=cli_env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    listed = {c["conn_id"]: c for c in airflow_json(cli_env, "connections", "list")}
    assert listed["openrouter_cli"]["conn_type"] == "openrouter"


def _form_metadata() -> Any:
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

    return {m.connection_type: m for m in HookMetaService.hook_meta_data()}["openrouter"]


@pytest.mark.skipif(
    AIRFLOW_VERSION < (3, 1, 0),
    reason="Airflow 3.0 customises the connection form only through Flask-AppBuilder widgets",
)
def test_connection_form_metadata_labels_the_api_key_and_hides_unused_fields() -> None:
    meta = _form_metadata()
    standard = meta.standard_fields.model_dump() if meta.standard_fields else {}
    assert standard["password"]["title"] == "API key"
    assert standard["host"]["title"] == "Base URL"
    assert standard["login"]["hidden"] and standard["port"]["hidden"]


@pytest.mark.skipif(
    AIRFLOW_VERSION < (3, 2, 0),
    reason="Airflow reads a provider's conn-fields into the connection form from 3.2 on",
)
def test_connection_form_metadata_has_the_extras_as_inputs() -> None:
    meta = _form_metadata()
    assert {
        "http_referer",
        "x_title",
        "categories",
        "timeout",
        "requests_per_minute",
        "management_api_key",
    } <= {name.rsplit("__", 1)[-1] for name in (meta.extra_fields or {})}


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
    runtime = pytest.importorskip(
        "airflow.sdk.providers_manager_runtime", reason="task-runtime converters (Airflow 3.2+)"
    )

    converters = (
        runtime.ProvidersManagerTaskRuntime().asset_to_openlineage_converters
    )  # what tasks translate with
    assert converters["openrouter"].__name__ == "asset_to_openlineage"


def test_a_uri_connection_added_from_the_cli_keeps_its_path_and_tests_ok(
    cli_env: dict[str, str], openrouter_emulator: Any
) -> None:
    hostport = openrouter_emulator.base_url.removeprefix("http://").removesuffix("/api/v1")
    uri = f"openrouter://http://:sk-or-emulator@{hostport}/api/v1"
    subprocess.run(
        [AIRFLOW, "connections", "add", "openrouter_uri", "--conn-uri", uri],
        env=cli_env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    stored = airflow_json(cli_env, "connections", "get", "openrouter_uri")[0]
    assert (stored["host"], stored["schema"]) == (f"http://{hostport.split(':')[0]}", "api/v1")
    env = {**cli_env, "AIRFLOW__CORE__TEST_CONNECTION": "Enabled"}
    tested = subprocess.run(
        [AIRFLOW, "connections", "test", "openrouter_uri"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert tested.returncode == 0 and "Connection success!" in tested.stdout, (
        tested.stdout + tested.stderr
    )
    assert openrouter_emulator.request_count("/key") == 1
    # Without the path the URI reaches the server's root, and the test says what to fix.
    subprocess.run(
        [
            AIRFLOW,
            "connections",
            "add",
            "openrouter_root",
            "--conn-uri",
            f"openrouter://http://:sk-or-emulator@{hostport}",
        ],
        env=cli_env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    tested = subprocess.run(
        [AIRFLOW, "connections", "test", "openrouter_root"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (
        "Connection failed!" in tested.stdout
        and "Check that the Base URL ends with /api/v1" in tested.stdout
    )
    assert "sk-or-emulator" not in tested.stdout + tested.stderr
