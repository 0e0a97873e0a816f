"""Notebook 06's widgets: every control value gives a picture and a one-line summary that states it in words."""

import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from course_lib import ensembles, widgets

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def member_sets():
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (200,), generator=generator)
    signal = torch.nn.functional.one_hot(labels, 4).float()
    sets = {"diverse": 2 * signal + 1.5 * torch.randn(5, 200, 4, generator=generator),
            "alike": (2 * signal + 1.5 * torch.randn(200, 4, generator=generator)).expand(3, 200, 4).clone()}
    return sets, labels


def test_every_size_and_set_draws_a_picture_and_says_what_it_shows():
    sets, labels = member_sets()
    explorer = widgets.ensemble_explorer(sets, labels)
    size, members = explorer.controls["size"], explorer.controls["members"]
    assert size.value == size.max == 5
    pictures = set()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in members.options:
            members.value = name
            for k in range(size.min, size.max + 1):
                size.value = k
                assert bytes(explorer.image.value).startswith(PNG_SIGNATURE)
                pictures.add(bytes(explorer.image.value))
                nll, accuracy = ensembles.growing_ensemble(sets[name][:k], labels)
                assert f"the first {k}:" in explorer.summary.value
                assert f"NLL <b>{nll[-1]:.3f}</b>" in explorer.summary.value
                assert f"accuracy <b>{accuracy[-1]:.3f}</b>" in explorer.summary.value
    assert len(pictures) >= 6
    assert size.max == 3  # the set of 3 members: the slider stops at 3


def test_an_ensemble_explorer_needs_members():
    with pytest.raises(ValueError, match="member_sets"):
        widgets.ensemble_explorer({}, torch.zeros(3, dtype=torch.long))


def curves():
    steps = np.arange(0, 321, 32)
    raw = 2.3 * np.exp(-steps / 100) + 0.9 + 0.05 * np.sin(steps)
    losses = {"raw": raw, "uniform": raw + 0.1 * np.exp(-steps / 200) - 0.05}
    for decay in (0.9, 0.99, 0.999):
        losses[decay] = raw + (decay - 0.85) * np.exp(-steps / (1 / (1 - decay))) - 0.02
    return SimpleNamespace(steps=list(steps), losses={k: list(v) for k, v in losses.items()})


def test_every_decay_draws_a_picture_and_says_what_it_shows():
    explorer = widgets.averaging_explorer(curves(), decay=0.99)
    control = explorer.controls["decay"]
    pictures = set()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _, decay in control.options:
            control.value = decay
            assert bytes(explorer.image.value).startswith(PNG_SIGNATURE)
            pictures.add(bytes(explorer.image.value))
            assert f"decay <b>{decay:g}</b>" in explorer.summary.value
            assert f"{curves().losses[decay][-1]:.3f}" in explorer.summary.value
    assert len(pictures) == 3


def test_an_averaging_explorer_names_what_is_missing():
    incomplete = curves()
    del incomplete.losses["uniform"]
    with pytest.raises(ValueError, match="'raw', 'uniform'"):
        widgets.averaging_explorer(incomplete)
    with pytest.raises(ValueError, match="decay must be one of the measured decays"):
        widgets.averaging_explorer(curves(), decay=0.5)
