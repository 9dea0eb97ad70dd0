"""One gateway for the whole session: a temp config (the built-in mock provider in-process,
a recording upstream in this process, fault variants), the `switchyard` binary built by the
test script, and the keys the tests use.

The binary: `$SWITCHYARD_BIN`, else `$CARGO_TARGET_DIR/debug/switchyard`, else
`<repo>/target/debug/switchyard`. The suite never builds it (tests/clients/run.sh does).
"""

import hashlib
import json
import os
import secrets
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
import dataclasses
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from support import (PRICE_ALPHA, PRICE_BETA, PRICE_RECORDER, RECORDER_MODEL, RECORDER_REPLY,
                     RECORDER_USAGE, UPSTREAM_SECRET)

REPO = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 20
STOP_TIMEOUT_S = 15
LOG_TAIL_LINES = 60


def gateway_binary() -> Path:
    if os.environ.get("SWITCHYARD_BIN"):
        # Relative paths are relative to where the suite was started, not the gateway's cwd.
        return Path(os.environ["SWITCHYARD_BIN"]).resolve()
    target = os.environ.get("CARGO_TARGET_DIR")
    target_dir = (REPO / target) if target else REPO / "target"
    return target_dir / "debug" / "switchyard"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# The recording upstream: an OpenAI-dialect provider that keeps every request it receives, so
# tests can assert what the gateway sent upstream (body fields, headers), not only what came back.


class Recorder:
    def __init__(self):
        self.requests = []
        self.lock = threading.Lock()

    def record(self, method, path, headers, body):
        with self.lock:
            self.requests.append({"method": method, "path": path, "headers": headers, "body": body})

    def clear(self):
        with self.lock:
            self.requests.clear()

    def chat_requests(self):
        with self.lock:
            return [r for r in self.requests if r["path"].endswith("/chat/completions")]


def recorder_handler(recorder: Recorder):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # keep pytest output clean
            pass

        def _send(self, status, body: bytes, content_type="application/json"):
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            recorder.record("GET", self.path, {k.lower(): v for k, v in self.headers.items()}, None)
            if self.path.rstrip("/").endswith("/models"):
                body = {"object": "list", "data": [{"id": RECORDER_MODEL, "object": "model",
                                                     "created": 0, "owned_by": "recorder"}]}
                self._send(200, json.dumps(body).encode())
            else:
                self._send(404, b'{"error":{"message":"not found","type":"invalid_request_error"}}')

        def do_POST(self):
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
            recorder.record("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            if not self.path.endswith("/chat/completions") or not isinstance(body, dict):
                self._send(404, b'{"error":{"message":"not found","type":"invalid_request_error"}}')
                return
            content = json.dumps(RECORDER_REPLY)
            usage = dict(RECORDER_USAGE,
                         total_tokens=sum(RECORDER_USAGE.values()))
            base = {"id": "chatcmpl-recorder", "created": int(time.time()), "model": body.get("model"),
                    "system_fingerprint": "fp_recorder"}
            if body.get("stream"):
                include_usage = (body.get("stream_options") or {}).get("include_usage") is True
                events = [
                    dict(base, object="chat.completion.chunk",
                         choices=[{"index": 0, "delta": {"role": "assistant", "content": content},
                                   "finish_reason": None}]),
                    dict(base, object="chat.completion.chunk",
                         choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}]),
                ]
                if include_usage:
                    events.append(dict(base, object="chat.completion.chunk", choices=[], usage=usage))
                out = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)
                self._send(200, out + b"data: [DONE]\n\n", "text/event-stream")
            else:
                answer = dict(base, object="chat.completion", usage=usage, choices=[
                    {"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": content}}])
                self._send(200, json.dumps(answer).encode())

    return Handler


# ---------------------------------------------------------------------------------------------
# The gateway.


@dataclass(repr=False)
class Gateway:
    """What the tests need to reach the running gateway."""

    root: str            # http://127.0.0.1:PORT (the Anthropic SDK appends /v1/messages itself)
    base_url: str        # http://127.0.0.1:PORT/v1 (OpenAI SDK base URL)
    key: str             # may use every model
    restricted_key: str  # allowed_models: test/chat, test/unavailable-pair-* (through key_env)
    budget_key: str      # limit_usd: 0.000001
    rate_limited_key: str  # rpm: 2
    recorder: Recorder
    log_path: Path
    process: subprocess.Popen

    fault_draws: dict = dataclasses.field(default_factory=dict)

    def fault_model(self, family: str) -> str:
        """A failing model of `family` that no test has used yet in this session."""
        n = self.fault_draws.get(family, 0) + 1
        assert family in FAULT_FAMILIES, f"no fault family {family!r}"
        assert n <= FAULT_ALIASES, f"more than {FAULT_ALIASES} tests use fault {family!r}: raise FAULT_ALIASES"
        self.fault_draws[family] = n
        return f"test/{family}-{n}"

    def __repr__(self):
        return f"Gateway({self.root}, log {self.log_path})"

    def url(self, path: str) -> str:
        return self.root + path

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as e:
            return f"(no gateway log: {e})"
        return "\n".join(text.splitlines()[-lines:])


def sha256_hex(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def endpoint(provider, model, price=None, supports=("tools", "response_format", "stream")):
    ep = {"provider": provider, "model": model, "supports": list(supports)}
    if price:
        ep["price"] = dict(price)
    return ep


# Failing models, by family: (provider, the mock's model id with its fault knobs) per endpoint.
# The gateway's passive health opens an endpoint's breaker after a few consecutive failures and
# then answers 503 without trying it, so a test that needs a fault's first answer must not
# share the endpoint with other tests: each family has FAULT_ALIASES models
# (`test/broken-1`, ...), each with endpoints of their own (a `+alias=N` knob, which the mock
# ignores, makes the upstream model id and so the health key unique). Tests draw a fresh one
# with the `fault_model` fixture.
FAULT_FAMILIES = {
    "unavailable": [("alpha", "mock-small+status=503")],
    "unavailable-pair": [("alpha", "mock-small+status=503"), ("beta", "mock-small+status=503")],
    "limited": [("alpha", "mock-small+status=429+retry_after=7")],
    "broken": [("alpha", "mock-small+status=500")],
    "dead": [("dead", "mock-small")],
    "slow": [("slow", "mock-small+delay_ms=4000")],
    "midstream-reset": [("alpha", "mock-small+chunks=40+reset=mid")],
}
FAULT_ALIASES = 8


def fault_models() -> dict:
    prices = {"alpha": PRICE_ALPHA, "beta": PRICE_BETA}
    return {
        f"test/{family}-{n}": {"endpoints": [endpoint(provider, f"{model}+alias={n}", prices.get(provider, PRICE_ALPHA))
                                             for provider, model in endpoints]}
        for family, endpoints in FAULT_FAMILIES.items()
        for n in range(1, FAULT_ALIASES + 1)
    }


def gateway_config(tmp: Path, gw_port, mock_port, recorder_port, closed_port, keys) -> dict:
    mock = f"http://127.0.0.1:{mock_port}/v1"
    return {
        "server": {
            "listen": [f"127.0.0.1:{gw_port}"],
            "threads": 2,
            "grace_period": "1s",
            "max_body_bytes": 1024 * 1024,
            "pid_file": str(tmp / "switchyard.pid"),
            "upgrade_sock": str(tmp / "upgrade.sock"),
        },
        # Keeps a future ledger out of the working tree.
        "storage": {"database_url": f"sqlite://{tmp / 'switchyard.db'}"},
        "mock": {"listen": f"127.0.0.1:{mock_port}"},
        "providers": {
            "alpha": {"dialect": "openai", "base_url": mock, "data_collection": "deny", "zdr": True},
            "beta": {"dialect": "openai", "base_url": mock, "data_collection": "allow"},
            "recorder": {"dialect": "openai", "base_url": f"http://127.0.0.1:{recorder_port}/v1",
                         "api_key_env": "SWITCHYARD_TEST_UPSTREAM_KEY"},
            # Nothing listens there: every connection is refused.
            "dead": {"dialect": "openai", "base_url": f"http://127.0.0.1:{closed_port}/v1",
                     "timeouts": {"connect": "1s"}},
            "slow": {"dialect": "openai", "base_url": mock,
                     "timeouts": {"connect": "1s", "first_byte": "1s", "idle": "1s"}},
        },
        "models": {
            "test/chat": {
                "name": "Test Chat", "context_length": 32000, "max_output": 4096,
                "endpoints": [endpoint("alpha", "mock-small", PRICE_ALPHA),
                              endpoint("beta", "mock-small", PRICE_BETA)],
            },
            "test/other": {
                "name": "Test Other", "context_length": 8000, "max_output": 1024,
                "endpoints": [endpoint("alpha", "mock-large", PRICE_ALPHA)],
            },
            "test/tools": {"endpoints": [endpoint("alpha", "mock-small+tool_call", PRICE_ALPHA)]},
            "test/recorded": {"endpoints": [endpoint("recorder", RECORDER_MODEL, PRICE_RECORDER)]},
            "test/embed": {"endpoints": [endpoint("alpha", "mock-embed", PRICE_ALPHA, supports=())]},
            **fault_models(),
        },
        "keys": [
            {"name": "full", "key_sha256": sha256_hex(keys["full"])},
            {"name": "restricted", "key_env": "SWITCHYARD_TEST_RESTRICTED_KEY",
             "allowed_models": ["test/chat", "test/unavailable-pair-*"]},
            {"name": "budget", "key_sha256": sha256_hex(keys["budget"]), "limit_usd": 0.000001,
             "limit_reset": "never"},
            {"name": "rate-limited", "key_sha256": sha256_hex(keys["rate_limited"]), "rpm": 2},
        ],
    }


def wait_healthy(url: str, process: subprocess.Popen, deadline: float) -> str | None:
    """None once /healthz answers 200; else why not."""
    last = "no answer yet"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return f"the gateway exited with status {process.returncode}"
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1) as resp:
                if resp.status == 200:
                    return None
                last = f"/healthz answered {resp.status}"
        except (urllib.error.URLError, OSError) as e:
            last = f"/healthz: {e}"
        time.sleep(0.05)
    return f"not healthy after {STARTUP_TIMEOUT_S}s ({last})"


def die_with_parent():
    """In the child before exec: SIGTERM the gateway if pytest dies without tearing down (Linux)."""
    try:
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def stop(process: subprocess.Popen):
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


_running: list = []  # the session's Gateway, for the failure report hook


@pytest.fixture(scope="session")
def gateway(tmp_path_factory):
    binary = gateway_binary()
    if not binary.is_file():
        pytest.fail(f"no gateway binary at {binary}: run `cargo build` first "
                    "(or set SWITCHYARD_BIN / CARGO_TARGET_DIR)", pytrace=False)
    tmp = tmp_path_factory.mktemp("gateway")
    keys = {name: "sk-test-" + name + "-" + secrets.token_hex(12)
            for name in ("full", "restricted", "budget", "rate_limited")}

    recorder = Recorder()
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), recorder_handler(recorder))
    upstream.daemon_threads = True
    threading.Thread(target=upstream.serve_forever, name="recorder", daemon=True).start()

    env = dict(os.environ,
               SWITCHYARD_TEST_UPSTREAM_KEY=UPSTREAM_SECRET,
               SWITCHYARD_TEST_RESTRICTED_KEY=keys["restricted"],
               RUST_LOG=os.environ.get("RUST_LOG", "info"))
    process, failure = None, None
    # A port picked as free may be taken before the gateway binds it: try a few times.
    for attempt in range(3):
        gw_port, mock_port, closed_port = free_port(), free_port(), free_port()
        config = gateway_config(tmp, gw_port, mock_port, upstream.server_address[1], closed_port, keys)
        config_path = tmp / "switchyard.yaml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        log_path = tmp / f"gateway-{attempt}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen([str(binary), "serve", "-c", str(config_path)], cwd=tmp,
                                       env=env, stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
        root = f"http://127.0.0.1:{gw_port}"
        failure = wait_healthy(root, process, time.monotonic() + STARTUP_TIMEOUT_S)
        if failure is None:
            break
        stop(process)
        failure += "\n--- gateway log ---\n" + log_path.read_text(errors="replace")[-4000:]
    if failure is not None:
        upstream.shutdown()
        pytest.fail(f"the gateway did not start: {failure}", pytrace=False)

    gw = Gateway(root=root, base_url=root + "/v1", key=keys["full"],
                 restricted_key=keys["restricted"], budget_key=keys["budget"],
                 rate_limited_key=keys["rate_limited"], recorder=recorder, log_path=log_path,
                 process=process)
    _running.append(gw)
    try:
        yield gw
    finally:
        _running.remove(gw)
        stop(process)
        upstream.shutdown()
        upstream.server_close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing test's report ends with the tail of the gateway's log."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and _running:
        gw = _running[0]
        state = "running" if gw.process.poll() is None else f"exited ({gw.process.returncode})"
        report.sections.append((f"gateway log, last {LOG_TAIL_LINES} lines (process {state})",
                                gw.log_tail()))


# ---------------------------------------------------------------------------------------------
# Clients.


@pytest.fixture
def make_openai_client(gateway):
    """OpenAI clients on the gateway, closed after the test. No SDK retries: a retried request
    would hide what the gateway answered the first time. Each test gets its own connections,
    so a connection the gateway dropped cannot fail the next test (that bug has its own test:
    test_openai_errors.py::test_connection_is_reusable_or_announced_closed)."""
    import openai

    clients = []

    def make(api_key=None, base_url=None):
        client = openai.OpenAI(base_url=base_url or gateway.base_url, api_key=api_key or gateway.key,
                               max_retries=0, timeout=30)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def openai_client(make_openai_client):
    return make_openai_client()


@pytest.fixture
def fault_model(gateway):
    """`fault_model("broken")` -> a model whose endpoints answer that fault and have no health
    history yet (see FAULT_FAMILIES)."""
    return gateway.fault_model


@pytest.fixture
def recorder(gateway):
    gateway.recorder.clear()
    return gateway.recorder
