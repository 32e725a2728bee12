"""test_udr.py: knobs.udr and knobs.udr_models (python/knobs/_udr.py): udr() against
disentanglement_lib's udr.py values in tests/ref/udr_ref.json (made by
tests/ref/make_udr_ref.py; tests/test_udr.c checks the C side), a list of runs as well as an
array, the options and their refusals; udr_models() on two tiny trained models, one of them
given twice. Run by tests/test_python.sh."""
import json
import os
import shutil
import tempfile
import unittest

import numpy as np

import knobs

REF = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "ref", "udr_ref.json")


def nan_array(values):
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


class TestUdrArrays(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(REF) as fh:
            cls.ref = json.load(fh)
        R, N, D = cls.ref["R"], cls.ref["N"], cls.ref["D"]
        cls.reps = np.array(cls.ref["reps"]).reshape(R, N, D).astype(np.float32)
        cls.kl = np.array(cls.ref["kl"]).reshape(R, D)

    def test_against_udr_py(self):
        R, D = self.ref["R"], self.ref["D"]
        for name, c in self.ref["cases"].items():
            with self.subTest(case=name):
                u = knobs.udr(self.reps, self.kl, variant=c["variant"], filter_low_kl=c["filter_low_kl"],
                              kl_filter_threshold=c["kl_filter_threshold"])
                np.testing.assert_allclose(u["pairwise"], nan_array(c["pairwise"]).reshape(R, R), atol=1e-9)
                np.testing.assert_allclose(u["scores"], nan_array(c["scores"]), atol=1e-9)
                np.testing.assert_allclose(u["correlations"], nan_array(c["raw"]).reshape(R, R, D, D), atol=1e-9)
                np.testing.assert_array_equal(u["active"], self.kl > c["kl_filter_threshold"])
                self.assertEqual(u["variant"], c["variant"])

    def test_list_of_runs_and_options(self):
        a = knobs.udr(self.reps, self.kl)
        b = knobs.udr(list(self.reps), self.kl, raw_correlations=0, threads=2)
        np.testing.assert_array_equal(a["scores"], b["scores"])
        self.assertIsNone(b["correlations"])
        c = knobs.udr(self.reps, None)
        self.assertTrue(c["active"].all())
        self.assertTrue((c["kl"] == 0).all())

    def test_refusals(self):
        with self.assertRaises(knobs.KnobsError) as e:
            knobs.udr(self.reps[:1], self.kl[:1])
        self.assertEqual(e.exception.status, "KNOBS_ERR_ARG")
        self.assertIn("at least 2", str(e.exception))
        with self.assertRaises(knobs.KnobsError) as e:
            knobs.udr(self.reps, self.kl, alpha=0)
        self.assertIn("alpha", str(e.exception))
        bad = self.reps.copy()
        bad[1, 3, 2] = np.nan
        with self.assertRaises(knobs.KnobsError) as e:
            knobs.udr(bad, self.kl)
        self.assertEqual(e.exception.status, "KNOBS_ERR_DATA")
        for kw in ({"variant": "pearson"}, {"no_such": 1}):
            with self.assertRaises(knobs.KnobsError):
                knobs.udr(self.reps, self.kl, **kw)
        with self.assertRaises(knobs.KnobsError):
            knobs.udr(self.reps, self.kl[:, :3])


class TestUdrModels(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="knobs-py-udr-")
        cfg = {"model": "betavae", "arch": "mlp", "hidden": 32, "latents": 3, "batch": 16, "steps": 30,
               "threads": 1}
        cls.m1 = knobs.train(dict(cfg, seed=1), os.path.join(cls.tmp, "a"))
        cls.m2 = knobs.train(dict(cfg, seed=2), os.path.join(cls.tmp, "b"))

    @classmethod
    def tearDownClass(cls):
        cls.m1.close(), cls.m2.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_models(self):
        u = knobs.udr_models([self.m1, self.m2, self.m1], n=300, seed=3, kl_filter_threshold=0)
        self.assertEqual(u["pairwise"].shape, (3, 3))
        self.assertEqual(u["n"], 300)
        # model 1 given twice: the same codes, so the twins pair alike with model 2
        self.assertEqual(u["pairwise"][0, 1], u["pairwise"][2, 1])
        self.assertEqual(u["scores"][0], u["scores"][2])
        np.testing.assert_array_equal(u["kl"][0], u["kl"][2])
        again = knobs.udr_models([self.m1, self.m2, self.m1], "dsprites", n=300, seed=3, kl_filter_threshold=0)
        np.testing.assert_array_equal(u["scores"], again["scores"])
        with self.assertRaises(knobs.KnobsError) as e:
            knobs.udr_models([self.m1], n=300)
        self.assertIn("at least 2", str(e.exception))
