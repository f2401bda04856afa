"""A real third-party app: Flask served by gunicorn, both installed from the
package index into the image's dependency layer, deployed and rolled under load."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from deploy.support import free_port
from loadgen import Load

pytestmark = pytest.mark.slow

APP = textwrap.dedent(
    """\
    import os

    from flask import Flask

    app = Flask(__name__)
    GREETING = "GREETING"


    @app.get("/")
    def index():
        return GREETING + "\\n", 200, {"x-release": os.environ.get("IMMUTE_RELEASE", "")}


    @app.get("/healthz")
    def healthz():
        return "ok\\n"
    """
)


def test_flask_on_gunicorn_deploys_and_rolls(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "app.py").write_text(APP.replace("GREETING", "one"))
    (tmp_path / "requirements.txt").write_text("flask==3.1.3\ngunicorn==23.0.0\n")
    (tmp_path / "immute.yaml").write_text(
        textwrap.dedent(
            f"""\
            app: flaskapp
            processes:
              web:
                command: gunicorn --bind 127.0.0.1:$PORT --workers 2 app:app
                instances: 2
                health:
                  readiness: {{http: /healthz}}
            router:
              listen: 127.0.0.1:{port}
            """
        )
    )
    env = {**os.environ, "IMMUTE_STATE_DIR": str(tmp_path.parent / f"{tmp_path.name}-state")}

    def immute(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "immute", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    try:
        first = immute("deploy")
        assert first.returncode == 0, first.stdout + first.stderr
        (tmp_path / "app.py").write_text(APP.replace("GREETING", "two"))
        with Load(port, connections=4) as load:
            second = immute("deploy")
        assert second.returncode == 0, second.stdout + second.stderr
        assert "dependency layer" in second.stderr and "(cached)" in second.stderr
        assert load.result.failed == 0, load.result
        assert load.result.by_release["v2"] > 0
    finally:
        immute("down")
