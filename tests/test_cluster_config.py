"""The cluster definitions: `cluster.yaml` against Ray's own cluster-config schema, the KubeRay manifest's shape, and
the Ray version pinned in their images against the Ray that cos-ray runs with. No cloud, no kubectl: offline checks.
"""

from __future__ import annotations

import copy
import importlib.metadata
import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
RAY_IMAGE = re.compile(r"rayproject/ray:(?P<version>\d+\.\d+\.\d+)-py(?P<python>\d+)-gpu")


def ray_version() -> str:
    return importlib.metadata.version("ray")


def load(path: str) -> dict:
    return yaml.safe_load((ROOT / path).read_text())


@pytest.fixture(scope="module")
def cluster() -> dict:
    return load("cluster.yaml")


def test_cluster_yaml_validates_against_rays_schema_as_ray_up_prepares_it(cluster):
    """The file as written (Ray's JSON schema: no unknown keys), then as `ray up` fills and checks it."""
    import ray.autoscaler
    from ray.autoscaler._private.util import prepare_config, validate_config

    schema = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    jsonschema.validate(cluster, schema)
    prepared = prepare_config(copy.deepcopy(cluster))  # provider defaults merged, min/max workers filled
    validate_config(prepared)
    assert prepared["provider"]["type"] == "aws"

    typo = copy.deepcopy(cluster)
    typo["available_node_types"]["head"]["node_confg"] = typo["available_node_types"]["head"].pop("node_config")
    with pytest.raises(jsonschema.ValidationError):  # the schema is strict enough to catch a misspelt key
        jsonschema.validate(typo, schema)


def test_cluster_yaml_has_a_cpu_head_and_gpu_workers_running_the_pinned_ray_with_cos_ray(cluster):
    types = cluster["available_node_types"]
    head = cluster["head_node_type"]
    workers = {name: spec for name, spec in types.items() if name != head}
    assert head in types and workers
    assert all(spec["max_workers"] >= 1 for spec in workers.values())
    assert any(re.match(r"p4de?\.|p5\.|g5\.|g6e?\.", spec["node_config"]["InstanceType"]) for spec in workers.values())

    image = RAY_IMAGE.fullmatch(cluster["docker"]["image"])
    assert image, cluster["docker"]["image"]
    assert image["version"] == ray_version()  # the cluster runs the Ray the client and the tests run
    assert image["python"] == "311"
    setup = " ".join(cluster["setup_commands"])
    assert "/home/ray/cos-ray" in setup and f'"ray[default]=={ray_version()}"' in setup
    assert cluster["file_mounts"]["/home/ray/cos-ray"] == "."  # this checkout, installed on every node

    starts = cluster["head_start_ray_commands"] + cluster["worker_start_ray_commands"]
    assert all("RAY_AUTH_MODE=token" in command for command in starts if "ray start" in command)
    assert "/home/ray/.ray/auth_token" in cluster["file_mounts"]


def test_the_pinned_ray_satisfies_the_packages_requirement():
    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    ray = next(Requirement(text) for text in project["dependencies"] if Requirement(text).name == "ray")
    pinned = RAY_IMAGE.fullmatch(load("cluster.yaml")["docker"]["image"])["version"]
    assert ray.specifier.contains(pinned), (str(ray), pinned)


def test_kuberay_raycluster_has_a_head_and_a_gpu_worker_group_on_the_pinned_image():
    manifest = load("k8s/raycluster.yaml")
    assert manifest["apiVersion"] == "ray.io/v1" and manifest["kind"] == "RayCluster"
    spec = manifest["spec"]
    assert spec["rayVersion"] == ray_version()

    head = spec["headGroupSpec"]
    assert all(isinstance(value, str) for value in head["rayStartParams"].values())  # KubeRay wants strings
    groups = spec["workerGroupSpecs"]
    assert groups and all(group["minReplicas"] <= group["replicas"] <= group["maxReplicas"] for group in groups)
    pods = [head["template"]["spec"]] + [group["template"]["spec"] for group in groups]
    for pod in pods:
        for container in pod["containers"]:
            assert container["image"].endswith(f":ray{ray_version()}-py311-gpu"), container["image"]
            env = {item["name"]: item for item in container["env"]}
            assert env["RAY_AUTH_MODE"]["value"] == "token" and "secretKeyRef" in env["RAY_AUTH_TOKEN"]["valueFrom"]
            mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
            assert {"/models", "/data"} <= mounts  # absolute paths in specs resolve on every pod, head included
            claimed = {volume["name"] for volume in pod["volumes"]}
            assert {mount["name"] for mount in container["volumeMounts"]} <= claimed
    for group in groups:
        limits = group["template"]["spec"]["containers"][0]["resources"]["limits"]
        assert int(limits["nvidia.com/gpu"]) >= 1

    dockerfile = (ROOT / "k8s" / "Dockerfile").read_text()
    assert f"ARG RAY_VERSION={ray_version()}\n" in dockerfile
    assert "FROM rayproject/ray:${RAY_VERSION}-py311-gpu" in dockerfile
    assert re.search(r"pip install .*/home/ray/cos-ray", dockerfile)
