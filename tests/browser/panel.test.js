// panel.test.js: the knob panel in Debian's chromium (headless, driven by playwright-core; no
// browser download). Usage: node panel.test.js URL RUN_DIR OUT_DIR. Prints one line per check
// and ends with "N passed, N failed".
const { launch } = require("./launch");
const fs = require("fs");
const path = require("path");
const [url, runDir, outDir] = process.argv.slice(2);
let passed = 0, failed = 0;
const check = (ok, what) => { ok ? passed++ : failed++; console.log(`${ok ? "ok  " : "FAIL"} ${what}`); };

(async () => {
  const browser = await launch();
  try {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
    const page = await ctx.newPage();
    const errors = [];
    page.on("pageerror", e => errors.push(e.message));
    await page.goto(url);
    await page.waitForSelector("body[data-ready='1']", { timeout: 20000 });
    await page.waitForFunction(() => window.knobs.stats.decodes > 0);
    check(true, "page loaded, first decode shown");

    const sliders = page.locator("input[type=range][data-model='0']");
    const n = await sliders.count();
    const info = await page.evaluate(() => window.knobs.models[0].info);
    check(n === info.Z, `one slider per latent (${n} of ${info.Z})`);
    const order = await sliders.evaluateAll(s => s.map(e => +e.dataset.latent));
    check(JSON.stringify(order) === JSON.stringify(info.latents.map(l => l.index)), "sliders in KL order");

    // folding: the inactive latents are inside a closed <details>
    const nIn = info.latents.filter(l => !l.active).length;
    const summary = await page.locator("#inactive-0 summary").textContent();
    check(nIn > 0 && summary === `inactive (${nIn})`, `inactive latents folded: "${summary}"`);
    const hiddenSlider = page.locator("#inactive-0 input[type=range]").first();
    check(!(await hiddenSlider.isVisible()), "folded sliders are hidden");
    await page.click("#inactive-0 summary");
    check(await hiddenSlider.isVisible(), "unfolding shows them");

    // drag the first (most informative) slider with the mouse
    const before = await page.locator("#edit-0").screenshot();
    const values0 = await sliders.evaluateAll(s => s.map(e => e.value));
    const first = sliders.first();
    await first.scrollIntoViewIfNeeded();
    const box = await first.boundingBox();
    const d0 = await page.evaluate(() => window.knobs.stats.decodes);
    const t0 = Date.now();
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height / 2);
    await page.mouse.down();
    for (let i = 1; i <= 40; i++) {
      await page.mouse.move(box.x + box.width * (0.5 + 0.45 * i / 40), box.y + box.height / 2);
      await page.waitForTimeout(5);
    }
    await page.mouse.up();
    const dragMs = Date.now() - t0;
    await page.waitForFunction(() => !window.knobs.models[0].inflight);
    await page.waitForTimeout(100);
    const d1 = await page.evaluate(() => window.knobs.stats.decodes);
    const fps = (d1 - d0) / (dragMs / 1000);
    console.log(`drag: ${d1 - d0} decodes shown in ${dragMs} ms while dragging: ${fps.toFixed(1)} frames/s`);
    check(d1 - d0 >= 5, `re-decodes while dragging, not only on release (${d1 - d0} decodes)`);
    const values1 = await sliders.evaluateAll(s => s.map(e => e.value));
    check(values1[0] !== values0[0], `dragged slider moved (${values0[0]} -> ${values1[0]})`);
    check(JSON.stringify(values1.slice(1)) === JSON.stringify(values0.slice(1)), "the other sliders did not move");
    const after = await page.locator("#edit-0").screenshot();
    check(!before.equals(after), "the edited image changed");
    await page.waitForFunction(() => document.querySelector("#score-0").textContent.startsWith("last move"), null, { timeout: 5000 }).catch(() => {});
    const score = await page.locator("#score-0").textContent();
    check(score.startsWith("last move"), `intervention score shown: "${score}"`);
    fs.writeFileSync(path.join(outDir, "fps.txt"), `${fps.toFixed(1)}\n`);

    // reset returns the sliders to the start code
    await page.click("#reset-0");
    const back = await page.evaluate(() => {
      const m = window.knobs.models[0];
      return [...document.querySelectorAll("input[type=range][data-model='0']")].every(s => Math.abs(+s.value - Math.max(-3, Math.min(3, m.startCode[+s.dataset.latent]))) < 0.011);
    });
    check(back, "reset returns every slider to the start image's code");

    // rename: saved in the run folder's knobs.json
    const j = info.latents[0].index;
    const name = page.locator(`input.name[data-model='0'][data-latent='${j}']`);
    await name.fill("my knob");
    await name.press("Enter");
    await page.waitForFunction(() => document.querySelector("#note").textContent.startsWith("renamed"), null, { timeout: 5000 }).catch(() => {});
    const kj = JSON.parse(fs.readFileSync(path.join(runDir, "knobs.json"), "utf8"));
    check(kj.latents[j].name === "my knob", `rename saved to knobs.json (${JSON.stringify(kj.latents[j].name)})`);

    // GIF export of the current knob
    await first.focus();
    const [dl] = await Promise.all([page.waitForEvent("download"), page.click("#export-gif-0")]);
    const gifPath = path.join(outDir, "knob.gif");
    await dl.saveAs(gifPath);
    const gif = fs.readFileSync(gifPath);
    check(gif.subarray(0, 6).toString() === "GIF89a" && gif.length > 100, `GIF export (${gif.length} bytes, ${dl.suggestedFilename()})`);
    const [dl2] = await Promise.all([page.waitForEvent("download"), page.click("#export-png-0")]);
    const pngPath = path.join(outDir, "image.png");
    await dl2.saveAs(pngPath);
    check(fs.readFileSync(pngPath).subarray(1, 4).toString() === "PNG", "PNG export of the current image");

    // upload a PNG of another size: encoded on the server, resized with a note
    const code0 = await page.evaluate(() => window.knobs.models[0].startCode.join());
    await page.setInputFiles("#upload", path.join(runDir, "upload.png"));
    await page.waitForFunction(c => window.knobs.models[0].startCode.join() !== c, code0, { timeout: 10000 }).catch(() => {});
    const code1 = await page.evaluate(() => window.knobs.models[0].startCode.join());
    const note = await page.locator("#note").textContent();
    check(code1 !== code0 && /resized from \d+x\d+ to 64x64/.test(note), `upload encoded (note: "${note}")`);

    // reshuffle gives other start images
    const g0 = await page.locator("#grid img").evaluateAll(a => a.map(e => e.dataset.index).join());
    await page.click("#shuffle");
    await page.waitForFunction(g => [...document.querySelectorAll("#grid img")].map(e => e.dataset.index).join() !== g, g0);
    check(true, "reshuffle");
    await page.click("#grid img");
    await page.waitForTimeout(500);

    check(errors.length === 0, `no page errors ${errors.join("; ")}`);
    await page.screenshot({ path: path.join(outDir, "panel.png"), fullPage: true });
    check(fs.statSync(path.join(outDir, "panel.png")).size > 1000, "screenshot taken");
  } catch (e) {
    failed++;
    console.log("FAIL " + (e.stack || e));
  } finally {
    await browser.close();
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
})();
