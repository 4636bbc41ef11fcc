"""`bench --resume`: continue a results file with the same request, re-measuring what did not complete.

The document records the request that started it (`"request"`: suite, test images, artifacts and their
hashes, data, reference). Resuming checks that the new request is the same one: a file never mixes rows
measured under different requests while it says `complete: true`. Groups whose rows are all present and none
failed are kept; a group with a failed row (a crashed or killed child) or a missing row is measured again.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Set, Tuple

from edgebench import results, util
from edgebench.bench.errors import BenchError
from edgebench.bench.rows import group_ids

#: request fields that must agree between the run that started a file and a resume of it
#: (`only`: a resume with another --only would keep some backends' rows, drop or never measure the others and
#: still write complete: true; issue 20)
COMPARED = ("suite", "test_images", "artifacts", "data", "reference", "only")


def suite_digest(raw: Dict[str, Any]) -> str:
    return util.json_digest(raw)


def request_record(suite, test_images: int, artifacts: Dict[str, str], data_checksum: str, reference: str,
                   only=None) -> Dict[str, Any]:
    """What the results document records about the request that measured it."""
    return {"suite": {"name": suite.name, "sha256": suite_digest(suite.raw)}, "test_images": int(test_images),
            "artifacts": dict(sorted(artifacts.items())), "data": data_checksum, "reference": reference,
            "only": list(only) if only else None}


def differences(old: Dict[str, Any], new: Dict[str, Any]) -> List[str]:
    out = []
    for key in COMPARED:
        a, b = old.get(key), new.get(key)
        if a == b or (key == "only" and sorted(a or []) == sorted(b or [])):
            continue
        if key == "artifacts" and isinstance(a, dict) and isinstance(b, dict):
            # an artifact only one run used (--only) is not a difference; one both used must be the same file
            changed = sorted(k for k in set(a) & set(b) if a[k] != b[k])
            if changed:
                out.append(f"artifacts differ ({', '.join(changed)})")
        elif key == "suite":
            out.append(f"suite differs ({(a or {}).get('name')} {str((a or {}).get('sha256'))[:12]} -> "
                       f"{(b or {}).get('name')} {str((b or {}).get('sha256'))[:12]})")
        elif key == "only":
            out.append(f"--only differs ({', '.join(a) if a else 'every backend'} -> "
                       f"{', '.join(b) if b else 'every backend'})")
        else:
            out.append(f"{key.replace('_', ' ')} differ{'s' if not key.endswith('s') else ''} ({a!r} -> {b!r})")
    return out


def _finished(row: Dict[str, Any], rounds: int) -> bool:
    return row.get("status") != "failed" and int((row.get("extra") or {}).get("rounds_done") or 1) >= rounds


def resumable(out: Path, fresh: Dict[str, Any], groups, rounds: int = 1
              ) -> Tuple[Dict[str, Any], Set[Tuple[str, str, Any]]]:
    """The earlier document keeping the rows of every group it completed without failure, and those groups'
    keys; BenchError when the file was started by a different request."""
    try:
        old = results.load(out)
    except results.ResultsError as exc:
        raise BenchError(f"--resume: {exc}") from None
    started = old.get("request")
    if not isinstance(started, dict):
        raise BenchError(f"--resume {out}: the file records no request (written by an older kit), so a resume "
                         f"cannot be checked against it; pass --force to measure again from scratch")
    diff = differences(started, fresh["request"])
    if diff:
        raise BenchError(f"--resume {out}: this request differs from the one that started the file: "
                         f"{'; '.join(diff)}. Resume with the same request, or write to a new --out "
                         f"(or --force to replace it)")
    old["request"] = dict(started, artifacts=dict(started.get("artifacts") or {}, **fresh["request"]["artifacts"]))
    by_id = {r.get("id"): r for r in old["rows"]}
    done = set()
    keep: Set[str] = set()
    for g in groups:
        ids = group_ids(g)
        if all(i in by_id and _finished(by_id[i], rounds) for i in ids):
            done.add(g.key)
            keep |= ids
    old["rows"] = [r for r in old["rows"] if r.get("id") in keep]
    old["complete"] = False
    env_old, env_new = old.get("environment") or {}, fresh["environment"]
    old.setdefault("resumed", []).append({
        "at": fresh["created"], "kept_groups": len(done),
        "environment_same": env_old.get("cpu") == env_new.get("cpu") and env_old.get("versions") == env_new.get(
            "versions")})
    return old, done
