"""Datasets as tensors in [0, 1].

Every loader returns an :class:`ImageDataset` whose ``x`` is a float32 tensor
of shape ``(N, C, H, W)`` with pixels in [0, 1] and whose ``y`` is an int64
tensor of labels. Nothing is ever silently swapped: ``dataset.source`` says
where the data was read from, and a missing dataset raises
:class:`DatasetUnavailableError` with the exact command or setting that fixes
it.

Where the data come from
------------------------
Fashion-MNIST is looked for, in order, in the folder passed as ``root``, in
``$DMM_DATA``, in Debian's ``/usr/share/datasets/fashion-mnist/`` (package
``dataset-fashion-mnist``) and in the download cache; only then is it
downloaded with torchvision (when a network exists). MNIST and CIFAR-10 come
through torchvision (``$DMM_DATA`` or the cache folder). scikit-learn's 8x8
digits ship with scikit-learn and need no download.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "DatasetUnavailableError",
    "ImageDataset",
    "DEBIAN_FASHION_MNIST",
    "data_dir",
    "read_idx",
    "fashion_mnist",
    "mnist",
    "cifar10",
    "digits",
    "load_dataset",
]

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
MNIST_CLASSES = tuple(str(i) for i in range(10))
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)


class DatasetUnavailableError(RuntimeError):
    """A dataset is neither on disk nor downloadable; the message says how to get it."""


@dataclass(frozen=True)
class ImageDataset:
    """Images ``x`` (N, C, H, W) float32 in [0, 1] and labels ``y`` (N,) int64."""

    x: torch.Tensor
    y: torch.Tensor
    classes: tuple[str, ...]
    name: str
    source: str

    def __post_init__(self) -> None:
        if self.x.ndim != 4:
            raise ValueError(f"x: expected shape (N, C, H, W), got {tuple(self.x.shape)}")
        if self.y.ndim != 1 or self.y.shape[0] != self.x.shape[0]:
            raise ValueError(
                f"y: expected shape ({self.x.shape[0]},), got {tuple(self.y.shape)}"
            )

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def n_classes(self) -> int:
        """The number of classes."""
        return len(self.classes)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """One image's shape ``(C, H, W)``."""
        c, h, w = self.x.shape[1:]
        return int(c), int(h), int(w)

    def head(self, n: int | None) -> "ImageDataset":
        """The first ``n`` examples (all of them when ``n`` is ``None``)."""
        _check_n(n)
        if n is None or n >= len(self):
            return self
        return ImageDataset(self.x[:n], self.y[:n], self.classes, self.name, self.source)

    def to(self, device: torch.device | str) -> "ImageDataset":
        """The same dataset with its tensors on ``device``."""
        return ImageDataset(
            self.x.to(device), self.y.to(device), self.classes, self.name, self.source
        )


def _check_n(n: object) -> None:
    if n is None:
        return
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n: expected an int or None, got {type(n).__name__}")
    if n <= 0:
        raise ValueError(f"n: must be positive, got {n}")


def data_dir() -> Path:
    """Folder for downloaded datasets: ``$DMM_DATA`` or ``~/.cache/dmmlib/data``."""
    env = os.environ.get("DMM_DATA", "").strip()
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
    return Path(base) / "dmmlib" / "data"


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzip-compressed or not.

    Raises
    ------
    ValueError
        If the file is not IDX or is truncated.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as err:
        raise ValueError(f"{path}: cannot read IDX file ({err})") from err
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    header = 4 + 4 * ndim
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    expected = int(np.prod(dims)) if dims else 0
    if len(raw) - header != expected:
        raise ValueError(
            f"{path}: truncated or corrupt IDX file (expected {expected} bytes of data "
            f"for shape {dims}, found {len(raw) - header})"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims).copy()


def _find_idx(folder: Path, stem: str) -> Path | None:
    for sub in (folder, folder / "FashionMNIST" / "raw", folder / "fashion-mnist"):
        for name in (stem, stem + ".gz"):
            candidate = sub / name
            if candidate.is_file():
                return candidate
    return None


def _fashion_from_folder(folder: Path, train: bool) -> tuple[np.ndarray, np.ndarray] | None:
    prefix = "train" if train else "t10k"
    images = _find_idx(folder, f"{prefix}-images-idx3-ubyte")
    labels = _find_idx(folder, f"{prefix}-labels-idx1-ubyte")
    if images is None or labels is None:
        return None
    x, y = read_idx(images), read_idx(labels)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"{folder}: {x.shape[0]} images but {y.shape[0]} labels")
    return x, y


def _as_dataset(
    x: np.ndarray | torch.Tensor,
    y: np.ndarray | torch.Tensor | list[int],
    classes: tuple[str, ...],
    name: str,
    source: str,
    n: int | None,
    channels_last: bool = False,
) -> ImageDataset:
    _check_n(n)
    xt = torch.as_tensor(np.asarray(x))
    if channels_last:
        xt = xt.permute(0, 3, 1, 2)
    elif xt.ndim == 3:
        xt = xt.unsqueeze(1)
    if n is not None:
        if n <= 0:
            raise ValueError(f"n: must be positive, got {n}")
        xt = xt[:n]
    xt = xt.to(torch.float32).div_(255.0).contiguous()
    yt = torch.as_tensor(np.asarray(y), dtype=torch.int64)[: xt.shape[0]].clone()
    return ImageDataset(xt, yt, classes, name, source)


def _unavailable(name: str, how: str, err: BaseException | None) -> DatasetUnavailableError:
    detail = f" (download failed: {err})" if err is not None else ""
    return DatasetUnavailableError(f"{name} is not available offline{detail}. {how}")


def _torchvision_dataset(cls_name: str, root: Path, train: bool, download: bool):
    try:
        import torchvision
    except ImportError as err:  # pragma: no cover - torchvision is in the book env
        raise DatasetUnavailableError(
            f"{cls_name} needs torchvision: pip install torchvision"
        ) from err
    cls = getattr(torchvision.datasets, cls_name)
    return cls(str(root), train=train, download=download)


def fashion_mnist(
    train: bool = True,
    n: int | None = None,
    root: str | os.PathLike[str] | None = None,
    download: bool = True,
) -> ImageDataset:
    """Fashion-MNIST (Xiao et al. 2017): 28x28 grey images of 10 clothing classes.

    Parameters
    ----------
    train: the 60,000-image training split (``True``) or the 10,000-image test split.
    n: keep only the first ``n`` images (the files are already shuffled).
    root: a folder holding the four IDX files (``.gz`` or not), or a
        torchvision-style folder with ``FashionMNIST/raw/``.
    download: allow a torchvision download into :func:`data_dir` as a last resort.

    Raises
    ------
    DatasetUnavailableError
        If no copy is found and none can be downloaded; the message says what
        to install or set.
    """
    folders: list[tuple[Path, str]] = []
    if root is not None:
        folders.append((Path(root).expanduser(), f"root={root}"))
    env = os.environ.get("DMM_DATA", "").strip()
    if env:
        folders.append((Path(env).expanduser(), "$DMM_DATA"))
    folders.append((DEBIAN_FASHION_MNIST, "Debian package dataset-fashion-mnist"))
    folders.append((data_dir(), "dmmlib download cache"))
    for folder, label in folders:
        found = _fashion_from_folder(folder, train)
        if found is not None:
            return _as_dataset(*found, FASHION_MNIST_CLASSES, "Fashion-MNIST",
                               f"{folder} ({label})", n)
    how = (
        "Install Debian's package (sudo apt-get install dataset-fashion-mnist), or set "
        "DMM_DATA (or pass root=) to a folder holding train-images-idx3-ubyte.gz, "
        "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and "
        "t10k-labels-idx1-ubyte.gz, or run where a network exists so torchvision can "
        "download it."
    )
    if not download:
        raise _unavailable("Fashion-MNIST", how, None)
    try:
        ds = _torchvision_dataset("FashionMNIST", data_dir(), train, True)
    except DatasetUnavailableError:
        raise
    except Exception as err:  # network errors come in many types
        raise _unavailable("Fashion-MNIST", how, err) from err
    return _as_dataset(ds.data, ds.targets, FASHION_MNIST_CLASSES, "Fashion-MNIST",
                       f"{data_dir()} (torchvision download)", n)


def mnist(
    train: bool = True,
    n: int | None = None,
    root: str | os.PathLike[str] | None = None,
    download: bool = True,
) -> ImageDataset:
    """MNIST handwritten digits through torchvision (downloads where a network exists)."""
    folder = Path(root).expanduser() if root is not None else data_dir()
    how = (
        f"Run where a network exists (Colab) so torchvision can download it into "
        f"{folder}, or copy torchvision's MNIST/raw folder there (set DMM_DATA to "
        "choose the folder). Offline, use fashion_mnist() instead."
    )
    try:
        ds = _torchvision_dataset("MNIST", folder, train, download)
    except DatasetUnavailableError:
        raise
    except Exception as err:
        raise _unavailable("MNIST", how, err) from err
    return _as_dataset(ds.data, ds.targets, MNIST_CLASSES, "MNIST",
                       f"{folder} (torchvision)", n)


def cifar10(
    train: bool = True,
    n: int | None = None,
    root: str | os.PathLike[str] | None = None,
    download: bool = True,
) -> ImageDataset:
    """CIFAR-10 (32x32 colour images) through torchvision."""
    folder = Path(root).expanduser() if root is not None else data_dir()
    how = (
        f"Run where a network exists (Colab) so torchvision can download it into "
        f"{folder}, or extract cifar-10-python.tar.gz there (set DMM_DATA to choose "
        "the folder)."
    )
    try:
        ds = _torchvision_dataset("CIFAR10", folder, train, download)
    except DatasetUnavailableError:
        raise
    except Exception as err:
        raise _unavailable("CIFAR-10", how, err) from err
    return _as_dataset(ds.data, ds.targets, CIFAR10_CLASSES, "CIFAR-10",
                       f"{folder} (torchvision)", n, channels_last=True)


def digits(n: int | None = None) -> ImageDataset:
    """scikit-learn's 8x8 handwritten digits (1,797 images), for tiny tests."""
    from sklearn.datasets import load_digits

    _check_n(n)
    bunch = load_digits()
    x = torch.as_tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.as_tensor(bunch.target, dtype=torch.int64)
    ds = ImageDataset(x.contiguous(), y, MNIST_CLASSES, "digits", "scikit-learn load_digits")
    return ds.head(n)


_LOADERS = {"fashion_mnist": fashion_mnist, "mnist": mnist, "cifar10": cifar10}


def load_dataset(name: str, train: bool = True, n: int | None = None) -> ImageDataset:
    """Load a dataset by name: ``fashion_mnist``, ``mnist``, ``cifar10`` or ``digits``."""
    _check_n(n)
    if name == "digits":
        return digits(n)
    if name not in _LOADERS:
        raise ValueError(f"name: unknown dataset {name!r}; choose one of "
                         f"{sorted([*_LOADERS, 'digits'])}")
    return _LOADERS[name](train=train, n=n)


# Synthetic manifolds with exact tangent spaces (chapter "Clinging and dimpling").
from .synthetic import *  # noqa: E402, F403
from .synthetic import __all__ as _synthetic_all  # noqa: E402

__all__ += _synthetic_all
