"""What the benchmark scripts share: machine line, photo-like full-size JPEGs, peak-memory sampling."""

from __future__ import annotations

import os
import platform
import threading
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def machine_line() -> str:
    return (
        f"machine: {platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}, python {platform.python_version()}"
    )


def write_photo(path: Path, width: int = 4000, height: int = 3000, seed: int = 0, quality: int = 92) -> Path:
    """A photo-like JPEG (smooth scene + sensor-like noise) of ``width`` x ``height`` (default 12 MP).

    Pure noise would make the JPEGs unrealistically large and slow to decode; real photos are mostly smooth.
    """
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, (height // 64, width // 64, 3), dtype=np.uint8))
    scene = np.asarray(small.resize((width, height), Image.BICUBIC), dtype=np.int16)
    noise = rng.normal(0, 3, (height, width, 1)).astype(np.int16)
    Image.fromarray(np.clip(scene + noise, 0, 255).astype(np.uint8)).save(path, quality=quality)
    return path


class PeakMemory:
    """Samples /proc/self/status every ``interval`` s: peak anonymous (private) RSS and peak total RSS, in MiB.

    The patch cache is a memory-mapped file: pages it reads count in total RSS as *file-backed* memory, which the
    kernel can drop at any time (it is page cache). Anonymous RSS is what the process really allocates.
    """

    def __init__(self, interval: float = 0.02) -> None:
        self.interval, self.peak_anon, self.peak_total = interval, 0.0, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def read() -> tuple[float, float]:
        fields = {}
        with open("/proc/self/status") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key in ("RssAnon", "VmRSS"):
                    fields[key] = int(value.split()[0]) / 1024
        return fields.get("RssAnon", 0.0), fields.get("VmRSS", 0.0)

    def _run(self) -> None:
        while not self._stop.is_set():
            anon, total = self.read()
            self.peak_anon, self.peak_total = max(self.peak_anon, anon), max(self.peak_total, total)
            time.sleep(self.interval)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        anon, total = self.read()
        self.peak_anon, self.peak_total = max(self.peak_anon, anon), max(self.peak_total, total)
