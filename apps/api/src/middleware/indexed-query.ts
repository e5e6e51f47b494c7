import type { MiddlewareHandler } from 'hono'
import type { AppEnv } from '../env.js'

/** Metorial's SDK sends arrays as `key[0]=a&key[1]=b`: they become repeated keys, in index order, before validation. */
export const indexedQuery: MiddlewareHandler<AppEnv> = async (c, next) => {
  const url = c.req.url
  const q = url.indexOf('?')
  if (q >= 0 && (url.includes('[', q) || url.includes('%5B', q) || url.includes('%5b', q))) {
    const params = new URLSearchParams(url.slice(q + 1))
    const indexed: [string, number, string][] = []
    const plain: [string, string][] = []
    for (const [key, value] of params) {
      const m = /^(.+)\[(\d*)\]$/.exec(key)
      if (m) indexed.push([m[1]!, m[2] === '' ? Number.MAX_SAFE_INTEGER : Number(m[2]), value])
      else plain.push([key, value])
    }
    if (indexed.length > 0) {
      indexed.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1]))
      const out = new URLSearchParams(plain)
      for (const [key, , value] of indexed) out.append(key, value)
      c.req.raw = new Request(`${url.slice(0, q)}?${out.toString()}`, c.req.raw)
    }
  }
  await next()
}
