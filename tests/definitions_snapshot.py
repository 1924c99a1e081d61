"""A plain-value picture of the code location as users see it: asset specs, checks, jobs, schedules
and sensors. ``tests/snapshots/definitions.json`` holds the picture taken before the domain layout;
``python -m tests.definitions_snapshot`` prints today's."""

from __future__ import annotations

import json
from typing import Any


def _config(config_type: Any) -> Any:
    fields = getattr(config_type, "fields", None)
    if fields:
        return {
            name: {"type": _config(field.config_type), "required": field.is_required}
            for name, field in sorted(fields.items())
        }
    inner = getattr(config_type, "inner_type", None)
    if inner is not None:
        return f"{config_type.kind.name}[{_config(inner)}]"
    return config_type.given_name or config_type.kind.name


def take() -> dict[str, Any]:
    from efficientai_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    assets: dict[str, Any] = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        partitions = node.partitions_def
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "kinds": sorted(node.kinds),
            "code_version": node.code_version,
            "deps": sorted(parent.to_user_string() for parent in node.parent_keys),
            "pools": sorted(node.pools or []),
            "partitions": type(partitions).__name__ if partitions else None,
            "partitions_start": str(getattr(partitions, "start", "")) if partitions else None,
            "is_observable": node.is_observable,
            "description": node.description,
            "tags": dict(sorted(node.tags.items())),
            "config": (
                _config(node.assets_def.node_def.config_field.config_type)
                if node.assets_def.is_executable and node.assets_def.node_def.config_field
                else None
            ),
        }
    checks = sorted(
        (
            {
                "asset": check.asset_key.to_user_string(),
                "name": check.name,
                "blocking": graph.get_check_spec(check).blocking,
            }
            for check in graph.asset_check_keys
        ),
        key=lambda check: (check["asset"], check["name"]),
    )
    repository = defs.get_repository_def()
    jobs: dict[str, Any] = {}
    for job in sorted(repository.get_all_jobs(), key=lambda j: j.name):
        if job.name.startswith("__"):
            continue
        selected = job.asset_layer.selected_asset_keys if job.asset_layer else set()
        jobs[job.name] = {
            "assets": sorted(k.to_user_string() for k in selected),
            "partitioned": job.partitions_def is not None,
            "executor": job.executor_def.name,
            "description": job.description,
        }
    schedules = {
        s.name: {
            "job": s.job_name,
            "cron": s.cron_schedule,
            "default_status": str(s.default_status),
            "timezone": s.execution_timezone,
        }
        for s in repository.schedule_defs
    }
    sensors = {
        s.name: {
            "jobs": sorted(t.job_name for t in s.targets) if s.targets else [],
            "default_status": str(s.default_status),
            "minimum_interval_seconds": s.minimum_interval_seconds,
            "required_resources": sorted(s.required_resource_keys),
        }
        for s in repository.sensor_defs
    }
    return {
        "assets": assets,
        "checks": checks,
        "jobs": jobs,
        "schedules": schedules,
        "sensors": sensors,
        "resources": sorted(defs.resources or {}),
    }


if __name__ == "__main__":
    print(json.dumps(take(), indent=2, sort_keys=True, default=str))
