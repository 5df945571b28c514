"""Container healthcheck: exit 0 when a live process has these arguments, in this order, in its command line.

    python /app/infra/docker/running.py manage.py consume order-events

For processes with no port to probe (consumers, the market-data feed, the gateway watcher): the process the
container runs is there and neither a zombie nor stopped. Standard library only; reads /proc.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DEAD_STATES = {"Z", "T", "t", "X", "x"}


def _argv_and_state(proc: Path) -> tuple[list[str], str] | None:
    try:
        argv = (proc / "cmdline").read_bytes().split(b"\0")
        stat = (proc / "stat").read_text()
    except OSError:  # gone meanwhile, or not ours to read
        return None
    # The state follows the command name in parentheses, which may itself hold spaces or parentheses.
    state = stat.rsplit(")", 1)[-1].split()[0] if ")" in stat else ""
    return [part.decode(errors="replace") for part in argv if part], state


def running(wanted: list[str], proc_root: Path = Path("/proc")) -> bool:
    me = str(os.getpid())
    for proc in proc_root.iterdir():
        if not proc.name.isdigit() or proc.name == me:
            continue
        found = _argv_and_state(proc)
        if found is None:
            continue
        argv, state = found
        if state in DEAD_STATES:
            continue
        if any(argv[i : i + len(wanted)] == wanted for i in range(len(argv) - len(wanted) + 1)):
            return True
    return False


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    if running(argv):
        return 0
    print(f"no live process runs {' '.join(argv)}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
