"""Build benchmark: immute's builder against `docker build`, in one run.

Run: .venv/bin/python bench/build.py [--warm-runs N] [--rebuilds N] [--no-docker]

On a copy of examples/flask-app (Flask + gunicorn from the package index), prints:
- immute cold build (fresh store, no pip cache) and warm rebuild after a code-only
  change, end to end through the `immute` program, and their ratio;
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "flask-app"
sys.path.insert(0, str(Path(__file__).resolve().parent))


def immute_env(state: Path, *, no_pip_cache: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SOURCE_DATE_EPOCH",)}
    env["IMMUTE_STATE_DIR"] = str(state)
    if no_pip_cache:
        env["PIP_NO_CACHE_DIR"] = "1"
    return env


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


def immute_figures(base: Path, warm_runs: int) -> dict[str, Any]:
    immute = [str(Path(sys.executable).with_name("immute")), "build", "--json"]
    app = fresh_copy(base, "ours")
    env = immute_env(base / "state-ours", no_pip_cache=True)
    cold, out = timed(immute, cwd=app, env=env)
    first = json.loads(out)
    warm = []
    for i in range(warm_runs):
        touch_code(app, i)
        elapsed, out = timed(immute, cwd=app, env=env)
        layers = {layer["role"]: layer for layer in json.loads(out)["layers"]}
        assert layers["dependencies"]["cached"], (
            "a code-only change must reuse the dependency layer"
        )
        warm.append(elapsed)
    again = fresh_copy(base, "ours-again")
    _, out = timed(immute, cwd=again, env=immute_env(base / "state-again", no_pip_cache=False))
    return {
        "cold": cold,
        "warm": statistics.median(warm),
        "digest_1": first["manifest_digest"],
        "digest_2": json.loads(out)["manifest_digest"],
    }


def docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    info = subprocess.run(["docker", "info"], capture_output=True, check=False)
    return info.returncode == 0


def docker_figures(base: Path, warm_runs: int) -> dict[str, Any]:
    from docker_base import ensure_base_image

    ensure_base_image()
    app = fresh_copy(base, "docker")
    tag = f"immute-bench-app:{os.getpid()}"
    build = ["docker", "build", "--network", "host", "-q", "-t", tag]
    cold, first = timed([*build, "--no-cache", "."], cwd=app)
    again_time, again = timed([*build, "--no-cache", "."], cwd=app)
    warm = []
    for i in range(warm_runs):
        touch_code(app, i)
        elapsed, _ = timed([*build, "."], cwd=app)
        warm.append(elapsed)
    subprocess.run(["docker", "rmi", tag], capture_output=True, check=False)
    subprocess.run(["docker", "image", "prune", "-f"], capture_output=True, check=False)
    return {
        "cold": min(cold, again_time),
        "warm": statistics.median(warm),
        "digest_1": first.strip().splitlines()[-1],
        "digest_2": again.strip().splitlines()[-1],
    }


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
    print("immute build (end to end through the CLI, examples/flask-app):")
    row("cold build (fresh store, no pip cache)", f"{ours['cold']:.2f} s")
    row("warm rebuild after a code-only change", f"{ours['warm']:.2f} s", "median")
    row("cold / warm", f"{ours['cold'] / ours['warm']:.1f}x")
    same = ours["digest_1"] == ours["digest_2"]
    row("digest, two fresh builds", "identical" if same else "DIFFERENT", ours["digest_1"][:19])
    if docker is not None:
        print("docker build (Docker Engine, legacy builder, same app and Dockerfile):")
        row("cold build (--no-cache)", f"{docker['cold']:.2f} s", "best of 2")
        row("warm rebuild after a code-only change", f"{docker['warm']:.2f} s", "median")
        row("cold / warm", f"{docker['cold'] / docker['warm']:.1f}x")
        differ = docker["digest_1"] != docker["digest_2"]
        row("image ID, two --no-cache builds", "different" if differ else "identical")
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
    parser.add_argument("--warm-runs", type=int, default=5)
    parser.add_argument("--rebuilds", type=int, default=50)
    parser.add_argument("--no-docker", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="immute-bench-") as temp:
        base = Path(temp)
        step: Callable[[str], None] = lambda m: print(f"... {m}", file=sys.stderr)  # noqa: E731
        step("immute builds")
        ours = immute_figures(base, args.warm_runs)
        docker = None
        if not args.no_docker and docker_answers():
            step("docker builds")
            docker = docker_figures(base, args.warm_runs)
        step(f"{args.rebuilds} code-only rebuilds")
        store = store_figures(base, args.rebuilds)
        report(ours, docker, store)


if __name__ == "__main__":
    main()
