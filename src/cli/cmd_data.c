/* cmd_data.c: `knobs data`, looking at datasets without a model:
 *   knobs data list                        the built-in datasets and the files knobs reads
 *   knobs data info DATASET                shape, size, factors (sizes and values), notes
 *   knobs data show DATASET --out g.png    one row per factor, varying only that factor
 *   knobs data export DATASET --out x.npy [--n N] [--factors f.npy] [--values v.npy]
 * The dataset options of `knobs train` (--data-factors, --obs-dim, --noise, --factor-dist,
 * --seed) apply here too, so a run's data can be looked at exactly as it was trained on. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

int cmd_data(int argc, char **argv); /* listed in main.c's command table */

typedef struct {
  const char *factors, *factor_dist;
  int obs_dim, threads;
  double noise;
  uint64_t seed;
} data_flags;

#define DATA_OPTS(df)                                                                                     \
  {"--data-factors", OPT_STR, &(df).factors, 0, 0, "FILE", "factors/labels of user data (.npy, .csv, x.npz:member)", 0}, \
  {"--obs-dim", OPT_INT, &(df).obs_dim, 0, 4096, "N", "physics: observed channels (0: 10)", 0},             \
  {"--noise", OPT_DOUBLE, &(df).noise, -1, 100, "X", "physics: relative noise (-1: 0.05)", 0},              \
  {"--factor-dist", OPT_STR, &(df).factor_dist, 0, 0, "D", "physics: uniform | laplace | gauss", 0},        \
  {"--seed", OPT_U64, &(df).seed, 0, 0, "S", "seed (physics mixing, draws)", 0},                            \
  {"--threads", OPT_INT, &(df).threads, 1, 1024, "N", "threads", 0}

static void flags_default(data_flags *df) {
  memset(df, 0, sizeof *df);
  df->noise = -1;
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  df->threads = n > 0 ? (int)(n < 16 ? n : 16) : 1;
}

static int open_data(const char *cmd, const char *spec, const data_flags *df, knobs_data **d) {
  if (!spec) return cli_usage_error(cmd, "which dataset? (see 'knobs data list')");
  knobs_data_opts o;
  knobs_data_opts_default(&o);
  o.threads = df->threads;
  o.seed = df->seed;
  o.factors = df->factors;
  o.obs_dim = df->obs_dim;
  o.noise = df->noise;
  o.factor_dist = df->factor_dist;
  if (knobs_data_open(spec, &o, d)) return cli_lib_fail(cmd, "cannot open the data");
  return 0;
}

static void print_note(const knobs_data_info *in) {
  if (in->note[0]) printf("note: %s\n", in->note);
}

/* ---- list ----------------------------------------------------------------------------- */

static int data_list(int argc, char **argv) {
  int r = cli_parse("data list", "", argc, argv, NULL, 0, NULL, 0, NULL);
  if (r) return r < 0 ? 0 : r;
  printf("built in:\n");
  for (const char *const *n = knobs_data_names(); *n; n++) printf("  %-18s %s\n", *n, knobs_data_describe(*n));
  printf("\nfiles (pass the path as DATASET):\n");
  for (const char *const *t = knobs_data_file_types(); *t; t++) printf("  %s\n", *t);
  return 0;
}

/* ---- info ----------------------------------------------------------------------------- */

static int data_info(int argc, char **argv) {
  const char *cmd = "data info", *pos[1] = {NULL};
  data_flags df;
  flags_default(&df);
  cli_opt o[] = {DATA_OPTS(df)};
  int np = 0, r = cli_parse(cmd, "DATASET [options]", argc, argv, o, (int)(sizeof o / sizeof o[0]), pos, 1, &np);
  if (r) return r < 0 ? 0 : r;
  knobs_data *d;
  if ((r = open_data(cmd, pos[0], &df, &d))) return r;
  const knobs_data_info *in = knobs_data_info_get(d);
  printf("%s\n", in->name);
  if (in->is_image) printf("  images      %d x %d, %d channel%s, values in [0,1]%s\n", in->H, in->W, in->C, in->C > 1 ? "s" : "",
                           in->binary ? " (binary)" : "");
  else printf("  vectors     %d values each\n", in->C);
  printf("  size        %lld observations\n", (long long)in->n);
  printf("  render      %s\n", in->has_render ? "any factor combination" : "no (observations by index only)");
  if (in->K == 0) printf("  factors     none\n");
  for (int k = 0; k < in->K; k++) {
    int sz = in->factor_sizes[k];
    printf("  factor %-2d   %-18s %4d %s, values %.4g .. %.4g%s\n", k, in->factor_names[k], sz, sz == 1 ? "class" : "classes",
           knobs_data_factor_value(d, k, 0), knobs_data_factor_value(d, k, sz - 1),
           in->factor_continuous[k] ? " (bins of a continuous value)" : "");
  }
  double *A = malloc(sizeof(double) * (size_t)in->C * (in->K ? in->K : 1));
  if (A && in->K && knobs_data_mixing(d, A) == KNOBS_OK) {
    printf("  mixing matrix A (%d x %d), x = A f + noise:\n", in->C, in->K);
    for (int i = 0; i < in->C && i < 16; i++) {
      printf("   ");
      for (int k = 0; k < in->K; k++) printf(" %8.4f", A[i * in->K + k]);
      printf("\n");
    }
    if (in->C > 16) printf("    ... (%d more rows)\n", in->C - 16);
  }
  free(A);
  print_note(in);
  knobs_data_free(d);
  return 0;
}

/* ---- show ----------------------------------------------------------------------------- */

/* Vectors drawn as bar charts (1 x 32 x W gray tiles): bars up or down from the middle line,
 * scaled by the largest |value| of all of them. */
static float *bars(const float *x, int n, int C, int *W) {
  int w = C * 4 < 32 ? 32 : C * 4 > 256 ? 256 : C * 4;
  float *t = malloc(sizeof(float) * (size_t)n * 32 * w);
  if (!t) return NULL;
  double mx = 1e-12;
  for (size_t i = 0; i < (size_t)n * C; i++) mx = fmax(mx, fabs(x[i]));
  for (int i = 0; i < n; i++) {
    float *im = t + (size_t)i * 32 * w;
    for (int p = 0; p < 32 * w; p++) im[p] = 0.92f;
    for (int px = 0; px < w; px++) {
      int c = (int)((long)px * C / w);
      if (C * 4 <= w && px % 4 == 3) continue; /* gaps between bars when they are wide enough */
      double v = x[(size_t)i * C + c] / mx;
      int h = (int)lround(fabs(v) * 15);
      for (int k = 0; k <= h; k++) im[(v >= 0 ? 16 - k : 16 + k) * w + px] = 0.15f;
    }
    for (int px = 0; px < w; px++) im[16 * w + px] = fminf(im[16 * w + px], 0.55f);
  }
  *W = w;
  return t;
}

static int data_show(int argc, char **argv) {
  const char *cmd = "data show", *out = NULL, *pos[1] = {NULL};
  data_flags df;
  flags_default(&df);
  int cols = 10;
  long index = -1;
  cli_opt o[] = {
      {"--out", OPT_STR, &out, 0, 0, "PATH", "output .png", 0},
      {"--cols", OPT_INT, &cols, 2, 64, "N", "columns: classes shown per factor", 0},
      {"--index", OPT_LONG, &index, -1, 9.0e15, "I", "start from observation I (-1: factors drawn with --seed)", 0},
      DATA_OPTS(df),
  };
  int np = 0, r = cli_parse(cmd, "DATASET --out grid.png [options]", argc, argv, o, (int)(sizeof o / sizeof o[0]), pos, 1, &np);
  if (r) return r < 0 ? 0 : r;
  if (!out) return cli_usage_error(cmd, "--out PATH is required");
  knobs_data *d;
  if ((r = open_data(cmd, pos[0], &df, &d))) return r;
  const knobs_data_info *in = knobs_data_info_get(d);
  int K = in->K, rows = K > 0 ? K : cols;
  size_t D = (size_t)in->C * in->H * in->W;
  int n = rows * cols;
  float *x = calloc((size_t)n * D, sizeof(float));
  int32_t *f = calloc((size_t)n * (K ? K : 1), sizeof(int32_t));
  int32_t *base = calloc(K ? (size_t)K : 1, sizeof(int32_t));
  char *have = calloc((size_t)n, 1);
  float *tiles = NULL;
  uint8_t *g = NULL;
  if (!x || !f || !base || !have) {
    r = cli_fail(cmd, "out of memory");
    goto done;
  }
  if (index >= in->n) {
    r = cli_fail(cmd, "--index %ld is out of range 0..%lld", index, (long long)in->n - 1);
    goto done;
  }
  knobs_status s = KNOBS_OK;
  const char *how = NULL;
  if (K > 0 && in->has_render) {
    how = "each row varies one factor, the others stay fixed";
    if (index >= 0) knobs_data_factors_of(d, index, base);
    else s = knobs_data_sample_factors(d, 1, df.seed, 0, base);
    for (int k = 0; k < K && !s; k++) {
      int sz = in->factor_sizes[k], m = sz < cols ? sz : cols;
      for (int j = 0; j < m; j++) {
        int32_t *v = f + (size_t)(k * cols + j) * K;
        memcpy(v, base, sizeof(int32_t) * (size_t)K);
        v[k] = m == 1 ? 0 : (int32_t)((long)j * (sz - 1) / (m - 1));
        have[k * cols + j] = 1;
      }
    }
    for (int i = 0; i < n && !s; i++) /* render tile by tile: some tiles stay blank */
      if (have[i]) s = knobs_data_render(d, f + (size_t)i * K, 1, x + (size_t)i * D);
  } else if (K > 0) {
    /* no renderer: for each factor, the first observations of evenly spaced classes */
    how = "each row shows examples of one factor's classes (other factors vary: this data cannot be rendered)";
    int left = 0;
    for (int k = 0; k < K; k++) left += in->factor_sizes[k] < cols ? in->factor_sizes[k] : cols;
    int64_t idx[256];
    float *buf = malloc(sizeof(float) * D * 256);
    int32_t *fb = malloc(sizeof(int32_t) * 256 * (size_t)K);
    if (!buf || !fb) {
      free(buf), free(fb);
      r = cli_fail(cmd, "out of memory");
      goto done;
    }
    for (int64_t i0 = 0; i0 < in->n && left > 0 && !s; i0 += 256) {
      int m = (int)(in->n - i0 < 256 ? in->n - i0 : 256);
      for (int j = 0; j < m; j++) idx[j] = i0 + j;
      if ((s = knobs_data_get(d, idx, m, buf, fb))) break;
      for (int j = 0; j < m; j++)
        for (int k = 0; k < K; k++) {
          int sz = in->factor_sizes[k], mm = sz < cols ? sz : cols, c = fb[j * K + k];
          for (int t = 0; t < mm; t++) {
            int want = mm == 1 ? 0 : (int)((long)t * (sz - 1) / (mm - 1));
            if (want == c && !have[k * cols + t]) {
              have[k * cols + t] = 1, left--;
              memcpy(x + (size_t)(k * cols + t) * D, buf + (size_t)j * D, sizeof(float) * D);
            }
          }
        }
    }
    free(buf), free(fb);
  } else {
    how = "random observations (the data has no factors)";
    s = knobs_data_draw(d, n, df.seed, 0, x, NULL);
    memset(have, 1, (size_t)n);
  }
  if (s) {
    r = cli_lib_fail(cmd, "cannot draw the observations");
    goto done;
  }
  int C = in->C, H = in->H, W = in->W;
  const float *img = x;
  const float blank = 1.0f; /* empty tiles take the padding colour */
  if (!in->is_image) {
    if (!(tiles = bars(x, n, in->C, &W))) {
      r = cli_fail(cmd, "out of memory");
      goto done;
    }
    C = 1, H = 32, img = tiles;
  }
  if (C != 1 && C != 3) {
    r = cli_fail(cmd, "%s has %d channels; only 1 or 3 can be drawn", in->name, C);
    goto done;
  }
  if (in->is_image)
    for (int i = 0; i < n; i++)
      if (!have[i]) for (size_t p = 0; p < D; p++) x[(size_t)i * D + p] = blank;
  if (!in->is_image)
    for (int i = 0; i < n; i++)
      if (!have[i]) for (int p = 0; p < H * W; p++) tiles[(size_t)i * H * W + p] = blank;
  int gw, gh;
  if (knobs_image_grid(img, n, C, H, W, cols, 2, 1.0f, &g, &gw, &gh) || knobs_png_write(out, g, gw, gh, C)) {
    r = cli_lib_fail(cmd, "cannot write the picture");
    goto done;
  }
  printf("wrote %s: %s\n", out, how);
  for (int k = 0; k < K; k++) {
    int sz = in->factor_sizes[k];
    printf("  row %-2d %-18s %d of %d classes, values %.4g .. %.4g\n", k + 1, in->factor_names[k], sz < cols ? sz : cols,
           sz, knobs_data_factor_value(d, k, 0), knobs_data_factor_value(d, k, sz - 1));
  }
  if (!in->is_image) printf("  each tile: the %d values of one observation as bars (common scale)\n", in->C);
  print_note(in);
done:
  free(x), free(f), free(base), free(have), free(tiles), free(g);
  knobs_data_free(d);
  return r;
}

/* ---- export --------------------------------------------------------------------------- */

static int data_export(int argc, char **argv) {
  const char *cmd = "data export", *out = NULL, *fout = NULL, *vout = NULL, *dtype = "float32", *pos[1] = {NULL};
  data_flags df;
  flags_default(&df);
  long n = 0;
  cli_opt o[] = {
      {"--out", OPT_STR, &out, 0, 0, "PATH", "observations .npy: (N,C,H,W) images or (N,F) vectors", 0},
      {"--n", OPT_LONG, &n, 0, 1e12, "N", "observations drawn with --seed (0: all, in index order)", 0},
      {"--factors", OPT_STR, &fout, 0, 0, "PATH", "also write their factors (N,K) int64 .npy", 0},
      {"--values", OPT_STR, &vout, 0, 0, "PATH", "also write their factor values (N,K) float64 .npy", 0},
      {"--dtype", OPT_STR, &dtype, 0, 0, "T", "float32, or uint8 for images (round(255 x))", 0},
      DATA_OPTS(df),
  };
  int np = 0, r = cli_parse(cmd, "DATASET --out x.npy [options]", argc, argv, o, (int)(sizeof o / sizeof o[0]), pos, 1, &np);
  if (r) return r < 0 ? 0 : r;
  if (!out) return cli_usage_error(cmd, "--out PATH is required");
  knobs_dtype t;
  if (!strcmp(dtype, "float32")) t = KNOBS_F32;
  else if (!strcmp(dtype, "uint8")) t = KNOBS_U8;
  else return cli_usage_error(cmd, "--dtype: '%s' is not float32 or uint8", dtype);
  knobs_data *d;
  if ((r = open_data(cmd, pos[0], &df, &d))) return r;
  const knobs_data_info *in = knobs_data_info_get(d);
  if (knobs_data_export(d, n, df.seed, t, out, fout, vout)) r = cli_lib_fail(cmd, "export failed");
  else {
    printf("wrote %s (%lld observations)", out, (long long)(n > 0 ? n : in->n));
    if (fout) printf(", %s", fout);
    if (vout) printf(", %s", vout);
    printf("\n");
    print_note(in);
  }
  knobs_data_free(d);
  return r;
}

static void usage(FILE *f) {
  fprintf(f, "usage: knobs data SUBCOMMAND ...\n\n"
             "  list                          built-in datasets and the files knobs reads\n"
             "  info DATASET                  shape, size, factors, notes\n"
             "  show DATASET --out grid.png   one row per factor, varying only that factor\n"
             "  export DATASET --out x.npy    observations (and --factors f.npy) as .npy\n\n"
             "'knobs data SUBCOMMAND --help' shows its options.\n");
}

int cmd_data(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 1;
  }
  const char *sub = argv[1];
  if (!strcmp(sub, "--help") || !strcmp(sub, "-h")) {
    usage(stdout);
    return 0;
  }
  if (!strcmp(sub, "list")) return data_list(argc - 1, argv + 1);
  if (!strcmp(sub, "info")) return data_info(argc - 1, argv + 1);
  if (!strcmp(sub, "show")) return data_show(argc - 1, argv + 1);
  if (!strcmp(sub, "export")) return data_export(argc - 1, argv + 1);
  return cli_usage_error("data", "unknown subcommand '%s' (list, info, show, export)", sub);
}
