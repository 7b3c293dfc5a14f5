"""What a sweep's Ray Job takes with it: the spec and its local task folders, as the job's `working_dir`.

The job's driver runs on the head node in a fresh folder that Ray fills from the runtime environment's `working_dir`,
so the spec and every task folder it names by a relative path are copied into one staging folder, at the same
relative paths: the spec then reads on the cluster exactly as it reads here. Absolute paths (task trees and model
checkpoints on shared storage, `/models/...`) are not shipped: they are resolved on the cluster. Ray uploads the
folder through its object store, which refuses packages over a limit (512 MiB by default); a bigger folder is
refused here, before anything is uploaded, with what to do instead.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from cos_ray.errors import UsageError

DEFAULT_UPLOAD_LIMIT = 512 * 1024**2


def upload_limit() -> int:
    """Ray's limit on one uploaded package (`RAY_max_grpc_message_size`, 512 MiB unless changed)."""
    try:
        from ray._private.runtime_env.packaging import GCS_STORAGE_MAX_SIZE

        return int(GCS_STORAGE_MAX_SIZE)
    except Exception:  # a private name: fall back to Ray's documented default
        return int(os.environ.get("RAY_max_grpc_message_size", DEFAULT_UPLOAD_LIMIT))


@dataclass
class Package:
    """A staged working_dir: `root` holds `spec_name` and the shipped task folders (relative paths)."""

    root: Path
    spec_name: str
    shipped: list[str] = field(default_factory=list)  # relative task folders copied
    on_cluster: list[str] = field(default_factory=list)  # absolute paths left for the cluster to resolve
    size: int = 0


def read_raw_spec(spec_path: str | Path) -> dict:
    """The spec's YAML as written (no validation: model paths may exist only on the cluster)."""
    path = Path(spec_path)
    if not path.is_file():
        raise UsageError(f"spec {str(spec_path)!r}: no such file")
    from cos_ray.spec.safe_yaml import read_spec_data

    data = read_spec_data(path)  # bounded (size, UTF-8, aliases, depth, strings): a SpecError names the field
    if not isinstance(data, dict):
        raise UsageError(f"spec {str(spec_path)!r}: expected a mapping of sections (model, tasks, methods, ...)")
    return data


def task_folders(tasks) -> list[str]:
    """Every folder named by a `tasks:` section: `tasks: DIR`, `{folder: DIR}`, and grids of either."""
    if isinstance(tasks, str):
        return [tasks]
    if isinstance(tasks, list):
        return [folder for item in tasks for folder in task_folders(item)]
    if isinstance(tasks, dict):
        if "grid" in tasks:
            return task_folders(tasks["grid"])
        if "folder" in tasks:
            return task_folders(tasks["folder"])
    return []


@contextlib.contextmanager
def staged_working_dir(spec_path: str | Path, limit: int | None = None):
    """Yield a `Package` staged in a temporary folder (removed afterwards); UsageError if it cannot be shipped."""
    spec_path = Path(spec_path)
    raw = read_raw_spec(spec_path)
    base = spec_path.resolve().parent
    root = Path(tempfile.mkdtemp(prefix="cos-ray-job-"))
    try:
        package = Package(root=root, spec_name=spec_path.name)
        shutil.copy2(spec_path, root / spec_path.name)
        folders = sorted(dict.fromkeys(task_folders(raw.get("tasks"))), key=lambda f: len(Path(f).parts))
        for folder in folders:  # parents first: a folder inside one already shipped is skipped
            _stage_folder(folder, base, package)
        package.size = _size(root)
        _check_size(package, limit if limit is not None else upload_limit())
        yield package
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _stage_folder(folder: str, base: Path, package: Package) -> None:
    path = Path(folder).expanduser()
    if path.is_absolute():
        package.on_cluster.append(str(path))
        return
    source = (base / path).resolve()
    try:
        relative = source.relative_to(base)
    except ValueError:
        raise UsageError(
            f"tasks: folder {folder!r} lies outside the spec's folder {str(base)!r}; move it under the spec's folder "
            "(it is shipped with the job) or name it by an absolute path on storage every node can reach"
        ) from None
    if not source.is_dir():
        raise UsageError(f"tasks: folder {folder!r} ({source}) does not exist here; relative task folders are "
                         "shipped with the job from this machine")
    target = package.root / relative
    if relative == Path("."):  # the spec's own folder holds the samples
        shutil.copytree(source, target, dirs_exist_ok=True)
    elif target.exists():  # inside a folder already shipped
        return
    else:
        shutil.copytree(source, target)
    package.shipped.append(str(relative))


def _size(root: Path) -> int:
    return sum(path.stat().st_size for path in root.rglob("*") if path.is_file())


def _check_size(package: Package, limit: int) -> None:
    if package.size >= limit:
        raise UsageError(
            f"the spec and its task folders ({', '.join(package.shipped) or package.spec_name}) come to "
            f"{package.size / 1024**2:.1f} MiB, over Ray's upload limit of {limit / 1024**2:.0f} MiB for a job's "
            "working_dir; put the task folders on storage every node can reach and name them by an absolute path "
            "in the spec (tasks: /mnt/shared/...)"
        )
