/* options.c: knobs_metrics_opts: its defaults, the table that describes every option (name,
 * type, range, help, the metrics that read it), setting an option from text, and the range
 * check the entry points run. The table is the one place ranges are written: the entry points
 * check against it and front ends (the CLI) build their flags from it. It does not know the
 * callbacks or the message names (codes_name ...), which are not user options. */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "metrics/metrics.h"

void knobs_metrics_opts_default(knobs_metrics_opts *o) {
  memset(o, 0, sizeof *o);
  o->threads = 1;
  o->train_frac = 0.9;
  o->num_train = 10000;
  o->num_test = 5000;
  o->num_bins = 20;
  o->batch_size = 64;
  o->num_eval = 5000;
  o->num_variance = 10000;
  o->prune_threshold = 0.05;
  o->gbt_stages = 100;
  o->gbt_depth = 3;
  o->gbt_learning_rate = 0.1;
  o->sap_C = 0.01;
  o->logreg_C = 1.0;
  o->irs_quantile = 0.99;
  o->intervention_n = 5000;
  o->intervention_scale_n = 10000;
  o->intervention_active = 0.05;
  o->mig_sampled_samples = 10000;
  o->elbo_points = 10000;
  o->codes_name = "codes";
  o->factors_name = "factors";
  o->logvar_name = "logvar";
}

#define A KNOBS_MOPT_ARRAYS
#define DS KNOBS_MOPT_DATASET
#define F(nm_, field_, kind_, lo_, hi_, meta_, metrics_, inputs_, help_)                               \
  {.name = nm_, .kind = KNOBS_MOPT_##kind_, .offset = offsetof(knobs_metrics_opts, field_), .min = lo_,  \
   .max = hi_, .meta = meta_, .help = help_, .metrics = metrics_, .inputs = inputs_}
static const knobs_metrics_field fields[] = {
    F("seed", seed, U64, 0, 0, "S", "*", A | DS, "seed of every random draw"),
    F("threads", threads, INT, 1, 1024, "N", "*", A | DS, "worker threads"),
    F("train_frac", train_frac, DOUBLE, 1e-9, 1 - 1e-9, "F", "dci,sap,explicitness,mcc", A,
      "the first fraction of the rows trains the classifiers (mcc: its matching), the rest tests them"),
    F("num_train", num_train, INT, 1, 1e8, "N", "*", A | DS,
      "dataset: points drawn to train the array metrics; beta_vae, factor_vae: training points"),
    F("num_test", num_test, INT, 1, 1e8, "N", "*", DS, "dataset: points drawn to test the array metrics"),
    F("num_bins", num_bins, INT, 1, 4096, "N", "mig,modularity,unsupervised", A | DS,
      "histogram bins of the discretised codes"),
    F("batch_size", batch_size, INT, 2, 1e6, "N", "beta_vae,factor_vae", A | DS,
      "beta_vae, factor_vae: observations per point"),
    F("num_eval", num_eval, INT, 1, 1e8, "N", "beta_vae,factor_vae", A | DS, "beta_vae, factor_vae: evaluation points"),
    F("num_variance", num_variance, INT, 2, 1e8, "N", "factor_vae", DS, "factor_vae: points of the global variance"),
    F("prune_threshold", prune_threshold, DOUBLE, 0, 1e300, "X", "factor_vae", A | DS,
      "factor_vae: dimensions with a std below this are inactive"),
    F("gbt_stages", gbt_stages, INT, 1, 8192, "N", "dci", A | DS, "dci: boosting stages"),
    F("gbt_depth", gbt_depth, INT, 1, 7, "N", "dci", A | DS, "dci: tree depth"),
    F("gbt_learning_rate", gbt_learning_rate, DOUBLE, 1e-12, 1e6, "X", "dci", A | DS, "dci: learning rate"),
    F("sap_c", sap_C, DOUBLE, 1e-300, 1e300, "X", "sap", A | DS, "sap: the SVM's C"),
    F("sap_continuous", sap_continuous, FLAG, 0, 1, NULL, "sap", A | DS, "sap: factors are continuous (R^2 scores)"),
    F("logreg_c", logreg_C, DOUBLE, 1e-300, 1e300, "X", "beta_vae,explicitness", A | DS,
      "beta_vae, explicitness: inverse L2 strength"),
    F("irs_quantile", irs_quantile, DOUBLE, 0, 1, "Q", "irs", A | DS, "irs: diff quantile"),
    F("mig_sampled_samples", mig_sampled_samples, INT, 1, 1e8, "N", "mig_sampled", A | DS,
      "mig_sampled: samples per entropy estimate"),
    F("mig_sampled_factors", mig_sampled_factors, STR, 0, 0, "LIST", "mig_sampled", A | DS,
      "mig_sampled: factors scored (names or indices; default: every factor that varies)"),
    F("mig_sampled_points", mig_sampled_points, INT, 0, 4e6, "N", "mig_sampled", DS,
      "mig_sampled: posteriors encoded (0: the whole dataset)"),
    F("intervention_n", intervention_n, INT, 1, 1e8, "N", "intervention", DS, "intervention: interventions"),
    F("intervention_scale_n", intervention_scale_n, INT, 2, 1e8, "N", "intervention", DS,
      "intervention: observations for the code scales"),
    F("intervention_active", intervention_active, DOUBLE, 0, 1, "X", "intervention", DS,
      "intervention: a dimension is active if its std >= X times the largest"),
    F("intervention_cyclic", intervention_cyclic, STR, 0, 0, "LIST", "intervention", DS,
      "intervention: auto | none | names of the factors that wrap"),
    F("elbo_points", elbo_points, INT, 1, 1e8, "N", "elbo", DS, "elbo: held-out observations"),
    F("mcc_spearman", mcc_spearman, FLAG, 0, 1, NULL, "mcc", A | DS, "mcc: Spearman (rank) correlations, not Pearson"),
    F("amari_unmixing", amari_unmixing, STR, 0, 0, "PATH", "amari", A | DS, "amari: .npy of the estimated unmixing W (k,d)"),
    F("amari_mixing", amari_mixing, STR, 0, 0, "PATH", "amari", A | DS, "amari: .npy of the true mixing A (d,k)"),
};
#undef F
#undef A
#undef DS
#define NFIELDS (int)(sizeof fields / sizeof fields[0])

const knobs_metrics_field *knobs_metrics_opt_field(int i) { return i >= 0 && i < NFIELDS ? &fields[i] : NULL; }

static const knobs_metrics_field *find(const char *name) {
  for (int i = 0; name && i < NFIELDS; i++)
    if (!strcmp(fields[i].name, name)) return &fields[i];
  return NULL;
}

knobs_status knobs_metrics_opts_set(knobs_metrics_opts *o, const char *name, const char *value) {
  const knobs_metrics_field *f = find(name);
  if (!f) return kn_err(KNOBS_ERR_ARG, "metrics: unknown option '%s'", name ? name : "(null)");
  if (!value || !*value) return kn_err(KNOBS_ERR_ARG, "metrics: option '%s': empty value", f->name);
  char *p = (char *)o + f->offset, *end = NULL;
  errno = 0;
  switch (f->kind) {
  case KNOBS_MOPT_INT: {
    long long x = strtoll(value, &end, 10);
    if (end == value || *end || errno)
      return kn_err(KNOBS_ERR_ARG, "metrics: option '%s': '%s' is not a whole number", f->name, value);
    if ((double)x < f->min || (double)x > f->max)
      return kn_err(KNOBS_ERR_ARG, "metrics: option '%s': %lld is out of range [%.10g, %.10g]", f->name, x, f->min, f->max);
    *(int *)p = (int)x;
    return KNOBS_OK;
  }
  case KNOBS_MOPT_U64: {
    unsigned long long x = strtoull(value, &end, 10);
    if (strchr(value, '-') || end == value || *end || errno)
      return kn_err(KNOBS_ERR_ARG, "metrics: option '%s': '%s' is not a non-negative whole number", f->name, value);
    *(uint64_t *)p = (uint64_t)x;
    return KNOBS_OK;
  }
  case KNOBS_MOPT_DOUBLE: {
    double x = strtod(value, &end);
    if (end == value || *end || errno || !isfinite(x))
      return kn_err(KNOBS_ERR_ARG, "metrics: option '%s': '%s' is not a finite number", f->name, value);
    if (x < f->min || x > f->max)
      return kn_err(KNOBS_ERR_ARG, "metrics: option '%s': %g is out of range [%.10g, %.10g]", f->name, x, f->min, f->max);
    *(double *)p = x;
    return KNOBS_OK;
  }
  case KNOBS_MOPT_FLAG:
    if (!strcmp(value, "1") || !strcasecmp(value, "true")) *(int *)p = 1;
    else if (!strcmp(value, "0") || !strcasecmp(value, "false")) *(int *)p = 0;
    else return kn_err(KNOBS_ERR_ARG, "metrics: option '%s': '%s' is not 0, 1, true or false", f->name, value);
    return KNOBS_OK;
  case KNOBS_MOPT_STR: *(const char **)p = value; return KNOBS_OK;
  }
  return kn_err(KNOBS_ERR_ARG, "metrics: option '%s' has an unknown kind", f->name);
}

knobs_status kn_metrics_check_opts(const knobs_metrics_opts *o) {
  for (int i = 0; i < NFIELDS; i++) {
    const knobs_metrics_field *f = &fields[i];
    const char *p = (const char *)o + f->offset;
    double v;
    if (f->kind == KNOBS_MOPT_INT) v = *(const int *)p;
    else if (f->kind == KNOBS_MOPT_DOUBLE) v = *(const double *)p;
    else continue;
    if (!(v >= f->min && v <= f->max)) /* NaN fails too */
      return kn_err(KNOBS_ERR_ARG, "metrics: option '%s' = %g is out of range [%.10g, %.10g]", f->name, v, f->min, f->max);
  }
  return KNOBS_OK;
}
