"""Which CA bundle a build uses (flag, EDGEBENCH_CA_BUNDLE, pip's and requests' settings) and the hint a
CERTIFICATE_VERIFY_FAILED build gets."""
from __future__ import annotations

import io

import pytest

from edgebench.docker import cabundle

pytest.importorskip("docker")
from edgebench.docker import BuildError  # noqa: E402
from edgebench.docker import build as dbuild  # noqa: E402

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


@pytest.fixture
def pem(tmp_path):
    p = tmp_path / "proxy-ca.pem"
    p.write_text(PEM)
    return p


def test_flag_wins_and_must_exist(pem, tmp_path):
    got = cabundle.resolve(str(pem), env={"PIP_CERT": "/nonexistent"}, pip_files=[])
    assert got.path == pem and got.source == "--ca-bundle"
    with pytest.raises(FileNotFoundError, match="given with --ca-bundle"):
        cabundle.resolve(str(tmp_path / "missing.pem"), env={}, pip_files=[])


@pytest.mark.parametrize("var", ["EDGEBENCH_CA_BUNDLE", "PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"])
def test_environment_settings_the_host_pip_already_uses(var, pem):
    got = cabundle.resolve(None, env={var: str(pem)}, pip_files=[])
    assert got.path == pem and got.source == var
    assert f"(from {var})" in got.describe()


def test_order_of_environment_settings(pem, tmp_path):
    other = tmp_path / "other.pem"
    other.write_text(PEM)
    got = cabundle.resolve(None, env={"SSL_CERT_FILE": str(other), "PIP_CERT": str(pem)}, pip_files=[])
    assert got.source == "PIP_CERT"


def test_missing_file_from_pip_settings_is_skipped_but_edgebench_setting_is_an_error(pem, tmp_path):
    got = cabundle.resolve(None, env={"PIP_CERT": str(tmp_path / "gone.pem"), "SSL_CERT_FILE": str(pem)},
                           pip_files=[])
    assert got.source == "SSL_CERT_FILE"
    with pytest.raises(FileNotFoundError, match="EDGEBENCH_CA_BUNDLE"):
        cabundle.resolve(None, env={"EDGEBENCH_CA_BUNDLE": str(tmp_path / "gone.pem")}, pip_files=[])


def test_pip_config_cert(pem, tmp_path):
    conf = tmp_path / "pip.conf"
    conf.write_text(f"[global]\ntimeout = 60\ncert = {pem}\n")
    got = cabundle.resolve(None, env={}, pip_files=[conf])
    assert got.path == pem and got.source == f"pip config global.cert ({conf})"
    user = tmp_path / "user.conf"
    user.write_text(f"[install]\ncert = {pem}\n")
    assert cabundle.resolve(None, env={}, pip_files=[conf, user]).source.startswith("pip config install.cert")


def test_pip_config_files_follow_pip(tmp_path):
    files = cabundle.pip_config_files({"HOME": str(tmp_path), "PIP_CONFIG_FILE": str(tmp_path / "x.conf")})
    assert files[0] == cabundle.Path("/etc/xdg/pip/pip.conf") and files[-1] == tmp_path / "x.conf"
    assert tmp_path / ".config" / "pip" / "pip.conf" in files


def test_nothing_configured(tmp_path):
    assert cabundle.resolve(None, env={"HOME": str(tmp_path)}, pip_files=[]) is None


def test_cert_hint_names_the_command():
    lines = ["Step 12/24 : RUN python3 -m pip install -r requirements.txt",
             "WARNING: Retrying ... SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] "
             "certificate verify failed: self-signed certificate in certificate chain (_ssl.c:992)'))"]
    hint = cabundle.cert_failure_hint(lines, target="x86-cpu", used=None)
    assert f"invoke build --target x86-cpu --ca-bundle {cabundle.system_bundle()}" in hint
    used = cabundle.CABundle(cabundle.Path("/tmp/only-one.pem"), "PIP_CERT")
    assert "lacks the proxy's CA" in cabundle.cert_failure_hint(lines, target="x86-cpu", used=used)
    assert cabundle.cert_failure_hint(["ERROR: No matching distribution"], target="x86-cpu", used=None) is None


class CertFailAPI:
    """A daemon whose pip step fails TLS verification."""

    def ping(self):
        return True

    def inspect_image(self, name):
        return {"Id": "sha256:" + "a" * 64}

    def build(self, **kw):
        self.kw = kw
        return iter([{"stream": "Step 1/2 : FROM debian:bookworm-slim\n"},
                     {"stream": "Step 2/2 : RUN python3 -m pip install -q -r /opt/edgebench-build/requirements.txt\n"},
                     {"stream": "WARNING: Retrying (Retry(total=4)) after connection broken by 'SSLError("
                                "SSLCertVerificationError(1, \"[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify "
                                "failed: unable to get local issuer certificate\"))'\n"},
                     {"error": "The command '/bin/bash -o pipefail -c python3 -m pip install' returned a non-zero "
                               "code: 1", "errorDetail": {"code": 1}}])


def test_build_with_cert_failure_says_what_to_run(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEBENCH_LOG_DIR", str(tmp_path / "logs"))
    out = io.StringIO()
    with pytest.raises(BuildError) as e:
        dbuild.build_image("x86-cpu", ca_bundle=None, smoke_test=False, api=CertFailAPI(), echo=out)
    msg = str(e.value)
    assert "CERTIFICATE_VERIFY_FAILED" in e.value.reason
    assert f"invoke build --target x86-cpu --ca-bundle {cabundle.system_bundle()}" in msg
    assert "full log:" in msg
    # the terminal shows the steps and the error, not pip's retries
    assert "Step 2/2" in out.getvalue() and "Retrying" not in out.getvalue()


def test_build_says_which_bundle_and_never_prints_built_twice(tmp_path, monkeypatch, pem):
    monkeypatch.setenv("EDGEBENCH_LOG_DIR", str(tmp_path / "logs"))

    class OkAPI(CertFailAPI):
        def build(self, **kw):
            self.kw = kw
            return iter([{"stream": "Step 1/2 : FROM base\n"}, {"stream": "Step 2/2 : LABEL a=b\n"},
                         {"aux": {"ID": "sha256:" + "a" * 64}}, {"stream": "Successfully built aaaaaaaaaaaa\n"}])

    out = io.StringIO()
    ca = cabundle.CABundle(pem, "PIP_CERT")
    r = dbuild.build_image("x86-cpu", ca_bundle=ca, smoke_test=False, api=OkAPI(), echo=out)
    text = out.getvalue()
    assert f"extra CA bundle {pem} (from PIP_CERT)" in text and "no image layer keeps it" in text
    assert "built" not in text.replace("Successfully built", ""), "tasks.py prints the one 'built' line"
    assert "LABEL" not in text, "label steps stay in the log"
    assert "(from PIP_CERT)" in r.log_path.read_text()
