/* main.c: the knobs command: a table of commands, `knobs help`, `knobs CMD --help`.
 * Each command lives in its own file (cmd_<name>.c) and is listed here once. */
#include <string.h>

#include "cli/cli.h"
#include "cli/plot.h"

/* commands (one file each) */
int cmd_metrics(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_data(int argc, char **argv);
int cmd_sweep(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_select(int argc, char **argv);

const cli_command cli_commands[] = {
    {"train", cmd_train, "train a model (default: beta-VAE on the built-in dSprites)"},
    {"encode", cmd_encode, "encode observations of a dataset into codes (.npy)"},
    {"traverse", cmd_traverse, "latent traversal of one observation (PNG grid or GIF)"},
    {"reconstruct", cmd_reconstruct, "observations and their reconstructions (PNG)"},
    {"sample", cmd_sample, "decode samples of the prior (PNG)"},
    {"metrics", cmd_metrics, "disentanglement metrics of codes and factors given as .npy arrays"},
    {"eval", cmd_eval, "evaluate a model on a dataset: every disentanglement metric, ELBO"},
    {"info", cmd_info, "show a run or checkpoint: config, step, tensors, last losses"},
    {"name", cmd_name, "name a model's knobs by the factors they track (knobs.json: MI, KL, calibration)"},
    {"edit", cmd_edit, "counterfactual edits: change chosen knobs of an observation and decode (PNG)"},
    {"design", cmd_design, "search latent space for plausible designs with a property (PNG + report)"},
    {"ica", cmd_ica, "FastICA of a dataset's observations: sources, unmixing, kurtosis; MCC against the factors"},
    {"swap", cmd_swap, "sequences: swap the static and dynamic codes of pairs (dsvae; PNG/GIF), or score the swaps"},
    {"orbit", cmd_orbit, "a symmetry as a loop in latent space: PCA plane, circle fit, winding number (JSON + PNG)"},
    {"perturb", cmd_perturb, "predict a held-out cell type's response to a perturbation by latent arithmetic (scGen)"},
    {"sweep", cmd_sweep, "train and evaluate a grid of runs (seeds, models, settings) on local jobs or MPI ranks"},
    {"report", cmd_report, "a sweep's results: one table (CSV, JSON), box plots per model and setting, metric correlations"},
    {"select", cmd_select, "rank a sweep's runs without labels (UDR over the seeds of each setting)"},
    {"serve", cmd_serve, "the knob panel: turn a model's latents in a browser (docs/api.md)"},
    {"data", cmd_data, "datasets: list, info, show (one row per factor), export to .npy"},
    {"help", cmd_help, "list the commands, or show one command's help"},
    {"version", cmd_version, "print the version"},
};
const int cli_ncommands = (int)(sizeof cli_commands / sizeof cli_commands[0]);

static void list_commands(FILE *f) {
  fprintf(f, "knobs %s: find the control knobs of data (disentangled representation learning)\n\n"
             "usage: knobs COMMAND [options]\n\ncommands:\n", knobs_version());
  for (int i = 0; i < cli_ncommands; i++) fprintf(f, "  %-12s %s\n", cli_commands[i].name, cli_commands[i].help);
  fprintf(f, "\n'knobs COMMAND --help' shows a command's options.\n");
}

static const cli_command *find(const char *name) {
  for (int i = 0; i < cli_ncommands; i++)
    if (!strcmp(cli_commands[i].name, name)) return &cli_commands[i];
  return NULL;
}

int cmd_help(int argc, char **argv) {
  if (argc < 2) {
    list_commands(stdout);
    return 0;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    printf("usage: knobs help [COMMAND | models | data]\n\n  knobs help           the commands\n"
           "  knobs help COMMAND   one command's options (as 'knobs COMMAND --help')\n"
           "  knobs help models    every model, its loss and its own settings\n"
           "  knobs help data      the built-in datasets, their factors and sizes, and the files read\n");
    return 0;
  }
  if (!strcmp(argv[1], "data")) return cli_help_data();
  if (!strcmp(argv[1], "models")) return cli_help_models(stdout);
  const cli_command *c = find(argv[1]);
  if (!c) return cli_usage_error("help", "unknown command '%s'", argv[1]);
  char *av[] = {argv[1], "--help", NULL};
  return c->run(2, av);
}

int cmd_version(int argc, char **argv) {
  (void)argc;
  (void)argv;
  printf("knobs %s\n", knobs_version());
  printf("blas: %s\n", knobs_blas_info());
  printf("mpi: %s\n", cli_mpi_info());
  printf("plots: %s\n", cli_plot_info());
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    list_commands(stderr);
    return 1;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) return cmd_help(1, argv);
  if (!strcmp(argv[1], "--version")) return cmd_version(1, argv);
  const cli_command *c = find(argv[1]);
  if (!c) {
    fprintf(stderr, "knobs: unknown command '%s' (see 'knobs help')\n", argv[1]);
    return 1;
  }
  int rc = cli_mpi_start(&argc, &argv);
  if (rc) return rc;
  if (cli_mpi_size() > 1 && strcmp(c->name, "train") && strcmp(c->name, "sweep")) {
    if (cli_mpi_rank() == 0)
      fprintf(stderr, "knobs: %s does not run on several MPI ranks (only train and sweep do): run it as one "
              "process\n", c->name);
    cli_mpi_end();
    return 1;
  }
  rc = c->run(argc - 1, argv + 1);
  cli_mpi_end();
  return rc;
}
