"""An XDF 1.0 chunk walker that reads files from any writer and explains damage.

It reads what pyxdf does not keep (each stream header's XML, as recorded) and says, with byte
offsets, what is wrong with a damaged file: a truncated last chunk (a recorder killed mid-write or
a full disk), an impossible length prefix (corruption: the walker resyncs at the next Boundary
chunk, as XDF readers do), unknown chunk tags (skipped). Sample decoding is left to pyxdf.
"""

from __future__ import annotations

import gzip
import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from streaming.errors import SessionFileError
from streaming.recording.xdf_writer import BOUNDARY_UUID

__all__ = ["XdfScan", "scan_xdf"]

KNOWN_TAGS = {
    1: "FileHeader",
    2: "StreamHeader",
    3: "Samples",
    4: "ClockOffset",
    5: "Boundary",
    6: "StreamFooter",
}


@dataclass
class XdfScan:
    """What a walk through the file found."""

    path: Path
    tags: Counter[int] = field(default_factory=Counter)  # chunk census, by tag
    headers: dict[int, str] = field(default_factory=dict)  # stream id -> StreamHeader XML
    footers: dict[int, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    chunks: list[tuple[int, int]] = field(default_factory=list)  # (byte offset, tag)
    bytes_read: int = 0

    @property
    def complete(self) -> bool:
        """No damage, and every stream has its footer (a clean stop)."""
        return not self.problems and set(self.headers) <= set(self.footers)


def _open(path: Path) -> BinaryIO:
    with path.open("rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"  # .xdfz / .xdf.gz, as pyxdf opens them
    return gzip.open(path, "rb") if gzipped else path.open("rb")  # type: ignore[return-value]


def _resync(fh: BinaryIO, start: int) -> int | None:
    """Offset just after the next Boundary chunk's UUID at or after ``start``, or None."""
    fh.seek(start)
    data = fh.read()
    found = data.find(BOUNDARY_UUID)
    return None if found < 0 else start + found + len(BOUNDARY_UUID)


def scan_xdf(path: str | Path) -> XdfScan:
    """Walk every chunk; raises :class:`SessionFileError` only when nothing is readable."""
    path = Path(path)
    if not path.is_file():
        raise SessionFileError(f"{path}: no such file")
    scan = XdfScan(path)
    with _open(path) as fh:
        if fh.read(4) != b"XDF:":
            raise SessionFileError(f"{path}: not an XDF file (it does not start with 'XDF:')")
        offset = 4
        while True:
            fh.seek(offset)
            prefix = fh.read(1)
            if not prefix:
                break
            n_bytes = prefix[0]
            raw_length = fh.read(n_bytes) if n_bytes in (1, 4, 8) else b""
            if n_bytes not in (1, 4, 8) or len(raw_length) < n_bytes:
                if n_bytes in (1, 4, 8):
                    scan.problems.append(
                        f"truncated at byte {offset}: the file ends inside a chunk"
                    )
                    break
                scan.problems.append(
                    f"corrupt chunk at byte {offset}: length prefix {n_bytes} is not 1, 4 or 8"
                )
                resumed = _resync(fh, offset + 1)
                if resumed is None:
                    break
                scan.problems.append(f"resumed at the Boundary chunk ending at byte {resumed}")
                offset = resumed
                continue
            length = int.from_bytes(raw_length, "little")
            body_start = offset + 1 + n_bytes
            body = fh.read(length)
            if len(body) < length or length < 2:
                scan.problems.append(
                    f"truncated at byte {offset}: a chunk of {length} bytes, {len(body)} present "
                    "(the writer stopped mid-chunk; everything before it is intact)"
                )
                break
            (tag,) = struct.unpack_from("<H", body)
            scan.tags[tag] += 1
            scan.chunks.append((offset, tag))
            if tag not in KNOWN_TAGS:
                scan.problems.append(
                    f"unknown chunk tag {tag} at byte {offset} ({length} bytes, skipped)"
                )
            elif tag in (2, 6):
                stream_id = struct.unpack_from("<I", body, 2)[0]
                text = body[6:].decode("utf-8", errors="replace")
                (scan.headers if tag == 2 else scan.footers)[stream_id] = text
            offset = body_start + length
        scan.bytes_read = offset
    return scan


def describe(scan: XdfScan) -> str:
    """A short human summary (streams, chunks, problems)."""
    census = ", ".join(f"{KNOWN_TAGS.get(t, f'tag {t}')} {n}" for t, n in sorted(scan.tags.items()))
    lines = [f"{scan.path}: {len(scan.headers)} stream(s); chunks: {census}"]
    lines += [f"  problem: {p}" for p in scan.problems]
    if not scan.problems and not scan.complete:
        lines.append("  note: some streams have no footer (the recorder did not stop cleanly)")
    return "\n".join(lines)
