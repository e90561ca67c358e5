"""The XDF chunk walker on real files from other writers and on damaged ones."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import pyxdf

from streaming.acquisition.lsl_io import stream_info
from streaming.errors import SessionFileError
from streaming.recording.xdf_reader import describe, scan_xdf
from streaming.recording.xdf_writer import XdfWriter

# chunk census per file, as walked by hand (shared/data/xdf/README.md)
CENSUS = {
    "minimal.xdf": {1: 1, 2: 2, 3: 6, 4: 2, 5: 2, 6: 2},
    "empty_streams.xdf": {1: 1, 2: 4, 3: 11, 4: 28, 5: 3, 6: 4},
    "clock_resets.xdf": {1: 1, 2: 2, 3: 761, 4: 230, 5: 57, 6: 2},
}


@pytest.mark.parametrize("name", sorted(CENSUS))
def test_reads_files_of_other_writers_with_their_exact_chunk_census(shared_data, name):
    scan = scan_xdf(shared_data / "xdf" / name)
    assert dict(scan.tags) == CENSUS[name]
    assert scan.problems == [] and scan.complete


def _written(tmp_path, n_chunks=20):
    path = tmp_path / "rec.xdf"
    writer = XdfWriter(path)
    writer.stream_header(1, stream_info("E", "EMG", 2, 100, "float32", "e").as_xml())
    for i in range(n_chunks):
        writer.samples(
            1, 10 + np.arange(i * 10, i * 10 + 10) / 100, np.zeros((10, 2), np.float32), "float32"
        )
        if i == n_chunks // 2:
            writer.boundary()
    writer.stream_footer(1, 10.0, 10 + (n_chunks * 10 - 1) / 100, n_chunks * 10)
    writer.close()
    return path


def test_our_own_files_are_complete(tmp_path):
    scan = scan_xdf(_written(tmp_path))
    assert scan.complete and scan.tags[3] == 20 and 1 in scan.headers and 1 in scan.footers


def test_a_truncated_file_says_where_and_keeps_what_precedes(tmp_path):
    path = _written(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 150])
    scan = scan_xdf(path)
    assert any("truncated at byte" in p for p in scan.problems)
    assert not scan.complete and scan.tags[3] >= 15
    assert "problem: truncated" in describe(scan)
    streams, _ = pyxdf.load_xdf(str(path))  # the peer reads what is intact too
    assert len(streams[0]["time_stamps"]) >= 150


def test_corruption_resyncs_at_the_next_boundary_chunk(tmp_path):
    path = _written(tmp_path)
    third_samples = [offset for offset, tag in scan_xdf(path).chunks if tag == 3][2]
    data = bytearray(path.read_bytes())
    data[third_samples] = 7  # an impossible length prefix, before the boundary chunk
    path.write_bytes(bytes(data))
    scan = scan_xdf(path)
    assert any("corrupt chunk" in p for p in scan.problems)
    assert any("resumed at the Boundary" in p for p in scan.problems)
    assert 1 in scan.footers, "chunks after the boundary were not read"


def test_unknown_chunk_tags_are_skipped_and_reported(tmp_path):
    path = _written(tmp_path)
    data = path.read_bytes()
    unknown = struct.pack("<BB", 1, 2 + 3) + struct.pack("<H", 77) + b"abc"
    path.write_bytes(data + unknown)
    scan = scan_xdf(path)
    assert scan.problems == [f"unknown chunk tag 77 at byte {len(data)} (5 bytes, skipped)"]


def test_not_an_xdf_file_is_a_clear_error(tmp_path):
    path = tmp_path / "x.xdf"
    path.write_bytes(b"RIFF....")
    with pytest.raises(SessionFileError, match="not an XDF file"):
        scan_xdf(path)
    with pytest.raises(SessionFileError, match="no such file"):
        scan_xdf(tmp_path / "absent.xdf")


def test_the_writer_never_overwrites(tmp_path):
    path = _written(tmp_path)
    with pytest.raises(SessionFileError, match="never overwritten"):
        XdfWriter(path)
