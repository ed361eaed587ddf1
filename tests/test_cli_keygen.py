"""`ffo keygen --out DIR [--name NAME]`: pyzmq certificate files, the public key on stdout, exit 0/2/3 (CLI.md)."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import pytest
import zmq
import zmq.auth

from ffo.cli.main import main


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_writes_both_files_and_prints_the_public_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "keys"
    assert main(["keygen", "--out", str(out_dir), "--name", "node-a"]) == 0
    out, err = capsys.readouterr()
    public_file, secret_file = out_dir / "node-a.key", out_dir / "node-a.key_secret"
    public, secret = zmq.auth.load_certificate(secret_file)
    assert out == public.decode() + "\n"
    assert zmq.auth.load_certificate(public_file) == (public, None)
    assert secret is not None and zmq.curve_public(secret) == public
    assert err == f"wrote {public_file} (public) and {secret_file} (secret)\n"
    assert (mode_of(out_dir), mode_of(public_file), mode_of(secret_file)) == (0o700, 0o644, 0o600)


def test_the_name_defaults_to_the_host_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keygen", "--out", str(tmp_path)]) == 0
    host = socket.gethostname()
    public, _ = zmq.auth.load_certificate(tmp_path / f"{host}.key")
    assert capsys.readouterr().out == public.decode() + "\n"
    assert (tmp_path / f"{host}.key_secret").is_file()


def test_an_existing_key_is_not_overwritten_exit_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keygen", "--out", str(tmp_path), "--name", "a"]) == 0
    first = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    capsys.readouterr()
    assert main(["keygen", "--out", str(tmp_path), "--name", "a"]) == 3
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"ffo keygen: {tmp_path / 'a.key'}: already exists: refusing to overwrite a key\n"
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == first


def test_a_name_with_a_slash_is_bad_usage_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keygen", "--out", str(tmp_path), "--name", "../escape"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("ffo keygen: ") and "not a usable key file name" in err
    assert list(tmp_path.iterdir()) == []


def test_a_directory_that_cannot_be_made_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    assert main(["keygen", "--out", str(blocker / "keys"), "--name", "a"]) == 3
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"ffo keygen: {blocker / 'keys'}: cannot be written")


def test_out_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["keygen", "--name", "a"])
    assert caught.value.code == 2
    assert "--out" in capsys.readouterr().err
