from __future__ import annotations

import pytest

from world import World, new_world


@pytest.fixture
def world() -> World:
    return new_world()
