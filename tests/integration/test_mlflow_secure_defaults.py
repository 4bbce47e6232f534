"""MLflow as cxloop configures it, against a real local store: models load without unpickling, a pickled model
is refused, and MLflow's HTTP retries are bounded by defaults a user can override."""

from __future__ import annotations

import numpy as np
import pytest

from ml.tracking import CLIENT_DEFAULTS, SECURE_ENV, Store, configure_client, load_booster


@pytest.fixture
def mlflow_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """MLflow's variables unset for the test and restored after it (setenv first so undo removes them)."""
    for name in (*CLIENT_DEFAULTS, *SECURE_ENV):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    return monkeypatch


def test_client_defaults_bound_retries_keep_a_users_setting_and_turn_unpickling_off(mlflow_env):
    from mlflow.environment_variables import (
        MLFLOW_ALLOW_PICKLE_DESERIALIZATION,
        MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR,
        MLFLOW_HTTP_REQUEST_MAX_RETRIES,
        MLFLOW_HTTP_REQUEST_TIMEOUT,
    )

    mlflow_env.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "90")
    mlflow_env.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
    configure_client()
    # Read back through MLflow's own accessors: these are the names it honours.
    assert MLFLOW_HTTP_REQUEST_MAX_RETRIES.get() == 3 and MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR.get() == 1
    assert MLFLOW_HTTP_REQUEST_TIMEOUT.get() == 90
    assert MLFLOW_ALLOW_PICKLE_DESERIALIZATION.get() is False


@pytest.mark.reliability(area="Model tracking", case="A pickled model in the MLflow registry",
                         outcome="Refused at load (MLFLOW_ALLOW_PICKLE_DESERIALIZATION off); cxloop's native "
                                 "LightGBM boosters load and predict as trained")
def test_native_boosters_load_and_pickled_models_are_refused(tmp_path, mlflow_env):
    import lightgbm as lgb
    import mlflow
    import mlflow.lightgbm
    from mlflow.exceptions import MlflowException

    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 4))
    y = (X[:, 0] + rng.normal(scale=0.5, size=200) > 0).astype(int)
    booster = lgb.train({"objective": "binary", "verbose": -1, "num_threads": 1}, lgb.Dataset(X, y),
                        num_boost_round=5)
    store = Store.local(tmp_path / "mlflow")
    client = store.client()
    requirements = [f"lightgbm=={lgb.__version__}"]
    with mlflow.start_run(experiment_id=store.experiment_id(client, "secure-defaults")):
        mlflow.lightgbm.log_model(booster, name="native", registered_model_name="native-booster",
                                  pip_requirements=requirements)
        # The scikit-learn wrapper is saved with cloudpickle: what a tampered or foreign model would look like.
        wrapper = lgb.LGBMClassifier(n_estimators=5, verbose=-1).fit(X, y)
        mlflow.lightgbm.log_model(wrapper, name="pickled", registered_model_name="pickled-wrapper",
                                  pip_requirements=requirements)

    loaded = load_booster("native-booster", 1)
    np.testing.assert_allclose(loaded.predict(X), booster.predict(X))
    with pytest.raises(MlflowException, match="MLFLOW_ALLOW_PICKLE_DESERIALIZATION"):
        load_booster("pickled-wrapper", 1)
