"""Evaluation of the consensus confidence on the labelled set (prints figures; ``--fit`` refits the calibration).

Plays every case of ``wallbounce_service/data/consensus_eval.yaml`` through the real analyzer and the real SDKs
against the in-process simulators, once per mode (parallel with cross-examination ``off``, ``auto`` — the default —
and ``always``; ``sequential``) and reviewer behaviour (``honest``, ``blind``, ``capitulating`` for every vendor, or
``mixed``: OpenAI honest, Gemini blind, Claude capitulating), then prints per mode × behaviour and per category: AUC
of agreement against contradiction, the worst-case margin (lowest agreement minus highest contradiction), the share
of contradictions under 0.6 (rollback line), of agreements at or above 0.7 (promotion line), of drift under 0.5 and
of two-against-one in the hold band [0.6, 0.7); and per mode the provider calls, cost and latency a request adds
over ``off`` (timed with ``--delay`` seconds of simulated provider latency). The figures are given for the shipped
calibration and 5-fold cross-validated (the calibration refitted without the fold it is measured on), so that the
calibration is not judged on the cases it was fitted to.

``--fit`` first fits the drift band on the answers' topicality, then the raw → confidence map on the raw scores of
all modes and behaviours, and writes ``service/wallbounce_service/data/calibration.json``.

Usage: ``.venv/bin/python bench/consensus_eval.py [--fit] [--modes off,auto,always,sequential]
[--behaviours honest,blind,capitulating,mixed] [--delay 0.05] [--timed 24] [--json results.json]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import cast

from wallbounce_sim import VENDORS, Simulator

from wallbounce_service import calibration as cal_mod
from wallbounce_service.analyzer import Analyzer
from wallbounce_service.config import RetrySettings, Settings
from wallbounce_service.consensus import topicality
from wallbounce_service.consensus_config import ConsensusSettings, CrossExamination
from wallbounce_service.evalset import TASK_PROVIDERS, Case, load_cases
from wallbounce_service.metrics import Metrics
from wallbounce_service.protocol import parse_answer
from wallbounce_service.providers import build_clients
from wallbounce_service.providers.router import ProviderPool
from wallbounce_service.selection import Selection

FAKE_KEYS = {
    "OPENAI_API_KEY": "sk-eval-000000000000",
    "ANTHROPIC_API_KEY": "sk-ant-eval-000000000000",
    "GEMINI_API_KEY": "AIzaEVAL000000000000000000000000000",
}
MODES = ("off", "auto", "always", "sequential")
BEHAVIOURS = ("honest", "blind", "capitulating", "mixed")
#: ``mixed``: each vendor reviews its own way, so every case meets two or three different reviewers
MIXED = {"openai": "honest", "gemini": "blind", "anthropic": "capitulating"}


@dataclass
class Run:
    case: str
    category: str
    label: str
    lang: str
    mode: str
    behaviour: str
    raw: float
    confidence: float
    calls: int
    cost_usd: float
    rounds: int
    seconds: float


def settings_for(mode: str) -> Settings:
    policy: CrossExamination = "auto" if mode == "sequential" else cast(CrossExamination, mode)
    return Settings(consensus=ConsensusSettings(cross_examination=dict.fromkeys(("basic", "premium", "critical"),
                                                                                policy)),
                    retry=RetrySettings(attempts=1))


async def play(
    sim: Simulator, cases: Sequence[Case], mode: str, behaviour: str, concurrency: int = 8
) -> list[Run]:
    """Every case once in ``mode`` with every vendor reviewing as ``behaviour``."""
    settings = settings_for(mode)
    for vendor in VENDORS:
        sim.update(vendor, reviewer=MIXED[vendor] if behaviour == "mixed" else behaviour)
    pool = ProviderPool(build_clients(settings.providers), settings.providers, settings.prices, settings.retry,
                        settings.cooldown, Metrics("stable"))
    analyzer = Analyzer(settings, pool)
    gate = asyncio.Semaphore(concurrency)

    async def one(case: Case) -> Run:
        async with gate:
            selection = Selection(list(TASK_PROVIDERS[case.task_type]), [], 0.0)
            start = time.perf_counter()
            analysis = await analyzer.run(case.question, case.task_type,
                                          "sequential" if mode == "sequential" else "parallel", 3, selection)
            took = time.perf_counter() - start
        c = analysis.consensus
        return Run(case.id, case.category, case.label, case.lang, mode, behaviour, c.raw, c.confidence,
                   len(analysis.steps), analysis.total_cost, analysis.rounds, took)

    try:
        return list(await asyncio.gather(*(one(c) for c in cases)))
    finally:
        await pool.close()


# --- metrics ---------------------------------------------------------------------------------------------------------

def auc(positives: Sequence[float], negatives: Sequence[float]) -> float:
    if not positives or not negatives:
        return float("nan")
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


def share(values: Iterable[bool]) -> float:
    v = list(values)
    return sum(v) / len(v) if v else float("nan")


def summary(runs: Sequence[Run], conf: dict[int, float]) -> dict[str, float]:
    """The figures of a set of runs, with confidences ``conf`` (by id of the run)."""
    agree = [conf[id(r)] for r in runs if r.label == "agreement"]
    contra = [conf[id(r)] for r in runs if r.label == "contradiction"]
    drift = [conf[id(r)] for r in runs if r.label == "drift"]
    split = [conf[id(r)] for r in runs if r.label == "split"]
    return {
        "auc": auc(agree, contra),
        "margin": (min(agree) - max(contra)) if agree and contra else float("nan"),
        "contra_below_0.6": share(c < 0.6 for c in contra),
        "agree_at_0.7": share(a >= 0.7 for a in agree),
        "drift_below_0.5": share(d < 0.5 for d in drift),
        "split_in_hold": share(0.6 <= s < 0.7 for s in split),
        "mean_agree": statistics.fmean(agree) if agree else float("nan"),
        "mean_contra": statistics.fmean(contra) if contra else float("nan"),
        "n": len(runs),
    }


def fmt(x: float, pct: bool = False) -> str:
    if x != x:  # NaN
        return "—"
    return f"{x * 100:.0f} %" if pct else f"{x:+.2f}" if x < 0 else f"{x:.2f}"


def print_table(title: str, rows: list[tuple[str, dict[str, float]]]) -> None:
    print(f"\n{title}")
    head = f"{'':34} {'AUC':>5} {'margin':>7} {'contra<0.6':>10} {'agree≥0.7':>10} {'drift<0.5':>9} {'2v1 hold':>8}" \
           f" {'mean agr':>8} {'mean con':>8} {'runs':>5}"
    print(head)
    for name, s in rows:
        print(f"{name:34} {fmt(s['auc']):>5} {fmt(s['margin']):>7} {fmt(s['contra_below_0.6'], True):>10} "
              f"{fmt(s['agree_at_0.7'], True):>10} {fmt(s['drift_below_0.5'], True):>9} "
              f"{fmt(s['split_in_hold'], True):>8} {fmt(s['mean_agree']):>8} {fmt(s['mean_contra']):>8} "
              f"{s['n']:>5.0f}")


def crossvalidated(runs: Sequence[Run], cal: cal_mod.Calibration, folds: int = 5) -> dict[int, float]:
    """Each run's confidence under a calibration map fitted without its case's fold."""
    ids = sorted({r.case for r in runs})
    fold_of = {cid: n % folds for n, cid in enumerate(ids)}
    out: dict[int, float] = {}
    for f in range(folds):
        train = [r for r in runs if fold_of[r.case] != f]
        xs, ys = cal_mod.fit_map([(r.raw, target(r.label), 1.0) for r in train], cal.prior_weight)
        fold_cal = replace(cal, raw=tuple(xs), confidence=tuple(ys))
        for r in runs:
            if fold_of[r.case] == f:
                out[id(r)] = fold_cal.map(r.raw)
    return out


def target(label: str) -> float:
    return {"agreement": 1.0, "contradiction": 0.0, "drift": 0.0, "split": 2 / 3}[label]


# --- fitting ---------------------------------------------------------------------------------------------------------

def fit_drift(cases: Sequence[Case]) -> tuple[float, float]:
    on: list[float] = []
    off: list[float] = []
    for case in cases:
        for answer in case.answers.values():
            t = topicality(case.question, parse_answer("", answer.structured(case.question)))
            (off if answer.pos == "drift" else on).append(t)
    return cal_mod.fit_drift(on, off)


def write_json(path: Path, report: dict[str, object]) -> None:
    path.write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")


def write_calibration(cal: cal_mod.Calibration, path: Path = cal_mod.CALIBRATION_FILE) -> None:
    path.write_text(cal.to_json(), encoding="utf-8")
    cal_mod.load.cache_clear()


def fit_map_on(runs: Sequence[Run], cases: Sequence[Case], args: argparse.Namespace) -> cal_mod.Calibration:
    """Fits the raw → confidence map on ``runs``, writes it, returns the new calibration."""
    cal = cal_mod.load()
    xs, ys = cal_mod.fit_map([(r.raw, target(r.label), 1.0) for r in runs], cal.prior_weight)
    cal = replace(cal, raw=tuple(xs), confidence=tuple(ys),
                  fitted_on=f"{len(cases)} cases × modes {','.join(args.modes)} × reviewers "
                            f"{','.join(args.behaviours)} ({len(runs)} runs)")
    write_calibration(cal)
    print(f"calibration written: raw {list(cal.raw)} → confidence {list(cal.confidence)}")
    return cal


def print_report(runs: Sequence[Run], cal: cal_mod.Calibration, args: argparse.Namespace) -> dict[str, object]:
    """The accuracy tables (shipped and cross-validated calibration, per category) and the worst cases."""
    shipped = {id(r): cal.map(r.raw) for r in runs}
    cv = crossvalidated(runs, cal)
    report: dict[str, object] = {"calibration": asdict(cal)}
    for name, conf in (("shipped calibration", shipped), ("5-fold cross-validated", cv)):
        rows = [(f"{m} / {b}", summary([r for r in runs if r.mode == m and r.behaviour == b], conf))
                for m in args.modes for b in args.behaviours]
        rows += [(f"{m} / all reviewers", summary([r for r in runs if r.mode == m], conf)) for m in args.modes]
        print_table(f"By mode and reviewer behaviour ({name})", rows)
        report[name] = dict(rows)
    default = [r for r in runs if r.mode == ("auto" if "auto" in args.modes else args.modes[0])]
    by_cat: dict[str, list[Run]] = defaultdict(list)
    for r in default:
        by_cat[f"{r.category} / {r.behaviour}"].append(r)
    cat_rows = [(k, summary(v, shipped)) for k, v in sorted(by_cat.items())]
    print_table(f"By category and reviewer behaviour (mode {default[0].mode}, shipped calibration)", cat_rows)
    report["categories"] = dict(cat_rows)
    worst = sorted((r for r in default if r.label == "contradiction"), key=lambda r: -shipped[id(r)])[:5]
    print("\nhighest-scored contradictions (default mode): " + ", ".join(
        f"{r.case}/{r.behaviour} {shipped[id(r)]:.2f}" for r in worst))
    low_agree = sorted((r for r in default if r.label == "agreement"), key=lambda r: shipped[id(r)])[:5]
    print("lowest-scored agreements (default mode): " + ", ".join(
        f"{r.case}/{r.behaviour} {shipped[id(r)]:.2f}" for r in low_agree))
    return report


# --- main -----------------------------------------------------------------------------------------------------------

async def timed(
    sim: Simulator, cases: Sequence[Case], modes: Sequence[str], delay: float
) -> dict[str, dict[str, float]]:
    """Per mode: provider calls, cost and wall time per request with ``delay`` s of provider latency (honest
    reviewers, one request at a time)."""
    for vendor in VENDORS:
        sim.update(vendor, latency_s=delay)
    out = {}
    try:
        for mode in modes:
            runs = await play(sim, cases, mode, "honest", concurrency=1)  # one at a time: latency, not contention
            out[mode] = {
                "calls": statistics.fmean(r.calls for r in runs),
                "cost_usd": statistics.fmean(r.cost_usd for r in runs),
                "p50_s": statistics.median(r.seconds for r in runs),
                "mean_s": statistics.fmean(r.seconds for r in runs),
                "rounds": statistics.fmean(r.rounds for r in runs),
            }
    finally:
        for vendor in VENDORS:
            sim.update(vendor, latency_s=0.0)
    return out


async def run(args: argparse.Namespace) -> int:
    cases = list(load_cases())
    sim = Simulator(cases=cases)
    await sim.start()
    os.environ.update({**FAKE_KEYS, **sim.env()})
    for name in ("GOOGLE_API_KEY", "WALLBOUNCE_CONFIG_FILE"):
        os.environ.pop(name, None)
    try:
        if args.fit:
            low, high = fit_drift(cases)
            write_calibration(replace(cal_mod.load(), drift_low=low, drift_high=high,
                                      fitted_on="drift band fitted; map pending"))
            print(f"drift band fitted: off topic at or below {low:.3f}, on topic from {high:.3f}")
        started = time.perf_counter()
        runs: list[Run] = []
        for mode in args.modes:
            for behaviour in args.behaviours:
                runs += await play(sim, cases, mode, behaviour)
        print(f"{len(cases)} cases × {len(args.modes)} modes × {len(args.behaviours)} behaviours = {len(runs)} "
              f"requests through the SDKs in {time.perf_counter() - started:.1f} s")
        cal = fit_map_on(runs, cases, args) if args.fit else cal_mod.load()
        report = print_report(runs, cal, args)
        if args.timed:
            sample = cases[:: max(1, len(cases) // args.timed)][: args.timed]
            cost = await timed(sim, sample, args.modes, args.delay)
            base = cost.get("off") or next(iter(cost.values()))
            print(f"\nCost per request ({len(sample)} cases, honest reviewers, {args.delay * 1000:.0f} ms simulated "
                  "provider latency; added = over mode off)")
            print(f"{'mode':12} {'calls':>6} {'rounds':>6} {'cost USD':>10} {'added USD':>10} {'p50 ms':>8} "
                  f"{'mean ms':>8} {'added p50 / mean ms':>20}")
            for mode, c in cost.items():
                added = f"{(c['p50_s'] - base['p50_s']) * 1000:.0f} / {(c['mean_s'] - base['mean_s']) * 1000:.0f}"
                print(f"{mode:12} {c['calls']:6.2f} {c['rounds']:6.2f} {c['cost_usd']:10.6f} "
                      f"{c['cost_usd'] - base['cost_usd']:10.6f} {c['p50_s'] * 1000:8.0f} {c['mean_s'] * 1000:8.0f} "
                      f"{added:>20}")
            report["cost"] = cost
        if args.json:
            write_json(Path(args.json), report)
    finally:
        await sim.stop()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--fit", action="store_true", help="refit the calibration and write it")
    parser.add_argument("--modes", type=lambda t: t.split(","), default=list(MODES))
    parser.add_argument("--behaviours", type=lambda t: t.split(","), default=list(BEHAVIOURS))
    parser.add_argument("--delay", type=float, default=0.05, help="simulated provider latency for the cost table")
    parser.add_argument("--timed", type=int, default=24, help="cases in the latency/cost table (0: skip it)")
    parser.add_argument("--json", help="also write the figures to this file")
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
