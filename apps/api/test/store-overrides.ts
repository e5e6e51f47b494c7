import type { Store } from '../src/store/types.js'

/**
 * The store with some of its methods replaced, to cause a fault for real (a method that fails,
 * one that waits). Every other method runs on the store itself.
 */
export function overriding(store: Store, overrides: Partial<Store>): Store {
  return new Proxy(store, {
    get(target, property, receiver) {
      if (Object.hasOwn(overrides, property)) return overrides[property as keyof Store]
      const value = Reflect.get(target, property, receiver)
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
}
