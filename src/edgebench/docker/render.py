"""Render `templates/Dockerfile.j2` for a target."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Union

from edgebench.docker.targets import Target, load, repo_root


def extra_requirements(t: Target) -> List[Path]:
    """containers/<target>/requirements-*.txt: packages installed --no-deps after requirements.txt, each file
    from the index it names itself (`--index-url` line), e.g. ONNX Runtime's CUDA 12 feed for x86-cuda."""
    return sorted(t.folder.glob("requirements-*.txt"))


def template_path() -> Path:
    return repo_root() / "templates" / "Dockerfile.j2"


def render_dockerfile(target: Union[str, Target], *, base_image: Optional[str] = None, ca_bundle: bool = False,
                      template: Optional[Path] = None, platform: Optional[str] = None) -> str:
    """The Dockerfile for `target`; `base_image` overrides target.yaml's, `ca_bundle` adds the extra-CA steps,
    `platform` overrides the image's platform (a `cross_install` target names it in the Dockerfile)."""
    import jinja2

    t = load(target) if isinstance(target, str) else target
    path = template or template_path()
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(path.parent)), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, autoescape=False)
    text = env.get_template(path.name).render(
        t=t, base_image=base_image or t.base_image, ca_bundle=bool(ca_bundle), test_script=t.test_path is not None,
        platform=platform or t.platform,
        extra_requirements=[p.name for p in extra_requirements(t)])
    # no runs of blank lines left by skipped blocks
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text


def write_dockerfiles(out_dir: Optional[Path] = None, *, ca_bundle: bool = False) -> List[Path]:
    """Render every target to <out_dir>/<target>/Dockerfile (default build/docker/) for review and lint."""
    from edgebench.docker.targets import available

    out = Path(out_dir) if out_dir is not None else repo_root() / "build" / "docker"
    paths = []
    for name in available():
        p = out / name / "Dockerfile"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(render_dockerfile(name, ca_bundle=ca_bundle))
        paths.append(p)
    return paths


if __name__ == "__main__":  # python -m edgebench.docker.render [OUT_DIR]: render all, print the paths
    import sys

    for path in write_dockerfiles(Path(sys.argv[1]) if len(sys.argv) > 1 else None):
        print(path)
