"""The shipped configuration file states the built-in defaults, and a bad file is an error naming the key."""

from __future__ import annotations

import pytest

from analytics.anomalies import DEFAULT_MONITORS, load_monitors
from analytics.experiments import ExperimentConfig, load_experiment_configs
from orchestration.lib.measure import ConfigError, measure_config
from orchestration.lib.settings import PROJECT_ROOT


def test_shipped_config_is_the_built_in_defaults(cx):
    assert cx.config_file == PROJECT_ROOT / "config" / "cxloop.yml"
    config = measure_config(cx)
    assert load_monitors(config["anomalies"]) == list(DEFAULT_MONITORS)
    experiments = load_experiment_configs(config["experiments"])
    assert experiments.default == ExperimentConfig()
    assert experiments["checkout_button"].control == "control"


def test_an_absent_file_means_every_default(cx, monkeypatch, tmp_path):
    monkeypatch.setenv("CXLOOP_CONFIG", str(tmp_path / "none.yml"))
    from orchestration.lib.settings import get_settings

    assert measure_config(get_settings()) == {}
    assert load_monitors(None) == list(DEFAULT_MONITORS)


@pytest.mark.parametrize("text, message", [
    ("alerts: {}\n", r"unknown section\(s\) alerts"),
    ("anomalies: [\n", "not valid YAML"),
    ("- a\n", "expected a mapping"),
])
def test_a_bad_file_names_the_file_and_the_problem(monkeypatch, tmp_path, text, message):
    path = tmp_path / "cxloop.yml"
    path.write_text(text)
    monkeypatch.setenv("CXLOOP_CONFIG", str(path))
    from orchestration.lib.settings import get_settings

    with pytest.raises(ConfigError, match=message) as error:
        measure_config(get_settings())
    assert str(path) in str(error.value)


def test_a_misspelt_metric_or_key_is_an_error():
    with pytest.raises(ValueError, match="aov_usd"):
        load_monitors({"metrics": {"aov_usd": {"enabled": False}}})
    with pytest.raises(ValueError, match="sensitivty"):
        load_monitors({"metrics": {"sessions": {"sensitivty": 3}}})
