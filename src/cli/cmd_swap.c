/* cmd_swap.c: `knobs swap`: swap the static and dynamic codes of sequence pairs (a dsvae
 * model; docs/apps.md "Swap").
 *   knobs swap --model RUN [--data D] [--pairs 16] --out swap.png|swap.gif   the picture
 *   knobs swap --model RUN [--data D] --score [--n 200] [--out score.json]    the swap score
 * The picture has four rows a pair: A, B, A's dynamics with B's static code, B's dynamics with
 * A's static code, frames as columns (a GIF animates the frames). The score (dsprites:seq only)
 * prints the shares and writes them as JSON if --out is given. The numbers come from the
 * library; this file parses and prints. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static char *score_json(const char *model, const char *data, uint64_t seed, const knobs_swap_score *r) {
  char a[600], b[600], gen[40];
  size_t cap = 6144;
  char *j = malloc(cap);
  if (!j) return NULL;
  if (r->gen_static_acc < 0) snprintf(gen, sizeof gen, "null");
  else snprintf(gen, sizeof gen, "%.17g", r->gen_static_acc);
  snprintf(j, cap,
           "{\n  \"knobs_version\": \"%s\",\n  \"command\": \"swap\",\n  \"model\": %s,\n  \"data\": %s,\n"
           "  \"seed\": %llu,\n  \"pairs\": %d,\n  \"frames\": %ld,\n"
           "  \"static_accuracy\": %.17g,\n  \"static_accuracy_sequence\": %.17g,\n"
           "  \"shape_accuracy\": %.17g,\n  \"shape_accuracy_sequence\": %.17g,\n"
           "  \"dynamic_accuracy\": %.17g,\n  \"dynamic_accuracy_3\": %.17g,\n"
           "  \"generation_static_accuracy\": %s,\n"
           "  \"reconstruction_static_accuracy\": %.17g,\n  \"reconstruction_static_accuracy_sequence\": %.17g,\n"
           "  \"reconstruction_dynamic_accuracy\": %.17g,\n  \"static_latents\": %d,\n  \"static_latent_mask\": %llu,\n"
           "  \"definitions\": {\n"
           "    \"static_accuracy\": \"share of swapped frames whose oracle shape and scale equal the static-code donor's\",\n"
           "    \"static_accuracy_sequence\": \"share of swapped sequences whose shape and scale by the vote of their frames "
           "(the most frequent; the lower class on a tie) equal the static-code donor's\",\n"
           "    \"shape_accuracy\": \"the same for the shape alone (chance 1/3)\",\n"
           "    \"dynamic_accuracy\": \"share of swapped frames whose oracle posX and posY are each within 1 grid step "
           "(of 32, about one pixel) of the dynamics donor's frame\",\n"
           "    \"dynamic_accuracy_3\": \"the same within 3 grid steps\",\n"
           "    \"generation_static_accuracy\": \"static code of one sequence, dynamics sampled from the learned prior: "
           "share of frames 2..T whose shape and scale equal frame 1's (null: a per-frame model has no prior over "
           "dynamics)\",\n"
           "    \"reconstruction\": \"the same checks on each sequence decoded from its own codes\",\n"
           "    \"static_latents\": \"a per-frame model (the baseline): latents taken as the static code, the most "
           "constant within sequences, their number chosen by the best swaps on 64 pairs of another draw; 0 for a "
           "dsvae\"\n  }\n}\n",
           knobs_version(), cli_json_str(a, sizeof a, model), cli_json_str(b, sizeof b, data),
           (unsigned long long)seed, r->pairs, r->frames, r->static_acc, r->static_seq_acc, r->shape_acc,
           r->shape_seq_acc, r->dynamic_acc, r->dynamic_acc3, gen, r->recon_static_acc, r->recon_static_seq_acc,
           r->recon_dynamic_acc, r->static_dims, r->static_mask);
  return j;
}

int cmd_swap(int argc, char **argv) {
  const char *cmd = "swap";
  const char *model = NULL, *data = NULL, *out = NULL;
  int pairs = 16, n = 200, score = 0, threads = 0;
  uint64_t seed = 1;
  cli_opt o[] = {
      {"--model", OPT_STR, &model, 0, 0, "RUN", "checkpoint or run folder of a dsvae model (--score also takes a per-frame model: the baseline)", 0},
      {"--data", OPT_STR, &data, 0, 0, "D", "sequence data (default: the model's)", 0},
      {"--pairs", OPT_INT, &pairs, 1, 256, "N", "pairs in the picture (default 16)", 0},
      {"--out", OPT_STR, &out, 0, 0, "PATH", "the picture (.png, or .gif to animate the frames); with --score, "
       "the score's .json", 0},
      {"--score", OPT_FLAG, &score, 0, 0, NULL, "the swap score on dsprites:seq (oracle reads of the swapped frames)", 0},
      {"--n", OPT_INT, &n, 1, 100000, "N", "with --score: pairs scored (default 200)", 0},
      {"--seed", OPT_U64, &seed, 0, 0, "S", "draw of the sequences (default 1)", 0},
      {"--threads", OPT_INT, &threads, 0, 1024, "N", "threads (0: as trained)", 0},
  };
  const int no = (int)(sizeof o / sizeof o[0]);
  int rc = cli_parse(cmd, "--model RUN [--data D] (--out swap.png|swap.gif [--pairs N] | --score [--n N] "
                     "[--out score.json])", argc, argv, o, no, NULL, 0, NULL);
  if (rc) return rc < 0 ? 0 : rc;
  if (!model) return cli_usage_error(cmd, "--model RUN is required");
  if (!score && !out) return cli_usage_error(cmd, "--out PATH is required (or --score)");
  if (score && cli_find(o, no, "--pairs")->seen) return cli_usage_error(cmd, "--pairs is for the picture; --score takes --n");
  if (!score && cli_find(o, no, "--n")->seen) return cli_usage_error(cmd, "--n goes with --score");
  static const char *const pics[] = {".png", ".gif", NULL}, *const jsons[] = {".json", NULL};
  if (out && cli_check_ext(cmd, "--out", out, score ? jsons : pics)) return 1;
  knobs_model *m = NULL;
  knobs_data *d = NULL;
  if ((rc = cli_open_model(cmd, model, threads, &m))) return rc;
  if (score && knobs_dsvae_dims(m, NULL, NULL, NULL)) { /* a per-frame model: the baseline, on sequence data */
    if (!data) rc = cli_usage_error(cmd, "--data (sequences) is required to score a model that is not a dsvae");
    else if (knobs_data_open(data, NULL, &d)) rc = cli_lib_fail(cmd, "cannot open the data");
  } else
    rc = cli_open_data(cmd, m, data, &d);
  if (rc) {
    knobs_model_free(m);
    return rc;
  }
  if (!score) {
    if (knobs_swap_picture(m, d, pairs, seed, out)) rc = cli_lib_fail(cmd, "cannot draw the swaps");
    else fprintf(stderr, "wrote %s: %d pairs, rows A, B, A's dynamics + B's static code, B's dynamics + A's\n", out,
                 pairs);
  } else {
    knobs_swap_score r;
    char *json = NULL;
    if (knobs_swap_evaluate(m, d, n, seed, &r)) rc = cli_lib_fail(cmd, "cannot score the swaps");
    if (!rc) {
      printf("swap score of %s on %s: %d pairs, %ld swapped frames\n", model, knobs_data_info_get(d)->name, r.pairs,
             r.frames);
      if (r.static_dims)
        printf("  (a per-frame model: its %d latents most constant within sequences are the static code)\n",
               r.static_dims);
      printf("  %-28s %7.4f   shape and scale of the static-code donor, by the vote of the frames\n",
             "static accuracy (sequence)", r.static_seq_acc);
      printf("  %-28s %7.4f   the same, frame by frame\n", "static accuracy (frames)", r.static_acc);
      printf("  %-28s %7.4f / %.4f   shape alone, sequence / frames (chance 1/3)\n", "shape accuracy",
             r.shape_seq_acc, r.shape_acc);
      printf("  %-28s %7.4f   posX and posY within 1 grid step of the dynamics donor\n", "dynamic accuracy",
             r.dynamic_acc);
      printf("  %-28s %7.4f   the same within 3 grid steps\n", "dynamic accuracy (3 steps)", r.dynamic_acc3);
      if (r.gen_static_acc >= 0)
        printf("  %-28s %7.4f   prior dynamics keep frame 1's shape and scale\n", "generation static accuracy",
               r.gen_static_acc);
      printf("  %-28s %7.4f / %.4f / %.4f   static (sequence, frames) / dynamic, own codes\n", "reconstruction",
             r.recon_static_seq_acc, r.recon_static_acc, r.recon_dynamic_acc);
      if (out) {
        if (!(json = score_json(model, data ? data : knobs_data_info_get(d)->name, seed, &r)))
          rc = cli_fail(cmd, "out of memory");
        else if (!(rc = cli_write_text(cmd, out, json))) fprintf(stderr, "wrote %s\n", out);
      }
    }
    free(json);
  }
  knobs_data_free(d);
  knobs_model_free(m);
  return rc;
}
