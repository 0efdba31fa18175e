"""sci-lightning: source camera identification with PyTorch Lightning and Hydra."""

__version__ = "0.1.0"
