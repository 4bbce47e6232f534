"""The one entry point: `workspace.yaml`, `dg` and the CLI load the definitions from here.

Loading must stay fast and light: Great Expectations, MLflow and LightGBM are imported inside asset bodies
only (tests/unit/test_definitions.py proves it).
"""

from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
