"""Every malformed spec gets exact messages at the right line and column."""

from __future__ import annotations

import textwrap

import pytest

from immute.core.spec_loading import Source, load_spec
from immute.errors import SpecError


def problems_of(text: str, *, overlay: str | None = None) -> list[str]:
    sources = [Source("immute.yaml", textwrap.dedent(text))]
    if overlay is not None:
        sources.append(Source("immute.prod.yaml", textwrap.dedent(overlay)))
    with pytest.raises(SpecError) as caught:
        load_spec(sources, repository="/repo")
    return [str(p) for p in caught.value.problems]


WEB = "processes:\n  web:\n    command: python app.py\n"

CASES: list[tuple[str, str, list[str]]] = [
    ("empty file", "", ["immute.yaml:1:1: the file is empty; expected a mapping"]),
    ("top is a list", "- a\n- b\n", ["immute.yaml:1:1: expected a mapping of keys at the top"]),
    (
        "bad indentation",
        "app: a\n  processes: {}\n",
        ["immute.yaml:2:12: invalid YAML: mapping values are not allowed here"],
    ),
    (
        "unclosed flow list",
        "app: a\nsecrets: [A, B\n",
        ["immute.yaml:3:1: invalid YAML: expected ',' or ']', but got '<stream end>'"],
    ),
    (
        "tab indentation",
        "app: a\nprocesses:\n\tweb: {}\n",
        ["immute.yaml:3:1: invalid YAML: found character '\\t' that cannot start any token"],
    ),
    (
        "duplicate key",
        "app: a\napp: b\n" + WEB,
        ["immute.yaml:2:1: app: duplicate key (first at line 1)"],
    ),
    (
        "duplicate nested key",
        "app: a\nprocesses:\n  web:\n    command: x\n    command: y\n",
        ["immute.yaml:5:5: processes.web.command: duplicate key (first at line 4)"],
    ),
    ("missing app", WEB, ["immute.yaml:1:1: app: required key is missing"]),
    ("missing processes", "app: a\n", ["immute.yaml:1:1: processes: required key is missing"]),
    (
        "no processes",
        "app: a\nprocesses: {}\n",
        ["immute.yaml:2:1: processes: needs at least 1 entry"],
    ),
    (
        "bad app name",
        "app: My_App\n" + WEB,
        [
            'immute.yaml:1:1: app: "My_App" is not a valid name: use lowercase letters, '
            "digits and '-', starting with a letter, at most 63 characters"
        ],
    ),
    (
        "app is a number",
        "app: 42\n" + WEB,
        [
            "immute.yaml:1:1: app: 42 is not a valid name: use lowercase letters, digits "
            "and '-', starting with a letter, at most 63 characters"
        ],
    ),
    (
        "unknown top-level key with suggestion",
        "app: a\nproceses: {}\n" + WEB,
        ['immute.yaml:2:1: proceses: unknown key "proceses"; did you mean "processes"?'],
    ),
    (
        "unknown key without close match",
        "app: a\n" + WEB + "    zzz: 1\n",
        [
            'immute.yaml:5:5: processes.web.zzz: unknown key "zzz" (known keys: command, '
            "instances, routed, hosts, health, grace, resources)"
        ],
    ),
    (
        "misspelt nested key",
        "app: a\n" + WEB + "    health:\n      readyness: {}\n",
        [
            'immute.yaml:6:7: processes.web.health.readyness: unknown key "readyness"; '
            'did you mean "readiness"?'
        ],
    ),
    (
        "instances as a string",
        "app: a\n" + WEB + '    instances: "3"\n',
        ['immute.yaml:5:5: processes.web.instances: expected a whole number, got "3"'],
    ),
    (
        "negative instances",
        "app: a\n" + WEB + "    instances: -1\n",
        ["immute.yaml:5:5: processes.web.instances: must be at least 0, got -1"],
    ),
    (
        "missing command",
        "app: a\nprocesses:\n  web:\n    instances: 2\n",
        ["immute.yaml:3:3: processes.web.command: required key is missing"],
    ),
    (
        "empty command",
        'app: a\nprocesses:\n  web:\n    command: ""\n',
        ["immute.yaml:4:5: processes.web.command: the command is empty"],
    ),
    (
        "command with a number",
        "app: a\nprocesses:\n  web:\n    command: [python, 3]\n",
        [
            "immute.yaml:4:5: processes.web.command: expected a command as a string or a "
            "list of strings, got a list"
        ],
    ),
    (
        "unbalanced quote in command",
        "app: a\nprocesses:\n  web:\n    command: python 'app.py\n",
        ["immute.yaml:4:5: processes.web.command: cannot split the command: No closing quotation"],
    ),
    (
        "process is not a mapping",
        "app: a\nprocesses:\n  web: python app.py\n",
        ['immute.yaml:3:3: processes.web: expected a mapping, got "python app.py"'],
    ),
    (
        "bad process name",
        "app: a\nprocesses:\n  Web:\n    command: x\n",
        [
            'immute.yaml:3:3: processes.Web: "Web" is not a valid name: use lowercase '
            "letters, digits and '-', starting with a letter, at most 63 characters"
        ],
    ),
    (
        "max_surge is not a count",
        "app: a\n" + WEB + "strategy:\n  max_surge: lots\n",
        [
            'immute.yaml:6:3: strategy.max_surge: expected a count or a percentage like "25%", '
            'got "lots"'
        ],
    ),
    (
        "percentage above 100",
        "app: a\n" + WEB + "strategy:\n  max_unavailable: 150%\n",
        ['immute.yaml:6:3: strategy.max_unavailable: a percentage cannot exceed 100%, got "150%"'],
    ),
    (
        "negative surge",
        "app: a\n" + WEB + "strategy:\n  max_surge: -1\n",
        [
            'immute.yaml:6:3: strategy.max_surge: expected a count or a percentage like "25%" '
            "of at least 0, got -1"
        ],
    ),
    (
        "surge and unavailable both zero",
        "app: a\n" + WEB + "strategy:\n  max_surge: 0%\n  max_unavailable: 0\n",
        [
            "immute.yaml:6:3: strategy.max_surge: max_surge and max_unavailable cannot both "
            "be 0: the rollout could never progress"
        ],
    ),
    (
        "unknown strategy",
        "app: a\n" + WEB + "strategy:\n  type: yolo\n",
        [
            'immute.yaml:6:3: strategy.type: expected one of "rolling", "blue-green", '
            '"canary" or "recreate", got "yolo"'
        ],
    ),
    (
        "standby on a rolling strategy",
        "app: a\n" + WEB + "strategy:\n  standby: 5m\n",
        [
            'immute.yaml:6:3: strategy.standby: applies only to the "blue-green" strategy, '
            'not "rolling"'
        ],
    ),
    (
        "surge on a canary",
        "app: a\n" + WEB + "strategy:\n  type: canary\n  max_surge: 1\n",
        [
            'immute.yaml:7:3: strategy.max_surge: applies only to the "rolling" strategy, '
            'not "canary"'
        ],
    ),
    (
        "bad duration",
        "app: a\n" + WEB + "strategy:\n  progress_deadline: soon\n",
        [
            'immute.yaml:6:3: strategy.progress_deadline: expected a duration like "30s", "5m" '
            'or "1h30m", got "soon"'
        ],
    ),
    (
        "duration without unit",
        "app: a\n" + WEB + "strategy:\n  bake: 30\n",
        ['immute.yaml:6:3: strategy.bake: expected a duration like "30s", "5m" or "1h30m", got 30'],
    ),
    (
        "sub-millisecond duration",
        "app: a\n" + WEB + "strategy:\n  bake: 0.5ms\n",
        ['immute.yaml:6:3: strategy.bake: "0.5ms" is finer than a millisecond'],
    ),
    (
        "canary weights falling",
        "app: a\n"
        + WEB
        + "strategy:\n  type: canary\n  steps:\n    - {weight: 50%}\n    - {weight: 20%}\n",
        [
            "immute.yaml:9:8: strategy.steps[1].weight: weights must rise step by step and "
            'stay below 100%, got "20%"'
        ],
    ),
    (
        "canary weight as a count",
        "app: a\n" + WEB + "strategy:\n  type: canary\n  steps:\n    - weight: 5\n",
        ['immute.yaml:8:7: strategy.steps[0].weight: expected a percentage like "10%", got 5'],
    ),
    (
        "canary step missing weight",
        "app: a\n" + WEB + "strategy:\n  type: canary\n  steps:\n    - pause: 1m\n",
        ["immute.yaml:8:7: strategy.steps[0].weight: required key is missing"],
    ),
    (
        "sticky with both cookie and header",
        "app: a\n" + WEB + "strategy:\n  type: canary\n  sticky: {cookie: c, header: h}\n",
        ["immute.yaml:7:3: strategy.sticky: set exactly one of cookie or header"],
    ),
    (
        "p99 ratio not positive",
        "app: a\n" + WEB + "strategy:\n  type: canary\n  analysis:\n    max_p99_ratio: 0\n",
        ["immute.yaml:8:5: strategy.analysis.max_p99_ratio: must be more than 0, got 0"],
    ),
    (
        "two probes at once",
        "app: a\n" + WEB + "    health:\n      readiness:\n        http: /up\n        tcp: true\n",
        ["immute.yaml:6:7: processes.web.health.readiness: set one probe, not http and tcp"],
    ),
    (
        "http path without slash",
        "app: a\n" + WEB + "    health:\n      readiness:\n        http: up\n",
        [
            "immute.yaml:7:9: processes.web.health.readiness.http: expected a path starting "
            'with "/", got "up"'
        ],
    ),
    (
        "liveness without a probe",
        "app: a\n" + WEB + "    health:\n      liveness:\n        interval: 5s\n",
        ["immute.yaml:6:7: processes.web.health.liveness: set one probe: http, tcp or command"],
    ),
    (
        "http probe on a worker",
        "app: a\nprocesses:\n  worker:\n    command: w\n    health:\n"
        "      readiness:\n        http: /up\n",
        [
            "immute.yaml:7:9: processes.worker.health.readiness.http: needs a routed process: "
            "this one has no port"
        ],
    ),
    (
        "zero healthy threshold",
        "app: a\n" + WEB + "    health:\n      readiness:\n        healthy_threshold: 0\n",
        [
            "immute.yaml:7:9: processes.web.health.readiness.healthy_threshold: must be at "
            "least 1, got 0"
        ],
    ),
    (
        "routed flag not a boolean",
        "app: a\n" + WEB + "    routed: maybe\n",
        ['immute.yaml:5:5: processes.web.routed: expected true or false, got "maybe"'],
    ),
    (
        "two catch-all routed processes",
        "app: a\n" + WEB + "  api:\n    command: api\n    routed: true\n",
        [
            "immute.yaml:7:5: processes.api.routed: only one routed process can take every "
            "host (web does); give it hosts"
        ],
    ),
    (
        "bad memory size",
        "app: a\n" + WEB + "    resources:\n      memory: lots\n",
        [
            'immute.yaml:6:7: processes.web.resources.memory: expected a size like "256Mi" or '
            '"1G", got "lots"'
        ],
    ),
    (
        "secret values in the spec",
        "app: a\n" + WEB + "secrets:\n  DB_URL: postgres://u:pw@db/x\n",
        [
            "immute.yaml:5:1: secrets: secret values never go in the spec: list only their "
            "names; values come from the environment or secrets_file at deploy time"
        ],
    ),
    (
        "secret-looking env value",
        "app: a\n" + WEB + "env:\n  API_TOKEN: abc123\n",
        [
            "immute.yaml:6:3: env.API_TOKEN: looks like a secret: list API_TOKEN under "
            "secrets and give its value at deploy time"
        ],
    ),
    (
        "secret also in env",
        "app: a\n" + WEB + "env:\n  DB_URL: x\nsecrets: [DB_URL]\n",
        ["immute.yaml:7:11: secrets[0]: DB_URL is also set in env"],
    ),
    (
        "reserved env name",
        "app: a\n" + WEB + "env:\n  PORT: 80\n",
        ["immute.yaml:6:3: env.PORT: PORT is set by immute and cannot be configured"],
    ),
    (
        "invalid env name",
        "app: a\n" + WEB + "env:\n  1BAD: x\n",
        ['immute.yaml:6:3: env.1BAD: "1BAD" is not a valid environment variable name'],
    ),
    (
        "env value is a mapping",
        "app: a\n" + WEB + "env:\n  X: {a: 1}\n",
        ["immute.yaml:6:3: env.X: expected a string, number or boolean, got a mapping"],
    ),
    (
        "secrets file inside the repository",
        "app: a\n" + WEB + "secrets_file: /repo/secrets.env\n",
        [
            "immute.yaml:5:1: secrets_file: must live outside the repository, where it cannot "
            "be committed"
        ],
    ),
    (
        "relative secrets file",
        "app: a\n" + WEB + "secrets_file: secrets.env\n",
        ["immute.yaml:5:1: secrets_file: give an absolute path or ~/..., outside the repository"],
    ),
    (
        "relative volume path",
        "app: a\n" + WEB + "volumes:\n  data:\n    path: data\n",
        ['immute.yaml:7:5: volumes.data.path: expected an absolute path like /data, got "data"'],
    ),
    (
        "volume for an unknown process",
        "app: a\n" + WEB + "volumes:\n  data:\n    path: /data\n    processes: [wrker]\n",
        ['immute.yaml:8:17: volumes.data.processes[0]: no process named "wrker" (processes: web)'],
    ),
    (
        "unknown runtime",
        "app: a\n" + WEB + "runtime: kubernetes\n",
        ['immute.yaml:5:1: runtime: expected one of "process" or "docker", got "kubernetes"'],
    ),
    (
        "base image on the process runtime",
        "app: a\n" + WEB + "build:\n  stack: debian@sha256:abc\n",
        [
            "immute.yaml:6:3: build.stack: the process runtime runs on the host stack; use "
            "runtime: docker for a base image"
        ],
    ),
    (
        "docker runtime on the host stack",
        "app: a\n" + WEB + "runtime: docker\n",
        [
            "immute.yaml:1:1: build.stack: the docker runtime needs a base image with Python: "
            "set build.stack (name@sha256:...) or build.dockerfile"
        ],
    ),
    (
        "router listen without port",
        "app: a\n" + WEB + "router:\n  listen: localhost\n",
        [
            'immute.yaml:6:3: router.listen: expected HOST:PORT like "127.0.0.1:8080", '
            'got "localhost"'
        ],
    ),
    (
        "retain zero releases",
        "app: a\n" + WEB + "retain:\n  releases: 0\n",
        ["immute.yaml:6:3: retain.releases: must be at least 1, got 0"],
    ),
    (
        "build is a list",
        "app: a\n" + WEB + "build: [a]\n",
        ["immute.yaml:5:1: build: expected a mapping, got a list"],
    ),
    (
        "include is a string",
        "app: a\n" + WEB + "build:\n  include: src\n",
        ['immute.yaml:6:3: build.include: expected a list, got "src"'],
    ),
    (
        "non-string key",
        "app: a\n" + WEB + "env:\n  1: x\n",
        ["immute.yaml:6:3: env: keys must be strings, got 1"],
    ),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_spec_reports_exact_problems(text: str, expected: list[str]) -> None:
    assert problems_of(text) == expected


def test_there_are_at_least_forty_cases() -> None:
    assert len(CASES) >= 40


def test_every_problem_is_reported_at_once() -> None:
    text = "app: a\n" + WEB + '    instances: "2"\n    grace: long\nstrategy:\n  bake: x\n'
    assert problems_of(text) == [
        'immute.yaml:5:5: processes.web.instances: expected a whole number, got "2"',
        'immute.yaml:6:5: processes.web.grace: expected a duration like "30s", "5m" or "1h30m", '
        'got "long"',
        'immute.yaml:8:3: strategy.bake: expected a duration like "30s", "5m" or "1h30m", got "x"',
    ]


def test_problems_in_an_overlay_name_the_overlay_file() -> None:
    base = "app: a\n" + WEB
    overlay = "processes:\n  web:\n    instances: many\n"
    assert problems_of(base, overlay=overlay) == [
        'immute.prod.yaml:3:5: processes.web.instances: expected a whole number, got "many"'
    ]


def test_yaml_errors_in_both_files_are_reported_together() -> None:
    assert problems_of("app: [\n", overlay="a: b: c\n") == [
        "immute.yaml:2:1: invalid YAML: expected the node content, but found '<stream end>'",
        "immute.prod.yaml:1:5: invalid YAML: mapping values are not allowed here",
    ]
