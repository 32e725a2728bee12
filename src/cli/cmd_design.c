/* cmd_design.c: `knobs design`: property-guided design in latent space (knobs_design), and
 * `knobs design fit`: train a property head (an MLP on codes) from codes and labels.
 *
 *   knobs design --model RUN --maximize area --penalty prior --lambda 1 --n 16 --out d.png
 *   knobs design --model RUN --property head.safetensors --target 0.8 --penalty gmm --out d.png
 *   knobs design fit --codes codes.npy --labels y.npy --out head.safetensors
 *
 * A property is an image property (area, cx, cy, brightness, red, green, blue), a knob's
 * calibrated factor value (a knob or factor name, from knobs.json), or a head (.safetensors). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static const char *const png_ext[] = {".png", NULL}, *const json_ext[] = {".json", NULL},
                         *const st_ext[] = {".safetensors", NULL}, *const npy_ext[] = {".npy", NULL};

static int ends_with(const char *s, const char *t) {
  size_t a = strlen(s), b = strlen(t);
  return a >= b && !strcmp(s + a - b, t);
}

static int cmd_fit(int argc, char **argv) {
  const char *cmd = "design fit", *codes = NULL, *labels = NULL, *out = NULL;
  knobs_head_opts ho;
  knobs_head_opts_default(&ho);
  cli_opt o[] = {
      {"--codes", OPT_STR, &codes, 0, 0, "PATH", "codes .npy (N,Z) (e.g. from 'knobs encode')", 0},
      {"--labels", OPT_STR, &labels, 0, 0, "PATH", "labels .npy (N,) or (N,1): the property of each row", 0},
      {"--out", OPT_STR, &out, 0, 0, "PATH", "the head (.safetensors)", 0},
      {"--logistic", OPT_FLAG, &ho.logistic, 0, 0, NULL, "labels are 0/1: predict the probability", 0},
      {"--hidden", OPT_INT, &ho.hidden, 1, 4096, "N", "hidden width", 0},
      {"--layers", OPT_INT, &ho.layers, 1, 8, "N", "hidden layers", 0},
      {"--steps", OPT_INT, &ho.steps, 1, 10000000, "N", "Adam steps", 0},
      {"--batch", OPT_INT, &ho.batch, 1, 65536, "N", "batch size", 0},
      {"--lr", OPT_DOUBLE, &ho.lr, 1e-8, 10, "X", "Adam learning rate", 0},
      {"--val-frac", OPT_DOUBLE, &ho.val_frac, 0, 0.9, "X", "share of rows held out to report the error", 0},
      {"--seed", OPT_U64, &ho.seed, 0, 0, "S", "seed", 0},
  };
  int r = cli_parse(cmd, "--codes codes.npy --labels y.npy --out head.safetensors", argc, argv, o, (int)(sizeof o / sizeof o[0]),
                    NULL, 0, NULL);
  if (r) return r < 0 ? 0 : r;
  if (!codes || !labels || !out) return cli_usage_error(cmd, "--codes, --labels and --out are required");
  if ((r = cli_check_ext(cmd, "--out", out, st_ext)) || (r = cli_check_ext(cmd, "--codes", codes, npy_ext)) ||
      (r = cli_check_ext(cmd, "--labels", labels, npy_ext)))
    return r;
  knobs_array c = {0}, l = {0}, c32 = {0}, l64 = {0};
  knobs_head *h = NULL;
  if (knobs_npy_read(codes, &c)) return cli_lib_fail(cmd, "cannot read --codes");
  if (knobs_npy_read(labels, &l)) {
    knobs_array_free(&c);
    return cli_lib_fail(cmd, "cannot read --labels");
  }
  if (c.ndim != 2) r = cli_usage_error(cmd, "--codes %s: expected (N,Z), got %d dimensions", codes, c.ndim);
  else if (!(l.ndim == 1 || (l.ndim == 2 && l.shape[1] == 1)) || l.shape[0] != c.shape[0])
    r = cli_usage_error(cmd, "--labels %s: expected (%lld,) to match the codes", labels, (long long)c.shape[0]);
  else if (c.shape[0] > 100000000 || c.shape[1] > 100000)
    r = cli_usage_error(cmd, "--codes %s: too large", codes);
  if (!r && (knobs_array_convert(&c, KNOBS_F32, &c32) || knobs_array_convert(&l, KNOBS_F64, &l64)))
    r = cli_lib_fail(cmd, "cannot convert the arrays");
  double err = 0;
  if (!r && knobs_head_fit(c32.data, l64.data, (int)c.shape[0], (int)c.shape[1], &ho, &h, &err))
    r = cli_lib_fail(cmd, "fit failed");
  if (!r && knobs_head_save(h, out)) r = cli_lib_fail(cmd, "cannot write the head");
  if (!r)
    printf("wrote %s: %d -> %d x %d -> 1 (%s); held-out %s %.4g on %.0f%% of the rows\n", out, (int)c.shape[1], ho.hidden,
           ho.layers, ho.logistic ? "logistic" : "mean squared error", ho.logistic ? "error rate" : "RMSE", err,
           100 * ho.val_frac);
  knobs_head_free(h);
  knobs_array_free(&c), knobs_array_free(&l), knobs_array_free(&c32), knobs_array_free(&l64);
  return r;
}

int cmd_design(int argc, char **argv) {
  if (argc >= 2 && !strcmp(argv[1], "fit")) return cmd_fit(argc - 1, argv + 1);
  const char *cmd = "design", *model = NULL, *data = NULL, *out = NULL, *json = NULL, *maxi = NULL, *mini = NULL,
             *prop = NULL, *penalty = "prior";
  double target = NAN;
  int threads = 0;
  knobs_design_opts d0;
  knobs_design_opts_default(&d0);
  cli_opt o[] = {
      {"--model", OPT_STR, &model, 0, 0, "RUN", "checkpoint or run folder", 0},
      {"--data", OPT_STR, &data, 0, 0, "D", "dataset for starts, penalty fit and checks (default: the model's)", 0},
      {"--maximize", OPT_STR, &maxi, 0, 0, "P", "property to maximise: area, cx, cy, brightness, red, green, blue, "
       "a knob or factor name (its calibrated value), or a head .safetensors", 0},
      {"--minimize", OPT_STR, &mini, 0, 0, "P", "property to minimise", 0},
      {"--property", OPT_STR, &prop, 0, 0, "P", "property to bring to --target", 0},
      {"--target", OPT_DOUBLE, &target, -1e300, 1e300, "V", "the value --property should take", 0},
      {"--penalty", OPT_STR, &penalty, 0, 0, "S", "plausibility penalty: none, prior, gmm, box", 0},
      {"--lambda", OPT_DOUBLE, &d0.lambda, 0, 1e6, "X", "weight of the penalty", 0},
      {"--gmm-k", OPT_INT, &d0.penalty_opts.gmm_k, 1, 1000, "N", "gmm: mixture components", 0},
      {"--box-q", OPT_DOUBLE, &d0.penalty_opts.box_q, 0, 0.49, "X", "box: quantile of the training codes' range", 0},
      {"--n", OPT_INT, &d0.n, 1, 4096, "N", "designs reported", 0},
      {"--restarts", OPT_INT, &d0.restarts, 1, 65536, "N", "starting points (encoded observations)", 0},
      {"--steps", OPT_INT, &d0.steps, 0, 100000, "N", "Adam steps per start", 0},
      {"--lr", OPT_DOUBLE, &d0.lr, 1e-8, 10, "X", "Adam learning rate on the codes", 0},
      {"--n-fit", OPT_INT, &d0.n_fit, 100, 1000000, "N", "observations for the penalty fit, percentiles and validity", 0},
      {"--seed", OPT_U64, &d0.seed, 0, 0, "S", "seed of the draws", 0},
      {"--out", OPT_STR, &out, 0, 0, "PATH", "output .png grid of the designs, best first", 0},
      {"--json", OPT_STR, &json, 0, 0, "PATH", "also write the report as JSON", 0},
      {"--threads", OPT_INT, &threads, 0, 1024, "N", "threads (0: as trained)", 0},
  };
  const int no = (int)(sizeof o / sizeof o[0]);
  int r = cli_parse(cmd, "--model RUN (--maximize P | --minimize P | --property P --target V) --out d.png [options]\n"
                    "       knobs design fit --codes codes.npy --labels y.npy --out head.safetensors", argc, argv, o, no,
                    NULL, 0, NULL);
  if (r) return r < 0 ? 0 : r;
  if (!!maxi + !!mini + !!prop != 1) return cli_usage_error(cmd, "give one of --maximize, --minimize and --property");
  if (!!prop != cli_find(o, no, "--target")->seen) return cli_usage_error(cmd, "--property P and --target V go together");
  if (!out) return cli_usage_error(cmd, "--out PATH is required");
  if ((r = cli_check_ext(cmd, "--out", out, png_ext)) || (json && (r = cli_check_ext(cmd, "--json", json, json_ext)))) return r;
  int pk = knobs_penalty_parse(penalty);
  if (pk < 0) return cli_usage_error(cmd, "--penalty '%s': expected none, prior, gmm or box", penalty);
  if (d0.restarts < d0.n) return cli_usage_error(cmd, "--restarts %d must be at least --n %d", d0.restarts, d0.n);
  d0.penalty = (knobs_penalty_kind)pk;
  d0.goal = maxi ? KNOBS_DESIGN_MAX : mini ? KNOBS_DESIGN_MIN : KNOBS_DESIGN_TARGET;
  d0.target = prop ? target : 0;
  const char *p = maxi ? maxi : mini ? mini : prop;
  knobs_model *m;
  knobs_data *d;
  if ((r = cli_open_model_data(cmd, model, threads, data, &m, &d))) return r;
  int Z = knobs_model_code_dim(m);
  knobs_knobs *k = cli_read_knobs(cmd, model, Z);
  knobs_design_result *res = NULL;
  int ch, ip = knobs_image_property_parse(p, &ch);
  if (ip >= 0) {
    d0.image_property = (knobs_image_property)ip, d0.channel = ch;
  } else if (ends_with(p, ".safetensors")) {
    if (knobs_head_load(p, &d0.head)) {
      r = cli_lib_fail(cmd, "cannot load the property head");
      goto out;
    }
  } else {
    int z = knobs_knobs_find(k, Z, p);
    if (z < 0) {
      r = cli_usage_error(cmd, "property '%s': not an image property (area, cx, cy, brightness, red, green, blue), "
                          "a head (.safetensors) or a knob: %s", p, knobs_last_error());
      goto out;
    }
    d0.latent = z;
  }
  fprintf(stderr, "knobs %s: %d starts x %d steps ...\n", cmd, d0.restarts, d0.steps);
  if (knobs_design(m, d, k, &d0, &res)) {
    r = cli_lib_fail(cmd, "design failed");
    goto out;
  }
  uint8_t *px = NULL;
  int gw, gh, cols = res->n < 8 ? res->n : 8;
  if (knobs_image_grid(res->images, res->n, res->C, res->H, res->W, cols, 2, 0.5f, &px, &gw, &gh) ||
      knobs_png_write(out, px, gw, gh, res->C)) {
    knobs_free(px);
    r = cli_lib_fail(cmd, "cannot write the grid");
    goto out;
  }
  knobs_free(px);
  printf("wrote %s: %d designs, best first (%s %s, penalty %s, lambda %g)\n", out, res->n,
         maxi ? "maximise" : mini ? "minimise" : "target", p, penalty, d0.lambda);
  printf("the dataset's property: median %.4g, 90th percentile %.4g, max %.4g (over %d observations)\n", res->data_p50,
         res->data_p90, res->data_max, d0.n_fit);
  printf("valid: distance to the nearest real image <= %.4g (the 95th percentile of the model's own reconstructions)\n",
         res->threshold);
  printf("  nearest: %s\n", res->method);
  printf("%4s %10s %10s %10s %10s %10s %6s\n", "rank", "property", "percentile", "penalty", "nearest", "re-encode", "valid");
  for (int i = 0; i < res->n; i++) {
    const knobs_design_item *it = &res->items[i];
    printf("%4d %10.4g %10.1f %10.4g %10.4g %10.4g %6s\n", i + 1, it->property, it->percentile, it->penalty, it->nearest,
           it->recon, it->valid ? "yes" : "no");
  }
  printf("%d of %d valid\n", res->valid, res->n);
  if (json) {
    size_t cap = 4096 + (size_t)res->n * 256;
    char *buf = malloc(cap);
    size_t u = 0;
    if (!buf) {
      r = cli_fail(cmd, "out of memory");
      goto out;
    }
    char e1[1200], e2[200];
    u += (size_t)snprintf(buf + u, cap - u, "{\"property\": %s, \"goal\": \"%s\", \"target\": %.17g, \"penalty\": %s, "
                          "\"lambda\": %.17g, \"threshold\": %.9g, \"data_p50\": %.9g, \"data_p90\": %.9g, \"data_max\": %.9g, "
                          "\"valid\": %d, \"n\": %d, \"designs\": [",
                          cli_json_str(e1, sizeof e1, ends_with(p, ".safetensors") ? "head" : p),
                          maxi ? "max" : mini ? "min" : "target", d0.target, cli_json_str(e2, sizeof e2, penalty), d0.lambda, res->threshold,
                          res->data_p50, res->data_p90, res->data_max, res->valid, res->n);
    for (int i = 0; i < res->n; i++) {
      const knobs_design_item *it = &res->items[i];
      u += (size_t)snprintf(buf + u, cap - u, "%s\n  {\"property\": %.9g, \"percentile\": %.4f, \"objective\": %.9g, \"penalty\": %.9g, "
                            "\"nearest\": %.9g, \"recon\": %.9g, \"valid\": %s}", i ? "," : "", it->property,
                            it->percentile, it->objective, it->penalty, it->nearest, it->recon, it->valid ? "true" : "false");
    }
    u += (size_t)snprintf(buf + u, cap - u, "]}\n");
    if (!(r = cli_write_text(cmd, json, buf))) fprintf(stderr, "wrote %s\n", json);
    free(buf);
  }
out:
  knobs_design_result_free(res);
  knobs_head_free(d0.head);
  knobs_knobs_free(k);
  knobs_data_free(d);
  knobs_model_free(m);
  return r;
}
