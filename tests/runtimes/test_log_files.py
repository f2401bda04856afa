"""Reading append-only log files line by line from byte offsets."""

from __future__ import annotations

from pathlib import Path

from immute.runtimes.log_files import MAX_LINE, read_lines


def test_a_partial_last_line_waits_until_the_writer_is_gone(tmp_path: Path) -> None:
    log = tmp_path / "stdout.log"
    log.write_bytes(b"one\r\ntwo\nthr")
    live = read_lines(log, 0, limit=100, final=False)
    assert (live.lines, live.offset, live.at_end) == (["one", "two"], 9, False)
    done = read_lines(log, live.offset, limit=100, final=True)
    assert (done.lines, done.offset, done.at_end) == (["thr"], 12, True)


def test_a_runaway_line_is_cut_into_pieces(tmp_path: Path) -> None:
    log = tmp_path / "stdout.log"
    log.write_bytes(b"x" * (MAX_LINE + 10) + b"\nend\n")
    read = read_lines(log, 0, limit=100, final=False)
    assert [len(line) for line in read.lines] == [MAX_LINE, 10, 3]
    assert read.at_end


def test_limit_and_offsets_resume_where_reading_stopped(tmp_path: Path) -> None:
    log = tmp_path / "stdout.log"
    log.write_bytes(b"".join(f"line {i}\n".encode() for i in range(5)))
    first = read_lines(log, 0, limit=2, final=False)
    rest = read_lines(log, first.offset, limit=100, final=False)
    assert first.lines + rest.lines == [f"line {i}" for i in range(5)]
    assert not first.at_end and rest.at_end


def test_a_missing_file_has_no_lines(tmp_path: Path) -> None:
    read = read_lines(tmp_path / "absent.log", 0, limit=10, final=True)
    assert (read.lines, read.at_end) == ([], True)


def test_invalid_utf8_is_replaced_not_fatal(tmp_path: Path) -> None:
    log = tmp_path / "stdout.log"
    log.write_bytes(b"caf\xe9\n")
    assert read_lines(log, 0, limit=10, final=False).lines == ["caf\ufffd"]
