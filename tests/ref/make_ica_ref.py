#!/usr/bin/python3
"""make_ica_ref.py: expected values for src/metrics/ica.c and src/metrics/mcc.c, checked by
tests/test_ica.c.

Run with Debian's Python (numpy 1.24, scikit-learn 1.2.1, scipy 1.10):
    /usr/bin/python3 tests/ref/make_ica_ref.py
It writes tests/ref/ica_ref.json (version field first; every float64 written with repr, so the C
side reads the same bits):
  ica:        fixed data X (n,d) (non-Gaussian sources mixed linearly, a little Gaussian noise) and
              a w_init (k,k); sklearn.decomposition.FastICA(n_components=k,
              whiten='unit-variance', algorithm='parallel', fun='logcosh', max_iter, tol=1e-4,
              w_init=w_init) fitted to it: sources (fit_transform), components_ (knobs' unmixing),
              mixing_, mean_, n_iter_, whether it warned that it did not converge, and the excess
              kurtosis of each source (scipy.stats.kurtosis, fisher=True, bias=True). Cases: a
              tall matrix (n >> d, k < d), a square one (k = d), a wide one (n < d) and one
              stopped after 3 iterations (non-convergence);
  assignment: scipy.optimize.linear_sum_assignment on fixed random matrices (square, wide, tall),
              minimised and maximised: the column of every row (-1 for rows left over) and the
              total;
  mcc:        codes (n,D) and continuous factors (n,K) (with ties in one factor, for the ranks);
              the correlations (np.corrcoef; scipy.stats.spearmanr), the matching
              (linear_sum_assignment on -|corr|) and the mean of the matched |corr|;
  amari:      the Amari index of W A for a fixed random W (k,d) and A (d,k), by the formula of
              docs/metrics.md in NumPy.
"""
import json
import os
import warnings

import numpy as np
import scipy
import scipy.stats
import sklearn
from scipy.optimize import linear_sum_assignment
from sklearn.decomposition import FastICA
from sklearn.exceptions import ConvergenceWarning

VERSION = 1
HERE = os.path.dirname(os.path.abspath(__file__))


def sources(rng, n):
    """Three standardised non-Gaussian sources: uniform, Laplace, a skewed exponential."""
    s = np.stack([rng.uniform(-np.sqrt(3), np.sqrt(3), n),
                  rng.laplace(0, 1 / np.sqrt(2), n),
                  rng.exponential(1.0, n) - 1.0], 1)
    return s


def ica_case(rng, n, d, k, max_iter=200):
    s = sources(rng, n)[:, :k] if k <= 3 else np.concatenate([sources(rng, n), rng.uniform(-1, 1, (n, k - 3))], 1)
    A = rng.normal(size=(d, k))
    X = s @ A.T + 0.05 * rng.normal(size=(n, d)) + rng.normal(size=d) * 3  # an offset to centre away
    w_init = rng.normal(size=(k, k))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ica = FastICA(n_components=k, whiten="unit-variance", algorithm="parallel", fun="logcosh",
                      max_iter=max_iter, tol=1e-4, w_init=w_init, whiten_solver="svd")
        S = ica.fit_transform(X)
    warned = any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return {
        "n": n, "d": d, "k": k, "max_iter": max_iter, "tol": 1e-4,
        "X": X.ravel().tolist(), "w_init": w_init.ravel().tolist(),
        "sources": S.ravel().tolist(), "unmixing": ica.components_.ravel().tolist(),
        "mixing": ica.mixing_.ravel().tolist(), "mean": ica.mean_.tolist(),
        "n_iter": int(ica.n_iter_), "converged": not warned,
        "kurtosis": scipy.stats.kurtosis(S, axis=0, fisher=True, bias=True).tolist(),
    }


def assignment_cases(rng):
    out = []
    for r, c in ((6, 6), (4, 7), (7, 4), (1, 5)):
        cost = rng.uniform(-2, 5, size=(r, c))
        for maximize in (False, True):
            rows, cols = linear_sum_assignment(cost, maximize=maximize)
            col_of_row = [-1] * r
            for i, j in zip(rows, cols):
                col_of_row[int(i)] = int(j)
            out.append({"rows": r, "cols": c, "maximize": maximize, "cost": cost.ravel().tolist(),
                        "col_of_row": col_of_row, "total": float(cost[rows, cols].sum())})
    return out


def mcc_case(rng):
    n, D, K = 200, 4, 3
    f = np.stack([rng.uniform(-1, 1, n), rng.laplace(0, 1, n), np.round(rng.normal(size=n) * 2) / 2], 1)  # ties
    mix = np.array([[0.1, 0.9, 0.0], [0.0, 0.2, -0.8], [0.7, 0.0, 0.3], [0.05, 0.05, 0.05]])
    z = f @ mix.T + 0.3 * rng.normal(size=(n, D))
    out = {"n": n, "D": D, "K": K, "codes": z.ravel().tolist(), "factors": f.ravel().tolist()}
    for name in ("pearson", "spearman"):
        if name == "pearson":
            c = np.corrcoef(z.T, f.T)[:D, D:]
        else:
            c = scipy.stats.spearmanr(z, f).correlation[:D, D:]
        rows, cols = linear_sum_assignment(-np.abs(c).T)  # factors as rows
        match = [-1] * K
        for i, j in zip(rows, cols):
            match[int(i)] = int(j)
        out[name] = {"corr": c.ravel().tolist(), "match": match, "mcc": float(np.abs(c.T[rows, cols]).sum() / K)}
    return out


def amari(P):
    P = np.abs(P)
    k = P.shape[0]
    r = (P.sum(1) / P.max(1) - 1).sum()
    c = (P.sum(0) / P.max(0) - 1).sum()
    return (r + c) / (2 * k * (k - 1))


def main():
    out = {"version": VERSION, "generator": "tests/ref/make_ica_ref.py", "numpy": np.__version__,
           "scikit_learn": sklearn.__version__, "scipy": scipy.__version__}
    # one generator per case (seeds chosen so that the first three converge: with 16 rows, some
    # draws never do within 200 iterations, and an unconverged fit is compared in "stopped")
    out["ica"] = {
        "tall": ica_case(np.random.default_rng(10), 200, 5, 3),
        "square": ica_case(np.random.default_rng(11), 250, 3, 3),
        "wide": ica_case(np.random.default_rng(1), 16, 20, 3),
        "stopped": ica_case(np.random.default_rng(13), 200, 4, 3, max_iter=3),
    }
    assert all(out["ica"][c]["converged"] for c in ("tall", "square", "wide"))
    assert not out["ica"]["stopped"]["converged"]
    rng = np.random.default_rng(20240613)
    out["assignment"] = assignment_cases(rng)
    out["mcc"] = mcc_case(rng)
    W, A = rng.normal(size=(3, 5)), rng.normal(size=(5, 3))
    out["amari"] = {"k": 3, "d": 5, "W": W.ravel().tolist(), "A": A.ravel().tolist(), "index": float(amari(W @ A))}
    with open(os.path.join(HERE, "ica_ref.json"), "w") as fh:
        json.dump(out, fh, indent=None, separators=(",", ":"))
        fh.write("\n")


if __name__ == "__main__":
    main()
