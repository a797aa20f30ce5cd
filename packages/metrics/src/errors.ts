import createError from '@fastify/error'

/** A plugin option is missing, of the wrong type or out of range. Fails `app.ready()`. */
export const InvalidOptionError = createError<'TOLLGATE_METRICS_INVALID_OPTION', 500, [string]>(
  'TOLLGATE_METRICS_INVALID_OPTION',
  '@tollgate/metrics: %s',
  500
)

/** A route's `config.metrics` is not a boolean. Fails `app.ready()`. */
export const InvalidRouteConfigError = createError<'TOLLGATE_METRICS_INVALID_ROUTE_CONFIG', 500, [string, string]>(
  'TOLLGATE_METRICS_INVALID_ROUTE_CONFIG',
  '@tollgate/metrics: route %s: config.metrics must be a boolean (got %s)',
  500
)

/** The registry already holds a metric of the same name (the plugin was registered twice on one registry). */
export const RegistryConflictError = createError<'TOLLGATE_METRICS_REGISTRY_CONFLICT', 500, [string]>(
  'TOLLGATE_METRICS_REGISTRY_CONFLICT',
  '@tollgate/metrics: the registry already holds a metric named %s; register the plugin once per registry',
  500
)

/** The separate metrics listener (`port` option) could not be started. */
export const ListenError = createError<'TOLLGATE_METRICS_LISTEN_FAILED', 500, [string, { cause: unknown }?]>(
  'TOLLGATE_METRICS_LISTEN_FAILED',
  '@tollgate/metrics: cannot listen on %s',
  500
)

/** Collecting the metrics for a scrape failed (a collector threw). The cause is logged, never sent. */
export const ScrapeError = createError<'TOLLGATE_METRICS_SCRAPE_FAILED', 500, [{ cause: unknown }?]>(
  'TOLLGATE_METRICS_SCRAPE_FAILED',
  'metrics collection failed',
  500
)
