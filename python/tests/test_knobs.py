"""test_knobs.py: the knobs Python package against the knobs command on the same arrays and
models: metrics equal `knobs metrics --json`, encode equals `knobs encode` (means and samples),
decode/traverse shapes and values, a tiny training run, and errors carrying knobs_last_error().
Using the knobs: name_codes against NumPy (MI, mean, scale, Spearman) on synthetic codes whose
answer is known, Model.name against `knobs name`, knobs.json against the Python view of the
table, edits column by column, the attribute vector against NumPy, heads on separable and
linear labels (predictions, gradients, files), design reports against the designs themselves.
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

    def test_mcc_and_amari_options(self):
        # continuous factors, the codes a monotone (not linear) map of them, permuted and flipped:
        # Spearman MCC is 1, Pearson below; amari of W = A^-1 is 0 (options reach the library)
        rng = np.random.default_rng(3)
        s = rng.uniform(-1, 1, (2000, 3))
        z = np.stack([-s[:, 2] ** 3, np.exp(2 * s[:, 0]), s[:, 1] ** 5], 1)
        sp = knobs.metrics(z, s, metrics="mcc", mcc_spearman=1)["metrics"]["mcc"]["score"]
        pe = knobs.metrics(z, s, metrics="mcc")["metrics"]["mcc"]["score"]
        self.assertAlmostEqual(sp, 1.0, places=9)
        self.assertLess(pe, 0.99)
        A = rng.normal(size=(3, 3))
        np.save(self.path("W.npy"), np.linalg.inv(A))
        np.save(self.path("A.npy"), A)
        r = knobs.metrics(z, s, metrics="amari", amari_unmixing=self.path("W.npy"), amari_mixing=self.path("A.npy"))
        self.assertLess(r["metrics"]["amari"]["score"], 1e-9)
        with self.assertRaises(knobs.KnobsError):
            knobs.metrics(z, s, metrics="mcc", grid_codes=1)

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


class TinyRun(Base):
    """A 20-step MLP beta-VAE on dSprites and 64 observations with their factors and values."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.run_dir = os.path.join(cls.tmp, "run")
        cli("train", "--arch", "mlp", "--hidden", "32", "--latents", "4", "--batch", "8",
            "--steps", "20", "--threads", "2", "--seed", "3", "--out", cls.run_dir, "--quiet")
        p = lambda s: os.path.join(cls.tmp, s)
        cli("data", "export", "dsprites", "--n", "64", "--seed", "5", "--out", p("x.npy"),
            "--factors", p("f.npy"), "--values", p("v.npy"))
        cls.x, cls.f, cls.v = np.load(p("x.npy")), np.load(p("f.npy")), np.load(p("v.npy"))
        cls.model = knobs.Model.load(cls.run_dir)

    @classmethod
    def tearDownClass(cls):
        cls.model.close()
        super().tearDownClass()

    def data_knobs(self):
        """Knobs of the model from its codes of the 64 observations (no KL: none inactive)."""
        return knobs.name_codes(self.model.encode(self.x), self.f, self.v,
                                ["shape", "scale", "orientation", "posX", "posY"])


class TestModel(TinyRun):
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


def numpy_mi(z, f):
    """Normalised MI (Z,K) as knobs_name_codes documents it: 20 equal-width bins of each code
    between its min and max (the bin index computed in float32, as the C does), MI in nats over
    the factor's entropy."""
    n, Z = z.shape
    K = f.shape[1]
    mi = np.zeros((Z, K))
    for j in range(Z):
        lo, hi = z[:, j].min(), z[:, j].max()
        q = ((z[:, j] - lo) / (hi - lo) * np.float32(20)).astype(np.int64) if hi > lo else np.zeros(n, int)
        q = np.clip(q, 0, 19)
        for k in range(K):
            joint = np.zeros((f[:, k].max() + 1, 20))
            np.add.at(joint, (f[:, k], q), 1.0 / n)
            pv, pz = joint.sum(1), joint.sum(0)
            nz = joint > 0
            v = np.sum(joint[nz] * np.log(joint[nz] / np.outer(pv, pz)[nz]))
            h = -np.sum(pv[pv > 0] * np.log(pv[pv > 0]))
            mi[j, k] = max(0.0, v / h) if h > 0 else 0.0
    return mi


def average_ranks(a):
    order = np.argsort(a, kind="stable")
    r = np.empty(len(a))
    s = a[order]
    i = 0
    while i < len(a):
        j = i
        while j + 1 < len(a) and s[j + 1] == s[i]:
            j += 1
        r[order[i:j + 1]] = 0.5 * (i + j) + 1
        i = j + 1
    return r


def synthetic_codes(n=2000, seed=7):
    """Codes (n,3) over factors a (8 classes) and b (5 classes): latent 0 a noisy copy of b,
    latent 1 falls with a, latent 2 noise; factor values a / 7 and 10 + b."""
    rng = np.random.default_rng(seed)
    f = np.stack([rng.integers(0, 8, n), rng.integers(0, 5, n)], 1).astype(np.int32)
    vals = np.stack([f[:, 0] / 7.0, 10.0 + f[:, 1]], 1)
    z = np.stack([f[:, 1] + 0.05 * rng.standard_normal(n), -2.0 * f[:, 0] / 7 + 0.05 * rng.standard_normal(n),
                  rng.standard_normal(n)], 1).astype(np.float32)
    return z, f, vals


class TestNames(Base):
    def table(self):
        z, f, vals = synthetic_codes()
        return knobs.name_codes(z, f, vals, ["a", "b"], kl=[1.0, 1.0, 0.001]), z, f, vals

    def test_name_codes_finds_the_factors(self):
        k, z, f, vals = self.table()
        self.assertEqual((k.Z, k.K, k.n, k.step, k.data, k.factors), (3, 2, 2000, 0, "", ["a", "b"]))
        self.assertEqual(len(k), 3)
        l0, l1, l2 = k.latents
        # latent 0 is a copy of factor 1, latent 1 falls with factor 0, latent 2 is inactive (KL)
        self.assertEqual((l0["factor"], l0["factor_index"], l0["direction"]), ("b", 1, 1))
        self.assertEqual((l1["factor"], l1["factor_index"], l1["direction"]), ("a", 0, -1))
        self.assertEqual((l2["factor"], l2["factor_index"], l2["direction"], l2["calibration"]), (None, None, 0, None))
        self.assertEqual([l0["kl"], l1["kl"], l2["kl"]], [1.0, 1.0, 0.001])
        self.assertIsNone(l0["name"])
        # every statistic against NumPy
        np.testing.assert_allclose([l["mi"] for l in k.latents], numpy_mi(z, f), rtol=0, atol=1e-9)
        zd = z.astype(np.float64)
        np.testing.assert_allclose([l["mean"] for l in k.latents], zd.mean(0), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose([l["scale"] for l in k.latents], zd.std(0), rtol=1e-9)
        for l, fk in ((l0, 1), (l1, 0)):
            sp = np.corrcoef(average_ranks(zd[:, l["index"]]), average_ranks(vals[:, fk]))[0, 1]
            self.assertAlmostEqual(l["corr"], sp, places=9)
        # the calibration: increasing codes, values monotone in the direction, the factor's values
        for l, lo, hi in ((l0, 10, 14), (l1, 0, 1)):
            c, v = np.array(l["calibration"]["code"]), np.array(l["calibration"]["value"])
            self.assertGreaterEqual(len(c), 5)
            self.assertTrue(np.all(np.diff(c) > 0))
            self.assertTrue(np.all(l["direction"] * np.diff(v) >= 0))
            self.assertTrue(lo - 1e-9 <= v.min() and v.max() <= hi + 1e-9)
            np.testing.assert_allclose(k.value(l["index"], c), v)
            self.assertEqual(k.value(l["index"], c[0] - 5), v[0])  # clamped
            mid = 0.5 * (v.min() + v.max())
            self.assertAlmostEqual(k.value(l["index"], k.code(l["index"], mid)), mid, places=6)
            np.testing.assert_allclose(k.value(l["index"], k.code(l["index"], [mid, v[3]])), [mid, v[3]])
        with self.assertRaises(knobs.KnobsError) as e:
            k.code(0, 99.0)
        self.assertIn("outside", str(e.exception))
        with self.assertRaises(knobs.KnobsError) as e:
            k.value(2, 0.0)
        self.assertIn("no calibration", str(e.exception))
        # without values the class index is the value; without kl no latent is inactive
        k2 = knobs.name_codes(z, f)
        self.assertEqual(k2.factors, ["factor0", "factor1"])
        self.assertEqual(k2[0]["calibration"]["value"][-1], 4.0)

    def test_name_codes_refusals(self):
        z, f, vals = synthetic_codes(50)
        bad = z.copy()
        bad[3, 1] = np.nan
        for args, msg in (((bad, f), "not finite"), ((z, -f), "not a class index"), ((z[:1], f[:1]), "n >= 2"),
                          ((z, f, None, ["a"]), "1 factor names for 2 factors"), ((z, f + 0.5), "whole numbers"),
                          ((z, f, vals[:, :1]), "values of shape"), ((z, f, None, ["a" * 32, "b"]), "31 bytes"),
                          ((z, f[:10]), "want (50,)")):
            with self.assertRaises(knobs.KnobsError, msg=msg) as e:
                knobs.name_codes(*args)
            self.assertIn(msg, str(e.exception))

    def test_save_read_and_knobs_json(self):
        k, _, _, _ = self.table()
        k.rename(2, "wobble")
        d = self.path("names")
        os.makedirs(d, exist_ok=True)
        self.assertIsNone(knobs.Knobs.read(d, 3))
        k.save(d)
        # the file the C wrote from the struct says what the Python view of it says
        with open(os.path.join(d, "knobs.json")) as fp:
            j = json.load(fp)
        self.assertEqual((j["n"], j["factors"], j["step"]), (2000, ["a", "b"], 0))
        for l, e in zip(k.latents, j["latents"]):
            self.assertEqual((e["name"], e["factor"], e["direction"]), (l["name"], l["factor"], l["direction"]))
            for key in ("kl", "mean", "scale", "corr"):
                self.assertAlmostEqual(e[key], l[key], places=6)
            np.testing.assert_allclose(e["mi"], l["mi"], atol=1e-6)
            # cJSON prints 15 digits when they read back within its epsilon: the last bit may go
            for key in ("code", "value"):
                np.testing.assert_allclose(e["calibration"][key] if l["calibration"] else [],
                                           l["calibration"][key] if l["calibration"] else [], rtol=1e-14)
        with knobs.Knobs.read(d, 3) as r:
            self.assertEqual([l["label"] for l in r.latents], ["b", "a", "wobble"])
            for a, b in zip(r.latents, k.latents):
                self.assertEqual(a["calibration"] is None, b["calibration"] is None)
                if a["calibration"]:
                    np.testing.assert_allclose(a["calibration"]["code"], b["calibration"]["code"], rtol=1e-14)
                self.assertAlmostEqual(a["scale"], b["scale"], places=6)
        with self.assertRaises(knobs.KnobsError) as e:
            knobs.Knobs.read(d, 4)
        self.assertIn("names 3 latents", str(e.exception))
        self.assertEqual(e.exception.status, "KNOBS_ERR_FORMAT")

    def test_rename_find_label(self):
        k, _, _, _ = self.table()
        self.assertEqual([k.label(z) for z in range(3)], ["b", "a", "z2"])
        k.rename(0, "size")
        self.assertEqual(k.label(0), "size")
        self.assertEqual(k[0]["name"], "size")
        self.assertEqual([k.find("size"), k.find("a"), k.find("z2"), k.find("2"), k.find(1)], [0, 1, 2, 2, 1])
        with self.assertRaises(knobs.KnobsError) as e:
            k.find("nosuch")
        self.assertIn('unknown knob "nosuch"', str(e.exception))
        self.assertIn("0=size", str(e.exception))
        for z, name, msg in ((0, "3", "reads as a latent number"), (0, "x" * 64, "longer than 63"),
                             (0, "a\tb", "control character"), (5, "x", "out of range")):
            with self.assertRaises(knobs.KnobsError) as e:
                k.rename(z, name)
            self.assertIn(msg, str(e.exception))
        with knobs.Knobs.create(3, 2) as hand:
            self.assertEqual((hand.Z, hand.K, hand.n, hand[1]["factor_index"]), (3, 2, 0, None))
            hand.merge_names(k)
            self.assertEqual(hand.label(0), "size")
            with knobs.Knobs.create(4) as other, self.assertRaises(knobs.KnobsError):
                other.merge_names(k)
        k.rename(0, None)
        self.assertEqual(k.label(0), "b")
        k.close()
        with self.assertRaises(knobs.KnobsError):
            k.label(0)


class TestModelKnobs(TinyRun):
    def test_name_same_as_cli(self):
        run2 = self.path("run-named")
        shutil.copytree(self.run_dir, run2)
        cli("name", run2, "--n", "300")
        with open(os.path.join(run2, "knobs.json")) as fp:
            j = json.load(fp)
        k = self.model.name(n=300)
        self.assertEqual((k.Z, k.K, k.n, k.step, k.data), (4, 5, 300, 20, "dsprites"))
        self.assertEqual(k.factors, j["factors"])
        for l, e in zip(k.latents, j["latents"]):
            self.assertEqual(l["factor"], e["factor"])
            np.testing.assert_allclose(l["mi"], e["mi"], atol=1e-6)
            for key in ("kl", "mean", "scale", "corr"):
                self.assertAlmostEqual(l[key], e[key], places=6)
        self.assertTrue(any(l["kl"] > 0 for l in k.latents))
        # the names kept across a recomputation, as `knobs name` keeps them
        with knobs.Knobs.read(run2, 4) as old:
            old.rename(1, "thing")
            k.merge_names(old)
        self.assertEqual(k.find("thing"), 1)
        # another seed, other draws
        self.assertNotEqual(self.model.name(n=300, seed=1)[0]["mean"], k[0]["mean"])

    def test_name_refusals(self):
        with self.assertRaises(knobs.KnobsError) as e:
            self.model.name(n=50)
        self.assertIn("n = 50 out of range", str(e.exception))
        np.save(self.path("plain.npy"), self.x)  # images without factors
        with self.assertRaises(knobs.KnobsError) as e:
            self.model.name(data=self.path("plain.npy"))
        self.assertIn("no ground-truth factors", str(e.exception))
        with self.assertRaises(knobs.KnobsError) as e:
            self.model.name(data="dsprites:color")
        self.assertIn("the model takes 1x64x64", str(e.exception))

    def test_edit_codes(self):
        rng = np.random.default_rng(1)
        c = rng.standard_normal((5, 4)).astype(np.float32)
        keep = c.copy()
        e = knobs.edit_codes(c, None, [(2, "set", 1.5)])
        np.testing.assert_array_equal(c, keep)  # the input is not changed
        np.testing.assert_array_equal(np.delete(e, 2, 1), np.delete(c, 2, 1))
        np.testing.assert_array_equal(e[:, 2], np.float32(1.5))
        e = knobs.edit_codes(c, None, [("z1", "add", 0.5), (1, "add", 0.25)])
        np.testing.assert_array_equal(np.delete(e, 1, 1), np.delete(c, 1, 1))
        np.testing.assert_array_equal(e[:, 1], ((c[:, 1] + 0.5).astype(np.float32) + 0.25).astype(np.float32))
        # a factor value through the calibration, by the knob's factor name
        z, f, vals = synthetic_codes()
        k = knobs.name_codes(z, f, vals, ["a", "b"])
        e = knobs.edit_codes(z[:4], k, [("b", "factor", 12.5)])
        np.testing.assert_array_equal(e[:, 0], np.float32(k.code(0, 12.5)))
        np.testing.assert_array_equal(e[:, 1:], z[:4, 1:])
        for ops, kk, msg in (([(9, "set", 0)], None, "latent 9 out of range"),
                             ([(0, "factor", 0.5)], None, "no calibration"),
                             ([(0, "mul", 2)], None, "unknown mode"),
                             ([(0, "set", float("nan"))], None, "not a finite number"),
                             ([(0, "set", "x")], None, "not a number"),
                             ([("b", "factor", 99)], k, "outside"),
                             ([("nosuch", "set", 1)], None, "unknown knob"),
                             ([(0, 1)], None, "want (latent, mode, value)")):
            with self.assertRaises(knobs.KnobsError, msg=msg) as e:
                knobs.edit_codes(z[:4] if kk else c, kk, ops)
            self.assertIn(msg, str(e.exception))

    def test_model_edit(self):
        m, x = self.model, self.x[:6]
        recon, edited, codes = m.edit(x, None, [(1, "set", 2.0), ("z3", "add", -1.0)])
        z = m.encode(x)
        want = z.copy()
        want[:, 1] = 2.0
        want[:, 3] = (z[:, 3].astype(np.float64) - 1.0).astype(np.float32)
        np.testing.assert_array_equal(codes, want)
        self.assertEqual(recon.shape, (6, 1, 64, 64))
        np.testing.assert_array_equal(recon, m.decode(z))  # same batch size, same sums
        np.testing.assert_array_equal(edited, m.decode(codes))
        self.assertFalse(np.array_equal(recon, edited))
        # one observation (C,H,W), a knob by name from a table
        k = self.data_knobs()
        named = [l["index"] for l in k.latents if l["calibration"]]
        self.assertTrue(named)
        j = named[0]
        k.rename(j, "knob")
        lo, hi = sorted(k[j]["calibration"]["value"][::len(k[j]["calibration"]["value"]) - 1])
        r1, e1, c1 = m.edit(x[0], k, [("knob", "factor", 0.5 * (lo + hi))])
        self.assertEqual(e1.shape, (1, 1, 64, 64))
        self.assertAlmostEqual(float(c1[0, j]), k.code(j, 0.5 * (lo + hi)), places=5)
        with self.assertRaises(knobs.KnobsError) as e:
            m.edit(x, None, [("posX", "set", 1.0)])
        self.assertIn("no knobs.json", str(e.exception))
        with self.assertRaises(knobs.KnobsError):
            m.edit(np.zeros((2, 10), np.float32), None, [(0, "set", 0)])

    def test_attribute_vector(self):
        rng = np.random.default_rng(2)
        c = rng.standard_normal((50, 4)).astype(np.float32)
        lab = rng.integers(0, 2, 50)
        lab[:2] = [0, 2]  # any non-zero label is "with the attribute"
        v = knobs.attribute_vector(c, lab)
        self.assertEqual((v.shape, v.dtype), ((4,), np.float32))
        c64 = c.astype(np.float64)
        np.testing.assert_allclose(v, c64[lab != 0].mean(0) - c64[lab == 0].mean(0), rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(knobs.attribute_vector(c, lab != 0), v)
        with self.assertRaises(knobs.KnobsError) as e:
            knobs.attribute_vector(c, np.ones(50))
        self.assertIn("no negative rows", str(e.exception))
        self.assertEqual(e.exception.status, "KNOBS_ERR_DATA")
        with self.assertRaises(knobs.KnobsError):
            knobs.attribute_vector(c, lab[:10])

    def test_edit_score(self):
        k = self.data_knobs()
        rows = self.model.edit_score(k, n_edits=4, seed=1)
        want = [l["index"] for l in k.latents if l["factor"] and l["direction"] and l["scale"] > 0]
        self.assertTrue(want)
        self.assertEqual([r["latent"] for r in rows], want)
        for r in rows:
            self.assertEqual(r["factor"], k[r["latent"]]["factor"])
            self.assertEqual(r["factor_index"], k[r["latent"]]["factor_index"])
            self.assertEqual(r["n"], 4)
            for key in ("fidelity", "specificity", "recon_exact"):
                self.assertTrue(0 <= r[key] <= 1, (key, r[key]))
                self.assertEqual(r[key] * 4 * (4 if key == "specificity" else 1) % 1, 0)  # shares of 4 edits
            self.assertTrue(np.isfinite(r["moved"]))
        self.assertEqual(self.model.edit_score(k, n_edits=4, seed=1), rows)
        with knobs.Knobs.create(4, 5) as empty, self.assertRaises(knobs.KnobsError) as e:
            self.model.edit_score(empty)
        self.assertIn("not named", str(e.exception))
        with self.assertRaises(knobs.KnobsError) as e:
            self.model.edit_score(k, n_edits=0)
        self.assertIn("out of range", str(e.exception))


class TestHead(Base):
    def codes(self, n=400, Z=3, seed=0):
        return np.random.default_rng(seed).standard_normal((n, Z)).astype(np.float32)

    def test_logistic_separable(self):
        z = self.codes()
        y = (z[:, 0] + 0.5 * z[:, 1] > 0).astype(np.float64)
        with knobs.Head.fit(z, y, logistic=True, hidden=16, steps=400, lr=0.01, seed=1) as h:
            self.assertEqual(h.dim, 3)
            self.assertLessEqual(h.val_error, 0.05)
            p = h(z)
            self.assertEqual((p.shape, p.dtype), ((400,), np.float64))
            self.assertTrue(np.all((p >= 0) & (p <= 1)))
            self.assertGreaterEqual(np.mean((p >= 0.5) == (y == 1)), 0.95)
            # the held-out error is the error rate on the last 40 rows
            self.assertAlmostEqual(h.val_error, np.mean((p[-40:] >= 0.5) != (y[-40:] == 1)))

    def test_linear_regression_and_gradient(self):
        z = self.codes()
        y = 2 * z[:, 0] - z[:, 1] + 0.5
        h = knobs.Head.fit(z, y, layers=0, steps=1500, lr=0.02, batch=64)
        self.assertLess(h.val_error, 0.05)
        pred = h(z)
        np.testing.assert_allclose(pred, y, atol=0.1)
        self.assertAlmostEqual(h.val_error, np.sqrt(np.mean((pred[-40:] - y[-40:]) ** 2)), places=9)
        # a linear head: row i of dz is dy[i] times the weights
        dy = np.arange(1, 6, dtype=np.float64)
        p2, dz = h.eval(z[:5], dy=dy, grad=True)
        np.testing.assert_array_equal(p2, pred[:5])
        w = dz[0] / dy[0]
        np.testing.assert_allclose(w, [2, -1, 0], atol=0.05)
        np.testing.assert_allclose(dz, dy[:, None] * w[None], rtol=1e-6)
        e = np.eye(3, dtype=np.float32)
        np.testing.assert_allclose(h(z[:1] + e) - h(z[:1]), w, rtol=1e-4, atol=1e-5)
        # save and load: the same predictions
        path = self.path("head.safetensors")
        h.save(path)
        with knobs.Head.load(path) as h2:
            self.assertIsNone(h2.val_error)
            self.assertEqual(h2.dim, 3)
            np.testing.assert_array_equal(h2(z), pred)
        h.close()
        with self.assertRaises(knobs.KnobsError):
            h(z)

    def test_refusals(self):
        z = self.codes(50)
        for kw, y, msg in (({}, np.ones(50), "nothing to learn"),
                           ({"logistic": True}, np.arange(50) % 3, "labels 0 and 1"),
                           ({"layers": -1}, np.arange(50), "layers"),
                           ({"val_frac": 1.5}, np.arange(50), "val_frac"),
                           ({}, np.arange(40), "want (50,)")):
            with self.assertRaises(knobs.KnobsError, msg=msg) as e:
                knobs.Head.fit(z, y, steps=5, **kw)
            self.assertIn(msg, str(e.exception))
        bad = z.copy()
        bad[4, 2] = np.inf
        with self.assertRaises(knobs.KnobsError) as e:
            knobs.Head.fit(bad, np.arange(50), steps=5)
        self.assertIn("code 4, latent 2", str(e.exception))
        with knobs.Head.fit(z, np.arange(50), steps=5) as h:
            with self.assertRaises(knobs.KnobsError) as e:
                h(np.zeros((2, 4), np.float32))
            self.assertIn("want (N, 3)", str(e.exception))
        np.save(self.path("notahead.npy"), z)
        with self.assertRaises(knobs.KnobsError):
            knobs.Head.load(self.path("notahead.npy"))
        with self.assertRaises(knobs.KnobsError) as e:
            knobs.Head.load(self.path("nosuch.safetensors"))
        self.assertIn("nosuch.safetensors", str(e.exception))


class TestDesign(TinyRun):
    small = {"n": 3, "restarts": 4, "steps": 5, "n_fit": 100}
    # a dSprites variant the oracle does not know: `nearest` searches the n_fit observations,
    # 0.1 s a call instead of the oracle's cold mask cache
    fast = dict(small, data="dsprites:noshape")

    def test_area(self):
        m = self.model
        r = m.design("area", **self.small)
        c, im, d = r["codes"], r["images"], r["designs"]
        self.assertEqual((c.shape, im.shape, len(d)), ((3, 4), (3, 1, 64, 64), 3))
        self.assertTrue(np.all(np.isfinite(c)) and np.all(np.isfinite(im)))
        np.testing.assert_array_equal(im, m.decode(c))
        # the report describes these designs: area of the image, the prior penalty of the code
        prior = 0.5 * np.sum(c.astype(np.float64) ** 2, 1) + 0.5 * 4 * np.log(2 * np.pi)
        for i, it in enumerate(d):
            self.assertAlmostEqual(it["property"], float(im[i].astype(np.float64).mean()), places=9)
            self.assertAlmostEqual(it["penalty"], prior[i], places=5)
            self.assertTrue(0 <= it["percentile"] <= 100)
            for key in ("objective", "nearest", "recon"):
                self.assertTrue(np.isfinite(it[key]), key)
        self.assertEqual([x["objective"] for x in d], sorted((x["objective"] for x in d), reverse=True))
        self.assertEqual(r["valid"], sum(x["valid"] for x in d))
        self.assertEqual([x["valid"] for x in d], [x["nearest"] <= r["threshold"] for x in d])
        self.assertTrue(r["data_p50"] <= r["data_p90"] <= r["data_max"])
        self.assertTrue(r["method"].startswith("dsprites"))
        # minimising gives smaller areas than maximising, and the same call the same bits
        lo = m.design("area", goal="min", penalty="none", **self.fast)
        self.assertTrue(lo["method"].startswith("nearest of the n_fit"))
        self.assertLess(max(x["property"] for x in lo["designs"]), min(x["property"] for x in d))
        self.assertTrue(all(x["penalty"] == 0 for x in lo["designs"]))
        again = m.design("area", goal="min", penalty="none", **self.fast)
        np.testing.assert_array_equal(again["codes"], lo["codes"])
        self.assertEqual(again["designs"], lo["designs"])

    def test_head_and_knob_properties(self):
        m = self.model
        z = m.encode(self.x)
        with knobs.Head.fit(z, z[:, 0].astype(np.float64), layers=0, steps=50) as h:
            r = m.design(h, goal="min", penalty="box", **self.fast)
            np.testing.assert_allclose([x["property"] for x in r["designs"]], h(r["codes"]), rtol=1e-12)
        k = self.data_knobs()
        j = next(l["index"] for l in k.latents if l["calibration"])
        vals = k[j]["calibration"]["value"]
        target = 0.5 * (vals[0] + vals[-1])
        k.rename(j, "knob")
        r = m.design("knob", target=target, knobs=k, penalty="gmm", gmm_k=2, **self.fast)
        np.testing.assert_allclose([x["property"] for x in r["designs"]], k.value(j, r["codes"][:, j]))
        r2 = m.design(j, goal="target", target=target, knobs=k, penalty="gmm", gmm_k=2, **self.fast)
        np.testing.assert_array_equal(r2["codes"], r["codes"])

    def test_refusals(self):
        m = self.model
        for args, kw, msg in ((("area",), {"n": 4, "restarts": 2}, "restarts = 2 must be at least n = 4"),
                              (("nosuch",), {}, "not an image property"),
                              ((1,), {}, "latent 1 has no calibration"),
                              (("area",), {"goal": "target"}, "go together"),
                              (("area",), {"goal": "up"}, "unknown goal"),
                              (("area",), {"penalty": "nope"}, "unknown penalty"),
                              (("area",), {"n_fit": 10}, "n_fit = 10 out of range"),
                              (("area",), {"data": "dsprites:color"}, "the model takes 1x64x64"),
                              (("area",), {"n": 2.5}, "wants an integer"),
                              (("area",), {"seed": -1}, "unsigned 64-bit")):
            with self.assertRaises(knobs.KnobsError, msg=msg) as e:
                m.design(*args, **kw)
            self.assertIn(msg, str(e.exception))
        with knobs.Head.fit(np.zeros((10, 3), np.float32) + np.arange(10)[:, None], np.arange(10), steps=2) as h:
            with self.assertRaises(knobs.KnobsError) as e:
                m.design(h, **self.small)
            self.assertIn("codes of 3", str(e.exception))


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
