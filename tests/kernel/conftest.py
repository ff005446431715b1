"""Fixtures for the kernel tests: a real ipykernel per test module.

``kernel`` starts one kernel for the whole module (about a second each) and shuts
it down afterwards; tests in a module share it, so they use their own variable
names. See ``README.md`` for what these tests establish about ipykernel.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kernel_driver import KernelDriver, running_kernel


@pytest.fixture(scope="module")
def kernel() -> Iterator[KernelDriver]:
    """A running ipykernel (the ``python3`` kernel spec of this interpreter)."""
    with running_kernel() as driver:
        yield driver
