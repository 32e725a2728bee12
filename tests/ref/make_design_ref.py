#!/usr/bin/python3
"""make_design_ref.py: expected values for the plausibility penalties of src/apps/density.c,
checked by tests/test_design_parts.c.

Run with Debian's Python (numpy 1.24, scikit-learn 1.2.1):
    /usr/bin/python3 tests/ref/make_design_ref.py
It writes tests/ref/design_ref.json (version field first): the fixed float32 inputs (written as
the exact decimal of each float32, so the C side reads the same bits) and
  gmm: sklearn.mixture.GaussianMixture(covariance_type='diag') fitted to three well-separated
       clusters: means, variances, weights (components in sklearn's order; the C test matches
       them by mean), score_samples on test points and score (the mean log-likelihood);
  box: numpy.quantile (method 'linear', numpy's default) of each latent at q and 1 - q.

The GMM is fitted with the settings knobs uses by default where the two meet (reg_covar =
gmm_reg = 1e-4) and a tolerance far below knobs' default (tol 1e-12), so that sklearn's EM
stops at its fixed point; the clusters are 20 standard deviations apart, so that every
initialisation of either program that puts one seed in each cluster ends at the same point.
"""
import json
import os

import numpy as np
import sklearn
from sklearn.mixture import GaussianMixture

VERSION = 1
HERE = os.path.dirname(os.path.abspath(__file__))


def f32list(a):
    """float32 values as Python floats (exact: float64 holds every float32)."""
    return np.asarray(a, dtype=np.float32).astype(np.float64).tolist()


def gmm_case():
    rng = np.random.default_rng(20240612)
    centers = np.array([[-10.0, 0.0, 3.0], [10.0, 8.0, -2.0], [0.0, -14.0, 9.0]])
    scales = np.array([[0.5, 1.0, 0.8], [1.2, 0.6, 0.9], [0.7, 0.7, 1.5]])
    sizes = [70, 110, 90]  # unequal, so the weights differ
    X = np.concatenate([c + s * rng.standard_normal((m, 3)) for c, s, m in zip(centers, scales, sizes)])
    X = X[rng.permutation(len(X))].astype(np.float32)
    gm = GaussianMixture(n_components=3, covariance_type="diag", reg_covar=1e-4, tol=1e-12,
                         max_iter=10000, n_init=1, random_state=0)
    Xd = X.astype(np.float64)
    gm.fit(Xd)
    assert gm.converged_
    # test points: at the centres, between them (where every component counts) and far out
    T = np.array([[-10.0, 0.0, 3.0], [10.5, 7.5, -2.5], [0.0, -14.0, 9.0], [0.0, 4.0, 0.5],
                  [-5.0, -7.0, 6.0], [3.0, -3.0, 3.0], [-25.0, 30.0, 0.0], [1.0, 1.0, 1.0]],
                 dtype=np.float32)
    return {
        "n": len(X), "Z": 3, "K": 3, "reg": 1e-4,
        "X": f32list(X),
        "means": gm.means_.tolist(),
        "variances": gm.covariances_.tolist(),
        "weights": gm.weights_.tolist(),
        "n_iter": int(gm.n_iter_),
        "test_points": f32list(T),
        "score_samples": gm.score_samples(T.astype(np.float64)).tolist(),
        "score": float(gm.score(Xd)),
    }


def box_case():
    rng = np.random.default_rng(7)
    n, Z = 37, 3  # odd n: virtual indices (n-1)q fall between samples
    X = np.stack([rng.standard_normal(n), rng.uniform(-2, 5, n), rng.exponential(1.5, n)], axis=1)
    X = X.astype(np.float32)
    qs = [0.01, 0.1, 0.25, 0.5, 0.0]
    Xd = X.astype(np.float64)
    return {
        "n": n, "Z": Z, "X": f32list(X), "q": qs,
        "lo": [np.quantile(Xd, q, axis=0).tolist() for q in qs],
        "hi": [np.quantile(Xd, 1 - q, axis=0).tolist() for q in qs],
    }


def main():
    out = {"version": VERSION, "numpy": np.__version__, "sklearn": sklearn.__version__,
           "gmm": gmm_case(), "box": box_case()}
    path = os.path.join(HERE, "design_ref.json")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(out, f, indent=None, separators=(",", ":"))
        f.write("\n")
    os.replace(tmp, path)
    print("wrote", path)


if __name__ == "__main__":
    main()
