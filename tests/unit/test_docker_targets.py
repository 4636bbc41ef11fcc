"""containers/<target>/target.yaml: loading, validation errors, tags, labels, rendering of every target."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from edgebench.docker import TargetError, render, targets
from edgebench.docker import build as dbuild

ALL = ["jetson-jp512", "x86-cpu", "x86-cuda"]


def test_known_targets():
    assert set(ALL) <= set(targets.available())


@pytest.mark.parametrize("name", ALL)
def test_every_target_loads(name):
    t = targets.load(name)
    assert t.name == name
    assert t.backends and set(t.backends) <= set(targets.KNOWN_BACKENDS)
    assert t.requirements_path.is_file()
    assert t.pinned_packages(), "pins are what make two builds the same"
    for line in t.pinned_packages():
        assert "==" in line, f"{name}: unpinned requirement {line!r}"


def test_unknown_target_lists_known():
    with pytest.raises(TargetError) as e:
        targets.load("raspberry-pi")
    for name in ALL:
        assert name in str(e.value)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    d = tmp_path / name
    d.mkdir(parents=True)
    (d / "target.yaml").write_text(text)
    return tmp_path


GOOD = """
name: t1
base_image: debian:bookworm-slim
platform: linux/amd64
gpu: none
python: "3.11"
backends: [keras, onnxruntime]
"""


def test_minimal_target(tmp_path):
    t = targets.load("t1", root=_write(tmp_path, "t1", GOOD))
    assert t.python_env == "venv" and t.l4t is None and t.apt_packages == []


@pytest.mark.parametrize("text, expect", [
    ("name: t1\nbase_image: [oops", "not valid YAML"),
    ("- a\n- b\n", "expected a mapping"),
    (GOOD + "base_imag: typo\n", "unknown key(s): base_imag"),
    (GOOD.replace("gpu: none\n", ""), "missing required key: gpu"),
    (GOOD.replace("gpu: none", "gpu: cuda"), "gpu: 'cuda' is not one of"),
    (GOOD.replace('"3.11"', "3.11"), "python: expected str"),
    (GOOD.replace("[keras, onnxruntime]", "[keras, pytorch]"), "backends: unknown pytorch"),
    (GOOD.replace("name: t1", "name: other"), "differs from its folder"),
    (GOOD.replace("linux/amd64", "amd64"), "platform: 'amd64'"),
])
def test_malformed_target_lists_known_keys(tmp_path, text, expect):
    root = _write(tmp_path, "t1", text)
    with pytest.raises(TargetError) as e:
        targets.load("t1", root=root)
    msg = str(e.value)
    assert expect in msg
    assert "known keys:" in msg
    for key in targets.SCHEMA:
        assert f"  {key}" in msg


def test_tags():
    assert targets.load("x86-cpu").tag("0.1.0") == "edgebench:0.1.0-x86-cpu"
    assert targets.load("x86-cuda").tag("0.1.0") == "edgebench:0.1.0-x86-cuda"
    assert targets.load("jetson-jp512").tag("0.1.0") == "edgebench:0.1.0-jetson-jp512-r35.4.1"


def test_target_facts_match_the_guide():
    j = targets.load("jetson-jp512")
    assert (j.base_image, j.python, j.gpu, j.l4t) == ("nvcr.io/nvidia/l4t-jetpack:r35.4.1", "3.8", "nvidia-runtime",
                                                      "35.4.1")
    assert "tensorflow==2.12.0+nv23.06" in j.pinned_packages()
    assert any("developer.download.nvidia.com/compute/redist/jp/v512" in u for u in j.pip_extra_index_urls)
    assert j.platform == "linux/arm64" and j.versions["tensorrt"] == "8.5.2"
    c = targets.load("x86-cuda")
    assert (c.base_image, c.gpu, c.python_env) == ("nvcr.io/nvidia/tensorflow:23.06-tf2-py3", "device-requests",
                                                   "system")
    x = targets.load("x86-cpu")
    assert (x.base_image, x.gpu, x.python_env) == ("debian:bookworm-slim", "none", "venv")
    pins = x.pinned_packages()
    for pin in ("tensorflow-cpu==2.12.1", "onnxruntime==1.19.2", "numpy==1.23.5", "protobuf==3.20.3"):
        assert pin in pins


@pytest.mark.parametrize("name", ALL)
def test_labels(name):
    t = targets.load(name)
    labels = dbuild.image_labels(t, version="9.9.9", revision="abc123")
    assert labels["io.edgebench.version"] == "9.9.9"
    assert labels["org.opencontainers.image.revision"] == "abc123"
    assert labels["io.edgebench.target"] == name
    assert labels["io.edgebench.base-image"] == t.base_image
    assert labels["io.edgebench.packages"].splitlines() == t.pinned_packages()
    assert labels["io.edgebench.tensorflow"] == t.versions["tensorflow"]
    assert labels["io.edgebench.l4t"] == (t.l4t or "")
    assert labels["io.edgebench.tensorrt"] == t.versions.get("tensorrt", "")
    assert all(isinstance(v, str) for v in labels.values())
    assert dbuild.image_labels(t, base_image="mirror/x:1", version="1", revision="r")[
        "io.edgebench.base-image"] == "mirror/x:1"


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("ca", [False, True])
def test_render(name, ca):
    t = targets.load(name)
    text = render.render_dockerfile(t, ca_bundle=ca)
    assert f"ARG BASE_IMAGE={t.base_image}\nFROM ${{BASE_IMAGE}} AS base" in text
    assert 'ENTRYPOINT ["edgebench"]' in text
    assert "\n\n\n" not in text
    # requirements layer before the source layer: editing src/ keeps the pip layer cached
    assert text.index("COPY requirements.txt") < text.index("COPY src ")
    assert "pip install -q --no-deps --no-index /opt/edgebench-build/dist/*.whl" in text
    for url in t.pip_extra_index_urls:
        assert f"--extra-index-url {url}" in text
    for pkg in t.apt_packages:
        assert f"      {pkg} \\" in text
    assert ("COPY extra-ca.crt" in text) is ca
    assert ("ENV PIP_CERT=/etc/edgebench/extra-ca.crt" in text) is ca
    assert ("python3 -m venv /opt/edgebench" in text) is (t.python_env == "venv")
    assert "{{" not in text and "{%" not in text
    if ca:
        _check_ca_stays_in_install_stage(text, t)


def _check_ca_stays_in_install_stage(text, t):
    """Only the install stage sees the CA: it comes before any pip step, and the final stage copies what pip
    installed (the venv, or the --root tree), never the CA file nor its ENV settings."""
    install = text.index("FROM base AS install")
    final = text.index("\nFROM base\n")
    assert install < text.index("COPY extra-ca.crt") < text.index("python3 -m pip install") < final
    tail = text[final:]
    assert "extra-ca" not in tail and "PIP_CERT" not in tail and "SSL_CERT_FILE" not in tail
    if t.python_env == "venv":
        assert "COPY --from=install /opt/edgebench /opt/edgebench" in tail
    else:
        assert "--root /opt/edgebench-root" in text[install:final]
        assert "COPY --from=install /opt/edgebench-root/ /" in tail
    assert "COPY --from=install /opt/edgebench-build /opt/edgebench-build" in tail


def test_render_extra_index_requirements_install_without_deps():
    text = render.render_dockerfile("x86-cuda")
    assert "COPY requirements.txt requirements-onnxruntime-cuda12.txt /opt/edgebench-build/" in text
    assert "pip install -q --no-deps -r /opt/edgebench-build/requirements-onnxruntime-cuda12.txt" in text
    feed = (targets.load("x86-cuda").folder / "requirements-onnxruntime-cuda12.txt").read_text()
    assert "--index-url https://aiinfra.pkgs.visualstudio.com/" in feed and "onnxruntime-gpu==1.18.0" in feed


@pytest.mark.parametrize("name", ["jetson-jp512", "x86-cuda"])
def test_system_python_targets_upgrade_pip_first(name):
    """Ubuntu 20.04's pip 20.0 cannot install manylinux_2_27/2_28 wheels (onnxruntime, pillow on aarch64)."""
    text = render.render_dockerfile(name, ca_bundle=True)
    assert text.index("pip install -q pip==24.2") < text.index("-r /opt/edgebench-build/requirements.txt")


def test_render_base_image_override():
    text = render.render_dockerfile("x86-cpu", base_image="registry.local:5000/debian:bookworm-slim")
    assert "ARG BASE_IMAGE=registry.local:5000/debian:bookworm-slim" in text


def test_render_is_python38_safe_for_jetson():
    text = render.render_dockerfile("jetson-jp512")
    assert "python3 -m venv" not in text  # TensorRT's bindings live in the system dist-packages
    assert re.search(r"pip install -q --extra-index-url https://developer\.download\.nvidia\.com/compute/redist/jp/v512",
                     text)


def _stages(text):
    """{stage header line: its text} of a rendered Dockerfile."""
    out, cur = {}, None
    for line in text.splitlines():
        if line.startswith("FROM "):
            cur = line
            out[cur] = ""
        elif cur:
            out[cur] += line + "\n"
    return out


@pytest.mark.parametrize("ca", [False, True])
def test_cross_install_target_runs_pip_natively_and_checks_in_the_image(ca):
    """arm64-cpu: pip runs in a stage on the build machine's platform, picks aarch64 wheels by tag into the venv;
    the final stage (linux/arm64, under qemu on x86) copies it and runs only pip check / freeze."""
    t = targets.load("arm64-cpu")
    assert t.cross_install is not None and t.cross_install.glibc == "2.36"
    text = render.render_dockerfile(t, ca_bundle=ca, base_image="edgebench-base/debian:bookworm-slim-arm64")
    stages = _stages(text)
    assert list(stages) == ["FROM --platform=linux/arm64 ${BASE_IMAGE} AS base",
                            "FROM --platform=${BUILDPLATFORM} ${INSTALL_BASE_IMAGE} AS install", "FROM base"]
    assert "ARG BASE_IMAGE=edgebench-base/debian:bookworm-slim-arm64\n" in text
    assert "ARG INSTALL_BASE_IMAGE=debian:bookworm-slim\n" in text
    base, install, final = stages.values()
    assert "-m pip" not in base and "python3 -m venv" not in base
    assert "python3 -m venv --without-pip /opt/edgebench" in install
    pip = install[install.index("-r /opt/edgebench-build/requirements.txt") - 2000:]
    for flag in ("--no-deps", "--only-binary=:all:", "--implementation cp", "--python-version 3.11",
                 "--platform manylinux_2_36_aarch64", "--platform manylinux_2_17_aarch64",
                 "--platform manylinux2014_aarch64", "--target /opt/edgebench/lib/python3.11/site-packages"):
        assert flag in pip, flag
    assert "pip install -q --no-deps --no-index /opt/edgebench-build/dist/*.whl" in install  # the kit, as a wheel
    assert ("COPY extra-ca.crt /etc/edgebench/extra-ca.crt" in install) is ca
    assert "extra-ca" not in base + final and "PIP_CERT" not in base + final
    assert "COPY --from=install /opt/edgebench /opt/edgebench\n" in final
    assert "pip install" not in final
    assert "python3 -m pip check" in final and "pip freeze --all > /opt/edgebench-build/pip-freeze.txt" in final
    assert 'ENTRYPOINT ["edgebench"]' in final
    assert text.index("COPY requirements.txt") < text.index("COPY src ")
    assert "{{" not in text and "{%" not in text and "\n\n\n" not in text


def test_cross_install_platform_follows_an_override():
    text = render.render_dockerfile("arm64-cpu", platform="linux/amd64")
    assert "FROM --platform=linux/amd64 ${BASE_IMAGE} AS base" in text
    assert "--platform manylinux_2_17_x86_64" in text and "aarch64" not in text.split("AS install")[1]


def test_cross_install_pip_platforms():
    c = targets.CrossInstall(base_image="debian:bookworm-slim", glibc="2.31")
    assert c.pip_platforms("linux/arm64") == [f"manylinux_2_{n}_aarch64" for n in range(31, 16, -1)] + [
        "manylinux2014_aarch64"]
    assert c.pip_platforms("linux/amd64")[0] == "manylinux_2_31_x86_64"
    assert c.apt_packages == ["python3", "python3-venv"]


CROSS = (GOOD.replace("linux/amd64", "linux/arm64")
         + "cross_install: {base_image: debian:bookworm-slim, glibc: '2.36'}\n")


def test_cross_install_key(tmp_path):
    t = targets.load("t1", root=_write(tmp_path, "t1", CROSS))
    assert t.cross_install == targets.CrossInstall("debian:bookworm-slim", "2.36")
    assert targets.load("x86-cpu").cross_install is None


@pytest.mark.parametrize("text, expect", [
    (CROSS.replace("glibc: '2.36'", "glibc: '236'"), "cross_install.glibc: '236' is not a glibc version"),
    (CROSS.replace(", glibc: '2.36'", ""), "cross_install: missing glibc"),
    (CROSS.replace("glibc:", "libc:"), "cross_install: unknown key 'libc'"),
    (CROSS + "python_env: system\n", "cross_install: needs python_env venv"),
    (CROSS.replace("linux/arm64", "linux/riscv64"), "no wheel tag known here"),
    (CROSS.replace("glibc: '2.36'", "glibc: 2.36"), "cross_install.glibc: expected str"),
])
def test_malformed_cross_install(tmp_path, text, expect):
    with pytest.raises(TargetError) as e:
        targets.load("t1", root=_write(tmp_path, "t1", text))
    assert expect in str(e.value) and "cross_install" in str(e.value)


def test_one_architecture_table_both_ways():
    from edgebench.docker import targets as tg

    assert tg.machine_of("linux/arm64") == tg.machine_of("linux/arm64/v8") == "aarch64"
    assert tg.machine_of("linux/amd64") == "x86_64" and tg.machine_of("linux/riscv64") is None
    assert tg.platform_of_machine("linux", "x86_64") == "linux/amd64"
    assert tg.platform_of_machine("linux", "aarch64") == "linux/arm64"
