"""The case report: one self-contained HTML file (heat maps inline, no outside link, prints on paper) and a PDF of
the same content, beside ``verdict_report.md``. Written by ``library.py action=search`` and by the examiner's desk
(``serve.py``) for every search.

What it states: the inputs with their SHA-256, the software and its settings, how the verdicts were decided and
the error rates measured for that rule (the report header of :mod:`.pce`), each photo's ranking, verdict and heat
map, and what "unknown" means. The PDF is drawn with fpdf2 from the same content (no browser needed); both are
written to a temporary name and renamed, so a reader never sees half a report.
"""

from __future__ import annotations

import base64
import html
import os
import platform
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from sci_lightning.data.selection import sha256_file

HTML_NAME, PDF_NAME = "case_report.html", "case_report.pdf"
UNKNOWN_MEANS = (
    '"Unknown" means that no camera in the reference set is supported by the evidence at the stated error rate: '
    "either the photo was taken by a camera that is not in the set, or its noise pattern was too weak or too damaged "
    "(strong compression, heavy resizing, a very dark or saturated scene) to be found. It is not evidence that any "
    "particular camera did not take the photo."
)


def software() -> dict[str, str]:
    """The software that produced a report: package version (and the git commit of a checkout), Python, platform."""
    from sci_lightning import __version__

    version = __version__
    try:  # a source checkout (how the project is run): the exact commit, "+changes" if the tree differs from it
        repo = Path(__file__).resolve().parents[2]
        head = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, timeout=5
        )
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        )
        if head.returncode == 0:
            version += f" (commit {head.stdout.strip()}{' +changes' if dirty.stdout.strip() else ''})"
    except (OSError, subprocess.SubprocessError):
        pass
    return {"sci-lightning": version, "python": platform.python_version(), "platform": platform.platform()}


def _inline(text: str) -> str:
    """One line of the Markdown header as HTML: escaped, then **bold** and `code`."""
    out = html.escape(text)
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", out)


def _plain(text: str) -> str:
    return re.sub(r"\*\*(.+?)\*\*|`(.+?)`", lambda m: m.group(1) or m.group(2), text)


def _data_uri(png: str | None) -> str | None:
    if not png or not Path(png).is_file():
        return None
    return "data:image/png;base64," + base64.b64encode(Path(png).read_bytes()).decode("ascii")


@dataclass(frozen=True)
class ReportPhoto:
    """One photo's section of the case report."""

    n: int  # its number in the report
    name: str  # as the examiner knows it (an upload's own name)
    sha256: str
    decision: str
    ranked: list[tuple[str, str]]  # (class, score as printed), best first
    detail: str  # how the decision was made, plain text
    columns: dict[str, Any]  # the method's own verdict cells
    heat_png: str | None
    true: str | None  # its true class, where the case knows it


@dataclass(frozen=True)
class CaseReport:
    """What the HTML and the PDF of a case report both say."""

    title: str
    created: str
    software: dict[str, str]
    settings: dict[str, Any]
    header: list[str]  # how the verdicts were decided, the verdict report's opening lines
    photos: list[ReportPhoto]
    score_name: str
    unknown_means: str


def _model(
    verdicts: Sequence[dict[str, Any]],
    header: Sequence[str],
    settings: dict[str, Any],
    names: dict[str, str] | None,
    score_name: str,
    title: str,
) -> CaseReport:
    names = names or {}
    photos = [
        ReportPhoto(
            n=i + 1,
            name=names.get(v["path"], Path(v["path"]).name),
            sha256=v.get("sha256") or sha256_file(v["path"]),
            decision=v["decision"],
            ranked=[(c, f"{s:.4g}") for c, s in v["ranked"]],
            detail=_plain(v.get("detail", "")),
            columns=v.get("columns", {}),
            heat_png=v.get("heat_png"),
            true=v.get("true"),
        )
        for i, v in enumerate(verdicts)
    ]
    created = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return CaseReport(title, created, software(), settings, list(header), photos, score_name, UNKNOWN_MEANS)


def write_case_report(
    out_dir: Path,
    verdicts: Sequence[dict[str, Any]],
    header: Sequence[str],
    settings: dict[str, Any],
    names: dict[str, str] | None = None,
    score_name: str = "P(match)",
    title: str = "Source camera identification: case report",
) -> tuple[Path, Path]:
    """``case_report.html`` (self-contained) and ``case_report.pdf`` in ``out_dir``; ``names`` maps a photo's path
    to the name to show (an uploaded file's original name), ``header`` is the verdict report's opening lines."""
    model = _model(verdicts, header, settings, names, score_name, title)
    env = Environment(loader=PackageLoader("sci_lightning.forensic", "templates"), autoescape=select_autoescape())
    env.filters["inline"] = _inline
    env.filters["data_uri"] = _data_uri
    page = env.get_template("case_report.html").render({f.name: getattr(model, f.name) for f in fields(model)})
    html_path, pdf_path = out_dir / HTML_NAME, out_dir / PDF_NAME
    _atomic_write(html_path, page.encode("utf-8"))
    _atomic_write(pdf_path, _pdf(model))
    return html_path, pdf_path


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _pdf(model: CaseReport) -> bytes:
    """The report as a PDF (fpdf2; DejaVu Sans from matplotlib's fonts, so every character of the text prints)."""
    import matplotlib
    from fpdf import FPDF

    font = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(True, margin=15)
    pdf.add_font("dejavu", "", str(font / "DejaVuSans.ttf"))
    pdf.add_font("dejavu", "B", str(font / "DejaVuSans-Bold.ttf"))
    pdf.set_font("dejavu", size=9)
    pdf.add_page()
    width = pdf.w - pdf.l_margin - pdf.r_margin

    def text(t: str, size: int = 9, bold: bool = False, gap: float = 1.5) -> None:
        pdf.set_font("dejavu", "B" if bold else "", size)
        pdf.multi_cell(width, size * 0.5, t, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(gap)

    text(model.title, 15, True)
    text(f"Created {model.created}; " + ", ".join(f"{k} {v}" for k, v in model.software.items()), 8)
    text("How the verdicts were decided", 11, True)
    for line in model.header:
        if line.strip():
            text("• " + _plain(line[2:]) if line.startswith("- ") else _plain(line))
    text("What “unknown” means", 11, True)
    text(model.unknown_means)
    text("Settings", 11, True)
    for k, v in model.settings.items():
        text(f"{k}: {v}", 8, gap=0.5)
    text("Photos", 11, True)
    for p in model.photos:
        text(f"{p.n}. {p.name} → {p.decision}", 10, True, gap=0.5)
        text(f"SHA-256 {p.sha256}", 7, gap=0.5)
        ranking = ", ".join(f"{c} {s}" for c, s in p.ranked[:5])
        text(f"Ranking ({model.score_name}): {ranking}", 8, gap=0.5)
        if p.detail:
            text(p.detail, 8, gap=0.5)
        if p.heat_png and Path(p.heat_png).is_file():
            pdf.image(p.heat_png, w=min(width, 170))
        pdf.ln(3)
    return bytes(pdf.output())
