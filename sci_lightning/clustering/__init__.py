"""Blind source clustering: which photos share a camera, with no reference photos (``library.py action=cluster``).

On the floor of the library, above it: it uses the fingerprint floor's residuals, statistics and measured null and
the library's engine; nothing below imports it. See :mod:`.action` for the flow.
"""
