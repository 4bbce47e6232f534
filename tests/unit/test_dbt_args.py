import json

from orchestration.defs.transform.assets import dbt_build_args
from orchestration.lib.settings import SOURCES
from orchestration.lib.warehouse import DBT_INPUTS


def test_all_sources_present_builds_everything():
    args = dbt_build_args(list(DBT_INPUTS))
    assert args[0] == "build" and "--exclude" not in args
    assert json.loads(args[args.index("--vars") + 1]) == {"cxloop_sources": list(DBT_INPUTS)}


def test_text_layer_not_written_yet_skips_its_models():
    args = dbt_build_args(list(SOURCES))
    assert args[args.index("--exclude") + 1] == "tag:requires_voc"


def test_absent_sources_exclude_their_models_in_one_selector_value():
    args = dbt_build_args(["customers", "orders"])
    excluded = args[args.index("--exclude") + 1].split()
    assert excluded == [f"tag:requires_{s}" for s in DBT_INPUTS if s not in ("customers", "orders")]
    assert json.loads(args[args.index("--vars") + 1]) == {"cxloop_sources": ["customers", "orders"]}


def test_model_vars_reach_dbt():
    from orchestration.lib.settings import Settings

    args = dbt_build_args(list(DBT_INPUTS), {"cxloop_horizon_days": 30, "cxloop_train_cutoffs": 2})
    passed = json.loads(args[args.index("--vars") + 1])
    assert passed["cxloop_horizon_days"] == 30 and passed["cxloop_train_cutoffs"] == 2
    assert set(Settings.from_env().model_vars()) == {"cxloop_horizon_days", "cxloop_cutoff_step_days",
                                                     "cxloop_train_cutoffs"}
