"""``python serve.py library.path=LIB``: validate the config (``ServeSchema``), then serve the examiner's desk
(:mod:`sci_lightning.desk`) on uvicorn until interrupted."""

from __future__ import annotations

import gc
import ipaddress
import logging
from typing import Any

from omegaconf import DictConfig

from sci_lightning.clustering.settings import ClusterSettings
from sci_lightning.desk.settings import ServeSettings
from sci_lightning.outputs import Metrics
from sci_lightning.run.config import validate
from sci_lightning.run.library import library_job
from sci_lightning.settings import settings_from

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> Metrics:
    """Serve the desk at ``serve.host:serve.port``; returns when the server stops."""
    import uvicorn

    app = desk_app(cfg)
    host, port = str(cfg.serve.host), int(cfg.serve.port)
    if not _loopback(host):
        log.warning("serve.host=%s: the desk is reachable from other machines (it has no login)", host)
    freeze_heap()
    log.info(
        "examiner's desk on http://%s:%d (library %s, case folder %s)",
        host,
        port,
        cfg.library.path,
        app.state.desk.case.root,
    )
    uvicorn.run(app, host=host, port=port, log_level="info")
    return {"action": "serve", "host": host, "port": port}


def desk_app(cfg: DictConfig) -> Any:
    """The desk's ASGI app for the composed ``serve`` config (validated here): its ``serve`` settings and the
    library job every desk job varies, built once."""
    validate(cfg, "serve")
    from sci_lightning.desk.app import create_app  # FastAPI only when a desk is asked for

    clusters = settings_from(ClusterSettings, cfg.cluster) if cfg.get("cluster") else None
    return create_app(settings_from(ServeSettings, cfg.serve), library_job(cfg), clusters)


def freeze_heap() -> None:
    """Move everything imported so far out of the cyclic garbage collector's reach (:func:`gc.freeze`).

    Without it, a full collection every so often walks the ~350 000 objects that numpy, SciPy, Hydra and the app
    hold and pauses a page for 200-700 ms (bench/desk.py: the camera list with 1 000 cameras, 6 requests in 100
    over 200 ms); with it, none of 200 took more than 54 ms."""
    gc.collect()
    gc.freeze()


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
