/* global process, fetch, AbortSignal */
// nginx as a reverse proxy with upstream keep-alive: the ceiling a proxy can
// reach on this machine. Used only when `nginx` is on PATH; never installed.
import { spawn } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { freePort, pinned, sleep } from './proc.mjs'

/** Starts nginx (pinned to the server core) in front of `upstreamPort`; resolves { child, port }. */
export async function startNginx (nginx, plan, dir, upstreamPort) {
  const root = join(dir, 'nginx')
  for (const sub of ['', 'logs', 'tmp']) mkdirSync(join(root, sub), { recursive: true })
  const port = await freePort()
  const conf = join(root, 'nginx.conf')
  writeFileSync(conf, `
worker_processes 1;
daemon off;
pid ${root}/nginx.pid;
error_log ${root}/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${root}/tmp/body;
  proxy_temp_path ${root}/tmp/proxy;
  fastcgi_temp_path ${root}/tmp/fastcgi;
  uwsgi_temp_path ${root}/tmp/uwsgi;
  scgi_temp_path ${root}/tmp/scgi;
  keepalive_requests 1000000;
  upstream bench_upstream {
    server 127.0.0.1:${upstreamPort};
    keepalive 64;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${port};
    location /api/ {
      proxy_pass http://bench_upstream/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`)
  const { command, args } = pinned(plan, plan.server, nginx, ['-p', root, '-c', conf])
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'inherit'], env: process.env })
  // Ready when it answers; bounded.
  for (let attempt = 0; attempt < 50; attempt++) {
    if (child.exitCode !== null) throw new Error(`nginx exited with ${child.exitCode}; see ${root}/logs/error.log`)
    try {
      const response = await fetch(`http://127.0.0.1:${port}/api/hello`, { signal: AbortSignal.timeout(1000) })
      await response.arrayBuffer()
      return { child, port }
    } catch {
      await sleep(100)
    }
  }
  child.kill('SIGKILL')
  throw new Error('nginx did not answer within 5 s')
}
