"""What the Hydra entry points share: user errors become one clear message and exit code 2."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig

from sci_lightning.errors import SCIConfigError
from sci_lightning.run.logs import readable_logs

log = logging.getLogger("sci_lightning")


def guarded(fn: Callable[[DictConfig], Any], cfg: DictConfig) -> Any:
    """Run ``fn(cfg)``; a :class:`SCIConfigError` is logged as one message (no traceback) and exits with 2."""
    readable_logs()
    try:
        return fn(cfg)
    except SCIConfigError as err:
        log.error("configuration error: %s", err)
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
