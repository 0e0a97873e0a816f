"""The training loop's hooks (per-step schedules, augmentation, per-step callbacks) and dataset subsets."""

import numpy as np
import pytest
import torch

from course_lib import data, optim, schedules, training


def small_run():
    model = training.mlp([40, 16, 10], seed=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    return model, optimizer


def test_a_per_step_scheduler_sets_the_rate_of_every_step():
    model, optimizer = small_run()
    total = 3 * 32  # 3 epochs of 4000 / 128 -> 32 batches (the last one short)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, schedules.torch_lambda(schedules.step_decay, learning_rate=0.1, step_size=10, gamma=0.5))
    history = training.train(model, optimizer, data.mnist1d(), epochs=3, scheduler=scheduler,
                             scheduler_interval="step", evaluate_every=None)
    assert len(history.learning_rate) == total
    expected = [schedules.step_decay(t, learning_rate=0.1, step_size=10, gamma=0.5) for t in range(total)]
    np.testing.assert_allclose(history.learning_rate, expected, rtol=1e-12)
    assert history.test_loss == []  # evaluate_every=None: never evaluated


def test_an_epoch_scheduler_changes_the_rate_once_per_epoch():
    model, optimizer = small_run()
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    history = training.train(model, optimizer, data.mnist1d(), epochs=2, scheduler=scheduler)
    assert history.learning_rate[:32] == [0.1] * 32 and history.learning_rate[32:] == [0.05] * 32
    assert len(history.test_accuracy) == 2


def test_hooks_see_every_step_and_augment_sees_every_batch():
    model, optimizer = small_run()
    steps, batches = [], []

    def augment(inputs, generator):
        batches.append(len(inputs))
        return inputs + 0.01 * torch.randn(inputs.shape, generator=generator)

    history = training.train(model, optimizer, data.mnist1d(), epochs=1, augment=augment,
                             on_step=lambda model, step: steps.append(step))
    assert steps == list(range(1, 33)) and sum(batches) == 4000
    again_model, again_optimizer = small_run()
    again = training.train(again_model, again_optimizer, data.mnist1d(), epochs=1, augment=augment)
    assert again.step_loss == history.step_loss  # the augmentation's randomness is seeded too


def test_evaluate_every_keeps_the_last_epoch():
    model, optimizer = small_run()
    history = training.train(model, optimizer, data.mnist1d(), epochs=5, evaluate_every=2)
    assert len(history.test_accuracy) == 3  # epochs 2, 4 and the last


@pytest.mark.parametrize("options, message", [({"scheduler_interval": "batch"}, "scheduler_interval"),
                                              ({"evaluate_every": 0}, "evaluate_every")])
def test_bad_options_are_named(options, message):
    model, optimizer = small_run()
    with pytest.raises(ValueError, match=message):
        training.train(model, optimizer, data.mnist1d(), epochs=1, **options)


def test_train_each_trains_one_fresh_model_per_runner_on_the_same_batches():
    mnist = data.mnist1d().training_subset(512)
    runners = {"sgd": {"rule": optim.sgd, "learning_rate": 0.1},
               "adam": {"rule": optim.adam, "learning_rate": 0.01}}
    histories = training.train_each(optim.RuleOptimizer, runners, mnist,
                                    lambda seed: training.mlp([40, 16, 10], seed), epochs=2, seed=3)
    for label, arguments in runners.items():
        model = training.mlp([40, 16, 10], 3)
        optimizer = optim.RuleOptimizer(model.parameters(), **arguments)
        alone = training.train(model, optimizer, mnist, epochs=2, seed=3)
        assert histories[label].step_loss == alone.step_loss
    assert histories["sgd"].step_loss[0] == histories["adam"].step_loss[0]  # same weights, same first batch
    assert histories["sgd"].step_loss[-1] != histories["adam"].step_loss[-1]
    assert [len(history.test_accuracy) for history in histories.values()] == [2, 2]  # after every epoch
    once = training.train_each(optim.RuleOptimizer, runners, mnist, lambda seed: training.mlp([40, 16, 10], seed),
                               epochs=2, seed=3, evaluate_every=2)
    assert [len(history.test_accuracy) for history in once.values()] == [1, 1]
    assert once["adam"].test_accuracy[-1] == histories["adam"].test_accuracy[-1]


def test_subsets():
    mnist = data.mnist1d()
    small = mnist.training_subset(500, seed=1)
    assert len(small.y_train) == 500 and torch.equal(small.x_test, mnist.x_test)
    rows = {tuple(row.tolist()) for row in mnist.x_train}
    assert all(tuple(row.tolist()) in rows for row in small.x_train[:50])
    assert not torch.equal(small.y_train, mnist.training_subset(500, seed=2).y_train)
    balanced = mnist.per_class(7, seed=0)
    assert torch.equal(torch.bincount(balanced.y_train), torch.full((10,), 7))
    upper = mnist.classes_only((5, 6, 7, 8, 9))
    assert upper.num_classes == 5 and set(upper.y_test.tolist()) == set(range(5))
    assert len(upper.y_train) == int((mnist.y_train >= 5).sum())
    first = torch.nonzero(mnist.y_train == 7).flatten()[0]
    assert upper.y_train[int((mnist.y_train[:first] >= 5).sum())] == 2  # class 7 is the third of (5..9)
    with pytest.raises(ValueError, match="size"):
        mnist.training_subset(0)
    with pytest.raises(ValueError, match="classes"):
        mnist.classes_only((3, 3))


def _imports_the_compiler(script):
    """Whether ``script``, run in a fresh interpreter, ends with torch._dynamo imported."""
    import subprocess
    import sys

    code = f"import sys\n{script}\nprint('torch._dynamo' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return result.stdout.strip().splitlines()[-1] == "True"


def test_training_with_rule_optimizer_leaves_the_compiler_unimported():
    """~70 MB per kernel: RuleOptimizer and a scheduler never need torch._dynamo (course_lib.optim)."""
    train = ("import torch\nfrom course_lib import data, optim, schedules, training\n"
             "m = training.mlp([40, 16, 10]); o = {}\n"
             "s = torch.optim.lr_scheduler.LambdaLR(o, schedules.torch_lambda(schedules.cosine, learning_rate=0.1,"
             " total_steps=3))\n"
             "training.train(m, o, data.mnist1d().training_subset(256), epochs=3, scheduler=s)")
    assert not _imports_the_compiler(train.format("optim.RuleOptimizer(m.parameters(), optim.adam)"))
    # the detector works: torch's own optimizers import the compiler in every step()
    assert _imports_the_compiler(train.format("torch.optim.Adam(m.parameters(), lr=0.1)"))


@pytest.mark.parametrize("decoupled", [False, True])
def test_torch_adam_step_is_one_step_of_torchs_optimizer(decoupled):
    """optim.torch_adam_step, torch's Adam function called directly, is what torch.optim.Adam(weight_decay) or
    AdamW's step() gives, and leaves the compiler unimported (step() imports it)."""
    from course_lib import optim

    rng = np.random.default_rng(3)
    for learning_rate, decay, epsilon in ((1e-2, 0.1, 1e-8), (0.3, 0.0, 1e-3), (1e-3, 0.5, 1e-8)):
        x, dx = rng.standard_normal(7), rng.standard_normal(7)
        parameter = torch.nn.Parameter(torch.tensor(x))
        optimizer = (torch.optim.AdamW if decoupled else torch.optim.Adam)([parameter], lr=learning_rate,
                                                                           weight_decay=decay, eps=epsilon)
        parameter.grad = torch.tensor(dx)
        optimizer.step()
        ours = optim.torch_adam_step(x, dx, learning_rate, weight_decay=decay, decoupled=decoupled,
                                     epsilon=epsilon)
        assert np.array_equal(ours, parameter.detach().numpy())
    script = ("import numpy as np\nfrom course_lib import optim\n"
              f"optim.torch_adam_step(np.ones(3), np.ones(3), 0.1, weight_decay=0.1, decoupled={decoupled})")
    assert not _imports_the_compiler(script)


def test_train_each_shows_one_progress_bar_for_all_its_runs(monkeypatch):
    bars = []

    class Recorded(training.tqdm):
        def __init__(self, *arguments, **keywords):
            super().__init__(*arguments, **keywords)
            self.descriptions = []
            bars.append(self)

        def set_description(self, desc=None, refresh=True):
            self.descriptions.append(desc)
            super().set_description(desc, refresh)

    monkeypatch.setattr(training, "tqdm", Recorded)
    mnist = data.mnist1d().training_subset(256)
    runners = {"sgd": {"rule": optim.sgd, "learning_rate": 0.1},
               "adam": {"rule": optim.adam, "learning_rate": 0.01}}
    histories = training.train_each(optim.RuleOptimizer, runners, mnist,
                                    lambda seed: training.mlp([40, 8, 10], seed), epochs=3, evaluate_every=3)
    assert len(bars) == 1 and bars[0].total == 6 and bars[0].n == 6  # every epoch of every run counted once
    assert bars[0].descriptions == ["sgd", "adam"]
    model = training.mlp([40, 8, 10], 0)
    alone = training.train(model, optim.RuleOptimizer(model.parameters(), **runners["adam"]), mnist, epochs=3,
                           evaluate_every=3, progress="adam alone")
    assert len(bars) == 2 and bars[1].n == 3  # a run of its own has a bar of its own
    assert histories["adam"].step_loss == alone.step_loss and histories["adam"].test_loss == alone.test_loss


def test_training_hands_the_memory_it_freed_back():
    """train() ends with release_freed_memory(): on glibc, malloc_trim. 40 MB of blocks below glibc's mmap
    threshold (128 KB), freed while the last one stays in use, stay in the process (free() cannot shrink the
    heap below a block in use) until release_freed_memory() gives them back; elsewhere it does nothing."""
    if training._malloc_trim() is None:
        pytest.skip("not glibc: release_freed_memory does nothing")

    def resident_mb():
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024

    training.release_freed_memory()
    blocks = [bytearray(100_000) for _ in range(400)]  # written: resident
    last = blocks[-1]
    held = resident_mb()
    del blocks
    freed = resident_mb()
    assert freed > held - 10, "free() gave the memory back by itself: the test shows nothing"
    training.release_freed_memory()
    assert resident_mb() < freed - 30
    assert len(last) == 100_000
