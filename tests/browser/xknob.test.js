// xknob.test.js: on the built-in dSprites, the knob the panel names posX moves the sprite in x.
// Usage: node xknob.test.js URL. The model (tests/ref/xknob/, weakly supervised gvae: latent j
// is told which factor changed, so the panel's MI naming must find posX) is served by
// test_browser.sh. Drags the posX knob with the mouse from the left quarter of its slider to
// the right quarter and measures the edited image's intensity centroid: it must move in x by
// more than 6 pixels and by more than twice its move in y. Ends with "N passed, N failed".
const { launch } = require("./launch");
const [url] = process.argv.slice(2);
let passed = 0, failed = 0;
const check = (ok, what) => { ok ? passed++ : failed++; console.log(`${ok ? "ok  " : "FAIL"} ${what}`); };

const centroid = page => page.evaluate(async () => {
  const img = document.querySelector("#edit-0");
  await img.decode();
  const c = document.createElement("canvas");
  c.width = img.naturalWidth, c.height = img.naturalHeight;
  const g = c.getContext("2d");
  g.drawImage(img, 0, 0);
  const d = g.getImageData(0, 0, c.width, c.height).data;
  let s = 0, sx = 0, sy = 0;
  for (let y = 0; y < c.height; y++)
    for (let x = 0; x < c.width; x++) {
      const v = d[4 * (y * c.width + x)];
      s += v, sx += v * x, sy += v * y;
    }
  return [sx / s, sy / s];
});

(async () => {
  const browser = await launch();
  try {
    const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    await page.goto(url);
    await page.waitForSelector("body[data-ready='1']", { timeout: 60000 });
    await page.waitForFunction(() => window.knobs.stats.decodes > 0);
    const info = await page.evaluate(() => window.knobs.models[0].info);
    // of the knobs named posX, the one with the most information about it
    const k = info.factors.indexOf("posX");
    const lat = info.latents.filter(l => l.factor === "posX").sort((a, b) => b.mi[k] - a.mi[k])[0];
    check(!!lat, `a knob is named posX (names: ${info.latents.map(l => l.factor).join(", ")})`);
    if (!lat) return;
    const slider = page.locator(`input[type=range][data-model='0'][data-latent='${lat.index}']`);
    await slider.scrollIntoViewIfNeeded();
    const box = await slider.boundingBox();
    const at = async f => {
      await page.mouse.move(box.x + box.width * f, box.y + box.height / 2);
      await page.waitForFunction(() => !window.knobs.models[0].inflight);
      await page.waitForTimeout(150);
      await page.waitForFunction(() => !window.knobs.models[0].inflight);
      return centroid(page);
    };
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height / 2);
    await page.mouse.down();
    const a = await at(0.25);
    for (let i = 1; i < 10; i++) await page.mouse.move(box.x + box.width * (0.25 + 0.05 * i), box.y + box.height / 2);
    const b = await at(0.75);
    await page.mouse.up();
    const dx = Math.abs(b[0] - a[0]), dy = Math.abs(b[1] - a[1]);
    console.log(`posX knob (latent ${lat.index}): centroid (${a[0].toFixed(1)}, ${a[1].toFixed(1)}) -> (${b[0].toFixed(1)}, ${b[1].toFixed(1)})`);
    check(dx > 6 && dx > 2 * dy, `dragging posX moves the sprite in x (${dx.toFixed(1)} px) more than in y (${dy.toFixed(1)} px)`);
  } finally {
    await browser.close();
  }
})().catch(e => { console.log(`FAIL ${e.message}`); failed++; }).finally(() => {
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
});
