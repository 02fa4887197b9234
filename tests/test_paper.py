"""arXiv id helpers and the Paper type."""
import dataclasses

import pytest

from pipeline.core.paper import InvalidArxivId, Paper, normalize_id, split_id


@pytest.mark.parametrize("raw, expected", [
    ("2506.01234v2", ("2506.01234", 2)),
    ("2506.01234", ("2506.01234", None)),
    ("0704.0001", ("0704.0001", None)),
    ("arXiv:2506.01234v10", ("2506.01234", 10)),
    ("hep-th/9901001v1", ("hep-th/9901001", 1)),
    ("math.GT/0309136", ("math.GT/0309136", None)),
    ("oai:arXiv.org:2504.17830v1", ("2504.17830", 1)),
    ("http://arxiv.org/abs/2202.12139v1", ("2202.12139", 1)),
    ("https://arxiv.org/pdf/2202.12139v3.pdf", ("2202.12139", 3)),
    ("  2506.01234 ", ("2506.01234", None)),
])
def test_split_id_accepts_both_styles_and_common_wrappers(raw, expected):
    assert split_id(raw) == expected


@pytest.mark.parametrize("raw", ["", "abc", "2506.123", "25060.1234", "hep-th/99", "2506.01234v"])
def test_split_id_rejects_what_is_not_an_id_with_the_fix(raw):
    with pytest.raises(InvalidArxivId, match="use the form"):
        split_id(raw)


def test_normalize_id_drops_the_version():
    assert normalize_id("astro-ph/0601001v3") == "astro-ph/0601001"


def test_paper_is_frozen_and_documented():
    paper = Paper(arxiv_id="2506.01234", version=2, title="T")
    with pytest.raises(dataclasses.FrozenInstanceError):
        paper.title = "other"
    assert paper.versioned_id == "2506.01234v2"
    source = open(Paper.__module__.replace(".", "/") + ".py").read()
    for field in dataclasses.fields(Paper):
        # every field is followed by its docstring
        assert f"{field.name}:" in source
        after = source.split(f"\n    {field.name}:", 1)[1].split("\n", 2)[1]
        assert after.strip().startswith('"""'), field.name
