"""The bounded YAML/JSON readers (models.safe_load) and the commands that read user files through them.

Each bad file must give one line naming the file, exit 2 from the CLI, and cost no more than its own text.
"""

from __future__ import annotations

import json

import pytest
import yaml
from spatten.models.config import read_yaml
from spatten.models.safe_load import MAX_DEPTH, load_json, load_yaml, parse_json, parse_yaml, read_text

from spatten.cli import main

# Nine lists of nine aliases, seven levels: 9**7 = 4.8 million leaves from 7 lines.
BOMB = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(f"{c}: &{c} [{','.join([f'*{p}'] * 9)}]" for p, c in zip("abcdef", "bcdefg", strict=True)),
    ]
)
# Merge keys: each level merges the previous one twice over, doubling the mapping it stands for.
MERGE_BOMB = "\n".join(
    ["m0: &m0 {k0: 1, k1: 2}"]
    + [f"m{i}: &m{i} {{x{i}: [*m{i - 1}, *m{i - 1}], <<: *m{i - 1}}}" for i in range(1, 24)]
)


def nested_yaml(depth: int) -> str:
    return "a: " + "[" * depth + "1" + "]" * depth + "\n"


def one_line_error(excinfo: pytest.ExceptionInfo, *parts: str) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg, msg
    for part in parts:
        assert part in msg, msg
    assert len(msg) < 200, msg
    return msg


# --- YAML ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "a: 1\nb: [1, 2.5, x, null, true]\nc: {d: {e: [f]}}\n",
        "base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\nlist: [*b, *b]\n",
        "",
        "- 1\n- two\n",
        nested_yaml(MAX_DEPTH - 1),  # the document mapping is one more level
    ],
)
def test_valid_yaml_reads_as_safe_load(text):
    assert parse_yaml(text, "f.yaml") == yaml.safe_load(text)


@pytest.mark.parametrize(
    ("text", "part"),
    [
        (BOMB, "expands to more than the limit of 100000 nodes"),
        (MERGE_BOMB, "expands to more than the limit of 100000 nodes"),
        (nested_yaml(MAX_DEPTH), "nests deeper than the limit of 64 levels"),
        (nested_yaml(20_000), "nests deeper than the limit of 64 levels"),
        ("a: " + "{b: " * 5000 + "1" + "}" * 5000, "nests deeper than the limit of 64 levels"),
        # 40 levels in the anchor, used 40 levels down: 80 once expanded
        (
            "a: &a " + "[" * 40 + "1" + "]" * 40 + "\nb: " + "[" * 40 + "*a" + "]" * 40,
            "once aliases are expanded",
        ),
        ("a: &a [1, *a]\n", "alias inside its own anchor"),
        ("a: [1\n", "is not valid YAML"),
        ("a: !!python/object:os.system {}\n", "is not valid YAML"),
        ("a: 1\n---\nb: 2\n", "is not valid YAML"),
        ("a: 2024-13-45\n", "cannot convert"),
    ],
)
def test_bad_yaml_is_one_line_naming_the_file(text, part):
    with pytest.raises(ValueError) as ei:
        parse_yaml(text, "bad.yaml", "config file")
    one_line_error(ei, "config file 'bad.yaml'", part)


def test_budgets_are_parameters():
    with pytest.raises(ValueError, match="limit of 3 levels"):
        parse_yaml("a: [[[1]]]", "f.yaml", max_depth=3)
    with pytest.raises(ValueError, match="limit of 10 nodes"):
        parse_yaml("a: &a [1, 2, 3]\nb: [*a, *a]", "f.yaml", max_nodes=10)
    assert parse_yaml("a: &a [1, 2, 3]\nb: [*a, *a]", "f.yaml", max_nodes=20)["b"] == [[1, 2, 3]] * 2


@pytest.mark.parametrize(
    ("data", "part"),
    [
        (b"\x00\x01\x02\xff\xfe binary", "is not UTF-8 text (byte 3)"),
        ("model:\n  name: caf\u00e9\n".encode("latin-1"), "is not UTF-8 text"),
        ("a: 1\n".encode("utf-16"), "is not UTF-8 text (byte 0)"),
    ],
)
def test_non_utf8_files_are_refused_by_name(tmp_path, data, part):
    f = tmp_path / "c.yaml"
    f.write_bytes(data)
    with pytest.raises(ValueError) as ei:
        load_yaml(f, "config file")
    one_line_error(ei, f"config file {str(f)!r}", part)


def test_utf8_bom_is_accepted(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_bytes("\ufeffa: 1\n".encode())
    assert load_yaml(f) == {"a": 1}


def test_paths_that_are_not_regular_files(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        read_text(tmp_path / "none.yaml", "config file")
    with pytest.raises(ValueError, match="is a folder, not a file"):
        read_text(tmp_path, "config file")
    with pytest.raises(ValueError, match="is not a regular file"):
        read_text("/dev/zero", "config file")  # would otherwise read forever
    big = tmp_path / "big.yaml"
    big.write_text("a: " + "x" * 100)
    with pytest.raises(ValueError, match="larger than the limit of 10 bytes"):
        read_text(big, "config file", max_bytes=10)


def test_config_reader_uses_the_budgets(tmp_path):
    f = tmp_path / "bomb.yaml"
    f.write_text(BOMB)
    with pytest.raises(ValueError) as ei:
        read_yaml(f)
    one_line_error(ei, "config file", "bomb.yaml", "100000 nodes")


@pytest.mark.parametrize(
    ("content", "part"),
    [
        (BOMB, "expands to more than the limit"),
        (nested_yaml(5000), "nests deeper than the limit of 64 levels"),
        (b"\xc3\x28\x00\x00", "is not UTF-8 text"),
    ],
)
@pytest.mark.parametrize("command", ["simulate", "sweep"])
def test_cli_refuses_bad_yaml_in_one_line(tmp_path, capsys, command, content, part):
    f = tmp_path / "bad.yaml"
    f.write_bytes(content if isinstance(content, bytes) else content.encode())
    out = tmp_path / "out"
    argv = ["simulate", "--config", str(f)] if command == "simulate" else ["sweep", str(f), "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and part in err and "bad.yaml" in err and "Traceback" not in err, err
    assert not out.exists()


# --- JSON ----------------------------------------------------------------------------------------


def test_valid_json():
    assert parse_json('[{"scores": [1, -2], "k": 1}]', "v.json") == [{"scores": [1, -2], "k": 1}]
    assert parse_json("[" * MAX_DEPTH + "]" * MAX_DEPTH, "v.json") is not None


@pytest.mark.parametrize(
    ("text", "part"),
    [
        ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), "nests deeper than the limit of 64 levels"),
        (
            "[" * 100_000 + "]" * 100_000,
            "nests deeper than the limit of 64 levels",
        ),  # past the recursion limit
        ('{"a": ' * 100_000 + "1" + "}" * 100_000, "nests deeper than the limit of 64 levels"),
        ('[{"scores": [NaN], "k": 1}]', "NaN is not allowed (finite numbers only)"),
        ('[{"scores": [1], "k": Infinity}]', "Infinity is not allowed"),
        ('[{"scores": [1, 2', "invalid JSON at line 1"),
    ],
)
def test_bad_json_is_one_line_naming_the_file(text, part):
    with pytest.raises(ValueError) as ei:
        parse_json(text, "v.json", "--vectors")
    one_line_error(ei, "--vectors 'v.json'", part)


def test_json_file_not_utf8(tmp_path):
    f = tmp_path / "v.json"
    f.write_text(json.dumps([{"scores": [1], "k": 1}]), encoding="utf-16")
    with pytest.raises(ValueError, match="is not UTF-8 text"):
        load_json(f, "--vectors")


@pytest.mark.parametrize(
    ("content", "part"),
    [
        ("[" * 50_000 + "]" * 50_000, "nests deeper than the limit of 64 levels"),
        ('[{"scores": [NaN], "k": 1}]', "NaN is not allowed"),
    ],
)
def test_verify_vectors_use_the_budgets(tmp_path, capsys, content, part):
    f = tmp_path / "v.json"
    f.write_text(content)
    assert main(["verify", "topk", "--vectors", str(f)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and part in err and "v.json" in err, err


def test_verify_vectors_utf16_names_the_file(tmp_path, capsys):
    f = tmp_path / "v.json"
    f.write_text('[{"scores": [1, 2], "k": 1}]', encoding="utf-16")
    assert main(["verify", "topk", "--vectors", str(f)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not UTF-8 text" in err and "v.json" in err, err
