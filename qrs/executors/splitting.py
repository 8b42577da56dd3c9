"""One pub, many tasks: parts and chunks out of a plan, and one result back in pub order.

``prepare`` turns a pub and its plan (``planning.py``) into ``Task`` s — one per part and
chunk — that any executor can run (``LocalExecutor.run_task`` in-process, the Dask
executor on workers); ``merge`` builds the pub's result from the tasks' results in the
same order, with the shapes an unsplit run has:

* noisy shots are independent trajectories: a part's shots are split into chunks, each
  with its own seed derived from the job's ``seed_simulator`` (``SeedSequence`` of seed,
  pub, part, chunk), and the chunks' bits are concatenated shot-wise;
* parameter bindings split into contiguous ranges of the flattened bindings, rejoined
  and reshaped; an Estimator part's observables split by measurement basis (groups of
  qubit-wise commuting Paulis, so no basis is measured twice) and put back in order; its
  shots split by precision (each chunk runs at precision·√n) and averaged;
* a part that uses none of the pub's parameters runs once for all bindings (shots ×
  bindings, reshaped): its outcomes do not depend on them.

For a fixed seed and the same plan, every task's seed — hence the merged result — is the
same on every run, whichever executor or worker runs it.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .components import (
    binding_values,
    merge_bits,
    part_circuit,
    passive_measurements,
    sample_passive,
)
from .observables import combine, factor, local_observables
from .planning import PubPlan


@dataclass
class Task:
    """One simulation run: a pub (or a piece of one) with its method, noise and seed."""

    kind: str  # sampler | estimator
    pub: Any  # a coerced SamplerPub / EstimatorPub, run as is
    method: str
    device: str
    noise: str  # exact | pauli | none
    qubits: tuple[int, ...]  # device qubits the pub's circuit stands for, in its qubit order
    remapped: bool  # the circuit is the part on its own register (qubits[i] → qubit i)
    seed: int | None
    label: str = ""
    aer_options: tuple[tuple[str, Any], ...] = ()  # e.g. a probed part's MPS bond cap


@dataclass
class PubWork:
    """A prepared pub: its tasks and what ``merge`` needs to put their results together."""

    kind: str
    index: int
    pub: Any
    plan: PubPlan
    tasks: list[Task]
    layout: list[dict[str, Any]] = field(default_factory=list)  # per part: how to rejoin
    factoring: Any = None
    seed: int | None = None
    flips: dict[int, float] = field(default_factory=dict)  # readout P(1|0) of passive qubits


def derive_seed(seed: int | None, *path: int) -> int | None:
    """A task's seed from the job's: independent streams per (pub, part, chunk)."""
    if seed is None:
        return None
    return int(np.random.SeedSequence([int(seed) % 2**63, *path]).generate_state(1)[0])


def _ranges(total: int, chunks: int) -> list[tuple[int, int]]:
    """``chunks`` contiguous, near-equal ranges covering ``range(total)``."""
    bounds = [total * i // chunks for i in range(chunks + 1)]
    return [(a, b) for a, b in itertools.pairwise(bounds) if b > a]


def _whole(kind: str, plan: PubPlan) -> bool:
    """Run the pub's own circuit unchanged: one simulated part in device order, no passives."""
    return (
        len(plan.parts) == 1
        and not plan.passive
        and plan.parts[0].chunks == 1
        and plan.parts[0].order == plan.parts[0].part.qubits
        and plan.parts[0].method != "matrix_product_state"
    )


def _bindings(pub: Any, circuit: Any) -> tuple[np.ndarray | None, list[Any]]:
    """The pub's values for ``circuit``'s parameters, flattened to (bindings, parameters)."""
    params = list(circuit.parameters)
    if not params:
        return None, params
    values = binding_values(pub.parameter_values, pub.circuit, params)
    return values.reshape(-1, len(params)), params


def prepare(kind: str, index: int, pub: Any, plan: PubPlan, seed: int | None) -> PubWork:
    """The tasks of one pub, in the order ``merge`` expects their results."""
    from qiskit.primitives.containers.bindings_array import BindingsArray
    from qiskit.primitives.containers.estimator_pub import EstimatorPub
    from qiskit.primitives.containers.sampler_pub import SamplerPub

    work = PubWork(kind, index, pub, plan, [], seed=seed)
    if _whole(kind, plan):
        part = plan.parts[0]
        work.tasks.append(
            Task(
                kind,
                pub,
                part.method,
                part.device,
                part.noise,
                part.part.qubits,
                False,
                seed,
                f"pub {index + 1}",
            )
        )
        work.layout.append({"whole": True})
        return work
    if kind == "estimator":
        work.factoring = factor(pub.observables, [p.order for p in plan.parts])
    shape = pub.shape if kind == "sampler" else pub.parameter_values.shape
    count = int(np.prod(shape)) if shape else 1
    for number, part in enumerate(plan.parts):
        circuit = part_circuit(pub.circuit, part.order)
        values, params = _bindings(pub, circuit)
        folded = values is None and count > 1
        shots = int(pub.shots) if kind == "sampler" else math.ceil(1 / pub.precision**2)
        if kind == "sampler" and folded:
            shots *= count
        by_bindings = part.split == "bindings" and values is not None
        pieces = (
            _ranges(count if by_bindings else shots, part.chunks)
            if part.chunks > 1 and part.split != "observables"
            else [(0, count if by_bindings else shots)]
        )
        labels_all = work.factoring.local[number] if kind == "estimator" else []
        labels = [labels_all]
        if kind == "estimator" and part.split == "observables":
            labels = _basis_chunks(work.factoring.local[number], part.chunks)
            pieces = pieces * len(labels)
        part.chunks = len(pieces)  # fewer bases than wanted chunks: the plan says so
        work.layout.append(
            {
                "folded": folded,
                "by": "observables" if len(labels) > 1 else "bindings" if by_bindings else "shots",
                "tasks": len(pieces),
                "shape": shape,
                "labels": labels,
                "local": labels_all,
            }
        )
        for chunk, (start, stop) in enumerate(pieces):
            if values is None:
                bindings = BindingsArray()
            elif by_bindings:
                bindings = BindingsArray({tuple(params): values[start:stop]})
            else:
                bindings = BindingsArray(
                    {tuple(params): values.reshape(*shape, len(params)) if shape else values[0]}
                )
            if kind == "sampler":
                piece = SamplerPub(circuit, bindings, stop - start if not by_bindings else shots)
            else:
                piece_shots = stop - start if not by_bindings else shots
                observables = local_observables(labels[chunk % len(labels)], bindings.ndim)
                piece = EstimatorPub(
                    circuit, observables, bindings, precision=1 / math.sqrt(piece_shots)
                )
            guard = (
                (("matrix_product_state_max_bond_dimension", part.bond_guard),)
                if part.bond_guard
                else ()
            )
            work.tasks.append(
                Task(
                    kind,
                    piece,
                    part.method,
                    part.device,
                    part.noise,
                    part.order,
                    True,
                    derive_seed(seed, index, number, chunk),
                    f"pub {index + 1} part {number + 1} task {chunk + 1}/{len(pieces)}",
                    guard,
                )
            )
    return work


def _basis_chunks(labels: list[str], chunks: int) -> list[list[str]]:
    """``labels`` in up to ``chunks`` lists of whole measurement bases (round robin)."""
    from qiskit.quantum_info import PauliList

    groups = PauliList(labels).group_qubit_wise_commuting()
    buckets: list[list[str]] = [[] for _ in range(min(chunks, len(groups)))]
    for index, group in enumerate(groups):
        buckets[index % len(buckets)].extend(group.to_labels())
    return buckets


def _sampler_part(
    results: list[Any], layout: dict[str, Any], shape: tuple, shots: int
) -> dict[str, Any]:
    from qiskit.primitives.containers.bit_array import BitArray

    names = list(results[0].data.keys())
    merged = {}
    for name in names:
        arrays = [result.data[name] for result in results]
        if layout["by"] == "bindings":
            bits = BitArray.concatenate([a.reshape(a.size) for a in arrays], axis=0)
            bits = bits.reshape(*shape) if shape else bits
        else:
            bits = BitArray.concatenate_shots(arrays) if len(arrays) > 1 else arrays[0]
            if layout["folded"] or (shape and bits.shape != shape):
                bits = bits.reshape(*shape, shots)
        merged[name] = bits
    return merged


def _estimator_part(results: list[Any], layout: dict[str, Any]) -> tuple[np.ndarray, ...]:
    """A part's (evs, stds) of shape (local Paulis, bindings)."""
    evs = [np.asarray(r.data.evs, dtype=float) for r in results]
    stds = [np.asarray(r.data.stds, dtype=float) for r in results]
    count = int(np.prod(layout["shape"])) if layout["shape"] else 1
    if layout["by"] == "observables":  # rows back in the order of the part's local Paulis
        position = {label: row for row, label in enumerate(layout["local"])}
        mean, error = np.zeros((len(position), count)), np.zeros((len(position), count))
        for labels, values, errors in zip(layout["labels"], evs, stds):
            rows = [position[label] for label in labels]
            columns = values.reshape(len(labels), -1).shape[1]
            mean[rows] = np.broadcast_to(
                values.reshape(len(labels), columns), (len(labels), count)
            )
            error[rows] = np.broadcast_to(
                errors.reshape(len(labels), columns), (len(labels), count)
            )
        return mean, error
    length = evs[0].shape[0]
    if layout["by"] == "bindings":
        return (
            np.concatenate([e.reshape(length, -1) for e in evs], axis=1),
            np.concatenate([s.reshape(length, -1) for s in stds], axis=1),
        )
    mean = np.mean([e.reshape(length, -1) for e in evs], axis=0)
    error = np.sqrt(np.sum([s.reshape(length, -1) ** 2 for s in stds], axis=0)) / len(stds)
    if mean.shape[1] != count:  # a part without the pub's parameters: same for every binding
        mean, error = np.repeat(mean, count, axis=1), np.repeat(error, count, axis=1)
    return mean, error


def merge(work: PubWork, results: list[Any]) -> Any:
    """The pub's result from its tasks' results (in ``work.tasks`` order)."""
    from qiskit.primitives.containers import DataBin, PubResult, SamplerPubResult

    summary = {"simulation": work.plan.summary()}
    if work.layout and work.layout[0].get("whole"):
        result = results[0]
        return type(result)(result.data, metadata={**result.metadata, **summary})
    pub, start = work.pub, 0
    pieces: list[Any] = []
    for layout in work.layout:
        chunk = results[start : start + layout["tasks"]]
        start += layout["tasks"]
        if work.kind == "sampler":
            pieces.append(_sampler_part(chunk, layout, pub.shape, int(pub.shots)))
        else:
            pieces.append(_estimator_part(chunk, layout))
    if work.kind == "estimator":
        evs, stds = combine(
            work.factoring, pieces, pub.observables.shape, pub.parameter_values.shape, pub.shape
        )
        return PubResult(
            DataBin(evs=evs, stds=stds, shape=pub.shape),
            metadata={
                "target_precision": pub.precision,
                "circuit_metadata": pub.circuit.metadata,
                **summary,
            },
        )
    if work.plan.passive or not pieces:
        rng = np.random.default_rng(derive_seed(work.seed, work.index, len(work.plan.parts)))
        measurements = passive_measurements(pub.circuit, work.plan.passive)
        pieces.append(
            sample_passive(pub.circuit, measurements, work.flips, pub.shape, int(pub.shots), rng)
        )
    registers = merge_bits(pieces)
    return SamplerPubResult(
        DataBin(**registers, shape=pub.shape),
        metadata={"shots": int(pub.shots), "circuit_metadata": pub.circuit.metadata, **summary},
    )
