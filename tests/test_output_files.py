"""Files Octet writes with ``--output`` (feed, digest, BibTeX, lists) are replaced atomically
and readable as any new file would be: a feed served by a web server running as another
user must not turn private on the next write."""
from __future__ import annotations

import os
import stat

from pipeline.cli.export import emit


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_file_gets_the_usual_mode_and_an_existing_one_keeps_its_own(tmp_path):
    previous = os.umask(0o022)
    try:
        target = tmp_path / "feeds" / "octet.atom"
        emit("<feed/>\n", str(target))
        assert _mode(target) == 0o644 and target.read_text() == "<feed/>\n"
        target.chmod(0o640)
        emit("<feed>2</feed>\n", str(target))
        assert _mode(target) == 0o640 and target.read_text() == "<feed>2</feed>\n"
        assert [p.name for p in target.parent.iterdir()] == ["octet.atom"]  # no temp file left
    finally:
        os.umask(previous)
