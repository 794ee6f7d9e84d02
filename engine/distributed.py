"""Batch evaluation across processes started by ``torchrun`` (one or many nodes), with torch.distributed.

The batch commands (``skelviz attack``, ``skelviz robustness``, ``skelviz defend``) run unchanged under::

    torchrun --nproc-per-node 4 -m skelviz.cli attack --model M.pt --data D.h5 --out DIR

Each process (rank) works on its shard of the clips on its own device, the per-rank results are gathered on
rank 0, and rank 0 alone writes the output files, which are the files a single-process run writes.

The API is small::

    with dist_context(device="auto") as ctx:       # init/destroy the process group when torchrun started us
        mine = ctx.shard(range(n_batches))         # this rank's part (contiguous or strided, deterministic)
        with ctx.guard(f"batches {mine}"):         # a failure on any rank stops every rank, naming the shard
            results = [work(b) for b in mine]
        everything = ctx.gather(results)           # list over ranks on rank 0, None elsewhere
        if ctx.is_main:
            write(everything)

Outside ``torchrun`` (no ``WORLD_SIZE`` in the environment, or ``WORLD_SIZE=1``) the context is a plain
single process: ``shard`` returns everything, ``gather`` returns ``[obj]``, ``guard`` lets exceptions through
unchanged, and nothing touches torch.distributed. Module-level :func:`current`, :func:`shard`,
:func:`gather_to_rank0`, :func:`is_main` act on the innermost active context, so library code can call them
without passing the context around.

Rank, world size and local rank come from the variables torchrun sets (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``; ``MASTER_ADDR``/``MASTER_PORT`` are read by torch's ``env://`` rendezvous). The backend is
NCCL when the rank's device is CUDA and Gloo otherwise (override: ``SKELVIZ_DIST_BACKEND``); collectives time
out after ``SKELVIZ_DIST_TIMEOUT`` seconds (default 1800). Objects are exchanged with
``all_gather_object``/``gather_object`` (pickled between our own ranks only; nothing is read from files).

Reproducibility: a rank must compute for a sample exactly what a single process computes. Shard whole
batches of the global order (not single clips re-batched per rank) and seed any randomness per sample from
``seed + global index`` (:func:`sample_generator`), so results do not depend on the number of ranks.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch

from engine.errors import SkelvizError

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

SHARD_MODES = ("contiguous", "strided")


class DistributedError(SkelvizError, RuntimeError):
    """One or more ranks of a distributed run failed; the message names each rank, its shard and its error.

    ``failures`` is a list of ``(rank, shard description, error text)``.
    """

    def __init__(self, message: str, failures: list[tuple[int, str, str]] | None = None) -> None:
        super().__init__(message)
        self.failures = failures or []


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise DistributedError(f"environment variable {name}={value!r} is not an integer; check the launcher") from None


@dataclass(frozen=True)
class RankInfo:
    """Where this process sits in the job, as the launcher describes it."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def rank_info() -> RankInfo:
    """Rank, world size and local rank from torchrun's environment (a single process when they are absent)."""
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local = _env_int("LOCAL_RANK", rank if world > 1 else 0)
    if world < 1 or not 0 <= rank < world:
        raise DistributedError(f"RANK={rank} does not fit WORLD_SIZE={world}; start the job with torchrun")
    if local < 0:
        raise DistributedError(f"LOCAL_RANK={local} is negative; start the job with torchrun")
    return RankInfo(rank=rank, world_size=world, local_rank=local)


def resolve_device(requested: str | torch.device | None, info: RankInfo | None = None) -> torch.device:
    """The device this rank works on.

    ``None`` or ``"auto"``: ``cuda:LOCAL_RANK`` when CUDA is available, else the CPU. ``"cuda"`` (no index):
    ``cuda:LOCAL_RANK`` so that the ranks of a node share its GPUs one each. An explicit ``"cuda:K"`` or
    ``"cpu"`` is kept as given.
    """
    info = info or rank_info()
    text = "auto" if requested is None else str(requested)
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", info.local_rank % max(torch.cuda.device_count(), 1))
        return torch.device("cpu")
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise DistributedError(f"unknown device {text!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DistributedError(f"device {text!r} requested but CUDA is not available; use --device cpu")
        if device.index is None:
            device = torch.device("cuda", info.local_rank % torch.cuda.device_count())
    return device


def shard_indices(n: int, rank: int, world_size: int, mode: str = "contiguous") -> list[int]:
    """The positions ``0..n-1`` that ``rank`` of ``world_size`` owns.

    ``contiguous``: consecutive blocks, sizes differing by at most one (the first ``n % world_size`` ranks
    get one more). ``strided``: ``rank, rank + world_size, ...``. Both are deterministic, disjoint and cover
    every position exactly once; a rank may get nothing when ``n < world_size``.
    """
    if mode not in SHARD_MODES:
        raise DistributedError(f"unknown shard mode {mode!r}; use one of {', '.join(SHARD_MODES)}")
    if world_size < 1 or not 0 <= rank < world_size:
        raise DistributedError(f"rank {rank} is outside a world of {world_size} processes")
    if n < 0:
        raise DistributedError(f"cannot shard a negative number of items ({n})")
    if mode == "strided":
        return list(range(rank, n, world_size))
    base, extra = divmod(n, world_size)
    start = rank * base + min(rank, extra)
    stop = start + base + (1 if rank < extra else 0)
    return list(range(start, stop))


def describe_positions(positions: Sequence[int], noun: str = "items") -> str:
    """Short text for a shard: ``"items 4-7"``, ``"items 1, 3, 5 (3 of them)"``, ``"no items"``.

    ``noun`` is the plural used (``"batches"``, ``"clips"``); a single position drops a trailing "s"/"es".
    """
    pos = list(positions)
    if not pos:
        return f"no {noun}"
    if pos == list(range(pos[0], pos[-1] + 1)):
        if len(pos) == 1:
            single = noun[:-2] if noun.endswith("ches") else noun[:-1] if noun.endswith("s") else noun
            return f"{single} {pos[0]}"
        return f"{noun} {pos[0]}-{pos[-1]}"
    head = ", ".join(str(p) for p in pos[:6])
    return f"{noun} {head}{', ...' if len(pos) > 6 else ''} ({len(pos)} of them)"


def sample_generator(seed: int, index: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A generator seeded by ``seed`` and a sample's global index: the same numbers on any rank."""
    gen = torch.Generator(device=device)
    gen.manual_seed((int(seed) * 1_000_003 + int(index)) % (2**63 - 1))
    return gen


@dataclass
class DistContext:
    """This process's view of the job: rank, world, device and the collectives the runners need."""

    info: RankInfo = field(default_factory=RankInfo)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    backend: str | None = None

    @property
    def rank(self) -> int:
        return self.info.rank

    @property
    def world_size(self) -> int:
        return self.info.world_size

    @property
    def local_rank(self) -> int:
        return self.info.local_rank

    @property
    def distributed(self) -> bool:
        return self.info.distributed and self.backend is not None

    @property
    def is_main(self) -> bool:
        return self.info.rank == 0

    # -- sharding ---------------------------------------------------------------------------------------
    def shard_positions(self, n: int, mode: str = "contiguous") -> list[int]:
        """The positions ``0..n-1`` this rank owns (everything in a single process)."""
        return shard_indices(n, self.rank, self.world_size, mode)

    def shard(self, items: Sequence[T], mode: str = "contiguous") -> list[T]:
        """This rank's items of ``items`` (a list, range or array), in their original order."""
        seq = list(items)
        return [seq[i] for i in self.shard_positions(len(seq), mode)]

    # -- collectives ------------------------------------------------------------------------------------
    def all_gather(self, obj: Any) -> list[Any]:
        """``obj`` from every rank, in rank order, on every rank."""
        if not self.distributed:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def gather(self, obj: Any) -> list[Any] | None:
        """``obj`` from every rank, in rank order, on rank 0; ``None`` on the other ranks."""
        if not self.distributed:
            return [obj]
        import torch.distributed as dist

        out: list[Any] | None = [None] * self.world_size if self.is_main else None
        dist.gather_object(obj, out, dst=0)
        return out

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if not self.distributed:
            return obj
        import torch.distributed as dist

        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()

    def check(self, error: BaseException | None, what: str) -> None:
        """Collective: every rank reports whether it failed; if any did, every rank raises.

        Rank 0 (and every rank) gets a :class:`DistributedError` naming each failed rank, its shard ``what``
        and its error; the failing rank's own error is chained as the cause. Call it on every rank, with
        ``error=None`` where the work succeeded.
        """
        if not self.distributed:
            if error is not None:
                raise error
            return
        mine = None if error is None else (self.rank, what, f"{type(error).__name__}: {error}")
        failures = [f for f in self.all_gather(mine) if f is not None]
        if not failures:
            return
        lines = [f"rank {r} ({shard}) failed: {msg}" for r, shard, msg in failures]
        message = (
            f"{len(failures)} of {self.world_size} ranks failed; results were not written.\n  "
            + "\n  ".join(lines)
            + "\nFix the cause (re-run that shard alone without torchrun to debug it) and start the job again."
        )
        raise DistributedError(message, failures) from error

    @contextlib.contextmanager
    def guard(self, what: str) -> Iterator[None]:
        """Run a block of per-rank work; on any rank's failure every rank raises after the block.

        ``what`` describes this rank's shard for the message. In a single process exceptions pass through
        unchanged. Interrupts (Ctrl-C) are not caught.
        """
        if not self.distributed:
            yield
            return
        error: BaseException | None = None
        try:
            yield
        except Exception as exc:  # reported to every rank by check(); re-raised there as the cause
            error = exc
        self.check(error, what)


def map_sharded(
    fn: Callable[[T], R],
    items: Sequence[T],
    *,
    ctx: DistContext | None = None,
    what: str = "items",
    mode: str = "contiguous",
    on_result: Callable[[T, R], None] | None = None,
) -> list[R] | None:
    """``[fn(item) for item in items]`` with the items split over the ranks; the list on rank 0, None elsewhere.

    Each rank calls ``fn`` on its shard (in order); the results are gathered and returned on rank 0 in the
    order of ``items``, exactly the list a single process computes. A failure on any rank makes every rank
    raise :class:`DistributedError` naming the rank and the items it held (``what`` names them in the
    message, e.g. ``"batches"``). In a single process this is a plain loop and exceptions pass unchanged.
    Make ``items`` whole batches of the global order so that ``fn`` sees the same inputs on any number of
    ranks.

    ``on_result(item, result)`` runs on rank 0 only, once per item: for rank 0's own items as soon as each is
    computed (so a single process saves every batch as it finishes and can resume), for the other ranks'
    items once they are gathered at the end (nothing crosses node boundaries but the gather, so the output
    folder need not be on a shared filesystem).
    """
    ctx = ctx or current()
    seq = list(items)
    mine = ctx.shard_positions(len(seq), mode)
    done: list[tuple[int, R]] = []
    with ctx.guard(describe_positions(mine, what)):
        for pos in mine:
            result = fn(seq[pos])
            done.append((pos, result))
            if on_result is not None and ctx.is_main:
                on_result(seq[pos], result)
    if not ctx.distributed:
        return [result for _, result in done]
    parts = ctx.gather([(pos, r) for pos, r in done] if not ctx.is_main else [])
    if parts is None:
        return None
    merged = sorted([*done, *(pair for part in parts[1:] for pair in part)], key=lambda pair: pair[0])
    if [pos for pos, _ in merged] != list(range(len(seq))):  # a bug in sharding, never a user error
        raise DistributedError(f"gathered results cover positions {[p for p, _ in merged]}, not 0..{len(seq) - 1}")
    if on_result is not None:
        own = {pos for pos, _ in done}
        for pos, result in merged:
            if pos not in own:
                on_result(seq[pos], result)
    return [result for _, result in merged]


def local_part(batch: torch.Tensor, ctx: DistContext | None = None) -> torch.Tensor:
    """This rank's contiguous part of a global minibatch (indices or samples along dim 0); all of it alone.

    For data-parallel training: every rank draws the same global minibatch (same generator, same seed),
    takes its part, and :func:`average_gradients` combines the parts' gradients into the gradient of the
    global minibatch's mean loss. A part may be empty when the minibatch has fewer samples than ranks.
    """
    ctx = ctx or current()
    if not ctx.distributed:
        return batch
    pos = ctx.shard_positions(int(batch.shape[0]))
    return batch[pos[0] : pos[-1] + 1] if pos else batch[:0]


def average_gradients(
    grads: Sequence[torch.Tensor], local_count: int, ctx: DistContext | None = None
) -> list[torch.Tensor]:
    """Gradients of the global minibatch's mean loss from each rank's gradient of its part's mean loss.

    ``grads``: this rank's gradients of the mean loss over its ``local_count`` samples (zeros when it had
    none). Returns ``Σ_r n_r·g_r / Σ_r n_r`` on every rank, bitwise identical across ranks (one all-reduce),
    so replicas that apply the same update with the same noise stay identical. In a single process the
    gradients are returned unchanged.
    """
    ctx = ctx or current()
    if not ctx.distributed:
        return list(grads)
    import torch.distributed as dist

    flat = torch.cat([g.detach().reshape(-1).to(torch.float64) * local_count for g in grads])
    count = torch.tensor([float(local_count)], dtype=torch.float64, device=flat.device)
    packed = torch.cat([flat, count])
    if ctx.backend == "nccl" and packed.device.type != "cuda":
        packed = packed.to(ctx.device)
    dist.all_reduce(packed, op=dist.ReduceOp.SUM)
    total = float(packed[-1])
    if total <= 0:
        raise DistributedError("no rank had any sample in this minibatch; use a batch size of at least one")
    out, offset = [], 0
    for g in grads:
        n = g.numel()
        out.append((packed[offset : offset + n] / total).reshape(g.shape).to(device=g.device, dtype=g.dtype))
        offset += n
    return out


def local_minibatch(batch: torch.Tensor, ctx: DistContext | None = None) -> tuple[torch.Tensor, int]:
    """This rank's part of a global minibatch and its weight in :func:`average_gradients`.

    Returns ``(part, len(part))``; a rank whose part would be empty (fewer samples than ranks) gets the first
    sample with weight 0, so that every rank runs the same code and joins the all-reduce without contributing.
    In a single process: ``(batch, len(batch))``.
    """
    part = local_part(batch, ctx)
    if len(part) == 0 and len(batch) > 0:
        return batch[:1], 0
    return part, int(len(part))


def sync_gradients(params: Sequence[torch.Tensor], local_count: int, ctx: DistContext | None = None) -> None:
    """Set every parameter's ``.grad`` to the global-minibatch average (:func:`average_gradients`).

    Call between ``loss.backward()`` and ``optimizer.step()``; a parameter without a gradient counts as zero.
    Does nothing in a single process.
    """
    ctx = ctx or current()
    if not ctx.distributed:
        return
    params = list(params)
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    for p, g in zip(params, average_gradients(grads, local_count, ctx)):
        p.grad = g


def rank_generator(shared: torch.Generator, seed: int, ctx: DistContext | None = None) -> torch.Generator:
    """The generator for noise drawn per sample (SGLD steps, attack starts, augmentation noise).

    In a single process this is ``shared`` itself (so results are those of the code without torchrun). Under
    torchrun it is a generator of this rank's own, seeded from ``seed`` and the rank, so that the draws shaped
    like the rank's part of a minibatch leave ``shared`` (minibatch order, parameter noise) in step on every
    rank.
    """
    ctx = ctx or current()
    if not ctx.distributed:
        return shared
    return torch.Generator().manual_seed((int(seed) * 1_000_003 + 7919 * (ctx.rank + 1)) % (2**63 - 1))


def all_reduce_sum(values: Sequence[float], ctx: DistContext | None = None) -> list[float]:
    """Sum of a few floats over the ranks (losses for logging, counts); unchanged in a single process."""
    ctx = ctx or current()
    if not ctx.distributed:
        return [float(v) for v in values]
    import torch.distributed as dist

    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=ctx.device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.cpu().tolist()


_STACK: list[DistContext] = []


def current() -> DistContext:
    """The innermost active :func:`dist_context`, or a single-process context when none is active."""
    return _STACK[-1] if _STACK else DistContext()


def is_main() -> bool:
    """True on rank 0 (and in a single process): the rank that writes files and prints."""
    return current().is_main


def shard(items: Sequence[T], mode: str = "contiguous") -> list[T]:
    """This rank's part of ``items`` in the active context."""
    return current().shard(items, mode)


def gather_to_rank0(obj: Any) -> list[Any] | None:
    """``obj`` from every rank in rank order on rank 0, ``None`` elsewhere (``[obj]`` in a single process)."""
    return current().gather(obj)


def _backend_for(device: torch.device) -> str:
    forced = os.environ.get("SKELVIZ_DIST_BACKEND")
    if forced:
        return forced
    return "nccl" if device.type == "cuda" else "gloo"


@contextlib.contextmanager
def dist_context(device: str | torch.device | None = "auto", *, quiet_workers: bool = True) -> Iterator[DistContext]:
    """Join the torchrun job (if any) for the duration of the block; yields the :class:`DistContext`.

    Initialises the default process group when the environment describes more than one process and no group
    exists yet, and destroys it on exit (a group created by the caller is used and left alone). ``device``
    is resolved per rank by :func:`resolve_device`. With ``quiet_workers`` the other ranks log only warnings,
    so progress and summaries appear once.
    """
    info = rank_info()
    dev = resolve_device(device, info)
    ctx = DistContext(info=info, device=dev, backend=None)
    owned = False
    root = logging.getLogger()
    old_level = root.level
    if info.distributed:
        import torch.distributed as dist

        if not dist.is_available():
            raise DistributedError("this torch build has no torch.distributed; run without torchrun")
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        if dist.is_initialized():
            ctx.backend = dist.get_backend()
            if dist.get_world_size() != info.world_size or dist.get_rank() != info.rank:
                raise DistributedError(
                    f"an existing process group (rank {dist.get_rank()} of {dist.get_world_size()}) does not "
                    f"match the environment (RANK={info.rank}, WORLD_SIZE={info.world_size})"
                )
        else:
            backend = _backend_for(dev)
            timeout = datetime.timedelta(seconds=_env_int("SKELVIZ_DIST_TIMEOUT", 1800))
            try:
                dist.init_process_group(
                    backend=backend, init_method="env://", timeout=timeout, rank=info.rank, world_size=info.world_size
                )
            except (RuntimeError, ValueError) as exc:
                raise DistributedError(
                    f"rank {info.rank} could not join the process group ({backend}): {exc}; "
                    "check MASTER_ADDR/MASTER_PORT and that every node runs the same torchrun command"
                ) from exc
            ctx.backend = backend
            owned = True
        if quiet_workers and not ctx.is_main:
            root.setLevel(max(old_level, logging.WARNING))
        log.info("rank %d of %d on %s (%s backend)", info.rank, info.world_size, dev, ctx.backend)
    _STACK.append(ctx)
    try:
        yield ctx
    finally:
        for i in range(len(_STACK) - 1, -1, -1):  # by identity: equal contexts may be nested
            if _STACK[i] is ctx:
                del _STACK[i]
                break
        root.setLevel(old_level)
        if owned:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()
