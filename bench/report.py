#!/usr/bin/python3
"""Turns a bench run's raw figures (DIR/raw.tsv: round, system, key, value)
into the table on stdout, DIR/results.json and the chart DIR/ratios.png.

Each figure is shown as the median over the rounds and its spread (min-max).
Ratios to a baseline system are computed per round (both figures from the
same round) and then medianed: the median of same-round ratios, which cancels
what a noisy moment on a shared machine does to all systems of one round.
The chart needs matplotlib (Debian: python3-matplotlib); without it the
table and the JSON file are still written.
"""
import argparse
import collections
import json
import os
import statistics
import sys

# key: (label, unit, format, better); better is "high", "low" or "" (neither).
ROWS = {
    "t1_up": ("1 stream to the service (iperf3)", "Mbit/s", "{:.0f}", "high"),
    "t1_down": ("1 stream from the service (-R)", "Mbit/s", "{:.0f}", "high"),
    "t4_up": ("4 streams to the service (-P 4)", "Mbit/s", "{:.0f}", "high"),
    "cpu_relay": ("relay CPU (all relay processes)", "s/GB", "{:.2f}", "low"),
    "gb_per_cpu": ("GB relayed per relay CPU-second", "GB/s", "{:.2f}", "high"),
    "cpu_total": ("relay + tunnel CPU", "s/GB", "{:.1f}", "low"),
    "cpu_tun": ("  of which tunnel (wireguard-go)", "s/GB", "{:.1f}", "low"),
    "wrk_rps": ("keep-alive (wrk, 32 conns)", "req/s", "{:.0f}", "high"),
    "wrk_p99": ("  p99 latency", "ms", "{:.2f}", "low"),
    "ab_rps": ("new conn per request (ab)", "req/s", "{:.0f}", "high"),
    "idle_kib": ("idle conn: private memory", "KiB", "{:.2f}", "low"),
    "idle_fds": ("idle conn: fds", "fds", "{:.2f}", "low"),
    "idle_fds_left": ("  fds above baseline after", "fds", "{:.0f}", ""),
    "tun_kpkts": ("tunnel packets per GB", "k/GB", "{:.0f}", "low"),
    "tun_pktsize": ("  mean packet size", "B", "{:.0f}", ""),
    "rr_rate": ("UDP request/response (200 B)", "answers/s", "{:.0f}", "high"),
    "rr_p50": ("  p50 latency", "ms", "{:.2f}", "low"),
    "rr_p99": ("  p99 latency", "ms", "{:.2f}", "low"),
    "rr_lost": ("  requests lost", "%", "{:.2f}", "low"),
    "pace_p50": ("paced request/response: p50", "ms", "{:.2f}", "low"),
    "pace_p99": ("  p99 latency", "ms", "{:.2f}", "low"),
    "hol_p50": ("same, 1 % induced loss each way: p50", "ms", "{:.2f}", "low"),
    "hol_p99": ("  p99 latency", "ms", "{:.2f}", "low"),
    "hol_lost": ("  requests lost", "%", "{:.2f}", "low"),
    "hol_p99_ratio": ("  p99 with loss / without", "x", "{:.2f}", "low"),
    "udp_mbps": ("one-way throughput (1200 B)", "Mbit/s", "{:.0f}", "high"),
    "udp_loss": ("  datagrams lost", "%", "{:.2f}", "low"),
}
KEYS = {
    "tunnel": ["t1_up", "t1_down", "cpu_relay", "cpu_total", "cpu_tun", "wrk_rps", "wrk_p99",
               "ab_rps", "idle_kib", "idle_fds", "idle_fds_left", "tun_kpkts", "tun_pktsize"],
    "relay": ["ab_rps", "wrk_rps", "wrk_p99", "t1_up", "t1_down", "t4_up", "cpu_relay",
              "gb_per_cpu"],
    "udp": ["rr_rate", "rr_p50", "rr_p99", "rr_lost", "pace_p50", "pace_p99", "hol_p50", "hol_p99", "hol_lost",
            "hol_p99_ratio", "udp_mbps", "udp_loss", "cpu_relay", "cpu_total", "cpu_tun"],
}
BASELINES = {"tunnel": ["haproxy-splice", "ceiling"], "relay": ["haproxy-2t", "wgrp-1w"],
             "udp": ["nginx", "ceiling"]}


def spread(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "values": values}


def cell(s, fmt):
    if s is None:
        return "-"
    if len(s["values"]) == 1:
        return fmt.format(s["median"])
    return "{} ({}-{})".format(fmt.format(s["median"]), fmt.format(s["min"]), fmt.format(s["max"]))


def table(title, header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    print(title)
    for r in [header] + rows:
        print("  ".join(str(c).ljust(w) if i < 2 else str(c).rjust(w)
                        for i, (c, w) in enumerate(zip(r, widths))).rstrip())
    print()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--kind", choices=KEYS, required=True)
    ap.add_argument("--title", default="")
    a = ap.parse_args()

    raw = collections.defaultdict(dict)  # (key, system) -> {round: value}
    systems = []
    with open(os.path.join(a.dir, "raw.tsv")) as f:
        for line in f:
            rnd, system, key, value = line.rstrip("\n").split("\t")
            try:
                raw[(key, system)][int(rnd)] = float(value)
            except ValueError:
                continue
            if system not in systems:
                systems.append(system)
    meta = {}
    if os.path.exists(os.path.join(a.dir, "meta.json")):
        with open(os.path.join(a.dir, "meta.json")) as f:
            meta = json.load(f)
    # Every system asked for gets a column, "-" where it could not run.
    order = [s for s in meta.get("systems", "").split(",") if s]
    systems = order + [s for s in systems if s not in order]
    metrics = [(k,) + ROWS[k] for k in KEYS[a.kind]]
    baselines = [b for b in BASELINES[a.kind] if any(k[1] == b for k in raw)]

    figures = {}
    ratios = {b: {} for b in baselines}
    for key, *_ in metrics:
        figures[key] = {s: spread(list(raw[(key, s)].values())) for s in systems if raw.get((key, s))}
        for b in baselines:
            ratios[b][key] = {}
            for s in systems:
                base = raw.get((key, b), {})
                same = [v / base[r] for r, v in sorted(raw.get((key, s), {}).items())
                        if base.get(r)]
                if same and s != b:
                    ratios[b][key][s] = spread(same)

    if a.title:
        print(a.title)
        print()
    table("Figures: median over rounds (min-max)",
          ["figure", "unit"] + systems,
          [[label, unit] + [cell(figures[key].get(s), fmt) for s in systems]
           for key, label, unit, fmt, _ in metrics])
    for b in baselines:
        others = [s for s in systems if s != b]
        table("Ratio to {}: median of same-round ratios (min-max)".format(b),
              ["figure", "better"] + others,
              [[label, {"high": "higher", "low": "lower"}.get(better, "")]
               + [cell(ratios[b][key].get(s), "{:.2f}") for s in others]
               for key, label, _, _, better in metrics])

    settings = read_settings(os.path.join(a.dir, "settings.tsv"))
    if settings:
        print_settings(settings, systems)

    result = {"meta": meta, "systems": systems,
              "metrics": {k: {"label": l, "unit": u, "better": b} for k, l, u, _, b in metrics},
              "figures": figures, "ratios": ratios, "tunnel_settings": settings}
    with open(os.path.join(a.dir, "results.json"), "w") as f:
        json.dump(result, f, indent=1)
    # A run of one system (e.g. --systems wgrp) has no ratios to draw.
    if baselines:
        chart(a, metrics, systems, baselines, ratios)
    else:
        print("no chart: no system to compare with", file=sys.stderr)


def read_settings(path):
    """system -> side -> key -> value, from the first round that has it."""
    out = {}
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 5:
                continue
            _, system, side, key, value = parts
            out.setdefault(system, {}).setdefault(side, {}).setdefault(key, value)
    return out


def print_settings(settings, systems):
    """A setting all systems share on one line; one that differs with each
    system's value."""
    shown = [s for s in systems if s in settings]
    keys = sorted({(side, k) for s in shown for side, kv in settings[s].items() for k in kv})
    print("Tunnel interfaces and wireguard-go processes (first round each system ran):")
    for side, k in keys:
        vals = {s: settings[s].get(side, {}).get(k) or "-" for s in shown}
        if len(set(vals.values())) == 1:
            print("  {} {}: {} (all)".format(side, k, next(iter(vals.values()))))
        else:
            print("  {} {}: DIFFERS: {}".format(side, k, "; ".join(
                "{}={}".format(s, v) for s, v in vals.items())))
    print()


def chart(a, metrics, systems, baselines, ratios):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        print("no chart: matplotlib is missing (Debian: python3-matplotlib)", file=sys.stderr)
        return
    keys = [m for m in metrics if m[4]]
    fig, axes = plt.subplots(len(baselines), 1, figsize=(13, 5 * len(baselines)), squeeze=False)
    for ax, b in zip(axes[:, 0], baselines):
        others = [s for s in systems if s != b]
        width = 0.8 / max(len(others), 1)
        for i, s in enumerate(others):
            xs, ys, lo, hi = [], [], [], []
            for j, m in enumerate(keys):
                r = ratios[b][m[0]].get(s)
                if r:
                    xs.append(j + (i - (len(others) - 1) / 2) * width)
                    ys.append(r["median"])
                    lo.append(r["median"] - r["min"])
                    hi.append(r["max"] - r["median"])
            ax.bar(xs, ys, width, yerr=[lo, hi], capsize=2, label=s)
        ax.axhline(1, color="black", linewidth=0.8)
        ax.set_yscale("log")
        ax.set_xticks(range(len(keys)))
        ax.set_xticklabels(["{} ({} better)".format(m[1].strip(), "higher" if m[4] == "high" else "lower")
                            for m in keys], fontsize=7, rotation=25, ha="right")
        ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.yaxis.set_minor_formatter(matplotlib.ticker.ScalarFormatter())
        ax.tick_params(axis="y", which="both", labelsize=7)
        ax.set_ylabel("ratio to " + b)
        ax.set_title("median of same-round ratios to {} (bars: min-max)".format(b), fontsize=10)
        ax.legend(fontsize=8, ncol=len(others))
    fig.suptitle(a.title, fontsize=9)
    fig.tight_layout()
    fig.savefig(os.path.join(a.dir, "ratios.png"), dpi=110)


if __name__ == "__main__":
    main()
