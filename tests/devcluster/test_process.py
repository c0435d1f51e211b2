"""Finding processes by their command line: how the node's teardown finds orphaned shims."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

from e2e.devcluster.process import processes_mentioning


def test_a_running_process_is_found_by_a_word_of_its_command_line_and_gone_once_it_ended() -> None:
    marker = f"coalmine-test-{uuid.uuid4().hex}"
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", marker])
    try:
        # Right after fork the child still shows the parent's command line, until its exec.
        deadline = time.monotonic() + 10
        while not (found := processes_mentioning(marker)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list(found) == [child.pid]
        assert found[child.pid].endswith(f"time.sleep(60) {marker}")
    finally:
        child.kill()
        child.wait()
    assert processes_mentioning(marker) == {}
