"""edge-agent against the gateway it replaces: ThingsBoard IoT Gateway on the same devices,
the same broker and the same windows.

Installs ThingsBoard IoT Gateway 3.8.x into a venv of its own (``.cache/thingsboard-venv``;
it pins its own pymodbus), skipping with one clear line when it cannot. Serves the daemon
benchmark's site (20 polled devices at 1 s and 8 noise loggers polled every 60 s) with
``edge-agent simulate``, starts one local mosquitto on a free loopback port, and configures
both gateways for the same devices, registers and poll periods: edge-agent from its profiles,
ThingsBoard's Modbus connector from the same profiles (one timeseries key per point). Then
alternates ``--window`` seconds of each (``--rounds`` windows each; every window a fresh
start, measured after ``--warmup`` seconds), and prints per gateway the median over its
windows of RSS (the process and its children, sampled every second: the largest sample),
CPU (of one core, children included), MQTT messages per minute and bytes per message, and
the ratios ``rss_ratio_vs_thingsboard`` and ``cpu_ratio_vs_thingsboard`` (both must be < 1).

Nothing leaves the machine: ThingsBoard checks for updates over HTTPS at start, so it runs
with ``HTTPS_PROXY``/``HTTP_PROXY`` pointing at a dead loopback port (``NO_PROXY`` for the
broker), ``remoteConfiguration`` and ``remoteShell`` off, statistics off, memory storage.
It sends no telemetry before its ``getSessionLimits`` RPC is answered: a small responder on
the broker answers "no limits".

    .venv/bin/python benchmarks/peer.py [--window 120] [--rounds 3] [--warmup 20] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import paho.mqtt.client as mqtt  # noqa: E402

from benchmarks import daemon as bench  # noqa: E402
from drivers.profile import ProfileRegistry  # noqa: E402
from edge_agent.commands.demo import gateway_yaml  # noqa: E402
from sitemodel import load_site  # noqa: E402
from tests.helpers.mosquitto import Mosquitto  # noqa: E402
from tests.helpers.net import free_port  # noqa: E402

# Its Modbus connector pip-installs pymodbus 3.9.2 and pyserial-asyncio at import time when
# they are missing, which the dead proxy refuses: they are installed here with the gateway.
TB_REQUIREMENTS = ("thingsboard-gateway>=3.8,<3.9", "pymodbus==3.9.2", "pyserial-asyncio")
TB_VENV = REPO / ".cache" / "thingsboard-venv"
TB_MAIN = "from thingsboard_gateway.tb_gateway import main; main()"
EDGE_AGENT = "edge-agent"
THINGSBOARD = "thingsboard"
LOGGER_POLL_S = 60.0  # the demo config's interval for noise loggers' summary points
TB_TYPES = {"u16": "16uint", "i16": "16int", "bitfield": "16uint", "u32": "32uint",
            "i32": "32int", "f32": "32float", "u64": "64uint", "i64": "64int",
            "f64": "64float", "string": "string", "bool": "bits"}  # fmt: skip
TB_FUNCTIONS = {"coil": 1, "discrete": 2, "holding": 3, "input": 4}
SESSION_LIMITS = {
    "rateLimits": {"messages": "0:0,", "telemetryMessages": "0:0,", "telemetryDataPoints": "0:0,"},
    "gatewayRateLimits": {
        "messages": "0:0,", "telemetryMessages": "0:0,", "telemetryDataPoints": "0:0,"
    },
    "maxInflightMessages": 100,
    "maxPayloadSize": 65536,
}  # fmt: skip


def ensure_thingsboard(venv: Path) -> tuple[Path | None, str]:
    """The venv's python with ThingsBoard IoT Gateway installed, or (None, why not)."""
    python = venv / "bin" / "python"
    check = [str(python), "-c", "import thingsboard_gateway.tb_gateway, pymodbus, serial_asyncio"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python, "installed"
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
        done = subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", *TB_REQUIREMENTS],
            capture_output=True, text=True, timeout=900,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"cannot create its venv: {exc}"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["pip failed"])[-1]
        return None, f"pip install {' '.join(TB_REQUIREMENTS)} failed: {last}"
    return python, "installed now"


def thingsboard_config(site, endpoints, profiles, mqtt_port: int, conf: Path) -> None:
    """ThingsBoard's config dir: the package's defaults, our gateway and Modbus connector."""
    slaves = []
    for d in site.devices:
        profile = profiles.get(d.profile)
        items = []
        for p in profile.points:
            item = {
                "tag": p.name,
                "type": TB_TYPES[p.type],
                "functionCode": TB_FUNCTIONS[p.function],
                "objectsCount": p.register_count,
                "address": p.address,
            }
            if p.type == "bool":
                item["bitTargetType"] = "bool"
            if p.scale != 1.0:
                item["multiplier"] = p.scale
            items.append(item)
        ep = endpoints[d.bus]
        poll_s = LOGGER_POLL_S if d.kind == "noise_logger" else 1.0
        slaves.append({
            "host": ep.host, "port": ep.port, "type": "tcp", "method": "socket",
            "unitId": d.unit_id, "deviceName": d.name, "deviceType": d.kind,
            "timeout": 1, "byteOrder": "BIG",
            "wordOrder": "LITTLE" if profile.word_order == "little" else "BIG",
            "retries": 1, "retryOnEmpty": False, "retryOnInvalid": False,
            "pollPeriod": int(poll_s * 1000), "connectAttemptTimeMs": 1000,
            "connectAttemptCount": 5, "waitAfterFailedAttemptsMs": 2000,
            "attributes": [], "timeseries": items, "attributeUpdates": [], "rpc": [],
        })  # fmt: skip
    gateway = {
        "thingsboard": {
            "host": "127.0.0.1", "port": mqtt_port,
            "remoteShell": False, "remoteConfiguration": False, "latencyDebugMode": False,
            "statistics": {"enable": False, "statsSendPeriodInSeconds": 3600,
                           "customStatsSendPeriodInSeconds": 3600},
            "deviceFiltering": {"enable": False, "filterFile": "list.json"},
            "maxPayloadSizeBytes": 8196, "minPackSendDelayMS": 50, "minPackSizeToSend": 500,
            "checkConnectorsConfigurationInSeconds": 60, "handleDeviceRenaming": False,
            "security": {"type": "accessToken", "accessToken": "bench"},
            "qos": 1, "reportStrategy": {"type": "ON_RECEIVED"},
            "checkingDeviceActivity": {"checkDeviceInactivity": False,
                                       "inactivityTimeoutSeconds": 300,
                                       "inactivityCheckPeriodSeconds": 10},
        },
        "storage": {"type": "memory", "read_records_count": 100, "max_records_count": 100000},
        "grpc": {"enabled": False},
        "connectors": [{"type": "modbus", "name": "Modbus", "configuration": "modbus.json"}],
    }  # fmt: skip
    (conf / "tb_gateway.json").write_text(json.dumps(gateway, indent=1))
    (conf / "modbus.json").write_text(json.dumps({"master": {"slaves": slaves}}, indent=1))


class Broker:
    """Counts what each gateway publishes (by topic root) and answers ThingsBoard's
    ``getSessionLimits`` with "no limits"."""

    def __init__(self, port: int) -> None:
        self.lock = threading.Lock()
        self.counts = {EDGE_AGENT: [0, 0], THINGSBOARD: [0, 0]}
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-peer")
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_connect(self, client, userdata, flags, reason, properties) -> None:
        client.subscribe([("#", 0)])

    def _on_message(self, client, userdata, msg) -> None:
        if msg.topic.startswith("v1/devices/me/rpc/request/"):
            request = json.loads(msg.payload or b"{}")
            if request.get("method") == "getSessionLimits":
                reply = msg.topic.replace("/request/", "/response/")
                client.publish(reply, json.dumps(SESSION_LIMITS), qos=1)
        if msg.topic.startswith("v1/devices/me/rpc/response/"):
            return  # our own answer
        who = EDGE_AGENT if msg.topic.startswith("lifeline/") else THINGSBOARD
        with self.lock:
            self.counts[who][0] += 1
            self.counts[who][1] += len(msg.payload)

    def take(self, who: str) -> tuple[int, int]:
        with self.lock:
            got = tuple(self.counts[who])
            self.counts[who] = [0, 0]
        return got  # type: ignore[return-value]

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _tree_rss_cpu(proc: psutil.Process) -> tuple[int, float]:
    """RSS of the process and its children; CPU seconds of both (reaped children included)."""
    rss, cpu = 0, 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            rss += p.memory_info().rss
            t = p.cpu_times()
            cpu += t.user + t.system + (t.children_user + t.children_system if p is proc else 0)
        except psutil.Error:
            continue
    return rss, cpu


def run_window(who, start, broker, warmup: float, window: float, settled) -> dict[str, float]:
    """Start one gateway, wait for its first message, until ``settled(process)`` and
    ``warmup``, then measure ``window``."""
    proc = start()
    try:
        deadline = time.monotonic() + 300
        broker.take(who)
        while broker.counts[who][0] == 0 or not settled(proc):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{who} did not settle (exit code {proc.poll()})")
            time.sleep(0.2)
        time.sleep(warmup)
        ps = psutil.Process(proc.pid)
        broker.take(who)
        _, cpu0 = _tree_rss_cpu(ps)
        t0 = time.monotonic()
        peak = 0
        while time.monotonic() - t0 < window:
            peak = max(peak, _tree_rss_cpu(ps)[0])
            time.sleep(1.0)
        _, cpu1 = _tree_rss_cpu(ps)
        elapsed = time.monotonic() - t0
        messages, nbytes = broker.take(who)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return {
        "rss_mb": peak / 2**20,
        "cpu_percent": 100.0 * (cpu1 - cpu0) / elapsed,
        "messages_per_min": 60.0 * messages / elapsed,
        "bytes_per_message": nbytes / messages if messages else 0.0,
    }


def measure(args: argparse.Namespace, tb_python: Path) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="bench-peer-"))
    try:
        site_path = bench.bench_site(tmp)
        site = load_site(site_path)
        bench.warm_numba_cache()
        broker_proc = Mosquitto(tmp)
        broker_proc.start()
        sim, endpoints = bench.start_simulator(site_path)
        broker = Broker(broker_proc.port)
        try:
            state = tmp / "state"
            config = tmp / "gateway.yaml"
            leak = (
                f"{{recording_interval_s: 3600, night_window: {bench._night_away_from_now()},"
                " duration_s: 8, worker: {idle_exit_s: 5}}"
            )
            text = gateway_yaml(
                site, endpoints, state, site_path, logging_section="{level: warning, format: json}",
                uplink_url=f"mqtt://127.0.0.1:{broker_proc.port}", leak_section=leak,
            )  # fmt: skip
            config.write_text(text)
            tb_dir = tmp / "thingsboard"
            conf = tb_dir / "config"
            package = Path(
                subprocess.run(
                    [str(tb_python), "-c", "import thingsboard_gateway, os; "
                     "print(os.path.dirname(thingsboard_gateway.__file__))"],
                    capture_output=True, text=True, check=True,
                ).stdout.strip()
            )  # fmt: skip
            shutil.copytree(package / "config", conf)
            (tb_dir / "logs").mkdir()
            thingsboard_config(site, endpoints, ProfileRegistry(), broker_proc.port, conf)
            dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: no request gets out
            tb_env = {
                **os.environ, "TB_GW_CONFIG_DIR": str(conf), "HTTPS_PROXY": dead,
                "HTTP_PROXY": dead, "https_proxy": dead, "http_proxy": dead,
                "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
            }  # fmt: skip

            tb_out = open(tb_dir / "stdout.log", "ab")  # noqa: SIM115 - closed with the dir

            def start_thingsboard() -> subprocess.Popen:
                return subprocess.Popen(
                    [str(tb_python), "-c", TB_MAIN],
                    cwd=tb_dir, env=tb_env, stdout=tb_out, stderr=subprocess.STDOUT,
                )  # fmt: skip

            def start_edge_agent() -> subprocess.Popen:
                shutil.rmtree(state, ignore_errors=True)  # every window from a fresh outbox
                return subprocess.Popen(
                    [*bench.ENTRY, "run", "--config", str(config), "--state-dir", str(state)],
                    env=bench._env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip

            requested: set[int] = set()

            def edge_agent_settled(proc: subprocess.Popen) -> bool:
                """A first recording job is analysed and its worker gone: polling alone from
                here, as ThingsBoard does. A first start records nothing before tonight's slots
                (the persisted schedule), so the job is requested, as daemon.py does, once the
                gateway publishes (its signal handlers are in place by then)."""
                if proc.pid not in requested:
                    requested.add(proc.pid)
                    proc.send_signal(signal.SIGUSR1)
                done = bench._analysis(state).get("jobs", 0) >= 1
                return done and not psutil.Process(proc.pid).children()

            windows: dict[str, list[dict[str, float]]] = {THINGSBOARD: [], EDGE_AGENT: []}
            starters = {THINGSBOARD: start_thingsboard, EDGE_AGENT: start_edge_agent}
            settled = {THINGSBOARD: lambda proc: True, EDGE_AGENT: edge_agent_settled}
            for _ in range(args.rounds):
                for who in (THINGSBOARD, EDGE_AGENT):
                    got = run_window(
                        who, starters[who], broker, args.warmup, args.window, settled[who]
                    )
                    windows[who].append(got)
                    if not args.json:
                        print(who, {k: round(v, 2) for k, v in got.items()}, flush=True)
        finally:
            broker.stop()
            sim.terminate()
            sim.wait(10)
            broker_proc.stop()
    finally:
        if args.keep:
            print(f"work directory kept: {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return windows


def summarise(windows: dict[str, list[dict[str, float]]]) -> dict:
    out: dict = {}
    for who, runs in windows.items():
        for key in ("rss_mb", "cpu_percent", "messages_per_min", "bytes_per_message"):
            values = [r[key] for r in runs]
            out[f"{who}_{key}"] = round(statistics.median(values), 2)
            out[f"{who}_{key}_runs"] = [round(v, 2) for v in values]
    ea, tb = EDGE_AGENT, THINGSBOARD
    out["rss_ratio_vs_thingsboard"] = round(out[f"{ea}_rss_mb"] / out[f"{tb}_rss_mb"], 3)
    out["cpu_ratio_vs_thingsboard"] = round(out[f"{ea}_cpu_percent"] / out[f"{tb}_cpu_percent"], 3)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=float, default=120.0, help="seconds measured per window")
    parser.add_argument("--rounds", type=int, default=3, help="windows per gateway")
    parser.add_argument("--warmup", type=float, default=20.0, help="seconds before each window")
    parser.add_argument("--venv", type=Path, default=TB_VENV, help="ThingsBoard's own venv")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = parser.parse_args()
    tb_python, how = ensure_thingsboard(args.venv)
    if tb_python is None:
        # One clear line on stderr; stdout stays one JSON object with --json.
        print(f"peer benchmark skipped: ThingsBoard IoT Gateway not available ({how})",
              file=sys.stderr)  # fmt: skip
        if args.json:
            print(json.dumps({"skipped": how}))
        return 0
    result = summarise(measure(args, tb_python))
    result.update(window_s=args.window, rounds=args.rounds, cpu_count=os.cpu_count())
    bench.print_result(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
