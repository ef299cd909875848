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
    doctor: { type: 'string' }, day: { type: 'string' }, requests: { type: 'string' },
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
    if (width === 1280) {
      // A doctor's absence displaces the booking the test made: a re-offer (or a cancellation).
      await page.goto(`${args.base}/clinics/actions`);
      await page.fill('#doctor', args.doctor);
      await page.fill('#from', `${args.day}T00:00`);
      await page.fill('#until', `${args.day}T23:59`);
      await audit(page, 'clinic-actions');
      await Promise.all([page.waitForNavigation(), page.click('form[action="/clinics/absence"] button')]);
      const absence = (await page.innerText('main')).replace(/\s+/g, ' ');
      console.log(`ABSENCE ${absence.slice(0, 300)}`);
      check(/bookings displaced: 1\b/.test(absence), 'the absence displaced the one booking');
      await audit(page, 'absence');
      // A queue re-balanced, as a plan.
      await page.goto(`${args.base}/clinics/actions`);
      await page.setInputFiles('#requests', args.requests);
      await Promise.all([page.waitForNavigation(), page.click('form[action="/clinics/rebalance"] button')]);
      const plan = (await page.innerText('main')).replace(/\s+/g, ' ');
      console.log(`REBALANCE ${plan.slice(0, 400)}`);
      check(plan.includes('A plan only'), 'the re-balancing is a plan');
      await audit(page, 'rebalance');
      // Two small simulations, their progress and reports, then side by side.
      for (const runs of ['1', '2']) {
        await page.goto(`${args.base}/planning`);
        await page.selectOption('#example', 'small-city');
        await page.fill('#runs', runs);
        await Promise.all([page.waitForNavigation(), page.click('form[action="/planning/run"] button')]);
        check(page.url().includes('/planning/simulation'), `the simulation's page (${page.url()})`);
        if (runs === '1') await audit(page, 'simulation');
        // The page refreshes itself until the report is ready.
        await page.locator('a[href^="/planning/report"]').waitFor({ timeout: 120000 });
      }
      await audit(page, 'simulation-done');
      await page.click('a[href^="/planning/report"]');
      check(await page.locator('svg').count() > 0, 'the report has its charts');
      await page.screenshot({ path: path.join(args.out, 'report.png'), fullPage: true });
      await page.goto(`${args.base}/planning`);
      await page.locator('input[name="a"]').nth(0).check();
      await page.locator('input[name="b"]').nth(1).check();
      await Promise.all([page.waitForNavigation(), page.click('form[action="/planning/compare"] button')]);
      const columns = await page.locator('table.compare thead th').count();
      check(columns >= 3, `two simulations side by side (${columns - 1} columns)`);
      await audit(page, 'simulations-compared');
    }
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
