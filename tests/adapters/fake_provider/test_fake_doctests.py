"""The examples in the fake provider's docstrings are run, so they stay true."""

from __future__ import annotations

import doctest
from types import ModuleType

import pytest

from adapters.fake_provider import faults, replies


@pytest.mark.parametrize("module", [faults, replies], ids=lambda module: module.__name__)
def test_docstring_examples(module: ModuleType) -> None:
    failures, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert tried > 0
    assert failures == 0
