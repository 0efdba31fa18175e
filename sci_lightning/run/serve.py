"""``python serve.py library.path=LIB``: validate the config (``ServeSchema``), then serve the examiner's desk
(:mod:`sci_lightning.desk`) on uvicorn until interrupted."""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from omegaconf import DictConfig

from sci_lightning.run.config import validate

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> dict[str, Any]:
    """Serve the desk at ``serve.host:serve.port``; returns when the server stops."""
    validate(cfg, "serve")
    import uvicorn

    from sci_lightning.desk.app import create_app

    host, port = str(cfg.serve.host), int(cfg.serve.port)
    if not _loopback(host):
        log.warning("serve.host=%s: the desk is reachable from other machines (it has no login)", host)
    app = create_app(cfg)
    log.info(
        "examiner's desk on http://%s:%d (library %s, case folder %s)",
        host,
        port,
        cfg.library.path,
        app.state.desk.case.root,
    )
    uvicorn.run(app, host=host, port=port, log_level="info")
    return {"action": "serve", "host": host, "port": port}


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
