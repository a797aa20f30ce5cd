/* global Buffer */
// The payloads of the route-contract micro pair (issue 11): a POST of a ~1 KB
// JSON body to /api/items, answered by the upstream with a ~1 KB list item of
// 12 fields, 4 of them internal. `tollgate-contracts-on` validates the request
// body against ITEM_REQUEST_SCHEMA and shapes the answer down to the 4 fields of
// ITEM_RESPONSE_SCHEMA; `tollgate-contracts-off` proxies both untouched.

export const ITEM_PATH = '/api/items'
export const ITEM_DIRECT_PATH = '/items'

/** What the client sends (~1 KB). */
export const ITEM_REQUEST_BODY = Buffer.from(JSON.stringify({
  title: 'Tollgate benchmark item: a list entry of about one kilobyte',
  sku: 'TG-BENCH-000042',
  price: 1299.5,
  currency: 'EUR',
  quantity: 3,
  tags: ['gateway', 'proxy', 'contracts', 'validation', 'benchmark'],
  category: 'infrastructure/networking/api-gateways',
  dimensions: { width: 120, height: 45, depth: 300, unit: 'mm' },
  seller: { id: 'seller-7f3a9c', name: 'Bench Seller Ltd', rating: 4.7 },
  available: true,
  description: 'A representative request body for the validation micro benchmark. '.repeat(9).trim()
}))

/** The upstream's answer (~1 KB): public fields first, then internal ones the shaped route drops. */
export const ITEM_RESPONSE_BODY = Buffer.from(JSON.stringify({
  id: 42,
  title: 'Tollgate benchmark item: a list entry of about one kilobyte',
  price: 1299.5,
  tags: ['gateway', 'proxy', 'contracts', 'validation', 'benchmark'],
  sku: 'TG-BENCH-000042',
  currency: 'EUR',
  createdAt: '2026-11-21T12:00:00.000Z',
  description: 'A representative answer for the response shaping micro benchmark. '.repeat(6).trim(),
  internalCost: 812.25,
  internalNotes: 'supplier contract 2026-117, margin under review; do not expose to clients '.repeat(2).trim(),
  warehouseId: 'wh-eu-central-3',
  auditTrail: [
    { at: '2026-11-20T08:00:00.000Z', by: 'ops-bot', action: 'created' },
    { at: '2026-11-21T09:30:00.000Z', by: 'pricing-job', action: 'repriced' }
  ]
}))

const dimension = { type: 'number', minimum: 0, maximum: 100000 }

/** Validates ITEM_REQUEST_BODY (every field required, no unknown field). */
export const ITEM_REQUEST_SCHEMA = {
  type: 'object',
  required: ['title', 'sku', 'price', 'currency', 'quantity', 'tags', 'category', 'dimensions', 'seller', 'available', 'description'],
  additionalProperties: false,
  properties: {
    title: { type: 'string', minLength: 1, maxLength: 200 },
    sku: { type: 'string', pattern: '^[A-Z]{2}-[A-Z]+-[0-9]{6}$' },
    price: { type: 'number', minimum: 0 },
    currency: { type: 'string', enum: ['EUR', 'USD', 'GBP'] },
    quantity: { type: 'integer', minimum: 1, maximum: 1000 },
    tags: { type: 'array', maxItems: 20, items: { type: 'string', maxLength: 40 } },
    category: { type: 'string', maxLength: 200 },
    dimensions: {
      type: 'object',
      required: ['width', 'height', 'depth', 'unit'],
      additionalProperties: false,
      properties: { width: dimension, height: dimension, depth: dimension, unit: { type: 'string', enum: ['mm', 'cm', 'm'] } }
    },
    seller: {
      type: 'object',
      required: ['id', 'name'],
      additionalProperties: false,
      properties: { id: { type: 'string', maxLength: 64 }, name: { type: 'string', maxLength: 200 }, rating: { type: 'number', minimum: 0, maximum: 5 } }
    },
    available: { type: 'boolean' },
    description: { type: 'string', maxLength: 4000 }
  }
}

/** Keeps 4 of the answer's 12 fields. */
export const ITEM_RESPONSE_SCHEMA = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    title: { type: 'string' },
    price: { type: 'number' },
    tags: { type: 'array', items: { type: 'string' } }
  }
}

/** What a shaped route must answer for `body` (the schema's fields, in its order, as JSON.stringify writes them). */
export function shapedItem (body) {
  const parsed = JSON.parse(body.toString('utf8'))
  const kept = {}
  for (const key of Object.keys(ITEM_RESPONSE_SCHEMA.properties)) if (key in parsed) kept[key] = parsed[key]
  return Buffer.from(JSON.stringify(kept))
}
