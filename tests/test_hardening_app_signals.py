"""Issue 12, item 6: a stop signal to `octet app` stops Streamlit too.

`octet app` runs as a real subprocess on a free port; the signal goes to its process alone
(as from a service manager, `kill`, or a terminal that sends it to the foreground group
`octet app` leads), and afterwards nothing of it or of Streamlit's group may remain.
"""
from __future__ import annotations

import signal
import socket

import pytest

from tests.helpers import store_real_papers
from tests.test_browser import (app_groups, descendants, free_port, group_alive, start_app,
                                stop_app, wait_for, wait_until_up)

GENEROUS_SECONDS = 30  # Streamlit stops in about a second; a busy shared machine may be slow


def port_free(port: int) -> bool:
    """True when nothing accepts connections on the port any more."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP],
                         ids=lambda number: signal.Signals(number).name)
def test_a_stop_signal_to_octet_app_stops_streamlit_and_frees_the_port(settings, octet_home, stop_signal):
    if signal.getsignal(stop_signal) is signal.SIG_IGN:
        pytest.skip("ignored in this test run (nohup, a background job): `octet app` inherits "
                    "that and rightly keeps ignoring it")
    store_real_papers(settings.db_path, 3)
    port = free_port()
    process = start_app(octet_home, port)
    groups: set[int] = set()
    try:
        wait_until_up(f"http://127.0.0.1:{port}", process)
        groups = app_groups(process)
        assert descendants(process.pid), "Streamlit runs as a child of `octet app`"
        process.send_signal(stop_signal)
        assert wait_for(lambda: process.poll() is not None, GENEROUS_SECONDS), "octet app still runs"
        assert wait_for(lambda: not any(map(group_alive, groups)), GENEROUS_SECONDS), \
            "a process of Streamlit's group outlived `octet app`"
        assert wait_for(lambda: port_free(port), GENEROUS_SECONDS), f"port {port} still answers"
        assert process.returncode == 0  # stopped as asked
    finally:
        stop_app(process, groups)
