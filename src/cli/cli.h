/* cli.h: what the command files share: the command table, the flag parser, messages, and the
 * progress line. Commands include only knobs.h and this file.
 *
 * Exit codes: 0 done, 1 usage error (unknown flag, bad value, a request the library calls
 * invalid), 2 runtime failure, 130 interrupted; for a library failure they come from the status
 * alone (cli_exit_code), never from the message. Errors go to stderr as
 * "knobs: CMD: what went wrong: detail". */
#ifndef KN_CLI_H
#define KN_CLI_H
#include <stdint.h>
#include <stdio.h>

#include "knobs.h"

typedef struct {
  const char *name;
  int (*run)(int argc, char **argv); /* argv[0] is the command name */
  const char *help;                  /* one line */
} cli_command;
extern const cli_command cli_commands[];
extern const int cli_ncommands;

/* The commands (one file each; listed in main.c's table). */
int cmd_help(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_encode(int argc, char **argv);
int cmd_traverse(int argc, char **argv);
int cmd_reconstruct(int argc, char **argv);
int cmd_sample(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_name(int argc, char **argv);
int cmd_edit(int argc, char **argv);
int cmd_design(int argc, char **argv);
int cmd_ica(int argc, char **argv);
int cmd_orbit(int argc, char **argv);
int cmd_perturb(int argc, char **argv);
int cmd_swap(int argc, char **argv);
/* `knobs help models` (help_models.c): every model, its loss and its own settings. */
int cli_help_models(FILE *f);
/* `knobs help data`: every built-in dataset (description, size, factors) and the files read. */
int cli_help_data(void);

typedef enum {
  OPT_INT,     /* int, range-checked */
  OPT_LONG,    /* long, range-checked */
  OPT_U64,     /* uint64_t */
  OPT_DOUBLE,  /* double, range-checked, finite */
  OPT_STR,     /* const char * pointing into argv */
  OPT_FLAG,    /* int set to 1, takes no value */
  OPT_MULTI    /* cli_multi: a flag that may repeat, each value kept in order */
} cli_opt_kind;

#define CLI_MAX_MULTI 32
typedef struct {
  const char *v[CLI_MAX_MULTI]; /* pointing into argv */
  int n;
} cli_multi;

typedef struct {
  const char *name;  /* "--steps" */
  cli_opt_kind kind;
  void *ptr;
  double min, max;   /* accepted range for numbers (inclusive) */
  const char *meta;  /* value placeholder in help: "N", "PATH" */
  const char *help;
  int seen;          /* set by cli_parse */
} cli_opt;

/* Parse argv[1..] into opts; positional arguments go to pos[0..max_pos-1] (*npos of them).
 * Accepts "--name value" and "--name=value"; "-h"/"--help" print the usage to stdout.
 * Returns 0 to go on, 1 on a usage error (already reported), -1 after printing help. */
int cli_parse(const char *cmd, const char *synopsis, int argc, char **argv, cli_opt *opts,
              int nopts, const char **pos, int max_pos, int *npos);
void cli_usage(FILE *f, const char *cmd, const char *synopsis, const cli_opt *opts, int nopts);
const cli_opt *cli_find(const cli_opt *opts, int nopts, const char *name);

/* "knobs: CMD: <message>" on stderr; return 1 (usage) or 2 (runtime) for `return cli_...;`. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cli_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The exit code of a status: KNOBS_OK 0, KNOBS_ERR_ARG 1 (the request is invalid: a usage
 * error), KNOBS_ERR_INTERRUPTED 130, anything else 2. */
int cli_exit_code(knobs_status s);
/* Failure of a library call: "knobs: CMD: <what>: <knobs_last_error()>"; returns
 * cli_exit_code(knobs_last_status()) (2 if the status says OK, which is a bug somewhere). */
int cli_lib_fail(const char *cmd, const char *what);

/* mpi.c: the ranks of an MPI launch (rank 0 of 1 without one). cli_mpi_start starts MPI when
 * a launcher started the process (0, or an exit status after reporting); cli_mpi_parallel is
 * the data-parallel sums for knobs_model_set_parallel (a stop asked on any rank reaches
 * *stop on all); cli_mpi_bcast sends rank 0's bytes to all; cli_mpi_same_u64 is 1 if every
 * rank holds v; send/poll/recv carry a sweep's small int messages (nonzero: failed). */
int cli_mpi_start(int *argc, char ***argv);
void cli_mpi_end(void);
int cli_mpi_rank(void);
int cli_mpi_size(void);
void cli_mpi_abort(int code) __attribute__((noreturn));
const char *cli_mpi_info(void);
knobs_parallel cli_mpi_parallel(volatile int *stop);
int cli_mpi_bcast(void *buf, int bytes);
int cli_mpi_same_u64(uint64_t v);
int cli_mpi_send(int dest, const int *msg, int n);
int cli_mpi_poll(int *src, int *msg, int n);
int cli_mpi_recv(int src, int *msg, int n);

/* Parse "lo:hi:steps" (e.g. "-2:2:11"). Returns 0 on success. */
int cli_parse_range(const char *s, double *lo, double *hi, int *steps);
/* Parse a comma list of names into out[] (pointers into a static copy); returns the count or
 * -1 if more than max. */
int cli_split_list(const char *s, char *buf, size_t bufsz, const char **out, int max);

/* A progress line: on a terminal it rewrites one line in place; otherwise it prints a plain
 * line at most every `log_seconds`. */
typedef struct {
  int tty;
  double last_print, start, log_seconds;
} cli_progress;
void cli_progress_init(cli_progress *p, FILE *f);
void cli_progress_line(cli_progress *p, FILE *f, int final, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The knobs of the model at `path` for commands that print or pick latents: knobs.json if
 * there is one, else NULL (a note on stderr if the file is unreadable). */
knobs_knobs *cli_read_knobs(const char *cmd, const char *path, int Z);
/* "1h02m", "3m05s", "12s" */
void cli_fmt_duration(double seconds, char *buf, size_t n);

/* Load a model (checkpoint file or run folder); 0 on success, else an exit code (reported). */
int cli_open_model(const char *cmd, const char *path, int threads, knobs_model **m);
/* Open `spec` (or the model's own data if NULL) with the model's data options and check the
 * shape; 0 on success, else an exit code (reported). */
int cli_open_data(const char *cmd, const knobs_model *m, const char *spec, knobs_data **d);
/* Both: the model at `path` and the data `spec` (NULL: the model's); on failure neither is left
 * open. Returns 0 or the exit status. */
int cli_open_model_data(const char *cmd, const char *path, int threads, const char *spec, knobs_model **m,
                        knobs_data **d);

/* 0 if `spec` names a built-in dataset ("physics", "dsprites:color"), 1 if it is a path: a
 * user's own file, whose rows a command takes all, in order, unless told to draw. */
int cli_data_is_file(const char *spec);

/* 0 if `path` ends in one of the NULL-terminated extensions (".png", case-insensitive); else a
 * usage error naming `flag`, the path and the supported extensions; returns 1. */
int cli_check_ext(const char *cmd, const char *flag, const char *path, const char *const *exts);

/* The output files of one command, committed together or not at all: cli_out_add registers a
 * final path and returns the temporary name (same folder and extension) to write it under
 * (NULL if too many or too long); cli_out_commit renames every temporary to its final name and
 * returns 0, or reports, removes what is left and returns 2; cli_out_abort removes the
 * temporaries (call it on any failure before commit). */
#define CLI_MAX_OUTPUTS 40 /* knobs report: a PNG per plotted metric, and its tables */
typedef struct {
  int n;
  char final[CLI_MAX_OUTPUTS][1024];
  char tmp[CLI_MAX_OUTPUTS][1100];
} cli_outputs;
const char *cli_out_add(cli_outputs *o, const char *path);
int cli_out_commit(const char *cmd, cli_outputs *o);
void cli_out_abort(cli_outputs *o);
/* Write `text` to `path` atomically (through cli_outputs); 0 or an exit code (reported). */
int cli_write_text(const char *cmd, const char *path, const char *text);
/* Add `path` to o and write `text` to its temporary; 0, or an exit code (reported: abort o). */
int cli_out_text(const char *cmd, cli_outputs *o, const char *path, const char *text);
/* Create the output folder `dir` unless it exists (*made = 1 if this call made it, for an
 * rmdir when the outputs fail); 0, or exit code 2 (reported). */
int cli_out_dir(const char *cmd, const char *dir, int *made);
/* An error message into err (n bytes), printf-style; returns -1 (for `return cli_errf(...)` in
 * functions that report through a buffer: the sweep folder, the results table). */
int cli_errf(char *err, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* s as a JSON string literal, quotes included, into out (n bytes; truncated to fit, still a
 * valid literal); returns out. Escapes quote, backslash and control characters. */
const char *cli_json_str(char *out, size_t n, const char *s);

#endif
