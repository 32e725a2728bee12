#!/usr/bin/python3
"""make_cells_ref.py: AnnData files written by anndata itself, for tests/test_counts_files.c.

Needs python3-anndata (Debian 12: anndata 0.8.0, h5py 3.7); the suite reads only the outputs.
Writes:
  cells_ref.h5ad      7 cells x 5 genes, X a CSR matrix of float32 counts; obs: celltype
                      (categorical B, NK, T with one missing value), condition (categorical
                      ctrl, stim), n_counts (numbers: not a factor); layers/counts the same
                      counts as a dense int64 array
  cells_ref_csc.h5ad  the same with X a CSC matrix and no layers
  cells_ref.safetensors  the expected dense matrix X (F32, 7x5) and the codes of celltype and
                      condition (I64, -1 for missing), with the category names in the metadata
Run: /usr/bin/python3 tests/ref/make_cells_ref.py (from the repo root, or `make ref`).
"""
import os, sys
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_nn_ref import write_st  # noqa: E402

VERSION = "1"
OUT = os.path.dirname(os.path.abspath(__file__))


def main():
    try:
        import anndata as ad
        import pandas as pd
        import scipy.sparse as sp
    except ImportError as e:
        print("make_cells_ref.py: skipped (%s): apt-get install python3-anndata" % e)
        return
    X = np.array([[0, 3, 0, 1, 0],
                  [2, 0, 0, 0, 7],
                  [0, 0, 0, 0, 0],
                  [1, 1, 1, 1, 1],
                  [0, 12, 0, 0, 4],
                  [5, 0, 2, 0, 0],
                  [0, 0, 9, 0, 1]], dtype=np.float32)
    cell = pd.Categorical(["T", "B", "T", None, "NK", "B", "T"], categories=["B", "NK", "T"])
    cond = pd.Categorical(["ctrl", "stim", "stim", "ctrl", "ctrl", "stim", "ctrl"], categories=["ctrl", "stim"])
    obs = pd.DataFrame({"celltype": cell, "condition": cond, "n_counts": X.sum(1)},
                       index=["c%d" % i for i in range(7)])
    var = pd.DataFrame(index=["g%d" % j for j in range(5)])
    a = ad.AnnData(X=sp.csr_matrix(X), obs=obs, var=var)
    a.layers["counts"] = X.astype(np.int64)
    a.write_h5ad(os.path.join(OUT, "cells_ref.h5ad"))
    b = ad.AnnData(X=sp.csc_matrix(X), obs=obs, var=var)
    b.write_h5ad(os.path.join(OUT, "cells_ref_csc.h5ad"))
    write_st(os.path.join(OUT, "cells_ref.safetensors"),
             {"X": X, "celltype": np.asarray(cell.codes, dtype=np.int64),
              "condition": np.asarray(cond.codes, dtype=np.int64)},
             {"generator": "tests/ref/make_cells_ref.py", "version": VERSION, "anndata": ad.__version__,
              "celltype": "B,NK,T", "condition": "ctrl,stim"})


if __name__ == "__main__":
    main()
