// What the middleware hands to the handlers, request by request (Hono's context variables).
export interface AppEnv {
  Variables: {
    /** This request's id (`req_…`), sent back as `metorial-req-id` and written in its log line. */
    requestId: string
    /** The instance of the request's API key, once it is authenticated. */
    instanceId: string
    apiKeyId: string
    /** The key's scopes, space-separated. */
    scopes: string
    /** The rate limit's state, sent with a successful response, when there is a limit. */
    rateLimitHeaders?: Record<string, string>
    /** A write's Idempotency-Key, for its handler to hand to the store (middleware/idempotency.ts). */
    idempotencyKey?: { instanceId: string; key: string; fingerprint: string }
  }
}
