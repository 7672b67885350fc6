"""The laptop's backup key: an `age` X25519 identity whose private half never leaves this machine.

    ~/.lightfold/backup-identity.txt    (0600) made on first use, in age-keygen's format

The server gets only the public recipient (`age1...`), so it can encrypt backups but not read
them. Restores and verifies stream the identity to the server's `age` on stdin (never its disk,
never a command line). Made here with the `cryptography` package (asyncssh's dependency), so the
laptop needs no `age` binary; the encoding is age's: Bech32 of the 32-byte keys, HRP "age" for the
recipient, "AGE-SECRET-KEY-" (upper case) for the identity.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from lightfold import store
from lightfold.errors import LightfoldError

_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
SECRET_HRP = "age-secret-key-"
PUBLIC_HRP = "age"


def _polymod(values: list[int]) -> int:
    gen = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            chk ^= gen[i] if (top >> i) & 1 else 0
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _to5(data: bytes) -> list[int]:
    acc, bits, out = 0, 0, []
    for byte in data:
        acc = acc << 8 | byte
        bits += 8
        while bits >= 5:
            bits -= 5
            out.append(acc >> bits & 31)
    if bits:
        out.append(acc << (5 - bits) & 31)
    return out


def _from5(data: list[int]) -> bytes:
    acc, bits, out = 0, 0, bytearray()
    for v in data:
        acc = acc << 5 | v
        bits += 5
        if bits >= 8:
            bits -= 8
            out.append(acc >> bits & 255)
    if bits >= 5 or acc & ((1 << bits) - 1):
        raise ValueError("bad padding")
    return bytes(out)


def bech32_encode(hrp: str, data: bytes) -> str:
    five = _to5(data)
    poly = _polymod(_hrp_expand(hrp) + five + [0] * 6) ^ 1
    check = [(poly >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_CHARSET[v] for v in five + check)


def bech32_decode(text: str) -> tuple[str, bytes]:
    text = text.lower()
    hrp, _, rest = text.rpartition("1")
    if not hrp or len(rest) < 6 or any(c not in _CHARSET for c in rest):
        raise ValueError("not bech32")
    values = [_CHARSET.index(c) for c in rest]
    if _polymod(_hrp_expand(hrp) + values) != 1:
        raise ValueError("bad checksum")
    return hrp, _from5(values[:-6])


def recipient_of(identity: str) -> str:
    """The `age1...` recipient of an `AGE-SECRET-KEY-1...` identity."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    hrp, secret = bech32_decode(identity.strip())
    if hrp != SECRET_HRP or len(secret) != 32:
        raise ValueError("not an age X25519 identity")
    public = X25519PrivateKey.from_private_bytes(secret).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return bech32_encode(PUBLIC_HRP, public)


def new_identity() -> str:
    return bech32_encode(SECRET_HRP, os.urandom(32)).upper()


def identity_path() -> Path:
    return store.home() / "backup-identity.txt"


def is_recipient(text: str) -> bool:
    try:
        hrp, key = bech32_decode(text)
    except ValueError:
        return False
    return hrp == PUBLIC_HRP and len(key) == 32 and text == text.lower()


def load(create: bool = True) -> tuple[str, str]:
    """(identity, recipient) of this laptop, made on first use (when `create`)."""
    path = identity_path()
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        if not create:
            raise LightfoldError(
                f"no backup key at {path}: the backups cannot be decrypted here",
                "copy the key file from the machine that made the backups (it is the only copy)",
            ) from None
        identity = new_identity()
        recipient = recipient_of(identity)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        store.write_atomic(path, (f"# created: {stamp}\n# public key: {recipient}\n"
                                  f"# lightfold backups: keep this file; without it no backup can be read\n"
                                  f"{identity}\n").encode())
        return identity, recipient
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    try:
        return lines[0], recipient_of(lines[0])
    except (IndexError, ValueError):
        raise LightfoldError(f"{path} holds no age identity (AGE-SECRET-KEY-1...)",
                             "restore the file from your own copy of it") from None
