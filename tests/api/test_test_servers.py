"""The API the tests start in pytest's own process leaves SIGINT and SIGTERM to pytest.

uvicorn's ``Server`` takes both signals while it serves (to stop itself); started inside pytest,
it swallowed Ctrl-C and SIGTERM meant for a hung test run, which then had to be killed by pid.
"""

from __future__ import annotations

import signal

from api.config import ApiConfig
from eventlog import EventLog
from tests.api.conftest import start_api, stop_api


async def test_a_running_test_api_leaves_the_signals_to_pytest(
    api_config: ApiConfig, event_log: EventLog
) -> None:
    del event_log  # the stream exists before the API starts
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    server, task, _ = await start_api(api_config)
    try:
        assert {sig: signal.getsignal(sig) for sig in before} == before
    finally:
        await stop_api(server, task)
