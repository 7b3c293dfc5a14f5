"""What the connected Ray cluster can give now, in one line: what a message about a placement that waits shows.

`ray status` prints the same figures (free and total resources, live and dead nodes) but needs a shell on the head
node; the driver asks Ray for them directly, so a sweep can say why a worker group is not being placed.
"""

from __future__ import annotations


def _short(resources: dict, names) -> str:
    """`{'CPU': 1.5, 'GPU': 0.0}`: the resources a worker group asks for (`names`; none missing: Ray leaves out
    what is used up)."""
    return str({name: round(float(resources.get(name, 0)), 3) for name in names})


def cluster_now() -> str:
    """`free {...} of {...}; 1 node(s) alive, 1 dead` (`ray.available_resources()`, `ray.nodes()`), or why not."""
    import ray

    try:
        free, total = ray.available_resources(), ray.cluster_resources()
        nodes = ray.nodes()
    except Exception as err:  # noqa: BLE001 - a description, never a failure of its own
        return f"the cluster's resources could not be read ({type(err).__name__})"
    alive = sum(1 for node in nodes if node.get("Alive"))
    names = [name for name in ("CPU", "GPU") if name in total] or ["CPU"]
    return (f"ray.available_resources(): free {_short(free, names)} of {_short(total, names)}; "
            f"{alive} node(s) alive, {len(nodes) - alive} dead")


def on_dead_node(placement) -> bool:
    """Whether a placement group lost a node: Ray is rescheduling it, or one of its bundles sits on a dead node.

    Its workers died with the node (actors of a group are never restarted), so a group on it is known dead before a
    unit is sent to it. False when it cannot be told (the unit's call finds out)."""
    import ray
    from ray.util.placement_group import placement_group_table

    try:
        table = placement_group_table(placement)
        if table.get("state") not in ("CREATED", None):
            return True
        alive = {node["NodeID"] for node in ray.nodes() if node.get("Alive")}
    except Exception:  # noqa: BLE001 - unknown: let the call decide
        return False
    return any(node not in alive for node in table.get("bundles_to_node_id", {}).values() if node)
