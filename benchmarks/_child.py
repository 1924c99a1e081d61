"""Child-process entry: ``python -m benchmarks._child module:function '{"kw": ...}'``.

Prints the function's dict and this process's peak RSS on one marked line, for
:func:`benchmarks.processes.run_child`.
"""

from __future__ import annotations

import importlib
import json
import sys

from benchmarks.harness import CHILD_RESULT_MARKER
from benchmarks.processes import peak_rss_mb


def main(argv: list[str]) -> None:
    if len(argv) != 3 or ":" not in argv[1]:
        sys.exit("usage: python -m benchmarks._child module:function JSON_KWARGS")
    module_name, function_name = argv[1].split(":", 1)
    function = getattr(importlib.import_module(module_name), function_name)
    data = function(**json.loads(argv[2]))
    payload = {"data": data, "peak_rss_mb": peak_rss_mb()}
    print(CHILD_RESULT_MARKER + json.dumps(payload), flush=True)


if __name__ == "__main__":
    main(sys.argv)
