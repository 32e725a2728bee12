/* test_data_corpus.c: replays the committed corpus of bad files (tests/corpus, see its MANIFEST):
 * each must be refused with the expected status and a message that names the file and says
 * what is wrong, without crashing (the suite also runs under ASan/UBSan). Every file in the
 * corpus must be listed, so a file added without a case fails here. Run from the repo root. */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/io.h"
#include "knobs.h"
#include "t.h"

#define ROOT "tests/corpus"
#define MAXCASES 512

static char listed[MAXCASES][256];
static int nlisted, unlisted;

static int status_of(const char *name, knobs_status *s) {
  static const struct {
    const char *n;
    knobs_status s;
  } t[] = {{"OK", KNOBS_OK}, {"ARG", KNOBS_ERR_ARG}, {"IO", KNOBS_ERR_IO}, {"FORMAT", KNOBS_ERR_FORMAT},
           {"NOMEM", KNOBS_ERR_NOMEM}, {"DATA", KNOBS_ERR_DATA}, {"UNSUPPORTED", KNOBS_ERR_UNSUPPORTED}};
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
    if (!strcmp(t[i].n, name)) return *s = t[i].s, 1;
  return 0;
}

static knobs_status open_data(const char *spec, const char *factors) {
  knobs_data_opts o;
  knobs_data_opts_default(&o);
  o.factors = factors;
  knobs_data *d = NULL;
  knobs_status s = knobs_data_open(spec, &o, &d);
  if (!s) {
    knobs_data_free(d);
    return s;
  }
  return d ? KNOBS_ERR_ARG /* a failed open must not return a dataset */ : s;
}

static int check_listed(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  if (flag != FTW_F) return 0;
  const char *rel = path + strlen(ROOT) + 1;
  if (!strcmp(rel, "MANIFEST") || !strcmp(rel, "make_corpus.c") || !strcmp(rel, "README.md")) return 0;
  for (int i = 0; i < nlisted; i++) {
    size_t l = strlen(listed[i]);
    if (!strcmp(listed[i], rel) || (!strncmp(listed[i], rel, l) && rel[l] == '/')) return 0; /* a listed folder */
  }
  CHECK(0, "%s is in the corpus but not in its MANIFEST", rel);
  unlisted++;
  return 0;
}

int main(void) {
  T_CASE("corpus");
  FILE *m = fopen(ROOT "/MANIFEST", "r");
  CHECK(m != NULL, "cannot open %s/MANIFEST (run from the repository root)", ROOT);
  if (!m) return t_done();
  char line[1024];
  int ncases = 0, lineno = 0;
  while (fgets(line, sizeof line, m)) {
    lineno++;
    line[strcspn(line, "\n")] = 0;
    if (!line[0] || line[0] == '#') continue;
    char kind[16], path[256], st[32], named[256];
    int used = 0;
    if (sscanf(line, "%15s %255s %31s %255s %n", kind, path, st, named, &used) != 4) {
      CHECK(0, "MANIFEST:%d: cannot parse '%s'", lineno, line);
      continue;
    }
    const char *text = line + used;
    knobs_status want;
    if (!status_of(st, &want)) {
      CHECK(0, "MANIFEST:%d: unknown status %s", lineno, st);
      continue;
    }
    if (nlisted < MAXCASES) snprintf(listed[nlisted++], sizeof listed[0], "%s", path);
    char full[512], name[512];
    snprintf(full, sizeof full, "%s/%s", ROOT, path);
    snprintf(name, sizeof name, "%s/%s", ROOT, strcmp(named, ".") ? named : path);
    knobs_clear_error();
    knobs_status got;
    if (!strcmp(kind, "aux")) {
      CHECK(kn_file_exists(full), "MANIFEST:%d: %s is missing", lineno, full);
      continue;
    } else if (!strcmp(kind, "data")) {
      got = open_data(full, NULL);
    } else if (!strcmp(kind, "factors")) {
      got = open_data(ROOT "/ok/four.csv", full);
    } else if (!strcmp(kind, "st")) {
      kn_safetensors s;
      got = kn_st_read(full, &s);
      if (!got) kn_st_free(&s);
    } else {
      CHECK(0, "MANIFEST:%d: unknown kind %s", lineno, kind);
      continue;
    }
    ncases++;
    const char *e = knobs_last_error();
    CHECK(got == want, "%s: status %s, want %s (%s)", full, knobs_status_name(got), knobs_status_name(want), e);
    CHECK(strstr(e, name) != NULL, "%s: the message does not name %s: '%s'", full, name, e);
    CHECK(!strcmp(text, "-") || strstr(e, text) != NULL, "%s: the message lacks '%s': '%s'", full, text, e);
  }
  fclose(m);
  CHECK(ncases >= 60, "only %d cases replayed", ncases);
  nftw(ROOT, check_listed, 16, FTW_PHYS);

  /* git keeps no empty folders: this case is made here */
  char dir[] = "/tmp/knobs-corpus-XXXXXX";
  CHECK(mkdtemp(dir) != NULL, "mkdtemp");
  knobs_clear_error();
  knobs_status s = open_data(dir, NULL);
  CHECK(s == KNOBS_ERR_DATA && strstr(knobs_last_error(), dir) && strstr(knobs_last_error(), "no .png files"), "empty folder: %s",
        knobs_last_error());
  rmdir(dir);
  printf("%d bad files replayed\n", ncases);
  return t_done();
}
