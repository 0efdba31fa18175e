"""One exception type for mistakes the user can fix, printed without a traceback by the entry points."""

from __future__ import annotations


class SCIConfigError(Exception):
    """A setting or input file is wrong; the message names it and says how to fix it."""

    def __init__(self, setting: str, problem: str, fix: str) -> None:
        self.setting = setting
        self.problem = problem
        self.fix = fix
        super().__init__(f"{setting}: {problem}\n  fix: {fix}")


def require(ok: bool, setting: str, problem: str, fix: str) -> None:
    """Raise :class:`SCIConfigError` naming ``setting``, the problem and the fix unless ``ok``."""
    if not ok:
        raise SCIConfigError(setting, problem, fix)
