import { createSessionEventsClient, type SessionEventsClient } from '@session-events/client'

// The secret key is the page's only credential. It is kept for the tab only (sessionStorage: it
// goes when the tab closes, and other tabs do not see it), and it goes to the API in the
// Authorization header only, the client's: never into a URL, a log or the page's HTML.

const STORAGE_KEY = 'session-events:secret-key'

export function savedKey(): string | undefined {
  return sessionStorage.getItem(STORAGE_KEY) ?? undefined
}

export function saveKey(key: string): void {
  sessionStorage.setItem(STORAGE_KEY, key)
}

export function forgetKey(): void {
  sessionStorage.removeItem(STORAGE_KEY)
}

/** The client of the API that served the page. */
export function clientFor(key: string): SessionEventsClient {
  return createSessionEventsClient({
    apiKey: key,
    baseUrl: location.origin,
    // A page waits for a server that restarts: a reconnect is tried within 5 s at the latest.
    retryDelayMs: 250,
    maxRetryDelayMs: 5_000,
  })
}
