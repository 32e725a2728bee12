/* cmd_look.c: the commands that draw pictures of a trained model: `knobs traverse` (of a
 * dsvae model: its static code f, or with --dynamic its z_t), `knobs reconstruct` and
 * `knobs sample` (one file: they share their flags and shape). */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static const char *const png_ext[] = {".png", NULL}, *const png_gif_ext[] = {".png", ".gif", NULL};

/* The rows of a traversal: order[R] and kl[R]; `dynamic` rows (z_t's) have no KL or names. */
static void print_rows(const char *cmd, const char *model, int R, const int *ord, const double *kl, int dynamic, int seq) {
  char (*names)[64] = dynamic ? NULL : calloc((size_t)R, 64);
  if (names && knobs_knob_names(model, R, names)) /* the pictures are written: warn, go on */
    fprintf(stderr, "knobs: %s: note: knob names not read: %s\n", cmd, knobs_last_error());
  for (int i = 0; i < R; i++) {
    if (dynamic) {
      printf("  row %2d  z_t[%d]\n", i + 1, ord[i]);
      continue;
    }
    printf("  row %2d  %s%-3d %-12s KL %.3f%s\n", i + 1, seq ? "f" : "z", ord[i], names ? names[ord[i]] : "", kl[ord[i]],
           kl[ord[i]] < 0.01 ? "  (inactive)" : "");
  }
  free(names);
}

int cmd_traverse(int argc, char **argv) {
  const char *cmd = "traverse", *model = NULL, *data = NULL, *out = NULL, *range = "-2:2:11";
  long index = 0;
  int threads = 0, dynamic = 0, frame = 0;
  cli_opt o[] = {
      {"--model", OPT_STR, &model, 0, 0, "RUN", "checkpoint or run folder", 0},
      {"--data", OPT_STR, &data, 0, 0, "D", "dataset (default: the model's)", 0},
      {"--index", OPT_LONG, &index, 0, 9.0e15, "I", "observation to start from", 0},
      {"--range", OPT_STR, &range, 0, 0, "LO:HI:N", "values each latent takes (N from 2 to 101)", 0},
      {"--out", OPT_STR, &out, 0, 0, "PATH", "output .png (grid) or .gif (animation)", 0},
      {"--dynamic", OPT_FLAG, &dynamic, 0, 0, NULL,
       "dsvae: traverse the dynamic code z_t (each dimension set at every frame), not the static f", 0},
      {"--frame", OPT_INT, &frame, 0, 4095, "T",
       "dsvae: the frame (0 = the first) each cell of a .png shows (a .gif runs through all)", 0},
      {"--threads", OPT_INT, &threads, 0, 1024, "N", "threads (0: as trained)", 0},
  };
  const int no = (int)(sizeof o / sizeof o[0]);
  int r = cli_parse(cmd, "--model RUN --out trav.png [options]", argc, argv, o, no, NULL, 0, NULL);
  if (r) return r < 0 ? 0 : r;
  if (!out) return cli_usage_error(cmd, "--out PATH is required");
  if ((r = cli_check_ext(cmd, "--out", out, png_gif_ext))) return r;
  double lo, hi;
  int steps;
  if (cli_parse_range(range, &lo, &hi, &steps)) return cli_usage_error(cmd, "--range: '%s' is not LO:HI:N with N in 2..101", range);
  knobs_model *m;
  knobs_data *d;
  if ((r = cli_open_model_data(cmd, model, threads, data, &m, &d))) return r;
  int T = 0, Fd = 0, Zd = 0, seq = knobs_dsvae_dims(m, &T, &Fd, &Zd) == KNOBS_OK;
  knobs_clear_error();
  int Z = knobs_model_code_dim(m), R = seq && dynamic ? Zd : Z;
  int *ord = malloc(sizeof(int) * (size_t)(R > 0 ? R : 1));
  double *kl = malloc(sizeof(double) * (size_t)(R > 0 ? R : 1));
  knobs_seq_traverse_opts so;
  knobs_seq_traverse_opts_default(&so);
  so.index = index, so.lo = lo, so.hi = hi, so.steps = steps, so.dynamic = dynamic, so.frame = frame;
  if (!seq && (dynamic || cli_find(o, no, "--frame")->seen))
    r = cli_usage_error(cmd, "%s: the model (%s) has no sequence codes; only a dsvae model has", dynamic ? "--dynamic" : "--frame",
                        knobs_config_string(knobs_model_config(m), "model"));
  else if (!ord || !kl) r = cli_fail(cmd, "out of memory");
  else if (seq ? knobs_traverse_seq(m, d, &so, out, ord, kl) : knobs_traverse(m, d, index, lo, hi, steps, out, ord, kl))
    r = cli_lib_fail(cmd, "traversal failed");
  else {
    if (!seq) printf("wrote %s: rows are latent dimensions by mean KL (nats):\n", out);
    else if (dynamic) printf("wrote %s: rows are the dynamic code's dimensions, set at each of the %d frames:\n", out, T);
    else printf("wrote %s: rows are the static code f's dimensions by mean KL (nats), each cell with the sequence's own "
                "dynamics:\n", out);
    print_rows(cmd, model, R, ord, kl, seq && dynamic, seq);
  }
  free(ord), free(kl);
  knobs_data_free(d);
  knobs_model_free(m);
  return r;
}

int cmd_reconstruct(int argc, char **argv) {
  const char *cmd = "reconstruct", *model = NULL, *data = NULL, *out = NULL;
  int n = 16, threads = 0;
  uint64_t seed = 0;
  cli_opt o[] = {
      {"--model", OPT_STR, &model, 0, 0, "RUN", "checkpoint or run folder", 0},
      {"--data", OPT_STR, &data, 0, 0, "D", "dataset (default: the model's)", 0},
      {"--n", OPT_INT, &n, 1, 4096, "N", "observations", 0},
      {"--seed", OPT_U64, &seed, 0, 0, "S", "seed of the draw", 0},
      {"--out", OPT_STR, &out, 0, 0, "PATH", "output .png: rows of inputs, each above its reconstructions", 0},
      {"--threads", OPT_INT, &threads, 0, 1024, "N", "threads (0: as trained)", 0},
  };
  int r = cli_parse(cmd, "--model RUN --out recon.png [options]", argc, argv, o, (int)(sizeof o / sizeof o[0]), NULL, 0, NULL);
  if (r) return r < 0 ? 0 : r;
  if (!out) return cli_usage_error(cmd, "--out PATH is required");
  if ((r = cli_check_ext(cmd, "--out", out, png_ext))) return r;
  knobs_model *m;
  knobs_data *d;
  if ((r = cli_open_model_data(cmd, model, threads, data, &m, &d))) return r;
  if (knobs_reconstruct(m, d, n, seed, out)) r = cli_lib_fail(cmd, "reconstruction failed");
  else printf("wrote %s\n", out);
  knobs_data_free(d);
  knobs_model_free(m);
  return r;
}

int cmd_sample(int argc, char **argv) {
  const char *cmd = "sample", *model = NULL, *out = NULL;
  int n = 64, threads = 0;
  uint64_t seed = 0;
  cli_opt o[] = {
      {"--model", OPT_STR, &model, 0, 0, "RUN", "checkpoint or run folder", 0},
      {"--n", OPT_INT, &n, 1, 4096, "N", "samples", 0},
      {"--seed", OPT_U64, &seed, 0, 0, "S", "seed of z ~ N(0, I)", 0},
      {"--out", OPT_STR, &out, 0, 0, "PATH", "output .png grid", 0},
      {"--threads", OPT_INT, &threads, 0, 1024, "N", "threads (0: as trained)", 0},
  };
  int r = cli_parse(cmd, "--model RUN --out samples.png [options]", argc, argv, o, (int)(sizeof o / sizeof o[0]), NULL, 0, NULL);
  if (r) return r < 0 ? 0 : r;
  if (!out) return cli_usage_error(cmd, "--out PATH is required");
  if ((r = cli_check_ext(cmd, "--out", out, png_ext))) return r;
  knobs_model *m;
  if ((r = cli_open_model(cmd, model, threads, &m))) return r;
  if (knobs_sample(m, n, seed, out)) r = cli_lib_fail(cmd, "sampling failed");
  else printf("wrote %s\n", out);
  knobs_model_free(m);
  return r;
}
