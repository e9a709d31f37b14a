// Headless Debian chromium for the browser tests (the feedback interface, the report), through
// playwright-core with the flags that keep it off the network; never a downloaded browser.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { type BrowserContext, chromium } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';

/**
 * A headless chromium context with a fresh profile in `profileDir` (passed as --user-data-dir).
 *
 * @example const browser = await launchChromium(join(dir, 'profile'), { width: 1000, height: 900 });
 */
export async function launchChromium(
  profileDir: string,
  viewport: { width: number; height: number },
): Promise<BrowserContext> {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: install it with \`apt-get install chromium\``);
  return chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport,
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
}
