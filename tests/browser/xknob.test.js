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

    // the calibration (knobs.json): the knob shows posX's value, and typing a value moves it there
    check(!!lat.calibration, "the posX knob has a calibration");
    if (lat.calibration) {
      const cal = page.locator(`#model-0 .knob input.to[data-latent='${lat.index}']`);
      const c = lat.calibration, lo = Math.min(c.value[0], c.value[c.value.length - 1]), hi = Math.max(c.value[0], c.value[c.value.length - 1]);
      const want = [lo + 0.2 * (hi - lo), lo + 0.8 * (hi - lo)], cx = [];
      for (const v of want) {
        await cal.fill(v.toFixed(3));
        await cal.press("Enter");
        await page.waitForTimeout(200);
        await page.waitForFunction(() => !window.knobs.models[0].inflight);
        const shown = await page.locator(`#model-0 .knob:has(input.to[data-latent='${lat.index}']) .calv`).textContent();
        check(shown.includes("posX") && Math.abs(parseFloat(shown.split("≈")[1]) - v) < 0.02 * (hi - lo) + 1e-3,
              `typing posX ${v.toFixed(3)} shows "${shown}"`);
        cx.push((await centroid(page))[0]);
      }
      check(Math.abs(cx[1] - cx[0]) > 6, `posX ${want[0].toFixed(2)} -> ${want[1].toFixed(2)} moves the sprite ${Math.abs(cx[1] - cx[0]).toFixed(1)} px in x`);
      await cal.fill("99");
      await cal.press("Enter");
      check(/outside/.test(await page.locator("#note").textContent()), "a value out of reach is refused with a note");
    }

    // design: maximise area with the prior penalty; designs appear, each with a validity frame,
    // and a click loads its code into the sliders
    await page.locator("#design-0 summary").click();
    await page.selectOption("#design-prop-0", "area");
    await page.locator("#design-go-0").click();
    await page.waitForFunction(() => window.knobs.lastDesign || /error|cannot|must/.test(document.querySelector("#design-msg-0").textContent), null, { timeout: 100000 });
    const res = await page.evaluate(() => window.knobs.lastDesign);
    check(res.designs.length === 8 && res.designs.every(d => d.code.length === info.Z && d.property > 0),
          `8 designs of area ${res.designs.map(d => d.property.toFixed(3)).join(" ")} (data p90 ${res.data_p90.toFixed(3)})`);
    await page.waitForSelector("#designs-0 figure");
    check(await page.locator("#designs-0 figure.ok, #designs-0 figure.bad").count() === 8, "each design has a validity frame");
    await page.locator("#designs-0 figure").first().click();
    await page.waitForTimeout(200);
    const code = await page.evaluate(() => window.knobs.models[0].code);
    check(code.every((v, i) => Math.abs(v - res.designs[0].code[i]) < 1e-6), "clicking a design loads its code");
  } finally {
    await browser.close();
  }
})().catch(e => { console.log(`FAIL ${e.message}`); failed++; }).finally(() => {
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
});
