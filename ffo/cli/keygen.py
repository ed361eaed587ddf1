"""`ffo keygen --out DIR [--name NAME]`: a node's CurveZMQ key pair, in pyzmq's certificate files.

Writes `DIR/NAME.key` (public, 0644: copy it to the peers) and `DIR/NAME.key_secret` (secret, 0600: it stays
here); NAME defaults to the host name. The public key alone goes to stdout, so `KEY=$(ffo keygen ...)` works;
the paths written go to stderr, for the person at the terminal. An existing key is never overwritten.

Exit codes: 0 written; 2 bad usage (a NAME that is not a plain file name); 3 could not run (the files exist,
or DIR cannot be created or written).
"""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path

from ffo.rpc.keys import KeyFileError, KeyProblem, generate, public_path, secret_path

EXIT_OK = 0
EXIT_BAD_USAGE = 2
EXIT_CANNOT_RUN = 3


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "keygen",
        help="write a CurveZMQ key pair for [rpc]",
        description="Write DIR/NAME.key (public) and DIR/NAME.key_secret (secret, mode 0600); print the public key.",
    )
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="directory for the key files")
    parser.add_argument("--name", metavar="NAME", help="file name stem (default: the host name)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    out_dir: Path = args.out
    name: str = args.name if args.name is not None else socket.gethostname()
    try:
        pair = generate(out_dir, name)
    except KeyFileError as error:
        print(f"ffo keygen: {error}", file=sys.stderr)
        return EXIT_BAD_USAGE if error.problem is KeyProblem.BAD_NAME else EXIT_CANNOT_RUN
    print(f"wrote {public_path(out_dir, name)} (public) and {secret_path(out_dir, name)} (secret)", file=sys.stderr)
    print(pair.public.decode("ascii"))
    return EXIT_OK
