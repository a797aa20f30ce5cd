import { readdir, readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { ConfigMap, Service } from 'kubernetes-models/v1'
import { Deployment } from 'kubernetes-models/apps/v1'
import t from 'tap'
import { parseAllDocuments } from 'yaml'

// Schema validation with kubernetes-models (the Kubernetes OpenAPI schemas, bundled: works offline).
const deployDir = fileURLToPath(new URL('../../../../deploy/', import.meta.url))

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- Kubernetes objects are read loosely
type Loose = any

const models: Record<string, new (data: Loose) => { validate: () => void }> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment
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
