"""Shared by the L-BFGS and mini-batch tests: a small softmax regression on digits, and a call counter."""

from sklearn.datasets import load_digits

from course_lib.minibatch import softmax_regression


def digits_softmax(penalty=1e-3, rows=300):
    images, labels = load_digits(return_X_y=True)
    return softmax_regression(images[:rows] / 16.0, labels[:rows], penalty=penalty)


def counted(fun_and_grad):
    """fun_and_grad, counting its calls and recording the batch of each (None when called without one)."""
    calls = []

    def wrapped(x, *batch):
        calls.append(batch[0] if batch else None)
        return fun_and_grad(x, *batch)

    return wrapped, calls
