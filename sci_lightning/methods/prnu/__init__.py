"""Classical PRNU baseline (Lukáš–Fridrich–Goljan 2006; Chen et al. 2008): noise residuals, fingerprints,
NCC and PCE. Pure functions of NumPy arrays; none modifies its inputs. The method (``method=prnu``) is in
:mod:`.run` and :mod:`.verdicts`; nothing here imports torch or Lightning."""

from sci_lightning.fingerprint.core import (
    block_ncc,
    crop_center,
    estimate_fingerprint,
    ncc,
    noise_residual,
    pce,
    wiener_dft,
    zero_mean_total,
)

__all__ = [
    "block_ncc",
    "noise_residual",
    "zero_mean_total",
    "wiener_dft",
    "estimate_fingerprint",
    "ncc",
    "pce",
    "crop_center",
]
