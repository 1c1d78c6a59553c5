"""`minbert data fetch` against local folders: a mirror, and a loopback HTTP server laid out like upstream."""
import functools
import http.server
import shutil
import threading
from pathlib import Path

import pytest

from minbert_lib.cli import main
from minbert_lib.fetch import MIRROR_ENV, RECORD, fetch_data
from minbert_lib.registry import BASE_URL_ENV, DEFAULT_BASE_URL, FILES, UPSTREAM_COMMIT, data_file

SMALL = ("ids-sst-dev.csv", "sts-dev.csv", "ids-cfimdb-dev.csv")


def statuses(results) -> dict[str, str]:
    return {r.name: r.status for r in results}


@pytest.fixture
def small_mirror(mirror, tmp_path):
    """A writable mirror holding copies of three small files (the others are missing)."""
    folder = tmp_path / "mirror"
    folder.mkdir()
    for name in SMALL:
        shutil.copy(mirror / name, folder / name)
    return folder


@pytest.fixture
def http_mirror(small_mirror):
    """The small mirror served over HTTP on the loopback interface, as the upstream server would."""
    handler = functools.partial(RangeHandler, directory=str(small_mirror))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files like a download server: quietly, and from a byte offset when asked (`Range`)."""

    ranges_asked: list[str] = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        asked = self.headers.get("Range")
        path = Path(self.translate_path(self.path))
        if asked is None or not path.is_file():
            return super().do_GET()
        RangeHandler.ranges_asked.append(asked)
        start = int(asked.removeprefix("bytes=").rstrip("-"))
        body = path.read_bytes()[start:]
        self.send_response(206)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_registry_lists_the_twelve_upstream_files():
    assert len({f.name for f in FILES}) == 12
    assert all((f.size is None) == (f.sha256 is None) for f in FILES)
    assert [f.name for f in FILES if f.sha256 is None] == ["quora-train.csv", "quora-test-student.csv"]
    assert all(len(f.sha256) == 64 for f in FILES if f.sha256)
    assert data_file("sts", "dev").url() == f"{DEFAULT_BASE_URL}/sts-dev.csv"
    assert UPSTREAM_COMMIT in DEFAULT_BASE_URL


def test_fetch_from_the_mirror_reports_partial_and_missing_files(mirror, tmp_path):
    data = tmp_path / "data"
    first = statuses(fetch_data(data, mirror=mirror, progress=False))
    assert first["quora-train.csv"] == "partial"
    assert first["quora-test-student.csv"] == "missing"
    assert {s for name, s in first.items() if not name.startswith("quora-t")} == {"fetched"}
    assert (data / "quora-dev.csv").read_bytes() == (mirror / "quora-dev.csv").read_bytes()
    assert not list(data.glob("*.part"))

    second = statuses(fetch_data(data, mirror=mirror, progress=False))
    assert second["ids-sst-train.csv"] == "present" and second["quora-train.csv"] == "partial"


def test_corrupted_and_truncated_mirror_files_are_caught(small_mirror, tmp_path):
    corrupted = bytearray((small_mirror / "sts-dev.csv").read_bytes())
    corrupted[5000] ^= 1  # one bit: same size, other checksum
    (small_mirror / "sts-dev.csv").write_bytes(bytes(corrupted))
    truncated = small_mirror / "ids-cfimdb-dev.csv"
    truncated.write_bytes(truncated.read_bytes()[:100_000])

    results = {r.name: r for r in fetch_data(tmp_path / "data", mirror=small_mirror, progress=False)}
    assert results["ids-sst-dev.csv"].status == "fetched"
    assert results["sts-dev.csv"].status == "failed" and "checksum mismatch" in results["sts-dev.csv"].detail
    assert results["ids-cfimdb-dev.csv"].status == "failed"
    assert "expected 249,095 bytes, got 100,000" in results["ids-cfimdb-dev.csv"].detail
    assert not (tmp_path / "data" / "sts-dev.csv").exists()  # nothing bad is left in place
    assert not list((tmp_path / "data").glob("*.part"))


def test_a_bad_file_in_the_data_folder_is_fetched_again(small_mirror, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "ids-sst-dev.csv").write_text("not the data\n")
    results = statuses(fetch_data(data, mirror=small_mirror, progress=False))
    assert results["ids-sst-dev.csv"] == "fetched"
    assert (data / "ids-sst-dev.csv").read_bytes() == (small_mirror / "ids-sst-dev.csv").read_bytes()


def test_download_over_http_verifies_like_the_mirror(http_mirror, small_mirror, tmp_path):
    (small_mirror / "sts-dev.csv").write_bytes((small_mirror / "sts-dev.csv").read_bytes().replace(b"dogs", b"cats"))
    results = {r.name: r for r in fetch_data(tmp_path / "data", base_url=http_mirror, progress=False)}
    assert results["ids-sst-dev.csv"].status == "fetched"
    assert results["ids-sst-dev.csv"].detail.startswith(f"from {http_mirror}/ids-sst-dev.csv")
    assert results["sts-dev.csv"].status == "failed"
    # upstream is expected to have every file: one it lacks is a failed download, not a mirror gap
    assert results["sts-train.csv"].status == "failed" and "404" in results["sts-train.csv"].detail


def test_an_interrupted_download_resumes(http_mirror, small_mirror, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    whole = (small_mirror / "ids-sst-dev.csv").read_bytes()
    (data / "ids-sst-dev.csv.part").write_bytes(whole[:60_000])  # what an interrupted download leaves
    RangeHandler.ranges_asked.clear()
    assert statuses(fetch_data(data, base_url=http_mirror, progress=False))["ids-sst-dev.csv"] == "fetched"
    assert RangeHandler.ranges_asked == ["bytes=60000-"]
    assert (data / "ids-sst-dev.csv").read_bytes() == whole


def test_a_damaged_partial_download_is_discarded_and_fetched_again(http_mirror, small_mirror, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "sts-dev.csv.part").write_bytes(b"x" * 1000)  # resumes onto garbage: the checksum catches it
    assert statuses(fetch_data(data, base_url=http_mirror, progress=False))["sts-dev.csv"] == "failed"
    assert not (data / "sts-dev.csv.part").exists()
    assert statuses(fetch_data(data, base_url=http_mirror, progress=False))["sts-dev.csv"] == "fetched"


def test_download_address_follows_the_environment(http_mirror, tmp_path, monkeypatch):
    monkeypatch.setenv(BASE_URL_ENV, http_mirror)
    assert data_file("sst", "dev").url() == f"{http_mirror}/ids-sst-dev.csv"
    assert statuses(fetch_data(tmp_path / "data", progress=False))["ids-sst-dev.csv"] == "fetched"


def test_cli_fetch_then_check(mirror, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(MIRROR_ENV, str(mirror))  # the mirror given by the environment, not --mirror
    data = tmp_path / "data"
    assert main(["data", "fetch", "--data-dir", str(data), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "quora-train.csv: partial: only 13,507 of the official 141,506 rows" in out
    assert "quora-test-student.csv: missing: not in the mirror" in out

    assert main(["data", "check", "--data-dir", str(data)]) == 0
    out = capsys.readouterr().out
    assert "quora-dev.csv: 20,214 rows, 20,212 usable; sha256 matches upstream" in out
    assert "malformed row left out, line 14222: empty sentence2" in out


def test_cli_fails_in_one_line_on_a_damaged_mirror(small_mirror, tmp_path, capsys):
    (small_mirror / "ids-sst-dev.csv").write_bytes(b"\tid\tsentence\tsentiment\n")
    assert main(["data", "fetch", "--data-dir", str(tmp_path / "data"), "--mirror", str(small_mirror)]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("minbert: error: 1 file(s) could not be fetched or verified (ids-sst-dev.csv)")


def test_cli_check_names_the_missing_required_files(tmp_path, capsys):
    assert main(["data", "check", "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path}: ids-sst-train.csv, ids-sst-dev.csv, quora-train.csv" in err
    assert "missing or unreadable; run `minbert data fetch --data-dir" in err
    assert "test-student" not in err  # test files are optional


def test_cli_check_reports_an_unreadable_file_and_goes_on(mirror, tmp_path, capsys):
    data = tmp_path / "data"
    fetch_data(data, mirror=mirror, progress=False)
    (data / "sts-test-student.csv").write_text("<html>Not Found</html>\n")
    assert main(["data", "check", "--data-dir", str(data)]) == 1
    out = capsys.readouterr()
    assert "sts-test-student.csv: UNREADABLE: " in out.out and "line 1 lacks the column(s) id" in out.out
    assert "ids-cfimdb-test-student.csv: 488 rows" in out.out  # the files after it are still checked
    assert out.err.strip() == (f"minbert: error: {data}: sts-test-student.csv missing or unreadable; "
                               f"run `minbert data fetch --data-dir {data}` (without internet: add --mirror DIR, "
                               "or set MINBERT_DATA_MIRROR=DIR)")


def test_a_mirror_that_is_not_a_folder_is_an_error(tmp_path, capsys):
    assert main(["data", "fetch", "--data-dir", str(tmp_path), "--mirror", str(tmp_path / "nowhere")]) == 1
    assert "is not a folder: give --mirror" in capsys.readouterr().err


NOWHERE = "http://127.0.0.1:9"  # nothing listens there: a machine without internet


def test_after_a_mirror_fetch_a_plain_fetch_needs_no_internet(mirror, tmp_path, capsys, monkeypatch):
    """What `make demo` does after `minbert data fetch --mirror DIR`: fetch again with no mirror named."""
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    monkeypatch.setenv(BASE_URL_ENV, NOWHERE)
    data = tmp_path / "data"
    assert main(["data", "fetch", "--data-dir", str(data), "--mirror", str(mirror), "--quiet"]) == 0
    assert (data / RECORD).is_file()
    capsys.readouterr()

    assert main(["data", "fetch", "--data-dir", str(data), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert f"quora-train.csv: partial: kept the partial copy from the mirror {mirror}, only 13,507 of" in out
    assert f"quora-test-student.csv: missing: the mirror {mirror} lacks it (needed only for test" in out
    assert out.count(": present: already in place and verified") == 10

    # --refresh tries the two again; without internet that fails, naming both ways to a mirror,
    # and the partial copy and the record stay for the next plain fetch.
    assert main(["data", "fetch", "--data-dir", str(data), "--quiet", "--refresh"]) == 1
    captured = capsys.readouterr()
    assert "quora-train.csv: failed: cannot download" in captured.out
    assert "--mirror DIR" in captured.out and "MINBERT_DATA_MIRROR" in captured.out
    assert "--mirror DIR" in captured.err and "MINBERT_DATA_MIRROR" in captured.err
    assert (data / "quora-train.csv").read_bytes() == (mirror / "quora-train.csv").read_bytes()
    assert main(["data", "fetch", "--data-dir", str(data), "--quiet"]) == 0


def test_a_changed_partial_file_is_not_kept(mirror, tmp_path, monkeypatch):
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    data = tmp_path / "data"
    fetch_data(data, mirror=mirror, progress=False)
    lines = (data / "quora-train.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    (data / "quora-train.csv").write_text("".join(lines[:-1]), encoding="utf-8")  # not what the mirror gave
    results = {r.name: r for r in fetch_data(data, base_url=NOWHERE, progress=False)}
    assert results["quora-train.csv"].status == "failed"
    assert results["quora-test-student.csv"].status == "missing"
    assert results["ids-sst-dev.csv"].status == "present"


def test_every_no_internet_message_names_the_mirror_option_and_variable(tmp_path, capsys, monkeypatch):
    from minbert_lib.data import FETCH_HINT, read_split

    monkeypatch.delenv(MIRROR_ENV, raising=False)
    monkeypatch.setenv(BASE_URL_ENV, NOWHERE)
    for message in (FETCH_HINT, fetch_data(tmp_path / "data", progress=False)[0].detail):
        assert "--mirror DIR" in message and "MINBERT_DATA_MIRROR" in message, message
    with pytest.raises(Exception, match="--mirror DIR.*MINBERT_DATA_MIRROR"):
        read_split("sst", "dev", tmp_path / "empty")
