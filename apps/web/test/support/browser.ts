import { existsSync } from 'node:fs'
import { chromium, type Browser } from 'playwright-core'

// The machine's Chromium, driven by playwright-core (which downloads no browser of its own).
// Where none is found, the browser tests are skipped, and say so with the command that installs it.

/** The command that installs the browser the tests drive (Debian's package). */
export const INSTALL_CHROMIUM = 'apt-get install -y chromium'

/** `CHROMIUM_PATH` when it is set (only it), else where Debian and Google put theirs. */
const CANDIDATES = process.env.CHROMIUM_PATH
  ? [process.env.CHROMIUM_PATH]
  : ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome', '/usr/bin/google-chrome-stable']

/** The Chromium found on this machine, if any. */
export const chromiumPath = CANDIDATES.find((path) => existsSync(path))

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  })
}
