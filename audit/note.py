"""C2SP signed notes with Ed25519 (as golang.org/x/mod/sumdb/note) and the tlog-checkpoint body they sign."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable
from typing import NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "Checkpoint",
    "NoteError",
    "Signer",
    "Verifier",
    "format_checkpoint",
    "generate_key",
    "key_id",
    "open_note",
    "parse_checkpoint",
    "sign",
]

ALG_ED25519 = b"\x01"
SIGNATURE_PREFIX = "\u2014 "  # an em dash and a space: no note text line can be mistaken for a signature
_MAX_SIGNATURES = 100  # as the Go implementation: bounds the work a hostile note can ask for
_RAW = {"encoding": serialization.Encoding.Raw, "format": serialization.PublicFormat.Raw}
_HEX8 = re.compile(r"[0-9a-fA-F]{8}")
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_MAX_TREE_SIZE = 2**63 - 1  # what storage (a signed 64-bit column) can hold


class NoteError(ValueError):
    """A malformed note, key or checkpoint, or a signature that is missing, unknown or bad."""


def key_id(name: str, public_key: bytes) -> bytes:
    """The first 4 bytes of SHA-256(name ‖ "\\n" ‖ 0x01 ‖ public key): names the key in signature lines."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + ALG_ED25519 + public_key).digest()[:4]


def _check_name(name: str) -> None:
    # The name sits between "+" in key strings and between spaces in signature lines.
    if not name or "+" in name or any(char.isspace() for char in name) or not _is_utf8(name):
        raise NoteError(f"bad key name {name!r}: it must be non-empty, without spaces or '+'")


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def _b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as error:
        raise NoteError(f"{what} is not valid base64") from error


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class Verifier:
    """Checks signatures by one named Ed25519 key."""

    def __init__(self, name: str, public_key: bytes) -> None:
        _check_name(name)
        if len(public_key) != 32:
            raise NoteError(f"an Ed25519 public key is 32 bytes, not {len(public_key)}")
        self.name = name
        self.public_key = public_key
        self.key_id = key_id(name, public_key)
        self._key = Ed25519PublicKey.from_public_bytes(public_key)

    @classmethod
    def from_key(cls, vkey: str) -> Verifier:
        """Parse `<name>+<8-hex key id>+<base64(0x01 ‖ public key)>`."""
        # At most two splits: "+" is a base64 character, and names cannot contain it.
        parts = vkey.split("+", 2)
        if len(parts) != 3 or not _HEX8.fullmatch(parts[1]):
            raise NoteError("a verifier key reads <name>+<8 hex digits>+<base64 key>")
        name, hex_id, encoded = parts
        key = _b64decode(encoded, "the verifier key")
        if key[:1] != ALG_ED25519:
            raise NoteError("the verifier key is not an Ed25519 key (algorithm byte 0x01)")
        verifier = cls(name, key[1:])
        if verifier.key_id != bytes.fromhex(hex_id):
            raise NoteError(f"the verifier key's id {hex_id} does not match its name and key")
        return verifier

    @property
    def verifier_key(self) -> str:
        return f"{self.name}+{self.key_id.hex()}+{_b64(ALG_ED25519 + self.public_key)}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        if len(signature) != 64:
            return False
        try:
            self._key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


class Signer:
    """Signs with one named Ed25519 key."""

    def __init__(self, name: str, seed: bytes) -> None:
        _check_name(name)
        if len(seed) != 32:
            raise NoteError(f"an Ed25519 seed is 32 bytes, not {len(seed)}")
        self.name = name
        self._key = Ed25519PrivateKey.from_private_bytes(seed)
        self.public_key = self._key.public_key().public_bytes(**_RAW)
        self.key_id = key_id(name, self.public_key)

    @classmethod
    def from_key(cls, skey: str) -> Signer:
        """Parse `PRIVATE+KEY+<name>+<8-hex key id>+<base64(0x01 ‖ 32-byte seed)>`."""
        parts = skey.split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"] or not _HEX8.fullmatch(parts[3]):
            # Never echo the string: it is a private key.
            raise NoteError("a signer key reads PRIVATE+KEY+<name>+<8 hex digits>+<base64 key>")
        name, hex_id, encoded = parts[2:]
        key = _b64decode(encoded, "the signer key")
        if key[:1] != ALG_ED25519:
            raise NoteError("the signer key is not an Ed25519 key (algorithm byte 0x01)")
        signer = cls(name, key[1:])
        if signer.key_id != bytes.fromhex(hex_id):
            raise NoteError(f"the signer key's id {hex_id} does not match its name and key")
        return signer

    @property
    def verifier_key(self) -> str:
        return f"{self.name}+{self.key_id.hex()}+{_b64(ALG_ED25519 + self.public_key)}"

    def verifier(self) -> Verifier:
        return Verifier(self.name, self.public_key)

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)


def generate_key(name: str) -> tuple[str, str]:
    """A new Ed25519 key named `name`: (signer key string, verifier key string)."""
    _check_name(name)
    seed = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    signer = Signer(name, seed)
    return f"PRIVATE+KEY+{name}+{signer.key_id.hex()}+{_b64(ALG_ED25519 + seed)}", signer.verifier_key


def _check_text(text: str, what: str) -> None:
    # Notes are UTF-8 text with no control characters but newlines, so what is signed is what is shown.
    if not _is_utf8(text):
        raise NoteError(f"{what} is not valid UTF-8")
    for char in text:
        if char < " " and char != "\n":
            raise NoteError(f"{what} contains the control character {char!r}")


def sign(text: str, signer: Signer) -> str:
    """The signed note: `text`, a blank line, then `— <name> <base64(key id ‖ Ed25519 signature)>`."""
    if not text.endswith("\n"):
        raise NoteError("a note's text must end with a newline")
    _check_text(text, "the note's text")
    signature = signer.sign(text.encode("utf-8"))
    return f"{text}\n{SIGNATURE_PREFIX}{signer.name} {_b64(signer.key_id + signature)}\n"


def open_note(note: str, verifiers: Iterable[Verifier]) -> str:
    """The note's text, once a signature by one of `verifiers` checks out.

    Signatures by other keys are ignored (a note may carry cosignatures); a bad signature by a known
    key, no known signature at all, or a malformed note raises NoteError.
    """
    known = {(verifier.name, verifier.key_id): verifier for verifier in verifiers}
    _check_text(note, "the note")
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("the note has no signature block (a blank line, then signature lines)")
    text, block = note[: split + 1], note[split + 2 :]
    if not block:
        raise NoteError("the note's signature block is empty")
    if not block.endswith("\n"):
        raise NoteError("the note's signature block must end with a newline")
    message = text.encode("utf-8")
    verified, seen = 0, set()
    lines = block[:-1].split("\n")
    if len(lines) > _MAX_SIGNATURES:
        raise NoteError(f"the note has more than {_MAX_SIGNATURES} signatures")
    for line in lines:
        if not line.startswith(SIGNATURE_PREFIX):
            raise NoteError(f"malformed signature line {line!r}: it must start with an em dash and a space")
        name, _, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
        _check_name(name)
        blob = _b64decode(encoded, f"the signature by {name}") if encoded else b""
        if len(blob) < 5:
            raise NoteError(f"the signature line by {name} is too short")
        verifier = known.get((name, blob[:4]))
        if verifier is None or (name, blob) in seen:
            continue
        seen.add((name, blob))
        if not verifier.verify(message, blob[4:]):
            raise NoteError(f"the signature by {name} ({blob[:4].hex()}) does not verify")
        verified += 1
    if not verified:
        raise NoteError("the note carries no signature by a known key")
    return text


class Checkpoint(NamedTuple):
    """A C2SP tlog-checkpoint: the log's origin, its tree size and the root at that size."""

    origin: str
    size: int
    root: bytes


def format_checkpoint(origin: str, size: int, root: bytes) -> str:
    """The checkpoint body: origin, decimal size and base64 root, one per line."""
    if not origin or "\n" in origin:
        raise NoteError(f"bad origin {origin!r}: one non-empty line")
    if not 0 <= size <= _MAX_TREE_SIZE:
        raise NoteError(f"bad tree size {size}")
    if len(root) != 32:
        raise NoteError(f"a root is 32 bytes, not {len(root)}")
    return f"{origin}\n{size}\n{_b64(root)}\n"


def parse_checkpoint(text: str) -> Checkpoint:
    """Strictly parse a checkpoint body (a note's text); extension lines after the root are ignored."""
    if not text.endswith("\n"):
        raise NoteError("a checkpoint ends with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise NoteError("a checkpoint has an origin line, a tree size line and a root line")
    origin, size_line, root_line, *extensions = lines
    if not origin:
        raise NoteError("the checkpoint's origin line is empty")
    if not _DECIMAL.fullmatch(size_line) or int(size_line) > _MAX_TREE_SIZE:
        raise NoteError(f"bad tree size {size_line!r}: decimal digits without leading zeros")
    root = _b64decode(root_line, "the checkpoint's root")
    # Exactly one spelling per root, so one checkpoint has one text (and one signature) only.
    if len(root) != 32 or _b64(root) != root_line:
        raise NoteError("the checkpoint's root must be 32 bytes in standard padded base64")
    if any(not line for line in extensions):
        raise NoteError("a checkpoint has no empty lines")
    return Checkpoint(origin, int(size_line), root)
