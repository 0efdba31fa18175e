"""The run layer: what ``train.py`` and ``evaluate.py`` do, as one screen each. Validates the composed config,
picks the method from the registry, and hands over; everything else happens in the floors below."""

from sci_lightning.run import schema as _schema  # noqa: F401,E402 (the settings' schemas, before any config is composed)
