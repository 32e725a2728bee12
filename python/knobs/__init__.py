"""knobs: Python bindings of libknobs (disentangled representation learning), over ctypes.

    import knobs, numpy as np
    scores = knobs.metrics(codes, factors, metrics=["mig", "dci"], seed=0)   # as `knobs metrics --json`
    m = knobs.Model.load("runs/x")          # a run folder or a .safetensors checkpoint
    z = m.encode(x)                         # x (N,C,H,W) float32 in [0,1] -> posterior means (N,Z)
    y = m.decode(z)                         # (N,C,H,W)
    t = m.traverse(0, dim=2, values=np.linspace(-2, 2, 7))   # observation 0 of the model's data
    m2 = knobs.train({"model": "betavae", "arch": "mlp", "latents": 4, "steps": 100}, "runs/y")

Using the knobs (knobs.h "names, edits, design"; docs/apps.md):

    k = m.name(n=10000)                     # knobs_name: MI, factor, KL, calibration per latent
    k.rename(3, "size"); k.save("runs/x")   # knobs.json; knobs.Knobs.read("runs/x", m.code_dim)
    k[3], k.label(3), k.find("posX"), k.value(3, 0.5), k.code(3, 0.9)
    recon, edited, z = m.edit(x, k, [("posX", "factor", 0.9), (2, "add", 0.5)])
    v = knobs.attribute_vector(z, labels)   # mean code of label != 0 minus of label 0
    rows = m.edit_score(k, n_edits=200)     # fidelity, specificity per knob (oracle data)
    h = knobs.Head.fit(z, y, logistic=True) # property head; h(z), h.save(path), Head.load(path)
    r = m.design("area", goal="max", penalty="gmm", n=8)   # r["codes"], r["images"], r["designs"]

Unsupervised model selection (knobs.h "UDR"; docs/metrics.md):

    u = knobs.udr(reps, kl, variant="lasso")  # reps (R,N,D) of R runs, kl (R,D): u["scores"] (R,)
    u = knobs.udr_models([m1, m2, m3], n=1000, seed=0)   # the models encode one draw

Arrays are NumPy arrays in and out; errors raise knobs.KnobsError carrying knobs_last_error().
The library is found via $KNOBS_LIB, a build/ next to the package, or the system loader.
"""
import ctypes
import json

import numpy as np

from ._lib import (Array, DataOpts, Handle, KnobsError, METRICS_DEFAULTS, MetricsOpts, TrainOpts, check,
                   lib, padded, take_string)
from . import _apps
from ._apps import Head, Knobs, attribute_vector, edit_codes, name_codes
from ._udr import udr, udr_models

__all__ = ["metrics", "Model", "train", "version", "blas_info", "KnobsError", "Knobs", "Head",
           "name_codes", "edit_codes", "attribute_vector", "udr", "udr_models"]

_DTYPES = {np.dtype(np.float32): 0, np.dtype(np.float64): 1, np.dtype(np.int64): 2,
           np.dtype(np.int32): 3, np.dtype(np.int16): 4, np.dtype(np.int8): 5,
           np.dtype(np.uint8): 6, np.dtype(np.uint16): 7, np.dtype(np.uint32): 8,
           np.dtype(np.uint64): 9, np.dtype(np.bool_): 10}


def version():
    """The library's version string (knobs_version())."""
    return lib.knobs_version().decode()


def blas_info():
    """The BLAS knobs uses and its kernels (knobs_blas_info()). NumPy imported before knobs has
    loaded OpenBLAS already; on a CPU its release does not know, knobs re-selects its kernels
    (the same ones NumPy then uses)."""
    return lib.knobs_blas_info().decode()


def _as_array(a, name):
    """A knobs_array viewing NumPy array `a` (made C-contiguous and native-endian), and the
    NumPy array that must stay alive while the view is used."""
    a = np.asarray(a)
    if a.dtype.byteorder == ">" or (a.dtype.byteorder == "=" and not np.little_endian):
        a = a.astype(a.dtype.newbyteorder("<"))
    a = np.ascontiguousarray(a)
    if a.dtype not in _DTYPES:
        raise KnobsError("%s: dtype %s is not supported (use a numeric dtype)" % (name, a.dtype))
    if not 1 <= a.ndim <= 8:
        raise KnobsError("%s: %d dimensions, want 1 to 8" % (name, a.ndim))
    k = Array()
    k.dtype, k.ndim = _DTYPES[a.dtype], a.ndim
    for i, s in enumerate(a.shape):
        k.shape[i] = s
    k.data = a.ctypes.data
    return k, a


def _metrics_opts(options):
    """knobs_metrics_opts from the library's defaults and `options` (field names of the struct:
    seed, threads, train_frac, num_bins, sap_C (or sap_c), ...), and the strings to keep alive."""
    buf = padded(MetricsOpts)
    lib.knobs_metrics_opts_default(ctypes.byref(buf))
    o = buf.s
    for k, v in METRICS_DEFAULTS.items():
        if abs(getattr(o, k) - v) > 1e-12 * max(1, abs(v)):
            raise KnobsError("this knobs package does not match libknobs %s: knobs_metrics_opts "
                             "field %s reads %r, want the default %r" % (version(), k, getattr(o, k), v),
                             "KNOBS_ERR_UNSUPPORTED")
    names = {f[0].lower(): f[0] for f in MetricsOpts._fields_}
    keep = []
    for k, v in options.items():
        f = names.get(k.lower())
        if f is None or f in ("progress", "progress_ctx", "codes_name", "factors_name", "logvar_name", "on_metric",
                              "on_metric_ctx", "grid_codes"):
            raise KnobsError("unknown metrics option '%s'" % k)
        ctype = dict(MetricsOpts._fields_)[f]
        if ctype is ctypes.c_char_p:
            b = None if v is None else (",".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)).encode()
            keep.append(b)
            setattr(o, f, b)
        elif ctype is ctypes.c_double:
            setattr(o, f, float(v))
        else:
            if isinstance(v, float) and not v.is_integer():
                raise KnobsError("metrics option '%s' wants an integer, got %r" % (k, v))
            setattr(o, f, int(v))
    return buf, keep


def metrics(codes, factors, metrics=None, logvar=None, **options):
    """Disentanglement metrics of codes (N,D) and integer factors (N,K) or (N,), as
    knobs_metrics_arrays computes them: the dict of the result's JSON (the same as `knobs
    metrics --json`). `metrics` is "all" (default: every metric the arrays allow), a comma list
    or a list of names; logvar (N,D) enables mig_sampled. Options are the fields of
    knobs_metrics_opts (seed=0, threads=1, train_frac=0.9, num_bins=20, ...)."""
    if metrics is None:
        metrics = "all"
    elif not isinstance(metrics, str):
        metrics = ",".join(metrics)
    c, ca = _as_array(codes, "codes")
    f, fa = _as_array(factors, "factors")
    lv = None
    if logvar is not None:
        lv, lva = _as_array(logvar, "logvar")
    opts, keep = _metrics_opts(options)
    r = ctypes.c_void_p()
    check(lib.knobs_metrics_arrays(ctypes.byref(c), ctypes.byref(f),
                                   ctypes.byref(lv) if lv is not None else None,
                                   metrics.encode(), ctypes.byref(opts), ctypes.byref(r)))
    try:
        return json.loads(take_string(lib.knobs_result_json(r)))
    finally:
        lib.knobs_result_free(r)


def _open_data(cfg, spec=None):
    """The dataset a config names (with its stored options), as a knobs_data pointer."""
    o = padded(DataOpts)
    lib.knobs_config_data_opts(cfg, ctypes.byref(o))
    threads = lib.knobs_config_number(cfg, b"threads")
    if threads == threads and threads >= 1:
        o.s.threads = int(threads)
    d = ctypes.c_void_p()
    check(lib.knobs_data_open(spec.encode() if spec else lib.knobs_config_string(cfg, b"data"),
                              ctypes.byref(o), ctypes.byref(d)))
    return d


class Model(Handle):
    """A trained (or freshly created) model: encode, decode, traverse; name its knobs, edit,
    design (_apps.py). Free it with close() or a `with` block; it is also freed when
    garbage-collected."""

    def __init__(self, handle):
        self._m = handle
        self._data = None

    @classmethod
    def load(cls, path, threads=0):
        """A checkpoint (.safetensors) or a run folder (its latest checkpoint); `threads` > 0
        overrides the stored thread count."""
        m = ctypes.c_void_p()
        check(lib.knobs_model_load(str(path).encode(), int(threads), ctypes.byref(m)))
        return cls(m)

    _attr, _free, _what = "_m", "knobs_model_free", "model was"

    def _release(self):
        if getattr(self, "_data", None):
            lib.knobs_data_free(self._data)
            self._data = None

    @property
    def config(self):
        """The model's settings as a dict (its JSON config)."""
        return json.loads(take_string(lib.knobs_config_to_json(lib.knobs_model_config(self._handle()))))

    @property
    def code_dim(self):
        return lib.knobs_model_code_dim(self._handle())

    @property
    def step(self):
        return lib.knobs_model_step(self._handle())

    @property
    def shape(self):
        """The input shape (C, H, W)."""
        c = lib.knobs_model_config(self._handle())
        return tuple(int(lib.knobs_config_number(c, k)) for k in (b"C", b"H", b"W"))

    def save(self, path):
        check(lib.knobs_model_save(self._handle(), str(path).encode()))

    def _inputs(self, x):
        C, H, W = self.shape
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim == 3 or x.ndim == 1:
            x = x[None]
        if x.ndim < 2 or x[0].size != C * H * W:
            raise KnobsError("observations of shape %s do not match the model's input (C,H,W) = "
                             "(%d,%d,%d)" % (x.shape, C, H, W))
        return np.ascontiguousarray(x.reshape(len(x), C, H, W))

    def encode(self, x, sampled=False, seed=0, stream=0, logvar=False):
        """Codes (N,Z) float32 of observations x (N,C,H,W): posterior means, or samples
        mean + exp(logvar/2) eps with eps drawn from (seed, stream) if `sampled`. With
        logvar=True returns (codes, logvar)."""
        x = self._inputs(x)
        n, Z = len(x), self.code_dim
        z = np.empty((n, Z), np.float32)
        lv = np.empty((n, Z), np.float32) if logvar else None
        lvp = lv.ctypes.data if logvar else None
        if sampled:
            check(lib.knobs_model_encode_sampled(self._handle(), x.ctypes.data, n, seed, stream,
                                                 z.ctypes.data, lvp))
        else:
            check(lib.knobs_model_encode(self._handle(), x.ctypes.data, n, z.ctypes.data, lvp))
        return (z, lv) if logvar else z

    def decode(self, z):
        """Observations (N,C,H,W) float32 (Bernoulli or Gaussian means) of codes z (N,Z)."""
        z = np.ascontiguousarray(z, dtype=np.float32)
        if z.ndim == 1:
            z = z[None]
        if z.ndim != 2 or z.shape[1] != self.code_dim:
            raise KnobsError("codes of shape %s, want (N, %d)" % (z.shape, self.code_dim))
        C, H, W = self.shape
        x = np.empty((len(z), C, H, W), np.float32)
        check(lib.knobs_model_decode(self._handle(), z.ctypes.data, len(z), x.ctypes.data))
        return x

    def observation(self, index):
        """Observation `index` (C,H,W) of the dataset the model was trained on."""
        d, _ = self._dataset()
        C, H, W = self.shape
        x = np.empty((1, C, H, W), np.float32)
        i = (ctypes.c_int64 * 1)(int(index))
        check(lib.knobs_data_get(d, i, 1, x.ctypes.data, None))
        return x[0]

    def _dataset(self, spec=None):
        """The dataset `spec` and whether the caller frees it: None is the model's own, opened
        once and kept with the model; a spec is opened by knobs_model_open_data, which checks it
        against the model's input shape."""
        if spec is None:
            if self._data is None:
                self._data = _open_data(lib.knobs_model_config(self._handle()))
            return self._data, False
        d = ctypes.c_void_p()
        check(lib.knobs_model_open_data(self._handle(), str(spec).encode(), ctypes.byref(d)))
        return d, True

    # using the knobs (_apps.py): names, edits, the edit score, design
    name = _apps.model_name
    edit = _apps.model_edit
    edit_score = _apps.model_edit_score
    design = _apps.model_design

    def traverse(self, x_or_index, dim, values):
        """Decodes (len(values),C,H,W) of one observation's posterior mean with latent `dim`
        set to each of `values` in turn. The observation is an array (C,H,W) or the index of
        one in the model's dataset."""
        if isinstance(x_or_index, (int, np.integer)):
            x = self.observation(x_or_index)
        else:
            x = self._inputs(x_or_index)
            if len(x) != 1:
                raise KnobsError("traverse takes one observation, got %d" % len(x))
        if not 0 <= dim < self.code_dim:
            raise KnobsError("latent dimension %d out of range 0..%d" % (dim, self.code_dim - 1))
        values = np.asarray(values, dtype=np.float32).reshape(-1)
        z = np.repeat(self.encode(x), len(values), axis=0)
        z[:, dim] = values
        return self.decode(z)


def _config(config):
    """A knobs_config from a dict (knobs_config_create of its "model", then knobs_config_set of
    every other key) or a JSON text (knobs_config_from_json)."""
    c = ctypes.c_void_p()
    if isinstance(config, str):
        check(lib.knobs_config_create(None, ctypes.byref(c)))
        try:
            check(lib.knobs_config_from_json(c, config.encode()))
        except KnobsError:
            lib.knobs_config_free(c)
            raise
        return c
    model = config.get("model")
    check(lib.knobs_config_create(model.encode() if model else None, ctypes.byref(c)))
    try:
        for k, v in config.items():
            if k == "model":
                continue
            if isinstance(v, bool):
                v = int(v)
            check(lib.knobs_config_set(c, str(k).encode(), str(v).encode()))
    except KnobsError:
        lib.knobs_config_free(c)
        raise
    return c


def train(config, out_dir):
    """Train a model from `config` (a dict of settings as in config.json, or its JSON text) to
    its "steps", writing the run folder `out_dir` as `knobs train` does (config.json, log.csv,
    checkpoints). Returns the trained Model."""
    c = _config(config)
    d = m = None
    try:
        d = _open_data(c)
        check(lib.knobs_config_from_data(c, d))
        check(lib.knobs_config_validate(c))
        m = ctypes.c_void_p()
        check(lib.knobs_model_create(c, ctypes.byref(m)))
        o = padded(TrainOpts)
        o.s.out_dir = str(out_dir).encode()
        o.s.steps = int(lib.knobs_config_number(c, b"steps"))
        check(lib.knobs_train(m, d, ctypes.byref(o)))
        model, m = Model(m), None
        return model
    finally:
        if m:
            lib.knobs_model_free(m)
        if d:
            lib.knobs_data_free(d)
        lib.knobs_config_free(c)
