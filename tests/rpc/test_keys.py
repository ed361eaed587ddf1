"""Key files: pyzmq's format, safe modes, no overwriting, and a precise reason for every file refused."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq
import zmq.auth
from zmq.auth import certs

from ffo.config import RpcPeer
from ffo.rpc import keys
from ffo.rpc.keys import (
    KeyFileError,
    KeyPair,
    KeyProblem,
    generate,
    load_peer_keys,
    load_public,
    load_secret,
    public_path,
    secret_path,
)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def write_certificate(path: Path, public: bytes, secret: bytes | None = None, mode: int = 0o600) -> Path:
    """A certificate in pyzmq's layout, with any pair of keys (matching or not)."""
    lines = ["metadata", "curve", f'    public-key = "{public.decode()}"']
    if secret is not None:
        lines.append(f'    secret-key = "{secret.decode()}"')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(mode)
    return path


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The worst umask a caller can have: files created world-writable unless ffo takes care."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


# -- generate ----------------------------------------------------------------------------------------------------


def test_generate_writes_pyzmq_certificates_with_safe_modes(tmp_path: Path) -> None:
    pair = generate(tmp_path, "node-a")
    public_file, secret_file = tmp_path / "node-a.key", tmp_path / "node-a.key_secret"
    assert (public_path(tmp_path, "node-a"), secret_path(tmp_path, "node-a")) == (public_file, secret_file)
    assert mode_of(secret_file) == 0o600
    assert mode_of(public_file) == 0o644
    assert zmq.auth.load_certificate(public_file) == (pair.public, None)
    assert zmq.auth.load_certificate(secret_file) == (pair.public, pair.secret)
    assert len(pair.public) == 40 and len(pair.secret) == 40
    assert zmq.curve_public(pair.secret) == pair.public
    assert sorted(path.name for path in tmp_path.iterdir()) == ["node-a.key", "node-a.key_secret"]


def test_each_run_makes_a_new_pair(tmp_path: Path) -> None:
    assert generate(tmp_path, "a").public != generate(tmp_path, "b").public


def test_the_secret_key_is_kept_out_of_reprs(tmp_path: Path) -> None:
    pair = generate(tmp_path, "a")
    assert pair.secret.decode() not in repr(pair)
    assert pair.public.decode() in repr(pair)


def test_missing_directory_is_created_private_with_its_parents(tmp_path: Path) -> None:
    out_dir = tmp_path / "etc" / "ffo" / "keys"
    generate(out_dir, "a")
    assert mode_of(out_dir) == 0o700
    assert (out_dir / "a.key_secret").is_file()


def test_an_existing_directory_keeps_its_mode(tmp_path: Path) -> None:
    out_dir = tmp_path / "shared"
    out_dir.mkdir()
    out_dir.chmod(0o755)
    generate(out_dir, "a")
    assert mode_of(out_dir) == 0o755


def test_the_secret_is_written_where_nobody_else_can_reach_it_even_with_umask_0(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, open_umask: None
) -> None:
    seen: list[tuple[Path, int]] = []
    original = certs.create_certificates

    def watched(key_dir: str | os.PathLike[str], name: str) -> tuple[str, str]:
        seen.append((Path(key_dir), mode_of(Path(key_dir))))
        return original(key_dir, name)

    monkeypatch.setattr(keys, "create_certificates", watched)
    generate(tmp_path, "a")
    [(staging, staging_mode)] = seen
    assert staging != tmp_path and staging.parent == tmp_path
    assert staging_mode == 0o700
    assert not staging.exists()
    assert mode_of(tmp_path / "a.key_secret") == 0o600
    assert mode_of(tmp_path / "a.key") == 0o644


@pytest.mark.parametrize("existing", ["a.key", "a.key_secret"])
def test_an_existing_key_file_is_never_overwritten(tmp_path: Path, existing: str) -> None:
    (tmp_path / existing).write_text("precious\n", encoding="utf-8")
    with pytest.raises(KeyFileError) as caught:
        generate(tmp_path, "a")
    assert caught.value.problem is KeyProblem.EXISTS
    assert caught.value.path == tmp_path / existing
    assert str(tmp_path / existing) in str(caught.value)
    assert [path.name for path in tmp_path.iterdir()] == [existing]
    assert (tmp_path / existing).read_text(encoding="utf-8") == "precious\n"


def test_a_dangling_symlink_counts_as_existing(tmp_path: Path) -> None:
    (tmp_path / "a.key_secret").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(KeyFileError) as caught:
        generate(tmp_path, "a")
    assert caught.value.problem is KeyProblem.EXISTS
    assert not (tmp_path / "elsewhere").exists()


def test_a_file_appearing_during_generation_is_kept_and_nothing_is_left_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = certs.create_certificates

    def racing(key_dir: str | os.PathLike[str], name: str) -> tuple[str, str]:
        (tmp_path / "a.key").write_text("another run's key\n", encoding="utf-8")
        return original(key_dir, name)

    monkeypatch.setattr(keys, "create_certificates", racing)
    with pytest.raises(KeyFileError) as caught:
        generate(tmp_path, "a")
    assert caught.value.problem is KeyProblem.EXISTS
    assert [path.name for path in tmp_path.iterdir()] == ["a.key"]
    assert (tmp_path / "a.key").read_text(encoding="utf-8") == "another run's key\n"


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "../a", "a\0b"])
def test_a_name_that_is_not_a_plain_file_name_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(KeyFileError) as caught:
        generate(tmp_path / "keys", name)
    assert caught.value.problem is KeyProblem.BAD_NAME
    assert not (tmp_path / "keys").exists()


def test_a_directory_that_cannot_be_created_is_unwritable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    with pytest.raises(KeyFileError) as caught:
        generate(blocker / "keys", "a")
    assert caught.value.problem is KeyProblem.UNWRITABLE
    assert str(blocker / "keys") in str(caught.value)


# -- loading -----------------------------------------------------------------------------------------------------


@pytest.fixture
def pair_files(tmp_path: Path) -> tuple[KeyPair, Path, Path]:
    pair = generate(tmp_path, "a")
    return pair, tmp_path / "a.key", tmp_path / "a.key_secret"


def test_loading_reads_what_generate_wrote(pair_files: tuple[KeyPair, Path, Path]) -> None:
    pair, public_file, secret_file = pair_files
    assert load_public(public_file) == pair.public
    assert load_secret(secret_file) == pair


def test_certificates_made_by_pyzmq_itself_load(tmp_path: Path) -> None:
    public_file, secret_file = (Path(path) for path in zmq.auth.create_certificates(tmp_path, "z"))
    secret_file.chmod(0o600)
    pair = load_secret(secret_file)
    assert load_public(public_file) == pair.public
    assert zmq.auth.load_certificate(secret_file) == (pair.public, pair.secret)


def expect(problem: KeyProblem, path: Path, secret: bool) -> KeyFileError:
    with pytest.raises(KeyFileError) as caught:
        if secret:
            load_secret(path)
        else:
            load_public(path)
    assert caught.value.problem is problem
    assert caught.value.path == path
    assert str(caught.value).startswith(f"{path}: {problem.value}")
    return caught.value


@pytest.mark.parametrize("secret", [False, True])
def test_a_missing_file_is_named(tmp_path: Path, secret: bool) -> None:
    expect(KeyProblem.MISSING, tmp_path / "absent.key", secret)


@pytest.mark.parametrize("secret", [False, True])
def test_a_directory_is_unreadable(tmp_path: Path, secret: bool) -> None:
    error = expect(KeyProblem.UNREADABLE, tmp_path, secret)
    assert error.detail == "not a regular file"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_a_file_without_read_permission_is_unreadable(pair_files: tuple[KeyPair, Path, Path]) -> None:
    _, public_file, _ = pair_files
    public_file.chmod(0)
    expect(KeyProblem.UNREADABLE, public_file, secret=False)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"hello\nworld\n",
        b"\x00\xff\xfe binary \x80\n",
        b"curve\n    public-key\n",
        b"# public-key = only in a comment\n",
    ],
)
def test_a_file_that_is_not_a_certificate_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "peer.key"
    path.write_bytes(content)
    expect(KeyProblem.NOT_A_CERTIFICATE, path, secret=False)


@pytest.mark.parametrize(
    ("key", "detail"),
    [
        (b"tooshort", "public key is 8 characters, not 40"),
        (b"|" * 40, "public key is not Z85"),
        (b"#" * 40, "public key is not Z85"),  # Z85 characters, but each group is above 2**32 - 1
    ],
)
def test_a_malformed_key_is_refused(tmp_path: Path, key: bytes, detail: str) -> None:
    path = write_certificate(tmp_path / "peer.key", key, mode=0o644)
    assert expect(KeyProblem.BAD_KEY, path, secret=False).detail == detail


def test_a_malformed_secret_key_is_refused(tmp_path: Path) -> None:
    public, _ = zmq.curve_keypair()
    path = write_certificate(tmp_path / "a.key_secret", public, b"x" * 39)
    assert expect(KeyProblem.BAD_KEY, path, secret=True).detail == "secret key is 39 characters, not 40"


def test_a_public_file_given_as_secret_is_refused(pair_files: tuple[KeyPair, Path, Path]) -> None:
    _, public_file, _ = pair_files
    expect(KeyProblem.NOT_SECRET, public_file, secret=True)


def test_a_secret_file_given_as_public_is_refused(pair_files: tuple[KeyPair, Path, Path]) -> None:
    _, _, secret_file = pair_files
    expect(KeyProblem.SECRET_GIVEN_AS_PUBLIC, secret_file, secret=False)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o601])
def test_a_secret_file_others_can_read_is_refused(pair_files: tuple[KeyPair, Path, Path], mode: int) -> None:
    _, _, secret_file = pair_files
    secret_file.chmod(mode)
    assert expect(KeyProblem.TOO_OPEN, secret_file, secret=True).detail == f"mode {mode:04o}"


def test_an_owner_only_secret_file_may_be_read_only(pair_files: tuple[KeyPair, Path, Path]) -> None:
    pair, _, secret_file = pair_files
    secret_file.chmod(0o400)
    assert load_secret(secret_file) == pair


def test_a_secret_key_that_does_not_belong_to_its_public_key_is_refused(tmp_path: Path) -> None:
    public, _ = zmq.curve_keypair()
    _, other_secret = zmq.curve_keypair()
    path = write_certificate(tmp_path / "a.key_secret", public, other_secret)
    expect(KeyProblem.MISMATCHED, path, secret=True)


def test_peer_keys_map_each_public_key_to_its_peer(tmp_path: Path) -> None:
    b, c = generate(tmp_path, "b"), generate(tmp_path, "c")
    peers = [
        RpcPeer(name="b", endpoint="tcp://127.0.0.1:1", public_key_file=tmp_path / "b.key"),
        RpcPeer(name="c", endpoint="tcp://127.0.0.1:2", public_key_file=tmp_path / "c.key"),
    ]
    assert load_peer_keys(peers) == {b.public: "b", c.public: "c"}


def test_two_peers_with_one_key_are_refused(tmp_path: Path) -> None:
    generate(tmp_path, "b")
    peers = [
        RpcPeer(name="b", endpoint="tcp://127.0.0.1:1", public_key_file=tmp_path / "b.key"),
        RpcPeer(name="c", endpoint="tcp://127.0.0.1:2", public_key_file=tmp_path / "b.key"),
    ]
    with pytest.raises(KeyFileError) as caught:
        load_peer_keys(peers)
    assert caught.value.problem is KeyProblem.DUPLICATE
    assert caught.value.detail == "peers 'b' and 'c'"
