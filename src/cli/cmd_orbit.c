/* cmd_orbit.c: `knobs orbit`: is a symmetry a loop in latent space? (docs/apps.md "knobs orbit")
 *   knobs orbit --model RUN --factor orientation --index 123 --out DIR [--data D]   sweep a factor
 *   knobs orbit --model RUN --data seq.npy --out DIR [--values v.npy]              any sequence
 * encodes the orbit and writes DIR/orbit.json (the statistics of knobs_orbit: PCA plane share,
 * circle, winding, circular-linear correlation; every point's plane coordinates and value) and
 * DIR/orbit.png (knobs_orbit_png), both or neither; prints a short table. A sequence is a file
 * the data module reads (.npy (n,C,H,W) of the model's input shape, ...), every row in order; its
 * values are --values (n) or else the position 0..n-1. --closed auto (the default) closes the
 * orbit exactly when its last input equals its first, and drops that duplicate (dSprites'
 * orientation class 39 is 2 pi, drawn as class 0). It decides nothing itself: the numbers come
 * from the library. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"

typedef struct {
  const char *model, *factor, *data, *values, *closed, *out;
  int64_t index;
  int size, threads, no_refine;
} orbit_flags;

/* The factor named `s` (a name of d, or its number); -1 after a reported usage error. */
static int find_factor(const char *cmd, const knobs_data_info *in, const char *s) {
  for (int k = 0; k < in->K; k++)
    if (!strcmp(in->factor_names[k], s)) return k;
  char *end;
  errno = 0;
  long k = strtol(s, &end, 10);
  if (end != s && !*end && !errno && k >= 0 && k < in->K) return (int)k;
  char list[KNOBS_MAX_FACTORS * 34] = "";
  size_t u = 0;
  for (int q = 0; q < in->K && u < sizeof list; q++)
    u += (size_t)snprintf(list + u, sizeof list - u, "%s%s", q ? ", " : "", in->factor_names[q]);
  cli_usage_error(cmd, "--factor %s: %s has no such factor (%s%s)", s, in->name, in->K ? "its factors: " : "it has none",
                  list);
  return -1;
}

/* --values: n finite numbers as (n,) or (n,1), into *v (malloc'ed); 0 or an exit code. */
static int read_values(const char *cmd, const char *path, int n, double **v) {
  knobs_array a = {0}, d = {0};
  if (knobs_npy_read(path, &a)) return cli_lib_fail(cmd, "cannot read --values");
  int ok = ((a.ndim == 1) || (a.ndim == 2 && a.shape[1] == 1)) && a.shape[0] == n && !knobs_array_convert(&a, KNOBS_F64, &d);
  int r = ok ? 0 : cli_usage_error(cmd, "--values %s: expected %d values, shape (%d,) or (%d, 1), one per input", path, n, n, n);
  if (ok && !(*v = malloc(sizeof(double) * (size_t)n))) r = cli_fail(cmd, "out of memory");
  if (!r) memcpy(*v, d.data, sizeof(double) * (size_t)n);
  knobs_array_free(&a), knobs_array_free(&d);
  return r;
}

/* The orbit of a sequence file: every row, in order. */
static int sequence_orbit(const char *cmd, const orbit_flags *f, knobs_model *m, const knobs_orbit_opts *oo,
                          knobs_data **dp, knobs_orbit **r) {
  if (!cli_data_is_file(f->data))
    return cli_usage_error(cmd, "--data %s is a built-in dataset: give --factor F --index I to sweep one of its "
                           "factors, or a file of the ordered inputs", f->data);
  int rc = cli_open_data(cmd, m, f->data, dp);
  if (rc) return rc;
  const knobs_data_info *in = knobs_data_info_get(*dp);
  if (in->n > 1000000) return cli_usage_error(cmd, "--data %s: %lld inputs; an orbit takes at most 1000000", f->data, (long long)in->n);
  int n = (int)in->n;
  size_t D = (size_t)in->C * in->H * in->W;
  float *x = malloc(sizeof(float) * D * (size_t)(n ? n : 1));
  int64_t *idx = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
  double *v = NULL;
  if (!x || !idx) rc = cli_fail(cmd, "cannot allocate %d inputs", n);
  if (!rc && f->values) rc = read_values(cmd, f->values, n, &v);
  if (!rc && !f->values && (v = malloc(sizeof(double) * (size_t)(n ? n : 1))))
    for (int i = 0; i < n; i++) v[i] = i; /* the position in the sequence */
  if (!rc && !v) rc = cli_fail(cmd, "out of memory");
  for (int i = 0; !rc && i < n; i++) idx[i] = i;
  if (!rc && knobs_data_get(*dp, idx, n, x, NULL)) rc = cli_lib_fail(cmd, "cannot read the inputs");
  if (!rc && knobs_orbit_inputs(m, x, n, v, oo, r)) rc = cli_lib_fail(cmd, "cannot compute the orbit");
  free(x), free(idx), free(v);
  return rc;
}

/* a number for JSON: NaN (undefined) as null */
static const char *jnum(char *buf, size_t n, double x) {
  if (isfinite(x)) snprintf(buf, n, "%.17g", x);
  else snprintf(buf, n, "null");
  return buf;
}

static const char *closure_text(const knobs_orbit *r, const char *mode) {
  if (r->dropped) return "closed: the last input equals the first, which it duplicates (dropped)";
  if (r->closed) return "closed (--closed yes): the step from the last point back to the first counts";
  return strcmp(mode, "no") ? "open: the last input differs from the first" : "open (--closed no)";
}

static char *report_json(const orbit_flags *f, const knobs_data_info *in, const knobs_orbit *r, int n_inputs) {
  size_t cap = 8192 + (size_t)r->n * 160 + (size_t)r->Z * 90;
  char *j = malloc(cap), a[40], b[40], s[600];
  if (!j) return NULL;
  size_t u = 0;
#define PUT(...) u += (size_t)snprintf(j + u, u < cap ? cap - u : 0, __VA_ARGS__)
  PUT("{\n  \"knobs_version\": \"%s\",\n  \"command\": \"orbit\",\n  \"model\": %s,\n", knobs_version(),
      cli_json_str(s, sizeof s, f->model));
  PUT("  \"data\": %s,\n", cli_json_str(s, sizeof s, f->data && !f->factor ? f->data : in->name));
  if (r->factor >= 0) {
    PUT("  \"source\": \"factor sweep\",\n  \"factor\": %s,\n  \"factor_index\": %d,\n  \"index\": %lld,\n",
        cli_json_str(s, sizeof s, in->factor_names[r->factor]), r->factor, (long long)r->index);
    PUT("  \"values_from\": \"the factor's value of each class\",\n");
  } else {
    PUT("  \"source\": \"sequence\",\n  \"values_from\": %s,\n",
        f->values ? cli_json_str(s, sizeof s, f->values) : "\"the position in the sequence (0..n-1)\"");
  }
  PUT("  \"inputs\": %d,\n  \"n\": %d,\n  \"Z\": %d,\n  \"closed\": %s,\n  \"dropped_duplicate\": %s,\n", n_inputs, r->n,
      r->Z, r->closed ? "true" : "false", r->dropped ? "true" : "false");
  PUT("  \"closure\": \"%s\",\n", closure_text(r, f->closed));
  PUT("  \"plane_share\": %s,\n  \"variance\": [%.17g, %.17g],\n  \"variance_total\": %.17g,\n",
      jnum(a, sizeof a, r->plane_share), r->var[0], r->var[1], r->var_total);
  PUT("  \"circle\": {\"fitted\": %s, \"method\": \"%s\",\n", r->circle ? "true" : "false",
      f->no_refine ? "Kasa's algebraic fit" : "Kasa's algebraic fit refined geometrically (Levenberg-Marquardt)");
  PUT("    \"centre\": [%s, %s], ", jnum(a, sizeof a, r->cx), jnum(b, sizeof b, r->cy));
  PUT("\"radius\": %s, ", jnum(a, sizeof a, r->radius));
  PUT("\"residual\": %s, \"refine_steps\": %d,\n", jnum(a, sizeof a, r->residual), r->refine_iters);
  PUT("    \"kasa\": {\"centre\": [%s, %s], ", jnum(a, sizeof a, r->kasa_cx), jnum(b, sizeof b, r->kasa_cy));
  PUT("\"radius\": %s}},\n", jnum(a, sizeof a, r->kasa_radius));
  PUT("  \"winding\": %s,\n", jnum(a, sizeof a, r->winding));
  PUT("  \"max_step\": %s,\n", jnum(a, sizeof a, r->max_step));
  PUT("  \"circular_linear_r2\": %s,\n", jnum(a, sizeof a, r->circlin_r2));
  PUT("  \"unwrapped_angle_corr\": %s,\n  \"mean\": [", jnum(a, sizeof a, r->angle_corr));
  for (int k = 0; k < r->Z; k++) PUT("%s%.17g", k ? ", " : "", r->mean[k]);
  PUT("],\n  \"axes\": [");
  for (int q = 0; q < 2; q++) {
    PUT("%s[", q ? ", " : "");
    for (int k = 0; k < r->Z; k++) PUT("%s%.17g", k ? ", " : "", r->axes[(size_t)q * r->Z + k]);
    PUT("]");
  }
  PUT("],\n  \"points\": [\n");
  for (int i = 0; i < r->n; i++) {
    PUT("    {\"xy\": [%.17g, %.17g], ", r->xy[2 * i], r->xy[2 * i + 1]);
    PUT("\"angle\": %s", jnum(a, sizeof a, r->angle[i]));
    if (r->values) PUT(", \"value\": %s", jnum(a, sizeof a, r->values[i]));
    if (r->classes) PUT(", \"class\": %d", r->classes[i]);
    PUT("}%s\n", i + 1 < r->n ? "," : "");
  }
  PUT("  ]\n}\n");
#undef PUT
  if (u >= cap) {
    free(j);
    return NULL;
  }
  return j;
}

/* orbit.json and orbit.png into dir (created if missing), together or not at all. */
static int write_outputs(const char *cmd, const orbit_flags *f, const knobs_orbit *r, const char *json) {
  int made, rc = cli_out_dir(cmd, f->out, &made);
  if (rc) return rc;
  cli_outputs outs = {0};
  char path[1024];
  snprintf(path, sizeof path, "%s/orbit.png", f->out);
  const char *tmp = cli_out_add(&outs, path);
  if (!tmp) rc = cli_usage_error(cmd, "--out %s: the path is too long", f->out);
  else if (knobs_orbit_png(r, tmp, f->size)) rc = cli_lib_fail(cmd, "cannot draw orbit.png (nothing written)");
  snprintf(path, sizeof path, "%s/orbit.json", f->out);
  if (!rc) rc = cli_out_text(cmd, &outs, path, json);
  if (!rc) rc = cli_out_commit(cmd, &outs);
  else cli_out_abort(&outs);
  if (rc && made) rmdir(f->out);
  return rc;
}

static void print_report(const orbit_flags *f, const knobs_data_info *in, const knobs_orbit *r, int n_inputs) {
  const char *vname = r->factor >= 0 ? in->factor_names[r->factor] : f->values ? "the values" : "the position";
  if (r->factor >= 0)
    printf("orbit of observation %lld of %s along %s: %d renderings, one per class\n", (long long)r->index, in->name,
           vname, n_inputs);
  else
    printf("orbit of the %d inputs of %s, in order\n", n_inputs, f->data);
  printf("%s; %d points of %d latents\n\n", closure_text(r, f->closed), r->n, r->Z);
  printf("  %-22s %9.4f   variance in the top two principal components\n", "plane share", r->plane_share);
  if (r->circle) {
    printf("  %-22s %9.4f   centre (%.3g, %.3g) in the plane%s\n", "circle radius", r->radius, r->cx, r->cy,
           f->no_refine ? ", Kasa's fit" : "");
    printf("  %-22s %9.4f   RMS radial distance / radius\n", "relative residual", r->residual);
    printf("  %-22s %9.4f   turns around the centre (%s; largest step %.3f rad)\n", "winding", r->winding,
           r->closed ? "closed" : "open", r->max_step);
  } else {
    printf("  %-22s %9s   the points are collinear in the plane: no circle, nothing to wind around\n", "circle", "none");
  }
  if (!isnan(r->circlin_r2) || !isnan(r->angle_corr)) {
    printf("  %-22s %9.4f   Mardia, angle vs %s\n", "circular-linear R^2", r->circlin_r2, vname);
    printf("  %-22s %9.4f   Pearson, unwrapped angle vs %s\n", "unwrapped angle corr", r->angle_corr, vname);
  }
}

int cmd_orbit(int argc, char **argv) {
  const char *cmd = "orbit";
  orbit_flags f = {.index = -1, .closed = "auto", .size = 512};
  long index = -1;
  cli_opt o[] = {
      {"--model", OPT_STR, &f.model, 0, 0, "RUN", "checkpoint or run folder", 0},
      {"--factor", OPT_STR, &f.factor, 0, 0, "F", "sweep this factor (name or number) over all its classes", 0},
      {"--index", OPT_LONG, &index, 0, 1e15, "I", "with --factor (required): the observation whose other factors are kept", 0},
      {"--data", OPT_STR, &f.data, 0, 0, "D", "with --factor: the dataset (default: the model's); without: a file of "
       "the ordered inputs (.npy (n,C,H,W), ...)", 0},
      {"--values", OPT_STR, &f.values, 0, 0, "PATH", "a sequence's values .npy (n) (default: the position 0..n-1)", 0},
      {"--closed", OPT_STR, &f.closed, 0, 0, "auto|yes|no", "count the step from the last point back to the first "
       "(auto: when the last input equals the first, which is dropped)", 0},
      {"--no-refine", OPT_FLAG, &f.no_refine, 0, 0, NULL, "keep Kasa's algebraic circle (no geometric refinement)", 0},
      {"--size", OPT_INT, &f.size, 64, 4096, "N", "orbit.png is N x N pixels", 0},
      {"--threads", OPT_INT, &f.threads, 0, 1024, "N", "threads (0: as trained)", 0},
      {"--out", OPT_STR, &f.out, 0, 0, "DIR", "folder for orbit.json and orbit.png", 0},
  };
  const int no = (int)(sizeof o / sizeof o[0]);
  int rc = cli_parse(cmd, "--model RUN (--factor F --index I | --data SEQ.npy) --out DIR [options]", argc, argv, o,
                     no, NULL, 0, NULL);
  if (rc) return rc < 0 ? 0 : rc;
  f.index = index;
  if (!f.model) return cli_usage_error(cmd, "--model RUN is required");
  if (!f.out) return cli_usage_error(cmd, "--out DIR is required");
  if (!f.factor && !f.data) return cli_usage_error(cmd, "give --factor F --index I (sweep a factor) or --data SEQ.npy");
  if (f.factor && f.index < 0) return cli_usage_error(cmd, "--factor needs --index I (the observation to sweep)");
  if (!f.factor && cli_find(o, no, "--index")->seen) return cli_usage_error(cmd, "--index goes with --factor");
  if (f.factor && f.values) return cli_usage_error(cmd, "--values is for a sequence; a factor sweep uses the factor's values");
  knobs_orbit_opts oo;
  knobs_orbit_opts_default(&oo);
  oo.refine = !f.no_refine;
  if (!strcmp(f.closed, "auto")) oo.closed = KNOBS_ORBIT_AUTO;
  else if (!strcmp(f.closed, "yes")) oo.closed = KNOBS_ORBIT_CLOSED;
  else if (!strcmp(f.closed, "no")) oo.closed = KNOBS_ORBIT_OPEN;
  else return cli_usage_error(cmd, "--closed %s: use auto, yes or no", f.closed);
  knobs_model *m = NULL;
  knobs_data *d = NULL;
  knobs_orbit *r = NULL;
  char *json = NULL;
  if ((rc = cli_open_model(cmd, f.model, f.threads, &m))) return rc;
  if (f.factor) {
    if ((rc = cli_open_data(cmd, m, f.data, &d))) goto out;
    int k = find_factor(cmd, knobs_data_info_get(d), f.factor);
    if (k < 0) rc = 1;
    else if (knobs_orbit_factor(m, d, f.index, k, &oo, &r)) rc = cli_lib_fail(cmd, "cannot compute the orbit");
  } else {
    rc = sequence_orbit(cmd, &f, m, &oo, &d, &r);
  }
  if (rc) goto out;
  const knobs_data_info *in = knobs_data_info_get(d);
  int n_inputs = r->factor >= 0 ? in->factor_sizes[r->factor] : (int)in->n;
  if (!(json = report_json(&f, in, r, n_inputs))) {
    rc = cli_fail(cmd, "cannot format orbit.json");
    goto out;
  }
  if ((rc = write_outputs(cmd, &f, r, json))) goto out;
  print_report(&f, in, r, n_inputs);
  if (r->circle && r->max_step > M_PI / 2)
    fprintf(stderr, "knobs: %s: warning: an angle step of %.2f rad (> pi/2): the orbit is coarse around its centre "
            "and the winding may be miscounted\n", cmd, r->max_step);
  fprintf(stderr, "wrote %s/: orbit.json, orbit.png\n", f.out);
out:
  free(json);
  knobs_orbit_free(r);
  knobs_data_free(d);
  knobs_model_free(m);
  return rc;
}
