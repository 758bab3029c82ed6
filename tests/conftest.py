import anthropic
import pytest

from batchd.emulator import Emulator, Faults


@pytest.fixture
def emulator():
    """A started emulator whose batches end as soon as they are looked at."""
    emu = Emulator(faults=Faults(processing_time=0.0))
    emu.start()
    yield emu
    emu.close()


@pytest.fixture
def emulator_client(emulator):
    """The real SDK pointed at the ``emulator`` fixture."""
    with anthropic.Anthropic(api_key="test", base_url=emulator.base_url, max_retries=0) as client:
        yield client
