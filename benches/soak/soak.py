#!/usr/bin/env python3
"""Soak: N minutes of mixed traffic with faults against the release gateway.

Starts the mock provider and the gateway (both the release `switchyard` binary), drives a mix
of requests from several threads (streams and not, four dialects, failover, upstream faults,
client disconnects, bad requests), samples the gateway's RSS and open file descriptors every
10 s into a CSV, then stops the gateway (SIGTERM flushes the ledger) and checks:

- RSS and fds plateau: the mean of the last third of the samples is within a tolerance of
  the mean of the middle third (the first third is warm-up);
- the ledger holds exactly one record per request that should have one, and a record for
  every generation id a client was given.

Standard library only. Run through benches/soak/run.sh.
"""

import argparse
import csv
import hashlib
import http.client
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

KEY = "sk-soak-client"

CONFIG = """server:
  listen: ["127.0.0.1:{port}"]
  threads: 2
  grace_period: 5s
  max_body_bytes: 1048576
storage:
  database_url: "sqlite://{dir}/ledger.db"
keys:
  - name: soak
    key_sha256: "{key_sha256}"
providers:
  good:
    dialect: openai
    base_url: "{mock}/v1"
    api_key_env: SOAK_UPSTREAM_KEY
    timeouts: {{ connect: 1s, first_byte: 2s, idle: 2s }}
  backup:
    dialect: openai
    base_url: "{mock}/v1"
    api_key_env: SOAK_UPSTREAM_KEY
  claude:
    dialect: anthropic
    base_url: "{mock}/v1"
    api_key_env: SOAK_UPSTREAM_KEY
  gem:
    dialect: gemini
    base_url: "{mock}/v1"
    api_key_env: SOAK_UPSTREAM_KEY
  dead:
    dialect: openai
    base_url: "http://127.0.0.1:{dead_port}/v1"
    timeouts: {{ connect: 1s }}
models:
  soak/ok:
    endpoints:
      - {{ provider: good, model: m, price: {{ prompt: 1, completion: 2 }} }}
  soak/failover-500:
    endpoints:
      - {{ provider: good, model: "m+status=500+f=1" }}
      - {{ provider: backup, model: m }}
  soak/failover-refused:
    endpoints:
      - {{ provider: dead, model: m }}
      - {{ provider: backup, model: m }}
  soak/429:
    endpoints:
      - {{ provider: good, model: "m+status=429+retry_after=3" }}
  soak/reset-mid:
    endpoints:
      - {{ provider: good, model: "m+reset=mid+chunks=30" }}
  soak/reset-before:
    endpoints:
      - {{ provider: good, model: "m+reset=before" }}
  soak/timeout:
    endpoints:
      - {{ provider: good, model: "m+delay_ms=2500" }}
  soak/no-usage:
    endpoints:
      - {{ provider: good, model: "m+no_usage" }}
  soak/malformed:
    endpoints:
      - {{ provider: good, model: "m+malformed" }}
  soak/truncated:
    endpoints:
      - {{ provider: good, model: "m+truncated" }}
  soak/long:
    endpoints:
      - {{ provider: good, model: "m+chunks=200+chunk_delay_ms=5" }}
  soak/big:
    endpoints:
      - {{ provider: good, model: "m+huge=262144" }}
  anthropic/claude:
    endpoints:
      - {{ provider: claude, model: claude-soak }}
  google/gemini:
    endpoints:
      - {{ provider: gem, model: gemini-soak }}
"""

# (weight, model, stream, client behaviour). Behaviours: "read" reads the whole answer;
# "leave-mid" reads a little of a stream then closes; "leave-early" closes before the answer;
# "bad-json" and "no-key" send requests that get no generation record.
MIX = [
    (20, "soak/ok", False, "read"),
    (20, "soak/ok", True, "read"),
    (5, "soak/failover-500", False, "read"),
    (5, "soak/failover-500", True, "read"),
    (3, "soak/failover-refused", False, "read"),
    (3, "soak/429", False, "read"),
    (3, "soak/reset-mid", True, "read"),
    (2, "soak/reset-mid", False, "read"),
    (3, "soak/reset-before", False, "read"),
    (1, "soak/timeout", True, "read"),
    (3, "soak/no-usage", True, "read"),
    (2, "soak/malformed", True, "read"),
    (2, "soak/truncated", True, "read"),
    (3, "soak/big", False, "read"),
    (4, "soak/long", True, "leave-mid"),
    (2, "soak/timeout", False, "leave-early"),
    (5, "anthropic/claude", True, "read"),
    (5, "google/gemini", True, "read"),
    (3, "anthropic/claude", False, "read"),
    (3, "google/gemini", False, "read"),
    (2, "no/such-model", False, "read"),
    (2, "soak/ok", False, "bad-json"),
    (1, "soak/ok", False, "no-key"),
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what, within=30):
    deadline = time.time() + within
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{what} exited early ({proc.returncode})")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"{what} did not start listening on {port}")


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.sent = 0
        self.expect_records = 0
        self.ids = set()
        self.statuses = {}
        self.errors = 0

    def add(self, expect_record, gen_id, status):
        with self.lock:
            self.sent += 1
            if expect_record:
                self.expect_records += 1
            if gen_id:
                self.ids.add(gen_id)
            self.statuses[status] = self.statuses.get(status, 0) + 1


def one_request(port, model, stream, behaviour, tally):
    body = json.dumps(
        {
            "model": model,
            "stream": stream,
            "provider": {"order": ["good", "dead", "backup"]},
            "messages": [{"role": "user", "content": "soak " + str(random.random())}],
        }
    )
    headers = {"Content-Type": "application/json", "Authorization": "Bearer " + KEY}
    expect_record = True
    if behaviour == "bad-json":
        body = body[: len(body) // 2]
        expect_record = False
    if behaviour == "no-key":
        del headers["Authorization"]
        expect_record = False
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        if behaviour == "leave-early":
            # The provider holds its answer 2.5 s; the client leaves after 200 ms.
            conn.connect()
            conn.sock.sendall(
                (
                    f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n{body}"
                ).encode()
            )
            time.sleep(0.2)
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            tally.add(True, None, "left")
            return
        conn.request("POST", "/v1/chat/completions", body=body, headers=headers)
        resp = conn.getresponse()
        gen_id = resp.getheader("x-generation-id")
        if behaviour == "leave-mid":
            resp.read(2000)
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            tally.add(True, gen_id, "left-mid")
            return
        try:
            resp.read()
        except (http.client.IncompleteRead, ConnectionError):
            pass  # a non-stream answer cut off by an upstream reset
        if expect_record and not gen_id:
            with tally.lock:
                tally.errors += 1
        tally.add(expect_record, gen_id, resp.status)
    except (OSError, http.client.HTTPException) as e:
        with tally.lock:
            tally.errors += 1
        tally.add(expect_record, None, type(e).__name__)
    finally:
        conn.close()


def worker(port, deadline, tally, seed):
    rng = random.Random(seed)
    weights = [m[0] for m in MIX]
    while time.time() < deadline:
        _, model, stream, behaviour = rng.choices(MIX, weights)[0]
        one_request(port, model, stream, behaviour, tally)


def sample(pid):
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return rss, fds


def mean(xs):
    return sum(xs) / len(xs) if xs else 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--interval", type=float, default=10)
    ap.add_argument("--csv", default="soak.csv")
    ap.add_argument("--rss-tolerance", type=float, default=0.10, help="allowed growth, last third vs middle third")
    ap.add_argument("--fd-slack", type=int, default=16, help="allowed extra fds, last third vs middle third")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="switchyard-soak-")
    mock_port, gw_port = free_port(), free_port()
    mock = subprocess.Popen(
        [args.bin, "mock", "--listen", f"127.0.0.1:{mock_port}"],
        stdout=subprocess.DEVNULL,
        stderr=open(os.path.join(work, "mock.log"), "w"),
    )
    wait_port(mock_port, mock, "the mock")
    config = os.path.join(work, "config.yaml")
    with open(config, "w") as f:
        f.write(
            CONFIG.format(
                port=gw_port,
                dir=work,
                key_sha256=hashlib.sha256(KEY.encode()).hexdigest(),
                mock=f"http://127.0.0.1:{mock_port}",
                dead_port=free_port(),
            )
        )
    env = dict(os.environ, SOAK_UPSTREAM_KEY="sk-soak-upstream", RUST_LOG="warn")
    log_path = os.path.join(work, "gateway.log")
    gw = subprocess.Popen(
        [args.bin, "serve", "-c", config],
        stdout=subprocess.DEVNULL,
        stderr=open(log_path, "w"),
        env=env,
    )
    try:
        wait_port(gw_port, gw, "the gateway")
        tally = Tally()
        start = time.time()
        deadline = start + args.minutes * 60
        threads = [
            threading.Thread(target=worker, args=(gw_port, deadline, tally, i), daemon=True)
            for i in range(args.workers)
        ]
        for t in threads:
            t.start()
        rows = []
        with open(args.csv, "w", newline="") as f:
            out = csv.writer(f)
            out.writerow(["seconds", "rss_kb", "fds", "requests"])
            while True:
                rss, fds = sample(gw.pid)
                row = [round(time.time() - start), rss, fds, tally.sent]
                rows.append(row)
                out.writerow(row)
                f.flush()
                print(f"t={row[0]:>5}s rss={rss / 1024:7.1f} MiB fds={fds:4} requests={row[3]}", flush=True)
                if time.time() >= deadline:
                    break
                time.sleep(min(args.interval, max(0.0, deadline - time.time())))
        for t in threads:
            t.join(timeout=60)
        # Let in-flight requests end, then stop gracefully: SIGTERM flushes the ledger.
        gw.send_signal(signal.SIGTERM)
        gw.wait(timeout=60)
    finally:
        if gw.poll() is None:
            gw.kill()
        mock.kill()

    failures = []
    db = sqlite3.connect(os.path.join(work, "ledger.db"))
    recorded = [r[0] for r in db.execute("SELECT id FROM generations")]
    db.close()
    missing = tally.ids - set(recorded)
    print(
        f"\nrequests sent: {tally.sent}, expecting a record: {tally.expect_records}, "
        f"records in the ledger: {len(recorded)}, ids seen by clients: {len(tally.ids)}"
    )
    print("client-side statuses:", dict(sorted(tally.statuses.items(), key=lambda kv: str(kv[0]))))
    if len(recorded) != tally.expect_records:
        failures.append(f"ledger holds {len(recorded)} records for {tally.expect_records} requests")
    if missing:
        failures.append(f"{len(missing)} generation ids given to clients have no record, e.g. {sorted(missing)[:3]}")
    if len(set(recorded)) != len(recorded):
        failures.append("duplicate records")

    third = len(rows) // 3
    if third >= 1:
        mid, last = rows[third : 2 * third], rows[2 * third :]
        rss_mid, rss_last = mean([r[1] for r in mid]), mean([r[1] for r in last])
        fd_mid, fd_last = max(r[2] for r in mid), max(r[2] for r in last)
        print(f"RSS mean: middle third {rss_mid / 1024:.1f} MiB, last third {rss_last / 1024:.1f} MiB")
        print(f"fds max: middle third {fd_mid}, last third {fd_last}")
        if rss_last > rss_mid * (1 + args.rss_tolerance):
            failures.append(f"RSS grew {100 * (rss_last / rss_mid - 1):.1f}% (tolerance {100 * args.rss_tolerance:.0f}%)")
        if fd_last > fd_mid + args.fd_slack:
            failures.append(f"fds grew from {fd_mid} to {fd_last}")
    else:
        failures.append("too few samples to judge a plateau (run at least 30 s x 3)")
    with open(log_path) as f:
        if "panicked" in f.read():
            failures.append(f"the gateway panicked: see {log_path}")
    print(f"samples: {args.csv}; gateway log and ledger: {work}")
    if failures:
        print("SOAK FAILED:\n  " + "\n  ".join(failures))
        sys.exit(1)
    print("soak passed")


if __name__ == "__main__":
    main()
