"""One vocabulary across dmmlib's public functions.

* labels are ``y`` (geometry's pair-of-classes arguments too);
* an orthonormal basis per sample (N, D, k) is ``basis``;
* randomness is ``seed`` (an int, a ``torch.Generator`` or ``None``);
* targeted attacks take ``targeted: bool`` with ``y`` the targets;
* attacks return an :class:`~dmmlib.attacks.AttackResult` (no ``return_success``).

The test walks ``inspect.signature`` of every public function, method and
class of every module in ``dmmlib._PUBLIC_MODULES`` and fails on the old names.
Containers (NamedTuples, dataclasses such as ``data.ImageDataset``, whose
``classes`` are class names) are skipped: their fields are attributes.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect

import pytest

import dmmlib

OLD_NAMES = {
    "classes": "y",
    "U": "basis",
    "subspace": "basis",
    "generator": "seed",
    "target": "targeted (with y the targets)",
    "c_init": "c",
    "search_steps": "binary_search_steps",
    "return_success": "(nothing: every attack returns an AttackResult)",
}

#: (qualified name, parameter) pairs where an old name means something else.
MEANS_SOMETHING_ELSE = {
    # class *names* (strings), as torchvision's datasets call them, not labels
    ("plot.adversarial_grid", "classes"),
    # the target mean activation of a sparse autoencoder, not a target class
    ("intriguing.fit_sparse_autoencoder", "target"),
}


def _public_callables():
    for short, path in sorted(dmmlib._PUBLIC_MODULES.items()):
        mod = importlib.import_module(f"dmmlib.{path}")
        for name in getattr(mod, "__all__", []):
            obj = getattr(mod, name, None)
            if obj is None or not callable(obj):
                continue
            if inspect.isclass(obj) and (issubclass(obj, tuple) or dataclasses.is_dataclass(obj)):
                continue  # a container (NamedTuple, dataclass): fields are attributes
            yield f"{short}.{name}", obj
            if inspect.isclass(obj):
                for attr, member in vars(obj).items():
                    if callable(member) and not attr.startswith("_"):
                        yield f"{short}.{name}.{attr}", member


def _parameters(obj):
    try:
        return inspect.signature(obj).parameters
    except (TypeError, ValueError):  # builtins without a signature
        return {}


def test_no_public_function_uses_an_old_name() -> None:
    found = []
    for qualname, obj in _public_callables():
        owner = qualname.rsplit(".", 1)[0] if qualname.count(".") > 1 else qualname
        for p in _parameters(obj):
            if p in OLD_NAMES and (qualname, p) not in MEANS_SOMETHING_ELSE \
                    and (owner, p) not in MEANS_SOMETHING_ELSE:
                found.append(f"{qualname}({p}=...): use {OLD_NAMES[p]}")
    assert not found, "old argument names:\n" + "\n".join(sorted(set(found)))


def test_the_exemptions_are_still_needed() -> None:
    seen = set()
    for qualname, obj in _public_callables():
        for p in _parameters(obj):
            seen.add((qualname, p))
    stale = {e for e in MEANS_SOMETHING_ELSE if e not in seen}
    assert not stale, f"exemptions for parameters that no longer exist: {sorted(stale)}"


@pytest.mark.parametrize("name", ["fgsm", "pgd", "deepfool", "minimal_l2", "carlini_wagner_l2",
                                  "lbfgs"])
def test_every_attack_speaks_the_same_language(name) -> None:
    from dmmlib import attacks

    params = inspect.signature(getattr(attacks, name)).parameters
    assert list(params)[:3] == ["model", "x", "y"]
    assert "progress" in params
    if name != "deepfool":  # DeepFool is untargeted by construction
        assert "targeted" in params and params["targeted"].default is False
    assert inspect.signature(getattr(attacks, name)).return_annotation in (
        "AttackResult", "AttackResult | list[AttackResult]")
