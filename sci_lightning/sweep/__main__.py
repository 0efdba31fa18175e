"""``python -m sci_lightning.sweep {summary,report} SWEEP_DIR``: the sweep's tables and figures, by hand.

* ``summary`` writes ``cv_summary.json`` / ``cv_summary.md`` and the pooled confusion matrices (what every
  multirun writes at its end);
* ``report`` re-summarises everything under the folder (so a PRNU sweep run into ``SWEEP_DIR/prnu`` joins a
  CNN sweep) and draws ``sweep_accuracy.png`` with the table ``sweep_report.md``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from sci_lightning.sweep.figures import write_report
from sci_lightning.sweep.summary import summarise


def _summary(sweep_dir: str) -> Path:
    summarise(sweep_dir)
    return Path(sweep_dir) / "cv_summary.md"


COMMANDS = {"summary": _summary, "report": write_report}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sci_lightning.sweep", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=sorted(COMMANDS))
    parser.add_argument("sweep_dir", help="a multirun folder (holding job folders with .hydra/)")
    args = parser.parse_args(argv)
    try:
        path = COMMANDS[args.command](args.sweep_dir)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(path.read_text())
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    sys.exit(main(sys.argv[1:]))
