// A fair window end to end in a real headless Chromium (Debian's, driven by playwright-core):
// an administrator uploads fairs.csv and applicants.csv, closes the window, runs the three
// mechanisms and compares them, opens a run's results (chart, downloads) and verifies it; then a
// citizen, with the keyboard alone and no sign-in, looks their result up and checks the receipt
// in the browser, which must fail once one byte of it is changed. axe-core audits every page.
//   node fairs.mjs --base URL --token TOKEN --files DIR --window W --applicant ID --code CODE --out DIR
// Prints `OUTCOME <the outcome sentence>` and, when every check held, `OK`.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    base: { type: 'string' }, token: { type: 'string' }, files: { type: 'string' },
    window: { type: 'string' }, applicant: { type: 'string' }, code: { type: 'string' },
    out: { type: 'string' }, chromium: { type: 'string', default: '/usr/bin/chromium' },
  },
});
const axeSource = fs.readFileSync(
  path.join(path.dirname(new URL(import.meta.url).pathname), 'node_modules/axe-core/axe.min.js'), 'utf8');
fs.mkdirSync(args.out, { recursive: true });
const failures = [];
const check = (ok, what) => { if (!ok) failures.push(what); };

async function audit(page, name) {
  await page.screenshot({ path: path.join(args.out, `${name}.png`), fullPage: true });
  const bytes = (await page.content()).length;
  check(bytes < 200 * 1024, `${name}: ${bytes} bytes, over 200 KB`);
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
  // The administrator.
  const admin = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-GB', bypassCSP: true });
  const page = await admin.newPage();
  const errors = [];
  page.on('console', m => { if (m.type() === 'error') errors.push(m.text()); });
  await page.goto(`${args.base}/`);
  await page.fill('#token', args.token);
  await Promise.all([page.waitForNavigation(), page.press('#token', 'Enter')]);
  await page.click('a[href="/fairs"]');
  await page.fill('#window', args.window);
  await page.setInputFiles('#fairs-csv', path.join(args.files, 'fairs.csv'));
  await page.setInputFiles('#applicants-csv', path.join(args.files, 'applicants.csv'));
  await audit(page, 'fairs');
  await Promise.all([page.waitForNavigation(), page.click('form[action="/fairs/submit"] button')]);
  check(page.url().includes('/fairs/window'), `the upload leads to the window's page (${page.url()})`);
  check((await page.textContent('main')).includes('24'), 'the window counts 24 applications');
  await Promise.all([page.waitForNavigation(), page.click('form[action="/fairs/close"] button')]);
  await page.fill('#c-beacon-value', '00112233445566778899aabbccddeeff');
  await audit(page, 'window');
  await Promise.all([page.waitForNavigation({ timeout: 60000 }), page.click('form[action="/fairs/compare"] button')]);
  check(page.url().includes('/fairs/compare'), `the comparison follows (${page.url()})`);
  const columns = await page.locator('table.compare thead th').count();
  check(columns === 4, `three mechanisms side by side (${columns - 1})`);
  check((await page.textContent('table.compare')).includes('strategy-proof'), 'the strategy-proofness row');
  await audit(page, 'compare');
  await Promise.all([page.waitForNavigation(), page.locator('table.compare thead a').first().click()]);
  check(await page.locator('svg rect.bar').count() > 0, 'the rank chart has bars');
  const csv = await page.locator('a[href*="table=assignment.csv"]').getAttribute('href');
  const download = await page.request.get(`${args.base}${csv}`);
  const text = await download.text();
  check(download.ok() && text.startsWith('applicant,fair,category,rank\n') && text.trim().split('\n').length === 25,
    `assignment.csv has its header and 24 rows (${text.slice(0, 80)})`);
  await audit(page, 'run');
  await Promise.all([page.waitForNavigation({ timeout: 60000 }), page.click('a[href^="/fairs/verify"]')]);
  check((await page.textContent('main')).includes('Verified'), 'the run verifies');
  await audit(page, 'verify');
  check(errors.length === 0, `console errors: ${errors.join('; ')}`);
  await admin.close();

  // The citizen: keyboard only, no session.
  const citizen = await browser.newContext({ viewport: { width: 375, height: 800 }, locale: 'en-GB', bypassCSP: true });
  const pub = await citizen.newPage();
  const pubErrors = [];
  pub.on('console', m => { if (m.type() === 'error') pubErrors.push(m.text()); });
  await pub.goto(`${args.base}/results`);
  await audit(pub, 'results-form');
  const focusTo = async (id) => {
    for (let i = 0; i < 12; i++) {
      await pub.keyboard.press('Tab');
      if (await pub.evaluate((id) => document.activeElement.id === id, id)) return true;
    }
    return false;
  };
  check(await focusTo('window'), 'Tab reaches the window field');
  await pub.keyboard.type(args.window);
  check(await focusTo('id'), 'Tab reaches the id field');
  await pub.keyboard.type(args.applicant);
  check(await focusTo('code'), 'Tab reaches the code field');
  await pub.keyboard.type(args.code);
  // The receipt needs a signed checkpoint covering the outcome: the server signs every 200 ms.
  await new Promise(r => setTimeout(r, 1000));
  await Promise.all([pub.waitForNavigation(), pub.keyboard.press('Enter')]);
  const outcome = (await pub.textContent('p.outcome')).replace(/\s+/g, ' ').trim();
  console.log(`OUTCOME ${outcome}`);
  check(await pub.locator('#receipt').count() === 1, 'the result page carries the receipt');
  await audit(pub, 'result');
  check(await focusTo('check-receipt'), 'Tab reaches the receipt check');
  await pub.keyboard.press('Enter');
  await pub.waitForFunction(() => document.getElementById('receipt-result').textContent !== '');
  const good = await pub.locator('#receipt-result').getAttribute('class');
  check(good === 'ok', `the receipt checks (${await pub.textContent('#receipt-result')})`);
  // One byte of the entry changed: the check must fail.
  const original = await pub.inputValue('#receipt');
  const at = original.indexOf('extra ') + 10;
  const flipped = original.slice(0, at) + (original[at] === 'A' ? 'B' : 'A') + original.slice(at + 1);
  await pub.fill('#receipt', flipped);
  await pub.evaluate(() => { document.getElementById('receipt-result').textContent = ''; });
  await pub.click('#check-receipt');
  await pub.waitForFunction(() => document.getElementById('receipt-result').textContent !== '');
  const bad = await pub.locator('#receipt-result').getAttribute('class');
  check(bad === 'error', `a changed receipt fails (${await pub.textContent('#receipt-result')})`);
  await pub.click('a[href^="/cutoffs"]');
  check(await pub.locator('tbody tr').count() === 8, 'the cutoffs list every pool');
  await audit(pub, 'cutoffs');
  const overflow = await pub.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 1, `no horizontal scroll at 375px (overflow ${overflow}px)`);
  check(pubErrors.length === 0, `console errors: ${pubErrors.join('; ')}`);
  await citizen.close();
} finally {
  await browser.close();
}
if (failures.length) {
  console.log(failures.map(f => `FAIL ${f}`).join('\n'));
  process.exit(1);
}
console.log('OK');
