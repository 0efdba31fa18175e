"""ImageRecord: one photo with its labels. The task only decides which field is the class."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sci_lightning.errors import SCIConfigError

# task name -> ImageRecord field used as the label
TASK_LABEL_FIELDS = {"model_level": "device", "sensor_level": "camera"}


@dataclass(frozen=True)
class ImageRecord:
    """A photo and what we know about the camera that took it.

    ``device`` is the device model (e.g. ``IP5``), ``camera`` the device plus sensor (e.g. ``IP5_F``) and
    ``scene`` the subject/scene id used for scene-disjoint folds (defaults to the file itself).
    """

    path: Path
    device: str
    camera: str
    scene: str = ""
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not self.scene:
            object.__setattr__(self, "scene", str(self.path))

    def label(self, label_field: str) -> str:
        """The class name of this image for a task's label field (``device`` or ``camera``)."""
        return getattr(self, label_field)


def label_field_for(task_name: str, label_field: str | None = None) -> str:
    """Resolve the ImageRecord field that holds the class for a task."""
    if label_field:
        if label_field not in ("device", "camera"):
            raise SCIConfigError("task.label_field", f"unknown field {label_field!r}", "use 'device' or 'camera'")
        return label_field
    try:
        return TASK_LABEL_FIELDS[task_name]
    except KeyError:
        raise SCIConfigError("task", f"unknown task {task_name!r}", f"use one of {sorted(TASK_LABEL_FIELDS)}") from None


def class_names(records: list[ImageRecord], label_field: str) -> list[str]:
    """Sorted class names present in ``records``."""
    return sorted({r.label(label_field) for r in records})
