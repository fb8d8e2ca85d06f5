"""``detlab weights``: the list says what is present; a download is one line on failure."""

from __future__ import annotations

import json
import socket
import subprocess
import sys


def detlab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "napari_detlab.cli.main", "weights", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_list_says_what_is_present_and_where():
    done = detlab("--json")
    assert done.returncode == 0, done.stderr
    rows = {row["name"]: row for row in json.loads(done.stdout)}
    assert {"resnet18-imagenet", "resnet50-fpn-coco"} <= set(rows)
    assert not rows["resnet18-imagenet"]["present"]  # the tests' own empty torch cache
    from pathlib import Path

    path = Path(rows["resnet18-imagenet"]["path"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"copied by hand")
    try:
        listed = detlab()
        assert listed.returncode == 0
        line = next(line for line in listed.stdout.splitlines() if "resnet18-imagenet" in line)
        assert line.rstrip().endswith("present")
    finally:
        path.unlink()


def test_failures_are_one_line_and_exit_code_2():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for args, message in (
        (("download",), "needs the name"),
        (("download", "resnet19"), "no weights called 'resnet19'"),
        (("download", "resnet18-imagenet", "--from", f"http://127.0.0.1:{port}/x.pth"),
         "cannot download"),
    ):  # fmt: skip
        done = detlab(*args)
        assert done.returncode == 2, (args, done.stderr)
        assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
        assert "Traceback" not in done.stderr
