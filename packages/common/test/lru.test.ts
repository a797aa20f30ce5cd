import t from 'tap'
import { LruCache } from '../src/index.js'

t.test('keeps at most max entries, dropping the least recently used first', async (t) => {
  const cache = new LruCache<string, number>(2)
  cache.set('a', 1)
  cache.set('b', 2)
  t.equal(cache.get('a'), 1) // a is now the most recently used
  cache.set('c', 3)
  t.equal(cache.size, 2)
  t.equal(cache.get('b'), undefined)
  t.equal(cache.get('a'), 1)
  t.equal(cache.get('c'), 3)
})

t.test('set on an existing key replaces it and refreshes it', async (t) => {
  const cache = new LruCache<string, number>(2)
  cache.set('a', 1)
  cache.set('b', 2)
  cache.set('a', 10)
  cache.set('c', 3)
  t.equal(cache.get('a'), 10)
  t.equal(cache.get('b'), undefined)
})

t.test('delete, clear, and max 0 keeping nothing', async (t) => {
  const cache = new LruCache<string, number>(3)
  cache.set('a', 1)
  t.equal(cache.delete('a'), true)
  t.equal(cache.get('a'), undefined)
  cache.set('b', 2)
  cache.clear()
  t.equal(cache.size, 0)
  const none = new LruCache<string, number>(0)
  none.set('a', 1)
  t.equal(none.size, 0)
  t.throws(() => new LruCache(-1), RangeError)
  t.throws(() => new LruCache(1.5), RangeError)
})
