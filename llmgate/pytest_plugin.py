"""pytest fixtures for apps that use llmgate (loaded through the ``pytest11`` entry point).

- ``llmgate_block_network``: any connection to a host other than this machine fails.
- ``llmgate_mock``: a :class:`~llmgate.testing.MockScript` served by the ``mock/`` provider.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .testing import MockScript


@pytest.fixture
def llmgate_block_network() -> Iterator[None]:
    from .testing import block_network  # imported on use: pytest loads this plugin everywhere

    with block_network():
        yield


@pytest.fixture
def llmgate_mock() -> Iterator[MockScript]:
    from .testing import scripted

    with scripted() as script:
        yield script
