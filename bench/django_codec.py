"""Times Django's session encoding, ``signing.dumps``/``loads``, over payloads sent by the Rust
benchmark (``cargo run -p djsession-bench --release -- codec`` runs this).

Reads one JSON request on stdin:
    {"secret", "salt", "fixed_timestamp", "runs", "seconds",
     "payloads": [{"label", "json", "token_at_fixed_time", "token"}]}
and prints {"django", "python", "results": [{"label", "encode": [ops/s...], "decode": [...]}]}.

Host side (standard library only): creates or reuses the ``django52`` virtualenv through
``fixtures/django/djvenv.py`` and re-runs this file inside it with ``--worker``. Inside, each
payload is first checked to be byte-identical to ours (``dumps`` at the same instant gives our
token, ``loads`` of our token gives the payload back), so both sides time the same work; then
``timeit`` times ``dumps(data, salt, compress=True, serializer=JSONSerializer)`` -- what
``SessionBase.encode`` calls -- and ``loads`` of the current token, in ``runs`` rounds of about
``seconds`` each.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIXTURES = HERE.parent / "fixtures" / "django"


def host() -> int:
    sys.path.insert(0, str(FIXTURES))
    import djvenv  # the shared venv helper; standard library only

    python = djvenv.ensure("django52")
    # As djvenv.run_worker: no user site-packages or settings module leaking into the venv.
    env = dict(os.environ, PYTHONNOUSERSITE="1")
    env.pop("PYTHONPATH", None)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    proc = subprocess.run(
        [str(python), str(Path(__file__).resolve()), "--worker"],
        input=sys.stdin.read(),
        capture_output=True,
        text=True,
        env=env,
    )
    sys.stderr.write(proc.stderr)
    sys.stdout.write(proc.stdout)
    return proc.returncode


def worker() -> int:
    import platform
    import timeit

    import django
    from django.conf import settings

    request = json.load(sys.stdin)
    settings.configure(SECRET_KEY=request["secret"], USE_TZ=True)
    from django.core import signing

    salt = request["salt"]
    serializer = signing.JSONSerializer
    runs, seconds = request["runs"], request["seconds"]

    results = []
    for case in request["payloads"]:
        data = json.loads(case["json"])
        label = case["label"]

        # Byte identity with our codec: the same instant gives the same token.
        real_time = signing.time.time
        signing.time.time = lambda: request["fixed_timestamp"]
        try:
            at_fixed = signing.dumps(data, salt=salt, serializer=serializer, compress=True)
        finally:
            signing.time.time = real_time
        if at_fixed != case["token_at_fixed_time"]:
            print(f"{label}: Django's token differs from ours", file=sys.stderr)
            return 1
        if signing.loads(case["token"], salt=salt, serializer=serializer) != data:
            print(f"{label}: Django does not read our token back", file=sys.stderr)
            return 1

        def encode():
            signing.dumps(data, salt=salt, serializer=serializer, compress=True)

        token = signing.dumps(data, salt=salt, serializer=serializer, compress=True)

        def decode():
            signing.loads(token, salt=salt, serializer=serializer)

        out = {"label": label}
        for name, op in (("encode", encode), ("decode", decode)):
            timer = timeit.Timer(op)
            number, took = timer.autorange()  # calls that take at least 0.2 s
            number = max(1, int(number * seconds / max(took, 1e-9)))
            out[name] = [number / t for t in timer.repeat(repeat=runs, number=number)]
        results.append(out)

    json.dump(
        {
            "django": django.get_version(),
            "python": platform.python_version(),
            "results": results,
        },
        sys.stdout,
    )
    return 0


if __name__ == "__main__":
    sys.exit(worker() if "--worker" in sys.argv[1:] else host())
