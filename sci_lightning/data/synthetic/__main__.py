"""``python -m sci_lightning.data.synthetic out=DIR [profile=miche_like] [images_per_camera=40] [image_size=256]
[prnu_strength=0.01] [jpeg_quality=[lo,hi]] [seed=0] [workers=N]`` writes the synthetic set as a plain folder
layout (``<device>/<camera>/*.jpg`` plus ``manifest.csv``) for you to look at or train on with ``data=folder``."""

from __future__ import annotations

import sys

import yaml

from sci_lightning.data.synthetic.generate import SyntheticSettings, generate
from sci_lightning.errors import SCIConfigError


def main(argv: list[str]) -> int:
    if not argv or any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return 0 if argv else 2
    try:
        args = dotlist(argv)
        out = args.pop("out", None)
        if not out:
            raise SCIConfigError("out", "is not set", "pass out=DIR")
        workers = args.pop("workers", None)
        unknown = set(args) - set(SyntheticSettings.__dataclass_fields__)
        if unknown:
            raise SCIConfigError(
                ", ".join(sorted(unknown)),
                "unknown option",
                f"use out, workers, {', '.join(SyntheticSettings.__dataclass_fields__)}",
            )
        path = generate(out, SyntheticSettings.from_mapping(args), workers)
    except SCIConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {path} (train on it with: python train.py data=manifest data.root={path})")
    return 0


def dotlist(argv: list[str]) -> dict[str, object]:
    """``key=value`` arguments, each value read as YAML (``jpeg_quality=[70,95]`` a list, ``seed=3`` a number)."""
    args = {}
    for a in argv:
        key, sep, value = a.partition("=")
        if not sep or not key:
            raise SCIConfigError(a, "is not key=value", "write options as key=value, e.g. out=DIR")
        try:
            args[key] = yaml.safe_load(value)
        except yaml.YAMLError as err:
            problem = str(err).splitlines()[0]
            raise SCIConfigError(key, f"cannot read {value!r}: {problem}", "give a number, a word or [lo,hi]") from err
    return args


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
