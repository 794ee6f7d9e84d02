"""Skeleton topologies: the one place where joints and their parents are defined.

A :class:`Skeleton` lists its joints and each joint's parent once. Bones, the adjacency used by graph
networks, render edges, left/right pairs, kinematic chains and bone-length losses all derive from it:
nothing else in skelviz may spell out an edge list.

Built-in layouts (see ``DESIGN.md``):

``ntu25``
    Kinect v2 as in NTU RGB+D (Shahroudy et al., CVPR 2016), 25 joints, root = base of spine.
``hdm05_25``
    The 25-joint HDM05/CMU layout of the SMART, BASAR and BEAT code: the CMU BVH skeleton without
    LowerBack, Head, both shoulders and both finger bases. The published code stores the root as its own
    parent (``parents[10] == 10``); here the root's parent is ``-1`` like every other skeleton.
``cmu31``
    The CMU/HDM05 Acclaim skeleton with the joint names of the CMU BVH conversion: 31 joints, a joint at the
    start of each Acclaim segment (the root, then every bone's proximal end).

Skeletons read from files (BVH, ASF, the attributes of an HDF5 dataset) are ordinary :class:`Skeleton`
objects; :func:`register` makes one available by name.

Layout mapping (:func:`joint_map`, :func:`map_positions`) goes by joint names: an explicit alias table
registered with :func:`register_aliases` for layouts whose names differ (Acclaim bone names → ``cmu31``),
otherwise the destination's names must all exist in the source (``cmu31`` → ``hdm05_25`` drops six joints).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from engine.errors import MappingError, SkeletonMismatchError, UnknownSkeletonError

__all__ = [
    "Skeleton",
    "get",
    "register",
    "names",
    "register_aliases",
    "joint_map",
    "map_positions",
    "NTU25",
    "HDM05_25",
    "CMU31",
]

_AXES = ("x", "y", "z")


@dataclass(frozen=True, eq=False)
class Skeleton:
    """A joint tree: names and parents (``-1`` for the root), plus the up axis of its coordinates.

    Equality and hashing go by content (name, joints, parents, up axis), so a skeleton rebuilt from a file's
    metadata equals the registered one.
    """

    name: str
    joint_names: tuple[str, ...]
    parents: tuple[int, ...]
    up_axis: str = "y"

    def __post_init__(self) -> None:
        object.__setattr__(self, "joint_names", tuple(str(n) for n in self.joint_names))
        parents = [int(p) for p in self.parents]
        # The SMART/BASAR code marks its root as its own parent: accept that convention.
        parents = [-1 if p == i else p for i, p in enumerate(parents)]
        object.__setattr__(self, "parents", tuple(parents))
        v = len(self.joint_names)
        if v == 0:
            raise SkeletonMismatchError(f"skeleton {self.name!r} has no joints")
        if len(parents) != v:
            raise SkeletonMismatchError(
                f"skeleton {self.name!r}: {v} joint names but {len(parents)} parents; give one parent per joint"
            )
        if len(set(self.joint_names)) != v:
            dup = sorted({n for n in self.joint_names if self.joint_names.count(n) > 1})
            raise SkeletonMismatchError(f"skeleton {self.name!r}: duplicate joint names {dup}")
        roots = [i for i, p in enumerate(parents) if p < 0]
        if len(roots) != 1:
            raise SkeletonMismatchError(
                f"skeleton {self.name!r} must have exactly one root (parent -1), found {len(roots)}"
            )
        for i, p in enumerate(parents):
            if p >= v:
                raise SkeletonMismatchError(
                    f"skeleton {self.name!r}: joint {i} ({self.joint_names[i]}) has parent {p}, "
                    f"but there are only {v} joints"
                )
        # Every joint must reach the root (no cycles).
        for i in range(v):
            seen, j = set(), i
            while j >= 0:
                if j in seen:
                    raise SkeletonMismatchError(f"skeleton {self.name!r}: parents form a cycle at joint {j}")
                seen.add(j)
                j = parents[j]
        if self.up_axis not in _AXES:
            raise SkeletonMismatchError(f"skeleton {self.name!r}: up axis must be one of {_AXES}")

    # -- identity -------------------------------------------------------------------------------------------
    def _key(self) -> tuple:
        return (self.name, self.joint_names, self.parents, self.up_axis)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Skeleton) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def same_topology(self, other: Skeleton) -> bool:
        """True when both have the same joints and parents, whatever their names."""
        return self.joint_names == other.joint_names and self.parents == other.parents

    # -- derived structure ----------------------------------------------------------------------------------
    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @cached_property
    def root(self) -> int:
        return self.parents.index(-1)

    @cached_property
    def bones(self) -> tuple[tuple[int, int], ...]:
        """``(parent, child)`` pairs, one per non-root joint, in joint order."""
        return tuple((p, c) for c, p in enumerate(self.parents) if p >= 0)

    @cached_property
    def bone_parents(self) -> np.ndarray:
        return np.array([p for p, _ in self.bones], dtype=np.int64)

    @cached_property
    def bone_children(self) -> np.ndarray:
        return np.array([c for _, c in self.bones], dtype=np.int64)

    @property
    def num_bones(self) -> int:
        return len(self.bones)

    @cached_property
    def bone_names(self) -> tuple[str, ...]:
        return tuple(f"{self.joint_names[p]}–{self.joint_names[c]}" for p, c in self.bones)

    @cached_property
    def children(self) -> tuple[tuple[int, ...], ...]:
        kids: list[list[int]] = [[] for _ in self.joint_names]
        for p, c in self.bones:
            kids[p].append(c)
        return tuple(tuple(k) for k in kids)

    @cached_property
    def topological_order(self) -> tuple[int, ...]:
        """Joints ordered so that every parent comes before its children (breadth first from the root)."""
        order, queue = [], [self.root]
        while queue:
            j = queue.pop(0)
            order.append(j)
            queue.extend(self.children[j])
        return tuple(order)

    @cached_property
    def depth(self) -> np.ndarray:
        d = np.zeros(self.num_joints, dtype=np.int64)
        for j in self.topological_order:
            if self.parents[j] >= 0:
                d[j] = d[self.parents[j]] + 1
        return d

    def adjacency(self, self_loops: bool = False) -> np.ndarray:
        """Symmetric (V, V) float32 0/1 matrix of bone connections, optionally with the identity added."""
        a = np.zeros((self.num_joints, self.num_joints), dtype=np.float32)
        for p, c in self.bones:
            a[p, c] = a[c, p] = 1.0
        if self_loops:
            a += np.eye(self.num_joints, dtype=np.float32)
        return a

    @cached_property
    def chains(self) -> tuple[tuple[int, ...], ...]:
        """Kinematic chains: maximal unbranched paths, each starting at the root or a branching joint."""
        chains = []
        starts = [self.root] + [j for j in self.topological_order if len(self.children[j]) > 1]
        for s in dict.fromkeys(starts):
            for c in self.children[s]:
                chain = [s, c]
                while len(self.children[chain[-1]]) == 1:
                    chain.append(self.children[chain[-1]][0])
                chains.append(tuple(chain))
        return tuple(chains)

    @cached_property
    def leaves(self) -> tuple[int, ...]:
        return tuple(j for j in range(self.num_joints) if not self.children[j])

    @cached_property
    def symmetric_pairs(self) -> tuple[tuple[int, int], ...]:
        """``(left, right)`` joint index pairs found from the names (Left/Right, L/R, l_/r_, "left "/"right ")."""
        index = {n.lower(): i for i, n in enumerate(self.joint_names)}
        pairs = []
        for name, i in index.items():
            for pattern, repl in _LEFT_RIGHT:
                m = pattern.fullmatch(name)
                if m is None:
                    continue
                other = repl(m)
                if other in index and other != name and _is_left(name):
                    pairs.append((i, index[other]))
                break
        return tuple(sorted(set(pairs)))

    def mirror_permutation(self) -> np.ndarray:
        """Joint permutation that swaps every left joint with its right twin."""
        perm = np.arange(self.num_joints)
        for left, right in self.symmetric_pairs:
            perm[left], perm[right] = right, left
        return perm

    def index(self, joint: str | int) -> int:
        """Index of a joint given by name (case-insensitive) or index."""
        if isinstance(joint, (int, np.integer)):
            if not 0 <= int(joint) < self.num_joints:
                raise SkeletonMismatchError(f"joint index {joint} out of range for {self.name} ({self.num_joints})")
            return int(joint)
        lowered = {n.lower(): i for i, n in enumerate(self.joint_names)}
        try:
            return lowered[joint.lower()]
        except KeyError:
            raise SkeletonMismatchError(
                f"skeleton {self.name!r} has no joint {joint!r}; its joints are {', '.join(self.joint_names)}"
            ) from None

    @property
    def up_index(self) -> int:
        return _AXES.index(self.up_axis)

    # -- geometry helpers shared by losses, metrics and rendering --------------------------------------------
    def bone_vectors(self, positions):
        """Child minus parent for every bone: (..., V, 3) → (..., B, 3). Works on numpy arrays and tensors."""
        return positions[..., self.bone_children, :] - positions[..., self.bone_parents, :]

    def bone_lengths(self, positions):
        """Length of every bone: (..., V, 3) → (..., B). Works on numpy arrays and torch tensors."""
        vec = self.bone_vectors(positions)
        if isinstance(vec, np.ndarray):
            return np.linalg.norm(vec, axis=-1)
        return vec.norm(dim=-1)

    def check_positions(self, positions: np.ndarray, what: str = "positions") -> None:
        """Raise :class:`SkeletonMismatchError` unless ``positions`` is (..., V, 3) for this skeleton."""
        shape = getattr(positions, "shape", ())
        if len(shape) < 2 or shape[-1] != 3 or shape[-2] != self.num_joints:
            raise SkeletonMismatchError(
                f"{what} have shape {tuple(shape)}, but skeleton {self.name!r} needs (..., {self.num_joints}, 3)"
            )

    # -- serialisation ---------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "joint_names": list(self.joint_names),
            "parents": list(self.parents),
            "up_axis": self.up_axis,
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> Skeleton:
        try:
            return cls(
                name=str(d["name"]),
                joint_names=tuple(str(n) for n in d["joint_names"]),
                parents=tuple(int(p) for p in d["parents"]),
                up_axis=str(d.get("up_axis", "y")),
            )
        except KeyError as exc:
            raise SkeletonMismatchError(f"skeleton description lacks the field {exc.args[0]!r}") from None

    def renamed(self, name: str) -> Skeleton:
        return Skeleton(name, self.joint_names, self.parents, self.up_axis)


def _swap_lr(m: re.Match, left: str, right: str) -> str:
    side, rest = m.group(1), m.group(2)
    return (right if side == left else left) + rest


def _is_left(lowered_name: str) -> bool:
    return bool(re.fullmatch(r"(left.+|.+left|l_.+|l[a-z].*)", lowered_name))


_LEFT_RIGHT = [
    (re.compile(r"(left|right)(.+)"), lambda m: _swap_lr(m, "left", "right")),
    (re.compile(r"(.+)(left|right)"), lambda m: m.group(1) + ("right" if m.group(2) == "left" else "left")),
    (re.compile(r"(l_|r_)(.+)"), lambda m: _swap_lr(m, "l_", "r_")),
    (re.compile(r"(l|r)([a-z].*)"), lambda m: _swap_lr(m, "l", "r")),
]


# -- registry ------------------------------------------------------------------------------------------------
_REGISTRY: dict[str, Skeleton] = {}


def register(skeleton: Skeleton, *, replace: bool = False) -> Skeleton:
    """Make ``skeleton`` available through :func:`get`. Re-registering an identical one is a no-op."""
    existing = _REGISTRY.get(skeleton.name)
    if existing is not None and existing != skeleton and not replace:
        raise SkeletonMismatchError(
            f"a different skeleton is already registered as {skeleton.name!r}; choose another name"
        )
    _REGISTRY[skeleton.name] = skeleton
    return skeleton


def get(name: str | Skeleton) -> Skeleton:
    """The registered skeleton called ``name`` (a Skeleton passes through)."""
    if isinstance(name, Skeleton):
        return name
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownSkeletonError(
            f"unknown skeleton {name!r}; registered skeletons are {', '.join(sorted(_REGISTRY))}"
        ) from None


def names() -> list[str]:
    return sorted(_REGISTRY)


# -- layout mapping ------------------------------------------------------------------------------------------
# dst layout name -> list of alias tables {dst joint name: src joint name}; a table applies to any source
# skeleton that has every src name it uses (so skeletons read from files map without being registered).
_ALIASES: dict[str, list[dict[str, str]]] = {}


def register_aliases(dst: str, table: Mapping[str, str]) -> None:
    """Declare how to build layout ``dst`` from a source whose joints are named differently."""
    _ALIASES.setdefault(dst, []).append(dict(table))


def joint_map(src: Skeleton, dst: Skeleton | str) -> np.ndarray:
    """Indices into ``src``'s joints giving each of ``dst``'s joints, by name correspondence.

    Raises :class:`MappingError` when some destination joint has no counterpart.
    """
    dst = get(dst)
    if src.same_topology(dst):
        return np.arange(src.num_joints)
    lowered = {n.lower(): i for i, n in enumerate(src.joint_names)}
    direct = [lowered.get(n.lower()) for n in dst.joint_names]
    if all(i is not None for i in direct):
        return np.array(direct, dtype=np.int64)
    for table in _ALIASES.get(dst.name, []):
        idx = [lowered.get(table.get(n, n).lower()) for n in dst.joint_names]
        if all(i is not None for i in idx):
            return np.array(idx, dtype=np.int64)
    missing = [n for n, i in zip(dst.joint_names, direct) if i is None]
    raise MappingError(
        f"no joint mapping from skeleton {src.name!r} ({src.num_joints} joints) to {dst.name!r}: "
        f"no counterpart for {', '.join(missing[:8])}{'…' if len(missing) > 8 else ''}. "
        "Convert the data to a supported layout or register an alias table (engine.skeletons.register_aliases)."
    )


def map_positions(positions, src: Skeleton, dst: Skeleton | str):
    """Re-index (..., V_src, 3) positions into ``dst``'s layout (numpy arrays or tensors)."""
    src.check_positions(positions)
    return positions[..., joint_map(src, dst), :]


# -- built-in skeletons --------------------------------------------------------------------------------------
NTU25 = register(
    Skeleton(
        "ntu25",
        (
            "SpineBase", "SpineMid", "Neck", "Head", "ShoulderLeft", "ElbowLeft", "WristLeft", "HandLeft",
            "ShoulderRight", "ElbowRight", "WristRight", "HandRight", "HipLeft", "KneeLeft", "AnkleLeft",
            "FootLeft", "HipRight", "KneeRight", "AnkleRight", "FootRight", "SpineShoulder", "HandTipLeft",
            "ThumbLeft", "HandTipRight", "ThumbRight",
        ),
        (-1, 0, 20, 2, 20, 4, 5, 6, 20, 8, 9, 10, 0, 12, 13, 14, 0, 16, 17, 18, 1, 7, 7, 11, 11),
    )
)

HDM05_25 = register(
    Skeleton(
        "hdm05_25",
        (
            "LHipJoint", "LeftUpLeg", "LeftLeg", "LeftFoot", "LeftToeBase", "RHipJoint", "RightUpLeg",
            "RightLeg", "RightFoot", "RightToeBase", "Hips", "Spine", "Spine1", "Neck", "Neck1", "LeftArm",
            "LeftForeArm", "LeftHand", "LeftHandIndex1", "LThumb", "RightArm", "RightForeArm", "RightHand",
            "RightHandIndex1", "RThumb",
        ),
        (10, 0, 1, 2, 3, 10, 5, 6, 7, 8, 10, 10, 11, 12, 13, 13, 15, 16, 17, 18, 13, 20, 21, 22, 23),
    )
)

CMU31 = register(
    Skeleton(
        "cmu31",
        (
            "Hips", "LHipJoint", "LeftUpLeg", "LeftLeg", "LeftFoot", "LeftToeBase", "RHipJoint", "RightUpLeg",
            "RightLeg", "RightFoot", "RightToeBase", "LowerBack", "Spine", "Spine1", "Neck", "Neck1", "Head",
            "LeftShoulder", "LeftArm", "LeftForeArm", "LeftHand", "LeftFingerBase", "LeftHandIndex1", "LThumb",
            "RightShoulder", "RightArm", "RightForeArm", "RightHand", "RightFingerBase", "RightHandIndex1",
            "RThumb",
        ),
        (-1, 0, 1, 2, 3, 4, 0, 6, 7, 8, 9, 0, 11, 12, 13, 14, 15, 13, 17, 18, 19, 20, 21, 20, 13, 24, 25, 26, 27,
         28, 27),
    )
)

# An Acclaim (ASF/AMC) clip has a joint at the root and at the distal end of every bone, named after the
# bone. A cmu31 joint sits at the proximal end of its segment, i.e. at the distal end of the parent bone.
_ACCLAIM_TO_CMU31 = {
    "Hips": "root", "LHipJoint": "root", "LeftUpLeg": "lhipjoint", "LeftLeg": "lfemur", "LeftFoot": "ltibia",
    "LeftToeBase": "lfoot", "RHipJoint": "root", "RightUpLeg": "rhipjoint", "RightLeg": "rfemur",
    "RightFoot": "rtibia", "RightToeBase": "rfoot", "LowerBack": "root", "Spine": "lowerback",
    "Spine1": "upperback", "Neck": "thorax", "Neck1": "lowerneck", "Head": "upperneck", "LeftShoulder": "thorax",
    "LeftArm": "lclavicle", "LeftForeArm": "lhumerus", "LeftHand": "lradius", "LeftFingerBase": "lwrist",
    "LeftHandIndex1": "lhand", "LThumb": "lwrist", "RightShoulder": "thorax", "RightArm": "rclavicle",
    "RightForeArm": "rhumerus", "RightHand": "rradius", "RightFingerBase": "rwrist", "RightHandIndex1": "rhand",
    "RThumb": "rwrist",
}


def _register_cmu_aliases(table: Mapping[str, str]) -> None:
    """A table that builds cmu31 also builds hdm05_25, whose joint names are a subset of cmu31's."""
    register_aliases("cmu31", table)
    register_aliases("hdm05_25", {k: v for k, v in table.items() if k in HDM05_25.joint_names})


_register_cmu_aliases(_ACCLAIM_TO_CMU31)
# The CMU BVH conversion with "LeftHip/LeftKnee/Chest/LeftCollar" names (e.g. CMU subject 131): its joints
# also sit at segment starts, so the correspondence is by name only.
_register_cmu_aliases(
    {
        "LeftUpLeg": "LeftHip", "LeftLeg": "LeftKnee", "LeftFoot": "LeftAnkle", "LeftToeBase": "LeftToe",
        "RightUpLeg": "RightHip", "RightLeg": "RightKnee", "RightFoot": "RightAnkle", "RightToeBase": "RightToe",
        "LowerBack": "lowerback", "Spine": "Chest", "Spine1": "Chest2", "Neck": "lowerneck", "Neck1": "Neck",
        "LeftShoulder": "LeftCollar", "LeftArm": "LeftShoulder", "LeftForeArm": "LeftElbow", "LeftHand": "LeftWrist",
        "LeftFingerBase": "lhand", "LeftHandIndex1": "LFingers", "RightShoulder": "RightCollar",
        "RightArm": "RightShoulder", "RightForeArm": "RightElbow", "RightHand": "RightWrist",
        "RightFingerBase": "rhand", "RightHandIndex1": "RFingers",
    },
)


# The shared cmu8 positions file (28 joints named ``hips``, ``l_hip``, ``chest``...: the CMU subset of Li et al.,
# CVPR 2018, by forward kinematics). The table is the correspondence behind the SMART/BEAT-layout copy of the
# same clips (``shared/data/formats/smart_npz``; checked joint for joint in tests/engine/test_skeletons.py): both
# hip-joint stubs sit on the root, ``Neck`` on the chest (a zero-length bone, as in the CMU files), the toe tips,
# head, head top and finger tips are dropped.
register_aliases(
    "hdm05_25",
    {
        "LHipJoint": "hips", "LeftUpLeg": "l_hip", "LeftLeg": "l_knee", "LeftFoot": "l_ankle",
        "LeftToeBase": "l_toe_base", "RHipJoint": "hips", "RightUpLeg": "r_hip", "RightLeg": "r_knee",
        "RightFoot": "r_ankle", "RightToeBase": "r_toe_base", "Hips": "hips", "Spine": "spine", "Spine1": "chest",
        "Neck": "chest", "Neck1": "neck", "LeftArm": "l_shoulder", "LeftForeArm": "l_elbow", "LeftHand": "l_wrist",
        "LeftHandIndex1": "l_hand", "LThumb": "l_thumb", "RightArm": "r_shoulder", "RightForeArm": "r_elbow",
        "RightHand": "r_wrist", "RightHandIndex1": "r_hand", "RThumb": "r_thumb",
    },
)


def from_arrays(name: str, joint_names: Iterable[str], parents: Sequence[int], up_axis: str = "y") -> Skeleton:
    """Build a skeleton from file metadata (HDF5 attributes, a BVH hierarchy...)."""
    return Skeleton(name, tuple(joint_names), tuple(int(p) for p in parents), up_axis)
