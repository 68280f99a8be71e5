"""Compact text for the research tools."""

from __future__ import annotations

import json

import pytest

from agent.tools.render import clip, count, notebook, size, window


def test_a_window_stops_at_its_budget_and_says_where_to_read_on() -> None:
    text = "\n".join("x" * 90 for _ in range(1000))
    out = window(text, 1, 500, name="f", budget=1000)
    assert len(out) < 1100
    assert out.endswith("[f: lines 1-10 of 1000; more with offset=11]")
    assert window("a\nb", 2, 5, name="f") == "2  b\n[f: lines 2-2 of 2]"
    assert window("", 1, 5, name="f") == "f is empty"
    with pytest.raises(ValueError, match="past the end"):
        window("a", 3, 1, name="f")


def test_long_lines_are_cut() -> None:
    assert window("y" * 2000, 1, 1, name="f").startswith("1  " + "y" * 500 + "…\n")


def test_notebooks_become_cells_and_other_text_is_left_alone() -> None:
    nb = {"cells": [{"cell_type": "code", "source": ["a = 1\n", "b = 2\n"], "outputs": [{"text": "noise"}]}]}
    assert notebook(json.dumps(nb)) == "# %% [code] cell 1\na = 1\nb = 2"
    assert notebook("not json") == "not json"


def test_numbers_and_sizes_are_short() -> None:
    assert (count(72376843), count(3763), count(12), count(None)) == ("72.4M", "3.8k", "12", "?")
    assert (size(15561616), size(570), size("x")) == ("14.8 MB", "570 B", "?")
    assert clip("a  b\nc", 10) == "a b c" and clip("abcdef", 4) == "abc…"
