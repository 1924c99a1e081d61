"""``python -m efficientai_assets.operations.health`` (``make health``): one line per component
the home uses — Dagster storage, the MLflow store or server, the DVC remote (reachable and in
sync), the BentoML store, live servers' ``/readyz``, the dashboard's ``/health``, free disk
under the home — and exit status 1 when any is down (0 otherwise; ``off`` is not down).

Works on the embedded default and on the team stack: the stores are found the way the code
location finds them (see ``operations.stores``). ``--json`` prints the probes as JSON instead.
"""

from __future__ import annotations

import argparse
import json
import sys

from efficientai_assets.operations.probes import run_probes
from efficientai_assets.operations.stores import StoreLocations


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m efficientai_assets.operations.health",
        description="Check every store and server of the home; exit 1 when one is down.",
    )
    parser.add_argument("--json", action="store_true", help="print the probes as JSON")
    parser.add_argument(
        "--quick", action="store_true", help="skip the DVC remote's sync check (seconds)"
    )
    args = parser.parse_args(argv)
    locations = StoreLocations.from_env()
    probes = run_probes(locations, full=not args.quick)
    down = [p.component for p in probes if p.status == "down"]
    if args.json:
        print(
            json.dumps(
                {
                    "home": str(locations.home.root),
                    "down": down,
                    "components": [p.to_dict() for p in probes],
                },
                indent=2,
            )
        )
    else:
        print(f"home {locations.home.root}")
        for probe in probes:
            print(probe.line())
        print(f"{len(down)} down: {', '.join(down)}" if down else "all components up")
    return 1 if down else 0


if __name__ == "__main__":
    sys.exit(main())
