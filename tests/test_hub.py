"""bert-base-uncased and other hub models through huggingface_hub, against a loopback mirror of the hub.

The server below implements the two requests `hf_hub_download` makes, HEAD and GET of
/{owner}/{name}/resolve/{revision}/{file}, with the headers it reads (X-Repo-Commit, ETag,
Content-Length, X-Error-Code); HF_ENDPOINT points the kit at it. Nothing leaves 127.0.0.1.
"""
import hashlib
import http.server
import threading

import pytest

from minbert_lib.errors import WeightsError
from minbert_lib.model import BertModel
from minbert_lib.weights import BERT_BASE_REPO, BERT_BASE_REVISION, hub_cache_dir, resolve_model_dir
from test_weights import tiny_hf_folder

OTHER_COMMIT = "0123456789abcdef0123456789abcdef01234567"  # what the mirror calls a branch's head


class HubHandler(http.server.BaseHTTPRequestHandler):
    repos: dict = {}        # repo id -> folder of its files
    requests: list = []     # (method, path, Authorization header)
    corrupt: set = set()    # file names whose bytes do not match the ETag sent

    def log_message(self, *args):
        pass

    def do_HEAD(self):
        self.answer(body=False)

    def do_GET(self):
        self.answer(body=True)

    def answer(self, body):
        if self.path.startswith("/api/"):  # huggingface_hub's own daily look-ups, not downloads
            return self.error(404, "RepoNotFound")
        HubHandler.requests.append((self.command, self.path, self.headers.get("Authorization")))
        parts = self.path.split("?")[0].strip("/").split("/")
        if len(parts) != 5 or parts[2] != "resolve":
            return self.error(404, "RepoNotFound")
        repo, revision, filename = "/".join(parts[:2]), parts[3], parts[4]
        if repo not in self.repos:
            return self.error(404, "RepoNotFound")
        path = self.repos[repo] / filename
        if not path.is_file():
            return self.error(404, "EntryNotFound")
        data = path.read_bytes()
        if filename.endswith((".safetensors", ".bin")):  # LFS files: the ETag is the SHA-256
            etag = hashlib.sha256(data).hexdigest()
            if filename in self.corrupt:
                data = data[:-1] + bytes([data[-1] ^ 1])
        else:
            etag = hashlib.sha1(data).hexdigest()
        self.send_response(200)
        self.send_header("X-Repo-Commit", revision if len(revision) == 40 else OTHER_COMMIT)
        self.send_header("ETag", f'"{etag}"')
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)

    def error(self, status, code):
        self.send_response(status)
        self.send_header("X-Error-Code", code)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def hub(tmp_path, minilm_dir, monkeypatch):
    """A loopback hub holding a 2-layer bert-base-uncased stand-in and a .bin-only model; HF_* set for it."""
    HubHandler.repos = {BERT_BASE_REPO: tiny_hf_folder(tmp_path / "hub" / "bert", minilm_dir),
                        "someone/tiny-bert": tiny_hf_folder(tmp_path / "hub" / "tiny", minilm_dir, as_bin=True)}
    HubHandler.requests, HubHandler.corrupt = [], set()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), HubHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_CACHE", "HF_TOKEN", "MINBERT_BERT_BASE_DIR",
                 "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    yield HubHandler
    server.shutdown()
    server.server_close()
    thread.join()


def test_bert_base_comes_from_the_hub_at_the_pinned_revision(hub, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    model = BertModel.from_pretrained("bert-base-uncased")
    assert len(model.layers) == 2
    snapshot = tmp_path / "hf-home" / "hub" / "models--google-bert--bert-base-uncased" / "snapshots" / BERT_BASE_REVISION
    assert sorted(p.name for p in snapshot.iterdir()) == ["config.json", "model.safetensors", "vocab.txt"]
    paths = {path for _, path, _ in hub.requests}
    assert f"/{BERT_BASE_REPO}/resolve/{BERT_BASE_REVISION}/model.safetensors" in paths
    assert all(auth == "Bearer hf_test_token" for _, path, auth in hub.requests if "/resolve/" in path)

    # Loaded again, from the cache: no request at all, online or with HF_HUB_OFFLINE.
    count = len(hub.requests)
    assert resolve_model_dir("bert-base-uncased") == snapshot
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert len(BertModel.from_pretrained("bert-base-uncased").layers) == 2
    assert len(hub.requests) == count


def test_offline_with_an_empty_cache_says_what_to_do(hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsError) as err:
        resolve_model_dir("bert-base-uncased")
    message = str(err.value)
    assert "\n" not in message
    assert "HF_HUB_OFFLINE" in message and "MINBERT_BERT_BASE_DIR" in message and "HF_HOME" in message
    assert hub.requests == []


def test_an_existing_default_cache_is_used(hub, tmp_path, monkeypatch):
    """A copy in ~/.cache/huggingface (say, from transformers) serves without HF_HOME or the network."""
    monkeypatch.delenv("HF_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert hub_cache_dir() == tmp_path / "home" / ".cache" / "huggingface" / "hub"
    resolve_model_dir("bert-base-uncased")
    assert (hub_cache_dir() / "models--google-bert--bert-base-uncased").is_dir()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    assert resolve_model_dir("bert-base-uncased").name == BERT_BASE_REVISION


def test_any_hub_name_with_a_revision_and_bin_weights(hub):
    folder = resolve_model_dir("someone/tiny-bert@v1.0")
    assert (folder / "pytorch_model.bin").is_file() and folder.name == OTHER_COMMIT
    assert any(path == "/someone/tiny-bert/resolve/v1.0/pytorch_model.bin" for _, path, _ in hub.requests)
    assert len(BertModel.from_pretrained("someone/tiny-bert").layers) == 2  # default branch: main


def test_unknown_model_and_unreachable_hub_are_one_line_errors(hub, monkeypatch):
    with pytest.raises(WeightsError, match="someone/nothing is no folder here; as a hub model name: "
                                           "someone/nothing is not on .*HF_TOKEN"):
        resolve_model_dir("someone/nothing")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    import huggingface_hub.utils._http as hub_http

    monkeypatch.setattr(hub_http.time, "sleep", lambda seconds: None)  # its 5 retries wait about 23 s in all
    with pytest.raises(WeightsError, match="cannot download .*HF_ENDPOINT.*HF_HUB_OFFLINE.*MINBERT_BERT_BASE_DIR"):
        resolve_model_dir("bert-base-uncased")


def test_corrupted_weights_are_deleted(hub, tmp_path):
    hub.corrupt = {"model.safetensors"}
    with pytest.raises(WeightsError, match="do not match the hub's sha256"):
        resolve_model_dir("bert-base-uncased")
    blobs = tmp_path / "hf-home" / "hub" / "models--google-bert--bert-base-uncased" / "blobs"
    assert all(len(b.name) != 64 for b in blobs.iterdir())


def test_a_local_folder_still_wins(hub, tmp_path, minilm_dir, monkeypatch):
    folder = tiny_hf_folder(tmp_path / "bert-base", minilm_dir)
    monkeypatch.setenv("MINBERT_BERT_BASE_DIR", str(folder))
    assert resolve_model_dir("bert-base-uncased") == folder
    assert hub.requests == []


def test_cli_weights_fetch_fills_the_cache_for_offline_use(hub, tmp_path, monkeypatch, capsys):
    from minbert_lib.cli import main

    assert main(["weights", "fetch"]) == 0
    snapshot = tmp_path / "hf-home" / "hub" / "models--google-bert--bert-base-uncased" / "snapshots" / BERT_BASE_REVISION
    assert capsys.readouterr().out.strip() == f"bert-base-uncased: {snapshot}"
    assert main(["weights", "fetch", "someone/tiny-bert", "--revision", "v2"]) == 0
    assert any(path == "/someone/tiny-bert/resolve/v2/config.json" for _, path, _ in hub.requests)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["weights", "fetch", "someone/other"]) == 1
    assert "HF_HUB_OFFLINE is set" in capsys.readouterr().err
