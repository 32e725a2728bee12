// launch.js: Debian's chromium, headless, for the panel scripts (no browser download; as root
// chromium needs --no-sandbox). $CHROMIUM overrides the binary.
const { chromium } = require("playwright-core");
module.exports.launch = () => chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
