"""_udr.py: UDR, unsupervised model selection (knobs.h "UDR"; docs/metrics.md "UDR"), over
knobs_udr (arrays) and knobs_udr_models (trained models). The option struct is mirrored with
spare room after it and filled by knobs_udr_opts_default, whose defaults are checked on every
call, as _lib.py does for the metrics options."""
import ctypes

import numpy as np

from ._lib import KnobsError, check, lib, padded

c_int, c_double, c_uint64, c_void_p = ctypes.c_int, ctypes.c_double, ctypes.c_uint64, ctypes.c_void_p
_P = ctypes.POINTER

VARIANTS = {"lasso": 0, "spearman": 1}


class UdrOpts(ctypes.Structure):  # knobs_udr_opts, in declaration order
    _fields_ = [("variant", c_int), ("alpha", c_double), ("max_iter", c_int), ("tol", c_double),
                ("filter_low_kl", c_int), ("kl_filter_threshold", c_double),
                ("raw_correlations", c_int), ("threads", c_int), ("n", c_int), ("seed", c_uint64)]


class UdrResult(ctypes.Structure):  # knobs_udr_result
    _fields_ = [("R", c_int), ("N", c_int), ("D", c_int), ("variant", c_int),
                ("scores", _P(c_double)), ("pairwise", _P(c_double)), ("correlations", _P(c_double)),
                ("kl", _P(c_double)), ("active", _P(c_int)), ("n_active", _P(c_int))]


UDR_DEFAULTS = {"variant": 0, "alpha": 0.1, "max_iter": 1000, "tol": 1e-4, "filter_low_kl": 1,
                "kl_filter_threshold": 0.01, "raw_correlations": 1, "threads": 1, "n": 1000, "seed": 0}

for _name, _res, _args in (
        ("knobs_udr_opts_default", None, [c_void_p]),
        ("knobs_udr", c_int, [c_void_p, c_void_p, c_int, c_int, c_int, c_void_p, _P(_P(UdrResult))]),
        ("knobs_udr_models", c_int, [c_void_p, c_int, c_void_p, c_void_p, _P(_P(UdrResult))]),
        ("knobs_udr_result_free", None, [_P(UdrResult)])):
    _f = getattr(lib, _name)
    _f.restype, _f.argtypes = _res, _args


def _opts(variant, options):
    buf = padded(UdrOpts)
    lib.knobs_udr_opts_default(ctypes.byref(buf))
    o = buf.s
    for k, v in UDR_DEFAULTS.items():
        if abs(getattr(o, k) - v) > 1e-12 * max(1, abs(v)):
            raise KnobsError("this knobs package does not match libknobs: knobs_udr_opts field %s reads %r, "
                             "want the default %r" % (k, getattr(o, k), v), "KNOBS_ERR_UNSUPPORTED")
    if variant not in VARIANTS:
        raise KnobsError("udr: unknown variant %r (lasso, spearman)" % (variant,))
    o.variant = VARIANTS[variant]
    types = dict(UdrOpts._fields_)
    for k, v in options.items():
        if k not in types or k == "variant":
            raise KnobsError("unknown udr option '%s'" % k)
        setattr(o, k, float(v) if types[k] is c_double else int(v))
    return buf


def _take(r):
    """The result as a dict of NumPy arrays (copies); frees it."""
    try:
        s = r.contents
        R, D = s.R, s.D

        def arr(p, shape, dtype=np.float64):
            return np.ctypeslib.as_array(p, shape=shape).astype(dtype, copy=True)

        return {"variant": [k for k, v in VARIANTS.items() if v == s.variant][0],
                "n": s.N,
                "scores": arr(s.scores, (R,)),
                "pairwise": arr(s.pairwise, (R, R)),
                "correlations": arr(s.correlations, (R, R, D, D)) if s.correlations else None,
                "kl": arr(s.kl, (R, D)),
                "active": arr(s.active, (R, D), bool),
                "n_active": arr(s.n_active, (R,), np.int64)}
    finally:
        lib.knobs_udr_result_free(r)


def udr(reps, kl=None, variant="lasso", **options):
    """UDR of R runs' posterior means reps (R,N,D) (or a list of R (N,D) arrays; float32) and
    their KL vectors kl (R,D) (or None: nothing zeroed, every latent active), as knobs_udr
    computes it (disentanglement_lib's udr.py). Options are the fields of knobs_udr_opts: alpha
    (0.1), max_iter (1000), tol (1e-4), filter_low_kl (1), kl_filter_threshold (0.01),
    raw_correlations (1), threads (1). Returns a dict: scores (R,), pairwise (R,R),
    correlations (R,R,D,D) or None, kl (R,D), active (R,D) bools, n_active (R,), variant, n."""
    x = np.ascontiguousarray(np.stack(reps) if isinstance(reps, (list, tuple)) else reps, dtype=np.float32)
    if x.ndim != 3:
        raise KnobsError("udr: reps has %d dimensions, want 3 (runs, inputs, latents)" % x.ndim)
    R, N, D = x.shape
    k = None
    if kl is not None:
        k = np.ascontiguousarray(kl, dtype=np.float64)
        if k.shape != (R, D):
            raise KnobsError("udr: kl has shape %s, want (%d, %d)" % (k.shape, R, D))
    o = _opts(variant, options)
    r = _P(UdrResult)()
    check(lib.knobs_udr(x.ctypes.data, k.ctypes.data if k is not None else None, R, N, D, ctypes.byref(o),
                        ctypes.byref(r)))
    return _take(r)


def udr_models(models, data=None, variant="lasso", **options):
    """UDR of trained knobs.Model objects on `data` (a dataset name or file; None: the first
    model's own dataset), as knobs_udr_models computes it: n (1000) observations drawn with
    seed (0), each model's posterior means and KL. Options as udr(), plus n and seed. Returns
    udr()'s dict."""
    models = list(models)
    if not models:
        raise KnobsError("udr: no models")
    handles = (c_void_p * len(models))(*[m._handle() for m in models])
    d, owned = models[0]._dataset(data)
    try:
        o = _opts(variant, options)
        r = _P(UdrResult)()
        check(lib.knobs_udr_models(handles, len(models), d, ctypes.byref(o), ctypes.byref(r)))
        return _take(r)
    finally:
        if owned:
            lib.knobs_data_free(d)
