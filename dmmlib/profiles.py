"""Experiment sizes: one place that says how big each experiment is.

Every chapter reads its sizes (samples, epochs, attack steps) from a
:class:`Profile`. Three profiles exist:

``ci``
    the smallest size at which every chapter still shows its effect; the whole
    book executes on a 2-core CPU in minutes (used by the test suite);
``cpu``
    the default on a machine without a GPU: larger, still minutes per chapter;
``gpu``
    the full-size experiments (full datasets, more epochs, more seeds).

The active profile is chosen by :func:`get_profile`: the environment variable
``DMM_PROFILE`` wins; otherwise CUDA present -> ``gpu``; ``CI`` set -> ``ci``;
else ``cpu``.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

import torch

__all__ = ["Profile", "PROFILES", "get_profile", "profile_name"]

ENV_VAR = "DMM_PROFILE"


@dataclass(frozen=True)
class Profile:
    """Sizes of the book's experiments.

    Attributes
    ----------
    name: the profile's name (``ci``, ``cpu`` or ``gpu``).
    n_train: training images taken from an image dataset (``None``: all).
    n_test: test images used for evaluation (``None``: all).
    epochs: training epochs for image classifiers.
    batch_size: mini-batch size for training.
    n_attack: how many test images each attack experiment uses.
    attack_steps: iterations of iterative attacks.
    n_seeds: independent repetitions where a chapter shows spread over seeds.
    synthetic_points: points sampled from a synthetic manifold.
    synthetic_epochs: full-batch training steps on synthetic data.
    """

    name: str
    n_train: int | None
    n_test: int | None
    epochs: int
    batch_size: int
    n_attack: int
    attack_steps: int
    n_seeds: int
    synthetic_points: int
    synthetic_epochs: int

    def replace(self, **changes: object) -> "Profile":
        """A copy with some fields changed (for exercises: ``p.replace(epochs=10)``)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(f"Profile.replace: unknown field(s) {sorted(unknown)}")
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


PROFILES: dict[str, Profile] = {
    "ci": Profile(
        name="ci",
        n_train=6000,
        n_test=1000,
        epochs=2,
        batch_size=128,
        n_attack=200,
        attack_steps=10,
        n_seeds=3,
        synthetic_points=200,
        synthetic_epochs=300,
    ),
    "cpu": Profile(
        name="cpu",
        n_train=20000,
        n_test=2000,
        epochs=4,
        batch_size=128,
        n_attack=500,
        attack_steps=20,
        n_seeds=5,
        synthetic_points=500,
        synthetic_epochs=1000,
    ),
    "gpu": Profile(
        name="gpu",
        n_train=None,
        n_test=None,
        epochs=15,
        batch_size=256,
        n_attack=2000,
        attack_steps=50,
        n_seeds=16,
        synthetic_points=2000,
        synthetic_epochs=3000,
    ),
}


def profile_name() -> str:
    """The name of the profile :func:`get_profile` would choose right now."""
    override = os.environ.get(ENV_VAR, "").strip()
    if override:
        if override not in PROFILES:
            raise ValueError(
                f"{ENV_VAR}={override!r} is not a profile; choose one of {sorted(PROFILES)}"
            )
        return override
    if torch.cuda.is_available():
        return "gpu"
    if os.environ.get("CI", "").strip() not in {"", "0", "false", "False"}:
        return "ci"
    return "cpu"


def get_profile(name: str | None = None) -> Profile:
    """Return a profile by name, or the automatically chosen one.

    Raises
    ------
    ValueError
        If ``name`` (or ``DMM_PROFILE``) is not one of ``ci``, ``cpu``, ``gpu``.
    """
    if name is None:
        name = profile_name()
    if not isinstance(name, str):
        raise TypeError(f"name: expected a profile name (str), got {type(name).__name__}")
    if name not in PROFILES:
        raise ValueError(f"name: unknown profile {name!r}; choose one of {sorted(PROFILES)}")
    return PROFILES[name]
