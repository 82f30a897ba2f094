// The labeler web page in headless Chromium (Debian's, driven by playwright-core): log in with a
// token, label three tasks with the keyboard, and find the three labels in Kafka. A screenshot
// is kept in test-artifacts/.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { TokenTable } from '../../services/common/auth.js';
import { testRuntime } from '../helpers/kafka.js';
import { reviewPayload, startLabeling, type LabelingHarness } from '../helpers/labeling.js';

const TOKEN = 'ann-browser-token-0123456789';
const ARTIFACTS = join(import.meta.dirname, '..', '..', 'test-artifacts');

describe('labeler web page', () => {
  const runtime = testRuntime('labeling');
  let harness: LabelingHarness;
  let browser: Browser;

  before(async () => {
    harness = await startLabeling(runtime, {
      tokens: new TokenTable().add(TOKEN, { id: 'ann', role: 'labeler' }),
      labelsRequired: 1,
      guidelines: 'Label 1 if this visit will end in a purchase of the item.',
    });
    for (let n = 1; n <= 4; n++) {
      const payload = reviewPayload(n, {
        itemId: `item-0000${n}`,
        category: 'cameras',
        price: 99.5 + n,
        eventTime: Date.now() - n * 60_000,
        score: 0.4 + n / 100,
        modelVersion: 'v000003',
        device: 'mobile',
        country: 'DE',
        referrer: 'email',
        pageType: n === 4 ? 'cart' : 'product',
        // Task n's session had n − 1 earlier clicks; the oldest recorded before prices were kept.
        session: Array.from({ length: n - 1 }, (_, k) => ({
          itemId: k === 0 ? null : `item-9${k}`,
          category: 'cameras',
          price: k === 0 ? null : 50 + k,
          eventTime: Date.now() - n * 60_000 - (n - k) * 1000,
        })),
      });
      await harness.queue.add({ id: `task-${n}`, priority: n / 10, payload });
    }
    await harness.app.listen({ host: '127.0.0.1', port: 0 });
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      // As root in a sandboxed machine with no network beyond loopback.
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  });
  after(async () => {
    await browser?.close();
    await harness.close();
  });

  it('logs in, labels three tasks with the keyboard, and the labels reach Kafka', async () => {
    const page = await browser.newPage({ viewport: { width: 900, height: 760 } });
    const port = (harness.app.server.address() as { port: number }).port;
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.fill('#token', TOKEN);
    await page.click('button[type=submit]');
    await page.waitForSelector('#task:not([hidden])');
    assert.equal(await page.textContent('#item'), 'item-00004', 'highest priority first');
    assert.match((await page.textContent('#guidelines')) ?? '', /purchase of the item/);
    // The question, its flags with their guidelines, and the click's whole context.
    assert.equal(await page.textContent('#question'), 'Will this visit end in a purchase?');
    assert.match((await page.textContent('#guidelines')) ?? '', /Broken page: The page could not be used/);
    assert.equal(await page.textContent('#page-type'), 'cart');
    assert.equal(await page.textContent('#referrer'), 'email');
    assert.equal(await page.textContent('#device'), 'mobile / DE');
    // The session's earlier clicks, oldest first; cells run together in textContent.
    const rows = await page.evaluate(
      "[...document.querySelectorAll('#session tbody tr')].map((tr) => tr.textContent)",
    );
    assert.deepEqual(rows, [
      '4 s before?cameras?',
      '3 s beforeitem-91cameras51.00',
      '2 s beforeitem-92cameras52.00',
    ]);

    // Blind review: no score on the page (nor in what the API sent) before the answer.
    assert.equal(await page.isHidden('#score-block'), true, 'the score is hidden before the answer');
    for (const [i, key] of ['1', '0', '1'].entries()) {
      // The page marks itself ready when a task is shown and no answer is on its way.
      await page.waitForSelector('body[data-ready=yes]');
      // The second task is flagged as bot traffic with its key, then answered.
      if (i === 1) {
        await page.keyboard.press('b');
        assert.equal(await page.isChecked('[data-flag=bot]'), true);
      }
      await page.keyboard.press(key);
      // A string, not a function: tsx's transform would add helpers the page does not have.
      await page.waitForFunction(
        `document.getElementById('status').textContent.startsWith('Labeled ${i + 1} ')`,
      );
    }
    assert.match(
      (await page.textContent('#status')) ?? '',
      /the model said 42\.0%/,
      'the score, once answered',
    );
    // 'Labeled 3' shows before the next task is fetched; ready means the next one is on screen.
    await page.waitForSelector('body[data-ready=yes]');
    assert.equal(await page.textContent('#item'), 'item-00001', 'the fourth task is up next');
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'labeler-page.png'), fullPage: true });

    // The count is the server's: a reload keeps it.
    await page.reload();
    await page.waitForSelector('body[data-ready=yes]');
    assert.equal(await page.textContent('#who'), '3 labeled');
    await page.keyboard.press('0');
    await page.waitForSelector('#empty:not([hidden])');
    assert.match((await page.textContent('#empty')) ?? '', /the queue is empty/);
    assert.equal(await page.textContent('#who'), '4 labeled');
    await page.screenshot({ path: join(ARTIFACTS, 'labeler-page-empty.png'), fullPage: true });

    // Log out, then a wrong token: refused, said so, and the login is back to try again.
    await page.click('#logout');
    assert.equal(await page.isVisible('#login'), true);
    assert.equal(await page.inputValue('#token'), '', 'the token is forgotten');
    await page.fill('#token', 'not-a-labeler-token-00000');
    await page.click('button[type=submit]');
    await page.waitForFunction("document.getElementById('login-error').textContent.includes('refused')");
    assert.equal(await page.isVisible('#login'), true);
    assert.equal(await page.evaluate("localStorage.getItem('flywheel.token')"), null);
    await page.screenshot({ path: join(ARTIFACTS, 'labeler-page-refused.png'), fullPage: true });
    await page.fill('#token', TOKEN);
    await page.click('button[type=submit]');
    await page.waitForFunction("document.getElementById('who').textContent === '4 labeled'");

    const { labels } = harness;
    await labels.atLeast(4);
    assert.deepEqual(
      labels.records.map((r) => [r.value.taskId, r.value.labelerId, r.value.label, r.value.flags]),
      [
        ['task-4', 'ann', 1, []],
        ['task-3', 'ann', 0, ['bot']],
        ['task-2', 'ann', 1, []],
        ['task-1', 'ann', 0, []],
      ],
      'the flag went with its task only',
    );
  });
});
