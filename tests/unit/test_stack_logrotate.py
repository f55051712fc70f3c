"""Size-based copy-truncate rotation of the logs under <run_dir>/logs."""

from stack.logrotate import rotate, rotate_logs


def test_rotation_keeps_n_copies_newest_first(tmp_path):
    log = tmp_path / "kafka.log"
    for generation in range(5):
        log.write_text(f"generation {generation}\n" * 100)
        assert rotate(log, max_bytes=1024, backups=3)
    assert log.read_bytes() == b""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kafka.log", "kafka.log.1", "kafka.log.2", "kafka.log.3"]
    assert [(tmp_path / f"kafka.log.{n}").read_text().split("\n")[0] for n in (1, 2, 3)] == [
        "generation 4", "generation 3", "generation 2"]
    assert (tmp_path / "kafka.log.1").read_text() == "generation 4\n" * 100  # content preserved


def test_a_small_log_stays_and_rotated_copies_are_not_rotated_again(tmp_path):
    (tmp_path / "small.log").write_text("short\n")
    (tmp_path / "big.log").write_text("x" * 2000)
    (tmp_path / "big.log.1").write_text("y" * 5000)
    assert rotate_logs(tmp_path, max_bytes=1024, backups=2) == [tmp_path / "big.log"]
    assert (tmp_path / "small.log").read_text() == "short\n"
    assert (tmp_path / "big.log.1").read_text() == "x" * 2000 and (tmp_path / "big.log.2").read_text() == "y" * 5000
    assert rotate(tmp_path / "missing.log", 1024, 2) is False
    (tmp_path / "big.log").write_text("z" * 2000)
    assert rotate(tmp_path / "big.log", 1024, backups=0) and not (tmp_path / "big.log.3").exists()


def test_a_writer_with_o_append_keeps_writing_after_the_truncation(tmp_path):
    log = tmp_path / "streaming.log"
    with open(log, "ab", buffering=0) as writer:  # how ManagedProcess.start opens a child's log
        writer.write(b"old line\n" * 300)
        assert rotate(log, max_bytes=1024, backups=1)
        writer.write(b"new line\n")
    assert log.read_bytes() == b"new line\n"  # at the new end: no hole of NUL bytes
    assert (tmp_path / "streaming.log.1").read_bytes() == b"old line\n" * 300
