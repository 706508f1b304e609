"""LongNetDecoder.from_checkpoint on a checkpoint that `longnet train` writes here."""

import subprocess

import numpy as np
import pytest

from longnet import LongNetDecoder
from conftest import ROOT
from test_cli_fixtures import BINARY


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    if not BINARY.exists():
        pytest.fail(f"the longnet binary is not at {BINARY}: build it or set LONGNET_BINARY")
    work = tmp_path_factory.mktemp("train")
    subprocess.run([str(BINARY), "data", "prepare", "-i", str(ROOT / "model"), "-o",
                    str(work / "data"), "--val-fraction", "0.3", "-q"], check=True)
    settings = ["data.dir=" + str(work / "data"), "checkpoint.dir=" + str(work / "ckpt"),
                "model.dim=32", "model.heads=2", "model.layers=1", "model.ffn_dim=64",
                "model.segment_lengths=16,32", "model.dilation_rates=1,2", "data.seq_len=32",
                "data.batch_size=2", "optimizer.max_steps=3", "optimizer.warmup_steps=1",
                "checkpoint.every=3", "eval.every=0"]
    command = [str(BINARY), "train"]
    for setting in settings:
        command += ["--set", setting]
    subprocess.run(command, check=True, capture_output=True)
    return work / "ckpt" / "ckpt_00000003.h5"


def test_loads_the_checkpoint_and_its_config(checkpoint):
    model = LongNetDecoder.from_checkpoint(checkpoint)
    assert model.step == 3 and model.vocab_size == 256
    assert "dim = 32" in model.config_toml
    assert "step=3" in repr(model)


def test_loss_is_the_cross_entropy_of_the_logits(checkpoint):
    model = LongNetDecoder.from_checkpoint(checkpoint)
    text = b"func main() { return 0 }\nfunc f(x int) int { return x }\n"[:41]
    tokens = np.frombuffer(text, dtype=np.uint8)
    logits, loss = model.forward(tokens[None, :-1], tokens[None, 1:])
    assert logits.shape == (1, 40, 256) and np.isfinite(logits).all()
    shifted = logits[0].astype(np.float64)
    log_z = np.log(np.exp(shifted - shifted.max(1, keepdims=True)).sum(1)) + shifted.max(1)
    want = np.mean(log_z - shifted[np.arange(40), tokens[1:]])
    assert loss == pytest.approx(want, rel=1e-5)
    assert 0 < loss < 8  # near ln(256) = 5.55 after three steps


def test_logits_are_causal(checkpoint):
    model = LongNetDecoder.from_checkpoint(checkpoint)
    a = np.frombuffer(b"package main; import fmt", dtype=np.uint8)
    b = a.copy()
    b[15:] = ord("z")
    logits_a, _ = model.forward(a)
    logits_b, _ = model.forward(b)
    np.testing.assert_array_equal(logits_a[0, :15], logits_b[0, :15])
    assert not np.allclose(logits_a[0, 15:], logits_b[0, 15:])


def test_generate_greedy_and_sampled(checkpoint):
    model = LongNetDecoder.from_checkpoint(checkpoint)
    prompt = b"func "
    greedy = model.generate(prompt, 6)
    assert greedy.startswith(prompt) and len(greedy) == len(prompt) + 6
    sequence = prompt
    for _ in range(6):  # the same chain by hand
        logits, _ = model.forward(sequence)
        sequence += bytes([int(np.argmax(logits[0, -1]))])
    assert greedy == sequence
    sampled = model.generate(prompt, 6, temperature=1.0, seed=7)
    assert sampled == model.generate(prompt, 6, temperature=1.0, seed=7)
    assert len(sampled) == len(prompt) + 6


def test_bad_inputs_name_the_problem(checkpoint, tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        LongNetDecoder.from_checkpoint(tmp_path / "missing.h5")
    damaged = tmp_path / "damaged.h5"
    damaged.write_bytes(checkpoint.read_bytes()[:5000])
    with pytest.raises(ValueError, match="damaged.h5"):
        LongNetDecoder.from_checkpoint(damaged)
    model = LongNetDecoder.from_checkpoint(checkpoint)
    with pytest.raises(ValueError, match="outside"):
        model.forward(np.array([1, 2, 300]))
    with pytest.raises(ValueError, match="temperature"):
        model.generate(b"x", 1, temperature=-1)
