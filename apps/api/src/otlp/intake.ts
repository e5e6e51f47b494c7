import { createHash } from 'node:crypto'
import * as specValues from '@session-events/server-stubs/values'
import { LRUCache } from 'lru-cache'
import {
  InvalidReferenceError,
  SessionGoneError,
  WriteConflictError,
  type IdempotencyClaim,
  type StoreReader,
  type StoreWriter,
} from '../store/types.js'
import type { ExportLogsServiceRequest } from '../generated/otlp/opentelemetry/proto/collector/logs/v1/logs_service_pb.js'
import { identityOf, logLinesOf, recordCount, timeOfRecords, type ResourceIdentity } from './records.js'

// Where an export's records go, and writing them there (the spec's exportLogs says it for
// users): per resource, a session (its `session.id`, else one made for its service instance), a
// run in it (its `service.instance.id`: found, or started), and one `server_logs` event of its
// records, appended in one commit with the body's hash as its idempotency key, so that an
// exporter's retry of the same body writes nothing twice.
//
// A service instance's session and run are found again by their metadata (a session's, a
// deployment's: `{"service.instance.id": …}`), read once per process and then kept in memory;
// the first request of a new instance creates them under idempotency keys of their own, so that
// two processes (or two concurrent requests) that both miss make one, not two.

const SESSION_ID = new RegExp(specValues.schemas.SessionId.pattern)
const SERVER_RUN_ID = new RegExp(specValues.schemas.ServerRunId.pattern)

/** Where a resource's records go. */
interface Target {
  sessionId: string
  serverRunId: string
}

/** Records that cannot be stored, and why (partialSuccess). */
export interface Rejected {
  count: number
  message: string
}

/** A resource whose records go nowhere: its records are rejected with this reason. */
class Unplaceable extends Error {}

/** The reads the intake makes. */
type IntakeReader = Pick<
  StoreReader,
  'serverRuns' | 'sessionInstance' | 'sessionWithMetadata' | 'serverRunWithDeploymentMetadata'
>

export class OtlpIntake {
  readonly #reader: IntakeReader
  readonly #writer: StoreWriter
  /** Targets found, by instance, session.id and service instance; and those being found right now. */
  readonly #targets = new LRUCache<string, Target>({ max: 10_000 })
  readonly #finding = new Map<string, Promise<Target>>()

  constructor(deps: { reader: IntakeReader; writer: StoreWriter }) {
    this.#reader = deps.reader
    this.#writer = deps.writer
  }

  /** Stores an export's records for the key's instance; returns the records not stored and why. */
  async export(instanceId: string, request: ExportLogsServiceRequest, hash: string): Promise<Rejected | undefined> {
    let count = 0
    const reasons: string[] = []
    for (const [index, resource] of request.resourceLogs.entries()) {
      const records = recordCount(resource)
      if (records === 0) continue
      const identity = identityOf(resource)
      try {
        const claim: IdempotencyClaim = {
          instanceId,
          // A newline never comes in an HTTP header: no client's Idempotency-Key is one of these.
          key: `otlp\nlogs\n${hash}\n${index}`,
          fingerprint: hash,
          status: 200,
          orderMs: timeOfRecords(resource),
        }
        const append = async () =>
          this.#writer.appendEvent({
            ...(await this.#target(instanceId, identity)),
            lines: logLinesOf(resource),
            claim,
          })
        try {
          try {
            await append()
          } catch (error) {
            // Its session was pruned (retention) since it was found: found, or made, again.
            if (!(error instanceof SessionGoneError)) throw error
            this.#targets.delete(targetKey(instanceId, identity))
            await append()
          }
        } catch (error) {
          // The run is gone or stopped: found again next time (a new run for a stopped one's instance is not made).
          if (error instanceof InvalidReferenceError || error instanceof WriteConflictError) {
            this.#targets.delete(targetKey(instanceId, identity))
            throw new Unplaceable(`service.instance.id ${identity.instanceId}: ${error.message}`)
          }
          throw error
        }
      } catch (error) {
        if (!(error instanceof Unplaceable)) throw error
        count += records
        if (!reasons.includes(error.message)) reasons.push(error.message)
      }
    }
    return count > 0 ? { count, message: reasons.join('; ') } : undefined
  }

  async #target(instanceId: string, identity: ResourceIdentity): Promise<Target> {
    const key = targetKey(instanceId, identity)
    const known = this.#targets.get(key)
    if (known) return known
    let finding = this.#finding.get(key)
    if (!finding) {
      finding = this.#find(instanceId, identity).finally(() => this.#finding.delete(key))
      this.#finding.set(key, finding)
    }
    const target = await finding
    this.#targets.set(key, target)
    return target
  }

  async #find(instanceId: string, identity: ResourceIdentity): Promise<Target> {
    // A run named by its id: its own session, which must be the one named, if one is.
    if (SERVER_RUN_ID.test(identity.instanceId)) {
      const [run] = await this.#reader.serverRuns([identity.instanceId])
      const sessionId = run?.serverSession.session_id
      const owner = sessionId && (await this.#reader.sessionInstance(sessionId))
      if (!run || owner !== instanceId || (identity.sessionId !== undefined && identity.sessionId !== sessionId))
        throw new Unplaceable(`service.instance.id ${identity.instanceId}: no server run of this instance has this id`)
      return { sessionId: sessionId!, serverRunId: run.run.id }
    }
    const sessionId = await this.#session(instanceId, identity)
    return { sessionId, serverRunId: await this.#run(instanceId, sessionId, identity) }
  }

  async #session(instanceId: string, identity: ResourceIdentity): Promise<string> {
    if (identity.sessionId !== undefined) {
      if (
        !SESSION_ID.test(identity.sessionId) ||
        (await this.#reader.sessionInstance(identity.sessionId)) !== instanceId
      )
        throw new Unplaceable(`session.id ${identity.sessionId}: no session of this instance has this id`)
      return identity.sessionId
    }
    const metadata = { 'service.instance.id': identity.instanceId }
    const found = await this.#reader.sessionWithMetadata(instanceId, metadata)
    if (found !== undefined) return found
    const session = await this.#writer.createSession({
      instanceId,
      metadata,
      claim: ownClaim(instanceId, `session\n${identity.instanceId}`),
    })
    return session.id
  }

  async #run(instanceId: string, sessionId: string, identity: ResourceIdentity): Promise<string> {
    const metadata = { 'service.instance.id': identity.instanceId }
    const found = await this.#reader.serverRunWithDeploymentMetadata(sessionId, metadata)
    if (found !== undefined) return found
    const run = await this.#writer.startServerRun({
      instanceId,
      sessionId,
      run: {
        type: 'external',
        server: { name: identity.serviceName, type: 'custom' },
        server_deployment: {
          name: identity.serviceVersion ? `${identity.serviceName} ${identity.serviceVersion}` : identity.serviceName,
          metadata,
        },
      },
      claim: ownClaim(instanceId, `run\n${sessionId}\n${identity.instanceId}`),
    })
    return run.id
  }
}

const targetKey = (instanceId: string, identity: ResourceIdentity) =>
  `${instanceId}\n${identity.sessionId ?? ''}\n${identity.instanceId}`

/** The idempotency key under which the intake makes a session or a run: the same for every process. */
function ownClaim(instanceId: string, what: string): IdempotencyClaim {
  const fingerprint = createHash('sha256').update(what).digest('hex')
  return { instanceId, key: `otlp\n${what}`, fingerprint, status: 201 }
}
