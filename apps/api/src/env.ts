import type { Logger } from 'pino'
import type { Store } from './store/types.js'

/** What the middleware hands to the handlers. */
export interface AppEnv {
  Variables: {
    requestId: string
    store: Store
    logger: Logger
    /** The instance of the request's API key, once it is authenticated. */
    instanceId: string
    apiKeyId: string
    /** The key's scopes, space-separated. */
    scopes: string
    /** Headers of every response: the request id and the API version. */
    responseHeaders: Record<string, string>
    /** Headers of a successful response: the rate limit's state, when there is one. */
    rateLimitHeaders?: Record<string, string>
  }
}
