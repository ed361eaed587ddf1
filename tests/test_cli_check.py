"""`ffo check -c FILE`: ok / exit 0, `PATH: reason` lines / exit 2, unreadable / exit 3 (CLI.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ffo.cli.main import main

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "ffo.toml"

GOOD = """\
[node]
name = "node-a"

[[instance]]
name = "v4"
interface = "eth0"
vrid = 51
priority = 100
vips = ["192.0.2.100/24"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ffo.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_config_prints_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "-c", str(write(tmp_path, GOOD))]) == 0
    assert capsys.readouterr() == ("ok\n", "")


def test_long_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--config", str(write(tmp_path, GOOD))]) == 0
    assert capsys.readouterr().out == "ok\n"


def test_example_config_is_accepted(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "-c", str(EXAMPLE)]) == 0
    assert capsys.readouterr() == ("ok\n", "")


def test_bad_config_prints_every_problem_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = GOOD.replace("vrid = 51", "vrid = 300") + 'advert_interval = "15ms"\ncolour = "red"\n'
    assert main(["check", "-c", str(write(tmp_path, text))]) == 2
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "instance[0].vrid: 300 is not in 1..255",
        'instance[0].advert_interval: "15ms" is not a multiple of 10ms',
        "instance[0].colour: unknown key",
    ]
    assert err == ""


def test_toml_syntax_error_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "[node]\nname = \n")
    assert main(["check", "-c", str(path)]) == 2
    out, _ = capsys.readouterr()
    assert out.startswith(f"{path}:2:")
    assert "invalid TOML" in out


def test_missing_file_exits_3_with_message_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "absent.toml"
    assert main(["check", "-c", str(path)]) == 3
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"ffo check: cannot read {path}: No such file or directory\n"


def test_directory_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "-c", str(tmp_path)]) == 3
    assert "cannot read" in capsys.readouterr().err


def test_config_option_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["check"])
    assert caught.value.code == 2
    assert "--config" in capsys.readouterr().err
