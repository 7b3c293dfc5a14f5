"""The model-holding worker: a Ray actor that loads a model once and runs many seed trajectories on it.

Loading a Wan2.2 expert takes minutes and 26.6 GiB, so a worker keeps its model for its whole life and serves every
unit the coordinator sends it. It is a plain class here; `group.py` turns it into an actor with the resources and the
no-retry options a member of a collective needs. torch and diffusers are imported inside the actor's methods, never by
the driver. Results leave the worker as numpy (`MemberResult` with numpy latents) so the driver needs no torch.
"""

from __future__ import annotations

import dataclasses
import os

from cos_ray.cluster.outcome import WorkerInfo


class SeedWorker:
    """One member of a worker group: its model, its place in the group's process group, and its seeds' runs."""

    def __init__(self, cpu_threads: int = 1):
        import torch

        if not torch.cuda.is_available():
            # On shared CPUs more than one thread per worker swings wildly (several workers share few cores).
            torch.set_num_threads(cpu_threads)
            os.environ["COS_RAY_CPU_THREADS"] = str(cpu_threads)  # the loader sets the thread count from it
        self.model = None  # cos_ray.model.loader.LoadedModel
        self.device = "cpu"
        self.rendezvous = None  # rank 0 only: the store the group's ranks meet at
        self.seeds = None  # DistributedSeeds while in a group of several workers
        self.counts = None  # seeds per worker of the current layout
        self.rank = 0
        self.state = {}  # free room for code sent with `execute` (benchmarks, probes)
        self.shard = []  # devices each expert is sharded over (several GPUs), else empty
        self.interventions = []  # added to every run of this worker: fault drills (see faults.py), debugging probes
        self.mesh = None  # the group's DeviceMesh (seed, cfg, ring, ulysses) once a parallel layout shards the model
        self.seed_groups = {}  # replicas used by a unit -> this rank's seed-axis group among them

    # -- model ---------------------------------------------------------------------------------------------------
    def load(self, model: str, device: str | None = None, lora: dict | None = None, shard: list | None = None,
             offload: bool = False, experts: dict | None = None) -> WorkerInfo:
        """Load `model` through the loader (once); returns `describe()`.

        With several GPUs visible to this actor (`gpus_per_worker` > 1; Ray sets its CUDA_VISIBLE_DEVICES), each expert
        is sharded over all of them by a balanced device map that keeps every `WanTransformerBlock` whole; the text
        encoder and the VAE stay on cuda:0, the collective device. `shard` names the devices explicitly (tests shard
        over ["cpu", "cpu"], so the sharded path runs without GPUs). `offload`: with one GPU, the idle expert (and the text
        encoder) wait on the CPU (see `load_pipeline`).
        """
        from cos_ray.model.loader import default_device, load_pipeline

        self.device = device or default_device()
        devices = shard if shard is not None else (None if offload else shard_devices(self.device))
        device_map = None
        if devices:
            import torch

            from cos_ray.model.checkpoint import inspect_checkpoint
            from cos_ray.model.sharding import sharded_device_maps
            from cos_ray.model.source import model_directory

            directory = model_directory(model)
            dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32  # the loader's default
            device_map = sharded_device_maps(directory, tuple(inspect_checkpoint(directory).experts), devices, dtype)
        self.model = load_pipeline(model, device=self.device, lora=lora, device_map=device_map, offload=offload,
                                   experts=experts)  # experts: ComfyUI single files over `model` as the base
        self.shard = list(devices or [])
        return self.describe()

    def describe(self) -> WorkerInfo:
        """Where this worker runs and what it holds (for logs, errors, run records and the runs table)."""
        import ray
        import torch

        from cos_ray.provenance import software_versions

        model = self.model
        return WorkerInfo(
            node=ray.util.get_node_ip_address(),
            pid=os.getpid(),
            device=self.device,
            gpus=tuple(str(gpu) for gpu in ray.get_gpu_ids()),
            shard=tuple(str(device) for device in self.shard),
            threads=torch.get_num_threads(),
            versions=software_versions(),
            model=None if model is None else {
                "name": model.name, "family": model.family, "lora": model.lora, "device": model.device,
                "dtype": str(model.dtype).removeprefix("torch."), "offload": model.offload,
            },
        )

    # -- process group -------------------------------------------------------------------------------------------
    def open_store(self, world_size: int, timeout_s: float) -> str:
        """Rank 0: open the group's store on a free port; returns its "host:port" for the other ranks."""
        import ray

        from cos_ray.cluster.collective import Rendezvous

        self.rendezvous = Rendezvous(ray.util.get_node_ip_address(), world_size, timeout_s)
        return self.rendezvous.address

    def join_mesh(self, rank: int, world: int, address: str, parallel: dict, timeout_s: float) -> int:
        """Join the whole group as rank `rank` of `world`, build the mesh (seed, cfg, ring, ulysses) and shard the loaded
        model over it (`cos_ray.engine.parallel`): once per loaded model - the shards are bound to this group."""
        from cos_ray.cluster.collective import backend_for, join_process_group
        from cos_ray.engine import parallel as engine_parallel

        layout = engine_parallel.ParallelLayout(**parallel)
        store = self.rendezvous.store if rank == 0 else None
        join_process_group(address, rank, world, backend_for(self.device), timeout_s, store=store,
                           device=self.collective_device())
        self.mesh = engine_parallel.device_mesh(layout, "cuda" if self.device.startswith("cuda") else "cpu")
        engine_parallel.apply_layout(self.model.experts(), layout, self.mesh)
        self.seed_groups = engine_parallel.seed_groups(self.mesh)
        self.rank = engine_parallel.seed_rank(self.mesh)
        return rank

    def join(self, counts: list[int], rank: int, address: str | None, timeout_s: float, collective_s: float) -> int:
        """Become rank `rank` of a group whose ranks hold `counts` seeds; a one-worker group needs no process group.
        On a mesh, `rank` is this worker's replica and the process group stays: the merge runs over the seed axis
        of the first `len(counts)` replicas."""
        from cos_ray.cluster.collective import DistributedSeeds, backend_for, join_process_group, leave_process_group

        if self.mesh is not None:
            self.counts, self.rank = list(counts), rank
            self.seeds = None if len(counts) == 1 else DistributedSeeds(
                counts, rank, collective_s, device=self.collective_device(), group=self.seed_groups[len(counts)])
            return rank
        leave_process_group()  # a worker is in one group at a time (the store of the new one is kept)
        self.seeds = None
        self.counts, self.rank = list(counts), rank
        if len(counts) > 1:
            store = self.rendezvous.store if rank == 0 else None
            join_process_group(address, rank, len(counts), backend_for(self.device), timeout_s, store=store,
                               device=self.collective_device())
            self.seeds = DistributedSeeds(counts, rank, collective_s, device=self.collective_device())
        return rank

    def leave(self) -> None:
        """Leave the current group (idempotent)."""
        from cos_ray.cluster.collective import leave_process_group

        if self.mesh is not None:  # the model is sharded over the mesh's group: it lives as long as the worker
            self.seeds = self.counts = None
            return
        leave_process_group()
        self.seeds = self.counts = self.rendezvous = None
        self.rank = 0

    def collective_device(self) -> str:
        return "cuda:0" if self.device.startswith("cuda") else "cpu"  # each actor sees only its own GPUs

    # -- work ----------------------------------------------------------------------------------------------------
    def run(self, task, settings, seeds: list[int], ensemble=None, x0=None, program=None) -> list:
        """This worker's slice of a unit: `run_program` (its companion runs, then the trajectory) with the group's
        SeedGroup; members as numpy. Every worker of the group runs the same program: the same collectives."""
        from cos_ray.probes.program import run_program
        from cos_ray.errors import UsageError

        if self.model is None:
            raise UsageError("this worker holds no model: call load() first")
        if self.counts is None or len(seeds) != self.counts[self.rank]:
            raise UsageError(f"worker rank {self.rank} got {len(seeds)} seeds; its group's layout is {self.counts}")
        members = run_program(self.model, task, settings, list(seeds), program, ensemble=ensemble, x0=x0,
                              seed_group=self.seeds, interventions=list(self.interventions))
        return [_to_numpy(member) for member in members]

    def run_record(self, task, settings, seeds: list[int], ensemble=None) -> dict:
        """The JSON written beside generated videos (versions are the worker's: it ran the model)."""
        from cos_ray.videos import run_record

        return run_record(self.model, task, settings, list(seeds), ensemble)

    def exchange(self, op: str, local):
        """The group's `sum` or `gather` on a plain tensor `# (local_seeds, ...)` (tests, bandwidth probes)."""
        return getattr(self.seeds, op)(local)

    def execute(self, fn, *args, **kwargs):
        """Run `fn(worker, *args, **kwargs)` here: one generic path for code that needs the worker's model or group."""
        return fn(self, *args, **kwargs)


def shard_devices(device: str) -> list[str] | None:
    """The devices to shard each expert over: every GPU this actor sees when it sees more than one, else None."""
    if not str(device).startswith("cuda"):
        return None
    import torch

    count = torch.cuda.device_count()
    return [f"cuda:{index}" for index in range(count)] if count > 1 else None


def _to_numpy(member):
    """A MemberResult whose tensors are numpy arrays `# float32` (bf16 has no numpy type)."""
    def convert(tensor):
        return tensor.detach().float().cpu().numpy() if hasattr(tensor, "detach") else tensor

    return dataclasses.replace(
        member,
        final_latent=convert(member.final_latent),
        x0_latents={step: convert(latent) for step, latent in member.x0_latents.items()},
    )
