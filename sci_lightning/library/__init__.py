"""The camera fingerprint library: enrol cameras once (:mod:`.store`, :mod:`.enrol`), search a photo against
thousands of them or a camera against a photo collection (:mod:`.search`, :mod:`.index`), ingest photo sets on
a Dask cluster (:mod:`.engine`). NumPy, Zarr, SQLite and Dask; no torch."""

from sci_lightning.library.enrol import enrol_cameras, ingest_photos
from sci_lightning.library.search import Searcher, SearchSettings, reverse_search
from sci_lightning.library.store import FingerprintLibrary

__all__ = ["FingerprintLibrary", "Searcher", "SearchSettings", "enrol_cameras", "ingest_photos", "reverse_search"]
