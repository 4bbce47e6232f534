"""The configuration files of the production shape (deploy/) load, and carry the embedded default's limits.

No cluster, bucket or database here: each file is checked the way Dagster, Helm or bash reads it, with the
variables it names set to dummy values. The instance config passes Dagster's instance schema, and the storage,
run coordinator, run launcher and compute log manager it names each accept their part of it (their own
`config_type()`, through Dagster's config processing, which also resolves the variables). Dagster has no
public API that checks an instance config without connecting to its stores, hence the `dagster._core` imports.

The checks that import dagster-k8s and dagster-aws (about 8 s of CPU for the Kubernetes and AWS clients) are
marked `scale` and run with `make test-scale`; the rest run in `make test`.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from orchestration.cli import instance_yaml, write_instance_yaml
from orchestration.lib.settings import PROJECT_ROOT, get_settings

DEPLOY = PROJECT_ROOT / "deploy"
SHIPPED = PROJECT_ROOT / "orchestration" / "dagster.yaml"
DUMMY_ENV = {
    "CXLOOP_DAGSTER_PG_URL": "postgresql+psycopg2://cxloop:secret@postgres.example.internal:5432/dagster",
    "CXLOOP_K8S_NAMESPACE": "cxloop",
    "CXLOOP_S3_BUCKET": "cxloop-example",
    "AWS_REGION": "eu-west-1",
}
EXPECTED_CLASSES = {
    "storage": "DagsterPostgresStorage",
    "run_coordinator": "QueuedRunCoordinator",
    "run_launcher": "K8sRunLauncher",
    "compute_logs": "S3ComputeLogManager",
}
# Secrets, kept out of the ConfigMap (deploy/cxloop.env) on purpose.
SECRET_VARS = {"CXLOOP_DAGSTER_PG_URL"}


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def class_configs(instance_dir: Path) -> dict[str, tuple[str, object]]:
    """Each configurable part of the instance in `instance_dir`: (class name, its processed config), after the
    whole file passed the instance schema."""
    from dagster._config import process_config
    from dagster._core.instance.ref import InstanceRef
    from dagster._serdes import class_from_code_pointer

    ref = InstanceRef.from_dir(str(instance_dir))
    out = {}
    for part, data in (("storage", ref.storage_data), ("run_coordinator", ref.run_coordinator_data),
                       ("run_launcher", ref.run_launcher_data), ("compute_logs", ref.compute_logs_data)):
        klass = class_from_code_pointer(data.module_name, data.class_name)
        result = process_config(klass.config_type(), yaml.safe_load(data.config_yaml) or {})
        assert result.success, f"{part} ({data.class_name}): {[e.message for e in result.errors]}"
        out[part] = (data.class_name, result.value)
    return out


@pytest.fixture
def deploy_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in DUMMY_ENV.items():
        monkeypatch.setenv(name, value)
    return DUMMY_ENV


@pytest.mark.scale
def test_the_production_instance_config_loads_with_postgres_k8s_and_s3(deploy_env):
    parts = class_configs(DEPLOY / "dagster")
    assert {part: name for part, (name, _) in parts.items()} == EXPECTED_CLASSES
    assert parts["storage"][1]["postgres_url"] == deploy_env["CXLOOP_DAGSTER_PG_URL"]
    launcher = parts["run_launcher"][1]
    assert launcher["job_namespace"] == "cxloop" and launcher["instance_config_map"] == "cxloop-dagster-instance"
    assert parts["compute_logs"][1]["bucket"] == "cxloop-example"


@pytest.mark.scale
def test_a_variable_the_instance_names_must_be_set(deploy_env, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("CXLOOP_S3_BUCKET")
    with pytest.raises(AssertionError, match="CXLOOP_S3_BUCKET"):
        class_configs(DEPLOY / "dagster")


def test_every_variant_keeps_the_embedded_defaults_pools_and_run_limits(deploy_env):
    shipped = load(SHIPPED)
    production = load(DEPLOY / "dagster" / "dagster.yaml")
    assert production["concurrency"] == shipped["concurrency"]
    assert {k: production["run_monitoring"][k] for k in shipped["run_monitoring"]} == shipped["run_monitoring"]

    helm = load(DEPLOY / "dagster" / "helm-values.yaml")
    runs = helm["concurrency"]["runs"]
    assert helm["concurrency"]["enabled"] is True
    assert {"pools": {"default_limit": helm["concurrency"]["pools"]["defaultLimit"]},
            "runs": {"max_concurrent_runs": runs["maxConcurrentRuns"],
                     "tag_concurrency_limits": runs["tagConcurrencyLimits"]}} == shipped["concurrency"]
    assert helm["runLauncher"]["type"] == "K8sRunLauncher"
    assert helm["dagsterDaemon"]["runCoordinator"]["type"] == "QueuedRunCoordinator"
    assert helm["postgresql"]["postgresqlScheme"] == "postgresql+psycopg2"


@pytest.mark.scale
def test_the_helm_compute_log_settings_are_what_s3_compute_log_manager_accepts():
    from dagster._config import process_config
    from dagster_aws.s3.compute_log_manager import S3ComputeLogManager

    helm = load(DEPLOY / "dagster" / "helm-values.yaml")["computeLogManager"]
    assert helm["type"] == "S3ComputeLogManager"
    snake = {re.sub(r"(?<!^)(?=[A-Z])", "_", k).lower(): v for k, v in helm["config"]["s3ComputeLogManager"].items()}
    assert process_config(S3ComputeLogManager.config_type(), snake).success


def test_the_workspaces_name_one_code_location_cxloop():
    from dagster._core.workspace.config_schema import process_workspace_config

    for path in (DEPLOY / "dagster" / "workspace.yaml", PROJECT_ROOT / "workspace.yaml"):
        config = load(path)
        assert process_workspace_config(config).success, path
        (entry,) = config["load_from"]
        assert next(iter(entry.values()))["location_name"] == "cxloop", path
    grpc = load(DEPLOY / "dagster" / "workspace.yaml")["load_from"][0]["grpc_server"]
    deployment = load(DEPLOY / "dagster" / "helm-values.yaml")["dagster-user-deployments"]["deployments"][0]
    assert grpc["port"] == deployment["port"]
    assert deployment["dagsterApiGrpcArgs"] == ["--module-name", "orchestration.definitions"]


def test_the_settings_config_map_names_only_variables_something_reads():
    """Every variable of deploy/cxloop.env is read by the settings or named by the instance config, and every
    variable the instance config names is in the ConfigMap or is a secret."""
    env = dict(line.split("=", 1) for line in (DEPLOY / "cxloop.env").read_text().splitlines()
               if line and not line.startswith("#"))
    settings_source = (PROJECT_ROOT / "orchestration" / "lib" / "settings.py").read_text()
    instance_text = (DEPLOY / "dagster" / "dagster.yaml").read_text()
    instance_vars = set(re.findall(r"env: ([A-Z0-9_]+)", instance_text))
    for name in env:
        assert f'"{name}"' in settings_source or name in instance_vars, name
    assert instance_vars - SECRET_VARS <= set(env), instance_vars - set(env)


def test_the_mlflow_server_script_needs_its_stores_and_serves_artifacts(tmp_path: Path):
    script = DEPLOY / "mlflow" / "server.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    missing = subprocess.run(["bash", str(script)], env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True)
    assert missing.returncode != 0 and "CXLOOP_MLFLOW_BACKEND_STORE_URI" in missing.stderr
    env = {"PATH": "/usr/bin:/bin", "MLFLOW": "echo",
           "CXLOOP_MLFLOW_BACKEND_STORE_URI": "postgresql+psycopg2://mlflow:secret@db:5432/mlflow",
           "CXLOOP_MLFLOW_ARTIFACTS_DESTINATION": "s3://cxloop-example/mlflow",
           "CXLOOP_MLFLOW_ALLOWED_HOSTS": "mlflow.example.com"}
    args = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, check=True).stdout.split()
    assert args[:5] == ["server", "--backend-store-uri", env["CXLOOP_MLFLOW_BACKEND_STORE_URI"],
                        "--artifacts-destination", "s3://cxloop-example/mlflow"]
    assert "--serve-artifacts" in args and args[-2:] == ["--allowed-hosts", "mlflow.example.com"]


def test_the_embedded_default_is_the_shipped_file_and_postgres_adds_storage_and_the_queue(
        cx, monkeypatch: pytest.MonkeyPatch):
    assert instance_yaml(cx) == SHIPPED.read_text()
    assert write_instance_yaml(cx) is True and write_instance_yaml(cx) is False

    monkeypatch.setenv("CXLOOP_DAGSTER_PG_URL", DUMMY_ENV["CXLOOP_DAGSTER_PG_URL"])
    settings = get_settings()
    assert write_instance_yaml(settings) is True, "a changed setting rewrites the instance config"
    parts = class_configs(settings.dagster_home)
    assert parts["storage"][0] == "DagsterPostgresStorage" and parts["run_coordinator"][0] == "QueuedRunCoordinator"
    written = load(settings.dagster_home / "dagster.yaml")
    assert written["concurrency"] == load(SHIPPED)["concurrency"]
    assert "secret" not in (settings.dagster_home / "dagster.yaml").read_text()

    monkeypatch.delenv("CXLOOP_DAGSTER_PG_URL")
    assert write_instance_yaml(get_settings()) is True
    assert (settings.dagster_home / "dagster.yaml").read_text() == SHIPPED.read_text()


def test_a_postgres_url_without_the_psycopg2_driver_is_refused_at_prepare(cx, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CXLOOP_DAGSTER_PG_URL", "postgresql://cxloop:secret@db:5432/dagster")
    with pytest.raises(SystemExit, match=r"postgresql\+psycopg2://") as exc:
        instance_yaml(get_settings())
    assert "secret" not in str(exc.value)
