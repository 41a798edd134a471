"""What the notebook series needs besides the pipeline: one setup call, shared plots, the workshop kit."""

from ragrerank.series.notebook import setup

__all__ = ["setup"]
