"""The dbt project as Dagster sees it: one cached `DbtProject` and a translator driven by dbt `meta`.

Models declare their Dagster group in `config.meta.cxloop.group` and the sources they cannot exist without
as `requires_<source>` tags; nothing here names a model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtProject

from orchestration.lib.settings import get_settings


@cache
def dbt_project() -> DbtProject:
    """The project; `prepare_if_dev` parses it under `dagster dev`, elsewhere `cxloop prepare` does."""
    settings = get_settings()
    project = DbtProject(
        project_dir=settings.dbt_project_dir,
        profiles_dir=settings.dbt_project_dir,
        target=settings.dbt_target,
    )
    project.prepare_if_dev()
    return project


def _cxloop_meta(props: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = props.get("config", {}).get("meta") or props.get("meta") or {}
    return meta.get("cxloop", {})


def required_sources(props: Mapping[str, Any]) -> list[str]:
    """Landing sources a model cannot be built without, from its `requires_<source>` tags."""
    return sorted(t.removeprefix("requires_") for t in props.get("tags", []) if t.startswith("requires_"))


class CxloopTranslator(DagsterDbtTranslator):
    """Groups from meta, `requires` shown as asset tags, dbt layer as a kind."""

    def __init__(self) -> None:
        super().__init__(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))

    def get_asset_spec(self, manifest, unique_id, project) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self._props(manifest, unique_id)
        if props is None or props.get("resource_type") not in ("model", "seed", "snapshot"):
            return spec
        return spec.replace_attributes(
            group_name=self._group(props) or spec.group_name,
        ).merge_attributes(tags=self._requires_tags(props))

    @staticmethod
    def _props(manifest, unique_id) -> Mapping[str, Any] | None:
        return manifest.get("nodes", {}).get(unique_id) or manifest.get("sources", {}).get(unique_id)

    @staticmethod
    def _group(props: Mapping[str, Any]) -> str | None:
        group = _cxloop_meta(props).get("group")
        if group:
            return group
        if props.get("resource_type") == "seed":
            return "seeds"
        return None

    @staticmethod
    def _requires_tags(props: Mapping[str, Any]) -> dict[str, str]:
        return {f"cxloop/requires_{s}": "" for s in required_sources(props)}


@cache
def _manifest(path: str) -> dict:
    return json.loads(Path(path).read_text())


# Groups whose models are tables in the `marts` schema that readers use: published, and checked by a suite each.
PUBLISHED_GROUPS = ("marts", "activation")


def mart_models(project: DbtProject, groups: tuple[str, ...] = PUBLISHED_GROUPS) -> list[Mapping[str, Any]]:
    """Models in the published groups, read from the manifest so no mart is named in code."""
    manifest = _manifest(str(project.manifest_path))
    return sorted(
        (node for node in manifest["nodes"].values()
         if node["resource_type"] == "model" and _cxloop_meta(node).get("group") in groups),
        key=lambda node: node["name"],
    )


def mart_names(project: DbtProject, groups: tuple[str, ...] = PUBLISHED_GROUPS) -> list[str]:
    return [node["name"] for node in mart_models(project, groups)]


def always_built_marts(project: DbtProject) -> list[str]:
    """Marts that need no optional source: they build whenever the dbt steps run."""
    return [node["name"] for node in mart_models(project) if not required_sources(node)]
