"""Log lines people can read: each line once, floats rounded to what they mean.

Lightning gives its loggers (``lightning.pytorch``, ``lightning.fabric``) a console handler of their own when it is
imported before logging is configured, and Hydra then gives the root logger another: every Lightning INFO line was
printed twice (once as ``INFO: ...``). Their own handlers are removed, so each line goes once through the run's
handlers (console and the run's log file). Python warnings go the same way (``py.warnings``), once each.

Floats in log records are rounded to 4 significant digits (``%.4g``: a P-value of 3.2e-12 stays in scientific
notation) by a filter on the root handlers: the record's arguments where they are floats, and any decimal with 7
or more digits after the point in a message formatted before logging (f-strings).
"""

from __future__ import annotations

import logging
import re
import sys
import warnings
from typing import Any

import numpy as np

LONG_DECIMAL = re.compile(r"(?<![\w.])-?\d+\.\d{7,}(?:[eE][-+]?\d+)?(?![\w.])")
OWN_HANDLERS = ("lightning.pytorch", "lightning.fabric", "lightning")


class Rounded(float):
    """A float that prints with 4 significant digits (``%s`` / ``%r``); numeric formats (``%.2f``) as asked."""

    def __str__(self) -> str:
        return f"{float(self):.4g}"

    __repr__ = __str__


def _rounded(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (float, np.floating)):
        if isinstance(value, (list, tuple)):
            return type(value)(_rounded(v) for v in value)
        if isinstance(value, dict):
            return {k: _rounded(v) for k, v in value.items()}
        return value
    return Rounded(value)


class RoundFloats(logging.Filter):
    """Rounds the floats of every record that passes (see the module's docstring); never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, dict):
            record.args = _rounded(record.args)
        elif record.args:
            record.args = tuple(_rounded(a) for a in record.args)
        if isinstance(record.msg, str) and LONG_DECIMAL.search(record.msg):
            record.msg = LONG_DECIMAL.sub(lambda m: f"{float(m.group(0)):.4g}", record.msg)
        return True


def readable_logs() -> None:
    """Each line once and floats rounded, for whatever handlers the root logger has now (call after Hydra set
    logging up, and again after importing Lightning: its import adds the handler; calling again adds nothing).
    Lightning is not imported here (``method=prnu`` and the library never load it)."""
    for name in OWN_HANDLERS if "lightning" in sys.modules else ():
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.propagate = True
    logging.captureWarnings(True)
    # two of Lightning's that say nothing to a user: its own code's use of a deprecated torch API, and a hint that
    # our ``on_after_batch_transfer`` (the uint8 -> float conversion, on purpose on the device) is defined
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    warnings.filterwarnings("ignore", message=r"You have overridden `on_after_batch_transfer`.*")
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RoundFloats) for f in handler.filters):
            handler.addFilter(RoundFloats())
