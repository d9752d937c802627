import pytest
import torch

from dmmlib import profiles
from dmmlib.profiles import PROFILES, get_profile, profile_name


def test_three_profiles_grow():
    ci, cpu, gpu = PROFILES["ci"], PROFILES["cpu"], PROFILES["gpu"]
    assert ci.n_train < cpu.n_train
    assert gpu.n_train is None  # the full dataset
    assert ci.epochs <= cpu.epochs <= gpu.epochs
    assert ci.n_attack < cpu.n_attack < gpu.n_attack
    assert ci.n_seeds <= cpu.n_seeds <= gpu.n_seeds


def test_env_override_wins(monkeypatch):
    monkeypatch.setenv("DMM_PROFILE", "gpu")
    monkeypatch.setenv("CI", "1")
    assert get_profile().name == "gpu"


def test_ci_variable_selects_ci(monkeypatch):
    monkeypatch.delenv("DMM_PROFILE", raising=False)
    monkeypatch.setenv("CI", "true")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert profile_name() == "ci"


def test_cuda_selects_gpu(monkeypatch):
    monkeypatch.delenv("DMM_PROFILE", raising=False)
    monkeypatch.setenv("CI", "1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert profile_name() == "gpu"


def test_default_is_cpu(monkeypatch):
    monkeypatch.delenv("DMM_PROFILE", raising=False)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert get_profile().name == "cpu"


def test_unknown_profile_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("DMM_PROFILE", "huge")
    with pytest.raises(ValueError, match="DMM_PROFILE='huge'.*ci"):
        get_profile()
    with pytest.raises(ValueError, match="unknown profile 'tiny'"):
        get_profile("tiny")
    with pytest.raises(TypeError, match="name"):
        get_profile(3)  # type: ignore[arg-type]


def test_replace_makes_a_copy_and_checks_fields():
    p = get_profile("ci")
    q = p.replace(epochs=7)
    assert q.epochs == 7 and p.epochs != 7
    with pytest.raises(ValueError, match="unknown field"):
        p.replace(epoch=3)


def test_module_docstring_names_the_variable():
    assert "DMM_PROFILE" in profiles.__doc__
