"""Build a target's image with the docker SDK's low-level API: streamed log, progress, labels, smoke test.

The build context is made here (a tar in memory, fixed mtimes and owners so the layer cache holds):
Dockerfile (rendered), the target's requirements.txt (and test.py), pyproject.toml, README.md, src/, and
with `ca_bundle` the extra CA file as extra-ca.crt (only the Dockerfile's install stage copies it: no layer of
the final image holds it).
"""
from __future__ import annotations

import hashlib
import io
import json
import re
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Dict, Iterable, List, Optional, Tuple, Union

from edgebench import util
from edgebench.contracts.vocabulary import IMAGE_ENV, IMAGE_ID_ENV, TARGET_ENV
from edgebench.docker.cabundle import CABundle, cert_failure_hint
from edgebench.docker.client import api_client, log_path
from edgebench.docker.errors import BaseImageError, BuildError, ContainerError
from edgebench.docker.render import extra_requirements, render_dockerfile
from edgebench.docker.targets import Target, load, platform_of_machine, repo_root

LABEL_PREFIX = "io.edgebench."
_SKIP_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache"}
_SKIP_SUFFIXES = (".pyc", ".pyo", ".egg-info")
_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)")


@dataclass
class BuildResult:
    tag: str
    image_id: str
    seconds: float
    log_path: Path
    smoke_log_path: Optional[Path] = None
    labels: Dict[str, str] = field(default_factory=dict)
    cached_steps: int = 0
    steps: int = 0


def image_labels(t: Target, *, base_image: Optional[str] = None, version: Optional[str] = None,
                 revision: Optional[str] = None) -> Dict[str, str]:
    from edgebench import __version__

    version = version or __version__
    reqs = t.requirements_path.read_bytes() if t.requirements_path.is_file() else b""
    labels = {
        "org.opencontainers.image.title": f"edgebench {t.name}",
        "org.opencontainers.image.version": version,
        "org.opencontainers.image.revision": revision or util.git_revision(repo_root(), use_env=False) or "unknown",
        "org.opencontainers.image.base.name": base_image or t.base_image,
        LABEL_PREFIX + "version": version,
        LABEL_PREFIX + "target": t.name,
        LABEL_PREFIX + "base-image": base_image or t.base_image,
        LABEL_PREFIX + "platform": t.platform,
        LABEL_PREFIX + "python": t.python,
        LABEL_PREFIX + "gpu": t.gpu,
        LABEL_PREFIX + "l4t": t.l4t or "",
        LABEL_PREFIX + "tensorflow": t.versions.get("tensorflow", ""),
        LABEL_PREFIX + "tensorrt": t.versions.get("tensorrt", ""),
        LABEL_PREFIX + "onnxruntime": t.versions.get("onnxruntime", ""),
        LABEL_PREFIX + "backends": ",".join(t.backends),
        LABEL_PREFIX + "packages": "\n".join(t.pinned_packages()),
        LABEL_PREFIX + "pip-index": " ".join(t.pip_extra_index_urls),
        LABEL_PREFIX + "requirements-sha256": hashlib.sha256(reqs).hexdigest(),
    }
    return labels


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    tar.addfile(info, io.BytesIO(data))


def _tree(root: Path) -> Iterable[Path]:
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if any(part in _SKIP_DIRS or part.endswith(_SKIP_SUFFIXES) for part in rel.parts):
            continue
        if p.is_file():
            yield p


def build_context(t: Target, dockerfile: str, *, ca_bundle: Optional[Union[str, Path]] = None,
                  root: Optional[Path] = None) -> Tuple[io.BytesIO, List[str]]:
    """An in-memory tar (deterministic headers) and the list of its names."""
    root = root or repo_root()
    buf = io.BytesIO()
    names: List[str] = []
    with tarfile.open(fileobj=buf, mode="w") as tar:
        def add(name: str, data: bytes) -> None:
            _add_bytes(tar, name, data)
            names.append(name)

        add("Dockerfile", dockerfile.encode())
        add("requirements.txt", t.requirements_path.read_bytes() if t.requirements_path.is_file() else b"")
        for extra in extra_requirements(t):
            add(extra.name, extra.read_bytes())
        if t.test_path:
            add("test.py", t.test_path.read_bytes())
        for name in ("pyproject.toml", "setup.py", "README.md"):
            add(name, (root / name).read_bytes() if (root / name).is_file() else b"")
        for tpl in sorted((root / "templates").glob("report*.j2")):  # shipped inside the wheel by setup.py
            add(f"templates/{tpl.name}", tpl.read_bytes())
        for p in _tree(root / "src"):
            add(p.relative_to(root).as_posix(), p.read_bytes())
        if ca_bundle:
            ca = Path(ca_bundle)
            if not ca.is_file():
                raise FileNotFoundError(f"CA bundle not found: {ca}")
            add("extra-ca.crt", ca.read_bytes())
    buf.seek(0)
    return buf, names


def ensure_base_image(api: Any, base_image: str, *, platform: Optional[str], target: str,
                      log: IO[str]) -> None:
    """The base image must be local or pullable; BaseImageError otherwise."""
    from docker.errors import ImageNotFound

    try:
        info = api.inspect_image(base_image)
        have = f"{info.get('Os', 'linux')}/{info.get('Architecture', '?')}"
        if not platform or not info.get("Architecture") or have == platform:
            log.write(f"# base image {base_image}: present locally ({have})\n")
            return
        log.write(f"# base image {base_image}: present locally for {have}, not {platform}\n")
    except ImageNotFound:
        pass
    log.write(f"# base image {base_image}: not local, pulling\n")
    repo, _, tag = base_image.rpartition(":") if ":" in base_image.split("/")[-1] else (base_image, "", "latest")
    cause: object = None
    try:
        for ev in api.pull(repo, tag=tag, platform=platform, stream=True, decode=True):
            log.write(json.dumps(ev) + "\n")
            if "error" in ev:
                cause = ev.get("error")
                break
    except Exception as exc:  # APIError, requests' ConnectionError, OSError
        cause = exc
    if cause is not None:
        log.write(f"# pull failed: {cause}\n")
        log.flush()
        raise BaseImageError(base_image, cause, target=target, log_path=getattr(log, "name", None))


def daemon_platform(api: Any) -> str:
    """The engine's own os/arch (what a build stage runs natively), e.g. linux/amd64."""
    v = api.version()
    return platform_of_machine(v.get("Os", "linux"), v.get("Arch", ""))


class _Progress:
    """Turns the daemon's JSON stream into log lines and a one-line progress display."""

    def __init__(self, log: IO[str], echo: Optional[IO[str]]):
        # the terminal gets the steps and errors; pip's and apt's chatter stays in the log
        self.log, self.echo = log, echo
        self.lines: List[str] = []
        self.step = self.steps = self.cached = 0
        self.image_id: Optional[str] = None
        self.error: Optional[str] = None
        self.started = time.monotonic()
        self.step_times: List[Tuple[int, float, str]] = []  # (step, seconds, instruction): where a build's time goes
        self._step_start: Optional[Tuple[int, float, str]] = None

    def feed(self, ev: Dict[str, Any]) -> None:
        if "stream" in ev:
            for line in str(ev["stream"]).splitlines():
                self._line(line)
        elif "status" in ev:  # pulls inside the build
            self._line(f"{ev['status']} {ev.get('id', '')} {ev.get('progress', '')}".rstrip(), show=False)
        if "error" in ev:
            self.error = ev.get("error") or json.dumps(ev.get("errorDetail"))
            self._line(f"ERROR: {self.error}")
        aux = ev.get("aux")
        if isinstance(aux, dict) and aux.get("ID"):
            self.image_id = aux["ID"]

    def _end_step(self) -> None:
        if self._step_start is not None:
            step, began, what = self._step_start
            self.step_times.append((step, time.monotonic() - began, what))
            self._step_start = None

    def slowest(self, n: int = 5) -> str:
        """The `n` slowest steps, e.g. `step 12 301.2 s (RUN python3 -m pip install ...)`, one a line."""
        self._end_step()
        top = sorted(self.step_times, key=lambda x: -x[1])[:n]
        return "\n".join(f"#   step {s} {sec:.1f} s ({what[:100]})" for s, sec, what in top)

    def _line(self, line: str, show: bool = True) -> None:
        self.lines.append(line)
        self.log.write(line + "\n")
        self.log.flush()
        m = _STEP.match(line)
        if m:
            self.step, self.steps = int(m.group(1)), int(m.group(2))
            self._end_step()
            self._step_start = (self.step, time.monotonic(), m.group(3))
        if "Using cache" in line:
            self.cached += 1
        done = re.match(r"Successfully built ([0-9a-f]+)", line)
        if done and not self.image_id:
            self.image_id = done.group(1)
        label_step = bool(m) and m.group(3).startswith("LABEL ")  # the API's labels: one step each
        if self.echo is not None and show and ((m and not label_step) or line.startswith("ERROR")):
            prefix = f"[{time.monotonic() - self.started:6.1f}s {self.step}/{self.steps or '?'}] "
            self.echo.write(prefix + line + "\n")
            self.echo.flush()


def build_image(target: Union[str, Target], *, base_image: Optional[str] = None, platform: Optional[str] = None,
                ca_bundle: Optional[Union[str, Path, CABundle]] = None, no_cache: bool = False, smoke_test: bool = True,
                tag: Optional[str] = None, api: Any = None, echo: Optional[IO[str]] = sys.stderr) -> BuildResult:
    """Render, build, tag and smoke-test one target's image; logs under build/logs/.

    target       name under containers/ (or a loaded Target)
    base_image   override target.yaml's base image (a mirror, a pre-pulled copy)
    platform     e.g. linux/arm64 (default: the target's own; a local base of another platform is not used)
    ca_bundle    PEM file trusted by pip during the build (TLS-intercepting proxies); a CABundle (from
                 edgebench.docker.cabundle.resolve) also says where it came from. Never left in the image.
    no_cache     rebuild every layer
    smoke_test   run `edgebench env --check <backends>` (and the target's test.py) in the new image
    """
    from edgebench import __version__

    t = load(target) if isinstance(target, str) else target
    base = base_image or t.base_image
    tag = tag or t.tag(__version__)
    platform = platform or t.platform  # an arm64 target builds as arm64 (under qemu on an x86 machine)
    ca = ca_bundle if isinstance(ca_bundle, CABundle) or ca_bundle is None else CABundle(Path(ca_bundle), "--ca-bundle")
    ca_bundle = ca.path if ca else None
    if ca is not None and echo is not None:
        echo.write(f"using the {ca.describe()}; pip trusts it during the build only, no image layer keeps it\n")
    dockerfile = render_dockerfile(t, base_image=base, ca_bundle=bool(ca_bundle), platform=platform)
    labels = image_labels(t, base_image=base)
    context, names = build_context(t, dockerfile, ca_bundle=ca_bundle)
    logfile = log_path("build", t.name)
    (logfile.parent / f"Dockerfile.{t.name}").write_text(dockerfile)
    api = api or api_client()
    started = time.monotonic()
    with open(logfile, "w", encoding="utf-8") as log:
        log.write(f"# target: {t.name}\n# tag: {tag}\n# base image: {base}\n# platform: {platform or '(daemon)'}\n"
                  f"# ca bundle: {ca.describe() if ca else '-'}\n# no cache: {no_cache}\n"
                  f"# context: {', '.join(names[:6])}"
                  f"{' ...' if len(names) > 6 else ''} ({len(names)} files)\n"
                  f"# labels: {json.dumps(labels, indent=None)}\n\n")
        ensure_base_image(api, base, platform=platform, target=t.name, log=log)
        buildargs, build_platform = {"BASE_IMAGE": base}, platform
        if t.cross_install:  # its stages name their platforms: the build itself is given none (see the template)
            native = daemon_platform(api)
            log.write(f"# cross install: pip runs on {native}, the image is {platform}\n")
            ensure_base_image(api, t.cross_install.base_image, platform=native, target=t.name, log=log)
            buildargs, build_platform = {"BASE_IMAGE": base, "BUILDPLATFORM": native}, None
        progress = _Progress(log, echo)
        try:
            stream = api.build(fileobj=context, custom_context=True, encoding=None, dockerfile="Dockerfile",
                               tag=tag, labels=labels, buildargs=buildargs, platform=build_platform,
                               nocache=no_cache, rm=True, forcerm=True, pull=False, decode=True)
            for ev in stream:
                progress.feed(ev)
        except BuildError:
            raise
        except Exception as exc:  # APIError before the stream starts (bad platform, context rejected, ...)
            progress.feed({"error": str(exc)})
            raise BuildError(str(exc), progress.lines, target=t.name, tag=tag, log_path=str(logfile)) from exc
        seconds = time.monotonic() - started
        log.write(f"\n# finished in {seconds:.1f} s ({progress.cached} of {progress.steps} steps cached); "
                  f"slowest steps:\n{progress.slowest()}\n")
    if progress.error:
        hint = cert_failure_hint(progress.lines, target=t.name, used=ca)
        raise BuildError(hint or progress.error, progress.lines, target=t.name, tag=tag, log_path=str(logfile))
    info = api.inspect_image(tag)
    image_id = info["Id"]
    built = f"{info.get('Os', 'linux')}/{info.get('Architecture', '?')}"
    if t.cross_install and info.get("Architecture") and built != platform:
        raise BuildError(f"the image was built for {built}, not {platform}", progress.lines, target=t.name, tag=tag,
                         log_path=str(logfile))
    result = BuildResult(tag=tag, image_id=image_id, seconds=seconds, log_path=logfile, labels=labels,
                         cached_steps=progress.cached, steps=progress.steps)
    if smoke_test:
        result.smoke_log_path = smoke(t, tag, api=api, echo=echo)
    return result


def smoke(target: Union[str, Target], image: str, *, api: Any = None, echo: Optional[IO[str]] = None) -> Path:
    """`edgebench env --check <backends>` and the target's test.py inside `image`; ContainerError on failure.

    Both outputs go into one log (build/logs/smoke-<target>-*.log), kept whether it passes or not.
    """
    from edgebench.docker.run import run_in_image

    t = load(target) if isinstance(target, str) else target
    api = api or api_client()
    logfile = log_path("smoke", t.name)
    env = {"EDGEBENCH_EXPECT_VERSIONS": json.dumps(t.versions), "EDGEBENCH_EXPECT_BACKENDS": ",".join(t.backends),
           "EDGEBENCH_EXPECT_L4T": t.l4t or "", IMAGE_ENV: image, TARGET_ENV: t.name}
    try:
        env[IMAGE_ID_ENV] = api.inspect_image(image)["Id"]
    except Exception:  # noqa: BLE001 - the run itself will say what is wrong with the image
        pass
    parts = []
    failed = None
    commands = [("edgebench env --check " + " ".join(t.backends), ["env", "--check", *t.backends], None)]
    if t.test_path:
        commands.append(("python3 test.py", ["/opt/edgebench-build/test.py"], ["python3"]))
    for title, command, entrypoint in commands:
        r = run_in_image(api, image, command, entrypoint=entrypoint, target=t, environment=env,
                         kind="smoke-run", check=False)
        parts.append((title, r))
        if r.exit_code != 0:
            failed = (title, r, command, entrypoint)
            break
    with open(logfile, "w", encoding="utf-8") as f:
        f.write(f"# smoke test of {image} (target {t.name})\n")
        for title, r in parts:
            f.write(f"\n## {title}: exit {r.exit_code} in {r.seconds:.1f} s (log {r.log_path})\n")
            f.write(r.stdout)
            if r.stderr:
                f.write("\n## stderr\n" + r.stderr)
    if failed:
        title, r, command, entrypoint = failed
        raise ContainerError(None, r.exit_code, list(entrypoint or ["edgebench"]) + list(command), image,
                             r.stderr or r.stdout, log_path=str(logfile))
    if echo is not None:
        echo.write(f"smoke test of {image} passed; log {logfile}\n")
    return logfile


__all__ = ["BuildResult", "build_image", "smoke", "build_context", "image_labels", "ContainerError"]
