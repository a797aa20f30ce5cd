import type { Manifest, RouteSection } from './manifest/types.js'
import { patternRows } from './microservices.js'

function authColumn (manifest: Manifest, route: RouteSection): string {
  if (route.auth === false) return 'public'
  const methods = route.auth?.methods?.join('|') ?? 'any'
  const roles = route.auth?.roles === undefined ? '' : ` roles:${route.auth.roles.join('|')}`
  const permissions = route.auth?.permissions === undefined ? '' : ` perms:${route.auth.permissions.join('|')}`
  return `${methods}${roles}${permissions}`
}

function limitColumn (manifest: Manifest, route: RouteSection): string {
  const limit = route.rateLimit === false ? undefined : route.rateLimit ?? manifest.rateLimit?.default
  if (limit === undefined) return 'none'
  return `${limit.max}/${String(limit.window)} by ${limit.by ?? 'ip'}${route.rateLimit === undefined ? ' (default)' : ''}`
}

/** The route table printed by `tollgate routes`: one row per route, columns aligned. */
export function routeTable (manifest: Manifest): string {
  const rows = [['PREFIX', 'METHODS', 'UPSTREAM', 'TARGETS', 'AUTH', 'RATE LIMIT']]
  for (const route of manifest.routes) {
    if (route.patterns !== undefined) {
      rows.push(...patternRows(manifest, route, authColumn(manifest, route), limitColumn(manifest, route)))
      continue
    }
    const upstream = manifest.upstreams[route.upstream]
    const targets = upstream?.targets.map((target) => typeof target === 'string' ? target : `${target.url}*${target.weight ?? 1}`).join(',') ?? '?'
    const rewrite = route.rewrite !== undefined ? ` -> ${route.rewrite}` : route.rewritePrefix === undefined || route.rewritePrefix === '' ? '' : ` -> ${route.rewritePrefix}${route.path ?? ''}`
    rows.push([
      `${route.prefix}${route.path ?? ''}${rewrite}${route.websocket === true ? ' (ws)' : ''}`,
      route.methods?.join(',') ?? 'any',
      route.upstream,
      targets,
      authColumn(manifest, route),
      limitColumn(manifest, route)
    ])
  }
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)))
  return rows.map((row) => row.map((cell, column) => column === row.length - 1 ? cell : cell.padEnd(widths[column]!)).join('  ')).join('\n') + '\n'
}
