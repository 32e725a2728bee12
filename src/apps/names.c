/* names.c: the names of a model's knobs, read from knobs.json beside its checkpoint (written by
 * the knob panel, `knobs serve`; format in docs/api.md): per latent the name a user gave it, or
 * else the ground-truth factor it shares most information with. Reading only: the panel owns
 * the file and writes it atomically. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/core.h"
#include "io/io.h"

knobs_status knobs_knob_names(const char *model_path, int Z, char (*names)[64]) {
  for (int z = 0; z < Z; z++) names[z][0] = 0;
  char path[1100];
  struct stat st;
  if (stat(model_path, &st) == 0 && S_ISDIR(st.st_mode)) {
    snprintf(path, sizeof path, "%s/knobs.json", model_path);
  } else {
    const char *sl = strrchr(model_path, '/');
    snprintf(path, sizeof path, "%.*s/knobs.json", sl ? (int)(sl - model_path) : 1, sl ? model_path : ".");
  }
  if (stat(path, &st) != 0) return KNOBS_OK; /* no names yet */
  char *txt = NULL;
  size_t n = 0;
  knobs_status s = kn_read_file(path, 16u << 20, &txt, &n);
  if (s) return s;
  cJSON *j = cJSON_ParseWithLength(txt, n);
  free(txt);
  const cJSON *lat = j ? cJSON_GetObjectItemCaseSensitive(j, "latents") : NULL;
  if (!cJSON_IsArray(lat)) {
    cJSON_Delete(j);
    return kn_err(KNOBS_ERR_FORMAT, "%s: not a knobs.json (no \"latents\" array)", path);
  }
  if (cJSON_GetArraySize(lat) != Z) {
    int got = cJSON_GetArraySize(lat);
    cJSON_Delete(j);
    return kn_err(KNOBS_ERR_FORMAT, "%s: names %d latents, the model has %d", path, got, Z);
  }
  for (int z = 0; z < Z; z++) {
    const cJSON *e = cJSON_GetArrayItem(lat, z);
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(e, "name"), *f = cJSON_GetObjectItemCaseSensitive(e, "factor");
    const char *v = cJSON_IsString(nm) && nm->valuestring[0] ? nm->valuestring : cJSON_IsString(f) ? f->valuestring : "";
    snprintf(names[z], 64, "%s", v);
  }
  cJSON_Delete(j);
  return KNOBS_OK;
}
