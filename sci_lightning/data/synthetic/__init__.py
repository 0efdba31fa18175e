"""Virtual cameras: a physically grounded built-in data set (scene -> optics -> sensor -> CFA -> maker's
pipeline -> JPEG), so ``python train.py`` runs anywhere on data where the answer is known.

It is synthetic: use it to check the pipeline and to study which cues a model reads (PRNU strength, JPEG
quality), never as evidence about real cameras. The ``synthetic`` layout (:func:`sci_lightning.data.layouts.
read_synthetic`) generates it on first use.
"""

from sci_lightning.data.synthetic.generate import SyntheticSettings, ensure_generated, generate

__all__ = ["SyntheticSettings", "generate", "ensure_generated"]
