"""``python -m efficientai_assets.launch``: ``make run``'s work in one process that imports Dagster
and the code location once.

In order, as ``make run`` always did it: the home's layout and stores (``resources.home``), dead
runs recovered (``resources.recovery``), the ``efficientai_pipeline`` job, the ``monitoring_job``
for the newest complete day, and the summary. Each job is launched by ``dg launch --job``'s own
command, called in this process (same run, tags, logs and executor); a failed job stops here
with a non-zero status and the next is not launched.

``make run`` starts it under ``resources.supervise --command-recovers`` so that a stop request
always stops it and a killed run is recovered. One interpreter instead of one per command saves
the repeated imports and instance set-ups (docs/performance.md).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from efficientai_assets.names import MONITORING_JOB, PIPELINE_JOB


def execute_job(job: str, config_json: str | None = None, partition: str | None = None) -> None:
    """Execute ``job`` exactly as ``dg launch --job`` does — its own command, called in this
    process (Dagster's ``job execute`` of the project's code location on the instance of
    ``DAGSTER_HOME``); raises ``click.ClickException`` naming a failed run."""
    from dagster_dg_cli.cli.launch import launch_command

    args = ["--job", job]
    args += ["--config-json", config_json] if config_json else []
    args += ["--partition", partition] if partition else []
    launch_command.main(args=args, prog_name="dg launch", standalone_mode=False)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m efficientai_assets.launch", description=__doc__
    )
    parser.add_argument(
        "--config-json", default=None, help="Run config (JSON) of the pipeline job, as dg launch."
    )
    args = parser.parse_args(argv)

    import click
    import dagster as dg

    from efficientai_assets.summary import latest_day, print_summary
    from resources.home import default_home
    from resources.supervise import recover_dead_runs

    home = default_home()
    home.ensure_layout()
    os.environ.setdefault("DAGSTER_HOME", str(home.dagster_home))
    with dg.DagsterInstance.get() as instance:  # the recovery's and the summary's
        recover_dead_runs(instance)
        try:
            execute_job(PIPELINE_JOB, config_json=args.config_json)
            execute_job(MONITORING_JOB, partition=latest_day())
        except click.ClickException as error:
            sys.exit(f"make run: {error.format_message()}")
        print_summary(instance)


if __name__ == "__main__":
    main()
