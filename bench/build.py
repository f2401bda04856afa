"""Build benchmark: immute's builder against `docker build`, in one run.

Run: .venv/bin/python bench/build.py [--warm-runs N] [--rebuilds N] [--no-docker]

On a copy of examples/flask-app (Flask + gunicorn from the package index), prints:
- immute cold build (fresh store, no installer cache: neither uv's nor pip's) and
  warm rebuild after a code-only change, end to end through the `immute` program,
  and their ratio;
- the same for `docker build` of the app's Dockerfile where an engine answers
  (the base image is made once with debootstrap, see bench/docker_base.py);
- digest stability: the same inputs built twice from scratch;
- the store's size after N code-only rebuilds against (dependency layer + N app layers).
Targets (issue 3): warm >= 2x faster than Docker's warm, cold no slower than
Docker's cold, identical digests, store <= 1.2x.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "flask-app"
sys.path.insert(0, str(Path(__file__).resolve().parent))


def immute_env(state: Path, *, no_cache: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SOURCE_DATE_EPOCH",)}
    env["IMMUTE_STATE_DIR"] = str(state)
    if no_cache:
        env["PIP_NO_CACHE_DIR"] = "1"
        env["UV_NO_CACHE"] = "1"
    return env


def compile_immute() -> None:
    """Write immute's bytecode, as installing it from a wheel does. A checkout
    installed editable under $PYTHONDONTWRITEBYTECODE (as on CI machines) would
    otherwise compile every module on every start and time the compiler."""
    import compileall

    import immute

    compileall.compile_dir(Path(immute.__file__).parent, quiet=1)


def timed(argv: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{result.stderr}")
    return elapsed, result.stdout


def fresh_copy(base: Path, name: str) -> Path:
    target = base / name
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns(".immute", "__pycache__"))
    return target


def touch_code(app: Path, counter: int) -> None:
    with (app / "app.py").open("a", encoding="utf-8") as handle:
        handle.write(f"# change {counter}\n")


class Ours:
    """immute builds, end to end through the `immute` program."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.argv = [str(Path(sys.executable).with_name("immute")), "build", "--json"]
        self.digests: list[str] = []

    def cold(self, run: int) -> float:
        """A fresh directory and a fresh store, without the installer's cache."""
        name = f"ours-{run}"
        env = immute_env(self.base / f"state-{name}", no_cache=True)
        elapsed, out = timed(self.argv, cwd=fresh_copy(self.base, name), env=env)
        self.digests.append(json.loads(out)["manifest_digest"])
        return elapsed

    def warm(self, run: int) -> float:
        app = self.base / "ours-0"
        touch_code(app, run)
        env = immute_env(self.base / "state-ours-0", no_cache=True)
        elapsed, out = timed(self.argv, cwd=app, env=env)
        layers = {layer["role"]: layer for layer in json.loads(out)["layers"]}
        assert layers["dependencies"]["cached"], "code-only change: dependency layer reused"
        return elapsed


class Docker:
    """`docker build` of the example's Dockerfile (legacy builder of Engine 20.10)."""

    def __init__(self, base: Path) -> None:
        from docker_base import ensure_base_image

        ensure_base_image()
        self.app = fresh_copy(base, "docker")
        self.tag = f"immute-bench-app:{os.getpid()}"
        self.argv = ["docker", "build", "--network", "host", "-q", "-t", self.tag]
        self.digests: list[str] = []

    def cold(self, run: int) -> float:
        """--no-cache on the same, unchanged context each time."""
        elapsed, out = timed([*self.argv, "--no-cache", "."], cwd=self.app)
        self.digests.append(out.strip().splitlines()[-1])
        return elapsed

    def warm(self, run: int) -> float:
        touch_code(self.app, run)
        return timed([*self.argv, "."], cwd=self.app)[0]

    def clean(self) -> None:
        subprocess.run(["docker", "rmi", self.tag], capture_output=True, check=False)
        subprocess.run(["docker", "image", "prune", "-f"], capture_output=True, check=False)


def docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    info = subprocess.run(["docker", "info"], capture_output=True, check=False)
    return info.returncode == 0


def measure(sides: list[Ours | Docker], *, cold_runs: int, warm_runs: int) -> list[dict[str, Any]]:
    """Cold then warm builds, the sides interleaved run by run so that load from
    elsewhere on the machine falls on both alike."""
    colds: list[list[float]] = [[] for _ in sides]
    warms: list[list[float]] = [[] for _ in sides]
    for run in range(cold_runs):
        for side, times in zip(sides, colds, strict=True):
            times.append(side.cold(run))
    for run in range(warm_runs):
        for side, times in zip(sides, warms, strict=True):
            times.append(side.warm(run))
    return [
        {
            "cold": min(cold),
            "warm": statistics.median(warm),
            "digest_1": side.digests[0],
            "digest_2": side.digests[1],
        }
        for side, cold, warm in zip(sides, colds, warms, strict=True)
    ]


def store_figures(base: Path, rebuilds: int) -> dict[str, Any]:
    """N code-only rebuilds in process (the store's growth, not start-up, is measured)."""
    from immute.client.images import build_image

    app = fresh_copy(base, "store")
    state = base / "state-store"
    os.environ["IMMUTE_STATE_DIR"] = str(state)
    spec = str(app / "immute.yaml")

    def build() -> dict[str, Any]:
        result = build_image(spec, None, offline=False, wheelhouse=None, progress=lambda _: None)
        return {layer.role: layer.size for layer in result.layers}

    sizes = build()
    dep_size, app_sizes = sizes["dependencies"], []
    for i in range(rebuilds):
        touch_code(app, i)
        app_sizes.append(build()["app"])
    blobs = state / "images" / "blobs" / "sha256"
    stored = sum(p.stat().st_size for p in blobs.iterdir())
    stored += (state / "images" / "index.json").stat().st_size
    return {"stored": stored, "ideal": dep_size + sum(app_sizes), "rebuilds": rebuilds}


def row(label: str, value: str, note: str = "") -> None:
    print(f"  {label:<44} {value:>14}  {note}")


def verdict(ok: bool) -> str:
    return "meets target" if ok else "MISSES target"


def report(ours: dict[str, Any], docker: dict[str, Any] | None, store: dict[str, Any]) -> None:
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"machine: {os.cpu_count()} cores, load average {load} (1, 5, 15 min) at the end")
    print("immute build (end to end through the CLI, examples/flask-app):")
    row("cold build (fresh store, no uv cache)", f"{ours['cold']:.2f} s", "best of 2")
    row("warm rebuild after a code-only change", f"{ours['warm']:.2f} s", "median")
    row("cold / warm", f"{ours['cold'] / ours['warm']:.1f}x")
    same = ours["digest_1"] == ours["digest_2"]
    row(
        "digest, two fresh directories", "identical" if same else "DIFFERENT", ours["digest_1"][:19]
    )
    if docker is not None:
        print("docker build (Docker Engine, legacy builder, same app and Dockerfile):")
        row("cold build (--no-cache, base image present)", f"{docker['cold']:.2f} s", "best of 2")
        row("warm rebuild after a code-only change", f"{docker['warm']:.2f} s", "median")
        row("cold / warm", f"{docker['cold'] / docker['warm']:.1f}x")
        differ = docker["digest_1"] != docker["digest_2"]
        row("image ID, two --no-cache builds", "different" if differ else "identical", "same input")
        print("immute against docker:")
        warm_ratio = docker["warm"] / ours["warm"]
        cold_ratio = docker["cold"] / ours["cold"]
        row("warm: docker / immute", f"{warm_ratio:.2f}x", verdict(warm_ratio >= 2))
        row("cold: docker / immute", f"{cold_ratio:.2f}x", verdict(cold_ratio >= 1))
    else:
        print("docker build: skipped (no Docker engine answers `docker info`)")
    ratio = store["stored"] / store["ideal"]
    print(f"store after {store['rebuilds']} code-only rebuilds:")
    row("bytes stored (all blobs + index)", f"{store['stored']:,}")
    row(f"dependency layer + {store['rebuilds']} app layers", f"{store['ideal']:,}")
    row("ratio", f"{ratio:.3f}x", verdict(ratio <= 1.2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm-runs", type=int, default=9)
    parser.add_argument("--rebuilds", type=int, default=50)
    parser.add_argument("--no-docker", action="store_true")
    args = parser.parse_args()
    compile_immute()
    with tempfile.TemporaryDirectory(prefix="immute-bench-") as temp:
        base = Path(temp)
        sides: list[Ours | Docker] = [Ours(base)]
        if not args.no_docker and docker_answers():
            sides.append(Docker(base))
        print(
            f"... {len(sides)} builder(s), 2 cold and {args.warm_runs} warm each", file=sys.stderr
        )
        try:
            figures = measure(sides, cold_runs=2, warm_runs=args.warm_runs)
        finally:
            for side in sides:
                if isinstance(side, Docker):
                    side.clean()
        print(f"... {args.rebuilds} code-only rebuilds", file=sys.stderr)
        store = store_figures(base, args.rebuilds)
        report(figures[0], figures[1] if len(figures) > 1 else None, store)


if __name__ == "__main__":
    main()
