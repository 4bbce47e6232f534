"""A deterministic simulated shop that writes cxloop's landing contract and a truth file.

The simulator is plain Python (numpy, and pyarrow for the truth parquet) with no Dagster import, so
the platform, its tests and a notebook can all call `simulator.generate(...)` the same way.
"""

from simulator.core import (
    DEFAULT_BLOCK_CUSTOMERS,
    DEFAULT_CUSTOMERS,
    DEFAULT_DAYS,
    DEFAULT_SEED,
    DEFAULT_START_DATE,
    SOURCES,
    default_truth_dir,
    generate,
)

__all__ = [
    "DEFAULT_BLOCK_CUSTOMERS",
    "DEFAULT_CUSTOMERS",
    "DEFAULT_DAYS",
    "DEFAULT_SEED",
    "DEFAULT_START_DATE",
    "SOURCES",
    "default_truth_dir",
    "generate",
]
