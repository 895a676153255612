"""Building a Dockerfile's images with the local container engine (Podman or Docker), as a ContainerBuild does.

The base image is a build argument (``BASE``): the Dockerfile's own default needs a registry; on a machine
without one, ``localhost/debian:bookworm`` from ``bin/container-engine`` stands in. The host's CA bundle is
mounted for the build only (``PIP_CERT``), never copied into an image.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from mlops_core.errors import ConfigError
from mlops_core.local.runtime import container_engine, image_exists

LOCAL_BASE = "localhost/debian:bookworm"
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")


@dataclass(frozen=True)
class BuiltImage:
    """One image built: its tag, size in bytes and build time in seconds."""

    tag: str
    size: int
    seconds: float


def default_base() -> str | None:
    """CONTAINER_BASE_IMAGE, else the local Debian base when present, else None (the Dockerfile's default)."""
    configured = os.environ.get("CONTAINER_BASE_IMAGE")
    if configured:
        return configured
    return LOCAL_BASE if image_exists(LOCAL_BASE) else None


def build_image(context: Path, tag: str, *, target: str | None = None, base: str | None = None,
                dockerfile: Path | None = None) -> BuiltImage:
    """``podman build`` (or docker) of ``context`` into ``tag``; ConfigError without an engine, RuntimeError
    naming the build's last output when it fails."""
    engine = container_engine()
    if engine is None:
        raise ConfigError("no container engine (podman or docker): run bin/container-engine to install Podman")
    argv = [engine, "build", "--network=host", "-t", tag, "-f", str(dockerfile or context / "Dockerfile")]
    if target:
        argv += ["--target", target]
    if base:
        argv += ["--build-arg", f"BASE={base}"]
    if HOST_CA.is_file() and engine.endswith("podman"):  # build-time volume: docker build has none
        argv += ["--volume", f"{HOST_CA}:/host-ca.crt:ro", "--build-arg", "PIP_CERT=/host-ca.crt"]
    started = time.monotonic()
    built = subprocess.run([*argv, str(context)], capture_output=True, text=True)
    if built.returncode != 0:
        tail = " | ".join((built.stdout + built.stderr).strip().splitlines()[-8:])
        raise RuntimeError(f"building {tag} from {context} failed (exit {built.returncode}): {tail}")
    return BuiltImage(tag, image_size(tag), round(time.monotonic() - started, 1))


def image_size(tag: str) -> int:
    """The image's size in bytes, as the engine reports it."""
    engine = container_engine()
    assert engine is not None
    size = subprocess.run([engine, "image", "inspect", "--format", "{{.Size}}", tag], capture_output=True, text=True,
                          check=True).stdout.strip()
    return int(size)
