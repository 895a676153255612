"""The Age Calculator's static page (``static/``: plain HTML, CSS and a script, no build step) and its API contract.

The page posts one raw row (``sex,length,...,shell_weight``, the survey's units) as ``text/csv`` to
``{apiUrl}/predict`` and shows ``predictions[0]``'s rings and age; a 4xx answer's ``error`` is shown as the
refusal. ``config.js``, written when the page is uploaded or served, sets ``apiUrl`` (empty: the page's origin).
Both servers of the contract (API Gateway on AWS, ``mlops_core.local.webapp_server`` locally) answer: 200
``{"predictions": [{"rings": r, "age": a}]}``; 400 for a row the model refuses (the container's message);
415 for another content type; 413 for a body over ``MAX_BODY_BYTES`` (API Gateway: over its own 10 MB limit; the
endpoint refuses bodies over 6 MB, a 400).
"""

from __future__ import annotations

import json
from pathlib import Path

STATIC = Path(__file__).resolve().parent / "static"
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
                 ".js": "text/javascript; charset=utf-8", ".png": "image/png"}
ACCEPTED_TYPES = ("text/csv", "application/json")  # what /predict takes; anything else gets 415
MAX_BODY_BYTES = 64 * 1024  # a form sends one row; batches of a few hundred rows still fit
CONFIG_FILE = "config.js"


def config_js(api_url: str) -> bytes:
    """The page's ``config.js``: where its API is (``""``: the page's own origin)."""
    return f"window.AGE_CALCULATOR_CONFIG = {json.dumps({'apiUrl': api_url.rstrip('/')})};\n".encode()


def site_files(api_url: str) -> dict[str, tuple[bytes, str]]:
    """Every file of the page: name -> (content, content type), ``config.js`` pointing at ``api_url``."""
    files = {path.name: (path.read_bytes(), CONTENT_TYPES.get(path.suffix, "application/octet-stream"))
             for path in sorted(STATIC.iterdir()) if path.is_file()}
    files[CONFIG_FILE] = (config_js(api_url), CONTENT_TYPES[".js"])
    return files
