"""Graphs for the graph-convolutional classifiers, all derived from a :class:`~engine.skeletons.Skeleton`.

Each function reproduces the adjacency construction of one official code base, so that weights trained there
(whose learnable graph parameters were initialised from these matrices) mean the same thing here:

- :func:`stgcn_spatial_partition`: ST-GCN's "spatial" partitioning (Yan et al., AAAI 2018, sec. 3.6): for
  each joint, its neighbours split into the root node itself, the centrifugal group (further from the gravity
  centre; equidistant neighbours join it) and the centripetal group (nearer), in the official code's order,
  each column-normalised (``normalize_digraph``).
- :func:`inward_outward_partition`: the three subsets (identity, inward, outward) of 2s-AGCN and CTR-GCN.
- :func:`k_adjacency` / :func:`normalize_adjacency`: MS-G3D's disentangled k-hop adjacency and its symmetric
  normalisation.

The "centre" of a graph is the joint the official code bases use for the layout (NTU RGB+D: the spine at the
shoulders, joint 21 in 1-based numbering); any other skeleton uses its root.
"""

from __future__ import annotations

import numpy as np

from engine.skeletons import Skeleton

# Joint that the official ST-GCN / 2s-AGCN / CTR-GCN graphs treat as the centre, per skeleton layout.
_OFFICIAL_CENTRE = {"ntu25": "SpineShoulder"}


def centre_joint(skeleton: Skeleton, centre: str | int | None = None) -> int:
    """Index of the graph centre: ``centre`` if given (name or index), else the layout's official one or the root."""
    if centre is not None:
        return skeleton.index(centre)
    name = _OFFICIAL_CENTRE.get(skeleton.name)
    if name is not None and name in skeleton.joint_names:
        return skeleton.index(name)
    return skeleton.root


def hop_distance(skeleton: Skeleton, max_hop: int | None = None) -> np.ndarray:
    """(V, V) graph distance along bones; ``inf`` beyond ``max_hop`` (or between unreachable joints)."""
    v = skeleton.num_joints
    a = skeleton.adjacency(self_loops=False) > 0
    dist = np.full((v, v), np.inf)
    reach = np.eye(v, dtype=bool)
    dist[reach] = 0
    hops = v if max_hop is None else max_hop
    frontier = reach
    for d in range(1, hops + 1):
        frontier = (frontier.astype(np.float32) @ a.astype(np.float32)) > 0
        new = frontier & ~reach
        if not new.any():
            break
        dist[new] = d
        reach |= new
    return dist


def normalize_digraph(a: np.ndarray) -> np.ndarray:
    """``A · D⁻¹`` with D the column sums (columns without edges stay zero), as in the official code."""
    col = a.sum(axis=0)
    inv = np.where(col > 0, 1.0 / np.where(col > 0, col, 1.0), 0.0)
    return (a * inv[None, :]).astype(np.float32)


def stgcn_spatial_partition(skeleton: Skeleton, centre: str | int | None = None, max_hop: int = 1) -> np.ndarray:
    """ST-GCN's spatial-configuration partition: (K, V, V) with K = 1 + 2·max_hop (3 for the usual 1 hop)."""
    v = skeleton.num_joints
    hop = hop_distance(skeleton, max_hop)
    c = centre_joint(skeleton, centre)
    centre_dist = hop_distance(skeleton)[:, c]
    adjacency = (hop <= max_hop).astype(np.float32)
    norm = normalize_digraph(adjacency)
    parts = []
    for h in range(max_hop + 1):
        root = np.zeros((v, v), np.float32)
        close = np.zeros((v, v), np.float32)
        far = np.zeros((v, v), np.float32)
        j_idx, i_idx = np.nonzero(hop == h)  # entry [j, i]: joint j is h hops from joint i
        for j, i in zip(j_idx, i_idx):
            if centre_dist[j] == centre_dist[i]:
                root[j, i] = norm[j, i]
            elif centre_dist[j] > centre_dist[i]:
                close[j, i] = norm[j, i]
            else:
                far[j, i] = norm[j, i]
        if h == 0:
            parts.append(root)
        else:
            parts.extend([root + close, far])
    return np.stack(parts)


def directed_edges(skeleton: Skeleton, centre: str | int | None = None) -> list[tuple[int, int]]:
    """Bones as ``(from, to)`` pairs pointing towards the centre (the official codes' ``inward`` list)."""
    c = centre_joint(skeleton, centre)
    dist = hop_distance(skeleton)[:, c]
    return [(p, q) if dist[p] > dist[q] else (q, p) for p, q in skeleton.bones]


def inward_outward_partition(skeleton: Skeleton, centre: str | int | None = None) -> np.ndarray:
    """(3, V, V): identity, normalised inward, normalised outward (2s-AGCN / CTR-GCN ``spatial`` mode)."""
    v = skeleton.num_joints
    inward = np.zeros((v, v), np.float32)
    for i, j in directed_edges(skeleton, centre):
        inward[j, i] = 1.0  # edge2mat: A[j, i] = 1 for the pair (i, j)
    return np.stack([np.eye(v, dtype=np.float32), normalize_digraph(inward), normalize_digraph(inward.T)])


def k_adjacency(a: np.ndarray, k: int, with_self: bool = False) -> np.ndarray:
    """Joints exactly ``k`` hops apart in ``a`` (MS-G3D's disentangled aggregation), optionally plus identity."""
    eye = np.eye(len(a), dtype=a.dtype)
    if k == 0:
        return eye
    ak = np.minimum(np.linalg.matrix_power(a + eye, k), 1) - np.minimum(np.linalg.matrix_power(a + eye, k - 1), 1)
    if with_self:
        ak = ak + eye
    return ak


def normalize_adjacency(a: np.ndarray) -> np.ndarray:
    """Symmetric normalisation ``D^-½ A D^-½`` (rows of ``a`` give the degrees)."""
    deg = a.sum(-1)
    inv = np.power(deg, -0.5, where=deg > 0, out=np.zeros_like(deg, dtype=np.float64))
    return (inv[:, None] * a * inv[None, :]).astype(np.float32)


def multiscale_adjacency(a_binary: np.ndarray, num_scales: int) -> np.ndarray:
    """(num_scales·V, V): the normalised k-hop adjacencies for k = 0 … num_scales−1, stacked (MS-G3D)."""
    return np.concatenate([normalize_adjacency(k_adjacency(a_binary, k, with_self=True)) for k in range(num_scales)])


def graph_skeleton(skeleton: Skeleton, parents: list[int] | tuple[int, ...] | None = None) -> Skeleton:
    """The tree a network builds its graph from: ``skeleton`` itself, or the same joints with other ``parents``.

    Official code bases sometimes wire a layout differently from its Skeleton (the NTU graph of ST-GCN,
    2s-AGCN, CTR-GCN and MS-G3D joins each hand tip to the thumb); imported checkpoints keep that wiring.
    """
    if parents is None:
        return skeleton
    return Skeleton(skeleton.name, skeleton.joint_names, tuple(int(p) for p in parents), skeleton.up_axis)
