"""test_knobs.py: the knobs Python package against the knobs command on the same arrays and
models: metrics equal `knobs metrics --json`, encode equals `knobs encode` (means and samples),
decode/traverse shapes and values, a tiny training run, and errors carrying knobs_last_error().
Run by tests/test_python.sh (KNOBS_LIB and KNOBS_BIN point into the build directory)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import numpy as np

import knobs

KNOBS_BIN = os.environ.get("KNOBS_BIN", os.path.join(os.path.dirname(__file__), "..", "..",
                                                     "build", "knobs"))


def cli(*args):
    p = subprocess.run([KNOBS_BIN] + [str(a) for a in args], capture_output=True, text=True)
    if p.returncode:
        raise AssertionError("knobs %s: exit %d: %s" % (" ".join(map(str, args)), p.returncode,
                                                        p.stderr[-500:]))
    return p.stdout


def strip_seconds(d):
    if isinstance(d, dict):
        return {k: strip_seconds(v) for k, v in d.items() if k != "seconds"}
    if isinstance(d, list):
        return [strip_seconds(v) for v in d]
    return d


class BlasTest(unittest.TestCase):
    def test_blas_kernels_not_the_fallback(self):
        # NumPy (imported above) loaded OpenBLAS before knobs; knobs must still not leave it on
        # the Prescott fallback of a CPU with AVX2 (src/core/blas.c)
        info = knobs.blas_info()
        self.assertIn("kernels ", info)
        flags = open("/proc/cpuinfo").read()
        if " avx2 " in flags and " fma " in flags and "OPENBLAS_CORETYPE" not in os.environ:
            self.assertNotIn("kernels Prescott", info)


class Base(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="knobs-py-")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.tmp, name)


class TestMetrics(Base):
    def arrays(self):
        rng = np.random.default_rng(3)
        f = rng.integers(0, 5, (600, 3)).astype(np.int64)
        z = (f @ np.array([[1, .2, 0, 0], [0, 1, .1, 0], [0, 0, 0, 1.]]) +
             0.3 * rng.standard_normal((600, 4))).astype(np.float32)
        return z, f

    def test_same_as_cli(self):
        z, f = self.arrays()
        np.save(self.path("z.npy"), z)
        np.save(self.path("f.npy"), f)
        names = "mig,sap,dci,modularity,explicitness,irs,unsupervised"
        want = json.loads(cli("metrics", "--codes", self.path("z.npy"), "--factors",
                              self.path("f.npy"), "--metrics", names, "--json", "--threads", "1",
                              "--seed", "4", "--num-bins", "10"))
        got = knobs.metrics(z, f, metrics=names.split(","), seed=4, num_bins=10)
        self.assertEqual(sorted(got["metrics"]), sorted(names.split(",")))
        self.assertEqual(strip_seconds(got["metrics"]), strip_seconds(want["metrics"]))
        self.assertEqual(got["seed"], 4)
        self.assertEqual(got["metrics"]["mig"]["params"]["num_bins"], 10)

    def test_options_and_dtypes(self):
        z, f = self.arrays()
        a = knobs.metrics(z, f, metrics="mig")["metrics"]["mig"]["score"]
        # float64 codes of the same values, factors as int32 in a Fortran-ordered copy
        b = knobs.metrics(z.astype(np.float64), np.asfortranarray(f.astype(np.int32)),
                          metrics="mig")["metrics"]["mig"]["score"]
        self.assertAlmostEqual(a, b, places=6)
        self.assertGreater(a, 0.1)
        r = knobs.metrics(z, f[:, 0], metrics=["sap"], sap_c=0.1)
        self.assertEqual(r["metrics"]["sap"]["params"]["C"], 0.1)

    def test_logvar_gives_mig_sampled(self):
        z, f = self.arrays()
        lv = np.full_like(z, -2.0)
        r = knobs.metrics(z, f, metrics="mig_sampled", logvar=lv, mig_sampled_samples=500)
        self.assertIn("score", r["metrics"]["mig_sampled"])

    def test_errors(self):
        z, f = self.arrays()
        with self.assertRaises(knobs.KnobsError) as e:
            knobs.metrics(z[:10], f, metrics="mig")
        self.assertIn("rows", str(e.exception))
        with self.assertRaises(knobs.KnobsError) as e:
            knobs.metrics(z, f, metrics="nosuchmetric")
        self.assertIn("nosuchmetric", str(e.exception))
        with self.assertRaises(knobs.KnobsError) as e:
            knobs.metrics(z, f, metrics="mig", no_such_option=1)
        self.assertIn("no_such_option", str(e.exception))
        bad = z.copy()
        bad[5, 1] = np.nan
        with self.assertRaises(knobs.KnobsError):
            knobs.metrics(bad, f, metrics="mig")


class TestModel(Base):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.run_dir = os.path.join(cls.tmp, "run")
        cli("train", "--arch", "mlp", "--hidden", "32", "--latents", "4", "--batch", "8",
            "--steps", "20", "--threads", "2", "--seed", "3", "--out", cls.run_dir, "--quiet")
        x = os.path.join(cls.tmp, "x.npy")
        cli("data", "export", "dsprites", "--n", "64", "--seed", "5", "--out", x)
        cls.x = np.load(x)
        cls.model = knobs.Model.load(cls.run_dir)

    @classmethod
    def tearDownClass(cls):
        cls.model.close()
        super().tearDownClass()

    def test_encode_same_as_cli(self):
        cli("encode", "--model", self.run_dir, "--n", "64", "--seed", "5",
            "--out", self.path("c.npy"), "--logvar", self.path("lv.npy"))
        z, lv = self.model.encode(self.x, logvar=True)
        self.assertEqual(z.shape, (64, 4))
        self.assertEqual(z.dtype, np.float32)
        np.testing.assert_array_equal(z, np.load(self.path("c.npy")))
        np.testing.assert_array_equal(lv, np.load(self.path("lv.npy")))

    def test_sampled_same_as_cli(self):
        cli("encode", "--model", self.run_dir, "--n", "64", "--seed", "5", "--sampled",
            "--out", self.path("s.npy"))
        s = self.model.encode(self.x, sampled=True, seed=5)
        np.testing.assert_array_equal(s, np.load(self.path("s.npy")))
        self.assertFalse(np.array_equal(s, self.model.encode(self.x)))

    def test_decode_and_traverse(self):
        m = self.model
        self.assertEqual(m.shape, (1, 64, 64))
        self.assertEqual(m.code_dim, 4)
        self.assertEqual(m.step, 20)
        self.assertEqual(m.config["latents"], 4)
        z = m.encode(self.x[:5])
        y = m.decode(z)
        self.assertEqual(y.shape, (5, 1, 64, 64))
        self.assertTrue(np.all((y >= 0) & (y <= 1)))
        vals = np.linspace(-2, 2, 7)
        t = m.traverse(self.x[0], 2, vals)
        self.assertEqual(t.shape, (7, 1, 64, 64))
        # the same batch sizes as traverse's (BLAS may sum in another order for other sizes)
        zz = np.repeat(m.encode(self.x[:1]), 7, axis=0)
        zz[:, 2] = vals
        np.testing.assert_array_equal(t, m.decode(zz))
        # an index into the model's dataset gives that observation
        obs = m.observation(12)
        self.assertEqual(obs.shape, (1, 64, 64))
        np.testing.assert_array_equal(m.traverse(12, 0, [0.5]), m.traverse(obs, 0, [0.5]))

    def test_errors(self):
        with self.assertRaises(knobs.KnobsError) as e:
            knobs.Model.load(self.path("no-such-run"))
        self.assertIn("no-such-run", str(e.exception))
        with self.assertRaises(knobs.KnobsError):
            self.model.encode(np.zeros((2, 10), np.float32))
        with self.assertRaises(knobs.KnobsError):
            self.model.decode(np.zeros((2, 3), np.float32))
        with self.assertRaises(knobs.KnobsError):
            self.model.traverse(0, 9, [0.0])


class TestTrain(Base):
    def test_tiny_run(self):
        out = self.path("py-run")
        cfg = {"model": "betavae", "arch": "mlp", "hidden": 32, "latents": 3, "batch": 8,
               "steps": 10, "threads": 1, "seed": 2, "log_every": 5}
        with knobs.train(cfg, out) as m:
            self.assertEqual(m.step, 10)
            self.assertEqual(m.code_dim, 3)
            for f in ("config.json", "log.csv", "model.safetensors"):
                self.assertTrue(os.path.getsize(os.path.join(out, f)) > 0, f)
            x = np.random.default_rng(0).random((4, 1, 64, 64), dtype=np.float32)
            with knobs.Model.load(out) as m2:
                np.testing.assert_array_equal(m.encode(x), m2.encode(x))
        # the CLI reads the run the Python API wrote
        self.assertIn("10 of 10 steps", cli("info", out))
        # from the run's JSON config text, continuing nothing: a new folder, same weights
        with open(os.path.join(out, "config.json")) as f:
            text = f.read()
        with knobs.train(text, self.path("py-run2")) as m3, knobs.Model.load(out) as m4:
            x = np.ones((2, 1, 64, 64), np.float32) * 0.5
            np.testing.assert_array_equal(m3.encode(x), m4.encode(x))

    def test_bad_settings(self):
        with self.assertRaises(knobs.KnobsError) as e:
            knobs.train({"model": "betavae", "latents": 0}, self.path("bad"))
        self.assertIn("latents", str(e.exception))
        with self.assertRaises(knobs.KnobsError) as e:
            knobs.train({"model": "nosuchmodel"}, self.path("bad"))
        self.assertIn("nosuchmodel", str(e.exception))
        with self.assertRaises(knobs.KnobsError) as e:
            knobs.train({"data": "nosuchdata", "steps": 1}, self.path("bad"))
        self.assertIn("nosuchdata", str(e.exception))
        self.assertFalse(os.path.exists(self.path("bad")))


class TestLoading(unittest.TestCase):
    def run_py(self, env):
        code = "import knobs; print(knobs.version())"
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env=env)

    def test_bad_knobs_lib_names_it(self):
        env = dict(os.environ, KNOBS_LIB="/nonexistent/libknobs.so")
        p = self.run_py(env)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("/nonexistent/libknobs.so", p.stderr)

    def test_build_dir_next_to_package(self):
        here = os.path.join(os.path.dirname(os.path.abspath(knobs.__file__)), "..", "..", "build")
        if not os.path.exists(os.path.join(here, "libknobs.so")):
            self.skipTest("no build/libknobs.so next to the package")
        env = dict(os.environ)
        env.pop("KNOBS_LIB", None)
        p = self.run_py(env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.strip(), knobs.version())


if __name__ == "__main__":
    unittest.main()
