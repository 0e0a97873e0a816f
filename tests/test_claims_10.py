"""Notebook 10's claim checks fail on known-wrong inputs: the live claim 29 with a body that was never
pretrained, the table claims with tampered tables (regimes swapped). nbval runs the cells as they are."""

import copy

import pytest
from claim_cells import claim_cells, run_claim

from course_lib import transfer

LIVE, TWO_BY_TWO = 0, 1  # the two cells of claim 29; claim 30 has one


def test_the_claim_cells_are_found():
    live, two_by_two = claim_cells(29).cells
    (table,) = claim_cells(30).cells
    assert "adapt" in live and "different" in two_by_two and "gain" in table


def test_live_claim_fails_with_a_body_that_was_never_pretrained(monkeypatch):
    """A randomly initialised 'pretrained' network: its frozen features are no better than none."""
    monkeypatch.setattr(transfer, "pretrained_cnn", lambda: transfer.small_cnn(5, seed=7).eval())
    with pytest.raises(AssertionError):
        run_claim(29, cells=[LIVE])


SHIPPED_TABLE = transfer.shipped_table


def swapped(name, first, second):
    """The shipped table ``name`` with the rows of two regimes exchanged."""
    table = copy.deepcopy(SHIPPED_TABLE(name))
    for row in table.rows:
        if row["regime"] in (first, second):
            row["regime"] = second if row["regime"] == first else first
    return table


def tampered(monkeypatch, name, first, second):
    monkeypatch.setattr(transfer, "shipped_table", lambda which="similar": swapped(which, first, second)
                        if which == name else SHIPPED_TABLE(which))


@pytest.mark.parametrize("first, second", [("fine-tune all", "frozen body + new head"),
                                           ("fine-tune all", "fine-tune, body at 1/10"),
                                           ("from scratch", "frozen body + new head")])
def test_table_claim_fails_on_a_tampered_table(monkeypatch, first, second):
    tampered(monkeypatch, "similar", first, second)
    with pytest.raises(AssertionError):
        run_claim(30)


@pytest.mark.parametrize("name", ["similar", "different"])
def test_two_by_two_claim_fails_when_frozen_and_scratch_are_swapped(monkeypatch, name):
    tampered(monkeypatch, name, "from scratch", "frozen body + new head")
    with pytest.raises(AssertionError):
        run_claim(29, cells=[TWO_BY_TWO])
