/* serve.h: what the files of the panel server share (src/serve): one model slot per run, the
 * request and response types of the handlers. Uses only knobs.h for models and data (never a
 * model's internals) plus core's error and rng helpers.
 *
 * Threads: libmicrohttpd calls the handlers on its pool of threads. A knobs_model and a
 * knobs_data are not thread-safe, so every use of a slot's model, data or statistics happens
 * with the slot's mutex held; the slot's fixed facts (Z, C, H, W, K, names of the factors, run
 * path) never change after loading and are read without it. */
#ifndef KN_SERVE_H
#define KN_SERVE_H
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "knobs.h"

#define KN_SERVE_INACTIVE_KL 0.05 /* nats: a latent with less mean KL is folded as inactive */
#define KN_SERVE_MAX_FRAMES 101   /* traversal frames per request */

typedef struct {
  /* fixed after loading */
  char run[1024];          /* run folder (holds knobs.json, log.csv) */
  char ckpt[1100];         /* the checkpoint file that is watched and loaded */
  char data_name[64];
  int Z, C, H, W, K;
  char factor_names[KNOBS_MAX_FACTORS][32];
  int n_kl, n_mi, model_threads;

  pthread_mutex_t lock;    /* guards everything below */
  knobs_model *m;
  knobs_data *d;
  char model_name[64];
  long step;               /* optimizer steps of the loaded checkpoint */
  double *kl;              /* (Z) mean KL per latent over n_kl dataset samples, nats */
  double *scale;           /* (Z) std of the posterior mean over the same samples */
  int *order;              /* (Z) latents by KL, largest first */
  double *mi;              /* (Z,K) normalised MI of latent j with factor k; NULL if K == 0 */
  char (*names)[64];       /* (Z) user names, "" if never named */
  knobs_knobs *kk;         /* the knobs as knobs.json holds them (names, MI, calibrations) */
  double ck_mtime;         /* checkpoint identity when loaded: mtime, inode and size */
  ino_t ck_ino;
  off_t ck_size;
  double last_check;       /* kn_now() of the last look at the checkpoint */
  int reloads;             /* times a newer checkpoint was loaded */
} kn_slot;

/* Load slot `s` from `path` (run folder or .safetensors file): model, its dataset, KL, scales,
 * and the MI and names from knobs.json when it matches the step (else computed and saved). */
knobs_status kn_slot_open(kn_slot *s, const char *path, int model_threads, int n_kl, int n_mi);
void kn_slot_close(kn_slot *s);
/* With the lock held: if the checkpoint file changed (and at most every `min_interval` s),
 * load it and recompute the statistics. Returns KNOBS_OK also when nothing changed; on a
 * failed load the old model stays and the error is returned. */
knobs_status kn_slot_refresh(kn_slot *s, double min_interval);
/* With the lock held: set latent j's name ("" clears it) and rewrite knobs.json atomically. */
knobs_status kn_slot_rename(kn_slot *s, int j, const char *name);
/* With the lock held: the name shown for latent j: the user's, else the factor of largest
 * MI when it is at least 0.05, else "z<j>". `factor` gets that factor's name or "". */
void kn_slot_label(const kn_slot *s, int j, char *name, size_t n, char *factor, size_t nf);

/* Encoding a PNG (bytes in memory) as the model's input (C,H,W) in [0,1]: resized (bilinear)
 * when the size differs, with a note; a channel mismatch (RGB for a gray model) is an error
 * KNOBS_ERR_ARG whose detail says what the model takes. */
knobs_status kn_png_to_input(const uint8_t *png, size_t len, int C, int H, int W, float *x,
                             char *note, size_t note_n);
/* (n,C,H,W) images as one PNG row of n tiles with 1-pixel gaps; *out malloc'ed. */
knobs_status kn_png_row(const float *x, int n, int C, int H, int W, uint8_t **out, size_t *len);
/* The same frames as an animated GIF (through a private temporary file); *out malloc'ed. */
knobs_status kn_gif_bytes(const float *x, int n, int C, int H, int W, int delay_cs, uint8_t **out,
                          size_t *len);

/* A response: status, type and an owned body. */
typedef struct {
  int status;
  const char *mime;
  char *body;
  size_t len;
  const char *disposition; /* Content-Disposition or NULL */
} kn_reply;

typedef struct {
  kn_slot *slots;
  int n_slots;
} kn_api;

/* Route one request: method "GET"/"POST", path without the query, `query(ctx, key)` reads a
 * query argument (NULL if absent), body and its length. Fills `r` (always: errors are JSON
 * {"error": "..."} with 400/404/405/413/500). */
void kn_api_handle(kn_api *api, const char *method, const char *path,
                   const char *(*query)(void *ctx, const char *key), void *qctx, const char *body,
                   size_t body_len, kn_reply *r);

/* The embedded page (generated from web/panel.html at build time). */
extern const unsigned char kn_panel_html[];
extern const size_t kn_panel_html_len;

#endif
