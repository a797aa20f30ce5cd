/**
 * The manifest's JSON Schema (version 1). `additionalProperties: false` everywhere:
 * a misspelt key must stop the gateway rather than silently disable a protection.
 */
const duration = {
  description: 'must be a number of milliseconds, or a string such as "250ms", "10s", "1m", "1h"',
  anyOf: [
    { type: 'integer', minimum: 0 },
    { type: 'string', pattern: '^\\d+(\\.\\d+)?(ms|s|m|h|d)$' }
  ]
} as const

const size = {
  description: 'must be a number of bytes, or a string such as "512kb", "1mb" (binary units)',
  anyOf: [
    { type: 'integer', minimum: 0 },
    { type: 'string', pattern: '^\\d+(\\.\\d+)?(b|kb|mb|gb)$' }
  ]
} as const

const httpMethod = { enum: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] } as const
const stringList = { type: 'array', items: { type: 'string', minLength: 1 } } as const

// Route contracts (request validation, response shaping, header rules, path templates).
// The schemas themselves are checked by Ajv / fast-json-stringify when the route is built.
const jsonSchema = {
  type: 'object',
  description: 'must be a JSON Schema object, or { $file: ./path/to/schema.json }'
} as const
const headerName = { type: 'string', pattern: '^[A-Za-z0-9!#$%&\'*+.^_`|~-]+$', description: 'must be a header name' } as const
const headerValues = { type: 'object', propertyNames: { pattern: '^[A-Za-z0-9!#$%&\'*+.^_`|~-]+$' }, additionalProperties: { type: 'string' } } as const
const headerRules = {
  type: 'object',
  additionalProperties: false,
  properties: {
    set: headerValues,
    add: headerValues,
    remove: { type: 'array', items: headerName },
    rename: { type: 'object', propertyNames: { pattern: '^[A-Za-z0-9!#$%&\'*+.^_`|~-]+$' }, additionalProperties: headerName }
  }
} as const
const pathTemplate = {
  type: 'string',
  pattern: '^(/([A-Za-z0-9._~!$&\'()+,=@-]+|:[A-Za-z_][A-Za-z0-9_]*))+$',
  description: 'must be a path template like /:id/profile: literal segments or :params, no trailing slash, "*", "%" or "?"'
} as const

const rateLimitRule = {
  type: 'object',
  additionalProperties: false,
  required: ['max', 'window'],
  properties: {
    max: { type: 'integer', minimum: 0 },
    window: duration,
    by: { type: 'string', pattern: '^(ip|user|apiKey|header:[A-Za-z0-9!#$%&\'*+.^_`|~-]+)$' },
    algorithm: { enum: ['fixed-window', 'sliding-window', 'token-bucket'] }
  }
} as const

const target = {
  anyOf: [
    { type: 'string', minLength: 1 },
    {
      type: 'object',
      additionalProperties: false,
      required: ['url'],
      properties: { url: { type: 'string', minLength: 1 }, weight: { type: 'integer', minimum: 1, maximum: 1000 } }
    }
  ]
} as const

/** One method's request schemas (a route's `validate.<METHOD>`, a pattern's `validate`). */
const requestSchemas = {
  type: 'object',
  additionalProperties: false,
  properties: { body: jsonSchema, querystring: jsonSchema, params: jsonSchema, headers: jsonSchema }
} as const
/** Response schemas by 2xx status (`200`, `2xx`). */
const responseSchemas = {
  type: 'object',
  minProperties: 1,
  propertyNames: { pattern: '^2(\\d\\d|xx)$' },
  additionalProperties: jsonSchema
} as const

// Routes answered by NestJS microservices (@tollgate/microservices): method and path to a pattern or an event.
const messagePatternValue = {
  description: 'must be a string, a number or an object (a NestJS pattern)',
  anyOf: [{ type: 'string', minLength: 1 }, { type: 'number' }, { type: 'object' }]
} as const

const messagePattern = {
  type: 'object',
  additionalProperties: false,
  required: ['method'],
  properties: {
    method: { enum: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] },
    path: { type: 'string', pattern: '^/' },
    pattern: messagePatternValue,
    event: messagePatternValue,
    data: { enum: ['body', 'params', 'query', 'envelope'] },
    array: { type: 'boolean' },
    description: { type: 'string' },
    validate: requestSchemas,
    response: responseSchemas
  }
} as const

export const manifestSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://tollgate.dev/schemas/manifest-v1.json',
  title: 'Tollgate route manifest',
  type: 'object',
  additionalProperties: false,
  required: ['version', 'upstreams', 'routes'],
  properties: {
    version: { const: 1 },
    server: {
      type: 'object',
      additionalProperties: false,
      properties: {
        host: { type: 'string', minLength: 1 },
        port: { type: 'integer', minimum: 0, maximum: 65535 },
        workers: { type: 'integer', minimum: 1, maximum: 64, description: 'processes serving the port (node:cluster); share rate limits through redis when above 1' },
        trustProxy: {
          anyOf: [
            { type: 'boolean' },
            { type: 'integer', minimum: 1 },
            { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1 }
          ]
        },
        bodyLimit: size,
        shutdownGrace: duration,
        requestTimeout: duration,
        headersTimeout: duration,
        keepAliveTimeout: duration,
        maxHeaderSize: size,
        maxHeaders: { type: 'integer', minimum: 1, maximum: 10000 },
        maxConnections: { type: 'integer', minimum: 1 },
        tls: {
          type: 'object',
          additionalProperties: false,
          required: ['cert', 'key'],
          properties: {
            cert: { type: 'string', minLength: 1 },
            key: { type: 'string', minLength: 1 },
            redirectHttpPort: { type: 'integer', minimum: 0, maximum: 65535 }
          }
        },
        cors: {
          type: 'object',
          additionalProperties: false,
          properties: {
            origin: { anyOf: [{ type: 'boolean' }, { type: 'string', minLength: 1 }, stringList] },
            credentials: { type: 'boolean' },
            methods: { type: 'array', items: httpMethod },
            allowedHeaders: stringList,
            exposedHeaders: stringList,
            maxAge: { type: 'integer', minimum: 0 }
          }
        },
        securityHeaders: { type: 'boolean' },
        docs: { anyOf: [{ const: false }, { type: 'string', pattern: '^/' }] },
        metrics: { anyOf: [{ const: false }, { type: 'string', pattern: '^/' }] },
        health: { anyOf: [{ const: false }, { type: 'string', pattern: '^/' }] },
        logLevel: { enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] }
      }
    },
    redis: {
      type: 'object',
      additionalProperties: false,
      required: ['url'],
      properties: {
        url: { type: 'string', pattern: '^rediss?://' },
        keyPrefix: { type: 'string' },
        commandTimeout: duration
      }
    },
    auth: {
      type: 'object',
      additionalProperties: false,
      properties: {
        jwt: {
          type: 'object',
          additionalProperties: false,
          properties: {
            jwksUrl: { type: 'string', pattern: '^https?://' },
            secret: { type: 'string', minLength: 1 },
            publicKey: { type: 'string', minLength: 1 },
            issuer: { anyOf: [{ type: 'string' }, stringList] },
            audience: { anyOf: [{ type: 'string' }, stringList] },
            algorithms: {
              type: 'array',
              minItems: 1,
              items: { enum: ['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] }
            },
            clockTolerance: duration,
            rolesClaim: { type: 'string', minLength: 1 },
            permissionsClaim: { type: 'string', minLength: 1 },
            jwksCooldown: duration,
            insecureWeakSecret: { type: 'boolean' }
          }
        },
        apiKeys: {
          type: 'object',
          additionalProperties: false,
          required: ['keys'],
          properties: {
            header: { type: 'string', pattern: '^[A-Za-z0-9!#$%&\'*+.^_`|~-]+$' },
            keys: {
              type: 'array',
              items: {
                type: 'object',
                additionalProperties: false,
                required: ['id', 'sha256'],
                properties: {
                  id: { type: 'string', minLength: 1 },
                  sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' },
                  roles: stringList,
                  permissions: stringList
                }
              }
            }
          }
        },
        forward: {
          type: 'object',
          additionalProperties: false,
          required: ['url'],
          properties: {
            url: { type: 'string', pattern: '^https?://' },
            forwardHeaders: stringList,
            identityHeaders: {
              type: 'object',
              additionalProperties: false,
              required: ['id'],
              properties: { id: { type: 'string' }, roles: { type: 'string' }, permissions: { type: 'string' } }
            },
            cacheTtl: duration,
            timeout: duration
          }
        },
        identityHeaders: {
          type: 'object',
          propertyNames: { pattern: '^[A-Za-z0-9!#$%&\'*+.^_`|~-]+$' },
          additionalProperties: { type: 'string', minLength: 1 }
        }
      }
    },
    rateLimit: {
      type: 'object',
      additionalProperties: false,
      properties: {
        algorithm: { enum: ['fixed-window', 'sliding-window', 'token-bucket'] },
        default: rateLimitRule,
        onStoreError: { enum: ['allow', 'deny'] }
      }
    },
    upstreams: {
      type: 'object',
      minProperties: 1,
      propertyNames: { pattern: '^[A-Za-z0-9_-]+$' },
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        required: ['targets'],
        properties: {
          transport: { enum: ['http', 'nest-tcp', 'nest-redis', 'nest-nats'] },
          targets: { type: 'array', minItems: 1, items: target },
          balance: { enum: ['round-robin', 'least-connections', 'random'] },
          healthCheck: {
            type: 'object',
            additionalProperties: false,
            properties: {
              path: { type: 'string', pattern: '^/' },
              interval: duration,
              timeout: duration,
              unhealthyAfter: { type: 'integer', minimum: 1 },
              healthyAfter: { type: 'integer', minimum: 1 }
            }
          },
          timeout: duration,
          connectTimeout: duration,
          bodyTimeout: duration,
          keepAliveTimeout: duration,
          connections: { type: 'integer', minimum: 1 },
          ca: { type: 'string', minLength: 1, description: 'must be the path of a PEM file of the CA certificates that sign the targets\' (https) certificates' },
          retries: { type: 'integer', minimum: 0, maximum: 10 },
          circuitBreaker: {
            type: 'object',
            additionalProperties: false,
            properties: {
              failures: { type: 'integer', minimum: 1 },
              resetAfter: duration
            }
          },
          websocket: {
            type: 'object',
            additionalProperties: false,
            properties: {
              idleTimeout: duration,
              maxMessageSize: size,
              maxMessagesPerSecond: { type: 'integer', minimum: 0 },
              maxConnections: { type: 'integer', minimum: 1 }
            }
          }
        }
      }
    },
    routes: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['prefix', 'upstream'],
        properties: {
          prefix: {
            type: 'string',
            pattern: '^(/[A-Za-z0-9._~!$&\'()*+,=:@-]+)+$|^/$',
            description: 'must be a path like /api/posts: starting with "/", no trailing slash, no empty segments, no percent-encoding (or "/" alone: every path no other route takes)'
          },
          upstream: { type: 'string', minLength: 1 },
          rewritePrefix: {
            type: 'string',
            pattern: '^(/[A-Za-z0-9._~!$&\'()*+,=:@-]+)*$',
            description: 'must be "" or a path like /api/posts'
          },
          methods: { type: 'array', minItems: 1, uniqueItems: true, items: httpMethod },
          auth: {
            anyOf: [
              { const: false },
              {
                type: 'object',
                additionalProperties: false,
                properties: {
                  methods: { type: 'array', minItems: 1, uniqueItems: true, items: { enum: ['jwt', 'apiKey', 'forward'] } },
                  roles: stringList,
                  permissions: stringList
                }
              }
            ]
          },
          rateLimit: { anyOf: [{ const: false }, rateLimitRule] },
          stripCredentials: { type: 'boolean' },
          websocket: { type: 'boolean' },
          patterns: { type: 'array', minItems: 1, items: messagePattern },
          description: { type: 'string' },
          path: pathTemplate,
          rewrite: pathTemplate,
          validate: {
            type: 'object',
            propertyNames: { pattern: '^(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS)$' },
            additionalProperties: requestSchemas
          },
          response: responseSchemas,
          responseBufferLimit: size,
          requestHeaders: headerRules,
          responseHeaders: headerRules
        }
      }
    }
  }
} as const
