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

/**
 * Replaces `${NAME}` and `${NAME:-fallback}` in every string of the tree, in place.
 * A value that is one whole reference and expands to a number or boolean becomes
 * one (`port: ${PORT:-8080}`). Missing variables and prototype keys are problems.
 */
function substitute (node: unknown, env: NodeJS.ProcessEnv, path: Array<string | number>, problems: string[]): unknown {
  if (typeof node === 'string') {
    let missing = false
    const expanded = node.replace(REFERENCE, (_match, name: string, fallback: string | undefined) => {
      const value = env[name]
      if (value !== undefined && value !== '') return value
      if (fallback !== undefined) return fallback
      problems.push(`${formatPath(path)}: environment variable ${name} is not set`)
      missing = true
      return ''
    })
    if (missing || expanded === node || !WHOLE_REFERENCE.test(node)) return expanded
    if (/^-?\d+$/.test(expanded)) return Number(expanded)
    if (expanded === 'true' || expanded === 'false') return expanded === 'true'
    return expanded
  }
  if (Array.isArray(node)) {
    return node.map((item, i) => substitute(item, env, [...path, i], problems))
  }
  if (node !== null && typeof node === 'object') {
    const out: Record<string, unknown> = {}
    for (const key of Object.keys(node)) {
      if (FORBIDDEN_KEYS.has(key)) {
        problems.push(`${formatPath([...path, key])}: forbidden key`)
        continue
      }
      out[key] = substitute((node as Record<string, unknown>)[key], env, [...path, key], problems)
    }
    return out
  }
  return node
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
  const problems: string[] = []
  const tree = substitute(document.toJS({ maxAliasCount: 100 }), options.env ?? process.env, [], problems)
  if (problems.length > 0) throw new ManifestError(problems, file)
  const baseDir = file === '<manifest>' ? process.cwd() : dirname(resolve(file))
  const found = manifestProblems(tree, baseDir)
  if (found.length > 0) throw new ManifestError(found, file)
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
