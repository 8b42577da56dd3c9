"""The tests' one server helper: a real QRS server process (``qrs.devserver``)."""

from __future__ import annotations

from qrs.devserver import ROOT, ServerProcess, free_port

__all__ = ["ROOT", "ServerProcess", "free_port"]
