"""Shared fixtures: every test gets its own cache folder and quiet progress bars."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path, monkeypatch):
    monkeypatch.setenv("DMM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("DMM_PROGRESS", "0")
    torch.manual_seed(0)
    yield
