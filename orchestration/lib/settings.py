"""One settings object that resolves every path and secret cxloop uses.

Everything comes from environment variables with defaults under the project's `data/` folder, so the
embedded default needs no configuration and a deployment changes only its environment.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("events", "customers", "orders", "payments", "tickets", "reviews", "surveys")


def _path(env: str, default: Path) -> Path:
    value = os.environ.get(env)
    return Path(value).expanduser().resolve() if value else default


@dataclass(frozen=True)
class Settings:
    """Paths and secrets of one cxloop installation.

    `home` is the root of everything cxloop writes; the rest default to folders under it.
    """

    home: Path
    landing_dir: Path
    warehouse: Path
    pii_db: Path
    serving_dir: Path
    dagster_home: Path
    mlflow_dir: Path
    dbt_project_dir: Path
    dbt_target: str
    alerts_dir: Path
    reports_dir: Path
    dbt_runs_dir: Path
    mlflow_tracking_uri: str | None = None
    dagster_pg_url: str | None = None
    mlflow_ui_url: str = "http://127.0.0.1:5000"
    horizon_days: int = 90
    cutoff_step_days: int = 30
    train_cutoffs: int = 6
    promotion_margin: float = 0.005
    config_file: Path = PROJECT_ROOT / "config" / "cxloop.yml"
    dagster_ui_url: str = "http://127.0.0.1:3000"
    alert_webhook_url: str | None = None
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    alert_email_from: str = "cxloop@localhost"
    alert_email_to: tuple[str, ...] = ()
    alert_suppress_hours: float = 24.0
    alert_lookback_days: int = 3
    alert_breakdowns: bool = False
    duckdb_memory_limit: str | None = None
    duckdb_temp_dir: Path | None = None
    engine: str = "duckdb"
    lake_dir: Path | None = None
    spark_dir: Path | None = None

    @classmethod
    def from_env(cls) -> "Settings":
        home = _path("CXLOOP_HOME", PROJECT_ROOT)
        data = _path("CXLOOP_DATA_DIR", home / "data")
        engine = _engine(os.environ.get("CXLOOP_ENGINE", "duckdb"))
        return cls(
            home=home,
            landing_dir=_path("CXLOOP_LANDING_DIR", data / "landing"),
            warehouse=_path("CXLOOP_WAREHOUSE", data / "warehouse" / "cxloop.duckdb"),
            pii_db=_path("CXLOOP_PII_DB", data / "restricted" / "pii.duckdb"),
            serving_dir=_path("CXLOOP_SERVING_DIR", data / "serving"),
            dagster_home=_path("DAGSTER_HOME", data / "dagster"),
            mlflow_dir=_path("CXLOOP_MLFLOW_DIR", data / "mlflow"),
            dbt_project_dir=PROJECT_ROOT / "dbt_project",
            # The engine dbt builds on (docs/engines.md): `duckdb`, the embedded default, or `spark`; it names the
            # profile's target unless CXLOOP_DBT_TARGET picks another output of the same engine.
            engine=engine,
            dbt_target=os.environ.get("CXLOOP_DBT_TARGET") or engine,
            # The raw layer as Parquet, one folder per dbt source table, for engines that cannot read the DuckDB file.
            lake_dir=_path("CXLOOP_LAKE_DIR", data / "lake"),
            # Spark's warehouse files, Derby metastore and logs when dbt runs on a local Spark session.
            spark_dir=_path("CXLOOP_SPARK_DIR", data / "spark"),
            # Unset: a SQLite store and artifact folder under `mlflow_dir`. Set: any MLflow tracking server. Not
            # MLFLOW_TRACKING_URI, which MLflow itself writes into the environment when a client connects.
            mlflow_tracking_uri=os.environ.get("CXLOOP_MLFLOW_TRACKING_URI") or None,
            # Unset: the Dagster instance keeps runs, events and schedules in SQLite under `dagster_home`. Set (a
            # `postgresql://` URL): in that Postgres database, so a webserver, a daemon and run workers on other
            # machines share one instance. `cxloop prepare` writes the instance config from it (docs/deploy.md).
            dagster_pg_url=os.environ.get("CXLOOP_DAGSTER_PG_URL") or None,
            # Where people open the MLflow UI: the base of the run links in Dagster metadata.
            mlflow_ui_url=os.environ.get("CXLOOP_MLFLOW_UI_URL", "http://127.0.0.1:5000").rstrip("/"),
            horizon_days=int(os.environ.get("CXLOOP_HORIZON_DAYS", 90)),
            cutoff_step_days=int(os.environ.get("CXLOOP_CUTOFF_STEP_DAYS", 30)),
            train_cutoffs=int(os.environ.get("CXLOOP_TRAIN_CUTOFFS", 6)),
            promotion_margin=float(os.environ.get("CXLOOP_PROMOTION_MARGIN", 0.005)),
            # Anomaly monitors and experiment settings (docs/operations.md); the shipped file holds the defaults.
            config_file=_path("CXLOOP_CONFIG", PROJECT_ROOT / "config" / "cxloop.yml"),
            dagster_ui_url=os.environ.get("CXLOOP_DAGSTER_UI_URL", "http://127.0.0.1:3000").rstrip("/"),
            alerts_dir=_path("CXLOOP_ALERTS_DIR", data / "alerts"),
            reports_dir=_path("CXLOOP_REPORTS_DIR", data / "reports"),
            # Each dbt invocation's target folder (run results, compiled SQL, dbt.log) of this installation.
            dbt_runs_dir=_path("CXLOOP_DBT_RUNS_DIR", data / "dbt"),
            # Alert sinks: each is on when its variables are set; the log sink under `alerts_dir` is always on.
            alert_webhook_url=os.environ.get("CXLOOP_ALERT_WEBHOOK_URL") or None,
            smtp_host=os.environ.get("CXLOOP_SMTP_HOST") or None,
            smtp_port=int(os.environ.get("CXLOOP_SMTP_PORT", 25)),
            smtp_user=os.environ.get("CXLOOP_SMTP_USER") or None,
            smtp_password=os.environ.get("CXLOOP_SMTP_PASSWORD") or None,
            smtp_starttls=os.environ.get("CXLOOP_SMTP_STARTTLS", "false").lower() in ("1", "true", "yes"),
            alert_email_from=os.environ.get("CXLOOP_ALERT_EMAIL_FROM", "cxloop@localhost"),
            alert_email_to=tuple(a.strip() for a in os.environ.get("CXLOOP_ALERT_EMAIL_TO", "").split(",")
                                 if a.strip()),
            alert_suppress_hours=float(os.environ.get("CXLOOP_ALERT_SUPPRESS_HOURS", 24)),
            alert_lookback_days=int(os.environ.get("CXLOOP_ALERT_LOOKBACK_DAYS", 3)),
            alert_breakdowns=os.environ.get("CXLOOP_ALERT_BREAKDOWNS", "false").lower() in ("1", "true", "yes"),
            # DuckDB's memory limit for every connection to the warehouse, dbt's included ("16GB", "75%"); unset
            # keeps DuckDB's default (80% of RAM). Past it DuckDB spills to `duckdb_temp_dir`.
            duckdb_memory_limit=os.environ.get("CXLOOP_DUCKDB_MEMORY_LIMIT") or None,
            duckdb_temp_dir=_path("CXLOOP_DUCKDB_TEMP_DIR", data / "tmp" / "duckdb"),
        )

    def model_vars(self) -> dict[str, int]:
        """The dbt vars that fix the cutoffs and label horizon of `customer_features`/`customer_labels`."""
        return {"cxloop_horizon_days": self.horizon_days, "cxloop_cutoff_step_days": self.cutoff_step_days,
                "cxloop_train_cutoffs": self.train_cutoffs}

    @property
    def truth_dir(self) -> Path:
        """Where the simulator writes its truth file next to a simulated landing directory."""
        return self.landing_dir.parent / "truth"

    @property
    def key_file(self) -> Path:
        return self.pii_db.parent / "pseudonym.key"

    def pseudonym_key(self) -> bytes:
        """The HMAC key for pseudonyms: `CXLOOP_PSEUDONYM_KEY`, else a random key generated once.

        The generated key lives beside the restricted PII store (mode 0600) and never in the repository or in
        dbt's target folder; production deployments set the env var from their secret store.
        """
        env_key = os.environ.get("CXLOOP_PSEUDONYM_KEY")
        if env_key:
            return env_key.encode("utf-8")
        if not self.key_file.exists():
            self.key_file.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
        return self.key_file.read_text().strip().encode("utf-8")

    def environ(self) -> dict[str, str]:
        """The variables a child process (dbt, the Dagster webserver) needs to see the same installation."""
        return {
            "CXLOOP_HOME": str(self.home),
            "CXLOOP_LANDING_DIR": str(self.landing_dir),
            "CXLOOP_WAREHOUSE": str(self.warehouse),
            "CXLOOP_PII_DB": str(self.pii_db),
            "CXLOOP_SERVING_DIR": str(self.serving_dir),
            "DAGSTER_HOME": str(self.dagster_home),
            "CXLOOP_MLFLOW_DIR": str(self.mlflow_dir),
            "CXLOOP_HORIZON_DAYS": str(self.horizon_days),
            "CXLOOP_CUTOFF_STEP_DAYS": str(self.cutoff_step_days),
            "CXLOOP_TRAIN_CUTOFFS": str(self.train_cutoffs),
            "CXLOOP_PROMOTION_MARGIN": str(self.promotion_margin),
            "CXLOOP_CONFIG": str(self.config_file),
            "CXLOOP_ALERTS_DIR": str(self.alerts_dir),
            "CXLOOP_REPORTS_DIR": str(self.reports_dir),
            "CXLOOP_DBT_RUNS_DIR": str(self.dbt_runs_dir),
            "CXLOOP_ENGINE": self.engine,
            **({"CXLOOP_LAKE_DIR": str(self.lake_dir)} if self.lake_dir else {}),
            **({"CXLOOP_SPARK_DIR": str(self.spark_dir)} if self.spark_dir else {}),
            **({"CXLOOP_MLFLOW_TRACKING_URI": self.mlflow_tracking_uri} if self.mlflow_tracking_uri else {}),
            **({"CXLOOP_DUCKDB_TEMP_DIR": str(self.duckdb_temp_dir)} if self.duckdb_temp_dir else {}),
            **({"CXLOOP_DUCKDB_MEMORY_LIMIT": self.duckdb_memory_limit} if self.duckdb_memory_limit else {}),
            # The instance config names this variable rather than holding the URL (and its password).
            **({"CXLOOP_DAGSTER_PG_URL": self.dagster_pg_url} if self.dagster_pg_url else {}),
        }

    def ensure_dirs(self) -> None:
        for path in (self.warehouse.parent, self.pii_db.parent, self.serving_dir, self.dagster_home,
                     self.mlflow_dir, self.alerts_dir, self.reports_dir, self.dbt_runs_dir,
                     *((self.duckdb_temp_dir,) if self.duckdb_temp_dir else ())):
            path.mkdir(parents=True, exist_ok=True)
        # The restricted folder (PII store, generated key, suppression list, erasure audit log): owner only.
        if self.pii_db.parent.stat().st_mode & 0o077:
            self.pii_db.parent.chmod(0o700)


ENGINES = ("duckdb", "spark")


def _engine(value: str) -> str:
    engine = value.strip().lower()
    if engine not in ENGINES:
        raise ValueError(f"CXLOOP_ENGINE must be one of {ENGINES}, not {value!r}")
    return engine


def get_settings() -> Settings:
    """Read the settings now; cheap, so callers re-read rather than cache across env changes (tests)."""
    return Settings.from_env()
