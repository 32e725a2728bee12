/* mpi3d.c: MPI3D (mpi3d_toy.npz, mpi3d_realistic.npz, mpi3d_real.npz): member `images`,
 * (N,64,64,3) uint8, a full factor grid in row-major order over object colour, object shape,
 * object size, camera height, background colour and two degrees of freedom of the arm:
 * 4 x 4 x 2 x 3 x 3 x 40 x 40 = 460800 images (toy, realistic) or 6 x 6 x 2 x 3 x 3 x 40 x 40 =
 * 1036800 (real). Factor values are class indices, as in disentanglement_lib.
 * Matched by file name (mpi3d*.npz). A stored (np.savez) member is read on demand by offset,
 * so the 5.7 GB file costs no memory; a deflated one (np.savez_compressed) is decompressed once
 * into memory as uint8. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "data/files.h"

static const char *const names[7] = {"object_color", "object_shape", "object_size", "camera_height",
                                     "background_color", "horizontal_axis", "vertical_axis"};
static const int sizes_toy[7] = {4, 4, 2, 3, 3, 40, 40};
static const int sizes_real[7] = {6, 6, 2, 3, 3, 40, 40};

static int mpi_match(const char *spec) {
  return !strncasecmp(kn_basename(spec), "mpi3d", 5) && kn_ends_with(spec, ".npz");
}

static knobs_status mpi_open(knobs_data *d, const char *spec, const knobs_data_opts *o) {
  char **members;
  int nm;
  knobs_status s = kn_zip_list(spec, &members, &nm);
  if (s) return s;
  char member[256] = "";
  for (int i = 0; i < nm; i++)
    if (!strcmp(members[i], "images.npy")) snprintf(member, sizeof member, "%s", members[i]);
  if (!member[0] && nm == 1) snprintf(member, sizeof member, "%s", members[0]);
  knobs_npz_names_free(members, nm);
  if (!member[0]) return kn_err(KNOBS_ERR_FORMAT, "%s: no member 'images' (MPI3D files hold images.npy)", spec);
  kn_npy_src src;
  if ((s = kn_npy_probe(spec, member, &src))) return s;
  const int64_t *sh = src.h.shape;
  if (src.h.dtype != KNOBS_U8 || src.h.ndim != 4 || sh[1] != 64 || sh[2] != 64 || sh[3] != 3)
    return kn_err(KNOBS_ERR_FORMAT, "%s: %s is %s with %d dimensions; MPI3D images are (N, 64, 64, 3) uint8",
                  spec, member, knobs_dtype_name(src.h.dtype), src.h.ndim);
  const int *sizes = sh[0] == 460800 ? sizes_toy : sh[0] == 1036800 ? sizes_real : NULL;
  if (!sizes)
    return kn_err(KNOBS_ERR_FORMAT, "%s: %lld images; MPI3D has 460800 (toy, realistic) or 1036800 (real)",
                  spec, (long long)sh[0]);
  kn_filedata *f = kn_filedata_new();
  if (!f) return knobs_last_status();
  kn_store_init(&f->obs, spec, sh[0], 3, 64, 64, KNOBS_U8, 1, 1.0f / 255);
  s = kn_store_from_npy(&f->obs, &src);
  if (!s) {
    if (o->factors) s = kn_factors_load(o->factors, sh[0], &f->fac);
    else kn_factors_grid(&f->fac, 7, names, sizes);
  }
  if (s) {
    kn_filedata_free(f);
    return s;
  }
  return kn_filedata_attach(d, f, kn_basename(spec), 1, 0, o);
}

const kn_data_entry kn_data_mpi3d = {
    NULL,
    "mpi3d*.npz: MPI3D toy/realistic (460800) or real (1036800) images, 64x64x3, 7 factors",
    mpi_match,
    mpi_open,
};
