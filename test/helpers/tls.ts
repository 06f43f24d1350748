import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server, type TLSSocket } from 'node:tls';

export interface TestCertificate {
  key: string;
  cert: string;
}

/** A throw-away certificate authority made with the openssl command, for RTMPS tests. */
export class TestCa {
  readonly cert: string;
  readonly file: string;

  private constructor(private readonly dir: string) {
    this.file = join(dir, 'ca.pem');
    openssl([
      'req',
      '-x509',
      ...EC_KEY,
      '-nodes',
      '-keyout',
      join(dir, 'ca.key'),
      '-out',
      this.file,
      '-days',
      '2',
      '-subj',
      '/CN=Gateway Test CA',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ]);
    this.cert = readFileSync(this.file, 'utf8');
  }

  static create(): TestCa {
    return new TestCa(mkdtempSync(join(tmpdir(), 'test-ca-')));
  }

  /** A server certificate for `names` (DNS names or IP addresses), signed by this CA. */
  issue(names: string[]): TestCertificate {
    const base = join(this.dir, names[0]!.replace(/[^\w.-]/g, '_'));
    openssl(['req', ...EC_KEY, '-nodes', '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', `/CN=${names[0]}`]);
    const san = names.map((n) => (/^[\d.]+$/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
    writeFileSync(`${base}.ext`, `subjectAltName=${san}\n`);
    openssl([
      'x509',
      '-req',
      '-in',
      `${base}.csr`,
      '-CA',
      this.file,
      '-CAkey',
      join(this.dir, 'ca.key'),
      '-CAcreateserial',
      '-out',
      `${base}.pem`,
      '-days',
      '2',
      '-extfile',
      `${base}.ext`,
    ]);
    return { key: readFileSync(`${base}.key`, 'utf8'), cert: readFileSync(`${base}.pem`, 'utf8') };
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'];

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: 'pipe' });
}

/**
 * A TLS terminator on loopback in front of a plain RTMP server, as RTMPS ingest points are built:
 * accepts TLS with the given certificate and pipes the bytes to `targetPort`. Records the server
 * name (SNI) each client asked for.
 */
export class TlsTerminator {
  readonly serverNames: (string | false | null)[] = [];

  private constructor(private readonly server: Server) {}

  static async start(certificate: TestCertificate, targetPort: number): Promise<TlsTerminator> {
    const server = createServer({ key: certificate.key, cert: certificate.cert }, (socket: TLSSocket) => {
      terminator.serverNames.push(socket.servername);
      const upstream = connect(targetPort, '127.0.0.1');
      socket.pipe(upstream).pipe(socket);
      const close = (): void => {
        socket.destroy();
        upstream.destroy();
      };
      socket.on('error', close).on('close', close);
      upstream.on('error', close).on('close', close);
    });
    server.on('tlsClientError', () => {}); // a client that rejects our certificate: expected in tests
    const terminator = new TlsTerminator(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    return terminator;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
