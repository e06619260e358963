"""pytest fixtures for apps that use llmgate (loaded through the ``pytest11`` entry point).

- ``llmgate_block_network``: any connection to a host other than this machine fails.
- ``llmgate_mock``: a :class:`~llmgate.testing.MockScript` served by the ``mock/`` provider.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .testing import MockScript, block_network, scripted


@pytest.fixture
def llmgate_block_network() -> Iterator[None]:
    with block_network():
        yield


@pytest.fixture
def llmgate_mock() -> Iterator[MockScript]:
    with scripted() as script:
        yield script
