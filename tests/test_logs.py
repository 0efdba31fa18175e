"""Log lines people can read: floats rounded to 4 significant digits (P-values in scientific notation), and each
Lightning line printed once."""

from __future__ import annotations

import io
import logging

import numpy as np

from sci_lightning.run.logs import RoundFloats, readable_logs


def _formatted(msg: str, *args) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RoundFloats())
    logger = logging.getLogger("test_logs.rounding")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning(msg, *args)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue().strip()


def test_floats_in_log_lines_are_rounded_to_what_they_mean():
    assert _formatted("unknown below %s", 0.9832962112893316) == "unknown below 0.9833"
    assert _formatted("P_FA %s", 3.215443e-12) == "P_FA 3.215e-12"
    assert _formatted("%r and %s", np.float32(0.123456789), np.float64(12345.6789)) == "0.1235 and 1.235e+04"
    assert _formatted("asked %.2f, count %d, flag %s", 0.98765, 7, True) == "asked 0.99, count 7, flag True"
    assert _formatted("per class %s", {"A": 0.333333333, "B": 3}) == "per class {'A': 0.3333, 'B': 3}"
    pre = f"pre-formatted {2 / 3}, kept 0.5 and v1.2345678.9"
    assert _formatted(pre) == "pre-formatted 0.6667, kept 0.5 and v1.2345678.9"


def test_lightning_lines_are_printed_once(capfd):
    import lightning.pytorch  # noqa: F401 (its import gives the "lightning" logger a console handler of its own)

    root = logging.getLogger()
    handler = logging.StreamHandler()  # as Hydra's job logging sets the root logger up
    root.addHandler(handler)
    try:
        readable_logs()
        readable_logs()  # twice: nothing added twice
        logging.getLogger("lightning.pytorch.utilities.rank_zero").info("GPU available: False, used: False")
        logging.getLogger("lightning.pytorch.utilities.rank_zero").warning("ratio %s", 1 / 3)
    finally:
        root.removeHandler(handler)
    err = capfd.readouterr().err
    assert err.count("GPU available") == 1 and err.count("ratio 0.3333") == 1, err
    assert sum(isinstance(f, RoundFloats) for f in handler.filters) == 1
