"""course_lib: the library behind the 'Training Neural Networks II' workbook, one module per idea.

- optim: the update rules (sgd ... adam) under one contract, and RuleOptimizer for torch models.
- schedules: learning-rate schedules as plain functions of the step.
- second_order: Newton's method, L-BFGS (two-loop recursion), what the Hessian costs.
- minibatch: a finite-sum loss, and runs fed its mini-batches under a budget of gradient evaluations.
- landscapes: test functions with analytic gradients and Hessians.
- trajectories: the one loop that applies a rule step by step, and the Trajectory every run returns.
- theory, measure: what theory predicts, and measurements on runs (and the sweeps that make them).
- plots, widgets: the pictures (a colour-blind-safe palette, line styles that differ) and the sliders that drive
  them; tuning: each method's best hyperparameters on a landscape, for races that compare fairly.
- exercises, checks, bugs: each exercise (reference and test cases), the judge shared by the instant checks
  and the grader, and the likely bugs it recognises.
- harness: calls a learner's function and returns only numbers (the one module that runs beside learner
  code, in a notebook or in the grader's sandbox; it imports nothing from course_lib).
- data, training: offline datasets and a small-model training loop.
- ensembles, averaging: averaging models' predictions (ensembles, snapshots) and one run's weights (EMA, Polyak).
- regularization: dropout (vanilla, inverted), DropConnect, stochastic depth, fractional max pooling.
- augmentation: random label-preserving changes of training examples (shifts, noise, affine maps).
- batch_norm: batch normalization's forward and backward passes, a torch layer, its experiments.
- transfer: a small pretrained CNN (shipped in data/) and the ways of adapting it to new classes.
- validation: the argument checks the modules share.
"""

__version__ = "0.1.0"  # the package's one version number (pyproject.toml reads it)
