"""The forensic protocol, for every method: calibration maths, decisions and open-set rates, figures, and the
verdict report, and the verification view (ROC over (item, camera) pairs). Methods feed it scores; it imports no
method (and no torch)."""
