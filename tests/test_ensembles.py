"""Ensembles: the prediction against torch's mixture distribution and cross-entropy, members in evaluation mode,
snapshots at the ends of the warm-restart cycles of course_lib.schedules, and the training recipe."""

import numpy as np
import pytest
import torch
from torch import nn
from torch.distributions import Categorical, MixtureSameFamily

from course_lib import data, ensembles, schedules, training
from course_lib.ensembles import (
    Recipe,
    Snapshots,
    accuracy,
    average_logits,
    average_probabilities,
    average_weights,
    growing_ensemble,
    member_logits,
    member_scores,
    negative_log_likelihood,
    vote_fractions,
)


def random_logits(members=4, examples=50, classes=6, seed=0, scale=3.0):
    generator = torch.Generator().manual_seed(seed)
    logits = scale * torch.randn(members, examples, classes, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, classes, (examples,), generator=generator)
    return logits, labels


def mixture_nll(logits, labels):
    """The reference: -log of torch's uniform mixture of the members' categorical distributions."""
    members = logits.shape[0]
    mixture = MixtureSameFamily(Categorical(probs=torch.full((logits.shape[1], members), 1 / members,
                                                             dtype=logits.dtype)),
                                Categorical(logits=logits.transpose(0, 1)))
    return float(-mixture.log_prob(labels).mean())


def test_the_ensemble_is_torchs_uniform_mixture_of_the_members():
    logits, labels = random_logits()
    probabilities = average_probabilities(logits)
    np.testing.assert_allclose(probabilities.sum(1).numpy(), 1.0, rtol=1e-14)
    assert negative_log_likelihood(probabilities, labels) == pytest.approx(mixture_nll(logits, labels), rel=1e-12)


def test_the_mixture_check_fails_on_averaged_logits():
    logits, labels = random_logits()
    assert negative_log_likelihood(average_logits(logits), labels) != pytest.approx(mixture_nll(logits, labels),
                                                                                     rel=1e-3)


def test_one_member_scores_are_torchs_cross_entropy_and_accuracy():
    logits, labels = random_logits()
    nll, correct = member_scores(logits, labels)
    for k in range(len(logits)):
        assert nll[k] == pytest.approx(nn.functional.cross_entropy(logits[k], labels).item(), rel=1e-12)
        assert correct[k] == pytest.approx((logits[k].argmax(1) == labels).double().mean().item())
    assert negative_log_likelihood(average_logits(logits), labels) == pytest.approx(
        nn.functional.cross_entropy(logits.mean(0), labels).item(), rel=1e-12)


def test_the_growing_ensemble_averages_the_first_k_members():
    logits, labels = random_logits(members=5)
    nll, correct = growing_ensemble(logits, labels)
    for k in range(1, 6):
        assert nll[k - 1] == pytest.approx(mixture_nll(logits[:k], labels), rel=1e-12)
        assert correct[k - 1] == accuracy(average_probabilities(logits[:k]), labels)


def test_an_ensemble_is_never_worse_than_its_average_member_in_nll():
    """Jensen: -log(mean p) <= mean(-log p), for every example, so for the test set too."""
    for seed in range(5):
        logits, labels = random_logits(seed=seed)
        ensemble_nll = negative_log_likelihood(average_probabilities(logits), labels)
        assert ensemble_nll <= member_scores(logits, labels)[0].mean()


def test_votes_count_the_members_argmaxes():
    logits = torch.tensor([[[2.0, 1.0, 0.0]], [[0.0, 3.0, 1.0]], [[5.0, 0.0, 0.0]]])
    np.testing.assert_allclose(vote_fractions(logits).numpy(), [[2 / 3, 1 / 3, 0.0]])


def test_disagreement_counts_the_pairs_that_differ():
    logits = torch.tensor([[[2.0, 1.0], [0.0, 1.0]], [[2.0, 1.0], [1.0, 0.0]], [[0.0, 1.0], [1.0, 0.0]]])
    # argmaxes (0, 1), (0, 0), (1, 0): pairs (0, 1) differ on 1 of 2 examples, (0, 2) on 2, (1, 2) on 1
    assert ensembles.disagreement(logits) == pytest.approx(2 / 3)
    assert ensembles.disagreement(torch.stack([logits[0], logits[0]])) == 0.0
    with pytest.raises(ValueError, match="at least 2 members"):
        ensembles.disagreement(logits[:1])


def dropout_model(seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 3))


def test_members_are_evaluated_in_evaluation_mode_and_left_as_they_were():
    models = [dropout_model(seed) for seed in range(3)]
    models[0].eval()
    inputs = torch.randn(20, 5)
    first, second = member_logits(models, inputs), member_logits(models, inputs)
    assert torch.equal(first, second)  # no dropout noise
    for model, logits in zip(models, first, strict=True):
        was_training = model.training
        model.eval()
        torch.testing.assert_close(logits, model(inputs).detach())
        model.train(was_training)
    assert [model.training for model in models] == [False, True, True]


def test_average_weights_is_the_mean_of_the_parameters():
    models = [dropout_model(seed) for seed in range(3)]
    averaged = average_weights(models)
    for name, parameter in averaged.named_parameters():
        expected = torch.stack([dict(model.named_parameters())[name].detach() for model in models]).mean(0)
        torch.testing.assert_close(parameter, expected, rtol=1e-6, atol=1e-7)
    assert averaged is not models[0]


def test_snapshots_are_taken_at_the_ends_of_the_warm_restart_cycles():
    dataset = data.mnist1d().training_subset(640)  # 5 steps of 128 per epoch
    recipe = Recipe(learning_rate=0.1, epochs=6, schedule="cosine_warm_restarts", cycles=3, sizes=(40, 8, 10))
    assert recipe.cycle_steps(dataset) == 10
    model = recipe.model(seed=0)
    snapshots = Snapshots(recipe.cycle_steps(dataset))
    history = recipe.train(model, dataset, on_step=snapshots)
    assert snapshots.steps == [10, 20, 30]
    expected = [schedules.cosine_warm_restarts(t, learning_rate=0.1, period=10) for t in range(30)]
    np.testing.assert_allclose(history.learning_rate, expected, rtol=1e-12)  # the schedule of notebook 04
    for step in snapshots.steps:  # the step before each snapshot ran at the cycle's lowest rate
        assert history.learning_rate[step - 1] == min(history.learning_rate[step - 10:step])
    for mine, final in zip(snapshots.models[-1].parameters(), model.parameters(), strict=True):
        assert torch.equal(mine, final)  # the last snapshot is the trained model
    assert snapshots.models[0] is not snapshots.models[1]
    assert not torch.equal(next(snapshots.models[0].parameters()), next(snapshots.models[1].parameters()))


def test_snapshots_after_a_step_keep_only_the_last_ones():
    snapshots = Snapshots(period=4, after=8)
    model = nn.Linear(2, 2)
    for step in range(1, 17):
        snapshots(model, step)
    assert snapshots.steps == [12, 16]


def test_a_recipe_trains_with_the_cosine_of_notebook_04_and_repeats():
    dataset = data.mnist1d().training_subset(512)
    recipe = Recipe(learning_rate=0.2, epochs=2, sizes=(40, 8, 10))
    first, second = recipe.model(seed=3), recipe.model(seed=3)
    history = recipe.train(first, dataset, seed=3)
    again = recipe.train(second, dataset, seed=3)
    assert history.step_loss == again.step_loss and not first.training
    expected = [schedules.cosine(t, learning_rate=0.2, total_steps=8) for t in range(8)]
    np.testing.assert_allclose(history.learning_rate, expected, rtol=1e-12)
    members = recipe.train_members(dataset, seeds=[0, 1], progress=None)
    assert len(members) == 2 and not torch.equal(members[0][0].weight, members[1][0].weight)


def test_adam_recipe_uses_torchs_adam_at_a_constant_rate():
    dataset = data.mnist1d().training_subset(256)
    recipe = Recipe(optimizer="adam", learning_rate=1e-3, epochs=1, schedule="constant", sizes=(40, 8, 10))
    model, reference = recipe.model(seed=0), training.mlp([40, 8, 10], seed=0)
    history = recipe.train(model, dataset)
    expected = training.train(reference, torch.optim.Adam(reference.parameters(), lr=1e-3), dataset, epochs=1,
                              evaluate_every=None)
    assert history.step_loss == expected.step_loss and history.learning_rate == [1e-3] * 2


@pytest.mark.parametrize("arguments, name", [
    ({"optimizer": "sgd"}, "optimizer"), ({"learning_rate": 0}, "learning_rate"), ({"epochs": 0}, "epochs"),
    ({"schedule": "step"}, "schedule"), ({"cycles": 3}, "cycles"), ({"batch_size": 0}, "batch_size"),
])
def test_a_recipe_checks_its_arguments(arguments, name):
    with pytest.raises(ValueError, match=name):
        Recipe(**arguments)


def test_cycles_must_divide_the_run():
    recipe = Recipe(epochs=3, schedule="cosine_warm_restarts", cycles=5)
    with pytest.raises(ValueError, match="cycles must be a divisor of the run's 96 steps"):
        recipe.cycle_steps(data.mnist1d())


@pytest.mark.parametrize("call, name", [
    (lambda: Snapshots(0), "period"), (lambda: Snapshots(3, after=-1), "after"),
    (lambda: member_logits([], torch.zeros(1, 2)), "models"), (lambda: average_weights([]), "models"),
])
def test_bad_arguments_name_the_parameter(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_module_lists_what_it_exports():
    assert set(ensembles.__all__) <= set(dir(ensembles))
