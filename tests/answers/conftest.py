import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # nets.py


@pytest.fixture(autouse=True)
def _one_thread():
    """Small float64 convs: one thread is ~50x faster than two on a shared 2-core machine."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
