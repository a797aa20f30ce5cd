import { readdir, readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { ConfigMap, Service } from 'kubernetes-models/v1'
import { Deployment } from 'kubernetes-models/apps/v1'
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1'
import t from 'tap'
import { parseAllDocuments } from 'yaml'

// Schema validation with kubernetes-models (the Kubernetes OpenAPI schemas, bundled: works offline).
const deployDir = fileURLToPath(new URL('../../../../deploy/', import.meta.url))

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- Kubernetes objects are read loosely
type Loose = any

const models: Record<string, new (data: Loose) => { validate: () => void }> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy
}

async function objects (): Promise<Array<{ file: string, object: Loose }>> {
  const files = (await readdir(deployDir + 'k8s')).filter((name) => name.endsWith('.yaml')).sort()
  const found: Array<{ file: string, object: Loose }> = []
  for (const file of files) {
    for (const document of parseAllDocuments(await readFile(`${deployDir}k8s/${file}`, 'utf8'))) {
      if (document.errors.length > 0) throw new Error(`${file}: ${document.errors[0]!.message}`)
      const object = document.toJS() as Loose
      if (object !== null) found.push({ file, object })
    }
  }
  return found
}

t.test('every Kubernetes object is valid against its schema', async (t) => {
  const all = await objects()
  t.ok(all.length >= 9)
  for (const { file, object } of all) {
    const Model = models[`${object.apiVersion as string}/${object.kind as string}`]
    if (Model === undefined) {
      t.fail(`${file}: ${object.apiVersion as string}/${object.kind as string} has no validator here`)
      continue
    }
    t.doesNotThrow(() => { new Model(object).validate() }, `${file}: ${object.kind as string} ${object.metadata?.name as string}`)
  }
})

t.test('the validator does refuse invalid objects', async (t) => {
  t.throws(() => { new Deployment({ metadata: { name: 'x' }, spec: { replicas: 'three' as unknown as number, selector: {}, template: {} } }).validate() })
})

t.test('gateway: several replicas, readiness on /readyz, the manifest from the ConfigMap, Redis shared', async (t) => {
  const all = (await objects()).map(({ object }) => object)
  const byName = (kind: string, name: string): Loose => all.find((o) => o.kind === kind && o.metadata.name === name)
  const gateway = byName('Deployment', 'tollgate-gateway')
  t.equal(gateway.spec.replicas, 3)
  const container = gateway.spec.template.spec.containers[0]
  t.match(container.readinessProbe, { httpGet: { path: '/readyz' } })
  t.match(container.livenessProbe, { httpGet: { path: '/healthz' } })
  t.same(container.args, ['start', '--config', '/etc/tollgate/tollgate.yaml'])
  t.same(container.env.find((e: Loose) => e.name === 'REDIS_URL'), { name: 'REDIS_URL', value: 'redis://redis:6379' })
  t.equal(gateway.spec.template.spec.volumes[0].configMap.name, 'tollgate-manifest')
  t.ok(byName('ConfigMap', 'tollgate-manifest').data['tollgate.yaml'])
  t.ok(gateway.spec.template.spec.terminationGracePeriodSeconds > 10, 'longer than shutdownGrace')

  // Every Service selects pods of a Deployment, on a port the container names.
  for (const service of all.filter((o) => o.kind === 'Service')) {
    const deployment = all.find((o) => o.kind === 'Deployment' && Object.entries(service.spec.selector).every(([k, v]) => o.spec.template.metadata.labels[k] === v))
    t.ok(deployment, `Service ${service.metadata.name as string} selects a Deployment`)
    const ports = deployment.spec.template.spec.containers.flatMap((c: Loose) => c.ports.map((p: Loose) => p.name))
    for (const port of service.spec.ports) t.ok(ports.includes(port.targetPort), `Service ${service.metadata.name as string} targets port ${String(port.targetPort)}`)
  }
  for (const name of ['redis', 'auth', 'posts', 'chat', 'resumes']) t.ok(byName('Deployment', name), `${name} is deployed`)
})

const GATEWAY = 'tollgate-gateway'

/** Whether a label selector (matchLabels only: anything else is reported, not guessed) selects these labels. */
function selects (selector: Loose, labels: Record<string, string>): boolean {
  if (selector?.matchExpressions !== undefined) throw new Error('matchExpressions are not checked here: use matchLabels')
  return Object.entries(selector?.matchLabels ?? {}).every(([k, v]) => labels[k] === v)
}

/**
 * Why `policy` does not limit the ingress of `deployment` to the gateway's pods on the ports
 * its containers serve (no answer: it does). An ingress rule without `from` admits every
 * source, an empty podSelector every pod, a namespaceSelector or ipBlock pods and hosts
 * elsewhere; a rule without `ports` admits every port.
 */
function ingressProblems (policy: Loose, deployment: Loose, deployments: Loose[]): string[] {
  const name = `NetworkPolicy ${policy.metadata.name as string}`
  const types: string[] = policy.spec.policyTypes ?? ['Ingress']
  if (!types.includes('Ingress')) return [`${name} does not restrict ingress`]
  const problems: string[] = []
  const served = deployment.spec.template.spec.containers.flatMap((c: Loose) => c.ports.flatMap((p: Loose) => [p.containerPort, p.name]))
  for (const rule of policy.spec.ingress ?? []) {
    if (!Array.isArray(rule.from) || rule.from.length === 0) problems.push(`${name} admits every source`)
    for (const peer of rule.from ?? []) {
      if (peer.namespaceSelector !== undefined || peer.ipBlock !== undefined || peer.podSelector === undefined) {
        problems.push(`${name} admits peers outside this namespace's pods`)
        continue
      }
      const admitted = deployments.filter((d) => selects(peer.podSelector, d.spec.template.metadata.labels)).map((d) => d.metadata.name as string)
      if (admitted.length !== 1 || admitted[0] !== GATEWAY) problems.push(`${name} admits ${admitted.join(', ') || 'no Deployment'} (only ${GATEWAY} should be)`)
      if (Object.keys(peer.podSelector.matchLabels ?? {}).length === 0) problems.push(`${name} admits every pod`)
    }
    if (!Array.isArray(rule.ports) || rule.ports.length === 0) problems.push(`${name} admits every port`)
    for (const port of rule.ports ?? []) {
      if (!served.includes(port.port)) problems.push(`${name} admits port ${String(port.port)}, which ${deployment.metadata.name as string} does not serve`)
    }
  }
  return problems
}

t.test('every service and Redis accepts ingress only from the gateway, on the ports it serves', async (t) => {
  const all = (await objects()).map(({ object }) => object)
  const deployments = all.filter((o) => o.kind === 'Deployment')
  const policies = all.filter((o) => o.kind === 'NetworkPolicy')
  t.ok(deployments.some((d) => d.metadata.name === GATEWAY))
  const services = deployments.filter((d) => d.metadata.name !== GATEWAY)
  for (const name of ['auth', 'posts', 'chat', 'resumes', 'redis']) t.ok(services.some((d) => d.metadata.name === name), `${name} is checked`)
  for (const deployment of services) {
    const name = deployment.metadata.name as string
    const selecting = policies.filter((p) => selects(p.spec.podSelector, deployment.spec.template.metadata.labels))
    const ingress = selecting.filter((p) => (p.spec.policyTypes ?? ['Ingress']).includes('Ingress'))
    t.ok(ingress.length > 0, `${name} is selected by a policy restricting its ingress`)
    // Policies add up: one that admits anyone else would undo the others.
    for (const policy of ingress) t.same(ingressProblems(policy, deployment, deployments), [], `${name}: ${policy.metadata.name as string} admits only the gateway`)
    t.ok(ingress.some((p) => (p.spec.ingress ?? []).length > 0), `${name}: the gateway is admitted`)
  }
  const gateway = deployments.find((d) => d.metadata.name === GATEWAY)
  t.same(policies.filter((p) => selects(p.spec.podSelector, gateway.spec.template.metadata.labels)), [], 'the gateway itself stays reachable')
})

t.test('the policy check does refuse policies that admit more than the gateway', async (t) => {
  const all = (await objects()).map(({ object }) => object)
  const deployments = all.filter((o) => o.kind === 'Deployment')
  const posts = deployments.find((d) => d.metadata.name === 'posts')
  const policy = (ingress: Loose): Loose => ({ metadata: { name: 'bad' }, spec: { podSelector: { matchLabels: { 'app.kubernetes.io/name': 'posts' } }, policyTypes: ['Ingress'], ingress } })
  const gatewayPeer = { podSelector: { matchLabels: { 'app.kubernetes.io/name': GATEWAY } } }
  t.same(ingressProblems(policy([{ from: [gatewayPeer], ports: [{ port: 3002 }] }]), posts, deployments), [], 'the right one passes')
  t.match(ingressProblems(policy([{ ports: [{ port: 3002 }] }]), posts, deployments), ['NetworkPolicy bad admits every source'])
  t.match(ingressProblems(policy([{ from: [{ podSelector: {} }], ports: [{ port: 3002 }] }]), posts, deployments), [/admits auth, .*only tollgate-gateway/, 'NetworkPolicy bad admits every pod'])
  t.match(ingressProblems(policy([{ from: [{ podSelector: { matchLabels: { 'app.kubernetes.io/part-of': 'tollgate-reference' } } }], ports: [{ port: 3002 }] }]), posts, deployments), [/only tollgate-gateway/])
  t.match(ingressProblems(policy([{ from: [{ ...gatewayPeer, namespaceSelector: {} }], ports: [{ port: 3002 }] }]), posts, deployments), [/outside this namespace/])
  t.match(ingressProblems(policy([{ from: [{ ipBlock: { cidr: '0.0.0.0/0' } }], ports: [{ port: 3002 }] }]), posts, deployments), [/outside this namespace/])
  t.match(ingressProblems(policy([{ from: [gatewayPeer] }]), posts, deployments), ['NetworkPolicy bad admits every port'])
  t.match(ingressProblems(policy([{ from: [gatewayPeer], ports: [{ port: 6379 }] }]), posts, deployments), [/port 6379, which posts does not serve/])
  t.match(ingressProblems({ metadata: { name: 'bad' }, spec: { podSelector: {}, policyTypes: ['Egress'] } }, posts, deployments), [/does not restrict ingress/])
  t.throws(() => new NetworkPolicy({ metadata: { name: 'x' }, spec: { podSelector: {}, policyTypes: ['Sideways'] as unknown as ['Ingress'] } }).validate(), 'the schema refuses an unknown policy type')
})

t.test('resumes: the NestJS TCP microservice, ready when its port accepts connections, reached at the port the gateway targets', async (t) => {
  const all = (await objects()).map(({ object }) => object)
  const deployment = all.find((o) => o.kind === 'Deployment' && o.metadata.name === 'resumes')
  const container = deployment.spec.template.spec.containers[0]
  t.same(container.args, ['resumes-service'])
  t.same(container.readinessProbe.tcpSocket, { port: 'tcp' }, 'a TCP probe: the service has no HTTP')
  t.same(container.ports, [{ name: 'tcp', containerPort: 3003 }])
  const service = all.find((o) => o.kind === 'Service' && o.metadata.name === 'resumes')
  t.same(service.spec.ports, [{ name: 'tcp', port: 3003, targetPort: 'tcp' }])
  t.match(await readFile(deployDir + 'k8s/gateway.yaml', 'utf8'), /targets: \[tcp:\/\/resumes:3003\]/)
  t.match(await readFile(deployDir + 'Dockerfile.examples', 'utf8'), /for service in [^;]*\bresumes-service\b/, 'the examples image carries it')
})

t.test('the Dockerfile builds the gateway and runs its CLI on the mounted manifest', async (t) => {
  const dockerfile = await readFile(deployDir + 'Dockerfile', 'utf8')
  t.match(dockerfile, /^FROM node:20/m)
  t.match(dockerfile, /^USER node$/m)
  t.match(dockerfile, /^EXPOSE 8080$/m)
  t.match(dockerfile, /^ENTRYPOINT \["node", "dist\/cli\.js"\]$/m)
  t.match(dockerfile, /^CMD \["start", "--config", "\/etc\/tollgate\/tollgate\.yaml"\]$/m)
})
