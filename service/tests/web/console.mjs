// The web console in a real headless Chromium (Debian's, driven by playwright-core): sign in
// with the keyboard alone, reach the auditor's page, prove an entry, and audit every page with
// axe-core (no serious or critical finding). Screenshots of each page go to --out.
//   node console.mjs --base URL --token TOKEN --out DIR [--chromium PATH]
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    base: { type: 'string' }, token: { type: 'string' }, out: { type: 'string' },
    chromium: { type: 'string', default: '/usr/bin/chromium' },
  },
});
const axeSource = fs.readFileSync(
  path.join(path.dirname(new URL(import.meta.url).pathname), 'node_modules/axe-core/axe.min.js'), 'utf8');
fs.mkdirSync(args.out, { recursive: true });
const failures = [];
const check = (ok, what) => { if (!ok) failures.push(what); };

async function audit(page, name) {
  await page.screenshot({ path: path.join(args.out, `${name}.png`), fullPage: true });
  await page.addScriptTag({ content: axeSource });
  const result = await page.evaluate(async () => await axe.run(document, {
    runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
  }));
  for (const v of result.violations) {
    if (v.impact === 'serious' || v.impact === 'critical') {
      failures.push(`${name}: axe ${v.impact} ${v.id}: ${v.help} (${v.nodes.map(n => n.target.join(' ')).join('; ')})`);
    }
  }
}

const browser = await chromium.launch({ executablePath: args.chromium, args: ['--no-sandbox'] });
try {
  for (const [width, suffix] of [[1280, ''], [375, '-375px']]) {
    // bypassCSP: the pages forbid inline scripts, and axe is injected as one.
    const context = await browser.newContext({ viewport: { width, height: 800 }, locale: 'en-GB', bypassCSP: true });
    const page = await context.newPage();
    const errors = [];
    page.on('console', m => { if (m.type() === 'error') errors.push(m.text()); });
    await page.goto(`${args.base}/`);
    await audit(page, `sign-in${suffix}`);
    // Keyboard only: the skip link first, then through the page to the token field.
    await page.keyboard.press('Tab');
    check(await page.evaluate(() => document.activeElement.classList.contains('skip')), 'the first Tab reaches the skip link');
    let reached = false;
    for (let i = 0; i < 6 && !reached; i++) {
      await page.keyboard.press('Tab');
      reached = await page.evaluate(() => document.activeElement.id === 'token');
    }
    check(reached, 'Tab reaches the token field');
    await page.keyboard.type(args.token);
    // The form posts, and the answer redirects back to `/`: wait for that navigation.
    await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
    check(await page.locator('a[href="/audit"]').count() === 1, 'the home page links the audit page');
    await audit(page, `home${suffix}`);
    await page.click('a[href="/audit"]');
    await page.fill('#entry', '0');
    await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
    check((await page.textContent('main')).includes('tlog-proof'), 'the receipt is shown');
    await audit(page, `audit${suffix}`);
    await page.goto(`${args.base}/clinics`);
    check(await page.locator('svg rect').count() > 0, 'the heat map has cells');
    await audit(page, `clinics${suffix}`);
    // No horizontal scrolling at this width.
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 1, `no horizontal scroll at ${width}px (overflow ${overflow}px)`);
    check(errors.length === 0, `console errors: ${errors.join('; ')}`);
    await context.close();
  }
} finally {
  await browser.close();
}
if (failures.length) {
  console.log(failures.map(f => `FAIL ${f}`).join('\n'));
  process.exit(1);
}
console.log('OK');
