"""Running without AWS: moto's server as the control plane (needs the ``local`` extra)."""
