/* test_apps.c: what users do with a trained model (src/apps), on a tiny model of the toy data:
 * knobs_traverse (its order and KLs, every pixel of the grid against decodes made here, the
 * GIF), knobs_reconstruct, knobs_sample and knobs_data_show (pixels against renders made here),
 * determinism (same seed, same bytes), and the refusals (bad index, steps, columns, output
 * name) with nothing written. */
#include <dirent.h>
#include <sys/stat.h>

#include "t.h"
#include "models_t.h"

#define HW 16

static char dir[] = "/tmp/knobs-test-apps-XXXXXX";

static const char *path_in(const char *name) {
  static char p[4][256];
  static int k;
  k = (k + 1) % 4;
  snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
  return p[k];
}

/* The only place the test touches config fields (the lead may make knobs_config opaque). */
static knobs_model *tiny_model(knobs_data *d) {
  knobs_config c = mt_config("betavae", "mlp", HW);
  c.z_dim = 4;
  knobs_model *m = NULL;
  if (knobs_model_create(&c, &m)) {
    CHECK(0, "create: %s", knobs_last_error());
    return NULL;
  }
  for (int i = 0; i < 5; i++) knobs_model_train_step(m, d, NULL);
  return m;
}

static int files_in_dir(void) {
  DIR *dd = opendir(dir);
  int n = 0;
  struct dirent *e;
  while (dd && (e = readdir(dd)))
    if (e->d_name[0] != '.') n++;
  if (dd) closedir(dd);
  return n;
}

static int same_bytes(const char *a, const char *b) {
  char *x = NULL, *y = NULL;
  size_t nx = 0, ny = 0;
  int same = !kn_read_file(a, 1 << 26, &x, &nx) && !kn_read_file(b, 1 << 26, &y, &ny) && nx == ny && nx > 0 &&
             !memcmp(x, y, nx);
  free(x), free(y);
  return same;
}

/* The PNG at `path` has exactly the pixels of knobs_image_grid(imgs, ...) with the pad value
 * the apps use (`pad`). */
static void check_png_is_grid(const char *path, const float *imgs, int n, int cols, float pad) {
  uint8_t *want = NULL, *got = NULL;
  int ww, wh, w, h, ch;
  CHECK(!knobs_image_grid(imgs, n, 1, HW, HW, cols, 2, pad, &want, &ww, &wh), "grid: %s", knobs_last_error());
  if (knobs_png_read(path, &got, &w, &h, &ch)) {
    CHECK(0, "read %s: %s", path, knobs_last_error());
  } else {
    CHECK(w == ww && h == wh && ch == 1, "%s is %dx%d with %d channels, want %dx%d gray", path, w, h, ch, ww, wh);
    if (w == ww && h == wh && ch == 1) {
      size_t diff = 0;
      for (size_t i = 0; i < (size_t)w * h; i++) diff += abs((int)got[i] - (int)want[i]) > 1;
      CHECK(diff == 0, "%s: %zu of %d pixels differ from the expected grid", path, diff, w * h);
    }
  }
  free(want), free(got);
}

static void test_traverse(knobs_model *m, knobs_data *d) {
  T_CASE("traverse");
  int Z = knobs_model_code_dim(m), steps = 5, order[8] = {0};
  double kl[8] = {0}, lo = -2, hi = 2;
  int64_t index = 6;
  const char *p = path_in("t.png");
  knobs_status s = knobs_traverse(m, d, index, lo, hi, steps, p, order, kl);
  CHECK(s == KNOBS_OK, "traverse: %s", knobs_last_error());
  int seen[8] = {0}, perm = 1, sorted = 1, nonneg = 1;
  for (int i = 0; i < Z; i++) {
    if (order[i] < 0 || order[i] >= Z || seen[order[i]]++) perm = 0;
    if (i && perm && kl[order[i]] > kl[order[i - 1]]) sorted = 0;
    if (!(kl[i] >= 0)) nonneg = 0;
  }
  CHECK(perm, "order is not a permutation of 0..%d", Z - 1);
  CHECK(perm && sorted, "rows are not sorted by KL, largest first");
  CHECK(nonneg, "a KL is negative or NaN");
  /* every tile: the decode of the observation's mean with dimension order[row] set to the value */
  size_t D = HW * HW;
  float x[HW * HW], mu[8], *z = malloc(sizeof(float) * (size_t)Z * Z * steps), *img = malloc(sizeof(float) * D * Z * steps);
  CHECK(!knobs_data_get(d, &index, 1, x, NULL) && !knobs_model_encode(m, x, 1, mu, NULL), "encode");
  for (int row = 0; row < Z; row++)
    for (int j = 0; j < steps; j++) {
      float *zz = z + ((size_t)row * steps + j) * Z;
      memcpy(zz, mu, sizeof(float) * (size_t)Z);
      zz[order[row]] = (float)(lo + (hi - lo) * j / (steps - 1));
    }
  CHECK(!knobs_model_decode(m, z, Z * steps, img), "decode");
  check_png_is_grid(p, img, Z * steps, steps, 0.5f);
  free(z), free(img);
  /* same arguments, same bytes; a GIF is a GIF */
  CHECK(!knobs_traverse(m, d, index, lo, hi, steps, path_in("t2.png"), NULL, NULL), "again: %s", knobs_last_error());
  CHECK(same_bytes(p, path_in("t2.png")), "the same traversal twice gives different bytes");
  CHECK(!knobs_traverse(m, d, index, lo, hi, steps, path_in("t.gif"), NULL, NULL), "gif: %s", knobs_last_error());
  char *g = NULL;
  size_t ng = 0;
  CHECK(!kn_read_file(path_in("t.gif"), 1 << 24, &g, &ng) && ng > 6 && !memcmp(g, "GIF89a", 6), "t.gif is not a GIF89a");
  free(g);
}

static void test_reconstruct_sample(knobs_model *m, knobs_data *d) {
  T_CASE("reconstruct");
  CHECK(!knobs_reconstruct(m, d, 5, 3, path_in("r.png")), "reconstruct: %s", knobs_last_error());
  CHECK(!knobs_reconstruct(m, d, 5, 3, path_in("r2.png")), "reconstruct again: %s", knobs_last_error());
  CHECK(!knobs_reconstruct(m, d, 5, 4, path_in("r3.png")), "reconstruct seed 4: %s", knobs_last_error());
  CHECK(same_bytes(path_in("r.png"), path_in("r2.png")), "same seed, different bytes");
  CHECK(!same_bytes(path_in("r.png"), path_in("r3.png")), "seeds 3 and 4 give the same picture");
  {
    /* the library's draw (seed, KN_STREAM_EVAL + 1): a row of 5 inputs over their reconstructions */
    int n = 5, Z = knobs_model_code_dim(m);
    size_t D = HW * HW;
    float x[5 * HW * HW], mu[5 * 8], grid[2 * 5 * HW * HW];
    int32_t scratch[5 * KNOBS_MAX_FACTORS];
    kn_rng r;
    kn_rng_seed(&r, 3, KN_STREAM_EVAL + 1);
    CHECK(!kn_data_batch(d, &r, n, x, NULL, scratch), "batch");
    memcpy(grid, x, sizeof(float) * D * n);
    CHECK(!knobs_model_encode(m, x, n, mu, NULL) && !knobs_model_decode(m, mu, n, grid + D * n), "encode/decode");
    (void)Z;
    check_png_is_grid(path_in("r.png"), grid, 2 * n, n, 0.5f);
  }

  T_CASE("sample");
  int Z = knobs_model_code_dim(m), n = 9;
  CHECK(!knobs_sample(m, n, 11, path_in("s.png")), "sample: %s", knobs_last_error());
  CHECK(!knobs_sample(m, n, 11, path_in("s2.png")), "sample again: %s", knobs_last_error());
  CHECK(same_bytes(path_in("s.png"), path_in("s2.png")), "same seed, different bytes");
  /* the decodes of the prior draws the library makes: z ~ N(0, I) from (seed, KN_STREAM_EVAL + 2) */
  float *z = malloc(sizeof(float) * (size_t)Z * n), *img = malloc(sizeof(float) * HW * HW * n);
  kn_rng r;
  kn_rng_seed(&r, 11, KN_STREAM_EVAL + 2);
  kn_rng_normal_fill(&r, z, (size_t)Z * n);
  CHECK(!knobs_model_decode(m, z, n, img), "decode");
  check_png_is_grid(path_in("s.png"), img, n, 3, 0.5f);
  free(z), free(img);
}

static void test_data_show(knobs_data *d) {
  T_CASE("data show");
  const knobs_data_info *in = knobs_data_info_get(d);
  const char *how = NULL;
  int cols = 3;
  int64_t index = 6;
  CHECK(!knobs_data_show(d, cols, index, 0, path_in("d.png"), &how), "show: %s", knobs_last_error());
  CHECK(how && strstr(how, "varies one factor"), "layout: %s", how ? how : "(null)");
  /* row k: factor k at classes 0, 1, 3 of 4 (evenly spaced), the other at observation 6's */
  int32_t base[2], f[2 * 2 * 3];
  knobs_data_factors_of(d, index, base);
  for (int k = 0; k < 2; k++)
    for (int j = 0; j < cols; j++) {
      int32_t *v = f + (k * cols + j) * 2;
      v[0] = base[0], v[1] = base[1];
      v[k] = j * (in->factor_sizes[k] - 1) / (cols - 1);
    }
  float img[2 * 3 * HW * HW];
  CHECK(!knobs_data_render(d, f, 2 * cols, img), "render");
  check_png_is_grid(path_in("d.png"), img, 2 * cols, cols, 1.0f);
  CHECK(!knobs_data_show(d, cols, -1, 5, path_in("d2.png"), NULL), "show seed 5: %s", knobs_last_error());
  CHECK(!knobs_data_show(d, cols, -1, 5, path_in("d3.png"), NULL), "show seed 5 again: %s", knobs_last_error());
  CHECK(same_bytes(path_in("d2.png"), path_in("d3.png")), "same seed, different bytes");
}

/* Each refusal: KNOBS_ERR_ARG, a message naming the value, and no file at all. */
static void test_refusals(knobs_model *m, knobs_data *d) {
  T_CASE("refusals");
  int before = files_in_dir();
  const knobs_data_info *in = knobs_data_info_get(d);
  struct {
    knobs_status s;
    const char *name, *want;
  } c[] = {
      {knobs_traverse(m, d, in->n, -2, 2, 5, path_in("e1.png"), NULL, NULL), "index n", "out of range"},
      {knobs_traverse(m, d, -1, -2, 2, 5, path_in("e2.png"), NULL, NULL), "index -1", "out of range"},
      {knobs_traverse(m, d, 0, -2, 2, 1, path_in("e3.png"), NULL, NULL), "steps 1", "1 steps"},
      {knobs_traverse(m, d, 0, -2, 2, 5, path_in("e4.jpg"), NULL, NULL), "traverse .jpg", ".gif"},
      {knobs_reconstruct(m, d, 4, 0, path_in("e5.jpeg")), "reconstruct .jpeg", ".png"},
      {knobs_sample(m, 4, 0, path_in("e6")), "sample without extension", ".png"},
      {knobs_sample(m, 0, 0, path_in("e7.png")), "sample n 0", "n = 0"},
      {knobs_data_show(d, 1, 0, 0, path_in("e8.png"), NULL), "show cols 1", "columns"},
      {knobs_data_show(d, 3, in->n, 0, path_in("e9.png"), NULL), "show index n", "out of range"},
      {knobs_data_show(d, 3, 0, 0, path_in("e10.gif"), NULL), "show .gif", ".png"},
  };
  for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) CHECK(c[i].s == KNOBS_ERR_ARG, "%s: status %s", c[i].name, knobs_status_name(c[i].s));
  CHECK(files_in_dir() == before, "a refused call left a file (%d files, %d before)", files_in_dir(), before);
  /* each message names what was wrong */
  knobs_traverse(m, d, 0, -2, 2, 5, path_in("e4.jpg"), NULL, NULL);
  CHECK(strstr(knobs_last_error(), "e4.jpg") && strstr(knobs_last_error(), ".png"), "message: %s", knobs_last_error());
  knobs_data_show(d, 3, in->n, 0, path_in("e9.png"), NULL);
  CHECK(strstr(knobs_last_error(), "out of range"), "message: %s", knobs_last_error());
}

/* knob names from knobs.json beside the checkpoint: the user's name first, else the factor */
static void test_names(void) {
  T_CASE("knob names");
  char names[3][64], sub[300], file[400];
  snprintf(sub, sizeof sub, "%s/run", dir);
  mkdir(sub, 0755);
  CHECK(!knobs_knob_names(sub, 3, names) && !names[0][0] && !names[2][0], "no knobs.json: %s", knobs_last_error());
  snprintf(file, sizeof file, "%s/knobs.json", sub);
  const char *j = "{\"version\":1,\"latents\":[{\"name\":\"size\",\"factor\":\"scale\"},"
                  "{\"name\":null,\"factor\":\"posX\"},{\"name\":null,\"factor\":null}]}";
  CHECK(!kn_write_file(file, j, strlen(j)), "write: %s", knobs_last_error());
  CHECK(!knobs_knob_names(sub, 3, names), "read: %s", knobs_last_error());
  CHECK(!strcmp(names[0], "size") && !strcmp(names[1], "posX") && !names[2][0], "names: %s %s '%s'", names[0], names[1], names[2]);
  snprintf(file, sizeof file, "%s/model.safetensors", sub); /* a checkpoint file: its folder's */
  CHECK(!knobs_knob_names(file, 3, names) && !strcmp(names[0], "size"), "beside a file: %s", knobs_last_error());
  char four[4][64];
  CHECK(knobs_knob_names(sub, 4, four) == KNOBS_ERR_FORMAT && strstr(knobs_last_error(), "knobs.json"),
        "wrong latent count accepted: %s", knobs_last_error());
}

int main(void) {
  if (!mkdtemp(dir)) return 2;
  test_names();
  knobs_data *d = mt_toy_open(HW, 4);
  knobs_model *m = tiny_model(d);
  if (m) {
    test_traverse(m, d);
    test_reconstruct_sample(m, d);
    test_refusals(m, d);
  }
  test_data_show(d);
  knobs_model_free(m);
  knobs_data_free(d);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) return 2;
  return t_done();
}
