/* test_seq_apps.c: what a dsvae model does with the user's own sequences (seq:FILE):
 * - knobs_traverse_seq: the PNG's size, every cell's pixels equal to the decode of the
 *   sequence's own codes with one code dimension set (f, or z_t at every frame, which frame a
 *   cell shows), the GIF's size, knobs_traverse of a dsvae being the same picture, colour
 *   frames, and the refusals (frame, index, steps, path, data of another shape, a model that is
 *   not a dsvae) with nothing written;
 * - `knobs encode --dynamic` (through the built command): the static code (N,f_dim) and the
 *   dynamic codes (N,T,Z) equal knobs_dsvae_encode's, and its refusals write nothing.
 * Tiny mlp models of 8x8 frames, two training steps then parameters set by formula. */
#include <sys/wait.h>

#include "t.h"
#include "models_t.h"

enum { N = 6, T = 3, HH = 8, WW = 8, FD = 3, ZD = 2 };

static char dir[64];

static const char *P(const char *name) { return t_path(dir, name); } /* a path in the test folder */

/* (n,T,8,8[,c]) uint8 sequences to `name`, opened as seq:name */
static knobs_data *seq_file(const char *name, int n, int frames, int c) {
  int64_t sh[5] = {n, frames, HH, WW, c};
  knobs_array a;
  CHECK(knobs_array_alloc(&a, KNOBS_U8, c > 1 ? 5 : 4, sh) == KNOBS_OK, "alloc");
  uint8_t *p = a.data;
  for (int64_t i = 0; i < knobs_array_count(&a); i++) p[i] = (uint8_t)((i * 37 + i / 64 * 11) % 256);
  CHECK(knobs_npy_write(P(name), &a) == KNOBS_OK, "write %s: %s", name, knobs_last_error());
  knobs_array_free(&a);
  char spec[320];
  snprintf(spec, sizeof spec, "seq:%s", P(name));
  knobs_data *d = NULL;
  CHECK(knobs_data_open(spec, NULL, &d) == KNOBS_OK, "open %s: %s", spec, knobs_last_error());
  return d;
}

static knobs_model *tiny(const char *model, knobs_data *d) {
  knobs_config c;
  kn_config_default(&c, model);
  strcpy(c.arch, "mlp"), strcpy(c.likelihood, "bernoulli");
  CHECK(knobs_config_from_data(&c, d) == KNOBS_OK, "config: %s", knobs_last_error());
  snprintf(c.data, sizeof c.data, "%s", knobs_data_info_get(d)->name);
  c.batch = 2, c.z_dim = ZD, c.hidden = 16, c.threads = 2, c.seed = 5;
  if (!strcmp(model, "dsvae")) mt_set(&c, "f_dim", FD), mt_set(&c, "rnn_hidden", 8);
  knobs_model *m = NULL;
  CHECK(knobs_model_create(&c, &m) == KNOBS_OK, "create %s: %s", model, knobs_last_error());
  for (int i = 0; m && i < 2; i++) CHECK(knobs_model_train_step(m, d, NULL) == KNOBS_OK, "step: %s", knobs_last_error());
  /* parameters 3x PyTorch's initial scale, so that every code moves the decoded pixels by many
   * levels (two steps from the initial ones move them by about one) */
  for (int k = 0; m && k < m->net.np; k++) {
    const kn_param *q = &m->net.P[k];
    double fan = 1;
    for (int j = 1; j < q->ndim; j++) fan *= (double)q->shape[j];
    float *p = kn_param_ptr(&m->net, k);
    for (size_t i = 0; i < q->n; i++) p[i] = (float)(mt_hash_u(i, (uint64_t)k) * 3 / sqrt(fan));
  }
  return m;
}

static uint8_t u8(float v) { return !(v > 0) ? 0 : v >= 1 ? 255 : (uint8_t)lrintf(v * 255.0f); }

/* The traversal PNG at `path` against the decodes: cell (r, j) is frame o->frame of the own codes
 * of sequence o->index with dimension ord[r] of f (or of z_t at every t) at value j. */
static void check_cells(knobs_model *m, knobs_data *d, const knobs_seq_traverse_opts *o, const char *path, const int *ord, int c) {
  int R = o->dynamic ? ZD : FD, S = o->steps, n = R * S;
  size_t D = (size_t)T * c * HH * WW, F = D / T;
  uint8_t *px = NULL;
  int w = 0, h = 0, ch = 0;
  CHECK(knobs_png_read(path, &px, &w, &h, &ch) == KNOBS_OK, "read %s: %s", path, knobs_last_error());
  CHECK(w == S * WW + (S + 1) * 2 && h == R * HH + (R + 1) * 2 && ch == c, "%s is %dx%dx%d: %d steps x %d rows of 8x8, 2-pixel pads",
        path, w, h, ch, S, R);
  float *x = malloc(sizeof(float) * D), *f = malloc(sizeof(float) * FD * n), *z = malloc(sizeof(float) * T * ZD * n);
  float *y = malloc(sizeof(float) * D * n);
  CHECK(knobs_data_get(d, &o->index, 1, x, NULL) == KNOBS_OK && knobs_dsvae_encode(m, x, 1, f, z) == KNOBS_OK, "encode");
  for (int i = n - 1; i >= 0; i--) {
    float v = (float)(o->lo + (o->hi - o->lo) * (i % S) / (S - 1));
    memmove(f + (size_t)i * FD, f, sizeof(float) * FD), memmove(z + (size_t)i * T * ZD, z, sizeof(float) * T * ZD);
    if (!o->dynamic) f[(size_t)i * FD + ord[i / S]] = v;
    for (int t = 0; o->dynamic && t < T; t++) z[((size_t)i * T + t) * ZD + ord[i / S]] = v;
  }
  CHECK(knobs_dsvae_decode(m, f, z, n, y) == KNOBS_OK, "decode");
  int worst = 0;
  for (int i = 0; px && w == S * WW + (S + 1) * 2 && ch == c && i < n; i++) {
    int y0 = 2 + i / S * (HH + 2), x0 = 2 + i % S * (WW + 2);
    for (int k = 0; k < c; k++)
      for (int yy = 0; yy < HH; yy++)
        for (int xx = 0; xx < WW; xx++) {
          int want = u8(y[D * i + F * o->frame + ((size_t)k * HH + yy) * WW + xx]);
          int got = px[((size_t)(y0 + yy) * w + x0 + xx) * c + k];
          worst = abs(got - want) > worst ? abs(got - want) : worst;
        }
  }
  CHECK(worst <= 1, "%s: a cell differs from its decode by %d levels", path, worst);
  knobs_free(px);
  free(x), free(f), free(z), free(y);
}

static int same_bytes(const char *a, const char *b) {
  char *p = NULL, *q = NULL;
  size_t np = 0, nq = 0;
  int same = !kn_read_file(a, 1 << 24, &p, &np) && !kn_read_file(b, 1 << 24, &q, &nq) && np == nq && !memcmp(p, q, np);
  free(p), free(q);
  return same;
}

static void test_traverse(knobs_model *m, knobs_data *d) {
  T_CASE("traverse f");
  knobs_seq_traverse_opts o;
  knobs_seq_traverse_opts_default(&o);
  CHECK(o.steps == 11 && o.lo == -2 && o.hi == 2 && o.frame == 0 && o.dynamic == 0 && o.index == 0, "defaults");
  o.index = 4, o.steps = 5, o.lo = -3, o.hi = 3, o.frame = 2;
  int ord[FD] = {0}, ordz[ZD] = {0};
  double kl[FD], klz[ZD];
  CHECK(knobs_traverse_seq(m, d, &o, P("tf.png"), ord, kl) == KNOBS_OK, "traverse f: %s", knobs_last_error());
  CHECK(kl[ord[0]] >= kl[ord[1]] && kl[ord[1]] >= kl[ord[2]] && kl[ord[2]] >= 0, "rows not by KL: %g %g %g", kl[ord[0]],
        kl[ord[1]], kl[ord[2]]);
  check_cells(m, d, &o, P("tf.png"), ord, 1);
  T_CASE("traverse z_t");
  o.dynamic = 1, o.frame = 1;
  CHECK(knobs_traverse_seq(m, d, &o, P("tz.png"), ordz, klz) == KNOBS_OK, "traverse z: %s", knobs_last_error());
  CHECK(ordz[0] == 0 && ordz[1] == 1 && isnan(klz[0]), "z rows in order, no KL");
  check_cells(m, d, &o, P("tz.png"), ordz, 1);
  T_CASE("traverse gif");
  o.dynamic = 0;
  CHECK(knobs_traverse_seq(m, d, &o, P("tf.gif"), NULL, NULL) == KNOBS_OK, "gif: %s", knobs_last_error());
  char *g = NULL;
  size_t ng = 0;
  CHECK(kn_read_file(P("tf.gif"), 1 << 24, &g, &ng) == KNOBS_OK && ng > 13 && !memcmp(g, "GIF89a", 6), "not a GIF");
  if (g && ng > 13) {
    int gw = (uint8_t)g[6] | (uint8_t)g[7] << 8, gh = (uint8_t)g[8] | (uint8_t)g[9] << 8;
    CHECK(gw == 5 * WW + 6 * 2 && gh == FD * HH + (FD + 1) * 2, "gif %dx%d", gw, gh);
  }
  free(g);
  T_CASE("knobs_traverse of a dsvae");
  knobs_seq_traverse_opts_default(&o);
  o.index = 3, o.steps = 4;
  CHECK(knobs_traverse_seq(m, d, &o, P("a.png"), NULL, NULL) == KNOBS_OK &&
            knobs_traverse(m, d, 3, -2, 2, 4, P("b.png"), NULL, NULL) == KNOBS_OK, "%s", knobs_last_error());
  CHECK(same_bytes(P("a.png"), P("b.png")), "knobs_traverse of a dsvae is not its f traversal");
}

static void test_refusals(knobs_model *m, knobs_data *d) {
  T_CASE("traverse refusals");
  knobs_seq_traverse_opts o;
  struct {
    const char *set, *path, *what;
    knobs_status want;
  } cases[] = {
      {"frame", "r.png", "frame 3 out of range 0..2", KNOBS_ERR_ARG}, {"index", "r.png", "index 6 out of range", KNOBS_ERR_ARG},
      {"steps", "r.png", "1 steps", KNOBS_ERR_ARG},                   {"dynamic", "r.png", "dynamic is 0", KNOBS_ERR_ARG},
      {"", "r.jpg", "must end in .png", KNOBS_ERR_ARG},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    knobs_seq_traverse_opts_default(&o);
    if (!strcmp(cases[i].set, "frame")) o.frame = T;
    if (!strcmp(cases[i].set, "index")) o.index = N;
    if (!strcmp(cases[i].set, "steps")) o.steps = 1;
    if (!strcmp(cases[i].set, "dynamic")) o.dynamic = 2;
    knobs_status s = knobs_traverse_seq(m, d, &o, P(cases[i].path), NULL, NULL);
    CHECK(s == cases[i].want && strstr(knobs_last_error(), cases[i].what) && !kn_file_exists(P(cases[i].path)),
          "%s: status %d '%s'", cases[i].set, s, knobs_last_error());
  }
  knobs_seq_traverse_opts_default(&o);
  knobs_data *d4 = seq_file("four.npy", 2, 4, 1); /* 4 frames: not the model's shape */
  if (d4) {
    CHECK(knobs_traverse_seq(m, d4, &o, P("r.png"), NULL, NULL) == KNOBS_ERR_DATA && strstr(knobs_last_error(), "seq:four.npy") &&
              !kn_file_exists(P("r.png")), "data of 4 frames: %s", knobs_last_error());
    knobs_model *b = tiny("betavae", d4);
    CHECK(b && knobs_traverse_seq(b, d4, &o, P("r.png"), NULL, NULL) == KNOBS_ERR_UNSUPPORTED && !kn_file_exists(P("r.png")),
          "a betavae traversed as a sequence model: %s", knobs_last_error());
    knobs_model_free(b);
  }
  knobs_data_free(d4);
}

static void test_colour(void) {
  T_CASE("traverse colour frames");
  knobs_data *d = seq_file("rgb.npy", 4, T, 3);
  knobs_model *m = d ? tiny("dsvae", d) : NULL;
  if (m) {
    knobs_seq_traverse_opts o;
    knobs_seq_traverse_opts_default(&o);
    o.steps = 3, o.frame = 1, o.index = 2;
    int ord[FD];
    CHECK(knobs_traverse_seq(m, d, &o, P("rgb.png"), ord, NULL) == KNOBS_OK, "%s", knobs_last_error());
    check_cells(m, d, &o, P("rgb.png"), ord, 3);
  }
  knobs_model_free(m);
  knobs_data_free(d);
}

/* ---- knobs encode --dynamic, through the command ------------------------------------------- */

static int run(const char *knobs, const char *args) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "%s %s >%s 2>&1", knobs, args, P("cmd.log"));
  int st = system(cmd);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_encode(const char *argv0, knobs_model *m, knobs_data *d) {
  T_CASE("encode --dynamic");
  char knobs[512], args[1600];
  snprintf(knobs, sizeof knobs, "%s", argv0);
  char *slash = strrchr(knobs, '/');
  if (!slash) return;
  snprintf(slash, sizeof knobs - (size_t)(slash - knobs), "/../knobs");
  if (access(knobs, X_OK) != 0) {
    T_SKIP("%s not built: the command checks are skipped", knobs);
    return;
  }
  CHECK(knobs_model_save(m, P("m.safetensors")) == KNOBS_OK, "save: %s", knobs_last_error());
  snprintf(args, sizeof args, "encode --model %s --data seq:%s --out %s --dynamic %s --threads 2", P("m.safetensors"), P("g.npy"),
           P("f.npy"), P("z.npy"));
  CHECK(run(knobs, args) == 0, "%s failed", args);
  knobs_array fa = {0}, za = {0};
  CHECK(knobs_npy_read(P("f.npy"), &fa) == KNOBS_OK && knobs_npy_read(P("z.npy"), &za) == KNOBS_OK, "read: %s", knobs_last_error());
  CHECK(fa.dtype == KNOBS_F32 && fa.ndim == 2 && fa.shape[0] == N && fa.shape[1] == FD, "static (%lld, %lld)", (long long)fa.shape[0],
        (long long)fa.shape[1]);
  CHECK(za.dtype == KNOBS_F32 && za.ndim == 3 && za.shape[0] == N && za.shape[1] == T && za.shape[2] == ZD, "dynamic (%lld, %lld, %lld)",
        (long long)za.shape[0], (long long)za.shape[1], (long long)za.shape[2]);
  if (fa.ndim == 2 && za.ndim == 3 && fa.shape[0] == N && za.shape[0] == N) {
    float x[N * T * HH * WW], f[N * FD], z[N * T * ZD];
    int64_t idx[N] = {0, 1, 2, 3, 4, 5};
    CHECK(knobs_data_get(d, idx, N, x, NULL) == KNOBS_OK && knobs_dsvae_encode(m, x, N, f, z) == KNOBS_OK, "encode");
    CHECK_CLOSE((float *)fa.data, f, (size_t)N * FD, 1e-5, 1e-6);
    CHECK_CLOSE((float *)za.data, z, (size_t)N * T * ZD, 1e-5, 1e-6);
  }
  knobs_array_free(&fa), knobs_array_free(&za);
  /* refusals: nothing written, no temporary left */
  snprintf(args, sizeof args, "encode --model %s --data seq:%s --out %s --dynamic /nonexistent-dir/z.npy", P("m.safetensors"),
           P("g.npy"), P("f2.npy"));
  CHECK(run(knobs, args) == 2 && !kn_file_exists(P("f2.npy")), "an unwritable --dynamic left --out or did not fail");
  snprintf(args, sizeof args, "encode --model %s --data seq:%s --out %s --dynamic %s --sampled", P("m.safetensors"), P("g.npy"),
           P("f3.npy"), P("z3.npy"));
  CHECK(run(knobs, args) == 1 && !kn_file_exists(P("f3.npy")) && !kn_file_exists(P("z3.npy")), "--dynamic with --sampled");
  snprintf(args, sizeof args, "encode --model %s --data seq:%s --out %s --dynamic %s", P("m.safetensors"), P("g.npy"), P("f4.npy"),
           P("z4.txt"));
  CHECK(run(knobs, args) == 1 && !kn_file_exists(P("f4.npy")), "--dynamic z4.txt");
  knobs_model *b = tiny("betavae", d);
  CHECK(b && knobs_model_save(b, P("b.safetensors")) == KNOBS_OK, "betavae");
  knobs_model_free(b);
  snprintf(args, sizeof args, "encode --model %s --data seq:%s --out %s --dynamic %s", P("b.safetensors"), P("g.npy"), P("f5.npy"),
           P("z5.npy"));
  CHECK(run(knobs, args) == 1 && !kn_file_exists(P("f5.npy")) && !kn_file_exists(P("z5.npy")), "--dynamic of a betavae");
  char *log = NULL;
  size_t nl = 0;
  CHECK(!kn_read_file(P("cmd.log"), 1 << 16, &log, &nl) && strstr(log, "only a dsvae model has"), "message: %s", log ? log : "");
  free(log);
  /* a betavae's codes without --dynamic: as before */
  snprintf(args, sizeof args, "encode --model %s --data seq:%s --out %s", P("b.safetensors"), P("g.npy"), P("f6.npy"));
  CHECK(run(knobs, args) == 0 && kn_file_exists(P("f6.npy")), "a betavae's encode");
  char cmd[400];
  snprintf(cmd, sizeof cmd, "ls %s | grep -q tmp-", dir);
  CHECK(system(cmd) != 0, "a temporary file was left");
}

int main(int argc, char **argv) {
  snprintf(dir, sizeof dir, "/tmp/knobs-test-seqapps-XXXXXX");
  if (!mkdtemp(dir)) return 2;
  knobs_data *d = seq_file("g.npy", N, T, 1);
  knobs_model *m = d ? tiny("dsvae", d) : NULL;
  if (m) {
    test_traverse(m, d);
    test_refusals(m, d);
    test_encode(argv[0], m, d);
  }
  test_colour();
  knobs_model_free(m);
  knobs_data_free(d);
  return mt_finish(dir);
}
