/**
 * A bounded map that forgets the least recently used entry first. A `Map` keeps insertion
 * order, so a hit moves its entry to the end (delete + set) and the first key is always the
 * least recently used: O(1) for every operation, no timers, no per-entry allocation beyond
 * the map's own.
 */
export class LruCache<K, V> {
  readonly #max: number
  readonly #map = new Map<K, V>()

  /** @param max most entries kept (an integer >= 0; 0 keeps nothing). */
  constructor (max: number) {
    if (!Number.isInteger(max) || max < 0) throw new RangeError(`LruCache max must be a non-negative integer, got ${String(max)}`)
    this.#max = max
  }

  get size (): number {
    return this.#map.size
  }

  get max (): number {
    return this.#max
  }

  /** The value for `key` (and marks it most recently used), or `undefined`. */
  get (key: K): V | undefined {
    const map = this.#map
    const value = map.get(key)
    if (value !== undefined) {
      map.delete(key)
      map.set(key, value)
    }
    return value
  }

  /** Stores `value` (never `undefined`) as the most recently used; drops the least recently used beyond `max`. */
  set (key: K, value: V): void {
    if (this.#max === 0) return
    const map = this.#map
    map.delete(key)
    map.set(key, value)
    if (map.size > this.#max) map.delete(map.keys().next().value as K)
  }

  delete (key: K): boolean {
    return this.#map.delete(key)
  }

  clear (): void {
    this.#map.clear()
  }
}
