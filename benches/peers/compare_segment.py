#!/usr/bin/env python3
"""Times `guidesmith segment` against its peer pipeline (`segment_pipeline.py`: pydicom + vtkFlyingEdges3D + binary
STL), each as a whole process (start to exit, file written), alternately, and prints medians and their ratio.

    /tmp/peers/venv/bin/python benches/peers/compare_segment.py /work/shared/data/ct/skull-phantom-1mm \\
        --hu 300..3071 --runs 7 --guidesmith target/release/guidesmith

Runs alternate (guidesmith, peer, guidesmith, peer, ...) so both see the same machine. For each run the driver
records the wall time, the CPU time of the process (all threads, from wait4) and how many cores' worth of CPU
everything else used meanwhile (`busy`, from /proc/stat minus the run's own CPU): the machine is shared, so only
ratios measured in the same run mean anything. One warm-up run of each (not counted) puts the series in the page
cache. Output files go to --out-dir; the triangle count is read from each STL.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def busy_cpu_s() -> float:
    """CPU seconds used by the whole machine so far (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)) / os.sysconf("SC_CLK_TCK")


def children_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run(cmd: list[str]) -> dict:
    b0, c0, t0 = busy_cpu_s(), children_cpu_s(), time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    cpu = children_cpu_s() - c0
    busy = max(0.0, (busy_cpu_s() - b0 - cpu) / wall)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr}")
    return {"wall_s": wall, "cpu_s": cpu, "busy": busy}


def wait_quiet(max_wait_s: float, threshold: float = 0.25) -> float:
    """Waits up to `max_wait_s` until everything else uses under `threshold` cores; returns the last load seen."""
    t0 = time.perf_counter()
    while True:
        b0 = busy_cpu_s()
        time.sleep(0.5)
        load = (busy_cpu_s() - b0) / 0.5
        if load < threshold or time.perf_counter() - t0 >= max_wait_s:
            return load


def stl_triangles(path: Path) -> int:
    with open(path, "rb") as f:
        f.seek(80)
        return struct.unpack("<I", f.read(4))[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ct", type=Path, help="CT folder")
    ap.add_argument("--hu", default="300..3071", help="HU window for guidesmith (the peer's iso is MIN - 0.5)")
    ap.add_argument("--runs", type=int, default=7, help="timed runs of each (after one warm-up each)")
    ap.add_argument("--guidesmith", default="target/release/guidesmith", help="guidesmith binary")
    ap.add_argument("--python", default=sys.executable, help="Python with pydicom and vtk for the peer")
    ap.add_argument("--out-dir", type=Path, default=Path("/tmp/peers/segment-compare"), help="where the STLs go")
    ap.add_argument("--quiet-wait", type=float, default=0.0, help="before each run, wait up to S s for a quiet machine")
    args = ap.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    ours_stl, peer_stl = args.out_dir / "guidesmith.stl", args.out_dir / "vtk-flying-edges.stl"
    tools = {
        "guidesmith": [args.guidesmith, "segment", str(args.ct), "--hu", args.hu, "-o", str(ours_stl), "--quiet"],
        "pydicom + vtkFlyingEdges3D + STL": [
            args.python,
            str(HERE / "segment_pipeline.py"),
            str(args.ct),
            "--hu",
            args.hu,
            "-o",
            str(peer_stl),
        ],
    }
    for cmd in tools.values():
        run(cmd)
    results: dict[str, list[dict]] = {name: [] for name in tools}
    for i in range(args.runs):
        for name, cmd in tools.items():
            if args.quiet_wait > 0:
                wait_quiet(args.quiet_wait)
            r = run(cmd)
            results[name].append(r)
            print(f"run {i + 1}/{args.runs} {name}: wall {r['wall_s']:.3f} s, cpu {r['cpu_s']:.3f} s, "
                  f"busy {r['busy']:.2f}", file=sys.stderr)
    print(f"\n`{' '.join(tools['guidesmith'])}` against `{' '.join(tools['pydicom + vtkFlyingEdges3D + STL'])}`, "
          f"{args.runs} alternating runs each\n")
    print("| process | median wall s | min-max s | median cpu s | busy (median) | triangles |")
    print("|---|---|---|---|---|---|")
    for (name, rs), stl in zip(results.items(), (ours_stl, peer_stl)):
        walls = [r["wall_s"] for r in rs]
        print(f"| {name} | {statistics.median(walls):.3f} | {min(walls):.3f}-{max(walls):.3f} | "
              f"{statistics.median(r['cpu_s'] for r in rs):.3f} | {statistics.median(r['busy'] for r in rs):.2f} | "
              f"{stl_triangles(stl):,} |")
    ours, peer = results["guidesmith"], results["pydicom + vtkFlyingEdges3D + STL"]
    ratio = statistics.median(r["wall_s"] for r in ours) / statistics.median(r["wall_s"] for r in peer)
    pairs = statistics.median(a["wall_s"] / b["wall_s"] for a, b in zip(ours, peer))
    cpu = statistics.median(r["cpu_s"] for r in ours) / statistics.median(r["cpu_s"] for r in peer)
    print(f"\nguidesmith / peer: {ratio:.2f} (medians of wall time), {pairs:.2f} (median of the per-run ratios), "
          f"{cpu:.2f} (medians of CPU time)")


if __name__ == "__main__":
    main()
