/**
 * Headless Chromium for the page tests (Debian's, driven by playwright-core): one launch per test file, and
 * every page opened through `open` records its script errors and console errors (a CSP violation among
 * them), so a test can assert a page ran nothing it should not and logged nothing.
 */
import { type Browser, chromium, type Page } from 'playwright-core';

/** Installed by .ci/run (Debian's chromium): a missing browser fails the test, it is not skipped. */
export const CHROMIUM = '/usr/bin/chromium';
/** What this closed network needs: no background connections, no sandbox as root, no GPU. */
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface PageBrowser {
  readonly browser: Browser;
  /** Script errors and console errors of every page opened, each prefixed with its path. */
  readonly problems: string[];
  /** Opens `base + path` in a new page, recording its problems. */
  open(path: string): Promise<Page>;
  close(): Promise<void>;
}

export async function launchChromium(base: () => string): Promise<PageBrowser> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
  const problems: string[] = [];
  return {
    browser,
    problems,
    async open(path) {
      const page = await browser.newPage();
      page.on('pageerror', (error) => problems.push(`${path}: ${error.message}`));
      page.on('console', (message) => {
        if (message.type() === 'error') problems.push(`${path}: ${message.text()}`);
      });
      await page.goto(`${base()}${path}`);
      return page;
    },
    close: () => browser.close(),
  };
}
