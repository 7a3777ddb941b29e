"""The row engines (`vits.model.engine`): MKL's products and oneDNN's convolutions compute the
same layers; "auto" picks one by the CPU's kind, and the choice is validated."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vits import Voice
from vits.model import engine
from vits.model.common import Conv1x1, prepare_row_taps, rows_conv

needs_onednn = pytest.mark.skipif(not engine.ONEDNN_AVAILABLE, reason="torch built without oneDNN")


def _conv(in_channels: int, out_channels: int, kernel: int, dilation: int) -> nn.Conv1d:
    torch.manual_seed(kernel * 10 + dilation)
    padding = (kernel - 1) * dilation // 2
    return nn.Conv1d(in_channels, out_channels, kernel, dilation=dilation, padding=padding)


def _close(got: torch.Tensor, expected: torch.Tensor) -> bool:
    return float((got - expected).abs().max()) <= 1e-5 * max(1.0, float(expected.abs().max()))


@needs_onednn
@pytest.mark.usefixtures("restore_engine")
@pytest.mark.parametrize("name", engine.ROW_ENGINES)
@pytest.mark.parametrize(("kernel", "dilation"), [(1, 1), (3, 1), (5, 2), (7, 12)])
@pytest.mark.parametrize("rows", [1, 6, 300])  # shorter than the reach, about it, far longer
def test_each_engine_computes_the_convolution(name: engine.RowEngine, kernel: int, dilation: int, rows: int) -> None:
    engine.set_row_engine(name)
    conv = _conv(16, 24, kernel, dilation)
    x = torch.randn(rows, 16)
    with torch.inference_mode():
        expected = conv(x.t().unsqueeze(0))[0].t()
        got = rows_conv(x, prepare_row_taps(conv))
        strided = rows_conv(torch.randn(rows, 40)[:, 8:24].copy_(x), prepare_row_taps(conv))  # a column slice
    assert got.shape == strided.shape == (rows, 24)
    assert _close(got, expected)
    assert _close(strided, expected)


@needs_onednn
@pytest.mark.usefixtures("restore_engine")
@pytest.mark.parametrize("name", engine.ROW_ENGINES)
@pytest.mark.parametrize("inplace", [False, True])
def test_each_engine_adds_the_residual(name: engine.RowEngine, inplace: bool) -> None:
    engine.set_row_engine(name)
    conv = _conv(12, 12, 3, 3)
    x, residual = torch.randn(80, 12), torch.randn(80, 12)
    before = residual.clone()
    with torch.inference_mode():
        expected = conv(x.t().unsqueeze(0))[0].t() + before
        got = rows_conv(x, prepare_row_taps(conv), residual=residual, inplace=inplace)
    assert _close(got, expected)
    if inplace:
        assert got.data_ptr() == residual.data_ptr()
    else:
        assert torch.equal(residual, before)


@needs_onednn
@pytest.mark.usefixtures("restore_engine")
@pytest.mark.parametrize("name", engine.ROW_ENGINES)
def test_each_engine_computes_the_1x1_layer(name: engine.RowEngine) -> None:
    engine.set_row_engine(name)
    torch.manual_seed(3)
    layer = Conv1x1(20, 30)
    x = torch.randn(50, 20)
    with torch.inference_mode():
        expected = nn.functional.conv1d(x.t().unsqueeze(0), layer.weight, layer.bias)[0].t()
        assert _close(layer.rows(x), expected)


@pytest.mark.usefixtures("restore_engine")
def test_float64_and_other_devices_keep_torch_products() -> None:
    """oneDNN has no float64 kernels: the exact (float64) tests of the row path run either way."""
    if engine.ONEDNN_AVAILABLE:
        engine.set_row_engine("onednn")
    assert not engine.uses_onednn(torch.zeros(2, 2, dtype=torch.float64))
    assert not engine.uses_onednn(torch.zeros(2, 2, device="meta"))
    assert engine.uses_onednn(torch.zeros(2, 2)) == engine.ONEDNN_AVAILABLE


@pytest.mark.usefixtures("restore_engine")
def test_the_choice_is_validated_and_set() -> None:
    with pytest.raises(ValueError, match="row engine must be one of mkl, onednn"):
        engine.set_row_engine("blas")  # type: ignore[arg-type]
    assert engine.choose_row_engine("mkl") == "mkl" == engine.row_engine()
    assert engine.choose_row_engine("auto") == engine.automatic() == engine.row_engine()


@needs_onednn
@pytest.mark.usefixtures("restore_engine")
def test_auto_is_decided_by_the_machine_not_by_a_timing(monkeypatch: pytest.MonkeyPatch) -> None:
    machine = {"capability": "AVX512", "cpu": ("AuthenticAMD", 26)}
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: machine["capability"])
    monkeypatch.setattr(engine, "cpu_family", lambda: machine["cpu"])
    chosen = {}
    for name, capability, cpu in (
        ("zen 5", "AVX512", ("AuthenticAMD", 26)),
        ("later amd", "AVX512", ("AuthenticAMD", 27)),
        ("zen 4", "AVX512", ("AuthenticAMD", 25)),
        ("zen 3", "AVX2", ("AuthenticAMD", 25)),
        ("intel avx-512", "AVX512", ("GenuineIntel", 6)),
        ("unknown", "AVX512", ("", -1)),
    ):
        machine.update(capability=capability, cpu=cpu)
        chosen[name] = [engine.automatic() for _ in range(3)]  # the same every time: nothing is timed
    assert chosen == {
        "zen 5": ["onednn"] * 3,
        "later amd": ["onednn"] * 3,
        "zen 4": ["mkl"] * 3,
        "zen 3": ["mkl"] * 3,
        "intel avx-512": ["mkl"] * 3,
        "unknown": ["mkl"] * 3,
    }


@needs_onednn
@pytest.mark.usefixtures("restore_engine")
def test_voice_load_sets_the_engine_asked_for() -> None:
    with pytest.raises(ValueError, match="row engine"):
        Voice.load(row_engine="gpu")  # type: ignore[arg-type]
    Voice.load(row_engine="mkl")
    assert engine.row_engine() == "mkl"
    Voice.load(row_engine="onednn")
    assert engine.row_engine() == "onednn"
