#!/usr/bin/python3
"""make_udr_ref.py: expected values for src/metrics/udr.c (knobs_udr), checked by tests/test_udr.c.

Run with Debian's Python (numpy 1.24, scikit-learn 1.2.1, scipy 1.10):
    /usr/bin/python3 tests/ref/make_udr_ref.py
It writes tests/ref/udr_ref.json (version field first; every number written with repr, so the C
side reads the same bits; NaN, which JSON lacks, as null).

The score is disentanglement_lib's, copied from
google-research/disentanglement_lib, disentanglement_lib/evaluation/udr/metrics/udr.py
(relative_strength_disentanglement, spearman_correlation_conv, lasso_correlation_matrix and the
body of compute_udr_sklearn after the representations are drawn), with the KL vector of
disentanglement_lib/evaluation/udr/evaluate.py (compute_gaussian_kl: the mean over the inputs of
0.5 (mu^2 + exp(logvar) - logvar - 1)). Only the drawing of observations through a
GroundTruthData and a TF-Hub module is left out: the representations and KL vectors are given.

Inputs: R = 4 runs of N = 500 posterior means, D = 6 latents each, float32 values (stored as
the float64 of each float32, what udr.py's float64 arrays hold after a TF encoder's output):
  run 0  four independent non-Gaussian sources s (uniform, Laplace, exponential, a two-level
         mixture), then two near-zero-KL latents (small noise);
  run 1  a permuted, sign-flipped, scaled copy of s plus noise, the inactive latents elsewhere;
  run 2  s rotated by a random orthogonal matrix (entangled), plus noise;
  run 3  another permuted scaled copy with more noise, one latent with KL 0.03 (kept by the
         default threshold 0.01, dropped by 0.05) and one below 0.01.
The KL vectors come from log-variances (not stored) through compute_gaussian_kl, so they are
what knobs_udr_models would compute. Cases (each: pairwise (R,R), model scores (R), raw
correlations (R,R,D,D)):
  lasso, spearman                       udr.py's defaults (filter_low_kl, threshold 0.01)
  lasso_nofilter, spearman_nofilter     filter_low_kl=False (spearman: NaN columns of the zeroed
                                        latents reach the score, as in udr.py)
  lasso_t05                             kl_filter_threshold=0.05 (the zeroing stays at 0.01)
"""
import json
import os
import warnings

import numpy as np
import scipy
import scipy.stats
import sklearn
from sklearn import linear_model
from sklearn import preprocessing

VERSION = 1
HERE = os.path.dirname(os.path.abspath(__file__))


# ---- udr.py, as it is ---------------------------------------------------------------------------
def relative_strength_disentanglement(corr_matrix):
    """Computes disentanglement using relative strength score."""
    score_x = np.nanmean(
        np.nan_to_num(
            np.power(np.ndarray.max(corr_matrix, axis=0), 2) /
            np.sum(corr_matrix, axis=0), 0))
    score_y = np.nanmean(
        np.nan_to_num(
            np.power(np.ndarray.max(corr_matrix, axis=1), 2) /
            np.sum(corr_matrix, axis=1), 0))
    return (score_x + score_y) / 2


def spearman_correlation_conv(vec1, vec2):
    assert vec1.shape == vec2.shape
    corr_y = []
    for i in range(vec1.shape[1]):
        corr_x = []
        for j in range(vec2.shape[1]):
            corr, _ = scipy.stats.spearmanr(vec1[:, i], vec2[:, j], nan_policy="omit")
            corr_x.append(corr)
        corr_y.append(np.stack(corr_x))
    return np.transpose(np.absolute(np.stack(corr_y, axis=1)))


def lasso_correlation_matrix(vec1, vec2, random_state=None):
    assert vec1.shape == vec2.shape
    model = linear_model.Lasso(random_state=random_state, alpha=0.1)
    model.fit(vec1, vec2)
    return np.transpose(np.absolute(model.coef_))


def udr_scores(inferred_model_reps, kl, random_state, correlation_matrix="lasso", filter_low_kl=True,
               kl_filter_threshold=0.01):
    """compute_udr_sklearn from the point where the representations and KL vectors are drawn."""
    inferred_model_reps = [r.copy() for r in inferred_model_reps]
    num_models = len(inferred_model_reps)
    latent_dim = inferred_model_reps[0].shape[1]
    corr_matrix_all = np.zeros((num_models, num_models, latent_dim, latent_dim))
    kl_mask = []
    for i in range(len(inferred_model_reps)):
        scaler = preprocessing.StandardScaler()
        scaler.fit(inferred_model_reps[i])
        inferred_model_reps[i] = scaler.transform(inferred_model_reps[i])
        inferred_model_reps[i] = inferred_model_reps[i] * np.greater(kl[i], 0.01)
        kl_mask.append(kl[i] > kl_filter_threshold)

    disentanglement = np.zeros((num_models, num_models, 1))
    for i in range(num_models):
        for j in range(num_models):
            if i == j:
                continue
            if correlation_matrix == "lasso":
                corr_matrix = lasso_correlation_matrix(inferred_model_reps[i], inferred_model_reps[j],
                                                       random_state)
            else:
                corr_matrix = spearman_correlation_conv(inferred_model_reps[i], inferred_model_reps[j])
            corr_matrix_all[i, j, :, :] = corr_matrix
            if filter_low_kl:
                corr_matrix = corr_matrix[kl_mask[i], ...][..., kl_mask[j]]
            disentanglement[i, j] = relative_strength_disentanglement(corr_matrix)

    model_scores = []
    for i in range(num_models):
        model_scores.append(np.median(np.delete(disentanglement[:, i], i)))
    return corr_matrix_all, disentanglement[:, :, 0], np.array(model_scores)


def compute_gaussian_kl(z_mean, z_logvar):  # evaluate.py
    return np.mean(0.5 * (np.square(z_mean) + np.exp(z_logvar) - z_logvar - 1), axis=0)


# ---- the inputs -------------------------------------------------------------------------------------
def make_inputs(rng, n=500, d=6):
    s = np.stack([rng.uniform(-np.sqrt(3), np.sqrt(3), n),
                  rng.laplace(0, 1 / np.sqrt(2), n),
                  rng.exponential(1.0, n) - 1.0,
                  np.where(rng.uniform(size=n) < 0.3, -1.5, 0.6) + 0.3 * rng.normal(size=n)], 1)
    k = s.shape[1]
    reps, logvars = [], []

    def with_inactive(active, lv_active, slots, lv_inactive):
        z = np.zeros((n, d))
        lv = np.zeros((n, d))
        rest = [c for c in range(d) if c not in slots]
        z[:, rest] = active
        lv[:, rest] = lv_active
        for c, lvi in zip(slots, lv_inactive):
            z[:, c] = 0.02 * rng.normal(size=n)     # near the prior's mean
            lv[:, c] = lvi + 0.01 * rng.normal(size=n)  # near the prior's variance: KL ~ 0
        return z, lv

    # run 0: the disentangled code
    z, lv = with_inactive(s, -2.0 + 0.1 * rng.normal(size=(n, k)), [4, 5], [-0.05, -0.12])
    reps.append(z), logvars.append(lv)
    # run 1: permuted, sign-flipped, scaled + noise
    perm, sign, scale = np.array([2, 0, 3, 1]), np.array([-1, 1, 1, -1]), np.array([0.5, 2.0, 1.3, 0.8])
    a = s[:, perm] * sign * scale + 0.05 * rng.normal(size=(n, k))
    z, lv = with_inactive(a, -1.5 + 0.1 * rng.normal(size=(n, k)), [0, 3], [-0.08, -0.1])
    reps.append(z), logvars.append(lv)
    # run 2: a random rotation (entangled)
    Q, _ = np.linalg.qr(rng.normal(size=(k, k)))
    a = s @ Q.T + 0.05 * rng.normal(size=(n, k))
    z, lv = with_inactive(a, -1.0 + 0.1 * rng.normal(size=(n, k)), [1, 4], [-0.1, -0.06])
    reps.append(z), logvars.append(lv)
    # run 3: a noisier permuted copy, with a latent of KL ~ 0.03 (kept at 0.01, dropped at 0.05)
    perm, sign, scale = np.array([1, 3, 0, 2]), np.array([1, 1, -1, 1]), np.array([1.0, 0.7, 1.5, 0.9])
    a = s[:, perm] * sign * scale + 0.3 * rng.normal(size=(n, k))
    z, lv = with_inactive(a, -0.8 + 0.1 * rng.normal(size=(n, k)), [2, 5], [-0.37, -0.1])
    reps.append(z), logvars.append(lv)

    reps = [r.astype(np.float32).astype(np.float64) for r in reps]
    logvars = [v.astype(np.float32).astype(np.float64) for v in logvars]
    kls = [compute_gaussian_kl(r, v) for r, v in zip(reps, logvars)]
    return reps, logvars, kls


def flat(x):
    return [None if np.isnan(v) else float(v) for v in np.asarray(x, dtype=np.float64).ravel()]


def main():
    rng = np.random.default_rng(20261205)
    reps, logvars, kls = make_inputs(rng)
    R, (N, D) = len(reps), reps[0].shape
    kl_all = np.stack(kls)
    # the design: two latents of runs 0-2 at or below 0.01; run 3: one, and one between 0.01 and 0.05
    assert (np.sort(kl_all[:3], 1)[:, 1] <= 0.01).all() and (np.sort(kl_all, 1)[:, 2] > 0.01).all()
    assert 0.01 < kls[3][2] < 0.05 and (np.delete(kl_all, [2], 1)[3] > 0.05).sum() == 4
    out = {"version": VERSION, "generator": "tests/ref/make_udr_ref.py", "numpy": np.__version__,
           "scikit_learn": sklearn.__version__, "scipy": scipy.__version__,
           "R": R, "N": N, "D": D,
           "reps": flat(np.stack(reps)), "kl": flat(kl_all)}
    cases = {"lasso": ("lasso", True, 0.01), "spearman": ("spearman", True, 0.01),
             "lasso_nofilter": ("lasso", False, 0.01), "spearman_nofilter": ("spearman", False, 0.01),
             "lasso_t05": ("lasso", True, 0.05)}
    out["cases"] = {}
    for name, (corr, filt, thr) in cases.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # spearmanr on the zeroed latents: constant input
            raw, pair, scores = udr_scores(reps, kls, np.random.RandomState(0), corr, filt, thr)
        out["cases"][name] = {"variant": corr, "filter_low_kl": filt, "kl_filter_threshold": thr,
                              "pairwise": flat(pair), "scores": flat(scores), "raw": flat(raw)}
    with open(os.path.join(HERE, "udr_ref.json"), "w") as fh:
        json.dump(out, fh, indent=None, separators=(",", ":"), allow_nan=False)
        fh.write("\n")
    for name, c in out["cases"].items():
        print(name, np.round(c["scores"], 4), np.round(np.array(c["pairwise"]).reshape(R, R), 3).tolist())


if __name__ == "__main__":
    main()
