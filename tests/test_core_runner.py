"""run_logged: every line to the log, and the exit statuses a caller accepts."""

from __future__ import annotations

from pathlib import Path

import pytest

from relocpy.core.errors import BuildFailedError
from relocpy.core.progress import QuietReporter
from relocpy.core.runner import run_logged


def test_an_accepted_exit_status_is_returned_and_others_fail(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    failing = ["sh", "-c", "echo 'test_generators failed'; exit 2"]
    status = run_logged(failing, tmp_path, log, QuietReporter(), "tests", {}, accept=(0, 2))
    assert status == 2 and "test_generators failed" in log.read_text()
    assert run_logged(["true"], tmp_path, log, QuietReporter(), "true", {}) == 0
    with pytest.raises(BuildFailedError, match=r"tests failed \(exit 2\): test_generators"):
        run_logged(failing, tmp_path, log, QuietReporter(), "tests", {})
    crash = ["sh", "-c", "kill -SEGV $$"]
    with pytest.raises(BuildFailedError, match=r"exit -11"):
        run_logged(crash, tmp_path, log, QuietReporter(), "crash", {}, accept=(0, 2))
