"""Simulator costs, each against a named baseline run side by side in this process.

1. render: one 8 s noise-logger recording of the reference site (leak carried along the pipe
   network from an absolute-time source, ambient, interferers) vs ``dsp.synth.recording`` of a
   comparable one-pipe scene (the synthesis it is built from);
2. tick: ``SiteSimulator.step()`` over the 18 devices of the reference site (dynamics plus
   re-encoding every register) vs the tick period it must fit in (``TICK_WALL_S``);
3. transfer: fetching one finished 8 s recording block by block over loopback Modbus TCP
   (write block index, read 120 registers; 274 times) from the site simulator vs the same
   requests to a bare ``SimServer`` unit without device hooks.

    .venv/bin/python benchmarks/sim.py [--json] [--repeat N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("NUMBA_CACHE_DIR", str(REPO / ".cache" / "numba"))

import logging  # noqa: E402

from pymodbus.client import AsyncModbusTcpClient  # noqa: E402

from drivers.profile import ProfileRegistry  # noqa: E402
from drivers.sim.clock import ManualClock  # noqa: E402
from drivers.sim.noise_logger import render_recording  # noqa: E402
from drivers.sim.scenarios import read_scenarios  # noqa: E402
from drivers.sim.server import SimServer  # noqa: E402
from drivers.sim.site_sim import TICK_WALL_S, SiteSimulator  # noqa: E402
from dsp import synth  # noqa: E402
from sitemodel import load_site  # noqa: E402

logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
FS = 4096.0
DURATION_S = 8.0


def _best(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def bench_render(site, repeat: int) -> dict:
    device = site.device("nl-02")
    leaks = read_scenarios(site).leaks
    ours = _best(
        lambda: render_recording(
            site, device, leaks=leaks, t0=3600.0, duration_s=DURATION_S, fs=FS, seed=1
        ),
        repeat,
    )
    scene = synth.Scene(material="ductile_iron", leak_distance_m=63.0, diameter_mm=300.0)
    base = _best(lambda: synth.recording(FS, DURATION_S, scene=scene, seed=1), repeat)
    return {"render_ms": ours * 1e3, "synth_recording_ms": base * 1e3, "ratio": ours / base}


def bench_tick(site, repeat: int) -> dict:
    clock = ManualClock()
    sim = SiteSimulator(site, clock=clock)

    def hundred_steps():
        for _ in range(100):
            clock.advance(6.0)  # speed 60 at a 0.1 s tick
            sim.step()

    per_step = _best(hundred_steps, repeat) / 100
    asyncio.run(sim.stop())
    return {
        "devices": len(site.devices),
        "step_ms": per_step * 1e3,
        "tick_budget_ms": TICK_WALL_S * 1e3,
        "share_of_one_core": per_step / TICK_WALL_S,
    }


async def _fetch(client, unit: int, blocks: int, index_addr: int, block_addr: int) -> None:
    for i in range(blocks):
        await client.write_register(index_addr, i, device_id=unit)
        await client.read_holding_registers(block_addr, count=120, device_id=unit)


async def _transfer(site, repeat: int) -> dict:
    clock = ManualClock()
    sim = SiteSimulator(site, clock=clock, port_base=0, tick_s=0.05)
    await sim.start()
    rec = ProfileRegistry().get("noise-logger-nl200").recording
    logger = sim.models["nl-02"]
    logger.start(clock.elapsed())
    clock.advance(DURATION_S + 1)
    while logger.rec_status != 2:
        await asyncio.sleep(0.02)
    blocks = -(-int(FS * DURATION_S) // rec.block_size)
    ep = sim.endpoints["water"]
    client = AsyncModbusTcpClient(ep.host, port=ep.port, timeout=2, retries=0)
    await client.connect()
    bare = SimServer("tcp")
    unit = bare.add_unit(1)
    unit.set_holding(rec.block_index, [0])
    unit.set_holding(rec.block, [0] * rec.block_size)
    await bare.start()
    bare_client = AsyncModbusTcpClient("127.0.0.1", port=bare.port, timeout=2, retries=0)
    await bare_client.connect()
    ours = base = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        await _fetch(client, 2, blocks, rec.block_index, rec.block)
        ours = min(ours, time.perf_counter() - t)
        t = time.perf_counter()
        await _fetch(bare_client, 1, blocks, rec.block_index, rec.block)
        base = min(base, time.perf_counter() - t)
    client.close()
    bare_client.close()
    await bare.stop()
    await sim.stop()
    return {
        "blocks": blocks,
        "site_sim_s": ours,
        "bare_server_s": base,
        "ratio": ours / base,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    site = load_site(REPO / "seeds" / "site.yaml")
    results = {
        "render": bench_render(site, args.repeat),
        "tick": bench_tick(site, args.repeat),
        "transfer": asyncio.run(_transfer(site, max(1, args.repeat // 2))),
    }
    if args.json:
        print(json.dumps(results))
        return 0
    r, t, x = results["render"], results["tick"], results["transfer"]
    print(
        f"render 8 s recording: {r['render_ms']:.1f} ms vs dsp.synth.recording "
        f"{r['synth_recording_ms']:.1f} ms (ratio {r['ratio']:.2f})"
    )
    print(
        f"tick over {t['devices']} devices: {t['step_ms']:.2f} ms per step, "
        f"{100 * t['share_of_one_core']:.1f} % of one core at a {t['tick_budget_ms']:.0f} ms tick"
    )
    print(
        f"transfer of {x['blocks']} blocks over loopback TCP: {x['site_sim_s']:.2f} s vs bare "
        f"SimServer {x['bare_server_s']:.2f} s (ratio {x['ratio']:.2f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
