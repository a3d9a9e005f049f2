// Browser test of `t2s serve`: Debian's Chromium (driven by playwright-core, never a downloaded browser) opens the
// timeline page, asks a question through the form, and sees the result, its SQL and rows, and timeline bars appear.
// Usage: node timeline.test.js <path to t2s> <output folder>. Exits 77 (skipped) when chromium or node_modules is
// missing. Everything binds to 127.0.0.1; the server exits by itself after --max-seconds.
'use strict';
const fs = require('fs');
const path = require('path');
const os = require('os');
const { spawn } = require('child_process');

const CHROMIUM = '/usr/bin/chromium';
const [t2s, outDir] = process.argv.slice(2);
if (!t2s || !outDir) { console.error('usage: node timeline.test.js <t2s> <out-dir>'); process.exit(2); }
if (!fs.existsSync(CHROMIUM)) { console.log(`skipped: ${CHROMIUM} not installed (apt-get install chromium)`); process.exit(77); }
let chromium;
try { ({ chromium } = require('playwright-core')); } catch (e) {
  console.log('skipped: playwright-core missing (run `npm ci` in tests/browser)'); process.exit(77);
}

function startServe() {
  return new Promise((resolve, reject) => {
    const args = ['serve', '--port', '0', '--max-seconds', '240', '--speed', '20', '--log-level', 'warn',
                  '--responder', 'oracle', '--cache-dir', path.join(outDir, 'synthetic')];
    const p = spawn(t2s, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let buf = '';
    const timer = setTimeout(() => reject(new Error('t2s serve did not start within 120 s')), 120000);
    p.stdout.on('data', d => {
      buf += d.toString();
      const m = buf.match(/http:\/\/127\.0\.0\.1:(\d+)\//);
      if (m) { clearTimeout(timer); resolve({ proc: p, url: `http://127.0.0.1:${m[1]}/`, banner: buf }); }
    });
    p.on('exit', code => { clearTimeout(timer); reject(new Error(`t2s serve exited with ${code}: ${buf}`)); });
  });
}

(async () => {
  fs.mkdirSync(path.join(outDir, 'browser'), { recursive: true });
  const serve = await startServe();
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 't2s-chromium-'));
  let browser;
  let failed = false;
  try {
    // A fresh --user-data-dir: playwright passes `profile` as that flag itself.
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1400, height: 900 },
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
             '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const page = browser.pages()[0] || await browser.newPage();
    await page.goto(serve.url);
    await page.waitForFunction(() => document.querySelectorAll('#db option').length > 0, null, { timeout: 20000 });
    const mode = await page.textContent('#mode');
    if (!/oracle/.test(mode)) throw new Error(`the page must say who answers: got "${mode}"`);
    const question = await page.inputValue('#q');
    if (!question) throw new Error('the form offers no example question');
    await page.click('#go');
    await page.waitForSelector('#result', { timeout: 90000 });
    const sql = (await page.textContent('#sql')).trim();
    if (!/select/i.test(sql)) throw new Error(`no SQL shown: "${sql}"`);
    if (await page.locator('#rowtable').count() !== 1) throw new Error('no result table');
    const stages = await page.locator('#stages .stage').count();
    if (stages < 4) throw new Error(`only ${stages} stage events shown`);
    await page.waitForFunction(() => document.querySelectorAll('#lanes .bar').length > 0, null, { timeout: 10000 });
    const bars = await page.locator('#lanes .bar').count();
    const lanes = await page.locator('#lanes .lane').count();
    await page.hover('#lanes .bar');
    const tip = await page.textContent('#tip');
    if (!/why here/.test(tip)) throw new Error(`hover does not explain the placement: "${tip}"`);
    const shot = path.join(outDir, 'browser', 'timeline.png');
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`ok: question "${question}" answered with ${stages} stage events; ${bars} bars on ${lanes} lanes; ` +
                `screenshot ${shot}`);
  } catch (e) {
    console.error('FAILED:', e.message);
    failed = true;
  } finally {
    if (browser) await browser.close();
    serve.proc.kill('SIGTERM');
    fs.rmSync(profile, { recursive: true, force: true });
  }
  process.exit(failed ? 1 : 0);
})().catch(e => { console.error('FAILED:', e.message); process.exit(1); });
