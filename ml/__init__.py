"""cxloop's models (churn, lifetime value): plain Python with no Dagster import, called by the
orchestration layer and usable from a notebook."""
