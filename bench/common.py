"""What every benchmark shares: progress on stderr, percentiles, and the one JSON line."""

import json
import math
import sys
from pathlib import Path


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); q in [0, 100]."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def rounded(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def emit(result: dict, json_out: Path | None = None) -> None:
    """Print the result as the last line on stdout (and to json_out, when given)."""
    line = json.dumps(result)
    print(line, flush=True)
    if json_out:
        json_out.write_text(line + "\n")
