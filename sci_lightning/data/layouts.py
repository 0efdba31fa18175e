"""Layouts: small readers that turn a data root into ImageRecords, chosen by ``data.layout``.

- ``regex``: file names matched by a pattern with named groups; the ``miche`` and ``dresden`` data configs are
  presets of it, so a copy named differently needs one changed line of YAML.
- ``folder``: ``root/<device>/<camera>/*.jpg`` or ``root/<camera>/*.jpg`` (device = camera).
- ``manifest``: a CSV with ``path,device,camera[,scene]`` (paths relative to the CSV's folder).
- ``synthetic``: the built-in virtual cameras, generated on first use (``sci_lightning/data/synthetic``).
"""

from __future__ import annotations

import csv
import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sci_lightning.data.records import ImageRecord
from sci_lightning.errors import SCIConfigError

log = logging.getLogger(__name__)

DEFAULT_EXTENSIONS = (".jpg", ".jpeg", ".heic", ".heif")


@dataclass
class DatasetIndex:
    """What a layout found: usable records and image files it could not label."""

    records: list[ImageRecord]
    unmatched: list[Path] = field(default_factory=list)


def _resolve_root(root: str | os.PathLike | None, setting: str = "data.root") -> Path:
    if root is None or str(root) in ("", "???"):
        raise SCIConfigError(setting, "is not set", f"pass {setting}=/path/to/your/photos")
    path = Path(os.path.expanduser(str(root))).resolve()
    if not path.exists():
        raise SCIConfigError(setting, f"{path} does not exist", f"point {setting} at your copy of the data")
    return path


def list_images(root: Path, extensions: Iterable[str] = DEFAULT_EXTENSIONS) -> list[Path]:
    """Every file under ``root`` whose extension is an image extension (any case), sorted for determinism.

    Symbolic links are followed, to folders and to files (a case is often assembled from links to the evidence
    rather than copies), each photo listed once: a folder reached twice (a link loop, or two links to one folder)
    is walked the first time only, and a file reached by two paths is kept under the first; both are logged.
    """
    exts = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions}
    found, seen_dirs, seen_files = [], set(), {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        here = os.stat(dirpath)
        if (here.st_dev, here.st_ino) in seen_dirs:  # os.walk itself does not stop a loop when following links
            log.warning("%s: a folder already listed (a link loop or a second link to it): not read again", dirpath)
            dirnames[:] = []
            continue
        seen_dirs.add((here.st_dev, here.st_ino))
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith(".") or os.path.splitext(name)[1].lower() not in exts:
                continue
            path = Path(dirpath) / name
            # by the path links lead to (hard links stay two photos: the desk links one upload in twice on purpose)
            first = seen_files.setdefault(os.path.realpath(path), path)
            if first != path:
                log.warning("%s is the same file as %s: listed once", path, first)
                continue
            found.append(path)
    return sorted(found)


def _apply_aliases(value: str, aliases: Mapping[str, str] | None) -> str:
    return aliases.get(value, value) if aliases else value


def read_regex(
    root: str | os.PathLike,
    pattern: str,
    fields: Mapping[str, str],
    match_on: str = "name",
    aliases: Mapping[str, Mapping[str, str]] | None = None,
    case: str = "upper",
    extensions: Iterable[str] = DEFAULT_EXTENSIONS,
    **_: object,
) -> DatasetIndex:
    """Label files by a regular expression on their name (or path relative to root).

    ``fields`` maps ``device``/``camera``/``scene`` to format templates over the pattern's named groups, e.g.
    ``camera: "{device}_{sensor}"``. Matching ignores case; ``case: upper`` upper-cases group values so that
    ``ip5`` and ``IP5`` are one class. ``aliases`` renames final values, e.g. merges a one-camera device's
    front/rear codes into one camera class.
    """
    base = _resolve_root(root)
    try:
        regex = re.compile(pattern, re.IGNORECASE)
    except re.error as err:
        raise SCIConfigError("data.pattern", f"is not a valid regular expression ({err})", "fix the pattern") from None
    for required in ("device", "camera"):
        if required not in fields:
            raise SCIConfigError(f"data.fields.{required}", "is missing", "give a template such as '{device}'")
    if match_on not in ("name", "relpath"):
        raise SCIConfigError("data.match_on", f"unknown value {match_on!r}", "use 'name' or 'relpath'")
    aliases = aliases or {}
    records, unmatched = [], []
    for path in list_images(base, extensions):
        subject = path.name if match_on == "name" else path.relative_to(base).as_posix()
        m = regex.fullmatch(subject)
        if not m:
            unmatched.append(path)
            continue
        groups = {k: (v.upper() if case == "upper" else v) for k, v in m.groupdict().items() if v is not None}
        try:
            values = {k: _apply_aliases(t.format(**groups), aliases.get(k)) for k, t in fields.items()}
        except KeyError as err:
            raise SCIConfigError(
                "data.fields",
                f"template uses group {err} that data.pattern does not define",
                "add the named group to the pattern or change the template",
            ) from None
        records.append(
            ImageRecord(
                path=path, device=values["device"], camera=values["camera"], scene=values.get("scene", ""), extra=groups
            )
        )
    return DatasetIndex(records, unmatched)


def read_folder(root: str | os.PathLike, extensions: Iterable[str] = DEFAULT_EXTENSIONS, **_: object) -> DatasetIndex:
    """``root/<device>/<camera>/...`` (camera class = ``device/camera``) or ``root/<camera>/*`` (device = camera).

    Deeper sub-folders (sessions, dates) belong to the camera above them; files directly in root are unmatched.
    """
    base = _resolve_root(root)
    records, unmatched = [], []
    for path in list_images(base, extensions):
        parts = path.relative_to(base).parts
        if len(parts) < 2:
            unmatched.append(path)
        elif len(parts) == 2:
            records.append(ImageRecord(path=path, device=parts[0], camera=parts[0]))
        else:
            records.append(ImageRecord(path=path, device=parts[0], camera=f"{parts[0]}/{parts[1]}"))
    return DatasetIndex(records, unmatched)


def read_manifest(root: str | os.PathLike, manifest: str = "manifest.csv", **_: object) -> DatasetIndex:
    """A CSV with columns ``path,device,camera`` and optionally ``scene``; other columns are kept in ``extra``."""
    base = _resolve_root(root)
    csv_path = base if base.is_file() else base / manifest
    if not csv_path.is_file():
        raise SCIConfigError("data.manifest", f"{csv_path} not found", "point data.root/data.manifest at the CSV")
    folder = csv_path.parent
    records, unmatched = [], []
    with csv_path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = {"path", "device", "camera"} - set(reader.fieldnames or [])
        if missing:
            raise SCIConfigError(
                "data.manifest",
                f"{csv_path} lacks columns {sorted(missing)}",
                "the CSV needs a header with path,device,camera[,scene]",
            )
        for row in reader:
            path = (folder / row["path"]).resolve()
            if not row["device"] or not row["camera"]:
                unmatched.append(path)
                continue
            extra = {k: v for k, v in row.items() if k not in ("path", "device", "camera", "scene")}
            records.append(
                ImageRecord(
                    path=path, device=row["device"], camera=row["camera"], scene=row.get("scene") or "", extra=extra
                )
            )
    return DatasetIndex(records, unmatched)


def read_synthetic(root: str | os.PathLike, cache_workers: int | None = None, **settings: object) -> DatasetIndex:
    """The built-in virtual-camera set: generated under ``root`` on first use, then read by its manifest."""
    # The generator (SciPy filters, the camera model) is loaded only when the synthetic layout is used.
    from sci_lightning.data.synthetic.generate import SyntheticSettings, ensure_generated

    return read_manifest(ensure_generated(root, SyntheticSettings.from_mapping(settings), cache_workers))


LAYOUTS: dict[str, Callable[..., DatasetIndex]] = {
    "regex": read_regex,
    "folder": read_folder,
    "manifest": read_manifest,
    "synthetic": read_synthetic,
}


def build_index(data_cfg: Mapping) -> DatasetIndex:
    """Run the reader named by ``data.layout`` with the rest of the data config as keyword arguments."""
    layout = data_cfg.get("layout")
    if layout not in LAYOUTS:
        raise SCIConfigError("data.layout", f"unknown layout {layout!r}", f"use one of {sorted(LAYOUTS)}")
    options = {k: v for k, v in dict(data_cfg).items() if k != "layout"}
    index = LAYOUTS[layout](**options)
    if index.unmatched:
        shown = "\n".join(f"    {p}" for p in index.unmatched[:20])
        more = f"\n    ... and {len(index.unmatched) - 20} more" if len(index.unmatched) > 20 else ""
        log.warning(
            "%d image files under data.root were not labelled by layout %r and are left out:\n%s%s",
            len(index.unmatched),
            layout,
            shown,
            more,
        )
    if not index.records:
        raise SCIConfigError(
            "data.root",
            f"layout {layout!r} found no labelled images under {data_cfg.get('root')}",
            "check data.root, data.layout and (for regex layouts) data.pattern",
        )
    return index
