"""Plain-Python analysis behind cxloop's measure step: KPI anomalies, experiments, the report."""
