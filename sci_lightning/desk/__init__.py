"""The examiner's desk: a local web app over the fingerprint library (:mod:`.app`), its case folder and audit
log (:mod:`.casefile`), its jobs (:mod:`.jobs`, :mod:`.work`). FastAPI on uvicorn, Jinja2 pages; no torch."""
