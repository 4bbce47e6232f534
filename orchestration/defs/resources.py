"""Resources shared by every domain, and the default executor."""


import sys
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource

from orchestration.lib.dbt import dbt_project
from orchestration.lib.settings import get_settings


@dg.definitions
def resources() -> dg.Definitions:
    settings = get_settings()
    return dg.Definitions(
        resources={
            "dbt": DbtCliResource(
                project_dir=dbt_project(),
                profiles_dir=str(settings.dbt_project_dir),
                target=settings.dbt_target,
                # The dbt installed beside this interpreter, so nothing depends on PATH.
                dbt_executable=str(Path(sys.executable).with_name("dbt")),
            ),
        },
        executor=dg.in_process_executor,
    )
