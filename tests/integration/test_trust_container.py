"""Trust (issue 13): stopping the kit stops and removes its benchmark container (real Docker).

The image is a stand-in built here from debian:bookworm-slim whose entrypoint only sleeps: what is under
test is the launcher's handling of SIGTERM and Ctrl-C around a running container, not the bench inside it."""
from __future__ import annotations

import io
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.docker]

REPO = Path(__file__).resolve().parents[2]
SLEEPER = "edgebench-test/sleeper:1"


@pytest.fixture(scope="module")
def docker_client():
    import docker

    client = docker.from_env(timeout=60)
    try:
        client.images.get("debian:bookworm-slim")
    except docker.errors.ImageNotFound:
        pytest.skip("debian:bookworm-slim is not in the local store (.ci/docker-setup.sh makes it)")
    dockerfile = b'FROM debian:bookworm-slim\nENTRYPOINT ["/bin/sh", "-c", "sleep 300", "sh"]\n'
    client.images.build(fileobj=io.BytesIO(dockerfile), tag=SLEEPER, rm=True)
    yield client
    try:
        client.images.remove(SLEEPER, force=True)
    except docker.errors.APIError:
        pass


def _ours(client):
    """[(id, state)] of containers of the stand-in image (one API call: no per-container inspect race)."""
    return [(c["Id"], c["State"]) for c in client.api.containers(all=True, filters={"ancestor": SLEEPER})]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_trust_stopping_a_container_bench_stops_and_removes_the_container(docker_client, tmp_path, sig):
    (tmp_path / "art").mkdir()
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO / 'src')!r})
        from edgebench.launchers import BenchRequest
        from edgebench.launchers.container import ContainerLauncher
        req = BenchRequest(artifacts={str(tmp_path / 'art')!r}, out={str(tmp_path / 'r.json')!r})
        try:
            ContainerLauncher("x86-cpu", image={SLEEPER!r}, echo=None).launch(req)
        except KeyboardInterrupt:
            sys.exit(130)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not [c for c in _ours(docker_client) if c[1] == "running"]:
            time.sleep(0.5)
        running = [c for c in _ours(docker_client) if c[1] == "running"]
        assert running, "the container never started"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    deadline = time.time() + 60  # a loaded engine can take a while to remove a container
    while time.time() < deadline and _ours(docker_client):
        time.sleep(0.5)
    left = _ours(docker_client)
    for cid, _ in left:  # never leave one behind, even when the test fails
        docker_client.api.remove_container(cid, force=True)
    assert not left, f"containers left behind: {[cid[:12] for cid, _ in left]}; launcher stderr: {err[-2000:]}"
