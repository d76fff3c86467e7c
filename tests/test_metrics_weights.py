"""The weights catalogue (lookup order, verification, fetch from a loopback HTTP server), the
`oldphoto-bench weights` command, and LPIPS: injected test backbone, input scaling, missing weights."""

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch

from oldphoto_bench.cli import main
from oldphoto_bench.metrics import LPIPS, MetricUnavailable, try_build
from oldphoto_bench.metrics import weights as w
from oldphoto_bench.seeding import torch_generator

GOOD = b"pretend these are network weights\n" * 1000
BAD = GOOD[:-1] + b"?"  # one byte differs: the digest does not match


class _Server:
    """Serves ``files`` (path -> bytes) on 127.0.0.1; counts requests per path; 404 for anything else."""

    def __init__(self, files):
        self.files, self.hits = files, {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                outer.hits[self.path] = outer.hits.get(self.path, 0) + 1
                body = outer.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    with _Server({"/good.pth": GOOD, "/bad.pth": BAD}) as s:
        yield s


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No $OLDPHOTO_WEIGHTS and an empty torch hub cache under tmp_path."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.delenv("OLDPHOTO_WEIGHTS", raising=False)
    return tmp_path


def entry(key, url, filename, data=GOOD, **kw):
    return w.WeightsFile(key=key, filenames=(filename,), url=url, used_by=("test",), description="test file",
                         sha256=hashlib.sha256(data).hexdigest(), **kw)


def test_catalogue_entries_are_verifiable():
    for key, e in w.CATALOGUE.items():
        assert e.key == key and e.url.startswith("https://")
        if e.sha256_prefix:  # torchvision convention: the file name carries the digest prefix
            assert all(f"-{e.sha256_prefix}." in name for name in e.filenames)
            assert e.sha256 is None or e.sha256.startswith(e.sha256_prefix)
    with pytest.raises(ValueError, match="sha256"):
        w.WeightsFile(key="x", filenames=("x.pth",), url="https://x", used_by=(), description="")
    with pytest.raises(KeyError, match="alexnet"):
        w.get_entry("alexnett")


def test_lookup_order_and_states(isolated, monkeypatch):
    cat = {"t": entry("t", "http://unused/t.pth", "t-abc.pth")}
    explicit, env, hub = isolated / "explicit", isolated / "env", w.hub_checkpoints_dir()
    monkeypatch.setenv("OLDPHOTO_WEIGHTS", str(env))
    assert w.search_dirs(cat["t"], explicit) == [explicit, env, hub]
    assert w.status("t", explicit, catalogue=cat).state == "missing"
    hub.mkdir(parents=True)
    (hub / "t-abc.pth").write_bytes(GOOD)
    assert w.status("t", explicit, catalogue=cat).path == hub / "t-abc.pth"
    env.mkdir()
    (env / "t-abc.pth").write_bytes(BAD)  # a corrupted copy earlier in the order is skipped
    st = w.status("t", explicit, catalogue=cat)
    assert st.state == "present" and st.path == hub / "t-abc.pth" and st.digest == cat["t"].sha256
    (hub / "t-abc.pth").unlink()
    st = w.status("t", explicit, catalogue=cat)
    assert st.state == "corrupt" and st.path == env / "t-abc.pth"
    with pytest.raises(w.WeightsError, match="SHA-256"):
        w.require("t", explicit, catalogue=cat)


def test_prefix_entries_verify_the_prefix(isolated):
    digest = hashlib.sha256(GOOD).hexdigest()
    ok = w.WeightsFile(key="p", filenames=(f"p-{digest[:8]}.pth",), url="https://x", used_by=(),
                       description="", sha256_prefix=digest[:8])
    wrong = w.WeightsFile(key="p", filenames=("p-deadbeef.pth",), url="https://x", used_by=(),
                          description="", sha256_prefix="deadbeef")
    (isolated / ok.filename).write_bytes(GOOD)
    (isolated / wrong.filename).write_bytes(GOOD)
    assert w.status("p", isolated, catalogue={"p": ok}).state == "present"
    assert w.status("p", isolated, catalogue={"p": wrong}).state == "corrupt"


def test_require_names_the_file_and_the_fetch_command(isolated):
    with pytest.raises(w.WeightsError) as e:
        w.require("alexnet", isolated / "nowhere")
    msg = str(e.value)
    assert "alexnet-owt-7be5be79.pth" in msg and "oldphoto-bench weights fetch alexnet" in msg
    assert str(isolated / "nowhere") in msg


def test_fetch_downloads_verifies_and_renames(server, isolated):
    cat = {"g": entry("g", server.url + "/good.pth", "good.pth", size=len(GOOD))}
    dest = isolated / "weights"
    seen = []
    path = w.fetch("g", dest, catalogue=cat, progress=lambda done, total: seen.append((done, total)))
    assert path == dest / "good.pth" and path.read_bytes() == GOOD
    assert sorted(p.name for p in dest.iterdir()) == ["good.pth"]  # no temporary file left
    assert seen[-1] == (len(GOOD), len(GOOD))
    assert w.fetch("g", dest, catalogue=cat) == path and server.hits["/good.pth"] == 1  # verified: kept
    w.fetch("g", dest, catalogue=cat, force=True)
    assert server.hits["/good.pth"] == 2


def test_fetch_of_a_corrupted_file_leaves_nothing(server, isolated):
    cat = {"b": entry("b", server.url + "/bad.pth", "bad.pth")}  # expects GOOD's digest, serves BAD
    dest = isolated / "weights"
    with pytest.raises(w.WeightsError, match="does not match"):
        w.fetch("b", dest, catalogue=cat)
    assert list(dest.iterdir()) == []


def test_fetch_failures_are_weights_errors(server, isolated):
    dest = isolated / "weights"
    missing = {"m": entry("m", server.url + "/missing.pth", "m.pth")}
    with pytest.raises(w.WeightsError, match="download failed"):
        w.fetch("m", dest, catalogue=missing)
    wrong_size = {"s": entry("s", server.url + "/good.pth", "s.pth", size=len(GOOD) + 1)}
    with pytest.raises(w.WeightsError, match="bytes"):
        w.fetch("s", dest, catalogue=wrong_size)
    local = {"f": entry("f", "file:///etc/passwd", "f.pth")}
    with pytest.raises(w.WeightsError, match="refusing"):
        w.fetch("f", dest, catalogue=local)
    assert list(dest.iterdir()) == []
    results = w.fetch_many(["m", "s"], dest, catalogue={**missing, **wrong_size})
    assert all(isinstance(r, w.WeightsError) for r in results.values())


def test_cli_lists_and_fetches(server, isolated, monkeypatch, capsys):
    cat = {"good": entry("good", server.url + "/good.pth", "good.pth"),
           "bad": entry("bad", server.url + "/bad.pth", "bad.pth")}
    monkeypatch.setattr(w, "CATALOGUE", cat)
    dest = isolated / "weights"
    assert main(["weights", "--dir", str(dest), "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["good"]["state"] == "missing" and str(dest) in rows["good"]["looked_in"][0]
    assert rows["good"]["sha256"] == cat["good"].sha256
    assert main(["weights", "fetch", "good", "--dir", str(dest)]) == 0
    assert (dest / "good.pth").read_bytes() == GOOD
    assert main(["weights", "fetch", "bad", "--dir", str(dest)]) == 1
    assert not (dest / "bad.pth").exists()
    capsys.readouterr()
    assert main(["weights", "good", "--dir", str(dest)]) == 0
    out = capsys.readouterr().out
    assert "good: present, verified" in out and cat["good"].sha256 in out
    assert main(["weights", "nosuch"]) == 2


def test_real_catalogue_listing_runs_offline(isolated, capsys):
    assert main(["weights", "--no-verify", "--dir", str(isolated)]) == 0
    out = capsys.readouterr().out
    for key in ("alexnet", "lpips-alex-v0.1", "inception-fid"):
        assert f"{key}:" in out


# ---- LPIPS ------------------------------------------------------------------------------------------------


def images(n=2, seed=0, h=64, w=64):
    return torch.rand(n, 3, h, w, generator=torch_generator(seed))


def test_lpips_with_injected_backbone_is_zero_on_identical_images():
    m = LPIPS.for_tests(seed=0)
    x = images()
    assert torch.equal(m(x, x), torch.zeros(2, dtype=torch.float64))
    assert "RANDOM" in m.settings["weights"]["trunk"]  # the test network says what it is


def test_lpips_wrapper_scales_inputs_to_minus_one_one():
    m = LPIPS.for_tests(seed=1)
    x, y = images(seed=1), images(seed=2)
    with torch.no_grad():
        raw = m.network(2 * x - 1, 2 * y - 1).flatten().double()  # the lpips network expects [-1, 1]
    assert torch.allclose(m(x, y), raw)
    mild = (x + 0.02 * torch.randn(x.shape, generator=torch_generator(3))).clamp(0, 1)
    assert (m(mild, x) > 0).all() and (m(mild, x) < m(y, x)).all()


def test_lpips_refuses_to_run_without_weights(isolated):
    with pytest.raises(MetricUnavailable) as e:
        LPIPS(weights_dir=isolated / "nowhere")
    assert "alexnet-owt-7be5be79.pth" in e.value.reason and "oldphoto-bench weights fetch" in e.value.reason
    metric, reason = try_build("lpips", weights_dir=isolated / "nowhere")
    assert metric is None and reason == e.value.reason


def test_lpips_loads_the_alexnet_trunk_from_a_verified_file(isolated):
    from torchvision.models import alexnet

    with torch.random.fork_rng(devices=[]):
        state = alexnet(weights=None).state_dict()
    path = isolated / "alexnet-owt-7be5be79.pth"
    torch.save(state, path)
    real = w.CATALOGUE
    cat = {**real, "alexnet": w.WeightsFile(key="alexnet", filenames=real["alexnet"].filenames,
                                            url=real["alexnet"].url, used_by=("lpips",), description="stand-in",
                                            sha256=hashlib.sha256(path.read_bytes()).hexdigest())}
    m = LPIPS(weights_dir=isolated, catalogue=cat)
    assert torch.equal(m.network.net.slice1[0].weight, state["features.0.weight"])
    assert torch.equal(getattr(m.network.net.slice5, "10").bias, state["features.10.bias"])
    assert m.settings["weights"]["trunk"] == str(path)
    x = images(seed=4)
    assert torch.equal(m(x, x), torch.zeros(2, dtype=torch.float64))
    with pytest.raises(MetricUnavailable, match="SHA-256"):  # the real prefix does not match this file
        LPIPS(weights_dir=isolated)
