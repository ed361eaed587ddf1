"""CurveZMQ key pairs on disk: pyzmq's certificate files, written safely and read strictly.

The files are the ones `zmq.auth.create_certificates` writes and `zmq.auth.load_certificate` reads
(`NAME.key`: the public key; `NAME.key_secret`: both keys), so they work with pyzmq's own tools and with
czmq's. What ffo adds is care at the edges, because a key file is the whole of a peer's identity:

- A new secret key is never readable by anyone else, not even for an instant: pyzmq writes both files with
  the process umask, so `generate` lets it write them in a private (0700) staging directory, tightens the
  modes there, and only then links them into place. Changing the umask instead would change it for every
  thread of the process.
- An existing key is never overwritten: the final names are created with `link`, which fails if the name
  is taken, so two concurrent runs cannot replace each other's keys either.
- Every problem when loading names the file and says what is wrong with it (`KeyProblem`), so an operator
  can fix the configuration from the message alone. A secret file that group or others can read is refused,
  as OpenSSH refuses such a private key: that key must be considered leaked. A secret file named where a
  public one belongs is refused too: a secret key has no business on any other node.
"""

from __future__ import annotations

import enum
import os
import shutil
import stat
import struct
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Final

import attrs
import zmq
from zmq.auth.certs import create_certificates, load_certificate
from zmq.utils import z85

from ffo.config import RpcPeer
from ffo.errors import RemoteProtocolError

__all__ = [
    "KeyFileError",
    "KeyPair",
    "KeyProblem",
    "generate",
    "load_peer_keys",
    "load_public",
    "load_secret",
    "public_path",
    "secret_path",
]

Z85_KEY_LENGTH: Final = 40
"""A 32-byte Curve25519 key in Z85 (ZeroMQ RFC 32)."""
SECRET_MODE: Final = 0o600
PUBLIC_MODE: Final = 0o644
DIRECTORY_MODE: Final = 0o700


class KeyProblem(enum.Enum):
    """What is wrong with a key file; the value is the reason shown after the file's name."""

    MISSING = "no such file"
    UNREADABLE = "cannot be read"
    NOT_A_CERTIFICATE = "not a ZeroMQ certificate (no `public-key = ...` line)"
    BAD_KEY = "holds a malformed key"
    NOT_SECRET = "holds only a public key: a secret key file (NAME.key_secret) is needed here"
    SECRET_GIVEN_AS_PUBLIC = "holds a secret key: name the public file (NAME.key); a secret key never leaves its node"
    MISMATCHED = "its secret key does not belong to its public key"
    TOO_OPEN = "is readable by group or others: the secret key must be mode 0600"
    DUPLICATE = "holds the same public key as another peer's file"
    EXISTS = "already exists: refusing to overwrite a key"
    UNWRITABLE = "cannot be written"
    BAD_NAME = "is not a usable key file name"


class KeyFileError(RemoteProtocolError):
    """A key file ffo refuses to read or write, naming the file, the problem and any detail."""

    def __init__(self, path: Path, problem: KeyProblem, detail: str = "") -> None:
        self.path = path
        self.problem = problem
        self.detail = detail
        suffix = f" ({detail})" if detail else ""
        super().__init__(f"{path}: {problem.value}{suffix}")


@attrs.frozen(kw_only=True)
class KeyPair:
    """A node's CURVE key pair in Z85, as pyzmq's `curve_publickey`/`curve_secretkey` options take it."""

    public: bytes
    secret: bytes = attrs.field(repr=False)  # kept out of logs and tracebacks


def public_path(out_dir: Path, name: str) -> Path:
    return out_dir / f"{name}.key"


def secret_path(out_dir: Path, name: str) -> Path:
    return out_dir / f"{name}.key_secret"


# -- writing -----------------------------------------------------------------------------------------------------


def generate(out_dir: Path, name: str) -> KeyPair:
    """Write a new key pair as `out_dir/name.key` (0644) and `out_dir/name.key_secret` (0600).

    `out_dir` is created (0700) when missing; an existing directory keeps its mode. Raises `KeyFileError`:
    BAD_NAME for a name that is not a plain file name, EXISTS when either file is already there (nothing is
    written then), UNWRITABLE when the directory cannot be created or written.
    """
    _check_name(out_dir, name)
    public_file, secret_file = public_path(out_dir, name), secret_path(out_dir, name)
    _make_directory(out_dir)
    for path in (public_file, secret_file):
        if os.path.lexists(path):
            raise KeyFileError(path, KeyProblem.EXISTS)
    try:
        staging = Path(tempfile.mkdtemp(prefix=".ffo-keygen-", dir=out_dir))  # mode 0700 whatever the umask
    except OSError as error:
        raise KeyFileError(out_dir, KeyProblem.UNWRITABLE, error.strerror or str(error)) from error
    try:
        staged_public, staged_secret = (Path(path) for path in create_certificates(staging, name))
        os.chmod(staged_secret, SECRET_MODE)
        os.chmod(staged_public, PUBLIC_MODE)
        pair = load_secret(staged_secret)  # what was written reads back, by the same rules as the daemon's
        for path in (staged_secret, staged_public):
            _fsync(path)
        _publish(staged_secret, secret_file)
        try:
            _publish(staged_public, public_file)
        except KeyFileError:
            secret_file.unlink()  # ours: linked a moment ago, and nobody may replace a name we hold
            raise
        _fsync(out_dir)
    except OSError as error:
        raise KeyFileError(out_dir, KeyProblem.UNWRITABLE, error.strerror or str(error)) from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return pair


def _check_name(out_dir: Path, name: str) -> None:
    if not name or name in (".", "..") or "/" in name or "\0" in name or name.startswith(".ffo-keygen-"):
        raise KeyFileError(out_dir / name, KeyProblem.BAD_NAME, f"name {name!r}")


def _make_directory(out_dir: Path) -> None:
    try:
        out_dir.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    except OSError as error:
        raise KeyFileError(out_dir, KeyProblem.UNWRITABLE, error.strerror or str(error)) from error
    if not out_dir.is_dir():
        raise KeyFileError(out_dir, KeyProblem.UNWRITABLE, "not a directory")


def _publish(staged: Path, final: Path) -> None:
    """Give `staged` its final name, failing rather than replacing a file that appeared meanwhile."""
    try:
        os.link(staged, final)
    except FileExistsError as error:
        raise KeyFileError(final, KeyProblem.EXISTS) from error


def _fsync(path: Path) -> None:
    """Keys are written once and then trusted: make sure a crash right after keygen cannot leave them empty."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


# -- reading -----------------------------------------------------------------------------------------------------


def load_public(path: Path) -> bytes:
    """The Z85 public key in a public certificate file (`NAME.key`), as `curve_serverkey` takes it."""
    public, secret, _ = _read(path)
    if secret is not None:
        raise KeyFileError(path, KeyProblem.SECRET_GIVEN_AS_PUBLIC)
    return public


def load_secret(path: Path) -> KeyPair:
    """The key pair in a secret certificate file (`NAME.key_secret`), which only its owner may read."""
    public, secret, mode = _read(path)
    if secret is None:
        raise KeyFileError(path, KeyProblem.NOT_SECRET)
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(path, KeyProblem.TOO_OPEN, f"mode {mode:04o}")
    if zmq.curve_public(secret) != public:
        raise KeyFileError(path, KeyProblem.MISMATCHED)
    return KeyPair(public=public, secret=secret)


def load_peer_keys(peers: Iterable[RpcPeer]) -> dict[bytes, str]:
    """Each peer's Z85 public key → its name: the ZAP allowlist. Two peers with one key are refused.

    A shared key would make the name a message arrives under (the ZAP User-Id) a guess between the two.
    """
    names: dict[bytes, str] = {}
    for peer in peers:
        key = load_public(peer.public_key_file)
        if key in names:
            raise KeyFileError(peer.public_key_file, KeyProblem.DUPLICATE, f"peers {names[key]!r} and {peer.name!r}")
        names[key] = peer.name
    return names


def _read(path: Path) -> tuple[bytes, bytes | None, int]:
    """(public, secret or None, permission bits) of a certificate file, each key checked to be 32 bytes."""
    try:
        status = path.stat()
    except FileNotFoundError as error:
        raise KeyFileError(path, KeyProblem.MISSING) from error
    except OSError as error:
        raise KeyFileError(path, KeyProblem.UNREADABLE, error.strerror or str(error)) from error
    if not stat.S_ISREG(status.st_mode):
        raise KeyFileError(path, KeyProblem.UNREADABLE, "not a regular file")
    try:
        public, secret = load_certificate(path)
    except (ValueError, IndexError) as error:  # IndexError: a `public-key` line without `=`
        raise KeyFileError(path, KeyProblem.NOT_A_CERTIFICATE) from error
    except OSError as error:
        raise KeyFileError(path, KeyProblem.UNREADABLE, error.strerror or str(error)) from error
    _check_key(path, public, "public")
    if secret is not None:
        _check_key(path, secret, "secret")
    return public, secret, stat.S_IMODE(status.st_mode)


def _check_key(path: Path, key: bytes, kind: str) -> None:
    if len(key) != Z85_KEY_LENGTH:
        raise KeyFileError(path, KeyProblem.BAD_KEY, f"{kind} key is {len(key)} characters, not {Z85_KEY_LENGTH}")
    try:
        z85.decode(key)
    except (KeyError, struct.error) as error:  # a character outside Z85, or a group above 2**32 - 1
        raise KeyFileError(path, KeyProblem.BAD_KEY, f"{kind} key is not Z85") from error
