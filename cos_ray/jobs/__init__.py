"""The Ray Jobs client: sweeps submitted to a cluster's job server, followed, listed, stopped. Runs on the user's
machine and talks HTTP to the cluster; the cluster runtime that executes a sweep is `cos_ray.cluster`."""
