import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from dmmlib import data
from dmmlib.data import DatasetUnavailableError, ImageDataset, fashion_mnist, read_idx


def _write_idx(path: Path, array: np.ndarray, compress: bool) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(path, "wb") as fh:
            fh.write(raw)
    else:
        path.write_bytes(raw)


def _fake_fashion(folder: Path, n: int = 12, compress: bool = True) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    suffix = ".gz" if compress else ""
    for prefix in ("train", "t10k"):
        _write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}",
                   rng.integers(0, 256, size=(n, 28, 28)), compress)
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}",
                   np.arange(n) % 10, compress)


@pytest.fixture
def no_system_data(monkeypatch, tmp_path):
    """Pretend Debian's package is absent and nothing can be downloaded."""
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", tmp_path / "absent")
    monkeypatch.setenv("DMM_DATA", str(tmp_path / "empty-data"))

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(data, "_torchvision_dataset", offline)


@pytest.mark.parametrize("compress", [True, False])
def test_reads_a_user_folder(tmp_path, no_system_data, compress):
    _fake_fashion(tmp_path / "fm", compress=compress)
    ds = fashion_mnist(train=False, root=tmp_path / "fm", n=5)
    assert ds.x.shape == (5, 1, 28, 28) and ds.x.dtype == torch.float32
    assert ds.y.dtype == torch.int64 and ds.y.tolist() == [0, 1, 2, 3, 4]
    assert 0.0 <= float(ds.x.min()) and float(ds.x.max()) <= 1.0
    assert "root=" in ds.source and ds.name == "Fashion-MNIST"


def test_reads_torchvision_layout_from_dmm_data(tmp_path, no_system_data, monkeypatch):
    _fake_fashion(tmp_path / "dd" / "FashionMNIST" / "raw", compress=False)
    monkeypatch.setenv("DMM_DATA", str(tmp_path / "dd"))
    ds = fashion_mnist()
    assert len(ds) == 12 and "$DMM_DATA" in ds.source


def test_missing_data_says_what_to_install(no_system_data):
    with pytest.raises(DatasetUnavailableError) as info:
        fashion_mnist()
    msg = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in msg
    assert "DMM_DATA" in msg and "network is unreachable" in msg
    with pytest.raises(DatasetUnavailableError, match="dataset-fashion-mnist"):
        fashion_mnist(download=False)


def test_mnist_and_cifar_offline_errors_are_clear(no_system_data):
    with pytest.raises(DatasetUnavailableError, match="MNIST.*network.*Colab"):
        data.mnist()
    with pytest.raises(DatasetUnavailableError, match="CIFAR-10.*network"):
        data.cifar10()


def test_truncated_idx_is_reported(tmp_path):
    path = tmp_path / "x-idx3-ubyte"
    _write_idx(path, np.zeros((4, 28, 28)), compress=False)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError, match="truncated"):
        read_idx(path)
    (tmp_path / "junk").write_bytes(b"hello world")
    with pytest.raises(ValueError, match="not an unsigned-byte IDX"):
        read_idx(tmp_path / "junk")


@pytest.mark.skipif(not data.DEBIAN_FASHION_MNIST.is_dir(),
                    reason="Debian package dataset-fashion-mnist not installed")
def test_debian_fashion_mnist():
    train = fashion_mnist(train=True, n=100)
    test = fashion_mnist(train=False)
    assert len(test) == 10_000 and len(train) == 100
    assert "dataset-fashion-mnist" in train.source
    assert set(test.y.tolist()) == set(range(10))
    assert test.classes[9] == "Ankle boot"


def test_digits_are_in_the_unit_box():
    ds = data.digits()
    assert ds.x.shape == (1797, 1, 8, 8)
    assert float(ds.x.min()) == 0.0 and float(ds.x.max()) == 1.0
    assert len(data.digits(n=10)) == 10


def test_dataset_checks_shapes():
    with pytest.raises(ValueError, match="x: expected shape"):
        ImageDataset(torch.zeros(3, 4), torch.zeros(3, dtype=torch.long), ("a",), "t", "s")
    with pytest.raises(ValueError, match="y: expected shape"):
        ImageDataset(torch.zeros(3, 1, 2, 2), torch.zeros(2, dtype=torch.long), ("a",), "t", "s")


def test_load_dataset_rejects_unknown_names():
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'"):
        data.load_dataset("imagenet")
