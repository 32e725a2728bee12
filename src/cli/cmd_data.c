/* cmd_data.c: `knobs data`, looking at datasets without a model:
 *   knobs data list                        the built-in datasets and the files knobs reads
 *   knobs data info DATASET                shape, size, factors (sizes and values), notes
 *   knobs data show DATASET --out g.png    one row per factor, varying only that factor
 *                                          (drawn by knobs_data_show in src/apps)
 *   knobs data export DATASET --out x.npy [--n N] [--factors f.npy] [--values v.npy]
 * The dataset options of `knobs train` (--data-factors, --obs-dim, --noise, --factor-dist,
 * --seed) apply here too, so a run's data can be looked at exactly as it was trained on. */
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

static const char *const png_ext[] = {".png", NULL}, *const npy_ext[] = {".npy", NULL};

static void print_note(const knobs_data_info *in) {
  if (in->note[0]) printf("note: %s\n", in->note);
}

/* ---- list ----------------------------------------------------------------------------- */

/* The library names settings (obs_dim, factor_dist, factors); the flags that set them here. */
static void print_flags_note(void) {
  printf("\nthe dataset settings are flags of 'knobs train' and 'knobs data': --data-factors FILE (the factors\n"
         "or labels of your own data), --obs-dim N, --noise X, --factor-dist D (physics), --seed S\n");
}

static void print_files(void) {
  printf("\nfiles (pass the path as DATASET):\n");
  for (const char *const *t = knobs_data_file_types(); *t; t++) printf("  %s\n", *t);
}

static int data_list(int argc, char **argv) {
  int r = cli_parse("data list", "", argc, argv, NULL, 0, NULL, 0, NULL);
  if (r) return r < 0 ? 0 : r;
  printf("built in:\n");
  for (const char *const *n = knobs_data_names(); *n; n++) printf("  %-18s %s\n", *n, knobs_data_describe(*n));
  print_files();
  print_flags_note();
  return 0;
}

int cli_help_data(void) {
  printf("datasets: pass a name or a path as --data (train, encode, eval, ...) or DATASET (knobs data)\n\n"
         "built in:\n");
  knobs_data_opts o;
  knobs_data_opts_default(&o);
  for (const char *const *n = knobs_data_names(); *n; n++) {
    printf("  %s\n    %s\n", *n, knobs_data_describe(*n));
    knobs_data *d;
    if (knobs_data_open(*n, &o, &d)) {
      printf("    (not available here: %s)\n", knobs_last_error());
      continue;
    }
    const knobs_data_info *in = knobs_data_info_get(d);
    if (in->is_image) printf("    %lld observations, images %dx%d with %d channel%s\n", (long long)in->n, in->H, in->W, in->C,
                             in->C == 1 ? "" : "s");
    else printf("    %lld observations, vectors of %d values\n", (long long)in->n, in->C);
    printf("    factors:");
    for (int k = 0; k < in->K; k++) printf("%s %s (%d)", k ? "," : "", in->factor_names[k], in->factor_sizes[k]);
    printf("%s\n", in->K ? "" : " none");
    knobs_data_free(d);
  }
  print_files();
  print_flags_note();
  printf("\n'knobs data info DATASET' shows one in full; 'knobs data --help' the data command.\n");
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
  if (in->T > 1) printf("  sequences   %d frames of %d channel%s each\n", in->T, in->C / in->T, in->C / in->T > 1 ? "s" : "");
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
  if ((r = cli_check_ext(cmd, "--out", out, png_ext))) return r;
  knobs_data *d;
  if ((r = open_data(cmd, pos[0], &df, &d))) return r;
  const knobs_data_info *in = knobs_data_info_get(d);
  const char *how = NULL;
  if (index >= in->n) r = cli_usage_error(cmd, "--index %ld is out of range 0..%lld", index, (long long)in->n - 1);
  else if (knobs_data_show(d, cols, index, df.seed, out, &how)) r = cli_lib_fail(cmd, "cannot draw the picture");
  else {
    printf("wrote %s: %s\n", out, how);
    for (int k = 0; k < in->K; k++) {
      int sz = in->factor_sizes[k];
      printf("  row %-2d %-18s %d of %d classes, values %.4g .. %.4g\n", k + 1, in->factor_names[k], sz < cols ? sz : cols,
             sz, knobs_data_factor_value(d, k, 0), knobs_data_factor_value(d, k, sz - 1));
    }
    if (!in->is_image) printf("  each tile: the %d values of one observation as bars (common scale)\n", in->C);
    print_note(in);
  }
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
  if ((r = cli_check_ext(cmd, "--out", out, npy_ext)) || (fout && (r = cli_check_ext(cmd, "--factors", fout, npy_ext))) ||
      (vout && (r = cli_check_ext(cmd, "--values", vout, npy_ext))))
    return r;
  if ((fout && !strcmp(fout, out)) || (vout && !strcmp(vout, out)) || (fout && vout && !strcmp(fout, vout)))
    return cli_usage_error(cmd, "--out, --factors and --values must name different files");
  knobs_dtype t;
  if (!strcmp(dtype, "float32")) t = KNOBS_F32;
  else if (!strcmp(dtype, "uint8")) t = KNOBS_U8;
  else return cli_usage_error(cmd, "--dtype: '%s' is not float32 or uint8", dtype);
  knobs_data *d;
  if ((r = open_data(cmd, pos[0], &df, &d))) return r;
  const knobs_data_info *in = knobs_data_info_get(d);
  /* every output under a temporary name first: all of them are written, or none */
  cli_outputs outs = {0};
  const char *t_out = cli_out_add(&outs, out), *t_f = fout ? cli_out_add(&outs, fout) : NULL,
             *t_v = vout ? cli_out_add(&outs, vout) : NULL;
  if (!t_out || (fout && !t_f) || (vout && !t_v)) {
    cli_out_abort(&outs);
    r = cli_usage_error(cmd, "an output path is too long");
  } else if (knobs_data_export(d, n, df.seed, t, t_out, t_f, t_v)) {
    cli_out_abort(&outs);
    r = cli_lib_fail(cmd, "export failed (nothing written)");
  } else if (!(r = cli_out_commit(cmd, &outs))) {
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
