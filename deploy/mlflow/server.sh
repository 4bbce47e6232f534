#!/usr/bin/env bash
# The MLflow tracking server of the production shape: runs, models and aliases in Postgres, artifacts in object
# storage that the server reads and writes for its clients (`mlflow-artifacts:/`), so trainers and scorers need
# the server's URL only, never bucket credentials. tests/scale/test_postgres_mlflow.py starts this script with
# a throwaway Postgres and a local folder as the destination.
#
#   CXLOOP_MLFLOW_BACKEND_STORE_URI      postgresql+psycopg2://mlflow:PASSWORD@postgres.example.internal:5432/mlflow
#   CXLOOP_MLFLOW_ARTIFACTS_DESTINATION  s3://cxloop-example/mlflow (credentials: AWS_* or the pod's role)
#   CXLOOP_MLFLOW_ALLOWED_HOSTS          Host headers to accept besides localhost and private IPs, e.g.
#                                        mlflow.example.com,mlflow.cxloop.svc.cluster.local
#   CXLOOP_MLFLOW_HOST, _PORT, _WORKERS  0.0.0.0, 5000, 2
# Clients (the code server, run pods) set CXLOOP_MLFLOW_TRACKING_URI to the server's URL. The server has no
# authentication: keep it inside the cluster or behind the proxy of docs/security.md.
set -euo pipefail

: "${CXLOOP_MLFLOW_BACKEND_STORE_URI:?set it to the Postgres database of the tracking store}"
: "${CXLOOP_MLFLOW_ARTIFACTS_DESTINATION:?set it to the bucket (or folder) of the artifacts}"

args=(
  --backend-store-uri "$CXLOOP_MLFLOW_BACKEND_STORE_URI"
  --artifacts-destination "$CXLOOP_MLFLOW_ARTIFACTS_DESTINATION"
  --serve-artifacts
  --host "${CXLOOP_MLFLOW_HOST:-0.0.0.0}"
  --port "${CXLOOP_MLFLOW_PORT:-5000}"
  --workers "${CXLOOP_MLFLOW_WORKERS:-2}"
)
if [[ -n "${CXLOOP_MLFLOW_ALLOWED_HOSTS:-}" ]]; then
  args+=(--allowed-hosts "$CXLOOP_MLFLOW_ALLOWED_HOSTS")
fi

# cxloop's models are native LightGBM files; the server never unpickles anything (ml/tracking.py, SECURE_ENV).
export MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false
exec "${MLFLOW:-mlflow}" server "${args[@]}"
