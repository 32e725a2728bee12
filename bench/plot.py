#!/usr/bin/python3
"""plot.py: the scaling plots of `make bench`, drawn with matplotlib (Agg) from the CSV files
bench/run.sh and bench/plots.sh wrote; it measures nothing itself.
  DATA/train.csv            arch,batch,threads,impl,images_per_s,peak_rss_mb (impl knobs or
                            torch; torch is the better of its two OpenMP wait policies)
  DATA/metrics_scaling.csv  metric,n,seconds,cpu_seconds
  DATA/metrics_capped.csv   metric,next_n,predicted_seconds,limit_seconds: where a metric's
                            sweep stopped because its next point would take too long
writes OUT/train_batch.png (conv beta-VAE img/s against the batch), OUT/train_threads.png (img/s
on 1 and 2 threads, batch 64) and OUT/metrics_scaling.png (seconds against N, log-log, with the
slope of a least-squares line fitted to log t against log N over N >= 10,000, or over every
point if fewer than 2 are that large).
usage: plot.py DATA OUT THREADS [SUBTITLE]   (THREADS: of the metric sweep)"""
import csv, math, os, sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

DATA, OUT = sys.argv[1], sys.argv[2]
THREADS = sys.argv[3]
SUB = sys.argv[4] if len(sys.argv) > 4 else ""
COLORS = {"knobs": "tab:blue", "torch": "tab:orange"}
LABELS = {"knobs": "knobs", "torch": "PyTorch"}


def rows(name):
    path = os.path.join(DATA, name)
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return list(csv.DictReader(f))


def title(ax, text):
    ax.set_title(text + ("\n" + SUB if SUB else ""), fontsize=10)


def save(fig, name):
    fig.tight_layout()
    fig.savefig(os.path.join(OUT, name), dpi=110)
    plt.close(fig)
    print("wrote", os.path.join(OUT, name))


def train_batch(train):
    conv = [r for r in train if r["arch"] == "conv"]
    if not conv:
        return
    nt = max(set(r["threads"] for r in conv), key=lambda t: sum(r["threads"] == t for r in conv))  # the sweep's
    pts = {}
    for r in conv:
        if r["threads"] == nt:
            pts.setdefault(r["impl"], {})[int(r["batch"])] = float(r["images_per_s"])
    if not pts.get("knobs"):
        return
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for impl in ("knobs", "torch"):
        if impl in pts:
            b = sorted(pts[impl])
            ax.plot(b, [pts[impl][x] for x in b], "o-", color=COLORS[impl], label=LABELS[impl])
    if "torch" in pts:
        for x in sorted(pts["knobs"]):
            if x in pts["torch"]:
                ax.annotate("%.1f×" % (pts["knobs"][x] / pts["torch"][x]), (x, pts["knobs"][x]),
                            textcoords="offset points", xytext=(0, 7), ha="center", fontsize=8)
    ax.set_xscale("log", base=2)
    bs = sorted(pts["knobs"])
    ax.set_xticks(bs)
    ax.set_xticklabels([str(x) for x in bs])
    ax.set_ylim(0, max(max(v.values()) for v in pts.values()) * 1.15)
    ax.set_xlabel("batch")
    ax.set_ylabel("training images / s (higher is better)")
    ax.grid(True, alpha=0.3)
    ax.legend(title="numbers: knobs ÷ PyTorch", fontsize=9, title_fontsize=8, loc="lower right")
    title(ax, "conv β-VAE training step, %s threads" % nt)
    save(fig, "train_batch.png")


def train_threads(train):
    pts = {}
    for r in train:
        if r["arch"] == "conv" and r["batch"] == "64":
            pts.setdefault(r["impl"], {})[int(r["threads"])] = float(r["images_per_s"])
    if not pts.get("knobs"):
        return
    threads = sorted(pts["knobs"])
    impls = [i for i in ("knobs", "torch") if i in pts]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    w = 0.8 / len(impls)
    for j, impl in enumerate(impls):
        xs = [i + (j - (len(impls) - 1) / 2) * w for i in range(len(threads))]
        ys = [pts[impl].get(t, 0) for t in threads]
        label = LABELS[impl]
        if 1 in pts[impl] and 2 in pts[impl]:
            label += " (2 threads / 1: %.2f×)" % (pts[impl][2] / pts[impl][1])
        bars = ax.bar(xs, ys, w, color=COLORS[impl], label=label)
        for bar, y in zip(bars, ys):
            ax.annotate("%.0f" % y, (bar.get_x() + bar.get_width() / 2, y), textcoords="offset points",
                        xytext=(0, 3), ha="center", fontsize=8)
    ax.set_xticks(range(len(threads)))
    ax.set_xticklabels(["%d thread%s" % (t, "s" if t > 1 else "") for t in threads])
    ax.set_ylim(0, max(max(v.values()) for v in pts.values()) * 1.15)
    ax.set_ylabel("training images / s (higher is better)")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=9)
    title(ax, "conv β-VAE training step, batch 64")
    save(fig, "train_threads.png")


def slope(ns, ts):
    pts = [(n, t) for n, t in zip(ns, ts) if n >= 10000 and t > 0]
    if len(pts) < 2:
        pts = [(n, t) for n, t in zip(ns, ts) if t > 0]
    if len(pts) < 2:
        return None
    x = [math.log(n) for n, _ in pts]
    y = [math.log(t) for _, t in pts]
    mx, my = sum(x) / len(x), sum(y) / len(y)
    sxx = sum((a - mx) ** 2 for a in x)
    return sum((a - mx) * (b - my) for a, b in zip(x, y)) / sxx if sxx > 0 else None


def metrics_scaling(mrows, capped):
    by = {}
    for r in mrows:
        by.setdefault(r["metric"], []).append((int(r["n"]), float(r["seconds"])))
    if not by:
        return
    cap = {r["metric"]: r for r in capped}
    fig, ax = plt.subplots(figsize=(9.6, 5.4))
    markers = "os^vD<>ph*"
    for i, (m, pts) in enumerate(by.items()):
        pts.sort()
        ns, ts = [p[0] for p in pts], [p[1] for p in pts]
        s = slope(ns, ts)
        label = m + (", slope %.2f" % s if s is not None else "")
        if m in cap:
            label += "\n  stops at N=%s (N=%s: ~%.0f s)" % (
                "{:,}".format(ns[-1]), "{:,}".format(int(cap[m]["next_n"])), float(cap[m]["predicted_seconds"]))
        ax.plot(ns, ts, marker=markers[i % len(markers)], linestyle="-", label=label, markersize=4)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("N (rows of codes and factors; D = 10 codes, K = 5 factors)")
    ax.set_ylabel("seconds, best of up to 3 (lower is better)")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    title(ax, "knobs metrics (array form), %s threads; slope of log t on log N over N ≥ 10,000" % THREADS)
    save(fig, "metrics_scaling.png")


train = rows("train.csv")
train_batch(train)
train_threads(train)
metrics_scaling(rows("metrics_scaling.csv"), rows("metrics_capped.csv"))
