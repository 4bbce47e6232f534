"""The customer data layer: every dbt model is an asset, wired to the raw assets through dbt sources."""


import json
import os
import shutil
import uuid

import dagster as dg
from dagster_dbt import DbtCliResource, dbt_assets, get_asset_key_for_model

from orchestration.defs.ingest.assets import WAREHOUSE_POOL
from orchestration.lib import lake
from orchestration.lib.dbt import CxloopTranslator, dbt_project
from orchestration.lib.failpoints import failpoint
from orchestration.lib.settings import Settings, get_settings
from orchestration.lib.warehouse import DBT_INPUTS, connect, present_inputs


def dbt_build_args(present: list[str], model_vars: dict[str, int] | None = None) -> list[str]:
    """`dbt build` arguments that skip models needing an absent input (a landing source, or a table a Python
    asset writes) and tell the rest what is present, plus the feature cutoffs and label horizon from the
    settings."""
    args = ["build", "--vars", json.dumps({"cxloop_sources": present, **(model_vars or {})})]
    absent = [s for s in DBT_INPUTS if s not in present]
    if absent:
        # One space-separated value: dagster-dbt reads a single value after --exclude.
        args += ["--exclude", " ".join(f"tag:requires_{s}" for s in absent)]
    return args


# Models that read tables the Python assets write (scores, experiment statistics) build in a second dbt step
# after those assets; everything else builds in the first. Selected by lineage, so no model is named here.
AFTER_PYTHON = "source:cxloop+ source:analysis+"
# dbt target folders kept per installation: the latest invocations' run results and logs, for debugging.
KEEP_DBT_INVOCATIONS = 10


def invocation_target(settings: Settings, context: dg.AssetExecutionContext):
    """A fresh target folder for one dbt invocation under this installation's `dbt_runs_dir`, oldest pruned.

    dagster-dbt would otherwise write one folder per invocation into the project's `target/`, shared by every
    installation using the checkout and never cleaned.
    """
    root = settings.dbt_runs_dir
    root.mkdir(parents=True, exist_ok=True)
    folders = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    for old in folders[:max(0, len(folders) - KEEP_DBT_INVOCATIONS + 1)]:
        shutil.rmtree(old, ignore_errors=True)
    return root / f"{context.op_execution_context.op.name}-{context.run.run_id[:8]}-{uuid.uuid4().hex[:7]}"


def _build(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    settings = get_settings()
    os.environ.update(settings.environ())
    with connect(settings) as con:
        present = present_inputs(con)
    absent = [s for s in DBT_INPUTS if s not in present]
    if absent:
        context.log.info(f"sources with no data: {absent}; models requiring them are skipped")
    if settings.engine != "duckdb":
        # Spark reads the raw layer and the Python assets' tables from the Parquet lake (docs/engines.md).
        lake.export_sources(settings, dbt_project().manifest_path)
    invocation = dbt.cli(dbt_build_args(present, settings.model_vars()), context=context,
                         target_path=invocation_target(settings, context))
    for built, event in enumerate(invocation.stream(), start=1):
        yield event
        if built == 3:
            failpoint("dbt.mid_build")
    if settings.engine != "duckdb":
        # The Python assets keep reading the warehouse file: views there over the tables Spark wrote.
        with connect(settings) as con:
            lake.attach_marts(con, settings, lake.table_models(dbt_project().manifest_path))


@dbt_assets(
    manifest=dbt_project().manifest_path,
    project=dbt_project(),
    dagster_dbt_translator=CxloopTranslator(),
    pool=WAREHOUSE_POOL,
    exclude=AFTER_PYTHON,
)
def cxloop_dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    """Builds staging views, intermediate and mart tables and runs their dbt tests in one invocation
    (each dbt invocation has a fixed cost of several seconds). Models that need a source with no data are
    excluded, so they show as skipped rather than failed."""
    yield from _build(context, dbt)


@dbt_assets(
    manifest=dbt_project().manifest_path,
    project=dbt_project(),
    dagster_dbt_translator=CxloopTranslator(),
    pool=WAREHOUSE_POOL,
    select=AFTER_PYTHON,
    name="cxloop_activation_models",
)
def cxloop_activation_models(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    """Builds the models that read what the Python assets wrote: the churn-risk audience from the scores and
    `experiment_results` from the experiment statistics, with their dbt tests, in a second invocation."""
    yield from _build(context, dbt)


def model_key(name: str) -> dg.AssetKey:
    """The asset key of a dbt model, whichever of the two dbt steps builds it (both share the translator)."""
    return get_asset_key_for_model([cxloop_dbt_models], name)
