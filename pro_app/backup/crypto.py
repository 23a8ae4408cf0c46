"""Seal a file (gzip, then age to an X25519 recipient) and open it again, as streams."""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pyrage
from pyrage import x25519

CHUNK = 1 << 20
GZIP = 31  # zlib's wbits for a gzip header and trailer: the output opens with `gunzip`
KEYGEN_HINT = (
    "make a key pair on a machine other than this server with `age-keygen -o backup.key` "
    "(or `flask --app pro_app backup new-key -o backup.key`), keep backup.key off the "
    "server, and set PRO_BACKUP_RECIPIENT to its public key (age1...)"
)


class BackupKeyError(ValueError):
    """A recipient or identity that cannot be used, with what to do about it."""


class OpenError(ValueError):
    """A sealed file that cannot be opened (wrong key, changed or cut off)."""


def recipient(text: str | None) -> x25519.Recipient:
    """Parse PRO_BACKUP_RECIPIENT, or say how to set it."""
    text = (text or "").strip()
    if not text:
        raise BackupKeyError(f"PRO_BACKUP_RECIPIENT is not set: {KEYGEN_HINT}")
    if text.startswith("AGE-SECRET-KEY-"):
        raise BackupKeyError(
            "PRO_BACKUP_RECIPIENT holds a private key: put only the public key (age1...) on "
            "the server, and keep the private key (the identity) somewhere else"
        )
    try:
        return x25519.Recipient.from_str(text)
    except pyrage.RecipientError:
        raise BackupKeyError(
            f"PRO_BACKUP_RECIPIENT is not an age public key (expected 'age1' followed by "
            f"58 letters and digits): {KEYGEN_HINT}"
        ) from None


def new_identity() -> tuple[str, str]:
    """Return a new (identity, recipient) pair as text."""
    identity = x25519.Identity.generate()
    return str(identity), str(identity.to_public())


def read_identities(path: str | Path) -> list[x25519.Identity]:
    """Read an age identity file (as `age-keygen` writes it: comments and secret keys)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BackupKeyError(f"cannot read the identity file {path}: {exc}") from None
    identities = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            identities.append(x25519.Identity.from_str(line))
        except pyrage.IdentityError:
            raise BackupKeyError(
                f"{path} line {number} is not an age identity (expected a line starting "
                "with AGE-SECRET-KEY-1; a public key age1... cannot decrypt)"
            ) from None
    if not identities:
        raise BackupKeyError(f"{path} holds no age identity (a line AGE-SECRET-KEY-1...)")
    return identities


def public_keys(identities: list[x25519.Identity]) -> list[str]:
    return [str(identity.to_public()) for identity in identities]


@dataclass(frozen=True)
class Sealed:
    raw_bytes: int
    raw_sha256: str
    compressed_bytes: int
    encrypted_bytes: int
    encrypted_sha256: str


class _Compressing:
    """A reader that gives the gzip-compressed bytes of `source`, hashing what it reads."""

    def __init__(self, source: BinaryIO):
        self.source = source
        self.zip = zlib.compressobj(6, zlib.DEFLATED, GZIP)
        self.buffer = bytearray()
        self.done = False
        self.raw_bytes = 0
        self.raw_hash = hashlib.sha256()
        self.out_bytes = 0

    def read(self, size: int = -1) -> bytes:
        while not self.done and (size is None or size < 0 or len(self.buffer) < size):
            chunk = self.source.read(CHUNK)
            if chunk:
                self.raw_bytes += len(chunk)
                self.raw_hash.update(chunk)
                self.buffer += self.zip.compress(chunk)
            else:
                self.buffer += self.zip.flush()
                self.done = True
        if size is None or size < 0:
            size = len(self.buffer)
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        self.out_bytes += len(data)
        return data


class _Counting:
    """A writer that hashes and counts what passes through to `target`."""

    def __init__(self, target: BinaryIO):
        self.target = target
        self.bytes = 0
        self.hash = hashlib.sha256()

    def write(self, data) -> int:
        data = bytes(data)
        self.bytes += len(data)
        self.hash.update(data)
        self.target.write(data)
        return len(data)

    def flush(self) -> None:
        self.target.flush()


class _Decompressing:
    """A writer that gunzips what it is given into `target`, hashing the plain bytes."""

    def __init__(self, target: BinaryIO):
        self.target = target
        self.zip = zlib.decompressobj(GZIP)
        self.bytes = 0
        self.hash = hashlib.sha256()
        self.error: str | None = None

    def write(self, data) -> int:
        if self.error is None:
            try:
                plain = self.zip.decompress(bytes(data))
            except zlib.error as exc:
                self.error = f"the decrypted content is not gzip data ({exc})"
            else:
                if self.zip.unused_data:
                    self.error = "there are bytes after the end of the compressed data"
                self.bytes += len(plain)
                self.hash.update(plain)
                self.target.write(plain)
        return len(data)

    def flush(self) -> None:
        self.target.flush()

    def finish(self) -> None:
        if self.error is None and not self.zip.eof:
            self.error = "the compressed data ends early (the file was cut off before sealing)"
        if self.error:
            raise OpenError(self.error)


def seal(source: BinaryIO, target: BinaryIO, to: x25519.Recipient) -> Sealed:
    """Compress `source` and encrypt it to `to` into `target`, never all in memory."""
    reader = _Compressing(source)
    writer = _Counting(target)
    pyrage.encrypt_io(reader, writer, [to])
    writer.flush()
    return Sealed(
        raw_bytes=reader.raw_bytes,
        raw_sha256=reader.raw_hash.hexdigest(),
        compressed_bytes=reader.out_bytes,
        encrypted_bytes=writer.bytes,
        encrypted_sha256=writer.hash.hexdigest(),
    )


def unseal(
    source: BinaryIO, target: BinaryIO, identities: list[x25519.Identity]
) -> tuple[int, str]:
    """Decrypt and decompress `source` into `target`; return (plain bytes, their SHA-256)."""
    writer = _Decompressing(target)
    try:
        pyrage.decrypt_io(source, writer, identities)
    except pyrage.DecryptError as exc:
        if "No matching keys" in str(exc):
            raise OpenError(
                "none of the identities given can decrypt this file: it was encrypted to "
                "another public key"
            ) from None
        raise OpenError(_broken(exc)) from None
    except OSError as exc:  # pyrage reports a failed chunk in the stream as an OSError
        raise OpenError(_broken(exc)) from None
    writer.flush()
    writer.finish()
    return writer.bytes, writer.hash.hexdigest()


def _broken(exc: Exception) -> str:
    return (
        f"the file cannot be decrypted ({exc}): it is not an age file, or it was changed or "
        "cut off after it was written"
    )


def sha256_of(path: str | Path) -> str:
    """SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
