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
  }
}
