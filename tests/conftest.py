import anthropic
import pytest



@pytest.fixture
def emulator(batchd_emulator):
    """The shipped ``batchd_emulator`` fixture: started, batches end as soon as looked at."""
    return batchd_emulator


@pytest.fixture
def emulator_client(emulator):
    """The real SDK pointed at the ``emulator`` fixture."""
    with anthropic.Anthropic(api_key="test", base_url=emulator.base_url, max_retries=0) as client:
        yield client
