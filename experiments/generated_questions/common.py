"""The folder this experiment's scripts share: inputs for the GPU machine, and what comes back."""

from __future__ import annotations

import argparse
from pathlib import Path

from ragrerank.config import resolve_settings


def work_folder(parser: argparse.ArgumentParser) -> Path:
    """``--work DIR``, by default experiments/generated_questions/ in the artifacts folder."""
    parser.add_argument("--work", type=Path, help="inputs and outputs (default: experiments/generated_questions/ in the artifacts folder)")
    args, _ = parser.parse_known_args()
    return args.work or resolve_settings().home / "experiments" / "generated_questions"
