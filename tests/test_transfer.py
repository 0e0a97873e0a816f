"""course_lib.transfer: the network, the regimes, and the shipped files (pretrained weights and the precomputed
table), which are checked by hash when loaded and regenerated here to compare their contents (tensors and
accuracies, not bytes: torch.save's bytes depend on the file name, and results move ~1e-6 across machines)."""

import importlib.util
import inspect
import json
import shutil
import sys

import pytest
import torch

from course_lib import data, training, transfer


def script(name):
    """Import one of the scripts in data/ as a module."""
    spec = importlib.util.spec_from_file_location(name, data.DATA_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_the_network_is_small_and_takes_signals_of_any_length():
    model = transfer.small_cnn(5, seed=0)
    assert sum(p.numel() for p in model.parameters()) == 6221
    assert model.head.in_features == 32
    model.eval()
    for length in (40, 64):
        assert model(torch.randn(3, length)).shape == (3, 5)
    assert torch.equal(transfer.small_cnn(5, seed=3).head.weight, transfer.small_cnn(5, seed=3).head.weight)


def test_pretrained_network_loads_and_is_good_on_its_own_classes():
    model = transfer.pretrained_cnn()
    assert not model.training
    facts = transfer.shipped_pretraining()
    assert facts["source_test_accuracy"] > 0.9 and facts["source_train_examples"] == 10_000
    # on the shipped MNIST-1D test signals of digits 0-4 (never seen in pretraining: generated with seed 42)
    source = data.mnist1d().classes_only(transfer.SOURCE_CLASSES)
    assert training.evaluate(model, source.x_test, source.y_test)[1] > 0.9


def test_a_tampered_weights_file_is_refused(tmp_path, monkeypatch):
    for name in ("SHA256SUMS", transfer.WEIGHTS_FILE):
        shutil.copy(data.DATA_DIR / name, tmp_path / name)
    weights = bytearray((tmp_path / transfer.WEIGHTS_FILE).read_bytes())
    weights[-200] ^= 0x01
    (tmp_path / transfer.WEIGHTS_FILE).write_bytes(bytes(weights))
    monkeypatch.setattr(data, "DATA_DIR", tmp_path)
    transfer.shipped_pretraining.cache_clear()
    try:
        with pytest.raises(ValueError, match="mnist1d_cnn_classes_0-4.pt does not match its sha256"):
            transfer.pretrained_cnn()
        (tmp_path / transfer.WEIGHTS_FILE).unlink()
        with pytest.raises(FileNotFoundError, match="is missing"):
            transfer.pretrained_cnn()
    finally:
        transfer.shipped_pretraining.cache_clear()


def test_regenerated_weights_match_the_shipped_ones():
    """data/make_pretrained_cnn.py run again gives the shipped tensors (to 1e-4) and accuracy (to 0.002)."""
    pytest.importorskip("mnist1d")
    fresh = script("make_pretrained_cnn").generate()
    shipped = transfer.shipped_pretraining()
    assert fresh["state_dict"].keys() == shipped["state_dict"].keys()
    for name, tensor in shipped["state_dict"].items():
        torch.testing.assert_close(fresh["state_dict"][name], tensor, rtol=1e-4, atol=1e-4, msg=name)
    assert abs(fresh["source_test_accuracy"] - shipped["source_test_accuracy"]) <= 0.002
    # and the comparison can fail: the same script with another seed gives other weights
    other = transfer.small_cnn(5, seed=1).state_dict()
    assert any(not torch.allclose(other[n], t, atol=1e-4) for n, t in shipped["state_dict"].items()
               if t.dtype.is_floating_point)


def test_the_shipped_tables_reproduce():
    """A part of data/make_transfer_table.py run again (N = 10, seed 0: every regime on the similar data, two on
    the different data) gives the shipped final accuracies to within 0.02 (a handful of the ~500 test signals
    may flip across machines)."""
    make = script("make_transfer_table")
    some = ("from scratch", "frozen body + new head")
    for name, regimes in (("similar", transfer.REGIMES), ("different", some)):
        table = transfer.shipped_table(name)
        assert table.settings["steps"] == make.SETTINGS["steps"] and table.counts == make.COUNTS[name]
        fresh = transfer.TransferTable(make.generate(name, counts=(10,), regimes=regimes, seeds=(0,)))
        for regime in regimes:
            assert abs(fresh.run(regime, 10, 0) - table.run(regime, 10, 0)) <= 0.02, (name, regime)


def test_adapt_defaults_are_the_tables_settings():
    parameters = inspect.signature(transfer.adapt).parameters
    settings = script("make_transfer_table").SETTINGS
    assert {name: parameters[name].default for name in settings} == settings


def test_the_table_file_is_hash_checked(tmp_path, monkeypatch):
    shutil.copy(data.DATA_DIR / "SHA256SUMS", tmp_path / "SHA256SUMS")
    tables = json.loads((data.DATA_DIR / transfer.TABLE_FILE).read_text())
    tables["similar"]["rows"][0]["test_accuracy"] += 0.1
    (tmp_path / transfer.TABLE_FILE).write_text(json.dumps(tables))
    monkeypatch.setattr(data, "DATA_DIR", tmp_path)
    with pytest.raises(ValueError, match="does not match its sha256"):
        transfer.shipped_table()


def tiny_target(count=4, seed=0):
    return data.mnist1d().classes_only(transfer.TARGET_CLASSES).per_class(count, seed)


def body_state(model):
    return {name: tensor.clone() for name, tensor in model.body.state_dict().items()}


@pytest.mark.parametrize("regime", transfer.REGIMES)
def test_each_regime_trains_what_it_says(regime):
    pretrained = transfer.pretrained_cnn()
    before = body_state(pretrained)
    model, history = transfer.adapt(pretrained, tiny_target(), regime, steps=20, batch_size=10, evaluate_every=10)
    assert len(history.step_loss) == 20 and len(history.test_accuracy) == 2
    assert all(torch.equal(t, before[n]) for n, t in pretrained.body.state_dict().items())  # source untouched
    after = model.body.state_dict()
    moved = {name for name, tensor in after.items() if tensor.dtype.is_floating_point
             and not torch.equal(tensor, before[name])}
    if regime == "frozen body + new head":
        assert not moved and not model.body.training  # weights and batch-norm statistics stay
    else:  # the first convolution's weights and the batch-norm statistics move (from scratch: are new)
        assert "1.weight" in moved and any("running_mean" in name for name in moved)


def test_the_body_at_a_tenth_moves_less():
    pretrained = transfer.pretrained_cnn()
    before = pretrained.body[1].weight.detach().clone()
    moves = {}
    for regime in ("fine-tune, body at 1/10", "fine-tune all"):
        model, _ = transfer.adapt(pretrained, tiny_target(), regime, steps=10, batch_size=10, evaluate_every=10)
        moves[regime] = (model.body[1].weight - before).abs().max().item()
    # Adam's steps are about the learning rate each: 10 steps move a weight by at most ~10x the rate
    assert moves["fine-tune, body at 1/10"] < 0.2 * moves["fine-tune all"]


def test_frozen_body_stays_frozen_through_training_and_evaluation():
    """training.evaluate() gives every submodule its own mode back: a frozen body stays in eval mode."""
    model, trainable = transfer.freeze_body_and_replace_head(transfer.pretrained_cnn(), 5, seed=0)
    before = body_state(model)
    optimizer = torch.optim.Adam(trainable, lr=1e-2)
    training.train(model, optimizer, tiny_target(), epochs=3, batch_size=10, evaluate_every=1)
    assert not model.body.training and model.head.training
    assert all(torch.equal(t, before[n]) for n, t in model.body.state_dict().items())


def test_freeze_body_and_replace_head_reference():
    pretrained = transfer.pretrained_cnn()
    original = {n: t.clone() for n, t in pretrained.state_dict().items()}
    model, trainable = transfer.freeze_body_and_replace_head(pretrained, 3, seed=4)
    assert model is not pretrained and all(torch.equal(t, original[n]) for n, t in pretrained.state_dict().items())
    assert all(not p.requires_grad for p in model.body.parameters())
    assert [p.shape for p in trainable] == [(3, 32), (3,)] and all(p.requires_grad for p in trainable)
    torch.manual_seed(4)
    assert torch.equal(model.head.weight, torch.nn.Linear(32, 3).weight)


@pytest.mark.parametrize("change, message", [
    ({"regime": "frozen"}, "regime must be one of"),
    ({"steps": 0}, "steps must be an integer >= 1"),
    ({"learning_rate": -1.0}, "learning_rate must be a positive number"),
])
def test_bad_arguments_are_named(change, message):
    arguments = {"pretrained": None, "dataset": tiny_target(), "regime": "from scratch", **change}
    with pytest.raises(ValueError, match=message):
        transfer.adapt(**arguments)
