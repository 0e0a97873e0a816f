"""course_lib: the library behind the 'Training Neural Networks II' workbook.

Modules, one idea each:
- optim: the update rules (sgd ... adam) under one contract, and RuleOptimizer for torch models.
- landscapes: 2-D test functions with analytic gradients and Hessians.
- trajectories: run a rule on a landscape; detect divergence.
"""

__version__ = "0.1.0"
