"""The examples in the translate modules' docstrings are run, so they stay true."""

from __future__ import annotations

import doctest
from types import ModuleType

import pytest

from adapters.translate import (
    canonical,
    errors,
    openai_chat,
    openai_embeddings,
    sse,
    translator,
)


@pytest.mark.parametrize(
    "module",
    [canonical, errors, openai_chat, openai_embeddings, sse, translator],
    ids=lambda module: module.__name__,
)
def test_docstring_examples(module: ModuleType) -> None:
    failures, _ = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert failures == 0
