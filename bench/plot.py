"""The benchmark's PNG: throughput against the twin, latency distributions, CPU per process,
memory against checkouts waiting."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers and in CI
import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from bench.phases import Measured
from bench.report import Results

OURS, THEIRS = "#1f6f8b", "#b0b0b0"


def draw(results: Results, path: Path, title: str) -> Path:
    figure, axes = plt.subplots(2, 2, figsize=(13, 9))
    figure.suptitle(title)
    _throughput(axes[0][0], results)
    _latencies(axes[0][1], results)
    _cpu(axes[1][0], results)
    _memory(axes[1][1], results)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def _throughput(axis: Axes, results: Results) -> None:
    hooks = results.webhooks
    pairs = [
        ("checkouts sold /s", results.checkouts, results.twin),
        ("webhooks /s (÷10)", hooks.service, hooks.bare),
    ]
    for index, (label, ours, theirs) in enumerate(pairs):
        scale = 10 if "÷10" in label else 1
        axis.bar(index - 0.2, theirs.timed.rate / scale, 0.4, color=THEIRS)
        axis.bar(index + 0.2, ours.timed.rate / scale, 0.4, color=OURS)
    axis.set_xticks(range(len(pairs)), [label for label, _, _ in pairs])
    axis.legend(["no-op twin / bare endpoint", "the service"])
    axis.set_title("Throughput, same stack, same run")


def _cdf(axis: Axes, measured: Measured, label: str, color: str, style: str = "-") -> None:
    values = sorted(seconds * 1000 for seconds in measured.timed.latencies)
    if values:
        shares = [(rank + 1) / len(values) for rank in range(len(values))]
        axis.plot(values, shares, style, color=color, label=label)


def _latencies(axis: Axes, results: Results) -> None:
    hooks = results.webhooks
    _cdf(axis, results.twin, "twin start → sold", THEIRS)
    _cdf(axis, results.checkouts, "checkout close → sold", OURS)
    _cdf(axis, hooks.bare, "bare webhook", THEIRS, "--")
    _cdf(axis, hooks.service, "webhook → waiting checkout", OURS, "--")
    _cdf(axis, results.twin_below_capacity, "twin start → 1st activity", THEIRS, ":")
    _cdf(axis, results.below_capacity, "close → intent ready", OURS, ":")
    axis.set_xscale("log")
    axis.set_xlabel("ms")
    axis.set_ylabel("share of requests")
    axis.legend(fontsize=8)
    axis.grid(True, alpha=0.3)
    axis.set_title("Latency distributions")


def _cpu(axis: Axes, results: Results) -> None:
    runs = [("twin", results.twin), ("checkout", results.checkouts)]
    hooks = results.webhooks
    runs += [("bare webhook", hooks.bare), ("webhook", hooks.service)]
    parts = sorted({part for _, measured in runs for part in measured.cpu})
    bottoms = [0.0] * len(runs)
    for part in parts:
        heights = [
            measured.cpu.get(part, 0.0) / max(1, measured.timed.count) * 1000
            for _, measured in runs
        ]
        axis.bar([name for name, _ in runs], heights, bottom=bottoms, label=part)
        bottoms = [low + high for low, high in zip(bottoms, heights, strict=True)]
    axis.set_ylabel("CPU ms per operation")
    axis.legend(fontsize=8)
    axis.set_title("CPU per operation, by process")


def _memory(axis: Axes, results: Results) -> None:
    samples = results.memory.samples
    parts = sorted({part for sample in samples for part in sample.rss_mib})
    counts = [sample.open_checkouts for sample in samples]
    for part in parts:
        axis.plot(counts, [sample.rss_mib.get(part, 0.0) for sample in samples], label=part)
    axis.set_xlabel("checkouts waiting for payment")
    axis.set_ylabel("resident memory, MiB")
    axis.legend(fontsize=8)
    axis.grid(True, alpha=0.3)
    axis.set_title("Memory against open checkouts")
