"""The MLflow UI, in a real headless browser, shows the churn training runs and the champion model.

`mlflow_store` provides `(tracking_uri, expectations)`. Every assertion is driven by `expectations`:

    {"experiment": "cxloop-churn",        # experiment whose runs are listed
     "run_names": ["...", "..."],         # runs that must be visible on the experiment page
     "metric": "roc_auc",                 # metric that must be reachable from the runs table
     "model": "cxloop-churn",             # registered model
     "champion_version": "1"}             # version that carries the `champion` alias

The store is the one the platform job trained into twice (a champion, then a challenger).
"""

from __future__ import annotations

import json
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.browser import browser_page, free_port, start_server, wait_for_text, wait_until

pytestmark = pytest.mark.e2e

CHAMPION = "champion"


@pytest.fixture(scope="module")
def mlflow_store(trained) -> tuple[str, dict]:
    """The store the platform job trained into (tests/e2e/conftest.py), and what the UI must show of it."""
    from ml.config import CHAMPION as CHAMPION_ALIAS, MODEL_NAMES
    from ml.tracking import version_by_alias
    from orchestration.lib.models import mlflow_store as store_of

    store = store_of(trained.settings)
    client = store.client()
    model = MODEL_NAMES["churn"]
    experiment = client.get_experiment_by_name(model)
    runs = client.search_runs([experiment.experiment_id], "tags.`cxloop.decision` != ''")
    assert len(runs) == 2, [r.info.run_name for r in runs]
    return store.tracking_uri, {
        "experiment": model,
        "run_names": sorted(r.info.run_name for r in runs),
        "metric": "roc_auc",
        "model": model,
        "champion_version": str(version_by_alias(client, model, CHAMPION_ALIAS).version),
    }


@pytest.fixture(scope="module")
def mlflow_ui(mlflow_store):
    """`mlflow ui` on the store, on 127.0.0.1: (base URL, expectations)."""
    tracking_uri, expectations = mlflow_store
    port = free_port()
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    # One worker: each uvicorn worker imports MLflow on its own (~12 s of CPU each), and the default of
    # four takes minutes to answer on a small machine; one serves the UI of a single browser fine.
    server = start_server([mlflow_cli, "ui", "--backend-store-uri", tracking_uri,
                           "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                          url=f"http://127.0.0.1:{port}/health", timeout=120)
    try:
        yield f"http://127.0.0.1:{port}", expectations
    finally:
        server.stop()


def experiment_id(base: str, name: str) -> str:
    """The id of experiment `name`, from the server's REST API (the UI routes experiments by id)."""
    url = f"{base}/api/2.0/mlflow/experiments/get-by-name?{urllib.parse.urlencode({'experiment_name': name})}"
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return json.loads(response.read())["experiment"]["experiment_id"]
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"the tracking server has no experiment {name!r}: {exc.read()[:500]!r}") from exc


def metric_cells(page, metric: str) -> dict[str, str]:
    """Runs table: {run name: shown value of `metric`} for the rows that show the metric column.

    The runs table is an ag-grid whose pinned and scrolling parts are separate rows sharing a `row-id`
    (the run id); its columns carry `col-id`s in MLflow's search syntax (attributes.`Run Name`,
    metrics.`roc_auc`)."""
    return page.evaluate(
        r"""([metric]) => {
            const byRow = (colId) => {
                const out = {};
                for (const cell of document.querySelectorAll(`[role=gridcell][col-id="${colId}"]`)) {
                    const row = cell.closest('[role=row]');
                    if (row && row.getAttribute('row-id')) out[row.getAttribute('row-id')] = cell.innerText;
                }
                return out;
            };
            const names = byRow('attributes.`Run Name`');
            const values = byRow(`metrics.\`${metric}\``);
            const shown = {};
            for (const [id, name] of Object.entries(names)) {
                if (id in values) shown[name.split('\n').pop().trim()] = values[id].trim();
            }
            return shown;
        }""",
        [metric])


def test_experiment_page_lists_the_training_runs_and_their_metric(mlflow_ui, tmp_path):
    base, expectations = mlflow_ui
    exp_id = experiment_id(base, expectations["experiment"])
    metric = expectations["metric"]
    with browser_page() as page:
        page.goto(f"{base}/#/experiments/{exp_id}/runs")
        try:
            wait_for_text(page, expectations["experiment"], timeout=60)
            for run_name in expectations["run_names"]:
                wait_for_text(page, run_name, timeout=60, within="[role=grid]")

            # Metric columns are hidden by default: the metric must be offered by the column chooser,
            # and once chosen every expected run must show a number in its column.
            page.get_by_role("button", name="Columns").click()
            wait_for_text(page, metric, within="[role=dialog]")
            page.get_by_role("dialog").get_by_text(metric, exact=True).click()
            page.keyboard.press("Escape")
            shown = {}

            def every_run_has_a_value():
                shown.update(metric_cells(page, metric))
                return all(re.fullmatch(r"-?\d+(\.\d+)?(e-?\d+)?", shown.get(name, ""))
                           for name in expectations["run_names"])

            wait_until(page, every_run_has_a_value, f"not every run shows a {metric} value",
                       detail=lambda: f"\n{metric} shown per run: {shown}")
        finally:
            page.screenshot(path=str(tmp_path / "experiment-runs.png"), full_page=True)


def test_model_page_shows_the_champion_alias_on_its_version(mlflow_ui, tmp_path):
    base, expectations = mlflow_ui
    model = expectations["model"]
    with browser_page() as page:
        page.goto(f"{base}/#/models/{urllib.parse.quote(model)}")
        try:
            wait_for_text(page, model, timeout=60)
            wait_for_text(page, CHAMPION, timeout=60, within="[role=table]")
            rows = {}

            def versions_with_aliases():
                # Each version row of the versions table: a "Version N" link and its aliases as "@ alias".
                rows.clear()
                for row in page.locator("[role=table] [role=row]").all_inner_texts():
                    version = re.search(r"^Version (\d+)$", row, re.MULTILINE)
                    if version:
                        rows[version.group(1)] = re.findall(r"@\s*(\S+)", row)
                return rows

            wait_until(page, versions_with_aliases, f"no version rows for {model!r}")
            carrying = [version for version, aliases in rows.items() if CHAMPION in aliases]
            assert carrying == [expectations["champion_version"]], (
                f"{CHAMPION!r} is shown on versions {carrying}, expected version "
                f"{expectations['champion_version']}; aliases per version: {rows}")
        finally:
            page.screenshot(path=str(tmp_path / "registered-model.png"), full_page=True)
