"""Scale-out on this machine: 3 earshot replicas behind haproxy, Prometheus evaluating the autoscaler's
query, then a rolling restart under load. Not a test; prints figures (see bench/README.md).

Run: node --import tsx scripts/run-python.ts bench/scale_out.py [--burst-seconds 75] [--burst-in-flight 24]

1. Renders the Helm chart (`helm template stt deploy/helm/earshot --set autoscaling.enabled=true
   --set earshot.workersPerModel=1`, helm from scripts/helm.ts) and takes the KEDA ScaledObject's query
   and threshold as they are.
2. Starts 3 replicas from this checkout (`node --import tsx src/main.ts`, EARSHOT_DEFAULT_MODEL=tiny.en,
   EARSHOT_WORKERS_PER_MODEL=1, EARSHOT_PUBLIC_METRICS=true, each on its own loopback port), haproxy
   (Debian's package) in front of them health-checking /ready, and Prometheus (Debian's package)
   scraping the three every 2 s with the labels a ServiceMonitor would give them (namespace, service).
3. Burst: N requests kept in flight through haproxy for a fixed time, then none. The query is read from
   Prometheus every 2 s: it must rise past threshold × replicas (the point where KEDA's HPA would add
   a replica) during the burst and fall back under it afterwards.
4. Rolling restart: 8 requests kept in flight (every other one a stream) while each replica in turn gets
   SIGTERM, is started again on its port and waited for until haproxy sends to it again; then the
   failures are counted (must be 0) and latencies printed.

Everything listens on 127.0.0.1 only; every loop has a deadline.
"""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import json
import math
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml  # type: ignore[import-untyped]  # PyYAML: a dependency of huggingface_hub

import benchlib as b

REPLICAS = 3
SCRAPE_SECONDS = 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rendered_scaler() -> tuple[str, float, int]:
    """The ScaledObject's query, threshold and maxReplicaCount, from `helm template`."""
    out = subprocess.run(
        ["node", "--import", "tsx", "scripts/helm.ts", "template", "stt", "deploy/helm/earshot", "--namespace", "default",
         "--set", "autoscaling.enabled=true", "--set", "earshot.workersPerModel=1"],
        cwd=b.ROOT, capture_output=True, text=True, timeout=900, check=True,
    ).stdout
    scaled = next(doc for doc in yaml.safe_load_all(out) if doc and doc["kind"] == "ScaledObject")
    trigger = scaled["spec"]["triggers"][0]["metadata"]
    return trigger["query"], float(trigger["threshold"]), int(scaled["spec"]["maxReplicaCount"])


# ---------------------------------------------------------------- the replicas, haproxy, Prometheus


class Replica:
    def __init__(self, index: int, port: int) -> None:
        self.index, self.port = index, port
        self.server: b.Earshot | None = None

    def start(self) -> None:
        self.server = b.Earshot(
            env={
                "PORT": str(self.port),
                "EARSHOT_DEFAULT_MODEL": "tiny.en",
                "EARSHOT_WORKERS_PER_MODEL": "1",
                "EARSHOT_PUBLIC_METRICS": "true",
                "EARSHOT_SHUTDOWN_GRACE_MS": "30000",
                "EARSHOT_LOG_LEVEL": "warn",
            },
            label=f"replica {self.index}",
        )
        # EARSHOT_LOG_LEVEL=warn hides "earshot listening": wait on the port instead.
        self.server.url = f"http://127.0.0.1:{self.port}"

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/ready", timeout=3) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def wait_ready(self, timeout: float = 180) -> float:
        assert self.server is not None
        started = time.perf_counter()
        while not self.ready():
            if self.server.process.poll() is not None:
                raise RuntimeError(f"replica {self.index} exited with code {self.server.process.returncode}")
            if time.perf_counter() - started > timeout:
                raise RuntimeError(f"replica {self.index} not ready within {timeout} s")
            time.sleep(0.1)
        return time.perf_counter() - started

    def probe(self) -> str:
        """What a readiness probe of /ready gets now."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/ready", timeout=3) as response:
                return str(response.status)
        except urllib.error.HTTPError as error:
            return str(error.code)
        except urllib.error.URLError as error:
            return "refused" if isinstance(error.reason, ConnectionRefusedError) else str(error.reason)
        except OSError as error:
            return type(error).__name__

    def terminate(self, timeout: float = 45) -> float:
        """SIGTERM, as the kubelet sends it; returns the seconds the replica took to exit."""
        assert self.server is not None
        process = self.server.process
        started = time.perf_counter()
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise RuntimeError(f"replica {self.index} did not exit within {timeout} s of SIGTERM")
        return time.perf_counter() - started


HAPROXY_CONFIG = """
global
    maxconn 512
    stats socket {sock} mode 600 level admin
defaults
    mode http
    timeout connect 2s
    timeout client 180s
    timeout server 180s
    # A replica that stopped accepting (SIGTERM closes its listener at once) refuses the connection:
    # try again on another replica, as a Service's endpoints would no longer list it.
    retries 3
    option redispatch 1
frontend earshot
    bind 127.0.0.1:{port}
    default_backend replicas
backend replicas
    balance leastconn
    option httpchk GET /ready
    http-check expect status 200
    default-server inter 1s fall 1 rise 2
    http-response set-header x-served-by %s
{servers}
"""

PROMETHEUS_CONFIG = """
global:
  scrape_interval: {scrape}s
  evaluation_interval: {scrape}s
scrape_configs:
  - job_name: earshot
    metrics_path: /metrics
    static_configs:
      - targets: [{targets}]
        # The labels a ServiceMonitor gives earshot's pods, which the chart's query selects on.
        labels: {{namespace: default, service: stt-earshot}}
"""


class Stack:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.replicas = [Replica(i + 1, free_port()) for i in range(REPLICAS)]
        self.lb_port = free_port()
        self.prom_port = free_port()
        self.sock = directory / "haproxy.sock"
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        started = time.perf_counter()
        for replica in self.replicas:
            replica.start()
        for replica in self.replicas:
            replica.wait_ready()
        print(f"3 replicas ready in {time.perf_counter() - started:.1f} s on ports "
              f"{', '.join(str(r.port) for r in self.replicas)}")
        servers = "\n".join(f"    server r{r.index} 127.0.0.1:{r.port} check" for r in self.replicas)
        config = self.directory / "haproxy.cfg"
        config.write_text(HAPROXY_CONFIG.format(sock=self.sock, port=self.lb_port, servers=servers))
        subprocess.run([b.which_or_fail("haproxy"), "-c", "-q", "-f", str(config)], check=True)
        self.processes.append(subprocess.Popen([b.which_or_fail("haproxy"), "-db", "-f", str(config)],
                                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        prom_config = self.directory / "prometheus.yml"
        targets = ", ".join(f"'127.0.0.1:{r.port}'" for r in self.replicas)
        prom_config.write_text(PROMETHEUS_CONFIG.format(scrape=SCRAPE_SECONDS, targets=targets))
        self.processes.append(subprocess.Popen(
            [b.which_or_fail("prometheus"), f"--config.file={prom_config}",
             f"--storage.tsdb.path={self.directory / 'tsdb'}", f"--web.listen-address=127.0.0.1:{self.prom_port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.perf_counter() + 60
        while self.up_targets() < REPLICAS or self.servers_up() < REPLICAS:
            if time.perf_counter() > deadline:
                raise RuntimeError("haproxy or Prometheus did not see the 3 replicas within 60 s")
            time.sleep(0.5)
        print(f"haproxy on 127.0.0.1:{self.lb_port}, Prometheus on 127.0.0.1:{self.prom_port}: 3 targets up")

    def haproxy(self, command: str) -> str:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(2)
            sock.connect(str(self.sock))
            sock.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def server_status(self) -> dict[str, str]:
        try:
            rows = csv.DictReader(io.StringIO(self.haproxy("show stat").lstrip("# ")))
            return {row["svname"]: row["status"] for row in rows if row["pxname"] == "replicas" and row["svname"].startswith("r")}
        except OSError:
            return {}

    def backend_counters(self) -> dict[str, str]:
        """haproxy's counters for the backend: connection retries, redispatches, errors."""
        try:
            rows = csv.DictReader(io.StringIO(self.haproxy("show stat").lstrip("# ")))
            row = next(r for r in rows if r["pxname"] == "replicas" and r["svname"] == "BACKEND")
        except (OSError, StopIteration):
            return {}
        return {key: row.get(key, "") for key in ("wretr", "wredis", "econ", "eresp", "dresp")}

    def servers_up(self) -> int:
        return sum(status == "UP" for status in self.server_status().values())

    def query(self, promql: str) -> float | None:
        url = f"http://127.0.0.1:{self.prom_port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                result = json.loads(response.read())["data"]["result"]
        except (OSError, ValueError, KeyError):
            return None
        return float(result[0]["value"][1]) if result else None

    def up_targets(self) -> int:
        return int(self.query('sum(up{job="earshot"})') or 0)

    def stop(self) -> None:
        for replica in self.replicas:
            if replica.server:
                replica.server.stop()
        for process in self.processes:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()


# ---------------------------------------------------------------- load


@dataclass
class Outcome:
    ok: bool
    stream: bool
    seconds: float
    started: float
    served_by: str
    detail: str = ""


@dataclass
class Load:
    """`in_flight` client threads, each sending one request after another through haproxy until stopped."""

    url: str
    clips: list[Path]
    in_flight: int
    streams: bool
    deadline: float
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    active: int = 0

    def start(self) -> "Load":
        counter = itertools.count()
        lock = threading.Lock()

        def client(slot: int) -> None:
            while not self._stop.is_set() and time.perf_counter() < self.deadline:
                with lock:
                    n = next(counter)
                    self.active += 1
                stream = self.streams and n % 2 == 1
                outcome = self.send(self.clips[n % len(self.clips)], stream)
                with lock:
                    self.active -= 1
                    self.outcomes.append(outcome)

        self._threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(self.in_flight)]
        for thread in self._threads:
            thread.start()
        return self

    def halt(self) -> None:
        """No new requests; those in flight finish."""
        self._stop.set()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(200)

    def send(self, clip: Path, stream: bool) -> Outcome:
        fields = {"model": "whisper-1", "response_format": "json", **({"stream": "true"} if stream else {})}
        body, content_type = b.multipart(clip, fields)
        request = urllib.request.Request(f"{self.url}/v1/audio/transcriptions", data=body, method="POST",
                                         headers={"content-type": content_type})
        started = time.perf_counter()
        served_by = "?"
        try:
            with urllib.request.urlopen(request, timeout=150) as response:
                served_by = response.headers.get("x-served-by", "?")
                payload = response.read().decode()
            seconds = time.perf_counter() - started
            if stream:
                events = [line[6:] for line in payload.splitlines() if line.startswith("data: ")]
                done = [json.loads(e) for e in events if e != "[DONE]" and '"transcript.text.done"' in e]
                errors = [e for e in events if e.startswith('{"error"')]
                ok = bool(done) and events[-1:] == ["[DONE]"] and not errors and bool(done[0]["text"].strip())
                return Outcome(ok, True, seconds, started, served_by, "" if ok else payload[:300])
            text = json.loads(payload).get("text", "")
            return Outcome(bool(text.strip()), False, seconds, started, served_by, "" if text.strip() else payload[:300])
        except urllib.error.HTTPError as error:
            detail = f"HTTP {error.code}: {error.read()[:300]!r}"
            return Outcome(False, stream, time.perf_counter() - started, started, error.headers.get("x-served-by", "?"), detail)
        except (OSError, ValueError) as error:
            return Outcome(False, stream, time.perf_counter() - started, started, served_by, repr(error))


def latency_line(outcomes: list[Outcome]) -> str:
    seconds = sorted(o.seconds for o in outcomes if o.ok)
    if not seconds:
        return "no successful requests"
    p95 = seconds[min(len(seconds) - 1, math.ceil(0.95 * len(seconds)) - 1)]
    return f"latency median {statistics.median(seconds):.2f} s, p95 {p95:.2f} s, max {seconds[-1]:.2f} s"


# ---------------------------------------------------------------- the two experiments


def burst(stack: Stack, clips: list[Path], query: str, threshold: float, max_replicas: int,
          burst_seconds: float, in_flight: int) -> None:
    trigger_at = threshold * REPLICAS
    print(f"\n== Burst: {in_flight} requests in flight for {burst_seconds:.0f} s, then none")
    print(f"query (the chart's ScaledObject): {query}")
    print(f"threshold {threshold:g} jobs per replica (AverageValue): with {REPLICAS} replicas KEDA's HPA adds "
          f"replicas once the query exceeds {trigger_at:g} (desired = ceil(query / {threshold:g}), at most {max_replicas})")
    # A window of idle samples first, so that the averaged signal starts from a real baseline.
    baseline_deadline = time.perf_counter() + 90
    while time.perf_counter() < baseline_deadline:
        if stack.query('count(earshot_jobs_in_flight{service="stt-earshot"} offset 65s)') is not None:
            break
        time.sleep(2)
    print(f"idle baseline: query = {stack.query(query)}")
    print(f"{'t (s)':>6} {'in flight':>9} {'query':>7} {'per replica':>11} {'desired':>7}  raw queued+running now")
    instant = 'sum(earshot_queue_depth{service="stt-earshot"}) + sum(earshot_jobs_in_flight{service="stt-earshot"})'
    start = time.perf_counter()
    load = Load(f"http://127.0.0.1:{stack.lb_port}", clips, in_flight, streams=False, deadline=start + burst_seconds).start()
    peak, rose_at, fell_at, stopped_at = 0.0, None, None, None
    deadline = start + burst_seconds + 180
    while time.perf_counter() < deadline:
        now = time.perf_counter() - start
        if stopped_at is None and now >= burst_seconds:
            load.halt()
            stopped_at = now
        value = stack.query(query)
        raw = stack.query(instant)
        if value is not None:
            peak = max(peak, value)
            desired = min(max_replicas, max(1, math.ceil(value / threshold - 1e-9)))
            if rose_at is None and value > trigger_at:
                rose_at = now
            if rose_at is not None and fell_at is None and stopped_at is not None and value <= trigger_at:
                fell_at = now
            print(f"{now:6.0f} {load.active:9d} {value:7.2f} {value / REPLICAS:11.2f} "
                  f"{desired:7d}  {raw if raw is not None else float('nan'):.0f}")
        if fell_at is not None and value is not None and value < 0.05:
            break
        time.sleep(4)
    load.stop()
    ok = sum(o.ok for o in load.outcomes)
    print(f"burst requests: {ok} ok, {len(load.outcomes) - ok} failed; {latency_line(load.outcomes)}")
    print(f"peak query {peak:.2f} ({peak / REPLICAS:.2f} per replica, threshold {threshold:g}); "
          f"rose past {trigger_at:g} at t={rose_at if rose_at is None else round(rose_at)} s, "
          f"fell back to ≤ {trigger_at:g} at t={fell_at if fell_at is None else round(fell_at)} s "
          f"(load stopped at t={stopped_at if stopped_at is None else round(stopped_at)} s)")
    print("RESULT burst: " + ("rose past the threshold and fell back" if rose_at is not None and fell_at is not None
                               else "did NOT both rise past the threshold and fall back"))


def rolling_restart(stack: Stack, clips: list[Path]) -> None:
    print("\n== Rolling restart: 8 requests in flight through haproxy (every other one a stream); "
          "SIGTERM each replica in turn, start it again, wait until haproxy sends to it")
    counters_before = stack.backend_counters()
    start = time.perf_counter()
    load = Load(f"http://127.0.0.1:{stack.lb_port}", clips, 8, streams=True, deadline=start + 600).start()
    time.sleep(8)
    for replica in stack.replicas:
        in_flight_before = load.active
        seen: dict[str, float] = {}

        def watch_drain() -> None:
            # What the readiness probe and haproxy see while the replica drains.
            deadline = time.perf_counter() + 10
            while time.perf_counter() < deadline and ("probe" not in seen or "down" not in seen):
                answer = replica.probe() if "probe" not in seen else "200"
                if answer != "200":
                    seen["probe"] = time.perf_counter() - terms_at
                    probe_answers.append(answer)
                if "down" not in seen and stack.server_status().get(f"r{replica.index}") not in ("UP", None):
                    seen["down"] = time.perf_counter() - terms_at
                time.sleep(0.05)

        probe_answers: list[str] = []
        watcher = threading.Thread(target=watch_drain, daemon=True)
        terms_at = time.perf_counter()
        watcher.start()
        exit_seconds = replica.terminate()
        watcher.join(12)
        replica.start()
        ready_seconds = replica.wait_ready()
        deadline = time.perf_counter() + 30
        while stack.server_status().get(f"r{replica.index}") != "UP" and time.perf_counter() < deadline:
            time.sleep(0.2)
        back_seconds = time.perf_counter() - terms_at
        drained = [o for o in load.outcomes if o.served_by == f"r{replica.index}" and o.started < terms_at
                   and o.started + o.seconds > terms_at]
        print(f"t={terms_at - start:5.1f} s  replica {replica.index}: SIGTERM with {in_flight_before} requests in flight "
              f"overall; /ready {probe_answers[0] if probe_answers else '?'} after {seen.get('probe', float('nan')):.2f} s, "
              f"haproxy marked it down after {seen.get('down', float('nan')):.2f} s; exited after {exit_seconds:.1f} s, having finished {sum(o.ok for o in drained)} of its "
              f"requests in flight ({sum(not o.ok for o in drained)} failed); restarted, ready after {ready_seconds:.1f} s, "
              f"back in haproxy {back_seconds:.1f} s after SIGTERM")
        time.sleep(5)
    load.stop()
    outcomes = load.outcomes
    failed = [o for o in outcomes if not o.ok]
    streams = [o for o in outcomes if o.stream]
    by_server = {name: sum(o.served_by == name for o in outcomes) for name in sorted({o.served_by for o in outcomes})}
    print(f"requests: {len(outcomes)} ({len(streams)} streams) over {time.perf_counter() - start:.0f} s; "
          f"ok {len(outcomes) - len(failed)}, failed {len(failed)}; served by {by_server}")
    print(f"{latency_line(outcomes)} (non-stream: {latency_line([o for o in outcomes if not o.stream])}; "
          f"streams: {latency_line(streams)})")
    counters = stack.backend_counters()
    print("haproxy during the restarts: " + ", ".join(
        f"{key} {int(counters.get(key) or 0) - int(counters_before.get(key) or 0)}" for key in counters)
        + " (wretr: connections retried, wredis: sent to another replica, econ: connection errors, eresp: response errors)")
    for outcome in failed[:10]:
        print(f"  failed: stream={outcome.stream} after {outcome.seconds:.2f} s via {outcome.served_by}: {outcome.detail}")
    print("RESULT rolling restart: " + ("0 failed requests" if not failed else f"{len(failed)} FAILED requests"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--burst-seconds", type=float, default=75)
    parser.add_argument("--burst-in-flight", type=int, default=24)
    args = parser.parse_args()
    b.print_machine("scale-out: 3 replicas, haproxy, Prometheus")
    query, threshold, max_replicas = rendered_scaler()
    with tempfile.TemporaryDirectory(prefix="earshot-scale-") as tmp:
        directory = Path(tmp)
        # Short real clips: JFK (11 s) and pieces of it and of the licence reading.
        jfk = b.load("jfk.flac")
        multi = b.load("multilingual.mp3")
        clips = [
            b.write_flac(directory / "jfk.flac", jfk),
            b.write_flac(directory / "jfk_0-5.flac", b.cut(jfk, 0, 5)),
            b.write_flac(directory / "mit_0-10.flac", b.cut(multi, 0, 10)),
            b.write_flac(directory / "mit_10-20.flac", b.cut(multi, 10, 20)),
        ]
        stack = Stack(directory)
        try:
            stack.start()
            burst(stack, clips, query, threshold, max_replicas, args.burst_seconds, args.burst_in_flight)
            rolling_restart(stack, clips)
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
