"""The likely bugs in notebook 09's exercises (batch norm forward and backward), written out.

``LIKELY_BUGS[name]`` lists ``(wrong implementation, what to tell the learner)`` for the exercise function
``name``; each variant has the exercise's signature and returns what the exercise returns, so that a check can
run it beside the learner's function on the same inputs and name the bug whose outputs the learner's match.
The references are ``course_lib.batch_norm.batchnorm_forward`` and ``batchnorm_backward``.
"""

from .batch_norm import batchnorm_backward, batchnorm_forward

__all__ = ["LIKELY_BUGS"]


def _batch_statistics(x, axis=0):
    mean = x.mean(axis=axis, keepdims=True)
    return mean, ((x - mean) ** 2).mean(axis=axis, keepdims=True)


# ---- batchnorm_forward ----------------------------------------------------------------------------------------

def _forward_wrong_axis(x, gamma, beta, running_mean, running_var, momentum=0.1, epsilon=1e-5, training=True):
    if not training:
        return batchnorm_forward(x, gamma, beta, running_mean, running_var, momentum, epsilon, False)
    mean, variance = _batch_statistics(x, axis=1)  # per example, over its features
    out = gamma * (x - mean) / (variance + epsilon) ** 0.5 + beta
    n = x.shape[0]
    batch_mean, batch_variance = x.mean(axis=0), ((x - x.mean(axis=0)) ** 2).mean(axis=0)
    return (out, (1 - momentum) * running_mean + momentum * batch_mean,
            (1 - momentum) * running_var + momentum * batch_variance * n / (n - 1))


def _with_normaliser(name, normalise):
    """A forward pass (called ``name``) that normalises with ``normalise(x - mean, variance, epsilon)``."""

    def forward(x, gamma, beta, running_mean, running_var, momentum=0.1, epsilon=1e-5, training=True):
        _, new_mean, new_var = batchnorm_forward(x, gamma, beta, running_mean, running_var, momentum, epsilon,
                                                 training)
        if training:
            mean, variance = x.mean(axis=0), ((x - x.mean(axis=0)) ** 2).mean(axis=0)
        else:
            mean, variance = running_mean, running_var
        return gamma * normalise(x - mean, variance, epsilon) + beta, new_mean, new_var

    forward.__name__ = forward.__qualname__ = name
    return forward


_forward_no_epsilon = _with_normaliser(
    "_forward_no_epsilon", lambda centred, variance, epsilon: centred / variance**0.5)
_forward_epsilon_outside_root = _with_normaliser(
    "_forward_epsilon_outside_root", lambda centred, variance, epsilon: centred / (variance**0.5 + epsilon))
_forward_no_root = _with_normaliser(
    "_forward_no_root", lambda centred, variance, epsilon: centred / (variance + epsilon))


def _forward_momentum_swapped(x, gamma, beta, running_mean, running_var, momentum=0.1, epsilon=1e-5,
                              training=True):
    # The weights of the running averages the other way round: the convention of CS231n and Keras, where the
    # momentum is the weight of the OLD value.
    out, _, _ = batchnorm_forward(x, gamma, beta, running_mean, running_var, momentum, epsilon, training)
    _, new_mean, new_var = batchnorm_forward(x, gamma, beta, running_mean, running_var, 1 - momentum, epsilon,
                                             training)
    return out, new_mean, new_var


def _forward_updates_at_test_time(x, gamma, beta, running_mean, running_var, momentum=0.1, epsilon=1e-5,
                                  training=True):
    out, new_mean, new_var = batchnorm_forward(x, gamma, beta, running_mean, running_var, momentum, epsilon,
                                               training)
    if not training and x.shape[0] >= 2:  # the test batch's statistics leak into the running averages
        _, new_mean, new_var = batchnorm_forward(x, gamma, beta, running_mean, running_var, momentum, epsilon,
                                                 True)
    return out, new_mean, new_var


def _forward_batch_statistics_at_test_time(x, gamma, beta, running_mean, running_var, momentum=0.1,
                                           epsilon=1e-5, training=True):
    if training or x.shape[0] < 2:
        return batchnorm_forward(x, gamma, beta, running_mean, running_var, momentum, epsilon, training)
    out, _, _ = batchnorm_forward(x, gamma, beta, running_mean, running_var, momentum, epsilon, True)
    return out, running_mean * 1, running_var * 1


def _forward_running_var_biased(x, gamma, beta, running_mean, running_var, momentum=0.1, epsilon=1e-5,
                                training=True):
    out, new_mean, new_var = batchnorm_forward(x, gamma, beta, running_mean, running_var, momentum, epsilon,
                                               training)
    if training:
        variance = ((x - x.mean(axis=0)) ** 2).mean(axis=0)
        new_var = (1 - momentum) * running_var + momentum * variance
    return out, new_mean, new_var


def _forward_normalises_with_unbiased(x, gamma, beta, running_mean, running_var, momentum=0.1, epsilon=1e-5,
                                      training=True):
    if not training:
        return batchnorm_forward(x, gamma, beta, running_mean, running_var, momentum, epsilon, False)
    n = x.shape[0]
    _, new_mean, new_var = batchnorm_forward(x, gamma, beta, running_mean, running_var, momentum, epsilon, True)
    mean = x.mean(axis=0)
    unbiased = ((x - mean) ** 2).sum(axis=0) / (n - 1)
    return gamma * (x - mean) / (unbiased + epsilon) ** 0.5 + beta, new_mean, new_var


def _forward_no_scale_and_shift(x, gamma, beta, running_mean, running_var, momentum=0.1, epsilon=1e-5,
                                training=True):
    ones, zeros = gamma * 0 + 1, beta * 0
    out, new_mean, new_var = batchnorm_forward(x, ones, zeros, running_mean, running_var, momentum, epsilon,
                                               training)
    return out, new_mean, new_var


# ---- batchnorm_backward ---------------------------------------------------------------------------------------

def _normalised(x, epsilon):
    mean, variance = _batch_statistics(x)
    inverse_std = 1 / (variance + epsilon) ** 0.5
    return (x - mean) * inverse_std, inverse_std


def _backward_statistics_as_constants(dout, x, gamma, epsilon=1e-5):
    x_hat, inverse_std = _normalised(x, epsilon)
    return gamma * inverse_std * dout, (dout * x_hat).sum(axis=0), dout.sum(axis=0)


def _backward_mean_path_only(dout, x, gamma, epsilon=1e-5):
    x_hat, inverse_std = _normalised(x, epsilon)
    return (gamma * inverse_std * (dout - dout.mean(axis=0))), (dout * x_hat).sum(axis=0), dout.sum(axis=0)


def _backward_dgamma_from_x(dout, x, gamma, epsilon=1e-5):
    dx, _, dbeta = batchnorm_backward(dout, x, gamma, epsilon)
    return dx, (dout * x).sum(axis=0), dbeta


def _backward_sums_wrong_axis(dout, x, gamma, epsilon=1e-5):
    dx, _, _ = batchnorm_backward(dout, x, gamma, epsilon)
    x_hat, _ = _normalised(x, epsilon)
    return dx, (dout * x_hat).sum(axis=1), dout.sum(axis=1)


def _backward_means_not_sums(dout, x, gamma, epsilon=1e-5):
    dx, dgamma, dbeta = batchnorm_backward(dout, x, gamma, epsilon)
    n = x.shape[0]
    return dx, dgamma / n, dbeta / n


def _backward_no_gamma(dout, x, gamma, epsilon=1e-5):
    dx, dgamma, dbeta = batchnorm_backward(dout, x, gamma * 0 + 1, epsilon)
    return dx, dgamma, dbeta


def _backward_no_epsilon(dout, x, gamma, epsilon=1e-5):
    return batchnorm_backward(dout, x, gamma, 0.0)


def _backward_unbiased_variance(dout, x, gamma, epsilon=1e-5):
    n = x.shape[0]
    mean = x.mean(axis=0)
    inverse_std = 1 / (((x - mean) ** 2).sum(axis=0) / (n - 1) + epsilon) ** 0.5
    x_hat = (x - mean) * inverse_std
    dx = gamma * inverse_std * (dout - dout.mean(axis=0) - x_hat * (dout * x_hat).mean(axis=0))
    return dx, (dout * x_hat).sum(axis=0), dout.sum(axis=0)


LIKELY_BUGS = {
    "batchnorm_forward": [
        (_forward_wrong_axis,
         "your output is normalised over each example's features (axis 1): batch norm takes the mean and "
         "variance of each feature over the batch (axis 0)"),
        (_forward_no_epsilon,
         "you divide by sqrt(var) without epsilon: add epsilon to the variance inside the square root, "
         "sqrt(var + epsilon) (a feature that is constant over the batch would otherwise divide by zero)"),
        (_forward_epsilon_outside_root,
         "you divide by sqrt(var) + epsilon: epsilon belongs inside the square root, sqrt(var + epsilon), as "
         "in torch.nn.BatchNorm1d"),
        (_forward_no_root,
         "you divide by the variance: divide by the standard deviation, sqrt(var + epsilon)"),
        (_forward_momentum_swapped,
         "your running averages weight the old value by momentum and the batch by 1 - momentum: here (as in "
         "torch) momentum is the weight of the NEW batch statistic, running = (1 - momentum) * running + "
         "momentum * batch"),
        (_forward_updates_at_test_time,
         "your running averages change in test mode: at test time they are only used, never updated "
         "(return them unchanged)"),
        (_forward_batch_statistics_at_test_time,
         "in test mode you normalise with the test batch's own mean and variance: use running_mean and "
         "running_var, so that an example's output does not depend on the rest of its batch"),
        (_forward_running_var_biased,
         "your running variance stores the biased batch variance (divided by N): torch stores the unbiased one, "
         "var * N / (N - 1), while it normalises with the biased one"),
        (_forward_normalises_with_unbiased,
         "you normalise with the unbiased variance (divided by N - 1): normalise with the biased one (divided "
         "by N); only the running variance stores the unbiased one"),
        (_forward_no_scale_and_shift,
         "your output ignores gamma and beta: after normalising, scale by gamma and shift by beta"),
    ],
    "batchnorm_backward": [
        (_backward_statistics_as_constants,
         "your dx treats the batch mean and variance as constants: they depend on every x_i, so dx also has "
         "the terms - mean(dout) - xhat * mean(dout * xhat) (inside gamma / sqrt(var + epsilon) * (...))"),
        (_backward_mean_path_only,
         "your dx has the mean's path but not the variance's: subtract xhat * mean(dout * xhat) too"),
        (_backward_dgamma_from_x,
         "your dgamma sums dout * x: gamma multiplies the normalised xhat, so dgamma = sum over the batch of "
         "dout * xhat"),
        (_backward_sums_wrong_axis,
         "your dgamma and dbeta sum over the features (axis 1): sum over the batch (axis 0), one value per "
         "feature"),
        (_backward_means_not_sums,
         "your dgamma and dbeta are averages over the batch: they are sums (every example's output depends on "
         "gamma and beta)"),
        (_backward_no_gamma,
         "your dx is missing the factor gamma: out = gamma * xhat + beta, so the gradient reaching xhat is "
         "gamma * dout"),
        (_backward_no_epsilon,
         "your backward pass divides by sqrt(var) without epsilon: use sqrt(var + epsilon), as the forward "
         "pass does"),
        (_backward_unbiased_variance,
         "your backward pass uses the unbiased variance (divided by N - 1): the forward pass normalises with "
         "the biased one (divided by N), and its gradient must use the same"),
    ],
}
