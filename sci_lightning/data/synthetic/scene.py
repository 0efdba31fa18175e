"""Step 1 — scenes: natural-image-like linear radiance fields from a dead-leaves model.

A scene is drawn once as resolution-free parameters (discs in unit coordinates) and rasterised at any camera's
resolution, so the same scene can be photographed by every camera: as with MICHE-I's subjects, content then
cannot tell the cameras apart.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.ndimage import gaussian_filter


@dataclass(frozen=True)
class SceneSettings:
    n_discs: int = 800  # occluding shapes per scene
    r_min: float = 0.015  # disc radius range, as a fraction of the image's larger side
    r_max: float = 0.25
    textured: float = 0.5  # share of discs carrying a texture (grating or noise)
    highlights: int = 3  # small saturated highlights per scene
    max_defocus: float = 1.5  # px (at 512 px), defocus blur sigma drawn from [0, max_defocus]


@dataclass(frozen=True)
class Scene:
    """Resolution-free description of one scene."""

    centres: np.ndarray  # (n, 2) in [0, 1] (y, x)
    radii: np.ndarray  # (n,) fraction of the larger side
    colours: np.ndarray  # (n, 3) linear RGB reflectance
    texture: np.ndarray  # (n, 4): kind (0 none, 1 grating, 2 noise), frequency, angle, amplitude
    gradient: np.ndarray  # (3,) illumination a + b*y + c*x
    exposure: float  # indoor (~0.35) .. outdoor (~0.9)
    highlights: np.ndarray  # (k, 3): y, x, radius
    defocus: float
    seed: int


def draw_scene(rng: np.random.Generator, s: SceneSettings = SceneSettings()) -> Scene:
    """Draw a dead-leaves scene: power-law disc sizes (density ~ r^-3), varied colours and textures."""
    u = rng.uniform(size=s.n_discs)
    # inverse-CDF sampling of p(r) ~ r^-3 on [r_min, r_max]
    radii = (s.r_min**-2 - u * (s.r_min**-2 - s.r_max**-2)) ** -0.5
    grey = rng.beta(2, 2, size=(s.n_discs, 1))
    tint = rng.uniform(0.6, 1.4, size=(s.n_discs, 3))
    colours = np.clip(grey * tint, 0.02, 1.0)
    dark = rng.uniform(size=s.n_discs) < 0.08  # a few deep shadows / dark objects
    colours[dark] *= 0.1
    kind = np.where(rng.uniform(size=s.n_discs) < s.textured, rng.integers(1, 3, s.n_discs), 0)
    texture = np.stack(
        [kind, rng.uniform(20, 120, s.n_discs), rng.uniform(0, np.pi, s.n_discs), rng.uniform(0.05, 0.3, s.n_discs)],
        axis=1,
    )
    outdoor = rng.uniform() < 0.5
    return Scene(
        centres=rng.uniform(-0.1, 1.1, size=(s.n_discs, 2)),
        radii=radii,
        colours=colours,
        texture=texture,
        gradient=np.array([1.0, rng.uniform(-0.4, 0.4), rng.uniform(-0.4, 0.4)]),
        exposure=float(rng.uniform(0.7, 1.0) if outdoor else rng.uniform(0.25, 0.5)),
        highlights=np.column_stack([rng.uniform(0, 1, (s.highlights, 2)), rng.uniform(0.005, 0.03, s.highlights)]),
        defocus=float(rng.uniform(0, s.max_defocus)),
        seed=int(rng.integers(2**31)),
    )


def viewed(scene: Scene, shift: tuple[float, float] = (0.0, 0.0), zoom: float = 1.0) -> Scene:
    """The same scene from another camera position: moved by ``shift`` (fractions of the frame) and magnified by
    ``zoom`` about the centre. Two cameras photographing one chart never frame it to the pixel alike, while one
    camera on its tripod does: what a fingerprint's scene residue can and cannot correlate with."""
    centres = (scene.centres - 0.5) * zoom + 0.5 + np.asarray(shift)
    spots = scene.highlights.copy()
    spots[:, :2] = (spots[:, :2] - 0.5) * zoom + 0.5 + np.asarray(shift)
    spots[:, 2] *= zoom
    return replace(scene, centres=centres, radii=scene.radii * zoom, highlights=spots)


@dataclass(frozen=True)
class Chart:
    """A colour test chart (a ColorChecker's layout: ``rows`` x ``cols`` flat patches on a dark card) on a grey
    wall, framed by one camera: ``centre`` (fractions of the frame) and ``size`` (the card's width over the
    frame's). Its straight, regularly spaced edges are what a fingerprint made from photos of it keeps, and
    what a photo of it lines up with at many offsets and scales (docs/RESULTS.md: real chart fingerprints)."""

    colours: np.ndarray  # (rows * cols, 3) linear RGB reflectance
    rows: int = 4
    cols: int = 6
    centre: tuple[float, float] = (0.5, 0.5)
    size: float = 0.7
    exposure: float = 0.6

    def framed(self, shift: tuple[float, float], zoom: float) -> Chart:
        """The chart as another camera position frames it."""
        return replace(self, centre=(self.centre[0] + shift[0], self.centre[1] + shift[1]), size=self.size * zoom)

    def render(self, height: int, width: int) -> np.ndarray:
        """Linear radiance ``(H, W, 3)``: the card (patches with dark gaps), the wall, a gentle light fall-off."""
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        card_w = self.size * width
        card_h = card_w * self.rows / self.cols
        u = (xx - (self.centre[1] * width - card_w / 2)) / card_w * self.cols
        v = (yy - (self.centre[0] * height - card_h / 2)) / card_h * self.rows
        inside = (u >= 0) & (u < self.cols) & (v >= 0) & (v < self.rows)
        gap = 0.12  # the card's black border between patches, in patch widths
        patch = inside & (u % 1 > gap / 2) & (u % 1 < 1 - gap / 2) & (v % 1 > gap / 2) & (v % 1 < 1 - gap / 2)
        index = np.clip(v.astype(int), 0, self.rows - 1) * self.cols + np.clip(u.astype(int), 0, self.cols - 1)
        img = np.full((height, width, 3), 0.45, np.float32)  # the wall
        img[inside] = 0.03  # the card
        img[patch] = self.colours[index[patch]]
        light = 1.0 - 0.15 * (((yy / height - 0.5) ** 2 + (xx / width - 0.5) ** 2) * 2)
        return img * (self.exposure * light)[..., None]


def draw_chart(rng: np.random.Generator) -> Chart:
    """A chart with patch colours like a ColorChecker's (greys and saturated hues)."""
    greys = np.linspace(0.04, 0.9, 6)[:, None].repeat(3, axis=1)
    hues = np.clip(rng.uniform(0.05, 0.8, (18, 3)) * rng.uniform(0.6, 1.3, (18, 1)), 0.02, 0.95)
    return Chart(np.concatenate([hues, greys]).astype(np.float32))


def render(scene: Scene | Chart, height: int, width: int) -> np.ndarray:
    """Rasterise ``scene`` to an ``(H, W, 3)`` float32 linear radiance image (values may exceed 1: highlights)."""
    if isinstance(scene, Chart):
        return scene.render(height, width)
    side = max(height, width)
    img = np.zeros((height, width, 3), np.float32)
    filled = np.zeros((height, width), bool)
    rng = np.random.default_rng(scene.seed)
    # Dead leaves: the first disc drawn is on top, so each disc only paints pixels not yet covered.
    for (cy, cx), r, colour, (kind, freq, angle, amp) in zip(scene.centres, scene.radii, scene.colours, scene.texture):
        rp = r * side
        y0, y1 = max(0, int(cy * height - rp)), min(height, int(cy * height + rp) + 1)
        x0, x1 = max(0, int(cx * width - rp)), min(width, int(cx * width + rp) + 1)
        if y0 >= y1 or x0 >= x1:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1]
        mask = ((yy - cy * height) ** 2 + (xx - cx * width) ** 2 <= rp * rp) & ~filled[y0:y1, x0:x1]
        if not mask.any():
            continue
        value = np.broadcast_to(colour, (*mask.shape, 3)).astype(np.float32)
        if kind == 1:
            phase = (np.cos(angle) * yy + np.sin(angle) * xx) * freq / side * 2 * np.pi
            value = value * (1 + amp * np.sin(phase))[..., None]
        elif kind == 2:
            value = value * (1 + amp * gaussian_filter(rng.standard_normal(mask.shape), 1.0))[..., None]
        img[y0:y1, x0:x1][mask] = value[mask]
        filled[y0:y1, x0:x1] |= mask
        if filled.all():
            break
    if not filled.all():  # what no disc covers: a smooth coloured backdrop (wall, sky)
        back = gaussian_filter(rng.standard_normal((height, width, 3)), sigma=(side / 8, side / 8, 0))
        back = 0.45 + 0.15 * back / (back.std() + 1e-9)
        img[~filled] = np.clip(back[~filled], 0.05, 1).astype(np.float32)
    yy, xx = np.mgrid[0:height, 0:width] / side
    light = scene.gradient[0] + scene.gradient[1] * (yy - 0.5) + scene.gradient[2] * (xx - 0.5)
    img *= (scene.exposure * np.clip(light, 0.2, None))[..., None].astype(np.float32)
    for hy, hx, hr in scene.highlights:
        d2 = (yy - hy * height / side) ** 2 + (xx - hx * width / side) ** 2
        img += (3.0 * np.exp(-d2 / (2 * hr * hr)))[..., None].astype(np.float32)
    sigma = scene.defocus * side / 512
    if sigma > 0.3:
        img = gaussian_filter(img, sigma=(sigma, sigma, 0))
    return img
