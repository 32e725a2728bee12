#!/usr/bin/python3
"""make_metrics_ref.py: expected values for tests/test_metrics.c, computed with NumPy and
scikit-learn following the reference definitions of google-research/disentanglement_lib
(evaluation/metrics/*.py) and, for mig_sampled, of rtqichen/beta-tcvae. The definitions are
re-implemented here from the reference's formulas; nothing is imported from either project.

Run with Debian's Python (numpy 1.24, scikit-learn 1.2.1, scipy):
    /usr/bin/python3 tests/ref/make_metrics_ref.py
It writes tests/ref/metrics_ref.npz (the fixed arrays) and tests/ref/metrics_ref.json (the
expected values), both with a version field. The C suite reads them and needs no Python.

Classifier-based metrics are recorded for several random_state values: scikit-learn breaks ties
between equally good tree splits, and orders the SVM's coordinate descent, at random, and the
reference leaves random_state unset, so the reference itself is a distribution; the C test
accepts values inside (a widened) observed range. Logistic regression is recorded both with
scikit-learn's defaults (lbfgs stopped at 100 iterations) and solved to convergence
(newton-cg: scikit-learn 1.2's lbfgs stops on scipy's default ftol even with a tiny tol).
"""
import json
import os
import sys

import numpy as np
import scipy
import scipy.linalg
import sklearn
from scipy.special import logsumexp
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import mutual_info_score, roc_auc_score
from sklearn.preprocessing import MultiLabelBinarizer
from sklearn.svm import LinearSVC

VERSION = 1
HERE = os.path.dirname(os.path.abspath(__file__))
SEEDS = range(5)  # random_state values for the classifiers with random tie-breaking


# ---- the reference definitions (disentanglement_lib), codes as (D, N), factors as (K, N) ----
def histogram_discretize(target, num_bins=20):
    out = np.zeros_like(target)
    for i in range(target.shape[0]):
        out[i, :] = np.digitize(target[i, :], np.histogram(target[i, :], num_bins)[1][:-1])
    return out


def discrete_mutual_info(mus, ys):
    m = np.zeros([mus.shape[0], ys.shape[0]])
    for i in range(mus.shape[0]):
        for j in range(ys.shape[0]):
            m[i, j] = mutual_info_score(ys[j, :], mus[i, :])
    return m


def discrete_entropy(ys):
    return np.array([mutual_info_score(ys[j, :], ys[j, :]) for j in range(ys.shape[0])])


def mig(mus, ys):
    m = discrete_mutual_info(histogram_discretize(mus), ys)
    h = discrete_entropy(ys)
    s = np.sort(m, axis=0)[::-1]
    per = (s[0, :] - s[1, :]) / h
    return float(np.mean(per)), per.tolist(), m


def modularity(mus, ys):
    mi = discrete_mutual_info(histogram_discretize(mus), ys)
    sq = np.square(mi)
    mx = np.max(sq, axis=1)
    delta = (np.sum(sq, axis=1) - mx) / (mx * (sq.shape[1] - 1.0))
    score = 1.0 - delta
    score[mx == 0.0] = 0.0
    return float(np.mean(score))


def unsupervised(mus):
    cov = np.cov(mus)
    tc = 0.5 * (np.sum(np.log(np.diag(cov))) - np.linalg.slogdet(cov)[1])
    sq = scipy.linalg.sqrtm(cov * np.expand_dims(np.diag(cov), axis=1))
    w = 2 * np.trace(cov) - 2 * np.trace(sq)
    d = histogram_discretize(mus)
    mi = discrete_mutual_info(d, d)
    np.fill_diagonal(mi, 0)
    D = mus.shape[0]
    return {"gaussian_total_correlation": float(tc), "gaussian_wasserstein_correlation": float(np.real(w)),
            "gaussian_wasserstein_correlation_norm": float(np.real(w) / np.sum(np.diag(cov))),
            "mutual_info_score": float(np.sum(mi) / (D ** 2 - D))}


def irs(mus, ys, q=0.99):
    ys_d = histogram_discretize(ys)
    active = mus[mus.var(axis=1) > 0.0, :]
    if not active.any():
        return 0.0
    g, lat = ys_d.T, active.T
    maxdev = np.max(np.abs(lat - lat.mean(axis=0)), axis=0)
    cum = np.zeros([lat.shape[1], g.shape[1]])
    for i in range(g.shape[1]):
        vals = np.unique(g[:, i], axis=0)
        for v in vals:
            match = g[:, i] == v
            e = np.mean(lat[match, :], axis=0)
            cum[:, i] += np.quantile(np.abs(lat[match, :] - e), q=q, axis=0)
        cum[:, i] /= vals.shape[0]
    m = 1.0 - cum / maxdev[:, np.newaxis]
    best = m.max(axis=1)
    return float(np.average(best, weights=maxdev) if np.sum(maxdev) > 0 else np.mean(best))


def dci_from_importance(R):
    def ent(p, base):  # scipy.stats.entropy along axis 0
        return scipy.stats.entropy(p, base=base)
    per_code = 1.0 - ent(R.T + 1e-11, R.shape[1])
    Rw = R if R.sum() != 0 else np.ones_like(R)
    dis = float(np.sum(per_code * Rw.sum(axis=1) / Rw.sum()))
    per_fac = 1.0 - ent(R + 1e-11, R.shape[0])
    com = float(np.sum(per_fac * Rw.sum(axis=0) / Rw.sum()))
    return dis, com


def dci(mtr, ytr, mte, yte, seed):
    R = np.zeros([mtr.shape[0], ytr.shape[0]])
    atr, ate = [], []
    for i in range(ytr.shape[0]):
        model = GradientBoostingClassifier(random_state=seed).fit(mtr.T, ytr[i, :])
        R[:, i] = np.abs(model.feature_importances_)
        atr.append(np.mean(model.predict(mtr.T) == ytr[i, :]))
        ate.append(np.mean(model.predict(mte.T) == yte[i, :]))
    dis, com = dci_from_importance(R)
    return {"disentanglement": dis, "completeness": com, "informativeness_train": float(np.mean(atr)),
            "informativeness_test": float(np.mean(ate))}, R


def sap(mtr, ytr, mte, yte, seed):
    S = np.zeros([mtr.shape[0], ytr.shape[0]])
    for i in range(mtr.shape[0]):
        for j in range(ytr.shape[0]):
            clf = LinearSVC(C=0.01, class_weight="balanced", random_state=seed)
            clf.fit(mtr[i, :][:, np.newaxis], ytr[j, :])
            S[i, j] = np.mean(clf.predict(mte[i, :][:, np.newaxis]) == yte[j, :])
    s = np.sort(S, axis=0)
    return float(np.mean(s[-1, :] - s[-2, :])), S


def converged_logreg():
    # the same objective solved to convergence: lbfgs in scikit-learn 1.2 stops on scipy's
    # default ftol (2.2e-9 relative decrease) however small its gtol, newton-cg does not
    return LogisticRegression(solver="newton-cg", tol=1e-10, max_iter=10000)


def explicitness(mtr, ytr, mte, yte, converged, float32_norm):
    mean = np.mean(mtr, axis=1)
    sd = np.std(mtr, axis=1)
    if not float32_norm:
        mean, sd = np.mean(mtr.astype(np.float64), axis=1), np.std(mtr.astype(np.float64), axis=1)
    xtr = ((mtr - mean[:, None]) / sd[:, None]).T.astype(np.float64)
    xte = ((mte - mean[:, None]) / sd[:, None]).T.astype(np.float64)
    rtr, rte = [], []
    for i in range(ytr.shape[0]):
        clf = converged_logreg() if converged else LogisticRegression()
        clf.fit(xtr, ytr[i, :])
        mlb = MultiLabelBinarizer()
        rtr.append(roc_auc_score(mlb.fit_transform(np.expand_dims(ytr[i, :], 1)), clf.predict_proba(xtr)))
        rte.append(roc_auc_score(mlb.fit_transform(np.expand_dims(yte[i, :], 1)), clf.predict_proba(xte)))
    return float(np.mean(rtr)), float(np.mean(rte))


# ---- Chen et al.'s sampled MIG, with the samples given (all rows used: S >= N) ----
def mig_sampled(mu, lv, z, y):
    N, D = mu.shape

    def entropies(rows):
        m = len(rows)
        x = z[rows][:, None, :]                       # (S, 1, D)
        c = -0.5 * (np.log(2 * np.pi) + lv[rows][None, :, :])
        logq = c - 0.5 * (x - mu[rows][None, :, :]) ** 2 / np.exp(lv[rows][None, :, :])
        return -np.mean(logsumexp(logq, axis=1) - np.log(m), axis=0)

    hm = entropies(np.arange(N))
    gaps, hcs = [], []
    for k in range(y.shape[1]):
        vals = np.unique(y[:, k])
        hc = np.zeros(D)
        for v in vals:
            rows = np.where(y[:, k] == v)[0]
            hc += len(rows) / N * entropies(rows)
        mi = np.sort(hm - hc)[::-1].clip(min=0)
        gaps.append(float((mi[0] - mi[1]) / np.log(len(vals))))
        hcs.append(hc.tolist())
    return float(np.mean(gaps)), gaps, hm.tolist(), hcs


def main():
    rs = np.random.RandomState(20240611)
    N, NTR, sizes = 1000, 900, [3, 5, 8]
    f = np.stack([rs.randint(s, size=N) for s in sizes], 1).astype(np.int64)
    F = (f - f.mean(0)) / f.std(0)
    q, _ = np.linalg.qr(rs.randn(3, 3))
    cases = {
        "perfect": np.concatenate([f + 0.05 * rs.randn(N, 3), rs.randn(N, 1)], 1).astype(np.float32),
        "rotated": np.concatenate([F @ q.T + 0.05 * rs.randn(N, 3), rs.randn(N, 1)], 1).astype(np.float64),
        "noise": rs.randn(N, 4).astype(np.float32),
        "mix": np.stack([np.tanh(f[:, 0] - 1.0) + 0.1 * rs.randn(N), 0.5 * f[:, 1] + 0.3 * f[:, 2] + 0.2 * rs.randn(N),
                         np.sin(f[:, 2]) + 0.1 * rs.randn(N), 1e-3 * rs.randn(N), rs.randn(N)], 1).astype(np.float32),
    }
    arrays = {"version": np.array([VERSION], np.int64), "factors": f}
    out = {"version": VERSION, "generator": "tests/ref/make_metrics_ref.py", "numpy": np.__version__,
           "scikit_learn": sklearn.__version__, "scipy": scipy.__version__, "n_train": NTR, "seeds": len(SEEDS),
           "cases": {}}
    ys, ytr, yte = f.T, f[:NTR].T, f[NTR:].T
    for name, z in cases.items():
        print(name, file=sys.stderr)
        arrays["codes_" + name] = z
        mus, mtr, mte = z.T, z[:NTR].T, z[NTR:].T
        e = {}
        e["mig"], e["mig_per_factor"], mim = mig(mus, ys)
        e["mig_mutual_info"] = mim.tolist()
        e["modularity"] = modularity(mus, ys)
        e["unsupervised"] = unsupervised(mus)
        e["irs_float32_reference"] = irs(mus, ys)
        e["irs"] = irs(mus.astype(np.float64), ys)
        runs = [dci(mtr, ytr, mte, yte, s)[0] for s in SEEDS]
        e["dci"] = {k: {"seed0": runs[0][k], "min": min(r[k] for r in runs), "max": max(r[k] for r in runs)}
                    for k in runs[0]}
        runs = [sap(mtr, ytr, mte, yte, s)[0] for s in SEEDS]
        e["sap"] = {"seed0": runs[0], "min": min(runs), "max": max(runs)}
        dtr, dte = explicitness(mtr, ytr, mte, yte, False, True)
        ctr, cte = explicitness(mtr, ytr, mte, yte, True, False)
        e["explicitness"] = {"default_train": dtr, "default_test": dte, "converged_train": ctr, "converged_test": cte}
        out["cases"][name] = e

    # the numerical pieces, checked directly
    x32 = np.concatenate([rs.randn(200), [0.0, 1.0, -1.0, 0.5, 0.25]]).astype(np.float32)
    x64 = np.concatenate([rs.rand(200) * 7 - 3, np.linspace(-3, 4, 21)]).astype(np.float64)
    arrays["hist_x32"], arrays["hist_x64"] = x32, x64
    arrays["hist_b32"] = histogram_discretize(x32[None, :])[0].astype(np.int64)
    arrays["hist_b64"] = histogram_discretize(x64[None, :])[0].astype(np.int64)
    arrays["hist_const"] = histogram_discretize(np.full((1, 7), 2.5, np.float32))[0].astype(np.int64)
    a, b = rs.randint(7, size=500), rs.randint(10, size=500)
    b[:100] = a[:100]  # some dependence
    arrays["mi_a"], arrays["mi_b"] = a.astype(np.int64), b.astype(np.int64)
    out["mi"] = float(mutual_info_score(a, b))
    out["entropy_a"] = float(mutual_info_score(a, a))

    # logistic regression solved to convergence: the mix codes (standardised) -> factor 2 (8
    # classes, multinomial) and -> factor 0 == 0 (binary)
    zm = cases["mix"].astype(np.float64)
    xs = (zm - zm[:NTR].mean(0)) / zm[:NTR].std(0)
    arrays["lr_x"] = xs
    for tag, y in (("multi", f[:, 2]), ("binary", (f[:, 0] == 0).astype(np.int64))):
        clf = converged_logreg().fit(xs[:NTR], y[:NTR])
        arrays["lr_y_" + tag] = y
        arrays["lr_proba_" + tag] = clf.predict_proba(xs[NTR:])
        d = LogisticRegression().fit(xs[:NTR], y[:NTR])
        out["lr_default_test_accuracy_" + tag] = float(np.mean(d.predict(xs[NTR:]) == y[NTR:]))
        out["lr_converged_test_accuracy_" + tag] = float(np.mean(clf.predict(xs[NTR:]) == y[NTR:]))

    # the linear SVM solved to convergence on one code (mix code 1) -> factor 1 (5 classes, one
    # vs rest) and -> factor 0 == 2 (binary), balanced class weights, C = 0.01
    x1 = zm[:NTR, 1:2]
    for tag, y in (("multi", f[:NTR, 1]), ("binary", (f[:NTR, 0] == 2).astype(np.int64))):
        clf = LinearSVC(C=0.01, class_weight="balanced", tol=1e-12, max_iter=10000000, random_state=0).fit(x1, y)
        arrays["svm_y_" + tag] = y
        arrays["svm_w_" + tag] = np.concatenate([clf.coef_, clf.intercept_[:, None]], 1)

    # Chen's MIG with the samples fixed
    mu = zm[:, :4]
    lv = np.log(0.02 + 0.2 * rs.rand(N, 4))
    zs = mu + np.exp(0.5 * lv) * rs.randn(N, 4)
    arrays["ms_mu"], arrays["ms_lv"], arrays["ms_z"] = mu, lv, zs
    m, gaps, hm, hc = mig_sampled(mu, lv, zs, f)
    out["mig_sampled"] = {"score": m, "per_factor": gaps, "marginal": hm, "conditional": hc}

    np.savez_compressed(os.path.join(HERE, "metrics_ref.npz"), **arrays)
    with open(os.path.join(HERE, "metrics_ref.json"), "w") as fh:
        json.dump(out, fh, indent=1, sort_keys=True)
        fh.write("\n")


if __name__ == "__main__":
    main()
