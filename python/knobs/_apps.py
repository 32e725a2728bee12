"""_apps.py: "using the knobs" of knobs.h (src/apps) from Python: the knob table (knobs_name,
knobs_name_codes, knobs.json), counterfactual edits and attribute vectors, the edit score,
property heads and design. Model.name/edit/edit_score/design (in __init__.py) are the model_*
functions below.

Arrays go in as NumPy (converted to the dtype the C call takes: codes float32, labels int32,
values float64) and come out as new NumPy arrays; nothing the caller passes is changed.
Library-owned results (knobs_knobs, knobs_design_result) are copied out or wrapped in a class
that frees them. Not here: the oracle, image properties and penalties on their own (only as
parts of design), and the knob panel server.
"""
import ctypes

import numpy as np

from ._lib import (CALIB_KNOTS, Handle, DESIGN_GOALS, DesignOpts, DesignResult, EDIT_MODES, EditOp,
                   EditScoreOpts, EditScoreRow, HeadOpts, KnobsError, KnobsTable, NameOpts,
                   PENALTIES, check, lib, padded)

_P = ctypes.POINTER


def _options(struct, default_fn, want, values):
    """A padded `struct` filled by the library's `default_fn`, its defaults checked against
    `want` (a layout change in knobs.h is an error, not corruption), then `values` (field: value,
    None keeps the default) set on it."""
    buf = padded(struct)
    getattr(lib, default_fn)(ctypes.byref(buf))
    o = buf.s
    for f, v in want.items():
        got = getattr(o, f)
        if abs(got - v) > 1e-12 * max(1, abs(v)):
            raise KnobsError("this knobs package does not match libknobs %s: %s field %s reads %r, want "
                             "the default %r" % (lib.knobs_version().decode(), struct.__name__, f, got, v),
                             "KNOBS_ERR_UNSUPPORTED")
    for f, v in values.items():
        if v is None:
            continue
        ctype = dict(struct._fields_)[f]
        if ctype is ctypes.c_double:
            setattr(o, f, float(v))
        else:
            if isinstance(v, float) and not v.is_integer():
                raise KnobsError("option '%s' wants an integer, got %r" % (f, v))
            if ctype is ctypes.c_uint64 and not 0 <= int(v) < 2**64:
                raise KnobsError("option '%s' wants an unsigned 64-bit integer, got %r" % (f, v))
            setattr(o, f, int(v))
    return buf


def _codes(a, name, Z=None):
    """C-contiguous float32 (N,Z) codes (one code (Z,) becomes (1,Z))."""
    a = np.ascontiguousarray(a, dtype=np.float32)
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2 or a.shape[1] < 1 or (Z is not None and a.shape[1] != Z):
        raise KnobsError("%s of shape %s, want (N, %s)" % (name, a.shape, Z if Z is not None else "Z"))
    return a


def _classes(a, name, n):
    """int32 class indices of shape (n,) or (n,K), refusing values that are not whole numbers or
    do not fit."""
    a = np.asarray(a)
    if a.shape[:1] != (n,) or a.ndim not in (1, 2):
        raise KnobsError("%s of shape %s, want (%d,) or (%d, K)" % (name, a.shape, n, n))
    if a.dtype.kind not in "biu":
        if a.dtype.kind != "f" or not np.all(np.isfinite(a)) or np.any(a != np.round(a)):
            raise KnobsError("%s: want whole numbers (class indices or 0/1 labels)" % name)
    if a.size and (a.min() < -2**31 or a.max() >= 2**31):
        raise KnobsError("%s: values beyond the int32 range" % name)
    return np.ascontiguousarray(a, dtype=np.int32)


def _text(b):
    return b.decode("utf-8", "replace")


# ---- the knob table --------------------------------------------------------------------------
class Knobs(Handle):
    """A model's knobs (knobs_knobs): per code dimension the user's name, the factor it tracks,
    the normalised MI with every factor, KL, mean, scale, direction and the calibration to the
    factor's value. Made by Model.name, name_codes, Knobs.read (knobs.json) or Knobs.create;
    saved with save(model_path). knobs[z] is latent z's statistics as a dict. Free it with
    close() or a `with` block (also freed when garbage-collected)."""

    def __init__(self, ptr):
        self._k = ptr  # POINTER(KnobsTable), owned

    @classmethod
    def create(cls, Z, K=0):
        """An empty table of Z knobs for K (0..16) factors, to name knobs by hand."""
        p = _P(KnobsTable)()
        check(lib.knobs_knobs_create(int(Z), int(K), ctypes.byref(p)))
        return cls(p)

    @classmethod
    def read(cls, model_path, Z):
        """knobs.json beside a checkpoint (a run folder or a .safetensors file) of a model of Z
        latents; None if there is none. KnobsError (KNOBS_ERR_FORMAT, naming the file) for a
        file that is not a knobs.json or describes another number of latents."""
        p = _P(KnobsTable)()
        check(lib.knobs_knobs_read(str(model_path).encode(), int(Z), ctypes.byref(p)))
        return cls(p) if p else None

    def save(self, model_path):
        """Write knobs.json beside the checkpoint `model_path` (a run folder or a .safetensors
        file), atomically."""
        check(lib.knobs_knobs_write(self._handle(), str(model_path).encode()))

    _attr, _free, _what = "_k", "knobs_knobs_free", "knobs were"

    def _knob(self, z):
        z = self._index(z)
        return self._handle().contents.knobs[z]

    def _index(self, z):
        if isinstance(z, str):
            return self.find(z)
        if not isinstance(z, (int, np.integer)) or not 0 <= z < self.Z:
            raise KnobsError("latent %r out of range 0..%d" % (z, self.Z - 1))
        return int(z)

    Z = property(lambda self: self._handle().contents.Z, doc="code dimensions")
    K = property(lambda self: self._handle().contents.K, doc="factors (0 for data without them)")
    step = property(lambda self: self._handle().contents.step, doc="the checkpoint step described")
    n = property(lambda self: self._handle().contents.n, doc="samples of the statistics (0: names only)")
    data = property(lambda self: _text(self._handle().contents.data), doc="the dataset used")

    @property
    def factors(self):
        t = self._handle().contents
        return [_text(t.factors[q].value) for q in range(t.K)]

    def __len__(self):
        return self.Z

    def __getitem__(self, z):
        """Latent z's statistics (z a number or a name) as plain values: name (None if none),
        factor and factor_index (None if none), mi (K floats), kl, mean, scale, corr, direction
        (+1, -1, 0), calibration ({"code": [...], "value": [...]} or None)."""
        z = self._index(z)
        kb = self._handle().contents.knobs[z]
        nk = kb.n_knots
        return {"index": z, "label": self.label(z), "name": _text(kb.name) or None,
                "factor": _text(kb.factor) or None,
                "factor_index": kb.factor_index if kb.factor_index >= 0 else None,
                "mi": list(kb.mi[:self.K]), "kl": kb.kl, "mean": kb.mean, "scale": kb.scale,
                "corr": kb.corr, "direction": kb.direction,
                "calibration": {"code": list(kb.knot_code[:nk]), "value": list(kb.knot_value[:nk])}
                if 2 <= nk <= CALIB_KNOTS else None}

    @property
    def latents(self):
        """Every latent's dict (knobs[z]), in dimension order."""
        return [self[z] for z in range(self.Z)]

    def label(self, z):
        """The name shown for latent z: the user's, else its factor, else "z<z>"."""
        z = self._index(z)
        buf = ctypes.create_string_buffer(64)
        return _text(lib.knobs_knobs_label(self._handle(), z, buf, 64))

    def find(self, name):
        """The latent a user means by `name`: a number (3, "3", "z3"), a user name, or a factor
        name; KnobsError listing the known names if none."""
        if isinstance(name, (int, np.integer)):
            return self._index(name)
        z = lib.knobs_knobs_find(self._handle(), self.Z, str(name).encode())
        if z < 0:
            raise KnobsError(_text(lib.knobs_last_error()))
        return z

    def rename(self, z, name):
        """Set latent z's user name (None or "" clears it). KnobsError for a name that reads as a
        number, has a control character or is longer than 63 bytes."""
        z = self._index(z)
        check(lib.knobs_knobs_rename(self._handle(), z, (name or "").encode()))

    def merge_names(self, other):
        """Copy the user names of `other` (a Knobs of the same Z) into this table."""
        check(lib.knobs_knobs_merge_names(self._handle(), other._handle()))

    def value(self, z, code):
        """The calibrated factor value of latent z at code value(s) `code` (clamped to the
        knots' range): a float, or an array for an array. KnobsError if z has no calibration."""
        kb = self._knob(z)
        if kb.n_knots < 2:
            raise KnobsError("latent %s has no calibration to a factor (it tracks none)" % z)
        c = np.asarray(code, dtype=np.float64)
        out = np.array([lib.knobs_knob_value(ctypes.byref(kb), float(v)) for v in c.reshape(-1)])
        return float(out[0]) if c.ndim == 0 else out.reshape(c.shape)

    def code(self, z, value):
        """The code of latent z whose calibrated factor value is `value` (a float, or an array
        for an array). KnobsError when z has no calibration or a value is outside its range
        (the message gives the range)."""
        kb = self._knob(z)
        v = np.asarray(value, dtype=np.float64)
        out = np.empty(v.shape)
        c = ctypes.c_double()
        for i, x in enumerate(v.reshape(-1)):
            check(lib.knobs_knob_code(ctypes.byref(kb), float(x), ctypes.byref(c)))
            out.reshape(-1)[i] = c.value
        return float(out) if v.ndim == 0 else out

    def __repr__(self):
        if not getattr(self, "_k", None):
            return "<knobs.Knobs (closed)>"
        return "<knobs.Knobs Z=%d K=%d n=%d data=%r: %s>" % (
            self.Z, self.K, self.n, self.data, ", ".join(self.label(z) for z in range(self.Z)))


def _table(knobs):
    """The knobs_knobs pointer of a Knobs or None."""
    if knobs is None:
        return None
    if not isinstance(knobs, Knobs):
        raise KnobsError("knobs: want a knobs.Knobs or None, got %s" % type(knobs).__name__)
    return knobs._handle()


def name_codes(codes, factors, values=None, factor_names=None, kl=None):
    """The knob table from arrays (codes from any framework), as knobs_name_codes computes it:
    codes (n,Z), factor classes (n,K) or (n,), factor values (n,K) or None (the class index is
    the value), K factor names (default factor0, factor1, ...) and the KL per dimension (Z) or
    None (then no latent counts as inactive). Refuses NaN, negative classes, n < 2."""
    c = _codes(codes, "codes")
    n, Z = c.shape
    f = _classes(factors, "factors", n).reshape(n, -1)
    K = f.shape[1]
    v = None
    if values is not None:
        v = np.ascontiguousarray(values, dtype=np.float64)
        if v.size != n * K:
            raise KnobsError("values of shape %s, want (%d, %d) as the factors" % (v.shape, n, K))
        v = v.reshape(n, K)
    if factor_names is None:
        factor_names = ["factor%d" % q for q in range(K)]
    if isinstance(factor_names, str):
        factor_names = factor_names.split(",")
    if len(factor_names) != K:
        raise KnobsError("%d factor names for %d factors" % (len(factor_names), K))
    names = (ctypes.c_char * 32 * max(K, 1))()
    for q, s in enumerate(factor_names):
        b = str(s).encode()
        if len(b) > 31:
            raise KnobsError("factor name '%s' is longer than 31 bytes" % s)
        names[q].value = b
    k = None
    if kl is not None:
        k = np.ascontiguousarray(kl, dtype=np.float64).reshape(-1)
        if k.shape != (Z,):
            raise KnobsError("kl of shape %s, want (%d,)" % (np.shape(kl), Z))
    p = _P(KnobsTable)()
    check(lib.knobs_name_codes(c.ctypes.data, f.ctypes.data, v.ctypes.data if v is not None else None,
                               n, Z, K, names, k.ctypes.data if k is not None else None,
                               ctypes.byref(p)))
    return Knobs(p)


def model_name(model, data=None, n=None, n_kl=None, seed=None):
    """Name the model's knobs (knobs_name): encode `n` [10000] observations of `data` (a dataset
    spec; None: the model's own) drawn with their factors, and compute every knob's statistics;
    the KL over n_kl [512]. The draws' seed defaults to the fixed one `knobs name` uses. The
    user names are empty: knobs.merge_names(Knobs.read(path, Z)) keeps the old ones, then
    save(path) writes knobs.json. KnobsError for data without ground-truth factors."""
    o = _options(NameOpts, "knobs_name_opts_default", {"n": 10000, "n_kl": 512},
                 {"n": n, "n_kl": n_kl, "seed": seed})
    d, owned = model._dataset(data)
    try:
        p = _P(KnobsTable)()
        check(lib.knobs_name(model._handle(), d, ctypes.byref(o), ctypes.byref(p)))
        return Knobs(p)
    finally:
        if owned:
            lib.knobs_data_free(d)


# ---- edits -----------------------------------------------------------------------------------
def _ops(ops, knobs, Z):
    """knobs_edit_op array of (latent, mode, value) tuples: latent a number or a knob name, mode
    "set" (code value), "add" (code step) or "factor" (the calibrated factor value)."""
    if isinstance(ops, tuple) and len(ops) == 3 and isinstance(ops[1], str):
        ops = [ops]
    ops = list(ops)
    arr = (EditOp * max(len(ops), 1))()
    for i, op in enumerate(ops):
        try:
            latent, mode, value = op
        except (TypeError, ValueError):
            raise KnobsError("edit op %r: want (latent, mode, value), mode 'set', 'add' or 'factor'" % (op,))
        if mode not in EDIT_MODES:
            raise KnobsError("edit op %r: unknown mode '%s' (set, add or factor)" % (op, mode))
        if isinstance(latent, (int, np.integer)):
            z = int(latent)
        elif knobs is not None:
            z = knobs.find(latent)
        else:
            z = lib.knobs_knobs_find(None, Z, str(latent).encode())
            if z < 0:
                raise KnobsError(_text(lib.knobs_last_error()))
        try:
            arr[i] = EditOp(z, EDIT_MODES[mode], float(value))
        except (TypeError, ValueError, OverflowError):
            raise KnobsError("edit op %r: the value is not a number" % (op,))
    return arr, len(ops)


def edit_codes(codes, knobs, ops):
    """A copy of codes (N,Z) with the edit ops applied (knobs_edit_codes): ops are
    (latent, mode, value) tuples, latent a number or (with `knobs`) a knob name, mode "set"
    (code[latent] = value), "add" (code[latent] += value) or "factor" (the code whose calibrated
    factor value is `value`; needs knobs with a calibration)."""
    c = _codes(codes, "codes").copy()
    n, Z = c.shape
    arr, m = _ops(ops, knobs, Z)
    check(lib.knobs_edit_codes(_table(knobs), arr, m, c.ctypes.data, n, Z))
    return c


def model_edit(model, x, knobs=None, ops=()):
    """A counterfactual edit (knobs_edit) of observations x (N,C,H,W) (or one (C,H,W)): encode
    (posterior mean), apply `ops` (as edit_codes takes them; `knobs` may be None for "set" and
    "add" by number), decode. Returns (reconstruction, edited, codes): the decodes (N,C,H,W)
    before and after the ops, and the edited codes (N,Z)."""
    x = model._inputs(x)
    n, Z = len(x), model.code_dim
    arr, m = _ops(ops, knobs, Z)
    recon, edited = np.empty_like(x), np.empty_like(x)
    codes = np.empty((n, Z), np.float32)
    check(lib.knobs_edit(model._handle(), _table(knobs), arr, m, x.ctypes.data, n, recon.ctypes.data,
                         edited.ctypes.data, codes.ctypes.data))
    return recon, edited, codes


def attribute_vector(codes, labels):
    """The attribute vector of latent arithmetic (knobs_attribute_vector): the mean code (Z,) of
    the rows with label != 0 minus that of the rows with label 0. KnobsError (KNOBS_ERR_DATA)
    when either group is empty."""
    c = _codes(codes, "codes")
    n, Z = c.shape
    lab = np.asarray(labels)
    if lab.ndim == 2 and lab.shape[1] == 1:
        lab = lab[:, 0]
    if lab.ndim != 1:
        raise KnobsError("labels of shape %s, want (%d,)" % (lab.shape, n))
    lab = _classes(lab, "labels", n)
    v = np.empty(Z, np.float32)
    check(lib.knobs_attribute_vector(c.ctypes.data, lab.ctypes.data, n, Z, v.ctypes.data))
    return v


def model_edit_score(model, knobs, data=None, n_edits=None, delta=None, seed=None):
    """How trustworthy each knob is (knobs_edit_score), measured with the oracle on `data` (a
    dataset spec with a built-in renderer: dsprites or shapes; None: the model's own): one row
    per latent with a factor, a dict of latent, factor (its name), factor_index, n (edits
    scored), fidelity, moved, specificity, recon_exact. n_edits [200] per knob, delta [2] code
    standard deviations, seed [0]. `knobs` must hold statistics (Model.name)."""
    o = _options(EditScoreOpts, "knobs_edit_score_opts_default", {"n_edits": 200, "delta": 2.0},
                 {"n_edits": n_edits, "delta": delta, "seed": seed})
    Z = model.code_dim
    rows = (EditScoreRow * Z)()
    nr = ctypes.c_int()
    d, owned = model._dataset(data)
    try:
        check(lib.knobs_edit_score(model._handle(), d, _table(knobs), ctypes.byref(o), rows,
                                   ctypes.byref(nr)))
    finally:
        if owned:
            lib.knobs_data_free(d)
    names = knobs.factors
    return [{"latent": r.latent, "factor": names[r.factor] if 0 <= r.factor < len(names) else None,
             "factor_index": r.factor, "n": r.n, "fidelity": r.fidelity, "moved": r.moved,
             "specificity": r.specificity, "recon_exact": r.recon_exact} for r in rows[:nr.value]]


# ---- property heads --------------------------------------------------------------------------
class Head(Handle):
    """A property head (knobs_head): a small MLP on codes, Z -> hidden (ReLU) x layers -> 1,
    predicting a value (or a probability for a logistic head). Head.fit trains one, Head.load
    reads one (.safetensors); head(z) predicts. Free it with close() or a `with` block."""

    def __init__(self, handle, val_error=None):
        self._h = handle
        self.val_error = val_error  # held-out RMSE or error rate of fit(); None when loaded

    @classmethod
    def fit(cls, codes, y, hidden=None, layers=None, steps=None, batch=None, lr=None,
            logistic=None, val_frac=None, seed=None):
        """Train on codes (n,Z) and labels y (n,) (knobs_head_fit): hidden [64], layers [2], Adam
        steps [2000], batch [256], lr [1e-3], logistic [False: mean squared error; True: 0/1
        labels, sigmoid output], val_frac [0.1]: the LAST floor(n * val_frac) rows are held out
        (unshuffled) to measure .val_error (RMSE, or the error rate of a logistic head), seed
        [0]. Refuses NaN, fewer than 2 training rows, a constant label."""
        c = _codes(codes, "codes")
        n, Z = c.shape
        yy = np.ascontiguousarray(y, dtype=np.float64).reshape(-1)
        if yy.shape != (n,):
            raise KnobsError("labels of shape %s, want (%d,)" % (np.shape(y), n))
        o = _options(HeadOpts, "knobs_head_opts_default",
                     {"hidden": 64, "layers": 2, "steps": 2000, "batch": 256, "lr": 1e-3, "val_frac": 0.1},
                     {"hidden": hidden, "layers": layers, "steps": steps, "batch": batch, "lr": lr,
                      "logistic": None if logistic is None else int(bool(logistic)),
                      "val_frac": val_frac, "seed": seed})
        h, err = ctypes.c_void_p(), ctypes.c_double()
        check(lib.knobs_head_fit(c.ctypes.data, yy.ctypes.data, n, Z, ctypes.byref(o), ctypes.byref(h),
                                 ctypes.byref(err)))
        return cls(h, err.value)

    @classmethod
    def load(cls, path):
        """A head saved by save() or `knobs design fit`; KnobsError naming the file for one that
        is not a head, truncated, or holds NaN."""
        h = ctypes.c_void_p()
        check(lib.knobs_head_load(str(path).encode(), ctypes.byref(h)))
        return cls(h)

    def save(self, path):
        """Write the head (.safetensors: torch.nn.Sequential's state_dict names), atomically."""
        check(lib.knobs_head_save(self._handle(), str(path).encode()))

    _attr, _free, _what = "_h", "knobs_head_free", "head was"

    @property
    def dim(self):
        """Its input width Z."""
        return lib.knobs_head_dim(self._handle())

    def eval(self, z, dy=None, grad=False):
        """Predictions (n,) float64 of codes z (n,Z) (or one code (Z,)). With grad=True returns
        (y, dz): dz (n,Z) float32, row i the gradient of dy[i] * y_i with respect to z_i (dy
        (n,) or None: ones)."""
        z = _codes(z, "codes", self.dim)
        n = len(z)
        y = np.empty(n, np.float64)
        dz = np.zeros_like(z) if grad else None
        d = None
        if dy is not None:
            if not grad:
                raise KnobsError("dy weights the gradient: pass grad=True")
            d = np.ascontiguousarray(dy, dtype=np.float64).reshape(-1)
            if d.shape != (n,):
                raise KnobsError("dy of shape %s, want (%d,)" % (np.shape(dy), n))
        check(lib.knobs_head_eval(self._handle(), z.ctypes.data, n, y.ctypes.data,
                                  d.ctypes.data if d is not None else None,
                                  dz.ctypes.data if grad else None))
        return (y, dz) if grad else y

    def __call__(self, z):
        return self.eval(z)


# ---- design ----------------------------------------------------------------------------------
_DESIGN_DEFAULTS = {"latent": -1, "goal": 0, "penalty": 1, "lambda_": 1.0, "n": 16, "restarts": 64,
                    "steps": 200, "lr": 0.05, "n_fit": 5000}


def model_design(model, prop="area", goal=None, target=None, knobs=None, data=None, penalty="prior",
                 lambda_=None, n=None, restarts=None, steps=None, lr=None, n_fit=None, seed=None,
                 gmm_k=None, gmm_iter=None, gmm_tol=None, gmm_reg=None, box_q=None, penalty_seed=None):
    """Search latent space for codes whose decode has a property (knobs_design): gradient ascent
    (Adam, lr [0.05], steps [200]) from `restarts` [64] encoded observations of `data` (a
    dataset spec; None: the model's own) of s * P(z) - lambda_ [1] * penalty(z), the best n [16]
    reported.

    prop: an image property ("area", "cx", "cy", "brightness", "red", "green", "blue"), a Head,
    or a knob (a latent number or a name `knobs` resolves: its calibrated factor value; needs
    `knobs` with a calibration). goal: "max" (default), "min", or "target" (the default when
    `target` is given: bring the property to `target`). penalty: "prior" (default), "gmm",
    "box" or "none", with gmm_k, gmm_iter, gmm_tol, gmm_reg, box_q, penalty_seed; fitted on
    n_fit [5000] encoded observations drawn with seed [0].

    Returns a dict: codes (n,Z) and images (n,C,H,W), best first; designs, one dict per design
    (property, objective, penalty, percentile, nearest, recon, valid); threshold, data_p50,
    data_p90, data_max, valid (how many) and method (how `nearest` was measured)."""
    if goal is None:
        goal = "target" if target is not None else "max"
    if goal not in DESIGN_GOALS:
        raise KnobsError("design: unknown goal '%s' (max, min or target)" % goal)
    if (goal == "target") != (target is not None):
        raise KnobsError("design: goal 'target' and a target value go together")
    if penalty not in PENALTIES:
        raise KnobsError("design: unknown penalty '%s' (none, prior, gmm or box)" % penalty)
    Z = model.code_dim
    head, latent, image_property, channel = None, None, None, None
    if isinstance(prop, Head):
        head = prop._handle()
    elif isinstance(prop, (int, np.integer)):
        latent = int(prop)
    elif isinstance(prop, str):
        ch = ctypes.c_int()
        ip = lib.knobs_image_property_parse(prop.encode(), ctypes.byref(ch))
        if ip >= 0:
            image_property, channel = ip, ch.value
        elif knobs is not None:
            latent = knobs.find(prop)
        else:
            latent = lib.knobs_knobs_find(None, Z, prop.encode())
            if latent < 0:
                raise KnobsError("design: property '%s': not an image property (area, cx, cy, brightness, "
                                 "red, green, blue), a Head or a knob: %s" % (prop, _text(lib.knobs_last_error())))
    else:
        raise KnobsError("design: property %r: want an image property name, a knob or a Head" % (prop,))
    buf = _options(DesignOpts, "knobs_design_opts_default", _DESIGN_DEFAULTS,
                   {"image_property": image_property, "channel": channel, "latent": latent,
                    "goal": DESIGN_GOALS[goal], "target": target if target is not None else 0.0,
                    "penalty": PENALTIES[penalty], "lambda_": lambda_, "n": n, "restarts": restarts,
                    "steps": steps, "lr": lr, "n_fit": n_fit, "seed": seed})
    o = buf.s
    o.head = head.value if head is not None else None
    po = o.penalty_opts
    if po.gmm_k != 10 or abs(po.gmm_tol - 1e-4) > 1e-16 or abs(po.box_q - 0.01) > 1e-16:
        raise KnobsError("this knobs package does not match libknobs: knobs_penalty_opts defaults read "
                         "%d, %g, %g" % (po.gmm_k, po.gmm_tol, po.box_q), "KNOBS_ERR_UNSUPPORTED")
    for f, v in (("gmm_k", gmm_k), ("gmm_iter", gmm_iter), ("gmm_tol", gmm_tol), ("gmm_reg", gmm_reg),
                 ("box_q", box_q), ("seed", penalty_seed)):
        if v is not None:
            setattr(po, f, float(v) if dict(po._fields_)[f] is ctypes.c_double else int(v))
    d, owned = model._dataset(data)
    r = _P(DesignResult)()
    try:
        check(lib.knobs_design(model._handle(), d, _table(knobs), ctypes.byref(buf), ctypes.byref(r)))
        res = r.contents
        nd, C, H, W = res.n, res.C, res.H, res.W
        out = {"codes": np.ctypeslib.as_array(res.codes, (nd, res.Z)).copy(),
               "images": np.ctypeslib.as_array(res.images, (nd, C, H, W)).copy(),
               "designs": [{"property": it.property, "objective": it.objective, "penalty": it.penalty,
                            "percentile": it.percentile, "nearest": it.nearest, "recon": it.recon,
                            "valid": bool(it.valid)} for it in res.items[:nd]],
               "threshold": res.threshold, "data_p50": res.data_p50, "data_p90": res.data_p90,
               "data_max": res.data_max, "valid": res.valid, "method": _text(res.method)}
        return out
    finally:
        lib.knobs_design_result_free(r)
        if owned:
            lib.knobs_data_free(d)
