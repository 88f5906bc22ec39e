#!/usr/bin/env python3
"""Runs a guide's three booleans in C++ Manifold (manifold3d, double precision) on the very operands guidesmith
used, as written by `GUIDESMITH_DUMP_OPERANDS=DIR cargo test --release --test guide_random` (one case at a time
with GUIDESMITH_RANDOM_PLAN=N), and writes Manifold's results next to ours:

    trimmed = parts - block      body = pad + trimmed      guide = body - tools

    python3 examples/support/manifold_stages.py DIR CASE

writes DIR/case-CASE-{trimmed,body,guide}-manifold.obj; `cargo run --release --example mesh_check -- DIR/*.obj`
then reports every mesh (closed, manifold, self-intersecting pairs) with the same checker for both engines. The
peer environment (`../shared/bench/peers/setup_env.sh`) has manifold3d; only numpy and manifold3d are needed.
"""
import sys
from pathlib import Path

import manifold3d as mf
import numpy as np


def read_obj(path):
    verts, faces = [], []
    for line in open(path):
        if line.startswith("v "):
            verts.append([float(x) for x in line.split()[1:4]])
        elif line.startswith("f "):
            faces.append([int(x) - 1 for x in line.split()[1:4]])
    return np.array(verts, dtype=np.float64), np.array(faces, dtype=np.uint64)


def write_obj(path, verts, faces):
    with open(path, "w") as out:
        for v in verts:
            out.write("v %r %r %r\n" % (float(v[0]), float(v[1]), float(v[2])))
        for f in faces:
            out.write("f %d %d %d\n" % (f[0] + 1, f[1] + 1, f[2] + 1))


def solid(path):
    verts, faces = read_obj(path)
    m = mf.Manifold(mf.Mesh64(vert_properties=verts, tri_verts=faces))
    if m.status() != mf.Error.NoError:
        sys.exit(f"{path}: manifold3d refuses the operand: {m.status()}")
    return m


def save(m, path):
    mesh = m.to_mesh64()
    write_obj(path, np.asarray(mesh.vert_properties)[:, :3], np.asarray(mesh.tri_verts))
    print(f"{path.name}: {len(mesh.tri_verts)} triangles, volume {m.volume():.3f} mm^3")


def main():
    d, case = Path(sys.argv[1]), sys.argv[2]
    op = lambda stage: d / f"case-{case}-{stage}.obj"
    out = lambda stage: d / f"case-{case}-{stage}-manifold.obj"
    trimmed = solid(op("parts")) - solid(op("block"))
    save(trimmed, out("trimmed"))
    body = solid(op("pad")) + solid(op("trimmed"))
    save(body, out("body"))
    guide = solid(op("body")) - solid(op("tools"))
    save(guide, out("guide"))


if __name__ == "__main__":
    main()
