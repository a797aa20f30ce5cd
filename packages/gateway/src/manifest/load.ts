import { readFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { parseDocument } from 'yaml'
import { ManifestError } from './errors.js'
import type { LoadedManifest } from './types.js'
import { formatPath, manifestProblems } from './validate.js'

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype'])
const REFERENCE = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g
const WHOLE_REFERENCE = /^\$\{[A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\}$/

export interface LoadOptions {
  /** Where `${NAME}` references are looked up; `process.env` by default. */
  env?: NodeJS.ProcessEnv
}

/** What substituting the environment into a tree found, by formatted path. */
interface Substitution {
  problems: string[]
  /** Paths holding a missing variable: other problems there only repeat that one. */
  missing: Set<string>
  /** Paths whose whole-reference value was turned into a number or boolean. */
  converted: Set<string>
}

/**
 * Replaces `${NAME}` and `${NAME:-fallback}` in every string of the tree, in place.
 * A value that is one whole reference and expands to a number or boolean becomes
 * one (`port: ${PORT:-8080}`), except at the paths of `keepStrings` (where the manifest
 * wants a string: a secret of digits). Missing variables and prototype keys are problems.
 */
function substitute (node: unknown, env: NodeJS.ProcessEnv, path: Array<string | number>, found: Substitution, keepStrings: ReadonlySet<string>): unknown {
  if (typeof node === 'string') {
    let missing = false
    const expanded = node.replace(REFERENCE, (_match: string, name: string, fallback: string | undefined) => {
      const value = env[name]
      if (value !== undefined && value !== '') return value
      if (fallback !== undefined) return fallback
      found.problems.push(`${formatPath(path)}: environment variable ${name} is not set`)
      found.missing.add(formatPath(path))
      missing = true
      // Left as written: a non-empty placeholder keeps the rest of the manifest checkable
      // (an empty string would fail the schema and hide every other problem).
      return _match
    })
    if (missing || expanded === node || !WHOLE_REFERENCE.test(node)) return expanded
    const at = formatPath(path)
    if (keepStrings.has(at)) return expanded
    if (/^-?\d+$/.test(expanded)) {
      found.converted.add(at)
      return Number(expanded)
    }
    if (expanded === 'true' || expanded === 'false') {
      found.converted.add(at)
      return expanded === 'true'
    }
    return expanded
  }
  if (Array.isArray(node)) {
    return node.map((item, i) => substitute(item, env, [...path, i], found, keepStrings))
  }
  if (node !== null && typeof node === 'object') {
    const out: Record<string, unknown> = {}
    for (const key of Object.keys(node)) {
      if (FORBIDDEN_KEYS.has(key)) {
        found.problems.push(`${formatPath([...path, key])}: forbidden key`)
        continue
      }
      out[key] = substitute((node as Record<string, unknown>)[key], env, [...path, key], found, keepStrings)
    }
    return out
  }
  return node
}

/** The path a `path: message` problem is about. */
function problemPath (problem: string): string {
  const at = problem.indexOf(': ')
  return at === -1 ? '' : problem.slice(0, at)
}

/** Parses manifest text (YAML, of which JSON is a subset); syntax errors carry file, line and column. */
export function parseManifestText (text: string, file = '<manifest>', options: LoadOptions = {}): LoadedManifest {
  const document = parseDocument(text, { prettyErrors: true, uniqueKeys: true, merge: false })
  if (document.errors.length > 0) {
    throw new ManifestError(document.errors.map((error) => {
      const at = error.linePos?.[0]
      const where = at === undefined ? file : `${file}:${at.line}:${at.col}`
      return `${where}: ${error.message.split('\n')[0]}`
    }), file)
  }
  const raw: unknown = document.toJS({ maxAliasCount: 100 })
  if (raw === null || raw === undefined) throw new ManifestError([`${file}: the manifest is empty (it needs at least version, upstreams and routes)`], file)
  const env = options.env ?? process.env
  const baseDir = file === '<manifest>' ? process.cwd() : dirname(resolve(file))
  let found: Substitution = { problems: [], missing: new Set(), converted: new Set() }
  let tree = substitute(raw, env, [], found, new Set())
  let problems = manifestProblems(tree, baseDir)
  // A variable read as a number or boolean where the manifest wants a string (a secret or
  // an issuer of digits, `true`): read it again as the string it was.
  const wrongKind = new Set([...found.converted].filter((at) => problems.some((problem) => problemPath(problem) === at)))
  if (wrongKind.size > 0) {
    found = { problems: [], missing: new Set(), converted: new Set() }
    tree = substitute(raw, env, [], found, wrongKind)
    problems = manifestProblems(tree, baseDir)
  }
  // Every problem at once: a missing variable's own, then the others, less those that only
  // repeat it (the empty value it left is too short, not a URL, ...).
  const all = [...found.problems, ...problems.filter((problem) => !found.missing.has(problemPath(problem)))]
  if (all.length > 0) throw new ManifestError(all, file)
  return Object.defineProperty(tree as LoadedManifest, 'baseDir', { value: baseDir, enumerable: false })
}

/**
 * Reads and validates a manifest file (YAML or JSON). Throws a {@link ManifestError}
 * listing every problem as `path: message`.
 */
export async function loadManifest (path: string, options: LoadOptions = {}): Promise<LoadedManifest> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (error) {
    throw new ManifestError([`${path}: cannot read the manifest (${(error as NodeJS.ErrnoException).code ?? String(error)})`], path)
  }
  return parseManifestText(text, path, options)
}
