"""System tests of a deployed Age Calculator API (the release's test stage): known rows get ages in range, bad
input gets 4xx. Plain HTTP (urllib) against any server of the contract: API Gateway's stage URL or the local proxy.

    failures = [check for check in run_system_tests(api_url, rows) if not check.ok]
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

AGE_OFFSET = 1.5
MIN_RINGS, MAX_RINGS = 1, 29  # the range of the UCI data
# (name, content type, body, the status classes accepted): a refusal must be a 4xx, never a 200 or a 5xx
BAD_INPUTS: tuple[tuple[str, str, bytes, tuple[int, ...]], ...] = (
    ("unknown sex", "text/csv", b"X,0.455,0.365,0.095,0.514,0.2245,0.101,0.15", (400,)),
    ("not a number", "text/csv", b"M,long,0.365,0.095,0.514,0.2245,0.101,0.15", (400,)),
    ("negative measurement", "text/csv", b"M,-0.455,0.365,0.095,0.514,0.2245,0.101,0.15", (400,)),
    ("too few fields", "text/csv", b"M,0.455,0.365", (400,)),
    ("malformed JSON", "application/json", b'{"instances": [', (400,)),
    ("another content type", "text/plain", b"M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15", (415,)),
)


@dataclass(frozen=True)
class Check:
    """One system test: what was sent, what came back, and whether that is what the contract says."""

    name: str
    ok: bool
    status: int
    detail: str


def post(url: str, body: bytes, content_type: str, timeout: float = 30.0) -> tuple[int, bytes]:
    """POST ``body``; (status, answer) for any status, 2xx or not."""
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": content_type, "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def predict_row(url: str, row: Sequence[str]) -> tuple[Check, float | None]:
    """A labelled row (8 features and the rings): 200 and an age in the data's range; (check, rings off the label)."""
    features, label = ",".join(row[:8]), float(row[8])
    status, answer = post(url, features.encode(), "text/csv")
    name = f"known row {features} (rings {label:g})"
    if status != 200:
        return Check(name, False, status, f"expected 200, got {status}: {answer[:300]!r}"), None
    try:
        prediction = json.loads(answer)["predictions"][0]
        rings, age = float(prediction["rings"]), float(prediction["age"])
    except (ValueError, KeyError, IndexError, TypeError) as error:
        return Check(name, False, status, f"unreadable answer {answer[:300]!r}: {error}"), None
    ok = MIN_RINGS + AGE_OFFSET <= age <= MAX_RINGS + AGE_OFFSET and abs(age - rings - AGE_OFFSET) < 1e-3
    return Check(name, ok, status, f"predicted rings {rings:.2f}, age {age:.2f} (label {label:g}; ages in range "
                                   f"{MIN_RINGS + AGE_OFFSET:g}-{MAX_RINGS + AGE_OFFSET:g})"), abs(rings - label)


def check_refusal(url: str, name: str, content_type: str, body: bytes, expected: tuple[int, ...]) -> Check:
    """Bad input: a 4xx (one of ``expected``) with a message, never a 200 or a 5xx."""
    status, answer = post(url, body, content_type)
    return Check(f"bad input: {name}", status in expected, status,
                 f"expected {'/'.join(map(str, expected))}, got {status}: {answer[:200].decode(errors='replace')}")


def run_system_tests(api_url: str, rows: Iterable[Sequence[str]], *, max_error: float = 3.0) -> list[Check]:
    """Every check against ``{api_url}/predict``: each labelled row (200, an age in range), their mean absolute
    error (at most ``max_error`` rings: single rows may be far off, the data's labels are noisy), each bad input."""
    url = api_url.rstrip("/") + "/predict"
    checks, errors = [], []
    for row in rows:
        check, error = predict_row(url, row)
        checks.append(check)
        errors += [error] if error is not None else []
    if errors:
        mae = sum(errors) / len(errors)
        checks.append(Check(f"mean absolute error of {len(errors)} known rows", mae <= max_error, 200,
                            f"{mae:.2f} rings (at most {max_error:g})"))
    return checks + [check_refusal(url, *bad) for bad in BAD_INPUTS]
