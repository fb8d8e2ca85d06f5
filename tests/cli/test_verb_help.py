"""``detlab VERB --help`` shows the verb's own documentation: what it does and an example."""

from __future__ import annotations

import re

import pytest

from napari_detlab.cli.main import VERB_MODULES, build_parser, main

# What a user types after `detlab` (interop holds three verbs), written out as a user would.
VERBS = (  # noqa: SIM905
    "demo train predict evaluate anchors stats accept import export convert weights export-model"
).split()


def test_every_verb_is_listed_with_a_one_line_summary(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as ended:
        main(["--help"])
    assert ended.value.code == 0
    listing = capsys.readouterr().out
    for verb in VERBS:  # argparse puts a long verb's summary on the next line
        assert re.search(rf"\n    {verb}\s+[a-zA-Z]", listing), verb
    assert "``" not in listing  # reST markup is turned into plain text
    assert len(VERB_MODULES) == 10 and build_parser().prog == "detlab"


@pytest.mark.parametrize("verb", VERBS)
def test_verb_help_carries_its_documentation(verb: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as ended:
        main([verb, "--help"])
    assert ended.value.code == 0
    text = capsys.readouterr().out
    assert f"\n\ndetlab {verb}: " in text  # the description opens with the summary line
    assert "``" not in text and "::" not in text


@pytest.mark.parametrize("verb", [v for v in VERBS if v != "anchors"])
def test_verbs_with_examples_show_them(verb: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main([verb, "--help"])
    assert f"    detlab {verb} " in capsys.readouterr().out
