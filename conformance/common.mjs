// Shared by interop_node.mjs and browser.mjs: start/stop a ringcast process.
import { execFileSync, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { createInterface } from 'node:readline';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const BIN = process.env.RINGCAST_BIN || path.join(REPO, 'target', 'release', 'ringcast');

/** Starts ringcast on an ephemeral port; resolves { proc, url, port, stop() } once it listens. */
export function startRingcast(args = [], { logName = 'ringcast', timeoutMs = 30000 } = {}) {
  const logDir = path.join(REPO, 'target', 'interop');
  mkdirSync(logDir, { recursive: true });
  const stderrPath = path.join(logDir, `${logName}.stderr`);
  const proc = spawn(BIN, ['--listen', '127.0.0.1:0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stderr.pipe(createWriteStream(stderrPath));
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const stop = async (ms = 10000) => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), ms);
      const r = await exited;
      clearTimeout(t);
      return r;
    }
    return exited;
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`no listening line within ${timeoutMs} ms (${stderrPath})`)); }, timeoutMs);
    proc.on('error', (e) => { clearTimeout(timer); reject(e); });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`ringcast exited (${code}) before listening; see ${stderrPath}`)); });
    const rl = createInterface({ input: proc.stdout });
    rl.on('line', (line) => {
      const m = /^ringcast listening on (wss?:\/\/(\S+):(\d+)\/?)\s/.exec(line + ' ');
      if (m) {
        clearTimeout(timer);
        console.log(`# ringcast pid ${proc.pid}: ${line}`);
        // "... on wss://A/ and ws://B/ (N workers)" with --tls-cert and --plain-listen
        const plain = / and (ws:\/\/\S+\/)/.exec(line);
        resolve({ proc, url: m[1].endsWith('/') ? m[1] : m[1] + '/', host: m[2], port: Number(m[3]), plainUrl: plain?.[1], exited, stop });
      }
    });
  });
}

/** Rejects after ms unless p settles first. */
export function within(p, ms, what) {
  let t;
  return Promise.race([p, new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`timeout after ${ms} ms waiting for ${what}`)), ms); })])
    .finally(() => clearTimeout(t));
}

/** A self-signed certificate for localhost and 127.0.0.1 made with the openssl CLI in `dir`
 *  (a fresh one per run, no file committed); returns { cert, key, args } with the server's TLS flags. */
export function makeTestCertificate(dir) {
  const [cert, key] = [path.join(dir, 'cert.pem'), path.join(dir, 'key.pem')];
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
    '-nodes', '-days', '2', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  return { cert, key, args: ['--tls-cert', cert, '--tls-key', key] };
}
