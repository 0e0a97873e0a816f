"""Argument checks shared by the library: a bad argument raises ValueError naming it and its valid range."""

from numbers import Integral, Real

__all__ = ["is_integer", "is_real", "require"]


def require(valid, name, expected, value):
    """Raise ``ValueError("<name> must be <expected>, got <value>")`` unless ``valid``."""
    if not valid:
        raise ValueError(f"{name} must be {expected}, got {value!r}")


def is_real(value):
    """A real number, not a bool (numpy scalars included)."""
    # The type test first: it is the common case and far cheaper than the isinstance check against Real.
    return type(value) is float or type(value) is int or (isinstance(value, Real) and not isinstance(value, bool))


def is_integer(value, minimum):
    """An integer (not a bool) >= ``minimum``."""
    return isinstance(value, Integral) and not isinstance(value, bool) and value >= minimum
