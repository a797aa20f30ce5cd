import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

/** examples/reference/, from this file's place (src/ or dist/ of the dev package). */
export const referenceDir = fileURLToPath(new URL('../../', import.meta.url))
export const repositoryDir = fileURLToPath(new URL('../../../../', import.meta.url))

export const entries = {
  auth: `${referenceDir}auth-service/dist/main.js`,
  posts: `${referenceDir}posts-service/dist/main.js`,
  chat: `${referenceDir}chat-service/dist/main.js`,
  resumes: `${referenceDir}resumes-service/dist/main.js`,
  gatewayCli: process.env.TOLLGATE_CLI ?? `${repositoryDir}packages/gateway/dist/cli.js`,
  manifest: `${referenceDir}gateway/tollgate.yaml`,
  redisManifest: `${referenceDir}gateway/tollgate.redis.yaml`
} as const

/** What is missing, as sentences that say how to fix it. */
export function missingBuilds (withGateway: boolean): string[] {
  const problems: string[] = []
  for (const name of ['auth', 'posts', 'chat', 'resumes'] as const) {
    if (!existsSync(entries[name])) {
      problems.push(`${entries[name]} is missing: build the services with \`pnpm exec tsc -b examples/reference/dev\` from the repository root.`)
    }
  }
  if (withGateway && !existsSync(entries.gatewayCli)) {
    problems.push(`the gateway CLI (${entries.gatewayCli}) is missing: build it with \`pnpm run build\` from the repository root, or start the services alone with \`--services-only\`.`)
  }
  return problems
}
