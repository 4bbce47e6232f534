"""The parts a large size's full build runs in (`benchmarks/scale.py --phase full:<part>`): together they are
`platform_job`, and each part reads only what it or an earlier part builds."""

from __future__ import annotations

import dagster as dg

from benchmarks.scale import FULL_PARTS, part_selection
from orchestration.cli import load_definitions


def test_parts_make_up_the_job_and_run_in_order():
    graph = load_definitions().resolve_asset_graph()
    every = dg.AssetSelection.all().resolve(graph)
    parts = [set(part_selection(part)) for part in FULL_PARTS]

    assert set().union(*parts) == every
    assert sum(len(part) for part in parts) == len(every), "a key is in more than one part"
    built = set()
    for name, part in zip(FULL_PARTS, parts):
        built |= part
        missing = {parent for key in part for parent in graph.get(key).parent_keys if parent in every} - built
        assert not missing, f"{name} reads {sorted(k.to_user_string() for k in missing)} before they are built"

