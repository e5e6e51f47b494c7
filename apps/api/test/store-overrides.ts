import type { Store, StoreReader } from '../src/store/types.js'

/** A proxy of `target` with some of its methods replaced; every other one runs on the target itself. */
function replacing<T extends object>(target: T, overrides: Partial<T>): T {
  return new Proxy(target, {
    get(object, property, receiver) {
      if (Object.hasOwn(overrides, property)) return overrides[property as keyof T]
      const value = Reflect.get(object, property, receiver)
      return typeof value === 'function' ? value.bind(object) : value
    },
  })
}

/**
 * The store with some of its methods (and its reader's) replaced, to cause a fault for real (a
 * method that fails, one that waits). Every other method runs on the store itself.
 */
export function overriding(
  store: Store,
  overrides: Partial<Omit<Store, 'reader'>> & { reader?: Partial<StoreReader> },
): Store {
  const { reader, ...rest } = overrides
  return replacing(store, { ...rest, ...(reader && { reader: replacing(store.reader, reader) }) })
}

/** The store, with a count of the events its reader has read (sessionEvents) since it was made. */
export function countingEventReads(store: Store): { store: Store; read: () => number } {
  let read = 0
  return {
    store: overriding(store, {
      reader: {
        sessionEvents: async (session, ids) => {
          read += ids.length
          return store.reader.sessionEvents(session, ids)
        },
      },
    }),
    read: () => read,
  }
}
