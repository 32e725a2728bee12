"""_lib.py: loading libknobs.so and the ctypes mirror of the knobs.h structs Python reads or fills.

The library is found via $KNOBS_LIB (a path to the .so), then a build/ folder next to the
package (python/../build/libknobs.so in a source tree), then the system loader
(ctypes.util.find_library, after `make install`). No compiled extension: everything goes
through ctypes, so any libknobs of the same major version works.

The option structs (knobs_metrics_opts, knobs_data_opts, knobs_train_opts) are mirrored here
with spare room after them, filled by the library's own _default functions, and the metrics
defaults are read back and checked, so a layout change in knobs.h is an error, not corruption.
The structs of "using the knobs" (knobs_knobs, knobs_design_opts, ...) are mirrored field for
field; their option structs get the same spare room and defaults check (_apps.py).
"""
import ctypes
import ctypes.util
import os

c_int, c_int64, c_uint64, c_double, c_char_p, c_void_p, c_long, c_size_t = (
    ctypes.c_int, ctypes.c_int64, ctypes.c_uint64, ctypes.c_double, ctypes.c_char_p,
    ctypes.c_void_p, ctypes.c_long, ctypes.c_size_t)

MAX_DIMS = 8
SPARE = 1024  # bytes after each mirrored option struct, in case the C one grew


class KnobsError(Exception):
    """A libknobs call failed: .status is the status name (KNOBS_ERR_ARG, ...), the message is
    knobs_last_error()."""

    def __init__(self, message, status="KNOBS_ERR_ARG"):
        super().__init__(message)
        self.status = status


class Array(ctypes.Structure):  # knobs_array
    _fields_ = [("dtype", c_int), ("ndim", c_int), ("shape", c_int64 * MAX_DIMS),
                ("data", c_void_p)]


class MetricsOpts(ctypes.Structure):  # knobs_metrics_opts, in declaration order
    _fields_ = [
        ("seed", c_uint64), ("threads", c_int), ("train_frac", c_double),
        ("num_train", c_int), ("num_test", c_int), ("num_bins", c_int), ("batch_size", c_int),
        ("num_eval", c_int), ("num_variance", c_int), ("prune_threshold", c_double),
        ("gbt_stages", c_int), ("gbt_depth", c_int), ("gbt_learning_rate", c_double),
        ("sap_C", c_double), ("sap_continuous", c_int), ("logreg_C", c_double),
        ("irs_quantile", c_double), ("intervention_n", c_int), ("intervention_scale_n", c_int),
        ("intervention_active", c_double), ("intervention_cyclic", c_char_p),
        ("mig_sampled_points", c_int), ("mig_sampled_samples", c_int),
        ("mig_sampled_factors", c_char_p), ("elbo_points", c_int),
        ("codes_name", c_char_p), ("factors_name", c_char_p), ("logvar_name", c_char_p),
        ("progress", c_void_p), ("progress_ctx", c_void_p), ("on_metric", c_void_p),
        ("on_metric_ctx", c_void_p), ("grid_codes", c_void_p), ("mcc_spearman", c_int),
        ("amari_unmixing", c_char_p), ("amari_mixing", c_char_p)]


class DataOpts(ctypes.Structure):  # knobs_data_opts
    _fields_ = [("threads", c_int), ("seed", c_uint64), ("factors", c_char_p),
                ("obs_dim", c_int), ("noise", c_double), ("factor_dist", c_char_p)]


class TrainOpts(ctypes.Structure):  # knobs_train_opts (zero-initialised: it may gain fields)
    _fields_ = [("out_dir", c_char_p), ("steps", c_long), ("progress", c_void_p),
                ("ctx", c_void_p), ("stop", c_void_p)]


# ---- using the knobs (knobs.h "names, edits, design"): mirrored field for field --------------
MAX_FACTORS = 16
CALIB_KNOTS = 21


class Knob(ctypes.Structure):  # knobs_knob
    _fields_ = [("name", ctypes.c_char * 64), ("factor", ctypes.c_char * 32), ("factor_index", c_int),
                ("mi", c_double * MAX_FACTORS), ("kl", c_double), ("mean", c_double),
                ("scale", c_double), ("corr", c_double), ("direction", c_int), ("n_knots", c_int),
                ("knot_code", c_double * CALIB_KNOTS), ("knot_value", c_double * CALIB_KNOTS)]


class KnobsTable(ctypes.Structure):  # knobs_knobs
    _fields_ = [("Z", c_int), ("K", c_int), ("step", c_long), ("n", c_int),
                ("data", ctypes.c_char * 64), ("factors", (ctypes.c_char * 32) * MAX_FACTORS),
                ("knobs", ctypes.POINTER(Knob))]


class NameOpts(ctypes.Structure):  # knobs_name_opts
    _fields_ = [("n", c_int), ("n_kl", c_int), ("seed", c_uint64)]


class EditOp(ctypes.Structure):  # knobs_edit_op
    _fields_ = [("latent", c_int), ("mode", c_int), ("value", c_double)]


EDIT_MODES = {"set": 0, "add": 1, "factor": 2}  # knobs_edit_mode


class EditScoreOpts(ctypes.Structure):  # knobs_edit_score_opts
    _fields_ = [("n_edits", c_int), ("delta", c_double), ("seed", c_uint64)]


class EditScoreRow(ctypes.Structure):  # knobs_edit_score_row
    _fields_ = [("latent", c_int), ("factor", c_int), ("n", c_int), ("fidelity", c_double),
                ("moved", c_double), ("specificity", c_double), ("recon_exact", c_double)]


class HeadOpts(ctypes.Structure):  # knobs_head_opts
    _fields_ = [("hidden", c_int), ("layers", c_int), ("steps", c_int), ("batch", c_int),
                ("lr", c_double), ("logistic", c_int), ("val_frac", c_double), ("seed", c_uint64)]


class PenaltyOpts(ctypes.Structure):  # knobs_penalty_opts
    _fields_ = [("gmm_k", c_int), ("gmm_iter", c_int), ("gmm_tol", c_double), ("gmm_reg", c_double),
                ("box_q", c_double), ("seed", c_uint64)]


DESIGN_GOALS = {"max": 0, "min": 1, "target": 2}          # knobs_design_goal
PENALTIES = {"none": 0, "prior": 1, "gmm": 2, "box": 3}   # knobs_penalty_kind


class DesignOpts(ctypes.Structure):  # knobs_design_opts
    _fields_ = [("image_property", c_int), ("channel", c_int), ("latent", c_int), ("head", c_void_p),
                ("goal", c_int), ("target", c_double), ("penalty", c_int), ("lambda_", c_double),
                ("penalty_opts", PenaltyOpts), ("n", c_int), ("restarts", c_int), ("steps", c_int),
                ("lr", c_double), ("n_fit", c_int), ("seed", c_uint64)]


class DesignItem(ctypes.Structure):  # knobs_design_item
    _fields_ = [("property", c_double), ("objective", c_double), ("penalty", c_double),
                ("percentile", c_double), ("nearest", c_double), ("recon", c_double), ("valid", c_int)]


class DesignResult(ctypes.Structure):  # knobs_design_result
    _fields_ = [("n", c_int), ("Z", c_int), ("C", c_int), ("H", c_int), ("W", c_int),
                ("codes", ctypes.POINTER(ctypes.c_float)), ("images", ctypes.POINTER(ctypes.c_float)),
                ("items", ctypes.POINTER(DesignItem)), ("threshold", c_double),
                ("data_p50", c_double), ("data_p90", c_double), ("data_max", c_double),
                ("valid", c_int), ("method", ctypes.c_char * 640)]


def padded(struct):
    """A zeroed buffer holding `struct` with SPARE bytes after it."""
    class Padded(ctypes.Structure):
        _fields_ = [("s", struct), ("_spare", ctypes.c_char * SPARE)]
    return Padded()


# the documented defaults of knobs_metrics_opts_default (knobs.h); checked on every call
METRICS_DEFAULTS = {"seed": 0, "threads": 1, "train_frac": 0.9, "num_train": 10000,
                    "num_test": 5000, "num_bins": 20, "batch_size": 64, "num_eval": 5000,
                    "num_variance": 10000, "gbt_stages": 100, "gbt_depth": 3,
                    "sap_C": 0.01, "irs_quantile": 0.99, "intervention_n": 5000,
                    "mig_sampled_samples": 10000, "elbo_points": 10000}


def _candidates():
    env = os.environ.get("KNOBS_LIB")
    if env:
        return [env], True
    here = os.path.dirname(os.path.abspath(__file__))
    paths = [os.path.join(here, "..", "..", "build", "libknobs.so")]
    sysname = ctypes.util.find_library("knobs")
    if sysname:
        paths.append(sysname)
    return paths, False


def _load():
    paths, forced = _candidates()
    errors = []
    for p in paths:
        if forced or os.path.sep not in p or os.path.exists(p):
            try:
                return ctypes.CDLL(p)
            except OSError as e:
                errors.append("%s: %s" % (p, e))
    raise ImportError("knobs: cannot load libknobs.so (set KNOBS_LIB to its path, build it with "
                      "`make`, or `make install`): " + ("; ".join(errors) or "not found"))


lib = _load()


class Handle:
    """A library handle owned by one Python object (Model, Knobs, Head): close() frees it once
    (also at the end of a `with` block and on garbage collection); _handle() returns it, or
    raises once it is closed. A subclass names the attribute holding it (_attr), the library
    function freeing it (_free) and itself in messages (_what); _release frees anything else."""
    _attr, _free, _what = "_p", None, "object"

    def _release(self):
        pass

    def close(self):
        self._release()
        h = getattr(self, self._attr, None)
        if h:
            getattr(lib, self._free)(h)
            setattr(self, self._attr, None)

    def __del__(self):
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _handle(self):
        h = getattr(self, self._attr, None)
        if not h:
            raise KnobsError("the %s closed" % self._what)
        return h

_P = ctypes.POINTER
_S = c_int  # knobs_status
_sigs = {
    "knobs_last_error": (c_char_p, []),
    "knobs_status_name": (c_char_p, [c_int]),
    "knobs_version": (c_char_p, []),
    "knobs_blas_info": (c_char_p, []),
    "knobs_free": (None, [c_void_p]),
    "knobs_data_open": (_S, [c_char_p, c_void_p, _P(c_void_p)]),
    "knobs_data_free": (None, [c_void_p]),
    "knobs_data_get": (_S, [c_void_p, _P(c_int64), c_int, c_void_p, c_void_p]),
    "knobs_config_create": (_S, [c_char_p, _P(c_void_p)]),
    "knobs_config_free": (None, [c_void_p]),
    "knobs_config_set": (_S, [c_void_p, c_char_p, c_char_p]),
    "knobs_config_from_json": (_S, [c_void_p, c_char_p]),
    "knobs_config_to_json": (c_void_p, [c_void_p]),
    "knobs_config_validate": (_S, [c_void_p]),
    "knobs_config_from_data": (_S, [c_void_p, c_void_p]),
    "knobs_config_data_opts": (None, [c_void_p, c_void_p]),
    "knobs_config_number": (c_double, [c_void_p, c_char_p]),
    "knobs_config_string": (c_char_p, [c_void_p, c_char_p]),
    "knobs_model_create": (_S, [c_void_p, _P(c_void_p)]),
    "knobs_model_load": (_S, [c_char_p, c_int, _P(c_void_p)]),
    "knobs_model_save": (_S, [c_void_p, c_char_p]),
    "knobs_model_free": (None, [c_void_p]),
    "knobs_model_config": (c_void_p, [c_void_p]),
    "knobs_model_step": (c_long, [c_void_p]),
    "knobs_model_code_dim": (c_int, [c_void_p]),
    "knobs_model_encode": (_S, [c_void_p, c_void_p, c_int, c_void_p, c_void_p]),
    "knobs_model_encode_sampled": (_S, [c_void_p, c_void_p, c_int, c_uint64, c_uint64,
                                        c_void_p, c_void_p]),
    "knobs_model_decode": (_S, [c_void_p, c_void_p, c_int, c_void_p]),
    "knobs_train": (_S, [c_void_p, c_void_p, c_void_p]),
    "knobs_metrics_opts_default": (None, [c_void_p]),
    "knobs_metrics_arrays": (_S, [_P(Array), _P(Array), _P(Array), c_char_p, c_void_p,
                                  _P(c_void_p)]),
    "knobs_result_json": (c_void_p, [c_void_p]),
    "knobs_result_free": (None, [c_void_p]),
    "knobs_model_open_data": (_S, [c_void_p, c_char_p, _P(c_void_p)]),
    # names
    "knobs_name_opts_default": (None, [c_void_p]),
    "knobs_name": (_S, [c_void_p, c_void_p, c_void_p, _P(_P(KnobsTable))]),
    "knobs_name_codes": (_S, [c_void_p, c_void_p, c_void_p, c_int, c_int, c_int, c_void_p,
                              c_void_p, _P(_P(KnobsTable))]),
    "knobs_knobs_read": (_S, [c_char_p, c_int, _P(_P(KnobsTable))]),
    "knobs_knobs_write": (_S, [_P(KnobsTable), c_char_p]),
    "knobs_knobs_create": (_S, [c_int, c_int, _P(_P(KnobsTable))]),
    "knobs_knobs_merge_names": (_S, [_P(KnobsTable), _P(KnobsTable)]),
    "knobs_knobs_free": (None, [_P(KnobsTable)]),
    "knobs_knobs_rename": (_S, [_P(KnobsTable), c_int, c_char_p]),
    "knobs_knobs_find": (c_int, [_P(KnobsTable), c_int, c_char_p]),
    "knobs_knobs_label": (c_char_p, [_P(KnobsTable), c_int, c_char_p, c_size_t]),
    "knobs_knob_value": (c_double, [_P(Knob), c_double]),
    "knobs_knob_code": (_S, [_P(Knob), c_double, _P(c_double)]),
    "knobs_clear_error": (None, []),
    # edits
    "knobs_edit_codes": (_S, [_P(KnobsTable), _P(EditOp), c_int, c_void_p, c_int, c_int]),
    "knobs_edit": (_S, [c_void_p, _P(KnobsTable), _P(EditOp), c_int, c_void_p, c_int, c_void_p,
                        c_void_p, c_void_p]),
    "knobs_attribute_vector": (_S, [c_void_p, c_void_p, c_int, c_int, c_void_p]),
    "knobs_edit_score_opts_default": (None, [c_void_p]),
    "knobs_edit_score": (_S, [c_void_p, c_void_p, _P(KnobsTable), c_void_p, _P(EditScoreRow),
                              _P(c_int)]),
    # property heads
    "knobs_head_opts_default": (None, [c_void_p]),
    "knobs_head_fit": (_S, [c_void_p, c_void_p, c_int, c_int, c_void_p, _P(c_void_p),
                            _P(c_double)]),
    "knobs_head_save": (_S, [c_void_p, c_char_p]),
    "knobs_head_load": (_S, [c_char_p, _P(c_void_p)]),
    "knobs_head_free": (None, [c_void_p]),
    "knobs_head_dim": (c_int, [c_void_p]),
    "knobs_head_eval": (_S, [c_void_p, c_void_p, c_int, c_void_p, c_void_p, c_void_p]),
    # design
    "knobs_image_property_parse": (c_int, [c_char_p, _P(c_int)]),
    "knobs_design_opts_default": (None, [c_void_p]),
    "knobs_design": (_S, [c_void_p, c_void_p, _P(KnobsTable), c_void_p, _P(_P(DesignResult))]),
    "knobs_design_result_free": (None, [_P(DesignResult)]),
}
for _name, (_res, _args) in _sigs.items():
    _f = getattr(lib, _name)
    _f.restype, _f.argtypes = _res, _args


# knobs_status in declaration order (knobs_status_name gives a description, "bad data", instead)
STATUS_NAMES = ["KNOBS_OK", "KNOBS_ERR_ARG", "KNOBS_ERR_IO", "KNOBS_ERR_FORMAT", "KNOBS_ERR_NOMEM",
                "KNOBS_ERR_DATA", "KNOBS_ERR_UNSUPPORTED", "KNOBS_ERR_INTERRUPTED"]


def check(status):
    """Raise KnobsError with knobs_last_error() and the status's enum name for a non-zero
    status."""
    if status:
        name = (STATUS_NAMES[status] if 0 < status < len(STATUS_NAMES)
                else lib.knobs_status_name(status).decode())
        raise KnobsError(lib.knobs_last_error().decode("utf-8", "replace"), name)


def take_string(ptr):
    """A library-returned string as str, freed with knobs_free."""
    if not ptr:
        raise KnobsError("out of memory formatting a result", "KNOBS_ERR_NOMEM")
    try:
        return ctypes.string_at(ptr).decode("utf-8")
    finally:
        lib.knobs_free(ptr)
