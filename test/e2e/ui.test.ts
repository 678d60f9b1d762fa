/**
 * The web UI in a real browser (Debian's Chromium, driven by playwright-core) against a real
 * server: sign in, run an action from its generated form, watch a workflow's graph reach its final
 * state, answer an inquiry and see the workflow go on, edit a workflow with live validation, and
 * survive an expired access token. Screenshots of the main pages go to test-results/screenshots/.
 *
 * Chromium is installed by scripts/ensure-chromium.sh (CI runs it before the tests). Without it the
 * suite is skipped with a loud warning — and fails under CI=true.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, type AnyBody, startTestServer, type TestServer } from '../support/server.ts';

const CHROMIUM = process.env.ATTUNE_CHROMIUM ?? '/usr/bin/chromium';
const root = path.resolve(import.meta.dirname, '..', '..');
const shots = path.join(root, 'test-results', 'screenshots');

const haveChromium = fs.existsSync(CHROMIUM);
if (!haveChromium) {
  const msg = `Chromium is not installed at ${CHROMIUM} (run scripts/ensure-chromium.sh).`;
  if (process.env.CI === 'true') throw new Error(`${msg} CI=true: the UI tests must run.`);
  console.warn(`\n\n!!!!!!!! ${msg}\n!!!!!!!! The web UI end-to-end tests are SKIPPED.\n\n`);
}
const suite = haveChromium ? describe : describe.skip;

/** A workflow that fans out over items, then finishes. */
const FANOUT = {
  ref: 'uitest.fanout',
  label: 'Fan-out',
  description: 'three echoes, then done',
  definition: {
    tasks: [
      {
        name: 'begin',
        action: 'core.echo',
        input: { message: 'go' },
        next: [{ when: '{{ succeeded() }}', do: 'each' }],
      },
      {
        name: 'each',
        action: 'core.echo',
        with_items: '{{ ["a", "b", "c"] }}',
        input: { message: '{{ item }}' },
        next: [{ when: '{{ succeeded() }}', do: 'done' }],
      },
      { name: 'done', action: 'core.echo', input: { message: 'finished' } },
    ],
  },
};

/** A workflow that asks before it reports. */
const APPROVAL = {
  ref: 'uitest.approval',
  label: 'Approval',
  definition: {
    tasks: [
      {
        name: 'approve',
        action: 'core.ask',
        input: {
          prompt: 'Ship it?',
          response_schema: {
            type: 'object',
            properties: { approved: { type: 'boolean' }, reason: { type: 'string' } },
            required: ['approved'],
          },
        },
        next: [
          { when: '{{ succeeded() and result().response.approved }}', do: 'ship' },
          { when: '{{ succeeded() and not result().response.approved }}', do: 'noop' },
        ],
      },
      { name: 'ship', action: 'core.echo', input: { message: 'shipped' } },
    ],
  },
};

suite('web UI in Chromium', () => {
  let s: TestServer;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const consoleErrors: string[] = [];

  const api = async (method: string, url: string, body?: unknown) => {
    const r = await s.request<AnyBody>(method, url, { token: s.adminToken, body });
    if (r.status >= 300) throw new Error(`${method} ${url}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body.data;
  };
  const shot = async (name: string) => {
    await page.waitForTimeout(250);
    await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
  };
  /** Evaluates JavaScript in the page (given as text: this file is type-checked without the DOM). */
  const inPage = <T = unknown>(js: string): Promise<T> => page.evaluate(js) as Promise<T>;
  const go = async (p: string) => {
    await page.goto(s.url + p);
    await page.waitForSelector('main h1');
  };

  beforeAll(async () => {
    if (!fs.existsSync(path.join(root, 'web', 'dist', 'index.html'))) {
      const r = spawnSync(process.execPath, ['scripts/build-web.mjs'], { cwd: root, stdio: 'inherit' });
      expect(r.status, 'the web UI builds').toBe(0);
    }
    fs.mkdirSync(shots, { recursive: true });
    s = await startTestServer();
    await api('POST', '/api/v1/packs', { ref: 'uitest', label: 'UI tests' });
    await api('POST', '/api/v1/workflows', FANOUT);
    await api('POST', '/api/v1/workflows', APPROVAL);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    });
    context = await browser.newContext({ viewport: { width: 1440, height: 900 }, colorScheme: 'light' });
    page = await context.newPage();
    page.setDefaultTimeout(20_000);
    page.on('pageerror', (e) => consoleErrors.push(`page error: ${e.message}`));
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await s?.stop();
  });

  it('refuses a wrong password, then signs in', async () => {
    await page.goto(s.url);
    await page.fill('#login', 'admin');
    await page.fill('#password', 'not-the-password');
    await page.click('button[type=submit]');
    await expect.poll(() => page.textContent('[role=alert]')).toContain('Wrong login or password');
    await shot('login');
    await page.fill('#password', ADMIN_PASSWORD);
    await page.click('button[type=submit]');
    await page.waitForSelector('nav[aria-label=Main]');
    expect(await page.textContent('main h1')).toBe('Dashboard');
  }, 60_000);

  it('runs core.echo from its form and shows the execution succeed', async () => {
    await go('/actions/core.echo');
    await shot('action-run-form');
    // the form refuses an empty required field, at the field
    await page.click('button:has-text("Run core.echo")');
    await expect
      .poll(() => page.locator('[name=message] ~ .error, .field .error').first().textContent())
      .toBe('Required');
    await page.fill('[name=message]', 'hello from the browser');
    await page.click('button:has-text("Run core.echo")');
    await page.waitForURL(/\/executions\/\d+$/);
    await page.waitForSelector('.page-head .badge[data-status=succeeded]');
    expect(await page.textContent('main')).toContain('hello from the browser');
    await shot('execution-echo');
  }, 60_000);

  it("draws a workflow's graph and follows it live to its final state", async () => {
    await go('/actions/uitest.fanout');
    await page.click('button:has-text("Run uitest.fanout")');
    await page.waitForURL(/\/executions\/\d+$/);
    await page.waitForSelector('[data-testid=workflow-graph] [data-task=begin]');
    // every node reaches succeeded without a reload; with-items progress shows on its node
    for (const t of ['begin', 'each', 'done'])
      await page.waitForSelector(`[data-testid=workflow-graph] [data-task=${t}][data-status=succeeded]`, {
        timeout: 30_000,
      });
    await page.waitForSelector('.page-head .badge[data-status=succeeded]');
    expect(await page.textContent('[data-task=each]')).toContain('3/3 items');
    const colour = await inPage<string>(
      `getComputedStyle(document.querySelector('[data-task=done]')).borderTopColor`,
    );
    const ok = await inPage<string>(`(() => {
      const probe = document.createElement('div');
      probe.style.color = 'var(--st-ok)';
      document.body.appendChild(probe);
      const c = getComputedStyle(probe).color;
      probe.remove();
      return c;
    })()`);
    expect(colour).toBe(ok);
    // a node opens its runs
    await page.click('[data-task=each]');
    await page.waitForSelector('h2:has-text("Runs of")');
    expect(await page.locator('h2:has-text("Runs of") + .table-wrap tbody tr').count()).toBe(3);
    await shot('execution-workflow-graph');
    await page.click('[role=tab]:has-text("Timeline")');
    await page.waitForSelector('.timeline');
    await shot('execution-workflow-timeline');
  }, 90_000);

  it('answers an inquiry from its generated form and the workflow continues', async () => {
    const ex = await api('POST', '/api/v1/executions', { action: 'uitest.approval' });
    await go(`/executions/${ex.id}`);
    await page.waitForSelector(
      '[data-task=approve][data-status=running], [data-task=approve][data-status=asking]',
      {
        timeout: 30_000,
      },
    );
    // the header shows a pending inquiry
    await page.waitForSelector('header .count-badge', { timeout: 20_000 });
    await page.click('a:has-text("answer inquiry")');
    await page.waitForURL(/\/inquiries\/\d+$/);
    // the page loads the inquiry after it has rendered its frame
    await expect.poll(() => page.textContent('main'), { timeout: 15_000 }).toContain('Ship it?');
    await shot('inquiry-answer-form');
    await page.check('[name=approved]');
    await page.fill('[name=reason]', 'looks good');
    await page.click('button:has-text("Send answer")');
    await page.waitForSelector('text=Answered by admin');
    await page.click('a:has-text("Follow the workflow")');
    await page.waitForSelector('[data-task=ship][data-status=succeeded]', { timeout: 30_000 });
    await page.waitForSelector('.page-head .badge[data-status=succeeded]');
    await shot('execution-after-answer');
  }, 90_000);

  it('validates a workflow as it is edited and shows the problem at its task', async () => {
    await go('/workflows/uitest.fanout');
    await page.waitForSelector('[data-testid=workflow-graph]');
    await shot('workflow-graph');
    await page.click('[role=tab]:has-text("YAML")');
    const editor = page.locator('textarea[aria-label="Workflow YAML"]');
    const yaml = await editor.inputValue();
    await editor.fill(yaml.replace('do: done', 'do: finish'));
    const problem = page.locator('.problems li').first();
    await expect.poll(() => problem.textContent(), { timeout: 15_000 }).toContain('each');
    expect(await problem.textContent()).toContain('finish');
    expect(await page.locator('.editor .gutter .err').count()).toBeGreaterThan(0);
    await shot('workflow-editor-error');
    await editor.fill(yaml.replace('three echoes, then done', 'three echoes, then finished'));
    await expect.poll(() => page.textContent('[role=status]')).toMatch(/^Valid/);
    await page.click('button:has-text("Save")');
    await page.waitForSelector('text=Saved.');
    const saved = await api('GET', '/api/v1/workflows/uitest.fanout');
    expect(saved.description).toBe('three echoes, then finished');
  }, 60_000);

  it('takes screenshots of the main pages, in both themes', async () => {
    await api('POST', '/api/v1/keys', { name: 'ui_secret', value: 's3cret', encrypted: true });
    const pages: [string, string][] = [
      ['/', 'dashboard'],
      ['/executions', 'executions'],
      ['/actions', 'actions'],
      ['/workflows', 'workflows'],
      ['/rules', 'rules'],
      ['/rules/new', 'rule-editor'],
      ['/triggers', 'triggers'],
      ['/events', 'events'],
      ['/inquiries?status=all', 'inquiries'],
      ['/packs', 'packs'],
      ['/packs/core', 'pack'],
      ['/keys', 'keys'],
      ['/users', 'users'],
      ['/roles', 'roles'],
      ['/api-keys', 'api-keys'],
    ];
    for (const [p, name] of pages) {
      await go(p);
      await page.waitForLoadState('networkidle').catch(() => undefined);
      expect(await page.locator('.alert.error').count(), `${p} shows no error`).toBe(0);
      await shot(name);
    }
    // encrypted values are masked
    await go('/keys');
    await page.waitForSelector('main tr:has-text("ui_secret")');
    expect(await page.textContent('main')).toContain('••••••••');
    expect(await page.textContent('main')).not.toContain('s3cret');
    await page.click('button[aria-label^="Theme"]');
    await go('/');
    expect(await inPage<string>('document.documentElement.dataset.theme')).toBe('dark');
    await shot('dashboard-dark');
    await go('/executions');
    await shot('executions-dark');
  }, 120_000);

  it('refreshes an expired access token on its own, and signs out', async () => {
    const token = `JSON.parse(localStorage.getItem('attune.session')).accessToken`;
    const before = await inPage<string>(token);
    // The access token has expired (as far as the UI knows): the next call must refresh it first.
    await inPage(`(() => {
      const s = JSON.parse(localStorage.getItem('attune.session'));
      s.expiresAt = Date.now() - 1000;
      localStorage.setItem('attune.session', JSON.stringify(s));
    })()`);
    await go('/executions');
    await page.waitForSelector('table');
    const after = await inPage<string>(token);
    expect(after).not.toBe(before);
    await page.click('button:has-text("Sign out")');
    await page.waitForSelector('#login');
    expect(await inPage(`localStorage.getItem('attune.session')`)).toBeNull();
    expect(consoleErrors).toEqual([]);
  }, 60_000);
});
