import { readdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, extname, join } from 'node:path'

// The page that watches a session live (apps/web), as `vite build` left it in apps/web/dist:
// index.html, served at `/`, and its assets, served under ASSET_PREFIX. Every file is read once,
// when the app is made: the page is a few files of a few kilobytes, and a request can name
// nothing but one of them (no path reaches the disk).

/** Where the page's assets are served: the `base` of apps/web/vite.config.ts. */
export const ASSET_PREFIX = '/app/'

/**
 * What the page may load and run: its own scripts, styles and connections, nothing inline and
 * nothing of another origin; no frame may hold it, and no string may become HTML (Trusted
 * Types: the page writes log lines as text nodes only).
 */
export const PAGE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "require-trusted-types-for 'script'",
  "trusted-types 'none'",
].join('; ')

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=UTF-8',
  '.css': 'text/css; charset=UTF-8',
  '.html': 'text/html; charset=UTF-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.map': 'application/json',
  '.woff2': 'font/woff2',
}

export interface WebPage {
  indexHtml: string
  /** The assets by the path they are served at (`/app/index-3f2a.js`), with their content type. */
  assets: Map<string, { body: Uint8Array; type: string }>
}

/** The built page in `dir` (default: apps/web/dist beside this package), or undefined when it is not built. */
export function loadWebPage(dir: string | undefined = defaultWebDir()): WebPage | undefined {
  if (dir === undefined) return undefined
  let indexHtml: string
  try {
    indexHtml = readFileSync(join(dir, 'index.html'), 'utf8')
  } catch {
    return undefined
  }
  const assets = new Map<string, { body: Uint8Array; type: string }>()
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue
    const file = join(entry.parentPath, entry.name)
    const path = file
      .slice(dir.length + 1)
      .split('\\')
      .join('/')
    if (path === 'index.html') continue
    assets.set(`${ASSET_PREFIX}${path}`, {
      body: readFileSync(file),
      type: TYPES[extname(path)] ?? 'application/octet-stream',
    })
  }
  return { indexHtml, assets }
}

/** apps/web/dist, found through the workspace's @session-events/web; undefined without it. */
function defaultWebDir(): string | undefined {
  try {
    return join(dirname(createRequire(import.meta.url).resolve('@session-events/web/package.json')), 'dist')
  } catch {
    return undefined
  }
}
