/* cmd_edit.c: `knobs edit`: counterfactual edits. Encode observations (a dataset index, a
 * range of indices, or a PNG), change only the named knobs (--set K=V: to code value V; --add
 * K=D: by D; --factor F --to V: to the code whose calibrated value of factor F is V, from
 * knobs.json), decode, and write a grid: a row per observation of input, reconstruction, edit,
 * and (with --attribute) the latent-arithmetic edit along the attribute vector of labelled rows.
 * `--score` instead measures, with the oracle of a built-in dataset, how trustworthy each knob
 * is (target fidelity and specificity over N edits). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static const char *const png_ext[] = {".png", NULL}, *const json_ext[] = {".json", NULL};

/* "K=V" into the knob index and the number; 0 or an exit code (reported). */
static int parse_op(const char *cmd, const char *flag, const char *s, const knobs_knobs *k, int Z, knobs_edit_op *op,
                    knobs_edit_mode mode) {
  const char *eq = strchr(s, '=');
  if (!eq || eq == s || !eq[1]) return cli_usage_error(cmd, "%s '%s': expected KNOB=VALUE", flag, s);
  char key[64];
  snprintf(key, sizeof key, "%.*s", (int)(eq - s), s);
  char *end;
  errno = 0;
  double v = strtod(eq + 1, &end);
  if (end == eq + 1 || *end || errno || !isfinite(v))
    return cli_usage_error(cmd, "%s '%s': '%s' is not a finite number", flag, s, eq + 1);
  int z = knobs_knobs_find(k, Z, key);
  if (z < 0) return cli_usage_error(cmd, "%s '%s': %s", flag, s, knobs_last_error());
  op->latent = z, op->mode = mode, op->value = v;
  return 0;
}

/* A PNG as the model's input (C,H,W) in [0,1]; the size must be the model's. */
static int read_png(const char *cmd, const char *path, int C, int H, int W, float *x) {
  uint8_t *px;
  int w, h, ch;
  if (knobs_png_read(path, &px, &w, &h, &ch)) return cli_lib_fail(cmd, "cannot read --image");
  int r = 0;
  if (w != W || h != H) {
    r = cli_usage_error(cmd, "--image %s is %dx%d pixels; the model takes %dx%d (resize it first)", path, w, h, W, H);
  } else if (!((C == 1 && (ch == 1 || ch == 2)) || (C == 3 && (ch == 3 || ch == 4)))) {
    r = cli_usage_error(cmd, "--image %s has %d channel%s; the model takes %s images", path, ch, ch == 1 ? "" : "s",
                        C == 1 ? "gray (1-channel)" : "RGB (3-channel)");
  } else {
    for (int c = 0; c < C; c++)
      for (int i = 0; i < H * W; i++) x[(size_t)c * H * W + i] = px[(size_t)i * ch + c] / 255.0f;
  }
  knobs_free(px);
  return r;
}

static int score(const char *cmd, knobs_model *m, knobs_data *d, const knobs_knobs *k, int n, double delta,
                 uint64_t seed, const char *json) {
  int Z = knobs_model_code_dim(m);
  knobs_edit_score_row *rows = calloc((size_t)Z, sizeof *rows);
  if (!rows) return cli_fail(cmd, "out of memory");
  knobs_edit_score_opts so;
  knobs_edit_score_opts_default(&so);
  so.n_edits = n, so.delta = delta, so.seed = seed;
  int nr = 0, r = 0;
  fprintf(stderr, "knobs %s: scoring %d edits per named knob ...\n", cmd, n);
  if (knobs_edit_score(m, d, k, &so, rows, &nr)) {
    free(rows);
    return cli_lib_fail(cmd, "scoring failed");
  }
  const knobs_data_info *in = knobs_data_info_get(d);
  printf("edits of %g code standard deviations, %d per knob, toward the side of the factor with more room\n", delta, n);
  printf("%-7s %-16s %-12s %9s %9s %12s %12s\n", "latent", "name", "factor", "fidelity", "moved", "specificity",
         "recon exact");
  for (int i = 0; i < nr; i++) {
    char lab[64];
    knobs_knobs_label(k, rows[i].latent, lab, sizeof lab);
    printf("z%-6d %-16s %-12s %9.3f %9.2f %12.3f %12.3f\n", rows[i].latent, lab, in->factor_names[rows[i].factor],
           rows[i].fidelity, rows[i].moved, rows[i].specificity, rows[i].recon_exact);
  }
  if (!nr) printf("(no knob tracks a factor: nothing to score)\n");
  if (json) {
    char *buf = malloc(1024 + (size_t)nr * 1200);
    size_t u = 0;
    if (!buf) r = cli_fail(cmd, "out of memory");
    else {
      char e1[400], e2[400];
      u += (size_t)sprintf(buf + u, "{\"data\": %s, \"n_edits\": %d, \"delta\": %.17g, \"seed\": %llu, \"knobs\": [",
                           cli_json_str(e1, sizeof e1, in->name), n, delta, (unsigned long long)seed);
      for (int i = 0; i < nr; i++) {
        char lab[64];
        knobs_knobs_label(k, rows[i].latent, lab, sizeof lab);
        u += (size_t)sprintf(buf + u, "%s\n  {\"latent\": %d, \"name\": %s, \"factor\": %s, \"n\": %d, \"fidelity\": %.6f, "
                             "\"moved\": %.6f, \"specificity\": %.6f, \"recon_exact\": %.6f}", i ? "," : "", rows[i].latent,
                             cli_json_str(e1, sizeof e1, lab), cli_json_str(e2, sizeof e2, in->factor_names[rows[i].factor]),
                             rows[i].n, rows[i].fidelity, rows[i].moved, rows[i].specificity, rows[i].recon_exact);
      }
      u += (size_t)sprintf(buf + u, "]}\n");
      if (!(r = cli_write_text(cmd, json, buf))) fprintf(stderr, "wrote %s\n", json);
      free(buf);
    }
  }
  free(rows);
  return r;
}

int cmd_edit(int argc, char **argv) {
  const char *cmd = "edit", *model = NULL, *data = NULL, *out = NULL, *image = NULL, *indices = NULL, *factor = NULL,
             *attr = NULL, *attr_name = "attribute", *json = NULL;
  cli_multi sets = {0}, adds = {0};
  long index = 0;
  double to = NAN, amount = 1, delta = 2;
  int threads = 0, do_score = 0, n_score = 200;
  uint64_t seed = 0;
  cli_opt o[] = {
      {"--model", OPT_STR, &model, 0, 0, "RUN", "checkpoint or run folder", 0},
      {"--data", OPT_STR, &data, 0, 0, "D", "dataset (default: the model's)", 0},
      {"--index", OPT_LONG, &index, 0, 9.0e15, "I", "observation to edit", 0},
      {"--indices", OPT_STR, &indices, 0, 0, "LIST", "observations I,J,A:B (A:B is A..B-1; at most 64), a row each", 0},
      {"--image", OPT_STR, &image, 0, 0, "PNG", "edit this image (the model's size and channels)", 0},
      {"--set", OPT_MULTI, &sets, 0, 0, "KNOB=V", "set a knob (latent number or name) to code value V", 0},
      {"--add", OPT_MULTI, &adds, 0, 0, "KNOB=D", "move a knob by D code units", 0},
      {"--factor", OPT_STR, &factor, 0, 0, "F", "move the knob of factor F ... (needs knobs.json)", 0},
      {"--to", OPT_DOUBLE, &to, -1e300, 1e300, "V", "... until its calibrated factor value is V", 0},
      {"--attribute", OPT_STR, &attr, 0, 0, "LABELS", ".npy of 0/1 labels of the data's first rows: edit along "
       "mean code(1) - mean code(0)", 0},
      {"--name", OPT_STR, &attr_name, 0, 0, "S", "the attribute's name (for the report)", 0},
      {"--amount", OPT_DOUBLE, &amount, -1e6, 1e6, "A", "attribute edit: code + A * vector", 0},
      {"--out", OPT_STR, &out, 0, 0, "PATH", "output .png: input | reconstruction | edit [| attribute edit]", 0},
      {"--score", OPT_FLAG, &do_score, 0, 0, NULL, "score every named knob with the dataset's oracle instead", 0},
      {"--n", OPT_INT, &n_score, 1, 1000000, "N", "--score: edits per knob", 0},
      {"--delta", OPT_DOUBLE, &delta, 1e-6, 100, "X", "--score: edit size in code standard deviations", 0},
      {"--seed", OPT_U64, &seed, 0, 0, "S", "--score: seed of the draws", 0},
      {"--json", OPT_STR, &json, 0, 0, "PATH", "--score: also write the table as JSON", 0},
      {"--threads", OPT_INT, &threads, 0, 1024, "N", "threads (0: as trained)", 0},
  };
  const int no = (int)(sizeof o / sizeof o[0]);
  int r = cli_parse(cmd, "--model RUN (--index I | --indices I,A:B,... | --image PNG) --set KNOB=V ... --out edit.png\n"
                    "       knobs edit --model RUN --score [--n N] [--json PATH]", argc, argv, o, no, NULL, 0, NULL);
  if (r) return r < 0 ? 0 : r;
  int has_to = cli_find(o, no, "--to")->seen, has_index = cli_find(o, no, "--index")->seen;
  if (!!factor != has_to) return cli_usage_error(cmd, "--factor F and --to V go together");
  if (has_index + !!indices + !!image > 1) return cli_usage_error(cmd, "give one of --index, --indices and --image");
  if (json && !do_score) return cli_usage_error(cmd, "--json goes with --score");
  if (json && (r = cli_check_ext(cmd, "--json", json, json_ext))) return r;
  if (!do_score) {
    if (!out) return cli_usage_error(cmd, "--out PATH is required");
    if ((r = cli_check_ext(cmd, "--out", out, png_ext))) return r;
    if (!sets.n && !adds.n && !factor && !attr) return cli_usage_error(cmd, "nothing to edit: give --set, --add, --factor/--to or --attribute");
  }
  /* the observations: --index I, or --indices as a comma list of I and A:B (64 at most) */
  int64_t idx[64];
  int nidx = 1;
  idx[0] = index;
  if (indices) {
    nidx = 0;
    const char *p = indices;
    for (;;) {
      char *e1, *e2 = NULL;
      errno = 0;
      long a = strtol(p, &e1, 10), b = a + 1;
      if (e1 != p && *e1 == ':') b = strtol(e1 + 1, &e2, 10), e1 = e2;
      if (e1 == p || (*e1 && *e1 != ',') || errno || a < 0 || b <= a || b - a > 64 - nidx)
        return cli_usage_error(cmd, "--indices '%s': expected a comma list of I and A:B (A < B), 64 observations at most",
                               indices);
      for (long i = a; i < b; i++) idx[nidx++] = i;
      if (!*e1) break;
      p = e1 + 1;
    }
  }
  knobs_model *m;
  knobs_data *d;
  if ((r = cli_open_model_data(cmd, model, threads, data, &m, &d))) return r;
  const knobs_config *cfg = knobs_model_config(m);
  int Z = knobs_model_code_dim(m), C = (int)knobs_config_number(cfg, "C"), H = (int)knobs_config_number(cfg, "H"),
      W = (int)knobs_config_number(cfg, "W");
  const knobs_data_info *in = knobs_data_info_get(d);
  knobs_knobs *k = cli_read_knobs(cmd, model, Z);
  int n = nidx, cols = attr ? 4 : 3;
  size_t D = (size_t)C * H * W;
  knobs_edit_op ops[2 * CLI_MAX_MULTI + 1];
  int nops = 0;
  float *x = NULL, *tiles = NULL, *av = NULL, *za = NULL;
  if (do_score) {
    r = score(cmd, m, d, k, n_score, delta, seed, json);
    goto out;
  }
  if ((H == 1 && W == 1) || (C != 1 && C != 3)) {
    r = cli_fail(cmd, "the model's data are not 1- or 3-channel images; edit codes with 'knobs encode' and NumPy");
    goto out;
  }
  for (int i = 0; !r && i < sets.n; i++) r = parse_op(cmd, "--set", sets.v[i], k, Z, &ops[nops++], KNOBS_EDIT_SET);
  for (int i = 0; !r && i < adds.n; i++) r = parse_op(cmd, "--add", adds.v[i], k, Z, &ops[nops++], KNOBS_EDIT_ADD);
  if (!r && factor) {
    int z = knobs_knobs_find(k, Z, factor);
    if (z < 0) r = cli_usage_error(cmd, "--factor %s: %s", factor, knobs_last_error());
    else if (!k || k->knobs[z].n_knots < 2)
      r = cli_usage_error(cmd, "--factor %s: latent %d has no calibration: %s", factor, z,
                          in->K ? "run 'knobs name' first" : "the data have no ground-truth factors to calibrate against");
    else ops[nops++] = (knobs_edit_op){z, KNOBS_EDIT_FACTOR, to};
  }
  if (r) goto out;
  x = malloc(sizeof(float) * D * (size_t)n);
  tiles = malloc(sizeof(float) * D * (size_t)n * cols);
  av = malloc(sizeof(float) * (size_t)Z);
  za = malloc(sizeof(float) * (size_t)Z * n);
  if (!x || !tiles || !av || !za) {
    r = cli_fail(cmd, "out of memory");
    goto out;
  }
  if (image) {
    if ((r = read_png(cmd, image, C, H, W, x))) goto out;
  } else {
    for (int i = 0; i < n; i++)
      if (idx[i] >= in->n) {
        r = cli_usage_error(cmd, "observation %lld is out of range: %s has %lld", (long long)idx[i], in->name, (long long)in->n);
        goto out;
      }
    if (knobs_data_get(d, idx, n, x, NULL)) {
      r = cli_lib_fail(cmd, "cannot read the observations");
      goto out;
    }
  }
  /* the attribute vector from the labelled rows (before any picture is made) */
  if (attr) {
    knobs_array lab = {0}, l32 = {0};
    if (knobs_npy_read(attr, &lab)) {
      r = cli_lib_fail(cmd, "cannot read --attribute");
      goto out;
    }
    int64_t nl = lab.shape[0];
    int okshape = (lab.ndim == 1 || (lab.ndim == 2 && lab.shape[1] == 1)) && nl >= 2 && nl <= in->n;
    if (!okshape) {
      r = cli_usage_error(cmd, "--attribute %s: expected labels of shape (N,) or (N,1) with 2 <= N <= %lld (the data's rows), got %d dims",
                          attr, (long long)in->n, lab.ndim);
      knobs_array_free(&lab);
      goto out;
    }
    for (int64_t i = 0; !r && i < nl; i++) {
      double v = knobs_array_get(&lab, i);
      if (!(v == 0 || v == 1)) r = cli_usage_error(cmd, "--attribute %s: row %lld is %g, not 0 or 1", attr, (long long)i, v);
    }
    if (!r && knobs_array_convert(&lab, KNOBS_I32, &l32)) r = cli_lib_fail(cmd, "--attribute");
    knobs_array_free(&lab);
    float *codes = r ? NULL : malloc(sizeof(float) * (size_t)nl * Z), *xb = r ? NULL : malloc(sizeof(float) * D * 256);
    if (!r && (!codes || !xb)) r = cli_fail(cmd, "out of memory for %lld codes", (long long)nl);
    for (int64_t i = 0; !r && i < nl; i += 256) {
      int b = (int)(nl - i < 256 ? nl - i : 256);
      int64_t rows[256];
      for (int j = 0; j < b; j++) rows[j] = i + j;
      if (knobs_data_get(d, rows, b, xb, NULL) || knobs_model_encode(m, xb, b, codes + (size_t)i * Z, NULL))
        r = cli_lib_fail(cmd, "cannot encode the labelled rows");
    }
    if (!r && knobs_attribute_vector(codes, l32.data, (int)nl, Z, av)) r = cli_lib_fail(cmd, "--attribute");
    free(codes), free(xb);
    knobs_array_free(&l32);
    if (r) goto out;
  }
  /* input | reconstruction | edit [| attribute edit] */
  float *rec = tiles, *ed = tiles + D * (size_t)n, *ae = tiles + 2 * D * (size_t)n;
  float *zed = malloc(sizeof(float) * (size_t)Z * n);
  if (!zed || knobs_edit(m, k, ops, nops, x, n, rec, ed, zed)) {
    r = zed ? cli_lib_fail(cmd, "edit failed") : cli_fail(cmd, "out of memory");
    free(zed);
    goto out;
  }
  if (attr) {
    if (knobs_model_encode(m, x, n, za, NULL)) r = cli_lib_fail(cmd, "encode failed");
    for (int i = 0; !r && i < n; i++)
      for (int j = 0; j < Z; j++) za[(size_t)i * Z + j] += (float)(amount * av[j]);
    if (!r && knobs_model_decode(m, za, n, ae)) r = cli_lib_fail(cmd, "decode failed");
  }
  /* rows of the grid: reorder the column blocks into rows */
  float *grid = r ? NULL : malloc(sizeof(float) * D * (size_t)n * cols);
  if (!r && !grid) r = cli_fail(cmd, "out of memory");
  for (int i = 0; !r && i < n; i++) {
    memcpy(grid + ((size_t)i * cols) * D, x + (size_t)i * D, sizeof(float) * D);
    for (int c = 1; c < cols; c++) memcpy(grid + ((size_t)i * cols + c) * D, tiles + ((size_t)(c - 1) * n + i) * D, sizeof(float) * D);
  }
  uint8_t *px = NULL;
  int gw, gh;
  if (!r && (knobs_image_grid(grid, n * cols, C, H, W, cols, 2, 0.5f, &px, &gw, &gh) || knobs_png_write(out, px, gw, gh, C)))
    r = cli_lib_fail(cmd, "cannot write the grid");
  knobs_free(px);
  free(grid);
  if (!r) {
    printf("wrote %s: %d row%s of input | reconstruction | edit%s\n", out, n, n == 1 ? "" : "s", attr ? " | attribute edit" : "");
    float *z0 = malloc(sizeof(float) * (size_t)Z);
    if (z0 && !knobs_model_encode(m, x, 1, z0, NULL))
      for (int i = 0; i < nops; i++) {
        char lab[64];
        knobs_knobs_label(k, ops[i].latent, lab, sizeof lab);
        int z = ops[i].latent;
        printf("  z%d (%s): %.3f -> %.3f%s", z, lab, z0[z], zed[z], n > 1 ? " (first row)" : "");
        if (k && k->knobs[z].n_knots >= 2)
          printf("   calibrated %s: %.3g -> %.3g", k->knobs[z].factor, knobs_knob_value(&k->knobs[z], z0[z]),
                 knobs_knob_value(&k->knobs[z], zed[z]));
        printf("\n");
      }
    if (attr) {
      double nv = 0;
      for (int j = 0; j < Z; j++) nv += (double)av[j] * av[j];
      printf("  attribute '%s': code + %g * vector (norm %.3f; largest components:", attr_name, amount, sqrt(nv));
      for (int t = 0; t < 3 && t < Z; t++) { /* the three largest |v_j| (av is not needed after) */
        int best = 0;
        for (int j = 1; j < Z; j++) if (fabsf(av[j]) > fabsf(av[best])) best = j;
        char lab[64];
        printf(" z%d %s %+.2f", best, knobs_knobs_label(k, best, lab, sizeof lab), av[best]);
        av[best] = 0;
      }
      printf(")\n");
    }
    free(z0);
  }
  free(zed);
out:
  free(x), free(tiles), free(av), free(za);
  knobs_knobs_free(k);
  knobs_data_free(d);
  knobs_model_free(m);
  return r;
}
