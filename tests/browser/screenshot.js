// screenshot.js: a screenshot of the knob panel at URL into OUT.png, after dragging the first
// knob to DRAG (default 1.5) so the picture shows an edit. Used to make docs/panel.png:
//   build/knobs serve runs/demo --port 8731 &  node tests/browser/screenshot.js http://127.0.0.1:8731/ docs/panel.png
const { launch } = require("./launch");
const [url, out, drag] = process.argv.slice(2);
(async () => {
  const browser = await launch();
  try {
    const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    await page.goto(url);
    await page.waitForSelector("body[data-ready='1']", { timeout: 60000 });
    await page.waitForFunction(() => window.knobs.stats.decodes > 0);
    const first = page.locator("input[type=range][data-model='0']").first();
    await first.evaluate((e, v) => { e.value = v; e.dispatchEvent(new Event("input", { bubbles: true })); }, drag || "1.5");
    await page.waitForTimeout(1500);
    await page.screenshot({ path: out, fullPage: true });
  } finally {
    await browser.close();
  }
})().catch(e => { console.error(e); process.exit(2); });
