"""What the connected Ray cluster can give now, in one line: what a message about a placement that waits shows.

`ray status` prints the same figures (free and total resources, live and dead nodes) but needs a shell on the head
node; the driver asks Ray for them directly, so a sweep can say why a worker group is not being placed.
"""

from __future__ import annotations


def _short(resources: dict) -> str:
    """`{'CPU': 1.5, 'GPU': 0.0}`: the resources a worker group can ask for (no memory, node or custom labels)."""
    shown = {name: round(float(value), 3) for name, value in sorted(resources.items())
             if name in ("CPU", "GPU") or name.startswith("accelerator_type")}
    return str(shown or {})


def cluster_now() -> str:
    """`free {...} of {...}; 1 node(s) alive, 1 dead` (`ray.available_resources()`, `ray.nodes()`), or why not."""
    import ray

    try:
        free, total = ray.available_resources(), ray.cluster_resources()
        nodes = ray.nodes()
    except Exception as err:  # noqa: BLE001 - a description, never a failure of its own
        return f"the cluster's resources could not be read ({type(err).__name__})"
    alive = sum(1 for node in nodes if node.get("Alive"))
    return (f"ray.available_resources(): free {_short(free)} of {_short(total)}; "
            f"{alive} node(s) alive, {len(nodes) - alive} dead")
