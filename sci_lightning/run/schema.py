"""The settings' schemas in Hydra's ConfigStore (``<group>/base``), registered on import: each config group whose
settings a package owns composes onto its dataclass (:mod:`sci_lightning.settings`), so a preset only overrides
defaults stated once, in the dataclass, and a misspelt or mistyped key stops the composition. The entry scripts
and the tests import this module before composing."""

from __future__ import annotations

from hydra.core.config_store import ConfigStore

from sci_lightning.clustering.settings import ClusterSettings
from sci_lightning.desk.settings import ServeSettings
from sci_lightning.fingerprint.geometry import GeometrySettings
from sci_lightning.fingerprint.settings import PrnuSettings
from sci_lightning.forensic.settings import VerdictSettings
from sci_lightning.library.settings import LibrarySettings
from sci_lightning.settings import schema_of

GROUPS: dict[str, type] = {
    "geometry": GeometrySettings,
    "prnu": PrnuSettings,
    "verdict": VerdictSettings,
    "library": LibrarySettings,
    "serve": ServeSettings,
    "cluster": ClusterSettings,
}


def register() -> None:
    """Store each group's schema as ``<group>/base`` (idempotent)."""
    store = ConfigStore.instance()
    for group, cls in GROUPS.items():
        store.store(group=group, name="base", node=schema_of(cls))


register()
