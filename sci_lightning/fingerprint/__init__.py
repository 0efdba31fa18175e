"""Sensor fingerprints, for every method that reads them (the PRNU baseline, the learned matcher): noise
residuals (Lukáš–Fridrich–Goljan wavelet denoiser), fingerprint estimation, NCC and PCE (:mod:`.core`), and the
on-disk residual store (:mod:`.residuals`). NumPy, SciPy and PyWavelets only: no torch, no Lightning."""
